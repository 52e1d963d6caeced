// Activations of the integer-dot path: each token's row of X is cut into blocks of act_block
// codes (32, or a whole 160-code span for base-3 ternary), quantized to int8 with one absmax scale
// per block, s = amax / 127, q = round_nearest_even(x * (127 / amax)), |q| <= 127, and stored
// span by span in kernel order (kernels/layout.hpp). All-zero blocks get s = 0, and so do blocks
// so tiny that 127 / amax overflows (amax < 3.7e-37: subnormal activations); a block holding NaN
// or inf gets s = NaN and q = 0, so the outputs of that token are NaN. Columns past K are zero.
// kernels/avx2/activations.hpp is the same computation with AVX2, bit for bit.
#pragma once

#include "lowbit/core/buffer.hpp"
#include "lowbit/core/threading.hpp"
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

// Quantized activations of `tokens` rows for scheme S: q is tokens x positions, scale is tokens x
// blocks. For the SIMD kernels, also per span and lane (8 per span): the lane's activation scale,
// and the correction offset * sum(q over the lane's positions in every chunk of the span) that the
// unsigned-table kernels subtract (kernels/layout.hpp, int8_unsigned_table; 0 otherwise).
struct int8_activations {
  aligned_vector<std::int8_t> q;
  std::vector<float> scale;
  aligned_vector<float> lane_scale;
  aligned_vector<std::int32_t> lane_offset;
  std::size_t positions = 0, spans = 0, blocks = 0, tokens = 0;

  const std::int8_t* q_row(std::size_t t) const noexcept { return q.data() + t * positions; }
  const float* scale_row(std::size_t t) const noexcept { return scale.data() + t * blocks; }
  const float* lane_scale_row(std::size_t t) const noexcept { return lane_scale.data() + t * spans * 8; }
  const std::int32_t* lane_offset_row(std::size_t t) const noexcept { return lane_offset.data() + t * spans * 8; }
};

// One token: x has K = cols elements; q, s, ls and lo receive the token's positions, blocks, lane
// scales and lane offsets.
template <scheme S, activation_type T>
void quantize_activation_row(const T* x, std::size_t cols, std::int8_t* q, float* s, float* ls,
                             std::int32_t* lo) noexcept {
  using G = chunk_geometry<S>;
  constexpr std::size_t B = G::act_block;
  const std::size_t spans = G::spans(cols), positions = spans * G::span, blocks = positions / B;
  float inv[G::span / B];
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t c0 = b * B, c1 = std::min(cols, c0 + B);
    float amax = 0.0f;
    for (std::size_t c = c0; c < c1; ++c) {
      const float v = lowbit::detail::widen(x[c]);
      amax = std::max(amax, std::fabs(v)); // std::max ignores a NaN in the second place
      if (std::isnan(v)) amax = v;
    }
    s[b] = !std::isfinite(amax) ? std::numeric_limits<float>::quiet_NaN() : amax; // the scale below
  }
  constexpr int offset = int8_unsigned_table_v<S>.usable ? int8_unsigned_table_v<S>.offset : 0;
  for (std::size_t sp = 0; sp < spans; ++sp) {
    const std::size_t c0 = sp * G::span;
    for (std::size_t k = 0; k < G::span / B; ++k) {
      const float amax = s[c0 / B + k];
      inv[k] = std::isfinite(amax) && amax != 0.0f ? 127.0f / amax : 0.0f;
      s[c0 / B + k] = amax / 127.0f;
      if (!std::isfinite(inv[k])) inv[k] = s[c0 / B + k] = 0.0f; // amax < 127 / FLT_MAX: a zero block
    }
    std::int8_t* qs = q + c0;
    for (std::size_t p = 0; p < G::span; ++p) {
      const std::size_t c = G::code_at(p), k = c / B;
      const float v = c0 + c < cols ? lowbit::detail::widen(x[c0 + c]) : 0.0f;
      qs[p] = inv[k] == 0.0f ? std::int8_t{0}
                             : static_cast<std::int8_t>(std::clamp(std::nearbyint(v * inv[k]), -127.0f, 127.0f));
    }
    for (std::size_t l = 0; l < 8; ++l) {
      ls[sp * 8 + l] = s[(c0 + G::lane_code(l)) / B];
      std::int32_t sum = 0;
      for (std::size_t h = 0; h < G::chunks_per_span; ++h)
        for (std::size_t i = 0; i < 4; ++i) sum += qs[h * chunk + 4 * l + i];
      lo[sp * 8 + l] = offset * sum;
    }
  }
}

// Sizes `out` for `tokens` rows of `cols` and fills it token by token with `row`, a function
// with quantize_activation_row's parameters (the scalar spec here, its AVX2 twin elsewhere).
template <scheme S, activation_type T, class Row>
void quantize_activations_by_row(std::span<const T> x, std::size_t tokens, std::size_t cols, int8_activations& out,
                                 Row&& row) {
  using G = chunk_geometry<S>;
  out.tokens = tokens;
  out.spans = G::spans(cols);
  out.positions = out.spans * G::span;
  out.blocks = out.positions / G::act_block;
  out.q.resize(tokens * out.positions);
  out.scale.resize(tokens * out.blocks);
  out.lane_scale.resize(tokens * out.spans * 8);
  out.lane_offset.resize(tokens * out.spans * 8);
  // Tokens are independent: split across threads once there is enough of them.
  parallel_rows(tokens, tokens * cols, [&](std::size_t begin, std::size_t end) {
    for (std::size_t t = begin; t < end; ++t)
      row(x.data() + t * cols, cols, out.q.data() + t * out.positions, out.scale.data() + t * out.blocks,
          out.lane_scale.data() + t * out.spans * 8, out.lane_offset.data() + t * out.spans * 8);
  });
}

template <scheme S, activation_type T>
void quantize_activations(std::span<const T> x, std::size_t tokens, std::size_t cols, int8_activations& out) {
  quantize_activations_by_row<S>(x, tokens, cols, out, quantize_activation_row<S, T>);
}

} // namespace lowbit::kernels
