// cuda_aoft.cu: the CUDA backend's AOFT operator AO(q) and its backward (papers.md §6.2; the
// contract is in ops.h, the CPU version in engine/cpu/cpu_aoft.c).
// defines: pb_cuda_ao_forward, pb_cuda_ao_backward
//
// Everything stays on the engine's stream: c = 1 + q0 is recomputed from q[0] on the device by
// every thread that needs it, and the clamp counter is bumped by one fixed thread (no atomics, no
// host round trip). Forward entries use the CPU's double expression (IEEE double mul/div, built
// with --fmad=false), so AO is bitwise the CPU's. The backward is deterministic with a fixed
// decomposition that depends only on (D,d):
//   gi[r]  = sum_{j>=1} G[r,j] q[j]         one warp per row: fixed lane split + butterfly
//   part[g,j] = sum_{r in chunk g, r>=1} G[r,j] q[r]   fixed chunks of AO_ROWS rows
//   T      = sum_{r>=1} gi[r] q[r]          one block, fixed strided split + tree
//   dq[i] += (float)(G[i,0] - [1<=i<d] (G[0,i] + k sum_g part[g,i]) - [i>=1] k gi[i]
//                    + [i==0, no clamp] k^2 T),  k = 1/c
// all in double, so the result differs from the CPU's sequential order only by double rounding.
#include "cuda.h"

#define AO_TPB 256              // threads per block (a multiple of 32, a power of two)
#define AO_WARPS (AO_TPB / 32)  // rows per block in the row dots
#define AO_ROWS 64              // rows per chunk in the column sums
#define AO_COL_TPB 128          // columns per block in the column sums

#define AO_GRID_STRIDE(i, n)                                                                       \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                       \
         i += (size_t)gridDim.x * blockDim.x)

// AO (D,d) element t = (i,j); clamps (1) or NULL: bumped once per launch by thread 0 of block 0.
__global__ static void k_ao_fwd(float *AO, const float *q, int D, int d, int32_t *clamps) {
    int clamped;
    const double c = pb_ao_c(q[0], &clamped);
    const size_t n = (size_t)D * (size_t)d;
    AO_GRID_STRIDE(t, n) {
        const size_t i = t / (size_t)d, j = t % (size_t)d;
        float v;
        if (j == 0) v = q[i];
        else if (i == 0) v = -q[j];
        else v = (float)((i == j ? 1.0 : 0.0) - (double)q[i] * (double)q[j] / c);
        AO[t] = v;
    }
    if (clamps && clamped && blockIdx.x == 0 && threadIdx.x == 0) clamps[0] += 1;
}

// gi (D): gi[r] = sum_{j=1}^{d-1} G[r,j] q[j] (gi[0] is computed too and never used). One warp
// per row; the warp-level loop bound is uniform across the warp, so the full-mask shuffles see
// all 32 lanes.
__global__ static void k_ao_rowdot(double *gi, const float *G, const float *q, int D, int d) {
    const int lane = threadIdx.x & 31;
    for (size_t r = (size_t)blockIdx.x * AO_WARPS + (threadIdx.x >> 5); r < (size_t)D;
         r += (size_t)gridDim.x * AO_WARPS) {
        const float *g = G + r * (size_t)d; // seek to G[r,:]
        double s = 0.0;
        for (int j = 1 + lane; j < d; j += 32) s += (double)g[j] * (double)q[j];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) gi[r] = s;
    }
}

