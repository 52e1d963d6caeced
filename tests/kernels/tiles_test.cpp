// The integer-dot kernel on row-interleaved int8 tiles (kernels/int8_tiles.hpp): the AVX-512,
// AVX2 and scalar kernels bit for bit against reference::linear_int8_tiled (computed from the qmatrix, not
// from the tiles) on many schemes, shapes, tails, token counts and thread counts; that spec within
// fp32 reordering of the in-place integer-dot spec (the same int8 products); the layout itself; and
// bad input.
#include "lowbit/kernels/linear.hpp"
#include "lowbit/schemes/all.hpp"

#include "kernels/kernel_test_support.hpp"
#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace lowbit;
using lowbit_test::first_bit_difference;
using lowbit_test::random_weights;
using lowbit_test::shape;

// Rows below, at and past one or two tiles of 8; K with partial spans and partial groups; token
// counts that end in every tail of the kernel's 4-token blocks (runs of 2 and 1), and token counts
// past its 64-token blocks; one token on several tiles (scales decoded where they are used), also
// as the last of 65 (a one-token block after a 64-token one); K below a span or group (20 < 32,
// 32-96 < 128: one padded group). 4-16 tiles (rows 25-121) end the 512-bit pair kernel's blocks of
// two tile pairs in every remainder (a pair, an odd tile, both; at 1 thread, and at 2-3 where the
// work is split: rows x cols x tokens >= 65536), at one token (tested on the pair kernel directly)
// and more; 64 x 128 x 65 ends in a one-token block on blocks of two pairs.
const shape shapes[] = {{1, 32, 1},     {5, 64, 2},    {8, 96, 3},    {9, 160, 5},  {16, 200, 4},  {17, 320, 9},
                        {3, 48, 1},     {25, 256, 7},  {40, 1024, 6}, {7, 4160, 2}, {9, 160, 8},   {17, 640, 11},
                        {24, 1088, 13}, {3, 2112, 70}, {33, 96, 66},  {1, 32, 10},  {40, 1024, 1}, {17, 640, 1},
                        {17, 640, 65},  {3, 20, 2},    {49, 256, 1},  {56, 320, 5}, {64, 96, 2},   {72, 160, 1},
                        {88, 256, 3},   {121, 128, 1}, {100, 160, 9}, {64, 128, 65}};

template <class S>
std::string name() {
  return std::string(scheme_name<S>());
}

// Random weights of S; for an int8 packing (kernels::pack_for_int8), the packing of its source.
template <class S>
qmatrix<S> weights(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  if constexpr (requires { typename S::source_scheme; })
    return kernels::pack_for_int8(random_weights<typename S::source_scheme>(rows, cols, seed));
  else
    return random_weights<S>(rows, cols, seed);
}

// The kernels on pack_for_int8_tiles(w), bit for bit against the spec, at 1-3 threads.
template <class S>
void tiles_match_reference() {
  for (const shape& s : shapes) {
    const auto w = weights<S>(s.rows, s.cols, 91);
    const auto tw = kernels::pack_for_int8_tiles(w);
    const auto x = lowbit_test::gaussian(s.tokens * s.cols, 92);
    const auto bias = lowbit_test::uniform(s.rows, 93);
    std::vector<float> want(s.tokens * s.rows);
    reference::linear_int8_tiled(std::span<const float>(x), s.tokens, w, std::span<float>(want), bias);
    ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(
        want, [&](std::span<float> got) { linear(std::span<const float>(x), s.tokens, tw, got, bias); }))
        << name<S>() << " rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
    // The scalar kernel on the tiles (the path without AVX2).
    kernels::int8_activations a;
    kernels::tile_activations ta;
    kernels::quantize_activations<S>(std::span<const float>(x), s.tokens, s.cols, a);
    kernels::prepare_tile_activations<S>(a, ta);
#if LOWBIT_HAS_AVX2
    {
      // The AVX2 segment sums (what linear() uses) are the scalar ones.
      kernels::tile_activations t2;
      kernels::avx2::prepare_tile_activations<S>(a, t2);
      ASSERT_EQ(t2.per_token, ta.per_token);
      ASSERT_EQ(first_bit_difference(t2.scale, ta.scale), ta.scale.size()) << name<S>() << " cols " << s.cols;
      ASSERT_TRUE(t2.offset == ta.offset) << name<S>() << " cols " << s.cols;
      ASSERT_TRUE(t2.sum == ta.sum) << name<S>() << " cols " << s.cols;
    }
#endif
#if LOWBIT_HAS_AVX512_BW && LOWBIT_HAS_AVX512_VNNI
    // linear() ran the 512-bit kernel; the AVX2 kernel on every shape, and the 512-bit pair kernel
    // called directly at every token count, one token included (its one-token blocks decode scales
    // in place, with blocks of two pairs and of one).
    ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(
        want,
        [&](std::span<float> got) {
          std::vector<float> scratch(static_cast<std::size_t>(max_threads()) *
                                     kernels::avx2::int8_tiles_scratch_size(tw));
          kernels::avx2::linear_int8_tiled(tw, a, ta, got, bias, scratch.data());
        }))
        << name<S>() << " AVX2 kernel, rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
    ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(
        want,
        [&](std::span<float> got) {
          std::vector<float> scratch(static_cast<std::size_t>(max_threads()) *
                                     kernels::avx512::int8_tiles_scratch_size(tw));
          kernels::avx512::detail::pair_tiles(tw, a, ta, got, bias, scratch.data());
        }))
        << name<S>() << " AVX-512 pair kernel, rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
