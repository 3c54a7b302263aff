// data_internal.h: helpers shared by the dataset readers (not part of the runner interface).
// defines: pb_img (decoded image), pb_img_free, pb_image_decode_file, pb_image_decode_mem,
//          pb_image_convert, pb_image_resize, pb_image_to_chw, pb_gunzip_file, pb_listfile_parse,
//          pb_listfile_free, pb_imgset (raw examples before preprocessing), pb_cache_write,
//          pb_cache_read, pb_task_content_hash, pb_vtab_mini_build, pb_vtab_mini_path,
//          pb_digits_find, pb_glue_mini_tasks, pb_glue_mini_build, pb_glue_mini_dir,
//          PB_GLUE_MINI_VOCAB
#ifndef PB_DATA_INTERNAL_H
#define PB_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "../engine/common.h"
#include "../engine/fileutil.h"
#include "dataset.h"

// ---------------------------------------------------------------------------------------------
// Images (image.c). Pixels are interleaved HWC uint8 after decoding; the dataset stores CHW.

typedef struct {
    int w, h, c;   // c = 1 (gray) or 3 (RGB)
    uint8_t *px;   // (h, w, c) interleaved; owned, free with pb_img_free
} pb_img;

void pb_img_free(pb_img *im);
// Decodes a JPEG or PNG (detected by magic bytes). `name` is used in error messages.
pb_status pb_image_decode_mem(const uint8_t *buf, size_t n, const char *name, pb_img *out,
                              char *err, size_t errlen);
pb_status pb_image_decode_file(const char *path, pb_img *out, char *err, size_t errlen);
// Converts to c channels in place (1 <-> 3). RGB -> gray uses ITU-R 601-2 luma like PIL "L":
// L = (19595 R + 38470 G + 7471 B + 32768) >> 16.
void pb_image_convert(pb_img *im, int c);
// Resizes to (ow, oh) with the PIL Image.resize algorithm (separable, antialiased: filter support
// scaled by the downscale factor, 22-bit fixed-point coefficients, horizontal pass first, uint8
// rounding between passes). mode: "bilinear" (triangle) or "bicubic" (a = -0.5).
// Returns a new image; the caller frees it.
pb_status pb_image_resize(const pb_img *in, int ow, int oh, const char *mode, pb_img *out,
                          char *err, size_t errlen);
// Stores (h, w, c) interleaved into (c, h, w) planar dst.
void pb_image_to_chw(const pb_img *im, uint8_t *dst);

// ---------------------------------------------------------------------------------------------
// Files and hashing (util.c).

// Reads and gunzips a .gz file (or a plain file when it lacks the gzip magic) via zlib.
pb_status pb_gunzip_file(const char *path, uint8_t **buf, size_t *n, char *err, size_t errlen);

// ---------------------------------------------------------------------------------------------
// List files "relative/path label" (NOAH VTAB-1k). Entries own their strings.

typedef struct {
    int n;
    char **paths;   // (n) owned
    int *labels;    // (n)
    int *lines;     // (n) 1-based source line of each entry
} pb_listfile;

// Parses buf (n bytes). Blank lines are skipped; each other line must be "<path> <int label>"
// separated by one or more spaces/tabs, with label in [0, 1e6). Errors name file:line.
pb_status pb_listfile_parse(const char *buf, size_t n, const char *name, pb_listfile *out,
                            char *err, size_t errlen);
void pb_listfile_free(pb_listfile *l);

// ---------------------------------------------------------------------------------------------
// Cached image dataset file (cache.c). Layout (little-endian):
//   "PBDATA01" | u32 channels, height, width, num_classes, n_train, n_val, n_test, reserved |
//   u64 content hash (FNV-1a of everything after the header) |
//   per split (train, val, test): i32 labels[n] then u8 pixels[n*c*h*w] (CHW).
pb_status pb_cache_write(const char *path, const pb_task *t, char *err, size_t errlen);
// Loads into t (fills channels/height/width/num_classes/splits/data_hash); verifies the hash.
pb_status pb_cache_read(const char *path, pb_task *t, char *err, size_t errlen);
// Content hash of a task's image splits (same value the cache stores).
uint64_t pb_task_content_hash(const pb_task *t);

// ---------------------------------------------------------------------------------------------
// VTAB-mini (vtab_mini.c).

// Task names, NULL-terminated.
extern const char *const pb_vtab_mini_tasks[];
// Builds every task into <data_root>/cache/vtab-mini/<task>.pbd. Prints one line per task to
// log (may be NULL). digits_csv may be NULL (search default locations).
pb_status pb_vtab_mini_build(const char *data_root, FILE *log, char *err, size_t errlen);
// Path of a built task file (writes into path, size len).
void pb_vtab_mini_path(const char *data_root, const char *task, char *path, size_t len);
// Finds sklearn's digits.csv.gz: $PB_DIGITS_CSV, the python3-sklearn install path,
// <data_root>/sources/digits.csv.gz. Returns 0 and fills path, or -1.
int pb_digits_find(const char *data_root, char *path, size_t len);

// ---------------------------------------------------------------------------------------------
// GLUE-mini (glue_mini.c).

// Task names (GLUE task folders), NULL-terminated.
extern const char *const pb_glue_mini_tasks[];
// Size of the BPE vocabulary written to <out>/tokenizer/.
#define PB_GLUE_MINI_VOCAB 4000
// Exports r-cran-janeaustenr and r-cran-modeldata with Rscript and writes <out>/<task>/{train,dev}.tsv
// (GLUE layouts), <out>/corpus.txt (train text only) and <out>/tokenizer/{vocab.json,merges.txt}.
// One line per task (sizes, chance level) to log (may be NULL). Errors name the package to install.
pb_status pb_glue_mini_build(const char *out_dir, FILE *log, char *err, size_t errlen);
// The default output directory, <data_root>/glue-mini.
void pb_glue_mini_dir(const char *data_root, char *path, size_t len);

#endif
