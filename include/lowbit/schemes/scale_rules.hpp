// How a block's scale (and zero point) is chosen: the part of a scheme that differs between
// OCP MX (power-of-two E8M0 scale, floor / ceil / nearest exponent), absmax scaling (integer
// groups, NF4, NVFP4 with its FP32 tensor scale), min-max with a zero point (asymmetric
// integers, as GPTQ's quantizer) and BitNet's absmean / absmedian ternary scale.
// Every rule maps a block of finite floats to an effective scale s (and zero z) such that
// x ~ s * (decode(code) - z); all-zero blocks get codes that decode to exactly 0.
#pragma once

#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "lowbit/formats/rounding.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace lowbit {

// 32-bit IEEE float as a scale storage type (integer groups, NF4, ternary).
struct fp32_scale {
  using storage = std::uint32_t;
  static constexpr int bits = 32;
  static constexpr float decode(storage s) noexcept { return std::bit_cast<float>(s); }
  static constexpr storage encode(float x) noexcept { return std::bit_cast<storage>(x); }
};
template <>
inline constexpr std::string_view format_name<fp32_scale> = "fp32";

// A format usable as a stored scale: encode(float) and decode(storage).
template <class S>
concept scale_format = requires(float x, typename S::storage c) {
  { S::bits } -> std::convertible_to<int>;
  { S::decode(c) } -> std::convertible_to<float>;
  { S::encode(x) } -> std::same_as<typename S::storage>;
};

// What a rule returns for one block.
template <class ScaleFmt>
struct block_params {
  typename ScaleFmt::storage scale_code{}; // stored
  std::uint8_t zero_code = 0;              // stored zero point (rules with zero points)
};

namespace detail {

inline float abs_max(std::span<const float> x) noexcept {
  float m = 0.0f;
  for (float v : x) m = std::max(m, std::fabs(v));
  return m;
}

} // namespace detail

// OCP MX shared-scale exponent rounding.
enum class scale_rounding : std::uint8_t {
  floor,   // OCP MX v1.0: 2^(floor(log2 amax) - emax_elem); the largest elements may saturate
  ceil,    // round amax / max_elem up to a power of two so nothing saturates (cuBLAS / TE MXFP8)
  nearest, // amax rounded to the element's precision first (torchao "EVEN")
};

// Power-of-two (E8M0) scale of OCP MX. emax_elem is the exponent of the element's largest
// normal (8 for E4M3, 15 for E5M2, 4 for E3M2, 2 for E2M3 and E2M1, 0 for MXINT8).
template <scale_rounding Rounding = scale_rounding::floor>
struct pow2_scale {
  static constexpr bool range_only = true; // depends on the block only through its min and max
  static constexpr bool has_zero_point = false;
  static constexpr bool has_tensor_scale = false;
  static constexpr bool allows_non_finite = true; // a NaN/inf block gets the NaN scale (OCP MX)
  static constexpr scale_rounding rounding = Rounding;

  template <class Element>
  static constexpr int emax_elem() noexcept {
    return std::ilogb(Element::max_finite);
  }

  // Unbiased shared exponent for a block whose largest magnitude is amax (finite, >= 0),
  // clamped to E8M0's [-127, 127]; exact, from the float's bits.
  template <class Element>
  static int shared_exponent(float amax) noexcept {
    if (amax == 0.0f) return -127;
    int e;
    if constexpr (Rounding == scale_rounding::ceil) {
      // smallest e with max_elem * 2^e >= amax
      const double ratio = static_cast<double>(amax) / Element::max_finite;
      e = std::ilogb(ratio);
      if (std::ldexp(1.0, e) < ratio) ++e;
    } else if constexpr (Rounding == scale_rounding::nearest) {
      constexpr int m = Element::family == format_family::minifloat ? mantissa_of<Element>() : 23;
      const double q = std::ldexp(1.0, std::ilogb(amax) - m);
      const double rounded = std::floor(static_cast<double>(amax) / q + 0.5) * q; // half up
      e = std::ilogb(rounded) - emax_elem<Element>();
    } else {
      e = std::ilogb(amax) - emax_elem<Element>();
    }
    return std::clamp(e, -127, 127);
  }

  template <class Element, class ScaleFmt>
  static block_params<ScaleFmt> choose(std::span<const float> x, float /*tensor_scale*/) noexcept {
    float amax = 0.0f;
    for (float v : x) {
      if (!std::isfinite(v)) return {static_cast<typename ScaleFmt::storage>(0xFF), 0}; // NaN scale
      amax = std::max(amax, std::fabs(v));
    }
    return {static_cast<typename ScaleFmt::storage>(shared_exponent<Element>(amax) + 127), 0};
  }

private:
  template <class Element>
  static constexpr int mantissa_of() noexcept {
    if constexpr (Element::family == format_family::minifloat)
      return Element::mantissa_bits;
    else
      return 23;
  }
};

// How NVFP4's FP32 per-tensor scale is set: off, or amax_tensor / (max_elem * max_scale) so the
// block scales use the whole range of their format (NVIDIA's recipe: amax / (6 * 448)).
enum class tensor_scaling : std::uint8_t { none, fit_scale_range };

