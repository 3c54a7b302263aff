// ops.h: the shared engine's backend-neutral interface. Models and methods call only these
// functions; a backend (engine/cpu, engine/cuda) implements them and nothing more.
//
// defines: pb_engine (init/free), buffers (alloc/free/upload/download/zero/copy), the forward and
//          backward ops of a ViT / RoBERTa encoder, losses, AdamW and the LR schedule.
//
// Conventions (llm.c style):
// - Every float* / int32_t* argument below is a buffer owned by the engine's backend (host memory
//   on the CPU, device memory on CUDA), obtained from pb_alloc / pb_alloc_i32.
// - Dimension letters: B batch, T tokens, C channels (hidden), OC output channels, NH heads,
//   HS head size (C = NH*HS), N rows (= B*T usually), V classes.
// - Forward: (outputs, saved-for-backward, inputs, weights, sizes).
//   Backward: (input grads, weight grads, dout, saved, inputs, weights, sizes).
// - Every backward ACCUMULATES (+=) into input and weight grads; callers zero them per step.
//   A NULL grad pointer means "not needed": the op skips that work entirely (no dW GEMM for a
//   frozen weight, no dinp for the first layer).
// - Ops never allocate per call except where stated (scratch owned by the engine).
#ifndef PB_OPS_H
#define PB_OPS_H

#include <stdint.h>
#include <stddef.h>
#include "common.h"

typedef enum { PB_DEVICE_CPU = 0, PB_DEVICE_CUDA = 1 } pb_device;

typedef struct pb_engine pb_engine;

// Creates an engine on `device` with `threads` worker threads (<=0: number of cores). One thread
// count governs both BLAS and the elementwise work. Returns NULL and fills err when the device is
// unavailable (e.g. CUDA not built or no GPU). Caller frees with pb_engine_free.
pb_engine *pb_engine_init(pb_device device, int threads, char *err, size_t errlen);
void pb_engine_free(pb_engine *e);
pb_device pb_engine_device(const pb_engine *e);
int pb_engine_threads(const pb_engine *e);
const char *pb_engine_describe(const pb_engine *e); // e.g. "cpu, oneDNN 2.6.3 avx512_core_amx (sgemm jit avx512_core), 2 threads (OpenMP)"
// Device memory the engine holds (its buffers + scratch; the CUDA backend), in bytes, now and at
// its peak since init: the counterpart of torch.cuda.max_memory_allocated. Returns 1, or 0 and
// leaves both untouched where the backend does not track it (the CPU: see pb_peak_rss).
int pb_engine_memory(pb_engine *e, size_t *current, size_t *peak);

// Per-op profile (bench --profile). pb_engine_profile(e, 1) starts (or restarts from zero)
// timing every op call, each after a device sync; pb_engine_profile(e, 0) stops and drops it.
// pb_engine_profile_ops copies up to max per-op totals (first-call order); GEMM-like ops
// (gemm, linear_forward, linear_backward) carry their FLOPs, and pb_engine_profile_gemms lists
// the distinct GEMM shapes they ran (the calls of linear ops as their GEMMs: forward NT,
// backward dX NN and dW TN), so a benchmark can time a plain sgemm at exactly those shapes.
typedef struct {
    const char *op; // ops.h name without pb_ ("linear_forward"); static storage
    long calls;
    double seconds, flops;
} pb_prof_op;
typedef struct {
    int ta, tb, M, N, K; // row-major C (M,N) = op(A) (M,K) op(B) (K,N)
    float beta;
    long calls;
} pb_prof_gemm;
void pb_engine_profile(pb_engine *e, int on);
int pb_engine_profile_ops(const pb_engine *e, pb_prof_op *out, int max);
int pb_engine_profile_gemms(const pb_engine *e, pb_prof_gemm *out, int max);

// ----------------------------------------------------------------------------
// Buffers. Zero-initialised. Owned by the caller, freed with pb_free (NULL is fine).

