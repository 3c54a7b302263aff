// report_html.c: DIR/index.html, one self-contained page per results directory (report_html.h).
//
// Escaping: every string that comes from a suite, a cell file, a reference table, a path or an
// error message reaches the page through html_text() (& < > " ' as entities, control characters
// as spaces), directly or through html_textf(); hb_raw() takes only this file's markup and the
// numbers it formats. The figures are gnuplot's SVG output (gnuplot writes the text it draws
// with & and < escaped); svg_inline() refuses a file holding a script, an event handler, foreign
// content or a javascript: URL, drops the XML prolog, and prefixes every id (a page holds many
// SVGs, and gnuplot names its markers and filters the same in every file).
//
// gnuplot runs as an argument vector (pb_plot_spawn: posix_spawnp, no shell): the figures through
// pb_plot_write_figs (plot.c), the training curves of every cell in one run of plots/curves.gp.
#include "report_html.h"
#include "jsonutil.h"
#include "report.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Cells whose training curves are drawn (the page grows by about 15 KB per curve).
#define HTML_MAX_CURVES 500

// ----------------------------------------------------------------------------
// A growing text buffer

typedef struct {
    char *b; // owned, NUL-terminated once anything was written; free with free()
    size_t len, cap;
} hbuf;

static void hb_reserve(hbuf *h, size_t extra) {
    if (h->len + extra + 1 <= h->cap) return;
    size_t cap = h->cap ? h->cap : 4096;
    while (h->len + extra + 1 > cap) cap *= 2;
    h->b = pb_xrealloc(h->b, cap);
    h->cap = cap;
}

static void hb_put(hbuf *h, const char *s, size_t n) {
    hb_reserve(h, n);
    memcpy(h->b + h->len, s, n);
    h->len += n;
    h->b[h->len] = 0;
}

// Markup and numbers formatted here: never a user string (those go through html_text).
static void hb_raw(hbuf *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hb_raw(hbuf *h, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need <= 0) return;
    hb_reserve(h, (size_t)need);
    va_start(ap, fmt);
    vsnprintf(h->b + h->len, h->cap - h->len, fmt, ap);
    va_end(ap);
    h->len += (size_t)need;
}

// The escape function: s as HTML text or as a quoted attribute value.
static void html_text(hbuf *h, const char *s) {
    for (; s && *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) hb_put(h, rep, strlen(rep));
        else if ((unsigned char)*s < 0x20 || *s == 0x7f) hb_put(h, " ", 1);
        else hb_put(h, s, 1);
    }
}

// printf, then html_text: text that mixes user strings and numbers.
static void html_textf(hbuf *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void html_textf(hbuf *h, const char *fmt, ...) {
    char *t = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&t, fmt, ap); // _GNU_SOURCE (CMakeLists.txt)
    va_end(ap);
    PB_CHECK(n >= 0, "out of memory formatting page text");
    html_text(h, t);
    free(t);
}

// An element id: prefix + s with every byte outside [A-Za-z0-9_-] as '_' (ids and fragment
// links never need escaping).
static void html_id(hbuf *h, const char *prefix, const char *s) {
    hb_put(h, prefix, strlen(prefix));
    for (; *s; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        hb_put(h, ok ? &c : "_", 1);
    }
}

// ----------------------------------------------------------------------------
// Inline SVG

static int ci_prefix(const char *s, const char *lower) {
    for (; *lower; s++, lower++)
        if (!*s || (*s | 0x20) != *lower) return 0;
    return 1;
}

// 1 if the markup of svg holds no script, foreign content, iframe, javascript: URL or on*= event
// attribute (checked inside tags only: text content is gnuplot-escaped labels).
static int svg_safe(const char *svg) {
    int intag = 0;
    for (const char *p = svg; *p; p++) {
        if (*p == '<') {
            intag = 1;
            if (ci_prefix(p + 1, "script") || ci_prefix(p + 1, "foreignobject") || ci_prefix(p + 1, "iframe"))
                return 0;
        } else if (*p == '>') {
            intag = 0;
        } else if (intag && ci_prefix(p, "javascript:")) {
            return 0;
        } else if (intag && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') && ci_prefix(p + 1, "on")) {
            const char *q = p + 3;
            while ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z') q++;
            while (*q == ' ') q++;
            if (q > p + 3 && *q == '=') return 0;
        }
    }
    return 1;
}

// Appends the <svg> element of a gnuplot SVG file's text with every id and reference to it
// prefixed by pfx, and gnuplot's "<title>Gnuplot</title>" tooltip dropped. Returns 0, or -1
// (nothing appended) when svg is incomplete or not safe (svg_safe).
static int svg_inline(hbuf *h, const char *svg, const char *pfx) {
    const char *p = strstr(svg, "<svg"), *end = p ? strstr(p, "</svg>") : NULL;
    if (!p || !end || !svg_safe(p)) return -1;
    end += 6;
    static const char *const refs[] = {"id='", "id=\"", "href='#", "href=\"#", "url(#"};
    static const char tooltip[] = "<title>Gnuplot</title>";
    const char *span = p, *start = p;
    while (p < end) {
        int hit = -1;
        for (int k = 0; k < 5 && hit < 0; k++) {
            if (strncmp(p, refs[k], strlen(refs[k]))) continue;
            // an attribute name starts after a space or "xlink:" (never "gid='", "valid='")
            if (k == 4 || (p > start && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == ':'))) hit = k;
        }
        if (hit >= 0) {
            hb_put(h, span, (size_t)(p - span));
            hb_put(h, refs[hit], strlen(refs[hit]));
            hb_put(h, pfx, strlen(pfx));
            p += strlen(refs[hit]);
            span = p;
        } else if (!strncmp(p, tooltip, sizeof tooltip - 1)) {
            hb_put(h, span, (size_t)(p - span));
            p += sizeof tooltip - 1;
            span = p;
        } else {
            p++;
        }
    }
    hb_put(h, span, (size_t)(end - span));
    return 0;
}

