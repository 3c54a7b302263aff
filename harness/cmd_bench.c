// cmd_bench.c: `peftbench bench` (placeholder until its issue lands; exits 2).
#include <stdio.h>
#include "cli.h"

int pb_cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "peftbench bench: not available in this build yet\n");
    return 2;
}
