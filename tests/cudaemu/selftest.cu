// selftest.cu: self-tests of the cudaemu emulator (translated by translate.py like engine/cuda).
//   cudaemu_selftest            positive checks: cuBLAS (4 transpose combinations with padded
//                               leading dimensions, strided batched, TF32 rounding, argument
//                               validation) against naive column-major loops; barriers, warp
//                               shuffles, index mapping, shared-memory poisoning, deferred
//                               stream execution, launch-configuration errors. Exit 0 = all ok.
//   cudaemu_selftest expect C   runs misuse case C in a child process and passes when the child
//                               dies / fails with the expected message (the emulator caught it).
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

static int failures = 0;

#define CK(x)                                                                                      \
    do {                                                                                           \
        cudaError_t e_ = (x);                                                                      \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #x,                     \
                    cudaGetErrorString(e_));                                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

template <typename T> static T *dev_alloc(size_t n) {
    T *p = nullptr;
    CK(cudaMalloc(&p, n * sizeof(T)));
    return p;
}
template <typename T> static void up(T *d, const std::vector<T> &h) {
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}
template <typename T> static std::vector<T> down(const T *d, size_t n) {
    std::vector<T> h(n);
    CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

// ----------------------------------------------------------------------------
// Kernels

#define RED_TPB 256

// Tree reduction with the barriers it needs.
__global__ void k_block_sum(const float *x, float *out) {
    __shared__ float sh[RED_TPB];
    sh[threadIdx.x] = x[blockIdx.x * RED_TPB + threadIdx.x];
    __syncthreads();
    for (int s = RED_TPB / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = sh[0];
}

// The same without the barrier inside the loop: a race a GPU may or may not show.
__global__ void k_block_sum_nobarrier(const float *x, float *out) {
    __shared__ float sh[RED_TPB];
    sh[threadIdx.x] = x[blockIdx.x * RED_TPB + threadIdx.x];
    __syncthreads();
    for (int s = RED_TPB / 2; s > 0; s >>= 1)
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = sh[0];
}

// out[kind][lane] for every shuffle flavour, width 32 and 16.
__global__ void k_shuffles(int *out) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int *o = out + w * 8 * 32;
    const int v = lane * 10 + w;
    o[0 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, 5);
    o[1 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 3);
    o[2 * 32 + lane] = __shfl_up_sync(0xffffffffu, v, 3);
    o[3 * 32 + lane] = __shfl_sync(0xffffffffu, v, 7);
    o[4 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, 5, 16);
    o[5 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 3, 16);
    o[6 * 32 + lane] = __shfl_sync(0xffffffffu, v, 19, 16);
    float f = (float)lane;
    for (int s = 16; s > 0; s >>= 1) f += __shfl_xor_sync(0xffffffffu, f, s);
    __syncwarp();
    o[7 * 32 + lane] = (int)f;
}

// Linear ids in a 3-D grid of 3-D blocks: each thread writes its own slot once.
__global__ void k_index(int *out) {
    const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const int nt = blockDim.x * blockDim.y * blockDim.z;
    out[b * nt + t] += b * 1000 + t + 1;
}

// Block 0 writes shared memory; block 1 must not see it (shared memory starts uninitialised).
__global__ void k_shared_fresh(float *out) {
    __shared__ float s[4];
    if (blockIdx.x == 0 && threadIdx.x == 0) s[0] = 42.0f;
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

__global__ void k_first_flag(int *flag, int *who) {
    if (atomicCAS(flag, 0, 1) == 0) *who = (int)(blockIdx.x * blockDim.x + threadIdx.x);
}

__global__ void k_dyn_shared(float *out) {
    extern __shared__ float dyn[];
    dyn[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = dyn[blockDim.x - 1 - threadIdx.x];
}

__global__ void k_noop(float *p) { (void)p; }

__global__ void k_divergent_sync(float *p) {
    if (threadIdx.x < 16) __syncthreads();
    p[threadIdx.x] = 1.0f;
}

__global__ void k_sync_sites(float *p) {
    if (threadIdx.x & 1) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    p[threadIdx.x] = 1.0f;
}

__global__ void k_shfl(float *p, unsigned mask) {
    p[threadIdx.x] = __shfl_xor_sync(mask, (float)threadIdx.x, 1);
}

__global__ void k_shfl_lane_exits(float *p) {
    if (threadIdx.x == 3) return;
    p[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)threadIdx.x, 1);
}

__global__ void k_read_past_end(const float *p, float *out, int n) {
    out[threadIdx.x] = p[n + threadIdx.x]; // past the end of p (n floats)
}

// ----------------------------------------------------------------------------
// Positive checks

// C (m x n, col-major, ldc) = alpha op(A) op(B) + beta C in double
static void naive_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                const double a = ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];
                const double b = tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];
                s += a * b;
            }
            double c = beta == 0.0f ? 0.0 : (double)beta * C[i + (size_t)j * ldc];
            C[i + (size_t)j * ldc] = (float)(alpha * s + c);
        }
}

