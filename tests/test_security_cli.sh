#!/usr/bin/env bash
# test_security_cli.sh PEFTBENCH: hostile and careless input at the CLI (issue 11).
#   (1) labels with backquotes, $(...), quotes and backslashes, in a suite and in the results
#       directory name: run/plot/report run no command, the plots are made, table.tex escapes
#       LaTeX, table.md escapes '|', results.csv is valid CSV (Python's csv reads the labels back),
#       index.html escapes them for HTML.
set -u
PB=${1:?usage: test_security_cli.sh PATH/TO/peftbench PATH/TO/peftbench_synth}
PB=$(cd "$(dirname "$PB")" && pwd)/$(basename "$PB")
# suites that only exercise the runner/report run on the fixture trainer (tests/peftbench_synth.c)
PBS=${2:?usage: test_security_cli.sh PATH/TO/peftbench PATH/TO/peftbench_synth}
PBS=$(cd "$(dirname "$PBS")" && pwd)/$(basename "$PBS")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
cd "$T"

# --- (1) no shell, every user string escaped where it lands -------------------------------
EVIL_M='lo`touch PWN_m1`$(touch PWN_m2)'"'"'q"d\|p|&5%#_{x}^~'   # 45 bytes, under the 63 limit
EVIL_D='data`touch PWN_d1`$(touch PWN_d2);"x",y'
python3 - "$EVIL_M" "$EVIL_D" > s.json <<'PY'
import json, sys
m, d = sys.argv[1], sys.argv[2]
print(json.dumps({
  "name": "sec",
  "models": [{"label": "micro", "config": {"arch": "vit", "hidden": 32, "layers": 2, "heads": 2, "intermediate": 64}}],
  "datasets": [{"spec": "vtab-mini/bar-ori", "label": d}, "vtab-mini/sprite-count"],
  "methods": ["head", {"method": "lora", "label": m}],
  "grid": {"rank": [4, 8], "lr": [0.001, 0.01], "seed": [0]},
  "recipe": {"epochs": 2}}))
PY
OUT='res`touch PWN_o1`$(touch PWN_o2) q'"'"'x'
"$PBS" run s.json --out "$OUT" > run.log 2>&1 || bad "run with hostile labels exit $? ($(tail -2 run.log))"
"$PB" plot "$OUT" > plot.log 2>&1 || bad "plot exit $? ($(tail -2 plot.log))"
# and a results directory whose name holds no single quote (which an older check refused)
OUT2='res2`touch PWN_o3`$(touch PWN_o4)'
"$PBS" run s.json --out "$OUT2" > run2.log 2>&1 || bad "run into $OUT2 exit $? ($(tail -2 run2.log))"
ls PWN_* 2>/dev/null && bad "a command ran: $(ls PWN_* | tr '\n' ' ')"
find / -xdev -name 'PWN_*' -newer s.json 2>/dev/null | grep -q . && bad "a command ran somewhere: $(find / -xdev -name 'PWN_*' -newer s.json 2>/dev/null | head -3)"
for f in rank_ lr_ params; do
  ls "$OUT"/plots/${f}*.png >/dev/null 2>&1 || bad "no ${f}* plot"
