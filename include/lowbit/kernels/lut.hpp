// Lookup-table (LUT) kernels for 1-4-bit integer and ternary weights, after T-MAC (Wei et al.,
// 2024): no weight is decoded. A weight value is an affine function of the bits of its code's
// plane pattern p(code), which pack_for_lut writes instead of the code,
//   v(code) = c + sum_i a_i * bit_i(p(code))   (a_i >= 0; lut_traits below),
// with p(code) = code ^ flip for integer grids, and a re-encoding with the smallest A = sum_i a_i
// where the element leaves codes unused (ternary: -1 -> 00, 0 -> 01, +1 -> 11, so a = (1, 1),
// A = 2 and k = 0 below, instead of a = (1, 2) on its codes' own bits),
// or with signs b'_i = 2 * bit_i - 1 in {-1, +1}: v = k + sum_i (a_i / 2) * b'_i, k = c + A / 2,
// A = sum_i a_i. So a row's dot product with 4 activations x0..x3 is k * (x0 + .. + x3) plus, for
// every bit plane i, a_i / 2 times one of the 16 signed sums T[m] = sum_l (+-x_l), the sign of x_l
// being bit l of m, where m is the plane's 4 bits of those 4 weights. The 16 sums of every group of
// 4 activations are computed once per token (build_lut_tables) and quantized to int8; the kernels
// replace multiply-adds by byte shuffles that look them up for 16 rows at once. The k term uses
// the fp32 sum of each block's activations, not the tables.
//
// Table quantization (the only approximation besides fp32 rounding): a block of 32 columns (8
// tables) shares one step u = max|T| / 127 and q = round_nearest_even(T / u), so each looked-up
// entry is off by at most u / 2. The stored table scale is s = u / 2 (the 1/2 of a_i / 2), and for
// a row the error against the exact product with the dequantized weights is at most, summed over
// blocks, 4 * A * |w * s| with w the row's scale in force (w_scale * g below, as qmatrix::scale_at
// gives it); tests check that bound. A block holding NaN or inf gets s = NaN,
// so the outputs of that token are NaN; an all-zero block gets s = 0.
//
// Weight layout (pack_for_lut, a one-time step at load time): rows in tiles of 16, columns in
// blocks of 32. For every tile, block, pair of groups (j, j + 1) and pair of bit planes
// (2p, 2p + 1), 32 bytes: byte 2l + k holds the plane-(2p + k) index of group j in its low nibble
// and of group j + 1 in its high nibble, for row lut_row_of_lane(l) of the tile (rows 0-7 in the
// even lanes l, rows 8-15 in the odd ones). One shuffle of group j's table by the low nibbles
// gives 16 rows x 2 planes of lookups, and one maddubs with the plane weights (a_2p, a_2p+1) sums
// each row's two planes into int16 lane l; madd with (1, 0) and (0, 1) then widens rows 0-7 and
// 8-15 to int32 in place, without a cross-lane shuffle. The last plane of an odd count (INT3, INT1)
// is not paired: after the block's pairs, 16 bytes per pair of groups (j, j + 1), byte l holding
// row lut_row_of_lane(l)'s index of group j in its low nibble and of group j + 1 in its high one;
// the kernels zero-extend them to int16 lanes (vpmovzxbw), shuffle, and weight the low byte by the
// plane's a_i and the high one by 0 in the maddubs. So both layouts store planes x 64 bytes per tile
// and block: the bits of the codes, no padding plane.
// A second layout, lut_layout::permute, holds the same bits, scales and zero points for the
// AVX-512 VBMI + VNNI kernel (kernels/avx512/lut_perm.hpp): per tile, block, plane pair p and quad
// of groups (j0 = 4 x quad), 64 bytes, byte 4 d + k holding row d's plane-(2p + k % 2) index of
// group j0 + k / 2 in its low nibble and of group j0 + 2 + k / 2 in its high nibble. One byte
// permute (vpermb) of the quad's four tables by index | table << 4 gives row d's four lookups in
// the bytes of int32 lane d, and one vpdpbusd with (a_2p, a_2p+1, a_2p, a_2p+1) adds them there.
// The last plane of an odd count (INT3, INT1) is not paired with an empty one: after the pairs,
// 64 bytes per tile and block, byte 4 d + k holding row d's index of group k in its low nibble and
// of group 4 + k in its high one; so the permute layout too stores planes x 64 bytes per tile and
// block. Rows longer than LOWBIT_LUT_RUN_COLS columns are stored in column runs of that many
// (whole scale units; the last run shorter): all tiles' blocks of the first run, tile after tile,
// then all tiles' blocks of the second, and the scales and zero points in the same runs; the
// drivers take the runs in that order, so that a thread reads its codes and its scales as two
// streams while a run's tables (16 KiB at 4096 columns) stay in L1 (lut_matrix::block_codes and
// side_index). From DRAM that took INT2 from 68-76 % of the read bandwidth to 79-89 % (Xeon, K =
// 8192, 2 threads, bench/README.md run 31); runs whose scales stayed in whole rows, or whose
// prefetch leads followed the jumps between runs block by block, had gained nothing (run 30).
// Scales are kept per tile and scale unit, 16 at a time (fp16 as stored where the scheme's scales
// are fp16, fp32 otherwise); zero points likewise as bytes.
//
// The integer sums are exact (int16 per block: A <= 32 keeps 8 groups of maddubs sums below
// 2^15), then per block b, row r and token t, in this order:
//   isum = sum over the block's groups and planes of a_i * q[index],
//   v    = fma(float(isum), s(t, b) * g, ((k - z(r, b)) * g) * xsum(t, b)),
//          or float(isum) * (s(t, b) * g) when k = 0 and there is no zero point,
//   acc  = fma(v, w_scale(r, b), acc),
//   y = acc + bias,
// with xsum the fp32 sum of the block's activations, left to right; w_scale the stored scale as
// fp32 (fp16 scales decoded exactly) and g = tensor scale * the int8 table's multiplier, or, for
// the scales packed as fp32 with both folded in, w_scale that fp32 value and g = 1. With g and the
// k term on the token's side, a block costs two fmas per 8 rows and token (a multiply and an fma
// when k = 0) and no multiply of the scales themselves.
// reference::linear_lut writes this out from the qmatrix itself; the kernels are bit-exact
// against it.
#pragma once

