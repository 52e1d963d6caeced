// The base-3 LUT kernels for ternary weights (kernels/ternary_lut.hpp): on the shuffle layout the
// AVX-512 BW, AVX2 and scalar kernels, on the permute layout the AVX-512 VBMI and scalar kernels,
// bit for bit against reference::linear_ternary_lut (computed from
// the qmatrix, not from the packed layout) on 2-bit and base-3 ternary with tensor, row and group scales, shapes,
// tails, token and thread counts; all 27 triads; the table builders against their definition and each other; the
// documented error bound against the exact product; the layout; and bad input.
#include "lowbit/kernels/linear.hpp"
#include "lowbit/schemes/all.hpp"

#include "kernels/kernel_test_support.hpp"
#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace lowbit;
using lowbit_test::first_bit_difference;
using lowbit_test::random_weights;
using lowbit_test::shape;

using ternary_row = ternary_scheme<granularity::row>;
using ternary_g192 = ternary_scheme<granularity::group, 192>;
using ternary_b3_g96 = ternary_scheme<granularity::group, 96, code_layout::base3>;

static_assert(kernels::ternary_lut_scheme<ternary_absmean> && kernels::ternary_lut_scheme<ternary_absmean_base3> &&
              kernels::ternary_lut_scheme<ternary_row> && kernels::ternary_lut_scheme<ternary_g192>);
// Groups that a triad would straddle, zero points and other elements are refused.
static_assert(!kernels::ternary_lut_scheme<ternary_scheme<granularity::group, 64>> &&
              !kernels::ternary_lut_scheme<ternary_scheme<granularity::group, 128>> &&
              !kernels::ternary_lut_scheme<int_sym<2, 96>> && !kernels::ternary_lut_scheme<int4_group<96>>);

// Rows below, at and past one or two tiles of 32; K not a multiple of 3 or of 96 (partial triads
// and blocks); 1-9 tokens; and 19 tokens whose tables (13 KiB each at K = 4160) run_lut_tiles
// takes in blocks (16 + 3 at 4 tokens a pass, 18 + 1 at 2).
const shape shapes[] = {{1, 3, 1},
                        {5, 64, 2},
                        {32, 96, 3},
                        {33, 160, 5},
                        {64, 200, 4},
                        {70, 385, 9},
                        {3, 1, 1},
                        {31, 256, 7},
                        {40, 1024, 6},
                        {7, 4160, 2},
                        {40, 4160, 19},
                        // rows in column runs on the permute layout (LOWBIT_TERNARY_RUN_COLS = 1024:
                        // 89 blocks in 8 runs of 11 and one of 1; at groups of 192, 7 of 12 and one
                        // of 5), over 2 tiles, at 4 + 2 tokens (4160: 4 runs of 11; 3 of 12 and 8)
                        {37, 8500, 6}};

using kernels::ternary_lut_layout;

template <class S, ternary_lut_layout L = ternary_lut_layout::shuffle>
std::string name() {
  return std::string(scheme_name<S>()) + (L == ternary_lut_layout::permute ? " (permute layout)" : "");
}

template <class S, ternary_lut_layout L = ternary_lut_layout::shuffle>
void kernels_match_reference() {
  for (const shape& s : shapes) {
    const auto w = random_weights<S>(s.rows, s.cols, 141); // groups: K below the group is one padded group
    const auto tw = kernels::pack_for_ternary_lut<L>(w);
    const auto x = lowbit_test::gaussian(s.tokens * s.cols, 142);
    const auto bias = lowbit_test::uniform(s.rows, 143);
    std::vector<float> want(s.tokens * s.rows);
    reference::linear_ternary_lut(std::span<const float>(x), s.tokens, w, std::span<float>(want), bias);
    ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(
        want, [&](std::span<float> got) { linear(std::span<const float>(x), s.tokens, tw, got, bias); }))
        << name<S, L>() << " rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
    // The scalar kernel on the packed layout (the path without AVX2), on the scalar tables.
    kernels::ternary_activations a;
    kernels::build_ternary_tables(std::span<const float>(x), s.tokens, s.cols, a);
    std::vector<float> got(want.size(), -1.0f);
    kernels::scalar::linear_ternary_lut(tw, a, std::span<float>(got), bias);
    ASSERT_EQ(first_bit_difference(got, want), got.size()) << name<S, L>() << " scalar, rows " << s.rows;
#if LOWBIT_HAS_AVX512_BW
    // linear() runs the AVX-512 kernel here; the AVX2 one (on the AVX2 tables) must match as well.
    if constexpr (L == ternary_lut_layout::shuffle) {
      kernels::ternary_activations a2;
      kernels::avx2::build_ternary_tables(std::span<const float>(x), s.tokens, s.cols, a2);
      ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(
          want, [&](std::span<float> y2) { kernels::avx2::linear_ternary_lut(tw, a2, y2, bias); }))
          << name<S>() << " avx2, rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
    }
