// fact.c: FacT (Jie & Deng, AAAI 2023, "FacT: Factor-Tuning for Lightweight Adaptation on Vision
// Transformer", arXiv 2212.03145), the layout of the authors' released code (PETL-ViT/FacT,
// fact_tk.py / fact_tt.py; read to understand it, nothing copied; docs/methods.md "FacT").
//
// The ViT's weight increments are one tensor of 12L slices of d x d: per layer q, k, v, the
// attention output (one slice each) and fc1, fc2 (four slices each: fc1's output rows and fc2's
// input columns in blocks of d). A linear (in -> out) here is k = max(in,out)/d such blocks,
// d = min(in,out). Every adapted linear shares U (r,d) and V (d,r); linear i has its own core
// M_i (r, k r):
//   FacT-TK: M_i = C ×3 P_i, the shared core C (r,r,r) contracted with the linear's k columns
//            P_i (r,k) of P: M_i[a, b k + j] = Σ_c C[a,b,c] P_i[c,j] (C (r²,r) @ P_i (r,k), the
//            same memory as (r,k r));
//   FacT-TT: M_i trainable.
// expand (out = k d; square linears are k = 1):
//   y += s · dropout(x Uᵀ M_i) Vᵀ, the (N, k r) product read as (N k, r) rows: block j of y's
//   columns is s · g[:, j r:(j+1) r] Vᵀ                       (ΔW block j = s V M_i,jᵀ U)
// reduce (in = k d, the FFN output):
//   y += s · dropout(u M_iᵀ) Vᵀ,  u = [x_0 Uᵀ | … | x_{k-1} Uᵀ] (x_j: input block j)
//                                                             (ΔW column block j = s V M_i,j U)
// with M_i,j = M_i[:, j r:(j+1) r]. Dropout (FacT: p = 0.1) acts on the r-wide core output.
// Init as theirs: U kaiming-uniform (nn.Linear, bound 1/sqrt d), V = 0 (ΔW = 0 at step 0),
// TK: C xavier-uniform (bound sqrt(3)/r: fans r·r), P xavier-uniform over the model's whole P
// (r, Σk; bound sqrt(6 / (r + Σk))); TT: M_i as nn.Linear's weight (bound 1/sqrt(r), reduce
// 1/sqrt(k r)).
//
// Sharing: the first FacT adapter in model order creates U, V (and C) as its own params [1..]
// (named after its linear: "<first linear>.fact_u", ...), so the optimizer sees them once; later
// adapters find it in site->linears and point at them; every adapter accumulates its gradient
// into the same grad buffers. The shared struct is refcounted; when the owner is freed before the
// others (pb_method_merge frees in model order) it hands its tensors to the struct, which frees
// them with the last reference.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

extern const pb_method_desc pb_method_fact_tk, pb_method_fact_tt;

enum { P_OWN, P_U, P_V, P_C };

struct pb_fact_shared {
    int refs;
    int d, r, tk;
    pb_adapter *owner;          // whose params hold U, V, C; NULL once it is freed
    pb_param *U, *V, *C;        // (r,d), (d,r), (r,r,r) (C: TK only, else NULL)
    pb_param kept[3];           // U, V, C taken over from a freed owner
    float *t, *dgd, *dg, *dh, *dM; // scratch: pre-dropout core output; backward (one adapter at a time)
    size_t cap_t, cap_dgd, cap_dg, cap_dh, cap_dM;
};
typedef struct pb_fact_shared fact_shared;
typedef pb_fact_state fact_state;

static void shared_release(pb_engine *e, fact_shared *sh) {
    if (!sh || --sh->refs > 0) return;
    if (!sh->owner)
        for (int i = 0; i < 3; i++) pb_param_free(e, &sh->kept[i]);
    pb_free(e, sh->t); pb_free(e, sh->dgd); pb_free(e, sh->dg); pb_free(e, sh->dh); pb_free(e, sh->dM);
    free(sh);
}

