#!/usr/bin/env bash
# test_cudaemu_suite.sh PEFTBENCH PEFTBENCH_EMU: "same numbers on both" at the harness level. A
# nano suite with every method (head, full, lora, pissa, svfit, aoft) runs through `peftbench run`
# on the CPU and through `peftbench_emu run --device cuda` (the engine/cuda kernels executed by
# the CPU emulator, docs/cuda.md), from the same cached backbone. Every cell must be ok on both,
# record its backend, and agree per epoch: training loss within 1e-4 relative, validation and
# test accuracy within one validation example (0.5 points). Measured: losses within 2e-8,
# accuracies identical.
set -u
PB=${1:?usage: test_cudaemu_suite.sh PEFTBENCH PEFTBENCH_EMU}
EMU=${2:?usage: test_cudaemu_suite.sh PEFTBENCH PEFTBENCH_EMU}
T=$(mktemp -d)
# KEEP=1 keeps the two runs' results for inspection.
if [ -n "${KEEP:-}" ]; then echo "results kept in $T"; else trap 'rm -rf "$T"' EXIT; fi
export PEFTBENCH_BACKBONE_CACHE="$T/backbones"
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

cat > "$T/s.json" <<'JSON'
{
  "name": "emu-parity",
  "models": [{"label": "nano",
              "config": {"arch": "vit", "hidden": 16, "layers": 2, "heads": 2, "intermediate": 32,
                         "image_size": 28, "patch_size": 7, "channels": 1},
              "pretrain": {"dataset": "vtab-mini/fmnist-pretrain", "train_subset": 256, "epochs": 1, "batch": 64}}],
  "datasets": ["vtab-mini/fmnist-1k"],
  "methods": [{"method": "head", "lr": 2e-2}, {"method": "full", "lr": 3e-3},
              {"method": "lora", "rank": 4, "alpha": 8, "lr": 1e-2}, {"method": "pissa", "rank": 4, "lr": 1e-2},
              {"method": "svfit", "rank": 16, "lr": 3e-2}, {"method": "aoft", "rank": 4, "lr": 3e-2}],
  "recipe": {"epochs": 3, "batch": 32, "train_subset": 192, "eval_batch": 128, "schedule": "cosine"}
}
JSON

"$PB" run "$T/s.json" --out "$T/cpu" --threads 1 --no-report > "$T/cpu.out" 2> "$T/cpu.err" ||
  { bad "cpu run failed"; cat "$T/cpu.err" >&2; }
"$EMU" run "$T/s.json" --out "$T/cuda" --device cuda --threads 1 --no-report > "$T/cuda.out" 2> "$T/cuda.err" ||
  { bad "emulated cuda run failed"; cat "$T/cuda.err" >&2; }
grep -q '^\[pretrain\]' "$T/cuda.err" && bad "the cuda run pretrained again instead of using the cached backbone"

python3 - "$T/cpu" "$T/cuda" <<'PY' || fail=1
import glob, json, os, sys
a, b = sys.argv[1], sys.argv[2]
fa = sorted(os.path.basename(f) for f in glob.glob(a + "/cells/*.json"))
fb = sorted(os.path.basename(f) for f in glob.glob(b + "/cells/*.json"))
ok = True
def err(*m):
    global ok
    print("FAIL:", *m, file=sys.stderr); ok = False
if len(fa) != 6 or fa != fb:
    err("cells differ or missing", fa, fb)
worst = 0.0
for f in fa:
    x, y = json.load(open(a + "/cells/" + f)), json.load(open(b + "/cells/" + f))
    m = x["config"]["method"]["method"]
    for d, dev in ((x, "cpu"), (y, "cuda")):
        if d["status"] != "ok": err(m, dev, "status", d["status"], d.get("reason"))
        if not d["backend"].startswith(dev): err(m, dev, "backend recorded as", d["backend"])
    if len(x["epochs"]) != len(y["epochs"]) or not x["epochs"]: err(m, "epoch count"); continue
    for ex, ey in zip(x["epochs"], y["epochs"]):
        la, lb = ex["train_loss"], ey["train_loss"]
        rel = abs(la - lb) / max(abs(la), 1e-12)
        worst = max(worst, rel)
        if rel > 1e-4: err(m, "epoch", ex.get("epoch"), "train loss", la, lb, "rel", rel)
        for k in ("val", "test"):
            # one example of fmnist-1k's 200-example validation split (the test split is larger)
            if abs(ex[k] - ey[k]) > 1.0 / 200 + 1e-9: err(m, "epoch", ex.get("epoch"), k, ex[k], ey[k])
print("cudaemu suite parity: %d cells, worst train-loss rel diff %.2e" % (len(fa), worst))
sys.exit(0 if ok else 1)
PY
exit $fail
