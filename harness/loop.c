// loop.c: the one training loop (loop.h): the recipe, steps (pb_loop) and epochs over a task
// (pb_fit). run, trace and bench all step through pb_loop.
#include "loop.h"
#include "jsonutil.h"
#include "../datasets/metrics.h"
#include <math.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Recipe

void pb_recipe_read(const cJSON *j, pb_recipe *rc) {
    memset(rc, 0, sizeof(*rc));
    rc->epochs = (int)pb_jnum(j, "epochs", 1);
    rc->batch = (int)pb_jnum(j, "batch", 32);
    rc->eval_batch = (int)pb_jnum(j, "eval_batch", 256);
    double scale = pb_jnum(j, "lr_scale", 1);
    rc->lr = pb_jnum(j, "lr", 1e-3) * scale;
    const cJSON *hl = cJSON_GetObjectItemCaseSensitive(j, "head_lr");
    rc->head_lr = cJSON_IsNumber(hl) ? hl->valuedouble : rc->lr;
    rc->beta1 = pb_jnum(j, "beta1", 0.9);
    rc->beta2 = pb_jnum(j, "beta2", 0.999);
    rc->eps = pb_jnum(j, "eps", 1e-8);
    rc->weight_decay = pb_jnum(j, "weight_decay", 0);
    rc->warmup_steps = (int)pb_jnum(j, "warmup_steps", 0);
    rc->warmup_ratio = pb_jnum(j, "warmup_ratio", 0);
    rc->label_smoothing = pb_jnum(j, "label_smoothing", 0);
    rc->max_grad_norm = pb_jnum(j, "max_grad_norm", 0);
    rc->train_subset = (int)pb_jnum(j, "train_subset", 0);
    rc->flip = pb_jbool(j, "flip", 0);
    rc->feature_cache = pb_jbool(j, "feature_cache", 1);
    const char *s = pb_jstr(j, "schedule", "linear");
    rc->sched = !strcmp(s, "constant") ? PB_SCHED_CONSTANT : !strcmp(s, "cosine") ? PB_SCHED_COSINE : PB_SCHED_LINEAR;
}


// Deterministic Fisher-Yates shuffle of a[0..n).
static void shuffle(int *a, int n, pb_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)pb_rng_below(r, (uint32_t)(i + 1));
        int tmp = a[i];
        a[i] = a[j];
        a[j] = tmp;
    }
}

// Scales all grads so their global L2 norm is at most maxn (torch clip_grad_norm_: coefficient
// maxn / (norm + 1e-6) when norm > maxn). Returns the norm before clipping.
static double clip_grads(pb_engine *e, pb_param **ps, int n, double maxn) {
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (ps[i]->grad) ss += pb_sumsq(e, ps[i]->grad, ps[i]->numel);
    double norm = sqrt(ss);
    if (!(norm > maxn)) return norm;
    float c = (float)(maxn / (norm + 1e-6));
    for (int i = 0; i < n; i++)
        if (ps[i]->grad) pb_scale(e, ps[i]->grad, ps[i]->grad, c, ps[i]->numel);
    return norm;
}


// ----------------------------------------------------------------------------
// Steps

void pb_loop_init(pb_loop *L, pb_model *m, const pb_recipe *rc, int total_steps) {
    memset(L, 0, sizeof(*L));
    L->m = m;
    L->rc = *rc;
    L->total = total_steps;
    L->warmup = rc->warmup_steps > 0 ? rc->warmup_steps : (int)ceil(rc->warmup_ratio * total_steps);
    L->tr = pb_model_trainable(m, &L->ntr);
    // Head params get head_lr; everything else the (scaled) lr.
    L->head = pb_xmalloc(sizeof(pb_param *) * (size_t)(L->ntr + 1));
    L->rest = pb_xmalloc(sizeof(pb_param *) * (size_t)(L->ntr + 1));
    for (int i = 0; i < L->ntr; i++) {
        if (L->tr[i]->group == PB_GROUP_HEAD) L->head[L->nh++] = L->tr[i];
        else L->rest[L->nr++] = L->tr[i];
    }
}

