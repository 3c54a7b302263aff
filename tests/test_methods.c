// test_methods.c: every adapter at the linear level, against independent double-precision
// replicas written from the formulas (papers.md §2, §3, §6; formats.md §2):
//  - forward: float adapter output vs the double replica (rel <= 1e-5);
//  - backward: every analytic gradient (dx and each trainable tensor) vs central finite
//    differences of the double replica's loss sum(G*y) (normwise rel <= 1e-4);
//  - step 0 reproduces the pre-trained output (rel <= 1e-5); merge == unmerged (rel <= 1e-5);
//  - AO(q) (the engine ops) orthogonal (max |Q^T Q - I| <= 1e-5 for ||q|| = 1, full DxD Q
//    built here) and its backward vs FD; the clamp is counted by the op and by the adapter;
//  - SVD helpers reconstruct W; randomized SVD finds the top spectrum; rank errors name the field.
// Exits non-zero on any failure.
#include <math.h>
#include "test_expect.h"
#include <string.h>
#include "engine/ops.h"
#include "methods/methods_internal.h"
#include "test_method_util.h"


static pb_engine *E;
static pb_rng R;

static void randn(float *p, size_t n, float sd) {
    for (size_t i = 0; i < n; i++) p[i] = sd * pb_rng_normal(&R);
}
static double relerr_fd(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-30);
}
static double relerr_ff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-30);
}

// ----------------------------------------------------------------------------
// A hand-built linear and the layer contract of models/model.h (base, then adapter; in backward
// the adapter first, on a private dy copy when it rewrites dy; the frozen W gets no dW).

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
static void layer_forward(pb_linear *l, float *y, const float *x, int N, int train, uint64_t seed) {
    pb_linear_forward(E, y, x, l->w->data, l->b->data, N, l->in, l->out);
    if (l->adapter) l->adapter->vt->forward(l->adapter, E, y, x, N, train, seed);
}
static void layer_backward(pb_linear *l, float *dx, const float *dy, const float *x, int N) {
    float *d = pb_alloc(E, (size_t)N * l->out);
    pb_copy(E, d, dy, (size_t)N * l->out);
    if (l->adapter) l->adapter->vt->backward(l->adapter, E, dx, d, x, N);
    pb_linear_backward(E, dx, NULL, l->b->trainable ? l->b->grad : NULL, d, x, l->w->data, N, l->in, l->out);
    pb_free(E, d);
}

// ----------------------------------------------------------------------------
// Double replicas

// AO(q) from the full DxD Q of papers.md §6.2 (first row (q0,-qbar^T), first column (q0,qbar),
// block I - qbar qbar^T/(1+q0)), first d columns; Q is (D,D) scratch or NULL.
static void ref_Q(const double *q, int D, double *Q) {
    double c = 1.0 + q[0];
    if (fabs(c) < PB_AO_CLAMP) c = c < 0 ? -PB_AO_CLAMP : PB_AO_CLAMP;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double v;
            if (i == 0 && j == 0) v = q[0];
            else if (i == 0) v = -q[j];
            else if (j == 0) v = q[i];
            else v = (i == j) - q[i] * q[j] / c;
            Q[(size_t)i * D + j] = v;
        }
}
static void ref_AO(const double *q, int D, int d, double *AO) {
    double *Q = pb_xmalloc((size_t)D * D * sizeof(double));
    ref_Q(q, D, Q);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < d; j++) AO[(size_t)i * d + j] = Q[(size_t)i * D + j];
    free(Q);
}

enum { K_LORA, K_SVFIT, K_AOFT, K_IA3, K_DORA, K_VERA, K_FOURIER, K_BOTTLE, K_HTA, K_DYLORA, K_SSF };
typedef struct {
    int kind, in, out, N, r, adapter, scalar, input; // input: IA3 scales the input
    int rb;                       // dylora: the active rank b (A's first b rows, B's first b columns)
    double s;
    double *W, *b, *x, *G, *mask; // mask (N,in) or NULL
    double *U, *Vt;               // svfit frozen (out,r), (r,in); vera: Vt = A (r,in), U = B (out,r)
    double *wn;                   // dora: ||W + s B A||_row, held constant (detached, as peft)
    double *idx;                  // fourierft: entries (2,n) rows then columns; s = alpha / (out in)
    int gelu;                     // bottleneck: GELU (else ReLU); s = scaling; P = W_d, b_d, W_u, b_u
    int np;
    double *P[5];
    size_t nP[5];
} rcase;

// y (N,out) = replica forward; returns sum(G*y).
static double ref_forward(const rcase *c, double *y) {
    int N = c->N, in = c->in, out = c->out, r = c->r;
    double *z = pb_xcalloc((size_t)N * out, sizeof(double));
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            double acc = c->b[o];
            for (int i = 0; i < in; i++) acc += c->x[(size_t)n * in + i] * c->W[(size_t)o * in + i];
            z[(size_t)n * out + o] = acc;
        }
    memcpy(y, z, (size_t)N * out * sizeof(double));
    if (c->kind == K_DORA) { // y = z + (g - 1) (xd W^T) + g s (xd A^T) B^T, g = m / wn
        const double *A = c->P[0], *B = c->P[1], *m = c->P[2];
        double *xd = pb_xmalloc((size_t)in * sizeof(double)), *h = pb_xmalloc((size_t)r * sizeof(double));
        for (int n = 0; n < N; n++) {
            for (int i = 0; i < in; i++)
                xd[i] = c->x[(size_t)n * in + i] * (c->mask ? c->mask[(size_t)n * in + i] : 1.0);
            for (int k = 0; k < r; k++) {
                h[k] = 0;
                for (int i = 0; i < in; i++) h[k] += xd[i] * A[(size_t)k * in + i];
            }
            for (int o = 0; o < out; o++) {
                double zb = 0, l = 0, g = m[o] / c->wn[o];
                for (int i = 0; i < in; i++) zb += xd[i] * c->W[(size_t)o * in + i];
                for (int k = 0; k < r; k++) l += h[k] * B[(size_t)o * r + k];
                y[(size_t)n * out + o] += (g - 1.0) * zb + g * c->s * l;
            }
        }
        free(xd);
        free(h);
    } else if (c->kind == K_HTA) { // y = z + u T, u = x (lora form) or z (adapter), T = H_l diag(d) H_r + Wd^T Wu^T
        int D = out, rr = c->r;
        const double *vl = c->P[0], *vr = c->P[1], *d = c->P[2];
        double *Hl = pb_xmalloc((size_t)D * D * sizeof(double)), *Hr = pb_xmalloc((size_t)D * D * sizeof(double));
        double *T = pb_xcalloc((size_t)D * D, sizeof(double));
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) {
                Hl[(size_t)i * D + j] = (i == j) - vl[i] * vl[j];
                Hr[(size_t)i * D + j] = (i == j) - vr[i] * vr[j];
            }
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) {
                double acc = 0;
                for (int k = 0; k < D; k++) acc += Hl[(size_t)i * D + k] * d[k] * Hr[(size_t)k * D + j];
                for (int k = 0; k < rr; k++) acc += c->P[3][(size_t)k * D + i] * c->P[4][(size_t)j * rr + k];
                T[(size_t)i * D + j] = acc;
            }
        for (int n = 0; n < N; n++) {
            const double *u = c->adapter ? z + (size_t)n * out : c->x + (size_t)n * in;
            for (int j = 0; j < D; j++) {
                double acc = 0;
                for (int i = 0; i < D; i++) acc += u[i] * T[(size_t)i * D + j];
                y[(size_t)n * out + j] += acc;
            }
        }
        free(Hl); free(Hr); free(T);
    } else if (c->kind == K_BOTTLE) { // y = z + s (act(z W_d^T + b_d) W_u^T + b_u)
        int m = c->r;
        const double *Wd = c->P[0], *bd = c->P[1], *Wu = c->P[2], *bu = c->P[3];
        double *a = pb_xmalloc((size_t)m * sizeof(double));
        for (int n = 0; n < N; n++) {
            const double *zn = z + (size_t)n * out;
            for (int k = 0; k < m; k++) {
                double h = bd[k];
                for (int o = 0; o < out; o++) h += zn[o] * Wd[(size_t)k * out + o];
                a[k] = c->gelu ? 0.5 * h * (1.0 + erf(h / sqrt(2.0))) : (h > 0 ? h : 0);
            }
            for (int o = 0; o < out; o++) {
                double t = bu[o];
                for (int k = 0; k < m; k++) t += a[k] * Wu[(size_t)o * m + k];
                y[(size_t)n * out + o] += c->s * t;
            }
        }
        free(a);
    } else if (c->kind == K_FOURIER) { // y = z + x dW^T, dW[p,q] = s sum_k c_k cos(2 pi (p u_k / out + q v_k / in))
        const double *cf = c->P[0];
        int nf = (int)c->nP[0];
        double *dW = pb_xcalloc((size_t)out * in, sizeof(double));
        for (int k = 0; k < nf; k++)
            for (int p = 0; p < out; p++)
                for (int q = 0; q < in; q++)
                    dW[(size_t)p * in + q] +=
                        c->s * cf[k] * cos(2.0 * M_PI * (p * c->idx[k] / out + q * c->idx[nf + k] / in));
        for (int n = 0; n < N; n++)
            for (int p = 0; p < out; p++)
                for (int q = 0; q < in; q++) y[(size_t)n * out + p] += c->x[(size_t)n * in + q] * dW[(size_t)p * in + q];
        free(dW);
    } else if (c->kind == K_VERA) { // y = z + lb * ((ld * (xd A^T)) B^T)
        const double *ld = c->P[0], *lb = c->P[1];
        for (int n = 0; n < N; n++)
            for (int k = 0; k < r; k++) {
                double h = 0;
                for (int i = 0; i < in; i++)
                    h += c->x[(size_t)n * in + i] * (c->mask ? c->mask[(size_t)n * in + i] : 1.0) * c->Vt[(size_t)k * in + i];
                for (int o = 0; o < out; o++) y[(size_t)n * out + o] += lb[o] * c->U[(size_t)o * r + k] * ld[k] * h;
            }
    } else if (c->kind == K_LORA || c->kind == K_DYLORA) { // DyLoRA: the truncation to rank rb
        const double *A = c->P[0], *B = c->P[1];
        int kmax = c->kind == K_DYLORA ? c->rb : r;
        for (int n = 0; n < N; n++)
            for (int k = 0; k < kmax; k++) {
                double h = 0;
                for (int i = 0; i < in; i++) {
                    double xv = c->x[(size_t)n * in + i] * (c->mask ? c->mask[(size_t)n * in + i] : 1.0);
                    h += xv * A[(size_t)k * in + i];
                }
                for (int o = 0; o < out; o++) y[(size_t)n * out + o] += c->s * h * B[(size_t)o * r + k];
            }
    } else if (c->kind == K_SVFIT) {
        const double *sg = c->P[0];
        for (int n = 0; n < N; n++)
            for (int k = 0; k < r; k++) {
                double h = 0;
                for (int i = 0; i < in; i++) h += c->x[(size_t)n * in + i] * c->Vt[(size_t)k * in + i];
                for (int o = 0; o < out; o++) y[(size_t)n * out + o] += c->U[(size_t)o * r + k] * sg[k] * h;
            }
    } else if (c->kind == K_SSF) { // y = gamma * z + beta
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++) y[(size_t)n * out + o] = c->P[0][o] * z[(size_t)n * out + o] + c->P[1][o];
    } else if (c->kind == K_IA3) { // y = z * l (output) or y = (x * l) W^T + b (input)
        const double *l = c->P[0];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++) {
                if (!c->input) {
                    y[(size_t)n * out + o] = z[(size_t)n * out + o] * l[o];
                    continue;
                }
                double acc = c->b[o];
                for (int i = 0; i < in; i++) acc += c->x[(size_t)n * in + i] * l[i] * c->W[(size_t)o * in + i];
                y[(size_t)n * out + o] = acc;
            }
    } else {
        int Din = c->adapter ? out : in, d = r;
        const double *u = c->adapter ? z : c->x;
        double *AOd = pb_xmalloc((size_t)Din * d * sizeof(double));
        double *AOu = pb_xmalloc((size_t)out * d * sizeof(double));
        ref_AO(c->P[0], Din, d, AOd);
        ref_AO(c->P[1], out, d, AOu);
        for (int n = 0; n < N; n++)
            for (int k = 0; k < d; k++) {
                double h = 0;
                for (int i = 0; i < Din; i++) h += u[(size_t)n * Din + i] * AOd[(size_t)i * d + k];
                h *= c->scalar ? c->P[2][0] : c->P[2][k];
                for (int o = 0; o < out; o++) y[(size_t)n * out + o] += h * AOu[(size_t)o * d + k];
            }
        free(AOd);
        free(AOu);
    }
    double L = 0;
    for (size_t i = 0; i < (size_t)N * out; i++) L += c->G[i] * y[i];
    free(z);
    return L;
}

