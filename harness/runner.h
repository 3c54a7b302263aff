// runner.h: `peftbench run`: expands a suite, runs its cells (resumable, shardable), writes one
// result file per cell atomically, then the report, the plots and index.html (report_html.h).
// defines: pb_run_opts, pb_run_suite, pb_git_revision, pb_runner_trainer
#ifndef PB_RUNNER_H
#define PB_RUNNER_H

#include <stddef.h>
#include "train.h"

typedef struct {
    const char *suite_path;
    const char *out_dir;    // NULL: results/<suite name>
    int force;              // re-run finished cells
    int retry_failed;       // re-run cells recorded as failed
    int dry_run;            // list cells, run nothing
    int shard_i, shard_n;   // run cells with index % shard_n == shard_i
    int cell;               // only this cell index (-1: all)
    int threads;            // engine threads (0: all cores)
    pb_device device;       // engine backend for every cell
    int no_report;          // skip report/plot/index.html at the end
} pb_run_opts;

// The trainer `run` uses for every cell: pb_train_cell. Only test binaries built in tests/ (not
// peftbench) point it at a fixture; the fixture's results name it in their backend field.
extern pb_trainer_fn pb_runner_trainer;

// Returns the process exit status: 0 all cells ok, 1 some cell failed, 2 bad suite/arguments.
int pb_run_suite(const pb_run_opts *o);

// Short git revision of the source tree (or "unknown"); out has >= 48 bytes.
void pb_git_revision(char *out, size_t n);

#endif
