// check.c: the regression check of a results directory against a baseline (exact, statistical
// or tolerance mode per row; docs/regression.md) and the baseline writer.
#include "check.h"
#include "jsonutil.h"
#include "report.h"
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#define BASELINE_SCHEMA "peftbench.baseline/1"
#define EPS_POINTS 1e-6 // results round-trip as decimals: ignore differences below this

// ----------------------------------------------------------------------------
// Statistics

double pb_check_norm_quantile(double p) {
    if (!(p > 0 && p < 1)) return NAN;
    if (p == 0.5) return 0;
    if (p < 0.5) return -pb_check_norm_quantile(1 - p);
    // P(Z > z) = erfc(z / sqrt 2) / 2 decreases in z: bisect on [0, 40] (exact to ~1e-12)
    double q = 1 - p, lo = 0, hi = 40;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(mid / sqrt(2.0)) > q) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

// 1 for metrics in [-1, 1] (correlations), 0 for [0, 1], -1 unknown.
static int metric_signed(const char *m) {
    if (!strcmp(m, "accuracy") || !strcmp(m, "f1")) return 0;
    if (!strcmp(m, "mcc") || !strcmp(m, "pearson") || !strcmp(m, "spearman")) return 1;
    return -1;
}

double pb_check_metric_var(const char *metric, double v, int n) {
    if (!metric || !isfinite(v) || n <= 0) return NAN;
    if (!strcmp(metric, "accuracy") || !strcmp(metric, "f1")) {
        // F1 is a proportion over fewer than n examples (TP + (FP + FN) / 2): take n / 2
        double ne = !strcmp(metric, "f1") ? 0.5 * n : n;
        double p = v / 100;
        p = p < 0 ? 0 : p > 1 ? 1 : p;
        double pt = (p * ne + 2) / (ne + 4); // shrunk: a perfect score still has sampling error
        return 1e4 * pt * (1 - pt) / ne;
    }
    double r = v / 100;
    r = r < -0.999 ? -0.999 : r > 0.999 ? 0.999 : r;
    double a = 1 - r * r;
    if (!strcmp(metric, "pearson")) return n > 3 ? 1e4 * a * a / (n - 3) : NAN;
    if (!strcmp(metric, "spearman")) return n > 3 ? 1e4 * 1.06 * a * a / (n - 3) : NAN;
    if (!strcmp(metric, "mcc")) return n > 2 ? 1e4 * a / (n - 2) : NAN;
    return NAN;
}

void pb_check_opts_default(pb_check_opts *o) {
    memset(o, 0, sizeof *o);
    o->tol = -1;
    o->mode = PB_CHECK_AUTO;
    o->alpha = 0.01;
    o->power = 0.8;
}

// ----------------------------------------------------------------------------
// A growing text buffer

typedef struct {
    char *b;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *s, const char *p, size_t n) {
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->b = pb_xrealloc(s->b, s->cap);
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
    s->b[s->n] = 0;
}

// Markup and numbers formatted here; user strings go through xml_text / md_text.
static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *s, const char *fmt, ...) {
    char *t = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&t, fmt, ap); // _GNU_SOURCE (CMakeLists.txt)
    va_end(ap);
    PB_CHECK(n >= 0, "out of memory formatting check output");
    sb_put(s, t, (size_t)n);
    free(t);
}

// Length of the well-formed UTF-8 sequence at s (1-4), or 0 when it is not one (overlong,
// surrogate, above U+10FFFF, truncated). *cp receives the code point.
static int utf8_seq(const unsigned char *s, unsigned *cp) {
    unsigned c = s[0];
    if (c < 0x80) return *cp = c, 1;
    int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len) return 0;
    unsigned v = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

// XML 1.0 character data or attribute value: & < > " ' as entities; characters XML cannot
// carry (control characters but tab/LF/CR, U+FFFE/U+FFFF, malformed UTF-8) as U+FFFD.
static void xml_text(sbuf *s, const char *t) {
    const unsigned char *p = (const unsigned char *)(t ? t : "");
    while (*p) {
        unsigned cp = 0;
        int len = utf8_seq(p, &cp);
        const char *rep = NULL;
        if (!len) rep = "&#xFFFD;", len = 1;
        else if (cp == '&') rep = "&amp;";
        else if (cp == '<') rep = "&lt;";
        else if (cp == '>') rep = "&gt;";
        else if (cp == '"') rep = "&quot;";
        else if (cp == '\'') rep = "&apos;";
        else if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE || cp == 0xFFFF)
            rep = "&#xFFFD;";
        if (rep) sb_put(s, rep, strlen(rep));
        else sb_put(s, (const char *)p, (size_t)len);
        p += len;
    }
}

// Markdown text (GitHub-flavoured, e.g. a pull-request comment): ASCII punctuation that can start
// or close markup (emphasis, code, links, tables, headings, lists, strikethrough) backslash-escaped, & < > as entities (raw HTML is rendered there), control characters
// and newlines as spaces (a table cell is one line).
static void md_text(sbuf *s, const char *t) {
    for (const char *p = t ? t : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '&') sb_put(s, "&amp;", 5);
        else if (c == '<') sb_put(s, "&lt;", 4);
        else if (c == '>') sb_put(s, "&gt;", 4);
        else if (c < 0x20 || c == 0x7f) sb_put(s, " ", 1);
        else if (strchr("\\`*_{}[]()#+-!|~", c)) {
            char e[2] = {'\\', (char)c};
            sb_put(s, e, 2);
        } else sb_put(s, p, 1);
    }
}

// ----------------------------------------------------------------------------
// Fingerprints

typedef struct {
    char backend[160];
    int threads;
    char git_rev[64], lapack[80], build[112];
} fprint;

static void fp_from_agg(const pb_agg *g, fprint *f) {
    snprintf(f->backend, sizeof f->backend, "%s", g->backend);
    f->threads = g->threads;
    snprintf(f->git_rev, sizeof f->git_rev, "%s", g->git_rev);
    snprintf(f->lapack, sizeof f->lapack, "%s", g->lapack);
    snprintf(f->build, sizeof f->build, "%s", g->build);
}

static int fp_mixed(const fprint *f) {
    return f->threads < 0 || !strncmp(f->backend, "mixed: ", 7) || !strncmp(f->git_rev, "mixed: ", 7) ||
           !strncmp(f->lapack, "mixed: ", 7) || !strncmp(f->build, "mixed: ", 7);
}

// Names the fields in which a and b differ into out ("" when they match: same engine, GEMM
// provider and kernel, threads, LAPACK core, build and git revision, none of them mixed or empty).
static void fp_diff(const fprint *a, const fprint *b, char *out, size_t n) {
    out[0] = 0;
    size_t k = 0;
#define FPD(cond, name)                                                                                            \
    if ((cond) && k < n) k += (size_t)snprintf(out + k, n - k, "%s%s", k ? ", " : "", name)
    FPD(strcmp(a->backend, b->backend) || !a->backend[0], "backend");
    FPD(a->threads != b->threads, "threads");
    FPD(strcmp(a->lapack, b->lapack) || !a->lapack[0], "lapack");
    FPD(strcmp(a->build, b->build) || !a->build[0], "build");
    FPD(strcmp(a->git_rev, b->git_rev) || !a->git_rev[0] || !strcmp(a->git_rev, "unknown"), "git rev");
    FPD(!out[0] && (fp_mixed(a) || fp_mixed(b)), "mixed within a row");
#undef FPD
}

static cJSON *fp_json(const fprint *f) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "backend", f->backend);
    cJSON_AddNumberToObject(o, "threads", f->threads);
    cJSON_AddStringToObject(o, "lapack", f->lapack);
    cJSON_AddStringToObject(o, "build", f->build);
    cJSON_AddStringToObject(o, "git_rev", f->git_rev);
    return o;
}

// ----------------------------------------------------------------------------
// The baseline file

// The seeds of a baseline row that fine-tuned one backbone (its content hash; "" unknown: a
// built-in model, or a baseline written before backbones were recorded).
typedef struct {
    const char *hash; // borrowed
    int seeds;
    double mean, median, std;
    fprint fp;
} bsub;

typedef struct {
    const char *model, *method, *dataset, *metric; // borrowed from the baseline JSON
    char *axes;                                      // canonical JSON (owned)
    int examples, seeds;
    double mean, median, std, extra_sd;
    fprint fp;
    bsub *bb;           // (nbb >= 1) per backbone; owned
    int nbb;
    double backbone_sd; // tau: sd of a row's mean across backbones beyond its seeds (NaN: not estimated)
    int backbone_df;
} brow;

typedef struct {
    const char *id;
    double loss; // NaN: not recorded
} bcell;

typedef struct {
    cJSON *root;
    int legacy;          // a results.json: tolerance mode only
    const char *suite;   // borrowed ("" if none)
    brow *rows;
    int nrows;
    bcell *cells;        // sorted by id
    int ncells;
    int has_tol;         // legacy: a "tolerance" block with both numbers
    double tol_identical, tol_different;
    double rho;          // backbone_rho: correlation of two rows' backbone shifts (NaN: not estimated)
    int rho_df;
} baseline;

static void baseline_free(baseline *b) {
    for (int i = 0; i < b->nrows; i++) free(b->rows[i].axes), free(b->rows[i].bb);
    free(b->rows);
    free(b->cells);
    cJSON_Delete(b->root);
    memset(b, 0, sizeof *b);
}

static int cmp_bcell(const void *a, const void *b) { return strcmp(((const bcell *)a)->id, ((const bcell *)b)->id); }

typedef struct {
    const char *key;
    int idx;
} keyidx;
static int cmp_keyidx(const void *a, const void *b) {
    const keyidx *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

// A number field of object o at path "p.k": finite, in [lo, hi], an integer when integer.
static pb_status need_num(const cJSON *o, const char *k, double lo, double hi, int integer, double *out,
                          const char *file, const char *p, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi ||
        (integer && v->valuedouble != floor(v->valuedouble)))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.%s: expected %s in [%g, %g]%s", file, p, k,
                       integer ? "an integer" : "a finite number", lo, hi, v ? "" : " (missing)");
    *out = v->valuedouble;
    return PB_OK;
}

static pb_status need_str(const cJSON *o, const char *k, int nonempty, const char **out, const char *file,
                          const char *p, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v) || (nonempty && !v->valuestring[0]))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.%s: expected a%s string%s", file, p, k,
                       nonempty ? " non-empty" : "", v ? "" : " (missing)");
    *out = v->valuestring;
    return PB_OK;
}

