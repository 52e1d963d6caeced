// AVX-512 activation tables of the LUT paths. The bit-plane tables: build_lut_table_row
// (kernels/lut.hpp) bit for bit, one 16-entry table per 512-bit register. The AVX2 builder needs two
// registers per table and xor/add chains; here entry m of table j is lane m of
//   fma(x3, s3, fma(x2, s2, fma(x1, s1, x0 * s0))),   s_l[m] = bit l of m ? +1 : -1,
// each x_l broadcast from memory. x0 * s0 is exact and fma(x, +-1, e) rounds e +- x once, so every
// lane is the spec's ((+-x0 +- x1) +- x2) +- x3 in the same order. Quantized by one multiply, a
// conversion in the current (nearest-even) rounding mode and a saturating narrowing to bytes: the
// spec's clamp to [-127, 127] never binds, since |T| <= max|T| gives |T * (127 / max|T|)| <=
// 127 * (1 + 2^-24) before rounding.
#pragma once

#include "lowbit/core/config.hpp"

#if LOWBIT_HAS_AVX512_BW

#include "lowbit/kernels/avx2/activations.hpp"
#include "lowbit/kernels/avx512/ops.hpp"
#include "lowbit/kernels/lut.hpp"
#include "lowbit/kernels/ternary_lut.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace lowbit::kernels::avx512 {

namespace detail {

// The largest lane of v (no NaN lanes).
LOWBIT_ALWAYS_INLINE inline float hmax(__m512 v) noexcept {
  const __m512i i = _mm512_castps_si512(v);
  return avx2::detail::hmax(_mm256_max_ps(_mm256_castsi256_ps(half_of<0>(i)), _mm256_castsi256_ps(half_of<1>(i))));
}

// The 16 lanes of p rounded in the current (nearest-even) mode and narrowed with saturation to 16
// bytes at dst, in order; the callers' values lie in [-127.00001, 127.00001], so this is the specs'
// clamp(nearbyint(p), -127, 127).
LOWBIT_ALWAYS_INLINE inline void store_i8(std::int8_t* dst, __m512 p) noexcept {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                   _mm512_maskz_cvtsepi32_epi8(0xFFFF, _mm512_maskz_cvtps_epi32(0xFFFF, p)));
}

} // namespace detail

template <activation_type T>
void build_lut_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale,
                         float* xsum) noexcept {
  const auto signs = [](unsigned l) {
    alignas(64) float s[16];
    for (unsigned m = 0; m < 16; ++m) s[m] = (m >> l & 1u) ? 1.0f : -1.0f;
    return _mm512_load_ps(s);
  };
  const __m512 s0 = signs(0), s1 = signs(1), s2 = signs(2), s3 = signs(3);
  const __m512 zero = _mm512_setzero_ps();
  alignas(64) float xb[lut_block];
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* xp = avx2::detail::block_floats(x, cols, b * lut_block, lut_block, xb);
    const __m512 xlo = _mm512_loadu_ps(xp), xhi = _mm512_loadu_ps(xp + 16);
    // NaN lanes of x - x: a NaN or inf input.
    const __mmask16 nonfinite = _mm512_cmp_ps_mask(_mm512_sub_ps(xlo, xlo), zero, _CMP_UNORD_Q) |
                                _mm512_cmp_ps_mask(_mm512_sub_ps(xhi, xhi), zero, _CMP_UNORD_Q);
    // The spec's sum: v[l] = ((x[l] + x[8 + l]) + x[16 + l]) + x[24 + l], then the halves.
    const __m256 v = _mm256_add_ps(
        _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xp), _mm256_loadu_ps(xp + 8)), _mm256_loadu_ps(xp + 16)),
        _mm256_loadu_ps(xp + 24));
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
    xsum[b] = _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
    __m512 t[lut_tables_per_block];
    __m512 amax = zero;
    LOWBIT_UNROLL
    for (std::size_t j = 0; j < lut_tables_per_block; ++j) {
      const float* g = xp + j * lut_group;
      const __m512 e = _mm512_mul_ps(_mm512_set1_ps(g[0]), s0);
      t[j] = _mm512_fmadd_ps(_mm512_set1_ps(g[3]), s3,
                             _mm512_fmadd_ps(_mm512_set1_ps(g[2]), s2, _mm512_fmadd_ps(_mm512_set1_ps(g[1]), s1, e)));
      amax = _mm512_maskz_max_ps(0xFFFF, amax, _mm512_abs_ps(t[j]));
    }
    const float mx = detail::hmax(amax);
    std::int8_t* qb = q + b * lut_tables_per_block * 16;
    // A NaN sum (inf - inf) only comes from a non-finite input, which the first test catches.
    const bool bad = nonfinite != 0 || !(mx <= std::numeric_limits<float>::max());
    const float iv = 127.0f / mx;
    if (bad || !(iv <= std::numeric_limits<float>::max())) {
      std::fill(qb, qb + lut_tables_per_block * 16, std::int8_t{0});
      scale[b] = bad ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      continue;
    }
    const __m512 inv = _mm512_set1_ps(iv);
    LOWBIT_UNROLL
    for (std::size_t j = 0; j < lut_tables_per_block; ++j) detail::store_i8(qb + 16 * j, _mm512_mul_ps(t[j], inv));
    scale[b] = mx / 127.0f * 0.5f;
  }
}

