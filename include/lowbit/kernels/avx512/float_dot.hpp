// The weight-only float path's panel products on 512-bit registers (AVX-512 F): the AVX2 kernel's
// K blocks and decoded panels (kernels/avx2/float_dot.hpp), whose 16-row columns are one zmm
// register each, on row tiles of two panels (32 rows), multiplied by up to float_token_block tokens
// at once. The tokens are first copied, per block, k-major (the block's tokens of one column
// adjacent), so that each k step is one load from each panel and one broadcast FMA per panel and
// token from a single pointer: 2 x float_token_block accumulators of 16 rows in registers, no
// horizontal sums. Up to avx2's row_max_tokens tokens the AVX2 row kernel runs (it decodes in
// registers, where the panel's transposes would not pay off). The float path is within a documented
// fp32 tolerance of the exact product, not bit-exact: sums run in another order than the AVX2
// kernel's.
#pragma once

#include "lowbit/kernels/avx512/ops.hpp"

#if LOWBIT_HAS_AVX512_BW

#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/avx2/float_dot.hpp"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <utility>

namespace lowbit::kernels::avx512 {

// Tokens a panel product multiplies at once: with the two panels of a row tile, 2 x 12
// accumulators of 16 rows, of the 32 registers.
inline constexpr std::size_t float_token_block = 12;
// Panels (of 16 rows) per row tile: each k step loads one column of each and multiplies it with
// every token's broadcast activation, 2 loads and 12 broadcasts per 24 FMAs. One panel by 24 tokens
// (1 + 24 loads per 24 FMAs) reached 88 % of this Zen 5's 512-bit FMA peak in L2, two by 11-14
// 96-99 % (bench/README.md, run 20).
inline constexpr std::size_t float_tile_panels = 2;
static_assert(float_tile_panels == 1 || float_tile_panels == 2, "panel_kernels holds tiles of 1 or 2 panels");

namespace detail {

// Token blocks: tokens split into ceil(tokens / float_token_block) blocks of near-equal size
// (sizes differ by at most one), so that no block is left with a few latency-bound tokens.
struct token_blocks {
  std::size_t count, base, extra; // blocks; each has base tokens, the first extra one more
  explicit token_blocks(std::size_t tokens) noexcept
      : count((tokens + float_token_block - 1) / float_token_block), base(tokens / count), extra(tokens % count) {}
  std::size_t begin(std::size_t b) const noexcept { return b * base + std::min(b, extra); }
  std::size_t size(std::size_t b) const noexcept { return base + (b < extra ? 1 : 0); }
};

// X (tokens x kx) copied block by block, k-major: block b's n tokens at xp + begin(b) * kx, column k
// of its token t at [k * n + t]. Tokens split across threads.
inline void pack_tokens(const float* x, std::size_t tokens, std::size_t kx, float* xp) {
  const token_blocks blocks(tokens);
  parallel_rows(tokens, tokens * kx, [&](std::size_t t_begin, std::size_t t_end) {
    for (std::size_t b = 0; b < blocks.count; ++b) {
      const std::size_t t0 = blocks.begin(b), n = blocks.size(b);
      float* out = xp + t0 * kx;
      for (std::size_t t = std::max(t0, t_begin); t < std::min(t0 + n, t_end); ++t) {
        const float* row = x + t * kx;
        for (std::size_t k = 0; k < kx; ++k) out[k * n + t - t0] = row[k];
      }
    }
  });
}

// y[t0 + t][r0 .. r0 + nr) (+)= panels (columns k0 .. k1) . X[t0 + t, k0 .. k1) for the T tokens of a
// block packed at xp (pack_tokens), on the first P panels of a row tile (nr <= 16 P): P x T
// accumulators of 16 rows, each k step P panel loads and P x T broadcast FMAs. first: the first K
// block (y is written, with the bias, rather than added to); rows past nr are masked off.
template <int P, int T>
void panel_tokens(const float* panel, const float* xp, std::size_t t0, std::size_t k0, std::size_t k1, std::size_t r0,
                  std::size_t nr, std::size_t rows, bool first, std::span<const float> bias, float* y) noexcept {
  constexpr std::size_t R = avx2::detail::panel_rows, KB = avx2::detail::k_block;
  static_assert(R == 16, "one zmm register per panel column");
  static_assert(P == 1 || P == 2);
  // Every loop over the accumulators is a fold over an index pack, unrolled whatever T (past 16,
  // GCC's unroll pragma of LOWBIT_UNROLL would leave a loop and the accumulators in memory).
  constexpr auto tokens = std::make_index_sequence<T>{};
  __m512 acc[P][T];
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    for (int p = 0; p < P; ++p) ((acc[p][I] = _mm512_setzero_ps()), ...);
  }
  (tokens);
  const float* xk = xp + k0 * T;
  const float* pk = panel;
  for (std::size_t k = k0; k < k1; ++k, xk += T, pk += R) {
    const __m512 w0 = _mm512_loadu_ps(pk);
    if constexpr (P == 1) {
      [&]<std::size_t... I>(std::index_sequence<I...>) LOWBIT_ALWAYS_INLINE {
        ((acc[0][I] = _mm512_fmadd_ps(w0, _mm512_set1_ps(xk[I]), acc[0][I])), ...);
      }
      (tokens);
    } else {
      const __m512 w1 = _mm512_loadu_ps(pk + R * KB);
      [&]<std::size_t... I>(std::index_sequence<I...>) LOWBIT_ALWAYS_INLINE {
        ((acc[0][I] = _mm512_fmadd_ps(w0, _mm512_set1_ps(xk[I]), acc[0][I]),
          acc[1][I] = _mm512_fmadd_ps(w1, _mm512_set1_ps(xk[I]), acc[1][I])),
         ...);
      }
      (tokens);
    }
  }
  LOWBIT_UNROLL
  for (int p = 0; p < P; ++p) {
    const std::size_t h = static_cast<std::size_t>(p) * R, n = nr > h ? std::min(R, nr - h) : 0;
    const auto m = static_cast<__mmask16>((1u << n) - 1);
    const __m512 b = first && !bias.empty() ? _mm512_maskz_loadu_ps(m, bias.data() + r0 + h) : _mm512_setzero_ps();
    float* y0 = y + t0 * rows + r0 + h;
    [&]<std::size_t... I>(std::index_sequence<I...>) LOWBIT_ALWAYS_INLINE {
      ((_mm512_mask_storeu_ps(y0 + I * rows, m,
                              _mm512_add_ps(acc[p][I], first ? b : _mm512_maskz_loadu_ps(m, y0 + I * rows)))),
       ...);
    }
    (tokens);
  }
}

using panel_fn = void (*)(const float*, const float*, std::size_t, std::size_t, std::size_t, std::size_t, std::size_t,
                          std::size_t, bool, std::span<const float>, float*) noexcept;

// panel_tokens<P, T> for T = 1 .. float_token_block, at index T - 1.
template <int P, std::size_t... I>
constexpr std::array<panel_fn, sizeof...(I)> panel_table(std::index_sequence<I...>) noexcept {
  return {&panel_tokens<P, static_cast<int>(I) + 1>...};
}
// [P - 1][T - 1]: P panels (a row tile's, or the first of a last tile of at most 16 rows), T tokens.
inline constexpr std::array<std::array<panel_fn, float_token_block>, 2> panel_kernels = {
    panel_table<1>(std::make_index_sequence<float_token_block>{}),
    panel_table<2>(std::make_index_sequence<float_token_block>{})};

} // namespace detail

