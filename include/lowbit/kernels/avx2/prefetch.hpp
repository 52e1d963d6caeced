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

#include <algorithm>
#include <cstddef>
#include <cstdint>

// Whether the kernels that prefetch their code streams also prefetch the side streams read beside
// them (scales and zero points, kept in arrays of their own), on the same lead (side_ahead). On a
// Zen 5 from DRAM (N = 1, 2 threads, in-process A/B, bench/README.md run 22) that took one-token
// GEMV on the int8 tiles to 1.03-1.08x the speed with NVFP4 and 1.05-1.06x with MXFP4, and on the
// bit-plane LUT kernel to 1.02-1.05x with INT2-g32; schemes with thin side streams (INT4-g128,
// INT8-g128) moved within the noise.
#ifndef LOWBIT_SIDE_PREFETCH
#define LOWBIT_SIDE_PREFETCH 1
#endif

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

inline constexpr bool side_prefetch = LOWBIT_SIDE_PREFETCH != 0;

// Bytes ahead in a side stream of side_bytes per tile that keep the lead of `ahead` bytes in a code
// stream of code_bytes per tile (the same number of blocks ahead); at least one line, so that a
// stream thinner than a line a block still reaches the next line.
constexpr std::size_t side_ahead(std::size_t ahead, std::size_t side_bytes, std::size_t code_bytes) noexcept {
  return code_bytes == 0 ? 64 : std::max<std::size_t>(64, ahead * side_bytes / code_bytes);
}

} // namespace lowbit::kernels::avx2
