// Base-3 LUT kernels for ternary weights (BitNet b1.58), after bitnet.cpp's TL2 idea: three
// weights at a time index a table of their 27 possible dot products with three activations. The
// 27 sign patterns of a triad (w0, w1, w2) in {-1, 0, 1}^3 are n = 9 (w0 + 1) + 3 (w1 + 1) +
// (w2 + 1); pattern 26 - n is the negation of pattern n, so a triad is stored as a 4-bit index
// i = min(n, 26 - n) in 0..13 and a sign bit (n > 13): 5 bits per 3 weights, 1.67 bits per weight
// against 2 for the bit-plane kernels' 2-bit codes (kernels/lut.hpp) and 1.6 for the base-3
// storage itself. A token's table for triad j holds the 14 dot products
//   T_j[i] = (w0(i) x0 + w1(i) x1) + w2(i) x2,   w_l(i) = digit l of i in base 3 (most significant
// first) minus 1, x_l = x[3j + l] (0 past K), with entries 14 and 15 zero. A row's dot product is
// the sum over its triads of +-T_j[i]: one byte shuffle looks up 16 rows of a triad, and the sign
// is applied by a byte sign operation. The price is accuracy: an entry of up to |x0| + |x1| + |x2|
// is rounded once per triad, where the bit-plane tables round a sum of 4 activations once per
// plane and weight it 1/2; the error is about 1.7 times theirs, and 1.2 times the int8 path's
// (README, "Base-3 LUT kernel for ternary weights").
//
// Table quantization (the only approximation besides fp32 rounding): a block of 32 triads (96
// columns) shares m = max |T| over its 14 x 32 entries and q = round_nearest_even(T * (127 / m)),
// s = m / 127. Each entry is off by at most s / 2 (plus the rounding of T * (127 / m)), so a row's
// result is within sum over blocks of 32 * |w_scale| * s / 2 of the exact product with the
// dequantized weights, plus fp32 rounding; tests check that bound. A block holding NaN or inf, or
// whose sums overflow, gets s = NaN (that token's outputs are NaN); a block of zeros, or one so small
// that 127 / m overflows, gets s = 0.
//
// Weight layout (pack_for_ternary_lut, a one-time step at load time): rows in tiles of 32, triads
// in blocks of 32, each block in 4 pairs of quads of 4 triads. Per tile, block and pair, 160 bytes:
// 32 sign bytes, then for each quad (c0 = its first triad) and half h of the tile (rows 16h ..
// 16h + 15) 32 index bytes, byte i holding row 16h + i % 16's index of triad c0 + i / 16 in its
// low nibble and of triad c0 + 2 + i / 16 in its high nibble, as in the codebook LUT kernels
// (kernels/codebook_lut.hpp): one shuffle of the tables [T_c0 | T_c0+1] by the low nibbles and one of
// [T_c0+2 | T_c0+3] by the high nibbles look up 64 triads of 16 rows. The 8 shuffles j = 4 * quad +
// 2 * h + (0 low, 1 high) of a pair take their signs from bit 7 - j of sign byte i (1: negate), so
// the kernel reads them by shifting the sign bytes left by one per shuffle. Triads past K and rows
// past N are all-zero (index 13, sign 0); rows past N get scale 0. Scales are kept per tile and
// scale unit, 32 at a time, as fp32 from scale_reader.
//
// A second layout, ternary_lut_layout::permute, holds the same 5 bits per triad and the same scales
// for the AVX-512 VBMI + VNNI kernel (kernels/avx512/ternary_perm.hpp). Per tile and block, 640
// bytes: first, for each quad of triads (c0 = its first), 64 index bytes, byte 4 d + k holding
// row d's index of triad c0 + k in its low nibble and row 16 + d's in its high nibble; then, for
// each quad, 16 sign bytes: two little-endian 64-bit words, bit 4 d + k of the first the sign of
// the low nibble of index byte 4 d + k, of the second that of its high nibble. Byte 4 d + k made
// into index | k << 4 selects, by one byte permute (vpermb) of the quad's four tables
// [T_c0 .. T_c0+3], row d's entry of triad c0 + k; a masked negation by the sign word and a
// vpdpbusd with ones then add each row's four into an int32 lane. No unpack, no int16 step; the
// sums are the same integers. As the bit-plane permute layout (kernels/lut.hpp), rows longer than
// LOWBIT_TERNARY_RUN_COLS columns are stored in column runs of that many (rounded up to whole blocks
// and scale units; the last run shorter): every tile's blocks of the first run, tile after tile, then
// the next run's, and the scales in the same runs (ternary_lut_matrix::block_codes and tile_scales).
// The one-token driver takes a thread's tiles run by run (avx2::run_lut_token), so its codes and
// scales are two plain streams while a run's tables stay in L1; with several tokens the kernel takes
// whole rows, following the runs (kernels/avx512/ternary_perm.hpp).
//
// Arithmetic, per block b, row r and token t, in this order (the kernels are bit-exact against
// reference::linear_ternary_lut, which writes it out from the qmatrix itself):
//   isum = sum over the block's triads j of sign(r, j) * q_t[j][index(r, j)]   (exact, int16 then int32),
//   acc  = fma(float(isum), w_scale(r, b) * s(t, b), acc),
//   y    = acc + bias.
#pragma once

