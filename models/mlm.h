// mlm.h: masked-LM pretraining for RoBERTa: HF RobertaForMaskedLM's head (RobertaLMHead:
// dense -> exact-erf GELU -> LayerNorm -> decoder tied to the word embeddings + lm_head.bias),
// the loss over masked positions only (labels -100 elsewhere, mean over masked tokens, as
// transformers), checkpoints in the HF RobertaForMaskedLM layout, and the masking of
// transformers' DataCollatorForLanguageModeling (seeded, deterministic).
// defines: pb_mlm_head (create/load/free/params/forward/logits/backward/save), PB_MLM_IGNORE,
//          pb_mlm_mask_config, pb_mlm_mask_config_default, pb_mlm_mask
#ifndef PB_MLM_H
#define PB_MLM_H

#include "model.h"

#define PB_MLM_IGNORE (-100) // transformers' ignore_index: a label that is not predicted

typedef struct pb_mlm_head pb_mlm_head;

// A new head on RoBERTa model m (which must outlive it): lm_head.dense normal(0,
// initializer_range) weight and zero bias, lm_head.layer_norm ones / zeros, lm_head.bias zeros
// (HF _init_weights), drawn from seed. Its five tensors are trainable. The decoder is m's word
// embedding table itself, so its gradient accumulates into that table's (when trainable).
// Caller frees with pb_mlm_head_free (before pb_model_free).
pb_mlm_head *pb_mlm_head_create(pb_model *m, uint64_t seed);
// The head of an HF RobertaForMaskedLM directory (<dir>/model.safetensors: lm_head.dense.*,
// lm_head.layer_norm.*, lm_head.bias; an "lm_head.decoder.weight" / ".bias" present in older
// files must equal the word embeddings / lm_head.bias, since the decoder is tied). m is the model
// pb_model_load made from the same directory. Errors name the file and tensor.
pb_status pb_mlm_head_load(pb_model *m, const char *dir, pb_mlm_head **out, char *err, size_t errlen);
void pb_mlm_head_free(pb_mlm_head *h);
// The head's own tensors (lm_head.dense.weight, .dense.bias, .layer_norm.weight, .layer_norm.bias,
// lm_head.bias; names are the HF keys), owned by the head.
pb_param **pb_mlm_head_params(pb_mlm_head *h, int *n);

// Forward through m and the head on the masked positions, and the loss: labels (B,T) host int32,
// the original token id where a prediction is asked, PB_MLM_IGNORE elsewhere (ids out of range
// abort: callers validate). Returns the mean cross-entropy over the masked tokens; with no masked
// token it returns 0 and the next backward does nothing (transformers would give NaN). Only the
// masked rows go through the head (the logits of the other rows are not needed for the loss).
// *nmasked (or NULL) gets their count. seed drives dropout as in pb_model_forward.
float pb_mlm_forward(pb_mlm_head *h, const pb_batch *b, const int32_t *labels, int train, uint64_t seed,
                     int *nmasked);
// Backward from the last pb_mlm_forward: grads accumulate into the trainable head tensors, the
// word embeddings (the tied decoder, plus the input lookup) and everything trainable below.
void pb_mlm_backward(pb_mlm_head *h);
// Eval forward of every token: logits (B*T, V) in engine memory, valid until the next call on h
// (what RobertaForMaskedLM(...).logits holds, flattened). Invalidates the last loss.
const float *pb_mlm_logits(pb_mlm_head *h, const pb_batch *b);

// Writes dir/config.json (architectures ["RobertaForMaskedLM"]) and dir/model.safetensors with
// "roberta." + every backbone tensor and the five lm_head tensors, no classification head and no
// lm_head.decoder.* (tied, as transformers 5 writes it): loads in transformers'
// RobertaForMaskedLM.from_pretrained with no missing or unexpected keys, and in pb_model_load
// (lm_head ignored) for fine-tuning.
pb_status pb_mlm_save(pb_mlm_head *h, const char *dir, char *err, size_t errlen);

// transformers DataCollatorForLanguageModeling(mlm_probability=0.15): every token not in
// `special` is chosen independently with probability `prob`; a chosen token becomes mask_id with
// probability mask_frac, a uniform random id in [0, vocab_size) with probability random_frac
// (transformers draws from len(tokenizer), specials included), and stays unchanged otherwise.
typedef struct {
    float prob, mask_frac, random_frac; // 0.15, 0.8, 0.1
    int32_t mask_id;
    int vocab_size;
    const int32_t *special; // ids never chosen (<s>, <pad>, </s>, <unk>, <mask>): nspecial entries
    int nspecial;
} pb_mlm_mask_config;

// The transformers defaults with the given mask id / vocabulary size and special ids (the array
// is referenced, not copied).
pb_mlm_mask_config pb_mlm_mask_config_default(int32_t mask_id, int vocab_size, const int32_t *special,
                                              int nspecial);
// Masks ids[0..n) in place (host) and writes labels[0..n): the original id where chosen, else
// PB_MLM_IGNORE. The draws come from one pb_rng seeded with `seed`, consumed in token order
// (per non-special token: chosen?, then for a chosen one: action, random id), so the same seed
// and ids give the same mask and labels on every machine.
// Returns the number of chosen tokens.
int pb_mlm_mask(const pb_mlm_mask_config *c, uint64_t seed, int32_t *ids, int32_t *labels, size_t n);

#endif
