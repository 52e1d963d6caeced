// QuEST (Panferov et al., 2025) forward quantization for quantization-aware training:
// Hadamard-normalize each row, scale it so that alpha_E * RMS(row) maps to the element
// format's largest value, where alpha_E minimizes the expected squared error of a standard
// normal variable under that format's grid (Gaussian MSE-optimal clipping), round to nearest,
// and report which elements to trust in the backward pass.
//
// alpha_E is computed here by exact integration: for a grid of sorted levels v_i and a scale,
// E[(X - Q(X))^2] is a sum over the rounding cells of closed-form Gaussian integrals (erf and
// the density), minimized over alpha by a scan and a golden-section refinement. It works for
// any scalar format: the mid-rise integer grids QuEST uses (midrise<B>, down to 1 bit),
// mid-tread integers and minifloats.
//
// Trust mask: element i is trusted when |x_i - q_i| <= trust_factor * h_i, h_i being half the
// width of the rounding cell of q_i on the side of x_i (for the outermost levels, outside the
// grid, the width of the cell inside). With trust_factor 1 exactly the elements that clipping
// moved by more than half a step are untrusted: the QuEST trust estimator's mask, which a
// training framework multiplies into the gradient.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/convert.hpp"
#include "lowbit/quantizers/hadamard.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

