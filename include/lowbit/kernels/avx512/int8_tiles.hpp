// AVX-512 VNNI integer-dot GEMM on the row-interleaved tiles of kernels/int8_tiles.hpp: the AVX2
// VNNI kernel's arithmetic (kernels/avx2/int8_tiles.hpp) on two tiles at once, tile i in the low
// 256 bits of every register and tile i + 1 in the high 256. Per lane, the two tiles' 32 code bytes
// are one register (a load and a `vinserti64x4` from memory); each chunk is expanded to int8 values
// once for 16 rows (the same shifts, masks and 16-entry table lookup, the table broadcast to all four
// 128-bit lanes, with signed tables pre-offset by 128), and one 512-bit `vpdpbusd` per token adds
// the products of 16 rows. Per segment the two tiles' scales form one register and the epilogue
// (correction, convert, scale product, fma) runs once for 16 rows. Every lane computes what the
// AVX2 kernel computes for its row, in the same order, so the results are bit-identical to it and
// to reference::linear_int8_tiled. Tiles left over from the pairs run on the AVX2 kernel.
// Compiled where AVX-512 BW and VNNI are (and LOWBIT_NO_AVX512 is not defined).
#pragma once

#include "lowbit/core/config.hpp"

#if LOWBIT_HAS_AVX512_BW && LOWBIT_HAS_AVX512_VNNI

#include "lowbit/kernels/avx2/int8_tiles.hpp"
#include "lowbit/kernels/avx512/ops.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

// Pairs of tiles per block (1-2); tokens per block are avx2's LOWBIT_TILED_TOKENS.
#ifndef LOWBIT_TILED_PAIRS
#define LOWBIT_TILED_PAIRS 2
#endif

namespace lowbit::kernels::avx512 {

namespace detail {

inline constexpr int tiled_pairs = LOWBIT_TILED_PAIRS;
static_assert(tiled_pairs >= 1 && tiled_pairs <= 2, "blocks of 1-2 tile pairs");

// avx2::detail::span_decoder on two tiles' lanes: the same bytes, constants and table. values()
// returns what the VNNI kernel multiplies: unsigned values as they are, signed ones plus 128.
template <int8_tiles_scheme S>
struct span_decoder {
  using A = avx2::detail::span_decoder<S>;
  static_assert(!A::base3, "the tiles hold no base-3 codes");
  static constexpr bool offset128 = !A::unsigned_values && !S::has_zero_point;
  // 4-bit codes with VBMI: one vpermb per chunk maps the stored nibble straight to the value the
  // kernel multiplies (a 64-byte table: the 16 values, xor key and offset folded in, four times, so
  // that vpermb's index bits 4-5, the other nibble's, select the same entry). It replaces the mask,
  // the shuffle (or the xor on load) of the path below: 3 operations per lane instead of 4-5.
  static constexpr bool permute = LOWBIT_HAS_AVX512_VBMI && S::code_bits == 4;
  __m512i table{};

  span_decoder() noexcept {
    if constexpr (permute) {
      alignas(64) std::uint8_t t[64];
      alignas(32) std::uint8_t looked[32] = {};
      if constexpr (A::lookup) {
        const A a;
        _mm256_store_si256(reinterpret_cast<__m256i*>(looked), a.table);
      }
      for (unsigned i = 0; i < 64; ++i) {
        const unsigned c = (i & 15u) ^ A::xor_key; // the code after load's xor
        unsigned v = c;                            // values() below, on code c
        if constexpr (!S::has_zero_point && A::lookup) v = looked[c];
        if constexpr (!S::has_zero_point && offset128) v ^= 0x80u;
        t[i] = static_cast<std::uint8_t>(v);
      }
      table = _mm512_load_si512(t);
    } else if constexpr (A::lookup) {
      const A a;
      table = _mm512_maskz_broadcast_i64x4(0xFF, a.table); // the 16 entries in every 128-bit lane
      if constexpr (offset128) table = _mm512_xor_si512(table, _mm512_set1_epi8(static_cast<char>(0x80)));
    }
  }

  // Lane bytes of tile i (lo) and tile i + 1 (hi), with A's xor key applied (for permute, in the
  // table instead).
  static __m512i load(const std::uint8_t* lo, const std::uint8_t* hi) noexcept {
    __m512i v = load_halves(lo, hi);
    if constexpr (A::xor_key != 0 && !permute) {
      unsigned pattern = 0;
      for (int i = 0; i < 8; i += S::code_bits) pattern |= A::xor_key << i;
      v = _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(pattern)));
    }
    return v;
  }

