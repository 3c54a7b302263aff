// model.c: the parts of pb_model shared by ViT and RoBERTa: the parameter table (specs, random
// init), linear layers with adapters, HF checkpoint load/save, lookup, counts, the head and the
// loss, dispatch to vit.c / roberta.c, FLOPs.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
// defines: struct pb_model, vit_* / roberta_* entry points, pb_param_spec
#include "model_internal.h"
// defines: pb_st_open, pb_st_find, pb_st_read_f32, pb_st_writer_*
#include "safetensors.h"
// defines: pb_adapter (vtable calls)
#include "../methods/adapter.h"

// ----------------------------------------------------------------------------
// Specs and small helpers

void model_spec_add(pb_param_spec **specs, int *n, int *cap, pb_param_group g, int no_decay,
                    pb_init_kind init, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *specs = pb_xrealloc(*specs, (size_t)*cap * sizeof(pb_param_spec));
    }
    pb_param_spec *s = &(*specs)[(*n)++];
    memset(s, 0, sizeof(*s));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof(s->name), fmt, ap);
    va_end(ap);
    PB_CHECK(ndim >= 1 && ndim <= PB_MAX_DIMS, "bad ndim %d", ndim);
    s->ndim = ndim;
    for (int i = 0; i < ndim; i++) s->shape[i] = shape[i];
    s->group = g;
    s->no_decay = no_decay;
    s->init = init;
}

void model_spec_linear(pb_param_spec **specs, int *n, int *cap, pb_param_group g, int64_t out,
                       int64_t in, int bias, const char *module) {
    model_spec_add(specs, n, cap, g, 0, PB_INIT_NORMAL, 2, (int64_t[]){out, in}, "%s.weight", module);
    if (bias) model_spec_add(specs, n, cap, g, 1, PB_INIT_ZERO, 1, (int64_t[]){out}, "%s.bias", module);
}

void model_spec_layernorm(pb_param_spec **specs, int *n, int *cap, int64_t C, const char *module) {
    model_spec_add(specs, n, cap, PB_GROUP_BACKBONE, 1, PB_INIT_ONE, 1, (int64_t[]){C}, "%s.weight", module);
    model_spec_add(specs, n, cap, PB_GROUP_BACKBONE, 1, PB_INIT_ZERO, 1, (int64_t[]){C}, "%s.bias", module);
}

static void model_specs(const pb_model_config *cfg, pb_param_spec **specs, int *n) {
    int cap = 0;
    *specs = NULL;
    *n = 0;
    if (cfg->arch == PB_ARCH_VIT) vit_specs(cfg, specs, n, &cap);
    else roberta_specs(cfg, specs, n, &cap);
}

