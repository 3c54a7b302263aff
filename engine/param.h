// param.h: a named parameter tensor with its (optional) gradient and AdamW state, and the
// optimizer step over a set of them.
// defines: pb_param, pb_param_group, pb_param_init, pb_param_free, pb_param_set_trainable,
//          pb_params_zero_grad, pb_params_adamw_step, pb_adamw_config
#ifndef PB_PARAM_H
#define PB_PARAM_H

#include "ops.h"

typedef enum {
    PB_GROUP_BACKBONE = 0, // embeddings, encoder, final layernorm
    PB_GROUP_HEAD = 1,     // classifier (ViT) / classification head (RoBERTa)
    PB_GROUP_POOLER = 2,   // present in some checkpoints, unused by the classification models
    PB_GROUP_ADAPTER = 3,  // created by a PEFT method
} pb_param_group;

#define PB_MAX_DIMS 4
#define PB_NAME_MAX 160

// data lives in engine memory (pb_alloc). grad, m, v are allocated only while trainable, so the
// memory of frozen weights is exactly one float per element. Owned by whoever holds the pb_param
// (a model or an adapter); released with pb_param_free.
typedef struct pb_param {
    char name[PB_NAME_MAX]; // HF key without the task prefix, e.g. "encoder.layer.0.attention.attention.query.weight"
    int ndim;
    int64_t shape[PB_MAX_DIMS];
    size_t numel;
    float *data;
    float *grad;  // NULL unless trainable
    float *m, *v; // AdamW moments; NULL until the first optimizer step
    int trainable;
    int no_decay; // 1: no weight decay (biases, layernorms, embeddings' tokens by default)
    // Set by the tensor's owner when this step's forward did not use it (AdapterDrop's skipped
    // layers): the next optimizer step leaves it alone, as torch leaves a parameter whose grad is
    // None; `skipped` counts such steps, so its bias correction uses step - skipped (torch's
    // per-parameter step count).
    int skip_step;
    int skipped;
    pb_param_group group;
} pb_param;

// Allocates data (zeroed) for a tensor of the given shape.
void pb_param_init(pb_engine *e, pb_param *p, const char *name, int ndim, const int64_t *shape,
                   pb_param_group group);
void pb_param_free(pb_engine *e, pb_param *p);
// Turns training on/off for p: allocates (zeroed) grad on, frees grad/m/v off.
void pb_param_set_trainable(pb_engine *e, pb_param *p, int trainable);

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} pb_adamw_config;

void pb_params_zero_grad(pb_engine *e, pb_param **ps, int n);
// One AdamW step (1-based `step`) over the trainable params in ps; allocates m/v lazily.
void pb_params_adamw_step(pb_engine *e, pb_param **ps, int n, const pb_adamw_config *cfg, int step);

#endif
