// test_ops_grad.c: every CPU op's forward against a double-precision replica written here, and
// every backward against central finite differences of L = sum(out * R) on that replica.
// Tolerances: forward ||f32 - f64|| / ||f64|| <= 1e-5; backward (analytic f32 with dout = R)
// vs FD (f64, h = 1e-6) ||a - b|| / ||b|| <= 1e-4.
#include "test_ops_util.h"
#include "engine/backend.h" // pb_dropout_keep: the replica shares the keep test

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define FD_H 1e-6

static pb_engine *E;
static pb_rng RNG;

// Checks forward (out_f vs replica at x) and gradient (g_f vs FD of the replica).
static void check_op(const char *name, t_fwd_fn f, const void *ctx, const double *x, size_t nx,
                     const float *out_f, size_t nout, const double *R, const float *g_f) {
    double *out_d = pb_xmalloc(nout * sizeof(double));
    f(ctx, x, out_d);
    double ef = t_rel_err(out_f, out_d, nout);
    T_CHECK(ef <= FWD_TOL, "%s forward rel err %.3g > %g", name, ef, FWD_TOL);
    double eg = -1;
    if (g_f) {
        double *g_d = pb_xmalloc(nx * sizeof(double));
        t_fd_grad(f, ctx, x, nx, R, nout, FD_H, g_d);
        eg = t_rel_err(g_f, g_d, nx);
        T_CHECK(eg <= GRAD_TOL, "%s backward rel err %.3g > %g", name, eg, GRAD_TOL);
        free(g_d);
    }
    printf("  %-28s fwd %.2e  grad %.2e\n", name, ef, eg);
    free(out_d);
}

// Random host vector of n floats in [lo,hi) and its double copy appended to x at *off.
static float *rnd(size_t n, float lo, float hi, double *x, size_t *off) {
    float *h = pb_xmalloc(n * sizeof(float));
    t_rand_vec(&RNG, h, n, lo, hi);
    if (x) {
        t_widen(x + *off, h, n);
        *off += n;
    }
    return h;
}
static double *rnd_d(size_t n) {
    double *r = pb_xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) r[i] = 2.0 * pb_rng_uniform(&RNG) - 1.0;
    return r;
}
static float *narrow(const double *x, size_t n) {
    float *h = pb_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = (float)x[i];
    return h;
}
// Concatenates engine grads into host float g at offset *off.
static void gather(float *g, size_t *off, const float *dev, size_t n) {
    pb_download(E, g + *off, dev, n);
    *off += n;
}

// ----------------------------------------------------------------------------
// linear: x = [inp (N,C), w (OC,C), bias (OC)]

typedef struct { int N, C, OC, has_bias; } lin_ctx;
static void lin_d(const void *vc, const double *x, double *out) {
    const lin_ctx *c = vc;
    const double *inp = x, *w = x + c->N * c->C, *b = w + c->OC * c->C;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->OC; o++) {
            double s = c->has_bias ? b[o] : 0.0;
            for (int k = 0; k < c->C; k++) s += inp[n * c->C + k] * w[o * c->C + k];
            out[n * c->OC + o] = s;
        }
}

static void test_linear(int has_bias, int null_dw) {
    lin_ctx c = {7, 5, 4, has_bias};
    size_t ni = c.N * c.C, nw = c.OC * c.C, nb = has_bias ? c.OC : 0, nx = ni + nw + nb,
           no = c.N * c.OC, off = 0;
    double *x = pb_xmalloc(nx * sizeof(double));
    float *hi = rnd(ni, -1, 1, x, &off), *hw = rnd(nw, -1, 1, x, &off);
    float *hb = has_bias ? rnd(nb, -1, 1, x, &off) : NULL;
    float *inp = t_to_dev(E, hi, ni), *w = t_to_dev(E, hw, nw), *b = hb ? t_to_dev(E, hb, nb) : NULL;
    float *out = pb_alloc(E, no);
    pb_linear_forward(E, out, inp, w, b, c.N, c.C, c.OC);
    float *out_h = t_to_host(E, out, no);
    double *R = rnd_d(no);
    float *Rf = narrow(R, no);
    t_widen(R, Rf, no); // R exactly representable in float
    float *dout = t_to_dev(E, Rf, no);
    float *dinp = pb_alloc(E, ni), *dw = pb_alloc(E, nw), *db = has_bias ? pb_alloc(E, nb) : NULL;
    pb_fill(E, dw, 7.0f, nw);
    pb_linear_backward(E, dinp, null_dw ? NULL : dw, db, dout, inp, w, c.N, c.C, c.OC);
    float *g = pb_xcalloc(nx, sizeof(float));
    size_t go = 0;
    gather(g, &go, dinp, ni);
    if (null_dw) {
        float *dwh = t_to_host(E, dw, nw);
        for (size_t i = 0; i < nw; i++) T_CHECK(dwh[i] == 7.0f, "linear: dw touched with NULL dw");
        free(dwh);
        // fill the w-slot with the FD values so only dinp/db are compared: compare separately
        double *gd = pb_xmalloc(nx * sizeof(double));
        t_fd_grad(lin_d, &c, x, nx, R, no, FD_H, gd);
        double e1 = t_rel_err(g, gd, ni);
        T_CHECK(e1 <= GRAD_TOL, "linear(dw=NULL) dinp rel err %.3g", e1);
        if (has_bias) {
            float *dbh = t_to_host(E, db, nb);
            double e2 = t_rel_err(dbh, gd + ni + nw, nb);
            T_CHECK(e2 <= GRAD_TOL, "linear(dw=NULL) dbias rel err %.3g", e2);
            free(dbh);
        }
        printf("  %-28s grad(dinp) %.2e\n", "linear dw=NULL", e1);
        free(gd);
    } else {
        // dw started at 7: subtract to test accumulation and the value at once
        float *dwh = t_to_host(E, dw, nw);
        for (size_t i = 0; i < nw; i++) g[go + i] = dwh[i] - 7.0f;
        go += nw;
        free(dwh);
        if (has_bias) gather(g, &go, db, nb);
        check_op(has_bias ? "linear+bias" : "linear", lin_d, &c, x, nx, out_h, no, R, g);
    }
    pb_free(E, inp); pb_free(E, w); pb_free(E, b); pb_free(E, out); pb_free(E, dout);
    pb_free(E, dinp); pb_free(E, dw); pb_free(E, db);
    free(x); free(hi); free(hw); free(hb); free(out_h); free(R); free(Rf); free(g);
}

