// Activations of the integer-dot path: each token's row of X is cut into the weight scheme's spans
// (32 codes, or 160 for base-3 ternary), permuted into kernel order and quantized to int8 with one
// absmax scale per span: s = amax / 127, q = round_nearest_even(x * (127 / amax)), |q| <= 127.
// All-zero spans get s = 0; a span holding NaN or inf gets s = NaN and q = 0, so the outputs of
// that token are NaN. Columns past K are zero.
#pragma once

#include "lowbit/core/buffer.hpp"
#include "lowbit/formats/convert.hpp"
#include "lowbit/formats/half.hpp"
#include "lowbit/kernels/layout.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

namespace lowbit::kernels {

template <class T>
concept activation_type = std::is_same_v<T, float> || std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;

// Quantized activations of `tokens` rows for scheme S: q is tokens x positions(), scale is
// tokens x spans (one per span).
struct int8_activations {
  aligned_vector<std::int8_t> q;
  std::vector<float> scale;
  std::size_t positions = 0, spans = 0, tokens = 0;

  const std::int8_t* q_row(std::size_t t) const noexcept { return q.data() + t * positions; }
  const float* scale_row(std::size_t t) const noexcept { return scale.data() + t * spans; }
};

// One token: x has K = cols elements; q and s receive positions and spans of the row.
template <scheme S, activation_type T>
void quantize_activation_row(const T* x, std::size_t cols, std::int8_t* q, float* s) noexcept {
  using G = chunk_geometry<S>;
  const std::size_t spans = G::spans(cols);
  float v[G::span];
  for (std::size_t sp = 0; sp < spans; ++sp) {
    const std::size_t c0 = sp * G::span;
    float amax = 0.0f;
    for (std::size_t p = 0; p < G::span; ++p) {
      const std::size_t c = c0 + G::code_at(p);
      v[p] = c < cols ? lowbit::detail::widen(x[c]) : 0.0f;
      amax = std::max(amax, std::fabs(v[p])); // std::max ignores a NaN in the second place
      if (std::isnan(v[p])) amax = v[p];
    }
    std::int8_t* qs = q + sp * G::span;
    if (!std::isfinite(amax) || amax == 0.0f) {
      s[sp] = amax == 0.0f ? 0.0f : std::numeric_limits<float>::quiet_NaN();
      std::fill(qs, qs + G::span, std::int8_t{0});
      continue;
    }
    const float inv = 127.0f / amax;
    s[sp] = amax / 127.0f;
    for (std::size_t p = 0; p < G::span; ++p)
      qs[p] = static_cast<std::int8_t>(std::clamp(std::nearbyint(v[p] * inv), -127.0f, 127.0f));
  }
}

template <scheme S, activation_type T>
void quantize_activations(std::span<const T> x, std::size_t tokens, std::size_t cols, int8_activations& out) {
  using G = chunk_geometry<S>;
  out.tokens = tokens;
  out.spans = G::spans(cols);
  out.positions = out.spans * G::span;
  out.q.resize(tokens * out.positions);
  out.scale.resize(tokens * out.spans);
  for (std::size_t t = 0; t < tokens; ++t)
    quantize_activation_row<S>(x.data() + t * cols, cols, out.q.data() + t * out.positions,
                               out.scale.data() + t * out.spans);
}

} // namespace lowbit::kernels
