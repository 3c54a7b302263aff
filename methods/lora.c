// lora.c: LoRA as an adapter on a frozen linear: y += s * (dropout(x) A^T) B^T (PEFT layout:
// A = lora_A.weight (r,in), B = lora_B.weight (out,r)). No dense delta is formed while training.
#include <math.h>
#include <stdlib.h>
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

// PEFT import of peft_type LORA (the LoRA family: what lora, pissa, dora and dylora export):
// r, lora_alpha, use_rslora, use_dora from the config; per adapted linear lora_A.weight (r', in)
// and lora_B.weight (out, r') (r' from the tensors: rank_pattern files load as they are), plus
// lora_magnitude_vector (out) when use_dora is true. Attaches LoRA adapters (DoRA with
// use_dora) with scaling lora_alpha / r' (/ sqrt r' with rslora) and no dropout. A PiSSA export
// (the rank-2r conversion relative to the original weights) and a DyLoRA export (its eval rank)
// are plain LoRAs to this reader and come back as "lora".
extern const pb_method_desc pb_method_lora, pb_method_dora;
static pb_status lora_import_peft(pb_model *m, const cJSON *o, const char *dir, pb_method_config *c, char *err,
                                  size_t errlen) {
    char path[4096];
    pb_peft_path(dir, "adapter_config.json", path, sizeof path);
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(o, "r");
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(o, "lora_alpha");
    const cJSON *jrs = cJSON_GetObjectItemCaseSensitive(o, "use_rslora");
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(o, "use_dora");
    if (!cJSON_IsNumber(jr) || jr->valueint < 1)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field r: missing or not a positive integer", path);
    if (ja && !cJSON_IsNumber(ja)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field lora_alpha: not a number", path);
    if (jd && !cJSON_IsBool(jd)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field use_dora: not a boolean", path);
    int dora = jd && cJSON_IsTrue(jd); // DoRA: a lora_magnitude_vector per adapted module
    pb_status st = pb_method_config_init(c, dora ? pb_method_dora.name : pb_method_lora.name, 0, err, errlen);
    char v[32];
    snprintf(v, sizeof v, "%d", jr->valueint);
    if (st == PB_OK) st = pb_peft_set(c, path, "r", "rank", v, err, errlen);
    snprintf(v, sizeof v, "%.9g", ja ? ja->valuedouble : 8.0);
    if (st == PB_OK) st = pb_peft_set(c, path, "lora_alpha", "alpha", v, err, errlen);
    if (st == PB_OK) st = pb_peft_set(c, path, "use_rslora", "rslora", cJSON_IsTrue(jrs) ? "true" : "false", err, errlen);
    if (st != PB_OK) return st;

    // pass 1: every key and shape before the model changes
    static const char *const leaves[3] = {"lora_A.weight", "lora_B.weight", "lora_magnitude_vector"};
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    const pb_st_tensor **tab = pb_xcalloc((size_t)n * 3 + 1, sizeof *tab);
    pb_st_file f;
    st = pb_peft_collect(m, dir, &f, leaves, 3, NULL, "a LoRA factor", tab, err, errlen);
    const char *fp = f.path ? f.path : path;
    for (int i = 0; i < n && st == PB_OK; i++) {
        const pb_st_tensor *A = tab[3 * i], *B = tab[3 * i + 1], *M = tab[3 * i + 2];
        const pb_linear *l = &ls[i];
        if (M && !dora)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: a DoRA magnitude but use_dora is not true", fp,
                         M->name);
        else if (M && (!A || !pb_peft_shape(M, 1, l->out, 0)))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: no lora_A.weight beside it or not %d elements",
                         fp, M->name, l->out);
        else if (!A && B)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: missing partner lora_A.weight", fp, B->name);
        else if (A && (A->ndim != 2 || A->shape[1] != l->in || A->shape[0] < 1))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: shape does not fit %s (%d -> %d)", fp, A->name,
                         l->name, l->in, l->out);
        else if (A && (!B || !pb_peft_shape(B, 2, l->out, A->shape[0])))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: missing or mismatched partner lora_B.weight "
                         "(want %d x %lld)", fp, A->name, l->out, (long long)A->shape[0]);
        else if (A && dora && !M)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: use_dora is true but %s has no lora_magnitude_vector", fp,
                         A->name);
    }
    // pass 2: freeze the backbone, attach, load
    pb_engine *e = pb_model_engine(m);
    char roles[PB_OPT_STR_MAX] = "";
    if (st == PB_OK) pb_peft_freeze(m);
    for (int i = 0; i < n && st == PB_OK; i++) {
        const pb_st_tensor *A = tab[3 * i];
        if (!A) continue;
        int r = (int)A->shape[0];
        pb_adapter *a = dora ? pb_dora_create(e, &ls[i], r, pb_lora_scaling(c, r), 0.0f, i)
                             : pb_lora_create(e, &ls[i], r, pb_lora_scaling(c, r), 0.0f, i);
        st = pb_peft_load(e, &f, A, a->params[0].data, err, errlen);
        if (st == PB_OK) st = pb_peft_load(e, &f, tab[3 * i + 1], a->params[1].data, err, errlen);
        if (st == PB_OK && dora) st = pb_peft_load(e, &f, tab[3 * i + 2], a->params[2].data, err, errlen);
        pb_peft_add_role(roles, sizeof roles, &ls[i]);
    }
    if (st == PB_OK) st = pb_peft_load_head(m, &f, err, errlen);
    pb_st_close(&f);
    free(tab);
    if (st == PB_OK && roles[0]) pb_mc_put_str(c, "targets", roles);
    return st;
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
    .peft_type = "LORA",
    .import_peft = lora_import_peft,
};