// Central differences of sum(G*y) wrt every element of v (n), in double.
static void fd_grad(rcase *c, double *v, size_t n, double *g) {
    double *y = pb_xmalloc((size_t)c->N * c->out * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double h = 1e-5 * fmax(1.0, fabs(v[i])), v0 = v[i];
        v[i] = v0 + h;
        double lp = ref_forward(c, y);
        v[i] = v0 - h;
        double lm = ref_forward(c, y);
        v[i] = v0;
        g[i] = (lp - lm) / (2 * h);
    }
    free(y);
}

static double *dl(const float *dev, size_t n) {
    float *h = pb_xmalloc(n * sizeof(float));
    pb_download(E, h, dev, n);
    double *d = pb_xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = h[i];
    free(h);
    return d;
}
static float *dlf(const float *dev, size_t n) {
    float *h = pb_xmalloc(n * sizeof(float));
    pb_download(E, h, dev, n);
    return h;
}

// Runs forward/backward on the engine with the attached adapter of l and checks them against the
// replica. kind selects the replica; frozen svfit U/Vt are read from the adapter state.
static void check_adapter(const char *label, pb_linear *l, int kind, int N, int train) {
    pb_adapter *a = l->adapter;
    int in = l->in, out = l->out;
    size_t nx = (size_t)N * in, ny = (size_t)N * out;
    float *hx = pb_xmalloc(nx * sizeof(float)), *hG = pb_xmalloc(ny * sizeof(float));
    randn(hx, nx, 1.0f);
    randn(hG, ny, 1.0f);
    float *x = pb_alloc(E, nx), *y = pb_alloc(E, ny), *G = pb_alloc(E, ny), *dx = pb_alloc(E, nx);
    pb_upload(E, x, hx, nx);
    pb_upload(E, G, hG, ny);
    for (int i = 0; i < a->nparams; i++) pb_zero(E, a->params[i].grad, a->params[i].numel);
    if (l->b->trainable) pb_zero(E, l->b->grad, (size_t)out);
    layer_forward(l, y, x, N, train, 1234);
    layer_backward(l, dx, G, x, N);

    rcase c;
    memset(&c, 0, sizeof(c));
    c.kind = kind;
    c.in = in; c.out = out; c.N = N;
    c.W = dl(l->w->data, (size_t)out * in);
    c.b = dl(l->b->data, (size_t)out);
    c.x = pb_xmalloc(nx * sizeof(double));
    c.G = pb_xmalloc(ny * sizeof(double));
    for (size_t i = 0; i < nx; i++) c.x[i] = hx[i];
    for (size_t i = 0; i < ny; i++) c.G[i] = hG[i];
    if (kind == K_LORA || kind == K_DORA) { // a DoRA state starts with its pb_lora_state
        pb_lora_state *st = a->state;
        c.r = st->r; c.s = st->s;
        if (st->dropped) c.mask = dl(st->mask, nx);
    } else if (kind == K_DYLORA) {
        pb_dylora_state *st = a->state;
        c.r = st->r; c.rb = st->b; c.s = st->s;
        if (st->dropped) c.mask = dl(st->mask, nx);
    } else if (kind == K_SVFIT) {
        pb_svfit_state *st = a->state;
        c.r = st->r;
        c.U = dl(st->U, (size_t)out * st->r);
        c.Vt = dl(st->Vt, (size_t)st->r * in);
    } else if (kind == K_VERA) { // frozen shared slices: A (r,in), B (out,r)
        c.r = (int)a->params[0].numel;
        c.Vt = dl(a->frozen[0].data, a->frozen[0].numel);
        c.U = dl(a->frozen[1].data, a->frozen[1].numel);
        pb_vera_state *st = a->state;
        if (st->dropped) c.mask = dl(st->mask, nx);
    } else if (kind == K_FOURIER) { // entries: distinct, in range (their values: ref_methods.py vs peft)
        pb_fourierft_state *st = a->state;
        c.s = st->scale;
        c.idx = dl(a->frozen[0].data, a->frozen[0].numel);
        int nf = st->n, distinct = 1, inrange = 1;
        for (int k = 0; k < nf; k++) {
            inrange &= c.idx[k] >= 0 && c.idx[k] < out && c.idx[nf + k] >= 0 && c.idx[nf + k] < in;
            for (int j = 0; j < k; j++) distinct &= c.idx[j] != c.idx[k] || c.idx[nf + j] != c.idx[nf + k];
        }
        EXPECT(inrange && distinct, "%s: spectral entries out of range or repeated", label);
    } else if (kind == K_HTA) {
        c.r = a->nparams == 5 ? (int)a->params[3].shape[0] : 0;
        c.adapter = !strcmp(a->vt->name, "hta-adapter");
    } else if (kind == K_BOTTLE) {
        pb_bottleneck *st = a->state;
        c.r = st->m; c.s = st->s; c.gelu = st->gelu;
    } else if (kind == K_IA3) {
        c.input = !strcmp(a->vt->name, "ia3-input");
    } else {
        pb_aoft_state *st = a->state;
        c.r = st->d; c.adapter = st->adapter; c.scalar = st->scalar_gate;
    }
    c.np = a->nparams;
    for (int i = 0; i < c.np; i++) {
        c.nP[i] = a->params[i].numel;
        c.P[i] = dl(a->params[i].data, c.nP[i]);
    }
    if (kind == K_DORA) { // the row norm of W + s B A at the current factors, in double
        c.wn = pb_xmalloc((size_t)out * sizeof(double));
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int i = 0; i < in; i++) {
                double v = c.W[(size_t)o * in + i];
                for (int k = 0; k < c.r; k++) v += c.s * c.P[1][(size_t)o * c.r + k] * c.P[0][(size_t)k * in + i];
                acc += v * v;
            }
            c.wn[o] = sqrt(acc);
        }
    }
    // forward
    double *yr = pb_xmalloc(ny * sizeof(double));
    ref_forward(&c, yr);
    float *hy = dlf(y, ny);
    double ef = relerr_fd(hy, yr, ny);
    EXPECT(ef <= 1e-5, "%s: forward rel err %.3g > 1e-5", label, ef);
    // dx
    double *gfd = pb_xmalloc(nx * sizeof(double));
    fd_grad(&c, c.x, nx, gfd);
    float *hdx = dlf(dx, nx);
    double ex = relerr_fd(hdx, gfd, nx);
    EXPECT(ex <= 1e-4, "%s: dx rel err %.3g > 1e-4", label, ex);
    printf("%-28s forward %.2e  dx %.2e", label, ef, ex);
    free(gfd);
    if (l->b->trainable) { // the frozen-W layer's bias trains (BitFit-style combination)
        double *gb = pb_xmalloc((size_t)out * sizeof(double));
        fd_grad(&c, c.b, (size_t)out, gb);
        float *hdb = dlf(l->b->grad, (size_t)out);
        double eb = relerr_fd(hdb, gb, (size_t)out);
        EXPECT(eb <= 1e-4, "%s: db rel err %.3g > 1e-4", label, eb);
        printf("  bias %.2e", eb);
        free(gb);
        free(hdb);
    }
    // every trainable tensor
    for (int i = 0; i < c.np; i++) {
        double *g = pb_xmalloc(c.nP[i] * sizeof(double));
        fd_grad(&c, c.P[i], c.nP[i], g);
        if (kind == K_DYLORA && ((pb_dylora_state *)a->state)->frozen) { // only row / column b learns
            int rb = c.rb, in_ = (int)a->params[0].shape[1];
            for (size_t k = 0; k < c.nP[i]; k++)
                if ((i == 0 ? (int)(k / in_) : (int)(k % c.r)) != rb - 1) g[k] = 0;
        }
        float *ha = dlf(a->params[i].grad, c.nP[i]);
        double ep = relerr_fd(ha, g, c.nP[i]);
        double gn = 0;
        for (size_t k = 0; k < c.nP[i]; k++) gn += g[k] * g[k];
        EXPECT(gn > 0, "%s: FD gradient of %s is zero (test would be vacuous)", label, a->params[i].name);
        EXPECT(ep <= 1e-4, "%s: d%s rel err %.3g > 1e-4", label, a->params[i].name, ep);
        printf("  %s %.2e", a->params[i].name + strlen(l->name) + 1, ep); // the leaf after "<linear>."
        free(g);
        free(ha);
    }
    printf("\n");

    if (!a->vt->merge) goto no_merge; // nonlinear (bottleneck adapters)
    // merge == unmerged (plain linear with the merged W, b)
    float *Wm = pb_alloc(E, (size_t)out * in), *bm = pb_alloc(E, (size_t)out), *ym = pb_alloc(E, ny);
    pb_copy(E, Wm, l->w->data, (size_t)out * in);
    pb_copy(E, bm, l->b->data, (size_t)out);
    layer_forward(l, y, x, N, 0, 0); // eval: no dropout
    a->vt->merge(a, E, Wm, bm);
    pb_linear_forward(E, ym, x, Wm, bm, N, in, out);
    float *h1 = dlf(y, ny), *h2 = dlf(ym, ny);
    double em = relerr_ff(h2, h1, ny);
    EXPECT(em <= 1e-5, "%s: merged vs unmerged rel err %.3g > 1e-5", label, em);
    free(h1); free(h2);
    pb_free(E, Wm); pb_free(E, bm); pb_free(E, ym);
no_merge:

    free(c.W); free(c.b); free(c.x); free(c.G); free(c.mask); free(c.U); free(c.Vt); free(c.wn); free(c.idx);
    for (int i = 0; i < c.np; i++) free(c.P[i]);
    free(yr); free(hy); free(hdx); free(hx); free(hG);
    pb_free(E, x); pb_free(E, y); pb_free(E, G); pb_free(E, dx);
}

// Pre-trained output (adapter-free linear copy from the original W) vs the adapted one at init.
static void check_step0(const char *label, pb_linear *l, const float *W0, const float *b0, int N) {
    int in = l->in, out = l->out;
    size_t nx = (size_t)N * in, ny = (size_t)N * out;
    float *hx = pb_xmalloc(nx * sizeof(float));
    randn(hx, nx, 1.0f);
    float *x = pb_alloc(E, nx), *y = pb_alloc(E, ny), *y0 = pb_alloc(E, ny);
    float *W = pb_alloc(E, (size_t)out * in), *b = pb_alloc(E, out);
    pb_upload(E, x, hx, nx);
    pb_upload(E, W, W0, (size_t)out * in);
    pb_upload(E, b, b0, out);
    pb_linear_forward(E, y0, x, W, b, N, in, out);
    layer_forward(l, y, x, N, 0, 0);
    float *h = dlf(y, ny), *h0 = dlf(y0, ny);
    double e = relerr_ff(h, h0, ny);
    EXPECT(e <= 1e-5, "%s: step-0 output differs from pre-trained: rel %.3g > 1e-5", label, e);
    printf("%-28s step-0 vs pre-trained %.2e\n", label, e);
    free(h); free(h0); free(hx);
    pb_free(E, x); pb_free(E, y); pb_free(E, y0); pb_free(E, W); pb_free(E, b);
}

