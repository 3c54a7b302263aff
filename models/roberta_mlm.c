// roberta_mlm.c: HF RobertaForMaskedLM on the engine ops (mlm.h). The head (RobertaLMHead,
// modeling_roberta.py) is x -> dense (C->C) -> gelu (erf) -> LayerNorm(eps) -> x W_word^T +
// lm_head.bias, with W_word the word embedding table (tied decoder). Only the rows that carry a
// label go through it during training: they are gathered from the last hidden state with the
// embedding-lookup op and their gradient is scattered back with its backward, so the loss is
// the mean over masked tokens without an ignore_index in the cross-entropy op.
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
// defines: pb_mlm_* (this file's interface)
#include "mlm.h"
// defines: struct pb_model, roberta_last_hidden, roberta_backward_tokens, model_ptr
#include "model_internal.h"
// defines: pb_st_open, pb_st_find, pb_st_read_f32, pb_st_writer_*
#include "safetensors.h"

enum { H_DENSE_W = 0, H_DENSE_B, H_LN_W, H_LN_B, H_BIAS, H_N };
static const char *const head_names[H_N] = {"lm_head.dense.weight", "lm_head.dense.bias",
                                             "lm_head.layer_norm.weight", "lm_head.layer_norm.bias",
                                             "lm_head.bias"};

struct pb_mlm_head {
    pb_model *m;
    pb_param params[H_N];
    pb_param *ptrs[H_N];
    // rows of the last forward and their buffers, sized for cap rows
    int cap, M, loss_done;
    int32_t *rows, *targets;            // (cap): token row in [0,B*T), its label
    float *x, *hd, *hg, *hn, *mean, *rstd; // (cap,C) gathered / dense / gelu / LN out; (cap)
    float *logits, *probs, *dlogits;    // (cap,V)
    float *dx, *dhd, *dhg, *dhn;        // (cap,C)
    float loss;
};

// ----------------------------------------------------------------------------
// Creation, buffers

// A head on m with its five tensors allocated (zeros), trainable; no row buffers yet. The
// caller owns it (pb_mlm_head_free).
static pb_mlm_head *head_alloc(pb_model *m) {
    PB_CHECK(m->cfg.arch == PB_ARCH_ROBERTA, "a masked-LM head needs a RoBERTa model");
    pb_mlm_head *h = pb_xcalloc(1, sizeof(*h));
    h->m = m;
    int64_t C = m->cfg.hidden, V = m->cfg.vocab_size;
    int64_t shapes[H_N][2] = {{C, C}, {C, 0}, {C, 0}, {C, 0}, {V, 0}};
    for (int i = 0; i < H_N; i++) {
        pb_param *p = &h->params[i];
        pb_param_init(m->e, p, head_names[i], i == H_DENSE_W ? 2 : 1, shapes[i], PB_GROUP_HEAD);
        p->no_decay = i != H_DENSE_W; // biases and the layernorm, as the model's own
        pb_param_set_trainable(m->e, p, 1);
        h->ptrs[i] = p;
    }
    return h;
}

pb_mlm_head *pb_mlm_head_create(pb_model *m, uint64_t seed) {
    pb_mlm_head *h = head_alloc(m);
    size_t C = (size_t)m->cfg.hidden;
    float *w = pb_xmalloc(C * C * sizeof(float));
    pb_rng r;
    pb_rng_seed(&r, model_site_seed(seed, 0x4C4D48ull)); // "LMH"
    for (size_t i = 0; i < C * C; i++) {
        float v;
        do v = m->cfg.initializer_range * pb_rng_normal(&r);
        while (fabsf(v) > 2.0f); // HF trunc bounds are +-2 absolute (as model.c)
        w[i] = v;
    }
    pb_upload(m->e, h->params[H_DENSE_W].data, w, C * C);
    free(w);
    pb_fill(m->e, h->params[H_LN_W].data, 1.0f, C); // the rest stays zero (pb_param_init)
    return h;
}

// Frees the per-row buffers (kept by the head between calls, regrown by ensure_rows).
static void free_rows(pb_mlm_head *h) {
    pb_engine *e = h->m->e;
    void *bufs[] = {h->rows, h->targets, h->x,      h->hd,      h->hg, h->hn,  h->mean, h->rstd,
                    h->logits, h->probs, h->dlogits, h->dx,     h->dhd, h->dhg, h->dhn};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) pb_free(e, bufs[i]);
    h->rows = h->targets = NULL;
    h->x = h->hd = h->hg = h->hn = h->mean = h->rstd = h->logits = h->probs = h->dlogits = NULL;
    h->dx = h->dhd = h->dhg = h->dhn = NULL;
    h->cap = 0;
}

