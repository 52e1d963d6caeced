// QuEST: the Gaussian-optimal clipping alpha against independent numerical integration and Max
// (1960), and the fake-quantized output and trust mask against a direct scalar computation.
#include "lowbit/quantizers/quest.hpp"

#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/integer.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace {

using namespace lowbit;

template <class F>
void check_alpha(const char* name) {
  const auto lv = lowbit_test::reachable_levels<F>();
  const auto mse_at = [&](double alpha) { return lowbit_test::gaussian_mse_simpson(lv, alpha / F::max_finite, 40000); };
  double at = 0;
  const double best = lowbit_test::minimize(mse_at, 0.05, 8.0, 160, &at);
  const double alpha = gaussian_optimal_alpha<F>();
  std::printf("%-10s alpha %.5f (Simpson + scan: %.5f)  MSE %.6f (Simpson %.6f)\n", name, alpha, at,
              gaussian_mse<F>(alpha), best);
  EXPECT_NEAR(gaussian_mse<F>(alpha), best, 1e-4 * best) << name;
  EXPECT_NEAR(alpha, at, 2e-3 * at) << name;
  // the closed form and the integration agree at other alphas too
  for (double a : {0.5, 1.0, 2.0, 3.5})
    EXPECT_NEAR(gaussian_mse<F>(a), mse_at(a), 1e-6 + 1e-5 * mse_at(a)) << name << " alpha " << a;
}

TEST(quest_alpha, matches_numerical_integration_for_int_fp_and_one_bit_grids) {
  check_alpha<midrise<1>>("midrise1");
  check_alpha<midrise<2>>("midrise2");
  check_alpha<midrise<3>>("midrise3");
  check_alpha<midrise<4>>("midrise4");
  check_alpha<int2_sym>("int2_sym");
  check_alpha<int4_sym>("int4_sym");
  check_alpha<int4>("int4");
  check_alpha<fp4_e2m1>("fp4_e2m1");
  check_alpha<nf4>("nf4");
}

TEST(quest_alpha, mid_rise_grids_reproduce_max_1960) {
  // Max's optimum steps for 2, 4, 8, 16 levels; the clip is the outermost level, (L-1)/2 steps.
  const double step[4] = {1.596, 0.9957, 0.5860, 0.3352};
  const double alpha[4] = {gaussian_optimal_alpha<midrise<1>>(), gaussian_optimal_alpha<midrise<2>>(),
                           gaussian_optimal_alpha<midrise<3>>(), gaussian_optimal_alpha<midrise<4>>()};
  for (int b = 0; b < 4; ++b) {
    const double levels = 2 << b;
    EXPECT_NEAR(alpha[b], step[b] * (levels - 1) / 2, 2e-3 * alpha[b]) << "bits " << b + 1;
  }
  EXPECT_NEAR(alpha[0], std::sqrt(2 / 3.14159265358979), 1e-6); // 1 bit: +-E|X|
}

// Direct per-element computation: rotate, RMS, brute-force nearest level, the trust rule.
template <class F>
void check_quest(std::size_t rows, std::size_t cols, const std::vector<float>& x, const quest_options& opt) {
  const auto got = quest_quantize<F>(x, rows, cols, opt);
  const auto lv = lowbit_test::reachable_levels<F>();
  std::vector<float> xr = x;
  if (opt.rotate) hadamard_rotation(cols, opt.seed).apply_rows(xr, rows);
  ASSERT_EQ(got.values.size(), x.size());
  std::size_t untrusted = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (std::size_t c = 0; c < cols; ++c) ss += static_cast<double>(xr[r * cols + c]) * xr[r * cols + c];
    const auto s =
        static_cast<float>(gaussian_optimal_alpha<F>() * std::sqrt(ss / static_cast<double>(cols)) / F::max_finite);
    ASSERT_EQ(got.scales[r], s) << r;
    for (std::size_t c = 0; c < cols; ++c) {
      const std::size_t i = r * cols + c;
      if (s == 0.0f) {
        EXPECT_EQ(got.values[i], 0.0f);
        EXPECT_EQ(got.trusted[i], 1);
        continue;
      }
      const double v = static_cast<float>(xr[i] / s); // as the library divides, in float
      std::size_t k = 0;                              // the nearest level
      for (std::size_t j = 1; j < lv.size(); ++j)
        if (std::fabs(v - lv[j]) < std::fabs(v - lv[k])) k = j;
      bool tie = false;
      for (std::size_t j = 0; j < lv.size(); ++j) tie |= j != k && std::fabs(v - lv[j]) == std::fabs(v - lv[k]);
      if (tie) continue; // both neighbours are nearest; the encoders' tie rules are tested elsewhere
      ASSERT_EQ(got.values[i], static_cast<float>(s * static_cast<float>(lv[k]))) << r << "," << c;
      double cell; // the side of the level where v lies; outermost cells mirror the inner one
      if (v > lv[k])
        cell = k + 1 < lv.size() ? lv[k + 1] - lv[k] : lv[k] - lv[k - 1];
      else
        cell = k > 0 ? lv[k] - lv[k - 1] : lv[k + 1] - lv[k];
      const bool trusted = std::fabs(v - lv[k]) <= opt.trust_factor * cell / 2;
      ASSERT_EQ(got.trusted[i], trusted ? 1 : 0) << r << "," << c << " v=" << v;
      untrusted += !trusted;
    }
  }
  if (opt.trust_factor >= 1.0) {
    // with the default bound only clipped elements are untrusted: |v| beyond the grid
    std::size_t clipped = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (got.scales[i / cols] > 0 &&
          std::fabs(xr[i] / got.scales[i / cols]) > lv.back() + opt.trust_factor * (lv.back() - lv[lv.size() - 2]) / 2)
        ++clipped;
    EXPECT_EQ(untrusted, clipped);
  }
}

