// slurm.h: what `peftbench slurm` and `peftbench status` need from Slurm, with no shell between:
// sh quoting for the job scripts (sbatch scripts are shell scripts), running a program as an
// argument vector with its output captured (sbatch --parsable, squeue, scancel), and one squeue
// snapshot to tell live jobs from gone ones.
// defines: pb_sh_quote, pb_sh_append, pb_slurm_path_escape, pb_spawn_capture, pb_squeue,
//          pb_squeue_snapshot, pb_squeue_free, pb_squeue_alive
#ifndef PB_SLURM_H
#define PB_SLURM_H

#include <stddef.h>

// s as one sh word: wrapped in single quotes, each ' written as '\'' (inside single quotes sh
// expands nothing: no $, `, \, globs or word splitting). Caller frees.
char *pb_sh_quote(const char *s);

// Appends " " (unless *buf is empty) and pb_sh_quote(word) to the growing string *buf (malloc'd,
// may start NULL; caller frees).
void pb_sh_append(char **buf, const char *word);

// path with every '%' doubled, for sbatch --output/--error (where %A, %a, %j are replaced and
// "%%" is one '%'). Caller frees. NULL if path holds a backslash (sbatch then turns replacement
// off for the whole name, and %A/%a could not be used).
char *pb_slurm_path_escape(const char *path);

// Runs argv[0] (PATH lookup, posix_spawnp) with argv; stdin from /dev/null, stdout into *out and
// stderr into *errout (both malloc'd, NUL-terminated, caller frees; either pointer may be NULL to
// drop it). Returns the exit status (128 + signal when killed), or -1 with errno set when the
// program could not be started.
int pb_spawn_capture(char *const argv[], char **out, char **errout);

// One `squeue -h -r -o %F|%A|%T` listing: every job and array task the controller knows.
typedef struct {
    int ok;            // squeue ran and exited 0 (else nothing can be said about liveness)
    int n;
    char (*array)[32]; // (n) array job id (%F; the job id itself for a plain job)
    char (*job)[32];   // (n) unique job id (%A; a pending array element shows the array's id)
    char (*state)[24]; // (n) PENDING, RUNNING, COMPLETING, ...
} pb_squeue;

// Takes the snapshot (ok = 0 when squeue is missing or fails). Free with pb_squeue_free.
void pb_squeue_snapshot(pb_squeue *q);
void pb_squeue_free(pb_squeue *q);
// For a job id (or array job id): 1 if some job or task of it is queued or running, 0 if the
// controller no longer lists it, -1 if the snapshot failed (unknown).
int pb_squeue_alive(const pb_squeue *q, const char *id);

#endif