done
for p in "$OUT"/plots/*.png; do
  head -c 8 "$p" | od -An -c | grep -q "P   N   G" || bad "$p is not a PNG"
done
python3 - "$OUT" "$EVIL_M" "$EVIL_D" <<'PY' || fail=1
import csv, sys, os, re
out, m, d = sys.argv[1:4]
rows = list(csv.DictReader(open(os.path.join(out, "results.csv"), newline="")))
assert rows, "results.csv empty"
names = {r["method_name"] for r in rows} | {r["method"] for r in rows}
dsets = {r["dataset"] for r in rows}
assert m in names, f"method label not read back from results.csv: {names}"
assert d in dsets, f"dataset label not read back from results.csv: {dsets}"
tex = open(os.path.join(out, "table.tex")).read()
# every LaTeX special of the labels is escaped: no bare & % # _ { } ~ ^ $ \ from user text
body = [l for l in tex.splitlines() if "lo" in l and "touch" in l]
assert body, "method row missing from table.tex"
row = body[0]
cells = re.split(r"(?<!\\)&", row)
assert len(cells) == 2 + 1 + 2 + 1, f"table.tex row splits into {len(cells)} cells (an unescaped &): {row}"
lab = cells[0].strip()
macros = {r"\textbackslash{}": "\\", r"\textasciitilde{}": "~", r"\textasciicircum{}": "^"}
plain = lab
for k in macros:
    plain = plain.replace(k, "")
for ch in "%#_{}~^$&":
    bare = re.findall(r"(?<!\\)" + re.escape(ch), plain)
    assert not bare, f"unescaped {ch!r} in table.tex label cell: {lab}"
dec = lab
for k, v in macros.items():
    dec = dec.replace(k, v)
dec = re.sub(r"\\([&%$#_{}])", r"\1", dec)
assert dec.startswith(m), f"table.tex label does not decode to the method label: {dec!r} vs {m!r}"
md = open(os.path.join(out, "table.md")).read()
mrow = [l for l in md.splitlines() if "touch PWN_m1" in l]
assert mrow, "method row missing from table.md"
cols = re.split(r"(?<!\\)\|", mrow[0].strip().strip("|"))
hdr = [l for l in md.splitlines() if l.startswith("| Method")][0]
hcols = re.split(r"(?<!\\)\|", hdr.strip().strip("|"))
assert len(cols) == len(hcols), f"table.md row has {len(cols)} cells, header {len(hcols)}: {mrow[0]}"
print(f"  hostile labels: {len(rows)} cells; results.csv, table.tex, table.md escape them; no command ran")
PY
# index.html (written by run): every label HTML-escaped, never raw (test_report_html.sh opens it in a browser)
python3 - "$OUT" "$EVIL_M" "$EVIL_D" <<'PY' || bad "index.html does not escape the hostile labels"
import html, os, re, sys
out, m, d = sys.argv[1:4]
page = open(os.path.join(out, "index.html"), encoding="utf-8").read()
# gnuplot's inline SVG text escapes only & and < (a quote is plain text there): check the page around it
outside = re.sub(r"<svg\b.*?</svg>", "", page, flags=re.S)
for raw in (m, d):
    esc = html.escape(raw, quote=True).replace("&#x27;", "&#39;")
    assert esc in outside, f"escaped {esc!r} not in index.html"
    assert raw not in outside, f"raw {raw!r} in index.html"
PY

# --- (6) check cannot be made to pass a regression ------------------------------------------
# A baseline that this run does not reach by 60 points in one row; every bad baseline or tolerance
# must exit non-zero (2 = unusable input), never 0.
"$PB" report "$OUT2" > /dev/null 2>&1 || bad "report $OUT2"
python3 - "$OUT2" <<'PY'
import json, sys, copy
out = sys.argv[1]
base = json.load(open(f"{out}/results.json"))
hi = copy.deepcopy(base); hi["rows"][0]["median"] = hi["rows"][0]["median"] + 60
json.dump(hi, open("b_regress.json", "w"))
e = copy.deepcopy(base); e["rows"] = []
json.dump(e, open("b_empty.json", "w"))
s = copy.deepcopy(base); s["rows"][0]["median"] = "high"
json.dump(s, open("b_str.json", "w"))
n = copy.deepcopy(base); n["rows"][0]["median"] = None
json.dump(n, open("b_null.json", "w"))
m = copy.deepcopy(base); del m["rows"][1]["median"]
json.dump(m, open("b_nomedian.json", "w"))
t = copy.deepcopy(hi); t["tolerance"] = {"identical": -1, "different_numerics": 100}
json.dump(t, open("b_negtol.json", "w"))
PY
"$PB" check "$OUT2" --baseline b_regress.json > /dev/null; rc=$?
[ $rc = 1 ] || bad "check: a 60-point regression exits $rc, want 1"
for tol in nan NaN inf -inf -1 1e999 abc; do
  "$PB" check "$OUT2" --baseline b_regress.json --tol "$tol" > /dev/null 2>&1; rc=$?
  [ $rc = 2 ] || bad "check --tol $tol exits $rc, want 2"
done
for b in b_empty b_str b_null b_nomedian b_negtol; do
  out=$("$PB" check "$OUT2" --baseline $b.json 2>&1); rc=$?
  [ $rc = 2 ] || bad "check with $b.json exits $rc, want 2 ($out)"
done

# --- (3) labels: a documented limit (63 bytes), whole UTF-8, no control characters -------------
mk() { python3 -c 'import json,sys; print(json.dumps({"name": "lab", "models": ["vit-tiny"],
  "datasets": [{"spec": "vtab-mini/bar-ori", "label": sys.argv[2]}], "methods": [{"method": "lora", "label": sys.argv[1]}],
  "grid": {"seed": [0]}}))' "$1" "$2" > "$3"; }
mk "$(printf 'm%.0s' $(seq 64))" ok l1.json
mk "lora" "$(printf 'd%.0s' $(seq 64))" l2.json
mk "$(printf 'é%.0s' $(seq 31))x" ok l3.json        # 63 bytes of 2-byte characters: allowed
mk "$(printf 'é%.0s' $(seq 32))" ok l4.json         # 64 bytes: refused whole, never cut mid-character
mk "$(printf 'tab	here')" ok l5.json
mk "lora-$(printf 'a%.0s' $(seq 40))-one" "ok" l6.json
for f in l1 l2 l4 l5; do
  out=$("$PB" run $f.json --out $f.out --dry-run 2>&1); rc=$?
  [ $rc = 2 ] && echo "$out" | grep -q "label" || bad "label case $f: rc $rc, '$out'"
done
"$PBS" run l3.json --out l3.out --no-report > /dev/null 2>&1 || bad "a 63-byte UTF-8 label was refused"
python3 -c 'import json,glob; [json.load(open(f, encoding="utf-8", errors="strict")) for f in glob.glob("l3.out/cells/*.json")]' ||
  bad "cell files of a UTF-8 label are not valid UTF-8 JSON"

# --- (4) seeds: [0, 2^31-1], nothing wraps or merges -------------------------------------------
python3 -c 'import json; print(json.dumps({"name": "sd", "models": ["vit-tiny"],
  "datasets": ["vtab-mini/bar-ori"], "methods": ["head"], "grid": {"seed": [2147483648, 0]}}))' > sd.json
out=$("$PB" run sd.json --out sd.out --dry-run 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "grid.seed\[0\]" || bad "seed 2^31: rc $rc, '$out'"
python3 -c 'import json; print(json.dumps({"name": "sd2", "models": ["vit-tiny"],
  "datasets": ["vtab-mini/bar-ori"], "methods": ["head"], "grid": {"seed": [2147483647, 0]}}))' > sd2.json
n=$("$PB" run sd2.json --out sd2.out --dry-run 2>&1 | head -1 | sed -E 's/.*: ([0-9]+) cells.*/\1/')
[ "$n" = 2 ] || bad "seeds 2^31-1 and 0 must give 2 cells, got $n"

