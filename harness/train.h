// train.h: training and evaluation of one cell on the shared engine, and the synthetic trainer
// the runner tests use (no model: deterministic fake curves, optional sleep per epoch).
// defines: pb_train_ctx, pb_train_cell, pb_train_synthetic, pb_train_engine_available,
//          pb_backbone_key
#ifndef PB_TRAIN_H
#define PB_TRAIN_H

#include <cjson/cJSON.h>
#include "results.h"

typedef struct pb_train_ctx {
    int threads;            // engine threads (<=0: all cores)
    int device;             // 0 cpu, 1 cuda
    FILE *log;              // per-cell log (never NULL)
    const char *cache_root; // where pretrained backbones are cached ("data/cache/backbones")
    // Progress hook, called after every epoch (may be NULL).
    void (*on_epoch)(struct pb_train_ctx *ctx, const pb_epoch_metrics *m, int epochs);
    void *user;
} pb_train_ctx;

// Trains and evaluates the cell described by a resolved config (grid.h). Always fills r (also on
// failure: status, reason and whatever was measured). Returns r->status.
pb_status pb_train_cell(const cJSON *config, pb_train_ctx *ctx, pb_train_result *r);

// Deterministic stand-in used by runner tests ("trainer": "synthetic"): scores derive from the
// config hash, rank and lr; method label "diverge" yields a NaN loss (a failed cell). Sleeps
// PB_SYNTH_SLEEP_MS milliseconds (environment) per epoch so tests can interrupt a run.
pb_status pb_train_synthetic(const cJSON *config, pb_train_ctx *ctx, pb_train_result *r);

// Cache key (16 hex digits) of a model spec's pretrained backbone: FNV-1a of the canonical JSON of
// {version, builtin, config, pretrain} (the label is not part of it). The backbone lives in
// <cache_root>/<key>/ (config.json, model.safetensors, pretrain.json).
void pb_backbone_key(const cJSON *model, char out[17]);

// 1 when this build links the models/methods/datasets modules the engine trainer needs.
int pb_train_engine_available(void);

#endif
