// 64-byte aligned storage for packed planes, so SIMD kernels can use aligned loads on row
// starts whose byte offsets are multiples of 32. Buffers of 2 MiB or more are aligned to 2 MiB and,
// on Linux, advised to transparent huge pages (madvise MADV_HUGEPAGE, before their first touch):
// weights that stream from DRAM then cost one TLB entry per 2 MiB instead of one per 4 KiB. Where
// the kernel's THP setting is "never" the advice does nothing; define LOWBIT_NO_HUGE_PAGES to skip it.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

#if defined(__linux__) && !defined(LOWBIT_NO_HUGE_PAGES)
#include <sys/mman.h>
#define LOWBIT_HUGE_PAGES 1
#else
#define LOWBIT_HUGE_PAGES 0
#endif

namespace lowbit {

// The size from which aligned_allocator aligns to (and advises) huge pages.
inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

template <class T, std::size_t Align = 64>
struct aligned_allocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = aligned_allocator<U, Align>;
  };
  aligned_allocator() noexcept = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U, Align>&) noexcept {}
  // The alignment of a buffer of n elements: a function of n alone, so deallocate finds it again.
  static constexpr std::size_t alignment(std::size_t n) noexcept {
    return LOWBIT_HUGE_PAGES && n >= huge_page_bytes / sizeof(T) && Align < huge_page_bytes ? huge_page_bytes : Align;
  }
  T* allocate(std::size_t n) {
    void* p = ::operator new (n * sizeof(T), std::align_val_t{alignment(n)});
#if LOWBIT_HUGE_PAGES
    if (alignment(n) == huge_page_bytes) (void)::madvise(p, n * sizeof(T), MADV_HUGEPAGE); // advice only
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept { ::operator delete (p, std::align_val_t{alignment(n)}); }
  template <class U>
  bool operator==(const aligned_allocator<U, Align>&) const noexcept {
    return true;
  }
};

template <class T>
using aligned_vector = std::vector<T, aligned_allocator<T>>;

} // namespace lowbit