#endif
  }
}

// One token: each thread builds its own tables (lowbit_test::expect_one_token_bit_exact).
template <class S, ternary_lut_layout L = ternary_lut_layout::shuffle>
void one_token_matches_reference() {
  lowbit_test::expect_one_token_bit_exact<S, kernels::ternary_activations>(
      144, [](const qmatrix<S>& w) { return kernels::pack_for_ternary_lut<L>(w); },
      [](std::span<const float> x, const qmatrix<S>& w, std::span<float> y, std::span<const float> bias) {
        reference::linear_ternary_lut(x, 1, w, y, bias);
      },
      [](const auto& packed, std::span<const float> x, std::span<float> y, std::span<const float> bias, auto& tables) {
#if LOWBIT_HAS_AVX512_VBMI
        if constexpr (L == ternary_lut_layout::permute)
          return kernels::avx512::linear_ternary_lut_token(packed, x, y, bias, tables);
#endif
#if LOWBIT_HAS_AVX2
        if constexpr (L == ternary_lut_layout::shuffle)
          return kernels::avx2::linear_ternary_lut_token(packed, x, y, bias, tables);
#endif
        (void)tables; // the permute layout without VBMI: its scalar kernel, through linear()
        linear(x, 1, packed, y, bias);
      });
}

TEST(ternary_lut, one_token_tables_per_thread_bit_exact) {
  one_token_matches_reference<ternary_absmean_base3>();
  one_token_matches_reference<ternary_g192>();
  one_token_matches_reference<ternary_absmean_base3, ternary_lut_layout::permute>();
  one_token_matches_reference<ternary_g192, ternary_lut_layout::permute>();
}

template <ternary_lut_layout L>
void all_schemes_match_reference() {
  kernels_match_reference<ternary_absmean, L>();
  kernels_match_reference<ternary_absmean_base3, L>();
  kernels_match_reference<ternary_row, L>();
  kernels_match_reference<ternary_g192, L>();
  kernels_match_reference<ternary_b3_g96, L>();
}

TEST(ternary_lut, kernels_match_the_reference_bit_for_bit) {
  all_schemes_match_reference<ternary_lut_layout::shuffle>();
}

TEST(ternary_lut, permute_layout_kernels_match_the_reference_bit_for_bit) {
  all_schemes_match_reference<ternary_lut_layout::permute>();
}

// All 27 triads: the stored index and sign select the entry whose weights are the triad's, or
// their negation; the entries' weights are the base-3 digits minus 1, each pattern once.
TEST(ternary_lut, every_triad_maps_to_its_table_entry) {
  bool seen[14] = {};
  for (unsigned i = 0; i < 14; ++i) {
    int n = 0;
    for (unsigned l = 0; l < 3; ++l) n = 3 * n + kernels::ternary_entry_weight(i, l) + 1;
    EXPECT_EQ(n, static_cast<int>(i));
  }
  for (unsigned c0 = 0; c0 < 3; ++c0)
    for (unsigned c1 = 0; c1 < 3; ++c1)
      for (unsigned c2 = 0; c2 < 3; ++c2) {
        const unsigned v = kernels::ternary_triad(c0, c1, c2), i = v & 15u;
        ASSERT_LT(v, 32u);
        ASSERT_LT(i, 14u);
        const int sign = v & 16u ? -1 : 1;
        const unsigned c[3] = {c0, c1, c2};
        for (unsigned l = 0; l < 3; ++l)
          EXPECT_EQ(sign * kernels::ternary_entry_weight(i, l), static_cast<int>(c[l]) - 1) << c0 << c1 << c2;
        if (sign > 0) seen[i] = true;
        EXPECT_FALSE(i == 13 && sign < 0); // zero is stored with sign 0
      }
  for (bool s : seen) EXPECT_TRUE(s);
}

