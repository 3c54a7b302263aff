// listfile.c: NOAH/VTAB-1k split lists, one "<relative path> <int label>" per line.
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"

void pb_listfile_free(pb_listfile *l) {
    for (int i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    free(l->labels);
    free(l->lines);
    memset(l, 0, sizeof *l);
}

pb_status pb_listfile_parse(const char *buf, size_t n, const char *name, pb_listfile *out,
                            char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int cap = 0, line = 0;
    size_t pos = 0;
    while (pos < n) {
        size_t end = pos;
        while (end < n && buf[end] != '\n') end++;
        line++;
        size_t e = end;
        if (e > pos && buf[e - 1] == '\r') e--; // CRLF files
        size_t a = pos;
        while (a < e && (buf[a] == ' ' || buf[a] == '\t')) a++;
        while (e > a && (buf[e - 1] == ' ' || buf[e - 1] == '\t')) e--;
        pos = end + 1;
        if (a == e) continue; // blank line
        for (size_t i = a; i < e; i++)
            if (buf[i] == 0) {
                pb_listfile_free(out);
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: NUL byte in list file", name, line);
            }
        size_t sp = e; // last run of blanks separates path and label (paths may contain spaces)
        while (sp > a && buf[sp - 1] != ' ' && buf[sp - 1] != '\t') sp--;
        if (sp == a) {
            pb_listfile_free(out);
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: expected '<path> <label>'", name, line);
        }
        size_t pe = sp;
        while (pe > a && (buf[pe - 1] == ' ' || buf[pe - 1] == '\t')) pe--;
        // label: decimal digits only, below 1e6
        long lab = 0;
        if (e - sp > 6) lab = -1;
        for (size_t i = sp; i < e && lab >= 0; i++) {
            if (buf[i] < '0' || buf[i] > '9') lab = -1;
            else lab = lab * 10 + (buf[i] - '0');
        }
        if (lab < 0) {
            pb_listfile_free(out);
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: bad label '%.*s' (expected a non-negative integer)",
                           name, line, (int)PB_MIN(e - sp, (size_t)40), buf + sp);
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 256;
            out->paths = pb_xrealloc(out->paths, sizeof(char *) * cap);
            out->labels = pb_xrealloc(out->labels, sizeof(int) * cap);
            out->lines = pb_xrealloc(out->lines, sizeof(int) * cap);
        }
        char *p = pb_xmalloc(pe - a + 1);
        memcpy(p, buf + a, pe - a);
        p[pe - a] = 0;
        out->paths[out->n] = p;
        out->labels[out->n] = (int)lab;
        out->lines[out->n] = line;
        out->n++;
    }
    return PB_OK;
}
