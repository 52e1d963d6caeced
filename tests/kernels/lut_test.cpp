// The LUT kernels (kernels/lut.hpp): the bit-plane decomposition of every eligible element against
// its own decode, the activation tables against a double-precision computation, the kernel
// (AVX-512 and AVX2, or the packed scalar kernel) bit for bit against reference::linear_lut, which reads the
// qmatrix and not the packed layout, the reference within its documented table-quantization bound
// of the exact product, on shapes with row, column and token tails and 1-3 threads; bad input.
#include "lowbit/kernels/linear.hpp"
#include "lowbit/schemes/all.hpp"

#include "kernels/kernel_test_support.hpp"
#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace lowbit;
using lowbit_test::first_bit_difference;
using lowbit_test::random_weights;
using lowbit_test::shape;

// Rows around the 16-row tile (and the AVX-512 kernel's pairs of tiles: 4 tiles, the last pair
// partial), K with partial 32-column blocks, K below a block or group (20 < 32,
// and 32-96 against groups of 64 and 128: one padded group), 1-9 tokens.
const shape shapes[] = {{1, 32, 1},
                        {5, 64, 2},
                        {16, 96, 3},
                        {17, 160, 5},
                        {13, 200, 4},
                        {67, 320, 9},
                        {3, 48, 1},
                        {33, 1000, 2},
                        {40, 512, 8},
                        {3, 20, 2},
                        {49, 160, 3},
                        // 16.6 KiB of tables per token: run_lut_tiles takes the 19 tokens in blocks
                        // (12 + 7 at 4 tokens a pass, 14 + 5 at 2), with every remainder step
                        {21, 4160, 19},
                        // rows of three column runs on the permute layout (LOWBIT_LUT_RUN_COLS), the
                        // last short, over 3 tiles, at 4 + 2 tokens
                        {37, 8392, 6}};

using int2_g64 = int_sym<2, 64>;
using int2_g32 = int_sym<2, 32>;
using int3_g128 = int_sym<3, 128>;
using int4_g32 = int_sym<4, 32>;
using int4_row = int_sym<4, 0, fp32_scale, granularity::row>;
using uint4_g64 = int_asym<4, 64>;
using uint2_g32 = int_asym<2, 32, bf16>;
using uint3_row = int_asym<3, 0, fp16, granularity::row>;
using uint1_g64 = int_asym<1, 64>; // 1-bit codes; the levels are 0 and +-s (integer zero point)
using ternary_g64 = ternary_scheme<granularity::group, 64>;
using midrise4_g128 = block_scheme<codebook<midrise_table<4>>, fp16, granularity::group, 128, absmax_scale<>>;
// The symmetric 1-bit grid {-0.5, 0.5} (signed integers need 2 bits): one plane, a = 2 on the
// int8 table's 2x values.
using midrise1_g32 = block_scheme<midrise<1>, fp16, granularity::group, 32, absmax_scale<>>;
using int4_e8m0_g32 = block_scheme<integer_format<4>, e8m0, granularity::group, 32, absmax_scale<>>;
// fp16 group scales under a tensor scale: the kernels apply the tensor scale on the token's side (g).
using int4_tensor_g32 =
    block_scheme<integer_format<4>, fp16, granularity::group, 32, absmax_scale<tensor_scaling::fit_scale_range>>;

static_assert(kernels::lut_scheme<int4_g32> && kernels::lut_scheme<int4_group<128>> && kernels::lut_scheme<int2_g64>);
static_assert(kernels::lut_scheme<uint4_g64> && kernels::lut_scheme<ternary_absmean> &&
              kernels::lut_scheme<ternary_absmean_base3> && kernels::lut_scheme<midrise4_g128> &&
              kernels::lut_scheme<midrise1_g32> && kernels::lut_traits<midrise1_g32>::planes == 1);
// Not affine in their bits (codebooks, minifloats), too wide, or groups that split a 32-column block.
static_assert(!kernels::lut_scheme<nf4_scheme<>> && !kernels::lut_scheme<mxfp4> && !kernels::lut_scheme<nvfp4>);
static_assert(!kernels::lut_scheme<int8_group<32>> && !kernels::lut_scheme<mxint8> &&
              !kernels::lut_scheme<int_sym<4, 16>>);

// The decomposition against the element's own decode, for every code it defines.
template <class S>
void decomposition_matches_decode() {
  using tr = kernels::lut_traits<S>;
  using E = typename S::element;
  const float mult = kernels::int8_table<E>::get().mult;
  ASSERT_GT(tr::valid_codes, 0u);
  int asum = 0;
  for (std::size_t i = 0; i < tr::planes; ++i) asum += tr::dec.a[i];
  EXPECT_LE(asum, 32) << "int16 block sums could overflow";
  for (unsigned code = 0; code < tr::valid_codes; ++code) {
    double v = tr::dec.c;
    for (std::size_t i = 0; i < tr::planes; ++i) v += (tr::dec.pattern[code] >> i & 1u) * tr::dec.a[i];
    EXPECT_EQ(v * mult, E::decode_double(static_cast<typename E::storage>(code))) << format_name<E> << " code " << code;
  }
}

// Ternary is re-encoded (-1 -> 00, 0 -> 01, +1 -> 11): plane weights (1, 1), no k term.
static_assert(kernels::lut_traits<ternary_absmean>::asum == 2 && kernels::lut_traits<ternary_absmean>::k == 0.0f);
static_assert(kernels::lut_traits<ternary_absmean_base3>::asum == 2 && kernels::lut_traits<int2_g32>::asum == 3);

TEST(lut_layout, bit_planes_reproduce_every_code) {
  decomposition_matches_decode<int4_g32>();
  decomposition_matches_decode<int2_g64>();
  decomposition_matches_decode<int3_g128>();
  decomposition_matches_decode<uint4_g64>();
  decomposition_matches_decode<uint2_g32>();
  decomposition_matches_decode<uint1_g64>();
  decomposition_matches_decode<ternary_absmean>();
  decomposition_matches_decode<ternary_absmean_base3>();
  decomposition_matches_decode<midrise4_g128>();
  decomposition_matches_decode<midrise1_g32>();
}