// gemm: every transpose combination with padded leading dimensions, alpha and beta.
// Sizes: a tiny single-call case and two cases above the threading cutoff (split over rows when
// M >= N, over columns otherwise).
static void test_gemm_size(int M, int N, int K) {
    const int pad = 3;
    const float alpha = 0.7f, beta = -1.3f;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
            int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
            float *A = rnd((size_t)ar * lda, -1, 1, NULL, NULL), *B = rnd((size_t)br * ldb, -1, 1, NULL, NULL);
            float *Cm = rnd((size_t)M * ldc, -1, 1, NULL, NULL);
            double *ref = pb_xmalloc((size_t)M * ldc * sizeof(double));
            for (int i = 0; i < M; i++)
                for (int j = 0; j < ldc; j++) {
                    if (j >= N) { ref[i * ldc + j] = Cm[i * ldc + j]; continue; }
                    double s = 0;
                    for (int k = 0; k < K; k++) {
                        double a = ta ? A[k * lda + i] : A[i * lda + k];
                        double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                        s += a * b;
                    }
                    ref[i * ldc + j] = alpha * s + beta * (double)Cm[i * ldc + j];
                }
            float *dA = t_to_dev(E, A, (size_t)ar * lda), *dB = t_to_dev(E, B, (size_t)br * ldb);
            float *dC = t_to_dev(E, Cm, (size_t)M * ldc);
            pb_gemm(E, ta, tb, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
            float *hC = t_to_host(E, dC, (size_t)M * ldc);
            double err = t_rel_err(hC, ref, (size_t)M * ldc);
            T_CHECK(err <= FWD_TOL, "gemm ta=%d tb=%d rel err %.3g", ta, tb, err);
            printf("  gemm %3dx%3dx%3d ta=%d tb=%d   fwd %.2e\n", M, N, K, ta, tb, err);
            pb_free(E, dA); pb_free(E, dB); pb_free(E, dC);
            free(A); free(B); free(Cm); free(ref); free(hC);
        }
}

// ----------------------------------------------------------------------------
// patches: x = img (B,Cin,H,W); out = cols (B,NP,Cin*P*P)

typedef struct { int B, Cin, H, W, P; } pat_ctx;
static void pat_d(const void *vc, const double *x, double *out) {
    const pat_ctx *c = vc;
    int GW = c->W / c->P, NP = (c->H / c->P) * GW, K = c->Cin * c->P * c->P;
    for (int b = 0; b < c->B; b++)
        for (int p = 0; p < NP; p++)
            for (int ci = 0; ci < c->Cin; ci++)
                for (int py = 0; py < c->P; py++)
                    for (int px = 0; px < c->P; px++) {
                        int y = (p / GW) * c->P + py, xx = (p % GW) * c->P + px;
                        out[((size_t)b * NP + p) * K + (ci * c->P + py) * c->P + px] =
                            x[(((size_t)b * c->Cin + ci) * c->H + y) * c->W + xx];
                    }
}
static void test_patches(void) {
    pat_ctx c = {2, 3, 6, 4, 2};
    size_t nx = (size_t)c.B * c.Cin * c.H * c.W, no = nx, off = 0;
    double *x = pb_xmalloc(nx * sizeof(double));
    float *hi = rnd(nx, -1, 1, x, &off);
    float *img = t_to_dev(E, hi, nx), *cols = pb_alloc(E, no), *dimg = pb_alloc(E, nx);
    pb_patches_forward(E, cols, img, c.B, c.Cin, c.H, c.W, c.P);
    float *oh = t_to_host(E, cols, no);
    double *R = rnd_d(no);
    float *Rf = narrow(R, no);
    t_widen(R, Rf, no);
    float *dout = t_to_dev(E, Rf, no);
    pb_patches_backward(E, dimg, dout, c.B, c.Cin, c.H, c.W, c.P);
    float *g = t_to_host(E, dimg, nx);
    check_op("patches", pat_d, &c, x, nx, oh, no, R, g);
    pb_free(E, img); pb_free(E, cols); pb_free(E, dimg); pb_free(E, dout);
    free(x); free(hi); free(oh); free(R); free(Rf); free(g);
}

// ----------------------------------------------------------------------------
// vit tokens: x = [patch (B,T-1,C), cls (C), pos (T,C)]

