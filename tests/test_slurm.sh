#!/usr/bin/env bash
# test_slurm.sh PEFTBENCH: `peftbench slurm` against a real single-node Slurm (issue 15). Starts
# munged, slurmctld and slurmd in a private directory (scripts/slurm-local.sh: localhost, 2 CPUs,
# own ports and munge socket) and stops them at the end. A micro suite of 8 real engine cells is
# submitted as prepare -> 4-task array -> report into a results directory whose name holds a
# quote, a space and a '%'; while the first submission is queued a second one is refused; array
# task 3 is cancelled (scancel) while it trains; the report job still runs; status shows the
# killed cell stale; resubmitting submits exactly the cells that are not done (an explicit
# --cells list), never touches a finished one, and the merged results equal a local
# `peftbench run --threads 1` of the same suite bit for bit (every field but timings/RSS/dates).
# Slurm missing: a failure in CI (CI=true), else a skip (exit 77). Every wait is bounded.
set -u
PB=${1:?usage: test_slurm.sh PATH/TO/peftbench}
PB=$(cd "$(dirname "$PB")" && pwd)/$(basename "$PB")
SRC=$(cd "$(dirname "$0")/.." && pwd)
LOCAL="$SRC/scripts/slurm-local.sh"
export PATH="$PATH:/usr/sbin:/sbin"
skip_or_fail() {
  if [ "${CI:-}" = true ]; then echo "FAIL (CI): $*" >&2; exit 1; fi
  echo "SKIP: $*" >&2
  exit 77
}
bash "$LOCAL" check || skip_or_fail "Slurm/munge not installed (scripts/install-deps.sh --slurm, or $LOCAL install)"
T=$(mktemp -d /tmp/pbslurm.XXXXXX)
SD="$T/slurm"
# A port of our own: a system Slurm or another run of this test may hold the default ones.
export PB_SLURM_PORT=${PB_SLURM_PORT:-$((20000 + ($$ % 5000) * 2))}
cleanup() {
  bash "$LOCAL" stop "$SD" > /dev/null 2>&1
  [ -n "${KEEP:-}" ] && echo "kept $T" >&2 && return
  rm -rf "$T"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
cd "$SRC" || exit 1

t0=$(date +%s)
bash "$LOCAL" start "$SD" > "$T/start.out" 2>&1 || {
  cat "$T/start.out" >&2
  [ "$(id -u)" = 0 ] || skip_or_fail "slurmd could not start as $(id -un) (CI runs this as root)"
  echo "FAIL: the local Slurm did not start" >&2
  exit 1
}
export SLURM_CONF="$SD/slurm.conf"
echo "slurm up in $(($(date +%s) - t0)) s (port $PB_SLURM_PORT)"

cat > "$T/s.json" <<'JSON'
{
  "name": "slurmtest",
  "models": [{"label": "nano",
              "config": {"arch": "vit", "hidden": 16, "layers": 2, "heads": 2, "intermediate": 32,
                         "image_size": 28, "patch_size": 7, "channels": 1},
              "pretrain": {"dataset": "vtab-mini/fmnist-pretrain", "train_subset": 512, "epochs": 1, "batch": 64}}],
  "datasets": ["vtab-mini/sprite-xpos"],
  "methods": [{"method": "full", "lr": 1e-3}, {"method": "lora", "rank": 4, "alpha": 8},
              {"method": "svfit", "rank": 16, "lr": 1e-2}, {"method": "head", "lr": 5e-3}],
  "grid": {"seed": [0, 1]},
  "recipe": {"epochs": 20, "batch": 32, "train_subset": 800, "eval_batch": 128, "schedule": "cosine"}
}
JSON

# The reference: the same suite run locally, one thread (as each 1-CPU array task runs it).
PEFTBENCH_BACKBONE_CACHE="$T/bb-local" "$PB" run "$T/s.json" --out "$T/local" --threads 1 --no-report \
  > /dev/null 2> "$T/local.err" || bad "local run failed: $(tail -3 "$T/local.err")"

export PEFTBENCH_BACKBONE_CACHE="$T/bb-slurm"
OUT="$T/res 'q' %j"
# Jobs of a submission still listed by squeue (%F array job id, %A job id).
alive() {
  local q
  q=$(squeue -h -r -o '%F %A' 2>/dev/null) || return 0
  for id in "$@"; do echo "$q" | tr ' ' '\n' | grep -qx "$id" && return 0; done
  return 1
}
# Waits (bounded) until none of the job ids is listed.
wait_gone() {
  local limit=$1
  shift
  local end=$(($(date +%s) + limit))
  while alive "$@"; do
    [ "$(date +%s)" -lt "$end" ] || { bad "jobs $* still queued after ${limit}s"; squeue >&2; return 1; }
    sleep 0.3
  done
}
job_ids() { sed -n -E 's/^(prepare|array|report) job ([0-9]+).*/\2/p' "$1" | tr '\n' ' '; }

# --- submission 1: 8 cells as 4 tasks (shard i/4) ----------------------------------------------
"$PB" slurm "$T/s.json" --out "$OUT" --tasks 4 > "$T/sub1.out" 2> "$T/sub1.err" || bad "submission 1 failed: $(cat "$T/sub1.err")"
read -r PREP ARR REP <<< "$(job_ids "$T/sub1.out")"
[ -n "${REP:-}" ] || { cat "$T/sub1.out" "$T/sub1.err" >&2; echo "FAIL: no job ids" >&2; exit 1; }
grep -q "8 cells in 4 array tasks" "$T/sub1.out" || bad "submission 1: $(cat "$T/sub1.out")"
"$PB" slurm "$T/s.json" --out "$OUT" --tasks 4 > /dev/null 2> "$T/again.err"
rc=$?
{ [ $rc = 1 ] && grep -q "still queued or running" "$T/again.err"; } || bad "a submission while one is active: exit $rc $(cat "$T/again.err")"

# Cancel array task 3 as soon as one of its cells trains (its in-flight marker names the task).
cancelled=0
end=$(($(date +%s) + 180))
while [ "$(date +%s)" -lt "$end" ]; do
  if [ $cancelled = 0 ] && grep -qs "\"slurm_array_task_id\":[[:space:]]*\"3\"" "$OUT"/running/*.json; then
    scancel "${ARR}_3" && cancelled=1
  fi
  alive "$PREP" "$ARR" "$REP" || break
  sleep 0.1
done
[ $cancelled = 1 ] || bad "array task 3 was never seen running, so not cancelled"
wait_gone 10 "$PREP" "$ARR" "$REP"
scontrol show job "${ARR}_3" 2>/dev/null | grep -q "JobState=CANCELLED" || bad "task ${ARR}_3 is not CANCELLED"
for i in 0 1 2; do
  scontrol show job "${ARR}_$i" 2>/dev/null | grep -q "JobState=COMPLETED" || bad "task ${ARR}_$i did not complete"
done
ls "$OUT/slurm/1/logs/array-${ARR}_"{0,1,2,3}.out > /dev/null || bad "per-task logs missing"
grep -q '^\[pretrain\].*epoch 1/1' "$OUT/slurm/1/logs/prepare-$PREP.out" || bad "the prepare job did not pretrain"
grep -l '^\[pretrain\]' "$OUT"/slurm/1/logs/array-*.out 2>/dev/null && bad "an array task pretrained (prepare should have)"
[ -s "$OUT/index.html" ] || bad "the report job (afterany) wrote no index.html after a cancelled task"
"$PB" status "$OUT" --json > "$T/st1.json" || bad "status failed"
"$PB" status "$OUT" > "$T/st1.txt"
python3 - "$T/st1.json" "$T/left.txt" <<'PY' || bad "status after the cancel"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["counts"]
left = [x for x in d["cells"] if x["state"] != "done"]
# task 3 of shard 3/4 owns grid cells 3 and 7; whatever it had not finished is left
assert left and all(x["index"] in (3, 7) for x in left), [(x["index"], x["state"]) for x in left]
assert all(x["state"] in ("stale", "missing") for x in left), left
assert c["stale"] <= 1 and c["running"] == 0 and c["failed"] == 0, c
for x in left:
    if x["state"] == "stale":
        assert x["slurm_task"].endswith("_3") and x["reason"], x
open(sys.argv[2], "w").write("".join(x["id"] + "\n" for x in left))
PY
grep -q "slurm submission 1: 8 cells in 4 tasks; jobs prepare $PREP, array $ARR, report $REP (finished)" "$T/st1.txt" ||
  bad "status does not show submission 1 finished: $(tail -2 "$T/st1.txt")"
NLEFT=$(wc -l < "$T/left.txt")
echo "after scancel: $NLEFT cell(s) left: $(tr '\n' ' ' < "$T/left.txt")"
(cd "$OUT/cells" && stat -c '%n %Y' *.json) | sort > "$T/mtimes1.txt" # names are cell ids

# --- submission 2: exactly the cells left -------------------------------------------------------
sleep 1 # mtimes have 1 s resolution: a rewritten file must show
"$PB" slurm "$T/s.json" --out "$OUT" --tasks 4 > "$T/sub2.out" 2> "$T/sub2.err" || bad "submission 2 failed: $(cat "$T/sub2.err")"
grep -q -- "-> $NLEFT to submit" "$T/sub2.out" || bad "submission 2 does not submit exactly $NLEFT cells: $(head -1 "$T/sub2.out")"
read -r PREP2 ARR2 REP2 <<< "$(job_ids "$T/sub2.out")"
grep -q -- "--cells '" "$OUT/slurm/2/array.sh" || bad "submission 2 is not an explicit cell list"
wait_gone 120 "$PREP2" "$ARR2" "$REP2"
python3 - "$OUT/slurm/submissions.json" "$T/left.txt" <<'PY' || bad "submission 2 record"
import json, sys
s = json.load(open(sys.argv[1]))["submissions"]
left = open(sys.argv[2]).read().split()
assert len(s) == 2 and s[1]["mode"] == "cells" and sorted(s[1]["cell_ids"]) == sorted(left), s[1]
PY
# only the cells left ran in submission 2 (each cell's first progress line names its id)
sed -n -E 's/^\[cell [0-9]+\/[0-9]+\] .* \(([0-9a-f]{16})\)$/\1/p' "$OUT"/slurm/2/logs/array-*.out | sort > "$T/ran2.txt"
sort "$T/left.txt" | cmp -s - "$T/ran2.txt" || bad "submission 2 ran $(tr '\n' ' ' < "$T/ran2.txt"), want $(tr '\n' ' ' < "$T/left.txt")"
grep -l '^\[pretrain\]' "$OUT"/slurm/2/logs/*.out 2>/dev/null && bad "submission 2 pretrained again"
(cd "$OUT/cells" && stat -c '%n %Y' $(cut -d' ' -f1 "$T/mtimes1.txt")) | sort | cmp -s "$T/mtimes1.txt" - ||
  bad "a finished cell was rewritten"
"$PB" status "$OUT" --json > "$T/st2.json"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["counts"]; assert c["done"]==8, c' "$T/st2.json" || bad "not all 8 cells done"
ls "$OUT/running/" 2>/dev/null | grep -q . && bad "in-flight markers left: $(ls "$OUT/running")"
ls "$OUT/cells/" | grep -q tmp && bad "temp files left in cells/"
"$PB" slurm "$T/s.json" --out "$OUT" > "$T/sub3.out" 2>&1 || bad "a third submission failed"
grep -q "nothing to submit" "$T/sub3.out" || bad "a third submission found work: $(cat "$T/sub3.out")"

# --- merged results == local run, bit for bit ------------------------------------------------------
python3 - "$T/local" "$OUT" <<'PY' || bad "Slurm results differ from the local run"
import glob, json, os, sys
def load(d):
    out = {}
    for f in glob.glob(d + "/cells/*.json"):
        j = json.load(open(f))
        for k in ("train_time_s", "throughput_ex_s", "peak_rss_bytes", "created_at"):
            j.pop(k)
        for e in j["epochs"]:
            e.pop("time_s")
        out[os.path.basename(f)] = j
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == 8 and sorted(a) == sorted(b), (sorted(a), sorted(b))
for k in a:
    assert a[k] == b[k], (k, [f for f in a[k] if a[k][f] != b[k].get(f)])
    assert a[k]["status"] == "ok" and a[k]["threads"] == 1
print("8 cells equal (scores, losses, every epoch, params, hashes)")
PY
echo "test_slurm: $(($(date +%s) - t0)) s"
[ $fail = 0 ] && echo "test_slurm: ok"
exit $fail
