// AVX-512 VBMI + VNNI bit-plane LUT kernel on the permute layout (kernels/lut.hpp has the
// algorithm, the tables and both layouts). Per tile (16 rows), block, plane pair and quad of groups,
// shared by the tokens: one 64-byte load of the index bytes, its low and high nibbles made into
// index | table << 4 (one vpternlogd each, the high after a shift). Per token: one vpermb of the
// quad's four tables (64 contiguous bytes of the token's table row) per nibble, and one vpdpbusd
// with the plane weights (a_2p, a_2p+1, a_2p, a_2p+1) adding each row's two planes of two groups
// into its int32 lane: 4 vector operations per 128 lookups and token, where the AVX-512 BW kernel
// on the shuffle layout spends 6 (two shuffles, two maddubs, two adds), and no int16 step or
// widening at the end of a block. The int32 sums are the same integers and the per-row fp32
// arithmetic that of the header comment, so the results are bit-identical to
// reference::linear_lut and to the other kernels. The last plane of an odd count (INT3, INT1) has
// a vector of its own per block: one vpermb per nibble reads the low nibbles' groups 0-3 and the
// high nibbles' 4-7, and vpdpbusd weights all four bytes by that plane's a_i: half a pair's work
// and bytes.
#pragma once

#include "lowbit/core/config.hpp"

#if LOWBIT_HAS_AVX512_VBMI

#include "lowbit/kernels/avx2/lut_dot.hpp"
#include "lowbit/kernels/avx512/activations.hpp"
#include "lowbit/kernels/avx512/ops.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

// Tokens per pass of the permute kernel over a tile (1-4).
#ifndef LOWBIT_LUT_PERM_TOKENS
#define LOWBIT_LUT_PERM_TOKENS 4
#endif

