// AVX-512 activation tables of the LUT paths. The bit-plane tables: build_lut_table_row
// (kernels/lut.hpp) bit for bit. With VBMI, two blocks at a time with one group per lane
// (detail::lut_table_pair: 16 tables per register, only the entries 8-15, the others their negation);
// an odd last block, and every block without VBMI, one 16-entry table per 512-bit register: entry m
// of table j is lane m of
//   fma(x3, s3, fma(x2, s2, fma(x1, s1, x0 * s0))),   s_l[m] = bit l of m ? +1 : -1,
// each x_l broadcast from memory. x0 * s0 is exact and fma(x, +-1, e) rounds e +- x once, so every
// lane is the spec's ((+-x0 +- x1) +- x2) +- x3 in the same order. Quantized by one multiply, a
// conversion in the current (nearest-even) rounding mode and a saturating narrowing to bytes: the
// spec's clamp to [-127, 127] never binds, since |T| <= max|T| gives |T * (127 / max|T|)| <=
// 127 * (1 + 2^-24) before rounding. The base-3 tables likewise (build_ternary_table_row, one triad
// per lane with VBMI).
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

// The spec's xsum of the 32 activations at xp: v[l] = ((x[l] + x[8 + l]) + x[16 + l]) + x[24 + l],
// h[i] = v[i] + v[i + 4], (h[0] + h[2]) + (h[1] + h[3]).
LOWBIT_ALWAYS_INLINE inline float block_sum(const float* xp) noexcept {
  const __m256 v = _mm256_add_ps(
      _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xp), _mm256_loadu_ps(xp + 8)), _mm256_loadu_ps(xp + 16)),
      _mm256_loadu_ps(xp + 24));
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
}

// Lanes whose x - x is NaN: NaN or inf in x.
LOWBIT_ALWAYS_INLINE inline __mmask16 nonfinite(__m512 x) noexcept {
  return _mm512_cmp_ps_mask(_mm512_sub_ps(x, x), _mm512_setzero_ps(), _CMP_UNORD_Q);
}

#if LOWBIT_HAS_AVX512_VBMI
// The byte permutes that put the positive halves of two blocks' tables in place (lut_table_pair):
// for output register o (groups 4 o .. 4 o + 3), byte 16 g + m reads entry mm = max(m, 15 - m) of
// group 4 o + g, which lut_table_pair's packing leaves at byte (mm < 12 ? 0 : 32) + 16 (o % 2) +
// 4 ((mm - 8) % 4) + g of the register holding groups 8 (o / 2) .. 8 (o / 2) + 7.
struct pair_permutes {
  alignas(64) std::uint8_t idx[2][64];
  constexpr pair_permutes() : idx{} {
    for (unsigned o = 0; o < 2; ++o)
      for (unsigned g = 0; g < 4; ++g)
        for (unsigned m = 0; m < 16; ++m) {
          const unsigned mm = m < 8 ? 15 - m : m;
          idx[o][16 * g + m] = static_cast<std::uint8_t>((mm < 12 ? 0 : 32) + 16 * o + 4 * ((mm - 8) % 4) + g);
        }
  }
};
inline constexpr pair_permutes lut_pair_permutes{};

