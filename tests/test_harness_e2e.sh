#!/usr/bin/env bash
# test_harness_e2e.sh PEFTBENCH: `peftbench run` end to end with real engine cells on a micro
# suite (a nano ViT pretrained by the suite on 512 Fashion-MNIST images, then head/full/lora/svfit
# on a VTAB-mini task): every cell ok, backbone cached once, report + plots written, a forced
# re-run reproduces every result bit for bit (same threads), `check` passes against its own
# results and fails against a perturbed baseline, and picks the baseline's tolerance by whether
# the numerics are reproduced bit for bit.
set -u
PB=${1:?usage: test_harness_e2e.sh PATH/TO/peftbench}
PB=$(cd "$(dirname "$PB")" && pwd)/$(basename "$PB")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
export PEFTBENCH_BACKBONE_CACHE="$T/backbones"

cat > "$T/s.json" <<'JSON'
{
  "name": "e2e",
  "models": [{"label": "nano",
              "config": {"arch": "vit", "hidden": 16, "layers": 2, "heads": 2, "intermediate": 32,
                         "image_size": 28, "patch_size": 7, "channels": 1},
              "pretrain": {"dataset": "vtab-mini/fmnist-pretrain", "train_subset": 512, "epochs": 1, "batch": 64}}],
  "datasets": ["vtab-mini/sprite-xpos"],
  "methods": [{"method": "head", "lr": 5e-3}, {"method": "full", "lr": 1e-3},
              {"method": "lora", "rank": 4, "alpha": 8}, {"method": "svfit", "rank": 16, "lr": 1e-2}],
  "recipe": {"epochs": 2, "batch": 32, "train_subset": 128, "eval_batch": 128, "schedule": "cosine"}
}
JSON

"$PB" run "$T/s.json" --out "$T/r" --threads 2 > "$T/run1.out" 2> "$T/run1.err"
rc=$?
[ $rc = 0 ] || { bad "run exit status $rc"; cat "$T/run1.err" >&2; }
n=$(ls "$T/r/cells" 2>/dev/null | grep -c '\.json$')
[ "$n" = 4 ] || bad "expected 4 cell results, got $n"
grep -c '^\[pretrain\].*epoch 1/1' "$T/run1.err" | grep -qx 1 || bad "pretraining did not run exactly once"
nb=$(ls "$T/backbones" 2>/dev/null | wc -l)
[ "$nb" = 1 ] || bad "expected one cached backbone, found $nb: $(ls "$T/backbones")"
for f in table.md table.tex results.csv results.json plots/params.png; do
  [ -s "$T/r/$f" ] || bad "missing $f"
done
# every row says which engine made it: results.json rows and cells, table.md "Produced by"
python3 - "$T/r" <<'PY' || bad "rows do not record their backend"
import json, sys
d = json.load(open(sys.argv[1] + "/results.json"))
assert d["rows"] and all(r["backend"].startswith("cpu, ") and "thread" in r["backend"] for r in d["rows"]), d["rows"][0]
assert all(c["backend"] == d["rows"][0]["backend"] for c in d["cells"])
md = open(sys.argv[1] + "/table.md").read()
assert "## Produced by" in md and d["rows"][0]["backend"].split(",")[0] in md
PY
python3 - "$T/r" <<'PY' || fail=1
import json, glob, sys
ok = True
for f in sorted(glob.glob(sys.argv[1] + "/cells/*.json")):
    d = json.load(open(f))
    m = d["config"]["method"]["method"]
    def err(msg):
        global ok
        print("FAIL:", f, m, msg, file=sys.stderr); ok = False
    if d["status"] != "ok": err("status " + d["status"] + " " + d["reason"])
    if len(d["epochs"]) != 2: err("epochs")
    if not (0 <= d["final"]["test"] <= 1): err("final test")
    p = d["params"]
    if p["trainable"] != p["adapter"] + p["trainable_backbone"] + p["head"]: err("param sums")
    if m == "head" and p["trainable"] != p["head"]: err("head trains more than the head")
    if m == "full" and p["trainable"] != p["total"]: err("full trains less than all")
    if m in ("lora", "svfit") and not (0 < p["adapter"] < p["backbone"]): err("adapter count")
    if not d["backend"].startswith("cpu") or d["threads"] != 2: err("backend/threads")
    if len(d["data_hash"]) != 16 or d["throughput_ex_s"] <= 0 or d["peak_rss_bytes"] <= 0: err("fields")
