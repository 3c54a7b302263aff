// cpu_attention.c: multi-head scaled dot-product attention (key padding mask, dropout on the
// probabilities as HF does) on the engine's GEMM provider.
// defines: pb_cpu_attention_forward, pb_cpu_attention_backward
//
// Parallelism: the B*NH (batch, head) pairs are independent, so one OpenMP loop with a static
// schedule spreads them over e->threads while OpenBLAS runs single-threaded inside the region
// (per-call GEMMs here are small: T x T x HS). Each pair writes disjoint outputs, so the result
// is bitwise independent of the thread count. The provider's sgemm runs on the calling thread.
#include "cpu.h"
#include <math.h>
#include <omp.h>

// libmvec's vector expf (see cpu_nn.c): the softmax exp loop vectorises.
#if PB_MATH_SIMD
#pragma omp declare simd notinbranch
float expf(float);
#endif


// q, k, v, out are (B,T,C) with C = NH*HS; att, attd are (B,NH,T,T); keymask is (B,T) or NULL.
void pb_cpu_attention_forward(pb_engine *e, float *out, float *att, float *attd, const float *q,
                              const float *k, const float *v, const int32_t *keymask, int B, int T,
                              int NH, int HS, float dropout_p, uint64_t seed) {
    const int C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int use_drop = dropout_p > 0.0f;
    const float keep_scale = use_drop ? 1.0f / (1.0f - dropout_p) : 1.0f;
    const int nt = e->threads;
    const pb_sgemm_fn sgemm = ((pb_cpu_state *)e->state)->gemm->sgemm;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        const size_t off = (size_t)b * T * C + (size_t)h * HS; // seek to x[b,0,h*HS]
        float *att_bh = att + (size_t)bh * T * T;              // (T,T)
        const int32_t *km = keymask ? keymask + (size_t)b * T : NULL;
        // scores = scale * q_bh (T,HS) @ k_bh^T (HS,T)
        sgemm(0, 1, T, T, HS, scale, q + off, C, k + off, C, 0.0f, att_bh, T);
        for (int i = 0; i < T; i++) {
            float *row = att_bh + (size_t)i * T;
            if (km) // masked keys -> -inf, so exp gives exactly 0
                for (int j = 0; j < T; j++)
                    if (!km[j]) row[j] = -INFINITY;
            float mx = -INFINITY;
#if PB_MATH_SIMD // clang will not vectorise a float max reduction without fast-math
#pragma omp simd reduction(max : mx)
#endif
            for (int j = 0; j < T; j++) mx = row[j] > mx ? row[j] : mx;
            if (mx == -INFINITY) { // every key masked: define the row as all-zero probabilities
                for (int j = 0; j < T; j++) row[j] = 0.0f;
                continue;
            }
            float sum = 0.0f;
#if PB_MATH_SIMD
#pragma omp simd reduction(+ : sum)
#endif
            for (int j = 0; j < T; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            const float inv = 1.0f / sum;
#pragma omp simd
            for (int j = 0; j < T; j++) row[j] *= inv;
        }
        const float *pv = att_bh; // probabilities that multiply V
        if (use_drop) {
            float *attd_bh = attd + (size_t)bh * T * T;
            const uint64_t base = (uint64_t)bh * T * T;
#pragma omp simd
            for (size_t i = 0; i < (size_t)T * T; i++)
                attd_bh[i] = pb_dropout_keep(seed, base + i, dropout_p) ? att_bh[i] * keep_scale : 0.0f;
            pv = attd_bh;
        }
        // out_bh (T,HS) = pv (T,T) @ v_bh (T,HS)
        sgemm(0, 0, T, HS, T, 1.0f, pv, T, v + off, C, 0.0f, out + off, C);
    }
}

// dq, dk, dv (B,T,C) += gradients; dout (B,T,C); att/attd as saved by the forward. The dropout
// keep-mask is regenerated from (seed, index) rather than divided out of attd/att.
void pb_cpu_attention_backward(pb_engine *e, float *dq, float *dk, float *dv, const float *dout,
                               const float *q, const float *k, const float *v, const float *att,
                               const float *attd, int B, int T, int NH, int HS, float dropout_p,
                               uint64_t seed) {
    const int C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int use_drop = dropout_p > 0.0f;
    const float keep_scale = use_drop ? 1.0f / (1.0f - dropout_p) : 1.0f;
    const int nt = e->threads;
    float *scratch = pb_cpu_scratch(e, (size_t)nt * T * T); // one (T,T) tile per thread
    const pb_sgemm_fn sgemm = ((pb_cpu_state *)e->state)->gemm->sgemm;
#pragma omp parallel num_threads(nt)
    {
        float *dA = scratch + (size_t)omp_get_thread_num() * T * T; // (T,T)
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            const int b = bh / NH, h = bh % NH;
            const size_t off = (size_t)b * T * C + (size_t)h * HS;
            const float *att_bh = att + (size_t)bh * T * T;
            const float *pv = use_drop ? attd + (size_t)bh * T * T : att_bh;
            // dv_bh (T,HS) += pv^T (T,T) @ dout_bh (T,HS)
            sgemm(1, 0, T, HS, T, 1.0f, pv, T, dout + off, C, 1.0f, dv + off, C);
            // dpv (T,T) = dout_bh (T,HS) @ v_bh^T (HS,T)
            sgemm(0, 1, T, T, HS, 1.0f, dout + off, C, v + off, C, 0.0f, dA, T);
            if (use_drop) { // through dropout: d att = d attd * keep/(1-p)
                const uint64_t base = (uint64_t)bh * T * T;
#pragma omp simd
                for (size_t i = 0; i < (size_t)T * T; i++)
                    dA[i] = pb_dropout_keep(seed, base + i, dropout_p) ? dA[i] * keep_scale : 0.0f;
            }
            // softmax: d score_ij = p_ij * (dp_ij - sum_k p_ik dp_ik); masked p = 0 gives 0.
            for (int i = 0; i < T; i++) {
                const float *p = att_bh + (size_t)i * T;
                float *d = dA + (size_t)i * T;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int j = 0; j < T; j++) dot += p[j] * d[j];
#pragma omp simd
                for (int j = 0; j < T; j++) d[j] = p[j] * (d[j] - dot);
            }
            // scores = scale * q k^T: dq_bh += scale * dS @ k_bh; dk_bh += scale * dS^T @ q_bh
            sgemm(0, 0, T, HS, T, scale, dA, T, k + off, C, 1.0f, dq + off, C);
            sgemm(1, 0, T, HS, T, scale, dA, T, q + off, C, 1.0f, dk + off, C);
        }
    }
}
