#!/usr/bin/env python3
"""translate.py (cudaemu): turns a CUDA .cu file into C++17 that g++ compiles against the
emulator headers in tests/cudaemu/include. Usage: translate.py IN.cu OUT.cpp

Rewrites, keeping every line where it was (a #line directive points diagnostics, __FILE__ and
__LINE__ at the original file):
  k<<<grid, block[, shmem[, stream]]>>>(args)
      -> pb_emu_launch(__FILE__, __LINE__, k, grid, block[, shmem[, stream]])(args)
     (also inside macros; the arguments stay a normal call, so they convert to the kernel's
     parameter types exactly as in a launch)
  __shared__ T name[N];          -> the same (a function static) + pb_emu_shared(...) so the
                                    emulator fills it with garbage at every block start
  extern __shared__ T name[];    -> T *const name = (T *)pb_emu_dyn_shared();
  #pragma unroll [n]             -> (blank)
and appends a table naming every __global__ function for the emulator's diagnostics.
Fails (exit 1, file:line) on constructs it does not understand instead of guessing.
"""
import os
import re
import sys


def mask_code(src):
    """Returns src with comments and string/char literals replaced by spaces (same length,
    newlines kept), so searches only see code."""
    out = list(src)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                if out[k] != "\n":
                    out[k] = " "
            i = j + 1
        else:
            i += 1
    return "".join(out)


def line_of(src, pos):
    return src.count("\n", 0, pos) + 1


class TranslateError(Exception):
    pass


def find_launches(src, code):
    """Yields (start, end, replacement) edits for every <<<...>>> launch."""
    edits = []
    pos = 0
    while True:
        i = code.find("<<<", pos)
        if i < 0:
            break
        # kernel expression before <<<: identifier (with ::) and optional template arguments
        j = i - 1
        while j >= 0 and code[j] in " \t":
            j -= 1
        if j >= 0 and code[j] == ">":
            depth = 0
            while j >= 0:
                if code[j] == ">":
                    depth += 1
                elif code[j] == "<":
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            j -= 1
        while j >= 0 and (code[j].isalnum() or code[j] in "_:"):
            j -= 1
        kstart = j + 1
        kexpr = src[kstart:i].strip()
        if not kexpr or not (kexpr[0].isalpha() or kexpr[0] == "_"):
            raise TranslateError("%d: cannot find the kernel name before <<<" % line_of(src, i))
        # matching >>> at bracket depth 0
        k = i + 3
        depth = 0
        end = -1
        while k < len(code):
            ch = code[k]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
                if depth < 0:
                    break
            elif depth == 0 and code.startswith(">>>", k):
                end = k
                break
            k += 1
        if end < 0:
            raise TranslateError("%d: no matching >>> for this launch" % line_of(src, i))
        m = end + 3
        while m < len(code) and code[m] in " \t\\\n":
            m += 1
        if m >= len(code) or code[m] != "(":
            raise TranslateError("%d: launch configuration not followed by (arguments)" % line_of(src, i))
        config = src[i + 3:end]
        repl = "pb_emu_launch(__FILE__, __LINE__, %s, %s)" % (src[kstart:i].rstrip(), config)
        edits.append((kstart, end + 3, repl))
        pos = end + 3
    return edits


def brace_depths(code):
    """depth[i] = number of open braces before position i."""
    depth = [0] * (len(code) + 1)
    d = 0
    for i, ch in enumerate(code):
        depth[i] = d
        if ch == "{":
            d += 1
        elif ch == "}":
            d -= 1
    depth[len(code)] = d
    return depth


DECL_NAME = re.compile(r"([A-Za-z_]\w*)\s*(\[[^;]*\])?\s*$")