#endif
    std::vector<float> got(want.size(), -1.0f);
    std::vector<float> scratch(static_cast<std::size_t>(max_threads()) * kernels::scalar::int8_tiles_scratch_size(tw));
    kernels::scalar::linear_int8_tiled(tw, a, ta, std::span<float>(got), bias, scratch.data());
    ASSERT_EQ(first_bit_difference(got, want), got.size()) << name<S>() << " scalar, rows " << s.rows;
  }
}

// The tiled spec sums the same int8 products as reference::linear_int8 in another fp32 order: the
// two agree within fp32 rounding of the sum of |terms|.
template <class S>
void tiled_spec_is_the_int8_product() {
  const std::size_t rows = 19, cols = 640, tokens = 3;
  const auto w = random_weights<S>(rows, cols, 94);
  const auto x = lowbit_test::gaussian(tokens * cols, 95);
  std::vector<float> tiled(tokens * rows), inplace(tokens * rows);
  reference::linear_int8_tiled(std::span<const float>(x), tokens, w, std::span<float>(tiled));
  reference::linear_int8(std::span<const float>(x), tokens, w, std::span<float>(inplace));
  const auto wd = dequantize(w);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t r = 0; r < rows; ++r) {
      double m = 0;
      for (std::size_t c = 0; c < cols; ++c) m += std::fabs(static_cast<double>(x[t * cols + c]) * wd[r * cols + c]);
      const double d = std::fabs(static_cast<double>(tiled[t * rows + r]) - inplace[t * rows + r]);
      EXPECT_LE(d, 1e-5 * m + 1e-30) << name<S>() << " row " << r << " token " << t;
    }
}

TEST(int8_tiles, kernels_match_the_reference_bit_for_bit) {
  tiles_match_reference<int4_group<32>>();
  tiles_match_reference<int4_group<128>>();
  tiles_match_reference<int_sym<4, 16>>();
  tiles_match_reference<int_sym<4, 64, fp32_scale, granularity::row>>();
  tiles_match_reference<int_sym<4, 64, fp16, granularity::row>>(); // compact scales, one unit per row
  tiles_match_reference<mxfp4>();
  tiles_match_reference<nvfp4>();
  tiles_match_reference<nf4_scheme<64>>();
  tiles_match_reference<nf4_dq>();
  tiles_match_reference<nf4_dq_bnb>(); // high nibble first
  tiles_match_reference<iq4_nl>();
  tiles_match_reference<int8_group<128>>();
  tiles_match_reference<int_sym<8, 32, fp32_scale, granularity::tensor>>();
  tiles_match_reference<mxint8>();
  tiles_match_reference<int_sym<2, 32>>();
  tiles_match_reference<ternary_absmean>();
  tiles_match_reference<kernels::int8_packed_scheme<mxfp8_e4m3>>();
}

