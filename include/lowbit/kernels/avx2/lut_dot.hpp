// AVX2 LUT kernel (kernels/lut.hpp has the algorithm and the layout): per tile of 16 rows and
// block of 32 columns, one 32-byte load feeds two table shuffles (groups j and j + 1) and two
// maddubs that weight and add a pair of bit planes; int16 sums per block, then int32 (two madd,
// no cross-lane shuffle), the token's side in one fma and the row scales in another. Up to
// lut_tokens tokens share each load of the weights; the codes are prefetched into L2 lut_prefetch
// bytes ahead.
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/avx2/activations.hpp"
#include "lowbit/kernels/avx2/prefetch.hpp"
#include "lowbit/kernels/lut.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef LOWBIT_LUT_TOKENS
#define LOWBIT_LUT_TOKENS 2
#endif
// Bytes ahead of the current block that each block prefetches into L2 (0: none), on the first
// pass over a tile's codes. With 2 threads from DRAM (bench/README.md): on a Zen 3, 2048 bytes into
// L1 raised 2-bit GEMV from 26 to 30 GB/s of a 29.6 GB/s read probe (run 3); on a Zen 4, 6144 bytes
// into L2 instead of 2048 into L1 raised INT2 from 70 % of the probe to 82-88 %, ternary 2-bit from
// 62-65 % to 88-97 % and base 3 from 53 % to 73-77 % (in-process sweeps, run 14).
#ifndef LOWBIT_LUT_PREFETCH
#define LOWBIT_LUT_PREFETCH 6144
#endif

namespace lowbit::kernels::avx2 {

// Tokens processed per pass over a tile (their int16 and fp32 accumulators stay in registers).
inline constexpr std::size_t lut_tokens = LOWBIT_LUT_TOKENS;
static_assert(lut_tokens >= 1 && lut_tokens <= 4, "LOWBIT_LUT_TOKENS must be 1-4");
inline constexpr std::size_t lut_prefetch = LOWBIT_LUT_PREFETCH;

namespace detail {

// The 16 stored scales of unit u of a tile as fp32: rows 0-7 in lo, 8-15 in hi.
template <lut_scheme S>
LOWBIT_ALWAYS_INLINE inline void lut_tile_scales(const lut_matrix<S>& w, std::size_t tile, std::size_t u, __m256& lo,
                                                 __m256& hi) noexcept {
  const auto* s = w.tile_scales(tile, u);
  if constexpr (lut_traits<S>::half_scales) {
    lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
    hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 8)));
  } else {
    lo = _mm256_loadu_ps(s);
    hi = _mm256_loadu_ps(s + 8);
  }
}

