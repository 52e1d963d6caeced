// quantize / dequantize / fake_quant throughput of every named scheme on a 4096 x 4096 fp32
// matrix (GB/s of float data), with 1 and 2 threads (real time). Baseline in the same binary:
// a memcpy of the matrix.
#include <lowbit/lowbit.hpp>

#include <benchmark/benchmark.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

constexpr std::size_t rows = 4096, cols = 4096;

const std::vector<float>& matrix() {
  static const std::vector<float> x = [] {
    std::vector<float> v(rows * cols);
    std::mt19937 rng(1);
    std::normal_distribution<float> g;
    for (auto& e : v) e = g(rng);
    return v;
  }();
  return x;
}

// Benchmarks take the thread count as their argument (1 and 2 here; OpenMP builds only).
void use_threads(benchmark::State& state) {
#if defined(_OPENMP)
  omp_set_num_threads(static_cast<int>(state.range(0)));
#else
  if (state.range(0) != 1) state.SkipWithError("built without OpenMP");
#endif
}

void set_counters(benchmark::State& state) {
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols * sizeof(float)));
}

template <class S>
void quantize_bench(benchmark::State& state) {
  use_threads(state);
  (void)matrix(); // built once, outside any timing
  for (auto _ : state) benchmark::DoNotOptimize(lowbit::quantize<S>(matrix(), rows, cols));
  set_counters(state);
}

template <class S>
void dequantize_bench(benchmark::State& state) {
  use_threads(state);
  const auto q = lowbit::quantize<S>(matrix(), rows, cols);
  std::vector<float> y(rows * cols);
  for (auto _ : state) {
    lowbit::dequantize(q, std::span<float>(y));
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state);
}

template <class S>
void fake_quant_bench(benchmark::State& state) {
  use_threads(state);
  (void)matrix();
  std::vector<float> y(rows * cols);
  for (auto _ : state) {
    lowbit::fake_quant<S>(matrix(), rows, cols, y);
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state);
}

void memcpy_baseline(benchmark::State& state) {
  (void)matrix();
  std::vector<float> y(rows * cols);
  for (auto _ : state) {
    std::memcpy(y.data(), matrix().data(), y.size() * sizeof(float));
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state);
}

template <class S>
void add(const char* name) {
  const std::string n(name);
  for (auto* b : {benchmark::RegisterBenchmark(("quantize/" + n).c_str(), quantize_bench<S>),
                  benchmark::RegisterBenchmark(("dequantize/" + n).c_str(), dequantize_bench<S>),
                  benchmark::RegisterBenchmark(("fake_quant/" + n).c_str(), fake_quant_bench<S>)})
    b->Unit(benchmark::kMillisecond)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
}

const bool registered = [] {
  benchmark::RegisterBenchmark("baseline/memcpy_4096x4096", memcpy_baseline)->Unit(benchmark::kMillisecond);
  using namespace lowbit;
  add<mxfp8_e4m3>("mxfp8_e4m3");
  add<mxfp6_e2m3>("mxfp6_e2m3");
  add<mxfp4>("mxfp4");
  add<mxint8>("mxint8");
  add<nvfp4>("nvfp4");
  add<int4_group<128>>("int4_g128_fp16");
  add<int_asym<4, 128>>("uint4_g128_fp16_zero_point");
  add<int8_group<128>>("int8_g128_fp16");
  add<nf4_scheme<64>>("nf4_b64");
  add<nf4_dq>("nf4_b64_double_quant");
  add<ternary_absmean>("ternary_absmean");
  add<ternary_absmean_base3>("ternary_absmean_base3");
  return true;
}();

} // namespace
