// roberta.c: HF RobertaForSequenceClassification's encoder (modeling_roberta.py) on the engine
// ops: word + position (fairseq make_positions) + token_type(0) embeddings -> LayerNorm ->
// dropout, post-LN BERT blocks with a key padding mask; features = hidden state of <s>.
#include <string.h>
// defines: struct pb_model, pb_layer, pb_layer_acts, model_* helpers
#include "model_internal.h"


void roberta_specs(const pb_model_config *cfg, pb_param_spec **s, int *n, int *cap) {
    int64_t C = cfg->hidden, I = cfg->intermediate;
    const pb_param_group BB = PB_GROUP_BACKBONE;
    // HF: nn.Embedding(padding_idx=pad) rows start zeroed; token types have no padding row
    model_spec_add(s, n, cap, BB, 0, PB_INIT_EMB_PAD, 2, (int64_t[]){cfg->vocab_size, C},
                   "embeddings.word_embeddings.weight");
    model_spec_add(s, n, cap, BB, 0, PB_INIT_EMB_PAD, 2, (int64_t[]){cfg->max_positions, C},
                   "embeddings.position_embeddings.weight");
    model_spec_add(s, n, cap, BB, 0, PB_INIT_NORMAL, 2, (int64_t[]){cfg->type_vocab, C},
                   "embeddings.token_type_embeddings.weight");
    model_spec_add(s, n, cap, BB, 1, PB_INIT_ONE, 1, (int64_t[]){C}, "embeddings.LayerNorm.weight");
    model_spec_add(s, n, cap, BB, 1, PB_INIT_ZERO, 1, (int64_t[]){C}, "embeddings.LayerNorm.bias");
    static const char *qkv[3] = {"query", "key", "value"};
    char mod[PB_NAME_MAX];
    for (int l = 0; l < cfg->layers; l++) {
        for (int j = 0; j < 3; j++) {
            snprintf(mod, sizeof mod, "encoder.layer.%d.attention.self.%s", l, qkv[j]);
            model_spec_linear(s, n, cap, BB, C, C, 1, mod);
        }
        snprintf(mod, sizeof mod, "encoder.layer.%d.attention.output.dense", l);
        model_spec_linear(s, n, cap, BB, C, C, 1, mod);
        snprintf(mod, sizeof mod, "encoder.layer.%d.attention.output.LayerNorm", l);
        model_spec_layernorm(s, n, cap, C, mod);
        snprintf(mod, sizeof mod, "encoder.layer.%d.intermediate.dense", l);
        model_spec_linear(s, n, cap, BB, I, C, 1, mod);
        snprintf(mod, sizeof mod, "encoder.layer.%d.output.dense", l);
        model_spec_linear(s, n, cap, BB, C, I, 1, mod);
        snprintf(mod, sizeof mod, "encoder.layer.%d.output.LayerNorm", l);
        model_spec_layernorm(s, n, cap, C, mod);
    }
    model_spec_linear(s, n, cap, PB_GROUP_HEAD, C, C, 1, "classifier.dense");
    model_spec_linear(s, n, cap, PB_GROUP_HEAD, cfg->num_labels, C, 1, "classifier.out_proj");
}

static void wire_lin(pb_model *m, pb_linear *l, const char *module) {
    char wn[PB_NAME_MAX], bn[PB_NAME_MAX];
    snprintf(wn, sizeof(wn), "%.140s.weight", module);
    snprintf(bn, sizeof(bn), "%.140s.bias", module);
    model_linear_set(l, module, model_param(m, "%s", wn), model_param(m, "%s", bn));
}

