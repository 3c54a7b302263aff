// cmd_plot.c: `peftbench plot` (placeholder until its issue lands; exits 2).
#include <stdio.h>
#include "cli.h"

int pb_cmd_plot(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "peftbench plot: not available in this build yet\n");
    return 2;
}
