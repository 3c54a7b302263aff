// fourierft.c: FourierFT (Gao et al. 2024, "Parameter-Efficient Fine-Tuning with Discrete Fourier
// Transform", arXiv 2405.03003) as peft's FourierFTConfig: per adapted linear (out = M, in = N) n
// trainable spectral coefficients c at n fixed entries (u_k, v_k) of an M x N spectrum F,
//   ΔW = α · Re(IDFT2(F)),   y = x (W + ΔW)ᵀ + b,
//   ΔW[p,q] = α/(MN) Σ_k c_k cos(2π (p u_k / M + q v_k / N))
//           = α/(MN) Σ_k c_k (cos a_pk cos b_qk − sin a_pk sin b_qk)
// so ΔW = α/(MN) · (Pu ⊙ [c, c]) Pvᵀ with the frozen bases Pu = [cos a | sin a] (M, 2n) and
// Pv = [cos b | −sin b] (N, 2n): one GEMM per step, no FFT, the same code on every backend.
// Backward: G = dyᵀ x (M, N), and dc_k = α/(MN) Σ_pq G[p,q] (∂ΔW[p,q]/∂c_k) is
// Σ_p Pu[p,k] (G Pv)[p,k] over the two halves (k and n + k); dx += dy ΔW.
//
// The entries are peft's: torch.randperm(M·N, generator=manual_seed(random_loc_seed))[:n] as
// (index / N, index % N), reproduced here (torch's CPU randperm is a Fisher-Yates shuffle driven by
// mt19937's 32-bit outputs, z = next() % (M·N − i)), so a peft FourierFT adapter built with the same
// seed has the same entries and a PEFT export loads with no index file. Every linear of one shape
// has the same entries (peft seeds each layer alike; the paper draws them once for all layers), so
// adapters of one shape share one basis (refcounted, with the scratch only one call uses at a time).
// The coefficients start N(0, 1) (peft's init_weights=False, the paper) or at 0 (init "zeros").
// `trace` dumps each adapter's entries as frozen.<linear>.fourierft_indices (2, n).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"
#include "models/safetensors.h"


// The bases and scratch of one (M, N, n, seed), shared by every adapter of that shape.
struct pb_fourier_basis {
    int refs;
    int M, N, n;
    uint32_t seed;
    float *Pu, *Pv;   // (M,2n), (N,2n) frozen bases
    float *work;      // (M,2n) scratch: Pu ⊙ [c,c] (forward), G Pv (backward)
    float *G;         // (M,N) scratch: dyᵀ x
    float *cc, *dcc;  // (2n) [c,c], the halves' gradient
};
typedef struct pb_fourier_basis fourier_basis;
typedef pb_fourierft_state fourier_state;

// ----------------------------------------------------------------------------
// torch.randperm's entries

// torch uses the 32-bit path below this size (randperm_cpu: n < UINT32_MAX / 20).
#define FOURIER_MAX_ENTRIES (UINT32_MAX / 20u)

// The first n of torch.randperm(M*N, manual_seed(seed)) into idx (n) (host, caller-owned).
static void fourier_entries(int M, int N, int n, uint32_t seed, int64_t *idx) {
    int64_t total = (int64_t)M * N;
    PB_CHECK(total < (int64_t)FOURIER_MAX_ENTRIES, "fourierft: %d x %d has too many entries", M, N);
    int32_t *r = pb_xmalloc((size_t)total * sizeof(int32_t));
    for (int64_t i = 0; i < total; i++) r[i] = (int32_t)i;
    pb_mt19937 *m = pb_xmalloc(sizeof(pb_mt19937));
    pb_mt_seed(m, seed);
    // Fisher-Yates from the front: the first n places are final after n swaps.
    for (int64_t i = 0; i < n && i < total - 1; i++) {
        int64_t z = (int64_t)(pb_mt_next(m) % (uint64_t)(total - i));
        int32_t t = r[i];
        r[i] = r[z + i];
        r[z + i] = t;
    }
    for (int k = 0; k < n; k++) idx[k] = r[k];
    free(m);
    free(r);
}

// ----------------------------------------------------------------------------
// The shared basis

