// half / bfloat16 value types: exhaustive round trip and IEEE rounding of float inputs.
#include "lowbit/formats/half.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace {

using lowbit::bfloat16;
using lowbit::half;

TEST(half, every_bit_pattern_round_trips_through_float) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const half h = half::from_bits(static_cast<std::uint16_t>(b));
    const float f = static_cast<float>(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(half(f).bits, b);
  }
}

TEST(bfloat16, every_bit_pattern_decodes_to_the_top_half_of_a_float) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = static_cast<float>(bfloat16::from_bits(static_cast<std::uint16_t>(b)));
    const float want = std::bit_cast<float>(b << 16);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(f));
      continue;
    }
    EXPECT_EQ(std::bit_cast<std::uint32_t>(f), b << 16);
    EXPECT_EQ(bfloat16(f).bits, b);
  }
}

#if defined(__F16C__)
TEST(half, float_conversion_matches_the_f16c_instruction) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<std::uint32_t> raw;
  for (int i = 0; i < 1'000'000; ++i) {
    const float f = std::bit_cast<float>(raw(rng));
    const auto want = static_cast<std::uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), 0), 0));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(static_cast<float>(half(f))));
      continue;
    }
    ASSERT_EQ(half(f).bits, want) << f;
  }
}
#endif

TEST(bfloat16, rounds_to_nearest_even_and_overflows_to_inf) {
  EXPECT_EQ(bfloat16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3F80) << "tie to even";
  EXPECT_EQ(bfloat16(1.0f + 3 * std::ldexp(1.0f, -8)).bits, 0x3F82) << "tie to even (up)";
  EXPECT_EQ(bfloat16(3.4e38f).bits, 0x7F80) << "rounds past max to inf";
  EXPECT_EQ(half(65520.0f).bits, 0x7C00);
  EXPECT_EQ(half(65519.0f).bits, 0x7BFF);
}

} // namespace
