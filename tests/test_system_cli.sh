#!/usr/bin/env bash
# test_system_cli.sh PEFTBENCH: the CPU backend's kernel choice seen from the CLI.
#   - With no OPENBLAS_CORETYPE of the user's, `info --system --json` never reports a generic
#     kernel for any GEMM provider, nor for the one in use, on a CPU with AVX2 or AVX-512; the
#     OpenBLAS core is not below the CPU's ISA (the re-exec of pb_blas_core_fix did its job).
#   - A user's OPENBLAS_CORETYPE is kept as given.
#   - --gemm / PB_GEMM select the provider (bench names it and its kernel); unknown names fail
#     with exit 2 and a message naming the value and the source.
#   - bench --profile --json: a per-op profile whose GEMM ops carry FLOPs, plus the ceilings of
#     every provider and the FP32 peak.
set -u
PB=${1:?usage: test_system_cli.sh PATH/TO/peftbench}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
clean() { env -u OPENBLAS_CORETYPE -u PB_OPENBLAS_DETECTED -u PB_GEMM "$@"; }

clean "$PB" info --system --json > "$T/sys.json" || bad "info --system --json exit $?"
python3 - "$T/sys.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
lv = d["cpu"]["isa_level_num"]
print(f"  cpu {d['cpu']['brand']}: isa {d['cpu']['isa_level']}; in use: {d['gemm']}")
provs = {p["name"]: p for p in d["gemm_providers"]}
ok = True
for p in d["gemm_providers"]:
    print(f"  {p['name']}: {p['library']} {p['kernel']} generic={p['generic']}")
    if lv >= 3 and (p["generic"] or p["kernel_level"] < 3):
        print(f"FAIL: provider {p['name']} runs kernel {p['kernel']} (level {p['kernel_level']}) on an {d['cpu']['isa_level']} CPU", file=sys.stderr)
        ok = False
if d["gemm"] not in provs:
    print("FAIL: provider in use not listed", file=sys.stderr); ok = False
if d["gemm_source"] != "default rule":
    print("FAIL: PB_GEMM unset but source is " + d["gemm_source"], file=sys.stderr); ok = False
ob = d["openblas_core"]
print(f"  openblas core {ob['selected']} (chosen at load: {ob['detected_at_load']}; {ob['decision']})")
sys.exit(0 if ok else 1)
PY

# A user's own core type wins (here the generic one, on purpose) and is reported as generic.
OPENBLAS_CORETYPE=Prescott "$PB" info --system --json > "$T/user.json" || bad "info with user core exit $?"
python3 - "$T/user.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
ob = d["openblas_core"]
assert ob["selected"] == "Prescott", ob
assert "user" in ob["decision"], ob
ob_p = [p for p in d["gemm_providers"] if p["name"] == "openblas"][0]
if d["cpu"]["isa_level_num"] >= 3:
    assert ob_p["generic"], "Prescott must be reported as generic on this CPU"
print("  OPENBLAS_CORETYPE=Prescott kept and reported generic")
PY

# Selection and errors.
for p in $(python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(open(sys.argv[1]))["gemm_providers"]))' "$T/sys.json"); do
  clean "$PB" info --system --gemm "$p" --json > "$T/g.json" || bad "--gemm $p exit $?"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["gemm"]==sys.argv[2] and d["gemm_source"]=="PB_GEMM", d' "$T/g.json" "$p" || bad "--gemm $p not in use"
  clean "$PB" bench --model vit-tiny --batch 2 --steps 1 --warmup 0 --no-ceiling --gemm=$p --json > "$T/b.json" || bad "bench --gemm=$p exit $?"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["gemm"]==sys.argv[2] and not d["gemm_generic"] and d["gemm_kernel"], d' "$T/b.json" "$p" || bad "bench --gemm=$p: provider/kernel not reported"
done
out=$(clean "$PB" info --system --gemm mkl 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "'mkl'" || bad "--gemm mkl: rc $rc, '$out'"
out=$(clean "$PB" bench --model vit-tiny --gemm 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "needs a value" || bad "--gemm without value: rc $rc, '$out'"
out=$(clean env PB_GEMM=mkl "$PB" bench --model vit-tiny --batch 2 --steps 1 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "PB_GEMM" || bad "PB_GEMM=mkl: rc $rc, '$out'"

# Profile + ceilings + peak.
clean "$PB" bench --model vit-tiny --batch 4 --steps 1 --warmup 1 --profile --json > "$T/p.json" || bad "bench --profile exit $?"
python3 - "$T/p.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
p = d["profile"]
ops = {o["op"]: o for o in p["ops"]}
for need in ("linear_forward", "linear_backward", "attention_forward", "attention_backward", "layernorm_backward", "adamw_step"):
    assert need in ops, f"profile lacks {need}: {sorted(ops)}"
assert ops["linear_forward"]["gflops"] > 0 and "gflops" not in ops["adamw_step"]
assert 0 < p["gemm_s"] <= p["step_s"] * 1.5, p
assert p["same_shape_sgemm_gflops"] > 0 and p["gemm_pct_of_same_shape"] > 0, p
assert set(d["sgemm_ceilings"]) >= {"openblas"} and d["sgemm_ceiling_provider"] in d["sgemm_ceilings"], d
assert d["sgemm_ceiling_gflops"] == max(d["sgemm_ceilings"].values())
assert d["fp32_peak_gflops"] > 0 and d["fp32_peak_gflops"] >= 0.5 * d["sgemm_ceiling_gflops"], d
print(f"  profile: {len(ops)} ops; GEMM {p['gemm_gflops']:.1f} GFLOP/s = {p['gemm_pct_of_same_shape']:.0f}% of the same-shape best; "
      f"ceilings {d['sgemm_ceilings']}; fp32 peak {d['fp32_peak_gflops']:.0f}")
PY

[ $fail = 0 ] && echo "system CLI checks passed"
exit $fail
