// Span conversions: the dispatching encode_span / decode_span (AVX2 where compiled) against the
// scalar reference::encode_span / decode_span, bit for bit, over special values, every upper-half
// float pattern, every half and bfloat16, and every tail length.
#include "lowbit/formats/catalog.hpp"
#include "lowbit/formats/convert.hpp"

#include "formats/test_names.hpp"

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace lowbit;

std::vector<float> probe_floats() {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          -std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max()};
  std::mt19937 rng(17);
  std::uniform_int_distribution<std::uint32_t> low(0, 0xFFFF);
  for (std::uint32_t hi = 0; hi < 65536; ++hi) {
    v.push_back(std::bit_cast<float>(hi << 16));              // exact bf16-like values
    v.push_back(std::bit_cast<float>((hi << 16) | low(rng))); // arbitrary low bits
    v.push_back(std::bit_cast<float>((hi << 16) | 0x8000u));  // halfway-style patterns
  }
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int i = 0; i < 100'000; ++i) v.push_back(g(rng) * (i % 3 == 0 ? 0.01f : i % 3 == 1 ? 3.0f : 300.0f));
  return v;
}

template <class F, overflow O, class Src>
void expect_encode_matches(const std::vector<Src>& in) {
  std::vector<typename F::storage> fast(in.size()), slow(in.size());
  encode_span<F, rounding::nearest_even, O>(std::span<const Src>(in), std::span(fast));
  reference::encode_span<F, rounding::nearest_even, O>(std::span<const Src>(in), std::span(slow));
  for (std::size_t i = 0; i < in.size(); ++i)
    ASSERT_EQ(fast[i], slow[i]) << format_name<F> << " input #" << i << " = "
                                << static_cast<double>(detail::widen(in[i]));
}

template <class F>
class convert_fmt : public ::testing::Test {};
template <class>
struct to_types;
template <class... Fs>
struct to_types<format_list<Fs...>> {
  using type = ::testing::Types<Fs..., fp16, bf16>;
};
TYPED_TEST_SUITE(convert_fmt, to_types<all_scalar_formats>::type, lowbit_test::format_test_names);

TYPED_TEST(convert_fmt, encode_span_matches_the_scalar_reference) {
  using F = TypeParam;
  const std::vector<float> x = probe_floats();
  expect_encode_matches<F, overflow::saturate>(x);
  expect_encode_matches<F, overflow::non_saturating>(x);
  std::vector<half> h(65536);
  std::vector<bfloat16> b(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) {
    h[i] = half::from_bits(static_cast<std::uint16_t>(i));
    b[i] = bfloat16::from_bits(static_cast<std::uint16_t>(i));
  }
  expect_encode_matches<F, overflow::saturate>(h);
  expect_encode_matches<F, overflow::saturate>(b);
  expect_encode_matches<F, overflow::non_saturating>(h);
}

TYPED_TEST(convert_fmt, every_tail_length_is_encoded_and_nothing_beyond_it_written) {
  using F = TypeParam;
  for (std::size_t n = 0; n <= 40; ++n) {
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = 0.37f * static_cast<float>(i) - 3.0f;
    std::vector<typename F::storage> fast(n + 8, 0xAB), slow(n);
    encode_span<F>(std::span<const float>(x), std::span(fast).first(n));
    reference::encode_span<F>(std::span<const float>(x), std::span(slow));
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(fast[i], slow[i]) << "n=" << n << " i=" << i;
    for (std::size_t i = n; i < n + 8; ++i) ASSERT_EQ(fast[i], 0xAB) << "wrote past the end, n=" << n;
  }
}

template <class F, class Dst>
void expect_decode_matches() {
  std::vector<typename F::storage> codes;
  for (std::uint32_t c = 0; c < (F::bits <= 8 ? 256u : 65536u); ++c)
    codes.push_back(static_cast<typename F::storage>(c));
  for (std::size_t n : {codes.size(), std::size_t{13}, std::size_t{0}}) {
    std::vector<Dst> fast(n), slow(n);
    const auto in = std::span<const typename F::storage>(codes).first(n);
    decode_span<F>(in, std::span(fast));
    reference::decode_span<F>(in, std::span(slow));
    for (std::size_t i = 0; i < n; ++i) {
      const double a = static_cast<double>(fast[i]), b = static_cast<double>(slow[i]);
      if (std::isnan(b)) {
        ASSERT_TRUE(std::isnan(a)) << format_name<F> << " code " << i;
      } else {
        ASSERT_EQ(std::bit_cast<std::uint64_t>(a), std::bit_cast<std::uint64_t>(b)) << format_name<F> << " code " << i;
      }
    }
  }
}

