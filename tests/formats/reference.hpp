// Independent, deliberately slow reference semantics for the scalar formats, written from the
// specs (OCP FP8 / MX v1.0 tables, ml_dtypes' documented conversion rules) without sharing code
// with include/lowbit/formats. Decoding works from the bit fields with std::ldexp; encoding
// scans every representable value for the two that bracket the input and compares with their
// exact midpoint, so no rounding trick of the library is reused.
#pragma once

#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/integer.hpp"
#include "lowbit/formats/minifloat.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ref {

enum class nan_rule { ieee, fn, fnuz, finite };

struct spec {
  int e, m, bias;
  bool is_signed;
  nan_rule rule;
  bool has_zero; // false only for E8M0
  int storage_bits;
};

// Published parameters, written out per format (not read from the library's templates).
template <class F>
inline constexpr spec spec_of{};
template <>
inline constexpr spec spec_of<lowbit::fp8_e4m3>{4, 3, 7, true, nan_rule::fn, true, 8};
template <>
inline constexpr spec spec_of<lowbit::fp8_e5m2>{5, 2, 15, true, nan_rule::ieee, true, 8};
template <>
inline constexpr spec spec_of<lowbit::fp8_e4m3fnuz>{4, 3, 8, true, nan_rule::fnuz, true, 8};
template <>
inline constexpr spec spec_of<lowbit::fp8_e5m2fnuz>{5, 2, 16, true, nan_rule::fnuz, true, 8};
template <>
inline constexpr spec spec_of<lowbit::fp6_e3m2>{3, 2, 3, true, nan_rule::finite, true, 6};
template <>
inline constexpr spec spec_of<lowbit::fp6_e2m3>{2, 3, 1, true, nan_rule::finite, true, 6};
template <>
inline constexpr spec spec_of<lowbit::fp4_e2m1>{2, 1, 1, true, nan_rule::finite, true, 4};
template <>
inline constexpr spec spec_of<lowbit::fp4_e1m2>{1, 2, 1, true, nan_rule::finite, true, 4};
template <>
inline constexpr spec spec_of<lowbit::fp4_e3m0>{3, 0, 3, true, nan_rule::finite, true, 4};
template <>
inline constexpr spec spec_of<lowbit::e8m0>{8, 0, 127, false, nan_rule::fn, false, 8};
template <>
inline constexpr spec spec_of<lowbit::ue4m3>{4, 3, 7, false, nan_rule::fn, true, 8};
template <>
inline constexpr spec spec_of<lowbit::ue5m3>{5, 3, 15, false, nan_rule::fn, true, 8};
template <>
inline constexpr spec spec_of<lowbit::fp16>{5, 10, 15, true, nan_rule::ieee, true, 16};
template <>
inline constexpr spec spec_of<lowbit::bf16>{8, 7, 127, true, nan_rule::ieee, true, 16};

inline double nan() { return std::numeric_limits<double>::quiet_NaN(); }
inline double inf() { return std::numeric_limits<double>::infinity(); }

inline unsigned sign_bit(const spec& s) { return s.is_signed ? 1u << (s.e + s.m) : 0u; }

inline double decode(const spec& s, unsigned code) {
  const int value_bits = (s.is_signed ? 1 : 0) + s.e + s.m;
  if (code >> value_bits) return nan(); // padding bits set: not a valid code
  const bool neg = s.is_signed && ((code >> (s.e + s.m)) & 1u);
  const unsigned ef = (code >> s.m) & ((1u << s.e) - 1);
  const unsigned mf = code & ((1u << s.m) - 1);
  const unsigned eall = (1u << s.e) - 1, mall = (1u << s.m) - 1;
  switch (s.rule) {
  case nan_rule::ieee:
    if (ef == eall) return mf == 0 ? (neg ? -inf() : inf()) : nan();
    break;
  case nan_rule::fn:
    if (ef == eall && mf == mall) return nan();
    break;
  case nan_rule::fnuz:
    if (neg && ef == 0 && mf == 0) return nan();
    break;
  case nan_rule::finite: break;
  }
  double v;
  if (ef == 0 && s.has_zero)
    v = std::ldexp(static_cast<double>(mf), 1 - s.bias - s.m);
  else
    v = std::ldexp(1.0 + static_cast<double>(mf) / std::ldexp(1.0, s.m), static_cast<int>(ef) - s.bias);
  return neg ? -v : v;
}

// Magnitude codes in increasing value order: 0 .. max_mag (all minifloats are monotonic).
inline unsigned max_magnitude_code(const spec& s) {
  unsigned best = 0;
  for (unsigned k = 0; k < (1u << (s.e + s.m)); ++k) {
    const double v = decode(s, k);
    if (std::isfinite(v)) best = k;
  }
  return best;
}

inline unsigned nan_code(const spec& s) {
  switch (s.rule) {
  case nan_rule::ieee: return (((1u << s.e) - 1) << s.m) | (1u << (s.m - 1));
  case nan_rule::fn: return (1u << (s.e + s.m)) - 1;
  case nan_rule::fnuz: return sign_bit(s);
  case nan_rule::finite: return 0; // no NaN: documented to encode NaN as (signed) zero
  }
  return 0;
}

