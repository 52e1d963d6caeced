// AVX2 base-3 LUT kernel and table builder (kernels/ternary_lut.hpp has the algorithm and the
// layout). Per tile of 32 rows and pair of quads: one 32-byte load of signs, then per quad and half
// one 32-byte load of indices; per token two 32-byte table loads, two byte shuffles (64 triads of
// 16 rows), the signs applied by sign_epi8 (the sign bytes shifted left by one per shuffle, or 1 so
// that no byte is zero), and the triads c and c + 2 interleaved (unpack) and added in int16 by a
// maddubs with ones. Per block: the two lanes (triads c0 + 0/2 and c0 + 1/3) added, widened to
// int32, and one fp32 fma per row with the weight scale times the table scale. Up to
// ternary_tokens tokens share each load of the weights; they are prefetched like the other LUT
// kernels' (LOWBIT_LUT_PREFETCH).
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/avx2/codebook_lut.hpp"
#include "lowbit/kernels/avx2/lut_dot.hpp"
#include "lowbit/kernels/ternary_lut.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#ifndef LOWBIT_TERNARY_TOKENS
#define LOWBIT_TERNARY_TOKENS 2
#endif

namespace lowbit::kernels::avx2 {

inline constexpr std::size_t ternary_tokens = LOWBIT_TERNARY_TOKENS;
static_assert(ternary_tokens >= 1 && ternary_tokens <= 4, "LOWBIT_TERNARY_TOKENS must be 1-4");

// build_ternary_table_row with AVX2, bit for bit (q must be 32-byte aligned, as the rows of
// ternary_activations are): per block, its 96 activations widened to fp32 (zeros past cols) and
// checked for NaN / inf 8 at a time; per triad, the 16 entries in two vectors as
// (x0 w0 + x1 w1) + x2 w2 with the last two steps as fma (the products by -1, 0, 1 are exact, so the
// fma rounds the same sums), then like the codebook builder: times 127 / m, then
// detail::store_rounded_i8.
template <activation_type T>
void build_ternary_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale) noexcept {
  __m256 w[3][2];
  for (std::size_t l = 0; l < 3; ++l)
    for (std::size_t h = 0; h < 2; ++h) w[l][h] = _mm256_load_ps(ternary_entry_weights.v[l] + 8 * h);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  alignas(32) float xs[ternary_block_cols];
  alignas(32) float t[ternary_block_triads][16];
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* xp = detail::block_floats(x, cols, b * ternary_block_cols, ternary_block_cols, xs);
    __m256 nonfinite = _mm256_setzero_ps(); // !(|x| < inf): NaN and inf both set it
    LOWBIT_UNROLL
    for (std::size_t c = 0; c < ternary_block_cols; c += 8)
      nonfinite =
          _mm256_or_ps(nonfinite, _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(xp + c), abs_mask), inf, _CMP_NLT_UQ));
    // Four running maxima (max is exact in any order), two triads per step: the block's 64 max
    // steps in four chains of 16 rather than one of 64 (22.2 -> 19.5 us at K = 8192 by itself).
    __m256 mx[2][2] = {{_mm256_setzero_ps(), _mm256_setzero_ps()}, {_mm256_setzero_ps(), _mm256_setzero_ps()}};
    for (std::size_t j0 = 0; j0 < ternary_block_triads; j0 += 2) {
      LOWBIT_UNROLL
      for (std::size_t k = 0; k < 2; ++k) {
        const std::size_t j = j0 + k;
        const __m256 x0 = _mm256_broadcast_ss(xp + 3 * j), x1 = _mm256_broadcast_ss(xp + 3 * j + 1),
                     x2 = _mm256_broadcast_ss(xp + 3 * j + 2);
        LOWBIT_UNROLL
        for (std::size_t h = 0; h < 2; ++h) {
          const __m256 e = _mm256_fmadd_ps(w[2][h], x2, _mm256_fmadd_ps(w[1][h], x1, _mm256_mul_ps(w[0][h], x0)));
          _mm256_store_ps(t[j] + 8 * h, e);
          mx[k][h] = _mm256_max_ps(mx[k][h], _mm256_and_ps(e, abs_mask));
        }
      }
    }
    const __m256 amax = _mm256_max_ps(_mm256_max_ps(mx[0][0], mx[0][1]), _mm256_max_ps(mx[1][0], mx[1][1]));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const bool bad = _mm256_movemask_ps(nonfinite) != 0;
    const float m = bad ? 0.0f : _mm_cvtss_f32(m4);
    std::int8_t* qb = q + b * ternary_block_triads * 16;
    if (bad || !std::isfinite(m) || !std::isfinite(127.0f / m)) {
      std::fill(qb, qb + ternary_block_triads * 16, std::int8_t{0});
      scale[b] = bad || !std::isfinite(m) ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      continue;
    }
    const __m256 inv = _mm256_set1_ps(127.0f / m);
    for (std::size_t j = 0; j < ternary_block_triads; j += 2) {
      __m256 p[4];
      LOWBIT_UNROLL
      for (std::size_t k = 0; k < 4; ++k) p[k] = _mm256_mul_ps(_mm256_load_ps(t[j + k / 2] + 8 * (k % 2)), inv);
      detail::store_rounded_i8(p, qb + j * 16);
    }
    scale[b] = m / 127.0f;
  }
}