namespace detail {

inline double normal_pdf(double x) noexcept { return std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi); }
inline double normal_cdf(double x) noexcept { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

// The distinct finite values encode can produce, increasing (NaN codes and codes encode never
// produces, such as -8 of int4_sym, skipped; -0 merged with +0).
template <scalar_format E>
std::vector<double> format_levels() {
  std::vector<double> v;
  for (unsigned c = 0; c < code_count<E>; ++c) {
    const auto code = static_cast<typename E::storage>(c);
    if (E::is_nan(code)) continue;
    const double d = E::decode_double(code);
    if (std::isfinite(d) && E::decode_double(E::encode(d)) == d) v.push_back(d == 0 ? 0.0 : d);
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// E[(X - Q(X))^2], X ~ N(0,1), Q rounding to the nearest of levels * step.
inline double gaussian_rounding_mse(const std::vector<double>& levels, double step) noexcept {
  // integral over [a, b] of (x - v)^2 phi(x) dx, closed form
  const auto cell = [](double a, double b, double v) {
    const double pa = std::isinf(a) ? 0.0 : normal_pdf(a), pb = std::isinf(b) ? 0.0 : normal_pdf(b);
    const double apa = std::isinf(a) ? 0.0 : a * pa, bpb = std::isinf(b) ? 0.0 : b * pb;
    return (1 + v * v) * (normal_cdf(b) - normal_cdf(a)) - (bpb - apa) + 2 * v * (pb - pa);
  };
  double e = 0;
  const double inf = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const double v = levels[i] * step;
    const double a = i == 0 ? -inf : (levels[i - 1] + levels[i]) / 2 * step;
    const double b = i + 1 == levels.size() ? inf : (levels[i] + levels[i + 1]) / 2 * step;
    e += cell(a, b, v);
  }
  return e;
}

} // namespace detail

// Expected squared error of N(0,1) rounded to the nearest value of E scaled so that E's largest
// finite value is alpha (clipping at alpha).
template <scalar_format E>
double gaussian_mse(double alpha) {
  if (!(alpha > 0.0) || !std::isfinite(alpha))
    throw invalid_argument("gaussian_mse: alpha " + std::to_string(alpha) + " must be positive and finite");
  static const std::vector<double> levels = detail::format_levels<E>();
  return detail::gaussian_rounding_mse(levels, alpha / E::max_finite);
}

// The alpha minimizing gaussian_mse<E>: a scan over (0, 12] in steps of 0.005, then golden
// section to 1e-10 around the best point. Computed once per format.
template <scalar_format E>
double gaussian_optimal_alpha() {
  static const double alpha = [] {
    double best = 0.005, best_e = gaussian_mse<E>(best);
    for (int i = 2; i <= 2400; ++i) {
      const double a = 0.005 * i, e = gaussian_mse<E>(a);
      if (e < best_e) best = a, best_e = e;
    }
    double lo = std::max(1e-6, best - 0.005), hi = best + 0.005;
    const double g = (std::sqrt(5.0) - 1) / 2;
    double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    double f1 = gaussian_mse<E>(x1), f2 = gaussian_mse<E>(x2);
    while (hi - lo > 1e-10) {
      if (f1 < f2) {
        hi = x2, x2 = x1, f2 = f1;
        x1 = hi - g * (hi - lo), f1 = gaussian_mse<E>(x1);
      } else {
        lo = x1, x1 = x2, f1 = f2;
        x2 = lo + g * (hi - lo), f2 = gaussian_mse<E>(x2);
      }
    }
    return (lo + hi) / 2;
  }();
  return alpha;
}

struct quest_options {
  bool rotate = true;        // Hadamard-normalize each row first (block: largest power of two dividing cols)
  std::uint64_t seed = 0;    // random signs of the rotation (0: none)
  double trust_factor = 1.0; // trust bound in half-cells
};

// Row-wise QuEST quantization of a rows x cols matrix. `values` and `trusted` are in the
// rotated domain when options.rotate (the product with a likewise-rotated operand is
// unchanged: rotation->apply_inverse_rows maps values back).
struct quest_result {
  std::vector<float> values;                 // fake-quantized x (rotated when rotate)
  std::vector<std::uint8_t> trusted;         // 1 where the quantization error is within the trust bound
  std::vector<float> scales;                 // per row: the factor s with values = s * decode(code)
  double alpha = 0;                          // alpha_E used
  std::optional<hadamard_rotation> rotation; // the rotation applied (size cols); none when !rotate
};

template <scalar_format E>
quest_result quest_quantize(std::span<const float> x, std::size_t rows, std::size_t cols,
                            const quest_options& options = {}) {
  if (rows == 0 || cols == 0 || x.size() != rows * cols)
    throw invalid_argument("quest_quantize: data has " + std::to_string(x.size()) + " elements for shape " +
                           std::to_string(rows) + "x" + std::to_string(cols));
  if (!(options.trust_factor >= 0.0) || !std::isfinite(options.trust_factor))
    throw invalid_argument("quest_quantize: trust_factor " + std::to_string(options.trust_factor) +
                           " must be finite and >= 0");
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      throw invalid_argument("quest_quantize: element (" + std::to_string(i / cols) + ", " + std::to_string(i % cols) +
                             ") is " + std::to_string(x[i]));
  static const std::vector<double> levels = detail::format_levels<E>();
  quest_result out{std::vector<float>(x.begin(), x.end()), std::vector<std::uint8_t>(x.size()),
                   std::vector<float>(rows), gaussian_optimal_alpha<E>(), std::nullopt};
  if (options.rotate) {
    out.rotation.emplace(cols, options.seed);
    out.rotation->apply_rows(out.values, rows);
  }
  parallel_rows(rows, x.size(), [&](std::size_t r0, std::size_t r1) {
    std::vector<float> scaled(cols);
    std::vector<typename E::storage> codes(cols);
    for (std::size_t r = r0; r < r1; ++r) {
      const std::span<float> row(out.values.data() + r * cols, cols);
      double ss = 0;
      for (float v : row) ss += static_cast<double>(v) * v;
      const double rms = std::sqrt(ss / static_cast<double>(cols));
      const auto s = static_cast<float>(out.alpha * rms / E::max_finite);
      out.scales[r] = s;
      if (!(s > 0.0f) || !std::isfinite(s)) { // an all-zero row: exact, all trusted
        std::fill(row.begin(), row.end(), 0.0f);
        std::fill(out.trusted.begin() + static_cast<std::ptrdiff_t>(r * cols),
                  out.trusted.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols), std::uint8_t{1});
        continue;
      }
      for (std::size_t c = 0; c < cols; ++c) scaled[c] = row[c] / s;
      encode_span<E>(std::span<const float>(scaled), std::span<typename E::storage>(codes));
      decode_span<E>(std::span<const typename E::storage>(codes), row);
      for (std::size_t c = 0; c < cols; ++c) {
        const double level = row[c], xs = scaled[c];
        const auto k = static_cast<std::size_t>(std::lower_bound(levels.begin(), levels.end(), level) - levels.begin());
        const bool above = xs > level;
        double half;
        if (levels.size() == 1)
          half = 0;
        else if (above)
          half = (k + 1 < levels.size() ? levels[k + 1] - level : level - levels[k - 1]) / 2;
        else
          half = (k > 0 ? level - levels[k - 1] : levels[k + 1] - level) / 2;
        out.trusted[r * cols + c] = std::fabs(xs - level) <= options.trust_factor * half ? 1 : 0;
        row[c] = s * row[c];
      }
    }
  });
  return out;
}

} // namespace lowbit
