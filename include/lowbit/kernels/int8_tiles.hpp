// Row-interleaved tiles for the integer-dot GEMM (batches of tokens): pack_for_int8_tiles copies a
// qmatrix once, at load time, into tiles of 8 rows whose 4-byte groups are interleaved, so that one
// AVX2 register holds the same 4 kernel positions of 8 rows. A `maddubs` of that register with the
// token's 4 activation bytes broadcast then advances 8 rows at once, and the int16 sums of a whole
// segment (below) stay in registers before one conversion to fp32 per 8 rows, instead of one per
// row and span as in the in-place kernel (kernels/avx2/int8_dot.hpp). Same codes, same values,
// same activations (kernels/activations.hpp); only the order of the fp32 additions differs.
//
// Layout: tile t holds rows 8t .. 8t + 7 (rows past N are zero codes with scale code 0). For every
// span sp (32 stored bytes of a row, kernels/layout.hpp) and lane l (bytes 4l .. 4l + 3 of the span,
// which hold kernel positions 4l .. 4l + 3 of every chunk of the span), 32 bytes: bytes 4r .. 4r + 3
// are row r's span bytes 4l .. 4l + 3. Spans past the row's stored bytes are zero; their activations
// are zero too. The weight scales are kept per tile and scale unit, 8 at a time, as the qmatrix's
// codes where those are 8-bit (E8M0, UE4M3) or fp16, decoded by scale_decoder when a tile is used,
// and as fp32 read through scale_reader otherwise (fp32 or bf16 scales, double quantization):
// either way bit for bit the floats the reference uses.
//
// Arithmetic (reference::linear_int8_tiled is its bit-exact spec): a span's 8 lanes fall into
// segments of lanes sharing one weight scale unit and one activation block (4 lanes of a 4-bit
// span with groups >= 32, 2 with groups of 16 or 2-bit codes, 8 for 8-bit codes). Per row r, token t
// and segment, in span order:
//   isum = sum over the segment's positions of v(code) * q   (exact, int32),
//   acc  = fma(float(isum), w_scale(r, unit) * x_scale(t, block), acc),
// and y = acc (+ bias), v(code) minus the zero point where S has one. The schemes: those of the
// integer-dot path but base 3, and with zero points only on 2- and 4-bit unsigned integer codes
// (int8_tiles_scheme); base-3 ternary (tensor, row or any group scales) is repacked two bits per
// weight first (repack_ternary_2bit), and then quantizes its activations per 32 positions like the
// 2-bit layout, not per 160 as the in-place base-3 kernel does.
#pragma once

#include "lowbit/core/buffer.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/threading.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

namespace lowbit::kernels {

inline constexpr std::size_t tile_rows = 8;

namespace detail {
// Zero-point schemes the tiles take: 2- and 4-bit codes whose int8 values are the codes themselves
// (unsigned integers), so that sum((code - z) * q) = sum(code * q) - z * sum(q) runs on unsigned
// codes with one correction per segment.
template <class S>
constexpr bool tile_zero_points_ok() {
  if constexpr (!S::has_zero_point || S::layout == code_layout::base3 || S::code_bits > 4) {
    return false;
  } else {
    const auto& v = int8_table<typename S::element>::get().v;
    for (unsigned c = 0; c < (1u << S::code_bits); ++c)
      if (v[c] != static_cast<int>(c)) return false;
    return true;
  }
}
} // namespace detail

template <class S>
concept int8_tiles_scheme = int8_dot_scheme<S> && S::layout != code_layout::base3 &&
                            (!S::has_zero_point || detail::tile_zero_points_ok<S>());

// Segments of a span: lanes sharing one weight scale unit and one activation block.
template <scheme S>
struct tile_geometry {
  using G = chunk_geometry<S>;
  static constexpr std::size_t lanes_per_block = 8 * G::act_block / G::span; // activation block
  static constexpr std::size_t lanes_per_unit =
      S::gran == granularity::group && S::block < G::span ? 8 * S::block / G::span : 8;
  static constexpr std::size_t segment_lanes = std::min(lanes_per_block, lanes_per_unit);
  static constexpr std::size_t segments = 8 / segment_lanes;
  static_assert(segment_lanes >= 1 && 8 % segment_lanes == 0);