// Reads path and inlines it (svg_inline). Returns 0, or -1 when unreadable or refused.
static int svg_inline_file(hbuf *h, const char *path, const char *pfx) {
    size_t n = 0;
    char *t = pb_read_text(path, &n);
    int rc = t ? svg_inline(h, t, pfx) : -1;
    free(t);
    return rc;
}

// ----------------------------------------------------------------------------
// What the page is made of

typedef struct {
    const char *dir;
    pb_record *R; // (n) owned
    int n;
    pb_skips sk;  // owned
    pb_agg *A;    // (na) owned
    int na, nr, nc, multi_model, nfailed;
    pb_report_block *blk; // (nb) the results tables' blocks (pb_report_blocks), owned
    int nb;
    pb_reference ref; // owned
    char refpath[1024], suite[64], desc[512];
} page;

static void page_free(page *pg) {
    free(pg->R);
    free(pg->A);
    pb_report_blocks_free(pg->blk, pg->nb);
    pb_skips_free(&pg->sk);
    pb_reference_free(&pg->ref);
}

static pb_status page_load(page *pg, const char *dir, const char *reference, char *err, size_t errlen) {
    memset(pg, 0, sizeof(*pg));
    pg->dir = dir;
    pb_status st = pb_results_load(dir, &pg->R, &pg->n, &pg->sk, err, errlen);
    if (st) return st;
    pb_report_manifest(dir, reference, pg->suite, sizeof pg->suite, pg->refpath, sizeof pg->refpath, pg->desc,
                       sizeof pg->desc);
    if ((st = pb_reference_load(pg->refpath, &pg->ref, err, errlen))) return st;
    pb_aggregate(pg->R, pg->n, &pg->A, &pg->na, &pg->nr, &pg->nc);
    pg->nb = pb_report_blocks(pg->A, pg->na, pg->nr, pg->nc, &pg->blk);
    for (int i = 0; i < pg->n; i++) {
        if (strcmp(pg->R[i].model, pg->R[0].model)) pg->multi_model = 1;
        if (strcmp(pg->R[i].status, "ok")) pg->nfailed++;
    }
    return PB_OK;
}

// A cell's result file, parsed (NULL when unreadable). Caller frees with cJSON_Delete.
static cJSON *cell_json(const page *pg, const pb_record *r) {
    char path[4200];
    snprintf(path, sizeof path, "%s/cells/%s.json", pg->dir, r->id);
    cJSON *j = NULL;
    pb_json_read_file(path, &j, NULL, 0);
    return j;
}

// ----------------------------------------------------------------------------
// Head, summary, tables

static const char page_css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1f2328;"
    "background:#fff;margin:0 auto;padding:16px 28px 48px;max-width:1500px}"
    "h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;"
    "padding-bottom:4px}h3{font-size:15px;margin:0 0 6px}"
    "nav a{margin-right:14px}a{color:#0969da}.muted{color:#59636e}.note{background:#fff8c5;border:1px solid #d4a72c;"
    "padding:8px 12px;border-radius:6px}"
    "table{border-collapse:collapse;margin:8px 0 4px}th,td{border:1px solid #d0d7de;padding:4px 9px}"
    "thead th{background:#f6f8fa}tbody tr:nth-child(even){background:#f6f8fa}td.num{text-align:right;"
    "font-variant-numeric:tabular-nums;white-space:nowrap}th.label{text-align:left;font-weight:normal}"
    "td.best{font-weight:700}.group{background:#eef2f6;font-style:italic}.sd{color:#59636e;font-size:12px}.fail{color:#cf222e}"
    ".delta{font-size:12px;margin-left:4px}.pos{color:#1a7f37}.neg{color:#cf222e}"
    ".figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}"
    "figure{margin:0}figure svg{width:100%;height:auto;display:block}figcaption{text-align:center;color:#59636e}"
    ".cells{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px}"
    ".cell{border:1px solid #d0d7de;border-radius:8px;padding:10px 12px}.cell.failed{border-color:#cf222e;"
    "background:#fff5f5}"
    ".badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;color:#fff;margin-left:6px}"
    ".badge.ok{background:#1a7f37}.badge.failed{background:#cf222e}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 10px;margin:4px 0 8px;font-size:13px}"
    "dt{color:#59636e}dd{margin:0;overflow-wrap:anywhere}.reason{color:#cf222e;font-weight:600}"
    "details{font-size:13px}code{font-size:12px}";

static void page_head(hbuf *h, const page *pg) {
    hb_raw(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    html_textf(h, "peftbench: %s", pg->suite);
    hb_raw(h, "</title>\n<style>%s</style>\n</head>\n<body>\n", page_css);
}

// The backend of every cell when they agree, else NULL.
static const char *single_backend(const page *pg) {
    for (int i = 1; i < pg->n; i++)
        if (strcmp(pg->R[i].backend, pg->R[0].backend)) return NULL;
    return pg->n ? pg->R[0].backend : NULL;
}

static void page_summary(hbuf *h, const page *pg) {
    hb_raw(h, "<header>\n<h1>");
    html_text(h, pg->suite);
    hb_raw(h, "</h1>\n");
    if (pg->desc[0]) {
        hb_raw(h, "<p id=\"description\">");
        html_text(h, pg->desc);
        hb_raw(h, "</p>\n");
    }
    char when[32];
    time_t t = time(NULL);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tmv);
    hb_raw(h, "<p class=\"muted\">%d cells: %d ok, %d failed", pg->n, pg->n - pg->nfailed, pg->nfailed);
    if (pg->sk.n) hb_raw(h, ", %d cell file%s skipped", pg->sk.n, pg->sk.n == 1 ? "" : "s");
    hb_raw(h, " &middot; results directory <code>");
    html_text(h, pg->dir);
    hb_raw(h, "</code> &middot; page made %s", when);
    const char *be = single_backend(pg);
    if (be) {
        hb_raw(h, " &middot; engine: ");
        html_text(h, be[0] ? be : "(not recorded)");
    }
    hb_raw(h, "</p>\n<nav><a href=\"#results\">Results</a>");
    if (pg->ref.root) hb_raw(h, "<a href=\"#paper\">Paper vs ours</a>");
    pb_sweep *sw = NULL;
    if (pb_report_sweeps(pg->A, pg->na, pg->nc, &sw)) hb_raw(h, "<a href=\"#sweep\">LR sweep</a>");
    free(sw);
    hb_raw(h, "<a href=\"#figures\">Figures</a><a href=\"#cells\">Cells</a>");
    if (pg->nfailed) hb_raw(h, "<a href=\"#failed\">Failed (%d)</a>", pg->nfailed);
    hb_raw(h, "<a href=\"#engine\">Engine</a>");
    if (pg->sk.n) hb_raw(h, "<a href=\"#skipped\">Skipped (%d)</a>", pg->sk.n);
    hb_raw(h, "</nav>\n</header>\n");
}