// The "fingerprint" object of o (at path p) into f.
static pb_status need_fp(const cJSON *o, fprint *f, const char *file, const char *p, char *err, size_t errlen) {
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(o, "fingerprint");
    char fpp[96];
    snprintf(fpp, sizeof fpp, "%s.fingerprint", p);
    if (!cJSON_IsObject(fp))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected an object%s", file, fpp, fp ? "" : " (missing)");
    const char *s1 = "", *s2 = "", *s3 = "", *s4 = "";
    double v;
    pb_status st;
    if ((st = need_str(fp, "backend", 0, &s1, file, fpp, err, errlen)) ||
        (st = need_str(fp, "lapack", 0, &s2, file, fpp, err, errlen)) ||
        (st = need_str(fp, "build", 0, &s3, file, fpp, err, errlen)) ||
        (st = need_str(fp, "git_rev", 0, &s4, file, fpp, err, errlen)) ||
        (st = need_num(fp, "threads", -1, 1e6, 1, &v, file, fpp, err, errlen)))
        return st;
    snprintf(f->backend, sizeof f->backend, "%s", s1);
    snprintf(f->lapack, sizeof f->lapack, "%s", s2);
    snprintf(f->build, sizeof f->build, "%s", s3);
    snprintf(f->git_rev, sizeof f->git_rev, "%s", s4);
    f->threads = (int)v;
    return PB_OK;
}

// A row's optional "backbones" list (one entry per backbone its seeds fine-tuned) and
// "backbone_sd"; without them (a baseline of one backbone written before they were recorded) the
// row is one entry of unknown hash.
static pb_status load_backbones(const cJSON *r, brow *w, double lo, const char *file, const char *p, char *err,
                                size_t errlen) {
    pb_status st;
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(r, "backbones");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(r, "backbone_sd");
    w->backbone_sd = NAN;
    if (bs && !cJSON_IsNull(bs)) {
        double v;
        if ((st = need_num(r, "backbone_sd", 0, 200, 0, &v, file, p, err, errlen))) return st;
        w->backbone_sd = v;
        if ((st = need_num(r, "backbone_df", 1, 1e9, 1, &v, file, p, err, errlen))) return st;
        w->backbone_df = (int)v;
    }
    if (!bl) {
        w->nbb = 1;
        w->bb = pb_xcalloc(1, sizeof(bsub));
        w->bb[0] = (bsub){"", w->seeds, w->mean, w->median, w->std, w->fp};
        return PB_OK;
    }
    if (!cJSON_IsArray(bl) || cJSON_GetArraySize(bl) == 0)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.backbones: expected a non-empty list", file, p);
    w->nbb = cJSON_GetArraySize(bl);
    w->bb = pb_xcalloc((size_t)w->nbb, sizeof(bsub));
    int k = 0, seeds = 0;
    char q[96];
    for (const cJSON *e = bl->child; e; e = e->next, k++) {
        bsub *b = &w->bb[k];
        snprintf(q, sizeof q, "%s.backbones[%d]", p, k);
        if (!cJSON_IsObject(e)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected an object", file, q);
        double v;
        if ((st = need_str(e, "hash", 0, &b->hash, file, q, err, errlen)) ||
            (st = need_num(e, "seeds", 1, 1e6, 1, &v, file, q, err, errlen)))
            return st;
        b->seeds = (int)v;
        seeds += b->seeds;
        if ((st = need_num(e, "mean", lo, 100, 0, &b->mean, file, q, err, errlen)) ||
            (st = need_num(e, "median", lo, 100, 0, &b->median, file, q, err, errlen)) ||
            (st = need_num(e, "std", 0, 200, 0, &b->std, file, q, err, errlen)) ||
            (st = need_fp(e, &b->fp, file, q, err, errlen)))
            return st;
        for (int j = 0; j < k; j++)
            if (!strcmp(w->bb[j].hash, b->hash))
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.hash: '%s' again (as in backbones[%d])", file, q,
                               b->hash, j);
    }
    if (seeds != w->seeds)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.backbones: %d seeds in all, the row says %d", file, p, seeds,
                       w->seeds);
    return PB_OK;
}

// Reads and validates a baseline: every problem is one error naming the file and the field.
static pb_status baseline_load(const char *file, baseline *b, char *err, size_t errlen) {
    memset(b, 0, sizeof *b);
    pb_status st = pb_json_read_file(file, &b->root, err, errlen);
    if (st) return st;
    const cJSON *root = b->root;
    if (!cJSON_IsObject(root)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: expected a JSON object", file);
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    const cJSON *sj = cJSON_GetObjectItemCaseSensitive(root, "suite");
    b->suite = cJSON_IsString(sj) ? sj->valuestring : "";
    if (schema && !cJSON_IsString(schema))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: schema: expected a string", file);
    b->legacy = !schema || strcmp(schema->valuestring, BASELINE_SCHEMA);
    if (b->legacy && schema && strcmp(schema->valuestring, "peftbench.results/1"))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: schema: '%s' is neither %s (check --write-baseline) nor "
                       "peftbench.results/1 (a results.json)", file, schema->valuestring, BASELINE_SCHEMA);
    b->rho = NAN;
    const cJSON *rj = cJSON_GetObjectItemCaseSensitive(root, "backbone_rho");
    if (!b->legacy && rj && !cJSON_IsNull(rj)) {
        double v;
        if ((st = need_num(root, "backbone_rho", 0, 1, 0, &b->rho, file, "(top)", err, errlen)) ||
            (st = need_num(root, "backbone_rho_df", 1, 1e9, 1, &v, file, "(top)", err, errlen)))
            return st;
        b->rho_df = (int)v;
    }
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(root, "rows");
    if (!cJSON_IsArray(rows))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: rows: expected a list (is this a baseline or results.json?)", file);
    // A baseline that cannot fail is an error: no rows, or a row without a finite value.
    if (cJSON_GetArraySize(rows) == 0)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: rows: empty: nothing to check against", file);
    b->nrows = cJSON_GetArraySize(rows);
    b->rows = pb_xcalloc((size_t)b->nrows, sizeof(brow));
    int ri = 0;
    char p[64];
    for (const cJSON *r = rows->child; r; r = r->next, ri++) {
        brow *w = &b->rows[ri];
        snprintf(p, sizeof p, "rows[%d]", ri);
        if (!cJSON_IsObject(r)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected an object", file, p);
        double v;
        if (b->legacy) {
            const cJSON *med = cJSON_GetObjectItemCaseSensitive(r, "median");
            if (!cJSON_IsNumber(med) || !isfinite(med->valuedouble))
                return pb_errf(PB_ERR_FORMAT, err, errlen,
                               "%s: %s.median: expected a finite number (a failed cell in the baseline? "
                               "regenerate it from a run where every cell finished)", file, p);
            w->median = w->mean = med->valuedouble;
        }
        if ((st = need_str(r, "model", 1, &w->model, file, p, err, errlen)) ||
            (st = need_str(r, "method", 1, &w->method, file, p, err, errlen)) ||
            (st = need_str(r, "dataset", 1, &w->dataset, file, p, err, errlen)))
            return st;
        const cJSON *ax = cJSON_GetObjectItemCaseSensitive(r, "axes");
        if (ax && !cJSON_IsObject(ax))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.axes: expected an object", file, p);
        if (!b->legacy && !ax)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.axes: expected an object (missing)", file, p);
        w->axes = ax ? pb_json_canonical(ax) : pb_xstrdup("{}");
        if (b->legacy) continue;
        if ((st = need_str(r, "metric", 1, &w->metric, file, p, err, errlen))) return st;
        int sg = metric_signed(w->metric);
        if (sg < 0)
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: %s.metric: unknown metric '%s' (accuracy, f1, mcc, pearson, spearman)", file, p, w->metric);
        double lo = sg ? -100 : 0;
        if ((st = need_num(r, "examples", 1, 1e9, 1, &v, file, p, err, errlen))) return st;
        w->examples = (int)v;
        if ((st = need_num(r, "seeds", 1, 1e6, 1, &v, file, p, err, errlen))) return st;
        w->seeds = (int)v;
        if ((st = need_num(r, "mean", lo, 100, 0, &w->mean, file, p, err, errlen)) ||
            (st = need_num(r, "median", lo, 100, 0, &w->median, file, p, err, errlen)) ||
            (st = need_num(r, "std", 0, 200, 0, &w->std, file, p, err, errlen)) ||
            (st = need_num(r, "extra_sd", 0, 200, 0, &w->extra_sd, file, p, err, errlen)))
            return st;
        if ((st = need_fp(r, &w->fp, file, p, err, errlen))) return st;
        if ((st = load_backbones(r, w, lo, file, p, err, errlen))) return st;
    }
    // One row per (model, method, axes, dataset): a duplicate would be compared twice.
    {
        keyidx *ki = pb_xmalloc(sizeof(keyidx) * (size_t)b->nrows);
        char **keys = pb_xmalloc(sizeof(char *) * (size_t)b->nrows);
        for (int i = 0; i < b->nrows; i++) {
            const brow *w = &b->rows[i];
            size_t L = strlen(w->model) + strlen(w->method) + strlen(w->axes) + strlen(w->dataset) + 4;
            keys[i] = pb_xmalloc(L);
            snprintf(keys[i], L, "%s\x1f%s\x1f%s\x1f%s", w->model, w->method, w->axes, w->dataset);
            ki[i] = (keyidx){keys[i], i};
        }
        qsort(ki, (size_t)b->nrows, sizeof(keyidx), cmp_keyidx);
        int dup = -1, first = -1;
        for (int i = 1; i < b->nrows && dup < 0; i++)
            if (!strcmp(ki[i].key, ki[i - 1].key)) dup = ki[i].idx, first = ki[i - 1].idx;
        for (int i = 0; i < b->nrows; i++) free(keys[i]);
        free(keys);
        free(ki);
        if (dup >= 0)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: rows[%d]: the same model, method, axes and dataset as rows[%d]",
                           file, dup, first);
    }
    // Cells: ids and last training losses (exact mode compares them bit for bit).
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(root, "cells");
    if (cells && !cJSON_IsArray(cells)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: cells: expected a list", file);
    int nc = cells ? cJSON_GetArraySize(cells) : 0;
    b->cells = pb_xcalloc((size_t)(nc ? nc : 1), sizeof(bcell));
    int ci = 0;
    for (const cJSON *c = cells ? cells->child : NULL; c; c = c->next, ci++) {
        snprintf(p, sizeof p, "cells[%d]", ci);
        if (!cJSON_IsObject(c)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected an object", file, p);
        const char *id;
        if ((st = need_str(c, "id", 1, &id, file, p, err, errlen))) return st;
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "train_loss_last");
        if (l && !cJSON_IsNumber(l) && !cJSON_IsNull(l))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.train_loss_last: expected a number or null", file, p);
        b->cells[b->ncells++] = (bcell){id, cJSON_IsNumber(l) ? l->valuedouble : NAN};
    }
    if (b->ncells) qsort(b->cells, (size_t)b->ncells, sizeof(bcell), cmp_bcell);
    if (b->legacy) {
        const cJSON *tb = cJSON_GetObjectItemCaseSensitive(root, "tolerance");
        for (const cJSON *t = tb ? tb->child : NULL; t; t = t->next)
            if ((!strcmp(t->string, "identical") || !strcmp(t->string, "different_numerics")) &&
                !(cJSON_IsNumber(t) && isfinite(t->valuedouble) && t->valuedouble >= 0))
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tolerance.%s: expected a finite number >= 0", file,
                               t->string);
        const cJSON *ti = cJSON_GetObjectItemCaseSensitive(tb, "identical");
        const cJSON *td = cJSON_GetObjectItemCaseSensitive(tb, "different_numerics");
        if (cJSON_IsNumber(ti) && cJSON_IsNumber(td)) {
            b->has_tol = 1;
            b->tol_identical = ti->valuedouble;
            b->tol_different = td->valuedouble;
        }
    }
    return PB_OK;
}

