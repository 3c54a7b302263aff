// ia3.c: IA³ (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper
// than In-Context Learning"), as peft's IA3Config: one learned vector l per adapted linear,
// initialised to ones (the pre-trained function at step 0).
//   output scaling (attention key/value, by default):  y = (x Wᵀ + b) ⊙ l,   l ∈ R^out
//   input scaling ("feedforward" roles: the FFN output): y = (x ⊙ l) Wᵀ + b,  l ∈ R^in
// Output scaling rewrites dy (dz = dy ⊙ l, dl = Σₙ z ⊙ dy with z the base output). Input
// scaling runs as a parallel branch y += (x ⊙ (l − 1)) Wᵀ, so dx += (dy W) ⊙ (l − 1) and
// dl = Σₙ x ⊙ (dy W). Merge: W ← diag(l) W, b ← l ⊙ b (output); W ← W diag(l) (input).
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"
#include "models/safetensors.h"


typedef struct {
    int in, out, input;   // input: scales the linear's input (feedforward role)
    float *z;             // (N,out) saved base output (output scaling)
    float *lm1;           // (in) l - 1 (input scaling), rebuilt each forward
    float *ones;          // (in) ones
    float *xs, *g;        // (N,in) scratch: x ⊙ (l - 1), dy W
    size_t cap_z, cap_xs, cap_g;
} ia3_state;

// Output: y (N,out) <- y ⊙ l, saving z = y. Input: y += (x ⊙ (l - 1)) Wᵀ.
static void ia3_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    (void)train; (void)seed;
    ia3_state *st = a->state;
    const float *l = a->params[0].data;
    if (!st->input) {
        pb_grow(e, &st->z, &st->cap_z, (size_t)N * st->out);
        pb_copy(e, st->z, y, (size_t)N * st->out);
        pb_mul_cols(e, y, y, l, N, st->out);
        return;
    }
    pb_copy(e, st->lm1, l, (size_t)st->in);
    pb_axpy(e, st->lm1, -1.0f, st->ones, (size_t)st->in);
    pb_grow(e, &st->xs, &st->cap_xs, (size_t)N * st->in);
    pb_mul_cols(e, st->xs, x, st->lm1, N, st->in);
    pb_gemm(e, 0, 1, N, st->out, st->in, 1.0f, st->xs, st->in, a->lin->w->data, st->in, 1.0f, y, st->out);
}

static void ia3_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    ia3_state *st = a->state;
    pb_param *l = &a->params[0];
    if (!st->input) { // dl += Σ z ⊙ dy; dy <- dy ⊙ l (the layer's private copy)
        if (l->grad) pb_mul_cols_reduce(e, l->grad, st->z, dy, N, st->out);
        pb_mul_cols(e, dy, dy, l->data, N, st->out);
        return;
    }
    if (!l->grad && !dx) return;
    pb_grow(e, &st->g, &st->cap_g, (size_t)N * st->in);
    pb_gemm(e, 0, 0, N, st->in, st->out, 1.0f, dy, st->out, a->lin->w->data, st->in, 0.0f, st->g, st->in);
    if (l->grad) pb_mul_cols_reduce(e, l->grad, x, st->g, N, st->in);
    if (dx) {
        pb_mul_cols(e, st->g, st->g, st->lm1, N, st->in);
        pb_axpy(e, dx, 1.0f, st->g, (size_t)N * st->in);
    }
}

static void ia3_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    ia3_state *st = a->state;
    const float *l = a->params[0].data;
    if (st->input) {
        pb_mul_cols(e, W, W, l, st->out, st->in); // W diag(l)
        return;
    }
    // diag(l) W: row o scaled by l[o] (host: merge runs once)
    size_t n = (size_t)st->out * st->in;
    float *hW = pb_xmalloc(n * sizeof(float)), *hl = pb_xmalloc((size_t)st->out * sizeof(float));
    pb_download(e, hW, W, n);
    pb_download(e, hl, l, (size_t)st->out);
    for (int o = 0; o < st->out; o++)
        for (int i = 0; i < st->in; i++) hW[(size_t)o * st->in + i] *= hl[o];
    pb_upload(e, W, hW, n);
    if (b) pb_mul_cols(e, b, b, l, 1, st->out);
    free(hW);
    free(hl);
}

static void ia3_free(pb_adapter *a, pb_engine *e) {
    ia3_state *st = a->state;
    pb_free(e, st->z); pb_free(e, st->lm1); pb_free(e, st->ones); pb_free(e, st->xs); pb_free(e, st->g);
    pb_adapter_free_common(e, a);
}

