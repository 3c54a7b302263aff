// results.c: cell result JSON (write side) and result records (read side).
#include "results.h"
#include <stdarg.h>
#include "jsonutil.h"
// defines: pb_gemm_providers (the OpenBLAS core LAPACK runs on)
#include "../engine/system.h"
#include <dirent.h>
#include <math.h>
#include <string.h>
#include <time.h>

void pb_train_result_free(pb_train_result *r) {
    free(r->epochs);
    r->epochs = NULL;
    r->nepochs = 0;
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *epoch_obj(const pb_epoch_metrics *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", e->epoch);
    cJSON_AddItemToObject(o, "val", num_or_null(e->val));
    cJSON_AddItemToObject(o, "test", num_or_null(e->test));
    return o;
}

void pb_result_build_string(char *out, size_t n) {
#if defined(__clang__)
    const char *cc = "clang " __clang_version__;
#elif defined(__GNUC__)
    const char *cc = "gcc " __VERSION__;
#else
    const char *cc = "cc";
#endif
#if defined(__AVX512F__)
    const char *isa = "avx512f";
#elif defined(__AVX2__)
    const char *isa = "avx2";
#elif defined(__AVX__)
    const char *isa = "avx";
#elif defined(__x86_64__)
    const char *isa = "x86-64";
#else
    const char *isa = "other-arch";
#endif
#ifdef __OPTIMIZE__
    const char *opt = "-O";
#else
    const char *opt = "-O0";
#endif
    int san = 0;
#if defined(__SANITIZE_ADDRESS__)
    san = 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    san = 1;
#endif
#endif
    snprintf(out, n, "%s %s %s%s", cc, opt, isa, san ? " asan" : "");
}

cJSON *pb_result_json(const char *suite, const char *id, const cJSON *config, const cJSON *axes,
                      const pb_train_result *r, const char *git_rev) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema", "peftbench.cell/1");
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "suite", suite);
    cJSON_AddStringToObject(o, "status", r->status == PB_OK ? "ok" : "failed");
    cJSON_AddStringToObject(o, "reason", r->status == PB_OK ? "" : r->reason);
    cJSON_AddItemToObject(o, "config", cJSON_Duplicate(config, 1));
    cJSON_AddItemToObject(o, "axes", axes ? cJSON_Duplicate(axes, 1) : cJSON_CreateObject());
    cJSON_AddNumberToObject(o, "seed", cJSON_GetObjectItem(config, "seed")->valuedouble);
    cJSON_AddStringToObject(o, "metric", r->metric);
    const cJSON *ev = cJSON_GetObjectItem(config, "eval");
    const char *split = cJSON_GetObjectItem(ev, "split")->valuestring;
    const char *select = cJSON_GetObjectItem(ev, "select")->valuestring;
    // Epoch selection: last epoch, or the first epoch with the best validation metric.
    int last = r->nepochs - 1, best = -1;
    for (int i = 0; i < r->nepochs; i++)
        if (isfinite(r->epochs[i].val) && (best < 0 || r->epochs[i].val > r->epochs[best].val)) best = i;
    int sel = !strcmp(select, "best_val") ? best : last;
    cJSON *ev_out = cJSON_CreateObject();
    cJSON_AddStringToObject(ev_out, "split", split);
    cJSON_AddStringToObject(ev_out, "select", select);
    cJSON_AddItemToObject(o, "eval", ev_out);
    if (r->status == PB_OK && sel >= 0) {
        cJSON *fin = epoch_obj(&r->epochs[sel]);
        double score = !strcmp(split, "val") ? r->epochs[sel].val : r->epochs[sel].test;
        cJSON_AddItemToObject(fin, "score", num_or_null(score));
        cJSON_AddItemToObject(o, "final", fin);
        cJSON_AddItemToObject(o, "final_last", epoch_obj(&r->epochs[last]));
        if (best >= 0) cJSON_AddItemToObject(o, "final_best_val", epoch_obj(&r->epochs[best]));
    } else {
        cJSON_AddNullToObject(o, "final");
    }
    cJSON *eps = cJSON_CreateArray();
    for (int i = 0; i < r->nepochs; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "epoch", r->epochs[i].epoch);
        cJSON_AddItemToObject(e, "train_loss", num_or_null(r->epochs[i].train_loss));
        cJSON_AddItemToObject(e, "val", num_or_null(r->epochs[i].val));
        cJSON_AddItemToObject(e, "test", num_or_null(r->epochs[i].test));
        cJSON_AddNumberToObject(e, "lr", r->epochs[i].lr);
        cJSON_AddNumberToObject(e, "time_s", r->epochs[i].time_s);
        cJSON_AddItemToArray(eps, e);
    }
    cJSON_AddItemToObject(o, "epochs", eps);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "trainable", (double)r->p_trainable);
    cJSON_AddNumberToObject(p, "adapter", (double)r->p_adapter);
    cJSON_AddNumberToObject(p, "trainable_backbone", (double)r->p_trainable_backbone);
    cJSON_AddNumberToObject(p, "head", (double)r->p_head);
    cJSON_AddNumberToObject(p, "backbone", (double)r->p_backbone);
    cJSON_AddNumberToObject(p, "total", (double)r->p_total);
    cJSON_AddItemToObject(o, "params", p);
    cJSON_AddNumberToObject(o, "train_time_s", r->train_time_s);
    cJSON_AddNumberToObject(o, "throughput_ex_s", r->throughput);
    cJSON_AddNumberToObject(o, "train_examples", (double)r->train_examples);
    // what one evaluation counts: the sampling error of a score depends on it (check)
    cJSON *ee = cJSON_AddObjectToObject(o, "eval_examples");
    cJSON_AddNumberToObject(ee, "val", r->n_val);
    cJSON_AddNumberToObject(ee, "test", r->n_test);
    cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)r->peak_rss);
    cJSON_AddStringToObject(o, "backend", r->backend);
    cJSON_AddNumberToObject(o, "threads", r->threads);
    cJSON_AddStringToObject(o, "git_rev", git_rev ? git_rev : "unknown");
    // The rest of the numerics fingerprint: LAPACK (SVD inits) runs on OpenBLAS whatever the GEMM
    // provider, so its core can change numbers the backend string does not name; so can the build.
    pb_gemm_info ob;
    char fp[160];
    if (pb_gemm_providers(&ob, 1) == 1) snprintf(fp, sizeof fp, "%s %s", ob.library, ob.kernel);
    else snprintf(fp, sizeof fp, "none");
    cJSON_AddStringToObject(o, "lapack", fp);
    pb_result_build_string(fp, sizeof fp);
    cJSON_AddStringToObject(o, "build", fp);
    cJSON_AddStringToObject(o, "data_hash", r->data_hash);
    // the weights every cell of this backbone fine-tunes: check tells a run on the baseline's
    // backbone from one on another (a new kernel pretrains another backbone; docs/regression.md)
    cJSON_AddStringToObject(o, "backbone_hash", r->backbone_hash);
    char when[32];
    time_t t = time(NULL);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tmv);
    cJSON_AddStringToObject(o, "created_at", when);
    return o;
}