static const bcell *baseline_cell(const baseline *b, const char *id) {
    bcell key = {id, 0};
    return b->ncells ? bsearch(&key, b->cells, (size_t)b->ncells, sizeof(bcell), cmp_bcell) : NULL;
}

// ----------------------------------------------------------------------------
// Noise: the seed spread beyond the sampling term, pooled per (model, method)

// Pooled excess variance (points^2) of the aggregates of one model and method over rows with
// 2+ seeds: sum (k-1)(s^2 - V_sampling) / sum (k-1), floored at 0. *df receives sum (k-1)
// (0: no row has seeds to estimate from).
static double excess_var(const pb_agg *A, int na, const char *model, const char *method, int *df) {
    double num = 0;
    int d = 0;
    for (int i = 0; i < na; i++) {
        const pb_agg *g = &A[i];
        if (g->n < 2 || strcmp(g->model, model) || strcmp(g->method, method) || g->n_eval <= 0) continue;
        double vs = pb_check_metric_var(g->metric, g->mean, g->n_eval);
        if (!isfinite(vs) || !isfinite(g->std)) continue;
        num += (g->n - 1) * (g->std * g->std - vs);
        d += g->n - 1;
    }
    *df = d;
    return d && num > 0 ? num / d : 0;
}

// ----------------------------------------------------------------------------
// The comparison

enum { M_EXACT = 1, M_STAT, M_TOL };
static const char *mode_name(int m) { return m == M_EXACT ? "exact" : m == M_STAT ? "stat" : "tol"; }

// How the current row's backbone relates to the baseline row's (cells' backbone_hash).
enum {
    BB_UNKNOWN = 0, // a hash is not recorded on one side (built-in model: the seed draws it): pooled seeds
    BB_SAME,        // this run fine-tuned one of the baseline's backbones: compared with its seeds only
    BB_OTHER,       // another backbone: the pooled baseline, and the backbone term in the SE
};

typedef struct {
    const brow *b;
    const pb_agg *g;   // the current row (NULL: missing)
    int mode;
    int bbstate;          // BB_*
    const bsub *sub;      // BB_SAME: the baseline backbone compared with; else NULL (the whole row)
    int ncb;              // backbones among the current row's cells
    double bv, cv, delta; // compared values (points) and cv - bv
    double se, thr, mdd;  // statistical: SE of the difference, flag threshold, minimum detectable drop
    double sew, bbsd;     // se^2 = sew^2 + bbsd^2: seeds and sampling; the backbone term (0 unless BB_OTHER)
    int k;                // current ok seeds
    const char *status;
    int fail;
    char note[200];
} rres;

typedef struct {
    char model[64], method[64]; // "" model: the suite-level average
    int m;                      // rows averaged
    double bv, cv, delta, se, thr, mdd;
    const char *status;
    int fail;
} avg;

// The per-seed variance of one side: sampling term on n examples plus the excess seed spread.
static double side_var(const char *metric, double v, int n, double extra_sd) {
    return pb_check_metric_var(metric, v, n) + extra_sd * extra_sd;
}

typedef struct {
    avg *a;
    int n;
} avgs;

// Groups statistical rows by (model, method) and over the suite; threshold z, power term zp.
// rho: the correlation of two rows' backbone shifts (the baseline's backbone_rho; 1 when unknown,
// the Cauchy-Schwarz bound).
static void averages_compute(const rres *rr, int nr, double alpha, double zp, double rho, avgs *out) {
    out->a = pb_xcalloc((size_t)nr + 1, sizeof(avg));
    out->n = 0;
    for (int i = 0; i < nr; i++) {
        if (rr[i].mode != M_STAT || !rr[i].g || !isfinite(rr[i].se)) continue;
        int j = 0;
        while (j < out->n && (strcmp(out->a[j].model, rr[i].b->model) || strcmp(out->a[j].method, rr[i].b->method))) j++;
        if (j == out->n) {
            snprintf(out->a[j].model, sizeof out->a[j].model, "%s", rr[i].b->model);
            snprintf(out->a[j].method, sizeof out->a[j].method, "%s", rr[i].b->method);
            out->n++;
        }
    }
    int groups = out->n;
    if (groups > 1) out->n++; // the suite-level average: model "" (every statistical row)
    double z = pb_check_norm_quantile(1 - alpha / (out->n ? out->n : 1));
    for (int j = 0; j < out->n; j++) {
        avg *a = &out->a[j];
        double sb = 0, sc = 0, v = 0, bsum = 0, b2 = 0;
        for (int i = 0; i < nr; i++) {
            if (rr[i].mode != M_STAT || !rr[i].g || !isfinite(rr[i].se)) continue;
            if (j < groups && (strcmp(a->model, rr[i].b->model) || strcmp(a->method, rr[i].b->method))) continue;
            sb += rr[i].bv;
            sc += rr[i].cv;
            v += rr[i].sew * rr[i].sew;
            bsum += rr[i].bbsd;
            b2 += rr[i].bbsd * rr[i].bbsd;
            a->m++;
        }
        a->bv = sb / a->m;
        a->cv = sc / a->m;
        a->delta = a->cv - a->bv;
        // Seed and sampling noise is independent across cells; a backbone shifts every row it
        // carries, two rows' shifts correlated by rho (equicorrelation):
        // Var(sum) = (1 - rho) sum sd^2 + rho (sum sd)^2.
        a->se = sqrt(v + (1 - rho) * b2 + rho * bsum * bsum) / a->m;
        a->thr = z * a->se;
        a->mdd = (z + zp) * a->se;
        a->fail = -a->delta > a->thr;
        a->status = a->fail ? "REGRESSION" : "ok";
    }
}

// The name of (model, method) average j in a summary line: "method", or "model method" when the
// averages span several models (a mixed image + text suite, or ViT-B and ViT-L).
static const char *avg_name(const avgs *av, int j, char *buf, size_t n) {
    int multi = 0;
    for (int k = 0; k < av->n; k++)
        if (av->a[k].model[0] && strcmp(av->a[k].model, av->a[j].model)) multi = 1;
    if (!multi) return av->a[j].method;
    snprintf(buf, n, "%s %s", av->a[j].model, av->a[j].method);
    return buf;
}

static void fmt2(char *o, size_t n, double v, const char *fmt) {
    if (isfinite(v)) snprintf(o, n, fmt, v);
    else snprintf(o, n, "-");
}

// JUnit XML: one testcase per baseline row and per average; failures carry the numbers.
static pb_status write_junit(const char *path, const char *suite, const char *bfile, const rres *rr, int nr,
                             const avgs *av, char *err, size_t errlen) {
    int fails = 0;
    for (int i = 0; i < nr; i++) fails += rr[i].fail;
    for (int j = 0; j < av->n; j++) fails += av->a[j].fail;
    sbuf s = {0};
    sb_printf(&s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"peftbench check\" tests=\"%d\" "
                  "failures=\"%d\" errors=\"0\">\n", nr + av->n, fails);
    sb_printf(&s, "  <testsuite name=\"");
    xml_text(&s, suite[0] ? suite : "results");
    sb_printf(&s, "\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"0\">\n    <properties>\n"
                  "      <property name=\"baseline\" value=\"", nr + av->n, fails);
    xml_text(&s, bfile);
    sb_printf(&s, "\"/>\n    </properties>\n");
    for (int i = 0; i < nr; i++) {
        const rres *r = &rr[i];
        char label[256], name[600];
        pb_axes_label(r->b->axes, label, sizeof label);
        snprintf(name, sizeof name, "%s%s%s", r->b->dataset, label[0] ? " " : "", label);
        sb_printf(&s, "    <testcase classname=\"");
        xml_text(&s, suite[0] ? suite : "results");
        sb_put(&s, ".", 1);
        xml_text(&s, r->b->model);
        sb_put(&s, ".", 1);
        xml_text(&s, r->b->method);
        sb_printf(&s, "\" name=\"");
        xml_text(&s, name);
        sb_printf(&s, "\" time=\"0\"");
        if (!r->fail) {
            sb_printf(&s, "/>\n");
            continue;
        }
        char b1[32], b2[32], b3[32], b4[32], b5[32];
        fmt2(b1, sizeof b1, r->bv, "%.2f");
        fmt2(b2, sizeof b2, r->cv, "%.2f");
        fmt2(b3, sizeof b3, r->delta, "%+.2f");
        fmt2(b4, sizeof b4, r->thr, "%.2f");
        fmt2(b5, sizeof b5, r->se, "%.2f");
        char msg[1024];
        snprintf(msg, sizeof msg, "%s (%s mode): baseline %s, ours %s, delta %s points; flagged beyond a drop of %s "
                 "(SE %s)%s%s", r->status, mode_name(r->mode), b1, b2, b3, b4, b5, r->note[0] ? "; " : "", r->note);
        sb_printf(&s, ">\n      <failure type=\"%s\" message=\"", r->mode == M_EXACT ? "changed" : "regression");
        xml_text(&s, msg);
        sb_printf(&s, "\">");
        xml_text(&s, msg);
        sb_printf(&s, "</failure>\n    </testcase>\n");
    }
    for (int j = 0; j < av->n; j++) {
        const avg *a = &av->a[j];
        sb_printf(&s, "    <testcase classname=\"");
        xml_text(&s, suite[0] ? suite : "results");
        sb_printf(&s, ".averages\" name=\"");
        if (a->model[0]) {
            xml_text(&s, a->model);
            sb_put(&s, " ", 1);
            xml_text(&s, a->method);
        } else {
            sb_printf(&s, "suite");
        }
        sb_printf(&s, " average\" time=\"0\"");
        if (!a->fail) {
            sb_printf(&s, "/>\n");
            continue;
        }
        char msg[512];
        snprintf(msg, sizeof msg, "REGRESSION: average of %d rows: baseline %.2f, ours %.2f, delta %+.2f points; "
                 "flagged beyond a drop of %.2f (SE %.2f, minimum detectable drop %.2f)", a->m, a->bv, a->cv, a->delta,
                 a->thr, a->se, a->mdd);
        sb_printf(&s, ">\n      <failure type=\"regression\" message=\"");
        xml_text(&s, msg);
        sb_printf(&s, "\">");
        xml_text(&s, msg);
        sb_printf(&s, "</failure>\n    </testcase>\n");
    }
    sb_printf(&s, "  </testsuite>\n</testsuites>\n");
    pb_status st = pb_write_file_atomic(path, s.b, s.n, err, errlen);
    free(s.b);
    return st;
}

