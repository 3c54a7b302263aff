// cpu_dense.c: GEMM and the PyTorch-layout linear layer on the engine's GEMM provider
// (OpenBLAS or oneDNN, row-major sgemm; cpu_gemm.c).
// defines: pb_cpu_gemm, pb_cpu_linear_forward, pb_cpu_linear_backward
#include "cpu.h"
#include <omp.h>
#include <string.h>

// Threading: the provider runs single-threaded and the engine splits each GEMM into e->threads
// contiguous blocks of output rows (or columns, whichever dimension is larger), one
// single-threaded provider call per OpenMP thread. One thread pool (OpenMP) then serves both
// GEMMs and elementwise work; with OpenBLAS's own pthread pool, its workers spin after each GEMM
// while the OpenMP team starts (and vice versa), which cost 2-3x on 2 cores (docs/engine.md).
// Each output element is produced by one call with a fixed block, so results are bitwise
// reproducible for a fixed provider and thread count.
#define PB_GEMM_MIN_FLOPS 4e6 // below this a single call is faster than a fork/join
#define PB_GEMM_ALIGN 16      // block boundaries on multiples of the kernel tile

// C = alpha op(A) op(B) + beta C, split over the team; with `bias` (N) each thread first sets
// its own block of C to the bias rows (C[i,j] = bias[j]) and the GEMM accumulates onto it
// (beta must be 1): the fill lands in the cache of the core that reads it next, with no
// separate pass or fork/join.
static void cpu_gemm_split(pb_engine *e, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                           int lda, const float *B, int ldb, float beta, float *C, int ldc, const float *bias) {
    if (M <= 0 || N <= 0) return;
    pb_cpu_state *st = e->state;
    const pb_sgemm_fn sgemm = st->gemm->sgemm;
    const int nt = e->threads;
    if (st->bf16 && M >= PB_BF16_MIN_DIM && N >= PB_BF16_MIN_DIM && K >= PB_BF16_MIN_DIM &&
        2.0 * M * N * K >= PB_BF16_MIN_FLOPS) { // bf16 mode: oneDNN's matmul, its own threading
        if (bias) {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, sizeof(float) * (size_t)N);
        }
        pb_onednn_sgemm_bf16(st->bf16, nt, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (nt == 1 || 2.0 * M * N * K < PB_GEMM_MIN_FLOPS || (M < 2 * PB_GEMM_ALIGN && N < 2 * PB_GEMM_ALIGN)) {
        if (bias)
            for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, sizeof(float) * (size_t)N);
        sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int split_rows = M >= N;
    const int D = split_rows ? M : N;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), k = omp_get_num_threads();
        int d0 = (int)((int64_t)D * t / k), d1 = (int)((int64_t)D * (t + 1) / k);
        // round the boundaries to the kernel tile (the last block takes the remainder)
        d0 = t == 0 ? 0 : (d0 + PB_GEMM_ALIGN / 2) / PB_GEMM_ALIGN * PB_GEMM_ALIGN;
        d1 = t == k - 1 ? D : (d1 + PB_GEMM_ALIGN / 2) / PB_GEMM_ALIGN * PB_GEMM_ALIGN;
        if (d0 > D) d0 = D;
        if (d1 > D) d1 = D;
        if (d1 > d0) {
            if (split_rows) { // rows [d0,d1) of op(A) and C
                const float *Ab = ta ? A + d0 : A + (size_t)d0 * lda;
                float *Cb = C + (size_t)d0 * ldc;
                if (bias)
                    for (int i = 0; i < d1 - d0; i++) memcpy(Cb + (size_t)i * ldc, bias, sizeof(float) * (size_t)N);
                sgemm(ta, tb, d1 - d0, N, K, alpha, Ab, lda, B, ldb, beta, Cb, ldc);
            } else { // columns [d0,d1) of op(B) and C
                const float *Bb = tb ? B + (size_t)d0 * ldb : B + d0;
                if (bias)
                    for (int i = 0; i < M; i++)
                        memcpy(C + (size_t)i * ldc + d0, bias + d0, sizeof(float) * (size_t)(d1 - d0));
                sgemm(ta, tb, M, d1 - d0, K, alpha, A, lda, Bb, ldb, beta, C + d0, ldc);
            }
        }
    }
}

void pb_cpu_gemm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cpu_gemm_split(e, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

// out (N,OC) = inp (N,C) @ w^T (C,OC) + bias (OC). With a bias, each thread fills its block of
// out with the bias rows and its GEMM accumulates (beta = 1): no second pass over out.
void pb_cpu_linear_forward(pb_engine *e, float *out, const float *inp, const float *w,
                           const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    cpu_gemm_split(e, 0, 1, N, OC, C, 1.0f, inp, C, w, C, bias ? 1.0f : 0.0f, out, OC, bias);
}

// dinp (N,C) += dout (N,OC) @ w (OC,C); dw (OC,C) += dout^T (OC,N) @ inp (N,C);
// dbias (OC) += column sums of dout. NULL grads are skipped (no dW GEMM for frozen weights).
void pb_cpu_linear_backward(pb_engine *e, float *dinp, float *dw, float *dbias, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    if (N <= 0) return;
    if (dinp)
        pb_cpu_gemm(e, 0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    if (dw)
        pb_cpu_gemm(e, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) pb_cpu_colsum(e, dbias, dout, NULL, N, OC);
}