float *pb_alloc(pb_engine *e, size_t n);
int32_t *pb_alloc_i32(pb_engine *e, size_t n);
void pb_free(pb_engine *e, void *p);
void pb_upload(pb_engine *e, float *dst, const float *host_src, size_t n);
void pb_download(pb_engine *e, float *host_dst, const float *src, size_t n);
void pb_upload_i32(pb_engine *e, int32_t *dst, const int32_t *host_src, size_t n);
void pb_download_i32(pb_engine *e, int32_t *host_dst, const int32_t *src, size_t n);
void pb_zero(pb_engine *e, float *p, size_t n);
void pb_copy(pb_engine *e, float *dst, const float *src, size_t n);
void pb_fill(pb_engine *e, float *p, float value, size_t n);
// Blocks until queued work is done (no-op on the CPU).
void pb_sync(pb_engine *e);

// ----------------------------------------------------------------------------
// Dense linear algebra

// General row-major GEMM: C = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T.
// op(A) is (M,K), op(B) is (K,N), C is (M,N); lda/ldb/ldc are row strides.
void pb_gemm(pb_engine *e, int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

// PyTorch-layout linear: out = inp @ w^T + bias.
// out is (N,OC), inp is (N,C), w is (OC,C), bias is (OC) or NULL.
void pb_linear_forward(pb_engine *e, float *out, const float *inp, const float *w,
                       const float *bias, int N, int C, int OC);
// dinp is (N,C) or NULL, dw is (OC,C) or NULL, dbias is (OC) or NULL, dout is (N,OC).
void pb_linear_backward(pb_engine *e, float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC);

// ----------------------------------------------------------------------------
// Embeddings

// Patch extraction for a conv with kernel = stride = P (conv as GEMM):
// cols is (B, NP, Cin*P*P) with NP = (H/P)*(W/P), row-major patches; element order within a
// patch is (cin, py, px) to match a Conv2d weight (OC, Cin, P, P) flattened to (OC, Cin*P*P).
// img is (B, Cin, H, W).
void pb_patches_forward(pb_engine *e, float *cols, const float *img, int B, int Cin, int H, int W,
                        int P);
// dimg (B,Cin,H,W) += fold(dcols)
void pb_patches_backward(pb_engine *e, float *dimg, const float *dcols, int B, int Cin, int H,
                         int W, int P);

// ViT token assembly: out[b,0,:] = cls + pos[0]; out[b,1+i,:] = patch[b,i,:] + pos[1+i].
// out is (B,T,C) with T = NP+1, patch is (B,NP,C), cls is (C), pos is (T,C).
void pb_vit_tokens_forward(pb_engine *e, float *out, const float *patch, const float *cls,
                           const float *pos, int B, int T, int C);
// dpatch (B,NP,C), dcls (C), dpos (T,C); any may be NULL.
void pb_vit_tokens_backward(pb_engine *e, float *dpatch, float *dcls, float *dpos,
                            const float *dout, int B, int T, int C);

// Row lookup: out[n,:] = table[ids[n],:]. out is (N,C), ids is (N), table is (rows,C).
// ids outside [0,rows) are an invariant violation (readers validate first).
void pb_embedding_forward(pb_engine *e, float *out, const int32_t *ids, const float *table, int N,
                          int C, int rows);
// dtable[ids[n],:] += dout[n,:] (deterministic order).
void pb_embedding_backward(pb_engine *e, float *dtable, const float *dout, const int32_t *ids,
                           int N, int C, int rows);

// RoBERTa position ids (fairseq make_positions): pos = cumsum(ids != pad) * (ids != pad) + pad.
// pos and ids are (B,T).
void pb_roberta_positions(pb_engine *e, int32_t *pos, const int32_t *ids, int B, int T, int pad);

// ----------------------------------------------------------------------------
// Normalisation and activations

// out = (inp - mean) * rstd * w + b over the last dim. out, inp are (N,C); mean, rstd are (N),
// saved for backward; w, b are (C).
void pb_layernorm_forward(pb_engine *e, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps);
void pb_layernorm_backward(pb_engine *e, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C);

// Exact erf GELU: out = 0.5 x (1 + erf(x/sqrt2)). n elements.
void pb_gelu_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_gelu_backward(pb_engine *e, float *dinp, const float *dout, const float *inp, size_t n);

// out = tanh(inp); backward uses the saved output.
void pb_tanh_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_tanh_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n);

