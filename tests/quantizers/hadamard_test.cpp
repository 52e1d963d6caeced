// Hadamard rotation: the fast transform against an explicit Sylvester matrix,
// orthonormality, inverse, the rotated-product identity, and the Gaussianizing
// effect on heavy tails.
#include "lowbit/quantizers/hadamard.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

namespace {

using namespace lowbit;

std::vector<float> random_vector(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  return x;
}

double norm2(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return s;
}

TEST(fwht, equals_the_explicit_sylvester_matrix_product) {
  for (std::size_t n = 1; n <= 128; n *= 2) {
    const auto x = random_vector(n, static_cast<std::uint32_t>(n));
    auto y = x;
    fwht(y);
    for (std::size_t i = 0; i < n; ++i) {
      double want = 0; // H_ij = (-1)^popcount(i & j) / sqrt(n)
      for (std::size_t j = 0; j < n; ++j) want += (std::popcount(i & j) % 2 ? -1.0 : 1.0) * x[j];
      want /= std::sqrt(static_cast<double>(n));
      EXPECT_NEAR(y[i], want, 1e-5 * std::sqrt(static_cast<double>(n))) << "n=" << n << " i=" << i;
    }
  }
}

TEST(fwht, simd_is_bit_identical_to_the_reference) {
  for (std::size_t n = 1; n <= (1u << 16); n *= 2) {
    const auto x = random_vector(n, 7);
    auto fast = x, slow = x;
    fwht(fast);
    reference::fwht_unnormalized(slow.data(), n);
    const float norm = 1.0f / std::sqrt(static_cast<float>(n));
    for (float& v : slow) v *= norm;
    ASSERT_EQ(fast, slow) << "n=" << n;
  }
}

TEST(fwht, is_orthonormal_and_its_own_inverse_for_every_size) {
  for (std::size_t n = 1; n <= (1u << 16); n *= 2) {
    const auto x = random_vector(n, 3);
    auto y = x;
    fwht(y);
    EXPECT_NEAR(norm2(y), norm2(x), 1e-4 * norm2(x)) << "norm preserved, n=" << n;
    fwht(y);
    for (std::size_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], x[i], 1e-4) << "n=" << n;
  }
  // Columns of the matrix are orthonormal: check H H^T = I for small n from
  // unit vectors.
  for (std::size_t n = 2; n <= 64; n *= 2) {
    std::vector<std::vector<float>> cols(n, std::vector<float>(n, 0.0f));
    for (std::size_t j = 0; j < n; ++j) {
      cols[j][j] = 1.0f;
      fwht(cols[j]);
    }
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t b = 0; b < n; ++b) {
        double dot = 0;
        for (std::size_t i = 0; i < n; ++i) dot += static_cast<double>(cols[a][i]) * cols[b][i];
        EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-6);
      }
  }
}

TEST(fwht, rejects_sizes_that_are_not_powers_of_two) {
  std::vector<float> x(12);
  EXPECT_THROW(fwht(x), lowbit::invalid_argument);
  std::vector<float> empty;
  EXPECT_THROW(fwht(empty), lowbit::invalid_argument);
}

TEST(hadamard_rotation, block_diagonal_sizes_and_bad_blocks) {
  EXPECT_EQ(hadamard_rotation(11008).block(), 256u);
  EXPECT_EQ(hadamard_rotation(14336).block(), 2048u);
  EXPECT_EQ(hadamard_rotation(4096).block(), 4096u);
  EXPECT_EQ(hadamard_rotation(4096, 0, 128).block(), 128u);
  EXPECT_THROW(hadamard_rotation(4096, 0, 96), lowbit::invalid_argument);
  EXPECT_THROW(hadamard_rotation(100, 0, 64), lowbit::invalid_argument);
  EXPECT_THROW(hadamard_rotation(0), lowbit::invalid_argument);
  hadamard_rotation r(64);
  std::vector<float> wrong(63);
  EXPECT_THROW(r.apply(wrong), lowbit::invalid_argument);
}