def find_shared(src, code, depth):
    edits = []
    for m in re.finditer(r"\b__shared__\b", code):
        s = m.start()
        ln = line_of(src, s)
        semi = code.find(";", s)
        if semi < 0:
            raise TranslateError("%d: __shared__ declaration without ;" % ln)
        decl = code[m.end():semi]
        if "=" in decl or "," in re.sub(r"\[[^\]]*\]", "", decl):
            raise TranslateError("%d: cudaemu supports one __shared__ variable per declaration, "
                                 "without initialiser" % ln)
        before = code[max(0, s - 40):s]
        is_extern = re.search(r"\bextern\s*$", before) is not None
        body = re.sub(r"__align__\s*\([^)]*\)", " ", decl)
        nm = DECL_NAME.search(body.strip())
        if not nm:
            raise TranslateError("%d: cannot parse __shared__ declaration '%s'" % (ln, decl.strip()))
        name = nm.group(1)
        if is_extern:
            if nm.group(2) is None or nm.group(2).replace(" ", "") != "[]":
                raise TranslateError("%d: extern __shared__ must be an unsized array" % ln)
            if depth[s] == 0:
                raise TranslateError("%d: cudaemu supports extern __shared__ only inside a function" % ln)
            tstr = body.strip()[:nm.start()].strip()
            estart = s - len(before) + re.search(r"\bextern\s*$", before).start()
            edits.append((estart, semi + 1, "%s *const %s = (%s *)pb_emu_dyn_shared();" % (tstr, name, tstr)))
        else:
            if depth[s] == 0:
                raise TranslateError("%d: cudaemu supports __shared__ only inside a function" % ln)
            edits.append((semi + 1, semi + 1,
                          ' pb_emu_shared((void *)&%s, sizeof(%s), "%s");' % (name, name, name)))
    return edits


def find_pragmas(src, code):
    edits = []
    for m in re.finditer(r"^[ \t]*#[ \t]*pragma[ \t]+unroll\b[^\n]*", code, re.M):
        edits.append((m.start(), m.end(), ""))
    return edits


def kernel_names(code):
    names = []
    for m in re.finditer(r"\b__global__\b", code):
        # template kernels have no address without arguments: skipped
        prev = code[max(0, m.start() - 200):m.start()]
        cut = max(prev.rfind(";"), prev.rfind("}"), prev.rfind("{"))
        if re.search(r"\btemplate\b", prev[cut + 1:]):
            continue
        paren = code.find("(", m.end())
        head = code[m.end():paren]
        head = re.sub(r"__launch_bounds__\s*$", "", head.strip())
        ids = re.findall(r"[A-Za-z_]\w*", head)
        if ids and ids[-1] not in names:
            names.append(ids[-1])
    return names


def translate(path, src):
    code = mask_code(src)
    depth = brace_depths(code)
    edits = find_launches(src, code) + find_shared(src, code, depth) + find_pragmas(src, code)
    edits.sort(key=lambda e: e[0])
    for a, b in zip(edits, edits[1:]):
        if a[1] > b[0]:
            raise TranslateError("%d: overlapping rewrites" % line_of(src, b[0]))
    out = src
    for s, e, r in reversed(edits):
        out = out[:s] + r + out[e:]
    if out.count("\n") != src.count("\n"):
        raise TranslateError("internal: line count changed")
    names = kernel_names(code)
    header = '#line 1 "%s"\n' % path.replace("\\", "\\\\").replace('"', '\\"')
    footer = ""
    if names:
        footer = "\n// cudaemu: kernel names for diagnostics\n"
        footer += "static const pb_emu_kname pb_emu_knames_[] = {\n"
        footer += "".join('    {reinterpret_cast<pb_emu_fn>(&%s), "%s"},\n' % (n, n) for n in names)
        footer += "};\n"
        footer += ("[[maybe_unused]] static const int pb_emu_knames_n_ = pb_emu_register_names("
                   "pb_emu_knames_, %d, __FILE__);\n" % len(names))
    if not out.endswith("\n"):
        out += "\n"
    return header + out + footer


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: translate.py IN.cu OUT.cpp\n")
        return 2
    inp, outp = sys.argv[1], sys.argv[2]
    with open(inp, encoding="utf-8") as f:
        src = f.read()
    try:
        res = translate(os.path.abspath(inp), src)
    except TranslateError as e:
        sys.stderr.write("%s:%s\n" % (inp, e))
        return 1
    tmp = outp + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(outp)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(res)
    os.replace(tmp, outp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
