// The linear-layer kernels: the SIMD integer-dot path bit for bit against reference::linear_int8,
// the float path within an fp32 bound of reference::linear_dequantized, the int8 spec within its
// activation-rounding bound of the exact product, on many schemes, shapes, tails, token counts and
// thread counts; plus the building blocks (int8 tables, kernel order, activation quantization)
// and bad input.
#include "lowbit/kernels/linear.hpp"
#include "lowbit/schemes/all.hpp"

#include "kernels/kernel_test_support.hpp"
#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

using namespace lowbit;
using lowbit_test::first_bit_difference;
using lowbit_test::random_weights;
using lowbit_test::set_threads;
using lowbit_test::shape;

// Odd rows (row-tile tails), K with partial chunks and partial groups, K below a group or block
// (one padded group: K = 20 against blocks of 32, K = 32-96 against groups of 64 and 128), 1..9
// tokens (token tails).
const shape shapes[] = {{1, 32, 1},   {5, 64, 2},   {7, 96, 3}, {9, 160, 5},
                        {13, 200, 4}, {67, 320, 9}, {3, 48, 1}, {3, 20, 2}};

// Past parallel_rows' serial threshold (rows x cols x tokens >= 65536, core/threading.hpp), so that
// rows are split across threads: 1 and 3 tokens (the integer-dot kernel's tall row tiles for N < 4,
// the float path's rows without panels), with 7-8 rows or more per thread, and 70 tokens, past the
// integer-dot kernel's 64-token blocks (a block of 6 after a full one), with 4-5 rows per thread at
// 3 threads.
const shape threaded_shapes[] = {{64, 1100, 1}, {23, 1000, 3}, {13, 160, 70}};

// Sum over k of |w_k x_k| per output: the scale of fp32 rounding error.
std::vector<double> magnitude(const std::vector<float>& x, std::size_t tokens, const std::vector<float>& w,
                              std::size_t rows, std::size_t cols) {
  std::vector<double> m(tokens * rows);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t r = 0; r < rows; ++r) {
      double s = 0;
      for (std::size_t k = 0; k < cols; ++k) s += std::fabs(static_cast<double>(x[t * cols + k]) * w[r * cols + k]);
      m[t * rows + r] = s;
    }
  return m;
}

// W as the integer-dot path reads it: the qmatrix itself, or its int8 packing (Pack).
template <bool Pack, class Q>
auto prepared(Q w) {
  if constexpr (Pack)
    return kernels::pack_for_int8(w);
  else
    return w;
}

template <class S, bool Pack = false>
void int8_matches_reference(std::span<const shape> list = shapes) {
  for (const shape& s : list) {
    const auto w = prepared<Pack>(random_weights<S>(s.rows, s.cols, 11));
    const auto x = lowbit_test::gaussian(s.tokens * s.cols, 12);
    const auto bias = lowbit_test::uniform(s.rows, 13);
    std::vector<float> want(s.tokens * s.rows);
    reference::linear_int8(std::span<const float>(x), s.tokens, w, std::span<float>(want), bias);
    ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(want,
                                                        [&](std::span<float> got) {
                                                          linear<linear_path::int8_dot>(std::span<const float>(x),
                                                                                        s.tokens, w, got, bias);
                                                        }))
        << scheme_name<S>() << " rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
  }
}

// The int8 spec against the exact product with the dequantized matrix: activations are rounded
// to within s/2 per span (s = amax / 127), weights are exact or within half an int8 step of the
// table, and the fp32 arithmetic adds a relative 1e-5.
template <class S0, bool Pack = false>
void int8_within_activation_rounding() {
  const std::size_t rows = 17, cols = 320, tokens = 3;
  const auto w = prepared<Pack>(random_weights<S0>(rows, cols, 21));
  using S = typename std::remove_cvref_t<decltype(w)>::scheme_type;
  const auto x = lowbit_test::gaussian(tokens * cols, 22);
  const auto wd = dequantize(w);
  std::vector<float> exact(tokens * rows), got(tokens * rows);
  reference::linear(x, tokens, wd, rows, cols, std::span<float>(exact));
  reference::linear_int8<S>(std::span<const float>(x), tokens, w, got);
  using G = kernels::chunk_geometry<S>;
  bool exact_table = true;
  if constexpr (S::code_bits <= 4) exact_table = kernels::int8_table<typename S::element>::get().exact;
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t r = 0; r < rows; ++r) {
      double bound = 0, wmax = 0, xabs = 0;
      for (std::size_t c0 = 0; c0 < cols; c0 += G::act_block) {
        double amax = 0, wsum = 0;
        for (std::size_t c = c0; c < std::min(cols, c0 + G::act_block); ++c) {
          amax = std::max(amax, std::fabs(static_cast<double>(x[t * cols + c])));
          wsum += std::fabs(wd[r * cols + c]);
          wmax = std::max(wmax, std::fabs(static_cast<double>(wd[r * cols + c])));
          xabs += std::fabs(x[t * cols + c]);
        }
        bound += amax / 127 / 2 * wsum;
      }
      if (!exact_table) bound += wmax / 127 * 0.5 * 1.001 * xabs * 1.01; // table steps, scaled per block
      bound = bound * 1.01 + 1e-5 * magnitude(x, tokens, wd, rows, cols)[t * rows + r];
      EXPECT_LE(std::fabs(static_cast<double>(got[t * rows + r]) - exact[t * rows + r]), bound)
          << "row " << r << " token " << t;
    }
}

// Float path only: rows past a 16-row panel with a tail, K past its 1024-column blocks, tokens
// past 6-token steps with tails of 1 and 4, 2 tokens on rows split across threads, and 29 tokens:
// two token blocks of the 512-bit kernel (15 and 14).
const shape float_shapes[] = {{35, 1100, 13}, {17, 2080, 10}, {37, 2080, 2}, {19, 300, 29}};

template <class S>
void float_matches_reference(std::span<const shape> list = {}) {
  std::vector<shape> all(list.begin(), list.end());
  if (list.empty()) {
    all.assign(std::begin(shapes), std::end(shapes));
    all.insert(all.end(), std::begin(float_shapes), std::end(float_shapes));
  }
  for (const shape& s : all) {
    const auto w = random_weights<S>(s.rows, s.cols, 31);
    const auto x = lowbit_test::gaussian(s.tokens * s.cols, 32);
    const auto bias = lowbit_test::uniform(s.rows, 33);
    std::vector<float> want(s.tokens * s.rows);
    reference::linear_dequantized<S>(std::span<const float>(x), s.tokens, w, want, bias);
    const auto mag = magnitude(x, s.tokens, dequantize(w), s.rows, s.cols);
    std::vector<float> first;
    for (int threads : lowbit_test::thread_counts()) {
      set_threads(threads);
      std::vector<float> got(want.size(), -1.0f);
      linear<linear_path::float_weights>(std::span<const float>(x), s.tokens, w, std::span<float>(got), bias);
      for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i],
                    2e-6 * static_cast<double>(s.cols) / 32 * (mag[i] + std::fabs(bias[i % s.rows])) + 1e-30)
            << scheme_name<S>() << " rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens << " at " << i;
      if (first.empty())
        first = got;
      else
        EXPECT_EQ(got, first) << "threads " << threads;
    }
    set_threads(2);
  }
}

