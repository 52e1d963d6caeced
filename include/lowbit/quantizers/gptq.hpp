// GPTQ (Frantar et al., 2022) for every scheme: a layer's weight W (rows = output channels x
// cols = input channels) is quantized one input column at a time, and each column's rounding
// error is spread over the columns not yet quantized through the upper Cholesky factor U of
// the inverse Hessian of the layer's reconstruction loss, H = 2/n sum X^T X.
//
// As the reference (IST-DASLab/gptq): dead inputs (zero diagonal) get H_cc = 1 and a zero weight
// column; damping lambda = percdamp * mean(diag H); lazy batch updates over blocks of 128
// columns; act-order (decreasing diag H, ties by index); group scales chosen when a group is
// reached (or all up front with static_groups); any scale search (absmax, or mse_search with
// GPTQ's grid: 100 steps, shrink to 0.8, norm 2.4). Beyond it:
// - the rounding target is any scheme of the library, through the scheme's own rule or a search,
//   so block scales are chosen exactly as that scheme does (MX floor exponents, NVFP4's UE4M3
//   scales under the tensor scale, NF4's absmax, ternary absmean);
// - when a group starts inside a lazy block, its scale is chosen from the weights updated by
//   every column before it (the reference reads the block's not yet updated copy); the lazy
//   block is aligned to the groups so that this costs nothing. The result equals column-by-column
//   GPTQ without lazy batching up to floating-point rounding;
// - U comes from one Cholesky factorization of the reversed H and one triangular inverse
//   (H = V V^T with V upper, U = V^-1), a third of the reference's three factorizations;
// - if H + lambda I is not positive definite, lambda is multiplied by 10 and the factorization
//   retried (at most `damping_retries` times, then lowbit::invalid_argument); the result reports
//   the lambda used and the retries;
// - the output error ||W X^T - Q X^T||_F^2 is exact from the Hessian form at O(rows * cols):
//   with err_c = (w_c - q_c) / U_cc, (W - Q) H_d (W - Q)^T = sum err^2 per row.
//
// Rows are independent given U, so they are processed in fixed tasks of 128 rows, one per
// thread at a time (OpenMP): the result is identical whatever the thread count. Needs Eigen 3.4.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/quantizers/calibration.hpp"
#include "lowbit/quantizers/hadamard.hpp"
#include "lowbit/quantizers/scale_search.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

// Sum of X^T X over calibration inputs X (tokens x channels), in double, and the token count.
// Each batch is multiplied in float over chunks of at most 1024 tokens and added in double, so
// the order and size of batches change the sum only by float rounding of those chunk products.
class hessian {
public:
  static constexpr std::size_t chunk_tokens = 1024;
  static constexpr std::size_t panel = 128;

  explicit hessian(std::size_t channels) : sum_(Eigen::MatrixXd::Zero(to_index(channels), to_index(channels))) {
    if (channels == 0) throw invalid_argument("hessian: 0 channels, expected at least 1");
  }

  // A sum of X^T X computed elsewhere (e.g. exported from a training framework) over `samples`
  // inputs. Throws lowbit::invalid_argument unless it is square, finite and symmetric.
  hessian(const Eigen::MatrixXd& sum, std::size_t samples) : sum_(sum), samples_(samples) {
    if (sum.rows() == 0 || sum.rows() != sum.cols())
      throw invalid_argument("hessian: the sum must be square and non-empty, got " + std::to_string(sum.rows()) + "x" +
                             std::to_string(sum.cols()));
    if (!sum.allFinite()) throw invalid_argument("hessian: the sum has non-finite entries");
    const double tol = 1e-12 * sum.cwiseAbs().maxCoeff();
    if (((sum - sum.transpose()).cwiseAbs().array() > tol).any())
      throw invalid_argument("hessian: the sum is not symmetric");
    sum_.triangularView<Eigen::StrictlyUpper>().setZero();
  }

  std::size_t channels() const noexcept { return static_cast<std::size_t>(sum_.rows()); }
  std::size_t samples() const noexcept { return samples_; }

