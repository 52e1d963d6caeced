// Writes the files the command-line tests and the fuzzer's seed corpus use, into DIR:
//   model.safetensors      F32 / BF16 / F16 weights, a 1-D norm, a bias and an I64 scalar
//   calib.safetensors      layer inputs, one per matching rule (exact name, module name, input.<K>)
//   truncated.safetensors  model.safetensors cut in half;  bad_json.safetensors  a broken header
//   seeds/                 small valid inputs and quantized outputs (nvfp4, nf4_dq, asymmetric
//                          int4, Hadamard, GPTQ act-order when built with it) for the fuzzer
#include "lowbit/formats/half.hpp"
#include "lowbit_tools/quantize.hpp"
#include "lowbit_tools/safetensors.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace lowbit::tools;

struct tensor {
  std::string name;
  dtype type;
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> bytes;
};

// A smooth, sign-changing pattern with a few larger entries, as weights have.
std::vector<float> pattern(std::size_t n, float seed) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(i) * 0.37f + seed;
    v[i] = 0.05f * std::sin(x) + 0.02f * std::cos(3.1f * x) + (i % 97 == 0 ? 0.3f : 0.0f);
  }
  return v;
}

tensor make(std::string name, dtype type, std::vector<std::uint64_t> shape, float seed) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  const std::vector<float> v = pattern(n, seed);
  tensor t{std::move(name), type, std::move(shape), {}};
  for (float x : v) {
    if (type == dtype::F32) {
      const auto* p = reinterpret_cast<const std::uint8_t*>(&x);
      t.bytes.insert(t.bytes.end(), p, p + 4);
    } else {
      const std::uint16_t h = type == dtype::F16 ? lowbit::half(x).bits : lowbit::bfloat16(x).bits;
      t.bytes.push_back(static_cast<std::uint8_t>(h & 0xFF));
      t.bytes.push_back(static_cast<std::uint8_t>(h >> 8));
    }
  }
  return t;
}

std::string encode(const std::vector<tensor>& ts, const std::vector<std::pair<std::string, std::string>>& meta = {}) {
  std::vector<tensor_spec> specs;
  for (const auto& t : ts) specs.push_back({t.name, t.type, t.shape});
  std::ostringstream out;
  safetensors_writer w(out, specs, meta);
  for (const auto& t : ts) w.write(t.bytes);
  w.finish();
  return out.str();
}

void save(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

std::string quantized(const std::string& file, const std::string& scheme, const std::string& policy,
                      const safetensors_view* calib = nullptr, bool act_order = false) {
  const safetensors_view v({reinterpret_cast<const std::uint8_t*>(file.data()), file.size()});
  quantize_options opt;
  opt.scheme = scheme;
  opt.policy = policy;
  opt.calib = calib;
  opt.act_order = act_order;
  std::ostringstream out;
  quantize_checkpoint(v, out, opt);
  return out.str();
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: lowbit_tools_make_fixture DIR\n";
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir / "seeds");
    const std::string model = encode({make("layers.0.attn.q.weight", dtype::F32, {64, 96}, 0.1f),
                                      make("layers.0.mlp.up.weight", dtype::BF16, {48, 96}, 0.2f),
                                      make("layers.0.mlp.down.weight", dtype::F16, {96, 48}, 0.3f),
                                      make("layers.0.norm.weight", dtype::F32, {96}, 0.4f),
                                      make("layers.0.mlp.up.bias", dtype::F32, {48}, 0.5f),
                                      {"step", dtype::I64, {}, {7, 0, 0, 0, 0, 0, 0, 0}}},
                                     {{"format", "pt"}});
    save(dir / "model.safetensors", model);
    save(dir / "calib.safetensors", encode({make("layers.0.attn.q.weight", dtype::F32, {128, 96}, 1.0f),
                                            make("input.96", dtype::BF16, {2, 64, 96}, 2.0f),
                                            make("layers.0.mlp.down", dtype::F16, {128, 48}, 3.0f)}));
    save(dir / "truncated.safetensors", model.substr(0, model.size() / 2));
    std::string bad = "{\"a\": }";
    bad.append(8 - bad.size() % 8, ' ');
    const std::uint64_t n = bad.size();
    save(dir / "bad_json.safetensors", std::string(reinterpret_cast<const char*>(&n), 8) + bad);

    // Seeds: small files, so that the fuzzer's mutations stay cheap.
    const std::string small =
        encode({make("a.weight", dtype::F32, {4, 64}, 0.1f), make("b.weight", dtype::BF16, {2, 32}, 0.2f),
                make("c.weight", dtype::F16, {3, 16}, 0.3f), make("n", dtype::F32, {4}, 0.4f)},
               {{"format", "pt"}});
    const std::string small_calib =
        encode({make("input.64", dtype::F32, {8, 64}, 1.0f), make("input.32", dtype::F32, {8, 32}, 2.0f),
                make("input.16", dtype::F32, {8, 16}, 3.0f)});
    const safetensors_view calib_view({reinterpret_cast<const std::uint8_t*>(small_calib.data()), small_calib.size()});
    save(dir / "seeds" / "input.safetensors", small);
    save(dir / "seeds" / "mxfp4.safetensors", quantized(small, "mxfp4", "rtn"));
    save(dir / "seeds" / "nvfp4.safetensors", quantized(small, "nvfp4", "rtn-mse"));
    save(dir / "seeds" / "nf4_dq.safetensors", quantized(small, "nf4_dq", "rtn"));
    save(dir / "seeds" / "int4_asym.safetensors", quantized(small, "int4_asym_g128", "rtn"));
    save(dir / "seeds" / "ternary_base3.safetensors", quantized(small, "ternary_base3", "hadamard"));
#if LOWBIT_TOOLS_GPTQ
    save(dir / "seeds" / "gptq.safetensors", quantized(small, "int4_g32", "gptq", &calib_view, true));
#endif
    std::cout << "fixture written to " << dir.string() << '\n';
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "lowbit_tools_make_fixture: " << e.what() << '\n';
    return 1;
  }
}
