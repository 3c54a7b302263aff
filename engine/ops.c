// ops.c: the engine handle (device, threads, backend table) and thin dispatch wrappers for every
// op of ops.h; also the backend-independent host code: LR schedules and the host RNG.
// defines: pb_engine_init, pb_engine_free, pb_engine_device, pb_engine_threads,
//          pb_engine_describe, every pb_* op of ops.h, pb_lr_at, pb_rng_*
#include "backend.h"
#include <math.h>
#include <string.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// Engine lifecycle

// Returns a new engine (caller frees with pb_engine_free) or NULL with a message in err.
pb_engine *pb_engine_init(pb_device device, int threads, char *err, size_t errlen) {
    const pb_backend *be = NULL;
    if (device == PB_DEVICE_CPU) {
        be = pb_cpu_backend();
    } else if (device == PB_DEVICE_CUDA) {
        be = pb_cuda_backend(); // without nvcc the stub, whose init fails with the reason
    } else {
        pb_errf(PB_ERR_ARG, err, errlen, "unknown device %d", (int)device);
        return NULL;
    }
    if (threads > PB_MAX_THREADS) {
        pb_errf(PB_ERR_ARG, err, errlen, "%d threads requested; at most %d", threads, PB_MAX_THREADS);
        return NULL;
    }
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
        if (threads > PB_MAX_THREADS) threads = PB_MAX_THREADS;
    }
    pb_engine *e = pb_xcalloc(1, sizeof *e);
    e->device = device;
    e->threads = threads;
    e->be = be;
    if (be->init(e, err, errlen) != PB_OK) {
        free(e);
        return NULL;
    }
    return e;
}

void pb_engine_free(pb_engine *e) {
    if (!e) return;
    free(e->prof);
    e->be->free_state(e);
    free(e);
}

pb_device pb_engine_device(const pb_engine *e) { return e->device; }
int pb_engine_threads(const pb_engine *e) { return e->threads; }
const char *pb_engine_describe(const pb_engine *e) { return e->desc; }

int pb_engine_memory(pb_engine *e, size_t *current, size_t *peak) {
    if (!e->be->memory) return 0;
    e->be->memory(e, current, peak);
    return 1;
}

// ----------------------------------------------------------------------------
// Profiling (pb_engine_profile): when on, every op below is timed (after a device sync, so on
// CUDA it measures the op, not its launch) and GEMM-like ops also log their shapes and FLOPs.
// Off, it costs one branch per op.

#define PB_PROF_MAX_OPS 64
#define PB_PROF_MAX_GEMMS 64

typedef struct pb_prof pb_prof;
struct pb_prof {
    pb_prof_op ops[PB_PROF_MAX_OPS];
    int nops;
    pb_prof_gemm gemms[PB_PROF_MAX_GEMMS];
    int ngemms;
    long dropped_gemms; // GEMM calls whose shape did not fit the table
};

void pb_engine_profile(pb_engine *e, int on) {
    if (!on) {
        free(e->prof);
        e->prof = NULL;
        return;
    }
    if (!e->prof) e->prof = pb_xcalloc(1, sizeof *e->prof);
    memset(e->prof, 0, sizeof *e->prof);
}

int pb_engine_profile_ops(const pb_engine *e, pb_prof_op *out, int max) {
    if (!e->prof) return 0;
    int n = e->prof->nops < max ? e->prof->nops : max;
    memcpy(out, e->prof->ops, sizeof(pb_prof_op) * (size_t)n);
    return n;
}

int pb_engine_profile_gemms(const pb_engine *e, pb_prof_gemm *out, int max) {
    if (!e->prof) return 0;
    int n = e->prof->ngemms < max ? e->prof->ngemms : max;
    memcpy(out, e->prof->gemms, sizeof(pb_prof_gemm) * (size_t)n);
    return n;
}

