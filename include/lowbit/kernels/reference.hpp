// Scalar references of the linear layer Y = X * W^T (+ bias), the executable specs the SIMD
// kernels are tested against. X is tokens x K, W is N x K (row-major, K the reduction axis), Y
// is tokens x N.
// - linear: float W; sums accumulated in double and rounded once (also what quantizer tests
//   measure error with).
// - linear_dequantized: the weight-only float path, the exact product with dequantize(W).
// - linear_int8: the integer-dot path, bit for bit: activations quantized per block
//   (kernels/activations.hpp), weights as int8 values (kernels/layout.hpp), and the SIMD lane
//   structure written out: a span (the codes of 32 stored bytes) is chunks_per_span chunks of 32 kernel
//   positions; lane l sums positions 4l..4l+3 of every chunk of the span in int32, then
//   acc[l] = fma(float(isum), weight_scale * activation_scale, acc[l]) with the scales of the
//   lane's codes; Y = lane_sum(acc) + bias.
// - linear_int8_tiled: the integer-dot GEMM on row-interleaved tiles (kernels/int8_tiles.hpp),
//   bit for bit: the same int8 products, summed per segment of lanes sharing both scales, and one
//   fp32 accumulator per row and token, computed from the qmatrix itself.
// - linear_lut: the LUT path (kernels/lut.hpp), bit for bit, computed from the qmatrix itself
//   (not from pack_for_lut's layout): each code's plane pattern split into bit planes, each plane's 4-bit
//   index looked up in the token's int8 tables.
// - linear_codebook_lut: the codebook LUT path (kernels/codebook_lut.hpp), bit for bit, computed
//   from the qmatrix itself: each weight's code looked up in its column's table.
// - linear_ternary_lut: the base-3 LUT path for ternary weights (kernels/ternary_lut.hpp), bit for
//   bit, computed from the qmatrix itself: each triad's pattern looked up (or its negation's).
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/codebook_lut.hpp"
#include "lowbit/kernels/int8_tiles.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/kernels/lut.hpp"
#include "lowbit/kernels/ternary_lut.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit::reference {

inline void linear(std::span<const float> x, std::size_t tokens, std::span<const float> w, std::size_t rows,
                   std::size_t cols, std::span<float> y, std::span<const float> bias = {}) {
  if (x.size() != tokens * cols) detail::throw_size_mismatch("reference::linear: X", x.size(), tokens * cols);
  if (w.size() != rows * cols) detail::throw_size_mismatch("reference::linear: W", w.size(), rows * cols);
  if (y.size() != tokens * rows) detail::throw_size_mismatch("reference::linear: Y", y.size(), tokens * rows);
  if (!bias.empty() && bias.size() != rows) detail::throw_size_mismatch("reference::linear: bias", bias.size(), rows);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t n = 0; n < rows; ++n) {
      double acc = bias.empty() ? 0.0 : bias[n];
      for (std::size_t k = 0; k < cols; ++k) acc += static_cast<double>(x[t * cols + k]) * w[n * cols + k];
      y[t * rows + n] = static_cast<float>(acc);
    }
}

inline std::vector<float> linear(std::span<const float> x, std::size_t tokens, std::span<const float> w,
                                 std::size_t rows, std::size_t cols, std::span<const float> bias = {}) {
  std::vector<float> y(tokens * rows);
  linear(x, tokens, w, rows, cols, y, bias);
  return y;
}

// Y = X * dequantize(W)^T (+ bias), accumulated in double.
template <scheme S, kernels::activation_type T = float>
void linear_dequantized(std::span<const T> x, std::size_t tokens, const qmatrix<S>& w, std::span<float> y,
                        std::span<const float> bias = {}) {
  kernels::check_linear("reference::linear_dequantized", w, x.size(), tokens, y.size(), bias.size());
  std::vector<float> xf(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) xf[i] = lowbit::detail::widen(x[i]);
  linear(xf, tokens, dequantize(w), w.rows(), w.cols(), y, bias);
}