static unsigned rng_state = 12345u;
static float frand() {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}
static std::vector<float> randv(size_t n) {
    std::vector<float> v(n);
    for (auto &x : v) x = frand();
    return v;
}

static double max_rel(const std::vector<float> &a, const std::vector<float> &b) {
    double mx = 0.0, err = 0.0;
    for (size_t i = 0; i < a.size(); i++) {
        mx = fmax(mx, fabs((double)b[i]));
        if (isnan(a[i]) != isnan(b[i])) return INFINITY;
        err = fmax(err, fabs((double)a[i] - (double)b[i]));
    }
    return err / fmax(mx, 1e-30);
}

static void test_gemm(cublasHandle_t h) {
    const int m = 13, n = 9, k = 7;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
            const int lda = ar + 3, ldb = br + 2, ldc = m + 4;
            std::vector<float> A = randv((size_t)lda * ac), B = randv((size_t)ldb * bc),
                               C = randv((size_t)ldc * n);
            float *dA = dev_alloc<float>(A.size()), *dB = dev_alloc<float>(B.size()),
                  *dC = dev_alloc<float>(C.size());
            up(dA, A), up(dB, B), up(dC, C);
            const float alpha = 0.75f, beta = -0.5f;
            EXPECT(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n,
                               k, &alpha, dA, lda, dB, ldb, &beta, dC, ldc) == CUBLAS_STATUS_SUCCESS,
                   "sgemm");
            std::vector<float> ref = C;
            naive_gemm(ta, tb, m, n, k, alpha, A.data(), lda, B.data(), ldb, beta, ref.data(), ldc);
            std::vector<float> got = down(dC, C.size());
            // padding rows of C (i >= m) untouched
            bool pad_ok = true;
            for (int j = 0; j < n; j++)
                for (int i = m; i < ldc; i++)
                    pad_ok &= got[i + (size_t)j * ldc] == C[i + (size_t)j * ldc];
            EXPECT(pad_ok, "gemm %c%c wrote into the ldc padding", ta ? 'T' : 'N', tb ? 'T' : 'N');
            const double e = max_rel(got, ref);
            EXPECT(e <= 1e-6, "gemm %c%c vs naive: %.3g", ta ? 'T' : 'N', tb ? 'T' : 'N', e);
            printf("ok   cublasSgemm %c%c (padded lda/ldb/ldc) vs naive column-major: %.2e\n",
                   ta ? 'T' : 'N', tb ? 'T' : 'N', e);
            CK(cudaFree(dA));
            CK(cudaFree(dB));
            CK(cudaFree(dC));
        }
    // strided batched: batch 3, B broadcast (stride 0), C with gaps between matrices
    {
        const int m = 5, n = 4, k = 6, batch = 3, lda = 7, ldb = 6, ldc = 5;
        const long long sA = (long long)lda * k + 3, sB = 0, sC = (long long)ldc * n + 2;
        std::vector<float> A = randv((size_t)sA * batch), B = randv((size_t)ldb * n),
                           C = randv((size_t)sC * batch);
        float *dA = dev_alloc<float>(A.size()), *dB = dev_alloc<float>(B.size()),
              *dC = dev_alloc<float>(C.size());
        up(dA, A), up(dB, B), up(dC, C);
        const float alpha = 1.25f, beta = 0.5f;
        EXPECT(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, dA, lda, sA, dB,
                                         ldb, sB, &beta, dC, ldc, sC, batch) == CUBLAS_STATUS_SUCCESS,
               "strided batched");
        std::vector<float> ref = C;
        for (int i = 0; i < batch; i++)
            naive_gemm(0, 0, m, n, k, alpha, A.data() + i * sA, lda, B.data(), ldb, beta,
                       ref.data() + i * sC, ldc);
        const double e = max_rel(down(dC, C.size()), ref);
        EXPECT(e <= 1e-6, "strided batched vs naive: %.3g", e);
        printf("ok   cublasSgemmStridedBatched (batch 3, stride-0 B, gaps) vs naive: %.2e\n", e);
        CK(cudaFree(dA));
        CK(cudaFree(dB));
        CK(cudaFree(dC));
    }
    // beta == 0: C is not read (NaN in C must not propagate); k == 0: C = beta C
    {
        float *d = dev_alloc<float>(4); // fresh device memory: 0xFF bytes = NaN
        std::vector<float> one = {2.0f, 3.0f};
        float *ab = dev_alloc<float>(2);
        up(ab, one);
        const float alpha = 1.0f, beta0 = 0.0f, beta2 = 2.0f;
        EXPECT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &alpha, ab, 1, ab + 1, 1, &beta0, d, 1) ==
                   CUBLAS_STATUS_SUCCESS, "beta0");
        EXPECT(down(d, 1)[0] == 6.0f, "beta = 0 must ignore C (NaN garbage): got %g", (double)down(d, 1)[0]);
        EXPECT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 0, &alpha, ab, 1, ab + 1, 1, &beta2, d, 1) ==
                   CUBLAS_STATUS_SUCCESS, "k0");
        EXPECT(down(d, 1)[0] == 12.0f, "k = 0 must give beta C: got %g", (double)down(d, 1)[0]);
        CK(cudaFree(d));
        CK(cudaFree(ab));
        printf("ok   cublasSgemm beta=0 ignores C, k=0 scales C\n");
    }
    // TF32: inputs rounded to 10 mantissa bits, to nearest even
    {
        std::vector<float> a = {1.0f + ldexpf(1.0f, -12), 1.0f + 3.0f * ldexpf(1.0f, -12),
                                1.0f + ldexpf(1.0f, -11), 1.0f + 3.0f * ldexpf(1.0f, -11)};
        const float expect_tf32[4] = {1.0f, 1.0f + ldexpf(1.0f, -10), 1.0f, 1.0f + ldexpf(1.0f, -9)};
        float *dA = dev_alloc<float>(4), *dB = dev_alloc<float>(1), *dC = dev_alloc<float>(4);
        up(dA, a), up(dB, std::vector<float>{1.0f});
        const float alpha = 1.0f, beta = 0.0f;
        for (int mode = 0; mode < 2; mode++) {
            EXPECT(cublasSetMathMode(h, mode ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH) ==
                       CUBLAS_STATUS_SUCCESS, "math mode");
            EXPECT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 1, 1, &alpha, dA, 4, dB, 1, &beta, dC, 4) ==
                       CUBLAS_STATUS_SUCCESS, "tf32 gemm");
            std::vector<float> c = down(dC, 4);
            for (int i = 0; i < 4; i++)
                EXPECT(c[i] == (mode ? expect_tf32[i] : a[i]), "%s: element %d = %.9g",
                       mode ? "tf32" : "fp32", i, (double)c[i]);
        }
        EXPECT(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_SUCCESS, "math mode");
        CK(cudaFree(dA));
        CK(cudaFree(dB));
        CK(cudaFree(dC));
        printf("ok   TF32 math mode rounds inputs to nearest even at 10 mantissa bits\n");
    }
    // argument validation as cuBLAS documents it
    {
        float *d = dev_alloc<float>(64);
        const float one = 1.0f;
        struct {
            cublasOperation_t ta, tb;
            int m, n, k, lda, ldb, ldc;
            const char *what;
        } bad[] = {
            {CUBLAS_OP_N, CUBLAS_OP_N, -1, 2, 2, 2, 2, 2, "m < 0"},
            {CUBLAS_OP_N, CUBLAS_OP_N, 2, -1, 2, 2, 2, 2, "n < 0"},
            {CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, -1, 2, 2, 2, "k < 0"},
            {CUBLAS_OP_N, CUBLAS_OP_N, 3, 2, 2, 2, 2, 3, "lda < m (N)"},
            {CUBLAS_OP_T, CUBLAS_OP_N, 3, 2, 4, 3, 4, 3, "lda < k (T)"},
            {CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, 2, 2, 2, "ldb < k (N)"},
            {CUBLAS_OP_N, CUBLAS_OP_T, 2, 3, 2, 2, 2, 2, "ldb < n (T)"},
            {CUBLAS_OP_N, CUBLAS_OP_N, 3, 2, 2, 3, 2, 2, "ldc < m"},
            {CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0, 2, 0, 2, "ldb = 0"},
        };
        for (auto &b : bad)
            EXPECT(cublasSgemm(h, b.ta, b.tb, b.m, b.n, b.k, &one, d, b.lda, d, b.ldb, &one, d, b.ldc) ==
                       CUBLAS_STATUS_INVALID_VALUE, "%s not rejected", b.what);
        EXPECT(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, d, 2, 4, d, 2, 4, &one,
                                         d, 2, 4, -1) == CUBLAS_STATUS_INVALID_VALUE, "batch < 0");
        EXPECT(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, d, 1, d, 1, &one, d, 1) ==
                   CUBLAS_STATUS_NOT_INITIALIZED, "NULL handle");
        EXPECT(cublasSetMathMode(h, (cublasMath_t)7) == CUBLAS_STATUS_INVALID_VALUE, "bad math mode");
        CK(cudaFree(d));
        printf("ok   cuBLAS argument validation (negative sizes, leading dimensions, handle)\n");
    }
}