template <activation_type T>
void build_ternary_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, ternary_activations& out) {
  build_ternary_tables_by_row(x, tokens, cols, out, build_ternary_table_row<T>);
}

namespace detail {

// Tokens t0 .. t0 + NT - 1 of one tile; out receives NT x 32 sums (before bias).
template <ternary_lut_scheme S, std::size_t NT>
void ternary_tile(const ternary_lut_matrix<S>& w, const ternary_activations& a, std::size_t tile, std::size_t t0,
                  float (*out)[ternary_tile_rows]) noexcept {
  const __m256i nib = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi8(1);
  __m256 acc[NT][4];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = _mm256_setzero_ps();
  const std::int8_t* q[NT];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) q[t] = a.q_row(t0 + t);
  const std::uint8_t* cp = w.tile_codes(tile);
  [[maybe_unused]] const bool first = t0 == 0; // later tokens find the tile's codes in cache
  std::size_t unit = ~std::size_t{0};
  [[maybe_unused]] const std::size_t s_ahead =
      side_ahead(lut_prefetch, w.units() * ternary_tile_rows * sizeof(float), w.blocks() * ternary_block_bytes);
  __m256 ws[4] = {};
  for (std::size_t b = 0; b < w.blocks(); ++b) {
    __m256i isum[NT][4]; // per half: rows 0-7 and 8-15, lanes = triads c0 + 0/2 and c0 + 1/3
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) isum[t][0] = isum[t][1] = isum[t][2] = isum[t][3] = _mm256_setzero_si256();
    if constexpr (lut_prefetch != 0)
      if (first) prefetch_l2<ternary_block_bytes>(cp, lut_prefetch);
    LOWBIT_UNROLL
    for (std::size_t pair = 0; pair < ternary_block_triads / 8; ++pair, cp += ternary_pair_bytes) {
      __m256i sg = _mm256_load_si256(reinterpret_cast<const __m256i*>(cp));
      LOWBIT_UNROLL
      for (std::size_t qq = 0; qq < 2; ++qq) {
        const std::size_t g0 = (b * ternary_block_triads + 8 * pair + 4 * qq) * 16;
        LOWBIT_UNROLL
        for (std::size_t h = 0; h < 2; ++h) {
          const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(cp + 32 + 64 * qq + 32 * h));
          const __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
          const __m256i slo = _mm256_or_si256(sg, ones);
          sg = _mm256_slli_epi16(sg, 1);
          const __m256i shi = _mm256_or_si256(sg, ones);
          sg = _mm256_slli_epi16(sg, 1);
          LOWBIT_UNROLL
          for (std::size_t t = 0; t < NT; ++t) {
            const __m256i t01 = _mm256_load_si256(reinterpret_cast<const __m256i*>(q[t] + g0));
            const __m256i t23 = _mm256_load_si256(reinterpret_cast<const __m256i*>(q[t] + g0 + 32));
            const __m256i p = _mm256_sign_epi8(_mm256_shuffle_epi8(t01, lo), slo);
            const __m256i r = _mm256_sign_epi8(_mm256_shuffle_epi8(t23, hi), shi);
            isum[t][2 * h] = _mm256_add_epi16(isum[t][2 * h], _mm256_maddubs_epi16(ones, _mm256_unpacklo_epi8(p, r)));
            isum[t][2 * h + 1] =
                _mm256_add_epi16(isum[t][2 * h + 1], _mm256_maddubs_epi16(ones, _mm256_unpackhi_epi8(p, r)));
            LOWBIT_OPAQUE(isum[t][2 * h]); // running sums, not a tree that spills (config.hpp)
            LOWBIT_OPAQUE(isum[t][2 * h + 1]);
          }
        }
      }
    }
    const std::size_t u = w.unit_of_block(b);
    if (u != unit) {
      unit = u;
      if constexpr (side_prefetch)
        if (first && lut_prefetch != 0) prefetch_l2<ternary_tile_rows * sizeof(float)>(w.tile_scales(tile, u), s_ahead);
      LOWBIT_UNROLL
      for (std::size_t i = 0; i < 4; ++i) ws[i] = _mm256_loadu_ps(w.tile_scales(tile, u) + 8 * i);
    }
    float ts[NT];
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) ts[t] = a.scale_row(t0 + t)[b];
    add_block_sums<NT>(isum, ws, ts, acc);
  }
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t)
    for (std::size_t i = 0; i < 4; ++i) _mm256_storeu_ps(out[t] + 8 * i, acc[t][i]);
}

} // namespace detail

