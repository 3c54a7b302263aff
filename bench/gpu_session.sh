#!/usr/bin/env bash
# gpu_session.sh: everything issue 6 needs a GPU for, in as few `device` calls as possible
# (docs/cuda.md, "In a GPU session"). Runs ON the GPU machine, in the repository root.
#
#   bench/gpu_session.sh test  [outdir]   build + ctest -L cuda + compute-sanitizer + smoke runs
#   bench/gpu_session.sh bench [outdir]   build + bench/gpu_bench.sh in FP32 and TF32
#   bench/gpu_session.sh all   [outdir]   both (may not fit one 10-minute device call)
#   bench/gpu_session.sh build [outdir]   the build alone (PB_USE_GPUDEPS=1 forces the carried
#                                         libraries even where the system has its own: a dry run)
#
# outdir defaults to $OUT (the device tool's return folder), else results/gpu_session. At most a
# few files are written there (the device tool returns 8): test.log, sanitizer.log, bench.log,
# gpu_bench.tar.gz.
#
# PB_GPU_SESSION_EMU=1 is a dry run of this script without a GPU: the `cudaemu` tests instead of
# the `cuda` ones, build/tests/peftbench_emu (the kernels on the CPU emulator) for the smoke runs
# and the benchmark (vit-tiny, small batches, the peer on the CPU), no compute-sanitizer.
#
# The GPU machines have nvcc, cuBLAS, CMake, gcc and PyTorch + transformers + peft, but none of the
# Debian libraries peftbench links and no package archive: carry them (scripts/gpu-deps.sh makes
# .gpudeps/*.deb here; name ".gpudeps" in the call's carry). They are unpacked into a private
# prefix ($PB_DEPS_PREFIX, default /tmp/pbdeps), never into /, and the binaries find them through
# an rpath (DT_RPATH, which also serves the libraries' own dependencies). Where the system already has the headers (a Debian machine with a GPU), nothing is
# unpacked and the normal build is used.
set -uo pipefail
cd "$(dirname "$0")/.."
STEP=${1:-test}
OUTD=${2:-${OUT:-results/gpu_session}}
BUILD=${BUILD:-build-gpu}
P=${PB_DEPS_PREFIX:-/tmp/pbdeps}
ARCH=${CUDA_ARCH:-90}
mkdir -p "$OUTD"

log() { echo "== $*"; }

