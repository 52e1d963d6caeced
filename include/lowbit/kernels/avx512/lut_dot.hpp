// AVX-512 BW bit-plane LUT kernel (kernels/lut.hpp has the algorithm and the layout): the AVX2
// kernel's arithmetic on two tiles at once, tile i in the low 256 bits of every register and tile
// i + 1 in the high 256. Per block, group pair and plane pair: the two tiles' 32 code bytes in one
// register (a 256-bit load and a `vinserti64x4` from memory), per token one 512-bit shuffle per nibble of
// the group's table (broadcast to the four lanes straight from memory) and one maddubs each; per
// block and token the AVX2 kernel's madd / convert / two fmas, for 32 rows. Every lane computes
// what the AVX2 kernel computes for its row, in the same order, so the results are bit-identical
// to it and to reference::linear_lut. A last odd tile, and a call with one token, run the AVX2
// kernel. For 32 rows and a token the AVX2 kernel spends 2 x 9 vector operations per group pair and
// plane pair, this one 10 (6 per further token, against 12).
#pragma once

#include "lowbit/core/config.hpp"

#if LOWBIT_HAS_AVX512_BW

#include "lowbit/kernels/avx2/lut_dot.hpp"
#include "lowbit/kernels/avx512/activations.hpp"
#include "lowbit/kernels/avx512/ops.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace lowbit::kernels::avx512 {

inline constexpr std::size_t lut_pair_rows = 2 * lut_tile_rows;

namespace detail {

// 16 scales of unit u of tiles `tile` and tile + 1 as fp32: rows 0-7 of each tile in lo (tile
// `tile` in the low half), rows 8-15 in hi.
template <lut_scheme S>
LOWBIT_ALWAYS_INLINE inline void pair_scales(const lut_matrix<S>& w, std::size_t tile, std::size_t u, __m512& lo,
                                             __m512& hi) noexcept {
  const auto* s0 = w.tile_scales(tile, u);
  const auto* s1 = w.tile_scales(tile + 1, u);
  if constexpr (lut_traits<S>::half_scales) {
    const auto h = [](const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); };
    lo = cvtph_ps(_mm256_set_m128i(h(s1), h(s0)));
    hi = cvtph_ps(_mm256_set_m128i(h(s1 + 8), h(s0 + 8)));
  } else {
    lo = _mm512_castsi512_ps(load_halves(s0, s1));
    hi = _mm512_castsi512_ps(load_halves(s0 + 8, s1 + 8));
  }
}

// (k - z) * g of unit u of tiles `tile` and tile + 1, laid out as pair_scales.
template <lut_scheme S>
LOWBIT_ALWAYS_INLINE inline void pair_zero_terms(const lut_matrix<S>& w, std::size_t tile, std::size_t u, float g,
                                                 __m512& lo, __m512& hi) noexcept {
  const std::uint8_t* z0 = w.tile_zeros(tile, u);
  const std::uint8_t* z1 = w.tile_zeros(tile + 1, u);
  const auto z8 = [](const std::uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); };
  const __m512 k = _mm512_set1_ps(lut_traits<S>::k), gv = _mm512_set1_ps(g);
  const auto term = [&](__m128i z) { return _mm512_mul_ps(_mm512_sub_ps(k, cvt_ps(cvtepu8_epi32(z))), gv); };
  lo = term(_mm_unpacklo_epi64(z8(z0), z8(z1)));
  hi = term(_mm_unpacklo_epi64(z8(z0 + 8), z8(z1 + 8)));
}