// Markdown for a pull-request comment: verdict, the averages, the failed rows, every row folded.
static pb_status write_markdown(const char *path, const char *suite, const char *bfile, const char *modeline,
                                const rres *rr, int nr, const avgs *av, int bad, char *err, size_t errlen) {
    sbuf s = {0};
    sb_printf(&s, "### peftbench check: ");
    md_text(&s, suite[0] ? suite : "results");
    sb_printf(&s, " — %s\n\n", bad ? "**FAIL**" : "**pass**");
    sb_printf(&s, "Baseline ");
    md_text(&s, bfile);
    sb_printf(&s, ". ");
    md_text(&s, modeline);
    sb_printf(&s, "\n\n");
    if (av->n) {
        sb_printf(&s, "| Average | Rows | Baseline | Ours | Δ | Flagged below | Min. detectable drop | Status |\n"
                      "|---|---|---|---|---|---|---|---|\n");
        for (int j = 0; j < av->n; j++) {
            const avg *a = &av->a[j];
            sb_printf(&s, "| ");
            if (a->model[0]) {
                md_text(&s, a->method);
                sb_printf(&s, " (");
                md_text(&s, a->model);
                sb_printf(&s, ")");
            } else {
                sb_printf(&s, "**suite**");
            }
            sb_printf(&s, " | %d | %.2f | %.2f | %+.2f | −%.2f | %.2f | %s |\n", a->m, a->bv, a->cv, a->delta, a->thr,
                      a->mdd, a->fail ? "**REGRESSION**" : "ok");
        }
        sb_printf(&s, "\n");
    }
    for (int pass = 0; pass < 2; pass++) {
        int cnt = 0;
        for (int i = 0; i < nr; i++) cnt += pass || rr[i].fail;
        if (pass == 0) {
            if (!cnt) {
                sb_printf(&s, "No row failed.\n\n");
                continue;
            }
            sb_printf(&s, "Failed rows (%d):\n\n", cnt);
        } else {
            sb_printf(&s, "<details><summary>All %d rows</summary>\n\n", nr);
        }
        sb_printf(&s, "| Model | Method | Axes | Dataset | Baseline | Ours | Δ | Mode | Flagged below | Status |\n"
                      "|---|---|---|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < nr; i++) {
            const rres *r = &rr[i];
            if (!pass && !r->fail) continue;
            char label[256], b1[32], b2[32], b3[32], b4[32];
            pb_axes_label(r->b->axes, label, sizeof label);
            fmt2(b1, sizeof b1, r->bv, "%.2f");
            fmt2(b2, sizeof b2, r->cv, "%.2f");
            fmt2(b3, sizeof b3, r->delta, "%+.2f");
            if (r->mode == M_EXACT) snprintf(b4, sizeof b4, "any change");
            else fmt2(b4, sizeof b4, -r->thr, "%.2f");
            sb_printf(&s, "| ");
            md_text(&s, r->b->model);
            sb_printf(&s, " | ");
            md_text(&s, r->b->method);
            sb_printf(&s, " | ");
            md_text(&s, label[0] ? label : "-");
            sb_printf(&s, " | ");
            md_text(&s, r->b->dataset);
            sb_printf(&s, " | %s | %s | %s | %s | %s | ", b1, b2, b3, mode_name(r->mode), b4);
            if (r->fail) sb_printf(&s, "**");
            md_text(&s, r->status);
            if (r->fail) sb_printf(&s, "**");
            if (r->note[0]) {
                sb_printf(&s, ": ");
                md_text(&s, r->note);
            }
            sb_printf(&s, " |\n");
        }
        sb_printf(&s, pass ? "\n</details>\n" : "\n");
    }
    pb_status st = pb_write_file_atomic(path, s.b, s.n, err, errlen);
    free(s.b);
    return st;
}

// The aggregate of A matching baseline row b, or NULL.
static const pb_agg *find_agg(const pb_agg *A, int na, const char *model, const char *method, const char *axes,
                              const char *dataset) {
    for (int i = 0; i < na; i++)
        if (!strcmp(A[i].model, model) && !strcmp(A[i].method, method) && !strcmp(A[i].dataset, dataset) &&
            !strcmp(A[i].axes, axes))
            return &A[i];
    return NULL;
}

// Exact mode on one row: same seeds, same values, every cell's last training loss bit for bit
// (against the seeds of the baseline backbone this run fine-tuned).
static void exact_row(rres *r, const baseline *B, const pb_record *R, int n) {
    const pb_agg *g = r->g;
    int seeds = r->sub ? r->sub->seeds : r->b->seeds;
    double mean = r->sub ? r->sub->mean : r->b->mean, median = r->sub ? r->sub->median : r->b->median;
    if (r->bbstate == BB_OTHER) {
        snprintf(r->note, sizeof r->note, "another backbone than the baseline's although the fingerprint matches");
    } else if (g->n != seeds) {
        snprintf(r->note, sizeof r->note, "%d finished seed(s), the baseline has %d", g->n, seeds);
    } else if (fabs(g->mean - mean) > EPS_POINTS || fabs(g->median - median) > EPS_POINTS) {
        snprintf(r->note, sizeof r->note, "the score differs although the fingerprint matches");
    } else {
        for (int i = 0; i < n; i++) {
            const pb_record *q = &R[i];
            if (strcmp(q->model, g->model) || strcmp(q->method, g->method) || strcmp(q->dataset, g->dataset) ||
                strcmp(q->axes, g->axes) || strcmp(q->status, "ok"))
                continue;
            const bcell *c = baseline_cell(B, q->id);
            if (!c) {
                snprintf(r->note, sizeof r->note, "cell %s is not in the baseline (another config)", q->id);
                break;
            }
            if (!(c->loss == q->loss_last)) {
                snprintf(r->note, sizeof r->note, "cell %s: last training loss %.17g, baseline %.17g", q->id,
                         q->loss_last, c->loss);
                break;
            }
        }
    }
    if (r->note[0]) {
        r->status = "CHANGED";
        r->fail = 1;
    }
}

// Classifies the backbone of r's current cells against its baseline row (r->bbstate, r->sub,
// r->ncb): the distinct backbone hashes among the row's ok cells of R.
static void backbone_classify(rres *r, const pb_record *R, int n) {
    const pb_agg *g = r->g;
    const char *first = NULL, *seen[64]; // the row's distinct hashes (its seeds: a few)
    int unknown = 0;
    r->ncb = 0;
    r->sub = NULL;
    r->bbstate = BB_UNKNOWN;
    for (int i = 0; i < n && g; i++) {
        const pb_record *q = &R[i];
        if (strcmp(q->model, g->model) || strcmp(q->method, g->method) || strcmp(q->dataset, g->dataset) ||
            strcmp(q->axes, g->axes) || strcmp(q->status, "ok"))
            continue;
        if (!q->backbone[0]) unknown = 1;
        int j = 0;
        while (j < r->ncb && strcmp(seen[j], q->backbone)) j++;
        if (j == r->ncb && r->ncb < 64) seen[r->ncb++] = q->backbone; // (counted up to 64)
        if (!first) first = q->backbone;
    }
    if (r->ncb == 0) r->ncb = 1;
    int known = r->b->nbb > 0;
    for (int j = 0; j < r->b->nbb; j++) known &= r->b->bb[j].hash[0] != 0;
    if (!first || unknown || !known) {
        // the whole row; one baseline entry (its fingerprint) when there is one
        if (r->b->nbb == 1) r->sub = &r->b->bb[0];
        return;
    }
    if (r->ncb == 1)
        for (int j = 0; j < r->b->nbb; j++)
            if (!strcmp(r->b->bb[j].hash, first)) {
                r->bbstate = BB_SAME;
                r->sub = &r->b->bb[j];
                return;
            }
    r->bbstate = BB_OTHER;
}

