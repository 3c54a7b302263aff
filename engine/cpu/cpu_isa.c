// cpu_isa.c: the CPU's ISA (CPUID + XGETBV), its FP32 FMA peak (derived and measured), and the
// OpenBLAS core-type fix (re-exec with OPENBLAS_CORETYPE when the library fell back to generic).
// defines: pb_cpu_isa_detect, pb_cpu_isa_level, pb_cpu_isa_string, pb_isa_level_name,
//          pb_cpu_fp32_peak, pb_blas_core_plan_make, pb_blas_core_fix
#include "cpu.h"
#include "../system.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define PB_X86 1
#else
#define PB_X86 0
#endif

// ----------------------------------------------------------------------------
// CPUID

#if PB_X86
static unsigned long long xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

void pb_cpu_isa_detect(pb_cpu_isa *isa) {
    memset(isa, 0, sizeof *isa);
#if PB_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned maxleaf = a;
    memcpy(isa->vendor, &b, 4);
    memcpy(isa->vendor + 4, &d, 4);
    memcpy(isa->vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned fam = (a >> 8) & 0xf, mod = (a >> 4) & 0xf;
    if (fam == 0xf) fam += (a >> 20) & 0xff;
    if (fam == 0x6 || fam >= 0xf) mod |= ((a >> 16) & 0xf) << 4;
    isa->family = (int)fam;
    isa->model = (int)mod;
    isa->stepping = (int)(a & 0xf);
    int osxsave = (c >> 27) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int os_ymm = (xcr0 & 0x6) == 0x6;           // SSE + AVX state
    int os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0; // opmask, ZMM_Hi256, Hi16_ZMM
    int os_amx = (xcr0 & 0x60000) == 0x60000;    // XTILECFG, XTILEDATA (Linux asks per process)
    isa->sse42 = (c >> 20) & 1;
    isa->avx = os_ymm && ((c >> 28) & 1);
    isa->fma = isa->avx && ((c >> 12) & 1);
    if (maxleaf >= 7) {
        unsigned a7, b7, c7, d7;
        __cpuid_count(7, 0, a7, b7, c7, d7);
        isa->avx2 = isa->avx && ((b7 >> 5) & 1);
        isa->avx512f = os_zmm && ((b7 >> 16) & 1);
        isa->avx512dq = isa->avx512f && ((b7 >> 17) & 1);
        isa->avx512cd = isa->avx512f && ((b7 >> 28) & 1);
        isa->avx512bw = isa->avx512f && ((b7 >> 30) & 1);
        isa->avx512vl = isa->avx512f && ((b7 >> 31) & 1);
        isa->avx512_vnni = isa->avx512f && ((c7 >> 11) & 1);
        isa->avx512_fp16 = isa->avx512f && ((d7 >> 23) & 1);
        isa->amx_bf16 = os_amx && ((d7 >> 22) & 1);
        isa->amx_tile = os_amx && ((d7 >> 24) & 1);
        isa->amx_int8 = os_amx && ((d7 >> 25) & 1);
        if (a7 >= 1) {
            unsigned a71, b71, c71, d71;
            __cpuid_count(7, 1, a71, b71, c71, d71);
            isa->avx512_bf16 = isa->avx512f && ((a71 >> 5) & 1);
        }
    }
    unsigned ext = 0;
    if (!__get_cpuid(0x80000000, &ext, &b, &c, &d)) ext = 0;
    if (ext >= 0x80000004) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char raw[49];
        memcpy(raw, r, 48);
        raw[48] = 0;
        const char *s = raw;
        while (*s == ' ') s++;
        snprintf(isa->brand, sizeof isa->brand, "%s", s);
        for (size_t n = strlen(isa->brand); n > 0 && isa->brand[n - 1] == ' '; n--) isa->brand[n - 1] = 0;
    }
#endif
}

