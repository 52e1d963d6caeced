// The shared rounding primitive and stochastic rounding across the three format families.
#include "lowbit/core/bits.hpp"
#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/integer.hpp"
#include "lowbit/formats/minifloat.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

namespace {

using namespace lowbit;
using detail::round_shift;

TEST(round_shift, nearest_even_matches_exact_division) {
  for (std::uint32_t sig = 0; sig < 4096; ++sig) {
    for (int shift = 0; shift <= 40; ++shift) {
      const double q = std::ldexp(static_cast<double>(sig), -shift);
      const double fl = std::floor(q), fr = q - fl;
      const double want = fr > 0.5 ? fl + 1 : fr < 0.5 ? fl : (std::fmod(fl, 2.0) == 0 ? fl : fl + 1);
      ASSERT_EQ(round_shift<rounding::nearest_even>(sig, shift, 0), want) << sig << " >> " << shift;
      ASSERT_EQ(round_shift<rounding::toward_zero>(sig, shift, 0), fl) << sig << " >> " << shift;
    }
  }
}

TEST(round_shift, stochastic_rounds_up_exactly_when_the_bits_are_below_the_fraction) {
  // sig / 2^shift = 2 + 3/8: up exactly when random < 0.375 * 2^32.
  const std::uint32_t sig = 19;
  const int shift = 3;
  const std::uint32_t cut = 3u << 29;
  EXPECT_EQ(round_shift<rounding::stochastic>(sig, shift, cut - 1), 3u);
  EXPECT_EQ(round_shift<rounding::stochastic>(sig, shift, cut), 2u);
  EXPECT_EQ(round_shift<rounding::stochastic>(16u, 3, 0), 2u) << "exact values never move";
  // A fraction below 2^-32 of the quantum never rounds up; 2^-31 sometimes does.
  EXPECT_EQ(round_shift<rounding::stochastic>(std::uint64_t{1}, 40, 0), 0u);
  EXPECT_EQ(round_shift<rounding::stochastic>(std::uint64_t{1} << 9, 40, 0), 1u);
  EXPECT_EQ(round_shift<rounding::stochastic>(std::uint64_t{1}, 200, 0), 0u);
}

TEST(random_bits, deterministic_and_seed_dependent) {
  EXPECT_EQ(random_bits(42, 7), random_bits(42, 7));
  EXPECT_NE(random_bits(42, 7), random_bits(43, 7));
  EXPECT_NE(random_bits(42, 7), random_bits(42, 8));
  // Roughly uniform: the mean of many draws is near 2^31.
  double mean = 0;
  const int n = 100'000;
  for (int i = 0; i < n; ++i) mean += random_bits(1, static_cast<std::uint64_t>(i));
  mean /= n;
  EXPECT_NEAR(mean / 4294967296.0, 0.5, 5 * std::sqrt(1.0 / 12 / n));
}

// Mean of stochastic encodings of x, decoded, over n draws: unbiased within 5 standard errors.
template <class F>
void expect_unbiased(float x) {
  const int n = 200'000;
  double sum = 0;
  const double lo = F::decode(F::template encode<rounding::toward_zero>(x));
  double hi = lo;
  for (int i = 0; i < n; ++i) {
    const double q =
        F::decode(F::template encode<rounding::stochastic>(x, random_bits(99, static_cast<std::uint64_t>(i))));
    if (q != lo) hi = q;
    sum += q;
  }
  const double gap = std::fabs(hi - lo);
  const double p = gap > 0 ? std::fabs(x - lo) / gap : 0.0;
  const double stderr_ = gap * std::sqrt(p * (1 - p) / n) + 1e-12;
  EXPECT_NEAR(sum / n, x, 5 * stderr_ + 1e-9) << format_name<F> << " x=" << x;
  // Only the two neighbours are ever produced.
  for (int i = 0; i < 1000; ++i) {
    const double q =
        F::decode(F::template encode<rounding::stochastic>(x, random_bits(5, static_cast<std::uint64_t>(i))));
    EXPECT_TRUE(q == lo || q == hi) << format_name<F> << " x=" << x << " q=" << q;
  }
}

TEST(stochastic_rounding, is_unbiased_for_every_family) {
  for (float x : {0.3f, 1.3f, 2.7f, -5.1f, 0.01f}) {
    expect_unbiased<fp4_e2m1>(x);
    expect_unbiased<fp8_e4m3>(x);
    expect_unbiased<fp8_e5m2>(x);
    expect_unbiased<int4>(x);
    expect_unbiased<uint8>(std::fabs(x));
  }
  for (float x : {0.3f, -0.05f, 0.9f}) {
    expect_unbiased<nf4>(x);
    expect_unbiased<ternary>(x);
  }
  expect_unbiased<fp8_e4m3>(std::ldexp(1.3f, -8)); // a subnormal gap
}

TEST(stochastic_rounding, same_bits_same_codes) {
  for (int i = 0; i < 1000; ++i) {
    const float x = 0.001f * static_cast<float>(i) - 0.5f;
    const std::uint32_t r = random_bits(3, static_cast<std::uint64_t>(i));
    EXPECT_EQ(fp4_e2m1::encode<rounding::stochastic>(x, r), fp4_e2m1::encode<rounding::stochastic>(x, r));
    EXPECT_EQ(int3::encode<rounding::stochastic>(x * 8, r), int3::encode<rounding::stochastic>(x * 8, r));
  }
}

} // namespace
