// Eigen interop: quantize any float matrix expression, get dequantized matrices back.
// Requires Eigen 3.4 (libeigen3-dev); the rest of lowbit does not. Matrices are W = N x K (rows
// = output channels, K the reduction axis) in any storage order; a column-major or strided
// argument is copied to a row-major temporary first.
#pragma once

#include "lowbit/schemes/qmatrix.hpp"

#include <Eigen/Core>

#include <span>

namespace lowbit {

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace detail {

template <class Fn>
auto with_row_major(const Eigen::Ref<const row_matrix>& w, Fn&& fn) {
  const auto rows = static_cast<std::size_t>(w.rows()), cols = static_cast<std::size_t>(w.cols());
  if (w.outerStride() == w.cols()) return fn(std::span<const float>(w.data(), rows * cols), rows, cols);
  const row_matrix copy = w;
  return fn(std::span<const float>(copy.data(), rows * cols), rows, cols);
}

} // namespace detail

template <scheme S>
qmatrix<S> quantize(const Eigen::Ref<const row_matrix>& w) {
  return detail::with_row_major(
      w, [](std::span<const float> x, std::size_t r, std::size_t c) { return quantize<S>(x, r, c); });
}

template <scheme S>
row_matrix dequantize_matrix(const qmatrix<S>& q) {
  row_matrix out(static_cast<Eigen::Index>(q.rows()), static_cast<Eigen::Index>(q.cols()));
  dequantize(q, std::span<float>(out.data(), q.rows() * q.cols()));
  return out;
}

template <scheme S>
row_matrix fake_quant(const Eigen::Ref<const row_matrix>& w) {
  row_matrix out(w.rows(), w.cols());
  detail::with_row_major(w, [&](std::span<const float> x, std::size_t r, std::size_t c) {
    fake_quant<S>(x, r, c, std::span<float>(out.data(), r * c));
    return 0;
  });
  return out;
}

} // namespace lowbit