#include "lowbit/core/buffer.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace lowbit::kernels {

inline constexpr std::size_t ternary_tile_rows = 32;    // rows per tile (two shuffles of 16)
inline constexpr std::size_t ternary_block_triads = 32; // triads sharing one table scale
inline constexpr std::size_t ternary_block_cols = 3 * ternary_block_triads;
inline constexpr std::size_t ternary_pair_bytes = 32 + 2 * 64; // signs, then two quads' indices
inline constexpr std::size_t ternary_block_bytes = ternary_block_triads / 8 * ternary_pair_bytes;

// The byte layout of a ternary_lut_matrix (the header comment): shuffle for the AVX2 and AVX-512 BW
// kernels, permute for the AVX-512 VBMI + VNNI kernel.
enum class ternary_lut_layout { shuffle, permute };

// Columns per run of the permute layout (see the header comment; rounded up to whole blocks of 96
// columns and whole scale units: 11 blocks, 5.5 KiB of a token's tables and 7 KiB of a tile's codes).
// From DRAM at K = 8192 (2 threads, Xeon, bench/README.md run 32) runs of 1024 columns streamed at
// 72-81 % of the read bandwidth (median 78), 1536 at 74-79 %, 2048-4096 at 70-77 %, whole rows at
// 68-76 % (median 70.5): a shorter run than the bit-plane layout's 4096, whose blocks carry 4096
// columns in 16 KiB of tables and 16 KiB of INT2 codes; here 4096 columns are 22 KiB of tables and
// 27.5 KiB of codes, more than the 48 KiB L1 holds between two reads of a table line.
#ifndef LOWBIT_TERNARY_RUN_COLS
#define LOWBIT_TERNARY_RUN_COLS 1024
#endif
static_assert(LOWBIT_TERNARY_RUN_COLS >= 96, "LOWBIT_TERNARY_RUN_COLS must be at least one block (96)");

// Schemes the base-3 LUT kernels run on: ternary codes in either layout (2-bit or base 3), no zero
// points, tensor or row scales, or group scales whose groups are a multiple of 96 columns (so that
// no triad straddles two groups; other groups run on the bit-plane LUT kernels).
template <class S>
concept ternary_lut_scheme = scheme<S> && std::is_same_v<typename S::element, ternary> && !S::has_zero_point &&
                             (S::gran == granularity::tensor || S::gran == granularity::row ||
                              (S::gran == granularity::group && S::block % ternary_block_cols == 0));

// The stored form of a triad of ternary codes (0, 1, 2 for -1, 0, +1): index | sign << 4.
constexpr unsigned ternary_triad(unsigned c0, unsigned c1, unsigned c2) noexcept {
  const unsigned n = 9 * c0 + 3 * c1 + c2;
  return n <= 13 ? n : (26 - n) | 16u;
}

// Weight l (0..2) of table entry i (0..13): the digits of i in base 3, most significant first, minus 1.
constexpr int ternary_entry_weight(unsigned i, unsigned l) noexcept {
  return static_cast<int>(l == 0 ? i / 9 : l == 1 ? i / 3 % 3 : i % 3) - 1;
}

