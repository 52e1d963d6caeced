// AVX2 codebook LUT kernel and table builder (kernels/codebook_lut.hpp has the algorithm and the
// layout). Per tile of 32 rows and quad of 4 columns: two 32-byte code loads, and per token two
// 32-byte table loads shared by both halves of the tile, four byte shuffles (64 products of 16
// rows each), and the products of columns c and c + 2 interleaved (unpack) and added in int16 by a
// maddubs with ones. Per block: the two lanes (columns c0 + 0/2 and c0 + 1/3) added, widened to
// int32, and one fp32 fma per row with the weight scale times the table scale. Up to
// codebook_tokens tokens share each load of the codes; codes are prefetched like the bit-plane
// LUT kernel's (LOWBIT_LUT_PREFETCH).
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/avx2/lut_dot.hpp"
#include "lowbit/kernels/avx2/scale_decode.hpp"
#include "lowbit/kernels/codebook_lut.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#ifndef LOWBIT_CODEBOOK_TOKENS
#define LOWBIT_CODEBOOK_TOKENS 2
#endif

namespace lowbit::kernels::avx2 {

inline constexpr std::size_t codebook_tokens = LOWBIT_CODEBOOK_TOKENS;
static_assert(codebook_tokens >= 1 && codebook_tokens <= 4, "LOWBIT_CODEBOOK_TOKENS must be 1-4");

namespace detail {

// The 32 values of p, rounded in the current (nearest-even) mode like std::nearbyint and narrowed
// with saturating packs into dst (32-byte aligned), in order. The callers' values lie within
// 127 * (1 + 2^-23) of zero (entries times 127 / max|entry|), so the specs' clamp to [-127, 127]
// never binds and one conversion per vector is clamp(nearbyint(p), -127, 127); no NaN reaches it
// (the builders zero a block holding one).
LOWBIT_ALWAYS_INLINE inline void store_rounded_i8(const __m256 (&p)[4], std::int8_t* dst) noexcept {
  __m256i i[4];
  LOWBIT_UNROLL
  for (std::size_t k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(p[k]);
  // packs work per 128-bit lane: (a0 b0 a1 b1) x 4 bytes, then put back in order.
  const __m256i b8 = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
  _mm256_store_si256(reinterpret_cast<__m256i*>(dst),
                     _mm256_permutevar8x32_epi32(b8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// The end of a block in the 32-row tile kernels (codebook, base 3): per token, the int16 sums of
// each half (lanes: columns or triads c0 + 0/2 and c0 + 1/3) added across lanes, widened, and
// acc += sums * (weight scale * table scale ts[t]).
template <std::size_t NT>
LOWBIT_ALWAYS_INLINE inline void add_block_sums(const __m256i (&isum)[NT][4], const __m256 (&ws)[4],
                                                const float (&ts)[NT], __m256 (&acc)[NT][4]) noexcept {
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) {
    const __m256 tsv = _mm256_set1_ps(ts[t]);
    LOWBIT_UNROLL
    for (std::size_t h = 0; h < 2; ++h) {
      // lane 0: rows 0-7 of the half, lane 1: rows 8-15, both lanes' columns added.
      const __m256i s = _mm256_add_epi16(_mm256_permute2x128_si256(isum[t][2 * h], isum[t][2 * h + 1], 0x20),
                                         _mm256_permute2x128_si256(isum[t][2 * h], isum[t][2 * h + 1], 0x31));
      const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
      const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1)));
      acc[t][2 * h] = _mm256_fmadd_ps(f0, _mm256_mul_ps(ws[2 * h], tsv), acc[t][2 * h]);
      acc[t][2 * h + 1] = _mm256_fmadd_ps(f1, _mm256_mul_ps(ws[2 * h + 1], tsv), acc[t][2 * h + 1]);
    }
  }
}

} // namespace detail

// build_codebook_table_row with AVX2, bit for bit (q must be 32-byte aligned, as the rows of
// codebook_activations are): per column, the 16 products in two vectors,
// times 127 / m, then detail::store_rounded_i8.
template <scheme S, activation_type T>
void build_codebook_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale) noexcept {
  using tr = codebook_lut_traits<S>;
  constexpr std::size_t B = tr::block;
  const __m256 v0 = _mm256_loadu_ps(tr::values.data()), v1 = _mm256_loadu_ps(tr::values.data() + 8);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  alignas(32) float xb[B];
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* xp = detail::block_floats(x, cols, b * B, B, xb);
    __m256 amax = _mm256_setzero_ps(), nonfinite = _mm256_setzero_ps();
    for (std::size_t c = 0; c < B; c += 8) {
      const __m256 a = _mm256_and_ps(_mm256_loadu_ps(xp + c), abs_mask);
      // !(a < inf): NaN and inf both set the mask.
      nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
      amax = _mm256_max_ps(amax, a);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const bool bad = _mm256_movemask_ps(nonfinite) != 0;
    const float m = bad ? 0.0f : _mm_cvtss_f32(m4) * tr::vmax;
    std::int8_t* qb = q + b * B * 16;
    if (bad || !std::isfinite(m) || !std::isfinite(127.0f / m)) {
      std::fill(qb, qb + B * 16, std::int8_t{0});
      scale[b] = bad || !std::isfinite(m) ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      continue;
    }
    const __m256 inv = _mm256_set1_ps(127.0f / m);
    for (std::size_t c = 0; c < B; c += 2) {
      __m256 p[4];
      LOWBIT_UNROLL
      for (std::size_t k = 0; k < 2; ++k) {
        const __m256 xc = _mm256_set1_ps(xp[c + k]);
        p[2 * k] = _mm256_mul_ps(_mm256_mul_ps(xc, v0), inv);
        p[2 * k + 1] = _mm256_mul_ps(_mm256_mul_ps(xc, v1), inv);
      }
      detail::store_rounded_i8(p, qb + c * 16);
    }
    scale[b] = m / 127.0f;
  }
}

