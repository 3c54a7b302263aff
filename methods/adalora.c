// adalora.c: AdaLoRA (Zhang et al., ICLR 2023, arXiv 2303.10512; formats.md 2.4), as peft's
// AdaLoraConfig / SVDLinear / RankAllocator: on every targeted linear
//     y += (dropout(x) (A ⊙ E)ᵀ) Bᵀ · scaling / (r + 1e-5),   A (r,in), E (r,1), B (out,r),
// scaling = alpha (r when alpha = 0), r = init_r; E = 0, A, B ~ N(0, 0.02²) at init. Training adds
// peft's orthogonality regulariser to the loss (desc->regularize) and runs the rank allocator
// after every update (desc->after_update): EMA importance scores of the (A row, E entry, B column)
// triplets, a cubic budget schedule from init_r to target_r per matrix, and masking of the least
// important E entries to 0 by one global kthvalue threshold. Checked against peft in
// tests/ref/ref_adalora.py and by finite differences in tests/test_adalora.c.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "adalora.h"
#include "methods_internal.h"
#include "models/safetensors.h"

// y (N,out) += s (xd Aᵀ ⊙ E) Bᵀ, x (N,in).
static void adalora_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train,
                            uint64_t seed) {
    pb_adalora_state *st = a->state;
    const float *A = a->params[0].data, *E = a->params[1].data, *B = a->params[2].data;
    size_t nx = (size_t)N * st->in, nh = (size_t)N * st->r;
    const float *xd = pb_adapter_input_dropout(e, &st->xd, &st->cap_xd, &st->mask, &st->cap_mask, x, nx, st->p, train,
                                               seed, st->index, &st->dropped);
    pb_grow(e, &st->h, &st->cap_h, nh);
    pb_grow(e, &st->he, &st->cap_he, nh);
    pb_linear_forward(e, st->h, xd, A, NULL, N, st->in, st->r); // h (N,r)
    pb_mul_cols(e, st->he, st->h, E, N, st->r);                  // h ⊙ E
    pb_gemm(e, 0, 1, N, st->out, st->r, st->s, st->he, st->r, B, st->r, 1.0f, y, st->out);
}

// dB += s dyᵀ he; g = s dy B; dE += Σ_n g ⊙ h; g ⊙= E; dA += gᵀ xd; dx += mask ⊙ (g A).
static void adalora_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    pb_adalora_state *st = a->state;
    pb_param *A = &a->params[0], *E = &a->params[1], *B = &a->params[2];
    const float *xd = st->dropped ? st->xd : x;
    if (B->grad)
        pb_gemm(e, 1, 0, st->out, st->r, N, st->s, dy, st->out, st->he, st->r, 1.0f, B->grad, st->r);
    pb_grow(e, &st->g, &st->cap_g, (size_t)N * st->r);
    pb_gemm(e, 0, 0, N, st->r, st->out, st->s, dy, st->out, B->data, st->r, 0.0f, st->g, st->r);
    if (E->grad) pb_mul_cols_reduce(e, E->grad, st->g, st->h, N, st->r);
    pb_mul_cols(e, st->g, st->g, E->data, N, st->r);
    if (A->grad) pb_gemm(e, 1, 0, st->r, st->in, N, 1.0f, st->g, st->r, xd, st->in, 1.0f, A->grad, st->in);
    if (!dx) return;
    if (st->dropped) {
        size_t nx = (size_t)N * st->in;
        pb_grow(e, &st->dxd, &st->cap_dxd, nx);
        pb_gemm(e, 0, 0, N, st->in, st->r, 1.0f, st->g, st->r, A->data, st->in, 0.0f, st->dxd, st->in);
        pb_dropout_backward(e, dx, st->dxd, st->mask, nx);
    } else {
        pb_gemm(e, 0, 0, N, st->in, st->r, 1.0f, st->g, st->r, A->data, st->in, 1.0f, dx, st->in);
    }
}

// A ⊙ E (rows of A scaled by E) into the engine buffer AE (r,in): host, merge and export only.
static void scaled_A(pb_adapter *a, pb_engine *e, float *AE) {
    pb_adalora_state *st = a->state;
    size_t n = (size_t)st->r * st->in;
    float *hA = pb_xmalloc(n * sizeof(float)), *hE = pb_xmalloc((size_t)st->r * sizeof(float));
    pb_download(e, hA, a->params[0].data, n);
    pb_download(e, hE, a->params[1].data, (size_t)st->r);
    for (int i = 0; i < st->r; i++)
        for (int j = 0; j < st->in; j++) hA[(size_t)i * st->in + j] *= hE[i];
    pb_upload(e, AE, hA, n);
    free(hA);
    free(hE);
}

// W (out,in) += s B (A ⊙ E) (peft's get_delta_weight).
static void adalora_merge(pb_adapter *a, pb_engine *e, float *W, float *b) {
    (void)b;
    pb_adalora_state *st = a->state;
    float *AE = pb_alloc(e, (size_t)st->r * st->in);
    scaled_A(a, e, AE);
    pb_gemm(e, 0, 0, st->out, st->in, st->r, st->s, a->params[2].data, st->r, AE, st->in, 1.0f, W, st->in);
    pb_free(e, AE);
}

