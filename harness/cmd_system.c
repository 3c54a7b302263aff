// cmd_system.c: `peftbench info --system [--json] [--peak]`: the CPU (vendor, model, ISA as
// CPUID + XGETBV report it), every GEMM provider built in with the kernel it selected on this
// CPU, the provider the engine would use, the OpenBLAS core decision, and with --peak the FP32
// FMA peak with its derivation.
// defines: pb_cmd_info_system
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "cli.h"
// defines: pb_cpu_isa_*, pb_gemm_*, pb_blas_core_plan_make, pb_cpu_fp32_peak
#include "../engine/system.h"
#include "../engine/ops.h"

int pb_cmd_info_system(int argc, char **argv) {
    int json = 0, peak = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--system")) continue;
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--peak")) peak = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            threads = (int)strtol(argv[++i], &end, 10);
            if (*end || threads < 0) {
                fprintf(stderr, "peftbench info: --threads expects a non-negative integer\n");
                return 2;
            }
        } else {
            fprintf(stderr, "peftbench info --system: unknown argument '%s' (takes --json, --peak, --threads N)\n",
                    argv[i]);
            return 2;
        }
    }
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    pb_cpu_isa isa;
    pb_cpu_isa_detect(&isa);
    pb_isa_level lv = pb_cpu_isa_level(&isa);
    char feats[512];
    pb_cpu_isa_string(&isa, feats, sizeof feats);
    pb_gemm_info prov[8];
    int np = pb_gemm_providers(prov, 8);
    char err[512] = "";
    const char *env = getenv("PB_GEMM");
    const char *in_use = pb_gemm_resolve(env, err, sizeof err);
    pb_blas_core_plan plan;
    pb_blas_core_plan_make(&plan);
    const char *detected = getenv("PB_OPENBLAS_DETECTED");
    pb_fp32_peak pk = {0};
    if (peak) pb_cpu_fp32_peak(threads, &pk);

    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *cpu = cJSON_AddObjectToObject(o, "cpu");
        cJSON_AddStringToObject(cpu, "brand", isa.brand);
        cJSON_AddStringToObject(cpu, "vendor", isa.vendor);
        cJSON_AddNumberToObject(cpu, "family", isa.family);
        cJSON_AddNumberToObject(cpu, "model", isa.model);
        cJSON_AddNumberToObject(cpu, "stepping", isa.stepping);
        cJSON_AddNumberToObject(cpu, "threads", threads);
        cJSON_AddStringToObject(cpu, "isa_level", pb_isa_level_name(lv));
        cJSON_AddNumberToObject(cpu, "isa_level_num", lv);
        cJSON *fa = cJSON_AddArrayToObject(cpu, "features");
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", feats);
        for (char *t = strtok(tmp, " "); t; t = strtok(NULL, " ")) cJSON_AddItemToArray(fa, cJSON_CreateString(t));
        cJSON *ob = cJSON_AddObjectToObject(o, "openblas_core");
        cJSON_AddStringToObject(ob, "selected", plan.detected);
        cJSON_AddStringToObject(ob, "detected_at_load", detected ? detected : plan.detected);
        cJSON_AddStringToObject(ob, "best_for_cpu", plan.want);
        cJSON_AddStringToObject(ob, "coretype_env", getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "");
        cJSON_AddStringToObject(ob, "decision", plan.why);
        cJSON *pa = cJSON_AddArrayToObject(o, "gemm_providers");
        for (int i = 0; i < np; i++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "name", prov[i].name);
            cJSON_AddStringToObject(p, "library", prov[i].library);
            cJSON_AddStringToObject(p, "kernel", prov[i].kernel);
            cJSON_AddNumberToObject(p, "kernel_level", prov[i].kernel_level);
            cJSON_AddBoolToObject(p, "generic", prov[i].generic);
            cJSON_AddBoolToObject(p, "default", !strcmp(prov[i].name, pb_gemm_default()));
            cJSON_AddItemToArray(pa, p);
        }
        if (in_use) cJSON_AddStringToObject(o, "gemm", in_use);
        else cJSON_AddStringToObject(o, "gemm_error", err);
        cJSON_AddStringToObject(o, "gemm_source", env && env[0] ? "PB_GEMM" : "default rule");
        if (peak) {
            cJSON *pj = cJSON_AddObjectToObject(o, "fp32_peak");
            cJSON_AddNumberToObject(pj, "gflops", pk.gflops);
            cJSON_AddNumberToObject(pj, "threads", pk.threads);
            cJSON_AddNumberToObject(pj, "fma_units", pk.fma_units);
            cJSON_AddNumberToObject(pj, "fma_per_cycle_measured", pk.fma_per_cyc);
            cJSON_AddNumberToObject(pj, "lanes", pk.lanes);
            cJSON_AddNumberToObject(pj, "ghz", pk.ghz);
            cJSON_AddNumberToObject(pj, "fma_loop_gflops", pk.measured_gflops);
        }
        char *s = cJSON_Print(o);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
        return in_use ? 0 : 2;
    }
    printf("cpu              %s (%s family %d model %d stepping %d), %d threads\n",
           isa.brand[0] ? isa.brand : "?", isa.vendor, isa.family, isa.model, isa.stepping, threads);
    printf("isa              %s: %s\n", pb_isa_level_name(lv), feats);
    for (int i = 0; i < np; i++)
        printf("%s %-9s %-16s %s%s%s\n", i ? "                " : "gemm providers  ", prov[i].name,
               prov[i].library, prov[i].kernel, prov[i].generic ? "  [GENERIC: below this CPU's ISA]" : "",
               !strcmp(prov[i].name, pb_gemm_default()) ? "  (default)" : "");
    if (in_use)
        printf("gemm in use      %s (%s)\n", in_use, env && env[0] ? "PB_GEMM / --gemm" : "default rule");
    else
        printf("gemm in use      error: %s\n", err);
    if (detected)
        printf("openblas core    %s (OpenBLAS itself chose %s on this CPU)\n", plan.detected, detected);
    else
        printf("openblas core    %s\n", plan.detected);
    printf("                 %s\n", plan.why);
    if (peak)
        printf("fp32 peak        %.1f GFLOP/s = %d threads x %d FMA units x %d lanes x 2 FLOP x %.2f GHz\n"
               "                 (clock: dependent register adds on every thread; FMA units: %.2f vector FMAs/cycle\n"
               "                 measured by a 12-chain FMA loop, rounded; that loop ran at %.1f GFLOP/s)\n",
               pk.gflops, pk.threads, pk.fma_units, pk.lanes, pk.ghz, pk.fma_per_cyc, pk.measured_gflops);
    return in_use ? 0 : 2;
}