using int4_row = int_sym<4, 128, fp16, granularity::row>;
using int2_g32 = int_sym<2, 32>;
using uint4_g64 = int_asym<4, 64>;
using uint2_g32 = int_asym<2, 32>;
using ternary_g64 = ternary_scheme<granularity::group, 64>;
using int4_bf16_g32 = int_sym<4, 32, bf16>;

#if LOWBIT_HAS_AVX2
// The decoder paths the bit-exact tests below go through: two's-complement integers by an xor,
// codebooks and ternary by a shuffle.
static_assert(kernels::avx2::detail::span_decoder<int4_group<32>>::xor_key == 8 &&
              !kernels::avx2::detail::span_decoder<int4_group<32>>::lookup);
static_assert(kernels::avx2::detail::span_decoder<int2_g32>::xor_key == 2);
static_assert(kernels::avx2::detail::span_decoder<ternary_absmean>::xor_key == 0); // code 3 reads as 0: a shuffle
static_assert(kernels::avx2::detail::span_decoder<mxfp4>::lookup &&
              kernels::avx2::detail::span_decoder<nf4_scheme<64>>::lookup);
#endif

TEST(linear_int8, int4_groups_bit_exact) {
  int8_matches_reference<int4_group<32>>();
  int8_matches_reference<int4_group<128>>();
  int8_matches_reference<int4_bf16_g32>();
  int8_matches_reference<int4_row>();
  int8_matches_reference<int_sym<2, 16>>(); // eight scale units per span
  int8_matches_reference<int_sym<2, 64>>(); // two
  int8_matches_reference<int_sym<8, 16>>(); // two, on the signed path
}
TEST(linear_int8, asymmetric_groups_bit_exact) {
  int8_matches_reference<uint4_g64>();
  int8_matches_reference<uint2_g32>();
  int8_matches_reference<int_asym<4, 16>>(); // four zero points per span
  int8_matches_reference<int_asym<2, 16>>(); // eight
  int8_matches_reference<int_asym<4, 0, fp16, granularity::row>>();
  int8_matches_reference<int_asym<2, 0, fp32_scale, granularity::tensor>>();
}
TEST(linear_int8, mx_and_nv_bit_exact) {
  int8_matches_reference<mxfp4>();
  int8_matches_reference<nvfp4>();
  int8_matches_reference<mxint8>();
}
TEST(linear_int8, int8_and_int2_bit_exact) {
  int8_matches_reference<int8_group<32>>();
  int8_matches_reference<int8_group<128>>();
  int8_matches_reference<int2_g32>();
}
TEST(linear_int8, nf4_approximation_bit_exact) {
  int8_matches_reference<nf4_scheme<>>();
  int8_matches_reference<nf4_dq>();
  int8_matches_reference<nf4_dq_bnb>();
}
// GGUF IQ4_NL: a non-uniform 16-entry table of integers in [-127, 113], exact in int8 but too wide for
// the unsigned-table shortcut (sign path, as NF4).
TEST(linear_int8, iq4_nl_table_bit_exact) {
  int8_matches_reference<iq4_nl>();
  int8_matches_reference<iq4_nl>(threaded_shapes);
  int8_within_activation_rounding<iq4_nl>();
}
TEST(linear_int8, ternary_bit_exact) {
  int8_matches_reference<ternary_absmean>();
  int8_matches_reference<ternary_absmean_base3>();
  int8_matches_reference<ternary_g64>();
}

// Rows split across threads and tokens past the 64-token blocks, on each kind of decoder: xor
// (INT4, INT2), zero points, shuffle tables (MXFP4, NVFP4 with its tensor scale, NF4-dq), signed
// 8-bit, base 3, row scales and an int8 packing.
TEST(linear_int8, threads_and_token_blocks_bit_exact) {
  for (const shape& s : threaded_shapes) ASSERT_GE(s.rows * s.cols * s.tokens, std::size_t{1} << 16);
  int8_matches_reference<int4_group<128>>(threaded_shapes);
  int8_matches_reference<int2_g32>(threaded_shapes);
  int8_matches_reference<uint4_g64>(threaded_shapes);
  int8_matches_reference<mxfp4>(threaded_shapes);
  int8_matches_reference<nvfp4>(threaded_shapes);
  int8_matches_reference<nf4_dq>(threaded_shapes);
  int8_matches_reference<int8_group<32>>(threaded_shapes);
  int8_matches_reference<ternary_absmean_base3>(threaded_shapes);
  int8_matches_reference<int4_row>(threaded_shapes);
  int8_matches_reference<mxfp8_e4m3, true>(threaded_shapes);
}

TEST(linear_int8, spec_within_activation_rounding_of_the_exact_product) {
  int8_within_activation_rounding<int4_group<32>>();
  int8_within_activation_rounding<uint4_g64>();
  int8_within_activation_rounding<mxfp4>();
  int8_within_activation_rounding<nvfp4>();
  int8_within_activation_rounding<mxint8>();
  int8_within_activation_rounding<int8_group<128>>();
  int8_within_activation_rounding<ternary_absmean_base3>();
  int8_within_activation_rounding<nf4_scheme<>>();
}

TEST(linear_float, matches_dequantized_product) {
  float_matches_reference<int4_group<32>>();
  float_matches_reference<int4_group<128>>();
  float_matches_reference<uint4_g64>();
  float_matches_reference<mxfp4>();
  float_matches_reference<nvfp4>();
  float_matches_reference<nf4_scheme<>>();
  float_matches_reference<nf4_dq_bnb>();
  float_matches_reference<iq4_nl>();
}
TEST(linear_float, every_other_element_width) {
  float_matches_reference<mxfp8_e4m3>();
  float_matches_reference<mxfp8_e5m2>();
  float_matches_reference<mxfp6_e3m2>();
  float_matches_reference<mxfp6_e2m3>();
  float_matches_reference<int_sym<3, 32>>();
  float_matches_reference<int_asym<8, 32>>();
  float_matches_reference<int2_g32>();
  float_matches_reference<uint2_g32>();
  float_matches_reference<ternary_absmean>();
  float_matches_reference<ternary_g64>();
  float_matches_reference<ternary_absmean_base3>();
  float_matches_reference<int_sym<8, 0, fp32_scale, granularity::column>>();
  float_matches_reference<int_sym<4, 0, fp32_scale, granularity::tensor>>();
}
// Rows of 1 and 3 tokens split across threads (70 tokens: one panel tile), the same results at
// every thread count.
TEST(linear_float, threads_within_fp32_rounding) {
  float_matches_reference<int4_group<128>>(threaded_shapes);
  float_matches_reference<mxfp4>(threaded_shapes);
  float_matches_reference<nf4_dq_bnb>(threaded_shapes);
  float_matches_reference<mxfp8_e4m3>(threaded_shapes);
  float_matches_reference<uint4_g64>(threaded_shapes);
  float_matches_reference<ternary_absmean_base3>(threaded_shapes);
}
TEST(linear_float, groups_and_column_zero_points_not_aligned_to_eight) {
  float_matches_reference<int_sym<4, 20>>();
  float_matches_reference<int_asym<4, 12>>();
  float_matches_reference<int_asym<8, 0, fp32_scale, granularity::column>>();
}

