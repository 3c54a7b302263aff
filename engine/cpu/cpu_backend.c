// cpu_backend.c: the CPU backend's lifecycle, buffers and dispatch table.
// defines: pb_cpu_backend, pb_cpu_scratch, pb_cpu_alloc_bytes
//
// Threading: one count (e->threads) sizes every OpenMP region (num_threads(e->threads), static
// schedules); the GEMM provider runs single-threaded and GEMMs are split over the OpenMP team, so
// there is a single thread pool and results are bitwise-reproducible for a fixed provider and
// thread count.
#include "cpu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

void *pb_cpu_alloc_bytes(size_t bytes) {
    void *p = NULL;
    size_t n = bytes ? (bytes + 63) / 64 * 64 : 64;
    if (posix_memalign(&p, 64, n) != 0 || !p) PB_ABORT("out of memory allocating %zu bytes", bytes);
    memset(p, 0, n);
    return p;
}

float *pb_cpu_scratch(pb_engine *e, size_t n) {
    pb_cpu_state *s = e->state;
    if (n > s->scratch_n) {
        free(s->scratch);
        s->scratch = pb_cpu_alloc_bytes(n * sizeof(float));
        s->scratch_n = n;
    }
    return s->scratch;
}

static pb_status cpu_init(pb_engine *e, char *err, size_t errlen) {
    // The GEMM provider: PB_GEMM (the CLI's --gemm sets it), else the default rule.
    const char *name = pb_gemm_resolve(getenv("PB_GEMM"), err, errlen);
    if (!name) {
        size_t used = strlen(err);
        snprintf(err + used, errlen > used ? errlen - used : 0, " [from PB_GEMM]");
        return PB_ERR_ARG;
    }
    // The compute mode: fp32 (default) or bf16 GEMMs (PB_CPU_MATH=bf16; docs/engine.md).
    const char *math = getenv("PB_CPU_MATH");
    int bf16 = 0;
    if (math && math[0] && strcmp(math, "fp32")) {
        if (strcmp(math, "bf16"))
            return pb_errf(PB_ERR_ARG, err, errlen, "PB_CPU_MATH='%s' is not a known math mode (known: fp32, bf16)", math);
        pb_cpu_isa isa;
        pb_cpu_isa_detect(&isa);
        if (!isa.avx512_bf16 && !isa.amx_bf16)
            return pb_errf(PB_ERR_ARG, err, errlen,
                           "PB_CPU_MATH=bf16 needs a CPU with AVX512_BF16 or AMX-BF16 (this one has neither; "
                           "`peftbench info --system` lists its ISA)");
        bf16 = 1;
    }
    pb_cpu_state *s = pb_xcalloc(1, sizeof(pb_cpu_state));
    s->gemm = pb_gemm_find(name);
    if (bf16 && !(s->bf16 = pb_onednn_bf16_init(err, errlen))) {
        free(s);
        return PB_ERR_ARG;
    }
    e->state = s;
    // OpenBLAS stays single-threaded: GEMMs are split over the OpenMP team (cpu_dense.c), and
    // LAPACK callers raise it around their own calls.
    openblas_set_num_threads(1);
    pb_gemm_info info = {.name = s->gemm->name};
    s->gemm->describe(&info);
    snprintf(e->desc, sizeof e->desc, "cpu, %s %s%s%s, %d thread%s (OpenMP)", info.library, info.kernel,
             info.generic ? " [GENERIC: below this CPU's ISA]" : "",
             s->bf16 ? ", bf16 GEMMs (oneDNN bf16 matmul, FP32 accumulation)" : "", e->threads,
             e->threads == 1 ? "" : "s");
    return PB_OK;
}

static void cpu_free_state(pb_engine *e) {
    pb_cpu_state *s = e->state;
    if (!s) return;
    pb_onednn_bf16_free(s->bf16);
    free(s->scratch);
    free(s);
    e->state = NULL;
}