// Zero points (2- and 4-bit unsigned codes): unsigned codes in maddubs, zero point x segment sum
// subtracted per row; groups of 16 (two segments per span), 32, 64 and 128.
TEST(int8_tiles, zero_point_schemes_match_the_reference_bit_for_bit) {
  static_assert(kernels::int8_tiles_scheme<int_asym<4, 64>> && kernels::int8_tiles_scheme<int_asym<2, 32>>);
  static_assert(!kernels::int8_tiles_scheme<int_asym<8, 32>>); // code - zero needs 9 bits
  tiles_match_reference<int_asym<4, 16>>();
  tiles_match_reference<int_asym<4, 32>>();
  tiles_match_reference<int_asym<4, 64>>();
  tiles_match_reference<int_asym<4, 128>>();
  tiles_match_reference<int_asym<2, 32>>();
  tiles_match_reference<int_asym<4, 64, fp32_scale, granularity::row>>();
}

// The tiles keep every row's zero point per unit (zeros for padding rows), and the kernels use them:
// the same codes with all zero points moved by one change every output.
TEST(int8_tiles, zero_points_are_kept_per_tile_and_unit) {
  using S = int_asym<4, 64>;
  const std::size_t rows = 11, cols = 192, tokens = 2;
  auto w = random_weights<S>(rows, cols, 104);
  const auto tw = kernels::pack_for_int8_tiles(w);
  ASSERT_EQ(tw.units(), cols / 64);
  std::set<int> seen;
  for (std::size_t t = 0; t < tw.tiles(); ++t)
    for (std::size_t u = 0; u < tw.units(); ++u)
      for (std::size_t r = 0; r < 8; ++r) {
        const std::size_t row = t * 8 + r;
        const int want = row < rows ? w.zero_points()[S::scale_index(row, u * 64, cols)] : 0;
        ASSERT_EQ(tw.tile_zeros(t, u)[r], want) << "row " << row << " unit " << u;
        seen.insert(want);
      }
  EXPECT_GT(seen.size(), 2u); // the test data has varied zero points
  EXPECT_EQ(tw.storage_bytes(), 2 * 3 * 256 + 2 * 3 * 8 * sizeof(kernels::int8_tiled<S>::scale_type) + 2 * 3 * 8);
  const auto x = lowbit_test::gaussian(tokens * cols, 105);
  std::vector<float> before(tokens * rows), after(tokens * rows);
  linear(std::span<const float>(x), tokens, tw, std::span<float>(before));
  for (auto& z : w.zero_points()) z = static_cast<std::uint8_t>(z == 15 ? 14 : z + 1);
  linear(std::span<const float>(x), tokens, kernels::pack_for_int8_tiles(w), std::span<float>(after));
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_NE(before[i], after[i]) << i;
}

TEST(int8_tiles, spec_is_the_in_place_product_in_another_order) {
  tiled_spec_is_the_int8_product<int4_group<32>>();
  tiled_spec_is_the_int8_product<nvfp4>();
  tiled_spec_is_the_int8_product<nf4_scheme<64>>();
  tiled_spec_is_the_int8_product<int8_group<128>>();
  tiled_spec_is_the_int8_product<ternary_absmean>();
  tiled_spec_is_the_int8_product<int_asym<4, 64>>();
}

