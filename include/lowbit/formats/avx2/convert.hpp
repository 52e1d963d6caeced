// AVX2 span conversions: float/half/bfloat16 -> codes with round-to-nearest-even, and codes ->
// float/half/bfloat16. Bit-exact with the scalar encoders in formats/ (tests compare them).
// Minifloats use the exponent-rebias trick for normals and a magic-number add (the FPU does the
// rounding) for subnormals; integers use vroundps; codebooks count the decision thresholds
// crossed; decoding gathers from a 256-entry table.
#pragma once

#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/half.hpp"
#include "lowbit/formats/minifloat.hpp"

#include <immintrin.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace lowbit::avx2 {

// integer_format instantiations (codes are the values themselves, no implicit scale).
template <class F>
concept plain_integer = F::family == format_family::integer&& requires {
  F::code_mask;
};

template <class F>
consteval bool encodable() {
  if constexpr (F::family == format_family::minifloat)
    return F::has_zero; // E8M0 stays scalar
  else if constexpr (F::family == format_family::codebook)
    return F::distinct <= 16;
  else
    return plain_integer<F>;
}
template <class F>
inline constexpr bool can_encode = encodable<F>();

template <class F>
inline constexpr bool can_decode = F::bits <= 8 || std::is_same_v<F, minifloat<5, 10, 15, special_values::ieee>> ||
                                   std::is_same_v<F, minifloat<8, 7, 127, special_values::ieee>>;

namespace detail {

inline __m256 load8(const float* p) noexcept { return _mm256_loadu_ps(p); }
inline __m256 load8(const half* p) noexcept {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8(const bfloat16* p) noexcept {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// Eight 32-bit codes (each < 2^16) to storage, `count` <= 8 of them.
template <class Storage>
inline void store_codes(__m256i codes, Storage* out, std::size_t count) noexcept {
  const __m128i lo = _mm256_castsi256_si128(codes), hi = _mm256_extracti128_si256(codes, 1);
  const __m128i w16 = _mm_packus_epi32(lo, hi);
  if constexpr (sizeof(Storage) == 1) {
    const __m128i w8 = _mm_packus_epi16(w16, w16);
    if (count == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), w8);
    } else {
      alignas(16) std::uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), w8);
      std::memcpy(out, tmp, count);
    }
  } else {
    if (count == 8) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), w16);
    } else {
      alignas(16) std::uint16_t tmp[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), w16);
      std::memcpy(out, tmp, count * 2);
    }
  }
}

inline __m256i set1(std::uint32_t v) noexcept { return _mm256_set1_epi32(static_cast<int>(v)); }