// Values compare as printed (one decimal), so a bold tie is a tie on the page.
static long r1(double v) { return lround(v * 10.0); }

// Row r's mean over all columns of its block (the Avg column), or NaN when a column has no result.
static double row_avg(const pb_report_block *B, int r) {
    double s = 0;
    for (int c = 0; c < B->nc; c++) {
        const pb_agg *g = pb_agg_find(B->A, B->na, r, c);
        if (!g || !g->n) return NAN;
        s += g->median;
    }
    return B->nc ? s / B->nc : NAN;
}

// The best printed value of display column col (NULL: Avg) over the block's rows; LONG_MIN-ish when none.
static long col_best(const pb_report_block *B, const pb_report_col *col) {
    long best = -(1L << 40);
    for (int r = 0; r < B->nr; r++) {
        double v = col ? pb_report_col_value(B->A, B->na, r, col) : row_avg(B, r);
        if (isfinite(v) && r1(v) > best) best = r1(v);
    }
    return best;
}

static void table_header(hbuf *h, const pb_report_block *B, const char *params_title) {
    hb_raw(h, "<thead><tr><th>Method</th><th>%s</th>", params_title);
    for (int c = 0; c < B->nc; c++) {
        hb_raw(h, "<th>");
        html_text(h, pb_agg_col_dataset(B->A, B->na, c));
        hb_raw(h, "</th>");
    }
    hb_raw(h, "<th>Avg</th></tr></thead>\n<tbody>\n");
}

static void row_label_cell(hbuf *h, const pb_report_block *B, const pb_agg *g0) {
    char lab[512];
    pb_report_row_label(g0, B->multi_model, lab, sizeof lab);
    hb_raw(h, "<tr><th class=\"label\" scope=\"row\">");
    html_text(h, lab);
    hb_raw(h, "</th>");
}

// With several blocks: the heading naming block b's models (id "results-<b+1>" / "paper-<b+1>").
static void block_heading(hbuf *h, const page *pg, int b, const char *idp) {
    if (pg->nb < 2) return;
    const pb_report_block *B = &pg->blk[b];
    hb_raw(h, "<h3 id=\"%s-%d\">Model%s: ", idp, b + 1, B->nmodels > 1 ? "s" : "");
    html_text(h, B->models);
    hb_raw(h, "</h3>\n");
}

// Row r of block B's results table over display columns cols[0..ncols); best[k]: the best printed
// value of column k (k == ncols: Avg).
static void results_row(hbuf *h, const pb_report_block *B, int r, const pb_report_col *cols, int ncols,
                        const long *best) {
    const pb_agg *g0 = pb_agg_row_first(B->A, B->na, r);
    char ps[32], hs[32];
    double hsum = 0;
    int hn = 0;
    for (int i = 0; i < B->na; i++)
        if (B->A[i].row == r && isfinite(B->A[i].p_head)) hsum += B->A[i].p_head, hn++;
    pb_report_fmt_params(g0->p_trainable_nohead, ps, sizeof ps);
    pb_report_fmt_params(hn ? hsum / hn : g0->p_head, hs, sizeof hs);
    row_label_cell(h, B, g0);
    hb_raw(h, "<td class=\"num\">%s</td><td class=\"num\">%s</td>", ps, hs);
    for (int k = 0; k < ncols; k++) {
        if (cols[k].group) { // a group mean
            double v = pb_report_col_value(B->A, B->na, r, &cols[k]);
            if (isfinite(v)) hb_raw(h, "<td class=\"num group%s\">%.1f</td>", r1(v) == best[k] ? " best" : "", v);
            else hb_raw(h, "<td class=\"num group\">-</td>");
            continue;
        }
        const pb_agg *g = pb_agg_find(B->A, B->na, r, cols[k].c0);
        if (!g || !g->n) {
            hb_raw(h, "<td class=\"num%s\">%s</td>", g && g->failed ? " fail" : "", g && g->failed ? "fail" : "-");
            continue;
        }
        hb_raw(h, "<td class=\"num%s\" title=\"%d seed%s ok, %d failed\">%.1f", r1(g->median) == best[k] ? " best" : "",
               g->n, g->n == 1 ? "" : "s", g->failed, g->median);
        if (g->n > 1) hb_raw(h, "<span class=\"sd\"> ±%.1f</span>", g->std);
        hb_raw(h, "</td>");
    }
    double avg = row_avg(B, r);
    if (isfinite(avg)) hb_raw(h, "<td class=\"num%s\">%.1f</td></tr>\n", r1(avg) == best[ncols] ? " best" : "", avg);
    else hb_raw(h, "<td class=\"num\">-</td></tr>\n");
}

