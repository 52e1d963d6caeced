// Integer formats: every code, every rounding boundary, clamping, against ref::encode_int.
#include "formats/reference.hpp"

#include "lowbit/formats/integer.hpp"

#include "formats/test_names.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>

namespace {

using namespace lowbit;

template <class F>
class integer_fmt : public ::testing::Test {};
using integer_types = ::testing::Types<int2, int3, int4, int5, int6, int7, int8, uint2, uint3, uint4, uint5, uint6,
                                       uint7, uint8, int2_sym, int3_sym, int4_sym, int8_sym>;
TYPED_TEST_SUITE(integer_fmt, integer_types, lowbit_test::format_test_names);

TYPED_TEST(integer_fmt, range_follows_bits_and_signedness) {
  using F = TypeParam;
  const int n = F::bits;
  if (!F::is_signed) {
    EXPECT_EQ(F::min_value, 0);
    EXPECT_EQ(F::max_value, (1 << n) - 1);
  } else {
    EXPECT_EQ(F::max_value, (1 << (n - 1)) - 1);
    EXPECT_EQ(F::min_value, F::symmetric_range ? -F::max_value : -(1 << (n - 1)));
  }
}

TYPED_TEST(integer_fmt, every_code_decodes_to_its_twos_complement_value_and_round_trips) {
  using F = TypeParam;
  for (unsigned c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    if (c >> F::bits) {
      EXPECT_TRUE(std::isnan(F::decode(code))) << c;
      continue;
    }
    const int want =
        (F::is_signed && (c >> (F::bits - 1))) ? static_cast<int>(c) - (1 << F::bits) : static_cast<int>(c);
    EXPECT_EQ(F::decode(code), static_cast<float>(want));
    if (want < F::min_value) continue; // the symmetric range's unused -2^(n-1)
    EXPECT_EQ(F::encode(static_cast<float>(want)), c);
    EXPECT_EQ(F::encode(static_cast<double>(want)), c);
  }
}

TYPED_TEST(integer_fmt, half_integers_ties_and_neighbours_match_the_reference) {
  using F = TypeParam;
  for (int k = F::min_value - 3; k <= F::max_value + 3; ++k) {
    for (double d : {0.5, 0.25, 0.75}) {
      const double x = k + d;
      for (double y : {x, std::nextafter(x, -1e9), std::nextafter(x, 1e9)}) {
        EXPECT_EQ(F::to_int(F::encode(y)), ref::encode_int(y, F::min_value, F::max_value, ref::mode::nearest_even))
            << y;
        EXPECT_EQ(F::to_int(F::template encode<rounding::toward_zero>(y)),
                  ref::encode_int(y, F::min_value, F::max_value, ref::mode::toward_zero))
            << y;
        const float yf = static_cast<float>(y);
        EXPECT_EQ(F::to_int(F::encode(yf)), ref::encode_int(yf, F::min_value, F::max_value, ref::mode::nearest_even))
            << yf;
      }
    }
  }
}

TYPED_TEST(integer_fmt, random_floats_and_bit_patterns_match_the_reference) {
  using F = TypeParam;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(static_cast<float>(F::min_value) - 40.0f,
                                          static_cast<float>(F::max_value) + 40.0f);
  std::uniform_int_distribution<std::uint32_t> raw;
  for (int i = 0; i < 200'000; ++i) {
    const float x = i % 4 == 3 ? std::bit_cast<float>(raw(rng)) : u(rng);
    ASSERT_EQ(F::to_int(F::encode(x)), ref::encode_int(x, F::min_value, F::max_value, ref::mode::nearest_even)) << x;
  }
}

TYPED_TEST(integer_fmt, non_finite_inputs_have_documented_results) {
  using F = TypeParam;
  constexpr float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(F::to_int(F::encode(std::numeric_limits<float>::quiet_NaN())), 0);
  EXPECT_EQ(F::to_int(F::encode(inf)), F::max_value);
  EXPECT_EQ(F::to_int(F::encode(-inf)), F::min_value);
  EXPECT_EQ(F::to_int(F::template encode<rounding::nearest_even, overflow::non_saturating>(inf)), F::max_value)
      << "integers have no inf: non-saturating also clamps";
  EXPECT_EQ(F::to_int(F::encode(1e300)), F::max_value);
  EXPECT_EQ(F::to_int(F::encode(-0.0f)), 0);
}

TEST(integer_published, int4_symmetric_range_is_minus7_to_7) {
  EXPECT_EQ(int4_sym::to_int(int4_sym::encode(-100.0f)), -7);
  EXPECT_EQ(int4::to_int(int4::encode(-100.0f)), -8);
  EXPECT_EQ(int4::encode(-1.0f), 0xF) << "two's complement in the low bits";
  EXPECT_EQ(int8::to_int(int8::encode(-127.5f)), -128) << "tie to even";
  EXPECT_EQ(int8_sym::to_int(int8_sym::encode(-127.5f)), -127);
}

} // namespace
