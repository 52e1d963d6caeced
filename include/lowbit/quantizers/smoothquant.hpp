// SmoothQuant (Xiao et al., 2023): migrate quantization difficulty from activations to weights
// with a per-input-channel factor s_j = max|X_j|^alpha / max|W_j|^(1 - alpha). The weights'
// columns are multiplied by s and the activations' channels divided by it (folded into the
// previous operation, e.g. a LayerNorm's gamma and beta), which leaves X * W^T unchanged:
// (X diag(s)^-1)(W diag(s))^T = X W^T.
//
// Floors, as the reference implementation: max|W_j| and s_j are clamped below at `floor`.
// Beyond it: a channel that calibration never saw non-zero gets s_j = 1 (no migration), since
// dividing by the floor would blow up any value it takes later.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/quantizers/calibration.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

// Smoothing factors for a layer with weights w (rows x cols) and per-channel activation
// absmax act_absmax (cols, from activation_stats). alpha in [0, 1]: 0 keeps activations as
// they are, 1 moves all of their range into the weights (0.5 is the paper's default).
inline std::vector<float> smoothing_factors(std::span<const float> act_absmax, std::span<const float> w,
                                            std::size_t rows, std::size_t cols, float alpha = 0.5f,
                                            float floor = 1e-5f) {
  detail::check_shape("smoothing_factors", w.size(), rows, cols);
  if (act_absmax.size() != cols) detail::throw_size_mismatch("smoothing_factors: act_absmax", act_absmax.size(), cols);
  if (!(alpha >= 0.0f && alpha <= 1.0f))
    throw invalid_argument("smoothing_factors: alpha " + std::to_string(alpha) + " is outside [0, 1]");
  if (!(floor > 0.0f) || !std::isfinite(floor))
    throw invalid_argument("smoothing_factors: floor " + std::to_string(floor) + " must be positive and finite");
  std::vector<float> wmax(cols, 0.0f);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const float v = w[r * cols + c];
      if (!std::isfinite(v))
        throw invalid_argument("smoothing_factors: weight (" + std::to_string(r) + ", " + std::to_string(c) + ") is " +
                               std::to_string(v));
      wmax[c] = std::max(wmax[c], std::fabs(v));
    }
  std::vector<float> s(cols);
  for (std::size_t c = 0; c < cols; ++c) {
    const float a = act_absmax[c];
    if (!std::isfinite(a) || a < 0.0f)
      throw invalid_argument("smoothing_factors: activation absmax of channel " + std::to_string(c) + " is " +
                             std::to_string(a));
    if (a == 0.0f) {
      s[c] = 1.0f;
      continue;
    }
    const double f =
        std::pow(static_cast<double>(a), alpha) / std::pow(static_cast<double>(std::max(wmax[c], floor)), 1.0 - alpha);
    s[c] = std::max(static_cast<float>(f), floor);
  }
  return s;
}

// W <- W diag(s): column j of the rows x cols weights times s_j.
inline void fold_smoothing_into_weights(std::span<float> w, std::size_t rows, std::size_t cols,
                                        std::span<const float> s) {
  detail::check_shape("fold_smoothing_into_weights", w.size(), rows, cols);
  if (s.size() != cols) detail::throw_size_mismatch("fold_smoothing_into_weights: factors", s.size(), cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) w[r * cols + c] *= s[c];
}

// X <- X diag(s)^-1 for tokens x cols activations (what folding into the previous op does).
inline void smooth_activations(std::span<float> x, std::size_t tokens, std::size_t cols, std::span<const float> s) {
  if (x.size() != tokens * cols) detail::throw_size_mismatch("smooth_activations: X", x.size(), tokens * cols);
  if (s.size() != cols) detail::throw_size_mismatch("smooth_activations: factors", s.size(), cols);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t c = 0; c < cols; ++c) x[t * cols + c] /= s[c];
}

// W8A8 as SmoothQuant evaluates it: int8 weights per output channel, int8 activations per token
// (dynamic, absmax), both symmetric with fp32 scales.
using w8a8_weight_scheme = int_sym<8, 0, fp32_scale, granularity::row>;
using w8a8_activation_scheme = int_sym<8, 0, fp32_scale, granularity::row>; // a row of X is a token

// Fake-quantized W8A8 linear layer: Y = fq_token(X) * fq_channel(W)^T (tokens x rows).
inline std::vector<float> w8a8_linear(std::span<const float> x, std::size_t tokens, std::span<const float> w,
                                      std::size_t rows, std::size_t cols) {
  detail::check_shape("w8a8_linear: W", w.size(), rows, cols);
  detail::check_shape("w8a8_linear: X", x.size(), tokens, cols);
  std::vector<float> xq(x.size()), wq(w.size());
  fake_quant<w8a8_activation_scheme>(x, tokens, cols, xq);
  fake_quant<w8a8_weight_scheme>(w, rows, cols, wq);
  return reference::linear(xq, tokens, wq, rows, cols);
}

} // namespace lowbit
