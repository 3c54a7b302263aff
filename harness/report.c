// report.c: tables in the papers' layout from a results directory.
#include "report.h"
#include "jsonutil.h"
#include <math.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

// Keeps dst when it equals v (or is already mixed), else marks it "mixed: <dst>". first: dst is
// unset and takes v.
static void fp_merge(char *dst, size_t n, const char *v, int first) {
    if (first) snprintf(dst, n, "%s", v);
    else if (strcmp(dst, v) && strncmp(dst, "mixed: ", 7) && n > 8) {
        memmove(dst + 7, dst, n - 8); // keeps the first n - 8 bytes of the old value
        memcpy(dst, "mixed: ", 7);
        dst[n - 1] = 0;
    }
}

double pb_median(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void pb_aggregate(const pb_record *recs, int n, pb_agg **aggs, int *nagg, int *nrows, int *ncols) {
    // Row and column keys in first-seen order.
    char (*rowk)[400] = pb_xcalloc((size_t)(n ? n : 1), 400);
    char (*colk)[128] = pb_xcalloc((size_t)(n ? n : 1), 128);
    int nr = 0, nc = 0;
    pb_agg *A = pb_xcalloc((size_t)(n ? n : 1), sizeof(pb_agg));
    int na = 0;
    double *buf = pb_xmalloc(sizeof(double) * (size_t)(n ? n : 1));
    double *pbuf = pb_xmalloc(sizeof(double) * (size_t)(n ? n : 1));
    double *hbuf = pb_xmalloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        const pb_record *r = &recs[i];
        char rk[400];
        snprintf(rk, sizeof(rk), "%s|%s|%s", r->model, r->method, r->axes);
        int row = -1, col = -1;
        for (int k = 0; k < nr; k++)
            if (!strcmp(rowk[k], rk)) row = k;
        if (row < 0) snprintf(rowk[row = nr++], 400, "%s", rk);
        for (int k = 0; k < nc; k++)
            if (!strcmp(colk[k], r->dataset)) col = k;
        if (col < 0) snprintf(colk[col = nc++], 128, "%s", r->dataset);
        int a = -1;
        for (int k = 0; k < na; k++)
            if (A[k].row == row && A[k].col == col) a = k;
        if (a >= 0) continue;
        a = na++;
        pb_agg *g = &A[a];
        snprintf(g->model, sizeof(g->model), "%s", r->model);
        snprintf(g->method, sizeof(g->method), "%s", r->method);
        snprintf(g->method_ref, sizeof(g->method_ref), "%s", r->method_ref);
        snprintf(g->axes, sizeof(g->axes), "%s", r->axes);
        snprintf(g->dataset, sizeof(g->dataset), "%s", r->dataset);
        snprintf(g->dataset_ref, sizeof(g->dataset_ref), "%s", r->dataset_ref);
        snprintf(g->dataset_group, sizeof(g->dataset_group), "%s", r->dataset_group);
        snprintf(g->metric, sizeof(g->metric), "%s", r->metric);
        snprintf(g->select, sizeof(g->select), "%s", r->select);
        snprintf(g->split, sizeof(g->split), "%s", r->split);
        g->rank = r->rank;
        g->lr = r->lr;
        g->row = row;
        g->col = col;
        int k = 0;
        for (int j = i; j < n; j++) {
            const pb_record *q = &recs[j];
            if (strcmp(q->model, r->model) || strcmp(q->method, r->method) || strcmp(q->axes, r->axes) ||
                strcmp(q->dataset, r->dataset))
                continue;
            if (strcmp(q->status, "ok") || !isfinite(q->score)) {
                g->failed++;
                continue;
            }
            if (!g->metric[0]) snprintf(g->metric, sizeof(g->metric), "%s", q->metric);
            if (!g->backend[0]) snprintf(g->backend, sizeof(g->backend), "%s", q->backend);
            else if (strcmp(g->backend, q->backend) && strncmp(g->backend, "mixed: ", 7))
                snprintf(g->backend, sizeof(g->backend), "mixed: %.140s", q->backend);
            fp_merge(g->git_rev, sizeof g->git_rev, q->git_rev, k == 0);
            fp_merge(g->lapack, sizeof g->lapack, q->lapack, k == 0);
            fp_merge(g->build, sizeof g->build, q->build, k == 0);
            g->threads = k == 0 || g->threads == q->threads ? q->threads : -1;
            g->n_eval = k == 0 ? q->n_eval : (q->n_eval < g->n_eval ? q->n_eval : g->n_eval);
            buf[k] = 100.0 * q->score;
            pbuf[k] = (double)(q->p_trainable - q->p_head);
            hbuf[k] = (double)q->p_head;
            k++;
        }
        g->n = k;
        g->mean = g->std = g->min = g->max = NAN;
        if (k) {
            double s = 0, mn = buf[0], mx = buf[0];
            for (int j = 0; j < k; j++) {
                s += buf[j];
                mn = PB_MIN(mn, buf[j]);
                mx = PB_MAX(mx, buf[j]);
            }
            g->mean = s / k;
            double ss = 0;
            for (int j = 0; j < k; j++) ss += (buf[j] - g->mean) * (buf[j] - g->mean);
            g->std = k > 1 ? sqrt(ss / (k - 1)) : 0;
            g->min = mn;
            g->max = mx;
        }
        g->median = pb_median(buf, k);
        g->p_trainable_nohead = pb_median(pbuf, k);
        g->p_head = pb_median(hbuf, k);
    }
    free(buf);
    free(pbuf);
    free(hbuf);
    free(rowk);
    free(colk);
    *aggs = A;
    *nagg = na;
    if (nrows) *nrows = nr;
    if (ncols) *ncols = nc;
}

