// The packed quantized matrix of a scheme, and quantize / dequantize / fake_quant.
// Layout (byte-exact, stable): W is rows x cols (N x K, K the reduction axis), row-major.
// Codes: one plane, row r at byte r * row_bytes(), each row padded with zero values to whole
// blocks and packed per `packing.hpp` (4-bit: two per byte, low nibble first). Scales: a
// separate plane of ScaleFmt storage, indexed by block_scheme::scale_index (row-major over
// blocks for group granularity). Zero points (asymmetric schemes): one byte per scale.
// Tensor scale: one float (1 when the scheme has none).
#pragma once

#include "lowbit/core/buffer.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/formats/convert.hpp"
#include "lowbit/schemes/packing.hpp"
#include "lowbit/schemes/scheme.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

namespace detail {
// What the scale plane stores: the scale format's storage, or second-level codes.
template <class S, bool = S::scale_quant::enabled>
struct scale_storage_of {
  using type = typename S::scale_format::storage;
};
template <class S>
struct scale_storage_of<S, true> {
  using type = typename S::scale_quant::codes::storage;
};
} // namespace detail

template <scheme S>
class qmatrix {
public:
  using scheme_type = S;
  using element = typename S::element;
  static constexpr bool double_quantized = S::scale_quant::enabled;
  using scale_storage = typename detail::scale_storage_of<S>::type;

  qmatrix() = default;
  qmatrix(std::size_t rows, std::size_t cols)
      : rows_(rows), cols_(cols), codes_(rows * row_bytes_for(cols)), scales_(S::scale_count(rows, cols)),
        zeros_(S::has_zero_point ? S::scale_count(rows, cols) : 0), scale_absmax_(second_level_count(rows, cols)) {}

  // Number of fp32 second-level scales (double quantization), else 0.
  static std::size_t second_level_count(std::size_t rows, std::size_t cols) noexcept {
    if constexpr (double_quantized)
      return (S::scale_count(rows, cols) + S::scale_quant::block - 1) / S::scale_quant::block;
    else
      return 0;
  }

  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t padded_cols() const noexcept { return S::padded_cols(cols_); }
  std::size_t row_bytes() const noexcept { return row_bytes_for(cols_); }
  static std::size_t row_bytes_for(std::size_t cols) noexcept {
    return packed_bytes(S::layout, S::code_bits, S::padded_cols(cols));
  }

  std::span<std::uint8_t> codes() noexcept { return codes_; }
  std::span<const std::uint8_t> codes() const noexcept { return codes_; }
  std::span<const std::uint8_t> row_codes(std::size_t r) const noexcept {
    return std::span<const std::uint8_t>(codes_).subspan(r * row_bytes(), row_bytes());
  }
  std::span<scale_storage> scales() noexcept { return scales_; }
  std::span<const scale_storage> scales() const noexcept { return scales_; }
  std::span<std::uint8_t> zero_points() noexcept { return zeros_; }
  std::span<const std::uint8_t> zero_points() const noexcept { return zeros_; }
  float tensor_scale() const noexcept { return tensor_scale_; }
  void set_tensor_scale(float t) noexcept { tensor_scale_ = t; }
  // Double quantization: fp32 absmax of each block of second-level codes, and the mean offset.
  std::span<float> scale_absmax() noexcept { return scale_absmax_; }
  std::span<const float> scale_absmax() const noexcept { return scale_absmax_; }
  float scale_offset() const noexcept { return scale_offset_; }
  void set_scale_offset(float o) noexcept { scale_offset_ = o; }

  // Effective (dequantization) scale of scale unit u, and of element (r, c).
  float unit_scale(std::size_t u) const noexcept {
    if constexpr (double_quantized)
      return S::scale_quant::codes::decode(scales_[u]) * scale_absmax_[u / S::scale_quant::block] + scale_offset_;
    else
      return S::unit_scale(scales_[u], tensor_scale_);
  }
  float scale_at(std::size_t r, std::size_t c) const noexcept { return unit_scale(S::scale_index(r, c, cols_)); }
  std::uint8_t zero_at(std::size_t r, std::size_t c) const noexcept {
    if constexpr (S::has_zero_point)
      return zeros_[S::scale_index(r, c, cols_)];
    else
      return 0;
  }

