// train.c: one cell (train.h): resolve the model config, load the task at the model's input size
// (stage.c), obtain the weights (backbone.c: built-in, checkpoint, or a cached pretrained
// backbone), apply the method, check memory, then the loop's epochs (loop.c: pb_fit) and the
// result record. Head-only cells without random augmentation train on cached features.
#include "train.h"
#include "backbone.h"
#include "jsonutil.h"
#include "loop.h"
#include "../methods/adapter.h"
#include <math.h>
#include <string.h>


// Tokens per example of the cell's input: ViT patches + [CLS], or the task's sequence length.
static int cell_tokens(const pb_model_config *cfg, const pb_task *t) {
    if (cfg->arch == PB_ARCH_VIT) {
        int g = cfg->image_size / cfg->patch_size;
        return g * g + 1;
    }
    return t->seq_len > 0 ? t->seq_len : cfg->max_positions;
}

typedef struct {
    pb_train_ctx *ctx;
} cell_user;

static void cell_on_epoch(void *user, const pb_epoch_metrics *m, int epochs) {
    pb_train_ctx *ctx = ((cell_user *)user)->ctx;
    if (ctx->on_epoch) ctx->on_epoch(ctx, m, epochs);
}

pb_status pb_train_cell(const cJSON *config, pb_train_ctx *ctx, pb_train_result *r) {
    memset(r, 0, sizeof(*r));
    double t_cell = pb_now();
    snprintf(r->metric, sizeof(r->metric), "accuracy");
    char err[1024] = "";
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(config, "model");
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(config, "dataset");
    const cJSON *mj = cJSON_GetObjectItemCaseSensitive(config, "method");
    uint64_t seed = (uint64_t)pb_jnum(config, "seed", 0);
    pb_recipe rc;
    pb_recipe_read(cJSON_GetObjectItemCaseSensitive(config, "recipe"), &rc);

    pb_engine *e = pb_engine_init(ctx->device, ctx->threads, err, sizeof(err));
    if (!e) {
        r->status = pb_errf(PB_ERR_UNSUPPORTED, r->reason, sizeof(r->reason), "engine: %s", err);
        return r->status;
    }
    snprintf(r->backend, sizeof(r->backend), "%s", pb_engine_describe(e));
    r->threads = pb_engine_threads(e);
    fprintf(ctx->log, "engine %s\n", r->backend);

    pb_model *m = NULL;
    pb_task t;
    memset(&t, 0, sizeof(t));
    pb_method_config mc;
    pb_status st = pb_method_config_from_json(mj, seed, &mc, err, sizeof(err));
    // The task's class count decides the head, and the model's input size decides the task's
    // preprocessing: resolve the config first, then the data, then the weights.
    pb_model_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (!st) st = pb_model_config_resolve(model, &cfg, err, sizeof(err));
    if (!st) st = pb_stage_task_load(ds, &cfg, &t, err, sizeof(err));
    if (!st) {
        snprintf(r->metric, sizeof(r->metric), "%s", t.metric);
        snprintf(r->data_hash, sizeof(r->data_hash), "%s", t.data_hash);
        r->n_val = t.val.n; // what each evaluation counts (check's sampling error)
        r->n_test = t.test.n;
        fprintf(ctx->log, "task %s: %d classes, train %d val %d test %d, metric %s, data %s\n", t.name, t.num_classes,
                t.train.n, t.val.n, t.test.n, t.metric, t.data_hash);
        // Refuse before allocating what cannot fit: weights + activations now, optimizer state
        // once the method says what trains.
        cfg.num_labels = t.num_classes;
        int T = cell_tokens(&cfg, &t);
        int Bmax = rc.batch > rc.eval_batch ? rc.batch : rc.eval_batch; // eval forwards keep activations too
        st = pb_model_memory_check(&cfg, Bmax, T, 0, err, sizeof(err));
        if (!st) st = pb_backbone_obtain(e, model, t.num_classes, seed, ctx->cache_root, ctx->log, &m, r->backbone_hash,
                                        err, sizeof(err));
    }
    if (!st) st = pb_method_apply(m, &mc, err, sizeof(err));
    if (!st)
        st = pb_model_memory_check(pb_model_cfg(m), rc.batch > rc.eval_batch ? rc.batch : rc.eval_batch,
                                   cell_tokens(pb_model_cfg(m), &t),
                                   (double)pb_model_count(m).trainable, err, sizeof(err));
    if (st) {
        r->status = pb_errf(st, r->reason, sizeof(r->reason), "%s", err);
        fprintf(ctx->log, "error: %s\n", r->reason);
    } else {
        pb_param_counts pc = pb_model_count(m);
        r->p_total = (long long)(pc.total + pc.adapter);
        r->p_backbone = (long long)pc.backbone;
        r->p_head = (long long)pc.head;
        r->p_adapter = (long long)pc.adapter;
        r->p_trainable_backbone = (long long)(pc.trainable_backbone - pc.adapter);
        r->p_trainable = (long long)pc.trainable;
        // Only the head trains (pb_method_head_only): train it on cached features.
        int head_only = pb_method_head_only(mc.desc);
        int cached = head_only && rc.feature_cache && !rc.flip;
        fprintf(ctx->log, "method %s: trainable %lld (adapter %lld, backbone %lld, head %lld) of %lld%s\n", mc.desc->name,
                r->p_trainable, r->p_adapter, r->p_trainable_backbone, r->p_head, r->p_total,
                cached ? "; head on cached features" : "");
        pb_fit L;
        pb_fit_init(&L, m, &t, &rc, seed, cached);
        L.method = &mc;
        cell_user u = {ctx};
        r->status = pb_fit_run(&L, &r->epochs, &r->nepochs, 1, cell_on_epoch, &u, NULL, r->reason,
                               sizeof(r->reason));
        r->train_time_s = L.train_time;
        r->train_examples = L.train_examples;
        r->throughput = L.train_time > 0 ? (double)L.train_examples / L.train_time : 0;
        if (mc.desc->events)
            fprintf(ctx->log, "%s %s: %lld\n", mc.desc->name, mc.desc->events, (long long)pb_method_events(m));
        pb_fit_free(&L);
    }
    r->peak_rss = pb_peak_rss();
    fprintf(ctx->log, "cell time %.1fs (train %.1fs, %.0f ex/s), peak RSS %.1f MB\n", pb_now() - t_cell,
            r->train_time_s, r->throughput, (double)r->peak_rss / 1048576.0);
    pb_model_free(m);
    pb_task_free(&t);
    pb_engine_free(e);
    return r->status;
}
