// Direct-lookup LUT kernels for 16-entry codebook weights: NF4 (with fp32 or double-quantized
// scales), E2M1 (MXFP4 with E8M0 scales, NVFP4 with UE4M3 scales on groups of 16), bitsandbytes
// FP4, and every other 4-bit element without zero points. The bit-plane kernels of kernels/lut.hpp
// need values that are affine in the code's bits; a codebook is not (NF4's 16 values are the
// quantiles of a normal distribution). Here the table is indexed by the code itself: for every
// column l of a token, the 16 products T_l[c] = x_l * v[c] with the codebook's exact float values
// v[c], quantized to int8 per block of columns. A row's dot product is then the sum of one
// looked-up byte per weight, 32 rows per pair of byte shuffles; no weight is decoded and no
// activation is quantized on its own, and NF4 needs no int8 approximation of its table (the
// integer-dot kernels use one, within 0.5/127 of its largest value). The price is accuracy: the
// rounding of a table entry does not shrink with |v[c]|, so the error is about twice the
// integer-dot path's (README, "Codebook LUT kernels", has the measurements); linear_weights keeps
// the int8 tiles for these schemes, which were as fast or faster on the benchmark machine.
//
// Table quantization (the only approximation besides fp32 rounding): a block of B columns (B = 16
// where the scheme's groups are 16 wide, else 32) shares m = max_l |x_l| * max_c |v[c]| (fp32
// products), and q = round_nearest_even((x_l * v[c]) * (127 / m)), s = m / 127. Each entry is off
// by at most s / 2 from x_l * v[c], so a row's result is within sum over blocks of
// B * |w_scale| * s / 2 of the exact product with the dequantized weights, plus fp32 rounding;
// tests check that bound. A block holding NaN or inf, or whose m overflows, gets s = NaN (the
// token's outputs are NaN); a block of zeros, or one so small that 127 / m overflows, gets s = 0.
//
// Weight layout (pack_for_codebook_lut, a one-time step at load time): rows in tiles of 32,
// columns in blocks of B, each block in quads of 4 columns c0 .. c0 + 3. Per tile, block and quad,
// 64 bytes: for the half h of the tile (rows 16h .. 16h + 15) 32 bytes, byte r (r < 16) holding row
// 16h + r's code of column c0 in its low nibble and of c0 + 2 in its high nibble, byte 16 + r
// those of c0 + 1 and c0 + 3. One shuffle of the 32 bytes [T_c0 | T_c0+1] by the low nibbles and one
// of [T_c0+2 | T_c0+3] by the high nibbles look up 64 products of 16 rows. Rows past N get code 0
// and scale 0; columns past the padded row get code 0 (their table entries are 0). Scales are kept
// per tile and scale unit, 32 at a time: E8M0, UE4M3 and fp16 as their codes (decoded in the
// kernel by scale_decoder), the others as fp32 from scale_reader.
//
// Arithmetic, per block b, row r and token t, in this order (the kernels are bit-exact against
// reference::linear_codebook_lut, which writes it out from the qmatrix itself):
//   isum = sum over the block's columns c of q_t[c][code(r, c)]   (exact, int16 then int32),
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

inline constexpr std::size_t codebook_tile_rows = 32; // rows per tile (two shuffles of 16)

template <scheme S>
struct codebook_lut_traits {
  using element = typename S::element;
  // Columns sharing one table scale: 16 where the scale groups are 16 wide, else 32.
  static constexpr std::size_t block = S::gran == granularity::group && S::block % 32 != 0 ? 16 : 32;
  static constexpr std::size_t quads = block / 4;
  // The element's 16 values, exactly as dequantize() uses them.
  static constexpr std::array<float, 16> values = [] {
    std::array<float, 16> v{};
    if constexpr (S::layout != code_layout::base3 && S::code_bits == 4)
      for (unsigned c = 0; c < 16; ++c) v[c] = element::decode(static_cast<typename element::storage>(c));
    return v;
  }();
  static constexpr bool finite = [] {
    for (float v : values)
      if (!(v - v == 0.0f)) return false;
    return true;
  }();
  static constexpr float vmax = [] {
    float m = 0.0f;
    for (float v : values) m = v > m ? v : -v > m ? -v : m;
    return m;
  }();
  static std::size_t units(std::size_t padded_cols) noexcept {
    return S::gran == granularity::group ? padded_cols / S::block : 1;
  }
  static constexpr std::size_t unit_of_block(std::size_t b) noexcept {
    return S::gran == granularity::group ? b * block / S::block : 0;
  }
};