// Logs one GEMM shape (counted per distinct shape) and returns its FLOPs (2 per multiply-add).
static double prof_gemm(pb_engine *e, int ta, int tb, int M, int N, int K, float beta) {
    pb_prof *p = e->prof;
    int i = 0;
    for (; i < p->ngemms; i++) {
        pb_prof_gemm *g = &p->gemms[i];
        if (g->ta == ta && g->tb == tb && g->M == M && g->N == N && g->K == K && g->beta == beta) break;
    }
    if (i == p->ngemms) {
        if (i == PB_PROF_MAX_GEMMS) {
            p->dropped_gemms++;
            return 2.0 * M * N * K;
        }
        p->gemms[p->ngemms++] = (pb_prof_gemm){.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .beta = beta};
    }
    p->gemms[i].calls++;
    return 2.0 * M * N * K;
}

// Adds the time since t0 (after a sync) and `flops` to op `name` (a string literal).
static void prof_add(pb_engine *e, const char *name, double flops, double t0) {
    e->be->sync(e);
    double dt = pb_now() - t0;
    pb_prof *p = e->prof;
    int i = 0;
    for (; i < p->nops; i++)
        if (p->ops[i].op == name || !strcmp(p->ops[i].op, name)) break;
    if (i == p->nops) {
        if (i == PB_PROF_MAX_OPS) return; // cannot happen: fewer ops than slots
        p->ops[p->nops++] = (pb_prof_op){.op = name};
    }
    p->ops[i].calls++;
    p->ops[i].seconds += dt;
    p->ops[i].flops += flops;
}

// Runs `call`; when profiling, times it under `name` with `flops` (evaluated only then).
#define PB_PROFILED(e, name, flops, call)                                                          \
    do {                                                                                           \
        if (!(e)->prof) {                                                                          \
            call;                                                                                  \
        } else {                                                                                   \
            double fl_ = (flops), t0_ = pb_now();                                                  \
            call;                                                                                  \
            prof_add(e, name, fl_, t0_);                                                           \
        }                                                                                          \
    } while (0)

// ----------------------------------------------------------------------------
// Dispatch wrappers: no logic beyond forwarding (and the profiler's timing).

float *pb_alloc(pb_engine *e, size_t n) { return e->be->alloc(e, n); }
int32_t *pb_alloc_i32(pb_engine *e, size_t n) { return e->be->alloc_i32(e, n); }
void pb_free(pb_engine *e, void *p) {
    if (p) e->be->free(e, p);
}
void pb_upload(pb_engine *e, float *dst, const float *src, size_t n) { PB_PROFILED(e, "upload", 0,
                e->be->upload(e, dst, src, n)); }
void pb_download(pb_engine *e, float *dst, const float *src, size_t n) { PB_PROFILED(e, "download", 0,
                e->be->download(e, dst, src, n)); }
void pb_upload_i32(pb_engine *e, int32_t *dst, const int32_t *src, size_t n) {
    PB_PROFILED(e, "upload_i32", 0, e->be->upload_i32(e, dst, src, n));
}
void pb_download_i32(pb_engine *e, int32_t *dst, const int32_t *src, size_t n) {
    PB_PROFILED(e, "download_i32", 0, e->be->download_i32(e, dst, src, n));
}
void pb_zero(pb_engine *e, float *p, size_t n) { PB_PROFILED(e, "zero", 0, e->be->zero(e, p, n)); }
void pb_copy(pb_engine *e, float *dst, const float *src, size_t n) { PB_PROFILED(e, "copy", 0,
                e->be->copy(e, dst, src, n)); }
void pb_fill(pb_engine *e, float *p, float value, size_t n) { PB_PROFILED(e, "fill", 0,
                e->be->fill(e, p, value, n)); }
void pb_sync(pb_engine *e) { e->be->sync(e); }