// Tokens t0 .. t0 + NT - 1 of tiles `tile` and tile + 1; out receives NT x 32 sums (before bias),
// tile `tile`'s 16 rows first.
template <lut_scheme S, std::size_t NT>
void lut_tile_pair(const lut_matrix<S>& w, const lut_activations& a, std::size_t tile, std::size_t t0,
                   float (*out)[lut_pair_rows]) noexcept {
  using tr = lut_traits<S>;
  constexpr std::size_t P = tr::planes / 2; // plane pairs; an odd last plane follows them on its own
  constexpr bool lone = tr::planes % 2 != 0;
  constexpr std::size_t TB = lut_matrix<S>::tile_block_bytes;
  const __m512i nib = _mm512_set1_epi8(0x0F);
  __m512i apat[P + 1]; // the lone plane's weights (a, 0) last
  LOWBIT_UNROLL
  for (std::size_t p = 0; p < P; ++p)
    apat[p] = _mm512_set1_epi16(static_cast<short>(tr::dec.a[2 * p] | (tr::dec.a[2 * p + 1] << 8)));
  apat[P] = _mm512_set1_epi16(static_cast<short>(tr::dec.a[tr::planes - 1]));
  __m512 acc[NT][2];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
  const std::int8_t* q[NT];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) q[t] = a.q_row(t0 + t);
  const std::uint8_t* c0 = w.tile_codes(tile);
  const std::uint8_t* c1 = w.tile_codes(tile + 1);
  [[maybe_unused]] const bool first = t0 == 0; // later tokens find the tiles' codes in cache
  const std::size_t blocks = w.blocks();
  std::size_t unit = ~std::size_t{0};
  [[maybe_unused]] const float g = w.scale_multiplier(), kg = tr::k * g;
  [[maybe_unused]] const std::size_t side_bytes = w.units() * lut_tile_rows,
                                     s_ahead = avx2::side_ahead(avx2::lut_prefetch,
                                                                side_bytes * sizeof(typename lut_matrix<S>::scale_type),
                                                                blocks * TB),
                                     z_ahead = avx2::side_ahead(avx2::lut_prefetch, side_bytes, blocks * TB);
  __m512 ws_lo = _mm512_setzero_ps(), ws_hi = ws_lo;
  [[maybe_unused]] __m512 kz_lo = ws_lo, kz_hi = ws_lo;
  const __m512i even = _mm512_set1_epi32(1), odd = _mm512_set1_epi32(0x10000);
  for (std::size_t b = 0; b < blocks; ++b, c0 += TB, c1 += TB) {
    __m512i isum[NT];
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) isum[t] = _mm512_setzero_si512();
    if constexpr (avx2::lut_prefetch != 0)
      if (first) {
        avx2::prefetch_l2<TB>(c0, avx2::lut_prefetch);
        avx2::prefetch_l2<TB>(c1, avx2::lut_prefetch);
      }
    LOWBIT_UNROLL
    for (std::size_t gp = 0; gp < 4; ++gp) {
      __m512i tl[NT], th[NT];
      LOWBIT_UNROLL
      for (std::size_t t = 0; t < NT; ++t) {
        const std::int8_t* tab = q[t] + (b * lut_tables_per_block + 2 * gp) * 16;
        tl[t] = broadcast_128(tab);
        th[t] = broadcast_128(tab + 16);
      }
      LOWBIT_UNROLL
      for (std::size_t p = 0; p < P; ++p) {
        const std::size_t off = (gp * P + p) * 32;
        const __m512i v = load_halves(c0 + off, c1 + off);
        const __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        LOWBIT_UNROLL
        for (std::size_t t = 0; t < NT; ++t) {
          const __m512i s0 = _mm512_maddubs_epi16(apat[p], _mm512_shuffle_epi8(tl[t], lo));
          const __m512i s1 = _mm512_maddubs_epi16(apat[p], _mm512_shuffle_epi8(th[t], hi));
          isum[t] = _mm512_add_epi16(isum[t], _mm512_add_epi16(s0, s1));
        }
      }
      if constexpr (lone) {
        // Each tile's 16 bytes, one per row, zero-extended to its 16 int16 lanes (as the AVX2 kernel).
        const std::size_t off = 4 * P * 32 + gp * 16;
        const __m256i b2 =
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(c0 + off))),
                                    _mm_load_si128(reinterpret_cast<const __m128i*>(c1 + off)), 1);
        const __m512i v = _mm512_maskz_cvtepu8_epi16(~__mmask32{0}, b2);
        const __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_srli_epi16(v, 4);
        LOWBIT_UNROLL
        for (std::size_t t = 0; t < NT; ++t) {
          const __m512i s0 = _mm512_maddubs_epi16(apat[P], _mm512_shuffle_epi8(tl[t], lo));
          const __m512i s1 = _mm512_maddubs_epi16(apat[P], _mm512_shuffle_epi8(th[t], hi));
          isum[t] = _mm512_add_epi16(isum[t], _mm512_add_epi16(s0, s1));
        }
      }
    }
    const std::size_t u = tr::unit_of_block(b);
    if (u != unit) {
      unit = u;
      if constexpr (avx2::side_prefetch)
        if (first && avx2::lut_prefetch != 0)
          for (std::size_t i = tile; i < tile + 2; ++i) {
            avx2::prefetch_l2<64>(w.tile_scales(i, u), s_ahead);
            if constexpr (S::has_zero_point) avx2::prefetch_l2<64>(w.tile_zeros(i, u), z_ahead);
          }
      pair_scales(w, tile, u, ws_lo, ws_hi);
      if constexpr (S::has_zero_point) pair_zero_terms(w, tile, u, g, kz_lo, kz_hi);
    }
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) {
      // As the AVX2 kernel: int16 lanes 2i and 2i + 1 hold rows i and 8 + i of their tile.
      const __m512 lo = cvt_ps(_mm512_madd_epi16(isum[t], even));
      const __m512 hi = cvt_ps(_mm512_madd_epi16(isum[t], odd));
      const __m512 sg = _mm512_set1_ps(a.scale_row(t0 + t)[b] * g);
      const float xs = a.xsum_row(t0 + t)[b];
      __m512 v_lo, v_hi;
      if constexpr (S::has_zero_point) {
        const __m512 x = _mm512_set1_ps(xs);
        v_lo = _mm512_fmadd_ps(lo, sg, _mm512_mul_ps(kz_lo, x));
        v_hi = _mm512_fmadd_ps(hi, sg, _mm512_mul_ps(kz_hi, x));
      } else if constexpr (tr::k != 0.0f) {
        const __m512 kx = _mm512_set1_ps(kg * xs);
        v_lo = _mm512_fmadd_ps(lo, sg, kx);
        v_hi = _mm512_fmadd_ps(hi, sg, kx);
      } else {
        v_lo = _mm512_mul_ps(lo, sg);
        v_hi = _mm512_mul_ps(hi, sg);
      }
      acc[t][0] = _mm512_fmadd_ps(v_lo, ws_lo, acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(v_hi, ws_hi, acc[t][1]);
    }
  }
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) {
    alignas(64) float lo[16], hi[16];
    _mm512_store_ps(lo, acc[t][0]);
    _mm512_store_ps(hi, acc[t][1]);
    std::copy_n(lo, 8, out[t]);
    std::copy_n(hi, 8, out[t] + 8);
    std::copy_n(lo + 8, 8, out[t] + 16);
    std::copy_n(hi + 8, 8, out[t] + 24);
  }
}