# --- (5) model sizes: limits at validation, a memory estimate before allocating ---------------
python3 -c 'import json; print(json.dumps({"name": "sz", "models": [{"label": "huge",
  "config": {"arch": "vit", "hidden": 64, "layers": 1000000000, "heads": 2, "intermediate": 64}}],
  "datasets": ["vtab-mini/bar-ori"], "methods": ["head"]}))' > sz.json
out=$("$PB" run sz.json --out sz.out --dry-run 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "models\[0\].*layers" || bad "10^9 layers: rc $rc, '$out'"
python3 -c 'import json; print(json.dumps({"name": "sz3", "models": [{"label": "odd",
  "config": {"arch": "vit", "hidden": 64, "layers": 2, "heads": 5, "intermediate": 64}}],
  "datasets": ["vtab-mini/bar-ori"], "methods": ["head"]}))' > sz3.json
out=$("$PB" run sz3.json --out sz3.out --dry-run 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "multiple of heads" || bad "heads not dividing hidden must fail at validation: rc $rc, '$out'"
mkdir -p bigimg && echo '{"model_type": "vit", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
  "intermediate_size": 64, "image_size": 1000000, "patch_size": 1, "num_channels": 3}' > bigimg/config.json
out=$("$PB" info bigimg --json 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "image_size" || bad "info on a 10^6-pixel, patch-1 config: rc $rc, '$(echo "$out" | head -3)'"
python3 -c 'import json; print(json.dumps({"name": "sz2", "models": [{"label": "wide", "config": {"arch": "vit",
  "hidden": 8192, "layers": 64, "heads": 64, "intermediate": 32768, "image_size": 224, "patch_size": 16, "channels": 3}}],
  "datasets": ["vtab-mini/bar-ori"], "methods": ["full"], "recipe": {"epochs": 1, "train_subset": 32}}))' > sz2.json