uint64_t model_site_seed(uint64_t seed, uint64_t site) {
    // splitmix64 finaliser over (seed, site): decorrelated streams per dropout site
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (site + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int model_ptr(const pb_param *p) { return p && p->trainable; }

int model_lin_active(const pb_linear *l) {
    return l->adapter != NULL || model_ptr(l->w) || model_ptr(l->b);
}

int model_drop_on(const pb_model *m, float p) { return m->train && p > 0.0f; }

float *model_layer_input(pb_model *m, int l) { return l == 0 ? m->xin : m->acts[l - 1].out; }

float *model_dropout(pb_model *m, float *out, float *mask, float *inp, float p, uint64_t site,
                     size_t n) {
    if (!model_drop_on(m, p)) return inp;
    PB_CHECK(out && mask, "dropout buffers missing (p=%g)", p);
    pb_dropout_forward(m->e, out, mask, inp, p, model_site_seed(m->seed, site), n);
    return out;
}

// ----------------------------------------------------------------------------
// Encoder sub-blocks shared by ViT (pre-LN) and RoBERTa (post-LN)

void model_attn_forward(pb_model *m, int l, const float *in, const float *xres,
                        const int32_t *keymask, int B, int T) {
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    pb_layer *w = &m->layers[l];
    pb_layer_acts *a = &m->acts[l];
    int C = c->hidden, NH = c->heads, N = B * T, train = m->train, li = 6 * l;
    size_t NC = (size_t)N * (size_t)C;
    float pa = train ? c->attn_dropout : 0.0f;
    pb_linear_layer_forward(e, w->q, a->q, in, N, train, model_site_seed(m->seed, SITE_LIN(li)));
    pb_linear_layer_forward(e, w->k, a->k, in, N, train, model_site_seed(m->seed, SITE_LIN(li + 1)));
    pb_linear_layer_forward(e, w->v, a->v, in, N, train, model_site_seed(m->seed, SITE_LIN(li + 2)));
    pb_attention_forward(e, a->atty, a->att, pa > 0 ? a->attd : NULL, a->q, a->k, a->v, keymask, B,
                         T, NH, C / NH, pa, model_site_seed(m->seed, SITE_ATT(l)));
    pb_linear_layer_forward(e, w->o, a->attproj, a->atty, N, train,
                            model_site_seed(m->seed, SITE_LIN(li + 3)));
    float *ap = model_dropout(m, a->attproj_d, a->mask1, a->attproj, c->hidden_dropout, SITE_H1(l), NC);
    pb_add(e, a->res1, xres, ap, NC);
}

void model_attn_backward(pb_model *m, int l, const float *in, float *din) {
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    pb_layer *w = &m->layers[l];
    pb_layer_acts *a = &m->acts[l];
    int B = m->B, T = m->T, C = c->hidden, NH = c->heads, N = B * T;
    size_t NC = (size_t)N * (size_t)C;
    float pa = m->train ? c->attn_dropout : 0.0f;
    const float *dap = m->dres;
    if (model_drop_on(m, c->hidden_dropout)) {
        pb_zero(e, m->dA, NC);
        pb_dropout_backward(e, m->dA, m->dres, a->mask1, NC);
        dap = m->dA;
    }
    int qkv_act = model_lin_active(w->q) || model_lin_active(w->k) || model_lin_active(w->v);
    int need_atty = din || qkv_act;
    if (need_atty) pb_zero(e, m->datty, NC);
    pb_linear_layer_backward(e, w->o, need_atty ? m->datty : NULL, dap, a->atty, N);
    if (!need_atty) return;
    pb_zero(e, m->dq, NC);
    pb_zero(e, m->dk, NC);
    pb_zero(e, m->dv, NC);
    pb_attention_backward(e, m->dq, m->dk, m->dv, m->datty, a->q, a->k, a->v, a->att,
                          pa > 0 ? a->attd : NULL, B, T, NH, C / NH, pa,
                          model_site_seed(m->seed, SITE_ATT(l)));
    pb_linear_layer_backward(e, w->q, din, m->dq, in, N);
    pb_linear_layer_backward(e, w->k, din, m->dk, in, N);
    pb_linear_layer_backward(e, w->v, din, m->dv, in, N);
}

void model_mlp_forward(pb_model *m, int l, const float *in, const float *xres, int B, int T) {
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    pb_layer *w = &m->layers[l];
    pb_layer_acts *a = &m->acts[l];
    int N = B * T, train = m->train, li = 6 * l;
    size_t NC = (size_t)N * (size_t)c->hidden;
    pb_linear_layer_forward(e, w->fc1, a->fch, in, N, train, model_site_seed(m->seed, SITE_LIN(li + 4)));
    pb_gelu_forward(e, a->fch_gelu, a->fch, (size_t)N * (size_t)c->intermediate);
    pb_linear_layer_forward(e, w->fc2, a->fcproj, a->fch_gelu, N, train,
                            model_site_seed(m->seed, SITE_LIN(li + 5)));
    float *fp = model_dropout(m, a->fcproj_d, a->mask2, a->fcproj, c->hidden_dropout, SITE_H2(l), NC);
    pb_add(e, a->res2, xres, fp, NC);
}

void model_mlp_backward(pb_model *m, int l, const float *dres2, float *scratch, const float *in,
                        float *din) {
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    pb_layer *w = &m->layers[l];
    pb_layer_acts *a = &m->acts[l];
    int N = m->B * m->T;
    size_t NC = (size_t)N * (size_t)c->hidden, NI = (size_t)N * (size_t)c->intermediate;
    const float *dfp = dres2;
    if (model_drop_on(m, c->hidden_dropout)) {
        pb_zero(e, scratch, NC);
        pb_dropout_backward(e, scratch, dres2, a->mask2, NC);
        dfp = scratch;
    }
    int need_fch = din || model_lin_active(w->fc1);
    if (need_fch) pb_zero(e, m->dfchg, NI);
    pb_linear_layer_backward(e, w->fc2, need_fch ? m->dfchg : NULL, dfp, a->fch_gelu, N);
    if (!need_fch) return;
    pb_zero(e, m->dfch, NI);
    pb_gelu_backward(e, m->dfch, m->dfchg, a->fch, NI);
    pb_linear_layer_backward(e, w->fc1, din, m->dfch, in, N);
}

// ----------------------------------------------------------------------------
// Linear layers

void pb_linear_layer_forward(pb_engine *e, pb_linear *l, float *y, const float *x, int N,
                             int train, uint64_t seed) {
    // y (N,out), x (N,in), w (out,in), b (out)
    pb_linear_forward(e, y, x, l->w->data, l->b ? l->b->data : NULL, N, l->in, l->out);
    if (l->adapter) l->adapter->vt->forward(l->adapter, e, y, x, N, train, seed);
}

void pb_linear_layer_backward(pb_engine *e, pb_linear *l, float *dx, const float *dy,
                              const float *x, int N) {
    // dx (N,in) or NULL, dy (N,out), x (N,in)
    pb_adapter *a = l->adapter;
    if (a) {
        if (a->vt->rewrites_dy) {
            // the adapter replaces dy by the gradient wrt the base output: give it a private copy
            if (l->scratch_n < N) {
                pb_free(e, l->dout_scratch);
                l->dout_scratch = pb_alloc(e, (size_t)N * (size_t)l->out);
                l->scratch_n = N;
            }
            pb_copy(e, l->dout_scratch, dy, (size_t)N * (size_t)l->out);
            a->vt->backward(a, e, dx, l->dout_scratch, x, N);
            dy = l->dout_scratch;
        } else {
            a->vt->backward(a, e, dx, (float *)dy, x, N);
        }
    }
    float *dw = model_ptr(l->w) ? l->w->grad : NULL;
    float *db = model_ptr(l->b) ? l->b->grad : NULL;
    if (!dx && !dw && !db) return;
    pb_linear_backward(e, dx, dw, db, dy, x, l->w->data, N, l->in, l->out);
}

void model_linear_set(pb_linear *l, const char *name, pb_param *w, pb_param *b) {
    memset(l, 0, sizeof(*l));
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->w = w;
    l->b = b;
    l->out = (int)w->shape[0];
    l->in = (int)(w->numel / (size_t)w->shape[0]);
}

// ----------------------------------------------------------------------------
// LayerNorms

void model_norm_set(pb_model *m, pb_norm *n, const char *module, float eps) {
    memset(n, 0, sizeof(*n));
    snprintf(n->name, sizeof(n->name), "%s", module);
    n->w = model_param(m, "%s.weight", module);
    n->b = model_param(m, "%s.bias", module);
    n->C = (int)n->w->numel;
    n->eps = eps;
}

int pb_norm_active(const pb_norm *n) { return n->adapter != NULL || model_ptr(n->w) || model_ptr(n->b); }

void pb_norm_layer_forward(pb_engine *e, pb_norm *n, float *out, float *mean, float *rstd, const float *x, int N) {
    // out (N,C), mean, rstd (N), x (N,C)
    const float *w = n->w->data, *b = n->b->data;
    if (n->adapter) n->adapter->vt->affine(n->adapter, e, &w, &b);
    pb_layernorm_forward(e, out, mean, rstd, x, w, b, N, n->C, n->eps);
}

void pb_norm_layer_backward(pb_engine *e, pb_norm *n, float *dx, const float *dout, const float *x,
                            const float *mean, const float *rstd, int N) {
    // dx (N,C) or NULL, dout (N,C), x (N,C), mean, rstd (N)
    pb_norm_adapter *a = n->adapter;
    if (!a) {
        float *dw = model_ptr(n->w) ? n->w->grad : NULL, *db = model_ptr(n->b) ? n->b->grad : NULL;
        if (dx || dw || db) pb_layernorm_backward(e, dx, dw, db, dout, x, n->w->data, mean, rstd, N, n->C);
        return;
    }
    // the gradient wrt the effective affine, then the adapter's chain rule (params unchanged
    // since the forward, so affine() returns the same tensors)
    const float *w = n->w->data, *b = n->b->data;
    a->vt->affine(a, e, &w, &b);
    pb_zero(e, a->dw, (size_t)n->C);
    pb_zero(e, a->db, (size_t)n->C);
    pb_layernorm_backward(e, dx, a->dw, a->db, dout, x, w, mean, rstd, N, n->C);
    a->vt->backward(a, e, a->dw, a->db);
}

static void norm_release(pb_engine *e, pb_norm *n) {
    if (n->adapter) {
        n->adapter->vt->free(n->adapter, e);
        n->adapter = NULL;
    }
}

pb_status pb_model_attach_tokens(pb_model *m, pb_token_adapter *a, char *err, size_t errlen) {
    if (m->cfg.arch != PB_ARCH_VIT)
        return pb_errf(PB_ERR_ARG, err, errlen, "method: %s adds tokens to a ViT's sequence; %s is not a ViT",
                       a->vt->name, m->cfg.name);
    if (m->tok) return pb_errf(PB_ERR_ARG, err, errlen, "method: the model has a token adapter already");
    m->tok = a;
    model_free_enc_acts(m); // the sequence grows: activations are re-sized at the next forward
    return PB_OK;
}

pb_token_adapter *pb_model_token_adapter(pb_model *m) { return m->tok; }

pb_norm *pb_model_norms(pb_model *m, int *n) {
    *n = m->nnorms;
    return m->norms;
}

int pb_model_config_norms(const pb_model_config *cfg) { return 2 * cfg->layers + 1; }

static void linear_release(pb_engine *e, pb_linear *l) {
    if (l->adapter) {
        l->adapter->vt->free(l->adapter, e);
        l->adapter = NULL;
    }
    pb_free(e, l->dout_scratch);
    l->dout_scratch = NULL;
    l->scratch_n = 0;
}

// ----------------------------------------------------------------------------
// Creation

// Fills p with N(0, std^2) (HF's trunc_normal_ bounds are +-2 absolute, i.e. +-100 std at
// std 0.02: redraw beyond them), zeros, ones, or normal with the padding row zeroed.
static void init_param(pb_engine *e, pb_param *p, pb_init_kind kind, float std, int pad_row,
                       pb_rng *rng) {
    float *h = pb_xmalloc(p->numel * sizeof(float));
    for (size_t i = 0; i < p->numel; i++) {
        float v = 0.0f;
        if (kind == PB_INIT_ONE) v = 1.0f;
        else if (kind == PB_INIT_NORMAL || kind == PB_INIT_EMB_PAD) {
            do v = std * pb_rng_normal(rng);
            while (fabsf(v) > 2.0f);
        }
        h[i] = v;
    }
    if (kind == PB_INIT_EMB_PAD && pad_row >= 0 && pad_row < p->shape[0]) {
        size_t C = (size_t)p->shape[1];
        memset(h + (size_t)pad_row * C, 0, C * sizeof(float));
    }
    pb_upload(e, p->data, h, p->numel);
    free(h);
}

// Builds the model; init_mask: 1 = random-init the backbone, 2 = random-init the head.
static pb_model *model_build(pb_engine *e, const pb_model_config *cfg, uint64_t seed,
                             int init_mask) {
    // configs from pb_model_config_read / _builtin are validated there; anything else is a bug
    // (no '%' inside PB_CHECK conditions: the condition text becomes part of a format string)
    int head_rem = cfg->heads > 0 ? cfg->hidden - (cfg->hidden / cfg->heads) * cfg->heads : 1;
    int patch_rem = cfg->patch_size > 0
                        ? cfg->image_size - (cfg->image_size / cfg->patch_size) * cfg->patch_size
                        : 1;
    PB_CHECK(cfg->hidden > 0 && cfg->layers > 0 && cfg->heads > 0 && cfg->intermediate > 0 &&
                 head_rem == 0 && cfg->num_labels >= 1,
             "invalid model config (hidden %d, layers %d, heads %d, mlp %d, labels %d)",
             cfg->hidden, cfg->layers, cfg->heads, cfg->intermediate, cfg->num_labels);
    PB_CHECK(cfg->arch != PB_ARCH_VIT || (cfg->patch_size > 0 && cfg->channels > 0 &&
                                          patch_rem == 0),
             "invalid ViT config (image %d, patch %d)", cfg->image_size, cfg->patch_size);
    PB_CHECK(cfg->arch != PB_ARCH_ROBERTA || (cfg->vocab_size > 0 && cfg->type_vocab > 0 &&
                                              cfg->max_positions > cfg->pad_id + 1),
             "invalid RoBERTa config (vocab %d, positions %d)", cfg->vocab_size, cfg->max_positions);
    pb_model *m = pb_xcalloc(1, sizeof(pb_model));
    m->e = e;
    m->cfg = *cfg;
    pb_param_spec *specs;
    int n;
    model_specs(cfg, &specs, &n);
    m->nparams = n;
    m->params = pb_xcalloc((size_t)n, sizeof(pb_param));
    m->pptrs = pb_xcalloc((size_t)n, sizeof(pb_param *));
    // one stream for the backbone, one for the head: re-initialising a head on load gives the
    // same head as pb_model_create with that seed
    pb_rng rb, rh;
    pb_rng_seed(&rb, seed);
    pb_rng_seed(&rh, model_site_seed(seed, 0xC1A55ull));
    for (int i = 0; i < n; i++) {
        pb_param *p = &m->params[i];
        pb_param_init(e, p, specs[i].name, specs[i].ndim, specs[i].shape, specs[i].group);
        p->no_decay = specs[i].no_decay;
        m->pptrs[i] = p;
        int is_head = specs[i].group == PB_GROUP_HEAD;
        if ((is_head && (init_mask & 2)) || (!is_head && (init_mask & 1)))
            init_param(e, p, specs[i].init, cfg->initializer_range, cfg->pad_id,
                       is_head ? &rh : &rb);
    }
    free(specs);
    if (cfg->arch == PB_ARCH_VIT) vit_wire(m);
    else roberta_wire(m);
    return m;
}

pb_model *pb_model_create(pb_engine *e, const pb_model_config *cfg, uint64_t seed) {
    return model_build(e, cfg, seed, 3);
}

pb_model *model_create_uninit(pb_engine *e, const pb_model_config *cfg) {
    return model_build(e, cfg, 0, 0);
}

// Returns the param named exactly `name` (no prefix), aborting if absent (wiring invariant).
pb_param *model_param(pb_model *m, const char *fmt, ...) {
    char name[PB_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    PB_ABORT("model has no parameter '%s'", name);
}

// Like model_param but NULL when absent (optional biases).
pb_param *model_param_opt(pb_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

void pb_model_free(pb_model *m) {
    if (!m) return;
    pb_engine *e = m->e;
    for (int i = 0; i < m->nlins; i++) linear_release(e, &m->lins[i]);
    for (int i = 0; i < m->nnorms; i++) norm_release(e, &m->norms[i]);
    free(m->norms);
    if (m->tok) m->tok->vt->free(m->tok, e);
    linear_release(e, &m->patch);
    linear_release(e, &m->head1);
    linear_release(e, &m->head2);
    model_free_acts(m);
    for (int i = 0; i < m->nparams; i++) pb_param_free(e, &m->params[i]);
    free(m->params);
    free(m->pptrs);
    free(m->trainable);
    free(m->lins);
    free(m->layers);
    free(m);
}

// ----------------------------------------------------------------------------
// Accessors

const pb_model_config *pb_model_cfg(const pb_model *m) { return &m->cfg; }
pb_engine *pb_model_engine(const pb_model *m) { return m->e; }
const char *pb_model_prefix(const pb_model *m) {
    return m->cfg.arch == PB_ARCH_VIT ? "vit." : "roberta.";
}

pb_param **pb_model_params(pb_model *m, int *n) {
    *n = m->nparams;
    return m->pptrs;
}

pb_linear *pb_model_linears(pb_model *m, int *n) {
    *n = m->nlins;
    return m->lins;
}

pb_param **pb_model_trainable(pb_model *m, int *n) {
    int cnt = 0;
    for (int i = 0; i < m->nparams; i++) cnt += m->params[i].trainable != 0;
    for (int i = 0; i < m->nlins; i++)
        if (m->lins[i].adapter) cnt += m->lins[i].adapter->nparams;
    for (int i = 0; i < m->nnorms; i++)
        if (m->norms[i].adapter) cnt += m->norms[i].adapter->nparams;
    if (m->tok) cnt += m->tok->nparams;
    if (cnt > m->ntrainable_cap) {
        m->trainable = pb_xrealloc(m->trainable, (size_t)cnt * sizeof(pb_param *));
        m->ntrainable_cap = cnt;
    }
    int k = 0;
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].trainable) m->trainable[k++] = &m->params[i];
    for (int i = 0; i < m->nlins; i++) {
        pb_adapter *a = m->lins[i].adapter;
        if (a)
            for (int j = 0; j < a->nparams; j++) m->trainable[k++] = &a->params[j];
    }
    for (int i = 0; i < m->nnorms; i++) {
        pb_norm_adapter *a = m->norms[i].adapter;
        if (a)
            for (int j = 0; j < a->nparams; j++) m->trainable[k++] = &a->params[j];
    }
    for (int j = 0; m->tok && j < m->tok->nparams; j++) m->trainable[k++] = &m->tok->params[j];
    *n = k;
    return m->trainable;
}

pb_param *pb_model_find(pb_model *m, const char *name) {
    const char *pre = pb_model_prefix(m);
    size_t pl = strlen(pre);
    if (!strncmp(name, pre, pl)) name += pl;
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

pb_param_counts pb_model_count(pb_model *m) {
    pb_param_counts c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < m->nparams; i++) {
        pb_param *p = &m->params[i];
        c.total += p->numel;
        if (p->group == PB_GROUP_BACKBONE) c.backbone += p->numel;
        if (p->group == PB_GROUP_HEAD) c.head += p->numel;
        if (p->trainable) {
            c.trainable += p->numel;
            if (p->group == PB_GROUP_BACKBONE) c.trainable_backbone += p->numel;
        }
    }
    for (int i = 0; i < m->nlins; i++) {
        pb_adapter *a = m->lins[i].adapter;
        if (!a) continue;
        for (int j = 0; j < a->nparams; j++) {
            c.adapter += a->params[j].numel;
            c.trainable += a->params[j].numel;
            c.trainable_backbone += a->params[j].numel;
        }
    }
    for (int i = 0; i < m->nnorms; i++) {
        pb_norm_adapter *a = m->norms[i].adapter;
        for (int j = 0; a && j < a->nparams; j++) {
            c.adapter += a->params[j].numel;
            c.trainable += a->params[j].numel;
            c.trainable_backbone += a->params[j].numel;
        }
    }
    for (int j = 0; m->tok && j < m->tok->nparams; j++) {
        c.adapter += m->tok->params[j].numel;
        c.trainable += m->tok->params[j].numel;
        c.trainable_backbone += m->tok->params[j].numel;
    }
    return c;
}

// Counts from the config alone (no allocation); used by `peftbench info`.
pb_param_counts model_count_config(const pb_model_config *cfg) {
    pb_param_spec *specs;
    int n;
    model_specs(cfg, &specs, &n);
    pb_param_counts c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < specs[i].ndim; d++) numel *= (size_t)specs[i].shape[d];
        c.total += numel;
        if (specs[i].group == PB_GROUP_BACKBONE) c.backbone += numel;
        if (specs[i].group == PB_GROUP_HEAD) c.head += numel;
    }
    free(specs);
    return c;
}

