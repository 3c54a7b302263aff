// train.c: cell training on the shared engine (model + method + task + AdamW loop + evaluation)
// and the pretraining stage with its backbone cache.
//
// One cell: resolve the model (built-in, checkpoint dir, inline config, or a cached/pretrained
// backbone), apply the method, load the task at the model's input size, then `epochs` passes of
// shuffled mini-batches with AdamW and the LR schedule, evaluating val and test after every epoch.
// Head-only cells without random augmentation train on cached features (one backbone forward per
// example for the whole run).
#include "train.h"
#include "jsonutil.h"
#include "suite.h"
#include "../methods/adapter.h"
#include "../datasets/dataset.h"
#include "../datasets/metrics.h"
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>

// Bumped when the pretraining algorithm changes, so old cached backbones are not reused.
#define PB_PRETRAIN_VERSION "pretrain/1"

// ----------------------------------------------------------------------------
// Resolved recipe

typedef struct {
    int epochs, batch, eval_batch, warmup_steps, train_subset, flip, feature_cache;
    double lr, head_lr, beta1, beta2, eps, weight_decay, warmup_ratio, label_smoothing, max_grad_norm;
    pb_sched_kind sched;
} recipe;

static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
static const char *jstr(const cJSON *o, const char *k, const char *def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : def;
}
// Copies o[k] into dst when it is a string (dst keeps its value otherwise).
static void jcopy(const cJSON *o, const char *k, char *dst, size_t n) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    if (cJSON_IsString(v)) snprintf(dst, n, "%s", v->valuestring);
}
static int jbool(const cJSON *o, const char *k, int def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

// The suite parser filled every key (suite.c recipe_defaults); the defaults here only matter for
// the pretraining block, which carries a subset.
static void recipe_read(const cJSON *j, recipe *rc) {
    memset(rc, 0, sizeof(*rc));
    rc->epochs = (int)jnum(j, "epochs", 1);
    rc->batch = (int)jnum(j, "batch", 32);
    rc->eval_batch = (int)jnum(j, "eval_batch", 256);
    double scale = jnum(j, "lr_scale", 1);
    rc->lr = jnum(j, "lr", 1e-3) * scale;
    const cJSON *hl = cJSON_GetObjectItemCaseSensitive(j, "head_lr");
    rc->head_lr = cJSON_IsNumber(hl) ? hl->valuedouble : rc->lr;
    rc->beta1 = jnum(j, "beta1", 0.9);
    rc->beta2 = jnum(j, "beta2", 0.999);
    rc->eps = jnum(j, "eps", 1e-8);
    rc->weight_decay = jnum(j, "weight_decay", 0);
    rc->warmup_steps = (int)jnum(j, "warmup_steps", 0);
    rc->warmup_ratio = jnum(j, "warmup_ratio", 0);
    rc->label_smoothing = jnum(j, "label_smoothing", 0);
    rc->max_grad_norm = jnum(j, "max_grad_norm", 0);
    rc->train_subset = (int)jnum(j, "train_subset", 0);
    rc->flip = jbool(j, "flip", 0);
    rc->feature_cache = jbool(j, "feature_cache", 1);
    const char *s = jstr(j, "schedule", "linear");
    rc->sched = !strcmp(s, "constant") ? PB_SCHED_CONSTANT : !strcmp(s, "cosine") ? PB_SCHED_COSINE : PB_SCHED_LINEAR;
}

// ----------------------------------------------------------------------------
// Model config from the resolved model spec


// ----------------------------------------------------------------------------
// Tasks

static pb_status task_load(const cJSON *ds, const pb_model_config *cfg, pb_task *t, char *err, size_t errlen) {
    pb_task_opts o;
    pb_task_opts_default(&o);
    if (cfg->arch == PB_ARCH_VIT) {
        o.image_size = cfg->image_size;
        o.channels = cfg->channels;
    }
    o.image_size = (int)jnum(ds, "image_size", o.image_size);
    o.channels = (int)jnum(ds, "channels", o.channels);
    o.seq_len = (int)jnum(ds, "seq_len", o.seq_len);
    if (cfg->arch == PB_ARCH_ROBERTA && o.seq_len > cfg->max_positions - cfg->pad_id - 1)
        o.seq_len = cfg->max_positions - cfg->pad_id - 1;
    jcopy(ds, "resize", o.resize, sizeof(o.resize));
    jcopy(ds, "norm", o.norm, sizeof(o.norm));
    jcopy(ds, "tokenizer_dir", o.tokenizer_dir, sizeof(o.tokenizer_dir));
    jcopy(ds, "split_protocol", o.split_protocol, sizeof(o.split_protocol));
    jcopy(ds, "data_root", o.data_root, sizeof(o.data_root));
    pb_status st = pb_task_load(jstr(ds, "spec", ""), &o, t, err, errlen);
    if (st) return st;
    if (t->kind == PB_DATA_IMAGE && cfg->arch != PB_ARCH_VIT)
        return pb_errf(PB_ERR_ARG, err, errlen, "dataset %s: an image task needs a ViT model", t->name);
    if (t->kind == PB_DATA_TEXT && cfg->arch != PB_ARCH_ROBERTA)
        return pb_errf(PB_ERR_ARG, err, errlen, "dataset %s: a text task needs a RoBERTa model", t->name);
    if (t->kind == PB_DATA_IMAGE &&
        (t->height != cfg->image_size || t->width != cfg->image_size || t->channels != cfg->channels))
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "dataset %s: images are %dx%dx%d but the model takes %dx%dx%d (set image_size/channels)",
                       t->name, t->channels, t->height, t->width, cfg->channels, cfg->image_size, cfg->image_size);
    if (t->train.n < 1 || t->val.n < 1 || t->test.n < 1)
        return pb_errf(PB_ERR_ARG, err, errlen, "dataset %s: empty split (train %d, val %d, test %d)", t->name,
                       t->train.n, t->val.n, t->test.n);
    return PB_OK;
}

