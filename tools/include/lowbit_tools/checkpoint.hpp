// The naming convention of quantized weights in a .safetensors file (format version 1, written
// by lowbit-quantize) and the loader that turns them back into lowbit::quantized_linear<S>.
// A weight W becomes the planes of its qmatrix, byte for byte as qmatrix.hpp lays them out:
//   W.codes          U8  [rows, row_bytes]   packed codes, one padded row per output channel
//   W.scales         U8 | F16 | BF16 | F32, [rows, groups] (group schemes) or [units]
//   W.zeros          U8, as W.scales         zero points (asymmetric schemes only)
//   W.tensor_scale   F32 []                  (schemes with a tensor scale: NVFP4)
//   W.scale_absmax   F32 [blocks], W.scale_offset F32 []   (double quantization: NF4-DQ)
//   W.hadamard_signs I8  [cols]              (+-1; Hadamard policy with random signs)
//   W.input_permutation U32 [cols]           (GPTQ act-order over groups: x'_j = x[perm[j]])
// and the metadata key "lowbit.W" holds a JSON object: scheme alias and scheme_name id, rows,
// cols, source dtype, policy, and the input transform steps in order. The loader checks every
// plane's dtype and shape, then rebuilds the qmatrix through lowbit::deserialize, so a file is
// validated exactly as a serialized qmatrix is; errors throw lowbit::error naming the tensor.
#pragma once

#include "lowbit/core/error.hpp"
#include "lowbit/quantizers/pipeline.hpp"
#include "lowbit/schemes/serialize.hpp"
#include "lowbit_tools/json.hpp"
#include "lowbit_tools/safetensors.hpp"
#include "lowbit_tools/schemes.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace lowbit::tools {

// Metadata: "lowbit.<weight>" per quantized weight, and the format version under its own key.
inline constexpr std::string_view metadata_prefix = "lowbit.";
inline constexpr std::string_view format_key = "lowbit_format";
inline constexpr std::string_view format_version = "1";

// One step of a weight's input transform, as recorded in the metadata.
struct input_step {
  enum class kind : std::uint8_t { hadamard, gather } op = kind::hadamard;
  std::uint64_t seed = 0;  // hadamard: random-sign seed (0: no signs)
  std::uint64_t block = 0; // hadamard: block size
  std::string tensor;      // the signs (hadamard with seed) or the permutation (gather); may be empty
};

// What the metadata says about one quantized weight.
struct quantized_entry {
  std::string name;      // the weight's name in the source checkpoint
  std::string scheme;    // tool alias, e.g. "mxfp4"
  std::string scheme_id; // lowbit::scheme_name<S>()
  std::uint64_t rows = 0, cols = 0;
  std::string source_dtype; // F32, F16 or BF16
  std::string policy;       // rtn, rtn-mse, hadamard, gptq
  std::string pipeline;     // the library's pipeline name, e.g. "hadamard + rtn/absmax"
  std::vector<input_step> input;
};

inline std::string metadata_key(std::string_view weight) { return std::string(metadata_prefix) + std::string(weight); }

// The entry as the JSON string stored under metadata_key(name).
inline std::string to_json(const quantized_entry& e) {
  std::string s = "{\"scheme\":" + json_quote(e.scheme) + ",\"scheme_id\":" + json_quote(e.scheme_id) +
                  ",\"rows\":" + std::to_string(e.rows) + ",\"cols\":" + std::to_string(e.cols) +
                  ",\"source_dtype\":" + json_quote(e.source_dtype) + ",\"policy\":" + json_quote(e.policy) +
                  ",\"pipeline\":" + json_quote(e.pipeline) + ",\"input\":[";
  for (std::size_t i = 0; i < e.input.size(); ++i) {
    const input_step& st = e.input[i];
    s += i ? "," : "";
    if (st.op == input_step::kind::hadamard)
      s += "{\"op\":\"hadamard\",\"seed\":" + std::to_string(st.seed) + ",\"block\":" + std::to_string(st.block) +
           ",\"signs\":" + json_quote(st.tensor) + "}";
    else
      s += "{\"op\":\"gather\",\"index\":" + json_quote(st.tensor) + "}";
  }
  return s + "]}";
}

