// runner.c: the suite driver: grid order, resume, shards, atomic results, logs, progress.
#include "runner.h"
#include "cellstate.h"
#include "grid.h"
#include "sharedfs.h"
#include "jsonutil.h"
#include "report.h"
#include "report_html.h"
#include "train.h"
#include <dirent.h>

pb_trainer_fn pb_runner_trainer = pb_train_cell;
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void pb_git_revision(char *out, size_t n) {
    snprintf(out, n, "unknown");
#ifdef PB_SOURCE_DIR
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse --short=12 HEAD 2>/dev/null", PB_SOURCE_DIR);
    FILE *p = popen(cmd, "r");
    if (!p) return;
    char buf[64] = {0};
    if (fgets(buf, sizeof(buf), p)) {
        buf[strcspn(buf, "\r\n")] = 0;
        if (buf[0]) snprintf(out, n, "%s", buf);
    }
    pclose(p);
    // Mark uncommitted changes so results are not attributed to a clean revision.
    snprintf(cmd, sizeof(cmd), "git -C '%s' status --porcelain --untracked-files=no 2>/dev/null", PB_SOURCE_DIR);
    p = popen(cmd, "r");
    if (p) {
        if (fgets(buf, sizeof(buf), p) && strcmp(out, "unknown")) {
            size_t L = strlen(out);
            if (L + 7 < n) strcat(out, "-dirty");
        }
        pclose(p);
    }
#endif
}

// Removes temp files left by a killed writer (only those whose process is gone and that nobody
// touched for PB_TMP_GRACE_S, so a parallel shard's in-flight file, on this or another host, is
// left alone).
static void clean_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d))) {
        if (!pb_tmp_stale(dir, de->d_name)) continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

typedef struct {
    int pos, total;        // this cell's position among the cells to run, and their count
    double t_start;        // start of the whole run
    double t_cell;         // start of this cell
    int done_cells;
    const pb_cell *cell;
    const char *out;       // results directory (the cell's in-flight marker lives there)
} progress;

static void fmt_dur(double s, char *out, size_t n) {
    if (!isfinite(s) || s < 0) snprintf(out, n, "?");
    else if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static void on_epoch(pb_train_ctx *ctx, const pb_epoch_metrics *m, int epochs) {
    progress *p = ctx->user;
    pb_running_touch(p->out, p->cell->id); // heartbeat for `status`
    double now = pb_now();
    double cell_el = now - p->t_cell;
    double cell_eta = cell_el / m->epoch * (epochs - m->epoch);
    // Remaining cells are assumed to take as long as the average so far (this one included).
    double per_cell = p->done_cells ? (p->t_cell - p->t_start) / p->done_cells : cell_el / m->epoch * epochs;
    double eta = cell_eta + per_cell * (p->total - p->pos);
    char es[32];
    fmt_dur(eta, es, sizeof(es));
    fprintf(stderr, "[cell %d/%d] %s %s %s seed %d: epoch %d/%d loss %.4f val %.2f test %.2f  ETA %s\n", p->pos,
            p->total, p->cell->model, p->cell->method, p->cell->dataset, p->cell->seed, m->epoch, epochs,
            m->train_loss, 100 * m->val, 100 * m->test, es);
    fprintf(ctx->log, "epoch %d/%d loss %.6f val %.6f test %.6f lr %.6g time %.2fs\n", m->epoch, epochs,
            m->train_loss, m->val, m->test, m->lr, m->time_s);
    fflush(ctx->log);
}

// Grid-axis values of a cell (except seed), as they were applied.
static cJSON *cell_axes(const pb_suite *s, const cJSON *cfg) {
    cJSON *ax = cJSON_CreateObject();
    const cJSON *method = cJSON_GetObjectItem(cfg, "method"), *recipe = cJSON_GetObjectItem(cfg, "recipe");
    for (const cJSON *a = s->grid->child; a; a = a->next) {
        if (!strcmp(a->string, "seed")) continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(method, a->string);
        if (!v) v = cJSON_GetObjectItemCaseSensitive(recipe, a->string);
        if (v) cJSON_AddItemToObject(ax, a->string, cJSON_Duplicate(v, 1));
    }
    return ax;
}

void pb_run_out_dir(const pb_suite *s, const char *out_dir, char *out, size_t n) {
    if (out_dir) snprintf(out, n, "%s", out_dir);
    else snprintf(out, n, "results/%s", s->name);
}

pb_status pb_run_write_manifest(const char *out, const pb_suite *s, const pb_grid *g, char *err, size_t errlen) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "schema", "peftbench.manifest/1");
    cJSON_AddStringToObject(m, "suite", s->name);
    cJSON_AddStringToObject(m, "suite_file", s->file);
    cJSON_AddStringToObject(m, "description", s->description);
    cJSON_AddStringToObject(m, "reference", s->reference);
    cJSON *axes = cJSON_AddArrayToObject(m, "axes");
    for (const cJSON *a = s->grid->child; a; a = a->next) cJSON_AddItemToArray(axes, cJSON_CreateString(a->string));
    cJSON *ids = cJSON_AddArrayToObject(m, "cells");
    for (int i = 0; i < g->n; i++) cJSON_AddItemToArray(ids, cJSON_CreateString(g->cells[i].id));
    // Labels in grid order: `status` reports missing cells per method and dataset from these.
    cJSON *lab = cJSON_AddArrayToObject(m, "cell_labels");
    for (int i = 0; i < g->n; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "model", g->cells[i].model);
        cJSON_AddStringToObject(c, "dataset", g->cells[i].dataset);
        cJSON_AddStringToObject(c, "method", g->cells[i].method);
        cJSON_AddNumberToObject(c, "seed", g->cells[i].seed);
        cJSON_AddItemToArray(lab, c);
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/manifest.json", out);
    pb_status st = pb_json_write_atomic(path, m, err, errlen);
    cJSON_Delete(m);
    return st;
}

