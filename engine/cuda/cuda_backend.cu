// cuda_backend.cu: the CUDA backend's lifecycle (device check, stream, cuBLAS handle, math mode),
// buffers, scratch, GEMM / linear on cuBLAS, and the dispatch table.
// defines: pb_cuda_backend, pb_cuda_scratch, pb_cuda_host_scratch, pb_cuda_sync_check,
//          pb_cuda_gemm_rm, pb_cuda_gemm, pb_cuda_linear_forward, pb_cuda_linear_backward,
//          pb_cublas_status_str
//
// Row-major <-> column-major: cuBLAS is column-major, and a row-major (M,N) matrix with row
// stride ld is the same memory as a column-major (N,M) matrix with leading dimension ld. So the
// row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T, i.e. cuBLAS
// is called with the operands swapped (B first), the transposes kept, and (m,n) = (N,M).
#include "cuda.h"
#include <stdlib.h>
#include <string.h>

const char *pb_cublas_status_str(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
    default: return "unknown status";
    }
}

// ----------------------------------------------------------------------------
// Scratch and error flags

void pb_cuda_mem_note(pb_cuda_state *s, const void *p, size_t bytes) {
    if (bytes) {
        (*s->sizes)[p] = bytes;
        s->mem_current += bytes;
        if (s->mem_current > s->mem_peak) s->mem_peak = s->mem_current;
        return;
    }
    auto it = s->sizes->find(p);
    PB_CHECK(it != s->sizes->end(), "freeing %p, which is not a live engine buffer", p);
    s->mem_current -= it->second;
    s->sizes->erase(it);
}

void *pb_cuda_scratch(pb_engine *e, size_t bytes) {
    pb_cuda_state *s = pb_cuda_st(e);
    if (bytes > s->scratch_bytes) {
        // cudaFree waits for queued work that may still read the old block.
        if (s->scratch) {
            CUDA_CHECK(cudaFree(s->scratch));
            pb_cuda_mem_note(s, s->scratch, 0);
        }
        s->scratch = NULL;
        size_t nb = bytes + bytes / 4; // some headroom: shapes grow in small steps
        CUDA_CHECK(cudaMalloc(&s->scratch, nb));
        pb_cuda_mem_note(s, s->scratch, nb);
        s->scratch_bytes = nb;
    }
    return s->scratch;
}

void *pb_cuda_host_scratch(pb_engine *e, size_t bytes) {
    pb_cuda_state *s = pb_cuda_st(e);
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    if (bytes > s->host_bytes) {
        if (s->host) CUDA_CHECK(cudaFreeHost(s->host));
        s->host = NULL;
        size_t nb = bytes < 4096 ? 4096 : bytes;
        CUDA_CHECK(cudaMallocHost(&s->host, nb));
        s->host_bytes = nb;
    }
    return s->host;
}

void pb_cuda_sync_check(pb_engine *e) {
    pb_cuda_state *s = pb_cuda_st(e);
    int h[4];
    CUDA_CHECK(cudaMemcpyAsync(h, s->flags, sizeof h, cudaMemcpyDeviceToHost, s->stream));
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    if (h[0] == PB_CUDA_FLAG_OK) return;
    // Same messages as the CPU backend's PB_CHECKs (engine/cpu/cpu_nn.c).
    if (h[0] == PB_CUDA_FLAG_EMBED_ID)
        PB_ABORT("check failed: embedding id %d at %d outside [0,%d) (detected on the GPU)", h[2],
                 h[1], h[3]);
    if (h[0] == PB_CUDA_FLAG_LABEL)
        PB_ABORT("check failed: label %d of row %d outside [0,%d) (detected on the GPU)", h[2], h[1],
                 h[3]);
    PB_ABORT("CUDA backend: unknown device error flag %d", h[0]);
}

// ----------------------------------------------------------------------------
// Lifecycle

