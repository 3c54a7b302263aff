// backend.h: the table a backend (engine/cpu, engine/cuda) fills so that engine/ops.c can dispatch
// every pb_* op of engine/ops.h to it, plus the engine struct both sides see.
// defines: pb_backend, struct pb_engine, pb_cpu_backend, pb_cuda_backend, pb_hash_u64,
//          pb_dropout_keep, pb_ao_c
//
// Each op pointer has exactly the signature of the ops.h function of the same name without the
// pb_ prefix (so pb_linear_forward -> linear_forward). ops.c validates nothing backend-specific:
// the backend receives the arguments as given. Host-only code (pb_lr_at, pb_rng_*) is not here.
#ifndef PB_BACKEND_H
#define PB_BACKEND_H

#include "ops.h"

#if defined(__CUDACC__)
#define PB_HD __host__ __device__
#else
#define PB_HD
#endif

typedef struct pb_backend {
    const char *name; // "cpu", "cuda"

    // Lifecycle. init fills e->state (backend-owned; scratch, handles) and e->desc; returns
    // PB_OK or a status with a message in err. free_state releases e->state (called once).
    pb_status (*init)(pb_engine *e, char *err, size_t errlen);
    void (*free_state)(pb_engine *e);

    // Buffers
    float *(*alloc)(pb_engine *e, size_t n);
    int32_t *(*alloc_i32)(pb_engine *e, size_t n);
    void (*free)(pb_engine *e, void *p);
    void (*upload)(pb_engine *e, float *dst, const float *host_src, size_t n);
    void (*download)(pb_engine *e, float *host_dst, const float *src, size_t n);
    void (*upload_i32)(pb_engine *e, int32_t *dst, const int32_t *host_src, size_t n);
    void (*download_i32)(pb_engine *e, int32_t *host_dst, const int32_t *src, size_t n);
    void (*zero)(pb_engine *e, float *p, size_t n);
    void (*copy)(pb_engine *e, float *dst, const float *src, size_t n);
    void (*fill)(pb_engine *e, float *p, float value, size_t n);
    void (*sync)(pb_engine *e);
    // Optional (NULL: not tracked): device memory the engine holds, in bytes (buffers + scratch),
    // now and at its peak since init.
    void (*memory)(pb_engine *e, size_t *current, size_t *peak);

    // Dense linear algebra
    void (*gemm)(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    void (*linear_forward)(pb_engine *e, float *out, const float *inp, const float *w,
                           const float *bias, int N, int C, int OC);
    void (*linear_backward)(pb_engine *e, float *dinp, float *dw, float *dbias, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC);

    // Embeddings
    void (*patches_forward)(pb_engine *e, float *cols, const float *img, int B, int Cin, int H,
                            int W, int P);
    void (*patches_backward)(pb_engine *e, float *dimg, const float *dcols, int B, int Cin, int H,
                             int W, int P);
    void (*vit_tokens_forward)(pb_engine *e, float *out, const float *patch, const float *cls,
                               const float *pos, int B, int T, int C);
    void (*vit_tokens_backward)(pb_engine *e, float *dpatch, float *dcls, float *dpos,
                                const float *dout, int B, int T, int C);
    void (*embedding_forward)(pb_engine *e, float *out, const int32_t *ids, const float *table,
                              int N, int C, int rows);
    void (*embedding_backward)(pb_engine *e, float *dtable, const float *dout, const int32_t *ids,
                               int N, int C, int rows);
    void (*roberta_positions)(pb_engine *e, int32_t *pos, const int32_t *ids, int B, int T,
                              int pad);

    // Normalisation and activations
    void (*layernorm_forward)(pb_engine *e, float *out, float *mean, float *rstd,
                              const float *inp, const float *w, const float *b, int N, int C,
                              float eps);
    void (*layernorm_backward)(pb_engine *e, float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, int N, int C);
    void (*gelu_forward)(pb_engine *e, float *out, const float *inp, size_t n);
    void (*gelu_backward)(pb_engine *e, float *dinp, const float *dout, const float *inp,
                          size_t n);
    void (*tanh_forward)(pb_engine *e, float *out, const float *inp, size_t n);
    void (*tanh_backward)(pb_engine *e, float *dinp, const float *dout, const float *out,
                          size_t n);
    void (*relu_forward)(pb_engine *e, float *out, const float *inp, size_t n);
    void (*relu_backward)(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n);
    void (*add)(pb_engine *e, float *out, const float *a, const float *b, size_t n);
    void (*axpy)(pb_engine *e, float *y, float alpha, const float *x, size_t n);
    void (*scale)(pb_engine *e, float *out, const float *inp, float scale, size_t n);
    void (*mul_cols)(pb_engine *e, float *out, const float *inp, const float *s, int N, int C);
    void (*mul_cols_reduce)(pb_engine *e, float *ds, const float *a, const float *b, int N, int C);
    void (*row_norms)(pb_engine *e, float *nrm, const float *A, int rows, int cols);
    void (*div)(pb_engine *e, float *out, const float *a, const float *b, size_t n);
    void (*ao_forward)(pb_engine *e, float *AO, const float *q, int D, int d, int32_t *clamps);
    void (*ao_backward)(pb_engine *e, float *dq, const float *q, const float *G, int D, int d);
    void (*dropout_forward)(pb_engine *e, float *out, float *mask, const float *inp, float p,
                            uint64_t seed, size_t n);
    void (*dropout_backward)(pb_engine *e, float *dinp, const float *dout, const float *mask,
                             size_t n);

    // Attention
    void (*attention_forward)(pb_engine *e, float *out, float *att, float *attd, const float *q,
                              const float *k, const float *v, const int32_t *keymask, int B,
                              int T, int NH, int HS, float dropout_p, uint64_t seed);
    void (*attention_backward)(pb_engine *e, float *dq, float *dk, float *dv, const float *dout,
                               const float *q, const float *k, const float *v, const float *att,
                               const float *attd, int B, int T, int NH, int HS, float dropout_p,
                               uint64_t seed);
    void (*take_token_forward)(pb_engine *e, float *out, const float *inp, int B, int T, int C,
                               int t);
    void (*take_token_backward)(pb_engine *e, float *dinp, const float *dout, int B, int T, int C,
                                int t);

    // Losses and reductions
    void (*xent_forward)(pb_engine *e, float *probs, float *loss_host, const float *logits,
                         const int32_t *labels, int B, int V, float smoothing);
    void (*xent_backward)(pb_engine *e, float *dlogits, const float *probs, const int32_t *labels,
                          int B, int V, float smoothing);
    void (*mse_forward)(pb_engine *e, float *loss_host, const float *pred, const float *target,
                        int B, int V);
    void (*mse_backward)(pb_engine *e, float *dpred, const float *pred, const float *target, int B,
                         int V);
    void (*argmax_rows)(pb_engine *e, int32_t *pred_host, const float *logits, int B, int V);
    int (*has_nonfinite)(pb_engine *e, const float *p, size_t n);
    double (*sumsq)(pb_engine *e, const float *p, size_t n);

    // Optimizer
    void (*adamw_step)(pb_engine *e, float *p, const float *g, float *m, float *v, size_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       int step);
} pb_backend;

// The engine handle. Owned by the caller of pb_engine_init; backends read device/threads and own
// `state`.
struct pb_engine {
    pb_device device;
    int threads;            // worker threads (CPU: OpenMP + OpenBLAS)
    const pb_backend *be;   // dispatch table (static storage, never freed)
    void *state;            // backend-private (scratch, BLAS handles, streams)
    char desc[256];         // filled by be->init, returned by pb_engine_describe
    struct pb_prof *prof;   // per-op timing (ops.c), NULL unless pb_engine_profile(e, 1)
};

// The CPU backend (engine/cpu), always built.
const pb_backend *pb_cpu_backend(void);
// The CUDA backend, chosen at link time (CMakeLists.txt): engine/cuda/*.cu when nvcc is found,
// else engine/cuda/cuda_stub.c (init fails: built without CUDA); tests/cudaemu for the emulator.
const pb_backend *pb_cuda_backend(void);

// ----------------------------------------------------------------------------
// Counter-based randomness shared by every backend so dropout masks are identical on the CPU and
// the GPU: element i of a dropout call with seed s keeps iff
// u(s, i) = (pb_hash_u64(s, i) >> 40) * 2^-24 >= p.

// A stateless 64-bit mix of (seed, counter): splitmix64's finaliser applied to a Weyl step, twice.
static inline PB_HD uint64_t pb_hash_u64(uint64_t seed, uint64_t counter) {
    uint64_t z = seed ^ 0x243F6A8885A308D3ULL;
    z += (counter + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// 1 if element `counter` survives dropout with probability p (uniform u in [0,1) with 24 bits,
// exactly representable in float; keep iff u >= p).
static inline PB_HD int pb_dropout_keep(uint64_t seed, uint64_t counter, float p) {
    float u = (float)(pb_hash_u64(seed, counter) >> 40) * (1.0f / 16777216.0f);
    return u >= p;
}

// AOFT's c = 1 + q0 clamped to |c| >= PB_AO_CLAMP (sign kept, 0 -> +); *clamped is set when the
// clamp is active. Shared so the CPU and CUDA AO(q) ops clamp identically (ops.h pb_ao_forward).
static inline PB_HD double pb_ao_c(float q0, int *clamped) {
    double c = 1.0 + (double)q0;
    *clamped = (c < 0 ? -c : c) < PB_AO_CLAMP;
    if (*clamped) c = c < 0 ? -PB_AO_CLAMP : PB_AO_CLAMP;
    return c;
}

#endif