"$PB" run sz2.json --out sz2.out --no-report > sz2.log 2>&1; rc=$?
[ $rc = 1 ] && grep -q '"reason":.*needs about .* GiB' sz2.out/cells/*.json || bad "an oversized model must fail its cell with the memory it needs: rc $rc, $(tail -2 sz2.log)"

# --- (2) trace never writes over its inputs ----------------------------------------------------
# A real checkpoint directory: the backbone a nano suite pretrains (HF layout), plus a batch.
export PEFTBENCH_BACKBONE_CACHE="$T/bb"
cat > pre.json <<'JSON'
{"name": "pre", "models": [{"label": "nano", "config": {"arch": "vit", "hidden": 16, "layers": 1, "heads": 2,
   "intermediate": 32, "image_size": 28, "patch_size": 7, "channels": 1},
   "pretrain": {"dataset": "vtab-mini/fmnist-pretrain", "train_subset": 64, "epochs": 1, "batch": 32}}],
 "datasets": ["vtab-mini/bar-ori"], "methods": ["head"], "recipe": {"epochs": 1, "train_subset": 32}}
JSON
"$PB" run pre.json --out pre > pre.log 2>&1 || bad "pretrain run exit $? ($(tail -2 pre.log))"
MODEL=$(ls -d "$T"/bb/*/ 2>/dev/null | head -1)
[ -f "$MODEL/model.safetensors" ] || bad "no pretrained checkpoint in $T/bb"
cp -r "$MODEL" model
python3 - <<'PY'
import json, struct
B = 2
px = struct.pack(f"<{B*28*28}f", *([0.25] * (B * 28 * 28)))
lab = struct.pack(f"<{B}q", 1, 3)
hdr = {"pixel_values": {"dtype": "F32", "shape": [B, 1, 28, 28], "data_offsets": [0, len(px)]},
       "labels": {"dtype": "I64", "shape": [B], "data_offsets": [len(px), len(px) + len(lab)]}}
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open("batch.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + px + lab)
PY
"$PB" trace --model model --batch batch.safetensors --out trace.safetensors --num-labels 10 > /dev/null 2>&1 ||
  bad "trace with distinct outputs exit $?"
sum0=$(cat model/* batch.safetensors | md5sum)
ln -s model modellink
for args in "--out model/model.safetensors" "--out ./model/../model/config.json" "--out modellink/model.safetensors" \
            "--out batch.safetensors" "--out model/new.safetensors" "--out x.st --save model" "--out x.st --save modellink" \
            "--out x.st --save model/sub" "--out x.st --save ." "--out sv/model.safetensors --save sv"; do
  out=$("$PB" trace --model model --batch batch.safetensors --num-labels 10 $args 2>&1); rc=$?
  [ $rc = 2 ] && echo "$out" | grep -q "overwrite\|written after" || bad "trace $args: rc $rc, '$out'"
done
[ "$(cat model/* batch.safetensors | md5sum)" = "$sum0" ] || bad "an input file changed"
[ -e model/new.safetensors ] && bad "trace wrote into the model directory"

# --- (7) report names every cell file it cannot trust; --strict fails ---------------------------
cp -r "$OUT2" r7
"$PB" report r7 --strict > /dev/null 2> r7.err || bad "report --strict on a clean directory: exit $? ($(cat r7.err))"
python3 - r7 <<'PY'
import json, glob, os, shutil, sys
d = sys.argv[1]
cells = sorted(glob.glob(d + "/cells/*.json"))
a = json.load(open(cells[0])); a["final"]["score"] = "0.9"; json.dump(a, open(cells[0], "w"))   # a string
b = json.load(open(cells[1])); b["final"]["score"] = 5.0; json.dump(b, open(cells[1], "w"))     # out of range
shutil.copy(cells[2], d + "/cells/copy-of-a-cell.json")                                         # a copy
c = json.load(open(cells[3])); c["suite"] = "another"; c["id"] = "f" * 16
json.dump(c, open(d + "/cells/" + "f" * 16 + ".json", "w"))                                     # another suite
PY
"$PB" report r7 > r7.out 2> r7.err; rc=$?
[ $rc = 0 ] || bad "report exit $rc without --strict"
for why in "score is not a number" "score is 5" "not its cell id" "suite 'another'"; do
  grep -q "$why" r7.err || bad "report did not say '$why' ($(cat r7.err))"
  grep -q "$why" r7/table.md || bad "table.md does not list '$why'"
done
"$PB" report r7 --strict > /dev/null 2>&1; rc=$?
[ $rc = 1 ] || bad "report --strict with skipped cells exit $rc, want 1"
python3 - r7 <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1] + "/results.json"))
assert len(d["cells"]) == 12 - 2, f"{len(d['cells'])} cells in results.json, want 10 (2 bad ones left out, copies not counted)"
assert all(r["max"] <= 100 for r in d["rows"]), "a score above 100 reached the table"
PY

# --- (8) the backbone cache is checked against its content hash -------------------------------
score() { python3 -c 'import json,glob,sys; print(json.load(open(glob.glob(sys.argv[1] + "/cells/*.json")[0]))["final"]["score"])' "$1"; }
s0=$(score pre)
BB=$(ls -d "$T"/bb/*/ | head -1)
python3 - "$BB/model.safetensors" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
for i in range(len(b) - 64, len(b) - 8):   # weights at the end of the file: perturb them
    b[i] ^= 0x40
open(p, "wb").write(bytes(b))
PY
"$PB" run pre.json --out pre2 > pre2.log 2>&1 || bad "run after editing the cached backbone exit $?"
grep -q "does not match its content hash" pre2/logs/*.log pre2.log 2>/dev/null || bad "an edited backbone was not detected"
[ "$(score pre2)" = "$s0" ] || bad "after the rebuild the score differs: $(score pre2) vs $s0"
BB=$(ls -d "$T"/bb/*/ | head -1)
truncate -s 100 "$BB/model.safetensors"
"$PB" run pre.json --out pre3 > pre3.log 2>&1 || bad "run after truncating the cached backbone exit $? ($(tail -1 pre3.log))"
[ "$(score pre3)" = "$s0" ] || bad "after a truncated backbone the score differs: $(score pre3) vs $s0"