unsigned pb_param_kind(const char *name) {
    size_t n = strlen(name);
    unsigned k = n >= 5 && !strcmp(name + n - 5, ".bias") ? PB_PKIND_BIAS : 0;
    if (strstr(name, "LayerNorm") || strstr(name, "layernorm")) k |= PB_PKIND_NORM;
    return k;
}

size_t pb_model_config_count_kind(const pb_model_config *cfg, unsigned kinds) {
    pb_param_spec *specs;
    int n;
    model_specs(cfg, &specs, &n);
    size_t c = 0;
    for (int i = 0; i < n; i++) {
        if (specs[i].group != PB_GROUP_BACKBONE || !(pb_param_kind(specs[i].name) & kinds)) continue;
        size_t numel = 1;
        for (int d = 0; d < specs[i].ndim; d++) numel *= (size_t)specs[i].shape[d];
        c += numel;
    }
    free(specs);
    return c;
}

// ----------------------------------------------------------------------------
// Activation buffers

static float *alloc_opt(pb_engine *e, int on, size_t n) { return on ? pb_alloc(e, n) : NULL; }

void model_alloc_layer_acts(pb_model *m, pb_layer_acts *a, size_t N, size_t BHTT, int post_ln) {
    pb_engine *e = m->e;
    size_t C = (size_t)m->cfg.hidden, I = (size_t)m->cfg.intermediate;
    int hd = m->cfg.hidden_dropout > 0, ad = m->cfg.attn_dropout > 0;
    memset(a, 0, sizeof(*a));
    a->ln1 = pb_alloc(e, N * C);
    a->ln1_mean = pb_alloc(e, N);
    a->ln1_rstd = pb_alloc(e, N);
    a->q = pb_alloc(e, N * C);
    a->k = pb_alloc(e, N * C);
    a->v = pb_alloc(e, N * C);
    a->att = pb_alloc(e, BHTT);
    a->attd = alloc_opt(e, ad, BHTT);
    a->atty = pb_alloc(e, N * C);
    a->attproj = pb_alloc(e, N * C);
    a->mask1 = alloc_opt(e, hd, N * C);
    a->attproj_d = alloc_opt(e, hd, N * C);
    a->res1 = pb_alloc(e, N * C);
    a->ln2 = pb_alloc(e, N * C);
    a->ln2_mean = pb_alloc(e, N);
    a->ln2_rstd = pb_alloc(e, N);
    a->fch = pb_alloc(e, N * I);
    a->fch_gelu = pb_alloc(e, N * I);
    a->fcproj = pb_alloc(e, N * C);
    a->mask2 = alloc_opt(e, hd, N * C);
    a->fcproj_d = alloc_opt(e, hd, N * C);
    a->res2 = pb_alloc(e, N * C);
    a->out = post_ln ? a->ln2 : a->res2;
}