static void test_kernels() {
    // block reduction: exact (small integers) in both thread orders
    const int nb = 3;
    std::vector<float> x((size_t)nb * RED_TPB);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)(i % 17);
    float *dx = dev_alloc<float>(x.size()), *dout = dev_alloc<float>(nb);
    up(dx, x);
    for (int order = 0; order < 2; order++) {
        pb_cudaemu_set_order(order);
        k_block_sum<<<nb, RED_TPB>>>(dx, dout);
        CK(cudaGetLastError());
        std::vector<float> o = down(dout, nb);
        for (int b = 0; b < nb; b++) {
            double s = 0;
            for (int i = 0; i < RED_TPB; i++) s += x[(size_t)b * RED_TPB + i];
            EXPECT(o[b] == (float)s, "block sum (%s) block %d: %g vs %g", order ? "reverse" : "forward", b,
                   (double)o[b], s);
        }
    }
    pb_cudaemu_set_order(0);
    printf("ok   block reduction with __syncthreads: exact in forward and reverse order\n");
    CK(cudaFree(dx));
    CK(cudaFree(dout));

    // shuffles
    const int warps = 2;
    int *ds = dev_alloc<int>((size_t)warps * 8 * 32);
    k_shuffles<<<1, 32 * warps>>>(ds);
    CK(cudaGetLastError());
    std::vector<int> s = down(ds, (size_t)warps * 8 * 32);
    for (int w = 0; w < warps; w++)
        for (int l = 0; l < 32; l++) {
            const int *o = s.data() + w * 8 * 32;
            auto v = [&](int lane) { return lane * 10 + w; };
            EXPECT(o[0 * 32 + l] == v(l ^ 5), "xor");
            EXPECT(o[1 * 32 + l] == v(l + 3 < 32 ? l + 3 : l), "down lane %d", l);
            EXPECT(o[2 * 32 + l] == v(l >= 3 ? l - 3 : l), "up lane %d", l);
            EXPECT(o[3 * 32 + l] == v(7), "idx");
            EXPECT(o[4 * 32 + l] == v(l ^ 5), "xor w16");
            EXPECT(o[5 * 32 + l] == v((l % 16) + 3 < 16 ? l + 3 : l), "down w16 lane %d: %d", l, o[5 * 32 + l]);
            EXPECT(o[6 * 32 + l] == v((l & ~15) + 3), "idx w16 lane %d: %d", l, o[6 * 32 + l]);
            EXPECT(o[7 * 32 + l] == 496, "butterfly sum lane %d: %d", l, o[7 * 32 + l]);
        }
    CK(cudaFree(ds));
    printf("ok   __shfl_xor/down/up/idx_sync (width 32 and 16), butterfly sum, __syncwarp\n");

    // 3-D index mapping
    const dim3 grid(3, 2, 2), block(4, 3, 2);
    const int total = 3 * 2 * 2 * 4 * 3 * 2;
    int *di = dev_alloc<int>(total);
    CK(cudaMemset(di, 0, total * sizeof(int)));
    k_index<<<grid, block>>>(di);
    CK(cudaGetLastError());
    std::vector<int> id = down(di, total);
    for (int i = 0; i < total; i++) EXPECT(id[i] == (i / 24) * 1000 + i % 24 + 1, "index %d: %d", i, id[i]);
    CK(cudaFree(di));
    printf("ok   3-D grid/block index mapping\n");

    // shared memory does not carry over between blocks
    float *df = dev_alloc<float>(2);
    k_shared_fresh<<<2, 32>>>(df);
    CK(cudaGetLastError());
    std::vector<float> f = down(df, 2);
    EXPECT(f[0] == 42.0f && isnan(f[1]), "shared memory of block 1 must start as garbage: %g %g",
           (double)f[0], (double)f[1]);
    printf("ok   __shared__ storage filled with garbage at every block start\n");
    CK(cudaFree(df));

    // dynamic shared memory
    float *dd = dev_alloc<float>(64);
    k_dyn_shared<<<1, 64, 64 * sizeof(float)>>>(dd);
    CK(cudaGetLastError());
    std::vector<float> dv = down(dd, 64);
    for (int i = 0; i < 64; i++) EXPECT(dv[i] == (float)(63 - i), "dyn shared %d", i);
    CK(cudaFree(dd));

    // atomics: the first thread in run order wins
    int *flag = dev_alloc<int>(2);
    CK(cudaMemset(flag, 0, 2 * sizeof(int)));
    pb_cudaemu_set_order(1);
    k_first_flag<<<2, 64>>>(flag, flag + 1);
    CK(cudaGetLastError());
    EXPECT(down(flag, 2)[1] == 127, "atomicCAS in reverse order: winner %d", down(flag, 2)[1]);
    pb_cudaemu_set_order(0);
    CK(cudaFree(flag));
    printf("ok   dynamic shared memory, atomicCAS\n");
}