#include "lowbit/core/buffer.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace lowbit::kernels {

inline constexpr std::size_t lut_group = 4;      // activations per table (16 entries)
inline constexpr std::size_t lut_block = 32;     // columns sharing one table scale
inline constexpr std::size_t lut_tile_rows = 16; // rows per shuffle
inline constexpr std::size_t lut_tables_per_block = lut_block / lut_group;

// The tile row whose two plane indices sit in bytes 2l and 2l + 1 of a 32-byte code vector (lane l
// of the int16 sums): rows 0-7 in the even lanes, 8-15 in the odd ones.
constexpr std::size_t lut_row_of_lane(std::size_t l) noexcept { return l % 2 == 0 ? l / 2 : 8 + l / 2; }
constexpr std::size_t lut_lane_of_row(std::size_t r) noexcept { return r < 8 ? 2 * r : 2 * (r - 8) + 1; }

// The bit-plane decomposition of a scheme's element values (its int8 table, kernels/layout.hpp):
// v(code) = c + sum_i a[i] * bit_i(pattern[code]) for every valid code, with a[i] >= 0.
template <scheme S>
struct lut_traits {
  static constexpr bool base3 = S::layout == code_layout::base3;
  static constexpr int bits = base3 ? 2 : S::code_bits;
  static constexpr std::size_t planes = static_cast<std::size_t>(bits);
  // Codes the element defines (ternary: 3 of 4); pack_for_lut refuses the others.
  static constexpr std::size_t valid_codes = [] {
    if constexpr (base3) {
      return std::size_t{3};
    } else if constexpr (S::code_bits > 4) {
      return std::size_t{0};
    } else {
      using E = typename S::element;
      std::size_t n = 0;
      for (std::size_t c = 0; c < (std::size_t{1} << E::bits); ++c) {
        const double v = E::decode_double(static_cast<typename E::storage>(c));
        if (v == v && v - v == 0) n = c + 1;
      }
      return n;
    }
  }();