static void perturb_param(pb_param *p, float sd, int add) {
    float *h = dlf(p->data, p->numel);
    for (size_t i = 0; i < p->numel; i++) h[i] = (add ? h[i] : 0.0f) + sd * pb_rng_normal(&R);
    pb_upload(E, p->data, h, p->numel);
    free(h);
}

static void test_method(const char *label, const char *method, int in, int out, int r,
                        const char *init, const char *variant, const char *gate, float dropout,
                        int rslora, float alpha) {
    const char *name = !strcmp(variant, "adapter") ? "encoder.layer.0.output.dense"
                                                   : "encoder.layer.0.attention.attention.query";
    pb_linear l = make_linear(in, out, name);
    float *W0 = dlf(l.w->data, (size_t)out * in), *b0 = dlf(l.b->data, out);
    pb_method_config c;
    char kv[512];
    int lora_family = !strcmp(method, "lora") || !strcmp(method, "pissa") || !strcmp(method, "dora");
    if (lora_family)
        snprintf(kv, sizeof kv, "rank=%d dropout=%g rslora=%s alpha=%g init=%s", r, (double)dropout,
                 rslora ? "true" : "false", (double)alpha, init[0] ? init : (!strcmp(method, "pissa") ? "svd" : "kaiming"));
    else if (!strcmp(method, "aoft"))
        snprintf(kv, sizeof kv, "rank=%d variant=%s gate=%s", r, variant[0] ? variant : "lora", gate[0] ? gate : "lambda");
    else if (!strcmp(method, "vera"))
        snprintf(kv, sizeof kv, "rank=%d dropout=%g d_initial=%g", r, (double)dropout, (double)alpha);
    else if (!strcmp(method, "fourierft")) // r = n_frequency, alpha = scaling; zeros: step 0 is checked
        snprintf(kv, sizeof kv, "n_frequency=%d scaling=%g init=zeros random_loc_seed=%d", r, (double)alpha,
                 variant[0] ? atoi(variant) : 777);
    else if (!strcmp(method, "adapter_h") || !strcmp(method, "adapter_p")) // gate = act, alpha = scaling
        snprintf(kv, sizeof kv, "rank=%d act=%s scaling=%g targets=%s", r, gate[0] ? gate : "relu", (double)alpha,
                 !strcmp(variant, "adapter") ? "output" : "attention.output");
    else if (!strcmp(method, "hta"))
        snprintf(kv, sizeof kv, "rank=%d form=%s", r, !strcmp(variant, "adapter") ? "adapter" : "lora");
    else if (!strcmp(method, "ssf")) // identity init: step 0 is checked, then both tensors move
        snprintf(kv, sizeof kv, "init=identity targets=query");
    else if (!strcmp(method, "ia3")) // variant "adapter": the FFN output linear with its input scaled
        snprintf(kv, sizeof kv, "targets=query,output feedforward=%s", !strcmp(variant, "adapter") ? "output" : "");
    else
        snprintf(kv, sizeof kv, "rank=%d", r);
    mc_make(&c, method, 7, kv);
    char err[256] = "";
    int kind = !strcmp(method, "svfit") ? K_SVFIT : !strcmp(method, "aoft") ? K_AOFT : !strcmp(method, "ia3") ? K_IA3
               : !strcmp(method, "dora") ? K_DORA : !strcmp(method, "vera") ? K_VERA
               : !strcmp(method, "fourierft") ? K_FOURIER
               : !strcmp(method, "adapter_h") || !strcmp(method, "adapter_p") ? K_BOTTLE
               : !strcmp(method, "hta") ? K_HTA : !strcmp(method, "ssf") ? K_SSF : K_LORA;
    if (!strcmp(variant, "bias")) pb_param_set_trainable(E, l.b, 1); // the layer's bias trains too
    pb_status st = c.desc->attach(E, &l, &c, &(pb_site){3, in, out, NULL, 0}, err, sizeof(err));
    EXPECT(st == PB_OK, "%s: attach failed: %s", label, err);
    if (st != PB_OK) { free_linear(&l); free(W0); free(b0); return; }
    check_step0(label, &l, W0, b0, 4);
    if (!strcmp(method, "svfit") && r == PB_MIN(in, out)) {
        float *We = dlf(l.w->data, (size_t)out * in);
        int zero = 1;
        for (size_t i = 0; i < (size_t)out * in; i++) zero &= We[i] == 0.0f;
        EXPECT(zero, "%s: W_e is not exactly 0 at full rank", label);
        free(We);
    }
    // Move away from init so every gradient path is exercised (B = 0 / lam = 0 kill them).
    pb_adapter *a = l.adapter;
    if (kind == K_LORA) perturb_param(&a->params[1], 0.3f, 1);
    if (kind == K_VERA) perturb_param(&a->params[1], 0.5f, 1); // lambda_b = 0 at init
    if (kind == K_DORA) { // B != 0 and m != ||W||: g != 1 and the direction's norm moves
        perturb_param(&a->params[1], 0.3f, 1);
        perturb_param(&a->params[2], 0.3f, 1);
    }
    if (kind == K_SVFIT) perturb_param(&a->params[0], 0.2f, 1);
    if (kind == K_FOURIER) perturb_param(&a->params[0], 1.0f, 1); // N(0,1) as the paper's init
    if (kind == K_HTA) // d = 0, W_up = 0 at init; v away from the exact reflection
        for (int i = 0; i < a->nparams; i++) perturb_param(&a->params[i], 0.3f, 1);
    if (kind == K_BOTTLE) // W_u = 0, biases 0 at init
        for (int i = 0; i < 4; i++) perturb_param(&a->params[i], 0.3f, 1);
    if (kind == K_IA3) perturb_param(&a->params[0], 0.3f, 1);
    if (kind == K_SSF)
        for (int i = 0; i < 2; i++) perturb_param(&a->params[i], 0.3f, 1);
    if (kind == K_AOFT) {
        perturb_param(&a->params[0], 0.1f, 1); // ||q|| != 1: the general (approximate) regime
        perturb_param(&a->params[1], 0.1f, 1);
        perturb_param(&a->params[2], 0.5f, 1);
    }
    check_adapter(label, &l, kind, 5, 1);
    free_linear(&l);
    free(W0); free(b0);
}

// ----------------------------------------------------------------------------
// AdaptFormer: two cooperating adapters on an FFN pair (intermediate D->H, output H->D):
//   y = W_o gelu(W_i x + b_i) + b_o + s (act(x W_d^T + b_d) W_u^T + b_u)
// forward/backward through both linears (the output's backward first, as in a model) vs a double
// replica and central differences of sum(G*y) wrt x and the four bottleneck tensors.

typedef struct {
    int N, D, H, m;
    double s;
    double *Wi, *bi, *Wo, *bo, *x, *G;
    double *P[4];
    size_t nP[4];
} af_case;

static double af_ref(const af_case *c) {
    double L = 0;
    double *g = pb_xmalloc((size_t)c->H * sizeof(double)), *a = pb_xmalloc((size_t)c->m * sizeof(double));
    for (int n = 0; n < c->N; n++) {
        const double *xn = c->x + (size_t)n * c->D;
        for (int j = 0; j < c->H; j++) {
            double h = c->bi[j];
            for (int i = 0; i < c->D; i++) h += xn[i] * c->Wi[(size_t)j * c->D + i];
            g[j] = 0.5 * h * (1.0 + erf(h / sqrt(2.0)));
        }
        for (int k = 0; k < c->m; k++) {
            double h = c->P[1][k];
            for (int i = 0; i < c->D; i++) h += xn[i] * c->P[0][(size_t)k * c->D + i];
            a[k] = h > 0 ? h : 0;
        }
        for (int o = 0; o < c->D; o++) {
            double y = c->bo[o], t = c->P[3][o];
            for (int j = 0; j < c->H; j++) y += g[j] * c->Wo[(size_t)o * c->H + j];
            for (int k = 0; k < c->m; k++) t += a[k] * c->P[2][(size_t)o * c->m + k];
            L += c->G[(size_t)n * c->D + o] * (y + c->s * t);
        }
    }
    free(g);
    free(a);
    return L;
}

static void af_fd(af_case *c, double *v, size_t n, double *g) {
    for (size_t i = 0; i < n; i++) {
        double h = 1e-5 * fmax(1.0, fabs(v[i])), v0 = v[i];
        v[i] = v0 + h;
        double lp = af_ref(c);
        v[i] = v0 - h;
        double lm = af_ref(c);
        v[i] = v0;
        g[i] = (lp - lm) / (2 * h);
    }
}

static void test_adaptformer(void) {
    const int N = 5, D = 8, H = 12, m = 3;
    pb_linear ls[2] = {make_linear(D, H, "encoder.layer.0.intermediate.dense"),
                       make_linear(H, D, "encoder.layer.0.output.dense")};
    pb_method_config c;
    mc_make(&c, "adaptformer", 7, "rank=3 scaling=0.7");
    char err[256] = "";
    pb_status s0 = c.desc->attach(E, &ls[0], &c, &(pb_site){0, D, H, ls, 2}, err, sizeof err);
    pb_status s1 = c.desc->attach(E, &ls[1], &c, &(pb_site){1, D, H, ls, 2}, err, sizeof err);
    EXPECT(s0 == PB_OK && s1 == PB_OK, "adaptformer attach: %s", err);
    if (s0 || s1) { free_linear(&ls[0]); free_linear(&ls[1]); return; }
    pb_linear lone = make_linear(H, D, "encoder.layer.0.output.dense"); // no intermediate before it
    EXPECT(c.desc->attach(E, &lone, &c, &(pb_site){0, D, H, &lone, 1}, err, sizeof err) == PB_ERR_ARG &&
               strstr(err, "intermediate"), "adaptformer: an output linear without its intermediate: %s", err);
    free_linear(&lone);
    pb_adapter *a = ls[0].adapter;
    EXPECT(a->nparams == 4 && ls[1].adapter->nparams == 0, "adaptformer: params on the intermediate's adapter only");
    size_t nx = (size_t)N * D, nh = (size_t)N * H;
    float *hx = pb_xmalloc(nx * sizeof(float)), *hG = pb_xmalloc(nx * sizeof(float));
    randn(hx, nx, 1.0f);
    randn(hG, nx, 1.0f);
    float *x = pb_alloc(E, nx), *yi = pb_alloc(E, nh), *g = pb_alloc(E, nh), *y = pb_alloc(E, nx), *y0 = pb_alloc(E, nx);
    float *G = pb_alloc(E, nx), *dg = pb_alloc(E, nh), *dyi = pb_alloc(E, nh), *dx = pb_alloc(E, nx);
    pb_upload(E, x, hx, nx);
    pb_upload(E, G, hG, nx);
    // step 0 (up = 0): the plain FFN
    layer_forward(&ls[0], yi, x, N, 1, 1);
    pb_gelu_forward(E, g, yi, nh);
    layer_forward(&ls[1], y, g, N, 1, 1);
    pb_linear_forward(E, y0, g, ls[1].w->data, ls[1].b->data, N, H, D);
    float *h1 = dlf(y, nx), *h0 = dlf(y0, nx);
    double e0 = relerr_ff(h1, h0, nx);
    EXPECT(e0 == 0.0, "adaptformer: step 0 differs from the FFN (%.3g)", e0);
    free(h1); free(h0);
    for (int i = 0; i < 4; i++) perturb_param(&a->params[i], 0.4f, 1);
    for (int i = 0; i < 4; i++) pb_zero(E, a->params[i].grad, a->params[i].numel);
    layer_forward(&ls[0], yi, x, N, 1, 1);
    pb_gelu_forward(E, g, yi, nh);
    layer_forward(&ls[1], y, g, N, 1, 1);
    pb_zero(E, dg, nh); pb_zero(E, dyi, nh); pb_zero(E, dx, nx);
    layer_backward(&ls[1], dg, G, g, N);
    pb_gelu_backward(E, dyi, dg, yi, nh);
    layer_backward(&ls[0], dx, dyi, x, N);

    af_case rc = {N, D, H, m, 0.7, dl(ls[0].w->data, (size_t)H * D), dl(ls[0].b->data, H), dl(ls[1].w->data, (size_t)D * H),
                  dl(ls[1].b->data, D), pb_xmalloc(nx * sizeof(double)), pb_xmalloc(nx * sizeof(double)), {0}, {0}};
    for (size_t i = 0; i < nx; i++) { rc.x[i] = hx[i]; rc.G[i] = hG[i]; }
    for (int i = 0; i < 4; i++) { rc.nP[i] = a->params[i].numel; rc.P[i] = dl(a->params[i].data, rc.nP[i]); }
    // forward: sum(G*y) vs the replica
    float *hy = dlf(y, nx);
    double L = 0;
    for (size_t i = 0; i < nx; i++) L += hG[i] * (double)hy[i];
    double Lr = af_ref(&rc), ef = fabs(L - Lr) / fmax(fabs(Lr), 1e-30);
    EXPECT(ef <= 1e-5, "adaptformer: forward sum(G*y) rel err %.3g", ef);
    double *gx = pb_xmalloc(nx * sizeof(double));
    af_fd(&rc, rc.x, nx, gx);
    float *hdx = dlf(dx, nx);
    double ex = relerr_fd(hdx, gx, nx);
    EXPECT(ex <= 1e-4, "adaptformer: dx rel err %.3g", ex);
    printf("%-28s forward %.2e  dx %.2e", "adaptformer D=8 H=12 m=3", ef, ex);
    for (int i = 0; i < 4; i++) {
        double *gp = pb_xmalloc(rc.nP[i] * sizeof(double));
        af_fd(&rc, rc.P[i], rc.nP[i], gp);
        float *hp = dlf(a->params[i].grad, rc.nP[i]);
        double ep = relerr_fd(hp, gp, rc.nP[i]);
        EXPECT(ep <= 1e-4, "adaptformer: d%s rel err %.3g", a->params[i].name, ep);
        printf("  %s %.2e", a->params[i].name + strlen(ls[0].name) + 1, ep);
        free(gp); free(hp);
    }
    printf("\n");
    free(gx); free(hdx); free(hy); free(hx); free(hG);
    free(rc.Wi); free(rc.bi); free(rc.Wo); free(rc.bo); free(rc.x); free(rc.G);
    for (int i = 0; i < 4; i++) free(rc.P[i]);
    pb_free(E, x); pb_free(E, yi); pb_free(E, g); pb_free(E, y); pb_free(E, y0); pb_free(E, G);
    pb_free(E, dg); pb_free(E, dyi); pb_free(E, dx);
    free_linear(&ls[0]);
    free_linear(&ls[1]);
}