static void test_runtime() {
    // fresh allocations are garbage, not zeros
    float *d = dev_alloc<float>(8);
    std::vector<float> g = down(d, 8);
    EXPECT(isnan(g[0]) && isnan(g[7]), "cudaMalloc memory must not read as zeros");
    // deferred execution: a D2H copy into pinned memory completes only at a sync
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *pin = nullptr;
    CK(cudaMallocHost(&pin, 8 * sizeof(float)));
    for (int i = 0; i < 8; i++) pin[i] = -1.0f;
    std::vector<float> src = {1, 2, 3, 4, 5, 6, 7, 8};
    CK(cudaMemcpyAsync(d, src.data(), 8 * sizeof(float), cudaMemcpyHostToDevice, s));
    src[0] = 99.0f; // pageable source: staged at the call, later changes do not count
    CK(cudaMemcpyAsync(pin, d, 8 * sizeof(float), cudaMemcpyDeviceToHost, s));
    EXPECT(pin[0] == -1.0f, "async copy into pinned memory completed before the sync");
    CK(cudaStreamSynchronize(s));
    EXPECT(pin[0] == 1.0f && pin[7] == 8.0f, "after sync: %g %g", (double)pin[0], (double)pin[7]);
    // a copy to pageable memory is synchronous
    std::vector<float> h(8, 0.0f);
    CK(cudaMemsetAsync(d, 0, 8 * sizeof(float), s));
    CK(cudaMemcpyAsync(h.data(), d, 8 * sizeof(float), cudaMemcpyDeviceToHost, s));
    EXPECT(h[0] == 0.0f, "pageable D2H must be complete on return");
    CK(cudaFreeHost(pin));
    CK(cudaStreamDestroy(s));
    printf("ok   stream semantics: pinned D2H deferred to the sync, pageable H2D staged, pageable D2H synchronous\n");
    // launch configuration errors are reported by cudaGetLastError (and cleared)
    const dim3 bad[] = {dim3(0, 1, 1), dim3(1, 65536, 1), dim3(1, 1, 65536)};
    for (const dim3 &gr : bad) {
        k_noop<<<gr, 32>>>(d);
        EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid (%u,%u,%u) accepted", gr.x, gr.y, gr.z);
    }
    const dim3 badb[] = {dim3(1025, 1, 1), dim3(1, 1, 65), dim3(32, 32, 2), dim3(1, 0, 1)};
    for (const dim3 &bl : badb) {
        k_noop<<<1, bl>>>(d);
        EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "block (%u,%u,%u) accepted", bl.x, bl.y, bl.z);
    }
    k_noop<<<dim3(1, 65535, 1), dim3(1, 1, 64)>>>(d); // at the limits: legal
    EXPECT(cudaGetLastError() == cudaSuccess, "legal launch at the limits rejected");
    EXPECT(cudaGetLastError() == cudaSuccess, "error not cleared");
    printf("ok   invalid launch configurations give cudaErrorInvalidConfiguration\n");
    CK(cudaFree(d));
}

