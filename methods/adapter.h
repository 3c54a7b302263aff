// adapter.h: the one interface every PEFT method implements on a frozen linear layer, and the
// entry point that applies a method to a model.
// defines: pb_adapter, pb_adapter_vtbl, pb_method_config, pb_method_apply, pb_method_names
#ifndef PB_ADAPTER_H
#define PB_ADAPTER_H

#include "../models/model.h"

typedef struct pb_adapter pb_adapter;

// Call order per step: base linear forward, then vt->forward (which may add a parallel branch to
// y, or transform y in place); in backward, vt->backward runs BEFORE the base linear's backward:
// a parallel adapter accumulates its own grads and its dx contribution and leaves dy alone; an
// adapter with rewrites_dy = 1 replaces dy (a private copy the layer made) by the gradient wrt
// the base output. Adapters save whatever they need for backward in their own buffers.
typedef struct {
    const char *name;
    int rewrites_dy;
    // y (N,out) in/out; x (N,in). seed: per-step seed for adapter dropout.
    void (*forward)(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train,
                    uint64_t seed);
    // dx (N,in) += ... or NULL; dy (N,out) read (or rewritten when rewrites_dy); x (N,in).
    void (*backward)(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N);
    // Folds the adapter into the base layer: after merge the plain linear (W, b) computes what
    // base + adapter computed. W is (out,in), b (out) or NULL; both engine memory.
    void (*merge)(pb_adapter *a, pb_engine *e, float *W, float *b);
    // Frees everything the adapter owns (params, buffers, state) and the adapter itself.
    void (*free)(pb_adapter *a, pb_engine *e);
} pb_adapter_vtbl;

struct pb_adapter {
    const pb_adapter_vtbl *vt;
    pb_linear *lin;    // the layer it is attached to (not owned)
    pb_param *params;  // trainable tensors (array of nparams, owned), group PB_GROUP_ADAPTER
    int nparams;
    void *state;       // method-private
};

#define PB_MAX_TARGETS 8

typedef struct {
    char method[32];      // full, head, lora, pissa, svfit, aoft (and later adapter, dylora, ...)
    int rank;             // r (lora/pissa/svfit), d (aoft bottleneck)
    float alpha;          // lora_alpha; <=0: alpha = rank
    float dropout;        // dropout on the adapter input (lora)
    int rslora;           // scale alpha/sqrt(r)
    char init[32];        // lora: "kaiming" (PEFT default) | "gaussian"; pissa: "svd" | "niter_N"
    int ntargets;
    char targets[PB_MAX_TARGETS][32]; // module names: query key value attention.output intermediate output
    char variant[32];     // aoft: "lora" (default) | "adapter"; gate: "lambda" (default) | "scalar"
    char gate[16];
    int train_head;       // 1 (default): classifier trains with every method
    uint64_t seed;
} pb_method_config;

// Defaults: rank 8, alpha = rank, dropout 0, targets query+value, init kaiming, train_head 1.
void pb_method_config_default(pb_method_config *c, const char *method);
// Applies a method to a freshly loaded model: sets trainable flags and attaches adapters.
// Errors (unknown method or target, rank above min(out,in)) name the field.
pb_status pb_method_apply(pb_model *m, const pb_method_config *c, char *err, size_t errlen);
// Merges every adapter into its layer and removes the adapters (model becomes plain HF layout).
void pb_method_merge(pb_model *m);
// NULL-terminated list of method names.
const char *const *pb_method_names(void);

// ----------------------------------------------------------------------------
// Method constructors (used by pb_method_apply; public so tests can attach adapters to a
// hand-built pb_linear). Each attaches one adapter to l (which must have none), sets
// l->adapter, and may overwrite l->w (PiSSA: W_res, SVFit: W_e). index is the linear's position
// in the model (it seeds the init and the dropout stream). Errors name the config field.
pb_status pb_lora_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, int index,
                         char *err, size_t errlen);
pb_status pb_pissa_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, int index,
                          char *err, size_t errlen);
pb_status pb_svfit_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, int index,
                          char *err, size_t errlen);
pb_status pb_aoft_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, int index,
                         char *err, size_t errlen);
// Number of times AOFT clamped 1+q0 (summed over the model's adapters), for the result record.
int64_t pb_method_aoft_clamps(pb_model *m);

// PEFT interop (methods/peft_io.c). Export writes dir/adapter_config.json and
// dir/adapter_model.safetensors in HF PEFT's layout (LoRA; PiSSA as the rank-2r LoRA conversion
// relative to the original weights) plus the head as modules_to_save. Import attaches LoRA
// adapters read from such a directory to a model that has no adapters yet (and loads the head).
pb_status pb_method_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err,
                                size_t errlen);
pb_status pb_method_import_peft(pb_model *m, const char *dir, pb_method_config *c_out, char *err,
                                size_t errlen);

#endif
