// Packed code layouts: byte-exact pins and round trips for every width and the base-3 layout.
#include "lowbit/schemes/packing.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace {

using lowbit::code_layout;

std::vector<std::uint8_t> pack(code_layout l, int bits, const std::vector<std::uint8_t>& codes) {
  std::vector<std::uint8_t> out(lowbit::packed_bytes(l, bits, codes.size()));
  lowbit::pack_codes(l, bits, codes, out);
  return out;
}

TEST(packing, layouts_are_byte_exact) {
  EXPECT_EQ(pack(code_layout::bits, 4, {0x1, 0x2, 0xF}), (std::vector<std::uint8_t>{0x21, 0x0F})) << "low nibble first";
  EXPECT_EQ(pack(code_layout::bits, 2, {1, 2, 3, 0, 3}), (std::vector<std::uint8_t>{0x39, 0x03}));
  // 3-bit: 1,2,3,4,5,6,7,0 -> bits 001 010 011 100 101 110 111 000 LSB-first
  EXPECT_EQ(pack(code_layout::bits, 3, {1, 2, 3, 4, 5, 6, 7, 0}), (std::vector<std::uint8_t>{0xD1, 0x58, 0x1F}));
  EXPECT_EQ(pack(code_layout::bits, 6, {0x3F, 0x01}), (std::vector<std::uint8_t>{0x7F, 0x00}));
  EXPECT_EQ(pack(code_layout::base3, 2, {2, 1, 0, 0, 0, 1}), (std::vector<std::uint8_t>{5, 1}));
  EXPECT_EQ(pack(code_layout::base3, 2, {2, 2, 2, 2, 2}), (std::vector<std::uint8_t>{242}));
  EXPECT_EQ(lowbit::packed_bytes(code_layout::base3, 2, 160), 32u) << "1.6 bits per weight";
  EXPECT_EQ(pack(code_layout::nibbles_high_first, 4, {0x1, 0x2, 0xF}), (std::vector<std::uint8_t>{0x12, 0xF0}))
      << "bitsandbytes order";
}

TEST(packing, every_width_and_length_round_trips) {
  std::mt19937 rng(9);
  for (code_layout l : {code_layout::bits, code_layout::base3, code_layout::nibbles_high_first}) {
    for (int bits = 1; bits <= 8; ++bits) {
      if (l == code_layout::base3 && bits != 2) continue;
      if (l == code_layout::nibbles_high_first && bits != 4) continue;
      const unsigned limit = l == code_layout::base3 ? 3u : 1u << bits;
      for (std::size_t n = 0; n <= 70; ++n) {
        std::vector<std::uint8_t> codes(n);
        for (auto& c : codes) c = static_cast<std::uint8_t>(rng() % limit);
        const auto packed = pack(l, bits, codes);
        std::vector<std::uint8_t> back(n);
        lowbit::unpack_codes(l, bits, packed, back);
        ASSERT_EQ(back, codes) << "bits=" << bits << " n=" << n;
        if (l == code_layout::bits && n * static_cast<std::size_t>(bits) % 8 != 0) {
          const unsigned used = static_cast<unsigned>(n * static_cast<std::size_t>(bits) % 8);
          EXPECT_EQ(packed.back() >> used, 0) << "unused trailing bits are zero";
        }
      }
    }
  }
}

TEST(packing, corrupt_and_short_buffers_throw) {
  std::vector<std::uint8_t> codes(10);
  const std::vector<std::uint8_t> bad = {243, 0};
  EXPECT_THROW(lowbit::unpack_codes(code_layout::base3, 2, bad, codes), lowbit::error);
  const std::vector<std::uint8_t> short_buf(4);
  EXPECT_THROW(lowbit::unpack_codes(code_layout::bits, 4, short_buf, codes), lowbit::invalid_argument);
  std::vector<std::uint8_t> out(2);
  EXPECT_THROW(lowbit::pack_codes(code_layout::bits, 4, codes, out), lowbit::invalid_argument);
}

} // namespace
