#!/usr/bin/env bash
# Builds and runs the whole test suite in four configurations:
#   gcc     g++ -O2 -march=native: unit tests, header self-containment, downstream find_package /
#           add_subdirectory projects, the demo and a smoke run of every benchmark
#   clang   clang++ -O1 -march=native with LOWBIT_NO_AVX512 and LOWBIT_NO_AVX_VNNI: unit tests, the
#           examples, the tools' command-line tests and their libFuzzer target (30 s); on an AVX-512
#           or AVX-VNNI machine this is where the AVX2-only kernels are tested (gcc and asan use the
#           VNNI ones there; gcc also builds lowbit_avxvnni_tests where AVX-VNNI is compiled)
#   asan    g++ -Og (the kernel tests -O0, tests/CMakeLists.txt) with AddressSanitizer +
#           UndefinedBehaviorSanitizer: unit tests, the demo, the tools
#   scalar  g++ with LOWBIT_NO_SIMD: the tests of everything that has a SIMD path, on its scalar path
# Pass configuration names to run a subset, e.g. `scripts/test.sh gcc scalar`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
require_packages cmake make g++ clang libgtest-dev libbenchmark-dev libomp-dev libeigen3-dev

jobs=$(nproc)
configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=(gcc clang asan scalar)

# Each configuration is configured first; then one make, whose job server shares the cores among
# all the configurations' builds (built one after another, each one's last long compiles left a
# core idle); then each configuration's CTest in turn.
configure_config() {
  local name=$1
  shift
  echo "=== lowbit tests: configuring $name ==="
  cmake -S . -B "build/$name" -G "Unix Makefiles" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@" >/dev/null
}

# -O2, not CMake's Release default -O3: the level the benchmarks and most users build with, and it
# halves clang's build of the kernel tests (tests/kernels/linear_test.cpp: 186 s at -O3, 95 s at
# -O2; g++ 85 s and 69 s).
release=("-DCMAKE_BUILD_TYPE=Release" "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG")

start=$SECONDS
for c in "${configs[@]}"; do
  case "$c" in
  gcc) configure_config gcc "${release[@]}" -DCMAKE_CXX_COMPILER=g++ ;;
  # -O1: clang built its tests and tools in 404 s of one core at -O1 against about 800 at -O2
  # (tests/kernels/linear_test.cpp 113 s -> 36-44 s); gcc builds and runs them at -O2.
  clang) configure_config clang -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" \
    -DCMAKE_CXX_COMPILER=clang++ -DLOWBIT_NO_AVX512=ON -DLOWBIT_NO_AVX_VNNI=ON -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF \
    -DLOWBIT_TEST_HEADERS=OFF -DLOWBIT_TOOLS_UNIT_TESTS=OFF ;;
  # -Og: UBSan instrumentation at -O2 -g triples the build time of the template-heavy tests.
  asan) configure_config asan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-Og -g1" -DCMAKE_CXX_COMPILER=g++ \
    -DLOWBIT_SANITIZE=ON -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF -DLOWBIT_TEST_HEADERS=OFF ;;
  # Only what has a SIMD path (formats, schemes, kernels, quantizers); no examples, tools or Eigen.
  scalar) configure_config scalar "${release[@]}" -DCMAKE_CXX_COMPILER=g++ -DLOWBIT_NO_SIMD=ON \
    -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_BUILD_EXAMPLES=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF \
    -DLOWBIT_TEST_HEADERS=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON ;;
  *) echo "unknown configuration '$c' (expected gcc, clang, asan, scalar)" >&2; exit 2 ;;
  esac
done

echo "=== lowbit tests: building ${configs[*]} ==="
build_start=$SECONDS
makefile=build/all-configurations.mk
{
  printf 'all:'
  printf ' %s' "${configs[@]}"
  printf '\n.PHONY: all'
  printf ' %s' "${configs[@]}"
  printf '\n'
  for c in "${configs[@]}"; do printf '%s:\n\t+$(MAKE) -C build/%s all\n' "$c" "$c"; done
} >"$makefile"
make -f "$makefile" -j "$jobs"
echo "=== lowbit tests: built ${configs[*]} ($((SECONDS - build_start)) s) ==="

for c in "${configs[@]}"; do
  test_start=$SECONDS
  echo "=== lowbit tests: $c ==="
  (cd "build/$c" && ctest --output-on-failure -j "$jobs" --timeout 900)
  echo "=== lowbit tests: $c passed ($((SECONDS - test_start)) s) ==="
done
echo "lowbit: all test configurations passed (${configs[*]}) in $((SECONDS - start)) s"