// The same weights as three rows of 16 floats (row l: activation l's weight in entries 0-13, 0 in
// 14 and 15), 64-byte aligned, for the SIMD table builders.
struct alignas(64) ternary_weight_rows {
  float v[3][16];
};
inline constexpr ternary_weight_rows ternary_entry_weights = [] {
  ternary_weight_rows w{};
  for (unsigned l = 0; l < 3; ++l)
    for (unsigned i = 0; i < 14; ++i) w.v[l][i] = static_cast<float>(ternary_entry_weight(i, l));
  return w;
}();

// W packed for the base-3 LUT kernels in layout L (see the header comment); made by
// pack_for_ternary_lut<L>.
template <ternary_lut_scheme S, ternary_lut_layout L = ternary_lut_layout::shuffle>
class ternary_lut_matrix {
public:
  ternary_lut_matrix() = default;
  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t tiles() const noexcept { return (rows_ + ternary_tile_rows - 1) / ternary_tile_rows; }
  std::size_t blocks() const noexcept { return blocks_; }
  std::size_t units() const noexcept { return units_; }
  static constexpr std::size_t unit_of_block(std::size_t b) noexcept {
    return S::gran == granularity::group ? b * ternary_block_cols / S::block : 0;
  }
  // Blocks per column run: 0 where the codes are stored tile after tile (the shuffle layout, and
  // rows of at most one run), else the run length of the permute layout (the header comment).
  std::size_t run_blocks() const noexcept {
    if constexpr (L == ternary_lut_layout::permute) {
      const std::size_t unit = S::gran == granularity::group ? S::block / ternary_block_cols : 1;
      const std::size_t rb =
          (LOWBIT_TERNARY_RUN_COLS + unit * ternary_block_cols - 1) / (unit * ternary_block_cols) * unit;
      return blocks_ > rb ? rb : 0;
    } else {
      return 0;
    }
  }
  // The ternary_block_bytes of block b of tile t; a run's blocks of one tile are contiguous.
  const std::uint8_t* block_codes(std::size_t t, std::size_t b) const noexcept {
    return codes_.data() + run_place(t, b, blocks_, tiles(), run_blocks()) * ternary_block_bytes;
  }
  // Tile t's first block (its whole row of blocks where run_blocks() is 0).
  const std::uint8_t* tile_codes(std::size_t t) const noexcept { return block_codes(t, 0); }
  // The 32 rows' scales of unit u of tile t, bit for bit as scale_reader gives them: tile after
  // tile, or in the runs of the codes (a run's units of one tile contiguous, tile after tile).
  const float* tile_scales(std::size_t t, std::size_t u) const noexcept {
    const std::size_t rb = run_blocks(), ru = rb == 0 ? 0 : std::max<std::size_t>(1, unit_of_block(rb));
    return scales_.data() + run_place(t, u, units_, tiles(), ru) * ternary_tile_rows;
  }
  std::size_t storage_bytes() const noexcept { return codes_.size() + scales_.size() * sizeof(float); }

private:
  template <ternary_lut_layout, ternary_lut_scheme T>
  friend auto pack_for_ternary_lut(const qmatrix<T>& w);
  std::size_t rows_ = 0, cols_ = 0, blocks_ = 0, units_ = 0;
  aligned_vector<std::uint8_t> codes_;
  aligned_vector<float> scales_;
};

