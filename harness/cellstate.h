// cellstate.h: where each cell of a results directory stands, for `status` and for resubmission:
// done (result status ok), failed (a result with another status), running (an in-flight marker
// whose process or Slurm job is alive), stale (a marker whose process or job is gone: killed,
// cancelled, node lost), missing (nothing, or an unreadable result). The marker is
// DIR/running/<id>.json (host, pid, Slurm job ids, start time), written atomically by `run`
// before a cell trains, touched every epoch (heartbeat) and removed once its result is written.
// defines: pb_cell_state, pb_cell_state_names, pb_cell_info, pb_running_mark, pb_running_touch,
//          pb_running_clear, pb_running_any, pb_cell_state_get, PB_STALE_DEFAULT_S
#ifndef PB_CELLSTATE_H
#define PB_CELLSTATE_H

#include "../engine/common.h"
#include "slurm.h"

typedef enum { PB_CELL_DONE, PB_CELL_FAILED, PB_CELL_RUNNING, PB_CELL_STALE, PB_CELL_MISSING, PB_CELL_NSTATES } pb_cell_state;
extern const char *const pb_cell_state_names[PB_CELL_NSTATES]; // "done", "failed", ...

typedef struct {
    pb_cell_state state;
    char reason[256];   // failed: the result's reason; stale: why it is not running
    char host[128];     // running/stale: the marker's writer
    long pid;
    char job[32];       // its SLURM_JOB_ID ("" outside Slurm)
    char task[48];      // "ARRAYJOB_TASK" ("" outside an array)
} pb_cell_info;

// Writes DIR/running/<id>.json for this process (sharedfs.h: pb_self). Returns PB_OK or an I/O error.
pb_status pb_running_mark(const char *dir, const char *id, char *err, size_t errlen);
// Heartbeat: sets the marker's mtime to now (markers nobody can check otherwise go stale by age).
void pb_running_touch(const char *dir, const char *id);
void pb_running_clear(const char *dir, const char *id);
// 1 if DIR/running holds any marker (so a squeue snapshot is worth taking).
int pb_running_any(const char *dir);

// A marker that neither its pid (same host) nor Slurm can vouch for counts as stale once its
// heartbeat is older than this many seconds ($PEFTBENCH_STALE_S overrides).
#define PB_STALE_DEFAULT_S (6 * 3600)

// The state of cell id in results directory dir. q: a squeue snapshot (pb_squeue_snapshot) or
// NULL; with one, a marker naming a Slurm job is running exactly while that job is listed.
void pb_cell_state_get(const char *dir, const char *id, const pb_squeue *q, pb_cell_info *ci);

#endif
