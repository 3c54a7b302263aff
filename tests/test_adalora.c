// test_adalora.c: AdaLoRA (methods/adalora.c) below the model, against double-precision replicas
// written from peft's formulas (formats.md 2.4):
//  - the adapter on a linear: forward vs the replica y = x Wᵀ + b + s (xd (A ⊙ E)ᵀ) Bᵀ
//    (rel <= 1e-5), every gradient (dx, A, E, B) vs central differences of the replica's
//    sum(G*y) (rel <= 1e-4), with and without dropout; own init (E = 0: step 0 = the base
//    layer; A, B std 0.02); merge == unmerged (rel <= 1e-5);
//  - the orthogonality regulariser on two adapters of different shapes: value vs the replica
//    w/(2n) Σ (‖AAᵀ−I‖ + ‖BᵀB−I‖) and its A, B gradients vs central differences (rel <= 1e-4);
//  - the rank allocator on hand-made sensitivities: the budget schedule (full budget up to
//    tinit, the cubic decay, masking only at deltaT multiples, the forced pattern at
//    T − tfinal) masks exactly the triplets with the smallest scores, and the pattern is
//    re-applied in the final phase; the option checks (target_r < init_r, a budget phase).
// Exits non-zero on any failure.
#include <math.h>
#include "test_expect.h"
#include <string.h>
#include "engine/ops.h"
#include "methods/adalora.h"
#include "methods/methods_internal.h"
#include "test_method_util.h"


static pb_engine *E;
static pb_rng R;

static void randn(float *p, size_t n, float sd) {
    for (size_t i = 0; i < n; i++) p[i] = sd * pb_rng_normal(&R);
}
static double rel_fd(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-30);
}
// Host copy (malloc'd floats) of n engine floats.
static float *dl(const float *d, size_t n) {
    float *h = pb_xmalloc(n * sizeof(float) + 4);
    pb_download(E, h, d, n);
    return h;
}
static double *to_d(const float *h, size_t n) {
    double *o = pb_xmalloc(n * sizeof(double) + 8);
    for (size_t i = 0; i < n; i++) o[i] = h[i];
    return o;
}

// A hand-built linear (W, b random) and the layer contract of models/model.h.
static pb_linear make_linear(int in, int out, const char *name) {
    pb_linear l;
    memset(&l, 0, sizeof(l));
    snprintf(l.name, sizeof(l.name), "%s", name);
    l.in = in;
    l.out = out;
    l.w = pb_xcalloc(1, sizeof(pb_param));
    l.b = pb_xcalloc(1, sizeof(pb_param));
    pb_param_init(E, l.w, "w", 2, (int64_t[]){out, in}, PB_GROUP_BACKBONE);
    pb_param_init(E, l.b, "b", 1, (int64_t[]){out}, PB_GROUP_BACKBONE);
    float *h = pb_xmalloc((size_t)out * in * sizeof(float));
    randn(h, (size_t)out * in, 0.3f);
    pb_upload(E, l.w->data, h, (size_t)out * in);
    randn(h, (size_t)out, 0.1f);
    pb_upload(E, l.b->data, h, (size_t)out);
    free(h);
    return l;
}
static void free_linear(pb_linear *l) {
    if (l->adapter) l->adapter->vt->free(l->adapter, E);
    pb_param_free(E, l->w);
    pb_param_free(E, l->b);
    free(l->w);
    free(l->b);
}
static void set_param(pb_param *p, float sd) {
    float *h = pb_xmalloc(p->numel * sizeof(float));
    randn(h, p->numel, sd);
    pb_upload(E, p->data, h, p->numel);
    free(h);
}
static pb_adapter *attach(pb_linear *l, const char *kv, int index) {
    pb_method_config c;
    char err[256] = "";
    mc_make(&c, "adalora", 5, kv);
    pb_status st = c.desc->attach(E, l, &c, &(pb_site){index, l->in, l->out, NULL, 0}, err, sizeof err);
    EXPECT(st == PB_OK, "attach: %s", err);
    return st == PB_OK ? l->adapter : NULL;
}

// ----------------------------------------------------------------------------
// The adapter

typedef struct {
    int N, in, out, r;
    double s;
    double *x, *mask, *W, *b, *A, *Ev, *B, *G; // mask (N,in): dropout multiplier (1 without dropout)
} rcase;