sys.exit(0 if ok else 1)
PY

# A forced re-run (backbone from the cache) reproduces every per-epoch number exactly.
"$PB" run "$T/s.json" --out "$T/r2" --threads 2 > /dev/null 2> "$T/run2.err" || bad "second run failed"
grep -q '^\[pretrain\]' "$T/run2.err" && bad "second run pretrained again instead of using the cache"
python3 - "$T/r" "$T/r2" <<'PY' || bad "re-run is not bitwise identical"
import json, glob, os, sys
a, b = sys.argv[1], sys.argv[2]
fa = sorted(os.path.basename(f) for f in glob.glob(a + "/cells/*.json"))
fb = sorted(os.path.basename(f) for f in glob.glob(b + "/cells/*.json"))
assert fa == fb and fa, (fa, fb)
for f in fa:
    x, y = json.load(open(a + "/cells/" + f)), json.load(open(b + "/cells/" + f))
    ex = [(e["train_loss"], e["val"], e["test"]) for e in x["epochs"]]
    ey = [(e["train_loss"], e["val"], e["test"]) for e in y["epochs"]]
    assert ex == ey, (f, ex, ey)
PY

# check: own results pass at tolerance 0; a baseline raised by 5 points fails.
"$PB" check "$T/r2" --baseline "$T/r/results.json" --tol 0 > "$T/check.out" 2>&1 || bad "check vs own baseline failed: $(cat "$T/check.out")"
python3 - "$T/r/results.json" "$T/bad.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["rows"]:
    for k in ("median", "mean", "min", "max"):
        if isinstance(r.get(k), (int, float)): r[k] += 5.0
json.dump(d, open(sys.argv[2], "w"))
PY
"$PB" check "$T/r2" --baseline "$T/bad.json" --tol 1 > "$T/check2.out" 2>&1 && bad "check passed against a perturbed baseline"

# Without --tol the baseline's "tolerance" block applies: "identical" when every cell's last
# training loss matches bit for bit, "different_numerics" as soon as one differs.
python3 - "$T/r/results.json" "$T/tolb.json" "$T/told.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert all(isinstance(c.get("train_loss_last"), float) for c in d["cells"]), "results.json cells lack train_loss_last"
d["tolerance"] = {"identical": 0.0, "different_numerics": 50.0}
json.dump(d, open(sys.argv[2], "w"))
d["cells"][0]["train_loss_last"] += 1e-6
for r in d["rows"]:
    r["median"] += 20.0
json.dump(d, open(sys.argv[3], "w"))
PY
"$PB" check "$T/r2" --baseline "$T/tolb.json" > "$T/c3.out" 2>&1 || bad "check with tolerance block failed: $(cat "$T/c3.out")"
grep -q "4 of 4 cells reproduce.*identical, tolerance 0.00" "$T/c3.out" || bad "identical numerics not detected: $(head -1 "$T/c3.out")"
"$PB" check "$T/r2" --baseline "$T/told.json" > "$T/c4.out" 2>&1 || bad "different_numerics tolerance not applied: $(cat "$T/c4.out")"
grep -q "3 of 4 cells.*different numerics.*tolerance 50.00" "$T/c4.out" || bad "different numerics not detected: $(head -1 "$T/c4.out")"

[ $fail = 0 ] && echo "test_harness_e2e: ok"
exit $fail