// Schemes the codebook LUT kernels run on: 4-bit codes in either nibble order whose 16 values are
// all finite (codebooks, E2M1, symmetric integers), no zero points, tensor, row or group scales
// (groups a multiple of 16).
template <class S>
concept codebook_lut_scheme = scheme<S> && S::layout != code_layout::base3&& S::code_bits == 4 && !S::has_zero_point &&
                              codebook_lut_traits<S>::finite && codebook_lut_traits<S>::vmax > 0.0f &&
                              (S::gran == granularity::tensor || S::gran == granularity::row ||
                               (S::gran == granularity::group && S::block % 16 == 0));

// W packed for the codebook LUT kernels (see the header comment); made by pack_for_codebook_lut.
template <codebook_lut_scheme S>
class codebook_lut_matrix {
  using storage = typename qmatrix<S>::scale_storage;
  struct no_decoder {};

public:
  using traits = codebook_lut_traits<S>;
  static constexpr std::size_t quad_bytes = 64; // one quad of one tile
  // Scales kept as the qmatrix's codes (else as fp32).
  static constexpr bool compact_scales =
      !qmatrix<S>::double_quantized && (sizeof(storage) == 1 || std::is_same_v<typename S::scale_format, fp16>);
  using scale_type = std::conditional_t<compact_scales, storage, float>;

  codebook_lut_matrix() = default;
  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t tiles() const noexcept { return (rows_ + codebook_tile_rows - 1) / codebook_tile_rows; }
  std::size_t blocks() const noexcept { return blocks_; }
  std::size_t units() const noexcept { return units_; }
  const std::uint8_t* tile_codes(std::size_t t) const noexcept {
    return codes_.data() + t * blocks_ * traits::quads * quad_bytes;
  }
  // The 32 rows' stored scales of unit u of tile t (codes or fp32, see scale_type).
  const scale_type* tile_scales(std::size_t t, std::size_t u) const noexcept {
    return scales_.data() + (t * units_ + u) * codebook_tile_rows;
  }
  // Stored scale i of unit u of tile t as a float, bit for bit as scale_reader gives it.
  float scale(std::size_t t, std::size_t u, std::size_t i) const noexcept {
    if constexpr (compact_scales)
      return decoder_(tile_scales(t, u)[i]);
    else
      return tile_scales(t, u)[i];
  }
  const auto& decoder() const noexcept requires(compact_scales) { return decoder_; }
  std::size_t storage_bytes() const noexcept { return codes_.size() + scales_.size() * sizeof(scale_type); }

private:
  template <codebook_lut_scheme T>
  friend codebook_lut_matrix<T> pack_for_codebook_lut(const qmatrix<T>& w);
  std::size_t rows_ = 0, cols_ = 0, blocks_ = 0, units_ = 0;
  aligned_vector<std::uint8_t> codes_;
  aligned_vector<scale_type> scales_;
  std::conditional_t<compact_scales, scale_decoder<S>, no_decoder> decoder_ = make_decoder(1.0f);

  static auto make_decoder(float tensor_scale) noexcept {
    if constexpr (compact_scales)
      return scale_decoder<S>(tensor_scale, 1.0f);
    else
      return no_decoder{};
  }
};