// sum(G * y) of the replica; y (N,out) out if non-NULL.
static double ref_loss(const rcase *c, double *yout) {
    double L = 0;
    double *h = pb_xmalloc(sizeof(double) * (size_t)c->r);
    for (int n = 0; n < c->N; n++) {
        const double *x = c->x + (size_t)n * c->in, *mk = c->mask + (size_t)n * c->in;
        for (int k = 0; k < c->r; k++) {
            double t = 0;
            for (int i = 0; i < c->in; i++) t += x[i] * mk[i] * c->A[(size_t)k * c->in + i];
            h[k] = t * c->Ev[k];
        }
        for (int o = 0; o < c->out; o++) {
            double y = c->b[o], d = 0;
            for (int i = 0; i < c->in; i++) y += x[i] * c->W[(size_t)o * c->in + i];
            for (int k = 0; k < c->r; k++) d += h[k] * c->B[(size_t)o * c->r + k];
            y += c->s * d;
            if (yout) yout[(size_t)n * c->out + o] = y;
            L += c->G[(size_t)n * c->out + o] * y;
        }
    }
    free(h);
    return L;
}
static void fd(rcase *c, double *v, size_t n, double *g) {
    for (size_t i = 0; i < n; i++) {
        double v0 = v[i], h = 1e-5 * (fabs(v0) > 1 ? fabs(v0) : 1);
        v[i] = v0 + h;
        double lp = ref_loss(c, NULL);
        v[i] = v0 - h;
        double lm = ref_loss(c, NULL);
        v[i] = v0;
        g[i] = (lp - lm) / (2 * h);
    }
}

