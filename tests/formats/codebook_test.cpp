// Codebook formats: published tables, nearest-value encoding with ties toward zero, against a
// brute-force scan written here.
#include "lowbit/formats/codebook.hpp"

#include "formats/test_names.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>

namespace {

using namespace lowbit;

// Brute force: the code whose value is nearest; ties toward the smaller magnitude; a zero result
// takes the input's sign where the table has -0; NaN gives the value nearest zero.
template <class F>
unsigned brute_nearest(double x) {
  const auto& v = F::values;
  if (std::isnan(x)) x = 0.0;
  unsigned best = 0;
  for (unsigned c = 1; c < v.size(); ++c) {
    // Compare distances exactly through the midpoint (x - v may round for huge x).
    const double a = v[best], b = v[c], mid = (a + b) / 2;
    if (a == b) continue;
    const bool c_closer = b > a ? x > mid : x < mid;
    const bool tie = x == mid;
    if (c_closer || (tie && (std::fabs(b) < std::fabs(a) || (std::fabs(b) == std::fabs(a) && b > a)))) best = c;
  }
  if (v[best] == 0) { // pick the zero whose sign matches
    for (unsigned c = 0; c < v.size(); ++c)
      if (v[c] == 0 && std::signbit(v[c]) == std::signbit(x)) return c;
    for (unsigned c = 0; c < v.size(); ++c)
      if (v[c] == 0 && !std::signbit(v[c])) return c;
  }
  return best;
}

template <class F>
class codebook_fmt : public ::testing::Test {};
using codebook_types = ::testing::Types<nf4, fp4_bnb, iq4nl, ternary, midrise<1>, midrise<2>, midrise<4>, midrise<8>>;
TYPED_TEST_SUITE(codebook_fmt, codebook_types, lowbit_test::format_test_names);

TYPED_TEST(codebook_fmt, every_code_round_trips_and_invalid_codes_are_nan) {
  using F = TypeParam;
  for (unsigned c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    if (c >= F::size) {
      EXPECT_TRUE(std::isnan(F::decode(code)));
      EXPECT_TRUE(F::is_nan(code));
      continue;
    }
    EXPECT_EQ(F::decode(code), F::values[c]);
    EXPECT_EQ(F::encode(F::values[c]), c);
    EXPECT_EQ(F::encode(static_cast<double>(F::values[c])), c);
  }
}

TYPED_TEST(codebook_fmt, midpoints_go_toward_zero_and_neighbours_to_the_nearest) {
  using F = TypeParam;
  for (std::size_t i = 0; i + 1 < F::distinct; ++i) {
    const double a = F::sorted[i].value, b = F::sorted[i + 1].value, mid = (a + b) / 2;
    const double tie_value = std::fabs(a) < std::fabs(b) ? a : b;
    EXPECT_EQ(F::decode(F::encode(mid)), tie_value) << mid;
    EXPECT_EQ(F::encode(mid), brute_nearest<F>(mid)) << mid;
    EXPECT_EQ(F::encode(std::nextafter(mid, -2.0)), brute_nearest<F>(std::nextafter(mid, -2.0)));
    EXPECT_EQ(F::encode(std::nextafter(mid, 2.0)), brute_nearest<F>(std::nextafter(mid, 2.0)));
    const float mf = static_cast<float>(mid);
    EXPECT_EQ(F::encode(mf), brute_nearest<F>(mf)) << mf;
  }
}

TYPED_TEST(codebook_fmt, random_values_match_the_brute_force_scan) {
  using F = TypeParam;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.5f, 1.5f);
  std::uniform_int_distribution<std::uint32_t> raw;
  for (int i = 0; i < 1'000'000; ++i) {
    const float x = i % 10 == 9 ? std::bit_cast<float>(raw(rng)) : u(rng);
    ASSERT_EQ(F::encode(x), brute_nearest<F>(x)) << x;
  }
}

