// test_gemm_providers.c: the CPU backend's GEMM providers and the machine facts behind them.
//   - ISA: pb_cpu_isa_detect agrees flag by flag with the Linux kernel's own CPUID reading
//     (/proc/cpuinfo "flags"), an independent parser.
//   - Kernel choice: after pb_blas_core_fix (this test calls it first thing, as main() does, so
//     the re-exec itself is exercised), no provider built in runs generic code when the CPU has
//     AVX2 or AVX-512, and the engine's description never says GENERIC.
//   - Every provider: row-major sgemm in all four transpose combinations with padded leading
//     dimensions, alpha and beta, against a double replica (||f32 - f64|| / ||f64|| <= 1e-5),
//     on the calling thread, from two OpenMP threads at once, with the library's own threads,
//     and through the engine (pb_gemm: the split over the OpenMP team) at threads 1 and 2.
//   - Determinism per provider: the engine GEMM twice -> identical bits.
//   - Selection: PB_GEMM picks the provider (the engine says which); unknown names fail with a
//     message listing the built-in ones.
//   - Profiler: linear ops report their GEMM shapes and FLOPs exactly.
#include "test_ops_util.h"
#include "engine/cpu/cpu.h"
#include "engine/system.h"
#include <omp.h>

// 1 if word w appears in the "flags" line of /proc/cpuinfo; -1 if it cannot be read.
static int cpuinfo_has(const char *w) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5)) continue;
        found = 0;
        for (char *t = strtok(strchr(line, ':') + 1, " \n"); t; t = strtok(NULL, " \n"))
            if (!strcmp(t, w)) found = 1;
        break;
    }
    fclose(f);
    return found;
}

static void test_isa(void) {
    pb_cpu_isa isa;
    pb_cpu_isa_detect(&isa);
    const struct {
        const char *linux_name;
        int ours;
    } f[] = {{"avx", isa.avx},           {"fma", isa.fma},           {"avx2", isa.avx2},
             {"avx512f", isa.avx512f},   {"avx512cd", isa.avx512cd}, {"avx512bw", isa.avx512bw},
             {"avx512dq", isa.avx512dq}, {"avx512vl", isa.avx512vl}, {"avx512_vnni", isa.avx512_vnni},
             {"avx512_bf16", isa.avx512_bf16}, {"avx512_fp16", isa.avx512_fp16},
             {"amx_tile", isa.amx_tile}, {"amx_bf16", isa.amx_bf16}, {"amx_int8", isa.amx_int8}};
    int checked = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int k = cpuinfo_has(f[i].linux_name);
        if (k < 0) break; // no /proc: nothing to compare with
        T_CHECK(k == f[i].ours, "ISA flag %s: CPUID/XGETBV says %d, /proc/cpuinfo says %d", f[i].linux_name,
                f[i].ours, k);
        checked++;
    }
    char s[512];
    pb_cpu_isa_string(&isa, s, sizeof s);
    pb_isa_level lv = pb_cpu_isa_level(&isa);
    printf("  cpu: %s (%s family %d model %d), level %s: %s; %d flags vs /proc/cpuinfo\n", isa.brand,
           isa.vendor, isa.family, isa.model, pb_isa_level_name(lv), s, checked);
    // the level is implied by the flags
    if (lv >= PB_ISA_AVX2) T_CHECK(isa.avx2 && isa.fma, "level avx2 without avx2+fma");
    if (lv >= PB_ISA_AVX512) T_CHECK(isa.avx512f && isa.avx512bw && isa.avx512dq && isa.avx512vl, "level avx512");
    if (isa.avx2 && isa.fma) T_CHECK(lv >= PB_ISA_AVX2, "avx2+fma but level %d", lv);
    // a tiny buffer truncates cleanly
    char tiny[6];
    pb_cpu_isa_string(&isa, tiny, sizeof tiny);
    T_CHECK(strlen(tiny) < sizeof tiny, "isa string overflow");
}