// Reorders W into the codebook LUT kernels' layout (one-time, at load time).
template <codebook_lut_scheme T>
codebook_lut_matrix<T> pack_for_codebook_lut(const qmatrix<T>& w) {
  using tr = codebook_lut_traits<T>;
  using M = codebook_lut_matrix<T>;
  if (w.rows() == 0 || w.cols() == 0) throw invalid_argument("pack_for_codebook_lut: W is empty");
  M m;
  m.rows_ = w.rows();
  m.cols_ = w.cols();
  const std::size_t pc = w.padded_cols();
  m.blocks_ = (pc + tr::block - 1) / tr::block;
  m.units_ = tr::units(pc);
  const std::size_t tiles = m.tiles(), tile_bytes = m.blocks_ * tr::quads * M::quad_bytes;
  m.codes_.assign(tiles * tile_bytes, 0);
  m.scales_.assign(tiles * m.units_ * codebook_tile_rows, typename M::scale_type{});
  m.decoder_ = M::make_decoder(w.tensor_scale());
  const scale_reader<T> sr(w);
  std::vector<std::uint8_t> codes(pc);
  for (std::size_t r = 0; r < w.rows(); ++r) {
    unpack_codes(T::layout, T::code_bits, w.row_codes(r), codes);
    const std::size_t tile = r / codebook_tile_rows, h = r % codebook_tile_rows / 16, rr = r % 16;
    std::uint8_t* dst = m.codes_.data() + tile * tile_bytes;
    for (std::size_t q = 0; q < m.blocks_ * tr::quads; ++q)
      for (std::size_t k = 0; k < 4; ++k) { // column 4q + k: byte 16 * (k % 2) + rr, nibble k / 2
        const std::size_t c = 4 * q + k;
        const unsigned code = c < pc ? codes[c] & 15u : 0u;
        dst[q * M::quad_bytes + 32 * h + 16 * (k % 2) + rr] |= static_cast<std::uint8_t>(code << (4 * (k / 2)));
      }
    for (std::size_t u = 0; u < m.units_; ++u) {
      const std::size_t su = T::scale_index(r, T::gran == granularity::group ? u * T::block : 0, w.cols());
      auto& s = m.scales_[(tile * m.units_ + u) * codebook_tile_rows + r % codebook_tile_rows];
      if constexpr (M::compact_scales)
        s = w.scales()[su];
      else
        s = sr(su);
    }
  }
  return m;
}

// The tables of `tokens` rows of X (K = cols): per token, blocks x B columns x 16 int8 entries
// (entry c of column l at q_row(t)[16 l + c]), and per block the table scale s.
struct codebook_activations {
  aligned_vector<std::int8_t> q;
  std::vector<float> scale;
  std::size_t tokens = 0, blocks = 0, block = 0, cols = 0; // cols: the K they were built for

  std::size_t row_entries() const noexcept { return blocks * block * 16; }
  bool sized() const noexcept { return q.size() == tokens * row_entries() && scale.size() == tokens * blocks; }
  const std::int8_t* q_row(std::size_t t) const noexcept { return q.data() + t * row_entries(); }
  const float* scale_row(std::size_t t) const noexcept { return scale.data() + t * blocks; }
};

// One token's tables (the header comment's quantization), for the element values v.
template <scheme S, activation_type T>
void build_codebook_table_row(const T* x, std::size_t cols, std::size_t blocks, std::int8_t* q, float* scale) noexcept {
  using tr = codebook_lut_traits<S>;
  constexpr std::size_t B = tr::block;
  for (std::size_t b = 0; b < blocks; ++b) {
    float xv[B];
    bool bad = false;
    float amax = 0.0f;
    for (std::size_t c = 0; c < B; ++c) {
      xv[c] = b * B + c < cols ? lowbit::detail::widen(x[b * B + c]) : 0.0f;
      bad = bad || !std::isfinite(xv[c]);
      amax = std::max(amax, std::fabs(xv[c]));
    }
    const float m = amax * tr::vmax;
    std::int8_t* qb = q + b * B * 16;
    if (bad || !std::isfinite(m) || !std::isfinite(127.0f / m)) {
      std::fill(qb, qb + B * 16, std::int8_t{0});
      scale[b] = bad || !std::isfinite(m) ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      continue;
    }
    const float inv = 127.0f / m;
    for (std::size_t c = 0; c < B; ++c)
      for (std::size_t k = 0; k < 16; ++k)
        qb[c * 16 + k] =
            static_cast<std::int8_t>(std::clamp(std::nearbyint((xv[c] * tr::values[k]) * inv), -127.0f, 127.0f));
    scale[b] = m / 127.0f;
  }
}

