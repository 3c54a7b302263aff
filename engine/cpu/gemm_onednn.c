// gemm_onednn.c: the oneDNN GEMM provider (built when CMake finds libdnnl; Debian libdnnl-dev).
// defines: pb_gemm_onednn, pb_onednn_bf16_init, pb_onednn_bf16_free, pb_onednn_bf16_impl,
//          pb_onednn_sgemm_bf16, pb_bf16_round
//
// dnnl_sgemm is row-major, JIT-compiled for the CPU it runs on (it never falls back to generic
// code on an x86-64 CPU with AVX2 or AVX-512). Debian's build threads with OpenMP (libgomp, the
// engine's own pool); inside a parallel region it runs on the calling thread, and outside one it
// uses omp_get_max_threads(), so a single-threaded call sets that to 1 around itself.
#include "cpu.h"
#include <stdio.h>
#include <string.h>

// bf16 of f, rounded to nearest even as VCVTNE2PS2BF16 does (subnormals to zero, NaN stays NaN).
uint16_t pb_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u); // zero / subnormal -> signed 0
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); // NaN stays (quiet) NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                         // round to nearest even
    return (uint16_t)(u >> 16);
}

#if PB_HAVE_ONEDNN
#include <immintrin.h>
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

// ----------------------------------------------------------------------------
// bf16 compute mode (PB_CPU_MATH=bf16): op(A) and op(B) rounded to bf16 (round to nearest even,
// as VCVTNE2PS2BF16; subnormals to zero), products accumulated in FP32 by oneDNN's bf16 matmul
// (AMX tiles or AVX512_BF16 dot products), C stays FP32 (alpha by output scale, beta by a sum
// post-op). oneDNN threads it on the engine's OpenMP pool. Primitives are cached per shape.

#define PB_BF16_CACHE 64

typedef struct {
    int ta, tb, M, N, K, ldc;
    float alpha, beta;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
} bf16_entry;

struct pb_onednn_bf16 {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    bf16_entry cache[PB_BF16_CACHE];
    int n, next;           // entries used, next to replace
    uint16_t *abuf, *bbuf; // converted operands (grow-only)
    size_t acap, bcap;
    char impl[64];         // implementation of the last primitive created ("brg:avx512_core_amx_bf16")
};

#define DN_OK(x)                                                                                   \
    do {                                                                                           \
        dnnl_status_t st_ = (x);                                                                   \
        PB_CHECK(st_ == dnnl_success, "oneDNN call failed (status %d): %s", (int)st_, #x);         \
    } while (0)

pb_onednn_bf16 *pb_onednn_bf16_init(char *err, size_t errlen) {
    pb_onednn_bf16 *c = pb_xcalloc(1, sizeof *c);
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        pb_errf(PB_ERR_ARG, err, errlen, "oneDNN: could not create a CPU engine for PB_CPU_MATH=bf16");
        if (c->eng) dnnl_engine_destroy(c->eng);
        free(c);
        return NULL;
    }
    return c;
}

void pb_onednn_bf16_free(pb_onednn_bf16 *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        dnnl_primitive_destroy(c->cache[i].prim);
        dnnl_memory_destroy(c->cache[i].a);
        dnnl_memory_destroy(c->cache[i].b);
        dnnl_memory_destroy(c->cache[i].c);
    }
    dnnl_stream_destroy(c->stream);
    dnnl_engine_destroy(c->eng);
    free(c->abuf);
    free(c->bbuf);
    free(c);
}

const char *pb_onednn_bf16_impl(const pb_onednn_bf16 *c) { return c->impl[0] ? c->impl : "(no GEMM yet)"; }

// dst (rows, cols) dense bf16 <- src (rows, cols) with leading dimension ld.
__attribute__((target("avx512f,avx512bf16,avx512bw"))) static void cvt_rows_avx512bf16(
    uint16_t *dst, const float *src, int rows, int cols, int ld, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if ((size_t)rows * cols >= PB_OMP_MIN)
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * ld;
        uint16_t *d = dst + (size_t)r * cols;
        int c = 0;
        for (; c + 32 <= cols; c += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + c + 16), _mm512_loadu_ps(s + c));
            _mm512_storeu_si512((void *)(d + c), (__m512i)v);
        }
        for (; c < cols; c++) d[c] = pb_bf16_round(s[c]);
    }
}

static void cvt_rows(uint16_t *dst, const float *src, int rows, int cols, int ld, int threads) {
    static int has = -1;
    if (has < 0) {
        pb_cpu_isa isa;
        pb_cpu_isa_detect(&isa);
        has = isa.avx512_bf16 && isa.avx512bw;
    }
    if (has) {
        cvt_rows_avx512bf16(dst, src, rows, cols, ld, threads);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static) if ((size_t)rows * cols >= PB_OMP_MIN)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)r * cols + c] = pb_bf16_round(src[(size_t)r * ld + c]);
}

