// runner.h: `peftbench run`: expands a suite, runs its cells (resumable, shardable), writes one
// result file per cell atomically, then the report, the plots and index.html (report_html.h).
// defines: pb_run_opts, pb_run_suite, pb_git_revision, pb_runner_trainer, pb_run_out_dir,
//          pb_run_write_manifest, pb_run_select_cells, pb_run_prepare
#ifndef PB_RUNNER_H
#define PB_RUNNER_H

#include <stddef.h>
#include "grid.h"
#include "train.h"

typedef struct {
    const char *suite_path;
    const char *out_dir;    // NULL: results/<suite name>
    int force;              // re-run finished cells
    int retry_failed;       // re-run cells recorded as failed
    int dry_run;            // list cells, run nothing
    int shard_i, shard_n;   // run cells with index % shard_n == shard_i
    int cell;               // only this cell index (-1: all)
    const char *cells;      // only these cells: comma-separated cell ids or grid indices (NULL: all)
    int prepare;            // train no cell: build/validate the data and pretrain the backbones
                            // the selected cells need (the Slurm prepare job)
    int threads;            // engine threads (0: all cores)
    pb_device device;       // engine backend for every cell
    int no_report;          // skip report/plot/index.html at the end
    int pretrain_seed_set;  // 1: every backbone the suite pretrains uses pretrain_seed (another
    int pretrain_seed;      // backbone, same suite: a baseline's backbone term, docs/regression.md)
} pb_run_opts;

// The trainer `run` uses for every cell: pb_train_cell. Only test binaries built in tests/ (not
// peftbench) point it at a fixture; the fixture's results name it in their backend field.
extern pb_trainer_fn pb_runner_trainer;

// Returns the process exit status: 0 all cells ok, 1 some cell failed, 2 bad suite/arguments.
int pb_run_suite(const pb_run_opts *o);

// The results directory of a run: out_dir, else results/<suite name>. out has n bytes.
void pb_run_out_dir(const pb_suite *s, const char *out_dir, char *out, size_t n);

// Writes out/manifest.json: grid order (cell ids), each cell's model/dataset/method/seed labels
// (what `status` groups by before any result exists), axes and the reference table.
pb_status pb_run_write_manifest(const char *out, const pb_suite *s, const pb_grid *g, char *err, size_t errlen);

// Marks sel[i] = 1 for every cell in list (comma-separated cell ids or grid indices). Returns 0,
// or 2 after an error naming the entry that is not a cell of the grid (suite edited since?).
int pb_run_select_cells(const pb_grid *g, const char *list, unsigned char *sel, char *err, size_t errlen);

// `run --prepare`: for the cells todo[0..n) of g, loads each dataset at each model's input
// (building VTAB-mini and the preprocessing caches), loads or pretrains each backbone (cached,
// under the backbone lock), trains nothing. Progress on stderr and out/logs/prepare.log. Returns
// 0, 1 when something failed (named on stderr).
int pb_run_prepare(const pb_suite *s, const pb_grid *g, const int *todo, int n, const pb_run_opts *o, const char *out);

// Short git revision of the source tree (or "unknown"); out has >= 48 bytes.
void pb_git_revision(char *out, size_t n);

#endif