// TK: M (r, k r) = C (r²,r) @ P_i (r,k).
static void build_core(fact_state *st, pb_engine *e, const float *P) {
    int r = st->r, k = st->k;
    pb_gemm(e, 0, 0, r * r, k, r, 1.0f, st->sh->C->data, r, P, k, 0.0f, st->M, k);
}

// y (N,out) += the FacT branch of x (N,in); saves h, g (and the mask) for backward.
static void fact_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    fact_state *st = a->state;
    fact_shared *sh = st->sh;
    int r = st->r, k = st->k, d = st->d, kr = k * r;
    if (st->tk) build_core(st, e, a->params[P_OWN].data);
    size_t nh = (size_t)N * (st->reduce ? kr : r), ng = (size_t)N * (st->reduce ? r : kr);
    pb_grow(e, &st->h, &st->cap_h, nh);
    pb_grow(e, &st->g, &st->cap_g, ng);
    st->dropped = train && st->p > 0.0f;
    float *core = st->g; // the core's output before dropout
    if (st->dropped) core = pb_grow(e, &sh->t, &sh->cap_t, ng);
    if (!st->reduce) {
        pb_linear_forward(e, st->h, x, sh->U->data, NULL, N, d, r);                 // h (N,r) = x Uᵀ
        pb_gemm(e, 0, 0, N, kr, r, 1.0f, st->h, r, st->M, kr, 0.0f, core, kr);       // (N,kr) = h M
    } else {
        pb_linear_forward(e, st->h, x, sh->U->data, NULL, N * k, d, r);             // u (N k,r) = x_j Uᵀ
        pb_gemm(e, 0, 1, N, r, kr, 1.0f, st->h, kr, st->M, kr, 0.0f, core, r);       // (N,r) = u Mᵀ
    }
    if (st->dropped) {
        pb_grow(e, &st->mask, &st->cap_mask, ng);
        pb_dropout_forward(e, st->g, st->mask, core, st->p, pb_method_seed(seed, st->index, 0xfac7), ng);
    }
    int rows = st->reduce ? N : N * k; // g as (rows, r), y as (rows, d)
    pb_gemm(e, 0, 1, rows, d, r, st->s, st->g, r, sh->V->data, r, 1.0f, y, d);     // y += s g Vᵀ
}

// dV += s dyᵀ g; dg = mask ⊙ (s dy V); dM from h and dg, then dC, dP (TK) or the core's grad (TT);
// dh; dU += dhᵀ x; dx += dh U. Every shared grad accumulates (+=).
static void fact_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    fact_state *st = a->state;
    fact_shared *sh = st->sh;
    int r = st->r, k = st->k, d = st->d, kr = k * r;
    int rows = st->reduce ? N : N * k;
    size_t nh = (size_t)N * (st->reduce ? kr : r), ng = (size_t)N * (st->reduce ? r : kr);
    pb_param *U = sh->U, *V = sh->V, *own = &a->params[P_OWN];
    if (V->grad) pb_gemm(e, 1, 0, d, r, rows, st->s, dy, d, st->g, r, 1.0f, V->grad, r);
    float *dg = pb_grow(e, &sh->dgd, &sh->cap_dgd, ng);
    pb_gemm(e, 0, 0, rows, r, d, st->s, dy, d, V->data, r, 0.0f, dg, r);             // (rows,r) = s dy V
    if (st->dropped) {
        float *dm = pb_grow(e, &sh->dg, &sh->cap_dg, ng);
        pb_zero(e, dm, ng);
        pb_dropout_backward(e, dm, dg, st->mask, ng);
        dg = dm;
    }
    // dM (r, k r): expand hᵀ dg, reduce dgᵀ u; TT writes straight into the core's grad
    float *dM = st->tk ? pb_grow(e, &sh->dM, &sh->cap_dM, (size_t)r * kr) : own->grad;
    float beta = st->tk ? 0.0f : 1.0f;
    if (dM) {
        if (!st->reduce) pb_gemm(e, 1, 0, r, kr, N, 1.0f, st->h, r, dg, kr, beta, dM, kr);
        else pb_gemm(e, 1, 0, r, kr, N, 1.0f, dg, r, st->h, kr, beta, dM, kr);
    }
    if (st->tk) { // M = C2 P: dC2 (r²,r) += dM (r²,k) Pᵀ; dP (r,k) += C2ᵀ dM
        pb_param *C = sh->C;
        if (C->grad) pb_gemm(e, 0, 1, r * r, r, k, 1.0f, dM, k, own->data, k, 1.0f, C->grad, r);
        if (own->grad) pb_gemm(e, 1, 0, r, k, r * r, 1.0f, C->data, r, dM, k, 1.0f, own->grad, k);
    }
    if (!U->grad && !dx) return;
    float *dh = pb_grow(e, &sh->dh, &sh->cap_dh, nh);
    if (!st->reduce) pb_gemm(e, 0, 1, N, r, kr, 1.0f, dg, kr, st->M, kr, 0.0f, dh, r); // dg Mᵀ
    else pb_gemm(e, 0, 0, N, kr, r, 1.0f, dg, r, st->M, kr, 0.0f, dh, kr);            // dg M
    pb_linear_backward(e, dx, U->grad, NULL, dh, x, U->data, st->reduce ? N * k : N, d, r);
}

