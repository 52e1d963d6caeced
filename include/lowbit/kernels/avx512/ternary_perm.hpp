// AVX-512 VBMI + VNNI base-3 LUT kernel on the permute layout (kernels/ternary_lut.hpp has the
// algorithm, the tables and both layouts). Per quad of triads and tile (128 lookups: 32 rows x 4
// triads), shared by the tokens: one 64-byte load of the index bytes, the low and the high nibbles
// made into index | k << 4 (one vpternlogd each, the high after a shift), and the sign bits loaded
// as two 64-bit masks. Per token: one vpermb per half of the tile picks each lane's entry from the
// quad's four tables (64 contiguous bytes of the token's table row), one masked vpsubb negates the
// lanes whose sign bit is set, and one vpdpbusd per half adds each row's four lookups into its
// int32 lane: 6 single-uop vector operations per quad and token, and 3 shared. Until run 28 the
// sign went into the index (bit 6, one masked vpaddb each, shared) and a two-table vpermt2b over the
// tables and their negation (one vpsubb per token) picked the signed entry: 5 operations per token,
// but vpermt2b is 3 uops on Intel (1 on Zen 5), and on a Xeon the kernel took 0.73-0.79x the time
// with vpermb at N = 1-128 (4096 x 4096 in L3, bench/README.md run 28). The int32 sums are the same
// integers, so the results are bit-identical to reference::linear_ternary_lut and to the other kernels.
#pragma once

#include "lowbit/core/config.hpp"

#if LOWBIT_HAS_AVX512_VBMI

#include "lowbit/kernels/avx2/ternary_lut.hpp"
#include "lowbit/kernels/avx512/activations.hpp"
#include "lowbit/kernels/avx512/ops.hpp"

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

// Tokens per pass of the permute kernel over a tile (1-4). It keeps 4 vector registers per token
// (two int32 and two fp32 accumulators) beside 8 shared ones, so 4 tokens fit in AVX-512's 32; in
// L3 (4096 x 4096, Zen 5) 4 took 0.83-0.86x the time of 2 at N = 4-32 (bench/README.md, run 23).
#ifndef LOWBIT_TERNARY_PERM_TOKENS
#define LOWBIT_TERNARY_PERM_TOKENS 4
#endif