// Parameter count as the papers print it: 0.29M, 18.4K, 96.
void pb_report_fmt_params(double p, char *out, size_t n) {
    if (!isfinite(p)) snprintf(out, n, "-");
    else if (p >= 1e6) snprintf(out, n, "%.2fM", p / 1e6);
    else if (p >= 1e3) snprintf(out, n, "%.1fK", p / 1e3);
    else snprintf(out, n, "%.0f", p);
}

const pb_agg *pb_agg_find(const pb_agg *A, int na, int row, int col) {
    for (int i = 0; i < na; i++)
        if (A[i].row == row && A[i].col == col) return &A[i];
    return NULL;
}

void pb_axes_label(const char *axes, char *ax, size_t n) {
    ax[0] = 0;
    if (!strcmp(axes, "{}")) return;
    cJSON *j = NULL;
    pb_json_parse_text(axes, "axes", &j, NULL, 0);
    size_t k = 0;
    for (const cJSON *c = j ? j->child : NULL; c && k < n; c = c->next) {
        const char *sep = k ? " " : "";
        if (cJSON_IsNumber(c)) k += (size_t)snprintf(ax + k, n - k, "%s%s=%g", sep, c->string, c->valuedouble);
        else if (cJSON_IsString(c)) k += (size_t)snprintf(ax + k, n - k, "%s%s=%s", sep, c->string, c->valuestring);
        else {
            char *v = cJSON_PrintUnformatted(c);
            k += (size_t)snprintf(ax + k, n - k, "%s%s=%s", sep, c->string, v ? v : "?");
            free(v);
        }
    }
    cJSON_Delete(j);
}

// The dataset of table column c, and the first aggregate of table row r.
const char *pb_agg_col_dataset(const pb_agg *A, int na, int c) {
    for (int i = 0; i < na; i++)
        if (A[i].col == c) return A[i].dataset;
    return "?";
}

static const char *col_group(const pb_agg *A, int na, int c) {
    for (int i = 0; i < na; i++)
        if (A[i].col == c) return A[i].dataset_group;
    return "";
}

int pb_report_columns(const pb_agg *A, int na, int nc, pb_report_col *cols) {
    int k = 0;
    for (int c = 0; c < nc;) {
        const char *g = col_group(A, na, c);
        int e = c + 1;
        while (g[0] && e < nc && !strcmp(col_group(A, na, e), g)) e++;
        for (int d = c; d < e; d++) cols[k++] = (pb_report_col){d, d + 1, NULL};
        if (g[0]) cols[k++] = (pb_report_col){c, e, g};
        c = e;
    }
    return k;
}

double pb_report_col_value(const pb_agg *A, int na, int r, const pb_report_col *col) {
    double s = 0;
    for (int c = col->c0; c < col->c1; c++) {
        const pb_agg *g = pb_agg_find(A, na, r, c);
        if (!g || !g->n) return NAN;
        s += g->median;
    }
    return s / (col->c1 - col->c0);
}

const pb_agg *pb_agg_row_first(const pb_agg *A, int na, int r) {
    for (int i = 0; i < na; i++)
        if (A[i].row == r) return &A[i];
    return NULL;
}

static int uf_find(int *parent, int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
}

int pb_report_components(const pb_agg *A, int na, int nr, int nc, int *row_block, int *col_block) {
    // union-find over nodes 0..nr (rows) and nr..nr+nc (columns), one edge per aggregate
    int *parent = pb_xmalloc(sizeof(int) * (size_t)(nr + nc + 1));
    for (int i = 0; i < nr + nc; i++) parent[i] = i;
    for (int i = 0; i < na; i++) {
        int a = uf_find(parent, A[i].row), b = uf_find(parent, nr + A[i].col);
        if (a != b) parent[a < b ? b : a] = a < b ? a : b;
    }
    // block numbers in first-seen order of rows (every column hangs off some row)
    int *num = pb_xmalloc(sizeof(int) * (size_t)(nr + nc + 1));
    for (int i = 0; i < nr + nc; i++) num[i] = -1;
    int nb = 0;
    for (int r = 0; r < nr; r++) {
        int root = uf_find(parent, r);
        if (num[root] < 0) num[root] = nb++;
        row_block[r] = num[root];
    }
    for (int c = 0; c < nc; c++) col_block[c] = num[uf_find(parent, nr + c)];
    free(num);
    free(parent);
    return nb;
}

