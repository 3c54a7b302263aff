// cpu_nn.c: the CPU backend's non-GEMM ops: patches, token assembly, embeddings, layernorm,
// activations, elementwise ops, dropout, token gather, losses, reductions, AdamW.
// defines: pb_cpu_* (see cpu.h)
//
// Determinism: elementwise loops use static schedules and touch disjoint elements; reductions
// over rows into per-column results (bias/LN/embedding grads) give each thread a column range
// and sum rows in order, so they are independent of the thread count; scalar reductions
// (sumsq, losses) sum per-thread partials in thread order (fixed for a fixed thread count).
// Row reductions use `omp simd reduction`: vectorised in a fixed order set at compile time.
#include "cpu.h"
#include <math.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

// Thread t's share [*a,*b) of n items split into k contiguous ranges.
static inline void split_range(size_t n, int t, int k, size_t *a, size_t *b) {
    *a = n * (size_t)t / (size_t)k;
    *b = n * (size_t)(t + 1) / (size_t)k;
}

void pb_cpu_colsum(pb_engine *e, float *out, const float *a, const float *b, int N, int C) {
    const int nt = e->threads;
    double *acc = (double *)pb_cpu_scratch(e, 2 * (size_t)C); // (C) doubles
#pragma omp parallel num_threads(nt) if ((size_t)N * C >= PB_OMP_MIN)
    {
        size_t c0, c1;
        split_range((size_t)C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (size_t c = c0; c < c1; c++) acc[c] = 0.0;
        for (int n = 0; n < N; n++) {
            const float *x = a + (size_t)n * C; // seek to a[n,:]
            if (b) {
                const float *y = b + (size_t)n * C;
                for (size_t c = c0; c < c1; c++) acc[c] += (double)(x[c] * y[c]);
            } else {
                for (size_t c = c0; c < c1; c++) acc[c] += (double)x[c];
            }
        }
        for (size_t c = c0; c < c1; c++) out[c] += (float)acc[c];
    }
}

// ----------------------------------------------------------------------------
// Patches (conv with kernel = stride = P as im2col)

// cols (B, NP, Cin*P*P) with NP = (H/P)*(W/P), element order (cin,py,px); img (B,Cin,H,W).
void pb_cpu_patches_forward(pb_engine *e, float *cols, const float *img, int B, int Cin, int H,
                            int W, int P) {
    const int GH = H / P, GW = W / P, NP = GH * GW, K = Cin * P * P;
    const int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)B * NP * K >= PB_OMP_MIN)
    for (int bp = 0; bp < B * NP; bp++) {
        const int b = bp / NP, p = bp % NP, gy = p / GW, gx = p % GW;
        float *col = cols + (size_t)bp * K; // seek to cols[b,p,:]
        for (int c = 0; c < Cin; c++)
            for (int py = 0; py < P; py++) {
                const float *src = img + (((size_t)b * Cin + c) * H + (size_t)gy * P + py) * W + (size_t)gx * P;
                memcpy(col + ((size_t)c * P + py) * P, src, (size_t)P * sizeof(float));
            }
    }
}

// dimg (B,Cin,H,W) += fold(dcols). Patches do not overlap, so every pixel receives exactly one
// value and the loop over (b,p) is race-free.
void pb_cpu_patches_backward(pb_engine *e, float *dimg, const float *dcols, int B, int Cin, int H,
                             int W, int P) {
    const int GH = H / P, GW = W / P, NP = GH * GW, K = Cin * P * P;
    const int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)B * NP * K >= PB_OMP_MIN)
    for (int bp = 0; bp < B * NP; bp++) {
        const int b = bp / NP, p = bp % NP, gy = p / GW, gx = p % GW;
        const float *col = dcols + (size_t)bp * K;
        for (int c = 0; c < Cin; c++)
            for (int py = 0; py < P; py++) {
                float *dst = dimg + (((size_t)b * Cin + c) * H + (size_t)gy * P + py) * W + (size_t)gx * P;
                const float *s = col + ((size_t)c * P + py) * P;
                for (int px = 0; px < P; px++) dst[px] += s[px];
            }
    }
}

// ----------------------------------------------------------------------------
// ViT tokens: out (B,T,C); patch (B,T-1,C); cls (C); pos (T,C).