  // The weight scale unit (index into the row's units) of segment g of span sp.
  static std::size_t unit(std::size_t sp, std::size_t g, std::size_t units) noexcept {
    if constexpr (S::gran == granularity::group)
      return std::min((sp * G::span + G::lane_code(g * segment_lanes)) / S::block, units - 1);
    else
      return 0;
  }
  static std::size_t units(std::size_t padded_cols) noexcept {
    return S::gran == granularity::group ? padded_cols / S::block : 1;
  }
};

// W in row-interleaved tiles (see the header comment); made by pack_for_int8_tiles.
template <int8_tiles_scheme S>
class int8_tiled {
  using storage = typename qmatrix<S>::scale_storage;
  struct no_decoder {};

public:
  using source_scheme = S;
  // Scales kept as the qmatrix's codes (else as fp32).
  static constexpr bool compact_scales =
      !qmatrix<S>::double_quantized && (sizeof(storage) == 1 || std::is_same_v<typename S::scale_format, fp16>);
  using scale_type = std::conditional_t<compact_scales, storage, float>;

  int8_tiled() = default;
  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t tiles() const noexcept { return (rows_ + tile_rows - 1) / tile_rows; }
  std::size_t spans() const noexcept { return chunk_geometry<S>::spans(cols_); }
  std::size_t units() const noexcept { return units_; }
  // 8 lanes x 32 bytes per span of tile t.
  const std::uint8_t* tile_codes(std::size_t t) const noexcept { return codes_.data() + t * spans() * 256; }
  // The 8 rows' stored scales of unit u of tile t (codes or fp32, see scale_type).
  const scale_type* tile_scales(std::size_t t, std::size_t u) const noexcept {
    return scales_.data() + (t * units_ + u) * tile_rows;
  }
  // Whether tile t's scale codes are all plain (scale_decoder::plain; compact scales only).
  bool tile_plain(std::size_t t) const noexcept requires(compact_scales) { return plain_[t] != 0; }
  // Tile t's scales as floats, units() x 8 (unit by unit), into out. Tiles whose codes are all
  // plain (scale_decoder::plain, noted at pack time) skip the decoder's special cases: at N = 1
  // the UE4M3 decode of NVFP4 (one code per 16 weights) took about 30 % of the kernel's time.
  void decode_tile_scales(std::size_t t, float* out) const noexcept {
    const std::size_t n = units_ * tile_rows;
    if constexpr (compact_scales) {
      if (plain_[t])
        decoder_.read_plain(tile_scales(t, 0), n, out);
      else
        decoder_.read(tile_scales(t, 0), n, out);
    } else {
      std::copy(tile_scales(t, 0), tile_scales(t, 0) + n, out);
    }
  }
  const auto& decoder() const noexcept requires(compact_scales) { return decoder_; }
  // The 8 rows' zero points of unit u of tile t (zero-point schemes; zeros past the rows).
  const std::uint8_t* tile_zeros(std::size_t t, std::size_t u) const noexcept {
    return zeros_.data() + (t * units_ + u) * tile_rows;
  }
  std::size_t storage_bytes() const noexcept {
    return codes_.size() + scales_.size() * sizeof(scale_type) + zeros_.size();
  }

private:
  template <int8_tiles_scheme T>
  friend int8_tiled<T> pack_for_int8_tiles(const qmatrix<T>& w);
  std::size_t rows_ = 0, cols_ = 0, units_ = 0;
  aligned_vector<std::uint8_t> codes_;
  aligned_vector<scale_type> scales_;
  aligned_vector<std::uint8_t> zeros_; // tiles x units x 8 where S has zero points, else empty
  std::vector<std::uint8_t> plain_;    // per tile: scale_decoder<S>::plain of its codes
  std::conditional_t<compact_scales, scale_decoder<S>, no_decoder> decoder_ =
      make_decoder(1.0f); // replaced by pack_for_int8_tiles