static void adalora_free(pb_adapter *a, pb_engine *e) {
    pb_adalora_state *st = a->state;
    pb_free(e, st->xd); pb_free(e, st->mask); pb_free(e, st->h); pb_free(e, st->he);
    pb_free(e, st->g); pb_free(e, st->dxd);
    for (int k = 0; k < 3; k++) {
        free(st->ipt[k]);
        free(st->unc[k]);
    }
    free(st->keep);
    free(st->import_bits);
    pb_adapter_free_common(e, a);
}

const pb_adapter_vtbl pb_adalora_vtbl = {"adalora", 0, adalora_forward, adalora_backward, adalora_merge,
                                         adalora_free, NULL};

static float adalora_scaling(const pb_method_config *c, int r) {
    float a = (float)pb_mc_num(c, "alpha");
    float ranknum = (float)r + 1e-5f; // peft: ranknum (a float32 parameter) + 1e-5
    return (a > 0 ? a : (float)r) / ranknum;
}

// A new AdaLoRA adapter of rank r on l (A, E, B zeroed, trainable; every triplet kept), output
// scale s = scaling / (ranknum + 1e-5), dropout p.
static pb_adapter *adalora_create(pb_engine *e, pb_linear *l, int r, float s, float p, int index) {
    pb_adapter *a = pb_adapter_new(&pb_adalora_vtbl, l, 3, sizeof(pb_adalora_state));
    pb_adalora_state *st = a->state;
    st->r = r; st->in = l->in; st->out = l->out; st->index = index;
    st->s = s;
    st->p = p;
    size_t n[3] = {(size_t)r * l->in, (size_t)r, (size_t)l->out * r};
    for (int k = 0; k < 3; k++) {
        st->ipt[k] = pb_xcalloc(n[k], sizeof(float));
        st->unc[k] = pb_xcalloc(n[k], sizeof(float));
    }
    st->keep = pb_xmalloc((size_t)r);
    memset(st->keep, 1, (size_t)r);
    pb_adapter_param(e, a, 0, "lora_A", 2, (int64_t[]){r, l->in}, 0);
    pb_adapter_param(e, a, 1, "lora_E", 2, (int64_t[]){r, 1}, 0);
    pb_adapter_param(e, a, 2, "lora_B", 2, (int64_t[]){l->out, r}, 0);
    for (int k = 0; k < 3; k++) pb_zero(e, a->params[k].data, n[k]);
    l->adapter = a;
    return a;
}

static pb_status adalora_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                                char *err, size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    int r = pb_mc_int(c, "init_r");
    pb_adapter *a = adalora_create(e, l, r, adalora_scaling(c, r), (float)pb_mc_num(c, "dropout"), site->index);
    size_t n[3] = {(size_t)r * l->in, (size_t)r, (size_t)l->out * r};
    // A, B ~ N(0, 0.02^2) (peft's reset_lora_parameters); E = 0, so step 0 is the base model
    pb_rng rng;
    pb_rng_seed(&rng, pb_method_seed(c->seed, site->index, 0xada));
    for (int k = 0; k < 3; k += 2) {
        float *h = pb_xmalloc(n[k] * sizeof(float));
        for (size_t i = 0; i < n[k]; i++) h[i] = 0.02f * pb_rng_normal(&rng);
        pb_upload(e, a->params[k].data, h, n[k]);
        free(h);
    }
    return PB_OK;
}

pb_adapter **pb_adalora_collect(pb_model *m, int *n) {
    int nl = 0, k = 0;
    pb_linear *ls = pb_model_linears(m, &nl);
    pb_adapter **as = NULL;
    for (int i = 0; i < nl; i++)
        if (ls[i].adapter && ls[i].adapter->vt == &pb_adalora_vtbl) k++;
    if (k) as = pb_xmalloc(sizeof(pb_adapter *) * (size_t)k);
    k = 0;
    for (int i = 0; i < nl; i++)
        if (ls[i].adapter && ls[i].adapter->vt == &pb_adalora_vtbl) as[k++] = ls[i].adapter;
    *n = k;
    return as;
}