// Reorders W into the base-3 LUT kernels' layout L (one-time, at load time); returns a
// ternary_lut_matrix<T, L>. Throws lowbit::error on codes the element does not define (2-bit code
// 3, base-3 bytes >= 243) within the first K columns.
template <ternary_lut_layout L = ternary_lut_layout::shuffle, ternary_lut_scheme T>
auto pack_for_ternary_lut(const qmatrix<T>& w) {
  using M = ternary_lut_matrix<T, L>;
  if (w.rows() == 0 || w.cols() == 0) throw invalid_argument("pack_for_ternary_lut: W is empty");
  M m;
  m.rows_ = w.rows();
  m.cols_ = w.cols();
  const std::size_t pc = w.padded_cols(), cols = w.cols();
  m.blocks_ = (cols + ternary_block_cols - 1) / ternary_block_cols;
  m.units_ = T::gran == granularity::group ? pc / T::block : 1;
  const std::size_t tiles = m.tiles(), tile_bytes = m.blocks_ * ternary_block_bytes;
  m.codes_.assign(tiles * tile_bytes, 0);
  m.scales_.assign(tiles * m.units_ * ternary_tile_rows, 0.0f);
  const scale_reader<T> sr(w);
  std::vector<std::uint8_t> codes(pc);
  // Every triad starts as index 13 (all zero), sign 0; rows past N keep it. (Whatever the order of
  // the blocks, every block's bytes are alike: per pair its signs, then indices; per block of the
  // permute layout its 512 index bytes, then the signs.)
  for (std::size_t p = 0; p < tiles * m.blocks_ * ternary_block_triads / 8; ++p) {
    if constexpr (L == ternary_lut_layout::shuffle)
      std::fill_n(m.codes_.data() + p * ternary_pair_bytes + 32, 128, std::uint8_t{0xDD});
    else if (p % 4 == 0)
      std::fill_n(m.codes_.data() + p / 4 * ternary_block_bytes, 512, std::uint8_t{0xDD});
  }
  for (std::size_t r = 0; r < w.rows(); ++r) {
    unpack_codes(T::layout, T::code_bits, w.row_codes(r), codes);
    for (std::size_t c = 0; c < cols; ++c)
      if (codes[c] > 2)
        throw error("pack_for_ternary_lut: row " + std::to_string(r) + " column " + std::to_string(c) + " holds code " +
                    std::to_string(codes[c]) + ", which the element does not define");
    const std::size_t tile = r / ternary_tile_rows, h = r % ternary_tile_rows / 16, rr = r % 16;
    std::uint8_t* dst = m.codes_.data() + tile * tile_bytes;
    std::uint8_t* blk = dst; // the permute layout's current block (its place found once per block)
    for (std::size_t j = 0; j < m.blocks_ * ternary_block_triads; ++j) {
      unsigned c[3];
      for (std::size_t l = 0; l < 3; ++l) c[l] = 3 * j + l < cols ? codes[3 * j + l] : 1u;
      const unsigned v = ternary_triad(c[0], c[1], c[2]);
      if constexpr (L == ternary_lut_layout::permute) {
        const std::size_t quad = j % ternary_block_triads / 4, i = 4 * (r % 16) + j % 4;
        if (j % ternary_block_triads == 0)
          blk = m.codes_.data() + (m.block_codes(tile, j / ternary_block_triads) - m.codes_.data());
        std::uint8_t& idx = blk[64 * quad + i];
        idx = static_cast<std::uint8_t>((idx & ~(15u << (4 * h))) | (v & 15u) << (4 * h));
        blk[512 + 16 * quad + 8 * h + i / 8] |= static_cast<std::uint8_t>((v >> 4) << (i % 8));
        continue;
      }
      const std::size_t quad = j / 4, k = j % 4, pair = quad / 2, qq = quad % 2;
      const std::size_t i = 16 * (k % 2) + rr, s = k / 2; // byte i of the half's 32, nibble s
      std::uint8_t* pp = dst + pair * ternary_pair_bytes;
      std::uint8_t& idx = pp[32 + 64 * qq + 32 * h + i];
      idx = static_cast<std::uint8_t>((idx & ~(15u << (4 * s))) | (v & 15u) << (4 * s));
      pp[i] |= static_cast<std::uint8_t>((v >> 4) << (7 - (4 * qq + 2 * h + s)));
    }
    for (std::size_t u = 0; u < m.units_; ++u)
      m.scales_[(m.tile_scales(tile, u) - m.scales_.data()) + r % ternary_tile_rows] =
          sr(T::scale_index(r, T::gran == granularity::group ? u * T::block : 0, cols));
  }
  return m;
}

// The tables of `tokens` rows of X (K = cols): per token, blocks x 32 triads x 16 int8 entries
// (entry i of triad j at q_row(t)[16 j + i]), and per block the table scale s. A type of its own
// (not codebook_activations, whose rows look alike) so that the two kinds cannot be mixed up.
struct ternary_activations {
  aligned_vector<std::int8_t> q;
  std::vector<float> scale;
  std::size_t tokens = 0, blocks = 0, cols = 0; // cols: the K they were built for

  std::size_t row_entries() const noexcept { return blocks * ternary_block_triads * 16; }
  bool sized() const noexcept { return q.size() == tokens * row_entries() && scale.size() == tokens * blocks; }
  const std::int8_t* q_row(std::size_t t) const noexcept { return q.data() + t * row_entries(); }
  const float* scale_row(std::size_t t) const noexcept { return scale.data() + t * blocks; }
};

