// AVX2 activation preparation, bit for bit the scalar specs in kernels/activations.hpp
// (quantize_activations, the integer-dot path) and kernels/lut.hpp (build_lut_tables, the LUT
// path): the same fp32 operations in the same order, rounding by vroundps in the current
// (nearest-even) mode where the specs call nearbyint. At N = 1 these ran 8-13x faster than the
// scalar specs, which had cost 10-30 % of a whole GEMV (bench/README.md).
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/kernels/lut.hpp"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>

namespace lowbit::kernels::avx2 {

namespace detail {

// 8 activations from x as fp32 (half through F16C; bfloat16 is the high half of an fp32).
template <activation_type T>
LOWBIT_ALWAYS_INLINE inline __m256 load8(const T* x) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return _mm256_loadu_ps(x);
  } else if constexpr (std::is_same_v<T, half>) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
  } else {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
  }
}

// n = 8k activations starting at column c0 of a row of `cols` into xb as fp32, zeros past cols.
template <activation_type T>
LOWBIT_ALWAYS_INLINE inline void load_block(const T* x, std::size_t cols, std::size_t c0, std::size_t n,
                                            float* xb) noexcept {
  if (c0 + n <= cols) {
    for (std::size_t k = 0; k < n; k += 8) _mm256_store_ps(xb + k, load8(x + c0 + k));
  } else {
    for (std::size_t c = 0; c < n; ++c) xb[c] = c0 + c < cols ? lowbit::detail::widen(x[c0 + c]) : 0.0f;
  }
}

// The n = 8k activations from column c0 as fp32, to be read with unaligned loads: x + c0 itself
// where T is float and they lie within cols, else load_block's copy in xb. Reading fp32 rows in
// place is not only a copy saved: GCC compiles load_block's float copy as 16-byte moves, and the
// 32-byte loads that read them back cannot take their data from those stores (store forwarding
// fails), which held the table builders and the int8 quantizer at about half clang's rate.
template <activation_type T>
LOWBIT_ALWAYS_INLINE inline const float* block_floats(const T* x, std::size_t cols, std::size_t c0, std::size_t n,
                                                      float* xb) noexcept {
  if constexpr (std::is_same_v<T, float>)
    if (c0 + n <= cols) return x + c0;
  load_block(x, cols, c0, n, xb);
  return xb;
}

// A vector whose lanes are NaN exactly where x is NaN or inf (x - x), or-ed into acc.
LOWBIT_ALWAYS_INLINE inline __m256 or_nonfinite(__m256 acc, __m256 x) noexcept {
  return _mm256_or_ps(acc, _mm256_cmp_ps(_mm256_sub_ps(x, x), _mm256_setzero_ps(), _CMP_UNORD_Q));
}

LOWBIT_ALWAYS_INLINE inline float hmax(__m256 v) noexcept {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

// clamp(nearbyint(v * inv), -127, 127) as int32, for |v| <= max|v| and inv = 127 / max|v| (what the
// callers pass): |v * inv| <= 127 * (1 + 2^-23), so the clamp never binds and one conversion in the
// current (nearest-even) mode is the spec; no NaN reaches it (blocks holding one are zeroed).
LOWBIT_ALWAYS_INLINE inline __m256i quantize8(__m256 v, __m256 inv) noexcept {
  return _mm256_cvtps_epi32(_mm256_mul_ps(v, inv));
}

// Four vectors of int32 in [-127, 127] as 32 int8 in order.
LOWBIT_ALWAYS_INLINE inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) noexcept {
  const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// The 8 lane sums of one span's int8 activations in kernel positions (qs): lane l adds the 4 bytes
// at h * chunk + 4 l of every chunk h, by one maddubs and one madd per chunk (pairs of int8 into
// int16, then int32: exact).
template <scheme S>
LOWBIT_ALWAYS_INLINE inline __m256i span_lane_sums(const std::int8_t* qs) noexcept {
  static_assert(chunk == 32);
  __m256i sum = _mm256_setzero_si256();
  LOWBIT_UNROLL
  for (std::size_t h = 0; h < chunk_geometry<S>::chunks_per_span; ++h) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + h * chunk));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), v), _mm256_set1_epi16(1)));
  }
  return sum;
}

