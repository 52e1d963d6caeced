// Codebook (lookup-table) formats: a code indexes a table of at most 2^Bits float values, in any
// order. Instantiated as NF4 (QLoRA, Dettmers et al. 2023, Appendix E table), the bitsandbytes
// FP4 table (its code assignment), GGUF's IQ4_NL integers and BitNet b1.58 ternary {-1, 0, +1}.
// Encoding picks the nearest value; an exact tie between two neighbours goes to the one of
// smaller magnitude (toward zero), or between -a and +a (at x = +-0) to +a. There is no inf or NaN: out-of-range values
// clamp to the ends in both overflow modes and NaN encodes as the zero code (or the value nearest zero).
#pragma once

#include "lowbit/core/bits.hpp"
#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/rounding.hpp"

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>
#include <utility>

namespace lowbit {

// Table: a type with `static constexpr int bits` and `static constexpr std::array<float, N>
// values` (values[code], N <= 2^bits, no NaN/inf, no duplicates except one ±0 pair).
template <class Table>
struct codebook {
  static constexpr int bits = Table::bits;
  static constexpr std::size_t size = Table::values.size();
  static_assert(bits >= 1 && bits <= 8 && size >= 2 && size <= (std::size_t{1} << bits));

  using storage = std::uint8_t;
  static constexpr auto& values = Table::values;

  struct entry {
    double value;
    storage code;
  };

private:
  static constexpr double abs(double v) noexcept { return v < 0 ? -v : v; }
  template <class Src>
  static constexpr bool sign_bit(Src x) noexcept {
    using U = typename ieee_layout<Src>::uint;
    return (std::bit_cast<U>(x) >> (sizeof(U) * 8 - 1)) != 0;
  }

  // Distinct values in increasing order; of a ±0 pair only +0 is kept.
  static constexpr auto make_sorted() noexcept {
    std::array<entry, size> out{};
    std::size_t n = 0;
    for (std::size_t c = 0; c < size; ++c) {
      const double v = values[c];
      if (v == 0 && std::bit_cast<std::uint32_t>(values[c]) != 0) {
        bool has_pos_zero = false;
        for (float w : values) has_pos_zero |= (w == 0 && std::bit_cast<std::uint32_t>(w) == 0);
        if (has_pos_zero) continue;
      }
      std::size_t i = n++;
      for (; i > 0 && out[i - 1].value > v; --i) out[i] = out[i - 1];
      out[i] = {v, static_cast<storage>(c)};
    }
    return std::pair{out, n};
  }
  static constexpr auto sorted_and_count = make_sorted();

public:
  static constexpr std::size_t distinct = sorted_and_count.second;
  static constexpr std::array<entry, size> sorted = sorted_and_count.first;

  static constexpr bool is_signed = sorted[0].value < 0;
  static constexpr format_family family = format_family::codebook;
  static constexpr bool is_integer = false;
  static constexpr bool has_inf = false;
  static constexpr bool has_nan = false;
  static constexpr bool has_subnormals = false;

  static constexpr int negative_zero_code = [] {
    for (std::size_t c = 0; c < size; ++c)
      if (std::bit_cast<std::uint32_t>(values[c]) == 0x80000000u) return static_cast<int>(c);
    return -1;
  }();
  static constexpr bool has_negative_zero = negative_zero_code >= 0;

  // Sorted position of the value closest to zero (of a +-a pair, +a): what NaN encodes to, as 0.
  static constexpr std::size_t zero_index = [] {
    std::size_t best = 0;
    for (std::size_t i = 1; i < distinct; ++i)
      if (abs(sorted[i].value) <= abs(sorted[best].value)) best = i;
    return best;
  }();

  static constexpr double max_finite = abs(sorted[0].value) > abs(sorted[distinct - 1].value)
                                           ? abs(sorted[0].value)
                                           : abs(sorted[distinct - 1].value);
  static constexpr double min_normal = [] {
    double m = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < distinct; ++i)
      if (sorted[i].value != 0 && abs(sorted[i].value) < m) m = abs(sorted[i].value);
    return m;
  }();
  static constexpr double min_subnormal = min_normal;

