// pissa.c: PiSSA = LoRA whose factors start at the principal singular triplets of W, with the
// frozen base overwritten by the residual (PEFT LoraLayer.pissa_init, formats.md §2.2):
//   Sr <- Sr / s;  A = diag(sqrt(Sr)) Vh_r (r,in);  B = U_r diag(sqrt(Sr)) (out,r);
//   W <- W - s B A (from the stored factors, so W_res + s B A reproduces W in float32).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

static pb_status pissa_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                             char *err, size_t errlen) {
    int index = site->index;
    int r = pb_mc_int(c, "rank"), m = l->out, n = l->in, k = PB_MIN(m, n);
    PB_CHECK(r >= 1 && r <= k, "pissa rank %d outside the size rule for %s", r, l->name); // pb_method_apply checked
    int niter = -1; // -1: full SVD ("svd"); "niter_N": torch.svd_lowrank with N iterations
    const char *init = pb_mc_str(c, "init");
    if (!strncmp(init, "niter_", 6)) {
        long v = strtol(init + 6, NULL, 10);
        if (v > 1000)
            return pb_errf(PB_ERR_ARG, err, errlen, "init: pissa expects niter_N with N <= 1000 (got '%s')", init);
        niter = (int)v;
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
    pb_adapter *a = pb_lora_create(e, l, r, s, (float)pb_mc_num(c, "dropout"), index);
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

static int pissa_rank_limit(const pb_method_config *c, int in, int out) {
    (void)c;
    return PB_MIN(in, out);
}

static const pb_method_opt pissa_opts[] = {
    {"rank", PB_OPT_INT, "8", 1, PB_OPT_RANK_MAX, 0, NULL, "r principal singular triplets (<= min(out,in))"},
    PB_OPT_LORA_ALPHA,
    PB_OPT_LORA_DROPOUT,
    PB_OPT_LORA_RSLORA,
    {"init", PB_OPT_ENUM, "svd", 0, 0, 0, "svd|niter_N",
     "full SVD (PEFT init_lora_weights=\"pissa\") or randomized with N iterations (\"pissa_niter_N\")"},
    PB_OPT_TARGETS("query,value"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_pissa = {
    .name = "pissa",
    .summary = "PiSSA: LoRA started at the top-r singular triplets of W, the residual frozen",
    .reference = "peft LoraConfig(init_lora_weights=\"pissa\") (Meng et al. 2024)",
    .opts = pissa_opts,
    .nopts = (int)(sizeof pissa_opts / sizeof pissa_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .rank_limit = pissa_rank_limit,
    .site_params = pb_lora_site_params,
    .site_flops = pb_lora_site_flops,
    .attach = pissa_attach,
    .export_peft = pb_lora_export_peft,
};
