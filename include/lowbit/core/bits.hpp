// Bit-level helpers shared by every layer: the IEEE-754 layout of the source floating types and
// a counter-based random-bit generator for stochastic rounding (SplitMix64 finalizer), so that
// a given (seed, index) always yields the same bits whatever the chunking or thread count.
#pragma once

#include <bit>
#include <cstdint>

namespace lowbit {

// Field widths of the IEEE binary formats the encoders read directly.
template <class T>
struct ieee_layout;

template <>
struct ieee_layout<float> {
  using uint = std::uint32_t;
  static constexpr int exponent_bits = 8;
  static constexpr int mantissa_bits = 23;
  static constexpr int bias = 127;
};

template <>
struct ieee_layout<double> {
  using uint = std::uint64_t;
  static constexpr int exponent_bits = 11;
  static constexpr int mantissa_bits = 52;
  static constexpr int bias = 1023;
};

// 32 uniformly distributed bits for element `index` of a stream seeded with `seed`.
constexpr std::uint32_t random_bits(std::uint64_t seed, std::uint64_t index) noexcept {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<std::uint32_t>(z >> 32);
}

} // namespace lowbit