// The layout: 4-byte groups of 8 rows interleaved per span and lane, zero rows and spans past the
// matrix, and the scales scale_reader gives, per tile and unit.
TEST(int8_tiles, layout_interleaves_four_byte_groups_of_eight_rows) {
  using S = mxfp4;
  const std::size_t rows = 11, cols = 96; // 2 tiles, 2 spans (the second one partial)
  const auto w = random_weights<S>(rows, cols, 96);
  const auto tw = kernels::pack_for_int8_tiles(w);
  ASSERT_EQ(tw.rows(), rows);
  ASSERT_EQ(tw.cols(), cols);
  ASSERT_EQ(tw.tiles(), 2u);
  ASSERT_EQ(tw.spans(), 2u);
  ASSERT_EQ(tw.units(), cols / 32);
  const kernels::scale_reader<S> sr(w, kernels::int8_value_mult<S>());
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t r = 0; r < 8; ++r) {
      const std::size_t row = t * 8 + r;
      for (std::size_t sp = 0; sp < 2; ++sp)
        for (std::size_t l = 0; l < 8; ++l)
          for (std::size_t i = 0; i < 4; ++i) {
            const std::size_t byte = sp * 32 + 4 * l + i;
            const std::uint8_t want = row < rows && byte < w.row_bytes() ? w.row_codes(row)[byte] : 0;
            ASSERT_EQ(tw.tile_codes(t)[(sp * 8 + l) * 32 + 4 * r + i], want) << "row " << row << " byte " << byte;
          }
      std::vector<float> decoded(tw.units() * 8);
      tw.decode_tile_scales(t, decoded.data());
      for (std::size_t u = 0; u < tw.units(); ++u) {
        // E8M0 scales stay codes (1 byte per unit); padding rows hold code 0.
        const std::uint8_t code = row < rows ? w.scales()[S::scale_index(row, u * 32, cols)] : 0;
        ASSERT_EQ(tw.tile_scales(t, u)[r], code);
        if (row < rows) {
          const float want = sr(S::scale_index(row, u * 32, cols));
          ASSERT_EQ(std::bit_cast<std::uint32_t>(decoded[u * 8 + r]), std::bit_cast<std::uint32_t>(want));
        }
      }
    }
  static_assert(kernels::int8_tiled<S>::compact_scales);
  EXPECT_EQ(tw.storage_bytes(), 2 * 2 * 256 + 2 * 3 * 8 * sizeof(std::uint8_t));
}

// Every scale code decodes in the tiles as scale_reader reads it (8-bit tables, the E8M0 and UE4M3
// bit tricks, F16C), and fp32 / double-quantized scales are kept as scale_reader's floats.
template <class S>
void tile_scales_are_the_readers() {
  const std::size_t rows = 21, cols = 256;
  auto w = random_weights<S>(rows, cols, 102);
  if constexpr (sizeof(typename qmatrix<S>::scale_storage) == 1 && !qmatrix<S>::double_quantized) {
    // Every code, NaN and zero codes included.
    for (std::size_t i = 0; i < w.scales().size(); ++i)
      w.scales()[i] = static_cast<typename qmatrix<S>::scale_storage>(i % 256);
  }
  const auto tw = kernels::pack_for_int8_tiles(w);
  const kernels::scale_reader<S> sr(w, kernels::int8_value_mult<S>());
  std::vector<float> decoded(tw.units() * 8);
  for (std::size_t t = 0; t < tw.tiles(); ++t) {
    tw.decode_tile_scales(t, decoded.data());
    for (std::size_t r = 0; r < 8 && t * 8 + r < rows; ++r)
      for (std::size_t u = 0; u < tw.units(); ++u) {
        const std::size_t col = S::gran == granularity::group ? u * S::block : 0;
        const float want = sr(S::scale_index(t * 8 + r, col, cols));
        ASSERT_EQ(std::bit_cast<std::uint32_t>(decoded[u * 8 + r]), std::bit_cast<std::uint32_t>(want))
            << name<S>() << " row " << t * 8 + r << " unit " << u;
      }
  }
  // And the kernels on those scales (NaN and zero scale codes included) bit for bit as the spec, at
  // 1 token (scales decoded in the kernel where inline_scales) and 3.
  for (std::size_t tokens : {1, 3}) {
    const auto x = lowbit_test::gaussian(tokens * cols, 103);
    std::vector<float> got(tokens * rows), want(tokens * rows);
    linear(std::span<const float>(x), tokens, tw, std::span<float>(got));
    reference::linear_int8_tiled(std::span<const float>(x), tokens, w, std::span<float>(want));
    EXPECT_EQ(first_bit_difference(got, want), got.size()) << name<S>() << " tokens " << tokens;
  }
}