// A new basis with refs = 1 for entries idx (host, n); tables in double then rounded.
static fourier_basis *basis_new(pb_engine *e, int M, int N, int n, uint32_t seed, const int64_t *idx) {
    fourier_basis *b = pb_xcalloc(1, sizeof(*b));
    b->refs = 1;
    b->M = M; b->N = N; b->n = n; b->seed = seed;
    size_t n2 = 2 * (size_t)n;
    float *hu = pb_xmalloc((size_t)M * n2 * sizeof(float)), *hv = pb_xmalloc((size_t)N * n2 * sizeof(float));
    for (int k = 0; k < n; k++) {
        int64_t u = idx[k] / N, v = idx[k] % N;
        // (p u) mod M keeps the angle in [0, 2π): exact integers, one rounding in cos/sin
        for (int p = 0; p < M; p++) {
            double a = 2.0 * M_PI * (double)(((int64_t)p * u) % M) / (double)M;
            hu[(size_t)p * n2 + k] = (float)cos(a);
            hu[(size_t)p * n2 + n + k] = (float)sin(a);
        }
        for (int q = 0; q < N; q++) {
            double a = 2.0 * M_PI * (double)(((int64_t)q * v) % N) / (double)N;
            hv[(size_t)q * n2 + k] = (float)cos(a);
            hv[(size_t)q * n2 + n + k] = (float)-sin(a);
        }
    }
    b->Pu = pb_alloc(e, (size_t)M * n2);
    b->Pv = pb_alloc(e, (size_t)N * n2);
    pb_upload(e, b->Pu, hu, (size_t)M * n2);
    pb_upload(e, b->Pv, hv, (size_t)N * n2);
    free(hu);
    free(hv);
    b->work = pb_alloc(e, (size_t)M * n2);
    b->G = pb_alloc(e, (size_t)M * N);
    b->cc = pb_alloc(e, n2);
    b->dcc = pb_alloc(e, n2);
    return b;
}

static void basis_release(pb_engine *e, fourier_basis *b) {
    if (!b || --b->refs > 0) return;
    pb_free(e, b->Pu); pb_free(e, b->Pv); pb_free(e, b->work); pb_free(e, b->G);
    pb_free(e, b->cc); pb_free(e, b->dcc);
    free(b);
}

// ----------------------------------------------------------------------------
// Adapter

// dW (M,N) = α/(MN) (Pu ⊙ [c,c]) Pvᵀ.
static void fourier_delta(fourier_state *st, pb_engine *e, const float *c, float *dW) {
    fourier_basis *b = st->basis;
    int n = st->n, n2 = 2 * n;
    pb_copy(e, b->cc, c, (size_t)n);
    pb_copy(e, b->cc + n, c, (size_t)n);
    pb_mul_cols(e, b->work, b->Pu, b->cc, st->M, n2);
    pb_gemm(e, 0, 1, st->M, st->N, n2, st->scale, b->work, n2, b->Pv, n2, 0.0f, dW, st->N);
}

// y (T,M) += x (T,N) ΔWᵀ; ΔW kept for backward.
static void fourier_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int T, int train, uint64_t seed) {
    (void)train; (void)seed;
    fourier_state *st = a->state;
    fourier_delta(st, e, a->params[0].data, st->dW);
    pb_gemm(e, 0, 1, T, st->M, st->N, 1.0f, x, st->N, st->dW, st->N, 1.0f, y, st->M);
}

// dc += α/(MN) Σ_p Pu[p,:] ⊙ ((dyᵀ x) Pv)[p,:] folded over the halves; dx += dy ΔW.
static void fourier_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int T) {
    fourier_state *st = a->state;
    fourier_basis *b = st->basis;
    pb_param *c = &a->params[0];
    int n = st->n, n2 = 2 * n;
    if (c->grad) {
        pb_gemm(e, 1, 0, st->M, st->N, T, 1.0f, dy, st->M, x, st->N, 0.0f, b->G, st->N);             // (M,N)
        pb_gemm(e, 0, 0, st->M, n2, st->N, st->scale, b->G, st->N, b->Pv, n2, 0.0f, b->work, n2);    // (M,2n)
        pb_zero(e, b->dcc, (size_t)n2);
        pb_mul_cols_reduce(e, b->dcc, b->Pu, b->work, st->M, n2);
        pb_axpy(e, c->grad, 1.0f, b->dcc, (size_t)n);
        pb_axpy(e, c->grad, 1.0f, b->dcc + n, (size_t)n);
    }
    if (dx) pb_gemm(e, 0, 0, T, st->N, st->M, 1.0f, dy, st->M, st->dW, st->N, 1.0f, dx, st->N);
}