static pb_status cuda_init(pb_engine *e, char *err, size_t errlen) {
    int count = 0;
    cudaError_t ce = cudaGetDeviceCount(&count);
    if (ce != cudaSuccess) {
        (void)cudaGetLastError(); // clear the sticky-free error so later runtime calls are clean
        return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "CUDA driver/GPU not available: %s",
                       cudaGetErrorString(ce));
    }
    if (count == 0)
        return pb_errf(PB_ERR_UNSUPPORTED, err, errlen,
                       "CUDA driver/GPU not available: no CUDA device found");
    int tf32 = 0;
    const char *math = getenv("PB_CUDA_MATH");
    if (math && *math) {
        if (!strcmp(math, "tf32")) tf32 = 1;
        else if (strcmp(math, "fp32"))
            return pb_errf(PB_ERR_ARG, err, errlen,
                           "PB_CUDA_MATH='%s' is not a known math mode (known: fp32, tf32)", math);
    }
    int dev = 0;
    const char *devenv = getenv("PB_CUDA_DEVICE");
    if (devenv && *devenv) {
        char *end = NULL;
        long d = strtol(devenv, &end, 10);
        if (*end || d < 0 || d >= count)
            return pb_errf(PB_ERR_ARG, err, errlen, "PB_CUDA_DEVICE='%s' is not a device in [0,%d)",
                           devenv, count);
        dev = (int)d;
    }
    ce = cudaSetDevice(dev);
    if (ce != cudaSuccess)
        return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "CUDA driver/GPU not available: %s",
                       cudaGetErrorString(ce));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    pb_cuda_state *s = (pb_cuda_state *)pb_xcalloc(1, sizeof(pb_cuda_state));
    s->device = dev;
    s->tf32 = tf32;
    s->sm_count = prop.multiProcessorCount;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    cublasStatus_t bs = cublasCreate(&s->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        CUDA_CHECK(cudaStreamDestroy(s->stream));
        free(s);
        return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "cuBLAS initialisation failed: %s",
                       pb_cublas_status_str(bs));
    }
    CUBLAS_CHECK(cublasSetStream(s->blas, s->stream));
    // Default FP32 math never uses TF32 tensor cores; TF32 is opt-in (docs/cuda.md).
    CUBLAS_CHECK(cublasSetMathMode(s->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasSetPointerMode(s->blas, CUBLAS_POINTER_MODE_HOST));
    s->sizes = new std::unordered_map<const void *, size_t>();
    CUDA_CHECK(cudaMalloc(&s->flags, 4 * sizeof(int)));
    pb_cuda_mem_note(s, s->flags, 4 * sizeof(int));
    CUDA_CHECK(cudaMemsetAsync(s->flags, 0, 4 * sizeof(int), s->stream));
    e->state = s;
    int blas_ver = 0;
    CUBLAS_CHECK(cublasGetVersion(s->blas, &blas_ver));
    snprintf(e->desc, sizeof e->desc, "cuda, %.96s (sm_%d%d, %d SMs, %.1f GiB), cuBLAS %d, %s math",
             prop.name, prop.major, prop.minor, prop.multiProcessorCount,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), blas_ver,
             tf32 ? "tf32" : "fp32");
    return PB_OK;
}

static void cuda_free_state(pb_engine *e) {
    pb_cuda_state *s = pb_cuda_st(e);
    if (!s) return;
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    if (s->scratch) CUDA_CHECK(cudaFree(s->scratch));
    if (s->host) CUDA_CHECK(cudaFreeHost(s->host));
    CUDA_CHECK(cudaFree(s->flags));
    CUBLAS_CHECK(cublasDestroy(s->blas));
    CUDA_CHECK(cudaStreamDestroy(s->stream));
    delete s->sizes;
    free(s);
    e->state = NULL;
}

// ----------------------------------------------------------------------------
// Buffers: cudaMalloc'd, zeroed (on the stream, so the zeroing is ordered before any later op).

