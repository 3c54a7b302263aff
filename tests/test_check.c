// test_check.c: `peftbench check` without training (issue 17): the normal quantile and the metrics'
// sampling variances; the baseline writer; exact mode where the fingerprint matches (a changed
// score or training loss fails), statistical mode elsewhere (noise passes, a drop of one method on
// every task fails its average), tolerance mode; one clear error per bad baseline field; JUnit and
// Markdown output with hostile labels escaped. Cell files are written here (fixture values).
#include <math.h>
#include "test_expect.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "harness/check.h"
#include "harness/jsonutil.h"


static char root[256];
static const char *cur_backbone = ""; // backbone_hash of the cells put_cell writes
static const char *cur_suite = "t";

// Writes one finished cell result (the fields report/check read) into dir/cells/<id>.json.
static void put_cell(const char *dir, int idx, const char *method, const char *dataset, int seed, double score,
                     double loss, const char *backend) {
    char id[17], path[600];
    snprintf(id, sizeof id, "%016x", idx);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "schema", "peftbench.cell/1");
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "suite", cur_suite);
    cJSON_AddStringToObject(c, "status", "ok");
    cJSON_AddStringToObject(c, "metric", "accuracy");
    cJSON *cfg = cJSON_AddObjectToObject(c, "config");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(cfg, "model"), "label", "m");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(cfg, "dataset"), "label", dataset);
    cJSON *m = cJSON_AddObjectToObject(cfg, "method");
    cJSON_AddStringToObject(m, "label", method);
    cJSON_AddStringToObject(m, "method", "lora");
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(cfg, "recipe"), "lr", 0.01);
    cJSON_AddNumberToObject(cfg, "seed", seed);
    cJSON_AddObjectToObject(c, "axes");
    cJSON_AddNumberToObject(c, "seed", seed);
    cJSON *ev = cJSON_AddObjectToObject(c, "eval");
    cJSON_AddStringToObject(ev, "split", "test");
    cJSON_AddStringToObject(ev, "select", "last");
    cJSON *fin = cJSON_AddObjectToObject(c, "final");
    cJSON_AddNumberToObject(fin, "score", score);
    cJSON_AddNumberToObject(fin, "epoch", 1);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "epoch", 1);
    cJSON_AddNumberToObject(e, "train_loss", loss);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "epochs"), e);
    cJSON *ee = cJSON_AddObjectToObject(c, "eval_examples");
    cJSON_AddNumberToObject(ee, "val", 200);
    cJSON_AddNumberToObject(ee, "test", 1000);
    cJSON_AddStringToObject(c, "backend", backend);
    cJSON_AddNumberToObject(c, "threads", 2);
    cJSON_AddStringToObject(c, "git_rev", "abc123");
    cJSON_AddStringToObject(c, "lapack", "OpenBLAS 0.3.21 Haswell");
    cJSON_AddStringToObject(c, "build", "gcc -O avx2");
    cJSON_AddStringToObject(c, "backbone_hash", cur_backbone);
    snprintf(path, sizeof path, "%s/cells", dir);
    pb_mkdirs(path, NULL, 0);
    snprintf(path, sizeof path, "%s/cells/%s.json", dir, id);
    char err[512];
    EXPECT(pb_json_write_atomic(path, c, err, sizeof err) == PB_OK, "%s", err);
    cJSON_Delete(c);
}

static const char *methods[2] = {"lora", "head"};
static const char *datasets[3] = {"a", "b", "c"};

// A results directory: 2 methods x 3 datasets x 2 seeds. drop: points off every lora score;
// jitter: up to +-jitter points, a fixed pseudo-random pattern over the cells (seed-like noise); loss_bump: added to the
// first cell's training loss.
static void make_run(const char *name, const char *backend, double drop, double jitter, double loss_bump) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    int idx = 0;
    for (int m = 0; m < 2; m++)
        for (int d = 0; d < 3; d++)
            for (int s = 0; s < 2; s++, idx++) {
                double base = (m ? 60.0 : 80.0) + 2 * d + (s ? 0.6 : -0.6);
                double v = base - (m == 0 ? drop : 0) + jitter * sin(1.7 * idx + 0.3);
                put_cell(dir, idx, methods[m], datasets[d], s, v / 100, 1.0 + 0.01 * idx + (idx ? 0 : loss_bump), backend);
            }
}