void roberta_wire(pb_model *m) {
    int L = m->cfg.layers;
    m->word = model_param(m, "embeddings.word_embeddings.weight");
    m->pos = model_param(m, "embeddings.position_embeddings.weight");
    m->type = model_param(m, "embeddings.token_type_embeddings.weight");
    m->emb_ln_w = model_param(m, "embeddings.LayerNorm.weight");
    m->emb_ln_b = model_param(m, "embeddings.LayerNorm.bias");
    wire_lin(m, &m->head1, "classifier.dense");
    wire_lin(m, &m->head2, "classifier.out_proj");
    m->nlins = 6 * L;
    m->lins = pb_xcalloc((size_t)m->nlins, sizeof(pb_linear));
    m->layers = pb_xcalloc((size_t)L, sizeof(pb_layer));
    m->nnorms = 2 * L + 1; // the embeddings' first, then per layer attention.output / output
    m->norms = pb_xcalloc((size_t)m->nnorms, sizeof(pb_norm));
    m->norm_emb = &m->norms[0];
    model_norm_set(m, m->norm_emb, "embeddings.LayerNorm", m->cfg.ln_eps);
    char mod[PB_NAME_MAX];
    static const char *qkv[3] = {"query", "key", "value"};
    for (int l = 0; l < L; l++) {
        pb_linear *ls = &m->lins[6 * l];
        for (int j = 0; j < 3; j++) {
            snprintf(mod, sizeof(mod), "encoder.layer.%d.attention.self.%s", l, qkv[j]);
            wire_lin(m, &ls[j], mod);
        }
        snprintf(mod, sizeof(mod), "encoder.layer.%d.attention.output.dense", l);
        wire_lin(m, &ls[3], mod);
        snprintf(mod, sizeof(mod), "encoder.layer.%d.intermediate.dense", l);
        wire_lin(m, &ls[4], mod);
        snprintf(mod, sizeof(mod), "encoder.layer.%d.output.dense", l);
        wire_lin(m, &ls[5], mod);
        pb_layer *w = &m->layers[l];
        w->q = &ls[0], w->k = &ls[1], w->v = &ls[2], w->o = &ls[3], w->fc1 = &ls[4], w->fc2 = &ls[5];
        w->ln1_w = model_param(m, "encoder.layer.%d.attention.output.LayerNorm.weight", l);
        w->ln1_b = model_param(m, "encoder.layer.%d.attention.output.LayerNorm.bias", l);
        w->ln2_w = model_param(m, "encoder.layer.%d.output.LayerNorm.weight", l);
        w->ln2_b = model_param(m, "encoder.layer.%d.output.LayerNorm.bias", l);
        w->ln1 = &m->norms[1 + 2 * l];
        w->ln2 = &m->norms[2 + 2 * l];
        snprintf(mod, sizeof(mod), "encoder.layer.%d.attention.output.LayerNorm", l);
        model_norm_set(m, w->ln1, mod, m->cfg.ln_eps);
        snprintf(mod, sizeof(mod), "encoder.layer.%d.output.LayerNorm", l);
        model_norm_set(m, w->ln2, mod, m->cfg.ln_eps);
    }
}

void roberta_ensure_acts(pb_model *m, int B, int T) {
    const pb_model_config *c = &m->cfg;
    if (m->acts && B <= m->capB && T <= m->capT) return;
    int nB = PB_MAX(B, m->capB), nT = PB_MAX(T, m->capT);
    model_free_enc_acts(m);
    pb_engine *e = m->e;
    size_t N = (size_t)nB * (size_t)nT, C = (size_t)c->hidden;
    m->pos_ids = pb_alloc_i32(e, N);
    m->tt_ids = pb_alloc_i32(e, N); // token_type_ids: all 0
    m->tokens = pb_alloc(e, N * C); // scratch for the summed lookups
    m->emb_sum = pb_alloc(e, N * C);
    m->emb_ln = pb_alloc(e, N * C);
    m->emb_mean = pb_alloc(e, N);
    m->emb_rstd = pb_alloc(e, N);
    if (c->hidden_dropout > 0) {
        m->emb_mask = pb_alloc(e, N * C);
        m->x0 = pb_alloc(e, N * C);
    }
    m->acts = pb_xcalloc((size_t)c->layers, sizeof(pb_layer_acts));
    size_t BHTT = (size_t)nB * (size_t)c->heads * (size_t)nT * (size_t)nT;
    for (int l = 0; l < c->layers; l++) model_alloc_layer_acts(m, &m->acts[l], N, BHTT, 1);
    m->feat = pb_alloc(e, (size_t)nB * C);
    m->capB = nB;
    m->capT = nT;
}