  struct decomposition {
    bool ok = false;
    int c = 0;
    std::array<std::uint8_t, 4> a{};
    std::array<std::uint8_t, 16> pattern{}; // plane bits written for each valid code
    constexpr int asum() const noexcept { return a[0] + a[1] + a[2] + a[3]; }
  };
  // With 2 planes and unused codes (ternary), the re-encoding with the smallest A, then k = 0.
  static constexpr decomposition reencode(const decomposition& d) {
    if constexpr (bits != 2 || valid_codes >= 4) {
      return d;
    } else {
      using E = typename S::element;
      const auto& t = int8_table<E>::get();
      int lo = t.v[0];
      for (unsigned code = 1; code < valid_codes; ++code) lo = t.v[code] < lo ? t.v[code] : lo;
      decomposition best = d;
      for (int a0 = 0; a0 <= 16; ++a0)
        for (int a1 = 0; a1 <= 16; ++a1) {
          decomposition cand;
          cand.c = lo;
          cand.a[0] = static_cast<std::uint8_t>(a0);
          cand.a[1] = static_cast<std::uint8_t>(a1);
          bool ok = true;
          for (unsigned code = 0; code < valid_codes && ok; ++code) {
            ok = false;
            for (unsigned p = 0; p < 4 && !ok; ++p)
              if (lo + (p & 1u ? a0 : 0) + (p & 2u ? a1 : 0) == t.v[code]) {
                cand.pattern[code] = static_cast<std::uint8_t>(p);
                ok = true;
              }
          }
          const bool better =
              !best.ok || cand.asum() < best.asum() ||
              (cand.asum() == best.asum() && 2 * cand.c + cand.asum() == 0 && 2 * best.c + best.asum() != 0);
          if (ok && better) {
            cand.ok = true;
            best = cand;
          }
        }
      return best;
    }
  }
  static constexpr decomposition find() { return reencode(find_flip()); }
  // The codes' own bits, xor a constant code `flip` (the code of the smallest value).
  static constexpr decomposition find_flip() {
    decomposition d;
    if constexpr (S::code_bits > 4 && !base3) {
      return d;
    } else {
      using E = typename S::element;
      const auto& t = int8_table<E>::get();
      if (!t.exact) return d;
      for (unsigned f = 0; f < valid_codes; ++f) {
        decomposition cand;
        cand.c = t.v[f];
        for (unsigned code = 0; code < valid_codes; ++code) cand.pattern[code] = static_cast<std::uint8_t>(code ^ f);
        bool ok = true;
        int sum = 0;
        for (int i = 0; i < bits && ok; ++i) {
          const unsigned g = f ^ (1u << i);
          const int ai = g < valid_codes ? t.v[g] - cand.c : -1;
          ok = ai >= 0;
          cand.a[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ai < 0 ? 0 : ai);
          sum += ai;
        }
        for (unsigned code = 0; code < valid_codes && ok; ++code) {
          int v = cand.c;
          for (int i = 0; i < bits; ++i) v += ((code ^ f) >> i & 1u) ? cand.a[static_cast<std::size_t>(i)] : 0;
          ok = v == t.v[code];
        }
        if (ok && sum <= 32) {
          cand.ok = true;
          return cand;
        }
      }
      return d;
    }
  }
  static constexpr decomposition dec = find();
  // k = c + A / 2, the constant of the signed form (a multiple of 1/2); A = asum.
  static constexpr int asum = dec.asum();
  static constexpr float k = static_cast<float>(2 * dec.c + asum) / 2;

  // Scale units along a row, and the unit of 32-column block b.
  static std::size_t units(std::size_t cols) noexcept {
    return S::gran == granularity::group ? S::padded_cols(cols) / S::block : 1;
  }
  static constexpr std::size_t unit_of_block(std::size_t b) noexcept {
    return S::gran == granularity::group ? b * lut_block / S::block : 0;
  }
  // The packed scale plane keeps fp16 scales as stored (converted in the kernel), others as fp32.
  static constexpr bool half_scales = std::is_same_v<typename S::scale_format, fp16> && !qmatrix<S>::double_quantized;
  using scale_type = std::conditional_t<half_scales, std::uint16_t, float>;
};

