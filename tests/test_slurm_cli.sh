#!/usr/bin/env bash
# test_slurm_cli.sh PEFTBENCH: what `peftbench slurm` / `status` and the shared-filesystem safety
# do without a Slurm (test_slurm.sh runs the real one): --dry-run of the AOFT VTAB-1k suite with no
# data and no sbatch on PATH; the job scripts it writes are valid sh, and run by sh (as Slurm
# would) with a hostile --out directory they do what they say and nothing else; a missing sbatch is
# a clear error; status reports running / stale (killed) / done / missing cells; --cells refuses
# ids of another suite; two processes needing one backbone pretrain it once (the other waits),
# and a waiter takes over when the holder is killed (SIGKILL) mid-pretraining.
set -u
PB=${1:?usage: test_slurm_cli.sh PATH/TO/peftbench}
PB=$(cd "$(dirname "$PB")" && pwd)/$(basename "$PB")
SRC=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT && echo "keeping $T"
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
cd "$SRC" || exit 1

# Prints the script that follows "==> NAME" in a --dry-run output file (up to the next header or
# the first sbatch line).
script_of() {
  awk -v want="$2" '/^==> /{on = ($0 ~ want "$"); next} /^sbatch /{on=0} on' "$1"
}

# --- dry-run of a paper suite: no data, no Slurm ---------------------------------------------
env PATH=/nonexistent "$PB" slurm suites/aoft-vtab1k.json --out "$T/aoft" --partition gpu --gres gpu:1 --device cuda \
  --cpus-per-task 8 --time 08:00:00 --cells-per-task 4 --dry-run > "$T/aoft.out" 2> "$T/aoft.err"
rc=$?
[ $rc = 0 ] || bad "dry-run of aoft-vtab1k: exit $rc: $(cat "$T/aoft.err")"
[ -e "$T/aoft" ] && bad "dry-run created the results directory"
[ "$(grep -c '^==> ' "$T/aoft.out")" = 3 ] || bad "dry-run: expected 3 scripts"
[ "$(grep -c "^sbatch --parsable" "$T/aoft.out")" = 3 ] || bad "dry-run: expected 3 sbatch lines"
grep -q -- " --gres=gpu:1 " "$T/aoft.out" || bad "dry-run: no --gres"
# the array size follows the suite's cell count (run --dry-run), 4 cells per task
ncells=$("$PB" run suites/aoft-vtab1k.json --out "$T/aoft-n" --dry-run 2>/dev/null | head -1 | sed -E 's/.*: ([0-9]+) cells.*/\1/')
ntasks=$(( (ncells + 3) / 4 ))
[ "$ncells" -gt 200 ] 2>/dev/null || bad "dry-run cell count of aoft-vtab1k: '$ncells'"
grep -q -- " --array=0-$((ntasks - 1)) '--dependency=afterok:<prepare job id>' --kill-on-invalid-dep=yes " "$T/aoft.out" ||
  bad "dry-run: array line ($ncells cells / 4 per task = $ntasks tasks)"
grep -q "^$ntasks array tasks" "$T/aoft.out" || bad "dry-run: '$ntasks array tasks' line"
grep -q -- " '--dependency=afterany:<array job id>' " "$T/aoft.out" || bad "dry-run: report dependency"
grep -q -- '--device cuda --no-report --retry-failed "$@"' "$T/aoft.out" || bad "dry-run: array exec line"
for s in prepare array report; do
  script_of "$T/aoft.out" "$s.sh" > "$T/aoft-$s.sh"
  [ -s "$T/aoft-$s.sh" ] || bad "dry-run: no $s.sh"
  sh -n "$T/aoft-$s.sh" || bad "dry-run: $s.sh is not valid sh"
done

# --pretrain-seed reaches every run of the jobs (another backbone of the same suite), and a suite
# that pretrains nothing refuses it
"$PB" slurm suites/quick.json --out "$T/qbb" --pretrain-seed 3 --dry-run > "$T/qbb.out" 2> "$T/qbb.err" ||
  bad "dry-run --pretrain-seed: $(cat "$T/qbb.err")"
for s in prepare array; do
  script_of "$T/qbb.out" "$s.sh" | grep -q -- "--device cpu --pretrain-seed 3" || bad "$s.sh lacks --pretrain-seed 3"
done
msg=$("$PB" slurm suites/aoft-vtab1k.json --out "$T/x" --pretrain-seed 1 --dry-run 2>&1); rc=$?
[ $rc = 2 ] && echo "$msg" | grep -q "pretrains no backbone" || bad "slurm --pretrain-seed without pretrain: rc $rc $msg"

