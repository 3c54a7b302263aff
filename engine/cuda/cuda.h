// cuda.h: internals shared by the CUDA backend's files (not a public header; CUDA C++ only).
// defines: CUDA_CHECK, CUBLAS_CHECK, PB_CUDA_LAUNCH_CHECK, pb_cuda_state, the scratch and
//          error-flag helpers, pb_cuda_gemm_rm (row-major GEMM on cuBLAS), and the per-file op
//          declarations the table in cuda_backend.cu points at.
//
// Memory model: every engine buffer is cudaMalloc'd device memory (never managed memory); every
// op is queued on the engine's one stream, so ops run in program order and results do not
// depend on timing. Host code never dereferences an engine buffer.
#ifndef PB_CUDA_H
#define PB_CUDA_H

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <unordered_map>

extern "C" {
#include "../backend.h"
}

// A failing CUDA runtime call is a broken invariant (out of device memory, an illegal address in
// a kernel): abort with file:line, the statement and CUDA's message.
#define CUDA_CHECK(stmt)                                                                           \
    do {                                                                                           \
        cudaError_t pb_cu_err_ = (stmt);                                                           \
        if (pb_cu_err_ != cudaSuccess)                                                             \
            pb_abort_at(__FILE__, __LINE__, "CUDA error: %s failed: %s (%s)", #stmt,               \
                        cudaGetErrorString(pb_cu_err_), cudaGetErrorName(pb_cu_err_));             \
    } while (0)

#define CUBLAS_CHECK(stmt)                                                                         \
    do {                                                                                           \
        cublasStatus_t pb_cb_st_ = (stmt);                                                         \
        if (pb_cb_st_ != CUBLAS_STATUS_SUCCESS)                                                    \
            pb_abort_at(__FILE__, __LINE__, "cuBLAS error: %s failed: %s (%d)", #stmt,             \
                        pb_cublas_status_str(pb_cb_st_), (int)pb_cb_st_);                          \
    } while (0)

// After every kernel launch: launch-configuration errors surface here, at the launching line.
#define PB_CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

// Device-side validation (ids, labels) cannot abort the host directly: the first failing thread
// records (code, index, value, limit) in a device flag word; the host checks it at every sync
// point (downloads, losses, pb_sync) and aborts with the same message the CPU backend gives.
enum { PB_CUDA_FLAG_OK = 0, PB_CUDA_FLAG_EMBED_ID = 1, PB_CUDA_FLAG_LABEL = 2 };

typedef struct {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    int tf32;               // 1: CUBLAS_TF32_TENSOR_OP_MATH (PB_CUDA_MATH=tf32)
    void *scratch;          // grow-only device scratch
    size_t scratch_bytes;
    void *host;             // grow-only pinned host scratch (downloads of scalars, ids)
    size_t host_bytes;
    int *flags;             // device (4) ints: code, index, value, limit
    int sm_count;
    // Device-memory accounting (pb_engine_memory): bytes of every cudaMalloc the engine holds
    // (buffers, scratch, flags) and their peak; sizes maps each buffer to its byte count.
    size_t mem_current, mem_peak;
    std::unordered_map<const void *, size_t> *sizes;
} pb_cuda_state;

// Records a device allocation of `bytes` (> 0) or its release (bytes = 0: looked up).
void pb_cuda_mem_note(pb_cuda_state *s, const void *p, size_t bytes);

const char *pb_cublas_status_str(cublasStatus_t s);

static inline pb_cuda_state *pb_cuda_st(pb_engine *e) { return (pb_cuda_state *)e->state; }
static inline cudaStream_t pb_cuda_stream(pb_engine *e) { return pb_cuda_st(e)->stream; }

// Engine-owned device scratch of at least `bytes` (grow-only; growing frees the old block, which
// cudaFree orders after all queued work). Contents undefined. One op uses it at a time.
void *pb_cuda_scratch(pb_engine *e, size_t bytes);
// Pinned host scratch of at least `bytes`; synchronises the stream first so no queued copy still
// reads or writes it.
void *pb_cuda_host_scratch(pb_engine *e, size_t bytes);
// Synchronises the stream and aborts if a kernel recorded a validation failure.
void pb_cuda_sync_check(pb_engine *e);

// Grid size for n elements with `threads` per block, capped so grid-stride loops do the rest.
static inline unsigned pb_cuda_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return b ? (unsigned)b : 1u;
}

// Row-major GEMM (same contract as pb_gemm): C (M,N) = alpha op(A) op(B) + beta C, with
// batch_count >= 1 matrices at element strides sA, sB, sC (strided batched when > 1).
void pb_cuda_gemm_rm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
                     const float *A, int lda, long long sA, const float *B, int ldb, long long sB,
                     float beta, float *C, int ldc, long long sC, int batch_count);

// Deterministic column reduction: out[c] += (float) sum_n term(n,c), summed in double over fixed
// row chunks (independent of the GPU) and then over the chunks in order.
// mode 0: term = a[n,c]; mode 1: term = (float)(a[n,c]*b[n,c]);
// mode 2 (layernorm dw): term = (float)(a[n,c] * ((b[n,c] - mean[n]) * rstd[n])).
void pb_cuda_colsum(pb_engine *e, float *out, const float *a, const float *b, const float *mean,
                    const float *rstd, int mode, int N, int C);

