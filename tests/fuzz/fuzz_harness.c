// fuzz_harness.c: libFuzzer targets for what the harness reads from users and from disk. One per
// -DFUZZ_TARGET value (scripts/fuzz.sh links them against the core library built with clang):
//   5 = suite file (pb_suite_parse, then grid expansion of what validates),
//   6 = HF config.json (pb_model_config_parse),
//   7 = a cell result file (written as DIR/cells/<id>.json; pb_results_load, then aggregation),
//   8 = a baseline for `check` (against a fixed valid results directory).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../harness/check.h"
#include "../../harness/grid.h"
#include "../../harness/report.h"
#include "../../harness/suite.h"
#include "../../models/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if FUZZ_TARGET >= 7
// A private scratch directory with cells/ (created once per process).
static const char *scratch(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/pb_fuzz_%d", (int)getpid());
        char p[300];
        snprintf(p, sizeof p, "%s/cells", dir);
        pb_mkdirs(p, NULL, 0);
    }
    return dir;
}
static void put(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(d, 1, n, f);
    fclose(f);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[1024];
    if (size > 65536) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
#if FUZZ_TARGET == 5
    pb_suite s;
    if (pb_suite_parse(text, "fuzz.json", &s, err, sizeof err) == PB_OK) {
        pb_grid g;
        if (pb_grid_expand(&s, &g, err, sizeof err) == PB_OK) pb_grid_free(&g);
    }
    pb_suite_free(&s);
#elif FUZZ_TARGET == 6
    pb_model_config cfg;
    if (pb_model_config_parse(text, size, "config.json", &cfg, err, sizeof err) == PB_OK &&
        pb_model_config_check(&cfg, "fuzz", err, sizeof err) != PB_OK)
        abort(); // a parsed config is always within the limits
#elif FUZZ_TARGET == 7
    const char *d = scratch();
    char p[400];
    snprintf(p, sizeof p, "%s/cells/0123456789abcdef.json", d);
    put(p, data, size);
    pb_record *R = NULL;
    int n = 0;
    pb_skips sk = {0};
    if (pb_results_load(d, &R, &n, &sk, err, sizeof err) == PB_OK) {
        pb_agg *A = NULL;
        int na = 0;
        pb_aggregate(R, n, &A, &na, NULL, NULL);
        free(A);
        free(R);
    }
    pb_skips_free(&sk);
#elif FUZZ_TARGET == 8
    static char dir[256];
    if (!dir[0]) { // a results directory with one valid cell
        snprintf(dir, sizeof dir, "%s", scratch());
        char p[400];
        snprintf(p, sizeof p, "%s/cells/0123456789abcdef.json", dir);
        const char *cell = "{\"schema\":\"peftbench.cell/1\",\"suite\":\"s\",\"id\":\"0123456789abcdef\",\"status\":\"ok\","
                           "\"metric\":\"accuracy\",\"config\":{\"model\":{\"label\":\"m\"},\"dataset\":{\"label\":\"d\"},"
                           "\"method\":{\"label\":\"lora\",\"method\":\"lora\"},\"recipe\":{\"lr\":0.01},\"seed\":0},"
                           "\"axes\":{},\"final\":{\"score\":0.5,\"epoch\":1},\"epochs\":[{\"epoch\":1,\"train_loss\":1.5}]}";
        put(p, (const uint8_t *)cell, strlen(cell));
    }
    char b[400];
    snprintf(b, sizeof b, "%s/baseline.json", dir);
    put(b, data, size);
    FILE *devnull = fopen("/dev/null", "w");
    int bad = 0;
    pb_check(dir, b, -1, devnull, &bad, err, sizeof err);
    fclose(devnull);
#else
#error "define FUZZ_TARGET"
#endif
    free(text);
    return 0;
}
