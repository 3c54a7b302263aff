#!/usr/bin/env bash
# gpu-deps.sh: fetch (here, on Debian 12) the .deb files peftbench's build needs, for a GPU machine
# that cannot reach any package archive (the `device` tool's machines: CUDA, PyTorch, CMake, gcc,
# but no OpenBLAS / LAPACKE / cJSON / libcsv / libjpeg / libpng headers). bench/gpu_session.sh
# unpacks them into a private prefix there (never into /) and builds against it.
#
# usage: scripts/gpu-deps.sh [dir]      (default .gpudeps, ignored by git; ~22 MB)
# then:  carry ".gpudeps" in the device call (docs/cuda.md, "In a GPU session").
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.gpudeps}
# Runtime libraries and the -dev packages with the headers and .so links the build uses. The
# OpenBLAS pthread variant provides libopenblas, and (as liblapack.so.3) the LAPACK LAPACKE calls.
PKGS="libopenblas0-pthread libopenblas-pthread-dev libgfortran5 liblapacke liblapacke-dev
      libcjson1 libcjson-dev libcsv3 libcsv-dev libjpeg62-turbo libjpeg62-turbo-dev libjpeg-dev
      libpng16-16 libpng-dev zlib1g-dev"
mkdir -p "$DIR"
rm -f "$DIR"/*.deb
# apt-get download writes into the current directory; as root it warns that _apt cannot write
# there, which is harmless (it downloads unsandboxed).
(cd "$DIR" && apt-get download $PKGS 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
n=$(ls "$DIR"/*.deb 2>/dev/null | wc -l)
want=$(echo $PKGS | wc -w)
if [ "$n" -ne "$want" ]; then
  echo "gpu-deps: got $n of $want packages in $DIR (apt-get update first?)" >&2
  exit 1
fi
du -sh "$DIR"