// out = max(inp, 0); backward from the saved output: dinp += dout where out > 0 (the subgradient
// at 0 is 0, as torch's).
void pb_relu_forward(pb_engine *e, float *out, const float *inp, size_t n);
void pb_relu_backward(pb_engine *e, float *dinp, const float *dout, const float *out, size_t n);

// out = a + b (out may alias a or b).
void pb_add(pb_engine *e, float *out, const float *a, const float *b, size_t n);
// y += alpha * x
void pb_axpy(pb_engine *e, float *y, float alpha, const float *x, size_t n);
// out = inp * scale (elementwise, in place allowed)
void pb_scale(pb_engine *e, float *out, const float *inp, float scale, size_t n);
// Row scaling: out[n,c] = inp[n,c] * s[c]. out, inp are (N,C), s is (C). In place allowed.
void pb_mul_cols(pb_engine *e, float *out, const float *inp, const float *s, int N, int C);
// ds[c] += sum_n a[n,c]*b[n,c] (deterministic)
void pb_mul_cols_reduce(pb_engine *e, float *ds, const float *a, const float *b, int N, int C);
// nrm[r] = ||A[r,:]||_2 for A (rows,cols): squares summed in double in column order, rounded
// once (deterministic; the same number on every backend). DoRA's weight norm.
void pb_row_norms(pb_engine *e, float *nrm, const float *A, int rows, int cols);
// out = a / b (elementwise; out may alias a or b).
void pb_div(pb_engine *e, float *out, const float *a, const float *b, size_t n);

// AOFT's approximately orthogonal operator AO(q) (papers.md §6.2): the first d columns of
// Q(q) = [[q0, -qbar^T], [qbar, I - qbar qbar^T / c]], c = 1 + q0 clamped to |c| >= PB_AO_CLAMP
// (sign kept; c = 0 clamps to +PB_AO_CLAMP). AO is (D,d) row-major, q is (D), 1 <= d <= D.
// Entries are computed in double from the float q and rounded once. clamps is a (1) int32 buffer
// (pb_alloc_i32) or NULL: clamps[0] += 1 when the clamp was active.
#define PB_AO_CLAMP 1e-6
void pb_ao_forward(pb_engine *e, float *AO, const float *q, int D, int d, int32_t *clamps);
// dq (D) += d<G, AO(q)>/dq for G (D,d) = dL/dAO, accumulated in double (deterministic). Under
// the clamp c is constant, so q0 gets no contribution through c.
void pb_ao_backward(pb_engine *e, float *dq, const float *q, const float *G, int D, int d);

// Inverted dropout: mask[i] = keep ? 1/(1-p) : 0 drawn from (seed, counter) deterministically;
// out = inp * mask. p == 0 copies and fills mask with 1. mask is saved for backward.
void pb_dropout_forward(pb_engine *e, float *out, float *mask, const float *inp, float p,
                        uint64_t seed, size_t n);
void pb_dropout_backward(pb_engine *e, float *dinp, const float *dout, const float *mask, size_t n);

// ----------------------------------------------------------------------------
// Attention

// Multi-head scaled dot-product attention with an optional key padding mask and attention
// dropout (HF applies dropout to the softmax probabilities).
// q, k, v, out are (B,T,C) with C = NH*HS (head h uses channels [h*HS, (h+1)*HS)).
// att is (B,NH,T,T): the saved softmax probabilities. attd is (B,NH,T,T): the probabilities after
// dropout (saved; the scaled keep-mask is recoverable as attd/att), or NULL when dropout_p == 0.
// keymask is (B,T) with 1 = attend, 0 = padding, or NULL. scale = 1/sqrt(HS); masked keys get
// probability exactly 0. Dropout draws from (seed, element index) deterministically.
void pb_attention_forward(pb_engine *e, float *out, float *att, float *attd, const float *q,
                          const float *k, const float *v, const int32_t *keymask, int B, int T,
                          int NH, int HS, float dropout_p, uint64_t seed);
