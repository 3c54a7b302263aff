// stage.h: data staging for the training loop: a cell's task loaded at the model's input size
// (and checked against it), and batches of examples staged on the engine.
// defines: pb_stage_task_load, pb_stager, pb_stager_init, pb_stager_free, pb_stage_batch,
//          pb_split_of
#ifndef PB_STAGE_H
#define PB_STAGE_H

#include <cjson/cJSON.h>
#include "../datasets/dataset.h"
#include "../models/model.h"

// Loads the dataset spec object ds (resolved suite entry) for a model config: image size and
// channels from the model unless ds overrides them, text clipped to the model's positions.
// Errors name the dataset (wrong modality, image size mismatch, empty split). Caller frees t with
// pb_task_free (also on error).
pb_status pb_stage_task_load(const cJSON *ds, const pb_model_config *cfg, pb_task *t, char *err, size_t errlen);

// Host staging and engine buffers for one batch of up to cap examples (owned; pb_stager_free).
typedef struct {
    pb_engine *e;
    const pb_task *t;
    int cap;
    size_t px_per;   // floats per image (C*H*W) or 0
    int T;           // text sequence length or 0
    float *h_px, *h_tg;
    int32_t *h_ids, *h_mask, *h_lab;
    uint8_t *h_flip;
    float *d_px, *d_tg;
    int32_t *d_ids, *d_mask, *d_lab;
} pb_stager;

void pb_stager_init(pb_stager *s, pb_engine *e, const pb_task *t, int cap);
void pb_stager_free(pb_stager *s);
// Fills b with examples idx[0..B) of split sp (inputs only when inputs != 0); b points into the
// stager's engine buffers (valid until the next call). flip: per-example horizontal flips or NULL.
void pb_stage_batch(pb_stager *s, const pb_split *sp, const int *idx, int B, const uint8_t *flip, int inputs,
                    pb_batch *b);

// Split k of a task: 0 train, 1 val, 2 test.
static inline const pb_split *pb_split_of(const pb_task *t, int k) {
    return k == 0 ? &t->train : k == 1 ? &t->val : &t->test;
}

#endif