namespace detail {

// Row r of W as int8 values (minus the zero point) in natural code order, padded with zeros to
// whole spans: out holds int8_row_size(w) values; codes: w.padded_cols() bytes of scratch.
template <kernels::int8_dot_scheme S>
std::size_t int8_row_size(const qmatrix<S>& w) noexcept {
  return kernels::chunk_geometry<S>::spans(w.cols()) * kernels::chunk_geometry<S>::span;
}

template <kernels::int8_dot_scheme S>
void int8_weight_row(const qmatrix<S>& w, std::size_t r, std::span<std::uint8_t> codes, std::int8_t* out) {
  using E = typename S::element;
  const std::size_t pc = w.padded_cols();
  unpack_codes(S::layout, S::code_bits, w.row_codes(r), codes);
  std::fill(out + pc, out + int8_row_size(w), std::int8_t{0});
  for (std::size_t c = 0; c < pc; ++c) {
    int v;
    if constexpr (S::layout != code_layout::base3 && S::code_bits == 8)
      v = static_cast<std::int8_t>(codes[c]);
    else
      v = kernels::int8_table<E>::get().v[codes[c] & 15u];
    if constexpr (S::has_zero_point) v -= w.zero_at(r, c);
    out[c] = static_cast<std::int8_t>(v);
  }
}

// Row r of Y for every token of a, from the row's int8 values wv (int8_weight_row).
template <kernels::int8_dot_scheme S>
void int8_row_outputs(const qmatrix<S>& w, std::size_t r, const std::int8_t* wv, const kernels::int8_activations& a,
                      const kernels::scale_reader<S>& ws, std::span<float> y, std::span<const float> bias) {
  using G = kernels::chunk_geometry<S>;
  const std::size_t rows = w.rows(), cols = w.cols(), spans = G::spans(cols), pc = w.padded_cols();
  for (std::size_t t = 0; t < a.tokens; ++t) {
    const std::int8_t* xq = a.q_row(t);
    float acc[8] = {};
    for (std::size_t sp = 0; sp < spans; ++sp) {
      const std::size_t c0 = sp * G::span;
      for (std::size_t l = 0; l < 8; ++l) {
        std::int32_t isum = 0;
        for (std::size_t h = 0; h < G::chunks_per_span; ++h)
          for (std::size_t i = 0; i < 4; ++i) {
            const std::size_t p = h * kernels::chunk + 4 * l + i;
            isum += std::int32_t{wv[c0 + G::code_at(p)]} * xq[c0 + p];
          }
        const std::size_t c = c0 + G::lane_code(l);
        const float sc = ws(S::scale_index(r, std::min(c, pc - 1), cols)) * a.scale_row(t)[c / G::act_block];
        acc[l] = std::fma(static_cast<float>(isum), sc, acc[l]);
      }
    }
    float out = kernels::lane_sum(acc);
    if (!bias.empty()) out += bias[r];
    y[t * rows + r] = out;
  }
}

} // namespace detail

// The integer-dot path (see the header comment). Bit-exact spec of kernels::linear_int8.
template <kernels::int8_dot_scheme S, kernels::activation_type T = float>
void linear_int8(std::span<const T> x, std::size_t tokens, const qmatrix<S>& w, std::span<float> y,
                 std::span<const float> bias = {}) {
  kernels::check_linear("reference::linear_int8", w, x.size(), tokens, y.size(), bias.size());
  kernels::int8_activations a;
  kernels::quantize_activations<S>(x, tokens, w.cols(), a);
  const kernels::scale_reader<S> ws(w, kernels::int8_value_mult<S>());
  std::vector<std::uint8_t> codes(w.padded_cols());
  std::vector<std::int8_t> wv(detail::int8_row_size(w));
  for (std::size_t r = 0; r < w.rows(); ++r) {
    detail::int8_weight_row(w, r, codes, wv.data());
    detail::int8_row_outputs(w, r, wv.data(), a, ws, y, bias);
  }
}

