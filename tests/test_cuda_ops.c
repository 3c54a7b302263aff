// test_cuda_ops.c: every engine op on the CUDA backend against the CPU backend on the same
// random inputs. Needs a GPU: without one it prints why and exits 77 (CTest: skipped).
//
// Error measure (stated tolerances): for each output tensor, normalised max error
//   err = max_i |gpu_i - cpu_i| / max(max_i |cpu_i|, 1e-30)
// must be <= 1e-5 for elementwise / reduction ops and <= 1e-4 for GEMM-based ops (gemm, linear,
// attention) in the default FP32 math; with argument "tf32" (PB_CUDA_MATH=tf32) GEMM-based ops
// get 5e-3 (TF32 keeps 10 mantissa bits: ~5e-4 per product). Dropout masks, positions, argmax
// must be identical; NaN/Inf must sit at the same places with the same sign.
// --cpu-vs-cpu runs the same comparisons with a 1-thread CPU engine in place of the GPU (a
// self-test of this harness that needs no GPU; registered as a fast test).
// Every GPU buffer (inputs too) is allocated with GUARD sentinel floats on both sides; after
// each op all guards are checked, so an out-of-bounds write anywhere fails the test.
#include "engine/ops.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 256
#define SENTINEL (-1.2345678e33f)
#define ISENTINEL ((int32_t)0x5A5A5A5A)

static pb_engine *ec, *eg;
static pb_rng rng;
static int failures = 0, checks = 0;
static double tol_elem = 1e-5, tol_gemm = 1e-4;

// A tensor on both engines: c (CPU buffer), g (GPU buffer inside a guarded allocation).
typedef struct {
    float *c, *g, *gbase;
    size_t n;
} t2;
typedef struct {
    int32_t *c, *g, *gbase;
    size_t n;
} i2;

