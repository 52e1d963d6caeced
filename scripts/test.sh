#!/usr/bin/env bash
# Builds and runs the whole test suite in four configurations:
#   gcc     g++ -O2 -march=native: unit tests, header self-containment, downstream find_package /
#           add_subdirectory projects, the demo and a smoke run of every benchmark
#   clang   clang++ -O2 -march=native: unit tests
#   asan    g++ with AddressSanitizer + UndefinedBehaviorSanitizer: unit tests and the demo
#   scalar  g++ with LOWBIT_NO_SIMD: the scalar reference paths only
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
  echo "=== lowbit tests: $name ==="
  cmake -S . -B "build/$name" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@" >/dev/null
  cmake --build "build/$name" -j "$jobs"
  (cd "build/$name" && ctest --output-on-failure -j "$jobs" --timeout 900)
}

start=$SECONDS
for c in "${configs[@]}"; do
  case "$c" in
  gcc) run_config gcc -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ ;;
  clang) run_config clang -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
    -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF ;;
  asan) run_config asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ -DLOWBIT_SANITIZE=ON \
    -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF ;;
  scalar) run_config scalar -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DLOWBIT_NO_SIMD=ON \
    -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_TEST_DOWNSTREAM=OFF ;;
  *) echo "unknown configuration '$c' (expected gcc, clang, asan, scalar)" >&2; exit 2 ;;
  esac
done
echo "lowbit: all test configurations passed (${configs[*]}) in $((SECONDS - start)) s"
