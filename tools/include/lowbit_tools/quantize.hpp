// lowbit-quantize as a library: quantize every selected 2-D weight of a safetensors checkpoint
// with one scheme and policy and write the result (checkpoint.hpp's naming convention), and the
// command-line front end. Implemented in tools/src/quantize.cpp; the tool and the tests link it.
#pragma once

#include "lowbit/schemes/metrics.hpp"
#include "lowbit_tools/safetensors.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace lowbit::tools {

struct quantize_options {
  std::string scheme = "int4_g128";        // an alias of schemes.hpp
  std::string policy = "rtn";              // rtn, rtn-mse, hadamard, gptq
  std::string include = "\\.weight$";      // ECMAScript regex searched in each tensor name
  std::string exclude;                     // the same; empty excludes nothing
  std::uint64_t seed = 1;                  // Hadamard random signs (0: plain Hadamard)
  bool act_order = false;                  // GPTQ: columns by decreasing Hessian diagonal
  double damp = 0.01;                      // GPTQ: lambda = damp * mean(diag H)
  const safetensors_view* calib = nullptr; // layer inputs (gptq: required; rtn-mse: importance)
};

// One row of the tool's table.
struct tensor_report {
  std::string name;
  std::string dtype; // of the source tensor
  std::vector<std::uint64_t> shape;
  bool quantized = false;
  std::string note; // why a tensor was copied, or the calibration tensor used
  double bits_per_weight = 0;
  lowbit::error_metrics error{}; // of the effective weights against the source, in fp32
};

using progress_callback = std::function<void(const tensor_report&, std::size_t done, std::size_t total)>;

// The calibration tensor of a weight: `name`, then `name` without a ".weight" suffix, then
// "input.<cols>"; nullptr when none exists.
const tensor_info* find_calibration(const safetensors_view& calib, const std::string& name, std::uint64_t cols);

// Quantizes `in` into `out`. Everything is checked before the first byte is written (options,
// calibration tensors, output names); a later failure (a non-finite weight) throws as well and
// leaves `out` incomplete. Throws lowbit::error (invalid_argument for bad options).
std::vector<tensor_report> quantize_checkpoint(const safetensors_view& in, std::ostream& out,
                                               const quantize_options& opt, const progress_callback& progress = {});

// The command line: returns the exit status (0 success, 1 failure, 2 usage). `terminal`: stdout is
// a terminal, so a progress bar is drawn.
int quantize_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool terminal);

} // namespace lowbit::tools