# --- (10) the smaller ones ------------------------------------------------------------------------
for lr in nan inf -inf -0.1 1e999; do
  out=$("$PB" trace --model model --batch batch.safetensors --out lr.st --num-labels 10 --lr "$lr" 2>&1); rc=$?
  [ $rc = 2 ] && echo "$out" | grep -q -- "--lr" || bad "trace --lr $lr: rc $rc, '$out'"
done
out=$("$PB" trace --model model --batch batch.safetensors --out b.st --num-labels 10 --beta2 1 2>&1); rc=$?
[ $rc = 2 ] || bad "trace --beta2 1: rc $rc"
out=$("$PB" run s.json --out sh.out --shard 1/2x --dry-run 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "1/2x" || bad "--shard 1/2x: rc $rc, '$out'"
out=$("$PB" run s.json --out th.out --threads 100000 --dry-run 2>&1); rc=$?
[ $rc = 2 ] || bad "--threads 100000: rc $rc"
out=$("$PB" bench --model vit-tiny --threads 100000 2>&1); rc=$?
[ $rc = 2 ] || bad "bench --threads 100000: rc $rc"
printf '{"name": "dk", "models": ["vit-tiny"], "datasets": ["vtab-mini/bar-ori"],\n "methods": ["head"], "recipe": {"lr": 0.1, "lr": 0.2}}\n' > dk.json
out=$("$PB" run dk.json --out dk.out --dry-run 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "duplicate key 'recipe.lr'" || bad "duplicate key in a suite: rc $rc, '$out'"
mkdir -p dupcfg && cp model/* dupcfg/ && python3 - <<'PY'
t = open("dupcfg/config.json").read().rstrip().rstrip("}")
open("dupcfg/config.json", "w").write(t + ', "hidden_size": 32}\n')
PY
out=$("$PB" info dupcfg 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "duplicate key 'hidden_size'" || bad "duplicate key in config.json: rc $rc, '$out'"
"$PB" data --help > /dev/null 2>&1 || bad "data --help exit $?"
grep -q "val nan" pre.log && bad "the pretraining log prints 'val nan'"
python3 - "$OUT2" <<'PY' || fail=1
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/results.csv", newline="")))
for r in rows:
    ax = json.loads(r["axes"])
    assert all(len(repr(v)) < 12 for v in ax.values() if isinstance(v, float)), f"axes not shortest: {r['axes']}"
PY

[ $fail = 0 ] && echo "security CLI checks passed"
exit $fail