// Blocks b and b + 1 of build_lut_table_row: the 64 activations at xp, the 256 table bytes at q,
// scale and xsum at b. Lane g of a register is group g (4 g .. 4 g + 3; groups 0-7 are block b,
// 8-15 block b + 1), so one operation serves 16 tables. Only entries 8-15 are computed, each with
// the spec's own rounding: with A = x0 + x1, B = x0 - x1, C1..C4 = A + x2, A - x2, B + x2, B - x2,
// entry 8 + i is x3 - C1, C4 + x3, x3 - C3, C2 + x3, x3 - C2, C3 + x3, x3 - C4, C1 + x3 for
// i = 0..7 (the spec's -A - x2 is -C1 exactly, and so on: round to nearest even is symmetric).
// T[15 - m] = -T[m] gives the rest, and the int8 entries likewise (rounding and the +-127 range are
// symmetric), so entries 0-7 are the negated bytes of 15-8. 14 additions for 16 tables where the
// one-table-per-register form takes a multiply and 3 fmas per table; the int8 bytes come from two
// saturating packs and a byte permute per 4 tables instead of a narrowing per table.
LOWBIT_ALWAYS_INLINE inline void lut_table_pair(const float* xp, std::int8_t* q, float* scale, float* xsum) noexcept {
  const __m512 v0 = _mm512_loadu_ps(xp), v1 = _mm512_loadu_ps(xp + 16), v2 = _mm512_loadu_ps(xp + 32),
               v3 = _mm512_loadu_ps(xp + 48);
  const bool nonfinite_b[2] = {(nonfinite(v0) | nonfinite(v1)) != 0, (nonfinite(v2) | nonfinite(v3)) != 0};
  xsum[0] = block_sum(xp);
  xsum[1] = block_sum(xp + 32);
  // Lanes 0-7: element 0 (p) or 2 (q) of groups 0-7; lanes 8-15: element 1 or 3.
  const __m512i ip = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const __m512i iq = _mm512_add_epi32(ip, _mm512_set1_epi32(2));
  const __m512 p = _mm512_permutex2var_ps(v0, ip, v1), r = _mm512_permutex2var_ps(v2, ip, v3);
  const __m512 pq = _mm512_permutex2var_ps(v0, iq, v1), rq = _mm512_permutex2var_ps(v2, iq, v3);
  const __m512 x0 = _mm512_maskz_shuffle_f32x4(0xFFFF, p, r, 0x44), x1 = _mm512_maskz_shuffle_f32x4(0xFFFF, p, r, 0xEE);
  const __m512 x2 = _mm512_maskz_shuffle_f32x4(0xFFFF, pq, rq, 0x44),
               x3 = _mm512_maskz_shuffle_f32x4(0xFFFF, pq, rq, 0xEE);
  const __m512 a = _mm512_add_ps(x0, x1), bb = _mm512_sub_ps(x0, x1);
  const __m512 c1 = _mm512_add_ps(a, x2), c2 = _mm512_sub_ps(a, x2), c3 = _mm512_add_ps(bb, x2),
               c4 = _mm512_sub_ps(bb, x2);
  const __m512 t[8] = {_mm512_sub_ps(x3, c1), _mm512_add_ps(c4, x3), _mm512_sub_ps(x3, c3), _mm512_add_ps(c2, x3),
                       _mm512_sub_ps(x3, c2), _mm512_add_ps(c3, x3), _mm512_sub_ps(x3, c4), _mm512_add_ps(c1, x3)};
  // max_m |T[m]| of a group is the entry whose signs all agree with the activations':
  // ((|x0| + |x1|) + |x2|) + |x3| in fp32 (rounding is monotonic and symmetric, so every other
  // entry's magnitude rounds to no more at each step).
  __m512 amax = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)), _mm512_abs_ps(x2)),
                              _mm512_abs_ps(x3));
  const auto max = [](__m512 u, __m512 v) { return _mm512_maskz_max_ps(0xFFFF, u, v); };
  // Every lane of each 8-lane half gets the half's maximum (no NaN: finite inputs give none).
  amax = max(amax, _mm512_maskz_shuffle_f32x4(0xFFFF, amax, amax, 0xB1));
  amax = max(amax, _mm512_maskz_permute_ps(0xFFFF, amax, 0x4E));
  amax = max(amax, _mm512_maskz_permute_ps(0xFFFF, amax, 0xB1));
  const __m512 inv = _mm512_div_ps(_mm512_set1_ps(127.0f), amax);
  __m512i w[4];
  LOWBIT_UNROLL
  for (int i = 0; i < 4; ++i)
    w[i] = _mm512_maskz_packs_epi32(~__mmask32{0}, _mm512_maskz_cvtps_epi32(0xFFFF, _mm512_mul_ps(t[2 * i], inv)),
                                    _mm512_maskz_cvtps_epi32(0xFFFF, _mm512_mul_ps(t[2 * i + 1], inv)));
  // Lane k of lo (hi): groups 4 k .. 4 k + 3 of entries 8-11 (12-15), 4 bytes per entry.
  const __m512i lo = _mm512_maskz_packs_epi16(~__mmask64{0}, w[0], w[1]),
                hi = _mm512_maskz_packs_epi16(~__mmask64{0}, w[2], w[3]);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i i0 = _mm512_load_si512(lut_pair_permutes.idx[0]), i1 = _mm512_load_si512(lut_pair_permutes.idx[1]);
  const __mmask64 neg = 0x00FF00FF00FF00FFull; // entries 0-7 of each table
  LOWBIT_UNROLL
  for (int h = 0; h < 2; ++h) {
    const __m512i src =
        h == 0 ? _mm512_maskz_shuffle_i32x4(0xFFFF, lo, hi, 0x44) : _mm512_maskz_shuffle_i32x4(0xFFFF, lo, hi, 0xEE);
    const __m512i e0 = _mm512_maskz_permutexvar_epi8(~__mmask64{0}, i0, src),
                  e1 = _mm512_maskz_permutexvar_epi8(~__mmask64{0}, i1, src);
    _mm512_storeu_si512(q + 128 * h, _mm512_mask_sub_epi8(e0, neg, zero, e0));
    _mm512_storeu_si512(q + 128 * h + 64, _mm512_mask_sub_epi8(e1, neg, zero, e1));
  }
  const float mx[2] = {_mm512_cvtss_f32(amax), _mm_cvtss_f32(_mm512_maskz_extractf32x4_ps(0xF, amax, 2))};
  for (int k = 0; k < 2; ++k) {
    const bool bad = nonfinite_b[k] || !(mx[k] <= std::numeric_limits<float>::max());
    if (bad || !(127.0f / mx[k] <= std::numeric_limits<float>::max())) {
      std::fill(q + 128 * k, q + 128 * (k + 1), std::int8_t{0});
      scale[k] = bad ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
    } else {
      scale[k] = mx[k] / 127.0f * 0.5f;
    }
  }
}
#endif

} // namespace detail