pb_isa_level pb_cpu_isa_level(const pb_cpu_isa *isa) {
    int avx512 = isa->avx512f && isa->avx512cd && isa->avx512bw && isa->avx512dq && isa->avx512vl;
    if (avx512 && isa->avx512_bf16 && isa->amx_tile && isa->amx_bf16) return PB_ISA_AMX;
    if (avx512 && isa->avx512_bf16) return PB_ISA_AVX512_BF16;
    if (avx512) return PB_ISA_AVX512;
    if (isa->avx2 && isa->fma) return PB_ISA_AVX2;
    if (isa->avx) return PB_ISA_AVX;
    return PB_ISA_X86_64;
}

const char *pb_isa_level_name(pb_isa_level level) {
    switch (level) {
    case PB_ISA_AMX: return "amx";
    case PB_ISA_AVX512_BF16: return "avx512_bf16";
    case PB_ISA_AVX512: return "avx512";
    case PB_ISA_AVX2: return "avx2";
    case PB_ISA_AVX: return "avx";
    case PB_ISA_X86_64: return "x86-64";
    }
    return "?";
}

void pb_cpu_isa_string(const pb_cpu_isa *isa, char *buf, size_t n) {
    const struct {
        const char *name;
        int on;
    } f[] = {{"sse4.2", isa->sse42},         {"avx", isa->avx},
             {"fma", isa->fma},              {"avx2", isa->avx2},
             {"avx512f", isa->avx512f},      {"avx512cd", isa->avx512cd},
             {"avx512bw", isa->avx512bw},    {"avx512dq", isa->avx512dq},
             {"avx512vl", isa->avx512vl},    {"avx512_vnni", isa->avx512_vnni},
             {"avx512_bf16", isa->avx512_bf16}, {"avx512_fp16", isa->avx512_fp16},
             {"amx_tile", isa->amx_tile},    {"amx_bf16", isa->amx_bf16},
             {"amx_int8", isa->amx_int8}};
    size_t used = 0;
    if (n) buf[0] = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!f[i].on) continue;
        int w = snprintf(buf + used, n > used ? n - used : 0, "%s%s", used ? " " : "", f[i].name);
        if (w < 0 || used + (size_t)w >= n) break;
        used += (size_t)w;
    }
}

// ----------------------------------------------------------------------------
// FP32 peak: clock from a dependent add chain, FMA units from an FMA-throughput loop.

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Cycles of `iters` x 8 dependent register-register 64-bit adds (latency 1 on every x86-64
// core; an add with an immediate would not do: Golden Cove folds those at rename): GHz.
static double measure_ghz(long iters) {
#if PB_X86
    unsigned long long x = 0, one = 1;
    double t0 = now_s();
    for (long i = 0; i < iters; i++)
        __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                         "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                         : "+r"(x)
                         : "r"(one));
    double dt = now_s() - t0;
    // the loop's own increment/compare/branch run in parallel with the chain (other ports)
    return dt > 0 ? 8.0 * (double)iters / dt * 1e-9 : 0;
#else
    (void)iters;
    return 0;
#endif
}

#if PB_X86
// 12 independent vector FMA chains (covers latency 4 x 2 ports with room), in registers by
// construction (inline asm), `iters` rounds: vector FMAs per second.
#define PB_FMA12(R)                                                                                \
    "vfmadd231ps %%" R "12, %%" R "13, %%" R "0\n\tvfmadd231ps %%" R "12, %%" R "13, %%" R "1\n\t"     \
    "vfmadd231ps %%" R "12, %%" R "13, %%" R "2\n\tvfmadd231ps %%" R "12, %%" R "13, %%" R "3\n\t"     \
    "vfmadd231ps %%" R "12, %%" R "13, %%" R "4\n\tvfmadd231ps %%" R "12, %%" R "13, %%" R "5\n\t"     \
    "vfmadd231ps %%" R "12, %%" R "13, %%" R "6\n\tvfmadd231ps %%" R "12, %%" R "13, %%" R "7\n\t"     \
    "vfmadd231ps %%" R "12, %%" R "13, %%" R "8\n\tvfmadd231ps %%" R "12, %%" R "13, %%" R "9\n\t"     \
    "vfmadd231ps %%" R "12, %%" R "13, %%" R "10\n\tvfmadd231ps %%" R "12, %%" R "13, %%" R "11\n\t"