TYPED_TEST(codebook_fmt, out_of_range_and_non_finite_inputs_clamp) {
  using F = TypeParam;
  constexpr float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(F::encode(inf), F::sorted[F::distinct - 1].code);
  EXPECT_EQ(F::encode(-inf), F::sorted[0].code);
  EXPECT_EQ((F::template encode<rounding::nearest_even, overflow::non_saturating>(inf)),
            F::sorted[F::distinct - 1].code);
  // NaN encodes as 0 does: the value nearest zero (of a +-a pair, +a).
  EXPECT_EQ(F::encode(std::numeric_limits<float>::quiet_NaN()), F::encode(0.0f));
  EXPECT_EQ(std::fabs(F::decode(F::encode(0.0f))), F::min_normal * (F::sorted[F::zero_index].value != 0));
  EXPECT_GE(F::decode(F::encode(0.0f)), 0.0f);
}

TYPED_TEST(codebook_fmt, toward_zero_never_increases_magnitude_past_the_input) {
  using F = TypeParam;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 20'000; ++i) {
    const float x = u(rng);
    const float q = F::decode(F::template encode<rounding::toward_zero>(x));
    if (std::fabs(q) > std::fabs(x)) { // only when no table value lies between 0 and x
      for (std::size_t j = 0; j < F::distinct; ++j) {
        const double v = F::sorted[j].value;
        EXPECT_FALSE(v * x >= 0 && std::fabs(v) <= std::fabs(x)) << x;
      }
    }
  }
}

TEST(codebook_published, nf4_is_the_qlora_table) {
  // Dettmers et al. 2023 (QLoRA), Appendix E; bitsandbytes' NF4 constants.
  const double qlora[16] = {-1.0,
                            -0.6961928009986877,
                            -0.5250730514526367,
                            -0.39491748809814453,
                            -0.28444138169288635,
                            -0.18477343022823334,
                            -0.09105003625154495,
                            0.0,
                            0.07958029955625534,
                            0.16093020141124725,
                            0.24611230194568634,
                            0.33791524171829224,
                            0.44070982933044434,
                            0.5626170039176941,
                            0.7229568362236023,
                            1.0};
  for (unsigned c = 0; c < 16; ++c) EXPECT_EQ(nf4::decode(static_cast<std::uint8_t>(c)), static_cast<float>(qlora[c]));
  EXPECT_EQ(nf4::encode(0.0f), 7u);
}

TEST(codebook_published, bnb_fp4_code_assignment) {
  // bitsandbytes FP4: sign in bit 3; magnitudes 0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4 by code.
  const double mag[8] = {0.0, 1.0 / 192, 2.0 / 3, 1.0, 1.0 / 3, 0.5, 1.0 / 6, 0.25};
  for (unsigned c = 0; c < 8; ++c) {
    EXPECT_NEAR(fp4_bnb::decode(static_cast<std::uint8_t>(c)), mag[c], 1e-7);
    EXPECT_NEAR(fp4_bnb::decode(static_cast<std::uint8_t>(c | 8)), -mag[c], 1e-7);
  }
  EXPECT_EQ(fp4_bnb::encode(-0.0f), 8u) << "negative zero keeps its code";
  EXPECT_EQ(fp4_bnb::encode(-0.001f), 8u);
}

TEST(codebook_published, iq4nl_is_the_gguf_table) {
  // llama.cpp's kvalues_iq4nl (ggml-common.h).
  const int gguf[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  for (unsigned c = 0; c < 16; ++c) EXPECT_EQ(iq4nl::decode(static_cast<std::uint8_t>(c)), static_cast<float>(gguf[c]));
  EXPECT_EQ(iq4nl::encode(0.0f), 8u) << "no zero: the value nearest it (1)";
  EXPECT_EQ(iq4nl::encode(-4.5f), 8u) << "the tie between -10 and 1 goes to the smaller magnitude";
  EXPECT_EQ(iq4nl::encode(-4.6f), 7u);
  EXPECT_EQ(iq4nl::encode(1000.0f), 15u);
  EXPECT_EQ(iq4nl::max_finite, 127.0);
}

TEST(codebook_published, ternary_is_round_and_clip) {
  EXPECT_EQ(ternary::encode(0.5f), 1u) << "tie toward zero, as torch.round's half-to-even does";
  EXPECT_EQ(ternary::encode(-0.5f), 1u);
  EXPECT_EQ(ternary::encode(0.51f), 2u);
  EXPECT_EQ(ternary::encode(-7.0f), 0u);
  EXPECT_EQ(ternary::decode(2), 1.0f);
  EXPECT_TRUE(std::isnan(ternary::decode(3)));
}

} // namespace
