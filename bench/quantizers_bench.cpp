// Quantizer policies. Fast Walsh-Hadamard transform throughput (GB/s of floats
// transformed in place) for n = 2^8 .. 2^16, the scalar reference beside the
// dispatching path, and row-wise rotation of a 4096 x 4096 matrix; RTN with the
// MSE clipping search (GPTQ's grid: 100 steps down to 0.2) on 4096 x 4096
// beside plain absmax RTN of the same scheme, for INT4-g128, NVFP4, MXFP4 and
// NF4; 1 and 2 threads (GB/s of float weights in).
#include <lowbit/quantizers/hadamard.hpp>
#include <lowbit/quantizers/rtn.hpp>

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

std::vector<float> gaussian(std::size_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  return x;
}

void fwht_reference(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto x = gaussian(n);
  for (auto _ : state) {
    lowbit::reference::fwht_unnormalized(x.data(), n);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * sizeof(float)));
}

void fwht_dispatch(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto x = gaussian(n);
  for (auto _ : state) {
    lowbit::fwht(x);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * sizeof(float)));
}

void rotate_rows_4096(benchmark::State& state) {
#if defined(_OPENMP)
  omp_set_num_threads(static_cast<int>(state.range(0)));
#else
  if (state.range(0) != 1) state.SkipWithError("built without OpenMP");
#endif
  const std::size_t n = 4096;
  auto m = gaussian(n * n);
  const lowbit::hadamard_rotation q(n, 7);
  for (auto _ : state) {
    q.apply_rows(m, n);
    benchmark::DoNotOptimize(m.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * n * sizeof(float)));
}

template <class S, class Policy>
void rtn_4096(benchmark::State& state) {
#if defined(_OPENMP)
  omp_set_num_threads(static_cast<int>(state.range(0)));
#else
  if (state.range(0) != 1) state.SkipWithError("built without OpenMP");
#endif
  const std::size_t n = 4096;
  static const auto w = gaussian(n * n);
  const Policy p{};
  for (auto _ : state) {
    auto q = p.template quantize<S>(w, n, n);
    benchmark::DoNotOptimize(q.codes().data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * n * sizeof(float)));
}

#define LOWBIT_RTN_BENCH(S, name)                                                                                      \
  BENCHMARK(rtn_4096<S, lowbit::rtn_absmax>)                                                                           \
      ->Name("rtn_absmax_4096/" name)                                                                                  \
      ->ArgName("threads")                                                                                             \
      ->Arg(1)                                                                                                         \
      ->Arg(2)                                                                                                         \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMillisecond);                                                                                 \
  BENCHMARK(rtn_4096<S, lowbit::rtn_mse>)                                                                              \
      ->Name("rtn_mse_4096/" name)                                                                                     \
      ->ArgName("threads")                                                                                             \
      ->Arg(1)                                                                                                         \
      ->Arg(2)                                                                                                         \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMillisecond)

LOWBIT_RTN_BENCH(lowbit::int4_group<128>, "int4_g128");
LOWBIT_RTN_BENCH(lowbit::nvfp4, "nvfp4");
LOWBIT_RTN_BENCH(lowbit::mxfp4, "mxfp4");
LOWBIT_RTN_BENCH(lowbit::nf4_scheme<64>, "nf4_b64");

BENCHMARK(fwht_reference)->RangeMultiplier(4)->Range(1 << 8, 1 << 16);
BENCHMARK(fwht_dispatch)->RangeMultiplier(4)->Range(1 << 8, 1 << 16);
BENCHMARK(rotate_rows_4096)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace
