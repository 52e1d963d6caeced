// Quantizer policies give identical results whatever the thread count (OpenMP builds; a serial
// build checks itself).
#include "lowbit/quantizers/all.hpp"

#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using namespace lowbit;

template <class F>
void same_for_every_thread_count(F&& run) {
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    const std::vector<float> got = run();
    if (first.empty())
      first = got;
    else
      EXPECT_EQ(got, first) << threads << " threads";
  }
#if defined(_OPENMP)
  omp_set_num_threads(2);
#endif
}

TEST(quantizer_threads, rtn_searches_rotation_and_quest_do_not_depend_on_threads) {
  const std::size_t rows = 97, cols = 768; // odd row count: uneven splits
  const auto w = lowbit_test::student_t3(rows * cols, 5);
  std::vector<float> out(w.size());
  same_for_every_thread_count([&] {
    rtn_mse{}.fake_quant<int4_group<128>>(w, rows, cols, out);
    return out;
  });
  same_for_every_thread_count([&] {
    rtn<mse_search, rounding::stochastic>{{}, 3}.fake_quant<nvfp4>(w, rows, cols, out);
    return out;
  });
  same_for_every_thread_count([&] { return dequantize(rtn<percentile_search>{}.quantize<mxfp4>(w, rows, cols)); });
  same_for_every_thread_count([&] {
    auto r = w;
    hadamard_rotation(cols, 4).apply_rows(r, rows);
    return r;
  });
  same_for_every_thread_count([&] { return quest_quantize<midrise<2>>(w, rows, cols, {.seed = 2}).values; });
}

} // namespace
