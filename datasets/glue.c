// glue.c: GLUE TSV reading with libcsv (tab delimiter, no quote handling) and featurisation.
// Paths and messages live in fixed buffers (>= 1 KiB); GCC cannot prove they fit.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <csv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"
#include "glue.h"
#include "tokenizer.h"

typedef struct {
    const char *name;
    int ncols, header, col_a, col_b, col_label; // col_label -1 = last column
    int classes;                                // 1 = regression
    const char *metric;
} glue_spec;

static const glue_spec glue_tasks[] = {
    {"cola", 4, 0, 3, -1, 1, 2, "mcc"},
    {"sst2", 2, 1, 0, -1, 1, 2, "accuracy"},
    {"mrpc", 5, 1, 3, 4, 0, 2, "accuracy"},
    {"stsb", 10, 1, 7, 8, -1, 1, "pearson"},
    {"qnli", 4, 1, 1, 2, -1, 2, "accuracy"},
    {"rte", 4, 1, 1, 2, -1, 2, "accuracy"},
};

static const glue_spec *find_task(const char *task) {
    for (size_t i = 0; i < sizeof glue_tasks / sizeof glue_tasks[0]; i++)
        if (strcmp(glue_tasks[i].name, task) == 0) return &glue_tasks[i];
    return NULL;
}

void pb_glue_rows_free(pb_glue_rows *r) {
    for (int i = 0; i < r->n; i++) {
        free(r->rows[i].a);
        free(r->rows[i].b);
    }
    free(r->rows);
    memset(r, 0, sizeof *r);
}

// libcsv callbacks collect the fields of one physical line.
typedef struct {
    char **f;
    int nf, cap;
    int rows;
} fields;

static void cb_field(void *s, size_t len, void *data) {
    fields *F = data;
    if (F->nf == F->cap) F->f = pb_xrealloc(F->f, sizeof(char *) * (F->cap = F->cap ? F->cap * 2 : 16));
    char *v = pb_xmalloc(len + 1);
    if (len) memcpy(v, s, len);
    v[len] = 0;
    F->f[F->nf++] = v;
}

static void cb_row(int c, void *data) {
    (void)c;
    ((fields *)data)->rows++;
}

static int no_space(unsigned char c) {
    (void)c;
    return 0; // keep leading/trailing blanks: GLUE text is taken verbatim
}

static int is_term(unsigned char c) { return c == '\n'; }

static void fields_clear(fields *F) {
    for (int i = 0; i < F->nf; i++) free(F->f[i]);
    F->nf = 0;
    F->rows = 0;
}

static int parse_label(const glue_spec *g, const char *s, int *lab, float *tgt) {
    if (g->classes == 1) {
        char *e;
        double v = strtod(s, &e);
        if (e == s || *e || !isfinite(v)) return -1;
        *tgt = (float)v;
        *lab = -1;
        return 0;
    }
    if (strcmp(g->name, "qnli") == 0 || strcmp(g->name, "rte") == 0) {
        if (strcmp(s, "entailment") == 0) *lab = 0;
        else if (strcmp(s, "not_entailment") == 0) *lab = 1;
        else return -1;
        return 0;
    }
    if (strcmp(s, "0") == 0) *lab = 0;
    else if (strcmp(s, "1") == 0) *lab = 1;
    else return -1;
    return 0;
}

pb_status pb_glue_read_tsv(const char *task, const char *buf, size_t n, const char *name, pb_glue_rows *out,
                           char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const glue_spec *g = find_task(task);
    if (!g) return pb_errf(PB_ERR_ARG, err, errlen, "unknown GLUE task '%s' (cola sst2 mrpc stsb qnli rte)", task);
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) != 0) return pb_errf(PB_ERR_NOMEM, err, errlen, "libcsv init failed");
    csv_set_delim(&p, '\t');
    // No quote handling: quotes are literal (quotechar=None). NUL bytes are rejected below, so
    // using NUL as libcsv's quote character disables quoting.
    csv_set_quote(&p, '\0');
    csv_set_space_func(&p, no_space);
    csv_set_term_func(&p, is_term);
    fields F = {0};
    pb_status st = PB_OK;
    int cap = 0, line = 0;
    size_t pos = 0;
    while (pos < n && st == PB_OK) {
        size_t end = pos;
        while (end < n && buf[end] != '\n') end++;
        line++;
        size_t e = end;
        if (e > pos && buf[e - 1] == '\r') e--;
        size_t a = pos;
        pos = end + 1;
        if (e == a) continue; // blank line (e.g. trailing newline)
        if (line == 1 && g->header) continue;
        if (memchr(buf + a, 0, e - a)) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: NUL byte in TSV", name, line);
            break;
        }
        // Feed the physical line; with quoting off a field never spans lines.
        fields_clear(&F);
        if (csv_parse(&p, buf + a, e - a, cb_field, cb_row, &F) != e - a ||
            csv_parse(&p, "\n", 1, cb_field, cb_row, &F) != 1) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: TSV parse error: %s", name, line,
                         csv_strerror(csv_error(&p)));
            break;
        }
        if (F.nf != g->ncols) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: ragged row: %d tab-separated fields, expected %d for %s",
                         name, line, F.nf, g->ncols, g->name);
            break;
        }
        int li = g->col_label < 0 ? g->ncols - 1 : g->col_label;
        int lab;
        float tgt = 0;
        if (parse_label(g, F.f[li], &lab, &tgt) != 0) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: column %d: bad label '%.40s' for %s", name, line, li + 1,
                         F.f[li], g->name);
            break;
        }
        if (out->n == cap) out->rows = pb_xrealloc(out->rows, sizeof(pb_glue_row) * (cap = cap ? cap * 2 : 256));
        pb_glue_row *r = &out->rows[out->n++];
        r->a = pb_xstrdup(F.f[g->col_a]);
        r->b = g->col_b >= 0 ? pb_xstrdup(F.f[g->col_b]) : NULL;
        r->label = lab;
        r->target = tgt;
        r->line = line;
    }
    fields_clear(&F);
    free(F.f);
    csv_free(&p);
    if (st != PB_OK) pb_glue_rows_free(out);
    return st;
}

