// AVX-512 BW base-3 LUT kernel (kernels/ternary_lut.hpp has the algorithm and the layout): the
// AVX2 kernel's arithmetic with both halves of a tile (rows 0-15 and 16-31) in one 512-bit
// register. Per quad: one 64-byte load of the two halves' indices; per token one 512-bit shuffle
// of the quad's tables (broadcast to both halves straight from memory) per nibble, the signs as
// masks (one vptestmb per shuffle, shared by the tokens: bit 7 - j of the sign bytes selects the
// lanes that a masked subtraction from zero negates), then the unpack / maddubs / add of the AVX2
// kernel. The int16 sums of each half are the AVX2 kernel's, so the results are bit-identical
// to it and to reference::linear_ternary_lut. The AVX2 kernel spends 34 vector operations per quad
// at one token, this one 15 (AVX-512 has no byte sign operation; the masks replace it).
#pragma once

#include "lowbit/core/config.hpp"

#if LOWBIT_HAS_AVX512_BW

#include "lowbit/kernels/avx2/ternary_lut.hpp"
#include "lowbit/kernels/avx512/activations.hpp"
#include "lowbit/kernels/avx512/ops.hpp"

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace lowbit::kernels::avx512 {

namespace detail {

// Tokens t0 .. t0 + NT - 1 of one tile; out receives NT x 32 sums (before bias).
template <ternary_lut_scheme S, std::size_t NT>
void ternary_tile(const ternary_lut_matrix<S>& w, const ternary_activations& a, std::size_t tile, std::size_t t0,
                  float (*out)[ternary_tile_rows]) noexcept {
  const __m512i nib = _mm512_set1_epi8(0x0F), ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();
  // The sign bit of shuffle j = 4 * quad + 2 * h + (0 low nibbles, 1 high) is bit 7 - j; the low
  // 256 bits of a register are half 0, the high 256 half 1.
  constexpr __mmask64 half1 = 0xFFFFFFFF00000000u;
  __m512i bit_lo[2], bit_hi[2];
  LOWBIT_UNROLL
  for (std::size_t qq = 0; qq < 2; ++qq) {
    bit_lo[qq] = _mm512_mask_set1_epi8(_mm512_set1_epi8(static_cast<char>(0x80 >> (4 * qq))), half1,
                                       static_cast<char>(0x80 >> (4 * qq + 2)));
    bit_hi[qq] = _mm512_mask_set1_epi8(_mm512_set1_epi8(static_cast<char>(0x80 >> (4 * qq + 1))), half1,
                                       static_cast<char>(0x80 >> (4 * qq + 3)));
  }
  __m256 acc[NT][4];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = _mm256_setzero_ps();
  const std::int8_t* q[NT];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) q[t] = a.q_row(t0 + t);
  const std::uint8_t* cp = w.tile_codes(tile);
  [[maybe_unused]] const bool first = t0 == 0; // later tokens find the tile's codes in cache
  std::size_t unit = ~std::size_t{0};
  [[maybe_unused]] const std::size_t s_ahead = avx2::side_ahead(
      avx2::lut_prefetch, w.units() * ternary_tile_rows * sizeof(float), w.blocks() * ternary_block_bytes);
  __m256 ws[4] = {};
  for (std::size_t b = 0; b < w.blocks(); ++b) {
    __m512i isum[NT][2]; // [unpacklo | unpackhi] sums: low 256 bits half 0, high 256 half 1
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) isum[t][0] = isum[t][1] = _mm512_setzero_si512();
    if constexpr (avx2::lut_prefetch != 0)
      if (first) avx2::prefetch_l2<ternary_block_bytes>(cp, avx2::lut_prefetch);
    LOWBIT_UNROLL
    for (std::size_t pair = 0; pair < ternary_block_triads / 8; ++pair, cp += ternary_pair_bytes) {
      const __m512i sg = broadcast_256(cp);
      LOWBIT_UNROLL
      for (std::size_t qq = 0; qq < 2; ++qq) {
        const std::size_t g0 = (b * ternary_block_triads + 8 * pair + 4 * qq) * 16;
        const __m512i v = _mm512_loadu_si512(cp + 32 + 64 * qq);
        const __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        const __mmask64 neg_lo = _mm512_test_epi8_mask(sg, bit_lo[qq]);
        const __mmask64 neg_hi = _mm512_test_epi8_mask(sg, bit_hi[qq]);
        LOWBIT_UNROLL
        for (std::size_t t = 0; t < NT; ++t) {
          const __m512i t01 = broadcast_256(q[t] + g0), t23 = broadcast_256(q[t] + g0 + 32);
          const __m512i p0 = _mm512_shuffle_epi8(t01, lo), r0 = _mm512_shuffle_epi8(t23, hi);
          const __m512i p = _mm512_mask_sub_epi8(p0, neg_lo, zero, p0);
          const __m512i r = _mm512_mask_sub_epi8(r0, neg_hi, zero, r0);
          isum[t][0] = _mm512_add_epi16(isum[t][0], _mm512_maddubs_epi16(ones, _mm512_unpacklo_epi8(p, r)));
          isum[t][1] = _mm512_add_epi16(isum[t][1], _mm512_maddubs_epi16(ones, _mm512_unpackhi_epi8(p, r)));
          LOWBIT_OPAQUE(isum[t][0]); // running sums, not a tree that spills (config.hpp)
          LOWBIT_OPAQUE(isum[t][1]);
        }
      }
    }
    const std::size_t u = w.unit_of_block(b);
    if (u != unit) {
      unit = u;
      if constexpr (avx2::side_prefetch)
        if (first && avx2::lut_prefetch != 0)
          avx2::prefetch_l2<ternary_tile_rows * sizeof(float)>(w.tile_scales(tile, u), s_ahead);
      LOWBIT_UNROLL
      for (std::size_t i = 0; i < 4; ++i) ws[i] = _mm256_loadu_ps(w.tile_scales(tile, u) + 8 * i);
    }
    float ts[NT];
    __m256i halves[NT][4]; // the AVX2 kernel's isum[t][2 * h + (0 unpacklo, 1 unpackhi)]
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) {
      ts[t] = a.scale_row(t0 + t)[b];
      halves[t][0] = half_of<0>(isum[t][0]);
      halves[t][1] = half_of<0>(isum[t][1]);
      halves[t][2] = half_of<1>(isum[t][0]);
      halves[t][3] = half_of<1>(isum[t][1]);
    }
    avx2::detail::add_block_sums<NT>(halves, ws, ts, acc);
  }
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t)
    for (std::size_t i = 0; i < 4; ++i) _mm256_storeu_ps(out[t] + 8 * i, acc[t][i]);
}

} // namespace detail