// The byte layout of a lut_matrix (the header comment): shuffle for the AVX2 and AVX-512 BW kernels,
// permute for the AVX-512 VBMI + VNNI kernel.
enum class lut_layout { shuffle, permute };

// Columns per run of the permute layout (see the header comment; rounded up to whole scale units).
#ifndef LOWBIT_LUT_RUN_COLS
#define LOWBIT_LUT_RUN_COLS 4096
#endif
static_assert(LOWBIT_LUT_RUN_COLS >= 32 && LOWBIT_LUT_RUN_COLS % 32 == 0,
              "LOWBIT_LUT_RUN_COLS must be a positive multiple of 32");

// Schemes the LUT kernels run on: 2-4-bit codes whose values are affine in their bits (signed and
// unsigned integers, zero points, mid-rise grids, ternary in either layout), with tensor, row or
// group scales (groups a multiple of 32).
template <class S>
concept lut_scheme = scheme<S> && lut_traits<S>::dec.ok &&
                     (S::gran == granularity::tensor || S::gran == granularity::row ||
                      (S::gran == granularity::group && S::block % lut_block == 0));

// W packed for the LUT kernels in layout L (see the header comment); made by pack_for_lut<L>.
template <lut_scheme S, lut_layout L = lut_layout::shuffle>
class lut_matrix {
public:
  using traits = lut_traits<S>;
  using scale_type = typename traits::scale_type;
  // One block of one tile: 64 bytes per plane on either layout (the header comment).
  static constexpr std::size_t tile_block_bytes = traits::planes * 64;

  lut_matrix() = default;
  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t tiles() const noexcept { return (rows_ + lut_tile_rows - 1) / lut_tile_rows; }
  std::size_t blocks() const noexcept { return (cols_ + lut_block - 1) / lut_block; }
  std::size_t units() const noexcept { return traits::units(cols_); }
  float tensor_scale() const noexcept { return tensor_scale_; }
  float mult() const noexcept { return int8_table<typename S::element>::get().mult; }
  // g of the arithmetic above: what the kernels multiply the table scales by (1 where the packed
  // fp32 scales hold the tensor scale and the multiplier already).
  float scale_multiplier() const noexcept { return traits::half_scales ? tensor_scale_ * mult() : 1.0f; }

  // Blocks per column run: 0 where the codes are stored tile after tile (the shuffle layout, and
  // rows of at most one run), else the run length of the permute layout (the header comment).
  std::size_t run_blocks() const noexcept {
    if constexpr (L == lut_layout::permute) {
      const std::size_t unit = S::gran == granularity::group ? S::block / lut_block : 1;
      const std::size_t rb = (LOWBIT_LUT_RUN_COLS / lut_block + unit - 1) / unit * unit;
      return blocks() > rb ? rb : 0;
    } else {
      return 0;
    }
  }
  // The tile_block_bytes of block b of tile t; a run's blocks of one tile are contiguous.
  const std::uint8_t* block_codes(std::size_t t, std::size_t b) const noexcept {
    return codes_.data() + run_place(t, b, blocks(), tiles(), run_blocks()) * tile_block_bytes;
  }
  // Tile t's first block (its whole row of blocks where run_blocks() is 0).
  const std::uint8_t* tile_codes(std::size_t t) const noexcept { return block_codes(t, 0); }
  // 16 scales (rows of tile t) of scale unit u; for fp16 schemes raw fp16 bits, else fp32 with
  // the tensor scale and the int8 table's multiplier folded in.
  const scale_type* tile_scales(std::size_t t, std::size_t u) const noexcept {
    return scales_.data() + side_index(t, u);
  }
  const std::uint8_t* tile_zeros(std::size_t t, std::size_t u) const noexcept {
    return zeros_.data() + side_index(t, u);
  }
  // Where tile t's 16 scales (zero points) of unit u start: tile after tile, or in the runs of the
  // codes (a run's units of one tile contiguous, tile after tile), so that a thread reading a run
  // reads its scales as one stream too.
  std::size_t side_index(std::size_t t, std::size_t u) const noexcept {
    const std::size_t rb = run_blocks(), ru = rb == 0 ? 0 : std::max<std::size_t>(1, traits::unit_of_block(rb));
    return run_place(t, u, units(), tiles(), ru) * lut_tile_rows;
  }
  std::size_t storage_bytes() const noexcept {
    return codes_.size() + scales_.size() * sizeof(scale_type) + zeros_.size();
  }

private:
  template <lut_layout, lut_scheme T>
  friend auto pack_for_lut(const qmatrix<T>& w);
  std::size_t rows_ = 0, cols_ = 0;
  float tensor_scale_ = 1.0f;
  aligned_vector<std::uint8_t> codes_;
  aligned_vector<scale_type> scales_;
  aligned_vector<std::uint8_t> zeros_;
};

