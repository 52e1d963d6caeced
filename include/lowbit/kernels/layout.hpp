// How the linear-layer kernels read a qmatrix in place: chunks of stored codes, the order in
// which SIMD registers see a chunk's codes ("kernel order"), the int8 value table of an element
// format, and per-unit scales as floats. The kernels consume the byte-exact qmatrix layout
// directly (no repacking): instead of interleaving the weights, the activations are permuted
// once per token into kernel order, which costs O(tokens * K) instead of O(N * K).
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#if LOWBIT_HAS_AVX2
#include <immintrin.h>
#endif

namespace lowbit::kernels {

// A chunk is 32 kernel positions (one AVX2 register of int8): 32 consecutive codes of a row,
// or, for base-3 ternary, one of the five digit planes of 160 codes stored in 32 bytes.
inline constexpr std::size_t chunk = 32;

template <scheme S>
struct chunk_geometry {
  static constexpr bool base3 = S::layout == code_layout::base3;
  // Codes covered by one group of chunks that share stored bytes, and those bytes.
  static constexpr std::size_t span = base3 ? 5 * chunk : chunk;
  static constexpr std::size_t span_bytes = base3 ? 32 : chunk * S::code_bits / 8;
  static constexpr std::size_t chunks_per_span = base3 ? 5 : 1;

  // Code index (within the span) of kernel position p (within the span). 4-bit: a chunk is 16
  // bytes whose low nibbles come first, then the high nibbles; 2-bit: 8 bytes shifted by 0, 2, 4
  // and 6 bits; base 3: digit d of byte j is code 5j + d; 8-bit and the rest: identity.
  static constexpr std::size_t code_at(std::size_t p) noexcept {
    if constexpr (base3) {
      return 5 * (p % chunk) + p / chunk;
    } else if constexpr (S::code_bits == 4 && S::layout == code_layout::nibbles_high_first) {
      return p < 16 ? 2 * p + 1 : 2 * (p - 16);
    } else if constexpr (S::code_bits == 4) {
      return p < 16 ? 2 * p : 2 * (p - 16) + 1;
    } else if constexpr (S::code_bits == 2) {
      return 4 * (p % 8) + p / 8;
    } else {
      return p;
    }
  }
  // Spans (and chunks) of a row of `cols` columns; the last span may be partial.
  static constexpr std::size_t spans(std::size_t cols) noexcept { return (S::padded_cols(cols) + span - 1) / span; }
};

namespace detail {

// The integer-dot path's scale granularity: one weight scale per lane of 4 positions. Group
// sizes of 16 or multiples of 32 keep each lane inside one group.
template <scheme S>
constexpr bool int8_scale_layout_ok() {
  if constexpr (S::gran == granularity::tensor || S::gran == granularity::row) return true;
  if constexpr (S::gran == granularity::group)
    return S::layout != code_layout::base3 && (S::block == 16 || S::block % chunk == 0);
  return false;
}

template <scheme S>
constexpr bool int8_codes_ok() {
  using E = typename S::element;
  if constexpr (S::layout == code_layout::base3) return true;
  if constexpr (S::code_bits == 2 || S::code_bits == 4) return true;
  if constexpr (S::code_bits == 8) // integer elements whose value (minus zero point) fits int8
    return E::family == format_family::integer && E::is_signed && !S::has_zero_point;
  return false;
}

} // namespace detail

// Schemes the integer-dot path (int8 activations x int8 weight values) runs on: 2-, 4- and 8-bit
// codes (any 16-entry table, INT8, MXINT8), base-3 ternary, with tensor, row or group scales.
template <class S>
concept int8_dot_scheme = scheme<S> && detail::int8_codes_ok<S>() && detail::int8_scale_layout_ok<S>();

// Element values as int8: value(code) ~= mult * v[code]. Exact when every value is an integer
// multiple of a power of two that fits in [-127, 127] (INT2-8, E2M1 as 2x, ternary, MXINT8);
// otherwise (NF4, bitsandbytes FP4, midrise) v = round(127 * value / max|value|), whose error
// is at most 0.5 / 127 of the largest value. Invalid codes (NaN in the float path) map to 0.
template <scalar_format E>
struct int8_table {
  std::array<std::int8_t, 16> v{};
  float mult = 1.0f;
  bool exact = true;