void pb_gemm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    PB_PROFILED(e, "gemm", prof_gemm(e, transA, transB, M, N, K, beta),
                e->be->gemm(e, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}
void pb_linear_forward(pb_engine *e, float *out, const float *inp, const float *w,
                       const float *bias, int N, int C, int OC) {
    PB_PROFILED(e, "linear_forward", prof_gemm(e, 0, 1, N, OC, C, bias ? 1.0f : 0.0f),
                e->be->linear_forward(e, out, inp, w, bias, N, C, OC));
}
void pb_linear_backward(pb_engine *e, float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC) {
    PB_PROFILED(e, "linear_backward", (dinp ? prof_gemm(e, 0, 0, N, C, OC, 1.0f) : 0) + (dw ? prof_gemm(e, 1, 0, OC, C, N, 1.0f) : 0),
                e->be->linear_backward(e, dinp, dw, dbias, dout, inp, w, N, C, OC));
}

void pb_patches_forward(pb_engine *e, float *cols, const float *img, int B, int Cin, int H, int W,
                        int P) {
    PB_CHECK(P > 0 && (H / P) * P == H && (W / P) * P == W, "image %dx%d not divisible by patch %d", H, W, P);
    PB_PROFILED(e, "patches_forward", 0, e->be->patches_forward(e, cols, img, B, Cin, H, W, P));
}
void pb_patches_backward(pb_engine *e, float *dimg, const float *dcols, int B, int Cin, int H,
                         int W, int P) {
    PB_CHECK(P > 0 && (H / P) * P == H && (W / P) * P == W, "image %dx%d not divisible by patch %d", H, W, P);
    PB_PROFILED(e, "patches_backward", 0, e->be->patches_backward(e, dimg, dcols, B, Cin, H, W, P));
}
void pb_vit_tokens_forward(pb_engine *e, float *out, const float *patch, const float *cls,
                           const float *pos, int B, int T, int C) {
    PB_PROFILED(e, "vit_tokens_forward", 0,
                e->be->vit_tokens_forward(e, out, patch, cls, pos, B, T, C));
}
void pb_vit_tokens_backward(pb_engine *e, float *dpatch, float *dcls, float *dpos,
                            const float *dout, int B, int T, int C) {
    PB_PROFILED(e, "vit_tokens_backward", 0,
                e->be->vit_tokens_backward(e, dpatch, dcls, dpos, dout, B, T, C));
}
void pb_embedding_forward(pb_engine *e, float *out, const int32_t *ids, const float *table, int N,
                          int C, int rows) {
    PB_PROFILED(e, "embedding_forward", 0,
                e->be->embedding_forward(e, out, ids, table, N, C, rows));
}
void pb_embedding_backward(pb_engine *e, float *dtable, const float *dout, const int32_t *ids,
                           int N, int C, int rows) {
    PB_PROFILED(e, "embedding_backward", 0,
                e->be->embedding_backward(e, dtable, dout, ids, N, C, rows));
}
void pb_roberta_positions(pb_engine *e, int32_t *pos, const int32_t *ids, int B, int T, int pad) {
    PB_PROFILED(e, "roberta_positions", 0, e->be->roberta_positions(e, pos, ids, B, T, pad));
}

void pb_layernorm_forward(pb_engine *e, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps) {
    PB_PROFILED(e, "layernorm_forward", 0,
                e->be->layernorm_forward(e, out, mean, rstd, inp, w, b, N, C, eps));
}
void pb_layernorm_backward(pb_engine *e, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C) {
    PB_PROFILED(e, "layernorm_backward", 0,
                e->be->layernorm_backward(e, dinp, dw, db, dout, inp, w, mean, rstd, N, C));
}
void pb_gelu_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    PB_PROFILED(e, "gelu_forward", 0, e->be->gelu_forward(e, out, inp, n));
}
void pb_gelu_backward(pb_engine *e, float *dinp, const float *dout, const float *inp, size_t n) {
    PB_PROFILED(e, "gelu_backward", 0, e->be->gelu_backward(e, dinp, dout, inp, n));
}
void pb_tanh_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    PB_PROFILED(e, "tanh_forward", 0, e->be->tanh_forward(e, out, inp, n));
}
void pb_tanh_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n) {
    PB_PROFILED(e, "tanh_backward", 0, e->be->tanh_backward(e, dinp, dout, out, n));
}
void pb_relu_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    PB_PROFILED(e, "relu_forward", 0, e->be->relu_forward(e, out, inp, n));
}
void pb_relu_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n) {
    PB_PROFILED(e, "relu_backward", 0, e->be->relu_backward(e, dinp, dout, out, n));
}
void pb_add(pb_engine *e, float *out, const float *a, const float *b, size_t n) {
    PB_PROFILED(e, "add", 0, e->be->add(e, out, a, b, n));
}
void pb_axpy(pb_engine *e, float *y, float alpha, const float *x, size_t n) {
    PB_PROFILED(e, "axpy", 0, e->be->axpy(e, y, alpha, x, n));
}
void pb_scale(pb_engine *e, float *out, const float *inp, float scale, size_t n) {
    PB_PROFILED(e, "scale", 0, e->be->scale(e, out, inp, scale, n));
}
void pb_mul_cols(pb_engine *e, float *out, const float *inp, const float *s, int N, int C) {
    PB_PROFILED(e, "mul_cols", 0, e->be->mul_cols(e, out, inp, s, N, C));
}
void pb_mul_cols_reduce(pb_engine *e, float *ds, const float *a, const float *b, int N, int C) {
    PB_PROFILED(e, "mul_cols_reduce", 0, e->be->mul_cols_reduce(e, ds, a, b, N, C));
}
void pb_row_norms(pb_engine *e, float *nrm, const float *A, int rows, int cols) {
    PB_PROFILED(e, "row_norms", 0, e->be->row_norms(e, nrm, A, rows, cols));
}
void pb_div(pb_engine *e, float *out, const float *a, const float *b, size_t n) {
    PB_PROFILED(e, "div", 0, e->be->div(e, out, a, b, n));
}
void pb_ao_forward(pb_engine *e, float *AO, const float *q, int D, int d, int32_t *clamps) {
    PB_PROFILED(e, "ao_forward", 0, e->be->ao_forward(e, AO, q, D, d, clamps));
}
void pb_ao_backward(pb_engine *e, float *dq, const float *q, const float *G, int D, int d) {
    PB_PROFILED(e, "ao_backward", 0, e->be->ao_backward(e, dq, q, G, D, d));
}
void pb_dropout_forward(pb_engine *e, float *out, float *mask, const float *inp, float p,
                        uint64_t seed, size_t n) {
    PB_CHECK(p >= 0.0f && p < 1.0f, "dropout p=%g outside [0,1)", (double)p);
    PB_PROFILED(e, "dropout_forward", 0, e->be->dropout_forward(e, out, mask, inp, p, seed, n));
}
void pb_dropout_backward(pb_engine *e, float *dinp, const float *dout, const float *mask, size_t n) {
    PB_PROFILED(e, "dropout_backward", 0, e->be->dropout_backward(e, dinp, dout, mask, n));
}