  // Chunk h's values (offset by 128 where signed).
  __m512i values(__m512i v, std::size_t h) const noexcept {
#if LOWBIT_HAS_AVX512_VBMI
    if constexpr (permute) return permute_bytes(h == 0 ? v : _mm512_srli_epi16(v, 4), table);
#endif
    __m512i c;
    if constexpr (S::code_bits == 4)
      c = _mm512_and_si512(h == 0 ? v : _mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F));
    else if constexpr (S::code_bits == 2)
      c = _mm512_and_si512(_mm512_srli_epi16(v, static_cast<unsigned>(2 * h)), _mm512_set1_epi8(3));
    else
      c = v;
    if constexpr (S::has_zero_point)
      return c; // the codes; zero point x segment sum is subtracted per segment
    else if constexpr (A::lookup)
      return _mm512_shuffle_epi8(table, c);
    else if constexpr (offset128)
      return _mm512_xor_si512(c, _mm512_set1_epi8(static_cast<char>(0x80)));
    else
      return c;
  }
};

// The 16 scales of unit u of plain tiles t (low half) and t + 1 (high half), as
// avx2::detail::tile_scales8 gives each 8: UE4M3 and E8M0 by scales8_plain's field move on 16 lanes
// at once (6 vector operations for both tiles instead of 11 and a join), other formats the two
// halves apart. Bit-identical either way: every lane takes the same fp32 operations.
template <int8_tiles_scheme S>
LOWBIT_ALWAYS_INLINE inline __m512 pair_scales16(const int8_tiled<S>& w, std::size_t t, std::size_t u) noexcept {
  using F = typename S::scale_format;
  if constexpr (std::is_same_v<F, ue4m3> || std::is_same_v<F, e8m0>) {
    const auto c8 = [](const void* q) { return _mm_loadl_epi64(static_cast<const __m128i*>(q)); };
    const __m512i c = cvtepu8_epi32(_mm_unpacklo_epi64(c8(w.tile_scales(t, u)), c8(w.tile_scales(t + 1, u))));
    const __m512i bits = std::is_same_v<F, e8m0>
                             ? _mm512_maskz_slli_epi32(0xFFFF, c, 23)
                             : _mm512_add_epi32(_mm512_maskz_slli_epi32(0xFFFF, c, 20), _mm512_set1_epi32(120 << 23));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(w.decoder().tensor_scale())),
                         _mm512_set1_ps(w.decoder().mult()));
  } else {
    return _mm512_castsi512_ps(join_halves(_mm256_castps_si256(avx2::detail::tile_scales8(w, t, u)),
                                           _mm256_castps_si256(avx2::detail::tile_scales8(w, t + 1, u))));
  }
}

