// AVX2 integer-dot GEMM on row-interleaved tiles (kernels/int8_tiles.hpp has the layout and the
// arithmetic): per 32-byte load, 4 kernel positions of 8 rows, expanded chunk by chunk to int8
// values exactly as the in-place kernel does (span_decoder; zero-point schemes keep the unsigned
// codes, and subtract zero point x segment sum per row), times each token's 4 activation bytes
// broadcast, by `maddubs`. A segment's products add in int16 (as many as cannot overflow, then into
// int32), and one fp32 fma per segment advances 8 rows. A block of R tiles x T tokens shares every
// decoded register across T tokens and every broadcast across R tiles.
// With VNNI (AVX-512 VNNI or AVX-VNNI: has_vnni) one 256-bit `vpdpbusd` replaces each `maddubs` and its
// widening: it adds the 4-byte products into int32 with no int16 step, so values need no bound and
// signed ones are offset by 128 (xor 0x80) instead of `abs` / `sign` per token; 128 x segment sum is
// subtracted per segment. The int32 sums are the same integers, so results are bit-identical.
// Each tile's code stream is prefetched 2 KiB ahead into L2 by the block of the first tokens
// (LOWBIT_TILED_PREFETCH): on a Zen 5 the hardware prefetchers alone fell well short from DRAM.
// Its scales and zero points follow on the same lead (tile_side_prefetch, LOWBIT_SIDE_PREFETCH).
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/avx2/activations.hpp"
#include "lowbit/kernels/avx2/int8_dot.hpp"
#include "lowbit/kernels/avx2/prefetch.hpp"
#include "lowbit/kernels/avx2/scale_decode.hpp"
#include "lowbit/kernels/avx2/vnni.hpp"
#include "lowbit/kernels/int8_tiles.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

// Tiles of 8 rows and tokens per block (token tails run 2 then 1 at a time). With the running sums
// kept in registers (LOWBIT_OPAQUE), 2 x 4 was the fastest of 2 x 2-4 at N >= 4 on INT4-g32, MXFP4,
// INT8-g128 and NF4 (4096^2, one thread; bench/README.md, run 8); before that fix, 2 x 2 had been
// the fastest of 1-2 x 2-5. With VNNI (and so AVX-512VL's 32 vector registers), 3 x 4: 0.83-0.92x
// the time of 2 x 4 at N = 32-128 on INT4-g32, NF4 and INT8-g128, and 0.8-1.0x at N = 1 from DRAM,
// over four and three alternating rounds (a Zen 4, 4096^2, 2 threads; bench/README.md, run 13).
#ifndef LOWBIT_TILED_ROWS
#if LOWBIT_HAS_AVX512_VNNI
#define LOWBIT_TILED_ROWS 3
#else
#define LOWBIT_TILED_ROWS 2
#endif
#endif
#ifndef LOWBIT_TILED_TOKENS
#define LOWBIT_TILED_TOKENS 4
#endif
// Bytes ahead of the current span that each tile's code stream prefetches into L2 in the block of
// the first tokens (t0 = 0; later blocks find the codes in cache) (0: none). On a Zen 3, 2 and 8 KiB into L1 made no
// difference from DRAM above the noise (run 5); on a Zen 4, 2-16 KiB into L2 made none either (run 14). On a Zen 5, 2
// KiB into L2 took 4-bit GEMV from DRAM from 63-73 % of the read probe to 82-87 %, and 8-bit from 87 % to 101 % (N = 1,
// 4096 x 8192, 2 threads; 1-4 KiB and L1 as the target within the noise of 2 KiB; in-process sweeps of
// bench/ab/prefetch_sweep.sh, bench/README.md run 18).
#ifndef LOWBIT_TILED_PREFETCH
#define LOWBIT_TILED_PREFETCH 2048
#endif