// W (out,in) += ΔW: expand block rows j: s V M_jᵀ U; reduce column blocks j: s V M_j U.
static void fact_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    (void)b;
    fact_state *st = a->state;
    fact_shared *sh = st->sh;
    int r = st->r, k = st->k, d = st->d, kr = k * r;
    if (st->tk) build_core(st, e, a->params[P_OWN].data);
    const float *U = sh->U->data, *V = sh->V->data;
    float *A = pb_alloc(e, (size_t)kr * d);
    if (!st->reduce) {
        pb_gemm(e, 1, 0, kr, d, r, 1.0f, st->M, kr, U, d, 0.0f, A, d); // (k r, d) = Mᵀ U: block j = M_jᵀ U
        for (int j = 0; j < k; j++)
            pb_gemm(e, 0, 0, d, d, r, st->s, V, r, A + (size_t)j * r * d, d, 1.0f, W + (size_t)j * d * d, d);
    } else {
        for (int j = 0; j < k; j++) {
            float *Bj = A + (size_t)j * r * d;
            pb_gemm(e, 0, 0, r, d, r, 1.0f, st->M + (size_t)j * r, kr, U, d, 0.0f, Bj, d); // M_j U
            pb_gemm(e, 0, 0, d, d, r, st->s, V, r, Bj, d, 1.0f, W + (size_t)j * d, k * d);
        }
    }
    pb_free(e, A);
}

static void fact_free(pb_adapter *a, pb_engine *e) {
    fact_state *st = a->state;
    fact_shared *sh = st->sh;
    pb_free(e, st->h); pb_free(e, st->g); pb_free(e, st->mask);
    if (st->tk) pb_free(e, st->M);
    if (sh && sh->owner == a && sh->refs > 1) { // hand U, V, C to the adapters still using them
        int n = a->nparams - 1;
        for (int i = 0; i < n; i++) {
            sh->kept[i] = a->params[1 + i];
            memset(&a->params[1 + i], 0, sizeof(pb_param));
        }
        sh->U = &sh->kept[0];
        sh->V = &sh->kept[1];
        sh->C = st->tk ? &sh->kept[2] : NULL;
        sh->owner = NULL;
    }
    shared_release(e, sh);
    pb_adapter_free_common(e, a);
}

static const pb_adapter_vtbl fact_tk_vtbl = {"fact_tk", 0, fact_forward, fact_backward, fact_merge, fact_free, NULL};
static const pb_adapter_vtbl fact_tt_vtbl = {"fact_tt", 0, fact_forward, fact_backward, fact_merge, fact_free, NULL};

