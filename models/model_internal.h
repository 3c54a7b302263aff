// model_internal.h: the pb_model struct shared by model.c (params, load/save, dispatch), vit.c
// and roberta.c (architecture forward/backward). Not part of the public interface.
// defines: pb_param_spec, pb_layer, pb_layer_acts, struct pb_model, the vit_* / roberta_* entry
//          points, model_* helpers
#ifndef PB_MODEL_INTERNAL_H
#define PB_MODEL_INTERNAL_H

#include "model.h"

typedef enum { PB_INIT_NORMAL = 0, PB_INIT_ZERO = 1, PB_INIT_ONE = 2, PB_INIT_EMB_PAD = 3 } pb_init_kind;

// Dropout / adapter seed sites (same numbering in both encoders): one stream per place. Every
// site number lives here; the ranges cannot meet (layers <= 256, linears <= 6 per layer).
#define SITE_EMB 0
#define SITE_ATT(l) (1 + 3 * (uint64_t)(l))
#define SITE_H1(l) (2 + 3 * (uint64_t)(l))
#define SITE_H2(l) (3 + 3 * (uint64_t)(l))
#define SITE_LIN(i) (500000 + (uint64_t)(i))
#define SITE_HEAD1 900001 // classifier dropout before the RoBERTa head's dense (ViT: its only one)
#define SITE_HEAD2 900002 // RoBERTa head: dropout before out_proj

// One parameter of the architecture, known from the config alone (no memory): used both to build a
// model and to count parameters without allocating them (`peftbench info vit-l16`).

typedef struct {
    char name[PB_NAME_MAX]; // HF key without the task prefix
    int ndim;
    int64_t shape[PB_MAX_DIMS];
    pb_param_group group;
    int no_decay;
    pb_init_kind init;
} pb_param_spec;

// Appends the specs of cfg's architecture into a growable array (*specs, *n, *cap); the caller
// frees *specs with free().
void vit_specs(const pb_model_config *cfg, pb_param_spec **specs, int *n, int *cap);
void roberta_specs(const pb_model_config *cfg, pb_param_spec **specs, int *n, int *cap);
void model_spec_add(pb_param_spec **specs, int *n, int *cap, pb_param_group g, int no_decay,
                    pb_init_kind init, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));
// A linear layer's specs: "<module>.weight" (out,in), normal init, decayed; with bias,
// "<module>.bias" (out), zero, no decay.
void model_spec_linear(pb_param_spec **specs, int *n, int *cap, pb_param_group g, int64_t out,
                       int64_t in, int bias, const char *module);
// A layernorm's specs: "<module>.weight" ones and "<module>.bias" zeros, (C), no decay.
void model_spec_layernorm(pb_param_spec **specs, int *n, int *cap, int64_t C, const char *module);

// Weights of one encoder layer. ln1/ln2: ViT layernorm_before/after, RoBERTa
// attention.output.LayerNorm / output.LayerNorm. Linears point into m->lins.
typedef struct {
    pb_param *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    pb_norm *ln1, *ln2;     // the same two norms (point into m->norms)
    pb_linear *q, *k, *v, *o, *fc1, *fc2;
} pb_layer;

// Saved activations of one layer (N = B*T rows). Buffers that only exist with dropout are NULL
// otherwise; the *_d pointers then alias their inputs.
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd; // (N,C), (N), (N)
    float *q, *k, *v;                 // (N,C)
    float *att, *attd;                // (B,NH,T,T); attd only with attention dropout
    float *atty;                      // (N,C) attention output before attention.output.dense
    float *attproj, *mask1, *attproj_d; // (N,C)
    float *res1;                      // (N,C) ViT: x + attn; RoBERTa: pre-LN1 sum
    float *ln2, *ln2_mean, *ln2_rstd; // (N,C), (N), (N)
    float *fch, *fch_gelu;            // (N,I)
    float *fcproj, *mask2, *fcproj_d; // (N,C)
    float *res2;                      // (N,C) ViT: layer output; RoBERTa: pre-LN2 sum
    float *out;                       // (N,C) layer output (ViT: = res2, RoBERTa: = ln2)
} pb_layer_acts;

struct pb_model {
    pb_engine *e;
    pb_model_config cfg;
    // parameters: storage + pointer table, in spec order
    int nparams;
    pb_param *params;
    pb_param **pptrs;
    pb_param **trainable; // rebuilt by pb_model_trainable
    int ntrainable_cap;
    // encoder linears (6 per layer) and the other linears (not adaptable)
    int nlins;
    pb_linear *lins;
    pb_layer *layers;
    int nnorms;
    pb_norm *norms;              // 2L + 1 LayerNorms in forward order (pb_model_norms)
    pb_norm *norm_emb, *norm_f;  // RoBERTa embeddings.LayerNorm / ViT final layernorm (into norms)
    struct pb_token_adapter *tok; // ViT token site (VPT), or NULL
    pb_linear patch;             // ViT patch projection (in = Cin*P*P)
    pb_linear head1, head2;      // ViT: head1 = classifier; RoBERTa: dense, out_proj
    // named params used by the architecture code
    pb_param *cls, *pos, *word, *type, *emb_ln_w, *emb_ln_b, *lnf_w, *lnf_b;

