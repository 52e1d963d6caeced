// Reading and writing .safetensors files (the Hugging Face format): an 8-byte little-endian
// header length N, N bytes of a JSON object {name: {"dtype", "shape", "data_offsets": [begin,
// end]}, "__metadata__": {string: string}}, then the data section, offsets relative to its start.
// The reader validates strictly before anything is handed out: the header length against the
// file, the JSON, every dtype, shape and offset pair (shape product x dtype size == end - begin,
// overflow checked), and that the tensors tile the data section exactly, without overlap, gap or
// trailing bytes. Every violation throws lowbit::error naming the tensor and field; no read goes
// past the bytes given. The writer produces what the reader accepts (header padded to 8 bytes).
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "lowbit_tools/json.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lowbit::tools {

static_assert(std::endian::native == std::endian::little, "safetensors is little-endian; so must the host be");

enum class dtype : std::uint8_t {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  F64,
  I64,
  U64
};

struct dtype_info {
  std::string_view name;
  dtype type;
  std::size_t size;
};
inline constexpr std::array<dtype_info, 16> dtype_table = {{
    {"BOOL", dtype::BOOL, 1},
    {"U8", dtype::U8, 1},
    {"I8", dtype::I8, 1},
    {"F8_E5M2", dtype::F8_E5M2, 1},
    {"F8_E4M3", dtype::F8_E4M3, 1},
    {"F8_E8M0", dtype::F8_E8M0, 1},
    {"I16", dtype::I16, 2},
    {"U16", dtype::U16, 2},
    {"F16", dtype::F16, 2},
    {"BF16", dtype::BF16, 2},
    {"I32", dtype::I32, 4},
    {"U32", dtype::U32, 4},
    {"F32", dtype::F32, 4},
    {"F64", dtype::F64, 8},
    {"I64", dtype::I64, 8},
    {"U64", dtype::U64, 8},
}};

inline std::string_view dtype_name(dtype t) noexcept { return dtype_table[static_cast<std::size_t>(t)].name; }
inline std::size_t dtype_size(dtype t) noexcept { return dtype_table[static_cast<std::size_t>(t)].size; }
inline bool is_float_weight(dtype t) noexcept { return t == dtype::F32 || t == dtype::F16 || t == dtype::BF16; }

struct tensor_info {
  std::string name;
  dtype type = dtype::U8;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0, end = 0; // byte range in the data section

  std::uint64_t elements() const noexcept {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d; // validated not to overflow when read
    return n;
  }
  std::string shape_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(shape[i]);
    }
    return s + "]";
  }
};

// A validated view of a safetensors file held in memory (it does not own the bytes).
class safetensors_view {
public:
  static constexpr std::uint64_t max_header_bytes = std::uint64_t{100} << 20;

  safetensors_view() = default;
  explicit safetensors_view(std::span<const std::uint8_t> file) : file_(file) { parse(); }

  // Tensors in data-section order.
  const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }
  const tensor_info* find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }
  const tensor_info& at(std::string_view name) const {
    if (const tensor_info* t = find(name)) return *t;
    throw lowbit::error("safetensors: no tensor named \"" + std::string(name) + "\"");
  }
  std::span<const std::uint8_t> data(const tensor_info& t) const noexcept {
    return data_.subspan(static_cast<std::size_t>(t.begin), static_cast<std::size_t>(t.end - t.begin));
  }
  const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept { return metadata_; }
  const std::string* metadata(std::string_view key) const noexcept {
    for (const auto& [k, v] : metadata_)
      if (k == key) return &v;
    return nullptr;
  }

  // The elements of an F32, F16 or BF16 tensor as floats (exact conversions).
  std::vector<float> to_float(const tensor_info& t) const {
    const auto bytes = data(t);
    std::vector<float> out(static_cast<std::size_t>(t.elements()));
    switch (t.type) {
    case dtype::F32:
      if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
      break;
    case dtype::F16:
    case dtype::BF16:
      for (std::size_t i = 0; i < out.size(); ++i) {
        const auto h = static_cast<std::uint16_t>(bytes[2 * i] | bytes[2 * i + 1] << 8);
        out[i] = t.type == dtype::F16 ? fp16::decode(h) : std::bit_cast<float>(std::uint32_t{h} << 16);
      }
      break;
    default:
      throw lowbit::error("safetensors: tensor \"" + t.name + "\" has dtype " + std::string(dtype_name(t.type)) +
                          ", expected F32, F16 or BF16");
    }
    return out;
  }

