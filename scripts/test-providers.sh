#!/usr/bin/env bash
# test-providers.sh [BUILD] [JOBS]: runs the whole ctest suite again for every CPU GEMM provider
# built into BUILD/peftbench other than the default one (which `make test` has just run), with
# PB_GEMM=<provider>, so that every test (parity, determinism, emulated CUDA) holds per provider.
set -euo pipefail
BUILD=${1:-build}
JOBS=${2:-$(nproc)}
others=$("$BUILD/peftbench" info --system --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(p["name"] for p in d["gemm_providers"] if not p["default"]))')
for p in $others; do
  echo "test-providers: ctest with PB_GEMM=$p"
  (cd "$BUILD" && PB_GEMM=$p ctest --output-on-failure -j "$JOBS")
done
