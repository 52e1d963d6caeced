#!/usr/bin/env bash
# A/B of the LUT kernels: the headers at git revision OLD (default HEAD) against the working tree,
# in one binary with random interleaving (see ab_lut.cpp). Extra arguments go to the benchmark.
#   bash bench/ab/run.sh bd93f35 --benchmark_filter='scheme:0/tokens:1/'
# AB=float runs ab_float.cpp instead (the weight-only float path at 8-512 tokens):
#   AB=float bash bench/ab/run.sh e24a77d --benchmark_filter='tokens:128'
# Threads: OMP_NUM_THREADS if set, else 2 (this machine's cores). AB_FLAGS adds compiler flags to
# both sides, e.g. AB_FLAGS='-mno-avx512f -mno-avxvnni' for the AVX2 kernels on an AVX-512 machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
old=${1:-HEAD}
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive "$old" include | tar -x -C "$work"
flags=(-std=gnu++20 -O2 -DNDEBUG -march=native ${AB_FLAGS:-} -fopenmp)
g++ "${flags[@]}" -I "$work/include" -DAB_SIDE=old -Dlowbit=lowbit_old -c "$root/bench/ab/ab_${AB:-lut}.cpp" -o "$work/old.o" &
g++ "${flags[@]}" -I "$root/include" -DAB_SIDE=new -c "$root/bench/ab/ab_${AB:-lut}.cpp" -o "$work/new.o"
wait
g++ "${flags[@]}" -DAB_MAIN -c "$root/bench/ab/ab_${AB:-lut}.cpp" -o "$work/main.o"
g++ -fopenmp "$work/old.o" "$work/new.o" "$work/main.o" -o "$work/ab" -lbenchmark -lbenchmark_main -lpthread
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$work/ab" --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true --benchmark_min_time=0.2 --benchmark_min_warmup_time=0.1 "$@"
