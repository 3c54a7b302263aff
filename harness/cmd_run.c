// cmd_run.c: `peftbench run` (placeholder until its issue lands; exits 2).
#include <stdio.h>
#include "cli.h"

int pb_cmd_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "peftbench run: not available in this build yet\n");
    return 2;
}
