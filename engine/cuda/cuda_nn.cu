// cuda_nn.cu: the CUDA backend's non-GEMM ops: fills, patches, token assembly, embeddings,
// layernorm, activations, elementwise ops, dropout, token gather, losses, reductions, AdamW.
// defines: pb_cuda_* (see cuda.h) except GEMM/linear (cuda_backend.cu) and attention
//
// Determinism (docs/cuda.md): no float atomics anywhere. Reductions use a fixed decomposition
// that depends only on the shapes (never on the GPU model or timing): column reductions sum
// fixed chunks of rows in double, then the chunks in order; row reductions use one warp per row
// with a fixed lane order and butterfly; scalar reductions use fixed-size blocks in double and
// sum the block partials in order on one thread. The embedding backward groups rows by id on
// the host and adds each id's rows in row order, exactly as the CPU loop does.
#include "cuda.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define PB_TPB 256              // threads per block for elementwise kernels
#define PB_COLSUM_ROWS 64       // rows per chunk in column reductions
#define PB_COLSUM_TPB 128       // channels per block in column reductions
#define PB_RED_CHUNK 4096       // elements per block in scalar reductions
#define PB_RED_TPB 256

#define GRID_STRIDE(i, n)                                                                          \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                       \
         i += (size_t)gridDim.x * blockDim.x)

#define LAUNCH_ELEM(kernel, n, ...)                                                                \
    do {                                                                                           \
        if ((n) > 0) {                                                                             \
            kernel<<<pb_cuda_blocks((n), PB_TPB), PB_TPB, 0, pb_cuda_stream(e)>>>(__VA_ARGS__);    \
            PB_CUDA_LAUNCH_CHECK();                                                                \
        }                                                                                          \
    } while (0)

// Records the first validation failure (see cuda.h); later failures keep the first record.
__device__ static void set_flag(int *flags, int code, int index, int value, int limit) {
    if (atomicCAS(flags, 0, code) == 0) {
        flags[1] = index;
        flags[2] = value;
        flags[3] = limit;
    }
}

// ----------------------------------------------------------------------------
// Fills

__global__ static void k_fill(float *p, float v, size_t n) {
    GRID_STRIDE(i, n) p[i] = v;
}
void pb_cuda_fill(pb_engine *e, float *p, float value, size_t n) { LAUNCH_ELEM(k_fill, n, p, value, n); }

// out (N,OC) rows = bias (OC)
__global__ static void k_fill_bias_rows(float *out, const float *bias, size_t n, int OC) {
    GRID_STRIDE(i, n) out[i] = bias[i % (size_t)OC];
}
void pb_cuda_fill_bias_rows(pb_engine *e, float *out, const float *bias, int N, int OC) {
    size_t n = (size_t)N * OC;
    LAUNCH_ELEM(k_fill_bias_rows, n, out, bias, n, OC);
}

// ----------------------------------------------------------------------------
// Column reductions (bias grads, layernorm dw/db, mul_cols_reduce)

// part (G,C) doubles: part[g,c] = sum over rows [g*R, min(N,(g+1)*R)) in order.
__global__ static void k_colsum_part(double *part, const float *a, const float *b,
                                     const float *mean, const float *rstd, int mode, int N, int C) {
    const int c = blockIdx.y * blockDim.x + threadIdx.x;
    const int g = blockIdx.x;
    if (c >= C) return;
    const int n0 = g * PB_COLSUM_ROWS, n1 = min(N, n0 + PB_COLSUM_ROWS);
    double acc = 0.0;
    for (int n = n0; n < n1; n++) {
        const size_t i = (size_t)n * C + c;
        float t;
        if (mode == 0) t = a[i];
        else if (mode == 1) t = a[i] * b[i];
        else t = a[i] * ((b[i] - mean[n]) * rstd[n]);
        acc += (double)t;
    }
    part[(size_t)g * C + c] = acc;
}

__global__ static void k_colsum_final(float *out, const double *part, int G, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double acc = 0.0;
    for (int g = 0; g < G; g++) acc += part[(size_t)g * C + c];
    out[c] += (float)acc;
}

void pb_cuda_colsum(pb_engine *e, float *out, const float *a, const float *b, const float *mean,
                    const float *rstd, int mode, int N, int C) {
    if (N <= 0 || C <= 0) return;
    const int G = (N + PB_COLSUM_ROWS - 1) / PB_COLSUM_ROWS;
    double *part = (double *)pb_cuda_scratch(e, (size_t)G * C * sizeof(double));
    dim3 grid((unsigned)G, (unsigned)((C + PB_COLSUM_TPB - 1) / PB_COLSUM_TPB));
    k_colsum_part<<<grid, PB_COLSUM_TPB, 0, pb_cuda_stream(e)>>>(part, a, b, mean, rstd, mode, N, C);
    PB_CUDA_LAUNCH_CHECK();
    k_colsum_final<<<(C + PB_COLSUM_TPB - 1) / PB_COLSUM_TPB, PB_COLSUM_TPB, 0, pb_cuda_stream(e)>>>(
        out, part, G, C);
    PB_CUDA_LAUNCH_CHECK();
}