#if LOWBIT_HAS_AVX512_BW
// Token blocks of the 512-bit float kernel: consecutive, covering every token once, at most
// float_token_block tokens each, sizes within one of each other.
TEST(linear_float, avx512_token_blocks_partition_the_tokens) {
  constexpr std::size_t max_block = kernels::avx512::float_token_block;
  for (std::size_t tokens = 1; tokens <= 10 * max_block + 3; ++tokens) {
    const kernels::avx512::detail::token_blocks blocks(tokens);
    ASSERT_EQ(blocks.count, (tokens + max_block - 1) / max_block) << tokens;
    std::size_t next = 0, smallest = tokens, largest = 0;
    for (std::size_t b = 0; b < blocks.count; ++b) {
      ASSERT_EQ(blocks.begin(b), next) << tokens << " block " << b;
      next += blocks.size(b);
      smallest = std::min(smallest, blocks.size(b));
      largest = std::max(largest, blocks.size(b));
    }
    EXPECT_EQ(next, tokens);
    EXPECT_LE(largest, max_block) << tokens;
    EXPECT_LE(largest - smallest, 1u) << tokens;
  }
}

// The 512-bit float kernel and the AVX2 one it falls back to, called directly at every token count
// from 1 to past two blocks (its row path up to 3, then one to three token blocks), on row tiles of
// 32 rows with a last tile of 5 rows (one panel) and of 21 (two, the second partial), and K past a
// 1024-column block: within the fp32 bound of the dequantized product, with and without bias, y
// pre-filled with garbage; the same results at every thread count.
class avx512_float_rows : public ::testing::TestWithParam<std::size_t> {};
TEST_P(avx512_float_rows, panel_products_at_every_token_count) {
  using S = int4_group<32>;
  const std::size_t rows = GetParam();
  constexpr std::size_t cols = 1100, kx = (cols + 7) / 8 * 8;
  const auto w = random_weights<S>(rows, cols, 41);
  const auto dq = dequantize(w);
  const auto bias = lowbit_test::uniform(rows, 43);
  for (std::size_t tokens = 1; tokens <= 2 * kernels::avx512::float_token_block + 3; ++tokens) {
    const auto x = lowbit_test::gaussian(tokens * cols, 42 + static_cast<unsigned>(tokens));
    std::vector<float> xk(tokens * kx, 0.0f); // rows padded to kx, as linear() passes them
    for (std::size_t t = 0; t < tokens; ++t) std::copy_n(x.begin() + t * cols, cols, xk.begin() + t * kx);
    const auto mag = magnitude(x, tokens, dq, rows, cols);
    for (const bool with_bias : {false, true}) {
      const std::span<const float> b = with_bias ? std::span<const float>(bias) : std::span<const float>();
      std::vector<float> want(tokens * rows);
      reference::linear_dequantized<S>(std::span<const float>(x), tokens, w, want, b);
      std::vector<float> first;
      for (int threads : lowbit_test::thread_counts()) {
        set_threads(threads);
        aligned_vector<float> scratch(kernels::avx512::float_scratch_total(w, tokens, kx));
        std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
        kernels::avx512::linear_float(w, xk.data(), tokens, kx, std::span<float>(got), b, scratch.data());
        for (std::size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 2e-6 * cols / 32 * (mag[i] + (with_bias ? std::fabs(bias[i % rows]) : 0.0)))
              << "tokens " << tokens << " bias " << with_bias << " at " << i;
        if (first.empty())
          first = got;
        else
          EXPECT_EQ(got, first) << "tokens " << tokens << " threads " << threads;
      }
      set_threads(2);
    }
  }
}
INSTANTIATE_TEST_SUITE_P(linear_float, avx512_float_rows, ::testing::Values(37, 53));
#endif

// pack_for_int8: schemes whose codes the integer-dot kernels cannot read in place.
using fp8_g16 = block_scheme<fp8_e4m3, fp16, granularity::group, 16, absmax_scale<>>;
using fp8_tensor = block_scheme<fp8_e4m3fnuz, fp32_scale, granularity::tensor, 0, absmax_scale<>>;
using e5m2_row = block_scheme<fp8_e5m2, bf16, granularity::row, 0, absmax_scale<>>;
using int6_row = int_sym<6, 0, fp32_scale, granularity::row>;
using uint5_g64 = int_asym<5, 64>;
using uint1_g32 = int_asym<1, 32>;
using dyn8_g64 = block_scheme<dynamic8, fp32_scale, granularity::group, 64, absmax_scale<>>;

static_assert(kernels::int8_pack_scheme<mxfp8_e4m3> && kernels::int8_pack_scheme<mxfp6_e3m2> &&
              kernels::int8_pack_scheme<int_sym<3, 32>> && kernels::int8_pack_scheme<uint5_g64> &&
              kernels::int8_pack_scheme<uint1_g32> && kernels::int8_pack_scheme<dyn8_g64>);
// Already int8_dot schemes, unsigned 8-bit zero points (code - zero needs 9 bits), base 3 and
// column scales are not packed.
static_assert(!kernels::int8_pack_scheme<int4_group<32>> && !kernels::int8_pack_scheme<mxint8> &&
              !kernels::int8_pack_scheme<int_asym<8, 32>> && !kernels::int8_pack_scheme<ternary_absmean_base3> &&
              !kernels::int8_pack_scheme<int_sym<6, 0, fp32_scale, granularity::column>>);

// Every code of a format: |mult * v - value| <= mult / 2 (0 where the table is exact), |v| <= 127,
// NaN and inf codes -> 0; and which tables are exact, on what grid.
template <class E>
void int8_table_256_every_code(bool exact, double mult) {
  const auto& t = kernels::int8_table<E, 256>::get();
  EXPECT_EQ(t.exact, exact) << format_name<E>;
  EXPECT_EQ(t.mult, static_cast<float>(mult)) << format_name<E>;
  for (unsigned c = 0; c < (1u << E::bits); ++c) {
    const double v = E::decode_double(static_cast<typename E::storage>(c));
    ASSERT_LE(std::abs(int{t.v[c]}), 127);
    if (!std::isfinite(v)) {
      EXPECT_EQ(t.v[c], 0) << format_name<E> << " code " << c;
      continue;
    }
    const double err = std::fabs(t.v[c] * static_cast<double>(t.mult) - v);
    if (exact)
      EXPECT_EQ(err, 0.0) << format_name<E> << " code " << c;
    else
      EXPECT_LE(err, 0.5 * t.mult) << format_name<E> << " code " << c;
  }
}

TEST(int8_pack, tables_of_every_code) {
  int8_table_256_every_code<fp8_e4m3>(false, 448.0 / 127);
  int8_table_256_every_code<fp8_e5m2>(false, 57344.0 / 127);
  int8_table_256_every_code<fp8_e4m3fnuz>(false, 240.0 / 127);
  int8_table_256_every_code<fp8_e5m2fnuz>(false, 57344.0 / 127);
  int8_table_256_every_code<fp6_e3m2>(false, 28.0 / 127);
  int8_table_256_every_code<fp6_e2m3>(true, 0.125);
  int8_table_256_every_code<integer_format<3>>(true, 1);
  int8_table_256_every_code<integer_format<7, false>>(true, 1);
  int8_table_256_every_code<integer_format<8>>(false, 128.0 / 127); // -128 does not fit
  int8_table_256_every_code<dynamic8>(false, 1.0 / 127);
}

