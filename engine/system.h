// system.h: what the CPU under the engine can run, and which GEMM library the CPU backend uses.
// defines: pb_cpu_isa, pb_cpu_isa_detect, pb_cpu_isa_level, pb_cpu_isa_string,
//          pb_cpu_fp32_peak, pb_gemm_info, pb_gemm_providers, pb_gemm_default, pb_gemm_sgemm_gflops,
//          pb_blas_core_fix, pb_blas_core_plan
//
// The CPU backend never runs a generic kernel where the CPU has a better one (docs/engine.md,
// "GEMM providers"): the ISA comes from CPUID + XGETBV (what the hardware has and the OS enabled),
// each GEMM library says what it selected, and a library that fell back to generic code is
// corrected (OpenBLAS: OPENBLAS_CORETYPE, see pb_blas_core_fix) or reported as generic.
#ifndef PB_SYSTEM_H
#define PB_SYSTEM_H

#include <stddef.h>

// ISA levels, each implying the ones below (pb_cpu_isa_level).
typedef enum {
    PB_ISA_X86_64 = 1,      // SSE2..SSE4.2 only
    PB_ISA_AVX = 2,         // AVX
    PB_ISA_AVX2 = 3,        // AVX2 + FMA
    PB_ISA_AVX512 = 4,      // AVX-512 F, CD, BW, DQ, VL
    PB_ISA_AVX512_BF16 = 5, // + AVX512_BF16 (Cooper Lake, Zen 4)
    PB_ISA_AMX = 6,         // + AMX-TILE and AMX-BF16 (Sapphire Rapids and later)
} pb_isa_level;

// Features are 1 only when the CPU reports them (CPUID) and the OS saves their registers (XCR0).
typedef struct {
    char vendor[13]; // "GenuineIntel", "AuthenticAMD"
    char brand[49];  // CPUID brand string, trimmed
    int family, model, stepping;
    int sse42, avx, fma, avx2;
    int avx512f, avx512cd, avx512bw, avx512dq, avx512vl, avx512_vnni, avx512_bf16, avx512_fp16;
    int amx_tile, amx_bf16, amx_int8;
} pb_cpu_isa;

// Fills *isa from CPUID/XGETBV (zeros on a non-x86 build).
void pb_cpu_isa_detect(pb_cpu_isa *isa);
pb_isa_level pb_cpu_isa_level(const pb_cpu_isa *isa);
// Writes the feature list ("avx2 fma avx512f ... amx_bf16") into buf (always terminated).
void pb_cpu_isa_string(const pb_cpu_isa *isa, char *buf, size_t n);
// "x86-64", "avx", "avx2", "avx512", "avx512_bf16", "amx" (static storage).
const char *pb_isa_level_name(pb_isa_level level);

// The FP32 FMA peak of `threads` cores: threads x FMA units x lanes x 2 FLOP x clock, each factor
// derived and stated: lanes from the ISA (16 with AVX-512, 8 with AVX2), the clock measured
// with a chain of dependent register-register adds (1 cycle per add on every x86-64 core), and
// FMA units per core measured as independent vector FMAs per cycle (an FMA-throughput loop) and
// rounded; both loops run on every thread at once, best of 5 runs (noise only slows them).
typedef struct {
    int threads, lanes, fma_units;
    double ghz;          // measured core clock under load (all threads running the add chain)
    double fma_per_cyc;  // measured vector FMAs per cycle per core (before rounding)
    double gflops;       // threads * fma_units * lanes * 2 * ghz
    double measured_gflops; // the FMA loop's own FLOP rate on all threads
} pb_fp32_peak;
void pb_cpu_fp32_peak(int threads, pb_fp32_peak *out);

// ----------------------------------------------------------------------------
// GEMM providers of the CPU backend (engine/cpu/cpu_gemm.h has the interface).

typedef struct {
    const char *name;   // "openblas", "onednn"
    char library[64];   // "OpenBLAS 0.3.21", "oneDNN 2.6.3"
    char kernel[64];    // what it selected on this CPU: "Cooperlake", "avx512_core_amx"
    int kernel_level;   // the pb_isa_level that kernel targets (0: unknown)
    int generic;        // 1: the library runs code below what the CPU has (a generic fallback)
} pb_gemm_info;

// Fills up to max entries, one per provider built into this binary (OpenBLAS always first);
// returns how many.
int pb_gemm_providers(pb_gemm_info *out, int max);
// The provider the CPU backend uses unless PB_GEMM (or --gemm) says otherwise: oneDNN when built
// in, else OpenBLAS (docs/engine.md gives the measurements behind the rule).
const char *pb_gemm_default(void);
// Checks a provider name (NULL, "" and "auto" mean the default); returns the canonical name or
// NULL with a message naming the known ones in err.
const char *pb_gemm_resolve(const char *name, char *err, size_t errlen);

// Median GFLOP/s of C = op(A) op(B) (row-major, alpha 1, beta `beta`) over `reps` timed calls
// after 2 untimed ones, for provider `name`: mode 0 = the engine's way (the GEMM split over an
// OpenMP team of `threads`, one single-threaded provider call per thread), mode 1 = the library's
// own threading on `threads` threads. Buffers are allocated and filled here. Returns <= 0 if the
// provider is not built in.
double pb_gemm_sgemm_gflops(const char *name, int mode, int threads, int ta, int tb, int M, int N,
                            int K, float beta, int reps);

// ----------------------------------------------------------------------------
// OpenBLAS core type. Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels when the library
// loads, and on CPUs newer than itself (Sapphire/Emerald/Granite Rapids) it falls back to the
// generic Prescott kernels (~6x slower). It reads OPENBLAS_CORETYPE at load time only, so the
// fix is a re-exec of the program with the variable set.

typedef struct {
    char detected[32]; // what OpenBLAS selected ("Prescott")
    char want[32];     // the core this CPU supports best among those OpenBLAS 0.3.21 ships, or ""
    int reexec;        // 1: the core is below what the CPU can run and the user did not choose
    const char *why;   // one line explaining the decision (static storage)
} pb_blas_core_plan;

// Decides (no side effects) from the CPU, the core OpenBLAS selected and the environment:
// a user's own OPENBLAS_CORETYPE always wins; a second pass (PB_OPENBLAS_DETECTED set by the
// re-exec) never re-execs again.
void pb_blas_core_plan_make(pb_blas_core_plan *plan);
// Called first thing in main(): when the plan says so, sets OPENBLAS_CORETYPE and
// PB_OPENBLAS_DETECTED and re-executes /proc/self/exe with the same argv (does not return);
// otherwise returns. A failed exec prints a warning and returns (the run continues on the
// detected core).
void pb_blas_core_fix(char **argv);

#endif
