// prepare.c: `peftbench run SUITE --prepare` (runner.h: pb_run_prepare): everything the cells of a
// suite share, done once before they start (the Slurm prepare job; docs/cluster.md): each
// dataset loaded at each model's input (VTAB-mini built, preprocessing cached), each backbone
// loaded (checkpoints checked) or pretrained into the cache. No cell is trained.
#include "runner.h"
#include "backbone.h"
#include "jsonutil.h"
#include "stage.h"
#include <string.h>

// 1 if the canonical JSON key k is already in keys[0..n); else adds it (takes ownership) and returns 0.
static int seen(char **keys, int *n, char *k) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(keys[i], k)) {
            free(k);
            return 1;
        }
    keys[(*n)++] = k;
    return 0;
}

int pb_run_prepare(const pb_suite *s, const pb_grid *g, const int *todo, int n, const pb_run_opts *o, const char *out) {
    (void)s;
    char err[4096], path[4200];
    snprintf(path, sizeof path, "%s/logs/prepare.log", out);
    FILE *log = fopen(path, "w");
    if (!log) log = fopen("/dev/null", "w");
    pb_engine *e = pb_engine_init(o->device, o->threads, err, sizeof err);
    if (!e) {
        fprintf(stderr, "peftbench run --prepare: engine: %s\n", err);
        fclose(log);
        return 1;
    }
    const char *cr = getenv("PEFTBENCH_BACKBONE_CACHE");
    const char *cache_root = cr && cr[0] ? cr : "data/cache/backbones";
    char **pairs = pb_xmalloc(sizeof(char *) * (size_t)(n ? n : 1)), **models = pb_xmalloc(sizeof(char *) * (size_t)(n ? n : 1));
    int npairs = 0, nmodels = 0, failed = 0, ndata = 0, nback = 0;
    double t0 = pb_now();
    for (int k = 0; k < n; k++) {
        const pb_cell *c = &g->cells[todo[k]];
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(c->config, "model");
        const cJSON *ds = cJSON_GetObjectItemCaseSensitive(c->config, "dataset");
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_Duplicate(model, 1));
        cJSON_AddItemToArray(pair, cJSON_Duplicate(ds, 1));
        char *pk = pb_json_canonical(pair);
        cJSON_Delete(pair);
        if (seen(pairs, &npairs, pk)) continue;
        pb_model_config cfg;
        memset(&cfg, 0, sizeof cfg);
        pb_task t;
        memset(&t, 0, sizeof t);
        pb_status st = pb_model_config_resolve(model, &cfg, err, sizeof err);
        if (!st) st = pb_stage_task_load(ds, &cfg, &t, err, sizeof err);
        if (st) {
            fprintf(stderr, "peftbench run --prepare: %s on %s: %s\n", c->dataset, c->model, err);
            fprintf(log, "data %s for %s: FAILED: %s\n", c->dataset, c->model, err);
            failed++;
            pb_task_free(&t);
            continue;
        }
        ndata++;
        fprintf(log, "data %s for %s: %d classes, train %d val %d test %d, data %s\n", t.name, c->model, t.num_classes,
                t.train.n, t.val.n, t.test.n, t.data_hash);
        int classes = t.num_classes;
        pb_task_free(&t);
        // The backbone once per model spec (its weights do not depend on the dataset; the head does).
        if (seen(models, &nmodels, pb_json_canonical(model))) continue;
        pb_model *m = NULL;
        st = pb_backbone_obtain(e, model, classes, 0, cache_root, log, &m, NULL, err, sizeof err);
        pb_model_free(m);
        if (st) {
            fprintf(stderr, "peftbench run --prepare: model %s: %s\n", c->model, err);
            fprintf(log, "model %s: FAILED: %s\n", c->model, err);
            failed++;
            continue;
        }
        nback++;
        fprintf(log, "model %s: ok\n", c->model);
    }
    fprintf(stderr, "peftbench run --prepare: %d cells: %d dataset/model pairs and %d models ready, %d failed (%.1fs)\n",
            n, ndata, nback, failed, pb_now() - t0);
    fprintf(log, "prepared %d pairs, %d models, %d failed\n", ndata, nback, failed);
    for (int i = 0; i < npairs; i++) free(pairs[i]);
    for (int i = 0; i < nmodels; i++) free(models[i]);
    free(pairs);
    free(models);
    pb_engine_free(e);
    fclose(log);
    return failed ? 1 : 0;
}
