// Linear-layer kernels on packed schemes, beside the machine's own limits measured in the same
// binary: a streaming read-bandwidth probe (>= 1 GiB), an fp32 FMA peak probe, an int8 maddubs peak
// probe, and Eigen fp32 GEMV / GEMM on the same shapes (when Eigen is installed).
//
// GEMV (one token): "dram" cycles through copies of a 4096 x 8192 matrix totalling >= 128 MiB of
// packed weights and >= 4x the last-level cache (lowbit_bench::dram_bytes), as in decoding;
// "cache" is one 4096 x 4096 matrix, L3 resident. GEMM: 4096 x 4096 with N tokens. Counters: weights_GB/s (packed bytes
// of W streamed per second: codes, scales, zero points), GFLOP/s (2 N K rows per call) and, for the probes, GB/s,
// GFLOP/s and GOP/s (int8 multiply + add, 2 per multiply-accumulate).
#include "lowbit/kernels/linear.hpp"
#include "lowbit/schemes/all.hpp"
#include "read_probe.hpp"

#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <typeinfo>
#include <utility>
#include <vector>

#if defined(LOWBIT_BENCH_EIGEN)
#include <Eigen/Dense>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using namespace lowbit;

int set_threads(benchmark::State& state, int arg) {
  const auto n = static_cast<int>(state.range(arg));
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  if (n != 1) state.SkipWithError("built without OpenMP");
#endif
  return n;
}

