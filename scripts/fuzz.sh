#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) and runs each for
# a bounded time: the dataset readers (tests/fuzz/fuzz_data.c, from their own sources) and the
# harness inputs (tests/fuzz/fuzz_harness.c: suite files, config.json, cell results, baselines;
# linked against the core library built with clang and coverage instrumentation into OUTDIR/core).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET=20] [OUTDIR=build-fuzz]
# Exit status is non-zero if any target finds a crash (artifacts are left in OUTDIR).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
OUT=${2:-build-fuzz}
CC=${CC:-clang}
mkdir -p "$OUT"
SRCS="datasets/util.c datasets/image.c datasets/listfile.c datasets/glue.c datasets/tokenizer.c
      datasets/unicode_tables.c engine/common.c engine/fileutil.c"
FLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I."
LIBS="-lcjson -lcsv -ljpeg -lpng -lz -lm"
names=(x tsv listfile tokenizer image)
for t in 1 2 3 4; do
  $CC $FLAGS -DFUZZ_TARGET=$t tests/fuzz/fuzz_data.c $SRCS $LIBS -o "$OUT/fuzz_${names[$t]}"
done
# The core library with coverage instrumentation for the harness targets (libomp: clang's OpenMP).
cmake -S . -B "$OUT/core" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$CC" -DPB_CUDA=OFF -DPB_CUDAEMU=OFF \
  -DPB_WERROR=OFF -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -O1 -g" \
  >/dev/null
cmake --build "$OUT/core" -j "$(nproc)" --target peftbench_core >/dev/null
hnames=(x x x x x suite config cell baseline)
# -DPB_CUDA=OFF: the core's CUDA backend is the stub (engine/cuda/cuda_stub.c), its own archive.
CORE_LIBS="$OUT/core/libpeftbench_core.a $OUT/core/libpeftbench_cuda_stub.a -fopenmp -lopenblas -llapacke -lcjson -lcsv -ljpeg -lpng -lz -lm"
DNNL=$(grep -q "^DNNL_LIB:FILEPATH=/" "$OUT/core/CMakeCache.txt" 2>/dev/null && echo -ldnnl || true)
for t in 5 6 7 8; do
  $CC $FLAGS -fopenmp -DFUZZ_TARGET=$t tests/fuzz/fuzz_harness.c -Wl,--start-group $CORE_LIBS $DNNL -Wl,--end-group \
    -o "$OUT/fuzz_${hnames[$t]}"
done
# Seed corpora (small valid inputs) so the fuzzer starts from real formats.
mkdir -p "$OUT"/corpus/{tsv,listfile,tokenizer,image,suite,config,cell,baseline}
cp suites/quick.json "$OUT/corpus/suite/quick.json"
printf '{"name":"s","models":["vit-tiny"],"datasets":["vtab-mini/bar-ori"],"methods":["head",{"method":"lora","rank":4}],"grid":{"lr":[0.1,0.2],"seed":[0,1]}}' > "$OUT/corpus/suite/small.json"
printf '{"model_type":"vit","hidden_size":32,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":64,"image_size":28,"patch_size":7,"num_channels":1,"id2label":{"0":"a","1":"b"}}' > "$OUT/corpus/config/vit.json"
printf '{"model_type":"roberta","hidden_size":24,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":40,"vocab_size":50,"max_position_embeddings":40,"pad_token_id":1,"num_labels":1}' > "$OUT/corpus/config/rob.json"
printf '{"schema":"peftbench.cell/1","suite":"s","id":"0123456789abcdef","status":"ok","metric":"accuracy","config":{"model":{"label":"m"},"dataset":{"label":"d"},"method":{"label":"lora","method":"lora","rank":8},"recipe":{"lr":0.01,"lr_scale":1},"seed":0},"axes":{"rank":8},"final":{"score":0.5,"epoch":1},"epochs":[{"epoch":1,"train_loss":1.5}]}' > "$OUT/corpus/cell/a.json"
head -c 4000 results/baselines/quick.json > /dev/null && python3 -c 'import json; d=json.load(open("results/baselines/quick.json")); d["rows"]=d["rows"][:3]; d["cells"]=d["cells"][:3]; print(json.dumps(d))' > "$OUT/corpus/baseline/quick.json"
printf '\x04index\tquestion\tsentence\tlabel\n0\tq?\ts "x"\tentailment\n' > "$OUT/corpus/tsv/qnli"
printf '\x00gj04\t1\t\thello world\n' > "$OUT/corpus/tsv/cola"
printf 'images/train800/000000.jpg 3\nimages/train800/000001.jpg 12\n' > "$OUT/corpus/listfile/a"
printf '{"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"h":4,"e":5,"he":6}\0#version: 0.2\nh e\n\0hehe he h\xc3\xa9 42!' \
  > "$OUT/corpus/tokenizer/a"
# a tiny PNG and JPEG
python3 - "$OUT/corpus/image" <<'PY'
import struct, sys, zlib
d = sys.argv[1]
def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
raw = b"".join(b"\0" + bytes([x * 30 % 256 for x in range(4)]) for _ in range(3))
open(d + "/p.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 0, 0, 0, 0))
                                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
status=0
for n in tsv listfile tokenizer image suite config cell baseline; do
  echo "== fuzz_$n (${SECS}s)"
  if ! "$OUT/fuzz_$n" -max_total_time="$SECS" -max_len=8192 -rss_limit_mb=1024 -artifact_prefix="$OUT/crash-$n-" \
       "$OUT/corpus/$n" 2>"$OUT/fuzz_$n.log"; then
    echo "fuzz_$n: FAILED (see $OUT/fuzz_$n.log)"; tail -30 "$OUT/fuzz_$n.log"; status=1
  else
    grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$OUT/fuzz_$n.log" | tail -1
  fi
done
exit $status
