#!/usr/bin/env python3
"""Runs `peftbench bench` and the PyTorch peer (bench/peer_torch.py) on the same configurations in
one run, each in its own process, alternating ours and the peer's run `--rounds` times, and prints
Markdown tables with the median ratios, the GEMM provider and kernel peftbench used, the sgemm
ceiling of every provider at the model's shapes, and the CPU's FP32 FMA peak.

usage: bench/compare.py [--peftbench build/peftbench] [--threads 2] [--rounds 1] [--gemm P]
                        [--profile] CONFIG...
CONFIG = model:method:batch[:steps[:epochs]] (epochs: head-only over E epochs), e.g.
         vit-tiny:full:64:10 vit-b16:full:8:5 vit-b16:lora:8:5
--profile adds `peftbench bench --profile` (per-op timing of extra steps, after the timed ones) and
prints where one step's time goes: GEMM (linear layers) / attention / layernorm / GELU and other
elementwise / optimizer / zeroing, plus the GEMM ops' speed against the best sgemm at the same shapes.
"""
import argparse, json, os, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))

GROUPS = [  # profile op -> group
    ("GEMM (linear)", ("gemm", "linear_forward", "linear_backward")),
    ("attention", ("attention_forward", "attention_backward")),
    ("layernorm", ("layernorm_forward", "layernorm_backward")),
    ("GELU/tanh/elementwise", ("gelu_forward", "gelu_backward", "tanh_forward", "tanh_backward", "add",
                               "axpy", "scale", "mul_cols", "mul_cols_reduce", "dropout_forward",
                               "dropout_backward", "ao_forward", "ao_backward")),
    ("optimizer (AdamW)", ("adamw_step",)),
    ("zero/copy/fill", ("zero", "copy", "fill", "upload", "download", "upload_i32", "download_i32")),
]


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def breakdown(prof):
    step = prof["step_s"]
    got = {g: 0.0 for g, _ in GROUPS}
    other = 0.0
    for o in prof["ops"]:
        for g, names in GROUPS:
            if o["op"] in names:
                got[g] += o["s_per_step"]
                break
        else:
            other += o["s_per_step"]
    got["other ops"] = other
    got["outside ops"] = step - sum(got.values())
    return {k: 100 * v / step for k, v in got.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peftbench", default=os.path.join(HERE, "..", "build", "peftbench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="alternate runs; report medians")
    ap.add_argument("--gemm", default=None, help="peftbench --gemm (default: its own default)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--cpu-math", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: PB_CPU_MATH=bf16 for peftbench, torch.autocast(bfloat16) for the peer")
    ap.add_argument("configs", nargs="+")
    a = ap.parse_args()
    rows, profiles = [], []
    for c in a.configs:
        parts = c.split(":")
        model, method, batch = parts[0], parts[1], int(parts[2])
        steps = int(parts[3]) if len(parts) > 3 else 5
        epochs = ["--epochs", parts[4]] if len(parts) > 4 else []
        gemm = ["--gemm", a.gemm] if a.gemm else []
        env = dict(os.environ, PB_CPU_MATH=a.cpu_math)
        autocast = ["--autocast-bf16"] if a.cpu_math == "bf16" else []
        ours, peer = [], []
        for r in range(a.rounds):
            prof = ["--profile"] if a.profile and r == 0 else []
            ours.append(run_json([a.peftbench, "bench", "--model", model, "--method", method,
                                  "--batch", str(batch), "--steps", str(steps),
                                  "--threads", str(a.threads), "--json"] + epochs + gemm + prof, env=env))
            peer.append(run_json([sys.executable, os.path.join(HERE, "peer_torch.py"), "--model",
                                  model, "--method", method, "--batch", str(batch), "--steps",
                                  str(steps), "--threads", str(a.threads)] + epochs + autocast))
        med = lambda xs, k: statistics.median(x[k] for x in xs)
        o_thr, p_thr = med(ours, "throughput"), med(peer, "throughput")
        ceil = {k: statistics.median(x["sgemm_ceilings"][k] for x in ours) for k in ours[0]["sgemm_ceilings"]}
        rows.append(dict(model=model, method=method, batch=batch, ours=o_thr, peer=p_thr, ratio=o_thr / p_thr,
                         all_ratios=[o["throughput"] / p["throughput"] for o, p in zip(ours, peer)],
                         gflops=med(ours, "gflops"), ceil=ceil, best=max(ceil.values()) if ceil else 0,
                         peak=med(ours, "fp32_peak_gflops"), o_rss=med(ours, "peak_rss_gib"),
                         p_rss=med(peer, "peak_rss_gib"), unit=ours[0]["unit"],
                         gemm=ours[0].get("gemm", "?"), kernel=ours[0].get("gemm_kernel", "?")))
        if a.profile:
            profiles.append((c, ours[0]))
    print(f"peftbench GEMM: {rows[0]['gemm']} ({rows[0]['kernel']}), math {a.cpu_math}"
          f"{' (peer: torch.autocast bfloat16)' if a.cpu_math == 'bf16' else ''}; {a.rounds} alternating round(s), medians\n")
    print("| model | method | batch | peftbench | torch | ratio (per round) | GFLOP/s | sgemm ceilings | % of best | % of FP32 peak | RSS GiB (ours / torch) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ce = ", ".join(f"{k} {v:.0f}" for k, v in r["ceil"].items())
        rr = " ".join(f"{x:.2f}" for x in r["all_ratios"])
        best = 100 * r["gflops"] / r["best"] if r["best"] else 0
        pk = 100 * r["gflops"] / r["peak"] if r["peak"] else 0
        print(f"| {r['model']} | {r['method']} | {r['batch']} | {r['ours']:.2f} {r['unit']} | {r['peer']:.2f} {r['unit']} "
              f"| **{r['ratio']:.2f}x** ({rr}) | {r['gflops']:.1f} | {ce} | {best:.0f}% | {pk:.0f}% (of {r['peak']:.0f}) "
              f"| {r['o_rss']:.2f} / {r['p_rss']:.2f} |")
    if profiles:
        names = [g for g, _ in GROUPS] + ["other ops", "outside ops"]
        print("\nWhere one step's time goes (peftbench bench --profile, first round; % of the profiled step):\n")
        print("| config | " + " | ".join(names) + " | GEMM GFLOP/s (% of best sgemm at the same shapes) |")
        print("|---|" + "---|" * (len(names) + 1))
        for c, o in profiles:
            b = breakdown(o["profile"])
            p = o["profile"]
            print(f"| {c} | " + " | ".join(f"{b[n]:.1f}" for n in names) +
                  f" | {p['gemm_gflops']:.0f} ({p['gemm_pct_of_same_shape']:.0f}% of {p['same_shape_sgemm_gflops']:.0f}) |")


if __name__ == "__main__":
    sys.exit(main())