static void free_layer_acts(pb_engine *e, pb_layer_acts *a) {
    float *bufs[] = {a->ln1, a->ln1_mean, a->ln1_rstd, a->q, a->k, a->v, a->att, a->attd,
                     a->atty, a->attproj, a->mask1, a->attproj_d, a->res1, a->ln2, a->ln2_mean,
                     a->ln2_rstd, a->fch, a->fch_gelu, a->fcproj, a->mask2, a->fcproj_d, a->res2};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) pb_free(e, bufs[i]);
    memset(a, 0, sizeof(*a));
}

static void free_grads(pb_model *m) {
    pb_engine *e = m->e;
    float **g[] = {&m->dres, &m->dA, &m->dB, &m->dq, &m->dk, &m->dv, &m->datty, &m->dfch, &m->dfchg};
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
        pb_free(e, *g[i]);
        *g[i] = NULL;
    }
    m->gcapB = m->gcapT = 0;
}

static void free_head(pb_model *m) {
    pb_engine *e = m->e;
    float **h[] = {&m->hfeat, &m->hd1, &m->hmask1, &m->hdense, &m->htanh, &m->hd2, &m->hmask2,
                   &m->logits, &m->probs, &m->dfeat, &m->dh1, &m->dh2, &m->dlogits};
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        pb_free(e, *h[i]);
        *h[i] = NULL;
    }
    m->hcapB = 0;
}