// Every table entry is the signed 4-element sum within half a step u = max|T| / 127 (stored as
// s = u / 2), tables are antisymmetric, xsum is the block's sum; NaN blocks give NaN scales and
// zero blocks zero. K = 2100: three tasks of up to 32 blocks per token (the last one partial), which
// threaded builds spread over threads.
TEST(lut_tables, entries_within_half_a_step_of_the_signed_sums) {
  const std::size_t cols = 2100, tokens = 3;
  auto x = lowbit_test::gaussian(tokens * cols, 5);
  for (std::size_t c = 32; c < 64; ++c) x[cols + c] = 0.0f;  // token 1, block 1: zero
  x[2 * cols + 70] = std::numeric_limits<float>::infinity(); // token 2, block 2: inf
  x[1030] = std::numeric_limits<float>::quiet_NaN();         // token 0, block 32: a task's first
  kernels::lut_activations a;
  kernels::build_lut_tables(std::span<const float>(x), tokens, cols, a);
  ASSERT_EQ(a.blocks, 66u);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t b = 0; b < a.blocks; ++b) {
      const double u = 2.0 * a.scale_row(t)[b];
      const std::int8_t* q = a.q_row(t) + b * 128;
      if (t == 1 && b == 1) {
        EXPECT_EQ(u, 0.0);
      }
      if ((t == 2 && b == 2) || (t == 0 && b == 32)) {
        EXPECT_TRUE(std::isnan(u));
      }
      double amax = 0, xsum = 0;
      for (std::size_t j = 0; j < 8; ++j)
        for (unsigned m = 0; m < 16; ++m) {
          double sum = 0;
          for (unsigned l = 0; l < 4; ++l) {
            const std::size_t c = b * 32 + j * 4 + l;
            const double v = c < cols ? x[t * cols + c] : 0.0;
            sum += (m >> l & 1u) ? v : -v;
            if (m == 15) xsum += v;
          }
          if (std::isfinite(sum)) amax = std::max(amax, std::fabs(sum));
          EXPECT_EQ(q[j * 16 + m], -q[j * 16 + (15 - m)]);
          if (std::isfinite(u) && u > 0) {
            EXPECT_LE(std::fabs(q[j * 16 + m] * u - sum), 0.5001 * u);
          } else {
            EXPECT_EQ(q[j * 16 + m], 0);
          }
        }
      if (std::isfinite(u)) {
        EXPECT_NEAR(u, amax / 127, 1e-6 * amax + 1e-30);
        EXPECT_NEAR(a.xsum_row(t)[b], xsum, 1e-5 * (1 + std::fabs(xsum)));
      }
    }
}

// Finite activations whose signed sums overflow (3e38 + 3e38) make the block non-finite too;
// subnormal blocks, too small for 127 / max|T|, count as zero blocks.
TEST(lut_tables, overflowing_sums_give_a_nan_scale_and_subnormal_blocks_zero) {
  std::vector<float> x(96, 1.0f);
  x[33] = 3e38f;
  x[34] = 3e38f;
  for (std::size_t c = 64; c < 96; ++c) x[c] = 1e-40f;
  kernels::lut_activations a;
  kernels::build_lut_tables(std::span<const float>(x), 1, 96, a);
  EXPECT_EQ(a.scale_row(0)[0], 1.0f * 4 / 127 / 2);
  EXPECT_TRUE(std::isnan(a.scale_row(0)[1]));
  EXPECT_EQ(a.scale_row(0)[2], 0.0f);
  for (std::size_t i = 128; i < 384; ++i) ASSERT_EQ(a.q_row(0)[i], 0);
}

// The builders split a token's blocks into tasks of up to 32 blocks across threads once tokens x
// cols reaches 4096 (build_lut_tables_by_row): at every thread count the tables (entries, scales
// and sums) equal one pass of the row builder over each whole token, with a NaN block first in a
// task and a partial last block.
TEST(lut_tables, tables_split_into_tasks_match_one_pass) {
  const std::size_t cols = 2100, tokens = 8;                  // 66 blocks: 3 tasks per token, the last one partial
  static_assert(cols * tokens * 4 >= (std::size_t{1} << 16)); // enough for the AVX-512 builder to split
  auto x = lowbit_test::gaussian(tokens * cols, 8);
  x[cols + 1030] = std::numeric_limits<float>::quiet_NaN(); // token 1, block 32: the second task's first
  kernels::lut_activations one;
  one.tokens = tokens;
  one.cols = cols;
  one.blocks = (cols + 31) / 32;
  one.q.assign(tokens * one.row_entries(), 1);
  one.scale.assign(tokens * one.blocks, 1.0f);
  one.xsum.assign(tokens * one.blocks, 1.0f);
  for (std::size_t t = 0; t < tokens; ++t)
    kernels::build_lut_table_row(x.data() + t * cols, cols, one.blocks, one.q.data() + t * one.row_entries(),
                                 one.scale.data() + t * one.blocks, one.xsum.data() + t * one.blocks);
  ASSERT_TRUE(std::isnan(one.scale_row(1)[32]));
  EXPECT_TRUE(lowbit_test::tables_equal_at_thread_counts(one, [&](kernels::lut_activations& a) {
    kernels::build_lut_tables(std::span<const float>(x), tokens, cols, a);
  }));
#if LOWBIT_HAS_AVX2
  EXPECT_TRUE(lowbit_test::tables_equal_at_thread_counts(one, [&](kernels::lut_activations& a) {
    kernels::avx2::build_lut_tables(std::span<const float>(x), tokens, cols, a);
  })) << "AVX2";
#endif
#if LOWBIT_HAS_AVX512_BW
  EXPECT_TRUE(lowbit_test::tables_equal_at_thread_counts(one, [&](kernels::lut_activations& a) {
    kernels::avx512::build_lut_tables(std::span<const float>(x), tokens, cols, a);
  })) << "AVX-512";
#endif
}

