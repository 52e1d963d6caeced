// AVX2 integer-dot kernel (W4A8, W8A8, W2A8, ternary x int8): reads the qmatrix codes in place,
// one span (32 stored bytes) per row at a time, expands each chunk of the span to int8 weight
// values in registers (nibble split or 2-bit shifts, then a byte-shuffle lookup of the 16-entry
// table; base 3 by dividing by 3 in 16-bit lanes) and multiplies with `maddubs`: unsigned table
// values u = v + offset directly (sums of the span's chunks kept in int16, the offset times the
// lane's activation sum subtracted in int32), or |w| times sign(x, w) where the table is too wide
// for that. The per-lane scale product is applied in fp32 once per span, exactly as
// reference::linear_int8 spells out. A tile of R rows x T tokens shares each decoded chunk across
// T tokens and each activation chunk across R rows. With VNNI (AVX-512 VNNI or AVX-VNNI: has_vnni)
// one 256-bit `vpdpbusd` takes the place of each `maddubs` and its widening, into the same int32 sums.
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/avx2/vnni.hpp"
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

// Expands the stored codes of one span of a row into int8 weight values, chunk by chunk.
template <scheme S>
struct span_decoder {
  using G = chunk_geometry<S>;
  static constexpr bool base3 = G::base3;
  static constexpr bool eight = !base3 && S::code_bits == 8;
  static constexpr const auto& utable = int8_unsigned_table_v<S>;
  static constexpr bool unsigned_values = utable.usable; // else signed values (minus zero points)
  // Unsigned tables that are the code xor a constant (two's-complement integers: u = v + 2^(b-1)
  // = code ^ 2^(b-1)) take one xor on the loaded bytes instead of a shuffle per chunk.
  static constexpr unsigned xor_key = [] {
    if constexpr (base3 || eight || !unsigned_values) {
      return 0u;
    } else {
      const unsigned n = 1u << S::code_bits;
      for (unsigned k = 1; k < n; ++k) {
        bool ok = true;
        for (unsigned c = 0; c < n; ++c) ok = ok && utable.u[c] == (c ^ k);
        if (ok) return k;
      }
      return 0u;
    }
  }();
  static constexpr bool lookup = !eight && !(unsigned_values && (utable.identity || xor_key != 0));
  __m256i table{};

  span_decoder() noexcept {
    if constexpr (lookup) {
      __m128i v;
      if constexpr (unsigned_values)
        v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(utable.u.data()));
      else
        v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(int8_table<typename S::element>::get().v.data()));
      table = _mm256_set_m128i(v, v);
    }
  }

  // The span's 32 bytes; base 3 also keeps the remaining quotient in two 16-bit halves, advanced
  // one digit per chunk, and flags bytes >= 243 (corrupt) in `bad`.
  struct state {
    __m256i v;
    __m256i q[base3 ? 2 : 1];
  };
  static void load(const std::uint8_t* p, state& st, __m256i& bad) noexcept {
    st.v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if constexpr (xor_key != 0) {
      unsigned pattern = 0;
      for (int i = 0; i < 8; i += S::code_bits) pattern |= xor_key << i;
      st.v = _mm256_xor_si256(st.v, _mm256_set1_epi8(static_cast<char>(pattern)));
    }
    if constexpr (base3) {
      bad =
          _mm256_or_si256(bad, _mm256_xor_si256(_mm256_min_epu8(st.v, _mm256_set1_epi8(static_cast<char>(242))), st.v));
      st.q[0] = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(st.v));
      st.q[1] = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(st.v, 1));
    } else {
      (void)bad;
    }
  }

  // Codes of chunk h (called for h = 0, 1, ... in order).
  static __m256i codes(state& st, std::size_t h) noexcept {
    if constexpr (base3) {
      (void)h;
      __m256i d[2];
      LOWBIT_UNROLL
      for (int i = 0; i < 2; ++i) {
        const __m256i q = _mm256_mulhi_epu16(st.q[i], _mm256_set1_epi16(21846)); // x / 3 for x < 2^15
        d[i] = _mm256_sub_epi16(st.q[i], _mm256_add_epi16(q, _mm256_add_epi16(q, q)));
        st.q[i] = q;
      }
      return _mm256_permute4x64_epi64(_mm256_packus_epi16(d[0], d[1]), 0xD8);
    } else if constexpr (S::code_bits == 4) {
      const __m256i v = h == 0 ? st.v : _mm256_srli_epi16(st.v, 4);
      return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
    } else if constexpr (S::code_bits == 2) {
      return _mm256_and_si256(_mm256_srli_epi16(st.v, static_cast<int>(2 * h)), _mm256_set1_epi8(3));
    } else {
      (void)h;
      return st.v;
    }
  }

  __m256i values(__m256i codes) const noexcept {
    if constexpr (lookup)
      return _mm256_shuffle_epi8(table, codes);
    else
      return codes;
  }
};