// ‖P − I‖_F of the Gram matrix P (r,r) = X Xᵀ (t = 0, X = A (r,len)) or Xᵀ X (t = 1, X = B
// (len,r)); with coef != 0, dX += coef (P − I) X / ‖P − I‖ (t = 0) or coef X (P − I) / ‖P − I‖.
static double orth_term(pb_engine *e, const float *X, float *dX, int r, int len, int t, double coef, float *P,
                        float *hP) {
    if (!t) pb_gemm(e, 0, 1, r, r, len, 1.0f, X, len, X, len, 0.0f, P, r);
    else pb_gemm(e, 1, 0, r, r, len, 1.0f, X, r, X, r, 0.0f, P, r);
    pb_download(e, hP, P, (size_t)r * r);
    double ss = 0;
    for (int i = 0; i < r; i++) {
        hP[(size_t)i * r + i] -= 1.0f;
        for (int j = 0; j < r; j++) ss += (double)hP[(size_t)i * r + j] * hP[(size_t)i * r + j];
    }
    double nrm = sqrt(ss);
    if (coef != 0 && dX && nrm > 0) { // torch's norm backward: 0 at a zero norm
        pb_upload(e, P, hP, (size_t)r * r);
        // d‖M‖/dX for M = X Xᵀ − I (symmetric): 2 M X / ‖M‖; for M = Xᵀ X − I: 2 X M / ‖M‖
        float k = (float)(2.0 * coef / nrm);
        if (!t) pb_gemm(e, 0, 0, r, len, r, k, P, r, X, len, 1.0f, dX, len);
        else pb_gemm(e, 0, 0, len, r, r, k, X, r, P, r, 1.0f, dX, r);
    }
    return nrm;
}

double pb_adalora_orth(pb_engine *e, pb_adapter **as, int n, double weight, int grad) {
    if (n == 0) return 0.0;
    int rmax = 1;
    for (int i = 0; i < n; i++) rmax = PB_MAX(rmax, ((pb_adalora_state *)as[i]->state)->r);
    float *P = pb_alloc(e, (size_t)rmax * rmax), *hP = pb_xmalloc((size_t)rmax * rmax * sizeof(float));
    double coef = grad ? weight / (2.0 * n) : 0.0, sum = 0;
    for (int i = 0; i < n; i++) {
        pb_adalora_state *st = as[i]->state;
        if (st->r == 0) continue;
        sum += orth_term(e, as[i]->params[0].data, as[i]->params[0].grad, st->r, st->in, 0, coef, P, hP);
        sum += orth_term(e, as[i]->params[2].data, as[i]->params[2].grad, st->r, st->out, 1, coef, P, hP);
    }
    pb_free(e, P);
    free(hP);
    return weight * (sum / (2.0 * n));
}

// peft's RankAllocator.budget_schedule(step) with init / target budgets ib, tb: the budget and
// whether this step masks.
static int budget_schedule(const pb_method_config *c, int step, int T, int ib, int tb, int *mask) {
    int tinit = pb_mc_int(c, "tinit"), tfinal = pb_mc_int(c, "tfinal");
    if (step <= tinit) {
        *mask = 0;
        return ib;
    }
    if (step > T - tfinal) {
        *mask = 1;
        return tb;
    }
    double mul = 1.0 - (double)(step - tinit) / (double)(T - tfinal - tinit);
    *mask = step % pb_mc_int(c, "deltaT") == 0;
    return (int)((double)(ib - tb) * pow(mul, 3.0) + (double)tb);
}