// ----------------------------------------------------------------------------

// AO(q) through the engine ops (pb_ao_forward / pb_ao_backward; the op-level FD sweep over
// shapes and the clamp is in test_ops_grad.c).
static void test_ao(void) {
    // Orthogonality: full Q (test-built) vs the op with d = D, and Q^T Q = I for ||q|| = 1.
    int D = 24;
    float q[24];
    double qd[24], nrm = 0;
    randn(q, D, 1.0f);
    for (int i = 0; i < D; i++) nrm += (double)q[i] * q[i];
    for (int i = 0; i < D; i++) q[i] = (float)(q[i] / sqrt(nrm));
    q[0] = fabsf(q[0]);
    for (int i = 0; i < D; i++) qd[i] = q[i];
    double *Q = pb_xmalloc((size_t)D * D * sizeof(double));
    ref_Q(qd, D, Q);
    float *eq = pb_alloc(E, D), *eAO = pb_alloc(E, (size_t)D * D), *eG = pb_alloc(E, (size_t)D * D);
    float *edq = pb_alloc(E, D);
    int32_t *ecl = pb_alloc_i32(E, 1), ncl = -1;
    pb_upload(E, eq, q, D);
    pb_ao_forward(E, eAO, eq, D, D, ecl);
    float *AO = dlf(eAO, (size_t)D * D);
    pb_download_i32(E, &ncl, ecl, 1);
    EXPECT(ncl == 0, "unexpected clamp (counter %d)", (int)ncl);
    double maxdiff = 0, maxorth = 0;
    for (int i = 0; i < D * D; i++) maxdiff = fmax(maxdiff, fabs(AO[i] - Q[i]));
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double acc = 0;
            for (int k = 0; k < D; k++) acc += (double)AO[k * D + i] * AO[k * D + j];
            maxorth = fmax(maxorth, fabs(acc - (i == j)));
        }
    EXPECT(maxdiff <= 1e-6, "AO(q) differs from the full Q: %.3g", maxdiff);
    EXPECT(maxorth <= 1e-5, "AO(q) with ||q||=1 not orthogonal: max|Q^TQ-I| = %.3g", maxorth);
    printf("AO: |AO-Q| %.2e, max|Q^TQ-I| %.2e (D=%d)\n", maxdiff, maxorth, D);
    free(AO);
    // AO backward vs FD of <G, AO(q)> (d = 5, ||q|| != 1)
    int d = 5;
    for (int i = 0; i < D; i++) qd[i] = q[i] + 0.2 * pb_rng_normal(&R);
    for (int i = 0; i < D; i++) q[i] = (float)qd[i];
    for (int i = 0; i < D; i++) qd[i] = q[i];
    float G[24 * 5], dq[24];
    randn(G, (size_t)D * d, 1.0f);
    pb_upload(E, eq, q, D);
    pb_upload(E, eG, G, (size_t)D * d);
    pb_zero(E, edq, D);
    pb_ao_backward(E, edq, eq, eG, D, d);
    pb_download(E, dq, edq, D);
    double fd[24], *tmp = pb_xmalloc((size_t)D * d * sizeof(double));
    for (int i = 0; i < D; i++) {
        double v0 = qd[i], h = 1e-6, lp = 0, lm = 0;
        qd[i] = v0 + h; ref_AO(qd, D, d, tmp);
        for (int k = 0; k < D * d; k++) lp += G[k] * tmp[k];
        qd[i] = v0 - h; ref_AO(qd, D, d, tmp);
        for (int k = 0; k < D * d; k++) lm += G[k] * tmp[k];
        qd[i] = v0;
        fd[i] = (lp - lm) / (2 * h);
    }
    double e = relerr_fd(dq, fd, D);
    EXPECT(e <= 1e-4, "AO backward rel err %.3g > 1e-4", e);
    printf("AO backward vs FD: %.2e\n", e);
    // Clamp at q0 = -1: finite entries, the counter counts each clamped build.
    q[0] = -1.0f;
    pb_upload(E, eq, q, D);
    pb_ao_forward(E, eAO, eq, D, d, ecl);
    pb_ao_forward(E, eAO, eq, D, d, NULL); // NULL: not counted
    pb_ao_forward(E, eAO, eq, D, d, ecl);
    pb_download_i32(E, &ncl, ecl, 1);
    EXPECT(ncl == 2, "clamp at q0=-1: counter %d, expected 2", (int)ncl);
    AO = dlf(eAO, (size_t)D * d);
    for (int i = 0; i < D * d; i++) EXPECT(isfinite(AO[i]), "non-finite AO under clamp");
    free(AO);
    free(Q); free(tmp);
    pb_free(E, eq); pb_free(E, eAO); pb_free(E, eG); pb_free(E, edq); pb_free(E, ecl);
}

// The adapter's clamp count: training forwards count (both factors), eval forwards and merge do
// not; read back through pb_aoft_clamp_count (what pb_method_events sums).
static void test_aoft_clamp_count(void) {
    pb_linear l = make_linear(12, 10, "encoder.layer.0.attention.attention.query");
    pb_method_config c;
    mc_make(&c, "aoft", 7, "rank=3");
    char err[256] = "";
    pb_status st = c.desc->attach(E, &l, &c, &(pb_site){3, 12, 10, NULL, 0}, err, sizeof(err));
    EXPECT(st == PB_OK, "aoft attach failed: %s", err);
    if (st != PB_OK) { free_linear(&l); return; }
    pb_adapter *a = l.adapter;
    const int N = 4;
    float *x = pb_alloc(E, (size_t)N * 12), *y = pb_alloc(E, (size_t)N * 10);
    float m1 = -1.0f;
    layer_forward(&l, y, x, N, 1, 0);
    EXPECT(pb_aoft_clamp_count(a, E) == 0, "clamp counted at init (||q|| = 1, q0 >= 0)");
    pb_upload(E, a->params[0].data, &m1, 1); // q_down[0] = -1: c = 0, clamped
    layer_forward(&l, y, x, N, 1, 0);
    layer_forward(&l, y, x, N, 0, 0);         // eval: not counted
    pb_upload(E, a->params[1].data, &m1, 1); // q_up too
    layer_forward(&l, y, x, N, 1, 0);
    int64_t n = pb_aoft_clamp_count(a, E);
    EXPECT(n == 3, "adapter clamp count %lld, expected 3", (long long)n);
    printf("AOFT adapter clamp count: %lld (expected 3)\n", (long long)n);
    pb_free(E, x); pb_free(E, y);
    free_linear(&l);
}

static void test_svd(void) {
    int m = 40, n = 30, k = 30, r = 5;
    // W = sum_k U_k s_k V_k^T with s decaying fast, plus noise
    float *W = pb_xmalloc((size_t)m * n * sizeof(float));
    randn(W, (size_t)m * n, 1.0f);
    float *U = pb_xmalloc((size_t)m * k * sizeof(float)), *S = pb_xmalloc(k * sizeof(float));
    float *Vt = pb_xmalloc((size_t)k * n * sizeof(float));
    char err[256];
    EXPECT(pb_svd_full(W, m, n, U, S, Vt, err, sizeof(err)) == PB_OK, "svd_full: %s", err);
    // rescale the spectrum: W2 = U diag(s2) Vt with s2_k = 10 * 0.5^k
    float *W2 = pb_xcalloc((size_t)m * n, sizeof(float));
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int t = 0; t < k; t++) acc += (double)U[i * k + t] * 10.0 * pow(0.5, t) * Vt[t * n + j];
            W2[i * n + j] = (float)acc;
        }
    // full SVD reconstructs
    double num = 0, den = 0;
    EXPECT(pb_svd_full(W2, m, n, U, S, Vt, err, sizeof(err)) == PB_OK, "svd_full: %s", err);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int t = 0; t < k; t++) acc += (double)U[i * k + t] * S[t] * Vt[t * n + j];
            num += (acc - W2[i * n + j]) * (acc - W2[i * n + j]);
            den += (double)W2[i * n + j] * W2[i * n + j];
        }
    EXPECT(sqrt(num / den) <= 1e-5, "full SVD reconstruction rel %.3g", sqrt(num / den));
    for (int t = 0; t < k; t++) EXPECT(fabs(S[t] - 10.0 * pow(0.5, t)) <= 1e-4 * 10, "S[%d]=%g", t, S[t]);
    // randomized, niter = 4
    float *Ur = pb_xmalloc((size_t)m * r * sizeof(float)), *Sr = pb_xmalloc(r * sizeof(float));
    float *Vr = pb_xmalloc((size_t)r * n * sizeof(float));
    EXPECT(pb_svd_lowrank(W2, m, n, r, 4, 99, Ur, Sr, Vr, err, sizeof(err)) == PB_OK, "lowrank: %s", err);
    double es = 0;
    for (int t = 0; t < r; t++) es = fmax(es, fabs(Sr[t] - S[t]) / S[t]);
    EXPECT(es <= 1e-3, "randomized SVD top-%d singular values rel err %.3g", r, es);
    double eo = 0;
    for (int a = 0; a < r; a++)
        for (int b = 0; b < r; b++) {
            double acc = 0;
            for (int i = 0; i < m; i++) acc += (double)Ur[i * r + a] * Ur[i * r + b];
            eo = fmax(eo, fabs(acc - (a == b)));
        }
    EXPECT(eo <= 1e-5, "randomized U not orthonormal: %.3g", eo);
    EXPECT(pb_svd_lowrank(W2, m, n, 31, 1, 1, Ur, Sr, Vr, err, sizeof(err)) == PB_ERR_ARG, "rank > min accepted");
    printf("SVD: full recon %.2e, randomized (niter 4) top-%d sigma rel %.2e, U orth %.2e\n",
           sqrt(num / den), r, es, eo);
    free(W); free(W2); free(U); free(S); free(Vt); free(Ur); free(Sr); free(Vr);
}