void pb_loop_free(pb_loop *L) {
    free(L->head);
    free(L->rest);
    memset(L, 0, sizeof(*L));
}

pb_status pb_loop_set_method(pb_loop *L, const pb_method_config *c, char *err, size_t errlen) {
    L->method = c;
    if (c && c->desc->train_check) return c->desc->train_check(c, L->total, err, errlen);
    return PB_OK;
}

float pb_loop_forward_backward(pb_loop *L, const pb_batch *b, const float *features, int train, uint64_t seed,
                               float *logits_out) {
    pb_model *m = L->m;
    pb_engine *e = pb_model_engine(m);
    const float *logits;
    float loss;
    if (features) {
        logits = pb_model_head_forward(m, features, b->B, train, seed);
        if (logits_out) pb_download(e, logits_out, logits, (size_t)b->B * pb_model_cfg(m)->num_labels);
        loss = pb_model_head_loss(m, b, (float)L->rc.label_smoothing);
    } else {
        logits = pb_model_forward(m, b, train, seed);
        if (logits_out) pb_download(e, logits_out, logits, (size_t)b->B * pb_model_cfg(m)->num_labels);
        loss = pb_model_loss(m, b, (float)L->rc.label_smoothing);
    }
    if (!isfinite(loss)) return loss;
    pb_params_zero_grad(e, L->tr, L->ntr);
    if (features) pb_model_head_backward(m, b);
    else pb_model_backward(m, b);
    if (L->method && L->method->desc->regularize) loss += (float)L->method->desc->regularize(m, L->method);
    return loss;
}

void pb_loop_update(pb_loop *L) {
    pb_engine *e = pb_model_engine(L->m);
    const pb_recipe *rc = &L->rc;
    L->grad_norm = rc->max_grad_norm > 0 ? clip_grads(e, L->tr, L->ntr, rc->max_grad_norm) : 0;
    L->lr = pb_lr_at(rc->sched, (float)rc->lr, L->step, L->warmup, L->total);
    L->head_lr = pb_lr_at(rc->sched, (float)rc->head_lr, L->step, L->warmup, L->total);
    pb_adamw_config ac = {L->lr, (float)rc->beta1, (float)rc->beta2, (float)rc->eps, (float)rc->weight_decay};
    pb_params_adamw_step(e, L->rest, L->nr, &ac, L->step + 1);
    ac.lr = L->head_lr;
    pb_params_adamw_step(e, L->head, L->nh, &ac, L->step + 1);
    if (L->method && L->method->desc->after_update) L->method->desc->after_update(L->m, L->method, L->step, L->total);
    L->step++;
}

float pb_loop_step(pb_loop *L, const pb_batch *b, const float *features, int train, uint64_t seed) {
    float loss = pb_loop_forward_backward(L, b, features, train, seed, NULL);
    if (isfinite(loss)) pb_loop_update(L);
    return loss;
}

// Metric of the model on split k (eval mode).
double pb_fit_evaluate(pb_fit *F, int k) {
    const pb_task *t = F->t;
    const pb_split *sp = pb_split_of(t, k);
    pb_engine *e = pb_model_engine(F->m);
    int n = sp->n, V = pb_model_cfg(F->m)->num_labels, C = pb_model_cfg(F->m)->hidden;
    int32_t *pred = pb_xmalloc(sizeof(int32_t) * (size_t)n);
    float *x = pb_xmalloc(sizeof(float) * (size_t)n);
    int *idx = pb_xmalloc(sizeof(int) * (size_t)F->st.cap);
    for (int s0 = 0; s0 < n; s0 += F->st.cap) {
        int B = PB_MIN(F->st.cap, n - s0);
        for (int i = 0; i < B; i++) idx[i] = s0 + i;
        const float *logits;
        if (F->cached) {
            logits = pb_model_head_forward(F->m, F->feat[k] + (size_t)s0 * C, B, 0, 0);
        } else {
            pb_batch b;
            pb_stage_batch(&F->st, sp, idx, B, NULL, 1, &b);
            logits = pb_model_forward(F->m, &b, 0, 0);
        }
        if (V == 1) pb_download(e, x + s0, logits, (size_t)B);
        else pb_argmax_rows(e, pred + s0, logits, B, V);
    }
    double r = V == 1 ? pb_metric_by_name(t->metric, NULL, NULL, x, sp->targets, n)
                      : pb_metric_by_name(t->metric, pred, sp->labels, NULL, NULL, n);
    free(pred);
    free(x);
    free(idx);
    return r;
}

