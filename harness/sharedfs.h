// sharedfs.h: what many processes on many hosts need to share one results directory and one
// backbone cache safely (docs/cluster.md): the identity of this process (host, pid, Slurm job),
// leftover temp files told apart from a live writer's on another host, and the lock-with-wait
// that keeps two processes from pretraining the same backbone at once.
// defines: pb_self, pb_self_get, pb_tmp_stale, PB_TMP_GRACE_S, pb_lock, pb_lock_acquire,
//          pb_lock_release
#ifndef PB_SHAREDFS_H
#define PB_SHAREDFS_H

#include <stdio.h>
#include "../engine/common.h"

// Who is writing: short host name, pid and the Slurm job this process runs in ("" outside Slurm;
// job: SLURM_JOB_ID, unique per array task; array: SLURM_ARRAY_JOB_ID, task: SLURM_ARRAY_TASK_ID).
typedef struct {
    char host[128];
    long pid;
    char job[32], array_job[32], array_task[16];
} pb_self;
void pb_self_get(pb_self *s);

// A writer's temp file lives for seconds (write, fsync, rename); one older than this is a leftover.
#define PB_TMP_GRACE_S 900

// 1 if dir/name is a temp file or directory ("<x>.tmp.<pid>") that no live writer owns: its pid
// is gone on this host AND it was last modified more than PB_TMP_GRACE_S seconds ago. The pid test
// alone is wrong on a shared filesystem: the pid may belong to a live writer on another node.
int pb_tmp_stale(const char *dir, const char *name);

// An exclusive lock on a file (flock; the kernel or the filesystem's lock manager releases it when
// the holder dies, so a killed holder never leaves a stale lock). The file is never deleted (an
// unlinked lock file would let two processes hold "the" lock); it holds the holder's host, pid and
// job for the messages of those who wait.
typedef struct {
    int fd;          // -1 when not held
    int unsupported; // the filesystem has no flock: not held, and the caller goes on without it
} pb_lock;

// Takes the lock on path (created if missing), waiting up to timeout_s seconds (a note on msg,
// naming the holder, at the start and every 60 s). Returns PB_OK with the lock held; PB_OK with
// l->unsupported set (and a warning on msg) when the filesystem cannot lock; PB_ERR_IO after the
// timeout or when path cannot be opened, the message naming the holder. Release with pb_lock_release.
pb_status pb_lock_acquire(pb_lock *l, const char *path, double timeout_s, FILE *msg, char *err, size_t errlen);
void pb_lock_release(pb_lock *l);

#endif