void pb_attention_forward(pb_engine *e, float *out, float *att, float *attd, const float *q,
                          const float *k, const float *v, const int32_t *keymask, int B, int T,
                          int NH, int HS, float dropout_p, uint64_t seed) {
    PB_CHECK(dropout_p >= 0.0f && dropout_p < 1.0f, "attention dropout p=%g", (double)dropout_p);
    PB_CHECK(dropout_p == 0.0f || attd, "attention dropout needs an attd buffer");
    PB_PROFILED(e, "attention_forward", 0,
                e->be->attention_forward(e, out, att, attd, q, k, v, keymask, B, T, NH, HS, dropout_p, seed));
}
void pb_attention_backward(pb_engine *e, float *dq, float *dk, float *dv, const float *dout,
                           const float *q, const float *k, const float *v, const float *att,
                           const float *attd, int B, int T, int NH, int HS, float dropout_p,
                           uint64_t seed) {
    if (!dq && !dk && !dv) return;
    PB_CHECK(dq && dk && dv, "attention backward needs all of dq, dk, dv or none");
    PB_PROFILED(e, "attention_backward", 0,
                e->be->attention_backward(e, dq, dk, dv, dout, q, k, v, att, attd, B, T, NH, HS, dropout_p,
                              seed));
}
void pb_take_token_forward(pb_engine *e, float *out, const float *inp, int B, int T, int C, int t) {
    PB_CHECK(t >= 0 && t < T, "token %d outside [0,%d)", t, T);
    PB_PROFILED(e, "take_token_forward", 0, e->be->take_token_forward(e, out, inp, B, T, C, t));
}
void pb_take_token_backward(pb_engine *e, float *dinp, const float *dout, int B, int T, int C,
                            int t) {
    PB_CHECK(t >= 0 && t < T, "token %d outside [0,%d)", t, T);
    PB_PROFILED(e, "take_token_backward", 0, e->be->take_token_backward(e, dinp, dout, B, T, C, t));
}

