// dataset.h: a loaded task (train/val/test splits) in the form the runner consumes.
// Images are stored decoded and resized to the model input as uint8 (normalised per batch);
// text is stored tokenised, padded, with an attention mask.
// defines: pb_split, pb_task, pb_task_opts, pb_task_load, pb_task_free, pb_split_batch_images,
//          pb_norm_profile
#ifndef PB_DATASET_H
#define PB_DATASET_H

#include <stdint.h>
#include "../engine/common.h"

typedef enum { PB_DATA_IMAGE = 0, PB_DATA_TEXT = 1 } pb_data_kind;

typedef struct {
    int n;                 // examples
    // images: (n, channels, height, width) uint8, already at the model's input size
    uint8_t *pixels;
    // text: (n, seq_len)
    int32_t *ids, *mask;
    int32_t *labels;       // (n) class ids, or NULL for regression
    float *targets;        // (n) regression targets, or NULL
} pb_split;

typedef struct {
    char name[128];        // e.g. "vtab-mini/fmnist-1k", "glue/sst2"
    pb_data_kind kind;
    int num_classes;       // 1 = regression
    char metric[16];       // "accuracy", "mcc", "f1", "pearson", "spearman"
    int channels, height, width; // images
    int seq_len;           // text
    char norm[16];         // normalisation profile: "hf" (mean=std=0.5) or "imagenet"
    float mean[3], std[3];
    char data_hash[17];    // 64-bit content hash (hex) of the loaded examples + preprocessing
    pb_split train, val, test;
} pb_task;

typedef struct {
    int image_size;        // resize target (model input); 0 = keep
    int channels;          // 1 or 3: convert grayscale <-> RGB as the model needs; 0 = keep
    char resize[16];       // "bilinear" (default) | "bicubic"
    char norm[16];         // "hf" (default) | "imagenet"
    int seq_len;           // text: max length (truncation/padding), default 128
    char tokenizer_dir[512]; // text: directory holding vocab.json + merges.txt
    char split_protocol[16]; // "train800val200" style: "val" (train800 / val200, default) or "trainval"
    char data_root[512];   // root for relative dataset paths and the data cache (default "data")
} pb_task_opts;

void pb_task_opts_default(pb_task_opts *o);
// Loads a task by spec: "vtab-mini/<task>" (built locally), "vtab1k:<dir>", "fgvc:<dir>",
// "cifar10:<dir>", "cifar100:<dir>", "idx:<dir>", "folder:<dir>", "glue/<task>:<dir>".
// Errors name the file and line. Caller frees with pb_task_free.
pb_status pb_task_load(const char *spec, const pb_task_opts *opts, pb_task *out, char *err,
                       size_t errlen);
void pb_task_free(pb_task *t);

// Writes normalised float pixels (B, channels, height, width) for examples idx[0..B) of split s
// into host memory dst, applying the task's mean/std. When flip is non-NULL, flip[b] != 0
// mirrors example b horizontally (augmentation).
void pb_split_batch_images(const pb_task *t, const pb_split *s, const int *idx, int B,
                           const uint8_t *flip, float *dst);

#endif
