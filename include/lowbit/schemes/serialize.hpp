// Serialization of a qmatrix to bytes and back. Format v1, little-endian:
//   offset 0  "LBQM" magic            offset 4  u16 version (1)     offset 6  u16 name length L
//   offset 8  u64 rows                offset 16 u64 cols            offset 24 f32 tensor scale
//   offset 28 u32 reserved (0)        offset 32 L bytes scheme name (scheme_name<S>())
//   then the code plane, the scale plane and the zero points, sizes implied by rows, cols and S;
//   with double quantization, then the fp32 second-level absmax values and the fp32 offset.
// Reading validates everything (magic, version, name, shape bounds, exact total size, codes the
// element does not define: base-3 bytes >= 243, 2-bit ternary code 3, zero points out of range) and throws
// lowbit::error with the offending field; it never reads past the buffer.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/schemes/qmatrix.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace lowbit {

// A stable, human-readable name of a scheme, built from its parts (used as its on-disk id).
template <scheme S>
std::string scheme_name() {
  static const char* gran[] = {"tensor", "row", "column", "group"};
  std::string n = std::string(format_name<typename S::element>) + "/" +
                  std::string(format_name<typename S::scale_format>) + "/" + gran[static_cast<int>(S::gran)];
  if (S::gran == granularity::group) n += std::to_string(S::block);
  if constexpr (requires { S::rule::rounding; }) {
    static const char* r[] = {"floor", "ceil", "nearest"};
    n += std::string("/pow2-") + r[static_cast<int>(S::rule::rounding)];
  } else if constexpr (S::has_zero_point) {
    n += "/minmax";
  } else if constexpr (S::has_tensor_scale) {
    n += "/absmax+tensor";
  } else if constexpr (std::is_same_v<typename S::element, ternary>) {
    n += "/absmean";
  } else if constexpr (std::is_same_v<typename S::rule, range_scale>) {
    n += "/range";
  } else {
    n += "/absmax";
  }
  if (S::layout == code_layout::base3) n += "/base3";
  if (S::layout == code_layout::nibbles_high_first) n += "/nibbles-high-first";
  if constexpr (S::scale_quant::enabled)
    n +=
        "/dq-" + std::string(format_name<typename S::scale_quant::codes>) + "-" + std::to_string(S::scale_quant::block);
  return n;
}

namespace detail {

template <class T>
void put(std::vector<std::uint8_t>& out, T v) {
  static_assert(std::endian::native == std::endian::little, "serialization assumes a little-endian host");
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}
template <class T>
T get(std::span<const std::uint8_t> in, std::size_t offset) {
  T v;
  std::memcpy(&v, in.data() + offset, sizeof(T));
  return v;
}

constexpr std::size_t header_bytes = 32;

} // namespace detail

template <scheme S>
std::vector<std::uint8_t> serialize(const qmatrix<S>& q) {
  const std::string name = scheme_name<S>();
  std::vector<std::uint8_t> out;
  out.reserve(detail::header_bytes + name.size() + q.storage_bytes());
  out.insert(out.end(), {'L', 'B', 'Q', 'M'});
  detail::put<std::uint16_t>(out, 1);
  detail::put<std::uint16_t>(out, static_cast<std::uint16_t>(name.size()));
  detail::put<std::uint64_t>(out, q.rows());
  detail::put<std::uint64_t>(out, q.cols());
  detail::put<float>(out, q.tensor_scale());
  detail::put<std::uint32_t>(out, 0);
  out.insert(out.end(), name.begin(), name.end());
  out.insert(out.end(), q.codes().begin(), q.codes().end());
  for (auto s : q.scales()) detail::put(out, s);
  out.insert(out.end(), q.zero_points().begin(), q.zero_points().end());
  if constexpr (qmatrix<S>::double_quantized) {
    for (float a : q.scale_absmax()) detail::put(out, a);
    detail::put(out, q.scale_offset());
  }
  return out;
}

