// The streaming read of the read-bandwidth probe, shared by kernels_bench.cpp and
// ab/gemv_dram.cpp: sums n floats (n a multiple of 65536; buf 32-byte aligned, as a std::vector
// of this size is) in 64 Ki-float chunks split statically across the OpenMP threads, with four
// independent AVX2 accumulators per thread, so that only the loads limit it.
#pragma once

#include "lowbit/kernels/layout.hpp"

#include <immintrin.h>

#include <cstddef>

namespace lowbit_bench {

inline float stream_sum(const float* buf, std::size_t n) {
  float total = 0.0f;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (std::size_t b = 0; b < n; b += 1 << 16) {
#if defined(__AVX2__)
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = b; i < b + (1 << 16); i += 32) {
      a0 = _mm256_add_ps(a0, _mm256_load_ps(&buf[i]));
      a1 = _mm256_add_ps(a1, _mm256_load_ps(&buf[i + 8]));
      a2 = _mm256_add_ps(a2, _mm256_load_ps(&buf[i + 16]));
      a3 = _mm256_add_ps(a3, _mm256_load_ps(&buf[i + 24]));
    }
    alignas(32) float l[8];
    _mm256_store_ps(l, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    total += lowbit::kernels::lane_sum(l);
#else
    for (std::size_t i = b; i < b + (1 << 16); ++i) total += buf[i];
#endif
  }
  return total;
}

} // namespace lowbit_bench