static void test_kernel_choice(void) {
    pb_cpu_isa isa;
    pb_cpu_isa_detect(&isa);
    pb_isa_level lv = pb_cpu_isa_level(&isa);
    pb_gemm_info prov[8];
    int np = pb_gemm_providers(prov, 8);
    T_CHECK(np >= 1 && !strcmp(prov[0].name, "openblas"), "OpenBLAS must be the first provider");
    const char *user = getenv("PB_OPENBLAS_DETECTED") ? NULL : getenv("OPENBLAS_CORETYPE");
    for (int i = 0; i < np; i++) {
        printf("  provider %-9s %-16s %s%s\n", prov[i].name, prov[i].library, prov[i].kernel,
               prov[i].generic ? "  GENERIC" : "");
        if (user && !strcmp(prov[i].name, "openblas")) {
            printf("  (OPENBLAS_CORETYPE=%s set by the user: OpenBLAS's kernel not judged)\n", user);
            continue;
        }
        if (lv >= PB_ISA_AVX2)
            T_CHECK(!prov[i].generic, "provider %s runs generic kernels (%s) on a CPU with %s", prov[i].name,
                    prov[i].kernel, pb_isa_level_name(lv));
        if (lv >= PB_ISA_AVX2)
            T_CHECK(prov[i].kernel_level >= PB_ISA_AVX2, "provider %s kernel level %d below avx2", prov[i].name,
                    prov[i].kernel_level);
    }
    // The plan is consistent with what happened: after the fix no second re-exec is asked for.
    pb_blas_core_plan plan;
    pb_blas_core_plan_make(&plan);
    T_CHECK(!plan.reexec, "OpenBLAS core plan still asks for a re-exec after pb_blas_core_fix (%s)", plan.why);
    printf("  openblas core: %s (%s)\n", plan.detected, plan.why);
    // The re-exec really happened where it was needed: OpenBLAS's own choice is recorded.
    const char *det = getenv("PB_OPENBLAS_DETECTED");
    if (det) {
        T_CHECK(pb_cpu_openblas_core_level(det) < pb_cpu_openblas_core_level(plan.detected),
                "re-exec from %s to %s did not raise the core", det, plan.detected);
        printf("  OpenBLAS alone chose %s; re-exec gave %s\n", det, plan.detected);
    }
}

typedef struct {
    float *A, *B, *C0;
    int lda, ldb, ldc;
} gemm_case;

static gemm_case make_case(pb_rng *r, int ta, int tb, int M, int N, int K) {
    gemm_case g;
    g.lda = (ta ? M : K) + 3;
    g.ldb = (tb ? K : N) + 5;
    g.ldc = N + 7;
    size_t na = (size_t)(ta ? K : M) * g.lda, nb = (size_t)(tb ? N : K) * g.ldb, nc = (size_t)M * g.ldc;
    g.A = pb_cpu_alloc_bytes(na * sizeof(float));
    g.B = pb_cpu_alloc_bytes(nb * sizeof(float));
    g.C0 = pb_cpu_alloc_bytes(nc * sizeof(float));
    t_rand_vec(r, g.A, na, -1, 1);
    t_rand_vec(r, g.B, nb, -1, 1);
    t_rand_vec(r, g.C0, nc, -1, 1);
    return g;
}

static void test_provider_sgemm(const pb_gemm_provider *p) {
    pb_rng r;
    pb_rng_seed(&r, 17);
    // small (one call everywhere) and above the engine's split cutoff (2MNK >= 4e6) in both
    // orientations (M >= N splits rows, N > M splits columns)
    const int shapes[][3] = {{7, 5, 3}, {33, 17, 29}, {197, 64, 197}, {150, 70, 300}, {40, 260, 300}};
    double worst = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                gemm_case g = make_case(&r, ta, tb, M, N, K);
                const float alpha = 0.75f, beta = si % 2 ? 1.0f : 0.5f;
                double *R = pb_xmalloc(sizeof(double) * (size_t)M * N);
                t_ref_gemm(ta, tb, M, N, K, alpha, g.A, g.lda, g.B, g.ldb, beta, g.C0, g.ldc, NULL, R);
                size_t nc = (size_t)M * g.ldc;
                float *C = pb_cpu_alloc_bytes(nc * sizeof(float));
                for (int way = 0; way < 5; way++) {
                    memcpy(C, g.C0, nc * sizeof(float));
                    const char *what = "";
                    if (way == 0) { // calling thread
                        what = "calling thread";
                        p->sgemm(ta, tb, M, N, K, alpha, g.A, g.lda, g.B, g.ldb, beta, C, g.ldc);
                    } else if (way == 1) { // two threads at once, each on half of the rows
                        what = "two OpenMP threads at once";
#pragma omp parallel num_threads(2)
                        {
                            int t = omp_get_thread_num(), k = omp_get_num_threads();
                            int m0 = M * t / k, m1 = M * (t + 1) / k;
                            const float *Ab = ta ? g.A + m0 : g.A + (size_t)m0 * g.lda;
                            if (m1 > m0)
                                p->sgemm(ta, tb, m1 - m0, N, K, alpha, Ab, g.lda, g.B, g.ldb, beta,
                                         C + (size_t)m0 * g.ldc, g.ldc);
                        }
                    } else if (way == 2) {
                        what = "library threads";
                        p->sgemm_threaded(2, ta, tb, M, N, K, alpha, g.A, g.lda, g.B, g.ldb, beta, C, g.ldc);
                    } else { // the engine's GEMM: threads 1 (way 3) and 2 (way 4)
                        what = way == 3 ? "engine, 1 thread" : "engine, 2 threads";
                        pb_cpu_state st = {.gemm = p};
                        pb_engine e = {.device = PB_DEVICE_CPU, .threads = way == 3 ? 1 : 2, .state = &st};
                        pb_cpu_gemm(&e, ta, tb, M, N, K, alpha, g.A, g.lda, g.B, g.ldb, beta, C, g.ldc);
                    }
                    double err = t_block_err(C, g.ldc, R, M, N);
                    if (err > worst) worst = err;
                    T_CHECK(err <= 1e-5, "%s %c%c %dx%dx%d (%s): rel err %.3g > 1e-5", p->name, "NT"[ta], "NT"[tb], M,
                            N, K, what, err);
                    // padding columns of C beyond N are untouched
                    for (int i = 0; i < M; i++)
                        for (int j = N; j < g.ldc; j++)
                            if (C[(size_t)i * g.ldc + j] != g.C0[(size_t)i * g.ldc + j]) {
                                T_CHECK(0, "%s %c%c (%s) wrote C padding at (%d,%d)", p->name, "NT"[ta], "NT"[tb],
                                        what, i, j);
                                i = M;
                                break;
                            }
                }
                free(C);
                free(R);
                free(g.A);
                free(g.B);
                free(g.C0);
            }
    printf("  %-9s sgemm: 5 shapes x 4 transposes x 5 call paths, worst rel err %.2e (tol 1e-5)\n", p->name, worst);
}

