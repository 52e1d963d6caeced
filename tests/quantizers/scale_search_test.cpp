// RTN scale searches: never worse than absmax on any unit, Max's (1960) optimal uniform
// quantizers reached on N(0,1), percentile clipping, importance weighting, stochastic rounding,
// the element-format search, and bad input.
#include "lowbit/quantizers/rtn.hpp"

#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace lowbit;
using lowbit_test::gaussian;

// Per-scale-unit squared error of out against x, weighted by per-column w (or 1).
template <scheme S>
std::vector<double> unit_errors(const std::vector<float>& x, const std::vector<float>& out, std::size_t rows,
                                std::size_t cols, const std::vector<float>& w = {}) {
  std::vector<double> e(S::scale_count(rows, cols), 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const double d = static_cast<double>(x[r * cols + c]) - out[r * cols + c];
      e[S::scale_index(r, c, cols)] += (w.empty() ? 1.0 : w[c]) * d * d;
    }
  return e;
}

// Gaussian rows with a few large outliers and rows of different scales.
std::vector<float> weight_like(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  auto x = gaussian(rows * cols, seed);
  const auto t = lowbit_test::student_t3(rows * cols, seed + 1);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = x[i] * (1.0f + static_cast<float>(i / cols % 7)) * 0.01f;
    if (i % 3 == 0) x[i] += 0.01f * t[i];
    if (i % 997 == 0) x[i] *= 40.0f;
  }
  return x;
}

template <class S>
class search_never_worse : public ::testing::Test {};
using searched_schemes =
    ::testing::Types<int4_group<128>, int_sym<3, 64>, int_sym<2, 32>, int_asym<4, 128>,
                     int_sym<8, 0, fp32_scale, granularity::row>, int_sym<4, 0, bf16, granularity::column>,
                     int_sym<4, 0, fp32_scale, granularity::tensor>, nvfp4, mxfp4, mxfp6_e2m3, mxfp8_e4m3, mxint8,
                     nf4_scheme<64>, ternary_scheme<granularity::group, 64>, mx_scheme<fp4_e2m1, scale_rounding::ceil>>;
TYPED_TEST_SUITE(search_never_worse, searched_schemes);

TYPED_TEST(search_never_worse, than_absmax_on_any_unit) {
  using S = TypeParam;
  const std::size_t rows = 24, cols = 320; // 320: a partial last group for G = 128
  const auto x = weight_like(rows, cols, 11);
  std::vector<float> a(x.size()), m(x.size());
  rtn_absmax{}.fake_quant<S>(x, rows, cols, a);
  rtn_mse{}.fake_quant<S>(x, rows, cols, m);
  const auto ea = unit_errors<S>(x, a, rows, cols), em = unit_errors<S>(x, m, rows, cols);
  double ta = 0, tm = 0;
  for (std::size_t u = 0; u < ea.size(); ++u) {
    ASSERT_LE(em[u], ea[u] * (1 + 1e-12)) << "unit " << u;
    ta += ea[u];
    tm += em[u];
  }
  std::printf("%-24s absmax SSE %.4e  mse-search SSE %.4e  (%+.1f%%)\n",
              ::testing::UnitTest::GetInstance()->current_test_suite()->name(), ta, tm, 100.0 * (tm - ta) / ta);
  EXPECT_LE(tm, ta);
}

TEST(search_never_worse, double_quantized_nf4_in_total) {
  // The search picks the first-level absmax; double quantization then perturbs every scale,
  // so the per-block guarantee holds for nf4_scheme (above), and in total here.
  const std::size_t rows = 32, cols = 512;
  const auto x = weight_like(rows, cols, 3);
  std::vector<float> a(x.size()), m(x.size());
  rtn_absmax{}.fake_quant<nf4_dq>(x, rows, cols, a);
  rtn_mse{}.fake_quant<nf4_dq>(x, rows, cols, m);
  EXPECT_LT(lowbit_test::sse(x, m), lowbit_test::sse(x, a));
}

TEST(rtn, absmax_search_is_the_schemes_own_quantize) {
  const std::size_t rows = 8, cols = 256;
  const auto x = gaussian(rows * cols, 5);
  const auto a = rtn_absmax{}.quantize<nvfp4>(x, rows, cols), b = quantize<nvfp4>(x, rows, cols);
  EXPECT_TRUE(std::equal(a.codes().begin(), a.codes().end(), b.codes().begin()));
  EXPECT_TRUE(std::equal(a.scales().begin(), a.scales().end(), b.scales().begin()));
  EXPECT_EQ(a.tensor_scale(), b.tensor_scale());
}