// The AVX2 and AVX-512 table builders against the scalar spec, byte for byte and bit for bit: fp32,
// fp16 and bf16 input, K with and without partial 32-column blocks, tokens with zero, NaN, inf,
// overflowing, subnormal and tied (x.5 after scaling) blocks, each special block both first and
// second of a pair of blocks (the AVX-512 VBMI builder takes two blocks at a time) beside an
// ordinary one.
template <class T, class Builder>
void simd_tables_match_scalar(Builder&& build, const char* isa) {
  for (std::size_t cols : {32, 64, 96, 100, 129, 255, 256, 4096 + 7}) {
    const std::size_t tokens = 8;
    const auto g = lowbit_test::gaussian(tokens * cols, 91);
    std::vector<T> x(g.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = T(g[i]);
    for (std::size_t c = 0; c < std::min<std::size_t>(cols, 32); ++c) x[cols + c] = T(0.0f);
    for (std::size_t c = 32; c < std::min<std::size_t>(cols, 64); ++c) x[cols + c] = T(c % 2 ? 1e-40f : -3e-39f);
    x[2 * cols + cols / 2] = T(std::numeric_limits<float>::quiet_NaN());
    x[3 * cols + cols - 1] = T(-std::numeric_limits<float>::infinity());
    if constexpr (!std::is_same_v<T, half>) {
      x[4 * cols] = T(3e38f);
      x[4 * cols + 1] = T(3e38f);
    }
    for (std::size_t c = 0; c < cols; ++c) x[5 * cols + c] = T(c % 3 == 0 ? 1e-40f : static_cast<float>(c % 7) - 3.0f);
    // Token 6: NaN in block 1, inf in block 2, overflowing sums in block 5 (blocks 0, 3 and 4 ordinary).
    // Token 7: a zero block 1 and a subnormal block 2.
    const auto at = [&](std::size_t t, std::size_t c, float v) {
      if (c < cols) x[t * cols + c] = T(v);
    };
    at(6, 40, std::numeric_limits<float>::quiet_NaN());
    at(6, 70, std::numeric_limits<float>::infinity());
    if constexpr (!std::is_same_v<T, half>) {
      at(6, 160, -3e38f);
      at(6, 161, -3e38f);
    }
    for (std::size_t c = 32; c < 64; ++c) at(7, c, 0.0f);
    for (std::size_t c = 64; c < 96; ++c) at(7, c, c % 2 ? -1e-40f : 2e-39f);
    kernels::lut_activations want, got;
    kernels::build_lut_tables(std::span<const T>(x), tokens, cols, want);
    build(std::span<const T>(x), tokens, cols, got);
    if (cols >= 96) { // the special blocks are there
      ASSERT_TRUE(std::isnan(want.scale_row(6)[1]) && std::isnan(want.scale_row(6)[2]));
      ASSERT_TRUE(std::isfinite(want.scale_row(6)[0]) && want.scale_row(6)[0] > 0.0f);
      ASSERT_EQ(want.scale_row(7)[1], 0.0f);
      ASSERT_EQ(want.scale_row(7)[2], 0.0f);
      if (cols >= 192 && !std::is_same_v<T, half>) {
        ASSERT_TRUE(std::isnan(want.scale_row(6)[5]));
      }
    }
    ASSERT_EQ(got.q.size(), want.q.size());
    for (std::size_t i = 0; i < want.q.size(); ++i)
      ASSERT_EQ(got.q[i], want.q[i]) << isa << " cols " << cols << " at " << i;
    ASSERT_EQ(got.scale.size(), want.scale.size());
    ASSERT_EQ(first_bit_difference(got.scale, want.scale), want.scale.size()) << isa << " cols " << cols;
    ASSERT_EQ(got.xsum.size(), want.xsum.size());
    ASSERT_EQ(first_bit_difference(got.xsum, want.xsum), want.xsum.size()) << isa << " cols " << cols;
  }
}

template <class T>
void simd_tables_match_scalar() {
#if LOWBIT_HAS_AVX2
  simd_tables_match_scalar<T>([](std::span<const T> x, std::size_t tokens, std::size_t cols,
                                 kernels::lut_activations& a) { kernels::avx2::build_lut_tables(x, tokens, cols, a); },
                              "AVX2");
#else
  GTEST_SKIP() << "built without AVX2";
#endif
#if LOWBIT_HAS_AVX512_BW
  simd_tables_match_scalar<T>(
      [](std::span<const T> x, std::size_t tokens, std::size_t cols, kernels::lut_activations& a) {
        kernels::avx512::build_lut_tables(x, tokens, cols, a);
      },
      "AVX-512");
#endif
}

TEST(lut_tables, simd_builders_bit_exact_against_the_scalar_spec) {
  simd_tables_match_scalar<float>();
  simd_tables_match_scalar<half>();
  simd_tables_match_scalar<bfloat16>();
}

using kernels::lut_layout;

template <class S, lut_layout L = lut_layout::shuffle>
void lut_matches_reference() {
  for (const shape& s : shapes) {
    const auto w = random_weights<S>(s.rows, s.cols, 21);
    if constexpr (S::has_tensor_scale) {
      ASSERT_NE(w.tensor_scale(), 1.0f) << "the tensor scale goes untested";
    }
    const auto packed = kernels::pack_for_lut<L>(w);
    const char* layout = L == lut_layout::permute ? " (permute layout)" : "";
    const auto x = lowbit_test::gaussian(s.tokens * s.cols, 22);
    const auto bias = lowbit_test::uniform(s.rows, 23);
    std::vector<float> want(s.tokens * s.rows);
    reference::linear_lut<S>(std::span<const float>(x), s.tokens, w, want, bias);
    ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(
        want, [&](std::span<float> got) { linear(std::span<const float>(x), s.tokens, packed, got, bias); }))
        << scheme_name<S>() << layout << " rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
    if constexpr (L == lut_layout::permute) {
      // The scalar kernel on the layout (the path without VBMI), on the scalar tables.
      kernels::lut_activations a;
      kernels::build_lut_tables(std::span<const float>(x), s.tokens, s.cols, a);
      std::vector<float> got(want.size(), -1.0f);
      kernels::scalar::linear_lut(packed, a, std::span<float>(got), bias);
      ASSERT_EQ(first_bit_difference(got, want), got.size()) << scheme_name<S>() << " scalar, rows " << s.rows;
    }
#if LOWBIT_HAS_AVX512_BW
    // linear() runs the AVX-512 kernel here (tile pairs, an odd last tile on AVX2); the AVX2 one on
    // every tile must match as well.
    if constexpr (L == lut_layout::shuffle) {
      kernels::lut_activations a;
      kernels::avx2::build_lut_tables(std::span<const float>(x), s.tokens, s.cols, a);
      ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(
          want, [&](std::span<float> got) { kernels::avx2::linear_lut(packed, a, got, bias); }))
          << scheme_name<S>() << " avx2, rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
    }
#endif
  }
}

