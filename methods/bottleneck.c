// bottleneck.c: the bottleneck module the adapter methods share (methods_internal.h): on an input
// u (N,D),
//   h = u W_dᵀ + b_d (N,m),   a = act(h),   out += s (a W_uᵀ + b_u) (N,D)
// with W_d (m,D), b_d (m), W_u (D,m), b_u (D) trainable. Houlsby / Pfeiffer (adapter_h.c,
// adapter_p.c) run it sequentially on a linear's output z (y = z + s B(z): the layer rewrites dy),
// AdaptFormer (adaptformer.c) in parallel with the FFN. Nonlinear: no merge.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

void pb_bottleneck_init(pb_engine *e, pb_adapter *a, pb_bottleneck *b, int D, int m, const pb_method_config *c,
                        int index) {
    b->D = D;
    b->m = m;
    b->s = (float)pb_mc_num(c, "scaling");
    b->gelu = !strcmp(pb_mc_str(c, "act"), "gelu");
    pb_param *Wd = pb_adapter_param(e, a, 0, "adapter_down.weight", 2, (int64_t[]){m, D}, 0);
    pb_adapter_param(e, a, 1, "adapter_down.bias", 1, (int64_t[]){m}, 1);
    pb_param *Wu = pb_adapter_param(e, a, 2, "adapter_up.weight", 2, (int64_t[]){D, m}, 0);
    pb_adapter_param(e, a, 3, "adapter_up.bias", 1, (int64_t[]){D}, 1);
    uint64_t seed = pb_method_seed(c->seed, index, 0xb07);
    if (!strcmp(pb_mc_str(c, "init"), "houlsby")) { // near-identity: both weights N(0, 0.01²)
        pb_rng r;
        pb_rng_seed(&r, seed);
        size_t n = (size_t)m * D;
        float *h = pb_xmalloc(n * sizeof(float));
        for (int k = 0; k < 2; k++) {
            for (size_t i = 0; i < n; i++) h[i] = 0.01f * pb_rng_normal(&r);
            pb_upload(e, k ? Wu->data : Wd->data, h, n);
        }
        free(h);
    } else { // "lora" (AdaptFormer's): W_d kaiming-uniform, W_u = 0: step 0 is the pre-trained function
        pb_lora_init_A(e, Wd->data, m, D, 0, seed);
    }
}

void pb_bottleneck_forward(pb_adapter *a, pb_engine *e, pb_bottleneck *b, const float *u, float *out, int N) {
    size_t nd = (size_t)N * b->D, nm = (size_t)N * b->m;
    pb_grow(e, &b->u, &b->cap_u, nd);
    pb_grow(e, &b->h, &b->cap_h, nm);
    pb_grow(e, &b->act, &b->cap_act, nm);
    pb_grow(e, &b->t, &b->cap_t, nd);
    pb_copy(e, b->u, u, nd); // u may be out (sequential): saved before out changes
    pb_linear_forward(e, b->h, b->u, a->params[0].data, a->params[1].data, N, b->D, b->m);
    if (b->gelu) pb_gelu_forward(e, b->act, b->h, nm);
    else pb_relu_forward(e, b->act, b->h, nm);
    pb_linear_forward(e, b->t, b->act, a->params[2].data, a->params[3].data, N, b->m, b->D);
    pb_axpy(e, out, b->s, b->t, nd);
}

void pb_bottleneck_backward(pb_adapter *a, pb_engine *e, pb_bottleneck *b, const float *dout, float *du, int N) {
    size_t nd = (size_t)N * b->D, nm = (size_t)N * b->m;
    pb_param *Wd = &a->params[0], *bd = &a->params[1], *Wu = &a->params[2], *bu = &a->params[3];
    pb_grow(e, &b->gt, &b->cap_gt, nd);
    pb_grow(e, &b->ga, &b->cap_ga, nm);
    pb_grow(e, &b->gh, &b->cap_gh, nm);
    pb_scale(e, b->gt, dout, b->s, nd); // d(a W_uᵀ + b_u); dout may be du (sequential): read first
    pb_zero(e, b->ga, nm);
    pb_linear_backward(e, b->ga, Wu->grad, bu->grad, b->gt, b->act, Wu->data, N, b->m, b->D);
    pb_zero(e, b->gh, nm);
    if (b->gelu) pb_gelu_backward(e, b->gh, b->ga, b->h, nm);
    else pb_relu_backward(e, b->gh, b->ga, b->act, nm);
    pb_linear_backward(e, du, Wd->grad, bd->grad, b->gh, b->u, Wd->data, N, b->D, b->m);
}

void pb_bottleneck_free(pb_engine *e, pb_bottleneck *b) {
    pb_free(e, b->u); pb_free(e, b->h); pb_free(e, b->act); pb_free(e, b->t);
    pb_free(e, b->gt); pb_free(e, b->ga); pb_free(e, b->gh);
}

// ----------------------------------------------------------------------------
// Sequential: y = z + s B(z) on a linear's output z (Houlsby, Pfeiffer)

static void seq_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    (void)x; (void)train; (void)seed;
    pb_bottleneck_forward(a, e, a->state, y, y, N);
}

// dz = dy + (the bottleneck's input gradient): dy is the layer's private copy, rewritten in place.
static void seq_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    (void)dx; (void)x;
    pb_bottleneck_backward(a, e, a->state, dy, dy, N);
}

static void seq_free(pb_adapter *a, pb_engine *e) {
    pb_bottleneck_free(e, a->state);
    pb_adapter_free_common(e, a);
}

static const pb_adapter_vtbl seq_vtbl = {"bottleneck", 1, seq_forward, seq_backward, NULL, seq_free, NULL};

pb_status pb_bottleneck_attach_seq(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                                   char *err, size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    pb_adapter *a = pb_adapter_new(&seq_vtbl, l, 4, sizeof(pb_bottleneck));
    pb_bottleneck_init(e, a, a->state, l->out, pb_mc_int(c, "rank"), c, site->index);
    l->adapter = a;
    return PB_OK;
}

// W_d, b_d, W_u, b_u on a D-wide stream: 2 D m + m + D; forward 4 D m (+ m + D) FLOPs per token.
double pb_bottleneck_params(const pb_method_config *c, int D) {
    double m = pb_mc_int(c, "rank");
    return 2.0 * D * m + m + D;
}
double pb_bottleneck_flops(const pb_method_config *c, int D) {
    double m = pb_mc_int(c, "rank");
    return 4.0 * D * m + 2.0 * m + 2.0 * D;
}
// The sequential adapters' descriptor hooks: one bottleneck on the linear's output (D = out).
double pb_bottleneck_site_params(const pb_method_config *c, const char *role, int in, int out) {
    (void)role; (void)in;
    return pb_bottleneck_params(c, out);
}
double pb_bottleneck_site_flops(const pb_method_config *c, const char *role, int in, int out) {
    (void)role; (void)in;
    return pb_bottleneck_flops(c, out);
}
