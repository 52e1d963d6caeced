// GEMV from DRAM against the read probe, with the kernels' software prefetch switched at run time,
// so that every setting is timed in ONE process on the same weights: on the Zen 4 machine the read
// probe moves between about 33 and 60 GB/s from one process to the next (and within one), so
// settings compared across binaries measure the machine as much as the kernels. Built only by
// bench/ab/prefetch_sweep.sh, on a copy of the headers whose prefetch constants it turns into
// variables; the library itself keeps them constexpr.
//
// Per round: the 2-thread read probe (>= 1 GiB), then per scheme linear() at N = 1 (or a tile kernel
// named in the scheme, see run_tiles) over a pool of >= 256 MiB (and >= 4x the LLC) of what the kernel streams (see
// streamed_bytes; from run 28) in linear_weights copies of one
// 4096 x 8192 matrix (3 passes per setting), the settings taking turns CALL BY CALL (each first in
// turn), so that they meet the same memory state, which on these shared machines moves within a
// second. Printed per setting and scheme: the median GB/s of weights, the median of the per-round
// shares of the round's probe, and (settings after the first) the median of the per-round speed
// against the first setting.
//   prefetch_sweep.sh [ROUNDS] [SETTING ...]   SETTING = tiles:lut:hint[:side[:pages]] (bytes, bytes, 0 = L1 /
//   1 = L2, side streams prefetched 1 (default) / 0, weights advised to huge pages 1 (default) / 0)
// Each round also reads, call by call between the kernels' calls, a pool of as many bytes with the
// probe (from run 30), and prints each kernel's share of that probe: the same memory state within
// milliseconds, where the round's 1 GiB probe ran a second or more before. AB_THREADS sets the
// threads (default 2), AB_ROWS / AB_COLS (in EXTRA_FLAGS, -D) the matrix.
// GEMV_DRAM_SCHEMES=name,name,... runs only those schemes (names as printed), in that order; last
// printed is each scheme's time per matrix against the first scheme's, the median of the rounds'
// ratios (issue 7's "2-bit <= 0.55x the 4-bit time"):
//   GEMV_DRAM_SCHEMES='INT4-g128,INT2-g32,INT2-g128,INT3-g32' bash bench/ab/prefetch_sweep.sh 15 2048:6144:1:1
#include "../read_probe.hpp"
#include "lowbit/kernels/avx2/prefetch.hpp"
#include "lowbit/lowbit.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {
using namespace lowbit;
// The matrix: 4096 x 8192 unless EXTRA_FLAGS sets -DAB_ROWS / -DAB_COLS (e.g. 8192 x 4096, the
// same bytes with half the LUT kernels' tables per token).
#ifndef AB_ROWS
#define AB_ROWS 4096
#endif
#ifndef AB_COLS
#define AB_COLS 8192
#endif
constexpr std::size_t rows = AB_ROWS, cols = AB_COLS;
const std::size_t pool_bytes = lowbit_bench::dram_bytes(std::size_t{256} << 20); // >= 4x the LLC too

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<float> gaussian(std::size_t n, unsigned seed, float sigma) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& e : v) e = d(g);
  return v;
}

// The streaming read of kernels_bench.cpp's probe_read_bandwidth, in GB/s: the better of one pass
// without and one with software prefetch (4 KiB ahead into L2).
double probe() {
  const auto& buf = lowbit_bench::probe_buffer();
  double best = 0.0;
  for (int prefetch = 0; prefetch < 2; ++prefetch) {
    const double t0 = now();
    const float total = prefetch ? lowbit_bench::stream_sum<4096>(buf.data(), buf.size())
                                 : lowbit_bench::stream_sum(buf.data(), buf.size());
    const double t = now() - t0;
    if (total == 0.0f) std::puts("");
    best = std::max(best, static_cast<double>(buf.size() * sizeof(float)) * 1e-9 / t);
  }
  return best;
}

struct setting {
  std::size_t tiles, lut;
  int hint, side;
  int pages; // 1: the pool advised to huge pages (the library's default), 0: not (4 KiB pages)
};

void apply(const setting& s) {
  kernels::avx2::detail::tiled_prefetch = s.tiles;
  kernels::avx2::lut_prefetch = s.lut;
  kernels::avx2::prefetch_hint = s.hint;
  kernels::avx2::side_prefetch = s.side != 0;
}