// 8-bit scale codes: read_plain gives read()'s floats on every plain code, and plain() accepts
// exactly those; tiles whose codes are all plain take read_plain, the others read(), and both
// decode as the scale reader (one special code of each kind in turn in tile 1, then in tile 2).
template <class S>
void plain_scale_codes_decode_alike() {
  using storage = typename qmatrix<S>::scale_storage;
  for (float ts : {1.0f, 3.0e-3f, 7.5f, 1.0e-38f}) { // the last: results near and below FLT_MIN
    const kernels::scale_decoder<S> dec(ts, kernels::int8_value_mult<S>());
    std::vector<storage> plain;
    for (unsigned c = 0; c < 256; ++c) {
      const auto code = static_cast<storage>(c);
      const bool is_plain = kernels::scale_decoder<S>::plain(&code, 1);
      const bool want = std::is_same_v<typename S::scale_format, ue4m3> ? c >= 8 && c <= 0x7E : c >= 1 && c <= 254;
      EXPECT_EQ(is_plain, want) << name<S>() << " code " << c;
      if (is_plain) plain.push_back(code);
    }
    std::vector<float> a(plain.size()), b(plain.size());
    dec.read(plain.data(), plain.size(), a.data());
    dec.read_plain(plain.data(), plain.size(), b.data());
    EXPECT_EQ(first_bit_difference(a, b), a.size()) << name<S>() << " tensor scale " << ts;
  }
  // Three tiles: where the 512-bit kernel runs, tiles 0-1 are a pair and tile 2 takes the AVX2
  // kernel, so a special code in tile 1 and then in tile 2 reaches both kernels' one-token routes.
  const std::size_t rows = 24, cols = 256;
  const auto base = random_weights<S>(rows, cols, 104);
  // Codes that are not plain, and the plain boundary codes, per format.
  constexpr bool e8 = std::is_same_v<typename S::scale_format, e8m0>;
  const std::vector<unsigned> codes =
      e8 ? std::vector<unsigned>{0, 255, 1, 254} : std::vector<unsigned>{0, 1, 7, 0x7F, 0x80, 0xFF, 8, 0x7E};
  for (std::size_t special_row : {15, 23})
    for (unsigned special : codes) {
      auto w = base;
      for (auto& c : w.scales()) c = static_cast<storage>(std::clamp<unsigned>(c, 8, 0x7E)); // all plain
      w.scales()[S::scale_index(special_row, cols - 3 * S::block, cols)] = static_cast<storage>(special);
      const auto tw = kernels::pack_for_int8_tiles(w);
      const storage sc = static_cast<storage>(special);
      for (std::size_t t = 0; t < tw.tiles(); ++t)
        EXPECT_EQ(tw.tile_plain(t), t != special_row / 8 || kernels::scale_decoder<S>::plain(&sc, 1))
            << name<S>() << " special " << special << " tile " << t;
      const kernels::scale_reader<S> sr(w, kernels::int8_value_mult<S>());
      std::vector<float> decoded(tw.units() * 8);
      for (std::size_t t = 0; t < tw.tiles(); ++t) {
        tw.decode_tile_scales(t, decoded.data());
        for (std::size_t r = 0; r < 8; ++r)
          for (std::size_t u = 0; u < tw.units(); ++u) {
            const float want = sr(S::scale_index(t * 8 + r, u * S::block, cols));
            ASSERT_EQ(std::bit_cast<std::uint32_t>(decoded[u * 8 + r]), std::bit_cast<std::uint32_t>(want))
                << name<S>() << " special " << special << " row " << t * 8 + r << " unit " << u;
          }
      }
      for (std::size_t tokens : {1, 2}) { // 1: decoded in the kernel on plain tiles, 2: into scratch first
        const auto x = lowbit_test::gaussian(tokens * cols, 105);
        std::vector<float> got(tokens * rows), want(tokens * rows);
        linear(std::span<const float>(x), tokens, tw, std::span<float>(got));
        reference::linear_int8_tiled(std::span<const float>(x), tokens, w, std::span<float>(want));
        EXPECT_EQ(first_bit_difference(got, want), got.size())
            << name<S>() << " special " << special << " row " << special_row << " tokens " << tokens;
      }
    }
}

TEST(int8_tiles, plain_scale_codes_take_the_short_decode) {
  plain_scale_codes_decode_alike<mxfp4>();
  plain_scale_codes_decode_alike<nvfp4>();
#if LOWBIT_HAS_AVX2
  // One-token calls decode in the kernel where a scale unit is one segment, and only there.
  static_assert(kernels::avx2::detail::inline_scales<nvfp4>() && kernels::avx2::detail::inline_scales<mxfp4>() &&
                kernels::avx2::detail::inline_scales<int4_group<32>>() &&
                kernels::avx2::detail::inline_scales<int_sym<2, 32>>() &&
                kernels::avx2::detail::inline_scales<mxint8>());
  static_assert(!kernels::avx2::detail::inline_scales<int4_group<128>>() &&
                !kernels::avx2::detail::inline_scales<int8_group<128>>() &&
                !kernels::avx2::detail::inline_scales<int_sym<4, 64, fp16, granularity::row>>() &&
                !kernels::avx2::detail::inline_scales<nf4_scheme<64>>());
#endif
}

