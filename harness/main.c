// main.c: the peftbench command-line entry point; dispatches to harness/cmd_*.c.
#include <stdio.h>
#include <string.h>
#include "cli.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} pb_command;

static const pb_command commands[] = {
    {"run", pb_cmd_run, "run SUITE.json        expand a suite's grid and train/evaluate every cell"},
    {"report", pb_cmd_report, "report DIR            tables (md, tex, csv, json) from a results dir"},
    {"plot", pb_cmd_plot, "plot DIR              gnuplot figures (rank/lr sweeps, acc vs params)"},
    {"check", pb_cmd_check, "check DIR --baseline F  compare results with a baseline (CI)"},
    {"info", pb_cmd_info, "info MODEL [--json]   architecture and exact parameter counts"},
    {"trace", pb_cmd_trace, "trace --model M ...   forward/backward(/AdamW) dump to safetensors"},
    {"bench", pb_cmd_bench, "bench --model M ...   training-step throughput vs the sgemm ceiling"},
    {"data", pb_cmd_data, "data build NAME       build a local dataset (vtab-mini)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: peftbench COMMAND [ARGS]   (peftbench COMMAND --help for details)\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %s\n", commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "peftbench: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