int pb_report_blocks(const pb_agg *A, int na, int nr, int nc, pb_report_block **out) {
    if (nr <= 0) { // no rows: one empty block, so that a table still prints its header
        *out = pb_xcalloc(1, sizeof(pb_report_block));
        (*out)->A = pb_xmalloc(sizeof(pb_agg));
        return 1;
    }
    int *rb = pb_xmalloc(sizeof(int) * (size_t)nr), *cb = pb_xmalloc(sizeof(int) * (size_t)(nc ? nc : 1));
    int *rmap = pb_xmalloc(sizeof(int) * (size_t)nr), *cmap = pb_xmalloc(sizeof(int) * (size_t)(nc ? nc : 1));
    int nb = pb_report_components(A, na, nr, nc, rb, cb);
    pb_report_block *B = pb_xcalloc((size_t)nb, sizeof(pb_report_block));
    // local row and column numbers: the rank within the block, in global order
    for (int r = 0; r < nr; r++) rmap[r] = B[rb[r]].nr++;
    for (int c = 0; c < nc; c++)
        if (cb[c] >= 0) cmap[c] = B[cb[c]].nc++;
    for (int i = 0; i < na; i++) B[rb[A[i].row]].na++;
    for (int b = 0; b < nb; b++) {
        B[b].A = pb_xmalloc(sizeof(pb_agg) * (size_t)(B[b].na ? B[b].na : 1));
        B[b].na = 0;
    }
    for (int i = 0; i < na; i++) {
        pb_report_block *k = &B[rb[A[i].row]];
        pb_agg *g = &k->A[k->na++];
        *g = A[i];
        g->row = rmap[A[i].row];
        g->col = cmap[A[i].col];
        // the block's models, first-seen
        int seen = 0;
        for (int j = 0; j < k->na - 1 && !seen; j++) seen = !strcmp(k->A[j].model, g->model);
        if (!seen) {
            size_t u = strlen(k->models);
            if (u < sizeof k->models)
                snprintf(k->models + u, sizeof k->models - u, "%s%s", k->nmodels ? ", " : "", g->model);
            k->nmodels++;
        }
    }
    for (int b = 0; b < nb; b++) B[b].multi_model = B[b].nmodels > 1;
    free(rb);
    free(cb);
    free(rmap);
    free(cmap);
    *out = B;
    return nb;
}

void pb_report_blocks_free(pb_report_block *B, int nb) {
    for (int b = 0; b < nb && B; b++) free(B[b].A);
    free(B);
}

// Row label: method, plus the grid-axis values when they are not empty.
void pb_report_row_label(const pb_agg *g, int multi_model, char *out, size_t n) {
    char ax[256];
    pb_axes_label(g->axes, ax, sizeof ax);
    snprintf(out, n, "%s%s%s%s%s", multi_model ? g->model : "", multi_model ? " " : "", g->method, ax[0] ? " " : "",
             ax);
}

pb_status pb_reference_load(const char *path, pb_reference *ref, char *err, size_t errlen) {
    memset(ref, 0, sizeof(*ref));
    if (!path || !path[0]) return PB_OK;
    pb_status st = pb_json_read_file(path, &ref->root, err, errlen);
    if (st) return st;
    ref->columns = cJSON_GetObjectItem(ref->root, "columns");
    ref->rows = cJSON_GetObjectItem(ref->root, "rows");
    if (!cJSON_IsArray(ref->columns) || !cJSON_IsArray(ref->rows)) {
        cJSON_Delete(ref->root);
        ref->root = NULL;
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: reference table needs \"columns\" and \"rows\" lists", path);
    }
    return PB_OK;
}

void pb_reference_free(pb_reference *ref) {
    cJSON_Delete(ref->root);
    memset(ref, 0, sizeof(*ref));
}

const cJSON *pb_reference_row(const pb_reference *ref, const char *method_ref, const char *model) {
    if (!ref->root || !method_ref[0]) return NULL;
    for (const cJSON *r = ref->rows->child; r; r = r->next) {
        const cJSON *m = cJSON_GetObjectItem(r, "method"), *mm = cJSON_GetObjectItem(r, "model");
        if (!cJSON_IsString(m) || strcmp(m->valuestring, method_ref)) continue;
        if (cJSON_IsString(mm) && strcmp(mm->valuestring, model)) continue;
        return r;
    }
    return NULL;
}

double pb_reference_value(const cJSON *row, const char *col) {
    const cJSON *v = row ? cJSON_GetObjectItem(cJSON_GetObjectItem(row, "values"), col) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

void pb_report_manifest(const char *dir, const char *reference, char *suite, size_t sn, char *refpath, size_t rn,
                        char *desc, size_t dn) {
    char path[4096];
    cJSON *man = NULL;
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    pb_json_read_file(path, &man, NULL, 0);
    snprintf(suite, sn, "%s", pb_jstr(man, "suite", "results"));
    if (reference && reference[0]) snprintf(refpath, rn, "%s", reference);
    else snprintf(refpath, rn, "%s", pb_jstr(man, "reference", ""));
    if (desc) snprintf(desc, dn, "%s", pb_jstr(man, "description", ""));
    cJSON_Delete(man);
}

// The numeric value of axis in a canonical axes object; *others gets the remaining axes as a
// label ("rank=16"). Returns 0 when axis is absent or not a number.
static int axis_split(const char *axes, const char *axis, double *x, char *others, size_t n) {
    cJSON *j = NULL;
    pb_json_parse_text(axes, "axes", &j, NULL, 0);
    const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, axis) : NULL;
    int ok = cJSON_IsNumber(v);
    if (ok) {
        *x = v->valuedouble;
        cJSON_DeleteItemFromObjectCaseSensitive(j, axis);
        char *rest = pb_json_canonical(j);
        pb_axes_label(rest, others, n);
        free(rest);
    }
    cJSON_Delete(j);
    return ok;
}

