// cmd_data.c: `peftbench data` (placeholder until its issue lands; exits 2).
#include <stdio.h>
#include "cli.h"

int pb_cmd_data(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "peftbench data: not available in this build yet\n");
    return 2;
}