// Tile shapes and software prefetch, measured on a Zen 3 (bench/README.md): at N < 4 one row at a
// time (a single sequential stream per thread, which the hardware prefetcher follows best; 2- and
// 4-row tiles were slower from DRAM), at N >= 4 tiles of 4 rows x 3 tokens (the best of 1-4 rows x
// 3-4 tokens). Software prefetch 8 KiB ahead helped 4- and 8-bit codes from DRAM (+15-25 % for
// 4-bit) and hurt 2-bit ones, which get none. The macros exist for re-tuning on other machines.
#ifndef LOWBIT_GEMM_ROWS
#define LOWBIT_GEMM_ROWS 4
#endif
#ifndef LOWBIT_GEMM_TOKENS
#define LOWBIT_GEMM_TOKENS 3
#endif
#ifndef LOWBIT_GEMV_ROWS
#define LOWBIT_GEMV_ROWS 1
#endif
#ifndef LOWBIT_PREFETCH
#define LOWBIT_PREFETCH 8192
#endif
inline constexpr int gemm_rows = LOWBIT_GEMM_ROWS;
inline constexpr std::size_t gemm_tokens = LOWBIT_GEMM_TOKENS;
// Bytes ahead of the current span each weight stream prefetches (0: none).
template <scheme S>
constexpr std::size_t prefetch_distance() {
  return S::layout == code_layout::base3 || S::code_bits < 4 ? 0 : LOWBIT_PREFETCH;
}
inline constexpr int gemv_rows = LOWBIT_GEMV_ROWS;
static_assert(gemm_rows >= 1 && gemm_rows <= 4 && gemv_rows >= 1 && gemv_rows <= 4, "row tiles of 1 to 4 rows");
static_assert(gemm_tokens == 3 || gemm_tokens == 4, "token tiles of 3 or 4 tokens");

// Scale units of one span: the span's codes fall into `n` consecutive units of a group scheme (1,
// 2, 4 or 8); lane l of a chunk belongs to unit l / (8 / n), byte j of a chunk to unit j / (32 / n).
template <scheme S>
constexpr std::size_t span_units() {
  if constexpr (S::gran != granularity::group)
    return 1;
  else
    return S::block >= chunk_geometry<S>::span ? 1 : chunk_geometry<S>::span / S::block;
}

// Lane scales of a span from the row's unit scales f (the span's first unit at f[0]).
template <std::size_t N>
inline __m256 lane_vector(const float* f) noexcept {
  if constexpr (N == 1) {
    return _mm256_broadcast_ss(f);
  } else if constexpr (N == 2) {
    // _mm_loadl_epi64 is an unaligned 8-byte load (_mm_load_sd would assume double alignment).
    const __m128 v = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(f)));
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0));
  } else if constexpr (N == 4) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(f)), _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0));
  } else {
    static_assert(N == 8);
    return _mm256_loadu_ps(f);
  }
}

// Unit scales of a group scheme's row as floats, then copies of the last one for the lanes of the
// last span that lie past the row (the reference reads the last unit there too).
template <scheme S>
std::size_t row_scale_stride(const qmatrix<S>& w) noexcept {
  if constexpr (S::gran == granularity::group)
    return w.padded_cols() / S::block + 8;
  else
    return 0;
}
template <scheme S>
void row_scales(const qmatrix<S>& w, const scale_reader<S>& ws, std::size_t row, float* out) noexcept {
  const std::size_t units = w.padded_cols() / S::block, u0 = S::scale_index(row, 0, w.cols());
  ws.read(u0, units, out);
  for (std::size_t u = units; u < units + 8; ++u) out[u] = out[units - 1];
}

