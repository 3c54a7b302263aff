// vera.c: VeRA (Kopiczko et al. 2024, "VeRA: Vector-based Random Matrix Adaptation", arXiv
// 2310.11454) as peft's VeraConfig: one pair of frozen random matrices shared by every adapted
// linear, A (r, in_max) and B (out_max, r), each layer using the slices A[:, :in], B[:out, :],
// and two trainable vectors per layer:
//   y += λ_b ⊙ ((λ_d ⊙ (xd Aᵀ)) Bᵀ),   xd = dropout(x),   λ_d (r) = d_initial, λ_b (out) = 0
// so step 0 is the pre-trained function. A and B are kaiming-uniform as peft's (bound
// sqrt(6 / fan_in): fan_in = in_max for A, r for B), drawn from the projection seed (peft's
// projection_prng_key; not the run seed), element by element from a counter-based hash of
// (row, column): any slice of the shared matrix is the same numbers, whatever in_max is. The
// values are not torch's generator's: `trace` dumps them ("frozen.<linear>.vera_A") and the
// reference test loads them into peft. Each adapter keeps its own copy of its slices
// (r (in + out) floats, the size of a LoRA of rank r).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"
#include "models/safetensors.h"



static void vera_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    pb_vera_state *st = a->state;
    const float *ld = a->params[0].data, *lb = a->params[1].data;
    size_t nx = (size_t)N * st->in, ny = (size_t)N * st->out, nh = (size_t)N * st->r;
    const float *xd = x;
    st->dropped = train && st->p > 0.0f;
    if (st->dropped) {
        pb_grow(e, &st->xd, &st->cap_xd, nx);
        pb_grow(e, &st->mask, &st->cap_mask, nx);
        pb_dropout_forward(e, st->xd, st->mask, x, st->p, pb_method_seed(seed, st->index, 0x7e1a), nx);
        xd = st->xd;
    }
    pb_grow(e, &st->h, &st->cap_h, nh);
    pb_grow(e, &st->hd, &st->cap_hd, nh);
    pb_grow(e, &st->t, &st->cap_t, ny);
    pb_grow(e, &st->gt, &st->cap_gt, ny);
    pb_linear_forward(e, st->h, xd, st->A, NULL, N, st->in, st->r);          // h (N,r)
    pb_mul_cols(e, st->hd, st->h, ld, N, st->r);                            // λ_d ⊙ h
    pb_linear_forward(e, st->t, st->hd, st->B, NULL, N, st->r, st->out);     // t (N,out)
    pb_mul_cols(e, st->gt, st->t, lb, N, st->out);
    pb_add(e, y, y, st->gt, ny);
}

// dλ_b += Σ dy ⊙ t; gt = λ_b ⊙ dy; g = gt B (N,r); dλ_d += Σ g ⊙ h; dx += mask ⊙ ((λ_d ⊙ g) A).
static void vera_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    (void)x;
    pb_vera_state *st = a->state;
    pb_param *ld = &a->params[0], *lb = &a->params[1];
    size_t nx = (size_t)N * st->in, nh = (size_t)N * st->r;
    if (lb->grad) pb_mul_cols_reduce(e, lb->grad, dy, st->t, N, st->out);
    if (!ld->grad && !dx) return;
    pb_grow(e, &st->gh, &st->cap_gh, nh);
    pb_mul_cols(e, st->gt, dy, lb->data, N, st->out);
    pb_gemm(e, 0, 0, N, st->r, st->out, 1.0f, st->gt, st->out, st->B, st->r, 0.0f, st->gh, st->r);
    if (ld->grad) pb_mul_cols_reduce(e, ld->grad, st->gh, st->h, N, st->r);
    if (!dx) return;
    pb_mul_cols(e, st->gh, st->gh, ld->data, N, st->r);
    if (st->dropped) {
        pb_grow(e, &st->dxd, &st->cap_dxd, nx);
        pb_gemm(e, 0, 0, N, st->in, st->r, 1.0f, st->gh, st->r, st->A, st->in, 0.0f, st->dxd, st->in);
        pb_dropout_backward(e, dx, st->dxd, st->mask, nx);
    } else {
        pb_gemm(e, 0, 0, N, st->in, st->r, 1.0f, st->gh, st->r, st->A, st->in, 1.0f, dx, st->in);
    }
}