// Frees the encoder activations (not the head's, not the grads').
static void free_enc_acts(pb_model *m) {
    pb_engine *e = m->e;
    if (m->acts)
        for (int l = 0; l < m->cfg.layers; l++) free_layer_acts(e, &m->acts[l]);
    free(m->acts);
    m->acts = NULL;
    float **b[] = {&m->cols, &m->patch_out, &m->tokens, &m->emb_mask, &m->x0, &m->emb_sum,
                   &m->emb_ln, &m->emb_mean, &m->emb_rstd, &m->cls_tok, &m->lnf_mean,
                   &m->lnf_rstd, &m->feat, &m->xtok};
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
        pb_free(e, *b[i]);
        *b[i] = NULL;
    }
    pb_free(e, m->pos_ids);
    pb_free(e, m->tt_ids);
    m->pos_ids = m->tt_ids = NULL;
    m->capB = m->capT = 0;
}

void model_free_acts(pb_model *m) {
    free_enc_acts(m);
    free_grads(m);
    free_head(m);
}

void model_free_enc_acts(pb_model *m) { free_enc_acts(m); }

void model_ensure_grads(pb_model *m, int B, int T) {
    if (B <= m->gcapB && T <= m->gcapT) return;
    int nB = PB_MAX(B, m->gcapB), nT = PB_MAX(T, m->gcapT);
    free_grads(m);
    pb_engine *e = m->e;
    size_t N = (size_t)nB * (size_t)nT, C = (size_t)m->cfg.hidden, I = (size_t)m->cfg.intermediate;
    m->dres = pb_alloc(e, N * C);
    m->dA = pb_alloc(e, N * C);
    m->dB = pb_alloc(e, N * C);
    m->dq = pb_alloc(e, N * C);
    m->dk = pb_alloc(e, N * C);
    m->dv = pb_alloc(e, N * C);
    m->datty = pb_alloc(e, N * C);
    m->dfch = pb_alloc(e, N * I);
    m->dfchg = pb_alloc(e, N * I);
    m->gcapB = nB;
    m->gcapT = nT;
}

