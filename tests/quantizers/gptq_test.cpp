// GPTQ: the Hessian accumulator against a double-precision sum, the lazy-batched algorithm
// against an independently written column-by-column GPTQ (explicit inverse, rank-1 updates of
// it, no lazy batching), its gain over RTN on layers with realistic input statistics, act-order
// bookkeeping, composition with rotation and smoothing, threads, and bad input.
#include "lowbit/quantizers/gptq.hpp"
#include "lowbit/quantizers/pipeline.hpp"
#include "lowbit/quantizers/rtn.hpp"

#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using namespace lowbit;

// A layer's calibration inputs, shaped like a transformer's: correlated channels (cols / 8
// latent factors mixed, plus 30 % independent noise), channel j scaled by s_j, log-uniform over
// 100x, and a few outlier channels 30x larger still; weights Gaussian.
struct layer {
  std::size_t tokens, rows, cols;
  std::vector<float> x, w;
  layer(std::size_t t, std::size_t r, std::size_t c, std::uint32_t seed = 1) : tokens(t), rows(r), cols(c) {
    const std::size_t k = std::max<std::size_t>(1, cols / 8);
    const auto z = lowbit_test::gaussian(tokens * k, seed + 3);
    const auto mix = lowbit_test::gaussian(k * cols, seed + 4, 1.0f / std::sqrt(static_cast<float>(k)));
    x = lowbit_test::gaussian(tokens * cols, seed, 0.3f);
    for (std::size_t i = 0; i < tokens; ++i)
      for (std::size_t f = 0; f < k; ++f)
        for (std::size_t j = 0; j < cols; ++j) x[i * cols + j] += z[i * k + f] * mix[f * cols + j];
    std::vector<float> s(cols);
    const auto u = lowbit_test::uniform(cols, seed + 1);
    for (std::size_t j = 0; j < cols; ++j) s[j] = std::pow(10.0f, u[j]); // 0.1 .. 10
    for (std::size_t j = 3; j < cols; j += 61) s[j] *= 30.0f;
    for (std::size_t i = 0; i < x.size(); ++i) x[i] *= s[i % cols];
    w = lowbit_test::gaussian(rows * cols, seed + 2, 0.05f);
  }
  hessian h() const {
    hessian hs(cols);
    hs.add(x, tokens);
    return hs;
  }
  // ||(W - Q) X^T||_F^2 in double, directly.
  double output_error(const std::vector<float>& q) const {
    double e = 0;
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t r = 0; r < rows; ++r) {
        double d = 0;
        for (std::size_t j = 0; j < cols; ++j)
          d += (static_cast<double>(w[r * cols + j]) - q[r * cols + j]) * x[t * cols + j];
        e += d * d;
      }
    return e;
  }
};

// ---- Hessian --------------------------------------------------------------------------------

Eigen::MatrixXd naive_xtx(const std::vector<float>& x, std::size_t tokens, std::size_t n) {
  Eigen::MatrixXd s = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n));
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        s(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) +=
            static_cast<double>(x[t * n + i]) * x[t * n + j];
  return s;
}

double rel_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) { return (a - b).norm() / b.norm(); }

TEST(gptq_hessian, batches_of_any_size_and_order_give_the_double_sum) {
  const layer l(2500, 1, 200); // 2500 tokens: more than two float chunks
  const Eigen::MatrixXd want = naive_xtx(l.x, l.tokens, l.cols);
  for (std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{300}, std::size_t{2500}}) {
    hessian h(l.cols);
    // Batches in reverse order.
    for (std::size_t end = l.tokens; end > 0;) {
      const std::size_t b = std::min(batch, end), start = end - b;
      h.add(std::span<const float>(l.x).subspan(start * l.cols, b * l.cols), b);
      end = start;
    }
    EXPECT_EQ(h.samples(), l.tokens);
    EXPECT_LT(rel_diff(h.sum(), want), 2e-6) << "batch " << batch;
    EXPECT_TRUE(h.sum().isApprox(h.sum().transpose(), 0.0));
    EXPECT_LT(rel_diff(h.matrix(), want * (2.0 / l.tokens)), 2e-6);
  }
}