// Host staging and engine buffers for one batch of up to cap examples.
typedef struct {
    pb_engine *e;
    const pb_task *t;
    int cap;
    size_t px_per;   // floats per image (C*H*W) or 0
    int T;           // text sequence length or 0
    float *h_px, *h_tg;
    int32_t *h_ids, *h_mask, *h_lab;
    uint8_t *h_flip;
    float *d_px, *d_tg;
    int32_t *d_ids, *d_mask, *d_lab;
} stager;

static void stager_init(stager *s, pb_engine *e, const pb_task *t, int cap) {
    memset(s, 0, sizeof(*s));
    s->e = e;
    s->t = t;
    s->cap = cap;
    if (t->kind == PB_DATA_IMAGE) {
        s->px_per = (size_t)t->channels * t->height * t->width;
        s->h_px = pb_xmalloc(sizeof(float) * s->px_per * (size_t)cap);
        s->d_px = pb_alloc(e, s->px_per * (size_t)cap);
        s->h_flip = pb_xcalloc((size_t)cap, 1);
    } else {
        s->T = t->seq_len;
        s->h_ids = pb_xmalloc(sizeof(int32_t) * (size_t)s->T * (size_t)cap);
        s->h_mask = pb_xmalloc(sizeof(int32_t) * (size_t)s->T * (size_t)cap);
        s->d_ids = pb_alloc_i32(e, (size_t)s->T * (size_t)cap);
        s->d_mask = pb_alloc_i32(e, (size_t)s->T * (size_t)cap);
    }
    s->h_lab = pb_xmalloc(sizeof(int32_t) * (size_t)cap);
    s->h_tg = pb_xmalloc(sizeof(float) * (size_t)cap);
    s->d_lab = pb_alloc_i32(e, (size_t)cap);
    s->d_tg = pb_alloc(e, (size_t)cap);
}

static void stager_free(stager *s) {
    free(s->h_px);
    free(s->h_tg);
    free(s->h_ids);
    free(s->h_mask);
    free(s->h_lab);
    free(s->h_flip);
    pb_free(s->e, s->d_px);
    pb_free(s->e, s->d_tg);
    pb_free(s->e, s->d_ids);
    pb_free(s->e, s->d_mask);
    pb_free(s->e, s->d_lab);
    memset(s, 0, sizeof(*s));
}