namespace lowbit::kernels::avx512 {

inline constexpr std::size_t lut_perm_tokens = LOWBIT_LUT_PERM_TOKENS;
static_assert(lut_perm_tokens >= 1 && lut_perm_tokens <= 4, "LOWBIT_LUT_PERM_TOKENS must be 1-4");

template <lut_scheme S>
using lut_perm_matrix = lut_matrix<S, lut_layout::permute>;

namespace detail {

// Tokens t0 .. t0 + NT - 1 of one tile, over the blocks of `run` (avx2::tile_run: continuing
// from its sums where it has them); out receives NT x 16 sums (before bias).
template <lut_scheme S, std::size_t NT>
void lut_perm_tile(const lut_perm_matrix<S>& w, const lut_activations& a, std::size_t tile, std::size_t t0,
                   const avx2::tile_run& run, float (*out)[lut_tile_rows]) noexcept {
  using tr = lut_traits<S>;
  constexpr std::size_t P = tr::planes / 2; // plane pairs; an odd last plane follows them on its own
  constexpr bool lone = tr::planes % 2 != 0;
  constexpr std::size_t TB = lut_perm_matrix<S>::tile_block_bytes;
  const __m512i nib = _mm512_set1_epi8(0x0F);
  // Byte 4 d + k reads table k / 2 of the quad (low nibbles) or 2 + k / 2 (high nibbles).
  const __m512i sel_lo = _mm512_set1_epi32(0x10100000), sel_hi = _mm512_set1_epi32(0x30302020);
  // The lone plane: byte 4 d + k reads table k of quad 0 (low nibbles) or of quad 1 (high).
  [[maybe_unused]] const __m512i sel_one = _mm512_set1_epi32(0x30201000);
  [[maybe_unused]] const __m512i wlone = _mm512_set1_epi8(static_cast<char>(tr::dec.a[tr::planes - 1]));
  __m512i wpat[P > 0 ? P : 1];
  LOWBIT_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    const auto a0 = static_cast<std::uint32_t>(tr::dec.a[2 * p]), a1 = static_cast<std::uint32_t>(tr::dec.a[2 * p + 1]);
    wpat[p] = _mm512_set1_epi32(static_cast<int>(a0 | a1 << 8 | a0 << 16 | a1 << 24));
  }
  __m512 acc[NT];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t)
    acc[t] = run.acc_in != nullptr ? _mm512_loadu_ps(run.acc_in + t * lut_tile_rows) : _mm512_setzero_ps();
  const std::int8_t* q[NT];
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) q[t] = a.q_row(t0 + t);
  const std::uint8_t* cp = w.block_codes(tile, run.begin); // a run's blocks are contiguous
  [[maybe_unused]] const bool first = t0 == 0;             // later tokens find the tile's codes in cache
  const std::size_t blocks = w.blocks();
  std::size_t unit = ~std::size_t{0};
  // The run's scales and zero points: its units of this tile are contiguous (lut_matrix::side_index).
  const std::size_t u0 = tr::unit_of_block(run.begin);
  const typename tr::scale_type* const sp = w.tile_scales(tile, u0);
  [[maybe_unused]] const std::uint8_t* const zp = S::has_zero_point ? w.tile_zeros(tile, u0) : nullptr;
  [[maybe_unused]] const float g = w.scale_multiplier(), kg = tr::k * g;
  [[maybe_unused]] const std::size_t side_bytes = w.units() * lut_tile_rows,
                                     s_ahead = avx2::side_ahead(
                                         avx2::lut_prefetch, side_bytes * sizeof(typename tr::scale_type), blocks * TB),
                                     z_ahead = avx2::side_ahead(avx2::lut_prefetch, side_bytes, blocks * TB);
  __m512 ws = _mm512_setzero_ps();
  [[maybe_unused]] __m512 kz = ws;
  // Each token's per-block factors s(t, b) * g and (k * g) * xsum(t, b), the same fp32 products
  // the block epilogue formed, computed 16 blocks per vector multiply for a chunk of blocks and read
  // back by broadcast loads (load ports only), where a scalar multiply and a register broadcast per
  // block and token took the 512-bit ports 0 and 5 as well: 0.79-0.92x the time at N = 2-8 (Xeon,
  // INT2-g32 and INT3-g32 in L2 and L3, bench/README.md run 29), no change at N = 1.
  constexpr std::size_t FB = 32; // blocks per chunk
  alignas(64) float sgb[NT][FB];
  [[maybe_unused]] alignas(64) float kxb[NT][FB];
  for (std::size_t b0 = run.begin; b0 < run.end; b0 += FB) {
    const std::size_t b1 = std::min(run.end, b0 + FB);
    LOWBIT_UNROLL
    for (std::size_t t = 0; t < NT; ++t)
      for (std::size_t i = 0; i < b1 - b0; i += 16) {
        const __mmask16 m = static_cast<__mmask16>(b1 - b0 - i >= 16 ? 0xFFFF : (1u << (b1 - b0 - i)) - 1);
        _mm512_store_ps(sgb[t] + i,
                        _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a.scale_row(t0 + t) + b0 + i), _mm512_set1_ps(g)));
        if constexpr (!S::has_zero_point && tr::k != 0.0f)
          _mm512_store_ps(kxb[t] + i,
                          _mm512_mul_ps(_mm512_set1_ps(kg), _mm512_maskz_loadu_ps(m, a.xsum_row(t0 + t) + b0 + i)));
      }
    for (std::size_t b = b0; b < b1; ++b, cp += TB) {
      // Two sums per token (low and high nibbles), added at the end of the block (exact). Four (quad x
      // nibble) at up to 2 tokens, so that a vpdpbusd seldom waited on the one before, cost two more
      // additions per block and took 1.01-1.10x the time at N = 1-2 in L2 and L3 (Xeon, bench/README.md
      // run 28): a block's chains are short, and the next block's start independently.
      __m512i isum[NT][2];
      LOWBIT_UNROLL
      for (std::size_t t = 0; t < NT; ++t) isum[t][0] = isum[t][1] = _mm512_setzero_si512();
      // The lead runs on in memory: within a run a thread's tiles follow one another, and past its
      // last tile it reaches the next thread's (a few KiB, once per run and thread). Following the
      // jumps between runs block by block put scalar work into every block (bench/README.md run 31).
      if constexpr (avx2::lut_prefetch != 0)
        if (first) avx2::prefetch_l2<TB>(cp, avx2::lut_prefetch);
      LOWBIT_UNROLL
      for (std::size_t p = 0; p < P; ++p) LOWBIT_UNROLL
      for (std::size_t quad = 0; quad < 2; ++quad) {
        const __m512i v = _mm512_loadu_si512(cp + (2 * p + quad) * 64);
        const __m512i lo = _mm512_ternarylogic_epi32(v, nib, sel_lo, 0xEA); // (v & nib) | sel
        const __m512i hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), nib, sel_hi, 0xEA);
        LOWBIT_UNROLL
        for (std::size_t t = 0; t < NT; ++t) {
          const __m512i tab = _mm512_loadu_si512(q[t] + (b * lut_tables_per_block + 4 * quad) * 16);
          isum[t][0] = _mm512_dpbusd_epi32(isum[t][0], wpat[p], permute_bytes(lo, tab));
          isum[t][1] = _mm512_dpbusd_epi32(isum[t][1], wpat[p], permute_bytes(hi, tab));
        }
      }
      if constexpr (lone) {
        const __m512i v = _mm512_loadu_si512(cp + 2 * P * 64);
        const __m512i lo = _mm512_ternarylogic_epi32(v, nib, sel_one, 0xEA);
        const __m512i hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), nib, sel_one, 0xEA);
        LOWBIT_UNROLL
        for (std::size_t t = 0; t < NT; ++t) {
          const std::int8_t* tab = q[t] + b * lut_tables_per_block * 16;
          isum[t][0] = _mm512_dpbusd_epi32(isum[t][0], wlone, permute_bytes(lo, _mm512_loadu_si512(tab)));
          isum[t][1] = _mm512_dpbusd_epi32(isum[t][1], wlone, permute_bytes(hi, _mm512_loadu_si512(tab + 64)));
        }
      }
      const std::size_t u = tr::unit_of_block(b);
      if (u != unit) {
        unit = u;
        if constexpr (avx2::side_prefetch)
          if (first && avx2::lut_prefetch != 0) {
            avx2::prefetch_l2<64>(sp + (u - u0) * lut_tile_rows, s_ahead);
            if constexpr (S::has_zero_point) avx2::prefetch_l2<64>(zp + (u - u0) * lut_tile_rows, z_ahead);
          }
        if constexpr (tr::half_scales)
          ws = cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + (u - u0) * lut_tile_rows)));
        else
          ws = _mm512_loadu_ps(sp + (u - u0) * lut_tile_rows);
        if constexpr (S::has_zero_point) {
          const __m128i z = _mm_loadu_si128(reinterpret_cast<const __m128i*>(zp + (u - u0) * lut_tile_rows));
          kz = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(tr::k), cvt_ps(cvtepu8_epi32(z))), _mm512_set1_ps(g));
        }
      }
      LOWBIT_UNROLL
      for (std::size_t t = 0; t < NT; ++t) {
        const __m512 f = cvt_ps(_mm512_add_epi32(isum[t][0], isum[t][1]));
        const __m512 sg = _mm512_set1_ps(sgb[t][b - b0]);
        __m512 v;
        if constexpr (S::has_zero_point)
          v = _mm512_fmadd_ps(f, sg, _mm512_mul_ps(kz, _mm512_set1_ps(a.xsum_row(t0 + t)[b])));
        else if constexpr (tr::k != 0.0f)
          v = _mm512_fmadd_ps(f, sg, _mm512_set1_ps(kxb[t][b - b0]));
        else
          v = _mm512_mul_ps(f, sg);
        acc[t] = _mm512_fmadd_ps(v, ws, acc[t]);
      }
    }
  }
  LOWBIT_UNROLL
  for (std::size_t t = 0; t < NT; ++t) _mm512_storeu_ps(out[t], acc[t]);
}

} // namespace detail

