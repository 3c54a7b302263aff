// svd.c: host-side SVDs for PiSSA and SVFit initialisation (LAPACK/OpenBLAS on host arrays; the
// callers download W from the engine first and upload the factors afterwards).
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "methods_internal.h"

pb_status pb_svd_full(const float *W, int m, int n, float *U, float *S, float *Vt, char *err,
                      size_t errlen) {
    // W is (m,n); U (m,k), S (k), Vt (k,n), k = min(m,n). gesdd destroys its input: work on a copy.
    int k = PB_MIN(m, n);
    float *A = pb_xmalloc((size_t)m * n * sizeof(float));
    memcpy(A, W, (size_t)m * n * sizeof(float));
    lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', m, n, A, n, S, U, k, Vt, n);
    free(A);
    if (info != 0)
        return pb_errf(PB_ERR_NUMERIC, err, errlen, "svd: LAPACKE_sgesdd failed (info=%d) on a %dx%d matrix",
                       (int)info, m, n);
    return PB_OK;
}

// Y (rows,cols) row-major -> its thin Q factor in place.
static pb_status qr_inplace(float *Y, int rows, int cols, float *tau, char *err, size_t errlen) {
    lapack_int info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, rows, cols, Y, cols, tau);
    if (info == 0) info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, rows, cols, cols, Y, cols, tau);
    if (info != 0)
        return pb_errf(PB_ERR_NUMERIC, err, errlen, "svd: QR failed (info=%d) on a %dx%d matrix", (int)info,
                       rows, cols);
    return PB_OK;
}

pb_status pb_svd_lowrank(const float *W, int m, int n, int r, int niter, uint64_t seed, float *U,
                         float *S, float *Vt, char *err, size_t errlen) {
    if (r < 1 || r > PB_MIN(m, n))
        return pb_errf(PB_ERR_ARG, err, errlen, "svd: rank %d outside [1, min(%d,%d)]", r, m, n);
    // Y (m,r) = W Omega; Z (n,r) = W^T Q; Bm (r,n) = Q^T W; Ub (r,r).
    float *Om = pb_xmalloc((size_t)n * r * sizeof(float));
    float *Y = pb_xmalloc((size_t)m * r * sizeof(float));
    float *Z = pb_xmalloc((size_t)n * r * sizeof(float));
    float *Bm = pb_xmalloc((size_t)r * n * sizeof(float));
    float *Ub = pb_xmalloc((size_t)r * r * sizeof(float));
    float *tau = pb_xmalloc((size_t)r * sizeof(float));
    pb_rng rng;
    pb_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)n * r; i++) Om[i] = pb_rng_normal(&rng);
    pb_status st = PB_OK;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, r, n, 1.0f, W, n, Om, r, 0.0f, Y, r);
    st = qr_inplace(Y, m, r, tau, err, errlen);
    for (int it = 0; st == PB_OK && it < niter; it++) {
        // power (subspace) iteration with re-orthonormalisation on both sides
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, r, m, 1.0f, W, n, Y, r, 0.0f, Z, r);
        st = qr_inplace(Z, n, r, tau, err, errlen);
        if (st != PB_OK) break;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, r, n, 1.0f, W, n, Z, r, 0.0f, Y, r);
        st = qr_inplace(Y, m, r, tau, err, errlen);
    }
    if (st == PB_OK) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, n, m, 1.0f, Y, r, W, n, 0.0f, Bm, n);
        st = pb_svd_full(Bm, r, n, Ub, S, Vt, err, errlen);
    }
    if (st == PB_OK)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, r, r, 1.0f, Y, r, Ub, r, 0.0f, U, r);
    free(Om); free(Y); free(Z); free(Bm); free(Ub); free(tau);
    return st;
}