// Every weight of the packed matrix within half a table step (times its scale) of the original,
// equal where the table is exact; the scales, tensor scale and storage size as documented.
template <class S>
void packed_weights_within_half_a_step() {
  const std::size_t rows = 9, cols = 200;
  const auto w = random_weights<S>(rows, cols, 61);
  const auto p = kernels::pack_for_int8(w);
  using P = typename decltype(p)::scheme_type;
  const auto& t = kernels::int8_table<typename S::element, 256>::get();
  const auto a = dequantize(w), b = dequantize(p);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const double x = a[r * cols + c], y = b[r * cols + c]; // fp32 products: 1e-6 relative slack
      const double bound =
          t.exact ? 0.0 : 0.5 * t.mult * std::fabs(w.scale_at(r, c)) + 1e-6 * (std::fabs(x) + std::fabs(y));
      ASSERT_LE(std::fabs(x - y), bound) << format_name<typename S::element> << " row " << r << " col " << c;
    }
  EXPECT_EQ(p.tensor_scale(), w.tensor_scale());
  ASSERT_EQ(p.scales().size(), w.scales().size());
  EXPECT_TRUE(std::equal(p.scales().begin(), p.scales().end(), w.scales().begin()));
  EXPECT_EQ(p.zero_points().size(), 0u);
  EXPECT_EQ(p.row_bytes(), w.padded_cols());
  EXPECT_NEAR(P::bits_per_weight(rows, cols) * static_cast<double>(rows * cols), 8.0 * p.storage_bytes(), 1e-6);
}

TEST(int8_pack, packed_weights_within_half_a_table_step) {
  packed_weights_within_half_a_step<mxfp8_e4m3>();
  packed_weights_within_half_a_step<mxfp8_e5m2>();
  packed_weights_within_half_a_step<mxfp6_e3m2>();
  packed_weights_within_half_a_step<mxfp6_e2m3>();
  packed_weights_within_half_a_step<fp8_g16>();
  packed_weights_within_half_a_step<fp8_tensor>();
  packed_weights_within_half_a_step<e5m2_row>();
  packed_weights_within_half_a_step<int_sym<3, 32>>();
  packed_weights_within_half_a_step<int6_row>();
  packed_weights_within_half_a_step<uint5_g64>();
  packed_weights_within_half_a_step<uint1_g32>();
  packed_weights_within_half_a_step<dyn8_g64>();
}

TEST(int8_pack, kernels_bit_exact_on_packed_matrices) {
  int8_matches_reference<mxfp8_e4m3, true>();
  int8_matches_reference<mxfp8_e5m2, true>();
  int8_matches_reference<mxfp6_e3m2, true>();
  int8_matches_reference<fp8_g16, true>(); // four scale units per span
  int8_matches_reference<fp8_tensor, true>();
  int8_matches_reference<e5m2_row, true>();
  int8_matches_reference<int_sym<3, 32>, true>();
  int8_matches_reference<uint5_g64, true>();
  int8_matches_reference<uint1_g32, true>();
}

TEST(int8_pack, spec_within_activation_rounding_of_the_packed_product) {
  int8_within_activation_rounding<mxfp8_e4m3, true>();
  int8_within_activation_rounding<mxfp6_e2m3, true>();
  int8_within_activation_rounding<uint5_g64, true>();
}

// linear_weights routes FP8 / FP6 / odd-width integers to the int8 tiles of their int8 packing at
// every token count (INT3 after its LUT kernel), bit for bit as linear() on
// pack_for_int8_tiles(pack_for_int8(w)), within the packing's error of the exact product.
TEST(int8_pack, linear_weights_runs_the_tiles_of_the_packing) {
  using int3 = int_sym<3, 32>;
  constexpr std::size_t lmax = lut_max_tokens<int3>();
  static_assert(std::string_view(linear_weights<mxfp8_e4m3>::kernel_for(1)) == "int8_tiles");
  static_assert(std::string_view(linear_weights<mxfp8_e4m3>::kernel_for(512)) == "int8_tiles");
  static_assert(lmax == 0 || std::string_view(linear_weights<int3>::kernel_for(lmax)) == "lut");
  static_assert(std::string_view(linear_weights<int3>::kernel_for(lmax + 1)) == "int8_tiles");
  static_assert(std::string_view(linear_weights<int_asym<8, 32>>::kernel_for(1)) == "float_weights");
  const std::size_t rows = 11, cols = 96;
  const auto w = random_weights<mxfp8_e4m3>(rows, cols, 71);
  const linear_weights<mxfp8_e4m3> lw(w);
  const auto p = kernels::pack_for_int8_tiles(kernels::pack_for_int8(w));
  for (std::size_t tokens : {1, 4, 9, 40}) {
    const auto x = lowbit_test::gaussian(tokens * cols, 72);
    std::vector<float> a(tokens * rows), b(tokens * rows), exact(tokens * rows);
    linear(std::span<const float>(x), tokens, lw, std::span<float>(a));
    linear(std::span<const float>(x), tokens, p, std::span<float>(b));
    EXPECT_EQ(first_bit_difference(a, b), a.size()) << "tokens " << tokens;
    linear<linear_path::float_weights>(std::span<const float>(x), tokens, lw.matrix(), std::span<float>(exact));
    // Within the table and activation steps: a loose sanity bound on the relative error.
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      num += (static_cast<double>(a[i]) - exact[i]) * (static_cast<double>(a[i]) - exact[i]);
      den += static_cast<double>(exact[i]) * exact[i];
    }
    EXPECT_LT(num, den * 1e-3) << "tokens " << tokens;
  }
  const auto w3 = random_weights<int3>(rows, cols, 73);
  const linear_weights<int3> lw3(w3);
  const auto p3 = kernels::pack_for_int8_tiles(kernels::pack_for_int8(w3));
  const auto x = lowbit_test::gaussian(9 * cols, 74);
  std::vector<float> a(9 * rows), b(9 * rows);
  linear(std::span<const float>(x), 9, lw3, std::span<float>(a));
  linear(std::span<const float>(x), 9, p3, std::span<float>(b));
  EXPECT_EQ(first_bit_difference(a, b), a.size());
}