// W (out,in) += diag(λ_b) B diag(λ_d) A (host: merge runs once).
static void vera_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    (void)b;
    pb_vera_state *st = a->state;
    int r = st->r, in = st->in, out = st->out;
    float *Bd = pb_alloc(e, (size_t)out * r), *D = pb_alloc(e, (size_t)out * in);
    pb_mul_cols(e, Bd, st->B, a->params[0].data, out, r);                          // B diag(λ_d)
    pb_gemm(e, 0, 0, out, in, r, 1.0f, Bd, r, st->A, in, 0.0f, D, in);             // (out,in)
    float *hD = pb_xmalloc((size_t)out * in * sizeof(float)), *hb = pb_xmalloc((size_t)out * sizeof(float));
    float *hW = pb_xmalloc((size_t)out * in * sizeof(float));
    pb_download(e, hD, D, (size_t)out * in);
    pb_download(e, hb, a->params[1].data, (size_t)out);
    pb_download(e, hW, W, (size_t)out * in);
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) hW[(size_t)o * in + i] += hb[o] * hD[(size_t)o * in + i];
    pb_upload(e, W, hW, (size_t)out * in);
    free(hD); free(hb); free(hW);
    pb_free(e, Bd);
    pb_free(e, D);
}

static void vera_free(pb_adapter *a, pb_engine *e) {
    pb_vera_state *st = a->state;
    pb_free(e, st->xd); pb_free(e, st->mask); pb_free(e, st->h); pb_free(e, st->hd); pb_free(e, st->t);
    pb_free(e, st->gt); pb_free(e, st->gh); pb_free(e, st->dxd);
    pb_adapter_free_common(e, a); // frees A, B (a->frozen)
}

static const pb_adapter_vtbl vera_vtbl = {"vera", 0, vera_forward, vera_backward, vera_merge, vera_free, NULL};

// Element (row, col) of a shared projection: U(-bound, bound) from a hash of (seed, row, col).
static float vera_entry(uint64_t seed, int row, int col, float bound) {
    uint64_t h = pb_method_seed(seed, row, (uint64_t)col);
    float u = (float)(h >> 40) * (1.0f / 16777216.0f); // [0,1), 24 bits
    return (2.0f * u - 1.0f) * bound;
}

// A new VeRA adapter of rank r on l: λ_d, λ_b (zeroed) and the slices A (r,in), B (out,r)
// (zeroed); the caller fills them.
static pb_adapter *vera_create(pb_engine *e, pb_linear *l, int r, float p, int index) {
    int in = l->in, out = l->out;
    pb_adapter *a = pb_adapter_new(&vera_vtbl, l, 2, sizeof(pb_vera_state));
    pb_vera_state *st = a->state;
    st->r = r; st->in = in; st->out = out; st->index = index;
    st->p = p;
    pb_param *ld = pb_adapter_param(e, a, 0, "vera_lambda_d", 1, (int64_t[]){r}, 0);
    pb_param *lb = pb_adapter_param(e, a, 1, "vera_lambda_b", 1, (int64_t[]){out}, 0);
    pb_zero(e, ld->data, (size_t)r);
    pb_zero(e, lb->data, (size_t)out);
    pb_adapter_frozen(e, a, "vera_A", 2, (int64_t[]){r, in});
    pb_adapter_frozen(e, a, "vera_B", 2, (int64_t[]){out, r}); // may move a->frozen: index after
    st->A = a->frozen[0].data;
    st->B = a->frozen[1].data;
    l->adapter = a;
    return a;
}

// Uploads the slices A[:, :in] of the shared A (r, in_max) and B[:out, :] of the shared B
// (out_max, r) (host) into a's frozen copies.
static void vera_set_slices(pb_engine *e, pb_adapter *a, const float *hA, int in_max, const float *hB) {
    pb_vera_state *st = a->state;
    float *sA = pb_xmalloc((size_t)st->r * st->in * sizeof(float));
    for (int k = 0; k < st->r; k++) memcpy(sA + (size_t)k * st->in, hA + (size_t)k * in_max, (size_t)st->in * sizeof(float));
    pb_upload(e, st->A, sA, (size_t)st->r * st->in);
    pb_upload(e, st->B, hB, (size_t)st->out * st->r); // the first out rows
    free(sA);
}