static uint16_t *grow(uint16_t **buf, size_t *cap, size_t n) {
    if (n > *cap) {
        free(*buf);
        *buf = pb_cpu_alloc_bytes(n * sizeof(uint16_t));
        *cap = n;
    }
    return *buf;
}

static bf16_entry *bf16_primitive(pb_onednn_bf16 *c, int ta, int tb, int M, int N, int K, float alpha,
                                  float beta, int ldc) {
    for (int i = 0; i < c->n; i++) {
        bf16_entry *x = &c->cache[i];
        if (x->ta == ta && x->tb == tb && x->M == M && x->N == N && x->K == K && x->ldc == ldc &&
            x->alpha == alpha && x->beta == beta)
            return x;
    }
    bf16_entry *x;
    if (c->n < PB_BF16_CACHE) {
        x = &c->cache[c->n++];
    } else { // replace round-robin
        x = &c->cache[c->next];
        c->next = (c->next + 1) % PB_BF16_CACHE;
        dnnl_primitive_destroy(x->prim);
        dnnl_memory_destroy(x->a);
        dnnl_memory_destroy(x->b);
        dnnl_memory_destroy(x->c);
    }
    memset(x, 0, sizeof *x);
    x->ta = ta, x->tb = tb, x->M = M, x->N = N, x->K = K, x->ldc = ldc, x->alpha = alpha, x->beta = beta;
    // the converted operands are dense in their stored orientation: op(A) (M,K) is A (M,K) with
    // strides (K,1), or A^T with A stored (K,M): strides (1,M); likewise op(B) (K,N)
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    dnnl_dims_t as = {ta ? 1 : K, ta ? M : 1}, bs = {tb ? 1 : N, tb ? K : 1}, cs = {ldc, 1};
    DN_OK(dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_bf16, as));
    DN_OK(dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_bf16, bs));
    DN_OK(dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, cs));
    dnnl_matmul_desc_t md;
    DN_OK(dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd));
    dnnl_primitive_attr_t attr;
    DN_OK(dnnl_primitive_attr_create(&attr));
    if (alpha != 1.0f) DN_OK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha));
    dnnl_post_ops_t po = NULL;
    if (beta != 0.0f) {
        DN_OK(dnnl_post_ops_create(&po));
        DN_OK(dnnl_post_ops_append_sum(po, beta));
        DN_OK(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    dnnl_primitive_desc_t pd;
    DN_OK(dnnl_primitive_desc_create(&pd, &md, attr, c->eng, NULL));
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(c->impl, sizeof c->impl, "%s", impl);
    DN_OK(dnnl_primitive_create(&x->prim, pd));
    DN_OK(dnnl_memory_create(&x->a, &amd, c->eng, DNNL_MEMORY_NONE));
    DN_OK(dnnl_memory_create(&x->b, &bmd, c->eng, DNNL_MEMORY_NONE));
    DN_OK(dnnl_memory_create(&x->c, &cmd, c->eng, DNNL_MEMORY_NONE));
    dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return x;
}

void pb_onednn_sgemm_bf16(pb_onednn_bf16 *c, int threads, int ta, int tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N; // stored shapes
    uint16_t *a = grow(&c->abuf, &c->acap, (size_t)ar * ac), *b = grow(&c->bbuf, &c->bcap, (size_t)br * bc);
    cvt_rows(a, A, ar, ac, lda, threads);
    cvt_rows(b, B, br, bc, ldb, threads);
    bf16_entry *x = bf16_primitive(c, ta, tb, M, N, K, alpha, beta, ldc);
    DN_OK(dnnl_memory_set_data_handle(x->a, a));
    DN_OK(dnnl_memory_set_data_handle(x->b, b));
    DN_OK(dnnl_memory_set_data_handle(x->c, C));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, x->a}, {DNNL_ARG_WEIGHTS, x->b}, {DNNL_ARG_DST, x->c}};
    int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    DN_OK(dnnl_primitive_execute(x->prim, c->stream, 3, args));
    DN_OK(dnnl_stream_wait(c->stream));
    omp_set_num_threads(prev);
}
#else
const pb_gemm_provider *pb_gemm_onednn(void) { return NULL; }
pb_onednn_bf16 *pb_onednn_bf16_init(char *err, size_t errlen) {
    pb_errf(PB_ERR_ARG, err, errlen, "PB_CPU_MATH=bf16 needs oneDNN: install libdnnl-dev and rebuild");
    return NULL;
}
void pb_onednn_bf16_free(pb_onednn_bf16 *c) { (void)c; }
const char *pb_onednn_bf16_impl(const pb_onednn_bf16 *c) {
    (void)c;
    return "";
}
void pb_onednn_sgemm_bf16(pb_onednn_bf16 *c, int threads, int ta, int tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    (void)c, (void)threads, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda;
    (void)B, (void)ldb, (void)beta, (void)C, (void)ldc;
    PB_ABORT("bf16 GEMM without oneDNN (the engine refuses PB_CPU_MATH=bf16 at init)");
}
#endif