std::vector<float> gaussian(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

// ---- machine probes ------------------------------------------------------------------------

// Args: threads, prefetch (0: the hardware prefetchers alone; 1: also software prefetch 4 KiB
// ahead into L2, see stream_sum). A kernel's share of "the measured read bandwidth" is against the
// higher of the two.
void probe_read_bandwidth(benchmark::State& state) {
  set_threads(state, 0);
  const auto& buf = lowbit_bench::probe_buffer(); // >= 1 GiB, >= 4x the LLC
  const std::size_t n = buf.size();
  const bool prefetch = state.range(1) != 0;
  for (auto _ : state) {
    const float total =
        prefetch ? lowbit_bench::stream_sum<4096>(buf.data(), n) : lowbit_bench::stream_sum(buf.data(), n);
    benchmark::DoNotOptimize(total);
  }
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(n * sizeof(float)) * 1e-9 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

#if defined(__AVX2__) && defined(__FMA__)
// A compute peak: per thread, 10 independent chains of one instruction (step), unrolled so that
// the accumulators live in registers (otherwise each goes through memory); ops: operations per
// instruction.
template <class V, class Init, class Step, class Add>
void peak_probe(benchmark::State& state, const char* counter, double ops, Init init, Step step, Add add) {
  const int threads = set_threads(state, 0);
  constexpr long iters = 1 << 20;
  for (auto _ : state) {
#pragma omp parallel
    {
      V a[10];
      for (int i = 0; i < 10; ++i) a[i] = init(i);
      for (long it = 0; it < iters; ++it) {
        LOWBIT_UNROLL
        for (auto& v : a) v = step(v);
      }
      V s = a[0];
      for (int i = 1; i < 10; ++i) s = add(s, a[i]);
      benchmark::DoNotOptimize(s);
    }
  }
  state.counters[counter] = benchmark::Counter(
      ops * 10 * iters * threads * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void probe_fma_peak(benchmark::State& state) {
  const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
  peak_probe<__m256>(
      state, "GFLOP/s", 2.0 * 8, [](int i) { return _mm256_set1_ps(static_cast<float>(i)); },
      [&](__m256 v) LOWBIT_ALWAYS_INLINE { return _mm256_fmadd_ps(v, m, c); },
      [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); });
}

void probe_maddubs_peak(benchmark::State& state) {
  const __m256i b = _mm256_set1_epi8(3);
  peak_probe<__m256i>(
      state, "GOP/s", 2.0 * 32, [](int i) { return _mm256_set1_epi8(static_cast<char>(i + 1)); },
      [&](__m256i v) LOWBIT_ALWAYS_INLINE { return _mm256_maddubs_epi16(v, b); },
      [](__m256i a, __m256i c) { return _mm256_add_epi16(a, c); });
}
BENCHMARK(probe_fma_peak)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(probe_maddubs_peak)->Arg(1)->Arg(2)->UseRealTime();

#if LOWBIT_HAS_AVX512_BW
// The fp32 peak where the float path's panel products run on 512-bit FMAs
// (kernels/avx512/float_dot.hpp): that of those builds. On cores with full-width 512-bit units
// (Zen 5) it is twice probe_fma_peak's; on Zen 4, which splits 512-bit operations, the same.
void probe_fma512_peak(benchmark::State& state) {
  const __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
  peak_probe<__m512>(
      state, "GFLOP/s", 2.0 * 16, [](int i) { return _mm512_set1_ps(static_cast<float>(i)); },
      [&](__m512 v) LOWBIT_ALWAYS_INLINE { return _mm512_fmadd_ps(v, m, c); },
      [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); });
}
BENCHMARK(probe_fma512_peak)->Arg(1)->Arg(2)->UseRealTime();
#endif

#if LOWBIT_HAS_AVX512_VNNI || LOWBIT_HAS_AVX_VNNI
// The int8 peak where the integer-dot kernels use VNNI: 256-bit `vpdpbusd` (AVX-512 VNNI or
// AVX-VNNI), 4 products added into each int32 lane (the instruction the kernels run).
void probe_vnni_peak(benchmark::State& state) {
  const __m256i u = _mm256_set1_epi8(3), s = _mm256_set1_epi8(-2);
  peak_probe<__m256i>(
      state, "GOP/s", 2.0 * 32, [](int i) { return _mm256_set1_epi32(i); },
      [&](__m256i v) LOWBIT_ALWAYS_INLINE { return kernels::avx2::dpbusd(v, u, s); },
      [](__m256i a, __m256i c) { return _mm256_add_epi32(a, c); });
}
BENCHMARK(probe_vnni_peak)->Arg(1)->Arg(2)->UseRealTime();
#if LOWBIT_HAS_AVX512_BW && LOWBIT_HAS_AVX512_VNNI
// The same with 512-bit `vpdpbusd`, which the int8 tiles run at every token count where AVX-512 BW is
// compiled too (kernels/avx512/int8_tiles.hpp): the int8 peak of those builds.
void probe_vnni512_peak(benchmark::State& state) {
  const __m512i u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-2);
  peak_probe<__m512i>(
      state, "GOP/s", 2.0 * 64, [](int i) { return _mm512_set1_epi32(i); },
      [&](__m512i v) LOWBIT_ALWAYS_INLINE { return _mm512_dpbusd_epi32(v, u, s); },
      [](__m512i a, __m512i c) { return _mm512_add_epi32(a, c); });
}
BENCHMARK(probe_vnni512_peak)->Arg(1)->Arg(2)->UseRealTime();
#endif
#endif
#endif
// Unnamed arguments, so that the filters of bench/README.md ('probe_read_bandwidth/2') take both.
BENCHMARK(probe_read_bandwidth)->ArgsProduct({{1, 2}, {0, 1}})->UseRealTime()->Unit(benchmark::kMillisecond);

// Args: threads, MiB. The same streaming read over a buffer of that size, read again and again:
// what the caches give the "L3" (cache-resident) rows, whose working sets are a few MiB (a
// 4096 x 4096 matrix of 2-bit codes with fp16 scales per 32 columns is 5 MiB). On the Xeon of runs
// 26-29 a core read the L3 at about 28 GB/s, what DRAM gave two (bench/README.md, run 29).
void probe_cache_read(benchmark::State& state) {
  set_threads(state, 0);
  const std::size_t n = static_cast<std::size_t>(state.range(1)) << 18; // MiB of floats
  const lowbit::aligned_vector<float> buf(n, 1.0f);
  for (auto _ : state) benchmark::DoNotOptimize(lowbit_bench::stream_sum(buf.data(), n));
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(n * sizeof(float)) * 1e-9 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(probe_cache_read)
    ->ArgsProduct({{1, 2}, {1, 2, 4, 5, 8, 16, 32}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---- weights -------------------------------------------------------------------------------

constexpr std::size_t dram_rows = 4096, dram_cols = 8192, cache_dim = 4096;
const std::size_t dram_bytes = lowbit_bench::dram_bytes(std::size_t{128} << 20);

// The one live instance of a pool holder (weights<S>, packed_weights<S, Pack>, layers<S>): asking
// for another type's frees the last, so that a run of every DRAM benchmark holds one pool of each
// holder at a time (with 4x a 260 MiB L3 per pool, all of them at once would not fit in memory).
template <template <class...> class Holder>
struct sole_slot {
  static inline std::shared_ptr<void> current;
  static inline const std::type_info* type = nullptr;
};
template <template <class...> class Holder, class T>
T& sole() {
  using slot = sole_slot<Holder>;
  if (slot::type != &typeid(T)) {
    slot::current.reset();
    slot::current = std::make_shared<T>();
    slot::type = &typeid(T);
  }
  return *static_cast<T*>(slot::current.get());
}

// A quantized matrix of S; for an int8 packing (kernels::pack_for_int8), the packed matrix of its
// source scheme.
template <class S>
qmatrix<S> make_weights(const std::vector<float>& v, std::size_t rows, std::size_t cols) {
  if constexpr (requires { typename S::source_scheme; })
    return kernels::pack_for_int8(quantize<typename S::source_scheme>(v, rows, cols));
  else
    return quantize<S>(v, rows, cols);
}

// A scheme's matrices: a pool of copies of one quantized dram_rows x dram_cols matrix, one
// cache_dim^2 matrix and the smoke one. Built on first use and kept until a benchmark asks for
// another scheme's (sole), so benchmarks run in registration order build each once; interleaved
// runs (--benchmark_enable_random_interleaving) rebuild them.
template <class S>
struct weights {
  std::vector<qmatrix<S>> pool;
  qmatrix<S> square;
  qmatrix<S> small;

  static weights& get() { return sole<weights, weights>(); }
  const std::vector<qmatrix<S>>& dram() {
    if (pool.empty()) {
      pool.push_back(make_weights<S>(gaussian(dram_rows * dram_cols, 1, 0.02f), dram_rows, dram_cols));
      while (pool.size() * pool[0].storage_bytes() < dram_bytes) pool.push_back(pool[0]);
    }
    return pool;
  }
  const qmatrix<S>& cache() {
    if (square.rows() == 0) square = make_weights<S>(gaussian(cache_dim * cache_dim, 2, 0.02f), cache_dim, cache_dim);
    return square;
  }
  const qmatrix<S>& tiny() { // for the smoke test
    if (small.rows() == 0) small = make_weights<S>(gaussian(256 * 1024, 3, 0.02f), 256, 1024);
    return small;
  }
};

template <class S>
void report(benchmark::State& state, const qmatrix<S>& w, std::size_t tokens, std::size_t calls_per_iter = 1) {
  const double it = static_cast<double>(state.iterations() * calls_per_iter);
  state.counters["weights_GB/s"] =
      benchmark::Counter(static_cast<double>(w.storage_bytes()) * 1e-9 * it, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(tokens * w.rows() * w.cols()) * 1e-9 * it,
                                                 benchmark::Counter::kIsRate);
}

// Args: where (0 dram, 1 cache, 2 small), threads.
template <class S, linear_path P>
void gemv(benchmark::State& state) {
  set_threads(state, 1);
  auto& ws = weights<S>::get();
  const int where = static_cast<int>(state.range(0));
  const std::vector<qmatrix<S>>* pool = where == 0 ? &ws.dram() : nullptr;
  const qmatrix<S>& one = where == 1 ? ws.cache() : where == 2 ? ws.tiny() : (*pool)[0];
  const auto x = gaussian(one.cols(), 4);
  std::vector<float> y(one.rows());
  linear_workspace work;
  std::size_t i = 0;
  for (auto _ : state) {
    const qmatrix<S>& w = pool ? (*pool)[i++ % pool->size()] : one;
    linear<P>(std::span<const float>(x), 1, w, std::span<float>(y), {}, &work);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, one, 1);
}

// Args: tokens, threads (4096 x 4096; tokens < 0 means the small smoke shape with -tokens).
template <class S, linear_path P>
void gemm(benchmark::State& state) {
  set_threads(state, 1);
  auto& ws = weights<S>::get();
  const bool small = state.range(0) < 0;
  const auto tokens = static_cast<std::size_t>(small ? -state.range(0) : state.range(0));
  const qmatrix<S>& w = small ? ws.tiny() : ws.cache();
  const auto x = gaussian(tokens * w.cols(), 5);
  std::vector<float> y(tokens * w.rows());
  linear_workspace work;
  for (auto _ : state) {
    linear<P>(std::span<const float>(x), tokens, w, std::span<float>(y), {}, &work);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, w, tokens);
}

#if LOWBIT_HAS_AVX512_BW
// The AVX2 float kernel on the same matrices as gemm<S, f32>, which runs the 512-bit panel
// products in these builds. Args: tokens, threads.
template <class S>
void gemm_float_avx2(benchmark::State& state) {
  set_threads(state, 1);
  const auto tokens = static_cast<std::size_t>(state.range(0));
  const qmatrix<S>& w = weights<S>::get().cache();
  const std::size_t kx = (w.cols() + 7) / 8 * 8;
  const auto x = gaussian(tokens * kx, 5);
  std::vector<float> y(tokens * w.rows());
  aligned_vector<float> scratch(kernels::avx2::float_scratch_total(w));
  for (auto _ : state) {
    kernels::avx2::linear_float(w, x.data(), tokens, kx, std::span<float>(y), {}, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  report(state, w, tokens);
}
#define LOWBIT_GEMM_FLOAT_AVX2(S)                                                                                      \
  BENCHMARK_TEMPLATE(gemm_float_avx2, S)                                                                               \
      ->ArgNames({"tokens", "threads"})                                                                                \
      ->ArgsProduct({{8, 32, 128, 512}, {2}})                                                                          \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMillisecond)
#else
#define LOWBIT_GEMM_FLOAT_AVX2(S)
#endif

#define LOWBIT_GEMV(S, P)                                                                                              \
  BENCHMARK_TEMPLATE(gemv, S, P)                                                                                       \
      ->ArgNames({"where", "threads"})                                                                                 \
      ->Args({0, 1})                                                                                                   \
      ->Args({0, 2})                                                                                                   \
      ->Args({1, 1})                                                                                                   \
      ->Args({1, 2})                                                                                                   \
      ->Args({2, 2})                                                                                                   \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond);                                                                                 \
  BENCHMARK_TEMPLATE(gemm, S, P)                                                                                       \
      ->ArgNames({"tokens", "threads"})                                                                                \
      ->ArgsProduct({{8, 32, 128, 512}, {1, 2}})                                                                       \
      ->Args({-16, 2})                                                                                                 \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMillisecond)

using int4_g32 = int4_group<32>;
using int4_g128 = int4_group<128>;
using int8_g128 = int8_group<128>;
using nf4_b64 = nf4_scheme<64>;
using int2_g32 = int_sym<2, 32>;
using uint4_g128 = int_asym<4, 128>;                      // zero points (GPTQ / AWQ-style asymmetric INT4)
using mxfp8_i8 = kernels::int8_packed_scheme<mxfp8_e4m3>; // MXFP8 E4M3 after pack_for_int8
using int3_g32 = int_sym<3, 32>;
using int3_i8 = kernels::int8_packed_scheme<int3_g32>; // INT3 after pack_for_int8
constexpr auto f32 = linear_path::float_weights;
constexpr auto i8 = linear_path::int8_dot;

LOWBIT_GEMV(int4_g32, i8);
LOWBIT_GEMV(int4_g128, i8);
LOWBIT_GEMV(mxfp4, i8);
LOWBIT_GEMV(nvfp4, i8);
LOWBIT_GEMV(nf4_b64, i8);
LOWBIT_GEMV(int8_g128, i8);
LOWBIT_GEMV(mxint8, i8);
LOWBIT_GEMV(ternary_absmean, i8);
LOWBIT_GEMV(ternary_absmean_base3, i8);
LOWBIT_GEMV(int2_g32, i8);
LOWBIT_GEMV(mxfp8_i8, i8);
LOWBIT_GEMV(int4_g128, f32);
LOWBIT_GEMV(mxfp4, f32);
LOWBIT_GEMV(nvfp4, f32);
LOWBIT_GEMV(nf4_b64, f32);
LOWBIT_GEMV(mxfp8_e4m3, f32);
LOWBIT_GEMV(ternary_absmean, f32);
LOWBIT_GEMV(ternary_absmean_base3, f32);
LOWBIT_GEMM_FLOAT_AVX2(int4_g128);
LOWBIT_GEMM_FLOAT_AVX2(mxfp4);
LOWBIT_GEMM_FLOAT_AVX2(nvfp4);
LOWBIT_GEMM_FLOAT_AVX2(nf4_b64);
LOWBIT_GEMM_FLOAT_AVX2(mxfp8_e4m3);
LOWBIT_GEMM_FLOAT_AVX2(ternary_absmean);

// ---- integer-dot kernel on row-interleaved int8 tiles -------------------------------------------

// Packed copies (Pack: a function object on a qmatrix, e.g. pack_for_int8_tiles) of the same
// weights<S> matrices: for "dram" enough copies of the packed dram matrix to fill dram_bytes.
template <class S, class Pack>
struct packed_weights {
  using packed = decltype(Pack{}(std::declval<const qmatrix<S>&>()));
  std::vector<packed> pool;
  packed square, small;
  static packed_weights& get() { return sole<packed_weights, packed_weights>(); }
  const packed& at(int where, std::size_t i) {
    auto& src = weights<S>::get();
    if (where == 0) {
      if (pool.empty()) {
        pool.push_back(Pack{}(src.dram()[0]));
        while (pool.size() * pool[0].storage_bytes() < dram_bytes) pool.push_back(pool[0]);
      }
      return pool[i % pool.size()];
    }
    auto& one = where == 1 ? square : small;
    if (one.rows() == 0) one = Pack{}(where == 1 ? src.cache() : src.tiny());
    return one;
  }
};

struct pack_tiles {
  template <class S>
  auto operator()(const qmatrix<S>& w) const {
    return kernels::pack_for_int8_tiles(w);
  }
};
// The bit-plane LUT copy linear_weights holds (the permute layout where VBMI is compiled), and the
// shuffle layout of the AVX2 and AVX-512 BW kernels.
struct pack_lut {
  template <class S>
  auto operator()(const qmatrix<S>& w) const {
    return kernels::pack_for_lut<plane_layout>(w);
  }
};
struct pack_lut_shuffle {
  template <class S>
  auto operator()(const qmatrix<S>& w) const {
    return kernels::pack_for_lut(w);
  }
};
struct pack_codebook {
  template <class S>
  auto operator()(const qmatrix<S>& w) const {
    return kernels::pack_for_codebook_lut(w);
  }
};
// The base-3 LUT copy linear_weights holds (the permute layout where VBMI is compiled), and the
// shuffle layout of the AVX2 and AVX-512 BW kernels.
struct pack_ternary {
  template <class S>
  auto operator()(const qmatrix<S>& w) const {
    return kernels::pack_for_ternary_lut<base3_layout>(w);
  }
};
struct pack_ternary_shuffle {
  template <class S>
  auto operator()(const qmatrix<S>& w) const {
    return kernels::pack_for_ternary_lut(w);
  }
};
template <class S>
using tiled_weights = packed_weights<S, pack_tiles>;
template <class S>
using lut_weights = packed_weights<S, pack_lut>;
template <class S>
using codebook_weights = packed_weights<S, pack_codebook>;

// linear() on the Pack copy of weights<S> (args: where 0 dram / 1 cache / 2 small, tokens,
// threads). weights_GB/s counts the qmatrix's bytes (the same work as gemv / gemm on it); `counter`
// the bytes the packed copy holds.
// What packed_linear times by default: linear() on the packed matrix.
struct run_linear {
  template <class Packed>
  void operator()(std::span<const float> x, std::size_t tokens, const Packed& w, std::span<float> y,
                  linear_workspace& work) const {
    linear(x, tokens, w, y, {}, &work);
  }
};

template <class S, class Pack, class Run = run_linear>
void packed_linear(benchmark::State& state, const char* counter, Run&& run = Run{}) {
  set_threads(state, 2);
  const int where = static_cast<int>(state.range(0));
  const auto tokens = static_cast<std::size_t>(state.range(1));
  auto& ws = weights<S>::get();
  const qmatrix<S>& one = where == 1 ? ws.cache() : where == 2 ? ws.tiny() : ws.dram()[0];
  const auto x = gaussian(tokens * one.cols(), 7);
  std::vector<float> y(tokens * one.rows());
  linear_workspace work;
  auto& pw = packed_weights<S, Pack>::get();
  pw.at(where, 0); // pack before timing
  std::size_t i = 0;
  for (auto _ : state) {
    run(std::span<const float>(x), tokens, pw.at(where, i++), std::span<float>(y), work);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, one, tokens);
  state.counters[counter] = benchmark::Counter(static_cast<double>(pw.at(where, 0).storage_bytes()) * 1e-9 *
                                                   static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
}

// The integer-dot kernel on pack_for_int8_tiles(w).
template <class S>
void tiled(benchmark::State& state) {
  packed_linear<S, pack_tiles>(state, "tiles_GB/s");
}

// A tiles benchmark F<S>: N = 1-8 from DRAM and in L3, N = 32-512 in L3 (1 and 2 threads).
#define LOWBIT_TILED_ARGS(F, S)                                                                                        \
  BENCHMARK_TEMPLATE(F, S)                                                                                             \
      ->ArgNames({"where", "tokens", "threads"})                                                                       \
      ->Args({0, 1, 1})                                                                                                \
      ->ArgsProduct({{0, 1}, {1, 2, 4, 8}, {2}})                                                                       \
      ->Args({1, 8, 1})                                                                                                \
      ->ArgsProduct({{1}, {32, 128, 512}, {1, 2}})                                                                     \
      ->Args({2, 16, 2})                                                                                               \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond)
#define LOWBIT_TILED(S) LOWBIT_TILED_ARGS(tiled, S)

LOWBIT_TILED(int4_g32);
LOWBIT_TILED(int4_g128);
LOWBIT_TILED(uint4_g128);
LOWBIT_TILED(mxfp4);
LOWBIT_TILED(nvfp4);
LOWBIT_TILED(nf4_b64);
LOWBIT_TILED(int8_g128);
LOWBIT_TILED(mxint8);
LOWBIT_TILED(int2_g32);
LOWBIT_TILED(ternary_absmean);
LOWBIT_TILED(mxfp8_i8);
LOWBIT_TILED(int3_i8);
#if LOWBIT_HAS_AVX512_BW && LOWBIT_HAS_AVX512_VNNI
// The AVX2 kernel on the same tiles where linear() runs the 512-bit one: the A/B in one binary.
template <class S>
void tiled_avx2(benchmark::State& state) {
  packed_linear<S, pack_tiles>(
      state, "tiles_GB/s",
      [](std::span<const float> x, std::size_t tokens, const kernels::int8_tiled<S>& w, std::span<float> y,
         linear_workspace& work) {
        kernels::avx2::quantize_activations<S>(x, tokens, w.cols(), work.activations);
        kernels::avx2::prepare_tile_activations<S>(work.activations, work.tile_segments);
        work.scratch.resize(static_cast<std::size_t>(max_threads()) * kernels::avx2::int8_tiles_scratch_size(w));
        kernels::avx2::linear_int8_tiled(w, work.activations, work.tile_segments, y, {}, work.scratch.data());
      });
}
LOWBIT_TILED_ARGS(tiled_avx2, int4_g32);
LOWBIT_TILED_ARGS(tiled_avx2, int4_g128);
LOWBIT_TILED_ARGS(tiled_avx2, uint4_g128);
LOWBIT_TILED_ARGS(tiled_avx2, mxfp4);
LOWBIT_TILED_ARGS(tiled_avx2, nvfp4);
LOWBIT_TILED_ARGS(tiled_avx2, nf4_b64);
LOWBIT_TILED_ARGS(tiled_avx2, int8_g128);
LOWBIT_TILED_ARGS(tiled_avx2, int2_g32);
#endif

// ---- Codebook LUT kernel (direct lookup) beside the tiles -----------------------------------------

// The codebook LUT kernel on pack_for_codebook_lut(w), on the same matrices as tiled<S>.
template <class S>
void codebook(benchmark::State& state) {
  packed_linear<S, pack_codebook>(state, "cb_GB/s");
}

#define LOWBIT_CODEBOOK(S)                                                                                             \
  BENCHMARK_TEMPLATE(codebook, S)                                                                                      \
      ->ArgNames({"where", "tokens", "threads"})                                                                       \
      ->Args({0, 1, 1})                                                                                                \
      ->ArgsProduct({{0, 1}, {1, 2, 4, 8}, {2}})                                                                       \
      ->Args({1, 32, 2})                                                                                               \
      ->Args({2, 16, 2})                                                                                               \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond)

LOWBIT_CODEBOOK(int4_g32);
LOWBIT_CODEBOOK(mxfp4);
LOWBIT_CODEBOOK(nvfp4);
LOWBIT_CODEBOOK(nf4_b64);

// ---- Base-3 LUT kernel for ternary weights beside the bit-plane LUT ------------------------------

// The base-3 (triad) LUT kernel on the layout linear_weights holds, on the same matrices as
// small_batch<S>.
template <class S>
void base3_lut(benchmark::State& state) {
  packed_linear<S, pack_ternary>(state, "b3_GB/s");
}
#if LOWBIT_HAS_AVX512_VBMI
// The shuffle layout's AVX-512 BW kernel where linear_weights holds the permute layout.
template <class S>
void base3_lut_shuffle(benchmark::State& state) {
  packed_linear<S, pack_ternary_shuffle>(state, "b3_GB/s");
}
#endif
#if LOWBIT_HAS_AVX512_BW
// The AVX2 base-3 kernel where linear() runs the AVX-512 one: the A/B of the two in one binary.
template <class S>
void base3_lut_avx2(benchmark::State& state) {
  packed_linear<S, pack_ternary_shuffle>(
      state, "b3_GB/s",
      [](std::span<const float> x, std::size_t tokens, const kernels::ternary_lut_matrix<S>& w, std::span<float> y,
         linear_workspace& work) {
        kernels::avx2::build_ternary_tables(x, tokens, w.cols(), work.ternary_tables);
        kernels::avx2::linear_ternary_lut(w, work.ternary_tables, y, {});
      });
}
// The same for the bit-plane LUT kernel.
template <class S>
void plane_lut_avx2(benchmark::State& state) {
  packed_linear<S, pack_lut_shuffle>(state, "lut_GB/s",
                                     [](std::span<const float> x, std::size_t tokens, const kernels::lut_matrix<S>& w,
                                        std::span<float> y, linear_workspace& work) {
                                       kernels::avx2::build_lut_tables(x, tokens, w.cols(), work.tables);
                                       kernels::avx2::linear_lut(w, work.tables, y, {});
                                     });
}
#endif
// A LUT benchmark F<S> from DRAM and in L3 at N = 1, 2, 4, 8 (2 threads; N = 1 also on 1 thread).
#define LOWBIT_LUT_SMALL_N(F, S)                                                                                       \
  BENCHMARK_TEMPLATE(F, S)                                                                                             \
      ->ArgNames({"where", "tokens", "threads"})                                                                       \
      ->Args({0, 1, 1})                                                                                                \
      ->ArgsProduct({{0, 1}, {1, 2, 4, 8}, {2}})                                                                       \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond)
// The bit-plane LUT kernel through the same bench body, for an A/B within one run.
template <class S>
void plane_lut(benchmark::State& state) {
  packed_linear<S, pack_lut>(state, "lut_GB/s");
}
#if LOWBIT_HAS_AVX512_VBMI
// The shuffle layout's kernels where linear_weights holds the permute layout.
template <class S>
void plane_lut_shuffle(benchmark::State& state) {
  packed_linear<S, pack_lut_shuffle>(state, "lut_GB/s");
}
#endif

#define LOWBIT_TERNARY_LUT(S)                                                                                          \
  BENCHMARK_TEMPLATE(base3_lut, S)                                                                                     \
      ->ArgNames({"where", "tokens", "threads"})                                                                       \
      ->Args({0, 1, 1})                                                                                                \
      ->ArgsProduct({{0, 1}, {1, 2, 4, 8}, {2}})                                                                       \
      ->Args({2, 3, 2})                                                                                                \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond);                                                                                 \
  BENCHMARK_TEMPLATE(plane_lut, S)                                                                                     \
      ->ArgNames({"where", "tokens", "threads"})                                                                       \
      ->Args({0, 1, 1})                                                                                                \
      ->ArgsProduct({{0, 1}, {1, 2, 4, 8}, {2}})                                                                       \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond)