// Bad options are refused when they are set, naming the option; the size rule of each method
// (pb_method_apply enforces it before any attach: test_methods_model.c).
static void test_errors(void) {
    pb_method_config c;
    char err[256] = "";
    mc_make(&c, "svfit", 0, "rank=5");
    EXPECT(c.desc->rank_limit(&c, 6, 4) == 4, "svfit size rule on (6 -> 4) is not min(out,in)");
    mc_make(&c, "pissa", 0, "rank=5");
    EXPECT(c.desc->rank_limit(&c, 6, 4) == 4, "pissa size rule on (6 -> 4) is not min(out,in)");
    mc_make(&c, "lora", 0, "rank=5");
    EXPECT(c.desc->rank_limit(&c, 6, 4) == 0, "lora has a size rule (PEFT accepts r > min(out,in))");
    mc_make(&c, "aoft", 0, "rank=5 variant=adapter");
    EXPECT(c.desc->rank_limit(&c, 6, 4) == 4, "Adapter+AOFT size rule is not out");
    mc_make(&c, "pissa", 0, "");
    EXPECT(pb_method_config_set(&c, "init", "niter_x", err, sizeof(err)) == PB_ERR_ARG && strstr(err, "init"),
           "bad pissa init not rejected: '%s'", err);
    EXPECT(pb_method_config_set(&c, "init", "niter_12", err, sizeof(err)) == PB_OK, "pissa niter_12 refused: %s", err);
    EXPECT(pb_method_config_set(&c, "rank", "0", err, sizeof(err)) == PB_ERR_ARG && strstr(err, "rank"),
           "rank 0 not rejected: '%s'", err);
    EXPECT(pb_method_config_set(&c, "rank", "2.5", err, sizeof(err)) == PB_ERR_ARG, "rank 2.5 not rejected");
    EXPECT(pb_method_config_set(&c, "dropout", "1", err, sizeof(err)) == PB_ERR_ARG && strstr(err, "dropout"),
           "dropout 1 not rejected: '%s'", err);
    EXPECT(pb_method_config_set(&c, "targets", "query,query", err, sizeof(err)) == PB_ERR_ARG,
           "duplicate target not rejected");
    EXPECT(pb_method_config_set(&c, "targets", "query,values", err, sizeof(err)) == PB_ERR_ARG && strstr(err, "targets"),
           "unknown target not rejected: '%s'", err);
    EXPECT(pb_method_config_set(&c, "gate", "scalar", err, sizeof(err)) == PB_ERR_ARG && strstr(err, "no such option"),
           "pissa accepted aoft's gate option: '%s'", err);
    mc_make(&c, "aoft", 0, "");
    EXPECT(pb_method_config_set(&c, "variant", "prompt", err, sizeof(err)) == PB_ERR_ARG && strstr(err, "variant"),
           "bad aoft variant not rejected: '%s'", err);
    EXPECT(pb_method_config_init(&c, "dora-x", 0, err, sizeof(err)) == PB_ERR_ARG && strstr(err, "known: full"),
           "unknown method not rejected with the list: '%s'", err);
    // AOFT's dependent default: the adapter variant adapts the FFN outputs unless targets are given
    mc_make(&c, "aoft", 0, "variant=adapter");
    EXPECT(!strcmp(pb_mc_str(&c, "targets"), "output"), "Adapter+AOFT default targets '%s'", pb_mc_str(&c, "targets"));
    mc_make(&c, "aoft", 0, "variant=adapter targets=query,value");
    EXPECT(!strcmp(pb_mc_str(&c, "targets"), "query,value"), "explicit targets overridden: '%s'",
           pb_mc_str(&c, "targets"));
    printf("errors: %s\n", err);
}

// ----------------------------------------------------------------------------
// DyLoRA: the truncated LoRA at the step's rank b vs the replica and FD (rows / columns above b
// get exactly zero gradient; frozen mode: only row / column b), b = 1, 2, ..., r with sampling
// "cycle", eval_rank at eval and merge; uniform sampling covers 1..r evenly and is a function of
// the step seed; one b per model (the leader draws it, a follower reads it); eval_rank > rank refused.

static void test_dylora_fd(const char *label, const char *kv, int in, int out, float dropout) {
    pb_linear l = make_linear(in, out, "encoder.layer.0.attention.attention.query");
    float *W0 = dlf(l.w->data, (size_t)out * in), *b0 = dlf(l.b->data, out);
    pb_method_config c;
    char err[256] = "", kv2[256];
    snprintf(kv2, sizeof kv2, "%s dropout=%g sampling=cycle", kv, (double)dropout);
    mc_make(&c, "dylora", 7, kv2);
    pb_status st = c.desc->attach(E, &l, &c, &(pb_site){3, in, out, NULL, 0}, err, sizeof(err));
    EXPECT(st == PB_OK, "%s: attach failed: %s", label, err);
    if (st != PB_OK) { free_linear(&l); free(W0); free(b0); return; }
    check_step0(label, &l, W0, b0, 4);
    perturb_param(&l.adapter->params[1], 0.3f, 1); // B = 0 at init
    pb_dylora_state *ds = l.adapter->state;
    for (int t = 0; t < ds->r; t++) { // cycle: the t-th training forward runs at b = t + 1
        char lab[96];
        snprintf(lab, sizeof lab, "%s b=%d", label, t + 1);
        check_adapter(lab, &l, K_DYLORA, 5, 1);
        // (check_adapter's merge check ends in an eval forward at eval_rank: the draw is in shared)
        EXPECT(ds->shared->b == t + 1, "%s: cycle sampling gave b = %d at step %d", label, ds->shared->b, t);
    }
    free_linear(&l);
    free(W0); free(b0);
}

static void test_dylora(void) {
    test_dylora_fd("dylora r=4 alpha=6", "rank=4 alpha=6 eval_rank=3", 12, 10, 0.0f);
    test_dylora_fd("dylora r=3 dropout 0.3", "rank=3 eval_rank=2", 12, 10, 0.3f);
    test_dylora_fd("dylora frozen r=4", "rank=4 alpha=8 frozen=true", 9, 11, 0.0f);
    // uniform sampling: counts of b over 4000 step seeds within 5 binomial sd of 800 each; the same
    // seeds give the same ranks; a follower reads the leader's b
    pb_linear ls[2] = {make_linear(6, 5, "encoder.layer.0.attention.attention.query"),
                       make_linear(6, 5, "encoder.layer.0.attention.attention.value")};
    pb_method_config c;
    char err[256] = "";
    mc_make(&c, "dylora", 3, "rank=5");
    for (int i = 0; i < 2; i++)
        EXPECT(c.desc->attach(E, &ls[i], &c, &(pb_site){i, 6, 5, ls, 2}, err, sizeof err) == PB_OK, "attach: %s", err);
    pb_dylora_state *s0 = ls[0].adapter->state, *s1 = ls[1].adapter->state;
    EXPECT(s0->leader && !s1->leader && s0->shared == s1->shared, "dylora: the second adapter does not follow the first");
    float *x = pb_alloc(E, 6), *y = pb_alloc(E, 5);
    pb_zero(E, x, 6);
    int count[6] = {0}, first[16], same = 1, follow = 1;
    for (int t = 0; t < 4000; t++) {
        for (int i = 0; i < 2; i++) layer_forward(&ls[i], y, x, 1, 1, 1000 + (uint64_t)t);
        count[s0->b]++;
        follow &= s1->b == s0->b;
        if (t < 16) first[t] = s0->b;
    }
    for (int t = 0; t < 16; t++) {
        layer_forward(&ls[0], y, x, 1, 1, 1000 + (uint64_t)t);
        same &= s0->b == first[t];
    }
    double sd = sqrt(4000 * 0.2 * 0.8);
    for (int b = 1; b <= 5; b++)
        EXPECT(fabs(count[b] - 800.0) < 5 * sd, "dylora uniform: b = %d drawn %d times of 4000", b, count[b]);
    EXPECT(count[0] == 0, "dylora uniform drew b = 0");
    EXPECT(same, "dylora uniform: the same step seeds gave other ranks");
    EXPECT(follow, "dylora: a follower's rank differs from the leader's");
    layer_forward(&ls[1], y, x, 1, 0, 0);
    EXPECT(s1->b == 5, "dylora: eval forward at b = %d, not eval_rank 5", s1->b);
    printf("dylora uniform: counts %d %d %d %d %d (expected 800 +- %.0f)\n", count[1], count[2], count[3], count[4],
           count[5], sd);
    pb_free(E, x); pb_free(E, y);
    free_linear(&ls[0]); free_linear(&ls[1]);
    // eval_rank above rank: refused naming the option
    mc_make(&c, "dylora", 0, "rank=4 eval_rank=6");
    const char *why = c.desc->site_check(&c, 8, 8);
    EXPECT(why && strstr(why, "eval_rank"), "dylora eval_rank > rank not refused by the shape rule");
    pb_linear l = make_linear(8, 8, "encoder.layer.0.attention.attention.query");
    EXPECT(c.desc->attach(E, &l, &c, &(pb_site){0, 8, 8, NULL, 0}, err, sizeof err) == PB_ERR_ARG &&
               strstr(err, "eval_rank"), "dylora eval_rank > rank attached: '%s'", err);
    free_linear(&l);
}

// ----------------------------------------------------------------------------
// The norm site (SSF after a LayerNorm): y = gamma * (LN(x) w + b) + beta through
// pb_norm_layer_forward/backward vs a double replica and central differences wrt x, gamma, beta
// (and the norm's own w, b when they train too); merge folds it into (w, b); the paper's init.

typedef struct {
    int N, C;
    double *x, *w, *b, *g, *beta, *G;
} nrcase;

static double norm_ref(const nrcase *c, double *y) {
    double L = 0;
    for (int n = 0; n < c->N; n++) {
        const double *xr = c->x + (size_t)n * c->C;
        double mu = 0, var = 0;
        for (int i = 0; i < c->C; i++) mu += xr[i];
        mu /= c->C;
        for (int i = 0; i < c->C; i++) var += (xr[i] - mu) * (xr[i] - mu);
        double rs = 1.0 / sqrt(var / c->C + 1e-6);
        for (int i = 0; i < c->C; i++) {
            double v = c->g[i] * ((xr[i] - mu) * rs * c->w[i] + c->b[i]) + c->beta[i];
            if (y) y[(size_t)n * c->C + i] = v;
            L += c->G[(size_t)n * c->C + i] * v;
        }
    }
    return L;
}

static void norm_fd(nrcase *c, double *v, size_t n, double *g) {
    for (size_t i = 0; i < n; i++) {
        double h = 1e-5 * fmax(1.0, fabs(v[i])), v0 = v[i];
        v[i] = v0 + h;
        double lp = norm_ref(c, NULL);
        v[i] = v0 - h;
        double lm = norm_ref(c, NULL);
        v[i] = v0;
        g[i] = (lp - lm) / (2 * h);
    }
}

