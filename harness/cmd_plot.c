// cmd_plot.c: `peftbench plot DIR [--plots SCRIPTDIR]`.
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "plot.h"

int pb_cmd_plot(int argc, char **argv) {
    const char *dir = NULL, *pdir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: peftbench plot DIR [--plots SCRIPTDIR]\n"
                   "Renders DIR/plots/{rank_*,lr_*,params}.{png,svg} with gnuplot from DIR/cells/*.json.\n");
            return 0;
        } else if (!strcmp(argv[i], "--plots") && i + 1 < argc) {
            pdir = argv[++i];
        } else if (argv[i][0] != '-' && !dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "peftbench plot: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: peftbench plot DIR [--plots SCRIPTDIR]\n");
        return 2;
    }
    char err[1024];
    if (pb_plot_write(dir, pdir, stderr, err, sizeof(err))) {
        fprintf(stderr, "peftbench plot: %s\n", err);
        return 2;
    }
    return 0;
}
