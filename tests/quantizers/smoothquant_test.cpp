// SmoothQuant: streamed calibration statistics, the smoothing factors against the formula, the
// unchanged product, and the W8A8 error drop on activations with outlier channels.
#include "lowbit/quantizers/smoothquant.hpp"

#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

using namespace lowbit;

// tokens x cols activations whose few outlier channels are ~`outlier` times larger (as in LLMs).
std::vector<float> activations(std::size_t tokens, std::size_t cols, float outlier, std::uint32_t seed) {
  auto x = lowbit_test::gaussian(tokens * cols, seed);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t c = 0; c < cols; c += 61) x[t * cols + c] *= outlier;
  return x;
}

TEST(activation_stats, batches_of_any_size_give_the_same_statistics) {
  const std::size_t tokens = 100, cols = 48;
  const auto x = activations(tokens, cols, 20.0f, 1);
  activation_stats one(cols), many(cols);
  one.observe(x, tokens);
  for (std::size_t t0 = 0, b = 1; t0 < tokens; t0 += b, b = b % 7 + 1) {
    const std::size_t n = std::min(b, tokens - t0);
    many.observe(std::span<const float>(x).subspan(t0 * cols, n * cols), n);
  }
  EXPECT_EQ(many.tokens(), tokens);
  for (std::size_t c = 0; c < cols; ++c) {
    float amax = 0;
    double ss = 0;
    for (std::size_t t = 0; t < tokens; ++t) {
      amax = std::max(amax, std::fabs(x[t * cols + c]));
      ss += static_cast<double>(x[t * cols + c]) * x[t * cols + c];
    }
    EXPECT_EQ(one.absmax()[c], amax);
    EXPECT_EQ(many.absmax()[c], amax);
    EXPECT_NEAR(many.sum_squares()[c], ss, 1e-12 * ss);
    EXPECT_NEAR(one.importance()[c], ss / tokens, 1e-6 * ss / tokens);
  }
}

TEST(activation_stats, bad_batches_throw_and_record_nothing) {
  activation_stats s(4);
  std::vector<float> x(8, 1.0f);
  EXPECT_THROW(s.observe(x, 3), invalid_argument);
  x[5] = INFINITY;
  EXPECT_THROW(s.observe(x, 2), invalid_argument);
  EXPECT_EQ(s.tokens(), 0u);
  EXPECT_EQ(s.absmax()[0], 0.0f);
  EXPECT_THROW(s.importance(), invalid_argument);
  EXPECT_THROW(activation_stats(0), invalid_argument);
}

TEST(smoothing_factors, follow_the_formula_with_floors) {
  const std::size_t rows = 5, cols = 6;
  auto w = lowbit_test::gaussian(rows * cols, 2, 0.1f);
  for (std::size_t r = 0; r < rows; ++r) w[r * cols + 4] = 0.0f; // a dead weight column
  const std::vector<float> act = {3.0f, 0.5f, 40.0f, 0.0f, 2.0f, 1e-9f};
  for (float alpha : {0.0f, 0.5f, 0.85f, 1.0f}) {
    const auto s = smoothing_factors(act, w, rows, cols, alpha);
    for (std::size_t c = 0; c < cols; ++c) {
      double wmax = 0;
      for (std::size_t r = 0; r < rows; ++r) wmax = std::max(wmax, std::fabs(static_cast<double>(w[r * cols + c])));
      double want = std::pow(act[c], alpha) / std::pow(std::max(wmax, 1e-5), 1 - alpha);
      want = std::max(want, 1e-5);
      if (act[c] == 0.0f) want = 1.0; // never seen: no migration
      EXPECT_NEAR(s[c], want, 1e-6 * want) << "alpha " << alpha << " channel " << c;
    }
  }
}

TEST(smoothing, leaves_the_product_unchanged) {
  const std::size_t tokens = 32, rows = 40, cols = 128;
  const auto x = activations(tokens, cols, 30.0f, 3);
  const auto w = lowbit_test::gaussian(rows * cols, 4, 0.05f);
  activation_stats st(cols);
  st.observe(x, tokens);
  const auto s = smoothing_factors(st.absmax(), w, rows, cols, 0.5f);
  auto xs = x, ws = w;
  smooth_activations(xs, tokens, cols, s);
  fold_smoothing_into_weights(ws, rows, cols, s);
  const auto y = reference::linear(x, tokens, w, rows, cols), ys = reference::linear(xs, tokens, ws, rows, cols);
  double norm = 0;
  for (float v : y) norm = std::max(norm, std::fabs(static_cast<double>(v)));
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(ys[i], y[i], 1e-5 * norm) << i;
}

TEST(smoothing, lowers_w8a8_error_on_activations_with_outlier_channels) {
  const std::size_t tokens = 128, rows = 192, cols = 512;
  const auto x = activations(tokens, cols, 60.0f, 5);
  const auto w = lowbit_test::gaussian(rows * cols, 6, 0.02f);
  activation_stats st(cols);
  st.observe(x, tokens);
  const auto y = reference::linear(x, tokens, w, rows, cols);
  const double plain = lowbit_test::sse(y, w8a8_linear(x, tokens, w, rows, cols));
  const auto s = smoothing_factors(st.absmax(), w, rows, cols, 0.5f);
  auto xs = x, ws = w;
  smooth_activations(xs, tokens, cols, s);
  fold_smoothing_into_weights(ws, rows, cols, s);
  const double smoothed = lowbit_test::sse(y, w8a8_linear(xs, tokens, ws, rows, cols));
  const double signal = lowbit_test::sse(y, std::vector<float>(y.size(), 0.0f));
  std::printf("W8A8 output SQNR: no smoothing %.2f dB, SmoothQuant alpha 0.5 %.2f dB\n",
              10 * std::log10(signal / plain), 10 * std::log10(signal / smoothed));
  EXPECT_LT(smoothed, 0.25 * plain); // at least 6 dB better
}

TEST(smoothing, bad_input_throws) {
  std::vector<float> w(12, 1.0f), act(4, 1.0f), x(8, 1.0f);
  EXPECT_THROW(smoothing_factors(act, w, 3, 3), invalid_argument);
  EXPECT_THROW(smoothing_factors(act, w, 3, 4, 1.5f), invalid_argument);
  EXPECT_THROW(smoothing_factors(act, w, 3, 4, 0.5f, 0.0f), invalid_argument);
  act[1] = std::nanf("");
  EXPECT_THROW(smoothing_factors(act, w, 3, 4), invalid_argument);
  act[1] = 1.0f;
  w[2] = INFINITY;
  EXPECT_THROW(smoothing_factors(act, w, 3, 4), invalid_argument);
  EXPECT_THROW(fold_smoothing_into_weights(w, 3, 4, std::vector<float>(3, 1.0f)), invalid_argument);
  EXPECT_THROW(smooth_activations(x, 3, 4, act), invalid_argument);
  EXPECT_THROW(w8a8_linear(x, 2, w, 4, 4), invalid_argument);
}

} // namespace
