// cpu.h: internals shared by the CPU backend's files (not a public header).
// defines: pb_cpu_state, pb_cpu_scratch, PB_OMP_MIN, the per-file op declarations the table
//          in cpu_backend.c points at.
#ifndef PB_CPU_H
#define PB_CPU_H

#include "../backend.h"
#include "../system.h"
#include <cblas.h>

// Elementwise loops shorter than this run on one thread (fork/join costs more than the work).
#define PB_OMP_MIN 32768

// Loops that call expf/erfcf vectorise through glibc's libmvec under GCC (`omp declare simd`
// on the libm prototypes, see cpu_nn.c). Clang does not use those clones (it would need
// -fveclib=libmvec) and warns that the simd request failed, so the hint is GCC-only.
#if defined(__GNUC__) && !defined(__clang__)
#define PB_MATH_SIMD 1
#define PB_OMP_SIMD_MATH _Pragma("omp simd")
#else
#define PB_MATH_SIMD 0
#define PB_OMP_SIMD_MATH
#endif

// ----------------------------------------------------------------------------
// GEMM providers (cpu_gemm.c, gemm_openblas.c, gemm_onednn.c). A provider is one row-major
// single-threaded sgemm plus what the library says of itself; the engine does the threading
// (cpu_dense.c), so every provider shares the one OpenMP pool and the same blocking.
typedef void (*pb_sgemm_fn)(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                            int lda, const float *B, int ldb, float beta, float *C, int ldc);
typedef struct pb_gemm_provider {
    const char *name; // "openblas", "onednn"
    // C (M,N) = alpha op(A) op(B) + beta C on the calling thread only (also inside a parallel
    // region; a call from several threads at once on disjoint C is allowed).
    pb_sgemm_fn sgemm;
    // The same with the library's own threading on `threads` threads (bench ceilings only).
    void (*sgemm_threaded)(int threads, int transA, int transB, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C,
                           int ldc);
    // Fills library/kernel/kernel_level/generic of *info (name is set by the caller).
    void (*describe)(pb_gemm_info *info);
} pb_gemm_provider;

const pb_gemm_provider *pb_gemm_openblas(void);
const pb_gemm_provider *pb_gemm_onednn(void); // NULL when built without oneDNN
// The provider for a canonical name from pb_gemm_resolve (NULL if not built in).
const pb_gemm_provider *pb_gemm_find(const char *name);
// The ISA level an OpenBLAS core name targets (0: unknown name).
int pb_cpu_openblas_core_level(const char *core);

