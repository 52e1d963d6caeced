// How the linear-layer kernels read a qmatrix in place: chunks of stored codes, the order in
// which SIMD registers see a chunk's codes ("kernel order"), the int8 value table of an element
// format, and per-unit scales as floats. The kernels consume the byte-exact qmatrix layout
// directly (no repacking): instead of interleaving the weights, the activations are permuted
// once per token into kernel order, which costs O(tokens * K) instead of O(N * K).
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#if LOWBIT_HAS_AVX2
#include "lowbit/kernels/avx2/scale_decode.hpp"
#endif

namespace lowbit::kernels {

// A chunk is 32 kernel positions (one AVX2 register of int8 values). A span is the codes of 32
// stored bytes, read with one AVX2 load and expanded into chunk_count chunks: 64 codes of 4 bits
// (low nibbles, then high nibbles), 128 codes of 2 bits (bits 0-1, 2-3, 4-5, 6-7 of every byte),
// 32 codes of 8 bits, or 160 base-3 ternary codes (the five digits of every byte).
inline constexpr std::size_t chunk = 32;

template <scheme S>
struct chunk_geometry {
  static constexpr bool base3 = S::layout == code_layout::base3;
  static constexpr std::size_t span_bytes = 32;
  static constexpr std::size_t span = base3 ? 5 * span_bytes : span_bytes * 8 / S::code_bits;
  static constexpr std::size_t chunks_per_span = span / chunk;
  // Codes sharing one activation scale: 32 (160 for base 3, whose lanes cover a whole span).
  static constexpr std::size_t act_block = base3 ? span : chunk;

  // Code index (within the span) of kernel position p (within the span): chunk h = p / 32 holds
  // byte j = p % 32's h-th field. 4-bit: field 0 is the low nibble (code 2j, or 2j + 1 when the
  // high nibble comes first); 2-bit: bits 2h..2h+1 are code 4j + h; base 3: digit h of byte j is
  // code 5j + h; 8-bit: identity.
  static constexpr std::size_t code_at(std::size_t p) noexcept {
    const std::size_t h = p / chunk, j = p % chunk;
    if constexpr (base3) {
      return 5 * j + h;
    } else if constexpr (S::code_bits == 4 && S::layout == code_layout::nibbles_high_first) {
      return 2 * j + (1 - h);
    } else if constexpr (S::code_bits == 4) {
      return 2 * j + h;
    } else if constexpr (S::code_bits == 2) {
      return 4 * j + h;
    } else {
      return p;
    }
  }
  // Lane l (positions 4l..4l+3 of a chunk) holds the same codes' neighbourhood in every chunk of a
  // span: the first code of lane l in chunk 0, which fixes the lane's scale unit and activation block.
  static constexpr std::size_t lane_code(std::size_t l) noexcept { return code_at(4 * l); }
  // Spans of a row of `cols` columns; the last span may be partial.
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
// multiple of a power of two that fits in [-127, 127] (INT2-8, E2M1 as 2x, ternary, MXINT8, FP6
// E2M3 as 8x); otherwise (NF4, bitsandbytes FP4, midrise, FP8, FP6 E3M2) v = round(127 * value /
// max|value|), whose error is at most 0.5 / 127 of the largest value. Invalid codes (NaN and inf
// in the float path) map to 0. N entries: 16 for the kernels' byte-shuffle tables (codes of at most
// 4 bits), 256 for pack_for_int8 (codes of at most 8 bits).
template <scalar_format E, std::size_t N = 16>
struct int8_table {
  std::array<std::int8_t, N> v{};
  float mult = 1.0f;
  bool exact = true;

