// dora.c: DoRA (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation", arXiv 2402.09353)
// as peft's LoraConfig(use_dora=True): the adapted weight is split into a trainable magnitude m
// (out) and a direction W + s B A whose row norm is treated as a constant (the paper's §4.3
// gradient approximation; peft detaches it):
//   y = g ⊙ (x Wᵀ + s (x Aᵀ) Bᵀ) + b,   g = m / ||W + s B A||_row (recomputed every forward)
// m starts at ||W||_row (B = 0), so step 0 is the pre-trained function. With lora_dropout p > 0
// peft applies the dropout to both branches of the change, not to the base output:
//   y = x Wᵀ + b + (g - 1) ⊙ (xd Wᵀ) + g ⊙ s (xd Aᵀ) Bᵀ,   xd = dropout(x)
// which is the formula above when p = 0. Without dropout the adapter rewrites dy (dz = g ⊙ dy:
// the base linear's dx GEMM then carries the magnitude, no extra N x in x out GEMM); with dropout
// it is a parallel branch. Merge: W <- diag(g) (W + s B A), b unchanged.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

typedef struct {
    pb_lora_state lora; // first: A, B, scaling, dropout buffers (pb_lora_export_peft reads it)
    float *Wd;          // (out,in) W + s B A (scratch)
    float *wn, *g;      // (out) its row norms (detached) and g = m / wn
    float *u;           // (N,out) saved: xd Wᵀ + s (xd Aᵀ) Bᵀ (no bias)
    float *zb;          // (N,out) xd Wᵀ (dropout branch)
    float *dyg;         // (N,out) g ⊙ dy (dropout branch) / g ⊙ u (forward scratch)
    float *ones;        // (N) ones: bias broadcast and column sums
    float *t, *cs;      // (out) scratch
    size_t cap_u, cap_zb, cap_dyg, cap_ones;
} dora_state;

int pb_adapter_is_dora(const pb_adapter *a) { return a->vt == &pb_dora_vtbl || a->vt == &pb_dora_drop_vtbl; }

static const float *dora_ones(pb_engine *e, dora_state *st, int N) {
    if (st->cap_ones < (size_t)N) {
        pb_grow(e, &st->ones, &st->cap_ones, (size_t)N);
        pb_fill(e, st->ones, 1.0f, (size_t)N);
    }
    return st->ones;
}

// wn = ||W + s B A||_row, g = m / wn.
static void dora_scale(pb_adapter *a, pb_engine *e) {
    dora_state *st = a->state;
    pb_lora_state *ls = &st->lora;
    size_t nw = (size_t)ls->out * ls->in;
    pb_copy(e, st->Wd, a->lin->w->data, nw);
    pb_gemm(e, 0, 0, ls->out, ls->in, ls->r, ls->s, a->params[1].data, ls->r, a->params[0].data, ls->in, 1.0f,
            st->Wd, ls->in);
    pb_row_norms(e, st->wn, st->Wd, ls->out, ls->in);
    pb_div(e, st->g, a->params[2].data, st->wn, (size_t)ls->out);
}

// y (N,out): the base output x Wᵀ + b on entry; x (N,in).
static void dora_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    dora_state *st = a->state;
    pb_lora_state *ls = &st->lora;
    const float *A = a->params[0].data, *B = a->params[1].data;
    const float *bias = a->lin->b ? a->lin->b->data : NULL;
    int in = ls->in, out = ls->out;
    size_t nx = (size_t)N * in, ny = (size_t)N * out;
    dora_scale(a, e);
    const float *xd = x;
    ls->dropped = train && ls->p > 0.0f;
    if (ls->dropped) {
        pb_grow(e, &ls->xd, &ls->cap_xd, nx);
        pb_grow(e, &ls->mask, &ls->cap_mask, nx);
        pb_dropout_forward(e, ls->xd, ls->mask, x, ls->p, pb_method_seed(seed, ls->index, 0x10a), nx);
        xd = ls->xd;
    }
    pb_grow(e, &ls->h, &ls->cap_h, (size_t)N * ls->r);
    pb_grow(e, &st->u, &st->cap_u, ny);
    pb_linear_forward(e, ls->h, xd, A, NULL, N, in, ls->r);                        // h (N,r) = xd Aᵀ
    pb_gemm(e, 0, 1, N, out, ls->r, ls->s, ls->h, ls->r, B, ls->r, 0.0f, st->u, out); // u = s h Bᵀ
    if (!ls->dropped) { // u += x Wᵀ = y - b;  y = g ⊙ u + b
        pb_add(e, st->u, st->u, y, ny);
        if (bias) pb_gemm(e, 0, 0, N, out, 1, -1.0f, dora_ones(e, st, N), 1, bias, out, 1.0f, st->u, out);
        pb_mul_cols(e, y, st->u, st->g, N, out);
        if (bias) pb_gemm(e, 0, 0, N, out, 1, 1.0f, dora_ones(e, st, N), 1, bias, out, 1.0f, y, out);
        return;
    }
    // dropout: u += xd Wᵀ;  y += g ⊙ u - xd Wᵀ
    pb_grow(e, &st->zb, &st->cap_zb, ny);
    pb_grow(e, &st->dyg, &st->cap_dyg, ny);
    pb_gemm(e, 0, 1, N, out, in, 1.0f, xd, in, a->lin->w->data, in, 0.0f, st->zb, out);
    pb_add(e, st->u, st->u, st->zb, ny);
    pb_mul_cols(e, st->dyg, st->u, st->g, N, out);
    pb_add(e, y, y, st->dyg, ny);
    pb_axpy(e, y, -1.0f, st->zb, ny);
}