static pb_status featurize(const glue_spec *g, pb_glue_rows *rows, pb_tokenizer *tok, int L, pb_split *s) {
    s->n = rows->n;
    s->ids = pb_xmalloc(sizeof(int32_t) * ((size_t)rows->n * L + 1));
    s->mask = pb_xmalloc(sizeof(int32_t) * ((size_t)rows->n * L + 1));
    if (g->classes == 1) s->targets = pb_xmalloc(sizeof(float) * (rows->n + 1));
    else s->labels = pb_xmalloc(sizeof(int32_t) * (rows->n + 1));
    for (int i = 0; i < rows->n; i++) {
        int k = pb_tokenizer_encode_pair(tok, rows->rows[i].a, rows->rows[i].b, L, s->ids + (size_t)i * L,
                                         s->mask + (size_t)i * L);
        PB_CHECK(k >= 0, "seq_len %d checked by caller", L);
        if (g->classes == 1) s->targets[i] = rows->rows[i].target;
        else s->labels[i] = rows->rows[i].label;
    }
    return PB_OK;
}

static void copy_split(const pb_split *a, pb_split *b, int L) {
    b->n = a->n;
    size_t m = (size_t)a->n * L + 1;
    b->ids = pb_xmalloc(sizeof(int32_t) * m);
    memcpy(b->ids, a->ids, sizeof(int32_t) * m);
    b->mask = pb_xmalloc(sizeof(int32_t) * m);
    memcpy(b->mask, a->mask, sizeof(int32_t) * m);
    if (a->labels) {
        b->labels = pb_xmalloc(sizeof(int32_t) * (a->n + 1));
        memcpy(b->labels, a->labels, sizeof(int32_t) * (a->n + 1));
    }
    if (a->targets) {
        b->targets = pb_xmalloc(sizeof(float) * (a->n + 1));
        memcpy(b->targets, a->targets, sizeof(float) * (a->n + 1));
    }
}

static uint64_t hash_split(uint64_t h, const pb_split *s, int L) {
    h = pb_hash64(h, &s->n, sizeof s->n);
    h = pb_hash64(h, s->ids, sizeof(int32_t) * (size_t)s->n * L);
    h = pb_hash64(h, s->mask, sizeof(int32_t) * (size_t)s->n * L);
    if (s->labels) h = pb_hash64(h, s->labels, sizeof(int32_t) * s->n);
    if (s->targets) h = pb_hash64(h, s->targets, sizeof(float) * s->n);
    return h;
}

pb_status pb_glue_load(const char *spec, const pb_task_opts *o, pb_task *t, char *err, size_t errlen) {
    char task[32];
    const char *colon = strchr(spec, ':');
    size_t k = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!colon || k >= sizeof task)
        return pb_errf(PB_ERR_ARG, err, errlen, "bad GLUE spec 'glue/%s' (expected glue/<task>:<dir>)", spec);
    memcpy(task, spec, k);
    task[k] = 0;
    const glue_spec *g = find_task(task);
    if (!g) return pb_errf(PB_ERR_ARG, err, errlen, "unknown GLUE task '%s' (cola sst2 mrpc stsb qnli rte)", task);
    int L = o->seq_len > 0 ? o->seq_len : 128;
    if (L < 4 || L > 65536) return pb_errf(PB_ERR_ARG, err, errlen, "seq_len %d out of range [4, 65536]", L);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", colon + 1);
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/train.tsv", dir);
    if (!pb_file_exists(probe) && dir[0] != '/') {
        char d2[1024];
        snprintf(d2, sizeof d2, "%s/%.900s", o->data_root, dir);
        snprintf(probe, sizeof probe, "%s/train.tsv", d2);
        if (pb_file_exists(probe)) snprintf(dir, sizeof dir, "%s", d2);
    }
    pb_tokenizer *tok;
    pb_status st = pb_tokenizer_load(o->tokenizer_dir, &tok, err, errlen);
    if (st != PB_OK) return st;
    const char *files[2] = {"train.tsv", "dev.tsv"};
    uint64_t h = pb_hash_str(PB_HASH_INIT, g->name);
    for (int i = 0; i < 2 && st == PB_OK; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        uint8_t *buf;
        size_t n;
        st = pb_read_file(path, &buf, &n, err, errlen);
        if (st != PB_OK) break;
        pb_glue_rows rows;
        st = pb_glue_read_tsv(g->name, (const char *)buf, n, path, &rows, err, errlen);
        free(buf);
        if (st != PB_OK) break;
        featurize(g, &rows, tok, L, i == 0 ? &t->train : &t->val);
        pb_glue_rows_free(&rows);
        h = hash_split(h, i == 0 ? &t->train : &t->val, L);
    }
    pb_tokenizer_free(tok);
    if (st != PB_OK) return st; // caller frees t
    copy_split(&t->val, &t->test, L);
    t->kind = PB_DATA_TEXT;
    t->seq_len = L;
    t->num_classes = g->classes;
    snprintf(t->metric, sizeof t->metric, "%s", g->metric);
    snprintf(t->name, sizeof t->name, "glue/%s", g->name);
    snprintf(t->data_hash, sizeof t->data_hash, "%016llx", (unsigned long long)h);
    return PB_OK;
}