enum class mode { nearest_even, toward_zero };
enum class ovf { saturate, non_saturating };

struct candidate {
  double v;
  long k; // magnitude code; -1: zero of a format without zero; kmax+1: virtual overflow value
};

// Everything encode needs about a format, computed once.
struct table {
  spec s;
  unsigned kmax, nan_c;
  std::vector<candidate> c;
};

inline table make_table(const spec& s) {
  table t{s, max_magnitude_code(s), nan_code(s), {}};
  // Zero (where the format lacks it), every finite magnitude, and one virtual value past max
  // (max + ulp) that stands for "rounded beyond the range".
  if (!s.has_zero) t.c.push_back({0.0, -1});
  for (unsigned k = 0; k <= t.kmax; ++k) t.c.push_back({decode(s, k), static_cast<long>(k)});
  const double vmax = decode(s, t.kmax);
  t.c.push_back({vmax + std::ldexp(1.0, std::ilogb(vmax) - s.m), static_cast<long>(t.kmax) + 1});
  return t;
}

// The ml_dtypes-style conversion of a real number x, by scanning the value table.
inline unsigned encode(const table& t, double x, mode md, ovf o) {
  const spec& s = t.s;
  const unsigned sb = sign_bit(s);
  const bool neg = std::signbit(x);
  auto signed_code = [&](unsigned mag) { return (neg && s.is_signed) ? (mag | sb) : mag; };
  auto nan_result = [&]() -> unsigned {
    if (s.rule == nan_rule::fnuz) return t.nan_c;
    if (s.rule == nan_rule::finite) return neg ? 0u : sb; // ml_dtypes: quiet_NaN() is the sign-only code
    return signed_code(t.nan_c);
  };
  auto inf_result = [&]() -> unsigned {
    if (s.rule == nan_rule::ieee) return signed_code(((1u << s.e) - 1) << s.m);
    if (s.rule == nan_rule::finite) return signed_code(t.kmax);
    return nan_result();
  };
  auto overflow_code = [&](ovf oo) -> unsigned { return oo == ovf::saturate ? signed_code(t.kmax) : inf_result(); };
  auto zero_code = [&]() -> unsigned {
    if (!s.has_zero) return o == ovf::saturate ? 0u : t.nan_c;
    if (s.rule == nan_rule::fnuz || !s.is_signed) return 0;
    return signed_code(0);
  };
  if (std::isnan(x)) return nan_result();
  if (std::isinf(x)) return inf_result();
  if (x == 0) return zero_code();
  if (!s.is_signed && neg) return o == ovf::saturate ? 0u : t.nan_c;
  const double a = std::fabs(x);
  const candidate* lo = nullptr;
  const candidate* hi = nullptr;
  if (t.c.size() <= 512) { // brute force: look at every value
    for (const candidate& q : t.c) {
      if (q.v <= a && (!lo || q.v > lo->v)) lo = &q;
      if (q.v >= a && (!hi || q.v < hi->v)) hi = &q;
    }
  } else { // 16-bit formats: bisection over the same increasing table
    std::size_t l = 0, h = t.c.size();
    while (l < h) {
      const std::size_t mid = (l + h) / 2;
      if (t.c[mid].v < a)
        l = mid + 1;
      else
        h = mid;
    }
    if (l < t.c.size()) hi = &t.c[l];
    if (l < t.c.size() && t.c[l].v == a)
      lo = &t.c[l];
    else if (l > 0)
      lo = &t.c[l - 1];
  }
  long k;
  if (!hi)
    k = static_cast<long>(t.kmax) + 1; // beyond even the virtual value
  else if (lo->v == a || md == mode::toward_zero)
    k = lo->k;
  else {
    const double mid = (lo->v + hi->v) / 2; // exact: both are short-mantissa values
    // Ties to the even code; a format without mantissa bits has no even choice and rounds up.
    k = a < mid ? lo->k : a > mid ? hi->k : (s.m > 0 && lo->k % 2 == 0) ? lo->k : hi->k;
  }
  if (k == -1) return 0; // below E8M0's smallest value: it stays there, never NaN
  if (k > static_cast<long>(t.kmax)) return overflow_code(md == mode::toward_zero ? ovf::saturate : o);
  if (k == 0 && s.has_zero) return zero_code();
  return signed_code(static_cast<unsigned>(k));
}

// Integers: nearest value of [min, max] with ties to the even integer; NaN -> 0.
inline int encode_int(double x, int lo, int hi, mode md) {
  if (std::isnan(x)) return 0;
  if (x <= lo) return lo;
  if (x >= hi) return hi;
  const double f = std::floor(x);
  const double frac = x - f; // exact for |x| < 2^52
  int down = static_cast<int>(f), up = down + 1;
  if (md == mode::toward_zero) return x < 0 ? (frac == 0 ? down : up) : down;
  if (frac < 0.5) return down;
  if (frac > 0.5) return up;
  return (down % 2 == 0) ? down : up;
}

} // namespace ref