typedef struct { int B, T, C; } btc_ctx;
static void vt_d(const void *vc, const double *x, double *out) {
    const btc_ctx *c = vc;
    const double *patch = x, *cls = x + (size_t)c->B * (c->T - 1) * c->C, *pos = cls + c->C;
    for (int b = 0; b < c->B; b++)
        for (int t = 0; t < c->T; t++)
            for (int k = 0; k < c->C; k++)
                out[((size_t)b * c->T + t) * c->C + k] =
                    (t == 0 ? cls[k] : patch[((size_t)b * (c->T - 1) + t - 1) * c->C + k]) + pos[t * c->C + k];
}
static void test_vit_tokens(void) {
    btc_ctx c = {3, 5, 4};
    size_t np = (size_t)c.B * (c.T - 1) * c.C, nc = c.C, npos = (size_t)c.T * c.C, nx = np + nc + npos,
           no = (size_t)c.B * c.T * c.C, off = 0;
    double *x = pb_xmalloc(nx * sizeof(double));
    float *hp = rnd(np, -1, 1, x, &off), *hc = rnd(nc, -1, 1, x, &off), *hpos = rnd(npos, -1, 1, x, &off);
    float *p = t_to_dev(E, hp, np), *cl = t_to_dev(E, hc, nc), *pos = t_to_dev(E, hpos, npos);
    float *out = pb_alloc(E, no);
    pb_vit_tokens_forward(E, out, p, cl, pos, c.B, c.T, c.C);
    float *oh = t_to_host(E, out, no);
    double *R = rnd_d(no);
    float *Rf = narrow(R, no);
    t_widen(R, Rf, no);
    float *dout = t_to_dev(E, Rf, no);
    float *dp = pb_alloc(E, np), *dc = pb_alloc(E, nc), *dpos = pb_alloc(E, npos);
    pb_vit_tokens_backward(E, dp, dc, dpos, dout, c.B, c.T, c.C);
    float *g = pb_xmalloc(nx * sizeof(float));
    size_t go = 0;
    gather(g, &go, dp, np); gather(g, &go, dc, nc); gather(g, &go, dpos, npos);
    check_op("vit_tokens", vt_d, &c, x, nx, oh, no, R, g);
    pb_free(E, p); pb_free(E, cl); pb_free(E, pos); pb_free(E, out); pb_free(E, dout);
    pb_free(E, dp); pb_free(E, dc); pb_free(E, dpos);
    free(x); free(hp); free(hc); free(hpos); free(oh); free(R); free(Rf); free(g);
}

// ----------------------------------------------------------------------------
// embedding: x = table (rows,C), ids fixed with repeats

typedef struct { int N, C, rows; const int32_t *ids; } emb_ctx;
static void emb_d(const void *vc, const double *x, double *out) {
    const emb_ctx *c = vc;
    for (int n = 0; n < c->N; n++)
        for (int k = 0; k < c->C; k++) out[n * c->C + k] = x[c->ids[n] * c->C + k];
}
static void test_embedding(void) {
    static const int32_t ids_h[9] = {3, 0, 3, 5, 3, 1, 0, 5, 2};
    emb_ctx c = {9, 4, 6, ids_h};
    size_t nx = (size_t)c.rows * c.C, no = (size_t)c.N * c.C, off = 0;
    double *x = pb_xmalloc(nx * sizeof(double));
    float *ht = rnd(nx, -1, 1, x, &off);
    float *tab = t_to_dev(E, ht, nx), *out = pb_alloc(E, no), *dt = pb_alloc(E, nx);
    int32_t *ids = pb_alloc_i32(E, c.N);
    pb_upload_i32(E, ids, ids_h, c.N);
    pb_embedding_forward(E, out, ids, tab, c.N, c.C, c.rows);
    float *oh = t_to_host(E, out, no);
    double *R = rnd_d(no);
    float *Rf = narrow(R, no);
    t_widen(R, Rf, no);
    float *dout = t_to_dev(E, Rf, no);
    pb_embedding_backward(E, dt, dout, ids, c.N, c.C, c.rows);
    float *g = t_to_host(E, dt, nx);
    check_op("embedding (repeated ids)", emb_d, &c, x, nx, oh, no, R, g);
    pb_free(E, tab); pb_free(E, out); pb_free(E, dt); pb_free(E, ids); pb_free(E, dout);
    free(x); free(ht); free(oh); free(R); free(Rf); free(g);
}

// roberta positions: known vector (pad = 1).
static void test_positions(void) {
    const int32_t ids_h[2 * 6] = {0, 5, 6, 2, 1, 1, 0, 1, 7, 2, 1, 9};
    const int32_t want[2 * 6] = {2, 3, 4, 5, 1, 1, 2, 1, 3, 4, 1, 5};
    int32_t *ids = pb_alloc_i32(E, 12), *pos = pb_alloc_i32(E, 12), got[12];
    pb_upload_i32(E, ids, ids_h, 12);
    pb_roberta_positions(E, pos, ids, 2, 6, 1);
    pb_download_i32(E, got, pos, 12);
    for (int i = 0; i < 12; i++) T_CHECK(got[i] == want[i], "roberta pos[%d] = %d, want %d", i, got[i], want[i]);
    pb_free(E, ids); pb_free(E, pos);
}

// ----------------------------------------------------------------------------
// layernorm: x = [inp (N,C), w (C), b (C)]