  static constexpr int8_table make() {
    static_assert(E::bits <= 8 && (std::size_t{1} << E::bits) <= N, "an int8 table needs an entry per code");
    int8_table t;
    constexpr std::size_t n = std::size_t{1} << E::bits;
    std::array<double, N> val{};
    double amax = 0;
    for (std::size_t c = 0; c < n; ++c) {
      const double v = E::decode_double(static_cast<typename E::storage>(c));
      val[c] =
          v >= -std::numeric_limits<double>::max() && v <= std::numeric_limits<double>::max() ? v : 0.0; // NaN, inf: 0
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
    for (std::size_t c = 0; c < n; ++c) { // on the grid of the float multiplier the kernels use
      double q = val[c] / static_cast<double>(t.mult);
      q = q > 127 ? 127 : q < -127 ? -127 : q; // round half away from zero
      t.v[c] = static_cast<std::int8_t>(q < 0 ? -static_cast<int>(-q + 0.5) : static_cast<int>(q + 0.5));
    }
    return t;
  }
  static constexpr const int8_table& get() noexcept;
};
// The tables themselves (a variable template: usable in constant expressions by GCC and Clang).
template <scalar_format E, std::size_t N = 16>
inline constexpr int8_table<E, N> int8_table_v = int8_table<E, N>::make();
template <scalar_format E, std::size_t N>
constexpr const int8_table<E, N>& int8_table<E, N>::get() noexcept {
  return int8_table_v<E, N>;
}

// Multiplier of the int8 weight values of a scheme's element (8-bit elements: their integer).
template <scheme S>
constexpr float int8_value_mult() {
  using E = typename S::element;
  if constexpr (S::layout != code_layout::base3 && S::code_bits == 8)
    return static_cast<float>(E::decode_double(1)); // integer elements: value(1) = the unit
  else
    return int8_table<E>::get().mult;
}

// How the integer-dot kernels feed `maddubs` (unsigned bytes times signed bytes). When every table
// value v lies in [-offset, -offset + umax] and the int16 sums of a span's chunks cannot saturate
// (chunks_per_span * 2 * 127 * umax <= 32767), the kernels multiply u = v + offset >= 0 by the
// activations directly and subtract offset * (sum of the lane's activations) afterwards; that is
// exact. Otherwise (NF4's 127-scaled table, 8-bit codes, zero points) they multiply |w| by
// sign(x, w). Both give the same int32 lane sums. (The int8 tiles take zero-point codes unsigned
// instead, kernels/int8_tiles.hpp.)
template <scheme S>
struct int8_unsigned_table {
  std::array<std::uint8_t, 16> u{};
  int offset = 0;
  bool usable = false;
  bool identity = false; // u[c] == c for every code: no lookup needed

  static constexpr int8_unsigned_table make() {
    int8_unsigned_table t;
    if constexpr (S::has_zero_point || (S::layout != code_layout::base3 && S::code_bits == 8)) {
      return t;
    } else {
      using E = typename S::element;
      const auto& v = int8_table<E>::get().v;
      const std::size_t n = S::layout == code_layout::base3 ? 3 : std::size_t{1} << E::bits;
      int lo = 0, hi = 0;
      for (std::size_t c = 0; c < n; ++c) {
        lo = v[c] < lo ? v[c] : lo;
        hi = v[c] > hi ? v[c] : hi;
      }
      t.offset = -lo;
      t.usable = static_cast<long>(chunk_geometry<S>::chunks_per_span) * 2 * 127 * (hi - lo) <= 32767;
      t.identity = true;
      for (std::size_t c = 0; c < 16; ++c) {
        t.u[c] = static_cast<std::uint8_t>(c < n ? v[c] + t.offset : t.offset);
        t.identity = t.identity && (c >= n || t.u[c] == c);
      }
      return t;
    }
  }
  static constexpr const int8_unsigned_table& get() noexcept;
};
template <scheme S>
inline constexpr int8_unsigned_table<S> int8_unsigned_table_v = int8_unsigned_table<S>::make();
template <scheme S>
constexpr const int8_unsigned_table<S>& int8_unsigned_table<S>::get() noexcept {
  return int8_unsigned_table_v<S>;
}

// The floats of a scheme's scale codes (not double-quantized), times the tensor scale and `mult`:
// 8-bit codes (E8M0, UE4M3) through a 256-entry table, wider ones decoded per code. It needs the
// codes only, so packed layouts that keep the codes (kernels/int8_tiles.hpp) decode them exactly
// as scale_reader does.
template <scheme S>
class scale_decoder {
public:
  using storage = typename qmatrix<S>::scale_storage;
  using format = typename S::scale_format;
  static_assert(!qmatrix<S>::double_quantized, "double-quantized scales need scale_reader");

  scale_decoder(float tensor_scale, float mult) noexcept : ts_(tensor_scale), mult_(mult) {
    if constexpr (table_)
      for (unsigned c = 0; c < 256; ++c) lut_[c] = S::unit_scale(static_cast<storage>(c), tensor_scale) * mult;
  }
  float operator()(storage c) const noexcept {
    if constexpr (table_)
      return lut_[c];
    else
      return decode_wide(c) * ts_ * mult_;
  }
  float tensor_scale() const noexcept { return ts_; }
  float mult() const noexcept { return mult_; }
  // The 256 floats of the 8-bit codes (empty for wider codes).
  const float* table() const noexcept { return lut_.data(); }