static void test_ssf_norm(const char *label, int own_trainable) {
    int N = 5, C = 7;
    pb_param w, b;
    pb_param_init(E, &w, "w", 1, (int64_t[]){C}, PB_GROUP_BACKBONE);
    pb_param_init(E, &b, "b", 1, (int64_t[]){C}, PB_GROUP_BACKBONE);
    perturb_param(&w, 0.3f, 0);
    perturb_param(&b, 0.3f, 0);
    if (own_trainable) { pb_param_set_trainable(E, &w, 1); pb_param_set_trainable(E, &b, 1); }
    pb_norm n;
    memset(&n, 0, sizeof n);
    snprintf(n.name, sizeof n.name, "encoder.layer.0.layernorm_before");
    n.C = C; n.eps = 1e-6f; n.w = &w; n.b = &b;
    pb_method_config c;
    mc_make(&c, "ssf", 5, "");
    char err[256] = "";
    EXPECT(c.desc->norm_attach(E, &n, &c, 0, err, sizeof err) == PB_OK && n.adapter, "%s: norm attach: %s", label, err);
    pb_norm_adapter *a = n.adapter;
    float *hg = dlf(a->params[0].data, (size_t)C), *hbeta = dlf(a->params[1].data, (size_t)C);
    double gm = 0, gs = 0, bs = 0;
    for (int i = 0; i < C; i++) { gm += hg[i]; gs += (hg[i] - 1) * (hg[i] - 1); bs += hbeta[i] * hbeta[i]; }
    EXPECT(fabs(gm / C - 1) < 0.05 && sqrt(gs / C) > 0.002 && sqrt(gs / C) < 0.06 && sqrt(bs / C) < 0.06 &&
               sqrt(bs / C) > 0.002, "%s: init is not gamma ~ N(1, 0.02), beta ~ N(0, 0.02)", label);
    free(hg); free(hbeta);
    for (int i = 0; i < 2; i++) perturb_param(&a->params[i], 0.3f, 1);
    size_t NC = (size_t)N * C;
    float *hx = pb_xmalloc(NC * sizeof(float)), *hG = pb_xmalloc(NC * sizeof(float));
    randn(hx, NC, 1.0f);
    randn(hG, NC, 1.0f);
    float *x = pb_alloc(E, NC), *y = pb_alloc(E, NC), *G = pb_alloc(E, NC), *dx = pb_alloc(E, NC);
    float *mean = pb_alloc(E, (size_t)N), *rstd = pb_alloc(E, (size_t)N);
    pb_upload(E, x, hx, NC);
    pb_upload(E, G, hG, NC);
    pb_zero(E, dx, NC);
    for (int i = 0; i < 2; i++) pb_zero(E, a->params[i].grad, (size_t)C);
    pb_norm_layer_forward(E, &n, y, mean, rstd, x, N);
    pb_norm_layer_backward(E, &n, dx, G, x, mean, rstd, N);
    nrcase r = {N, C, pb_xmalloc(NC * sizeof(double)), dl(w.data, C), dl(b.data, C), dl(a->params[0].data, C),
                dl(a->params[1].data, C), pb_xmalloc(NC * sizeof(double))};
    for (size_t i = 0; i < NC; i++) { r.x[i] = hx[i]; r.G[i] = hG[i]; }
    double *yr = pb_xmalloc(NC * sizeof(double)), *gfd = pb_xmalloc(NC * sizeof(double));
    norm_ref(&r, yr);
    float *hy = dlf(y, NC), *hdx = dlf(dx, NC);
    double ef = relerr_fd(hy, yr, NC);
    norm_fd(&r, r.x, NC, gfd);
    double ex = relerr_fd(hdx, gfd, NC);
    EXPECT(ef <= 1e-5, "%s: forward rel err %.3g", label, ef);
    EXPECT(ex <= 1e-4, "%s: dx rel err %.3g", label, ex);
    printf("%-28s forward %.2e  dx %.2e", label, ef, ex);
    struct { const char *name; double *v; float *grad; } t[4] = {
        {"ssf_scale", r.g, a->params[0].grad}, {"ssf_shift", r.beta, a->params[1].grad}, {"w", r.w, w.grad}, {"b", r.b, b.grad}};
    for (int k = 0; k < (own_trainable ? 4 : 2); k++) {
        double g[16];
        norm_fd(&r, t[k].v, (size_t)C, g);
        float *ha = dlf(t[k].grad, (size_t)C);
        double e = relerr_fd(ha, g, (size_t)C);
        EXPECT(e <= 1e-4, "%s: d%s rel err %.3g", label, t[k].name, e);
        printf("  %s %.2e", t[k].name, e);
        free(ha);
    }
    printf("\n");
    // merge: a plain LayerNorm with the folded affine gives the same output
    float *ym = pb_alloc(E, NC);
    a->vt->merge(a, E, w.data, b.data);
    a->vt->free(a, E);
    n.adapter = NULL;
    pb_norm_layer_forward(E, &n, ym, mean, rstd, x, N);
    float *h1 = dlf(ym, NC);
    double em = relerr_ff(h1, hy, NC);
    EXPECT(em <= 1e-5, "%s: merged vs unmerged rel err %.3g", label, em);
    free(h1);
    pb_free(E, ym);
    free(r.x); free(r.w); free(r.b); free(r.g); free(r.beta); free(r.G); free(yr); free(gfd); free(hy); free(hdx);
    free(hx); free(hG);
    pb_free(E, x); pb_free(E, y); pb_free(E, G); pb_free(E, dx); pb_free(E, mean); pb_free(E, rstd);
    pb_param_free(E, &w); pb_param_free(E, &b);
}

// ----------------------------------------------------------------------------
// AdapterDrop: a Pfeiffer bottleneck (the K_BOTTLE replica and FD) while its layer is not
// dropped; skipped (y = base, no gradient, dy untouched) while the step's n exceeds its layer;
// eval_drop at evaluation; n ~ U{0..drop_max} evenly, one n per model.

static void test_adapterdrop(void) {
    pb_linear l = make_linear(10, 10, "encoder.layer.2.output.dense");
    pb_method_config c;
    char err[256] = "";
    mc_make(&c, "adapterdrop", 7, "rank=4 drop_max=3 sampling=cycle eval_drop=3");
    EXPECT(c.desc->attach(E, &l, &c, &(pb_site){17, 10, 10, NULL, 0}, err, sizeof err) == PB_OK, "attach: %s", err);
    pb_adapter *a = l.adapter;
    for (int i = 0; i < 4; i++) perturb_param(&a->params[i], 0.3f, 1);
    check_adapter("adapterdrop n=0 (runs)", &l, K_BOTTLE, 5, 1); // cycle: n = 0, 1, 2, 3, ...
    size_t nx = 50, ny = 50;
    float *hx = pb_xmalloc(nx * sizeof(float));
    randn(hx, nx, 1.0f);
    float *x = pb_alloc(E, nx), *y = pb_alloc(E, ny), *y0 = pb_alloc(E, ny), *dx = pb_alloc(E, nx), *dx0 = pb_alloc(E, nx);
    pb_upload(E, x, hx, nx);
    pb_linear_forward(E, y0, x, l.w->data, l.b->data, 5, 10, 10);
    float *h0 = dlf(y0, ny);
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < 4; i++) pb_zero(E, a->params[i].grad, a->params[i].numel);
        pb_zero(E, dx, nx);
        layer_forward(&l, y, x, 5, 1, (uint64_t)t);
        layer_backward(&l, dx, y0 /* any dy */, x, 5);
        float *h = dlf(y, ny);
        double e = relerr_ff(h, h0, ny), gs = 0;
        for (int i = 0; i < 4; i++) gs += pb_sumsq(E, a->params[i].grad, a->params[i].numel);
        int skipped = t == 3; // layer 2 < n only at n = 3
        EXPECT(skipped ? e == 0 && gs == 0 : e > 1e-3 && gs > 0, "adapterdrop n=%d: layer 2 %s (output moved %.3g, grad %.3g)",
               t, skipped ? "not skipped" : "skipped", e, gs);
        if (skipped) { // dx is the plain linear's
            pb_zero(E, dx0, nx);
            pb_linear_backward(E, dx0, NULL, NULL, y0, x, l.w->data, 5, 10, 10);
            float *d1 = dlf(dx, nx), *d0 = dlf(dx0, nx);
            EXPECT(relerr_ff(d1, d0, nx) == 0, "adapterdrop: a skipped adapter changed dx");
            free(d1); free(d0);
        }
        free(h);
    }
    layer_forward(&l, y, x, 5, 0, 0); // eval_drop = 3: layer 2 skipped
    float *h = dlf(y, ny);
    EXPECT(relerr_ff(h, h0, ny) == 0, "adapterdrop: eval_drop=3 did not skip layer 2");
    free(h); free(h0); free(hx);
    pb_free(E, x); pb_free(E, y); pb_free(E, y0); pb_free(E, dx); pb_free(E, dx0);
    free_linear(&l);
    // uniform: n over 4000 step seeds, read off which of four adapters (layers 0..3) ran: the
    // skipped ones must be a prefix (one n for the model), each n in 0..3 drawn ~1000 times
    pb_linear ls[4];
    char nm[64];
    mc_make(&c, "adapterdrop", 3, "rank=2 drop_max=3");
    for (int i = 0; i < 4; i++) {
        snprintf(nm, sizeof nm, "encoder.layer.%d.output.dense", i);
        ls[i] = make_linear(6, 6, nm);
    }
    for (int i = 0; i < 4; i++) {
        EXPECT(c.desc->attach(E, &ls[i], &c, &(pb_site){6 * i + 5, 6, 6, ls, 4}, err, sizeof err) == PB_OK, "attach: %s", err);
        for (int k = 0; k < 4; k++) perturb_param(&ls[i].adapter->params[k], 0.5f, 1);
    }
    float *x6 = pb_alloc(E, 6), *y6 = pb_alloc(E, 6), *b6 = pb_alloc(E, 6);
    float hx6[6] = {0.3f, -1.0f, 0.7f, 0.2f, -0.4f, 1.1f};
    pb_upload(E, x6, hx6, 6);
    int cnt[5] = {0}, prefix = 1;
    for (int t = 0; t < 4000; t++) {
        int ran[4];
        for (int i = 0; i < 4; i++) {
            layer_forward(&ls[i], y6, x6, 1, 1, 5000 + (uint64_t)t);
            pb_linear_forward(E, b6, x6, ls[i].w->data, ls[i].b->data, 1, 6, 6);
            float *hy = dlf(y6, 6), *hb = dlf(b6, 6);
            ran[i] = relerr_ff(hy, hb, 6) > 0;
            free(hy); free(hb);
        }
        int n = 0;
        while (n < 4 && !ran[n]) n++;
        for (int i = n; i < 4; i++) prefix &= ran[i];
        cnt[n]++;
    }
    double sd = sqrt(4000 * 0.25 * 0.75);
    for (int n = 0; n < 4; n++)
        EXPECT(fabs(cnt[n] - 1000.0) < 5 * sd, "adapterdrop uniform: n = %d drawn %d times of 4000", n, cnt[n]);
    EXPECT(cnt[4] == 0 && prefix, "adapterdrop: skipped adapters are not the first n layers of one draw");
    printf("adapterdrop uniform: n = 0..3 drawn %d %d %d %d times (1000 +- %.0f); skips a prefix\n", cnt[0], cnt[1],
           cnt[2], cnt[3], sd);
    pb_free(E, x6); pb_free(E, y6); pb_free(E, b6);
    for (int i = 0; i < 4; i++) free_linear(&ls[i]);
}

// ----------------------------------------------------------------------------
// FacT (TK and TT): several linears of one model share U, V (and TK's core C). A query (D -> D),
// an FFN pair (D -> kD, kD -> D) and a second layer's query, each on its own input; the loss is
// sum_i sum(G_i * y_i), so the shared tensors' gradients are the sums over every linear that uses
// them. Forward of every linear vs a double replica written from the block equations (not the
// engine's GEMM layout), every gradient (each dx, U, V, C, each P_i / core) vs central differences
// of the total loss, step 0 = pre-trained (V = 0), merge == unmerged per linear, the init ranges,
// one owner of the shared tensors, and the owner freed first (as pb_method_merge does) leaves the
// others working.

#define FACT_NL 4
typedef struct {
    int tk, nl, N, r, d, in[FACT_NL], out[FACT_NL];
    double s;
    double *U, *V, *C;                       // (r,d), (d,r), (r,r,r) (TK)
    double *own[FACT_NL];                    // TK: P_i (r,k_i); TT: M_i (r, k_i r)
    double *W[FACT_NL], *b[FACT_NL], *x[FACT_NL], *G[FACT_NL], *mask[FACT_NL]; // mask of g or NULL
} fact_case;

static int fact_k(const fact_case *c, int i) { return c->in[i] > c->out[i] ? c->in[i] / c->out[i] : c->out[i] / c->in[i]; }