// The AVX2 kernel on a last odd tile, written as the first 16 rows of a pair's output.
template <lut_scheme S, std::size_t NT>
void lut_last_tile(const lut_matrix<S>& w, const lut_activations& a, std::size_t tile, std::size_t t0,
                   float (*out)[lut_pair_rows]) noexcept {
  float one[NT][lut_tile_rows];
  avx2::detail::lut_tile<S, NT>(w, a, tile, t0, one);
  for (std::size_t t = 0; t < NT; ++t) std::copy_n(one[t], lut_tile_rows, out[t]);
}

// The shape run_lut_tiles splits: pairs of tiles of W.
template <lut_scheme S>
struct tile_pairs {
  const lut_matrix<S>& w;
  std::size_t tiles() const noexcept { return (w.tiles() + 1) / 2; }
  std::size_t rows() const noexcept { return w.rows(); }
  std::size_t cols() const noexcept { return w.cols(); }
};

} // namespace detail

// Y = X * W^T (+ bias) on tables built by build_lut_tables (either builder); pairs of tiles split
// across threads. Bit-identical to avx2::linear_lut.
template <lut_scheme S>
void linear_lut(const lut_matrix<S>& w, const lut_activations& a, std::span<float> y, std::span<const float> bias) {
  check_lut_call("avx512::linear_lut", w, a, y.size(), bias.size());
  // One token runs the AVX2 kernel: from DRAM the pair kernel, which reads two streams of codes per
  // thread, streamed INT2-g32 at 0.87-0.94x its rate (4096 x 8192, 2 threads, Zen 5; in L3 it
  // was 1.05x as fast), bench/README.md run 17; 0.92-0.95x alternated call by call (run 21), and
  // 0.94x with both prefetching their scales too (run 22). From 2 tokens on it is ahead everywhere.
  if (a.tokens == 1) return avx2::linear_lut(w, a, y, bias);
  const std::size_t tiles = w.tiles();
  avx2::run_lut_tiles<lut_pair_rows, avx2::lut_tokens>(detail::tile_pairs<S>{w}, a.tokens, a.row_entries(), y, bias,
                                                       [&](auto nt, std::size_t pair, std::size_t t, auto* out) {
                                                         constexpr std::size_t NT = decltype(nt)::value;
                                                         if (2 * pair + 1 < tiles)
                                                           detail::lut_tile_pair<S, NT>(w, a, 2 * pair, t, out);
                                                         else
                                                           detail::lut_last_tile<S, NT>(w, a, 2 * pair, t, out);
                                                       });
}

// One token: the AVX2 kernel (as linear_lut) on tables built by the AVX-512 builder, a copy per
// thread (avx2::run_lut_token).
template <lut_scheme S, activation_type T>
void linear_lut_token(const lut_matrix<S>& w, std::span<const T> x, std::span<float> y, std::span<const float> bias,
                      std::vector<lut_activations>& tables) {
  avx2::detail::lut_token(w, x, y, bias, tables, build_lut_table_row<T>);
}

} // namespace lowbit::kernels::avx512

#endif
