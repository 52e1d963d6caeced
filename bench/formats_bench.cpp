// Encode / decode throughput of every scalar format over 1M-element spans: the scalar reference
// and the dispatching (AVX2 where compiled) path side by side, plus a memcpy baseline moving the
// same bytes. Counters: items_per_second (elements/s) and bytes_per_second (float in + code out).
#include <lowbit/lowbit.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

constexpr std::size_t n_elements = 1 << 20;

const std::vector<float>& input() {
  static const std::vector<float> x = [] {
    std::vector<float> v(n_elements);
    std::mt19937 rng(1);
    std::normal_distribution<float> g(0.0f, 2.0f);
    for (auto& e : v) e = g(rng);
    return v;
  }();
  return x;
}

enum class path { reference, dispatch };

template <class F, path P>
void encode_bench(benchmark::State& state) {
  const auto& x = input();
  std::vector<typename F::storage> codes(x.size());
  for (auto _ : state) {
    if constexpr (P == path::reference)
      lowbit::reference::encode_span<F>(std::span<const float>(x), std::span(codes));
    else
      lowbit::encode_span<F>(std::span<const float>(x), std::span(codes));
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  const auto n = static_cast<std::int64_t>(x.size());
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n *
                          static_cast<std::int64_t>(sizeof(float) + sizeof(typename F::storage)));
}

template <class F, path P>
void decode_bench(benchmark::State& state) {
  const auto& x = input();
  std::vector<typename F::storage> codes(x.size());
  lowbit::encode_span<F>(std::span<const float>(x), std::span(codes));
  std::vector<float> y(x.size());
  for (auto _ : state) {
    if constexpr (P == path::reference)
      lowbit::reference::decode_span<F>(std::span<const typename F::storage>(codes), std::span(y));
    else
      lowbit::decode_span<F>(std::span<const typename F::storage>(codes), std::span(y));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const auto n = static_cast<std::int64_t>(x.size());
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n *
                          static_cast<std::int64_t>(sizeof(float) + sizeof(typename F::storage)));
}

// Baseline: copying 1M floats plus 1M bytes, the memory traffic of one encode or decode pass.
void memcpy_baseline(benchmark::State& state) {
  const auto& x = input();
  std::vector<float> y(x.size());
  std::vector<std::uint8_t> a(x.size(), 1), b(x.size());
  for (auto _ : state) {
    std::memcpy(y.data(), x.data(), x.size() * sizeof(float));
    std::memcpy(b.data(), a.data(), a.size());
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  const auto n = static_cast<std::int64_t>(x.size());
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n * static_cast<std::int64_t>(sizeof(float) + 1));
}

template <class F>
void register_format() {
  const std::string name(lowbit::format_name<F>);
  benchmark::RegisterBenchmark(("encode/" + name + "/reference").c_str(), encode_bench<F, path::reference>);
  benchmark::RegisterBenchmark(("encode/" + name + "/" + lowbit::isa_name(lowbit::compiled_isa)).c_str(),
                               encode_bench<F, path::dispatch>);
  benchmark::RegisterBenchmark(("decode/" + name + "/reference").c_str(), decode_bench<F, path::reference>);
  benchmark::RegisterBenchmark(("decode/" + name + "/" + lowbit::isa_name(lowbit::compiled_isa)).c_str(),
                               decode_bench<F, path::dispatch>);
}

const bool registered = [] {
  benchmark::RegisterBenchmark("baseline/memcpy_float_plus_byte", memcpy_baseline);
  lowbit::for_each_format<lowbit::all_scalar_formats>([]<class F>() { register_format<F>(); });
  register_format<lowbit::fp16>();
  register_format<lowbit::bf16>();
  return true;
}();

} // namespace
