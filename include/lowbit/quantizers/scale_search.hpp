// How a round-to-nearest quantizer picks each unit's (block's, group's, channel's) scale, for
// any scheme: the scheme's own rule on the unit (absmax), the rule applied to a clipped range
// (a percentile of |x|), or a search over clipping ratios that keeps the candidate with the
// least (optionally importance-weighted) error.
//
// Every scheme's rule is homogeneous: the rule applied to r * x gives the scale it would give
// for a range clipped to r * amax (the zero point follows min and max, as in GPTQ's grid). So a
// clipping ratio is tried by handing the rule the scaled unit, and the scale it returns is then
// used, in the scheme's own scale format, to round the unscaled elements. Ratio 1 is the first
// candidate and only a strictly smaller error replaces it, so the search is never worse than
// absmax on any unit. For power-of-two (MX) scales the candidates repeat; each distinct scale
// is evaluated once.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

namespace detail {

// Whether a unit holds NaN/inf (only schemes whose rule encodes them get here with one).
inline bool any_non_finite(std::span<const float> x) noexcept {
  for (float v : x)
    if (!std::isfinite(v)) return true;
  return false;
}

// Per-thread scratch for the searches (choose is called from parallel rows).
struct search_scratch {
  std::vector<float> scaled, decoded, tmp;
  std::vector<std::uint8_t> codes;
};
inline search_scratch& scratch() {
  thread_local search_scratch s;
  return s;
}

// Sum over the unit of w_i * |x_i - dequant(quant(x_i))|^norm under the candidate params, with
// the first-level scale (what elements are rounded with).
template <scheme S>
double unit_error(std::span<const float> x, std::span<const float> w, const block_params<typename S::scale_format>& p,
                  float tensor_scale, double norm, search_scratch& s) {
  const float scale = static_cast<float>(S::scale_format::decode(p.scale_code)) * tensor_scale;
  const std::size_t n = x.size();
  s.codes.resize(n);
  s.decoded.resize(n);
  encode_run<S>(x.data(), n, scale, p.zero_code, s.codes.data(), s.tmp);
  decode_run<S>(s.codes.data(), n, scale, p.zero_code, s.decoded.data());
  const float* y = s.decoded.data();
  double e = 0;
  if (norm == 2.0) { // the common case, branch-free so it vectorizes
    if (w.empty())
      for (std::size_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(x[i]) - y[i];
        e += d * d;
      }
    else
      for (std::size_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(x[i]) - y[i];
        e += w[i] * d * d;
      }
    return e;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double t = std::pow(std::fabs(static_cast<double>(x[i]) - y[i]), norm);
    e += w.empty() ? t : w[i] * t;
  }
  return e;
}

// Rules that read a block only through its min and max (absmax, MX, min-max) are handed the
// two scaled ends instead of the whole scaled block: the same result, since rounding r * x is
// monotone in x.
template <class Rule>
inline constexpr bool range_only_rule = requires {
  requires Rule::range_only;
};

template <scheme S>
block_params<typename S::scale_format> rule_on_scaled(std::span<const float> x, float ratio, float tensor_scale,
                                                      search_scratch& s, float lo = 0.0f, float hi = 0.0f) {
  if constexpr (range_only_rule<typename S::rule>) {
    const float ends[2] = {lo * ratio, hi * ratio};
    return S::rule::template choose<typename S::element, typename S::scale_format>(ends, tensor_scale);
  }
  s.scaled.resize(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) s.scaled[i] = x[i] * ratio;
  return S::rule::template choose<typename S::element, typename S::scale_format>(s.scaled, tensor_scale);
}

} // namespace detail

// The scheme's own rule (absmax for most schemes, OCP's floor exponent for MX, min-max for
// asymmetric integers, absmean for ternary).
struct absmax_search : detail::rule_chooser {
  static constexpr const char* name() noexcept { return "absmax"; }
  void validate() const noexcept {}
};

