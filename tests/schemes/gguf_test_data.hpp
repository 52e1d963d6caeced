// Random GGUF tensors for the tests of schemes/gguf.hpp (tests/schemes/gguf_test.cpp and the kernels
// on GGUF weights, tests/kernels/gguf_linear_test.cpp).
#pragma once

#include "lowbit/schemes/gguf.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace lowbit_test {

// Random GGUF bytes: every code pattern, and scales d of both signs (fp16 with exponent fields
// 5-20, so |d| in [2^-10, 2^6) and never NaN or inf).
template <lowbit::gguf::block_type S>
std::vector<std::uint8_t> random_gguf_tensor(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> b(lowbit::gguf::tensor_bytes<S>(rows, cols));
  for (auto& v : b) v = static_cast<std::uint8_t>(rng());
  for (std::size_t o = 0; o < b.size(); o += lowbit::gguf::block_bytes<S>) {
    const unsigned sign = rng() & 1u, exponent = 5 + rng() % 16, mantissa = rng() & 0x3FFu;
    const unsigned d = sign << 15 | exponent << 10 | mantissa;
    b[o] = static_cast<std::uint8_t>(d & 0xFF);
    b[o + 1] = static_cast<std::uint8_t>(d >> 8);
  }
  return b;
}

} // namespace lowbit_test
