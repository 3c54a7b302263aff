#!/usr/bin/env bash
# Builds the dataset libFuzzer targets with clang (-fsanitize=fuzzer,address) and runs each for a
# bounded time. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET=20] [OUTDIR=build-fuzz]
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
# Seed corpora (small valid inputs) so the fuzzer starts from real formats.
mkdir -p "$OUT"/corpus/{tsv,listfile,tokenizer,image}
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
for n in tsv listfile tokenizer image; do
  echo "== fuzz_$n (${SECS}s)"
  if ! "$OUT/fuzz_$n" -max_total_time="$SECS" -max_len=8192 -rss_limit_mb=1024 -artifact_prefix="$OUT/crash-$n-" \
       "$OUT/corpus/$n" 2>"$OUT/fuzz_$n.log"; then
    echo "fuzz_$n: FAILED (see $OUT/fuzz_$n.log)"; tail -30 "$OUT/fuzz_$n.log"; status=1
  else
    grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$OUT/fuzz_$n.log" | tail -1
  fi
done
exit $status
