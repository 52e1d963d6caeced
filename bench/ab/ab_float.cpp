// A/B of the weight-only float path (linear<linear_path::float_weights>) between two versions of
// the headers in ONE binary, built like ab_lut.cpp (see there): `AB=float bash bench/ab/run.sh OLD`.
// Cases: 4096 x 4096 weights, tokens 8, 32, 128 and 512; GFLOP/s counts 2 x N x K x tokens.
#if defined(AB_MAIN)
#include <benchmark/benchmark.h>

#include <cstddef>

float ab_old_float(int scheme, std::size_t tokens);
float ab_new_float(int scheme, std::size_t tokens);

namespace {
template <bool New>
void ab(benchmark::State& state) {
  const int scheme = static_cast<int>(state.range(0));
  const auto tokens = static_cast<std::size_t>(state.range(1));
  for (auto _ : state) {
    const float v = New ? ab_new_float(scheme, tokens) : ab_old_float(scheme, tokens);
    benchmark::DoNotOptimize(v);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * 4096.0 * 4096.0 * static_cast<double>(tokens) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
} // namespace

// scheme: 0 INT4-g128, 1 MXFP8 E4M3, 2 NVFP4, 3 ternary (2-bit codes).
static void ab_cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"scheme", "tokens"})
      ->ArgsProduct({{0, 1, 2, 3}, {8, 32, 128, 512}})
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}
BENCHMARK_TEMPLATE(ab, false)->Name("old_float")->Apply(ab_cases);
BENCHMARK_TEMPLATE(ab, true)->Name("new_float")->Apply(ab_cases);
#else
#include "ab_common.hpp"
#include "lowbit/lowbit.hpp"

#include <cstddef>
#include <span>
#include <vector>

namespace {
constexpr std::size_t n = 4096, max_tokens = 512;
using namespace lowbit;

using lowbit_ab::gaussian;

// One matrix, the activations and a workspace per scheme, made on first use.
template <class S>
float run(std::size_t tokens) {
  static const auto w = quantize<S>(gaussian(n * n, 1), n, n);
  static const auto x = gaussian(max_tokens * n, 2);
  static std::vector<float> y(max_tokens * n);
  static linear_workspace ws;
  linear<linear_path::float_weights>(std::span<const float>(x).first(tokens * n), tokens, w,
                                     std::span<float>(y).first(tokens * n), {}, &ws);
  return y[0];
}

float pick(int scheme, std::size_t tokens) {
  switch (scheme) {
  case 0: return run<int4_group<128>>(tokens);
  case 1: return run<mxfp8_e4m3>(tokens);
  case 2: return run<nvfp4>(tokens);
  default: return run<ternary_absmean>(tokens);
  }
}
} // namespace

#define AB_CAT2(a, b) a##b
#define AB_CAT(a, b) AB_CAT2(a, b)
float AB_CAT(AB_CAT(ab_, AB_SIDE), _float)(int scheme, std::size_t tokens) { return pick(scheme, tokens); }
#endif
