// GGUF (llama.cpp) tensors of the block types Q4_0, Q8_0 and IQ4_NL as lowbit qmatrices, and back.
// Each 32 weights of a row are one block: an fp16 scale d (little-endian) and 32 codes, value
// d * q, with q = nibble - 8 (Q4_0), q an int8 (Q8_0) or q = kvalues_iq4nl[nibble] (IQ4_NL). These
// are int4_group<32>, int8_group<32> and iq4_nl: the same values and the same scale codes, so the
// qmatrix decodes and multiplies exactly as llama.cpp's blocks do, whatever sign d has (its
// quantizers choose signed scales). Only the code order differs: GGUF keeps codes j and j + 16 of a
// block in byte j (low nibble, high nibble), lowbit codes 2i and 2i + 1 (schemes/packing.hpp), and
// Q4_0's nibble is lowbit's two's-complement INT4 code with the top bit flipped.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/schemes/qmatrix.hpp"
#include "lowbit/schemes/scheme.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace lowbit {

namespace gguf {

using q4_0 = int4_group<32>;   // GGML_TYPE_Q4_0
using q8_0 = int8_group<32>;   // GGML_TYPE_Q8_0
using iq4_nl = lowbit::iq4_nl; // GGML_TYPE_IQ4_NL

// The schemes with a GGUF block type.
template <class S>
concept block_type = std::is_same_v<S, q4_0> || std::is_same_v<S, q8_0> || std::is_same_v<S, iq4_nl>;

inline constexpr std::size_t block_weights = 32;
template <block_type S>
inline constexpr std::size_t block_bytes = 2 + (S::code_bits == 8 ? 32 : 16);

// Bytes of a rows x cols tensor; cols must be a multiple of 32 (GGUF's rule), else
// lowbit::invalid_argument. Sizes whose byte count overflows size_t also throw.
template <block_type S>
std::size_t tensor_bytes(std::size_t rows, std::size_t cols) {
  if (cols % block_weights != 0)
    throw invalid_argument("gguf: cols " + std::to_string(cols) + " is not a multiple of the block size 32");
  const std::size_t blocks = cols / block_weights;
  if (blocks != 0 && rows > std::numeric_limits<std::size_t>::max() / blocks / block_bytes<S>)
    throw invalid_argument("gguf: " + std::to_string(rows) + " x " + std::to_string(cols) + " is too large");
  return rows * blocks * block_bytes<S>;
}

namespace detail {

// GGUF nibble n (0-15) <-> the qmatrix's 4-bit code.
template <block_type S>
constexpr std::uint8_t code_of_nibble(unsigned n) noexcept {
  return static_cast<std::uint8_t>(std::is_same_v<S, q4_0> ? n ^ 8u : n);
}

} // namespace detail

// The qmatrix holding a GGUF tensor's bytes (rows x cols, row-major, each row's blocks in order).
// data.size() must be tensor_bytes<S>(rows, cols), else lowbit::invalid_argument. Every byte
// pattern is a valid tensor: a NaN or inf d makes its block decode to NaN or inf, as in llama.cpp.
template <block_type S>
qmatrix<S> from_gguf(std::span<const std::uint8_t> data, std::size_t rows, std::size_t cols) {
  const std::size_t need = tensor_bytes<S>(rows, cols);
  if (data.size() != need)
    throw invalid_argument("gguf: " + std::to_string(data.size()) + " bytes for a " + std::to_string(rows) + " x " +
                           std::to_string(cols) + " tensor, expected " + std::to_string(need));
  qmatrix<S> q(rows, cols);
  const std::size_t blocks = rows * (cols / block_weights);
  auto codes = q.codes();
  auto scales = q.scales();
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::uint8_t* in = data.data() + b * block_bytes<S>;
    scales[b] = static_cast<std::uint16_t>(in[0] | in[1] << 8);
    const std::uint8_t* qs = in + 2;
    if constexpr (S::code_bits == 8) {
      for (std::size_t j = 0; j < block_weights; ++j) codes[b * block_weights + j] = qs[j];
    } else {
      std::uint8_t* out = codes.data() + b * (block_weights / 2);
      for (std::size_t i = 0; i < block_weights / 2; ++i) { // codes 2i, 2i + 1 of the block
        const auto code = [&](std::size_t j) {
          return detail::code_of_nibble<S>(j < 16 ? qs[j] & 0x0Fu : static_cast<unsigned>(qs[j - 16] >> 4));
        };
        out[i] = static_cast<std::uint8_t>(code(2 * i) | code(2 * i + 1) << 4);
      }
    }
  }
  return q;
}

// The same, on bytes as std::byte (a mapped file, say).
template <block_type S>
qmatrix<S> from_gguf(std::span<const std::byte> data, std::size_t rows, std::size_t cols) {
  return from_gguf<S>(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()),
                      rows, cols);
}

// The GGUF bytes of q (the inverse of from_gguf, byte for byte). q.cols() must be a multiple of 32.
template <block_type S>
std::vector<std::uint8_t> to_gguf(const qmatrix<S>& q) {
  std::vector<std::uint8_t> data(tensor_bytes<S>(q.rows(), q.cols()));
  const std::size_t blocks = q.rows() * (q.cols() / block_weights);
  const auto codes = q.codes();
  const auto scales = q.scales();
  for (std::size_t b = 0; b < blocks; ++b) {
    std::uint8_t* out = data.data() + b * block_bytes<S>;
    out[0] = static_cast<std::uint8_t>(scales[b] & 0xFF);
    out[1] = static_cast<std::uint8_t>(scales[b] >> 8);
    std::uint8_t* qs = out + 2;
    if constexpr (S::code_bits == 8) {
      for (std::size_t j = 0; j < block_weights; ++j) qs[j] = codes[b * block_weights + j];
    } else {
      const std::uint8_t* in = codes.data() + b * (block_weights / 2);
      const auto code = [&](std::size_t j) { // code j of the block; the flip is its own inverse
        return detail::code_of_nibble<S>(j % 2 ? static_cast<unsigned>(in[j / 2] >> 4) : in[j / 2] & 0x0Fu);
      };
      for (std::size_t j = 0; j < 16; ++j) qs[j] = static_cast<std::uint8_t>(code(j) | code(j + 16) << 4);
    }
  }
  return data;
}

} // namespace gguf

} // namespace lowbit