static pb_status vera_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                             char *err, size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    int r = pb_mc_int(c, "rank"), in = l->in, out = l->out;
    PB_CHECK(site->in_max >= in && site->out_max >= out, "vera: site maxima %d/%d below %s (%d -> %d)", site->in_max,
             site->out_max, l->name, in, out);
    pb_adapter *a = vera_create(e, l, r, (float)pb_mc_num(c, "dropout"), site->index);
    pb_vera_state *st = a->state;
    pb_fill(e, a->params[0].data, (float)pb_mc_num(c, "d_initial"), (size_t)r);
    uint64_t ps = (uint64_t)pb_mc_int(c, "projection_seed");
    uint64_t sa = pb_method_seed(ps, 0, 0xa7a7), sb = pb_method_seed(ps, 0, 0xb7b7);
    float ba = sqrtf(6.0f / (float)site->in_max), bb = sqrtf(6.0f / (float)r);
    float *hA = pb_xmalloc((size_t)r * in * sizeof(float)), *hB = pb_xmalloc((size_t)out * r * sizeof(float));
    for (int k = 0; k < r; k++)
        for (int i = 0; i < in; i++) hA[(size_t)k * in + i] = vera_entry(sa, k, i, ba);
    for (int o = 0; o < out; o++)
        for (int k = 0; k < r; k++) hB[(size_t)o * r + k] = vera_entry(sb, o, k, bb);
    pb_upload(e, st->A, hA, (size_t)r * in);
    pb_upload(e, st->B, hB, (size_t)out * r);
    free(hA);
    free(hB);
    return PB_OK;
}

// PEFT directory as peft's VeraConfig(save_projection=True) writes it: peft_type VERA, r,
// target_modules, projection_prng_key, d_initial, vera_dropout; tensors
// base_model.model.<module>.vera_lambda_{b,d} and the shared base_model.vera_A (r, in_max) /
// base_model.vera_B (out_max, r), rebuilt from the adapters holding the widest slices.
static pb_status vera_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err, size_t errlen) {
    pb_engine *e = pb_model_engine(m);
    int n = 0, r = 0, in_max = 0, out_max = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    const pb_adapter *wa = NULL, *wb = NULL; // adapters with in = in_max / out = out_max
    for (int i = 0; i < n; i++) {
        const pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        if (a->vt != &vera_vtbl) return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "method: %s has a non-VeRA adapter", ls[i].name);
        const pb_vera_state *st = a->state;
        r = st->r;
        if (st->in > in_max) { in_max = st->in; wa = a; }
        if (st->out > out_max) { out_max = st->out; wb = a; }
    }
    if (!wa) return pb_errf(PB_ERR_ARG, err, errlen, "method: the model has no adapters to export");
    pb_st_writer *w = pb_st_writer_init();
    cJSON *targets = cJSON_CreateArray();
    char mod[2 * PB_NAME_MAX], key[3 * PB_NAME_MAX], t[2 * PB_NAME_MAX];
    for (int i = 0; i < n; i++) {
        const pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        pb_peft_module(m, &ls[i], mod, sizeof mod);
        static const char *const leaf[2] = {"vera_lambda_d", "vera_lambda_b"};
        for (int k = 0; k < 2; k++) {
            size_t D = a->params[k].numel;
            float *h = pb_xmalloc(D * sizeof(float));
            pb_download(e, h, a->params[k].data, D);
            snprintf(key, sizeof key, PEFT_PREFIX "%s.%s", mod, leaf[k]);
            pb_st_writer_add(w, key, h, 1, (int64_t[]){(int64_t)D});
            free(h);
        }
        pb_peft_target(m, &ls[i], t, sizeof t);
        pb_peft_add_target(targets, t);
    }
    const pb_param *A = &wa->frozen[0], *B = &wb->frozen[1];
    float *hA = pb_xmalloc(A->numel * sizeof(float)), *hB = pb_xmalloc(B->numel * sizeof(float));
    pb_download(e, hA, A->data, A->numel);
    pb_download(e, hB, B->data, B->numel);
    pb_st_writer_add(w, "base_model.vera_A", hA, 2, (int64_t[]){r, in_max});
    pb_st_writer_add(w, "base_model.vera_B", hB, 2, (int64_t[]){out_max, r});
    free(hA);
    free(hB);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "peft_type", "VERA");
    cJSON_AddNumberToObject(o, "r", r);
    cJSON_AddItemToObject(o, "target_modules", targets);
    cJSON_AddNumberToObject(o, "projection_prng_key", pb_mc_int(c, "projection_seed"));
    cJSON_AddBoolToObject(o, "save_projection", 1);
    cJSON_AddNumberToObject(o, "d_initial", pb_mc_num(c, "d_initial"));
    cJSON_AddNumberToObject(o, "vera_dropout", pb_mc_num(c, "dropout"));
    cJSON_AddBoolToObject(o, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(o, "init_weights", 1);
    cJSON_AddStringToObject(o, "bias", "none");
    return pb_peft_finish(m, c, w, o, dir, err, errlen);
}

