// GGUF Q4_0 / Q8_0 / IQ4_NL tensors (schemes/gguf.hpp): the qmatrix read from a tensor's bytes
// decodes to what an independent decoder of the GGUF blocks, written here from the block
// definitions, gives; writing it back gives the same bytes; sizes that are not whole blocks or do
// not match throw.
#include "lowbit/schemes/gguf.hpp"

#include "lowbit/schemes/all.hpp"
#include "schemes/gguf_test_data.hpp"

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace lowbit;
using lowbit_test::random_gguf_tensor;

// IEEE binary16 to float, by its definition (normal, subnormal, inf, NaN).
float half_value(unsigned h) {
  const int e = static_cast<int>(h >> 10 & 0x1F);
  const double m = h & 0x3FF, s = h >> 15 ? -1.0 : 1.0;
  if (e == 31) return static_cast<float>(m == 0 ? s * INFINITY : NAN);
  return static_cast<float>(e == 0 ? s * std::ldexp(m, -24) : s * std::ldexp(1024 + m, e - 25));
}

// The GGUF blocks decoded as llama.cpp defines them: y[j] = d * q(code j), the block's codes j and
// j + 16 in the low and high nibble of qs[j] (Q4_0, IQ4_NL), q = nibble - 8 (Q4_0), the int8 qs[j]
// (Q8_0), kvalues_iq4nl[nibble] (IQ4_NL).
template <gguf::block_type S>
std::vector<float> decode_gguf(const std::vector<std::uint8_t>& b) {
  static constexpr int iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<float> y;
  for (std::size_t o = 0; o < b.size(); o += gguf::block_bytes<S>) {
    const float d = half_value(b[o] | b[o + 1] << 8);
    const std::uint8_t* qs = b.data() + o + 2;
    std::array<int, 32> q{};
    for (int j = 0; j < 32; ++j) {
      if constexpr (std::is_same_v<S, gguf::q8_0>) {
        q[j] = static_cast<std::int8_t>(qs[j]);
      } else {
        const int nibble = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
        q[j] = std::is_same_v<S, gguf::q4_0> ? nibble - 8 : iq4nl_values[nibble];
      }
    }
    for (int j = 0; j < 32; ++j) y.push_back(d * static_cast<float>(q[j]));
  }
  return y;
}

template <gguf::block_type S>
void reads_and_writes(std::size_t rows, std::size_t cols) {
  const auto bytes = random_gguf_tensor<S>(rows, cols, static_cast<std::uint32_t>(rows * 131 + cols));
  const qmatrix<S> q = gguf::from_gguf<S>(bytes, rows, cols);
  ASSERT_EQ(q.rows(), rows);
  ASSERT_EQ(q.cols(), cols);
  const auto want = decode_gguf<S>(bytes);
  const auto got = dequantize(q);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(want[i]))
        << scheme_name<S>() << " element " << i << ": " << got[i] << " vs " << want[i];
  EXPECT_EQ(gguf::to_gguf(q), bytes) << scheme_name<S>();
  const auto as_bytes = std::as_bytes(std::span(bytes));
  EXPECT_EQ(gguf::to_gguf(gguf::from_gguf<S>(as_bytes, rows, cols)), bytes) << scheme_name<S>();
}

TEST(gguf, tensors_decode_as_their_blocks_and_write_back_byte_for_byte) {
  for (const auto& [rows, cols] : {std::pair<std::size_t, std::size_t>{1, 32}, {3, 96}, {17, 256}}) {
    reads_and_writes<gguf::q4_0>(rows, cols);
    reads_and_writes<gguf::q8_0>(rows, cols);
    reads_and_writes<gguf::iq4_nl>(rows, cols);
  }
  EXPECT_EQ(gguf::block_bytes<gguf::q4_0>, 18u);
  EXPECT_EQ(gguf::block_bytes<gguf::q8_0>, 34u);
  EXPECT_EQ(gguf::block_bytes<gguf::iq4_nl>, 18u);
}