void pb_cpu_vit_tokens_forward(pb_engine *e, float *out, const float *patch, const float *cls,
                               const float *pos, int B, int T, int C) {
    const int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)B * T * C >= PB_OMP_MIN)
    for (int bt = 0; bt < B * T; bt++) {
        const int b = bt / T, t = bt % T;
        float *o = out + (size_t)bt * C;
        const float *src = t == 0 ? cls : patch + ((size_t)b * (T - 1) + (t - 1)) * C;
        const float *ps = pos + (size_t)t * C;
        for (int c = 0; c < C; c++) o[c] = src[c] + ps[c];
    }
}

void pb_cpu_vit_tokens_backward(pb_engine *e, float *dpatch, float *dcls, float *dpos,
                                const float *dout, int B, int T, int C) {
    const int nt = e->threads;
    if (dpatch) {
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)B * T * C >= PB_OMP_MIN)
        for (int bt = 0; bt < B * (T - 1); bt++) {
            const int b = bt / (T - 1), t = bt % (T - 1);
            float *d = dpatch + (size_t)bt * C;
            const float *g = dout + ((size_t)b * T + 1 + t) * C;
            for (int c = 0; c < C; c++) d[c] += g[c];
        }
    }
    if (dpos) { // dpos[t] += sum_b dout[b,t]: parallel over t; b summed locally, added once
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)B * T * C >= PB_OMP_MIN)
        for (int t = 0; t < T; t++) {
            float *d = dpos + (size_t)t * C;
            for (int c = 0; c < C; c++) {
                float s = 0.0f;
                for (int b = 0; b < B; b++) s += dout[((size_t)b * T + t) * C + c];
                d[c] += s;
            }
        }
    }
    if (dcls) { // dcls += sum_b dout[b,0]
        for (int c = 0; c < C; c++) {
            float s = 0.0f;
            for (int b = 0; b < B; b++) s += dout[(size_t)b * T * C + c];
            dcls[c] += s;
        }
    }
}

// ----------------------------------------------------------------------------
// Embeddings: out (N,C), ids (N), table (rows,C).

void pb_cpu_embedding_forward(pb_engine *e, float *out, const int32_t *ids, const float *table,
                              int N, int C, int rows) {
    for (int n = 0; n < N; n++)
        PB_CHECK(ids[n] >= 0 && ids[n] < rows, "embedding id %d at %d outside [0,%d)", ids[n], n, rows);
    const int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)N * C >= PB_OMP_MIN)
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, table + (size_t)ids[n] * C, (size_t)C * sizeof(float));
}