// PEFT import of peft_type VERA: r, projection_prng_key, save_projection, d_initial,
// vera_dropout from the config; per adapted linear vera_lambda_d (r) and vera_lambda_b (out);
// the shared base_model.vera_A (r, in_max) and base_model.vera_B (out_max, r) (maxima over the
// adapted linears, as peft sizes them) when save_projection is true. With save_projection false
// the file has no projections and peft regenerates them: torch.Generator().manual_seed(key),
// then kaiming_uniform A (fan_in in_max) and B (fan_in r) drawn from it in that order — which
// pb_torch_uniform reproduces bit for bit (tests/ref/ref_peft_export.py checks it against
// torch). peftbench's own VeRA draws its projections from a hash instead; an imported one
// keeps the file's (re-export: save_projection true with them).
extern const pb_method_desc pb_method_vera;
static pb_status vera_import_peft(pb_model *m, const cJSON *o, const char *dir, pb_method_config *c, char *err,
                                  size_t errlen) {
    char path[4096], v[48];
    pb_peft_path(dir, "adapter_config.json", path, sizeof path);
    long long r, key;
    int save;
    double d_init, drop;
    pb_status st = pb_peft_cfg_plain(o, path, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_int(o, path, "r", 256, 1, PB_OPT_RANK_MAX, &r, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_int(o, path, "projection_prng_key", 0, 0, 2147483647, &key, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_bool(o, path, "save_projection", 1, &save, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_num(o, path, "d_initial", 0.1, &d_init, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_num(o, path, "vera_dropout", 0.0, &drop, err, errlen);
    if (st == PB_OK) st = pb_method_config_init(c, pb_method_vera.name, 0, err, errlen);
    snprintf(v, sizeof v, "%lld", r);
    if (st == PB_OK) st = pb_peft_set(c, path, "r", "rank", v, err, errlen);
    snprintf(v, sizeof v, "%lld", key);
    if (st == PB_OK) st = pb_peft_set(c, path, "projection_prng_key", "projection_seed", v, err, errlen);
    snprintf(v, sizeof v, "%.17g", d_init);
    if (st == PB_OK) st = pb_peft_set(c, path, "d_initial", "d_initial", v, err, errlen);
    snprintf(v, sizeof v, "%.17g", drop);
    if (st == PB_OK) st = pb_peft_set(c, path, "vera_dropout", "dropout", v, err, errlen);
    if (st != PB_OK) return st;

    static const char *const leaves[2] = {"vera_lambda_d", "vera_lambda_b"};
    static const char *const shared[3] = {"base_model.vera_A", "base_model.vera_B", NULL};
    int n = 0, in_max = 0, out_max = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    const pb_st_tensor **tab = pb_xcalloc((size_t)n * 2 + 1, sizeof *tab);
    pb_st_file f;
    st = pb_peft_collect(m, dir, &f, leaves, 2, shared, "a VeRA vector (vera_lambda_d, vera_lambda_b)", tab, err, errlen);
    for (int i = 0; i < n && st == PB_OK; i++) {
        const pb_st_tensor *D = tab[2 * i], *B = tab[2 * i + 1];
        if (!D && !B) continue;
        if (!D || !B)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: its partner %s is missing", f.path, (D ? D : B)->name,
                         D ? "vera_lambda_b" : "vera_lambda_d");
        else if (!pb_peft_shape(D, 1, r, 0))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: expected %lld elements (field r of %s)", f.path,
                         D->name, r, path);
        else if (!pb_peft_shape(B, 1, ls[i].out, 0))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: expected %d elements (outputs of %s)", f.path,
                         B->name, ls[i].out, ls[i].name);
        in_max = PB_MAX(in_max, ls[i].in);
        out_max = PB_MAX(out_max, ls[i].out);
    }
    if (st == PB_OK && !in_max)
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: no tensor ends in .vera_lambda_d (nothing to import)", f.path);
    const pb_st_tensor *SA = st == PB_OK ? pb_st_find(&f, shared[0]) : NULL;
    const pb_st_tensor *SB = st == PB_OK ? pb_st_find(&f, shared[1]) : NULL;
    for (int k = 0; k < 2 && st == PB_OK; k++) {
        const pb_st_tensor *T = k ? SB : SA;
        int64_t d0 = k ? out_max : r, d1 = k ? r : in_max;
        if (save && !T)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s is missing (save_projection is true in %s)", f.path,
                         shared[k], path);
        else if (!save && T)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: present but save_projection is false in %s (peft "
                         "would regenerate it and ignore the file's)", f.path, shared[k], path);
        else if (T && !pb_peft_shape(T, 2, d0, d1))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: expected shape (%lld, %lld) (r and the largest "
                         "adapted linear)", f.path, shared[k], (long long)d0, (long long)d1);
    }
    // the shared projections on the host: the file's, or peft's generator's
    float *hA = NULL, *hB = NULL;
    if (st == PB_OK) {
        hA = pb_xmalloc((size_t)r * in_max * sizeof(float));
        hB = pb_xmalloc((size_t)out_max * r * sizeof(float));
        if (save) {
            st = pb_st_read_f32(&f, SA, hA, err, errlen);
            if (st == PB_OK) st = pb_st_read_f32(&f, SB, hB, err, errlen);
        } else { // peft's _kaiming_init: bound = sqrt(3) * sqrt(2) / sqrt(fan_in), A then B
            pb_mt19937 *g = pb_xmalloc(sizeof *g);
            pb_mt_seed(g, (uint32_t)key);
            double ba = sqrt(3.0) * (sqrt(2.0) / sqrt((double)in_max)), bb = sqrt(3.0) * (sqrt(2.0) / sqrt((double)r));
            pb_torch_uniform(g, hA, (size_t)r * in_max, -ba, ba);
            pb_torch_uniform(g, hB, (size_t)out_max * r, -bb, bb);
            free(g);
        }
    }
    pb_engine *e = pb_model_engine(m);
    char roles[PB_OPT_STR_MAX] = "";
    if (st == PB_OK) pb_peft_freeze(m);
    for (int i = 0; i < n && st == PB_OK; i++) {
        if (!tab[2 * i]) continue;
        pb_adapter *a = vera_create(e, &ls[i], (int)r, (float)drop, i);
        vera_set_slices(e, a, hA, in_max, hB);
        st = pb_peft_load(e, &f, tab[2 * i], a->params[0].data, err, errlen);
        if (st == PB_OK) st = pb_peft_load(e, &f, tab[2 * i + 1], a->params[1].data, err, errlen);
        pb_peft_add_role(roles, sizeof roles, &ls[i]);
    }
    if (st == PB_OK) st = pb_peft_load_head(m, &f, err, errlen);
    free(hA);
    free(hB);
    pb_st_close(&f);
    free(tab);
    if (st == PB_OK) pb_mc_put_str(c, "targets", roles);
    return st;
}

// λ_d (r) + λ_b (out); forward: 2 r in + r + 2 r out + 2 out FLOPs per token.
static double vera_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)role; (void)in;
    return (double)pb_mc_int(c, "rank") + out;
}
static double vera_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    double r = pb_mc_int(c, "rank");
    return 2.0 * r * (in + out) + r + 2.0 * out;
}