private:
  [[noreturn]] static void fail(const std::string& why) { throw lowbit::error("safetensors: " + why); }

  static std::uint64_t read_u64(const json_value& v, const std::string& what) {
    std::uint64_t x;
    if (!v.as_u64(x)) fail(what + " is not a non-negative integer below 2^64");
    return x;
  }

  void parse() {
    if (file_.size() < 8)
      fail("file has " + std::to_string(file_.size()) + " bytes, fewer than the 8-byte header length");
    std::uint64_t n;
    std::memcpy(&n, file_.data(), 8);
    const std::uint64_t rest = file_.size() - 8;
    if (n > max_header_bytes)
      fail("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_header_bytes) +
           " bytes");
    if (n > rest)
      fail("header length " + std::to_string(n) + " exceeds the " + std::to_string(rest) +
           " bytes that follow the length field (truncated file?)");
    const std::string_view header(reinterpret_cast<const char*>(file_.data() + 8), static_cast<std::size_t>(n));
    data_ = file_.subspan(8 + static_cast<std::size_t>(n));
    const json_value root = json_parser::parse(header, "safetensors header");
    if (!root.is(json_value::kind::object)) fail("the header is not a JSON object");
    for (std::size_t i = 0; i < root.keys().size(); ++i) {
      const std::string& key = root.keys()[i];
      const json_value& v = root.items()[i];
      if (key == "__metadata__")
        read_metadata(v);
      else
        tensors_.push_back(read_entry(key, v));
    }
    check_layout();
    std::sort(tensors_.begin(), tensors_.end(), [](const tensor_info& a, const tensor_info& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  void read_metadata(const json_value& v) {
    if (!v.is(json_value::kind::object)) fail("\"__metadata__\" is not an object");
    for (std::size_t i = 0; i < v.keys().size(); ++i) {
      if (!v.items()[i].is(json_value::kind::string))
        fail("\"__metadata__\" value of \"" + v.keys()[i] + "\" is not a string");
      metadata_.emplace_back(v.keys()[i], v.items()[i].text());
    }
  }

  tensor_info read_entry(const std::string& name, const json_value& v) const {
    const std::string where = "tensor \"" + name + "\"";
    if (!v.is(json_value::kind::object)) fail(where + " is not an object");
    for (const auto& k : v.keys())
      if (k != "dtype" && k != "shape" && k != "data_offsets") fail(where + " has an unknown field \"" + k + "\"");
    const json_value* dt = v.find("dtype");
    const json_value* shape = v.find("shape");
    const json_value* offsets = v.find("data_offsets");
    if (!dt || !shape || !offsets) fail(where + " needs \"dtype\", \"shape\" and \"data_offsets\"");
    tensor_info t;
    t.name = name;
    if (!dt->is(json_value::kind::string)) fail(where + ": dtype is not a string");
    const auto it =
        std::find_if(dtype_table.begin(), dtype_table.end(), [&](const dtype_info& d) { return d.name == dt->text(); });
    if (it == dtype_table.end()) fail(where + ": unknown dtype \"" + dt->text() + "\"");
    t.type = it->type;
    if (!shape->is(json_value::kind::array)) fail(where + ": shape is not an array");
    std::uint64_t elements = 1;
    bool zero = false;
    for (std::size_t i = 0; i < shape->items().size(); ++i) {
      const std::uint64_t d = read_u64(shape->items()[i], where + ": shape[" + std::to_string(i) + "]");
      t.shape.push_back(d);
      if (d == 0)
        zero = true;
      else if (!zero && elements > UINT64_MAX / d)
        fail(where + ": shape " + t.shape_string() + " overflows");
      else if (!zero)
        elements *= d;
    }
    if (zero) elements = 0;
    if (!offsets->is(json_value::kind::array) || offsets->items().size() != 2)
      fail(where + ": data_offsets is not an array of two integers");
    t.begin = read_u64(offsets->items()[0], where + ": data_offsets[0]");
    t.end = read_u64(offsets->items()[1], where + ": data_offsets[1]");
    if (t.begin > t.end)
      fail(where + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] end before begin");
    if (t.end > data_.size())
      fail(where + ": data_offsets end " + std::to_string(t.end) + " is past the data section of " +
           std::to_string(data_.size()) + " bytes (truncated file?)");
    const std::size_t size = dtype_size(t.type);
    if (elements > UINT64_MAX / size || elements * size != t.end - t.begin)
      fail(where + ": shape " + t.shape_string() + " of " + std::string(dtype_name(t.type)) + " needs " +
           (elements > UINT64_MAX / size ? std::string("more than 2^64") : std::to_string(elements * size)) +
           " bytes, data_offsets give " + std::to_string(t.end - t.begin));
    return t;
  }

  // The tensors must tile the data section: sorted by offset, each starts where the previous ends.
  void check_layout() const {
    std::vector<const tensor_info*> order;
    for (const auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const tensor_info* a, const tensor_info* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    std::uint64_t at = 0;
    const tensor_info* prev = nullptr;
    for (const tensor_info* t : order) {
      if (t->begin < at)
        fail("tensors \"" + prev->name + "\" and \"" + t->name + "\" overlap (bytes " + std::to_string(t->begin) +
             " to " + std::to_string(std::min(at, t->end)) + ")");
      if (t->begin > at)
        fail("bytes " + std::to_string(at) + " to " + std::to_string(t->begin) +
             " of the data section belong to no tensor (before \"" + t->name + "\")");
      at = t->end;
      prev = t;
    }
    if (at != data_.size())
      fail("the data section has " + std::to_string(data_.size() - at) +
           " bytes after the last tensor's end (offsets inconsistent with the file size)");
  }

  std::span<const std::uint8_t> file_, data_;
  std::vector<tensor_info> tensors_;
  std::map<std::string, std::size_t> index_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// A file mapped read-only into memory (POSIX mmap), so that large checkpoints are paged in on
// demand. Throws lowbit::error naming the path when it cannot be opened.
class mapped_file {
public:
  explicit mapped_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw lowbit::error("cannot open \"" + path + "\": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw lowbit::error("\"" + path + "\" is not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        throw lowbit::error("cannot map \"" + path + "\": " + std::strerror(e));
      }
      data_ = static_cast<const std::uint8_t*>(p);
    }
    ::close(fd);
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() {
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  }
  std::span<const std::uint8_t> bytes() const noexcept { return {data_, size_}; }

private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// A safetensors file on disk, mapped and validated.
class safetensors_file {
public:
  explicit safetensors_file(const std::string& path) : map_(path) {
    try {
      view_ = safetensors_view(map_.bytes());
    } catch (const lowbit::error& e) {
      throw lowbit::error(path + ": " + e.what());
    }
  }
  const safetensors_view& view() const noexcept { return view_; }

private:
  mapped_file map_;
  safetensors_view view_;
};

struct tensor_spec {
  std::string name;
  dtype type = dtype::U8;
  std::vector<std::uint64_t> shape;
  std::uint64_t bytes() const noexcept {
    std::uint64_t n = dtype_size(type);
    for (auto d : shape) n *= d;
    return n;
  }
};

// Writes a safetensors file to a stream: the header for all tensors first (so their sizes must be
// known up front), then each tensor's bytes with write(), in the order given.
class safetensors_writer {
public:
  safetensors_writer(std::ostream& out, std::vector<tensor_spec> specs,
                     const std::vector<std::pair<std::string, std::string>>& metadata)
      : out_(out), specs_(std::move(specs)) {
    std::map<std::string, int> seen;
    for (const auto& s : specs_)
      if (s.name == "__metadata__" || !seen.emplace(s.name, 0).second)
        throw lowbit::invalid_argument("safetensors_writer: tensor name \"" + s.name + "\" is reserved or repeated");
    std::string h = "{";
    if (!metadata.empty()) {
      h += "\"__metadata__\":{";
      for (std::size_t i = 0; i < metadata.size(); ++i) {
        if (i) h += ',';
        h += json_quote(metadata[i].first);
        h += ':';
        h += json_quote(metadata[i].second);
      }
      h += "}";
    }
    std::uint64_t at = 0;
    for (std::size_t i = 0; i < specs_.size(); ++i) {
      const auto& s = specs_[i];
      if (i || !metadata.empty()) h += ',';
      h += json_quote(s.name);
      h += ":{\"dtype\":\"";
      h += dtype_name(s.type);
      h += "\",\"shape\":[";
      for (std::size_t d = 0; d < s.shape.size(); ++d) {
        if (d) h += ',';
        h += std::to_string(s.shape[d]);
      }
      h += "],\"data_offsets\":[" + std::to_string(at) + "," + std::to_string(at + s.bytes()) + "]}";
      at += s.bytes();
    }
    h += "}";
    h.append((8 - h.size() % 8) % 8, ' ');
    const std::uint64_t n = h.size();
    out_.write(reinterpret_cast<const char*>(&n), 8);
    out_.write(h.data(), static_cast<std::streamsize>(h.size()));
    check_stream();
  }

  // The bytes of the next tensor.
  void write(std::span<const std::uint8_t> bytes) {
    if (next_ >= specs_.size()) throw lowbit::invalid_argument("safetensors_writer: more tensors than declared");
    const tensor_spec& s = specs_[next_];
    if (bytes.size() != s.bytes())
      throw lowbit::invalid_argument("safetensors_writer: tensor \"" + s.name + "\" declared " +
                                     std::to_string(s.bytes()) + " bytes, got " + std::to_string(bytes.size()));
    out_.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    check_stream();
    ++next_;
  }
  template <class T>
  void write_values(std::span<const T> v) {
    write(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(v.data()), v.size_bytes()));
  }

  // Checks that every declared tensor was written.
  void finish() {
    if (next_ != specs_.size())
      throw lowbit::invalid_argument("safetensors_writer: " + std::to_string(specs_.size() - next_) +
                                     " declared tensors were not written");
    out_.flush();
    check_stream();
  }

private:
  void check_stream() const {
    if (!out_) throw lowbit::error("safetensors_writer: write failed (disk full?)");
  }

  std::ostream& out_;
  std::vector<tensor_spec> specs_;
  std::size_t next_ = 0;
};

} // namespace lowbit::tools