// The results: one table per block (pb_report_blocks), each with its own columns, Avg and bold
// best per column; one block is the plain table "table-results".
static void table_results(hbuf *h, const page *pg) {
    const pb_agg *first = pg->na ? &pg->A[0] : NULL;
    hb_raw(h, "<section id=\"results\">\n<h2>Results</h2>\n<p class=\"muted\">");
    html_textf(h, "Metric x100 on %s, epoch selection: %s; median over seeds (± std when n > 1). ",
               first ? first->split : "test", first ? first->select : "last");
    hb_raw(h, "Bold: best per column. #Params excludes the head; Head: its mean over datasets.</p>\n");
    if (!pg->nr) {
        hb_raw(h, "<p class=\"note\">No cell results in this directory.</p>\n</section>\n");
        return;
    }
    pb_report_col *cols = pb_xmalloc(sizeof(pb_report_col) * (size_t)(2 * pg->nc + 1));
    int any_groups = 0;
    for (int b = 0; b < pg->nb; b++)
        if (pb_report_columns(pg->blk[b].A, pg->blk[b].na, pg->blk[b].nc, cols) > pg->blk[b].nc) any_groups = 1;
    if (pg->nb > 1)
        hb_raw(h, "<p class=\"muted\">The models take different datasets: one table per block of models and their "
                  "datasets, each with its own Avg and best per column.</p>\n");
    if (any_groups)
        hb_raw(h, "<p class=\"muted\">Group columns: the mean of the group's datasets; Avg: the mean over all %s"
                  "datasets.</p>\n", pg->nb > 1 ? "the table's " : "");
    for (int b = 0; b < pg->nb; b++) {
        const pb_report_block *B = &pg->blk[b];
        const int ncols = pb_report_columns(B->A, B->na, B->nc, cols);
        long *best = pb_xmalloc(sizeof(long) * (size_t)(ncols + 1));
        for (int k = 0; k <= ncols; k++) best[k] = col_best(B, k < ncols ? &cols[k] : NULL);
        block_heading(h, pg, b, "results");
        if (pg->nb > 1) hb_raw(h, "<table class=\"results\" id=\"table-results-%d\">\n", b + 1);
        else hb_raw(h, "<table class=\"results\" id=\"table-results\">\n");
        hb_raw(h, "<thead><tr><th>Method</th><th>#Params</th><th>Head (mean)</th>");
        for (int k = 0; k < ncols; k++) {
            hb_raw(h, cols[k].group ? "<th class=\"group\">" : "<th>");
            html_text(h, cols[k].group ? cols[k].group : pb_agg_col_dataset(B->A, B->na, cols[k].c0));
            hb_raw(h, cols[k].group ? " mean</th>" : "</th>");
        }
        hb_raw(h, "<th>Avg</th></tr></thead>\n<tbody>\n");
        for (int r = 0; r < B->nr; r++) results_row(h, B, r, cols, ncols, best);
        hb_raw(h, "</tbody>\n</table>\n");
        free(best);
    }
    hb_raw(h, "</section>\n");
    free(cols);
}

// One "paper / ours" cell with the delta (ours - paper) in green (>= 0) or red (< 0).
static void paper_cell(hbuf *h, double paper, double ours) {
    hb_raw(h, "<td class=\"num\">");
    if (isfinite(paper)) hb_raw(h, "%.1f", paper);
    else hb_raw(h, "-");
    hb_raw(h, " / ");
    if (isfinite(ours)) hb_raw(h, "%.1f", ours);
    else hb_raw(h, "-");
    if (isfinite(paper) && isfinite(ours)) {
        double d = ours - paper;
        hb_raw(h, " <span class=\"delta %s\">%+.1f</span>", d >= 0 ? "pos" : "neg", d);
    }
    hb_raw(h, "</td>");
}

// Rows of block B that name a reference row.
static int block_ref_rows(const page *pg, const pb_report_block *B) {
    int k = 0;
    for (int r = 0; r < B->nr; r++) {
        const pb_agg *g0 = pb_agg_row_first(B->A, B->na, r);
        k += pb_reference_row(&pg->ref, g0->method_ref, g0->model) != NULL;
    }
    return k;
}

// Paper vs ours: one table per block, as the results (with several blocks, those with rows only).
static void table_paper(hbuf *h, const page *pg) {
    if (!pg->ref.root) return;
    const cJSON *src = cJSON_GetObjectItem(pg->ref.root, "source");
    hb_raw(h, "<section id=\"paper\">\n<h2>Paper vs ours</h2>\n<p class=\"muted\">Reference: ");
    html_textf(h, "%s (%s)", pg->refpath, cJSON_IsString(src) ? src->valuestring : "");
    hb_raw(h, ". Cells: paper / ours, and ours minus paper (<span class=\"pos\">green</span>: at or above the "
              "paper, <span class=\"neg\">red</span>: below).</p>\n");
    int shown = 0;
    for (int b = 0; b < pg->nb; b++) {
        const pb_report_block *B = &pg->blk[b];
        if (pg->nb > 1 && !block_ref_rows(pg, B)) continue;
        block_heading(h, pg, b, "paper");
        if (pg->nb > 1) hb_raw(h, "<table class=\"results\" id=\"table-paper-%d\">\n", b + 1);
        else hb_raw(h, "<table class=\"results\" id=\"table-paper\">\n");
        table_header(h, B, "Params paper / ours");
        for (int r = 0; r < B->nr; r++) {
            const pb_agg *g0 = pb_agg_row_first(B->A, B->na, r);
            const cJSON *rr = pb_reference_row(&pg->ref, g0->method_ref, g0->model);
            if (!rr) continue;
            shown++;
            const cJSON *pp = cJSON_GetObjectItem(rr, "params");
            char ps[32];
            pb_report_fmt_params(g0->p_trainable_nohead, ps, sizeof ps);
            row_label_cell(h, B, g0);
            hb_raw(h, "<td class=\"num\">");
            html_textf(h, "%s / %s", cJSON_IsString(pp) ? pp->valuestring : "-", ps);
            hb_raw(h, "</td>");
            double sp = 0;
            int cp = 0;
            for (int c = 0; c < B->nc; c++) {
                const pb_agg *g = pb_agg_find(B->A, B->na, r, c);
                double pv = pb_reference_value(rr, g ? g->dataset_ref : "");
                if (isfinite(pv)) sp += pv, cp++;
                paper_cell(h, pv, g && g->n ? g->median : NAN);
            }
            const cJSON *avg = cJSON_GetObjectItem(rr, "avg");
            double pa = cJSON_IsNumber(avg) ? avg->valuedouble : cp == B->nc && B->nc ? sp / B->nc : NAN;
            paper_cell(h, pa, row_avg(B, r));
            hb_raw(h, "</tr>\n");
        }
        hb_raw(h, "</tbody>\n</table>\n");
    }
    if (!shown) hb_raw(h, "<p class=\"note\">No method of this suite names a row of the reference table (\"ref\").</p>\n");
    hb_raw(h, "</section>\n");
}

