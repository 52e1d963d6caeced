#!/usr/bin/env bash
# Builds and runs the whole test suite in four configurations:
#   gcc     g++ -O2 -march=native: unit tests, header self-containment, downstream find_package /
#           add_subdirectory projects, the demo and a smoke run of every benchmark
#   clang   clang++ -O2 -march=native: unit tests, the examples, the tools' command-line tests and
#           their libFuzzer target (30 s)
#   asan    g++ -Og with AddressSanitizer + UndefinedBehaviorSanitizer: unit tests, the demo, the tools
#   scalar  g++ with LOWBIT_NO_SIMD: the tests of everything that has a SIMD path, on its scalar path
# Pass configuration names to run a subset, e.g. `scripts/test.sh gcc scalar`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
require_packages cmake make g++ clang libgtest-dev libbenchmark-dev libomp-dev libeigen3-dev

jobs=$(nproc)
configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=(gcc clang asan scalar)

run_config() {
  local name=$1
  shift
  local config_start=$SECONDS
  echo "=== lowbit tests: $name ==="
  cmake -S . -B "build/$name" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@" >/dev/null
  cmake --build "build/$name" -j "$jobs"
  (cd "build/$name" && ctest --output-on-failure -j "$jobs" --timeout 900)
  echo "=== lowbit tests: $name passed ($((SECONDS - config_start)) s) ==="
}

# -O2, not CMake's Release default -O3: the level the benchmarks and most users build with, and it
# halves clang's build of the kernel tests (tests/kernels/linear_test.cpp: 186 s at -O3, 95 s at
# -O2; g++ 85 s and 69 s).
release=("-DCMAKE_BUILD_TYPE=Release" "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG")

start=$SECONDS
for c in "${configs[@]}"; do
  case "$c" in
  gcc) run_config gcc "${release[@]}" -DCMAKE_CXX_COMPILER=g++ ;;
  clang) run_config clang "${release[@]}" -DCMAKE_CXX_COMPILER=clang++ \
    -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF -DLOWBIT_TEST_HEADERS=OFF \
    -DLOWBIT_TOOLS_UNIT_TESTS=OFF ;;
  # -Og: UBSan instrumentation at -O2 -g triples the build time of the template-heavy tests.
  asan) run_config asan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-Og -g1" -DCMAKE_CXX_COMPILER=g++ \
    -DLOWBIT_SANITIZE=ON -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF -DLOWBIT_TEST_HEADERS=OFF ;;
  # Only what has a SIMD path (formats, schemes, kernels, quantizers); no examples, tools or Eigen.
  scalar) run_config scalar "${release[@]}" -DCMAKE_CXX_COMPILER=g++ -DLOWBIT_NO_SIMD=ON \
    -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_BUILD_EXAMPLES=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF \
    -DLOWBIT_TEST_HEADERS=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON ;;
  *) echo "unknown configuration '$c' (expected gcc, clang, asan, scalar)" >&2; exit 2 ;;
  esac
done
echo "lowbit: all test configurations passed (${configs[*]}) in $((SECONDS - start)) s"
