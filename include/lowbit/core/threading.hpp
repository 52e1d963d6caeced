// Row-parallel loops: OpenMP when the consumer compiles with it (-fopenmp), otherwise serial.
// Rows are split statically into contiguous ranges and every row is computed the same way on
// any thread, so results are identical whatever the thread count.
#pragma once

#include <cstddef>
#include <exception>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace lowbit {

// Threads the parallel loops may use (1 without OpenMP).
inline int max_threads() noexcept {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Index of the calling thread inside a parallel region (0 outside, and without OpenMP).
inline int thread_index() noexcept {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Calls body(begin, end) over a partition of [0, rows). `work` (elements touched) below ~64K
// stays serial, where threads cost more than they save. An exception thrown by body on any thread
// is caught there (it must not leave an OpenMP region) and, once every thread has finished its
// range, the first one caught is rethrown on the calling thread.
template <class Body>
void parallel_rows(std::size_t rows, std::size_t work, Body&& body) {
#if defined(_OPENMP)
  if (work >= (std::size_t{1} << 16) && rows > 1 && omp_get_max_threads() > 1) {
    std::exception_ptr failure;
#pragma omp parallel
    {
      const auto t = static_cast<std::size_t>(omp_get_thread_num());
      const auto nt = static_cast<std::size_t>(omp_get_num_threads());
      try {
        body(rows * t / nt, rows * (t + 1) / nt);
      } catch (...) {
#pragma omp critical(lowbit_parallel_rows_failure)
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return;
  }
#else
  (void)work;
#endif
  body(std::size_t{0}, rows);
}

// Calls body(token, first_block, block_count) for every run of up to task_blocks consecutive blocks
// of every token (tokens x blocks in all), the runs split across threads by parallel_rows, so
// that a single token's blocks also take every thread. For per-token work whose blocks are
// independent (the LUT kernels' activation tables).
template <class Body>
void parallel_token_blocks(std::size_t tokens, std::size_t blocks, std::size_t task_blocks, std::size_t work,
                           Body&& body) {
  const std::size_t per_token = (blocks + task_blocks - 1) / task_blocks;
  parallel_rows(tokens * per_token, work, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t t = i / per_token, b0 = i % per_token * task_blocks;
      body(t, b0, blocks - b0 < task_blocks ? blocks - b0 : task_blocks);
    }
  });
}

} // namespace lowbit