template <std::size_t N, class F>
inline __m256i byte_vector(F&& unit) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<std::uint64_t>(unit(k)) * 0x0101010101010101ull; };
  if constexpr (N == 1) {
    return _mm256_set1_epi64x(static_cast<long long>(b(0)));
  } else if constexpr (N == 2) {
    return _mm256_set_epi64x(static_cast<long long>(b(1)), static_cast<long long>(b(1)), static_cast<long long>(b(0)),
                             static_cast<long long>(b(0)));
  } else if constexpr (N == 4) {
    return _mm256_set_epi64x(static_cast<long long>(b(3)), static_cast<long long>(b(2)), static_cast<long long>(b(1)),
                             static_cast<long long>(b(0)));
  } else {
    static_assert(N == 8);
    const auto w = [&](std::size_t k) { return static_cast<int>(static_cast<std::uint32_t>(b(k))); };
    return _mm256_set_epi32(w(7), w(6), w(5), w(4), w(3), w(2), w(1), w(0));
  }
}

// Rows [r0, r0 + R) x tokens [t0, t0 + T): every span of the rows.
// Group schemes read their scales from `scales` (row_scales of each row, row_scale_stride apart).
template <scheme S, int R, int T>
void tile(const qmatrix<S>& w, const scale_reader<S>& ws, const float* scales, const int8_activations& a,
          std::size_t r0, std::size_t t0, std::span<float> y, std::span<const float> bias,
          std::atomic<bool>& corrupt) noexcept {
  using G = chunk_geometry<S>;
  using D = span_decoder<S>;
  constexpr bool group = S::gran == granularity::group;
  constexpr bool uvals = D::unsigned_values, vnni = has_vnni;
  constexpr std::size_t C = G::chunks_per_span;
  [[maybe_unused]] constexpr std::size_t NU = span_units<S>();
  const std::size_t rows = w.rows(), cols = w.cols(), spans = G::spans(cols);
  const std::size_t row_bytes = w.row_bytes(), full_spans = row_bytes / G::span_bytes;
  [[maybe_unused]] const std::size_t last_unit = group ? w.padded_cols() / S::block - 1 : 0;
  [[maybe_unused]] const std::size_t stride = row_scale_stride(w);
  const D dec;
  [[maybe_unused]] const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 acc[R][T];
  LOWBIT_UNROLL
  for (auto& ar : acc) LOWBIT_UNROLL
  for (auto& v : ar) v = _mm256_setzero_ps();
  __m256i bad = _mm256_setzero_si256();
  const std::uint8_t* row_codes[R];
  std::size_t unit0[R]; // scale unit of each row's first column
  __m256 row_scale[R];  // tensor and row scales: one per row
  __m256i row_zero[R];  // and their zero points
  LOWBIT_UNROLL
  for (int r = 0; r < R; ++r) {
    const std::size_t row = r0 + static_cast<std::size_t>(r);
    row_codes[r] = w.codes().data() + row * row_bytes;
    unit0[r] = S::scale_index(row, 0, cols);
    if constexpr (!group) {
      row_scale[r] = _mm256_set1_ps(ws(unit0[r]));
      row_zero[r] = _mm256_set1_epi8(S::has_zero_point ? static_cast<char>(w.zero_points()[unit0[r]]) : 0);
    }
  }
  // The tokens' rows of activations, lane scales and lane offsets (hoisted: the compiler reloads
  // them from `a` in every span otherwise).
  const std::int8_t* xrow[T];
  const float* xscale[T];
  const std::int32_t* xoffset[T];
  LOWBIT_UNROLL
  for (int t = 0; t < T; ++t) {
    const std::size_t tok = t0 + static_cast<std::size_t>(t);
    xrow[t] = a.q_row(tok);
    xscale[t] = a.lane_scale_row(tok);
    xoffset[t] = a.lane_offset_row(tok);
  }
  const auto span_step = [&](std::size_t sp, const std::uint8_t* const* src) LOWBIT_ALWAYS_INLINE {
    typename D::state st[R];
    __m256 wscale[R];
    [[maybe_unused]] __m256i wzero[R];
    LOWBIT_UNROLL
    for (int r = 0; r < R; ++r) {
      D::load(src[r], st[r], bad);
      if constexpr (group) {
        const std::size_t k0 = sp * G::span / S::block;
        wscale[r] = lane_vector<NU>(scales + static_cast<std::size_t>(r) * stride + k0);
        if constexpr (S::has_zero_point) {
          const std::size_t u = unit0[r] + k0, ul = unit0[r] + last_unit;
          wzero[r] = byte_vector<NU>([&](std::size_t k) { return w.zero_points()[std::min(u + k, ul)]; });
        }
      } else {
        wscale[r] = row_scale[r];
        if constexpr (S::has_zero_point) wzero[r] = row_zero[r];
      }
    }
    __m256i isum[R][T];
    LOWBIT_UNROLL
    for (std::size_t h = 0; h < C; ++h) {
      __m256i wv[R], aw[R];
      LOWBIT_UNROLL
      for (int r = 0; r < R; ++r) {
        wv[r] = dec.values(D::codes(st[r], h));
        if constexpr (S::has_zero_point) wv[r] = _mm256_sub_epi8(wv[r], wzero[r]);
        if constexpr (!uvals) aw[r] = _mm256_abs_epi8(wv[r]);
      }
      LOWBIT_UNROLL
      for (int t = 0; t < T; ++t) {
        const std::int8_t* xq = xrow[t] + sp * G::span + h * chunk;
        const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq));
        LOWBIT_UNROLL
        for (int r = 0; r < R; ++r) {
          if constexpr (vnni) {
            const __m256i i0 = h == 0 ? _mm256_setzero_si256() : isum[r][t];
            if constexpr (uvals)
              isum[r][t] = dpbusd(i0, wv[r], x);
            else
              isum[r][t] = dpbusd(i0, aw[r], _mm256_sign_epi8(x, wv[r]));
          } else {
            __m256i p;
            if constexpr (uvals)
              p = _mm256_maddubs_epi16(wv[r], x); // int16 sums of the span's chunks cannot overflow
            else
              p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(x, wv[r])), ones16);
            if (h == 0)
              isum[r][t] = p;
            else if constexpr (uvals)
              isum[r][t] = _mm256_add_epi16(isum[r][t], p);
            else
              isum[r][t] = _mm256_add_epi32(isum[r][t], p);
          }
        }
      }
    }
    LOWBIT_UNROLL
    for (int t = 0; t < T; ++t) {
      const __m256 xs = _mm256_load_ps(xscale[t] + sp * 8);
      [[maybe_unused]] __m256i off;
      if constexpr (uvals) off = _mm256_load_si256(reinterpret_cast<const __m256i*>(xoffset[t] + sp * 8));
      LOWBIT_UNROLL
      for (int r = 0; r < R; ++r) {
        __m256i i = isum[r][t];
        if constexpr (uvals && vnni)
          i = _mm256_sub_epi32(i, off);
        else if constexpr (uvals)
          i = _mm256_sub_epi32(_mm256_madd_epi16(i, ones16), off);
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_mul_ps(wscale[r], xs), acc[r][t]);
      }
    }
  };
  const std::uint8_t* src[R];
  for (std::size_t sp = 0; sp < full_spans; ++sp) {
    LOWBIT_UNROLL
    for (int r = 0; r < R; ++r) {
      src[r] = row_codes[r] + sp * G::span_bytes;
      if (prefetch_distance<S>() != 0 && sp % 2 == 0)
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(src[r]) + prefetch_distance<S>()),
                     _MM_HINT_T0); // may point past the matrix: prefetches never fault
    }
    span_step(sp, src);
  }
  if (full_spans < spans) { // the last, partial span: what the row has, zeros after
    alignas(32) std::uint8_t tail[R][32];
    LOWBIT_UNROLL
    for (int r = 0; r < R; ++r) {
      std::memset(tail[r], 0, sizeof(tail[r]));
      std::memcpy(tail[r], row_codes[r] + full_spans * G::span_bytes, row_bytes - full_spans * G::span_bytes);
      src[r] = tail[r];
    }
    span_step(full_spans, src);
  }
  if constexpr (G::base3)
    if (!_mm256_testz_si256(bad, bad)) corrupt.store(true, std::memory_order_relaxed);
  LOWBIT_UNROLL
  for (int r = 0; r < R; ++r) LOWBIT_UNROLL
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
void tokens_tile(const qmatrix<S>& w, const scale_reader<S>& ws, const float* scales, const int8_activations& a,
                 std::size_t r0, std::size_t t0, std::size_t nt, std::span<float> y, std::span<const float> bias,
                 std::atomic<bool>& corrupt) noexcept {
  switch (nt) {
  case 1: tile<S, R, 1>(w, ws, scales, a, r0, t0, y, bias, corrupt); break;
  case 2: tile<S, R, 2>(w, ws, scales, a, r0, t0, y, bias, corrupt); break;
  case 3: tile<S, R, 3>(w, ws, scales, a, r0, t0, y, bias, corrupt); break;
  default:
    if constexpr (gemm_tokens == 4)
      tile<S, R, 4>(w, ws, scales, a, r0, t0, y, bias, corrupt);
    else
      tile<S, R, 3>(w, ws, scales, a, r0, t0, y, bias, corrupt);
    break;
  }
}

