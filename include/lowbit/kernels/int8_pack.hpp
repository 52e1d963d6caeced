// The integer-dot path for schemes whose codes it cannot read in place: FP8 (MXFP8 E4M3 and
// E5M2, FP8 with group, row or tensor scales), FP6 (MXFP6), 8-bit codebooks, and 1-, 3-, 5-, 6- and
// 7-bit integers. pack_for_int8(w), a one-time step at load time, maps every code through the
// element's 256-entry int8 table (kernels/layout.hpp) and returns a qmatrix of
// int8_packed_scheme<S>: one int8 code q per weight standing for q * unit (unit = the table's
// multiplier), with S's scales, granularity, tensor scale and scale quantization copied unchanged.
// Zero points (integer elements of at most 7 bits only) are folded into the codes, q = code - zero.
// The integer-dot kernels then run on it as on INT8 groups, bit-exact against
// reference::linear_int8 on the packed matrix.
//
// Accuracy: exact where the element's table is (integers of at most 7 bits, FP6 E2M3 as 8x);
// otherwise every weight moves by at most unit / 2 times its scale, unit = max|value| / 127 (E4M3
// 448/127, E5M2 57344/127, E3M2 28/127): the bound of NF4's int8 table. With MX scales the block's
// largest value is at least max|value| / 2, so that is at most 1/127 of it. Codes that decode to NaN
// or inf (E4M3 0x7F, E5M2 specials) map to 0, as in the 16-entry tables.
//
// Memory: one byte per weight. FP8 keeps its size, 6-bit codes grow by a third, 3-bit ones to 8/3.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/formats/integer.hpp"
#include "lowbit/kernels/layout.hpp"
#include "lowbit/schemes/packing.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace lowbit {

namespace kernels {

// 8-bit two's-complement codes q in [-127, 127] standing for q * unit, unit the multiplier of
// E's 256-entry int8 table: the element of int8_packed_scheme<S>.
template <scalar_format E>
struct int8_coded {
  using storage = std::uint8_t;
  using source_element = E;
  static constexpr format_family family = format_family::integer;
  static constexpr int bits = 8;
  static constexpr bool is_signed = true;
  static constexpr bool has_inf = false;
  static constexpr bool has_nan = false;
  static constexpr bool has_negative_zero = false;
  static constexpr int max_value = 127;
  static constexpr int min_value = -127;
  static constexpr double unit = static_cast<double>(int8_table<E, 256>::get().mult);
  static constexpr double max_finite = 127 * unit;
  static constexpr double min_normal = unit;
  static constexpr double min_subnormal = unit;
  static constexpr bool is_nan(storage) noexcept { return false; }
  static constexpr double decode_double(storage c) noexcept { return int8::to_int(c) * unit; }
  static constexpr float decode(storage c) noexcept { return static_cast<float>(decode_double(c)); }
  template <rounding R = rounding::nearest_even, overflow O = overflow::saturate, class Src>
  requires std::is_same_v<Src, float> || std::is_same_v<Src, double>
  static constexpr storage encode(Src x, std::uint32_t random = 0) noexcept {
    return int8_sym::encode<R, O>(x / static_cast<Src>(unit), random);
  }
};

// S with its codes replaced by int8_coded codes (layout: one byte per weight, no zero points);
// scales, granularity, tensor scale and scale quantization are S's own.
template <scheme S>
struct int8_packed_scheme : S {
  using source_scheme = S;
  using element = int8_coded<typename S::element>;
  static constexpr code_layout layout = code_layout::bits;
  static constexpr int code_bits = 8;
  static constexpr bool has_zero_point = false;

  static constexpr double bits_per_weight(std::size_t rows, std::size_t cols) noexcept {
    const double n = static_cast<double>(rows) * static_cast<double>(cols);
    const double padded = static_cast<double>(rows) * static_cast<double>(S::padded_cols(cols));
    const double zeros = S::has_zero_point ? 8.0 * static_cast<double>(S::scale_count(rows, cols)) : 0.0;
    return S::bits_per_weight(rows, cols) + ((8.0 - S::code_bits) * padded - zeros) / n;
  }
  static constexpr double nominal_bits_per_weight() noexcept {
    if constexpr (S::gran == granularity::group)
      return S::nominal_bits_per_weight() + (8.0 - S::code_bits) - (S::has_zero_point ? 8.0 / S::block : 0.0);
    else
      return 8.0;
  }
  static typename element::storage encode(float x, float scale, std::uint8_t) noexcept {
    if (!(scale > 0.0f) || !std::isfinite(scale)) return element::encode(0.0f);
    return element::encode(x / scale);
  }
  static float decode(typename element::storage code, float scale, std::uint8_t) noexcept {
    return scale * element::decode(code);
  }
};

namespace detail {
template <scheme S>
constexpr bool int8_packable() {
  using E = typename S::element;
  if constexpr (S::layout == code_layout::base3 || S::code_bits > 8) {
    return false;
  } else if constexpr (S::has_zero_point) { // folded into the codes: exact integers of <= 7 bits
    return E::family == format_family::integer && S::code_bits <= 7 && int8_table<E, 256>::get().exact &&
           int8_table<E, 256>::get().mult == 1.0f;
  } else {
    return true;
  }
}
} // namespace detail

// Schemes pack_for_int8 takes: codes of at most 8 bits the integer-dot kernels cannot read in
// place, with scales they can (tensor, row, groups of 16 or a multiple of 32).
template <class S>
concept int8_pack_scheme =
    scheme<S> && !int8_dot_scheme<S> && detail::int8_packable<S>() && detail::int8_scale_layout_ok<S>();

// W converted to int8 codes for the integer-dot kernels (see the header comment). A zero point
// above the element's largest code (corrupt data) throws lowbit::invalid_argument.
template <int8_pack_scheme S>
qmatrix<int8_packed_scheme<S>> pack_for_int8(const qmatrix<S>& w) {
  using P = int8_packed_scheme<S>;
  using E = typename S::element;
  static_assert(int8_dot_scheme<P>);
  constexpr const auto& table = int8_table<E, 256>::get();
  qmatrix<P> out(w.rows(), w.cols());
  const std::size_t pc = w.padded_cols(), rows = w.rows();
  std::vector<std::uint8_t> codes(pc);
  for (std::size_t r = 0; r < rows; ++r) {
    unpack_codes(S::layout, S::code_bits, w.row_codes(r), std::span<std::uint8_t>(codes));
    std::uint8_t* dst = out.codes().data() + r * out.row_bytes();
    for (std::size_t c = 0; c < pc; ++c) {
      int q = table.v[codes[c]];
      if constexpr (S::has_zero_point) {
        const int z = w.zero_at(r, c);
        if (z >= (1 << S::code_bits))
          throw invalid_argument("pack_for_int8: zero point " + std::to_string(z) + " of row " + std::to_string(r) +
                                 " exceeds the largest " + std::to_string(S::code_bits) + "-bit code");
        q -= z;
      }
      dst[c] = static_cast<std::uint8_t>(static_cast<std::int8_t>(q));
    }
  }
  std::copy(w.scales().begin(), w.scales().end(), out.scales().begin());
  std::copy(w.scale_absmax().begin(), w.scale_absmax().end(), out.scale_absmax().begin());
  out.set_tensor_scale(w.tensor_scale());
  out.set_scale_offset(w.scale_offset());
  return out;
}

} // namespace kernels

template <scalar_format E>
inline constexpr std::string_view format_name<kernels::int8_coded<E>> = "int8_coded";

} // namespace lowbit