// Sizes `out` for `tokens` rows of `cols` and fills it with `row`, a function with
// build_codebook_table_row's parameters (the scalar spec here, its AVX2 twin elsewhere). `blocks`:
// the blocks per token, at least ceil(cols / B); the matrix's (codebook_lut_matrix::blocks(),
// which counts its padded columns) where that is more. Columns past cols get entries 0.
template <scheme S, activation_type T, class Row>
void build_codebook_tables_by_row(std::span<const T> x, std::size_t tokens, std::size_t cols, std::size_t blocks,
                                  codebook_activations& out, Row&& row) {
  using tr = codebook_lut_traits<S>;
  out.tokens = tokens;
  out.cols = cols;
  out.block = tr::block;
  out.blocks = std::max(blocks, (cols + tr::block - 1) / tr::block);
  out.q.resize(tokens * out.row_entries());
  out.scale.resize(tokens * out.blocks);
  // Tasks of about 1024 columns of one token, so that one token's tables also take every thread;
  // blocks wholly past cols (the matrix's padding) read no activation.
  constexpr std::size_t task_blocks = 1024 / tr::block; // blocks of 16 or 32 columns
  parallel_token_blocks(
      tokens, out.blocks, task_blocks, tokens * cols * 16, [&](std::size_t t, std::size_t b0, std::size_t nb) {
        const std::size_t c0 = std::min(b0 * tr::block, cols);
        row(x.data() + t * cols + c0, cols - c0, nb, out.q.data() + t * out.row_entries() + b0 * tr::block * 16,
            out.scale.data() + t * out.blocks + b0);
      });
}

template <scheme S, activation_type T>
void build_codebook_tables(std::span<const T> x, std::size_t tokens, std::size_t cols, codebook_activations& out,
                           std::size_t blocks = 0) {
  build_codebook_tables_by_row<S>(x, tokens, cols, blocks, out, build_codebook_table_row<S, T>);
}

// The kernels' checks: tables built for this scheme's block width, then check_lut_call.
template <codebook_lut_scheme S>
void check_codebook_tables(const char* fn, const codebook_lut_matrix<S>& w, const codebook_activations& a,
                           std::size_t y_size, std::size_t bias_size) {
  if (a.block != codebook_lut_traits<S>::block)
    throw invalid_argument(std::string(fn) + ": the tables have blocks of " + std::to_string(a.block) +
                           " columns, the matrix blocks of " + std::to_string(codebook_lut_traits<S>::block));
  check_lut_call(fn, w, a, y_size, bias_size);
}

namespace scalar {

// The codebook LUT kernel on the packed layout without SIMD (the path where AVX2 is not compiled),
// in the same arithmetic as the AVX2 kernel.
template <codebook_lut_scheme S>
void linear_codebook_lut(const codebook_lut_matrix<S>& w, const codebook_activations& a, std::span<float> y,
                         std::span<const float> bias) {
  using tr = codebook_lut_traits<S>;
  using M = codebook_lut_matrix<S>;
  check_codebook_tables("scalar::linear_codebook_lut", w, a, y.size(), bias.size());
  const std::size_t rows = w.rows();
  // Tiles split across threads; each tile is computed the same way on any thread.
  parallel_rows(w.tiles(), rows * w.cols() * a.tokens, [&](std::size_t tile0, std::size_t tile1) {
    for (std::size_t tile = tile0; tile < tile1; ++tile)
      for (std::size_t t = 0; t < a.tokens; ++t) {
        float acc[codebook_tile_rows] = {};
        const std::uint8_t* cp = w.tile_codes(tile);
        const std::int8_t* q = a.q_row(t);
        for (std::size_t b = 0; b < w.blocks(); ++b) {
          std::int32_t isum[codebook_tile_rows] = {};
          for (std::size_t i = 0; i < tr::quads; ++i, cp += M::quad_bytes) {
            const std::int8_t* g = q + (b * tr::block + 4 * i) * 16;
            for (std::size_t byte = 0; byte < M::quad_bytes; ++byte) {
              const std::size_t r = 16 * (byte / 32) + byte % 16, k = byte % 32 / 16; // columns k and k + 2
              isum[r] += g[16 * k + (cp[byte] & 15)] + g[16 * (k + 2) + (cp[byte] >> 4)];
            }
          }
          const std::size_t u = tr::unit_of_block(b);
          for (std::size_t r = 0; r < codebook_tile_rows; ++r)
            acc[r] = std::fma(static_cast<float>(isum[r]), w.scale(tile, u, r) * a.scale_row(t)[b], acc[r]);
        }
        for (std::size_t r = 0; r < codebook_tile_rows && tile * codebook_tile_rows + r < rows; ++r) {
          const std::size_t n = tile * codebook_tile_rows + r;
          y[t * rows + n] = bias.empty() ? acc[r] : acc[r] + bias[n];
        }
      }
  });
}

} // namespace scalar
} // namespace lowbit::kernels