// Bad input: NaN codes become 0 (documented), a NaN scale makes only its row NaN, corrupt zero
// points throw, empty matrices pack to empty ones.
TEST(int8_pack, bad_input) {
  const std::size_t rows = 3, cols = 64;
  auto w = random_weights<mxfp8_e4m3>(rows, cols, 81);
  w.codes()[5] = 0x7F;  // E4M3 NaN
  w.scales()[2] = 0xFF; // E8M0 NaN: row 1, second block
  const auto p = kernels::pack_for_int8(w);
  EXPECT_EQ(p.codes()[5], 0);
  const auto x = lowbit_test::gaussian(cols, 82);
  std::vector<float> y(rows);
  linear<linear_path::int8_dot>(std::span<const float>(x), 1, p, std::span<float>(y));
  EXPECT_TRUE(std::isfinite(y[0]));
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_TRUE(std::isfinite(y[2]));

  auto u = random_weights<uint5_g64>(2, 64, 83);
  u.zero_points()[1] = 32; // above the largest 5-bit code
  EXPECT_THROW(kernels::pack_for_int8(u), invalid_argument);

  const qmatrix<mxfp8_e4m3> empty;
  const auto pe = kernels::pack_for_int8(empty);
  EXPECT_EQ(pe.rows(), 0u);
  EXPECT_EQ(pe.codes().size(), 0u);
}