// Features of every example of the three splits, once (eval mode: no dropout).
static void cache_features(pb_fit *F) {
    pb_engine *e = pb_model_engine(F->m);
    int C = pb_model_cfg(F->m)->hidden;
    int *idx = pb_xmalloc(sizeof(int) * (size_t)F->st.cap);
    for (int k = 0; k < 3; k++) {
        const pb_split *sp = pb_split_of(F->t, k);
        F->feat[k] = pb_alloc(e, (size_t)sp->n * C + 1);
        for (int s0 = 0; s0 < sp->n; s0 += F->st.cap) {
            int B = PB_MIN(F->st.cap, sp->n - s0);
            for (int i = 0; i < B; i++) idx[i] = s0 + i;
            pb_batch b;
            pb_stage_batch(&F->st, sp, idx, B, NULL, 1, &b);
            const float *f = pb_model_features(F->m, &b, 0, 0);
            pb_copy(e, F->feat[k] + (size_t)s0 * C, f, (size_t)B * C);
        }
    }
    free(idx);
}

// ----------------------------------------------------------------------------
// Epochs

pb_status pb_fit_run(pb_fit *F, pb_epoch_metrics **eps, int *neps, int eval_val, pb_epoch_cb cb, void *user,
                     FILE *log, char *reason, size_t rlen) {
    pb_model *m = F->m;
    pb_engine *e = pb_model_engine(m);
    const pb_recipe *rc = &F->rc;
    int C = pb_model_cfg(m)->hidden;
    int B0 = rc->batch < F->ntrain ? rc->batch : F->ntrain;
    int steps_per_epoch = (F->ntrain + B0 - 1) / B0;
    pb_loop L;
    pb_loop_init(&L, m, rc, steps_per_epoch * rc->epochs);
    if (pb_loop_set_method(&L, F->method, reason, rlen) != PB_OK) {
        pb_loop_free(&L);
        return PB_ERR_ARG;
    }
    int *perm = pb_xmalloc(sizeof(int) * (size_t)F->ntrain);
    int *idx = pb_xmalloc(sizeof(int) * (size_t)B0);
    uint8_t *flip = pb_xcalloc((size_t)B0, 1);
    float *fbatch = F->cached ? pb_alloc(e, (size_t)B0 * C) : NULL;
    pb_rng rng;
    pb_rng_seed(&rng, pb_hash_mix(F->seed, 0x5348554646ULL)); // "SHUFF"
    double t_start = pb_now();
    pb_status status = PB_OK;
    for (int ep = 1; ep <= rc->epochs && status == PB_OK; ep++) {
        memcpy(perm, F->train_idx, sizeof(int) * (size_t)F->ntrain);
        shuffle(perm, F->ntrain, &rng);
        double t0 = pb_now(), loss_sum = 0;
        int nsteps = 0;
        for (int s0 = 0; s0 < F->ntrain; s0 += B0) {
            int B = PB_MIN(B0, F->ntrain - s0);
            memcpy(idx, perm + s0, sizeof(int) * (size_t)B);
            uint64_t sseed = pb_hash_mix(F->seed, (uint64_t)L.step + 1);
            pb_batch b;
            if (F->cached) {
                for (int i = 0; i < B; i++) pb_copy(e, fbatch + (size_t)i * C, F->feat[0] + (size_t)idx[i] * C, (size_t)C);
                pb_stage_batch(&F->st, &F->t->train, idx, B, NULL, 0, &b);
            } else {
                if (rc->flip)
                    for (int i = 0; i < B; i++) flip[i] = (uint8_t)(pb_rng_u64(&rng) >> 63);
                pb_stage_batch(&F->st, &F->t->train, idx, B, rc->flip ? flip : NULL, 1, &b);
            }
            float loss = pb_loop_step(&L, &b, F->cached ? fbatch : NULL, 1, sseed);
            if (!isfinite(loss)) {
                status = pb_errf(PB_ERR_NUMERIC, reason, rlen, "diverged at epoch %d step %d (loss %g)", ep,
                                 L.step + 1, (double)loss);
                loss_sum = NAN;
                nsteps = 1;
                break;
            }
            loss_sum += loss;
            nsteps++;
            F->train_examples += B;
        }
        pb_sync(e);
        F->train_time += pb_now() - t0;
        *eps = pb_xrealloc(*eps, sizeof(pb_epoch_metrics) * (size_t)(*neps + 1));
        pb_epoch_metrics *em = &(*eps)[(*neps)++];
        em->epoch = ep;
        em->train_loss = nsteps ? loss_sum / nsteps : NAN;
        em->lr = L.lr;
        if (status == PB_OK) {
            em->val = eval_val ? pb_fit_evaluate(F, 1) : NAN;
            em->test = pb_fit_evaluate(F, 2);
        } else {
            em->val = em->test = NAN;
        }
        em->time_s = pb_now() - t_start;
        if (log)
            fprintf(log, "epoch %d: %d steps, loss %.6f, val %.4f, test %.4f, lr %.3g, %.2fs\n", ep, nsteps,
                    em->train_loss, em->val, em->test, (double)L.lr, em->time_s);
        if (cb) cb(user, em, rc->epochs);
    }
    pb_free(e, fbatch);
    free(flip);
    free(idx);
    free(perm);
    pb_loop_free(&L);
    return status;
}

