// Software prefetch of a weight stream into L2, for the LUT kernels (and the int8 tiles, where
// LOWBIT_TILED_PREFETCH turns it on).
//
// The weights of a GEMV are read once, so they are fetched into L2 (prefetcht1), not L1: in L1 they
// would evict the activation tables and the quantized activations, which every row reads again.
// Measured on a Zen 4 from DRAM (bench/README.md, run 14): at the same distance, the LUT kernels
// streamed their weights 15-45 % faster with L2 as the target than with L1.
#pragma once

#include "lowbit/core/config.hpp"

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace lowbit::kernels::avx2 {

// Prefetches Bytes bytes (whole 64-byte lines) starting `ahead` bytes past p into L2. The address
// may lie past the end of the buffer: it is formed as an integer, and prefetches never fault.
template <std::size_t Bytes>
LOWBIT_ALWAYS_INLINE inline void prefetch_l2(const void* p, std::size_t ahead) noexcept {
  static_assert(Bytes % 64 == 0, "whole cache lines");
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p) + ahead;
  LOWBIT_UNROLL
  for (std::size_t l = 0; l < Bytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(a + l), _MM_HINT_T1);
}

} // namespace lowbit::kernels::avx2
