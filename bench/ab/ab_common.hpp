// Shared by the A/B harnesses (ab_lut.cpp, ab_float.cpp): standard normal test data. Not part of
// the library, so no lowbit namespace (the old side's -Dlowbit=lowbit_old leaves it alone).
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace lowbit_ab {
inline std::vector<float> gaussian(std::size_t count, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(count);
  for (auto& e : v) e = d(g);
  return v;
}
} // namespace lowbit_ab