template <scheme S, activation_type T>
void build_codebook_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, codebook_activations& out,
                           std::size_t blocks = 0) {
  build_codebook_tables_by_row<S>(x, tokens, cols, blocks, out, build_codebook_table_row<S, T>);
}

namespace detail {

// The 32 rows' scales of unit u of a tile as floats: 4 x 8.
template <codebook_lut_scheme S>
LOWBIT_ALWAYS_INLINE inline void codebook_tile_scales(const codebook_lut_matrix<S>& w, std::size_t tile, std::size_t u,
                                                      __m256 (&ws)[4]) noexcept {
  const auto* s = w.tile_scales(tile, u);
  LOWBIT_UNROLL
  for (std::size_t i = 0; i < 4; ++i) {
    if constexpr (codebook_lut_matrix<S>::compact_scales)
      ws[i] = scales8(w.decoder(), s + 8 * i);
    else
      ws[i] = _mm256_loadu_ps(s + 8 * i);
  }
}

// Tokens t0 .. t0 + NT - 1 of one tile; out receives NT x 32 sums (before bias).
template <codebook_lut_scheme S, std::size_t NT>
void codebook_tile(const codebook_lut_matrix<S>& w, const codebook_activations& a, std::size_t tile, std::size_t t0,
                   float (*out)[codebook_tile_rows]) noexcept {
  using tr = codebook_lut_traits<S>;
  using M = codebook_lut_matrix<S>;
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
  // A unit's 32 scales, in whole lines, and their lead in the scale array (side_prefetch).
  constexpr std::size_t SB = (codebook_tile_rows * sizeof(typename M::scale_type) + 63) / 64 * 64;
  [[maybe_unused]] const std::size_t s_ahead =
      side_ahead(lut_prefetch, w.units() * codebook_tile_rows * sizeof(typename M::scale_type),
                 w.blocks() * tr::quads * M::quad_bytes);
  __m256 ws[4] = {};
  for (std::size_t b = 0; b < w.blocks(); ++b) {
    __m256i isum[NT][4]; // per half: rows 0-7 and 8-15, lanes = columns c0 + 0/2 and c0 + 1/3
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) isum[t][0] = isum[t][1] = isum[t][2] = isum[t][3] = _mm256_setzero_si256();
    if constexpr (lut_prefetch != 0)
      if (first) prefetch_l2<tr::quads * M::quad_bytes>(cp, lut_prefetch);
    LOWBIT_UNROLL
    for (std::size_t i = 0; i < tr::quads; ++i, cp += M::quad_bytes) {
      __m256i lo[2], hi[2];
      LOWBIT_UNROLL
      for (std::size_t h = 0; h < 2; ++h) {
        const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(cp + 32 * h));
        lo[h] = _mm256_and_si256(v, nib);
        hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
      }
      LOWBIT_UNROLL
      for (std::size_t t = 0; t < NT; ++t) {
        const std::int8_t* g = q[t] + (b * tr::block + 4 * i) * 16;
        const __m256i t01 = _mm256_load_si256(reinterpret_cast<const __m256i*>(g));
        const __m256i t23 = _mm256_load_si256(reinterpret_cast<const __m256i*>(g + 32));
        LOWBIT_UNROLL
        for (std::size_t h = 0; h < 2; ++h) {
          const __m256i p = _mm256_shuffle_epi8(t01, lo[h]), r = _mm256_shuffle_epi8(t23, hi[h]);
          isum[t][2 * h] = _mm256_add_epi16(isum[t][2 * h], _mm256_maddubs_epi16(ones, _mm256_unpacklo_epi8(p, r)));
          isum[t][2 * h + 1] =
              _mm256_add_epi16(isum[t][2 * h + 1], _mm256_maddubs_epi16(ones, _mm256_unpackhi_epi8(p, r)));
          LOWBIT_OPAQUE(isum[t][2 * h]); // running sums, not a tree that spills (config.hpp)
          LOWBIT_OPAQUE(isum[t][2 * h + 1]);
        }
      }
    }
    const std::size_t u = tr::unit_of_block(b);
    if (u != unit) {
      unit = u;
      if constexpr (side_prefetch)
        if (first && lut_prefetch != 0) prefetch_l2<SB>(w.tile_scales(tile, u), s_ahead);
      codebook_tile_scales(w, tile, u, ws);
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

// Y = X * W^T (+ bias) on tables built by build_codebook_tables; tiles split across threads.
template <codebook_lut_scheme S>
void linear_codebook_lut(const codebook_lut_matrix<S>& w, const codebook_activations& a, std::span<float> y,
                         std::span<const float> bias) {
  check_codebook_tables("avx2::linear_codebook_lut", w, a, y.size(), bias.size());
  run_lut_tiles<codebook_tile_rows, codebook_tokens>(
      w, a.tokens, a.row_entries(), y, bias, [&](auto nt, std::size_t tile, std::size_t t, auto* out) {
        detail::codebook_tile<S, decltype(nt)::value>(w, a, tile, t, out);
      });
}

} // namespace lowbit::kernels::avx2