// ----------------------------------------------------------------------------
// Figures

static void section_figures(hbuf *h, const page *pg, const pb_plot_figs *figs, const char *note) {
    hb_raw(h, "<section id=\"figures\">\n<h2>Figures</h2>\n");
    if (note && note[0]) {
        hb_raw(h, "<p class=\"note\" id=\"figures-note\">Figures not drawn: ");
        html_text(h, note);
        hb_raw(h, ". Install gnuplot (Debian: gnuplot-nox) and run <code>peftbench report DIR --html</code> "
                  "again.</p>\n");
    }
    if (!figs || !figs->n) {
        if (!note || !note[0]) hb_raw(h, "<p class=\"muted\">No figure: the grid has no rank or learning-rate axis "
                                         "with two values, and no row has a result on every dataset.</p>\n");
        hb_raw(h, "</section>\n");
        return;
    }
    hb_raw(h, "<div class=\"figs\">\n");
    for (int i = 0; i < figs->n; i++) {
        const pb_plot_fig *f = &figs->fig[i];
        char path[4400], pfx[32];
        snprintf(path, sizeof path, "%s/plots/%s.svg", pg->dir, f->name);
        snprintf(pfx, sizeof pfx, "f%d-", i);
        hb_raw(h, "<figure class=\"plot\" id=\"");
        html_id(h, "fig-", f->name);
        hb_raw(h, "\">\n");
        if (svg_inline_file(h, path, pfx)) {
            hb_raw(h, "<p class=\"note\">");
            html_textf(h, "%s: missing, unreadable, or not a plain gnuplot SVG", path);
            hb_raw(h, "</p>");
        }
        hb_raw(h, "\n<figcaption>");
        html_text(h, f->title);
        hb_raw(h, "</figcaption>\n</figure>\n");
    }
    hb_raw(h, "</div>\n</section>\n");
}

// ----------------------------------------------------------------------------
// Training curves: one data file, one gnuplot run, curve_<k>.svg per drawn cell

typedef struct {
    int *block;     // (n) per record: its block in curves.dat, -1 when not drawn; owned
    int nblocks;
    char note[1100]; // why curves are missing ("" when all drawn)
} curves;

static const char *num_or_nan(const cJSON *e, const char *k, double scale, char *buf, size_t n) {
    double v = pb_jnum(e, k, NAN);
    if (!isfinite(v)) return "NaN";
    snprintf(buf, n, "%.8g", v * scale);
    return buf;
}

// Appends record r's epochs as one index block (epoch, loss, val x100, test x100) and returns
// the mask curves.gp reads (1: val/test have a value, 2: the loss has one; 0: nothing to draw,
// then nothing is appended).
static int curve_block(hbuf *dat, const cJSON *j, int k) {
    const cJSON *eps = cJSON_GetObjectItem(j, "epochs");
    int mask = 0;
    for (const cJSON *e = cJSON_IsArray(eps) ? eps->child : NULL; e; e = e->next) {
        if (isfinite(pb_jnum(e, "val", NAN)) || isfinite(pb_jnum(e, "test", NAN))) mask |= 1;
        if (isfinite(pb_jnum(e, "train_loss", NAN))) mask |= 2;
    }
    if (!mask || !isfinite(pb_jnum(eps ? eps->child : NULL, "epoch", NAN))) return 0;
    hb_raw(dat, "%s# block %d\n", k ? "\n\n" : "", k);
    for (const cJSON *e = eps->child; e; e = e->next) {
        char a[32], b[32], c[32];
        double ep = pb_jnum(e, "epoch", NAN);
        if (!isfinite(ep)) continue;
        hb_raw(dat, "%.10g %s %s %s\n", ep, num_or_nan(e, "train_loss", 1, a, sizeof a),
               num_or_nan(e, "val", 100, b, sizeof b), num_or_nan(e, "test", 100, c, sizeof c));
    }
    return mask;
}

// `gnuplot -c curves.gp DAT PREFIX NBLOCKS MASKS` (an argument vector, no shell). Returns its exit
// status (-1: not started), with the reason in note when not 0.
static int curves_gnuplot(const char *script, const char *dat, const char *prefix, const char *nblocks,
                          const char *masks, char *note, size_t n) {
    char first[512] = "";
    char *argv[] = {"gnuplot", "-c", (char *)script, (char *)dat, (char *)prefix, (char *)nblocks, (char *)masks,
                    NULL};
    int rc = pb_plot_spawn(argv, first, sizeof first);
    first[strcspn(first, "\n")] = 0;
    if (rc < 0) snprintf(note, n, "cannot run gnuplot: %s", strerror(errno));
    else if (rc) snprintf(note, n, "gnuplot failed on %.400s (status %d): %.400s", script, rc, first);
    return rc;
}