static void test_provider_determinism(const pb_gemm_provider *p) {
    pb_rng r;
    pb_rng_seed(&r, 5);
    const int M = 300, N = 200, K = 256;
    gemm_case g = make_case(&r, 0, 1, M, N, K);
    size_t nc = (size_t)M * g.ldc;
    float *C1 = pb_cpu_alloc_bytes(nc * sizeof(float)), *C2 = pb_cpu_alloc_bytes(nc * sizeof(float));
    pb_cpu_state st = {.gemm = p};
    pb_engine e = {.device = PB_DEVICE_CPU, .threads = 2, .state = &st};
    memcpy(C1, g.C0, nc * sizeof(float));
    memcpy(C2, g.C0, nc * sizeof(float));
    pb_cpu_gemm(&e, 0, 1, M, N, K, 1.0f, g.A, g.lda, g.B, g.ldb, 1.0f, C1, g.ldc);
    pb_cpu_gemm(&e, 0, 1, M, N, K, 1.0f, g.A, g.lda, g.B, g.ldb, 1.0f, C2, g.ldc);
    T_CHECK(!memcmp(C1, C2, nc * sizeof(float)), "%s: two identical engine GEMMs differ", p->name);
    free(C1);
    free(C2);
    free(g.A);
    free(g.B);
    free(g.C0);
}

static void test_selection(void) {
    char err[512];
    const char *saved = getenv("PB_GEMM");
    char keep[64] = "";
    if (saved) snprintf(keep, sizeof keep, "%s", saved);
    T_CHECK(!strcmp(pb_gemm_resolve(NULL, err, sizeof err), pb_gemm_default()), "NULL -> default");
    T_CHECK(!strcmp(pb_gemm_resolve("auto", err, sizeof err), pb_gemm_default()), "auto -> default");
    T_CHECK(!strcmp(pb_gemm_resolve("openblas", err, sizeof err), "openblas"), "openblas");
    T_CHECK(pb_gemm_resolve("mkl", err, sizeof err) == NULL && strstr(err, "'mkl'") && strstr(err, "openblas"),
            "unknown provider error: %s", err);
    // the engine uses what PB_GEMM names, and says so
    pb_gemm_info prov[8];
    int np = pb_gemm_providers(prov, 8);
    for (int i = 0; i < np; i++) {
        setenv("PB_GEMM", prov[i].name, 1);
        pb_engine *e = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
        T_CHECK(e != NULL, "engine with PB_GEMM=%s: %s", prov[i].name, err);
        if (!e) continue;
        T_CHECK(strstr(pb_engine_describe(e), prov[i].library) != NULL, "PB_GEMM=%s but engine says '%s'",
                prov[i].name, pb_engine_describe(e));
        // a core the user forced with OPENBLAS_CORETYPE is theirs (test_kernel_choice says so), not the engine's
        int forced = !strcmp(prov[i].name, "openblas") && !getenv("PB_OPENBLAS_DETECTED") && getenv("OPENBLAS_CORETYPE");
        T_CHECK(forced || strstr(pb_engine_describe(e), "GENERIC") == NULL, "engine runs generic code: %s",
                pb_engine_describe(e));
        pb_engine_free(e);
    }
    setenv("PB_GEMM", "nope", 1);
    pb_engine *bad = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
    T_CHECK(bad == NULL && strstr(err, "'nope'") && strstr(err, "PB_GEMM"), "PB_GEMM=nope must fail naming it: %s", err);
    pb_engine_free(bad);
    if (saved) setenv("PB_GEMM", keep, 1);
    else unsetenv("PB_GEMM");
}