// ----------------------------------------------------------------------------
// Patches: cols (B,NP,K) with K = Cin*P*P, order (cin,py,px); img (B,Cin,H,W).

__global__ static void k_patches_fwd(float *cols, const float *img, int Cin, int H, int W, int P,
                                     size_t n) {
    const int GW = W / P, NP = (H / P) * GW, K = Cin * P * P;
    GRID_STRIDE(i, n) {
        const int k = (int)(i % (size_t)K);
        const size_t bp = i / (size_t)K;
        const int p = (int)(bp % (size_t)NP);
        const size_t b = bp / (size_t)NP;
        const int c = k / (P * P), py = (k / P) % P, px = k % P;
        const int y = (p / GW) * P + py, x = (p % GW) * P + px;
        cols[i] = img[((b * Cin + c) * H + y) * W + x];
    }
}
void pb_cuda_patches_forward(pb_engine *e, float *cols, const float *img, int B, int Cin, int H,
                             int W, int P) {
    size_t n = (size_t)B * Cin * H * W; // = B*NP*K
    LAUNCH_ELEM(k_patches_fwd, n, cols, img, Cin, H, W, P, n);
}

// One thread per pixel: patches do not overlap, so each pixel gets exactly one value (no race).
__global__ static void k_patches_bwd(float *dimg, const float *dcols, int Cin, int H, int W, int P,
                                     size_t n) {
    const int GW = W / P, NP = (H / P) * GW, K = Cin * P * P;
    GRID_STRIDE(i, n) {
        const int x = (int)(i % (size_t)W), y = (int)((i / (size_t)W) % (size_t)H);
        const int c = (int)((i / ((size_t)W * H)) % (size_t)Cin);
        const size_t b = i / ((size_t)W * H * Cin);
        const int p = (y / P) * GW + x / P;
        const int k = (c * P + y % P) * P + x % P;
        dimg[i] += dcols[(b * NP + p) * K + k];
    }
}
void pb_cuda_patches_backward(pb_engine *e, float *dimg, const float *dcols, int B, int Cin,
                              int H, int W, int P) {
    size_t n = (size_t)B * Cin * H * W;
    LAUNCH_ELEM(k_patches_bwd, n, dimg, dcols, Cin, H, W, P, n);
}

// ----------------------------------------------------------------------------
// ViT tokens: out (B,T,C); patch (B,T-1,C); cls (C); pos (T,C).

__global__ static void k_vit_tokens_fwd(float *out, const float *patch, const float *cls,
                                        const float *pos, int T, int C, size_t n) {
    GRID_STRIDE(i, n) {
        const int c = (int)(i % (size_t)C);
        const size_t bt = i / (size_t)C;
        const int t = (int)(bt % (size_t)T);
        const size_t b = bt / (size_t)T;
        const float src = t == 0 ? cls[c] : patch[(b * (T - 1) + (t - 1)) * C + c];
        out[i] = src + pos[(size_t)t * C + c];
    }
}
void pb_cuda_vit_tokens_forward(pb_engine *e, float *out, const float *patch, const float *cls,
                                const float *pos, int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    LAUNCH_ELEM(k_vit_tokens_fwd, n, out, patch, cls, pos, T, C, n);
}

__global__ static void k_vit_tokens_bwd_patch(float *dpatch, const float *dout, int T, int C, size_t n) {
    GRID_STRIDE(i, n) {
        const int c = (int)(i % (size_t)C);
        const size_t bt = i / (size_t)C;
        const size_t t = bt % (size_t)(T - 1), b = bt / (size_t)(T - 1);
        dpatch[i] += dout[(b * T + 1 + t) * C + c];
    }
}
// dst[t,c] += sum_b dout[b, t0 + t, c], b in order (as the CPU); rows = number of t.
__global__ static void k_sum_over_batch(float *dst, const float *dout, int B, int T, int C, int t0,
                                        size_t n) {
    GRID_STRIDE(i, n) {
        const size_t t = i / (size_t)C;
        const int c = (int)(i % (size_t)C);
        float s = 0.0f;
        for (int b = 0; b < B; b++) s += dout[((size_t)b * T + t0 + t) * C + c];
        dst[i] += s;
    }
}
void pb_cuda_vit_tokens_backward(pb_engine *e, float *dpatch, float *dcls, float *dpos,
                                 const float *dout, int B, int T, int C) {
    if (dpatch && T > 1) {
        size_t n = (size_t)B * (T - 1) * C;
        LAUNCH_ELEM(k_vit_tokens_bwd_patch, n, dpatch, dout, T, C, n);
    }
    if (dpos) {
        size_t n = (size_t)T * C;
        LAUNCH_ELEM(k_sum_over_batch, n, dpos, dout, B, T, C, 0, n);
    }
    if (dcls) {
        size_t n = (size_t)C;
        LAUNCH_ELEM(k_sum_over_batch, n, dcls, dout, B, T, C, 0, n);
    }
}