// dtable[ids[n],:] += dout[n,:]. Threads split the channels (not the rows), so repeated ids never
// race and every entry is summed in row order whatever the thread count.
void pb_cpu_embedding_backward(pb_engine *e, float *dtable, const float *dout, const int32_t *ids,
                               int N, int C, int rows) {
    for (int n = 0; n < N; n++)
        PB_CHECK(ids[n] >= 0 && ids[n] < rows, "embedding id %d at %d outside [0,%d)", ids[n], n, rows);
    const int nt = e->threads;
#pragma omp parallel num_threads(nt) if ((size_t)N * C >= PB_OMP_MIN)
    {
        size_t c0, c1;
        split_range((size_t)C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int n = 0; n < N; n++) {
            float *d = dtable + (size_t)ids[n] * C;
            const float *g = dout + (size_t)n * C;
            for (size_t c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}

// pos, ids (B,T): fairseq make_positions.
void pb_cpu_roberta_positions(pb_engine *e, int32_t *pos, const int32_t *ids, int B, int T,
                              int pad) {
    (void)e;
    for (int b = 0; b < B; b++) {
        int32_t run = 0;
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (ids[i] != pad) {
                run++;
                pos[i] = run + pad;
            } else {
                pos[i] = pad;
            }
        }
    }
}

// ----------------------------------------------------------------------------
// LayerNorm: out, inp (N,C); mean, rstd (N); w, b (C).

void pb_cpu_layernorm_forward(pb_engine *e, float *out, float *mean, float *rstd,
                              const float *inp, const float *w, const float *b, int N, int C,
                              float eps) {
    const int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)N * C >= PB_OMP_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        const float m = s / (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        const float r = 1.0f / sqrtf(v / (float)C + eps);
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * r * w[c] + b[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

// dinp (N,C) += ...; dw, db (C) += ... (each may be NULL).
// One pass over (x, dout): rows go in fixed blocks of PB_LN_ROWS; each block writes its dinp rows
// and its own partial column sums of dout and dout * xhat (double) into scratch; the partials are
// then added block by block in order per channel. Blocks do not depend on the thread count, so
// the result is bitwise the same for any number of threads.
#define PB_LN_ROWS 16
void pb_cpu_layernorm_backward(pb_engine *e, float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, int N, int C) {
    const int nt = e->threads;
    const int red = dw || db;
    const int nb = (N + PB_LN_ROWS - 1) / PB_LN_ROWS;
    double *part = red ? (double *)pb_cpu_scratch(e, 4 * (size_t)nb * C) : NULL; // (nb, 2, C)
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)N * C >= PB_OMP_MIN)
    for (int blk = 0; blk < nb; blk++) {
        double *pdb = red ? part + (size_t)blk * 2 * C : NULL, *pdw = red ? pdb + C : NULL;
        if (red)
            for (int c = 0; c < 2 * C; c++) pdb[c] = 0.0;
        const int n1 = (blk + 1) * PB_LN_ROWS < N ? (blk + 1) * PB_LN_ROWS : N;
        for (int n = blk * PB_LN_ROWS; n < n1; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C; // seek to row n
            const float m = mean[n], r = rstd[n];
            // dxhat = g * w; dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
            float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
            for (int c = 0; c < C; c++) {
                float dxh = g[c] * w[c], xh = (x[c] - m) * r;
                s1 += dxh;
                s2 += dxh * xh;
            }
            if (red) {
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    pdb[c] += (double)g[c];
                    pdw[c] += (double)(g[c] * ((x[c] - m) * r));
                }
            }
            if (dinp) {
                float *d = dinp + (size_t)n * C;
                s1 /= (float)C;
                s2 /= (float)C;
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    float dxh = g[c] * w[c], xh = (x[c] - m) * r;
                    d[c] += r * (dxh - s1 - xh * s2);
                }
            }
        }
    }
    if (!red) return;
    // sum the blocks in order into block 0's row: (((p0 + p1) + p2) + ...) per channel
#pragma omp parallel num_threads(nt) if ((size_t)nb * C >= PB_OMP_MIN)
    {
        size_t c0, c1;
        split_range((size_t)2 * C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int blk = 1; blk < nb; blk++) {
            const double *pb = part + (size_t)blk * 2 * C;
#pragma omp simd
            for (size_t c = c0; c < c1; c++) part[c] += pb[c];
        }
    }
    for (int c = 0; c < C; c++) {
        if (db) db[c] += (float)part[c];
        if (dw) dw[c] += (float)part[C + c];
    }
}

// ----------------------------------------------------------------------------
// Activations and elementwise ops (n elements each)

// glibc's libmvec (2.35+) has vector erfcf/expf; declaring them `omp declare simd` lets the GELU
// loops call the AVX2/AVX-512 variants (a few ulp) instead of one scalar call per element (26x
// faster here). math.h only declares them so under -ffast-math. The CDF is written as
// Phi(x) = erfc(-x/sqrt2)/2, which equals (1 + erf(x/sqrt2))/2 without its cancellation for x < 0.
#if PB_MATH_SIMD
#pragma omp declare simd notinbranch
float erfcf(float);
#pragma omp declare simd notinbranch
float expf(float);
#define PB_OMP_ELEM_SIMD _Pragma("omp parallel for simd num_threads(nt) schedule(static) if (n >= PB_OMP_MIN)")
#else
#define PB_OMP_ELEM_SIMD _Pragma("omp parallel for num_threads(nt) schedule(static) if (n >= PB_OMP_MIN)")
#endif

#define PB_ELEMWISE_FOR for (size_t i = 0; i < n; i++)
#define PB_OMP_ELEM _Pragma("omp parallel for num_threads(nt) schedule(static) if (n >= PB_OMP_MIN)")

