// ops_bench.c: times one pre-LN ViT encoder layer (forward + full-FT backward) on the engine and
// reports achieved GFLOP/s (GEMM FLOPs: 72*N*C^2 for the linears + 12*B*T^2*C for attention)
// with a per-op-family time breakdown. Not a test.
// usage: ops_bench [small|base] [threads] [reps]
#include "engine/ops.h"
#include <cblas.h>
#include <stdio.h>
#include <string.h>

enum { K_LIN, K_ATT, K_LN, K_ACT, K_ADD, K_NK };
static const char *kname[K_NK] = {"linear", "attention", "layernorm", "gelu", "add/copy"};
static double kt[K_NK];
#define TIME(k, call) do { double t0_ = pb_now(); call; kt[k] += pb_now() - t0_; } while (0)

// Ceiling: the layer's linear GEMMs (forward, dinp, dW) straight on OpenBLAS with its own
// `threads` pthreads (how machine.md measures the sgemm ceiling), no engine in between.
// Returns seconds; *flops gets the FLOP count. A, Bm: >= N*F floats; Cw >= F*C; Cx >= N*F.
static double ceiling_pass(int threads, int N, int C, int F, const float *A, const float *Bm, float *Cw,
                           float *Cx, double *flops) {
    openblas_set_num_threads(threads);
    // {M, N, K, transA, transB, count}: q,k,v,o share the CxC shapes; the MLP has one up + one down
    const int gs[9][6] = {{N, C, C, 0, 1, 4}, {N, C, C, 0, 0, 4}, {C, C, N, 1, 0, 4},
                          {N, F, C, 0, 1, 1}, {N, C, F, 0, 1, 1}, {N, C, F, 0, 0, 1},
                          {N, F, C, 0, 0, 1}, {F, C, N, 1, 0, 1}, {C, F, N, 1, 0, 1}};
    double t0 = pb_now();
    *flops = 0;
    for (int i = 0; i < 9; i++)
        for (int c = 0; c < gs[i][5]; c++) {
            const int M = gs[i][0], Nn = gs[i][1], K = gs[i][2], ta = gs[i][3], tb = gs[i][4];
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, Nn, K,
                        1.0f, A, ta ? M : K, Bm, tb ? K : Nn, 0.0f, ta ? Cw : Cx, Nn);
            *flops += 2.0 * M * Nn * K;
        }
    double t = pb_now() - t0;
    openblas_set_num_threads(1);
    return t;
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "small";
    int threads = argc > 2 ? atoi(argv[2]) : 2, reps = argc > 3 ? atoi(argv[3]) : 3;
    int B = 64, T = 50, C = 192, NH = 3, F = 768;
    if (!strcmp(which, "base")) { B = 8; T = 197; C = 768; NH = 12; F = 3072; }
    const int HS = C / NH, N = B * T;
    char err[256];
    pb_engine *e = pb_engine_init(PB_DEVICE_CPU, threads, err, sizeof err);
    if (!e) { fprintf(stderr, "%s\n", err); return 1; }
    printf("%s; layer %s B=%d T=%d C=%d NH=%d F=%d\n", pb_engine_describe(e), which, B, T, C, NH, F);
    pb_rng r;
    pb_rng_seed(&r, 1);
    const size_t NC = (size_t)N * C, NF = (size_t)N * F, NA = (size_t)B * NH * T * T;
    const size_t NH_ = PB_MAX((size_t)4 * C * F, NF);
    float *host = pb_xmalloc(sizeof(float) * NH_);
    for (size_t i = 0; i < NH_; i++) host[i] = 0.05f * (pb_rng_uniform(&r) - 0.5f);