// Says which backbone the rows fine-tuned: the baseline's (compared with its seeds), another one
// (with the backbone term, or the warning that the baseline cannot model it), or unrecorded.
static void backbone_report(const rres *rr, int nr, double rho, int rho_df, FILE *out) {
    int same = 0, other = 0, untau = 0, kmin = 1 << 30, kmax = 0;
    char hb[8 * 24] = ""; // the distinct backbones of the BB_SAME rows (one per model of the suite)
    for (int i = 0; i < nr; i++) {
        const rres *r = &rr[i];
        if (!r->g || !r->g->n) continue;
        if (r->bbstate == BB_SAME) {
            same++;
            if (!strstr(hb, r->sub->hash) && strlen(hb) + strlen(r->sub->hash) + 3 < sizeof hb)
                snprintf(hb + strlen(hb), sizeof hb - strlen(hb), "%s%s", hb[0] ? ", " : "", r->sub->hash);
        }
        if (r->bbstate != BB_OTHER) continue;
        other++;
        untau += !isfinite(r->b->backbone_sd);
        kmin = PB_MIN(kmin, r->b->nbb);
        kmax = PB_MAX(kmax, r->b->nbb);
    }
    if (same)
        fprintf(out, "backbone: %d row(s) fine-tuned the baseline's backbone%s %s: each row compared with its "
                     "backbone's seeds\n", same, strchr(hb, ',') ? "s" : "", hb);
    if (!other) return;
    fprintf(out, "backbone: %d row(s) fine-tuned another backbone than the baseline's %d", other, kmin);
    if (kmax > kmin) fprintf(out, "-%d", kmax);
    fprintf(out, " (pretrained on another kernel or from another seed)");
    if (other > untau) {
        fprintf(out, ": their SE includes the backbone term tau*sqrt(1/Kb + 1/Kc), tau (rms over rows) per method:");
#define BB_ROW(k) (rr[k].bbstate == BB_OTHER && isfinite(rr[k].b->backbone_sd))
#define SAME_METHOD(k, r) (!strcmp(rr[k].b->model, (r)->b->model) && !strcmp(rr[k].b->method, (r)->b->method))
        int printed = 0;
        for (int i = 0; i < nr; i++) {
            const rres *r = &rr[i];
            int first = BB_ROW(i);
            for (int j = 0; j < i && first; j++) first = !(BB_ROW(j) && SAME_METHOD(j, r));
            if (!first) continue;
            double q = 0; // rms over the method's rows on another backbone
            int c = 0;
            for (int k = 0; k < nr; k++)
                if (BB_ROW(k) && SAME_METHOD(k, r)) q += rr[k].b->backbone_sd * rr[k].b->backbone_sd, c++;
            fprintf(out, "%s %s %.2f", printed++ ? "," : "", r->b->method, sqrt(q / c));
        }
#undef BB_ROW
#undef SAME_METHOD
        if (rho_df)
            fprintf(out, "; averages with two rows' shifts correlated by rho %.2f (the baseline's estimate, %d df)", rho,
                    rho_df);
        else
            fprintf(out, "; averages with two rows' shifts correlated by rho 1.00 (the bound: the baseline has no "
                         "estimate)");
    }
    fprintf(out, "\n");
    if (untau)
        fprintf(out, "backbone: WARNING: %d of these rows have a baseline of one backbone: the backbone's shift is not in "
                     "their noise model (write the baseline from 2+ backbones: run --pretrain-seed N, then check DIR1 "
                     "DIR2 ... --write-baseline; docs/regression.md)\n", untau);
}

pb_status pb_check_run(const char *dir, const char *bfile, const pb_check_opts *o, FILE *out, int *bad, char *err,
                       size_t errlen) {
    *bad = 0;
    if (!(o->alpha > 0 && o->alpha < 1) || !(o->power > 0 && o->power < 1))
        return pb_errf(PB_ERR_ARG, err, errlen, "alpha and power must lie in (0, 1)");
    baseline B;
    pb_status st = baseline_load(bfile, &B, err, errlen);
    if (st) {
        baseline_free(&B);
        return st;
    }
    pb_record *R = NULL;
    int n = 0;
    pb_skips sk = {0};
    if ((st = pb_results_load(dir, &R, &n, &sk, err, errlen))) {
        baseline_free(&B);
        return st;
    }
    // skipped cells are not results: their rows show up as MISSING below
    pb_skips_print(&sk, "check", out);
    pb_skips_free(&sk);
    pb_agg *A = NULL;
    int na = 0;
    pb_aggregate(R, n, &A, &na, NULL, NULL);

    // Tolerance for a legacy baseline without --tol: its "tolerance" block, chosen by whether this
    // run reproduces every baseline cell's last training loss bit for bit; else 1.0 point.
    double tol = o->tol;
    if (B.legacy && tol < 0) {
        if (B.has_tol) {
            int compared = 0, same = 0;
            for (int i = 0; i < n; i++) {
                const bcell *c = baseline_cell(&B, R[i].id);
                if (!c || !isfinite(c->loss)) continue;
                compared++;
                same += R[i].loss_last == c->loss;
            }
            int identical = compared > 0 && same == compared;
            tol = identical ? B.tol_identical : B.tol_different;
            fprintf(out, "numerics: %d of %d cells reproduce the baseline's training loss bit for bit -> %s, tolerance "
                         "%.2f points\n", same, compared,
                    identical ? "identical" : "different numerics (other CPU/BLAS/threads/build)", tol);
        } else {
            tol = 1.0;
        }
    }

    rres *rr = pb_xcalloc((size_t)B.nrows, sizeof(rres));
    int nstat = 0, nexact = 0, ntol = 0;
    char fpwhy[160] = "";
    for (int i = 0; i < B.nrows; i++) {
        rres *r = &rr[i];
        r->b = &B.rows[i];
        r->g = find_agg(A, na, r->b->model, r->b->method, r->b->axes, r->b->dataset);
        if (!B.legacy) backbone_classify(r, R, n);
        r->bv = B.legacy ? r->b->median : r->sub ? r->sub->mean : r->b->mean;
        r->cv = r->delta = r->se = r->thr = r->mdd = NAN;
        r->status = "ok";
        if (B.legacy || tol >= 0) {
            r->mode = M_TOL;
        } else if (o->mode == PB_CHECK_EXACT) {
            r->mode = M_EXACT;
        } else if (o->mode == PB_CHECK_STAT) {
            r->mode = M_STAT;
        } else if (r->g && r->g->n) {
            fprint cur;
            char why[160];
            fp_from_agg(r->g, &cur);
            fp_diff(r->sub ? &r->sub->fp : &r->b->fp, &cur, why, sizeof why);
            r->mode = why[0] ? M_STAT : M_EXACT;
            if (why[0] && !fpwhy[0]) snprintf(fpwhy, sizeof fpwhy, "%s", why);
        } else {
            r->mode = M_STAT;
        }
        nstat += r->mode == M_STAT;
        nexact += r->mode == M_EXACT;
        ntol += r->mode == M_TOL;
    }
    double zp = pb_check_norm_quantile(o->power);
    double zrow = pb_check_norm_quantile(1 - o->alpha / (nstat ? nstat : 1));
    // The current run's excess seed spread per (model, method), where it has seeds to show it;
    // elsewhere the baseline's is assumed.
    for (int i = 0; i < B.nrows; i++) {
        rres *r = &rr[i];
        const pb_agg *g = r->g;
        if (!g || g->n == 0) {
            r->status = g ? "FAILED (no finished seed)" : "MISSING";
            r->fail = 1;
            continue;
        }
        r->k = g->n;
        r->cv = r->mode == M_TOL && B.legacy ? g->median : g->mean;
        if (!isfinite(r->cv)) { // NaN compares false below: it must not pass as "ok"
            r->status = "NOT FINITE";
            r->fail = 1;
            continue;
        }
        r->delta = r->cv - r->bv;
        if (r->mode == M_TOL) {
            r->thr = tol;
            // (EPS_POINTS: results store values as printed decimals, so an identical result can
            // read back a few ulps below the baseline.)
            if (r->cv < r->bv - tol - EPS_POINTS) r->status = "REGRESSION", r->fail = 1;
            continue;
        }
        // The statistical comparison, for every row of a baseline with counts (exact rows use it
        // only to say what another kernel could detect).
        int df = 0;
        double ev = excess_var(A, na, g->model, g->method, &df);
        double csd = df ? sqrt(ev) : r->b->extra_sd;
        int cn = g->n_eval > 0 ? g->n_eval : r->b->examples;
        double vc = side_var(r->b->metric, r->cv, cn, csd), vbm = 0; // vbm: variance of the baseline's mean
        if (r->sub) {
            vbm = side_var(r->b->metric, r->bv, r->b->examples, r->b->extra_sd) / r->sub->seeds;
        } else { // the mean of the backbones' means
            for (int j = 0; j < r->b->nbb; j++)
                vbm += side_var(r->b->metric, r->b->bb[j].mean, r->b->examples, r->b->extra_sd) / r->b->bb[j].seeds;
            vbm /= (double)r->b->nbb * r->b->nbb;
        }
        r->sew = sqrt(vbm + vc / g->n);
        r->bbsd = 0;
        if (!r->sub && isfinite(r->b->backbone_sd)) // another (or an unrecorded) backbone
            r->bbsd = r->b->backbone_sd * sqrt(1.0 / r->b->nbb + 1.0 / r->ncb);
        r->se = sqrt(r->sew * r->sew + r->bbsd * r->bbsd);
        if (r->mode == M_EXACT) {
            r->thr = 0;
            r->mdd = !strcmp(r->b->metric, "accuracy") ? 100.0 / r->b->examples : NAN; // one example
            exact_row(r, &B, R, n);
            continue;
        }
        if (!isfinite(r->se)) {
            r->status = "NO STATS";
            r->fail = 1;
            snprintf(r->note, sizeof r->note, "no sampling error for metric %s on %d examples", r->b->metric, cn);
            continue;
        }
        if (strcmp(g->metric, r->b->metric) && g->metric[0])
            snprintf(r->note, sizeof r->note, "metric %s, the baseline's %s", g->metric, r->b->metric);
        r->thr = zrow * r->se;
        r->mdd = (zrow + zp) * r->se;
        if (-r->delta > r->thr) r->status = "REGRESSION", r->fail = 1;
    }
    avgs av;
    double rho = isfinite(B.rho) ? B.rho : 1;
    averages_compute(rr, B.nrows, o->alpha, zp, rho, &av);

    // The report.
    char modeline[600];
    if (B.legacy)
        snprintf(modeline, sizeof modeline, "legacy baseline (a results.json): tolerance mode, %.2f points", tol);
    else if (ntol)
        snprintf(modeline, sizeof modeline, "--tol %.2f: tolerance mode on every row", tol);
    else
        snprintf(modeline, sizeof modeline, "mode: %d exact (fingerprint matches), %d statistical%s%s%s", nexact, nstat,
                 fpwhy[0] ? " (fingerprint differs: " : "", fpwhy, fpwhy[0] ? ")" : "");
    int nother = 0, nsame = 0;
    for (int i = 0; i < B.nrows; i++) nother += rr[i].bbstate == BB_OTHER, nsame += rr[i].bbstate == BB_SAME;
    if (!B.legacy && !ntol && (nother || nsame)) {
        size_t L = strlen(modeline);
        snprintf(modeline + L, sizeof modeline - L, "; backbone: %d row(s) on the baseline's, %d on another (SE with "
                 "the backbone term)", nsame, nother);
    }
    if (!B.legacy) {
        fprintf(out, "baseline %s: suite %s, %d rows; %s\n", bfile, B.suite[0] ? B.suite : "?", B.nrows, modeline);
        if (B.nrows) {
            const fprint *f = &B.rows[0].fp;
            fprintf(out, "baseline engine: %s; lapack %s; build %s; git %s\n", f->backend, f->lapack, f->build, f->git_rev);
        }
        if (na) {
            fprint f;
            fp_from_agg(&A[0], &f);
            fprintf(out, "this run:        %s; lapack %s; build %s; git %s\n", f.backend, f.lapack, f.build, f.git_rev);
        }
        backbone_report(rr, B.nrows, isfinite(B.rho) ? B.rho : 1, isfinite(B.rho) ? B.rho_df : 0, out);
        if (nstat)
            fprintf(out, "statistical: drop > z*SE, SE^2 = Vb/kb + Vc/kc [+ tau^2 (1/Kb + 1/Kc) on another backbone] (V: "
                         "sampling variance of the metric on n examples + excess seed spread^2; k seeds; tau: the "
                         "baseline's backbone spread over K backbones); one-sided, Bonferroni at alpha %g per family: rows "
                         "z = %.2f, averages z = %.2f; minimum detectable drop at %.0f%% power = (z + %.2f) SE\n",
                    o->alpha, zrow, av.n ? pb_check_norm_quantile(1 - o->alpha / av.n) : NAN, 100 * o->power, zp);
    }
    int mw = 12; // the model column fits the longest label ("roberta-tiny-mlm")
    for (int i = 0; i < B.nrows; i++) mw = PB_MAX(mw, (int)strlen(B.rows[i].model));
    fprintf(out, "%-*s %-20s %-24s %-20s %9s %9s %8s %5s %7s %6s  %s\n", mw, "model", "method", "axes", "dataset",
            "baseline", "ours", "delta", "mode", "flag-at", "MDD", "status");
    double z2 = 0;
    int nz = 0;
    for (int i = 0; i < B.nrows; i++) {
        const rres *r = &rr[i];
        char label[256], b1[32], b2[32], b3[32], b4[32], b5[32];
        pb_axes_label(r->b->axes, label, sizeof label);
        fmt2(b1, sizeof b1, r->bv, "%.2f");
        fmt2(b2, sizeof b2, r->cv, "%.2f");
        fmt2(b3, sizeof b3, r->delta, "%+.2f");
        if (r->mode == M_EXACT) snprintf(b4, sizeof b4, "any");
        else fmt2(b4, sizeof b4, -r->thr, "%.2f");
        fmt2(b5, sizeof b5, r->mode == M_TOL ? r->thr : r->mdd, "%.2f");
        fprintf(out, "%-*s %-20s %-24s %-20s %9s %9s %8s %5s %7s %6s  %s%s%s\n", mw, r->b->model, r->b->method,
                label[0] ? label : "-", r->b->dataset, b1, b2, b3, mode_name(r->mode), b4, b5, r->status,
                r->note[0] ? ": " : "", r->note);
        if (r->mode == M_STAT && isfinite(r->delta) && r->se > 0) z2 += (r->delta / r->se) * (r->delta / r->se), nz++;
    }
    int avbad = 0;
    if (av.n) {
        fprintf(out, "\naverages over the statistical rows (a regression of a method on every task shows here):\n");
        fprintf(out, "%-*s %-20s %5s %9s %9s %8s %7s %6s  %s\n", mw, "model", "method", "rows", "baseline", "ours",
                "delta", "flag-at", "MDD", "status");
        for (int j = 0; j < av.n; j++) {
            const avg *a = &av.a[j];
            fprintf(out, "%-*s %-20s %5d %9.2f %9.2f %+8.2f %7.2f %6.2f  %s\n", mw, a->model[0] ? a->model : "(suite)",
                    a->model[0] ? a->method : "(all)", a->m, a->bv, a->cv, a->delta, -a->thr, a->mdd, a->status);
            avbad += a->fail;
        }
        double lo = INFINITY, hi = 0;
        char lom[140] = "", him[140] = "", nm[140];
        for (int j = 0; j < av.n; j++)
            if (av.a[j].model[0]) {
                if (av.a[j].mdd < lo) lo = av.a[j].mdd, snprintf(lom, sizeof lom, "%s", avg_name(&av, j, nm, sizeof nm));
                if (av.a[j].mdd > hi) hi = av.a[j].mdd, snprintf(him, sizeof him, "%s", avg_name(&av, j, nm, sizeof nm));
            }
        const avg *suite = av.n > 1 ? &av.a[av.n - 1] : &av.a[0];
        fprintf(out, "minimum detectable drop (%.0f%% power): suite average %.2f points; per-method averages %.2f (%s) "
                     "to %.2f (%s)",
                100 * o->power, suite->mdd, lo, lom, hi, him);
        double rlo = INFINITY, rhi = 0;
        for (int i = 0; i < B.nrows; i++)
            if (rr[i].mode == M_STAT && isfinite(rr[i].mdd)) rlo = PB_MIN(rlo, rr[i].mdd), rhi = PB_MAX(rhi, rr[i].mdd);
        if (isfinite(rlo)) fprintf(out, "; rows %.2f to %.2f", rlo, rhi);
        fprintf(out, "\n");
        if (nz)
            fprintf(out, "spread: rms(delta / SE) over %d statistical rows = %.2f (about 1 when the run differs like "
                         "another seed; well below 1 for a kernel change)\n", nz, sqrt(z2 / nz));
    }
    if (nexact) {
        fprintf(out, "exact: %d rows with the baseline's fingerprint: any change of a score or training loss fails "
                     "(one test example is %.2f points)\n", nexact, 100.0 / B.rows[0].examples);
        // what statistical mode could detect if this run came from another kernel
        rres *w = pb_xmalloc(sizeof(rres) * (size_t)B.nrows);
        memcpy(w, rr, sizeof(rres) * (size_t)B.nrows);
        for (int i = 0; i < B.nrows; i++)
            if (w[i].mode == M_EXACT) w[i].mode = M_STAT;
        avgs wa;
        averages_compute(w, B.nrows, o->alpha, zp, rho, &wa);
        if (wa.n) {
            fprintf(out, "statistical mode (another kernel) could detect, at %.0f%% power: suite average %.2f points; "
                         "per method", 100 * o->power, wa.a[wa.n - 1].mdd);
            char nm[140];
            for (int j = 0; j < wa.n; j++)
                if (wa.a[j].model[0])
                    fprintf(out, "%s %s %.2f", j ? "," : "", avg_name(&wa, j, nm, sizeof nm), wa.a[j].mdd);
            fprintf(out, "\n");
        }
        free(wa.a);
        free(w);
    }
    int rowbad = 0;
    for (int i = 0; i < B.nrows; i++) rowbad += rr[i].fail;
    *bad = rowbad + avbad;
    if (B.legacy || ntol)
        fprintf(out, "%d baseline rows, tolerance %.2f points: %d regression(s)/missing\n", B.nrows, tol, rowbad);
    else
        fprintf(out, "%d baseline rows (%d exact, %d statistical): %d row(s) regressed, changed or missing; %d of %d "
                     "average(s) regressed\n", B.nrows, nexact, nstat, rowbad, avbad, av.n);
    const char *suite = B.suite[0] ? B.suite : "results";
    if (o->junit && (st = write_junit(o->junit, suite, bfile, rr, B.nrows, &av, err, errlen))) goto done;
    if (o->markdown && (st = write_markdown(o->markdown, suite, bfile, modeline, rr, B.nrows, &av, *bad, err, errlen)))
        goto done;
done:
    free(av.a);
    free(rr);
    free(A);
    free(R);
    baseline_free(&B);
    return st;
}