  double bits_per_weight() const noexcept { return S::bits_per_weight(rows_, cols_); }
  std::size_t storage_bytes() const noexcept {
    return codes_.size() + scales_.size() * sizeof(scale_storage) + zeros_.size() + (S::has_tensor_scale ? 4 : 0) +
           (double_quantized ? 4 * (scale_absmax_.size() + 1) : 0);
  }

private:
  std::size_t rows_ = 0, cols_ = 0;
  aligned_vector<std::uint8_t> codes_;
  aligned_vector<scale_storage> scales_;
  std::vector<std::uint8_t> zeros_;
  std::vector<float> scale_absmax_;
  float tensor_scale_ = 1.0f;
  float scale_offset_ = 0.0f;
};

namespace detail {

inline void check_shape(const char* fn, std::size_t size, std::size_t rows, std::size_t cols) {
  if (rows == 0 || cols == 0)
    throw invalid_argument(std::string(fn) + ": shape " + std::to_string(rows) + "x" + std::to_string(cols) +
                           " is empty, expected rows >= 1 and cols >= 1");
  if (cols > (std::size_t{1} << 40) / rows)
    throw invalid_argument(std::string(fn) + ": shape " + std::to_string(rows) + "x" + std::to_string(cols) +
                           " exceeds 2^40 elements");
  if (size != rows * cols)
    throw invalid_argument(std::string(fn) + ": data has " + std::to_string(size) + " elements, shape " +
                           std::to_string(rows) + "x" + std::to_string(cols) + " needs " + std::to_string(rows * cols));
}

template <scheme S>
void check_finite(const char* fn, std::span<const float> x, std::size_t cols) {
  if constexpr (!S::rule::allows_non_finite) {
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!std::isfinite(x[i]))
        throw invalid_argument(std::string(fn) + ": element (" + std::to_string(i / cols) + ", " +
                               std::to_string(i % cols) + ") is " + std::to_string(x[i]) +
                               "; this scheme needs finite input (only MX schemes encode NaN/inf, as a NaN scale)");
  }
}

// The scheme's own rule: how quantize chooses a unit's scale unless a policy says otherwise
// (quantizers/scale_search.hpp has the clipping searches). A chooser maps a unit's elements, their
// importance weights (same length, or empty for uniform) and the tensor scale to block_params.
struct rule_chooser {
  template <scheme S>
  block_params<typename S::scale_format> choose(std::span<const float> x, std::span<const float> /*weights*/,
                                                float tensor_scale) const {
    return S::rule::template choose<typename S::element, typename S::scale_format>(x, tensor_scale);
  }
};