struct scheme_run {
  const char* name;
  std::size_t bytes; // per matrix
  // GB/s of weights per setting, then last the read probe's GB/s over a pool of the same size,
  // timed call by call between the kernels' calls (see make)
  std::function<std::vector<double>(const std::vector<setting>&)> run;
};

// Which kernel a scheme_run times on the int8 tiles: linear() (0; where the 512-bit tile kernel is
// compiled, its blocks of two pairs), or there the AVX2 kernel (1) or the 512-bit pair kernel on
// single pairs (2). Kernels 3 and 4: linear() on the shuffle layout of the base-3 LUT (ternary
// schemes) or of the bit-plane LUT, the pool holding kernels::pack_for_ternary_lut or
// kernels::pack_for_lut copies instead of linear_weights. Kernel 5: the bit-plane LUT's permute layout
// (where VBMI is compiled), for schemes whose linear_weights runs the tiles at one token.
template <class S, int Kernel>
struct pool_entry {
  using type = linear_weights<S>;
};
template <class S>
struct pool_entry<S, 3> {
  using type = kernels::ternary_lut_matrix<S>;
};
template <class S>
struct pool_entry<S, 4> {
  using type = kernels::lut_matrix<S>;
};
#if LOWBIT_HAS_AVX512_VBMI
template <class S>
struct pool_entry<S, 5> {
  using type = kernels::lut_matrix<S, kernels::lut_layout::permute>;
};
#endif

template <class S, int Kernel = 0, class W>
void run_tiles(const W& w, std::span<const float> x, std::span<float> y, linear_workspace& ws) {
  if constexpr (Kernel == 0 || Kernel >= 3) {
    linear(x, 1, w, y, {}, &ws);
  } else {
    const auto& t = w.tiles();
    kernels::avx2::quantize_activations<S>(x, 1, t.cols(), ws.activations);
    kernels::avx2::prepare_tile_activations<S>(ws.activations, ws.tile_segments);
    ws.scratch.resize(static_cast<std::size_t>(max_threads()) * kernels::avx2::int8_tiles_scratch_size(t) * 4);
#if LOWBIT_HAS_AVX512_BW && LOWBIT_HAS_AVX512_VNNI
    if constexpr (Kernel == 2)
      kernels::avx512::detail::pair_tiles<S, 1>(t, ws.activations, ws.tile_segments, y, {}, ws.scratch.data());
    else
#endif
      kernels::avx2::linear_int8_tiled(t, ws.activations, ws.tile_segments, y, {}, ws.scratch.data());
  }
}

template <class S, int Kernel = 0>
scheme_run make(const char* name) {
  using W = typename pool_entry<S, Kernel>::type;
  const auto q = quantize<S>(gaussian(rows * cols, 1, 0.02f), rows, cols);
  const std::size_t bytes = q.storage_bytes(); // the qmatrix's bytes, whichever copy runs
  // The prototype every timed copy is made from.
  const auto proto = std::make_shared<const W>([&]() -> W {
    if constexpr (Kernel == 3)
      return kernels::pack_for_ternary_lut(q);
    else if constexpr (Kernel == 4)
      return kernels::pack_for_lut(q);
    else if constexpr (Kernel == 5)
      return kernels::pack_for_lut<kernels::lut_layout::permute>(q);
    else
      return W(q);
  }());
  const std::size_t held = lowbit_bench::streamed_bytes(*proto, bytes);
  auto x = std::make_shared<std::vector<float>>(gaussian(cols, 8, 1.0f));
  auto y = std::make_shared<std::vector<float>>(rows);
  auto work = std::make_shared<linear_workspace>();
  // The copies are made per round and freed after it (the copy takes a fraction of a second; every
  // scheme's >= 4x LLC pool at once would not fit in memory where the LLC is 260 MiB).
  // A pool per page setting, [0] on 4 KiB pages and [1] advised to huge pages, each of the same
  // number of copies of *proto (made with the advice on).
  auto by_pages = std::make_shared<std::array<std::vector<W>, 2>>();
  return {
      name, bytes, [=](const std::vector<setting>& settings) {
        std::size_t copies = 0;
        while (copies * held < pool_bytes) ++copies;
        for (int m = 0; m < 2; ++m)
          if (std::any_of(settings.begin(), settings.end(), [&](const setting& s) { return (s.pages != 0) == m; })) {
            lowbit::huge_page_advice = m != 0;
            while ((*by_pages)[m].size() < copies) (*by_pages)[m].push_back(*proto);
          }
        // The probe's pool: as many buffers of the streamed bytes (in whole 64 Ki-float chunks) on
        // huge pages, each read (2 threads, prefetched) once per call round, between the kernels'
        // calls, so that its GB/s meets the memory state the kernels meet, not the one of a second before.
        const std::size_t chunk = std::size_t{1} << 16, probe_n = (held / sizeof(float) + chunk - 1) / chunk * chunk;
        std::vector<aligned_vector<float>> probe_pool;
        while (probe_pool.size() < copies) probe_pool.emplace_back(probe_n, 1.0f);
        lowbit::huge_page_advice = true;
        const std::size_t calls = 3 * copies, n = settings.size();
        std::vector<double> t(n + 1, 0.0);
        for (std::size_t i = 0; i < calls; ++i) {
          for (std::size_t j = 0; j < n; ++j) {
            const std::size_t k = (i + j) % n;
            apply(settings[k]);
            const double t0 = now();
            run_tiles<S, Kernel>((*by_pages)[settings[k].pages != 0][(i * n + j) % copies], *x, *y, *work);
            t[k] += now() - t0;
          }
          const double t0 = now();
          if (lowbit_bench::stream_sum<4096>(probe_pool[i % copies].data(), probe_n) == 0.0f) std::puts("");
          t[n] += (now() - t0) * static_cast<double>(bytes) / static_cast<double>(probe_n * sizeof(float));
        }
        for (auto& v : t) v = static_cast<double>(bytes * calls) * 1e-9 / v;
        for (auto& p : *by_pages) p.clear();
        return t;
      }};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
} // namespace

