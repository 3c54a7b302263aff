#!/usr/bin/env python3
"""Runs `peftbench bench` and the PyTorch peer (bench/peer_torch.py) on the same configurations in
one run, each in its own process, and prints a Markdown table with the ratios.

usage: bench/compare.py [--peftbench build/peftbench] [--threads 2] [--rounds 1] CONFIG...
CONFIG = model:method:batch[:steps[:epochs]] (epochs: head-only over E epochs), e.g. vit-tiny:full:64:10 vit-b16:full:8:5 vit-b16:lora:8:5
"""
import argparse, json, os, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peftbench", default=os.path.join(HERE, "..", "build", "peftbench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="alternate runs; report medians")
    ap.add_argument("configs", nargs="+")
    a = ap.parse_args()
    rows = []
    for c in a.configs:
        parts = c.split(":")
        model, method, batch = parts[0], parts[1], int(parts[2])
        steps = int(parts[3]) if len(parts) > 3 else 5
        epochs = ["--epochs", parts[4]] if len(parts) > 4 else []
        ours, peer = [], []
        for _ in range(a.rounds):
            ours.append(run_json([a.peftbench, "bench", "--model", model, "--method", method,
                                  "--batch", str(batch), "--steps", str(steps),
                                  "--threads", str(a.threads), "--json"] + epochs))
            peer.append(run_json([sys.executable, os.path.join(HERE, "peer_torch.py"), "--model",
                                  model, "--method", method, "--batch", str(batch), "--steps",
                                  str(steps), "--threads", str(a.threads)] + epochs))
        med = lambda xs, k: statistics.median(x[k] for x in xs)
        o_thr, p_thr = med(ours, "throughput"), med(peer, "throughput")
        o_rss, p_rss = med(ours, "peak_rss_gib"), med(peer, "peak_rss_gib")
        rows.append((model, method, batch, o_thr, p_thr, o_thr / p_thr, med(ours, "gflops"),
                     med(ours, "sgemm_ceiling_gflops"), med(ours, "pct_of_ceiling"), o_rss, p_rss,
                     ours[0]["unit"]))
    print("| model | method | batch | peftbench | torch | ratio | GFLOP/s | sgemm ceiling | % ceiling | RSS GiB (ours / torch) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} {r[11]} | {r[4]:.2f} {r[11]} | **{r[5]:.2f}x** "
              f"| {r[6]:.1f} | {r[7]:.1f} | {r[8]:.0f}% | {r[9]:.2f} / {r[10]:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