// The rule applied to the range clipped at the given percentile of |x| over the unit
// (nearest rank; 100 is absmax).
struct percentile_search {
  double percentile = 99.9;
  static constexpr const char* name() noexcept { return "percentile"; }

  void validate() const {
    if (!(percentile > 0.0 && percentile <= 100.0))
      throw invalid_argument("percentile_search: percentile " + std::to_string(percentile) + " is outside (0, 100]");
  }
  template <scheme S>
  block_params<typename S::scale_format> choose(std::span<const float> x, std::span<const float> /*weights*/,
                                                float tensor_scale) const {
    using E = typename S::element;
    using SF = typename S::scale_format;
    const float amax = detail::abs_max(x);
    if (x.empty() || !(amax > 0.0f) || !std::isfinite(amax) || detail::any_non_finite(x))
      return S::rule::template choose<E, SF>(x, tensor_scale);
    auto& s = detail::scratch();
    s.scaled.assign(x.begin(), x.end());
    for (float& v : s.scaled) v = std::fabs(v);
    const auto rank = static_cast<std::size_t>(std::ceil(percentile / 100.0 * static_cast<double>(x.size())));
    const std::size_t k = std::min(x.size() - 1, rank == 0 ? 0 : rank - 1);
    std::nth_element(s.scaled.begin(), s.scaled.begin() + static_cast<std::ptrdiff_t>(k), s.scaled.end());
    const float clip = s.scaled[k];
    if (!(clip > 0.0f)) return S::rule::template choose<E, SF>(x, tensor_scale);
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    return detail::rule_on_scaled<S>(x, clip / amax, tensor_scale, s, *lo, *hi);
  }
};

// Search over clipping ratios 1, 1 - 1/grid, ..., down to 1 - max_shrink: keep the scale with
// the least sum of w_i * |error_i|^norm (w: per-column importance such as diag(X^T X), uniform
// when absent). Defaults are GPTQ's reference grid (100 steps, shrink to 0.2 of the range is
// 0.8; norm 2.4); norm 2 gives the MSE-optimal scale.
struct mse_search {
  int grid = 100;
  double max_shrink = 0.8;
  double norm = 2.0;
  static constexpr const char* name() noexcept { return "mse"; }

  void validate() const {
    if (grid < 1) throw invalid_argument("mse_search: grid " + std::to_string(grid) + " must be at least 1");
    if (!(max_shrink >= 0.0 && max_shrink < 1.0))
      throw invalid_argument("mse_search: max_shrink " + std::to_string(max_shrink) + " is outside [0, 1)");
    if (!(norm > 0.0 && std::isfinite(norm)))
      throw invalid_argument("mse_search: norm " + std::to_string(norm) + " must be positive and finite");
  }
  template <scheme S>
  block_params<typename S::scale_format> choose(std::span<const float> x, std::span<const float> weights,
                                                float tensor_scale) const {
    using E = typename S::element;
    using SF = typename S::scale_format;
    auto best = S::rule::template choose<E, SF>(x, tensor_scale);
    if (x.empty() || detail::any_non_finite(x) || !(detail::abs_max(x) > 0.0f)) return best;
    auto& s = detail::scratch();
    double best_err = detail::unit_error<S>(x, weights, best, tensor_scale, norm, s);
    auto last = best;
    const auto [lo_it, hi_it] = std::minmax_element(x.begin(), x.end());
    const float lo = *lo_it, hi = *hi_it;
    const int steps = static_cast<int>(max_shrink * grid + 1e-9);
    for (int i = 1; i <= steps; ++i) {
      const auto ratio = static_cast<float>(1.0 - static_cast<double>(i) / grid);
      const auto p = detail::rule_on_scaled<S>(x, ratio, tensor_scale, s, lo, hi);
      if (p.scale_code == last.scale_code && p.zero_code == last.zero_code) continue; // same candidate
      last = p;
      const double err = detail::unit_error<S>(x, weights, p, tensor_scale, norm, s);
      if (err < best_err) {
        best_err = err;
        best = p;
      }
    }
    return best;
  }
};

} // namespace lowbit