// Draws the curves of the first HTML_MAX_CURVES cells with epochs. Fills cv (cv->block owned).
static void curves_render(const page *pg, const char *plotdir, curves *cv, FILE *msg) {
    cv->block = pb_xmalloc(sizeof(int) * (size_t)(pg->n ? pg->n : 1));
    cv->nblocks = 0;
    cv->note[0] = 0;
    hbuf dat = {0}, masks = {0};
    int capped = 0;
    for (int i = 0; i < pg->n; i++) {
        cv->block[i] = -1;
        if (cv->nblocks == HTML_MAX_CURVES) {
            capped = 1;
            continue;
        }
        cJSON *j = cell_json(pg, &pg->R[i]);
        int m = j ? curve_block(&dat, j, cv->nblocks) : 0;
        cJSON_Delete(j);
        if (!m) continue;
        hb_raw(&masks, "%s%d", cv->nblocks ? " " : "", m);
        cv->block[i] = cv->nblocks++;
    }
    char cdir[4200], path[4300], prefix[4300], nb[16], pdir[1100], script[1200], e2[512];
    snprintf(cdir, sizeof cdir, "%s/plots/curves", pg->dir);
    snprintf(path, sizeof path, "%s/curves.dat", cdir);
    snprintf(prefix, sizeof prefix, "%s/curve_", cdir);
    if (plotdir && plotdir[0]) snprintf(pdir, sizeof pdir, "%s", plotdir);
    else pb_plot_default_dir(pdir, sizeof pdir);
    snprintf(script, sizeof script, "%s/curves.gp", pdir);
    snprintf(nb, sizeof nb, "%d", cv->nblocks);
    if (!cv->nblocks) goto done;
    // a curve file left by an earlier run must never stand in for one this run failed to draw
    for (int k = 0; k < cv->nblocks; k++) {
        char f[4400];
        snprintf(f, sizeof f, "%s%d.svg", prefix, k);
        unlink(f);
    }
    if (pb_mkdirs(cdir, e2, sizeof e2) || pb_write_file_atomic(path, dat.b, dat.len, e2, sizeof e2)) {
        snprintf(cv->note, sizeof cv->note, "%.500s", e2);
        goto done;
    }
    if (curves_gnuplot(script, path, prefix, nb, masks.b, cv->note, sizeof cv->note) == 0 && msg)
        fprintf(msg, "html: wrote %d training-curve figures to %s/\n", cv->nblocks, cdir);
done:
    if (capped && !cv->note[0])
        snprintf(cv->note, sizeof cv->note, "curves are drawn for the first %d cells only", HTML_MAX_CURVES);
    free(dat.b);
    free(masks.b);
}

// ----------------------------------------------------------------------------
// Cells

// A JSON value as text: strings as they are, numbers %g, lists/objects as compact JSON.
static void json_value_text(const cJSON *v, char *out, size_t n) {
    if (cJSON_IsString(v)) snprintf(out, n, "%s", v->valuestring);
    else if (cJSON_IsNumber(v)) snprintf(out, n, "%g", v->valuedouble);
    else if (cJSON_IsBool(v)) snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v)) snprintf(out, n, "null");
    else {
        char *t = cJSON_PrintUnformatted(v);
        snprintf(out, n, "%s", t ? t : "?");
        free(t);
    }
}

static void dl_begin(hbuf *h, const char *term) { hb_raw(h, "<dt>%s</dt><dd>", term); }

// The method's options as "key=value, ..." (all keys but method, label and ref).
static void cell_method(hbuf *h, const cJSON *m, const pb_record *r) {
    dl_begin(h, "method");
    html_text(h, r->method_name[0] ? r->method_name : "?");
    if (strcmp(r->method, r->method_name)) html_textf(h, " (label %s)", r->method);
    int k = 0;
    for (const cJSON *c = m ? m->child : NULL; c; c = c->next) {
        if (!strcmp(c->string, "method") || !strcmp(c->string, "label") || !strcmp(c->string, "ref")) continue;
        char v[512];
        json_value_text(c, v, sizeof v);
        html_textf(h, "%s%s=%s", k++ ? ", " : ": ", c->string, v);
    }
    hb_raw(h, "</dd>\n");
}

static void cell_recipe(hbuf *h, const cJSON *rc, const pb_record *r) {
    double lr = pb_jnum(rc, "lr", NAN), scale = pb_jnum(rc, "lr_scale", 1);
    dl_begin(h, "lr");
    hb_raw(h, "%g", r->lr);
    if (scale != 1 && isfinite(lr)) hb_raw(h, " (%g &times; %g)", lr, scale);
    hb_raw(h, "</dd>\n");
    dl_begin(h, "recipe");
    html_textf(h, "%g epochs, batch %g, %s schedule, weight decay %g", pb_jnum(rc, "epochs", NAN),
               pb_jnum(rc, "batch", NAN), pb_jstr(rc, "schedule", "?"), pb_jnum(rc, "weight_decay", NAN));
    hb_raw(h, "</dd>\n");
}

static void cell_epochs_table(hbuf *h, const cJSON *eps) {
    if (!cJSON_IsArray(eps) || !cJSON_GetArraySize(eps)) return;
    hb_raw(h, "<details><summary>per-epoch numbers</summary><table><thead><tr><th>epoch</th><th>train loss</th>"
              "<th>val x100</th><th>test x100</th><th>lr</th><th>time s</th></tr></thead><tbody>");
    for (const cJSON *e = eps->child; e; e = e->next) {
        hb_raw(h, "<tr><td class=\"num\">%g</td>", pb_jnum(e, "epoch", NAN));
        const char *keys[5] = {"train_loss", "val", "test", "lr", "time_s"};
        const double scale[5] = {1, 100, 100, 1, 1};
        for (int k = 0; k < 5; k++) {
            double v = pb_jnum(e, keys[k], NAN);
            if (isfinite(v)) hb_raw(h, k == 0 ? "<td class=\"num\">%.4f</td>" : k < 3 ? "<td class=\"num\">%.2f</td>"
                                                                                 : "<td class=\"num\">%.3g</td>",
                                    v * scale[k]);
            else hb_raw(h, "<td class=\"num\">-</td>");
        }
        hb_raw(h, "</tr>");
    }
    hb_raw(h, "</tbody></table></details>\n");
}

static void cell_status(hbuf *h, const cJSON *j, const pb_record *r) {
    dl_begin(h, "status");
    if (!strcmp(r->status, "ok")) {
        html_textf(h, "ok: %s %.2f on %s (epoch %d, selection %s)", r->metric, 100 * r->score, r->split, r->epoch,
                   r->select);
    } else {
        hb_raw(h, "<span class=\"reason\">");
        html_textf(h, "%s: %s", r->status, r->reason[0] ? r->reason : "(no reason recorded)");
        hb_raw(h, "</span>");
    }
    hb_raw(h, "</dd>\n");
    dl_begin(h, "params");
    hb_raw(h, "%lld trainable (%lld adapter, %lld head) of %lld</dd>\n", r->p_trainable, r->p_adapter, r->p_head,
           r->p_total);
    dl_begin(h, "time");
    hb_raw(h, "%.1f s training, %.0f examples/s, peak RSS %.0f MiB</dd>\n", r->train_time_s, r->throughput,
           r->peak_rss_mb);
    dl_begin(h, "engine");
    html_textf(h, "%s; git %s", r->backend[0] ? r->backend : "(not recorded)", pb_jstr(j, "git_rev", "unknown"));
    hb_raw(h, "</dd>\n");
}

