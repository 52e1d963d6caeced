// GPTQ benchmarks: Hessian accumulation and GPTQ end to end, next to an Eigen fp32 GEMM whose
// rate turns GPTQ's FLOP count into the time those FLOPs take on this machine.
//
// FLOP counts: Hessian, tokens * cols^2 (the lower triangle of X^T X: cols^2 / 2 multiply-adds
// per token); GPTQ, rows * cols^2 (every column's error reaches each later column of every
// row) + 2/3 cols^3 (Cholesky and triangular inverse).
#include "lowbit/quantizers/gptq.hpp"

#include <benchmark/benchmark.h>

#include <Eigen/Dense>

#include <cmath>
#include <cstddef>
#include <map>
#include <memory>
#include <random>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

void set_threads(benchmark::State& state, int arg) {
#if defined(_OPENMP)
  omp_set_num_threads(static_cast<int>(state.range(arg)));
#else
  if (state.range(arg) != 1) state.SkipWithError("built without OpenMP");
#endif
}

// Correlated inputs (cols / 8 latent factors plus noise), channel scales over 100x.
std::vector<float> inputs(std::size_t tokens, std::size_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const std::size_t k = cols / 8;
  Eigen::MatrixXf z(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(tokens));
  Eigen::MatrixXf mix(static_cast<Eigen::Index>(cols), static_cast<Eigen::Index>(k));
  for (auto& v : z.reshaped()) v = g(rng);
  for (auto& v : mix.reshaped()) v = g(rng) / std::sqrt(static_cast<float>(k));
  Eigen::MatrixXf x = mix * z; // cols x tokens, column-major = tokens x cols row-major
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> s(cols);
  for (auto& v : s) v = std::pow(10.0f, u(rng));
  std::vector<float> out(tokens * cols);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t j = 0; j < cols; ++j)
      out[t * cols + j] = (x(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(t)) + 0.3f * g(rng)) * s[j];
  return out;
}

const lowbit::hessian& hessian_for(std::size_t cols) {
  static std::map<std::size_t, std::unique_ptr<lowbit::hessian>> cache;
  auto& h = cache[cols];
  if (!h) {
    h = std::make_unique<lowbit::hessian>(cols);
    const std::size_t tokens = 2048;
    h->add(inputs(tokens, cols, 7), tokens);
  }
  return *h;
}

const std::vector<float>& weights_for(std::size_t rows, std::size_t cols) {
  static std::map<std::pair<std::size_t, std::size_t>, std::vector<float>> cache;
  auto& w = cache[{rows, cols}];
  if (w.empty()) {
    std::mt19937 rng(11);
    std::normal_distribution<float> g(0.0f, 0.02f);
    w.resize(rows * cols);
    for (auto& v : w) v = g(rng);
  }
  return w;
}

// Args: cols, tokens per batch, threads.
void hessian_add(benchmark::State& state) {
  const auto cols = static_cast<std::size_t>(state.range(0)), tokens = static_cast<std::size_t>(state.range(1));
  set_threads(state, 2);
  const auto x = inputs(tokens, cols, 3);
  lowbit::hessian h(cols);
  for (auto _ : state) {
    h.add(x, tokens);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(tokens) * cols * cols * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(hessian_add)
    ->ArgNames({"cols", "tokens", "threads"})
    ->Args({1024, 1024, 1})
    ->Args({4096, 2048, 1})
    ->Args({4096, 2048, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The baseline: an Eigen fp32 GEMM, n x n times n x n (2 n^3 FLOPs).
void eigen_gemm(benchmark::State& state) {
  const auto n = static_cast<Eigen::Index>(state.range(0));
  set_threads(state, 1);
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n);
  Eigen::MatrixXf c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(n) * n * n * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(eigen_gemm)
    ->ArgNames({"n", "threads"})
    ->Args({1024, 1})
    ->Args({4096, 1})
    ->Args({4096, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Args: rows, cols, act-order, threads.
template <class S>
void gptq_end_to_end(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  const auto& h = hessian_for(cols);
  const auto& w = weights_for(rows, cols);
  set_threads(state, 3);
  lowbit::gptq_absmax g;
  g.options.act_order = state.range(2) != 0;
  double err = 0;
  for (auto _ : state) {
    auto r = g.quantize<S>(w, rows, cols, h);
    err = r.output_error;
    benchmark::DoNotOptimize(r.weight.codes().data());
  }
  const double flops = static_cast<double>(rows) * cols * cols + 2.0 / 3.0 * cols * cols * static_cast<double>(cols);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP"] = flops / 1e9;
  state.counters["out_err"] = err;
}

#define LOWBIT_GPTQ_BENCH(S)                                                                                           \
  BENCHMARK(gptq_end_to_end<S>)                                                                                        \
      ->ArgNames({"rows", "cols", "act", "threads"})                                                                   \
      ->Args({1024, 1024, 0, 1})                                                                                       \
      ->Args({4096, 4096, 0, 1})                                                                                       \
      ->Args({4096, 4096, 0, 2})                                                                                       \
      ->Args({4096, 4096, 1, 2})                                                                                       \
      ->Args({11008, 4096, 0, 2})                                                                                      \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMillisecond)
LOWBIT_GPTQ_BENCH(lowbit::int4_group<128>);
LOWBIT_GPTQ_BENCH(lowbit::nvfp4);

} // namespace
