// AVX2 integer-dot kernel (W4A8, W8A8, W2A8, ternary x int8): reads the qmatrix codes in place,
// expands a 32-position chunk to int8 weight values in registers (nibble split or 2-bit shifts,
// then a byte-shuffle lookup of the 16-entry int8 table; base 3 by dividing by 3 in 16-bit lanes),
// multiplies with `maddubs` on |w| and sign-adjusted activations, widens with `madd`, and applies
// the per-lane scale product in fp32, exactly as reference::linear_int8 spells out. A tile of
// R rows x T tokens shares each decoded weight chunk across T tokens and each activation chunk
// across R rows.
#pragma once

#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/layout.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace lowbit::kernels::avx2 {

namespace detail {

// Lanes (8 x 4 positions) and positions of a chunk that fall in the second 16-code group of the
// chunk: for group size 16, where one chunk spans two scale units.
template <scheme S>
constexpr int second_half_lanes() {
  int m = 0;
  for (int l = 0; l < 8; ++l)
    if (chunk_geometry<S>::code_at(static_cast<std::size_t>(4 * l)) % chunk >= 16) m |= 1 << l;
  return m;
}
template <scheme S>
inline __m256i second_half_positions() noexcept {
  alignas(32) std::int8_t m[32];
  for (std::size_t p = 0; p < 32; ++p) m[p] = chunk_geometry<S>::code_at(p) % chunk >= 16 ? -1 : 0;
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

// Expands stored codes of one row into int8 weight values, chunk by chunk.
template <scheme S>
struct weight_decoder {
  using G = chunk_geometry<S>;
  static constexpr bool base3 = G::base3;
  static constexpr bool eight = !base3 && S::code_bits == 8;
  __m256i table{};

  weight_decoder() noexcept {
    if constexpr (!eight) {
      const auto& t = int8_table<typename S::element>::get();
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.v.data()));
      table = _mm256_set_m128i(v, v);
    }
  }

  // Codes (0..15) of chunk `ch` of the span at p (span_bytes readable bytes), in kernel order.
  // Base 3: `state` holds the remaining quotient in two 16-bit halves, advanced one digit per call;
  // bytes >= 243 (corrupt) are flagged in `bad`.
  static __m256i codes(const std::uint8_t* p, std::size_t ch, __m256i* state, __m256i& bad) noexcept {
    if constexpr (base3) {
      if (ch == 0) {
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        bad = _mm256_or_si256(bad, _mm256_xor_si256(_mm256_min_epu8(b, _mm256_set1_epi8(static_cast<char>(242))), b));
        state[0] = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(b));
        state[1] = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(b, 1));
      }
      __m256i d[2];
      for (int h = 0; h < 2; ++h) {
        const __m256i q = _mm256_mulhi_epu16(state[h], _mm256_set1_epi16(21846)); // x / 3 for x < 2^15
        d[h] = _mm256_sub_epi16(state[h], _mm256_add_epi16(q, _mm256_add_epi16(q, q)));
        state[h] = q;
      }
      return _mm256_permute4x64_epi64(_mm256_packus_epi16(d[0], d[1]), 0xD8);
    } else if constexpr (S::code_bits == 4) {
      (void)ch;
      (void)state;
      (void)bad;
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i m = _mm_set1_epi8(0x0F);
      return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    } else if constexpr (S::code_bits == 2) {
      (void)ch;
      (void)state;
      (void)bad;
      std::int64_t q;
      std::memcpy(&q, p, 8);
      const __m256i v = _mm256_srlv_epi64(_mm256_set1_epi64x(q), _mm256_set_epi64x(6, 4, 2, 0));
      return _mm256_and_si256(v, _mm256_set1_epi8(3));
    } else {
      (void)ch;
      (void)state;
      (void)bad;
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    }
  }

  __m256i values(__m256i codes) const noexcept {
    if constexpr (eight)
      return codes;
    else
      return _mm256_shuffle_epi8(table, codes);
  }
};

// Bytes ahead of the current chunk each weight stream prefetches (hides DRAM latency at N = 1).
inline constexpr std::size_t prefetch_distance = 512;