  static constexpr int8_table make() {
    static_assert(E::bits <= 4, "int8 tables are for codes of at most 4 bits");
    int8_table t;
    constexpr std::size_t n = std::size_t{1} << E::bits;
    std::array<double, 16> val{};
    double amax = 0;
    for (std::size_t c = 0; c < n; ++c) {
      const double v = E::decode_double(static_cast<typename E::storage>(c));
      val[c] = v == v && v - v == 0 ? v : 0.0; // NaN and inf codes: 0
      amax = val[c] > amax ? val[c] : -val[c] > amax ? -val[c] : amax;
    }
    for (int e = 8; e >= -8; --e) { // the coarsest power-of-two grid holding every value
      const double m = e >= 0 ? static_cast<double>(1 << e) : 1.0 / static_cast<double>(1 << -e);
      bool ok = true;
      for (std::size_t c = 0; c < n && ok; ++c) {
        const double q = val[c] / m;
        ok = q >= -127 && q <= 127 && q == static_cast<double>(static_cast<int>(q));
      }
      if (ok) {
        for (std::size_t c = 0; c < n; ++c) t.v[c] = static_cast<std::int8_t>(val[c] / m);
        t.mult = static_cast<float>(m);
        return t;
      }
    }
    t.exact = false;
    t.mult = static_cast<float>(amax / 127);
    for (std::size_t c = 0; c < n; ++c) {
      const double q = val[c] / amax * 127; // round half away from zero
      t.v[c] = static_cast<std::int8_t>(q < 0 ? -static_cast<int>(-q + 0.5) : static_cast<int>(q + 0.5));
    }
    return t;
  }
  static constexpr const int8_table& get() noexcept { return value; }
  static const int8_table value;
};
template <scalar_format E>
inline constexpr int8_table<E> int8_table<E>::value = int8_table<E>::make();

// Multiplier of the int8 weight values of a scheme's element (8-bit elements: their integer).
template <scheme S>
constexpr float int8_value_mult() {
  using E = typename S::element;
  if constexpr (S::layout != code_layout::base3 && S::code_bits == 8)
    return static_cast<float>(E::decode_double(1)); // integer elements: value(1) = the unit
  else
    return int8_table<E>::get().mult;
}

// The float multiplier of every scale unit of a qmatrix, times `mult`: 8-bit scale codes (E8M0,
// UE4M3, double-quantized codes) go through a 256-entry table with the tensor scale folded in,
// wider ones are decoded per unit. Kernels and references read scales only through this, so
// they see the same floats bit for bit.
template <scheme S>
class scale_reader {
public:
  explicit scale_reader(const qmatrix<S>& q, float mult = 1.0f) : q_(q), mult_(mult) {
    if constexpr (table_) {
      for (unsigned c = 0; c < 256; ++c) {
        const auto code = static_cast<typename qmatrix<S>::scale_storage>(c);
        if constexpr (qmatrix<S>::double_quantized)
          lut_[c] = S::scale_quant::codes::decode(code);
        else
          lut_[c] = S::unit_scale(code, q.tensor_scale()) * mult;
      }
    }
  }
  float operator()(std::size_t u) const noexcept {
    if constexpr (qmatrix<S>::double_quantized)
      return std::fma(lut_[q_.scales()[u]], q_.scale_absmax()[u / S::scale_quant::block], q_.scale_offset()) * mult_;
    else if constexpr (table_)
      return lut_[q_.scales()[u]];
    else
      return decode_wide(q_.scales()[u]) * q_.tensor_scale() * mult_;
  }

private:
  // Exact decode of a 16- or 32-bit scale code (F16C where compiled: exact, like the software
  // decode, and much faster).
  static float decode_wide(typename qmatrix<S>::scale_storage c) noexcept {
    using F = typename S::scale_format;
    if constexpr (std::is_same_v<F, fp16>) {
#if LOWBIT_HAS_AVX2
      return _cvtsh_ss(c);
#else
      return F::decode(c);
#endif
    } else if constexpr (std::is_same_v<F, bf16>) {
      return std::bit_cast<float>(static_cast<std::uint32_t>(c) << 16);
    } else {
      return static_cast<float>(F::decode(c));
    }
  }

public:
private:
  static constexpr bool table_ = sizeof(typename qmatrix<S>::scale_storage) == 1;
  const qmatrix<S>& q_;
  float mult_;
  std::array<float, 256> lut_{};
};

// Horizontal sum of the eight lane accumulators, in the one order both the scalar reference and
// the SIMD kernels use.
inline float lane_sum(const float* a) noexcept {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

// Shared argument checks of the linear entry points.
template <scheme S>
void check_linear(const char* fn, const qmatrix<S>& w, std::size_t x_size, std::size_t tokens, std::size_t y_size,
                  std::size_t bias_size) {
  if (w.rows() == 0 || w.cols() == 0)
    throw invalid_argument(std::string(fn) + ": W is empty (" + std::to_string(w.rows()) + "x" +
                           std::to_string(w.cols()) + ")");
  if (x_size != tokens * w.cols())
    throw invalid_argument(std::string(fn) + ": X has " + std::to_string(x_size) + " elements, expected tokens (" +
                           std::to_string(tokens) + ") x K (" + std::to_string(w.cols()) + ")");
  if (y_size != tokens * w.rows())
    throw invalid_argument(std::string(fn) + ": Y has " + std::to_string(y_size) + " elements, expected tokens (" +
                           std::to_string(tokens) + ") x N (" + std::to_string(w.rows()) + ")");
  if (bias_size != 0 && bias_size != w.rows())
    throw invalid_argument(std::string(fn) + ": bias has " + std::to_string(bias_size) +
                           " elements, expected 0 or N (" + std::to_string(w.rows()) + ")");
}

} // namespace lowbit::kernels