template <scheme S, int R>
void row_tile(const qmatrix<S>& w, const scale_reader<S>& ws, float* scales, const int8_activations& a, std::size_t r0,
              std::size_t tb, std::size_t te, std::span<float> y, std::span<const float> bias,
              std::atomic<bool>& corrupt) noexcept {
  if constexpr (S::gran == granularity::group)
    for (int r = 0; r < R; ++r)
      row_scales(w, ws, r0 + static_cast<std::size_t>(r), scales + static_cast<std::size_t>(r) * row_scale_stride(w));
  for (std::size_t t = tb; t < te; t += gemm_tokens)
    tokens_tile<S, R>(w, ws, scales, a, r0, t, std::min<std::size_t>(gemm_tokens, te - t), y, bias, corrupt);
}

} // namespace detail

// Floats of per-thread scratch linear_int8 needs.
template <scheme S>
std::size_t int8_scratch_size(const qmatrix<S>& w) noexcept {
  return 4 * detail::row_scale_stride(w);
}

// Y = X * W^T (+ bias) on activations already quantized by quantize_activations<S>; scratch holds
// int8_scratch_size(w) floats per thread.
template <int8_dot_scheme S>
void linear_int8(const qmatrix<S>& w, const int8_activations& a, std::span<float> y, std::span<const float> bias,
                 float* scratch) {
  const std::size_t rows = w.rows(), tokens = a.tokens;
  const scale_reader<S> ws(w, int8_value_mult<S>());
  std::atomic<bool> corrupt{false};
  // Token blocks keep the activations a tile streams through in L2; small batches use taller
  // row tiles (more independent weight streams), larger ones wider token tiles.
  constexpr std::size_t token_block = 64;
  const bool tall = tokens < 4;
  parallel_rows(rows, rows * w.cols() * tokens, [&](std::size_t begin, std::size_t end) {
    float* scales = scratch + static_cast<std::size_t>(thread_index()) * int8_scratch_size(w);
    for (std::size_t tb = 0; tb < tokens; tb += token_block) {
      const std::size_t te = std::min(tokens, tb + token_block);
      std::size_t r = begin;
      if (tall)
        for (; r + detail::gemv_rows <= end; r += detail::gemv_rows)
          detail::row_tile<S, detail::gemv_rows>(w, ws, scales, a, r, tb, te, y, bias, corrupt);
      else
        for (; r + detail::gemm_rows <= end; r += detail::gemm_rows)
          detail::row_tile<S, detail::gemm_rows>(w, ws, scales, a, r, tb, te, y, bias, corrupt);
      for (; r < end; ++r) detail::row_tile<S, 1>(w, ws, scales, a, r, tb, te, y, bias, corrupt);
    }
  });
  if (corrupt.load()) throw error("linear: a base-3 code byte is >= 243 (corrupt data)");
}

} // namespace lowbit::kernels::avx2