namespace detail {

[[noreturn]] inline void fail(std::string_view weight, const std::string& why) {
  throw lowbit::error("quantized weight \"" + std::string(weight) + "\": " + why);
}

inline const json_value& member(std::string_view weight, const json_value& o, std::string_view key,
                                json_value::kind k) {
  const json_value* v = o.find(key);
  if (!v || !v->is(k)) fail(weight, "metadata field \"" + std::string(key) + "\" is missing or of the wrong type");
  return *v;
}
inline std::uint64_t member_u64(std::string_view weight, const json_value& o, std::string_view key) {
  std::uint64_t x;
  if (!member(weight, o, key, json_value::kind::number).as_u64(x))
    fail(weight, "metadata field \"" + std::string(key) + "\" is not a non-negative integer");
  return x;
}

// Scale-plane dtype of a scheme: its storage, as the closest safetensors dtype.
template <scheme S>
constexpr dtype scale_dtype() {
  using st = typename qmatrix<S>::scale_storage;
  if constexpr (sizeof(st) == 1)
    return dtype::U8;
  else if constexpr (std::is_same_v<typename S::scale_format, fp16>)
    return dtype::F16;
  else if constexpr (std::is_same_v<typename S::scale_format, bf16>)
    return dtype::BF16;
  else {
    static_assert(sizeof(st) == 4, "scale storage of 1, 2 (fp16 / bf16) or 4 (fp32) bytes");
    return dtype::F32;
  }
}

// Shape limits of lowbit::deserialize, checked before any size is computed from them.
inline void check_dims(std::string_view weight, std::uint64_t rows, std::uint64_t cols) {
  if (rows == 0 || cols == 0 || rows > (std::uint64_t{1} << 32) || cols > (std::uint64_t{1} << 32) ||
      rows * cols > (std::uint64_t{1} << 40))
    fail(weight, "shape " + std::to_string(rows) + "x" + std::to_string(cols) + " is empty or too large");
}

} // namespace detail

// The tensors that hold a quantized weight, in the order they are written (see the top).
template <scheme S>
std::vector<tensor_spec> planes_of(const quantized_entry& e) {
  detail::check_dims(e.name, e.rows, e.cols);
  const std::size_t rows = e.rows, cols = e.cols;
  std::vector<std::uint64_t> scale_shape;
  if constexpr (S::gran == granularity::group)
    scale_shape = {rows, S::padded_cols(cols) / S::block};
  else
    scale_shape = {S::scale_count(rows, cols)};
  std::vector<tensor_spec> p{{e.name + ".codes", dtype::U8, {rows, qmatrix<S>::row_bytes_for(cols)}},
                             {e.name + ".scales", detail::scale_dtype<S>(), scale_shape}};
  if constexpr (S::has_zero_point) p.push_back({e.name + ".zeros", dtype::U8, scale_shape});
  if constexpr (S::has_tensor_scale) p.push_back({e.name + ".tensor_scale", dtype::F32, {}});
  if constexpr (qmatrix<S>::double_quantized) {
    p.push_back({e.name + ".scale_absmax", dtype::F32, {qmatrix<S>::second_level_count(rows, cols)}});
    p.push_back({e.name + ".scale_offset", dtype::F32, {}});
  }
  for (const input_step& st : e.input) {
    if (st.tensor.empty()) continue;
    if (st.op == input_step::kind::hadamard)
      p.push_back({st.tensor, dtype::I8, {cols}});
    else
      p.push_back({st.tensor, dtype::U32, {cols}});
  }
  return p;
}

