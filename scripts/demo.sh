#!/usr/bin/env bash
# Builds and runs the quickstart demo (examples/quickstart.cpp) in build/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
require_packages cmake make g++
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_BENCHMARKS=OFF \
  -DLOWBIT_BUILD_EXAMPLES=ON >/dev/null
cmake --build build/demo --target quickstart -j "$(nproc)"
./build/demo/examples/quickstart
