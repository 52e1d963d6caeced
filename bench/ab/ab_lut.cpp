// A/B of the LUT and int8-tile kernels between two versions of the headers in ONE binary, so that
// Google Benchmark's random interleaving spreads this machine's noise over both sides equally
// (two binaries run one after the other see different noise). Built by bench/ab/run.sh: this file
// is compiled three times,
//   -DAB_SIDE=old with the old headers and -Dlowbit=lowbit_old (its own namespace, no ODR clash),
//   -DAB_SIDE=new with the working tree's headers,
//   -DAB_MAIN for the benchmarks, which call both sides through plain functions.
// Cases: 4096 x 4096 weights (L3-resident; AB_ROWS x 4096 with -DAB_ROWS), tokens 1-128 (1, 2 and 8 for the tile A/B);
// run.sh sets 2 threads by default. old_tiles / new_tiles on schemes 3, 6 and 7 compare the int8 tile kernels alone.
// The LUT side of the base-3 schemes (4, 5) is the base-3 kernel (pack_for_ternary_lut); that of schemes 8 and 9 (the
// same matrices) the base-3 kernel on the permute layout where the headers have it (LOWBIT_HAS_AVX512_VBMI defined),
// else on the shuffle layout: old_lut against new_lut on 8 and 9 compares the two layouts when OLD predates the permute
// layout.
#if defined(AB_MAIN)
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

float ab_old_lut(int scheme, std::size_t tokens);
float ab_new_lut(int scheme, std::size_t tokens);
float ab_old_tiles(int scheme, std::size_t tokens);
float ab_new_tiles(int scheme, std::size_t tokens);

namespace {
// Which: 0 the old LUT kernel, 1 the new one, 2 the new int8 tiles (the baseline of issue 7), 3 the
// old int8 tiles.
template <int Which>
void ab(benchmark::State& state) {
  const int scheme = static_cast<int>(state.range(0));
  const auto tokens = static_cast<std::size_t>(state.range(1));
  for (auto _ : state) {
    const float v = Which == 0   ? ab_old_lut(scheme, tokens)
                    : Which == 1 ? ab_new_lut(scheme, tokens)
                    : Which == 2 ? ab_new_tiles(scheme, tokens)
                                 : ab_old_tiles(scheme, tokens);
    benchmark::DoNotOptimize(v);
  }
}
} // namespace