    // activations, sized for (capB, capT)
    int capB, capT;
    int B, T;           // of the last forward
    int train;          // of the last forward
    uint64_t seed;      // of the last forward
    const int32_t *keymask; // of the last forward (engine memory, the batch's)
    const int32_t *ids;     // RoBERTa ids of the last forward (engine memory, the batch's)
    float *xin;             // encoder input of the last forward (after embedding dropout)
    float label_smoothing;  // of the last loss
    pb_layer_acts *acts;
    // ViT embeddings
    float *cols, *patch_out, *tokens, *emb_mask, *x0;
    float *xtok;            // (B,T,C) encoder input with the token site's tokens (T = T0 + p), or NULL
    // RoBERTa embeddings
    int32_t *pos_ids, *tt_ids;
    float *emb_sum, *emb_ln, *emb_mean, *emb_rstd;
    // features
    float *cls_tok, *lnf_mean, *lnf_rstd, *feat; // (B,C)
    // head, sized for hcapB rows (separate: head-only training feeds cached features)
    int hcapB, hB;
    float *hfeat, *hd1, *hmask1, *hdense, *htanh, *hd2, *hmask2, *logits, *probs; // (B,C)/(B,V)
    float loss;
    int head_loss_done;

    // activation gradients, sized for (gcapB, gcapT)
    int gcapB, gcapT;
    float *dres, *dA, *dB, *dq, *dk, *dv, *datty; // (N,C)
    float *dfch, *dfchg;                           // (N,I)
    float *demb;                                   // (N,C) / (B*NP,C)
    // head gradients (hcapB rows)
    float *dfeat, *dh1, *dh2, *dlogits;            // (B,C), (B,C), (B,C), (B,V)
};

// Per-site dropout / adapter seeds derived from the step seed.
uint64_t model_site_seed(uint64_t seed, uint64_t site);
// A linear with trainable weights or an adapter (needs its backward).
int model_lin_active(const pb_linear *l);
int model_ptr(const pb_param *p); // p && p->trainable
// Frees every activation / activation-gradient buffer.
void model_free_acts(pb_model *m);
// Allocates the per-layer activation set for N rows, attention (B,NH,T,T).
void model_alloc_layer_acts(pb_model *m, pb_layer_acts *a, size_t N, size_t BHTT, int post_ln);
// Allocates activation grads for (B,T) if they grew.
void model_ensure_grads(pb_model *m, int B, int T);
// True when dropout at rate p is applied in the current forward (train mode and p > 0).
int model_drop_on(const pb_model *m, float p);
// Encoder-layer input of layer l (the embedding output for l == 0).
float *model_layer_input(pb_model *m, int l);
// Dropout helper: when active writes out = dropout(inp) into out with mask; else returns inp.
float *model_dropout(pb_model *m, float *out, float *mask, float *inp, float p, uint64_t site,
                     size_t n);

// Sets l to the linear (w (out, in...), b) named `name` (no adapter, no scratch).
// Sub-blocks shared by the pre-LN ViT and post-LN RoBERTa layers (model.c).
// Attention: res1 (N,C) = xres + drop(o(attn(q(in), k(in), v(in)))), in/xres (N,C).
void model_attn_forward(pb_model *m, int l, const float *in, const float *xres,
                        const int32_t *keymask, int B, int T);
// From m->dres = d res1 (the residual share d xres is the caller's). din (N,C) accumulates d in,
// or NULL when nothing below needs it; q/k/v/o weights and adapters get their grads either way.
void model_attn_backward(pb_model *m, int l, const float *in, float *din);
// MLP: res2 (N,C) = xres + drop(fc2(gelu(fc1(in)))).
void model_mlp_forward(pb_model *m, int l, const float *in, const float *xres, int B, int T);
// From dres2 = d res2; scratch (N,C) is free for the dropout backward; din accumulates d in or is
// NULL (then only fc2/fc1 weight grads are formed where trainable).
void model_mlp_backward(pb_model *m, int l, const float *dres2, float *scratch, const float *in,
                        float *din);

void model_linear_set(pb_linear *l, const char *name, pb_param *w, pb_param *b);
// Sets n to the LayerNorm `module` ("<module>.weight" / ".bias" of m) with eps.
void model_norm_set(pb_model *m, pb_norm *n, const char *module, float eps);
// The param named exactly (no prefix); aborts when absent / returns NULL when absent.
pb_param *model_param(pb_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
pb_param *model_param_opt(pb_model *m, const char *name);
// A model whose weights are left zero (pb_alloc), for counting with a method applied.
pb_model *model_create_uninit(pb_engine *e, const pb_model_config *cfg);
// Parameter counts from the config alone (no allocation).
pb_param_counts model_count_config(const pb_model_config *cfg);
// Frees the encoder activations (keeps head buffers and activation grads).
void model_free_enc_acts(pb_model *m);

// Architecture entry points (vit.c / roberta.c).
void vit_wire(pb_model *m);
void vit_ensure_acts(pb_model *m, int B);
void vit_features(pb_model *m, const pb_batch *b, int train, uint64_t seed);
void vit_backward_features(pb_model *m, const float *dfeat);
int vit_lowest_trainable(pb_model *m); // -1 embeddings, 0..L-1 layer, L: none in the backbone

void roberta_wire(pb_model *m);
void roberta_ensure_acts(pb_model *m, int B, int T);
void roberta_features(pb_model *m, const pb_batch *b, int train, uint64_t seed);
void roberta_backward_features(pb_model *m, const float *dfeat);
int roberta_lowest_trainable(pb_model *m);
// Backward from the gradient of M selected token rows of the last hidden state: dtok (M,C) for
// rows (M, engine i32, distinct indices into the B*T rows of the last forward). The masked-LM
// head (roberta_mlm.c) uses it; layers below the lowest trainable parameter are skipped.
void roberta_backward_tokens(pb_model *m, const float *dtok, const int32_t *rows, int M);
// The last encoder layer's output (N,C) of the last forward: RoBERTa's last_hidden_state.
float *roberta_last_hidden(pb_model *m);

// The encoder layer backward shared by both archs lives in each arch file; both need to know
// whether anything at or below layer l-1 (or the embeddings) is trainable.

#endif
