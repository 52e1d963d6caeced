// A scheme = element format x scale format x granularity (tensor, row = output channel,
// column = input channel, or groups of `Block` along the reduction axis) x scale rule, plus the
// packed code layout. A new scheme is one alias of block_scheme; every layer above takes any
// type satisfying the `scheme` concept. The named schemes (OCP MX v1.0, NVFP4, integer groups,
// NF4, BitNet ternary) are aliases at the bottom.
#pragma once

#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/integer.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "lowbit/schemes/packing.hpp"
#include "lowbit/schemes/scale_rules.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace lowbit {

enum class granularity : std::uint8_t {
  tensor, // one scale for the whole matrix
  row,    // one per output channel (row of W, N x K)
  column, // one per input channel (column of W), as in per-IC quantization
  group,  // one per `Block` consecutive elements of a row (along the reduction axis K)
};

// MXINT8 elements: 8-bit two's complement with an implicit scale of 2^-6 (OCP MX v1.0), values
// in [-2, 127/64]; encoding clamps symmetrically to +-127/64 as microxcaling does, so -2 (0x80)
// decodes but is never produced.
struct mxint8_element {
  using storage = std::uint8_t;
  static constexpr format_family family = format_family::integer;
  static constexpr int bits = 8;
  static constexpr bool is_signed = true;
  static constexpr bool has_inf = false;
  static constexpr bool has_nan = false;
  static constexpr bool has_negative_zero = false;
  static constexpr int max_value = 127; // of the underlying integer
  static constexpr int min_value = -127;
  static constexpr double max_finite = 127.0 / 64;
  static constexpr double min_normal = 1.0 / 64;
  static constexpr double min_subnormal = 1.0 / 64;
  static constexpr bool is_nan(storage) noexcept { return false; }
  static constexpr double decode_double(storage c) noexcept { return int8::to_int(c) / 64.0; }
  static constexpr float decode(storage c) noexcept { return static_cast<float>(decode_double(c)); }
  template <rounding R = rounding::nearest_even, overflow O = overflow::saturate, class Src>
  requires std::is_same_v<Src, float> || std::is_same_v<Src, double>
  static constexpr storage encode(Src x, std::uint32_t random = 0) noexcept {
    return int8_sym::encode<R, O>(x * Src{64}, random); // exact: a power-of-two scaling
  }
};
template <>
inline constexpr std::string_view format_name<mxint8_element> = "mxint8_element";

// No second-level quantization of the scales.
struct plain_scales {
  static constexpr bool enabled = false;
};

// QLoRA double quantization: the (fp32) scales minus their mean are quantized again in blocks
// of Block2 with an 8-bit codebook (bitsandbytes' dynamic map) and one fp32 absmax per block.
// Elements are still encoded with the exact first-level scale, as bitsandbytes does.
template <std::size_t Block2 = 256, scalar_format Codes = dynamic8>
struct double_quant {
  static constexpr bool enabled = true;
  static constexpr std::size_t block = Block2;
  using codes = Codes;
};

template <scalar_format Element, class ScaleFmt, granularity Gran, std::size_t Block, class Rule,
          code_layout Layout = code_layout::bits, class ScaleQuant = plain_scales>
struct block_scheme {
  using scale_quant = ScaleQuant;
  using element = Element;
  using scale_format = ScaleFmt;
  using rule = Rule;
  static constexpr granularity gran = Gran;
  static constexpr std::size_t block = Gran == granularity::group ? Block : 0;
  static constexpr code_layout layout = Layout;
  static constexpr int code_bits = Element::bits;
  static constexpr bool has_zero_point = Rule::has_zero_point;
  static constexpr bool has_tensor_scale = Rule::has_tensor_scale;
  static_assert(Gran != granularity::group || Block > 0, "groups need a size");
  static_assert(Layout != code_layout::base3 || std::is_same_v<Element, ternary>, "base 3 packs ternary codes");
  static_assert(Layout != code_layout::nibbles_high_first || Element::bits == 4, "nibble order needs 4-bit codes");