  static auto make_decoder(float tensor_scale) noexcept {
    if constexpr (compact_scales)
      return scale_decoder<S>(tensor_scale, int8_value_mult<S>());
    else
      return no_decoder{};
  }
};

template <int8_tiles_scheme S>
int8_tiled<S> pack_for_int8_tiles(const qmatrix<S>& w) {
  using TG = tile_geometry<S>;
  if (w.rows() == 0 || w.cols() == 0) throw invalid_argument("pack_for_int8_tiles: W is empty");
  int8_tiled<S> m;
  m.rows_ = w.rows();
  m.cols_ = w.cols();
  m.units_ = TG::units(w.padded_cols());
  const std::size_t tiles = m.tiles(), spans = m.spans(), row_bytes = w.row_bytes();
  m.codes_.assign(tiles * spans * 256, 0);
  m.scales_.assign(tiles * m.units_ * tile_rows, typename int8_tiled<S>::scale_type{});
  if constexpr (S::has_zero_point) m.zeros_.assign(tiles * m.units_ * tile_rows, 0);
  m.decoder_ = int8_tiled<S>::make_decoder(w.tensor_scale());
  const scale_reader<S> sr(w, int8_value_mult<S>());
  std::vector<std::uint8_t> row(spans * 32);
  for (std::size_t r = 0; r < w.rows(); ++r) {
    std::fill(row.begin(), row.end(), std::uint8_t{0});
    std::memcpy(row.data(), w.codes().data() + r * row_bytes, row_bytes);
    const std::size_t tile = r / tile_rows, rr = r % tile_rows;
    std::uint8_t* dst = m.codes_.data() + tile * spans * 256;
    for (std::size_t sp = 0; sp < spans; ++sp)
      for (std::size_t l = 0; l < 8; ++l)
        std::memcpy(dst + (sp * 8 + l) * 32 + 4 * rr, row.data() + sp * 32 + 4 * l, 4);
    for (std::size_t u = 0; u < m.units_; ++u) {
      const std::size_t col = S::gran == granularity::group ? u * S::block : 0;
      const std::size_t su = S::scale_index(r, col, w.cols());
      if constexpr (int8_tiled<S>::compact_scales)
        m.scales_[(tile * m.units_ + u) * tile_rows + rr] = w.scales()[su];
      else
        m.scales_[(tile * m.units_ + u) * tile_rows + rr] = sr(su);
      if constexpr (S::has_zero_point) m.zeros_[(tile * m.units_ + u) * tile_rows + rr] = w.zero_points()[su];
    }
  }
  if constexpr (int8_tiled<S>::compact_scales) {
    m.plain_.resize(tiles);
    for (std::size_t t = 0; t < tiles; ++t)
      m.plain_[t] = scale_decoder<S>::plain(m.tile_scales(t, 0), m.units_ * tile_rows);
  }
  return m;
}

// Base-3 ternary: the tiles read 2-bit codes, so pack_for_int8_tiles first repacks the codes two
// bits each (repack_ternary_2bit: the same matrix, scales copied, 2 bits per weight instead of 1.6).
template <class S>
struct ternary_2bit_twin {};
template <scalar_format E, class SF, granularity G, std::size_t B, class R, class SQ>
struct ternary_2bit_twin<block_scheme<E, SF, G, B, R, code_layout::base3, SQ>> {
  using type = block_scheme<E, SF, G, B, R, code_layout::bits, SQ>;
};

template <class S>
concept int8_tiles_base3_scheme = scheme<S> && requires {
  typename ternary_2bit_twin<S>::type;
} && int8_tiles_scheme<typename ternary_2bit_twin<S>::type>;

// W with its base-3 codes repacked two bits each (scales, tensor scale, zero points and
// double-quantization data copied): dequantizes to the same matrix. A base-3 byte >= 243 throws
// lowbit::error.
template <int8_tiles_base3_scheme S>
qmatrix<typename ternary_2bit_twin<S>::type> repack_ternary_2bit(const qmatrix<S>& w) {
  using T = typename ternary_2bit_twin<S>::type;
  qmatrix<T> out(w.rows(), w.cols());
  std::copy(w.scales().begin(), w.scales().end(), out.scales().begin());
  std::copy(w.zero_points().begin(), w.zero_points().end(), out.zero_points().begin());
  std::copy(w.scale_absmax().begin(), w.scale_absmax().end(), out.scale_absmax().begin());
  out.set_scale_offset(w.scale_offset());
  out.set_tensor_scale(w.tensor_scale());
  std::vector<std::uint8_t> codes(w.padded_cols());
  const std::size_t rb = out.row_bytes();
  for (std::size_t r = 0; r < w.rows(); ++r) {
    unpack_codes(S::layout, S::code_bits, w.row_codes(r), codes);
    pack_codes(T::layout, T::code_bits, codes, out.codes().subspan(r * rb, rb));
  }
  return out;
}

template <int8_tiles_base3_scheme S>
auto pack_for_int8_tiles(const qmatrix<S>& w) {
  return pack_for_int8_tiles(repack_ternary_2bit(w));
}

// Per token, span and segment: the activation block's scale, offset * (sum of the segment's int8
// activations), the correction the unsigned-table kernels subtract (0 for signed tables and for
// zero-point schemes, whose values are the codes), and the sum itself, which the kernels multiply
// by each row's zero point (and the VNNI kernel by 128, the offset it gives signed values).
struct tile_activations {
  std::vector<float> scale;
  std::vector<std::int32_t> offset, sum;
  std::size_t per_token = 0;

