// linear() on a qmatrix where AVX2 is not compiled (LOWBIT_NO_SIMD or another ISA): the
// references' arithmetic (kernels/reference.hpp), bit for bit, with rows split across threads
// (core/threading.hpp) and scratch from the caller's workspace, so that a call with a workspace
// does not allocate once it has grown.
#pragma once

#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace lowbit::kernels::scalar {

// Floats of per-thread scratch linear_int8 needs for W: a row's codes and its int8 values.
template <int8_dot_scheme S>
std::size_t int8_scratch_size(const qmatrix<S>& w) noexcept {
  return (w.padded_cols() + reference::detail::int8_row_size(w) + sizeof(float) - 1) / sizeof(float);
}

// The integer-dot path on activations quantized by quantize_activations<S>: reference::linear_int8
// bit for bit. scratch holds max_threads() * int8_scratch_size(w) floats.
template <int8_dot_scheme S>
void linear_int8(const qmatrix<S>& w, const int8_activations& a, std::span<float> y, std::span<const float> bias,
                 float* scratch) {
  const scale_reader<S> ws(w, int8_value_mult<S>());
  parallel_rows(w.rows(), w.rows() * w.cols() * a.tokens, [&](std::size_t r0, std::size_t r1) {
    auto* codes =
        reinterpret_cast<std::uint8_t*>(scratch + static_cast<std::size_t>(thread_index()) * int8_scratch_size(w));
    auto* wv = reinterpret_cast<std::int8_t*>(codes + w.padded_cols());
    for (std::size_t r = r0; r < r1; ++r) {
      reference::detail::int8_weight_row(w, r, std::span<std::uint8_t>(codes, w.padded_cols()), wv);
      reference::detail::int8_row_outputs(w, r, wv, a, ws, y, bias);
    }
  });
}

// Floats of per-thread scratch linear_float needs for W: a dequantized row and its codes.
template <scheme S>
std::size_t float_scratch_size(const qmatrix<S>& w) noexcept {
  return w.cols() + (w.padded_cols() + sizeof(float) - 1) / sizeof(float);
}

// The weight-only float path: reference::linear_dequantized bit for bit (each row dequantized as
// dequantize() does, sums in double from the bias). x: tokens rows of kx >= cols floats (as
// avx2::linear_float takes them; columns past cols are not read); scratch holds max_threads() *
// float_scratch_size(w) floats.
template <scheme S>
void linear_float(const qmatrix<S>& w, const float* x, std::size_t tokens, std::size_t kx, std::span<float> y,
                  std::span<const float> bias, float* scratch) {
  const std::size_t rows = w.rows(), cols = w.cols();
  parallel_rows(rows, rows * cols * tokens, [&](std::size_t r0, std::size_t r1) {
    float* row = scratch + static_cast<std::size_t>(thread_index()) * float_scratch_size(w);
    const std::span<std::uint8_t> codes(reinterpret_cast<std::uint8_t*>(row + cols), w.padded_cols());
    for (std::size_t r = r0; r < r1; ++r) {
      lowbit::detail::dequantize_row(w, r, codes, row);
      for (std::size_t t = 0; t < tokens; ++t) {
        double acc = bias.empty() ? 0.0 : bias[r];
        for (std::size_t k = 0; k < cols; ++k) acc += static_cast<double>(x[t * kx + k]) * row[k];
        y[t * rows + r] = static_cast<float>(acc);
      }
    }
  });
}

} // namespace lowbit::kernels::scalar