// Fills b with examples idx[0..B) of split sp (inputs only when inputs != 0). flip: per-example
// horizontal flips or NULL.
static void stage(stager *s, const pb_split *sp, const int *idx, int B, const uint8_t *flip, int inputs,
                  pb_batch *b) {
    PB_CHECK(B <= s->cap, "batch %d > stager capacity %d", B, s->cap);
    memset(b, 0, sizeof(*b));
    b->B = B;
    if (inputs) {
        if (s->t->kind == PB_DATA_IMAGE) {
            pb_split_batch_images(s->t, sp, idx, B, flip, s->h_px);
            pb_upload(s->e, s->d_px, s->h_px, s->px_per * (size_t)B);
            b->pixels = s->d_px;
        } else {
            size_t T = (size_t)s->T;
            for (int i = 0; i < B; i++) {
                memcpy(s->h_ids + (size_t)i * T, sp->ids + (size_t)idx[i] * T, T * sizeof(int32_t));
                memcpy(s->h_mask + (size_t)i * T, sp->mask + (size_t)idx[i] * T, T * sizeof(int32_t));
            }
            pb_upload_i32(s->e, s->d_ids, s->h_ids, T * (size_t)B);
            pb_upload_i32(s->e, s->d_mask, s->h_mask, T * (size_t)B);
            b->ids = s->d_ids;
            b->mask = s->d_mask;
            b->T = s->T;
        }
    }
    if (sp->labels) {
        for (int i = 0; i < B; i++) s->h_lab[i] = sp->labels[idx[i]];
        pb_upload_i32(s->e, s->d_lab, s->h_lab, (size_t)B);
        b->labels = s->d_lab;
    }
    if (sp->targets) {
        for (int i = 0; i < B; i++) s->h_tg[i] = sp->targets[idx[i]];
        pb_upload(s->e, s->d_tg, s->h_tg, (size_t)B);
        b->targets = s->d_tg;
    }
}

// ----------------------------------------------------------------------------
// The training loop (shared by cells and the pretraining stage)

typedef struct {
    pb_model *m;
    const pb_task *t;
    recipe rc;
    uint64_t seed;
    int cached;              // head-only on cached features
    float *feat[3];          // cached features (n, hidden) of train/val/test (engine memory)
    int *train_idx;          // the training examples (subset or all)
    int ntrain;
    stager st;
    double train_time;       // seconds spent in training steps (and feature extraction)
    long long train_examples;
} loop;

static const pb_split *split_of(const pb_task *t, int k) { return k == 0 ? &t->train : k == 1 ? &t->val : &t->test; }

// Deterministic Fisher-Yates shuffle of a[0..n).
static void shuffle(int *a, int n, pb_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)pb_rng_below(r, (uint32_t)(i + 1));
        int tmp = a[i];
        a[i] = a[j];
        a[j] = tmp;
    }
}

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t h = PB_HASH_INIT;
    h = pb_hash64(h, &a, sizeof(a));
    return pb_hash64(h, &b, sizeof(b));
}