// Chooses every unit's scale (and zero point) of x; calls store(unit_index, params).
// col_weights: per-column importance (size cols) or empty; a unit gets the weights of its columns.
template <scheme S, class Store, class Chooser = rule_chooser>
float choose_all(std::span<const float> x, std::size_t rows, std::size_t cols, Store&& store,
                 const Chooser& chooser = {}, std::span<const float> col_weights = {}) {
  using E = typename S::element;
  using SF = typename S::scale_format;
  float tensor_scale = 1.0f;
  if constexpr (S::has_tensor_scale) tensor_scale = S::rule::template tensor_scale<E, SF>(abs_max(x));
  const auto weights_of = [&](std::size_t c0, std::size_t n) {
    return col_weights.empty() ? col_weights : col_weights.subspan(c0, n);
  };
  std::vector<float> unit;
  switch (S::gran) {
  case granularity::tensor: {
    std::vector<float> tiled; // the per-column weights repeated for every row
    if (!col_weights.empty())
      for (std::size_t r = 0; r < rows; ++r) tiled.insert(tiled.end(), col_weights.begin(), col_weights.end());
    store(0, chooser.template choose<S>(x, tiled, tensor_scale));
    break;
  }
  case granularity::row:
    parallel_rows(rows, x.size(), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r)
        store(r, chooser.template choose<S>(x.subspan(r * cols, cols), weights_of(0, cols), tensor_scale));
    });
    break;
  case granularity::column:
    unit.resize(rows);
    for (std::size_t c = 0; c < cols; ++c) {
      for (std::size_t r = 0; r < rows; ++r) unit[r] = x[r * cols + c];
      store(c, chooser.template choose<S>(unit, std::span<const float>{}, tensor_scale)); // one weight: irrelevant
    }
    break;
  case granularity::group: {
    const std::size_t groups = S::padded_cols(cols) / S::block;
    parallel_rows(rows, x.size(), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r)
        for (std::size_t g = 0; g < groups; ++g) {
          const std::size_t c0 = g * S::block, n = std::min(S::block, cols - c0); // padding is zeros
          store(r * groups + g,
                chooser.template choose<S>(x.subspan(r * cols + c0, n), weights_of(c0, n), tensor_scale));
        }
    });
    break;
  }
  }
  return tensor_scale;
}

// How elements are rounded to codes: nearest-even (the default, vectorized) or stochastic with
// random_bits(seed, r * cols + c), so results depend only on the seed, never on threads.
struct element_rounding {
  rounding mode = rounding::nearest_even;
  std::uint64_t seed = 0;
};

// Encodes n consecutive elements that share one effective scale and zero point, through the
// element format's span encoder (AVX2 where compiled; bit-identical to S::encode). `index0` is
// the flat index of x[0], for stochastic rounding.
template <scheme S>
void encode_run(const float* x, std::size_t n, float scale, std::uint8_t zero, std::uint8_t* codes,
                std::vector<float>& tmp, element_rounding rnd = {}, std::size_t index0 = 0) {
  using E = typename S::element;
  if (!(scale > 0.0f) || !std::isfinite(scale)) {
    const auto z = S::encode(0.0f, scale, zero);
    for (std::size_t i = 0; i < n; ++i) codes[i] = z;
    return;
  }
  tmp.resize(n);
  if (rnd.mode != rounding::nearest_even) {
    for (std::size_t i = 0; i < n; ++i) {
      const float q = x[i] / scale + (S::has_zero_point ? static_cast<float>(zero) : 0.0f);
      const std::uint32_t bits = random_bits(rnd.seed, index0 + i);
      codes[i] = rnd.mode == rounding::stochastic ? E::template encode<rounding::stochastic>(q, bits)
                                                  : E::template encode<rounding::toward_zero>(q);
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (S::has_zero_point)
      tmp[i] = std::nearbyint(x[i] / scale) + static_cast<float>(zero);
    else
      tmp[i] = x[i] / scale;
  }
  encode_span<E>(std::span<const float>(tmp.data(), n), std::span<typename E::storage>(codes, n));
}

// Calls f(c0, n) for each run of columns [c0, c0 + n) of a row that shares one scale unit.
template <scheme S, class F>
void for_each_run(std::size_t cols, F&& f) {
  if constexpr (S::gran == granularity::group) {
    for (std::size_t c0 = 0; c0 < cols; c0 += S::block) f(c0, std::min(S::block, cols - c0));
  } else if constexpr (S::gran == granularity::column) {
    for (std::size_t c = 0; c < cols; ++c) f(c, std::size_t{1});
  } else {
    f(std::size_t{0}, cols);
  }
}

// Stores the chosen per-unit scales in q once q's tensor scale is set. `encode` holds the
// first-level scales (ScaleFmt decoded, without the tensor scale); on return it holds what
// elements are rounded with: times the tensor scale, or, under double quantization, unchanged
// while q's plane gets the second-level codes (mean offset, one fp32 absmax per Block2).
template <scheme S>
void store_scales(qmatrix<S>& q, std::vector<float>& encode) {
  if constexpr (qmatrix<S>::double_quantized) {
    using codes = typename S::scale_quant::codes;
    constexpr std::size_t b2 = S::scale_quant::block;
    double sum = 0;
    for (float v : encode) sum += v;
    const auto offset = static_cast<float>(sum / static_cast<double>(encode.size()));
    q.set_scale_offset(offset);
    for (std::size_t k = 0; k * b2 < encode.size(); ++k) {
      const std::size_t end = std::min(encode.size(), (k + 1) * b2);
      float amax = 0.0f;
      for (std::size_t u = k * b2; u < end; ++u) amax = std::max(amax, std::fabs(encode[u] - offset));
      q.scale_absmax()[k] = amax;
      for (std::size_t u = k * b2; u < end; ++u)
        q.scales()[u] = codes::encode(amax > 0.0f ? (encode[u] - offset) / amax : 0.0f);
    }
  } else {
    for (float& e : encode) e *= q.tensor_scale();
  }
}

// Effective per-unit scales of x: `encode` (what elements are rounded with) and, in q, what
// dequantization uses; they differ only under double quantization.
template <scheme S, class Chooser = rule_chooser>
std::vector<float> choose_into(std::span<const float> x, std::size_t rows, std::size_t cols, qmatrix<S>& q,
                               const Chooser& chooser = {}, std::span<const float> col_weights = {}) {
  std::vector<float> encode(S::scale_count(rows, cols));
  const float t = choose_all<S>(
      x, rows, cols,
      [&](std::size_t u, const auto& p) {
        encode[u] = static_cast<float>(S::scale_format::decode(p.scale_code));
        if constexpr (!qmatrix<S>::double_quantized) q.scales()[u] = p.scale_code;
        if constexpr (S::has_zero_point) q.zero_points()[u] = p.zero_code;
      },
      chooser, col_weights);
  q.set_tensor_scale(t);
  store_scales<S>(q, encode);
  return encode;
}

} // namespace detail

