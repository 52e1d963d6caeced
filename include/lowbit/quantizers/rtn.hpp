// Round-to-nearest (RTN) quantization of a weight matrix into any scheme, with the scale of
// each unit chosen by a search policy (scale_search.hpp: absmax, percentile, MSE over clipping
// ratios, optionally importance-weighted) and elements rounded to nearest-even or
// stochastically. Also: picking the best element format among candidate schemes of the same
// width (the exponent / mantissa split search of LLM-FP4), reporting which won.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/quantizers/scale_search.hpp"
#include "lowbit/schemes/metrics.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lowbit {

namespace detail {

// Per-column importance: empty (uniform) or cols finite, non-negative weights.
inline void check_importance(const char* fn, std::span<const float> importance, std::size_t cols) {
  if (importance.empty()) return;
  if (importance.size() != cols)
    throw invalid_argument(std::string(fn) + ": importance has " + std::to_string(importance.size()) +
                           " weights, expected one per column (" + std::to_string(cols) + ")");
  for (std::size_t c = 0; c < cols; ++c)
    if (!std::isfinite(importance[c]) || importance[c] < 0.0f)
      throw invalid_argument(std::string(fn) + ": importance of column " + std::to_string(c) + " is " +
                             std::to_string(importance[c]) + ", expected finite and >= 0");
}

} // namespace detail

// The RTN policy: Search chooses each unit's scale, Rounding rounds the elements
// (rounding::stochastic draws random_bits(seed, r * cols + c), so results depend only on the
// seed). Works with every scheme; `importance` (one weight per input column, e.g. the diagonal
// of X^T X from calibration data) weights the search's error and is ignored by absmax.
template <class Search = absmax_search, rounding Rounding = rounding::nearest_even>
struct rtn {
  static_assert(Rounding != rounding::toward_zero, "RTN rounds to nearest or stochastically");
  Search search{};
  std::uint64_t seed = 0;

  static std::string name() {
    return std::string("rtn/") + Search::name() + (Rounding == rounding::stochastic ? "/stochastic" : "");
  }

  template <scheme S>
  qmatrix<S> quantize(std::span<const float> w, std::size_t rows, std::size_t cols,
                      std::span<const float> importance = {}) const {
    search.validate();
    detail::check_importance("rtn::quantize", importance, cols);
    return detail::quantize_with<S>(w, rows, cols, search, importance, {Rounding, seed});
  }
  // quantize then dequantize, without packing.
  template <scheme S>
  void fake_quant(std::span<const float> w, std::size_t rows, std::size_t cols, std::span<float> out,
                  std::span<const float> importance = {}) const {
    search.validate();
    detail::check_importance("rtn::fake_quant", importance, cols);
    detail::fake_quant_with<S>(w, rows, cols, out, search, importance, {Rounding, seed});
  }
};

using rtn_absmax = rtn<absmax_search>;
using rtn_mse = rtn<mse_search>;

// The result of trying several candidate schemes (e.g. the E1M2 / E2M1 / E3M0 splits of a 4-bit
// float): every candidate's error and the packed matrix of the best one.
template <scheme... Candidates>
struct format_choice {
  static constexpr std::size_t count = sizeof...(Candidates);
  std::variant<qmatrix<Candidates>...> matrix; // the winner
  std::array<double, count> error{};           // weighted MSE of each candidate, in order
  std::array<std::string_view, count> element{format_name<typename Candidates::element>...};
  std::size_t best = 0;
  std::string_view best_element() const noexcept { return element[best]; }
};

// Quantizes w with every candidate scheme under `policy` and keeps the one of least
// importance-weighted mean squared error (the first on ties).
template <scheme... Candidates, class Policy>
format_choice<Candidates...> choose_format(const Policy& policy, std::span<const float> w, std::size_t rows,
                                           std::size_t cols, std::span<const float> importance = {}) {
  static_assert(sizeof...(Candidates) >= 1, "name at least one candidate scheme");
  detail::check_importance("choose_format", importance, cols);
  format_choice<Candidates...> out{};
  std::vector<float> back(w.size());
  bool have = false;
  std::size_t i = 0;
  const auto one = [&]<class S>() {
    qmatrix<S> q = policy.template quantize<S>(w, rows, cols, importance);
    dequantize(q, std::span<float>(back));
    double e = 0, wsum = 0;
    for (std::size_t k = 0; k < w.size(); ++k) {
      const double d = static_cast<double>(w[k]) - back[k];
      const double wt = importance.empty() ? 1.0 : importance[k % cols];
      e += wt * d * d;
      wsum += wt;
    }
    out.error[i] = wsum > 0 ? e / wsum : 0.0;
    if (!have || out.error[i] < out.error[out.best]) {
      out.best = i;
      out.matrix.template emplace<qmatrix<S>>(std::move(q));
      have = true;
    }
    ++i;
  };
  (one.template operator()<Candidates>(), ...);
  return out;
}

} // namespace lowbit