// Tokens t0 .. t0 + NT - 1 of one tile; out receives NT x 16 sums (before bias).
template <lut_scheme S, std::size_t NT>
void lut_tile(const lut_matrix<S>& w, const lut_activations& a, std::size_t tile, std::size_t t0,
              float (*out)[lut_tile_rows]) noexcept {
  using tr = lut_traits<S>;
  constexpr std::size_t P = tr::planes / 2; // plane pairs; an odd last plane follows them on its own
  constexpr bool lone = tr::planes % 2 != 0;
  const __m256i nib = _mm256_set1_epi8(0x0F);
  __m256i apat[P + 1]; // the lone plane's weights (a, 0) last
  LOWBIT_UNROLL
  for (std::size_t p = 0; p < P; ++p)
    apat[p] = _mm256_set1_epi16(static_cast<short>(tr::dec.a[2 * p] | (tr::dec.a[2 * p + 1] << 8)));
  apat[P] = _mm256_set1_epi16(static_cast<short>(tr::dec.a[tr::planes - 1]));
  __m256 acc[NT][2];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
  const std::int8_t* q[NT];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) q[t] = a.q_row(t0 + t);
  const std::uint8_t* cp = w.tile_codes(tile);
  [[maybe_unused]] const bool first = t0 == 0; // later tokens find the tile's codes in cache
  const std::size_t blocks = w.blocks();
  std::size_t unit = ~std::size_t{0};
  [[maybe_unused]] const float g = w.scale_multiplier(), kg = tr::k * g;
  // The scales' (and zero points') lead in their own arrays: the codes' lut_prefetch bytes.
  constexpr std::size_t TB = lut_matrix<S>::tile_block_bytes;
  [[maybe_unused]] const std::size_t side_bytes = w.units() * lut_tile_rows,
                                     s_ahead = side_ahead(lut_prefetch,
                                                          side_bytes * sizeof(typename lut_matrix<S>::scale_type),
                                                          blocks * TB),
                                     z_ahead = side_ahead(lut_prefetch, side_bytes, blocks * TB);
  __m256 ws_lo = _mm256_setzero_ps(), ws_hi = _mm256_setzero_ps();
  __m256 kz_lo = _mm256_setzero_ps(), kz_hi = kz_lo; // (k - zero point) * g per row
  const __m256i even = _mm256_set1_epi32(1), odd = _mm256_set1_epi32(0x10000);
  for (std::size_t b = 0; b < blocks; ++b) {
    __m256i isum[NT];
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
    if constexpr (lut_prefetch != 0)
      if (first) prefetch_l2<TB>(cp, lut_prefetch);
    LOWBIT_UNROLL
    for (std::size_t gp = 0; gp < 4; ++gp) {
      __m256i tl[NT], th[NT];
      LOWBIT_UNROLL
      for (std::size_t t = 0; t < NT; ++t) {
        const std::int8_t* tab = q[t] + (b * lut_tables_per_block + 2 * gp) * 16;
        tl[t] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(tab)));
        th[t] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(tab + 16)));
      }
      LOWBIT_UNROLL
      for (std::size_t p = 0; p < P; ++p) {
        const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(cp + (gp * P + p) * 32));
        const __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
        LOWBIT_UNROLL
        for (std::size_t t = 0; t < NT; ++t) {
          const __m256i s0 = _mm256_maddubs_epi16(apat[p], _mm256_shuffle_epi8(tl[t], lo));
          const __m256i s1 = _mm256_maddubs_epi16(apat[p], _mm256_shuffle_epi8(th[t], hi));
          isum[t] = _mm256_add_epi16(isum[t], _mm256_add_epi16(s0, s1));
        }
      }
      if constexpr (lone) {
        // 16 bytes, one per row, zero-extended to the int16 lanes: the high bytes look up entry 0,
        // which the maddubs weights by 0.
        const __m256i v =
            _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(cp + 4 * P * 32 + gp * 16)));
        const __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_srli_epi16(v, 4);
        LOWBIT_UNROLL
        for (std::size_t t = 0; t < NT; ++t) {
          const __m256i s0 = _mm256_maddubs_epi16(apat[P], _mm256_shuffle_epi8(tl[t], lo));
          const __m256i s1 = _mm256_maddubs_epi16(apat[P], _mm256_shuffle_epi8(th[t], hi));
          isum[t] = _mm256_add_epi16(isum[t], _mm256_add_epi16(s0, s1));
        }
      }
    }
    cp += TB;
    const std::size_t u = tr::unit_of_block(b);
    if (u != unit) {
      unit = u;
      if constexpr (side_prefetch)
        if (first && lut_prefetch != 0) {
          prefetch_l2<64>(w.tile_scales(tile, u), s_ahead);
          if constexpr (S::has_zero_point) prefetch_l2<64>(w.tile_zeros(tile, u), z_ahead);
        }
      lut_tile_scales(w, tile, u, ws_lo, ws_hi);
      if constexpr (S::has_zero_point) {
        const std::uint8_t* z = w.tile_zeros(tile, u);
        const __m256 k = _mm256_set1_ps(tr::k), gv = _mm256_set1_ps(g);
        kz_lo = _mm256_mul_ps(_mm256_sub_ps(k, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                                   _mm_loadl_epi64(reinterpret_cast<const __m128i*>(z))))),
                              gv);
        kz_hi = _mm256_mul_ps(_mm256_sub_ps(k, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                                   _mm_loadl_epi64(reinterpret_cast<const __m128i*>(z + 8))))),
                              gv);
      }
    }
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) {
      // Lanes 2i and 2i + 1 hold rows i and 8 + i (lut_row_of_lane): madd splits them into int32.
      const __m256 lo = _mm256_cvtepi32_ps(_mm256_madd_epi16(isum[t], even));
      const __m256 hi = _mm256_cvtepi32_ps(_mm256_madd_epi16(isum[t], odd));
      const __m256 sg = _mm256_set1_ps(a.scale_row(t0 + t)[b] * g);
      const float xs = a.xsum_row(t0 + t)[b];
      __m256 v_lo, v_hi;
      if constexpr (S::has_zero_point) {
        const __m256 x = _mm256_set1_ps(xs);
        v_lo = _mm256_fmadd_ps(lo, sg, _mm256_mul_ps(kz_lo, x));
        v_hi = _mm256_fmadd_ps(hi, sg, _mm256_mul_ps(kz_hi, x));
      } else if constexpr (tr::k != 0.0f) {
        const __m256 kx = _mm256_set1_ps(kg * xs);
        v_lo = _mm256_fmadd_ps(lo, sg, kx);
        v_hi = _mm256_fmadd_ps(hi, sg, kx);
      } else {
        v_lo = _mm256_mul_ps(lo, sg);
        v_hi = _mm256_mul_ps(hi, sg);
      }
      acc[t][0] = _mm256_fmadd_ps(v_lo, ws_lo, acc[t][0]);
      acc[t][1] = _mm256_fmadd_ps(v_hi, ws_hi, acc[t][1]);
    }
  }
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) {
    _mm256_storeu_ps(out[t], acc[t][0]);
    _mm256_storeu_ps(out[t] + 8, acc[t][1]);
  }
}

} // namespace detail

