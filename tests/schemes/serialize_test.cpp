// Serialization round trips, and rejection of truncated, corrupted and mismatched buffers
// (run under the sanitizers by the test command: no out-of-bounds read may happen).
#include "lowbit/schemes/all.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace lowbit;
using asym4 = int_asym<4, 32>;
using asym2 = int_asym<2, 32>;

std::vector<float> gaussian(std::size_t n) {
  std::mt19937 rng(4);
  std::normal_distribution<float> g;
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  return x;
}

template <class S>
void round_trip(std::size_t rows, std::size_t cols) {
  const auto x = gaussian(rows * cols);
  const auto q = quantize<S>(x, rows, cols);
  const auto bytes = serialize(q);
  const auto back = deserialize<S>(bytes);
  EXPECT_EQ(back.rows(), rows);
  EXPECT_EQ(back.cols(), cols);
  EXPECT_EQ(back.tensor_scale(), q.tensor_scale());
  EXPECT_TRUE(std::equal(q.codes().begin(), q.codes().end(), back.codes().begin(), back.codes().end()));
  EXPECT_EQ(dequantize(back), dequantize(q)) << scheme_name<S>();
  EXPECT_EQ(serialize(back), bytes);
}

TEST(serialize, every_named_scheme_round_trips) {
  round_trip<mxfp8_e4m3>(3, 70);
  round_trip<mxfp8_e5m2>(3, 70);
  round_trip<mxfp6_e3m2>(3, 70);
  round_trip<mxfp6_e2m3>(3, 70);
  round_trip<mxfp4>(3, 70);
  round_trip<mxint8>(3, 70);
  round_trip<nvfp4>(3, 70);
  round_trip<int4_group<32>>(3, 70);
  round_trip<int_asym<3, 64>>(3, 70);
  round_trip<int_sym<8, 0, bf16, granularity::column>>(3, 70);
  round_trip<nf4_scheme<>>(3, 70);
  round_trip<nf4_dq>(3, 70);
  round_trip<nf4_dq>(40, 1000);
  round_trip<nf4_dq_bnb>(3, 70);
  round_trip<iq4_nl>(3, 70);
  EXPECT_EQ(scheme_name<iq4_nl>(), "iq4nl/fp16/group32/range");
  round_trip<ternary_absmean>(3, 70);
  round_trip<ternary_absmean_base3>(3, 70);
}

TEST(serialize, truncation_at_every_offset_is_rejected) {
  const auto q = quantize<int_asym<4, 32>>(gaussian(2 * 40), 2, 40);
  const auto bytes = serialize(q);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW((void)deserialize<asym4>(cut), lowbit::error) << "truncated to " << n;
  }
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_THROW((void)deserialize<asym4>(longer), lowbit::error);
}

TEST(serialize, corrupted_bytes_are_rejected_or_decode_safely) {
  const auto q = quantize<ternary_absmean_base3>(gaussian(3 * 50), 3, 50);
  const auto bytes = serialize(q);
  std::mt19937 rng(8);
  int rejected = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int trial = 0; trial < 4; ++trial) {
      auto bad = bytes;
      bad[i] = static_cast<std::uint8_t>(bad[i] ^ (1u << (rng() % 8)));
      try {
        const auto back = deserialize<ternary_absmean_base3>(bad);
        (void)dequantize(back); // payload flips may change values, never memory safety
      } catch (const lowbit::error&) {
        ++rejected;
        EXPECT_LT(i, bytes.size()) << "";
      }
    }
  }
  EXPECT_GT(rejected, 0);
  // Every header field is checked.
  auto bad = bytes;
  bad[0] = 'X';
  EXPECT_THROW((void)deserialize<ternary_absmean_base3>(bad), lowbit::error);
  bad = bytes;
  bad[4] = 2; // version
  EXPECT_THROW((void)deserialize<ternary_absmean_base3>(bad), lowbit::error);
  bad = bytes;
  bad[15] = 0x40; // rows = huge
  EXPECT_THROW((void)deserialize<ternary_absmean_base3>(bad), lowbit::error);
  bad = bytes;
  bad[bad.size() - 5] = 250; // the last code byte (before the fp32 scale) >= 243
  EXPECT_THROW((void)deserialize<ternary_absmean_base3>(bad), lowbit::error);
}