setup() {
  local extra=()
  if [ "${PB_USE_GPUDEPS:-0}" = 1 ] || [ ! -f /usr/include/cjson/cJSON.h ] || [ ! -f /usr/include/csv.h ]; then
    ls .gpudeps/*.deb >/dev/null 2>&1 || { echo "gpu_session: no system libraries and no .gpudeps/*.deb (run scripts/gpu-deps.sh here and carry .gpudeps)" >&2; return 2; }
    if [ ! -f "$P/.done" ]; then
      log "unpacking $(ls .gpudeps/*.deb | wc -l) packages into $P"
      mkdir -p "$P"
      for f in .gpudeps/*.deb; do
        if command -v dpkg >/dev/null; then dpkg -x "$f" "$P"
        else (t=$(mktemp -d) && cd "$t" && ar x "$OLDPWD/$f" && tar -xf data.tar.* -C "$P" && rm -rf "$t"); fi
      done
      local L="$P/usr/lib/x86_64-linux-gnu"
      # Links that Debian's maintainer scripts (update-alternatives, ldconfig) would have made.
      ln -sf libopenblasp-r0.3.21.so "$L/openblas-pthread/libopenblas.so.0"
      ln -sf openblas-pthread/libopenblas.so.0 "$L/libopenblas.so.0"
      ln -sf openblas-pthread/liblapack.so.3 "$L/liblapack.so.3"
      ln -sf openblas-pthread/libblas.so.3 "$L/libblas.so.3"
      # zlib1g-dev's libz.so points at an absolute Debian path: use the machine's own libz.so.1.
      local z; z=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
      [ -n "$z" ] && ln -sf "$z" "$L/libz.so"
      touch "$P/.done"
    fi
    local L="$P/usr/lib/x86_64-linux-gnu"
    extra=(-DCMAKE_C_FLAGS="-I$P/usr/include -I$P/usr/include/x86_64-linux-gnu"
           -DCBLAS_INCLUDE="$P/usr/include/x86_64-linux-gnu/openblas-pthread"
           -DOPENBLAS_LIB="$L/openblas-pthread/libopenblas.so" -DLAPACKE_LIB="$L/liblapacke.so"
           -DCJSON_LIB="$L/libcjson.so" -DCSV_LIB="$L/libcsv.so" -DJPEG_LIB="$L/libjpeg.so"
           -DPNG_LIB="$L/libpng16.so" -DZ_LIB="$L/libz.so"
           -DCMAKE_EXE_LINKER_FLAGS="-Wl,--disable-new-dtags -Wl,-rpath,$L/openblas-pthread:$L -Wl,-rpath-link,$L/openblas-pthread:$L")
  fi
  log "configure + build ($BUILD, CUDA arch $ARCH)"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${extra[@]}" >/dev/null || return 1
  cmake --build "$BUILD" -j "$(nproc)" 2>&1 | grep -E "error|warning|Error" ; [ "${PIPESTATUS[0]}" = 0 ] || return 1
  [ -x "$BUILD/tests/test_cuda_ops" ] && [ -x "$PB_BIN" ] || { echo "gpu_session: $BUILD/tests/test_cuda_ops or $PB_BIN missing: was the CUDA backend (or the emulator) built?" >&2; return 1; }
}

EMU=${PB_GPU_SESSION_EMU:-0}
PB_BIN=$BUILD/peftbench
[ "$EMU" = 1 ] && PB_BIN=$BUILD/tests/peftbench_emu && export OMP_WAIT_POLICY=PASSIVE

run_tests() {
  local rc=0 label=cuda batch=64
  [ "$EMU" = 1 ] && label=cudaemu batch=8
  {
    if [ "$EMU" != 1 ]; then
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
      nvcc --version | tail -1
    fi
    log "ctest -L $label"
    (cd "$BUILD" && ctest -L "$label" --output-on-failure -V) || rc=1
    log "smoke: bench --device cuda, every method (vit-tiny)"
    for m in full head lora pissa svfit aoft; do
      "$PB_BIN" bench --device cuda --model vit-tiny --method "$m" --batch "$batch" --steps 2 --warmup 1 --no-ceiling || rc=1
    done
  } > "$OUTD/test.log" 2>&1
  grep -E "tests passed|tests failed|FAIL" "$OUTD/test.log"
  if [ "$EMU" = 1 ]; then echo "(dry run: no compute-sanitizer)"; return $rc; fi
  {
    for tool in memcheck racecheck synccheck initcheck; do
      log "compute-sanitizer --tool $tool test_cuda_ops"
      compute-sanitizer --tool "$tool" --error-exitcode 3 "$BUILD/tests/test_cuda_ops" || rc=1
    done
    log "compute-sanitizer --tool memcheck test_cuda_train lora"
    compute-sanitizer --tool memcheck --error-exitcode 3 "$BUILD/tests/test_cuda_train" lora || rc=1
  } > "$OUTD/sanitizer.log" 2>&1
  grep -E "ERROR SUMMARY|FAIL" "$OUTD/sanitizer.log"
  return $rc
}

run_bench() {
  local rc=0
  {
    if [ "$EMU" = 1 ]; then
      export PB_BIN MODELS=vit-tiny PEER_DEVICE=cpu BATCH_VIT=8 STEPS=2 WARMUP=1
    fi
    bash bench/gpu_bench.sh "$BUILD" || rc=1
    bash bench/gpu_bench.sh "$BUILD" --tf32 || rc=1
  } > "$OUTD/bench.log" 2>&1
  tar -czf "$OUTD/gpu_bench.tar.gz" results/gpu_bench
  cat "$OUTD/bench.log"
  return $rc
}

setup > "$OUTD/build.log" 2>&1 || { cat "$OUTD/build.log"; exit 1; }
case "$STEP" in
  build) echo "built: $BUILD" ;;
  test) run_tests ;;
  bench) run_bench ;;
  all) run_tests; a=$?; run_bench; b=$?; [ $a = 0 ] && [ $b = 0 ] ;;
  *) echo "usage: bench/gpu_session.sh test|bench|all [outdir]" >&2; exit 2 ;;
esac