// dm += Σₙ dy ⊙ u / wn (dy: the gradient wrt the adapter's output y).
static void dora_dm(pb_adapter *a, pb_engine *e, const float *dy, int N) {
    dora_state *st = a->state;
    pb_param *m = &a->params[2];
    int out = st->lora.out;
    if (!m->grad) return;
    pb_zero(e, st->t, (size_t)out);
    pb_mul_cols_reduce(e, st->t, dy, st->u, N, out);
    pb_div(e, st->t, st->t, st->wn, (size_t)out);
    pb_axpy(e, m->grad, 1.0f, st->t, (size_t)out);
}

// The LoRA factors with dyg = g ⊙ dy: dB += s dygᵀ h, gh = dyg B, dA += s ghᵀ xd; returns gh (N,r).
static const float *dora_factor_grads(pb_adapter *a, pb_engine *e, const float *dyg, const float *xd, int N) {
    dora_state *st = a->state;
    pb_lora_state *ls = &st->lora;
    pb_param *A = &a->params[0], *B = &a->params[1];
    int out = ls->out;
    if (B->grad) pb_gemm(e, 1, 0, out, ls->r, N, ls->s, dyg, out, ls->h, ls->r, 1.0f, B->grad, ls->r);
    pb_grow(e, &ls->gh, &ls->cap_gh, (size_t)N * ls->r);
    pb_gemm(e, 0, 0, N, ls->r, out, 1.0f, dyg, out, B->data, ls->r, 0.0f, ls->gh, ls->r);
    if (A->grad) pb_gemm(e, 1, 0, ls->r, ls->in, N, ls->s, ls->gh, ls->r, xd, ls->in, 1.0f, A->grad, ls->in);
    return ls->gh;
}

// No dropout: dy (the layer's private copy) becomes g ⊙ dy, the gradient wrt x Wᵀ + b as far as
// W and x are concerned; the bias, if it trains, gets the missing Σ (1 - g) ⊙ dy here
// (∂y/∂b = 1). dx += s gh A.
static void dora_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    dora_state *st = a->state;
    pb_lora_state *ls = &st->lora;
    int out = ls->out;
    pb_param *b = a->lin->b;
    if (b && b->grad) { // grad exists only while the bias trains (param.h)
        pb_gemm(e, 1, 0, out, 1, N, 1.0f, dy, out, dora_ones(e, st, N), 1, 0.0f, st->cs, 1); // Σₙ dy
        pb_mul_cols(e, st->t, st->cs, st->g, 1, out);
        pb_axpy(e, b->grad, 1.0f, st->cs, (size_t)out);
        pb_axpy(e, b->grad, -1.0f, st->t, (size_t)out);
    }
    dora_dm(a, e, dy, N);
    pb_mul_cols(e, dy, dy, st->g, N, out);
    const float *gh = dora_factor_grads(a, e, dy, x, N);
    if (dx) pb_gemm(e, 0, 0, N, ls->in, ls->r, ls->s, gh, ls->r, a->params[0].data, ls->in, 1.0f, dx, ls->in);
}

// Dropout (parallel branch): dxd = s gh A + ((g - 1) ⊙ dy) W;  dx += mask ⊙ dxd.
static void dora_drop_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    dora_state *st = a->state;
    pb_lora_state *ls = &st->lora;
    int in = ls->in, out = ls->out;
    size_t nx = (size_t)N * in, ny = (size_t)N * out;
    const float *xd = ls->dropped ? ls->xd : x;
    pb_grow(e, &st->dyg, &st->cap_dyg, ny);
    pb_mul_cols(e, st->dyg, dy, st->g, N, out);
    dora_dm(a, e, dy, N);
    const float *gh = dora_factor_grads(a, e, st->dyg, xd, N);
    if (!dx) return;
    pb_grow(e, &ls->dxd, &ls->cap_dxd, nx);
    pb_gemm(e, 0, 0, N, in, ls->r, ls->s, gh, ls->r, a->params[0].data, in, 0.0f, ls->dxd, in);
    pb_axpy(e, st->dyg, -1.0f, dy, ny); // (g - 1) ⊙ dy
    pb_gemm(e, 0, 0, N, in, out, 1.0f, st->dyg, out, a->lin->w->data, in, 1.0f, ls->dxd, in);
    if (ls->dropped) pb_dropout_backward(e, dx, ls->dxd, ls->mask, nx);
    else pb_axpy(e, dx, 1.0f, ls->dxd, nx);
}