// fma_rate_<bits>(iters): vector FMAs per second on registers R0..R13 (R = "zmm" or "ymm").
#define PB_FMA_RATE_FN(NAME, TARGET, R, ZERO, TAIL)                                                \
    __attribute__((target(TARGET))) static double NAME(long iters) {                              \
        long n = iters;                                                                            \
        double t0 = now_s();                                                                       \
        __asm__ volatile(ZERO "\n\tvmovaps %%" R "0, %%" R "1\n\tvmovaps %%" R "0, %%" R "2\n\t"     \
                         "vmovaps %%" R "0, %%" R "3\n\tvmovaps %%" R "0, %%" R "4\n\t"                \
                         "vmovaps %%" R "0, %%" R "5\n\tvmovaps %%" R "0, %%" R "6\n\t"                \
                         "vmovaps %%" R "0, %%" R "7\n\tvmovaps %%" R "0, %%" R "8\n\t"                \
                         "vmovaps %%" R "0, %%" R "9\n\tvmovaps %%" R "0, %%" R "10\n\t"               \
                         "vmovaps %%" R "0, %%" R "11\n\tvmovaps %%" R "0, %%" R "12\n\t"              \
                         "vmovaps %%" R "0, %%" R "13\n\t"                                             \
                         "1:\n\t" PB_FMA12(R) "dec %0\n\tjnz 1b\n\t" TAIL                             \
                         : "+r"(n)                                                                 \
                         :                                                                         \
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",  \
                           "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "cc");                      \
        double dt = now_s() - t0;                                                                  \
        return dt > 0 ? 12.0 * (double)iters / dt : 0;                                             \
    }
PB_FMA_RATE_FN(fma_rate_512, "avx512f", "zmm", "vpxord %%zmm0, %%zmm0, %%zmm0", "")
PB_FMA_RATE_FN(fma_rate_256, "avx2,fma", "ymm", "vxorps %%ymm0, %%ymm0, %%ymm0", "vzeroupper\n\t")
#endif

void pb_cpu_fp32_peak(int threads, pb_fp32_peak *out) {
    memset(out, 0, sizeof *out);
    if (threads < 1) threads = 1;
    out->threads = threads;
    pb_cpu_isa isa;
    pb_cpu_isa_detect(&isa);
    int wide = isa.avx512f, lanes = wide ? 16 : (isa.avx2 && isa.fma) ? 8 : 4;
    out->lanes = lanes;
    // Per core, all threads busy; 5 runs each and the best kept: on a shared VM a descheduled
    // thread can only make a loop look slower, never faster, so the maximum is the machine.
    double ghz = 0, fma_s = 0;
    for (int r = 0; r < 5; r++) {
        double gs = 0, fs = 0;
#pragma omp parallel num_threads(threads) reduction(+ : gs, fs)
        {
            gs += measure_ghz(20000000);
#if PB_X86
            if (wide) fs += fma_rate_512(10000000);
            else if (lanes == 8) fs += fma_rate_256(10000000);
#endif
        }
        if (gs / threads > ghz) ghz = gs / threads;
        if (fs / threads > fma_s) fma_s = fs / threads;
    }
    out->ghz = ghz;
    out->fma_per_cyc = ghz > 0 ? fma_s / (ghz * 1e9) : 0;
    int units = (int)(out->fma_per_cyc + 0.5);
    out->fma_units = units < 1 ? 1 : units;
    out->gflops = (double)threads * out->fma_units * lanes * 2.0 * ghz;
    out->measured_gflops = (double)threads * fma_s * lanes * 2.0 * 1e-9;
}

