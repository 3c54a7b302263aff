// dylora.c: DyLoRA (Valipour et al., EACL 2023, arXiv 2210.07558; formats.md 2.6): one LoRA of
// maximum rank r trained so that every truncation works. Each training step samples b in 1..r
// (one b for the whole model) and runs the truncated LoRA
//     y += (alpha/b) (dropout(x) A[:b]^T) B[:, :b]^T,    A (r,in), B (out,r),
// so the rows/columns above b get no gradient that step; evaluation (and merge / export) use
// b = eval_rank. The paper's "frozen" mode updates only row b of A and column b of B. Not in peft:
// checked against a PyTorch module in tests/ref/ref_methods.py and by finite differences.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"
#include "models/safetensors.h"

const pb_adapter_vtbl pb_dylora_vtbl;

// b of this forward: training draws it (the leader) or reads the leader's draw; else eval_rank.
static int dylora_rank(pb_dylora_state *st, int train, uint64_t seed) {
    if (!train) return st->eval_rank;
    if (st->leader) {
        pb_dylora_shared *sh = st->shared;
        if (st->cycle) {
            sh->b = 1 + (int)(sh->t % st->r);
        } else {
            pb_rng rng;
            pb_rng_seed(&rng, pb_method_seed(seed, st->index, 0xd71));
            int b = 1 + (int)(pb_rng_uniform(&rng) * (float)st->r);
            sh->b = b > st->r ? st->r : b;
        }
        sh->t++;
    }
    return st->shared->b;
}

// y (N,out) += s (xd A[:b]^T) B[:, :b]^T, s = alpha/b; x (N,in).
static void dylora_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train,
                           uint64_t seed) {
    pb_dylora_state *st = a->state;
    const float *A = a->params[0].data, *B = a->params[1].data;
    int b = st->b = dylora_rank(st, train, seed);
    st->s = st->alpha / (float)b;
    size_t nx = (size_t)N * st->in;
    const float *xd = pb_adapter_input_dropout(e, &st->xd, &st->cap_xd, &st->mask, &st->cap_mask, x, nx, st->p, train,
                                               seed, st->index, &st->dropped);
    pb_grow(e, &st->h, &st->cap_h, (size_t)N * b);
    pb_linear_forward(e, st->h, xd, A, NULL, N, st->in, b);                     // h (N,b): A's first b rows
    pb_gemm(e, 0, 1, N, st->out, b, st->s, st->h, b, B, st->r, 1.0f, y, st->out); // B[:, :b], ld r
}

// Full mode: dB[:, :b] += s dy^T h; gh = dy B[:, :b]; dA[:b] += s gh^T xd. Frozen mode: only
// column b-1 of dB and row b-1 of dA. dx += mask * (s gh A[:b]) either way.
static void dylora_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    pb_dylora_state *st = a->state;
    pb_param *A = &a->params[0], *B = &a->params[1];
    const float *xd = st->dropped ? st->xd : x;
    int b = st->b, k0 = st->frozen ? b - 1 : 0, nk = b - k0; // the columns / rows that learn
    if (B->grad)
        pb_gemm(e, 1, 0, st->out, nk, N, st->s, dy, st->out, st->h + k0, b, 1.0f, B->grad + k0, st->r);
    if (!A->grad && !dx) return;
    pb_grow(e, &st->gh, &st->cap_gh, (size_t)N * b);
    pb_gemm(e, 0, 0, N, b, st->out, 1.0f, dy, st->out, B->data, st->r, 0.0f, st->gh, b);
    if (A->grad)
        pb_gemm(e, 1, 0, nk, st->in, N, st->s, st->gh + k0, b, xd, st->in, 1.0f, A->grad + (size_t)k0 * st->in,
                st->in);
    if (!dx) return;
    if (st->dropped) {
        size_t nx = (size_t)N * st->in;
        pb_grow(e, &st->dxd, &st->cap_dxd, nx);
        pb_gemm(e, 0, 0, N, st->in, b, st->s, st->gh, b, A->data, st->in, 0.0f, st->dxd, st->in);
        pb_dropout_backward(e, dx, st->dxd, st->mask, nx);
    } else {
        pb_gemm(e, 0, 0, N, st->in, b, st->s, st->gh, b, A->data, st->in, 1.0f, dx, st->in);
    }
}