template <class F, overflow O>
inline __m256i encode8_minifloat(__m256 x) noexcept {
  constexpr int shift = 23 - F::mantissa_bits;
  constexpr std::uint32_t rebias = static_cast<std::uint32_t>(F::bias - 127) << 23;
  constexpr std::uint32_t magic = static_cast<std::uint32_t>(F::exponent_min - F::mantissa_bits + 23 + 127) << 23;
  constexpr std::uint32_t min_normal_bits = static_cast<std::uint32_t>(F::exponent_min + 127) << 23;
  static_assert(F::exponent_min + 127 >= 1 && F::exponent_min - F::mantissa_bits + 23 + 127 >= 1);

  const __m256i u = _mm256_castps_si256(x);
  const __m256i a = _mm256_and_si256(u, set1(0x7fffffffu));
  const __m256i neg = _mm256_srai_epi32(u, 31);

  // Ties to the even code; without mantissa bits, ties round up (as minifloat::encode does).
  const __m256i odd = F::mantissa_bits == 0 ? set1(1) : _mm256_and_si256(_mm256_srli_epi32(a, shift), set1(1));
  const __m256i t = _mm256_add_epi32(_mm256_add_epi32(a, set1(rebias + (1u << (shift - 1)) - 1u)), odd);
  const __m256i code_normal = _mm256_srli_epi32(t, shift);
  __m256i code_sub;
  if constexpr (F::mantissa_bits == 0) { // no subnormals: 0 below half the smallest normal, else it
    code_sub = _mm256_and_si256(_mm256_cmpgt_epi32(a, set1(min_normal_bits - (1u << 23) - 1u)), set1(1));
  } else {
    const __m256 f = _mm256_add_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(set1(magic)));
    code_sub = _mm256_sub_epi32(_mm256_castps_si256(f), set1(magic));
  }
  const __m256i is_sub = _mm256_cmpgt_epi32(set1(min_normal_bits), a);
  __m256i code = _mm256_blendv_epi8(code_normal, code_sub, is_sub);

  // Mirrors minifloat::encode's special cases: finite overflow, ±inf, NaN, then the sign.
  constexpr unsigned inf_mag = F::has_inf ? F::inf_code : F::has_nan ? F::nan_code : F::max_code;
  constexpr unsigned over_mag = O == overflow::saturate ? F::max_code : inf_mag;
  code = _mm256_blendv_epi8(code, set1(over_mag), _mm256_cmpgt_epi32(code, set1(F::max_code)));
  const __m256i is_inf = _mm256_cmpeq_epi32(a, set1(0x7f800000u));
  code = _mm256_blendv_epi8(code, set1(inf_mag), is_inf);
  const __m256i is_nan = _mm256_cmpgt_epi32(a, set1(0x7f800000u));
  code = _mm256_blendv_epi8(code, set1(F::has_nan ? F::nan_code : 0u), is_nan);

  if constexpr (F::is_signed) {
    __m256i apply = neg;
    if constexpr (F::specials == special_values::fnuz) // no -0; the NaN code carries no sign
      apply = _mm256_andnot_si256(_mm256_cmpeq_epi32(code, _mm256_setzero_si256()), neg);
    else if constexpr (!F::has_nan) // NaN becomes the sign-only code, flipped (ml_dtypes)
      apply = _mm256_xor_si256(neg, is_nan);
    code = _mm256_or_si256(code, _mm256_and_si256(apply, set1(F::sign_mask)));
  } else {
    const __m256i special = _mm256_or_si256(is_nan, is_inf);
    const __m256i negative =
        _mm256_andnot_si256(_mm256_or_si256(special, _mm256_cmpeq_epi32(a, _mm256_setzero_si256())), neg);
    constexpr unsigned neg_code = (O == overflow::saturate || !F::has_nan) ? 0u : F::nan_code;
    code = _mm256_blendv_epi8(code, set1(neg_code), negative);
  }
  return code;
}

template <class F>
inline __m256i encode8_integer(__m256 x) noexcept {
  const __m256 ordered = _mm256_cmp_ps(x, x, _CMP_ORD_Q);
  x = _mm256_and_ps(x, ordered); // NaN -> 0
  x = _mm256_max_ps(x, _mm256_set1_ps(static_cast<float>(F::min_value)));
  x = _mm256_min_ps(x, _mm256_set1_ps(static_cast<float>(F::max_value)));
  const __m256i v = _mm256_cvtps_epi32(_mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  return _mm256_and_si256(v, set1(F::code_mask));
}

// For a codebook: thresholds t[i] with (x > t[i]) exactly when x encodes above sorted entry i,
// reproducing the scalar encoder's nearest / ties-toward-zero decisions for every float x.
template <class F>
struct codebook_tables {
  std::array<float, 16> threshold{};
  alignas(32) std::array<std::int32_t, 16> code{};

  codebook_tables() noexcept {
    for (std::size_t i = 0; i + 1 < F::distinct; ++i) {
      const double a = F::sorted[i].value, b = F::sorted[i + 1].value, mid = (a + b) / 2;
      const bool tie_goes_up = std::fabs(b) <= std::fabs(a); // strictly toward zero, or equal
      float t = static_cast<float>(mid);
      if (static_cast<double>(t) > mid) t = std::nextafter(t, -std::numeric_limits<float>::infinity());
      if (tie_goes_up && static_cast<double>(t) == mid) t = std::nextafter(t, -std::numeric_limits<float>::infinity());
      threshold[i] = t;
    }
    for (std::size_t i = 0; i < 16; ++i) code[i] = F::sorted[i < F::distinct ? i : F::distinct - 1].code;
  }
};

template <class F>
inline __m256i encode8_codebook(__m256 x, const codebook_tables<F>& tab) noexcept {
  __m256i count = _mm256_setzero_si256();
  for (std::size_t i = 0; i + 1 < F::distinct; ++i) // the mask is -1 where x is above
    count =
        _mm256_sub_epi32(count, _mm256_castps_si256(_mm256_cmp_ps(x, _mm256_set1_ps(tab.threshold[i]), _CMP_GT_OQ)));
  const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  count = _mm256_blendv_epi8(count, set1(static_cast<std::uint32_t>(F::zero_index)), is_nan);
  const __m256i lo =
      _mm256_permutevar8x32_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(tab.code.data())), count);
  const __m256i hi =
      _mm256_permutevar8x32_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(tab.code.data() + 8)), count);
  __m256i code = _mm256_blendv_epi8(lo, hi, _mm256_cmpgt_epi32(count, set1(7)));
  if constexpr (F::has_negative_zero) {
    const __m256i zero_code = set1(F::sorted[F::zero_index].code);
    const __m256i neg = _mm256_srai_epi32(_mm256_castps_si256(x), 31);
    const __m256i to_nz = _mm256_and_si256(_mm256_and_si256(_mm256_cmpeq_epi32(code, zero_code), neg),
                                           _mm256_andnot_si256(is_nan, set1(0xffffffffu)));
    code = _mm256_blendv_epi8(code, set1(static_cast<std::uint32_t>(F::negative_zero_code)), to_nz);
  }
  return code;
}