int pb_report_sweeps(const pb_agg *A, int na, int ncols, pb_sweep **out) {
    *out = NULL;
    // the axis plot draws: "lr" when some row has it, else "lr_scale"
    const char *axis = NULL;
    char others[256];
    double x;
    for (int pass = 0; pass < 2 && !axis; pass++)
        for (int i = 0; i < na && !axis; i++)
            if (axis_split(A[i].axes, pass ? "lr_scale" : "lr", &x, others, sizeof others)) axis = pass ? "lr_scale" : "lr";
    if (!axis || ncols <= 0) return 0;
    // a series needs every dataset of its block (the table it sits in), not of the whole results
    int nr = 0;
    for (int i = 0; i < na; i++) nr = PB_MAX(nr, A[i].row + 1);
    int *rb = pb_xmalloc(sizeof(int) * (size_t)(nr ? nr : 1)), *cb = pb_xmalloc(sizeof(int) * (size_t)ncols);
    int nb = pb_report_components(A, na, nr, ncols, rb, cb);
    int *bcols = pb_xcalloc((size_t)(nb ? nb : 1), sizeof(int));
    for (int c = 0; c < ncols; c++)
        if (cb[c] >= 0) bcols[cb[c]]++;
    pb_sweep *S = pb_xcalloc((size_t)na, sizeof(pb_sweep));
    int ns = 0;
    // per series: the distinct x values, the sum of the medians and the datasets present at each
    double *xs = pb_xmalloc(sizeof(double) * (size_t)na), *sum = pb_xmalloc(sizeof(double) * (size_t)na);
    int *cnt = pb_xmalloc(sizeof(int) * (size_t)na);
    for (int i = 0; i < na; i++) {
        if (A[i].n == 0 || !axis_split(A[i].axes, axis, &x, others, sizeof others)) continue;
        int s = 0;
        while (s < ns && (strcmp(S[s].model, A[i].model) || strcmp(S[s].method, A[i].method) || strcmp(S[s].others, others)))
            s++;
        if (s < ns) continue; // done with this series already
        pb_sweep *w = &S[ns++];
        snprintf(w->model, sizeof w->model, "%s", A[i].model);
        snprintf(w->method, sizeof w->method, "%s", A[i].method);
        snprintf(w->others, sizeof w->others, "%s", others);
        snprintf(w->axis, sizeof w->axis, "%s", axis);
        int nx = 0;
        for (int j = i; j < na; j++) {
            char o2[256];
            double xj;
            if (A[j].n == 0 || strcmp(A[j].model, w->model) || strcmp(A[j].method, w->method) ||
                !axis_split(A[j].axes, axis, &xj, o2, sizeof o2) || strcmp(o2, w->others))
                continue;
            int k = 0;
            while (k < nx && xs[k] != xj) k++;
            if (k == nx) xs[nx] = xj, sum[nx] = 0, cnt[nx] = 0, nx++;
            sum[k] += A[j].median;
            cnt[k]++;
        }
        if (nx < 2) { // one value (e.g. a text model's own grid beside a ViT's lr_scale sweep): no sweep
            memset(w, 0, sizeof *w);
            ns--;
            continue;
        }
        w->xmin = INFINITY, w->xmax = -INFINITY, w->best_avg = -INFINITY, w->best_x = NAN;
        const int need = bcols[rb[A[i].row]];
        for (int k = 0; k < nx; k++) {
            if (cnt[k] != need) continue;
            w->nx++;
            w->xmin = PB_MIN(w->xmin, xs[k]);
            w->xmax = PB_MAX(w->xmax, xs[k]);
            double avg = sum[k] / need;
            if (avg > w->best_avg || (avg == w->best_avg && xs[k] < w->best_x)) w->best_avg = avg, w->best_x = xs[k];
        }
        w->edge = w->nx > 0 && (w->best_x == w->xmin || w->best_x == w->xmax);
        // per dataset: the best value and whether it is at that dataset's edge
        size_t used = 0;
        for (int c = 0; c < ncols; c++) {
            double bx = NAN, by = -INFINITY, lo = INFINITY, hi = -INFINITY;
            const char *dn = NULL;
            for (int j = 0; j < na; j++) {
                char o2[256];
                double xj;
                if (A[j].col != c || A[j].n == 0 || strcmp(A[j].model, w->model) || strcmp(A[j].method, w->method) ||
                    !axis_split(A[j].axes, axis, &xj, o2, sizeof o2) || strcmp(o2, w->others))
                    continue;
                dn = A[j].dataset;
                lo = PB_MIN(lo, xj);
                hi = PB_MAX(hi, xj);
                if (A[j].median > by || (A[j].median == by && xj < bx)) by = A[j].median, bx = xj;
            }
            if (dn && used < sizeof w->per_dataset)
                used += (size_t)snprintf(w->per_dataset + used, sizeof w->per_dataset - used, "%s%s %g%s",
                                         used ? ", " : "", dn, bx, lo < hi && (bx == lo || bx == hi) ? " (edge)" : "");
        }
    }
    free(xs);
    free(sum);
    free(cnt);
    free(rb);
    free(cb);
    free(bcols);
    if (!ns) free(S), S = NULL;
    *out = S;
    return ns;
}

static void fmt_cell(const pb_agg *g, int tex, char *out, size_t n) {
    if (!g || g->n == 0) {
        snprintf(out, n, "%s", g && g->failed ? "fail" : "-");
        return;
    }
    if (g->n > 1) {
        if (tex) snprintf(out, n, "%.1f$_{\\pm%.1f}$", g->median, g->std);
        else snprintf(out, n, "%.1f ±%.1f", g->median, g->std);
    } else {
        snprintf(out, n, "%.1f", g->median);
    }
}

