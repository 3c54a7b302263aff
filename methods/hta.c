// hta.c: HTA (arXiv 2410.22952; papers.md §5): a Householder-transform adaptation of a D × D map,
//   T = H_l diag(d) H_r + W_downᵀ W_upᵀ,   H = I − v vᵀ (as printed: no 2, no normalisation),
// in the paper's row-vector convention (u ↦ u T), with v_l, v_r, d ∈ R^D and a rank-D′ pair
// W_down (D′ × D), W_up (D × D′) (peftbench's layout, LoRA's A and B). Applied to a row u in
// O(D) steps without forming T: a = u − (u·v_l) v_lᵀ; b = a ⊙ d; u T = b − (b·v_r) v_rᵀ + (u W_downᵀ) W_upᵀ.
//   form "lora" (Eq. 6):    y = x Wᵀ + b + x T      (square linears only: D = in = out)
//   form "adapter" (Eq. 7): y = z + z T, z = x Wᵀ + b (residual form; D = out; the layer rewrites dy)
// Init (papers.md §5.3 decision): d = 0 and W_up = 0 (ΔW = 0 at step 0), W_down kaiming-uniform,
// v_l, v_r random directions with ‖v‖² = 2 (exact reflections at init). Per module (3 + 2D′) D
// parameters. Merge: lora W += Tᵀ; adapter W ← (I + T)ᵀ W, b ← (I + T)ᵀ b.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

typedef struct {
    int D, r, adapter;
    float *u;            // (N,D) saved input of the map (adapter form: z; lora form: a copy of x)
    float *s1, *s2;      // (N) u·v_l, b·v_r
    float *a, *b;        // (N,D) after H_l, after diag(d)
    float *h;            // (N,r) u W_downᵀ
    float *g1, *g2;      // (N) scratch
    float *ga, *gb;      // (N,D) scratch
    float *gh, *gu;      // (N,r), (N,D) scratch
    size_t cap_u, cap_s1, cap_s2, cap_a, cap_b, cap_h, cap_g1, cap_g2, cap_ga, cap_gb, cap_gh, cap_gu;
} hta_state;

enum { P_VL, P_VR, P_D, P_DOWN, P_UP };

// out (N,D) += u T; saves what backward needs (u copied first: it may alias out).
static void hta_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    (void)train; (void)seed;
    hta_state *st = a->state;
    int D = st->D, r = st->r;
    size_t nd = (size_t)N * D;
    const float *vl = a->params[P_VL].data, *vr = a->params[P_VR].data, *d = a->params[P_D].data;
    pb_grow(e, &st->u, &st->cap_u, nd);
    pb_grow(e, &st->s1, &st->cap_s1, (size_t)N);
    pb_grow(e, &st->s2, &st->cap_s2, (size_t)N);
    pb_grow(e, &st->a, &st->cap_a, nd);
    pb_grow(e, &st->b, &st->cap_b, nd);
    pb_copy(e, st->u, st->adapter ? y : x, nd);
    pb_gemm(e, 0, 0, N, 1, D, 1.0f, st->u, D, vl, 1, 0.0f, st->s1, 1);          // s1 = u v_l
    pb_copy(e, st->a, st->u, nd);
    pb_gemm(e, 0, 0, N, D, 1, -1.0f, st->s1, 1, vl, D, 1.0f, st->a, D);         // a = u − s1 v_lᵀ
    pb_mul_cols(e, st->b, st->a, d, N, D);                                       // b = a ⊙ d
    pb_gemm(e, 0, 0, N, 1, D, 1.0f, st->b, D, vr, 1, 0.0f, st->s2, 1);          // s2 = b v_r
    pb_add(e, y, y, st->b, nd);
    pb_gemm(e, 0, 0, N, D, 1, -1.0f, st->s2, 1, vr, D, 1.0f, y, D);             // += b − s2 v_rᵀ
    if (r) {
        pb_grow(e, &st->h, &st->cap_h, (size_t)N * r);
        pb_linear_forward(e, st->h, st->u, a->params[P_DOWN].data, NULL, N, D, r);
        pb_gemm(e, 0, 1, N, D, r, 1.0f, st->h, r, a->params[P_UP].data, r, 1.0f, y, D);
    }
}