// The integer-dot GEMM on tiles (see kernels/int8_tiles.hpp). Bit-exact spec of
// kernels::avx2::linear_int8_tiled and kernels::scalar::linear_int8_tiled.
template <kernels::int8_tiles_scheme S, kernels::activation_type T = float>
void linear_int8_tiled(std::span<const T> x, std::size_t tokens, const qmatrix<S>& w, std::span<float> y,
                       std::span<const float> bias = {}) {
  using G = kernels::chunk_geometry<S>;
  using TG = kernels::tile_geometry<S>;
  kernels::check_linear("reference::linear_int8_tiled", w, x.size(), tokens, y.size(), bias.size());
  const std::size_t rows = w.rows(), cols = w.cols(), spans = G::spans(cols), pc = w.padded_cols();
  kernels::int8_activations a;
  kernels::quantize_activations<S>(x, tokens, cols, a);
  const kernels::scale_reader<S> ws(w, kernels::int8_value_mult<S>());
  std::vector<std::uint8_t> codes(pc);
  std::vector<std::int8_t> wv(detail::int8_row_size(w));
  for (std::size_t r = 0; r < rows; ++r) {
    detail::int8_weight_row(w, r, codes, wv.data());
    for (std::size_t t = 0; t < tokens; ++t) {
      const std::int8_t* xq = a.q_row(t);
      float acc = 0.0f;
      for (std::size_t sp = 0; sp < spans; ++sp) {
        const std::size_t c0 = sp * G::span;
        for (std::size_t g = 0; g < TG::segments; ++g) {
          std::int32_t isum = 0;
          for (std::size_t h = 0; h < G::chunks_per_span; ++h)
            for (std::size_t l = g * TG::segment_lanes; l < (g + 1) * TG::segment_lanes; ++l)
              for (std::size_t i = 0; i < 4; ++i) {
                const std::size_t p = h * kernels::chunk + 4 * l + i;
                isum += std::int32_t{wv[c0 + G::code_at(p)]} * xq[c0 + p];
              }
          const std::size_t c = c0 + G::lane_code(g * TG::segment_lanes);
          const float sc = ws(S::scale_index(r, std::min(c, pc - 1), cols)) * a.scale_row(t)[c / G::act_block];
          acc = std::fma(static_cast<float>(isum), sc, acc);
        }
      }
      y[t * rows + r] = bias.empty() ? acc : acc + bias[r];
    }
  }
}

// The LUT path (see kernels/lut.hpp). Bit-exact spec of the LUT kernels.
template <kernels::lut_scheme S, kernels::activation_type T = float>
void linear_lut(std::span<const T> x, std::size_t tokens, const qmatrix<S>& w, std::span<float> y,
                std::span<const float> bias = {}) {
  using tr = kernels::lut_traits<S>;
  using kernels::lut_block;
  using kernels::lut_group;
  kernels::check_linear("reference::linear_lut", w, x.size(), tokens, y.size(), bias.size());
  const std::size_t rows = w.rows(), cols = w.cols(), pc = w.padded_cols();
  const std::size_t blocks = (cols + lut_block - 1) / lut_block;
  kernels::lut_activations a;
  kernels::build_lut_tables(x, tokens, cols, a);
  // Where the LUT packing keeps fp16 scales, the tensor scale and the table multiplier go to the
  // token's side as g; elsewhere they are folded into the fp32 scales and g = 1.
  const float mult = kernels::int8_table<typename S::element>::get().mult;
  const kernels::scale_reader<S> sr(w, mult);
  const float g = tr::half_scales ? w.tensor_scale() * mult : 1.0f;
  std::vector<std::uint8_t> codes(pc);
  for (std::size_t r = 0; r < rows; ++r) {
    unpack_codes(S::layout, S::code_bits, w.row_codes(r), codes);
    for (std::size_t c = 0; c < pc; ++c)
      if (codes[c] >= tr::valid_codes) throw error("reference::linear_lut: undefined code");
    for (std::size_t t = 0; t < tokens; ++t) {
      const std::int8_t* q = a.q_row(t);
      float acc = 0.0f;
      for (std::size_t b = 0; b < blocks; ++b) {
        std::int32_t isum = 0;
        for (std::size_t j = 0; j < kernels::lut_tables_per_block; ++j)
          for (std::size_t i = 0; i < tr::planes; ++i) {
            unsigned idx = 0;
            for (std::size_t l = 0; l < lut_group; ++l) {
              const std::size_t c = b * lut_block + j * lut_group + l;
              const unsigned p = c < pc ? tr::dec.pattern[codes[c]] : 0u; // plane bits 0 past the row
              idx |= (p >> i & 1u) << l;
            }
            isum += tr::dec.a[i] * q[(b * kernels::lut_tables_per_block + j) * 16 + idx];
          }
        const std::size_t c0 = std::min(b * lut_block, pc - 1), su = S::scale_index(r, c0, cols);
        float ws;
        if constexpr (tr::half_scales)
          ws = fp16::decode(w.scales()[su]);
        else
          ws = sr(su);
        const float sg = a.scale_row(t)[b] * g, xs = a.xsum_row(t)[b], f = static_cast<float>(isum);
        float v;
        if constexpr (S::has_zero_point)
          v = std::fma(f, sg, ((tr::k - static_cast<float>(w.zero_at(r, c0))) * g) * xs);
        else if constexpr (tr::k != 0.0f)
          v = std::fma(f, sg, (tr::k * g) * xs);
        else
          v = f * sg;
        acc = std::fma(v, ws, acc);
      }
      y[t * rows + r] = bias.empty() ? acc : acc + bias[r];
    }
  }
}

