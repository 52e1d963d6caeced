#include "lowbit_tools/checkpoint.hpp"
#include "lowbit_tools/quantize.hpp"
#include "lowbit_tools/safetensors.hpp"
#include "lowbit_tools/schemes.hpp"

#include "lowbit/quantizers/hadamard.hpp"
#include "lowbit/quantizers/rtn.hpp"
#include "lowbit/schemes/metrics.hpp"
#if LOWBIT_TOOLS_GPTQ
#include "lowbit/quantizers/gptq.hpp"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace lowbit::tools;
using bytes = std::vector<std::uint8_t>;
using meta = std::vector<std::pair<std::string, std::string>>;

struct tensor {
  std::string name;
  dtype type;
  std::vector<std::uint64_t> shape;
  bytes data;
  std::vector<float> values; // what a float tensor holds, exactly
};

// F16 bits of a value known to be exactly representable as a normal F16, computed from the
// definition (sign, biased exponent, 10-bit fraction) rather than by the library's encoder.
std::uint16_t f16_bits(float v) {
  if (v == 0) return 0;
  const int e = std::ilogb(v);
  const float frac = std::fabs(v) / std::ldexp(1.0f, e) - 1.0f; // in [0, 1)
  const auto m = static_cast<std::uint16_t>(frac * 1024.0f);
  EXPECT_EQ(static_cast<float>(m), frac * 1024.0f) << v << " is not an exact F16";
  return static_cast<std::uint16_t>((v < 0 ? 0x8000 : 0) | (e + 15) << 10 | m);
}
// BF16 bits: the top half of the float, which must have nothing in its bottom half.
std::uint16_t bf16_bits(float v) {
  const auto u = std::bit_cast<std::uint32_t>(v);
  EXPECT_EQ(u & 0xFFFF, 0u) << v << " is not an exact BF16";
  return static_cast<std::uint16_t>(u >> 16);
}

// A weight-like matrix (Gaussian with a few outliers), rounded to values the dtype holds exactly.
tensor weight(const std::string& name, dtype type, std::size_t rows, std::size_t cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  tensor t{name, type, {rows, cols}, {}, {}};
  for (std::size_t i = 0; i < rows * cols; ++i) {
    float v = nd(gen) * (i % 53 == 7 ? 4.0f : 1.0f);
    if (type == dtype::F16) v = std::clamp(std::round(v * 128.0f), -1023.0f, 1023.0f) / 128.0f; // 11 bits
    if (type == dtype::BF16) v = std::clamp(std::round(v * 32.0f), -255.0f, 255.0f) / 32.0f;    // 8 bits
    t.values.push_back(v);
    if (type == dtype::F32) {
      const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
      t.data.insert(t.data.end(), p, p + 4);
    } else {
      const std::uint16_t h = type == dtype::F16 ? f16_bits(v) : bf16_bits(v);
      t.data.push_back(static_cast<std::uint8_t>(h & 0xFF));
      t.data.push_back(static_cast<std::uint8_t>(h >> 8));
    }
  }
  return t;
}

tensor raw(const std::string& name, dtype type, std::vector<std::uint64_t> shape) {
  std::uint64_t n = dtype_size(type);
  for (auto d : shape) n *= d;
  bytes data(n);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 37 + 11);
  return {name, type, std::move(shape), std::move(data), {}};
}

std::string encode(const std::vector<tensor>& ts, const meta& m = {}) {
  std::vector<tensor_spec> specs;
  for (const auto& t : ts) specs.push_back({t.name, t.type, t.shape});
  std::ostringstream out;
  safetensors_writer w(out, specs, m);
  for (const auto& t : ts) w.write(t.data);
  w.finish();
  return out.str();
}