TEST(linear, automatic_path_choice) {
  static_assert(automatic_path<int4_group<128>>() == linear_path::int8_dot);
  static_assert(automatic_path<mxfp4>() == linear_path::int8_dot);
  static_assert(automatic_path<nvfp4>() == linear_path::int8_dot);
  static_assert(automatic_path<mxint8>() == linear_path::int8_dot);
  static_assert(automatic_path<ternary_absmean_base3>() == linear_path::int8_dot);
  static_assert(automatic_path<nf4_scheme<>>() == linear_path::int8_dot);
  static_assert(automatic_path<iq4_nl>() == linear_path::int8_dot);
  static_assert(automatic_path<mxfp8_e4m3>() == linear_path::float_weights);
  static_assert(!kernels::int8_dot_scheme<int_asym<8, 32>>);
  static_assert(!kernels::int8_dot_scheme<mxfp6_e2m3>);
  static_assert(!kernels::int8_dot_scheme<int_sym<8, 0, fp32_scale, granularity::column>>);
  // The default path is the automatic one, and half / bfloat16 activations are exact inputs.
  const std::size_t rows = 6, cols = 64, tokens = 2;
  const auto w = random_weights<int4_group<32>>(rows, cols, 41);
  const auto x = lowbit_test::gaussian(tokens * cols, 42);
  std::vector<half> xh(x.size());
  std::vector<float> xr(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    xh[i] = half(x[i]);
    xr[i] = static_cast<float>(xh[i]);
  }
  std::vector<float> a(tokens * rows), b(tokens * rows), c(tokens * rows);
  linear(std::span<const half>(xh), tokens, w, std::span<float>(a));
  linear<linear_path::int8_dot>(std::span<const float>(xr), tokens, w, std::span<float>(b));
  reference::linear_int8<int4_group<32>>(std::span<const half>(xh), tokens, w, c);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

TEST(linear, workspace_reuse_gives_the_same_result) {
  const auto w = random_weights<mxfp4>(33, 256, 51);
  linear_workspace ws;
  for (std::size_t tokens : {5, 1, 3}) {
    const auto x = lowbit_test::gaussian(tokens * 256, 52 + static_cast<std::uint32_t>(tokens));
    std::vector<float> a(tokens * 33), b(tokens * 33), c(tokens * 33), d(tokens * 33);
    linear<linear_path::int8_dot>(std::span<const float>(x), tokens, w, std::span<float>(a), {}, &ws);
    linear<linear_path::int8_dot>(std::span<const float>(x), tokens, w, std::span<float>(b));
    linear<linear_path::float_weights>(std::span<const float>(x), tokens, w, std::span<float>(c), {}, &ws);
    linear<linear_path::float_weights>(std::span<const float>(x), tokens, w, std::span<float>(d));
    EXPECT_EQ(a, b);
    EXPECT_EQ(c, d);
  }
}

TEST(kernel_layout, kernel_order_is_a_permutation_keeping_lanes_in_one_group_of_16) {
  const auto check = []<class S>() {
    using G = kernels::chunk_geometry<S>;
    std::set<std::size_t> seen;
    for (std::size_t p = 0; p < G::span; ++p) seen.insert(G::code_at(p));
    EXPECT_EQ(seen.size(), G::span);
    EXPECT_EQ(*seen.rbegin(), G::span - 1);
    EXPECT_EQ(G::chunks_per_span * kernels::chunk, G::span);
    // Lane l covers the same activation block in every chunk of a span (and, but for base 3, which
    // runs with tensor or row scales only, the same group of 16 codes).
    const std::size_t unit = G::base3 ? G::span : 16;
    for (std::size_t l = 0; l < 8; ++l)
      for (std::size_t h = 0; h < G::chunks_per_span; ++h)
        for (std::size_t i = 0; i < 4; ++i) {
          const std::size_t c = G::code_at(h * kernels::chunk + 4 * l + i);
          EXPECT_EQ(c / G::act_block, G::lane_code(l) / G::act_block) << l << " " << h << " " << i;
          EXPECT_EQ(c / unit, G::lane_code(l) / unit) << l << " " << h << " " << i;
        }
  };
  check.template operator()<mxfp4>();
  check.template operator()<nf4_dq_bnb>();
  check.template operator()<int2_g32>();
  check.template operator()<mxint8>();
  check.template operator()<ternary_absmean_base3>();
}

TEST(kernel_layout, int8_tables) {
  const auto exact = []<class E>(float mult) {
    const auto& t = kernels::int8_table<E>::get();
    EXPECT_TRUE(t.exact);
    EXPECT_EQ(t.mult, mult);
    for (unsigned c = 0; c < (1u << E::bits); ++c) {
      const float v = E::decode(static_cast<typename E::storage>(c));
      EXPECT_EQ(std::isfinite(v) ? v : 0.0f, t.v[c] * t.mult) << c;
    }
  };
  exact.template operator()<int4>(1.0f);
  exact.template operator()<uint4>(1.0f);
  exact.template operator()<int2>(1.0f);
  exact.template operator()<fp4_e2m1>(0.5f);
  exact.template operator()<ternary>(1.0f);
  exact.template operator()<iq4nl>(1.0f);
  const auto& t = kernels::int8_table<nf4>::get();
  EXPECT_FALSE(t.exact);
  for (unsigned c = 0; c < 16; ++c) EXPECT_NEAR(t.v[c] * t.mult, nf4::decode(static_cast<std::uint8_t>(c)), 0.5 / 127);
  EXPECT_EQ(t.v[7], 0);
  EXPECT_EQ(t.v[15], 127);
  EXPECT_EQ(t.v[0], -127);
  EXPECT_EQ(kernels::int8_value_mult<mxint8>(), 1.0f / 64);
  // Unsigned tables (u = v + offset): where the span's int16 sums cannot saturate, and no zero points.
  const auto unsigned_ok = []<class S>(bool usable, int offset) {
    const auto& u = kernels::int8_unsigned_table<S>::get();
    EXPECT_EQ(u.usable, usable) << scheme_name<S>();
    if constexpr (S::code_bits <= 4) {
      if (!usable) return;
      EXPECT_EQ(u.offset, offset) << scheme_name<S>();
      const auto& v = kernels::int8_table<typename S::element>::get().v;
      for (unsigned c = 0; c < (1u << S::element::bits); ++c) EXPECT_EQ(u.u[c], v[c] + offset) << c;
    }
  };
  unsigned_ok.template operator()<int4_group<32>>(true, 8);
  unsigned_ok.template operator()<mxfp4>(true, 12);
  unsigned_ok.template operator()<nvfp4>(true, 12);
  unsigned_ok.template operator()<int2_g32>(true, 2);
  unsigned_ok.template operator()<ternary_absmean>(true, 1);
  unsigned_ok.template operator()<ternary_absmean_base3>(true, 1);
  unsigned_ok.template operator()<nf4_scheme<>>(false, 0);
  unsigned_ok.template operator()<iq4_nl>(false, 0);
  unsigned_ok.template operator()<mxint8>(false, 0);
  unsigned_ok.template operator()<uint4_g64>(false, 0);
  EXPECT_TRUE(kernels::int8_unsigned_table<ternary_absmean_base3>::get().identity);
  EXPECT_FALSE(kernels::int8_unsigned_table<int4_group<32>>::get().identity);
}

// The bulk scale read (vectorized for E8M0, fp16 and table codes) equals the per-unit read bit for
// bit, for every 8-bit scale code and a sweep of 16-bit ones, with odd starts and lengths.
TEST(kernel_layout, bulk_scale_read_matches_per_unit_read) {
  const auto check = []<class S>(unsigned codes, unsigned step) {
    qmatrix<S> w(1, codes * S::block);
    for (std::size_t u = 0; u < codes; ++u) w.scales()[u] = static_cast<typename qmatrix<S>::scale_storage>(u * step);
    const kernels::scale_reader<S> ws(w, 0.75f);
    for (std::size_t u0 : {std::size_t{0}, std::size_t{3}}) {
      std::vector<float> got(codes - u0);
      ws.read(u0, got.size(), got.data());
      for (std::size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(ws(u0 + i)))
            << scheme_name<S>() << " unit " << u0 + i;
    }
  };
  check.template operator()<mxfp4>(256, 1);
  check.template operator()<nvfp4>(256, 1);
  check.template operator()<int4_group<32>>(4099, 16); // fp16 codes 0, 16, 32, ... incl. inf and NaN
  check.template operator()<int4_bf16_g32>(4099, 16);
}

TEST(kernel_activations, absmax_per_block_in_kernel_order) {
  const std::size_t cols = 70; // two full blocks and a partial one; one full span and a partial one
  auto x = lowbit_test::gaussian(cols, 61);
  x[3] = 5.0f; // block 0's absmax
  kernels::int8_activations a;
  kernels::quantize_activations<mxfp4>(std::span<const float>(x), 1, cols, a);
  using G = kernels::chunk_geometry<mxfp4>;
  ASSERT_EQ(a.spans, 2u);
  ASSERT_EQ(a.positions, 128u);
  ASSERT_EQ(a.blocks, 4u);
  EXPECT_EQ(a.scale[0], 5.0f / 127);
  EXPECT_EQ(a.scale[3], 0.0f); // all padding
  for (std::size_t sp = 0; sp < 2; ++sp)
    for (std::size_t p = 0; p < G::span; ++p) {
      const std::size_t c = sp * G::span + G::code_at(p);
      const float v = c < cols ? x[c] : 0.0f;
      const float s = a.scale[c / 32];
      const int q = a.q[sp * G::span + p];
      EXPECT_LE(std::abs(q), 127);
      EXPECT_LE(std::fabs(q * s - v), s * 0.5f * 1.0001f) << sp << " " << p;
    }
  std::size_t p3 = 0; // the kernel position of column 3, the block's absmax: exactly 127
  while (G::code_at(p3) != 3) ++p3;
  EXPECT_EQ(a.q[p3], 127);
  // Lane scales and offsets: the lane's block scale; the unsigned table's offset (E2M1 as 2x:
  // values -12..12, offset 12) times the lane's activation sum over both chunks.
  ASSERT_TRUE(kernels::int8_unsigned_table<mxfp4>::get().usable);
  EXPECT_EQ(kernels::int8_unsigned_table<mxfp4>::get().offset, 12);
  for (std::size_t sp = 0; sp < 2; ++sp)
    for (std::size_t l = 0; l < 8; ++l) {
      EXPECT_EQ(a.lane_scale[sp * 8 + l], a.scale[(sp * G::span + G::lane_code(l)) / 32]);
      int sum = 0;
      for (std::size_t h = 0; h < 2; ++h)
        for (std::size_t i = 0; i < 4; ++i) sum += a.q[sp * G::span + h * 32 + 4 * l + i];
      EXPECT_EQ(a.lane_offset[sp * 8 + l], 12 * sum);
    }
  // Blocks too small for 127 / amax (subnormal) count as zero blocks.
  std::vector<float> tiny(64, 1e-40f);
  tiny[5] = 1.0f;
  kernels::quantize_activations<mxfp4>(std::span<const float>(tiny), 1, 64, a);
  EXPECT_EQ(a.scale[0], 1.0f / 127);
  EXPECT_EQ(a.scale[1], 0.0f);
  for (std::size_t p = 0; p < 64; ++p) {
    if (G::code_at(p) >= 32) {
      EXPECT_EQ(a.q[p], 0);
    }
  }
  // Zero blocks scale to 0; a NaN or inf block scales to NaN with zero codes.
  std::vector<float> z(64, 0.0f);
  z[40] = std::numeric_limits<float>::infinity();
  kernels::quantize_activations<mxfp4>(std::span<const float>(z), 1, 64, a);
  EXPECT_EQ(a.scale[0], 0.0f);
  EXPECT_TRUE(std::isnan(a.scale[1]));
  for (std::size_t p = 0; p < 64; ++p) {
    if (G::code_at(p) >= 32) {
      EXPECT_EQ(a.q[p], 0);
    }
  }
}

// The AVX2 activation quantizer against the scalar spec, byte for byte and bit for bit: every
// kernel order (8-, 4- and 2-bit, nibbles high first, base 3), offsets on and off, fp32 / fp16 /
// bf16 input, K with partial blocks and partial or whole padding spans, tokens with zero, NaN,
// inf, subnormal and tied blocks.
template <class S, class T>
void avx2_activations_match_scalar() {
#if LOWBIT_HAS_AVX2
  for (std::size_t cols : {32, 64, 70, 100, 160, 161, 256, 1000, 4099}) {
    if (S::gran == granularity::group && cols < S::block) continue;
    const std::size_t tokens = 5;
    const auto g = lowbit_test::gaussian(tokens * cols, 95);
    std::vector<T> x(g.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = T(g[i]);
    for (std::size_t c = 0; c < std::min<std::size_t>(cols, 40); ++c) x[cols + c] = T(0.0f);
    for (std::size_t c = 40; c < std::min<std::size_t>(cols, 200); ++c) x[cols + c] = T(c % 2 ? 1e-40f : -2e-38f);
    x[2 * cols + cols / 3] = T(std::numeric_limits<float>::quiet_NaN());
    x[3 * cols + cols - 1] = T(std::numeric_limits<float>::infinity());
    for (std::size_t c = 0; c < cols; ++c) x[4 * cols + c] = T(c % 5 == 0 ? 1e-40f : static_cast<float>(c % 9) - 4.0f);
    kernels::int8_activations want, got;
    kernels::quantize_activations<S>(std::span<const T>(x), tokens, cols, want);
    kernels::avx2::quantize_activations<S>(std::span<const T>(x), tokens, cols, got);
    ASSERT_EQ(got.q.size(), want.q.size());
    for (std::size_t i = 0; i < want.q.size(); ++i)
      ASSERT_EQ(got.q[i], want.q[i]) << scheme_name<S>() << " cols " << cols << " at " << i;
    ASSERT_EQ(got.scale.size(), want.scale.size());
    ASSERT_EQ(first_bit_difference(got.scale, want.scale), want.scale.size());
    ASSERT_EQ(got.lane_scale.size(), want.lane_scale.size());
    ASSERT_EQ(first_bit_difference(got.lane_scale, want.lane_scale), want.lane_scale.size());
    ASSERT_EQ(got.lane_offset.size(), want.lane_offset.size());
    for (std::size_t i = 0; i < want.lane_offset.size(); ++i)
      ASSERT_EQ(got.lane_offset[i], want.lane_offset[i]) << scheme_name<S>() << " cols " << cols << " at " << i;
  }
#else
  GTEST_SKIP() << "built without AVX2";
#endif
}

TEST(kernel_activations, avx2_quantizer_bit_exact_against_the_scalar_spec) {
  avx2_activations_match_scalar<int8_group<32>, float>();
  avx2_activations_match_scalar<int4_group<128>, float>();
  avx2_activations_match_scalar<mxfp4, float>();
  avx2_activations_match_scalar<nvfp4, half>();
  avx2_activations_match_scalar<nf4_dq_bnb, float>();
  avx2_activations_match_scalar<int2_g32, bfloat16>();
  avx2_activations_match_scalar<uint2_g32, float>();
  avx2_activations_match_scalar<uint4_g64, half>();
  avx2_activations_match_scalar<ternary_absmean, float>();
  avx2_activations_match_scalar<ternary_absmean_base3, float>();
  avx2_activations_match_scalar<ternary_absmean_base3, bfloat16>();
  avx2_activations_match_scalar<int_sym<4, 256>, float>();
}

TEST(linear, non_finite_activations_give_nan_for_that_token_only) {
  const std::size_t rows = 9, cols = 128, tokens = 3;
  const auto w = random_weights<int4_group<32>>(rows, cols, 71);
  auto x = lowbit_test::gaussian(tokens * cols, 72);
  x[1 * cols + 50] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> a(tokens * rows), b(tokens * rows);
  linear<linear_path::int8_dot>(std::span<const float>(x), tokens, w, std::span<float>(a));
  linear<linear_path::float_weights>(std::span<const float>(x), tokens, w, std::span<float>(b));
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t r = 0; r < rows; ++r) {
      EXPECT_EQ(std::isnan(a[t * rows + r]), t == 1);
      EXPECT_EQ(std::isnan(b[t * rows + r]), t == 1);
    }
}

// fp16 and bf16 activations on both paths, as their fp32 widening bit for bit: the integer-dot
// kernel's tall tiles (2 tokens) and 4-row tiles (7), the float path's rows (2) and panels (7),
// base-3 decoding, and the automatic path of a float-only scheme.
TEST(linear, half_and_bfloat16_activations_match_their_float_widening) {
  using lowbit_test::expect_half_and_bf16_match_their_widening;
  const auto w = random_weights<nvfp4>(13, 200, 111);
  for (std::size_t tokens : {2, 7}) {
    expect_half_and_bf16_match_their_widening<linear_path::int8_dot>(w, tokens, 112);
    expect_half_and_bf16_match_their_widening<linear_path::float_weights>(w, tokens, 113);
  }
  const auto t3 = random_weights<ternary_absmean_base3>(5, 400, 114);
  expect_half_and_bf16_match_their_widening<linear_path::int8_dot>(t3, 3, 115);
  expect_half_and_bf16_match_their_widening<linear_path::float_weights>(t3, 8, 116);
  expect_half_and_bf16_match_their_widening(random_weights<mxfp8_e4m3>(9, 96, 117), 2, 118);
}

// The shared bad-input checks: the integer-dot path bit for bit as its spec; the float path within
// fp32 rounding of the exact product with dequantize(W), where an inf activation gives +-inf (or
// NaN where it meets a zero weight or infs of both signs), as that product does.
TEST(linear, bad_input_on_the_integer_dot_and_float_paths) {
  const auto w = random_weights<int4_group<32>>(9, 128, 121);
  lowbit_test::expect_bad_input_handled<linear_path::int8_dot>(
      w,
      [&](std::span<const float> x, std::size_t tokens, std::span<float> y) {
        reference::linear_int8(x, tokens, w, y);
      },
      122);
  lowbit_test::expect_bad_input_handled<linear_path::float_weights>(
      w,
      [&](std::span<const float> x, std::size_t tokens, std::span<float> y) {
        reference::linear_dequantized(x, tokens, w, y);
      },
      123, {.tolerance = 1e-4, .nan_token = false});
}

// A matrix quantized from zeros gives exactly the bias on both paths (the int8 packing of those
// that need one on the integer-dot path), at 1 token and 5 (the kernels' other tiles).
template <class S>
void zero_weights_give_the_bias() {
  const std::size_t rows = 11, cols = 200;
  const auto w = quantize<S>(std::vector<float>(rows * cols, 0.0f), rows, cols);
  for (std::size_t tokens : {1, 5}) {
    if constexpr (kernels::int8_dot_scheme<S>)
      lowbit_test::expect_zero_weights_give_the_bias<linear_path::int8_dot>(w, tokens, 131);
    else if constexpr (kernels::int8_pack_scheme<S>)
      lowbit_test::expect_zero_weights_give_the_bias<linear_path::int8_dot>(kernels::pack_for_int8(w), tokens, 131);
    lowbit_test::expect_zero_weights_give_the_bias<linear_path::float_weights>(w, tokens, 132);
  }
}

TEST(linear, zero_weights_give_exactly_the_bias) {
  zero_weights_give_the_bias<int4_group<32>>();
  zero_weights_give_the_bias<int4_group<128>>();
  zero_weights_give_the_bias<uint4_g64>();
  zero_weights_give_the_bias<int2_g32>();
  zero_weights_give_the_bias<mxfp4>();
  zero_weights_give_the_bias<nvfp4>();
  zero_weights_give_the_bias<nf4_dq>();
  zero_weights_give_the_bias<mxint8>();
  zero_weights_give_the_bias<int8_group<32>>();
  zero_weights_give_the_bias<ternary_absmean>();
  zero_weights_give_the_bias<ternary_absmean_base3>();
  zero_weights_give_the_bias<mxfp8_e4m3>();
  zero_weights_give_the_bias<int_sym<3, 32>>();
}

// An E8M0 NaN scale (0xFF, which quantize writes for MX blocks holding NaN or inf; README) makes
// its block decode to NaN: on both paths that row's outputs are NaN at every token and the other
// rows stay finite; the integer-dot path bit for bit as its spec.
TEST(linear, mxfp4_nan_scale_makes_its_row_nan) {
  const std::size_t rows = 6, cols = 96;
  auto w = random_weights<mxfp4>(rows, cols, 141);
  w.scales()[mxfp4::scale_index(2, 32, cols)] = 0xFF; // row 2, second block
  for (std::size_t tokens : {1, 5}) {
    const auto x = lowbit_test::gaussian(tokens * cols, 142);
    std::vector<float> dot(tokens * rows), spec(tokens * rows), flt(tokens * rows);
    linear<linear_path::int8_dot>(std::span<const float>(x), tokens, w, std::span<float>(dot));
    reference::linear_int8(std::span<const float>(x), tokens, w, std::span<float>(spec));
    linear<linear_path::float_weights>(std::span<const float>(x), tokens, w, std::span<float>(flt));
    EXPECT_EQ(first_bit_difference(dot, spec), dot.size()) << "tokens " << tokens;
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t r = 0; r < rows; ++r) {
        EXPECT_EQ(std::isnan(dot[t * rows + r]), r == 2) << "token " << t << " row " << r;
        EXPECT_TRUE(r == 2 || std::isfinite(dot[t * rows + r])) << "token " << t << " row " << r;
        EXPECT_EQ(std::isnan(flt[t * rows + r]), r == 2) << "token " << t << " row " << r;
        EXPECT_TRUE(r == 2 || std::isfinite(flt[t * rows + r])) << "token " << t << " row " << r;
      }
  }
}