// Row buffers for at least M rows (reallocated, contents lost, only when M grows).
static void ensure_rows(pb_mlm_head *h, int M) {
    if (M <= h->cap) return;
    free_rows(h);
    pb_engine *e = h->m->e;
    size_t n = (size_t)M, C = (size_t)h->m->cfg.hidden, V = (size_t)h->m->cfg.vocab_size;
    h->rows = pb_alloc_i32(e, n);
    h->targets = pb_alloc_i32(e, n);
    h->x = pb_alloc(e, n * C);
    h->hd = pb_alloc(e, n * C);
    h->hg = pb_alloc(e, n * C);
    h->hn = pb_alloc(e, n * C);
    h->mean = pb_alloc(e, n);
    h->rstd = pb_alloc(e, n);
    h->logits = pb_alloc(e, n * V);
    h->probs = pb_alloc(e, n * V);
    h->dlogits = pb_alloc(e, n * V);
    h->dx = pb_alloc(e, n * C);
    h->dhd = pb_alloc(e, n * C);
    h->dhg = pb_alloc(e, n * C);
    h->dhn = pb_alloc(e, n * C);
    h->cap = M;
}

void pb_mlm_head_free(pb_mlm_head *h) {
    if (!h) return;
    free_rows(h);
    for (int i = 0; i < H_N; i++) pb_param_free(h->m->e, &h->params[i]);
    free(h);
}

pb_param **pb_mlm_head_params(pb_mlm_head *h, int *n) {
    *n = H_N;
    return h->ptrs;
}

// ----------------------------------------------------------------------------
// Forward, loss, backward

// The head on the h->M rows already in h->rows: logits (M,V) = decoder(LN(gelu(dense(x)))).
static void head_rows_forward(pb_mlm_head *h) {
    pb_model *m = h->m;
    pb_engine *e = m->e;
    int M = h->M, C = m->cfg.hidden, V = m->cfg.vocab_size, N = m->B * m->T;
    // gather: x[i,:] = hidden[rows[i],:]
    pb_embedding_forward(e, h->x, h->rows, roberta_last_hidden(m), M, C, N);
    pb_linear_forward(e, h->hd, h->x, h->params[H_DENSE_W].data, h->params[H_DENSE_B].data, M, C, C);
    pb_gelu_forward(e, h->hg, h->hd, (size_t)M * (size_t)C);
    pb_layernorm_forward(e, h->hn, h->mean, h->rstd, h->hg, h->params[H_LN_W].data, h->params[H_LN_B].data, M,
                         C, m->cfg.ln_eps);
    pb_linear_forward(e, h->logits, h->hn, m->word->data, h->params[H_BIAS].data, M, C, V);
}

float pb_mlm_forward(pb_mlm_head *h, const pb_batch *b, const int32_t *labels, int train, uint64_t seed,
                     int *nmasked) {
    pb_model *m = h->m;
    int V = m->cfg.vocab_size;
    size_t N = (size_t)b->B * (size_t)b->T;
    pb_model_features(m, b, train, seed);
    int M = 0;
    for (size_t i = 0; i < N; i++) {
        PB_CHECK(labels[i] == PB_MLM_IGNORE || (labels[i] >= 0 && labels[i] < V),
                 "MLM label %d at token %zu outside [0,%d) and not %d", labels[i], i, V, PB_MLM_IGNORE);
        M += labels[i] != PB_MLM_IGNORE;
    }
    if (nmasked) *nmasked = M;
    h->M = M;
    h->loss = 0.0f;
    h->loss_done = 1;
    if (M == 0) return 0.0f;
    ensure_rows(h, M);
    int32_t *rows = pb_xmalloc((size_t)M * sizeof(int32_t)), *tg = pb_xmalloc((size_t)M * sizeof(int32_t));
    int k = 0;
    for (size_t i = 0; i < N; i++)
        if (labels[i] != PB_MLM_IGNORE) {
            rows[k] = (int32_t)i;
            tg[k++] = labels[i];
        }
    pb_upload_i32(m->e, h->rows, rows, (size_t)M);
    pb_upload_i32(m->e, h->targets, tg, (size_t)M);
    free(rows);
    free(tg);
    head_rows_forward(h);
    // mean over the M labelled rows = transformers' CrossEntropyLoss(ignore_index=-100)
    pb_xent_forward(m->e, h->probs, &h->loss, h->logits, h->targets, M, V, 0.0f);
    return h->loss;
}

