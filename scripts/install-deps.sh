#!/usr/bin/env bash
# Installs peftbench's build and runtime dependencies from Debian, and (with --python, which `make test`
# runs) what only the tests need: chromium (Debian; tests/test_report_html.sh opens index.html in it
# headless, so `make demo` never pulls a browser) and the pinned PyPI peers used by the reference
# tests. Idempotent: does nothing when all are present.
# --slurm: Debian's slurmctld, slurmd, slurm-client and munge, for tests/test_slurm.sh (a real
# single-node Slurm that the test starts itself with scripts/slurm-local.sh). `make test` asks for
# them only in CI (CI=true) or with `make test SLURM=1`, so `make deps` stays light.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PKGS="build-essential cmake pkg-config python3 libopenblas-dev liblapacke-dev libcjson-dev
      libcsv-dev libdnnl-dev gnuplot-nox libjpeg-dev libpng-dev zlib1g-dev libstb-dev dataset-fashion-mnist
      clang libclang-rt-14-dev libomp-dev"
# GLUE-mini's text (Jane Austen's novels, the labelled fine-food reviews), exported by Rscript at
# `peftbench data build glue-mini` time; without recommends (r-recommended, r-base-dev: ~200 MB).
R_PKGS="r-base-core r-cran-janeaustenr r-cran-modeldata"

# Test-only Debian packages (installed by --python).
TEST_PKGS="chromium"
# The Slurm test's packages (installed by --slurm).
SLURM_PKGS="slurmctld slurmd slurm-client munge"

# Installs the Debian packages of "$@" that are not installed yet.
apt_install_missing() {
  local missing="" p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ${APT_EXTRA:-} $missing >/dev/null
  fi
}

if [ "${1:-}" = "--slurm" ]; then
  apt_install_missing $SLURM_PKGS
  exit 0
fi

if [ "${1:-}" != "--python" ]; then
  apt_install_missing $PKGS
  APT_EXTRA=--no-install-recommends apt_install_missing $R_PKGS
  # sklearn's digits (a VTAB-mini source) ship inside Debian's python3-sklearn; take just that file
  # from the package archive instead of installing sklearn and its 51 dependencies.
  SK=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
  if [ ! -f "$SK" ] && [ ! -f data/sources/digits.csv.gz ]; then
    echo "install-deps: extracting digits.csv.gz from the python3-sklearn package"
    bash scripts/fetch-digits.sh data >/dev/null 2>&1 || { $SUDO apt-get update -qq && bash scripts/fetch-digits.sh data; }
  fi
  exit 0
fi

# --python: the test-only Debian packages, then the reference peers (torch, transformers, peft,
# safetensors, tokenizers).
apt_install_missing $TEST_PKGS
PY=${PY:-python3}
if ! $PY -c 'import sys; sys.exit(0)' 2>/dev/null; then echo "install-deps: no python3" >&2; exit 1; fi
if $PY - <<'PYEOF' 2>/dev/null
import importlib.metadata as md, re, sys
want = {}
for line in open("tests/ref/requirements.txt"):
    line = line.split("#")[0].strip()
    if not line: continue
    m = re.match(r"([A-Za-z0-9_.-]+)(==([^\s;]+))?", line)
    want[m.group(1)] = m.group(3)
for name, ver in want.items():
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if ver and have.split("+")[0] != ver:
        sys.exit(1)
PYEOF
then
  exit 0
fi
echo "install-deps: installing the PyPI peers from tests/ref/requirements.txt"
$PY -m pip install -q --disable-pip-version-check -r tests/ref/requirements.txt