// d x d blocks of a linear: k = max/min, or 0 when neither side divides the other.
static int blocks(int in, int out) {
    int lo = in < out ? in : out, hi = in < out ? out : in;
    return lo > 0 && hi % lo == 0 ? hi / lo : 0;
}

static const char *fact_site_check(const pb_method_config *c, int in, int out) {
    (void)c;
    return blocks(in, out) ? NULL
                           : "FacT splits a linear into d x d blocks (d = min(in, out)): one side must be a multiple of the other";
}

// U(-bound, bound) into engine buffer p (n).
static void init_uniform(pb_engine *e, float *p, size_t n, float bound, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    float *h = pb_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = (2.0f * pb_rng_uniform(&r) - 1.0f) * bound;
    pb_upload(e, p, h, n);
    free(h);
}

// The shared factors of an attached adapter of this variant below site->index, or NULL.
static fact_shared *find_shared(const pb_site *site, const pb_adapter_vtbl *vt) {
    for (int i = 0; site->linears && i < site->nlinears && i < site->index; i++) {
        const pb_adapter *o = site->linears[i].adapter;
        if (o && o->vt == vt) return ((const fact_state *)o->state)->sh;
    }
    return NULL;
}

// Σ k over the linears of the model the config targets (the columns of the whole P); k itself
// when the site lists no linears.
static int total_blocks(const pb_method_config *c, const pb_site *site, int k) {
    if (!site->linears) return k;
    int tot = 0;
    for (int i = 0; i < site->nlinears; i++) {
        char role[PB_NAME_MAX];
        pb_method_linear_role(site->linears[i].name, role, sizeof role);
        if (role[0] && pb_mc_list_has(c, "targets", role)) tot += blocks(site->linears[i].in, site->linears[i].out);
    }
    return tot > 0 ? tot : k;
}

static pb_status fact_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site, char *err,
                             size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    int tk = c->desc == &pb_method_fact_tk;
    const pb_adapter_vtbl *vt = tk ? &fact_tk_vtbl : &fact_tt_vtbl;
    int r = pb_mc_int(c, "rank"), in = l->in, out = l->out, k = blocks(in, out);
    if (!k)
        return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s cannot adapt %s (%d -> %d): %s", c->desc->name, l->name,
                       in, out, fact_site_check(c, in, out));
    int d = in < out ? in : out, kr = k * r;
    fact_shared *sh = find_shared(site, vt);
    if (sh && sh->d != d)
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "targets: %s shares U, V of width %d across the adapted linears; %s (%d -> %d) has blocks of %d",
                       c->desc->name, sh->d, l->name, in, out, d);
    pb_adapter *a = pb_adapter_new(vt, l, sh ? 1 : (tk ? 4 : 3), sizeof(fact_state));
    fact_state *st = a->state;
    st->in = in; st->out = out; st->d = d; st->k = k; st->r = r; st->index = site->index;
    st->reduce = in > out;
    st->tk = tk;
    st->s = (float)pb_mc_num(c, "scaling");
    st->p = (float)pb_mc_num(c, "dropout");
    if (tk) {
        pb_param *P = pb_adapter_param(e, a, P_OWN, "fact_p", 2, (int64_t[]){r, k}, 0);
        int ncols = total_blocks(c, site, k);
        init_uniform(e, P->data, P->numel, sqrtf(6.0f / (float)(r + ncols)), pb_method_seed(c->seed, site->index, 0xfac1));
        st->M = pb_alloc(e, (size_t)r * kr);
    } else {
        pb_param *M = pb_adapter_param(e, a, P_OWN, "fact_core", 2, (int64_t[]){r, kr}, 0);
        init_uniform(e, M->data, M->numel, 1.0f / sqrtf((float)(st->reduce ? kr : r)),
                     pb_method_seed(c->seed, site->index, 0xfac2));
        st->M = M->data;
    }
    if (!sh) {
        sh = pb_xcalloc(1, sizeof(*sh));
        sh->d = d; sh->r = r; sh->tk = tk;
        sh->owner = a;
        pb_param *U = pb_adapter_param(e, a, P_U, "fact_u", 2, (int64_t[]){r, d}, 0);
        pb_adapter_param(e, a, P_V, "fact_v", 2, (int64_t[]){d, r}, 0); // V = 0: ΔW = 0 at step 0
        pb_lora_init_A(e, U->data, r, d, 0, pb_method_seed(c->seed, site->index, 0xfac3)); // bound 1/sqrt d
        sh->U = &a->params[P_U];
        sh->V = &a->params[P_V];
        if (tk) {
            pb_param *C = pb_adapter_param(e, a, P_C, "fact_c", 3, (int64_t[]){r, r, r}, 0);
            init_uniform(e, C->data, C->numel, sqrtf(3.0f) / (float)r, pb_method_seed(c->seed, site->index, 0xfac4));
            sh->C = C;
        }
    }
    sh->refs++;
    st->sh = sh;
    l->adapter = a;
    return PB_OK;
}

