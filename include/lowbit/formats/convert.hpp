// Element-wise conversions between floating spans (float, double, half, bfloat16) and the codes
// of a scalar format, one code per storage element (bit packing belongs to schemes/).
// encode_span / decode_span dispatch at compile time to the AVX2 path where one exists (round to
// nearest even from float/half/bfloat16); reference::encode_span / decode_span are the scalar
// definitions every fast path is tested against. Stochastic rounding draws its bits from
// random_bits(seed, index), so results depend only on the seed, never on chunking.
#pragma once

#include "lowbit/core/bits.hpp"
#include "lowbit/core/config.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/formats/concepts.hpp"
#include "lowbit/formats/half.hpp"
#include "lowbit/formats/rounding.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#if LOWBIT_HAS_AVX2
#include "lowbit/formats/avx2/convert.hpp"
#endif

namespace lowbit {

template <class T>
concept float_like =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;

// One element, with all the format's knobs.
template <scalar_format F, rounding R = rounding::nearest_even, overflow O = overflow::saturate, class Src>
requires std::is_same_v<Src, float> || std::is_same_v<Src, double>
constexpr typename F::storage encode(Src x, std::uint32_t random = 0) noexcept {
  return F::template encode<R, O>(x, random);
}

template <scalar_format F>
constexpr float decode(typename F::storage code) noexcept {
  return F::decode(code);
}

namespace detail {

template <class T>
constexpr auto widen(T x) noexcept {
  if constexpr (std::is_same_v<T, half> || std::is_same_v<T, bfloat16>)
    return static_cast<float>(x); // exact
  else
    return x;
}

template <class Dst>
constexpr Dst narrow(double v) noexcept {
  if constexpr (std::is_same_v<Dst, double>)
    return v;
  else if constexpr (std::is_same_v<Dst, float>)
    return static_cast<float>(v);
  else
    return Dst(v); // half / bfloat16: one rounding from the exact value
}

inline void check_sizes(const char* what, std::size_t in, std::size_t out) {
  if (in != out) throw_size_mismatch(what, out, in);
}

} // namespace detail

namespace reference {

template <scalar_format F, rounding R = rounding::nearest_even, overflow O = overflow::saturate, float_like Src>
void encode_span(std::span<const Src> in, std::span<typename F::storage> out, std::uint64_t seed = 0) {
  detail::check_sizes("encode_span: output span", in.size(), out.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const std::uint32_t r = R == rounding::stochastic ? random_bits(seed, i) : 0u;
    out[i] = F::template encode<R, O>(detail::widen(in[i]), r);
  }
}

template <scalar_format F, float_like Dst>
void decode_span(std::span<const typename F::storage> in, std::span<Dst> out) {
  detail::check_sizes("decode_span: output span", in.size(), out.size());
  for (std::size_t i = 0; i < in.size(); ++i) out[i] = detail::narrow<Dst>(F::decode_double(in[i]));
}

} // namespace reference

// Encodes in[i] into out[i]; out.size() must equal in.size() (else lowbit::invalid_argument).
template <scalar_format F, rounding R = rounding::nearest_even, overflow O = overflow::saturate, float_like Src>
void encode_span(std::span<const Src> in, std::span<typename F::storage> out, std::uint64_t seed = 0) {
#if LOWBIT_HAS_AVX2
  if constexpr (R == rounding::nearest_even && !std::is_same_v<Src, double> && avx2::can_encode<F>) {
    detail::check_sizes("encode_span: output span", in.size(), out.size());
    avx2::encode_rne<F, O>(in.data(), out.data(), in.size());
    return;
  }
#endif
  reference::encode_span<F, R, O>(in, out, seed);
}

// Decodes in[i] into out[i] (rounding to nearest even when Dst is narrower than the value).
template <scalar_format F, float_like Dst>
void decode_span(std::span<const typename F::storage> in, std::span<Dst> out) {
#if LOWBIT_HAS_AVX2
  if constexpr (!std::is_same_v<Dst, double> && avx2::can_decode<F>) {
    detail::check_sizes("decode_span: output span", in.size(), out.size());
    avx2::decode<F>(in.data(), out.data(), in.size());
    return;
  }
#endif
  reference::decode_span<F>(in, out);
}

} // namespace lowbit