TEST(rtn, quantize_and_fake_quant_agree) {
  const std::size_t rows = 8, cols = 384;
  const auto x = weight_like(rows, cols, 9);
  const rtn<mse_search> p{{.grid = 50, .max_shrink = 0.5, .norm = 2.4}};
  const auto q = p.quantize<int4_group<128>>(x, rows, cols);
  std::vector<float> f(x.size());
  p.fake_quant<int4_group<128>>(x, rows, cols, f);
  EXPECT_EQ(dequantize(q), f);
}

// Max (1960), Table of optimum uniform quantizers for the unit normal: mean squared error for
// 4, 8 and 16 levels (step 0.9957, 0.5860, 0.3352).
template <int Bits>
using midrise_tensor = block_scheme<midrise<Bits>, fp32_scale, granularity::tensor, 0, absmax_scale<>>;
template <class F>
using int_tensor = block_scheme<F, fp32_scale, granularity::tensor, 0, absmax_scale<>>;

template <class S>
double searched_mse(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  rtn<mse_search>{{.grid = 200, .max_shrink = 0.8, .norm = 2.0}}.fake_quant<S>(x, 256, x.size() / 256, out);
  return lowbit_test::sse(x, out) / static_cast<double>(x.size());
}

// The optimum over the step of the Simpson-integrated MSE of a grid: independent of the library.
template <class F>
double optimal_uniform_mse() {
  const auto lv = lowbit_test::reachable_levels<F>();
  return lowbit_test::minimize([&](double step) { return lowbit_test::gaussian_mse_simpson(lv, step, 20000); }, 0.02,
                               2.0, 40);
}

TEST(mse_search, reaches_max_1960_optimal_uniform_quantizers_on_unit_gaussian) {
  const auto x = gaussian(std::size_t{1} << 17, 2024);
  const double published[3] = {0.1188, 0.03744, 0.01154};
  const double searched[3] = {searched_mse<midrise_tensor<2>>(x), searched_mse<midrise_tensor<3>>(x),
                              searched_mse<midrise_tensor<4>>(x)};
  const double integrated[3] = {optimal_uniform_mse<midrise<2>>(), optimal_uniform_mse<midrise<3>>(),
                                optimal_uniform_mse<midrise<4>>()};
  for (int i = 0; i < 3; ++i) {
    std::printf("mid-rise %2d levels: Max 1960 %.5f  integrated optimum %.5f  search on 2^17 samples %.5f\n", 4 << i,
                published[i], integrated[i], searched[i]);
    EXPECT_NEAR(integrated[i], published[i], 0.003 * published[i]) << "the independent integration is off";
    EXPECT_NEAR(searched[i], published[i], 0.02 * published[i]);
  }
  // The library's own mid-tread integer grids, run the same way, beside the optimum for their grid.
  const auto one = [&]<class F>(const char* name) {
    const double s = searched_mse<int_tensor<F>>(x), o = optimal_uniform_mse<F>();
    std::printf("%-8s (%3zu levels, mid-tread): optimum %.5f  search %.5f\n", name,
                lowbit_test::reachable_levels<F>().size(), o, s);
    EXPECT_NEAR(s, o, 0.02 * o) << name;
  };
  one.template operator()<int2_sym>("int2_sym");
  one.template operator()<int3_sym>("int3_sym");
  one.template operator()<int4_sym>("int4_sym");
  one.template operator()<int2>("int2");
  one.template operator()<int3>("int3");
  one.template operator()<int4>("int4");
}

TEST(percentile_search, clips_at_the_nearest_rank_percentile) {
  using S = int_sym<8, 0, fp32_scale, granularity::row>;
  const std::size_t rows = 4, cols = 1000;
  auto x = weight_like(rows, cols, 17);
  const auto p = rtn<percentile_search>{{.percentile = 99.0}}.quantize<S>(x, rows, cols);
  const auto a = rtn<percentile_search>{{.percentile = 100.0}}.quantize<S>(x, rows, cols);
  const auto b = quantize<S>(x, rows, cols);
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<float> mag(x.begin() + static_cast<std::ptrdiff_t>(r * cols),
                           x.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols));
    for (float& v : mag) v = std::fabs(v);
    std::sort(mag.begin(), mag.end());
    const float clip = mag[989]; // rank ceil(0.99 * 1000) = 990
    EXPECT_NEAR(p.unit_scale(r), clip / 127.0f, 1e-6f * clip) << r;
    EXPECT_EQ(a.unit_scale(r), b.unit_scale(r)); // percentile 100 is absmax
  }
}