// scheme: 0 INT2-g32, 1 ternary (2-bit planes), 2 INT4-g128 with zero points, 3 INT4-g32, 4 ternary
// (2-bit codes, base-3 LUT), 5 ternary in base-3 codes (base-3 LUT), 8 and 9 as 4 and 5 on the
// permute layout, 10 INT2-g32, 11 INT4-g128 with zero points and 12 INT3-g32 on the bit-plane
// kernel's permute layout (their tiles: INT2-g32, INT4-g128 with zero points, INT4-g32), 16 INT3-g32
// on the bit-plane kernel's shuffle layout (tiles: INT4-g32).
static void ab_cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"scheme", "tokens"})
      ->ArgsProduct({{0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 16}, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}})
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}
BENCHMARK_TEMPLATE(ab, 0)->Name("old_lut")->Apply(ab_cases);
BENCHMARK_TEMPLATE(ab, 1)->Name("new_lut")->Apply(ab_cases);
BENCHMARK_TEMPLATE(ab, 2)->Name("new_tiles")->Apply(ab_cases);
// The int8 tiles alone, old against new: INT4-g32 (scheme 3, whose new side ab_cases has), NVFP4 (6),
// MXFP4 (7), INT8-g128 (13), INT4-g128 (14) and NF4-b64 (15), which have no LUT here.
static void tile_cases(benchmark::internal::Benchmark* b, std::vector<std::int64_t> schemes) {
  b->ArgNames({"scheme", "tokens"})->ArgsProduct({schemes, {1, 2, 8}})->UseRealTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK_TEMPLATE(ab, 3)->Name("old_tiles")->Apply([](auto* b) { tile_cases(b, {3, 6, 7, 13, 14, 15}); });
BENCHMARK_TEMPLATE(ab, 2)->Name("new_tiles")->Apply([](auto* b) { tile_cases(b, {6, 7, 13, 14, 15}); });
#else
#include "ab_common.hpp"
#include "lowbit/lowbit.hpp"

#include <cstddef>
#include <span>
#include <vector>

namespace {
// AB_ROWS (compile flag, default 4096) sets the rows: AB_FLAGS='-DAB_ROWS=512' with OMP_NUM_THREADS=1
// puts one core's weights in its L2.
#ifndef AB_ROWS
#define AB_ROWS 4096
#endif
constexpr std::size_t n = 4096, rows = AB_ROWS, max_tokens = 512;
using namespace lowbit;

using lowbit_ab::gaussian;

// One packed matrix, its activations and workspace, made on first use.
template <class Packed>
struct bench_case {
  Packed w;
  linear_workspace ws;
  std::vector<float> x = gaussian(max_tokens * n, 2), y = std::vector<float>(max_tokens * rows);
  template <class Pack>
  explicit bench_case(Pack&& pack) : w(pack()) {}
  float run(std::size_t tokens) {
    linear(std::span<const float>(x).first(tokens * n), tokens, w, std::span<float>(y).first(tokens * rows), {}, &ws);
    return y[0];
  }
};

// Kernel: 0 the bit-plane LUT (pack_for_lut), 1 the int8 tiles, 2 the base-3 LUT (pack_for_ternary_lut),
// 3 the base-3 LUT on the permute layout where these headers have it (else as 2), 4 the bit-plane LUT
// on its permute layout where these headers have it (else as 0).
template <class S, int Kernel>
float run(std::size_t tokens) {
  static auto c = [] {
    auto q = quantize<S>(gaussian(rows * n, 1), rows, n);
    if constexpr (Kernel == 0)
      return bench_case<kernels::lut_matrix<S>>([&] { return kernels::pack_for_lut(q); });
    else if constexpr (Kernel == 1)
      return bench_case<kernels::int8_tiled<S>>([&] { return kernels::pack_for_int8_tiles(q); });
    else if constexpr (Kernel == 2)
      return bench_case<kernels::ternary_lut_matrix<S>>([&] { return kernels::pack_for_ternary_lut(q); });
    else if constexpr (Kernel == 3)
#if defined(LOWBIT_HAS_AVX512_VBMI) && LOWBIT_HAS_AVX512_VBMI
      return bench_case<kernels::ternary_lut_matrix<S, kernels::ternary_lut_layout::permute>>(
          [&] { return kernels::pack_for_ternary_lut<kernels::ternary_lut_layout::permute>(q); });
#else
      return bench_case<kernels::ternary_lut_matrix<S>>([&] { return kernels::pack_for_ternary_lut(q); });
#endif
    else
#if defined(LOWBIT_HAS_AVX512_VBMI) && LOWBIT_HAS_AVX512_VBMI && __has_include("lowbit/kernels/avx512/lut_perm.hpp")
      return bench_case<kernels::lut_matrix<S, kernels::lut_layout::permute>>(
          [&] { return kernels::pack_for_lut<kernels::lut_layout::permute>(q); });
#else
      return bench_case<kernels::lut_matrix<S>>([&] { return kernels::pack_for_lut(q); });
#endif
  }();
  return c.run(tokens);
}

// Schemes 4 and 5 (ternary in 2-bit and base-3 codes) run the base-3 LUT kernel as their LUT.
template <bool Lut>
float pick(int scheme, std::size_t tokens) {
  constexpr int lut = Lut ? 0 : 1, lut3 = Lut ? 2 : 1, perm = Lut ? 3 : 1, pperm = Lut ? 4 : 1;
  switch (scheme) {
  case 0: return run<int_sym<2, 32>, lut>(tokens);
  case 1: return run<ternary_absmean, lut>(tokens);
  case 2: return run<int_asym<4, 128>, lut>(tokens);
  case 4: return run<ternary_absmean, lut3>(tokens);
  case 5: return Lut ? run<ternary_absmean_base3, 2>(tokens) : run<ternary_absmean, 1>(tokens); // no base-3 tiles
  case 8: return run<ternary_absmean, perm>(tokens);
  case 10: return run<int_sym<2, 32>, pperm>(tokens);
  case 11: return run<int_asym<4, 128>, pperm>(tokens);
  case 12: return Lut ? run<int_sym<3, 32>, 4>(tokens) : run<int4_group<32>, 1>(tokens);
  case 16: return Lut ? run<int_sym<3, 32>, 0>(tokens) : run<int4_group<32>, 1>(tokens); // shuffle layout
  case 9: return Lut ? run<ternary_absmean_base3, 3>(tokens) : run<ternary_absmean, 1>(tokens);
  case 6: return run<nvfp4, 1>(tokens);            // tiles only
  case 7: return run<mxfp4, 1>(tokens);            // tiles only
  case 13: return run<int8_group<128>, 1>(tokens); // tiles only
  case 14: return run<int4_group<128>, 1>(tokens); // tiles only
  case 15: return run<nf4_scheme<64>, 1>(tokens);  // tiles only
  default: return run<int4_group<32>, lut>(tokens);
  }
}
} // namespace

#define AB_CAT2(a, b) a##b
#define AB_CAT(a, b) AB_CAT2(a, b)
float AB_CAT(AB_CAT(ab_, AB_SIDE), _lut)(int scheme, std::size_t tokens) { return pick<true>(scheme, tokens); }
float AB_CAT(AB_CAT(ab_, AB_SIDE), _tiles)(int scheme, std::size_t tokens) { return pick<false>(scheme, tokens); }
#endif