inline __m256i dot_lanes(__m256i aw, __m256i w, __m256i x) noexcept {
  const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// Rows [r0, r0 + R) x tokens [t0, t0 + T): every chunk of the rows.
template <scheme S, int R, int T>
void tile(const qmatrix<S>& w, const scale_reader<S>& ws, const int8_activations& a, std::size_t r0, std::size_t t0,
          std::span<float> y, std::span<const float> bias, std::atomic<bool>& corrupt) noexcept {
  using G = chunk_geometry<S>;
  constexpr bool group = S::gran == granularity::group;
  const std::size_t rows = w.rows(), cols = w.cols(), spans = G::spans(cols);
  const std::size_t row_bytes = w.row_bytes(), full_spans = row_bytes / G::span_bytes;
  [[maybe_unused]] const std::size_t groups = group ? w.padded_cols() / S::block : 1;
  const weight_decoder<S> dec;
  __m256 acc[R][T];
  for (auto& ar : acc)
    for (auto& v : ar) v = _mm256_setzero_ps();
  [[maybe_unused]] __m256i bad = _mm256_setzero_si256();
  [[maybe_unused]] const __m256i half_pos = S::block == 16 ? second_half_positions<S>() : __m256i{};
  [[maybe_unused]] __m256i state[R][2];
  const std::uint8_t* row_codes[R];
  std::size_t unit0[R]; // scale unit of each row's first column
  __m256 row_scale[R];  // tensor and row scales: one per row
  __m256i row_zero[R];  // and their zero points
  for (int r = 0; r < R; ++r) {
    const std::size_t row = r0 + static_cast<std::size_t>(r);
    row_codes[r] = w.codes().data() + row * row_bytes;
    unit0[r] = S::scale_index(row, 0, cols);
    if constexpr (!group) {
      row_scale[r] = _mm256_set1_ps(ws(unit0[r]));
      row_zero[r] = _mm256_set1_epi8(S::has_zero_point ? static_cast<char>(w.zero_points()[unit0[r]]) : 0);
    }
  }
  const auto span_step = [&](std::size_t sp, const std::uint8_t* const* src) {
    const std::size_t c0 = sp * G::span;
    for (std::size_t ch = 0; ch < G::chunks_per_span; ++ch) {
      __m256i wv[R], aw[R];
      __m256 wscale[R];
      for (int r = 0; r < R; ++r) {
        const __m256i codes = weight_decoder<S>::codes(src[r], ch, state[r], bad);
        wv[r] = dec.values(codes);
        if constexpr (group && S::block == 16) {
          const std::size_t u0 = unit0[r] + 2 * sp, u1 = std::min(u0 + 1, unit0[r] + groups - 1);
          wscale[r] = _mm256_blend_ps(_mm256_set1_ps(ws(u0)), _mm256_set1_ps(ws(u1)), second_half_lanes<S>());
          if constexpr (S::has_zero_point) {
            const __m256i z = _mm256_blendv_epi8(_mm256_set1_epi8(static_cast<char>(w.zero_points()[u0])),
                                                 _mm256_set1_epi8(static_cast<char>(w.zero_points()[u1])), half_pos);
            wv[r] = _mm256_sub_epi8(wv[r], z);
          }
        } else if constexpr (group) {
          const std::size_t u = unit0[r] + c0 / S::block;
          wscale[r] = _mm256_set1_ps(ws(u));
          if constexpr (S::has_zero_point)
            wv[r] = _mm256_sub_epi8(wv[r], _mm256_set1_epi8(static_cast<char>(w.zero_points()[u])));
        } else {
          wscale[r] = row_scale[r];
          if constexpr (S::has_zero_point) wv[r] = _mm256_sub_epi8(wv[r], row_zero[r]);
        }
        aw[r] = _mm256_abs_epi8(wv[r]);
      }
      for (int t = 0; t < T; ++t) {
        const std::size_t tok = t0 + static_cast<std::size_t>(t);
        const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.q_row(tok) + c0 + ch * chunk));
        const __m256 xs = _mm256_set1_ps(a.scale_row(tok)[sp]);
        for (int r = 0; r < R; ++r)
          acc[r][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_lanes(aw[r], wv[r], x)), _mm256_mul_ps(wscale[r], xs), acc[r][t]);
      }
    }
  };
  const std::uint8_t* src[R];
  for (std::size_t sp = 0; sp < full_spans; ++sp) {
    for (int r = 0; r < R; ++r) {
      src[r] = row_codes[r] + sp * G::span_bytes;
      _mm_prefetch(reinterpret_cast<const char*>(src[r] + prefetch_distance), _MM_HINT_T0);
    }
    span_step(sp, src);
  }
  if (full_spans < spans) { // the last, partial span: what the row has, zeros after
    alignas(32) std::uint8_t tail[R][32];
    for (int r = 0; r < R; ++r) {
      std::memset(tail[r], 0, sizeof(tail[r]));
      std::memcpy(tail[r], row_codes[r] + full_spans * G::span_bytes, row_bytes - full_spans * G::span_bytes);
      src[r] = tail[r];
    }
    span_step(full_spans, src);
  }
  if constexpr (G::base3)
    if (!_mm256_testz_si256(bad, bad)) corrupt.store(true, std::memory_order_relaxed);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, acc[r][t]);
      const std::size_t row = r0 + static_cast<std::size_t>(r);
      float out = lane_sum(lanes);
      if (!bias.empty()) out += bias[row];
      y[(t0 + static_cast<std::size_t>(t)) * rows + row] = out;
    }
}