pb_status pb_check(const char *dir, const char *baseline, double tol, FILE *out, int *bad, char *err,
                   size_t errlen) {
    pb_check_opts o;
    pb_check_opts_default(&o);
    o.tol = tol;
    return pb_check_run(dir, baseline, &o, out, bad, err, errlen);
}

// ----------------------------------------------------------------------------
// The baseline writer

// Loads and vets one results directory for a baseline: every cell finished, with an evaluated
// example count and a known metric, and every cell of the manifest present. Appends to *R / *n
// (realloc'd; the caller frees) and names the suite in suite (64 bytes).
static pb_status baseline_dir_load(const char *dir, pb_record **R, int *n, char suite[64], char *err, size_t errlen) {
    pb_record *D = NULL;
    int nd = 0;
    pb_skips sk = {0};
    pb_status st = pb_results_load(dir, &D, &nd, &sk, err, errlen);
    if (st) return st;
    if (sk.n) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %d cell file(s) cannot be trusted (first: %s): a baseline needs "
                     "every cell", dir, sk.n, sk.msg[0]);
        pb_skips_free(&sk);
        free(D);
        return st;
    }
    if (nd == 0) {
        free(D);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: no cell results: run the suite first", dir);
    }
    for (int i = 0; i < nd && !st; i++) {
        if (strcmp(D[i].status, "ok"))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: cell %s (%s %s %s seed %d) %s: %s; a baseline needs a run where "
                         "every cell finished", dir, D[i].id, D[i].model, D[i].method, D[i].dataset, D[i].seed,
                         D[i].status, D[i].reason);
        else if (D[i].n_eval <= 0)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: cell %s has no eval_examples (written by an older peftbench): "
                         "re-run it (run --force)", dir, D[i].id);
        else if (metric_signed(D[i].metric) < 0)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: cell %s: unknown metric '%s'", dir, D[i].id, D[i].metric);
    }
    // every cell the manifest lists must have a result (else a row silently loses seeds)
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
    cJSON *man = NULL;
    if (!st && !pb_json_read_file(mpath, &man, NULL, 0)) {
        const cJSON *ids = cJSON_GetObjectItem(man, "cells");
        int want = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : 0;
        if (want > nd)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %d of the manifest's %d cells have no result: finish the run "
                         "first", dir, want - nd, want);
    }
    cJSON_Delete(man);
    if (!st) {
        char refp[8];
        pb_report_manifest(dir, NULL, suite, 64, refp, sizeof refp, NULL, 0);
        *R = pb_xrealloc(*R, sizeof(pb_record) * (size_t)(*n + nd));
        memcpy(*R + *n, D, sizeof(pb_record) * (size_t)nd);
        *n += nd;
    }
    free(D);
    return st;
}

static int cmp_rec_id(const void *a, const void *b) {
    return strcmp(((const pb_record *)a)->id, ((const pb_record *)b)->id);
}

// The per-backbone view of the pooled records: the distinct backbone hashes (first-seen order)
// and, for each, the aggregates of its cells alone.
typedef struct {
    char (*hash)[17];
    pb_agg **A;
    int *na;
    int nh;
    pb_agg *all; // every backbone's aggregates in one array (the within-backbone seed spread)
    int nall;
} bbview;

