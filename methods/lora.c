// lora.c: LoRA as an adapter on a frozen linear: y += s * (dropout(x) A^T) B^T (PEFT layout:
// A = lora_A.weight (r,in), B = lora_B.weight (out,r)). No dense delta is formed while training.
#include <math.h>
#include <string.h>
#include "methods_internal.h"

float pb_lora_scaling(const pb_method_config *c, int r) {
    float a = (float)pb_mc_num(c, "alpha");
    float alpha = a > 0 ? a : (float)r;
    return pb_mc_bool(c, "rslora") ? alpha / sqrtf((float)r) : alpha / (float)r;
}

// y (N,out) += s * (xd A^T) B^T, xd = dropout(x) when training with p > 0, x (N,in).
static void lora_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train,
                         uint64_t seed) {
    pb_lora_state *st = a->state;
    const float *A = a->params[0].data, *B = a->params[1].data;
    size_t nx = (size_t)N * st->in;
    const float *xd = pb_adapter_input_dropout(e, &st->xd, &st->cap_xd, &st->mask, &st->cap_mask, x, nx, st->p, train,
                                               seed, st->index, &st->dropped);
    pb_grow(e, &st->h, &st->cap_h, (size_t)N * st->r);
    pb_linear_forward(e, st->h, xd, A, NULL, N, st->in, st->r);                  // h (N,r)
    pb_gemm(e, 0, 1, N, st->out, st->r, st->s, st->h, st->r, B, st->r, 1.0f, y, st->out);
}

// dB += s dy^T h; gh = dy B; dA += s gh^T xd; dx += mask * (s gh A).
static void lora_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    pb_lora_state *st = a->state;
    pb_param *A = &a->params[0], *B = &a->params[1];
    const float *xd = st->dropped ? st->xd : x;
    if (B->grad)
        pb_gemm(e, 1, 0, st->out, st->r, N, st->s, dy, st->out, st->h, st->r, 1.0f, B->grad, st->r);
    if (!A->grad && !dx) return;
    pb_grow(e, &st->gh, &st->cap_gh, (size_t)N * st->r);
    pb_gemm(e, 0, 0, N, st->r, st->out, 1.0f, dy, st->out, B->data, st->r, 0.0f, st->gh, st->r);
    if (A->grad)
        pb_gemm(e, 1, 0, st->r, st->in, N, st->s, st->gh, st->r, xd, st->in, 1.0f, A->grad, st->in);
    if (dx) {
        if (st->dropped) {
            size_t nx = (size_t)N * st->in;
            pb_grow(e, &st->dxd, &st->cap_dxd, nx);
            pb_gemm(e, 0, 0, N, st->in, st->r, st->s, st->gh, st->r, A->data, st->in, 0.0f, st->dxd, st->in);
            pb_dropout_backward(e, dx, st->dxd, st->mask, nx);
        } else {
            pb_gemm(e, 0, 0, N, st->in, st->r, st->s, st->gh, st->r, A->data, st->in, 1.0f, dx, st->in);
        }
    }
}

// W (out,in) += s B A.
static void lora_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    (void)b;
    pb_lora_state *st = a->state;
    pb_gemm(e, 0, 0, st->out, st->in, st->r, st->s, a->params[1].data, st->r, a->params[0].data,
            st->in, 1.0f, W, st->in);
}

static void lora_free(pb_adapter *a, pb_engine *e) {
    pb_lora_state *st = a->state;
    pb_free(e, st->A0); pb_free(e, st->B0);
    pb_free(e, st->xd); pb_free(e, st->mask); pb_free(e, st->h);
    pb_free(e, st->gh); pb_free(e, st->dxd);
    pb_adapter_free_common(e, a);
}

const pb_adapter_vtbl pb_lora_vtbl = {"lora", 0, lora_forward, lora_backward, lora_merge, lora_free, NULL};

pb_adapter *pb_lora_create(pb_engine *e, pb_linear *l, int r, float s, float p, int index) {
    pb_adapter *a = pb_adapter_new(&pb_lora_vtbl, l, 2, sizeof(pb_lora_state));
    pb_lora_state *st = a->state;
    st->r = r; st->in = l->in; st->out = l->out; st->index = index; st->s = s; st->p = p;
    pb_adapter_param(e, a, 0, "lora_A.weight", 2, (int64_t[]){r, l->in}, 0);
    pb_adapter_param(e, a, 1, "lora_B.weight", 2, (int64_t[]){l->out, r}, 0);
    l->adapter = a;
    return a;
}

static pb_status lora_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                             char *err, size_t errlen) {
    int index = site->index;
    int r = pb_mc_int(c, "rank");
    int gaussian = !strcmp(pb_mc_str(c, "init"), "gaussian");
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    pb_adapter *a = pb_lora_create(e, l, r, pb_lora_scaling(c, r), (float)pb_mc_num(c, "dropout"), index);
    pb_lora_init_A(e, a->params[0].data, r, l->in, gaussian, pb_method_seed(c->seed, index, 0xa));
    return PB_OK;
}

// A (r,in): kaiming_uniform(a=sqrt5) = U(-1/sqrt(in), 1/sqrt(in)) (PEFT default), or
// N(0, (1/r)^2) (PEFT "gaussian"). B stays 0 so step 0 is the pre-trained function.
void pb_lora_init_A(pb_engine *e, float *A, int r, int in, int gaussian, uint64_t seed) {
    size_t n = (size_t)r * in;
    float *hA = pb_xmalloc(n * sizeof(float));
    pb_rng rng;
    pb_rng_seed(&rng, seed);
    float bound = 1.0f / sqrtf((float)in);
    for (size_t i = 0; i < n; i++)
        hA[i] = gaussian ? pb_rng_normal(&rng) / (float)r : (2.0f * pb_rng_uniform(&rng) - 1.0f) * bound;
    pb_upload(e, A, hA, n);
    free(hA);
}

// Size rule: none (PEFT accepts any r >= 1; above min(out,in) the update is merely redundant).
static int lora_rank_limit(const pb_method_config *c, int in, int out) {
    (void)c; (void)in; (void)out;
    return 0;
}
// A (r,in) + B (out,r); forward x A^T then h B^T: 2 r (in + out) FLOPs per token.
double pb_lora_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    return (double)pb_mc_int(c, "rank") * (in + out);
}
double pb_lora_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    return 2.0 * pb_mc_int(c, "rank") * (in + out);
}

static const pb_method_opt lora_opts[] = {
    {"rank", PB_OPT_INT, "8", 1, PB_OPT_RANK_MAX, 0, NULL, "r: rows of A, columns of B"},
    PB_OPT_LORA_ALPHA,
    PB_OPT_LORA_DROPOUT,
    PB_OPT_LORA_RSLORA,
    {"init", PB_OPT_ENUM, "kaiming", 0, 0, 0, "kaiming|gaussian",
     "A's init: kaiming_uniform(a=sqrt 5) (PEFT default) or N(0, 1/r^2); B = 0"},
    PB_OPT_TARGETS("query,value"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_lora = {
    .name = "lora",
    .summary = "LoRA: y += (alpha/r) B A dropout(x), A, B trainable, W frozen",
    .reference = "peft LoraConfig (Hu et al. 2021)",
    .opts = lora_opts,
    .nopts = (int)(sizeof lora_opts / sizeof lora_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .rank_limit = lora_rank_limit,
    .site_params = pb_lora_site_params,
    .site_flops = pb_lora_site_flops,
    .attach = lora_attach,
    .export_peft = pb_lora_export_peft,
};