// dy (N,D): gradient wrt the map's output. Every read of dy comes before du is written (the
// adapter form's du is dy itself, the layer's private copy).
static void hta_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    (void)x;
    hta_state *st = a->state;
    int D = st->D, r = st->r;
    size_t nd = (size_t)N * D;
    pb_param *vl = &a->params[P_VL], *vr = &a->params[P_VR], *d = &a->params[P_D];
    float *du = st->adapter ? dy : dx;
    pb_grow(e, &st->g1, &st->cap_g1, (size_t)N);
    pb_grow(e, &st->g2, &st->cap_g2, (size_t)N);
    pb_grow(e, &st->ga, &st->cap_ga, nd);
    pb_grow(e, &st->gb, &st->cap_gb, nd);
    pb_grow(e, &st->gu, &st->cap_gu, nd);
    pb_zero(e, st->gu, nd); // the gradient wrt u, added to du at the end
    if (r) {
        pb_param *Wd = &a->params[P_DOWN], *Wu = &a->params[P_UP];
        pb_grow(e, &st->gh, &st->cap_gh, (size_t)N * r);
        if (Wu->grad) pb_gemm(e, 1, 0, D, r, N, 1.0f, dy, D, st->h, r, 1.0f, Wu->grad, r);     // += dyᵀ h
        pb_gemm(e, 0, 0, N, r, D, 1.0f, dy, D, Wu->data, r, 0.0f, st->gh, r);                  // gh = dy W_up
        pb_linear_backward(e, st->gu, Wd->grad, NULL, st->gh, st->u, Wd->data, N, D, r);
    }
    // out = b − s2 v_rᵀ: db = dy − (dy v_r) v_rᵀ; dv_r = −(bᵀ (dy v_r) + dyᵀ s2)
    pb_gemm(e, 0, 0, N, 1, D, 1.0f, dy, D, vr->data, 1, 0.0f, st->g2, 1);
    pb_copy(e, st->gb, dy, nd);
    pb_gemm(e, 0, 0, N, D, 1, -1.0f, st->g2, 1, vr->data, D, 1.0f, st->gb, D);
    if (vr->grad) {
        pb_gemm(e, 1, 0, D, 1, N, -1.0f, st->b, D, st->g2, 1, 1.0f, vr->grad, 1);
        pb_gemm(e, 1, 0, D, 1, N, -1.0f, dy, D, st->s2, 1, 1.0f, vr->grad, 1);
    }
    // b = a ⊙ d
    if (d->grad) pb_mul_cols_reduce(e, d->grad, st->a, st->gb, N, D);
    pb_mul_cols(e, st->ga, st->gb, d->data, N, D);
    // a = u − s1 v_lᵀ: du += da − (da v_l) v_lᵀ; dv_l = −(uᵀ (da v_l) + daᵀ s1)
    pb_gemm(e, 0, 0, N, 1, D, 1.0f, st->ga, D, vl->data, 1, 0.0f, st->g1, 1);
    if (vl->grad) {
        pb_gemm(e, 1, 0, D, 1, N, -1.0f, st->u, D, st->g1, 1, 1.0f, vl->grad, 1);
        pb_gemm(e, 1, 0, D, 1, N, -1.0f, st->ga, D, st->s1, 1, 1.0f, vl->grad, 1);
    }
    pb_add(e, st->gu, st->gu, st->ga, nd);
    pb_gemm(e, 0, 0, N, D, 1, -1.0f, st->g1, 1, vl->data, D, 1.0f, st->gu, D);
    if (du) pb_add(e, du, du, st->gu, nd);
}