// Reorders W into the LUT kernels' layout L; returns a lut_matrix<T, L>. Throws lowbit::error on
// codes the element does not define (ternary code 3, base-3 bytes >= 243) and on zero points out
// of range.
template <lut_layout L = lut_layout::shuffle, lut_scheme T>
auto pack_for_lut(const qmatrix<T>& w) {
  using tr = lut_traits<T>;
  using M = lut_matrix<T, L>;
  if (w.rows() == 0 || w.cols() == 0) throw invalid_argument("pack_for_lut: W is empty");
  M m;
  m.rows_ = w.rows();
  m.cols_ = w.cols();
  m.tensor_scale_ = w.tensor_scale();
  const std::size_t tiles = m.tiles(), blocks = m.blocks(), units = m.units(), pc = w.padded_cols();
  m.codes_.assign(tiles * blocks * M::tile_block_bytes, 0);
  m.scales_.assign(tiles * units * lut_tile_rows, typename tr::scale_type{});
  if constexpr (T::has_zero_point) m.zeros_.assign(tiles * units * lut_tile_rows, 0);
  const scale_reader<T> sr(w, m.mult());
  std::vector<std::uint8_t> codes(pc);
  for (std::size_t r = 0; r < w.rows(); ++r) {
    unpack_codes(T::layout, T::code_bits, w.row_codes(r), codes);
    const std::size_t tile = r / lut_tile_rows, rr = r % lut_tile_rows;
    for (std::size_t c = 0; c < pc; ++c)
      if (codes[c] >= tr::valid_codes)
        throw error("pack_for_lut: row " + std::to_string(r) + " column " + std::to_string(c) + " holds code " +
                    std::to_string(codes[c]) + ", which the element does not define");
    for (std::size_t b = 0; b < blocks; ++b) {
      // Block b's bytes (runs of the permute layout: lut_matrix::block_codes).
      std::uint8_t* dst = m.codes_.data() + (m.block_codes(tile, b) - m.codes_.data());
      for (std::size_t j = 0; j < lut_tables_per_block; ++j) {
        const std::size_t gp = j / 2, shift = 4 * (j % 2);
        for (std::size_t i = 0; i < tr::planes; ++i) {
          unsigned idx = 0;
          for (std::size_t l = 0; l < lut_group; ++l) {
            const std::size_t c = b * lut_block + j * lut_group + l;
            // Columns past the padded row: plane bits 0 (their activations are 0).
            const unsigned p = c < pc ? tr::dec.pattern[codes[c]] : 0u;
            idx |= (p >> i & 1u) << l;
          }
          const std::size_t p = i / 2, k = i % 2;
          if constexpr (L == lut_layout::permute) {
            if (i < tr::planes / 2 * 2) // a plane pair
              dst[(p * 2 + j / 4) * 64 + 4 * rr + 2 * (j % 2) + k] |=
                  static_cast<std::uint8_t>(idx << (4 * (j % 4 / 2)));
            else // the last plane of an odd count, on its own
              dst[i * 64 + 4 * rr + j % 4] |= static_cast<std::uint8_t>(idx << (4 * (j / 4)));
          } else if (i < tr::planes / 2 * 2) { // a plane pair
            dst[(gp * (tr::planes / 2) + p) * 32 + 2 * lut_lane_of_row(rr) + k] |=
                static_cast<std::uint8_t>(idx << shift);
          } else { // the last plane of an odd count, after the pairs
            dst[tr::planes / 2 * 128 + gp * 16 + lut_lane_of_row(rr)] |= static_cast<std::uint8_t>(idx << shift);
          }
        }
      }
    }
    for (std::size_t u = 0; u < units; ++u) {
      const std::size_t su = T::scale_index(r, u * (T::gran == granularity::group ? T::block : 0), w.cols());
      auto& s = m.scales_[m.side_index(tile, u) + rr];
      if constexpr (tr::half_scales)
        s = w.scales()[su];
      else
        s = sr(su);
      if constexpr (T::has_zero_point) {
        const std::uint8_t z = w.zero_points()[su];
        if (z >= (1u << T::code_bits))
          throw error("pack_for_lut: zero point " + std::to_string(z) + " of row " + std::to_string(r) +
                      " is out of range");
        m.zeros_[m.side_index(tile, u) + rr] = z;
      }
    }
  }
  return m;
}