TEST(quest, output_and_trust_mask_match_a_direct_computation) {
  const std::size_t rows = 6, cols = 256;
  auto x = lowbit_test::student_t3(rows * cols, 8);
  for (std::size_t c = 0; c < cols; ++c) x[3 * cols + c] = 0.0f; // an all-zero row
  check_quest<midrise<1>>(rows, cols, x, {});
  check_quest<midrise<2>>(rows, cols, x, {.rotate = true, .seed = 5});
  check_quest<midrise<4>>(rows, cols, x, {.rotate = true, .seed = 0, .trust_factor = 0.5});
  check_quest<int4_sym>(rows, cols, x, {});
  check_quest<fp4_e2m1>(rows, cols, x, {.rotate = false});
  check_quest<fp8_e4m3>(rows, 96, std::vector<float>(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(rows * 96)),
                        {});
}

TEST(quest, rotation_normalizes_so_few_elements_are_clipped) {
  const std::size_t rows = 16, cols = 1024;
  auto x = lowbit_test::student_t3(rows * cols, 12);
  for (std::size_t i = 0; i < x.size(); i += 101) x[i] *= 50.0f;
  const auto plain = quest_quantize<midrise<4>>(x, rows, cols, {.rotate = false});
  const auto rotated = quest_quantize<midrise<4>>(x, rows, cols, {.rotate = true, .seed = 3});
  const auto frac = [](const quest_result& q) {
    return 1.0 - static_cast<double>(std::count(q.trusted.begin(), q.trusted.end(), 1)) / q.trusted.size();
  };
  // For a Gaussian, P(|X| > alpha + step/2) at 4 bits is ~0.5%; heavy tails clip far more.
  std::printf("untrusted fraction: plain %.4f, Hadamard-normalized %.4f\n", frac(plain), frac(rotated));
  EXPECT_LT(frac(rotated), 0.012);
  EXPECT_GT(frac(plain), frac(rotated));
  // values live in the rotated domain; rotating back approximates x
  std::vector<float> back = rotated.values;
  rotated.rotation->apply_inverse_rows(back, rows);
  const double rel = lowbit_test::sse(x, back) / lowbit_test::sse(x, std::vector<float>(x.size(), 0.0f));
  EXPECT_LT(rel, 0.02);
}

TEST(quest, bad_input_throws) {
  std::vector<float> x(64, 1.0f);
  EXPECT_THROW(quest_quantize<midrise<2>>(x, 2, 33), invalid_argument);
  EXPECT_THROW(quest_quantize<midrise<2>>(x, 0, 64), invalid_argument);
  EXPECT_THROW(quest_quantize<midrise<2>>(x, 1, 64, {.trust_factor = -1}), invalid_argument);
  EXPECT_NO_THROW(quest_quantize<midrise<2>>(x, 2, 32));
  x[7] = std::nanf("");
  EXPECT_THROW(quest_quantize<midrise<2>>(x, 2, 32), invalid_argument);
  EXPECT_THROW(gaussian_mse<int4>(0.0), invalid_argument);
}

} // namespace
