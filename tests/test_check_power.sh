#!/usr/bin/env bash
# test_check_power.sh PEFTBENCH: `peftbench check` has power against a real regression (issue 17).
# A tiny suite (a micro ViT pretrained here, LoRA + head-only on three VTAB-mini tasks with 1000
# test images each, 2 seeds) is trained for real:
#   A        on GEMM kernel A: the baseline (check --write-baseline);
#   A again  same fingerprint: exact mode engages and passes;
#   B        unchanged, on kernel B (another GEMM provider, or another OpenBLAS core when only
#            OpenBLAS is built in): statistical mode, passes;
#   B planted  LoRA's learning rate silently halved (a suite override: a real training change, the
#            rows keep their names): statistical mode flags LoRA's average, head-only's stays ok;
#   A planted  the same change on kernel A: exact mode flags the LoRA rows.
# One thread per run: on a shared 2-core machine two OpenMP threads stall each other (docs/suites.md).
# Also: exit statuses 0/1/2, --junit parses as JUnit XML (Python's xml module) with one testcase per
# row and per average and the failures carrying the numbers, --markdown holds the summary table.
set -u
PB=${1:?usage: test_check_power.sh PATH/TO/peftbench}
PB=$(cd "$(dirname "$PB")" && pwd)/$(basename "$PB")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
export PEFTBENCH_BACKBONE_CACHE="$T/backbones"

# Two kernels that round differently: two GEMM providers when both are built in, else two
# OpenBLAS cores (OPENBLAS_CORETYPE; LAPACK and the GEMMs then differ).
read -r KA KB <<<"$("$PB" info --system --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = [x["name"] for x in d["gemm_providers"]]
if len(p) >= 2: print("PB_GEMM=" + p[-1], "PB_GEMM=" + p[0])
else:
    core = d.get("openblas_core", {}).get("selected", "")
    other = "Sandybridge" if core != "Sandybridge" else "Nehalem"
    print("PB_GEMM=openblas", "PB_GEMM=openblas OPENBLAS_CORETYPE=" + other)
')"
echo "kernel A: $KA; kernel B: $KB"

suite() { # suite NAME [OVERRIDES-JSON]
  cat <<JSON
{
  "name": "power",
  "models": [{"label": "micro",
              "config": {"arch": "vit", "hidden": 64, "layers": 4, "heads": 4, "intermediate": 128,
                         "image_size": 28, "patch_size": 7, "channels": 1},
              "pretrain": {"dataset": "vtab-mini/fmnist-pretrain", "train_subset": 16384, "epochs": 2,
                           "batch": 128, "lr": 2e-3, "weight_decay": 0.05}}],
  "datasets": ["vtab-mini/sprite-count", "vtab-mini/bar-ori", "vtab-mini/sprite-xpos"],
  "methods": [{"method": "lora", "rank": 8, "alpha": 16, "lr": 5e-3}, {"method": "head", "lr": 5e-2}],
  "grid": {"seed": [0, 1, 2]},
  "recipe": {"epochs": 6, "batch": 64, "eval_batch": 500, "schedule": "cosine", "warmup_ratio": 0.1},
  "overrides": [${1:-}]
}
JSON
}
PLANT='{"method": "lora", "set": {"lr_scale": 0.5}}'
suite > "$T/s.json"
suite "$PLANT" > "$T/planted.json"

run() { # run OUT SUITE KERNEL...
  local out=$1 s=$2; shift 2
  env "$@" "$PB" run "$s" --out "$T/$out" --threads 1 --no-report > "$T/$out.log" 2>&1 || { bad "run $out failed"; tail -5 "$T/$out.log" >&2; }
}
run A "$T/s.json" $KA
run B "$T/s.json" $KB
run Bp "$T/planted.json" $KB
run Ap "$T/planted.json" $KA

"$PB" check "$T/A" --write-baseline "$T/base.json" > "$T/wb.out" || bad "write-baseline failed: $(cat "$T/wb.out")"
cat "$T/wb.out"