typedef struct { int N, C; double eps; } ln_ctx;
static void ln_d(const void *vc, const double *x, double *out) {
    const ln_ctx *c = vc;
    const double *inp = x, *w = x + c->N * c->C, *b = w + c->C;
    for (int n = 0; n < c->N; n++) {
        const double *r = inp + n * c->C;
        double m = 0, v = 0;
        for (int k = 0; k < c->C; k++) m += r[k];
        m /= c->C;
        for (int k = 0; k < c->C; k++) v += (r[k] - m) * (r[k] - m);
        v /= c->C;
        double rs = 1.0 / sqrt(v + c->eps);
        for (int k = 0; k < c->C; k++) out[n * c->C + k] = (r[k] - m) * rs * w[k] + b[k];
    }
}
static void test_layernorm(void) {
    ln_ctx c = {6, 8, 1e-5};
    size_t ni = (size_t)c.N * c.C, nx = ni + 2 * c.C, no = ni, off = 0;
    double *x = pb_xmalloc(nx * sizeof(double));
    float *hi = rnd(ni, -2, 2, x, &off), *hw = rnd(c.C, 0.5f, 1.5f, x, &off), *hb = rnd(c.C, -1, 1, x, &off);
    float *inp = t_to_dev(E, hi, ni), *w = t_to_dev(E, hw, c.C), *b = t_to_dev(E, hb, c.C);
    float *out = pb_alloc(E, no), *mean = pb_alloc(E, c.N), *rstd = pb_alloc(E, c.N);
    pb_layernorm_forward(E, out, mean, rstd, inp, w, b, c.N, c.C, (float)c.eps);
    float *oh = t_to_host(E, out, no);
    double *R = rnd_d(no);
    float *Rf = narrow(R, no);
    t_widen(R, Rf, no);
    float *dout = t_to_dev(E, Rf, no);
    float *di = pb_alloc(E, ni), *dw = pb_alloc(E, c.C), *db = pb_alloc(E, c.C);
    pb_layernorm_backward(E, di, dw, db, dout, inp, w, mean, rstd, c.N, c.C);
    float *g = pb_xmalloc(nx * sizeof(float));
    size_t go = 0;
    gather(g, &go, di, ni); gather(g, &go, dw, c.C); gather(g, &go, db, c.C);
    check_op("layernorm", ln_d, &c, x, nx, oh, no, R, g);
    pb_free(E, inp); pb_free(E, w); pb_free(E, b); pb_free(E, out); pb_free(E, mean); pb_free(E, rstd);
    pb_free(E, dout); pb_free(E, di); pb_free(E, dw); pb_free(E, db);
    free(x); free(hi); free(hw); free(hb); free(oh); free(R); free(Rf); free(g);
}

// ----------------------------------------------------------------------------
// gelu / tanh: x = inp (n)

typedef struct { size_t n; } n_ctx;
static void gelu_d(const void *vc, const double *x, double *out) {
    const n_ctx *c = vc;
    for (size_t i = 0; i < c->n; i++) out[i] = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
}
static void tanh_d(const void *vc, const double *x, double *out) {
    const n_ctx *c = vc;
    for (size_t i = 0; i < c->n; i++) out[i] = tanh(x[i]);
}
static void relu_d(const void *vc, const double *x, double *out) {
    const n_ctx *c = vc;
    for (size_t i = 0; i < c->n; i++) out[i] = x[i] > 0 ? x[i] : 0;
}
// which: 0 gelu, 1 tanh, 2 relu (inputs kept 1e-3 away from relu's kink, where FD is undefined)
static void test_act(int which) {
    n_ctx c = {50};
    size_t off = 0;
    double *x = pb_xmalloc(c.n * sizeof(double));
    float *hi = rnd(c.n, -4, 4, x, &off);
    if (which == 2)
        for (size_t i = 0; i < c.n; i++)
            if (fabsf(hi[i]) < 1e-3f) x[i] = hi[i] = hi[i] < 0 ? -0.5f : 0.5f;
    float *inp = t_to_dev(E, hi, c.n), *out = pb_alloc(E, c.n), *di = pb_alloc(E, c.n);
    if (which == 0) pb_gelu_forward(E, out, inp, c.n);
    else if (which == 1) pb_tanh_forward(E, out, inp, c.n);
    else pb_relu_forward(E, out, inp, c.n);
    float *oh = t_to_host(E, out, c.n);
    double *R = rnd_d(c.n);
    float *Rf = narrow(R, c.n);
    t_widen(R, Rf, c.n);
    float *dout = t_to_dev(E, Rf, c.n);
    if (which == 0) pb_gelu_backward(E, di, dout, inp, c.n);
    else if (which == 1) pb_tanh_backward(E, di, dout, out, c.n);
    else pb_relu_backward(E, di, dout, out, c.n);
    float *g = t_to_host(E, di, c.n);
    static const char *const names[3] = {"gelu", "tanh", "relu"};
    const t_fwd_fn fns[3] = {gelu_d, tanh_d, relu_d};
    check_op(names[which], fns[which], &c, x, c.n, oh, c.n, R, g);
    pb_free(E, inp); pb_free(E, out); pb_free(E, di); pb_free(E, dout);
    free(x); free(hi); free(oh); free(R); free(Rf); free(g);
}

// add / axpy / scale: forward only (their backwards are the same ops, used by callers).
static void test_elementwise(void) {
    const size_t n = 40;
    float *ha = rnd(n, -1, 1, NULL, NULL), *hb = rnd(n, -1, 1, NULL, NULL);
    float *a = t_to_dev(E, ha, n), *b = t_to_dev(E, hb, n), *o = pb_alloc(E, n);
    double ref[40];
    pb_add(E, o, a, b, n);
    float *oh = t_to_host(E, o, n);
    for (size_t i = 0; i < n; i++) ref[i] = (double)ha[i] + hb[i];
    T_CHECK(t_rel_err(oh, ref, n) <= FWD_TOL, "add");
    free(oh);
    pb_add(E, a, a, b, n); // aliasing
    oh = t_to_host(E, a, n);
    T_CHECK(t_rel_err(oh, ref, n) <= FWD_TOL, "add in place");
    free(oh);
    pb_upload(E, a, ha, n);
    pb_axpy(E, a, -0.3f, b, n);
    oh = t_to_host(E, a, n);
    for (size_t i = 0; i < n; i++) ref[i] = (double)ha[i] - 0.3 * hb[i];
    T_CHECK(t_rel_err(oh, ref, n) <= FWD_TOL, "axpy");
    free(oh);
    pb_scale(E, o, b, 2.5f, n);
    oh = t_to_host(E, o, n);
    for (size_t i = 0; i < n; i++) ref[i] = 2.5 * hb[i];
    T_CHECK(t_rel_err(oh, ref, n) <= FWD_TOL, "scale");
    free(oh);
    pb_free(E, a); pb_free(E, b); pb_free(E, o);
    free(ha); free(hb);
}

