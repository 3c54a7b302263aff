// cmd_check.c: `peftbench check DIR --baseline FILE [--tol POINTS]`.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "cli.h"

int pb_cmd_check(int argc, char **argv) {
    const char *dir = NULL, *base = NULL;
    double tol = -1; // from the baseline's "tolerance" block, else 1.0
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: peftbench check DIR --baseline FILE [--tol POINTS]\n"
                   "Compares each (model, method, dataset) median (x100) with a baseline results.json;\n"
                   "exit 1 on a regression beyond --tol or a missing cell. Without --tol: the baseline's\n"
                   "\"tolerance\" {identical, different_numerics} (chosen by whether every cell's last\n"
                   "training loss is reproduced bit for bit), else 1.0.\n");
            return 0;
        } else if (!strcmp(argv[i], "--baseline") && i + 1 < argc) {
            base = argv[++i];
        } else if (!strcmp(argv[i], "--tol") && i + 1 < argc) {
            char *end;
            tol = strtod(argv[++i], &end);
            if (*end || !isfinite(tol) || tol < 0) { // NaN would compare false and pass everything
                fprintf(stderr, "peftbench check: --tol expects a finite number >= 0, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] != '-' && !dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "peftbench check: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!dir || !base) {
        fprintf(stderr, "usage: peftbench check DIR --baseline FILE [--tol POINTS]\n");
        return 2;
    }
    char err[1024];
    int bad = 0;
    if (pb_check(dir, base, tol, stdout, &bad, err, sizeof(err))) {
        fprintf(stderr, "peftbench check: %s\n", err);
        return 2;
    }
    return bad ? 1 : 0;
}