// The tables: every entry within s / 2 of its exact value (s = m / 127, m = the block's largest
// |entry|), the AVX2 builder bit for bit as the scalar one, and the special blocks of the header
// comment.
TEST(ternary_lut, tables_match_their_definition) {
  constexpr std::size_t B = kernels::ternary_block_cols;
  const std::size_t cols = 7 * B + 5, tokens = 3; // a partial last block and triad
  auto x = lowbit_test::gaussian(tokens * cols, 144);
  // Token 1: block 0 all zero, block 1 subnormal-tiny (127 / m overflows), block 2 NaN, block 3 inf,
  // block 4 so large that the sums overflow, block 5 a single nonzero; token 2 scaled by 1e30.
  for (std::size_t c = 0; c < B; ++c) {
    x[cols + c] = 0.0f;
    x[cols + B + c] = c % 2 ? 1e-44f : -1e-45f;
    x[cols + 4 * B + c] = 3e38f;
    x[cols + 5 * B + c] = c == 3 ? -2.5f : 0.0f;
  }
  x[cols + 2 * B + 1] = std::numeric_limits<float>::quiet_NaN();
  x[cols + 3 * B + 7] = -std::numeric_limits<float>::infinity();
  for (std::size_t c = 0; c < cols; ++c) x[2 * cols + c] *= 1e30f;
  kernels::ternary_activations a;
  kernels::build_ternary_tables(std::span<const float>(x), tokens, cols, a);
  ASSERT_EQ(a.blocks, 8u);
  ASSERT_EQ(a.cols, cols);
#if LOWBIT_HAS_AVX2
  kernels::ternary_activations b;
  kernels::avx2::build_ternary_tables(std::span<const float>(x), tokens, cols, b);
  ASSERT_TRUE(a.q == b.q);
  ASSERT_EQ(first_bit_difference(a.scale, b.scale), a.scale.size());
#endif
#if LOWBIT_HAS_AVX512_BW
  kernels::ternary_activations c;
  kernels::avx512::build_ternary_tables(std::span<const float>(x), tokens, cols, c);
  ASSERT_TRUE(a.q == c.q);
  ASSERT_EQ(first_bit_difference(a.scale, c.scale), a.scale.size());
#endif
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t bl = 0; bl < a.blocks; ++bl) {
      const float s = a.scale_row(t)[bl];
      double exact[kernels::ternary_block_triads][16] = {};
      double m = 0;
      bool bad = false;
      for (std::size_t j = 0; j < kernels::ternary_block_triads; ++j)
        for (unsigned i = 0; i < 14; ++i) {
          for (unsigned l = 0; l < 3; ++l) {
            const std::size_t c = bl * B + 3 * j + l;
            const double xv = c < cols ? static_cast<double>(x[t * cols + c]) : 0.0;
            bad = bad || !std::isfinite(xv);
            exact[j][i] += kernels::ternary_entry_weight(i, l) * xv;
          }
          m = std::max(m, std::fabs(exact[j][i]));
        }
      if (bad || m > std::numeric_limits<float>::max()) {
        EXPECT_TRUE(std::isnan(s)) << t << " " << bl;
      } else if (m < 127.0 / std::numeric_limits<float>::max()) { // zero, or so tiny that 127 / m overflows
        EXPECT_EQ(s, 0.0f) << t << " " << bl;
      } else {
        EXPECT_NEAR(s, m / 127, m / 127 * 1e-6) << t << " " << bl;
      }
      for (std::size_t j = 0; j < kernels::ternary_block_triads; ++j)
        for (std::size_t i = 0; i < 16; ++i) {
          const int q = a.q_row(t)[(bl * kernels::ternary_block_triads + j) * 16 + i];
          ASSERT_LE(std::abs(q), 127);
          if (!(s > 0.0f) || i >= 14) {
            ASSERT_EQ(q, 0) << "block " << bl << " entry " << i;
            continue;
          }
          // Half a step, plus the fp32 rounding of the sums, 127 / m and the product (|q| <= 127).
          ASSERT_LE(std::fabs(q * static_cast<double>(s) - exact[j][i]), 0.5 * s + 127 * s * 1e-6)
              << " token " << t << " triad " << j << " entry " << i;
        }
    }
}