const float *pb_mlm_logits(pb_mlm_head *h, const pb_batch *b) {
    pb_model *m = h->m;
    int N = b->B * b->T;
    pb_model_features(m, b, 0, 0);
    ensure_rows(h, N);
    int32_t *rows = pb_xmalloc((size_t)N * sizeof(int32_t));
    for (int i = 0; i < N; i++) rows[i] = i;
    pb_upload_i32(m->e, h->rows, rows, (size_t)N);
    free(rows);
    h->M = N;
    h->loss_done = 0;
    head_rows_forward(h);
    return h->logits;
}

// p's gradient buffer when it trains, else NULL (the op then skips that gradient).
static float *grad_of(pb_param *p) { return model_ptr(p) ? p->grad : NULL; }

void pb_mlm_backward(pb_mlm_head *h) {
    pb_model *m = h->m;
    pb_engine *e = m->e;
    PB_CHECK(h->loss_done, "pb_mlm_backward without a pb_mlm_forward loss");
    int M = h->M, C = m->cfg.hidden, V = m->cfg.vocab_size;
    if (M == 0) return;
    size_t MC = (size_t)M * (size_t)C;
    pb_zero(e, h->dlogits, (size_t)M * (size_t)V);
    pb_xent_backward(e, h->dlogits, h->probs, h->targets, M, V, 0.0f);
    // decoder: logits = hn W_word^T + bias; the tied weight's gradient joins the lookup's
    pb_zero(e, h->dhn, MC);
    pb_linear_backward(e, h->dhn, grad_of(m->word), grad_of(&h->params[H_BIAS]), h->dlogits, h->hn, m->word->data,
                       M, C, V);
    pb_zero(e, h->dhg, MC);
    pb_layernorm_backward(e, h->dhg, grad_of(&h->params[H_LN_W]), grad_of(&h->params[H_LN_B]), h->dhn, h->hg,
                          h->params[H_LN_W].data, h->mean, h->rstd, M, C);
    pb_zero(e, h->dhd, MC);
    pb_gelu_backward(e, h->dhd, h->dhg, h->hd, MC);
    int enc = roberta_lowest_trainable(m) < m->cfg.layers;
    if (enc) pb_zero(e, h->dx, MC);
    pb_linear_backward(e, enc ? h->dx : NULL, grad_of(&h->params[H_DENSE_W]), grad_of(&h->params[H_DENSE_B]),
                       h->dhd, h->x, h->params[H_DENSE_W].data, M, C, C);
    if (enc) roberta_backward_tokens(m, h->dx, h->rows, M);
}

// ----------------------------------------------------------------------------
// Checkpoints

// 1 if file tensor t has p's shape.
static int same_shape(const pb_param *p, const pb_st_tensor *t) {
    if (p->ndim != t->ndim) return 0;
    for (int i = 0; i < p->ndim; i++)
        if (p->shape[i] != t->shape[i]) return 0;
    return 1;
}

// 1 if file tensor t holds exactly the values of engine buffer dev (n floats).
static int tensor_equals(pb_engine *e, const pb_st_file *f, const pb_st_tensor *t, const float *dev, size_t n,
                         pb_status *st, char *err, size_t errlen) {
    if (t->numel != n) return 0;
    float *a = pb_xmalloc(n * sizeof(float)), *b = pb_xmalloc(n * sizeof(float));
    *st = pb_st_read_f32(f, t, a, err, errlen);
    pb_download(e, b, dev, n);
    int eq = *st == PB_OK && !memcmp(a, b, n * sizeof(float));
    free(a);
    free(b);
    return eq;
}