// The codes of one span in natural order (q, span bytes) into kernel positions (qs), as
// chunk_geometry<S>::code_at spells out.
template <scheme S>
LOWBIT_ALWAYS_INLINE inline void to_kernel_order(const std::int8_t* q, std::int8_t* qs) noexcept {
  using G = chunk_geometry<S>;
  const auto ld = [&](std::size_t i) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32 * i)); };
  const auto st = [&](std::size_t i, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + 32 * i), v); };
  if constexpr (!G::base3 && S::code_bits == 8) {
    st(0, ld(0));
  } else if constexpr (!G::base3 && S::code_bits == 4) {
    // Per 128-bit lane even codes then odd codes, then lanes' halves regrouped.
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, //
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m256i a = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(ld(0), split), 0xD8);
    const __m256i b = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(ld(1), split), 0xD8);
    const __m256i even = _mm256_permute2x128_si256(a, b, 0x20), odd = _mm256_permute2x128_si256(a, b, 0x31);
    constexpr bool high_first = S::layout == code_layout::nibbles_high_first;
    st(0, high_first ? odd : even);
    st(1, high_first ? even : odd);
  } else if constexpr (!G::base3 && S::code_bits == 2) {
    // Chunk h holds codes 4j + h: per lane group by h (4 bytes each), then a 4 x 4 transpose of
    // 8-byte pieces across the four vectors.
    const __m256i split = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, //
                                           0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i w[4];
    for (std::size_t i = 0; i < 4; ++i) w[i] = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(ld(i), split), order);
    const __m256i lo01 = _mm256_unpacklo_epi64(w[0], w[1]), hi01 = _mm256_unpackhi_epi64(w[0], w[1]);
    const __m256i lo23 = _mm256_unpacklo_epi64(w[2], w[3]), hi23 = _mm256_unpackhi_epi64(w[2], w[3]);
    st(0, _mm256_permute2x128_si256(lo01, lo23, 0x20));
    st(1, _mm256_permute2x128_si256(hi01, hi23, 0x20));
    st(2, _mm256_permute2x128_si256(lo01, lo23, 0x31));
    st(3, _mm256_permute2x128_si256(hi01, hi23, 0x31));
  } else {
    static constexpr auto index = [] {
      std::array<std::uint8_t, G::span> ix{};
      for (std::size_t p = 0; p < G::span; ++p) ix[p] = static_cast<std::uint8_t>(G::code_at(p));
      return ix;
    }();
    for (std::size_t p = 0; p < G::span; ++p) qs[p] = q[index[p]];
  }
}

} // namespace detail

// quantize_activation_row (kernels/activations.hpp) with AVX2, bit for bit.
template <scheme S, activation_type T>
void quantize_activation_row(const T* x, std::size_t cols, std::int8_t* q, float* s, float* ls,
                             std::int32_t* lo) noexcept {
  using G = chunk_geometry<S>;
  constexpr std::size_t B = G::act_block, per_span = G::span / B;
  static_assert(B % 32 == 0 && G::span % 32 == 0);
  constexpr int offset = int8_unsigned_table_v<S>.usable ? int8_unsigned_table_v<S>.offset : 0;
  const std::size_t spans = G::spans(cols);
  alignas(32) float xb[G::span];
  alignas(32) std::int8_t qn[G::span];
  for (std::size_t sp = 0; sp < spans; ++sp) {
    const std::size_t c0 = sp * G::span;
    const float* xp = detail::block_floats(x, cols, c0, G::span, xb);
    for (std::size_t k = 0; k < per_span; ++k) {
      const float* xk = xp + k * B;
      __m256 amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
      for (std::size_t i = 0; i < B; i += 8) {
        const __m256 v = _mm256_loadu_ps(xk + i);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v));
        bad = detail::or_nonfinite(bad, v);
      }
      const float m = _mm256_movemask_ps(bad) != 0 ? std::numeric_limits<float>::quiet_NaN() : detail::hmax(amax);
      const float iv = 127.0f / m;
      s[sp * per_span + k] = m / 127.0f;
      std::int8_t* qk = qn + k * B;
      if (!(iv <= std::numeric_limits<float>::max())) { // NaN, zero or tiny block
        if (m == m) s[sp * per_span + k] = 0.0f;
        std::fill(qk, qk + B, std::int8_t{0});
        continue;
      }
      const __m256 inv = _mm256_set1_ps(iv);
      for (std::size_t i = 0; i < B; i += 32) {
        const float* xi = xk + i;
        const __m256i v = detail::pack32(
            detail::quantize8(_mm256_loadu_ps(xi), inv), detail::quantize8(_mm256_loadu_ps(xi + 8), inv),
            detail::quantize8(_mm256_loadu_ps(xi + 16), inv), detail::quantize8(_mm256_loadu_ps(xi + 24), inv));
        _mm256_store_si256(reinterpret_cast<__m256i*>(qk + i), v);
      }
    }
    std::int8_t* qs = q + c0;
    detail::to_kernel_order<S>(qn, qs);
    for (std::size_t l = 0; l < 8; ++l) ls[sp * 8 + l] = s[(c0 + G::lane_code(l)) / B];
    if constexpr (offset != 0) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + sp * 8),
                          _mm256_mullo_epi32(detail::span_lane_sums<S>(qs), _mm256_set1_epi32(offset)));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + sp * 8), _mm256_setzero_si256());
    }
  }
}

