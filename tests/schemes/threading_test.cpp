// Results do not depend on the thread count (OpenMP builds; a serial build checks itself).
#include "lowbit/core/threading.hpp"
#include "lowbit/schemes/all.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using namespace lowbit;

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

} // namespace
