// No allocation in the hot path: a call of linear() with a linear_workspace that earlier calls have
// grown allocates nothing, on every entry point (qmatrix on both paths, the LUT, codebook LUT,
// base-3 LUT and tile packings, linear_weights) and at 1, 2 and 3 threads (README, "create once:
// later calls do not allocate"). This binary replaces the global operator new and delete to count
// allocations; the other kernel tests live in lowbit_kernels_tests.
#include "lowbit/kernels/linear.hpp"
#include "lowbit/schemes/all.hpp"

#include "kernels/kernel_test_support.hpp"
#include "quantizers/test_data.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <span>
#include <vector>

// The replacements below pair malloc with free, which g++ cannot see through operator delete.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<long> allocations{0};

void* counted(std::size_t n, std::size_t align) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (n == 0) n = 1;
  void* p =
      align <= alignof(std::max_align_t) ? std::malloc(n) : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  return p;
}
} // namespace

void* operator new(std::size_t n) { return counted(n, 0); }
void* operator new[](std::size_t n) { return counted(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted(n, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

using namespace lowbit;
using lowbit_test::random_weights;
using lowbit_test::set_threads;

constexpr std::size_t rows = 67, cols = 384; // a row-tile tail; 67 x 384 x 2 tokens reaches the threads

// Calls run(ws, tokens) with a fresh workspace at the largest token count, then at each count in
// turn, and checks that the second call at each count allocates nothing; at 1, 2 and 3 threads.
// Also checks that the counter sees the first call's allocations (so that a zero is not vacuous).
template <class Run>
void expect_no_allocation(Run&& run) {
  for (int threads : {1, 2, 3}) {
    set_threads(threads);
    linear_workspace ws;
    const long before_first = allocations.load();
    run(ws, std::size_t{12});
    EXPECT_GT(allocations.load(), before_first) << "the first call grows the workspace";
    for (std::size_t tokens : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{9}, std::size_t{12}}) {
      run(ws, tokens);
      const long before = allocations.load();
      run(ws, tokens);
      EXPECT_EQ(allocations.load() - before, 0) << threads << " threads, " << tokens << " tokens";
    }
  }
  set_threads(2);
}

// run(ws, tokens) for linear(x, tokens, w, y, bias, &ws) with preallocated x, y and bias.
template <class W>
auto caller(const W& w) {
  struct call {
    const W& w;
    std::vector<float> x = lowbit_test::student_t3(12 * cols, 7), y = std::vector<float>(12 * rows),
                       bias = lowbit_test::student_t3(rows, 8);
    void operator()(linear_workspace& ws, std::size_t tokens) {
      linear(std::span<const float>(x).first(tokens * cols), tokens, w, std::span<float>(y).first(tokens * rows), bias,
             &ws);
    }
  };
  return call{w};
}

template <linear_path P, class S>
void qmatrix_path_does_not_allocate() {
  const auto w = random_weights<S>(rows, cols, 3);
  auto c = caller(w);
  expect_no_allocation([&](linear_workspace& ws, std::size_t tokens) {
    linear<P>(std::span<const float>(c.x).first(tokens * cols), tokens, w, std::span<float>(c.y).first(tokens * rows),
              c.bias, &ws);
  });
}

TEST(no_allocation, qmatrix_int8_dot) {
  qmatrix_path_does_not_allocate<linear_path::int8_dot, int4_group<32>>();
  qmatrix_path_does_not_allocate<linear_path::int8_dot, nvfp4>();
  qmatrix_path_does_not_allocate<linear_path::int8_dot, int8_group<128>>();
  qmatrix_path_does_not_allocate<linear_path::int8_dot, ternary_absmean_base3>();
}

TEST(no_allocation, qmatrix_float_weights) {
  qmatrix_path_does_not_allocate<linear_path::float_weights, int4_group<128>>();
  qmatrix_path_does_not_allocate<linear_path::float_weights, mxfp8_e4m3>();
  qmatrix_path_does_not_allocate<linear_path::float_weights, int_asym<4, 12>>();
  // Column scales and zero points: the decoder keeps them in the workspace.
  qmatrix_path_does_not_allocate<linear_path::float_weights, int_asym<8, 0, fp32_scale, granularity::column>>();
}

TEST(no_allocation, packed_layouts) {
  {
    const auto w = kernels::pack_for_lut(random_weights<int_sym<2, 32>>(rows, cols, 4));
    expect_no_allocation(caller(w));
  }
  {
    const auto w = kernels::pack_for_lut(random_weights<int_asym<4, 128>>(rows, cols, 5));
    expect_no_allocation(caller(w));
  }
  {
    const auto w = kernels::pack_for_lut<kernels::lut_layout::permute>(random_weights<int_asym<4, 128>>(rows, cols, 5));
    expect_no_allocation(caller(w));
  }
  {
    const auto w = kernels::pack_for_codebook_lut(random_weights<nf4_scheme<64>>(rows, cols, 6));
    expect_no_allocation(caller(w));
  }
  {
    const auto w = kernels::pack_for_ternary_lut(random_weights<ternary_absmean>(rows, cols, 7));
    expect_no_allocation(caller(w));
  }
  {
    const auto w = kernels::pack_for_ternary_lut<kernels::ternary_lut_layout::permute>(
        random_weights<ternary_absmean>(rows, cols, 7));
    expect_no_allocation(caller(w));
  }
  {
    const auto w = kernels::pack_for_int8_tiles(random_weights<int4_group<32>>(rows, cols, 8));
    expect_no_allocation(caller(w));
  }
}

TEST(no_allocation, linear_weights) {
  {
    const linear_weights<int_sym<2, 32>> w(random_weights<int_sym<2, 32>>(rows, cols, 9));
    expect_no_allocation(caller(w)); // LUT at small token counts, tiles above
  }
  {
    const linear_weights<mxfp8_e4m3> w(random_weights<mxfp8_e4m3>(rows, cols, 10));
    expect_no_allocation(caller(w)); // tiles of the int8 packing
  }
  {
    const linear_weights<ternary_absmean_base3> w(random_weights<ternary_absmean_base3>(rows, cols, 11));
    expect_no_allocation(caller(w)); // base-3 LUT, then tiles of the 2-bit repacking
  }
}

} // namespace