  const float* scale_row(std::size_t t) const noexcept { return scale.data() + t * per_token; }
  const std::int32_t* offset_row(std::size_t t) const noexcept { return offset.data() + t * per_token; }
  const std::int32_t* sum_row(std::size_t t) const noexcept { return sum.data() + t * per_token; }
};

template <int8_tiles_scheme S>
void prepare_tile_activations(const int8_activations& a, tile_activations& out) {
  using TG = tile_geometry<S>;
  out.per_token = a.spans * TG::segments;
  out.scale.resize(a.tokens * out.per_token);
  out.offset.resize(a.tokens * out.per_token);
  out.sum.resize(a.tokens * out.per_token);
  for (std::size_t t = 0; t < a.tokens; ++t)
    for (std::size_t sp = 0; sp < a.spans; ++sp)
      for (std::size_t g = 0; g < TG::segments; ++g) {
        const std::size_t l0 = sp * 8 + g * TG::segment_lanes, i = t * out.per_token + sp * TG::segments + g;
        std::int32_t off = 0, sum = 0;
        const std::int8_t* q = a.q_row(t) + sp * chunk_geometry<S>::span;
        for (std::size_t h = 0; h < chunk_geometry<S>::chunks_per_span; ++h)
          for (std::size_t j = 4 * (g * TG::segment_lanes); j < 4 * (g + 1) * TG::segment_lanes; ++j)
            sum += q[h * chunk + j];
        for (std::size_t l = 0; l < TG::segment_lanes; ++l) off += a.lane_offset_row(t)[l0 + l];
        out.scale[i] = a.lane_scale_row(t)[l0];
        out.offset[i] = off;
        out.sum[i] = sum;
      }
}

namespace scalar {

// Floats of per-thread scratch scalar::linear_int8_tiled needs for W: a tile's decoded scales.
template <int8_tiles_scheme S>
std::size_t int8_tiles_scratch_size(const int8_tiled<S>& w) noexcept {
  return w.units() * tile_rows;
}

// The tiled kernel without SIMD (where AVX2 is not compiled), in the same arithmetic; tiles split
// across threads. scratch: max_threads() * int8_tiles_scratch_size(w) floats.
template <int8_tiles_scheme S>
void linear_int8_tiled(const int8_tiled<S>& w, const int8_activations& a, const tile_activations& ta,
                       std::span<float> y, std::span<const float> bias, float* scratch) {
  using G = chunk_geometry<S>;
  using TG = tile_geometry<S>;
  const std::size_t rows = w.rows(), spans = w.spans();
  parallel_rows(w.tiles(), rows * w.cols() * a.tokens, [&](std::size_t tile0, std::size_t tile1) {
    float* scales = scratch + static_cast<std::size_t>(thread_index()) * int8_tiles_scratch_size(w);
    for (std::size_t tile = tile0; tile < tile1; ++tile) {
      w.decode_tile_scales(tile, scales);
      for (std::size_t r = 0; r < tile_rows && tile * tile_rows + r < rows; ++r) {
        for (std::size_t t = 0; t < a.tokens; ++t) {
          float acc = 0.0f;
          const std::int8_t* xq = a.q_row(t);
          for (std::size_t sp = 0; sp < spans; ++sp) {
            std::uint8_t bytes[32];
            for (std::size_t l = 0; l < 8; ++l)
              std::memcpy(bytes + 4 * l, w.tile_codes(tile) + (sp * 8 + l) * 32 + 4 * r, 4);
            for (std::size_t g = 0; g < TG::segments; ++g) {
              std::int32_t isum = 0;
              for (std::size_t h = 0; h < G::chunks_per_span; ++h)
                for (std::size_t l = g * TG::segment_lanes; l < (g + 1) * TG::segment_lanes; ++l)
                  for (std::size_t i = 0; i < 4; ++i) {
                    const std::size_t j = 4 * l + i, p = h * chunk + j;
                    const unsigned code =
                        S::code_bits == 8 ? bytes[j] : (bytes[j] >> (S::code_bits * h)) & ((1u << S::code_bits) - 1);
                    std::int32_t v;
                    if constexpr (S::code_bits == 8)
                      v = static_cast<std::int8_t>(code);
                    else
                      v = int8_table<typename S::element>::get().v[code];
                    if constexpr (S::has_zero_point) v -= w.tile_zeros(tile, TG::unit(sp, g, w.units()))[r];
                    isum += v * xq[sp * G::span + p];
                  }
              const float ws = scales[TG::unit(sp, g, w.units()) * tile_rows + r];
              acc = std::fma(static_cast<float>(isum), ws * ta.scale_row(t)[sp * TG::segments + g], acc);
            }
          }
          const std::size_t n = tile * tile_rows + r;
          y[t * rows + n] = bias.empty() ? acc : acc + bias[n];
        }
      }
    }
  });
}

} // namespace scalar
} // namespace lowbit::kernels