// The builders split a token's blocks into tasks across threads (16 blocks each): the tables of
// every thread count equal one pass of the row builder over the whole token, with a bad block (NaN)
// and a partial last block inside the split.
TEST(ternary_lut, tables_split_into_tasks_match_one_pass) {
  const std::size_t cols = 60 * kernels::ternary_block_cols + 50, tokens = 3, blocks = 61; // enough to split
  static_assert(cols * tokens * 4 >= (std::size_t{1} << 16)); // also for the AVX-512 builder
  auto x = lowbit_test::gaussian(tokens * cols, 147);
  x[cols + 17 * kernels::ternary_block_cols + 4] = std::numeric_limits<float>::quiet_NaN(); // token 1, block 17
  kernels::ternary_activations one; // one pass per token, no tasks
  one.tokens = tokens;
  one.cols = cols;
  one.blocks = blocks;
  one.q.assign(tokens * one.row_entries(), 0);
  one.scale.assign(tokens * blocks, 0.0f);
  for (std::size_t t = 0; t < tokens; ++t)
    kernels::build_ternary_table_row(x.data() + t * cols, cols, blocks, one.q.data() + t * one.row_entries(),
                                     one.scale.data() + t * blocks);
  EXPECT_TRUE(std::isnan(one.scale_row(1)[17]));
  EXPECT_FALSE(std::isnan(one.scale_row(1)[16]) || std::isnan(one.scale_row(1)[18]));
  EXPECT_TRUE(lowbit_test::tables_equal_at_thread_counts(one, [&](kernels::ternary_activations& a) {
    kernels::build_ternary_tables(std::span<const float>(x), tokens, cols, a);
  }));
#if LOWBIT_HAS_AVX2
  EXPECT_TRUE(lowbit_test::tables_equal_at_thread_counts(one, [&](kernels::ternary_activations& a) {
    kernels::avx2::build_ternary_tables(std::span<const float>(x), tokens, cols, a);
  })) << "AVX2";
#endif
#if LOWBIT_HAS_AVX512_BW
  EXPECT_TRUE(lowbit_test::tables_equal_at_thread_counts(one, [&](kernels::ternary_activations& a) {
    kernels::avx512::build_ternary_tables(std::span<const float>(x), tokens, cols, a);
  })) << "AVX-512";
#endif
}

// The row builders, called directly with more blocks than cols fills (as a caller padding K may),
// give the blocks past cols zero entries and scale 0, and agree bit for bit.
TEST(ternary_lut, row_builders_zero_the_blocks_past_cols) {
  constexpr std::size_t B = kernels::ternary_block_cols, E = kernels::ternary_block_triads * 16;
  const std::size_t cols = B + 7, blocks = 4; // block 1 partial, blocks 2 and 3 wholly past cols
  const auto x = lowbit_test::gaussian(cols, 148);
  std::vector<std::int8_t> q(blocks * E, 1);
  std::vector<float> s(blocks, 1.0f);
  kernels::build_ternary_table_row(x.data(), cols, blocks, q.data(), s.data());
  EXPECT_GT(s[1], 0.0f);
  for (std::size_t b = 2; b < blocks; ++b) {
    EXPECT_EQ(s[b], 0.0f) << b;
    for (std::size_t i = 0; i < E; ++i) ASSERT_EQ(q[b * E + i], 0) << b;
  }
#if LOWBIT_HAS_AVX2
  alignas(32) std::int8_t qa[blocks * E];
  std::vector<float> sa(blocks, 1.0f);
  kernels::avx2::build_ternary_table_row(x.data(), cols, blocks, qa, sa.data());
  EXPECT_TRUE(std::equal(q.begin(), q.end(), qa));
  EXPECT_EQ(first_bit_difference(sa, s), sa.size());
#endif
#if LOWBIT_HAS_AVX512_BW
  std::vector<std::int8_t> q5(blocks * E, 1);
  std::vector<float> s5(blocks, 1.0f);
  kernels::avx512::build_ternary_table_row(x.data(), cols, blocks, q5.data(), s5.data());
  EXPECT_TRUE(q5 == q);
  EXPECT_EQ(first_bit_difference(s5, s), s5.size());
#endif
}

// Within the documented bound of the exact product with the dequantized weights: per block
// 32 * |w_scale| * s / 2, plus fp32 rounding.
template <class S>
void within_the_table_error_of_the_float_product() {
  const std::size_t rows = 37, cols = 580, tokens = 3;
  const auto w = random_weights<S>(rows, cols, 145);
  const auto x = lowbit_test::gaussian(tokens * cols, 146);
  const auto wd = dequantize(w);
  const auto tw = kernels::pack_for_ternary_lut(w);
  std::vector<float> got(tokens * rows);
  linear(std::span<const float>(x), tokens, tw, std::span<float>(got));
  kernels::ternary_activations a;
  kernels::build_ternary_tables(std::span<const float>(x), tokens, cols, a);
  const kernels::scale_reader<S> sr(w);
  double worst = 0;
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t r = 0; r < rows; ++r) {
      double exact = 0, mag = 0, bound = 0;
      for (std::size_t c = 0; c < cols; ++c) {
        exact += static_cast<double>(x[t * cols + c]) * wd[r * cols + c];
        mag += std::fabs(static_cast<double>(x[t * cols + c]) * wd[r * cols + c]);
      }
      for (std::size_t b = 0; b < a.blocks; ++b)
        bound += kernels::ternary_block_triads *
                 std::fabs(sr(S::scale_index(r, std::min(b * kernels::ternary_block_cols, cols - 1), cols))) *
                 a.scale_row(t)[b] / 2;
      const double err = std::fabs(got[t * rows + r] - exact);
      EXPECT_LE(err, bound + 1e-5 * mag) << name<S>() << " row " << r << " token " << t;
      worst = std::max(worst, err / bound);
    }
  // The bound is not loose by orders of magnitude: 32 entry roundings of up to s / 2 add up like a
  // random walk, about sqrt(32) / 32 of the bound; the worst of these 111 rows reached 0.11-0.12.
  EXPECT_GT(worst, 0.05) << name<S>();
}