// One token: each thread builds its own tables (lowbit_test::expect_one_token_bit_exact).
template <class S, lut_layout L = lut_layout::shuffle>
void one_token_matches_reference() {
  lowbit_test::expect_one_token_bit_exact<S, kernels::lut_activations>(
      24, [](const qmatrix<S>& w) { return kernels::pack_for_lut<L>(w); },
      [](std::span<const float> x, const qmatrix<S>& w, std::span<float> y, std::span<const float> bias) {
        reference::linear_lut<S>(x, 1, w, y, bias);
      },
      [](const auto& packed, std::span<const float> x, std::span<float> y, std::span<const float> bias, auto& tables) {
#if LOWBIT_HAS_AVX512_VBMI
        if constexpr (L == lut_layout::permute) return kernels::avx512::linear_lut_token(packed, x, y, bias, tables);
#endif
#if LOWBIT_HAS_AVX2
        if constexpr (L == lut_layout::shuffle) return kernels::avx2::linear_lut_token(packed, x, y, bias, tables);
#endif
        (void)tables; // the permute layout without VBMI: its scalar kernel, through linear()
        linear(x, 1, packed, y, bias);
      });
}

TEST(linear_lut, one_token_tables_per_thread_bit_exact) {
  one_token_matches_reference<int2_g32>();
  one_token_matches_reference<uint4_g64>();
  one_token_matches_reference<ternary_absmean>();
  one_token_matches_reference<int2_g32, lut_layout::permute>();
  one_token_matches_reference<uint4_g64, lut_layout::permute>();
  one_token_matches_reference<int3_g128, lut_layout::permute>();
}

TEST(linear_lut, symmetric_integers_bit_exact) {
  lut_matches_reference<int4_g32>();
  lut_matches_reference<int4_group<128>>();
  lut_matches_reference<int4_row>();
  lut_matches_reference<int3_g128>();
  lut_matches_reference<int2_g64>();
  lut_matches_reference<int4_e8m0_g32>();
  lut_matches_reference<midrise4_g128>();
  lut_matches_reference<midrise1_g32>();
  lut_matches_reference<int4_tensor_g32>();
}
TEST(linear_lut, zero_points_bit_exact) {
  lut_matches_reference<uint4_g64>();
  lut_matches_reference<uint2_g32>();
  lut_matches_reference<uint3_row>();
  lut_matches_reference<uint1_g64>();
}
TEST(linear_lut, ternary_bit_exact) {
  lut_matches_reference<ternary_absmean>();
  lut_matches_reference<ternary_absmean_base3>();
  lut_matches_reference<ternary_g64>();
}
// The permute layout (its AVX-512 VBMI kernel where compiled, and its scalar kernel): 1-4 planes,
// fp16 and fp32 scales, zero points, tensor scales, k terms.
TEST(linear_lut, permute_layout_bit_exact) {
  constexpr auto P = lut_layout::permute;
  lut_matches_reference<int4_g32, P>();
  lut_matches_reference<int4_row, P>();
  lut_matches_reference<int3_g128, P>();
  lut_matches_reference<int2_g64, P>();
  lut_matches_reference<int2_g32, P>();
  lut_matches_reference<int4_e8m0_g32, P>();
  lut_matches_reference<midrise1_g32, P>();
  lut_matches_reference<int4_tensor_g32, P>();
  lut_matches_reference<uint4_g64, P>();
  lut_matches_reference<uint2_g32, P>();
  lut_matches_reference<uint3_row, P>();
  lut_matches_reference<uint1_g64, P>();
  lut_matches_reference<ternary_absmean, P>();
  lut_matches_reference<ternary_g64, P>();
}