  // Adds a batch x of `tokens` rows of channels() values (row-major). Throws
  // lowbit::invalid_argument for a wrong size or a non-finite value (nothing is added then).
  void add(std::span<const float> x, std::size_t tokens) {
    const std::size_t n = channels();
    detail::check_calibration_batch("hessian::add", x, tokens, n);
    const Eigen::Index ni = to_index(n);
    const Eigen::Index panels = (ni + to_index(panel) - 1) / to_index(panel);
    for (std::size_t t0 = 0; t0 < tokens; t0 += chunk_tokens) {
      const Eigen::Index tn = to_index(std::min(chunk_tokens, tokens - t0));
      // Row-major tokens x n is column-major n x tokens: X^T X = Xt Xt^T.
      const Eigen::Map<const Eigen::MatrixXf> xt(x.data() + t0 * n, ni, tn);
      // Lower triangle by panels of columns: [j0, n) x [j0, j1), each in its own task.
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (static_cast <double>(ni) * ni * tn > 4e6)
#endif
      for (Eigen::Index p = 0; p < panels; ++p) {
        const Eigen::Index j0 = p * to_index(panel), w = std::min(to_index(panel), ni - j0);
        Eigen::MatrixXf c(ni - j0, w);
        c.noalias() = xt.middleRows(j0, ni - j0) * xt.middleRows(j0, w).transpose();
        sum_.block(j0, j0, ni - j0, w) += c.cast<double>();
      }
    }
    samples_ += tokens;
  }

  // sum X^T X: its lower triangle (the upper is not kept), and the full symmetric matrix.
  const Eigen::MatrixXd& lower_sum() const noexcept { return sum_; }
  Eigen::MatrixXd sum() const {
    Eigen::MatrixXd s = sum_.selfadjointView<Eigen::Lower>();
    return s;
  }
  // GPTQ's H = 2 / samples * sum X^T X. Throws when no samples were added.
  Eigen::MatrixXd matrix() const {
    if (samples_ == 0) throw invalid_argument("hessian: no calibration samples were added");
    return sum() * (2.0 / static_cast<double>(samples_));
  }
  std::vector<double> diagonal() const {
    std::vector<double> d(channels());
    for (std::size_t j = 0; j < d.size(); ++j) d[j] = sum_(to_index(j), to_index(j));
    return d;
  }

  // The inputs were divided per channel, x_j / s_j (SmoothQuant): sum <- D^-1 sum D^-1.
  void scale_channels(std::span<const float> divide) {
    if (divide.size() != channels()) detail::throw_size_mismatch("hessian::scale_channels", divide.size(), channels());
    for (Eigen::Index j = 0; j < sum_.cols(); ++j)
      for (Eigen::Index i = j; i < sum_.rows(); ++i)
        sum_(i, j) /= static_cast<double>(divide[static_cast<std::size_t>(i)]) *
                      static_cast<double>(divide[static_cast<std::size_t>(j)]);
  }

  // The inputs were rotated, x <- x Q (hadamard_rotation::apply): sum <- Q^T sum Q, in double.
  void rotate(const hadamard_rotation& q) {
    if (q.size() != channels()) detail::throw_size_mismatch("hessian::rotate", q.size(), channels());
    Eigen::MatrixXd s = sum();
    // Columns of a column-major matrix are contiguous: s <- Q^T s (each column c: Q^T c), then
    // transpose (symmetric) and again, giving Q^T s Q.
    for (int pass = 0; pass < 2; ++pass) {
      for (Eigen::Index c = 0; c < s.cols(); ++c) apply_transpose(q, s.col(c).data());
      s.transposeInPlace();
    }
    sum_ = s.triangularView<Eigen::Lower>();
  }

private:
  static Eigen::Index to_index(std::size_t v) noexcept { return static_cast<Eigen::Index>(v); }

  // v <- Q^T v for a column vector: v^T Q, i.e. the row-vector rotation x <- x Q.
  static void apply_transpose(const hadamard_rotation& q, double* v) {
    const std::size_t n = q.size(), b = q.block();
    const auto signs = q.signs();
    if (!signs.empty())
      for (std::size_t i = 0; i < n; ++i) v[i] *= signs[i];
    const double norm = 1.0 / std::sqrt(static_cast<double>(b));
    for (std::size_t b0 = 0; b0 < n; b0 += b) {
      reference::fwht_unnormalized(v + b0, b);
      for (std::size_t i = 0; i < b; ++i) v[b0 + i] *= norm;
    }
  }

  Eigen::MatrixXd sum_; // lower triangle valid
  std::size_t samples_ = 0;
};

struct gptq_options {
  double percdamp = 0.01;     // lambda = percdamp * mean(diag H)
  std::size_t block = 128;    // columns per lazy batch update
  bool act_order = false;     // columns by decreasing diag H
  bool static_groups = false; // all group scales from the unquantized W up front
  int damping_retries = 6;    // times lambda may be multiplied by 10 when H_d is not positive definite
};

