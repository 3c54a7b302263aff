// gemm_openblas.c: the OpenBLAS GEMM provider (always built; OpenBLAS also serves LAPACK).
// defines: pb_gemm_openblas
//
// OpenBLAS is kept at one thread (cpu_init), so cblas_sgemm runs on the calling thread; the
// pthread build allows concurrent calls from several threads on disjoint outputs.
#include "cpu.h"
#include <stdio.h>
#include <string.h>

static void ob_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

static void ob_sgemm_threaded(int threads, int ta, int tb, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta, float *C,
                              int ldc) {
    int prev = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    ob_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    openblas_set_num_threads(prev);
}

static void ob_describe(pb_gemm_info *info) {
    // openblas_get_config() is e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..."; first two words
    const char *cfg = openblas_get_config();
    snprintf(info->library, sizeof info->library, "OpenBLAS");
    if (cfg) {
        const char *sp = strchr(cfg, ' ');
        const char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
        size_t len = sp2 ? (size_t)(sp2 - cfg) : strlen(cfg);
        if (len >= sizeof info->library) len = sizeof info->library - 1;
        memcpy(info->library, cfg, len);
        info->library[len] = 0;
    }
    const char *core = openblas_get_corename();
    snprintf(info->kernel, sizeof info->kernel, "%s", core ? core : "?");
    info->kernel_level = pb_cpu_openblas_core_level(core);
    pb_cpu_isa isa;
    pb_cpu_isa_detect(&isa);
    int cpu = (int)pb_cpu_isa_level(&isa);
    // 0.3.21's best x86-64 FP32 kernels are Cooperlake's (its AMX work is bf16 only)
    int best = cpu < PB_ISA_AVX512_BF16 ? cpu : PB_ISA_AVX512_BF16;
    info->generic = info->kernel_level > 0 && info->kernel_level < best;
}

static const pb_gemm_provider openblas = {
    .name = "openblas",
    .sgemm = ob_sgemm,
    .sgemm_threaded = ob_sgemm_threaded,
    .describe = ob_describe,
};

const pb_gemm_provider *pb_gemm_openblas(void) { return &openblas; }
