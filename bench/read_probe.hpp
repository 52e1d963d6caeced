// The streaming read of the read-bandwidth probe, shared by kernels_bench.cpp and the A/B programs
// of bench/ab/, and the sizes that keep their "from DRAM" data out of the last-level cache.
#pragma once

#include "lowbit/core/buffer.hpp"
#include "lowbit/kernels/layout.hpp"

#include <immintrin.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <string>

namespace lowbit_bench {

// The last-level cache as the C library reports it (sysconf; on Linux from CPUID): L3, else L2, else
// 32 MiB where it reports neither. A VM reports the whole socket's L3 (260 MiB on the Xeon of run 26), the safe side.
inline std::size_t llc_bytes() {
  long b = -1;
#if defined(_SC_LEVEL3_CACHE_SIZE)
  b = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (b <= 0) b = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
  return b > 0 ? static_cast<std::size_t>(b) : std::size_t{32} << 20;
}

// Bytes of data that a "from DRAM" benchmark cycles through: at least floor (the fixed size the
// benchmarks used on the 32 MiB L3 machines, so their runs stay comparable there) and at least four
// times the last-level cache, as issue 6 asks (128 MiB is less than half the Xeon's L3).
inline std::size_t dram_bytes(std::size_t floor) { return std::max(floor, 4 * llc_bytes()); }
// Bytes of w (a linear_weights, or a kernel's packed matrix) that one token's GEMV reads: for
// linear_weights the copy that linear() runs at one token (the base-3 copy of a ternary scheme holds
// 1.67 bits per weight where the qmatrix holds 2), else qmatrix_bytes. The DRAM pools are sized by
// these (from run 28), so that what the kernel streams is at least dram_bytes.
template <class W>
std::size_t streamed_bytes(const W& w, std::size_t qmatrix_bytes) {
  if constexpr (requires { w.storage_bytes(); }) {
    return w.storage_bytes();
  } else {
    const std::string k = W::kernel_for(1);
    if constexpr (requires { w.ternary_lut(); })
      if (k == "ternary_lut") return w.ternary_lut().storage_bytes();
    if constexpr (requires { w.lut(); })
      if (k == "lut") return w.lut().storage_bytes();
    if constexpr (requires { w.tiles(); })
      if (k == "int8_tiles") return w.tiles().storage_bytes();
    return qmatrix_bytes;
  }
}

// Floats in the read probe's buffer: dram_bytes(1 GiB), rounded up to stream_sum's 64 Ki-float chunks.
inline std::size_t probe_floats() {
  const std::size_t chunk = std::size_t{1} << 16;
  return (dram_bytes(std::size_t{1} << 30) / sizeof(float) + chunk - 1) / chunk * chunk;
}

// The probe's buffer of probe_floats() ones, made once, by the allocator that holds the library's
// weights (lowbit::aligned_allocator: huge pages where Linux allows them), so that the probe and the
// kernels read memory through pages of the same size. On the Xeon of run 26 huge pages were worth
// 1.06x to the probe (31.5 against 33.5 GB/s, 2 threads, prefetched; bench/README.md run 28).
inline const lowbit::aligned_vector<float>& probe_buffer() {
  static const lowbit::aligned_vector<float> buf(probe_floats(), 1.0f);
  return buf;
}

// Sums n floats (n a multiple of 65536; buf 32-byte aligned, as probe_buffer() is) in
// 64 Ki-float chunks split statically across the OpenMP threads, with four independent AVX2
// accumulators per thread, so that only the loads limit it. Prefetch > 0: each 128 bytes read also
// prefetches the 128 bytes Prefetch ahead into L2, as the kernels prefetch their code streams. On
// the Xeon of run 26 (2 threads, 2 GiB, medians of 9 interleaved passes) the plain read took 24.1
// GB/s and 4 KiB ahead 28.4 (2 KiB 25.9, 8 KiB 27.1): where the hardware prefetchers alone leave
// bandwidth unused, the kernels streamed faster than a plain probe, so the probes take both.
template <std::size_t Prefetch = 0>
float stream_sum(const float* buf, std::size_t n) {
  float total = 0.0f;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (std::size_t b = 0; b < n; b += 1 << 16) {
#if defined(__AVX2__)
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = b; i < b + (1 << 16); i += 32) {
      if constexpr (Prefetch != 0) {
        const char* ahead = reinterpret_cast<const char*>(buf + i) + Prefetch;
        _mm_prefetch(ahead, _MM_HINT_T1);
        _mm_prefetch(ahead + 64, _MM_HINT_T1);
      }
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