static void ensure_head(pb_model *m, int B) {
    if (B <= m->hcapB) return;
    free_head(m);
    pb_engine *e = m->e;
    size_t C = (size_t)m->cfg.hidden, V = (size_t)m->cfg.num_labels, nB = (size_t)B;
    int rob = m->cfg.arch == PB_ARCH_ROBERTA;
    float cd = m->cfg.classifier_dropout < 0 ? m->cfg.hidden_dropout : m->cfg.classifier_dropout;
    m->hfeat = pb_alloc(e, nB * C);
    m->hd1 = alloc_opt(e, rob && cd > 0, nB * C);
    m->hmask1 = alloc_opt(e, rob && cd > 0, nB * C);
    m->hdense = alloc_opt(e, rob, nB * C);
    m->htanh = alloc_opt(e, rob, nB * C);
    m->hd2 = alloc_opt(e, rob && cd > 0, nB * C);
    m->hmask2 = alloc_opt(e, rob && cd > 0, nB * C);
    m->logits = pb_alloc(e, nB * V);
    m->probs = pb_alloc(e, nB * V);
    m->dfeat = pb_alloc(e, nB * C);
    m->dh1 = pb_alloc(e, nB * C);
    m->dh2 = pb_alloc(e, nB * C);
    m->dlogits = pb_alloc(e, nB * V);
    m->hcapB = B;
}

// ----------------------------------------------------------------------------
// Forward, head, loss, backward

const float *pb_model_features(pb_model *m, const pb_batch *batch, int train, uint64_t seed) {
    m->train = train;
    m->seed = seed;
    if (m->cfg.arch == PB_ARCH_VIT) vit_features(m, batch, train, seed);
    else roberta_features(m, batch, train, seed);
    return m->feat;
}

static float head_dropout_p(const pb_model *m) {
    return m->cfg.classifier_dropout < 0 ? m->cfg.hidden_dropout : m->cfg.classifier_dropout;
}

const float *pb_model_head_forward(pb_model *m, const float *features, int B, int train,
                                   uint64_t seed) {
    // features (B,C) -> logits (B,V)
    pb_engine *e = m->e;
    ensure_head(m, B);
    m->hB = B;
    m->train = train;
    m->seed = seed;
    size_t C = (size_t)m->cfg.hidden;
    pb_copy(e, m->hfeat, features, (size_t)B * C);
    if (m->cfg.arch == PB_ARCH_VIT) {
        pb_linear_layer_forward(e, &m->head1, m->logits, m->hfeat, B, train, seed);
    } else {
        // RobertaClassificationHead: dropout -> dense -> tanh -> dropout -> out_proj
        float p = head_dropout_p(m);
        float *x = model_dropout(m, m->hd1, m->hmask1, m->hfeat, p, SITE_HEAD1, (size_t)B * C);
        pb_linear_layer_forward(e, &m->head1, m->hdense, x, B, train, seed);
        pb_tanh_forward(e, m->htanh, m->hdense, (size_t)B * C);
        x = model_dropout(m, m->hd2, m->hmask2, m->htanh, p, SITE_HEAD2, (size_t)B * C);
        pb_linear_layer_forward(e, &m->head2, m->logits, x, B, train, seed);
    }
    m->head_loss_done = 0;
    return m->logits;
}

const float *pb_model_forward(pb_model *m, const pb_batch *batch, int train, uint64_t seed) {
    const float *f = pb_model_features(m, batch, train, seed);
    return pb_model_head_forward(m, f, batch->B, train, seed);
}

float pb_model_head_loss(pb_model *m, const pb_batch *batch, float label_smoothing) {
    int B = m->hB, V = m->cfg.num_labels;
    PB_CHECK(batch->B == B, "loss batch %d != forward batch %d", batch->B, B);
    float loss = 0.0f;
    if (V == 1) {
        PB_CHECK(batch->targets, "regression needs float targets");
        pb_mse_forward(m->e, &loss, m->logits, batch->targets, B, 1);
    } else {
        PB_CHECK(batch->labels, "classification needs int labels");
        pb_xent_forward(m->e, m->probs, &loss, m->logits, batch->labels, B, V, label_smoothing);
    }
    m->loss = loss;
    m->label_smoothing = label_smoothing;
    m->head_loss_done = 1;
    return loss;
}

