#!/usr/bin/env bash
# test_glue_mini_cli.sh PEFTBENCH: `peftbench data build glue-mini` at the CLI (issue 14, part 4):
# --out gets the six task folders, corpus.txt and tokenizer/ (no temp export left), one summary line
# per task, `data info glue/<task>:DIR` loads each with the written tokenizer; bad options exit 2,
# a missing R package exits 1 with one message naming the Debian package; `run` builds missing GLUE-mini
# members on demand.
set -u
PB=${1:?usage: test_glue_mini_cli.sh PATH/TO/peftbench}
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
T=$(mktemp -d /tmp/pbtest-gmcli-XXXXXX)
trap 'rm -rf "$T"' EXIT

out=$("$PB" data build glue-mini --out "$T/gm" 2>&1) || bad "build failed: $out"
[ "$(echo "$out" | grep -Ec '^glue-mini/(sst2|cola|mrpc|stsb|qnli|rte) +train +[0-9]+ +dev +[0-9]+ +chance: ')" = 6 ] ||
    bad "summary lines: $out"
[ "$(ls -A "$T/gm" | tr '\n' ' ')" = "cola corpus.txt mrpc qnli rte sst2 stsb tokenizer " ] || bad "out holds: $(ls -A "$T/gm")"
for t in sst2 cola mrpc stsb qnli rte; do
    info=$("$PB" data info "glue/$t:$T/gm/$t" --tokenizer "$T/gm/tokenizer" --seq-len 32 2>&1) || bad "info $t: $info"
    echo "$info" | grep -q "^task glue/$t$" || bad "info $t: $info"
done
# the default output directory is <data-root>/glue-mini
"$PB" data build glue-mini --data-root "$T/root" > /dev/null 2>&1 || bad "build with --data-root failed"
cmp -s "$T/gm/cola/train.tsv" "$T/root/glue-mini/cola/train.tsv" || bad "--data-root build differs from --out build"

# `run` builds a missing <ROOT>/glue-mini/<member> on demand (as VTAB-mini), once; --dry-run builds nothing;
# another missing folder is still the preflight's error.
cat > "$T/auto.json" <<EOF
{"name": "gm-auto", "models": [{"label": "rt", "builtin": "roberta-tiny", "config": {"vocab_size": 4000}}],
 "datasets": [{"spec": "glue/rte:$T/auto/glue-mini/rte", "tokenizer_dir": "$T/auto/glue-mini/tokenizer/", "seq_len": 32},
              {"spec": "glue/sst2:$T/auto/glue-mini/sst2", "tokenizer_dir": "$T/auto/glue-mini/tokenizer", "seq_len": 32}],
 "methods": ["head"], "recipe": {"epochs": 1}}
EOF
"$PB" run "$T/auto.json" --dry-run --out "$T/auto-out" > /dev/null 2>&1 || bad "auto: --dry-run failed"
[ -e "$T/auto/glue-mini" ] && bad "auto: --dry-run built the data"
"$PB" run "$T/auto.json" --prepare --out "$T/auto-out" > "$T/auto.log" 2>&1 || bad "auto: run --prepare failed: $(cat "$T/auto.log")"
[ "$(grep -c "is missing: building glue-mini into $T/auto/glue-mini" "$T/auto.log")" = 1 ] || bad "auto: log: $(cat "$T/auto.log")"
for f in rte/dev.tsv sst2/train.tsv tokenizer/merges.txt corpus.txt; do
    cmp -s "$T/gm/$f" "$T/auto/glue-mini/$f" || bad "auto: $f differs from the data build's"
done
"$PB" run "$T/auto.json" --prepare --out "$T/auto-out" > "$T/auto.log" 2>&1 || bad "auto: second --prepare failed"
grep -q "building glue-mini" "$T/auto.log" && bad "auto: built again although present"
sed "s|glue/sst2:$T/auto/glue-mini/sst2|glue/sst2:$T/auto/other/sst2|" "$T/auto.json" > "$T/auto2.json"
"$PB" run "$T/auto2.json" --prepare --out "$T/auto-out2" > "$T/auto.log" 2>&1 && bad "auto: a missing non-glue-mini folder passed"
grep -q "missing directory: $T/auto/other/sst2" "$T/auto.log" && ! grep -q "building glue-mini" "$T/auto.log" ||
    bad "auto: missing other folder: $(cat "$T/auto.log")"
rm -rf "$T/auto/glue-mini"
PB_GLUE_MINI_RLIB="$T/nolib" "$PB" run "$T/auto.json" --prepare --out "$T/auto-out" > "$T/auto.log" 2>&1 && bad "auto: built without R packages"
grep -q "install the Debian package r-cran-janeaustenr" "$T/auto.log" || bad "auto: no R: $(cat "$T/auto.log")"

"$PB" data build glue-mini --bogus x > /dev/null 2> "$T/err"
[ $? = 2 ] && grep -q "unknown option --bogus" "$T/err" || bad "--bogus: $(cat "$T/err")"
"$PB" data build glue-mini --out > /dev/null 2> "$T/err"
[ $? = 2 ] && grep -q "needs a value" "$T/err" || bad "--out without value: $(cat "$T/err")"
PB_GLUE_MINI_RLIB="$T/nolib" "$PB" data build glue-mini --out "$T/x" > /dev/null 2> "$T/err"
[ $? = 1 ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q "install the Debian package r-cran-janeaustenr" "$T/err" ||
    bad "missing janeaustenr: $(cat "$T/err")"
exit $fail