chk() { # chk NAME WANT_RC ARGS...: runs check, keeps its output in $T/NAME.out
  local name=$1 want=$2; shift 2
  "$PB" check "$@" > "$T/$name.out" 2> "$T/$name.err"; local rc=$?
  [ $rc = "$want" ] || { bad "check $name: exit $rc, want $want"; cat "$T/$name.out" "$T/$name.err" >&2; }
}
# the baseline's own kernel: exact mode, passes
chk exact 0 "$T/A" --baseline "$T/base.json"
grep -q "6 exact (fingerprint matches), 0 statistical" "$T/exact.out" || bad "exact mode did not engage: $(head -1 "$T/exact.out")"
# another kernel, unchanged build: statistical mode, passes
chk stat 0 "$T/B" --baseline "$T/base.json" --junit "$T/stat.xml" --markdown "$T/stat.md"
grep -q "0 exact (fingerprint matches), 6 statistical (fingerprint differs: backend" "$T/stat.out" ||
  bad "statistical mode did not engage: $(head -1 "$T/stat.out")"
# another kernel, LoRA's learning rate halved: statistical mode flags LoRA's average
chk planted 1 "$T/Bp" --baseline "$T/base.json" --junit "$T/planted.xml" --markdown "$T/planted.md"
grep -qE "^micro +lora +3 .*REGRESSION" "$T/planted.out" || bad "the planted LoRA regression is not flagged"
grep -qE "^micro +head +3 .* ok$" "$T/planted.out" || bad "head-only (unchanged) is flagged"
# the same change on the baseline's kernel: exact mode sees it
chk exact_planted 1 "$T/Ap" --baseline "$T/base.json"
grep -q "CHANGED" "$T/exact_planted.out" || bad "exact mode does not flag the planted change"
# --tol stays an explicit override; bad input exits 2
chk tol 0 "$T/Bp" --baseline "$T/base.json" --tol 50
chk badtol 2 "$T/B" --baseline "$T/base.json" --tol nan
chk badalpha 2 "$T/B" --baseline "$T/base.json" --alpha 1
chk nobase 2 "$T/B" --baseline "$T/nonexistent.json"
python3 - "$T/base.json" "$T/bad.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); b["rows"][3]["examples"] = "many"; json.dump(b, open(sys.argv[2], "w"))
PY
chk badbase 2 "$T/B" --baseline "$T/bad.json"
grep -q "bad.json: rows\[3\].examples" "$T/badbase.err" || bad "bad baseline error does not name the field: $(cat "$T/badbase.err")"

echo "--- unchanged (kernel B) ---"; sed -n '/^averages/,$p' "$T/stat.out"
echo "--- planted (kernel B) ---"; sed -n '/^averages/,$p' "$T/planted.out"
python3 - "$T" <<'PY' || bad "JUnit / Markdown output"
import sys, xml.etree.ElementTree as ET
T = sys.argv[1]
for name, want_fail in (("stat", False), ("planted", True)):
    root = ET.parse(f"{T}/{name}.xml").getroot()          # well-formed XML
    assert root.tag == "testsuites", root.tag
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "power", suites
    cases = suites[0].findall("testcase")
    # 6 rows + 2 method averages + the suite average
    assert len(cases) == 9 and int(suites[0].get("tests")) == 9, len(cases)
    assert all(c.get("classname") and c.get("name") for c in cases)
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suites[0].get("failures")) == len(failed) == int(root.get("failures"))
    if not want_fail:
        assert not failed, [c.get("name") for c in failed]
        continue
    names = [c.get("name") for c in failed]
    assert "micro lora average" in names, names
    assert not any("head" in (c.get("classname") + c.get("name")) for c in failed), names
    msg = next(c for c in failed if c.get("name") == "micro lora average").find("failure").get("message")
    assert "baseline" in msg and "ours" in msg and "delta" in msg and "minimum detectable drop" in msg, msg
md = open(f"{T}/planted.md").read()
assert "**FAIL**" in md and "| lora (micro) |" in md and "**REGRESSION**" in md, md[:500]
assert "**pass**" in open(f"{T}/stat.md").read()
print("junit + markdown ok")
PY

[ $fail = 0 ] && echo "test_check_power: ok"
exit $fail