// Per linear: TK its k columns of P (r k); TT its core (k r²). Shared once: U, V (2 r d) and TK's
// core C (r³). Forward per token: x Uᵀ, the core, Vᵀ: 2 r (in + out) + 2 k r².
static double fact_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    double r = pb_mc_int(c, "rank"), k = blocks(in, out);
    return c->desc == &pb_method_fact_tk ? r * k : k * r * r;
}
static double fact_shared_params(const pb_method_config *c, const pb_model_config *cfg) {
    double r = pb_mc_int(c, "rank");
    return 2.0 * r * cfg->hidden + (c->desc == &pb_method_fact_tk ? r * r * r : 0.0);
}
static double fact_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    double r = pb_mc_int(c, "rank");
    return 2.0 * r * (in + out) + 2.0 * blocks(in, out) * r * r;
}

#define FACT_OPTS(scale_def)                                                                        \
    {"rank", PB_OPT_INT, "8", 1, 256, 0, NULL, "r: width of U (r,d), V (d,r) and of the cores (FacT's per-task ranks: TK 16, 32; TT 4 to 16)"}, \
    {"scaling", PB_OPT_NUM, scale_def, -1e6, 1e6, 0, NULL, "s: Delta W = s U M V^T (FacT's per-task 'scale')"}, \
    {"dropout", PB_OPT_NUM, "0.1", 0, 1, 1, NULL, "dropout on the r-wide core output while training (FacT: 0.1)"}, \
    PB_OPT_TARGETS("query,key,value,attention.output,intermediate,output"), PB_OPT_TRAIN_HEAD

static const pb_method_opt fact_tk_opts[] = {FACT_OPTS("10")};
static const pb_method_opt fact_tt_opts[] = {FACT_OPTS("1")};

const pb_method_desc pb_method_fact_tk = {
    .name = "fact_tk",
    .summary = "FacT-TK: Delta W_i = s U (C x3 P_i) V^T per d x d block; U, V, core C shared by all linears, P_i own",
    .reference = "PyTorch module from arXiv 2212.03145 (the authors' fact_tk.py layout) + finite differences",
    .opts = fact_tk_opts,
    .nopts = (int)(sizeof fact_tk_opts / sizeof fact_tk_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_check = fact_site_check,
    .site_params = fact_site_params,
    .site_flops = fact_site_flops,
    .shared_params = fact_shared_params,
    .attach = fact_attach,
};

const pb_method_desc pb_method_fact_tt = {
    .name = "fact_tt",
    .summary = "FacT-TT: Delta W_i = s U M_i V^T per d x d block; U, V shared by all linears, the core M_i own",
    .reference = "PyTorch module from arXiv 2212.03145 (the authors' fact_tt.py layout) + finite differences",
    .opts = fact_tt_opts,
    .nopts = (int)(sizeof fact_tt_opts / sizeof fact_tt_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_check = fact_site_check,
    .site_params = fact_site_params,
    .site_flops = fact_site_flops,
    .shared_params = fact_shared_params,
    .attach = fact_attach,
};