static void bbview_build(const pb_record *R, int n, bbview *v) {
    memset(v, 0, sizeof *v);
    v->hash = pb_xcalloc((size_t)n, sizeof *v->hash);
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < v->nh && strcmp(v->hash[j], R[i].backbone)) j++;
        if (j == v->nh) snprintf(v->hash[v->nh++], 17, "%s", R[i].backbone);
    }
    v->A = pb_xcalloc((size_t)v->nh, sizeof(pb_agg *));
    v->na = pb_xcalloc((size_t)v->nh, sizeof(int));
    pb_record *S = pb_xmalloc(sizeof(pb_record) * (size_t)n);
    for (int h = 0; h < v->nh; h++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(R[i].backbone, v->hash[h])) S[k++] = R[i];
        pb_aggregate(S, k, &v->A[h], &v->na[h], NULL, NULL);
        v->nall += v->na[h];
    }
    free(S);
    v->all = pb_xmalloc(sizeof(pb_agg) * (size_t)(v->nall ? v->nall : 1));
    for (int h = 0, k = 0; h < v->nh; k += v->na[h], h++) memcpy(v->all + k, v->A[h], sizeof(pb_agg) * (size_t)v->na[h]);
}

static void bbview_free(bbview *v) {
    for (int h = 0; h < v->nh; h++) free(v->A[h]);
    free(v->A);
    free(v->na);
    free(v->hash);
    free(v->all);
    memset(v, 0, sizeof *v);
}

// The backbone statistics of each pooled row, computed once (bbtab_build): its aggregates per
// backbone, its method's excess seed spread, and its backbone variance.
typedef struct {
    const pb_agg **subs; // [nh]: the row on each backbone (NULL: no seed there); borrowed from the view
    int K;               // backbones with seeds of the row
    double esd;          // the method's within-backbone excess seed spread (points)
    int kdf;             // K - 1 where the row estimates the spread (K >= 2, a sampling error), else 0
    double excess;       // (K-1)(s_B^2 - W): s_B^2 the variance of the backbone means, W = mean V/k
    double tau2_m;       // the method's backbone variance tau_m^2 (0: not estimable or none)
    int df;              // tau_m's df, sum (K-1) over the method's rows (0: one backbone)
    double f;            // the task factor f_d (>= 1)
    double tau2;         // the row's backbone variance tau_m^2 f_d
} bbrow;

static int same_method(const pb_agg *a, const pb_agg *b) { return !strcmp(a->model, b->model) && !strcmp(a->method, b->method); }
static int same_task(const pb_agg *a, const pb_agg *b) { return !strcmp(a->model, b->model) && !strcmp(a->dataset, b->dataset); }

// Per row i of A (the pooled aggregates): as bbrow says. The estimators:
//   tau_m^2 = sum (K-1)(s_B^2 - W) / sum (K-1) over the method's rows with 2+ backbones, floored at 0;
//   f_d = sum (K-1)(s_B^2 - W) / sum (K-1) tau_m^2 over the rows of (model, dataset) whose method
//     the backbone moves (tau_m > 0), floored at 1 (1 where nothing estimates it). A backbone better
//     at counting moves every counting row, so the spread is task-specific; the floor keeps a task
//     that looked stable on few backbones at its method's spread (measured: head-only on bar-ori,
//     steady on two backbones, moved 4 points on a third).
// Caller frees with bbtab_free.
static bbrow *bbtab_build(const bbview *v, const pb_agg *A, int na, double noise_sd) {
    bbrow *T = pb_xcalloc((size_t)(na ? na : 1), sizeof(bbrow));
    const pb_agg **subs = pb_xcalloc((size_t)(na ? na : 1) * (size_t)(v->nh ? v->nh : 1), sizeof(pb_agg *));
    for (int i = 0; i < na; i++) {
        bbrow *t = &T[i];
        t->subs = subs + (size_t)i * (size_t)v->nh;
        int q = 0, df = 0; // the method's spread, from its first row
        while (q < i && !same_method(&A[q], &A[i])) q++;
        t->esd = q < i ? T[q].esd
                       : noise_sd >= 0 ? noise_sd : sqrt(excess_var(v->all, v->nall, A[i].model, A[i].method, &df));
        for (int h = 0; h < v->nh; h++) {
            const pb_agg *a = find_agg(v->A[h], v->na[h], A[i].model, A[i].method, A[i].axes, A[i].dataset);
            t->subs[h] = a && a->n > 0 ? a : NULL;
            t->K += t->subs[h] != NULL;
        }
        double m = 0, ss = 0, w = 0;
        for (int h = 0; h < v->nh; h++)
            if (t->subs[h]) m += t->subs[h]->mean / t->K;
        for (int h = 0; h < v->nh; h++)
            if (t->subs[h]) {
                ss += (t->subs[h]->mean - m) * (t->subs[h]->mean - m);
                w += side_var(A[i].metric, t->subs[h]->mean, t->subs[h]->n_eval, t->esd) / t->subs[h]->n / t->K;
            }
        t->kdf = t->K >= 2 && isfinite(w) ? t->K - 1 : 0; // without a sampling error it estimates nothing
        t->excess = t->kdf ? ss - t->kdf * w : 0;
    }
    for (int i = 0; i < na; i++) { // tau_m^2 per method
        double num = 0;
        int d = 0;
        for (int q = 0; q < na; q++)
            if (same_method(&A[q], &A[i])) num += T[q].excess, d += T[q].kdf;
        T[i].df = d;
        T[i].tau2_m = d && num > 0 ? num / d : 0;
    }
    for (int i = 0; i < na; i++) { // f_d per task, then the row's tau^2
        double num = 0, den = 0;
        for (int q = 0; q < na; q++)
            if (same_task(&A[q], &A[i]) && T[q].tau2_m > 0) num += T[q].excess, den += T[q].kdf * T[q].tau2_m;
        T[i].f = den > 0 && num > den ? num / den : 1;
        T[i].tau2 = T[i].df ? T[i].tau2_m * T[i].f : 0;
    }
    return T;
}

static void bbtab_free(bbrow *T) {
    if (T) free((void *)T[0].subs);
    free(T);
}

// The correlation rho of two rows' backbone shifts within a (model, method), one number pooled
// over them (an equicorrelation model): the variance across backbones of a method's average over
// R rows, beyond its seeds, is (1/R^2) [(1 - rho) S2 + rho S1^2] with S2 = sum tau_r^2 and S1 =
// sum tau_r. Each (model, method) whose R >= 2 rows share K >= 2 backbones gives K - 1 df:
//   rho = sum (K-1) [R^2 (s_A^2 - W_A) - S2] / sum (K-1) (S1^2 - S2), clamped to [0, 1],
// s_A^2 the variance of the method's average over its backbones, W_A what its seeds put there.
// *df: sum (K-1) (0: not estimable, NaN returned).
static double backbone_rho(const bbview *V, const pb_agg *A, const bbrow *T, int na, int *df) {
    double *avg = pb_xcalloc((size_t)V->nh, sizeof(double)), *wv = pb_xcalloc((size_t)V->nh, sizeof(double));
    int *all = pb_xcalloc((size_t)V->nh, sizeof(int));
    double num = 0, den = 0;
    int d = 0;
    for (int i = 0; i < na; i++) {
        int first = 1;
        for (int q = 0; q < i && first; q++) first = !same_method(&A[q], &A[i]);
        if (!first) continue;
        int R = 0;
        double S1 = 0, S2 = 0;
        for (int h = 0; h < V->nh; h++) all[h] = 1, avg[h] = wv[h] = 0;
        for (int r = 0; r < na; r++) {
            if (!same_method(&A[r], &A[i])) continue;
            S1 += sqrt(T[r].tau2);
            S2 += T[r].tau2;
            R++;
            for (int h = 0; h < V->nh; h++) {
                const pb_agg *s = T[r].subs[h];
                if (!s) {
                    all[h] = 0;
                    continue;
                }
                avg[h] += s->mean;
                wv[h] += side_var(A[r].metric, s->mean, s->n_eval, T[r].esd) / s->n;
            }
        }
        int K = 0;
        double m = 0;
        for (int h = 0; h < V->nh; h++)
            if (all[h]) K++, m += avg[h] / R;
        if (R < 2 || K < 2 || !(S1 * S1 - S2 > 0)) continue;
        m /= K;
        double ss = 0, w = 0;
        for (int h = 0; h < V->nh; h++)
            if (all[h]) ss += (avg[h] / R - m) * (avg[h] / R - m), w += wv[h] / ((double)R * R) / K;
        if (!isfinite(w)) continue;
        num += (double)R * R * (ss - (K - 1) * w) - (K - 1) * S2;
        den += (K - 1) * (S1 * S1 - S2);
        d += K - 1;
    }
    free(avg);
    free(wv);
    free(all);
    *df = d;
    if (!d || !(den > 0)) return NAN;
    double rho = num / den;
    return rho < 0 ? 0 : rho > 1 ? 1 : rho;
}