// W (out,in) += (alpha/e) B[:, :e] A[:e], e = eval_rank: the merged model is the eval-time one.
static void dylora_merge(pb_adapter *a, pb_engine *e, float *W, float *bias) {
    (void)bias;
    pb_dylora_state *st = a->state;
    int k = st->eval_rank;
    pb_gemm(e, 0, 0, st->out, st->in, k, st->alpha / (float)k, a->params[1].data, st->r, a->params[0].data, st->in,
            1.0f, W, st->in);
}

static void dylora_free(pb_adapter *a, pb_engine *e) {
    pb_dylora_state *st = a->state;
    if (--st->shared->refs == 0) free(st->shared);
    pb_free(e, st->xd); pb_free(e, st->mask); pb_free(e, st->h);
    pb_free(e, st->gh); pb_free(e, st->dxd);
    pb_adapter_free_common(e, a);
}

const pb_adapter_vtbl pb_dylora_vtbl = {"dylora", 0, dylora_forward, dylora_backward, dylora_merge, dylora_free, NULL};

// The shared draw of an attached DyLoRA adapter below this linear (model order), or NULL: then
// this adapter is the leader (its forward runs first each step).
static pb_dylora_shared *find_shared(const pb_site *site) {
    for (int i = 0; site->linears && i < site->nlinears && i < site->index; i++) {
        const pb_adapter *o = site->linears[i].adapter;
        if (o && o->vt == &pb_dylora_vtbl) return ((const pb_dylora_state *)o->state)->shared;
    }
    return NULL;
}

static int eval_rank_of(const pb_method_config *c) {
    int e = pb_mc_int(c, "eval_rank");
    return e > 0 ? e : pb_mc_int(c, "rank");
}

static pb_status dylora_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                               char *err, size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    int r = pb_mc_int(c, "rank"), ev = eval_rank_of(c);
    if (ev > r) return pb_errf(PB_ERR_ARG, err, errlen, "eval_rank: %d exceeds rank %d", ev, r);
    pb_adapter *a = pb_adapter_new(&pb_dylora_vtbl, l, 2, sizeof(pb_dylora_state));
    pb_dylora_state *st = a->state;
    st->r = r; st->in = l->in; st->out = l->out; st->index = site->index;
    st->eval_rank = ev;
    st->cycle = !strcmp(pb_mc_str(c, "sampling"), "cycle");
    st->frozen = pb_mc_bool(c, "frozen");
    float alpha = (float)pb_mc_num(c, "alpha");
    st->alpha = alpha > 0 ? alpha : (float)r;
    st->p = (float)pb_mc_num(c, "dropout");
    st->shared = find_shared(site);
    if (!st->shared) {
        st->shared = pb_xcalloc(1, sizeof(pb_dylora_shared));
        st->shared->b = r;
        st->leader = 1;
    }
    st->shared->refs++;
    st->b = ev;
    st->s = st->alpha / (float)ev;
    pb_adapter_param(e, a, 0, "lora_A.weight", 2, (int64_t[]){r, l->in}, 0);
    pb_adapter_param(e, a, 1, "lora_B.weight", 2, (int64_t[]){l->out, r}, 0);
    pb_lora_init_A(e, a->params[0].data, r, l->in, 0, pb_method_seed(c->seed, site->index, 0xa)); // B = 0
    l->adapter = a;
    return PB_OK;
}

