// Eight scale codes to eight floats at once, for scale_decoder (kernels/layout.hpp): E8M0 from its
// exponent bits, UE4M3 by moving its fields into a float's, fp16 through F16C, other 8-bit codes by
// a gather from the decoder's 256-entry table. Bit for bit what scale_decoder's scalar operator()
// gives (tests/kernels/linear_test.cpp compares every code). The decoder type is a template
// parameter so that this header needs nothing from layout.hpp, which includes it.
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/formats/half.hpp"
#include "lowbit/formats/minifloat.hpp"

#include <immintrin.h>

#include <cstdint>
#include <limits>
#include <type_traits>

namespace lowbit::kernels::avx2 {

// One fp16 code to float (exact).
LOWBIT_ALWAYS_INLINE inline float fp16_to_float(std::uint16_t c) noexcept { return _cvtsh_ss(c); }

// Eight codes. Decoder: scale_decoder<S> (format, storage, tensor_scale(), mult(), table(),
// operator()).
template <class Decoder>
__m256 scales8(const Decoder& d, const typename Decoder::storage* codes) noexcept {
  using F = typename Decoder::format;
  const __m256 ts = _mm256_set1_ps(d.tensor_scale()), m = _mm256_set1_ps(d.mult());
  if constexpr (std::is_same_v<F, e8m0>) {
    // 2^(code - 127) from the exponent bits; code 0 is the subnormal 2^-127, code 255 NaN.
    const __m256i zero = _mm256_setzero_si256(), nan_code = _mm256_set1_epi32(255);
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
    __m256i bits = _mm256_slli_epi32(c, 23);
    bits = _mm256_blendv_epi8(bits, _mm256_set1_epi32(0x00400000), _mm256_cmpeq_epi32(c, zero));
    bits = _mm256_blendv_epi8(bits, _mm256_set1_epi32(0x7FC00000), _mm256_cmpeq_epi32(c, nan_code));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_castsi256_ps(bits), ts), m);
  } else if constexpr (std::is_same_v<F, ue4m3>) {
    // Normal codes: the exponent and mantissa fields moved into a float's, exponent rebiased by
    // 120; codes 1-7 (subnormal): code * 2^-9; codes >= 0x7F NaN. No float subnormals involved,
    // so the result holds with denormals-are-zero set (a two-operation variant that multiplied
    // the subnormal float (code << 20) by 2^120 lost codes 1-7 under DAZ; a test guards this).
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
    const __m256 normal = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(c, 20), _mm256_set1_epi32(120 << 23)));
    const __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(c), _mm256_set1_ps(1.0f / 512));
    __m256 v = _mm256_blendv_ps(normal, sub, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), c)));
    v = _mm256_blendv_ps(v, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()),
                         _mm256_castsi256_ps(_mm256_cmpgt_epi32(c, _mm256_set1_epi32(0x7E))));
    return _mm256_mul_ps(_mm256_mul_ps(v, ts), m);
  } else if constexpr (sizeof(typename Decoder::storage) == 1) {
    const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
    return _mm256_i32gather_ps(d.table(), idx, 4);
  } else if constexpr (std::is_same_v<F, fp16>) {
    const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes)));
    return _mm256_mul_ps(_mm256_mul_ps(v, ts), m);
  } else {
    alignas(32) float f[8];
    for (int i = 0; i < 8; ++i) f[i] = d(codes[i]);
    return _mm256_load_ps(f);
  }
}

// Eight plain codes (scale_decoder::plain: normal UE4M3, E8M0 1 .. 254): the field moves alone,
// without the special cases (UE4M3 5 vector operations per 8 codes instead of 11, E8M0 4 instead
// of 8, counting the load). Other formats: scales8.
template <class Decoder>
__m256 scales8_plain(const Decoder& d, const typename Decoder::storage* codes) noexcept {
  using F = typename Decoder::format;
  if constexpr (std::is_same_v<F, ue4m3> || std::is_same_v<F, e8m0>) {
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
    const __m256i bits = std::is_same_v<F, e8m0>
                             ? _mm256_slli_epi32(c, 23)
                             : _mm256_add_epi32(_mm256_slli_epi32(c, 20), _mm256_set1_epi32(120 << 23));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_castsi256_ps(bits), _mm256_set1_ps(d.tensor_scale())),
                         _mm256_set1_ps(d.mult()));
  } else {
    return scales8(d, codes);
  }
}

// codes[0 .. n) into out[0 .. n), 8 at a time; returns how many it wrote (a multiple of 8, the
// caller decodes the rest).
template <bool Plain, class Decoder>
std::size_t scales_bulk(const Decoder& d, const typename Decoder::storage* codes, std::size_t n, float* out) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, Plain ? scales8_plain(d, codes + i) : scales8(d, codes + i));
  return i;
}

} // namespace lowbit::kernels::avx2