// A run of make_run's grid on backbone bb (a content hash) with cell ids from id0: every lora
// score shifted by lora_shift points (plus pat[d] on dataset d when pat is given: a backbone
// better on one task and worse on another) and every head score by head_shift — what another
// backbone does to a method — jitter as make_run's.
static void make_bb_run(const char *name, const char *backend, const char *bb, int id0, const double *pat,
                        double lora_shift, double head_shift, double jitter) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    cur_backbone = bb;
    int idx = 0;
    for (int m = 0; m < 2; m++)
        for (int d = 0; d < 3; d++)
            for (int s = 0; s < 2; s++, idx++) {
                double shift = m ? head_shift : lora_shift + (pat ? pat[d] : 0);
                double v = (m ? 60.0 : 80.0) + 2 * d + (s ? 0.6 : -0.6) + shift + jitter * sin(1.7 * idx + 0.3);
                put_cell(dir, id0 + idx, methods[m], datasets[d], s, v / 100, 1.0 + 0.01 * idx, backend);
            }
    cur_backbone = "";
}

// root/name into buf (400 bytes); returns buf.
static const char *in_root(char *buf, const char *name) {
    snprintf(buf, 400, "%.300s/%s", root, name);
    return buf;
}

// The status of method's row in check's averages table (text t): "REGRESSION", "ok", or "" when
// the table has no such row (model "m", 3 rows).
static const char *avg_status(const char *t, const char *method) {
    char key[96];
    snprintf(key, sizeof key, "\nm            %-20s     3", method);
    const char *l = t ? strstr(t, key) : NULL;
    if (!l) return "";
    const char *e = strchr(l + 1, '\n');
    const char *r = strstr(l, "REGRESSION");
    return r && (!e || r < e) ? "REGRESSION" : "ok";
}

// Runs check; returns its status, *bad the failures; the output goes to dir/out.txt and is
// returned in *text (caller frees).
static pb_status run_check(const char *name, const char *baseline, const pb_check_opts *o, int *bad, char **text,
                           char *err, size_t errlen) {
    char dir[400], outp[500];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    snprintf(outp, sizeof outp, "%s/out.txt", root);
    FILE *f = fopen(outp, "w");
    pb_status st = pb_check_run(dir, baseline, o, f, bad, err, errlen);
    fclose(f);
    *text = pb_read_text(outp, NULL);
    return st;
}

// Writes a copy of the baseline with one change made by edit(root JSON) to path.
static void baseline_variant(const char *src, const char *path, void (*edit)(cJSON *)) {
    cJSON *j = NULL;
    char err[512];
    EXPECT(pb_json_read_file(src, &j, err, sizeof err) == PB_OK, "%s", err);
    edit(j);
    EXPECT(pb_json_write_atomic(path, j, err, sizeof err) == PB_OK, "%s", err);
    cJSON_Delete(j);
}

