#!/usr/bin/env bash
# test_report_html.sh PEFTBENCH PEFTBENCH_SYNTH: `report --html` (issue 18) opened in a real headless
# browser (Debian's chromium). A small suite run by the fixture trainer (tests/peftbench_synth.c),
# with a reference table, a failing method and hostile labels (<script>, <img onerror>, & " '):
#   (1) `run` leaves DIR/index.html; `report DIR --html` rewrites it; the page is self-contained
#       (no script, no external resource) and its ids are unique;
#   (2) chromium's screenshot (1280x2000) is not blank; its DOM holds every table row (labels as
#       text), the best value of each column in bold, paper-vs-ours deltas coloured by sign, every
#       figure `plot` makes and one training-curve SVG per cell, failed cells with their reason;
#   (3) every hostile string is text: escaped in index.html, never a tag, text in the DOM;
#   (4) without gnuplot (PATH without it) the page still renders: tables, a note, no figure (and
#       no stale curve file from the earlier run stands in for one).
# Needs chromium: without it the test fails and says how to install it (scripts/install-deps.sh
# --python, which `make test` runs, installs it).
set -u
PB=${1:?usage: test_report_html.sh PATH/TO/peftbench PATH/TO/peftbench_synth}
PB=$(cd "$(dirname "$PB")" && pwd)/$(basename "$PB")
PBS=${2:?usage: test_report_html.sh PATH/TO/peftbench PATH/TO/peftbench_synth}
PBS=$(cd "$(dirname "$PBS")" && pwd)/$(basename "$PBS")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
  echo "FAIL: chromium not found: this test opens index.html in a headless browser." >&2
  echo "      Install it with 'apt-get install chromium' (scripts/install-deps.sh --python, run by 'make test', does)," >&2
  echo "      or point CHROMIUM at a Chromium/Chrome binary." >&2
  exit 1