// ----------------------------------------------------------------------------
// Embeddings: out (N,C), ids (N), table (rows,C).

__global__ static void k_embedding_fwd(float *out, const int32_t *ids, const float *table, int C,
                                       int rows, int *flags, size_t n) {
    GRID_STRIDE(i, n) {
        const size_t r = i / (size_t)C;
        const int id = ids[r];
        if (id < 0 || id >= rows) { // never read out of bounds; the host aborts at the next sync
            set_flag(flags, PB_CUDA_FLAG_EMBED_ID, (int)r, id, rows);
            out[i] = 0.0f;
            continue;
        }
        out[i] = table[(size_t)id * C + i % (size_t)C];
    }
}
void pb_cuda_embedding_forward(pb_engine *e, float *out, const int32_t *ids, const float *table,
                               int N, int C, int rows) {
    size_t n = (size_t)N * C;
    LAUNCH_ELEM(k_embedding_fwd, n, out, ids, table, C, rows, pb_cuda_st(e)->flags, n);
}

// grid (U, channel blocks): for unique id u, add its rows (list[off[u]..off[u+1]), ascending)
// into dtable[uid[u],:] one after another, the CPU's order: bit-identical sums, no atomics.
__global__ static void k_embedding_bwd(float *dtable, const float *dout, const int32_t *uid,
                                       const int32_t *off, const int32_t *list, int C) {
    const int u = blockIdx.x;
    const int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float *d = dtable + (size_t)uid[u] * C + c;
    float acc = *d;
    for (int k = off[u]; k < off[u + 1]; k++) acc += dout[(size_t)list[k] * C + c];
    *d = acc;
}

static int cmp_pair(const void *pa, const void *pb) {
    const int32_t *a = (const int32_t *)pa, *b = (const int32_t *)pb;
    if (a[0] != b[0]) return a[0] < b[0] ? -1 : 1;
    return (a[1] > b[1]) - (a[1] < b[1]);
}

// On-device grouping for N <= PB_EMB_SORT_MAX (RoBERTa-base batch 32 x seq 128 = 4096): one
// block sorts the keys (id << 32 | row) with a bitonic network in shared memory (keys are unique,
// so the sorted order is unique: deterministic), then one block per sorted position that starts
// a run of equal ids adds the run's rows in ascending row order into dtable[id,:], the CPU's
// order: bit-identical, no atomics, no host synchronisation. Larger N takes the host path below.
#define PB_EMB_SORT_MAX 4096
#define PB_EMB_SORT_TPB 1024

