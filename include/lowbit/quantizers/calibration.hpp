// Per-channel statistics of a layer's input activations, streamed from calibration batches:
// the running absmax of each input channel (SmoothQuant) and the running sum of squares (the
// diagonal of X^T X, an importance weight for scale search). Batches may come in any number and
// size; the sums are accumulated in double, so batching changes them only by rounding.
#pragma once

#include "lowbit/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

namespace detail {

// A calibration batch: tokens rows of n channels, every value finite. fn names the caller.
inline void check_calibration_batch(const char* fn, std::span<const float> x, std::size_t tokens, std::size_t n) {
  if (x.size() != tokens * n)
    throw invalid_argument(std::string(fn) + ": batch has " + std::to_string(x.size()) + " values, " +
                           std::to_string(tokens) + " tokens x " + std::to_string(n) + " channels needs " +
                           std::to_string(tokens * n));
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      throw invalid_argument(std::string(fn) + ": token " + std::to_string(i / n) + ", channel " +
                             std::to_string(i % n) + " is " + std::to_string(x[i]));
}

} // namespace detail

class activation_stats {
public:
  explicit activation_stats(std::size_t channels) : absmax_(channels, 0.0f), sum_squares_(channels, 0.0) {
    if (channels == 0) throw invalid_argument("activation_stats: 0 channels, expected at least 1");
  }

  // Adds a batch x of `tokens` rows of channels() values (row-major). Throws
  // lowbit::invalid_argument for a wrong size or a non-finite value (nothing is recorded then).
  void observe(std::span<const float> x, std::size_t tokens) {
    const std::size_t n = absmax_.size();
    detail::check_calibration_batch("activation_stats::observe", x, tokens, n);
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t j = 0; j < n; ++j) {
        const float v = x[t * n + j];
        absmax_[j] = std::max(absmax_[j], std::fabs(v));
        sum_squares_[j] += static_cast<double>(v) * v;
      }
    tokens_ += tokens;
  }

  std::size_t channels() const noexcept { return absmax_.size(); }
  std::size_t tokens() const noexcept { return tokens_; }
  std::span<const float> absmax() const noexcept { return absmax_; }
  std::span<const double> sum_squares() const noexcept { return sum_squares_; }
  // diag(X^T X) / tokens as floats: the per-column importance rtn's searches take.
  std::vector<float> importance() const {
    if (tokens_ == 0) throw invalid_argument("activation_stats::importance: no calibration tokens observed");
    std::vector<float> w(sum_squares_.size());
    for (std::size_t j = 0; j < w.size(); ++j)
      w[j] = static_cast<float>(sum_squares_[j] / static_cast<double>(tokens_));
    return w;
  }

private:
  std::vector<float> absmax_;
  std::vector<double> sum_squares_;
  std::size_t tokens_ = 0;
};

} // namespace lowbit
