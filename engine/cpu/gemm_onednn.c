// gemm_onednn.c: the oneDNN GEMM provider (built when CMake finds libdnnl; Debian libdnnl-dev).
// defines: pb_gemm_onednn
//
// dnnl_sgemm is row-major, JIT-compiled for the CPU it runs on (it never falls back to generic
// code on an x86-64 CPU with AVX2 or AVX-512). Debian's build threads with OpenMP (libgomp, the
// engine's own pool); inside a parallel region it runs on the calling thread, and outside one it
// uses omp_get_max_threads(), so a single-threaded call sets that to 1 around itself.
#include "cpu.h"
#include <stdio.h>

#if PB_HAVE_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

static void dn_call(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc) {
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    PB_CHECK(st == dnnl_success, "dnnl_sgemm failed (status %d) for %c%c M=%d N=%d K=%d lda=%d ldb=%d ldc=%d",
             (int)st, ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, lda, ldb, ldc);
}

static void dn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    if (omp_in_parallel()) {
        dn_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    dn_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    omp_set_num_threads(prev);
}

static void dn_sgemm_threaded(int threads, int ta, int tb, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb, float beta, float *C,
                              int ldc) {
    int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    dn_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    omp_set_num_threads(prev);
}

static void dn_describe(pb_gemm_info *info) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(info->library, sizeof info->library, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const char *name = "sse41";
    int level = PB_ISA_X86_64;
    switch (isa) {
    case dnnl_cpu_isa_avx: name = "avx", level = PB_ISA_AVX; break;
    case dnnl_cpu_isa_avx2: name = "avx2", level = PB_ISA_AVX2; break;
    case dnnl_cpu_isa_avx2_vnni: name = "avx2_vnni", level = PB_ISA_AVX2; break;
    case dnnl_cpu_isa_avx512_core: name = "avx512_core", level = PB_ISA_AVX512; break;
    case dnnl_cpu_isa_avx512_core_vnni: name = "avx512_core_vnni", level = PB_ISA_AVX512; break;
    case dnnl_cpu_isa_avx512_core_bf16: name = "avx512_core_bf16", level = PB_ISA_AVX512_BF16; break;
    case dnnl_cpu_isa_avx512_core_amx: name = "avx512_core_amx", level = PB_ISA_AMX; break;
    default: break;
    }
    // Its FP32 GEMM kernels stop at avx512_core (bf16/AMX serve reduced precision only).
    int f32 = level < PB_ISA_AVX512 ? level : PB_ISA_AVX512;
    snprintf(info->kernel, sizeof info->kernel, "%s (sgemm jit %s)", name,
             f32 == PB_ISA_AVX512 ? "avx512_core" : f32 == PB_ISA_AVX2 ? "avx2" : f32 == PB_ISA_AVX ? "avx" : "sse41");
    info->kernel_level = f32;
    pb_cpu_isa ci;
    pb_cpu_isa_detect(&ci);
    int cpu = (int)pb_cpu_isa_level(&ci);
    int best = cpu < PB_ISA_AVX512 ? cpu : PB_ISA_AVX512;
    info->generic = f32 < best;
}

static const pb_gemm_provider onednn = {
    .name = "onednn",
    .sgemm = dn_sgemm,
    .sgemm_threaded = dn_sgemm_threaded,
    .describe = dn_describe,
};

const pb_gemm_provider *pb_gemm_onednn(void) { return &onednn; }
#else
const pb_gemm_provider *pb_gemm_onednn(void) { return NULL; }
#endif