TEST(linear, wrong_shapes_throw) {
  const auto w = random_weights<mxfp4>(4, 64, 81);
  std::vector<float> x(2 * 64), y(2 * 4), bias(3);
  EXPECT_THROW(linear(std::span<const float>(x).first(100), 2, w, std::span<float>(y)), invalid_argument);
  EXPECT_THROW(linear(std::span<const float>(x), 2, w, std::span<float>(y).first(7)), invalid_argument);
  EXPECT_THROW(linear(std::span<const float>(x), 2, w, std::span<float>(y), bias), invalid_argument);
  EXPECT_THROW(linear(std::span<const float>(x), 3, w, std::span<float>(y)), invalid_argument);
  EXPECT_THROW(reference::linear_int8(std::span<const float>(x), 3, w, std::span<float>(y)), invalid_argument);
  const qmatrix<mxfp4> empty;
  EXPECT_THROW(linear(std::span<const float>(x), 2, empty, std::span<float>(y)), invalid_argument);
  std::vector<float> none;
  linear(std::span<const float>(none), 0, w, std::span<float>(none)); // zero tokens: nothing to do
}

TEST(linear, corrupt_base3_bytes_throw) {
  const std::size_t rows = 3, cols = 400;
  auto w = random_weights<ternary_absmean_base3>(rows, cols, 91);
  const auto x = lowbit_test::gaussian(cols, 92);
  std::vector<float> y(rows);
  linear(std::span<const float>(x), 1, w, std::span<float>(y)); // valid: fine
  for (std::size_t at : {std::size_t{0}, w.codes().size() - 1, std::size_t{37}}) {
    auto bad = w;
    bad.codes()[at] = 243;
    EXPECT_THROW(linear(std::span<const float>(x), 1, bad, std::span<float>(y)), error) << at;
    EXPECT_THROW(reference::linear_int8(std::span<const float>(x), 1, bad, std::span<float>(y)), error) << at;
  }
  // The float path, on rows (1 token) and on 4 panels of 16 rows (8 tokens), at 1-3 threads (the
  // work is past parallel_rows' serial threshold). K = 1215: 243 bytes per row, the last one
  // through the unpack's tail loop; bytes in the first, a middle and the last row.
  const std::size_t frows = 64, fcols = 1215;
  const auto fw = random_weights<ternary_absmean_base3>(frows, fcols, 94);
  const auto x1 = lowbit_test::gaussian(fcols, 95), x8 = lowbit_test::gaussian(8 * fcols, 96);
  std::vector<float> y1(frows), y8(8 * frows);
  const std::size_t rb = fw.row_bytes();
  for (std::size_t at : {std::size_t{0}, rb - 1, 33 * rb + 100, 64 * rb - 1})
    for (unsigned byte : {243u, 255u}) {
      auto bad = fw;
      bad.codes()[at] = static_cast<std::uint8_t>(byte);
      for (int threads : {1, 2, 3}) {
        set_threads(threads);
        EXPECT_THROW(linear<linear_path::float_weights>(std::span<const float>(x1), 1, bad, std::span<float>(y1)),
                     error)
            << at << " " << threads;
        EXPECT_THROW(linear<linear_path::float_weights>(std::span<const float>(x8), 8, bad, std::span<float>(y8)),
                     error)
            << at << " " << threads;
      }
      set_threads(2);
    }
  linear<linear_path::float_weights>(std::span<const float>(x8), 8, fw, std::span<float>(y8)); // valid: fine
}