LOWBIT_TERNARY_LUT(ternary_absmean_base3);
// 2-bit ternary, which linear_weights runs on the base-3 kernel at small N.
LOWBIT_LUT_SMALL_N(base3_lut, ternary_absmean);
// INT2-g32, which linear_weights runs on the bit-plane LUT kernel at small N, beside tiled<int2_g32>.
LOWBIT_LUT_SMALL_N(plane_lut, int2_g32);
#if LOWBIT_HAS_AVX512_VBMI
LOWBIT_LUT_SMALL_N(plane_lut_shuffle, int2_g32);
LOWBIT_LUT_SMALL_N(base3_lut_shuffle, ternary_absmean_base3);
LOWBIT_LUT_SMALL_N(base3_lut_shuffle, ternary_absmean);
#endif
#if LOWBIT_HAS_AVX512_BW
LOWBIT_LUT_SMALL_N(base3_lut_avx2, ternary_absmean_base3);
LOWBIT_LUT_SMALL_N(base3_lut_avx2, ternary_absmean);
LOWBIT_LUT_SMALL_N(plane_lut_avx2, int2_g32);
LOWBIT_LUT_SMALL_N(plane_lut_avx2, ternary_absmean_base3);
#endif

// INT3: the bit-plane LUT kernel, which linear_weights runs up to LOWBIT_LUT_MAX_TOKENS_4BIT tokens,
// beside tiled<int3_i8>, the tiles of its int8 packing that it runs above.
BENCHMARK_TEMPLATE(plane_lut, int3_g32)
    ->ArgNames({"where", "tokens", "threads"})
    ->ArgsProduct({{0, 1}, {1, 2, 4, 8, 16}, {2}})
    ->Args({2, 3, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---- LUT kernels beside the integer-dot path at small N ----------------------------------------

// Args: where (0 dram, 1 cache, 2 small), tokens, threads. Lut = true: the LUT kernel on the packed
// matrix; false: the integer-dot kernel on the qmatrix. weights_GB/s counts the qmatrix's bytes
// for both (the same work); lut_GB/s the packed bytes the LUT kernel actually reads.
template <class S, bool Lut>
void small_batch(benchmark::State& state) {
  set_threads(state, 2);
  auto& ws = weights<S>::get();
  const int where = static_cast<int>(state.range(0));
  const auto tokens = static_cast<std::size_t>(state.range(1));
  const qmatrix<S>& one = where == 1 ? ws.cache() : where == 2 ? ws.tiny() : ws.dram()[0];
  const std::size_t copies = where == 0 ? ws.dram().size() : 1;
  const auto x = gaussian(tokens * one.cols(), 6);
  std::vector<float> y(tokens * one.rows());
  linear_workspace work;
  if constexpr (Lut) lut_weights<S>::get().at(where, 0); // pack before timing
  std::size_t i = 0;
  for (auto _ : state) {
    if constexpr (Lut) {
      linear(std::span<const float>(x), tokens, lut_weights<S>::get().at(where, i++), std::span<float>(y), {}, &work);
    } else {
      linear<linear_path::int8_dot>(std::span<const float>(x), tokens, where == 0 ? ws.dram()[i++ % copies] : one,
                                    std::span<float>(y), {}, &work);
    }
    benchmark::DoNotOptimize(y.data());
  }
  report(state, one, tokens);
  if constexpr (Lut)
    state.counters["lut_GB/s"] =
        benchmark::Counter(static_cast<double>(lut_weights<S>::get().at(where, 0).storage_bytes()) * 1e-9 *
                               static_cast<double>(state.iterations()),
                           benchmark::Counter::kIsRate);
}

#define LOWBIT_SMALL_BATCH(S)                                                                                          \
  BENCHMARK_TEMPLATE(small_batch, S, true)                                                                             \
      ->ArgNames({"where", "tokens", "threads"})                                                                       \
      ->ArgsProduct({{0, 1}, {1, 2, 4, 8}, {1, 2}})                                                                    \
      ->Args({2, 3, 2})                                                                                                \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond);                                                                                 \
  BENCHMARK_TEMPLATE(small_batch, S, false)                                                                            \
      ->ArgNames({"where", "tokens", "threads"})                                                                       \
      ->ArgsProduct({{0, 1}, {1, 2, 4, 8}, {1, 2}})                                                                    \
      ->Args({2, 3, 2})                                                                                                \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond)