template <scheme S, activation_type T>
void quantize_activations(std::span<const T> x, std::size_t tokens, std::size_t cols, int8_activations& out) {
  kernels::quantize_activations_by_row<S>(x, tokens, cols, out, avx2::quantize_activation_row<S, T>);
}

// build_lut_table_row (kernels/lut.hpp) with AVX2, bit for bit: each table's 16 signed sums as
// two vectors (entries m = 0-7 and 8-15 share the partial sum over x0..x2).
template <activation_type T>
void build_lut_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale,
                         float* xsum) noexcept {
  const __m256 neg = _mm256_set1_ps(-0.0f);
  // The sign of x_l in entry m (m = 0-7): + where bit l of m is set, so xor with -0.0 where clear.
  const __m256 sm0 = _mm256_setr_ps(-0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f);
  const __m256 sm1 = _mm256_setr_ps(-0.0f, -0.0f, 0.0f, 0.0f, -0.0f, -0.0f, 0.0f, 0.0f);
  const __m256 sm2 = _mm256_setr_ps(-0.0f, -0.0f, -0.0f, -0.0f, 0.0f, 0.0f, 0.0f, 0.0f);
  alignas(32) float xb[lut_block];
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* xp = detail::block_floats(x, cols, b * lut_block, lut_block, xb);
    __m256 xv[4], nonfinite = _mm256_setzero_ps();
    for (std::size_t k = 0; k < 4; ++k) {
      xv[k] = _mm256_loadu_ps(xp + 8 * k);
      nonfinite = detail::or_nonfinite(nonfinite, xv[k]);
    }
    const __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(xv[0], xv[1]), xv[2]), xv[3]);
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
    xsum[b] = _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
    __m256 t[lut_tables_per_block][2];
    __m256 amax = _mm256_setzero_ps();
    for (std::size_t j = 0; j < lut_tables_per_block; ++j) {
      const float* g = xp + j * lut_group;
      const __m256 p = _mm256_add_ps(
          _mm256_add_ps(_mm256_xor_ps(_mm256_broadcast_ss(g), sm0), _mm256_xor_ps(_mm256_broadcast_ss(g + 1), sm1)),
          _mm256_xor_ps(_mm256_broadcast_ss(g + 2), sm2));
      const __m256 x3 = _mm256_broadcast_ss(g + 3);
      t[j][0] = _mm256_sub_ps(p, x3);
      t[j][1] = _mm256_add_ps(p, x3);
      amax = _mm256_max_ps(amax, _mm256_max_ps(_mm256_andnot_ps(neg, t[j][0]), _mm256_andnot_ps(neg, t[j][1])));
    }
    const float mx = detail::hmax(amax);
    std::int8_t* qb = q + b * lut_tables_per_block * 16;
    // A NaN sum (inf - inf) only comes from a non-finite input, which the first test catches.
    const bool bad = _mm256_movemask_ps(nonfinite) != 0 || !(mx <= std::numeric_limits<float>::max());
    const float iv = 127.0f / mx;
    if (bad || !(iv <= std::numeric_limits<float>::max())) {
      std::fill(qb, qb + lut_tables_per_block * 16, std::int8_t{0});
      scale[b] = bad ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      continue;
    }
    const __m256 inv = _mm256_set1_ps(iv);
    for (std::size_t j = 0; j < lut_tables_per_block; j += 2) {
      const __m256i w = detail::pack32(detail::quantize8(t[j][0], inv), detail::quantize8(t[j][1], inv),
                                       detail::quantize8(t[j + 1][0], inv), detail::quantize8(t[j + 1][1], inv));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qb + 16 * j), w);
    }
    scale[b] = mx / 127.0f * 0.5f;
  }
}

template <activation_type T>
void build_lut_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, lut_activations& out) {
  kernels::build_lut_tables_by_row(x, tokens, cols, out, avx2::build_lut_table_row<T>);
}

} // namespace lowbit::kernels::avx2