// bf16 compute mode (PB_CPU_MATH=bf16, gemm_onednn.c): C = alpha op(A) op(B) + beta C with op(A),
// op(B) rounded to bf16 (round to nearest even, subnormals to zero: pb_bf16_round) and FP32
// accumulation on oneDNN's bf16 matmul, threaded by oneDNN on `threads` threads (call it outside
// a parallel region). init returns NULL with a message when oneDNN is not built in.
typedef struct pb_onednn_bf16 pb_onednn_bf16;
pb_onednn_bf16 *pb_onednn_bf16_init(char *err, size_t errlen);
void pb_onednn_bf16_free(pb_onednn_bf16 *c);
const char *pb_onednn_bf16_impl(const pb_onednn_bf16 *c); // last primitive's implementation name
void pb_onednn_sgemm_bf16(pb_onednn_bf16 *c, int threads, int ta, int tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
uint16_t pb_bf16_round(float f);
// GEMMs run in bf16 when every dimension is at least this and 2MNK >= PB_BF16_MIN_FLOPS; smaller
// ones (LoRA's rank-r products, tiny heads) stay FP32, where conversion would cost more.
#define PB_BF16_MIN_DIM 32
#define PB_BF16_MIN_FLOPS 16e6

// Backend-private state behind pb_engine.state.
typedef struct {
    float *scratch;     // grow-only scratch (attention backward: one T*T tile per thread)
    size_t scratch_n;   // floats allocated
    const pb_gemm_provider *gemm; // chosen at init (PB_GEMM, else pb_gemm_default)
    pb_onednn_bf16 *bf16;         // non-NULL in the bf16 compute mode (PB_CPU_MATH=bf16)
} pb_cpu_state;

// Returns engine-owned scratch of at least n floats (grow-only, so steady-state training does
// not allocate). Contents are undefined. Not thread-safe: call before a parallel region.
float *pb_cpu_scratch(pb_engine *e, size_t n);

// Deterministic column reduction: out[c] += sum_n a[n,c] * (b ? b[n,c] : 1) for a, b (N,C).
// Threads own channel ranges and sum rows in order into double accumulators (engine scratch),
// then add once, so the result is independent of the thread count and a second call adds
// exactly the same value.
void pb_cpu_colsum(pb_engine *e, float *out, const float *a, const float *b, int N, int C);

// 64-byte aligned, zeroed allocation (aborts on failure); freed with free().
void *pb_cpu_alloc_bytes(size_t bytes);

// cpu_dense.c
void pb_cpu_gemm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void pb_cpu_linear_forward(pb_engine *e, float *out, const float *inp, const float *w,
                           const float *bias, int N, int C, int OC);
void pb_cpu_linear_backward(pb_engine *e, float *dinp, float *dw, float *dbias, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC);

// cpu_attention.c
void pb_cpu_attention_forward(pb_engine *e, float *out, float *att, float *attd, const float *q,
                              const float *k, const float *v, const int32_t *keymask, int B, int T,
                              int NH, int HS, float dropout_p, uint64_t seed);
void pb_cpu_attention_backward(pb_engine *e, float *dq, float *dk, float *dv, const float *dout,
                               const float *q, const float *k, const float *v, const float *att,
                               const float *attd, int B, int T, int NH, int HS, float dropout_p,
                               uint64_t seed);

// cpu_aoft.c
void pb_cpu_ao_forward(pb_engine *e, float *AO, const float *q, int D, int d, int32_t *clamps);
void pb_cpu_ao_backward(pb_engine *e, float *dq, const float *q, const float *G, int D, int d);

// cpu_nn.c: everything else (see the table in cpu_backend.c)
void pb_cpu_patches_forward(pb_engine *e, float *cols, const float *img, int B, int Cin, int H,
                            int W, int P);
void pb_cpu_patches_backward(pb_engine *e, float *dimg, const float *dcols, int B, int Cin, int H,
                             int W, int P);
void pb_cpu_vit_tokens_forward(pb_engine *e, float *out, const float *patch, const float *cls,
                               const float *pos, int B, int T, int C);
void pb_cpu_vit_tokens_backward(pb_engine *e, float *dpatch, float *dcls, float *dpos,
                                const float *dout, int B, int T, int C);
void pb_cpu_embedding_forward(pb_engine *e, float *out, const int32_t *ids, const float *table,
                              int N, int C, int rows);
void pb_cpu_embedding_backward(pb_engine *e, float *dtable, const float *dout, const int32_t *ids,
                               int N, int C, int rows);
void pb_cpu_roberta_positions(pb_engine *e, int32_t *pos, const int32_t *ids, int B, int T,
                              int pad);
void pb_cpu_layernorm_forward(pb_engine *e, float *out, float *mean, float *rstd,
                              const float *inp, const float *w, const float *b, int N, int C,
                              float eps);
void pb_cpu_layernorm_backward(pb_engine *e, float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, int N, int C);
void pb_cpu_gelu_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_cpu_gelu_backward(pb_engine *e, float *dinp, const float *dout, const float *inp, size_t n);
void pb_cpu_tanh_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_cpu_tanh_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n);
void pb_cpu_relu_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_cpu_relu_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n);
void pb_cpu_add(pb_engine *e, float *out, const float *a, const float *b, size_t n);
void pb_cpu_axpy(pb_engine *e, float *y, float alpha, const float *x, size_t n);
void pb_cpu_scale(pb_engine *e, float *out, const float *inp, float scale, size_t n);
void pb_cpu_mul_cols(pb_engine *e, float *out, const float *inp, const float *s, int N, int C);
void pb_cpu_mul_cols_reduce(pb_engine *e, float *ds, const float *a, const float *b, int N, int C);
void pb_cpu_row_norms(pb_engine *e, float *nrm, const float *A, int rows, int cols);
void pb_cpu_div(pb_engine *e, float *out, const float *a, const float *b, size_t n);
void pb_cpu_dropout_forward(pb_engine *e, float *out, float *mask, const float *inp, float p,
                            uint64_t seed, size_t n);
void pb_cpu_dropout_backward(pb_engine *e, float *dinp, const float *dout, const float *mask,
                             size_t n);
void pb_cpu_take_token_forward(pb_engine *e, float *out, const float *inp, int B, int T, int C,
                               int t);
void pb_cpu_take_token_backward(pb_engine *e, float *dinp, const float *dout, int B, int T, int C,
                                int t);
void pb_cpu_xent_forward(pb_engine *e, float *probs, float *loss_host, const float *logits,
                         const int32_t *labels, int B, int V, float smoothing);
void pb_cpu_xent_backward(pb_engine *e, float *dlogits, const float *probs, const int32_t *labels,
                          int B, int V, float smoothing);
void pb_cpu_mse_forward(pb_engine *e, float *loss_host, const float *pred, const float *target,
                        int B, int V);
void pb_cpu_mse_backward(pb_engine *e, float *dpred, const float *pred, const float *target, int B,
                         int V);
void pb_cpu_argmax_rows(pb_engine *e, int32_t *pred_host, const float *logits, int B, int V);
int pb_cpu_has_nonfinite(pb_engine *e, const float *p, size_t n);
double pb_cpu_sumsq(pb_engine *e, const float *p, size_t n);
void pb_cpu_adamw_step(pb_engine *e, float *p, const float *g, float *m, float *v, size_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay, int step);

#endif