// EMAs of one tensor (n): ipt = |p g|, I = b1 I + (1−b1) ipt, U = b2 U + (1−b2) |ipt − I|
// (float32 steps, as torch does them).
static void update_ipt(pb_engine *e, const pb_param *p, float *I, float *U, size_t n, float b1, float c1, float b2,
                       float c2) {
    float *hp = pb_xmalloc(n * sizeof(float)), *hg = pb_xmalloc(n * sizeof(float));
    pb_download(e, hp, p->data, n);
    pb_download(e, hg, p->grad, n);
    for (size_t i = 0; i < n; i++) {
        float ipt = fabsf(hp[i] * hg[i]);
        volatile float t1 = b1 * I[i], t2 = c1 * ipt; // no contraction: torch rounds each op
        I[i] = t1 + t2;
        volatile float u1 = b2 * U[i], u2 = c2 * fabsf(ipt - I[i]);
        U[i] = u1 + u2;
    }
    free(hp);
    free(hg);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

// Zeroes the E entries of a whose triplet is not kept (host copy of E, uploaded back).
static void apply_keep(pb_engine *e, pb_adapter *a) {
    pb_adalora_state *st = a->state;
    float *hE = pb_xmalloc((size_t)st->r * sizeof(float) + 1);
    pb_download(e, hE, a->params[1].data, (size_t)st->r);
    for (int i = 0; i < st->r; i++)
        if (!st->keep[i]) hE[i] = 0.0f;
    pb_upload(e, a->params[1].data, hE, (size_t)st->r);
    free(hE);
}

// peft's RankAllocator.mask_to_budget: triplet scores S_i = s(E_i) + mean_j s(A_ij) + mean_o
// s(B_oi) with s = I ⊙ U; threshold = the (ib − budget)-th smallest over all triplets; E_i = 0
// (and keep_i = 0) where S_i <= threshold.
static void mask_to_budget(pb_engine *e, pb_adapter **as, int n, int ib, int budget) {
    float **score = pb_xmalloc(sizeof(float *) * (size_t)n);
    float *all = pb_xmalloc(sizeof(float) * (size_t)(ib + 1));
    int m = 0;
    for (int k = 0; k < n; k++) {
        pb_adalora_state *st = as[k]->state;
        score[k] = pb_xmalloc(sizeof(float) * (size_t)(st->r + 1));
        for (int i = 0; i < st->r; i++) {
            double sa = 0, sb = 0;
            for (int j = 0; j < st->in; j++) {
                size_t q = (size_t)i * st->in + j;
                sa += (double)(st->ipt[0][q] * st->unc[0][q]);
            }
            for (int o = 0; o < st->out; o++) {
                size_t q = (size_t)o * st->r + i;
                sb += (double)(st->ipt[2][q] * st->unc[2][q]);
            }
            float ab = (float)(sa / st->in) + (float)(sb / st->out);
            score[k][i] = st->ipt[1][i] * st->unc[1][i] + ab;
            all[m++] = score[k][i];
        }
    }
    int kth = ib - budget;
    float thr = -INFINITY;
    if (kth >= 1 && kth <= m) {
        qsort(all, (size_t)m, sizeof(float), cmp_float);
        thr = all[kth - 1];
    }
    for (int k = 0; k < n; k++) {
        pb_adalora_state *st = as[k]->state;
        for (int i = 0; i < st->r; i++) st->keep[i] = !(score[k][i] <= thr);
        st->has_pattern = 1;
        apply_keep(e, as[k]);
        free(score[k]);
    }
    free(score);
    free(all);
}

int pb_adalora_allocate(pb_engine *e, pb_adapter **as, int n, const pb_method_config *c, int step, int total) {
    if (n == 0) return 0;
    for (int k = 0; k < n; k++)
        if (((pb_adalora_state *)as[k]->state)->fixed) return -1; // imported: final ranks
    int tfinal = pb_mc_int(c, "tfinal"), ib = 0, tb = pb_mc_int(c, "target_r") * n;
    for (int k = 0; k < n; k++) ib += ((pb_adalora_state *)as[k]->state)->r;
    if (step > total - tfinal) { // final fine-tuning: the last pattern stays applied
        for (int k = 0; k < n; k++)
            if (((pb_adalora_state *)as[k]->state)->has_pattern) apply_keep(e, as[k]);
        return -1;
    }
    if (step < total - tfinal) {
        float b1 = (float)pb_mc_num(c, "beta1"), b2 = (float)pb_mc_num(c, "beta2");
        float c1 = (float)(1.0 - pb_mc_num(c, "beta1")), c2 = (float)(1.0 - pb_mc_num(c, "beta2"));
        for (int k = 0; k < n; k++) {
            pb_adalora_state *st = as[k]->state;
            for (int q = 0; q < 3; q++)
                if (as[k]->params[q].grad)
                    update_ipt(e, &as[k]->params[q], st->ipt[q], st->unc[q], as[k]->params[q].numel, b1, c1, b2, c2);
        }
    }
    int mask = 0;
    int budget = budget_schedule(c, step, total, ib, tb, &mask);
    if (mask || step == total - tfinal) mask_to_budget(e, as, n, ib, budget);
    if (step == total - tfinal) // the EMAs restart (peft's reset_ipt)
        for (int k = 0; k < n; k++) {
            pb_adalora_state *st = as[k]->state;
            for (int q = 0; q < 3; q++) {
                memset(st->ipt[q], 0, as[k]->params[q].numel * sizeof(float));
                memset(st->unc[q], 0, as[k]->params[q].numel * sizeof(float));
            }
        }
    return budget;
}

// total_step, or the run's steps when it is 0.
static int schedule_steps(const pb_method_config *c, int total_steps) {
    int T = pb_mc_int(c, "total_step");
    return T > 0 ? T : total_steps;
}

// The schedule needs a budget phase: tinit < T − tfinal (peft's AdaLoraConfig check).
static pb_status adalora_train_check(const pb_method_config *c, int total_steps, char *err, size_t errlen) {
    int T = schedule_steps(c, total_steps), tinit = pb_mc_int(c, "tinit"), tfinal = pb_mc_int(c, "tfinal");
    if (T <= 0)
        return pb_errf(PB_ERR_ARG, err, errlen, "adalora: total_step: the run has no step count; give total_step > 0");
    if (tinit >= T - tfinal)
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "adalora: tinit %d, tfinal %d and total_step %d leave no budgeting phase (need tinit < "
                       "total_step - tfinal)",
                       tinit, tfinal, T);
    return PB_OK;
}

// The orthogonality regulariser of every AdaLoRA adapter of m: gradient into the A, B grads.
static double adalora_regularize(pb_model *m, const pb_method_config *c) {
    double w = pb_mc_num(c, "orth_reg_weight");
    if (w == 0) return 0.0;
    int n = 0;
    pb_adapter **as = pb_adalora_collect(m, &n);
    double r = pb_adalora_orth(pb_model_engine(m), as, n, w, 1);
    free(as);
    return r;
}