void pb_cpu_gelu_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM_SIMD
    PB_ELEMWISE_FOR {
        float x = inp[i];
        out[i] = 0.5f * x * erfcf(-x * (float)M_SQRT1_2);
    }
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x)
void pb_cpu_gelu_backward(pb_engine *e, float *dinp, const float *dout, const float *inp, size_t n) {
    const int nt = e->threads;
    const float inv_sqrt_2pi = 0.3989422804014327f;
    PB_OMP_ELEM_SIMD
    PB_ELEMWISE_FOR {
        float x = inp[i];
        float cdf = 0.5f * erfcf(-x * (float)M_SQRT1_2);
        float pdf = inv_sqrt_2pi * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void pb_cpu_tanh_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM
    PB_ELEMWISE_FOR out[i] = tanhf(inp[i]);
}

void pb_cpu_tanh_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM
    PB_ELEMWISE_FOR dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void pb_cpu_relu_forward(pb_engine *e, float *out, const float *inp, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM
    PB_ELEMWISE_FOR out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void pb_cpu_relu_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM
    PB_ELEMWISE_FOR dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void pb_cpu_add(pb_engine *e, float *out, const float *a, const float *b, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM
    PB_ELEMWISE_FOR out[i] = a[i] + b[i];
}

void pb_cpu_axpy(pb_engine *e, float *y, float alpha, const float *x, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM
    PB_ELEMWISE_FOR y[i] += alpha * x[i];
}

void pb_cpu_scale(pb_engine *e, float *out, const float *inp, float scale, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM
    PB_ELEMWISE_FOR out[i] = inp[i] * scale;
}

// out, inp (N,C); s (C)
void pb_cpu_mul_cols(pb_engine *e, float *out, const float *inp, const float *s, int N, int C) {
    const int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)N * C >= PB_OMP_MIN)
    for (int r = 0; r < N; r++) {
        float *o = out + (size_t)r * C;
        const float *x = inp + (size_t)r * C;
        for (int c = 0; c < C; c++) o[c] = x[c] * s[c];
    }
}

// ds (C) += sum_n a[n,c] * b[n,c]; a, b (N,C)
void pb_cpu_mul_cols_reduce(pb_engine *e, float *ds, const float *a, const float *b, int N, int C) {
    pb_cpu_colsum(e, ds, a, b, N, C);
}

// nrm (rows) = row 2-norms of A (rows,cols), summed in double in column order.
void pb_cpu_row_norms(pb_engine *e, float *nrm, const float *A, int rows, int cols) {
    const int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)rows * cols >= PB_OMP_MIN)
    for (int r = 0; r < rows; r++) {
        const float *a = A + (size_t)r * cols;
        double acc = 0.0;
        for (int c = 0; c < cols; c++) acc += (double)a[c] * (double)a[c];
        nrm[r] = (float)sqrt(acc);
    }
}

void pb_cpu_div(pb_engine *e, float *out, const float *a, const float *b, size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM_SIMD
    PB_ELEMWISE_FOR {
        out[i] = a[i] / b[i];
    }
}

// Inverted dropout with the counter-based keep test of backend.h (element i uses counter i).
void pb_cpu_dropout_forward(pb_engine *e, float *out, float *mask, const float *inp, float p,
                            uint64_t seed, size_t n) {
    const int nt = e->threads;
    if (p == 0.0f) {
        PB_OMP_ELEM
        PB_ELEMWISE_FOR {
            out[i] = inp[i];
            mask[i] = 1.0f;
        }
        return;
    }
    const float ks = 1.0f / (1.0f - p);
    PB_OMP_ELEM
    PB_ELEMWISE_FOR {
        float mk = pb_dropout_keep(seed, i, p) ? ks : 0.0f;
        mask[i] = mk;
        out[i] = inp[i] * mk;
    }
}

void pb_cpu_dropout_backward(pb_engine *e, float *dinp, const float *dout, const float *mask,
                             size_t n) {
    const int nt = e->threads;
    PB_OMP_ELEM
    PB_ELEMWISE_FOR dinp[i] += dout[i] * mask[i];
}

// ----------------------------------------------------------------------------
// Token gather: out (B,C), inp (B,T,C)

void pb_cpu_take_token_forward(pb_engine *e, float *out, const float *inp, int B, int T, int C,
                               int t) {
    (void)e;
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * C, inp + ((size_t)b * T + t) * C, (size_t)C * sizeof(float));
}

void pb_cpu_take_token_backward(pb_engine *e, float *dinp, const float *dout, int B, int T, int C,
                                int t) {
    (void)e;
    for (int b = 0; b < B; b++) {
        float *d = dinp + ((size_t)b * T + t) * C;
        const float *g = dout + (size_t)b * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}

// ----------------------------------------------------------------------------
// Losses: probs, logits (B,V); labels (B). Row work is tiny (B rows), done serially in double.

void pb_cpu_xent_forward(pb_engine *e, float *probs, float *loss_host, const float *logits,
                         const int32_t *labels, int B, int V, float smoothing) {
    (void)e;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = logits + (size_t)b * V;
        float *p = probs + (size_t)b * V;
        const int y = labels[b];
        PB_CHECK(y >= 0 && y < V, "label %d of row %d outside [0,%d)", y, b, V);
        double mx = -INFINITY;
        for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        double s = 0.0;
        for (int v = 0; v < V; v++) s += exp((double)x[v] - mx);
        const double lse = mx + log(s);
        double sum_logp = 0.0;
        for (int v = 0; v < V; v++) {
            double lp = (double)x[v] - lse;
            sum_logp += lp;
            p[v] = (float)exp(lp);
        }
        // target = (1-eps) onehot + eps/V: loss = -(1-eps) logp_y - eps/V sum_v logp_v
        total += -(1.0 - smoothing) * ((double)x[y] - lse) - (double)smoothing / V * sum_logp;
    }
    *loss_host = (float)(total / B);
}