// Twice the AVX2 builder's rate: 0.48 ns per activation on one thread (Zen 5, bench/README.md, run
// 21). There one token of K = 4096 took 1.97 us on one thread and 4.5 us split over two, K = 16384
// 7.9 us either way: the second thread's start cost about 3.5 us. So a cost of 4 per activation,
// which splits from tokens x cols = 16384 (the AVX2 builder from 4096).
template <activation_type T>
void build_lut_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, lut_activations& out) {
  kernels::build_lut_tables_by_row(x, tokens, cols, out, avx512::build_lut_table_row<T>, 4);
}

// build_ternary_table_row (kernels/ternary_lut.hpp) bit for bit, one triad's 16 entries per
// register: (x0 w0 + x1 w1) + x2 w2 with the last two steps as fma, as the AVX2 builder does (the
// products by -1, 0, 1 are exact, so the fma rounds the spec's sums), then quantized as above.
template <activation_type T>
void build_ternary_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale) noexcept {
  const auto& wv = ternary_entry_weights.v;
  const __m512 w0 = _mm512_load_ps(wv[0]), w1 = _mm512_load_ps(wv[1]), w2 = _mm512_load_ps(wv[2]);
  const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  alignas(64) float xs[ternary_block_cols];
  __m512 t[ternary_block_triads];
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* xp = avx2::detail::block_floats(x, cols, b * ternary_block_cols, ternary_block_cols, xs);
    __mmask16 nonfinite = 0; // !(|x| < inf): NaN and inf both set it
    for (std::size_t c = 0; c < ternary_block_cols; c += 16)
      nonfinite |= _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(xp + c)), inf, _CMP_NLT_UQ);
    __m512 amax = _mm512_setzero_ps();
    LOWBIT_UNROLL
    for (std::size_t j = 0; j < ternary_block_triads; ++j) {
      const float* g = xp + 3 * j;
      t[j] = _mm512_fmadd_ps(w2, _mm512_set1_ps(g[2]),
                             _mm512_fmadd_ps(w1, _mm512_set1_ps(g[1]), _mm512_mul_ps(w0, _mm512_set1_ps(g[0]))));
      amax = _mm512_maskz_max_ps(0xFFFF, amax, _mm512_abs_ps(t[j]));
    }
    const bool bad = nonfinite != 0;
    const float m = bad ? 0.0f : detail::hmax(amax);
    std::int8_t* qb = q + b * ternary_block_triads * 16;
    if (bad || !std::isfinite(m) || !std::isfinite(127.0f / m)) {
      std::fill(qb, qb + ternary_block_triads * 16, std::int8_t{0});
      scale[b] = bad || !std::isfinite(m) ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      continue;
    }
    const __m512 inv = _mm512_set1_ps(127.0f / m);
    LOWBIT_UNROLL
    for (std::size_t j = 0; j < ternary_block_triads; ++j) detail::store_i8(qb + 16 * j, _mm512_mul_ps(t[j], inv));
    scale[b] = m / 127.0f;
  }
}

// The base-3 tables with the row builder above: 2.6-2.7x the AVX2 builder's rate, about the bit-plane
// builder's 0.5 ns per activation here, so the same cost and the same split from 16384 activations.
template <activation_type T>
void build_ternary_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, ternary_activations& out) {
  kernels::build_ternary_tables_by_row(x, tokens, cols, out, avx512::build_ternary_table_row<T>, 4);
}

} // namespace lowbit::kernels::avx512

#endif