static void adalora_after_update(pb_model *m, const pb_method_config *c, int step, int total_steps) {
    int n = 0;
    pb_adapter **as = pb_adalora_collect(m, &n);
    pb_adalora_allocate(pb_model_engine(m), as, n, c, step, schedule_steps(c, total_steps));
    free(as);
}

// Size rule: target_r below init_r (the budget must shrink: peft's kthvalue needs k >= 1).
static const char *adalora_site_check(const pb_method_config *c, int in, int out) {
    (void)in; (void)out;
    return pb_mc_int(c, "target_r") >= pb_mc_int(c, "init_r") ? "target_r must be below init_r" : NULL;
}

// A (r,in) + E (r) + B (out,r) at init_r; forward x Aᵀ, ⊙ E, h Bᵀ: 2 r (in + out) + r FLOPs per token.
static double adalora_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    double r = pb_mc_int(c, "init_r");
    return r * (in + out) + r;
}
static double adalora_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)role;
    double r = pb_mc_int(c, "init_r");
    return 2.0 * r * (in + out) + r;
}

// peft ADALORA directory: lora_A / lora_E / lora_B (no ".weight") cut to the rank pattern as
// peft's save_pretrained does (resize_state_dict_by_rank_pattern), rank_pattern in the config
// (null before any allocation: full init_r), the head as modules_to_save.
static pb_status adalora_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err,
                                     size_t errlen) {
    pb_engine *e = pb_model_engine(m);
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    pb_st_writer *w = pb_st_writer_init();
    cJSON *targets = cJSON_CreateArray(), *pattern = cJSON_CreateObject();
    char key[3 * PB_NAME_MAX], mod[2 * PB_NAME_MAX], t[2 * PB_NAME_MAX];
    int any = 0, has_pattern = 0;
    for (int i = 0; i < n; i++) {
        pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        if (a->vt != &pb_adalora_vtbl) {
            pb_st_writer_free(w);
            cJSON_Delete(targets);
            cJSON_Delete(pattern);
            return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "method: %s has a non-AdaLoRA adapter", ls[i].name);
        }
        pb_adalora_state *st = a->state;
        int r = st->r, k = 0;
        for (int q = 0; q < r; q++) k += st->has_pattern ? st->keep[q] : 1;
        has_pattern |= st->has_pattern;
        float *hA = pb_xmalloc((size_t)r * st->in * sizeof(float) + 1), *hE = pb_xmalloc((size_t)r * sizeof(float) + 1);
        float *hB = pb_xmalloc((size_t)st->out * r * sizeof(float) + 1);
        float *kA = pb_xmalloc((size_t)k * st->in * sizeof(float) + 1), *kE = pb_xmalloc((size_t)k * sizeof(float) + 1);
        float *kB = pb_xmalloc((size_t)st->out * k * sizeof(float) + 1);
        pb_download(e, hA, a->params[0].data, (size_t)r * st->in);
        pb_download(e, hE, a->params[1].data, (size_t)r);
        pb_download(e, hB, a->params[2].data, (size_t)st->out * r);
        pb_peft_module(m, &ls[i], mod, sizeof(mod));
        cJSON *bits = cJSON_CreateArray();
        if (st->import_bits) { // imported: the file's pattern (over init_r); the tensors hold its kept triplets
            for (int q = 0; q < st->import_nbits; q++) cJSON_AddItemToArray(bits, cJSON_CreateBool(st->import_bits[q]));
            has_pattern = 1;
        }
        for (int q = 0, j = 0; q < r; q++) {
            int keep = st->has_pattern ? st->keep[q] : 1;
            if (!st->import_bits) cJSON_AddItemToArray(bits, cJSON_CreateBool(keep));
            if (!keep) continue;
            memcpy(kA + (size_t)j * st->in, hA + (size_t)q * st->in, (size_t)st->in * sizeof(float));
            kE[j] = hE[q];
            for (int o = 0; o < st->out; o++) kB[(size_t)o * k + j] = hB[(size_t)o * r + q];
            j++;
        }
        snprintf(key, sizeof(key), "%s.lora_E", mod);
        cJSON_AddItemToObject(pattern, key, bits);
        snprintf(key, sizeof(key), PEFT_PREFIX "%s.lora_A", mod);
        pb_st_writer_add(w, key, kA, 2, (int64_t[]){k, st->in});
        snprintf(key, sizeof(key), PEFT_PREFIX "%s.lora_E", mod);
        pb_st_writer_add(w, key, kE, 2, (int64_t[]){k, 1});
        snprintf(key, sizeof(key), PEFT_PREFIX "%s.lora_B", mod);
        pb_st_writer_add(w, key, kB, 2, (int64_t[]){st->out, k});
        free(hA); free(hE); free(hB); free(kA); free(kE); free(kB);
        pb_peft_target(m, &ls[i], t, sizeof(t));
        pb_peft_add_target(targets, t);
        any = 1;
    }
    if (!any) {
        pb_st_writer_free(w);
        cJSON_Delete(targets);
        cJSON_Delete(pattern);
        return pb_errf(PB_ERR_ARG, err, errlen, "method: the model has no adapters to export");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "peft_type", "ADALORA");
    cJSON_AddNumberToObject(o, "init_r", pb_mc_int(c, "init_r"));
    cJSON_AddNumberToObject(o, "target_r", pb_mc_int(c, "target_r"));
    cJSON_AddNumberToObject(o, "tinit", pb_mc_int(c, "tinit"));
    cJSON_AddNumberToObject(o, "tfinal", pb_mc_int(c, "tfinal"));
    cJSON_AddNumberToObject(o, "deltaT", pb_mc_int(c, "deltaT"));
    cJSON_AddNumberToObject(o, "beta1", pb_mc_num(c, "beta1"));
    cJSON_AddNumberToObject(o, "beta2", pb_mc_num(c, "beta2"));
    cJSON_AddNumberToObject(o, "orth_reg_weight", pb_mc_num(c, "orth_reg_weight"));
    // peft refuses total_step <= 0 and needs tinit < total_step - tfinal; 0 (the run's steps)
    // is written as the smallest valid one (it does not matter for loading)
    int T = pb_mc_int(c, "total_step");
    if (T <= 0) T = pb_mc_int(c, "tinit") + pb_mc_int(c, "tfinal") + 1;
    cJSON_AddNumberToObject(o, "total_step", T);
    cJSON_AddNumberToObject(o, "r", 8); // peft ignores r for AdaLoRA (warns unless 8)
    // alpha 0 means init_r here; peft's 0 means "the module's r", which after its loader cuts a
    // module to the rank pattern is the kept rank, not init_r: write init_r itself
    float alpha = pb_mc_num(c, "alpha") > 0 ? (float)pb_mc_num(c, "alpha") : (float)pb_mc_int(c, "init_r");
    cJSON_AddNumberToObject(o, "lora_alpha", alpha);
    cJSON_AddNumberToObject(o, "lora_dropout", pb_mc_num(c, "dropout"));
    cJSON_AddItemToObject(o, "target_modules", targets);
    cJSON_AddStringToObject(o, "bias", "none");
    cJSON_AddBoolToObject(o, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(o, "init_lora_weights", 1);
    if (has_pattern) cJSON_AddItemToObject(o, "rank_pattern", pattern);
    else {
        cJSON_Delete(pattern);
        cJSON_AddNullToObject(o, "rank_pattern");
    }
    return pb_peft_finish(m, c, w, o, dir, err, errlen);
}

