// cmd_run.c: `peftbench run SUITE [--out DIR] [--force] [--retry-failed] [--dry-run]
//            [--shard I/N] [--cell K] [--cells LIST] [--prepare] [--threads N] [--device cpu|cuda]
//            [--no-report] [--pretrain-seed N]`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../engine/common.h"
#include "runner.h"

static void usage(FILE *f) {
    fprintf(f, "usage: peftbench run SUITE.json [--out DIR] [--force] [--retry-failed] [--dry-run]\n"
               "                     [--shard I/N] [--cell K] [--cells LIST] [--prepare] [--threads N]\n"
               "                     [--device cpu|cuda] [--no-report] [--pretrain-seed N]\n"
               "Runs every cell of the suite's grid; finished cells (results/<suite>/cells/<id>.json) are\n"
               "skipped. At the end: the report, the plots and DIR/index.html (--no-report: none of them).\n"
               "--cells LIST: only these cells (comma-separated cell ids or grid indices).\n"
               "--prepare: train nothing; build/check the data and pretrain the backbones the cells need.\n"
               "--pretrain-seed N: pretrain every backbone the suite pretrains from seed N instead (another\n"
               "  backbone, other cell ids; give it its own --out): runs for a baseline's backbone term\n"
               "  (check DIR1 DIR2 ... --write-baseline, docs/regression.md).\n"
               "Exit status: 0 all ok, 1 a cell failed, 2 bad suite or arguments.\n");
}

int pb_cmd_run(int argc, char **argv) {
    pb_run_opts o = {0};
    o.shard_n = 1;
    o.cell = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--out") && has) {
            o.out_dir = argv[++i];
        } else if (!strcmp(a, "--force")) {
            o.force = 1;
        } else if (!strcmp(a, "--retry-failed")) {
            o.retry_failed = 1;
        } else if (!strcmp(a, "--dry-run")) {
            o.dry_run = 1;
        } else if (!strcmp(a, "--prepare")) {
            o.prepare = 1;
        } else if (!strcmp(a, "--cells") && has) {
            o.cells = argv[++i];
        } else if (!strcmp(a, "--no-report")) {
            o.no_report = 1;
        } else if (!strcmp(a, "--shard") && has) {
            char tail = 0;
            if (sscanf(argv[++i], "%d/%d%c", &o.shard_i, &o.shard_n, &tail) != 2 || o.shard_n < 1 || o.shard_i < 0 ||
                o.shard_i >= o.shard_n) { // %c: nothing may follow N ("1/2x")
                fprintf(stderr, "peftbench run: --shard expects I/N with 0 <= I < N, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--cell") && has) {
            char *end;
            o.cell = (int)strtol(argv[++i], &end, 10);
            if (*end || o.cell < 0) {
                fprintf(stderr, "peftbench run: --cell expects a non-negative index, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--threads") && has) {
            char *end;
            o.threads = (int)strtol(argv[++i], &end, 10);
            if (*end || o.threads < 0 || o.threads > PB_MAX_THREADS) {
                fprintf(stderr, "peftbench run: --threads expects an integer in [0, %d] (0: all cores)\n",
                        PB_MAX_THREADS);
                return 2;
            }
        } else if (!strcmp(a, "--pretrain-seed") && has) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || !argv[i][0] || v < 0 || v > PB_SEED_MAX) {
                fprintf(stderr, "peftbench run: --pretrain-seed expects an integer in [0, %d], got '%s'\n", PB_SEED_MAX,
                        argv[i]);
                return 2;
            }
            o.pretrain_seed = (int)v;
            o.pretrain_seed_set = 1;
        } else if (!strcmp(a, "--device") && has) {
            if (pb_cli_device_arg("run", argv[++i], &o.device)) return 2;
        } else if (a[0] == '-') {
            fprintf(stderr, "peftbench run: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!o.suite_path) {
            o.suite_path = a;
        } else {
            fprintf(stderr, "peftbench run: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!o.suite_path) {
        usage(stderr);
        return 2;
    }
    return pb_run_suite(&o);
}