// dq, dk, dv are (B,T,C) and accumulate (any may be NULL only if all are: then nothing is done).
// Uses engine-owned scratch; same dropout_p/seed as the forward.
void pb_attention_backward(pb_engine *e, float *dq, float *dk, float *dv, const float *dout,
                           const float *q, const float *k, const float *v, const float *att,
                           const float *attd, int B, int T, int NH, int HS, float dropout_p,
                           uint64_t seed);

// Token gather: out[b,:] = inp[b,t,:]. out is (B,C), inp is (B,T,C).
void pb_take_token_forward(pb_engine *e, float *out, const float *inp, int B, int T, int C, int t);
void pb_take_token_backward(pb_engine *e, float *dinp, const float *dout, int B, int T, int C,
                            int t);

// ----------------------------------------------------------------------------
// Losses (mean over the batch). The scalar loss is written to host memory.

// Softmax cross-entropy with optional label smoothing eps: target distribution
// (1-eps)*onehot + eps/V. logits, probs are (B,V); labels (B) in [0,V).
// probs is saved for backward. Returns the mean loss via *loss_host.
void pb_xent_forward(pb_engine *e, float *probs, float *loss_host, const float *logits,
                     const int32_t *labels, int B, int V, float smoothing);
// dlogits (B,V) += (probs - target) / B
void pb_xent_backward(pb_engine *e, float *dlogits, const float *probs, const int32_t *labels,
                      int B, int V, float smoothing);

// Mean squared error over all B*V elements: mean((pred - target)^2).
void pb_mse_forward(pb_engine *e, float *loss_host, const float *pred, const float *target,
                    int B, int V);
void pb_mse_backward(pb_engine *e, float *dpred, const float *pred, const float *target, int B,
                     int V);

// Host-side argmax per row for metrics: pred_host[b] = argmax_v logits[b,v].
void pb_argmax_rows(pb_engine *e, int32_t *pred_host, const float *logits, int B, int V);

// Returns nonzero if any of the n values is NaN or Inf.
int pb_has_nonfinite(pb_engine *e, const float *p, size_t n);
// Sum of squares (double accumulation, deterministic), for grad norms and tests.
double pb_sumsq(pb_engine *e, const float *p, size_t n);

// ----------------------------------------------------------------------------
// Optimizer

// AdamW as torch.optim.AdamW: decoupled weight decay (p -= lr*wd*p), then Adam with bias
// correction. step is 1-based. p, g, m, v are (n).
void pb_adamw_step(pb_engine *e, float *p, const float *g, float *m, float *v, size_t n, float lr,
                   float beta1, float beta2, float eps, float weight_decay, int step);

typedef enum { PB_SCHED_CONSTANT = 0, PB_SCHED_LINEAR = 1, PB_SCHED_COSINE = 2 } pb_sched_kind;

// Learning rate at 0-based `step` of `total` steps: linear warmup from 0 over `warmup` steps,
// then constant / linear decay to 0 / cosine decay to 0 (as transformers' get_*_schedule_with_warmup).
float pb_lr_at(pb_sched_kind kind, float base_lr, int step, int warmup, int total);

// ----------------------------------------------------------------------------
// Deterministic RNG (host side): splitmix64-seeded xoshiro-like generator used for weight init,
// data shuffling and augmentation. Same seed -> same sequence on every backend.
typedef struct { uint64_t s[4]; } pb_rng;
void pb_rng_seed(pb_rng *r, uint64_t seed);
uint64_t pb_rng_u64(pb_rng *r);
float pb_rng_uniform(pb_rng *r);             // [0,1)
float pb_rng_normal(pb_rng *r);              // N(0,1)
uint32_t pb_rng_below(pb_rng *r, uint32_t n); // [0,n)

#endif