int main(int argc, char** argv) {
  // 2 threads (issue 6's setting) unless AB_THREADS says otherwise; the probes use as many.
  omp_set_num_threads(std::getenv("AB_THREADS") != nullptr ? std::max(1, std::atoi(std::getenv("AB_THREADS"))) : 2);
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
  std::vector<setting> settings;
  for (int i = 2; i < argc; ++i) {
    setting s{0, 0, 0, 1, 1};
    if (std::sscanf(argv[i], "%zu:%zu:%d:%d:%d", &s.tiles, &s.lut, &s.hint, &s.side, &s.pages) < 3)
      return std::fprintf(stderr, "bad %s\n", argv[i]), 2;
    settings.push_back(s);
  }
  if (settings.empty()) settings = {{0, 2048, 0, 1, 1}, {0, 0, 1, 1, 1}, {4096, 6144, 0, 1, 1}, {4096, 6144, 1, 1, 1}};
  // GEMV_DRAM_SCHEMES=name,name,... keeps those schemes only, in that order (the first is the
  // baseline of the time ratios printed last).
  std::vector<std::string> only;
  if (const char* e = std::getenv("GEMV_DRAM_SCHEMES"))
    for (std::string list = e; !list.empty();) {
      const std::size_t comma = list.find(',');
      only.push_back(list.substr(0, comma));
      list = comma == std::string::npos ? "" : list.substr(comma + 1);
    }
  std::vector<scheme_run> schemes;
  auto add = [&]<class S, int Kernel = 0>(const char* name) {
    if (only.empty() || std::find(only.begin(), only.end(), name) != only.end())
      schemes.push_back(make<S, Kernel>(name));
  };
  add.template operator()<int4_group<128>>("INT4-g128");
  add.template operator()<nf4_scheme<64>>("NF4-b64");
  add.template operator()<mxfp4>("MXFP4");
  add.template operator()<nvfp4>("NVFP4");
  add.template operator()<int8_group<128>>("INT8-g128");
  add.template operator()<int_sym<2, 32>>("INT2-g32");
  add.template operator()<int_sym<2, 32>, 4>("INT2-g32 shuffle");
  add.template operator()<ternary_absmean>("ternary");
  add.template operator()<ternary_absmean_base3>("ternary-b3");
  add.template operator()<ternary_absmean_base3, 3>("ternary-b3 shuffle");
#if LOWBIT_HAS_AVX512_BW && LOWBIT_HAS_AVX512_VNNI
  add.template operator()<int4_group<128>, 1>("INT4-g128 AVX2");
  add.template operator()<int4_group<128>, 2>("INT4-g128 1 pair");
  add.template operator()<nvfp4, 1>("NVFP4 AVX2");
  add.template operator()<int8_group<128>, 1>("INT8-g128 AVX2");
  add.template operator()<int8_group<128>, 2>("INT8-g128 1 pair");
#endif
  add.template operator()<int_sym<2, 128>>("INT2-g128");
  add.template operator()<int4_group<32>>("INT4-g32");
  add.template operator()<int_sym<3, 32>>("INT3-g32");
  add.template operator()<int_sym<3, 32>, 4>("INT3-g32 shuffle");
  add.template operator()<int_asym<4, 128>>("INT4-g128 zp");
#if LOWBIT_HAS_AVX512_VBMI
  add.template operator()<int_asym<4, 128>, 5>("INT4-g128 zp LUT");
#endif
  if (!only.empty()) {
    std::vector<scheme_run> kept;
    for (const auto& name : only) {
      const auto it = std::find_if(schemes.begin(), schemes.end(), [&](const auto& s) { return name == s.name; });
      if (it == schemes.end()) return std::fprintf(stderr, "no scheme %s\n", name.c_str()), 2;
      kept.push_back(*it);
    }
    schemes = kept;
  }
  for (const auto& s : schemes) s.run({settings[0]}); // warm up: tables, workspace, page faults
  std::vector<double> probes;
  std::vector<std::vector<std::vector<double>>> gbs(settings.size(), std::vector<std::vector<double>>(schemes.size())),
      shares = gbs, speed = gbs, ratio = gbs, paired = gbs;
  std::vector<std::vector<double>> pair_probe(schemes.size());
  for (int r = 0; r < rounds; ++r) {
    const double p = probe();
    probes.push_back(p);
    for (std::size_t j = 0; j < schemes.size(); ++j) {
      const std::vector<double> g = schemes[j].run(settings);
      pair_probe[j].push_back(g.back());
      for (std::size_t v = 0; v < settings.size(); ++v) {
        gbs[v][j].push_back(g[v]);
        // time per matrix against the first scheme's in this round
        ratio[v][j].push_back(static_cast<double>(schemes[j].bytes) / g[v] /
                              (static_cast<double>(schemes[0].bytes) / gbs[v][0].back()));
        shares[v][j].push_back(g[v] / p);
        paired[v][j].push_back(g[v] / g.back());
        speed[v][j].push_back(g[v] / g[0]);
      }
    }
  }
  std::printf("read probe, %d threads: median %.1f GB/s, min %.1f, max %.1f (%d rounds)\n", max_threads(),
              median(probes), *std::min_element(probes.begin(), probes.end()),
              *std::max_element(probes.begin(), probes.end()), rounds);
  std::printf("| tiles : LUT : hint : side : pages |");
  for (const auto& s : schemes) std::printf(" %s |", s.name);
  std::printf("\n|---|");
  for (std::size_t j = 0; j < schemes.size(); ++j) std::printf("---|");
  std::printf("\n");
  for (std::size_t v = 0; v < settings.size(); ++v) {
    std::printf("| %zu : %zu : %s : %s : %s |", settings[v].tiles, settings[v].lut, settings[v].hint == 0 ? "L1" : "L2",
                settings[v].side != 0 ? "on" : "off", settings[v].pages != 0 ? "huge" : "4K");
    for (std::size_t j = 0; j < schemes.size(); ++j)
      if (v == 0)
        std::printf(" %.1f (%.0f %%) |", median(gbs[v][j]), 100.0 * median(shares[v][j]));
      else
        std::printf(" %.1f (%.0f %%) %.3fx |", median(gbs[v][j]), 100.0 * median(shares[v][j]), median(speed[v][j]));
    std::printf("\n");
  }
  std::printf("\nthe probe read call by call between the kernels' calls (GB/s, median of the rounds), and each "
              "kernel's share of it (median of the rounds' shares), per setting:\n|");
  for (std::size_t j = 0; j < schemes.size(); ++j) std::printf(" %s %.1f |", schemes[j].name, median(pair_probe[j]));
  std::printf("\n");
  for (std::size_t v = 0; v < settings.size(); ++v) {
    std::printf("|");
    for (std::size_t j = 0; j < schemes.size(); ++j) std::printf(" %.0f %% |", 100.0 * median(paired[v][j]));
    std::printf("\n");
  }
  std::printf("\ntime per matrix / %s's (median of the rounds), per setting:\n", schemes[0].name);
  for (std::size_t v = 0; v < settings.size(); ++v) {
    std::printf("|");
    for (std::size_t j = 0; j < schemes.size(); ++j) std::printf(" %s %.3f |", schemes[j].name, median(ratio[v][j]));
    std::printf("\n");
  }
}