  // codes[0 .. n) into out[0 .. n), bit for bit as operator() decodes them (8 at a time where AVX2
  // runs: exponent bits for E8M0, field moves for UE4M3, F16C for fp16, else a table gather).
  void read(const storage* codes, std::size_t n, float* out) const noexcept {
    std::size_t i = 0;
#if LOWBIT_HAS_AVX2
    i = avx2::scales_bulk<false>(*this, codes, n, out);
#endif
    for (; i < n; ++i) out[i] = (*this)(codes[i]);
  }

  // Whether every code of codes[0 .. n) is plain: a normal UE4M3 code (8 .. 0x7E) or an E8M0 code
  // 1 .. 254, which read_plain decodes with no special cases (no zero, subnormal or NaN); for other
  // scale formats, whose read() has no special cases to skip, always true.
  static bool plain(const storage* codes, std::size_t n) noexcept {
    using F = typename S::scale_format;
    if constexpr (std::is_same_v<F, ue4m3>) {
      return std::all_of(codes, codes + n, [](storage c) { return c >= 8 && c <= 0x7E; });
    } else if constexpr (std::is_same_v<F, e8m0>) {
      return std::all_of(codes, codes + n, [](storage c) { return c >= 1 && c <= 254; });
    } else {
      (void)codes;
      (void)n;
      return true;
    }
  }

  // codes[0 .. n), all plain(): bit for bit what read() gives, with the field moves alone
  // (avx2::scales8_plain).
  void read_plain(const storage* codes, std::size_t n, float* out) const noexcept {
    std::size_t i = 0;
#if LOWBIT_HAS_AVX2
    i = avx2::scales_bulk<true>(*this, codes, n, out);
#endif
    read(codes + i, n - i, out + i);
  }

private:
  // Exact decode of a 16- or 32-bit scale code (F16C where compiled: exact, like the software
  // decode, and much faster).
  static float decode_wide(storage c) noexcept {
    using F = typename S::scale_format;
    if constexpr (std::is_same_v<F, fp16>) {
#if LOWBIT_HAS_AVX2
      return avx2::fp16_to_float(c);
#else
      return F::decode(c);
#endif
    } else if constexpr (std::is_same_v<F, bf16>) {
      return std::bit_cast<float>(static_cast<std::uint32_t>(c) << 16);
    } else {
      return static_cast<float>(F::decode(c));
    }
  }

  static constexpr bool table_ = sizeof(storage) == 1;
  float ts_, mult_;
  std::array<float, table_ ? 256 : 0> lut_{};
};

// The float multiplier of every scale unit of a qmatrix, times `mult`: scale_decoder on its codes,
// or for double-quantized scales fma(code value, block absmax, offset) * mult, the code value from a
// 256-entry table. Kernels and references read scales only through this (or scale_decoder), so
// they see the same floats bit for bit.
template <scheme S>
class scale_reader {
  static constexpr bool dq_ = qmatrix<S>::double_quantized;
  struct dq_table {
    std::array<float, 256> lut{};
  };
  using decoder = std::conditional_t<dq_, dq_table, scale_decoder<S>>;

  static decoder make(const qmatrix<S>& q, float mult) noexcept {
    if constexpr (dq_) {
      dq_table t;
      for (unsigned c = 0; c < 256; ++c)
        t.lut[c] = S::scale_quant::codes::decode(static_cast<typename qmatrix<S>::scale_storage>(c));
      return t;
    } else {
      return scale_decoder<S>(q.tensor_scale(), mult);
    }
  }

public:
  explicit scale_reader(const qmatrix<S>& q, float mult = 1.0f) : q_(q), mult_(mult), dec_(make(q, mult)) {}
  float operator()(std::size_t u) const noexcept {
    if constexpr (dq_)
      return std::fma(dec_.lut[q_.scales()[u]], q_.scale_absmax()[u / S::scale_quant::block], q_.scale_offset()) *
             mult_;
    else
      return dec_(q_.scales()[u]);
  }