// key (N): sorted keys; P = the power of two >= N the network runs on (padding sorts last).
__global__ static void k_embedding_sort(uint64_t *key_out, const int32_t *ids, int N, int P,
                                        int rows, int *flags) {
    __shared__ uint64_t key[PB_EMB_SORT_MAX];
    for (int i = threadIdx.x; i < P; i += blockDim.x) {
        if (i < N) {
            int id = ids[i];
            if (id < 0 || id >= rows) { // the host aborts at the next sync (as the forward does)
                set_flag(flags, PB_CUDA_FLAG_EMBED_ID, i, id, rows);
                id = 0;
            }
            key[i] = ((uint64_t)(uint32_t)id << 32) | (uint32_t)i;
        } else {
            key[i] = ~(uint64_t)0;
        }
    }
    __syncthreads();
    for (int k = 2; k <= P; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < P; i += blockDim.x) {
                const int l = i ^ j;
                if (l > i) {
                    const uint64_t a = key[i], b = key[l];
                    if ((a > b) == ((i & k) == 0)) { // ascending where bit k of i is clear
                        key[i] = b;
                        key[l] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
    for (int i = threadIdx.x; i < N; i += blockDim.x) key_out[i] = key[i];
}

// grid (N, channel blocks): block s adds the run of equal ids starting at sorted position s
// (blocks inside a run return at once).
__global__ static void k_embedding_bwd_sorted(float *dtable, const float *dout, const uint64_t *key,
                                              int N, int C) {
    const int s = blockIdx.x;
    const uint32_t id = (uint32_t)(key[s] >> 32);
    if (s > 0 && (uint32_t)(key[s - 1] >> 32) == id) return;
    const int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float *d = dtable + (size_t)id * C + c;
    float acc = *d;
    for (int t = s; t < N && (uint32_t)(key[t] >> 32) == id; t++)
        acc += dout[(size_t)(uint32_t)key[t] * C + c];
    *d = acc;
}

// Larger N: the ids come to the host (N ints) to be validated like on the CPU and grouped by id.
void pb_cuda_embedding_backward(pb_engine *e, float *dtable, const float *dout,
                                const int32_t *ids, int N, int C, int rows) {
    if (N <= 0 || C <= 0) return;
    if (N <= PB_EMB_SORT_MAX) {
        int P = 1;
        while (P < N) P <<= 1;
        uint64_t *key = (uint64_t *)pb_cuda_scratch(e, (size_t)N * sizeof(uint64_t));
        k_embedding_sort<<<1, PB_EMB_SORT_TPB, 0, pb_cuda_stream(e)>>>(key, ids, N, P, rows,
                                                                        pb_cuda_st(e)->flags);
        PB_CUDA_LAUNCH_CHECK();
        dim3 grid((unsigned)N, (unsigned)((C + 127) / 128));
        k_embedding_bwd_sorted<<<grid, 128, 0, pb_cuda_stream(e)>>>(dtable, dout, key, N, C);
        PB_CUDA_LAUNCH_CHECK();
        return;
    }
    // host layout: ids (N) | pairs (2N) | uid (N) | off (N+1) | list (N)
    int32_t *h = (int32_t *)pb_cuda_host_scratch(e, (size_t)(6 * (size_t)N + 1) * sizeof(int32_t));
    CUDA_CHECK(cudaMemcpyAsync(h, ids, (size_t)N * sizeof(int32_t), cudaMemcpyDeviceToHost,
                               pb_cuda_stream(e)));
    CUDA_CHECK(cudaStreamSynchronize(pb_cuda_stream(e)));
    int32_t *pairs = h + N;
    for (int n = 0; n < N; n++) {
        PB_CHECK(h[n] >= 0 && h[n] < rows, "embedding id %d at %d outside [0,%d)", h[n], n, rows);
        pairs[2 * n] = h[n];
        pairs[2 * n + 1] = n;
    }
    qsort(pairs, (size_t)N, 2 * sizeof(int32_t), cmp_pair); // (id, row): a total order
    int32_t *uid = pairs + 2 * (size_t)N, *off = uid + N, *list = off + N + 1;
    int U = 0;
    for (int k = 0; k < N; k++) {
        if (k == 0 || pairs[2 * k] != pairs[2 * (k - 1)]) {
            uid[U] = pairs[2 * k];
            off[U] = k;
            U++;
        }
        list[k] = pairs[2 * k + 1];
    }
    off[U] = N;
    // device copy of uid (U) | off (U+1) | list (N)
    int32_t *d = (int32_t *)pb_cuda_scratch(e, (size_t)(2 * U + 1 + N) * sizeof(int32_t));
    CUDA_CHECK(cudaMemcpyAsync(d, uid, (size_t)U * sizeof(int32_t), cudaMemcpyHostToDevice, pb_cuda_stream(e)));
    CUDA_CHECK(cudaMemcpyAsync(d + U, off, (size_t)(U + 1) * sizeof(int32_t), cudaMemcpyHostToDevice,
                               pb_cuda_stream(e)));
    CUDA_CHECK(cudaMemcpyAsync(d + 2 * U + 1, list, (size_t)N * sizeof(int32_t), cudaMemcpyHostToDevice,
                               pb_cuda_stream(e)));
    dim3 grid((unsigned)U, (unsigned)((C + 127) / 128));
    k_embedding_bwd<<<grid, 128, 0, pb_cuda_stream(e)>>>(dtable, dout, d, d + U, d + 2 * U + 1, C);
    PB_CUDA_LAUNCH_CHECK();
}

// One thread per sequence: a running count of non-pad tokens (fairseq make_positions).
__global__ static void k_roberta_positions(int32_t *pos, const int32_t *ids, int B, int T, int pad) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    int32_t run = 0;
    for (int t = 0; t < T; t++) {
        const size_t i = (size_t)b * T + t;
        if (ids[i] != pad) {
            run++;
            pos[i] = run + pad;
        } else {
            pos[i] = pad;
        }
    }
}
void pb_cuda_roberta_positions(pb_engine *e, int32_t *pos, const int32_t *ids, int B, int T,
                               int pad) {
    if (B <= 0 || T <= 0) return;
    k_roberta_positions<<<(B + 127) / 128, 128, 0, pb_cuda_stream(e)>>>(pos, ids, B, T, pad);
    PB_CUDA_LAUNCH_CHECK();
}

// ----------------------------------------------------------------------------
// LayerNorm: one warp per row; each lane sums a fixed strided subset in order, then a fixed
// butterfly: deterministic. out, inp (N,C); mean, rstd (N); w, b (C).

__device__ static inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

#define PB_LN_WARPS 8

__global__ static void k_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
                                       const float *w, const float *b, int N, int C, float eps) {
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.x * PB_LN_WARPS + (threadIdx.x >> 5);
    if (n >= N) return;
    const float *x = inp + (size_t)n * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    const float m = warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float d = x[c] - m;
        v += d * d;
    }
    const float r = 1.0f / sqrtf(warp_sum(v) / (float)C + eps);
    float *o = out + (size_t)n * C;
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * w[c] + b[c];
    if (lane == 0) {
        mean[n] = m;
        rstd[n] = r;
    }
}
void pb_cuda_layernorm_forward(pb_engine *e, float *out, float *mean, float *rstd,
                               const float *inp, const float *w, const float *b, int N, int C,
                               float eps) {
    if (N <= 0) return;
    k_layernorm_fwd<<<(N + PB_LN_WARPS - 1) / PB_LN_WARPS, 32 * PB_LN_WARPS, 0, pb_cuda_stream(e)>>>(
        out, mean, rstd, inp, w, b, N, C, eps);
    PB_CUDA_LAUNCH_CHECK();
}

