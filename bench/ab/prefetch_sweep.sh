#!/usr/bin/env bash
# Software-prefetch sweep of the GEMV kernels from DRAM (see gemv_dram.cpp): copies the working
# tree's headers, turns the prefetch distances (LOWBIT_TILED_PREFETCH, LOWBIT_LUT_PREFETCH),
# prefetch_l2's hint and the side streams' prefetch (LOWBIT_SIDE_PREFETCH) into variables in the
# copy, and times every setting in one process.
#   bash bench/ab/prefetch_sweep.sh 11 0:2048:0 4096:6144:1 2048:6144:1:0
# Arguments: rounds (default 9), then settings tiles:lut:hint[:side[:pages]] (bytes ahead; hint 0 = L1,
# 1 = L2; side 1 = scales and zero points prefetched too, the default, 0 = codes only; pages 1 = the
# weights advised to huge pages, the library's default, 0 = not, for a page-size A/B in one process).
# GEMV_DRAM_SCHEMES=name,name,... keeps those schemes only (see gemv_dram.cpp). EXTRA_FLAGS adds
# compiler flags, e.g. EXTRA_FLAGS='-mno-avx512f -mno-avxvnni' for the AVX2 kernels on an AVX-512 machine,
# or -DAB_ROWS=8192 -DAB_COLS=4096 for another matrix; AB_THREADS=1 times one thread (default 2).
# Each scheme's share is printed twice: of the round's 1 GiB probe, and of the same probe read call by
# call between the kernels' calls (from run 30), the latter the steadier.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/include" "$work/include"
k="$work/include/lowbit/kernels/avx2"
# Each edit must apply; a header that no longer matches stops the sweep rather than measuring nothing.
edit() { # file, sed expression, pattern that must then be present
  sed -i "$2" "$1"
  grep -q -- "$3" "$1" || { echo "prefetch_sweep.sh: edit of $1 did not apply: $2" >&2; exit 1; }
}
edit "$k/prefetch.hpp" 's/^namespace lowbit::kernels::avx2 {$/&\ninline int prefetch_hint = 1;/' 'inline int prefetch_hint'
edit "$k/prefetch.hpp" 's/_mm_prefetch(reinterpret_cast<const char\*>(a + l), _MM_HINT_T1);/{ if (prefetch_hint == 0) _mm_prefetch(reinterpret_cast<const char*>(a + l), _MM_HINT_T0); else _mm_prefetch(reinterpret_cast<const char*>(a + l), _MM_HINT_T1); }/' 'prefetch_hint == 0'
edit "$k/prefetch.hpp" 's/inline constexpr bool side_prefetch/inline bool side_prefetch/' 'inline bool side_prefetch'
edit "$k/int8_tiles.hpp" 's/inline constexpr std::size_t tiled_prefetch/inline std::size_t tiled_prefetch/' 'inline std::size_t tiled_prefetch'
edit "$k/lut_dot.hpp" 's/inline constexpr std::size_t lut_prefetch/inline std::size_t lut_prefetch/' 'inline std::size_t lut_prefetch'
for f in int8_tiles.hpp lut_dot.hpp ternary_lut.hpp codebook_lut.hpp; do
  edit "$k/$f" 's/if constexpr (\(tiled\|lut\)_prefetch != 0)/if (\1_prefetch != 0)/' 'if (\(tiled\|lut\)_prefetch != 0)'
  edit "$k/$f" 's/if constexpr (side_prefetch)/if (side_prefetch)/' 'if (side_prefetch)'
done
# Huge-page advice switchable at run time (setting field pages), for the pool copies gemv_dram makes.
edit "$work/include/lowbit/core/buffer.hpp" 's/^inline constexpr std::size_t huge_page_bytes/inline bool huge_page_advice = true;\n&/' 'inline bool huge_page_advice'
edit "$work/include/lowbit/core/buffer.hpp" 's/if (alignment(n) == huge_page_bytes) (void)::madvise/if (huge_page_advice \&\& alignment(n) == huge_page_bytes) (void)::madvise/' 'huge_page_advice &&'
# The 512-bit kernels read avx2's distances.
for f in lut_dot.hpp lut_perm.hpp ternary_lut.hpp ternary_perm.hpp int8_tiles.hpp; do
  edit "$work/include/lowbit/kernels/avx512/$f" \
    's/if constexpr (avx2::\(detail::tiled\|lut\)_prefetch != 0)/if (avx2::\1_prefetch != 0)/' \
    'if (avx2::\(detail::tiled\|lut\)_prefetch != 0)'
  edit "$work/include/lowbit/kernels/avx512/$f" 's/if constexpr (avx2::side_prefetch)/if (avx2::side_prefetch)/' \
    'if (avx2::side_prefetch)'
done
# AB_EDIT_FILE (a header under include/lowbit/) and AB_EDIT (a sed script): one more edit of the copy,
# for timing experiments that change a kernel (bench/README.md run 30); it must change the file.
if [ -n "${AB_EDIT:-}" ]; then
  f="$work/include/lowbit/${AB_EDIT_FILE:?AB_EDIT_FILE names the header AB_EDIT edits}"
  before=$(md5sum < "$f")
  sed -i "$AB_EDIT" "$f"
  [ "$(md5sum < "$f")" != "$before" ] || { echo "prefetch_sweep.sh: AB_EDIT did not change $f" >&2; exit 1; }
fi
g++ -std=gnu++20 -O2 -DNDEBUG -march=native ${EXTRA_FLAGS:-} -fopenmp -I "$work/include" "$root/bench/ab/gemv_dram.cpp" -o "$work/gemv_dram"
"$work/gemv_dram" "$@"