  // Bits of one stored scale; with double quantization, its code plus its share of the fp32
  // second-level absmax.
  static constexpr double scale_bits() noexcept {
    if constexpr (ScaleQuant::enabled)
      return ScaleQuant::codes::bits + 32.0 / ScaleQuant::block;
    else
      return ScaleFmt::bits;
  }
  // Storage bits per weight for a rows x cols matrix: codes (rows padded to whole blocks),
  // scales (second level and its offset included), zero points and the tensor scale.
  static constexpr double bits_per_weight(std::size_t rows, std::size_t cols) noexcept {
    const double n = static_cast<double>(rows) * static_cast<double>(cols);
    const std::size_t units = scale_count(rows, cols);
    const double code = Layout == code_layout::base3 ? 8.0 / 5.0 : code_bits;
    const double padded = Gran == granularity::group ? static_cast<double>(rows * padded_cols(cols)) : n;
    double scale = static_cast<double>(units) * (ScaleFmt::bits + (has_zero_point ? 8 : 0));
    if constexpr (ScaleQuant::enabled)
      scale = static_cast<double>(units) * ScaleQuant::codes::bits +
              32.0 * static_cast<double>((units + ScaleQuant::block - 1) / ScaleQuant::block + 1);
    return (code * padded + scale + (has_tensor_scale ? 32 : 0)) / n;
  }
  // Asymptotic bits per weight of a large matrix (e.g. MXFP4 4.25, NVFP4 4.5, NF4 with double
  // quantization 4 + 8/64 + 32/(64*256) = 4.127).
  static constexpr double nominal_bits_per_weight() noexcept {
    const double code = Layout == code_layout::base3 ? 8.0 / 5.0 : code_bits;
    if constexpr (Gran == granularity::group)
      return code + (scale_bits() + (has_zero_point ? 8.0 : 0.0)) / Block;
    else
      return code;
  }

  static constexpr std::size_t padded_cols(std::size_t cols) noexcept {
    return Gran == granularity::group ? (cols + Block - 1) / Block * Block : cols;
  }
  static constexpr std::size_t scale_count(std::size_t rows, std::size_t cols) noexcept {
    switch (Gran) {
    case granularity::tensor: return 1;
    case granularity::row: return rows;
    case granularity::column: return cols;
    case granularity::group: return rows * (padded_cols(cols) / Block);
    }
    return 0;
  }
  static constexpr std::size_t scale_index(std::size_t r, std::size_t c, std::size_t cols) noexcept {
    switch (Gran) {
    case granularity::tensor: return 0;
    case granularity::row: return r;
    case granularity::column: return c;
    case granularity::group: return r * (padded_cols(cols) / Block) + c / Block;
    }
    return 0;
  }

  // Effective multiplier of a unit: x ~ scale * (decode(code) - zero).
  static float unit_scale(typename ScaleFmt::storage code, float tensor_scale) noexcept {
    return static_cast<float>(ScaleFmt::decode(code)) * tensor_scale;
  }

  // Element code for x under a unit's effective scale and zero point.
  static typename Element::storage encode(float x, float scale, std::uint8_t zero) noexcept {
    if (!(scale > 0.0f) || !std::isfinite(scale)) return Element::encode(0.0f);
    if constexpr (has_zero_point) {
      const float q = std::nearbyint(x / scale) + static_cast<float>(zero); // round, then shift (GPTQ)
      return Element::encode(q);
    } else {
      return Element::encode(x / scale);
    }
  }
  static float decode(typename Element::storage code, float scale, std::uint8_t zero) noexcept {
    if constexpr (has_zero_point)
      return scale * (Element::decode(code) - static_cast<float>(zero));
    else
      return scale * Element::decode(code);
  }
};

template <class S>
concept scheme = requires {
  typename S::element;
  typename S::scale_format;
  typename S::rule;
  requires scalar_format<typename S::element>;
  requires scale_format<typename S::scale_format>;
  { S::gran } -> std::convertible_to<granularity>;
  { S::block } -> std::convertible_to<std::size_t>;
  { S::layout } -> std::convertible_to<code_layout>;
  { S::nominal_bits_per_weight() } -> std::convertible_to<double>;
};