TEST(gptq_hessian, smoothing_and_rotation_match_the_transformed_inputs) {
  const layer l(300, 1, 256);
  hessian h = l.h();
  std::vector<float> s(l.cols);
  for (std::size_t j = 0; j < l.cols; ++j) s[j] = 0.5f + static_cast<float>(j % 7);
  const hadamard_rotation q(l.cols, 5, 64);
  h.scale_channels(s);
  h.rotate(q);
  auto x = l.x;
  smooth_activations(x, l.tokens, l.cols, s);
  q.apply_rows(x, l.tokens);
  EXPECT_LT(rel_diff(h.sum(), naive_xtx(x, l.tokens, l.cols)), 1e-5);
}

TEST(gptq_hessian, rejects_bad_input) {
  hessian h(4);
  std::vector<float> x(8, 1.0f);
  EXPECT_THROW(h.add(x, 3), invalid_argument);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(h.add(x, 2), invalid_argument);
  EXPECT_EQ(h.samples(), 0u);
  EXPECT_THROW(h.matrix(), invalid_argument);
  EXPECT_THROW(hessian(0), invalid_argument);
  Eigen::MatrixXd m = Eigen::MatrixXd::Identity(3, 3);
  m(0, 1) = 0.5;
  EXPECT_THROW(hessian(m, 10), invalid_argument); // not symmetric
  m(1, 0) = 0.5;
  EXPECT_NO_THROW(hessian(m, 10));
  m(2, 2) = std::numeric_limits<double>::infinity();
  EXPECT_THROW(hessian(m, 10), invalid_argument);
  EXPECT_THROW(hessian(Eigen::MatrixXd::Zero(2, 3), 1), invalid_argument);
}

// ---- The independent reference --------------------------------------------------------------

// Column-by-column GPTQ in double: explicit inverse of the damped Hessian, its rank-1 update as
// each column is removed (Optimal Brain Surgeon), and each group's scale chosen from the current
// weights when it is reached (or from the initial weights for static groups / other units).
template <scheme S>
struct naive_result {
  std::vector<float> deq;   // original column order
  std::vector<double> loss; // per original column
};

template <scheme S, class Chooser>
naive_result<S> naive_gptq(const std::vector<float>& w_in, std::size_t rows, std::size_t cols, const hessian& hs,
                           const Chooser& chooser, const gptq_options& o) {
  using SF = typename S::scale_format;
  using P = block_params<SF>;
  Eigen::MatrixXd h = hs.sum() * (2.0 / static_cast<double>(hs.samples()));
  std::vector<double> w(w_in.begin(), w_in.end());
  for (std::size_t c = 0; c < cols; ++c)
    if (h(static_cast<Eigen::Index>(c), static_cast<Eigen::Index>(c)) == 0) {
      h(static_cast<Eigen::Index>(c), static_cast<Eigen::Index>(c)) = 1;
      for (std::size_t r = 0; r < rows; ++r) w[r * cols + c] = 0;
    }
  std::vector<float> w0f(w.begin(), w.end());
  const bool grouped = S::gran == granularity::group, dynamic = grouped && !o.static_groups;
  std::vector<P> fixed(S::scale_count(rows, cols));
  const float ts = detail::choose_all<S>(
      w0f, rows, cols, [&](std::size_t u, const P& p) { fixed[u] = p; }, chooser);

  std::vector<std::size_t> order(cols);
  std::iota(order.begin(), order.end(), 0);
  if (o.act_order)
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return h(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(a)) >
             h(static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(b));
    });
  Eigen::MatrixXd hd = h;
  double mean = 0;
  for (std::size_t c = 0; c < cols; ++c) mean += h(static_cast<Eigen::Index>(c), static_cast<Eigen::Index>(c));
  hd.diagonal().array() += o.percdamp * mean / static_cast<double>(cols);
  Eigen::MatrixXd hinv = hd.inverse();

  naive_result<S> out{std::vector<float>(rows * cols), std::vector<double>(cols, 0.0)};
  std::vector<P> dyn(rows);
  const std::size_t g = grouped ? S::block : 0;
  for (std::size_t k = 0; k < cols; ++k) {
    const std::size_t c = order[k];
    const auto ci = static_cast<Eigen::Index>(c);
    if (dynamic && k % g == 0)
      for (std::size_t r = 0; r < rows; ++r) {
        std::vector<float> unit;
        for (std::size_t kk = k; kk < std::min(cols, k + g); ++kk)
          unit.push_back(static_cast<float>(w[r * cols + order[kk]]));
        dyn[r] = chooser.template choose<S>(unit, std::span<const float>{}, ts);
      }
    const double d = hinv(ci, ci);
    for (std::size_t r = 0; r < rows; ++r) {
      const P& p = dynamic ? dyn[r] : fixed[S::scale_index(r, c, cols)];
      const float scale = static_cast<float>(SF::decode(p.scale_code)) * ts;
      const double wv = w[r * cols + c];
      const double q = S::decode(S::encode(static_cast<float>(wv), scale, p.zero_code), scale, p.zero_code);
      out.deq[r * cols + c] = static_cast<float>(q);
      out.loss[c] += (wv - q) * (wv - q) / d / 2;
      const double e = (wv - q) / d;
      for (std::size_t kk = k + 1; kk < cols; ++kk)
        w[r * cols + order[kk]] -= e * hinv(ci, static_cast<Eigen::Index>(order[kk]));
    }
    // Remove column c from the inverse (OBS): hinv -= hinv[:, c] hinv[c, :] / hinv[c, c].
    const Eigen::VectorXd col = hinv.col(ci);
    hinv -= col * col.transpose() / d;
  }
  return out;
}