// PEFT has no DyLoRA; at the chosen rank it is exactly a LoRA: exported as peft LoRA with
// r = eval_rank, lora_alpha = alpha (peft's scaling alpha/r = ours) and the truncated factors.
static pb_status dylora_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err,
                                    size_t errlen) {
    pb_engine *e = pb_model_engine(m);
    int n = 0, k = eval_rank_of(c);
    pb_linear *ls = pb_model_linears(m, &n);
    pb_st_writer *w = pb_st_writer_init();
    cJSON *targets = cJSON_CreateArray();
    char key[3 * PB_NAME_MAX], mod[2 * PB_NAME_MAX], t[2 * PB_NAME_MAX];
    int any = 0;
    float alpha = 0.0f;
    for (int i = 0; i < n; i++) {
        pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        if (a->vt != &pb_dylora_vtbl) {
            pb_st_writer_free(w);
            cJSON_Delete(targets);
            return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "method: %s has a non-DyLoRA adapter", ls[i].name);
        }
        pb_dylora_state *st = a->state;
        alpha = st->alpha;
        float *hA = pb_xmalloc((size_t)st->r * st->in * sizeof(float));
        float *hB = pb_xmalloc((size_t)st->out * st->r * sizeof(float));
        float *hBk = pb_xmalloc((size_t)st->out * k * sizeof(float));
        pb_download(e, hA, a->params[0].data, (size_t)st->r * st->in); // rows 0..k-1 are A[:k]
        pb_download(e, hB, a->params[1].data, (size_t)st->out * st->r);
        for (int o = 0; o < st->out; o++) memcpy(hBk + (size_t)o * k, hB + (size_t)o * st->r, k * sizeof(float));
        pb_peft_module(m, &ls[i], mod, sizeof(mod));
        snprintf(key, sizeof(key), PEFT_PREFIX "%s.lora_A.weight", mod);
        pb_st_writer_add(w, key, hA, 2, (int64_t[]){k, st->in});
        snprintf(key, sizeof(key), PEFT_PREFIX "%s.lora_B.weight", mod);
        pb_st_writer_add(w, key, hBk, 2, (int64_t[]){st->out, k});
        free(hA); free(hB); free(hBk);
        pb_peft_target(m, &ls[i], t, sizeof(t));
        pb_peft_add_target(targets, t);
        any = 1;
    }
    if (!any) {
        pb_st_writer_free(w);
        cJSON_Delete(targets);
        return pb_errf(PB_ERR_ARG, err, errlen, "method: the model has no adapters to export");
    }
    cJSON *o = pb_peft_lora_config(k, alpha, (float)pb_mc_num(c, "dropout"), targets, 0, 0, 0);
    cJSON_AddNumberToObject(o, "peftbench_dylora_max_rank", pb_mc_int(c, "rank")); // provenance
    return pb_peft_finish(m, c, w, o, dir, err, errlen);
}

// eval_rank must fit under rank (checked wherever the method meets a model: info and apply).
static const char *dylora_site_check(const pb_method_config *c, int in, int out) {
    (void)in; (void)out;
    return eval_rank_of(c) > pb_mc_int(c, "rank") ? "eval_rank exceeds rank" : NULL;
}

// Parameters: the full A (r,in) and B (out,r). FLOPs: the eval-time forward at eval_rank
// (training steps cost (r+1)/2 on average).
static double dylora_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    return 2.0 * eval_rank_of(c) * (in + out);
}

static const pb_method_opt dylora_opts[] = {
    {"rank", PB_OPT_INT, "8", 1, PB_OPT_RANK_MAX, 0, NULL, "r: the largest rank (rows of A, columns of B)"},
    {"alpha", PB_OPT_NUM, "0", 0, 1e6, 0, NULL, "scaling alpha/b at rank b (the paper's); 0 = rank"},
    PB_OPT_LORA_DROPOUT,
    {"eval_rank", PB_OPT_INT, "0", 0, PB_OPT_RANK_MAX, 0, NULL,
     "rank b used outside training (eval, merge, export); 0 = rank"},
    {"sampling", PB_OPT_ENUM, "uniform", 0, 0, 0, "uniform|cycle",
     "b per training step: uniform on 1..r (the paper) or 1, 2, ..., r in turn"},
    {"frozen", PB_OPT_BOOL, "false", 0, 0, 0, NULL,
     "the paper's frozen mode: only row b of A and column b of B learn each step"},
    PB_OPT_TARGETS("query,value"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_dylora = {
    .name = "dylora",
    .summary = "DyLoRA: LoRA trained at a rank b ~ U{1..r} per step, y += (alpha/b) B[:, :b] A[:b] x; eval at eval_rank",
    .reference = "PyTorch module from Valipour et al. 2023 (arXiv 2210.07558); not in peft",
    .opts = dylora_opts,
    .nopts = (int)(sizeof dylora_opts / sizeof dylora_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_check = dylora_site_check,
    .site_params = pb_lora_site_params,
    .site_flops = dylora_site_flops,
    .attach = dylora_attach,
    .export_peft = dylora_export_peft,
};