// mul_cols: x = [inp (N,C), s (C)]; backward = mul_cols(dout, s) for dinp, mul_cols_reduce for ds.
typedef struct { int N, C; } nc_ctx;
static void mc_d(const void *vc, const double *x, double *out) {
    const nc_ctx *c = vc;
    const double *s = x + c->N * c->C;
    for (int n = 0; n < c->N; n++)
        for (int k = 0; k < c->C; k++) out[n * c->C + k] = x[n * c->C + k] * s[k];
}
static void test_mul_cols(void) {
    nc_ctx c = {7, 5};
    size_t ni = (size_t)c.N * c.C, nx = ni + c.C, off = 0;
    double *x = pb_xmalloc(nx * sizeof(double));
    float *hi = rnd(ni, -1, 1, x, &off), *hs = rnd(c.C, -1, 1, x, &off);
    float *inp = t_to_dev(E, hi, ni), *s = t_to_dev(E, hs, c.C), *out = pb_alloc(E, ni);
    pb_mul_cols(E, out, inp, s, c.N, c.C);
    float *oh = t_to_host(E, out, ni);
    double *R = rnd_d(ni);
    float *Rf = narrow(R, ni);
    t_widen(R, Rf, ni);
    float *dout = t_to_dev(E, Rf, ni), *di = pb_alloc(E, ni), *ds = pb_alloc(E, c.C);
    pb_mul_cols(E, di, dout, s, c.N, c.C);
    pb_mul_cols_reduce(E, ds, dout, inp, c.N, c.C);
    float *g = pb_xmalloc(nx * sizeof(float));
    size_t go = 0;
    gather(g, &go, di, ni); gather(g, &go, ds, c.C);
    check_op("mul_cols (+reduce)", mc_d, &c, x, nx, oh, ni, R, g);
    pb_mul_cols(E, out, out, s, c.N, c.C); // in place
    pb_free(E, inp); pb_free(E, s); pb_free(E, out); pb_free(E, dout); pb_free(E, di); pb_free(E, ds);
    free(x); free(hi); free(hs); free(oh); free(R); free(Rf); free(g);
}

// ----------------------------------------------------------------------------
// AO(q) (papers.md §6.2): x = q (D); out = AO (D,d) = the first d columns of the full
// Q = [[q0, -qbar^T], [qbar, I - qbar qbar^T / c]], c = 1 + q0 with |c| clamped to >= 1e-6.
// Modes: 0 general ||q|| != 1; 1 clamped with c > 0 (q0 = -1 + 2e-7); 2 clamped with c < 0
// (q0 = -1 - 2e-7). Under the clamp qbar is scaled to ~1e-3 so the entries stay O(1), and the
// FD step is 1e-8 so q0 +- h stays inside the clamp (c is then constant: dL/dq0 = G[0,0]).

typedef struct { int D, d; } ao_ctx;
static void ao_d(const void *vc, const double *q, double *out) {
    const ao_ctx *c = vc;
    double cc = 1.0 + q[0];
    if (fabs(cc) < 1e-6) cc = cc < 0 ? -1e-6 : 1e-6;
    for (int i = 0; i < c->D; i++)
        for (int j = 0; j < c->d; j++) {
            double v;
            if (j == 0) v = q[i];                 // first column (q0, qbar)
            else if (i == 0) v = -q[j];           // first row (q0, -qbar^T)
            else v = (i == j) - q[i] * q[j] / cc; // I - qbar qbar^T / c
            out[(size_t)i * c->d + j] = v;
        }
}
static void test_ao(int D, int d, int mode) {
    ao_ctx c = {D, d};
    size_t no = (size_t)D * d, off = 0;
    double *x = pb_xmalloc((size_t)D * sizeof(double));
    float *hq = rnd((size_t)D, -1, 1, NULL, &off);
    if (mode) {
        for (int i = 1; i < D; i++) hq[i] *= 1e-3f;
        hq[0] = mode == 1 ? -1.0f + 2e-7f : -1.0f - 2e-7f;
    }
    t_widen(x, hq, (size_t)D);
    int32_t *cl = pb_alloc_i32(E, 1), ncl = -1;
    float *q = t_to_dev(E, hq, (size_t)D), *AO = pb_alloc(E, no);
    pb_ao_forward(E, AO, q, D, d, cl);
    float *oh = t_to_host(E, AO, no);
    pb_download_i32(E, &ncl, cl, 1);
    T_CHECK(ncl == (mode ? 1 : 0), "ao_forward clamp counter %d, expected %d", (int)ncl, mode ? 1 : 0);
    pb_ao_forward(E, AO, q, D, d, NULL); // NULL counter: nothing counted
    pb_ao_forward(E, AO, q, D, d, cl);
    pb_download_i32(E, &ncl, cl, 1);
    T_CHECK(ncl == (mode ? 2 : 0), "ao_forward clamp counter %d after 2 counted calls", (int)ncl);
    double *R = rnd_d(no);
    float *Rf = narrow(R, no);
    t_widen(R, Rf, no);
    float *G = t_to_dev(E, Rf, no), *dq = pb_alloc(E, (size_t)D);
    pb_ao_backward(E, dq, q, G, D, d);
    float *g = t_to_host(E, dq, (size_t)D);
    // accumulation: a second call adds exactly the same values
    pb_ao_backward(E, dq, q, G, D, d);
    float *g2 = t_to_host(E, dq, (size_t)D);
    int acc_ok = 1;
    for (int i = 0; i < D; i++) acc_ok &= g2[i] == 2.0f * g[i];
    T_CHECK(acc_ok, "ao_backward does not accumulate (second call != 2x first)");
    // forward (replica) + backward vs FD, with the step chosen for the mode
    double *out_d = pb_xmalloc(no * sizeof(double)), *g_d = pb_xmalloc((size_t)D * sizeof(double));
    ao_d(&c, x, out_d);
    double ef = t_rel_err(oh, out_d, no);
    T_CHECK(ef <= FWD_TOL, "ao_forward D=%d d=%d mode %d rel err %.3g", D, d, mode, ef);
    t_fd_grad(ao_d, &c, x, (size_t)D, R, no, mode ? 1e-8 : FD_H, g_d);
    double eg = t_rel_err(g, g_d, (size_t)D);
    T_CHECK(eg <= GRAD_TOL, "ao_backward D=%d d=%d mode %d rel err %.3g > %g", D, d, mode, eg, GRAD_TOL);
    if (mode) T_CHECK(fabs(g[0] - Rf[0]) <= 1e-6 * fabs(Rf[0]), "clamped: dq0 %.9g != G[0,0] %.9g", g[0], Rf[0]);
    char nm[64];
    snprintf(nm, sizeof nm, "ao D=%d d=%d%s", D, d, mode == 1 ? " clamp+" : mode == 2 ? " clamp-" : "");
    printf("  %-28s fwd %.2e  grad %.2e  clamps %d\n", nm, ef, eg, (int)ncl);
    pb_free(E, q); pb_free(E, AO); pb_free(E, G); pb_free(E, dq); pb_free(E, cl);
    free(x); free(hq); free(oh); free(R); free(Rf); free(g); free(g2); free(out_d); free(g_d);
}