// Record i's training curves (curve_<block>.svg), when drawn and complete.
static void cell_curve(hbuf *h, const page *pg, int i, const curves *cv) {
    if (cv->block[i] < 0) return;
    char path[4400], pfx[32];
    snprintf(path, sizeof path, "%s/plots/curves/curve_%d.svg", pg->dir, cv->block[i]);
    snprintf(pfx, sizeof pfx, "c%d-", cv->block[i]);
    hbuf fig = {0};
    if (!svg_inline_file(&fig, path, pfx)) {
        hb_raw(h, "<figure class=\"curve\" id=\"");
        html_id(h, "curve-", pg->R[i].id);
        hb_raw(h, "\">\n");
        hb_put(h, fig.b, fig.len);
        hb_raw(h, "\n</figure>\n");
    }
    free(fig.b);
}

static void cell_card(hbuf *h, const page *pg, int i, const curves *cv) {
    const pb_record *r = &pg->R[i];
    cJSON *j = cell_json(pg, r);
    const cJSON *cfg = cJSON_GetObjectItem(j, "config");
    int ok = !strcmp(r->status, "ok");
    hb_raw(h, "<article class=\"cell %s\" id=\"", ok ? "ok" : "failed");
    html_id(h, "cell-", r->id);
    hb_raw(h, "\">\n<h3>");
    html_textf(h, "%s%s%s · %s · seed %d", pg->multi_model ? r->model : "", pg->multi_model ? " " : "", r->method,
               r->dataset, r->seed);
    char ax[256];
    pb_axes_label(r->axes, ax, sizeof ax);
    if (ax[0]) html_textf(h, " · %s", ax);
    if (ok) hb_raw(h, "<span class=\"badge ok\">%.1f</span>", 100 * r->score);
    else hb_raw(h, "<span class=\"badge failed\">failed</span>");
    hb_raw(h, "</h3>\n<dl>\n");
    dl_begin(h, "model");
    html_text(h, r->model);
    hb_raw(h, "</dd>\n");
    dl_begin(h, "dataset");
    html_textf(h, "%s (%s)", r->dataset, pb_jstr(cJSON_GetObjectItem(cfg, "dataset"), "spec", "?"));
    hb_raw(h, "</dd>\n");
    cell_method(h, cJSON_GetObjectItem(cfg, "method"), r);
    if (r->rank > 0) {
        dl_begin(h, "rank");
        hb_raw(h, "%d</dd>\n", r->rank);
    }
    cell_recipe(h, cJSON_GetObjectItem(cfg, "recipe"), r);
    dl_begin(h, "seed");
    hb_raw(h, "%d</dd>\n", r->seed);
    cell_status(h, j, r);
    dl_begin(h, "id");
    hb_raw(h, "<code>");
    html_text(h, r->id);
    hb_raw(h, "</code></dd>\n</dl>\n");
    cell_curve(h, pg, i, cv);
    cell_epochs_table(h, cJSON_GetObjectItem(j, "epochs"));
    if (!j) hb_raw(h, "<p class=\"note\">The cell file could not be read again.</p>\n");
    hb_raw(h, "</article>\n");
    cJSON_Delete(j);
}

static void section_failed(hbuf *h, const page *pg) {
    if (!pg->nfailed) return;
    hb_raw(h, "<section id=\"failed\">\n<h2>Failed cells (%d)</h2>\n<ul>\n", pg->nfailed);
    for (int i = 0; i < pg->n; i++) {
        const pb_record *r = &pg->R[i];
        if (!strcmp(r->status, "ok")) continue;
        hb_raw(h, "<li><a href=\"#");
        html_id(h, "cell-", r->id);
        hb_raw(h, "\">");
        html_textf(h, "%s %s %s seed %d", r->model, r->method, r->dataset, r->seed);
        hb_raw(h, "</a>: <span class=\"reason\">");
        html_text(h, r->reason[0] ? r->reason : "(no reason recorded)");
        hb_raw(h, "</span></li>\n");
    }
    hb_raw(h, "</ul>\n</section>\n");
}

static void section_cells(hbuf *h, const page *pg, const curves *cv) {
    hb_raw(h, "<section id=\"cells\">\n<h2>Cells (%d)</h2>\n", pg->n);
    hb_raw(h, "<p class=\"muted\">In grid order. Curves: validation and test metric x100 (left axis) and the "
              "training loss (right axis, dashed) per epoch.</p>\n");
    if (cv->note[0]) {
        hb_raw(h, "<p class=\"note\" id=\"curves-note\">Training curves: ");
        html_text(h, cv->note);
        hb_raw(h, ". The per-epoch numbers are in each cell.</p>\n");
    }
    hb_raw(h, "<div class=\"cells\">\n");
    for (int i = 0; i < pg->n; i++) cell_card(h, pg, i, cv);
    hb_raw(h, "</div>\n</section>\n");
}

// ----------------------------------------------------------------------------
// Engine fingerprint and skipped files

typedef struct {
    char backend[160], git[64];
    int threads;
} fingerprint;

static int cmp_fp(const void *a, const void *b) {
    const fingerprint *x = a, *y = b;
    int c = strcmp(x->backend, y->backend);
    if (!c) c = strcmp(x->git, y->git);
    return c ? c : (x->threads > y->threads) - (x->threads < y->threads);
}

