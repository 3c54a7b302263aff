// cmd_check.c: `peftbench check` (placeholder until its issue lands; exits 2).
#include <stdio.h>
#include "cli.h"

int pb_cmd_check(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "peftbench check: not available in this build yet\n");
    return 2;
}