static void *cuda_alloc_bytes(pb_engine *e, size_t bytes) {
    void *p = NULL;
    size_t nb = bytes ? bytes : 16;
    cudaError_t ce = cudaMalloc(&p, nb);
    if (ce != cudaSuccess)
        PB_ABORT("out of GPU memory allocating %zu bytes: %s", bytes, cudaGetErrorString(ce));
    CUDA_CHECK(cudaMemsetAsync(p, 0, nb, pb_cuda_stream(e)));
    pb_cuda_mem_note(pb_cuda_st(e), p, nb);
    return p;
}
static float *cuda_alloc(pb_engine *e, size_t n) {
    return (float *)cuda_alloc_bytes(e, n * sizeof(float));
}
static int32_t *cuda_alloc_i32(pb_engine *e, size_t n) {
    return (int32_t *)cuda_alloc_bytes(e, n * sizeof(int32_t));
}
static void cuda_free(pb_engine *e, void *p) {
    if (!p) return;
    pb_cuda_mem_note(pb_cuda_st(e), p, 0);
    CUDA_CHECK(cudaFree(p)); // implicitly waits for queued work using p
}
static void cuda_memory(pb_engine *e, size_t *current, size_t *peak) {
    const pb_cuda_state *s = pb_cuda_st(e);
    *current = s->mem_current;
    *peak = s->mem_peak;
}

// Host -> device: cudaMemcpyAsync from pageable memory returns once the source has been staged,
// so the caller may reuse host_src immediately; the copy is ordered on the stream.
static void cuda_upload(pb_engine *e, float *dst, const float *src, size_t n) {
    if (!n) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, pb_cuda_stream(e)));
}
static void cuda_upload_i32(pb_engine *e, int32_t *dst, const int32_t *src, size_t n) {
    if (!n) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(int32_t), cudaMemcpyHostToDevice, pb_cuda_stream(e)));
}
static void cuda_download(pb_engine *e, float *dst, const float *src, size_t n) {
    if (n) CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, pb_cuda_stream(e)));
    pb_cuda_sync_check(e);
}
static void cuda_download_i32(pb_engine *e, int32_t *dst, const int32_t *src, size_t n) {
    if (n) CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(int32_t), cudaMemcpyDeviceToHost, pb_cuda_stream(e)));
    pb_cuda_sync_check(e);
}
static void cuda_zero(pb_engine *e, float *p, size_t n) {
    if (n) CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(float), pb_cuda_stream(e)));
}
static void cuda_copy(pb_engine *e, float *dst, const float *src, size_t n) {
    if (!n || dst == src) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, pb_cuda_stream(e)));
}
static void cuda_sync(pb_engine *e) { pb_cuda_sync_check(e); }

// ----------------------------------------------------------------------------
// Dense linear algebra

