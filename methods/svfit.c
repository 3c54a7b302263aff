// svfit.c: SVFit (papers.md §3): W = U diag(S) V^T; trainable sigma (r) initialised to S[:r];
// frozen U_r (out,r), V_r^T (r,in) and the residual W_e = W - U_r diag(S_r) V_r^T, which
// replaces the base weight (exactly 0 at r = min(out,in)). Forward:
//   y = W_e x + b  (the base linear)  +  U_r (sigma * (V_r^T x))  (this adapter).
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

// y (N,out) += ((x V_r) * sigma) U_r^T; saves h = x V_r (N,r).
static void svfit_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train,
                          uint64_t seed) {
    (void)train; (void)seed;
    pb_svfit_state *st = a->state;
    size_t nr = (size_t)N * st->r;
    pb_grow(e, &st->h, &st->cap_h, nr);
    pb_grow(e, &st->gu, &st->cap_gu, nr);
    pb_linear_forward(e, st->h, x, st->Vt, NULL, N, st->in, st->r);           // h (N,r)
    pb_mul_cols(e, st->gu, st->h, a->params[0].data, N, st->r);               // h*sigma
    pb_gemm(e, 0, 1, N, st->out, st->r, 1.0f, st->gu, st->r, st->U, st->r, 1.0f, y, st->out);
}

// gu = dy U_r (N,r); dsigma += sum_n h*gu; dx += (gu*sigma) V_r^T.
static void svfit_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    (void)x;
    pb_svfit_state *st = a->state;
    pb_param *sg = &a->params[0];
    pb_gemm(e, 0, 0, N, st->r, st->out, 1.0f, dy, st->out, st->U, st->r, 0.0f, st->gu, st->r);
    if (sg->grad) pb_mul_cols_reduce(e, sg->grad, st->h, st->gu, N, st->r);
    if (dx) {
        pb_mul_cols(e, st->gu, st->gu, sg->data, N, st->r);
        pb_gemm(e, 0, 0, N, st->in, st->r, 1.0f, st->gu, st->r, st->Vt, st->in, 1.0f, dx, st->in);
    }
}

// W (out,in) = W_e + U_r diag(sigma) V_r^T.
static void svfit_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    (void)b;
    pb_svfit_state *st = a->state;
    float *Us = pb_alloc(e, (size_t)st->out * st->r);
    pb_mul_cols(e, Us, st->U, a->params[0].data, st->out, st->r);
    pb_gemm(e, 0, 0, st->out, st->in, st->r, 1.0f, Us, st->r, st->Vt, st->in, 1.0f, W, st->in);
    pb_free(e, Us);
}

static void svfit_free(pb_adapter *a, pb_engine *e) {
    pb_svfit_state *st = a->state;
    pb_free(e, st->U); pb_free(e, st->Vt); pb_free(e, st->S0);
    pb_free(e, st->h); pb_free(e, st->gu);
    pb_adapter_free_common(e, a);
}

const pb_adapter_vtbl pb_svfit_vtbl = {"svfit", 0, svfit_forward, svfit_backward, svfit_merge, svfit_free, NULL};

static pb_status svfit_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                             char *err, size_t errlen) {
    (void)site;
    int r = pb_mc_int(c, "rank"), m = l->out, n = l->in, k = PB_MIN(m, n);
    PB_CHECK(r >= 1 && r <= k, "svfit rank %d outside the size rule for %s", r, l->name); // pb_method_apply checked
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    float *W = pb_xmalloc((size_t)m * n * sizeof(float));
    float *U = pb_xmalloc((size_t)m * k * sizeof(float));
    float *S = pb_xmalloc((size_t)k * sizeof(float));
    float *Vt = pb_xmalloc((size_t)k * n * sizeof(float));
    pb_download(e, W, l->w->data, (size_t)m * n);
    pb_status stt = pb_svd_full(W, m, n, U, S, Vt, err, errlen);
    if (stt != PB_OK) { free(W); free(U); free(S); free(Vt); return stt; }
    // U_r: the first r columns of U (m,k) -> contiguous (m,r); V_r^T = the first r rows of Vt.
    float *Ur = pb_xmalloc((size_t)m * r * sizeof(float));
    for (int i = 0; i < m; i++) memcpy(Ur + (size_t)i * r, U + (size_t)i * k, (size_t)r * sizeof(float));

    pb_adapter *a = pb_adapter_new(&pb_svfit_vtbl, l, 1, sizeof(pb_svfit_state));
    pb_svfit_state *st = a->state;
    st->r = r; st->in = n; st->out = m;
    // sigma: no weight decay by default (decay would shrink singular values, papers.md §3.5)
    pb_param *sg = pb_adapter_param(e, a, 0, "svfit_sigma", 1, (int64_t[]){r}, 1);
    st->U = pb_alloc(e, (size_t)m * r);
    st->Vt = pb_alloc(e, (size_t)r * n);
    st->S0 = pb_alloc(e, (size_t)r);
    pb_upload(e, st->U, Ur, (size_t)m * r);
    pb_upload(e, st->Vt, Vt, (size_t)r * n);
    pb_upload(e, st->S0, S, (size_t)r);
    pb_upload(e, sg->data, S, (size_t)r);
    if (r == k) {
        pb_zero(e, l->w->data, (size_t)m * n); // full spectrum: W_e = 0 exactly
    } else {
        float *Us = pb_alloc(e, (size_t)m * r);
        pb_mul_cols(e, Us, st->U, st->S0, m, r);
        pb_gemm(e, 0, 0, m, n, r, -1.0f, Us, r, st->Vt, n, 1.0f, l->w->data, n); // W_e = W - U S V^T
        pb_free(e, Us);
    }
    l->adapter = a;
    free(W); free(U); free(S); free(Vt); free(Ur);
    return PB_OK;
}

static int svfit_rank_limit(const pb_method_config *c, int in, int out) {
    (void)c;
    return PB_MIN(in, out);
}
// sigma (r); forward x V_r (in r) then (h*sigma) U_r^T (r out): 2 r (in + out) + r per token.
static double svfit_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)role; (void)in; (void)out;
    return pb_mc_int(c, "rank");
}
static double svfit_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    double r = pb_mc_int(c, "rank");
    return 2.0 * r * (in + out) + r;
}

static const pb_method_opt svfit_opts[] = {
    {"rank", PB_OPT_INT, "8", 1, PB_OPT_RANK_MAX, 0, NULL, "r top singular values that train (<= min(out,in))"},
    PB_OPT_TARGETS("query,value"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_svfit = {
    .name = "svfit",
    .summary = "SVFit: W = W_e + U_r diag(sigma) V_r^T, only the top-r singular values sigma train",
    .reference = "arXiv 2409.05926; own PyTorch module + finite differences",
    .opts = svfit_opts,
    .nopts = (int)(sizeof svfit_opts / sizeof svfit_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .rank_limit = svfit_rank_limit,
    .site_params = svfit_site_params,
    .site_flops = svfit_site_flops,
    .attach = svfit_attach,
};
