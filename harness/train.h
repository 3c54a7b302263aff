// train.h: training and evaluation of one cell on the shared engine.
// defines: pb_train_ctx, pb_train_cell, pb_trainer_fn, pb_backbone_key
#ifndef PB_TRAIN_H
#define PB_TRAIN_H

#include <cjson/cJSON.h>
#include "results.h"
#include "../engine/ops.h" // pb_device

typedef struct pb_train_ctx {
    int threads;            // engine threads (<=0: all cores)
    pb_device device;       // engine backend
    FILE *log;              // per-cell log (never NULL)
    const char *cache_root; // where pretrained backbones are cached ("data/cache/backbones")
    // Progress hook, called after every epoch (may be NULL).
    void (*on_epoch)(struct pb_train_ctx *ctx, const pb_epoch_metrics *m, int epochs);
    void *user;
} pb_train_ctx;

// Trains and evaluates the cell described by a resolved config (grid.h). Always fills r (also on
// failure: status, reason and whatever was measured). Returns r->status.
pb_status pb_train_cell(const cJSON *config, pb_train_ctx *ctx, pb_train_result *r);

// What `run` calls for each cell. peftbench links only pb_train_cell; the runner tests build
// their own binary (tests/peftbench_synth.c) that swaps in a fixture trainer (runner.h).
typedef pb_status (*pb_trainer_fn)(const cJSON *config, pb_train_ctx *ctx, pb_train_result *r);

// Cache key (16 hex digits) of a model spec's pretrained backbone: FNV-1a of the canonical JSON of
// {version, builtin, config, pretrain} (the label is not part of it). The backbone lives in
// <cache_root>/<key>/ (config.json, model.safetensors, pretrain.json).
void pb_backbone_key(const cJSON *model, char out[17]);

#endif