void pb_xent_forward(pb_engine *e, float *probs, float *loss_host, const float *logits,
                     const int32_t *labels, int B, int V, float smoothing) {
    PB_PROFILED(e, "xent_forward", 0,
                e->be->xent_forward(e, probs, loss_host, logits, labels, B, V, smoothing));
}
void pb_xent_backward(pb_engine *e, float *dlogits, const float *probs, const int32_t *labels,
                      int B, int V, float smoothing) {
    PB_PROFILED(e, "xent_backward", 0,
                e->be->xent_backward(e, dlogits, probs, labels, B, V, smoothing));
}
void pb_mse_forward(pb_engine *e, float *loss_host, const float *pred, const float *target, int B,
                    int V) {
    PB_PROFILED(e, "mse_forward", 0, e->be->mse_forward(e, loss_host, pred, target, B, V));
}
void pb_mse_backward(pb_engine *e, float *dpred, const float *pred, const float *target, int B,
                     int V) {
    PB_PROFILED(e, "mse_backward", 0, e->be->mse_backward(e, dpred, pred, target, B, V));
}
void pb_argmax_rows(pb_engine *e, int32_t *pred_host, const float *logits, int B, int V) {
    PB_PROFILED(e, "argmax_rows", 0, e->be->argmax_rows(e, pred_host, logits, B, V));
}
int pb_has_nonfinite(pb_engine *e, const float *p, size_t n) {
    double t0 = e->prof ? pb_now() : 0;
    int r = e->be->has_nonfinite(e, p, n);
    if (e->prof) prof_add(e, "has_nonfinite", 0, t0);
    return r;
}
double pb_sumsq(pb_engine *e, const float *p, size_t n) {
    double t0 = e->prof ? pb_now() : 0;
    double r = e->be->sumsq(e, p, n);
    if (e->prof) prof_add(e, "sumsq", 0, t0);
    return r;
}

void pb_adamw_step(pb_engine *e, float *p, const float *g, float *m, float *v, size_t n, float lr,
                   float beta1, float beta2, float eps, float weight_decay, int step) {
    PB_CHECK(step >= 1, "AdamW step is 1-based, got %d", step);
    PB_PROFILED(e, "adamw_step", 0,
                e->be->adamw_step(e, p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, step));
}

// ----------------------------------------------------------------------------
// LR schedules, as transformers' get_{constant,linear,cosine}_schedule_with_warmup
// (cosine with num_cycles = 0.5). Computed in double, returned as float.

float pb_lr_at(pb_sched_kind kind, float base_lr, int step, int warmup, int total) {
    if (step < warmup) return (float)((double)base_lr * (double)step / (double)PB_MAX(1, warmup));
    double f = 1.0;
    double progress = (double)(step - warmup) / (double)PB_MAX(1, total - warmup);
    switch (kind) {
    case PB_SCHED_CONSTANT: f = 1.0; break;
    case PB_SCHED_LINEAR: f = PB_MAX(0.0, (double)(total - step) / (double)PB_MAX(1, total - warmup)); break;
    case PB_SCHED_COSINE: f = PB_MAX(0.0, 0.5 * (1.0 + cos(M_PI * 2.0 * 0.5 * progress))); break;
    }
    return (float)((double)base_lr * f);
}

// ----------------------------------------------------------------------------
// Host RNG: xoshiro256** seeded by splitmix64.

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void pb_rng_seed(pb_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pb_rng_u64(pb_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

// 24 random bits: exactly representable, strictly below 1.
float pb_rng_uniform(pb_rng *r) { return (float)(pb_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

// Box-Muller in double from two fresh draws (no cached second value, so the sequence depends
// only on the number of calls).
float pb_rng_normal(pb_rng *r) {
    double u1 = ((double)(pb_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0); // (0,1]
    double u2 = (double)(pb_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);         // [0,1)
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

// Unbiased integer in [0,n) by rejection (Lemire's multiply-shift with threshold).
uint32_t pb_rng_below(pb_rng *r, uint32_t n) {
    PB_CHECK(n > 0, "pb_rng_below(0)");
    uint32_t thresh = (uint32_t)(-n) % n;
    for (;;) {
        uint64_t m = (uint64_t)(uint32_t)(pb_rng_u64(r) >> 32) * (uint64_t)n;
        if ((uint32_t)m >= thresh) return (uint32_t)(m >> 32);
    }
}