// W += ΔW at the current coefficients.
static void fourier_merge(pb_adapter *a, pb_engine *e, float *W, float *bias) {
    (void)bias;
    fourier_state *st = a->state;
    fourier_delta(st, e, a->params[0].data, st->dW);
    pb_axpy(e, W, 1.0f, st->dW, (size_t)st->M * st->N);
}

static void fourier_free(pb_adapter *a, pb_engine *e) {
    fourier_state *st = a->state;
    pb_free(e, st->dW);
    basis_release(e, st->basis);
    pb_adapter_free_common(e, a);
}

static const pb_adapter_vtbl fourier_vtbl = {"fourierft", 0, fourier_forward, fourier_backward, fourier_merge,
                                             fourier_free, NULL};

// An attached FourierFT adapter of the same shape and entry seed among site->linears below this
// one, whose basis can be shared; NULL if none.
static fourier_basis *find_basis(const pb_site *site, int M, int N, int n, uint32_t seed) {
    for (int i = 0; site->linears && i < site->nlinears && i < site->index; i++) {
        const pb_adapter *o = site->linears[i].adapter;
        if (!o || o->vt != &fourier_vtbl) continue;
        fourier_basis *b = ((const fourier_state *)o->state)->basis;
        if (b->M == M && b->N == N && b->n == n && b->seed == seed) return b;
    }
    return NULL;
}

// A new FourierFT adapter on l: n coefficients (zeroed) at the first n entries of
// torch.randperm(out·in, manual_seed(seed)), ΔW = alpha Re(IDFT2(F)); the basis is shared with
// an adapter of the same shape below site->index. The caller checks n <= out·in < FOURIER_MAX_ENTRIES.
static pb_adapter *fourier_create(pb_engine *e, pb_linear *l, int n, double alpha, uint32_t seed, const pb_site *site) {
    int M = l->out, N = l->in;
    pb_adapter *a = pb_adapter_new(&fourier_vtbl, l, 1, sizeof(fourier_state));
    fourier_state *st = a->state;
    st->M = M; st->N = N; st->n = n;
    st->scale = (float)(alpha / ((double)M * N));
    int64_t *idx = pb_xmalloc((size_t)n * sizeof(int64_t));
    fourier_entries(M, N, n, seed, idx);
    st->basis = find_basis(site, M, N, n, seed);
    if (st->basis) st->basis->refs++;
    else st->basis = basis_new(e, M, N, n, seed, idx);
    // the entries as peft's `indices` (2, n): rows, then columns (exact in float below 2^24)
    pb_param *ip = pb_adapter_frozen(e, a, "fourierft_indices", 2, (int64_t[]){2, n});
    float *hi = pb_xmalloc(2 * (size_t)n * sizeof(float));
    for (int k = 0; k < n; k++) {
        hi[k] = (float)(idx[k] / N);
        hi[n + k] = (float)(idx[k] % N);
    }
    pb_upload(e, ip->data, hi, 2 * (size_t)n);
    free(hi);
    free(idx);
    st->dW = pb_alloc(e, (size_t)M * N);
    pb_param *sp = pb_adapter_param(e, a, 0, "fourierft_spectrum", 1, (int64_t[]){n}, 0);
    pb_zero(e, sp->data, (size_t)n);
    l->adapter = a;
    return a;
}

static pb_status fourier_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                                char *err, size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    int M = l->out, N = l->in, n = pb_mc_int(c, "n_frequency");
    if ((int64_t)n > (int64_t)M * N)
        return pb_errf(PB_ERR_ARG, err, errlen, "n_frequency: %s (%d -> %d) has %lld entries (got %d)", l->name, N, M,
                       (long long)M * N, n);
    pb_adapter *a = fourier_create(e, l, n, pb_mc_num(c, "scaling"), (uint32_t)pb_mc_int(c, "random_loc_seed"), site);
    if (!strcmp(pb_mc_str(c, "init"), "randn")) {
        pb_rng r;
        pb_rng_seed(&r, pb_method_seed(c->seed, site->index, 0xf0f7));
        float *h = pb_xmalloc((size_t)n * sizeof(float));
        for (int k = 0; k < n; k++) h[k] = pb_rng_normal(&r);
        pb_upload(e, a->params[0].data, h, (size_t)n);
        free(h);
    }
    return PB_OK;
}