// ----------------------------------------------------------------------------
// dropout: replica uses the same keep test (pb_dropout_keep) host-side.

typedef struct { size_t n; float p; uint64_t seed; } dr_ctx;
static void dr_d(const void *vc, const double *x, double *out) {
    const dr_ctx *c = vc;
    for (size_t i = 0; i < c->n; i++)
        out[i] = pb_dropout_keep(c->seed, i, c->p) ? x[i] / (1.0 - c->p) : 0.0;
}
static void test_dropout(void) {
    dr_ctx c = {64, 0.3f, 1234};
    size_t off = 0;
    double *x = pb_xmalloc(c.n * sizeof(double));
    float *hi = rnd(c.n, -1, 1, x, &off);
    float *inp = t_to_dev(E, hi, c.n), *out = pb_alloc(E, c.n), *mask = pb_alloc(E, c.n), *di = pb_alloc(E, c.n);
    pb_dropout_forward(E, out, mask, inp, c.p, c.seed, c.n);
    float *oh = t_to_host(E, out, c.n);
    double *R = rnd_d(c.n);
    float *Rf = narrow(R, c.n);
    t_widen(R, Rf, c.n);
    float *dout = t_to_dev(E, Rf, c.n);
    pb_dropout_backward(E, di, dout, mask, c.n);
    float *g = t_to_host(E, di, c.n);
    // FD at points where the mask is constant (it does not depend on x): fine everywhere.
    check_op("dropout p=0.3", dr_d, &c, x, c.n, oh, c.n, R, g);
    // Mask consistency: values in {0, 1/(1-p)}, same seed -> same mask, other seed differs,
    // keep rate close to 1-p on a large draw, p = 0 copies with mask 1.
    float *mh = t_to_host(E, mask, c.n);
    const float ks = 1.0f / (1.0f - c.p);
    for (size_t i = 0; i < c.n; i++)
        T_CHECK(mh[i] == 0.0f || mh[i] == ks, "dropout mask[%zu] = %g", i, mh[i]);
    const size_t big = 200000;
    float *bi = pb_alloc(E, big), *bo = pb_alloc(E, big), *bm1 = pb_alloc(E, big), *bm2 = pb_alloc(E, big);
    pb_fill(E, bi, 1.0f, big);
    pb_dropout_forward(E, bo, bm1, bi, c.p, 99, big);
    pb_dropout_forward(E, bo, bm2, bi, c.p, 99, big);
    float *h1 = t_to_host(E, bm1, big), *h2 = t_to_host(E, bm2, big);
    T_CHECK(memcmp(h1, h2, big * sizeof(float)) == 0, "dropout: same seed gave different masks");
    size_t kept = 0;
    for (size_t i = 0; i < big; i++) kept += h1[i] != 0.0f;
    double rate = (double)kept / big;
    T_CHECK(fabs(rate - 0.7) < 0.005, "dropout keep rate %.4f, want 0.7 +- 0.005", rate);
    pb_dropout_forward(E, bo, bm2, bi, c.p, 100, big);
    free(h2);
    h2 = t_to_host(E, bm2, big);
    T_CHECK(memcmp(h1, h2, big * sizeof(float)) != 0, "dropout: different seeds gave equal masks");
    pb_dropout_forward(E, bo, bm2, bi, 0.0f, 5, big);
    free(h2);
    h2 = t_to_host(E, bm2, big);
    float *ho = t_to_host(E, bo, big);
    int ok = 1;
    for (size_t i = 0; i < big; i++) ok &= h2[i] == 1.0f && ho[i] == 1.0f;
    T_CHECK(ok, "dropout p=0 must copy with mask 1");
    pb_free(E, bi); pb_free(E, bo); pb_free(E, bm1); pb_free(E, bm2);
    pb_free(E, inp); pb_free(E, out); pb_free(E, mask); pb_free(E, di); pb_free(E, dout);
    free(x); free(hi); free(oh); free(R); free(Rf); free(g); free(mh); free(h1); free(h2); free(ho);
}

// ----------------------------------------------------------------------------
// attention: x = [q, k, v] each (B,T,C); out (B,T,C)

