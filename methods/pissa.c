// pissa.c: PiSSA = LoRA whose factors start at the principal singular triplets of W, with the
// frozen base overwritten by the residual (PEFT LoraLayer.pissa_init, formats.md §2.2):
//   Sr <- Sr / s;  A = diag(sqrt(Sr)) Vh_r (r,in);  B = U_r diag(sqrt(Sr)) (out,r);
//   W <- W - s B A (from the stored factors, so W_res + s B A reproduces W in float32).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

pb_status pb_pissa_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, int index,
                          char *err, size_t errlen) {
    int r = c->rank, m = l->out, n = l->in, k = PB_MIN(m, n);
    if (r < 1 || r > k)
        return pb_errf(PB_ERR_ARG, err, errlen, "rank: pissa needs 1 <= rank <= min(out,in) = %d for %s (got %d)",
                       k, l->name, r);
    if (c->dropout < 0 || c->dropout >= 1)
        return pb_errf(PB_ERR_ARG, err, errlen, "dropout: must be in [0,1) (got %g)", c->dropout);
    int niter = -1; // -1: full SVD
    if (!strncmp(c->init, "niter_", 6)) {
        char *end = NULL;
        long v = strtol(c->init + 6, &end, 10);
        if (!c->init[6] || *end || v < 0 || v > 1000)
            return pb_errf(PB_ERR_ARG, err, errlen, "init: pissa expects 'svd' or 'niter_N' with N >= 0 (got '%s')", c->init);
        niter = (int)v;
    } else if (strcmp(c->init, "svd") && strcmp(c->init, "kaiming") && c->init[0]) {
        // "kaiming" is the config default; for pissa it means the default full SVD
        return pb_errf(PB_ERR_ARG, err, errlen, "init: pissa expects 'svd' or 'niter_N' (got '%s')", c->init);
    }
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);

    // Host: W (m,n) -> U (m,r), S (r), Vt (r,n)
    float *W = pb_xmalloc((size_t)m * n * sizeof(float));
    float *U = pb_xmalloc((size_t)m * k * sizeof(float));
    float *S = pb_xmalloc((size_t)k * sizeof(float));
    float *Vt = pb_xmalloc((size_t)k * n * sizeof(float));
    pb_download(e, W, l->w->data, (size_t)m * n);
    pb_status st = niter < 0 ? pb_svd_full(W, m, n, U, S, Vt, err, errlen)
                             : pb_svd_lowrank(W, m, n, r, niter, pb_method_seed(c->seed, index, 0x5d), U,
                                              S, Vt, err, errlen);
    if (st != PB_OK) { free(W); free(U); free(S); free(Vt); return st; }
    int ldu = niter < 0 ? k : r;
    float s = pb_lora_scaling(c, r);
    float *hA = pb_xmalloc((size_t)r * n * sizeof(float)); // (r,n)
    float *hB = pb_xmalloc((size_t)m * r * sizeof(float)); // (m,r)
    for (int j = 0; j < r; j++) {
        float sq = sqrtf(S[j] / s);
        for (int i = 0; i < n; i++) hA[(size_t)j * n + i] = sq * Vt[(size_t)j * n + i];
        for (int i = 0; i < m; i++) hB[(size_t)i * r + j] = U[(size_t)i * ldu + j] * sq;
    }
    pb_adapter *a = pb_lora_create(e, l, r, s, c->dropout, index);
    pb_lora_state *ls = a->state;
    ls->pissa = 1;
    pb_upload(e, a->params[0].data, hA, (size_t)r * n);
    pb_upload(e, a->params[1].data, hB, (size_t)m * r);
    ls->A0 = pb_alloc(e, (size_t)r * n);
    ls->B0 = pb_alloc(e, (size_t)m * r);
    pb_copy(e, ls->A0, a->params[0].data, (size_t)r * n);
    pb_copy(e, ls->B0, a->params[1].data, (size_t)m * r);
    // W_res (m,n) = W - s B A
    pb_gemm(e, 0, 0, m, n, r, -s, a->params[1].data, r, a->params[0].data, n, 1.0f, l->w->data, n);
    free(W); free(U); free(S); free(Vt); free(hA); free(hB);
    return PB_OK;
}
