// cmd_report.c: `peftbench report` (placeholder until its issue lands; exits 2).
#include <stdio.h>
#include "cli.h"

int pb_cmd_report(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "peftbench report: not available in this build yet\n");
    return 2;
}