// The permute layout (lut.hpp's header comment): every row's plane indices read back as the plane
// bits of its codes' patterns (the padding columns' codes included); rows past the matrix and
// columns past the padded row zero. Planes in pairs, an odd last one on its own (3 planes: a pair
// and a lone plane; 1: a lone plane; 4: two pairs), and no other bytes: planes x 64 per block.
// Rows longer than LOWBIT_LUT_RUN_COLS are stored in column runs, every tile's blocks of a run
// before the next run's: the blocks' places are counted out here in that order, independently of
// lut_matrix::block_codes.
template <class S>
void permute_layout_reads_back(std::size_t cols) {
  using tr = kernels::lut_traits<S>;
  const std::size_t rows = 21; // 2 tiles, the second one partial
  const auto w = random_weights<S>(rows, cols, 29);
  const auto p = kernels::pack_for_lut<lut_layout::permute>(w);
  ASSERT_EQ(p.blocks(), (cols + 31) / 32);
  const std::size_t block_bytes = tr::planes * 64;
  const std::size_t unit = S::gran == granularity::group ? S::block / kernels::lut_block : 1;
  const std::size_t run = (LOWBIT_LUT_RUN_COLS / kernels::lut_block + unit - 1) / unit * unit;
  std::vector<std::size_t> place(p.tiles() * p.blocks());
  std::size_t at = 0;
  for (std::size_t b0 = 0; b0 < p.blocks(); b0 += run)
    for (std::size_t t = 0; t < p.tiles(); ++t)
      for (std::size_t b = b0; b < std::min(p.blocks(), b0 + run); ++b, at += block_bytes)
        place[t * p.blocks() + b] = at;
  ASSERT_EQ(p.run_blocks(), p.blocks() > run ? run : 0u);
  for (std::size_t t = 0; t < p.tiles(); ++t)
    for (std::size_t b = 0; b < p.blocks(); ++b)
      ASSERT_EQ(p.block_codes(t, b) - p.tile_codes(0), static_cast<std::ptrdiff_t>(place[t * p.blocks() + b]))
          << "tile " << t << " block " << b << " cols " << cols;
  std::vector<std::uint8_t> codes(w.padded_cols());
  for (std::size_t row = 0; row < 32; ++row) {
    if (row < rows) unpack_codes(S::layout, S::code_bits, w.row_codes(row), codes);
    for (std::size_t b = 0; b < p.blocks(); ++b) {
      const std::uint8_t* block = p.tile_codes(0) + place[row / 16 * p.blocks() + b];
      for (std::size_t j = 0; j < kernels::lut_tables_per_block; ++j)
        for (std::size_t i = 0; i < tr::planes; ++i) {
          const bool paired = i < tr::planes / 2 * 2;
          const std::size_t byte =
              4 * (row % 16) + (paired ? (i / 2 * 2 + j / 4) * 64 + 2 * (j % 2) + i % 2 : i * 64 + j % 4);
          const unsigned idx = block[byte] >> (paired ? 4 * (j % 4 / 2) : 4 * (j / 4)) & 15u;
          unsigned want = 0;
          for (std::size_t l = 0; l < kernels::lut_group; ++l) {
            const std::size_t c = b * kernels::lut_block + j * kernels::lut_group + l;
            if (row < rows && c < w.padded_cols()) want |= (tr::dec.pattern[codes[c]] >> i & 1u) << l;
          }
          ASSERT_EQ(idx, want) << "row " << row << " block " << b << " group " << j << " plane " << i << " cols "
                               << cols;
        }
    }
  }
  // Scales and zero points in the same runs (a run's units of one tile contiguous, tile after tile),
  // counted out here in that order; their values those of the shuffle layout, which keeps them tile
  // after tile (rows past the matrix included).
  const auto sh = kernels::pack_for_lut<lut_layout::shuffle>(w);
  const std::size_t ru = run / unit;
  std::size_t at_u = 0;
  for (std::size_t u0 = 0; u0 < p.units(); u0 += ru)
    for (std::size_t t = 0; t < p.tiles(); ++t)
      for (std::size_t u = u0; u < std::min(p.units(), u0 + ru); ++u, at_u += 16) {
        ASSERT_EQ(p.tile_scales(t, u) - p.tile_scales(0, 0), static_cast<std::ptrdiff_t>(at_u))
            << "tile " << t << " unit " << u << " cols " << cols;
        ASSERT_EQ(std::memcmp(p.tile_scales(t, u), sh.tile_scales(t, u), 16 * sizeof(*p.tile_scales(t, u))), 0)
            << "tile " << t << " unit " << u << " cols " << cols;
        if constexpr (S::has_zero_point) {
          ASSERT_EQ(p.tile_zeros(t, u) - p.tile_zeros(0, 0), static_cast<std::ptrdiff_t>(at_u));
          ASSERT_EQ(std::memcmp(p.tile_zeros(t, u), sh.tile_zeros(t, u), 16), 0) << "tile " << t << " unit " << u;
        }
      }
  ASSERT_EQ(at_u, p.tiles() * p.units() * 16);
}
// The shuffle layout likewise: per block, pair of groups gp and plane pair p, 32 bytes (byte 2l + k:
// plane 2p + k of row lut_row_of_lane(l), group 2gp low nibble, 2gp + 1 high); an odd last plane after
// the pairs, 16 bytes per pair of groups (byte l: row lut_row_of_lane(l)); planes x 64 bytes per block.
template <class S>
void shuffle_layout_reads_back() {
  using tr = kernels::lut_traits<S>;
  const std::size_t rows = 21, cols = 200;
  const auto w = random_weights<S>(rows, cols, 31);
  const auto p = kernels::pack_for_lut(w);
  ASSERT_EQ(p.blocks(), 7u);
  const std::size_t block_bytes = tr::planes * 64, pairs = tr::planes / 2;
  ASSERT_EQ(p.tile_codes(1) - p.tile_codes(0), static_cast<std::ptrdiff_t>(p.blocks() * block_bytes));
  std::vector<std::uint8_t> codes(w.padded_cols());
  for (std::size_t row = 0; row < 32; ++row) {
    if (row < rows) unpack_codes(S::layout, S::code_bits, w.row_codes(row), codes);
    const std::uint8_t* tile = p.tile_codes(row / 16);
    const std::size_t lane = kernels::lut_lane_of_row(row % 16);
    for (std::size_t b = 0; b < p.blocks(); ++b)
      for (std::size_t j = 0; j < kernels::lut_tables_per_block; ++j)
        for (std::size_t i = 0; i < tr::planes; ++i) {
          const std::size_t gp = j / 2;
          const std::size_t byte = b * block_bytes + (i < 2 * pairs ? (gp * pairs + i / 2) * 32 + 2 * lane + i % 2
                                                                    : 2 * pairs * 64 + gp * 16 + lane);
          const unsigned idx = tile[byte] >> (4 * (j % 2)) & 15u;
          unsigned want = 0;
          for (std::size_t l = 0; l < kernels::lut_group; ++l) {
            const std::size_t c = b * kernels::lut_block + j * kernels::lut_group + l;
            if (row < rows && c < w.padded_cols()) want |= (tr::dec.pattern[codes[c]] >> i & 1u) << l;
          }
          ASSERT_EQ(idx, want) << "row " << row << " block " << b << " group " << j << " plane " << i;
        }
  }
}
TEST(lut_layout, shuffle_layout_reads_back_as_the_plane_bits) {
  shuffle_layout_reads_back<int3_g128>();
  shuffle_layout_reads_back<uint1_g64>();
  shuffle_layout_reads_back<int4_g32>();
  shuffle_layout_reads_back<int2_g32>();
}

TEST(lut_layout, permute_layout_reads_back_as_the_plane_bits) {
  permute_layout_reads_back<int3_g128>(200);
  permute_layout_reads_back<int3_g128>(8392); // runs of 4096 columns, the last short
  permute_layout_reads_back<uint1_g64>(200);
  permute_layout_reads_back<uint1_g64>(8392); // runs of 4096 columns, the last short
  permute_layout_reads_back<int4_g32>(200);
  permute_layout_reads_back<int4_g32>(8392); // runs of 4096 columns, the last short
  permute_layout_reads_back<int2_g32>(200);
  permute_layout_reads_back<int2_g32>(8392); // runs of 4096 columns, the last short
}

