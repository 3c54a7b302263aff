// test_ops_util.h: helpers for the engine op tests: random data, relative errors, a
// finite-difference checker over double-precision replicas of the forward passes.
// defines: T_CHECK, t_fail_count, t_rand_vec, t_to_dev, t_to_host, t_rel_err, t_rel_err_fd,
//          t_fd_grad, t_ref_gemm, t_block_err, t_report
#ifndef PB_TEST_OPS_UTIL_H
#define PB_TEST_OPS_UTIL_H

#include "engine/ops.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures = 0;

#define T_CHECK(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            t_failures++;                                                                          \
        }                                                                                          \
    } while (0)

// Fills h[0..n) with uniform values in [lo,hi) from r.
static inline void t_rand_vec(pb_rng *r, float *h, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * pb_rng_uniform(r);
}

// Engine buffer holding a copy of host h (caller frees with pb_free).
static inline float *t_to_dev(pb_engine *e, const float *h, size_t n) {
    float *d = pb_alloc(e, n);
    pb_upload(e, d, h, n);
    return d;
}

// Host copy (malloc'd, caller frees) of engine buffer d.
static inline float *t_to_host(pb_engine *e, const float *d, size_t n) {
    float *h = pb_xmalloc(n * sizeof(float) + 1);
    pb_download(e, h, d, n);
    return h;
}

// ||a-b|| / max(||b||, tiny) with a float, b double.
static inline double t_rel_err(const float *a, const double *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
}

// Double replica of row-major C = alpha op(A) op(B) + beta C0 into R (M,N dense); `round`, if
// not NULL, is applied to every operand element first (e.g. bf16 rounding).
static inline void t_ref_gemm(int ta, int tb, int M, int N, int K, double alpha, const float *A, int lda,
                              const float *B, int ldb, double beta, const float *C0, int ldc,
                              float (*round)(float), double *R) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                if (round) a = round(a), b = round(b);
                s += (double)a * b;
            }
            R[(size_t)i * N + j] = alpha * s + beta * C0[(size_t)i * ldc + j];
        }
}

// ||C - R|| / ||R|| over the M x N block of C (leading dimension ldc); R is (M,N) dense.
static inline double t_block_err(const float *C, int ldc, const double *R, int M, int N) {
    double num = 0, den = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double d = C[(size_t)i * ldc + j] - R[(size_t)i * N + j];
            num += d * d;
            den += R[(size_t)i * N + j] * R[(size_t)i * N + j];
        }
    return sqrt(num) / (den > 0 ? sqrt(den) : 1);
}

// A double-precision replica of an op's forward: out (nout) = f(x (nx)).
typedef void (*t_fwd_fn)(const void *ctx, const double *x, double *out);

// Central differences of L(x) = sum_i out_i * R_i, written to g (nx). Step h.
static inline void t_fd_grad(t_fwd_fn f, const void *ctx, const double *x0, size_t nx, const double *R,
                      size_t nout, double h, double *g) {
    double *x = pb_xmalloc(nx * sizeof(double));
    double *out = pb_xmalloc(nout * sizeof(double));
    memcpy(x, x0, nx * sizeof(double));
    for (size_t i = 0; i < nx; i++) {
        double s[2];
        for (int k = 0; k < 2; k++) {
            x[i] = x0[i] + (k ? -h : h);
            f(ctx, x, out);
            double L = 0.0;
            for (size_t j = 0; j < nout; j++) L += out[j] * R[j];
            s[k] = L;
        }
        x[i] = x0[i];
        g[i] = (s[0] - s[1]) / (2.0 * h);
    }
    free(x);
    free(out);
}

// Float -> double copy into dst.
static inline void t_widen(double *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (double)src[i];
}

static inline int t_report(const char *name) {
    if (t_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, t_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