  // Codes at or beyond the table's length are never produced by encode and decode to NaN.
  static constexpr bool is_nan(storage code) noexcept { return code >= size; }
  static constexpr float decode(storage code) noexcept {
    return code < size ? values[code] : std::numeric_limits<float>::quiet_NaN();
  }
  static constexpr double decode_double(storage code) noexcept { return decode(code); }

  template <rounding R = rounding::nearest_even, overflow O = overflow::saturate, class Src>
  requires std::is_same_v<Src, float> || std::is_same_v<Src, double>
  static constexpr storage encode(Src x, std::uint32_t random = 0) noexcept {
    if (x != x) return sorted[zero_index].code;
    const double xd = static_cast<double>(x);
    std::size_t hi = 0;
    while (hi < distinct && sorted[hi].value < xd) ++hi; // first value >= x
    std::size_t pick;
    if (hi == 0)
      pick = 0;
    else if (hi == distinct)
      pick = distinct - 1;
    else if (sorted[hi].value == xd)
      pick = hi;
    else
      pick = choose<R>(xd, hi - 1, hi, random);
    if (sorted[pick].value == 0 && has_negative_zero && sign_bit(x)) return static_cast<storage>(negative_zero_code);
    return sorted[pick].code;
  }

private:
  // lo < hi adjacent, sorted[lo].value < x < sorted[hi].value.
  template <rounding R>
  static constexpr std::size_t choose(double x, std::size_t lo, std::size_t hi, std::uint32_t random) noexcept {
    const double a = sorted[lo].value, b = sorted[hi].value;
    const std::size_t toward_zero = abs(a) < abs(b) ? lo : hi;
    if constexpr (R == rounding::nearest_even) {
      const double mid = (a + b) / 2; // exact: a and b are floats of similar scale
      return x < mid ? lo : x > mid ? hi : toward_zero;
    } else if constexpr (R == rounding::toward_zero) {
      if (a >= 0 || b <= 0) return toward_zero; // both on x's side of zero
      return choose<rounding::nearest_even>(x, lo, hi, random);
    } else {
      const double frac = (x - a) / (b - a);
      const auto threshold = static_cast<std::uint64_t>(frac * 4294967296.0);
      return random < threshold ? hi : lo;
    }
  }
};

// QLoRA NormalFloat4: quantiles of N(0,1) normalized to [-1, 1], with an exact zero.
struct nf4_table {
  static constexpr int bits = 4;
  static constexpr std::array<float, 16> values = {
      -1.0f,
      -0.6961928009986877f,
      -0.5250730514526367f,
      -0.39491748809814453f,
      -0.28444138169288635f,
      -0.18477343022823334f,
      -0.09105003625154495f,
      0.0f,
      0.07958029955625534f,
      0.16093020141124725f,
      0.24611230194568634f,
      0.33791524171829224f,
      0.44070982933044434f,
      0.5626170039176941f,
      0.7229568362236023f,
      1.0f,
  };
};

// bitsandbytes FP4 (an E2M1 variant normalized to max 1): code bit 3 is the sign; the
// magnitudes by code 0..7 follow bitsandbytes' code assignment.
struct fp4_bnb_table {
  static constexpr int bits = 4;
  static constexpr std::array<float, 16> values = {
      0.0f,  0.0052083333f,  0.6666667f,  1.0f,  0.3333333f,  0.5f,  0.16666667f,  0.25f,
      -0.0f, -0.0052083333f, -0.6666667f, -1.0f, -0.3333333f, -0.5f, -0.16666667f, -0.25f,
  };
};