template <scheme S>
struct gptq_result {
  // The packed weights. Columns are in the original order, except with act-order over
  // dynamic groups (act_order && !static_groups), where they are stored in processing order so
  // that every group is contiguous: then storage column j holds input column permutation[j]
  // and the layer's input must be gathered the same way, x'_j = x_{permutation[j]}.
  qmatrix<S> weight;
  bool permuted = false;
  std::vector<std::uint32_t> permutation; // processing order (act-order), else empty
  std::vector<std::uint32_t> group_index; // g_idx: the scale group of each original column (group schemes)
  std::vector<double> column_loss;        // per original column: sum over rows of (w - q)^2 / (2 U_cc^2)
  double loss = 0;                        // sum of column_loss: 1/2 sum_rows (W - Q) H_d (W - Q)^T
  double output_error = 0;                // ||W X^T - Q X^T||_F^2 over the calibration inputs
  double damping = 0;                     // lambda used
  int damping_retries = 0;                // times lambda was raised
  std::size_t dead_columns = 0;           // inputs with zero diagonal (their weights set to 0)

  // The dequantized weights with columns in the original order (rows x cols).
  std::vector<float> dequantize_original() const {
    std::vector<float> d = dequantize(weight);
    if (!permuted) return d;
    const std::size_t rows = weight.rows(), cols = weight.cols();
    std::vector<float> out(d.size());
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < cols; ++j) out[r * cols + permutation[j]] = d[r * cols + j];
    return out;
  }
};