static const pb_adapter_vtbl ia3_out_vtbl = {"ia3", 1, ia3_forward, ia3_backward, ia3_merge, ia3_free, NULL};
static const pb_adapter_vtbl ia3_in_vtbl = {"ia3-input", 0, ia3_forward, ia3_backward, ia3_merge, ia3_free, NULL};

static int feedforward(const pb_method_config *c, const char *role) {
    return pb_mc_list_has(c, "feedforward", role);
}

// A new IA3 adapter on l (l = ones: the identity), scaling l's input (input) or its output.
static pb_adapter *ia3_create(pb_engine *e, pb_linear *l, int input) {
    pb_adapter *a = pb_adapter_new(input ? &ia3_in_vtbl : &ia3_out_vtbl, l, 1, sizeof(ia3_state));
    ia3_state *st = a->state;
    st->in = l->in;
    st->out = l->out;
    st->input = input;
    int D = input ? l->in : l->out;
    pb_param *p = pb_adapter_param(e, a, 0, "ia3_l", 1, (int64_t[]){D}, 0);
    pb_fill(e, p->data, 1.0f, (size_t)D); // identity at step 0
    if (input) {
        st->lm1 = pb_alloc(e, (size_t)l->in);
        st->ones = pb_alloc(e, (size_t)l->in);
        pb_fill(e, st->ones, 1.0f, (size_t)l->in);
    }
    l->adapter = a;
    return a;
}

static pb_status ia3_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                            char *err, size_t errlen) {
    (void)site;
    char role[PB_NAME_MAX];
    pb_method_linear_role(l->name, role, sizeof role);
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    ia3_create(e, l, feedforward(c, role));
    return PB_OK;
}

// PEFT directory as peft's IA3Config writes it: peft_type IA3, target_modules, feedforward_modules,
// tensors base_model.model.<module>.ia3_l shaped (out,1) for output scaling and (1,in) for input
// scaling, the head as modules_to_save.
static pb_status ia3_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err, size_t errlen) {
    pb_engine *e = pb_model_engine(m);
    int n = 0, any = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    pb_st_writer *w = pb_st_writer_init();
    cJSON *targets = cJSON_CreateArray(), *ff = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        if (a->vt != &ia3_out_vtbl && a->vt != &ia3_in_vtbl) {
            pb_st_writer_free(w);
            cJSON_Delete(targets);
            cJSON_Delete(ff);
            return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "method: %s has a non-IA3 adapter", ls[i].name);
        }
        ia3_state *st = a->state;
        size_t D = a->params[0].numel;
        float *h = pb_xmalloc(D * sizeof(float));
        pb_download(e, h, a->params[0].data, D);
        char mod[2 * PB_NAME_MAX], key[3 * PB_NAME_MAX], t[2 * PB_NAME_MAX];
        pb_peft_module(m, &ls[i], mod, sizeof mod);
        snprintf(key, sizeof key, PEFT_PREFIX "%s.ia3_l", mod);
        if (st->input) pb_st_writer_add(w, key, h, 2, (int64_t[]){1, (int64_t)D});
        else pb_st_writer_add(w, key, h, 2, (int64_t[]){(int64_t)D, 1});
        free(h);
        pb_peft_target(m, &ls[i], t, sizeof t);
        pb_peft_add_target(targets, t);
        if (st->input) pb_peft_add_target(ff, t);
        any = 1;
    }
    if (!any) {
        pb_st_writer_free(w);
        cJSON_Delete(targets);
        cJSON_Delete(ff);
        return pb_errf(PB_ERR_ARG, err, errlen, "method: the model has no adapters to export");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "peft_type", "IA3");
    cJSON_AddItemToObject(o, "target_modules", targets);
    cJSON_AddItemToObject(o, "feedforward_modules", ff);
    cJSON_AddBoolToObject(o, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(o, "init_ia3_weights", 1);
    return pb_peft_finish(m, c, w, o, dir, err, errlen);
}

