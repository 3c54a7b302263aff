#!/usr/bin/env bash
# test_harness_cli.sh PEFTBENCH_SYNTH [PEFTBENCH]: CLI behaviour of run/report/plot/check on tiny
# suites run by the fixture trainer of tests/peftbench_synth.c (and that peftbench has none):
# resume after SIGKILL (no finished cell re-run, no partial file), shards == unsharded report,
# plots are valid PNGs whose data files match results.csv, check fails on a regression; a mixed
# ViT + RoBERTa suite pairs models with datasets of their modality and reports one table per model.
set -u
PB=${1:?usage: test_harness_cli.sh PATH/TO/peftbench}
PB=$(cd "$(dirname "$PB")" && pwd)/$(basename "$PB")
SRC=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

cat > "$T/s.json" <<'JSON'
{
  "name": "clitest",
  "models": [{"label": "micro", "config": {"arch": "vit", "hidden": 32, "layers": 2, "heads": 2, "intermediate": 64}}],
  "datasets": ["vtab-mini/a", "vtab-mini/b"],
  "methods": ["head", {"method": "lora", "alpha": 16}, "svfit"],
  "grid": {"rank": [4, 8], "lr": [0.001, 0.01], "seed": [0, 1]},
  "recipe": {"epochs": 3}
}
JSON
NCELLS=$("$PB" run "$T/s.json" --out "$T/x" --dry-run | head -1 | sed -E 's/.*: ([0-9]+) cells.*/\1/')
[ "$NCELLS" = 40 ] || bad "expected 40 cells, dry-run says $NCELLS"

# --- run --pretrain-seed: another backbone of the same suite (other cell ids), or an error ------
msg=$("$PB" run "$T/s.json" --out "$T/x" --dry-run --pretrain-seed 1 2>&1); rc=$?
[ $rc = 2 ] && echo "$msg" | grep -q "pretrains no backbone" || bad "--pretrain-seed without pretrain: rc $rc msg $msg"
msg=$("$PB" run "$T/s.json" --out "$T/x" --dry-run --pretrain-seed -3 2>&1); rc=$?
[ $rc = 2 ] && echo "$msg" | grep -q "expects an integer" || bad "--pretrain-seed -3: rc $rc msg $msg"
cat > "$T/p.json" <<'JSON'
{"name": "pre", "models": [{"label": "vm", "config": {"arch": "vit", "hidden": 32, "layers": 2, "heads": 2, "intermediate": 64},
   "pretrain": {"dataset": "vtab-mini/fmnist-pretrain", "epochs": 1, "seed": 5}}],
 "datasets": ["vtab-mini/a"], "methods": ["head"], "grid": {"seed": [0, 1]}}
JSON
ids() { "$PB" run "$T/p.json" --out "$T/p" --dry-run "$@" | awk 'NR > 1 {print $2}' | tr '\n' ' '; }
i_suite=$(ids); i5=$(ids --pretrain-seed 5); i6=$(ids --pretrain-seed 6)
[ -n "$i_suite" ] && [ "$i_suite" = "$i5" ] && [ "$i_suite" != "$i6" ] ||
  bad "--pretrain-seed ids: suite '$i_suite', seed 5 '$i5', seed 6 '$i6'"
"$PB" run "$T/p.json" --out "$T/p" --dry-run --pretrain-seed 6 | grep -q '"seed":6,"train_subset"' ||
  bad "--pretrain-seed 6 not in the cell config"
msg=$("$PB" check "$T/a" "$T/b" --baseline "$T/base.json" 2>&1); rc=$?
[ $rc = 2 ] && echo "$msg" | grep -q "one results directory is checked at a time" || bad "check 2 dirs: rc $rc msg $msg"

# --- peftbench itself has no fake trainer --------------------------------------------------
PB_REAL=${2:-}
if [ -n "$PB_REAL" ]; then
  sed 's/"name": "clitest",/"name": "clitest", "trainer": "synthetic",/' "$T/s.json" > "$T/syn.json"
  "$PB_REAL" run "$T/syn.json" --out "$T/syn" --dry-run > /dev/null 2> "$T/syn.err"; rc=$?
  { [ $rc = 2 ] && grep -q 'trainer: expected "engine"' "$T/syn.err"; } || bad "peftbench accepted trainer synthetic (rc $rc)"
  grep -q PB_SYNTH_SLEEP_MS "$PB_REAL" && bad "the synthetic fixture is linked into peftbench"
  grep -q PB_SYNTH_SLEEP_MS "$PB" || bad "test binary $PB is not the fixture build"