TEST(int8_tiles, scales_decode_as_the_scale_reader_reads_them) {
  tile_scales_are_the_readers<mxfp4>();
  tile_scales_are_the_readers<nvfp4>();
  tile_scales_are_the_readers<int4_group<32>>(); // fp16
  tile_scales_are_the_readers<nf4_scheme<64>>(); // fp32
  tile_scales_are_the_readers<nf4_dq>();         // double-quantized
  tile_scales_are_the_readers<ternary_absmean>();
  static_assert(kernels::int8_tiled<nvfp4>::compact_scales && kernels::int8_tiled<int4_group<32>>::compact_scales);
  static_assert(!kernels::int8_tiled<nf4_scheme<64>>::compact_scales && !kernels::int8_tiled<nf4_dq>::compact_scales);
}

TEST(int8_tiles, half_and_bfloat16_activations_match_their_float_widening) {
  lowbit_test::expect_half_and_bf16_match_their_widening(
      kernels::pack_for_int8_tiles(random_weights<int4_group<32>>(13, 128, 97)), 3, 98);
}

// Base-3 ternary: pack_for_int8_tiles repacks the codes two bits each; the repacked matrix is the
// same matrix (dequantizes bit for bit alike, every base-3 byte included), and the tiles run it
// bit for bit as the spec on the repacked matrix, at 1-3 threads. Corrupt bytes throw.
template <class S>
void base3_tiles_are_the_2bit_tiles() {
  for (const shape& s : shapes) {
    auto w = random_weights<S>(s.rows, s.cols, 96);
    if (s.rows * w.row_bytes() >= 243) // every base-3 byte value somewhere in the matrix
      for (std::size_t b = 0; b < 243; ++b) w.codes()[b * (w.codes().size() / 243)] = static_cast<std::uint8_t>(b);
    const auto two = kernels::repack_ternary_2bit(w);
    static_assert(decltype(two)::scheme_type::layout == code_layout::bits);
    ASSERT_EQ(dequantize(two), dequantize(w)) << name<S>() << " rows " << s.rows << " cols " << s.cols;
    const auto tw = kernels::pack_for_int8_tiles(w);
    const auto x = lowbit_test::gaussian(s.tokens * s.cols, 97);
    std::vector<float> want(s.tokens * s.rows);
    reference::linear_int8_tiled(std::span<const float>(x), s.tokens, two, std::span<float>(want));
    ASSERT_TRUE(lowbit_test::bit_exact_at_thread_counts(
        want, [&](std::span<float> got) { linear(std::span<const float>(x), s.tokens, tw, got); }))
        << name<S>() << " rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens;
  }
  auto bad = random_weights<S>(3, 320, 98);
  bad.codes()[bad.codes().size() - 1] = 243;
  EXPECT_THROW(kernels::repack_ternary_2bit(bad), error);
  EXPECT_THROW(kernels::pack_for_int8_tiles(bad), error);
}

TEST(int8_tiles, base3_ternary_runs_repacked_two_bits_per_weight) {
  base3_tiles_are_the_2bit_tiles<ternary_absmean_base3>();
  base3_tiles_are_the_2bit_tiles<ternary_scheme<granularity::group, 64, code_layout::base3>>();
  base3_tiles_are_the_2bit_tiles<ternary_scheme<granularity::row, 0, code_layout::base3>>();
}

// A matrix quantized from zeros gives exactly the bias, at 1 token (scales decoded in the kernel)
// and 5 (a 4-token block and a tail).
template <class S>
void zero_weights() {
  const std::size_t rows = 17, cols = 200;
  const auto tw = kernels::pack_for_int8_tiles(quantize<S>(std::vector<float>(rows * cols, 0.0f), rows, cols));
  for (std::size_t tokens : {1, 5}) lowbit_test::expect_zero_weights_give_the_bias(tw, tokens, 106);
}