// Metric of the model on split k (eval mode).
static double evaluate(loop *L, int k) {
    const pb_task *t = L->t;
    const pb_split *sp = split_of(t, k);
    pb_engine *e = pb_model_engine(L->m);
    int n = sp->n, V = pb_model_cfg(L->m)->num_labels, C = pb_model_cfg(L->m)->hidden;
    int32_t *pred = pb_xmalloc(sizeof(int32_t) * (size_t)n);
    float *x = pb_xmalloc(sizeof(float) * (size_t)n);
    int *idx = pb_xmalloc(sizeof(int) * (size_t)L->st.cap);
    for (int s0 = 0; s0 < n; s0 += L->st.cap) {
        int B = PB_MIN(L->st.cap, n - s0);
        for (int i = 0; i < B; i++) idx[i] = s0 + i;
        const float *logits;
        if (L->cached) {
            logits = pb_model_head_forward(L->m, L->feat[k] + (size_t)s0 * C, B, 0, 0);
        } else {
            pb_batch b;
            stage(&L->st, sp, idx, B, NULL, 1, &b);
            logits = pb_model_forward(L->m, &b, 0, 0);
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
static void cache_features(loop *L) {
    pb_engine *e = pb_model_engine(L->m);
    int C = pb_model_cfg(L->m)->hidden;
    int *idx = pb_xmalloc(sizeof(int) * (size_t)L->st.cap);
    for (int k = 0; k < 3; k++) {
        const pb_split *sp = split_of(L->t, k);
        L->feat[k] = pb_alloc(e, (size_t)sp->n * C + 1);
        for (int s0 = 0; s0 < sp->n; s0 += L->st.cap) {
            int B = PB_MIN(L->st.cap, sp->n - s0);
            for (int i = 0; i < B; i++) idx[i] = s0 + i;
            pb_batch b;
            stage(&L->st, sp, idx, B, NULL, 1, &b);
            const float *f = pb_model_features(L->m, &b, 0, 0);
            pb_copy(e, L->feat[k] + (size_t)s0 * C, f, (size_t)B * C);
        }
    }
    free(idx);
}

// Scales all grads so their global L2 norm is at most maxn (torch clip_grad_norm_).
static void clip_grads(pb_engine *e, pb_param **ps, int n, double maxn) {
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (ps[i]->grad) ss += pb_sumsq(e, ps[i]->grad, ps[i]->numel);
    double norm = sqrt(ss);
    if (!(norm > maxn)) return;
    float c = (float)(maxn / (norm + 1e-6));
    for (int i = 0; i < n; i++)
        if (ps[i]->grad) pb_scale(e, ps[i]->grad, ps[i]->grad, c, ps[i]->numel);
}

typedef void (*epoch_cb)(void *user, const pb_epoch_metrics *m, int epochs);

// Runs the epochs; appends one pb_epoch_metrics per epoch to *eps (grown). Returns PB_OK, or
// PB_ERR_NUMERIC with reason on a non-finite loss (the epoch is recorded with a NaN loss).
static pb_status run_epochs(loop *L, pb_epoch_metrics **eps, int *neps, int eval_val, epoch_cb cb, void *user,
                            FILE *log, char *reason, size_t rlen) {
    pb_model *m = L->m;
    pb_engine *e = pb_model_engine(m);
    const recipe *rc = &L->rc;
    int C = pb_model_cfg(m)->hidden;
    int B0 = rc->batch < L->ntrain ? rc->batch : L->ntrain;
    int steps_per_epoch = (L->ntrain + B0 - 1) / B0;
    int total = steps_per_epoch * rc->epochs;
    int warmup = rc->warmup_steps > 0 ? rc->warmup_steps : (int)ceil(rc->warmup_ratio * total);
    int ntr = 0;
    pb_param **tr = pb_model_trainable(m, &ntr);
    // Head params get head_lr; everything else the (scaled) lr.
    pb_param **head = pb_xmalloc(sizeof(pb_param *) * (size_t)(ntr + 1));
    pb_param **rest = pb_xmalloc(sizeof(pb_param *) * (size_t)(ntr + 1));
    int nh = 0, nr = 0;
    for (int i = 0; i < ntr; i++) {
        if (tr[i]->group == PB_GROUP_HEAD) head[nh++] = tr[i];
        else rest[nr++] = tr[i];
    }
    int *perm = pb_xmalloc(sizeof(int) * (size_t)L->ntrain);
    int *idx = pb_xmalloc(sizeof(int) * (size_t)B0);
    uint8_t *flip = pb_xcalloc((size_t)B0, 1);
    float *fbatch = L->cached ? pb_alloc(e, (size_t)B0 * C) : NULL;
    pb_rng rng;
    pb_rng_seed(&rng, mix(L->seed, 0x5348554646ULL)); // "SHUFF"
    double t_start = pb_now();
    int step = 0;
    pb_status status = PB_OK;
    for (int ep = 1; ep <= rc->epochs && status == PB_OK; ep++) {
        memcpy(perm, L->train_idx, sizeof(int) * (size_t)L->ntrain);
        shuffle(perm, L->ntrain, &rng);
        double t0 = pb_now(), loss_sum = 0;
        int nsteps = 0;
        float lr = 0;
        for (int s0 = 0; s0 < L->ntrain; s0 += B0, step++) {
            int B = PB_MIN(B0, L->ntrain - s0);
            memcpy(idx, perm + s0, sizeof(int) * (size_t)B);
            uint64_t sseed = mix(L->seed, (uint64_t)step + 1);
            pb_batch b;
            float loss;
            if (L->cached) {
                for (int i = 0; i < B; i++) pb_copy(e, fbatch + (size_t)i * C, L->feat[0] + (size_t)idx[i] * C, (size_t)C);
                stage(&L->st, &L->t->train, idx, B, NULL, 0, &b);
                pb_model_head_forward(m, fbatch, B, 1, sseed);
                loss = pb_model_head_loss(m, &b, (float)rc->label_smoothing);
            } else {
                if (rc->flip)
                    for (int i = 0; i < B; i++) flip[i] = (uint8_t)(pb_rng_u64(&rng) >> 63);
                stage(&L->st, &L->t->train, idx, B, rc->flip ? flip : NULL, 1, &b);
                pb_model_forward(m, &b, 1, sseed);
                loss = pb_model_loss(m, &b, (float)rc->label_smoothing);
            }
            if (!isfinite(loss)) {
                status = pb_errf(PB_ERR_NUMERIC, reason, rlen, "diverged at epoch %d step %d (loss %g)", ep,
                                 step + 1, (double)loss);
                loss_sum = NAN;
                nsteps = 1;
                break;
            }
            pb_params_zero_grad(e, tr, ntr);
            if (L->cached) pb_model_head_backward(m, &b);
            else pb_model_backward(m, &b);
            if (rc->max_grad_norm > 0) clip_grads(e, tr, ntr, rc->max_grad_norm);
            lr = pb_lr_at(rc->sched, (float)rc->lr, step, warmup, total);
            float hlr = pb_lr_at(rc->sched, (float)rc->head_lr, step, warmup, total);
            pb_adamw_config ac = {lr, (float)rc->beta1, (float)rc->beta2, (float)rc->eps, (float)rc->weight_decay};
            pb_params_adamw_step(e, rest, nr, &ac, step + 1);
            ac.lr = hlr;
            pb_params_adamw_step(e, head, nh, &ac, step + 1);
            loss_sum += loss;
            nsteps++;
            L->train_examples += B;
        }
        pb_sync(e);
        L->train_time += pb_now() - t0;
        *eps = pb_xrealloc(*eps, sizeof(pb_epoch_metrics) * (size_t)(*neps + 1));
        pb_epoch_metrics *em = &(*eps)[(*neps)++];
        em->epoch = ep;
        em->train_loss = nsteps ? loss_sum / nsteps : NAN;
        em->lr = lr;
        if (status == PB_OK) {
            em->val = eval_val ? evaluate(L, 1) : NAN;
            em->test = evaluate(L, 2);
        } else {
            em->val = em->test = NAN;
        }
        em->time_s = pb_now() - t_start;
        if (log)
            fprintf(log, "epoch %d: %d steps, loss %.6f, val %.4f, test %.4f, lr %.3g, %.2fs\n", ep, nsteps,
                    em->train_loss, em->val, em->test, (double)lr, em->time_s);
        if (cb) cb(user, em, rc->epochs);
    }
    pb_free(e, fbatch);
    free(flip);
    free(idx);
    free(perm);
    free(head);
    free(rest);
    return status;
}

// Sets up L for model m on task t (training subset, staging buffers, feature cache if asked).
static void loop_init(loop *L, pb_model *m, const pb_task *t, const recipe *rc, uint64_t seed, int cached) {
    memset(L, 0, sizeof(*L));
    L->m = m;
    L->t = t;
    L->rc = *rc;
    L->seed = seed;
    L->cached = cached;
    int n = t->train.n;
    L->train_idx = pb_xmalloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) L->train_idx[i] = i;
    if (rc->train_subset > 0 && rc->train_subset < n) {
        // A fixed subset (independent of the cell seed, so seeds differ only in training noise),
        // kept in index order.
        pb_rng r;
        pb_rng_seed(&r, 0x53554253ULL); // "SUBS"
        shuffle(L->train_idx, n, &r);
        n = rc->train_subset;
        char *keep = pb_xcalloc((size_t)t->train.n, 1);
        for (int i = 0; i < n; i++) keep[L->train_idx[i]] = 1;
        int k = 0;
        for (int i = 0; i < t->train.n; i++)
            if (keep[i]) L->train_idx[k++] = i;
        free(keep);
    }
    L->ntrain = n;
    int cap = PB_MAX(rc->batch, rc->eval_batch);
    stager_init(&L->st, pb_model_engine(m), t, cap);
    if (cached) {
        double t0 = pb_now();
        cache_features(L);
        L->train_time += pb_now() - t0;
        L->train_examples += n; // one backbone forward per training example
    }
}

static void loop_free(loop *L) {
    pb_engine *e = pb_model_engine(L->m);
    for (int k = 0; k < 3; k++) pb_free(e, L->feat[k]);
    stager_free(&L->st);
    free(L->train_idx);
    memset(L, 0, sizeof(*L));
}

// ----------------------------------------------------------------------------
// Pretraining stage and backbone cache

static int dir_has_model(const char *dir) {
    char p[1400];
    snprintf(p, sizeof(p), "%s/config.json", dir);
    if (!pb_file_exists(p)) return 0;
    snprintf(p, sizeof(p), "%s/model.safetensors", dir);
    return pb_file_exists(p);
}

// FNV-1a 64 of config.json then model.safetensors (their bytes, each with its name): the
// content hash a cached backbone carries in pretrain.json. Returns 0, -1 if a file is unreadable.
static int backbone_hash(const char *dir, char hex[17]) {
    const char *files[2] = {"config.json", "model.safetensors"};
    uint64_t h = PB_HASH_INIT;
    for (int i = 0; i < 2; i++) {
        char p[1400];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        uint8_t *buf = NULL;
        size_t n = 0;
        if (pb_read_file(p, &buf, &n, NULL, 0) != PB_OK) return -1;
        h = pb_hash_str(h, files[i]);
        h = pb_hash64(h, buf, n);
        free(buf);
    }
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
    return 0;
}

// 1 if the cached backbone in dir matches the content hash its pretrain.json records.
static int backbone_intact(const char *dir) {
    char p[1400], want[17] = "", got[17];
    snprintf(p, sizeof(p), "%s/pretrain.json", dir);
    cJSON *info = NULL;
    if (pb_json_read_file(p, &info, NULL, 0) != PB_OK) return 0;
    const char *h = jstr(info, "content_hash", "");
    snprintf(want, sizeof want, "%s", h);
    cJSON_Delete(info);
    return want[0] && !backbone_hash(dir, got) && !strcmp(got, want);
}

static void rm_tree_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[1400];
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

// Removes <cache_root>/<key>.tmp.<pid> directories whose writer is gone (killed mid-pretraining).
static void clean_stale_backbones(const char *root) {
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *de;
    char p[1400];
    while ((de = readdir(d))) {
        const char *t = strstr(de->d_name, ".tmp.");
        if (!t) continue;
        long pid = strtol(t + 5, NULL, 10);
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;
        snprintf(p, sizeof(p), "%s/%s", root, de->d_name);
        rm_tree_flat(p);
    }
    closedir(d);
}

// The cache key of a pretrained backbone: everything that determines its weights.
void pb_backbone_key(const cJSON *model, char out[17]) {
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "version", PB_PRETRAIN_VERSION);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(model, "builtin");
    if (b) cJSON_AddItemToObject(k, "builtin", cJSON_Duplicate(b, 1));
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(model, "config");
    if (c) cJSON_AddItemToObject(k, "config", cJSON_Duplicate(c, 1));
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(model, "pretrain");
    if (p) cJSON_AddItemToObject(k, "pretrain", cJSON_Duplicate(p, 1));
    pb_json_hash_hex(k, out);
    cJSON_Delete(k);
}

typedef struct {
    FILE *log;
    const char *label;
} pre_user;

static void pre_on_epoch(void *user, const pb_epoch_metrics *m, int epochs) {
    pre_user *u = user;
    char val[32] = "-"; // the pretraining task may have no validation split
    if (isfinite(m->val)) snprintf(val, sizeof val, "%.2f", 100 * m->val);
    fprintf(stderr, "[pretrain] %s: epoch %d/%d loss %.4f val %s test %.2f (%.0fs)\n", u->label, m->epoch, epochs,
            m->train_loss, val, 100 * m->test, m->time_s);
}

// Pretrains the backbone of a `pretrain` model spec (full fine-tuning on the pretraining task)
// and stores it in dir atomically (temp dir + rename). Another process finishing first is fine.
static pb_status pretrain(pb_engine *e, const cJSON *model, const pb_model_config *cfg0, const char *dir,
                          pb_train_ctx *ctx, char *err, size_t errlen) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(model, "pretrain");
    recipe rc;
    recipe_read(p, &rc);
    rc.eval_batch = 256;
    rc.head_lr = rc.lr;
    rc.feature_cache = 0;
    pb_model_config cfg = *cfg0;
    cJSON *ds = cJSON_CreateObject();
    cJSON_AddStringToObject(ds, "spec", jstr(p, "dataset", ""));
    pb_task t;
    memset(&t, 0, sizeof(t));
    pb_status st = task_load(ds, &cfg, &t, err, errlen);
    cJSON_Delete(ds);
    if (st) {
        pb_task_free(&t);
        return st;
    }
    cfg.num_labels = t.num_classes;
    uint64_t seed = (uint64_t)jnum(p, "seed", 0);
    pb_model *m = pb_model_create(e, &cfg, seed);
    pb_method_config mc;
    if ((st = pb_method_config_init(&mc, "full", seed, err, errlen)) || (st = pb_method_apply(m, &mc, err, errlen))) {
        pb_model_free(m);
        pb_task_free(&t);
        return st;
    }
    const char *label = jstr(model, "label", "model");
    fprintf(stderr, "[pretrain] %s on %s: %d epochs, %d examples -> %s\n", label, t.name, rc.epochs,
            rc.train_subset > 0 && rc.train_subset < t.train.n ? rc.train_subset : t.train.n, dir);
    fprintf(ctx->log, "pretraining %s on %s -> %s\n", label, t.name, dir);
    loop L;
    loop_init(&L, m, &t, &rc, seed, 0);
    pb_epoch_metrics *eps = NULL;
    int neps = 0;
    pre_user u = {ctx->log, label};
    char reason[256] = "";
    // Pretraining skips the per-epoch validation pass (the test split is the progress signal).
    st = run_epochs(&L, &eps, &neps, 0, pre_on_epoch, &u, ctx->log, reason, sizeof(reason));
    double ttime = L.train_time;
    loop_free(&L);
    if (st) {
        pb_errf(st, err, errlen, "pretraining %s: %s", label, reason);
    } else {
        char tmp[1400];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dir, (long)getpid());
        rm_tree_flat(tmp);
        st = pb_model_save(m, tmp, err, errlen);
        if (!st) {
            cJSON *info = cJSON_CreateObject();
            cJSON_AddStringToObject(info, "schema", "peftbench.backbone/1");
            cJSON_AddItemToObject(info, "model", cJSON_Duplicate(model, 1));
            cJSON_AddStringToObject(info, "dataset", t.name);
            cJSON_AddStringToObject(info, "data_hash", t.data_hash);
            cJSON_AddStringToObject(info, "backend", pb_engine_describe(e));
            cJSON_AddNumberToObject(info, "train_time_s", ttime);
            char ch[17];
            if (backbone_hash(tmp, ch)) st = pb_errf(PB_ERR_IO, err, errlen, "%s: cannot read back the saved backbone", tmp);
            else cJSON_AddStringToObject(info, "content_hash", ch);
            cJSON *ea = cJSON_AddArrayToObject(info, "epochs");
            for (int i = 0; i < neps; i++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "epoch", eps[i].epoch);
                cJSON_AddNumberToObject(o, "train_loss", eps[i].train_loss);
                cJSON_AddNumberToObject(o, "test", eps[i].test);
                cJSON_AddItemToArray(ea, o);
            }
            char ip[1500];
            snprintf(ip, sizeof(ip), "%s/pretrain.json", tmp);
            st = pb_json_write_atomic(ip, info, err, errlen);
            cJSON_Delete(info);
        }
        if (!st && rename(tmp, dir) != 0) {
            if (dir_has_model(dir)) { // another process won the race: use its (identical) backbone
                rm_tree_flat(tmp);
            } else {
                st = pb_errf(PB_ERR_IO, err, errlen, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
            }
        }
        if (st) rm_tree_flat(tmp);
        fprintf(ctx->log, "pretraining done in %.1fs (test %.4f)\n", ttime, neps ? eps[neps - 1].test : NAN);
    }
    free(eps);
    pb_model_free(m);
    pb_task_free(&t);
    return st;
}