// (X Q)(W Q)^T = X W^T, for plain and randomized rotations and block-diagonal
// sizes.
TEST(hadamard_rotation, rotated_product_identity_and_inverse) {
  for (std::size_t n : {std::size_t{64}, std::size_t{11008}, std::size_t{768}}) {
    for (std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{42}}) {
      const hadamard_rotation q(n, seed);
      const std::size_t rows_x = 3, rows_w = 4;
      auto x = random_vector(rows_x * n, 1), w = random_vector(rows_w * n, 2);
      std::vector<double> before(rows_x * rows_w, 0.0), after(rows_x * rows_w, 0.0);
      for (std::size_t i = 0; i < rows_x; ++i)
        for (std::size_t j = 0; j < rows_w; ++j)
          for (std::size_t k = 0; k < n; ++k)
            before[i * rows_w + j] += static_cast<double>(x[i * n + k]) * w[j * n + k];
      const auto x0 = x;
      q.apply_rows(x, rows_x);
      q.apply_rows(w, rows_w);
      for (std::size_t i = 0; i < rows_x; ++i)
        for (std::size_t j = 0; j < rows_w; ++j)
          for (std::size_t k = 0; k < n; ++k) after[i * rows_w + j] += static_cast<double>(x[i * n + k]) * w[j * n + k];
      for (std::size_t e = 0; e < before.size(); ++e)
        EXPECT_NEAR(after[e], before[e], 1e-4 * std::sqrt(static_cast<double>(n))) << "n=" << n << " seed=" << seed;
      q.apply_inverse_rows(x, rows_x);
      for (std::size_t e = 0; e < x.size(); ++e) ASSERT_NEAR(x[e], x0[e], 1e-5) << "inverse round trip";
    }
  }
}

double kurtosis(const std::vector<float>& x) {
  double m = 0, m2 = 0, m4 = 0;
  for (float v : x) m += v;
  m /= static_cast<double>(x.size());
  for (float v : x) {
    const double d = v - m;
    m2 += d * d;
    m4 += d * d * d * d;
  }
  m2 /= static_cast<double>(x.size());
  m4 /= static_cast<double>(x.size());
  return m4 / (m2 * m2);
}

TEST(hadamard_rotation, heavy_tailed_rows_come_out_near_gaussian) {
  const std::size_t n = 4096, rows = 16;
  std::mt19937 rng(9);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> w(rows * n);
  for (auto& v : w) v = t(rng);
  for (std::size_t i = 0; i < w.size(); i += 997) w[i] *= 50.0f; // a few outliers
  // Mean kurtosis of the rows (each row is rotated on its own, so each is
  // compared to itself).
  auto mean_row_kurtosis = [&] {
    double k = 0;
    for (std::size_t r = 0; r < rows; ++r)
      k += kurtosis(std::vector<float>(w.begin() + static_cast<std::ptrdiff_t>(r * n),
                                       w.begin() + static_cast<std::ptrdiff_t>((r + 1) * n)));
    return k / static_cast<double>(rows);
  };
  const double before = mean_row_kurtosis();
  hadamard_rotation(n, 1234).apply_rows(w, rows);
  const double after = mean_row_kurtosis();
  std::printf("mean row kurtosis of Student-t(3) rows with outliers: %.1f "
              "before, %.2f after rotation (Gaussian: 3)\n",
              before, after);
  EXPECT_GT(before, 20.0);
  // A row dominated by one outlier becomes Gaussian plus a +-c/sqrt(n) spread
  // (kurtosis 1), so the rotated rows sit near, not exactly at, 3.
  EXPECT_NEAR(after, 3.0, 0.5);
}

TEST(hadamard_rotation, random_signs_are_deterministic_per_seed) {
  auto a = random_vector(256, 5), b = a, c = a;
  hadamard_rotation(256, 7).apply(a);
  hadamard_rotation(256, 7).apply(b);
  hadamard_rotation(256, 8).apply(c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

} // namespace