// ----------------------------------------------------------------------------
// Misuse cases: each must make the emulator abort (or the API fail) with the given message.

struct Case {
    const char *name;
    const char *needle;  // in the child's stderr
    const char *needle2; // alternative (sanitizer builds report some faults themselves)
    void (*run)();
};

static void c_divergent_sync() {
    float *d = dev_alloc<float>(64);
    k_divergent_sync<<<1, 64>>>(d);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
}
static void c_sync_sites() {
    float *d = dev_alloc<float>(64);
    k_sync_sites<<<1, 64>>>(d);
    CK(cudaDeviceSynchronize());
}
static void c_partial_warp_shfl() {
    float *d = dev_alloc<float>(64);
    k_shfl<<<1, 48>>>(d, 0xffffffffu);
    CK(cudaDeviceSynchronize());
}
static void c_partial_mask_shfl() {
    float *d = dev_alloc<float>(64);
    k_shfl<<<1, 32>>>(d, 0x0000ffffu);
    CK(cudaDeviceSynchronize());
}
static void c_shfl_lane_exited() {
    float *d = dev_alloc<float>(64);
    k_shfl_lane_exits<<<1, 32>>>(d);
    CK(cudaDeviceSynchronize());
}
static void c_oversize_block() {
    float *d = dev_alloc<float>(64);
    k_noop<<<1, 2048>>>(d);
    cudaError_t e = cudaGetLastError();
    fprintf(stderr, "cudaGetLastError: %s\n", cudaGetErrorName(e));
    exit(e == cudaErrorInvalidConfiguration ? 3 : 0);
}
static void c_zero_grid() {
    float *d = dev_alloc<float>(64);
    k_noop<<<0, 32>>>(d);
    cudaError_t e = cudaGetLastError();
    fprintf(stderr, "cudaGetLastError: %s\n", cudaGetErrorName(e));
    exit(e == cudaErrorInvalidConfiguration ? 3 : 0);
}
static void c_unchecked_launch() {
    float *d = dev_alloc<float>(64);
    k_noop<<<1, dim3(64, 64)>>>(d);
    k_noop<<<1, 32>>>(d); // without cudaGetLastError in between
    CK(cudaDeviceSynchronize());
}
static void c_memcpy_oob() {
    float *d = dev_alloc<float>(25);
    std::vector<float> h(50);
    cudaError_t e = cudaMemcpyAsync(d, h.data(), 50 * sizeof(float), cudaMemcpyHostToDevice, 0);
    fprintf(stderr, "cudaMemcpyAsync: %s\n", cudaGetErrorName(e));
    exit(e == cudaErrorInvalidValue ? 3 : 0);
}
static void c_memcpy_freed() {
    float *d = dev_alloc<float>(25);
    CK(cudaFree(d));
    std::vector<float> h(25);
    cudaError_t e = cudaMemcpy(h.data(), d, 25 * sizeof(float), cudaMemcpyDeviceToHost);
    fprintf(stderr, "cudaMemcpy: %s\n", cudaGetErrorName(e));
    exit(e == cudaErrorInvalidValue ? 3 : 0);
}
static void c_memset_oob() {
    float *d = dev_alloc<float>(25);
    cudaError_t e = cudaMemsetAsync(d + 1, 0, 25 * sizeof(float), 0);
    fprintf(stderr, "cudaMemsetAsync: %s\n", cudaGetErrorName(e));
    exit(e == cudaErrorInvalidValue ? 3 : 0);
}
static void c_kernel_host_ptr() {
    std::vector<float> h(64);
    k_noop<<<1, 32>>>(h.data());
    CK(cudaDeviceSynchronize());
}
static void c_kernel_oob() {
    // 64 floats = 256 bytes: no alignment slack, the next byte is a guard page / ASan redzone
    float *d = dev_alloc<float>(64), *o = dev_alloc<float>(32);
    k_read_past_end<<<1, 32>>>(d, o, 64);
    CK(cudaDeviceSynchronize());
}
static void c_host_deref() {
    float *d = dev_alloc<float>(16);
    CK(cudaMemset(d, 0, 16 * sizeof(float)));
    volatile float *v = d;
    fprintf(stderr, "host read %g\n", (double)v[3]); // a GPU pointer read on the host
}
static void c_missing_barrier() {
    const int nb = 2;
    std::vector<float> x((size_t)nb * RED_TPB);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)(i % 13 + 1);
    float *dx = dev_alloc<float>(x.size()), *dout = dev_alloc<float>(nb);
    up(dx, x);
    float res[2][2];
    for (int order = 0; order < 2; order++) {
        pb_cudaemu_set_order(order);
        k_block_sum_nobarrier<<<nb, RED_TPB>>>(dx, dout);
        CK(cudaGetLastError());
        std::vector<float> o = down(dout, nb);
        res[order][0] = o[0], res[order][1] = o[1];
    }
    double exact = 0;
    for (int i = 0; i < RED_TPB; i++) exact += x[(size_t)i];
    fprintf(stderr, "block sum without the loop barrier: forward %g reverse %g exact %g\n",
            (double)res[0][0], (double)res[1][0], exact);
    if (res[0][0] != res[1][0] || res[0][0] != (float)exact || res[1][0] != (float)exact) {
        fprintf(stderr, "missing barrier detected: result differs between thread orders\n");
        exit(3);
    }
}
static void c_gemm_operand_oob() {
    cublasHandle_t h;
    cublasCreate(&h);
    float *d = dev_alloc<float>(16);
    const float one = 1.0f;
    // A is 4 x 4 with lda 8: its last column reaches past the 16-float allocation
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 1, 4, &one, d, 8, d, 4, &one, d, 4);
    CK(cudaDeviceSynchronize());
}