// One token's tables (the header comment's entries and quantization) into q (blocks x 32 triads
// x 16 entries) and scale (one per block).
template <activation_type T>
void build_ternary_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale) noexcept {
  for (std::size_t b = 0; b < blocks; ++b) {
    float t[ternary_block_triads][16];
    bool bad = false;
    float m = 0.0f;
    for (std::size_t j = 0; j < ternary_block_triads; ++j) {
      float xv[3];
      for (std::size_t l = 0; l < 3; ++l) {
        const std::size_t c = b * ternary_block_cols + 3 * j + l;
        xv[l] = c < cols ? lowbit::detail::widen(x[c]) : 0.0f;
        bad = bad || !std::isfinite(xv[l]);
      }
      for (unsigned i = 0; i < 16; ++i) {
        float p[3];
        for (unsigned l = 0; l < 3; ++l) {
          const int wl = i < 14 ? ternary_entry_weight(i, l) : 0;
          p[l] = wl > 0 ? xv[l] : wl < 0 ? -xv[l] : 0.0f;
        }
        t[j][i] = (p[0] + p[1]) + p[2];
        m = std::max(m, std::fabs(t[j][i]));
      }
    }
    std::int8_t* qb = q + b * ternary_block_triads * 16;
    if (bad || !std::isfinite(m) || !std::isfinite(127.0f / m)) {
      std::fill(qb, qb + ternary_block_triads * 16, std::int8_t{0});
      scale[b] = bad || !std::isfinite(m) ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      continue;
    }
    const float inv = 127.0f / m;
    for (std::size_t j = 0; j < ternary_block_triads; ++j)
      for (std::size_t i = 0; i < 16; ++i)
        qb[j * 16 + i] = static_cast<std::int8_t>(std::clamp(std::nearbyint(t[j][i] * inv), -127.0f, 127.0f));
    scale[b] = m / 127.0f;
  }
}

// Sizes `out` for `tokens` rows of `cols` and fills it with `row`, a function with
// build_ternary_table_row's parameters (the scalar spec here, its SIMD twins elsewhere), called on
// runs of whole blocks; `cost` is an activation's work for parallel_rows, as in
// build_lut_tables_by_row (8 for the scalar and AVX2 builders).
template <activation_type T, class Row>
void build_ternary_tables_by_row(std::span<const T> x, std::size_t tokens, std::size_t cols, ternary_activations& out,
                                 Row&& row, std::size_t cost = 8) {
  out.tokens = tokens;
  out.cols = cols;
  out.blocks = (cols + ternary_block_cols - 1) / ternary_block_cols;
  out.q.resize(tokens * out.row_entries());
  out.scale.resize(tokens * out.blocks);
  // Tokens and their blocks are independent: tasks of up to 16 blocks (1536 columns) of one token,
  // so that one token's tables also take every thread (as build_lut_tables_by_row).
  parallel_token_blocks(tokens, out.blocks, 16, tokens * cols * cost,
                        [&](std::size_t t, std::size_t b0, std::size_t nb) {
                          const std::size_t c0 = b0 * ternary_block_cols;
                          row(x.data() + t * cols + c0, cols - c0, nb,
                              out.q.data() + t * out.row_entries() + b0 * ternary_block_triads * 16,
                              out.scale.data() + t * out.blocks + b0);
                        });
}

template <activation_type T>
void build_ternary_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, ternary_activations& out) {
  build_ternary_tables_by_row(x, tokens, cols, out, build_ternary_table_row<T>);
}