// One post-LN block: h1 = LN1(x + drop(o(attn(x)))), out = LN2(h1 + drop(fc2(gelu(fc1(h1))))).
static void roberta_layer_forward(pb_model *m, int l, const float *x, int B, int T) {
    pb_engine *e = m->e;
    pb_layer *w = &m->layers[l];
    pb_layer_acts *a = &m->acts[l];
    int N = B * T;
    model_attn_forward(m, l, x, x, m->keymask, B, T);
    pb_norm_layer_forward(e, w->ln1, a->ln1, a->ln1_mean, a->ln1_rstd, a->res1, N);
    model_mlp_forward(m, l, a->ln1, a->ln1, B, T);
    pb_norm_layer_forward(e, w->ln2, a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, N);
}

void roberta_features(pb_model *m, const pb_batch *b, int train, uint64_t seed) {
    (void)train;
    (void)seed; // recorded in m by pb_model_features
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    int B = b->B, T = b->T, C = c->hidden, N = B * T;
    PB_CHECK(b->ids && b->mask, "RoBERTa batch without ids / mask");
    // positions run up to T + pad: the readers reject longer sequences
    PB_CHECK(T + c->pad_id < c->max_positions, "sequence length %d too long for %d positions", T,
             c->max_positions);
    roberta_ensure_acts(m, B, T);
    m->B = B;
    m->T = T;
    m->keymask = b->mask;
    m->ids = b->ids;
    size_t NC = (size_t)N * (size_t)C;
    pb_roberta_positions(e, m->pos_ids, b->ids, B, T, c->pad_id);
    pb_embedding_forward(e, m->emb_sum, b->ids, m->word->data, N, C, c->vocab_size);
    pb_embedding_forward(e, m->tokens, m->pos_ids, m->pos->data, N, C, c->max_positions);
    pb_add(e, m->emb_sum, m->emb_sum, m->tokens, NC);
    pb_embedding_forward(e, m->tokens, m->tt_ids, m->type->data, N, C, c->type_vocab);
    pb_add(e, m->emb_sum, m->emb_sum, m->tokens, NC);
    pb_norm_layer_forward(e, m->norm_emb, m->emb_ln, m->emb_mean, m->emb_rstd, m->emb_sum, N);
    m->xin = model_dropout(m, m->x0, m->emb_mask, m->emb_ln, c->hidden_dropout, SITE_EMB, NC);
    const float *x = m->xin;
    for (int l = 0; l < c->layers; l++) {
        roberta_layer_forward(m, l, x, B, T);
        x = m->acts[l].out;
    }
    pb_take_token_forward(e, m->feat, x, B, T, C, 0);
}

int roberta_lowest_trainable(pb_model *m) {
    if (model_ptr(m->word) || model_ptr(m->pos) || model_ptr(m->type) ||
        pb_norm_active(m->norm_emb))
        return -1;
    for (int l = 0; l < m->cfg.layers; l++) {
        pb_layer *w = &m->layers[l];
        if (pb_norm_active(w->ln1) || pb_norm_active(w->ln2) || model_lin_active(w->q) ||
            model_lin_active(w->k) || model_lin_active(w->v) || model_lin_active(w->o) ||
            model_lin_active(w->fc1) || model_lin_active(w->fc2))
            return l;
    }
    return m->cfg.layers;
}