template <scheme S, int R>
void tokens_tile(const qmatrix<S>& w, const scale_reader<S>& ws, const int8_activations& a, std::size_t r0,
                 std::size_t t0, std::size_t nt, std::span<float> y, std::span<const float> bias,
                 std::atomic<bool>& corrupt) noexcept {
  switch (nt) {
  case 1: tile<S, R, 1>(w, ws, a, r0, t0, y, bias, corrupt); break;
  case 2: tile<S, R, 2>(w, ws, a, r0, t0, y, bias, corrupt); break;
  case 3: tile<S, R, 3>(w, ws, a, r0, t0, y, bias, corrupt); break;
  default: tile<S, R, 4>(w, ws, a, r0, t0, y, bias, corrupt); break;
  }
}

} // namespace detail

// Y = X * W^T (+ bias) on activations already quantized by quantize_activations<S>.
template <int8_dot_scheme S>
void linear_int8(const qmatrix<S>& w, const int8_activations& a, std::span<float> y, std::span<const float> bias) {
  const std::size_t rows = w.rows(), tokens = a.tokens;
  const scale_reader<S> ws(w, int8_value_mult<S>());
  std::atomic<bool> corrupt{false};
  // Token blocks keep the activations a tile streams through in L2; small batches use taller
  // row tiles (more independent weight streams), larger ones wider token tiles.
  constexpr std::size_t token_block = 64;
  const int row_tile = tokens < 4 ? 4 : 2;
  parallel_rows(rows, rows * w.cols() * tokens, [&](std::size_t begin, std::size_t end) {
    for (std::size_t tb = 0; tb < tokens; tb += token_block) {
      const std::size_t te = std::min(tokens, tb + token_block);
      std::size_t r = begin;
      for (; r + static_cast<std::size_t>(row_tile) <= end; r += static_cast<std::size_t>(row_tile))
        for (std::size_t t = tb; t < te; t += 4) {
          if (row_tile == 4)
            detail::tokens_tile<S, 4>(w, ws, a, r, t, std::min<std::size_t>(4, te - t), y, bias, corrupt);
          else
            detail::tokens_tile<S, 2>(w, ws, a, r, t, std::min<std::size_t>(4, te - t), y, bias, corrupt);
        }
      for (; r < end; ++r)
        for (std::size_t t = tb; t < te; t += 4)
          detail::tokens_tile<S, 1>(w, ws, a, r, t, std::min<std::size_t>(4, te - t), y, bias, corrupt);
    }
  });
  if (corrupt.load()) throw error("linear: a base-3 code byte is >= 243 (corrupt data)");
}

} // namespace lowbit::kernels::avx2
