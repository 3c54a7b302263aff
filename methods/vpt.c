// vpt.c: Visual Prompt Tuning (Jia et al., ECCV 2022, arXiv 2203.12119) on a ViT, the tables'
// VPT-Shallow and VPT-Deep rows: p learned prompt tokens inserted after CLS,
//     x_0 = [CLS, P_0, patches]                       (after the embeddings and their dropout)
// and for VPT-Deep, before every layer l >= 1, the p prompt rows of its input are replaced by
// P_l (the previous layer's outputs there are dropped), [x_{l-1}[CLS], P_l, x_{l-1}[patches]].
// The classifier still reads CLS after the final LayerNorm. The token site (adapter.h
// pb_token_adapter): the model's sequence is T0 + p. Init as VPT's code: U(-v, v),
// v = sqrt(6 / (channels * patch^2 + D)) (xavier-uniform over the patch projection's fan).
// Parameters p D (shallow) or L p D (deep). Not mergeable (the sequence is longer); not in peft:
// checked against a PyTorch module (hooks on transformers' ViT) in tests/ref/ref_methods.py and
// by finite differences in tests/test_methods_model.c.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

typedef struct {
    int deep; // one P per layer (VPT-Deep); the prompt count is a->ntokens
} vpt_state;

// out (B,T,C) = [x[b,0]; P_0; x[b,1:]] for every b; x (B,T0,C).
static void vpt_embed_forward(pb_token_adapter *a, pb_engine *e, float *out, const float *x, int B, int T0, int C) {
    int p = a->ntokens, T = T0 + p;
    const float *P = a->params[0].data; // (p,C)
    for (int b = 0; b < B; b++) {
        float *ob = out + (size_t)b * T * C;
        const float *xb = x + (size_t)b * T0 * C;
        pb_copy(e, ob, xb, (size_t)C);
        pb_copy(e, ob + C, P, (size_t)p * C);
        pb_copy(e, ob + (size_t)(1 + p) * C, xb + C, (size_t)(T0 - 1) * C);
    }
}

// dP_0 += Σ_b dout[b,1..p]; dx[b] = dout[b] without the prompt rows.
static void vpt_embed_backward(pb_token_adapter *a, pb_engine *e, float *dx, const float *dout, int B, int T0,
                               int C) {
    int p = a->ntokens, T = T0 + p;
    pb_param *P = &a->params[0];
    for (int b = 0; b < B; b++) {
        const float *db = dout + (size_t)b * T * C;
        if (P->grad) pb_axpy(e, P->grad, 1.0f, db + C, (size_t)p * C);
        if (!dx) continue;
        float *xb = dx + (size_t)b * T0 * C;
        pb_copy(e, xb, db, (size_t)C);
        pb_copy(e, xb + C, db + (size_t)(1 + p) * C, (size_t)(T0 - 1) * C);
    }
}

// Deep: x[b,1..p] <- P_l (in place).
static void vpt_layer_forward(pb_token_adapter *a, pb_engine *e, int l, float *x, int B, int T, int C) {
    vpt_state *st = a->state;
    if (!st->deep) return;
    int p = a->ntokens;
    const float *P = a->params[l].data;
    for (int b = 0; b < B; b++) pb_copy(e, x + ((size_t)b * T + 1) * C, P, (size_t)p * C);
}

// Deep: dP_l += Σ_b dx[b,1..p]; those rows <- 0 (layer l - 1's outputs there were dropped).
static void vpt_layer_backward(pb_token_adapter *a, pb_engine *e, int l, float *dx, int B, int T, int C) {
    vpt_state *st = a->state;
    if (!st->deep) return;
    int p = a->ntokens;
    pb_param *P = &a->params[l];
    for (int b = 0; b < B; b++) {
        float *rows = dx + ((size_t)b * T + 1) * C;
        if (P->grad) pb_axpy(e, P->grad, 1.0f, rows, (size_t)p * C);
        pb_zero(e, rows, (size_t)p * C);
    }
}

static void vpt_free(pb_token_adapter *a, pb_engine *e) {
    for (int i = 0; i < a->nparams; i++) pb_param_free(e, &a->params[i]);
    free(a->params);
    free(a->state);
    free(a);
}

static const pb_token_adapter_vtbl vpt_vtbl = {"vpt", vpt_embed_forward, vpt_embed_backward, vpt_layer_forward,
                                               vpt_layer_backward, vpt_free};

static pb_status vpt_attach(pb_model *m, const pb_method_config *c, char *err, size_t errlen) {
    const pb_model_config *cfg = pb_model_cfg(m);
    pb_engine *e = pb_model_engine(m);
    int p = pb_mc_int(c, "tokens"), deep = !strcmp(pb_mc_str(c, "depth"), "deep"), C = cfg->hidden;
    pb_token_adapter *a = pb_xcalloc(1, sizeof(pb_token_adapter));
    vpt_state *st = pb_xcalloc(1, sizeof(vpt_state));
    a->vt = &vpt_vtbl;
    a->state = st;
    a->ntokens = p;
    st->deep = deep;
    a->nparams = deep ? cfg->layers : 1;
    a->params = pb_xcalloc((size_t)a->nparams, sizeof(pb_param));
    float v = sqrtf(6.0f / (float)(cfg->channels * cfg->patch_size * cfg->patch_size + C));
    float *h = pb_xmalloc((size_t)p * C * sizeof(float));
    for (int i = 0; i < a->nparams; i++) {
        char name[PB_NAME_MAX];
        snprintf(name, sizeof name, "prompt.%d.embeddings", i); // layer i's prompts (shallow: 0 only)
        pb_param_init(e, &a->params[i], name, 2, (int64_t[]){p, C}, PB_GROUP_ADAPTER);
        pb_param_set_trainable(e, &a->params[i], 1);
        pb_rng rng;
        pb_rng_seed(&rng, pb_method_seed(c->seed, 200000 + i, 0x797));
        for (size_t k = 0; k < (size_t)p * C; k++) h[k] = (2.0f * pb_rng_uniform(&rng) - 1.0f) * v;
        pb_upload(e, a->params[i].data, h, (size_t)p * C);
    }
    free(h);
    pb_status s = pb_model_attach_tokens(m, a, err, errlen);
    if (s) vpt_free(a, e);
    return s;
}

static double vpt_token_params(const pb_method_config *c, const pb_model_config *cfg) {
    double per = (double)pb_mc_int(c, "tokens") * cfg->hidden;
    return !strcmp(pb_mc_str(c, "depth"), "deep") ? per * cfg->layers : per;
}

static const pb_method_opt vpt_opts[] = {
    {"tokens", PB_OPT_INT, "10", 1, 4096, 0, NULL, "p: prompt tokens inserted after CLS"},
    {"depth", PB_OPT_ENUM, "deep", 0, 0, 0, "shallow|deep",
     "shallow: prompts at the input only (VPT-Shallow); deep: new prompts before every layer (VPT-Deep)"},
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_vpt = {
    .name = "vpt",
    .summary = "VPT: p learned prompt tokens after CLS (shallow: at the input; deep: replaced before every layer)",
    .reference = "PyTorch module (hooks on transformers' ViT) from Jia et al. 2022 (arXiv 2203.12119); not in peft",
    .opts = vpt_opts,
    .nopts = (int)(sizeof vpt_opts / sizeof vpt_opts[0]),
    .site = PB_SITE_NONE,
    .unfreeze = PB_UNFREEZE_HEAD,
    .token_attach = vpt_attach,
    .token_params = vpt_token_params,
};
