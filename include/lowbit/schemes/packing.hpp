// Byte-exact packing of element codes. Dense LSB-first bit stream: code i occupies bits
// [i*b, (i+1)*b) of the row, counting from bit 0 of byte 0, so 4-bit codes sit two per byte with
// the low nibble first, 2-bit codes four per byte from the low bits, and 3- and 6-bit codes
// straddle bytes. Ternary codes (0, 1, 2 = -1, 0, +1) also pack five per byte in base 3:
// byte = t0 + 3 t1 + 9 t2 + 27 t3 + 81 t4 (1.6 bits per weight; bytes >= 243 are corrupt).
// bitsandbytes' 4-bit order is also available: byte = code[2j] << 4 | code[2j + 1].
#pragma once

#include "lowbit/core/config.hpp"
#include "lowbit/core/error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace lowbit {

enum class code_layout : std::uint8_t {
  bits,               // dense LSB-first bit stream of `bits`-wide codes
  base3,              // five ternary codes per byte
  nibbles_high_first, // 4-bit codes, the first of each pair in the high nibble (bitsandbytes)
};

// Bytes holding n codes of the given width in the given layout.
constexpr std::size_t packed_bytes(code_layout layout, int bits, std::size_t n) noexcept {
  if (layout == code_layout::base3) return (n + 4) / 5;
  if (layout == code_layout::nibbles_high_first) return (n + 1) / 2;
  return (n * static_cast<std::size_t>(bits) + 7) / 8;
}

namespace detail {

[[noreturn]] inline void pack_size_error(const char* what, std::size_t have, std::size_t need) {
  throw invalid_argument(std::string(what) + ": buffer of " + std::to_string(have) + " bytes, need " +
                         std::to_string(need));
}

// Always inlined, so that the compiler sees that a short buffer never reaches the loops after it
// (g++ -O2 -Warray-bounds otherwise flags them where a caller passes a short buffer on purpose).
LOWBIT_ALWAYS_INLINE inline void check_pack(const char* what, std::size_t have, std::size_t need) {
  if (have < need) pack_size_error(what, have, need);
}

// Base-3 bytes as their five ternary codes (least significant digit first), one per byte of a
// uint64; bytes >= 243 (corrupt) give no codes and the top bit set.
inline const std::array<std::uint64_t, 256>& base3_codes() noexcept {
  static const std::array<std::uint64_t, 256> tab = [] {
    std::array<std::uint64_t, 256> t{};
    for (unsigned b = 0; b < 256; ++b) {
      if (b >= 243) {
        t[b] = std::uint64_t{1} << 63;
        continue;
      }
      unsigned v = b;
      for (unsigned j = 0; j < 5; ++j, v /= 3) t[b] |= static_cast<std::uint64_t>(v % 3) << (8 * j);
    }
    return t;
  }();
  return tab;
}

} // namespace detail

// Packs codes (each < 2^bits, higher bits ignored) into out, which must hold
// packed_bytes(bits, codes.size()) bytes; unused trailing bits are zero.
inline void pack_codes(code_layout layout, int bits, std::span<const std::uint8_t> codes, std::span<std::uint8_t> out) {
  const std::size_t n = codes.size(), need = packed_bytes(layout, bits, n);
  detail::check_pack("pack_codes: output", out.size(), need);
  if (layout == code_layout::base3) {
    for (std::size_t byte = 0; byte < need; ++byte) {
      unsigned v = 0;
      for (std::size_t j = 5; j-- > 0;) {
        const std::size_t i = byte * 5 + j;
        v = v * 3 + (i < n ? (codes[i] > 2 ? 2u : codes[i]) : 0u);
      }
      out[byte] = static_cast<std::uint8_t>(v);
    }
    return;
  }
  if (layout == code_layout::nibbles_high_first) {
    for (std::size_t b = 0; b < need; ++b) {
      const unsigned hi = codes[2 * b] & 0xFu, lo = 2 * b + 1 < n ? codes[2 * b + 1] & 0xFu : 0u;
      out[b] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return;
  }
  if (bits == 8) {
    for (std::size_t i = 0; i < n; ++i) out[i] = codes[i];
    return;
  }
  const unsigned mask = (1u << bits) - 1;
  for (std::size_t b = 0; b < need; ++b) out[b] = 0;
  std::size_t bit = 0;
  for (std::size_t i = 0; i < n; ++i, bit += static_cast<std::size_t>(bits)) {
    const unsigned v = (codes[i] & mask) << (bit % 8);
    out[bit / 8] = static_cast<std::uint8_t>(out[bit / 8] | (v & 0xFFu));
    if (v >> 8) out[bit / 8 + 1] = static_cast<std::uint8_t>(out[bit / 8 + 1] | (v >> 8));
  }
}

// Unpacks n = codes.size() codes. A base-3 byte >= 243 throws lowbit::error (corrupt data).
inline void unpack_codes(code_layout layout, int bits, std::span<const std::uint8_t> in,
                         std::span<std::uint8_t> codes) {
  const std::size_t n = codes.size(), need = packed_bytes(layout, bits, n);
  detail::check_pack("unpack_codes: input", in.size(), need);
  if (layout == code_layout::base3) {
    const auto& tab = detail::base3_codes();
    for (std::size_t byte = 0; byte < need; ++byte) {
      const std::uint64_t e = tab[in[byte]];
      if (e >> 63)
        throw error("unpack_codes: base-3 byte " + std::to_string(byte) + " is " + std::to_string(in[byte]) +
                    ", expected < 243 (corrupt data)");
      for (std::size_t j = 0; j < 5 && byte * 5 + j < n; ++j)
        codes[byte * 5 + j] = static_cast<std::uint8_t>(e >> (8 * j));
    }
    return;
  }
  if (layout == code_layout::nibbles_high_first) {
    for (std::size_t i = 0; i < n; ++i) codes[i] = static_cast<std::uint8_t>(i % 2 ? in[i / 2] & 0xF : in[i / 2] >> 4);
    return;
  }
  if (bits == 8) {
    for (std::size_t i = 0; i < n; ++i) codes[i] = in[i];
    return;
  }
  const unsigned mask = (1u << bits) - 1;
  std::size_t bit = 0;
  for (std::size_t i = 0; i < n; ++i, bit += static_cast<std::size_t>(bits)) {
    unsigned v = in[bit / 8] >> (bit % 8);
    if (bit % 8 + static_cast<std::size_t>(bits) > 8) v |= static_cast<unsigned>(in[bit / 8 + 1]) << (8 - bit % 8);
    codes[i] = static_cast<std::uint8_t>(v & mask);
  }
}

} // namespace lowbit