static void test_adapter(const char *label, int in, int out, int r, double alpha, float p) {
    int N = 5;
    pb_linear l = make_linear(in, out, "encoder.layer.0.attention.attention.query");
    char kv[128];
    snprintf(kv, sizeof kv, "init_r=%d target_r=%d alpha=%g dropout=%g", r, r - 1, alpha, (double)p);
    pb_adapter *a = attach(&l, kv, 2);
    if (!a) { free_linear(&l); return; }
    pb_adalora_state *st = a->state;
    size_t nx = (size_t)N * in, ny = (size_t)N * out;
    float *hx = pb_xmalloc(nx * sizeof(float)), *hG = pb_xmalloc(ny * sizeof(float));
    randn(hx, nx, 1.0f);
    randn(hG, ny, 1.0f);
    float *x = pb_alloc(E, nx), *y = pb_alloc(E, ny), *G = pb_alloc(E, ny), *dx = pb_alloc(E, nx);
    pb_upload(E, x, hx, nx);
    pb_upload(E, G, hG, ny);
    // own init: E = 0 (step 0 = the base layer), A, B ~ N(0, 0.02^2)
    float *hE0 = dl(a->params[1].data, (size_t)r), *hA0 = dl(a->params[0].data, (size_t)r * in);
    int zero = 1;
    for (int k = 0; k < r; k++) zero &= hE0[k] == 0.0f;
    double ss = 0;
    for (size_t i = 0; i < (size_t)r * in; i++) ss += (double)hA0[i] * hA0[i];
    double sd = sqrt(ss / ((double)r * in));
    EXPECT(zero, "%s: own init E is not 0", label);
    EXPECT(fabs(sd - 0.02) < 0.006, "%s: own init A std %.4f, expected 0.02", label, sd);
    EXPECT(a->params[1].ndim == 2 && a->params[1].shape[0] == r && a->params[1].shape[1] == 1 &&
               !strcmp(a->params[1].name + strlen(a->params[1].name) - 7, ".lora_E"),
           "%s: E is not lora_E [r, 1] ('%s')", label, a->params[1].name);
    free(hE0); free(hA0);
    // random A, E, B; train forward (dropout on), backward of sum(G*y)
    set_param(&a->params[0], 0.4f);
    set_param(&a->params[1], 0.8f);
    set_param(&a->params[2], 0.4f);
    for (int q = 0; q < 3; q++) pb_zero(E, a->params[q].grad, a->params[q].numel);
    pb_zero(E, dx, nx);
    pb_linear_forward(E, y, x, l.w->data, l.b->data, N, in, out);
    a->vt->forward(a, E, y, x, N, 1, 77);
    float *dy = pb_alloc(E, ny);
    pb_copy(E, dy, G, ny);
    a->vt->backward(a, E, dx, dy, x, N);
    pb_linear_backward(E, dx, NULL, NULL, dy, x, l.w->data, N, in, out);
    rcase c = {N, in, out, r, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    c.s = (alpha > 0 ? alpha : r) / (r + 1e-5);
    float *t;
    c.x = to_d(hx, nx);
    c.G = to_d(hG, ny);
    c.W = to_d(t = dl(l.w->data, (size_t)out * in), (size_t)out * in); free(t);
    c.b = to_d(t = dl(l.b->data, (size_t)out), (size_t)out); free(t);
    c.A = to_d(t = dl(a->params[0].data, (size_t)r * in), (size_t)r * in); free(t);
    c.Ev = to_d(t = dl(a->params[1].data, (size_t)r), (size_t)r); free(t);
    c.B = to_d(t = dl(a->params[2].data, (size_t)out * r), (size_t)out * r); free(t);
    c.mask = pb_xmalloc(nx * sizeof(double));
    if (st->dropped) {
        float *hm = dl(st->mask, nx);
        int dropped = 0;
        for (size_t i = 0; i < nx; i++) {
            c.mask[i] = hm[i];
            dropped += hm[i] == 0.0f;
        }
        EXPECT(dropped > 0, "%s: dropout %g dropped nothing", label, (double)p);
        free(hm);
    } else {
        for (size_t i = 0; i < nx; i++) c.mask[i] = 1.0;
    }
    EXPECT((p > 0) == (st->dropped != 0), "%s: dropout ran = %d with p = %g", label, st->dropped, (double)p);
    double *yr = pb_xmalloc(ny * sizeof(double)), *g = pb_xmalloc(sizeof(double) * (nx > (size_t)out * r ? nx : (size_t)out * r) + 8);
    ref_loss(&c, yr);
    float *hy = dl(y, ny);
    double ef = rel_fd(hy, yr, ny);
    EXPECT(ef <= 1e-5, "%s: forward rel err %.2e", label, ef);
    struct { const char *what; double *v; size_t n; const float *grad; } gs[4] = {
        {"dx", c.x, nx, dx}, {"dA", c.A, (size_t)r * in, a->params[0].grad},
        {"dE", c.Ev, (size_t)r, a->params[1].grad}, {"dB", c.B, (size_t)out * r, a->params[2].grad}};
    double emax = 0;
    for (int q = 0; q < 4; q++) {
        fd(&c, gs[q].v, gs[q].n, g);
        float *hg = dl(gs[q].grad, gs[q].n);
        double e = rel_fd(hg, g, gs[q].n);
        EXPECT(e <= 1e-4, "%s: %s vs finite differences: rel err %.2e", label, gs[q].what, e);
        emax = e > emax ? e : emax;
        free(hg);
    }
    // merge == unmerged (eval forward)
    float *y0 = pb_alloc(E, ny), *y1 = pb_alloc(E, ny);
    pb_linear_forward(E, y0, x, l.w->data, l.b->data, N, in, out);
    a->vt->forward(a, E, y0, x, N, 0, 0);
    a->vt->merge(a, E, l.w->data, l.b->data);
    pb_linear_forward(E, y1, x, l.w->data, l.b->data, N, in, out);
    float *h0 = dl(y0, ny), *h1 = dl(y1, ny);
    double *d0 = to_d(h0, ny);
    double em = rel_fd(h1, d0, ny);
    EXPECT(em <= 1e-5, "%s: merged vs unmerged rel err %.2e", label, em);
    printf("%-28s forward %.1e  grads (FD) %.1e  merge %.1e\n", label, ef, emax, em);
    free(h0); free(h1); free(d0); free(hy); free(yr); free(g);
    free(c.x); free(c.G); free(c.W); free(c.b); free(c.A); free(c.Ev); free(c.B); free(c.mask);
    free(hx); free(hG);
    pb_free(E, x); pb_free(E, y); pb_free(E, G); pb_free(E, dx); pb_free(E, dy); pb_free(E, y0); pb_free(E, y1);
    free_linear(&l);
}

// ----------------------------------------------------------------------------
// The orthogonality regulariser

typedef struct {
    int n;
    int r[2], in[2], out[2];
    double *A[2], *B[2];
    double w;
} ocase;

static double fro_gram(const double *X, int r, int len, int t) {
    double ss = 0;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < r; j++) {
            double p = 0;
            for (int k = 0; k < len; k++)
                p += t ? X[(size_t)k * r + i] * X[(size_t)k * r + j] : X[(size_t)i * len + k] * X[(size_t)j * len + k];
            p -= i == j;
            ss += p * p;
        }
    return sqrt(ss);
}
static double orth_ref(const ocase *o) {
    double s = 0;
    for (int k = 0; k < o->n; k++) s += fro_gram(o->A[k], o->r[k], o->in[k], 0) + fro_gram(o->B[k], o->r[k], o->out[k], 1);
    return o->w * s / (2.0 * o->n);
}