// T (D,D) on the host, row-major, in double: H_l diag(d) H_r + W_downᵀ W_upᵀ.
static double *hta_matrix(pb_adapter *a, pb_engine *e) {
    hta_state *st = a->state;
    int D = st->D, r = st->r;
    float *h[5] = {NULL};
    for (int k = 0; k < a->nparams; k++) {
        h[k] = pb_xmalloc(a->params[k].numel * sizeof(float));
        pb_download(e, h[k], a->params[k].data, a->params[k].numel);
    }
    const float *vl = h[P_VL], *vr = h[P_VR], *d = h[P_D];
    double *T = pb_xcalloc((size_t)D * D, sizeof(double));
    // (I − v_l v_lᵀ) diag(d) (I − v_r v_rᵀ): M = diag(d) − v_l (v_l ⊙ d)ᵀ, then M − (M v_r) v_rᵀ
    double *Mv = pb_xcalloc((size_t)D, sizeof(double));
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) T[(size_t)i * D + j] = (i == j ? d[i] : 0.0) - (double)vl[i] * vl[j] * d[j];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) Mv[i] += T[(size_t)i * D + j] * vr[j];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) T[(size_t)i * D + j] -= Mv[i] * vr[j];
    for (int k = 0; k < r; k++) // W_downᵀ W_upᵀ: T[i,j] += Σ_k Wd[k,i] Wu[j,k]
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) T[(size_t)i * D + j] += (double)h[P_DOWN][(size_t)k * D + i] * h[P_UP][(size_t)j * r + k];
    free(Mv);
    for (int k = 0; k < a->nparams; k++) free(h[k]);
    return T;
}

// lora: W (D,D) += Tᵀ. adapter: W (out,in) ← (I + T)ᵀ W, b ← (I + T)ᵀ b (host: merge runs once).
static void hta_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    hta_state *st = a->state;
    int D = st->D, in = a->lin->in;
    double *T = hta_matrix(a, e);
    size_t nw = (size_t)D * in;
    float *hW = pb_xmalloc(nw * sizeof(float));
    pb_download(e, hW, W, nw);
    if (!st->adapter) {
        for (int o = 0; o < D; o++)
            for (int i = 0; i < D; i++) hW[(size_t)o * D + i] += (float)T[(size_t)i * D + o];
    } else {
        double *col = pb_xmalloc((size_t)D * sizeof(double));
        for (int i = 0; i < in; i++) { // column i of W: w_new[o] = w[o] + Σ_j T[j,o] w[j]
            for (int o = 0; o < D; o++) {
                double acc = hW[(size_t)o * in + i];
                for (int j = 0; j < D; j++) acc += T[(size_t)j * D + o] * hW[(size_t)j * in + i];
                col[o] = acc;
            }
            for (int o = 0; o < D; o++) hW[(size_t)o * in + i] = (float)col[o];
        }
        if (b) {
            float *hb = pb_xmalloc((size_t)D * sizeof(float));
            pb_download(e, hb, b, (size_t)D);
            for (int o = 0; o < D; o++) {
                double acc = hb[o];
                for (int j = 0; j < D; j++) acc += T[(size_t)j * D + o] * hb[j];
                col[o] = acc;
            }
            for (int o = 0; o < D; o++) hb[o] = (float)col[o];
            pb_upload(e, b, hb, (size_t)D);
            free(hb);
        }
        free(col);
    }
    pb_upload(e, W, hW, nw);
    free(hW);
    free(T);
}

static void hta_free(pb_adapter *a, pb_engine *e) {
    hta_state *st = a->state;
    pb_free(e, st->u); pb_free(e, st->s1); pb_free(e, st->s2); pb_free(e, st->a); pb_free(e, st->b);
    pb_free(e, st->h); pb_free(e, st->g1); pb_free(e, st->g2); pb_free(e, st->ga); pb_free(e, st->gb);
    pb_free(e, st->gh); pb_free(e, st->gu);
    pb_adapter_free_common(e, a);
}

static const pb_adapter_vtbl hta_lora_vtbl = {"hta", 0, hta_forward, hta_backward, hta_merge, hta_free, NULL};
static const pb_adapter_vtbl hta_adapter_vtbl = {"hta-adapter", 1, hta_forward, hta_backward, hta_merge, hta_free,
                                                 NULL};

static int adapter_form(const pb_method_config *c) {
    return !strcmp(pb_mc_str(c, "form"), "adapter");
}