int pb_result_is_finished(const char *path) {
    cJSON *j = NULL;
    if (pb_json_read_file(path, &j, NULL, 0)) return 0;
    int ok = cJSON_IsString(cJSON_GetObjectItem(j, "status"));
    cJSON_Delete(j);
    return ok;
}

// ----------------------------------------------------------------------------
// Reading

static const char *jstr(const cJSON *o, const char *k) { return pb_jstr(o, k, ""); }
// Integer fields of a cell file, clamped into range (a hand-edited file must not make the
// conversion undefined: NaN or |x| >= 2^63 -> def or the bound).
static int jint(const cJSON *o, const char *k, int def);
static long long jll(const cJSON *o, const char *k);


static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_recs(const void *a, const void *b) {
    const pb_record *x = a, *y = b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int jint(const cJSON *o, const char *k, int def) {
    double v = pb_jnum(o, k, def);
    if (!(v == v)) return def;
    return v > 2147483647.0 ? 2147483647 : v < -2147483648.0 ? (-2147483647 - 1) : (int)v;
}
static long long jll(const cJSON *o, const char *k) {
    double v = pb_jnum(o, k, 0);
    if (!(v == v)) return 0;
    return v >= 9.2e18 ? (long long)9.2e18 : v <= -9.2e18 ? (long long)-9.2e18 : (long long)v;
}

typedef struct {
    const char *id;
    int pos;
} order_entry;

static int cmp_order(const void *a, const void *b) {
    const order_entry *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_order_id(const void *a, const void *b) {
    return strcmp(((const order_entry *)a)->id, ((const order_entry *)b)->id);
}

void pb_skips_free(pb_skips *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->msg[i]);
    free(s->msg);
    s->msg = NULL;
    s->n = 0;
}

int pb_skips_print(const pb_skips *s, const char *who, FILE *f) {
    for (int i = 0; s && i < s->n; i++) fprintf(f, "%s: skipped %s\n", who, s->msg[i]);
    return s ? s->n : 0;
}

static void skip_add(pb_skips *s, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void skip_add(pb_skips *s, const char *path, const char *fmt, ...) {
    if (!s) return;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    size_t len = strlen(path) + strlen(why) + 3;
    char *m = pb_xmalloc(len);
    snprintf(m, len, "%s: %s", path, why);
    s->msg = pb_xrealloc(s->msg, sizeof(char *) * (size_t)(s->n + 1));
    s->msg[s->n++] = m;
}

// The range a finished cell's score must lie in, by metric.
static int score_ok(const char *metric, double v) {
    if (!isfinite(v)) return 0;
    if (!strcmp(metric, "mcc") || !strcmp(metric, "pearson") || !strcmp(metric, "spearman")) return v >= -1 && v <= 1;
    return v >= 0 && v <= 1;
}

pb_status pb_results_load(const char *dir, pb_record **recs, int *n, pb_skips *skips, char *err, size_t errlen) {
    *recs = NULL;
    *n = 0;
    char path[4096];
    // Grid order from the manifest when present.
    cJSON *man = NULL;
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    pb_json_read_file(path, &man, NULL, 0);
    const cJSON *order = man ? cJSON_GetObjectItem(man, "cells") : NULL;
    const cJSON *msuite = man ? cJSON_GetObjectItem(man, "suite") : NULL;
    // (id, position) sorted by id, for a binary search per cell (a scan per cell was quadratic)
    int nord = 0;
    order_entry *ord = NULL;
    if (cJSON_IsArray(order)) {
        ord = pb_xmalloc(sizeof(order_entry) * (size_t)(cJSON_GetArraySize(order) + 1));
        int q = 0;
        for (const cJSON *v = order->child; v; v = v->next, q++)
            if (cJSON_IsString(v)) ord[nord++] = (order_entry){v->valuestring, q};
        qsort(ord, (size_t)nord, sizeof(order_entry), cmp_order);
    }

    snprintf(path, sizeof(path), "%s/cells", dir);
    DIR *d = opendir(path);
    if (!d) {
        cJSON_Delete(man);
        return pb_errf(PB_ERR_IO, err, errlen, "%s: no cells/ directory (is this a results directory?)", dir);
    }
    char **names = NULL;
    int nn = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t L = strlen(de->d_name);
        if (L < 6 || strcmp(de->d_name + L - 5, ".json")) continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 64;
            names = pb_xrealloc(names, sizeof(char *) * (size_t)cap);
        }
        names[nn++] = pb_xstrdup(de->d_name);
    }
    closedir(d);
    if (nn) qsort(names, (size_t)nn, sizeof(char *), cmp_names); // names is NULL when there are none
    pb_record *rs = pb_xcalloc((size_t)(nn ? nn : 1), sizeof(pb_record));
    pb_status st = PB_OK;
    int k = 0;
    for (int i = 0; i < nn; i++) {
        snprintf(path, sizeof(path), "%s/cells/%s", dir, names[i]);
        cJSON *j = NULL;
        if ((st = pb_json_read_file(path, &j, err, errlen))) break;
        pb_record *r = &rs[k];
        const cJSON *cfg = cJSON_GetObjectItem(j, "config");
        const cJSON *model = cJSON_GetObjectItem(cfg, "model"), *ds = cJSON_GetObjectItem(cfg, "dataset");
        const cJSON *m = cJSON_GetObjectItem(cfg, "method"), *rc = cJSON_GetObjectItem(cfg, "recipe");
        if (!cfg || !model || !ds || !m || !rc) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: not a peftbench cell result (config missing)", path);
            cJSON_Delete(j);
            break;
        }
        // Trust checks: a file that is not where its id says (file names are unique, so this also
        // rules out two results for one id), a foreign suite, no status, or a finished score
        // outside its metric's range is left out, with the reason.
        const char *id = jstr(j, "id"), *status = jstr(j, "status"), *suite = jstr(j, "suite");
        const cJSON *fin0 = cJSON_GetObjectItem(j, "final"), *sc = cJSON_GetObjectItem(fin0, "score");
        char stem[300];
        snprintf(stem, sizeof stem, "%s", names[i]);
        stem[strlen(stem) - 5] = 0; // drop ".json"
        const char *metric = jstr(j, "metric");
        if (strcmp(stem, id)) {
            skip_add(skips, path, "file name is not its cell id '%s' (copied or renamed?)", id);
        } else if (cJSON_IsString(msuite) && strcmp(suite, msuite->valuestring)) {
            skip_add(skips, path, "a cell of suite '%s', not of this directory's '%s'", suite, msuite->valuestring);
        } else if (!status[0]) {
            skip_add(skips, path, "no status");
        } else if (!strcmp(status, "ok") && !(cJSON_IsNumber(sc) && score_ok(metric, sc->valuedouble))) {
            char v[64] = "missing";
            if (cJSON_IsNumber(sc)) snprintf(v, sizeof v, "%g", sc->valuedouble);
            else if (sc) snprintf(v, sizeof v, "not a number");
            skip_add(skips, path, "finished, but its %s score is %s (want a finite number in [%s, 1])",
                     metric[0] ? metric : "metric", v,
                     !strcmp(metric, "mcc") || !strcmp(metric, "pearson") || !strcmp(metric, "spearman") ? "-1" : "0");
        } else {
            k++;
        }
        if (k == 0 || r != &rs[k - 1]) {
            cJSON_Delete(j);
            continue;
        }
        snprintf(r->id, sizeof(r->id), "%s", id);
        snprintf(r->status, sizeof(r->status), "%s", status);
        snprintf(r->reason, sizeof(r->reason), "%s", jstr(j, "reason"));
        snprintf(r->model, sizeof(r->model), "%s", jstr(model, "label"));
        snprintf(r->dataset, sizeof(r->dataset), "%s", jstr(ds, "label"));
        snprintf(r->dataset_ref, sizeof(r->dataset_ref), "%s", jstr(ds, "ref"));
        snprintf(r->dataset_group, sizeof(r->dataset_group), "%s", jstr(ds, "group"));
        snprintf(r->method, sizeof(r->method), "%s", jstr(m, "label"));
        snprintf(r->method_name, sizeof(r->method_name), "%s", jstr(m, "method"));
        snprintf(r->method_ref, sizeof(r->method_ref), "%s", jstr(m, "ref"));
        snprintf(r->metric, sizeof(r->metric), "%s", jstr(j, "metric"));
        const cJSON *ev = cJSON_GetObjectItem(j, "eval");
        snprintf(r->split, sizeof(r->split), "%s", jstr(ev, "split"));
        snprintf(r->select, sizeof(r->select), "%s", jstr(ev, "select"));
        const cJSON *axj = cJSON_GetObjectItem(j, "axes");
        char *ax = axj ? pb_json_canonical(axj) : pb_xstrdup("{}");
        snprintf(r->axes, sizeof(r->axes), "%s", ax);
        free(ax);
        r->seed = jint(cfg, "seed", 0);
        r->rank = jint(m, "rank", 0);
        r->lr = pb_jnum(rc, "lr", NAN) * pb_jnum(rc, "lr_scale", 1);
        const cJSON *fin = cJSON_GetObjectItem(j, "final");
        r->score = pb_jnum(fin, "score", NAN);
        r->val = pb_jnum(fin, "val", NAN);
        r->test = pb_jnum(fin, "test", NAN);
        r->epoch = jint(fin, "epoch", 0);
        const cJSON *eps = cJSON_GetObjectItem(j, "epochs");
        int ne = cJSON_IsArray(eps) ? cJSON_GetArraySize(eps) : 0;
        r->loss_last = ne ? pb_jnum(cJSON_GetArrayItem(eps, ne - 1), "train_loss", NAN) : NAN;
        const cJSON *p = cJSON_GetObjectItem(j, "params");
        r->p_trainable = jll(p, "trainable");
        r->p_adapter = jll(p, "adapter");
        r->p_head = jll(p, "head");
        r->p_total = jll(p, "total");
        r->train_time_s = pb_jnum(j, "train_time_s", 0);
        r->throughput = pb_jnum(j, "throughput_ex_s", 0);
        r->peak_rss_mb = pb_jnum(j, "peak_rss_bytes", 0) / (1024.0 * 1024.0);
        snprintf(r->backend, sizeof(r->backend), "%s", jstr(j, "backend"));
        r->threads = jint(j, "threads", 0);
        snprintf(r->git_rev, sizeof(r->git_rev), "%s", jstr(j, "git_rev"));
        snprintf(r->lapack, sizeof(r->lapack), "%s", jstr(j, "lapack"));
        snprintf(r->build, sizeof(r->build), "%s", jstr(j, "build"));
        snprintf(r->backbone, sizeof(r->backbone), "%s", jstr(j, "backbone_hash"));
        {
            // examples of the split the score comes from; a count out of range reads as unknown
            int ne2 = jint(cJSON_GetObjectItem(j, "eval_examples"), !strcmp(r->split, "val") ? "val" : "test", 0);
            r->n_eval = ne2 > 0 ? ne2 : 0;
        }
        r->order = 1 << 30;
        if (nord) {
            order_entry key = {r->id, 0};
            const order_entry *hit = bsearch(&key, ord, (size_t)nord, sizeof(order_entry), cmp_order_id);
            if (hit) r->order = hit->pos;
        }
        cJSON_Delete(j);
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    free(ord);
    cJSON_Delete(man);
    if (st) {
        free(rs);
        return st;
    }
    qsort(rs, (size_t)k, sizeof(pb_record), cmp_recs);
    *recs = rs;
    *n = k;
    return PB_OK;
}
