// model.h: ViT and RoBERTa encoders for classification / regression, written once against the
// engine ops. HF layouts: checkpoints load unmodified from a save_pretrained directory.
// defines: pb_arch, pb_model_config, pb_linear, pb_batch, pb_model and its functions.
#ifndef PB_MODEL_H
#define PB_MODEL_H

#include "../engine/param.h"

typedef enum { PB_ARCH_VIT = 0, PB_ARCH_ROBERTA = 1 } pb_arch;

typedef struct {
    pb_arch arch;
    char name[64];      // built-in name or directory basename
    int hidden;         // C
    int layers;         // L
    int heads;          // NH
    int intermediate;   // MLP width
    float ln_eps;       // layer_norm_eps from config.json
    float hidden_dropout, attn_dropout, classifier_dropout; // classifier_dropout <0: use hidden
    // ViT
    int image_size, patch_size, channels, qkv_bias;
    // RoBERTa
    int vocab_size, max_positions, type_vocab, pad_id;
    // both
    int num_labels;          // 1 = regression (MSE)
    float initializer_range; // std for random init (0.02)
} pb_model_config;

// Fills cfg for a built-in name: "vit-b16", "vit-l16", "roberta-base", "roberta-large",
// "vit-tiny" (28x28x1, patch 4, dim 192, 6 layers, 3 heads, mlp 768), "vit-small" (alias of
// vit-tiny), "roberta-tiny". num_labels defaults to 10 (ViT) / 2 (RoBERTa).
// Returns PB_ERR_ARG for an unknown name (err lists the known ones).
pb_status pb_model_config_builtin(const char *name, pb_model_config *cfg, char *err, size_t errlen);
// Reads an HF config.json (ViTConfig / RobertaConfig); unknown fields are ignored, wrong types
// and missing architecture are errors naming the file and field.
pb_status pb_model_config_read(const char *path, pb_model_config *cfg, char *err, size_t errlen);
// The same from memory (buf holds n bytes; path names it in messages).
pb_status pb_model_config_parse(const char *buf, size_t n, const char *path, pb_model_config *cfg, char *err,
                                size_t errlen);
pb_status pb_model_config_write(const char *path, const pb_model_config *cfg, char *err,
                                size_t errlen);
// The same with another "architectures" entry (NULL: the classification class), e.g.
// "RobertaForMaskedLM" for a masked-LM checkpoint (models/mlm.h).
pb_status pb_model_config_write_as(const char *path, const pb_model_config *cfg, const char *architecture,
                                   char *err, size_t errlen);

// The config of a suite's resolved model spec (harness/suite.c): a built-in name and/or an inline
// "config" object (keys hidden, layers, heads, intermediate, image_size, patch_size, channels,
// vocab_size, max_positions, type_vocab, pad_id, ln_eps, dropouts, initializer_range, qkv_bias);
// without a built-in it starts from the tiny model of its arch. Checked by pb_model_config_check.
struct cJSON;
pb_status pb_model_config_from_spec(const struct cJSON *model, pb_model_config *cfg, char *err, size_t errlen);
// The config of any resolved model spec: "source": "dir" reads <dir>/config.json, every other
// source goes through pb_model_config_from_spec.
pb_status pb_model_config_resolve(const struct cJSON *model, pb_model_config *cfg, char *err, size_t errlen);

// Limits every model config is held to (config.json, suites, built-ins), far above any model in
// the papers (ViT-H/14 at 518 px has 1,370 tokens; XLM-R's vocabulary is 250k): they keep every
// size product inside 64-bit and a bad config from allocating terabytes.
#define PB_CFG_MAX_HIDDEN 16384
#define PB_CFG_MAX_LAYERS 256
#define PB_CFG_MAX_INTERMEDIATE 65536
#define PB_CFG_MAX_TOKENS 65536   // ViT (image/patch)^2 + 1, RoBERTa max_position_embeddings
#define PB_CFG_MAX_IMAGE 4096
#define PB_CFG_MAX_CHANNELS 16
#define PB_CFG_MAX_VOCAB 1048576
#define PB_CFG_MAX_TYPE_VOCAB 1024
#define PB_CFG_MAX_LABELS 100000
// Checks cfg against the limits above and its internal consistency (heads divide hidden, patch
// divides image); `what` names the source in the message ("config.json path", "model 'x'").
pb_status pb_model_config_check(const pb_model_config *cfg, const char *what, char *err, size_t errlen);