// A random direction scaled to ‖v‖² = 2 (an exact reflection at init).
static void init_reflection(pb_engine *e, float *v, int D, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    float *h = pb_xmalloc((size_t)D * sizeof(float));
    double n2 = 0;
    for (int i = 0; i < D; i++) {
        h[i] = pb_rng_normal(&r);
        n2 += (double)h[i] * h[i];
    }
    float s = (float)(sqrt(2.0) / sqrt(n2));
    for (int i = 0; i < D; i++) h[i] *= s;
    pb_upload(e, v, h, (size_t)D);
    free(h);
}

static pb_status hta_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site, char *err,
                            size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    int adapter = adapter_form(c), D = l->out, r = pb_mc_int(c, "rank");
    if (!adapter && l->in != l->out)
        return pb_errf(PB_ERR_ARG, err, errlen, "targets: hta form lora needs a square linear, %s is %d -> %d",
                       l->name, l->in, l->out);
    pb_adapter *a = pb_adapter_new(adapter ? &hta_adapter_vtbl : &hta_lora_vtbl, l, r ? 5 : 3, sizeof(hta_state));
    hta_state *st = a->state;
    st->D = D; st->r = r; st->adapter = adapter;
    pb_param *vl = pb_adapter_param(e, a, P_VL, "hta_v_left", 1, (int64_t[]){D}, 0);
    pb_param *vr = pb_adapter_param(e, a, P_VR, "hta_v_right", 1, (int64_t[]){D}, 0);
    pb_adapter_param(e, a, P_D, "hta_d", 1, (int64_t[]){D}, 0); // d = 0
    init_reflection(e, vl->data, D, pb_method_seed(c->seed, site->index, 0x417a));
    init_reflection(e, vr->data, D, pb_method_seed(c->seed, site->index, 0x417b));
    if (r) {
        pb_param *Wd = pb_adapter_param(e, a, P_DOWN, "hta_down", 2, (int64_t[]){r, D}, 0);
        pb_adapter_param(e, a, P_UP, "hta_up", 2, (int64_t[]){D, r}, 0); // W_up = 0
        pb_lora_init_A(e, Wd->data, r, D, 0, pb_method_seed(c->seed, site->index, 0x417c));
    }
    l->adapter = a;
    return PB_OK;
}

static const char *hta_site_check(const pb_method_config *c, int in, int out) {
    return !adapter_form(c) && in != out ? "form lora needs a square linear (in = out); form adapter works on any" : NULL;
}
// (3 + 2 D′) D; forward per token: 3 rank-1 passes of 2D, the diagonal, 4 D D′.
static double hta_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)role; (void)in;
    return (3.0 + 2.0 * pb_mc_int(c, "rank")) * out;
}
static double hta_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)role; (void)in;
    return 9.0 * out + 4.0 * out * pb_mc_int(c, "rank");
}
static void hta_resolve(pb_method_config *c) {
    if (!pb_mc_set_by_user(c, "targets") && adapter_form(c)) pb_mc_put_str(c, "targets", "output");
}

static const pb_method_opt hta_opts[] = {
    {"rank", PB_OPT_INT, "1", 0, PB_OPT_RANK_MAX, 0, NULL, "D': width of the low-rank pair beside W_HTA (0: none)"},
    {"form", PB_OPT_ENUM, "lora", 0, 0, 0, "lora|adapter",
     "lora: y = x W^T + x T (Eq. 6, square linears); adapter: y = z + z T on the output z (Eq. 7)"},
    PB_OPT_TARGETS("query,key,value,attention.output"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_hta = {
    .name = "hta",
    .summary = "HTA: W_HTA = (I - v_l v_l^T) diag(d) (I - v_r v_r^T) plus a rank-D' pair, in LoRA or adapter form",
    .reference = "PyTorch module from arXiv 2410.22952 Eq. 3-7 (papers.md 5) + finite differences",
    .opts = hta_opts,
    .nopts = (int)(sizeof hta_opts / sizeof hta_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .resolve = hta_resolve,
    .site_check = hta_site_check,
    .site_params = hta_site_params,
    .site_flops = hta_site_flops,
    .attach = hta_attach,
};