safetensors_view view(const std::string& s) {
  return safetensors_view({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

// The default test model: one weight per source dtype, column counts that leave partial groups.
std::vector<tensor> model() {
  return {weight("layers.0.q.weight", dtype::F32, 24, 160, 1), weight("layers.0.up.weight", dtype::BF16, 16, 96, 2),
          weight("layers.0.down.weight", dtype::F16, 8, 64, 3)};
}

struct result {
  std::string file;
  std::vector<tensor_report> reports;
};

result quantize(const std::string& input, const quantize_options& opt) {
  std::ostringstream out;
  auto reports = quantize_checkpoint(view(input), out, opt);
  return {out.str(), std::move(reports)};
}

template <lowbit::scheme S>
void expect_same_qmatrix(const lowbit::qmatrix<S>& a, const lowbit::qmatrix<S>& b, const std::string& what) {
  ASSERT_EQ(a.rows(), b.rows()) << what;
  ASSERT_EQ(a.cols(), b.cols()) << what;
  EXPECT_TRUE(std::ranges::equal(a.codes(), b.codes())) << what << ": codes differ";
  EXPECT_EQ(std::memcmp(a.scales().data(), b.scales().data(), a.scales().size_bytes()), 0) << what << ": scales";
  EXPECT_TRUE(std::ranges::equal(a.zero_points(), b.zero_points())) << what << ": zero points";
  EXPECT_EQ(std::bit_cast<std::uint32_t>(a.tensor_scale()), std::bit_cast<std::uint32_t>(b.tensor_scale())) << what;
  EXPECT_TRUE(std::ranges::equal(a.scale_absmax(), b.scale_absmax())) << what << ": second-level scales";
  EXPECT_EQ(std::bit_cast<std::uint32_t>(a.scale_offset()), std::bit_cast<std::uint32_t>(b.scale_offset())) << what;
}

const tensor_report& report_of(const result& r, const std::string& name) {
  for (const auto& rep : r.reports)
    if (rep.name == name) return rep;
  throw std::runtime_error("no report for " + name);
}

template <class F>
void expect_error(F&& f, const std::string& why) {
  try {
    f();
    ADD_FAILURE() << "no error, expected: " << why;
  } catch (const lowbit::error& e) {
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

TEST(tools_quantize, scheme_registry_is_unambiguous) {
  std::set<std::string> aliases, ids;
  std::size_t n = 0;
  for_each_scheme([&]<class S>(std::string_view alias) {
    ++n;
    aliases.emplace(alias);
    ids.insert(lowbit::scheme_name<S>());
  });
  EXPECT_GE(n, 15u);
  EXPECT_EQ(aliases.size(), n);
  EXPECT_EQ(ids.size(), n); // visit_quantized dispatches on the id
}

TEST(tools_quantize, rtn_round_trip_is_bit_exact_for_every_scheme) {
  const std::vector<tensor> src = model();
  const std::string input = encode(src);
  for_each_scheme([&]<class S>(std::string_view alias) {
    SCOPED_TRACE(std::string(alias));
    quantize_options opt;
    opt.scheme = alias;
    const result r = quantize(input, opt);
    const safetensors_view out = view(r.file);
    ASSERT_EQ(list_quantized(out).size(), src.size());
    for (const tensor& t : src) {
      const std::size_t rows = t.shape[0], cols = t.shape[1];
      const auto direct = lowbit::quantize<S>(t.values, rows, cols);
      const auto layer = load_quantized<S>(out, t.name);
      expect_same_qmatrix(layer.weight, direct, t.name);
      EXPECT_TRUE(layer.input.identity());
      // The reported error is that of the library's own quantization of the source values.
      const tensor_report& rep = report_of(r, t.name);
      const auto m = lowbit::measure_error(t.values, lowbit::dequantize(direct));
      EXPECT_EQ(rep.error.sqnr_db, m.sqnr_db);
      EXPECT_EQ(rep.error.max_abs_error, m.max_abs_error);
      EXPECT_EQ(rep.bits_per_weight, direct.bits_per_weight());
      EXPECT_TRUE(rep.quantized);
      const quantized_entry e = read_entry(out, t.name);
      EXPECT_EQ(e.scheme, alias);
      EXPECT_EQ(e.scheme_id, lowbit::scheme_name<S>());
      EXPECT_EQ(e.rows, rows);
      EXPECT_EQ(e.cols, cols);
      EXPECT_EQ(e.source_dtype, dtype_name(t.type));
      EXPECT_EQ(e.policy, "rtn");
      bool visited = false;
      visit_quantized(out, t.name, [&]<class Q>(const lowbit::quantized_linear<Q>& l) {
        visited = std::is_same_v<Q, S>;
        EXPECT_EQ(lowbit::measure_error(t.values, effective_weight(l)).sqnr_db, m.sqnr_db);
      });
      EXPECT_TRUE(visited);
    }
  });
}

TEST(tools_quantize, planes_follow_the_naming_convention) {
  const std::string input = encode({weight("w", dtype::F32, 5, 300, 4)});
  auto planes = [&](const std::string& scheme) {
    quantize_options opt;
    opt.scheme = scheme;
    opt.include = "";
    const std::string file = quantize(input, opt).file;
    const safetensors_view v = view(file);
    std::vector<std::string> got;
    for (const auto& t : v.tensors())
      got.push_back(t.name + " " + std::string(dtype_name(t.type)) + " " + t.shape_string());
    std::sort(got.begin(), got.end());
    return got;
  };
  // 300 columns: 3 groups of 128 (two and a half, padded), 10 blocks of 32, 19 of 16, 5 of 64.
  EXPECT_EQ(planes("int4_g128"), (std::vector<std::string>{"w.codes U8 [5, 192]", "w.scales F16 [5, 3]"}));
  EXPECT_EQ(planes("int4_asym_g128"),
            (std::vector<std::string>{"w.codes U8 [5, 192]", "w.scales F16 [5, 3]", "w.zeros U8 [5, 3]"}));
  EXPECT_EQ(planes("mxfp4"), (std::vector<std::string>{"w.codes U8 [5, 160]", "w.scales U8 [5, 10]"}));
  EXPECT_EQ(planes("nvfp4"),
            (std::vector<std::string>{"w.codes U8 [5, 152]", "w.scales U8 [5, 19]", "w.tensor_scale F32 []"}));
  EXPECT_EQ(planes("nf4"), (std::vector<std::string>{"w.codes U8 [5, 160]", "w.scales F32 [5, 5]"}));
  EXPECT_EQ(planes("nf4_dq"), (std::vector<std::string>{"w.codes U8 [5, 160]", "w.scale_absmax F32 [1]",
                                                        "w.scale_offset F32 []", "w.scales U8 [5, 5]"}));
  EXPECT_EQ(planes("int8_row"), (std::vector<std::string>{"w.codes U8 [5, 300]", "w.scales F16 [5]"}));
  EXPECT_EQ(planes("ternary"), (std::vector<std::string>{"w.codes U8 [5, 75]", "w.scales F32 [1]"}));
  EXPECT_EQ(planes("ternary_base3"), (std::vector<std::string>{"w.codes U8 [5, 60]", "w.scales F32 [1]"}));
}

TEST(tools_quantize, copies_other_tensors_and_keeps_metadata) {
  std::vector<tensor> src = {weight("a.weight", dtype::F32, 4, 32, 5),   raw("a.bias", dtype::F32, {4}),
                             raw("norm.weight", dtype::BF16, {32}),      raw("ids.weight", dtype::I64, {2, 3}),
                             raw("empty.weight", dtype::F32, {0, 4}),    raw("conv.weight", dtype::F16, {2, 2, 3}),
                             weight("skip.weight", dtype::F32, 2, 32, 6)};
  quantize_options opt;
  opt.scheme = "mxfp4";
  opt.exclude = "^skip";
  const result r = quantize(encode(src, {{"format", "pt"}}), opt);
  const safetensors_view out = view(r.file);
  EXPECT_EQ(*out.metadata("format"), "pt");
  EXPECT_EQ(*out.metadata("lowbit_format"), "1");
  ASSERT_EQ(r.reports.size(), src.size());
  for (const tensor& t : src) {
    const tensor_report& rep = report_of(r, t.name);
    EXPECT_EQ(rep.quantized, t.name == "a.weight") << t.name;
    if (rep.quantized) continue;
    const tensor_info& o = out.at(t.name);
    EXPECT_EQ(o.type, t.type);
    EXPECT_EQ(o.shape, t.shape);
    EXPECT_TRUE(std::ranges::equal(out.data(o), t.data)) << t.name;
  }
  EXPECT_EQ(report_of(r, "a.bias").note, "not selected");
  EXPECT_EQ(report_of(r, "skip.weight").note, "not selected");
  EXPECT_EQ(report_of(r, "norm.weight").note, "1-D, not a matrix");
  EXPECT_EQ(report_of(r, "ids.weight").note, "dtype I64 is not F32/F16/BF16");
  EXPECT_EQ(report_of(r, "empty.weight").note, "empty");
  EXPECT_EQ(out.find("a.weight"), nullptr);
  EXPECT_EQ(list_quantized(out).size(), 1u);
}

TEST(tools_quantize, sqnr_grows_with_bits) {
  const std::string input = encode({weight("w.weight", dtype::F32, 32, 256, 7)});
  double last = -1e9;
  for (const char* s : {"int2_g64", "int3_g128", "int4_g128", "mxfp6_e2m3", "int8_g128"}) {
    quantize_options opt;
    opt.scheme = s;
    const double sqnr = quantize(input, opt).reports[0].error.sqnr_db;
    EXPECT_GT(sqnr, last) << s;
    last = sqnr;
  }
}

TEST(tools_quantize, rtn_mse_matches_the_library_with_and_without_calibration) {
  using S = lowbit::int4_group<32>;
  const std::vector<tensor> src = model();
  const std::string input = encode(src);
  // Calibration by each naming rule: the weight's name, the module name, and input.<cols>.
  tensor c_q = weight("layers.0.q.weight", dtype::F32, 10, 160, 11);
  tensor c_up = weight("layers.0.up", dtype::BF16, 6, 96, 12);
  tensor c_down = weight("input.64", dtype::F16, 7, 64, 13);
  const std::string calib = encode({c_q, c_up, c_down});
  const safetensors_view calib_view = view(calib);
  for (bool with_calib : {false, true}) {
    quantize_options opt;
    opt.scheme = "int4_g32";
    opt.policy = "rtn-mse";
    if (with_calib) opt.calib = &calib_view;
    const result r = quantize(input, opt);
    const safetensors_view out = view(r.file);
    for (std::size_t i = 0; i < src.size(); ++i) {
      const tensor& t = src[i];
      const tensor& c = i == 0 ? c_q : i == 1 ? c_up : c_down;
      std::vector<float> importance;
      if (with_calib) {
        lowbit::activation_stats st(t.shape[1]);
        st.observe(c.values, c.shape[0]);
        importance = st.importance();
        EXPECT_EQ(report_of(r, t.name).note, "calibration \"" + c.name + "\"");
      }
      const auto direct = lowbit::rtn_mse{}.quantize<S>(t.values, t.shape[0], t.shape[1], importance);
      expect_same_qmatrix(load_quantized<S>(out, t.name).weight, direct, t.name);
      EXPECT_EQ(read_entry(out, t.name).pipeline, "rtn/mse");
    }
  }
}

TEST(tools_quantize, hadamard_rotates_the_weights_and_records_the_rotation) {
  using S = lowbit::nf4_scheme<64>;
  const std::vector<tensor> src = model(); // 160 = 5 * 32 columns: blocks of 32; 96: 32; 64: 64
  for (std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{5}}) {
    quantize_options opt;
    opt.scheme = "nf4";
    opt.policy = "hadamard";
    opt.seed = seed;
    const result r = quantize(encode(src), opt);
    const safetensors_view out = view(r.file);
    for (const tensor& t : src) {
      const std::size_t rows = t.shape[0], cols = t.shape[1];
      const lowbit::hadamard_rotation q(cols, seed);
      std::vector<float> rotated = t.values;
      q.apply_rows(rotated, rows);
      const auto layer = load_quantized<S>(out, t.name);
      expect_same_qmatrix(layer.weight, lowbit::quantize<S>(rotated, rows, cols), t.name);
      ASSERT_EQ(layer.input.steps().size(), 1u);
      const auto& rot = layer.input.steps()[0].rotate;
      ASSERT_TRUE(rot.has_value());
      EXPECT_EQ(rot->block(), std::size_t{1} << std::countr_zero(cols));
      EXPECT_EQ(rot->randomized(), seed != 0);
      EXPECT_EQ(out.find(t.name + ".hadamard_signs") != nullptr, seed != 0);
      const quantized_entry e = read_entry(out, t.name);
      ASSERT_EQ(e.input.size(), 1u);
      EXPECT_EQ(e.input[0].seed, seed);
      // The error is measured in the original coordinates: dequantize, rotate back.
      std::vector<float> back = lowbit::dequantize(layer.weight);
      q.apply_inverse_rows(back, rows);
      const auto m = lowbit::measure_error(t.values, back);
      EXPECT_NEAR(report_of(r, t.name).error.sqnr_db, m.sqnr_db, 1e-9);
      EXPECT_GT(m.sqnr_db, 10.0);
      // And the layer computes X W^T: one token of ones.
      const std::vector<float> x(cols, 1.0f);
      const std::vector<float> y = layer.forward_reference(x, 1);
      for (std::size_t o = 0; o < rows; ++o) {
        double want = 0;
        for (std::size_t j = 0; j < cols; ++j) want += back[o * cols + j];
        EXPECT_NEAR(y[o], want, 1e-3) << t.name << " output " << o;
      }
    }
  }
}

#if LOWBIT_TOOLS_GPTQ
TEST(tools_quantize, gptq_matches_the_library_and_stores_the_permutation) {
  const std::vector<tensor> src = model();
  const tensor c_q = weight("layers.0.q", dtype::F32, 200, 160, 21);
  const tensor c_96 = weight("input.96", dtype::F32, 150, 96, 22);
  const tensor c_64 = weight("layers.0.down.weight", dtype::BF16, 120, 64, 23);
  const std::string calib = encode({c_q, c_96, c_64});
  const safetensors_view calib_view = view(calib);
  const auto check = [&]<class S>(const std::string& alias, bool act_order) {
    SCOPED_TRACE(alias + (act_order ? " act-order" : ""));
    quantize_options opt;
    opt.scheme = alias;
    opt.policy = "gptq";
    opt.act_order = act_order;
    opt.calib = &calib_view;
    const result r = quantize(encode(src), opt);
    const safetensors_view out = view(r.file);
    for (std::size_t i = 0; i < src.size(); ++i) {
      const tensor& t = src[i];
      const tensor& c = i == 0 ? c_q : i == 1 ? c_96 : c_64;
      lowbit::hessian h(t.shape[1]);
      h.add(c.values, c.shape[0]);
      lowbit::gptq_absmax g;
      g.options.act_order = act_order;
      const auto direct = g.quantize<S>(t.values, t.shape[0], t.shape[1], h);
      const auto layer = load_quantized<S>(out, t.name);
      expect_same_qmatrix(layer.weight, direct.weight, t.name);
      EXPECT_EQ(out.find(t.name + ".input_permutation") != nullptr, direct.permuted);
      if (direct.permuted) {
        ASSERT_EQ(layer.input.steps().size(), 1u);
        EXPECT_EQ(layer.input.steps()[0].gather, direct.permutation);
      } else {
        EXPECT_TRUE(layer.input.identity());
      }
      EXPECT_EQ(effective_weight(layer), direct.dequantize_original());
      EXPECT_EQ(report_of(r, t.name).error.sqnr_db,
                lowbit::measure_error(t.values, direct.dequantize_original()).sqnr_db);
    }
  };
  check.operator()<lowbit::int4_group<32>>("int4_g32", true);
  check.operator()<lowbit::int4_group<32>>("int4_g32", false);
  check.operator()<lowbit::int_sym<8, 128, lowbit::fp16, lowbit::granularity::row>>("int8_row", true);
  check.operator()<lowbit::nvfp4>("nvfp4", true);
}
#endif

TEST(tools_quantize, refuses_bad_options_before_writing_anything) {
  const std::string input = encode(model());
  const std::string calib = encode({weight("input.160", dtype::F32, 4, 160, 1)});
  const safetensors_view calib_view = view(calib);
  const auto refused = [&](quantize_options opt, const std::string& why) {
    std::ostringstream out;
    expect_error([&] { quantize_checkpoint(view(input), out, opt); }, why);
    EXPECT_TRUE(out.str().empty()) << why;
  };
  quantize_options opt;
  opt.scheme = "int5";
  refused(opt, "unknown scheme \"int5\"; known: mxfp4");
  opt.scheme = "mxfp4";
  opt.policy = "awq";
  refused(opt, "unknown policy \"awq\"");
  opt.policy = "rtn";
  opt.include = "(";
  refused(opt, "--include \"(\" is not a valid regular expression");
  opt.include = "\\.weight$";
  opt.calib = &calib_view;
  refused(opt, "--calib is used by the gptq and rtn-mse policies only");
  opt.policy = "rtn-mse";
  refused(opt, "no calibration tensor for \"layers.0.up.weight\": expected one named \"layers.0.up.weight\", "
               "\"layers.0.up\" or \"input.96\"");
  opt.calib = nullptr;
  opt.policy = "gptq";
#if LOWBIT_TOOLS_GPTQ
  refused(opt, "needs calibration activations");
  const std::string wrong_k =
      encode({weight("input.160", dtype::F32, 4, 160, 1), weight("input.96", dtype::F32, 4, 32, 1),
              weight("input.64", dtype::F32, 4, 64, 1)});
  const safetensors_view wrong_k_view = view(wrong_k);
  opt.calib = &wrong_k_view;
  refused(opt, "calibration tensor \"input.96\" for \"layers.0.up.weight\" is F32 [4, 32]");
  const std::string mismatch =
      encode({weight("input.160", dtype::F32, 4, 160, 1), weight("layers.0.up", dtype::F32, 4, 32, 1),
              weight("input.64", dtype::F32, 4, 64, 1)});
  const safetensors_view mismatch_view = view(mismatch);
  opt.calib = &mismatch_view;
  refused(opt, "calibration tensor \"layers.0.up\" for \"layers.0.up.weight\" is F32 [4, 32], expected F32/F16/BF16 "
               "[tokens, 96]");
  opt.damp = 0;
  refused(opt, "--damp");
#else
  refused(opt, "no GPTQ");
#endif
}

TEST(tools_quantize, refuses_inputs_it_cannot_quantize) {
  quantize_options opt;
  opt.scheme = "int4_g128";
  // An already quantized file, and a tensor named like a plane of another.
  const std::string once = quantize(encode(model()), opt).file;
  expect_error([&] { quantize(once, opt); }, "already holds lowbit-quantized weights");
  expect_error(
      [&] {
        quantize(encode({weight("a.weight", dtype::F32, 2, 8, 1), raw("a.weight.codes", dtype::U8, {4})}), opt);
      },
      "output tensor name \"a.weight.codes\" would occur twice");
  // A non-finite weight: named, with the element.
  tensor bad = weight("bad.weight", dtype::F32, 2, 8, 1);
  const float inf = INFINITY;
  std::memcpy(bad.data.data() + 4 * 9, &inf, 4);
  expect_error([&] { quantize(encode({bad}), opt); }, "tensor \"bad.weight\": quantize: element (1, 1) is inf");
}

// Rebuilds a file with edited tensors or metadata.
std::string rebuild(const std::string& file, const std::function<void(std::vector<tensor>&, meta&)>& edit) {
  const safetensors_view v = view(file);
  std::vector<tensor> ts;
  for (const auto& t : v.tensors()) {
    const auto d = v.data(t);
    ts.push_back({t.name, t.type, t.shape, bytes(d.begin(), d.end()), {}});
  }
  meta m = v.metadata();
  edit(ts, m);
  return encode(ts, m);
}

tensor& find(std::vector<tensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

std::string& entry(meta& m, const std::string& key) {
  for (auto& [k, v] : m)
    if (k == key) return v;
  throw std::runtime_error("no metadata " + key);
}

TEST(tools_quantize, loader_rejects_inconsistent_files) {
  const std::string input = encode({weight("w", dtype::F32, 4, 100, 9)});
  quantize_options opt;
  opt.include = "";
  opt.scheme = "int4_asym_g128";
  const std::string asym = quantize(input, opt).file;
  using A = lowbit::int_asym<4, 128>;
  EXPECT_NO_THROW(load_quantized<A>(view(asym), "w"));
  const auto load_a = [&](const std::string& f) { return [f] { (void)load_quantized<A>(view(f), "w"); }; };
  expect_error([&] { (void)load_quantized<lowbit::mxfp4>(view(asym), "w"); },
               "is stored as \"uint4/fp16/group128/minmax\", not the requested \"fp4_e2m1/e8m0/group32/pow2-floor\"");
  expect_error([&] { (void)load_quantized<A>(view(asym), "v"); }, "no metadata key \"lowbit.v\"");
  expect_error(load_a(rebuild(asym, [](auto& ts, auto&) { ts.erase(ts.begin() + 1); })),
               "tensor \"w.scales\" is missing");
  expect_error(load_a(rebuild(asym, [](auto& ts, auto&) { find(ts, "w.zeros").data[3] = 200; })),
               "zero point 200 is out of the element's range");
  expect_error(load_a(rebuild(asym, [](auto& ts, auto&) { find(ts, "w.zeros").type = dtype::I8; })),
               "tensor \"w.zeros\" is I8 [4, 1], expected U8 [4, 1]");
  expect_error(load_a(rebuild(asym,
                              [](auto&, auto& m) {
                                auto& j = entry(m, "lowbit.w");
                                j.replace(j.find("\"rows\":4"), 8, "\"rows\":5");
                              })),
               "tensor \"w.codes\" is U8 [4, 64], expected U8 [5, 64]");
  expect_error(load_a(rebuild(asym, [](auto&, auto& m) { entry(m, "lowbit.w") = "{\"scheme\":"; })), "invalid JSON");
  expect_error(load_a(rebuild(asym, [](auto&, auto& m) { entry(m, "lowbit_format") = "2"; })),
               "\"lowbit_format\" is \"2\", expected \"1\"");
  expect_error(load_a(rebuild(asym,
                              [](auto&, auto& m) {
                                auto& j = entry(m, "lowbit.w");
                                j.replace(j.find("\"input\":[]"), 10, "\"input\":[{\"op\":\"smooth\"}]");
                              })),
               "unknown input step \"smooth\"");

  opt.scheme = "ternary_base3";
  opt.policy = "hadamard";
  const std::string tern = quantize(input, opt).file;
  using T = lowbit::ternary_absmean_base3;
  const auto load_t = [&](const std::string& f) { return [f] { (void)load_quantized<T>(view(f), "w"); }; };
  EXPECT_NO_THROW(load_t(tern)());
  expect_error(load_t(rebuild(tern, [](auto& ts, auto&) { find(ts, "w.codes").data[5] = 250; })), "base-3 byte");
  expect_error(load_t(rebuild(tern,
                              [](auto& ts, auto&) {
                                auto& s = find(ts, "w.hadamard_signs").data[0];
                                s = static_cast<std::uint8_t>(-static_cast<std::int8_t>(s));
                              })),
               "does not hold the signs of seed 1 (element 0)");
  expect_error(load_t(rebuild(tern,
                              [](auto&, auto& m) {
                                auto& j = entry(m, "lowbit.w");
                                j.replace(j.find("\"block\":4"), 9, "\"block\":8");
                              })),
               "Hadamard block 8 is not a power of two dividing 100");

#if LOWBIT_TOOLS_GPTQ
  const std::string calib = encode({weight("input.100", dtype::F32, 50, 100, 2)});
  const safetensors_view calib_view = view(calib);
  opt.scheme = "int4_g32";
  opt.policy = "gptq";
  opt.act_order = true;
  opt.calib = &calib_view;
  const std::string g = quantize(input, opt).file;
  using G = lowbit::int4_group<32>;
  EXPECT_NO_THROW(load_quantized<G>(view(g), "w"));
  expect_error(
      [&] {
        (void)load_quantized<G>(view(rebuild(g,
                                             [](auto& ts, auto&) {
                                               auto& p = find(ts, "w.input_permutation").data;
                                               std::copy(p.begin(), p.begin() + 4, p.begin() + 4); // a repeated index
                                             })),
                                "w");
      },
      "not a permutation");
#endif
  // A step naming another plane: refused before any plane is read as the wrong thing.
  expect_error(load_a(rebuild(asym,
                              [](auto&, auto& m) {
                                auto& j = entry(m, "lowbit.w");
                                j.replace(j.find("\"input\":[]"), 10,
                                          "\"input\":[{\"op\":\"gather\",\"index\":\"w.codes\"}]");
                              })),
               "metadata names tensor \"w.codes\" twice");
}

// Every byte of a quantized file flipped, one at a time: reading and loading succeed or throw
// lowbit::error, never anything else (AddressSanitizer runs this too).
TEST(tools_quantize, flipped_bytes_never_crash_the_loader) {
  const std::string input = encode({weight("w", dtype::F32, 3, 40, 9), weight("v", dtype::BF16, 2, 16, 8)});
  for (const char* scheme : {"nf4_dq", "nvfp4", "ternary_base3"}) {
    quantize_options opt;
    opt.include = "";
    opt.scheme = scheme;
    opt.policy = "hadamard";
    const std::string file = quantize(input, opt).file;
    std::size_t loaded = 0;
    for (std::size_t i = 0; i < file.size(); ++i)
      for (std::uint8_t mask : {0x01, 0x80}) {
        std::string f = file;
        f[i] = static_cast<char>(f[i] ^ mask);
        const bytes exact(f.begin(), f.end());
        try {
          const safetensors_view v{std::span<const std::uint8_t>(exact)};
          for (const auto& e : list_quantized(v))
            visit_quantized(v, e.name, [&](const auto& layer) { loaded += effective_weight(layer).size() > 0; });
        } catch (const lowbit::error&) {
        }
      }
    EXPECT_GT(loaded, 0u) << scheme; // flips in the data section mostly still load
  }
}

// ---- the command line ----

std::string temp_path(const std::string& name) {
  return (std::filesystem::path(testing::TempDir()) / ("lowbit_tools_" + name)).string();
}

void save(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good());
}

struct cli_result {
  int rc;
  std::string out, err;
};
cli_result cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int rc = quantize_main(args, out, err, false);
  return {rc, out.str(), err.str()};
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

TEST(tools_quantize, cli_prints_the_table_and_the_file_loads_back) {
  const std::vector<tensor> src = model();
  const std::string input = encode(src);
  const std::string in = temp_path("cli_in.safetensors"), out = temp_path("cli_out.safetensors");
  save(in, input);
  std::remove(out.c_str());
  const cli_result r = cli({in, out, "--scheme", "mxfp4", "--policy=rtn"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(r.err.empty());
  quantize_options opt;
  opt.scheme = "mxfp4";
  const result expected = quantize(input, opt);
  for (const tensor_report& rep : expected.reports) {
    const auto line = r.out.find(rep.name + "  ");
    ASSERT_NE(line, std::string::npos) << r.out;
    const std::string row = r.out.substr(line, r.out.find('\n', line) - line);
    EXPECT_NE(row.find("mxfp4"), std::string::npos) << row;
    EXPECT_NE(row.find("4.250"), std::string::npos) << row;
    EXPECT_NE(row.find(" " + fixed(rep.error.sqnr_db) + " "), std::string::npos) << row;
    const std::string shape = "[" + std::to_string(rep.shape[0]) + ", " + std::to_string(rep.shape[1]) + "]";
    EXPECT_NE(row.find(shape), std::string::npos) << row;
  }
  EXPECT_NE(r.out.find("quantized 3 of 3 tensors"), std::string::npos) << r.out;
  // The file on disk is what the library function writes.
  std::ifstream f(out, std::ios::binary);
  const std::string written((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(written, expected.file);
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));

  const cli_result c = cli({"--check", out, "--reference", in});
  ASSERT_EQ(c.rc, 0) << c.err;
  for (const tensor_report& rep : expected.reports)
    EXPECT_NE(c.out.find(" " + fixed(rep.error.sqnr_db) + " "), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("3 quantized weights of"), std::string::npos) << c.out;
}

TEST(tools_quantize, cli_fails_cleanly_on_every_truncation) {
  quantize_options opt;
  opt.scheme = "nvfp4";
  const std::string input =
      encode({weight("a.weight", dtype::F32, 2, 16, 1), weight("b.weight", dtype::BF16, 1, 16, 2)}, {{"format", "pt"}});
  const std::string output = quantize(input, opt).file;
  const std::string in = temp_path("trunc_in.safetensors"), out = temp_path("trunc_out.safetensors");
  for (std::size_t n = 0; n < input.size(); ++n) {
    save(in, input.substr(0, n));
    std::remove(out.c_str());
    const cli_result r = cli({in, out, "--scheme", "nvfp4"});
    EXPECT_EQ(r.rc, 1) << "prefix " << n;
    EXPECT_NE(r.err.find("lowbit-quantize: error: " + in + ": safetensors: "), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << "prefix " << n;
    EXPECT_FALSE(std::filesystem::exists(out + ".tmp")) << "prefix " << n;
  }
  for (std::size_t n = 0; n < output.size(); n += 3) {
    save(out, output.substr(0, n));
    const cli_result r = cli({"--check", out});
    EXPECT_EQ(r.rc, 1) << "prefix " << n;
    EXPECT_NE(r.err.find("safetensors: "), std::string::npos) << r.err;
  }
}

TEST(tools_quantize, cli_usage_errors_exit_with_2) {
  const std::string in = temp_path("usage_in.safetensors");
  save(in, encode(model()));
  EXPECT_EQ(cli({}).rc, 2);
  EXPECT_EQ(cli({in}).rc, 2);
  EXPECT_EQ(cli({in, temp_path("usage_out.safetensors")}).rc, 2); // no --scheme
  EXPECT_EQ(cli({in, temp_path("usage_out.safetensors"), "--scheme", "mxfp4", "--frobnicate"}).rc, 2);
  EXPECT_EQ(cli({in, temp_path("usage_out.safetensors"), "--scheme", "mxfp4", "--seed", "x1"}).rc, 2);
  EXPECT_EQ(cli({in, temp_path("usage_out.safetensors"), "--scheme"}).rc, 2);
  EXPECT_EQ(cli({in, temp_path("usage_out.safetensors"), "--scheme", "mxfp4", "--act-order=1"}).rc, 2);
  EXPECT_EQ(cli({in, in, "--scheme", "mxfp4"}).rc, 2);
  const cli_result unknown = cli({in, temp_path("usage_out.safetensors"), "--scheme", "mxfp5"});
  EXPECT_EQ(unknown.rc, 2);
  EXPECT_NE(unknown.err.find("unknown scheme \"mxfp5\""), std::string::npos);
  const cli_result help = cli({"--help"});
  EXPECT_EQ(help.rc, 0);
  EXPECT_NE(help.out.find("usage: lowbit-quantize"), std::string::npos);
  const cli_result list = cli({"--list-schemes"});
  EXPECT_EQ(list.rc, 0);
  for_each_scheme([&]<class S>(std::string_view alias) {
    EXPECT_NE(list.out.find(std::string(alias) + " "), std::string::npos) << alias;
    EXPECT_NE(list.out.find(lowbit::scheme_name<S>()), std::string::npos) << alias;
  });
}

} // namespace
