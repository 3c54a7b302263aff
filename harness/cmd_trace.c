// cmd_trace.c: `peftbench trace` (placeholder until its issue lands; exits 2).
#include <stdio.h>
#include "cli.h"

int pb_cmd_trace(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "peftbench trace: not available in this build yet\n");
    return 2;
}