// Memory one training step needs, in bytes: weights (all parameters), gradient + AdamW m and v
// for `trainable` parameters, and the saved activations of batch B x T tokens (per layer and
// token 13 C + 3 I floats, plus 2 NH T attention probabilities; logits). An estimate, within a
// few percent of the engine's buffers. pb_model_memory_check compares it with the memory the
// machine has available (MemAvailable) and fails with the breakdown when it does not fit.
double pb_model_memory_estimate(const pb_model_config *cfg, int B, int T, double trainable, double *weights,
                                double *optimizer, double *activations);
pb_status pb_model_memory_check(const pb_model_config *cfg, int B, int T, double trainable, char *err, size_t errlen);

struct pb_adapter;
struct pb_norm_adapter;
struct pb_token_adapter;

// A LayerNorm of the model: out = LN(x) * w + b (ViT layernorm_before/after and the final
// layernorm; RoBERTa embeddings.LayerNorm and the two per layer), with an optional method adapter
// on its affine (SSF's scale and shift after the norm: methods/adapter.h pb_norm_adapter).
typedef struct pb_norm {
    char name[PB_NAME_MAX]; // module path, e.g. "encoder.layer.3.layernorm_before"
    int C;
    float eps;
    pb_param *w, *b;        // (C) each
    struct pb_norm_adapter *adapter;
} pb_norm;

// out (N,C) = LN(x) with (w, b), or with the adapter's effective affine; mean, rstd (N) saved.
void pb_norm_layer_forward(pb_engine *e, pb_norm *n, float *out, float *mean, float *rstd, const float *x, int N);
// dx (N,C) += ... (or NULL); the norm's own w/b grads accumulate when trainable, the adapter's
// through the gradient wrt the effective affine. dout (N,C), x, mean, rstd as saved.
void pb_norm_layer_backward(pb_engine *e, pb_norm *n, float *dx, const float *dout, const float *x,
                            const float *mean, const float *rstd, int N);
// 1 if the norm needs its backward for its own tensors (trainable w/b or an adapter).
int pb_norm_active(const pb_norm *n);

// A linear layer of the encoder: y = x W^T + b (+ an optional PEFT adapter).
typedef struct pb_linear {
    char name[PB_NAME_MAX]; // module path, e.g. "encoder.layer.3.attention.attention.query"
    int in, out;
    pb_param *w, *b;        // w (out,in), b (out) or NULL
    struct pb_adapter *adapter;
    float *dout_scratch;    // (maxN,out) engine buffer, for adapters that rewrite dout
    int scratch_n;
} pb_linear;

// y (N,out) = x W^T + b, then the adapter (if any). seed varies per step (dropout).
void pb_linear_layer_forward(pb_engine *e, pb_linear *l, float *y, const float *x, int N,
                             int train, uint64_t seed);
// dx (N,in) += ..., or NULL; weight grads accumulate for trainable w/b only; then the adapter.
void pb_linear_layer_backward(pb_engine *e, pb_linear *l, float *dx, const float *dy,
                              const float *x, int N);

// A batch in engine memory. ViT uses pixels; RoBERTa uses ids + mask (T = sequence length).
typedef struct {
    int B, T;
    const float *pixels;    // (B, channels, image_size, image_size)
    const int32_t *ids;     // (B,T)
    const int32_t *mask;    // (B,T) 1 = token, 0 = padding
    const int32_t *labels;  // (B) classification
    const float *targets;   // (B) regression (num_labels == 1)
} pb_batch;

typedef struct pb_model pb_model;

// Random init (HF-like: normal/trunc-normal std initializer_range, zero biases, unit layernorms).
// Caller frees with pb_model_free.
pb_model *pb_model_create(pb_engine *e, const pb_model_config *cfg, uint64_t seed);
// Loads an HF save_pretrained directory (config.json + model.safetensors). ViT keys with or
// without "vit.", RoBERTa with or without "roberta."; pooler / lm_head ignored. A head absent from
// the file (or with another num_labels when num_labels > 0 is given) is initialised from seed.
pb_status pb_model_load(pb_engine *e, const char *dir, int num_labels, uint64_t seed,
                        pb_model **out, char *err, size_t errlen);