__global__ static void k_layernorm_bwd_dinp(float *dinp, const float *dout, const float *inp,
                                            const float *w, const float *mean, const float *rstd,
                                            int N, int C) {
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.x * PB_LN_WARPS + (threadIdx.x >> 5);
    if (n >= N) return;
    const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
    float *d = dinp + (size_t)n * C;
    const float m = mean[n], r = rstd[n];
    float s1 = 0.0f, s2 = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float dxh = g[c] * w[c], xh = (x[c] - m) * r;
        s1 += dxh;
        s2 += dxh * xh;
    }
    s1 = warp_sum(s1) / (float)C;
    s2 = warp_sum(s2) / (float)C;
    for (int c = lane; c < C; c += 32) {
        const float dxh = g[c] * w[c], xh = (x[c] - m) * r;
        d[c] += r * (dxh - s1 - xh * s2);
    }
}
void pb_cuda_layernorm_backward(pb_engine *e, float *dinp, float *dw, float *db,
                                const float *dout, const float *inp, const float *w,
                                const float *mean, const float *rstd, int N, int C) {
    if (N <= 0) return;
    if (dinp) {
        k_layernorm_bwd_dinp<<<(N + PB_LN_WARPS - 1) / PB_LN_WARPS, 32 * PB_LN_WARPS, 0,
                               pb_cuda_stream(e)>>>(dinp, dout, inp, w, mean, rstd, N, C);
        PB_CUDA_LAUNCH_CHECK();
    }
    if (db) pb_cuda_colsum(e, db, dout, NULL, NULL, NULL, 0, N, C);
    if (dw) pb_cuda_colsum(e, dw, dout, inp, mean, rstd, 2, N, C);
}

// ----------------------------------------------------------------------------
// Activations and elementwise ops (n elements). erff/expf/tanhf are CUDA's full-precision
// versions (no fast math); build flags keep FMA contraction off (docs/cuda.md).

__global__ static void k_gelu_fwd(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) {
        const float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    }
}
__global__ static void k_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
    GRID_STRIDE(i, n) {
        const float x = inp[i];
        const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
        const float pdf = inv_sqrt_2pi * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}
__global__ static void k_tanh_fwd(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] = tanhf(inp[i]);
}
__global__ static void k_tanh_bwd(float *dinp, const float *dout, const float *out, size_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}
__global__ static void k_relu_fwd(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
__global__ static void k_relu_bwd(float *dinp, const float *dout, const float *out, size_t n) {
    GRID_STRIDE(i, n) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}
__global__ static void k_add(float *out, const float *a, const float *b, size_t n) {
    GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}
__global__ static void k_axpy(float *y, float alpha, const float *x, size_t n) {
    GRID_STRIDE(i, n) y[i] += alpha * x[i];
}
__global__ static void k_scale(float *out, const float *inp, float s, size_t n) {
    GRID_STRIDE(i, n) out[i] = inp[i] * s;
}
__global__ static void k_mul_cols(float *out, const float *inp, const float *s, int C, size_t n) {
    GRID_STRIDE(i, n) out[i] = inp[i] * s[i % (size_t)C];
}

void pb_cuda_gelu_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    LAUNCH_ELEM(k_gelu_fwd, n, out, inp, n);
}
void pb_cuda_gelu_backward(pb_engine *e, float *dinp, const float *dout, const float *inp, size_t n) {
    LAUNCH_ELEM(k_gelu_bwd, n, dinp, dout, inp, n);
}
void pb_cuda_tanh_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    LAUNCH_ELEM(k_tanh_fwd, n, out, inp, n);
}
void pb_cuda_tanh_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n) {
    LAUNCH_ELEM(k_tanh_bwd, n, dinp, dout, out, n);
}
void pb_cuda_relu_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    LAUNCH_ELEM(k_relu_fwd, n, out, inp, n);
}
void pb_cuda_relu_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n) {
    LAUNCH_ELEM(k_relu_bwd, n, dinp, dout, out, n);
}
void pb_cuda_add(pb_engine *e, float *out, const float *a, const float *b, size_t n) {
    LAUNCH_ELEM(k_add, n, out, a, b, n);
}
void pb_cuda_axpy(pb_engine *e, float *y, float alpha, const float *x, size_t n) {
    LAUNCH_ELEM(k_axpy, n, y, alpha, x, n);
}
void pb_cuda_scale(pb_engine *e, float *out, const float *inp, float scale, size_t n) {
    LAUNCH_ELEM(k_scale, n, out, inp, scale, n);
}
void pb_cuda_mul_cols(pb_engine *e, float *out, const float *inp, const float *s, int N, int C) {
    size_t n = (size_t)N * C;
    LAUNCH_ELEM(k_mul_cols, n, out, inp, s, C, n);
}
void pb_cuda_mul_cols_reduce(pb_engine *e, float *ds, const float *a, const float *b, int N, int C) {
    pb_cuda_colsum(e, ds, a, b, NULL, NULL, 1, N, C);
}

