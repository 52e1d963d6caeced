// The ScalarFormat concept: what every element or scale type provides to the layers above
// (schemes, quantizers, kernels), whichever family — minifloat, integer or codebook — it is.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>

namespace lowbit {

enum class format_family { minifloat, integer, codebook };

// Format names, for tables and messages; specialized next to each alias.
template <class F>
inline constexpr std::string_view format_name = "custom";

template <class F>
concept scalar_format = requires(typename F::storage code, float x, double xd) {
  requires std::unsigned_integral<typename F::storage>;
  { F::bits } -> std::convertible_to<int>;
  { F::family } -> std::convertible_to<format_family>;
  { F::is_signed } -> std::convertible_to<bool>;
  { F::has_inf } -> std::convertible_to<bool>;
  { F::has_nan } -> std::convertible_to<bool>;
  { F::max_finite } -> std::convertible_to<double>;
  { F::min_normal } -> std::convertible_to<double>;
  { F::min_subnormal } -> std::convertible_to<double>;
  { F::decode(code) } -> std::same_as<float>;
  { F::decode_double(code) } -> std::same_as<double>;
  { F::is_nan(code) } -> std::same_as<bool>;
  { F::encode(x) } -> std::same_as<typename F::storage>;
  { F::encode(xd) } -> std::same_as<typename F::storage>;
};

// Number of distinct codes of a format (its storage patterns, valid or not).
template <scalar_format F>
inline constexpr unsigned code_count = 1u << F::bits;

} // namespace lowbit
