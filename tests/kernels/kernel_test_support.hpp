// Helpers shared by the kernel tests (tests/kernels/*_test.cpp): thread counts, random quantized
// weights, test shapes, a bit-for-bit comparison of outputs, and the checks every packed entry
// point shares (fp16 / bf16 activations, bad input, all-zero weights).
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

// The thread counts the *_at_thread_counts helpers run at: 1, 2 and 3 with OpenMP; without it only
// 1 (set_threads cannot change anything there, so further runs would repeat the first), and the
// helpers then check the result against the reference once, not its independence of threads.
inline std::vector<int> thread_counts() {
#if defined(_OPENMP)
  return {1, 2, 3};
#else
  return {1};
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

// Runs run(got) at every thread_counts() entry, got pre-filled with -1 each time, and checks every
// result against want bit for bit (first_bit_difference); leaves 2 threads set.
template <class Run>
::testing::AssertionResult bit_exact_at_thread_counts(std::span<const float> want, Run&& run) {
  for (int threads : thread_counts()) {
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

// Runs build(tables) at every thread_counts() entry on a fresh Tables each time (LUT activation
// tables: blocks, q, scale, and xsum where Tables has one) and checks it against want: the same
// block count, the same entries, and the scales and sums bit for bit (first_bit_difference); leaves
// 2 threads set.
template <class Tables, class Build>
::testing::AssertionResult tables_equal_at_thread_counts(const Tables& want, Build&& build) {
  const auto same_floats = [](std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && first_bit_difference(a, b) == a.size();
  };
  for (int threads : thread_counts()) {
    set_threads(threads);
    Tables got;
    build(got);
    bool same_sums = true;
    if constexpr (requires { got.xsum; }) same_sums = same_floats(got.xsum, want.xsum);
    const char* what = got.blocks != want.blocks             ? "block count"
                       : got.q != want.q                     ? "entries"
                       : !same_floats(got.scale, want.scale) ? "scales"
                       : !same_sums                          ? "sums"
                                                             : nullptr;
    if (what != nullptr) {
      set_threads(2);
      return ::testing::AssertionFailure() << what << " differ at " << threads << " threads";
    }
  }
  set_threads(2);
  return ::testing::AssertionSuccess();
}

// lowbit::linear on the packed matrix w: on a qmatrix along path P, on the other packed layouts
// (which have one path each) P must be automatic.
template <lowbit::linear_path P = lowbit::linear_path::automatic, class T, class Packed>
void run_linear(std::span<const T> x, std::size_t tokens, const Packed& w, std::span<float> y,
                std::span<const float> bias = {}) {
  if constexpr (P == lowbit::linear_path::automatic)
    lowbit::linear(x, tokens, w, y, bias);
  else
    lowbit::linear<P>(x, tokens, w, y, bias);
}

// linear() (along P, run_linear) on a packed matrix with fp16 and bf16 activations gives bit for
// bit its result on the activations widened to fp32.
// One token on a LUT layout, whose linear() builds a copy of the tables on every thread inside the
// kernel's parallel region (kernels::avx2::run_lut_token): shapes large enough for that region
// (rows x cols >= 65536) with row and column tails, one workspace reused from a longer K to shorter
// ones, and a token with a NaN in its last block. pack(w) makes the layout, reference(x, w, y, bias)
// writes the spec's result, token(packed, x, y, bias, tables) runs the AVX2 token kernel (called
// where AVX2 is compiled); both linear() and it must match the reference bit for bit at 1-3
// threads. A K that is not W's throws.
template <class S, class Tables, class Pack, class Reference, class Token>
void expect_one_token_bit_exact(std::uint32_t seed, Pack&& pack, Reference&& reference,
                                [[maybe_unused]] Token&& token) {
  lowbit::linear_workspace ws;
  // 77 x 8576: rows that the permute layouts store in column runs (lut_matrix::run_blocks: 3 runs;
  // ternary_lut_matrix::run_blocks: 9), the last run short, over the tiles split unevenly between threads.
  const shape shapes[] = {{517, 4096, 1}, {300, 1000, 1}, {1000, 100, 1}, {65, 1057, 1}, {129, 700, 1}, {77, 8576, 1}};
  for (const shape& s : shapes) {
    const auto w = random_weights<S>(s.rows, s.cols, seed);
    const auto packed = pack(w);
    auto x = gaussian(s.cols, seed + 1);
    if (s.rows == 129) x[s.cols - 3] = std::numeric_limits<float>::quiet_NaN();
    const auto bias = uniform(s.rows, seed + 2);
    std::vector<float> want(s.rows);
    reference(std::span<const float>(x), w, std::span<float>(want), std::span<const float>(bias));
    ASSERT_TRUE(bit_exact_at_thread_counts(
        want, [&](std::span<float> got) { lowbit::linear(std::span<const float>(x), 1, packed, got, bias, &ws); }))
        << lowbit::scheme_name<S>() << " rows " << s.rows << " cols " << s.cols;
#if LOWBIT_HAS_AVX2
    std::vector<Tables> tables;
    ASSERT_TRUE(bit_exact_at_thread_counts(
        want, [&](std::span<float> got) { token(packed, std::span<const float>(x), got, bias, tables); }))
        << lowbit::scheme_name<S>() << " avx2, rows " << s.rows << " cols " << s.cols;
#endif
  }
  std::vector<float> y(10);
  EXPECT_THROW(lowbit::linear(std::span<const float>(gaussian(99, seed + 3)), 1, pack(random_weights<S>(10, 100, seed)),
                              std::span<float>(y), {}, &ws),
               lowbit::invalid_argument);
}

template <lowbit::linear_path P = lowbit::linear_path::automatic, class Packed>
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
  run_linear<P>(std::span<const half>(xh), tokens, w, std::span<float>(a));
  run_linear<P>(std::span<const float>(xhf), tokens, w, std::span<float>(b));
  EXPECT_EQ(first_bit_difference(a, b), a.size()) << "fp16, tokens " << tokens;
  run_linear<P>(std::span<const bfloat16>(xb), tokens, w, std::span<float>(a));
  run_linear<P>(std::span<const float>(xbf), tokens, w, std::span<float>(b));
  EXPECT_EQ(first_bit_difference(a, b), a.size()) << "bf16, tokens " << tokens;
}

// How expect_bad_input_handled compares a path with its spec: bit for bit (tolerance 0), or, for a
// path that matches its spec only within fp32 rounding, finite outputs within tolerance * (1 +
// |want|) and non-finite ones alike (NaN where the spec gives NaN, inf of the same sign where it
// gives inf); and whether a non-finite activation must make every output of its token NaN (the
// integer-dot and LUT paths) or only non-finite (the float path: inf x w is +-inf).
struct bad_input_check {
  double tolerance = 0.0;
  bool nan_token = true;
};

// The bad input every packed entry point handles the same way: wrong X, Y and bias sizes and an
// empty (default-constructed) matrix throw lowbit::invalid_argument; zero tokens write nothing; a
// NaN or inf activation makes its token's outputs NaN (non-finite where !check.nan_token), as
// `spec(x, tokens, y)` computes them, and leaves the other token's finite; all-zero activations
// give exactly the bias. Along path P on a qmatrix (run_linear).
template <lowbit::linear_path P = lowbit::linear_path::automatic, class Packed, class Spec>
void expect_bad_input_handled(const Packed& w, Spec&& spec, std::uint32_t seed, bad_input_check check = {}) {
  using lowbit::invalid_argument;
  const std::size_t rows = w.rows(), cols = w.cols();
  std::vector<float> x(2 * cols, 0.5f), y(2 * rows);
  const auto run = [](std::span<const float> xs, std::size_t tokens, const Packed& m, std::span<float> ys,
                      std::span<const float> bias = {}) { run_linear<P>(xs, tokens, m, ys, bias); };
  EXPECT_THROW(run(std::span<const float>(x).first(cols + 1), 1, w, std::span<float>(y).first(rows)), invalid_argument);
  EXPECT_THROW(run(std::span<const float>(x).first(cols), 1, w, std::span<float>(y).first(rows + 1)), invalid_argument);
  std::vector<float> bias(rows + 1);
  EXPECT_THROW(run(std::span<const float>(x).first(cols), 1, w, std::span<float>(y).first(rows), bias),
               invalid_argument);
  const Packed empty;
  EXPECT_THROW(run(std::span<const float>(x).first(cols), 1, empty, std::span<float>(y).first(rows)), invalid_argument);
  run(std::span<const float>(), 0, w, std::span<float>());
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto xb = gaussian(2 * cols, seed);
    xb[cols + 5] = bad;
    std::vector<float> got(2 * rows), want(2 * rows);
    run(std::span<const float>(xb), 2, w, std::span<float>(got));
    spec(std::span<const float>(xb), std::size_t{2}, std::span<float>(want));
    if (check.tolerance == 0.0) {
      EXPECT_EQ(first_bit_difference(got, want), got.size()) << "activation " << bad;
    } else {
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (std::isfinite(want[i]))
          EXPECT_NEAR(got[i], want[i], check.tolerance * (1.0 + std::fabs(want[i])))
              << "activation " << bad << " at " << i;
        else if (std::isnan(want[i]))
          EXPECT_TRUE(std::isnan(got[i])) << "activation " << bad << " at " << i;
        else
          EXPECT_EQ(got[i], want[i]) << "activation " << bad << " at " << i;
      }
    }
    for (std::size_t r = 0; r < rows; ++r) {
      EXPECT_TRUE(std::isfinite(got[r])) << "activation " << bad << " row " << r;
      if (check.nan_token)
        EXPECT_TRUE(std::isnan(got[rows + r])) << "activation " << bad << " row " << r;
      else
        EXPECT_FALSE(std::isfinite(got[rows + r])) << "activation " << bad << " row " << r;
    }
  }
  const auto b = uniform(rows, seed + 1);
  std::vector<float> zx(cols, 0.0f), got(rows);
  run(std::span<const float>(zx), 1, w, std::span<float>(got), b);
  for (std::size_t r = 0; r < rows; ++r) EXPECT_EQ(got[r], b[r]);
}

// A packed matrix of all-zero weights (make it from lowbit::quantize<S> of zeros): linear() along P
// gives exactly the bias, bit for bit, for every token, and zeros without a bias.
template <lowbit::linear_path P = lowbit::linear_path::automatic, class Packed>
void expect_zero_weights_give_the_bias(const Packed& w, std::size_t tokens, std::uint32_t seed) {
  const std::size_t rows = w.rows(), cols = w.cols();
  const auto x = gaussian(tokens * cols, seed);
  const auto b = uniform(rows, seed + 1);
  std::vector<float> got(tokens * rows, -1.0f), want(tokens * rows);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = b[i % rows];
  run_linear<P>(std::span<const float>(x), tokens, w, std::span<float>(got), b);
  EXPECT_EQ(first_bit_difference(got, want), got.size()) << "tokens " << tokens;
  run_linear<P>(std::span<const float>(x), tokens, w, std::span<float>(got));
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], 0.0f) << "tokens " << tokens << " at " << i;
}

} // namespace lowbit_test