// PEFT directory as peft's FourierFTConfig writes it: peft_type FOURIERFT, n_frequency, scaling,
// random_loc_seed (peft rebuilds the same entries from it), target_modules; tensors
// base_model.model.<module>.fourierft_spectrum (n), the head as modules_to_save.
static pb_status fourier_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err,
                                     size_t errlen) {
    pb_engine *e = pb_model_engine(m);
    int n = 0, any = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    pb_st_writer *w = pb_st_writer_init();
    cJSON *targets = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        if (a->vt != &fourier_vtbl) {
            pb_st_writer_free(w);
            cJSON_Delete(targets);
            return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "method: %s has a non-FourierFT adapter", ls[i].name);
        }
        size_t D = a->params[0].numel;
        float *h = pb_xmalloc(D * sizeof(float));
        pb_download(e, h, a->params[0].data, D);
        char mod[2 * PB_NAME_MAX], key[3 * PB_NAME_MAX], t[2 * PB_NAME_MAX];
        pb_peft_module(m, &ls[i], mod, sizeof mod);
        snprintf(key, sizeof key, PEFT_PREFIX "%s.fourierft_spectrum", mod);
        pb_st_writer_add(w, key, h, 1, (int64_t[]){(int64_t)D});
        free(h);
        pb_peft_target(m, &ls[i], t, sizeof t);
        pb_peft_add_target(targets, t);
        any = 1;
    }
    if (!any) {
        pb_st_writer_free(w);
        cJSON_Delete(targets);
        return pb_errf(PB_ERR_ARG, err, errlen, "method: the model has no adapters to export");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "peft_type", "FOURIERFT");
    cJSON_AddNumberToObject(o, "n_frequency", pb_mc_int(c, "n_frequency"));
    cJSON_AddNumberToObject(o, "scaling", pb_mc_num(c, "scaling"));
    cJSON_AddNumberToObject(o, "random_loc_seed", pb_mc_int(c, "random_loc_seed"));
    cJSON_AddItemToObject(o, "target_modules", targets);
    cJSON_AddBoolToObject(o, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(o, "init_weights", !strcmp(pb_mc_str(c, "init"), "zeros"));
    cJSON_AddStringToObject(o, "bias", "none");
    return pb_peft_finish(m, c, w, o, dir, err, errlen);
}