namespace detail {

template <scheme S, class Chooser>
qmatrix<S> quantize_with(std::span<const float> x, std::size_t rows, std::size_t cols, const Chooser& chooser,
                         std::span<const float> col_weights, element_rounding rnd) {
  check_shape("quantize", x.size(), rows, cols);
  check_finite<S>("quantize", x, cols);
  qmatrix<S> q(rows, cols);
  const std::vector<float> scale = choose_into<S>(x, rows, cols, q, chooser, col_weights);
  const std::size_t pc = q.padded_cols();
  const auto zero_code = static_cast<std::uint8_t>(S::encode(0.0f, 1.0f, 0));
  parallel_rows(rows, x.size(), [&](std::size_t r0, std::size_t r1) {
    std::vector<std::uint8_t> row(pc);
    std::vector<float> tmp;
    for (std::size_t r = r0; r < r1; ++r) {
      for_each_run<S>(cols, [&](std::size_t c0, std::size_t n) {
        const std::size_t u = S::scale_index(r, c0, cols);
        encode_run<S>(&x[r * cols + c0], n, scale[u], q.zero_at(r, c0), &row[c0], tmp, rnd, r * cols + c0);
      });
      for (std::size_t c = cols; c < pc; ++c) row[c] = S::has_zero_point ? q.zero_at(r, c) : zero_code;
      pack_codes(S::layout, S::code_bits, row, q.codes().subspan(r * q.row_bytes(), q.row_bytes()));
    }
  });
  return q;
}

} // namespace detail

// Quantizes the row-major rows x cols matrix x with the scheme's own scale rule and
// round-to-nearest-even (quantizers/ has the other policies). Throws lowbit::invalid_argument for
// a wrong size or shape, and for non-finite input unless the scheme encodes it (MX: NaN scale).
template <scheme S>
qmatrix<S> quantize(std::span<const float> x, std::size_t rows, std::size_t cols) {
  return detail::quantize_with<S>(x, rows, cols, detail::rule_chooser{}, {}, {});
}