template <activation_type T>
void build_lut_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale,
                         float* xsum) noexcept {
#if LOWBIT_HAS_AVX512_VBMI
  std::size_t b0 = 0;
  {
    alignas(64) float xb2[2 * lut_block];
    for (; b0 + 2 <= blocks; b0 += 2)
      detail::lut_table_pair(avx2::detail::block_floats(x, cols, b0 * lut_block, 2 * lut_block, xb2),
                             q + b0 * lut_tables_per_block * 16, scale + b0, xsum + b0);
  }
#else
  constexpr std::size_t b0 = 0;
#endif
  const auto signs = [](unsigned l) {
    alignas(64) float s[16];
    for (unsigned m = 0; m < 16; ++m) s[m] = (m >> l & 1u) ? 1.0f : -1.0f;
    return _mm512_load_ps(s);
  };
  const __m512 s0 = signs(0), s1 = signs(1), s2 = signs(2), s3 = signs(3);
  const __m512 zero = _mm512_setzero_ps();
  alignas(64) float xb[lut_block];
  for (std::size_t b = b0; b < blocks; ++b) {
    const float* xp = avx2::detail::block_floats(x, cols, b * lut_block, lut_block, xb);
    const __m512 xlo = _mm512_loadu_ps(xp), xhi = _mm512_loadu_ps(xp + 16);
    // NaN lanes of x - x: a NaN or inf input.
    const __mmask16 nonfinite = detail::nonfinite(xlo) | detail::nonfinite(xhi);
    xsum[b] = detail::block_sum(xp);
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

// The one-table-per-register builder ran at twice the AVX2 builder's rate: 0.48 ns per activation
// on one thread (Zen 5, bench/README.md, run 21). There one token of K = 4096 took 1.97 us on one
// thread and 4.5 us split over two, K = 16384 7.9 us either way: the second thread's start cost
// about 3.5 us. So a cost of 4 per activation, which splits from tokens x cols = 16384 (the AVX2
// builder from 4096). The two-block VBMI builder took 0.53-0.60x its time (Xeon, K = 4096, one
// thread: 1.8-2.0 against 3.3 us, bench/README.md run 29); the cost is kept (not re-measured).
template <activation_type T>
void build_lut_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, lut_activations& out) {
  kernels::build_lut_tables_by_row(x, tokens, cols, out, avx512::build_lut_table_row<T>, 4);
}

#if LOWBIT_HAS_AVX512_VBMI
namespace detail {

// Byte 16 g + e of output register o of ternary_block_tables: entry e of triad 4 o + g, which the
// packing leaves at byte 16 (e / 4) + 4 (e % 4) + g of the register gathering lane o of the four
// packed registers.
struct triad_permute {
  alignas(64) std::uint8_t idx[64];
  constexpr triad_permute() : idx{} {
    for (unsigned g = 0; g < 4; ++g)
      for (unsigned e = 0; e < 16; ++e) idx[16 * g + e] = static_cast<std::uint8_t>(16 * (e / 4) + 4 * (e % 4) + g);
  }
};
inline constexpr triad_permute ternary_triad_permute{};

// Lanes j of x_l: activation 3 j + l of the 48 in v0, v1, v2.
template <unsigned L>
LOWBIT_ALWAYS_INLINE inline __m512 triad_element(__m512 v0, __m512 v1, __m512 v2) noexcept {
  const __m512i idx = _mm512_add_epi32(_mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45),
                                       _mm512_set1_epi32(static_cast<int>(L)));
  // Lanes with 3 j + L >= 32 read v2 (permutexvar takes the index mod 16).
  const __mmask16 from_v2 = static_cast<__mmask16>(L == 0 ? 0xF800 : L == 1 ? 0xF800 : 0xFC00);
  return _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(v0, idx, v1), from_v2, idx, v2);
}