static const Case cases[] = {
    {"divergent_sync", "reached by 16 of 64 threads", nullptr, c_divergent_sync},
    {"sync_sites", "wait at different __syncthreads", nullptr, c_sync_sites},
    {"partial_warp_shfl", "in a partial warp", nullptr, c_partial_warp_shfl},
    {"partial_mask_shfl", "with mask 0x0000ffff", nullptr, c_partial_mask_shfl},
    {"shfl_lane_exited", "lane 3 has exited", nullptr, c_shfl_lane_exited},
    {"oversize_block", "2048 threads exceeds the limits", nullptr, c_oversize_block},
    {"zero_grid", "zero-sized grid (0,1,1)", nullptr, c_zero_grid},
    {"unchecked_launch", "was never read with cudaGetLastError", nullptr, c_unchecked_launch},
    {"memcpy_oob", "overruns the device allocation", nullptr, c_memcpy_oob},
    {"memcpy_freed", "FREED device allocation", nullptr, c_memcpy_freed},
    {"memset_oob", "overruns the device allocation", nullptr, c_memset_oob},
    {"kernel_host_ptr", "argument 0 of kernel k_noop", nullptr, c_kernel_host_ptr},
    {"kernel_oob", "illegal memory access", "heap-buffer-overflow", c_kernel_oob},
    {"host_deref", "host code dereferenced device memory", nullptr, c_host_deref},
    {"missing_barrier", "result differs between thread orders", nullptr, c_missing_barrier},
    {"gemm_operand_oob", "operand A of batch 0 (4 x 4) is not inside", nullptr, c_gemm_operand_oob},
};

