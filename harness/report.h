// report.h: aggregation of cell results into table rows (median over seeds, with spread) and
// the report files: results.json, results.csv, table.md, table.tex (+ paper vs ours when the
// suite names a reference table).
// defines: pb_agg, pb_aggregate, pb_report_write, pb_median, pb_axes_label, pb_agg_find,
//          pb_agg_col_dataset, pb_agg_row_first, pb_report_row_label, pb_report_fmt_params,
//          pb_reference, pb_reference_load, pb_reference_free, pb_reference_row, pb_reference_value,
//          pb_report_manifest (the table layout report.c and report_html.c share),
//          pb_sweep, pb_report_sweeps (learning-rate sweeps: best point, optimum at the edge),
//          pb_report_components, pb_report_block, pb_report_blocks, pb_report_blocks_free (one table
//          per block of rows and datasets: a mixed image + text suite prints two)
#ifndef PB_REPORT_H
#define PB_REPORT_H

#include "results.h"

// One (model, method, axes, dataset) group of seeds.
typedef struct {
    char model[64], method[64], method_ref[64], axes[256], dataset[128], dataset_ref[64], dataset_group[64];
    char metric[16];
    char select[16], split[16];
    int n, failed;            // ok seeds, failed seeds
    double median, mean, std, min, max; // of score x 100 (NaN when n == 0)
    double p_trainable_nohead, p_head; // median over seeds
    int rank;
    double lr;
    int row, col;             // table position
    char backend[160];        // the cells' backend, or "mixed: ..." when its seeds differ
    // The rest of the numerics fingerprint of its ok seeds (pb_record), each "mixed: ..." when
    // they differ; threads -1 when they differ.
    int threads;
    char git_rev[64], lapack[80], build[112];
    int n_eval;               // examples in the eval split, the fewest over its ok seeds (0: unknown)
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

// The table layout (table.md, table.tex, index.html): A[0..na) from pb_aggregate.
// The aggregate at (row, col) or NULL; the dataset label of column c ("?" if none); the first
// aggregate of row r (NULL if none). Pointers borrow from A.
const pb_agg *pb_agg_find(const pb_agg *A, int na, int row, int col);
const char *pb_agg_col_dataset(const pb_agg *A, int na, int c);
const pb_agg *pb_agg_row_first(const pb_agg *A, int na, int r);
// Display columns of the results table (table.md, table.tex, index.html): the datasets in order
// and, after each run of adjacent columns whose datasets share a non-empty suite "group", that
// group's mean (VTAB-1k's Natural / Specialized / Structured "M" columns, as HTA's Table 1).
// Column k is dataset c0 when group is NULL, else the mean over datasets [c0, c1).
typedef struct {
    int c0, c1;
    const char *group; // borrowed from A
} pb_report_col;
// Fills cols (capacity 2 * nc) and returns their count.
int pb_report_columns(const pb_agg *A, int na, int nc, pb_report_col *cols);
// Row r's value in display column k: the median over seeds, or the group's mean of medians;
// NaN when a dataset of it has no result.
double pb_report_col_value(const pb_agg *A, int na, int r, const pb_report_col *col);
// Blocks of the results table: the connected components of the bipartite graph rows <-> datasets
// (a row and a dataset are joined by a result of the row on it), so rows that share a dataset are in
// one block. In a mixed suite the ViT rows with the image datasets form one block and the RoBERTa
// rows with the text datasets another; a suite of one modality is one block. Blocks are numbered in
// the first-seen order of their rows; row_block[0..nr) and col_block[0..nc) get each one's block (a
// column without an aggregate: -1). Returns the number of blocks (0 when nr == 0).
int pb_report_components(const pb_agg *A, int na, int nr, int nc, int *row_block, int *col_block);
// One block as a table of its own: copies of its aggregates in A's order, rows and columns renumbered
// 0..nr / 0..nc keeping their order, so every pb_report_* / pb_agg_* function above works on it.
typedef struct {
    pb_agg *A;         // (na) owned
    int na, nr, nc;
    int multi_model;   // its rows hold more than one model (row labels then name the model)
    int nmodels;
    char models[256];  // its models in first-seen order, ", "-separated (unescaped)
} pb_report_block;
// The blocks of A[0..na) (nr rows, nc columns); returns their count and *out (caller frees with
// pb_report_blocks_free; at least 1: no rows give one empty block). One block holds the whole of
// A, in A's order.
int pb_report_blocks(const pb_agg *A, int na, int nr, int nc, pb_report_block **out);
void pb_report_blocks_free(pb_report_block *B, int nb);
// Row label: [model ]method[ axes] (the model only when the results hold several), unescaped.
void pb_report_row_label(const pb_agg *g, int multi_model, char *out, size_t n);
// A parameter count as the papers print it: 0.29M, 18.4K, 96 ("-" when not finite).
void pb_report_fmt_params(double p, char *out, size_t n);

// A reference (paper) table, suites/reference/*.json: {columns: [...], rows: [{model, method,
// params, values: {column: number}, avg}]}. Owns root; free with pb_reference_free.
typedef struct {
    cJSON *root;                 // NULL: no reference table
    const cJSON *columns, *rows; // borrowed from root
} pb_reference;
// path NULL or "": an empty table (root NULL), PB_OK. Errors: unreadable, not JSON, no lists.
pb_status pb_reference_load(const char *path, pb_reference *ref, char *err, size_t errlen);
void pb_reference_free(pb_reference *ref);
// The reference row of a method's `ref` (and model label, when the row names one), or NULL.
const cJSON *pb_reference_row(const pb_reference *ref, const char *method_ref, const char *model);
// The paper value of column col in row (NULL ok), or NaN.
double pb_reference_value(const cJSON *row, const char *col);

// One learning-rate sweep series (model, method label and the other grid axes) over the "lr" axis
// when the results have one, else "lr_scale": the value with the best average over the datasets of
// its block (pb_report_components; only values every such dataset has), and whether it is the smallest or largest value swept (the
// sweep does not bracket the optimum: "optimum at the edge of the sweep"). A series whose rows hold a
// single value of the axis (a model's own grid of lr_scale [1] beside another model's sweep) is no
// sweep and is left out.
typedef struct {
    char model[64], method[64], others[256]; // others: the other axes as "rank=16" ("" if none)
    char axis[16];                           // "lr" or "lr_scale"
    int nx;                                  // values with every dataset present
    double xmin, xmax, best_x, best_avg;     // best_avg: mean over datasets of the medians (x100)
    int edge;                                // best_x == xmin or xmax (or only one value)
    char per_dataset[600];                   // "bar-ori 100, sprite-xpos 150 (edge)" (unescaped labels)
} pb_sweep;
// The sweeps of A[0..na) (ncols datasets); returns their count and *out (caller frees; NULL when 0).
int pb_report_sweeps(const pb_agg *A, int na, int ncols, pb_sweep **out);

// From DIR/manifest.json (missing: defaults): the suite name ("results"), the reference table path
// (reference when non-empty, else the manifest's, else ""), the suite description (desc may be NULL).
void pb_report_manifest(const char *dir, const char *reference, char *suite, size_t sn, char *refpath, size_t rn,
                        char *desc, size_t dn);

#endif
