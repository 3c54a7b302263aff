// cmd_check.c: `peftbench check DIR --baseline FILE [...]` and `check DIR [DIR ...] --write-baseline FILE`.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "cli.h"

static const char usage_text[] =
    "usage: peftbench check DIR --baseline FILE [--tol POINTS] [--mode auto|exact|statistical]\n"
    "                          [--alpha A] [--power P] [--junit FILE] [--markdown FILE]\n"
    "       peftbench check DIR [DIR ...] --write-baseline FILE [--noise-sd POINTS]\n";

// A finite number in [lo, hi] from s, else NaN.
static double num_arg(const char *s, double lo, double hi) {
    char *end;
    double v = strtod(s, &end);
    return *s && !*end && isfinite(v) && v >= lo && v <= hi ? v : NAN;
}

int pb_cmd_check(int argc, char **argv) {
    const char *dir = NULL, *base = NULL, *write = NULL;
    const char *dirs[64];
    int ndirs = 0;
    double noise_sd = -1; // estimated from the seeds
    pb_check_opts o;
    pb_check_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s"
                   "Compares every (model, method, axes, dataset) row of a baseline with DIR's results, then the\n"
                   "average of each method and of the suite. Per row, by the engine fingerprint (backend, GEMM\n"
                   "provider and kernel, threads, LAPACK core, build, git revision):\n"
                   "  exact        fingerprint matches: any change of a score or a cell's training loss fails;\n"
                   "  statistical  otherwise: a drop beyond z*SE fails, SE from the metric's sampling error on\n"
                   "               the evaluated examples and the seed spread (one-sided, Bonferroni over rows\n"
                   "               and over averages at --alpha, default 0.01 each); every row and average\n"
                   "               prints its minimum detectable drop (MDD) at --power (default 0.8).\n"
                   "  --tol POINTS tolerance mode: a drop of more than POINTS fails (also for a legacy baseline,\n"
                   "               a results.json, whose \"tolerance\" block or 1.0 applies without --tol).\n"
                   "--mode exact|statistical forces one mode on every row. --junit FILE writes JUnit XML (one\n"
                   "testcase per row and per average, failures with the numbers), --markdown FILE a summary for a\n"
                   "pull-request comment. Missing, failed or non-finite rows fail.\n"
                   "--write-baseline FILE writes DIR's baseline (every cell must have finished): per row the\n"
                   "metric, examples, seeds, mean/median/std, the excess seed spread (estimated per method from\n"
                   "2+ seeds, or --noise-sd) and the fingerprint; prints the MDDs it allows. Several DIRs: runs\n"
                   "of one suite on different backbones (run --pretrain-seed N --out DIR), pooled per row, with\n"
                   "the spread across backbones that a run on another backbone (a new CPU kernel pretrains\n"
                   "one) is then checked with. docs/regression.md.\n"
                   "Exit status: 0 ok, 1 regression (or a change in exact mode, or a missing row), 2 bad input.\n",
                   usage_text);
            return 0;
        } else if (!strcmp(a, "--baseline") && more) {
            base = argv[++i];
        } else if (!strcmp(a, "--write-baseline") && more) {
            write = argv[++i];
        } else if (!strcmp(a, "--junit") && more) {
            o.junit = argv[++i];
        } else if (!strcmp(a, "--markdown") && more) {
            o.markdown = argv[++i];
        } else if (!strcmp(a, "--mode") && more) {
            const char *m = argv[++i];
            if (!strcmp(m, "auto")) o.mode = PB_CHECK_AUTO;
            else if (!strcmp(m, "exact")) o.mode = PB_CHECK_EXACT;
            else if (!strcmp(m, "statistical")) o.mode = PB_CHECK_STAT;
            else {
                fprintf(stderr, "peftbench check: --mode expects auto, exact or statistical, got '%s'\n", m);
                return 2;
            }
        } else if ((!strcmp(a, "--tol") || !strcmp(a, "--alpha") || !strcmp(a, "--power") ||
                    !strcmp(a, "--noise-sd")) && more) {
            // NaN would compare false and pass everything: every number is checked
            int tolish = !strcmp(a, "--tol") || !strcmp(a, "--noise-sd");
            double v = num_arg(argv[++i], 0, tolish ? 1e6 : 1);
            if (!isfinite(v) || (!tolish && (v <= 0 || v >= 1))) {
                fprintf(stderr, "peftbench check: %s expects %s, got '%s'\n", a,
                        tolish ? "a finite number >= 0" : "a number in (0, 1)", argv[i]);
                return 2;
            }
            if (!strcmp(a, "--tol")) o.tol = v;
            else if (!strcmp(a, "--alpha")) o.alpha = v;
            else if (!strcmp(a, "--power")) o.power = v;
            else noise_sd = v;
        } else if (a[0] != '-' && ndirs < 64) {
            dirs[ndirs++] = a;
            if (!dir) dir = a;
        } else {
            fprintf(stderr, "peftbench check: unexpected argument '%s'\n%s", a, usage_text);
            return 2;
        }
    }
    if (!dir || (!base && !write) || (base && write)) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    if (base && ndirs > 1) {
        fprintf(stderr, "peftbench check: one results directory is checked at a time (got %d; several are for "
                        "--write-baseline)\n%s", ndirs, usage_text);
        return 2;
    }
    char err[2048];
    if (write) {
        if (pb_baseline_write(dirs, ndirs, write, noise_sd, stdout, err, sizeof err)) {
            fprintf(stderr, "peftbench check: %s\n", err);
            return 2;
        }
        return 0;
    }
    int bad = 0;
    if (pb_check_run(dir, base, &o, stdout, &bad, err, sizeof err)) {
        fprintf(stderr, "peftbench check: %s\n", err);
        return 2;
    }
    return bad ? 1 : 0;
}