namespace lowbit::kernels::avx2 {

namespace detail {

inline constexpr int tiled_rows = LOWBIT_TILED_ROWS;
inline constexpr int tiled_tokens = LOWBIT_TILED_TOKENS;
inline constexpr std::size_t tiled_prefetch = LOWBIT_TILED_PREFETCH;
static_assert(tiled_rows >= 1 && tiled_rows <= 4 && tiled_tokens >= 1 && tiled_tokens <= 4,
              "tiled blocks of 1-4 tiles x 1-4 tokens");

// maddubs results one int16 sum can take without overflow: each is at most 2 * 127 * max u (the
// codes themselves for zero-point schemes, which subtract zero point x segment sum afterwards).
template <scheme S>
constexpr std::size_t int16_terms() {
  if constexpr (S::has_zero_point) {
    return static_cast<std::size_t>(32767 / (2 * 127 * ((1 << S::code_bits) - 1)));
  } else if constexpr (!span_decoder<S>::unsigned_values) {
    return 1;
  } else {
    int umax = 1;
    for (auto u : int8_unsigned_table_v<S>.u) umax = u > umax ? u : umax;
    return static_cast<std::size_t>(32767 / (2 * 127 * umax));
  }
}

LOWBIT_ALWAYS_INLINE inline __m256i broadcast4(const std::int8_t* p) noexcept {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Tokens t0 .. t0 + T - 1's rows: int8 activations, and per segment the activation scale, offset
// and sum (tile_activations); hoisted out of the span loop, where the compiler would reload them.
template <int T>
struct tile_token_rows {
  const std::int8_t* x[T];
  const float* scale[T];
  const std::int32_t* offset[T];
  const std::int32_t* sum[T];
  tile_token_rows(const int8_activations& a, const tile_activations& ta, std::size_t t0) noexcept {
    LOWBIT_UNROLL
    for (int t = 0; t < T; ++t) {
      const std::size_t tok = t0 + static_cast<std::size_t>(t);
      x[t] = a.q_row(tok);
      scale[t] = ta.scale_row(tok);
      offset[t] = ta.offset_row(tok);
      sum[t] = ta.sum_row(tok);
    }
  }
};

// Whether tiles tile0 .. tile0 + n - 1 all hold plain scale codes (int8_tiled::tile_plain; compact
// scales only): the one-token kernels decode scales in place only on such tiles, with no branch or
// special case in their loop (with both, GCC spilled registers there and NVFP4 ran at 0.7x MXFP4's
// weights per second). Other tiles take the decode into scratch, which has the special cases.
template <int8_tiles_scheme S>
bool tiles_plain(const int8_tiled<S>& w, std::size_t tile0, int n) noexcept {
  for (int r = 0; r < n; ++r)
    if (!w.tile_plain(tile0 + static_cast<std::size_t>(r))) return false;
  return true;
}

// The 8 rows' scales of unit u of plain tile t (tiles_plain) as floats, bit for bit as
// int8_tiled::decode_tile_scales gives them.
template <int8_tiles_scheme S>
LOWBIT_ALWAYS_INLINE inline __m256 tile_scales8(const int8_tiled<S>& w, std::size_t t, std::size_t u) noexcept {
  return scales8_plain(w.decoder(), w.tile_scales(t, u));
}

// The side streams of R tiles from tile0 (their scales and zero points, in arrays of their own),
// prefetched into L2 on the codes' lead (side_ahead) by the first pass over the tiles, one call
// per span: with Inline the scales of the span's units, otherwise the next R tiles' scales, which
// tiled_token_blocks decodes before that block's first span (fp32 ones: which that block reads in
// place); the zero points, read in the kernel either way, of the span's unit.
template <int8_tiles_scheme S, int R, bool Inline>
class tile_side_prefetch {
public:
  explicit tile_side_prefetch(const int8_tiled<S>& w) noexcept
      : w_(w), units_(w.units()), tile_scale_bytes_(units_ * tile_rows * sizeof(typename int8_tiled<S>::scale_type)),
        s_ahead_(side_ahead(tiled_prefetch, tile_scale_bytes_, w.spans() * 256)),
        z_ahead_(side_ahead(tiled_prefetch, units_ * tile_rows, w.spans() * 256)) {}

  LOWBIT_ALWAYS_INLINE void operator()(std::size_t tile0, std::size_t sp) const noexcept {
    const std::size_t u = tile_geometry<S>::unit(sp, 0, units_);
    LOWBIT_UNROLL
    for (int r = 0; r < R; ++r) {
      const std::size_t t = tile0 + static_cast<std::size_t>(r);
      if constexpr (Inline) prefetch_l2<64>(w_.tile_scales(t, u), s_ahead_);
      if constexpr (S::has_zero_point) prefetch_l2<64>(w_.tile_zeros(t, u), z_ahead_);
    }
    if constexpr (!Inline) {
      // Line sp of the next block's scales, which start where tile tile0 + R - 1's end.
      if (sp * 64 < R * tile_scale_bytes_)
        prefetch_l2<64>(w_.tile_scales(tile0 + R - 1, 0), tile_scale_bytes_ + sp * 64);
    }
  }

private:
  const int8_tiled<S>& w_;
  std::size_t units_, tile_scale_bytes_, s_ahead_, z_ahead_;
};

// Tiles tile0 .. tile0 + R - 1 x tokens t0 .. t0 + T - 1; out[r][t] receives the 8 rows' sums.
// scales: the R tiles' decoded scales, units x 8 floats each (int8_tiled::decode_tile_scales), or
// with Inline the scales are decoded where they are used (tile_scales8; one-token calls on
// groups of one segment, where each is used once: see inline_scales).
template <int8_tiles_scheme S, int R, int T, bool Inline = false>
void tiled_block(const int8_tiled<S>& w, const float* scales, const int8_activations& a, const tile_activations& ta,
                 std::size_t tile0, std::size_t t0, float (*out)[T][tile_rows]) noexcept {
  using G = chunk_geometry<S>;
  using TG = tile_geometry<S>;
  using D = span_decoder<S>;
  constexpr bool zp = S::has_zero_point, uvals = D::unsigned_values || zp, vnni = has_vnni;
  constexpr std::size_t C = G::chunks_per_span, SL = TG::segment_lanes, NS = TG::segments;
  constexpr std::size_t M = C * SL, F = int16_terms<S>();
  static_assert(F >= 1);
  const D dec;
  [[maybe_unused]] const __m256i ones16 = _mm256_set1_epi16(1);
  const std::size_t spans = w.spans(), units = w.units();
  __m256 acc[R][T];
  LOWBIT_UNROLL
  for (auto& ar : acc) LOWBIT_UNROLL
  for (auto& v : ar) v = _mm256_setzero_ps();
  const std::uint8_t* cp[R];
  LOWBIT_UNROLL
  for (int r = 0; r < R; ++r) cp[r] = w.tile_codes(tile0 + static_cast<std::size_t>(r));
  const tile_token_rows<T> tok(a, ta, t0);
  __m256i unused = _mm256_setzero_si256();     // span_decoder's corrupt-byte flag (base 3 only)
  [[maybe_unused]] const bool first = t0 == 0; // later tokens find the tiles' codes in cache
  const tile_side_prefetch<S, R, Inline> side(w);
  for (std::size_t sp = 0; sp < spans; ++sp) {
    if constexpr (tiled_prefetch != 0)
      if (first) {
        LOWBIT_UNROLL
        for (int r = 0; r < R; ++r) prefetch_l2<256>(cp[r] + sp * 256, tiled_prefetch);
      }
    if constexpr (side_prefetch)
      if (first && tiled_prefetch != 0) side(tile0, sp);
    LOWBIT_UNROLL
    for (std::size_t g = 0; g < NS; ++g) {
      __m256i i16[R][T], i32[R][T];
      LOWBIT_UNROLL
      for (std::size_t l = 0; l < SL; ++l) {
        const std::size_t lane = g * SL + l;
        typename D::state st[R];
        LOWBIT_UNROLL
        for (int r = 0; r < R; ++r) D::load(cp[r] + (sp * 8 + lane) * 32, st[r], unused);
        LOWBIT_UNROLL
        for (std::size_t h = 0; h < C; ++h) {
          const std::size_t k = l * C + h; // this product's index within the segment
          __m256i wv[R];
          [[maybe_unused]] __m256i aw[R];
          LOWBIT_UNROLL
          for (int r = 0; r < R; ++r) {
            if constexpr (zp)
              wv[r] = D::codes(st[r], h);
            else
              wv[r] = dec.values(D::codes(st[r], h));
            if constexpr (vnni && !uvals)
              wv[r] = _mm256_xor_si256(wv[r], _mm256_set1_epi8(static_cast<char>(0x80))); // v + 128
            else if constexpr (!uvals)
              aw[r] = _mm256_abs_epi8(wv[r]);
          }
          LOWBIT_UNROLL
          for (int t = 0; t < T; ++t) {
            const __m256i x = broadcast4(tok.x[t] + sp * G::span + h * chunk + 4 * lane);
            LOWBIT_UNROLL
            for (int r = 0; r < R; ++r) {
              if constexpr (vnni) {
                i32[r][t] = dpbusd(k == 0 ? _mm256_setzero_si256() : i32[r][t], wv[r], x);
              } else if constexpr (uvals) {
                const __m256i p = _mm256_maddubs_epi16(wv[r], x);
                i16[r][t] = k % F == 0 ? p : _mm256_add_epi16(i16[r][t], p);
                LOWBIT_OPAQUE(i16[r][t]);
                if (k % F == F - 1 || k == M - 1) {
                  const __m256i s = _mm256_madd_epi16(i16[r][t], ones16);
                  i32[r][t] = k < F ? s : _mm256_add_epi32(i32[r][t], s);
                }
              } else {
                const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(x, wv[r])), ones16);
                i32[r][t] = k == 0 ? s : _mm256_add_epi32(i32[r][t], s);
                LOWBIT_OPAQUE(i32[r][t]);
              }
            }
          }
        }
      }
      const std::size_t u = TG::unit(sp, g, units), seg = sp * NS + g;
      LOWBIT_UNROLL
      for (int r = 0; r < R; ++r) {
        __m256 wsv;
        if constexpr (Inline)
          wsv = tile_scales8(w, tile0 + static_cast<std::size_t>(r), u);
        else
          wsv = _mm256_loadu_ps(scales + (static_cast<std::size_t>(r) * units + u) * tile_rows);
        [[maybe_unused]] __m256i zv;
        if constexpr (zp)
          zv = _mm256_cvtepu8_epi32(
              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w.tile_zeros(tile0 + static_cast<std::size_t>(r), u))));
        LOWBIT_UNROLL
        for (int t = 0; t < T; ++t) {
          __m256i i = i32[r][t];
          if constexpr (zp)
            i = _mm256_sub_epi32(i, _mm256_mullo_epi32(zv, _mm256_set1_epi32(tok.sum[t][seg])));
          else if constexpr (vnni && !uvals)
            i = _mm256_sub_epi32(i, _mm256_set1_epi32(tok.sum[t][seg] * 128));
          else if constexpr (uvals)
            i = _mm256_sub_epi32(i, _mm256_set1_epi32(tok.offset[t][seg]));
          acc[r][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_mul_ps(wsv, _mm256_set1_ps(tok.scale[t][seg])), acc[r][t]);
        }
      }
    }
  }
  LOWBIT_UNROLL
  for (int r = 0; r < R; ++r) LOWBIT_UNROLL
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(out[r][t], acc[r][t]);
}

