// Shared data and independent references for the quantizer tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "lowbit/formats/concepts.hpp"

namespace lowbit_test {

inline std::vector<float> gaussian(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

inline std::vector<float> student_t3(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = t(rng);
  return v;
}

inline std::vector<float> uniform(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// The distinct values a format's encoder can produce, increasing (codes it never produces, such
// as -8 of int4_sym, and NaN codes left out; -0 merged with +0).
template <class F>
std::vector<double> reachable_levels() {
  std::vector<double> v;
  for (unsigned c = 0; c < lowbit::code_count<F>; ++c) {
    const auto code = static_cast<typename F::storage>(c);
    const double d = F::decode_double(code);
    if (!F::is_nan(code) && F::decode_double(F::encode(d)) == d) v.push_back(d + 0.0);
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

inline double sse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return s;
}

// E[(X - Q(X))^2] for X ~ N(0,1), Q = nearest of `levels` (sorted) times `step`, by composite
// Simpson integration over [-10, 10] with a brute-force nearest-level search: slow and
// independent of the library's closed-form cell integrals.
inline double gaussian_mse_simpson(const std::vector<double>& levels, double step, int intervals = 200000) {
  const double a = -10, b = 10, h = (b - a) / intervals;
  const double inv = 1 / std::sqrt(2 * 3.14159265358979323846);
  const auto f = [&](double x) {
    double best = 1e300;
    for (double v : levels) best = std::min(best, std::fabs(x - v * step));
    return best * best * std::exp(-x * x / 2) * inv;
  };
  double s = f(a) + f(b);
  for (int i = 1; i < intervals; ++i) s += f(a + i * h) * (i % 2 ? 4 : 2);
  return s * h / 3;
}

// Minimum over x in [lo, hi] of a function by a scan of `points` then golden section.
inline double minimize(const std::function<double(double)>& f, double lo, double hi, int points, double* at = nullptr) {
  double best = lo, fb = f(lo);
  for (int i = 1; i <= points; ++i) {
    const double x = lo + (hi - lo) * i / points, fx = f(x);
    if (fx < fb) best = x, fb = fx;
  }
  const double d = (hi - lo) / points;
  double l = std::max(lo, best - d), r = std::min(hi, best + d);
  const double g = (std::sqrt(5.0) - 1) / 2;
  for (int it = 0; it < 60; ++it) {
    const double x1 = r - g * (r - l), x2 = l + g * (r - l);
    if (f(x1) < f(x2))
      r = x2;
    else
      l = x1;
  }
  if (at) *at = (l + r) / 2;
  return f((l + r) / 2);
}

} // namespace lowbit_test
