// report.h: aggregation of cell results into table rows (median over seeds, with spread) and
// the report files: results.json, results.csv, table.md, table.tex (+ paper vs ours when the
// suite names a reference table).
// defines: pb_agg, pb_aggregate, pb_report_write, pb_cmd_report helpers
#ifndef PB_REPORT_H
#define PB_REPORT_H

#include "results.h"

// One (model, method, axes, dataset) group of seeds.
typedef struct {
    char model[64], method[64], method_ref[64], axes[256], dataset[128], dataset_ref[64], metric[16];
    char select[16], split[16];
    int n, failed;            // ok seeds, failed seeds
    double median, mean, std, min, max; // of score x 100 (NaN when n == 0)
    double p_trainable_nohead, p_head; // median over seeds
    int rank;
    double lr;
    int row, col;             // table position
    char backend[160];        // the cells' backend, or "mixed: ..." when its seeds differ
} pb_agg;

// Groups records; rows (model, method, axes) and columns (datasets) in first-seen order.
// Caller frees *aggs. nrows/ncols may be NULL.
void pb_aggregate(const pb_record *recs, int n, pb_agg **aggs, int *nagg, int *nrows, int *ncols);

// Writes DIR/results.json, results.csv, table.md, table.tex. reference: path of a reference
// table JSON or NULL/"" (then the manifest's reference is used if any). Prints table.md to out
// when out != NULL. Cell files left out (pb_results_load's trust checks) are printed to stderr,
// listed in table.md and counted in *nskipped (may be NULL).
pb_status pb_report_write(const char *dir, const char *reference, FILE *out, int *nskipped, char *err,
                          size_t errlen);

// Median of v[0..n) (sorts v in place).
double pb_median(double *v, int n);

// Human-readable grid-axis values of a canonical axes object, numbers as %g:
// {"lr":0.0030000000000000001,"rank":8} -> "lr=0.003 rank=8"; "{}" -> "".
void pb_axes_label(const char *axes, char *out, size_t n);

#endif
