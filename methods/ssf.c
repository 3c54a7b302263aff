// ssf.c: SSF, Scaling & Shifting your Features (Lian et al., NeurIPS 2022, arXiv 2210.08823):
// a learned per-channel scale and shift after the operations of every block,
//     y' = gamma ⊙ y + beta,
// here after each targeted encoder linear (q, k, v, attention output, FFN in and out: the paper's
// qkv / proj / fc1 / fc2) and, at the norm site, after every LayerNorm (the blocks' two and the
// final one; RoBERTa: the embeddings' and the blocks' two), where it is carried as the norm's
// effective affine: LN(x) ⊙ (gamma ⊙ w) + (gamma ⊙ b + beta). Not in peft: checked against a
// PyTorch module in tests/ref/ref_methods.py and by finite differences in tests/test_methods.c.
// Init as the paper's code: gamma ~ N(1, 0.02), beta ~ N(0, 0.02) (init=identity: 1 and 0, the
// pre-trained function at step 0). Both merge: W <- diag(gamma) W, b <- gamma ⊙ b + beta, and the
// norm's affine becomes the effective one.
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

// ----------------------------------------------------------------------------
// After a linear: rewrites y in place and dy in backward (the layer's private copy).

typedef struct {
    int out;
    float *z;       // (N,out) saved base output
    float *ones;    // (N) ones: beta broadcast over rows as a K = 1 GEMM, its gradient as a column sum
    size_t cap_z, cap_ones;
} ssf_state;

static const float *ssf_ones(pb_engine *e, ssf_state *st, int N) {
    if ((size_t)N > st->cap_ones) {
        pb_grow(e, &st->ones, &st->cap_ones, (size_t)N);
        pb_fill(e, st->ones, 1.0f, st->cap_ones);
    }
    return st->ones;
}

// y (N,out) <- gamma ⊙ y + beta, saving z = y.
static void ssf_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    (void)x; (void)train; (void)seed;
    ssf_state *st = a->state;
    const float *g = a->params[0].data, *beta = a->params[1].data;
    pb_grow(e, &st->z, &st->cap_z, (size_t)N * st->out);
    pb_copy(e, st->z, y, (size_t)N * st->out);
    pb_mul_cols(e, y, y, g, N, st->out);
    pb_gemm(e, 0, 0, N, st->out, 1, 1.0f, ssf_ones(e, st, N), 1, beta, st->out, 1.0f, y, st->out);
}

// dgamma += Σ_n z ⊙ dy; dbeta += Σ_n dy; dy <- gamma ⊙ dy.
static void ssf_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    (void)dx; (void)x;
    ssf_state *st = a->state;
    pb_param *g = &a->params[0], *beta = &a->params[1];
    if (g->grad) pb_mul_cols_reduce(e, g->grad, st->z, dy, N, st->out);
    if (beta->grad)
        pb_gemm(e, 1, 0, 1, st->out, N, 1.0f, ssf_ones(e, st, N), 1, dy, st->out, 1.0f, beta->grad, st->out);
    pb_mul_cols(e, dy, dy, g->data, N, st->out);
}

// W (out,in) <- diag(gamma) W (host: once), b <- gamma ⊙ b + beta.
static void ssf_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    ssf_state *st = a->state;
    int out = st->out, in = a->lin->in;
    size_t n = (size_t)out * in;
    float *hW = pb_xmalloc(n * sizeof(float)), *hg = pb_xmalloc((size_t)out * sizeof(float));
    pb_download(e, hW, W, n);
    pb_download(e, hg, a->params[0].data, (size_t)out);
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) hW[(size_t)o * in + i] *= hg[o];
    pb_upload(e, W, hW, n);
    PB_CHECK(b, "ssf merge: %s has no bias to take the shift", a->lin->name);
    pb_mul_cols(e, b, b, a->params[0].data, 1, out);
    pb_axpy(e, b, 1.0f, a->params[1].data, (size_t)out);
    free(hW);
    free(hg);
}