// The spec against the exact product with the dequantized matrix (double): per row and token at
// most sum over blocks of 4 * A * |w_scale * s| (half a step on each of a block's 8 x planes
// lookups, weighted a_i), plus fp32 rounding (relative 1e-5 of sum |w x|).
template <class S>
void lut_within_table_rounding() {
  using tr = kernels::lut_traits<S>;
  int asum = 0;
  for (std::size_t i = 0; i < tr::planes; ++i) asum += tr::dec.a[i];
  const float mult = kernels::int8_table<typename S::element>::get().mult;
  for (const shape& s : shapes) {
    const auto w = random_weights<S>(s.rows, s.cols, 31);
    const auto x = lowbit_test::gaussian(s.tokens * s.cols, 32);
    const auto wd = dequantize(w);
    const auto exact = reference::linear(x, s.tokens, wd, s.rows, s.cols);
    std::vector<float> got(exact.size());
    reference::linear_lut<S>(std::span<const float>(x), s.tokens, w, got);
    kernels::lut_activations a;
    kernels::build_lut_tables(std::span<const float>(x), s.tokens, s.cols, a);
    for (std::size_t t = 0; t < s.tokens; ++t)
      for (std::size_t r = 0; r < s.rows; ++r) {
        double bound = 0, mag = 0;
        for (std::size_t b = 0; b < a.blocks; ++b) {
          const std::size_t c0 = std::min(b * 32, w.padded_cols() - 1);
          bound += 4.0 * asum * std::fabs(static_cast<double>(w.scale_at(r, c0)) * mult * a.scale_row(t)[b]);
        }
        for (std::size_t k = 0; k < s.cols; ++k)
          mag += std::fabs(static_cast<double>(wd[r * s.cols + k]) * x[t * s.cols + k]);
        const double err = std::fabs(got[t * s.rows + r] - exact[t * s.rows + r]);
        ASSERT_LE(err, bound + 1e-5 * mag) << scheme_name<S>() << " row " << r << " token " << t;
      }
  }
}

TEST(linear_lut, spec_within_table_rounding_of_the_exact_product) {
  lut_within_table_rounding<int4_g32>();
  lut_within_table_rounding<int2_g64>();
  lut_within_table_rounding<uint4_g64>();
  lut_within_table_rounding<int3_g128>();
  lut_within_table_rounding<ternary_absmean>();
  lut_within_table_rounding<midrise4_g128>();
  lut_within_table_rounding<midrise1_g32>();
  lut_within_table_rounding<uint2_g32>(); // zero points: the k - z term uses the exact fp32 xsum
  lut_within_table_rounding<uint1_g64>();
  lut_within_table_rounding<uint3_row>();
  lut_within_table_rounding<int4_tensor_g32>(); // g = tensor scale, against dequantize(w)
}

// The LUT output is close to the exact product in aggregate: SQNR against the float product at
// least min_db (2 dB under the figure README.md quotes) and at least that of the int8 activation
// path minus max_gap_db.
template <class S>
void sqnr_close_to_the_int8_path(double min_db, double max_gap_db) {
  const std::size_t rows = 256, cols = 1024, tokens = 4;
  const auto w = random_weights<S>(rows, cols, 41);
  const auto x = lowbit_test::gaussian(tokens * cols, 42);
  const auto exact = reference::linear(x, tokens, dequantize(w), rows, cols);
  std::vector<float> lut(exact.size()), dot(exact.size());
  linear(std::span<const float>(x), tokens, kernels::pack_for_lut(w), std::span<float>(lut));
  linear<linear_path::int8_dot>(std::span<const float>(x), tokens, w, std::span<float>(dot));
  auto sqnr = [&](const std::vector<float>& y) {
    double s = 0, n = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      s += static_cast<double>(exact[i]) * exact[i];
      n += (static_cast<double>(y[i]) - exact[i]) * (y[i] - exact[i]);
    }
    return 10 * std::log10(s / n);
  };
  const double lut_db = sqnr(lut), dot_db = sqnr(dot);
  EXPECT_GT(lut_db, min_db) << scheme_name<S>() << ": lut " << lut_db << " dB";
  EXPECT_GT(lut_db, dot_db - max_gap_db) << scheme_name<S>() << ": lut " << lut_db << " dB, int8 " << dot_db << " dB";
}

// Measured: INT4-g128 41.5 dB, INT2-g64 35.8 dB, ternary 44.8 dB (42.4 dB before its re-encoding
// with A = 2), against about 45 dB for the integer-dot path. INT2's gap is the widest: one table
// rounding (step max|T| / 127, T a sum of 4 activations) per plane and group of 4 weights, weighted
// 1 and 2, against 4 roundings of single activations weighted by |w| <= 2. Still far below the
// error of 2-bit weights themselves (2-8 dB SQNR against Gaussian float weights, docs/atlas.csv).
TEST(linear_lut, sqnr_close_to_the_int8_path) {
  sqnr_close_to_the_int8_path<int4_group<128>>(39.5, 6.0);
  sqnr_close_to_the_int8_path<int2_g64>(33.8, 12.0);
  sqnr_close_to_the_int8_path<ternary_absmean>(42.8, 6.0);
}

// The shared bad-input checks (sizes, an empty matrix, NaN and inf activations, all-zero
// activations), bit for bit as the spec; with zero points the NaN also reaches the k - z term.
template <class S>
void lut_bad_input(std::uint32_t seed) {
  const auto w = random_weights<S>(20, 128, seed);
  const auto reference = [&](std::span<const float> x, std::size_t tokens, std::span<float> y) {
    reference::linear_lut<S>(x, tokens, w, y);
  };
  lowbit_test::expect_bad_input_handled(kernels::pack_for_lut(w), reference, seed + 1);
  lowbit_test::expect_bad_input_handled(kernels::pack_for_lut<lut_layout::permute>(w), reference, seed + 1);
}

TEST(linear_lut, bad_input) {
  lut_bad_input<int4_g32>(51);
  lut_bad_input<uint2_g32>(53);
  lut_bad_input<ternary_absmean>(55);
}

// A matrix quantized from zeros gives exactly the bias (the midrise grid has no zero level, but
// an all-zero block decodes to 0 all the same).
template <class S>
void lut_zero_weights() {
  const std::size_t rows = 19, cols = 100;
  const auto w = quantize<S>(std::vector<float>(rows * cols, 0.0f), rows, cols);
  for (std::size_t tokens : {1, 3}) {
    lowbit_test::expect_zero_weights_give_the_bias(kernels::pack_for_lut(w), tokens, 57);
    lowbit_test::expect_zero_weights_give_the_bias(kernels::pack_for_lut<lut_layout::permute>(w), tokens, 57);
  }
}

TEST(linear_lut, zero_weights_give_exactly_the_bias) {
  lut_zero_weights<int4_g32>();
  lut_zero_weights<int3_g128>();
  lut_zero_weights<int2_g64>();
  lut_zero_weights<uint4_g64>();
  lut_zero_weights<uint2_g32>();
  lut_zero_weights<uint1_g64>();
  lut_zero_weights<ternary_absmean>();
  lut_zero_weights<ternary_absmean_base3>();
  lut_zero_weights<midrise1_g32>();
  lut_zero_weights<int4_tensor_g32>();
}