fi

# --- SIGKILL during run, then resume -------------------------------------------------------
PB_SYNTH_SLEEP_MS=40 "$PB" run "$T/s.json" --out "$T/k" --no-report 2>/dev/null &
pid=$!
# Kill once the first cell has landed (polled, not a fixed sleep: under a loaded parallel ctest
# the run can take over a second just to start). 40 cells x 40 ms leaves many still to run.
for _ in $(seq 600); do
  ls "$T/k/cells" 2>/dev/null | grep -q '\.json$' && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
ndone=$(ls "$T/k/cells" | grep -c '\.json$')
[ "$ndone" -gt 0 ] && [ "$ndone" -lt 40 ] || bad "kill point: $ndone finished cells (want 0 < n < 40)"
# Every file present is a complete result (no partial JSON).
for f in "$T"/k/cells/*.json; do
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['status'] in ('ok','failed')" "$f" || bad "partial result $f"
done
# Remember mtimes of finished cells; the resumed run must not touch them.
stat -c '%n %Y.%y' "$T"/k/cells/*.json | sort > "$T/before.txt"
out=$("$PB" run "$T/s.json" --out "$T/k" 2>&1 >/dev/null)
rc=$?
[ $rc = 0 ] || bad "resume exit status $rc"
echo "$out" | grep -q "$ndone already finished" || bad "resume did not skip $ndone finished cells: $(echo "$out" | grep 'to run')"
n2=$(ls "$T/k/cells" | grep -c '\.json$')
[ "$n2" = 40 ] || bad "after resume $n2 cells"
ls "$T/k/cells" | grep -q 'tmp' && bad "temp files left in cells/"
stat -c '%n %Y.%y' $(cut -d' ' -f1 "$T/before.txt") | sort > "$T/after.txt"
cmp -s "$T/before.txt" "$T/after.txt" || bad "a finished cell was rewritten on resume"

# --- shards == unsharded ----------------------------------------------------------------
"$PB" run "$T/s.json" --out "$T/one" >/dev/null 2>&1 || bad "unsharded run failed"
"$PB" run "$T/s.json" --out "$T/sh" --shard 0/2 >/dev/null 2>&1 || bad "shard 0/2 failed"
"$PB" run "$T/s.json" --out "$T/sh" --shard 1/2 >/dev/null 2>&1 || bad "shard 1/2 failed"
"$PB" report "$T/sh" --quiet || bad "report of shards failed"
for f in table.md table.tex; do cmp -s "$T/one/$f" "$T/sh/$f" || bad "$f differs between sharded and unsharded runs"; done
# rows made by the fixture say so (report shows the backend of every row)
grep -q "^- synthetic test fixture (tests/peftbench_synth.c): 40 cells" "$T/one/table.md" || bad "table.md does not name the fixture trainer"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all("synthetic test fixture" in r["backend"] for r in d["rows"])' \
  "$T/one/results.json" || bad "results.json rows do not name their backend"
python3 - "$T/one/results.json" "$T/sh/results.json" <<'PY' || bad "results.json rows differ between sharded and unsharded"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["rows"] == b["rows"], "rows differ"
PY

# --- plots: valid PNGs, data files match results.csv ---------------------------------------
"$PB" plot "$T/one" 2> "$T/plot.log" || bad "plot failed: $(cat "$T/plot.log")"
python3 - "$T/one" <<'PY' || bad "plot check failed"
import csv, json, os, statistics, sys
d = sys.argv[1]
pngs = [f for f in os.listdir(d + "/plots") if f.endswith(".png")]
want = {"rank_a.png", "rank_b.png", "lr_a.png", "lr_b.png", "params.png"}
assert want <= set(pngs), f"missing plots: {want - set(pngs)}"
for f in pngs:
    data = open(f"{d}/plots/{f}", "rb").read()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"bad png {f}"
    assert os.path.getsize(f"{d}/plots/{f[:-4]}.svg") > 500, f"bad svg for {f}"
rows = list(csv.DictReader(open(f"{d}/results.csv")))
def parse_dat(path):
    series, out = None, {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"): continue
        if line.startswith('"'): series = line.strip('"'); continue
        x, y = map(float, line.split()); out[(series, x)] = y
    return out
for ds in ("a", "b"):
    for axis, other in (("rank", "lr"), ("lr", "rank")):
        dat = parse_dat(f"{d}/plots/{axis}_{ds}.dat")
        groups = {}
        for r in rows:
            if r["dataset"] != ds or r["status"] != "ok": continue
            ax = json.loads(r["axes"].replace("'", '"'))
            if axis not in ax: continue
            extra = "".join(f" {k}={ax[k]:g}" for k in sorted(ax) if k != axis)
            groups.setdefault((r["method"] + extra, float(ax[axis])), []).append(100 * float(r["score"]))
        assert set(groups) == set(dat), f"{axis}_{ds}: series/x differ: {sorted(groups)} vs {sorted(dat)}"
        for k, v in groups.items():
            assert abs(statistics.median(v) - dat[k]) < 1e-6, f"{axis}_{ds} {k}: {statistics.median(v)} vs {dat[k]}"
print("plots ok")
PY
# A suite without rank/lr axes: plots are skipped with a message, not an error.
sed -e 's/"grid": {[^}]*}/"grid": {"seed": [0]}/' -e 's/"clitest"/"noaxes"/' "$T/s.json" > "$T/n.json"
"$PB" run "$T/n.json" --out "$T/n" >/dev/null 2>"$T/n.log" || bad "no-axes run failed"
grep -q "skipping accuracy vs rank" "$T/n.log" || bad "no skip message for rank"

# --- dataset groups: HTA's layout (each group's mean after its datasets; Avg over all) -------
cat > "$T/g.json" <<'JSON'
{"name": "groups", "models": [{"label": "micro", "config": {"arch": "vit", "hidden": 32, "layers": 2, "heads": 2, "intermediate": 64}}],
 "datasets": [{"spec": "vtab-mini/a", "group": "Natural"}, {"spec": "vtab-mini/b", "group": "Natural"},
              {"spec": "vtab-mini/c", "group": "Structured"}, "vtab-mini/d"],
 "methods": ["head", "lora"], "grid": {"seed": [0, 1, 2]}, "recipe": {"epochs": 2}}
JSON
"$PB" run "$T/g.json" --out "$T/g" >/dev/null 2>&1 || bad "groups run failed"
python3 - "$T/g" <<'PY' || bad "group columns wrong"
import csv, statistics, sys, re
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/results.csv")))
med = {}
for m in ("head", "lora"):
    for ds in "abcd":
        med[m, ds] = statistics.median(100 * float(r["score"]) for r in rows if r["method"] == m and r["dataset"] == ds)
lines = [l for l in open(f"{d}/table.md") if l.startswith("| ")]
head = [c.strip() for c in lines[0].strip().strip("|").split("|")]
assert head == ["Method", "#Params", "Head (mean)", "a", "b", "Natural mean", "c", "Structured mean", "d", "Avg"], head
for l in lines[1:]:
    c = [x.strip() for x in l.strip().strip("|").split("|")]
    m = c[0]
    num = lambda s: float(s.split()[0])
    want = {5: (med[m, "a"] + med[m, "b"]) / 2, 7: med[m, "c"], 9: sum(med[m, x] for x in "abcd") / 4}
    for k, v in want.items():
        assert abs(num(c[k]) - v) < 0.051, (m, head[k], c[k], v)
html = open(f"{d}/index.html").read()
assert html.count('<th class="group">') == 2 and "Natural mean</th>" in html, "index.html lacks the group columns"
tex = open(f"{d}/table.tex").read()
assert "Natural mean" in tex and "Structured mean" in tex, "table.tex lacks the group columns"
PY
# a group that is not a string, and one too long, are errors naming the field
sed 's/"group": "Structured"/"group": 3/' "$T/g.json" > "$T/g2.json"
msg=$("$PB" run "$T/g2.json" --out "$T/g2" --dry-run 2>&1); rc=$?
[ $rc = 2 ] && echo "$msg" | grep -q "datasets\[2\].group: expected a string" || bad "numeric group: rc $rc msg $msg"
sed "s/\"group\": \"Structured\"/\"group\": \"$(printf 'x%.0s' $(seq 70))\"/" "$T/g.json" > "$T/g3.json"
msg=$("$PB" run "$T/g3.json" --out "$T/g3" --dry-run 2>&1); rc=$?
[ $rc = 2 ] && echo "$msg" | grep -q "datasets\[2\].group: group must be 1-63 bytes" || bad "long group: rc $rc msg $msg"

# --- mixed modalities: a ViT on image datasets and a RoBERTa on text datasets in one suite ------
# Only same-modality pairs make cells (2 x 2 x 2 x 2 = 16, no ViT x GLUE cell); the report prints
# one table per model block with its own columns and Avg; results/check keep working.
cat > "$T/mx.json" <<'JSON'
{"name": "mixed", "models": [{"label": "vit-m", "config": {"arch": "vit", "hidden": 32, "layers": 2, "heads": 2, "intermediate": 64}},
                             {"label": "rob-m", "config": {"arch": "roberta", "hidden": 32, "layers": 2, "heads": 2, "intermediate": 64, "vocab_size": 300}}],
 "datasets": ["vtab-mini/a", "glue/sst2:nowhere/sst2", "vtab-mini/b", "glue/rte:nowhere/rte"],
 "methods": ["head", "lora"], "grid": {"seed": [0, 1]}, "recipe": {"epochs": 2}}
JSON
"$PB" run "$T/mx.json" --out "$T/mx" --dry-run > "$T/mx.dry" || bad "mixed dry-run failed"
head -1 "$T/mx.dry" | grep -q "suite mixed: 16 cells" || bad "mixed dry-run: $(head -1 "$T/mx.dry")"
"$PB" run "$T/mx.json" --out "$T/mx" >/dev/null 2>&1 || bad "mixed run failed"
python3 - "$T/mx" <<'PY' || bad "mixed report wrong"
import csv, json, re, statistics, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/results.csv")))
assert len(rows) == 16, len(rows)
pairs = {(r["model"], r["dataset"]) for r in rows}
assert pairs == {("vit-m", "a"), ("vit-m", "b"), ("rob-m", "sst2"), ("rob-m", "rte")}, pairs
med = {}
for r in rows:
    med.setdefault((r["model"], r["method"], r["dataset"]), []).append(100 * float(r["score"]))
med = {k: statistics.median(v) for k, v in med.items()}
md = open(f"{d}/table.md").read()
heads = re.findall(r"^## Model: (.*)$", md, re.M)
assert heads == ["vit-m", "rob-m"], heads
want_cols = {"vit-m": ["a", "b"], "rob-m": ["sst2", "rte"]}
for model in heads:
    part = md.split(f"## Model: {model}\n", 1)[1].split("\n## ", 1)[0]
    lines = [l for l in part.splitlines() if l.startswith("| ")]
    head = [c.strip() for c in lines[0].strip().strip("|").split("|")]
    assert head == ["Method", "#Params", "Head (mean)"] + want_cols[model] + ["Avg"], (model, head)
    body = lines[1:]  # the |---| line does not start with "| "
    assert [l.split("|")[1].strip() for l in body] == ["head", "lora"], (model, body)
    for l in body:
        c = [x.strip() for x in l.strip().strip("|").split("|")]
        num = lambda s: float(s.split()[0])
        vals = [med[model, c[0], ds] for ds in want_cols[model]]
        for k, v in enumerate(vals):
            assert abs(num(c[3 + k]) - v) < 0.051, (model, c[0], head[3 + k], c[3 + k], v)
        assert abs(num(c[-1]) - sum(vals) / 2) < 0.051, (model, c[0], "Avg", c[-1], sum(vals) / 2)
tex = open(f"{d}/table.tex").read()
assert tex.count("\\begin{tabular}") == 2 and "Model: vit-m" in tex and "Model: rob-m" in tex, "table.tex: two tables"
html = open(f"{d}/index.html").read()
ids = re.findall(r'<table class="results" id="(table-results[^"]*)"', html)
assert ids == ["table-results-1", "table-results-2"], ids
for i, model in enumerate(heads, 1):
    t = html.split(f'id="table-results-{i}"', 1)[1].split("</table>", 1)[0]
    ths = re.findall(r"<th>([^<]*)</th>", t.split("</thead>")[0])
    assert ths == ["Method", "#Params", "Head (mean)"] + want_cols[model] + ["Avg"], (model, ths)
    assert t.count('<tr><th class="label"') == 2, model
    assert "best" in t, f"no best-in-column in table {i}"
res = json.load(open(f"{d}/results.json"))
assert len(res["rows"]) == 8 and len(res["cells"]) == 16, (len(res["rows"]), len(res["cells"]))
PY
"$PB" check "$T/mx" --write-baseline "$T/mx_base.json" >/dev/null 2>&1 || bad "mixed: check --write-baseline failed"
"$PB" check "$T/mx" --baseline "$T/mx_base.json" > "$T/mx_check.txt" 2>&1 || bad "mixed: check --baseline failed: $(tail -3 "$T/mx_check.txt")"
grep -q "8 baseline rows" "$T/mx_check.txt" || bad "mixed: check did not compare 8 rows: $(tail -1 "$T/mx_check.txt")"
# a text dataset with only a ViT model, or a RoBERTa no dataset fits: exit 2 naming the entry
python3 - "$T/mx.json" "$T/mx_bad1.json" "$T/mx_bad2.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
b = dict(s, name="bad1", models=s["models"][:1])
json.dump(b, open(sys.argv[2], "w"))
b = dict(s, name="bad2", datasets=["vtab-mini/a", "vtab-mini/b"])
json.dump(b, open(sys.argv[3], "w"))
PY
msg=$("$PB" run "$T/mx_bad1.json" --out "$T/mx_bad1" --dry-run 2>&1); rc=$?
{ [ $rc = 2 ] && echo "$msg" | grep -q "mx_bad1.json: datasets\[1\]: 'glue/sst2:nowhere/sst2' is a text dataset and no model of the suite takes it (it needs a RoBERTa model"; } ||
  bad "text dataset with only a ViT: rc $rc msg $msg"
msg=$("$PB" run "$T/mx_bad2.json" --out "$T/mx_bad2" 2>&1); rc=$?
{ [ $rc = 2 ] && echo "$msg" | grep -q "mx_bad2.json: models\[1\]: 'rob-m' is a RoBERTa model (arch roberta) and no dataset of the suite fits it"; } ||
  bad "RoBERTa without text datasets: rc $rc msg $msg"
[ -e "$T/mx_bad2" ] && bad "a suite refused for modality created its output dir"

# --- check ----------------------------------------------------------------------------------
"$PB" check "$T/one" --baseline "$T/one/results.json" --tol 0.5 >/dev/null || bad "check vs itself should pass"
python3 - "$T/one/results.json" "$T/base_up.json" "$T/base_extra.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
b["rows"][0]["median"] += 5.0
json.dump(b, open(sys.argv[2], "w"))
b = json.load(open(sys.argv[1]))
r = dict(b["rows"][0]); r["dataset"] = "zzz"; b["rows"].append(r)
json.dump(b, open(sys.argv[3], "w"))
PY
"$PB" check "$T/one" --baseline "$T/base_up.json" --tol 1 > "$T/c1.txt"; rc=$?
[ $rc = 1 ] && grep -q REGRESSION "$T/c1.txt" || bad "check should fail on a 5-point regression (rc $rc)"
"$PB" check "$T/one" --baseline "$T/base_up.json" --tol 6 >/dev/null || bad "check within tolerance should pass"
"$PB" check "$T/one" --baseline "$T/base_extra.json" --tol 1 > "$T/c2.txt"; rc=$?
[ $rc = 1 ] && grep -q MISSING "$T/c2.txt" || bad "check should fail on a missing cell (rc $rc)"

# --- a failing (diverging) cell is recorded and the suite goes on; exit status 1 ---------------
sed -e 's/"methods": \[[^]]*\]/"methods": [{"method": "lora", "label": "lora-diverge"}, "head"]/' -e 's/"clitest"/"div"/' "$T/n.json" > "$T/d.json"
"$PB" run "$T/d.json" --out "$T/d" >/dev/null 2>&1; rc=$?
[ $rc = 1 ] || bad "diverging cell: exit status $rc, want 1"
python3 - "$T/d" <<'PY' || bad "diverged cells not recorded as failed"
import json, os, sys
res = [json.load(open(os.path.join(sys.argv[1], "cells", f))) for f in os.listdir(sys.argv[1] + "/cells")]
failed = [r for r in res if r["status"] == "failed"]
ok = [r for r in res if r["status"] == "ok"]
assert len(failed) == 2 and len(ok) == 2, (len(failed), len(ok))
assert all("diverged" in r["reason"] for r in failed)
PY

# --- malformed suite -> exit 2 with file and key path -------------------------------------------
sed 's/"recipe": {/"recipe": {"epochz": 2, /' "$T/s.json" > "$T/bad.json"
msg=$("$PB" run "$T/bad.json" --out "$T/bad" 2>&1); rc=$?
[ $rc = 2 ] && echo "$msg" | grep -q "bad.json: recipe.epochz: unknown key" || bad "bad key: rc $rc msg $msg"
[ -e "$T/bad" ] && bad "a bad suite created its output dir"

[ $fail = 0 ] && echo "test_harness_cli: ok"
exit $fail