// PEFT import of peft_type IA3: per adapted linear one ia3_l, shaped (out, 1) (output scaling)
// or (1, in) (input scaling, a feedforward module). The shape decides; when feedforward_modules
// is a list it must agree (peft: a module is feedforward when its path ends with an entry; a
// regex string is not checked). target_modules is not read: the tensors name the linears.
extern const pb_method_desc pb_method_ia3;
static pb_status ia3_import_peft(pb_model *m, const cJSON *o, const char *dir, pb_method_config *c, char *err,
                                 size_t errlen) {
    char path[4096];
    pb_peft_path(dir, "adapter_config.json", path, sizeof path);
    pb_status st = pb_peft_cfg_plain(o, path, err, errlen);
    const cJSON *ff = cJSON_GetObjectItemCaseSensitive(o, "feedforward_modules"), *it;
    if (st == PB_OK && ff && !cJSON_IsNull(ff) && !cJSON_IsString(ff) && !cJSON_IsArray(ff))
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field feedforward_modules: expected a list of names or a string", path);
    if (st == PB_OK && cJSON_IsArray(ff))
        cJSON_ArrayForEach(it, ff) if (st == PB_OK && !cJSON_IsString(it))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field feedforward_modules: every entry must be a string", path);
    if (st == PB_OK) st = pb_method_config_init(c, pb_method_ia3.name, 0, err, errlen);
    if (st != PB_OK) return st;

    static const char *const leaves[1] = {"ia3_l"};
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    const pb_st_tensor **tab = pb_xcalloc((size_t)n + 1, sizeof *tab);
    int *input = pb_xcalloc((size_t)n + 1, sizeof *input);
    pb_st_file f;
    st = pb_peft_collect(m, dir, &f, leaves, 1, NULL, "an IA3 vector (ia3_l)", tab, err, errlen);
    int any = 0;
    for (int i = 0; i < n && st == PB_OK; i++) {
        const pb_st_tensor *T = tab[i];
        if (!T) continue;
        any = 1;
        if (pb_peft_shape(T, 2, ls[i].out, 1)) input[i] = 0;
        else if (pb_peft_shape(T, 2, 1, ls[i].in)) input[i] = 1;
        else {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: shape fits neither (%d, 1) (output scaling) nor "
                         "(1, %d) (input scaling) of %s", f.path, T->name, ls[i].out, ls[i].in, ls[i].name);
            break;
        }
        if (!cJSON_IsArray(ff)) continue;
        // the module path as the file writes it (PEFT_PREFIX "<module>.ia3_l")
        size_t kl = strlen(T->name) - strlen(PEFT_PREFIX) - strlen(".ia3_l");
        char mod[2 * PB_NAME_MAX];
        snprintf(mod, sizeof mod, "%.*s", (int)kl, T->name + strlen(PEFT_PREFIX));
        int listed = 0;
        cJSON_ArrayForEach(it, ff) {
            size_t tl = strlen(it->valuestring);
            listed |= tl <= kl && !strcmp(mod + kl - tl, it->valuestring);
        }
        if (listed != input[i])
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: shaped for %s scaling, but field "
                         "feedforward_modules of %s %s it", f.path, T->name, input[i] ? "input" : "output", path,
                         listed ? "lists" : "does not list");
    }
    if (st == PB_OK && !any)
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: no tensor ends in .ia3_l (nothing to import)", f.path ? f.path : path);
    pb_engine *e = pb_model_engine(m);
    char roles[PB_OPT_STR_MAX] = "", ffroles[PB_OPT_STR_MAX] = "";
    if (st == PB_OK) pb_peft_freeze(m);
    for (int i = 0; i < n && st == PB_OK; i++) {
        if (!tab[i]) continue;
        pb_adapter *a = ia3_create(e, &ls[i], input[i]);
        st = pb_peft_load(e, &f, tab[i], a->params[0].data, err, errlen);
        pb_peft_add_role(roles, sizeof roles, &ls[i]);
        if (input[i]) pb_peft_add_role(ffroles, sizeof ffroles, &ls[i]);
    }
    if (st == PB_OK) st = pb_peft_load_head(m, &f, err, errlen);
    pb_st_close(&f);
    free(tab);
    free(input);
    if (st == PB_OK) {
        pb_mc_put_str(c, "targets", roles);
        pb_mc_put_str(c, "feedforward", ffroles);
    }
    return st;
}

// l (out) or (in); output scaling is one multiply per output, input scaling an extra GEMM.
static double ia3_site_params(const pb_method_config *c, const char *role, int in, int out) {
    return feedforward(c, role) ? in : out;
}
static double ia3_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    return feedforward(c, role) ? 2.0 * in * out + in : out;
}

static const pb_method_opt ia3_opts[] = {
    PB_OPT_TARGETS("key,value,output"),
    {"feedforward", PB_OPT_LIST, "output", 0, 6, 0, PB_LINEAR_ROLES,
     "targets whose input is scaled (peft feedforward_modules); the others scale their output"},
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_ia3 = {
    .name = "ia3",
    .summary = "IA3: learned vectors rescale the outputs of key/value and the input of the FFN output",
    .reference = "peft IA3Config (Liu et al. 2022)",
    .opts = ia3_opts,
    .nopts = (int)(sizeof ia3_opts / sizeof ia3_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_params = ia3_site_params,
    .site_flops = ia3_site_flops,
    .attach = ia3_attach,
    .export_peft = ia3_export_peft,
    .peft_type = "IA3",
    .import_peft = ia3_import_peft,
};