// y_i (N,out) of linear i; returns sum(G_i * y_i).
static double fact_ref1(const fact_case *c, int i, double *y) {
    int N = c->N, r = c->r, d = c->d, in = c->in[i], out = c->out[i], k = fact_k(c, i), kr = k * r;
    int reduce = in > out;
    double *M = pb_xcalloc((size_t)r * kr, sizeof(double));
    for (int a = 0; a < r; a++) // M[a][b k + j] = sum_c C[a][b][c] P[c][j] (TK), or the core (TT)
        for (int cc = 0; cc < kr; cc++) {
            if (!c->tk) { M[(size_t)a * kr + cc] = c->own[i][(size_t)a * kr + cc]; continue; }
            int bb = cc / k, j = cc % k;
            double acc = 0;
            for (int t = 0; t < r; t++) acc += c->C[((size_t)a * r + bb) * r + t] * c->own[i][(size_t)t * k + j];
            M[(size_t)a * kr + cc] = acc;
        }
    double L = 0;
    double *h = pb_xmalloc((size_t)kr * sizeof(double)), *g = pb_xmalloc((size_t)kr * sizeof(double));
    for (int n = 0; n < N; n++) {
        const double *xn = c->x[i] + (size_t)n * in;
        double *yn = y + (size_t)n * out;
        for (int o = 0; o < out; o++) {
            double acc = c->b[i][o];
            for (int t = 0; t < in; t++) acc += xn[t] * c->W[i][(size_t)o * in + t];
            yn[o] = acc;
        }
        if (!reduce) { // h = U x; g = Mᵀ h (kr); output block j, channel o: s sum_b V[o][b] g[j r + b]
            for (int a = 0; a < r; a++) {
                h[a] = 0;
                for (int t = 0; t < d; t++) h[a] += c->U[(size_t)a * d + t] * xn[t];
            }
            for (int cc = 0; cc < kr; cc++) {
                g[cc] = 0;
                for (int a = 0; a < r; a++) g[cc] += h[a] * M[(size_t)a * kr + cc];
                if (c->mask[i]) g[cc] *= c->mask[i][(size_t)n * kr + cc];
            }
            for (int j = 0; j < k; j++)
                for (int o = 0; o < d; o++) {
                    double acc = 0;
                    for (int bb = 0; bb < r; bb++) acc += c->V[(size_t)o * r + bb] * g[j * r + bb];
                    yn[j * d + o] += c->s * acc;
                }
        } else { // u[j r + a] = U x_j; g[a] = sum_c M[a][c] u[c]; y[o] += s sum_a V[o][a] g[a]
            for (int j = 0; j < k; j++)
                for (int a = 0; a < r; a++) {
                    h[j * r + a] = 0;
                    for (int t = 0; t < d; t++) h[j * r + a] += c->U[(size_t)a * d + t] * xn[j * d + t];
                }
            for (int a = 0; a < r; a++) {
                g[a] = 0;
                for (int cc = 0; cc < kr; cc++) g[a] += M[(size_t)a * kr + cc] * h[cc];
                if (c->mask[i]) g[a] *= c->mask[i][(size_t)n * r + a];
            }
            for (int o = 0; o < d; o++) {
                double acc = 0;
                for (int a = 0; a < r; a++) acc += c->V[(size_t)o * r + a] * g[a];
                yn[o] += c->s * acc;
            }
        }
        for (int o = 0; o < out; o++) L += c->G[i][(size_t)n * out + o] * yn[o];
    }
    free(M); free(h); free(g);
    return L;
}

static double fact_ref(const fact_case *c) {
    double L = 0;
    for (int i = 0; i < c->nl; i++) {
        double *y = pb_xmalloc((size_t)c->N * c->out[i] * sizeof(double));
        L += fact_ref1(c, i, y);
        free(y);
    }
    return L;
}

static void fact_fd(fact_case *c, double *v, size_t n, double *g) {
    for (size_t i = 0; i < n; i++) {
        double h = 1e-5 * fmax(1.0, fabs(v[i])), v0 = v[i];
        v[i] = v0 + h;
        double lp = fact_ref(c);
        v[i] = v0 - h;
        double lm = fact_ref(c);
        v[i] = v0;
        g[i] = (lp - lm) / (2 * h);
    }
}

// FD of the total loss wrt v (n) vs the engine gradient grad (n); name for the log.
static void fact_check_grad(const char *label, fact_case *c, double *v, const float *grad, size_t n, const char *name) {
    double *g = pb_xmalloc(n * sizeof(double)), gn = 0;
    fact_fd(c, v, n, g);
    float *ha = dlf(grad, n);
    double e = relerr_fd(ha, g, n);
    for (size_t k = 0; k < n; k++) gn += g[k] * g[k];
    EXPECT(gn > 0, "%s: FD gradient of %s is zero (test would be vacuous)", label, name);
    EXPECT(e <= 1e-4, "%s: d%s rel err %.3g > 1e-4", label, name, e);
    printf("  %s %.2e", name, e);
    free(g); free(ha);
}

static void test_fact(const char *label, const char *method, int D, int k, int r, float s, float dropout) {
    const int N = 5, nl = 4;
    int tk = !strcmp(method, "fact_tk");
    pb_linear ls[FACT_NL] = {make_linear(D, D, "encoder.layer.0.attention.attention.query"),
                             make_linear(D, k * D, "encoder.layer.0.intermediate.dense"),
                             make_linear(k * D, D, "encoder.layer.0.output.dense"),
                             make_linear(D, D, "encoder.layer.1.attention.attention.query")};
    pb_method_config c;
    char kv[256], err[256] = "";
    snprintf(kv, sizeof kv, "rank=%d scaling=%g dropout=%g", r, (double)s, (double)dropout);
    mc_make(&c, method, 7, kv);
    int ok = 1;
    for (int i = 0; i < nl && ok; i++) {
        ok = c.desc->attach(E, &ls[i], &c, &(pb_site){i, k * D, k * D, ls, nl}, err, sizeof err) == PB_OK;
        EXPECT(ok, "%s: attach %d: %s", label, i, err);
    }
    if (!ok) { for (int i = 0; i < nl; i++) free_linear(&ls[i]); return; }
    pb_adapter *a0 = ls[0].adapter;
    pb_fact_state *s0 = a0->state;
    // one owner: the first adapter holds U, V (C); the others only their own tensor and point at them
    int shared_ok = a0->nparams == (tk ? 4 : 3);
    for (int i = 1; i < nl; i++) {
        pb_fact_state *si = ls[i].adapter->state;
        shared_ok &= ls[i].adapter->nparams == 1 && si->sh == s0->sh;
    }
    EXPECT(shared_ok, "%s: the shared tensors are not held once by the first adapter", label);
    // init: V = 0, U kaiming (1/sqrt D), C xavier sqrt(3)/r, P xavier over the whole P (Σk = 2 + 2k
    // columns), TT cores 1/sqrt(r) (reduce: 1/sqrt(k r))
    {
        float *hv = dlf(a0->params[2].data, a0->params[2].numel), *hu = dlf(a0->params[1].data, a0->params[1].numel);
        double mv = 0, mu = 0, bu = 1.0 / sqrt((double)D);
        for (size_t i = 0; i < a0->params[2].numel; i++) mv = fmax(mv, fabs(hv[i]));
        for (size_t i = 0; i < a0->params[1].numel; i++) mu = fmax(mu, fabs(hu[i]));
        int init_ok = mv == 0 && mu <= bu && mu > 0.7 * bu;
        if (tk) {
            float *hc = dlf(a0->params[3].data, a0->params[3].numel);
            double mc = 0, bc = sqrt(3.0) / r, mp = 0, bp = sqrt(6.0 / (r + 2 + 2 * k));
            for (size_t i = 0; i < a0->params[3].numel; i++) mc = fmax(mc, fabs(hc[i]));
            for (int l = 0; l < nl; l++) {
                pb_param *P = &ls[l].adapter->params[0];
                float *hp = dlf(P->data, P->numel);
                for (size_t i = 0; i < P->numel; i++) mp = fmax(mp, fabs(hp[i]));
                free(hp);
            }
            init_ok &= mc <= bc && mc > 0.7 * bc && mp <= bp && mp > 0.5 * bp;
            free(hc);
        } else { // each core within its bound; the largest |entry| / bound over all of them near 1
            double top = 0;
            for (int l = 0; l < nl; l++) {
                pb_param *M = &ls[l].adapter->params[0];
                float *hm = dlf(M->data, M->numel);
                double mm = 0, bm = 1.0 / sqrt((double)r * (ls[l].in > ls[l].out ? k : 1));
                for (size_t i = 0; i < M->numel; i++) mm = fmax(mm, fabs(hm[i]));
                init_ok &= mm <= bm;
                top = fmax(top, mm / bm);
                free(hm);
            }
            init_ok &= top > 0.7;
        }
        EXPECT(init_ok, "%s: init is not V = 0, U / C / P (core) uniform in FacT's bounds", label);
        free(hv); free(hu);
    }
    // step 0 = pre-trained
    for (int i = 0; i < nl; i++) {
        float *W0 = dlf(ls[i].w->data, ls[i].w->numel), *b0 = dlf(ls[i].b->data, ls[i].b->numel);
        char lab[96];
        snprintf(lab, sizeof lab, "%s [%d]", label, i);
        check_step0(lab, &ls[i], W0, b0, 4);
        free(W0); free(b0);
    }
    // off init (V = 0 kills every other path)
    for (int p = 0; p < a0->nparams; p++) perturb_param(&a0->params[p], 0.3f, 1);
    for (int i = 1; i < nl; i++) perturb_param(&ls[i].adapter->params[0], 0.3f, 1);
    int nt = 0;
    pb_param *tp[FACT_NL + 3];
    for (int i = 0; i < nl; i++)
        for (int p = 0; p < ls[i].adapter->nparams; p++) tp[nt++] = &ls[i].adapter->params[p];
    for (int p = 0; p < nt; p++) pb_zero(E, tp[p]->grad, tp[p]->numel);
    fact_case rc;
    memset(&rc, 0, sizeof rc);
    rc.tk = tk; rc.nl = nl; rc.N = N; rc.r = r; rc.d = D; rc.s = s;
    float *x[FACT_NL], *y[FACT_NL], *G[FACT_NL], *dx[FACT_NL], *hx[FACT_NL], *hy[FACT_NL];
    for (int i = 0; i < nl; i++) {
        int in = ls[i].in, out = ls[i].out;
        size_t nx = (size_t)N * in, ny = (size_t)N * out;
        rc.in[i] = in; rc.out[i] = out;
        hx[i] = pb_xmalloc(nx * sizeof(float));
        float *hG = pb_xmalloc(ny * sizeof(float));
        randn(hx[i], nx, 1.0f);
        randn(hG, ny, 1.0f);
        x[i] = pb_alloc(E, nx); y[i] = pb_alloc(E, ny); G[i] = pb_alloc(E, ny); dx[i] = pb_alloc(E, nx);
        pb_upload(E, x[i], hx[i], nx);
        pb_upload(E, G[i], hG, ny);
        pb_zero(E, dx[i], nx);
        layer_forward(&ls[i], y[i], x[i], N, 1, 4321);
        rc.W[i] = dl(ls[i].w->data, ls[i].w->numel);
        rc.b[i] = dl(ls[i].b->data, ls[i].b->numel);
        rc.x[i] = pb_xmalloc(nx * sizeof(double));
        rc.G[i] = pb_xmalloc(ny * sizeof(double));
        for (size_t t = 0; t < nx; t++) rc.x[i][t] = hx[i][t];
        for (size_t t = 0; t < ny; t++) rc.G[i][t] = hG[t];
        pb_fact_state *si = ls[i].adapter->state;
        EXPECT(si->dropped == (dropout > 0), "%s: dropout ran %d, p = %g", label, si->dropped, (double)dropout);
        if (si->dropped) rc.mask[i] = dl(si->mask, (size_t)N * (si->reduce ? r : si->k * r));
        rc.own[i] = dl(ls[i].adapter->params[0].data, ls[i].adapter->params[0].numel);
        free(hG);
    }
    // backward in reverse model order, as a model runs it
    for (int i = nl - 1; i >= 0; i--) layer_backward(&ls[i], dx[i], G[i], x[i], N);
    rc.U = dl(a0->params[1].data, a0->params[1].numel);
    rc.V = dl(a0->params[2].data, a0->params[2].numel);
    if (tk) rc.C = dl(a0->params[3].data, a0->params[3].numel);
    double ef = 0, ex = 0;
    for (int i = 0; i < nl; i++) {
        size_t nx = (size_t)N * ls[i].in, ny = (size_t)N * ls[i].out;
        double *yr = pb_xmalloc(ny * sizeof(double));
        fact_ref1(&rc, i, yr);
        hy[i] = dlf(y[i], ny);
        ef = fmax(ef, relerr_fd(hy[i], yr, ny));
        double *gx = pb_xmalloc(nx * sizeof(double));
        fact_fd(&rc, rc.x[i], nx, gx);
        float *hdx = dlf(dx[i], nx);
        ex = fmax(ex, relerr_fd(hdx, gx, nx));
        free(yr); free(gx); free(hdx);
    }
    EXPECT(ef <= 1e-5, "%s: forward rel err %.3g > 1e-5", label, ef);
    EXPECT(ex <= 1e-4, "%s: dx rel err %.3g > 1e-4", label, ex);
    printf("%-28s forward %.2e  dx %.2e", label, ef, ex);
    fact_check_grad(label, &rc, rc.U, a0->params[1].grad, a0->params[1].numel, "U");
    fact_check_grad(label, &rc, rc.V, a0->params[2].grad, a0->params[2].numel, "V");
    if (tk) fact_check_grad(label, &rc, rc.C, a0->params[3].grad, a0->params[3].numel, "C");
    for (int i = 0; i < nl; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, tk ? "P%d" : "core%d", i);
        fact_check_grad(label, &rc, rc.own[i], ls[i].adapter->params[0].grad, ls[i].adapter->params[0].numel, nm);
    }
    printf("\n");
    // merge == unmerged, every linear (eval: no dropout); the merged W on copies
    double em = 0;
    float *yev[FACT_NL];
    for (int i = 0; i < nl; i++) {
        int in = ls[i].in, out = ls[i].out;
        size_t ny = (size_t)N * out;
        float *Wm = pb_alloc(E, (size_t)out * in), *ym = pb_alloc(E, ny);
        pb_copy(E, Wm, ls[i].w->data, (size_t)out * in);
        layer_forward(&ls[i], y[i], x[i], N, 0, 0);
        ls[i].adapter->vt->merge(ls[i].adapter, E, Wm, ls[i].b->data);
        pb_linear_forward(E, ym, x[i], Wm, ls[i].b->data, N, in, out);
        float *h2 = dlf(ym, ny);
        yev[i] = dlf(y[i], ny);
        em = fmax(em, relerr_ff(h2, yev[i], ny));
        free(h2);
        pb_free(E, Wm); pb_free(E, ym);
    }
    EXPECT(em <= 1e-5, "%s: merged vs unmerged rel err %.3g > 1e-5", label, em);
    // the owner freed first: the others still compute the same outputs from the handed-over tensors
    a0->vt->free(a0, E);
    ls[0].adapter = NULL;
    double eo = 0;
    for (int i = 1; i < nl; i++) {
        size_t ny = (size_t)N * ls[i].out;
        layer_forward(&ls[i], y[i], x[i], N, 0, 0);
        float *h = dlf(y[i], ny);
        eo = fmax(eo, relerr_ff(h, yev[i], ny));
        free(h);
    }
    EXPECT(eo == 0, "%s: outputs changed after the owner of U, V was freed (%.3g)", label, eo);
    printf("%-28s merge %.2e, after the owner's free %.1e\n", label, em, eo);
    for (int i = 0; i < nl; i++) {
        free(rc.W[i]); free(rc.b[i]); free(rc.x[i]); free(rc.G[i]); free(rc.mask[i]); free(rc.own[i]);
        free(hx[i]); free(hy[i]); free(yev[i]);
        pb_free(E, x[i]); pb_free(E, y[i]); pb_free(E, G[i]); pb_free(E, dx[i]);
    }
    free(rc.U); free(rc.V); free(rc.C);
    for (int i = 0; i < nl; i++) free_linear(&ls[i]);
}