static void test_orth(void) {
    pb_linear ls[2] = {make_linear(7, 5, "encoder.layer.0.attention.attention.query"),
                       make_linear(6, 9, "encoder.layer.0.attention.attention.value")};
    pb_adapter *as[2];
    ocase o = {2, {3, 4}, {7, 6}, {5, 9}, {NULL, NULL}, {NULL, NULL}, 0.7};
    for (int k = 0; k < 2; k++) {
        char kv[64];
        snprintf(kv, sizeof kv, "init_r=%d target_r=1", o.r[k]);
        as[k] = attach(&ls[k], kv, k);
        if (!as[k]) return;
        set_param(&as[k]->params[0], 0.4f);
        set_param(&as[k]->params[2], 0.4f);
        for (int q = 0; q < 3; q++) pb_zero(E, as[k]->params[q].grad, as[k]->params[q].numel);
        float *t;
        o.A[k] = to_d(t = dl(as[k]->params[0].data, as[k]->params[0].numel), as[k]->params[0].numel); free(t);
        o.B[k] = to_d(t = dl(as[k]->params[2].data, as[k]->params[2].numel), as[k]->params[2].numel); free(t);
    }
    double v = pb_adalora_orth(E, as, 2, o.w, 1), vr = orth_ref(&o);
    double ev = fabs(v - vr) / vr;
    EXPECT(ev <= 1e-5, "orth: value %.8g vs replica %.8g", v, vr);
    double emax = 0;
    for (int k = 0; k < 2; k++)
        for (int q = 0; q < 3; q += 2) {
            double *X = q ? o.B[k] : o.A[k];
            size_t n = as[k]->params[q].numel;
            double *g = pb_xmalloc(n * sizeof(double));
            for (size_t i = 0; i < n; i++) {
                double x0 = X[i], h = 1e-6;
                X[i] = x0 + h;
                double lp = orth_ref(&o);
                X[i] = x0 - h;
                double lm = orth_ref(&o);
                X[i] = x0;
                g[i] = (lp - lm) / (2 * h);
            }
            float *hg = dl(as[k]->params[q].grad, n);
            double e = rel_fd(hg, g, n);
            EXPECT(e <= 1e-4, "orth: grad of %s of adapter %d vs finite differences: rel err %.2e", q ? "B" : "A", k, e);
            emax = e > emax ? e : emax;
            free(hg);
            free(g);
        }
    // E's gradient is untouched; without grad only the value
    float *hE = dl(as[0]->params[1].grad, 3);
    EXPECT(hE[0] == 0 && hE[1] == 0 && hE[2] == 0, "orth: E got a gradient");
    free(hE);
    EXPECT(fabs(pb_adalora_orth(E, as, 2, o.w, 0) - v) <= 1e-12 * v, "orth: value without grad differs");
    printf("%-28s value %.1e  grads (FD) %.1e\n", "orth regulariser", ev, emax);
    for (int k = 0; k < 2; k++) { free(o.A[k]); free(o.B[k]); free_linear(&ls[k]); }
}

// ----------------------------------------------------------------------------
// The rank allocator

// Sets E = 1 and grad E_i = g_i (the scores rank as |g_i|), A, B and their grads 0 (no A/B score).
static void set_scores(pb_adapter *a, const float *g) {
    pb_adalora_state *st = a->state;
    float *one = pb_xmalloc(sizeof(float) * (size_t)st->r);
    for (int i = 0; i < st->r; i++) one[i] = 1.0f;
    pb_upload(E, a->params[1].data, one, (size_t)st->r);
    pb_upload(E, a->params[1].grad, g, (size_t)st->r);
    for (int q = 0; q < 3; q += 2) pb_zero(E, a->params[q].grad, a->params[q].numel);
    free(one);
}

