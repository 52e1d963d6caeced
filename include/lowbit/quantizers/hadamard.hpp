// Hadamard rotation (QuaRot / QuIP# / QuEST): an orthonormal, optionally
// randomized rotation Q = D * blockdiag(H_b) / sqrt(b), with H_b the Sylvester
// Hadamard matrix of a power-of-two size b and D a diagonal of +-1 signs drawn
// from a seed. Applied to the rows of both the activations X and the weights W
// it leaves X * W^T unchanged, (XQ)(WQ)^T = X W^T, while spreading outliers
// across coordinates. The fast Walsh-Hadamard transform is O(n log n) and in
// place; the AVX2 path performs the same additions in the same order as the
// scalar one, so the two are bit-identical.
#pragma once

#include "lowbit/core/bits.hpp"
#include "lowbit/core/config.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/threading.hpp"

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#if LOWBIT_HAS_AVX2
#include "lowbit/quantizers/avx2/hadamard.hpp"
#endif

namespace lowbit {

namespace reference {

// Unnormalized in-place Walsh-Hadamard transform, Sylvester order: x <- H_n x (float, or
// double for the Hessian rotation of gptq.hpp).
template <class T>
void fwht_unnormalized(T* x, std::size_t n) noexcept {
  for (std::size_t h = 1; h < n; h *= 2)
    for (std::size_t i = 0; i < n; i += 2 * h)
      for (std::size_t j = i; j < i + h; ++j) {
        const T a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
}

} // namespace reference

namespace detail {

[[noreturn]] inline void not_power_of_two(const char* fn, std::size_t n) {
  throw invalid_argument(std::string(fn) + ": size " + std::to_string(n) + " is not a power of two");
}

// Always inlined, so that the compiler sees that a bad size never reaches the transform (g++ -O2
// -Warray-bounds otherwise flags the 8-float loads where a caller passes one on purpose).
LOWBIT_ALWAYS_INLINE inline void check_power_of_two(const char* fn, std::size_t n) {
  if (n == 0 || !std::has_single_bit(n)) not_power_of_two(fn, n);
}

} // namespace detail

// Orthonormal in-place Walsh-Hadamard transform: x <- H_n x / sqrt(n). n must
// be a power of two (else lowbit::invalid_argument). Its own inverse.
inline void fwht(std::span<float> x) {
  detail::check_power_of_two("fwht", x.size());
#if LOWBIT_HAS_AVX2
  if (x.size() >= 8)
    avx2::fwht_unnormalized(x.data(), x.size());
  else
    reference::fwht_unnormalized(x.data(), x.size());
#else
  reference::fwht_unnormalized(x.data(), x.size());
#endif
  const float norm = 1.0f / std::sqrt(static_cast<float>(x.size()));
  for (float& v : x) v *= norm;
}

// Q = D * blockdiag(H_b, ..., H_b) / sqrt(b) for vectors of size n. The block b
// is the largest power of two dividing n unless given (it must divide n), so
// 11008 = 43 * 256 and 14336 = 7 * 2048 work; seed 0 means no random signs (D =
// I).
class hadamard_rotation {
public:
  explicit hadamard_rotation(std::size_t n, std::uint64_t seed = 0, std::size_t block = 0) : n_(n) {
    if (n == 0) throw invalid_argument("hadamard_rotation: size 0, expected at least 1");
    block_ = block ? block : n & (~n + 1); // lowest set bit
    detail::check_power_of_two("hadamard_rotation: block", block_);
    if (n % block_)
      throw invalid_argument("hadamard_rotation: block " + std::to_string(block_) + " does not divide size " +
                             std::to_string(n));
    if (seed) {
      signs_.resize(n);
      for (std::size_t i = 0; i < n; ++i) signs_[i] = (random_bits(seed, i) & 1u) ? -1.0f : 1.0f;
    }
  }

  std::size_t size() const noexcept { return n_; }
  std::size_t block() const noexcept { return block_; }
  bool randomized() const noexcept { return !signs_.empty(); }
  // The random signs D (empty when not randomized).
  std::span<const float> signs() const noexcept { return signs_; }

  // x <- x Q (x a row vector of size n): signs, then the blockwise transform.
  void apply(std::span<float> x) const {
    check("hadamard_rotation::apply", x.size());
    if (!signs_.empty())
      for (std::size_t i = 0; i < n_; ++i) x[i] *= signs_[i];
    for (std::size_t b = 0; b < n_; b += block_) fwht(x.subspan(b, block_));
  }
  // x <- x Q^T: the blockwise transform, then the signs.
  void apply_inverse(std::span<float> x) const {
    check("hadamard_rotation::apply_inverse", x.size());
    for (std::size_t b = 0; b < n_; b += block_) fwht(x.subspan(b, block_));
    if (!signs_.empty())
      for (std::size_t i = 0; i < n_; ++i) x[i] *= signs_[i];
  }
  // Every row of a row-major rows x n matrix (weights offline, activations
  // online).
  void apply_rows(std::span<float> m, std::size_t rows) const { rows_impl(m, rows, false); }
  void apply_inverse_rows(std::span<float> m, std::size_t rows) const { rows_impl(m, rows, true); }

private:
  void check(const char* fn, std::size_t size) const {
    if (size != n_) detail::throw_size_mismatch(fn, size, n_);
  }
  void rows_impl(std::span<float> m, std::size_t rows, bool inverse) const {
    if (m.size() != rows * n_) detail::throw_size_mismatch("hadamard_rotation: matrix", m.size(), rows * n_);
    parallel_rows(rows, m.size(), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        const auto row = m.subspan(r * n_, n_);
        inverse ? apply_inverse(row) : apply(row);
      }
    });
  }

  std::size_t n_, block_;
  std::vector<float> signs_;
};

} // namespace lowbit