// The codebook LUT path (see kernels/codebook_lut.hpp). Bit-exact spec of its kernels.
template <kernels::codebook_lut_scheme S, kernels::activation_type T = float>
void linear_codebook_lut(std::span<const T> x, std::size_t tokens, const qmatrix<S>& w, std::span<float> y,
                         std::span<const float> bias = {}) {
  using tr = kernels::codebook_lut_traits<S>;
  kernels::check_linear("reference::linear_codebook_lut", w, x.size(), tokens, y.size(), bias.size());
  const std::size_t rows = w.rows(), cols = w.cols(), pc = w.padded_cols();
  kernels::codebook_activations a;
  kernels::build_codebook_tables<S>(x, tokens, cols, a, (pc + tr::block - 1) / tr::block);
  const kernels::scale_reader<S> sr(w);
  std::vector<std::uint8_t> codes(pc);
  for (std::size_t r = 0; r < rows; ++r) {
    unpack_codes(S::layout, S::code_bits, w.row_codes(r), codes);
    for (std::size_t t = 0; t < tokens; ++t) {
      const std::int8_t* q = a.q_row(t);
      float acc = 0.0f;
      for (std::size_t b = 0; b < a.blocks; ++b) {
        std::int32_t isum = 0;
        for (std::size_t c = b * tr::block; c < std::min((b + 1) * tr::block, pc); ++c)
          isum += q[c * 16 + codes[c]]; // columns past K: entries 0
        const float ws = sr(S::scale_index(r, std::min(b * tr::block, pc - 1), cols));
        acc = std::fma(static_cast<float>(isum), ws * a.scale_row(t)[b], acc);
      }
      y[t * rows + r] = bias.empty() ? acc : acc + bias[r];
    }
  }
}

// The base-3 LUT path for ternary weights (see kernels/ternary_lut.hpp). Bit-exact spec of its
// kernels.
template <kernels::ternary_lut_scheme S, kernels::activation_type T = float>
void linear_ternary_lut(std::span<const T> x, std::size_t tokens, const qmatrix<S>& w, std::span<float> y,
                        std::span<const float> bias = {}) {
  kernels::check_linear("reference::linear_ternary_lut", w, x.size(), tokens, y.size(), bias.size());
  const std::size_t rows = w.rows(), cols = w.cols(), pc = w.padded_cols();
  kernels::ternary_activations a;
  kernels::build_ternary_tables(x, tokens, cols, a);
  const kernels::scale_reader<S> sr(w);
  std::vector<std::uint8_t> codes(pc);
  for (std::size_t r = 0; r < rows; ++r) {
    unpack_codes(S::layout, S::code_bits, w.row_codes(r), codes);
    for (std::size_t c = 0; c < cols; ++c)
      if (codes[c] > 2) throw error("reference::linear_ternary_lut: row " + std::to_string(r) + " holds code 3");
    for (std::size_t t = 0; t < tokens; ++t) {
      const std::int8_t* q = a.q_row(t);
      float acc = 0.0f;
      for (std::size_t b = 0; b < a.blocks; ++b) {
        std::int32_t isum = 0;
        for (std::size_t j = b * kernels::ternary_block_triads; j < (b + 1) * kernels::ternary_block_triads; ++j) {
          unsigned n = 0; // the triad's pattern in base 3 (0 weights past K)
          for (std::size_t l = 0; l < 3; ++l) n = 3 * n + (3 * j + l < cols ? codes[3 * j + l] : 1u);
          isum += n <= 13 ? q[j * 16 + n] : -q[j * 16 + (26 - n)];
        }
        const float ws = sr(S::scale_index(r, std::min(b * kernels::ternary_block_cols, cols - 1), cols));
        acc = std::fma(static_cast<float>(isum), ws * a.scale_row(t)[b], acc);
      }
      y[t * rows + r] = bias.empty() ? acc : acc + bias[r];
    }
  }
}

} // namespace lowbit::reference
