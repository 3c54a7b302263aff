#!/usr/bin/env bash
# test_methods_doc.sh PEFTBENCH: docs/methods.md's reference section is exactly
# `peftbench methods --markdown` (regenerate with scripts/gen-methods-doc.sh), and
# `methods --json` lists every registered method with options, defaults and help.
set -u
PB=${1:?usage: test_methods_doc.sh PATH/TO/peftbench}
SRC=$(cd "$(dirname "$0")/.." && pwd)
fail=0
"$PB" methods --markdown > /tmp/pb_methods_md.$$ || { echo "FAIL: methods --markdown exit $?"; exit 1; }
python3 - "$SRC/docs/methods.md" /tmp/pb_methods_md.$$ <<'PY' || fail=1
import sys
s = open(sys.argv[1]).read()
a, b = "<!-- methods:begin -->\n", "<!-- methods:end -->"
doc = s[s.index(a) + len(a):s.index(b)]
gen = open(sys.argv[2]).read()
if doc != gen:
    print("FAIL: docs/methods.md reference section differs from `peftbench methods --markdown`;"
          " run scripts/gen-methods-doc.sh", file=sys.stderr)
    sys.exit(1)
PY
rm -f /tmp/pb_methods_md.$$
"$PB" methods --json | python3 -c '
import json, sys
ms = json.load(sys.stdin)
names = [m["name"] for m in ms]
assert len(names) == len(set(names)) and {"full", "head", "lora", "pissa", "svfit", "aoft"} <= set(names), names
for m in ms:
    assert m["summary"] and m["site"] in ("none", "linear"), m["name"]
    for o in m["options"]:
        assert o["key"] and o["help"] and "default" in o and o["type"] in ("int", "number", "bool", "choice", "list"), (m["name"], o)
    if m["site"] == "linear":
        assert any(o["key"] == "targets" for o in m["options"]), m["name"]
' || { echo "FAIL: methods --json"; fail=1; }
"$PB" methods lora | grep -q "^  rank " || { echo "FAIL: methods lora"; fail=1; }
"$PB" methods nosuch 2> /tmp/pb_m_err.$$; rc=$?
{ [ $rc = 2 ] && grep -q "known: full, head" /tmp/pb_m_err.$$; } || { echo "FAIL: unknown method rc $rc"; fail=1; }
rm -f /tmp/pb_m_err.$$
# CLI options go through the descriptor: --opt, short flags, and refusals naming the option
"$PB" info vit-tiny --method lora --opt rank=4 --opt targets=query,key --json | python3 -c '
import json, sys; d = json.load(sys.stdin)
assert d["options"]["rank"] == 4 and d["options"]["targets"] == ["query", "key"], d["options"]
assert d["params_adapter"] == d["layers"] * 2 * 4 * 2 * d["hidden"], d["params_adapter"]' \
  || { echo "FAIL: info --opt"; fail=1; }
for bad in "--method svfit --opt alpha=2:no such option" "--method lora --rank 0:rank" \
           "--method pissa --rank 100000:rank" "--method lora --opt init=svd:init" "--method full --rank 8:no such option"; do
  args=${bad%%:*}; want=${bad##*:}
  out=$("$PB" info vit-tiny $args 2>&1); rc=$?
  { [ $rc = 2 ] && echo "$out" | grep -q "$want"; } || { echo "FAIL: info $args: rc $rc, '$out'"; fail=1; }
done
exit $fail