TEST(mse_search, importance_weights_lower_the_weighted_error_on_every_unit) {
  using S = int_sym<3, 32>;
  const std::size_t rows = 16, cols = 256;
  const auto x = weight_like(rows, cols, 23);
  std::vector<float> w(cols);
  for (std::size_t c = 0; c < cols; ++c) w[c] = c % 16 == 0 ? 100.0f : 0.1f + static_cast<float>(c % 5);
  std::vector<float> plain(x.size()), weighted(x.size());
  rtn_mse{}.fake_quant<S>(x, rows, cols, plain);
  rtn_mse{}.fake_quant<S>(x, rows, cols, weighted, w);
  const auto ep = unit_errors<S>(x, plain, rows, cols, w), ew = unit_errors<S>(x, weighted, rows, cols, w);
  double tp = 0, tw = 0;
  for (std::size_t u = 0; u < ep.size(); ++u) {
    ASSERT_LE(ew[u], ep[u] * (1 + 1e-12)) << u;
    tp += ep[u];
    tw += ew[u];
  }
  std::printf("weighted error: plain search %.4e, importance-weighted search %.4e\n", tp, tw);
  EXPECT_LT(tw, tp * 0.99);
}

TEST(rtn, stochastic_rounding_is_unbiased_and_deterministic_per_seed) {
  using S = int4_group<64>;
  const std::size_t rows = 4, cols = 128;
  const auto x = gaussian(rows * cols, 31);
  std::vector<double> mean(x.size(), 0.0);
  std::vector<float> out(x.size()), again(x.size()), other(x.size());
  const int draws = 2000;
  for (int s = 1; s <= draws; ++s) {
    rtn<absmax_search, rounding::stochastic>{{}, static_cast<std::uint64_t>(s)}.fake_quant<S>(x, rows, cols, out);
    for (std::size_t i = 0; i < x.size(); ++i) mean[i] += out[i] / static_cast<double>(draws);
  }
  const auto q = quantize<S>(x, rows, cols);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double step = q.scale_at(i / cols, i % cols); // one integer step
    // Bernoulli between two neighbours: std of the mean <= step / (2 sqrt(draws)); 5 sigma
    EXPECT_NEAR(mean[i], x[i], 5 * step / (2 * std::sqrt(static_cast<double>(draws)))) << i;
  }
  rtn<absmax_search, rounding::stochastic>{{}, 7}.fake_quant<S>(x, rows, cols, out);
  rtn<absmax_search, rounding::stochastic>{{}, 7}.fake_quant<S>(x, rows, cols, again);
  rtn<absmax_search, rounding::stochastic>{{}, 8}.fake_quant<S>(x, rows, cols, other);
  EXPECT_EQ(out, again);
  EXPECT_NE(out, other);
  const auto packed = rtn<absmax_search, rounding::stochastic>{{}, 7}.quantize<S>(x, rows, cols);
  EXPECT_EQ(dequantize(packed), out);
}

} // namespace

