#include "lowbit/core/buffer.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <numeric>

namespace {

using lowbit::aligned_allocator;
using lowbit::aligned_vector;
using lowbit::huge_page_bytes;

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

TEST(aligned_allocator, alignment_is_a_function_of_the_size_alone) {
  constexpr std::size_t big = huge_page_bytes / sizeof(float);
  const std::size_t expected = LOWBIT_HUGE_PAGES ? huge_page_bytes : 64;
  EXPECT_EQ(aligned_allocator<float>::alignment(1), 64u);
  EXPECT_EQ(aligned_allocator<float>::alignment(big - 1), 64u);
  EXPECT_EQ(aligned_allocator<float>::alignment(big), expected);
  EXPECT_EQ(aligned_allocator<float>::alignment(3 * big + 7), expected);
  EXPECT_EQ(aligned_allocator<std::uint8_t>::alignment(huge_page_bytes - 1), 64u);
  EXPECT_EQ(aligned_allocator<std::uint8_t>::alignment(huge_page_bytes), expected);
}

TEST(aligned_allocator, buffers_are_aligned_and_keep_their_contents_through_growth_and_copies) {
  aligned_vector<float> small(1000);
  EXPECT_EQ(address(small.data()) % 64, 0u);
  // Grows from a small (64-byte) to a huge-page buffer and back: each buffer is freed with the
  // alignment it was allocated with (the sanitizer build reports a mismatch).
  aligned_vector<float> v(17);
  std::iota(v.begin(), v.end(), 0.0f);
  v.resize(huge_page_bytes / sizeof(float) + 5);
  EXPECT_EQ(address(v.data()) % aligned_allocator<float>::alignment(v.capacity()), 0u);
  if (LOWBIT_HUGE_PAGES) {
    EXPECT_EQ(address(v.data()) % huge_page_bytes, 0u);
  }
  for (std::size_t i = 0; i < 17; ++i) ASSERT_EQ(v[i], static_cast<float>(i));
  v[v.size() - 1] = 42.0f;
  const aligned_vector<float> copy = v;
  EXPECT_EQ(address(copy.data()) % aligned_allocator<float>::alignment(copy.capacity()), 0u);
  EXPECT_EQ(copy[16], 16.0f);
  EXPECT_EQ(copy.back(), 42.0f);
  v.resize(8);
  v.shrink_to_fit();
  EXPECT_EQ(address(v.data()) % 64, 0u);
  EXPECT_EQ(v[7], 7.0f);
}

} // namespace