// GGUF's IQ4_NL table (llama.cpp kvalues_iq4nl): 16 non-uniform integers in [-127, 113], denser near
// zero, with no exact zero (1 is nearest) and more room below zero than above. Kept as the integers
// themselves, so that a block's fp16 scale is GGUF's d and the int8 kernels read the values exactly.
struct iq4nl_table {
  static constexpr int bits = 4;
  static constexpr std::array<float, 16> values = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                   1,    13,   25,  38,  53,  69,  89,  113};
};

// BitNet b1.58 ternary weights as 2-bit codes: code = value + 1; code 3 is unused.
struct ternary_table {
  static constexpr int bits = 2;
  static constexpr std::array<float, 3> values = {-1.0f, 0.0f, 1.0f};
};

// The symmetric mid-rise uniform grid of 2^Bits levels, i - (2^Bits - 1) / 2 for code i
// ({-0.5, 0.5} at 1 bit, {-1.5, -0.5, 0.5, 1.5} at 2): no zero level, every level used. The
// grid of Max's (1960) optimal uniform quantizers and of QuEST's "centered" integers.
template <int Bits>
struct midrise_table {
  static_assert(Bits >= 1 && Bits <= 8);
  static constexpr int bits = Bits;
  static constexpr std::array<float, (std::size_t{1} << Bits)> values = [] {
    std::array<float, (std::size_t{1} << Bits)> v{};
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<float>(static_cast<double>(i) - (static_cast<double>(v.size()) - 1) / 2);
    return v;
  }();
  static constexpr char name[] = {'m', 'i', 'd', 'r', 'i', 's', 'e', static_cast<char>('0' + Bits), '\0'};
};

// bitsandbytes' signed 8-bit "dynamic" map (create_dynamic_map(signed=True)): for i = 0..6,
// the midpoints of 2^i + 1 points evenly spaced over [0.1, 1], times +-10^(i-6); plus 0 and 1.
// 256 values in [-0.99296875, 1]. Computed here in double and rounded once to float, which may
// differ from bitsandbytes' float32 torch.linspace arithmetic in the last ulp of some entries.
struct dynamic8_table {
  static constexpr int bits = 8;
  static constexpr std::array<float, 256> values = [] {
    std::array<double, 256> d{};
    std::size_t n = 0;
    for (int i = 0; i < 7; ++i) {
      double p10 = 1;
      for (int k = 0; k < 6 - i; ++k) p10 *= 10; // exact
      const int points = (1 << i) + 1;
      for (int j = 0; j + 1 < points; ++j) {
        const double b0 = 0.1 + 0.9 * j / (points - 1), b1 = 0.1 + 0.9 * (j + 1) / (points - 1);
        const double m = (b0 + b1) / 2 / p10;
        d[n++] = m;
        d[n++] = -m;
      }
    }
    d[n++] = 0.0;
    d[n++] = 1.0;
    for (std::size_t a = 1; a < n; ++a) // insertion sort (constexpr)
      for (std::size_t b = a; b > 0 && d[b - 1] > d[b]; --b) {
        const double t = d[b];
        d[b] = d[b - 1];
        d[b - 1] = t;
      }
    std::array<float, 256> f{};
    for (std::size_t i = 0; i < 256; ++i) f[i] = static_cast<float>(d[i]);
    return f;
  }();
};

using nf4 = codebook<nf4_table>;
using dynamic8 = codebook<dynamic8_table>;
using fp4_bnb = codebook<fp4_bnb_table>;
using iq4nl = codebook<iq4nl_table>;
using ternary = codebook<ternary_table>;
template <int Bits>
using midrise = codebook<midrise_table<Bits>>;

template <>
inline constexpr std::string_view format_name<nf4> = "nf4";
template <>
inline constexpr std::string_view format_name<fp4_bnb> = "fp4_bnb";
template <>
inline constexpr std::string_view format_name<iq4nl> = "iq4nl";
template <>
inline constexpr std::string_view format_name<ternary> = "ternary";
template <int Bits>
inline constexpr std::string_view format_name<midrise<Bits>> = midrise_table<Bits>::name;

} // namespace lowbit