// scale = amax / max_elem (divided by the tensor scale if any), stored in the scale format
// (round to nearest even, saturating). Integer groups, NF4, NVFP4, ggml-style ternary.
template <tensor_scaling Tensor = tensor_scaling::none>
struct absmax_scale {
  static constexpr bool range_only = true; // depends on the block only through its min and max
  static constexpr bool has_zero_point = false;
  static constexpr bool has_tensor_scale = Tensor != tensor_scaling::none;
  static constexpr bool allows_non_finite = false;

  template <class Element, class ScaleFmt>
  static float tensor_scale(float amax_tensor) noexcept {
    if constexpr (Tensor == tensor_scaling::none) {
      return 1.0f;
    } else {
      const float t = static_cast<float>(amax_tensor / (Element::max_finite * ScaleFmt::max_finite));
      return t > 0.0f && std::isfinite(t) ? t : 1.0f;
    }
  }

  template <class Element, class ScaleFmt>
  static block_params<ScaleFmt> choose(std::span<const float> x, float tensor_scale) noexcept {
    const float s = static_cast<float>(detail::abs_max(x) / Element::max_finite) / tensor_scale;
    return {ScaleFmt::encode(s), 0};
  }
};

// The smallest scale at which neither end of the block clips: max(max(x, 0) / v_max, min(x, 0) / v_min)
// for the element's largest value v_max > 0 and smallest v_min < 0 (an unsigned element: max(x, 0) /
// v_max alone). For elements with an asymmetric range, such as GGUF's IQ4_NL table [-127, 113],
// absmax / max|v| would clip a block whose largest magnitude is positive (to 113 / 127 of it); for
// symmetric elements the two rules agree.
struct range_scale {
  static constexpr bool range_only = true; // depends on the block only through its min and max
  static constexpr bool has_zero_point = false;
  static constexpr bool has_tensor_scale = false;
  static constexpr bool allows_non_finite = false;

  // The element's smallest and largest values that encoding produces: the saturated encodes of
  // -2 max and +2 max (a symmetric-range integer's two's-complement minimum decodes but is never
  // produced, so it is not an end).
  template <class Element>
  static constexpr std::pair<double, double> value_range() noexcept {
    const double big = 2 * Element::max_finite;
    return {Element::decode_double(Element::template encode<rounding::nearest_even, overflow::saturate>(-big)),
            Element::decode_double(Element::template encode<rounding::nearest_even, overflow::saturate>(big))};
  }

  template <class Element, class ScaleFmt>
  static block_params<ScaleFmt> choose(std::span<const float> x, float /*tensor_scale*/) noexcept {
    constexpr auto range = value_range<Element>();
    static_assert(range.second > 0, "range_scale needs a positive element value");
    float lo = 0.0f, hi = 0.0f;
    for (float v : x) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    float s = static_cast<float>(hi / range.second);
    if constexpr (range.first < 0) s = std::max(s, static_cast<float>(lo / range.first));
    return {ScaleFmt::encode(s), 0};
  }
};

// Asymmetric min-max with an integer zero point (GPTQ's quantizer): the range [min(x, 0),
// max(x, 0)] maps onto codes [0, maxq]; zero = round(-min / scale).
struct minmax_scale {
  static constexpr bool range_only = true; // depends on the block only through its min and max
  static constexpr bool has_zero_point = true;
  static constexpr bool has_tensor_scale = false;
  static constexpr bool allows_non_finite = false;

  template <class Element, class ScaleFmt>
  static block_params<ScaleFmt> choose(std::span<const float> x, float /*tensor_scale*/) noexcept {
    float lo = 0.0f, hi = 0.0f;
    for (float v : x) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const auto maxq = static_cast<float>(Element::max_value);
    const auto code = ScaleFmt::encode((hi - lo) / maxq);
    const float s = static_cast<float>(ScaleFmt::decode(code));
    if (!(s > 0.0f) || !std::isfinite(s)) return {ScaleFmt::encode(0.0f), 0};
    const float z = std::clamp(std::nearbyint(-lo / s), 0.0f, maxq);
    return {code, static_cast<std::uint8_t>(z)};
  }
};

// BitNet b1.58: scale = mean |W| (or the median |W|), clamped below at 1e-5 as the reference
// code does, then round-and-clip to {-1, 0, +1}.
enum class ternary_statistic : std::uint8_t { absmean, absmedian };

template <ternary_statistic Stat = ternary_statistic::absmean>
struct absmean_scale {
  static constexpr bool has_zero_point = false;
  static constexpr bool has_tensor_scale = false;
  static constexpr bool allows_non_finite = false;

  template <class Element, class ScaleFmt>
  static block_params<ScaleFmt> choose(std::span<const float> x, float /*tensor_scale*/) {
    double stat = 0.0;
    if constexpr (Stat == ternary_statistic::absmean) {
      for (float v : x) stat += std::fabs(v);
      stat = x.empty() ? 0.0 : stat / static_cast<double>(x.size());
    } else {
      std::vector<float> a(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) a[i] = std::fabs(x[i]);
      const std::size_t mid = (a.size() - 1) / 2; // the lower middle, as torch.median
      std::nth_element(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(mid), a.end());
      stat = a.empty() ? 0.0 : a[mid];
    }
    return {ScaleFmt::encode(static_cast<float>(std::max(stat, 1e-5))), 0};
  }
};

} // namespace lowbit
