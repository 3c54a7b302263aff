// adapter.h: the one interface every PEFT method implements on a frozen linear layer, and the
// entry point that applies a method to a model.
// defines: pb_adapter, pb_adapter_vtbl, pb_norm_adapter, pb_norm_adapter_vtbl, pb_token_adapter,
//          pb_token_adapter_vtbl, pb_method_apply, pb_method_mergeable, pb_method_merge, pb_method_events,
//          pb_method_export_peft, pb_method_import_peft
#ifndef PB_ADAPTER_H
#define PB_ADAPTER_H

#include "../models/model.h"
#include "method.h"

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
    // base + adapter computed. W is (out,in), b (out) or NULL; both engine memory. NULL: the
    // adapter cannot be merged (nonlinear bottlenecks).
    void (*merge)(pb_adapter *a, pb_engine *e, float *W, float *b);
    // Frees everything the adapter owns (params, buffers, state) and the adapter itself.
    void (*free)(pb_adapter *a, pb_engine *e);
    // Events counted on the engine (desc->events names them), or NULL. Synchronises on CUDA.
    int64_t (*events)(pb_adapter *a, pb_engine *e);
} pb_adapter_vtbl;

struct pb_adapter {
    const pb_adapter_vtbl *vt;
    pb_linear *lin;    // the layer it is attached to (not owned)
    pb_param *params;  // trainable tensors (array of nparams, owned), group PB_GROUP_ADAPTER
    int nparams;
    pb_param *frozen;  // frozen tensors the adapter owns (VeRA's projections), or NULL; `trace`
    int nfrozen;       // dumps them as "frozen.<key>" so references can load the same values
    void *state;       // method-private
};

// A method's adapter on a LayerNorm's affine (the norm site; SSF): the norm runs with the
// adapter's effective (w, b), and the gradient wrt them comes back to the adapter.
typedef struct pb_norm_adapter pb_norm_adapter;
typedef struct {
    const char *name;
    // The effective affine of this forward: *w, *b (C) become engine buffers the adapter owns
    // (valid until its next call); on entry they are the norm's own w, b.
    void (*affine)(pb_norm_adapter *a, pb_engine *e, const float **w, const float **b);
    // dw, db (C): the gradient wrt the effective affine. Accumulates the adapter's grads, and the
    // norm's own w/b grads when those train.
    void (*backward)(pb_norm_adapter *a, pb_engine *e, const float *dw, const float *db);
    // Folds the adapter into the norm: w, b (C, engine memory) become the effective affine.
    void (*merge)(pb_norm_adapter *a, pb_engine *e, float *w, float *b);
    // Frees everything the adapter owns and the adapter itself.
    void (*free)(pb_norm_adapter *a, pb_engine *e);
} pb_norm_adapter_vtbl;

struct pb_norm_adapter {
    const pb_norm_adapter_vtbl *vt;
    pb_norm *norm;     // the norm it is attached to (not owned)
    pb_param *params;  // trainable tensors (nparams, owned), group PB_GROUP_ADAPTER
    int nparams;
    float *dw, *db;    // (C) engine scratch the norm's backward fills (owned)
    void *state;       // method-private
};

// A method's adapter on a ViT's token sequence (the token site; VPT): ntokens tokens inserted
// after CLS, [CLS, P_0, patches], and (deep) replaced by P_l before every layer l >= 1.
// T0 = 1 + patches (the embeddings' rows), T = T0 + ntokens.
typedef struct pb_token_adapter pb_token_adapter;
typedef struct {
    const char *name;
    // out (B,T,C) = x (B,T0,C) with the tokens inserted after row 0.
    void (*embed_forward)(pb_token_adapter *a, pb_engine *e, float *out, const float *x, int B, int T0, int C);
    // From dout (B,T,C): accumulates the inserted tokens' gradient; dx (B,T0,C) = the other rows
    // (written), or NULL when nothing below trains.
    void (*embed_backward)(pb_token_adapter *a, pb_engine *e, float *dx, const float *dout, int B, int T0, int C);
    // Before layer l >= 1: may overwrite the token rows of x (B,T,C) in place.
    void (*layer_forward)(pb_token_adapter *a, pb_engine *e, int l, float *x, int B, int T, int C);
    // After layer l's backward, dx (B,T,C) = d(its input): where layer_forward replaced rows, takes
    // their gradient and zeroes them (they did not come from layer l - 1).
    void (*layer_backward)(pb_token_adapter *a, pb_engine *e, int l, float *dx, int B, int T, int C);
    // Frees everything the adapter owns and the adapter itself.
    void (*free)(pb_token_adapter *a, pb_engine *e);
} pb_token_adapter_vtbl;

struct pb_token_adapter {
    const pb_token_adapter_vtbl *vt;
    int ntokens;
    pb_param *params;  // trainable tensors (nparams, owned), group PB_GROUP_ADAPTER
    int nparams;
    void *state;       // method-private
};

// Applies a method to a freshly loaded model: sets trainable flags (desc->unfreeze, train_head)
// and attaches adapters at the method's site. Errors (unknown target, a rank above the method's
// size rule) name the field and leave the model unchanged.
pb_status pb_method_apply(pb_model *m, const pb_method_config *c, char *err, size_t errlen);
// 1 if c attaches at the norm site (desc->norm_attach, and its "norms" option on where it has one).
int pb_method_norm_site(const pb_method_config *c);
// 1 if every adapter of m can be merged (vt->merge; bottleneck adapters are nonlinear: no).
int pb_method_mergeable(pb_model *m);
// Merges every adapter into its layer and removes the adapters (model becomes plain HF layout).
// The model must be pb_method_mergeable.
void pb_method_merge(pb_model *m);
// Sum of the adapters' event counters (desc->events, e.g. AOFT clamps of 1+q0), for the log.
int64_t pb_method_events(pb_model *m);

// PEFT interop (methods/peft_io.c). pb_method_export_peft dispatches to desc->export_peft
// (unsupported when NULL); the LoRA-family exporter writes dir/adapter_config.json and
// dir/adapter_model.safetensors in HF PEFT's layout (LoRA; PiSSA as the rank-2r LoRA conversion
// relative to the original weights) plus the head as modules_to_save. Import reads such a
// directory (or one peft wrote) into a model without adapters on the linears it names: it
// dispatches on the config's peft_type to the descriptor that imports it (desc->peft_type,
// desc->import_peft), which validates everything before changing the model, freezes the
// backbone, attaches the adapters, loads the head and fills *c_out (may be NULL).
pb_status pb_method_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err,
                                size_t errlen);
pb_status pb_method_import_peft(pb_model *m, const char *dir, pb_method_config *c_out, char *err,
                                size_t errlen);

#endif