// Parses the metadata of weight `name` (throws when it has none or it is malformed).
inline quantized_entry read_entry(const safetensors_view& f, std::string_view name) {
  const std::string* text = f.metadata(metadata_key(name));
  if (!text) detail::fail(name, "no metadata key \"" + metadata_key(name) + "\"");
  const std::string* version = f.metadata(format_key);
  if (!version || *version != format_version)
    detail::fail(name, "metadata \"" + std::string(format_key) + "\" is " +
                           (version ? "\"" + *version + "\"" : std::string("missing")) + ", expected \"" +
                           std::string(format_version) + "\"");
  const json_value o = json_parser::parse(*text, "metadata of \"" + std::string(name) + "\"");
  if (!o.is(json_value::kind::object)) detail::fail(name, "metadata is not a JSON object");
  using k = json_value::kind;
  quantized_entry e;
  e.name = name;
  e.scheme = detail::member(name, o, "scheme", k::string).text();
  e.scheme_id = detail::member(name, o, "scheme_id", k::string).text();
  e.rows = detail::member_u64(name, o, "rows");
  e.cols = detail::member_u64(name, o, "cols");
  detail::check_dims(name, e.rows, e.cols);
  e.source_dtype = detail::member(name, o, "source_dtype", k::string).text();
  e.policy = detail::member(name, o, "policy", k::string).text();
  e.pipeline = detail::member(name, o, "pipeline", k::string).text();
  for (const json_value& s : detail::member(name, o, "input", k::array).items()) {
    if (!s.is(k::object)) detail::fail(name, "an input step is not an object");
    input_step st;
    const std::string& op = detail::member(name, s, "op", k::string).text();
    if (op == "hadamard") {
      st.seed = detail::member_u64(name, s, "seed");
      st.block = detail::member_u64(name, s, "block");
      st.tensor = detail::member(name, s, "signs", k::string).text();
    } else if (op == "gather") {
      st.op = input_step::kind::gather;
      st.tensor = detail::member(name, s, "index", k::string).text();
      if (st.tensor.empty()) detail::fail(name, "a gather step names no index tensor");
    } else {
      detail::fail(name, "unknown input step \"" + op + "\"");
    }
    e.input.push_back(std::move(st));
  }
  return e;
}

// Every quantized weight of a file (from its metadata keys), in metadata order.
inline std::vector<quantized_entry> list_quantized(const safetensors_view& f) {
  std::vector<quantized_entry> out;
  for (const auto& [key, value] : f.metadata())
    if (key.starts_with(metadata_prefix))
      out.push_back(read_entry(f, std::string_view(key).substr(metadata_prefix.size())));
  return out;
}