#define W(n) ({ float *p_ = pb_alloc(e, n); pb_upload(e, p_, host, n); p_; })
    float *wq = W((size_t)C * C), *wk = W((size_t)C * C), *wv = W((size_t)C * C), *wo = W((size_t)C * C);
    float *w1 = W((size_t)F * C), *w2 = W((size_t)C * F), *bq = W(C), *bk = W(C), *bv = W(C), *bo = W(C);
    float *b1 = W(F), *b2 = W(C), *l1w = W(C), *l1b = W(C), *l2w = W(C), *l2b = W(C);
    float *x = W(NC);
    float *ln1 = pb_alloc(e, NC), *m1 = pb_alloc(e, N), *r1 = pb_alloc(e, N), *q = pb_alloc(e, NC), *k = pb_alloc(e, NC);
    float *v = pb_alloc(e, NC), *att = pb_alloc(e, NA), *ao = pb_alloc(e, NC), *o = pb_alloc(e, NC), *x2 = pb_alloc(e, NC);
    float *ln2 = pb_alloc(e, NC), *m2 = pb_alloc(e, N), *r2 = pb_alloc(e, N), *h = pb_alloc(e, NF), *g = pb_alloc(e, NF);
    float *y = pb_alloc(e, NC), *x3 = pb_alloc(e, NC);
    // grads
    float *dwq = pb_alloc(e, (size_t)C * C), *dwk = pb_alloc(e, (size_t)C * C), *dwv = pb_alloc(e, (size_t)C * C), *dwo = pb_alloc(e, (size_t)C * C);
    float *dw1 = pb_alloc(e, (size_t)F * C), *dw2 = pb_alloc(e, (size_t)C * F), *db = pb_alloc(e, 8 * (size_t)F);
    float *dlw = pb_alloc(e, 4 * (size_t)C), *dx3 = W(NC), *dx2 = pb_alloc(e, NC), *dg = pb_alloc(e, NF), *dh = pb_alloc(e, NF), *dln2 = pb_alloc(e, NC);
    float *dao = pb_alloc(e, NC), *dq = pb_alloc(e, NC), *dk = pb_alloc(e, NC), *dv = pb_alloc(e, NC), *dln1 = pb_alloc(e, NC), *dx = pb_alloc(e, NC);
    double best = 1e30, gbest = 1e30, lin_flops = 0;
    for (int rep = 0; rep < reps + 1; rep++) {
        if (rep == 1) memset(kt, 0, sizeof kt); // first rep is warm-up
        double t0 = pb_now();
        TIME(K_LN, pb_layernorm_forward(e, ln1, m1, r1, x, l1w, l1b, N, C, 1e-12f));
        TIME(K_LIN, pb_linear_forward(e, q, ln1, wq, bq, N, C, C));
        TIME(K_LIN, pb_linear_forward(e, k, ln1, wk, bk, N, C, C));
        TIME(K_LIN, pb_linear_forward(e, v, ln1, wv, bv, N, C, C));
        TIME(K_ATT, pb_attention_forward(e, ao, att, NULL, q, k, v, NULL, B, T, NH, HS, 0.0f, 0));
        TIME(K_LIN, pb_linear_forward(e, o, ao, wo, bo, N, C, C));
        TIME(K_ADD, pb_add(e, x2, x, o, NC));
        TIME(K_LN, pb_layernorm_forward(e, ln2, m2, r2, x2, l2w, l2b, N, C, 1e-12f));
        TIME(K_LIN, pb_linear_forward(e, h, ln2, w1, b1, N, C, F));
        TIME(K_ACT, pb_gelu_forward(e, g, h, NF));
        TIME(K_LIN, pb_linear_forward(e, y, g, w2, b2, N, F, C));
        TIME(K_ADD, pb_add(e, x3, x2, y, NC));
        // backward (grads zeroed as a trainer would)
        TIME(K_ADD, { pb_copy(e, dx2, dx3, NC); pb_zero(e, dg, NF); pb_zero(e, dh, NF); pb_zero(e, dln2, NC);
                      pb_zero(e, dao, NC); pb_zero(e, dq, NC); pb_zero(e, dk, NC); pb_zero(e, dv, NC); pb_zero(e, dln1, NC); });
        TIME(K_LIN, pb_linear_backward(e, dg, dw2, db, dx3, g, w2, N, F, C));
        TIME(K_ACT, pb_gelu_backward(e, dh, dg, h, NF));
        TIME(K_LIN, pb_linear_backward(e, dln2, dw1, db, dh, ln2, w1, N, C, F));
        TIME(K_LN, pb_layernorm_backward(e, dx2, dlw, dlw + C, dln2, x2, l2w, m2, r2, N, C));
        TIME(K_LIN, pb_linear_backward(e, dao, dwo, db, dx2, ao, wo, N, C, C));
        TIME(K_ATT, pb_attention_backward(e, dq, dk, dv, dao, q, k, v, att, NULL, B, T, NH, HS, 0.0f, 0));
        TIME(K_LIN, pb_linear_backward(e, dln1, dwq, db, dq, ln1, wq, N, C, C));
        TIME(K_LIN, pb_linear_backward(e, dln1, dwk, db, dk, ln1, wk, N, C, C));
        TIME(K_LIN, pb_linear_backward(e, dln1, dwv, db, dv, ln1, wv, N, C, C));
        TIME(K_ADD, pb_copy(e, dx, dx2, NC));
        TIME(K_LN, pb_layernorm_backward(e, dx, dlw + 2 * C, dlw + 3 * C, dln1, x, l1w, m1, r1, N, C));
        double t = pb_now() - t0;
        if (rep > 0 && t < best) best = t;
        // interleaved with the layer so both see the same load on a shared machine
        double tg = ceiling_pass(threads, N, C, F, h, g, dw1, dh, &lin_flops);
        if (rep > 0 && tg < gbest) gbest = tg;
    }
    double flops = 72.0 * N * (double)C * C * ((double)F / (4.0 * C) * 2.0 / 3.0 + 1.0 / 3.0) + 12.0 * B * (double)T * T * C;
    double tot = 0;
    for (int i = 0; i < K_NK; i++) tot += kt[i];
    printf("layer fwd+bwd: best %.1f ms, %.1f GFLOP (gemm), %.1f GFLOP/s\n", best * 1e3, flops * 1e-9, flops / best * 1e-9);
    for (int i = 0; i < K_NK; i++) printf("  %-10s %6.1f ms/rep (%4.1f%%)\n", kname[i], kt[i] / reps * 1e3, 100 * kt[i] / tot);
    double ceil_rate = lin_flops / gbest;
    printf("sgemm ceiling (same linear GEMMs on OpenBLAS, %d threads): %.1f GFLOP/s -> layer at %.0f%% of it\n",
           threads, ceil_rate * 1e-9, 100.0 * (flops / best) / ceil_rate);
    pb_engine_free(e);
    free(host);
    return 0;
}