// One block of build_ternary_table_row (96 activations at xp, 512 table bytes at qb), 16 triads per
// register (lane j = triad j). Entry i of a triad is -P_i with P = (A + x2, A, A - x2, x0 + x2, x0,
// x0 - x2, B + x2, B, B - x2, x1 + x2, x1, x1 - x2, x2, 0), A = x0 + x1, B = x0 - x1: the spec's
// (p0 + p1) + p2 with each sum rounded once, as -a - b = -(a + b) exactly. So 10 additions serve 16
// triads, and q_i = round(P_i * (-127 / m)) (the product with -inv is -(T * inv) exactly). The block
// maximum m of |T| is that of ((|x0| + |x1|) + |x2|) over its triads (the entry whose signs agree with
// the activations'; every other one rounds to no more). Returns m; the caller zeroes a bad block.
LOWBIT_ALWAYS_INLINE inline float ternary_block_tables(const float* xp, std::int8_t* qb) noexcept {
  __m512 p[2][13];
  __m512 amax = _mm512_setzero_ps();
  LOWBIT_UNROLL
  for (int h = 0; h < 2; ++h) {
    const float* xh = xp + 48 * h;
    const __m512 v0 = _mm512_loadu_ps(xh), v1 = _mm512_loadu_ps(xh + 16), v2 = _mm512_loadu_ps(xh + 32);
    const __m512 x0 = triad_element<0>(v0, v1, v2), x1 = triad_element<1>(v0, v1, v2),
                 x2 = triad_element<2>(v0, v1, v2);
    const __m512 a = _mm512_add_ps(x0, x1), b = _mm512_sub_ps(x0, x1);
    const __m512 e[13] = {_mm512_add_ps(a, x2),
                          a,
                          _mm512_sub_ps(a, x2),
                          _mm512_add_ps(x0, x2),
                          x0,
                          _mm512_sub_ps(x0, x2),
                          _mm512_add_ps(b, x2),
                          b,
                          _mm512_sub_ps(b, x2),
                          _mm512_add_ps(x1, x2),
                          x1,
                          _mm512_sub_ps(x1, x2),
                          x2};
    LOWBIT_UNROLL
    for (int i = 0; i < 13; ++i) p[h][i] = e[i];
    amax = _mm512_maskz_max_ps(0xFFFF, amax,
                               _mm512_add_ps(_mm512_add_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)), _mm512_abs_ps(x2)));
  }
  const auto max = [](__m512 u, __m512 v) { return _mm512_maskz_max_ps(0xFFFF, u, v); };
  amax = max(amax, _mm512_maskz_shuffle_f32x4(0xFFFF, amax, amax, 0x4E));
  amax = max(amax, _mm512_maskz_shuffle_f32x4(0xFFFF, amax, amax, 0xB1));
  amax = max(amax, _mm512_maskz_permute_ps(0xFFFF, amax, 0x4E));
  amax = max(amax, _mm512_maskz_permute_ps(0xFFFF, amax, 0xB1));
  const __m512 ninv = _mm512_div_ps(_mm512_set1_ps(-127.0f), amax);
  const __m512i zero = _mm512_setzero_si512(), idx = _mm512_load_si512(ternary_triad_permute.idx);
  LOWBIT_UNROLL
  for (int h = 0; h < 2; ++h) {
    const auto qi = [&](int i) {
      return i < 13 ? _mm512_maskz_cvtps_epi32(0xFFFF, _mm512_mul_ps(p[h][i], ninv)) : zero;
    };
    const auto pack4 = [&](int i) { // lane k: triads 4 k .. 4 k + 3 of entries i .. i + 3, 4 bytes each
      return _mm512_maskz_packs_epi16(~__mmask64{0}, _mm512_maskz_packs_epi32(~__mmask32{0}, qi(i), qi(i + 1)),
                                      i + 2 < 13 ? _mm512_maskz_packs_epi32(~__mmask32{0}, qi(i + 2), qi(i + 3))
                                                 : zero);
    };
    const __m512i q0 = pack4(0), q1 = pack4(4), q2 = pack4(8), q3 = pack4(12);
    const __m512i s01[2] = {_mm512_maskz_shuffle_i32x4(0xFFFF, q0, q1, 0x44),
                            _mm512_maskz_shuffle_i32x4(0xFFFF, q0, q1, 0xEE)};
    const __m512i s23[2] = {_mm512_maskz_shuffle_i32x4(0xFFFF, q2, q3, 0x44),
                            _mm512_maskz_shuffle_i32x4(0xFFFF, q2, q3, 0xEE)};
    LOWBIT_UNROLL
    for (int o = 0; o < 4; ++o) {
      // Lane o of q0 .. q3: from s01 / s23 half o / 2, lanes o % 2 and 2 + o % 2.
      const __m512i u = o % 2 == 0 ? _mm512_maskz_shuffle_i32x4(0xFFFF, s01[o / 2], s23[o / 2], 0x88)
                                   : _mm512_maskz_shuffle_i32x4(0xFFFF, s01[o / 2], s23[o / 2], 0xDD);
      _mm512_storeu_si512(qb + 256 * h + 64 * o, _mm512_maskz_permutexvar_epi8(~__mmask64{0}, idx, u));
    }
  }
  return _mm512_cvtss_f32(amax);
}

} // namespace detail
#endif