template <scheme S>
std::string mismatch_report(const std::vector<float>& got, const std::vector<float>& want, std::size_t cols) {
  std::size_t bad = 0, first = want.size();
  for (std::size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i]) {
      ++bad;
      first = std::min(first, i);
    }
  if (!bad) return "";
  return std::to_string(bad) + " of " + std::to_string(want.size()) + " differ, first at (" +
         std::to_string(first / cols) + ", " + std::to_string(first % cols) + "): " + std::to_string(got[first]) +
         " vs " + std::to_string(want[first]);
}

template <scheme S, class Chooser = absmax_search>
void expect_equals_naive(const layer& l, gptq_options o, const Chooser& chooser = {}) {
  const hessian h = l.h();
  const auto got = detail::gptq_run<S, double>(l.w, l.rows, l.cols, h, chooser, o);
  const auto want = naive_gptq<S>(l.w, l.rows, l.cols, h, chooser, o);
  const std::string what = std::string(format_name<typename S::element>) + " block " + std::to_string(o.block) +
                           (o.act_order ? " act-order" : "") + (o.static_groups ? " static" : "");
  EXPECT_EQ(mismatch_report<S>(got.dequantize_original(), want.deq, l.cols), "") << what;
  for (std::size_t c = 0; c < l.cols; ++c)
    ASSERT_NEAR(got.column_loss[c], want.loss[c], 1e-9 * (1 + want.loss[c])) << what << " column " << c;
}

// ---- Equivalence ----------------------------------------------------------------------------

TEST(gptq, lazy_batches_equal_column_by_column_gptq) {
  const layer l(400, 24, 192, 3);
  for (std::size_t block : {std::size_t{1}, std::size_t{48}, std::size_t{128}})
    for (bool act : {false, true}) {
      const gptq_options o{.block = block, .act_order = act};
      expect_equals_naive<int_sym<4, 32>>(l, o); // groups inside a lazy block
      expect_equals_naive<int_sym<4, 64, fp16>>(l, o);
      expect_equals_naive<int_asym<3, 64, fp32_scale>>(l, o); // zero points
      expect_equals_naive<nvfp4>(l, o);                       // tensor scale, UE4M3 scales
      expect_equals_naive<mxfp4>(l, o);
      expect_equals_naive<nf4_scheme<64>>(l, o);
      expect_equals_naive<ternary_scheme<granularity::group, 64>>(l, o);
      expect_equals_naive<int_sym<3, 128, fp32_scale, granularity::row>>(l, o);
      expect_equals_naive<block_scheme<int4_sym, fp32_scale, granularity::tensor, 0, absmax_scale<>>>(l, o);
      expect_equals_naive<int_sym<4, 96, fp32_scale>>(l, o); // a group that is not a power of two
    }
}