pb_status pb_mlm_head_load(pb_model *m, const char *dir, pb_mlm_head **out, char *err, size_t errlen) {
    *out = NULL;
    if (m->cfg.arch != PB_ARCH_ROBERTA)
        return pb_errf(PB_ERR_ARG, err, errlen, "%s: a masked-LM head needs a RoBERTa model", dir);
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    pb_st_file f;
    pb_status st = pb_st_open(path, &f, err, errlen);
    if (st != PB_OK) return st;
    pb_mlm_head *h = head_alloc(m);
    for (int i = 0; i < H_N && st == PB_OK; i++) {
        pb_param *p = &h->params[i];
        const pb_st_tensor *t = pb_st_find(&f, p->name);
        if (!t) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: missing tensor '%s' (not a RobertaForMaskedLM checkpoint?)",
                         path, p->name);
        } else if (!same_shape(p, t)) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor '%s' has %d dims / %zu elements, expected %zu (config.json)",
                         path, p->name, t->ndim, t->numel, p->numel);
        } else {
            float *buf = pb_xmalloc(p->numel * sizeof(float));
            st = pb_st_read_f32(&f, t, buf, err, errlen);
            if (st == PB_OK) pb_upload(m->e, p->data, buf, p->numel);
            free(buf);
        }
    }
    // older writers store the tied decoder too: accept it only when it really is tied
    const pb_st_tensor *dw = st == PB_OK ? pb_st_find(&f, "lm_head.decoder.weight") : NULL;
    if (dw && !tensor_equals(m->e, &f, dw, m->word->data, m->word->numel, &st, err, errlen) && st == PB_OK)
        st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen,
                     "%s: 'lm_head.decoder.weight' differs from the word embeddings (an untied decoder is not supported)",
                     path);
    const pb_st_tensor *db = st == PB_OK ? pb_st_find(&f, "lm_head.decoder.bias") : NULL;
    pb_param *bias = &h->params[H_BIAS];
    if (db && !tensor_equals(m->e, &f, db, bias->data, bias->numel, &st, err, errlen) && st == PB_OK)
        st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: 'lm_head.decoder.bias' differs from 'lm_head.bias'", path);
    pb_st_close(&f);
    if (st != PB_OK) {
        pb_mlm_head_free(h);
        return st;
    }
    *out = h;
    return PB_OK;
}

// Adds p's values (downloaded; the writer copies them) to w under key.
static void add_param(pb_st_writer *w, pb_engine *e, const char *key, const pb_param *p) {
    float *buf = pb_xmalloc(p->numel * sizeof(float));
    pb_download(e, buf, p->data, p->numel);
    pb_st_writer_add(w, key, buf, p->ndim, p->shape);
    free(buf);
}

pb_status pb_mlm_save(pb_mlm_head *h, const char *dir, char *err, size_t errlen) {
    pb_model *m = h->m;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    pb_status st = pb_model_config_write_as(path, &m->cfg, "RobertaForMaskedLM", err, errlen);
    if (st != PB_OK) return st;
    pb_st_writer *w = pb_st_writer_init();
    pb_st_writer_meta(w, "format", "pt");
    char key[PB_NAME_MAX + 16];
    for (int i = 0; i < m->nparams; i++) {
        pb_param *p = &m->params[i];
        if (p->group == PB_GROUP_HEAD) continue; // the classification head is not part of it
        snprintf(key, sizeof(key), "%s%s", pb_model_prefix(m), p->name);
        add_param(w, m->e, key, p);
    }
    for (int i = 0; i < H_N; i++) add_param(w, m->e, h->params[i].name, &h->params[i]);
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    st = pb_st_writer_finish(w, path, err, errlen);
    pb_st_writer_free(w);
    return st;
}

// ----------------------------------------------------------------------------
// Masking (DataCollatorForLanguageModeling.torch_mask_tokens)

pb_mlm_mask_config pb_mlm_mask_config_default(int32_t mask_id, int vocab_size, const int32_t *special,
                                              int nspecial) {
    pb_mlm_mask_config c = {0.15f, 0.8f, 0.1f, mask_id, vocab_size, special, nspecial};
    return c;
}

int pb_mlm_mask(const pb_mlm_mask_config *c, uint64_t seed, int32_t *ids, int32_t *labels, size_t n) {
    PB_CHECK(c->vocab_size > 0 && c->mask_id >= 0 && c->mask_id < c->vocab_size, "MLM mask id %d outside [0,%d)",
             c->mask_id, c->vocab_size);
    pb_rng r;
    pb_rng_seed(&r, seed);
    int chosen = 0;
    for (size_t i = 0; i < n; i++) {
        labels[i] = PB_MLM_IGNORE;
        int special = 0;
        for (int s = 0; s < c->nspecial && !special; s++) special = ids[i] == c->special[s];
        if (special) continue; // probability 0, as special_tokens_mask / the padding mask
        if (pb_rng_uniform(&r) >= c->prob) continue;
        chosen++;
        labels[i] = ids[i];
        float a = pb_rng_uniform(&r);
        if (a < c->mask_frac) ids[i] = c->mask_id;
        else if (a < c->mask_frac + c->random_frac) ids[i] = (int32_t)pb_rng_below(&r, (uint32_t)c->vocab_size);
    }
    return chosen;
}