  // Units u0 .. u0 + n - 1 into out[0 .. n), bit for bit as operator() reads them.
  void read(std::size_t u0, std::size_t n, float* out) const noexcept {
    if constexpr (dq_)
      for (std::size_t i = 0; i < n; ++i) out[i] = (*this)(u0 + i);
    else
      dec_.read(q_.scales().data() + u0, n, out);
  }

private:
  const qmatrix<S>& q_;
  float mult_;
  decoder dec_;
};

// Horizontal sum of the eight lane accumulators, in the one order both the scalar reference and
// the SIMD kernels use.
inline float lane_sum(const float* a) noexcept {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

// Writes the NT x Rows sums of row tile `tile` (rows past N dropped), plus bias, to Y (tokens x N)
// at tokens t0 ..: the common tail of the tiled kernels.
template <std::size_t Rows, std::size_t NT>
inline void store_tile_outputs(std::size_t rows, std::size_t tile, std::size_t t0, const float (*out)[Rows],
                               std::span<float> y, std::span<const float> bias) noexcept {
  const std::size_t r0 = tile * Rows, nr = std::min(Rows, rows - r0);
  for (std::size_t t = 0; t < NT; ++t)
    for (std::size_t r = 0; r < nr; ++r)
      y[(t0 + t) * rows + r0 + r] = bias.empty() ? out[t][r] : out[t][r] + bias[r0 + r];
}

// The inverse of store_tile_outputs without bias: tokens t0 .. t0 + NT - 1 of tile `tile` from y
// into out, rows past the matrix 0 (the sums so far of a kernel that takes a row in column runs).
template <std::size_t Rows, std::size_t NT>
inline void load_tile_outputs(std::size_t rows, std::size_t tile, std::size_t t0, std::span<const float> y,
                              float (*out)[Rows]) noexcept {
  const std::size_t r0 = tile * Rows, nr = std::min(Rows, rows - r0);
  for (std::size_t t = 0; t < NT; ++t)
    for (std::size_t r = 0; r < Rows; ++r) out[t][r] = r < nr ? y[(t0 + t) * rows + r0 + r] : 0.0f;
}

// The place (in items) of item i (a block of codes, or a scale unit's row of scales) of tile t of
// `tiles` tiles of `items` items each, in a layout stored in column runs of `run` items: every tile's
// items of a run, tile after tile, before the next run's; the last run shorter. run 0 (or one run
// covering the row): tile after tile.
constexpr std::size_t run_place(std::size_t t, std::size_t i, std::size_t items, std::size_t tiles,
                                std::size_t run) noexcept {
  if (run == 0) return t * items + i;
  const std::size_t r0 = i / run * run, n = std::min(run, items - r0);
  return r0 * tiles + t * n + (i - r0);
}

// Shared argument checks of the linear entry points (W is rows x cols).
inline void check_linear_shape(const char* fn, std::size_t rows, std::size_t cols, std::size_t x_size,
                               std::size_t tokens, std::size_t y_size, std::size_t bias_size) {
  if (rows == 0 || cols == 0)
    throw invalid_argument(std::string(fn) + ": W is empty (" + std::to_string(rows) + "x" + std::to_string(cols) +
                           ")");
  if (x_size != tokens * cols)
    throw invalid_argument(std::string(fn) + ": X has " + std::to_string(x_size) + " elements, expected tokens (" +
                           std::to_string(tokens) + ") x K (" + std::to_string(cols) + ")");
  if (y_size != tokens * rows)
    throw invalid_argument(std::string(fn) + ": Y has " + std::to_string(y_size) + " elements, expected tokens (" +
                           std::to_string(tokens) + ") x N (" + std::to_string(rows) + ")");
  if (bias_size != 0 && bias_size != rows)
    throw invalid_argument(std::string(fn) + ": bias has " + std::to_string(bias_size) +
                           " elements, expected 0 or N (" + std::to_string(rows) + ")");
}

// Shared checks of the LUT kernels on a packed matrix W (rows(), cols(), blocks()) and its
// activation tables A (tokens, blocks, cols, sized()): W not empty, A built for W's K and blocks
// and sized for its tokens, Y holding tokens x N outputs, and a bias of N values or none.
template <class Packed, class Tables>
void check_lut_call(const char* fn, const Packed& w, const Tables& a, std::size_t y_size, std::size_t bias_size) {
  if (w.rows() == 0) throw invalid_argument(std::string(fn) + ": W is empty");
  if (a.blocks != w.blocks() || a.cols != w.cols() || !a.sized())
    throw invalid_argument(std::string(fn) + ": the tables have " + std::to_string(a.blocks) +
                           " blocks for K = " + std::to_string(a.cols) + ", the matrix " + std::to_string(w.blocks()) +
                           " for K = " + std::to_string(w.cols()) +
                           (a.sized() ? "" : " (or the tables' sizes disagree)"));
  if (y_size != a.tokens * w.rows() || (bias_size != 0 && bias_size != w.rows()))
    throw invalid_argument(std::string(fn) + ": Y has " + std::to_string(y_size) + " elements and bias " +
                           std::to_string(bias_size) + ", expected " + std::to_string(a.tokens * w.rows()) +
                           " and 0 or " + std::to_string(w.rows()));
}

template <scheme S>
void check_linear(const char* fn, const qmatrix<S>& w, std::size_t x_size, std::size_t tokens, std::size_t y_size,
                  std::size_t bias_size) {
  check_linear_shape(fn, w.rows(), w.cols(), x_size, tokens, y_size, bias_size);
}

} // namespace lowbit::kernels