// cuda_backend.cu
void pb_cuda_gemm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void pb_cuda_linear_forward(pb_engine *e, float *out, const float *inp, const float *w,
                            const float *bias, int N, int C, int OC);
void pb_cuda_linear_backward(pb_engine *e, float *dinp, float *dw, float *dbias, const float *dout,
                             const float *inp, const float *w, int N, int C, int OC);

// cuda_attention.cu
void pb_cuda_attention_forward(pb_engine *e, float *out, float *att, float *attd, const float *q,
                               const float *k, const float *v, const int32_t *keymask, int B,
                               int T, int NH, int HS, float dropout_p, uint64_t seed);
void pb_cuda_attention_backward(pb_engine *e, float *dq, float *dk, float *dv, const float *dout,
                                const float *q, const float *k, const float *v, const float *att,
                                const float *attd, int B, int T, int NH, int HS, float dropout_p,
                                uint64_t seed);

// cuda_aoft.cu
void pb_cuda_ao_forward(pb_engine *e, float *AO, const float *q, int D, int d, int32_t *clamps);
void pb_cuda_ao_backward(pb_engine *e, float *dq, const float *q, const float *G, int D, int d);

// cuda_nn.cu
void pb_cuda_fill_bias_rows(pb_engine *e, float *out, const float *bias, int N, int OC);
void pb_cuda_fill(pb_engine *e, float *p, float value, size_t n);
void pb_cuda_patches_forward(pb_engine *e, float *cols, const float *img, int B, int Cin, int H,
                             int W, int P);
void pb_cuda_patches_backward(pb_engine *e, float *dimg, const float *dcols, int B, int Cin,
                              int H, int W, int P);
void pb_cuda_vit_tokens_forward(pb_engine *e, float *out, const float *patch, const float *cls,
                                const float *pos, int B, int T, int C);
void pb_cuda_vit_tokens_backward(pb_engine *e, float *dpatch, float *dcls, float *dpos,
                                 const float *dout, int B, int T, int C);
void pb_cuda_embedding_forward(pb_engine *e, float *out, const int32_t *ids, const float *table,
                               int N, int C, int rows);
void pb_cuda_embedding_backward(pb_engine *e, float *dtable, const float *dout,
                                const int32_t *ids, int N, int C, int rows);
void pb_cuda_roberta_positions(pb_engine *e, int32_t *pos, const int32_t *ids, int B, int T,
                               int pad);
void pb_cuda_layernorm_forward(pb_engine *e, float *out, float *mean, float *rstd,
                               const float *inp, const float *w, const float *b, int N, int C,
                               float eps);
void pb_cuda_layernorm_backward(pb_engine *e, float *dinp, float *dw, float *db,
                                const float *dout, const float *inp, const float *w,
                                const float *mean, const float *rstd, int N, int C);
void pb_cuda_gelu_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_cuda_gelu_backward(pb_engine *e, float *dinp, const float *dout, const float *inp,
                           size_t n);
void pb_cuda_tanh_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_cuda_relu_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_cuda_relu_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n);
void pb_cuda_tanh_backward(pb_engine *e, float *dinp, const float *dout, const float *out,
                           size_t n);
void pb_cuda_add(pb_engine *e, float *out, const float *a, const float *b, size_t n);
void pb_cuda_axpy(pb_engine *e, float *y, float alpha, const float *x, size_t n);
void pb_cuda_scale(pb_engine *e, float *out, const float *inp, float scale, size_t n);
void pb_cuda_mul_cols(pb_engine *e, float *out, const float *inp, const float *s, int N, int C);
void pb_cuda_row_norms(pb_engine *e, float *nrm, const float *A, int rows, int cols);
void pb_cuda_div(pb_engine *e, float *out, const float *a, const float *b, size_t n);
void pb_cuda_mul_cols_reduce(pb_engine *e, float *ds, const float *a, const float *b, int N,
                             int C);
void pb_cuda_dropout_forward(pb_engine *e, float *out, float *mask, const float *inp, float p,
                             uint64_t seed, size_t n);
void pb_cuda_dropout_backward(pb_engine *e, float *dinp, const float *dout, const float *mask,
                              size_t n);
void pb_cuda_take_token_forward(pb_engine *e, float *out, const float *inp, int B, int T, int C,
                                int t);
void pb_cuda_take_token_backward(pb_engine *e, float *dinp, const float *dout, int B, int T,
                                 int C, int t);
void pb_cuda_xent_forward(pb_engine *e, float *probs, float *loss_host, const float *logits,
                          const int32_t *labels, int B, int V, float smoothing);
void pb_cuda_xent_backward(pb_engine *e, float *dlogits, const float *probs,
                           const int32_t *labels, int B, int V, float smoothing);
void pb_cuda_mse_forward(pb_engine *e, float *loss_host, const float *pred, const float *target,
                         int B, int V);
void pb_cuda_mse_backward(pb_engine *e, float *dpred, const float *pred, const float *target,
                          int B, int V);
void pb_cuda_argmax_rows(pb_engine *e, int32_t *pred_host, const float *logits, int B, int V);
int pb_cuda_has_nonfinite(pb_engine *e, const float *p, size_t n);
double pb_cuda_sumsq(pb_engine *e, const float *p, size_t n);
void pb_cuda_adamw_step(pb_engine *e, float *p, const float *g, float *m, float *v, size_t n,
                        float lr, float beta1, float beta2, float eps, float weight_decay,
                        int step);

#endif