static t2 t2_from(const float *h, size_t n) {
    t2 t = {0};
    t.n = n;
    t.c = pb_alloc(ec, n ? n : 1);
    if (n) pb_upload(ec, t.c, h, n);
    float *tmp = pb_xmalloc((n + 2 * GUARD) * sizeof(float));
    for (size_t i = 0; i < GUARD; i++) tmp[i] = tmp[GUARD + n + i] = SENTINEL;
    if (n) memcpy(tmp + GUARD, h, n * sizeof(float));
    t.gbase = pb_alloc(eg, n + 2 * GUARD);
    pb_upload(eg, t.gbase, tmp, n + 2 * GUARD);
    t.g = t.gbase + GUARD;
    free(tmp);
    return t;
}
static t2 t2_rand(size_t n, float lo, float hi) {
    float *h = pb_xmalloc((n + 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * pb_rng_uniform(&rng);
    t2 t = t2_from(h, n);
    free(h);
    return t;
}
static t2 t2_fill(size_t n, float v) {
    float *h = pb_xmalloc((n + 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = v;
    t2 t = t2_from(h, n);
    free(h);
    return t;
}
static void t2_free(t2 *t) {
    pb_free(ec, t->c);
    pb_free(eg, t->gbase);
    memset(t, 0, sizeof *t);
}
static i2 i2_from(const int32_t *h, size_t n) {
    i2 t = {0};
    t.n = n;
    t.c = pb_alloc_i32(ec, n ? n : 1);
    if (n) pb_upload_i32(ec, t.c, h, n);
    int32_t *tmp = pb_xmalloc((n + 2 * GUARD) * sizeof(int32_t));
    for (size_t i = 0; i < GUARD; i++) tmp[i] = tmp[GUARD + n + i] = ISENTINEL;
    if (n) memcpy(tmp + GUARD, h, n * sizeof(int32_t));
    t.gbase = pb_alloc_i32(eg, n + 2 * GUARD);
    pb_upload_i32(eg, t.gbase, tmp, n + 2 * GUARD);
    t.g = t.gbase + GUARD;
    free(tmp);
    return t;
}
static void i2_free(i2 *t) {
    pb_free(ec, t->c);
    pb_free(eg, t->gbase);
}

static void fail(const char *op, const char *what, const char *fmt, double a, double b) {
    fprintf(stderr, "FAIL %-22s %-8s ", op, what);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    failures++;
}

// Guards intact on the GPU side; returns the GPU values (malloc'd) in *gh.
static int guards_ok(const char *op, const char *name, const t2 *t, float **gh) {
    float *h = pb_xmalloc((t->n + 2 * GUARD) * sizeof(float));
    pb_download(eg, h, t->gbase, t->n + 2 * GUARD);
    int ok = 1;
    for (size_t i = 0; i < GUARD; i++) {
        if (memcmp(&h[i], &(float){SENTINEL}, sizeof(float)) ||
            memcmp(&h[GUARD + t->n + i], &(float){SENTINEL}, sizeof(float))) {
            fprintf(stderr, "FAIL %-22s %-8s out-of-bounds write at guard %s%zu\n", op, name,
                    i < GUARD && memcmp(&h[i], &(float){SENTINEL}, sizeof(float)) ? "-" : "+", i);
            failures++;
            ok = 0;
            break;
        }
    }
    *gh = pb_xmalloc((t->n + 1) * sizeof(float));
    memcpy(*gh, h + GUARD, t->n * sizeof(float));
    free(h);
    return ok;
}

// Compares a tensor (see the header for the measure); tol < 0: bitwise equality.
static void cmp(const char *op, const char *name, const t2 *t, double tol) {
    checks++;
    float *g = NULL;
    guards_ok(op, name, t, &g);
    float *c = pb_xmalloc((t->n + 1) * sizeof(float));
    pb_download(ec, c, t->c, t->n);
    double mx = 0.0, err = 0.0;
    size_t bad_nf = (size_t)-1;
    for (size_t i = 0; i < t->n; i++) {
        int cf = isfinite(c[i]), gf = isfinite(g[i]);
        if (!cf || !gf) {
            int same = (isnan(c[i]) && isnan(g[i])) || (isinf(c[i]) && isinf(g[i]) && signbit(c[i]) == signbit(g[i]));
            if (!same && bad_nf == (size_t)-1) bad_nf = i;
            continue;
        }
        mx = fmax(mx, fabs((double)c[i]));
        err = fmax(err, fabs((double)g[i] - (double)c[i]));
    }
    if (bad_nf != (size_t)-1)
        fail(op, name, "NaN/Inf parity: cpu %g gpu %g", (double)c[bad_nf], (double)g[bad_nf]);
    const int before = failures;
    if (tol < 0) {
        for (size_t i = 0; i < t->n; i++)
            if (memcmp(&c[i], &g[i], sizeof(float)) && !(isnan(c[i]) && isnan(g[i]))) {
                fail(op, name, "not bitwise equal: cpu %.9g gpu %.9g", (double)c[i], (double)g[i]);
                break;
            }
        if (failures == before) printf("ok   %-22s %-8s bitwise (n=%zu)\n", op, name, t->n);
    } else {
        double rel = err / fmax(mx, 1e-30);
        if (rel > tol) fail(op, name, "normalised err %.3g > tol %.1g", rel, tol);
        else printf("ok   %-22s %-8s err %.2e (tol %.0e, n=%zu, max|x| %.3g)\n", op, name, rel, tol, t->n, mx);
    }
    free(c);
    free(g);
}

static void cmp_i(const char *op, const char *name, const i2 *t) {
    checks++;
    const int before = failures;
    int32_t *h = pb_xmalloc((t->n + 2 * GUARD) * sizeof(int32_t)), *c = pb_xmalloc((t->n + 1) * sizeof(int32_t));
    pb_download_i32(eg, h, t->gbase, t->n + 2 * GUARD);
    pb_download_i32(ec, c, t->c, t->n);
    for (size_t i = 0; i < GUARD; i++)
        if (h[i] != ISENTINEL || h[GUARD + t->n + i] != ISENTINEL) {
            fail(op, name, "out-of-bounds write near guard %g%g", (double)i, 0.0);
            break;
        }
    for (size_t i = 0; i < t->n; i++)
        if (c[i] != h[GUARD + i]) {
            fail(op, name, "int mismatch: cpu %g gpu %g", (double)c[i], (double)h[GUARD + i]);
            break;
        }
    if (failures == before) printf("ok   %-22s %-8s exact ints (n=%zu)\n", op, name, t->n);
    free(h);
    free(c);
}

static void cmp_scalar(const char *op, double c, double g, double tol) {
    checks++;
    double rel = fabs(c - g) / fmax(fabs(c), 1e-30);
    if (!(rel <= tol)) fail(op, "scalar", "cpu %.12g gpu %.12g", c, g);
    else printf("ok   %-22s scalar   err %.2e (tol %.0e)\n", op, rel, tol);
}

// ----------------------------------------------------------------------------

static void test_gemm(void) {
    const int M = 33, N = 47, K = 29;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            // padded leading dimensions (strides) to exercise lda/ldb/ldc
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
            t2 A = t2_rand((size_t)(ta ? K : M) * lda, -1, 1), B = t2_rand((size_t)(tb ? N : K) * ldb, -1, 1);
            t2 C = t2_rand((size_t)M * ldc, -1, 1);
            pb_gemm(ec, ta, tb, M, N, K, 0.7f, A.c, lda, B.c, ldb, 0.3f, C.c, ldc);
            pb_gemm(eg, ta, tb, M, N, K, 0.7f, A.g, lda, B.g, ldb, 0.3f, C.g, ldc);
            char nm[32];
            snprintf(nm, sizeof nm, "gemm %c%c", ta ? 'T' : 'N', tb ? 'T' : 'N');
            cmp(nm, "C", &C, tol_gemm);
            cmp(nm, "A(in)", &A, -1);
            t2_free(&A), t2_free(&B), t2_free(&C);
        }
}

static void test_linear(void) {
    const int N = 37, C = 64, OC = 48;
    t2 x = t2_rand((size_t)N * C, -1, 1), w = t2_rand((size_t)OC * C, -0.3f, 0.3f), b = t2_rand(OC, -1, 1);
    t2 y = t2_rand((size_t)N * OC, -1, 1), y2 = t2_rand((size_t)N * OC, -1, 1);
    pb_linear_forward(ec, y.c, x.c, w.c, b.c, N, C, OC);
    pb_linear_forward(eg, y.g, x.g, w.g, b.g, N, C, OC);
    cmp("linear_forward", "out", &y, tol_gemm);
    pb_linear_forward(ec, y2.c, x.c, w.c, NULL, N, C, OC);
    pb_linear_forward(eg, y2.g, x.g, w.g, NULL, N, C, OC);
    cmp("linear_forward nobias", "out", &y2, tol_gemm);
    t2 dy = t2_rand((size_t)N * OC, -1, 1);
    for (int mask = 0; mask < 8; mask++) { // every NULL combination of (dinp, dw, dbias)
        t2 dx = t2_rand((size_t)N * C, -1, 1), dw = t2_rand((size_t)OC * C, -1, 1), db = t2_rand(OC, -1, 1);
        pb_linear_backward(ec, mask & 1 ? dx.c : NULL, mask & 2 ? dw.c : NULL, mask & 4 ? db.c : NULL, dy.c, x.c, w.c, N, C, OC);
        pb_linear_backward(eg, mask & 1 ? dx.g : NULL, mask & 2 ? dw.g : NULL, mask & 4 ? db.g : NULL, dy.g, x.g, w.g, N, C, OC);
        char nm[40];
        snprintf(nm, sizeof nm, "linear_backward m%d", mask);
        cmp(nm, "dinp", &dx, mask & 1 ? tol_gemm : -1);
        cmp(nm, "dw", &dw, mask & 2 ? tol_gemm : -1);
        cmp(nm, "dbias", &db, mask & 4 ? tol_elem : -1);
        t2_free(&dx), t2_free(&dw), t2_free(&db);
    }
    t2_free(&x), t2_free(&w), t2_free(&b), t2_free(&y), t2_free(&y2), t2_free(&dy);
}

static void test_patches_tokens(void) {
    const int B = 2, Cin = 3, H = 12, W = 16, P = 4, NP = (H / P) * (W / P), K = Cin * P * P;
    t2 img = t2_rand((size_t)B * Cin * H * W, -1, 1), cols = t2_rand((size_t)B * NP * K, -1, 1);
    pb_patches_forward(ec, cols.c, img.c, B, Cin, H, W, P);
    pb_patches_forward(eg, cols.g, img.g, B, Cin, H, W, P);
    cmp("patches_forward", "cols", &cols, -1);
    t2 dcols = t2_rand(cols.n, -1, 1), dimg = t2_rand(img.n, -1, 1);
    pb_patches_backward(ec, dimg.c, dcols.c, B, Cin, H, W, P);
    pb_patches_backward(eg, dimg.g, dcols.g, B, Cin, H, W, P);
    cmp("patches_backward", "dimg", &dimg, tol_elem);
    const int T = NP + 1, C = 40;
    t2 patch = t2_rand((size_t)B * NP * C, -1, 1), cls = t2_rand(C, -1, 1), pos = t2_rand((size_t)T * C, -1, 1);
    t2 out = t2_rand((size_t)B * T * C, -1, 1);
    pb_vit_tokens_forward(ec, out.c, patch.c, cls.c, pos.c, B, T, C);
    pb_vit_tokens_forward(eg, out.g, patch.g, cls.g, pos.g, B, T, C);
    cmp("vit_tokens_forward", "out", &out, tol_elem);
    t2 dout = t2_rand(out.n, -1, 1);
    for (int mask = 0; mask < 8; mask++) {
        t2 dp = t2_rand(patch.n, -1, 1), dc = t2_rand(cls.n, -1, 1), dpos = t2_rand(pos.n, -1, 1);
        pb_vit_tokens_backward(ec, mask & 1 ? dp.c : NULL, mask & 2 ? dc.c : NULL, mask & 4 ? dpos.c : NULL, dout.c, B, T, C);
        pb_vit_tokens_backward(eg, mask & 1 ? dp.g : NULL, mask & 2 ? dc.g : NULL, mask & 4 ? dpos.g : NULL, dout.g, B, T, C);
        cmp("vit_tokens_backward", "dpatch", &dp, tol_elem);
        cmp("vit_tokens_backward", "dcls", &dc, tol_elem);
        cmp("vit_tokens_backward", "dpos", &dpos, tol_elem);
        t2_free(&dp), t2_free(&dc), t2_free(&dpos);
    }
    t2_free(&img), t2_free(&cols), t2_free(&dcols), t2_free(&dimg), t2_free(&patch), t2_free(&cls);
    t2_free(&pos), t2_free(&out), t2_free(&dout);
}

static void test_embeddings(void) {
    const int rows = 50, N = 300, C = 70;
    int32_t ids_h[300];
    for (int n = 0; n < N; n++) ids_h[n] = (int32_t)pb_rng_below(&rng, n % 3 ? 7 : rows); // many repeats
    i2 ids = i2_from(ids_h, N);
    t2 table = t2_rand((size_t)rows * C, -1, 1), out = t2_rand((size_t)N * C, -1, 1);
    pb_embedding_forward(ec, out.c, ids.c, table.c, N, C, rows);
    pb_embedding_forward(eg, out.g, ids.g, table.g, N, C, rows);
    cmp("embedding_forward", "out", &out, -1);
    t2 dout = t2_rand(out.n, -1, 1), dtab = t2_rand(table.n, -1, 1);
    pb_embedding_backward(ec, dtab.c, dout.c, ids.c, N, C, rows);
    pb_embedding_backward(eg, dtab.g, dout.g, ids.g, N, C, rows);
    cmp("embedding_backward", "dtable", &dtab, -1); // same per-id row order: bitwise
    // The GPU groups ids on the device up to 4096 rows and on the host above: both sides of the
    // switch (and a non-power-of-two count), bitwise.
    const int Ns[3] = {4096, 4097, 2500};
    for (int k = 0; k < 3; k++) {
        const int Nk = Ns[k], Ck = 33, rk = 1000;
        int32_t *hk = pb_xmalloc((size_t)Nk * sizeof(int32_t));
        for (int n = 0; n < Nk; n++) hk[n] = (int32_t)pb_rng_below(&rng, n % 2 ? 5 : rk);
        i2 idk = i2_from(hk, (size_t)Nk);
        t2 dok = t2_rand((size_t)Nk * Ck, -1, 1), dtk = t2_rand((size_t)rk * Ck, -1, 1);
        pb_embedding_backward(ec, dtk.c, dok.c, idk.c, Nk, Ck, rk);
        pb_embedding_backward(eg, dtk.g, dok.g, idk.g, Nk, Ck, rk);
        cmp("embedding_backward", Nk > 4096 ? "host-grp" : "dev-grp", &dtk, -1);
        i2_free(&idk), t2_free(&dok), t2_free(&dtk);
        free(hk);
    }
    // positions with padding inside and at the end
    const int B = 3, T = 11, pad = 1;
    int32_t pid[33], zero[33] = {0};
    for (int i = 0; i < B * T; i++) pid[i] = (i % 5 == 3 || i % T >= T - 2) ? pad : 5 + i;
    i2 pids = i2_from(pid, (size_t)B * T), pos = i2_from(zero, (size_t)B * T);
    pb_roberta_positions(ec, pos.c, pids.c, B, T, pad);
    pb_roberta_positions(eg, pos.g, pids.g, B, T, pad);
    cmp_i("roberta_positions", "pos", &pos);
    i2_free(&ids), i2_free(&pids), i2_free(&pos);
    t2_free(&table), t2_free(&out), t2_free(&dout), t2_free(&dtab);
}

static void test_layernorm(void) {
    const int N = 37, C = 96;
    t2 x = t2_rand((size_t)N * C, -2, 3), w = t2_rand(C, 0.5f, 1.5f), b = t2_rand(C, -1, 1);
    t2 y = t2_rand(x.n, -1, 1), mean = t2_rand(N, -1, 1), rstd = t2_rand(N, -1, 1);
    pb_layernorm_forward(ec, y.c, mean.c, rstd.c, x.c, w.c, b.c, N, C, 1e-5f);
    pb_layernorm_forward(eg, y.g, mean.g, rstd.g, x.g, w.g, b.g, N, C, 1e-5f);
    cmp("layernorm_forward", "out", &y, tol_elem);
    cmp("layernorm_forward", "mean", &mean, tol_elem);
    cmp("layernorm_forward", "rstd", &rstd, tol_elem);
    t2 dy = t2_rand(x.n, -1, 1);
    for (int mask = 0; mask < 8; mask++) {
        t2 dx = t2_rand(x.n, -1, 1), dw = t2_rand(C, -1, 1), db = t2_rand(C, -1, 1);
        pb_layernorm_backward(ec, mask & 1 ? dx.c : NULL, mask & 2 ? dw.c : NULL, mask & 4 ? db.c : NULL, dy.c, x.c, w.c, mean.c, rstd.c, N, C);
        pb_layernorm_backward(eg, mask & 1 ? dx.g : NULL, mask & 2 ? dw.g : NULL, mask & 4 ? db.g : NULL, dy.g, x.g, w.g, mean.g, rstd.g, N, C);
        cmp("layernorm_backward", "dinp", &dx, tol_elem);
        cmp("layernorm_backward", "dw", &dw, tol_elem);
        cmp("layernorm_backward", "db", &db, tol_elem);
        t2_free(&dx), t2_free(&dw), t2_free(&db);
    }
    t2_free(&x), t2_free(&w), t2_free(&b), t2_free(&y), t2_free(&mean), t2_free(&rstd), t2_free(&dy);
}

// Elementwise ops, with NaN/+Inf/-Inf planted in the inputs for parity.
static void test_elementwise(void) {
    const size_t n = 100003;
    const int N = 300, C = 333; // N*C <= n
    t2 a = t2_rand(n, -4, 4), b = t2_rand(n, -4, 4), d = t2_rand(n, -1, 1);
    float special[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) { // overwrite a[17+k*1000] on both sides
        pb_upload(ec, a.c + 17 + k * 1000, &special[k], 1);
        pb_upload(eg, a.g + 17 + k * 1000, &special[k], 1);
    }
    t2 o = t2_rand(n, -1, 1), g = t2_rand(n, -1, 1);
#define PAIR(call_c, call_g, name, outp, tol)                                                      \
    do {                                                                                           \
        call_c;                                                                                    \
        call_g;                                                                                    \
        cmp(name, #outp, &outp, tol);                                                              \
    } while (0)
    PAIR(pb_gelu_forward(ec, o.c, a.c, n), pb_gelu_forward(eg, o.g, a.g, n), "gelu_forward", o, tol_elem);
    PAIR(pb_gelu_backward(ec, g.c, d.c, b.c, n), pb_gelu_backward(eg, g.g, d.g, b.g, n), "gelu_backward", g, tol_elem);
    PAIR(pb_tanh_forward(ec, o.c, a.c, n), pb_tanh_forward(eg, o.g, a.g, n), "tanh_forward", o, tol_elem);
    PAIR(pb_tanh_backward(ec, g.c, d.c, o.c, n), pb_tanh_backward(eg, g.g, d.g, o.g, n), "tanh_backward", g, tol_elem);
    PAIR(pb_relu_forward(ec, o.c, a.c, n), pb_relu_forward(eg, o.g, a.g, n), "relu_forward", o, tol_elem);
    PAIR(pb_relu_backward(ec, g.c, d.c, o.c, n), pb_relu_backward(eg, g.g, d.g, o.g, n), "relu_backward", g, tol_elem);
    PAIR(pb_add(ec, o.c, a.c, b.c, n), pb_add(eg, o.g, a.g, b.g, n), "add", o, tol_elem);
    PAIR(pb_add(ec, o.c, o.c, b.c, n), pb_add(eg, o.g, o.g, b.g, n), "add (aliased)", o, tol_elem);
    PAIR(pb_axpy(ec, o.c, -0.37f, a.c, n), pb_axpy(eg, o.g, -0.37f, a.g, n), "axpy", o, tol_elem);
    PAIR(pb_scale(ec, o.c, a.c, 1.7f, n), pb_scale(eg, o.g, a.g, 1.7f, n), "scale", o, tol_elem);
    PAIR(pb_scale(ec, o.c, o.c, 0.5f, n), pb_scale(eg, o.g, o.g, 0.5f, n), "scale (in place)", o, tol_elem);
    t2 s = t2_rand(C, -2, 2), m = t2_rand((size_t)N * C, -1, 1), m2 = t2_rand((size_t)N * C, -1, 1), ds = t2_rand(C, -1, 1);
    PAIR(pb_mul_cols(ec, o.c, m.c, s.c, N, C), pb_mul_cols(eg, o.g, m.g, s.g, N, C), "mul_cols", o, tol_elem);
    PAIR(pb_mul_cols_reduce(ec, ds.c, m.c, m2.c, N, C), pb_mul_cols_reduce(eg, ds.g, m.g, m2.g, N, C), "mul_cols_reduce", ds, tol_elem);
    t2 den = t2_rand(n, 0.5, 2), nr = t2_rand((size_t)N, -1, 1);
    PAIR(pb_div(ec, o.c, a.c, den.c, n), pb_div(eg, o.g, a.g, den.g, n), "div", o, tol_elem);
    PAIR(pb_row_norms(ec, nr.c, m.c, N, C), pb_row_norms(eg, nr.g, m.g, N, C), "row_norms", nr, tol_elem);
    pb_fill(ec, o.c, 3.25f, 1000);
    pb_fill(eg, o.g, 3.25f, 1000);
    cmp("fill", "o", &o, -1);
    pb_copy(ec, o.c, b.c, 5000);
    pb_copy(eg, o.g, b.g, 5000);
    pb_zero(ec, o.c + 6000, 777);
    pb_zero(eg, o.g + 6000, 777);
    cmp("copy+zero", "o", &o, -1);
    // dropout: the mask must be bitwise identical; p = 0 copies
    t2 mk = t2_rand(n, -1, 1);
    for (int k = 0; k < 2; k++) {
        float p = k ? 0.3f : 0.0f;
        pb_dropout_forward(ec, o.c, mk.c, a.c, p, 1234567ULL + k, n);
        pb_dropout_forward(eg, o.g, mk.g, a.g, p, 1234567ULL + k, n);
        cmp("dropout_forward", "mask", &mk, -1);
        cmp("dropout_forward", "out", &o, -1);
        pb_dropout_backward(ec, g.c, d.c, mk.c, n);
        pb_dropout_backward(eg, g.g, d.g, mk.g, n);
        cmp("dropout_backward", "dinp", &g, tol_elem);
    }
    // reductions
    checks++;
    int nfc = pb_has_nonfinite(ec, a.c, n), nfg = pb_has_nonfinite(eg, a.g, n);
    int nfc2 = pb_has_nonfinite(ec, b.c, n), nfg2 = pb_has_nonfinite(eg, b.g, n);
    if (nfc != nfg || nfc2 != nfg2 || !nfc || nfc2) fail("has_nonfinite", "flag", "cpu %g gpu %g", nfc * 10 + nfc2, nfg * 10 + nfg2);
    else printf("ok   has_nonfinite           parity (1,0)\n");
    cmp_scalar("sumsq", pb_sumsq(ec, b.c, n), pb_sumsq(eg, b.g, n), 1e-12);
    cmp_scalar("sumsq (n=0)", 1.0 + pb_sumsq(ec, b.c, 0), 1.0 + pb_sumsq(eg, b.g, 0), 0);
    t2_free(&a), t2_free(&b), t2_free(&d), t2_free(&o), t2_free(&g), t2_free(&s), t2_free(&m);
    t2_free(&m2), t2_free(&ds), t2_free(&mk), t2_free(&den), t2_free(&nr);
}

static void test_attention(void) {
    const int B = 3, T = 37, NH = 3, HS = 16, C = NH * HS;
    int32_t km_h[3 * 37];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) km_h[b * T + t] = b == 0 ? 1 : b == 1 ? (t < T - 9) : 0; // row 2: all masked
    i2 km = i2_from(km_h, (size_t)B * T);
    t2 q = t2_rand((size_t)B * T * C, -2, 2), k = t2_rand(q.n, -2, 2), v = t2_rand(q.n, -1, 1);
    t2 dout = t2_rand(q.n, -1, 1);
    for (int cfg = 0; cfg < 3; cfg++) {
        const float p = cfg == 2 ? 0.2f : 0.0f;
        const int32_t *kc = cfg >= 1 ? km.c : NULL, *kg = cfg >= 1 ? km.g : NULL;
        t2 out = t2_rand(q.n, -1, 1), att = t2_rand((size_t)B * NH * T * T, -1, 1), attd = t2_rand(att.n, -1, 1);
        pb_attention_forward(ec, out.c, att.c, attd.c, q.c, k.c, v.c, kc, B, T, NH, HS, p, 99);
        pb_attention_forward(eg, out.g, att.g, attd.g, q.g, k.g, v.g, kg, B, T, NH, HS, p, 99);
        char nm[40];
        snprintf(nm, sizeof nm, "attention_fwd %s%s", cfg ? "mask" : "nomask", p > 0 ? "+drop" : "");
        cmp(nm, "out", &out, tol_gemm);
        cmp(nm, "att", &att, tol_gemm);
        if (p > 0) cmp(nm, "attd", &attd, tol_gemm);
        else cmp(nm, "attd(in)", &attd, -1); // untouched when p == 0
        t2 dq = t2_rand(q.n, -1, 1), dk = t2_rand(q.n, -1, 1), dv = t2_rand(q.n, -1, 1);
        pb_attention_backward(ec, dq.c, dk.c, dv.c, dout.c, q.c, k.c, v.c, att.c, attd.c, B, T, NH, HS, p, 99);
        pb_attention_backward(eg, dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, att.g, attd.g, B, T, NH, HS, p, 99);
        snprintf(nm, sizeof nm, "attention_bwd %s%s", cfg ? "mask" : "nomask", p > 0 ? "+drop" : "");
        cmp(nm, "dq", &dq, tol_gemm);
        cmp(nm, "dk", &dk, tol_gemm);
        cmp(nm, "dv", &dv, tol_gemm);
        t2_free(&out), t2_free(&att), t2_free(&attd), t2_free(&dq), t2_free(&dk), t2_free(&dv);
    }
    // token gather
    t2 tok = t2_rand((size_t)B * C, -1, 1), dinp = t2_rand(q.n, -1, 1);
    pb_take_token_forward(ec, tok.c, q.c, B, T, C, 5);
    pb_take_token_forward(eg, tok.g, q.g, B, T, C, 5);
    cmp("take_token_forward", "out", &tok, -1);
    pb_take_token_backward(ec, dinp.c, tok.c, B, T, C, 5);
    pb_take_token_backward(eg, dinp.g, tok.g, B, T, C, 5);
    cmp("take_token_backward", "dinp", &dinp, tol_elem);
    i2_free(&km);
    t2_free(&q), t2_free(&k), t2_free(&v), t2_free(&dout), t2_free(&tok), t2_free(&dinp);
}

static void test_losses_adamw(void) {
    const int B = 9, V = 1001;
    int32_t lab_h[9];
    for (int b = 0; b < B; b++) lab_h[b] = (int32_t)pb_rng_below(&rng, V);
    i2 lab = i2_from(lab_h, B);
    t2 logits = t2_rand((size_t)B * V, -6, 6), probs = t2_rand(logits.n, -1, 1);
    for (int k = 0; k < 2; k++) {
        float sm = k ? 0.1f : 0.0f, lc = 0, lg = 0;
        pb_xent_forward(ec, probs.c, &lc, logits.c, lab.c, B, V, sm);
        pb_xent_forward(eg, probs.g, &lg, logits.g, lab.g, B, V, sm);
        cmp("xent_forward", "probs", &probs, tol_elem);
        cmp_scalar("xent_forward loss", lc, lg, tol_elem);
        t2 dl = t2_rand(logits.n, -1, 1);
        pb_xent_backward(ec, dl.c, probs.c, lab.c, B, V, sm);
        pb_xent_backward(eg, dl.g, probs.g, lab.g, B, V, sm);
        cmp("xent_backward", "dlogits", &dl, tol_elem);
        t2_free(&dl);
    }
    t2 pred = t2_rand((size_t)B * 3, -2, 2), tgt = t2_rand(pred.n, -2, 2), dp = t2_rand(pred.n, -1, 1);
    float mc = 0, mg = 0;
    pb_mse_forward(ec, &mc, pred.c, tgt.c, B, 3);
    pb_mse_forward(eg, &mg, pred.g, tgt.g, B, 3);
    cmp_scalar("mse_forward loss", mc, mg, tol_elem);
    pb_mse_backward(ec, dp.c, pred.c, tgt.c, B, 3);
    pb_mse_backward(eg, dp.g, pred.g, tgt.g, B, 3);
    cmp("mse_backward", "dpred", &dp, tol_elem);
    // argmax, with a tie (first wins) in row 0
    float two[2] = {50.0f, 50.0f};
    pb_upload(ec, logits.c + 10, two, 2);
    pb_upload(eg, logits.g + 10, two, 2);
    int32_t ac[9], ag[9];
    pb_argmax_rows(ec, ac, logits.c, B, V);
    pb_argmax_rows(eg, ag, logits.g, B, V);
    checks++;
    if (memcmp(ac, ag, sizeof ac) || ac[0] != 10) fail("argmax_rows", "pred", "cpu[0] %g gpu[0] %g", ac[0], ag[0]);
    else printf("ok   argmax_rows             exact (tie -> first)\n");
    // AdamW: 3 steps, with and without weight decay
    const size_t n = 5003;
    t2 p = t2_rand(n, -1, 1), m = t2_fill(n, 0), v = t2_fill(n, 0);
    for (int step = 1; step <= 3; step++) {
        t2 g = t2_rand(n, -1e-2f, 1e-2f);
        pb_adamw_step(ec, p.c, g.c, m.c, v.c, n, 1e-3f, 0.9f, 0.999f, 1e-8f, step == 2 ? 0.0f : 0.01f, step);
        pb_adamw_step(eg, p.g, g.g, m.g, v.g, n, 1e-3f, 0.9f, 0.999f, 1e-8f, step == 2 ? 0.0f : 0.01f, step);
        t2_free(&g);
    }
    cmp("adamw_step x3", "p", &p, tol_elem);
    cmp("adamw_step x3", "m", &m, tol_elem);
    cmp("adamw_step x3", "v", &v, tol_elem);
    i2_free(&lab);
    t2_free(&logits), t2_free(&probs), t2_free(&pred), t2_free(&tgt), t2_free(&dp), t2_free(&p), t2_free(&m), t2_free(&v);
}

// AOFT's AO(q) (D,d) and its backward. Shapes: d = 1, d = D (several column blocks), D past
// 4096 (many row chunks, a 4-row tail), a wide one; the clamp with c = +0 (q0 = -1) and c < 0.
// AO is compared bitwise (both sides evaluate the same IEEE double expression per entry, the
// CUDA build has --fmad=false); dq (accumulated into random values) with the reduction
// tolerance; the int32 clamp counter exactly (6 counted calls hit the clamp; NULL counts none).
static void test_aoft(void) {
    static const struct { int D, d, clamp; } cs[] = {
        {37, 5, 0}, {65, 1, 0}, {300, 300, 0}, {4100, 3, 0}, {1000, 260, 0},
        {37, 5, 1}, {65, 1, 1}, {300, 300, 1}, {50, 50, 2}};
    int32_t zero = 0;
    i2 cl = i2_from(&zero, 1);
    int counted = 0;
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        const int D = cs[k].D, d = cs[k].d;
        float *hq = pb_xmalloc((size_t)D * sizeof(float));
        for (int i = 0; i < D; i++) hq[i] = 2.0f * pb_rng_uniform(&rng) - 1.0f;
        if (cs[k].clamp) hq[0] = cs[k].clamp == 1 ? -1.0f : -1.0f - 2.4e-7f;
        t2 q = t2_from(hq, (size_t)D), AO = t2_rand((size_t)D * d, -1, 1);
        free(hq);
        char nm[48];
        snprintf(nm, sizeof nm, "ao_forward %dx%d%s", D, d, cs[k].clamp ? " clamp" : "");
        pb_ao_forward(ec, AO.c, q.c, D, d, cl.c);
        pb_ao_forward(eg, AO.g, q.g, D, d, cl.g);
        pb_ao_forward(ec, AO.c, q.c, D, d, NULL); // not counted
        pb_ao_forward(eg, AO.g, q.g, D, d, NULL);
        counted += cs[k].clamp != 0;
        cmp(nm, "AO", &AO, -1);
        cmp(nm, "q(in)", &q, -1);
        t2 G = t2_rand(AO.n, -1, 1), dq = t2_rand((size_t)D, -1, 1);
        snprintf(nm, sizeof nm, "ao_backward %dx%d%s", D, d, cs[k].clamp ? " clamp" : "");
        pb_ao_backward(ec, dq.c, q.c, G.c, D, d);
        pb_ao_backward(eg, dq.g, q.g, G.g, D, d);
        cmp(nm, "dq", &dq, tol_elem);
        cmp(nm, "G(in)", &G, -1);
        t2_free(&q), t2_free(&AO), t2_free(&G), t2_free(&dq);
    }
    cmp_i("ao_forward", "clamps", &cl);
    int32_t hc = -1;
    pb_download_i32(eg, &hc, cl.g, 1);
    checks++;
    if (hc != counted) fail("ao_forward", "clamps", "gpu counter %g, expected %g", hc, counted);
    else printf("ok   %-22s %-8s %d clamped builds counted\n", "ao_forward", "clamps", hc);
    i2_free(&cl);
}

// Device-memory accounting (pb_engine_memory, the bench's peak_device_gib): an allocation of n
// floats raises the current count by exactly 4n bytes and the peak at least as much; freeing it
// restores the count exactly. The CPU engine of --cpu-vs-cpu does not track memory (returns 0).
static void test_memory(void) {
    size_t cur0 = 0, peak0 = 0, cur1 = 0, peak1 = 0, cur2 = 0, peak2 = 0;
    int tracked = pb_engine_memory(eg, &cur0, &peak0);
    checks++;
    if (pb_engine_device(eg) == PB_DEVICE_CPU) {
        if (tracked) {
            failures++;
            fprintf(stderr, "FAIL engine_memory: the CPU engine claims to track device memory\n");
        }
        return;
    }
    if (!tracked) {
        failures++;
        fprintf(stderr, "FAIL engine_memory: the CUDA engine does not track its memory\n");
        return;
    }
    const size_t n = 1000003;
    float *p = pb_alloc(eg, n);
    pb_engine_memory(eg, &cur1, &peak1);
    pb_free(eg, p);
    pb_engine_memory(eg, &cur2, &peak2);
    if (cur1 != cur0 + n * sizeof(float) || peak1 < cur1 || peak0 > peak1 || cur2 != cur0 ||
        peak2 != peak1) {
        failures++;
        fprintf(stderr, "FAIL engine_memory: current %zu -> %zu -> %zu, peak %zu -> %zu -> %zu (+%zu bytes)\n",
                cur0, cur1, cur2, peak0, peak1, peak2, n * sizeof(float));
    } else
        printf("ok   %-22s %-8s current %zu -> %zu -> %zu bytes, peak %zu\n", "engine_memory",
               "bytes", cur0, cur1, cur2, peak2);
}

int main(int argc, char **argv) {
    char err[512] = {0};
    int cpu_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "tf32")) {
            setenv("PB_CUDA_MATH", "tf32", 1);
            tol_gemm = 5e-3;
        } else if (!strcmp(argv[i], "--cpu-vs-cpu")) {
            cpu_only = 1; // self-test of this harness without a GPU: 1-thread CPU engine as "gpu"
        } else {
            fprintf(stderr, "usage: test_cuda_ops [tf32] [--cpu-vs-cpu]\n");
            return 2;
        }
    }
    eg = pb_engine_init(cpu_only ? PB_DEVICE_CPU : PB_DEVICE_CUDA, 1, err, sizeof err);
    if (!eg) {
        printf("SKIP test_cuda_ops: %s\n", err);
        return 77;
    }
    ec = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
    if (!ec) {
        fprintf(stderr, "cpu engine: %s\n", err);
        return 1;
    }
    printf("cpu:  %s\ngpu:  %s\n", pb_engine_describe(ec), pb_engine_describe(eg));
    pb_rng_seed(&rng, 20240601);
    test_gemm();
    test_linear();
    test_patches_tokens();
    test_embeddings();
    test_layernorm();
    test_elementwise();
    test_attention();
    test_losses_adamw();
    test_aoft();
    test_memory();
    pb_engine_free(ec);
    pb_engine_free(eg);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
