// The kernels on GGUF tensors (schemes/gguf.hpp), whose block scales take both signs and whose
// codes cover every pattern (Q8_0's -128 included), where lowbit's own quantizers give positive
// scales and symmetric codes: every path bit for bit against its reference, the float path within
// its bound, and the integer-dot result within activation rounding of the exact product.
#include "kernel_test_support.hpp"
#include "schemes/gguf_test_data.hpp"

#include "lowbit/kernels/reference.hpp"
#include "lowbit/schemes/gguf.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace {

using namespace lowbit;
using lowbit_test::bit_exact_at_thread_counts;

template <gguf::block_type S>
void every_path_on_gguf_weights(std::size_t rows, std::size_t cols, std::size_t tokens) {
  const auto w = gguf::from_gguf<S>(lowbit_test::random_gguf_tensor<S>(rows, cols, 40), rows, cols);
  const auto x = lowbit_test::gaussian(tokens * cols, 41);
  const auto bias = lowbit_test::uniform(rows, 42);
  const auto xs = std::span<const float>(x);
  const auto what = [&] { return scheme_name<S>() + " " + std::to_string(rows) + " x " + std::to_string(cols); };

  std::vector<float> want(tokens * rows);
  reference::linear_int8(xs, tokens, w, std::span<float>(want), bias);
  EXPECT_TRUE(bit_exact_at_thread_counts(
      want, [&](std::span<float> got) { linear<linear_path::int8_dot>(xs, tokens, w, got, bias); }))
      << what() << " int8_dot";

  reference::linear_int8_tiled(xs, tokens, w, std::span<float>(want), bias);
  const auto tiles = kernels::pack_for_int8_tiles(w);
  EXPECT_TRUE(bit_exact_at_thread_counts(want, [&](std::span<float> got) { linear(xs, tokens, tiles, got, bias); }))
      << what() << " int8 tiles";

  if constexpr (kernels::codebook_lut_scheme<S>) {
    reference::linear_codebook_lut(xs, tokens, w, std::span<float>(want), bias);
    const auto cb = kernels::pack_for_codebook_lut(w);
    EXPECT_TRUE(bit_exact_at_thread_counts(want, [&](std::span<float> got) { linear(xs, tokens, cb, got, bias); }))
        << what() << " codebook LUT";
  }

  // The float path within its bound of the product with the dequantized matrix, and the int8 spec
  // near that exact product (activations rounded to 8 bits: a relative RMS error of about 1 %).
  const auto wd = dequantize(w);
  std::vector<float> exact(tokens * rows), got(tokens * rows), spec(tokens * rows);
  reference::linear_dequantized(xs, tokens, w, std::span<float>(exact), bias);
  linear<linear_path::float_weights>(xs, tokens, w, std::span<float>(got), bias);
  reference::linear_int8(xs, tokens, w, std::span<float>(spec), bias);
  double err2 = 0, ref2 = 0;
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t r = 0; r < rows; ++r) {
      double mag = std::fabs(bias[r]);
      for (std::size_t k = 0; k < cols; ++k) mag += std::fabs(static_cast<double>(x[t * cols + k]) * wd[r * cols + k]);
      const std::size_t i = t * rows + r;
      ASSERT_NEAR(got[i], exact[i], 2e-6 * static_cast<double>(cols) / 32 * mag) << what() << " float at " << i;
      err2 += (spec[i] - exact[i]) * (spec[i] - exact[i]);
      ref2 += static_cast<double>(exact[i]) * exact[i];
    }
  EXPECT_LT(std::sqrt(err2 / ref2), 0.03) << what();
  EXPECT_GT(err2, 0.0) << what(); // the comparison is not vacuous
}

TEST(gguf_linear, every_path_takes_signed_scales_and_every_code) {
  for (const auto& [rows, cols, tokens] : {std::array<std::size_t, 3>{13, 96, 1}, {40, 512, 5}, {9, 1024, 70}}) {
    every_path_on_gguf_weights<gguf::q4_0>(rows, cols, tokens);
    every_path_on_gguf_weights<gguf::q8_0>(rows, cols, tokens);
    every_path_on_gguf_weights<gguf::iq4_nl>(rows, cols, tokens);
  }
}

} // namespace
