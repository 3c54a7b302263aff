// cpu_dense.c: GEMM and the PyTorch-layout linear layer on OpenBLAS (row-major cblas_sgemm).
// defines: pb_cpu_gemm, pb_cpu_linear_forward, pb_cpu_linear_backward
#include "cpu.h"

void pb_cpu_gemm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    (void)e;
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// out (N,OC) = inp (N,C) @ w^T (C,OC) + bias (OC). With a bias, out is pre-filled with the bias
// rows and the GEMM accumulates (beta = 1), so no second pass over out.
void pb_cpu_linear_forward(pb_engine *e, float *out, const float *inp, const float *w,
                           const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    float beta = 0.0f;
    if (bias) {
        int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)N * OC >= PB_OMP_MIN)
        for (int n = 0; n < N; n++) {
            float *out_n = out + (size_t)n * OC; // seek to out[n,:]
            for (int o = 0; o < OC; o++) out_n[o] = bias[o];
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
}

// dinp (N,C) += dout (N,OC) @ w (OC,C); dw (OC,C) += dout^T (OC,N) @ inp (N,C);
// dbias (OC) += column sums of dout. NULL grads are skipped (no dW GEMM for frozen weights).
void pb_cpu_linear_backward(pb_engine *e, float *dinp, float *dw, float *dbias, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    if (N <= 0) return;
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f,
                    dinp, C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C,
                    1.0f, dw, C);
    if (dbias) pb_cpu_colsum(e, dbias, dout, NULL, N, OC);
}