LOWBIT_SMALL_BATCH(int4_g32);
LOWBIT_SMALL_BATCH(int4_g128);
LOWBIT_SMALL_BATCH(uint4_g128);
LOWBIT_SMALL_BATCH(int2_g32);
LOWBIT_SMALL_BATCH(ternary_absmean);
LOWBIT_SMALL_BATCH(ternary_absmean_base3);

// ---- What linear_weights<S> runs: the kernel it picks per token count ---------------------------

// linear_weights<S> of the same matrices as weights<S> (a pool of copies of the dram matrix that
// holds >= dram_bytes of what its one-token kernel streams, lowbit_bench::streamed_bytes; the
// square and the smoke one); each copy also holds the
// packed layouts linear_weights keeps. Built on first use and kept while S's benchmarks run, as
// weights<S>.
template <class S>
struct layers {
  std::vector<linear_weights<S>> pool;
  std::optional<linear_weights<S>> square, small;
  static layers& get() { return sole<layers, layers>(); }
  const linear_weights<S>& at(int where, std::size_t i) {
    if (where == 0) {
      if (pool.empty()) {
        pool.emplace_back(make_weights<S>(gaussian(dram_rows * dram_cols, 1, 0.02f), dram_rows, dram_cols));
        const std::size_t held = lowbit_bench::streamed_bytes(pool[0], pool[0].matrix().storage_bytes());
        while (pool.size() * held < dram_bytes) pool.push_back(pool[0]);
      }
      return pool[i % pool.size()];
    }
    auto& one = where == 1 ? square : small;
    if (!one) one.emplace(where == 1 ? weights<S>::get().cache() : weights<S>::get().tiny());
    return *one;
  }
};

