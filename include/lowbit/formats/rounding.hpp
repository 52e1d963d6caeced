// Rounding and overflow policies shared by every scalar format, and the one primitive they all
// reduce to: dropping the low `shift` bits of an integer significand under a rounding mode.
// Stochastic rounding takes 32 caller-supplied random bits and rounds up with probability
// floor(frac * 2^32) / 2^32, so it is unbiased to within 2^-32 and deterministic per bits.
#pragma once

#include <cstdint>
#include <type_traits>

namespace lowbit {

enum class rounding {
  nearest_even, // IEEE round-to-nearest, ties to the even code (the default everywhere)
  toward_zero,  // truncation of the magnitude
  stochastic,   // up with probability equal to the dropped fraction
};

enum class overflow {
  saturate,       // finite values beyond the range, and ±inf, clamp to ±max (quantization default)
  non_saturating, // beyond the range: inf where the format has it, else NaN, else ±max
};

constexpr const char* rounding_name(rounding r) noexcept {
  switch (r) {
  case rounding::nearest_even: return "nearest_even";
  case rounding::toward_zero: return "toward_zero";
  case rounding::stochastic: return "stochastic";
  }
  return "?";
}

namespace detail {

// Rounds sig / 2^shift to an integer. shift may be any non-negative amount, including more
// than the width of U (the quotient is then 0 and only the fraction matters).
template <rounding R, class U>
constexpr U round_shift(U sig, int shift, std::uint32_t random) noexcept {
  static_assert(std::is_unsigned_v<U>);
  constexpr int width = static_cast<int>(sizeof(U) * 8);
  if (shift <= 0) return static_cast<U>(sig << -shift);
  const U q = shift >= width ? U{0} : static_cast<U>(sig >> shift);
  const U rem = shift >= width ? sig : static_cast<U>(sig & ((U{1} << shift) - 1));
  if constexpr (R == rounding::toward_zero) {
    return q;
  } else if constexpr (R == rounding::nearest_even) {
    if (shift > width) return q; // rem < 2^width / 2 <= half
    const U half = U{1} << (shift - 1);
    return static_cast<U>(q + ((rem > half || (rem == half && (q & 1))) ? 1 : 0));
  } else {
    // 32-bit fixed-point fraction of rem / 2^shift, truncated.
    std::uint64_t frac32;
    if (shift <= 32)
      frac32 = static_cast<std::uint64_t>(rem) << (32 - shift);
    else if (shift - 32 >= width)
      frac32 = 0;
    else
      frac32 = static_cast<std::uint64_t>(rem >> (shift - 32));
    return static_cast<U>(q + (random < frac32 ? 1 : 0));
  }
}

// sig * 2^-shift rounded to nearest with ties away from zero.
template <class U>
constexpr U round_shift_half_up(U sig, int shift) noexcept {
  static_assert(std::is_unsigned_v<U>);
  constexpr int width = static_cast<int>(sizeof(U) * 8);
  if (shift <= 0) return static_cast<U>(sig << -shift);
  if (shift > width) return U{0}; // below half of the quantum
  const U q = shift == width ? U{0} : static_cast<U>(sig >> shift);
  return static_cast<U>(q + ((sig >> (shift - 1)) & 1u));
}

} // namespace detail
} // namespace lowbit