// The activation tables of `tokens` rows of X (K = cols): per token, groups x 16 int8 entries
// (32-byte aligned rows), and per 32-column block the table scale and the sum of the activations.
struct lut_activations {
  aligned_vector<std::int8_t> q;
  std::vector<float> scale;
  std::vector<float> xsum;
  std::size_t tokens = 0, blocks = 0, cols = 0; // cols: the K they were built for

  std::size_t row_entries() const noexcept { return blocks * lut_tables_per_block * 16; }
  bool sized() const noexcept {
    return q.size() == tokens * row_entries() && scale.size() == tokens * blocks && xsum.size() == tokens * blocks;
  }
  const std::int8_t* q_row(std::size_t t) const noexcept { return q.data() + t * row_entries(); }
  const float* scale_row(std::size_t t) const noexcept { return scale.data() + t * blocks; }
  const float* xsum_row(std::size_t t) const noexcept { return xsum.data() + t * blocks; }
};

// One token's tables: T[m] = ((+-x0 +- x1) +- x2) +- x3 in fp32 (so T[15 - m] = -T[m]), then per
// block u = max|T| / 127, q = round_nearest_even(T * (127 / max|T|)), s = u / 2, and the block's
// activation sum in the order of an 8-lane vector reduction:
//   v[l] = ((x[l] + x[8 + l]) + x[16 + l]) + x[24 + l], h[i] = v[i] + v[i + 4],
//   xsum = (h[0] + h[2]) + (h[1] + h[3]).
// A block holding NaN or inf, or whose sums overflow to inf, gets s = NaN and q = 0; an all-zero
// block, or one so tiny that 127 / max|T| overflows (subnormal activations), gets s = 0 and q = 0.
// The AVX2 builder (kernels/avx2/activations.hpp) is bit-exact against this one.
template <activation_type T>
void build_lut_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale,
                         float* xsum) noexcept {
  float t[lut_tables_per_block][16];
  for (std::size_t b = 0; b < blocks; ++b) {
    float xv[lut_block];
    bool bad = false;
    for (std::size_t c = 0; c < lut_block; ++c) {
      xv[c] = b * lut_block + c < cols ? lowbit::detail::widen(x[b * lut_block + c]) : 0.0f;
      bad = bad || !std::isfinite(xv[c]);
    }
    float v[8], h[4];
    for (std::size_t l = 0; l < 8; ++l) v[l] = ((xv[l] + xv[8 + l]) + xv[16 + l]) + xv[24 + l];
    for (std::size_t i = 0; i < 4; ++i) h[i] = v[i] + v[i + 4];
    xsum[b] = (h[0] + h[2]) + (h[1] + h[3]);
    float amax = 0.0f;
    for (std::size_t j = 0; j < lut_tables_per_block; ++j)
      for (unsigned m = 0; m < 16; ++m) {
        const float* g = xv + j * lut_group;
        float e = (m & 1u) ? g[0] : -g[0];
        for (unsigned l = 1; l < lut_group; ++l) e += (m >> l & 1u) ? g[l] : -g[l];
        t[j][m] = e;
        amax = std::max(amax, std::fabs(e));
      }
    bad = bad || !std::isfinite(amax);
    std::int8_t* qb = q + b * lut_tables_per_block * 16;
    if (bad || !std::isfinite(127.0f / amax)) { // amax = 0 or below 127 / FLT_MAX: a zero block
      std::fill(qb, qb + lut_tables_per_block * 16, std::int8_t{0});
      scale[b] = bad ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
    } else {
      const float inv = 127.0f / amax;
      for (std::size_t j = 0; j < lut_tables_per_block; ++j)
        for (std::size_t m = 0; m < 16; ++m)
          qb[j * 16 + m] = static_cast<std::int8_t>(std::clamp(std::nearbyint(t[j][m] * inv), -127.0f, 127.0f));
      scale[b] = amax / 127.0f * 0.5f;
    }
  }
}