// linear(x, N, linear_weights<S>) (args: where 0 dram / 1 cache / 2 small, tokens, threads); the
// label names the kernel it ran (linear_weights<S>::kernel_for). weights_GB/s counts the qmatrix's
// bytes.
template <class S>
void layer(benchmark::State& state) {
  set_threads(state, 2);
  const int where = static_cast<int>(state.range(0));
  const auto tokens = static_cast<std::size_t>(state.range(1));
  auto& ls = layers<S>::get();
  const qmatrix<S>& one = ls.at(where, 0).matrix();
  const auto x = gaussian(tokens * one.cols(), 8);
  std::vector<float> y(tokens * one.rows());
  linear_workspace work;
  std::size_t i = 0;
  for (auto _ : state) {
    linear(std::span<const float>(x), tokens, ls.at(where, i++), std::span<float>(y), {}, &work);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, one, tokens);
  state.SetLabel(linear_weights<S>::kernel_for(tokens));
}

#define LOWBIT_LAYER(S)                                                                                                \
  BENCHMARK_TEMPLATE(layer, S)                                                                                         \
      ->ArgNames({"where", "tokens", "threads"})                                                                       \
      ->ArgsProduct({{0, 1}, {1, 2, 3, 4, 5, 6, 7, 8}, {2}})                                                           \
      ->ArgsProduct({{1}, {16, 32, 128}, {2}})                                                                         \
      ->Args({2, 3, 2})                                                                                                \
      ->UseRealTime()                                                                                                  \
      ->Unit(benchmark::kMicrosecond)