// W (out,in) <- diag(g) (W + s B A); b unchanged (host: merge runs once).
static void dora_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    (void)b;
    dora_state *st = a->state;
    pb_lora_state *ls = &st->lora;
    int in = ls->in, out = ls->out;
    size_t nw = (size_t)out * in;
    dora_scale(a, e); // from the base weight under the adapter, as forward
    float *hW = pb_xmalloc(nw * sizeof(float)), *hg = pb_xmalloc((size_t)out * sizeof(float));
    pb_download(e, hW, st->Wd, nw);
    pb_download(e, hg, st->g, (size_t)out);
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) hW[(size_t)o * in + i] *= hg[o];
    pb_upload(e, W, hW, nw);
    free(hW);
    free(hg);
}

static void dora_free(pb_adapter *a, pb_engine *e) {
    dora_state *st = a->state;
    pb_lora_state *ls = &st->lora;
    pb_free(e, ls->xd); pb_free(e, ls->mask); pb_free(e, ls->h); pb_free(e, ls->gh); pb_free(e, ls->dxd);
    pb_free(e, st->Wd); pb_free(e, st->wn); pb_free(e, st->g); pb_free(e, st->u); pb_free(e, st->zb);
    pb_free(e, st->dyg); pb_free(e, st->ones); pb_free(e, st->t); pb_free(e, st->cs);
    pb_adapter_free_common(e, a);
}

const pb_adapter_vtbl pb_dora_vtbl = {"dora", 1, dora_forward, dora_backward, dora_merge, dora_free, NULL};
const pb_adapter_vtbl pb_dora_drop_vtbl = {"dora-dropout", 0, dora_forward, dora_drop_backward, dora_merge,
                                           dora_free, NULL};

pb_adapter *pb_dora_create(pb_engine *e, pb_linear *l, int r, float s, float p, int index) {
    pb_adapter *a = pb_adapter_new(p > 0.0f ? &pb_dora_drop_vtbl : &pb_dora_vtbl, l, 3, sizeof(dora_state));
    dora_state *st = a->state;
    pb_lora_state *ls = &st->lora;
    ls->r = r; ls->in = l->in; ls->out = l->out; ls->index = index; ls->p = p; ls->s = s;
    pb_adapter_param(e, a, 0, "lora_A.weight", 2, (int64_t[]){r, l->in}, 0);
    pb_adapter_param(e, a, 1, "lora_B.weight", 2, (int64_t[]){l->out, r}, 0);
    pb_param *m = pb_adapter_param(e, a, 2, "lora_magnitude_vector", 1, (int64_t[]){l->out}, 0);
    st->Wd = pb_alloc(e, (size_t)l->out * l->in);
    st->wn = pb_alloc(e, (size_t)l->out);
    st->g = pb_alloc(e, (size_t)l->out);
    st->t = pb_alloc(e, (size_t)l->out);
    st->cs = pb_alloc(e, (size_t)l->out);
    pb_row_norms(e, m->data, l->w->data, l->out, l->in); // m = ||W||_row: B = 0
    l->adapter = a;
    return a;
}

static pb_status dora_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                             char *err, size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    int r = pb_mc_int(c, "rank");
    pb_adapter *a = pb_dora_create(e, l, r, pb_lora_scaling(c, r), (float)pb_mc_num(c, "dropout"), site->index);
    pb_lora_init_A(e, a->params[0].data, r, l->in, !strcmp(pb_mc_str(c, "init"), "gaussian"),
                   pb_method_seed(c->seed, site->index, 0xa));
    return PB_OK;
}

// LoRA's A, B plus m (out); forward: LoRA's 2 r (in + out), the direction's norm per forward
// (2 r in out + 2 in out, amortised over the batch: not per token) and g ⊙ u (out): costed per
// token as LoRA + 2 out.
static double dora_site_params(const pb_method_config *c, const char *role, int in, int out) {
    return pb_lora_site_params(c, role, in, out) + out;
}
static double dora_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    return pb_lora_site_flops(c, role, in, out) + 2.0 * out;
}

static const pb_method_opt dora_opts[] = {
    {"rank", PB_OPT_INT, "8", 1, PB_OPT_RANK_MAX, 0, NULL, "r: rows of A, columns of B"},
    PB_OPT_LORA_ALPHA,
    PB_OPT_LORA_DROPOUT,
    PB_OPT_LORA_RSLORA,
    {"init", PB_OPT_ENUM, "kaiming", 0, 0, 0, "kaiming|gaussian",
     "A's init: kaiming_uniform(a=sqrt 5) (PEFT default) or N(0, 1/r^2); B = 0; m = ||W||_row"},
    PB_OPT_TARGETS("query,value"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_dora = {
    .name = "dora",
    .summary = "DoRA: y = m / ||W + s B A||_row * (W + s B A) x + b, m, A, B trainable",
    .reference = "peft LoraConfig(use_dora=True) (Liu et al. 2024)",
    .opts = dora_opts,
    .nopts = (int)(sizeof dora_opts / sizeof dora_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_params = dora_site_params,
    .site_flops = dora_site_flops,
    .attach = dora_attach,
    .export_peft = pb_lora_export_peft,
};