// PEFT import of peft_type ADALORA: init_r, target_r, tinit, tfinal, deltaT, beta1, beta2,
// orth_reg_weight, total_step, lora_alpha, lora_dropout and rank_pattern from the config; per
// adapted linear lora_A (k, in), lora_E (k, 1), lora_B (out, k) with k = the kept entries of its
// rank_pattern list (init_r long), or init_r without one — what peft's save_pretrained cuts
// and its loader resizes to. ranknum (not saved by peft 0.21; older files may hold it) must equal
// init_r: peft keeps the ranknum of init_r when it resizes, so the scale is
// (lora_alpha, or k when lora_alpha is 0) / (init_r + 1e-5), as peft's loaded model has it
// (lora_alpha 0 with a module cut below init_r is refused: the config cannot say so).
// The schedule's state (EMAs, step) is not in the file: the adapters are fixed at these ranks
// (pb_adalora_allocate leaves them alone), for inference or continued training at the final
// ranks; the orth regulariser still applies. A rank-0 module (every entry masked) is refused.
extern const pb_method_desc pb_method_adalora;
static pb_status adalora_import_peft(pb_model *m, const cJSON *o, const char *dir, pb_method_config *c, char *err,
                                     size_t errlen) {
    char path[4096], v[48];
    pb_peft_path(dir, "adapter_config.json", path, sizeof path);
    static const struct { const char *field, *opt; long long def, min; } ints[] = {
        {"init_r", "init_r", 12, 1}, {"target_r", "target_r", 8, 0}, {"tinit", "tinit", 0, 0},
        {"tfinal", "tfinal", 0, 0}, {"deltaT", "deltaT", 1, 1}, {"total_step", "total_step", 0, 1}};
    static const struct { const char *field, *opt; double def; } nums[] = {
        {"beta1", "beta1", 0.85}, {"beta2", "beta2", 0.85}, {"orth_reg_weight", "orth_reg_weight", 0.5},
        {"lora_alpha", "alpha", 8.0}, {"lora_dropout", "dropout", 0.0}};
    long long iv[6];
    double nv[5];
    int dora;
    pb_status st = pb_peft_cfg_plain(o, path, err, errlen);
    if (st == PB_OK) st = pb_peft_cfg_bool(o, path, "use_dora", 0, &dora, err, errlen);
    if (st == PB_OK && dora)
        st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field use_dora: AdaLoRA has no DoRA form", path);
    if (st == PB_OK) st = pb_method_config_init(c, pb_method_adalora.name, 0, err, errlen);
    for (int k = 0; k < 6 && st == PB_OK; k++) {
        st = pb_peft_cfg_int(o, path, ints[k].field, ints[k].def, ints[k].min, 1000000000, &iv[k], err, errlen);
        snprintf(v, sizeof v, "%lld", iv[k]);
        if (st == PB_OK) st = pb_peft_set(c, path, ints[k].field, ints[k].opt, v, err, errlen);
    }
    for (int k = 0; k < 5 && st == PB_OK; k++) {
        st = pb_peft_cfg_num(o, path, nums[k].field, nums[k].def, &nv[k], err, errlen);
        snprintf(v, sizeof v, "%.17g", nv[k]);
        if (st == PB_OK) st = pb_peft_set(c, path, nums[k].field, nums[k].opt, v, err, errlen);
    }
    if (st != PB_OK) return st;
    int init_r = (int)iv[0];
    double alpha = nv[3];
    float p = (float)nv[4];

    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    // rank_pattern: "<module>.lora_E" (peft may leave ".default" behind) -> init_r booleans
    uint8_t **bits = pb_xcalloc((size_t)n + 1, sizeof *bits);
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(o, "rank_pattern"), *it;
    if (rp && !cJSON_IsNull(rp) && !cJSON_IsObject(rp))
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field rank_pattern: expected an object or null", path);
    if (cJSON_IsObject(rp))
        cJSON_ArrayForEach(it, rp) {
            if (st != PB_OK) break;
            char mod[2 * PB_NAME_MAX];
            snprintf(mod, sizeof mod, "%s", it->string);
            size_t kl = strlen(mod);
            if (kl > 8 && !strcmp(mod + kl - 8, ".default")) mod[kl -= 8] = 0;
            int idx = -1;
            pb_linear *l = NULL;
            if (kl > 7 && !strcmp(mod + kl - 7, ".lora_E")) {
                mod[kl - 7] = 0;
                l = pb_peft_find_linear(m, mod, &idx);
            }
            if (!l) {
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field rank_pattern: key '%s' is not <linear>.lora_E of a "
                             "linear of this model", path, it->string);
                break;
            }
            if (bits[idx] || !cJSON_IsArray(it) || cJSON_GetArraySize(it) != init_r) {
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field rank_pattern: '%s': expected one list of init_r = %d "
                             "booleans per linear", path, it->string, init_r);
                break;
            }
            bits[idx] = pb_xmalloc((size_t)init_r);
            int q = 0;
            const cJSON *b;
            cJSON_ArrayForEach(b, it) {
                int ok = cJSON_IsBool(b) || (cJSON_IsNumber(b) && (b->valuedouble == 0 || b->valuedouble == 1));
                if (!ok && st == PB_OK)
                    st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field rank_pattern: '%s': entry %d is not a boolean",
                                 path, it->string, q);
                bits[idx][q++] = (uint8_t)(cJSON_IsBool(b) ? cJSON_IsTrue(b) : b->valuedouble == 1);
            }
        }

    static const char *const leaves[4] = {"lora_A", "lora_E", "lora_B", "ranknum"};
    const pb_st_tensor **tab = pb_xcalloc((size_t)n * 4 + 1, sizeof *tab);
    int *rank = pb_xcalloc((size_t)n + 1, sizeof *rank);
    pb_st_file f;
    memset(&f, 0, sizeof f);
    if (st == PB_OK)
        st = pb_peft_collect(m, dir, &f, leaves, 4, NULL, "an AdaLoRA tensor (lora_A, lora_E, lora_B, ranknum)", tab,
                             err, errlen);
    int any = 0;
    for (int i = 0; i < n && st == PB_OK; i++) {
        const pb_st_tensor *A = tab[4 * i], *E = tab[4 * i + 1], *B = tab[4 * i + 2], *R = tab[4 * i + 3];
        if (!A && !E && !B && !R) {
            if (bits[i])
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field rank_pattern names %s, which has no tensors in %s",
                             path, ls[i].name, f.path);
            continue;
        }
        any = 1;
        const char *name = (A ? A : E ? E : B ? B : R)->name;
        int k = init_r;
        if (bits[i]) {
            k = 0;
            for (int q = 0; q < init_r; q++) k += bits[i][q];
        }
        rank[i] = k;
        if (!A || !E || !B)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: lora_%s of the same linear is missing", f.path, name,
                         !A ? "A" : !E ? "E" : "B");
        else if (k == 0)
            st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field rank_pattern: %s keeps no entry (rank 0), which "
                         "peftbench cannot hold", path, ls[i].name);
        else if (k != init_r && !(alpha > 0))
            st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field lora_alpha: 0 with a rank_pattern that cuts %s to "
                         "rank %d: peft then scales that module by %d / init_r, which peftbench's alpha (0 = init_r) "
                         "cannot express; give lora_alpha > 0", path, ls[i].name, k, k);
        else if (!pb_peft_shape(A, 2, k, ls[i].in))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: expected shape (%d, %d) (rank %d%s)", f.path,
                         A->name, k, ls[i].in, k, bits[i] ? " by rank_pattern" : " = init_r");
        else if (!pb_peft_shape(E, 2, k, 1))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: expected shape (%d, 1) (rank %d%s)", f.path,
                         E->name, k, k, bits[i] ? " by rank_pattern" : " = init_r");
        else if (!pb_peft_shape(B, 2, ls[i].out, k))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: expected shape (%d, %d) (rank %d%s)", f.path,
                         B->name, ls[i].out, k, k, bits[i] ? " by rank_pattern" : " = init_r");
        else if (R) {
            float rv = 0;
            if (R->numel != 1)
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: expected one element", f.path, R->name);
            else if ((st = pb_st_read_f32(&f, R, &rv, err, errlen)) == PB_OK && rv != (float)init_r)
                st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: tensor %s: ranknum %g differs from init_r %d", f.path,
                             R->name, rv, init_r);
        }
    }
    if (st == PB_OK && !any)
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: no tensor ends in .lora_A (nothing to import)", f.path);
    pb_engine *e = pb_model_engine(m);
    char roles[PB_OPT_STR_MAX] = "";
    if (st == PB_OK) pb_peft_freeze(m);
    for (int i = 0; i < n && st == PB_OK; i++) {
        if (!tab[4 * i]) continue;
        // peft's scale after resizing: lora_alpha (k when 0: refused above unless k = init_r) over the
        // ranknum it keeps, init_r
        pb_adapter *a = adalora_create(e, &ls[i], rank[i], adalora_scaling(c, init_r), p, i);
        pb_adalora_state *as = a->state;
        as->fixed = 1;
        if (bits[i]) {
            as->import_bits = bits[i];
            as->import_nbits = init_r;
            bits[i] = NULL;
        }
        for (int q = 0; q < 3 && st == PB_OK; q++) st = pb_peft_load(e, &f, tab[4 * i + q], a->params[q].data, err, errlen);
        pb_peft_add_role(roles, sizeof roles, &ls[i]);
    }
    if (st == PB_OK) st = pb_peft_load_head(m, &f, err, errlen);
    pb_st_close(&f);
    for (int i = 0; i < n; i++) free(bits[i]);
    free(bits);
    free(tab);
    free(rank);
    if (st == PB_OK) pb_mc_put_str(c, "targets", roles);
    return st;
}