// Loads weight `name` as scheme S: the packed weight and the input transform it needs, so that
// lowbit::linear(input(X), weight) computes the layer. Throws lowbit::error when the file says
// another scheme, or any plane is missing, of the wrong dtype or shape, or corrupt.
template <scheme S>
quantized_linear<S> load_quantized(const safetensors_view& f, std::string_view name) {
  const quantized_entry e = read_entry(f, name);
  if (e.scheme_id != scheme_name<S>())
    detail::fail(name, "is stored as \"" + e.scheme_id + "\", not the requested \"" + scheme_name<S>() + "\"");
  const std::vector<tensor_spec> planes = planes_of<S>(e);
  for (std::size_t i = 0; i < planes.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (planes[i].name == planes[j].name)
        detail::fail(name, "metadata names tensor \"" + planes[i].name + "\" twice");
  auto plane = [&](std::string_view plane_name) {
    for (const tensor_spec& s : planes)
      if (s.name == plane_name) {
        const tensor_info* t = f.find(s.name);
        if (!t) detail::fail(name, "tensor \"" + s.name + "\" is missing");
        if (t->type != s.type || t->shape != s.shape) {
          tensor_info want{s.name, s.type, s.shape, 0, 0};
          detail::fail(name, "tensor \"" + s.name + "\" is " + std::string(dtype_name(t->type)) + " " +
                                 t->shape_string() + ", expected " + std::string(dtype_name(s.type)) + " " +
                                 want.shape_string());
        }
        return f.data(*t);
      }
    return std::span<const std::uint8_t>{};
  };
  // Reassemble the lowbit::serialize form (serialize.hpp) and let deserialize validate it.
  const std::string id = scheme_name<S>();
  std::vector<std::uint8_t> bytes{'L', 'B', 'Q', 'M'};
  lowbit::detail::put<std::uint16_t>(bytes, 1);
  lowbit::detail::put<std::uint16_t>(bytes, static_cast<std::uint16_t>(id.size()));
  lowbit::detail::put<std::uint64_t>(bytes, e.rows);
  lowbit::detail::put<std::uint64_t>(bytes, e.cols);
  float tensor_scale = 1.0f;
  if constexpr (S::has_tensor_scale) std::memcpy(&tensor_scale, plane(e.name + ".tensor_scale").data(), 4);
  lowbit::detail::put<float>(bytes, tensor_scale);
  lowbit::detail::put<std::uint32_t>(bytes, 0);
  bytes.insert(bytes.end(), id.begin(), id.end());
  for (const char* p : {".codes", ".scales", ".zeros", ".scale_absmax", ".scale_offset"}) {
    const auto d = plane(e.name + p);
    bytes.insert(bytes.end(), d.begin(), d.end());
  }
  qmatrix<S> q;
  try {
    q = lowbit::deserialize<S>(bytes);
  } catch (const lowbit::error& ex) {
    detail::fail(name, ex.what());
  }
  quantized_linear<S> layer{std::move(q), input_transform(e.cols)};
  for (const input_step& st : e.input) {
    if (st.op == input_step::kind::hadamard) {
      if (st.block == 0 || st.block > e.cols || e.cols % st.block || (st.block & (st.block - 1)))
        detail::fail(name, "Hadamard block " + std::to_string(st.block) + " is not a power of two dividing " +
                               std::to_string(e.cols));
      hadamard_rotation q(e.cols, st.seed, st.block);
      if (!st.tensor.empty()) {
        const auto d = plane(st.tensor);
        if (d.size() != e.cols) detail::fail(name, "tensor \"" + st.tensor + "\" does not hold one sign per column");
        for (std::size_t i = 0; i < e.cols; ++i)
          if (static_cast<float>(static_cast<std::int8_t>(d[i])) != (q.randomized() ? q.signs()[i] : 1.0f))
            detail::fail(name, "tensor \"" + st.tensor + "\" does not hold the signs of seed " +
                                   std::to_string(st.seed) + " (element " + std::to_string(i) + ")");
      }
      layer.input.add_rotation(std::move(q));
    } else {
      const auto d = plane(st.tensor);
      if (d.size() != 4 * e.cols) detail::fail(name, "tensor \"" + st.tensor + "\" does not hold one index per column");
      std::vector<std::uint32_t> perm(e.cols);
      std::memcpy(perm.data(), d.data(), d.size());
      try {
        layer.input.add_gather(std::move(perm));
      } catch (const lowbit::error& ex) {
        detail::fail(name, "tensor \"" + st.tensor + "\": " + ex.what());
      }
    }
  }
  return layer;
}

// Loads weight `name` as whichever scheme its metadata names and calls f(layer) with the
// quantized_linear<S>; throws lowbit::error when the scheme is not one of schemes.hpp.
template <class F>
void visit_quantized(const safetensors_view& f, std::string_view name, F&& fn) {
  const quantized_entry e = read_entry(f, name);
  bool found = false;
  for_each_scheme([&]<class S>(std::string_view) {
    if (!found && scheme_name<S>() == e.scheme_id) {
      found = true;
      fn(load_quantized<S>(f, name));
    }
  });
  if (!found) detail::fail(name, "unknown scheme \"" + e.scheme_id + "\"");
}

// The weights in the original input coordinates, W_eff with X W_eff^T = input(X) dequantize(Q)^T:
// the dequantized matrix with every input step undone, last first.
template <scheme S>
std::vector<float> effective_weight(const quantized_linear<S>& layer) {
  std::vector<float> w = dequantize(layer.weight);
  const std::size_t rows = layer.weight.rows(), cols = layer.weight.cols();
  const auto& steps = layer.input.steps();
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (!it->gather.empty()) {
      std::vector<float> g(w.size());
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j) g[r * cols + it->gather[j]] = w[r * cols + j];
      w.swap(g);
    }
    if (it->rotate) it->rotate->apply_inverse_rows(w, rows);
    if (!it->divide.empty())
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j) w[r * cols + j] /= it->divide[j];
  }
  return w;
}

} // namespace lowbit::tools
