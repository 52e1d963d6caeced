// Generic sign/exponent/mantissa floating-point format, the element and scale types of OCP FP8
// (v1.0), OCP MX v1.0 (FP6, FP4, E8M0), NVFP4 (UE4M3) and the AMD/Graphcore "fnuz" FP8 variants.
// One template covers them all: ExpBits, ManBits and Bias give the grid, Specials the NaN/inf
// convention. Encoding rounds exactly once from float or double bits (no double rounding);
// overflow, NaN and signed-zero handling match jax-ml/ml_dtypes' conversions.
#pragma once

#include "lowbit/core/bits.hpp"
#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/rounding.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

namespace lowbit {

// Which codes are reserved for inf and NaN.
enum class special_values {
  ieee,   // top exponent: mantissa 0 = ±inf, otherwise NaN (E5M2, half, bfloat16)
  fn,     // no inf; only the all-ones exponent+mantissa is NaN (E4M3, E8M0, UE4M3)
  fnuz,   // no inf, no −0; the lone NaN is the negative-zero code 0b1000…0 (E4M3FNUZ, E5M2FNUZ)
  finite, // every code is a finite number (FP6 E3M2/E2M3, FP4 E2M1)
};

namespace detail {

// 2^e as a double, for the exponents these formats reach.
constexpr double exp2i(int e) noexcept { return std::bit_cast<double>(static_cast<std::uint64_t>(e + 1023) << 52); }

template <class T>
inline constexpr T quiet_nan = std::numeric_limits<T>::quiet_NaN();

} // namespace detail

// ExpBits/ManBits/Bias: field widths and exponent bias. Signed: whether a sign bit exists.
// Subnormals: false for E8M0, whose exponent field 0 is the normal value 2^-Bias (no zero).
// Bits: storage width of a code; wider than the value fields for UE4M3 (8-bit storage, top bit
// unused), and codes with padding bits set decode to NaN and are never produced by encode.
template <int ExpBits, int ManBits, int Bias, special_values Specials, bool Signed = true, bool Subnormals = true,
          int Bits = (Signed ? 1 : 0) + ExpBits + ManBits>
struct minifloat {
  static_assert(ExpBits >= 1 && ManBits >= 0 && ExpBits + ManBits + (Signed ? 1 : 0) <= 16);
  static_assert(Bits >= ExpBits + ManBits + (Signed ? 1 : 0) && Bits <= 16);
  static_assert(Subnormals || ManBits == 0, "only mantissa-less formats may lack subnormals");
  static_assert(Signed || Specials != special_values::fnuz, "fnuz needs a sign bit");

  using storage = std::conditional_t<(Bits <= 8), std::uint8_t, std::uint16_t>;

  static constexpr int bits = Bits;
  static constexpr int exponent_bits = ExpBits;
  static constexpr int mantissa_bits = ManBits;
  static constexpr int bias = Bias;
  static constexpr special_values specials = Specials;
  static constexpr bool is_signed = Signed;
  static constexpr format_family family = format_family::minifloat;
  static constexpr bool is_integer = false;

  static constexpr int value_bits = (Signed ? 1 : 0) + ExpBits + ManBits;
  static constexpr unsigned mag_mask = (1u << (ExpBits + ManBits)) - 1;
  static constexpr unsigned sign_mask = Signed ? 1u << (ExpBits + ManBits) : 0u;
  static constexpr unsigned mant_mask = (1u << ManBits) - 1;
  static constexpr int exponent_min = Subnormals ? 1 - Bias : -Bias; // of the smallest normal

  static constexpr bool has_inf = Specials == special_values::ieee;
  static constexpr bool has_nan = Specials != special_values::finite;
  static constexpr bool has_zero = Subnormals;
  static constexpr bool has_negative_zero = Signed && Subnormals && Specials != special_values::fnuz;
  static constexpr bool has_subnormals = Subnormals && ManBits > 0;

  // Magnitude code of the largest finite value.
  static constexpr unsigned max_code = Specials == special_values::ieee ? (((1u << ExpBits) - 2) << ManBits) | mant_mask
                                       : Specials == special_values::fn ? mag_mask - 1
                                                                        : mag_mask;
  static constexpr unsigned inf_code = ((1u << ExpBits) - 1) << ManBits; // meaningful if has_inf
  // Canonical positive (quiet) NaN code; for fnuz the single NaN.
  static constexpr unsigned nan_code = Specials == special_values::ieee   ? inf_code | (1u << (ManBits - 1))
                                       : Specials == special_values::fnuz ? sign_mask
                                                                          : mag_mask;

  static constexpr bool is_nan(storage code) noexcept {
    if (code >> value_bits) return true;
    const unsigned mag = code & mag_mask;
    if constexpr (Specials == special_values::ieee) return (mag & inf_code) == inf_code && (mag & mant_mask);
    if constexpr (Specials == special_values::fn) return mag == mag_mask;
    if constexpr (Specials == special_values::fnuz) return code == sign_mask;
    return false;
  }
  static constexpr bool is_inf(storage code) noexcept {
    return has_inf && !(code >> value_bits) && (code & mag_mask) == inf_code;
  }