// Floats of scratch linear_float needs for W and tokens x kx activations: avx2::linear_float's, then
// the k-major copy of X.
template <scheme S>
std::size_t float_scratch_total(const qmatrix<S>& w, std::size_t tokens, std::size_t kx) noexcept {
  return avx2::float_scratch_total<float_tile_panels>(w) + (tokens > avx2::detail::row_max_tokens ? tokens * kx : 0);
}

// Y = X * dequantize(W)^T (+ bias), as avx2::linear_float (same arguments), with scratch holding
// float_scratch_total(w, tokens, kx) floats: up to row_max_tokens tokens the AVX2 row kernel, more
// the 512-bit panel products over the k-major copy of X. A base-3 byte >= 243 throws lowbit::error
// (y is then unspecified).
template <scheme S>
void linear_float(const qmatrix<S>& w, const float* x, std::size_t tokens, std::size_t kx, std::span<float> y,
                  std::span<const float> bias, float* scratch) {
  if (tokens <= avx2::detail::row_max_tokens) {
    avx2::linear_float(w, x, tokens, kx, y, bias, scratch);
    return;
  }
  const std::size_t rows = w.rows();
  const avx2::detail::float_rows<S> decode(w, scratch);
  float* xp = scratch + avx2::float_scratch_total<float_tile_panels>(w);
  detail::pack_tokens(x, tokens, kx, xp);
  const detail::token_blocks blocks(tokens);
  avx2::detail::for_each_panel<float_tile_panels>(
      w, decode, kx, rows * w.cols() * tokens, scratch + avx2::detail::float_columns_size(w),
      [&](const float* panel, std::size_t k0, std::size_t k1, std::size_t r0, std::size_t nr, bool first) {
        const auto& kernels = detail::panel_kernels[nr > avx2::detail::panel_rows ? 1 : 0];
        for (std::size_t b = 0; b < blocks.count; ++b) {
          const std::size_t t0 = blocks.begin(b);
          kernels[blocks.size(b) - 1](panel, xp + t0 * kx, t0, k0, k1, r0, nr, rows, first, bias, y.data());
        }
      });
}

} // namespace lowbit::kernels::avx512

#endif
