// cpu_aoft.c: the CPU backend's AOFT operator AO(q) and its backward (papers.md §6.2).
// defines: pb_cpu_ao_forward, pb_cpu_ao_backward (see ops.h for the contract)
//
// The arithmetic is the one the host code in methods/aoft.c used before these became engine ops
// (double per entry / double accumulators in a fixed order), so results are bitwise unchanged.
// The forward writes disjoint rows (any thread count gives the same bits); the backward is O(D*d)
// with column sums over rows and stays on one thread so the summation order is fixed.
#include "cpu.h"
#include <string.h>

// AO (D,d), q (D), clamps (1) or NULL
void pb_cpu_ao_forward(pb_engine *e, float *AO, const float *q, int D, int d, int32_t *clamps) {
    PB_CHECK(d >= 1 && d <= D, "AO(q) needs 1 <= d <= D (d=%d, D=%d)", d, D);
    int clamped;
    const double c = pb_ao_c(q[0], &clamped);
    const int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if ((size_t)D * d >= PB_OMP_MIN)
    for (int i = 0; i < D; i++) {
        float *row = AO + (size_t)i * d; // seek to AO[i,:]
        row[0] = q[i];
        for (int j = 1; j < d; j++) {
            if (i == 0) row[j] = -q[j];
            else row[j] = (float)((i == j ? 1.0 : 0.0) - (double)q[i] * (double)q[j] / c);
        }
    }
    if (clamps && clamped) clamps[0] += 1;
}

// d<G,AO>/dq: column 0 gives G[:,0]; row 0 of column j gives -G[0,j] to q_j; the block
// -q_i q_j / c (i,j >= 1) gives -G_ij q_j/c to q_i, -G_ij q_i/c to q_j and G_ij q_i q_j/c^2 to q0
// (zero when the clamp is active: c is then constant).
// dq (D), q (D), G (D,d)
void pb_cpu_ao_backward(pb_engine *e, float *dq, const float *q, const float *G, int D, int d) {
    PB_CHECK(d >= 1 && d <= D, "AO(q) backward needs 1 <= d <= D (d=%d, D=%d)", d, D);
    int clamped;
    const double c = pb_ao_c(q[0], &clamped);
    double k = 1.0 / c, T = 0.0;
    double *acc = (double *)pb_cpu_scratch(e, 2 * (size_t)D); // (D) doubles
    memset(acc, 0, (size_t)D * sizeof(double));
    for (int i = 0; i < D; i++) acc[i] += G[(size_t)i * d];
    for (int j = 1; j < d; j++) acc[j] -= G[j];
    for (int i = 1; i < D; i++) {
        const float *g = G + (size_t)i * d; // seek to G[i,:]
        double gi = 0.0;
        for (int j = 1; j < d; j++) {
            gi += (double)g[j] * q[j];
            acc[j] -= k * g[j] * (double)q[i];
        }
        acc[i] -= k * gi;
        T += gi * (double)q[i];
    }
    if (!clamped) acc[0] += k * k * T;
    for (int i = 0; i < D; i++) dq[i] += (float)acc[i];
}