TEST(ternary_lut, within_the_table_error_of_the_float_product) {
  within_the_table_error_of_the_float_product<ternary_absmean>();
  within_the_table_error_of_the_float_product<ternary_absmean_base3>();
  within_the_table_error_of_the_float_product<ternary_g192>();
}

// The error of the base-3 tables, of the bit-plane LUT and of the int8 integer-dot path against
// the exact product, side by side (the figures README.md quotes; printed and recorded as test
// properties). The base-3 tables round one entry of up to |x0| + |x1| + |x2| per triad; the
// bit-plane tables one signed sum of 4 activations per plane, weighted 1/2 (measured 1.02e-2
// against 0.59e-2, the int8 path 0.83e-2): the base-3 kernel trades accuracy for bytes.
TEST(ternary_lut, error_beside_the_bit_plane_lut) {
  using S = ternary_absmean;
  const std::size_t rows = 512, cols = 4096, tokens = 8;
  const auto wf = lowbit_test::gaussian(rows * cols, 147, 0.02f);
  const auto x = lowbit_test::student_t3(tokens * cols, 148);
  const auto w = quantize<S>(wf, rows, cols);
  std::vector<float> exact(tokens * rows), b3(tokens * rows), planes(tokens * rows), dot(tokens * rows);
  reference::linear_dequantized(std::span<const float>(x), tokens, w, std::span<float>(exact));
  linear(std::span<const float>(x), tokens, kernels::pack_for_ternary_lut(w), std::span<float>(b3));
  linear(std::span<const float>(x), tokens, kernels::pack_for_lut(w), std::span<float>(planes));
  linear<linear_path::int8_dot>(std::span<const float>(x), tokens, w, std::span<float>(dot));
  auto rel = [&](const std::vector<float>& y) {
    double e = 0, norm = 0;
    for (std::size_t i = 0; i < exact.size(); ++i) {
      e += (static_cast<double>(y[i]) - exact[i]) * (static_cast<double>(y[i]) - exact[i]);
      norm += static_cast<double>(exact[i]) * exact[i];
    }
    return std::sqrt(e / norm);
  };
  const double r_b3 = rel(b3), r_planes = rel(planes), r_dot = rel(dot);
  std::printf("ternary relative RMS error against the exact product: base-3 LUT %.3g, bit-plane LUT %.3g, "
              "int8 dot %.3g\n",
              r_b3, r_planes, r_dot);
  ::testing::Test::RecordProperty("base3_lut", std::to_string(r_b3));
  ::testing::Test::RecordProperty("bit_plane_lut", std::to_string(r_planes));
  ::testing::Test::RecordProperty("int8_dot", std::to_string(r_dot));
  EXPECT_GT(r_b3, 0.0);
  EXPECT_LT(r_b3, 2.5 * r_planes);
  EXPECT_LT(r_b3, 2e-2);
  EXPECT_LT(r_planes, 2e-2);
}

// Row r (0-31) of a tile's index and sign of triad j (of the whole row), read from the bytes as
// the header comment describes each layout.
template <ternary_lut_layout L>
std::pair<unsigned, unsigned> stored_triad(const std::uint8_t* tile, std::size_t r, std::size_t j) {
  const std::size_t h = r / 16, d = r % 16;
  if constexpr (L == ternary_lut_layout::shuffle) {
    const std::size_t quad = j / 4, k = j % 4, pair = quad / 2, qq = quad % 2, i = 16 * (k % 2) + d;
    const std::uint8_t* p = tile + pair * kernels::ternary_pair_bytes;
    return {(p[32 + 64 * qq + 32 * h + i] >> (4 * (k / 2))) & 15u, p[i] >> (7 - (4 * qq + 2 * h + k / 2)) & 1u};
  } else {
    const std::uint8_t* blk = tile + j / 32 * kernels::ternary_block_bytes;
    const std::size_t quad = j % 32 / 4, i = 4 * d + j % 4;
    return {(blk[64 * quad + i] >> (4 * h)) & 15u, blk[512 + 16 * quad + 8 * h + i / 8] >> (i % 8) & 1u};
  }
}