// Writes config.json + model.safetensors in the HF *ForImageClassification /
// *ForSequenceClassification layout (loadable by transformers' from_pretrained).
pb_status pb_model_save(pb_model *m, const char *dir, char *err, size_t errlen);
void pb_model_free(pb_model *m);

const pb_model_config *pb_model_cfg(const pb_model *m);
pb_engine *pb_model_engine(const pb_model *m);
// All parameters (backbone, head, pooler-less); the array is owned by the model.
pb_param **pb_model_params(pb_model *m, int *n);
// Every trainable tensor: trainable model params plus the params of adapters on the linears and
// the norms.
// Rebuilt on each call (after a method is applied); the array is owned by the model.
pb_param **pb_model_trainable(pb_model *m, int *n);
// The encoder's linear layers in order (per layer: query, key, value, attention.output,
// intermediate, output); owned by the model.
pb_linear *pb_model_linears(pb_model *m, int *n);
// The model's LayerNorms in forward order (RoBERTa: the embeddings' first; per layer the two;
// ViT: the final one last); owned by the model. 2 * layers + 1 for both architectures.
pb_norm *pb_model_norms(pb_model *m, int *n);
int pb_model_config_norms(const pb_model_config *cfg);
// The token site (ViT; VPT's prompts): a method adapter that inserts tokens after CLS and may
// replace them before every layer (methods/adapter.h pb_token_adapter). The model owns a from
// then on (freed with it). Error (not a ViT, or one attached already) leaves the model unchanged.
pb_status pb_model_attach_tokens(pb_model *m, struct pb_token_adapter *a, char *err, size_t errlen);
struct pb_token_adapter *pb_model_token_adapter(pb_model *m);
// Finds a parameter by HF name (with or without the task prefix), or NULL.
pb_param *pb_model_find(pb_model *m, const char *name);
// The HF key prefix of the task model ("vit." or "roberta.") used when saving.
const char *pb_model_prefix(const pb_model *m);

// Forward through the whole model; returns logits (B, num_labels) in engine memory, valid until
// the next forward. Activations are (re)allocated when B or T grow.
const float *pb_model_forward(pb_model *m, const pb_batch *batch, int train, uint64_t seed);
// Loss of the last forward (cross-entropy with label smoothing, or MSE); host float.
float pb_model_loss(pb_model *m, const pb_batch *batch, float label_smoothing);
// Backward from the last loss; grads accumulate into trainable params and adapters. Layers below
// the lowest trainable parameter are not back-propagated.
void pb_model_backward(pb_model *m, const pb_batch *batch);

// Split forward for head-only training and feature caching.
// features (B, hidden): ViT: final-layernormed CLS; RoBERTa: last hidden state of <s>.
const float *pb_model_features(pb_model *m, const pb_batch *batch, int train, uint64_t seed);
// Head on given features (B, hidden) -> logits (B, num_labels).
const float *pb_model_head_forward(pb_model *m, const float *features, int B, int train,
                                   uint64_t seed);
// Loss + backward through the head only (from pb_model_head_forward's logits).
float pb_model_head_loss(pb_model *m, const pb_batch *batch, float label_smoothing);
void pb_model_head_backward(pb_model *m, const pb_batch *batch);

// Parameter counts. backbone excludes pooler and head; trainable counts params with trainable
// set plus adapter params.
typedef struct {
    size_t total, backbone, head, trainable, trainable_backbone, adapter;
} pb_param_counts;
pb_param_counts pb_model_count(pb_model *m);

// Kinds of parameters by their HF name (both encoders): PB_PKIND_BIAS for every ".bias",
// PB_PKIND_NORM for the weight and bias of every LayerNorm ("LayerNorm" / "layernorm" modules).
#define PB_PKIND_BIAS 1u
#define PB_PKIND_NORM 2u
unsigned pb_param_kind(const char *name);
// Elements of the backbone parameters of a config whose kind shares a bit with kinds (no memory).
size_t pb_model_config_count_kind(const pb_model_config *cfg, unsigned kinds);

// Forward FLOPs per example (2 per multiply-add, biases ignored), for benchmarks.
double pb_model_flops_forward(const pb_model_config *cfg, int T);

#endif