// Sizes `out` for `tokens` rows of `cols` and fills it token by token with `row`, a function with
// build_lut_table_row's parameters (the scalar spec here, its SIMD twins elsewhere). `cost` is what
// an activation costs that builder, in parallel_rows' units of work (about 16 for the scalar and
// AVX2 builders; less for a faster builder, which then stays on one thread for longer rows).
template <activation_type T, class Row>
void build_lut_tables_by_row(std::span<const T> x, std::size_t tokens, std::size_t cols, lut_activations& out,
                             Row&& row, std::size_t cost = 16) {
  out.tokens = tokens;
  out.cols = cols;
  out.blocks = (cols + lut_block - 1) / lut_block;
  out.q.resize(tokens * out.row_entries());
  out.scale.resize(tokens * out.blocks);
  out.xsum.resize(tokens * out.blocks);
  // Tokens and their blocks are independent: tasks of up to 32 blocks (1024 columns) of one token,
  // split across threads once there is enough work (with the AVX2 builder an activation costs about
  // as much as 16 touched elements elsewhere), so that one token's tables also take every thread.
  parallel_token_blocks(tokens, out.blocks, 32, tokens * cols * cost,
                        [&](std::size_t t, std::size_t b0, std::size_t nb) {
                          const std::size_t c0 = b0 * lut_block;
                          row(x.data() + t * cols + c0, cols - c0, nb,
                              out.q.data() + t * out.row_entries() + b0 * lut_tables_per_block * 16,
                              out.scale.data() + t * out.blocks + b0, out.xsum.data() + t * out.blocks + b0);
                        });
}

template <activation_type T>
void build_lut_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, lut_activations& out) {
  build_lut_tables_by_row(x, tokens, cols, out, build_lut_table_row<T>);
}

// Shared checks of the LUT entry points (an empty W: a default-constructed lut_matrix).
template <lut_scheme S, lut_layout L>
void check_linear_lut(const char* fn, const lut_matrix<S, L>& w, std::size_t x_size, std::size_t tokens,
                      std::size_t y_size, std::size_t bias_size) {
  check_linear_shape(fn, w.rows(), w.cols(), x_size, tokens, y_size, bias_size);
}