// Y = X * W^T (+ bias) on tables built by build_ternary_tables (either builder); tiles split across
// threads. Bit-identical to avx2::linear_ternary_lut.
template <ternary_lut_scheme S>
void linear_ternary_lut(const ternary_lut_matrix<S>& w, const ternary_activations& a, std::span<float> y,
                        std::span<const float> bias) {
  check_lut_call("avx512::linear_ternary_lut", w, a, y.size(), bias.size());
  avx2::run_lut_tiles<ternary_tile_rows, avx2::ternary_tokens>(
      w, a.tokens, a.row_entries(), y, bias, [&](auto nt, std::size_t tile, std::size_t t, auto* out) {
        detail::ternary_tile<S, decltype(nt)::value>(w, a, tile, t, out);
      });
}

// avx2::linear_ternary_lut_token on this kernel and the AVX-512 table builder.
template <ternary_lut_scheme S, activation_type T>
void linear_ternary_lut_token(const ternary_lut_matrix<S>& w, std::span<const T> x, std::span<float> y,
                              std::span<const float> bias, std::vector<ternary_activations>& tables) {
  avx2::detail::ternary_token(w, x, y, bias, tables, build_ternary_table_row<T>,
                              [&](const ternary_activations& a, std::size_t tile, auto* out) {
                                detail::ternary_tile<S, 1>(w, a, tile, 0, out);
                              });
}

} // namespace lowbit::kernels::avx512

#endif