TEST(gptq, static_groups_and_mse_grid_equal_the_reference_procedure) {
  const layer l(400, 16, 256, 4);
  for (bool act : {false, true}) {
    expect_equals_naive<int_sym<4, 64>>(l, {.act_order = act, .static_groups = true});
    expect_equals_naive<int_asym<4, 32, fp32_scale>>(l, {.act_order = act}, gptq_reference_grid);
    expect_equals_naive<mxfp4>(l, {.act_order = act}, mse_search{});
  }
}

TEST(gptq, float_result_agrees_with_the_double_reference_up_to_near_ties) {
  const layer l(600, 64, 256, 5);
  const hessian h = l.h();
  const auto got = gptq_absmax{}.quantize<int4_group<64>>(l.w, l.rows, l.cols, h);
  const auto want = naive_gptq<int4_group<64>>(l.w, l.rows, l.cols, h, absmax_search{}, {});
  // Float arithmetic flips a rounding only where the double value is within float noise of a
  // decision boundary; after a flip a row legitimately diverges. Most rows stay identical.
  const auto d = got.dequantize_original();
  std::size_t same_rows = 0;
  for (std::size_t r = 0; r < l.rows; ++r)
    same_rows += std::equal(d.begin() + static_cast<std::ptrdiff_t>(r * l.cols),
                            d.begin() + static_cast<std::ptrdiff_t>((r + 1) * l.cols),
                            want.deq.begin() + static_cast<std::ptrdiff_t>(r * l.cols));
  EXPECT_GE(same_rows, l.rows * 3 / 4) << same_rows << " of " << l.rows;
  const double want_loss = std::accumulate(want.loss.begin(), want.loss.end(), 0.0);
  EXPECT_NEAR(got.loss, want_loss, 0.01 * want_loss);
}

// ---- Quality --------------------------------------------------------------------------------

// Prints RTN, GPTQ and GPTQ with act-order; asserts GPTQ < plain_margin * RTN (where given)
// and GPTQ with act-order < act_margin * RTN.
template <scheme S>
void expect_beats_rtn(const layer& l, const hessian& h, double plain_margin, double act_margin) {
  const auto g = gptq_absmax{}.quantize<S>(l.w, l.rows, l.cols, h);
  gptq_absmax act;
  act.options.act_order = true;
  const auto ga = act.quantize<S>(l.w, l.rows, l.cols, h);
  const double eg = l.output_error(g.dequantize_original()), ea = l.output_error(ga.dequantize_original());
  const double er = l.output_error(dequantize(quantize<S>(l.w, l.rows, l.cols)));
  const auto name = std::string(format_name<typename S::element>) + " block " + std::to_string(S::block);
  std::printf("%-20s output error: rtn %.4g, gptq %.4g (%.2fx less), gptq act-order %.4g (%.2fx less)\n", name.c_str(),
              er, eg, er / eg, ea, er / ea);
  if (plain_margin > 0) {
    EXPECT_LT(eg, plain_margin * er) << name;
  }
  EXPECT_LT(ea, act_margin * er) << name;
  // The Hessian form reproduces the direct error.
  EXPECT_NEAR(g.output_error, eg, 1e-3 * eg) << name;
  EXPECT_NEAR(ga.output_error, ea, 1e-3 * ea) << name;
}