static const pb_method_opt adalora_opts[] = {
    {"init_r", PB_OPT_INT, "12", 1, PB_OPT_RANK_MAX, 0, NULL, "initial rank of every adapted matrix (rows of A)"},
    {"target_r", PB_OPT_INT, "8", 0, PB_OPT_RANK_MAX, 0, NULL, "target average rank after the budget schedule"},
    {"tinit", PB_OPT_INT, "0", 0, 1e9, 0, NULL, "steps at the full budget before the rank reduction"},
    {"tfinal", PB_OPT_INT, "0", 0, 1e9, 0, NULL, "final steps at the fixed rank pattern"},
    {"deltaT", PB_OPT_INT, "1", 1, 1e9, 0, NULL, "steps between two budget allocations"},
    {"beta1", PB_OPT_NUM, "0.85", 0, 1, 1, NULL, "EMA factor of the sensitivity |p grad|"},
    {"beta2", PB_OPT_NUM, "0.85", 0, 1, 1, NULL, "EMA factor of the uncertainty"},
    {"orth_reg_weight", PB_OPT_NUM, "0.5", 0, 1e6, 0, NULL,
     "weight of the orthogonality regulariser mean ||PP^T - I||_F added to the loss"},
    {"total_step", PB_OPT_INT, "0", 0, 1e9, 0, NULL, "schedule length in steps; 0 = the run's total steps"},
    {"alpha", PB_OPT_NUM, "8", 0, 1e6, 0, NULL, "lora_alpha: scaling alpha/(init_r + 1e-5) (0 = init_r); peft's default 8"},
    PB_OPT_LORA_DROPOUT,
    PB_OPT_TARGETS("query,value"),
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_adalora = {
    .name = "adalora",
    .summary = "AdaLoRA: y += s B diag(E) A dropout(x), E masked by importance from init_r to target_r per matrix",
    .reference = "peft AdaLoraConfig / RankAllocator (Zhang et al. 2023)",
    .opts = adalora_opts,
    .nopts = (int)(sizeof adalora_opts / sizeof adalora_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_check = adalora_site_check,
    .site_params = adalora_site_params,
    .site_flops = adalora_site_flops,
    .attach = adalora_attach,
    .export_peft = adalora_export_peft,
    .peft_type = "ADALORA",
    .import_peft = adalora_import_peft,
    .train_check = adalora_train_check,
    .regularize = adalora_regularize,
    .after_update = adalora_after_update,
};