template <class F>
struct decode_table {
  alignas(32) std::array<float, 256> value{};
  decode_table() noexcept {
    for (unsigned c = 0; c < 256; ++c)
      value[c] =
          c < code_count<F> ? F::decode(static_cast<typename F::storage>(c)) : std::numeric_limits<float>::quiet_NaN();
  }
};

inline void store8(float* p, __m256 v, std::size_t count) noexcept {
  if (count == 8) {
    _mm256_storeu_ps(p, v);
  } else {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    std::memcpy(p, tmp, count * sizeof(float));
  }
}
inline void store8(half* p, __m256 v, std::size_t count) noexcept {
  const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
  if (count == 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
  } else {
    alignas(16) std::uint16_t tmp[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), h);
    std::memcpy(p, tmp, count * 2);
  }
}
inline void store8(bfloat16* p, __m256 v, std::size_t count) noexcept {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), set1(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, set1(0x7fffu)), odd), 16);
  const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  const __m256i qnan = _mm256_or_si256(set1(0x7fc0u), _mm256_and_si256(_mm256_srli_epi32(u, 16), set1(0x8000u)));
  r = _mm256_blendv_epi8(r, qnan, is_nan);
  store_codes(r, reinterpret_cast<std::uint16_t*>(p), count);
}

} // namespace detail

// Round-to-nearest-even encoding of n elements from float, half or bfloat16.
template <class F, overflow O, class Src>
void encode_rne(const Src* in, typename F::storage* out, std::size_t n) noexcept {
  static_assert(can_encode<F>);
  auto run = [&](auto&& encode8) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) detail::store_codes(encode8(detail::load8(in + i)), out + i, 8);
    if (i < n) {
      Src tail[8]{};
      std::memcpy(tail, in + i, (n - i) * sizeof(Src));
      detail::store_codes(encode8(detail::load8(tail)), out + i, n - i);
    }
  };
  if constexpr (F::family == format_family::minifloat) {
    run([](__m256 x) { return detail::encode8_minifloat<F, O>(x); });
  } else if constexpr (F::family == format_family::integer) {
    run([](__m256 x) { return detail::encode8_integer<F>(x); });
  } else {
    static const detail::codebook_tables<F> tab;
    run([&](__m256 x) { return detail::encode8_codebook<F>(x, tab); });
  }
}