LOWBIT_ALWAYS_INLINE inline __m512i broadcast4(const std::int8_t* p) noexcept {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Tiles tile0 .. tile0 + 2P - 1 (P pairs) x tokens t0 .. t0 + T - 1; out[r][t] receives tile
// tile0 + r's 8 rows for token t0 + t. scales and Inline as in avx2::detail::tiled_block.
template <int8_tiles_scheme S, int P, int T, bool Inline = false>
void pair_block(const int8_tiled<S>& w, const float* scales, const int8_activations& a, const tile_activations& ta,
                std::size_t tile0, std::size_t t0, float (*out)[T][tile_rows]) noexcept {
  using G = chunk_geometry<S>;
  using TG = tile_geometry<S>;
  using D = span_decoder<S>;
  using A = typename D::A;
  constexpr bool zp = S::has_zero_point, uvals = A::unsigned_values && !zp;
  constexpr std::size_t C = G::chunks_per_span, SL = TG::segment_lanes, NS = TG::segments;
  const D dec;
  const std::size_t spans = w.spans(), units = w.units();
  __m512 acc[P][T];
  LOWBIT_UNROLL
  for (auto& ap : acc) LOWBIT_UNROLL
  for (auto& v : ap) v = _mm512_setzero_ps();
  const std::uint8_t* cp[2 * P];
  LOWBIT_UNROLL
  for (int r = 0; r < 2 * P; ++r) cp[r] = w.tile_codes(tile0 + static_cast<std::size_t>(r));
  const avx2::detail::tile_token_rows<T> tok(a, ta, t0);
  [[maybe_unused]] const bool first = t0 == 0; // later tokens find the tiles' codes in cache
  const avx2::detail::tile_side_prefetch<S, 2 * P, Inline> side(w);
  for (std::size_t sp = 0; sp < spans; ++sp) {
    if constexpr (avx2::detail::tiled_prefetch != 0)
      if (first) {
        LOWBIT_UNROLL
        for (int r = 0; r < 2 * P; ++r) avx2::prefetch_l2<256>(cp[r] + sp * 256, avx2::detail::tiled_prefetch);
      }
    if constexpr (avx2::side_prefetch)
      if (first && avx2::detail::tiled_prefetch != 0) side(tile0, sp);
    LOWBIT_UNROLL
    for (std::size_t g = 0; g < NS; ++g) {
      __m512i i32[P][T];
      LOWBIT_UNROLL
      for (std::size_t l = 0; l < SL; ++l) {
        const std::size_t lane = g * SL + l, off = (sp * 8 + lane) * 32;
        __m512i v[P];
        LOWBIT_UNROLL
        for (int p = 0; p < P; ++p) v[p] = D::load(cp[2 * p] + off, cp[2 * p + 1] + off);
        LOWBIT_UNROLL
        for (std::size_t h = 0; h < C; ++h) {
          const bool start = l == 0 && h == 0;
          __m512i wv[P];
          LOWBIT_UNROLL
          for (int p = 0; p < P; ++p) wv[p] = dec.values(v[p], h);
          LOWBIT_UNROLL
          for (int t = 0; t < T; ++t) {
            const __m512i x = broadcast4(tok.x[t] + sp * G::span + h * chunk + 4 * lane);
            LOWBIT_UNROLL
            for (int p = 0; p < P; ++p)
              i32[p][t] = _mm512_dpbusd_epi32(start ? _mm512_setzero_si512() : i32[p][t], wv[p], x);
          }
        }
      }
      const std::size_t u = TG::unit(sp, g, units), seg = sp * NS + g;
      LOWBIT_UNROLL
      for (int p = 0; p < P; ++p) {
        const std::size_t ta0 = tile0 + static_cast<std::size_t>(2 * p);
        __m512 wsv;
        if constexpr (Inline)
          wsv = pair_scales16(w, ta0, u);
        else
          wsv =
              _mm512_castsi512_ps(load_halves(scales + (static_cast<std::size_t>(2 * p) * units + u) * tile_rows,
                                              scales + (static_cast<std::size_t>(2 * p + 1) * units + u) * tile_rows));
        [[maybe_unused]] __m512i zv;
        if constexpr (zp) {
          const auto z8 = [](const std::uint8_t* q) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)); };
          zv = cvtepu8_epi32(_mm_unpacklo_epi64(z8(w.tile_zeros(ta0, u)), z8(w.tile_zeros(ta0 + 1, u))));
        }
        LOWBIT_UNROLL
        for (int t = 0; t < T; ++t) {
          __m512i i = i32[p][t];
          if constexpr (zp)
            i = _mm512_sub_epi32(i, _mm512_mullo_epi32(zv, _mm512_set1_epi32(tok.sum[t][seg])));
          else if constexpr (!uvals)
            i = _mm512_sub_epi32(i, _mm512_set1_epi32(tok.sum[t][seg] * 128));
          else
            i = _mm512_sub_epi32(i, _mm512_set1_epi32(tok.offset[t][seg]));
          acc[p][t] = _mm512_fmadd_ps(cvt_ps(i), _mm512_mul_ps(wsv, _mm512_set1_ps(tok.scale[t][seg])), acc[p][t]);
        }
      }
    }
  }
  LOWBIT_UNROLL
  for (int p = 0; p < P; ++p) LOWBIT_UNROLL
  for (int t = 0; t < T; ++t) {
    const __m512i v = _mm512_castps_si512(acc[p][t]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[2 * p][t]), half_of<0>(v));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[2 * p + 1][t]), half_of<1>(v));
  }
}

// Blocks of T tokens from t while T fit before te; returns the first token left.
template <int8_tiles_scheme S, int P, int T, bool Inline = false>
std::size_t pair_run(const int8_tiled<S>& w, const float* scales, const int8_activations& a, const tile_activations& ta,
                     std::size_t tile0, std::size_t t, std::size_t te, std::span<float> y,
                     std::span<const float> bias) noexcept {
  for (; t + T <= te; t += T) {
    alignas(32) float out[2 * P][T][tile_rows];
    pair_block<S, P, T, Inline>(w, scales, a, ta, tile0, t, out);
    avx2::detail::tiled_store<S, 2 * P, T>(w, tile0, t, out, y, bias);
  }
  return t;
}