int pb_run_select_cells(const pb_grid *g, const char *list, unsigned char *sel, char *err, size_t errlen) {
    char *copy = pb_xstrdup(list), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        size_t L = strlen(t);
        int hit = -1;
        if (L == 16 && strspn(t, "0123456789abcdef") == 16) { // a cell id
            for (int i = 0; i < g->n && hit < 0; i++)
                if (!strcmp(g->cells[i].id, t)) hit = i;
        } else if (L > 0 && L < 10 && strspn(t, "0123456789") == L) { // a grid index
            int k = atoi(t);
            if (k < g->n) hit = k;
        }
        if (hit < 0) {
            pb_errf(PB_ERR_ARG, err, errlen,
                    "--cells: '%s' is not a cell of this suite (%d cells; ids are 16 hex digits, indices 0..%d): "
                    "was the suite edited after the cells were chosen?",
                    t, g->n, g->n - 1);
            rc = 2;
        } else {
            sel[hit] = 1;
        }
    }
    free(copy);
    return rc;
}

int pb_run_suite(const pb_run_opts *o) {
    char err[4096];
    pb_suite s;
    if (pb_suite_load(o->suite_path, &s, err, sizeof(err))) {
        fprintf(stderr, "peftbench run: %s\n", err);
        pb_suite_free(&s);
        return 2;
    }
    if (o->pretrain_seed_set && pb_suite_set_pretrain_seed(&s, o->pretrain_seed, err, sizeof err)) {
        fprintf(stderr, "peftbench run: %s\n", err);
        pb_suite_free(&s);
        return 2;
    }
    pb_grid g;
    if (pb_grid_expand(&s, &g, err, sizeof(err))) {
        fprintf(stderr, "peftbench run: %s\n", err);
        pb_suite_free(&s);
        return 2;
    }
    if (o->shard_n < 1 || o->shard_i < 0 || o->shard_i >= o->shard_n || o->cell >= g.n) {
        fprintf(stderr, "peftbench run: bad --shard %d/%d or --cell %d (the grid has %d cells)\n", o->shard_i,
                o->shard_n, o->cell, g.n);
        pb_grid_free(&g);
        pb_suite_free(&s);
        return 2;
    }
    char out[2048];
    pb_run_out_dir(&s, o->out_dir, out, sizeof out);
    unsigned char *sel = NULL; // --cells: the cells chosen (grid order)
    if (o->cells) {
        sel = calloc((size_t)(g.n ? g.n : 1), 1);
        if (!sel || pb_run_select_cells(&g, o->cells, sel, err, sizeof(err))) {
            fprintf(stderr, "peftbench run: %s\n", err);
            free(sel);
            pb_grid_free(&g);
            pb_suite_free(&s);
            return 2;
        }
    }
    char cells_dir[2100], logs_dir[2100], path[4200];
    snprintf(cells_dir, sizeof(cells_dir), "%s/cells", out);
    snprintf(logs_dir, sizeof(logs_dir), "%s/logs", out);

    // Which cells this invocation runs.
    int *todo = pb_xmalloc(sizeof(int) * (size_t)(g.n ? g.n : 1));
    int ntodo = 0, nskip = 0, rc = 2;
    for (int i = 0; i < g.n; i++) {
        if (o->cell >= 0 && i != o->cell) continue;
        if (sel && !sel[i]) continue;
        if (i % o->shard_n != o->shard_i) continue;
        snprintf(path, sizeof(path), "%s/%s.json", cells_dir, g.cells[i].id);
        int finished = !o->force && pb_result_is_finished(path);
        if (finished && o->retry_failed) {
            cJSON *j = NULL;
            if (!pb_json_read_file(path, &j, NULL, 0)) {
                const cJSON *st = cJSON_GetObjectItem(j, "status");
                if (!cJSON_IsString(st) || strcmp(st->valuestring, "ok")) finished = 0;
                cJSON_Delete(j);
            }
        }
        if (finished) {
            nskip++;
            continue;
        }
        todo[ntodo++] = i;
    }
    if (o->dry_run) {
        printf("suite %s: %d cells (%d to run in this shard, %d finished), results in %s\n", s.name, g.n, ntodo, nskip,
               out);
        for (int i = 0, k = 0; i < g.n; i++) {
            int run = k < ntodo && todo[k] == i; // todo is ascending
            k += run;
            char *c = pb_json_canonical(g.cells[i].config);
            printf("%4d %s %s %-10s %-24s %-12s seed %d  %s\n", i, g.cells[i].id, run ? "run " : "skip", g.cells[i].model,
                   g.cells[i].dataset, g.cells[i].method, g.cells[i].seed, c);
            free(c);
        }
        rc = 0;
        goto done;
    }
    if (pb_runner_trainer == pb_train_cell &&
        (pb_suite_build_local(&s, stderr, err, sizeof(err)) || pb_suite_preflight(&s, err, sizeof(err)))) {
        fprintf(stderr, "peftbench run: %s\n", err);
        goto done;
    }
    if (pb_mkdirs(cells_dir, NULL, 0) != PB_OK || pb_mkdirs(logs_dir, NULL, 0) != PB_OK) {
        fprintf(stderr, "peftbench run: cannot create %s: %s\n", out, strerror(errno));
        goto done;
    }
    clean_stale_tmp(cells_dir);
    snprintf(path, sizeof(path), "%s/running", out);
    clean_stale_tmp(path);
    if (o->prepare) {
        if (pb_run_write_manifest(out, &s, &g, err, sizeof(err))) fprintf(stderr, "peftbench run: %s\n", err);
        rc = pb_run_prepare(&s, &g, todo, ntodo, o, out);
        goto done;
    }

    // Manifest: grid order and where the reference table is (for report/plot/status).
    if (pb_run_write_manifest(out, &s, &g, err, sizeof(err))) fprintf(stderr, "peftbench run: %s\n", err);
    char rev[64];
    pb_git_revision(rev, sizeof(rev));
    fprintf(stderr, "peftbench run: suite %s, %d cells, %d to run (shard %d/%d), %d already finished -> %s\n", s.name,
            g.n, ntodo, o->shard_i, o->shard_n, nskip, out);

    progress pr = {0};
    pr.total = ntodo;
    pr.t_start = pb_now();
    pr.out = out;
    for (int k = 0; k < ntodo; k++) {
        const pb_cell *c = &g.cells[todo[k]];
        pr.pos = k + 1;
        pr.cell = c;
        pr.t_cell = pb_now();
        snprintf(path, sizeof(path), "%s/%s.log", logs_dir, c->id);
        FILE *log = fopen(path, "w");
        if (!log) log = fopen("/dev/null", "w");
        char *canon = pb_json_canonical(c->config);
        fprintf(log, "cell %s (%d of %d in suite %s)\nconfig %s\ngit %s\n", c->id, c->index, g.n, s.name, canon, rev);
        free(canon);
        fflush(log);
        fprintf(stderr, "[cell %d/%d] %s %s %s seed %d (%s)\n", k + 1, ntodo, c->model, c->method, c->dataset, c->seed,
                c->id);
        // In-flight marker: `status` reports the cell running while this process (or job) lives.
        if (pb_running_mark(out, c->id, err, sizeof(err))) fprintf(stderr, "peftbench run: %s\n", err);
        pb_train_ctx ctx = {0};
        ctx.threads = o->threads;
        ctx.device = o->device;
        ctx.log = log;
        // Pretrained backbones are shared across suites and runs; tests point it elsewhere.
        const char *cr = getenv("PEFTBENCH_BACKBONE_CACHE");
        ctx.cache_root = cr && cr[0] ? cr : "data/cache/backbones";
        ctx.on_epoch = on_epoch;
        ctx.user = &pr;
        pb_train_result r;
        memset(&r, 0, sizeof(r));
        pb_runner_trainer(c->config, &ctx, &r);
        cJSON *axes = cell_axes(&s, c->config);
        cJSON *res = pb_result_json(s.name, c->id, c->config, axes, &r, rev);
        cJSON_Delete(axes);
        snprintf(path, sizeof(path), "%s/%s.json", cells_dir, c->id);
        if (pb_json_write_atomic(path, res, err, sizeof(err))) {
            fprintf(stderr, "peftbench run: %s\n", err);
            fprintf(log, "error writing result: %s\n", err);
        }
        cJSON_Delete(res);
        pb_running_clear(out, c->id);
        if (r.status != PB_OK) {
            fprintf(stderr, "[cell %d/%d] FAILED: %s\n", k + 1, ntodo, r.reason);
            fprintf(log, "FAILED: %s\n", r.reason);
        } else {
            fprintf(log, "done in %.1fs\n", pb_now() - pr.t_cell);
        }
        fclose(log);
        pb_train_result_free(&r);
        pr.done_cells++;
    }

    // Status over this invocation's cells (finished earlier or now).
    int failed = 0;
    for (int i = 0; i < g.n; i++) {
        if (o->cell >= 0 && i != o->cell) continue;
        if (sel && !sel[i]) continue;
        if (i % o->shard_n != o->shard_i) continue;
        snprintf(path, sizeof(path), "%s/%s.json", cells_dir, g.cells[i].id);
        cJSON *j = NULL;
        if (pb_json_read_file(path, &j, NULL, 0)) {
            failed++;
            continue;
        }
        const cJSON *st = cJSON_GetObjectItem(j, "status");
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "ok")) failed++;
        cJSON_Delete(j);
    }
    fprintf(stderr, "peftbench run: %d cells run in %.1fs; %d failed\n", ntodo, pb_now() - pr.t_start, failed);
    rc = failed ? 1 : 0;
    if (!o->no_report) {
        if (pb_report_write(out, NULL, stdout, NULL, err, sizeof(err))) {
            fprintf(stderr, "peftbench report: %s\n", err);
            rc = rc ? rc : 1;
        }
        // plots (PNG + SVG) and index.html with them inline; a missing gnuplot is a note on the page
        if (pb_report_html_make(out, NULL, NULL, stderr, err, sizeof(err))) {
            fprintf(stderr, "peftbench report --html: %s\n", err);
            rc = rc ? rc : 1;
        }
    }
done:
    free(sel);
    free(todo);
    pb_grid_free(&g);
    pb_suite_free(&s);
    return rc;
}