// One thread per row, columns in order in double: the CPU's sum exactly.
__global__ static void k_row_norms(float *nrm, const float *A, int rows, int cols) {
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float *a = A + (size_t)r * cols;
    double acc = 0.0;
    for (int c = 0; c < cols; c++) acc += (double)a[c] * (double)a[c];
    nrm[r] = (float)sqrt(acc);
}
__global__ static void k_div(float *out, const float *a, const float *b, size_t n) {
    GRID_STRIDE(i, n) out[i] = a[i] / b[i];
}
void pb_cuda_row_norms(pb_engine *e, float *nrm, const float *A, int rows, int cols) {
    if (rows <= 0) return;
    k_row_norms<<<(rows + 255) / 256, 256, 0, pb_cuda_stream(e)>>>(nrm, A, rows, cols);
    PB_CUDA_LAUNCH_CHECK();
}
void pb_cuda_div(pb_engine *e, float *out, const float *a, const float *b, size_t n) {
    LAUNCH_ELEM(k_div, n, out, a, b, n);
}

// Dropout: element i keeps iff pb_dropout_keep(seed, i, p) (backend.h): the CPU's mask exactly.
__global__ static void k_dropout_fwd(float *out, float *mask, const float *inp, float p, float ks,
                                     uint64_t seed, size_t n) {
    GRID_STRIDE(i, n) {
        const float mk = p == 0.0f ? 1.0f : (pb_dropout_keep(seed, i, p) ? ks : 0.0f);
        mask[i] = mk;
        out[i] = p == 0.0f ? inp[i] : inp[i] * mk;
    }
}
__global__ static void k_dropout_bwd(float *dinp, const float *dout, const float *mask, size_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * mask[i];
}
void pb_cuda_dropout_forward(pb_engine *e, float *out, float *mask, const float *inp, float p,
                             uint64_t seed, size_t n) {
    const float ks = p == 0.0f ? 1.0f : 1.0f / (1.0f - p);
    LAUNCH_ELEM(k_dropout_fwd, n, out, mask, inp, p, ks, seed, n);
}
void pb_cuda_dropout_backward(pb_engine *e, float *dinp, const float *dout, const float *mask,
                              size_t n) {
    LAUNCH_ELEM(k_dropout_bwd, n, dinp, dout, mask, n);
}

// ----------------------------------------------------------------------------
// Token gather: out (B,C), inp (B,T,C)

__global__ static void k_take_fwd(float *out, const float *inp, int T, int C, int t, size_t n) {
    GRID_STRIDE(i, n) {
        const size_t b = i / (size_t)C;
        out[i] = inp[(b * T + t) * C + i % (size_t)C];
    }
}
__global__ static void k_take_bwd(float *dinp, const float *dout, int T, int C, int t, size_t n) {
    GRID_STRIDE(i, n) {
        const size_t b = i / (size_t)C;
        dinp[(b * T + t) * C + i % (size_t)C] += dout[i];
    }
}
void pb_cuda_take_token_forward(pb_engine *e, float *out, const float *inp, int B, int T, int C,
                                int t) {
    size_t n = (size_t)B * C;
    LAUNCH_ELEM(k_take_fwd, n, out, inp, T, C, t, n);
}
void pb_cuda_take_token_backward(pb_engine *e, float *dinp, const float *dout, int B, int T, int C,
                                 int t) {
    size_t n = (size_t)B * C;
    LAUNCH_ELEM(k_take_bwd, n, dinp, dout, T, C, t, n);
}

// ----------------------------------------------------------------------------
// Block reductions in double with a fixed tree (blockDim.x == PB_RED_TPB).

__device__ static double block_sum_d(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = PB_RED_TPB / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}
__device__ static double block_max_d(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = PB_RED_TPB / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = fmax(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

// Sums part[0..n) in order on one thread (n is small: rows or block counts) and stores
// (float)(sum * mul) into out (device).
__global__ static void k_sum_parts(float *out_f, double *out_d, const double *part, size_t n,
                                   double mul) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += part[i];
    if (out_f) *out_f = (float)(s * mul);
    if (out_d) *out_d = s * mul;
}

// ----------------------------------------------------------------------------
// Losses: probs, logits (B,V); labels (B). One block per row, double math as on the CPU.

__global__ static void k_xent_fwd(float *probs, double *row_loss, const float *logits,
                                  const int32_t *labels, int V, float smoothing, int *flags) {
    __shared__ double sh[PB_RED_TPB];
    const int b = blockIdx.x;
    const float *x = logits + (size_t)b * V;
    float *p = probs + (size_t)b * V;
    int y = labels[b];
    if (y < 0 || y >= V) {
        if (threadIdx.x == 0) set_flag(flags, PB_CUDA_FLAG_LABEL, b, y, V);
        y = 0; // keep going without reading out of bounds; the host aborts at the loss download
    }
    double mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmax(mx, (double)x[v]);
    mx = block_max_d(mx, sh);
    double s = 0.0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += exp((double)x[v] - mx);
    s = block_sum_d(s, sh);
    const double lse = mx + log(s);
    double sum_logp = 0.0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const double lp = (double)x[v] - lse;
        sum_logp += lp;
        p[v] = (float)exp(lp);
    }
    sum_logp = block_sum_d(sum_logp, sh);
    if (threadIdx.x == 0)
        row_loss[b] = -(1.0 - smoothing) * ((double)x[y] - lse) - (double)smoothing / V * sum_logp;
}

