// IEEE binary16 (`half`) and bfloat16 value types for activations in and out. Conversions from
// float round to nearest even and overflow to inf (IEEE semantics); NaN stays NaN.
// They are thin wrappers over the fp16 / bf16 minifloat formats, so no Eigen is needed.
#pragma once

#include "lowbit/formats/minifloat.hpp"

#include <cstdint>

namespace lowbit {

template <class Format>
struct ieee16 {
  std::uint16_t bits = 0;

  constexpr ieee16() = default;
  constexpr explicit ieee16(float f) noexcept
      : bits(Format::template encode<rounding::nearest_even, overflow::non_saturating>(f)) {}
  constexpr explicit ieee16(double d) noexcept
      : bits(Format::template encode<rounding::nearest_even, overflow::non_saturating>(d)) {}
  constexpr explicit operator float() const noexcept { return Format::decode(bits); }
  constexpr explicit operator double() const noexcept { return Format::decode_double(bits); }

  static constexpr ieee16 from_bits(std::uint16_t b) noexcept {
    ieee16 h;
    h.bits = b;
    return h;
  }
  friend constexpr bool operator==(ieee16, ieee16) = default; // bitwise
};

using half = ieee16<fp16>;
using bfloat16 = ieee16<bf16>;

static_assert(sizeof(half) == 2 && sizeof(bfloat16) == 2);

} // namespace lowbit