// Re-initialises the classification head from seed (HF-style: normal(0, initializer_range)
// weights, zero biases), so a downstream cell never starts from the pretraining head.
static void head_reinit(pb_model *m, uint64_t seed) {
    pb_engine *e = pb_model_engine(m);
    float std = pb_model_cfg(m)->initializer_range;
    int n = 0;
    pb_param **ps = pb_model_params(m, &n);
    pb_rng r;
    pb_rng_seed(&r, mix(seed, 0x48454144ULL)); // "HEAD"
    for (int i = 0; i < n; i++) {
        if (ps[i]->group != PB_GROUP_HEAD) continue;
        float *h = pb_xmalloc(sizeof(float) * ps[i]->numel);
        for (size_t j = 0; j < ps[i]->numel; j++) h[j] = ps[i]->ndim >= 2 ? std * pb_rng_normal(&r) : 0.0f;
        pb_upload(e, ps[i]->data, h, ps[i]->numel);
        free(h);
    }
}

// The cell's model with num_labels outputs. Pretrain specs are pretrained (once, cached) first.
static pb_status model_obtain(pb_engine *e, const cJSON *model, int num_labels, uint64_t seed, pb_train_ctx *ctx,
                              pb_model **out, char *err, size_t errlen) {
    *out = NULL;
    const char *source = jstr(model, "source", "builtin");
    if (!strcmp(source, "dir")) return pb_model_load(e, jstr(model, "dir", ""), num_labels, seed, out, err, errlen);
    pb_model_config cfg;
    pb_status st = pb_model_config_from_spec(model, &cfg, err, errlen);
    if (st) return st;
    if (!strcmp(source, "pretrain")) {
        char key[17], dir[1200];
        pb_backbone_key(model, key);
        snprintf(dir, sizeof(dir), "%s/%s", ctx->cache_root ? ctx->cache_root : "data/cache/backbones", key);
        if (dir_has_model(dir) && !backbone_intact(dir)) {
            // edited, truncated or from before content hashes: never trained on, rebuilt
            fprintf(ctx->log, "backbone: %s does not match its content hash (edited, truncated or old): rebuilding\n",
                    dir);
            rm_tree_flat(dir);
        }
        if (!dir_has_model(dir)) {
            const char *root = ctx->cache_root ? ctx->cache_root : "data/cache/backbones";
            if ((st = pb_mkdirs(root, err, errlen))) return st;
            clean_stale_backbones(root);
            if ((st = pretrain(e, model, &cfg, dir, ctx, err, errlen))) return st;
        } else {
            fprintf(ctx->log, "backbone: cached %s\n", dir);
        }
        if ((st = pb_model_load(e, dir, num_labels, seed, out, err, errlen))) return st;
        head_reinit(*out, seed);
        return PB_OK;
    }
    cfg.num_labels = num_labels;
    *out = pb_model_create(e, &cfg, seed);
    return PB_OK;
}