void pb_cuda_xent_forward(pb_engine *e, float *probs, float *loss_host, const float *logits,
                          const int32_t *labels, int B, int V, float smoothing) {
    if (B <= 0) {
        *loss_host = NAN;
        return;
    }
    double *rows = (double *)pb_cuda_scratch(e, ((size_t)B + 1) * sizeof(double));
    k_xent_fwd<<<B, PB_RED_TPB, 0, pb_cuda_stream(e)>>>(probs, rows, logits, labels, V, smoothing,
                                                        pb_cuda_st(e)->flags);
    PB_CUDA_LAUNCH_CHECK();
    float *res = (float *)(rows + B);
    k_sum_parts<<<1, 1, 0, pb_cuda_stream(e)>>>(res, NULL, rows, (size_t)B, 1.0 / B);
    PB_CUDA_LAUNCH_CHECK();
    float *h = (float *)pb_cuda_host_scratch(e, sizeof(float));
    CUDA_CHECK(cudaMemcpyAsync(h, res, sizeof(float), cudaMemcpyDeviceToHost, pb_cuda_stream(e)));
    pb_cuda_sync_check(e);
    *loss_host = *h;
}

__global__ static void k_xent_bwd(float *dlogits, const float *probs, const int32_t *labels, int V,
                                  float smoothing, float invB, float off, size_t n) {
    GRID_STRIDE(i, n) {
        const int v = (int)(i % (size_t)V);
        const size_t b = i / (size_t)V;
        const float tgt = off + (v == labels[b] ? 1.0f - smoothing : 0.0f);
        dlogits[i] += (probs[i] - tgt) * invB;
    }
}
void pb_cuda_xent_backward(pb_engine *e, float *dlogits, const float *probs,
                           const int32_t *labels, int B, int V, float smoothing) {
    size_t n = (size_t)B * V;
    const float invB = 1.0f / (float)B, off = smoothing / (float)V;
    LAUNCH_ELEM(k_xent_bwd, n, dlogits, probs, labels, V, smoothing, invB, off, n);
}