namespace scalar {

// The base-3 LUT kernel on the packed layout without SIMD (the path where AVX2 is not compiled; the
// permute layout's below also where VBMI is not: pack the shuffle layout there), in the same
// arithmetic as the AVX2 kernel.
template <ternary_lut_scheme S>
void linear_ternary_lut(const ternary_lut_matrix<S>& w, const ternary_activations& a, std::span<float> y,
                        std::span<const float> bias) {
  check_lut_call("scalar::linear_ternary_lut", w, a, y.size(), bias.size());
  const std::size_t rows = w.rows();
  // Tiles split across threads; each tile is computed the same way on any thread.
  parallel_rows(w.tiles(), rows * w.cols() * a.tokens, [&](std::size_t tile0, std::size_t tile1) {
    for (std::size_t tile = tile0; tile < tile1; ++tile)
      for (std::size_t t = 0; t < a.tokens; ++t) {
        float acc[ternary_tile_rows] = {};
        const std::uint8_t* cp = w.tile_codes(tile);
        const std::int8_t* q = a.q_row(t);
        for (std::size_t b = 0; b < w.blocks(); ++b) {
          std::int32_t isum[ternary_tile_rows] = {};
          for (std::size_t pair = 0; pair < ternary_block_triads / 8; ++pair, cp += ternary_pair_bytes)
            for (std::size_t qq = 0; qq < 2; ++qq) {
              const std::int8_t* g = q + (b * ternary_block_triads + 8 * pair + 4 * qq) * 16;
              for (std::size_t h = 0; h < 2; ++h)
                for (std::size_t i = 0; i < 32; ++i) {
                  const std::uint8_t idx = cp[32 + 64 * qq + 32 * h + i], sg = cp[i];
                  const std::size_t r = 16 * h + i % 16, k = i / 16; // triads k and k + 2 of the quad
                  const unsigned j = static_cast<unsigned>(4 * qq + 2 * h);
                  const int lo = g[16 * k + (idx & 15)], hi = g[16 * (k + 2) + (idx >> 4)];
                  isum[r] += (sg >> (7 - j) & 1u ? -lo : lo) + (sg >> (6 - j) & 1u ? -hi : hi);
                }
            }
          const std::size_t u = w.unit_of_block(b);
          for (std::size_t r = 0; r < ternary_tile_rows; ++r)
            acc[r] = std::fma(static_cast<float>(isum[r]), w.tile_scales(tile, u)[r] * a.scale_row(t)[b], acc[r]);
        }
        for (std::size_t r = 0; r < ternary_tile_rows && tile * ternary_tile_rows + r < rows; ++r) {
          const std::size_t n = tile * ternary_tile_rows + r;
          y[t * rows + n] = bias.empty() ? acc[r] : acc[r] + bias[n];
        }
      }
  });
}

// The same on the permute layout: per row and triad, the index and sign read straight from the
// bytes the header comment describes.
template <ternary_lut_scheme S>
void linear_ternary_lut(const ternary_lut_matrix<S, ternary_lut_layout::permute>& w, const ternary_activations& a,
                        std::span<float> y, std::span<const float> bias) {
  check_lut_call("scalar::linear_ternary_lut", w, a, y.size(), bias.size());
  const std::size_t rows = w.rows();
  parallel_rows(w.tiles(), rows * w.cols() * a.tokens, [&](std::size_t tile0, std::size_t tile1) {
    for (std::size_t tile = tile0; tile < tile1; ++tile)
      for (std::size_t t = 0; t < a.tokens; ++t) {
        float acc[ternary_tile_rows] = {};
        const std::int8_t* q = a.q_row(t);
        for (std::size_t b = 0; b < w.blocks(); ++b) {
          const std::uint8_t* blk = w.block_codes(tile, b);
          const std::size_t u = w.unit_of_block(b);
          for (std::size_t r = 0; r < ternary_tile_rows; ++r) {
            std::int32_t isum = 0;
            const std::size_t h = r / 16;
            for (std::size_t j = 0; j < ternary_block_triads; ++j) {
              const std::size_t quad = j / 4, i = 4 * (r % 16) + j % 4;
              const unsigned idx = blk[64 * quad + i] >> (4 * h) & 15u;
              const bool neg = blk[512 + 16 * quad + 8 * h + i / 8] >> (i % 8) & 1u;
              const int e = q[(b * ternary_block_triads + j) * 16 + idx];
              isum += neg ? -e : e;
            }
            acc[r] = std::fma(static_cast<float>(isum), w.tile_scales(tile, u)[r] * a.scale_row(t)[b], acc[r]);
          }
        }
        for (std::size_t r = 0; r < ternary_tile_rows && tile * ternary_tile_rows + r < rows; ++r) {
          const std::size_t n = tile * ternary_tile_rows + r;
          y[t * rows + n] = bias.empty() ? acc[r] : acc[r] + bias[n];
        }
      }
  });
}

} // namespace scalar
} // namespace lowbit::kernels