void pb_cpu_xent_backward(pb_engine *e, float *dlogits, const float *probs, const int32_t *labels,
                          int B, int V, float smoothing) {
    (void)e;
    const float invB = 1.0f / (float)B, off = smoothing / (float)V;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * V;
        float *d = dlogits + (size_t)b * V;
        for (int v = 0; v < V; v++) {
            float tgt = off + (v == labels[b] ? 1.0f - smoothing : 0.0f);
            d[v] += (p[v] - tgt) * invB;
        }
    }
}

void pb_cpu_mse_forward(pb_engine *e, float *loss_host, const float *pred, const float *target,
                        int B, int V) {
    (void)e;
    const size_t n = (size_t)B * V;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)target[i];
        s += d * d;
    }
    *loss_host = (float)(s / (double)n);
}

// dpred += 2 (pred - target) / (B*V)
void pb_cpu_mse_backward(pb_engine *e, float *dpred, const float *pred, const float *target, int B,
                         int V) {
    (void)e;
    const size_t n = (size_t)B * V;
    const float k = 2.0f / (float)n;
    for (size_t i = 0; i < n; i++) dpred[i] += k * (pred[i] - target[i]);
}

// First maximum wins (as torch.argmax).
void pb_cpu_argmax_rows(pb_engine *e, int32_t *pred_host, const float *logits, int B, int V) {
    (void)e;
    for (int b = 0; b < B; b++) {
        const float *x = logits + (size_t)b * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (x[v] > x[best]) best = v;
        pred_host[b] = best;
    }
}

int pb_cpu_has_nonfinite(pb_engine *e, const float *p, size_t n) {
    const int nt = e->threads;
    int bad = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(| : bad) if (n >= PB_OMP_MIN)
    for (size_t i = 0; i < n; i++) bad |= !isfinite(p[i]);
    return bad;
}

// Double partials per contiguous thread range, summed in thread order.
double pb_cpu_sumsq(pb_engine *e, const float *p, size_t n) {
    const int nt = n >= PB_OMP_MIN ? e->threads : 1;
    double part[256] = {0};
    const int k = PB_MIN(nt, 256);
#pragma omp parallel num_threads(k)
    {
        int t = omp_get_thread_num(), kk = omp_get_num_threads();
        size_t a, b;
        split_range(n, t, kk, &a, &b);
        double s = 0.0;
        for (size_t i = a; i < b; i++) s += (double)p[i] * (double)p[i];
        part[t] = s;
    }
    double s = 0.0;
    for (int t = 0; t < k; t++) s += part[t];
    return s;
}

// ----------------------------------------------------------------------------
// Float hyperparameters come from decimal configs (0.999, 1e-8): recover the shortest decimal
// that rounds to f, so scalars such as 1 - beta2 are computed as torch computes them from the
// Python double (1 - 0.999f in double is off by 1.3e-5 relative).
static double decimal_of(float f) {
    char buf[40];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

// AdamW, following torch.optim.AdamW's single-tensor path: scalars in double, tensor math in
// float: p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2;
// p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps).
void pb_cpu_adamw_step(pb_engine *e, float *p, const float *g, float *m, float *v, size_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay, int step) {
    const int nt = e->threads;
    const double lr_d = decimal_of(lr), b1 = decimal_of(beta1), b2 = decimal_of(beta2),
                 wd = decimal_of(weight_decay);
    const double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
    const float decay = (float)(1.0 - lr_d * wd);
    const float step_size = (float)(lr_d / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float w1 = (float)(1.0 - b1), w2 = (float)(1.0 - b2);
    PB_OMP_ELEM
    PB_ELEMWISE_FOR {
        float gi = g[i];
        float pi = weight_decay != 0.0f ? p[i] * decay : p[i];
        float mi = m[i] + w1 * (gi - m[i]);
        float vi = v[i] * beta2 + w2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
    }
}