// LaTeX text: the ten specials escaped (\ & % $ # _ { } ~ ^), newlines as spaces. Never cuts
// an escape or a UTF-8 sequence in half (the output is shortened at a character boundary).
static void tex_escape(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s; s++) {
        const char *rep = NULL;
        char one[2] = {*s, 0};
        switch (*s) {
        case '\\': rep = "\\textbackslash{}"; break;
        case '~': rep = "\\textasciitilde{}"; break;
        case '^': rep = "\\textasciicircum{}"; break;
        case '&': rep = "\\&"; break;
        case '%': rep = "\\%"; break;
        case '$': rep = "\\$"; break;
        case '#': rep = "\\#"; break;
        case '_': rep = "\\_"; break;
        case '{': rep = "\\{"; break;
        case '}': rep = "\\}"; break;
        case '\n':
        case '\r': rep = " "; break;
        default: rep = one;
        }
        size_t l = strlen(rep);
        // a UTF-8 lead byte: keep the whole sequence or nothing
        size_t seq = ((unsigned char)*s & 0xE0) == 0xC0 ? 2 : ((unsigned char)*s & 0xF0) == 0xE0 ? 3
                     : ((unsigned char)*s & 0xF8) == 0xF0 ? 4 : 1;
        if (k + (seq > l ? seq : l) + 1 > n) break;
        memcpy(out + k, rep, l);
        k += l;
    }
    out[k] = 0;
}

// A Markdown table cell: '|' escaped, newlines as spaces (same boundary rule as tex_escape).
static void md_escape(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s; s++) {
        size_t seq = ((unsigned char)*s & 0xE0) == 0xC0 ? 2 : ((unsigned char)*s & 0xF0) == 0xE0 ? 3
                     : ((unsigned char)*s & 0xF8) == 0xF0 ? 4 : 1;
        if (k + (seq > 2 ? seq : 2) + 1 > n) break;
        if (*s == '|') out[k++] = '\\', out[k++] = '|';
        else if (*s == '\n' || *s == '\r') out[k++] = ' ';
        else out[k++] = *s;
    }
    out[k] = 0;
}

// Appends s to the growing buffer *b (cap, len) as one RFC 4180 CSV field: quoted when it holds
// a comma, quote, CR or LF, with quotes doubled.
static void csv_field(char **b, size_t *cap, size_t *len, const char *s) {
    int q = strpbrk(s, ",\"\r\n") != NULL;
    size_t need = strlen(s) * 2 + 3;
    while (*len + need + 1 > *cap) *b = pb_xrealloc(*b, *cap *= 2);
    char *o = *b + *len;
    if (q) *o++ = '"';
    for (; *s; s++) {
        if (*s == '"') *o++ = '"';
        *o++ = *s;
    }
    if (q) *o++ = '"';
    *o = 0;
    *len = (size_t)(o - *b);
}

pb_status pb_report_write(const char *dir, const char *reference_path, FILE *out, int *nskipped, char *err,
                          size_t errlen) {
    pb_record *R = NULL;
    int n = 0;
    pb_skips sk = {0};
    pb_status st = pb_results_load(dir, &R, &n, &sk, err, errlen);
    if (st) return st;
    if (nskipped) *nskipped = pb_skips_print(&sk, "report", stderr);
    char path[4096], refpath[1024] = "", suite[64];
    pb_report_manifest(dir, reference_path, suite, sizeof suite, refpath, sizeof refpath, NULL, 0);
    pb_reference ref;
    if ((st = pb_reference_load(refpath, &ref, err, errlen))) {
        pb_skips_free(&sk);
        free(R);
        return st;
    }

    pb_agg *A = NULL;
    pb_report_col *cols = NULL; // the table's display columns
    pb_report_block *blk = NULL; // the tables' blocks (nb)
    int nb = 0;
    int na = 0, nr = 0, nc = 0;
    pb_aggregate(R, n, &A, &na, &nr, &nc);
    int multi_model = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(R[i].model, R[0].model)) multi_model = 1;

    // results.csv: one line per cell.
    size_t cap = 1 << 16, len = 0;
    char *csv = pb_xmalloc(cap);