// Y = X * W^T (+ bias) on the permute layout and tables built by build_lut_tables (either
// builder); tiles split across threads. Bit-identical to the shuffle layout's kernels.
template <lut_scheme S>
void linear_lut(const lut_perm_matrix<S>& w, const lut_activations& a, std::span<float> y,
                std::span<const float> bias) {
  check_lut_call("avx512::linear_lut", w, a, y.size(), bias.size());
  avx2::run_lut_tiles<lut_tile_rows, lut_perm_tokens>(
      w, a.tokens, a.row_entries(), y, bias,
      [&](auto nt, std::size_t tile, std::size_t t, const avx2::tile_run& run, auto* out) {
        detail::lut_perm_tile<S, decltype(nt)::value>(w, a, tile, t, run, out);
      });
}

// One token on the permute layout, each thread building its own copy of the tables
// (avx2::run_lut_token) with the AVX-512 table builder; long rows run by run (lut_matrix::run_blocks),
// all tiles' first run, then their second, so that a run's tables stay in L1.
template <lut_scheme S, activation_type T>
void linear_lut_token(const lut_perm_matrix<S>& w, std::span<const T> x, std::span<float> y,
                      std::span<const float> bias, std::vector<lut_activations>& tables) {
  avx2::detail::lut_token(w, x, y, bias, tables, build_lut_table_row<T>,
                          [&](const lut_activations& a, std::size_t tile, const avx2::tile_run& run, auto* out) {
                            detail::lut_perm_tile<S, 1>(w, a, tile, 0, run, out);
                          });
}

} // namespace lowbit::kernels::avx512

#endif
