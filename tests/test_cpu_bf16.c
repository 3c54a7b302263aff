// test_cpu_bf16.c: the CPU backend's bf16 compute mode (PB_CPU_MATH=bf16: GEMM inputs rounded
// to bf16, FP32 accumulation on oneDNN's bf16 matmul; everything else FP32).
//   - rounding: pb_bf16_round on known vectors (ties to even, NaN, inf, overflow, subnormals);
//     the engine's vector conversion gives the same bits (a GEMM against the identity returns
//     bf16(A) exactly);
//   - GEMM: all four transposes, padded leading dimensions, alpha/beta, against a double replica
//     fed the bf16-rounded inputs (<= 1e-5: only FP32 accumulation differs) and against the
//     exact FP32 product (<= 2e-2, and > 1e-4 so the mode cannot silently be FP32);
//     small GEMMs stay FP32 (<= 1e-5 against FP32);
//   - determinism: the same GEMM twice gives the same bits;
//   - training: a 6-layer ViT (hidden 192) fitting one batch for 25 AdamW steps, full FT and LoRA:
//     every step's loss within 3e-2 relative of the FP32 run's, and the loss falls below half
//     its start in both;
//   - PB_CPU_MATH errors.
// Skips (77) without oneDNN or on a CPU without AVX512_BF16 / AMX-BF16.
#include "test_ops_util.h"
#include "engine/cpu/cpu.h"
#include "engine/param.h"
#include "engine/system.h"
#include "models/model.h"
#include "methods/adapter.h"

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float bf16_to_f32(uint16_t h) { return from_bits((uint32_t)h << 16); }

static void test_round(void) {
    const struct {
        uint32_t in;
        uint16_t out;
    } v[] = {
        {0x3f800000u, 0x3f80}, // 1
        {0x3f808000u, 0x3f80}, // 1 + 2^-8: tie, even stays
        {0x3f818000u, 0x3f82}, // tie, odd rounds up
        {0x3f808001u, 0x3f81}, // above the tie
        {0xbf80ffffu, 0xbf81}, // negative, rounds away
        {0x7f7fffffu, 0x7f80}, // FLT_MAX overflows to inf
        {0x7f800000u, 0x7f80}, // inf
        {0xff800000u, 0xff80}, // -inf
        {0x00000001u, 0x0000}, // subnormal -> +0
        {0x807fffffu, 0x8000}, // subnormal -> -0
        {0x80000000u, 0x8000}, // -0
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint16_t got = pb_bf16_round(from_bits(v[i].in));
        T_CHECK(got == v[i].out, "bf16(0x%08x) = 0x%04x, want 0x%04x", v[i].in, got, v[i].out);
    }
    uint16_t nan = pb_bf16_round(from_bits(0x7fc00001u));
    T_CHECK(isnan(bf16_to_f32(nan)), "NaN must stay NaN (got 0x%04x)", nan);
    uint16_t snan = pb_bf16_round(from_bits(0x7f800001u)); // low-bit payload only: must not become inf
    T_CHECK(isnan(bf16_to_f32(snan)), "signalling NaN must stay NaN (got 0x%04x)", snan);
}

static float round_bf16(float f) { return bf16_to_f32(pb_bf16_round(f)); }

static void test_identity(pb_engine *e) {
    // C = A (M,K) @ I (K,K): bf16(A) exactly (one nonzero product per output, exact in FP32)
    const int M = 520, K = 128;
    float *A = pb_alloc(e, (size_t)M * K), *Id = pb_alloc(e, (size_t)K * K), *C = pb_alloc(e, (size_t)M * K);
    pb_rng r;
    pb_rng_seed(&r, 3);
    for (size_t i = 0; i < (size_t)M * K; i++) {
        uint32_t u = (uint32_t)pb_rng_u64(&r);
        // no inf/NaN, nor values that round to inf: inf * 0 from the identity's zeros is NaN
        if ((u & 0x7f000000u) == 0x7f000000u) u &= 0xbfffffffu;
        A[i] = from_bits(u);
        if (i % 97 == 0) A[i] = from_bits(0x3f808000u + (uint32_t)(i % 3) * 0x10000u); // ties
        if (i % 89 == 0) A[i] = from_bits(0x00000100u); // subnormals
    }
    for (int i = 0; i < K; i++) Id[(size_t)i * K + i] = 1.0f;
    pb_gemm(e, 0, 0, M, K, K, 1.0f, A, K, Id, K, 0.0f, C, K);
    long bad = 0;
    for (size_t i = 0; i < (size_t)M * K; i++) {
        float want = bf16_to_f32(pb_bf16_round(A[i]));
        if (memcmp(&C[i], &want, 4) && !(C[i] == 0 && want == 0)) {
            if (bad < 5) {
                uint32_t ua, uc, uw;
                memcpy(&ua, &A[i], 4), memcpy(&uc, &C[i], 4), memcpy(&uw, &want, 4);
                fprintf(stderr, "  A 0x%08x: got 0x%08x want 0x%08x\n", ua, uc, uw);
            }
            bad++;
        }
    }
    T_CHECK(bad == 0, "A @ I in bf16 mode: %ld of %d outputs differ from pb_bf16_round(A)", bad, M * K);
    pb_free(e, A);
    pb_free(e, Id);
    pb_free(e, C);
}