# --- a micro suite, its scripts run by sh with a hostile --out directory ----------------------
export PEFTBENCH_BACKBONE_CACHE="$T/backbones"
cat > "$T/s.json" <<'JSON'
{
  "name": "slurmcli",
  "models": [{"label": "nano",
              "config": {"arch": "vit", "hidden": 16, "layers": 2, "heads": 2, "intermediate": 32,
                         "image_size": 28, "patch_size": 7, "channels": 1},
              "pretrain": {"dataset": "vtab-mini/fmnist-pretrain", "train_subset": 512, "epochs": 1, "batch": 64}}],
  "datasets": ["vtab-mini/sprite-xpos"],
  "methods": [{"method": "head", "lr": 5e-3}, {"method": "lora", "rank": 4, "alpha": 8}],
  "grid": {"seed": [0, 1]},
  "recipe": {"epochs": 2, "batch": 32, "train_subset": 128, "eval_batch": 128}
}
JSON
OUT="$T/o ut'q \$(touch $T/pwned) \`touch $T/pwned2\` %j"
"$PB" slurm "$T/s.json" --out "$OUT" --dry-run > "$T/micro.out" 2> "$T/micro.err" || bad "micro dry-run failed: $(cat "$T/micro.err")"
grep -q "4 array tasks (task i runs --shard i/N)" "$T/micro.out" || bad "micro dry-run: expected 4 tasks (one cell each)"
grep -q -- "%%j/slurm/1/logs/array-%A_%a.out" "$T/micro.out" || bad "sbatch --output: '%' of the directory not doubled"
for s in prepare array report; do script_of "$T/micro.out" "$s.sh" > "$T/micro-$s.sh"; done
sh "$T/micro-prepare.sh" > "$T/prep.out" 2>&1 || bad "prepare.sh failed: $(tail -3 "$T/prep.out")"
[ -f "$OUT/manifest.json" ] || bad "prepare.sh did not write the manifest into the hostile directory"
[ "$(ls "$T/backbones" | wc -l)" = 1 ] || bad "prepare.sh did not pretrain the backbone"
SLURM_ARRAY_TASK_ID=2 sh "$T/micro-array.sh" > "$T/task2.out" 2>&1 || bad "array.sh task 2 failed: $(tail -3 "$T/task2.out")"
grep -q "1 to run (shard 2/4)" "$T/task2.out" || bad "array.sh task 2 did not run shard 2/4: $(grep 'to run' "$T/task2.out")"
SLURM_ARRAY_TASK_ID=9 sh "$T/micro-array.sh" > /dev/null 2>&1 && bad "array.sh accepted task 9 of 4"
[ -e "$T/pwned" ] || [ -e "$T/pwned2" ] && bad "a script expanded a command substitution in the directory name"
"$PB" status "$OUT" --json > "$T/st1.json" || bad "status failed"
python3 - "$T/st1.json" <<'PY' || bad "status after one task"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["total"] == 4 and d["counts"]["done"] == 1 and d["counts"]["missing"] == 3, d["counts"]
g = {(x["method"], x["dataset"]): x for x in d["groups"]}
assert set(g) == {("head", "sprite-xpos"), ("lora", "sprite-xpos")}, g
assert g[("lora", "sprite-xpos")]["done"] == 1  # task 2 = grid index 2 = lora seed 0
PY
sh "$T/micro-report.sh" > "$T/rep.out" 2>&1 || bad "report.sh failed: $(tail -3 "$T/rep.out")"
[ -s "$OUT/index.html" ] && [ -s "$OUT/table.md" ] || bad "report.sh wrote no report"

# --- data missing: refused before anything is submitted -----------------------------------------
env PATH=/nonexistent "$PB" slurm suites/aoft-vtab1k.json --out "$T/aoft2" > /dev/null 2> "$T/aoft2.err"
rc=$?
{ [ $rc = 2 ] && grep -q "required data file(s) missing" "$T/aoft2.err"; } || bad "slurm without the data: exit $rc $(head -2 "$T/aoft2.err")"

# --- sbatch missing: a clear error, nothing half-submitted ------------------------------------
env PATH=/nonexistent "$PB" slurm "$T/s.json" --out "$T/nosb" > /dev/null 2> "$T/nosb.err"
rc=$?
{ [ $rc = 1 ] && grep -q "cannot run sbatch" "$T/nosb.err"; } || bad "no sbatch: exit $rc, $(cat "$T/nosb.err")"
[ -e "$T/nosb/slurm/submissions.json" ] && bad "no sbatch: a submission was recorded"
"$PB" slurm "$T/s.json" --tasks 2 --cells-per-task 2 --dry-run > /dev/null 2>&1 && bad "--tasks with --cells-per-task accepted"
"$PB" status "$T/none" > /dev/null 2>&1; [ $? = 2 ] || bad "status of a non-results directory should exit 2"

# --- --cells: ids of this suite only -----------------------------------------------------------
"$PB" run "$T/s.json" --out "$T/c" --cells 0123456789abcdef --dry-run > /dev/null 2> "$T/cells.err"
rc=$?
{ [ $rc = 2 ] && grep -q "'0123456789abcdef' is not a cell of this suite" "$T/cells.err"; } || bad "--cells bad id: exit $rc $(cat "$T/cells.err")"
"$PB" run "$T/s.json" --out "$T/c" --cells 1,3 --dry-run 2>/dev/null | grep -q "2 to run" || bad "--cells 1,3 does not select 2 cells"

