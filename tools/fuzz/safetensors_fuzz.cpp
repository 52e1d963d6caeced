// libFuzzer target: arbitrary bytes as a .safetensors file. Reading must either succeed or throw
// lowbit::error; every quantized weight of a readable file must load or throw lowbit::error; and
// a readable file of small float matrices must quantize (or be refused with lowbit::error) into
// an output that reads and loads back without any error. Anything else (a crash, a sanitizer
// report, another exception) is a bug.
#include "lowbit_tools/checkpoint.hpp"
#include "lowbit_tools/quantize.hpp"
#include "lowbit_tools/safetensors.hpp"
#include "lowbit_tools/schemes.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace lowbit::tools;

void load_all(const safetensors_view& v) {
  for (const quantized_entry& e : list_quantized(v))
    visit_quantized(v, e.name, [](const auto& layer) { (void)effective_weight(layer); });
}

std::string pick_scheme(std::size_t k) {
  std::vector<std::string> names;
  for_each_scheme([&]<class S>(std::string_view alias) { names.emplace_back(alias); });
  return names[k % names.size()];
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  safetensors_view v;
  try {
    v = safetensors_view({data, size});
  } catch (const lowbit::error&) {
    return 0;
  }
  std::uint64_t elements = 0;
  for (const tensor_info& t : v.tensors())
    if (is_float_weight(t.type)) elements += v.to_float(t).size();
  try {
    load_all(v);
  } catch (const lowbit::error&) {
  }
  if (elements > (1u << 14)) return 0;

  quantize_options opt;
  opt.scheme = pick_scheme(size);
  opt.policy = size % 3 == 0 ? "hadamard" : size % 3 == 1 ? "rtn-mse" : "rtn";
  opt.include = "";
  std::ostringstream out;
  try {
    quantize_checkpoint(v, out, opt);
  } catch (const lowbit::error&) {
    return 0; // e.g. a non-finite weight, or a name that collides with a plane
  }
  const std::string s = out.str();
  const safetensors_view back({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
  load_all(back); // must not throw: the tool's own output
  return 0;
}