// What a baseline allows, printed after writing it: the averages' minimum detectable drops for a
// run like its first backbone's (same seeds and values) at the default alpha and power, on that
// backbone (a code change on the same kernel) and, with 2+ backbones, on another one (a CPU
// whose kernels pretrain another backbone).
static void baseline_write_summary(const bbview *V, const pb_agg *A, const bbrow *T, int na, int ncells,
                                   const char *path, const char *suite, double rho, int rho_df, FILE *msg) {
    pb_check_opts d;
    pb_check_opts_default(&d);
    fprintf(msg, "check: wrote %s: %d rows, %d cells, suite %s, %d backbone(s)", path, na, ncells, suite, V->nh);
    for (int h = 0; h < V->nh; h++) fprintf(msg, "%s%s", h ? ", " : " (", V->hash[h][0] ? V->hash[h] : "unrecorded");
    fprintf(msg, ")\n");
    fprintf(msg, "check: engine %s; lapack %s; build %s; git %s\n", A[0].backend, A[0].lapack, A[0].build, A[0].git_rev);
    rres *rr = pb_xcalloc((size_t)na, sizeof(rres));
    brow *br = pb_xcalloc((size_t)na, sizeof(brow));
    double zp = pb_check_norm_quantile(d.power), zrow = pb_check_norm_quantile(1 - d.alpha / na);
    for (int other = 0; other < (V->nh > 1 ? 2 : 1); other++) {
        for (int i = 0; i < na; i++) {
            const bbrow *t = &T[i];
            const pb_agg *g0 = NULL; // the first backbone with seeds of this row
            double vbm = 0;
            for (int h = 0; h < V->nh; h++)
                if (t->subs[h]) {
                    if (!g0) g0 = t->subs[h];
                    vbm += side_var(A[i].metric, t->subs[h]->mean, t->subs[h]->n_eval, t->esd) / t->subs[h]->n /
                           ((double)t->K * t->K);
                }
            double v0 = side_var(A[i].metric, g0->mean, g0->n_eval, t->esd);
            br[i] = (brow){.model = A[i].model, .method = A[i].method, .dataset = A[i].dataset, .metric = A[i].metric,
                           .axes = (char *)A[i].axes, .examples = A[i].n_eval, .seeds = A[i].n, .mean = A[i].mean,
                           .extra_sd = t->esd, .nbb = t->K, .backbone_sd = t->df ? sqrt(t->tau2) : NAN};
            rr[i] = (rres){.b = &br[i], .g = &A[i], .mode = M_STAT, .bv = A[i].mean, .cv = A[i].mean, .delta = 0};
            rr[i].sew = sqrt(other ? vbm + v0 / g0->n : 2 * v0 / g0->n);
            rr[i].bbsd = other && t->df ? sqrt(t->tau2) * sqrt(1.0 / t->K + 1.0) : 0;
            rr[i].se = sqrt(rr[i].sew * rr[i].sew + rr[i].bbsd * rr[i].bbsd);
            rr[i].mdd = (zrow + zp) * rr[i].se;
        }
        avgs av;
        averages_compute(rr, na, d.alpha, zp, isfinite(rho) ? rho : 1, &av);
        if (other)
            fprintf(msg, "check: backbone_rho %.3f (%d df): the correlation of two rows' backbone shifts\n", rho, rho_df);
        fprintf(msg, "check: minimum detectable drop %s (alpha %g, %.0f%% power):",
                other ? "on another backbone (another CPU kernel)" : "on the same backbone (another build or revision)",
                d.alpha, 100 * d.power);
        for (int k = 0; k < av.n; k++) {
            char nm[140];
            const brow *b = NULL;
            for (int i = 0; i < na && !b; i++)
                if (!strcmp(br[i].model, av.a[k].model) && !strcmp(br[i].method, av.a[k].method)) b = &br[i];
            if (av.a[k].model[0] && b) {
                fprintf(msg, "%s %s %.2f (extra_sd %.2f", k ? "," : "", avg_name(&av, k, nm, sizeof nm), av.a[k].mdd,
                        b->extra_sd);
                if (other) { // rms over the method's rows (tau_m^2 f_d each)
                    double q = 0;
                    int c = 0;
                    for (int i = 0; i < na; i++)
                        if (!strcmp(br[i].model, b->model) && !strcmp(br[i].method, b->method) &&
                            isfinite(br[i].backbone_sd))
                            q += br[i].backbone_sd * br[i].backbone_sd, c++;
                    fprintf(msg, ", backbone_sd %.2f", c ? sqrt(q / c) : NAN);
                }
                fprintf(msg, ")");
            } else {
                fprintf(msg, "; suite average %.2f", av.a[k].mdd);
            }
        }
        fprintf(msg, " points\n");
        free(av.a);
    }
    free(br);
    free(rr);
}

pb_status pb_baseline_write(const char *const *dirs, int ndirs, const char *path, double noise_sd, FILE *msg,
                            char *err, size_t errlen) {
    pb_record *R = NULL;
    int n = 0;
    char suite[64] = "", s1[64];
    pb_status st = PB_OK;
    if (ndirs < 1) return pb_errf(PB_ERR_ARG, err, errlen, "no results directory");
    for (int d = 0; d < ndirs && !st; d++) {
        int before = n;
        st = baseline_dir_load(dirs[d], &R, &n, s1, err, errlen);
        if (st) break;
        if (d == 0) snprintf(suite, sizeof suite, "%s", s1);
        else if (strcmp(s1, suite))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: suite '%s', but %s holds suite '%s': a baseline is one suite's",
                         dirs[d], s1, dirs[0], suite);
        for (int i = before; i < n && !st && ndirs > 1; i++)
            if (!R[i].backbone[0])
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: cell %s records no backbone_hash (a built-in model, or an "
                             "older peftbench): several directories are for runs on different backbones (run "
                             "--pretrain-seed N)", dirs[d], R[i].id);
    }
    if (!st && ndirs > 1) { // the same cell twice: the same backbone twice, not another one
        pb_record *S = pb_xmalloc(sizeof(pb_record) * (size_t)n);
        memcpy(S, R, sizeof(pb_record) * (size_t)n);
        qsort(S, (size_t)n, sizeof(pb_record), cmp_rec_id);
        for (int i = 1; i < n && !st; i++)
            if (!strcmp(S[i].id, S[i - 1].id))
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "cell %s (%s %s %s seed %d) is in two of the directories: each "
                             "must come from its own backbone (run --pretrain-seed N --out DIR)", S[i].id, S[i].model,
                             S[i].method, S[i].dataset, S[i].seed);
        free(S);
    }
    if (st) {
        free(R);
        return st;
    }
    pb_agg *A = NULL;
    int na = 0;
    pb_aggregate(R, n, &A, &na, NULL, NULL);
    bbview V;
    bbview_build(R, n, &V);
    bbrow *T = bbtab_build(&V, A, na, noise_sd);

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "schema", BASELINE_SCHEMA);
    cJSON_AddStringToObject(j, "suite", suite);
    cJSON_AddStringToObject(j, "written_by", "peftbench check --write-baseline (docs/regression.md)");
    char when[32];
    time_t t = time(NULL);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    cJSON_AddStringToObject(j, "created_at", when);
    cJSON_AddStringToObject(j, "noise_model",
                            "per-seed variance of a row = sampling variance of its metric on `examples` (accuracy: "
                            "binomial) + extra_sd^2; extra_sd: the seed spread beyond it within a backbone, pooled per "
                            "(model, method) over rows with 2+ seeds, or given (--noise-sd); backbone_sd: the spread of "
                            "a row's mean across backbones beyond its seeds, pooled per (model, method) over rows with "
                            "2+ backbones (null: one backbone); backbone_rho: the correlation of two rows' backbone "
                            "shifts within a method, pooled (the averages' backbone variance; null: 1 assumed)");
    int seeded = 0;
    for (int i = 0; i < V.nall; i++) seeded |= V.all[i].n >= 2;
    cJSON_AddStringToObject(j, "extra_sd_source", noise_sd >= 0 ? "given"
                                                  : seeded ? "seeds"
                                                           : "none: no row has 2+ seeds (sampling term only)");
    cJSON_AddNumberToObject(j, "backbones", V.nh);
    int rho_df = 0;
    double rho = backbone_rho(&V, A, T, na, &rho_df);
    if (rho_df && isfinite(rho)) {
        cJSON_AddNumberToObject(j, "backbone_rho", rho);
        cJSON_AddNumberToObject(j, "backbone_rho_df", rho_df);
    } else {
        cJSON_AddNullToObject(j, "backbone_rho");
    }
    cJSON *rows = cJSON_AddArrayToObject(j, "rows");
    for (int i = 0; i < na; i++) {
        const pb_agg *g = &A[i];
        const bbrow *t = &T[i];
        const pb_agg *const *subs = t->subs;
        int K = t->K;
        double mean = 0; // of the backbones' means: each backbone counts once
        for (int h = 0; h < V.nh; h++)
            if (subs[h]) mean += subs[h]->mean / K;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", g->model);
        cJSON_AddStringToObject(o, "method", g->method);
        cJSON *ax = NULL;
        pb_json_parse_text(g->axes, "axes", &ax, NULL, 0);
        cJSON_AddItemToObject(o, "axes", ax ? ax : cJSON_CreateObject());
        cJSON_AddStringToObject(o, "dataset", g->dataset);
        cJSON_AddStringToObject(o, "metric", g->metric);
        cJSON_AddStringToObject(o, "split", g->split);
        cJSON_AddStringToObject(o, "select", g->select);
        cJSON_AddNumberToObject(o, "examples", g->n_eval);
        cJSON_AddNumberToObject(o, "seeds", g->n);
        cJSON_AddNumberToObject(o, "mean", K > 1 ? mean : g->mean);
        cJSON_AddNumberToObject(o, "median", g->median);
        cJSON_AddNumberToObject(o, "std", g->std);
        cJSON_AddNumberToObject(o, "extra_sd", t->esd);
        if (t->df) {
            cJSON_AddNumberToObject(o, "backbone_sd", sqrt(t->tau2));
            cJSON_AddNumberToObject(o, "backbone_df", t->df);
            cJSON_AddNumberToObject(o, "backbone_task_factor", t->f);
        } else {
            cJSON_AddNullToObject(o, "backbone_sd");
        }
        cJSON *sc = cJSON_AddArrayToObject(o, "scores");
        for (int q = 0; q < n; q++)
            if (!strcmp(R[q].model, g->model) && !strcmp(R[q].method, g->method) && !strcmp(R[q].dataset, g->dataset) &&
                !strcmp(R[q].axes, g->axes))
                cJSON_AddItemToArray(sc, cJSON_CreateNumber(100 * R[q].score));
        fprint f;
        fp_from_agg(g, &f);
        cJSON_AddItemToObject(o, "fingerprint", fp_json(&f));
        cJSON *bl = cJSON_AddArrayToObject(o, "backbones");
        for (int h = 0; h < V.nh; h++) {
            if (!subs[h]) continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "hash", V.hash[h]);
            cJSON_AddNumberToObject(e, "seeds", subs[h]->n);
            cJSON_AddNumberToObject(e, "mean", subs[h]->mean);
            cJSON_AddNumberToObject(e, "median", subs[h]->median);
            cJSON_AddNumberToObject(e, "std", subs[h]->std);
            fp_from_agg(subs[h], &f);
            cJSON_AddItemToObject(e, "fingerprint", fp_json(&f));
            cJSON_AddItemToArray(bl, e);
        }
        cJSON_AddItemToArray(rows, o);
    }
    cJSON *cells = cJSON_AddArrayToObject(j, "cells");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", R[i].id);
        cJSON_AddStringToObject(o, "model", R[i].model);
        cJSON_AddStringToObject(o, "method", R[i].method);
        cJSON_AddStringToObject(o, "dataset", R[i].dataset);
        cJSON_AddNumberToObject(o, "seed", R[i].seed);
        cJSON_AddStringToObject(o, "backbone", R[i].backbone);
        cJSON_AddNumberToObject(o, "score", R[i].score);
        // exact mode compares it bit for bit (cJSON prints it with enough digits to round-trip)
        cJSON_AddItemToObject(o, "train_loss_last",
                              isfinite(R[i].loss_last) ? cJSON_CreateNumber(R[i].loss_last) : cJSON_CreateNull());
        cJSON_AddItemToArray(cells, o);
    }
    st = pb_json_write_atomic(path, j, err, errlen);
    cJSON_Delete(j);
    if (!st && msg) baseline_write_summary(&V, A, T, na, n, path, suite, rho, rho_df, msg);
    bbtab_free(T);
    bbview_free(&V);
    free(A);
    free(R);
    return st;
}
