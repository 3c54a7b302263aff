// adaptformer.c: AdaptFormer (Chen et al. 2022, "AdaptFormer: Adapting Vision Transformers for
// Scalable Visual Recognition", arXiv 2205.13535): a scaled bottleneck in parallel with the FFN,
//   out = FFN(u) + s (ReLU(u W_dᵀ + b_d) W_uᵀ + b_u),   u = LN(x'), the FFN's input (paper Eq. 3)
// then the block's residual. Two cooperating adapters per block: the one on the FFN's first
// linear (role intermediate) owns the bottleneck (bottleneck.c) and computes the branch from that
// linear's input u; the one on the FFN's output linear (role output, no parameters) adds the
// branch to its output and, in backward (which reaches it first), hands its dy back as the
// branch's gradient. The authors' code defaults to the raw x' as the branch input
// (adapter_layernorm_option "none"); this is the paper's equation. s = 0.1 and init "lora" (down
// kaiming-uniform, up 0) are the authors' VTAB settings. ViT-B, m = 8: 12 × 13,064 = 156,768 (the
// HTA table's 0.16M). Not mergeable (nonlinear).
#include <string.h>
#include "methods_internal.h"

typedef struct {
    pb_bottleneck b;
    float *branch;  // (N,D) s B(u) of the last forward; the partner adds it
    float *dbranch; // (N,D) gradient wrt the branch, written by the partner's backward
    size_t cap_branch, cap_dbranch;
} adaptformer_state;

// ---- the bottleneck, on the intermediate linear (u = its input x) ----
static void af_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    (void)y; (void)train; (void)seed;
    adaptformer_state *st = a->state;
    size_t nd = (size_t)N * st->b.D;
    pb_grow(e, &st->branch, &st->cap_branch, nd);
    pb_zero(e, st->branch, nd);
    pb_bottleneck_forward(a, e, &st->b, x, st->branch, N);
}
// The partner's backward ran first (it is later in the forward): dbranch holds its dy.
static void af_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    (void)dy; (void)x;
    adaptformer_state *st = a->state;
    pb_bottleneck_backward(a, e, &st->b, st->dbranch, dx, N);
}
static void af_free(pb_adapter *a, pb_engine *e) {
    adaptformer_state *st = a->state;
    pb_bottleneck_free(e, &st->b);
    pb_free(e, st->branch);
    pb_free(e, st->dbranch);
    pb_adapter_free_common(e, a);
}
static const pb_adapter_vtbl af_vtbl = {"adaptformer", 0, af_forward, af_backward, NULL, af_free, NULL};

// ---- the sum, on the output linear ----
typedef struct {
    adaptformer_state *src; // the same block's bottleneck (owned by the intermediate's adapter)
} af_add_state;

static void af_add_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    (void)x; (void)train; (void)seed;
    af_add_state *st = a->state;
    pb_add(e, y, y, st->src->branch, (size_t)N * st->src->b.D);
}
static void af_add_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    (void)dx; (void)x;
    adaptformer_state *src = ((af_add_state *)a->state)->src;
    size_t nd = (size_t)N * src->b.D;
    pb_grow(e, &src->dbranch, &src->cap_dbranch, nd);
    pb_copy(e, src->dbranch, dy, nd);
}
static void af_add_free(pb_adapter *a, pb_engine *e) {
    pb_adapter_free_common(e, a);
}
static const pb_adapter_vtbl af_add_vtbl = {"adaptformer-add", 0, af_add_forward, af_add_backward, NULL, af_add_free,
                                            NULL};

static pb_status af_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site, char *err,
                           size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    char role[PB_NAME_MAX];
    pb_method_linear_role(l->name, role, sizeof role);
    if (!strcmp(role, "intermediate")) {
        pb_adapter *a = pb_adapter_new(&af_vtbl, l, 4, sizeof(adaptformer_state));
        adaptformer_state *st = a->state;
        pb_bottleneck_init(e, a, &st->b, l->in, pb_mc_int(c, "rank"), c, site->index);
        l->adapter = a;
        return PB_OK;
    }
    // output: the bottleneck is on the same block's intermediate linear, the linear before it
    pb_linear *prev = site->linears && site->index > 0 ? &site->linears[site->index - 1] : NULL;
    if (!prev || !prev->adapter || prev->adapter->vt != &af_vtbl || prev->in != l->out)
        return pb_errf(PB_ERR_ARG, err, errlen, "adaptformer: %s needs its block's intermediate linear adapted first",
                       l->name);
    pb_adapter *a = pb_adapter_new(&af_add_vtbl, l, 0, sizeof(af_add_state));
    ((af_add_state *)a->state)->src = prev->adapter->state;
    l->adapter = a;
    return PB_OK;
}

// The bottleneck is counted on the intermediate linear (D = its input), nothing on the output.
static double af_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)out;
    return strcmp(role, "intermediate") ? 0 : pb_bottleneck_params(c, in);
}
static double af_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    return strcmp(role, "intermediate") ? out : pb_bottleneck_flops(c, in);
}

static const pb_method_opt af_opts[] = {
    PB_OPT_BOTTLENECK("0.1"),
    {"targets", PB_OPT_LIST, "intermediate,output", 2, 2, 0, "intermediate|output",
     "the FFN's two linears (the branch reads the first's input, adds to the second's output)"},
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_adaptformer = {
    .name = "adaptformer",
    .summary = "AdaptFormer: FFN(u) + s up(ReLU(down(u))), a scaled bottleneck in parallel with the FFN",
    .reference = "PyTorch module from Chen et al. 2022 (arXiv 2205.13535) + finite differences",
    .opts = af_opts,
    .nopts = (int)(sizeof af_opts / sizeof af_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_params = af_site_params,
    .site_flops = af_site_flops,
    .attach = af_attach,
};