# --- status: running while alive, stale once killed --------------------------------------------
sed -e 's/"name": "slurmcli"/"name": "slow"/' -e 's/"epochs": 2, "batch": 32, "train_subset": 128/"epochs": 400, "batch": 32, "train_subset": 128/' \
  "$T/s.json" > "$T/slow.json"
"$PB" run "$T/slow.json" --out "$T/slow" --cells 2 --threads 1 --no-report > /dev/null 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 100); do ls "$T/slow/running/"*.json > /dev/null 2>&1 && break; sleep 0.1; done
"$PB" status "$T/slow" --json > "$T/slow1.json"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
"$PB" status "$T/slow" --json > "$T/slow2.json"
"$PB" status "$T/slow" > "$T/slow2.txt"
python3 - "$T/slow1.json" "$T/slow2.json" "$pid" <<'PY' || bad "status running/stale"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["counts"]["running"] == 1 and a["counts"]["missing"] == 3, a["counts"]
r = [c for c in a["cells"] if c["state"] == "running"][0]
assert r["index"] == 2 and r["pid"] == int(sys.argv[3]) and r["host"], r
assert b["counts"]["stale"] == 1 and b["counts"]["running"] == 0, b["counts"]
s = [c for c in b["cells"] if c["state"] == "stale"][0]
assert "is gone" in s["reason"], s
PY
grep -q "^stale " "$T/slow2.txt" || bad "status text does not list the stale cell"
# resubmission semantics: the stale cell is one of those submitted again
"$PB" slurm "$T/slow.json" --out "$T/slow" --dry-run | grep -q "1 stale, 3 missing, 0 running elsewhere -> 4 to submit" ||
  bad "slurm does not resubmit the stale cell"

# --- backbone lock: a waiter takes over from a killed holder; two at once pretrain once ---------
sed -e 's/"name": "slurmcli"/"name": "lock"/' -e 's/"train_subset": 512, "epochs": 1/"train_subset": 40000, "epochs": 3/' \
  "$T/s.json" > "$T/lock.json"
export PEFTBENCH_BACKBONE_CACHE="$T/bb-lock"
"$PB" run "$T/lock.json" --out "$T/lA" --prepare --threads 1 > /dev/null 2> "$T/lA.err" &
pa=$!
pids+=("$pa")
for _ in $(seq 100); do grep -qs "pid $pa" "$T/bb-lock/.locks/"*.lock && break; sleep 0.1; done
grep -qs "pid $pa" "$T/bb-lock/.locks/"*.lock || bad "holder A did not take the lock"
"$PB" run "$T/lock.json" --out "$T/lB" --prepare --threads 1 > /dev/null 2> "$T/lB.err" &
pb=$!
pids+=("$pb")
for _ in $(seq 50); do grep -q "waiting for .*held by host .* pid $pa" "$T/lB.err" && break; sleep 0.1; done
grep -q "waiting for .*held by host .* pid $pa" "$T/lB.err" || bad "B does not wait for A: $(cat "$T/lB.err")"
kill -KILL "$pa"
wait "$pa" 2>/dev/null
wait "$pb"
rc=$?
[ $rc = 0 ] || bad "B failed after A was killed: $(tail -3 "$T/lB.err")"
grep -q '^\[pretrain\].*epoch 3/3' "$T/lB.err" || bad "B did not pretrain after A was killed"
[ "$(ls "$T/bb-lock" | wc -l)" = 1 ] || bad "cache after takeover: $(ls -a "$T/bb-lock")"
python3 - "$T/bb-lock" <<'PY' || bad "backbone after takeover incomplete"
import json, os, sys
d = sys.argv[1]
(k,) = [x for x in os.listdir(d) if not x.startswith(".")]
info = json.load(open(f"{d}/{k}/pretrain.json"))
assert info["content_hash"] and os.path.getsize(f"{d}/{k}/model.safetensors") > 1000
PY
export PEFTBENCH_BACKBONE_CACHE="$T/bb-two"
"$PB" run "$T/lock.json" --out "$T/lC" --prepare --threads 1 > /dev/null 2> "$T/lC.err" &
pc=$!
"$PB" run "$T/lock.json" --out "$T/lD" --prepare --threads 1 > /dev/null 2> "$T/lD.err" &
pd=$!
pids+=("$pc" "$pd")
wait "$pc" || bad "C failed: $(tail -3 "$T/lC.err")"
wait "$pd" || bad "D failed: $(tail -3 "$T/lD.err")"
n=$(cat "$T/lC.err" "$T/lD.err" | grep -c '^\[pretrain\].*epoch 3/3')
[ "$n" = 1 ] || bad "two concurrent processes pretrained $n times (want 1)"
grep -q "pretrained by another process meanwhile" "$T/lC/logs/prepare.log" "$T/lD/logs/prepare.log" ||
  bad "the waiter did not load the other's backbone"

[ $fail = 0 ] && echo "test_slurm_cli: ok"
exit $fail