static cJSON *row0(cJSON *j) { return cJSON_GetArrayItem(cJSON_GetObjectItem(j, "rows"), 0); }
static void ed_examples(cJSON *j) { cJSON_ReplaceItemInObject(row0(j), "examples", cJSON_CreateNumber(0)); }
static void ed_metric(cJSON *j) { cJSON_ReplaceItemInObject(row0(j), "metric", cJSON_CreateString("bleu")); }
static void ed_mean(cJSON *j) { cJSON_ReplaceItemInObject(row0(j), "mean", cJSON_CreateString("high")); }
static void ed_extra(cJSON *j) { cJSON_ReplaceItemInObject(row0(j), "extra_sd", cJSON_CreateNumber(-1)); }
static void ed_fp(cJSON *j) { cJSON_DeleteItemFromObject(row0(j), "fingerprint"); }
static void ed_fp_threads(cJSON *j) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(row0(j), "fingerprint"), "threads", cJSON_CreateString("2"));
}
static void ed_seeds(cJSON *j) { cJSON_ReplaceItemInObject(row0(j), "seeds", cJSON_CreateNumber(1.5)); }
static void ed_dup(cJSON *j) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(j, "rows"), cJSON_Duplicate(row0(j), 1));
}
static void ed_schema(cJSON *j) { cJSON_ReplaceItemInObject(j, "schema", cJSON_CreateString("peftbench.other/9")); }
static void ed_norows(cJSON *j) { cJSON_ReplaceItemInObject(j, "rows", cJSON_CreateArray()); }
static void ed_cellid(cJSON *j) {
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cells"), 0), "id", cJSON_CreateNumber(3));
}
static void ed_axes(cJSON *j) { cJSON_ReplaceItemInObject(row0(j), "axes", cJSON_CreateString("rank=4")); }
static void ed_bbseeds(cJSON *j) {
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(row0(j), "backbones"), 0), "seeds",
                              cJSON_CreateNumber(3));
}
static void ed_bbsd(cJSON *j) { cJSON_ReplaceItemInObject(row0(j), "backbone_sd", cJSON_CreateNumber(-2)); }

