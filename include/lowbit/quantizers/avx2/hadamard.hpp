// AVX2 Walsh-Hadamard butterflies for quantizers/hadamard.hpp: the same additions, in the same
// order, as reference::fwht_unnormalized, so the results agree bit for bit (a test compares them).
// Stages h = 1, 2, 4 run inside each 8-float register by shuffles and sign flips, h >= 8 across
// registers.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace lowbit::avx2 {

// x <- H_n x, unnormalized, Sylvester order; n a power of two, at least 8.
inline void fwht_unnormalized(float* x, std::size_t n) noexcept {
  const __m256 flip1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
  const __m256 flip2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
  const __m256 flip4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
  for (std::size_t i = 0; i < n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    // Stage h: lane j pairs with j ^ h; the lower lane gets a + b, the upper one -b + a (its own
    // value negated by the flip, plus its partner).
    __m256 s = _mm256_permute_ps(v, 0xB1); // h = 1: swap neighbours
    v = _mm256_add_ps(_mm256_mul_ps(v, flip1), s);
    s = _mm256_permute_ps(v, 0x4E); // h = 2: swap pairs
    v = _mm256_add_ps(_mm256_mul_ps(v, flip2), s);
    s = _mm256_permute2f128_ps(v, v, 0x01); // h = 4: swap halves
    v = _mm256_add_ps(_mm256_mul_ps(v, flip4), s);
    _mm256_storeu_ps(x + i, v);
  }
  for (std::size_t h = 8; h < n; h *= 2)
    for (std::size_t i = 0; i < n; i += 2 * h)
      for (std::size_t j = i; j < i + h; j += 8) {
        const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
        _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
        _mm256_storeu_ps(x + j + h, _mm256_sub_ps(a, b));
      }
}

} // namespace lowbit::avx2
