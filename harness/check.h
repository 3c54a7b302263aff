// check.h: `peftbench check DIR --baseline FILE [--tol POINTS]`: compares the median of every
// (model, method, axes, dataset) in the baseline (a results.json written by report) with DIR.
// defines: pb_check
#ifndef PB_CHECK_H
#define PB_CHECK_H

#include <stdio.h>
#include "../engine/common.h"

// Prints a comparison table to out. *bad receives the number of regressions (ours < baseline -
// tol, in metric points x100) plus missing cells. tol < 0: taken from the baseline's
// "tolerance": {"identical", "different_numerics"} (the first when every baseline cell's
// train_loss_last is reproduced bit for bit), else 1.0. Returns PB_OK unless the inputs are unreadable.
pb_status pb_check(const char *dir, const char *baseline, double tol, FILE *out, int *bad, char *err,
                   size_t errlen);

#endif