template <int8_tiles_scheme S, int R, int T>
void tiled_store(const int8_tiled<S>& w, std::size_t tile0, std::size_t t0, const float (*out)[T][tile_rows],
                 std::span<float> y, std::span<const float> bias) noexcept {
  const std::size_t rows = w.rows();
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      const std::size_t r0 = (tile0 + static_cast<std::size_t>(r)) * tile_rows;
      float* yt = y.data() + (t0 + static_cast<std::size_t>(t)) * rows;
      for (std::size_t i = 0; i < tile_rows && r0 + i < rows; ++i)
        yt[r0 + i] = bias.empty() ? out[r][t][i] : out[r][t][i] + bias[r0 + i];
    }
}

// Blocks of T tokens from t while T fit before te; returns the first token left.
template <int8_tiles_scheme S, int R, int T, bool Inline = false>
std::size_t tiled_run(const int8_tiled<S>& w, const float* scales, const int8_activations& a,
                      const tile_activations& ta, std::size_t tile0, std::size_t t, std::size_t te, std::span<float> y,
                      std::span<const float> bias) noexcept {
  for (; t + T <= te; t += T) {
    alignas(32) float out[R][T][tile_rows];
    tiled_block<S, R, T, Inline>(w, scales, a, ta, tile0, t, out);
    tiled_store<S, R, T>(w, tile0, t, out, y, bias);
  }
  return t;
}

