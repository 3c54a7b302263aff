#!/usr/bin/env bash
# test_tokenizer_cli.sh PEFTBENCH: `peftbench tokenizer train|encode` at the CLI (issue 14): a
# training run on Debian's licence texts writes vocab.json + merges.txt (no temp files left, the
# same bytes twice), encode agrees between --dir and --vocab/--merges and adds <s>/</s> with
# --roberta; bad input (missing corpus, vocab size < 261, an output dir that cannot be made, a
# regular file as --out, bad numbers, unknown options) exits 2 with one clear message.
set -u
PB=${1:?usage: test_tokenizer_cli.sh PATH/TO/peftbench}
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
T=$(mktemp -d /tmp/pbtest-tokcli-XXXXXX)
trap 'rm -rf "$T"' EXIT
L=/usr/share/common-licenses
[ -r $L/GPL-3 ] && [ -r $L/Apache-2.0 ] || { echo "FAIL: $L/GPL-3 and Apache-2.0 (Debian base-files) missing" >&2; exit 1; }

# expect_err RC PATTERN ARGS...: exit status RC and a stderr line matching PATTERN
expect_err() {
    local want=$1 pat=$2
    shift 2
    "$PB" "$@" > "$T/out" 2> "$T/err"
    local rc=$?
    [ $rc = "$want" ] || bad "$*: exit $rc, want $want ($(cat "$T/err"))"
    grep -Eq -- "$pat" "$T/err" || bad "$*: stderr lacks /$pat/: $(cat "$T/err")"
}

out=$("$PB" tokenizer train --corpus $L/GPL-3 --corpus $L/Apache-2.0 --vocab-size 800 --out "$T/tok" 2>&1) ||
    bad "train failed: $out"
echo "$out" | grep -Eq '^tokenizer: [0-9]+ words \([0-9]+ distinct\) from 2 files; 800 tokens, [0-9]+ merges' ||
    bad "train summary: $out"
[ "$(ls "$T/tok" | tr '\n' ' ')" = "merges.txt vocab.json " ] || bad "out dir holds: $(ls "$T/tok")"
head -1 "$T/tok/merges.txt" | grep -qx '#version: 0.2' || bad "merges.txt header"
[ "$(($(wc -l < "$T/tok/merges.txt") - 1))" -ge 539 ] || bad "merges.txt: $(wc -l < "$T/tok/merges.txt") lines"
grep -q '^{"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"!":4,' "$T/tok/vocab.json" || bad "vocab.json head"
grep -q '"<mask>":799}$' "$T/tok/vocab.json" || bad "vocab.json: <mask> is not 799, last"
"$PB" tokenizer train --corpus $L/GPL-3 --corpus $L/Apache-2.0 --vocab-size 800 --out "$T/tok2" > /dev/null 2>&1
cmp -s "$T/tok/vocab.json" "$T/tok2/vocab.json" && cmp -s "$T/tok/merges.txt" "$T/tok2/merges.txt" ||
    bad "two trainings differ"
# rerun into the same directory: replaced in place
"$PB" tokenizer train --corpus $L/GPL-3 --vocab-size 300 --min-frequency 3 --out "$T/tok2" > /dev/null 2>&1 ||
    bad "retrain into an existing dir failed"
grep -q '"<mask>":299}$' "$T/tok2/vocab.json" || bad "retrain did not replace vocab.json"

# encode: --dir and --vocab/--merges agree; --roberta wraps in <s> </s>; --lines one line each
a=$("$PB" tokenizer encode --dir "$T/tok" "This License" " the Program") || bad "encode --dir failed"
b=$("$PB" tokenizer encode --vocab "$T/tok/vocab.json" --merges "$T/tok/merges.txt" "This License" " the Program")
[ -n "$a" ] && [ "$a" = "$b" ] || bad "encode --dir '$a' vs --vocab/--merges '$b'"
[ "$(echo "$a" | wc -l)" = 2 ] || bad "encode: one line per text: $a"
r=$("$PB" tokenizer encode --dir "$T/tok" --roberta "This License" | head -1)
[ "$r" = "0 $(echo "$a" | head -1) 2" ] || bad "--roberta: '$r'"
printf 'This License\n the Program\n' > "$T/two.txt"
c=$("$PB" tokenizer encode --dir "$T/tok" --file "$T/two.txt" --lines)
[ "$c" = "$a" ] || bad "--file --lines '$c' vs '$a'"

# bad input: one message naming what is wrong, exit 2
expect_err 2 "corpus $T/nope.txt: no such file" tokenizer train --corpus "$T/nope.txt" --vocab-size 300 --out "$T/o"
expect_err 2 "corpus $T: is a directory" tokenizer train --corpus "$T" --vocab-size 300 --out "$T/o"
expect_err 2 "--vocab-size '260': expected an integer in \[261," tokenizer train --corpus $L/GPL-3 --vocab-size 260 --out "$T/o"
expect_err 2 "--vocab-size '3k'" tokenizer train --corpus $L/GPL-3 --vocab-size 3k --out "$T/o"
expect_err 2 "--min-frequency '-1'" tokenizer train --corpus $L/GPL-3 --vocab-size 300 --min-frequency -1 --out "$T/o"
expect_err 2 "--out $T/two.txt/sub: cannot create directory: Not a directory" tokenizer train --corpus $L/GPL-3 --vocab-size 300 --out "$T/two.txt/sub"
expect_err 2 "--out $T/two.txt: not a directory" tokenizer train --corpus $L/GPL-3 --vocab-size 300 --out "$T/two.txt"
expect_err 2 "needs --corpus FILE, --vocab-size N" tokenizer train --corpus $L/GPL-3 --out "$T/o"
expect_err 2 "unknown option --vocab" tokenizer train --corpus $L/GPL-3 --vocab 300 --out "$T/o"
expect_err 2 "--out needs a value" tokenizer train --corpus $L/GPL-3 --vocab-size 300 --out
expect_err 2 "unknown subcommand 'fit'" tokenizer fit
expect_err 2 "tokenizer files not found" tokenizer encode --dir "$T/o" hello
expect_err 2 "give --dir DIR or both --vocab and --merges" tokenizer encode --vocab "$T/tok/vocab.json" hello
[ -e "$T/o" ] && [ -n "$(ls "$T/o")" ] && bad "a failed run left files in $T/o: $(ls "$T/o")"
"$PB" tokenizer --help | grep -q "tokenizer train --corpus FILE" || bad "tokenizer --help"
"$PB" --help | grep -q "tokenizer train" || bad "peftbench --help does not list tokenizer"
[ $fail = 0 ] && echo "tokenizer cli: ok"
exit $fail
