// Small AVX-512 helpers shared by the 512-bit kernels. Each is the plain intrinsic's operation,
// written through its masked form (all lanes kept, so it compiles to the same instruction): the
// plain forms of these intrinsics pass GCC 12's self-initialized _mm512_undefined_* as the merge
// source, which -Werror=uninitialized / maybe-uninitialized rejects once inlined (GCC bug 105593,
// fixed in GCC 13).
#pragma once

#include "lowbit/core/config.hpp"

#if LOWBIT_HAS_AVX512_BW

#include <immintrin.h>

namespace lowbit::kernels::avx512 {

// The 32 bytes at p in both halves of a register.
LOWBIT_ALWAYS_INLINE inline __m512i broadcast_256(const void* p) noexcept {
  return _mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(static_cast<const __m256i*>(p)));
}
// The 16 bytes at p (16-byte aligned) in all four lanes.
LOWBIT_ALWAYS_INLINE inline __m512i broadcast_128(const void* p) noexcept {
  return _mm512_maskz_broadcast_i32x4(0xFFFF, _mm_load_si128(static_cast<const __m128i*>(p)));
}
// lo in the low half and hi in the high half.
LOWBIT_ALWAYS_INLINE inline __m512i join_halves(__m256i lo, __m256i hi) noexcept {
  return _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(lo), hi, 1);
}
// The 32 bytes at lo in the low half and those at hi in the high half: two plain loads (the second
// folded into `vinserti64x4`), not a masked broadcast load. Without software prefetch, the 512-bit
// tile kernel streamed INT4 and INT8 from DRAM at 0.56-0.65x the AVX2 kernel's rate with the masked
// load and 0.90-0.94x with plain loads (N = 1, Zen 5; bench/README.md, run 18): the hardware
// prefetchers seem not to follow masked loads.
LOWBIT_ALWAYS_INLINE inline __m512i load_halves(const void* lo, const void* hi) noexcept {
  return _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(lo))),
                                  _mm256_loadu_si256(static_cast<const __m256i*>(hi)), 1);
}
// Half h (0 low, 1 high) of v.
template <int H>
LOWBIT_ALWAYS_INLINE inline __m256i half_of(__m512i v) noexcept {
  return _mm512_maskz_extracti64x4_epi64(0xFF, v, H);
}
#if LOWBIT_HAS_AVX512_VBMI
// vpermb: byte i of the result is byte idx[i] % 64 of table.
LOWBIT_ALWAYS_INLINE inline __m512i permute_bytes(__m512i idx, __m512i table) noexcept {
  return _mm512_maskz_permutexvar_epi8(~__mmask64{0}, idx, table);
}
#endif
LOWBIT_ALWAYS_INLINE inline __m512 cvt_ps(__m512i v) noexcept { return _mm512_maskz_cvtepi32_ps(0xFFFF, v); }
LOWBIT_ALWAYS_INLINE inline __m512 cvtph_ps(__m256i v) noexcept { return _mm512_maskz_cvtph_ps(0xFFFF, v); }
LOWBIT_ALWAYS_INLINE inline __m512i cvtepu8_epi32(__m128i v) noexcept { return _mm512_maskz_cvtepu8_epi32(0xFFFF, v); }

} // namespace lowbit::kernels::avx512

#endif