// Tokens per block of run_lut_tiles: as many as keep this many bytes of their tables (at least NT).
#ifndef LOWBIT_LUT_TABLE_BUDGET
#define LOWBIT_LUT_TABLE_BUDGET (256 * 1024)
#endif

// A run of one tile's blocks, for kernels on layouts stored in column runs (the bit-plane permute
// layout, lut_matrix::run_blocks): blocks [begin, end); acc_in, where not null, the tile's sums so far (the kernel
// adds the run's blocks to them in the order one pass over the row would, so the sums are the same
// fp32 values).
struct tile_run {
  std::size_t begin = 0, end = 0;
  const float* acc_in = nullptr;
};

// The driver of the LUT kernels: row tiles of `Rows` split across threads; per thread, the tokens
// in blocks whose tables (table_bytes each) fit in LOWBIT_LUT_TABLE_BUDGET, so that they stay in
// L2 while the block runs over the thread's tiles (at one block, all tokens: the tile's codes are
// read from DRAM once); per tile and block, NT tokens at a time, then (NT >= 4) NT / 2 at a time,
// then one by one: tile(nt, tile, t0, out) writes nt x Rows sums (nt a std::integral_constant),
// then store_tile_outputs. A kernel that takes a tile_run (tile(nt, tile, t0, run, out)) gets the
// matrix's column runs (w.run_blocks(); 0: one run) in turn, all the thread's tiles' first run,
// then their second, and so on, each run continuing from the sums kept in y (load_tile_outputs),
// the bias added after the last: the order in which the permute layout stores them.
// The kernels prefetch a tile's codes on the pass of token 0 only: later
// blocks find them in L3 (or, past it, leave them to the hardware prefetchers). Every token's sums
// are computed the same way in any block, so the results do not depend on the blocking.
template <std::size_t Rows, std::size_t NT, class Packed, class Tile>
void run_lut_tiles(const Packed& w, std::size_t tokens, std::size_t table_bytes, std::span<float> y,
                   std::span<const float> bias, Tile&& tile) {
  const std::size_t fit = table_bytes == 0 ? tokens : LOWBIT_LUT_TABLE_BUDGET / table_bytes;
  const std::size_t block = std::max<std::size_t>(NT, fit / NT * NT);
  constexpr bool runs = std::is_invocable_v<Tile&, std::integral_constant<std::size_t, 1>, std::size_t, std::size_t,
                                            const tile_run&, float(*)[Rows]>;
  std::size_t blocks = 1, rb = 1; // one pass where the kernel takes no runs
  if constexpr (runs) {
    blocks = w.blocks();
    rb = w.run_blocks() != 0 ? w.run_blocks() : blocks;
  }
  parallel_rows(w.tiles(), w.rows() * w.cols() * tokens, [&](std::size_t begin, std::size_t end) {
    float out[NT][Rows];
    for (std::size_t tb = 0; tb < tokens; tb += block) {
      const std::size_t te = std::min(tokens, tb + block);
      for (std::size_t c0 = 0; c0 < blocks; c0 += rb) {
        const std::size_t c1 = std::min(blocks, c0 + rb);
        // nt tokens from t of tile i into out (this run of columns, where the kernel takes runs).
        auto pass = [&](auto nt, std::size_t i, std::size_t t) {
          constexpr std::size_t n = decltype(nt)::value;
          if constexpr (runs) {
            tile_run run{c0, c1};
            if (c0 != 0) {
              load_tile_outputs<Rows, n>(w.rows(), i, t, y, out);
              run.acc_in = &out[0][0];
            }
            tile(nt, i, t, run, out);
          } else {
            tile(nt, i, t, out);
          }
          store_tile_outputs<Rows, n>(w.rows(), i, t, out, y, c1 == blocks ? bias : std::span<const float>{});
        };
        for (std::size_t i = begin; i < end; ++i) {
          std::size_t t = tb;
          for (; t + NT <= te; t += NT) pass(std::integral_constant<std::size_t, NT>{}, i, t);
          if constexpr (NT >= 4)
            for (; t + NT / 2 <= te; t += NT / 2) pass(std::integral_constant<std::size_t, NT / 2>{}, i, t);
          for (; t < te; ++t) pass(std::integral_constant<std::size_t, 1>{}, i, t);
        }
      }
    }
  });
}