static void test_allocator(void) {
    // two adapters, r = 4 each: ib = 8, target_r 1 -> tb = 2; tinit 1, tfinal 2, T = 9, deltaT 2:
    // budget(t) = int(6 (1 - (t-1)/6)^3 + 2), masking at t = 2, 4, 6 (budget phase) and forced at 7
    pb_linear ls[2] = {make_linear(5, 6, "encoder.layer.0.attention.attention.query"),
                       make_linear(5, 6, "encoder.layer.0.attention.attention.value")};
    const char *kv = "init_r=4 target_r=1 tinit=1 tfinal=2 deltaT=2 total_step=9";
    pb_adapter *as[2] = {attach(&ls[0], kv, 0), attach(&ls[1], kv, 1)};
    if (!as[0] || !as[1]) return;
    pb_method_config c;
    mc_make(&c, "adalora", 5, kv);
    // |g| order (smallest first): a1[0] a0[2] a1[3] a0[0] a1[1] a0[3] a0[1] a1[2]
    const float g0[4] = {0.4f, 1.6f, 0.2f, 1.2f}, g1[4] = {0.1f, 0.9f, 2.0f, -0.3f};
    const int order[8][2] = {{1, 0}, {0, 2}, {1, 3}, {0, 0}, {1, 1}, {0, 3}, {0, 1}, {1, 2}};
    int expect_budget[10];
    for (int t = 0; t <= 9; t++) {
        if (t <= 1) expect_budget[t] = 8;
        else if (t > 7) expect_budget[t] = -1;
        else expect_budget[t] = (int)(6.0 * pow(1.0 - (t - 1) / 6.0, 3.0) + 2.0);
    }
    int ok_budget = 1, ok_mask = 1;
    for (int t = 0; t <= 9; t++) {
        set_scores(as[0], g0);
        set_scores(as[1], g1);
        int b = pb_adalora_allocate(E, as, 2, &c, t, 9);
        ok_budget &= b == expect_budget[t];
        int masks = (t >= 2 && t <= 6 && t % 2 == 0) || t >= 7;
        int nmask = masks ? 8 - (t > 7 ? 2 : b) : 0;
        float *e0 = dl(as[0]->params[1].data, 4), *e1 = dl(as[1]->params[1].data, 4);
        for (int k = 0; k < 8; k++) {
            float v = order[k][0] ? e1[order[k][1]] : e0[order[k][1]];
            int want_zero = k < nmask;
            if ((v == 0.0f) != want_zero) {
                ok_mask = 0;
                printf("  step %d: triplet %d.%d E = %g (expected %s)\n", t, order[k][0], order[k][1], (double)v,
                       want_zero ? "masked" : "kept");
            }
        }
        free(e0); free(e1);
    }
    EXPECT(ok_budget, "allocator: budgets differ from the schedule");
    EXPECT(ok_mask, "allocator: masked triplets are not the lowest-scored ones at the masking steps");
    pb_adalora_state *s0 = as[0]->state, *s1 = as[1]->state;
    EXPECT(s0->has_pattern && s0->keep[1] && !s0->keep[0] && s1->keep[2] && !s1->keep[1],
           "allocator: the final rank pattern is not the two best triplets");
    printf("%-28s budgets 8 8 %d %d %d %d %d %d, pattern phase after step 7\n", "rank allocator", expect_budget[2],
           expect_budget[3], expect_budget[4], expect_budget[5], expect_budget[6], expect_budget[7]);
    free_linear(&ls[0]);
    free_linear(&ls[1]);
    // option checks
    char err[256] = "";
    mc_make(&c, "adalora", 0, "init_r=4 target_r=4");
    const char *why = c.desc->site_check(&c, 8, 8);
    EXPECT(why && strstr(why, "target_r"), "adalora target_r = init_r not refused");
    mc_make(&c, "adalora", 0, "tinit=5 tfinal=5");
    EXPECT(c.desc->train_check(&c, 10, err, sizeof err) == PB_ERR_ARG && strstr(err, "tinit"),
           "adalora: no budget phase accepted: '%s'", err);
    EXPECT(c.desc->train_check(&c, 11, err, sizeof err) == PB_OK, "adalora: 11 steps refused: %s", err);
    mc_make(&c, "adalora", 0, "");
    EXPECT(c.desc->train_check(&c, 0, err, sizeof err) == PB_ERR_ARG && strstr(err, "total_step"),
           "adalora: no step count accepted: '%s'", err);
    mc_make(&c, "adalora", 0, "total_step=3");
    EXPECT(c.desc->train_check(&c, 0, err, sizeof err) == PB_OK, "adalora: explicit total_step refused: %s", err);
    printf("errors: %s\n", err);
}

int main(void) {
    char err[256];
    E = pb_engine_init(PB_DEVICE_CPU, 1, err, sizeof(err));
    if (!E) { printf("engine: %s\n", err); return 1; }
    pb_rng_seed(&R, 4242);
    test_adapter("adalora r=3 alpha=6", 12, 10, 3, 6.0, 0.0f);
    test_adapter("adalora r=4 alpha=0 (= r)", 9, 11, 4, 0.0, 0.0f);
    test_adapter("adalora r=3 dropout 0.3", 12, 10, 3, 8.0, 0.3f);
    test_orth();
    test_allocator();
    pb_engine_free(E);
    if (pb_test_fails) printf("%d failure(s)\n", pb_test_fails);
    else printf("all passed\n");
    return pb_test_fails ? 1 : 0;
}