// part[blk] = sum over a fixed chunk of PB_RED_CHUNK elements of f(i) in double.
// mode 0: (pred - target)^2; mode 1: p^2.
__global__ static void k_reduce_chunks(double *part, const float *a, const float *b, int mode,
                                       size_t n) {
    __shared__ double sh[PB_RED_TPB];
    const size_t i0 = (size_t)blockIdx.x * PB_RED_CHUNK;
    const size_t i1 = i0 + PB_RED_CHUNK < n ? i0 + PB_RED_CHUNK : n;
    double s = 0.0;
    for (size_t i = i0 + threadIdx.x; i < i1; i += PB_RED_TPB) {
        double d = mode == 0 ? (double)a[i] - (double)b[i] : (double)a[i];
        s += d * d;
    }
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// Deterministic double reduction to a device double (scratch) or float; returns the scratch
// pointer holding the result (after the part array).
static double *reduce_sq(pb_engine *e, const float *a, const float *b, int mode, size_t n,
                         float *out_f, double mul) {
    const size_t G = (n + PB_RED_CHUNK - 1) / PB_RED_CHUNK;
    double *part = (double *)pb_cuda_scratch(e, (G + 1) * sizeof(double));
    if (G > 0) {
        if (G > 0x7fffffffu) PB_ABORT("reduction of %zu elements too large", n);
        k_reduce_chunks<<<(unsigned)G, PB_RED_TPB, 0, pb_cuda_stream(e)>>>(part, a, b, mode, n);
        PB_CUDA_LAUNCH_CHECK();
    }
    k_sum_parts<<<1, 1, 0, pb_cuda_stream(e)>>>(out_f, out_f ? NULL : part + G, part, G, mul);
    PB_CUDA_LAUNCH_CHECK();
    return part + G;
}

void pb_cuda_mse_forward(pb_engine *e, float *loss_host, const float *pred, const float *target,
                         int B, int V) {
    const size_t n = (size_t)B * V;
    double *res = reduce_sq(e, pred, target, 0, n, NULL, 1.0);
    double *h = (double *)pb_cuda_host_scratch(e, sizeof(double));
    CUDA_CHECK(cudaMemcpyAsync(h, res, sizeof(double), cudaMemcpyDeviceToHost, pb_cuda_stream(e)));
    pb_cuda_sync_check(e);
    *loss_host = (float)(*h / (double)n);
}

__global__ static void k_mse_bwd(float *dpred, const float *pred, const float *target, float k,
                                 size_t n) {
    GRID_STRIDE(i, n) dpred[i] += k * (pred[i] - target[i]);
}
void pb_cuda_mse_backward(pb_engine *e, float *dpred, const float *pred, const float *target,
                          int B, int V) {
    const size_t n = (size_t)B * V;
    const float k = 2.0f / (float)n;
    LAUNCH_ELEM(k_mse_bwd, n, dpred, pred, target, k, n);
}

double pb_cuda_sumsq(pb_engine *e, const float *p, size_t n) {
    double *res = reduce_sq(e, p, NULL, 1, n, NULL, 1.0);
    double *h = (double *)pb_cuda_host_scratch(e, sizeof(double));
    CUDA_CHECK(cudaMemcpyAsync(h, res, sizeof(double), cudaMemcpyDeviceToHost, pb_cuda_stream(e)));
    pb_cuda_sync_check(e);
    return *h;
}

// One thread per row with the CPU's sequential scan (first maximum wins; NaN never wins over
// an earlier value): rows are few and V is the number of classes.
__global__ static void k_argmax(int32_t *pred, const float *logits, int B, int V) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    const float *x = logits + (size_t)b * V;
    int best = 0;
    for (int v = 1; v < V; v++)
        if (x[v] > x[best]) best = v;
    pred[b] = best;
}
void pb_cuda_argmax_rows(pb_engine *e, int32_t *pred_host, const float *logits, int B, int V) {
    if (B <= 0) return;
    int32_t *d = (int32_t *)pb_cuda_scratch(e, (size_t)B * sizeof(int32_t));
    k_argmax<<<(B + 127) / 128, 128, 0, pb_cuda_stream(e)>>>(d, logits, B, V);
    PB_CUDA_LAUNCH_CHECK();
    CUDA_CHECK(cudaMemcpyAsync(pred_host, d, (size_t)B * sizeof(int32_t), cudaMemcpyDeviceToHost,
                               pb_cuda_stream(e)));
    pb_cuda_sync_check(e);
}

__global__ static void k_nonfinite(int *flag, const float *p, size_t n) {
    int bad = 0;
    GRID_STRIDE(i, n) bad |= !isfinite(p[i]);
    if (bad) *flag = 1; // benign race: every writer stores the same value
}
int pb_cuda_has_nonfinite(pb_engine *e, const float *p, size_t n) {
    if (!n) return 0;
    int *d = (int *)pb_cuda_scratch(e, sizeof(int));
    CUDA_CHECK(cudaMemsetAsync(d, 0, sizeof(int), pb_cuda_stream(e)));
    LAUNCH_ELEM(k_nonfinite, n, d, p, n);
    int *h = (int *)pb_cuda_host_scratch(e, sizeof(int));
    CUDA_CHECK(cudaMemcpyAsync(h, d, sizeof(int), cudaMemcpyDeviceToHost, pb_cuda_stream(e)));
    pb_cuda_sync_check(e);
    return *h;
}

// ----------------------------------------------------------------------------
// AdamW: the host computes the scalars exactly as engine/cpu does (torch's single-tensor path:
// scalars from the decimal hyperparameters in double), the kernel does the same float math.

// The shortest decimal (6..9 significant digits) that rounds to f: see engine/cpu/cpu_nn.c.
static double decimal_of(float f) {
    char buf[40];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

__global__ static void k_adamw(float *p, const float *g, float *m, float *v, size_t n, int decay_on,
                               float decay, float w1, float w2, float beta2, float bc2_sqrt,
                               float eps, float step_size) {
    GRID_STRIDE(i, n) {
        const float gi = g[i];
        const float pi = decay_on ? p[i] * decay : p[i];
        const float mi = m[i] + w1 * (gi - m[i]);
        const float vi = v[i] * beta2 + w2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
    }
}

void pb_cuda_adamw_step(pb_engine *e, float *p, const float *g, float *m, float *v, size_t n,
                        float lr, float beta1, float beta2, float eps, float weight_decay,
                        int step) {
    const double lr_d = decimal_of(lr), b1 = decimal_of(beta1), b2 = decimal_of(beta2),
                 wd = decimal_of(weight_decay);
    const double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
    const float decay = (float)(1.0 - lr_d * wd);
    const float step_size = (float)(lr_d / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float w1 = (float)(1.0 - b1), w2 = (float)(1.0 - b2);
    LAUNCH_ELEM(k_adamw, n, p, g, m, v, n, weight_decay != 0.0f, decay, w1, w2, beta2, bc2_sqrt,
                eps, step_size);
}