// ----------------------------------------------------------------------------
// OpenBLAS core type

// The ISA level each OpenBLAS 0.3.x DYNAMIC_ARCH x86-64 core's kernels target (its names).
static int openblas_core_level(const char *core) {
    static const struct {
        const char *name;
        int level;
    } t[] = {{"Katmai", 1},      {"Coppermine", 1}, {"Northwood", 1},  {"Prescott", 1},
             {"Banias", 1},      {"Atom", 1},       {"Core2", 1},      {"Penryn", 1},
             {"Dunnington", 1},  {"Nehalem", 1},    {"Athlon", 1},     {"Opteron", 1},
             {"Opteron_SSE3", 1}, {"Barcelona", 1}, {"Nano", 1},       {"Bobcat", 1},
             {"Sandybridge", 2}, {"Bulldozer", 2},  {"Piledriver", 2}, {"Steamroller", 2},
             {"Excavator", 2},   {"Haswell", 3},    {"Zen", 3},        {"SkylakeX", 4},
             {"Cooperlake", 5},  {"SapphireRapids", 6}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcasecmp(core, t[i].name)) return t[i].level;
    return 0; // unknown (a newer OpenBLAS): never treated as generic
}

int pb_cpu_openblas_core_level(const char *core) { return core ? openblas_core_level(core) : 0; }

void pb_blas_core_plan_make(pb_blas_core_plan *plan) {
    memset(plan, 0, sizeof *plan);
    const char *core = openblas_get_corename();
    snprintf(plan->detected, sizeof plan->detected, "%s", core ? core : "?");
    pb_cpu_isa isa;
    pb_cpu_isa_detect(&isa);
    pb_isa_level lv = pb_cpu_isa_level(&isa);
    // Best core shipped by 0.3.21 for this level (0.3.21 has no SapphireRapids core: AMX is for
    // bf16 only, its FP32 kernels are Cooperlake's).
    const char *want = lv >= PB_ISA_AVX512_BF16 ? "Cooperlake"
                       : lv == PB_ISA_AVX512    ? "SkylakeX"
                       : lv == PB_ISA_AVX2      ? (!strcmp(isa.vendor, "AuthenticAMD") ? "Zen" : "Haswell")
                       : lv == PB_ISA_AVX       ? "Sandybridge"
                                                : "";
    snprintf(plan->want, sizeof plan->want, "%s", want);
    int have = openblas_core_level(plan->detected);
    if (getenv("PB_OPENBLAS_DETECTED")) {
        plan->why = "OPENBLAS_CORETYPE was set by peftbench (re-exec done)";
    } else if (getenv("OPENBLAS_CORETYPE")) {
        plan->why = "OPENBLAS_CORETYPE set by the user: kept";
    } else if (!want[0] || have == 0 || have >= openblas_core_level(want)) {
        plan->why = have == 0 ? "OpenBLAS core not in the known list: kept"
                              : "OpenBLAS selected a core that matches the CPU";
    } else {
        plan->reexec = 1;
        plan->why = "OpenBLAS fell back to a core below the CPU's ISA: re-exec with OPENBLAS_CORETYPE";
    }
}

void pb_blas_core_fix(char **argv) {
    pb_blas_core_plan plan;
    pb_blas_core_plan_make(&plan);
    if (!plan.reexec) return;
    setenv("OPENBLAS_CORETYPE", plan.want, 1);
    setenv("PB_OPENBLAS_DETECTED", plan.detected, 1);
    fflush(NULL);
    execv("/proc/self/exe", argv);
    // exec failed (no /proc?): carry on with the detected core, and say so once
    fprintf(stderr, "peftbench: warning: OpenBLAS selected its %s kernels on this CPU and the re-exec "
                    "with OPENBLAS_CORETYPE=%s failed; set OPENBLAS_CORETYPE=%s yourself\n",
            plan.detected, plan.want, plan.want);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("PB_OPENBLAS_DETECTED");
}
