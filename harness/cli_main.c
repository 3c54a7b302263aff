// cli_main.c: the peftbench command-line entry point (pb_cli_main); dispatches to harness/cmd_*.c.
// harness/main.c calls it; test binaries in tests/ call it too, after swapping in fixtures.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
// defines: pb_blas_core_fix, pb_gemm_resolve
#include "../engine/system.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} pb_command;

static const pb_command commands[] = {
    {"run", pb_cmd_run, "run SUITE.json        expand a suite's grid and train/evaluate every cell"},
    {"slurm", pb_cmd_slurm, "slurm SUITE.json      run a suite on Slurm: prepare, job array, report (--dry-run)"},
    {"status", pb_cmd_status, "status DIR [--json]   done/failed/running/stale/missing cells per method and dataset"},
    {"report", pb_cmd_report, "report DIR [--html]   tables (md, tex, csv, json); --html: DIR/index.html"},
    {"plot", pb_cmd_plot, "plot DIR              gnuplot figures (rank/lr sweeps, acc vs params)"},
    {"check", pb_cmd_check, "check DIR --baseline F  compare results with a baseline (CI)"},
    {"info", pb_cmd_info, "info MODEL [--json]   architecture and exact parameter counts"},
    {"trace", pb_cmd_trace, "trace --model M ...   forward/backward(/AdamW) dump to safetensors"},
    {"bench", pb_cmd_bench, "bench --model M ...   training-step throughput vs the sgemm ceiling"},
    {"methods", pb_cmd_methods, "methods [NAME] [--json]  every method with its options, defaults and help"},
    {"data", pb_cmd_data, "data build NAME       build a local dataset (vtab-mini)"},
    {"tokenizer", pb_cmd_tokenizer, "tokenizer train ...   train a RoBERTa byte-level BPE (vocab.json, merges.txt); encode"},
    {"version", pb_cmd_version, "version               version, git revision, backends built in (also --version)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: peftbench COMMAND [ARGS]   (peftbench COMMAND --help for details; peftbench --version)\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %s\n", commands[i].help);
    fprintf(f, "\nengine options, after any command:\n"
               "  --gemm P   CPU GEMM provider: auto (default: %s here), openblas, onednn; same as PB_GEMM=P\n"
               "environment: PB_GEMM, PB_CUDA_MATH=tf32, OPENBLAS_CORETYPE (your setting is kept),\n"
               "             OMP_WAIT_POLICY=PASSIVE on shared machines\n",
            pb_gemm_default());
}

// Takes `--gemm P` / `--gemm=P` out of argv (any position after the command) and exports it as
// PB_GEMM, which every engine the command creates reads (also child processes). Returns 0, or 2
// after printing an error for an unknown provider or a missing value.
static int take_gemm_option(int *argc, char **argv) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--gemm")) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "peftbench: --gemm needs a value (auto, openblas, onednn)\n");
                return 2;
            }
            v = argv[++i];
        } else if (!strncmp(a, "--gemm=", 7)) {
            v = a + 7;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        char err[256];
        const char *name = pb_gemm_resolve(v, err, sizeof err);
        if (!name) {
            fprintf(stderr, "peftbench: --gemm: %s\n", err);
            return 2;
        }
        setenv("PB_GEMM", name, 1);
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

int pb_cli_device_arg(const char *cmd, const char *text, pb_device *out) {
    if (!strcmp(text, "cpu")) *out = PB_DEVICE_CPU;
    else if (!strcmp(text, "cuda")) *out = PB_DEVICE_CUDA;
    else {
        fprintf(stderr, "peftbench %s: --device expects cpu or cuda, got '%s'\n", cmd, text);
        return 2;
    }
    return 0;
}

int pb_cli_main(int argc, char **argv) {
    // Before anything else: OpenBLAS chose its kernels when it loaded; re-exec if they are generic.
    pb_blas_core_fix(argv);
    if (take_gemm_option(&argc, argv)) return 2;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) return pb_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "peftbench: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