static int expect_case(const char *name) {
    const Case *c = nullptr;
    for (const Case &k : cases)
        if (!strcmp(k.name, name)) c = &k;
    if (!c) {
        fprintf(stderr, "unknown case '%s'\n", name);
        return 2;
    }
    int pfd[2];
    if (pipe(pfd)) return 2;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        c->run();
        fprintf(stderr, "case returned normally\n");
        fflush(stderr);
        _exit(0);
    }
    close(pfd[1]);
    std::string out;
    char buf[4096];
    ssize_t r;
    while ((r = read(pfd[0], buf, sizeof buf)) > 0) out.append(buf, (size_t)r);
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    printf("--- child output (%s) ---\n%s--- end ---\n", name, out.c_str());
    const bool died = WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0);
    const bool said = out.find(c->needle) != std::string::npos ||
                      (c->needle2 && out.find(c->needle2) != std::string::npos);
    if (died && said) {
        printf("ok   %s caught (%s)\n", name,
               WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "non-zero exit");
        return 0;
    }
    printf("FAIL %s: %s; expected message \"%s\"%s%s%s\n", name,
           died ? "child failed" : "child did not fail", c->needle, c->needle2 ? " or \"" : "",
           c->needle2 ? c->needle2 : "", c->needle2 ? "\"" : "");
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "expect")) return expect_case(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: cudaemu_selftest [expect CASE]\n");
        return 2;
    }
    cublasHandle_t h;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return 1;
    test_gemm(h);
    test_kernels();
    test_runtime();
    cublasDestroy(h);
    printf("%s (%d failures)\n", failures ? "FAILED" : "all ok", failures);
    return failures ? 1 : 0;
}
