// Results do not depend on the thread count (OpenMP builds; a serial build checks itself).
#include "lowbit/core/threading.hpp"
#include "lowbit/schemes/all.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using namespace lowbit;

int omp_procs() {
#if defined(_OPENMP)
  return omp_get_num_procs();
#else
  return 1;
#endif
}

template <class S>
void same_for_every_thread_count() {
  std::mt19937 rng(21);
  std::student_t_distribution<float> t(3.0f);
  const std::size_t rows = 97, cols = 1000; // odd sizes: uneven row splits
  std::vector<float> x(rows * cols);
  for (auto& v : x) v = t(rng);
  std::vector<std::uint8_t> first;
  std::vector<float> first_fq;
  for (int threads : {1, 2, 3}) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    const auto bytes = serialize(quantize<S>(x, rows, cols));
    std::vector<float> fq(x.size());
    fake_quant<S>(x, rows, cols, fq);
    if (first.empty()) {
      first = bytes;
      first_fq = fq;
      EXPECT_EQ(dequantize(deserialize<S>(bytes)), fq);
    } else {
      EXPECT_EQ(bytes, first) << scheme_name<S>() << " with " << threads << " threads";
      EXPECT_EQ(fq, first_fq) << scheme_name<S>() << " with " << threads << " threads";
    }
  }
#if defined(_OPENMP)
  omp_set_num_threads(omp_get_num_procs());
#endif
}

TEST(threading, results_are_identical_whatever_the_thread_count) {
  EXPECT_GE(max_threads(), 1);
  same_for_every_thread_count<mxfp4>();
  same_for_every_thread_count<nvfp4>();
  same_for_every_thread_count<int_asym<4, 128>>();
  same_for_every_thread_count<int_sym<8, 0, fp16, granularity::row>>();
  same_for_every_thread_count<nf4_dq>();
  same_for_every_thread_count<ternary_absmean_base3>();
}

void set_threads([[maybe_unused]] int n) {
#if defined(_OPENMP)
  omp_set_num_threads(n);
#endif
}

TEST(threading, an_exception_on_any_thread_reaches_the_caller) {
  std::mutex ranges_mutex;
  const std::size_t rows = 97, work = std::size_t{1} << 20; // above the serial threshold
  for (int threads : {1, 2, 3}) {
    set_threads(threads);
    // The throwing row falls in the first, a middle, and the last thread's range.
    for (std::size_t bad : {std::size_t{0}, std::size_t{48}, rows - 1}) {
      std::vector<int> seen(rows, 0);
      std::vector<std::pair<std::size_t, std::size_t>> ranges; // as handed out, whatever the team size
      try {
        parallel_rows(rows, work, [&](std::size_t r0, std::size_t r1) {
          {
            const std::lock_guard<std::mutex> lock(ranges_mutex);
            ranges.emplace_back(r0, r1);
          }
          for (std::size_t r = r0; r < r1; ++r) {
            if (r == bad) throw std::runtime_error("row " + std::to_string(r));
            seen[r] = 1;
          }
        });
        ADD_FAILURE() << "no exception with " << threads << " threads, row " << bad;
      } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "row " + std::to_string(bad));
      }
      // The ranges partition the rows, and the other threads ran theirs to the end: every row
      // outside the throwing thread's range was seen, and the rows before `bad` in its own range.
      std::sort(ranges.begin(), ranges.end());
      ASSERT_FALSE(ranges.empty());
#if defined(_OPENMP)
      if (!omp_get_dynamic()) { // a full team, up to OMP_THREAD_LIMIT
        EXPECT_EQ(ranges.size(), static_cast<std::size_t>(std::min(threads, omp_get_thread_limit())));
      }
#endif
      EXPECT_EQ(ranges.front().first, 0u);
      EXPECT_EQ(ranges.back().second, rows);
      for (std::size_t i = 1; i < ranges.size(); ++i) EXPECT_EQ(ranges[i].first, ranges[i - 1].second);
      for (const auto& [r0, r1] : ranges) {
        const bool owner = r0 <= bad && bad < r1;
        for (std::size_t r = r0; r < r1; ++r)
          if (!owner || r < bad) {
            EXPECT_EQ(seen[r], 1) << threads << " threads, row " << r << ", bad " << bad;
          }
      }
    }
    // Every thread throws: one exception arrives.
    EXPECT_THROW(parallel_rows(rows, work, [](std::size_t, std::size_t) { throw std::runtime_error("each"); }),
                 std::runtime_error);
    std::vector<int> seen(rows, 0); // and without one, every row exactly once
    parallel_rows(rows, work, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) ++seen[r];
    });
    EXPECT_EQ(seen, std::vector<int>(rows, 1));
  }
  set_threads(omp_procs());
}

TEST(threading, corrupt_codes_throw_from_a_parallel_dequantize) {
  // Base-3 bytes >= 243 make unpack_codes throw inside dequantize's row loop, which runs on
  // several threads at this size; the error must reach the caller (it used to terminate).
  const std::size_t rows = 64, cols = 2000;
  const auto w = quantize<ternary_absmean_base3>(std::vector<float>(rows * cols, 0.5f), rows, cols);
  for (int threads : {1, 2, 3}) {
    set_threads(threads);
    for (std::size_t at : {std::size_t{0}, w.codes().size() / 2, w.codes().size() - 1}) {
      auto bad = w;
      bad.codes()[at] = 250;
      EXPECT_THROW(dequantize(bad), error) << threads << " threads, byte " << at;
    }
    EXPECT_EQ(dequantize(w), std::vector<float>(rows * cols, 0.5f)); // scale mean|w| = 0.5, codes +1
  }
  set_threads(omp_procs());
}

} // namespace