// ----------------------------------------------------------------------------
// A cell

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
    uint64_t seed = (uint64_t)jnum(config, "seed", 0);
    recipe rc;
    recipe_read(cJSON_GetObjectItemCaseSensitive(config, "recipe"), &rc);

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
    if (!st) {
        if (!strcmp(jstr(model, "source", ""), "dir")) {
            char cp[1200];
            snprintf(cp, sizeof(cp), "%s/config.json", jstr(model, "dir", ""));
            st = pb_model_config_read(cp, &cfg, err, sizeof(err));
        } else {
            st = pb_model_config_from_spec(model, &cfg, err, sizeof(err));
        }
    }
    if (!st) st = task_load(ds, &cfg, &t, err, sizeof(err));
    if (!st) {
        snprintf(r->metric, sizeof(r->metric), "%s", t.metric);
        snprintf(r->data_hash, sizeof(r->data_hash), "%s", t.data_hash);
        fprintf(ctx->log, "task %s: %d classes, train %d val %d test %d, metric %s, data %s\n", t.name, t.num_classes,
                t.train.n, t.val.n, t.test.n, t.metric, t.data_hash);
        // Refuse before allocating what cannot fit: weights + activations now, optimizer state
        // once the method says what trains.
        cfg.num_labels = t.num_classes;
        int T = cell_tokens(&cfg, &t);
        int Bmax = rc.batch > rc.eval_batch ? rc.batch : rc.eval_batch; // eval forwards keep activations too
        st = pb_model_memory_check(&cfg, Bmax, T, 0, err, sizeof(err));
        if (!st) st = model_obtain(e, model, t.num_classes, seed, ctx, &m, err, sizeof(err));
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
        // Only the head trains (no site, backbone frozen): train it on cached features.
        int head_only = mc.desc->site == PB_SITE_NONE && !(mc.desc->unfreeze & PB_UNFREEZE_BACKBONE);
        int cached = head_only && rc.feature_cache && !rc.flip;
        fprintf(ctx->log, "method %s: trainable %lld (adapter %lld, backbone %lld, head %lld) of %lld%s\n", mc.desc->name,
                r->p_trainable, r->p_adapter, r->p_trainable_backbone, r->p_head, r->p_total,
                cached ? "; head on cached features" : "");
        loop L;
        loop_init(&L, m, &t, &rc, seed, cached);
        cell_user u = {ctx};
        r->status = run_epochs(&L, &r->epochs, &r->nepochs, 1, cell_on_epoch, &u, NULL, r->reason,
                               sizeof(r->reason));
        r->train_time_s = L.train_time;
        r->train_examples = L.train_examples;
        r->throughput = L.train_time > 0 ? (double)L.train_examples / L.train_time : 0;
        if (mc.desc->events)
            fprintf(ctx->log, "%s %s: %lld\n", mc.desc->name, mc.desc->events, (long long)pb_method_events(m));
        loop_free(&L);
    }
    r->peak_rss = pb_peak_rss();
    fprintf(ctx->log, "cell time %.1fs (train %.1fs, %.0f ex/s), peak RSS %.1f MB\n", pb_now() - t_cell,
            r->train_time_s, r->throughput, (double)r->peak_rss / 1048576.0);
    pb_model_free(m);
    pb_task_free(&t);
    pb_engine_free(e);
    return r->status;
}