#define APP(buf, ...)                                                                                             \
    do {                                                                                                         \
        int need_ = snprintf(NULL, 0, __VA_ARGS__);                                                              \
        while (len + (size_t)need_ + 1 > cap) buf = pb_xrealloc(buf, cap *= 2);                                  \
        len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__);                                               \
    } while (0)
    APP(csv, "id,model,method,method_name,dataset,seed,rank,lr,axes,status,metric,split,select,epoch,score,val,test,"
             "params_trainable,params_adapter,params_head,params_total,train_time_s,throughput_ex_s,peak_rss_mb,reason,"
             "backend\n");
    for (int i = 0; i < n; i++) {
        const pb_record *r = &R[i];
        const char *text[5] = {r->id, r->model, r->method, r->method_name, r->dataset};
        for (int f = 0; f < 5; f++) {
            if (f) APP(csv, ",");
            csv_field(&csv, &cap, &len, text[f]);
        }
        APP(csv, ",%d,%d,%.10g,", r->seed, r->rank, r->lr);
        { // the grid axes as JSON with the shortest round-trip numbers (0.3, not 0.29999999999999999)
            cJSON *ax = NULL;
            pb_json_parse_text(r->axes, "axes", &ax, NULL, 0);
            char *t = ax ? cJSON_PrintUnformatted(ax) : NULL;
            csv_field(&csv, &cap, &len, t ? t : r->axes);
            free(t);
            cJSON_Delete(ax);
        }
        APP(csv, ",");
        csv_field(&csv, &cap, &len, r->status);
        APP(csv, ",%s,%s,%s,%d,%.10g,%.10g,%.10g,%lld,%lld,%lld,%lld,%.3f,%.3f,%.1f,", r->metric, r->split,
            r->select, r->epoch, r->score, r->val, r->test, r->p_trainable, r->p_adapter, r->p_head, r->p_total,
            r->train_time_s, r->throughput, r->peak_rss_mb);
        csv_field(&csv, &cap, &len, r->reason);
        APP(csv, ",");
        csv_field(&csv, &cap, &len, r->backend);
        APP(csv, "\n");
    }
    snprintf(path, sizeof(path), "%s/results.csv", dir);
    if ((st = pb_write_file_atomic(path, csv, len, err, errlen))) goto done;

    // results.json: aggregates (the format `check --baseline` reads) and every cell.
    {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "schema", "peftbench.results/1");
        cJSON_AddStringToObject(j, "suite", suite);
        cJSON *rows = cJSON_AddArrayToObject(j, "rows");
        for (int i = 0; i < na; i++) {
            const pb_agg *g = &A[i];
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
            cJSON_AddNumberToObject(o, "n", g->n);
            cJSON_AddNumberToObject(o, "failed", g->failed);
            cJSON_AddNumberToObject(o, "examples", g->n_eval); // per evaluation (0: not recorded)
            const double v[5] = {g->median, g->mean, g->std, g->min, g->max};
            const char *names[5] = {"median", "mean", "std", "min", "max"};
            for (int q = 0; q < 5; q++)
                cJSON_AddItemToObject(o, names[q], isfinite(v[q]) ? cJSON_CreateNumber(v[q]) : cJSON_CreateNull());
            cJSON_AddNumberToObject(o, "params_trainable_excl_head", isfinite(g->p_trainable_nohead) ? g->p_trainable_nohead : 0);
            cJSON_AddNumberToObject(o, "params_head", isfinite(g->p_head) ? g->p_head : 0);
            cJSON_AddStringToObject(o, "backend", g->backend);
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
            cJSON_AddStringToObject(o, "status", R[i].status);
            cJSON_AddStringToObject(o, "backend", R[i].backend);
            cJSON_AddItemToObject(o, "score", isfinite(R[i].score) ? cJSON_CreateNumber(R[i].score) : cJSON_CreateNull());
            // check uses it to tell "same numerics as the baseline machine" from "different".
            cJSON_AddItemToObject(o, "train_loss_last",
                                  isfinite(R[i].loss_last) ? cJSON_CreateNumber(R[i].loss_last) : cJSON_CreateNull());
            cJSON_AddItemToArray(cells, o);
        }
        snprintf(path, sizeof(path), "%s/results.json", dir);
        st = pb_json_write_atomic(path, j, err, errlen);
        cJSON_Delete(j);
        if (st) goto done;
    }

    // table.md and table.tex: rows = methods (with #params), columns = datasets (with their group
    // means) + Avg; one table per block of rows and datasets (pb_report_blocks: a mixed image + text
    // suite has two, each with its own columns and Avg). One block prints as one plain table.
    nb = pb_report_blocks(A, na, nr, nc, &blk);
    int any_groups = 0;
    cols = pb_xmalloc(sizeof(pb_report_col) * (size_t)(2 * nc + 1));
    for (int b = 0; b < nb; b++)
        if (pb_report_columns(blk[b].A, blk[b].na, blk[b].nc, cols) > blk[b].nc) any_groups = 1;
    for (int tex = 0; tex < 2; tex++) {
        char *t = pb_xmalloc(cap = 1 << 16);
        len = 0;
        const pb_agg *first = na ? &A[0] : NULL;
        char lab[2048], cell[96], pstr[32], hstr[32];
        if (!tex) {
            APP(t, "# %s\n\nMetric x100 on %s, epoch selection: %s; median over seeds (± std when n > 1).\n\n", suite,
                first ? first->split : "test", first ? first->select : "last");
            if (nb > 1)
                APP(t, "The models take different datasets: one table per block of models and their datasets, each "
                       "with its own Avg.\n\n");
            if (any_groups)
                APP(t, "Group columns: the mean of the group's datasets; Avg: the mean over all %sdatasets.\n\n",
                    nb > 1 ? "the table's " : "");
        } else {
            APP(t, "%% %s: metric x100, median over seeds (subscript: std)\n", suite);
        }
        for (int b = 0; b < nb; b++) {
            const pb_report_block *B = &blk[b];
            const int ncols = pb_report_columns(B->A, B->na, B->nc, cols);
            if (nb > 1) {
                if (!tex) {
                    md_escape(B->models, lab, sizeof lab);
                    APP(t, "%s## Model%s: %s\n\n", b ? "\n" : "", B->nmodels > 1 ? "s" : "", lab);
                } else {
                    tex_escape(B->models, lab, sizeof lab);
                    APP(t, "%s\\noindent\\textbf{Model%s: %s}\\par\n", b ? "\n\\medskip\n" : "", B->nmodels > 1 ? "s" : "",
                        lab);
                }
            }
            if (!tex) {
                APP(t, "| Method | #Params | Head (mean) |");
                for (int k = 0; k < ncols; k++) {
                    md_escape(cols[k].group ? cols[k].group : pb_agg_col_dataset(B->A, B->na, cols[k].c0), lab,
                              sizeof(lab));
                    APP(t, cols[k].group ? " %s mean |" : " %s |", lab);
                }
                APP(t, " Avg |\n|---|---|---|");
                for (int k = 0; k <= ncols; k++) APP(t, "---|");
                APP(t, "\n");
            } else {
                APP(t, "\\begin{tabular}{ll");
                for (int k = 0; k <= ncols + 1; k++) APP(t, "c");
                APP(t, "}\n\\toprule\nMethod & \\#Params & Head (mean)");
                for (int k = 0; k < ncols; k++) {
                    tex_escape(cols[k].group ? cols[k].group : pb_agg_col_dataset(B->A, B->na, cols[k].c0), lab,
                               sizeof(lab));
                    APP(t, cols[k].group ? " & %s mean" : " & %s", lab);
                }
                APP(t, " & Avg \\\\\n\\midrule\n");
            }
            for (int r = 0; r < B->nr; r++) {
                const pb_agg *g0 = pb_agg_row_first(B->A, B->na, r);
                pb_report_row_label(g0, B->multi_model, lab, sizeof(lab));
                pb_report_fmt_params(g0->p_trainable_nohead, pstr, sizeof(pstr));
                // Heads differ per dataset (class counts): show their mean, as the papers' "avg head".
                double hsum = 0;
                int hn = 0;
                for (int i = 0; i < B->na; i++)
                    if (B->A[i].row == r && isfinite(B->A[i].p_head)) hsum += B->A[i].p_head, hn++;
                pb_report_fmt_params(hn ? hsum / hn : g0->p_head, hstr, sizeof(hstr));
                if (tex) {
                    char e[2048];
                    tex_escape(lab, e, sizeof(e));
                    APP(t, "%s & %s & %s", e, pstr, hstr);
                } else {
                    char e[400];
                    md_escape(lab, e, sizeof(e));
                    APP(t, "| %s | %s | %s |", e, pstr, hstr);
                }
                for (int k = 0; k < ncols; k++) {
                    if (cols[k].group) {
                        double v = pb_report_col_value(B->A, B->na, r, &cols[k]);
                        if (isfinite(v)) snprintf(cell, sizeof cell, "%.1f", v);
                        else snprintf(cell, sizeof cell, "-");
                    } else {
                        fmt_cell(pb_agg_find(B->A, B->na, r, cols[k].c0), tex, cell, sizeof(cell));
                    }
                    APP(t, tex ? " & %s" : " %s |", cell);
                }
                const pb_report_col all = {0, B->nc, NULL};
                double avg = B->nc > 0 ? pb_report_col_value(B->A, B->na, r, &all) : NAN;
                if (isfinite(avg)) APP(t, tex ? " & %.1f \\\\\n" : " %.1f |\n", avg);
                else APP(t, tex ? " & - \\\\\n" : " - |\n");
            }
            if (tex) APP(t, "\\bottomrule\n\\end{tabular}\n");
        }

        // Learning-rate sweeps: the best value per series, and a flag when it is at the edge.
        if (!tex) {
            pb_sweep *S = NULL;
            int ns = pb_report_sweeps(A, na, nc, &S);
            if (ns) {
                APP(t, "\n## Learning-rate sweep (%s)\n\nBest value of each series by its average over the datasets "
                       "(values every dataset %shas); one at the smallest or largest value swept means the sweep does not "
                       "bracket the optimum.\n\n| Series | %s swept | Best | Avg at best | Best per dataset | Note |\n"
                       "|---|---|---|---|---|---|\n", S[0].axis, nb > 1 ? "of its table " : "", S[0].axis);
                for (int k = 0; k < ns; k++) {
                    char e1[600], e2[1400], sl[400];
                    snprintf(sl, sizeof sl, "%s%s%s%s%s", multi_model ? S[k].model : "", multi_model ? " " : "",
                             S[k].method, S[k].others[0] ? " " : "", S[k].others);
                    md_escape(sl, e1, sizeof e1);
                    md_escape(S[k].per_dataset, e2, sizeof e2);
                    if (S[k].nx == 0) {
                        APP(t, "| %s | - | - | - | %s | no value has every dataset |\n", e1, e2);
                        continue;
                    }
                    APP(t, "| %s | %g … %g (%d) | %g | %.1f | %s | %s |\n", e1, S[k].xmin, S[k].xmax, S[k].nx,
                        S[k].best_x, S[k].best_avg, e2,
                        !S[k].edge ? "" : S[k].nx < 3 ? "**optimum at the edge of the sweep** (fewer than 3 values cannot "
                                                         "bracket one)" : "**optimum at the edge of the sweep**");
                }
            }
            free(S);
        }

        // Paper vs ours, for rows whose method names a reference row: one table per block (with
        // several blocks, only those that have such rows).
        if (ref.root) {
            const cJSON *src = cJSON_GetObjectItem(ref.root, "source");
            if (!tex)
                APP(t, "\n## Paper vs ours\n\nReference: %s (%s). Cells: paper / ours.\n\n", refpath,
                    cJSON_IsString(src) ? src->valuestring : "");
            else
                APP(t, "\n%% Paper vs ours (paper / ours)\n");
            int shown_blocks = 0;
            for (int b = 0; b < nb; b++) {
                const pb_report_block *B = &blk[b];
                const pb_agg *BA = B->A;
                const int bna = B->na, bnc = B->nc;
                int nref = 0;
                for (int r = 0; r < B->nr; r++)
                    if (pb_reference_row(&ref, pb_agg_row_first(BA, bna, r)->method_ref,
                                         pb_agg_row_first(BA, bna, r)->model))
                        nref++;
                if (nb > 1 && !nref) continue;
                if (nb > 1) {
                    if (!tex) {
                        md_escape(B->models, lab, sizeof lab);
                        APP(t, "%s### Model%s: %s\n\n", shown_blocks ? "\n" : "", B->nmodels > 1 ? "s" : "", lab);
                    } else {
                        tex_escape(B->models, lab, sizeof lab);
                        APP(t, "%s\\noindent\\textbf{Model%s: %s}\\par\n", shown_blocks ? "\n\\medskip\n" : "",
                            B->nmodels > 1 ? "s" : "", lab);
                    }
                }
                shown_blocks++;
                if (!tex) {
                    APP(t, "| Method | Params paper / ours |");
                    for (int c = 0; c < bnc; c++) {
                        md_escape(pb_agg_col_dataset(BA, bna, c), lab, sizeof(lab));
                        APP(t, " %s |", lab);
                    }
                    APP(t, " Avg |\n|---|---|");
                    for (int c = 0; c <= bnc; c++) APP(t, "---|");
                    APP(t, "\n");
                } else {
                    APP(t, "\\begin{tabular}{ll");
                    for (int c = 0; c <= bnc; c++) APP(t, "c");
                    APP(t, "}\n\\toprule\nMethod & Params");
                    for (int c = 0; c < bnc; c++) {
                        tex_escape(pb_agg_col_dataset(BA, bna, c), lab, sizeof(lab));
                        APP(t, " & %s", lab);
                    }
                    APP(t, " & Avg \\\\\n\\midrule\n");
                }
                for (int r = 0; r < B->nr; r++) {
                    const pb_agg *g0 = pb_agg_row_first(BA, bna, r);
                    const cJSON *rr = pb_reference_row(&ref, g0->method_ref, g0->model);
                    if (!rr) continue;
                    pb_report_row_label(g0, B->multi_model, lab, sizeof(lab));
                    const cJSON *pp = cJSON_GetObjectItem(rr, "params");
                    pb_report_fmt_params(g0->p_trainable_nohead, pstr, sizeof(pstr));
                    if (tex) {
                        char e[2048];
                        tex_escape(lab, e, sizeof(e));
                        APP(t, "%s & %s / %s", e, cJSON_IsString(pp) ? pp->valuestring : "-", pstr);
                    } else {
                        char e[400];
                        md_escape(lab, e, sizeof(e));
                        APP(t, "| %s | %s / %s |", e, cJSON_IsString(pp) ? pp->valuestring : "-", pstr);
                    }
                    double sp = 0, so = 0;
                    int cp = 0, co = 0;
                    for (int c = 0; c < bnc; c++) {
                        const pb_agg *g = pb_agg_find(BA, bna, r, c);
                        double pv = pb_reference_value(rr, g ? g->dataset_ref : "");
                        char ps[32] = "-", os[32] = "-";
                        if (isfinite(pv)) {
                            snprintf(ps, sizeof(ps), "%.1f", pv);
                            sp += pv;
                            cp++;
                        }
                        if (g && g->n) {
                            snprintf(os, sizeof(os), "%.1f", g->median);
                            so += g->median;
                            co++;
                        }
                        APP(t, tex ? " & %s / %s" : " %s / %s |", ps, os);
                    }
                    const cJSON *avg = cJSON_GetObjectItem(rr, "avg");
                    char pa[32] = "-", oa[32] = "-";
                    if (cJSON_IsNumber(avg)) snprintf(pa, sizeof(pa), "%.1f", avg->valuedouble);
                    else if (cp == bnc && bnc) snprintf(pa, sizeof(pa), "%.1f", sp / bnc);
                    if (co == bnc && bnc) snprintf(oa, sizeof(oa), "%.1f", so / bnc);
                    APP(t, tex ? " & %s / %s \\\\\n" : " %s / %s |\n", pa, oa);
                }
                if (tex) APP(t, "\\bottomrule\n\\end{tabular}\n");
            }
            if (!shown_blocks) APP(t, tex ? "%% no method of this suite names a row of the reference table\n"
                                          : "No method of this suite names a row of the reference table (\"ref\").\n");
        }
        int nfail = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(R[i].status, "ok")) nfail++;
        if (!tex && n) { // which engine produced the numbers: distinct backends with their cell counts
            APP(t, "\n## Produced by\n\n");
            const char **bk = pb_xmalloc(sizeof(char *) * (size_t)n); // sorted: O(n log n) for 1e6 cells
            for (int i = 0; i < n; i++) bk[i] = R[i].backend;
            qsort(bk, (size_t)n, sizeof(char *), cmp_str_ptr);
            for (int i = 0, j; i < n; i = j) {
                for (j = i + 1; j < n && !strcmp(bk[j], bk[i]); j++) {}
                char e[400];
                md_escape(bk[i][0] ? bk[i] : "(not recorded)", e, sizeof e);
                APP(t, "- %s: %d cell%s\n", e, j - i, j - i == 1 ? "" : "s");
            }
            free(bk);
        }
        if (!tex && sk.n) {
            APP(t, "\n## Skipped cell files (%d)\n\n", sk.n);
            for (int i = 0; i < sk.n; i++) {
                char e[1200];
                md_escape(sk.msg[i], e, sizeof e);
                APP(t, "- %s\n", e);
            }
        }
        if (!tex && nfail) {
            APP(t, "\n## Failed cells (%d)\n\n", nfail);
            for (int i = 0; i < n; i++)
                if (strcmp(R[i].status, "ok"))
                    APP(t, "- %s %s %s seed %d (%s): %s\n", R[i].model, R[i].method, R[i].dataset, R[i].seed, R[i].id,
                        R[i].reason);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, tex ? "table.tex" : "table.md");
        st = pb_write_file_atomic(path, t, len, err, errlen);
        if (!tex && out && !st) fputs(t, out);
        free(t);
        if (st) goto done;
    }
#undef APP
done:
    pb_skips_free(&sk);
    free(csv);
    free(cols);
    pb_report_blocks_free(blk, nb);
    free(A);
    free(R);
    pb_reference_free(&ref);
    return st;
}
