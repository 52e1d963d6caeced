// Helpers shared by the kernel tests (linear_test.cpp, lut_test.cpp): thread counts, random
// quantized weights, test shapes and a bit-for-bit comparison of outputs.
#pragma once

#include "lowbit/schemes/all.hpp"

#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace lowbit_test {

inline void set_threads(int n) {
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

struct shape {
  std::size_t rows, cols, tokens;
};

// A rows x cols Student-t(3) matrix quantized with S's default policy.
template <class S>
lowbit::qmatrix<S> random_weights(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  return lowbit::quantize<S>(student_t3(rows * cols, seed), rows, cols);
}

// The first index where got and want differ in their bits (NaN payloads and signed zeros
// included), or got.size() when they agree everywhere; the sizes must match.
inline std::size_t first_bit_difference(std::span<const float> got, std::span<const float> want) {
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::bit_cast<std::uint32_t>(got[i]) != std::bit_cast<std::uint32_t>(want[i])) return i;
  return got.size();
}

// Runs run(got) at 1, 2 and 3 threads, got pre-filled with -1 each time, and checks every result
// against want bit for bit (first_bit_difference); leaves 2 threads set.
template <class Run>
::testing::AssertionResult bit_exact_at_thread_counts(std::span<const float> want, Run&& run) {
  for (int threads : {1, 2, 3}) {
    set_threads(threads);
    std::vector<float> got(want.size(), -1.0f);
    run(std::span<float>(got));
    const std::size_t i = first_bit_difference(got, want);
    if (i != got.size()) {
      set_threads(2);
      return ::testing::AssertionFailure()
             << "threads " << threads << " at " << i << ": " << got[i] << " vs " << want[i];
    }
  }
  set_threads(2);
  return ::testing::AssertionSuccess();
}

} // namespace lowbit_test