TEST(int8_tiles, zero_weights_give_exactly_the_bias) {
  zero_weights<int4_group<32>>();
  zero_weights<int_asym<4, 64>>();
  zero_weights<int_sym<2, 32>>();
  zero_weights<mxfp4>();
  zero_weights<nvfp4>();
  zero_weights<nf4_dq>();
  zero_weights<mxint8>();
  zero_weights<ternary_absmean>();
  zero_weights<ternary_absmean_base3>();
}

TEST(int8_tiles, bad_input) {
  using S = int4_group<32>;
  EXPECT_THROW(kernels::pack_for_int8_tiles(qmatrix<S>{}), invalid_argument);
  const auto w = random_weights<S>(9, 64, 99);
  lowbit_test::expect_bad_input_handled(
      kernels::pack_for_int8_tiles(w),
      [&](std::span<const float> x, std::size_t tokens, std::span<float> y) {
        reference::linear_int8_tiled(x, tokens, w, y);
      },
      100);
}

#if LOWBIT_HAS_AVX2
// The side streams' prefetch distance keeps the code stream's lead in blocks: a stream a quarter as
// thick gets a quarter of the distance, never less than one line (so that it reaches the next).
TEST(int8_tiles, side_prefetch_keeps_the_codes_lead) {
  using kernels::avx2::side_ahead;
  EXPECT_EQ(side_ahead(6144, 32 * 256, 128 * 256), 1536u);   // INT2-g32 LUT tiles: fp16 scales
  EXPECT_EQ(side_ahead(2048, 8 * 4 * 128, 256 * 128), 256u); // NVFP4 tiles: 4 UE4M3 units a span
  EXPECT_EQ(side_ahead(2048, 16, 256 * 128), 64u);           // row scales: the next line
  EXPECT_EQ(side_ahead(2048, 16, 0), 64u);
  for (std::size_t ahead : {64u, 2048u, 6144u})
    for (std::size_t code = 256; code <= 1u << 20; code *= 4)
      for (std::size_t side = 1; side <= code; side *= 2) {
        const std::size_t d = side_ahead(ahead, side, code);
        EXPECT_GE(d, 64u);
        if (d > 64) {
          EXPECT_EQ(d, ahead * side / code); // the codes' ratio of distance to bytes, rounded down
        }
      }
}

// kernels::avx2::dpbusd (vpdpbusd, or its AVX2 sequence without VNNI) against int arithmetic: every
// (u, s) byte pair once, in every byte position of some vector, with accumulators up to +-2^30.
TEST(int8_tiles, dpbusd_adds_every_byte_pair_exactly) {
  std::uint64_t state = 0x9e3779b97f4a7c15u;
  const auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int mismatches = 0;
  for (unsigned v = 0; v < 65536 / 32; ++v) {
    alignas(32) std::uint8_t u[32];
    alignas(32) std::int8_t s[32];
    alignas(32) std::int32_t acc[8], out[8];
    for (unsigned i = 0; i < 32; ++i) {
      const unsigned pair = (v * 32 + (i + v) % 32) % 65536; // pair p sits at position (p - v) mod 32
      u[i] = static_cast<std::uint8_t>(pair & 0xff);
      s[i] = static_cast<std::int8_t>(static_cast<std::uint8_t>(pair >> 8));
    }
    for (auto& a : acc) a = static_cast<std::int32_t>(next() % (1u << 31)) - (1 << 30);
    const auto ld = [](const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); };
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), kernels::avx2::dpbusd(ld(acc), ld(u), ld(s)));
    for (int j = 0; j < 8; ++j) {
      std::int32_t want = acc[j];
      for (int i = 0; i < 4; ++i) want += int{u[4 * j + i]} * int{s[4 * j + i]};
      if (out[j] != want && ++mismatches <= 5)
        ADD_FAILURE() << "vector " << v << " lane " << j << ": " << out[j] << " != " << want;
    }
  }
  EXPECT_EQ(mismatches, 0) << (kernels::avx2::has_vnni ? "vpdpbusd" : "AVX2 sequence");
}
#endif

} // namespace