TYPED_TEST(convert_fmt, decode_span_matches_the_scalar_reference_for_every_output_type) {
  using F = TypeParam;
  expect_decode_matches<F, float>();
  expect_decode_matches<F, double>();
  expect_decode_matches<F, half>();
  expect_decode_matches<F, bfloat16>();
}

TEST(convert, mismatched_sizes_throw_with_both_sizes_named) {
  std::vector<float> x(10);
  std::vector<std::uint8_t> c(9);
  EXPECT_THROW(encode_span<fp8_e4m3>(std::span<const float>(x), std::span(c)), lowbit::invalid_argument);
  EXPECT_THROW(decode_span<fp8_e4m3>(std::span<const std::uint8_t>(c), std::span(x)), lowbit::invalid_argument);
  try {
    encode_span<int4>(std::span<const float>(x), std::span(c));
  } catch (const lowbit::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("got 9"), std::string::npos) << e.what();
  }
}

TEST(convert, stochastic_span_is_deterministic_per_seed_and_unbiased) {
  std::vector<float> x(100'000, 0.3f);
  std::vector<std::uint8_t> a(x.size()), b(x.size()), c(x.size());
  encode_span<fp4_e2m1, rounding::stochastic>(std::span<const float>(x), std::span(a), 1);
  encode_span<fp4_e2m1, rounding::stochastic>(std::span<const float>(x), std::span(b), 1);
  encode_span<fp4_e2m1, rounding::stochastic>(std::span<const float>(x), std::span(c), 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double mean = 0;
  for (auto code : a) mean += fp4_e2m1::decode(code);
  mean /= static_cast<double>(a.size());
  EXPECT_NEAR(mean, 0.3, 5 * 0.5 * std::sqrt(0.6 * 0.4 / 100'000.0));
}

TEST(convert, double_spans_round_once) {
  const std::vector<double> x = {1.0625 + std::ldexp(1.0, -40), -1.0625 - std::ldexp(1.0, -40)};
  std::vector<std::uint8_t> c(2);
  encode_span<fp8_e4m3>(std::span<const double>(x), std::span(c));
  EXPECT_EQ(fp8_e4m3::decode(c[0]), 1.125f);
  EXPECT_EQ(fp8_e4m3::decode(c[1]), -1.125f);
}

} // namespace

namespace custom {

// A format defined by a user in one alias each: both go through every entry point.
using fp8_e4m3b11fnuz = lowbit::minifloat<4, 3, 11, lowbit::special_values::fnuz>;
struct three_bit_table {
  static constexpr int bits = 3;
  static constexpr std::array<float, 8> values = {-1.0f, -0.5f, -0.25f, 0.0f, 0.25f, 0.5f, 0.75f, 1.0f};
};
using three_bit = lowbit::codebook<three_bit_table>;

static_assert(lowbit::scalar_format<fp8_e4m3b11fnuz> && lowbit::scalar_format<three_bit>);

TEST(custom_formats, a_user_alias_works_everywhere) {
  EXPECT_EQ(fp8_e4m3b11fnuz::max_finite, 30.0); // 1.875 * 2^(15 - 11)
  EXPECT_EQ(lowbit::format_name<three_bit>, "custom");
  const std::vector<float> x = {0.3f, -0.8f, 100.0f, 0.6f, -0.0f, 0.125f, 0.1f, 0.9f, 0.7f};
  std::vector<std::uint8_t> a(x.size()), b(x.size());
  lowbit::encode_span<three_bit>(std::span<const float>(x), std::span(a));
  lowbit::reference::encode_span<three_bit>(std::span<const float>(x), std::span(b));
  EXPECT_EQ(a, b);
  std::vector<float> y(x.size());
  lowbit::decode_span<three_bit>(std::span<const std::uint8_t>(a), std::span(y));
  EXPECT_EQ(y, (std::vector<float>{0.25f, -1.0f, 1.0f, 0.5f, 0.0f, 0.0f, 0.0f, 1.0f, 0.75f}));
  lowbit::encode_span<fp8_e4m3b11fnuz>(std::span<const float>(x), std::span(a));
  lowbit::reference::encode_span<fp8_e4m3b11fnuz>(std::span<const float>(x), std::span(b));
  EXPECT_EQ(a, b);
  EXPECT_EQ(fp8_e4m3b11fnuz::decode(a[2]), 30.0f);
}

template <class List>
struct all_satisfy;
template <class... Fs>
struct all_satisfy<lowbit::format_list<Fs...>> {
  static constexpr bool value = (lowbit::scalar_format<Fs> && ...);
};
static_assert(all_satisfy<lowbit::all_scalar_formats>::value);
static_assert(all_satisfy<lowbit::integer_formats>::value && all_satisfy<lowbit::scale_formats>::value);

} // namespace custom