TEST(linear_lut, undefined_codes_and_bad_shapes_throw) {
  auto w = random_weights<ternary_absmean>(4, 64, 61);
  w.codes()[5] = 0xFF; // ternary code 3 (undefined)
  EXPECT_THROW(kernels::pack_for_lut(w), lowbit::error);
  std::vector<float> x(64), y(4);
  EXPECT_THROW(reference::linear_lut<ternary_absmean>(std::span<const float>(x), 1, w, y), lowbit::error);

  auto b3 = random_weights<ternary_absmean_base3>(2, 80, 62);
  b3.codes()[3] = 250; // base-3 byte >= 243
  EXPECT_THROW(kernels::pack_for_lut(b3), lowbit::error);

  auto u = random_weights<uint4_g64>(2, 64, 63);
  u.zero_points()[1] = 16;
  EXPECT_THROW(kernels::pack_for_lut(u), lowbit::error);
  EXPECT_THROW(kernels::pack_for_lut<lut_layout::permute>(u), lowbit::error);
  EXPECT_THROW(kernels::pack_for_lut<lut_layout::permute>(b3), lowbit::error);

  const auto p = kernels::pack_for_lut(random_weights<int4_g32>(4, 64, 64));
  std::vector<float> xs(64 * 2), ys(4 * 2), bias(3);
  EXPECT_THROW(linear(std::span<const float>(xs).first(63), 1, p, std::span<float>(ys).first(4)), invalid_argument);
  EXPECT_THROW(linear(std::span<const float>(xs), 2, p, std::span<float>(ys).first(7)), invalid_argument);
  EXPECT_THROW(linear(std::span<const float>(xs).first(64), 1, p, std::span<float>(ys).first(4), bias),
               invalid_argument);
  EXPECT_THROW(
      linear(std::span<const float>(xs).first(64), 1, kernels::lut_matrix<int4_g32>{}, std::span<float>(ys).first(4)),
      invalid_argument);
  // The kernels themselves refuse tables of another K (even with the same 2 blocks), tables whose
  // sizes disagree with their tokens, and wrong Y or bias sizes.
  kernels::lut_activations other_k, truncated, one;
  kernels::build_lut_tables(std::span<const float>(xs).first(40), 1, 40, other_k);
  ASSERT_EQ(other_k.blocks, p.blocks());
  kernels::build_lut_tables(std::span<const float>(xs).first(64), 1, 64, truncated);
  truncated.xsum.pop_back();
  kernels::build_lut_tables(std::span<const float>(xs).first(64), 1, 64, one);
  const auto pp = kernels::pack_for_lut<lut_layout::permute>(random_weights<int4_g32>(4, 64, 64));
  auto run_all = [&](const auto& packed, auto&& kernel) {
    using W = std::remove_cvref_t<decltype(packed)>;
    EXPECT_THROW(kernel(packed, other_k, std::span<float>(ys).first(4), std::span<const float>()), invalid_argument);
    EXPECT_THROW(kernel(packed, truncated, std::span<float>(ys).first(4), std::span<const float>()), invalid_argument);
    EXPECT_THROW(kernel(packed, one, std::span<float>(ys).first(3), std::span<const float>()), invalid_argument);
    EXPECT_THROW(kernel(packed, one, std::span<float>(ys).first(4), std::span<const float>(bias)), invalid_argument);
    EXPECT_THROW(kernel(W{}, one, std::span<float>(ys).first(4), std::span<const float>()), invalid_argument);
  };
  const auto scalar_kernel = [](auto&&... args) { kernels::scalar::linear_lut<int4_g32>(args...); };
  run_all(p, scalar_kernel);
  run_all(pp, scalar_kernel);
#if LOWBIT_HAS_AVX2
  run_all(p, [](auto&&... args) { kernels::avx2::linear_lut<int4_g32>(args...); });
#endif
#if LOWBIT_HAS_AVX512_BW
  run_all(p, [](auto&&... args) { kernels::avx512::linear_lut<int4_g32>(args...); });
#endif
#if LOWBIT_HAS_AVX512_VBMI
  run_all(pp, [](auto&&... args) { kernels::avx512::linear_lut<int4_g32>(args...); });
#endif
}

TEST(linear_lut, half_and_bfloat16_activations_match_their_float_widening) {
  const auto w2 = random_weights<int2_g32>(19, 96, 71);
  const auto u2 = random_weights<uint2_g32>(19, 96, 73);
  lowbit_test::expect_half_and_bf16_match_their_widening(kernels::pack_for_lut(w2), 2, 72);
  lowbit_test::expect_half_and_bf16_match_their_widening(kernels::pack_for_lut(u2), 5, 74);
  lowbit_test::expect_half_and_bf16_match_their_widening(kernels::pack_for_lut<lut_layout::permute>(w2), 2, 72);
  lowbit_test::expect_half_and_bf16_match_their_widening(kernels::pack_for_lut<lut_layout::permute>(u2), 5, 74);
}

