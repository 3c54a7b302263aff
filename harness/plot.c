// plot.c: figure data from aggregated results, rendered by gnuplot.
//
// gnuplot runs through posix_spawnp with an argument vector (`gnuplot -c plots/run.gp ARGS...`),
// never a shell: titles, labels and paths reach it as the strings ARG1..ARG9, which gnuplot does
// not parse as code. Series names go into the .dat file as gnuplot double-quoted strings, whose
// escapes are C-like (a backslash is written as two) and which cannot hold a double quote (it
// is shown as ').
#include "plot.h"
#include "jsonutil.h"
#include "report.h"
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
    char series[200];
    double x, y;
} point;

static int cmp_pts(const void *a, const void *b) {
    const point *p = a, *q = b;
    int c = strcmp(p->series, q->series);
    if (c) return c;
    return p->x < q->x ? -1 : p->x > q->x ? 1 : 0;
}

// Series label: method + the other (non-x) axes.
static void series_label(const pb_agg *g, const char *xaxis, char *out, size_t n) {
    cJSON *ax = NULL;
    pb_json_parse_text(g->axes, "axes", &ax, NULL, 0);
    size_t k = (size_t)snprintf(out, n, "%s", g->method);
    for (const cJSON *c = ax ? ax->child : NULL; c && k < n; c = c->next) {
        if (!strcmp(c->string, xaxis)) continue;
        if (cJSON_IsNumber(c)) k += (size_t)snprintf(out + k, n - k, " %s=%g", c->string, c->valuedouble);
        else if (cJSON_IsString(c)) k += (size_t)snprintf(out + k, n - k, " %s=%s", c->string, c->valuestring);
    }
    cJSON_Delete(ax);
}

// Writes the .dat file (one index block per series, first line = quoted series name) and
// returns the number of series.
static int write_dat(const char *path, const char *what, point *pts, int np, char *err, size_t errlen,
                     pb_status *st) {
    qsort(pts, (size_t)np, sizeof(point), cmp_pts);
    size_t cap = 4096, len = 0;
    char *b = pb_xmalloc(cap);
    int ns = 0;
#define APP(...)                                                                                                   \
    do {                                                                                                          \
        int need_ = snprintf(NULL, 0, __VA_ARGS__);                                                               \
        while (len + (size_t)need_ + 1 > cap) b = pb_xrealloc(b, cap *= 2);                                       \
        len += (size_t)snprintf(b + len, cap - len, __VA_ARGS__);                                                  \
    } while (0)
    APP("# peftbench plot data: %s. One block per series: x, median metric x100 over seeds.\n", what);
    for (int i = 0; i < np; i++) {
        if (i == 0 || strcmp(pts[i].series, pts[i - 1].series)) {
            if (i) APP("\n\n");
            APP("\"");
            for (const char *c = pts[i].series; *c; c++) { // a gnuplot double-quoted string
                if (*c == '\\') APP("\\\\");
                else if (*c == '"') APP("'");
                else if (*c == '\n' || *c == '\r' || *c == '\t') APP(" ");
                else APP("%c", *c);
            }
            APP("\"\n");
            ns++;
        }
        APP("%.10g %.10g\n", pts[i].x, pts[i].y);
    }
#undef APP
    *st = pb_write_file_atomic(path, b, len, err, errlen);
    free(b);
    return ns;
}

