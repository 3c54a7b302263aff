// results.h: one result file per cell (results/<suite>/cells/<id>.json) and the flat records
// that report/plot/check read back from a results directory.
// defines: pb_epoch_metrics, pb_train_result, pb_train_result_free, pb_result_json, pb_result_build_string, pb_record,
//          pb_results_load, pb_result_is_finished, pb_skips, pb_skips_free, pb_skips_print
#ifndef PB_RESULTS_H
#define PB_RESULTS_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "../engine/common.h"

typedef struct {
    int epoch;           // 1-based
    double train_loss, val, test, lr, time_s;
} pb_epoch_metrics;

// What a trainer returns for one cell. Filled by pb_train_cell (or a test binary's fixture); freed
// with pb_train_result_free.
typedef struct {
    pb_status status;
    char reason[512];
    char metric[16];     // "accuracy", "mcc", ...
    int nepochs;
    pb_epoch_metrics *epochs; // (nepochs) owned
    long long p_total, p_backbone, p_head, p_trainable, p_trainable_backbone, p_adapter;
    double train_time_s, throughput; // examples per second of training
    size_t peak_rss;
    char backend[160];
    int threads;
    char data_hash[17];
    char backbone_hash[17]; // content hash of the backbone's weights ("" built-in: drawn from the seed)
    long long train_examples;
    int n_val, n_test;   // examples in the val and test splits (what each evaluation counts; 0 unknown)
} pb_train_result;

void pb_train_result_free(pb_train_result *r);

// Builds the result JSON of a cell (schema "peftbench.cell/1"; docs/suites.md). Caller frees
// with cJSON_Delete. axes: the grid-axis values of the cell (borrowed). Besides r's fields it
// records this process's numerics fingerprint: the OpenBLAS core LAPACK uses ("lapack") and the
// build ("build": compiler, target ISA, optimisation, sanitizers; pb_result_build_string).
cJSON *pb_result_json(const char *suite, const char *id, const cJSON *config, const cJSON *axes,
                      const pb_train_result *r, const char *git_rev);

// The compiler, target ISA, optimisation and sanitizers this code was built with, e.g.
// "gcc 12.2.0 -O avx512f": a different build can round differently. Writes into out (n bytes).
void pb_result_build_string(char *out, size_t n);

// A finished result exists at path and parses with a status: 1, else 0.
int pb_result_is_finished(const char *path);

// Flat view of one cell result for tables and plots.
typedef struct {
    char id[17], status[16], reason[256];
    char model[64], dataset[128], dataset_ref[64], dataset_group[64], method[64], method_name[32], method_ref[64];
    char metric[16], split[16], select[16];
    char axes[256];      // canonical JSON of the grid axes except seed ("{}" when none)
    int seed, rank, epoch;
    double lr, score;    // score: metric on the eval split at the selected epoch (fraction)
    double val, test;
    double loss_last;    // training loss of the last recorded epoch: a fingerprint of the numerics
    long long p_trainable, p_adapter, p_head, p_total;
    double train_time_s, throughput;
    double peak_rss_mb;
    int order;           // grid order (from the manifest), for stable table rows
    char backend[160];   // engine, GEMM provider and kernel, threads that produced it
    // The rest of the numerics fingerprint (check's exact mode): thread count, the git revision,
    // the OpenBLAS core LAPACK ran on (SVD inits) and the compiler/flags; "" when not recorded.
    int threads;
    char git_rev[48], lapack[64], build[96];
    int n_eval;          // examples in the eval split the score was measured on (0: not recorded)
    char backbone[17];   // content hash of the pretrained/checkpoint weights ("": built-in or not recorded)
} pb_record;

// Cells pb_results_load left out, one line each ("DIR/cells/x.json: reason"); freed with
// pb_skips_free.
typedef struct {
    char **msg;
    int n;
} pb_skips;
void pb_skips_free(pb_skips *s);
// Prints each skip to f as "<who>: skipped <msg>"; returns the count.
int pb_skips_print(const pb_skips *s, const char *who, FILE *f);

// Reads every DIR/cells/*.json (sorted by grid order, then id). Unparseable files are an error
// naming the file. Cells that parse but cannot be trusted are left out and listed in *skips
// (may be NULL): a file whose name is not its id (copied or renamed), a cell of another suite
// than the manifest's, a missing status, or a finished cell
// whose score is not a finite number in the metric's range ([0,1] for accuracy and f1, [-1,1]
// for mcc, pearson, spearman). Caller frees *recs with free().
pb_status pb_results_load(const char *dir, pb_record **recs, int *n, pb_skips *skips, char *err, size_t errlen);

#endif
