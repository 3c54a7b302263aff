#!/usr/bin/env bash
# test_grid_scale.sh PEFTBENCH: a 200,000-cell grid (one seed axis) expands, de-duplicates and
# lists in --dry-run within the test's 90 s ctest timeout (about 6 s here). Suite validation and
# expansion used to compare every value and cell with every earlier one: 10^5 cells took 116 s,
# so this size took about 8 minutes and timed out. Also checks the count and that the ids are
# distinct (nothing merged).
set -u
PB=${1:?usage: test_grid_scale.sh PATH/TO/peftbench}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 -c 'import json; print(json.dumps({"name": "big", "models": ["vit-tiny"],
  "datasets": ["vtab-mini/bar-ori"], "methods": ["head"], "grid": {"seed": list(range(200000))}}))' > "$T/big.json"
"$PB" run "$T/big.json" --out "$T/o" --dry-run > "$T/list" || { echo "FAIL: dry-run exit $?"; exit 1; }
n=$(head -1 "$T/list" | sed -E 's/.*: ([0-9]+) cells.*/\1/')
ids=$(tail -n +2 "$T/list" | awk '{print $2}' | sort -u | wc -l)
[ "$n" = 200000 ] && [ "$ids" = 200000 ] || { echo "FAIL: $n cells, $ids distinct ids (want 200000)"; exit 1; }
echo "200000 cells expanded and listed, all ids distinct"