// Every nibble of Q4_0 and IQ4_NL and every Q8_0 byte, in one block each, at d = 1.
TEST(gguf, every_code_of_each_block_type) {
  std::vector<std::uint8_t> b4(18, 0), b8(34, 0);
  b4[1] = b8[1] = 0x3C; // d = 1.0
  for (int j = 0; j < 16; ++j) b4[2 + j] = static_cast<std::uint8_t>(j | (15 - j) << 4);
  const auto q4 = dequantize(gguf::from_gguf<gguf::q4_0>(b4, 1, 32));
  const auto nl = dequantize(gguf::from_gguf<gguf::iq4_nl>(b4, 1, 32));
  EXPECT_EQ(q4, decode_gguf<gguf::q4_0>(b4));
  EXPECT_EQ(nl, decode_gguf<gguf::iq4_nl>(b4));
  EXPECT_EQ(q4[0], -8.0f);
  EXPECT_EQ(q4[16], 7.0f);
  EXPECT_EQ(nl[0], -127.0f);
  EXPECT_EQ(nl[16], 113.0f);
  for (int k = 0; k < 8; ++k) { // bytes 0-255 over eight blocks
    for (int j = 0; j < 32; ++j) b8[2 + j] = static_cast<std::uint8_t>(32 * k + j);
    const auto v = dequantize(gguf::from_gguf<gguf::q8_0>(b8, 1, 32));
    for (int j = 0; j < 32; ++j) EXPECT_EQ(v[j], static_cast<float>(static_cast<std::int8_t>(32 * k + j)));
  }
}

// A NaN or inf d decodes its block to NaN / inf (as llama.cpp's blocks do), the other blocks stay.
TEST(gguf, non_finite_scales_stay_in_their_block) {
  auto b = random_gguf_tensor<gguf::iq4_nl>(2, 64, 5);
  b[0] = 0x00;
  b[1] = 0x7E; // NaN
  b[18] = 0x00;
  b[19] = 0x7C; // +inf
  const auto y = dequantize(gguf::from_gguf<gguf::iq4_nl>(b, 2, 64));
  for (std::size_t j = 0; j < 32; ++j) EXPECT_TRUE(std::isnan(y[j])) << j;
  for (std::size_t j = 32; j < 64; ++j) EXPECT_TRUE(std::isinf(y[j])) << j;
  for (std::size_t j = 64; j < 128; ++j) EXPECT_TRUE(std::isfinite(y[j])) << j;
  EXPECT_EQ(gguf::to_gguf(gguf::from_gguf<gguf::iq4_nl>(b, 2, 64)), b);
}

TEST(gguf, sizes_that_are_not_whole_blocks_or_do_not_match_throw) {
  const auto b = random_gguf_tensor<gguf::q4_0>(2, 64, 6);
  EXPECT_THROW((void)gguf::from_gguf<gguf::q4_0>(b, 2, 48), lowbit::invalid_argument); // not 32k
  EXPECT_THROW((void)gguf::from_gguf<gguf::q4_0>(b, 3, 64), lowbit::invalid_argument); // too short
  EXPECT_THROW((void)gguf::from_gguf<gguf::q4_0>(std::span(b).first(b.size() - 1), 2, 64), lowbit::invalid_argument);
  EXPECT_THROW((void)gguf::from_gguf<gguf::q8_0>(b, 2, 64), lowbit::invalid_argument); // Q4_0 bytes as Q8_0
  EXPECT_THROW((void)gguf::tensor_bytes<gguf::q8_0>(std::size_t{1} << 62, 64), lowbit::invalid_argument);
  try {
    (void)gguf::from_gguf<gguf::q4_0>(b, 2, 40);
    FAIL() << "no exception";
  } catch (const lowbit::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("cols 40"), std::string::npos) << e.what();
  }
  // A qmatrix whose columns are not whole blocks (padded by lowbit) has no GGUF form.
  const auto padded = quantize<gguf::q8_0>(std::vector<float>(2 * 40, 0.5f), 2, 40);
  EXPECT_THROW((void)gguf::to_gguf(padded), lowbit::invalid_argument);
  const auto empty = gguf::from_gguf<gguf::iq4_nl>(std::span<const std::uint8_t>{}, 0, 64);
  EXPECT_EQ(empty.rows(), 0u);
  EXPECT_TRUE(gguf::to_gguf(empty).empty());
}

} // namespace