TEST(serialize, ternary_code_3_is_rejected) {
  // 3 x 50 2-bit codes: 13 bytes per row; the scales (one fp32 per tensor) follow the codes.
  const auto q = quantize<ternary_absmean>(gaussian(3 * 50), 3, 50);
  const auto bytes = serialize(q);
  const std::size_t code0 = bytes.size() - 4 - q.codes().size();
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t c : {std::size_t{0}, std::size_t{17}, std::size_t{49}}) {
      auto bad = bytes;
      const std::size_t at = code0 + r * q.row_bytes() + c / 4;
      bad[at] = static_cast<std::uint8_t>(bad[at] | 3u << (2 * (c % 4)));
      EXPECT_THROW((void)deserialize<ternary_absmean>(bad), lowbit::error) << "row " << r << ", column " << c;
    }
  // Groups of 64: columns 50-63 are padding codes (value 0), read by the kernels, so checked too.
  using tg = ternary_scheme<granularity::group, 64>;
  const auto qg = quantize<tg>(gaussian(2 * 50), 2, 50);
  const auto gb = serialize(qg);
  const std::size_t g0 = gb.size() - 4 * qg.scales().size() - qg.codes().size();
  auto badg = gb;
  badg[g0 + qg.row_bytes() - 1] = static_cast<std::uint8_t>(badg[g0 + qg.row_bytes() - 1] | 0xC0u); // column 63
  EXPECT_THROW((void)deserialize<tg>(badg), lowbit::error);
  EXPECT_NO_THROW((void)deserialize<tg>(gb));
  // Bits past the last code of a row (50 columns fill 12.5 bytes) are not codes: left alone.
  auto pad = bytes;
  pad[code0 + q.row_bytes() - 1] = static_cast<std::uint8_t>(pad[code0 + q.row_bytes() - 1] | 0xC0u); // column 51
  EXPECT_NO_THROW((void)deserialize<ternary_absmean>(pad));
  EXPECT_NO_THROW((void)deserialize<ternary_absmean>(bytes));
}

TEST(serialize, another_schemes_bytes_are_rejected_by_name) {
  const auto bytes = serialize(quantize<mxfp4>(gaussian(64), 2, 32));
  try {
    (void)deserialize<nvfp4>(bytes);
    FAIL() << "no exception";
  } catch (const lowbit::error& e) {
    EXPECT_NE(std::string(e.what()).find("fp4_e2m1/e8m0/group32"), std::string::npos) << e.what();
  }
}

TEST(serialize, nvfp4_tensor_scale_must_be_positive_and_finite) {
  auto bytes = serialize(quantize<nvfp4>(gaussian(64), 2, 32));
  const float nan = std::nanf("");
  std::memcpy(bytes.data() + 24, &nan, 4);
  EXPECT_THROW((void)deserialize<nvfp4>(bytes), lowbit::error);
}

TEST(serialize, double_quantization_fields_are_validated) {
  auto bytes = serialize(quantize<nf4_dq>(gaussian(4 * 128), 4, 128));
  const float inf = INFINITY;
  std::memcpy(bytes.data() + bytes.size() - 4, &inf, 4); // the offset
  EXPECT_THROW((void)deserialize<nf4_dq>(bytes), lowbit::error);
  bytes = serialize(quantize<nf4_dq>(gaussian(4 * 128), 4, 128));
  const float negative = -1.0f;
  std::memcpy(bytes.data() + bytes.size() - 8, &negative, 4); // the second-level absmax
  EXPECT_THROW((void)deserialize<nf4_dq>(bytes), lowbit::error);
}

TEST(serialize, out_of_range_zero_points_are_rejected) {
  auto bytes = serialize(quantize<int_asym<2, 32>>(gaussian(64), 2, 32));
  bytes.back() = 200; // zero point of a 2-bit format
  EXPECT_THROW((void)deserialize<asym2>(bytes), lowbit::error);
}

} // namespace