LOWBIT_LAYER(int4_g32);
LOWBIT_LAYER(int4_g128);
LOWBIT_LAYER(uint4_g128);
LOWBIT_LAYER(mxfp4);
LOWBIT_LAYER(nvfp4);
LOWBIT_LAYER(nf4_b64);
LOWBIT_LAYER(int8_g128);
LOWBIT_LAYER(mxint8);
LOWBIT_LAYER(mxfp8_e4m3);
LOWBIT_LAYER(int2_g32);
LOWBIT_LAYER(ternary_absmean);
LOWBIT_LAYER(ternary_absmean_base3);
// The other schemes of the formats table, as linear_weights runs them: FP8 E5M2 and FP6 on the
// tiles of their int8 packing, NF4 with double quantization on its own tiles, INT3 on the LUT
// kernel and then the tiles of its int8 packing.
LOWBIT_LAYER(mxfp8_e5m2);
LOWBIT_LAYER(mxfp6_e3m2);
LOWBIT_LAYER(mxfp6_e2m3);
LOWBIT_LAYER(nf4_dq);
LOWBIT_LAYER(int3_g32);
// GGUF IQ4_NL (4.5 bits, the bytes of INT4-g32): its table on the sign path of the tiles.
LOWBIT_LAYER(iq4_nl);

