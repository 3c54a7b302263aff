// check.h: `peftbench check`: the CI regression check of a results directory against a
// baseline, and the baseline writer (docs/regression.md).
//
// A baseline (schema "peftbench.baseline/1", written by pb_baseline_write) holds per row
// (model, method, axes, dataset) the metric, the evaluated examples, the seeds, mean / median /
// seed std, the per-method excess seed spread, and the engine fingerprint (backend with GEMM
// provider and kernel, threads, LAPACK's OpenBLAS core, build, git revision), and per backbone
// (content hash) the seeds that fine-tuned it, with the per-method spread across backbones. A
// row whose cells fine-tuned one of the baseline's backbones is compared with that backbone's
// seeds; on another backbone the backbone spread joins its SE. Each row is compared in one of
// three modes:
//   exact        the fingerprint matches: training is bitwise reproducible, so any difference
//                (score, seed set, or a cell's last training loss) is a failure;
//   statistical  otherwise: a drop regresses beyond z * SE, SE from the metric's sampling error on
//                n examples plus the seed spread (pb_check_metric_var), z Bonferroni-corrected;
//                method and suite averages are tested the same way;
//   tolerance    --tol POINTS, or a legacy baseline (a results.json with an optional
//                "tolerance" block).
// defines: pb_check_mode, pb_check_opts, pb_check_opts_default, pb_check_run, pb_check,
//          pb_baseline_write, pb_check_norm_quantile, pb_check_metric_var
#ifndef PB_CHECK_H
#define PB_CHECK_H

#include <stdio.h>
#include "../engine/common.h"

typedef enum {
    PB_CHECK_AUTO = 0, // exact where the row's fingerprint matches the baseline's, else statistical
    PB_CHECK_EXACT,    // every row exact
    PB_CHECK_STAT,     // every row statistical
} pb_check_mode;

typedef struct {
    double tol;           // >= 0: tolerance mode for every row (points x100); < 0: by mode
    pb_check_mode mode;
    double alpha;         // false-alarm probability of each family (rows; averages), default 0.01
    double power;         // power at which the minimum detectable drop is quoted, default 0.8
    const char *junit;    // write a JUnit XML report here (NULL: none)
    const char *markdown; // write a Markdown summary here (NULL: none)
} pb_check_opts;

void pb_check_opts_default(pb_check_opts *o);

// Compares DIR with the baseline file and prints the comparison table, the averages and the
// minimum detectable drops to out. *bad receives the number of failed rows and averages
// (regressions, changes in exact mode, missing/failed/non-finite rows). Returns PB_OK unless an
// input is unusable: an unreadable or malformed baseline (the message names the file and the
// field), an unreadable results directory, or a report file that cannot be written.
pb_status pb_check_run(const char *dir, const char *baseline, const pb_check_opts *o, FILE *out, int *bad, char *err,
                       size_t errlen);

// pb_check_run with the default options and tol (< 0: by mode, as in pb_check_opts).
pb_status pb_check(const char *dir, const char *baseline, double tol, FILE *out, int *bad, char *err,
                   size_t errlen);

// Writes the baseline of results directories dirs[0..ndirs) to path (atomically): one suite,
// each directory a run on its own backbone (`run --pretrain-seed N`; ids may not repeat) whose
// cells are pooled per row, with the spread across backbones (backbone_sd, per (model, method))
// measured when 2+ backbones ran a row. noise_sd: the excess seed spread in points to record for
// every row (>= 0: given, e.g. measured across kernels); < 0: estimated per (model, method) from
// rows with 2+ seeds on one backbone (0 where no row has them). Refuses a run with failed,
// missing or untrusted cells, or cells without an evaluated-example count. Prints what it wrote
// and the minimum detectable drops the baseline allows to msg (may be NULL).
pb_status pb_baseline_write(const char *const *dirs, int ndirs, const char *path, double noise_sd, FILE *msg,
                            char *err, size_t errlen);

// The standard normal quantile: z with P(Z <= z) = p, for 0 < p < 1 (NaN outside).
double pb_check_norm_quantile(double p);

// The sampling variance of one evaluation of metric on n examples, in points^2 (metric x100), at
// the value v (points): accuracy binomial p(1-p)/n with p shrunk as (x + 2)/(n + 4); f1 the
// same on n/2 examples; pearson (1-r^2)^2/(n-3) (Fisher z); spearman 1.06 (1-r^2)^2/(n-3)
// (Fieller); mcc (1-r^2)/(n-2). NaN for an unknown metric or n too small.
double pb_check_metric_var(const char *metric, double v, int n);

#endif