static float *cpu_alloc(pb_engine *e, size_t n) {
    (void)e;
    return pb_cpu_alloc_bytes(n * sizeof(float));
}
static int32_t *cpu_alloc_i32(pb_engine *e, size_t n) {
    (void)e;
    return pb_cpu_alloc_bytes(n * sizeof(int32_t));
}
static void cpu_free(pb_engine *e, void *p) {
    (void)e;
    free(p);
}
static void cpu_copy(pb_engine *e, float *dst, const float *src, size_t n) {
    if (dst == src || n == 0) return;
    if (n < PB_OMP_MIN * 4) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    int nt = e->threads;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), k = omp_get_num_threads();
        size_t a = n * (size_t)t / (size_t)k, b = n * (size_t)(t + 1) / (size_t)k;
        memcpy(dst + a, src + a, (b - a) * sizeof(float));
    }
}
static void cpu_upload(pb_engine *e, float *dst, const float *src, size_t n) { cpu_copy(e, dst, src, n); }
static void cpu_download(pb_engine *e, float *dst, const float *src, size_t n) { cpu_copy(e, dst, src, n); }
static void cpu_upload_i32(pb_engine *e, int32_t *dst, const int32_t *src, size_t n) {
    (void)e;
    if (n) memcpy(dst, src, n * sizeof(int32_t));
}
static void cpu_download_i32(pb_engine *e, int32_t *dst, const int32_t *src, size_t n) {
    (void)e;
    if (n) memcpy(dst, src, n * sizeof(int32_t));
}
static void cpu_fill(pb_engine *e, float *p, float value, size_t n) {
    int nt = e->threads;
#pragma omp parallel for num_threads(nt) schedule(static) if (n >= PB_OMP_MIN)
    for (size_t i = 0; i < n; i++) p[i] = value;
}
static void cpu_zero(pb_engine *e, float *p, size_t n) {
    if (n < PB_OMP_MIN * 4) {
        if (n) memset(p, 0, n * sizeof(float));
        return;
    }
    int nt = e->threads;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), k = omp_get_num_threads();
        size_t a = n * (size_t)t / (size_t)k, b = n * (size_t)(t + 1) / (size_t)k;
        memset(p + a, 0, (b - a) * sizeof(float));
    }
}
static void cpu_sync(pb_engine *e) { (void)e; }

static const pb_backend cpu_backend = {
    .name = "cpu",
    .init = cpu_init,
    .free_state = cpu_free_state,
    .alloc = cpu_alloc,
    .alloc_i32 = cpu_alloc_i32,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .upload_i32 = cpu_upload_i32,
    .download_i32 = cpu_download_i32,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .sync = cpu_sync,
    .gemm = pb_cpu_gemm,
    .linear_forward = pb_cpu_linear_forward,
    .linear_backward = pb_cpu_linear_backward,
    .patches_forward = pb_cpu_patches_forward,
    .patches_backward = pb_cpu_patches_backward,
    .vit_tokens_forward = pb_cpu_vit_tokens_forward,
    .vit_tokens_backward = pb_cpu_vit_tokens_backward,
    .embedding_forward = pb_cpu_embedding_forward,
    .embedding_backward = pb_cpu_embedding_backward,
    .roberta_positions = pb_cpu_roberta_positions,
    .layernorm_forward = pb_cpu_layernorm_forward,
    .layernorm_backward = pb_cpu_layernorm_backward,
    .gelu_forward = pb_cpu_gelu_forward,
    .gelu_backward = pb_cpu_gelu_backward,
    .tanh_forward = pb_cpu_tanh_forward,
    .tanh_backward = pb_cpu_tanh_backward,
    .relu_forward = pb_cpu_relu_forward,
    .relu_backward = pb_cpu_relu_backward,
    .add = pb_cpu_add,
    .axpy = pb_cpu_axpy,
    .scale = pb_cpu_scale,
    .mul_cols = pb_cpu_mul_cols,
    .mul_cols_reduce = pb_cpu_mul_cols_reduce,
    .row_norms = pb_cpu_row_norms,
    .div = pb_cpu_div,
    .ao_forward = pb_cpu_ao_forward,
    .ao_backward = pb_cpu_ao_backward,
    .dropout_forward = pb_cpu_dropout_forward,
    .dropout_backward = pb_cpu_dropout_backward,
    .attention_forward = pb_cpu_attention_forward,
    .attention_backward = pb_cpu_attention_backward,
    .take_token_forward = pb_cpu_take_token_forward,
    .take_token_backward = pb_cpu_take_token_backward,
    .xent_forward = pb_cpu_xent_forward,
    .xent_backward = pb_cpu_xent_backward,
    .mse_forward = pb_cpu_mse_forward,
    .mse_backward = pb_cpu_mse_backward,
    .argmax_rows = pb_cpu_argmax_rows,
    .has_nonfinite = pb_cpu_has_nonfinite,
    .sumsq = pb_cpu_sumsq,
    .adamw_step = pb_cpu_adamw_step,
};

const pb_backend *pb_cpu_backend(void) { return &cpu_backend; }