TEST(linear, every_base3_byte_decodes_like_the_reference) {
  // One row holding all 243 valid bytes (1215 codes): the in-register division by 3 against
  // unpack_codes, through the bit-exact int8 comparison.
  const std::size_t cols = 243 * 5;
  qmatrix<ternary_absmean_base3> w(2, cols);
  for (std::size_t b = 0; b < 243; ++b) {
    w.codes()[b] = static_cast<std::uint8_t>(b);
    w.codes()[243 + b] = static_cast<std::uint8_t>(242 - b);
  }
  w.scales()[0] = fp32_scale::encode(0.75f);
  const auto x = lowbit_test::gaussian(3 * cols, 101);
  std::vector<float> got(3 * 2), want(3 * 2), exact(3 * 2);
  linear<linear_path::int8_dot>(std::span<const float>(x), 3, w, std::span<float>(got));
  reference::linear_int8(std::span<const float>(x), 3, w, std::span<float>(want));
  EXPECT_EQ(got, want);
  reference::linear_dequantized(std::span<const float>(x), 3, w, std::span<float>(exact));
  for (std::size_t i = 0; i < exact.size(); ++i) EXPECT_NEAR(got[i], exact[i], 0.02 * std::sqrt(double(cols)));
  // The float path's table decode of the same bytes, on rows (3 tokens) and on a panel (8 tokens,
  // the 3 repeated): within fp32 rounding of the dequantized product.
  std::vector<float> x8(8 * cols), f8(8 * 2);
  for (std::size_t t = 0; t < 8; ++t) std::copy_n(x.begin() + (t % 3) * cols, cols, x8.begin() + t * cols);
  linear<linear_path::float_weights>(std::span<const float>(x), 3, w, std::span<float>(got));
  linear<linear_path::float_weights>(std::span<const float>(x8), 8, w, std::span<float>(f8));
  for (std::size_t i = 0; i < exact.size(); ++i) {
    EXPECT_NEAR(got[i], exact[i], 1e-4 * std::fabs(exact[i]) + 1e-3) << i;
    EXPECT_NEAR(f8[i], exact[i], 1e-4 * std::fabs(exact[i]) + 1e-3) << i;
  }
  for (std::size_t i = exact.size(); i < f8.size(); ++i) EXPECT_EQ(f8[i], f8[i % exact.size()]) << i;
}

} // namespace