namespace detail {

// out[j] = scale * (decode(codes[j]) - zero) for one run, through the element's span decoder.
template <scheme S>
void decode_run(const std::uint8_t* codes, std::size_t n, float scale, std::uint8_t zero, float* out) {
  using E = typename S::element;
  decode_span<E>(std::span<const typename E::storage>(codes, n), std::span<float>(out, n));
  for (std::size_t j = 0; j < n; ++j) {
    if constexpr (S::has_zero_point)
      out[j] = scale * (out[j] - static_cast<float>(zero));
    else
      out[j] = scale * out[j];
  }
}

// Row r of q dequantized into out (q.cols() floats); codes: q.padded_cols() bytes of scratch.
template <scheme S>
void dequantize_row(const qmatrix<S>& q, std::size_t r, std::span<std::uint8_t> codes, float* out) {
  unpack_codes(S::layout, S::code_bits, q.row_codes(r), codes);
  for_each_run<S>(q.cols(), [&](std::size_t c0, std::size_t n) {
    decode_run<S>(&codes[c0], n, q.scale_at(r, c0), q.zero_at(r, c0), out + c0);
  });
}

} // namespace detail

// Dequantizes into out (rows * cols floats, row-major).
template <scheme S>
void dequantize(const qmatrix<S>& q, std::span<float> out) {
  if (out.size() != q.rows() * q.cols())
    detail::throw_size_mismatch("dequantize: output", out.size(), q.rows() * q.cols());
  const std::size_t cols = q.cols();
  parallel_rows(q.rows(), out.size(), [&](std::size_t r0, std::size_t r1) {
    std::vector<std::uint8_t> row(q.padded_cols());
    for (std::size_t r = r0; r < r1; ++r) detail::dequantize_row(q, r, row, &out[r * cols]);
  });
}

template <scheme S>
std::vector<float> dequantize(const qmatrix<S>& q) {
  std::vector<float> out(q.rows() * q.cols());
  dequantize(q, std::span<float>(out));
  return out;
}

namespace detail {

template <scheme S, class Chooser>
void fake_quant_with(std::span<const float> x, std::size_t rows, std::size_t cols, std::span<float> out,
                     const Chooser& chooser, std::span<const float> col_weights, element_rounding rnd) {
  check_shape("fake_quant", x.size(), rows, cols);
  check_finite<S>("fake_quant", x, cols);
  if (out.size() != x.size()) throw_size_mismatch("fake_quant: output", out.size(), x.size());
  qmatrix<S> params(rows, cols); // its scales, zero points and second level; codes unused
  const std::vector<float> scale = choose_into<S>(x, rows, cols, params, chooser, col_weights);
  parallel_rows(rows, x.size(), [&](std::size_t r0, std::size_t r1) {
    std::vector<std::uint8_t> codes(cols);
    std::vector<float> tmp;
    for (std::size_t r = r0; r < r1; ++r)
      for_each_run<S>(cols, [&](std::size_t c0, std::size_t n) {
        const std::size_t u = S::scale_index(r, c0, cols);
        const std::uint8_t z = params.zero_at(r, c0);
        encode_run<S>(&x[r * cols + c0], n, scale[u], z, codes.data(), tmp, rnd, r * cols + c0);
        decode_run<S>(codes.data(), n, params.unit_scale(u), z, &out[r * cols + c0]);
      });
  });
}

} // namespace detail

// Quantize then dequantize without packing: out = dequantize(quantize(x)), bit for bit.
template <scheme S>
void fake_quant(std::span<const float> x, std::size_t rows, std::size_t cols, std::span<float> out) {
  detail::fake_quant_with<S>(x, rows, cols, out, detail::rule_chooser{}, {}, {});
}

} // namespace lowbit