int pb_plot_spawn(char *const argv[], char *first, size_t n) {
    int fd[2];
    if (pipe(fd)) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc) {
        close(fd[0]);
        errno = rc;
        return -1;
    }
    FILE *f = fdopen(fd[0], "r");
    char line[512];
    if (n) first[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (n && !first[0]) snprintf(first, n, "%s", line);
    if (f) fclose(f);
    else close(fd[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
}

pb_status pb_plot_render(const char *plotdir, const char *script, const char *dat, const char *outfile,
                         const char *fmt, int nseries, const char *title, const char *xlab, const char *ylab, char *err,
                         size_t errlen) {
    char runner[1200], ns[16], first[512] = "";
    snprintf(runner, sizeof(runner), "%s/run.gp", plotdir);
    snprintf(ns, sizeof(ns), "%d", nseries);
    char *argv[] = {"gnuplot", "-c", runner, (char *)plotdir, (char *)dat, (char *)outfile, (char *)fmt, ns,
                    (char *)title, (char *)xlab, (char *)ylab, (char *)script, NULL};
    int rc = pb_plot_spawn(argv, first, sizeof first);
    if (rc < 0) return pb_errf(PB_ERR_IO, err, errlen, "cannot run gnuplot: %s", strerror(errno));
    struct stat sb;
    if (rc != 0 || stat(outfile, &sb) || sb.st_size == 0)
        return pb_errf(PB_ERR_IO, err, errlen, "gnuplot failed on %s/%s -> %s (status %d): %s", plotdir, script,
                       outfile, rc, first);
    return PB_OK;
}

// Renders one figure as base.png and base.svg.
static pb_status render(const char *plotdir, const char *script, const char *dat, const char *base,
                        const char *title, const char *xlab, const char *ylab, int nseries, FILE *msg, char *err,
                        size_t errlen) {
    const char *fmts[2] = {"png", "svg"};
    for (int f = 0; f < 2; f++) {
        char outp[4200];
        snprintf(outp, sizeof(outp), "%s.%s", base, fmts[f]);
        pb_status st = pb_plot_render(plotdir, script, dat, outp, fmts[f], nseries, title, xlab, ylab, err, errlen);
        if (st) return st;
        if (msg) fprintf(msg, "plot: wrote %s\n", outp);
    }
    return PB_OK;
}

// Appends a rendered figure (file stem under plots/, caption) to figs (NULL: not recorded).
static void figs_add(pb_plot_figs *figs, const char *name, const char *title) {
    if (!figs) return;
    figs->fig = pb_xrealloc(figs->fig, sizeof(pb_plot_fig) * (size_t)(figs->n + 1));
    pb_plot_fig *f = &figs->fig[figs->n++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    snprintf(f->title, sizeof(f->title), "%s", title);
}

void pb_plot_figs_free(pb_plot_figs *figs) {
    if (!figs) return;
    free(figs->fig);
    figs->fig = NULL;
    figs->n = 0;
}

void pb_plot_default_dir(char *out, size_t n) {
    const char *env = getenv("PEFTBENCH_PLOTS");
    if (env && env[0]) {
        snprintf(out, n, "%s", env);
        return;
    }
#ifdef PB_SOURCE_DIR
    struct stat sb;
    snprintf(out, n, "%s/plots", PB_SOURCE_DIR);
    char t[1200];
    snprintf(t, sizeof(t), "%s/run.gp", out);
    if (!stat(t, &sb)) return;
#endif
    snprintf(out, n, "plots");
}

static void sanitize(const char *in, char *out, size_t n) {
    size_t k = 0;
    for (; *in && k + 1 < n; in++)
        out[k++] = ((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z') || (*in >= '0' && *in <= '9') ||
                    *in == '-' || *in == '_' || *in == '.')
                       ? *in
                       : '_';
    out[k] = 0;
}

// Sweep figures for one axis ("rank", "lr"): one figure per dataset, x = axis value.
static pb_status sweep(const char *dir, const char *pdir, const char *outdir, const pb_agg *A, int na, int ncols,
                       const char *axis, const char *script, const char *xlab, FILE *msg, pb_plot_figs *figs,
                       char *err, size_t errlen, int *made) {
    pb_status st = PB_OK;
    for (int c = 0; c < ncols; c++) {
        point *pts = pb_xcalloc((size_t)(na ? na : 1), sizeof(point));
        int np = 0;
        const char *dname = NULL, *metric = "accuracy";
        for (int i = 0; i < na; i++) {
            if (A[i].col != c) continue;
            dname = A[i].dataset;
            if (A[i].metric[0]) metric = A[i].metric;
            if (A[i].n == 0) continue;
            cJSON *ax = NULL;
            pb_json_parse_text(A[i].axes, "axes", &ax, NULL, 0);
            const cJSON *v = ax ? cJSON_GetObjectItem(ax, axis) : NULL;
            if (cJSON_IsNumber(v)) {
                series_label(&A[i], axis, pts[np].series, sizeof(pts[np].series));
                pts[np].x = v->valuedouble;
                pts[np].y = A[i].median;
                np++;
            }
            cJSON_Delete(ax);
        }
        // A sweep needs at least two distinct x values.
        int distinct = 0;
        for (int i = 1; i < np; i++)
            if (pts[i].x != pts[0].x) distinct = 1;
        if (!dname) {
            free(pts);
            continue;
        }
        if (!distinct) {
            free(pts);
            continue;
        }
        char sd[128], dat[4200], base[4200], title[300], ylab[64];
        sanitize(dname, sd, sizeof(sd));
        snprintf(dat, sizeof(dat), "%s/%s_%s.dat", outdir, axis, sd);
        snprintf(base, sizeof(base), "%s/%s_%s", outdir, axis, sd);
        snprintf(title, sizeof(title), "%s: %s vs %s", dname, metric, axis);
        snprintf(ylab, sizeof(ylab), "%s x100", metric);
        char what[256];
        snprintf(what, sizeof(what), "%s vs %s on %s", metric, axis, dname);
        int ns = write_dat(dat, what, pts, np, err, errlen, &st); // sorts pts by series, then x
        if (!st && !strcmp(script, "lr.gp")) {
            // The best point of each series, one block per series in the .dat's order (lr.gp circles
            // it): where the learning rate peaks, and whether the sweep brackets it.
            char bdat[4300];
            snprintf(bdat, sizeof bdat, "%s/%s_%s.best.dat", outdir, axis, sd);
            size_t cap = 256 + (size_t)np * 64, len = 0;
            char *b = pb_xmalloc(cap);
            len += (size_t)snprintf(b, cap, "# peftbench plot data: the best point of each series of %s_%s.dat\n", axis,
                                    sd);
            for (int i = 0; i < np;) {
                int j = i, best = i;
                for (; j < np && !strcmp(pts[j].series, pts[i].series); j++)
                    if (pts[j].y > pts[best].y) best = j;
                len += (size_t)snprintf(b + len, cap - len, "%s%.10g %.10g\n", i ? "\n\n" : "", pts[best].x, pts[best].y);
                i = j;
            }
            st = pb_write_file_atomic(bdat, b, len, err, errlen);
            free(b);
        }
        free(pts);
        if (st) return st;
        if ((st = render(pdir, script, dat, base, title, xlab, ylab, ns, msg, err, errlen))) return st;
        char name[200];
        snprintf(name, sizeof(name), "%s_%s", axis, sd);
        figs_add(figs, name, title);
        (*made)++;
    }
    (void)dir;
    return st;
}

pb_status pb_plot_write(const char *dir, const char *plotdir, FILE *msg, char *err, size_t errlen) {
    return pb_plot_write_figs(dir, plotdir, msg, NULL, err, errlen);
}

pb_status pb_plot_write_figs(const char *dir, const char *plotdir, FILE *msg, pb_plot_figs *figs, char *err,
                             size_t errlen) {
    pb_record *R = NULL;
    int n = 0;
    pb_skips sk = {0};
    pb_status st = pb_results_load(dir, &R, &n, &sk, err, errlen);
    if (st) return st;
    pb_skips_print(&sk, "plot", stderr);
    pb_skips_free(&sk);
    char pdir[1100], outdir[4200];
    if (plotdir && plotdir[0]) snprintf(pdir, sizeof(pdir), "%s", plotdir);
    else pb_plot_default_dir(pdir, sizeof(pdir));
    snprintf(outdir, sizeof(outdir), "%s/plots", dir);
    if (pb_mkdirs(outdir, NULL, 0) != PB_OK) {
        free(R);
        return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create", outdir);
    }
    pb_agg *A = NULL;
    int na = 0, nr = 0, nc = 0;
    pb_aggregate(R, n, &A, &na, &nr, &nc);

    int made = 0;
    st = sweep(dir, pdir, outdir, A, na, nc, "rank", "rank.gp", "rank", msg, figs, err, errlen, &made);
    if (!st && !made && msg) fprintf(msg, "plot: skipping accuracy vs rank (no rank axis with 2+ values in the results)\n");
    int before = made;
    if (!st) st = sweep(dir, pdir, outdir, A, na, nc, "lr", "lr.gp", "learning rate", msg, figs, err, errlen, &made);
    if (!st && made == before) {
        int b2 = made;
        st = sweep(dir, pdir, outdir, A, na, nc, "lr_scale", "lr.gp", "learning-rate multiplier", msg, figs, err,
                   errlen, &made);
        if (!st && made == b2 && msg)
            fprintf(msg, "plot: skipping accuracy vs learning rate (no lr or lr_scale axis with 2+ values)\n");
    }

    // Accuracy vs trainable parameters: rows with every dataset of their block present (the datasets
    // of their table: a mixed image + text suite has two, pb_report_components), best per (method,
    // #params); with several blocks a series is "model method", so that image and text rows never
    // share a line.
    if (!st) {
        point *pts = pb_xcalloc((size_t)(nr ? nr : 1), sizeof(point));
        int np = 0;
        int *rb = pb_xmalloc(sizeof(int) * (size_t)(nr ? nr : 1)), *cb = pb_xmalloc(sizeof(int) * (size_t)(nc ? nc : 1));
        const int nb = pb_report_components(A, na, nr, nc, rb, cb);
        int *bcols = pb_xcalloc((size_t)(nb ? nb : 1), sizeof(int));
        for (int c = 0; c < nc; c++)
            if (cb[c] >= 0) bcols[cb[c]]++;
        for (int r = 0; r < nr; r++) {
            double sum = 0, params = NAN;
            int cnt = 0;
            const pb_agg *g0 = NULL;
            for (int i = 0; i < na; i++)
                if (A[i].row == r && A[i].n) {
                    if (!g0) g0 = &A[i];
                    sum += A[i].median;
                    cnt++;
                    if (!isfinite(params)) params = A[i].p_trainable_nohead + A[i].p_head;
                }
            if (!g0 || cnt != bcols[rb[r]] || !(params > 0)) continue;
            if (nb > 1) snprintf(pts[np].series, sizeof(pts[np].series), "%s %s", g0->model, g0->method);
            else snprintf(pts[np].series, sizeof(pts[np].series), "%s", g0->method);
            pts[np].x = params;
            pts[np].y = sum / cnt;
            np++;
        }
        free(rb);
        free(cb);
        free(bcols);
        // One point per (method, parameter count): the best row over the other grid axes (e.g.
        // learning rate), as the papers report tuned settings; otherwise a method's line zigzags
        // through every lr variant at the same x.
        int kept = 0;
        for (int i = 0; i < np; i++) {
            int j = 0;
            while (j < kept && !(pts[j].x == pts[i].x && !strcmp(pts[j].series, pts[i].series))) j++;
            if (j < kept) {
                if (pts[i].y > pts[j].y) pts[j].y = pts[i].y;
            } else {
                pts[kept++] = pts[i];
            }
        }
        np = kept;
        if (np < 1) {
            if (msg) fprintf(msg, "plot: skipping accuracy vs parameters (no row has results on every dataset of its table)\n");
        } else {
            char dat[4300], base[4300];
            snprintf(dat, sizeof(dat), "%s/params.dat", outdir);
            snprintf(base, sizeof(base), "%s/params", outdir);
            int ns = write_dat(dat, "mean over datasets (best over other grid axes) vs trainable parameters (incl. head)", pts, np, err, errlen, &st);
            if (!st)
                st = render(pdir, "params.gp", dat, base, "accuracy vs trainable parameters",
                            "trainable parameters (incl. head)", "mean metric x100", ns, msg, err, errlen);
            if (!st) figs_add(figs, "params", "accuracy vs trainable parameters");
        }
        free(pts);
    }
    free(A);
    free(R);
    return st;
}