template <scheme S>
qmatrix<S> deserialize(std::span<const std::uint8_t> in) {
  auto fail = [](const std::string& why) -> void { throw error("deserialize: " + why); };
  if (in.size() < detail::header_bytes)
    fail("buffer of " + std::to_string(in.size()) + " bytes is shorter than the 32-byte header");
  if (std::memcmp(in.data(), "LBQM", 4) != 0) fail("bad magic, expected \"LBQM\"");
  const auto version = detail::get<std::uint16_t>(in, 4);
  if (version != 1) fail("unsupported version " + std::to_string(version) + ", expected 1");
  const auto name_len = detail::get<std::uint16_t>(in, 6);
  const auto rows = detail::get<std::uint64_t>(in, 8), cols = detail::get<std::uint64_t>(in, 16);
  const auto tensor_scale = detail::get<float>(in, 24);
  if (detail::get<std::uint32_t>(in, 28) != 0) fail("reserved field is not zero");
  if (in.size() - detail::header_bytes < name_len) fail("truncated scheme name");
  const std::string name(reinterpret_cast<const char*>(in.data() + detail::header_bytes), name_len);
  if (name != scheme_name<S>())
    fail("scheme \"" + name + "\" does not match the requested \"" + scheme_name<S>() + "\"");
  if (rows == 0 || cols == 0 || rows > (std::uint64_t{1} << 32) || cols > (std::uint64_t{1} << 32) ||
      rows * cols > (std::uint64_t{1} << 40))
    fail("shape " + std::to_string(rows) + "x" + std::to_string(cols) + " is empty or too large");
  if (S::has_tensor_scale && !(std::isfinite(tensor_scale) && tensor_scale > 0))
    fail("tensor scale " + std::to_string(tensor_scale) + " is not a positive finite number");
  // Sizes from the shape alone, checked before anything is allocated.
  const std::size_t code_bytes = rows * qmatrix<S>::row_bytes_for(cols);
  const std::size_t scales = S::scale_count(rows, cols);
  const std::size_t scale_bytes = scales * sizeof(typename qmatrix<S>::scale_storage);
  const std::size_t zero_bytes = S::has_zero_point ? scales : 0;
  const std::size_t second_bytes =
      qmatrix<S>::double_quantized ? 4 * (qmatrix<S>::second_level_count(rows, cols) + 1) : 0;
  const std::size_t need = detail::header_bytes + name_len + code_bytes + scale_bytes + zero_bytes + second_bytes;
  if (in.size() != need)
    fail("buffer has " + std::to_string(in.size()) + " bytes, shape " + std::to_string(rows) + "x" +
         std::to_string(cols) + " of " + name + " needs " + std::to_string(need));
  qmatrix<S> q(rows, cols);
  std::size_t off = detail::header_bytes + name_len;
  auto take = [&](void* dst, std::size_t n) {
    if (n) std::memcpy(dst, in.data() + off, n); // (memcpy of 0 bytes from/to null is undefined)
    off += n;
  };
  take(q.codes().data(), q.codes().size());
  take(q.scales().data(), scale_bytes);
  take(q.zero_points().data(), q.zero_points().size());
  if constexpr (qmatrix<S>::double_quantized) {
    take(q.scale_absmax().data(), 4 * q.scale_absmax().size());
    float offset;
    take(&offset, 4);
    for (float a : q.scale_absmax())
      if (!(std::isfinite(a) && a >= 0)) fail("second-level scale " + std::to_string(a) + " is not finite and >= 0");
    if (!std::isfinite(offset)) fail("double-quantization offset is not finite");
    q.set_scale_offset(offset);
  }
  q.set_tensor_scale(tensor_scale);
  if constexpr (std::is_same_v<typename S::element, ternary>) {
    // Every code now: unpacking throws on a base-3 byte >= 243; a 2-bit code 3 has no value.
    // Padding columns too: kernels may read them.
    std::vector<std::uint8_t> row(q.padded_cols());
    for (std::size_t r = 0; r < q.rows(); ++r) {
      unpack_codes(S::layout, S::code_bits, q.row_codes(r), row);
      for (std::size_t c = 0; c < row.size(); ++c)
        if (row[c] > 2) fail("ternary code 3 (no value) at row " + std::to_string(r) + ", column " + std::to_string(c));
    }
  }
  if constexpr (S::has_zero_point) {
    for (auto z : q.zero_points())
      if (z > S::element::max_value) fail("zero point " + std::to_string(z) + " is out of the element's range");
  }
  return q;
}

} // namespace lowbit