static const pb_method_opt vera_opts[] = {
    {"rank", PB_OPT_INT, "256", 1, PB_OPT_RANK_MAX, 0, NULL, "r: rows of the shared A, columns of the shared B"},
    {"d_initial", PB_OPT_NUM, "0.1", -1e6, 1e6, 0, NULL, "initial value of every lambda_d entry (lambda_b starts at 0)"},
    {"projection_seed", PB_OPT_INT, "0", 0, 2147483647, 0, NULL,
     "seed of the shared frozen A, B (peft's projection_prng_key; independent of the run seed)"},
    {"dropout", PB_OPT_NUM, "0", 0, 1, 1, NULL, "vera_dropout on the adapter input while training"},
    PB_OPT_TARGETS("query,value"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_vera = {
    .name = "vera",
    .summary = "VeRA: y += lambda_b * ((lambda_d * (x A^T)) B^T), A, B frozen random and shared, lambdas trainable",
    .reference = "peft VeraConfig (Kopiczko et al. 2024)",
    .opts = vera_opts,
    .nopts = (int)(sizeof vera_opts / sizeof vera_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_params = vera_site_params,
    .site_flops = vera_site_flops,
    .attach = vera_attach,
    .export_peft = vera_export_peft,
    .peft_type = "VERA",
    .import_peft = vera_import_peft,
};
