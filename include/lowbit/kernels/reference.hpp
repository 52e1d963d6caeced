// Scalar reference of the linear layer Y = X * W^T (+ bias): the executable spec the SIMD
// kernels are tested against, and the float product quantizer tests measure error with.
// X is tokens x K, W is N x K (row-major, K the reduction axis), Y is tokens x N; sums are
// accumulated in double and rounded once.
#pragma once

#include "lowbit/core/error.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace lowbit::reference {

inline void linear(std::span<const float> x, std::size_t tokens, std::span<const float> w, std::size_t rows,
                   std::size_t cols, std::span<float> y, std::span<const float> bias = {}) {
  if (x.size() != tokens * cols) detail::throw_size_mismatch("reference::linear: X", x.size(), tokens * cols);
  if (w.size() != rows * cols) detail::throw_size_mismatch("reference::linear: W", w.size(), rows * cols);
  if (y.size() != tokens * rows) detail::throw_size_mismatch("reference::linear: Y", y.size(), tokens * rows);
  if (!bias.empty() && bias.size() != rows) detail::throw_size_mismatch("reference::linear: bias", bias.size(), rows);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t n = 0; n < rows; ++n) {
      double acc = bias.empty() ? 0.0 : bias[n];
      for (std::size_t k = 0; k < cols; ++k) acc += static_cast<double>(x[t * cols + k]) * w[n * cols + k];
      y[t * rows + n] = static_cast<float>(acc);
    }
}

inline std::vector<float> linear(std::span<const float> x, std::size_t tokens, std::span<const float> w,
                                 std::size_t rows, std::size_t cols, std::span<const float> bias = {}) {
  std::vector<float> y(tokens * rows);
  linear(x, tokens, w, rows, cols, y, bias);
  return y;
}

} // namespace lowbit::reference