// part (Gc,d): part[g,j] = sum over rows [max(1, g*AO_ROWS), min(D, (g+1)*AO_ROWS)) in order of
// G[r,j] q[r]. Grid (Gc, ceil(d/AO_COL_TPB)); column 0 is computed too and never used.
__global__ static void k_ao_colpart(double *part, const float *G, const float *q, int D, int d) {
    const size_t j = (size_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (j >= (size_t)d) return;
    const size_t g = blockIdx.x;
    size_t r0 = g * AO_ROWS, r1 = r0 + AO_ROWS;
    if (r0 < 1) r0 = 1;
    if (r1 > (size_t)D) r1 = (size_t)D;
    double s = 0.0;
    for (size_t r = r0; r < r1; r++) s += (double)G[r * (size_t)d + j] * (double)q[r];
    part[g * (size_t)d + j] = s;
}

// T (1) = sum_{r=1}^{D-1} gi[r] q[r]: one block of AO_TPB threads, thread t sums rows 1+t,
// 1+t+AO_TPB, ... in order, then a fixed shared-memory tree.
__global__ static void k_ao_T(double *T, const double *gi, const float *q, int D) {
    __shared__ double sh[AO_TPB];
    double s = 0.0;
    for (size_t r = 1 + threadIdx.x; r < (size_t)D; r += AO_TPB) s += gi[r] * (double)q[r];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int h = AO_TPB / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) sh[threadIdx.x] += sh[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) *T = sh[0];
}

// dq (D) += the assembled gradient (see the header); part (Gc,d), gi (D), T (1).
__global__ static void k_ao_final(float *dq, const float *q, const float *G, const double *gi,
                                  const double *part, const double *T, int D, int d, int Gc) {
    int clamped;
    const double c = pb_ao_c(q[0], &clamped);
    const double k = 1.0 / c;
    AO_GRID_STRIDE(i, (size_t)D) {
        double a = (double)G[i * (size_t)d];
        if (i >= 1 && i < (size_t)d) {
            double s = 0.0;
            for (int g = 0; g < Gc; g++) s += part[(size_t)g * d + i];
            a -= (double)G[i];
            a -= k * s;
        }
        if (i >= 1) a -= k * gi[i];
        if (i == 0 && !clamped) a += k * k * T[0];
        dq[i] += (float)a;
    }
}

void pb_cuda_ao_forward(pb_engine *e, float *AO, const float *q, int D, int d, int32_t *clamps) {
    PB_CHECK(d >= 1 && d <= D, "AO(q) needs 1 <= d <= D (d=%d, D=%d)", d, D);
    const size_t n = (size_t)D * (size_t)d;
    k_ao_fwd<<<pb_cuda_blocks(n, AO_TPB), AO_TPB, 0, pb_cuda_stream(e)>>>(AO, q, D, d, clamps);
    PB_CUDA_LAUNCH_CHECK();
}

void pb_cuda_ao_backward(pb_engine *e, float *dq, const float *q, const float *G, int D, int d) {
    PB_CHECK(d >= 1 && d <= D, "AO(q) backward needs 1 <= d <= D (d=%d, D=%d)", d, D);
    const int Gc = (D + AO_ROWS - 1) / AO_ROWS;
    const size_t ngi = (size_t)D, npart = (size_t)Gc * (size_t)d;
    // scratch (doubles): gi (D) | part (Gc,d) | T (1)
    double *gi = (double *)pb_cuda_scratch(e, (ngi + npart + 1) * sizeof(double));
    double *part = gi + ngi, *T = part + npart;
    cudaStream_t st = pb_cuda_stream(e);
    k_ao_rowdot<<<pb_cuda_blocks((size_t)D * 32, AO_TPB), AO_TPB, 0, st>>>(gi, G, q, D, d);
    PB_CUDA_LAUNCH_CHECK();
    if (d > 1) {
        dim3 grid((unsigned)Gc, (unsigned)((d + AO_COL_TPB - 1) / AO_COL_TPB));
        k_ao_colpart<<<grid, AO_COL_TPB, 0, st>>>(part, G, q, D, d);
        PB_CUDA_LAUNCH_CHECK();
    }
    k_ao_T<<<1, AO_TPB, 0, st>>>(T, gi, q, D);
    PB_CUDA_LAUNCH_CHECK();
    k_ao_final<<<pb_cuda_blocks((size_t)D, AO_TPB), AO_TPB, 0, st>>>(dq, q, G, gi, part, T, D, d,
                                                                     d > 1 ? Gc : 0);
    PB_CUDA_LAUNCH_CHECK();
}