// Y = X * W^T (+ bias) on tables built by build_ternary_tables; tiles split across threads.
template <ternary_lut_scheme S>
void linear_ternary_lut(const ternary_lut_matrix<S>& w, const ternary_activations& a, std::span<float> y,
                        std::span<const float> bias) {
  check_lut_call("avx2::linear_ternary_lut", w, a, y.size(), bias.size());
  run_lut_tiles<ternary_tile_rows, ternary_tokens>(w, a.tokens, a.row_entries(), y, bias,
                                                   [&](auto nt, std::size_t tile, std::size_t t, auto* out) {
                                                     detail::ternary_tile<S, decltype(nt)::value>(w, a, tile, t, out);
                                                   });
}

namespace detail {
// linear_ternary_lut_token with the table builder `builder` (a build_ternary_table_row) and the
// tile kernel `Tile` (a tile kernel of either layout).
template <ternary_lut_scheme S, ternary_lut_layout L, activation_type T, class Builder, class Tile>
void ternary_token(const ternary_lut_matrix<S, L>& w, std::span<const T> x, std::span<float> y,
                   std::span<const float> bias, std::vector<ternary_activations>& tables, Builder builder,
                   Tile&& tile) {
  check_linear_shape("linear_ternary_lut_token", w.rows(), w.cols(), x.size(), 1, y.size(), bias.size());
  run_lut_token<ternary_tile_rows>(
      w, y, bias, tables, [&](ternary_activations& a) { build_ternary_tables_by_row(x, 1, w.cols(), a, builder, 0); },
      tile);
}
} // namespace detail

// y = W * x (+ bias) for one token x, bit-identical to build_ternary_tables and
// linear_ternary_lut, each thread building its own copy of the tables (run_lut_token). tables: one
// per thread, kept across calls (sized on first use).
template <ternary_lut_scheme S, activation_type T>
void linear_ternary_lut_token(const ternary_lut_matrix<S>& w, std::span<const T> x, std::span<float> y,
                              std::span<const float> bias, std::vector<ternary_activations>& tables) {
  detail::ternary_token(w, x, y, bias, tables, build_ternary_table_row<T>,
                        [&](const ternary_activations& a, std::size_t tile, auto* out) {
                          detail::ternary_tile<S, 1>(w, a, tile, 0, out);
                        });
}

} // namespace lowbit::kernels::avx2
