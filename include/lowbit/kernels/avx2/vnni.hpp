// u8 x s8 dot products into int32 lanes, the one instruction the AVX2 integer-dot kernels take from
// AVX-512 VNNI or AVX-VNNI: lane j of the result is acc[j] + sum over i < 4 of u[4j + i] * s[4j + i],
// exact (no int16 step, no saturation). It is 256-bit `vpdpbusd` where AVX-512 VNNI and VL are
// compiled (LOWBIT_HAS_AVX512_VNNI) or AVX-VNNI is (LOWBIT_HAS_AVX_VNNI: the same instruction, VEX
// encoded), and otherwise an exact AVX2 sequence of ten instructions. The kernels call it only
// where has_vnni holds (elsewhere `maddubs` with bounded values is cheaper); the AVX2 sequence keeps
// them free of #if. tests/kernels/tiles_test.cpp checks whichever is compiled on
// every (u, s) byte pair against int arithmetic.
#pragma once

#include "lowbit/core/config.hpp"

#include <immintrin.h>

namespace lowbit::kernels::avx2 {

inline constexpr bool has_vnni = LOWBIT_HAS_VNNI != 0;

LOWBIT_ALWAYS_INLINE inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) noexcept {
#if LOWBIT_HAS_AVX512_VNNI
  return _mm256_dpbusd_epi32(acc, u, s);
#elif LOWBIT_HAS_AVX_VNNI
  return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
  // Within each 128-bit half: bytes 0-7 and 8-15 widened to int16 (u with zeros, s with its sign),
  // `madd` into pairs, and `hadd` of the pairs into the four lanes of 4 bytes, in byte order.
  const __m256i zero = _mm256_setzero_si256();
  const __m256i lo = _mm256_madd_epi16(_mm256_unpacklo_epi8(u, zero), _mm256_srai_epi16(_mm256_unpacklo_epi8(s, s), 8));
  const __m256i hi = _mm256_madd_epi16(_mm256_unpackhi_epi8(u, zero), _mm256_srai_epi16(_mm256_unpackhi_epi8(s, s), 8));
  return _mm256_add_epi32(acc, _mm256_hadd_epi32(lo, hi));
#endif
}

} // namespace lowbit::kernels::avx2