TEST(gptq, beats_rtn_on_layers_with_realistic_input_statistics) {
  const layer l(1024, 64, 512, 6);
  const hessian h = l.h();
  // Without act-order the outlier channels come late and little is left to absorb their error
  // at 3 and 2 bits; act-order is what makes GPTQ work there, as in the paper.
  expect_beats_rtn<int_sym<4, 128>>(l, h, 0.6, 0.3);
  expect_beats_rtn<int_sym<3, 128>>(l, h, 0.0, 0.3);
  expect_beats_rtn<int_sym<2, 128>>(l, h, 0.0, 0.3);
  expect_beats_rtn<int_asym<4, 128>>(l, h, 0.6, 0.3);
  expect_beats_rtn<nvfp4>(l, h, 0.6, 0.3);
  expect_beats_rtn<mxfp4>(l, h, 0.6, 0.3);
  expect_beats_rtn<nf4_scheme<64>>(l, h, 0.6, 0.3);
}

// ---- Composition ----------------------------------------------------------------------------

TEST(gptq, composes_after_smoothquant_and_hadamard_in_a_pipeline) {
  const layer l(512, 48, 256, 10);
  activation_stats stats(l.cols);
  stats.observe(l.x, l.tokens);
  const hessian h = l.h();
  using S = int_sym<3, 64>;
  gptq_absmax last;
  last.options.act_order = true;
  const pipeline p{smooth_quant{.alpha = 0.5f}, hadamard{.seed = 3}, last};
  EXPECT_EQ(p.name(), "smoothquant + hadamard + gptq/absmax");
  const auto layer_q = p.quantize<S>(l.w, l.rows, l.cols, &stats, h);
  ASSERT_EQ(layer_q.input.steps().size(), 3u); // smooth, rotate, gather

  // By hand: the same transforms of W and H, then GPTQ.
  const auto s = smoothing_factors(stats.absmax(), l.w, l.rows, l.cols, 0.5f);
  auto w = l.w;
  fold_smoothing_into_weights(w, l.rows, l.cols, s);
  const hadamard_rotation rot(l.cols, 3);
  rot.apply_rows(w, l.rows);
  hessian ht = h;
  ht.scale_channels(s);
  ht.rotate(rot);
  const auto want = last.quantize<S>(w, l.rows, l.cols, ht);
  EXPECT_TRUE(std::equal(want.weight.codes().begin(), want.weight.codes().end(), layer_q.weight.codes().begin()));

  // The layer computes X W^T up to the quantization error, better than RTN through the same
  // transforms.
  const auto y = reference::linear(l.x, l.tokens, l.w, l.rows, l.cols);
  const auto yq = layer_q.forward_reference(l.x, l.tokens);
  const pipeline pr{smooth_quant{.alpha = 0.5f}, hadamard{.seed = 3}, rtn_absmax{}};
  const auto yr = pr.quantize<S>(l.w, l.rows, l.cols, &stats).forward_reference(l.x, l.tokens);
  const double eg = lowbit_test::sse(y, yq), er = lowbit_test::sse(y, yr);
  std::printf("INT3 g64 smoothquant + hadamard: rtn %.4g, gptq (act-order) %.4g\n", er, eg);
  EXPECT_LT(eg, 0.7 * er);
  EXPECT_NEAR(eg, want.output_error, 2e-3 * eg);
}

// ---- Threads --------------------------------------------------------------------------------

#if defined(_OPENMP)
TEST(gptq, results_are_identical_for_any_thread_count) {
  const layer l(1500, 300, 256, 11); // 3 row tasks; 2 token chunks
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> runs;
  std::vector<Eigen::MatrixXd> sums;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    const hessian h = l.h();
    sums.push_back(h.sum());
    gptq_mse g;
    g.options.act_order = true;
    auto r = g.quantize<nvfp4>(l.w, l.rows, l.cols, h).dequantize_original();
    const auto r2 = gptq_absmax{}.quantize<int4_group<32>>(l.w, l.rows, l.cols, h).dequantize_original();
    r.insert(r.end(), r2.begin(), r2.end());
    runs.push_back(std::move(r));
  }
  omp_set_num_threads(saved);
  EXPECT_TRUE(runs[0] == runs[1] && runs[1] == runs[2]);
  EXPECT_TRUE(sums[0] == sums[1] && sums[1] == sums[2]);
}
#endif

} // namespace