// m->dres holds d(layer output) on entry and d(layer input) on exit (when need_dx).
static void roberta_layer_backward(pb_model *m, int l, int need_dx) {
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    pb_layer *w = &m->layers[l];
    pb_layer_acts *a = &m->acts[l];
    int C = c->hidden, N = m->B * m->T;
    size_t NC = (size_t)N * (size_t)C;
    const float *x = model_layer_input(m, l);
    int tr_ln1 = pb_norm_active(w->ln1);
    int qkv_act = model_lin_active(w->q) || model_lin_active(w->k) || model_lin_active(w->v);
    int attn_any = need_dx || tr_ln1 || qkv_act || model_lin_active(w->o);
    int below_ln2 = attn_any || model_lin_active(w->fc1) || model_lin_active(w->fc2);

    // out = LN2(res2): dA = d res2
    if (below_ln2) pb_zero(e, m->dA, NC);
    pb_norm_layer_backward(e, w->ln2, below_ln2 ? m->dA : NULL, m->dres, a->res2, a->ln2_mean, a->ln2_rstd, N);
    if (!below_ln2) return;
    // res2 = h1 + mlp(h1): dB = d h1 (residual part first)
    if (attn_any) pb_copy(e, m->dB, m->dA, NC);
    model_mlp_backward(m, l, m->dA, m->dq /* free until the attention backward */, a->ln1,
                       attn_any ? m->dB : NULL);
    if (!attn_any) return;
    // h1 = LN1(res1): dres = d res1
    int need_res1 = need_dx || qkv_act || model_lin_active(w->o);
    if (need_res1) pb_zero(e, m->dres, NC);
    pb_norm_layer_backward(e, w->ln1, need_res1 ? m->dres : NULL, m->dB, a->res1, a->ln1_mean, a->ln1_rstd, N);
    if (!need_res1) return;
    // res1 = x + attn(x): dres already holds the residual part of dx
    model_attn_backward(m, l, x, need_dx ? m->dres : NULL);
}

// From m->dres = d(last hidden state) (N,C) down to the lowest trainable parameter.
static void roberta_backward_encoder(pb_model *m, int lowest) {
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    int L = c->layers, B = m->B, T = m->T, C = c->hidden, N = B * T;
    size_t NC = (size_t)N * (size_t)C;
    for (int l = L - 1; l >= PB_MAX(lowest, 0); l--) roberta_layer_backward(m, l, l > lowest);
    if (lowest >= 0) return;
    // embeddings: x0 = drop(LN(word[ids] + pos[positions] + type[0]))
    const float *dln = m->dres;
    if (model_drop_on(m, c->hidden_dropout)) {
        pb_zero(e, m->dA, NC);
        pb_dropout_backward(e, m->dA, m->dres, m->emb_mask, NC);
        dln = m->dA;
    }
    int tables = model_ptr(m->word) || model_ptr(m->pos) || model_ptr(m->type);
    if (tables) pb_zero(e, m->dB, NC);
    pb_norm_layer_backward(e, m->norm_emb, tables ? m->dB : NULL, dln, m->emb_sum, m->emb_mean, m->emb_rstd, N);
    if (model_ptr(m->word))
        pb_embedding_backward(e, m->word->grad, m->dB, m->ids, N, C, c->vocab_size);
    if (model_ptr(m->pos))
        pb_embedding_backward(e, m->pos->grad, m->dB, m->pos_ids, N, C, c->max_positions);
    if (model_ptr(m->type))
        pb_embedding_backward(e, m->type->grad, m->dB, m->tt_ids, N, C, c->type_vocab);
}

void roberta_backward_features(pb_model *m, const float *dfeat) {
    const pb_model_config *c = &m->cfg;
    int B = m->B, T = m->T, C = c->hidden;
    int lowest = roberta_lowest_trainable(m);
    if (lowest >= c->layers) return;
    model_ensure_grads(m, B, T);
    pb_zero(m->e, m->dres, (size_t)B * (size_t)T * (size_t)C);
    pb_take_token_backward(m->e, m->dres, dfeat, B, T, C, 0);
    roberta_backward_encoder(m, lowest);
}

void roberta_backward_tokens(pb_model *m, const float *dtok, const int32_t *rows, int M) {
    const pb_model_config *c = &m->cfg;
    int N = m->B * m->T, C = c->hidden;
    int lowest = roberta_lowest_trainable(m);
    if (lowest >= c->layers || M <= 0) return;
    model_ensure_grads(m, m->B, m->T);
    pb_zero(m->e, m->dres, (size_t)N * (size_t)C);
    // scatter: dres[rows[i], :] += dtok[i, :] (rows are distinct; deterministic order)
    pb_embedding_backward(m->e, m->dres, dtok, rows, M, C, N);
    roberta_backward_encoder(m, lowest);
}

float *roberta_last_hidden(pb_model *m) {
    PB_CHECK(m->acts && m->B > 0, "last hidden state before any forward");
    return m->acts[m->cfg.layers - 1].out;
}
