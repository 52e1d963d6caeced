// One-token GEMV of the bit-plane LUT kernels from DRAM, the AVX2 kernel (what linear() runs at
// N = 1) against the 512-bit pair kernel (what it runs from 2 tokens), alternated CALL BY CALL:
// each call reads another 4096 x 8192 INT2-g32 matrix of a >= 256 MiB pool, the kernels take
// turns (each first in turn), and each kernel's time is summed over its own calls. Both kernels
// so meet the same memory state, which on this shared machine moves within a second; per-round
// sweeps of one kernel after another (gemv_dram.cpp) put 0.5-1.5x between the same two kernels in
// single rounds. The tables are built once; the kernels' outputs are checked equal first.
// Built where AVX-512 BW is compiled:
//   g++ -std=gnu++20 -O2 -DNDEBUG -march=native -fopenmp -Iinclude bench/ab/lut_one_token.cpp -o /tmp/lut1 && /tmp/lut1
//   15
// Prints per kernel the GB/s of the packed matrix over all rounds and, per round, the speed
// against the AVX2 kernel (median, min, max).
#include "../read_probe.hpp"
#include "ab_common.hpp"
#include "lowbit/lowbit.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#if !LOWBIT_HAS_AVX512_BW
int main() {
  std::puts("lut_one_token: built without AVX-512 BW, nothing to compare");
  return 0;
}
#else
namespace {
using namespace lowbit;
using S = int_sym<2, 32>;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The 512-bit pair kernel at one token, as avx512::linear_lut runs it from 2 tokens.
void pair_kernel(const kernels::lut_matrix<S>& w, const kernels::lut_activations& a, std::span<float> y) {
  const std::size_t tiles = w.tiles();
  kernels::avx2::run_lut_tiles<kernels::avx512::lut_pair_rows, 1>(
      kernels::avx512::detail::tile_pairs<S>{w}, 1, a.row_entries(), y, {},
      [&](auto, std::size_t p, std::size_t t, auto* out) {
        if (2 * p + 1 < tiles)
          kernels::avx512::detail::lut_tile_pair<S, 1>(w, a, 2 * p, t, out);
        else
          kernels::avx512::detail::lut_last_tile<S, 1>(w, a, 2 * p, t, out);
      });
}
} // namespace

int main(int argc, char** argv) {
  omp_set_num_threads(2);
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
  const std::size_t rows = 4096, cols = 8192;
  std::vector<kernels::lut_matrix<S>> pool;
  pool.push_back(kernels::pack_for_lut(quantize<S>(lowbit_ab::gaussian(rows * cols, 1), rows, cols)));
  while (pool.size() * pool[0].storage_bytes() < lowbit_bench::dram_bytes(std::size_t{256} << 20))
    pool.push_back(pool[0]);
  const auto x = lowbit_ab::gaussian(cols, 2);
  kernels::lut_activations a;
  kernels::avx2::build_lut_tables(std::span<const float>(x), 1, cols, a);
  std::vector<float> y(rows), y2(rows);
  kernels::avx2::linear_lut(pool[0], a, y, {});
  pair_kernel(pool[0], a, y2);
  if (y != y2) return std::puts("lut_one_token: the kernels disagree"), 1;

  constexpr int kernels_n = 2;
  const char* names[kernels_n] = {"AVX2 kernel", "512-bit pair kernel"};
  const auto call = [&](int k, std::size_t i) {
    if (k == 0)
      kernels::avx2::linear_lut(pool[i], a, y, {});
    else
      pair_kernel(pool[i], a, y);
  };
  std::vector<double> speed[kernels_n];
  double total[kernels_n] = {};
  for (std::size_t i = 0; i < pool.size(); ++i) call(static_cast<int>(i % kernels_n), i); // page faults, warm-up
  for (int r = 0; r < rounds; ++r) {
    double t[kernels_n] = {};
    for (std::size_t n = 0; n < 3 * pool.size(); ++n)
      for (int j = 0; j < kernels_n; ++j) {
        const int k = (j + static_cast<int>(n)) % kernels_n;
        const double t0 = now();
        call(k, (n * kernels_n + static_cast<std::size_t>(j)) % pool.size());
        t[k] += now() - t0;
      }
    for (int k = 0; k < kernels_n; ++k) {
      speed[k].push_back(t[0] / t[k]);
      total[k] += t[k];
    }
  }
  const double bytes = static_cast<double>(pool[0].storage_bytes()) * 3.0 * static_cast<double>(pool.size()) * rounds;
  std::printf("INT2-g32, 4096 x 8192, N = 1, 2 threads, %d rounds\n", rounds);
  for (int k = 0; k < kernels_n; ++k)
    std::printf("  %-20s %.1f GB/s; speed against the AVX2 kernel per round: median %.3f, min %.3f, max %.3f\n",
                names[k], bytes * 1e-9 / total[k], median(speed[k]),
                *std::min_element(speed[k].begin(), speed[k].end()),
                *std::max_element(speed[k].begin(), speed[k].end()));
}
#endif