static void section_engine(hbuf *h, const page *pg) {
    hb_raw(h, "<section id=\"engine\">\n<h2>Engine</h2>\n<p class=\"muted\">What produced the numbers, as each "
              "cell file records it: backend, GEMM provider and kernel, threads, git revision.</p>\n");
    fingerprint *fp = pb_xcalloc((size_t)(pg->n ? pg->n : 1), sizeof(fingerprint));
    for (int i = 0; i < pg->n; i++) {
        cJSON *j = cell_json(pg, &pg->R[i]);
        snprintf(fp[i].backend, sizeof fp[i].backend, "%s", pg->R[i].backend);
        snprintf(fp[i].git, sizeof fp[i].git, "%s", pb_jstr(j, "git_rev", "unknown"));
        fp[i].threads = (int)pb_jnum(j, "threads", 0);
        cJSON_Delete(j);
    }
    qsort(fp, (size_t)pg->n, sizeof(fingerprint), cmp_fp);
    hb_raw(h, "<table id=\"table-engine\"><thead><tr><th>backend</th><th>threads</th><th>git revision</th>"
              "<th>cells</th></tr></thead><tbody>\n");
    for (int i = 0, k; i < pg->n; i = k) {
        for (k = i + 1; k < pg->n && !cmp_fp(&fp[i], &fp[k]); k++) {}
        hb_raw(h, "<tr><td>");
        html_text(h, fp[i].backend[0] ? fp[i].backend : "(not recorded)");
        hb_raw(h, "</td><td class=\"num\">%d</td><td><code>", fp[i].threads);
        html_text(h, fp[i].git);
        hb_raw(h, "</code></td><td class=\"num\">%d</td></tr>\n", k - i);
    }
    hb_raw(h, "</tbody></table>\n</section>\n");
    free(fp);
}

static void section_skipped(hbuf *h, const page *pg) {
    if (!pg->sk.n) return;
    hb_raw(h, "<section id=\"skipped\">\n<h2>Skipped cell files (%d)</h2>\n<p class=\"muted\">Left out of every "
              "table: files report cannot trust.</p>\n<ul>\n", pg->sk.n);
    for (int i = 0; i < pg->sk.n; i++) {
        hb_raw(h, "<li>");
        html_text(h, pg->sk.msg[i]);
        hb_raw(h, "</li>\n");
    }
    hb_raw(h, "</ul>\n</section>\n");
}

// ----------------------------------------------------------------------------

// Learning-rate sweeps (pb_report_sweeps): the best value per series, flagged when it is the
// smallest or largest value swept.
static void section_sweep(hbuf *h, const page *pg) {
    pb_sweep *S = NULL;
    int ns = pb_report_sweeps(pg->A, pg->na, pg->nc, &S);
    if (!ns) return;
    hb_raw(h, "<section id=\"sweep\">\n<h2>Learning-rate sweep</h2>\n<p class=\"muted\">");
    html_textf(h, "Best %s of each series by its average over the datasets (values every dataset %shas); one at the "
                  "smallest or largest value swept means the sweep does not bracket the optimum.", S[0].axis,
               pg->nb > 1 ? "of its table " : "");
    hb_raw(h, "</p>\n<table class=\"results\" id=\"table-sweep\">\n<thead><tr><th>Series</th><th>");
    html_textf(h, "%s swept", S[0].axis);
    hb_raw(h, "</th><th>Best</th><th>Avg at best</th><th>Best per dataset</th><th>Note</th></tr></thead>\n<tbody>\n");
    for (int k = 0; k < ns; k++) {
        hb_raw(h, "<tr><th class=\"label\">");
        if (pg->multi_model) html_textf(h, "%s ", S[k].model);
        html_text(h, S[k].method);
        if (S[k].others[0]) html_textf(h, " %s", S[k].others);
        if (S[k].nx)
            hb_raw(h, "</th><td class=\"num\">%g … %g (%d)</td><td class=\"num\">%g</td><td class=\"num\">%.1f</td><td>",
                   S[k].xmin, S[k].xmax, S[k].nx, S[k].best_x, S[k].best_avg);
        else
            hb_raw(h, "</th><td>-</td><td>-</td><td>-</td><td>");
        html_text(h, S[k].per_dataset);
        hb_raw(h, "</td><td>%s</td></tr>\n",
               !S[k].nx ? "no value has every dataset"
               : !S[k].edge ? ""
               : S[k].nx < 3 ? "<span class=\"fail\">optimum at the edge of the sweep</span> (fewer than 3 values cannot "
                               "bracket one)"
                             : "<span class=\"fail\">optimum at the edge of the sweep</span>");
    }
    hb_raw(h, "</tbody>\n</table>\n</section>\n");
    free(S);
}

pb_status pb_report_html_write(const char *dir, const char *reference, const char *plotdir, const pb_plot_figs *figs,
                               const char *fig_note, FILE *msg, char *err, size_t errlen) {
    page pg;
    pb_status st = page_load(&pg, dir, reference, err, errlen);
    if (st) {
        page_free(&pg);
        return st;
    }
    curves cv;
    curves_render(&pg, plotdir, &cv, msg);
    if (cv.note[0] && msg) fprintf(msg, "html: training curves: %s\n", cv.note);
    hbuf h = {0};
    page_head(&h, &pg);
    page_summary(&h, &pg);
    hb_raw(&h, "<main>\n");
    table_results(&h, &pg);
    table_paper(&h, &pg);
    section_sweep(&h, &pg);
    section_figures(&h, &pg, figs, fig_note);
    section_failed(&h, &pg);
    section_cells(&h, &pg, &cv);
    section_engine(&h, &pg);
    section_skipped(&h, &pg);
    hb_raw(&h, "</main>\n</body>\n</html>\n");
    char path[4200];
    snprintf(path, sizeof path, "%s/index.html", dir);
    st = pb_write_file_atomic(path, h.b, h.len, err, errlen);
    if (!st && msg) fprintf(msg, "html: wrote %s\n", path);
    free(h.b);
    free(cv.block);
    page_free(&pg);
    return st;
}

pb_status pb_report_html_make(const char *dir, const char *reference, const char *plotdir, FILE *msg, char *err,
                              size_t errlen) {
    pb_plot_figs figs = {0};
    char perr[1024] = "";
    if (pb_plot_write_figs(dir, plotdir, msg, &figs, perr, sizeof perr)) {
        if (msg) fprintf(msg, "plot: %s\n", perr);
    } else {
        perr[0] = 0;
    }
    pb_status st = pb_report_html_write(dir, reference, plotdir, &figs, perr, msg, err, errlen);
    pb_plot_figs_free(&figs);
    return st;
}
