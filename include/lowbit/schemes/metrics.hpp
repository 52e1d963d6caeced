// Error metrics between a reference tensor and its quantized reconstruction, accumulated in
// double: MSE, SQNR in dB (10 log10 of signal power over error power; +inf for an exact copy)
// and the largest absolute error.
#pragma once

#include "lowbit/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

namespace lowbit {

struct error_metrics {
  double mse = 0;
  double sqnr_db = 0;
  double max_abs_error = 0;
};

inline error_metrics measure_error(std::span<const float> reference, std::span<const float> approx) {
  if (reference.size() != approx.size())
    detail::throw_size_mismatch("measure_error: approx", approx.size(), reference.size());
  double err = 0, sig = 0, worst = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double d = static_cast<double>(approx[i]) - static_cast<double>(reference[i]);
    err += d * d;
    sig += static_cast<double>(reference[i]) * reference[i];
    worst = std::max(worst, std::fabs(d));
  }
  error_metrics m;
  const double n = reference.empty() ? 1.0 : static_cast<double>(reference.size());
  m.mse = err / n;
  m.sqnr_db = err == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(sig / err);
  m.max_abs_error = worst;
  return m;
}

} // namespace lowbit