// ---- Activation preparation, per call of linear() ------------------------------------------
// One token of K = 8192 columns: the integer-dot path's int8 quantizer and the LUT path's table
// builder, scalar spec (impl 0) against AVX2 (impl 1) and, for the tables, AVX-512 (impl 2; what
// linear() runs where AVX-512 BW is compiled). Counter: activations per second.
template <class S, bool Lut>
void activation_prep(benchmark::State& state) {
  const auto impl = state.range(0);
  const std::size_t cols = 8192;
  const auto x = gaussian(cols, 7);
  kernels::int8_activations a;
  kernels::lut_activations t;
  for (auto _ : state) {
    if constexpr (Lut) {
#if LOWBIT_HAS_AVX512_BW
      if (impl == 2)
        kernels::avx512::build_lut_tables(std::span<const float>(x), 1, cols, t);
      else
#endif
#if LOWBIT_HAS_AVX2
          if (impl == 1)
        kernels::avx2::build_lut_tables(std::span<const float>(x), 1, cols, t);
      else
#endif
        kernels::build_lut_tables(std::span<const float>(x), 1, cols, t);
      benchmark::DoNotOptimize(t.q.data());
    } else {
#if LOWBIT_HAS_AVX2
      if (impl == 1)
        kernels::avx2::quantize_activations<S>(std::span<const float>(x), 1, cols, a);
      else
#endif
        kernels::quantize_activations<S>(std::span<const float>(x), 1, cols, a);
      benchmark::DoNotOptimize(a.q.data());
    }
  }
  state.counters["Mact/s"] = benchmark::Counter(
      static_cast<double>(cols) * 1e-6 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
#define LOWBIT_ACTIVATION_PREP(S, Lut)                                                                                 \
  BENCHMARK_TEMPLATE(activation_prep, S, Lut)                                                                          \
      ->ArgNames({"impl"})                                                                                             \
      ->DenseRange(0, Lut&& LOWBIT_HAS_AVX512_BW ? 2 : 1)                                                              \
      ->Unit(benchmark::kMicrosecond)
LOWBIT_ACTIVATION_PREP(int4_g32, false);
LOWBIT_ACTIVATION_PREP(int2_g32, false);
LOWBIT_ACTIVATION_PREP(nvfp4, false);
LOWBIT_ACTIVATION_PREP(ternary_absmean_base3, false);
LOWBIT_ACTIVATION_PREP(int4_g32, true);

// The base-3 LUT kernel's tables (kernels/ternary_lut.hpp) for one token of K = 8192 columns, scalar
// spec (impl 0) against AVX2 (impl 1) and AVX-512 (impl 2, where compiled), at 1 and 2 threads (a
// token's blocks split into tasks).
void ternary_tables(benchmark::State& state) {
  const auto impl = state.range(0);
  set_threads(state, 1);
  const std::size_t cols = 8192;
  const auto x = gaussian(cols, 7);
  kernels::ternary_activations t;
  for (auto _ : state) {
#if LOWBIT_HAS_AVX512_BW
    if (impl == 2)
      kernels::avx512::build_ternary_tables(std::span<const float>(x), 1, cols, t);
    else
#endif
#if LOWBIT_HAS_AVX2
        if (impl == 1)
      kernels::avx2::build_ternary_tables(std::span<const float>(x), 1, cols, t);
    else
#endif
      kernels::build_ternary_tables(std::span<const float>(x), 1, cols, t);
    benchmark::DoNotOptimize(t.q.data());
  }
  state.counters["Mact/s"] = benchmark::Counter(
      static_cast<double>(cols) * 1e-6 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(ternary_tables)
    ->ArgNames({"impl", "threads"})
    ->ArgsProduct({LOWBIT_HAS_AVX512_BW ? std::vector<std::int64_t>{0, 1, 2} : std::vector<std::int64_t>{0, 1}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// ---- Eigen fp32 baselines -------------------------------------------------------------------

#if defined(LOWBIT_BENCH_EIGEN)
// Args: where (0: copies of a 4096 x 8192 fp32 matrix, 128 MiB each, cycled through >= dram_bytes,
// from DRAM; 1: one 4096 x 4096 = 64 MiB), threads.
void eigen_gemv(benchmark::State& state) {
  set_threads(state, 1);
  const bool dram = state.range(0) == 0;
  const Eigen::Index rows = 4096, cols = dram ? 8192 : 4096;
  // Column r = row r of W. Held in the library's allocator, as the packed weights and the read probe
  // are (huge pages where Linux allows them), and mapped for Eigen.
  const Eigen::MatrixXf w0 = Eigen::MatrixXf::Random(cols, rows);
  std::vector<lowbit::aligned_vector<float>> store(1, lowbit::aligned_vector<float>(w0.data(), w0.data() + w0.size()));
  while (dram && store.size() * static_cast<std::size_t>(rows * cols) * sizeof(float) < dram_bytes)
    store.push_back(store[0]);
  std::vector<Eigen::Map<const Eigen::MatrixXf>> w;
  for (const auto& s : store) w.emplace_back(s.data(), cols, rows);
  const Eigen::VectorXf x = Eigen::VectorXf::Random(cols);
  Eigen::VectorXf y(rows);
  std::size_t i = 0;
  for (auto _ : state) {
    y.noalias() = w[i++ % w.size()].transpose() * x;
    benchmark::DoNotOptimize(y.data());
  }
  const double it = static_cast<double>(state.iterations());
  state.counters["weights_GB/s"] =
      benchmark::Counter(static_cast<double>(rows * cols) * 4e-9 * it, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(rows * cols) * 1e-9 * it, benchmark::Counter::kIsRate);
}
BENCHMARK(eigen_gemv)
    ->ArgNames({"where", "threads"})
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Args: tokens, threads; Y (tokens x 4096) = X * W^T, W 4096 x 4096.
void eigen_gemm(benchmark::State& state) {
  set_threads(state, 1);
  const Eigen::Index n = 4096, tokens = state.range(0);
  const Eigen::MatrixXf w = Eigen::MatrixXf::Random(n, n);
  const Eigen::MatrixXf x = Eigen::MatrixXf::Random(n, tokens);
  Eigen::MatrixXf y(n, tokens);
  for (auto _ : state) {
    y.noalias() = w * x;
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(n * n * tokens) * 1e-9 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(eigen_gemm)
    ->ArgNames({"tokens", "threads"})
    ->ArgsProduct({{8, 32, 128, 512}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
#endif

} // namespace