namespace lowbit::kernels::avx512 {

inline constexpr std::size_t ternary_perm_tokens = LOWBIT_TERNARY_PERM_TOKENS;
static_assert(ternary_perm_tokens >= 1 && ternary_perm_tokens <= 4, "LOWBIT_TERNARY_PERM_TOKENS must be 1-4");

template <ternary_lut_scheme S>
using ternary_perm_matrix = ternary_lut_matrix<S, ternary_lut_layout::permute>;

namespace detail {

LOWBIT_ALWAYS_INLINE inline __mmask64 load_mask64(const std::uint8_t* p) noexcept {
  std::uint64_t m;
  std::memcpy(&m, p, sizeof m);
  return _cvtu64_mask64(m);
}

// Tokens t0 .. t0 + NT - 1 of one tile's run of blocks (avx2::tile_run); out receives NT x 32 sums
// (before bias), continuing from run.acc_in where it is not null.
template <ternary_lut_scheme S, std::size_t NT>
void ternary_perm_tile(const ternary_perm_matrix<S>& w, const ternary_activations& a, std::size_t tile, std::size_t t0,
                       const avx2::tile_run& run, float (*out)[ternary_tile_rows]) noexcept {
  const __m512i nib = _mm512_set1_epi8(0x0F), ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();
  const __m512i sel = _mm512_set1_epi32(0x30201000); // byte 4 d + k reads table k of the quad
  __m512 acc[NT][2];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t)
    for (std::size_t i = 0; i < 2; ++i)
      acc[t][i] =
          run.acc_in != nullptr ? _mm512_loadu_ps(run.acc_in + t * ternary_tile_rows + 16 * i) : _mm512_setzero_ps();
  const std::int8_t* q[NT];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) q[t] = a.q_row(t0 + t);
  const std::uint8_t* cp = w.block_codes(tile, run.begin); // a run's blocks are contiguous
  [[maybe_unused]] const bool first = t0 == 0;             // later tokens find the tile's codes in cache
  std::size_t unit = ~std::size_t{0};
  // The run's scales: its units of this tile are contiguous (ternary_lut_matrix::tile_scales).
  std::size_t u0 = w.unit_of_block(run.begin);
  const float* sp = w.tile_scales(tile, u0);
  // Blocks [begin, end) may span several of the layout's runs (the multi-token entry passes whole
  // rows): at each run's first block the codes and scales continue at that run's place.
  const std::size_t rb = w.run_blocks();
  std::size_t next_run = rb == 0 ? run.end : (run.begin / rb + 1) * rb;
  [[maybe_unused]] const std::size_t s_ahead = avx2::side_ahead(
      avx2::lut_prefetch, w.units() * ternary_tile_rows * sizeof(float), w.blocks() * ternary_block_bytes);
  __m512 ws[2] = {};
  for (std::size_t b = run.begin; b < run.end; ++b, cp += ternary_block_bytes) {
    if (b == next_run) {
      next_run += rb;
      cp = w.block_codes(tile, b);
      u0 = w.unit_of_block(b);
      sp = w.tile_scales(tile, u0);
    }
    // Rows 0-15 and 16-31, one int32 lane each; with up to 2 tokens two sums per half (even and odd
    // quads), so that fewer vpdpbusd wait on the one before (added at the end of the block, exact).
    constexpr std::size_t C = NT <= 2 ? 2 : 1;
    __m512i isum[NT][2 * C];
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t)
      for (std::size_t i = 0; i < 2 * C; ++i) isum[t][i] = _mm512_setzero_si512();
    if constexpr (avx2::lut_prefetch != 0)
      if (first) avx2::prefetch_l2<ternary_block_bytes>(cp, avx2::lut_prefetch);
    LOWBIT_UNROLL
    for (std::size_t quad = 0; quad < ternary_block_triads / 4; ++quad) {
      const __m512i v = _mm512_loadu_si512(cp + 64 * quad);
      const __m512i lo = _mm512_ternarylogic_epi32(v, nib, sel, 0xEA); // (v & nib) | sel
      const __m512i hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), nib, sel, 0xEA);
      const __mmask64 neg_lo = load_mask64(cp + 512 + 16 * quad), neg_hi = load_mask64(cp + 512 + 16 * quad + 8);
      const std::size_t g0 = (b * ternary_block_triads + 4 * quad) * 16;
      LOWBIT_UNROLL
      for (std::size_t t = 0; t < NT; ++t) {
        const __m512i tq = _mm512_loadu_si512(q[t] + g0);
        const std::size_t c = quad % C;
        const __m512i elo = permute_bytes(lo, tq), ehi = permute_bytes(hi, tq);
        isum[t][c] = _mm512_dpbusd_epi32(isum[t][c], ones, _mm512_mask_sub_epi8(elo, neg_lo, zero, elo));
        isum[t][C + c] = _mm512_dpbusd_epi32(isum[t][C + c], ones, _mm512_mask_sub_epi8(ehi, neg_hi, zero, ehi));
      }
    }
    const std::size_t u = w.unit_of_block(b);
    if (u != unit) {
      unit = u;
      if constexpr (avx2::side_prefetch)
        if (first && avx2::lut_prefetch != 0)
          avx2::prefetch_l2<ternary_tile_rows * sizeof(float)>(sp + (u - u0) * ternary_tile_rows, s_ahead);
      ws[0] = _mm512_loadu_ps(sp + (u - u0) * ternary_tile_rows);
      ws[1] = _mm512_loadu_ps(sp + (u - u0) * ternary_tile_rows + 16);
    }
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t) {
      const __m512 ts = _mm512_set1_ps(a.scale_row(t0 + t)[b]);
      LOWBIT_UNROLL
      for (std::size_t i = 0; i < 2; ++i) {
        __m512i sum = isum[t][C * i];
        if constexpr (C == 2) sum = _mm512_add_epi32(sum, isum[t][C * i + 1]);
        acc[t][i] = _mm512_fmadd_ps(cvt_ps(sum), _mm512_mul_ps(ws[i], ts), acc[t][i]);
      }
    }
  }
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) {
    _mm512_storeu_ps(out[t], acc[t][0]);
    _mm512_storeu_ps(out[t] + 16, acc[t][1]);
  }
}

} // namespace detail

// Y = X * W^T (+ bias) on the permute layout and tables built by build_ternary_tables (either
// builder); tiles split across threads. Bit-identical to the shuffle layout's kernels. Each pass
// takes a tile's whole row, the kernel following the layout's column runs: with several tokens
// the kernel computes more than it streams, and taking every thread's tiles run by run (the sums
// through Y between runs of 11 blocks) took 1.24-1.55x the time in L3 at N = 2-128 (4096 x 4096,
// Xeon, bench/README.md run 32), where whole rows on the same layout took the time of whole rows.
template <ternary_lut_scheme S>
void linear_ternary_lut(const ternary_perm_matrix<S>& w, const ternary_activations& a, std::span<float> y,
                        std::span<const float> bias) {
  check_lut_call("avx512::linear_ternary_lut", w, a, y.size(), bias.size());
  avx2::run_lut_tiles<ternary_tile_rows, ternary_perm_tokens>(
      w, a.tokens, a.row_entries(), y, bias, [&](auto nt, std::size_t tile, std::size_t t, auto* out) {
        detail::ternary_perm_tile<S, decltype(nt)::value>(w, a, tile, t, avx2::tile_run{0, w.blocks()}, out);
      });
}

// One token on the permute layout, each thread building its own copy of the tables
// (avx2::run_lut_token) with the AVX-512 table builder; a thread's tiles run by run, so that from
// DRAM its codes and scales are one stream per run while the run's tables stay in L1.
template <ternary_lut_scheme S, activation_type T>
void linear_ternary_lut_token(const ternary_perm_matrix<S>& w, std::span<const T> x, std::span<float> y,
                              std::span<const float> bias, std::vector<ternary_activations>& tables) {
  avx2::detail::ternary_token(w, x, y, bias, tables, build_ternary_table_row<T>,
                              [&](const ternary_activations& a, std::size_t tile, const avx2::tile_run& run,
                                  auto* out) { detail::ternary_perm_tile<S, 1>(w, a, tile, 0, run, out); });
}

} // namespace lowbit::kernels::avx512

#endif