namespace scalar {

// The LUT kernel on the packed layout without SIMD, in the same arithmetic as the AVX2 kernel: the
// path where AVX2 is not compiled, and for the permute layout wherever VBMI is not (there it reads
// each row's indices from the bytes the header comment names; pack the shuffle layout there).
template <lut_scheme S, lut_layout L>
void linear_lut(const lut_matrix<S, L>& w, const lut_activations& a, std::span<float> y, std::span<const float> bias) {
  using tr = lut_traits<S>;
  check_lut_call("scalar::linear_lut", w, a, y.size(), bias.size());
  const std::size_t rows = w.rows(), blocks = w.blocks();
  [[maybe_unused]] const float g = w.scale_multiplier(), kg = tr::k * g;
  // Tiles split across threads; each tile is computed the same way on any thread.
  parallel_rows(w.tiles(), rows * w.cols() * a.tokens, [&](std::size_t tile0, std::size_t tile1) {
    for (std::size_t tile = tile0; tile < tile1; ++tile)
      for (std::size_t t = 0; t < a.tokens; ++t) {
        float acc[lut_tile_rows] = {};
        const std::int8_t* q = a.q_row(t);
        for (std::size_t b = 0; b < blocks; ++b) {
          const std::uint8_t* cp = w.block_codes(tile, b);
          std::int32_t isum[lut_tile_rows] = {};
          if constexpr (L == lut_layout::permute) {
            for (std::size_t p = 0; p < tr::planes / 2; ++p)
              for (std::size_t quad = 0; quad < 2; ++quad, cp += 64)
                for (std::size_t byte = 0; byte < 64; ++byte) {
                  const std::size_t r = byte / 4, k = byte % 4, i = 2 * p + k % 2;
                  const std::int8_t* tl = q + (b * lut_tables_per_block + 4 * quad + k / 2) * 16;
                  isum[r] += tr::dec.a[i] * (tl[cp[byte] & 15] + tl[32 + (cp[byte] >> 4)]);
                }
            if constexpr (tr::planes % 2 != 0) {
              for (std::size_t byte = 0; byte < 64; ++byte) {
                const std::int8_t* tl = q + (b * lut_tables_per_block + byte % 4) * 16;
                isum[byte / 4] += tr::dec.a[tr::planes - 1] * (tl[cp[byte] & 15] + tl[64 + (cp[byte] >> 4)]);
              }
              cp += 64;
            }
          } else {
            for (std::size_t gp = 0; gp < 4; ++gp)
              for (std::size_t p = 0; p < tr::planes / 2; ++p, cp += 32)
                for (std::size_t byte = 0; byte < 32; ++byte) {
                  const std::size_t r = lut_row_of_lane(byte / 2), i = 2 * p + byte % 2;
                  const std::int8_t* tl = q + (b * lut_tables_per_block + 2 * gp) * 16;
                  isum[r] += tr::dec.a[i] * (tl[cp[byte] & 15] + tl[16 + (cp[byte] >> 4)]);
                }
            if constexpr (tr::planes % 2 != 0)
              for (std::size_t gp = 0; gp < 4; ++gp, cp += 16)
                for (std::size_t byte = 0; byte < 16; ++byte) {
                  const std::int8_t* tl = q + (b * lut_tables_per_block + 2 * gp) * 16;
                  isum[lut_row_of_lane(byte)] +=
                      tr::dec.a[tr::planes - 1] * (tl[cp[byte] & 15] + tl[16 + (cp[byte] >> 4)]);
                }
          }
          const std::size_t u = tr::unit_of_block(b);
          const float sg = a.scale_row(t)[b] * g, xs = a.xsum_row(t)[b];
          for (std::size_t r = 0; r < lut_tile_rows; ++r) {
            float ws;
            if constexpr (tr::half_scales)
              ws = fp16::decode(w.tile_scales(tile, u)[r]);
            else
              ws = w.tile_scales(tile, u)[r];
            const float f = static_cast<float>(isum[r]);
            float v;
            if constexpr (S::has_zero_point)
              v = std::fma(f, sg, ((tr::k - static_cast<float>(w.tile_zeros(tile, u)[r])) * g) * xs);
            else if constexpr (tr::k != 0.0f)
              v = std::fma(f, sg, kg * xs);
            else
              v = f * sg;
            acc[r] = std::fma(v, ws, acc[r]);
          }
        }
        for (std::size_t r = 0; r < lut_tile_rows && tile * lut_tile_rows + r < rows; ++r) {
          const std::size_t n = tile * lut_tile_rows + r;
          y[t * rows + n] = bias.empty() ? acc[r] : acc[r] + bias[n];
        }
      }
  });
}

} // namespace scalar
} // namespace lowbit::kernels