// Tokens tb .. te - 1 on tiles tile0 .. tile0 + 2P - 1, as avx2::detail::tiled_token_blocks.
template <int8_tiles_scheme S, int P>
void pair_token_blocks(const int8_tiled<S>& w, float* scales, const int8_activations& a, const tile_activations& ta,
                       std::size_t tile0, std::size_t tb, std::size_t te, std::span<float> y,
                       std::span<const float> bias) noexcept {
  if constexpr (avx2::detail::inline_scales<S>()) {
    if (te - tb == 1 && avx2::detail::tiles_plain(w, tile0, 2 * P)) {
      pair_run<S, P, 1, true>(w, scales, a, ta, tile0, tb, te, y, bias);
      return;
    }
  }
  const float* sc = avx2::detail::tile_scales_f32(w, scales, tile0, 2 * P);
  constexpr int TT = avx2::detail::tiled_tokens;
  std::size_t t = pair_run<S, P, TT>(w, sc, a, ta, tile0, tb, te, y, bias);
  if constexpr (TT > 2) t = pair_run<S, P, 2>(w, sc, a, ta, tile0, t, te, y, bias);
  pair_run<S, P, 1>(w, sc, a, ta, tile0, t, te, y, bias);
}

} // namespace detail

// Floats of per-thread scratch linear_int8_tiled needs (for its pairs and for the AVX2 kernel).
template <int8_tiles_scheme S>
std::size_t int8_tiles_scratch_size(const int8_tiled<S>& w) noexcept {
  return std::max(static_cast<std::size_t>(2 * detail::tiled_pairs) * w.units() * tile_rows,
                  avx2::int8_tiles_scratch_size(w));
}

namespace detail {
// linear_int8_tiled's 512-bit part, for every token count: tiles split across threads; per thread,
// blocks of P pairs, then one pair, then a last odd tile on the AVX2 kernel.
template <int8_tiles_scheme S, int P = tiled_pairs>
void pair_tiles(const int8_tiled<S>& w, const int8_activations& a, const tile_activations& ta, std::span<float> y,
                std::span<const float> bias, float* scratch) {
  static_assert(P >= 1 && P <= tiled_pairs, "no more pairs than tiled_pairs, which sizes the scratch");
  avx2::detail::split_tiles(w, a.tokens, scratch, int8_tiles_scratch_size(w),
                            [&](float* scales, std::size_t begin, std::size_t end, std::size_t tb, std::size_t te) {
                              std::size_t tile = begin;
                              for (; tile + 2 * P <= end; tile += 2 * P)
                                pair_token_blocks<S, P>(w, scales, a, ta, tile, tb, te, y, bias);
                              if constexpr (P > 1)
                                for (; tile + 2 <= end; tile += 2)
                                  pair_token_blocks<S, 1>(w, scales, a, ta, tile, tb, te, y, bias);
                              for (; tile < end; ++tile)
                                avx2::detail::tiled_token_blocks<S, 1>(w, scales, a, ta, tile, tb, te, y, bias);
                            });
}
} // namespace detail

// Y = X * W^T (+ bias), bit-identical to avx2::linear_int8_tiled, at every token count. At one
// token, blocks of 2 pairs (4 tiles) against the AVX2 kernel's blocks of 3 tiles streamed 4-bit and
// 8-bit weights from DRAM at about the same share of the read probe (within this Zen 5's noise;
// run 18 had compared single pairs, 2 tiles, which fell behind) and read them from L3 at 1.02-1.41x
// its rate (4096 x 4096, 2 threads; bench/README.md run 19); from 2 tokens on it is ahead in L3
// (0.53-0.95x the time) and in most cases from DRAM. scratch holds int8_tiles_scratch_size(w)
// floats per thread.
template <int8_tiles_scheme S>
void linear_int8_tiled(const int8_tiled<S>& w, const int8_activations& a, const tile_activations& ta,
                       std::span<float> y, std::span<const float> bias, float* scratch) {
  detail::pair_tiles(w, a, ta, y, bias, scratch);
}

} // namespace lowbit::kernels::avx512

#endif