// One-token blocks decode each unit's scales in the kernel (no stores to scratch and reloads) where
// a scale unit is exactly one segment, so that each is decoded once: 8-bit or fp16 scale codes on
// groups of 16 or 32 (NVFP4, MXFP4, INT4-g32, MXINT8, ...). With NVFP4 and MXFP4 GEMV that took
// 0.73-0.89x the time in L3 (bench/README.md, run 10).
template <int8_tiles_scheme S>
constexpr bool inline_scales() {
  if constexpr (!int8_tiled<S>::compact_scales || S::gran != granularity::group)
    return false;
  else
    return S::block == chunk_geometry<S>::span * tile_geometry<S>::segment_lanes / 8;
}

// The fp32 scales of tiles tile0 .. tile0 + n - 1, unit by unit and tile after tile: where the
// tiles keep scale codes, decoded into scratch; where they keep fp32 (fp32 or bf16 scales, double
// quantization), the stored array itself, which has that order, so that no copy is made.
template <int8_tiles_scheme S>
const float* tile_scales_f32(const int8_tiled<S>& w, float* scratch, std::size_t tile0, int n) noexcept {
  if constexpr (int8_tiled<S>::compact_scales) {
    for (int r = 0; r < n; ++r)
      w.decode_tile_scales(tile0 + static_cast<std::size_t>(r),
                           scratch + static_cast<std::size_t>(r) * w.units() * tile_rows);
    return scratch;
  } else {
    return w.tile_scales(tile0, 0);
  }
}

