#!/usr/bin/env bash
# Extracts sklearn's digits.csv.gz from the Debian python3-sklearn package without installing it
# (apt-get download + dpkg-deb -x) into DATA_ROOT/sources/ (default data/). Needed by
# vtab-mini/digits-1k when python3-sklearn is not installed.
set -euo pipefail
ROOT=${1:-data}
mkdir -p "$ROOT/sources"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download python3-sklearn >/dev/null && dpkg-deb -x python3-sklearn_*.deb x)
cp "$tmp/x/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz" "$ROOT/sources/digits.csv.gz"
echo "wrote $ROOT/sources/digits.csv.gz"
