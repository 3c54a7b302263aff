// time_methods_init.c: wall time of method initialisation (the SVDs) on a randomly initialised
// model. Usage: time_methods_init [MODEL] [THREADS]. Prints one line per configuration.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "methods/adapter.h"
#include "test_method_util.h"

int main(int argc, char **argv) {
    const char *model = argc > 1 ? argv[1] : "vit-b16";
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    char err[512];
    pb_engine *e = pb_engine_init(PB_DEVICE_CPU, threads, err, sizeof(err));
    if (!e) { fprintf(stderr, "%s\n", err); return 1; }
    pb_model_config cfg;
    if (pb_model_config_builtin(model, &cfg, err, sizeof(err)) != PB_OK) { fprintf(stderr, "%s\n", err); return 1; }
    struct { const char *method, *init; int rank; } runs[] = {
        {"pissa", "niter_4", 8}, {"pissa", "niter_16", 8}, {"pissa", "svd", 8}, {"svfit", "", 768},
        {"lora", "kaiming", 8}, {"aoft", "", 8}};
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        pb_model *m = pb_model_create(e, &cfg, 1);
        pb_method_config c;
        char kv[64];
        int n = snprintf(kv, sizeof kv, "rank=%d", runs[i].rank);
        if (runs[i].init[0]) snprintf(kv + n, sizeof kv - n, " init=%s", runs[i].init);
        mc_make(&c, runs[i].method, 0, kv);
        double t0 = pb_now();
        pb_status st = pb_method_apply(m, &c, err, sizeof(err));
        double dt = pb_now() - t0;
        if (st != PB_OK) { fprintf(stderr, "%s\n", err); return 1; }
        pb_param_counts pc = pb_model_count(m);
        printf("%s %-6s init=%-9s r=%-4d targets=q,v threads=%d: apply %.3f s, adapter params %zu\n", model,
               runs[i].method, runs[i].init, runs[i].rank, threads, dt, pc.adapter);
        pb_model_free(m);
    }
    pb_engine_free(e);
    return 0;
}
