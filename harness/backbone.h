// backbone.h: the model a cell trains: a built-in config, a checkpoint directory, an inline
// config, or a backbone that peftbench pretrains once and caches (<cache_root>/<key>/, HF layout,
// with pretrain.json holding a content hash; an edited or truncated entry is rebuilt). Pretraining
// holds a flock on <cache_root>/.locks/<key>.lock (sharedfs.h): of many processes on many hosts one
// pretrains, the others wait and load its entry, which is published by rename (never half-written).
// defines: pb_backbone_obtain, pb_backbone_key
#ifndef PB_BACKBONE_H
#define PB_BACKBONE_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "../models/model.h"

// The cell's model with num_labels outputs (caller frees with pb_model_free). Pretrain specs are
// pretrained first (once, cached under cache_root, NULL: data/cache/backbones; progress on stderr
// and log) and get a fresh head from seed. hash (17 bytes, may be NULL) receives the content hash
// of the backbone's weights (config.json + model.safetensors, as pretrain.json records it) for a
// pretrained or checkpoint backbone, "" for a built-in one (its weights are drawn from the seed):
// cells with equal hashes fine-tune the same weights (check's backbone term, docs/regression.md).
pb_status pb_backbone_obtain(pb_engine *e, const cJSON *model, int num_labels, uint64_t seed, const char *cache_root,
                             FILE *log, pb_model **out, char hash[17], char *err, size_t errlen);

// Cache key (16 hex digits) of a model spec's pretrained backbone: FNV-1a of the canonical JSON of
// {version, builtin, config, pretrain} (the label is not part of it). The backbone lives in
// <cache_root>/<key>/ (config.json, model.safetensors, pretrain.json).
void pb_backbone_key(const cJSON *model, char out[17]);

#endif