// ----------------------------------------------------------------------------
// Setup

void pb_fit_init(pb_fit *F, pb_model *m, const pb_task *t, const pb_recipe *rc, uint64_t seed, int cached) {
    memset(F, 0, sizeof(*F));
    F->m = m;
    F->t = t;
    F->rc = *rc;
    F->seed = seed;
    F->cached = cached;
    int n = t->train.n;
    F->train_idx = pb_xmalloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) F->train_idx[i] = i;
    if (rc->train_subset > 0 && rc->train_subset < n) {
        // A fixed subset (independent of the cell seed, so seeds differ only in training noise),
        // kept in index order.
        pb_rng r;
        pb_rng_seed(&r, 0x53554253ULL); // "SUBS"
        shuffle(F->train_idx, n, &r);
        n = rc->train_subset;
        char *keep = pb_xcalloc((size_t)t->train.n, 1);
        for (int i = 0; i < n; i++) keep[F->train_idx[i]] = 1;
        int k = 0;
        for (int i = 0; i < t->train.n; i++)
            if (keep[i]) F->train_idx[k++] = i;
        free(keep);
    }
    F->ntrain = n;
    int cap = PB_MAX(rc->batch, rc->eval_batch);
    pb_stager_init(&F->st, pb_model_engine(m), t, cap);
    if (cached) {
        double t0 = pb_now();
        cache_features(F);
        F->train_time += pb_now() - t0;
        F->train_examples += n; // one backbone forward per training example
    }
}

void pb_fit_free(pb_fit *F) {
    pb_engine *e = pb_model_engine(F->m);
    for (int k = 0; k < 3; k++) pb_free(e, F->feat[k]);
    pb_stager_free(&F->st);
    free(F->train_idx);
    memset(F, 0, sizeof(*F));
}