template <int8_tiles_scheme S, int R>
void tiled_token_blocks(const int8_tiled<S>& w, float* scales, const int8_activations& a, const tile_activations& ta,
                        std::size_t tile0, std::size_t tb, std::size_t te, std::span<float> y,
                        std::span<const float> bias) noexcept {
  if constexpr (inline_scales<S>()) {
    if (te - tb == 1 && tiles_plain(w, tile0, R)) { // one token: decode each scale where it is used
      tiled_run<S, R, 1, true>(w, scales, a, ta, tile0, tb, te, y, bias);
      return;
    }
  }
  const float* sc = tile_scales_f32(w, scales, tile0, R);
  // Blocks of tiled_tokens tokens, then the tail 2 and 1 at a time.
  std::size_t t = tiled_run<S, R, tiled_tokens>(w, sc, a, ta, tile0, tb, te, y, bias);
  if constexpr (tiled_tokens > 2) t = tiled_run<S, R, 2>(w, sc, a, ta, tile0, t, te, y, bias);
  tiled_run<S, R, 1>(w, sc, a, ta, tile0, t, te, y, bias);
}

// The tile kernels' outer loop (this one's and the 512-bit one's): tiles split across threads,
// tokens in blocks of 64, which keep the activations a tile streams through in L2 (a tile's scales
// are decoded once per token block, in the kernel for one-token blocks, see inline_scales); per
// thread and token block, run(scales, begin, end, tb, te) on the thread's tiles begin .. end - 1
// and tokens tb .. te - 1, scales being the thread's scratch (scratch_per_thread floats).
template <int8_tiles_scheme S, class Run>
void split_tiles(const int8_tiled<S>& w, std::size_t tokens, float* scratch, std::size_t scratch_per_thread,
                 Run&& run) {
  constexpr std::size_t token_block = 64;
  parallel_rows(w.tiles(), w.rows() * w.cols() * tokens, [&](std::size_t begin, std::size_t end) {
    float* scales = scratch + static_cast<std::size_t>(thread_index()) * scratch_per_thread;
    for (std::size_t tb = 0; tb < tokens; tb += token_block)
      run(scales, begin, end, tb, std::min(tokens, tb + token_block));
  });
}

} // namespace detail

