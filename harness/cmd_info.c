// cmd_info.c: `peftbench info` (placeholder until its issue lands; exits 2).
#include <stdio.h>
#include "cli.h"

int pb_cmd_info(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "peftbench info: not available in this build yet\n");
    return 2;
}
