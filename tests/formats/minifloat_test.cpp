// Minifloat formats against the independent reference (reference.hpp) and the published specs.
#include "formats/reference.hpp"

#include "lowbit/formats/minifloat.hpp"

#include "formats/test_names.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace lowbit;

template <class F>
class minifloat_format : public ::testing::Test {};
using minifloat_types = ::testing::Types<fp8_e4m3, fp8_e5m2, fp8_e4m3fnuz, fp8_e5m2fnuz, fp6_e3m2, fp6_e2m3, fp4_e2m1,
                                         fp4_e1m2, fp4_e3m0, e8m0, ue4m3, ue5m3, fp16, bf16>;
TYPED_TEST_SUITE(minifloat_format, minifloat_types, lowbit_test::format_test_names);

// Same double, NaN matching NaN, and the sign of zero compared.
::testing::AssertionResult same_value(double got, double want) {
  if (std::isnan(got) && std::isnan(want)) return ::testing::AssertionSuccess();
  if (got == want && std::signbit(got) == std::signbit(want)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want;
}

template <class F, rounding R, overflow O>
unsigned lib_encode(double x, bool from_float) {
  return from_float ? F::template encode<R, O>(static_cast<float>(x)) : F::template encode<R, O>(x);
}

// Compares the library with the reference for one input under all four (rounding, overflow)
// combinations the reference models.
template <class F>
::testing::AssertionResult agrees(const ref::table& t, double x, bool from_float) {
  struct combo {
    unsigned got;
    ref::mode md;
    ref::ovf o;
  } combos[] = {
      {lib_encode<F, rounding::nearest_even, overflow::saturate>(x, from_float), ref::mode::nearest_even,
       ref::ovf::saturate},
      {lib_encode<F, rounding::nearest_even, overflow::non_saturating>(x, from_float), ref::mode::nearest_even,
       ref::ovf::non_saturating},
      {lib_encode<F, rounding::toward_zero, overflow::saturate>(x, from_float), ref::mode::toward_zero,
       ref::ovf::saturate},
      {lib_encode<F, rounding::toward_zero, overflow::non_saturating>(x, from_float), ref::mode::toward_zero,
       ref::ovf::non_saturating},
  };
  for (const combo& c : combos) {
    const unsigned want = ref::encode(t, from_float ? static_cast<double>(static_cast<float>(x)) : x, c.md, c.o);
    if (c.got != want)
      return ::testing::AssertionFailure() << std::hexfloat << "x=" << x << (from_float ? " (float)" : " (double)")
                                           << " mode=" << static_cast<int>(c.md) << " ovf=" << static_cast<int>(c.o)
                                           << std::hex << ": got 0x" << c.got << ", want 0x" << want;
  }
  return ::testing::AssertionSuccess();
}

TYPED_TEST(minifloat_format, properties_match_the_published_layout) {
  using F = TypeParam;
  constexpr ref::spec s = ref::spec_of<F>;
  EXPECT_EQ(F::bits, s.storage_bits);
  EXPECT_EQ(F::is_signed, s.is_signed);
  EXPECT_EQ(F::has_inf, s.rule == ref::nan_rule::ieee);
  EXPECT_EQ(F::has_nan, s.rule != ref::nan_rule::finite);
  const ref::table t = ref::make_table(s);
  EXPECT_EQ(F::max_finite, ref::decode(s, t.kmax));
  EXPECT_EQ(F::max_code, t.kmax);
  const double smallest = ref::decode(s, s.has_zero ? 1 : 0);
  EXPECT_EQ(F::min_subnormal, smallest);
  EXPECT_EQ(F::min_normal, std::ldexp(1.0, s.has_zero ? 1 - s.bias : -s.bias));
}

TYPED_TEST(minifloat_format, decodes_every_code_like_the_bit_field_reference) {
  using F = TypeParam;
  for (unsigned c = 0; c < (1u << F::bits); ++c) {
    const auto code = static_cast<typename F::storage>(c);
    const double want = ref::decode(ref::spec_of<F>, c);
    ASSERT_TRUE(same_value(F::decode_double(code), want)) << "code 0x" << std::hex << c;
    ASSERT_TRUE(same_value(F::decode(code), static_cast<float>(want))) << "code 0x" << std::hex << c;
    EXPECT_EQ(F::is_nan(code), std::isnan(want)) << "code 0x" << std::hex << c;
  }
}

TYPED_TEST(minifloat_format, every_code_round_trips) {
  using F = TypeParam;
  for (unsigned c = 0; c < (1u << F::bits); ++c) {
    const auto code = static_cast<typename F::storage>(c);
    const double v = F::decode_double(code);
    if (std::isnan(v)) continue;
    EXPECT_EQ((F::template encode<rounding::nearest_even, overflow::non_saturating>(v)), c) << "double, code " << c;
    EXPECT_EQ((F::template encode<rounding::nearest_even, overflow::non_saturating>(static_cast<float>(v))), c)
        << "float, code " << c;
    EXPECT_EQ((F::template encode<rounding::toward_zero, overflow::non_saturating>(v)), c) << "code " << c;
    if (!std::isinf(v)) {
      EXPECT_EQ((F::template encode<rounding::nearest_even, overflow::saturate>(v)), c) << "code " << c;
    }
  }
}

// Midpoints between adjacent magnitudes (the virtual value past max included) and the
// neighbouring floats and doubles on either side, both signs.
TYPED_TEST(minifloat_format, midpoints_and_their_neighbours_round_like_the_reference) {
  using F = TypeParam;
  const ref::table t = ref::make_table(ref::spec_of<F>);
  std::vector<double> vals;
  for (const auto& c : t.c) vals.push_back(c.v);
  if (ref::spec_of<F>.has_zero) vals.insert(vals.begin(), 0.0);
  for (std::size_t i = 0; i + 1 < vals.size(); ++i) {
    const double mid = (vals[i] + vals[i + 1]) / 2;
    for (double sign : {1.0, -1.0}) {
      const double m = sign * mid;
      const float mf = static_cast<float>(m);
      for (double x : {m, std::nextafter(m, 0.0), std::nextafter(m, sign * 1e300)}) ASSERT_TRUE(agrees<F>(t, x, false));
      if (static_cast<double>(mf) == m) {
        const float away = static_cast<float>(sign) * 3e38f;
        for (float x : {mf, std::nextafter(mf, 0.0f), std::nextafter(mf, away)}) ASSERT_TRUE(agrees<F>(t, x, true));
      }
      ASSERT_TRUE(agrees<F>(t, sign * vals[i + 1], true));
    }
  }
}

// Random floats over and beyond the range, and random bit patterns (NaN, inf, subnormals).
TYPED_TEST(minifloat_format, random_floats_match_a_brute_force_nearest_search) {
  using F = TypeParam;
  const ref::table t = ref::make_table(ref::spec_of<F>);
  const int n = F::bits <= 8 ? 1'000'000 : 20'000; // the reference scans every code
  std::mt19937_64 rng(1234 + F::bits);
  const int lo_exp = std::ilogb(F::min_subnormal) - 3, hi_exp = std::ilogb(F::max_finite) + 3;
  std::uniform_int_distribution<int> e(lo_exp, hi_exp);
  std::uniform_real_distribution<double> m(1.0, 2.0);
  std::uniform_int_distribution<std::uint32_t> raw;
  for (int i = 0; i < n; ++i) {
    const bool bits = i % 8 == 7;
    const float x =
        bits ? std::bit_cast<float>(raw(rng)) : static_cast<float>((i & 1 ? -1 : 1) * std::ldexp(m(rng), e(rng)));
    const unsigned want = ref::encode(t, x, ref::mode::nearest_even, ref::ovf::saturate);
    const unsigned got = F::encode(x);
    ASSERT_EQ(got, want) << std::hexfloat << "x=" << x;
    if (i % 16 == 0) {
      ASSERT_TRUE(agrees<F>(t, x, true));
    }
  }
}

TYPED_TEST(minifloat_format, special_values) {
  using F = TypeParam;
  constexpr double inf = std::numeric_limits<double>::infinity();
  constexpr float nanf = std::numeric_limits<float>::quiet_NaN();
  // ml_dtypes saturates finite values only: inf stays inf, or NaN, or max where neither exists.
  for (double pinf : {F::decode_double(F::encode(static_cast<float>(inf))),
                      F::decode_double(F::template encode<rounding::nearest_even, overflow::non_saturating>(inf))}) {
    if (F::has_inf) {
      EXPECT_EQ(pinf, inf);
    } else if (F::has_nan) {
      EXPECT_TRUE(std::isnan(pinf));
    } else {
      EXPECT_EQ(pinf, F::max_finite);
    }
  }
  EXPECT_EQ(F::decode_double(F::encode(F::max_finite * 4)), F::max_finite) << "finite overflow saturates";
  if (F::has_nan) {
    EXPECT_TRUE(F::is_nan(F::encode(nanf)));
    EXPECT_TRUE(F::is_nan(F::encode(-nanf)));
  } else {
    EXPECT_EQ(F::decode(F::encode(nanf)), 0.0f) << "formats without NaN encode NaN as a zero";
    EXPECT_EQ(F::encode(nanf), F::sign_mask) << "+NaN -> the sign-only code, as ml_dtypes";
    EXPECT_EQ(F::encode(-nanf), 0u);
  }
  if (F::has_zero) {
    EXPECT_EQ(F::encode(0.0f), 0u);
    EXPECT_EQ(F::decode(F::encode(0.0f)), 0.0f);
  }
  if (F::has_subnormals) { // subnormals are exact and distinct
    EXPECT_EQ(F::decode_double(F::encode(F::min_subnormal)), F::min_subnormal);
    EXPECT_EQ(F::decode_double(F::encode(F::min_subnormal * 0.75)), F::min_subnormal);
    EXPECT_EQ(F::decode_double(F::encode(F::min_subnormal * 0.5)), 0.0) << "the tie goes to even (zero)";
    EXPECT_EQ(F::decode_double(F::encode(F::min_subnormal * 1.5)), F::min_subnormal * 2);
  }
}

TEST(minifloat_published, ocp_fp8_and_mx_ranges) {
  EXPECT_EQ(fp8_e4m3::max_finite, 448.0);
  EXPECT_EQ(fp8_e5m2::max_finite, 57344.0);
  EXPECT_EQ(fp6_e3m2::max_finite, 28.0);
  EXPECT_EQ(fp6_e2m3::max_finite, 7.5);
  EXPECT_EQ(fp4_e2m1::max_finite, 6.0);
  EXPECT_EQ(fp8_e4m3fnuz::max_finite, 240.0);
  EXPECT_EQ(fp8_e5m2fnuz::max_finite, 57344.0);
  EXPECT_EQ(ue4m3::max_finite, 448.0);
  EXPECT_EQ(e8m0::max_finite, std::ldexp(1.0, 127));
  EXPECT_EQ(e8m0::min_normal, std::ldexp(1.0, -127));
  EXPECT_EQ(fp8_e4m3::min_subnormal, std::ldexp(1.0, -9));
  EXPECT_EQ(fp8_e5m2::min_subnormal, std::ldexp(1.0, -16));
  EXPECT_EQ(fp16::max_finite, 65504.0);
}

TEST(minifloat_published, e2m1_has_exactly_the_eight_ocp_magnitudes) {
  const float want[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (unsigned c = 0; c < 8; ++c) {
    EXPECT_EQ(fp4_e2m1::decode(static_cast<std::uint8_t>(c)), want[c]);
    EXPECT_EQ(fp4_e2m1::decode(static_cast<std::uint8_t>(c | 8)), -want[c]);
  }
}

TEST(minifloat_published, nan_and_inf_codes) {
  EXPECT_TRUE(fp8_e4m3::is_nan(0x7F) && fp8_e4m3::is_nan(0xFF));
  EXPECT_EQ(fp8_e4m3::decode(0x7E), 448.0f);
  EXPECT_TRUE(std::isinf(fp8_e5m2::decode(0x7C)) && std::isinf(fp8_e5m2::decode(0xFC)));
  for (unsigned c : {0x7Du, 0x7Eu, 0x7Fu, 0xFDu}) EXPECT_TRUE(fp8_e5m2::is_nan(static_cast<std::uint8_t>(c)));
  EXPECT_TRUE(fp8_e4m3fnuz::is_nan(0x80));
  EXPECT_EQ(fp8_e4m3fnuz::decode(0x7F), 240.0f);
  EXPECT_EQ(fp8_e4m3fnuz::decode(0xFF), -240.0f);
  EXPECT_TRUE(e8m0::is_nan(0xFF));
  EXPECT_EQ(e8m0::decode(127), 1.0f);
  EXPECT_TRUE(ue4m3::is_nan(0x7F));
  EXPECT_TRUE(ue4m3::is_nan(0x80)) << "the unused top bit of UE4M3 is not a valid code";
}

// Pitfalls other libraries shipped, each pinned.
TEST(minifloat_pitfalls, e2m1_ties_go_to_even) {
  const std::pair<float, float> cases[] = {{0.25f, 0.0f}, {0.75f, 1.0f}, {1.25f, 1.0f}, {1.75f, 2.0f},
                                           {2.5f, 2.0f},  {3.5f, 4.0f},  {5.0f, 4.0f},  {-5.0f, -4.0f}};
  for (auto [x, want] : cases) EXPECT_EQ(fp4_e2m1::decode(fp4_e2m1::encode(x)), want) << x;
}

TEST(minifloat_pitfalls, double_input_is_rounded_once) {
  // 1.0625 is the E4M3 tie between 1.0 and 1.125 (goes to even: 1.0). A double just above it
  // rounds to exactly 1.0625 as a float, so going through float would give 1.0; the exact answer
  // is 1.125.
  const double x = 1.0625 + std::ldexp(1.0, -40);
  ASSERT_EQ(static_cast<double>(static_cast<float>(x)), 1.0625);
  EXPECT_EQ(fp8_e4m3::decode(fp8_e4m3::encode(static_cast<float>(x))), 1.0f);
  EXPECT_EQ(fp8_e4m3::decode(fp8_e4m3::encode(x)), 1.125f);
  EXPECT_EQ(fp4_e2m1::decode(fp4_e2m1::encode(2.5 + 1e-12)), 3.0f);
  EXPECT_EQ(bf16::decode(bf16::encode(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40))), 1.0f + 0.0078125f);
}

TEST(minifloat_pitfalls, rounding_up_near_max_overflows_only_past_the_midpoint) {
  auto e5m2 = [](float x) {
    return fp8_e5m2::decode(fp8_e5m2::encode<rounding::nearest_even, overflow::non_saturating>(x));
  };
  EXPECT_EQ(e5m2(57344.0f), 57344.0f);
  EXPECT_EQ(e5m2(61439.0f), 57344.0f);
  EXPECT_TRUE(std::isinf(e5m2(61440.0f))) << "the tie goes to even, which is 2^16: out of range";
  EXPECT_EQ(fp8_e5m2::decode(fp8_e5m2::encode(61440.0f)), 57344.0f) << "saturating";
  auto e4m3 = [](float x) {
    return fp8_e4m3::decode(fp8_e4m3::encode<rounding::nearest_even, overflow::non_saturating>(x));
  };
  EXPECT_EQ(e4m3(464.0f), 448.0f) << "tie between 448 (even) and 480";
  EXPECT_TRUE(std::isnan(e4m3(464.01f)));
  EXPECT_EQ(fp8_e4m3::decode(fp8_e4m3::encode(1e30f)), 448.0f);
}

TEST(minifloat_pitfalls, formats_without_negative_zero_never_produce_it) {
  for (float x : {-0.0f, -1e-30f, -std::ldexp(1.0f, -20)}) {
    EXPECT_EQ(fp8_e4m3fnuz::encode(x), 0x00) << x;
    EXPECT_EQ(fp8_e5m2fnuz::encode(x), 0x00) << x;
    EXPECT_EQ((fp8_e4m3fnuz::encode<rounding::toward_zero, overflow::non_saturating>(x)), 0x00) << x;
  }
  EXPECT_EQ(fp8_e4m3::encode(-0.0f), 0x80) << "formats with -0 keep it";
  EXPECT_EQ(fp4_e2m1::encode(-0.1f), 0x8);
}

TEST(minifloat_pitfalls, unsigned_scale_formats_reject_negatives) {
  constexpr auto ns = overflow::non_saturating;
  EXPECT_TRUE(e8m0::is_nan(e8m0::encode<rounding::nearest_even, ns>(-1.0f)));
  EXPECT_TRUE(ue4m3::is_nan(ue4m3::encode<rounding::nearest_even, ns>(-1.0f)));
  EXPECT_EQ(e8m0::encode(-1.0f), 0x00) << "saturating: the lowest value";
  EXPECT_EQ(ue4m3::encode(-1.0f), 0x00);
  EXPECT_EQ(ue4m3::encode(-0.0f), 0u);
  EXPECT_TRUE(e8m0::is_nan(e8m0::encode(-std::numeric_limits<float>::infinity()))) << "inf is never saturated";
}

TEST(minifloat_pitfalls, e8m0_has_no_zero_and_ties_round_up) {
  constexpr auto ns = overflow::non_saturating;
  EXPECT_TRUE(e8m0::is_nan(e8m0::encode<rounding::nearest_even, ns>(0.0f))) << "zero is not representable";
  EXPECT_EQ(e8m0::encode(0.0f), 0x00) << "saturating: 2^-127";
  EXPECT_EQ(e8m0::encode(1e-45f), 0x00) << "underflow stays at the smallest value";
  EXPECT_EQ(e8m0::decode(e8m0::encode(1.5f)), 2.0f);
  EXPECT_EQ(e8m0::decode(e8m0::encode(3.0f)), 4.0f);
  EXPECT_EQ(e8m0::decode(e8m0::encode(0.75f)), 1.0f);
  EXPECT_EQ(e8m0::decode(e8m0::encode(2.9f)), 2.0f);
  EXPECT_TRUE(e8m0::is_nan(e8m0::encode<rounding::nearest_even, ns>(std::ldexp(1.5f, 127))));
}

} // namespace
