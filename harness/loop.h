// loop.h: the one training loop. Every number peftbench reports goes through it: `run` (cells and
// the pretraining stage, via pb_fit), `trace` (pb_loop on fixed batches with dump hooks; what the
// PyTorch recipe-parity test compares) and `bench` (pb_loop with timing).
//
// A step (pb_loop_step = pb_loop_forward_backward + pb_loop_update):
//   forward (train mode: dropout seeded per step) -> loss (label smoothing) -> [non-finite: stop]
//   -> zero grads -> backward [-> method regulariser: loss and grads] -> clip the global grad norm (max_grad_norm > 0, as
//   torch.nn.utils.clip_grad_norm_) -> LRs of this step from the schedule (pb_lr_at: warmup then
//   constant / linear / cosine, as transformers' get_*_schedule_with_warmup with scheduler.step()
//   after optimizer.step()) -> AdamW on two groups: the head at head_lr, everything else at lr;
//   weight decay on every parameter not marked no_decay (biases, LayerNorm, ViT cls/position
//   embeddings, SVFit's sigma) [-> the method's after_update hook (AdaLoRA's rank allocator)].
// defines: pb_recipe, pb_recipe_read, pb_loop, pb_loop_init, pb_loop_free,
//          pb_loop_set_method, pb_loop_forward_backward, pb_loop_update, pb_loop_step, pb_fit, pb_fit_init,
//          pb_fit_run, pb_fit_evaluate, pb_fit_free, pb_epoch_cb
#ifndef PB_LOOP_H
#define PB_LOOP_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "results.h"
#include "../methods/method.h"
#include "stage.h"

// The training recipe of a cell (suite.c fills every key; docs/suites.md).
typedef struct {
    int epochs, batch, eval_batch, warmup_steps, train_subset, flip, feature_cache;
    double lr, head_lr, beta1, beta2, eps, weight_decay, warmup_ratio, label_smoothing, max_grad_norm;
    pb_sched_kind sched;
} pb_recipe;

// From a resolved recipe object (lr = lr x lr_scale; head_lr null = lr). Missing keys take the
// documented defaults (the pretraining block carries a subset).
void pb_recipe_read(const cJSON *j, pb_recipe *rc);

// ----------------------------------------------------------------------------
// Steps

typedef struct {
    pb_model *m;
    pb_recipe rc;
    int total, warmup;       // schedule length and warmup, in steps
    pb_param **tr;           // trainable parameters (borrowed from the model)
    pb_param **head, **rest; // LR groups (owned arrays)
    int ntr, nh, nr;
    int step;                // updates done so far (AdamW's step count is step + 1)
    float lr, head_lr;       // rates of the last update
    double grad_norm;        // global grad norm before clipping at the last update (0: clipping off)
    const pb_method_config *method; // the applied method's training hooks (pb_loop_set_method), or NULL
} pb_loop;

// Sets up the step state for the model's trainable parameters (call after pb_method_apply).
// total_steps: schedule length; warmup: rc->warmup_steps, else ceil(warmup_ratio x total).
void pb_loop_init(pb_loop *L, pb_model *m, const pb_recipe *rc, int total_steps);
void pb_loop_free(pb_loop *L);
// The method applied to the model (c borrowed, must outlive L; NULL: none): its training hooks
// (method.h train_check, regularize, after_update) join every step. Error (c cannot train for
// L->total steps) names the option.
pb_status pb_loop_set_method(pb_loop *L, const pb_method_config *c, char *err, size_t errlen);
// Forward, loss and (when the loss is finite) zero grads + backward (+ the method's regulariser,
// added to the loss and its gradient). features (B, hidden) on the
// engine: head only (cached features); else the whole model on b. train: dropout on, seeded by
// seed. logits_out (B x num_labels host floats) or NULL receives the forward's logits. Returns the
// loss (the gradients are those of this loss; non-finite: no backward).
float pb_loop_forward_backward(pb_loop *L, const pb_batch *b, const float *features, int train, uint64_t seed,
                               float *logits_out);
// Clip, this step's LRs, AdamW on both groups, the method's after_update hook; advances L->step.
void pb_loop_update(pb_loop *L);
// Both; the update is skipped for a non-finite loss (returned as is).
float pb_loop_step(pb_loop *L, const pb_batch *b, const float *features, int train, uint64_t seed);

// ----------------------------------------------------------------------------
// Epochs over a task (cells and pretraining)

typedef void (*pb_epoch_cb)(void *user, const pb_epoch_metrics *m, int epochs);

typedef struct {
    pb_model *m;
    const pb_task *t;
    pb_recipe rc;
    uint64_t seed;
    int cached;              // head-only on cached features
    float *feat[3];          // cached features (n, hidden) of train/val/test (engine memory)
    const pb_method_config *method; // the applied method (training hooks), or NULL; set after pb_fit_init
    int *train_idx;          // the training examples (subset or all)
    int ntrain;
    pb_stager st;
    double train_time;       // seconds spent in training steps (and feature extraction)
    long long train_examples;
} pb_fit;

// Sets up F for model m on task t: the training subset (fixed, independent of the seed), staging
// buffers, and with cached != 0 the features of every example (one backbone forward each).
void pb_fit_init(pb_fit *F, pb_model *m, const pb_task *t, const pb_recipe *rc, uint64_t seed, int cached);
void pb_fit_free(pb_fit *F);
// rc.epochs passes over shuffled mini-batches (order from the seed), evaluating test (and val
// when eval_val) after every epoch; appends one pb_epoch_metrics per epoch to *eps (grown;
// caller frees). cb (may be NULL) after every epoch; log (may be NULL) gets a line per epoch.
// Returns PB_OK, or PB_ERR_NUMERIC with reason on a non-finite loss (that epoch has a NaN loss).
pb_status pb_fit_run(pb_fit *F, pb_epoch_metrics **eps, int *neps, int eval_val, pb_epoch_cb cb, void *user,
                     FILE *log, char *reason, size_t rlen);
// The task metric on split k (1 val, 2 test) in eval mode.
double pb_fit_evaluate(pb_fit *F, int k);

#endif