namespace {

using namespace lowbit;

template <class E>
using fp4_g32 = block_scheme<E, fp32_scale, granularity::group, 32, absmax_scale<>>;

TEST(choose_format, keeps_the_split_of_least_error_and_reports_every_candidate) {
  const std::size_t rows = 16, cols = 256;
  for (int dist = 0; dist < 3; ++dist) {
    const auto x = dist == 0   ? lowbit_test::uniform(rows * cols, 1)
                   : dist == 1 ? gaussian(rows * cols, 2)
                               : lowbit_test::student_t3(rows * cols, 3);
    const auto c = choose_format<fp4_g32<fp4_e1m2>, fp4_g32<fp4_e2m1>, fp4_g32<fp4_e3m0>>(rtn_mse{}, x, rows, cols);
    const auto independent = [&]<class S>() {
      const auto back = dequantize(rtn_mse{}.quantize<S>(x, rows, cols));
      return lowbit_test::sse(x, back) / static_cast<double>(x.size());
    };
    const double e[3] = {independent.template operator()<fp4_g32<fp4_e1m2>>(),
                         independent.template operator()<fp4_g32<fp4_e2m1>>(),
                         independent.template operator()<fp4_g32<fp4_e3m0>>()};
    std::size_t best = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_NEAR(c.error[i], e[i], 1e-9 * e[i]);
      if (e[i] < e[best]) best = i;
    }
    EXPECT_EQ(c.best, best);
    EXPECT_EQ(c.matrix.index(), best);
    std::printf("%-9s E1M2 %.3e  E2M1 %.3e  E3M0 %.3e  -> %s\n",
                dist == 0   ? "uniform"
                : dist == 1 ? "gaussian"
                            : "student-t",
                e[0], e[1], e[2], std::string(c.best_element()).c_str());
    if (dist == 0) {
      EXPECT_EQ(c.best_element(), "fp4_e1m2"); // a uniform grid for uniform data
    }
  }
}

TEST(rtn_bad_input, parameters_importance_and_data_are_checked) {
  const std::size_t rows = 2, cols = 64;
  auto x = gaussian(rows * cols, 1);
  std::vector<float> out(x.size());
  EXPECT_THROW((rtn<mse_search>{{.grid = 0}}.quantize<int4_group<32>>(x, rows, cols)), invalid_argument);
  EXPECT_THROW((rtn<mse_search>{{.max_shrink = 1.0}}.quantize<int4_group<32>>(x, rows, cols)), invalid_argument);
  EXPECT_THROW((rtn<mse_search>{{.norm = -1.0}}.quantize<int4_group<32>>(x, rows, cols)), invalid_argument);
  EXPECT_THROW((rtn<percentile_search>{{.percentile = 0.0}}.quantize<int4_group<32>>(x, rows, cols)), invalid_argument);
  EXPECT_THROW((rtn<percentile_search>{{.percentile = 101.0}}.quantize<int4_group<32>>(x, rows, cols)),
               invalid_argument);
  std::vector<float> w(cols - 1, 1.0f);
  EXPECT_THROW(rtn_mse{}.quantize<int4_group<32>>(x, rows, cols, w), invalid_argument);
  w.assign(cols, 1.0f);
  w[3] = std::nanf("");
  EXPECT_THROW(rtn_mse{}.quantize<int4_group<32>>(x, rows, cols, w), invalid_argument);
  w[3] = -1.0f;
  EXPECT_THROW(rtn_mse{}.fake_quant<int4_group<32>>(x, rows, cols, out, w), invalid_argument);
  EXPECT_THROW(rtn_mse{}.quantize<int4_group<32>>(x, rows, cols + 1), invalid_argument);
  x[5] = INFINITY;
  EXPECT_THROW(rtn_mse{}.quantize<int4_group<32>>(x, rows, cols), invalid_argument);
}

TEST(rtn_bad_input, mx_blocks_with_nan_stay_nan_and_the_others_are_searched) {
  const std::size_t rows = 2, cols = 64;
  auto x = gaussian(rows * cols, 4);
  x[3] = std::nanf("");
  x[70] = -INFINITY;
  std::vector<float> m(x.size()), a(x.size());
  rtn_mse{}.fake_quant<mxfp4>(x, rows, cols, m);
  rtn_absmax{}.fake_quant<mxfp4>(x, rows, cols, a);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const bool bad_block = i / 32 == 0 || i / 32 == 2;
    EXPECT_EQ(std::isnan(m[i]), bad_block) << i;
  }
  double em = 0, ea = 0;
  for (std::size_t i = 32; i < 64; ++i) em += (x[i] - m[i]) * (x[i] - m[i]), ea += (x[i] - a[i]) * (x[i] - a[i]);
  EXPECT_LE(em, ea);
}

TEST(rtn, all_zero_units_stay_exactly_zero) {
  const std::size_t rows = 3, cols = 128;
  std::vector<float> x(rows * cols, 0.0f), out(x.size(), 1.0f);
  rtn_mse{}.fake_quant<int4_group<32>>(x, rows, cols, out);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  rtn<percentile_search>{}.fake_quant<nvfp4>(x, rows, cols, out);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

} // namespace