namespace detail {

// Eight codes to floats. Integers sign-extend and convert; tables of at most 16 entries use two
// in-register permutes; other 8-bit formats gather from a 256-entry table; fp16 / bf16 widen.
template <class F>
struct decoder {
  static const decode_table<F>& table() noexcept {
    static const decode_table<F> tab;
    return tab;
  }
  static constexpr bool small = !plain_integer<F> && code_count<F> <= 16;
  static constexpr unsigned max_valid = [] { // codes above it have padding bits set
    if constexpr (F::family == format_family::minifloat)
      return (1u << F::value_bits) - 1;
    else
      return code_count<F> - 1;
  }();
  static constexpr bool arithmetic = [] {
    if constexpr (F::family == format_family::minifloat)
      return !small && F::has_zero;
    else
      return false;
  }();
  __m256 lo{}, hi{};
  const float* tab = nullptr;

  decoder() noexcept {
    if constexpr (small) {
      lo = _mm256_loadu_ps(table().value.data());
      hi = _mm256_loadu_ps(table().value.data() + 8);
    } else if constexpr (sizeof(typename F::storage) == 1 && !plain_integer<F> && !arithmetic) {
      tab = table().value.data();
    }
  }

  __m256 operator()(const typename F::storage* p) const noexcept {
    if constexpr (sizeof(typename F::storage) == 2) {
      const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      if constexpr (F::exponent_bits == 5)
        return _mm256_cvtph_ps(w);
      else
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(w), 16));
    } else {
      const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
      const __m256i invalid = _mm256_cmpgt_epi32(c, set1(max_valid));
      __m256 v;
      if constexpr (plain_integer<F>) {
        constexpr int up = 32 - F::bits;
        const __m256i x = F::is_signed ? _mm256_srai_epi32(_mm256_slli_epi32(c, up), up) : c;
        v = _mm256_cvtepi32_ps(x);
      } else if constexpr (arithmetic) {
        // Place exponent and mantissa under float's fields and rescale by 2^(127 - bias): exact
        // for normals and subnormals alike. Then patch inf and NaN.
        constexpr float rescale = static_cast<float>(lowbit::detail::exp2i(127 - F::bias));
        const __m256i mag = _mm256_and_si256(c, set1(F::mag_mask));
        const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(c, set1(F::sign_mask)), 31 - (F::value_bits - 1));
        v = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(mag, 23 - F::mantissa_bits)), _mm256_set1_ps(rescale));
        __m256i nan = invalid;
        if constexpr (F::has_inf) {
          const __m256i inf = _mm256_cmpeq_epi32(mag, set1(F::inf_code));
          v = _mm256_blendv_ps(v, _mm256_set1_ps(std::numeric_limits<float>::infinity()), _mm256_castsi256_ps(inf));
          nan = _mm256_or_si256(nan, _mm256_cmpgt_epi32(mag, set1(F::inf_code)));
        } else if constexpr (F::specials == special_values::fn) {
          nan = _mm256_or_si256(nan, _mm256_cmpeq_epi32(mag, set1(F::mag_mask)));
        } else if constexpr (F::specials == special_values::fnuz) {
          nan = _mm256_or_si256(nan, _mm256_cmpeq_epi32(c, set1(F::sign_mask)));
        }
        v = _mm256_or_ps(v, _mm256_castsi256_ps(sign));
        return _mm256_blendv_ps(v, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), _mm256_castsi256_ps(nan));
      } else if constexpr (small) {
        const __m256 a = _mm256_permutevar8x32_ps(lo, c), b = _mm256_permutevar8x32_ps(hi, c);
        v = _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)));
      } else {
        return _mm256_i32gather_ps(tab, c, 4); // the table holds NaN for invalid codes
      }
      return _mm256_blendv_ps(v, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), _mm256_castsi256_ps(invalid));
    }
  }
};

} // namespace detail

// Decoding of n codes to float, half or bfloat16.
template <class F, class Dst>
void decode(const typename F::storage* in, Dst* out, std::size_t n) noexcept {
  static_assert(can_decode<F>);
  const detail::decoder<F> dec;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) detail::store8(out + i, dec(in + i), 8);
  if (i < n) {
    typename F::storage tail[8]{};
    std::memcpy(tail, in + i, (n - i) * sizeof(tail[0]));
    detail::store8(out + i, dec(tail), n - i);
  }
}

} // namespace lowbit::avx2