// build_ternary_table_row (kernels/ternary_lut.hpp) bit for bit. With VBMI, one triad per lane
// (detail::ternary_block_tables); otherwise one triad's 16 entries per register: (x0 w0 + x1 w1) +
// x2 w2 with the last two steps as fma, as the AVX2 builder does (the products by -1, 0, 1 are exact,
// so the fma rounds the spec's sums), then quantized as above.
template <activation_type T>
void build_ternary_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale) noexcept {
#if !LOWBIT_HAS_AVX512_VBMI
  const auto& wv = ternary_entry_weights.v;
  const __m512 w0 = _mm512_load_ps(wv[0]), w1 = _mm512_load_ps(wv[1]), w2 = _mm512_load_ps(wv[2]);
  __m512 t[ternary_block_triads];
#endif
  const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  alignas(64) float xs[ternary_block_cols];
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* xp = avx2::detail::block_floats(x, cols, b * ternary_block_cols, ternary_block_cols, xs);
    __mmask16 nonfinite = 0; // !(|x| < inf): NaN and inf both set it
    for (std::size_t c = 0; c < ternary_block_cols; c += 16)
      nonfinite |= _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(xp + c)), inf, _CMP_NLT_UQ);
    std::int8_t* qb = q + b * ternary_block_triads * 16;
#if LOWBIT_HAS_AVX512_VBMI
    const float m = detail::ternary_block_tables(xp, qb); // the bytes are written; a bad block is zeroed below
#else
    __m512 amax = _mm512_setzero_ps();
    LOWBIT_UNROLL
    for (std::size_t j = 0; j < ternary_block_triads; ++j) {
      const float* g = xp + 3 * j;
      t[j] = _mm512_fmadd_ps(w2, _mm512_set1_ps(g[2]),
                             _mm512_fmadd_ps(w1, _mm512_set1_ps(g[1]), _mm512_mul_ps(w0, _mm512_set1_ps(g[0]))));
      amax = _mm512_maskz_max_ps(0xFFFF, amax, _mm512_abs_ps(t[j]));
    }
    const float m = nonfinite != 0 ? 0.0f : detail::hmax(amax);
#endif
    const bool bad = nonfinite != 0 || !std::isfinite(m);
    if (bad || !std::isfinite(127.0f / m)) {
      std::fill(qb, qb + ternary_block_triads * 16, std::int8_t{0});
      scale[b] = bad ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      continue;
    }
#if !LOWBIT_HAS_AVX512_VBMI
    const __m512 inv = _mm512_set1_ps(127.0f / m);
    LOWBIT_UNROLL
    for (std::size_t j = 0; j < ternary_block_triads; ++j) detail::store_i8(qb + 16 * j, _mm512_mul_ps(t[j], inv));
#endif
    scale[b] = m / 127.0f;
  }
}

// The base-3 tables with the row builder above: with one triad per register 2.6-2.7x the AVX2
// builder's rate, about the bit-plane builder's 0.5 ns per activation (Zen 5), so the same cost and
// the same split from 16384 activations; one triad per lane (VBMI) took 0.57x that time (Xeon, K =
// 4096, one thread: 2.3 against 4.1 us, bench/README.md run 29).
template <activation_type T>
void build_ternary_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, ternary_activations& out) {
  kernels::build_ternary_tables_by_row(x, tokens, cols, out, avx512::build_ternary_table_row<T>, 4);
}

} // namespace lowbit::kernels::avx512

#endif