float pb_model_loss(pb_model *m, const pb_batch *batch, float label_smoothing) {
    return pb_model_head_loss(m, batch, label_smoothing);
}

// dlogits = dloss/dlogits of the last loss; then back through the head. dfeat (B,C) or NULL.
static void head_backward(pb_model *m, const pb_batch *batch, float *dfeat) {
    pb_engine *e = m->e;
    int B = m->hB, V = m->cfg.num_labels;
    size_t C = (size_t)m->cfg.hidden, BC = (size_t)B * C;
    PB_CHECK(m->head_loss_done, "backward without a loss on the last forward");
    pb_zero(e, m->dlogits, (size_t)B * (size_t)V);
    if (V == 1) pb_mse_backward(e, m->dlogits, m->logits, batch->targets, B, 1);
    else pb_xent_backward(e, m->dlogits, m->probs, batch->labels, B, V, m->label_smoothing);
    if (dfeat) pb_zero(e, dfeat, BC);
    if (m->cfg.arch == PB_ARCH_VIT) {
        pb_linear_layer_backward(e, &m->head1, dfeat, m->dlogits, m->hfeat, B);
        return;
    }
    float p = head_dropout_p(m);
    int drop = model_drop_on(m, p);
    const float *x2 = drop ? m->hd2 : m->htanh;
    int need_below = dfeat != NULL || model_lin_active(&m->head1);
    if (!need_below) {
        pb_linear_layer_backward(e, &m->head2, NULL, m->dlogits, x2, B);
        return;
    }
    float *g = m->dh1; // d(out_proj input)
    pb_zero(e, g, BC);
    pb_linear_layer_backward(e, &m->head2, g, m->dlogits, x2, B);
    if (drop) {
        pb_zero(e, m->dh2, BC);
        pb_dropout_backward(e, m->dh2, g, m->hmask2, BC);
        g = m->dh2;
    }
    float *gt = g == m->dh1 ? m->dh2 : m->dh1; // d(dense output)
    pb_zero(e, gt, BC);
    pb_tanh_backward(e, gt, g, m->htanh, BC);
    const float *x1 = drop ? m->hd1 : m->hfeat;
    if (!dfeat) {
        pb_linear_layer_backward(e, &m->head1, NULL, gt, x1, B);
        return;
    }
    if (drop) {
        float *gd = gt == m->dh1 ? m->dh2 : m->dh1;
        pb_zero(e, gd, BC);
        pb_linear_layer_backward(e, &m->head1, gd, gt, x1, B);
        pb_dropout_backward(e, dfeat, gd, m->hmask1, BC);
    } else {
        pb_linear_layer_backward(e, &m->head1, dfeat, gt, x1, B);
    }
}

void pb_model_head_backward(pb_model *m, const pb_batch *batch) { head_backward(m, batch, NULL); }

void pb_model_backward(pb_model *m, const pb_batch *batch) {
    int lowest = m->cfg.arch == PB_ARCH_VIT ? vit_lowest_trainable(m) : roberta_lowest_trainable(m);
    int backbone = lowest <= m->cfg.layers; // ViT: L = the final layernorm
    if (m->cfg.arch == PB_ARCH_ROBERTA) backbone = lowest < m->cfg.layers;
    head_backward(m, batch, backbone ? m->dfeat : NULL);
    if (!backbone) return;
    if (m->cfg.arch == PB_ARCH_VIT) vit_backward_features(m, m->dfeat);
    else roberta_backward_features(m, m->dfeat);
}

// ----------------------------------------------------------------------------
// Load / save

// A file key that a classification model does not use (and that is not an error).
static int ignorable_key(const char *k) {
    const char *dot = strchr(k, '.');
    const char *rest = dot ? dot + 1 : k;
    if (!strncmp(k, "pooler.", 7) || !strncmp(rest, "pooler.", 7)) return 1;
    if (!strncmp(k, "lm_head.", 8)) return 1;
    if (strstr(k, "position_ids")) return 1;
    return 0;
}

// Finds the file tensor for parameter p: "name", "prefix.name", legacy gamma/beta for LayerNorm.
static const pb_st_tensor *find_key(const pb_model *m, const pb_st_file *f, const pb_param *p) {
    char buf[PB_NAME_MAX + 32];
    const char *pre = pb_model_prefix(m);
    const pb_st_tensor *t = pb_st_find(f, p->name);
    if (t) return t;
    snprintf(buf, sizeof(buf), "%s%s", pre, p->name);
    if ((t = pb_st_find(f, buf))) return t;
    size_t n = strlen(p->name);
    const char *legacy = NULL;
    static const char lw[] = "LayerNorm.weight", lb[] = "LayerNorm.bias";
    if (n >= sizeof(lw) - 1 && !strcmp(p->name + n - (sizeof(lw) - 1), lw)) legacy = "gamma";
    if (n >= sizeof(lb) - 1 && !strcmp(p->name + n - (sizeof(lb) - 1), lb)) legacy = "beta";
    if (legacy) {
        char base[PB_NAME_MAX];
        snprintf(base, sizeof(base), "%s", p->name);
        *strrchr(base, '.') = '\0';
        snprintf(buf, sizeof(buf), "%s.%s", base, legacy);
        if ((t = pb_st_find(f, buf))) return t;
        snprintf(buf, sizeof(buf), "%s%s.%s", pre, base, legacy);
        if ((t = pb_st_find(f, buf))) return t;
    }
    return NULL;
}