static void test_gemm(pb_engine *e) {
    pb_rng r;
    pb_rng_seed(&r, 11);
    const int shapes[][3] = {{256, 192, 200}, {96, 400, 256}, {200, 200, 200}}; // all >= 16 MFLOP
    double worst_r = 0, worst_x = 0, least_x = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
                size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                float *hA = pb_xmalloc(na * 4), *hB = pb_xmalloc(nb * 4), *hC = pb_xmalloc(nc * 4);
                t_rand_vec(&r, hA, na, -1, 1);
                t_rand_vec(&r, hB, nb, -1, 1);
                t_rand_vec(&r, hC, nc, -1, 1);
                const float alpha = s == 1 ? 0.5f : 1.0f, beta = (float)(s % 2);
                float *A = t_to_dev(e, hA, na), *B = t_to_dev(e, hB, nb), *C = t_to_dev(e, hC, nc);
                pb_gemm(e, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
                float *got = t_to_host(e, C, nc);
                double *R = pb_xmalloc(sizeof(double) * (size_t)M * N);
                t_ref_gemm(ta, tb, M, N, K, alpha, hA, lda, hB, ldb, beta, hC, ldc, round_bf16, R);
                double er = t_block_err(got, ldc, R, M, N);
                t_ref_gemm(ta, tb, M, N, K, alpha, hA, lda, hB, ldb, beta, hC, ldc, NULL, R);
                double ex = t_block_err(got, ldc, R, M, N);
                worst_r = er > worst_r ? er : worst_r;
                worst_x = ex > worst_x ? ex : worst_x;
                least_x = ex < least_x ? ex : least_x;
                T_CHECK(er <= 1e-5, "bf16 %c%c %dx%dx%d vs replica of bf16 inputs: %.3g > 1e-5", "NT"[ta], "NT"[tb], M,
                        N, K, er);
                T_CHECK(ex <= 2e-2 && ex > 1e-4, "bf16 %c%c %dx%dx%d vs FP32 product: %.3g (want 1e-4 < err <= 2e-2)",
                        "NT"[ta], "NT"[tb], M, N, K, ex);
                for (int i = 0; i < M; i++) // C's padding untouched
                    for (int j = N; j < ldc; j++)
                        if (got[(size_t)i * ldc + j] != hC[(size_t)i * ldc + j]) {
                            T_CHECK(0, "bf16 GEMM wrote C padding");
                            i = M;
                            break;
                        }
                // determinism
                pb_upload(e, C, hC, nc);
                pb_gemm(e, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
                float *again = t_to_host(e, C, nc);
                T_CHECK(!memcmp(got, again, nc * 4), "bf16 GEMM not deterministic (%c%c)", "NT"[ta], "NT"[tb]);
                free(again);
                free(got);
                free(R);
                free(hA);
                free(hB);
                free(hC);
                pb_free(e, A);
                pb_free(e, B);
                pb_free(e, C);
            }
    // below the size cutoff: FP32
    {
        const int M = 40, N = 8, K = 64;
        float *hA = pb_xmalloc(M * K * 4), *hB = pb_xmalloc(N * K * 4), hC[40 * 8] = {0};
        t_rand_vec(&r, hA, (size_t)M * K, -1, 1);
        t_rand_vec(&r, hB, (size_t)N * K, -1, 1);
        float *A = t_to_dev(e, hA, (size_t)M * K), *B = t_to_dev(e, hB, (size_t)N * K), *C = pb_alloc(e, M * N);
        pb_gemm(e, 0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        float *got = t_to_host(e, C, M * N);
        double R[40 * 8];
        t_ref_gemm(0, 1, M, N, K, 1, hA, K, hB, K, 0, hC, N, NULL, R);
        double ex = t_block_err(got, N, R, M, N);
        T_CHECK(ex <= 1e-5, "small GEMM must stay FP32 in bf16 mode: err %.3g", ex);
        free(got);
        free(hA);
        free(hB);
        pb_free(e, A);
        pb_free(e, B);
        pb_free(e, C);
    }
    printf("  bf16 GEMM: 12 cases, vs bf16-input replica %.2e (tol 1e-5), vs FP32 %.2e..%.2e (tol 2e-2)\n", worst_r,
           least_x, worst_x);
}

// 25 AdamW steps fitting one fixed batch; losses[s] per step.
static void train(const char *math, const char *method, float *losses, int steps) {
    if (math) setenv("PB_CPU_MATH", math, 1);
    else unsetenv("PB_CPU_MATH");
    char err[512];
    pb_engine *e = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
    unsetenv("PB_CPU_MATH");
    T_CHECK(e != NULL, "engine (%s): %s", math ? math : "fp32", err);
    if (!e) return;
    pb_model_config cfg;
    pb_model_config_builtin("vit-tiny", &cfg, NULL, 0);
    cfg.num_labels = 10;
    cfg.hidden_dropout = cfg.attn_dropout = cfg.classifier_dropout = 0;
    pb_model *m = pb_model_create(e, &cfg, 77);
    pb_method_config mc;
    T_CHECK(pb_method_config_init(&mc, method, 0, err, sizeof err) == PB_OK, "%s", err);
    T_CHECK(pb_method_apply(m, &mc, err, sizeof err) == PB_OK, "%s: %s", method, err);
    const int B = 16;
    pb_rng r;
    pb_rng_seed(&r, 5);
    size_t npix = (size_t)B * cfg.channels * cfg.image_size * cfg.image_size;
    float *hp = pb_xmalloc(npix * 4);
    t_rand_vec(&r, hp, npix, -1, 1);
    int32_t hl[16];
    for (int b = 0; b < B; b++) hl[b] = b % 10;
    pb_batch bt = {.B = B, .T = (cfg.image_size / cfg.patch_size) * (cfg.image_size / cfg.patch_size) + 1};
    float *pix = t_to_dev(e, hp, npix);
    int32_t *lab = pb_alloc_i32(e, B);
    pb_upload_i32(e, lab, hl, B);
    bt.pixels = pix;
    bt.labels = lab;
    int ntr = 0;
    pb_param **tr = pb_model_trainable(m, &ntr);
    pb_adamw_config opt = {.lr = !strcmp(method, "full") ? 1e-3f : 5e-3f, .beta1 = 0.9f, .beta2 = 0.999f,
                           .eps = 1e-8f, .weight_decay = 0.0f};
    for (int s = 0; s < steps; s++) {
        pb_params_zero_grad(e, tr, ntr);
        pb_model_forward(m, &bt, 1, (uint64_t)s);
        losses[s] = pb_model_loss(m, &bt, 0);
        pb_model_backward(m, &bt);
        pb_params_adamw_step(e, tr, ntr, &opt, s + 1);
    }
    free(hp);
    pb_free(e, pix);
    pb_free(e, lab);
    pb_model_free(m);
    pb_engine_free(e);
}

static void test_training(void) {
    const char *methods[] = {"full", "lora"};
    for (int k = 0; k < 2; k++) {
        float a[25], b[25];
        train(NULL, methods[k], a, 25);
        train("bf16", methods[k], b, 25);
        double worst = 0;
        for (int s = 0; s < 25; s++) {
            double d = fabs((double)a[s] - b[s]) / fabs((double)a[s]);
            worst = d > worst ? d : worst;
        }
        printf("  training %s, 25 steps: loss %.4f -> %.4f (fp32) vs %.4f -> %.4f (bf16), worst step rel diff %.2e\n",
               methods[k], a[0], a[24], b[0], b[24], worst);
        T_CHECK(worst <= 3e-2, "%s: bf16 loss trajectory %.3g (relative) from FP32's, tol 3e-2", methods[k], worst);
        T_CHECK(a[24] < 0.5f * a[0] && b[24] < 0.5f * b[0], "%s: the batch was not fitted (%g -> %g, %g -> %g)",
                methods[k], a[0], a[24], b[0], b[24]);
    }
}

int main(void) {
    pb_cpu_isa isa;
    pb_cpu_isa_detect(&isa);
    if (!pb_gemm_onednn() || !(isa.avx512_bf16 || isa.amx_bf16)) {
        printf("SKIP: bf16 mode needs oneDNN (%s) and AVX512_BF16 or AMX-BF16 (%s)\n",
               pb_gemm_onednn() ? "built in" : "not built in", isa.avx512_bf16 || isa.amx_bf16 ? "present" : "absent");
        return 77;
    }
    test_round();
    char err[512];
    setenv("PB_CPU_MATH", "bf17", 1);
    pb_engine *bad = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
    T_CHECK(!bad && strstr(err, "bf17") && strstr(err, "PB_CPU_MATH"), "PB_CPU_MATH=bf17 must fail: %s", err);
    pb_engine_free(bad);
    setenv("PB_CPU_MATH", "bf16", 1);
    pb_engine *e = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
    unsetenv("PB_CPU_MATH");
    T_CHECK(e && strstr(pb_engine_describe(e), "bf16"), "bf16 engine: %s", e ? pb_engine_describe(e) : err);
    if (!e) return 1;
    printf("  %s\n", pb_engine_describe(e));
    test_identity(e);
    test_gemm(e);
    printf("  oneDNN implementation: %s\n", pb_onednn_bf16_impl(((pb_cpu_state *)e->state)->bf16));
    pb_engine_free(e);
    test_training();
    if (t_failures) {
        fprintf(stderr, "%d failure(s)\n", t_failures);
        return 1;
    }
    printf("all bf16 checks passed\n");
    return 0;
}