typedef struct { int B, T, NH, HS; const int32_t *km; float p; uint64_t seed; } att_ctx;
static void att_d(const void *vc, const double *x, double *out) {
    const att_ctx *c = vc;
    const int T = c->T, C = c->NH * c->HS;
    const size_t nq = (size_t)c->B * T * C;
    const double *q = x, *k = x + nq, *v = x + 2 * nq;
    double *pr = pb_xmalloc((size_t)T * sizeof(double));
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->NH; h++)
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    double s = 0;
                    for (int d = 0; d < c->HS; d++)
                        s += q[((size_t)b * T + i) * C + h * c->HS + d] * k[((size_t)b * T + j) * C + h * c->HS + d];
                    pr[j] = s / sqrt((double)c->HS);
                    if ((!c->km || c->km[b * T + j]) && pr[j] > mx) mx = pr[j];
                }
                for (int j = 0; j < T; j++) {
                    pr[j] = (!c->km || c->km[b * T + j]) ? exp(pr[j] - mx) : 0.0;
                    sum += pr[j];
                }
                for (int j = 0; j < T; j++) {
                    pr[j] /= sum;
                    if (c->p > 0) {
                        uint64_t idx = (((uint64_t)b * c->NH + h) * T + i) * T + j;
                        pr[j] = pb_dropout_keep(c->seed, idx, c->p) ? pr[j] / (1.0 - c->p) : 0.0;
                    }
                }
                for (int d = 0; d < c->HS; d++) {
                    double s = 0;
                    for (int j = 0; j < T; j++) s += pr[j] * v[((size_t)b * T + j) * C + h * c->HS + d];
                    out[((size_t)b * T + i) * C + h * c->HS + d] = s;
                }
            }
    free(pr);
}
// T = 5 runs the scalar tails of the vectorised softmax; T = 37 its vector body.
static void test_attention(float p, int masked, int T) {
    int32_t km_h[2 * 37];
    for (int i = 0; i < 2 * T; i++) km_h[i] = (i % T) < (i < T ? T - 2 : T); // batch 0: last 2 keys padded
    att_ctx c = {2, T, 2, 3, masked ? km_h : NULL, p, 777};
    const int C = c.NH * c.HS;
    size_t nq = (size_t)c.B * c.T * C, nx = 3 * nq, na = (size_t)c.B * c.NH * c.T * c.T, off = 0;
    double *x = pb_xmalloc(nx * sizeof(double));
    float *hq = rnd(nq, -1.5f, 1.5f, x, &off), *hk = rnd(nq, -1.5f, 1.5f, x, &off), *hv = rnd(nq, -1, 1, x, &off);
    float *q = t_to_dev(E, hq, nq), *k = t_to_dev(E, hk, nq), *v = t_to_dev(E, hv, nq);
    float *out = pb_alloc(E, nq), *att = pb_alloc(E, na), *attd = p > 0 ? pb_alloc(E, na) : NULL;
    int32_t *km = NULL;
    if (masked) {
        km = pb_alloc_i32(E, (size_t)c.B * c.T);
        pb_upload_i32(E, km, km_h, (size_t)c.B * c.T);
    }
    pb_attention_forward(E, out, att, attd, q, k, v, km, c.B, c.T, c.NH, c.HS, p, c.seed);
    float *oh = t_to_host(E, out, nq);
    if (masked) { // masked keys get probability exactly 0
        float *ah = t_to_host(E, att, na);
        for (int h = 0; h < c.NH; h++)
            for (int i = 0; i < c.T; i++)
                for (int j = c.T - 2; j < c.T; j++)
                    T_CHECK(ah[((size_t)h * c.T + i) * c.T + j] == 0.0f, "masked prob not 0");
        free(ah);
    }
    double *R = rnd_d(nq);
    float *Rf = narrow(R, nq);
    t_widen(R, Rf, nq);
    float *dout = t_to_dev(E, Rf, nq);
    float *dq = pb_alloc(E, nq), *dk = pb_alloc(E, nq), *dv = pb_alloc(E, nq);
    pb_attention_backward(E, dq, dk, dv, dout, q, k, v, att, attd, c.B, c.T, c.NH, c.HS, p, c.seed);
    float *g = pb_xmalloc(nx * sizeof(float));
    size_t go = 0;
    gather(g, &go, dq, nq); gather(g, &go, dk, nq); gather(g, &go, dv, nq);
    char name[64];
    snprintf(name, sizeof name, "attention T=%d p=%.1f mask=%d", T, (double)p, masked);
    check_op(name, att_d, &c, x, nx, oh, nq, R, g);
    pb_free(E, q); pb_free(E, k); pb_free(E, v); pb_free(E, out); pb_free(E, att); pb_free(E, attd);
    pb_free(E, km); pb_free(E, dout); pb_free(E, dq); pb_free(E, dk); pb_free(E, dv);
    free(x); free(hq); free(hk); free(hv); free(oh); free(R); free(Rf); free(g);
}

// take_token: x = inp (B,T,C); out (B,C)
typedef struct { int B, T, C, t; } tt_ctx;
static void tt_d(const void *vc, const double *x, double *out) {
    const tt_ctx *c = vc;
    for (int b = 0; b < c->B; b++)
        for (int k = 0; k < c->C; k++) out[b * c->C + k] = x[((size_t)b * c->T + c->t) * c->C + k];
}
static void test_take_token(void) {
    tt_ctx c = {3, 4, 5, 2};
    size_t nx = (size_t)c.B * c.T * c.C, no = (size_t)c.B * c.C, off = 0;
    double *x = pb_xmalloc(nx * sizeof(double));
    float *hi = rnd(nx, -1, 1, x, &off);
    float *inp = t_to_dev(E, hi, nx), *out = pb_alloc(E, no), *di = pb_alloc(E, nx);
    pb_take_token_forward(E, out, inp, c.B, c.T, c.C, c.t);
    float *oh = t_to_host(E, out, no);
    double *R = rnd_d(no);
    float *Rf = narrow(R, no);
    t_widen(R, Rf, no);
    float *dout = t_to_dev(E, Rf, no);
    pb_take_token_backward(E, di, dout, c.B, c.T, c.C, c.t);
    float *g = t_to_host(E, di, nx);
    check_op("take_token", tt_d, &c, x, nx, oh, no, R, g);
    pb_free(E, inp); pb_free(E, out); pb_free(E, di); pb_free(E, dout);
    free(x); free(hi); free(oh); free(R); free(Rf); free(g);
}

