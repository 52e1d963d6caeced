#include "lowbit/core/bits.hpp"
#include "lowbit/core/config.hpp"

#include <gtest/gtest.h>

#include <set>

namespace {

TEST(random_bits, distinct_indices_rarely_collide) {
  std::set<std::uint32_t> seen;
  for (std::uint64_t i = 0; i < 10000; ++i) seen.insert(lowbit::random_bits(0, i));
  EXPECT_GT(seen.size(), 9990u);
}

TEST(config, isa_matches_the_compiler_flags) {
#if defined(LOWBIT_NO_SIMD)
  EXPECT_EQ(lowbit::compiled_isa, lowbit::isa::scalar);
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__AVX512VNNI__) &&                         \
    defined(__AVX512VL__) && defined(__AVX512BW__) && !defined(LOWBIT_NO_AVX512)
  EXPECT_EQ(lowbit::compiled_isa, lowbit::isa::avx512_vnni);
  EXPECT_STREQ(lowbit::isa_name(lowbit::compiled_isa), "avx512bw+vnni");
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__AVX512VNNI__) &&                         \
    defined(__AVX512VL__) && !defined(LOWBIT_NO_AVX512)
  EXPECT_EQ(lowbit::compiled_isa, lowbit::isa::avx2_vnni);
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__AVX512F__) && defined(__AVX512BW__) &&   \
    !defined(LOWBIT_NO_AVX512)
  EXPECT_EQ(lowbit::compiled_isa, lowbit::isa::avx512bw);
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__AVXVNNI__) && !defined(LOWBIT_NO_AVX_VNNI)
  EXPECT_EQ(lowbit::compiled_isa, lowbit::isa::avx2_vnni); // AVX-VNNI (LOWBIT_NO_AVX512, or no AVX-512)
  EXPECT_STREQ(lowbit::isa_name(lowbit::compiled_isa), "avx2+vnni");
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  EXPECT_EQ(lowbit::compiled_isa, lowbit::isa::avx2);
#else
  EXPECT_EQ(lowbit::compiled_isa, lowbit::isa::scalar);
#endif
  EXPECT_STRNE(lowbit::isa_name(lowbit::compiled_isa), "");
}

} // namespace