// OCP Microscaling v1.0: block 32 along K, E8M0 shared scale.
template <scalar_format Element, scale_rounding R = scale_rounding::floor, std::size_t Block = 32>
using mx_scheme = block_scheme<Element, e8m0, granularity::group, Block, pow2_scale<R>>;
using mxfp8_e4m3 = mx_scheme<fp8_e4m3>;
using mxfp8_e5m2 = mx_scheme<fp8_e5m2>;
using mxfp6_e3m2 = mx_scheme<fp6_e3m2>;
using mxfp6_e2m3 = mx_scheme<fp6_e2m3>;
using mxfp4 = mx_scheme<fp4_e2m1>;
using mxint8 = mx_scheme<mxint8_element>;

// NVFP4: E2M1 in blocks of 16 with UE4M3 scales and an FP32 tensor scale amax / (6 * 448).
using nvfp4 = block_scheme<fp4_e2m1, ue4m3, granularity::group, 16, absmax_scale<tensor_scaling::fit_scale_range>>;

// Integer groups: symmetric (signed element, scale = amax / max) or asymmetric (unsigned element
// with a zero point), scales in fp32 / fp16 / bf16.
template <int Bits, std::size_t Group = 128, class ScaleFmt = fp16, granularity Gran = granularity::group>
using int_sym = block_scheme<integer_format<Bits>, ScaleFmt, Gran, Group, absmax_scale<>>;
template <int Bits, std::size_t Group = 128, class ScaleFmt = fp16, granularity Gran = granularity::group>
using int_asym = block_scheme<integer_format<Bits, false>, ScaleFmt, Gran, Group, minmax_scale>;
template <std::size_t Group = 128>
using int4_group = int_sym<4, Group>;
template <std::size_t Group = 128>
using int8_group = int_sym<8, Group>;

// QLoRA NF4: blockwise absmax (block 64) in fp32; nf4_dq adds double quantization of the
// absmax values (8-bit dynamic map, block 256, mean offset).
template <std::size_t Block = 64>
using nf4_scheme = block_scheme<nf4, fp32_scale, granularity::group, Block, absmax_scale<>>;
template <std::size_t Block = 64, std::size_t Block2 = 256>
using nf4_dq_scheme =
    block_scheme<nf4, fp32_scale, granularity::group, Block, absmax_scale<>, code_layout::bits, double_quant<Block2>>;
using nf4_dq = nf4_dq_scheme<>;
// The same with bitsandbytes' byte layout (first code of each pair in the high nibble).
using nf4_dq_bnb = block_scheme<nf4, fp32_scale, granularity::group, 64, absmax_scale<>,
                                code_layout::nibbles_high_first, double_quant<256>>;

// GGUF IQ4_NL: the iq4nl table in blocks of 32 with an fp16 scale (4.5 bits per weight), as llama.cpp
// stores it (value = d * table[code]). The scale is range_scale's, which maps the block's
// largest element onto 113 or its smallest onto -127, whichever needs the larger scale. llama.cpp's
// quantizer also tries negative scales and refines them by least squares; rtn<iq4_nl, mse_search>
// (a clipping search) is the nearest policy here.
// (GGUF orders a block's nibbles as code j low, j + 16 high; this packs them as every scheme does.)
using iq4_nl = block_scheme<iq4nl, fp16, granularity::group, 32, range_scale>;

// BitNet b1.58 ternary: absmean (or absmedian) scale per tensor or per group; 2-bit codes or
// five per byte in base 3.
template <granularity Gran = granularity::tensor, std::size_t Group = 0, code_layout Layout = code_layout::bits,
          ternary_statistic Stat = ternary_statistic::absmean>
using ternary_scheme = block_scheme<ternary, fp32_scale, Gran, Group, absmean_scale<Stat>, Layout>;
using ternary_absmean = ternary_scheme<>;
using ternary_absmean_base3 = ternary_scheme<granularity::tensor, 0, code_layout::base3>;

} // namespace lowbit