fi
# --headless with a private profile; --no-sandbox: CI containers run as root
browse() { timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$T/profile" "$@" 2>>"$T/chromium.log"; }

EVIL_M='<script>alert(1)</script>&"'"'"
EVIL_D='<img src=x onerror=alert(2)>'
EVIL_S='<script>alert(3)</script> & "quotes" '"'"
python3 - "$EVIL_M" "$EVIL_D" "$EVIL_S" "$T" <<'PY'
import json, sys
m, d, s, t = sys.argv[1:5]
json.dump({"name": "rpt", "source": "test table <i>not a tag</i>", "scale": 100, "columns": ["a", d],
           "rows": [{"method": "LoRA", "params": "0.3M <b>", "values": {"a": 40.0, d: 99.0}, "avg": 69.5}]},
          open(t + "/ref.json", "w"))
json.dump({
  "name": "rpt", "description": s, "reference": t + "/ref.json",
  "models": [{"label": "micro", "config": {"arch": "vit", "hidden": 32, "layers": 2, "heads": 2, "intermediate": 64}}],
  "datasets": ["vtab-mini/a", {"spec": "vtab-mini/b", "label": d}],
  "methods": ["head", {"method": "lora", "alpha": 16, "ref": "LoRA"}, {"method": "lora", "label": m},
              {"method": "lora", "label": "diverge"}],
  "grid": {"rank": [4, 8], "lr": [0.001, 0.01], "seed": [0]},
  "recipe": {"epochs": 4}}, open(t + "/s.json", "w"))
PY

# --- (1) run leaves index.html; report --html rewrites it --------------------------------------
"$PBS" run "$T/s.json" --out "$T/r" > "$T/run.log" 2>&1; rc=$?
[ $rc = 1 ] || bad "run exit $rc, want 1 (the 'diverge' cells fail): $(tail -3 "$T/run.log")"
[ -s "$T/r/index.html" ] || bad "run did not write index.html"
rm -f "$T/r/index.html"
"$PB" report "$T/r" --html --quiet > "$T/report.log" 2>&1 || bad "report --html exit $? ($(tail -3 "$T/report.log"))"
[ -s "$T/r/index.html" ] || { bad "report --html did not write index.html"; exit 1; }
ls "$T/r" | grep -q 'tmp' && bad "temp files left in the results directory"

python3 - "$T/r" "$EVIL_M" "$EVIL_D" "$EVIL_S" <<'PY' || fail=1
import html, re, sys
d, m, dl, s = sys.argv[1:5]
page = open(d + "/index.html", encoding="utf-8").read()
ok = True
def bad(msg):
    global ok
    print("FAIL:", msg, file=sys.stderr); ok = False
if re.search(r"<script", page, re.I): bad("index.html holds a <script")
for raw in (m, dl, s, "<i>not a tag</i>", "0.3M <b>"):
    if raw in page: bad(f"raw user string in index.html: {raw!r}")
    esc = html.escape(raw, quote=True).replace("&#x27;", "&#39;")
    if esc not in page: bad(f"escaped form {esc!r} of {raw!r} not in index.html")
for pat in (r"<link\b", r"<img\b", r"<[a-zA-Z][^>]*\ssrc\s*=", r"@import", r"url\(\s*['\"]?https?:", r"href=\"https?:"):
    if re.search(pat, page, re.I): bad(f"index.html refers to an external resource ({pat})")
ids = re.findall(r"\sid=[\"']([^\"']+)[\"']", page)
dups = {i for i in ids if ids.count(i) > 1}
if dups: bad(f"duplicate element ids: {sorted(dups)[:5]}")
sys.exit(0 if ok else 1)
PY

# --- (2, 3) in the browser --------------------------------------------------------------------
URL="file://$T/r/index.html"
browse --dump-dom "$URL" > "$T/dom.html" || bad "chromium --dump-dom exit $? ($(tail -2 "$T/chromium.log"))"
browse --screenshot="$T/shot.png" --window-size=1280,2000 "$URL" > /dev/null || bad "chromium --screenshot exit $?"
python3 - "$T/r" "$T/dom.html" "$T/shot.png" "$EVIL_M" "$EVIL_D" "$EVIL_S" <<'PY' || fail=1
import glob, json, os, re, struct, sys, zlib
from html.parser import HTMLParser
d, dom_path, shot, m, dl, s = sys.argv[1:7]
ok = True
def bad(msg):
    global ok
    print("FAIL:", msg, file=sys.stderr); ok = False

# ---- the screenshot: decoded with zlib + struct, sampled every 4th row and column
def png_stats(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n": return None
    pos, idat = 8, []
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR": w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT": idat.append(body)
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6) and not interlace, f"PNG format {depth}/{ctype}/{interlace}"
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), w * bpp
    prev, colours, nonwhite, i = bytearray(stride), set(), 0, 0
    for y in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        if f == 1:
            for x in range(bpp, stride): line[x] = (line[x] + line[x - bpp]) & 255
        elif f == 2: line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for x in range(stride): line[x] = (line[x] + (((line[x - bpp] if x >= bpp else 0) + prev[x]) >> 1)) & 255
        elif f == 4:
            for x in range(stride):
                a, b, c = (line[x - bpp] if x >= bpp else 0), prev[x], (prev[x - bpp] if x >= bpp else 0)
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:
            for x in range(0, stride, bpp * 4):
                px = bytes(line[x:x + 3]); colours.add(px); nonwhite += px != b"\xff\xff\xff"
        prev = line
    return w, h, len(colours), nonwhite / (((h + 3) // 4) * ((w + 3) // 4))
st = png_stats(shot) if os.path.exists(shot) else None
if not st: bad("no screenshot PNG")
else:
    w, h, ncol, frac = st
    if (w, h) != (1280, 2000): bad(f"screenshot is {w}x{h}, want 1280x2000")
    if ncol < 50 or frac < 0.02: bad(f"screenshot looks blank: {ncol} colours, {100 * frac:.1f}% non-white pixels")
    else: print(f"  screenshot: {ncol} colours, {100 * frac:.1f}% non-white")

# ---- the DOM chromium built
class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.text = [], {}, []
        self.ids = {}          # id -> (tag, classes)
        self.svg_in = {}       # figure id -> number of <svg> inside
        self.rows = {}         # table id -> [[(tag, classes, text)]]
        self.table = None; self.row = None; self.cell = None; self.fig = None; self.in_tbody = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs); cls = (a.get("class") or "").split()
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in a: self.ids[a["id"]] = (tag, cls)
        if tag == "table" and a.get("id"): self.table = a["id"]; self.rows[self.table] = []
        if tag == "tbody": self.in_tbody = True
        if tag == "tr" and self.table and self.in_tbody: self.row = []; self.rows[self.table].append(self.row)
        if tag in ("td", "th") and self.row is not None: self.cell = [tag, cls, ""]; self.row.append(self.cell)
        if tag == "span" and self.cell is not None and "delta" in cls: self.cell.append(cls)
        if tag == "figure": self.fig = a.get("id"); self.svg_in[self.fig] = 0
        if tag == "svg" and self.fig: self.svg_in[self.fig] += 1
        if tag not in ("br", "meta", "img", "input", "link", "hr"): self.stack.append(tag)
    def handle_endtag(self, tag):
        if tag == "table": self.table = None
        if tag == "tbody": self.in_tbody = False
        if tag == "tr": self.row = None
        if tag in ("td", "th"): self.cell = None
        if tag == "figure": self.fig = None
        while self.stack and self.stack.pop() != tag: pass
    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None: self.cell[2] += data
dom = Dom(); dom.feed(open(dom_path, encoding="utf-8").read())
text = "".join(dom.text)
if dom.tags.get("script"): bad(f"{dom.tags['script']} <script> element(s) in the DOM")
if dom.tags.get("img"): bad("an <img> element in the DOM (a label became markup)")
for raw in (m, dl, s.strip()):
    if raw not in text: bad(f"{raw!r} is not text in the DOM")

res = json.load(open(d + "/results.json"))
def label(r):
    ax = " ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in sorted(r["axes"].items()))
    return r["method"] + (" " + ax if ax else "")
want_rows = []
for r in res["rows"]:
    if label(r) not in want_rows: want_rows.append(label(r))
rows = dom.rows.get("table-results", [])
got = [r[0][2].strip() for r in rows]
if got != want_rows: bad(f"results table rows {got} != {want_rows}")
for lab in {r["method"] for r in res["rows"]}:
    if not any(g.startswith(lab) for g in got): bad(f"method label {lab!r} has no row")
# bold = the best printed value of its column; "fail" where a cell failed
ncol = len(rows[0]) if rows else 0
for c in range(3, ncol):
    vals = [(float(r[c][2].split()[0]), "best" in r[c][1]) for r in rows if re.match(r"-?\d", r[c][2])]
    if not vals: continue
    best = max(v for v, _ in vals)
    wrong = [(v, b) for v, b in vals if b != (abs(v - best) < 1e-9)]
    if wrong: bad(f"column {c}: bold marks {wrong} (best {best})")
if not any("fail" in cell[2] for r in rows for cell in r): bad("no 'fail' cell for the diverging method")
# paper vs ours: one row (LoRA ref), deltas coloured by sign
prow = dom.rows.get("table-paper", [])
if len(prow) != 4: bad(f"paper table has {len(prow)} rows, want 4 (lora x rank x lr)")
signs = set()
for r in prow:
    for cell in r[2:]:
        spans = [x for x in cell[3:] if isinstance(x, list)]
        if not spans: continue
        delta = float(cell[2].split()[-1]); cls = spans[0]
        want = "pos" if delta >= 0 else "neg"
        if want not in cls: bad(f"delta {delta} has classes {cls}")
        signs.add(want)
if signs != {"pos", "neg"}: bad(f"paper table deltas: want both colours, got {signs}")

# figures: every SVG plot made, inline; one curve per cell
plots = sorted(os.path.basename(p)[:-4] for p in glob.glob(d + "/plots/*.svg"))
if len(plots) != 5: bad(f"plot made {plots}, want rank/lr per dataset + params")
for p in plots:
    fid = "fig-" + re.sub(r"[^A-Za-z0-9_-]", "_", p)
    if dom.svg_in.get(fid) != 1: bad(f"figure {fid}: {dom.svg_in.get(fid)} <svg> in the DOM")
cells = [json.load(open(f)) for f in glob.glob(d + "/cells/*.json")]
for c in cells:
    if dom.svg_in.get("curve-" + c["id"]) != 1: bad(f"cell {c['id']} has no training-curve <svg>")
    if "cell-" + c["id"] not in dom.ids: bad(f"cell {c['id']} has no section")
    if c["status"] != "ok" and c["reason"] not in text: bad(f"failed cell {c['id']}: reason not shown")
nsvg = dom.tags.get("svg", 0)
if nsvg != len(plots) + len(cells): bad(f"{nsvg} <svg> in the DOM, want {len(plots)} figures + {len(cells)} curves")
for key in ("synthetic test fixture", "git "):
    if key not in text: bad(f"engine fingerprint: {key!r} not on the page")
if ok: print(f"  DOM: {len(got)} table rows, {len(plots)} figures, {len(cells)} curves, hostile labels are text")
sys.exit(0 if ok else 1)
PY

# --- (4) without gnuplot ----------------------------------------------------------------------
cp -r "$T/r" "$T/ng"
mkdir -p "$T/nobin"
PATH="$T/nobin" "$PB" report "$T/ng" --html --quiet > "$T/ng.log" 2>&1 || bad "report --html without gnuplot exit $? ($(tail -2 "$T/ng.log"))"
grep -q "cannot run gnuplot" "$T/ng.log" || bad "no 'cannot run gnuplot' message without gnuplot"
browse --dump-dom "file://$T/ng/index.html" > "$T/ng.dom" || bad "chromium on the gnuplot-less page exit $?"
python3 - "$T/ng.dom" <<'PY' || fail=1
import sys
dom = open(sys.argv[1], encoding="utf-8").read()
missing = [k for k in ('id="table-results"', 'id="figures-note"', 'id="curves-note"', "cannot run gnuplot") if k not in dom]
assert not missing, f"page without gnuplot lacks {missing}"
assert "<svg" not in dom, "page without gnuplot shows an SVG (a stale figure?)"
print("  without gnuplot: tables and notes, no figure")
PY

[ $fail = 0 ] && echo "report --html checks passed"
exit $fail
