// Helpers shared by the kernel tests (linear_test.cpp, lut_test.cpp): thread counts, random
// quantized weights, test shapes and a bit-for-bit comparison of outputs.
#pragma once

#include "lowbit/kernels/linear.hpp"
#include "lowbit/schemes/all.hpp"

#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
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

// Runs build(tables) at 1, 2 and 3 threads on a fresh Tables each time (LUT activation tables:
// blocks, q, scale) and checks it against want: the same block count, the same entries, and the
// scales bit for bit (first_bit_difference); leaves 2 threads set.
template <class Tables, class Build>
::testing::AssertionResult tables_equal_at_thread_counts(const Tables& want, Build&& build) {
  for (int threads : {1, 2, 3}) {
    set_threads(threads);
    Tables got;
    build(got);
    const char* what = got.blocks != want.blocks                                         ? "block count"
                       : got.q != want.q                                                 ? "entries"
                       : first_bit_difference(got.scale, want.scale) != got.scale.size() ? "scales"
                                                                                         : nullptr;
    if (what != nullptr) {
      set_threads(2);
      return ::testing::AssertionFailure() << what << " differ at " << threads << " threads";
    }
  }
  set_threads(2);
  return ::testing::AssertionSuccess();
}

// linear() on a packed matrix with fp16 and bf16 activations gives bit for bit its result on the
// activations widened to fp32.
template <class Packed>
void expect_half_and_bf16_match_their_widening(const Packed& w, std::size_t tokens, std::uint32_t seed) {
  using lowbit::bfloat16;
  using lowbit::half;
  const std::size_t rows = w.rows(), cols = w.cols();
  const auto x = gaussian(tokens * cols, seed);
  std::vector<half> xh(x.size());
  std::vector<bfloat16> xb(x.size());
  std::vector<float> xhf(x.size()), xbf(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    xh[i] = half(x[i]);
    xb[i] = bfloat16(x[i]);
    xhf[i] = static_cast<float>(xh[i]);
    xbf[i] = static_cast<float>(xb[i]);
  }
  std::vector<float> a(tokens * rows), b(tokens * rows);
  lowbit::linear(std::span<const half>(xh), tokens, w, std::span<float>(a));
  lowbit::linear(std::span<const float>(xhf), tokens, w, std::span<float>(b));
  EXPECT_EQ(first_bit_difference(a, b), a.size());
  lowbit::linear(std::span<const bfloat16>(xb), tokens, w, std::span<float>(a));
  lowbit::linear(std::span<const float>(xbf), tokens, w, std::span<float>(b));
  EXPECT_EQ(first_bit_difference(a, b), a.size());
}

// The bad input every packed entry point handles the same way: wrong X, Y and bias sizes and an
// empty (default-constructed) matrix throw lowbit::invalid_argument; zero tokens write nothing; a
// NaN or inf activation makes its token's outputs NaN, bit for bit as `spec(x, tokens, y)`
// computes them, and leaves the other token's finite; all-zero activations give exactly the bias.
template <class Packed, class Spec>
void expect_bad_input_handled(const Packed& w, Spec&& spec, std::uint32_t seed) {
  using lowbit::invalid_argument;
  using lowbit::linear;
  const std::size_t rows = w.rows(), cols = w.cols();
  std::vector<float> x(2 * cols, 0.5f), y(2 * rows);
  EXPECT_THROW(linear(std::span<const float>(x).first(cols + 1), 1, w, std::span<float>(y).first(rows)),
               invalid_argument);
  EXPECT_THROW(linear(std::span<const float>(x).first(cols), 1, w, std::span<float>(y).first(rows + 1)),
               invalid_argument);
  std::vector<float> bias(rows + 1);
  EXPECT_THROW(linear(std::span<const float>(x).first(cols), 1, w, std::span<float>(y).first(rows), bias),
               invalid_argument);
  const Packed empty;
  EXPECT_THROW(linear(std::span<const float>(x).first(cols), 1, empty, std::span<float>(y).first(rows)),
               invalid_argument);
  linear(std::span<const float>(), 0, w, std::span<float>());
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto xb = gaussian(2 * cols, seed);
    xb[cols + 5] = bad;
    std::vector<float> got(2 * rows), want(2 * rows);
    linear(std::span<const float>(xb), 2, w, std::span<float>(got));
    spec(std::span<const float>(xb), std::size_t{2}, std::span<float>(want));
    EXPECT_EQ(first_bit_difference(got, want), got.size());
    for (std::size_t r = 0; r < rows; ++r) {
      EXPECT_TRUE(std::isfinite(got[r]));
      EXPECT_TRUE(std::isnan(got[rows + r]));
    }
  }
  const auto b = uniform(rows, seed + 1);
  std::vector<float> zx(cols, 0.0f), got(rows);
  linear(std::span<const float>(zx), 1, w, std::span<float>(got), b);
  for (std::size_t r = 0; r < rows; ++r) EXPECT_EQ(got[r], b[r]);
}

} // namespace lowbit_test