// ----------------------------------------------------------------------------
// losses: x = logits / pred (B,V); out = scalar loss; R = 1.

typedef struct { int B, V; const int32_t *labels; double eps; const double *target; } loss_ctx;
static void xent_d(const void *vc, const double *x, double *out) {
    const loss_ctx *c = vc;
    double tot = 0;
    for (int b = 0; b < c->B; b++) {
        const double *r = x + b * c->V;
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < c->V; v++) mx = r[v] > mx ? r[v] : mx;
        for (int v = 0; v < c->V; v++) s += exp(r[v] - mx);
        double lse = mx + log(s);
        for (int v = 0; v < c->V; v++) {
            double tgt = c->eps / c->V + (v == c->labels[b] ? 1.0 - c->eps : 0.0);
            tot -= tgt * (r[v] - lse);
        }
    }
    out[0] = tot / c->B;
}
static void mse_d(const void *vc, const double *x, double *out) {
    const loss_ctx *c = vc;
    double s = 0;
    for (int i = 0; i < c->B * c->V; i++) s += (x[i] - c->target[i]) * (x[i] - c->target[i]);
    out[0] = s / (c->B * c->V);
}
static void test_losses(void) {
    static const int32_t lab_h[4] = {2, 0, 6, 2};
    for (int sm = 0; sm < 2; sm++) {
        loss_ctx c = {4, 7, lab_h, sm ? 0.1 : 0.0, NULL};
        size_t n = (size_t)c.B * c.V, off = 0;
        double *x = pb_xmalloc(n * sizeof(double)), R = 1.0;
        float *hl = rnd(n, -3, 3, x, &off);
        float *lg = t_to_dev(E, hl, n), *pr = pb_alloc(E, n), *dl = pb_alloc(E, n), loss;
        int32_t *lab = pb_alloc_i32(E, c.B);
        pb_upload_i32(E, lab, lab_h, c.B);
        pb_xent_forward(E, pr, &loss, lg, lab, c.B, c.V, (float)c.eps);
        pb_xent_backward(E, dl, pr, lab, c.B, c.V, (float)c.eps);
        float *g = t_to_host(E, dl, n);
        check_op(sm ? "xent smoothing=0.1" : "xent", xent_d, &c, x, n, &loss, 1, &R, g);
        int32_t am[4];
        pb_argmax_rows(E, am, lg, c.B, c.V);
        for (int b = 0; b < c.B; b++) {
            int best = 0;
            for (int v = 1; v < c.V; v++) if (hl[b * c.V + v] > hl[b * c.V + best]) best = v;
            T_CHECK(am[b] == best, "argmax row %d: %d want %d", b, am[b], best);
        }
        pb_free(E, lg); pb_free(E, pr); pb_free(E, dl); pb_free(E, lab);
        free(x); free(hl); free(g);
    }
    {
        loss_ctx c = {3, 5, NULL, 0, NULL};
        size_t n = 15, off = 0, off2 = 0;
        double *x = pb_xmalloc(n * sizeof(double)), *tg = pb_xmalloc(n * sizeof(double)), R = 1.0;
        float *hp = rnd(n, -1, 1, x, &off), *ht = rnd(n, -1, 1, tg, &off2), loss;
        c.target = tg;
        float *p = t_to_dev(E, hp, n), *t = t_to_dev(E, ht, n), *dp = pb_alloc(E, n);
        pb_mse_forward(E, &loss, p, t, c.B, c.V);
        pb_mse_backward(E, dp, p, t, c.B, c.V);
        float *g = t_to_host(E, dp, n);
        check_op("mse", mse_d, &c, x, n, &loss, 1, &R, g);
        pb_free(E, p); pb_free(E, t); pb_free(E, dp);
        free(x); free(tg); free(hp); free(ht); free(g);
    }
}

int main(void) {
    char err[256];
    E = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
    if (!E) {
        fprintf(stderr, "engine init: %s\n", err);
        return 1;
    }
    printf("%s\n", pb_engine_describe(E));
    pb_rng_seed(&RNG, 42);
    test_linear(1, 0);
    test_linear(0, 0);
    test_linear(1, 1);
    test_gemm_size(5, 6, 7);
    test_gemm_size(100, 40, 520);
    test_gemm_size(40, 100, 520);
    test_patches();
    test_vit_tokens();
    test_embedding();
    test_positions();
    test_layernorm();
    test_act(0);
    test_act(1);
    test_act(2);
    test_elementwise();
    test_mul_cols();
    test_ao(24, 5, 0);
    test_ao(17, 1, 0);
    test_ao(13, 13, 0);
    test_ao(1, 1, 0);
    test_ao(300, 120, 0); // above the CPU forward's threading cutoff
    test_ao(24, 5, 1);
    test_ao(24, 5, 2);
    test_ao(17, 1, 1);
    test_ao(13, 13, 1);
    test_dropout();
    test_attention(0.0f, 0, 5);
    test_attention(0.0f, 1, 5);
    test_attention(0.3f, 1, 5);
    test_attention(0.3f, 0, 5);
    test_attention(0.0f, 1, 37);
    test_attention(0.2f, 1, 37);
    test_take_token();
    test_losses();
    pb_engine_free(E);
    return t_report("test_ops_grad");
}