// PEFT import of peft_type FOURIERFT: n_frequency, scaling, random_loc_seed and init_weights
// from the config; per adapted linear fourierft_spectrum (n_frequency). peft 0.21 saves no
// entries (its `indices` are a plain dict, not state): it redraws them from random_loc_seed as
// fourier_entries does. n_frequency_pattern (per-module n) is refused: the method has one n.
extern const pb_method_desc pb_method_fourierft;
static pb_status fourier_import_peft(pb_model *m, const cJSON *o, const char *dir, pb_method_config *c, char *err,
                                     size_t errlen) {
    char path[4096], v[48];
    pb_peft_path(dir, "adapter_config.json", path, sizeof path);
    long long nf, seed;
    double scaling;
    int zeros;
    pb_status st = pb_peft_cfg_plain(o, path, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_int(o, path, "n_frequency", 1000, 1, 2147483647, &nf, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_num(o, path, "scaling", 150.0, &scaling, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_int(o, path, "random_loc_seed", 777, 0, 2147483647, &seed, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_bool(o, path, "init_weights", 0, &zeros, err, errlen);
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "n_frequency_pattern");
    if (st == PB_OK && pat && !cJSON_IsNull(pat) && !(cJSON_IsObject(pat) && !pat->child))
        st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field n_frequency_pattern: per-module n_frequency is not "
                     "supported (one n for every linear; give {} or null)", path);
    if (st == PB_OK) st = pb_method_config_init(c, pb_method_fourierft.name, 0, err, errlen);
    snprintf(v, sizeof v, "%lld", nf);
    if (st == PB_OK) st = pb_peft_set(c, path, "n_frequency", "n_frequency", v, err, errlen);
    snprintf(v, sizeof v, "%.17g", scaling);
    if (st == PB_OK) st = pb_peft_set(c, path, "scaling", "scaling", v, err, errlen);
    snprintf(v, sizeof v, "%lld", seed);
    if (st == PB_OK) st = pb_peft_set(c, path, "random_loc_seed", "random_loc_seed", v, err, errlen);
    if (st == PB_OK) st = pb_peft_set(c, path, "init_weights", "init", zeros ? "zeros" : "randn", err, errlen);
    if (st != PB_OK) return st;

    static const char *const leaves[1] = {"fourierft_spectrum"};
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    const pb_st_tensor **tab = pb_xcalloc((size_t)n + 1, sizeof *tab);
    pb_st_file f;
    st = pb_peft_collect(m, dir, &f, leaves, 1, NULL, "a FourierFT spectrum (fourierft_spectrum)", tab, err, errlen);
    int any = 0;
    for (int i = 0; i < n && st == PB_OK; i++) {
        const pb_st_tensor *T = tab[i];
        if (!T) continue;
        any = 1;
        int64_t MN = (int64_t)ls[i].out * ls[i].in;
        if (!pb_peft_shape(T, 1, nf, 0))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: expected %lld elements (field n_frequency of %s)",
                         f.path, T->name, nf, path);
        else if (nf > MN || MN >= (int64_t)FOURIER_MAX_ENTRIES)
            st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field n_frequency: %lld does not fit %s (%d -> %d: %lld "
                         "entries, at most %u)", path, nf, ls[i].name, ls[i].in, ls[i].out, (long long)MN,
                         (unsigned)FOURIER_MAX_ENTRIES - 1);
    }
    if (st == PB_OK && !any)
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: no tensor ends in .fourierft_spectrum (nothing to import)", f.path);
    pb_engine *e = pb_model_engine(m);
    char roles[PB_OPT_STR_MAX] = "";
    if (st == PB_OK) pb_peft_freeze(m);
    for (int i = 0; i < n && st == PB_OK; i++) { // model order: bases shared with lower linears
        if (!tab[i]) continue;
        pb_site site = {.index = i, .linears = ls, .nlinears = n};
        pb_adapter *a = fourier_create(e, &ls[i], (int)nf, scaling, (uint32_t)seed, &site);
        st = pb_peft_load(e, &f, tab[i], a->params[0].data, err, errlen);
        pb_peft_add_role(roles, sizeof roles, &ls[i]);
    }
    if (st == PB_OK) st = pb_peft_load_head(m, &f, err, errlen);
    pb_st_close(&f);
    free(tab);
    if (st == PB_OK) pb_mc_put_str(c, "targets", roles);
    return st;
}

// n coefficients per linear. Forward per token: the x ΔWᵀ GEMM (2 in out); building ΔW
// (2 out in 2n per step, not per token) is left out of the per-token figure.
static double fourier_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)role; (void)in; (void)out;
    return (double)pb_mc_int(c, "n_frequency");
}
static double fourier_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)c; (void)role;
    return 2.0 * in * out;
}
// n_frequency <= in * out (peft's rule).
static int fourier_size_limit(const pb_method_config *c, int in, int out) {
    (void)c;
    int64_t t = (int64_t)in * out;
    return t > 2147483647 ? 2147483647 : (int)t;
}

static const pb_method_opt fourier_opts[] = {
    {"n_frequency", PB_OPT_INT, "1000", 1, 2147483647, 0, NULL,
     "n: trainable spectral coefficients per adapted linear (<= in x out)"},
    {"scaling", PB_OPT_NUM, "150", -1e9, 1e9, 0, NULL, "alpha: Delta W = alpha Re(IDFT2(F))"},
    {"random_loc_seed", PB_OPT_INT, "777", 0, 2147483647, 0, NULL,
     "seed of the spectral entries (torch.randperm as peft; the same for every linear of one shape)"},
    {"init", PB_OPT_ENUM, "randn", 0, 0, 0, "randn|zeros",
     "coefficients N(0,1) (paper; peft init_weights=false) or 0 (step 0 = pre-trained)"},
    PB_OPT_TARGETS("query,value"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_fourierft = {
    .name = "fourierft",
    .summary = "FourierFT: W += alpha Re(IDFT2(F)), F with n trainable coefficients at fixed random entries",
    .reference = "peft FourierFTConfig (Gao et al. 2024)",
    .opts = fourier_opts,
    .nopts = (int)(sizeof fourier_opts / sizeof fourier_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .size_opt = "n_frequency",
    .rank_limit = fourier_size_limit,
    .site_params = fourier_site_params,
    .site_flops = fourier_site_flops,
    .attach = fourier_attach,
    .export_peft = fourier_export_peft,
    .peft_type = "FOURIERFT",
    .import_peft = fourier_import_peft,
};