static void ssf_free(pb_adapter *a, pb_engine *e) {
    ssf_state *st = a->state;
    pb_free(e, st->z);
    pb_free(e, st->ones);
    pb_adapter_free_common(e, a);
}

static const pb_adapter_vtbl ssf_vtbl = {"ssf", 1, ssf_forward, ssf_backward, ssf_merge, ssf_free, NULL};

// gamma, beta (n) from the init option: N(1, 0.02) / N(0, 0.02), or 1 / 0.
static void ssf_init(pb_engine *e, float *g, float *beta, int n, const pb_method_config *c, uint64_t seed) {
    if (!strcmp(pb_mc_str(c, "init"), "identity")) {
        pb_fill(e, g, 1.0f, (size_t)n);
        pb_zero(e, beta, (size_t)n);
        return;
    }
    float *h = pb_xmalloc((size_t)2 * n * sizeof(float));
    pb_rng rng;
    pb_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) h[i] = 1.0f + 0.02f * pb_rng_normal(&rng);
    for (int i = 0; i < n; i++) h[n + i] = 0.02f * pb_rng_normal(&rng);
    pb_upload(e, g, h, (size_t)n);
    pb_upload(e, beta, h + n, (size_t)n);
    free(h);
}

static pb_status ssf_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site, char *err,
                            size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    if (!l->b) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s has no bias (SSF's merge needs one)", l->name);
    pb_adapter *a = pb_adapter_new(&ssf_vtbl, l, 2, sizeof(ssf_state));
    ssf_state *st = a->state;
    st->out = l->out;
    pb_adapter_param(e, a, 0, "ssf_scale", 1, (int64_t[]){l->out}, 1);
    pb_adapter_param(e, a, 1, "ssf_shift", 1, (int64_t[]){l->out}, 1);
    ssf_init(e, a->params[0].data, a->params[1].data, l->out, c, pb_method_seed(c->seed, site->index, 0x55f));
    l->adapter = a;
    return PB_OK;
}

// ----------------------------------------------------------------------------
// After a LayerNorm (the norm site): the effective affine w' = gamma ⊙ w, b' = gamma ⊙ b + beta;
// from dw', db': dgamma += dw' ⊙ w + db' ⊙ b, dbeta += db' (and dw += dw' ⊙ gamma,
// db += db' ⊙ gamma when the norm's own tensors train).

typedef struct {
    int C;
    float *w, *b; // (C) the effective affine, rebuilt by each affine()
} ssf_norm_state;

static void ssf_norm_affine(pb_norm_adapter *a, pb_engine *e, const float **w, const float **b) {
    ssf_norm_state *st = a->state;
    const float *g = a->params[0].data, *beta = a->params[1].data;
    pb_mul_cols(e, st->w, *w, g, 1, st->C);
    pb_mul_cols(e, st->b, *b, g, 1, st->C);
    pb_axpy(e, st->b, 1.0f, beta, (size_t)st->C);
    *w = st->w;
    *b = st->b;
}

static void ssf_norm_backward(pb_norm_adapter *a, pb_engine *e, const float *dw, const float *db) {
    ssf_norm_state *st = a->state;
    pb_norm *n = a->norm;
    pb_param *g = &a->params[0], *beta = &a->params[1];
    if (g->grad) {
        pb_mul_cols_reduce(e, g->grad, dw, n->w->data, 1, st->C);
        pb_mul_cols_reduce(e, g->grad, db, n->b->data, 1, st->C);
    }
    if (beta->grad) pb_axpy(e, beta->grad, 1.0f, db, (size_t)st->C);
    if (n->w->trainable) pb_mul_cols_reduce(e, n->w->grad, dw, g->data, 1, st->C);
    if (n->b->trainable) pb_mul_cols_reduce(e, n->b->grad, db, g->data, 1, st->C);
}