// FacT's shape rule: d x d blocks (one side a multiple of the other), one d for every linear.
static void test_fact_errors(void) {
    pb_method_config c;
    char err[256] = "";
    mc_make(&c, "fact_tk", 0, "rank=2");
    EXPECT(c.desc->site_check(&c, 8, 32) == NULL && c.desc->site_check(&c, 24, 8) == NULL,
           "fact_tk refused a d x kd linear");
    EXPECT(c.desc->site_check(&c, 8, 12) != NULL, "fact_tk accepted 8 -> 12 (no d x d blocks)");
    pb_linear l = make_linear(8, 12, "encoder.layer.0.intermediate.dense");
    EXPECT(c.desc->attach(E, &l, &c, &(pb_site){0, 8, 12, NULL, 0}, err, sizeof err) == PB_ERR_ARG &&
               strstr(err, "targets") && strstr(err, "multiple"), "fact_tk 8 -> 12 attached: '%s'", err);
    free_linear(&l);
    pb_linear ls[2] = {make_linear(8, 8, "encoder.layer.0.attention.attention.query"),
                       make_linear(6, 6, "encoder.layer.0.attention.attention.key")};
    EXPECT(c.desc->attach(E, &ls[0], &c, &(pb_site){0, 8, 8, ls, 2}, err, sizeof err) == PB_OK, "attach: %s", err);
    EXPECT(c.desc->attach(E, &ls[1], &c, &(pb_site){1, 8, 8, ls, 2}, err, sizeof err) == PB_ERR_ARG &&
               strstr(err, "targets") && strstr(err, "width 8"), "fact_tk: a second d attached: '%s'", err);
    EXPECT(!ls[1].adapter, "fact_tk: refused attach left an adapter");
    free_linear(&ls[0]); free_linear(&ls[1]);
    printf("fact errors: %s\n", err);
}

int main(void) {
    char err[256];
    E = pb_engine_init(PB_DEVICE_CPU, 1, err, sizeof(err));
    if (!E) { printf("engine: %s\n", err); return 1; }
    pb_rng_seed(&R, 42);
    test_ao();
    test_aoft_clamp_count();
    test_svd();
    test_errors();
    test_dylora();
    test_adapterdrop();
    //          label                     method   in  out r  init        variant    gate     drop rs alpha
    test_method("lora kaiming",           "lora",  12, 10, 3, "kaiming",  "lora",    "lambda", 0.0f, 0, 6);
    test_method("lora gaussian rslora",   "lora",  12, 10, 4, "gaussian", "lora",    "lambda", 0.0f, 1, 8);
    test_method("lora dropout 0.3",       "lora",  12, 10, 3, "kaiming",  "lora",    "lambda", 0.3f, 0, 0);
    test_method("dora kaiming",           "dora",  12, 10, 3, "kaiming",  "lora",    "lambda", 0.0f, 0, 6);
    test_method("dora gaussian rslora",   "dora",  12, 10, 4, "gaussian", "lora",    "lambda", 0.0f, 1, 8);
    test_method("dora dropout 0.3",       "dora",  12, 10, 3, "kaiming",  "lora",    "lambda", 0.3f, 0, 0);
    test_method("dora + trainable bias",  "dora",  12, 10, 3, "kaiming",  "bias",    "lambda", 0.0f, 0, 4);
    test_method("dora dropout + bias",    "dora",  12, 10, 3, "kaiming",  "bias",    "lambda", 0.3f, 0, 4);
    test_method("adapter_h relu s=1",     "adapter_h", 12, 10, 4, "",      "",        "relu",   0.0f, 0, 1.0f);
    test_method("adapter_h gelu s=0.5 m>D", "adapter_h", 6, 5, 9, "",      "",        "gelu",   0.0f, 0, 0.5f);
    test_method("adapter_p relu, bias trains", "adapter_p", 12, 10, 3, "",  "bias",    "relu",   0.0f, 0, 2.0f);
    test_adaptformer();
    test_method("hta lora D'=1",          "hta",   8, 8, 1, "",             "",        "",       0.0f, 0, 0.0f);
    test_method("hta lora D'=0",          "hta",   6, 6, 0, "",             "",        "",       0.0f, 0, 0.0f);
    test_method("hta adapter 12->9 D'=2", "hta",   12, 9, 2, "",            "adapter", "",       0.0f, 0, 0.0f);
    test_method("hta lora, bias trains",  "hta",   7, 7, 1, "",             "bias",    "",       0.0f, 0, 0.0f);
    test_method("fourierft n=20",         "fourierft", 12, 10, 20, "",     "",        "",       0.0f, 0, 150.0f);
    test_method("fourierft 7->13 n=40 s=5", "fourierft", 7, 13, 40, "",     "5",       "",       0.0f, 0, 30.0f);
    test_method("fourierft n = in out",   "fourierft", 6, 5, 30, "",       "",        "",       0.0f, 0, 20.0f);
    test_method("vera r=4",               "vera",  12, 10, 4, "",         "lora",    "",       0.0f, 0, 0.1f);
    test_method("vera r=16 > in, dropout", "vera", 12, 10, 16, "",        "lora",    "",       0.3f, 0, -0.4f);
    test_method("pissa svd",              "pissa", 12, 10, 3, "svd",      "lora",    "lambda", 0.0f, 0, 6);
    test_method("pissa niter_2",          "pissa", 12, 10, 3, "niter_2",  "lora",    "lambda", 0.0f, 0, 0);
    test_method("svfit r=4",              "svfit", 12, 10, 4, "",         "lora",    "lambda", 0.0f, 0, 0);
    test_method("svfit r=max",            "svfit", 12, 10, 10, "",        "lora",    "lambda", 0.0f, 0, 0);
    test_method("aoft lora lambda",       "aoft",  12, 10, 3, "",         "lora",    "lambda", 0.0f, 0, 0);
    test_method("aoft lora scalar",       "aoft",  12, 10, 3, "",         "lora",    "scalar", 0.0f, 0, 0);
    test_method("aoft adapter lambda",    "aoft",  12, 10, 3, "",         "adapter", "lambda", 0.0f, 0, 0);
    test_method("aoft adapter scalar",    "aoft",  12, 10, 3, "",         "adapter", "scalar", 0.0f, 0, 0);
    test_method("ssf after a linear",     "ssf",   12, 10, 0, "",         "",        "",       0.0f, 0, 0);
    test_method("ssf, bias trains",       "ssf",   9, 11, 0, "",          "bias",    "",       0.0f, 0, 0);
    test_ssf_norm("ssf after a LayerNorm", 0);
    test_ssf_norm("ssf norm, own affine trains", 1);
    test_method("ia3 output scaling",     "ia3",   12, 10, 0, "",         "lora",    "",       0.0f, 0, 0);
    test_method("ia3 input scaling",      "ia3",   12, 10, 0, "",         "adapter", "",       0.0f, 0, 0);
    //       label                        method     D  k  r  s     dropout
    test_fact("fact_tk r=3 k=4",            "fact_tk", 6, 4, 3, 10.0f, 0.0f);
    test_fact("fact_tk r=4 k=2 dropout",    "fact_tk", 5, 2, 4, 0.7f, 0.3f);
    test_fact("fact_tk r=8 > D, k=3",       "fact_tk", 4, 3, 8, 1.0f, 0.0f);
    test_fact("fact_tt r=3 k=4",            "fact_tt", 6, 4, 3, 1.0f, 0.0f);
    test_fact("fact_tt r=3 k=2 dropout",    "fact_tt", 6, 2, 3, 3.0f, 0.4f);
    test_fact_errors();
    pb_engine_free(E);
    printf(pb_test_fails ? "test_methods: %d FAILED\n" : "test_methods: all passed\n", pb_test_fails);
    return pb_test_fails ? 1 : 0;
}