// linear_weights: the LUT kernel up to lut_max_tokens, above it the int8 tiles (of W, of W
// repacked to 2 bits for base-3 ternary, or of its int8 packing) or the automatic path, bit for bit
// what those kernels give on their own.
template <class S>
void prepared_dispatch() {
  const std::size_t rows = 37, cols = 256;
  const auto w = random_weights<S>(rows, cols, 81);
  const linear_weights<S> prepared(w);
  for (std::size_t tokens : {std::size_t{1}, lut_max_tokens<S>(), lut_max_tokens<S>() + 1, std::size_t{12}}) {
    if (tokens == 0) continue;
    const auto x = lowbit_test::gaussian(tokens * cols, 82);
    std::vector<float> got(tokens * rows), want(tokens * rows);
    linear(std::span<const float>(x), tokens, prepared, std::span<float>(got));
    const bool lut = tokens <= lut_max_tokens<S>();
    constexpr bool packed = kernels::int8_pack_scheme<S>; // int8 tiles of pack_for_int8(w) after the LUT range
    constexpr bool tiled = kernels::int8_tiles_scheme<S>; // int8 tiles after the LUT range
    constexpr bool base3_tiled = kernels::int8_tiles_base3_scheme<S>; // of w repacked to 2 bits
    constexpr bool base3 = prefers_ternary_lut<S>();                  // the base-3 LUT kernel in the LUT range
    EXPECT_STREQ(linear_weights<S>::kernel_for(tokens),
                 lut ? (base3 ? "ternary_lut" : "lut")
                 : tiled || packed || base3_tiled
                     ? "int8_tiles"
                     : (automatic_path<S>() == linear_path::int8_dot ? "int8_dot" : "float_weights"));
    if constexpr (base3) {
      if (lut) reference::linear_ternary_lut<S>(std::span<const float>(x), tokens, w, want);
    } else if constexpr (lut_max_tokens<S>() > 0) {
      if (lut) reference::linear_lut<S>(std::span<const float>(x), tokens, w, want);
    }
    if constexpr (tiled) {
      if (!lut) reference::linear_int8_tiled<S>(std::span<const float>(x), tokens, w, want);
    } else if constexpr (base3_tiled) {
      if (!lut)
        reference::linear_int8_tiled(std::span<const float>(x), tokens, kernels::repack_ternary_2bit(w),
                                     std::span<float>(want));
    } else if constexpr (packed) {
      if (!lut)
        reference::linear_int8_tiled(std::span<const float>(x), tokens, kernels::pack_for_int8(w),
                                     std::span<float>(want));
    } else {
      if (!lut) linear(std::span<const float>(x), tokens, w, std::span<float>(want));
    }
    ASSERT_EQ(first_bit_difference(got, want), got.size()) << scheme_name<S>() << " tokens " << tokens;
  }
}

TEST(linear_weights, picks_the_lut_kernel_up_to_its_recorded_token_count) {
#if LOWBIT_HAS_AVX2
  EXPECT_GT(lut_max_tokens<int2_g32>(), 0u);
  EXPECT_GT(lut_max_tokens<ternary_absmean>(), 0u);
#endif
  EXPECT_EQ(lut_max_tokens<int4_g32>(), 0u); // the int8 tiles are faster at every N
  EXPECT_EQ(lut_max_tokens<nf4_scheme<>>(), 0u);
  EXPECT_EQ(lut_max_tokens<int8_group<32>>(), 0u);
  prepared_dispatch<int4_g32>();
  prepared_dispatch<int2_g32>();
  prepared_dispatch<ternary_absmean_base3>();                   // base-3 LUT, then int8 tiles (2-bit)
  prepared_dispatch<ternary_absmean>();                         // base-3 LUT, then int8 tiles
  prepared_dispatch<ternary_scheme<granularity::group, 64>>();  // bit-plane LUT (groups of 64)
  prepared_dispatch<ternary_scheme<granularity::group, 192>>(); // base-3 LUT (groups of 96k)
  prepared_dispatch<ternary_scheme<granularity::group, 64, code_layout::base3>>(); // bit-plane LUT, 2-bit tiles
#if LOWBIT_HAS_AVX2
  static_assert(prefers_ternary_lut<ternary_absmean>() == (LOWBIT_TERNARY_BASE3_LUT != 0));
#endif
#if LOWBIT_HAS_AVX2 && LOWBIT_TERNARY_BASE3_LUT
  // The base-3 copy is packed for the kernel linear() runs: the permute layout where VBMI is compiled.
  static_assert(
      std::is_same_v<
          std::remove_cvref_t<decltype(std::declval<const linear_weights<ternary_absmean>&>().ternary_lut())>,
          kernels::ternary_lut_matrix<ternary_absmean, LOWBIT_HAS_AVX512_VBMI ? kernels::ternary_lut_layout::permute
                                                                              : kernels::ternary_lut_layout::shuffle>>);
#endif
#if LOWBIT_HAS_AVX2
  // The bit-plane copy likewise.
  static_assert(std::is_same_v<
                std::remove_cvref_t<decltype(std::declval<const linear_weights<int2_g32>&>().lut())>,
                kernels::lut_matrix<int2_g32, LOWBIT_HAS_AVX512_VBMI ? lut_layout::permute : lut_layout::shuffle>>);
#endif
  static_assert(!prefers_ternary_lut<ternary_scheme<granularity::group, 64>>() && !prefers_ternary_lut<int2_g32>());
  prepared_dispatch<nf4_scheme<>>();
  prepared_dispatch<mxfp8_e4m3>();
  prepared_dispatch<int_sym<3, 32>>();   // LUT, then int8 tiles of the int8 packing
  prepared_dispatch<int_asym<8, 32>>();  // float_weights
  prepared_dispatch<int_asym<4, 128>>(); // LUT at N = 1 (not with VNNI), then int8 tiles with zero points
  prepared_dispatch<int_asym<2, 32>>();  // LUT, then int8 tiles with zero points
#if LOWBIT_HAS_AVX2
  EXPECT_EQ((lut_max_tokens<int_asym<4, 128>>()), LOWBIT_HAS_VNNI ? 0u : 1u);
  EXPECT_EQ(lut_max_tokens<int2_g32>(), std::size_t{LOWBIT_LUT_MAX_TOKENS_2BIT});
  EXPECT_EQ((lut_max_tokens<int_sym<3, 32>>()), std::size_t{LOWBIT_LUT_MAX_TOKENS_4BIT});
  // Ternary on the base-3 kernel (tensor scales) has its own range, which follows the bit-plane
  // kernel's (groups of 64) except where the permute layout runs.
  EXPECT_EQ(lut_max_tokens<ternary_absmean>(),
            std::size_t{LOWBIT_TERNARY_BASE3_LUT ? LOWBIT_LUT_MAX_TOKENS_BASE3 : LOWBIT_LUT_MAX_TOKENS_TERNARY});
  EXPECT_EQ(lut_max_tokens<ternary_absmean_base3>(),
            std::size_t{LOWBIT_TERNARY_BASE3_LUT ? LOWBIT_LUT_MAX_TOKENS_BASE3 : LOWBIT_LUT_MAX_TOKENS_TERNARY});
  EXPECT_EQ((lut_max_tokens<ternary_scheme<granularity::group, 64>>()), std::size_t{LOWBIT_LUT_MAX_TOKENS_TERNARY});
  EXPECT_EQ(std::string_view(linear_weights<int_asym<4, 128>>::kernel_for(1)), LOWBIT_HAS_VNNI ? "int8_tiles" : "lut");
#endif
}

} // namespace