// One token's run_lut_tiles, each thread building its own copy of the token's tables first, in the
// kernel's parallel region: build(tables) fills tables[thread], then tile(tables, tile, out) writes
// a tile's 1 x Rows sums. No thread waits for a build on another, and none reads tables that
// another core wrote: with the tables built once before the region, the base-3 kernel on 4096 x 4096
// (22 KiB of tables) took 6 us more than the kernel alone, against the build's 2 us (Zen 5, 2
// threads, bench/README.md run 22). The copies are the same bytes (the builders are deterministic),
// so the results are those of the shared tables. `tables` (one per thread) is kept by the caller.
//
// A kernel that takes a tile_run (tile(tables, tile, run, out)) gets the thread's tiles run by run
// (w.run_blocks(); 0: whole tiles), all its tiles' first run, then their second, and so on, the
// sums between runs kept in y: on the permute layout, stored in that order, the thread reads its
// weights as one stream per run while the run's tables stay in L1. With whole rows, 64 KiB (INT2
// at K = 8192: the token's 32 KiB of tables and a tile's 32 KiB of codes) pass through L1 between
// two reads of a table line, more than its 48 KiB on the Xeon of bench/README.md run 31, where runs
// of 4096 columns took INT2 from 72-77 % of the read bandwidth to 81-82 % (medians of six passes).
template <std::size_t Rows, class Packed, class Tables, class Build, class Tile>
void run_lut_token(const Packed& w, std::span<float> y, std::span<const float> bias, std::vector<Tables>& tables,
                   Build&& build, Tile&& tile) {
  const auto threads = static_cast<std::size_t>(max_threads());
  if (tables.size() < threads) tables.resize(threads);
  parallel_rows(w.tiles(), w.rows() * w.cols(), [&](std::size_t begin, std::size_t end) {
    Tables& a = tables[static_cast<std::size_t>(thread_index())];
    build(a);
    float out[1][Rows];
    if constexpr (std::is_invocable_v<Tile&, const Tables&, std::size_t, const tile_run&, float(*)[Rows]>) {
      const std::size_t blocks = w.blocks(), rb = w.run_blocks() == 0 ? blocks : w.run_blocks();
      for (std::size_t c0 = 0; c0 < blocks; c0 += rb) {
        const std::size_t c1 = std::min(blocks, c0 + rb);
        for (std::size_t i = begin; i < end; ++i) {
          tile_run run{c0, c1};
          if (c0 != 0) { // the sums so far, kept in y
            load_tile_outputs<Rows, 1>(w.rows(), i, 0, y, out);
            run.acc_in = &out[0][0];
          }
          tile(std::as_const(a), i, run, out);
          store_tile_outputs<Rows, 1>(w.rows(), i, 0, out, y, c1 == blocks ? bias : std::span<const float>{});
        }
      }
    } else {
      for (std::size_t i = begin; i < end; ++i) {
        tile(std::as_const(a), i, out);
        store_tile_outputs<Rows, 1>(w.rows(), i, 0, out, y, bias);
      }
    }
  });
}