static void test_profile(void) {
    char err[256];
    pb_engine *e = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
    const int N = 40, C = 24, OC = 36;
    float *x = pb_alloc(e, (size_t)N * C), *w = pb_alloc(e, (size_t)OC * C), *b = pb_alloc(e, OC);
    float *y = pb_alloc(e, (size_t)N * OC), *dx = pb_alloc(e, (size_t)N * C), *dw = pb_alloc(e, (size_t)OC * C);
    pb_linear_forward(e, y, x, w, b, N, C, OC); // not profiled
    pb_engine_profile(e, 1);
    pb_linear_forward(e, y, x, w, b, N, C, OC);
    pb_linear_forward(e, y, x, w, NULL, N, C, OC);
    pb_linear_backward(e, dx, dw, NULL, y, x, w, N, C, OC);
    pb_linear_backward(e, dx, NULL, NULL, y, x, w, N, C, OC); // frozen weight: no dW GEMM
    pb_gelu_forward(e, y, y, (size_t)N * OC);
    pb_prof_op ops[16];
    pb_prof_gemm gm[16];
    int no = pb_engine_profile_ops(e, ops, 16), ng = pb_engine_profile_gemms(e, gm, 16);
    T_CHECK(no == 3, "3 distinct ops profiled, got %d", no);
    double f = 2.0 * N * C * OC;
    for (int i = 0; i < no; i++) {
        if (!strcmp(ops[i].op, "linear_forward")) T_CHECK(ops[i].calls == 2 && ops[i].flops == 2 * f, "fwd");
        else if (!strcmp(ops[i].op, "linear_backward")) T_CHECK(ops[i].calls == 2 && ops[i].flops == 3 * f, "bwd");
        else T_CHECK(!strcmp(ops[i].op, "gelu_forward") && ops[i].calls == 1 && ops[i].flops == 0, "%s", ops[i].op);
        T_CHECK(ops[i].seconds >= 0, "time");
    }
    // shapes: NT (N,OC,C) beta 1 and beta 0; NN dX (N,C,OC) x2; TN dW (OC,C,N) x1
    T_CHECK(ng == 4, "4 GEMM shapes, got %d", ng);
    long calls = 0;
    for (int i = 0; i < ng; i++) {
        calls += gm[i].calls;
        if (gm[i].ta == 1) T_CHECK(gm[i].M == OC && gm[i].N == C && gm[i].K == N && gm[i].calls == 1, "dW shape");
        if (!gm[i].ta && !gm[i].tb) T_CHECK(gm[i].M == N && gm[i].N == C && gm[i].K == OC && gm[i].calls == 2, "dX");
    }
    T_CHECK(calls == 5, "5 GEMM calls, got %ld", calls);
    pb_engine_profile(e, 0);
    T_CHECK(pb_engine_profile_ops(e, ops, 16) == 0, "profile off");
    pb_free(e, x); pb_free(e, w); pb_free(e, b); pb_free(e, y); pb_free(e, dx); pb_free(e, dw);
    pb_engine_free(e);
}

int main(int argc, char **argv) {
    (void)argc;
    pb_blas_core_fix(argv); // as harness/main.c: may re-exec this test with OPENBLAS_CORETYPE set
    test_isa();
    test_kernel_choice();
    pb_gemm_info prov[8];
    int np = pb_gemm_providers(prov, 8);
    for (int i = 0; i < np; i++) {
        const pb_gemm_provider *p = pb_gemm_find(prov[i].name);
        T_CHECK(p != NULL, "provider %s listed but not found", prov[i].name);
        if (!p) continue;
        test_provider_sgemm(p);
        test_provider_determinism(p);
    }
    test_selection();
    test_profile();
    if (t_failures) {
        fprintf(stderr, "%d failure(s)\n", t_failures);
        return 1;
    }
    printf("all GEMM provider checks passed (%d provider%s)\n", np, np == 1 ? "" : "s");
    return 0;
}
