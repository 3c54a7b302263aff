#!/usr/bin/env bash
# gpu_bench.sh: the GPU benchmark plan (run in a session with a GPU; docs/cuda.md).
# Training throughput of ViT-B/16 (224x224) and RoBERTa-base (seq 128) for full FT, LoRA (r 8,
# query+value) and SVFit (r 8, query+value): `peftbench bench --device cuda` against PyTorch +
# transformers + peft on the same GPU (bench/peer_torch.py), same batch, same step
# definition (zero_grad + forward + loss + backward + AdamW), FP32 math on both sides (TF32 off),
# dropout 0. Prints one line per configuration with the ratio peftbench/torch (>1: faster) and
# the peak GPU memory of each (peftbench: engine buffers + scratch; torch: max_memory_allocated).
#
# usage: bench/gpu_bench.sh [build-dir] [--tf32]   (env: BATCH_VIT=64 BATCH_RB=32 STEPS=10 WARMUP=3
#        MODELS="vit-b16 roberta-base"; PB_BIN and PEER_DEVICE=cuda override the binary and the
#        peer's device, for a dry run of this script on the CUDA emulator: bench/gpu_session.sh)
# Results: results/gpu_bench/<config>.{pb,torch}.json and a summary table on stdout.
set -euo pipefail
BUILD=${1:-build}
TF32=0
[[ "${2:-}" == "--tf32" ]] && TF32=1
PB=${PB_BIN:-$BUILD/peftbench}
PEER_DEVICE=${PEER_DEVICE:-cuda}
MODELS=${MODELS:-vit-b16 roberta-base}
[[ -x "$PB" ]] || { echo "gpu_bench: $PB not found (build first: cmake -S . -B $BUILD && cmake --build $BUILD -j)" >&2; exit 2; }
BATCH_VIT=${BATCH_VIT:-64}
BATCH_RB=${BATCH_RB:-32}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
OUT=results/gpu_bench
mkdir -p "$OUT"
if [[ $TF32 == 1 ]]; then export PB_CUDA_MATH=tf32; PEER_TF32=--tf32; else export PB_CUDA_MATH=fp32; PEER_TF32=; fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

printf "%-14s %-6s %6s %12s %12s %8s %10s %10s\n" model method batch "pb/s" "torch/s" ratio "pb GiB" "torch GiB"
for model in $MODELS; do
  batch=$BATCH_VIT; [[ $model == roberta-base ]] && batch=$BATCH_RB
  for method in full lora svfit; do
    tag="$model.$method.b$batch.$PB_CUDA_MATH"
    rk=(--rank 8); [[ $method == full ]] && rk=()   # full has no rank option
    "$PB" bench --device cuda --model "$model" --method "$method" "${rk[@]}" --batch "$batch" --seq 128 \
        --steps "$STEPS" --warmup "$WARMUP" --no-ceiling --json > "$OUT/$tag.pb.json"
    python3 bench/peer_torch.py --device "$PEER_DEVICE" $PEER_TF32 --model "$model" --method "$method" --rank 8 \
        --batch "$batch" --seq 128 --steps "$STEPS" --warmup "$WARMUP" > "$OUT/$tag.torch.json"
    python3 - "$OUT/$tag.pb.json" "$OUT/$tag.torch.json" "$model" "$method" "$batch" <<'PY'
import json, sys
pb = json.load(open(sys.argv[1])); th = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
# memory: peftbench's peak device bytes (engine buffers + scratch) vs torch.cuda.max_memory_allocated
print("%-14s %-6s %6s %12.2f %12.2f %8.2f %10.2f %10.2f" % (sys.argv[3], sys.argv[4], sys.argv[5],
      pb["throughput"], th["throughput"], pb["throughput"] / th["throughput"],
      pb["peak_device_gib"] or 0.0, th["peak_gpu_gib"]))
PY
  done
done