  // Exact value of a code, in double (every value of every instantiation is a double).
  static constexpr double decode_double(storage code) noexcept {
    const bool neg = (code & sign_mask) != 0;
    if (is_nan(code)) return neg ? -detail::quiet_nan<double> : detail::quiet_nan<double>;
    if (is_inf(code)) return neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    const unsigned mag = code & mag_mask;
    const int efield = static_cast<int>(mag >> ManBits);
    const unsigned mfield = mag & mant_mask;
    const double v = (efield == 0 && Subnormals)
                         ? static_cast<double>(mfield) * detail::exp2i(exponent_min - ManBits)
                         : static_cast<double>((1u << ManBits) + mfield) * detail::exp2i(efield - Bias - ManBits);
    return neg ? -v : v;
  }

  static constexpr float decode(storage code) noexcept { return static_cast<float>(decode_double(code)); }

  static constexpr double max_finite = decode_double(static_cast<storage>(max_code));
  static constexpr double min_normal = detail::exp2i(exponent_min);
  static constexpr double min_subnormal = has_subnormals ? detail::exp2i(exponent_min - ManBits) : min_normal;

  // Encodes a float or double with one rounding step under R, and overflow handling O.
  // `random` supplies the bits for rounding::stochastic and is ignored otherwise.
  template <rounding R = rounding::nearest_even, overflow O = overflow::saturate, class Src>
  requires std::is_same_v<Src, float> || std::is_same_v<Src, double>
  static constexpr storage encode(Src x, std::uint32_t random = 0) noexcept {
    using L = ieee_layout<Src>;
    using U = typename L::uint;
    static_assert(ManBits < L::mantissa_bits, "target must be narrower than the source");
    constexpr int src_sign_shift = L::exponent_bits + L::mantissa_bits;
    constexpr U src_inf = ((U{1} << L::exponent_bits) - 1) << L::mantissa_bits;

    const U u = std::bit_cast<U>(x);
    const bool neg = (u >> src_sign_shift) != 0;
    const U a = u & ~(U{1} << src_sign_shift);
    if (a > src_inf) return nan_result(neg);
    if (a == src_inf) return inf_result(neg);
    if (a == 0) return zero_result<O>(neg);
    if (!Signed && neg) return negative_result<O>();

    int se = static_cast<int>(a >> L::mantissa_bits);
    U sig = a & ((U{1} << L::mantissa_bits) - 1);
    if (se == 0)
      se = 1;
    else
      sig |= U{1} << L::mantissa_bits;
    const int lsb_exp = se - L::bias - L::mantissa_bits; // |x| = sig * 2^lsb_exp exactly
    const int top_exp = static_cast<int>(std::bit_width(sig)) - 1 + lsb_exp;
    int quantum_exp = (top_exp > exponent_min ? top_exp : exponent_min) - ManBits;
    // |x| ~ r * 2^quantum_exp. Without mantissa bits there is no even neighbour to prefer, so
    // ties round up (away from zero), as E8M0 does.
    U r;
    if constexpr (ManBits == 0 && R == rounding::nearest_even)
      r = detail::round_shift_half_up(sig, quantum_exp - lsb_exp);
    else
      r = detail::round_shift<R>(sig, quantum_exp - lsb_exp, random);
    if (r == 0) return underflow_result(neg);
    if (r >> (ManBits + 1)) { // rounding carried into the next binade; r is exactly 2^(ManBits+1)
      r >>= 1;
      ++quantum_exp;
    }
    const long long efield = r < (U{1} << ManBits) ? 0 : static_cast<long long>(quantum_exp) + Bias + ManBits;
    const long long mag = (efield << ManBits) | static_cast<long long>(r & mant_mask);
    // Truncation of a finite value never reaches inf (IEEE round-toward-zero semantics).
    if (mag > static_cast<long long>(max_code))
      return overflow_result < R == rounding::toward_zero ? overflow::saturate : O > (neg);
    return static_cast<storage>((neg ? sign_mask : 0u) | static_cast<unsigned>(mag));
  }

private:
  static constexpr storage with_sign(bool neg, unsigned mag) noexcept {
    return static_cast<storage>((neg ? sign_mask : 0u) | mag);
  }
  // NaN keeps its sign. Formats without NaN return their "quiet NaN" code as ml_dtypes does:
  // the sign-only code, so +NaN gives -0 and -NaN gives +0.
  static constexpr storage nan_result(bool neg) noexcept {
    if constexpr (Specials == special_values::fnuz)
      return static_cast<storage>(nan_code);
    else if constexpr (has_nan)
      return with_sign(neg, nan_code);
    else
      return with_sign(!neg, 0);
  }
  // ±inf input, in both overflow modes (ml_dtypes saturates finite values only): inf where the
  // format has it, else NaN, else ±max.
  static constexpr storage inf_result(bool neg) noexcept {
    if constexpr (has_inf)
      return with_sign(neg, inf_code);
    else if constexpr (has_nan)
      return nan_result(neg);
    else
      return with_sign(neg, max_code);
  }
  template <overflow O>
  static constexpr storage overflow_result(bool neg) noexcept {
    if constexpr (O == overflow::saturate)
      return with_sign(neg, max_code);
    else
      return inf_result(neg);
  }
  // E8M0 has no zero: an exact zero is NaN, or the smallest value 2^-127 when saturating.
  template <overflow O>
  static constexpr storage zero_result(bool neg) noexcept {
    if constexpr (!has_zero)
      return static_cast<storage>(O == overflow::saturate ? 0u : nan_code);
    else
      return with_sign(neg && has_negative_zero, 0);
  }
  // A nonzero value that rounds to zero; without a zero it stays at the smallest value.
  static constexpr storage underflow_result(bool neg) noexcept {
    if constexpr (!has_zero)
      return 0;
    else
      return with_sign(neg && has_negative_zero, 0);
  }
  // Negative input to an unsigned format: NaN, or the lowest code when saturating.
  template <overflow O>
  static constexpr storage negative_result() noexcept {
    if constexpr (O == overflow::saturate || !has_nan)
      return 0;
    else
      return static_cast<storage>(nan_code);
  }
};

// OCP 8-bit floating point (OFP8) v1.0.
using fp8_e4m3 = minifloat<4, 3, 7, special_values::fn>;    // max 448, NaN S.1111.111, no inf
using fp8_e5m2 = minifloat<5, 2, 15, special_values::ieee>; // max 57344, ±inf, NaNs
// AMD / Graphcore variants: bias one higher, no −0, the −0 code is the only NaN.
using fp8_e4m3fnuz = minifloat<4, 3, 8, special_values::fnuz>;  // max 240
using fp8_e5m2fnuz = minifloat<5, 2, 16, special_values::fnuz>; // max 57344
// OCP MX v1.0 element formats: all codes finite.
using fp6_e3m2 = minifloat<3, 2, 3, special_values::finite>; // max 28
using fp6_e2m3 = minifloat<2, 3, 1, special_values::finite>; // max 7.5
using fp4_e2m1 = minifloat<2, 1, 1, special_values::finite>; // {0, .5, 1, 1.5, 2, 3, 4, 6}
// The other 4-bit splits LLM-FP4 (Liu et al., 2023) searches over, all codes finite.
using fp4_e1m2 = minifloat<1, 2, 1, special_values::finite>; // {0, .25, .5, .75, 1, 1.25, 1.5, 1.75}
using fp4_e3m0 = minifloat<3, 0, 3, special_values::finite>; // {0, .25, .5, 1, 2, 4, 8, 16}
// Scale formats.
using e8m0 = minifloat<8, 0, 127, special_values::fn, false, false>;  // 2^-127..2^127, 0xFF NaN
using ue4m3 = minifloat<4, 3, 7, special_values::fn, false, true, 8>; // NVFP4 block scale, max 448
using ue5m3 = minifloat<5, 3, 15, special_values::fn, false>;         // max 114688
// 16-bit IEEE-style formats, for activations in and out.
using fp16 = minifloat<5, 10, 15, special_values::ieee>;
using bf16 = minifloat<8, 7, 127, special_values::ieee>;

template <>
inline constexpr std::string_view format_name<fp8_e4m3> = "fp8_e4m3";
template <>
inline constexpr std::string_view format_name<fp8_e5m2> = "fp8_e5m2";
template <>
inline constexpr std::string_view format_name<fp8_e4m3fnuz> = "fp8_e4m3fnuz";
template <>
inline constexpr std::string_view format_name<fp8_e5m2fnuz> = "fp8_e5m2fnuz";
template <>
inline constexpr std::string_view format_name<fp6_e3m2> = "fp6_e3m2";
template <>
inline constexpr std::string_view format_name<fp6_e2m3> = "fp6_e2m3";
template <>
inline constexpr std::string_view format_name<fp4_e2m1> = "fp4_e2m1";
template <>
inline constexpr std::string_view format_name<fp4_e1m2> = "fp4_e1m2";
template <>
inline constexpr std::string_view format_name<fp4_e3m0> = "fp4_e3m0";
template <>
inline constexpr std::string_view format_name<e8m0> = "e8m0";
template <>
inline constexpr std::string_view format_name<ue4m3> = "ue4m3";
template <>
inline constexpr std::string_view format_name<ue5m3> = "ue5m3";
template <>
inline constexpr std::string_view format_name<fp16> = "fp16";
template <>
inline constexpr std::string_view format_name<bf16> = "bf16";

} // namespace lowbit