// The layouts (the header comment): every row's triads read back as its codes; rows and triads past
// the matrix all zero; the scales per tile and unit.
template <ternary_lut_layout L>
void layout_reads_back() {
  using S = ternary_absmean_base3;
  const std::size_t rows = 35, cols = 200; // 2 tiles (the second one partial), 3 blocks, a partial triad
  const auto w = random_weights<S>(rows, cols, 149);
  const auto tw = kernels::pack_for_ternary_lut<L>(w);
  ASSERT_EQ(tw.rows(), rows);
  ASSERT_EQ(tw.cols(), cols);
  ASSERT_EQ(tw.tiles(), 2u);
  ASSERT_EQ(tw.blocks(), 3u);
  ASSERT_EQ(tw.units(), 1u);
  std::vector<std::uint8_t> codes(w.padded_cols());
  const kernels::scale_reader<S> sr(w);
  for (std::size_t row = 0; row < 64; ++row) {
    if (row < rows) unpack_codes(S::layout, S::code_bits, w.row_codes(row), codes);
    const std::size_t t = row / 32;
    for (std::size_t j = 0; j < tw.blocks() * kernels::ternary_block_triads; ++j) {
      // Blocks tile after tile here (the permute layout's runs: permute_runs_read_back).
      if (tw.run_blocks() == 0) {
        ASSERT_EQ(tw.block_codes(t, j / 32) - tw.tile_codes(0),
                  static_cast<std::ptrdiff_t>((t * tw.blocks() + j / 32) * kernels::ternary_block_bytes));
      }
      const auto [idx, sign] = stored_triad<L>(tw.block_codes(t, j / 32), row % 32, j % 32);
      for (std::size_t l = 0; l < 3; ++l) {
        const std::size_t c = 3 * j + l;
        const int want = row < rows && c < cols ? static_cast<int>(codes[c]) - 1 : 0;
        ASSERT_EQ((sign ? -1 : 1) * kernels::ternary_entry_weight(idx, l), want)
            << "row " << row << " triad " << j << " weight " << l;
      }
      ASSERT_FALSE(idx == 13 && sign); // zero triads carry sign 0
    }
    ASSERT_EQ(tw.tile_scales(t, 0)[row % 32], row < rows ? sr(S::scale_index(row, 0, cols)) : 0.0f);
  }
  EXPECT_EQ(tw.storage_bytes(), 2 * 3 * kernels::ternary_block_bytes + 2 * 32 * sizeof(float));
  EXPECT_EQ(kernels::ternary_block_bytes * 8, 32 * kernels::ternary_block_cols * 5 / 3); // 5 bits per triad
}

TEST(ternary_lut, layout_reads_back_as_the_codes) { layout_reads_back<ternary_lut_layout::shuffle>(); }
TEST(ternary_lut, permute_layout_reads_back_as_the_codes) { layout_reads_back<ternary_lut_layout::permute>(); }