namespace detail {

// Upper U with U^T U = H^-1 from H = V V^T, V upper: the Cholesky factor of the reversed H
// read backwards, then U = V^-1. Both are blocked so that nearly all work is GEMM / TRSM on
// panels that run in parallel tasks; each task computes the same thing on any thread.
inline constexpr Eigen::Index factor_block = 128;

// In-place lower Cholesky (right-looking, blocks of 128); false if a is not positive definite.
template <class Mat>
bool cholesky_in_place(Mat& a) {
  const Eigen::Index n = a.rows(), nb = factor_block;
  for (Eigen::Index k = 0; k < n; k += nb) {
    const Eigen::Index b = std::min(nb, n - k), rest = n - k - b;
    Eigen::Ref<Mat> a11 = a.block(k, k, b, b);
    Eigen::LLT<Eigen::Ref<Mat>> llt(a11);
    if (llt.info() != Eigen::Success) return false;
    if (rest == 0) break;
    const Eigen::Index row_tasks = (rest + nb - 1) / nb;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (rest > 2 * nb)
#endif
    for (Eigen::Index t = 0; t < row_tasks; ++t) { // A21 <- A21 L11^-T
      const Eigen::Index r0 = k + b + t * nb, rn = std::min(nb, n - r0);
      auto blk = a.block(r0, k, rn, b);
      a.block(k, k, b, b)
          .template triangularView<Eigen::Lower>()
          .transpose()
          .template solveInPlace<Eigen::OnTheRight>(blk);
    }
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (rest > 2 * nb)
#endif
    for (Eigen::Index t = 0; t < row_tasks; ++t) { // A22 -= A21 A21^T, lower part, by column panels
      const Eigen::Index j0 = k + b + t * nb, w = std::min(nb, n - j0);
      a.block(j0, j0, n - j0, w).noalias() -= a.block(j0, k, n - j0, b) * a.block(j0, k, w, b).transpose();
    }
  }
  return true;
}

// u <- u^-1 for upper triangular u, by independent column panels (U's panel solves V X = I).
template <class Mat>
void invert_upper(Mat& u) {
  const Eigen::Index n = u.rows(), nb = factor_block, panels = (n + nb - 1) / nb;
  Mat x = Mat::Zero(n, n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (panels > 1)
#endif
  for (Eigen::Index p = panels - 1; p >= 0; --p) { // the costliest first
    const Eigen::Index j0 = p * nb, w = std::min(nb, n - j0), j1 = j0 + w;
    auto panel = x.block(0, j0, j1, w);
    panel.bottomRows(w).setIdentity();
    u.topLeftCorner(j1, j1).template triangularView<Eigen::Upper>().solveInPlace(panel);
  }
  u = std::move(x);
}

// Returns false if h is not positive definite. h is overwritten.
template <class Mat>
bool inverse_hessian_factor(Mat& h, Mat& u) {
  u = h.reverse();
  if (!cholesky_in_place(u)) return false;
  u.template triangularView<Eigen::StrictlyUpper>().setZero();
  h = u.reverse(); // V, upper
  for (Eigen::Index i = 0; i < h.rows(); ++i)
    if (!(h(i, i) > 0) || !std::isfinite(h(i, i))) return false;
  invert_upper(h);
  u = std::move(h);
  return u.allFinite();
}

// The lazy block: a multiple of the group below it, a divisor of it above, so that every
// group starts where all earlier columns' updates have reached its columns.
inline std::size_t aligned_block(std::size_t block, std::size_t group) {
  if (group == 0) return block;
  if (group <= block) return block / group * group;
  for (std::size_t b = block; b > 1; --b)
    if (group % b == 0) return b;
  return 1;
}

inline constexpr std::size_t gptq_rows_per_task = 128;

// GPTQ over Real (float in the library; the tests also run it in double).
template <scheme S, class Real, class Chooser>
gptq_result<S> gptq_run(std::span<const float> w_in, std::size_t rows, std::size_t cols, const hessian& hs,
                        const Chooser& chooser, const gptq_options& opt) {
  using E = typename S::element;
  using SF = typename S::scale_format;
  using params_t = block_params<SF>;
  using MatR = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic>;
  check_shape("gptq", w_in.size(), rows, cols);
  if (hs.channels() != cols)
    throw invalid_argument("gptq: the Hessian has " + std::to_string(hs.channels()) + " channels, the weights have " +
                           std::to_string(cols) + " input columns");
  if (hs.samples() == 0) throw invalid_argument("gptq: the Hessian has no calibration samples");
  for (std::size_t i = 0; i < w_in.size(); ++i)
    if (!std::isfinite(w_in[i]))
      throw invalid_argument("gptq: weight (" + std::to_string(i / cols) + ", " + std::to_string(i % cols) + ") is " +
                             std::to_string(w_in[i]) + "; GPTQ needs finite weights");
  if (opt.block == 0) throw invalid_argument("gptq: block must be at least 1");
  if (!(opt.percdamp >= 0.0) || !std::isfinite(opt.percdamp))
    throw invalid_argument("gptq: percdamp " + std::to_string(opt.percdamp) + " must be finite and >= 0");
  if (opt.damping_retries < 0) throw invalid_argument("gptq: damping_retries must be >= 0");

  const Eigen::Index n = static_cast<Eigen::Index>(cols);
  gptq_result<S> res;
  // H = 2/n sum, read from the sum's lower triangle; dead inputs get H_cc = 1.
  const Eigen::MatrixXd& lower = hs.lower_sum();
  const double hscale = 2.0 / static_cast<double>(hs.samples());
  std::vector<double> diag(cols);
  std::vector<float> w0(w_in.begin(), w_in.end()); // dead columns zeroed
  for (Eigen::Index c = 0; c < n; ++c) {
    diag[static_cast<std::size_t>(c)] = lower(c, c) * hscale;
    if (lower(c, c) == 0.0) {
      diag[static_cast<std::size_t>(c)] = 1.0;
      for (std::size_t r = 0; r < rows; ++r) w0[r * cols + static_cast<std::size_t>(c)] = 0.0f;
      ++res.dead_columns;
    }
  }
  const auto h = [&](std::size_t i, std::size_t j) {
    return i == j ? diag[i]
                  : (i > j ? lower(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j))
                           : lower(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(i))) *
                        hscale;
  };

  // Parameters chosen up front: the tensor scale and every unit other than dynamic groups.
  constexpr bool grouped = S::gran == granularity::group;
  const bool dynamic_groups = grouped && !opt.static_groups;
  std::vector<params_t> fixed;
  float tensor_scale = 1.0f;
  if (dynamic_groups) {
    if constexpr (S::has_tensor_scale) tensor_scale = S::rule::template tensor_scale<E, SF>(abs_max(w0));
  } else {
    fixed.resize(S::scale_count(rows, cols));
    tensor_scale = choose_all<S>(
        w0, rows, cols, [&](std::size_t u, const params_t& p) { fixed[u] = p; }, chooser);
  }

  // Processing order.
  std::vector<std::uint32_t> perm(cols);
  std::iota(perm.begin(), perm.end(), 0u);
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](std::uint32_t a, std::uint32_t b) { return diag[a] > diag[b]; });
    res.permutation = perm;
  }
  const double mean_diag = std::accumulate(diag.begin(), diag.end(), 0.0) / static_cast<double>(cols);

  // Damping, raised until H_d is positive definite. The factorization runs in Real, as the
  // reference's does in fp32.
  double lambda = opt.percdamp * mean_diag;
  MatR hd(n, n), ur;
  for (;;) {
    for (Eigen::Index j = 0; j < n; ++j)
      for (Eigen::Index i = 0; i < n; ++i)
        hd(i, j) = static_cast<Real>(h(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]) +
                                     (i == j ? lambda : 0.0));
    if (inverse_hessian_factor(hd, ur)) break;
    if (res.damping_retries >= opt.damping_retries)
      throw invalid_argument(
          "gptq: H + lambda I is not positive definite even with lambda = " + std::to_string(lambda) + " after " +
          std::to_string(res.damping_retries) + " retries (degenerate or non-finite calibration data?)");
    lambda = std::max(lambda * 10.0, 1e-6 * mean_diag);
    ++res.damping_retries;
  }
  res.damping = lambda;
  hd = MatR(); // release

  const std::size_t g = grouped ? S::block : 0;
  const std::size_t groups = grouped ? S::padded_cols(cols) / S::block : 0;
  const std::size_t bsz = aligned_block(opt.block, dynamic_groups ? g : 0);
  const std::size_t tasks = (rows + gptq_rows_per_task - 1) / gptq_rows_per_task;

  std::vector<std::uint8_t> codes(rows * cols);                  // processing order
  std::vector<params_t> dyn(dynamic_groups ? rows * groups : 0); // dynamic groups, processing order
  std::vector<double> task_loss(tasks * cols, 0.0), task_err2(tasks, 0.0), task_delta2(tasks, 0.0);

  const auto run_task = [&](std::size_t task) {
    const std::size_t r0 = task * gptq_rows_per_task, m = std::min(gptq_rows_per_task, rows - r0);
    const Eigen::Index mi = static_cast<Eigen::Index>(m);
    MatR wc(mi, n);
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t j = 0; j < cols; ++j)
        wc(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(j)) = w0[(r0 + r) * cols + perm[j]];
    MatR err(mi, static_cast<Eigen::Index>(bsz));
    std::vector<float> unit(g);
    std::vector<float> scale(m);
    std::vector<std::uint8_t> zero(m);
    double* loss = &task_loss[task * cols];
    double err2 = 0, delta2 = 0;
    for (std::size_t i1 = 0; i1 < cols; i1 += bsz) {
      const std::size_t i2 = std::min(cols, i1 + bsz);
      for (std::size_t j = i1; j < i2; ++j) {
        const Eigen::Index ji = static_cast<Eigen::Index>(j);
        if (dynamic_groups && j % g == 0) { // a new group: its scale from the current weights
          const std::size_t gl = std::min(g, cols - j);
          for (std::size_t r = 0; r < m; ++r) {
            for (std::size_t k = 0; k < gl; ++k)
              unit[k] = static_cast<float>(wc(static_cast<Eigen::Index>(r), ji + static_cast<Eigen::Index>(k)));
            dyn[(r0 + r) * groups + j / g] = chooser.template choose<S>(std::span<const float>(unit.data(), gl),
                                                                        std::span<const float>{}, tensor_scale);
          }
        }
        for (std::size_t r = 0; r < m; ++r) { // this column's scale and zero point per row
          const params_t& p =
              dynamic_groups ? dyn[(r0 + r) * groups + j / g] : fixed[S::scale_index(r0 + r, perm[j], cols)];
          scale[r] = static_cast<float>(SF::decode(p.scale_code)) * tensor_scale;
          zero[r] = p.zero_code;
        }
        const Real d = ur(ji, ji);
        for (std::size_t r = 0; r < m; ++r) {
          const Eigen::Index ri = static_cast<Eigen::Index>(r);
          const Real wv = wc(ri, ji);
          const auto code = S::encode(static_cast<float>(wv), scale[r], zero[r]);
          codes[(r0 + r) * cols + j] = static_cast<std::uint8_t>(code);
          const Real q = static_cast<Real>(S::decode(code, scale[r], zero[r]));
          const Real e = (wv - q) / d;
          err(ri, static_cast<Eigen::Index>(j - i1)) = e;
          loss[perm[j]] += static_cast<double>((wv - q) * (wv - q)) / (2.0 * static_cast<double>(d * d));
          err2 += static_cast<double>(e) * static_cast<double>(e);
          const double dl = static_cast<double>(w0[(r0 + r) * cols + perm[j]]) - static_cast<double>(q);
          delta2 += dl * dl;
        }
        if (j + 1 < i2) { // within the block, at once
          const Eigen::Index rest = static_cast<Eigen::Index>(i2 - j - 1);
          wc.middleCols(ji + 1, rest).noalias() -=
              err.col(static_cast<Eigen::Index>(j - i1)) * ur.row(ji).segment(ji + 1, rest);
        }
      }
      if (i2 < cols) { // the lazy batch update of every later column
        const Eigen::Index b = static_cast<Eigen::Index>(i2 - i1), rest = n - static_cast<Eigen::Index>(i2);
        wc.rightCols(rest).noalias() -=
            err.leftCols(b) * ur.block(static_cast<Eigen::Index>(i1), static_cast<Eigen::Index>(i2), b, rest);
      }
    }
    task_err2[task] = err2;
    task_delta2[task] = delta2;
  };
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1)
#endif
  for (std::size_t t = 0; t < tasks; ++t) run_task(t);

  // Reductions in task order: the same whatever the thread count.
  res.column_loss.assign(cols, 0.0);
  double err2 = 0, delta2 = 0;
  for (std::size_t t = 0; t < tasks; ++t) {
    for (std::size_t c = 0; c < cols; ++c) res.column_loss[c] += task_loss[t * cols + c];
    err2 += task_err2[t];
    delta2 += task_delta2[t];
  }
  for (double l : res.column_loss) res.loss += l;
  res.output_error = std::max(0.0, static_cast<double>(hs.samples()) / 2.0 * (err2 - lambda * delta2));

  // Assemble the packed matrix.
  res.permuted = dynamic_groups && opt.act_order;
  qmatrix<S> q(rows, cols);
  q.set_tensor_scale(tensor_scale);
  const std::vector<params_t>& units = dynamic_groups ? dyn : fixed;
  std::vector<float> encode(units.size());
  for (std::size_t k = 0; k < units.size(); ++k) {
    encode[k] = static_cast<float>(SF::decode(units[k].scale_code));
    if constexpr (!qmatrix<S>::double_quantized) q.scales()[k] = units[k].scale_code;
    if constexpr (S::has_zero_point) q.zero_points()[k] = units[k].zero_code;
  }
  store_scales<S>(q, encode);
  const std::size_t pc = q.padded_cols();
  const auto zero_code = static_cast<std::uint8_t>(S::encode(0.0f, 1.0f, 0));
  std::vector<std::uint8_t> row(pc);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < cols; ++j) row[res.permuted || !opt.act_order ? j : perm[j]] = codes[r * cols + j];
    for (std::size_t c = cols; c < pc; ++c) row[c] = S::has_zero_point ? q.zero_at(r, c) : zero_code;
    pack_codes(S::layout, S::code_bits, row, q.codes().subspan(r * q.row_bytes(), q.row_bytes()));
  }
  if (grouped) {
    res.group_index.resize(cols);
    for (std::size_t j = 0; j < cols; ++j)
      res.group_index[res.permuted ? perm[j] : j] = static_cast<std::uint32_t>(j / g);
  }
  res.weight = std::move(q);
  return res;
}

} // namespace detail

// The GPTQ policy: Search chooses each unit's scale when its group is reached (absmax_search:
// the scheme's own rule; mse_search{100, 0.8, 2.4}: the reference's clipping grid).
template <class Search = absmax_search>
struct gptq {
  Search search{};
  gptq_options options{};

  static std::string name() { return std::string("gptq/") + Search::name(); }

  // Quantizes w (rows x cols, row-major) into S given the Hessian of the layer's inputs.
  template <scheme S>
  gptq_result<S> quantize(std::span<const float> w, std::size_t rows, std::size_t cols, const hessian& h) const {
    search.validate();
    return detail::gptq_run<S, float>(w, rows, cols, h, search, options);
  }
};

using gptq_absmax = gptq<absmax_search>;
using gptq_mse = gptq<mse_search>;
// The reference's MSE grid: 100 steps, shrink to 0.8, error norm 2.4.
inline constexpr mse_search gptq_reference_grid{100, 0.8, 2.4};

} // namespace lowbit