void pb_cuda_gemm_rm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
                     const float *A, int lda, long long sA, const float *B, int ldb, long long sB,
                     float beta, float *C, int ldc, long long sC, int batch_count) {
    if (M <= 0 || N <= 0 || batch_count <= 0) return;
    pb_cuda_state *s = pb_cuda_st(e);
    const cublasOperation_t ta = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t tb = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (K <= 0) { // C = beta C (cuBLAS does the same, but keep the contract explicit)
        K = 0;
    }
    if (batch_count == 1) {
        CUBLAS_CHECK(cublasSgemm(s->blas, tb, ta, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
    } else {
        CUBLAS_CHECK(cublasSgemmStridedBatched(s->blas, tb, ta, N, M, K, &alpha, B, ldb, sB, A, lda,
                                               sA, &beta, C, ldc, sC, batch_count));
    }
}

void pb_cuda_gemm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    pb_cuda_gemm_rm(e, transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

// out (N,OC) = inp (N,C) @ w^T + bias: as on the CPU, out is pre-filled with the bias rows and
// the GEMM accumulates (beta = 1).
void pb_cuda_linear_forward(pb_engine *e, float *out, const float *inp, const float *w,
                            const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    float beta = 0.0f;
    if (bias) {
        pb_cuda_fill_bias_rows(e, out, bias, N, OC);
        beta = 1.0f;
    }
    pb_cuda_gemm(e, 0, 1, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
}

// dinp (N,C) += dout @ w; dw (OC,C) += dout^T @ inp; dbias (OC) += colsum(dout). NULL: skipped.
void pb_cuda_linear_backward(pb_engine *e, float *dinp, float *dw, float *dbias, const float *dout,
                             const float *inp, const float *w, int N, int C, int OC) {
    if (N <= 0) return;
    if (dinp) pb_cuda_gemm(e, 0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    if (dw) pb_cuda_gemm(e, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) pb_cuda_colsum(e, dbias, dout, NULL, NULL, NULL, 0, N, OC);
}

// ----------------------------------------------------------------------------

static const pb_backend make_cuda_backend() {
    pb_backend b;
    memset(&b, 0, sizeof b);
    b.name = "cuda";
    b.init = cuda_init;
    b.free_state = cuda_free_state;
    b.alloc = cuda_alloc;
    b.alloc_i32 = cuda_alloc_i32;
    b.free = cuda_free;
    b.upload = cuda_upload;
    b.download = cuda_download;
    b.upload_i32 = cuda_upload_i32;
    b.download_i32 = cuda_download_i32;
    b.zero = cuda_zero;
    b.copy = cuda_copy;
    b.fill = pb_cuda_fill;
    b.sync = cuda_sync;
    b.memory = cuda_memory;
    b.gemm = pb_cuda_gemm;
    b.linear_forward = pb_cuda_linear_forward;
    b.linear_backward = pb_cuda_linear_backward;
    b.patches_forward = pb_cuda_patches_forward;
    b.patches_backward = pb_cuda_patches_backward;
    b.vit_tokens_forward = pb_cuda_vit_tokens_forward;
    b.vit_tokens_backward = pb_cuda_vit_tokens_backward;
    b.embedding_forward = pb_cuda_embedding_forward;
    b.embedding_backward = pb_cuda_embedding_backward;
    b.roberta_positions = pb_cuda_roberta_positions;
    b.layernorm_forward = pb_cuda_layernorm_forward;
    b.layernorm_backward = pb_cuda_layernorm_backward;
    b.gelu_forward = pb_cuda_gelu_forward;
    b.gelu_backward = pb_cuda_gelu_backward;
    b.tanh_forward = pb_cuda_tanh_forward;
    b.tanh_backward = pb_cuda_tanh_backward;
    b.relu_forward = pb_cuda_relu_forward;
    b.relu_backward = pb_cuda_relu_backward;
    b.add = pb_cuda_add;
    b.axpy = pb_cuda_axpy;
    b.scale = pb_cuda_scale;
    b.mul_cols = pb_cuda_mul_cols;
    b.mul_cols_reduce = pb_cuda_mul_cols_reduce;
    b.row_norms = pb_cuda_row_norms;
    b.div = pb_cuda_div;
    b.ao_forward = pb_cuda_ao_forward;
    b.ao_backward = pb_cuda_ao_backward;
    b.dropout_forward = pb_cuda_dropout_forward;
    b.dropout_backward = pb_cuda_dropout_backward;
    b.attention_forward = pb_cuda_attention_forward;
    b.attention_backward = pb_cuda_attention_backward;
    b.take_token_forward = pb_cuda_take_token_forward;
    b.take_token_backward = pb_cuda_take_token_backward;
    b.xent_forward = pb_cuda_xent_forward;
    b.xent_backward = pb_cuda_xent_backward;
    b.mse_forward = pb_cuda_mse_forward;
    b.mse_backward = pb_cuda_mse_backward;
    b.argmax_rows = pb_cuda_argmax_rows;
    b.has_nonfinite = pb_cuda_has_nonfinite;
    b.sumsq = pb_cuda_sumsq;
    b.adamw_step = pb_cuda_adamw_step;
    return b;
}

static const pb_backend cuda_backend = make_cuda_backend();

extern "C" const pb_backend *pb_cuda_backend(void) { return &cuda_backend; }
