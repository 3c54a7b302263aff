// fileutil.h: file and hashing helpers shared by every module (datasets, harness, checkpoints).
// defines: pb_tmp_orphaned, PB_HASH_INIT, pb_hash64, pb_hash_mix, pb_hash_str, pb_file_exists, pb_read_file, pb_mkdirs,
//          pb_write_atomic, pb_path_resolve, pb_path_inside, pb_json_dup_key
#ifndef PB_FILEUTIL_H
#define PB_FILEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"

// FNV-1a 64-bit, chainable: pass the previous value as h (start with PB_HASH_INIT).
#define PB_HASH_INIT 0xcbf29ce484222325ULL
uint64_t pb_hash64(uint64_t h, const void *data, size_t n);
// A seed for stream b of seed a: FNV-1a 64 of the two words (training streams: shuffling, the
// per-step dropout seed, the head init).
static inline uint64_t pb_hash_mix(uint64_t a, uint64_t b) {
    return pb_hash64(pb_hash64(PB_HASH_INIT, &a, sizeof a), &b, sizeof b);
}
// Hashes s including its NUL, so ("ab","c") and ("a","bc") differ.
uint64_t pb_hash_str(uint64_t h, const char *s);
int pb_file_exists(const char *path);
// Reads a whole file; caller frees *buf. Appends a NUL (not counted in *n).
pb_status pb_read_file(const char *path, uint8_t **buf, size_t *n, char *err, size_t errlen);
// mkdir -p.
pb_status pb_mkdirs(const char *dir, char *err, size_t errlen);
// Writes the concatenation of parts to path atomically: temp file in the same directory, fsync,
// rename, fsync of the directory; creates parent directories. A reader sees either the old file
// or the complete new one.
pb_status pb_write_atomic(const char *path, const void *const *parts, const size_t *sizes,
                          int nparts, char *err, size_t errlen);

// The absolute, symlink-free form of path in out (n bytes), also for a path that does not exist
// yet: its longest existing ancestor is resolved (realpath) and the rest appended, with "." and
// ".." folded. Returns 0, or -1 if it does not fit.
int pb_path_resolve(const char *path, char *out, size_t n);
// 1 if resolved path p equals resolved directory dir or lies below it.
int pb_path_inside(const char *p, const char *dir);

// Duplicate keys in parsed JSON (any depth): cJSON keeps both and lookups see the first, where
// Python's json keeps the last, so every reader of the project treats them as an error. Returns
// 1 and writes the key path of the first duplicate ("recipe.lr", "datasets[2].label") into
// path, else 0.
struct cJSON;
int pb_json_dup_key(const struct cJSON *root, char *path, size_t n);

// 1 if name has the form "<anything>.tmp.<pid>" and that process is gone (a killed writer's
// leftover), else 0. Temp files and directories of live processes are never reported.
int pb_tmp_orphaned(const char *name);

#endif
