// cpu_gemm.c: the GEMM provider registry of the CPU backend, the default rule, and the sgemm
// timer that bench uses for its ceilings.
// defines: pb_gemm_find, pb_gemm_providers, pb_gemm_default, pb_gemm_resolve, pb_gemm_sgemm_gflops
#include "cpu.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

// Built-in providers, OpenBLAS first; a NULL entry is one not built into this binary.
static const pb_gemm_provider *provider_at(int i) {
    switch (i) {
    case 0: return pb_gemm_openblas();
    case 1: return pb_gemm_onednn();
    default: return NULL;
    }
}
#define PB_GEMM_SLOTS 2

const pb_gemm_provider *pb_gemm_find(const char *name) {
    for (int i = 0; i < PB_GEMM_SLOTS; i++) {
        const pb_gemm_provider *p = provider_at(i);
        if (p && name && !strcmp(p->name, name)) return p;
    }
    return NULL;
}

int pb_gemm_providers(pb_gemm_info *out, int max) {
    int n = 0;
    for (int i = 0; i < PB_GEMM_SLOTS && n < max; i++) {
        const pb_gemm_provider *p = provider_at(i);
        if (!p) continue;
        memset(&out[n], 0, sizeof out[n]);
        out[n].name = p->name;
        p->describe(&out[n]);
        n++;
    }
    return n;
}

// The rule (docs/engine.md, measured side by side): oneDNN's JIT sgemm is ahead of OpenBLAS
// 0.3.21's best kernels on the AVX-512 machines measured, and cannot fall back to generic code,
// so it is the default whenever it is built in.
const char *pb_gemm_default(void) { return pb_gemm_onednn() ? "onednn" : "openblas"; }

const char *pb_gemm_resolve(const char *name, char *err, size_t errlen) {
    if (!name || !name[0] || !strcmp(name, "auto")) return pb_gemm_default();
    const pb_gemm_provider *p = pb_gemm_find(name);
    if (p) return p->name;
    char known[128] = "";
    for (int i = 0; i < PB_GEMM_SLOTS; i++) {
        const pb_gemm_provider *q = provider_at(i);
        if (!q) continue;
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", q->name);
    }
    int not_built = !strcmp(name, "onednn");
    pb_errf(PB_ERR_ARG, err, errlen, "GEMM provider '%s' %s (built in: %s, or auto)", name,
            not_built ? "is not built into this binary (install libdnnl-dev and rebuild)"
                      : "is not known",
            known);
    return NULL;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double pb_gemm_sgemm_gflops(const char *name, int mode, int threads, int ta, int tb, int M, int N,
                            int K, float beta, int reps) {
    const pb_gemm_provider *p = pb_gemm_find(name);
    if (!p || M <= 0 || N <= 0 || K <= 0) return 0;
    if (reps < 1) reps = 1;
    if (threads < 1) threads = 1;
    float *A = pb_cpu_alloc_bytes(sizeof(float) * (size_t)M * K);
    float *B = pb_cpu_alloc_bytes(sizeof(float) * (size_t)K * N);
    float *C = pb_cpu_alloc_bytes(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (float)((i * 40503u) % 1000) * 1e-3f;
    const int lda = ta ? M : K, ldb = tb ? K : N;
    // mode 0 runs exactly the engine's split (cpu_dense.c) on a throwaway engine-like state
    pb_cpu_state st = {.gemm = p};
    pb_engine e = {.device = PB_DEVICE_CPU, .threads = threads, .state = &st};
    double *ts = pb_xmalloc(sizeof(double) * (size_t)reps);
    for (int r = -2; r < reps; r++) {
        double t0 = now_s();
        if (mode == 0) pb_cpu_gemm(&e, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
        else p->sgemm_threaded(threads, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
        double dt = now_s() - t0;
        if (r >= 0) ts[r] = dt;
    }
    qsort(ts, (size_t)reps, sizeof(double), cmp_double);
    double t = reps % 2 ? ts[reps / 2] : 0.5 * (ts[reps / 2 - 1] + ts[reps / 2]);
    free(ts);
    free(A);
    free(B);
    free(C);
    free(st.scratch); // unused by the GEMM; kept for symmetry with cpu_free_state
    return t > 0 ? 2.0 * M * N * K / t * 1e-9 : 0;
}