// Y = X * W^T (+ bias) on tables built by build_lut_tables; tiles split across threads.
template <lut_scheme S>
void linear_lut(const lut_matrix<S>& w, const lut_activations& a, std::span<float> y, std::span<const float> bias) {
  check_lut_call("avx2::linear_lut", w, a, y.size(), bias.size());
  run_lut_tiles<lut_tile_rows, lut_tokens>(w, a.tokens, a.row_entries(), y, bias,
                                           [&](auto nt, std::size_t tile, std::size_t t, auto* out) {
                                             detail::lut_tile<S, decltype(nt)::value>(w, a, tile, t, out);
                                           });
}

namespace detail {
// linear_lut_token with the table builder `builder` (a build_lut_table_row) and the tile kernel
// `tile` (of either layout).
template <lut_scheme S, lut_layout L, activation_type T, class Builder, class Tile>
void lut_token(const lut_matrix<S, L>& w, std::span<const T> x, std::span<float> y, std::span<const float> bias,
               std::vector<lut_activations>& tables, Builder builder, Tile&& tile) {
  check_linear_lut("linear_lut_token", w, x.size(), 1, y.size(), bias.size());
  // cost 0: each copy is built on its own thread, not split.
  run_lut_token<lut_tile_rows>(
      w, y, bias, tables, [&](lut_activations& a) { build_lut_tables_by_row(x, 1, w.cols(), a, builder, 0); }, tile);
}
// The same with this kernel.
template <lut_scheme S, activation_type T, class Builder>
void lut_token(const lut_matrix<S>& w, std::span<const T> x, std::span<float> y, std::span<const float> bias,
               std::vector<lut_activations>& tables, Builder builder) {
  lut_token(w, x, y, bias, tables, builder,
            [&](const lut_activations& a, std::size_t tile, auto* out) { lut_tile<S, 1>(w, a, tile, 0, out); });
}
} // namespace detail

// y = W * x (+ bias) for one token x (K values), bit-identical to build_lut_tables and linear_lut,
// each thread building its own copy of the tables (run_lut_token). tables: one per thread, kept
// across calls (sized on first use).
template <lut_scheme S, activation_type T>
void linear_lut_token(const lut_matrix<S>& w, std::span<const T> x, std::span<float> y, std::span<const float> bias,
                      std::vector<lut_activations>& tables) {
  detail::lut_token(w, x, y, bias, tables, build_lut_table_row<T>);
}

} // namespace lowbit::kernels::avx2
