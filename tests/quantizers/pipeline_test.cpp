// Composed policies: a pipeline equals its stages run by hand, keeps X * W^T up to the
// quantization error, beats plain RTN where its stages should, and rejects misuse.
#include "lowbit/quantizers/pipeline.hpp"

#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace lowbit;

struct layer {
  std::size_t tokens = 64, rows = 96, cols = 768; // 768 = 3 x 256: block-diagonal rotation
  std::vector<float> x, w, y;
  activation_stats stats{768};
  layer() {
    x = lowbit_test::gaussian(tokens * cols, 1);
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t c = 5; c < cols; c += 97) x[t * cols + c] *= 40.0f; // outlier channels
    w = lowbit_test::student_t3(rows * cols, 2);
    for (auto& v : w) v *= 0.02f;
    stats.observe(x, tokens);
    y = reference::linear(x, tokens, w, rows, cols);
  }
  template <scheme S, class P>
  double sqnr(const P& p, bool calibrated = true) const {
    const auto q = p.template quantize<S>(w, rows, cols, calibrated ? &stats : nullptr);
    const auto yq = q.forward_reference(x, tokens);
    return 10 * std::log10(lowbit_test::sse(y, std::vector<float>(y.size(), 0.0f)) / lowbit_test::sse(y, yq));
  }
};

TEST(pipeline, equals_its_stages_run_by_hand) {
  const layer l;
  const pipeline p{smooth_quant{.alpha = 0.6f}, hadamard{.seed = 9}, rtn_mse{}};
  EXPECT_EQ(p.name(), "smoothquant + hadamard + rtn/mse");
  const auto q = p.quantize<int4_group<128>>(l.w, l.rows, l.cols, &l.stats);

  const auto s = smoothing_factors(l.stats.absmax(), l.w, l.rows, l.cols, 0.6f);
  auto w = l.w;
  fold_smoothing_into_weights(w, l.rows, l.cols, s);
  const hadamard_rotation rot(l.cols, 9);
  rot.apply_rows(w, l.rows);
  const auto want = rtn_mse{}.quantize<int4_group<128>>(w, l.rows, l.cols); // uniform after rotation
  EXPECT_TRUE(std::equal(want.codes().begin(), want.codes().end(), q.weight.codes().begin()));
  EXPECT_TRUE(std::equal(want.scales().begin(), want.scales().end(), q.weight.scales().begin()));

  auto x = l.x, xt = l.x;
  smooth_activations(x, l.tokens, l.cols, s);
  rot.apply_rows(x, l.tokens);
  q.input.apply(xt, l.tokens);
  EXPECT_EQ(x, xt);
  ASSERT_EQ(q.input.steps().size(), 2u);
}

TEST(pipeline, transforms_alone_keep_the_product) {
  const layer l;
  // int8 per row on the transformed weights: the product is kept up to int8 error
  const pipeline p{smooth_quant{}, hadamard{.seed = 3}, rtn_absmax{}};
  const auto q = p.quantize<int_sym<8, 0, fp32_scale, granularity::row>>(l.w, l.rows, l.cols, &l.stats);
  const auto yq = q.forward_reference(l.x, l.tokens);
  const double rel = lowbit_test::sse(l.y, yq) / lowbit_test::sse(l.y, std::vector<float>(l.y.size(), 0.0f));
  EXPECT_LT(rel, 1e-4);
}

TEST(pipeline, importance_and_rotation_lower_the_output_error) {
  const layer l;
  using S = int_sym<3, 128>;
  const double absmax = l.sqnr<S>(pipeline{rtn_absmax{}});
  const double mse = l.sqnr<S>(pipeline{rtn_mse{}}, false);
  const double weighted = l.sqnr<S>(pipeline{rtn_mse{}});
  const double rotated = l.sqnr<S>(pipeline{hadamard{.seed = 1}, rtn_mse{}});
  const double smooth_rot = l.sqnr<S>(pipeline{smooth_quant{.alpha = 0.3f}, hadamard{.seed = 1}, rtn_mse{}});
  std::printf("INT3 g128 output SQNR: absmax %.2f dB, mse %.2f, mse+importance %.2f, hadamard+mse %.2f, "
              "smoothquant(0.3)+hadamard+mse %.2f\n",
              absmax, mse, weighted, rotated, smooth_rot);
  EXPECT_GT(mse, absmax);
  EXPECT_GT(weighted, mse + 0.3);   // calibration importance pays on outlier channels
  EXPECT_GT(rotated, absmax + 0.5); // heavy-tailed weights: rotation pays
}

TEST(pipeline, misuse_throws) {
  const layer l;
  EXPECT_THROW(
      (pipeline{hadamard{}, smooth_quant{}, rtn_absmax{}}.quantize<int4_group<128>>(l.w, l.rows, l.cols, &l.stats)),
      invalid_argument);
  EXPECT_THROW((pipeline{smooth_quant{}, rtn_absmax{}}.quantize<int4_group<128>>(l.w, l.rows, l.cols)),
               invalid_argument);
  activation_stats other(l.cols + 1);
  EXPECT_THROW((pipeline{rtn_mse{}}.quantize<int4_group<128>>(l.w, l.rows, l.cols, &other)), invalid_argument);
  EXPECT_THROW((pipeline{rtn_mse{}}.quantize<int4_group<128>>(l.w, l.rows, l.cols + 1)), invalid_argument);
  EXPECT_THROW((pipeline{hadamard{.block = 512}, rtn_mse{}}.quantize<int4_group<128>>(l.w, l.rows, l.cols)),
               invalid_argument); // 512 does not divide 768
  const auto q = pipeline{hadamard{}, rtn_absmax{}}.quantize<int4_group<128>>(l.w, l.rows, l.cols);
  std::vector<float> x(l.cols * 2 + 1);
  EXPECT_THROW(q.input.apply(x, 2), invalid_argument);
}

} // namespace