static int shape_eq(const pb_param *p, const pb_st_tensor *t) {
    if (p->ndim != t->ndim) return 0;
    for (int i = 0; i < p->ndim; i++)
        if (p->shape[i] != t->shape[i]) return 0;
    return 1;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

pb_status pb_model_load(pb_engine *e, const char *dir, int num_labels, uint64_t seed,
                        pb_model **out, char *err, size_t errlen) {
    *out = NULL;
    char path[4096];
    pb_model_config cfg;
    snprintf(path, sizeof(path), "%s/config.json", dir);
    pb_status st = pb_model_config_read(path, &cfg, err, errlen);
    if (st != PB_OK) return st;
    if (num_labels > 0) cfg.num_labels = num_labels;
    if (cfg.num_labels < 1)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: num_labels must be >= 1 (got %d)", path,
                       cfg.num_labels);
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    pb_st_file f;
    st = pb_st_open(path, &f, err, errlen);
    if (st != PB_OK) return st;

    pb_model *m = model_build(e, &cfg, seed, 2);
    int n = m->nparams;
    const pb_st_tensor **src = pb_xcalloc((size_t)n, sizeof(*src));
    // decide first whether the head comes from the file: every head tensor present and shaped
    // like ours; otherwise it keeps its seeded init (a new task head)
    int head_total = 0, head_found = 0, head_shape_ok = 1;
    for (int i = 0; i < n; i++) {
        pb_param *p = &m->params[i];
        src[i] = find_key(m, &f, p);
        if (p->group != PB_GROUP_HEAD) continue;
        head_total++;
        if (src[i]) {
            head_found++;
            if (!shape_eq(p, src[i])) head_shape_ok = 0;
        }
    }
    int load_head = head_found == head_total && head_shape_ok;
    if (head_found > 0 && !head_shape_ok && num_labels <= 0) {
        // config.json and the weights disagree and no new label count was asked for
        load_head = 1; // report the mismatch below
    }
    char a[96], b[96];
    for (int i = 0; i < n && st == PB_OK; i++) {
        pb_param *p = &m->params[i];
        if (p->group == PB_GROUP_HEAD && !load_head) continue;
        const pb_st_tensor *t = src[i];
        if (!t) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: missing tensor '%s' (or '%s%s')", path,
                         p->name, pb_model_prefix(m), p->name);
            break;
        }
        if (!shape_eq(p, t)) {
            shape_str(a, sizeof(a), p->ndim, p->shape);
            shape_str(b, sizeof(b), t->ndim, t->shape);
            st = pb_errf(PB_ERR_FORMAT, err, errlen,
                         "%s: tensor '%s' has shape %s, expected %s (config.json)", path, t->name,
                         b, a);
            break;
        }
        float *h = pb_xmalloc(p->numel * sizeof(float));
        st = pb_st_read_f32(&f, t, h, err, errlen);
        if (st == PB_OK) pb_upload(e, p->data, h, p->numel);
        free(h);
    }
    if (st == PB_OK) {
        if (!load_head)
            fprintf(stderr,
                    "peftbench: %s: %s head (%d labels) initialised from seed %llu\n", dir,
                    head_found ? "replacing the checkpoint's" : "no classification",
                    cfg.num_labels, (unsigned long long)seed);
        // report tensors nothing used (other than the known ignorable ones)
        int unused = 0;
        for (int j = 0; j < f.ntensors; j++) {
            const pb_st_tensor *t = &f.tensors[j];
            int used = ignorable_key(t->name);
            for (int i = 0; i < n && !used; i++) used = src[i] == t;
            if (!used && unused++ < 5)
                fprintf(stderr, "peftbench: %s: ignoring unexpected tensor '%s'\n", path, t->name);
        }
        if (unused > 5)
            fprintf(stderr, "peftbench: %s: ... %d unexpected tensors in all\n", path, unused);
    }
    free(src);
    pb_st_close(&f);
    if (st != PB_OK) {
        pb_model_free(m);
        return st;
    }
    *out = m;
    return PB_OK;
}

pb_status pb_model_save(pb_model *m, const char *dir, char *err, size_t errlen) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create directory: %s", dir,
                       strerror(errno));
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    pb_status st = pb_model_config_write(path, &m->cfg, err, errlen);
    if (st != PB_OK) return st;
    pb_st_writer *w = pb_st_writer_init();
    pb_st_writer_meta(w, "format", "pt");
    char key[PB_NAME_MAX + 16];
    for (int i = 0; i < m->nparams; i++) {
        pb_param *p = &m->params[i];
        float *h = pb_xmalloc(p->numel * sizeof(float));
        pb_download(m->e, h, p->data, p->numel);
        snprintf(key, sizeof(key), "%s%s", p->group == PB_GROUP_HEAD ? "" : pb_model_prefix(m),
                 p->name);
        pb_st_writer_add(w, key, h, p->ndim, p->shape);
        free(h);
    }
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    st = pb_st_writer_finish(w, path, err, errlen);
    pb_st_writer_free(w);
    return st;
}

// ----------------------------------------------------------------------------
// FLOPs

double pb_model_flops_forward(const pb_model_config *cfg, int T) {
    double C = cfg->hidden, I = cfg->intermediate, V = cfg->num_labels, L = cfg->layers;
    double f = 0.0;
    if (cfg->arch == PB_ARCH_VIT) {
        double P = cfg->patch_size, NP = (double)(cfg->image_size / cfg->patch_size) *
                                         (double)(cfg->image_size / cfg->patch_size);
        T = (int)NP + 1;
        f += 2.0 * NP * (cfg->channels * P * P) * C; // patch projection
        f += 2.0 * C * V;                            // classifier on CLS
    } else {
        f += 2.0 * C * C + 2.0 * C * V;              // classification head on <s>
    }
    double t = T;
    double layer = 2.0 * t * C * C * 4.0    // q, k, v, attention.output
                   + 2.0 * 2.0 * t * t * C  // QK^T and att @ V
                   + 2.0 * 2.0 * t * C * I; // intermediate + output
    return f + L * layer;
}
