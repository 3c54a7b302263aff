// cuda_attention.cu: multi-head scaled dot-product attention (key padding mask, dropout on the
// probabilities as HF does) on cuBLAS strided-batched GEMMs plus a softmax kernel.
// defines: pb_cuda_attention_forward, pb_cuda_attention_backward
//
// Layout: q, k, v, out are (B,T,C) with head h at channels [h*HS,(h+1)*HS); att, attd are
// (B,NH,T,T). For a fixed head h, the B matrices q[b,:,h] sit at stride T*C and att[b,h] at
// stride NH*T*T, so each GEMM is one strided-batched call per head (NH calls, batch B).
// The softmax, mask and dropout run one warp per row with a fixed reduction order; the dropout
// counter of element (bh,i,j) is bh*T*T + i*T + j, as on the CPU, so masks are identical.
#include "cuda.h"
#include <math.h>

#define PB_ATT_WARPS 8

__device__ static inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ static inline float warp_sumf(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// att (B*NH*T, T) in place: scores -> masked softmax; attd = dropout(att) when p > 0.
__global__ static void k_softmax_mask(float *att, float *attd, const int32_t *keymask, int NH,
                                      int T, float p, float keep_scale, uint64_t seed,
                                      size_t rows) {
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * PB_ATT_WARPS + (threadIdx.x >> 5); // (bh, i)
    if (row >= rows) return;
    const size_t bh = row / (size_t)T;
    const int b = (int)(bh / (size_t)NH);
    float *r = att + row * T;
    const int32_t *km = keymask ? keymask + (size_t)b * T : NULL;
    float mx = -INFINITY;
    for (int j = lane; j < T; j += 32)
        if (!km || km[j]) mx = fmaxf(mx, r[j]);
    mx = warp_max(mx);
    if (mx == -INFINITY) { // every key masked: all-zero probabilities (as the CPU)
        for (int j = lane; j < T; j += 32) {
            r[j] = 0.0f;
            if (attd) attd[row * T + j] = 0.0f;
        }
        return;
    }
    float sum = 0.0f;
    for (int j = lane; j < T; j += 32) {
        const float e = (!km || km[j]) ? expf(r[j] - mx) : 0.0f;
        r[j] = e;
        sum += e;
    }
    const float inv = 1.0f / warp_sumf(sum);
    for (int j = lane; j < T; j += 32) {
        const float pr = r[j] * inv;
        r[j] = pr;
        if (attd) {
            const uint64_t ctr = (uint64_t)row * T + j; // = bh*T*T + i*T + j
            attd[row * T + j] = pb_dropout_keep(seed, ctr, p) ? pr * keep_scale : 0.0f;
        }
    }
}

void pb_cuda_attention_forward(pb_engine *e, float *out, float *att, float *attd, const float *q,
                               const float *k, const float *v, const int32_t *keymask, int B,
                               int T, int NH, int HS, float dropout_p, uint64_t seed) {
    if (B <= 0 || T <= 0) return;
    const int C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int use_drop = dropout_p > 0.0f;
    const float keep_scale = use_drop ? 1.0f / (1.0f - dropout_p) : 1.0f;
    const long long sX = (long long)T * C, sA = (long long)NH * T * T;
    // scores[b,h] (T,T) = scale * q_bh (T,HS) @ k_bh^T
    for (int h = 0; h < NH; h++)
        pb_cuda_gemm_rm(e, 0, 1, T, T, HS, scale, q + (size_t)h * HS, C, sX, k + (size_t)h * HS, C, sX,
                        0.0f, att + (size_t)h * T * T, T, sA, B);
    const size_t rows = (size_t)B * NH * T;
    const unsigned grid = (unsigned)((rows + PB_ATT_WARPS - 1) / PB_ATT_WARPS);
    k_softmax_mask<<<grid, 32 * PB_ATT_WARPS, 0, pb_cuda_stream(e)>>>(
        att, use_drop ? attd : NULL, keymask, NH, T, dropout_p, keep_scale, seed, rows);
    PB_CUDA_LAUNCH_CHECK();
    const float *pv = use_drop ? attd : att;
    // out_bh (T,HS) = pv (T,T) @ v_bh (T,HS)
    for (int h = 0; h < NH; h++)
        pb_cuda_gemm_rm(e, 0, 0, T, HS, T, 1.0f, pv + (size_t)h * T * T, T, sA, v + (size_t)h * HS, C,
                        sX, 0.0f, out + (size_t)h * HS, C, sX, B);
}

// dA (B*NH*T, T) in place: d probs -> (through dropout) -> d scores (softmax backward).
__global__ static void k_softmax_bwd(float *dA, const float *att, float p, float keep_scale,
                                     uint64_t seed, int T, size_t rows) {
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * PB_ATT_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;
    float *d = dA + row * T;
    const float *pr = att + row * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float g = d[j];
        if (p > 0.0f) g = pb_dropout_keep(seed, (uint64_t)row * T + j, p) ? g * keep_scale : 0.0f;
        d[j] = g;
        dot += pr[j] * g;
    }
    dot = warp_sumf(dot);
    for (int j = lane; j < T; j += 32) d[j] = pr[j] * (d[j] - dot);
}

void pb_cuda_attention_backward(pb_engine *e, float *dq, float *dk, float *dv, const float *dout,
                                const float *q, const float *k, const float *v, const float *att,
                                const float *attd, int B, int T, int NH, int HS, float dropout_p,
                                uint64_t seed) {
    if (B <= 0 || T <= 0) return;
    const int C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int use_drop = dropout_p > 0.0f;
    const float keep_scale = use_drop ? 1.0f / (1.0f - dropout_p) : 1.0f;
    const long long sX = (long long)T * C, sA = (long long)NH * T * T;
    const size_t rows = (size_t)B * NH * T;
    float *dA = (float *)pb_cuda_scratch(e, rows * T * sizeof(float)); // (B,NH,T,T)
    const float *pv = use_drop ? attd : att;
    for (int h = 0; h < NH; h++) {
        const size_t ho = (size_t)h * HS, ao = (size_t)h * T * T;
        // dv_bh (T,HS) += pv^T (T,T) @ dout_bh (T,HS)
        pb_cuda_gemm_rm(e, 1, 0, T, HS, T, 1.0f, pv + ao, T, sA, dout + ho, C, sX, 1.0f, dv + ho, C, sX, B);
        // dpv (T,T) = dout_bh (T,HS) @ v_bh^T
        pb_cuda_gemm_rm(e, 0, 1, T, T, HS, 1.0f, dout + ho, C, sX, v + ho, C, sX, 0.0f, dA + ao, T, sA, B);
    }
    k_softmax_bwd<<<(unsigned)((rows + PB_ATT_WARPS - 1) / PB_ATT_WARPS), 32 * PB_ATT_WARPS, 0,
                    pb_cuda_stream(e)>>>(dA, att, dropout_p, keep_scale, seed, T, rows);
    PB_CUDA_LAUNCH_CHECK();
    for (int h = 0; h < NH; h++) {
        const size_t ho = (size_t)h * HS, ao = (size_t)h * T * T;
        // dq_bh += scale * dS @ k_bh; dk_bh += scale * dS^T @ q_bh
        pb_cuda_gemm_rm(e, 0, 0, T, HS, T, scale, dA + ao, T, sA, k + ho, C, sX, 1.0f, dq + ho, C, sX, B);
        pb_cuda_gemm_rm(e, 1, 0, T, HS, T, scale, dA + ao, T, sA, q + ho, C, sX, 1.0f, dk + ho, C, sX, B);
    }
}