static void ssf_norm_merge(pb_norm_adapter *a, pb_engine *e, float *w, float *b) {
    const float *ew = w, *eb = b;
    ssf_norm_affine(a, e, &ew, &eb);
    ssf_norm_state *st = a->state;
    pb_copy(e, w, ew, (size_t)st->C);
    pb_copy(e, b, eb, (size_t)st->C);
}

static void ssf_norm_free(pb_norm_adapter *a, pb_engine *e) {
    ssf_norm_state *st = a->state;
    pb_free(e, st->w);
    pb_free(e, st->b);
    pb_free(e, a->dw);
    pb_free(e, a->db);
    for (int i = 0; i < a->nparams; i++) pb_param_free(e, &a->params[i]);
    free(a->params);
    free(a->state);
    free(a);
}

static const pb_norm_adapter_vtbl ssf_norm_vtbl = {"ssf-norm", ssf_norm_affine, ssf_norm_backward, ssf_norm_merge,
                                                   ssf_norm_free};

static pb_status ssf_norm_attach(pb_engine *e, pb_norm *n, const pb_method_config *c, int index, char *err,
                                 size_t errlen) {
    (void)err; (void)errlen;
    pb_norm_adapter *a = pb_xcalloc(1, sizeof(pb_norm_adapter));
    ssf_norm_state *st = pb_xcalloc(1, sizeof(ssf_norm_state));
    a->vt = &ssf_norm_vtbl;
    a->norm = n;
    a->state = st;
    st->C = n->C;
    st->w = pb_alloc(e, (size_t)n->C);
    st->b = pb_alloc(e, (size_t)n->C);
    a->dw = pb_alloc(e, (size_t)n->C);
    a->db = pb_alloc(e, (size_t)n->C);
    a->nparams = 2;
    a->params = pb_xcalloc(2, sizeof(pb_param));
    static const char *leaf[2] = {"ssf_scale", "ssf_shift"};
    for (int i = 0; i < 2; i++) {
        char name[2 * PB_NAME_MAX];
        snprintf(name, sizeof(name), "%s.%s", n->name, leaf[i]);
        pb_param_init(e, &a->params[i], name, 1, (int64_t[]){n->C}, PB_GROUP_ADAPTER);
        a->params[i].no_decay = 1;
        pb_param_set_trainable(e, &a->params[i], 1);
    }
    // seeds: a stream of their own, apart from the linears' (index = position among the norms)
    ssf_init(e, a->params[0].data, a->params[1].data, n->C, c, pb_method_seed(c->seed, 100000 + index, 0x55f));
    n->adapter = a;
    return PB_OK;
}

// ----------------------------------------------------------------------------
// Descriptor

// gamma and beta: 2 out per linear, 2 C per norm; forward: a multiply-add per element.
static double ssf_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)c; (void)role; (void)in;
    return 2.0 * out;
}
static double ssf_norm_params(const pb_method_config *c, int C) {
    (void)c;
    return 2.0 * C;
}

static const pb_method_opt ssf_opts[] = {
    PB_OPT_TARGETS("query,key,value,attention.output,intermediate,output"),
    {"norms", PB_OPT_BOOL, "true", 0, 0, 0, NULL, "scale and shift after every LayerNorm too (the paper's placement)"},
    {"init", PB_OPT_ENUM, "normal", 0, 0, 0, "normal|identity",
     "gamma ~ N(1, 0.02), beta ~ N(0, 0.02) (the paper's code), or 1 and 0 (step 0 = pre-trained)"},
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_ssf = {
    .name = "ssf",
    .summary = "SSF: y' = gamma * y + beta after every targeted linear and LayerNorm (gamma, beta trainable)",
    .reference = "PyTorch module from Lian et al. 2022 (arXiv 2210.08823); not in peft",
    .opts = ssf_opts,
    .nopts = (int)(sizeof ssf_opts / sizeof ssf_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_params = ssf_site_params,
    .site_flops = ssf_site_params,
    .attach = ssf_attach,
    .norm_attach = ssf_norm_attach,
    .norm_params = ssf_norm_params,
    .norm_flops = ssf_norm_params,
};
