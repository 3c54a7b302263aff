// cmd_report.c: `peftbench report DIR [--reference FILE] [--quiet] [--strict] [--html]
// [--baseline-out FILE]`.
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "cli.h"
#include "report.h"
#include "report_html.h"

static const char usage_text[] =
    "usage: peftbench report DIR [--reference FILE] [--quiet] [--strict] [--html] [--baseline-out FILE]\n";

int pb_cmd_report(int argc, char **argv) {
    const char *dir = NULL, *ref = NULL, *bout = NULL;
    int quiet = 0, strict = 0, html = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s"
                   "Writes DIR/results.json, results.csv, table.md, table.tex from DIR/cells/*.json.\n"
                   "--html also renders the figures (as `peftbench plot`) and writes DIR/index.html: one\n"
                   "self-contained page with the tables, the figures and every cell's config, status and\n"
                   "training curves (inline SVG; without gnuplot the page has the tables and a note).\n"
                   "Cell files that cannot be trusted (renamed/copied, another suite's, no status, a score\n"
                   "outside its metric's range) are left out and named; --strict exits 1 if there are any.\n"
                   "--baseline-out FILE also writes the regression baseline of DIR for `peftbench check`\n"
                   "(as check DIR --write-baseline FILE; docs/regression.md).\n",
                   usage_text);
            return 0;
        } else if (!strcmp(argv[i], "--reference") && i + 1 < argc) {
            ref = argv[++i];
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "--strict")) {
            strict = 1;
        } else if (!strcmp(argv[i], "--html")) {
            html = 1;
        } else if (!strcmp(argv[i], "--baseline-out") && i + 1 < argc) {
            bout = argv[++i];
        } else if (argv[i][0] != '-' && !dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "peftbench report: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    char err[1024];
    int skipped = 0;
    if (pb_report_write(dir, ref, quiet ? NULL : stdout, &skipped, err, sizeof(err))) {
        fprintf(stderr, "peftbench report: %s\n", err);
        return 2;
    }
    if (html && pb_report_html_make(dir, ref, NULL, stderr, err, sizeof(err))) {
        fprintf(stderr, "peftbench report --html: %s\n", err);
        return 2;
    }
    if (bout && pb_baseline_write(&dir, 1, bout, -1, quiet ? NULL : stdout, err, sizeof(err))) {
        fprintf(stderr, "peftbench report --baseline-out: %s\n", err);
        return 2;
    }
    if (strict && skipped) {
        fprintf(stderr, "peftbench report: --strict: %d cell file(s) skipped\n", skipped);
        return 1;
    }
    return 0;
}