int main(void) {
    // The normal quantile (reference values to 1e-6) and the metrics' sampling variances.
    EXPECT(fabs(pb_check_norm_quantile(0.975) - 1.959964) < 1e-6, "z 0.975 = %.7f", pb_check_norm_quantile(0.975));
    EXPECT(fabs(pb_check_norm_quantile(0.99) - 2.326348) < 1e-6, "z 0.99");
    EXPECT(fabs(pb_check_norm_quantile(0.8) - 0.841621) < 1e-6, "z 0.8");
    EXPECT(fabs(pb_check_norm_quantile(1e-6) + 4.753424) < 1e-6, "z 1e-6");
    EXPECT(pb_check_norm_quantile(0.5) == 0, "z 0.5");
    EXPECT(isnan(pb_check_norm_quantile(0)) && isnan(pb_check_norm_quantile(1)) && isnan(pb_check_norm_quantile(NAN)),
           "z outside (0, 1)");
    EXPECT(fabs(pb_check_metric_var("accuracy", 50, 1000) - 2.5) < 1e-9, "binomial at 50%%: %g",
           pb_check_metric_var("accuracy", 50, 1000));
    double v100 = pb_check_metric_var("accuracy", 100, 1000);
    EXPECT(v100 > 0 && v100 < 0.03, "a perfect score keeps a sampling error: %g", v100);
    EXPECT(fabs(pb_check_metric_var("f1", 50, 1000) - 1e4 * 0.25 / 500) < 1e-9, "f1 on n/2");
    EXPECT(fabs(pb_check_metric_var("pearson", 0, 103) - 100) < 1e-9, "pearson at r=0: 1e4/(n-3)");
    EXPECT(fabs(pb_check_metric_var("spearman", 0, 103) - 106) < 1e-9, "spearman 1.06/(n-3)");
    EXPECT(fabs(pb_check_metric_var("mcc", 60, 1002) - 1e4 * 0.64 / 1000) < 1e-9, "mcc (1-r^2)/(n-2)");
    EXPECT(isnan(pb_check_metric_var("bleu", 50, 1000)) && isnan(pb_check_metric_var("accuracy", 50, 0)) &&
           isnan(pb_check_metric_var("pearson", 50, 3)), "unknown metric / too few examples: NaN");

    snprintf(root, sizeof root, "/tmp/pb_test_check.%d", (int)getpid());
    char err[2048], bpath[400], path[400];
    snprintf(bpath, sizeof bpath, "%s/baseline.json", root);
    const char *kernel_a = "cpu, oneDNN 2.6.3 avx512_core (sgemm jit avx512_core), 2 threads (OpenMP)";
    const char *kernel_b = "cpu, OpenBLAS 0.3.21 Haswell, 2 threads (OpenMP)";
    make_run("A", kernel_a, 0, 0, 0);
    make_run("A2", kernel_a, 0, 0, 1e-9);  // same fingerprint, one training loss differs
    make_run("B", kernel_b, 0, 0.8, 0);    // another kernel: seed-like noise
    make_run("Bdrop", kernel_b, 6, 0.8, 0); // another kernel, lora 6 points lower on every task
    make_run("Bsmall", kernel_b, 0.5, 0.8, 0); // a drop far below what the check can see

    char adir[400];
    snprintf(adir, sizeof adir, "%s/A", root);
    FILE *devnull = fopen("/dev/null", "w");
    EXPECT(pb_baseline_write((const char *[]){adir}, 1, bpath, -1, devnull, err, sizeof err) == PB_OK, "write baseline: %s", err);
    {
        cJSON *b = NULL;
        EXPECT(pb_json_read_file(bpath, &b, err, sizeof err) == PB_OK, "%s", err);
        const cJSON *rows = cJSON_GetObjectItem(b, "rows");
        EXPECT(cJSON_GetArraySize(rows) == 6, "baseline rows %d", cJSON_GetArraySize(rows));
        const cJSON *r = cJSON_GetArrayItem(rows, 0);
        EXPECT(pb_jnum(r, "examples", 0) == 1000 && pb_jnum(r, "seeds", 0) == 2, "examples/seeds");
        EXPECT(fabs(pb_jnum(r, "std", 0) - 1.2 * sqrt(0.5)) < 1e-9, "seed std %g", pb_jnum(r, "std", 0));
        EXPECT(!strcmp(pb_jstr(cJSON_GetObjectItem(r, "fingerprint"), "backend", ""), kernel_a), "fingerprint");
        EXPECT(!strcmp(pb_jstr(b, "schema", ""), "peftbench.baseline/1"), "schema");
        EXPECT(cJSON_GetArraySize(cJSON_GetObjectItem(b, "cells")) == 12, "cells");
        cJSON_Delete(b);
    }

    pb_check_opts o;
    pb_check_opts_default(&o);
    int bad = -1;
    char *t = NULL;
    // exact mode: the baseline's own run passes, a changed training loss fails
    EXPECT(run_check("A", bpath, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(bad == 0 && t && strstr(t, "6 exact (fingerprint matches), 0 statistical"), "exact self-check: bad %d\n%s", bad, t);
    free(t);
    EXPECT(run_check("A2", bpath, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(bad == 1 && strstr(t, "CHANGED") && strstr(t, "last training loss"), "exact: changed loss, bad %d\n%s", bad, t);
    free(t);
    // statistical mode: another kernel with seed-like noise passes; a 6-point drop of lora fails
    // (its average, and the suite's); a 0.5-point drop is below the minimum detectable drop
    EXPECT(run_check("B", bpath, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(bad == 0 && strstr(t, "0 exact (fingerprint matches), 6 statistical (fingerprint differs: backend)") &&
           strstr(t, "minimum detectable drop"), "statistical pass: bad %d\n%s", bad, t);
    free(t);
    snprintf(path, sizeof path, "%s/r.xml", root);
    char mdp[400];
    snprintf(mdp, sizeof mdp, "%s/r.md", root);
    o.junit = path;
    o.markdown = mdp;
    EXPECT(run_check("Bdrop", bpath, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(bad >= 1 && strstr(t, "(suite)") && strstr(t, "REGRESSION"), "6-point drop: bad %d\n%s", bad, t);
    // the lora average regressed, head's did not
    EXPECT(!strcmp(avg_status(t, "lora"), "REGRESSION"), "lora average not flagged\n%s", t);
    EXPECT(!strcmp(avg_status(t, "head"), "ok"), "head average flagged\n%s", t);
    free(t);
    char *x = pb_read_text(path, NULL), *md = pb_read_text(mdp, NULL);
    EXPECT(x && strstr(x, "<testsuites") && strstr(x, "<failure type=\"regression\"") && strstr(x, "m lora average"),
           "junit\n%s", x ? x : "(none)");
    EXPECT(md && strstr(md, "**FAIL**") && strstr(md, "**REGRESSION**"), "markdown\n%s", md ? md : "(none)");
    free(x);
    free(md);
    o.junit = o.markdown = NULL;
    EXPECT(run_check("Bsmall", bpath, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(bad == 0, "0.5-point drop flagged: bad %d\n%s", bad, t);
    free(t);
    // forced modes and tolerance mode
    o.mode = PB_CHECK_STAT;
    EXPECT(run_check("A", bpath, &o, &bad, &t, err, sizeof err) == PB_OK && bad == 0 && strstr(t, "0 exact"), "forced stat");
    free(t);
    o.mode = PB_CHECK_EXACT;
    EXPECT(run_check("B", bpath, &o, &bad, &t, err, sizeof err) == PB_OK && bad > 0 && strstr(t, "CHANGED"),
           "forced exact on another kernel must fail on the jitter");
    free(t);
    o.mode = PB_CHECK_AUTO;
    o.tol = 0.5;
    EXPECT(run_check("Bdrop", bpath, &o, &bad, &t, err, sizeof err) == PB_OK && bad == 3 &&
           strstr(t, "tolerance 0.50 points: 3 regression(s)"), "tolerance: bad %d\n%s", bad, t);
    free(t);
    o.tol = -1;

    // Bad baselines: one error naming the file and the field each, never a crash.
    struct {
        void (*edit)(cJSON *);
        const char *field;
    } cases[] = {{ed_examples, "rows[0].examples"}, {ed_metric, "rows[0].metric"},   {ed_mean, "rows[0].mean"},
                 {ed_extra, "rows[0].extra_sd"},    {ed_fp, "rows[0].fingerprint"},  {ed_fp_threads, "fingerprint.threads"},
                 {ed_seeds, "rows[0].seeds"},       {ed_dup, "rows[6]: the same"},   {ed_schema, "schema"},
                 {ed_norows, "rows: empty"},        {ed_cellid, "cells[0].id"},      {ed_axes, "rows[0].axes"},
                 {ed_bbseeds, "rows[0].backbones: 3 seeds in all, the row says 2"},
                 {ed_bbsd, "rows[0].backbone_sd"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/bad%zu.json", root, i);
        baseline_variant(bpath, path, cases[i].edit);
        err[0] = 0;
        pb_status st = run_check("A", path, &o, &bad, &t, err, sizeof err);
        EXPECT(st == PB_ERR_FORMAT && strstr(err, path) && strstr(err, cases[i].field), "bad baseline %zu: status %d, "
               "'%s' (want '%s')", i, st, err, cases[i].field);
        free(t);
    }

    // Backbones (docs/regression.md, "The backbone term"). A baseline from three backbones, each
    // shifting lora by +1.5 / -1.5 / 0 and head by +0.5 / -0.5 / 0 points on every task.
    {
        make_bb_run("K0", kernel_a, "00000000000000b0", 100, NULL, 1.5, 0.5, 0);
        make_bb_run("K1", kernel_a, "00000000000000b1", 200, NULL, -1.5, -0.5, 0);
        make_bb_run("K2", kernel_a, "00000000000000b2", 300, NULL, 0, 0, 0);
        char k0[400], k1[400], k2[400], kb[400], k0b[400];
        const char *three[3] = {in_root(k0, "K0"), in_root(k1, "K1"), in_root(k2, "K2")};
        in_root(kb, "kb.json");
        in_root(k0b, "k0b.json");
        EXPECT(pb_baseline_write(three, 3, kb, -1, devnull, err, sizeof err) == PB_OK, "3 backbones: %s", err);
        EXPECT(pb_baseline_write(three, 1, k0b, -1, devnull, err, sizeof err) == PB_OK, "1 backbone: %s", err);
        cJSON *b = NULL;
        EXPECT(pb_json_read_file(kb, &b, err, sizeof err) == PB_OK, "%s", err);
        const cJSON *r = row0(b); // lora on dataset a: backbone means 81.5, 78.5, 80
        EXPECT(pb_jnum(b, "backbones", 0) == 3 && cJSON_GetArraySize(cJSON_GetObjectItem(r, "backbones")) == 3 &&
               pb_jnum(r, "seeds", 0) == 6 && fabs(pb_jnum(r, "mean", 0) - 80) < 1e-9, "pooled row");
        // tau_m^2 = pooled s_B^2 - W: s_B^2 = (1.5^2 + 1.5^2 + 0) / 2 on each lora row; W = mean over
        // backbones of V/2, V the binomial variance at each backbone's mean (the seeds' spread, 0.85,
        // is below it: extra_sd 0). A row's tau^2 = tau_m^2 f_d, f_d >= 1: on dataset a (the
        // largest binomial variance, so the smallest excess) f_a is at its floor 1.
        double num = 0;
        for (int d = 0; d < 3; d++) {
            double w = 0;
            for (int k = 0; k < 3; k++)
                w += pb_check_metric_var("accuracy", 80 + 2 * d + (k == 0 ? 1.5 : k == 1 ? -1.5 : 0), 1000) / 2 / 3;
            num += 2 * (2.25 - w);
        }
        double tau = sqrt(num / 6);
        EXPECT(pb_jnum(r, "extra_sd", -1) == 0 && fabs(pb_jnum(r, "backbone_sd", 0) - tau) < 1e-9 &&
               pb_jnum(r, "backbone_df", 0) == 6, "backbone_sd %.9g, want %.9g (df %g)", pb_jnum(r, "backbone_sd", 0), tau,
               pb_jnum(r, "backbone_df", 0));
        // every row of lora moves together: the correlation estimate hits its bound 1 (3 - 1 df;
        // head's +-0.5 is within its sampling noise: tau 0, nothing to correlate)
        EXPECT(pb_jnum(b, "backbone_rho", -1) == 1 && pb_jnum(b, "backbone_rho_df", 0) == 2, "backbone_rho %g (df %g)",
               pb_jnum(b, "backbone_rho", -1), pb_jnum(b, "backbone_rho_df", 0));
        cJSON_Delete(b);
        // a run on a baseline backbone (another kernel, which left the backbone as it was): its
        // own seeds are the reference (lora a: 81.50), no backbone term
        make_bb_run("N0", kernel_b, "00000000000000b0", 100, NULL, 1.5, 0.5, 0.3);
        EXPECT(run_check("N0", kb, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(bad == 0 && strstr(t, "6 row(s) fine-tuned the baseline's backbone 00000000000000b0") &&
               strstr(t, "    81.50 ") && !strstr(t, "fine-tuned another backbone"), "same backbone: bad %d\n%s", bad, t);
        free(t);
        // another backbone 2.5 points below the mean for lora (1 below for head): within what three
        // backbones show, it passes with the backbone term, and fails a one-backbone baseline, which
        // warns that it cannot model the shift
        make_bb_run("Nnew", kernel_b, "00000000000000c3", 100, NULL, -2.5, -1, 0.3);
        EXPECT(run_check("Nnew", kb, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(bad == 0 && strstr(t, "6 row(s) fine-tuned another backbone than the baseline's 3") &&
               strstr(t, "tau (rms over rows) per method: lora") && !strstr(t, "WARNING"), "other backbone: bad %d\n%s", bad, t);
        free(t);
        EXPECT(run_check("Nnew", k0b, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(bad > 0 && strstr(t, "WARNING: 6 of these rows have a baseline of one backbone"),
               "one-backbone baseline: bad %d\n%s", bad, t);
        free(t);
        // a real regression on another backbone: lora 8 points down on every task fails its average
        make_bb_run("Ndrop", kernel_b, "00000000000000c3", 100, NULL, -8, 0, 0.3);
        EXPECT(run_check("Ndrop", kb, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(bad > 0 && !strcmp(avg_status(t, "lora"), "REGRESSION"), "8-point drop on another backbone: bad %d\n%s",
               bad, t);
        free(t);
        // exact mode against the backbone's own seeds: K1's own run is unchanged
        EXPECT(run_check("K1", kb, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(bad == 0 && strstr(t, "6 exact (fingerprint matches)"), "exact on backbone b1: bad %d\n%s", bad, t);
        free(t);
        // Backbones that move lora's tasks in opposite directions (+3 / -3 / 0 on a, b, c, and the
        // mirror image) leave its average in place: rho is estimated at 0, and a 5.3-point drop of
        // lora on every task on a new backbone is caught; under the bound rho = 1 it is not.
        {
            const double p0[3] = {3, -3, 0}, p1[3] = {-3, 3, 0}, p2[3] = {0, 0, 0};
            make_bb_run("J0", kernel_a, "00000000000000e0", 500, p0, 0, 0, 0);
            make_bb_run("J1", kernel_a, "00000000000000e1", 600, p1, 0, 0, 0);
            make_bb_run("J2", kernel_a, "00000000000000e2", 700, p2, 0, 0, 0);
            char j0[400], j1[400], j2[400], jb[400], jb1[400];
            const char *js[3] = {in_root(j0, "J0"), in_root(j1, "J1"), in_root(j2, "J2")};
            in_root(jb, "jb.json");
            in_root(jb1, "jb1.json");
            EXPECT(pb_baseline_write(js, 3, jb, -1, devnull, err, sizeof err) == PB_OK, "%s", err);
            cJSON *jj = NULL;
            EXPECT(pb_json_read_file(jb, &jj, err, sizeof err) == PB_OK, "%s", err);
            EXPECT(pb_jnum(jj, "backbone_rho", -1) == 0 && pb_jnum(jj, "backbone_rho_df", 0) == 2,
                   "task-specific shifts: backbone_rho %g (df %g)", pb_jnum(jj, "backbone_rho", -1),
                   pb_jnum(jj, "backbone_rho_df", 0));
            // the task factor: a and b move 3 points each way, c not at all (its floor 1 keeps it at
            // lora's spread); f_a = f_b = 3/2 of the method's pooled excess, up to sampling terms
            const cJSON *jr = cJSON_GetObjectItem(jj, "rows");
            double fa = pb_jnum(cJSON_GetArrayItem(jr, 0), "backbone_task_factor", 0);
            double fb = pb_jnum(cJSON_GetArrayItem(jr, 1), "backbone_task_factor", 0);
            double fc = pb_jnum(cJSON_GetArrayItem(jr, 2), "backbone_task_factor", 0);
            EXPECT(fa > 1.5 && fa < 1.7 && fb > 1.5 && fb < 1.7 && fc == 1, "task factors %g %g %g", fa, fb, fc);
            cJSON_ReplaceItemInObject(jj, "backbone_rho", cJSON_CreateNumber(1));
            EXPECT(pb_json_write_atomic(jb1, jj, err, sizeof err) == PB_OK, "%s", err);
            cJSON_Delete(jj);
            make_bb_run("Jdrop", kernel_b, "00000000000000e9", 500, p0, -5.3, 0, 0.3);
            EXPECT(run_check("Jdrop", jb, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
            EXPECT(bad > 0 && !strcmp(avg_status(t, "lora"), "REGRESSION"), "5.3-point drop, rho 0: bad %d\n%s", bad, t);
            free(t);
            EXPECT(run_check("Jdrop", jb1, &o, &bad, &t, err, sizeof err) == PB_OK, "%s", err);
            EXPECT(!strcmp(avg_status(t, "lora"), "ok") && strstr(t, "correlated by rho 1.00"),
                   "5.3-point drop under rho = 1 is within the bound\n%s", t);
            free(t);
        }
        // the writer refuses the same backbone twice, cells without a backbone, another suite
        const char *twice[2] = {k0, k0};
        EXPECT(pb_baseline_write(twice, 2, kb, -1, devnull, err, sizeof err) == PB_ERR_FORMAT &&
               strstr(err, "is in two of the directories"), "same dir twice: %s", err);
        const char *nobb[2] = {k0, adir};
        EXPECT(pb_baseline_write(nobb, 2, kb, -1, devnull, err, sizeof err) == PB_ERR_FORMAT &&
               strstr(err, "records no backbone_hash") && strstr(err, adir), "no backbone: %s", err);
        cur_suite = "other";
        make_bb_run("S", kernel_a, "00000000000000d4", 400, NULL, 0, 0, 0);
        cur_suite = "t";
        char sdir[400];
        snprintf(sdir, sizeof sdir, "%s/S", root);
        // the suite is the manifest's (the cells' must agree with it)
        snprintf(path, sizeof path, "%.380s/manifest.json", k0);
        EXPECT(pb_write_file_atomic(path, "{\"suite\": \"t\"}", 14, err, sizeof err) == PB_OK, "%s", err);
        snprintf(path, sizeof path, "%.380s/manifest.json", sdir);
        EXPECT(pb_write_file_atomic(path, "{\"suite\": \"other\"}", 18, err, sizeof err) == PB_OK, "%s", err);
        const char *two[2] = {k0, sdir};
        EXPECT(pb_baseline_write(two, 2, kb, -1, devnull, err, sizeof err) == PB_ERR_FORMAT &&
               strstr(err, "suite 'other'") && strstr(err, sdir), "another suite: %s", err);
    }

    // Hostile labels: XML and Markdown escaping (and bytes XML cannot carry).
    {
        char hdir[400];
        snprintf(hdir, sizeof hdir, "%s/H", root);
        const char *evil = "<b>&\"'|*_`[x](y)\x01\xff";
        put_cell(hdir, 0, evil, "d<1>", 0, 0.9, 1.0, kernel_a);
        put_cell(hdir, 1, evil, "d<1>", 1, 0.8, 1.1, kernel_a);
        char hb[400];
        snprintf(hb, sizeof hb, "%s/hb.json", root);
        EXPECT(pb_baseline_write((const char *[]){hdir}, 1, hb, -1, devnull, err, sizeof err) == PB_OK, "%s", err);
        snprintf(path, sizeof path, "%s/h.xml", root);
        o.junit = path;
        o.markdown = mdp;
        o.mode = PB_CHECK_EXACT;
        put_cell(hdir, 1, evil, "d<1>", 1, 0.7, 1.1, kernel_a); // a change: the failure text carries the labels
        EXPECT(run_check("H", hb, &o, &bad, &t, err, sizeof err) == PB_OK && bad == 1, "hostile: %s", err);
        free(t);
        x = pb_read_text(path, NULL);
        md = pb_read_text(mdp, NULL);
        EXPECT(x && strstr(x, "&lt;b&gt;&amp;&quot;&apos;|*_`[x](y)&#xFFFD;&#xFFFD;") && !strstr(x, "<b>") &&
               strstr(x, "d&lt;1&gt;"), "junit escaping\n%s", x ? x : "");
        EXPECT(md && strstr(md, "&lt;b&gt;&amp;\"'\\|\\*\\_\\`\\[x\\]\\(y\\)") && !strstr(md, "<b>") &&
               !strstr(md, "|*_"), "markdown escaping\n%s", md ? md : "");
        free(x);
        free(md);
    }
    fclose(devnull);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
    if (pb_test_fails) fprintf(stderr, "%d failure(s)\n", pb_test_fails);
    else printf("test_check: ok\n");
    return pb_test_fails ? 1 : 0;
}
