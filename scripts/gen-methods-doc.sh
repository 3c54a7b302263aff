#!/usr/bin/env bash
# gen-methods-doc.sh [PEFTBENCH]: rewrites the reference section of docs/methods.md (between the
# methods:begin/end markers) with `peftbench methods --markdown`. tests/test_methods_doc.sh fails
# when the two differ.
set -euo pipefail
PB=${1:-build/peftbench}
DOC=$(cd "$(dirname "$0")/.." && pwd)/docs/methods.md
"$PB" methods --markdown > "$DOC.gen"
python3 - "$DOC" "$DOC.gen" <<'PY'
import sys
doc, gen = sys.argv[1], open(sys.argv[2]).read()
s = open(doc).read()
a, b = "<!-- methods:begin -->\n", "<!-- methods:end -->"
i, j = s.index(a) + len(a), s.index(b)
open(doc, "w").write(s[:i] + gen + s[j:])
PY
rm -f "$DOC.gen"