// The permute layout's column runs: rows longer than LOWBIT_TERNARY_RUN_COLS are stored run by
// run, every tile's blocks of a run before the next run's, and the scales likewise (a run's units
// of one tile contiguous, tile after tile). The places are counted out here in that order,
// independently of ternary_lut_matrix::block_codes and tile_scales; each block read back as the
// row's codes, each scale as the shuffle layout's (which keeps them tile after tile).
template <class S>
void permute_runs_read_back(std::size_t cols) {
  const std::size_t rows = 45; // 2 tiles, the second one partial
  const auto w = random_weights<S>(rows, cols, 152);
  const auto tp = kernels::pack_for_ternary_lut<ternary_lut_layout::permute>(w);
  const auto ts = kernels::pack_for_ternary_lut<ternary_lut_layout::shuffle>(w);
  const std::size_t blocks = (cols + 95) / 96, unit = S::gran == granularity::group ? S::block / 96 : 1;
  const std::size_t run = (LOWBIT_TERNARY_RUN_COLS + 96 * unit - 1) / (96 * unit) * unit;
  ASSERT_EQ(tp.blocks(), blocks);
  ASSERT_EQ(tp.run_blocks(), blocks > run ? run : 0u) << cols;
  ASSERT_EQ(ts.run_blocks(), 0u);
  std::vector<std::size_t> place(2 * blocks);
  std::size_t at = 0;
  for (std::size_t b0 = 0; b0 < blocks; b0 += run)
    for (std::size_t t = 0; t < 2; ++t)
      for (std::size_t b = b0; b < std::min(blocks, b0 + run); ++b, at += kernels::ternary_block_bytes)
        place[t * blocks + b] = at;
  ASSERT_EQ(at, tp.storage_bytes() - 2 * tp.units() * 32 * sizeof(float));
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t b = 0; b < blocks; ++b)
      ASSERT_EQ(tp.block_codes(t, b) - tp.tile_codes(0), static_cast<std::ptrdiff_t>(place[t * blocks + b]))
          << "tile " << t << " block " << b << " cols " << cols;
  std::vector<std::uint8_t> codes(w.padded_cols());
  for (std::size_t row = 0; row < 64; ++row) {
    if (row < rows) unpack_codes(S::layout, S::code_bits, w.row_codes(row), codes);
    for (std::size_t j = 0; j < blocks * kernels::ternary_block_triads; ++j) {
      const std::uint8_t* blk = tp.tile_codes(0) + place[row / 32 * blocks + j / 32];
      const auto [idx, sign] = stored_triad<ternary_lut_layout::permute>(blk, row % 32, j % 32);
      for (std::size_t l = 0; l < 3; ++l) {
        const std::size_t c = 3 * j + l;
        const int want = row < rows && c < cols ? static_cast<int>(codes[c]) - 1 : 0;
        ASSERT_EQ((sign ? -1 : 1) * kernels::ternary_entry_weight(idx, l), want)
            << "row " << row << " triad " << j << " weight " << l << " cols " << cols;
      }
    }
  }
  const std::size_t ru = run / unit;
  std::size_t at_u = 0;
  for (std::size_t u0 = 0; u0 < tp.units(); u0 += ru)
    for (std::size_t t = 0; t < 2; ++t)
      for (std::size_t u = u0; u < std::min(tp.units(), u0 + ru); ++u, at_u += 32) {
        ASSERT_EQ(tp.tile_scales(t, u) - tp.tile_scales(0, 0), static_cast<std::ptrdiff_t>(at_u))
            << "tile " << t << " unit " << u << " cols " << cols;
        ASSERT_EQ(std::memcmp(tp.tile_scales(t, u), ts.tile_scales(t, u), 32 * sizeof(float)), 0)
            << "tile " << t << " unit " << u << " cols " << cols;
      }
  ASSERT_EQ(at_u, 2 * tp.units() * 32);
}

TEST(ternary_lut, permute_layout_column_runs_read_back) {
  for (const std::size_t cols : {200, 1056, 1100, 4160, 8500, 12400}) {
    permute_runs_read_back<ternary_absmean_base3>(cols);
    permute_runs_read_back<ternary_g192>(cols);
    permute_runs_read_back<ternary_b3_g96>(cols);
  }
}

TEST(ternary_lut, half_and_bfloat16_activations_match_their_float_widening) {
  const auto w = random_weights<ternary_absmean>(13, 130, 150);
  lowbit_test::expect_half_and_bf16_match_their_widening(kernels::pack_for_ternary_lut(w), 3, 151);
  lowbit_test::expect_half_and_bf16_match_their_widening(kernels::pack_for_ternary_lut<ternary_lut_layout::permute>(w),
                                                         3, 151);
}

// A matrix quantized from zeros gives exactly the bias, with tensor, row and group scales.
template <class S>
void zero_weights() {
  const std::size_t rows = 33, cols = 200;
  const auto w = quantize<S>(std::vector<float>(rows * cols, 0.0f), rows, cols);
  for (std::size_t tokens : {1, 3}) {
    lowbit_test::expect_zero_weights_give_the_bias(kernels::pack_for_ternary_lut(w), tokens, 155);
    lowbit_test::expect_zero_weights_give_the_bias(kernels::pack_for_ternary_lut<ternary_lut_layout::permute>(w),
                                                   tokens, 155);
  }
}

TEST(ternary_lut, zero_weights_give_exactly_the_bias) {
  zero_weights<ternary_absmean>();
  zero_weights<ternary_absmean_base3>();
  zero_weights<ternary_row>();
  zero_weights<ternary_g192>();
}

// The codebook tables are another type: they do not bind to the base-3 kernels (nor the other way).
template <class W, class A>
concept scalar_kernel_takes = requires(const W& w, const A& a, std::span<float> y) {
  kernels::scalar::linear_ternary_lut(w, a, y, std::span<const float>());
};
static_assert(scalar_kernel_takes<kernels::ternary_lut_matrix<ternary_absmean>, kernels::ternary_activations> &&
              scalar_kernel_takes<kernels::ternary_lut_matrix<ternary_absmean, ternary_lut_layout::permute>,
                                  kernels::ternary_activations>);
