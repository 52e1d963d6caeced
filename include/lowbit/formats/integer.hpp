// Signed and unsigned N-bit integer element formats (N = 2..8), optionally restricted to the
// symmetric signed range [-(2^(N-1)-1), 2^(N-1)-1] (e.g. INT4 in [-7, 7]).
// A code is the value's two's-complement pattern in the low N bits. Encoding rounds the exact
// float/double once; integers have no inf or NaN, so both overflow modes clamp, and NaN maps to 0.
#pragma once

#include "lowbit/core/bits.hpp"
#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/rounding.hpp"

#include <bit>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

namespace lowbit {

template <int Bits, bool Signed = true, bool SymmetricRange = false>
struct integer_format {
  static_assert(Bits >= 1 && Bits <= 8);
  static_assert(Signed || !SymmetricRange, "the symmetric range applies to signed formats");
  static_assert(!Signed || Bits >= 2, "signed formats need at least 2 bits");

  using storage = std::uint8_t;

  static constexpr int bits = Bits;
  static constexpr bool is_signed = Signed;
  static constexpr format_family family = format_family::integer;
  static constexpr bool is_integer = true;
  static constexpr bool symmetric_range = SymmetricRange;
  static constexpr bool has_inf = false;
  static constexpr bool has_nan = false;
  static constexpr bool has_negative_zero = false;
  static constexpr bool has_subnormals = false;

  static constexpr int max_value = Signed ? (1 << (Bits - 1)) - 1 : (1 << Bits) - 1;
  static constexpr int min_value = !Signed ? 0 : SymmetricRange ? -max_value : -(1 << (Bits - 1));
  static constexpr unsigned code_mask = (1u << Bits) - 1;

  static constexpr double max_finite = max_value;
  static constexpr double min_normal = 1.0;
  static constexpr double min_subnormal = 1.0;

  static constexpr int to_int(storage code) noexcept {
    const int v = static_cast<int>(code & code_mask);
    return (Signed && (v >> (Bits - 1))) ? v - (1 << Bits) : v;
  }
  static constexpr storage from_int(int v) noexcept {
    return static_cast<storage>(static_cast<unsigned>(v) & code_mask);
  }

  // Codes with bits above Bits set are not produced by encode and decode to NaN. The
  // two's-complement minimum of a symmetric-range format decodes to its value but is never
  // produced by encode either.
  static constexpr bool is_nan(storage code) noexcept { return (code & ~code_mask) != 0; }
  static constexpr double decode_double(storage code) noexcept {
    return is_nan(code) ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(to_int(code));
  }
  static constexpr float decode(storage code) noexcept { return static_cast<float>(decode_double(code)); }

  template <rounding R = rounding::nearest_even, overflow O = overflow::saturate, class Src>
  requires std::is_same_v<Src, float> || std::is_same_v<Src, double>
  static constexpr storage encode(Src x, std::uint32_t random = 0) noexcept {
    using L = ieee_layout<Src>;
    using U = typename L::uint;
    constexpr int sign_shift = L::exponent_bits + L::mantissa_bits;
    constexpr U src_inf = ((U{1} << L::exponent_bits) - 1) << L::mantissa_bits;
    const U u = std::bit_cast<U>(x);
    const bool neg = (u >> sign_shift) != 0;
    const U a = u & ~(U{1} << sign_shift);
    if (a > src_inf) return 0; // NaN
    const int limit = neg ? -min_value : max_value;
    int se = static_cast<int>(a >> L::mantissa_bits);
    U sig = a & ((U{1} << L::mantissa_bits) - 1);
    if (se == 0)
      se = 1;
    else
      sig |= U{1} << L::mantissa_bits;
    const int lsb_exp = se - L::bias - L::mantissa_bits;
    int mag;
    if (a >= src_inf || static_cast<int>(std::bit_width(sig)) + lsb_exp > Bits + 1)
      mag = limit; // |x| >= 2^(Bits+1): beyond every code, inf included
    else if (lsb_exp >= 0)
      mag = static_cast<int>(sig << lsb_exp);
    else
      mag = static_cast<int>(detail::round_shift<R>(sig, -lsb_exp, random));
    if (mag > limit) mag = limit;
    return from_int(neg ? -mag : mag);
  }
};

using int2 = integer_format<2>;
using int3 = integer_format<3>;
using int4 = integer_format<4>;
using int5 = integer_format<5>;
using int6 = integer_format<6>;
using int7 = integer_format<7>;
using int8 = integer_format<8>;
using uint2 = integer_format<2, false>;
using uint3 = integer_format<3, false>;
using uint4 = integer_format<4, false>;
using uint5 = integer_format<5, false>;
using uint6 = integer_format<6, false>;
using uint7 = integer_format<7, false>;
using uint8 = integer_format<8, false>;
using int2_sym = integer_format<2, true, true>; // {-1, 0, 1}
using int3_sym = integer_format<3, true, true>;
using int4_sym = integer_format<4, true, true>; // [-7, 7]
using int8_sym = integer_format<8, true, true>; // [-127, 127]

template <>
inline constexpr std::string_view format_name<int2> = "int2";
template <>
inline constexpr std::string_view format_name<int3> = "int3";
template <>
inline constexpr std::string_view format_name<int4> = "int4";
template <>
inline constexpr std::string_view format_name<int5> = "int5";
template <>
inline constexpr std::string_view format_name<int6> = "int6";
template <>
inline constexpr std::string_view format_name<int7> = "int7";
template <>
inline constexpr std::string_view format_name<int8> = "int8";
template <>
inline constexpr std::string_view format_name<uint2> = "uint2";
template <>
inline constexpr std::string_view format_name<uint3> = "uint3";
template <>
inline constexpr std::string_view format_name<uint4> = "uint4";
template <>
inline constexpr std::string_view format_name<uint5> = "uint5";
template <>
inline constexpr std::string_view format_name<uint6> = "uint6";
template <>
inline constexpr std::string_view format_name<uint7> = "uint7";
template <>
inline constexpr std::string_view format_name<uint8> = "uint8";
template <>
inline constexpr std::string_view format_name<int2_sym> = "int2_sym";
template <>
inline constexpr std::string_view format_name<int3_sym> = "int3_sym";
template <>
inline constexpr std::string_view format_name<int4_sym> = "int4_sym";
template <>
inline constexpr std::string_view format_name<int8_sym> = "int8_sym";

} // namespace lowbit