// prepare_tile_activations (kernels/int8_tiles.hpp) with AVX2, the same integers and scales: each
// span's 8 lane sums at once (detail::span_lane_sums, as the quantizer's offsets), added per
// segment, where the scalar version sums the span's bytes one by one (at K = 8192: 2.30 -> 0.87 us
// for NVFP4, 1.26 -> 0.79 us for INT4-g128; bench/README.md, run 27).
template <int8_tiles_scheme S>
void prepare_tile_activations(const int8_activations& a, tile_activations& out) {
  using G = chunk_geometry<S>;
  using TG = tile_geometry<S>;
  constexpr std::size_t SL = TG::segment_lanes, NS = TG::segments;
  out.per_token = a.spans * NS;
  out.scale.resize(a.tokens * out.per_token);
  out.offset.resize(a.tokens * out.per_token);
  out.sum.resize(a.tokens * out.per_token);
  for (std::size_t t = 0; t < a.tokens; ++t)
    for (std::size_t sp = 0; sp < a.spans; ++sp) {
      const __m256i v = detail::span_lane_sums<S>(a.q_row(t) + sp * G::span);
      alignas(32) std::int32_t lane_sum[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lane_sum), v);
      const std::int32_t* lo = a.lane_offset_row(t) + sp * 8;
      const float* ls = a.lane_scale_row(t) + sp * 8;
      for (std::size_t g = 0; g < NS; ++g) {
        const std::size_t i = t * out.per_token + sp * NS + g;
        std::int32_t sum = 0, off = 0;
        for (std::size_t l = g * SL; l < (g + 1) * SL; ++l) {
          sum += lane_sum[l];
          off += lo[l];
        }
        out.scale[i] = ls[g * SL];
        out.offset[i] = off;
        out.sum[i] = sum;
      }
    }
}

// Floats of per-thread scratch linear_int8_tiled needs.
template <int8_tiles_scheme S>
std::size_t int8_tiles_scratch_size(const int8_tiled<S>& w) noexcept {
  return static_cast<std::size_t>(detail::tiled_rows) * w.units() * tile_rows;
}

// Y = X * W^T (+ bias) on activations quantized by quantize_activations<S> and their segment
// scales and offsets (prepare_tile_activations<S>, either version); tiles split across threads.
// scratch holds int8_tiles_scratch_size(w) floats per thread.
template <int8_tiles_scheme S>
void linear_int8_tiled(const int8_tiled<S>& w, const int8_activations& a, const tile_activations& ta,
                       std::span<float> y, std::span<const float> bias, float* scratch) {
  detail::split_tiles(w, a.tokens, scratch, int8_tiles_scratch_size(w),
                      [&](float* scales, std::size_t begin, std::size_t end, std::size_t tb, std::size_t te) {
                        std::size_t tile = begin;
                        for (; tile + detail::tiled_rows <= end; tile += detail::tiled_rows)
                          detail::tiled_token_blocks<S, detail::tiled_rows>(w, scales, a, ta, tile, tb, te, y, bias);
                        for (; tile < end; ++tile)
                          detail::tiled_token_blocks<S, 1>(w, scales, a, ta, tile, tb, te, y, bias);
                      });
}

} // namespace lowbit::kernels::avx2