static_assert(!scalar_kernel_takes<kernels::ternary_lut_matrix<ternary_absmean>, kernels::codebook_activations> &&
              !scalar_kernel_takes<kernels::ternary_lut_matrix<ternary_absmean, ternary_lut_layout::permute>,
                                   kernels::codebook_activations>);
static_assert(!std::is_convertible_v<const kernels::ternary_activations&, const kernels::codebook_activations&> &&
              !std::is_convertible_v<const kernels::codebook_activations&, const kernels::ternary_activations&>);

TEST(ternary_lut, bad_input) {
  using S = ternary_absmean;
  EXPECT_THROW(kernels::pack_for_ternary_lut(qmatrix<S>{}), invalid_argument);
  EXPECT_THROW(kernels::pack_for_ternary_lut<ternary_lut_layout::permute>(qmatrix<S>{}), invalid_argument);
  const std::size_t rows = 9, cols = 128;
  const auto w = random_weights<S>(rows, cols, 152);
  const auto tw = kernels::pack_for_ternary_lut(w);
  const auto tp = kernels::pack_for_ternary_lut<ternary_lut_layout::permute>(w);
  auto reference = [&](std::span<const float> xs, std::size_t tokens, std::span<float> y) {
    reference::linear_ternary_lut(xs, tokens, w, y);
  };
  lowbit_test::expect_bad_input_handled(tw, reference, 153);
  lowbit_test::expect_bad_input_handled(tp, reference, 153);
  // Undefined codes: 2-bit code 3 and base-3 bytes >= 243.
  auto w3 = w;
  w3.codes()[5] = 0xFF;
  EXPECT_THROW(kernels::pack_for_ternary_lut(w3), lowbit::error);
  EXPECT_THROW(kernels::pack_for_ternary_lut<ternary_lut_layout::permute>(w3), lowbit::error);
  std::vector<float> x(cols, 0.5f), y(rows);
  EXPECT_THROW(reference::linear_ternary_lut(std::span<const float>(x), 1, w3, std::span<float>(y)), lowbit::error);
  auto b3 = random_weights<ternary_absmean_base3>(2, 80, 154);
  b3.codes()[3] = 250;
  EXPECT_THROW(kernels::pack_for_ternary_lut(b3), lowbit::error);
  // Tables built for a shorter K are refused by the kernels, even where the block count is the same
  // (K = 100 against 128: both 2 blocks), as are tables whose sizes disagree with their tokens and
  // wrong Y and bias sizes.
  kernels::ternary_activations small, same_blocks, truncated;
  kernels::build_ternary_tables(std::span<const float>(x).first(64), 1, 64, small);
  kernels::build_ternary_tables(std::span<const float>(x).first(100), 1, 100, same_blocks);
  ASSERT_EQ(same_blocks.blocks, tw.blocks());
  kernels::build_ternary_tables(std::span<const float>(x), 1, cols, truncated);
  truncated.q.resize(truncated.q.size() - 16);
  kernels::ternary_activations one;
  kernels::build_ternary_tables(std::span<const float>(x), 1, cols, one);
  std::vector<float> long_bias(rows + 1);
  auto run_all = [&](const auto& packed, auto&& kernel) {
    using W = std::remove_cvref_t<decltype(packed)>;
    EXPECT_THROW(kernel(packed, small, std::span<float>(y), std::span<const float>()), invalid_argument);
    EXPECT_THROW(kernel(packed, same_blocks, std::span<float>(y), std::span<const float>()), invalid_argument);
    EXPECT_THROW(kernel(packed, truncated, std::span<float>(y), std::span<const float>()), invalid_argument);
    EXPECT_THROW(kernel(packed, one, std::span<float>(y).first(rows - 1), std::span<const float>()), invalid_argument);
    EXPECT_THROW(kernel(packed, one, std::span<float>(y), std::span<const float>(long_bias)), invalid_argument);
    EXPECT_THROW(kernel(W{}, one, std::span<float>(y), std::span<const float>()), invalid_argument);
  };
  auto scalar_kernel = [](auto&&... args) { kernels::scalar::linear_ternary_lut<S>(args...); };
  run_all(tw, scalar_kernel);
  run_all(tp, scalar_kernel);
#if LOWBIT_HAS_AVX2
  run_all(tw, [](auto&&... args) { kernels::avx2::linear_ternary_lut<S>(args...); });
#endif
#if LOWBIT_HAS_AVX512_BW
  run_all(tw, [](auto&&... args) { kernels::avx512::linear_ternary_lut<S>(args...); });
#endif
#if LOWBIT_HAS_AVX512_VBMI
  run_all(tp, [](auto&&... args) { kernels::avx512::linear_ternary_lut<S>(args...); });
#endif
}

} // namespace
