// vit.c: HF ViTForImageClassification (modeling_vit.py) on the engine ops: patch embedding as
// patches + GEMM, CLS + position embeddings, pre-LN blocks, final layernorm, classifier on CLS.
#include <string.h>
// defines: struct pb_model, pb_layer, pb_layer_acts, model_* helpers
#include "model_internal.h"
// defines: pb_token_adapter (vtable calls)
#include "../methods/adapter.h"

// Dropout sites (seeds) of a ViT forward: embeddings 0, then per layer 3 sites.

static int vit_tokens(const pb_model_config *c) {
    int g = c->image_size / c->patch_size;
    return g * g + 1;
}

// Encoder sequence length: the embeddings' T0 plus the token site's tokens.
static int vit_seq(const pb_model *m) { return vit_tokens(&m->cfg) + (m->tok ? m->tok->ntokens : 0); }

void vit_specs(const pb_model_config *cfg, pb_param_spec **s, int *n, int *cap) {
    int64_t C = cfg->hidden, I = cfg->intermediate, P = cfg->patch_size, T = vit_tokens(cfg);
    const pb_param_group BB = PB_GROUP_BACKBONE;
    model_spec_add(s, n, cap, BB, 1, PB_INIT_NORMAL, 3, (int64_t[]){1, 1, C}, "embeddings.cls_token");
    model_spec_add(s, n, cap, BB, 1, PB_INIT_NORMAL, 3, (int64_t[]){1, T, C},
                   "embeddings.position_embeddings");
    model_spec_add(s, n, cap, BB, 0, PB_INIT_NORMAL, 4, (int64_t[]){C, cfg->channels, P, P},
                   "embeddings.patch_embeddings.projection.weight");
    model_spec_add(s, n, cap, BB, 1, PB_INIT_ZERO, 1, (int64_t[]){C},
                   "embeddings.patch_embeddings.projection.bias");
    static const char *qkv[3] = {"query", "key", "value"};
    char mod[PB_NAME_MAX];
    for (int l = 0; l < cfg->layers; l++) {
        for (int j = 0; j < 3; j++) {
            snprintf(mod, sizeof mod, "encoder.layer.%d.attention.attention.%s", l, qkv[j]);
            model_spec_linear(s, n, cap, BB, C, C, cfg->qkv_bias, mod);
        }
        snprintf(mod, sizeof mod, "encoder.layer.%d.attention.output.dense", l);
        model_spec_linear(s, n, cap, BB, C, C, 1, mod);
        snprintf(mod, sizeof mod, "encoder.layer.%d.intermediate.dense", l);
        model_spec_linear(s, n, cap, BB, I, C, 1, mod);
        snprintf(mod, sizeof mod, "encoder.layer.%d.output.dense", l);
        model_spec_linear(s, n, cap, BB, C, I, 1, mod);
        snprintf(mod, sizeof mod, "encoder.layer.%d.layernorm_before", l);
        model_spec_layernorm(s, n, cap, C, mod);
        snprintf(mod, sizeof mod, "encoder.layer.%d.layernorm_after", l);
        model_spec_layernorm(s, n, cap, C, mod);
    }
    model_spec_layernorm(s, n, cap, C, "layernorm");
    model_spec_linear(s, n, cap, PB_GROUP_HEAD, cfg->num_labels, C, 1, "classifier");
}

static void wire_lin(pb_model *m, pb_linear *l, const char *module, int has_bias) {
    char wn[PB_NAME_MAX], bn[PB_NAME_MAX];
    snprintf(wn, sizeof(wn), "%.140s.weight", module);
    snprintf(bn, sizeof(bn), "%.140s.bias", module);
    model_linear_set(l, module, model_param(m, "%s", wn), has_bias ? model_param(m, "%s", bn) : NULL);
}

void vit_wire(pb_model *m) {
    const pb_model_config *c = &m->cfg;
    int L = c->layers;
    m->cls = model_param(m, "embeddings.cls_token");
    m->pos = model_param(m, "embeddings.position_embeddings");
    wire_lin(m, &m->patch, "embeddings.patch_embeddings.projection", 1);
    m->lnf_w = model_param(m, "layernorm.weight");
    m->lnf_b = model_param(m, "layernorm.bias");
    wire_lin(m, &m->head1, "classifier", 1);
    m->nlins = 6 * L;
    m->lins = pb_xcalloc((size_t)m->nlins, sizeof(pb_linear));
    m->nnorms = 2 * L + 1; // per layer before/after, then the final one
    m->norms = pb_xcalloc((size_t)m->nnorms, sizeof(pb_norm));
    m->norm_f = &m->norms[2 * L];
    model_norm_set(m, m->norm_f, "layernorm", c->ln_eps);
    m->layers = pb_xcalloc((size_t)L, sizeof(pb_layer));
    char mod[PB_NAME_MAX];
    static const char *qkv[3] = {"query", "key", "value"};
    for (int l = 0; l < L; l++) {
        pb_linear *ls = &m->lins[6 * l];
        for (int j = 0; j < 3; j++) {
            snprintf(mod, sizeof(mod), "encoder.layer.%d.attention.attention.%s", l, qkv[j]);
            wire_lin(m, &ls[j], mod, c->qkv_bias);
        }
        snprintf(mod, sizeof(mod), "encoder.layer.%d.attention.output.dense", l);
        wire_lin(m, &ls[3], mod, 1);
        snprintf(mod, sizeof(mod), "encoder.layer.%d.intermediate.dense", l);
        wire_lin(m, &ls[4], mod, 1);
        snprintf(mod, sizeof(mod), "encoder.layer.%d.output.dense", l);
        wire_lin(m, &ls[5], mod, 1);
        pb_layer *w = &m->layers[l];
        w->q = &ls[0], w->k = &ls[1], w->v = &ls[2], w->o = &ls[3], w->fc1 = &ls[4], w->fc2 = &ls[5];
        w->ln1_w = model_param(m, "encoder.layer.%d.layernorm_before.weight", l);
        w->ln1_b = model_param(m, "encoder.layer.%d.layernorm_before.bias", l);
        w->ln2_w = model_param(m, "encoder.layer.%d.layernorm_after.weight", l);
        w->ln2_b = model_param(m, "encoder.layer.%d.layernorm_after.bias", l);
        w->ln1 = &m->norms[2 * l];
        w->ln2 = &m->norms[2 * l + 1];
        snprintf(mod, sizeof(mod), "encoder.layer.%d.layernorm_before", l);
        model_norm_set(m, w->ln1, mod, c->ln_eps);
        snprintf(mod, sizeof(mod), "encoder.layer.%d.layernorm_after", l);
        model_norm_set(m, w->ln2, mod, c->ln_eps);
    }
}

void vit_ensure_acts(pb_model *m, int B) {
    const pb_model_config *c = &m->cfg;
    int T = vit_seq(m);
    if (m->acts && B <= m->capB && T <= m->capT) return;
    int nB = PB_MAX(B, m->capB);
    model_free_enc_acts(m);
    pb_engine *e = m->e;
    // embedding buffers hold T0 <= T rows per image; sized by T for one size rule
    size_t N = (size_t)nB * (size_t)T, C = (size_t)c->hidden, NP = (size_t)vit_tokens(c) - 1;
    if (m->tok) m->xtok = pb_alloc(e, N * C);
    size_t K = (size_t)c->channels * (size_t)c->patch_size * (size_t)c->patch_size;
    m->cols = pb_alloc(e, (size_t)nB * NP * K);
    m->patch_out = pb_alloc(e, (size_t)nB * NP * C);
    m->tokens = pb_alloc(e, N * C);
    if (c->hidden_dropout > 0) {
        m->emb_mask = pb_alloc(e, N * C);
        m->x0 = pb_alloc(e, N * C);
    }
    m->acts = pb_xcalloc((size_t)c->layers, sizeof(pb_layer_acts));
    size_t BHTT = (size_t)nB * (size_t)c->heads * (size_t)T * (size_t)T;
    for (int l = 0; l < c->layers; l++) model_alloc_layer_acts(m, &m->acts[l], N, BHTT, 0);
    m->cls_tok = pb_alloc(e, (size_t)nB * C);
    m->lnf_mean = pb_alloc(e, (size_t)nB);
    m->lnf_rstd = pb_alloc(e, (size_t)nB);
    m->feat = pb_alloc(e, (size_t)nB * C);
    m->capB = nB;
    m->capT = T;
}

// One pre-LN block: out = r + MLP(LN2(r)), r = x + Attn(LN1(x)). x, out are (B,T,C).
static void vit_layer_forward(pb_model *m, int l, const float *x, int B, int T) {
    pb_engine *e = m->e;
    pb_layer *w = &m->layers[l];
    pb_layer_acts *a = &m->acts[l];
    int N = B * T;
    pb_norm_layer_forward(e, w->ln1, a->ln1, a->ln1_mean, a->ln1_rstd, x, N);
    model_attn_forward(m, l, a->ln1, x, NULL, B, T);
    pb_norm_layer_forward(e, w->ln2, a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, N);
    model_mlp_forward(m, l, a->ln2, a->res1, B, T);
}

void vit_features(pb_model *m, const pb_batch *b, int train, uint64_t seed) {
    (void)train;
    (void)seed; // already recorded in m by pb_model_features
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    int B = b->B, T0 = vit_tokens(c), T = vit_seq(m), C = c->hidden, NP = T0 - 1;
    PB_CHECK(b->pixels, "ViT batch without pixels");
    vit_ensure_acts(m, B);
    m->B = B;
    m->T = T;
    m->keymask = NULL;
    // patch embedding: conv(kernel=stride=P) as cols (B*NP, Cin*P*P) @ W^T + b
    pb_patches_forward(e, m->cols, b->pixels, B, c->channels, c->image_size, c->image_size,
                       c->patch_size);
    pb_linear_forward(e, m->patch_out, m->cols, m->patch.w->data, m->patch.b->data, B * NP,
                      m->patch.in, C);
    pb_vit_tokens_forward(e, m->tokens, m->patch_out, m->cls->data, m->pos->data, B, T0, C);
    m->xin = model_dropout(m, m->x0, m->emb_mask, m->tokens, c->hidden_dropout, SITE_EMB,
                           (size_t)B * T0 * C);
    if (m->tok) { // the token site: [CLS, tokens, patches] after the embeddings (and their dropout)
        m->tok->vt->embed_forward(m->tok, e, m->xtok, m->xin, B, T0, C);
        m->xin = m->xtok;
    }
    float *x = m->xin;
    for (int l = 0; l < c->layers; l++) {
        // VPT-Deep: the tokens entering layer l >= 1 are replaced in its input (the previous
        // layer's output, which that layer's backward does not read)
        if (m->tok && l > 0) m->tok->vt->layer_forward(m->tok, e, l, x, B, T, C);
        vit_layer_forward(m, l, x, B, T);
        x = m->acts[l].out;
    }
    // final layernorm is per token: normalising only the CLS row is what the classifier sees
    pb_take_token_forward(e, m->cls_tok, x, B, T, C, 0);
    pb_norm_layer_forward(e, m->norm_f, m->feat, m->lnf_mean, m->lnf_rstd, m->cls_tok, B);
}

int vit_lowest_trainable(pb_model *m) {
    if (model_ptr(m->cls) || model_ptr(m->pos) || model_lin_active(&m->patch) || m->tok) return -1;
    for (int l = 0; l < m->cfg.layers; l++) {
        pb_layer *w = &m->layers[l];
        if (pb_norm_active(w->ln1) || pb_norm_active(w->ln2) || model_lin_active(w->q) ||
            model_lin_active(w->k) || model_lin_active(w->v) || model_lin_active(w->o) ||
            model_lin_active(w->fc1) || model_lin_active(w->fc2))
            return l;
    }
    if (pb_norm_active(m->norm_f)) return m->cfg.layers;
    return m->cfg.layers + 1;
}

// m->dres holds d(layer output) on entry and d(layer input) on exit (when need_dx). Work that
// no trainable tensor depends on is skipped.
static void vit_layer_backward(pb_model *m, int l, int need_dx) {
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    pb_layer *w = &m->layers[l];
    pb_layer_acts *a = &m->acts[l];
    int N = m->B * m->T, C = c->hidden;
    size_t NC = (size_t)N * (size_t)C;
    const float *x = model_layer_input(m, l);
    int tr_ln1 = pb_norm_active(w->ln1), tr_ln2 = pb_norm_active(w->ln2);
    int qkv_act = model_lin_active(w->q) || model_lin_active(w->k) || model_lin_active(w->v);
    int attn_any = need_dx || tr_ln1 || qkv_act || model_lin_active(w->o);

    // MLP branch: res2 = res1 + mlp(LN2(res1)); m->dres = d res2, its residual share is d res1
    int need_ln2out = attn_any || tr_ln2;
    if (need_ln2out) pb_zero(e, m->dB, NC);
    model_mlp_backward(m, l, m->dres, m->dA, a->ln2, need_ln2out ? m->dB : NULL);
    if (need_ln2out)
        pb_norm_layer_backward(e, w->ln2, attn_any ? m->dres : NULL, m->dB, a->res1, a->ln2_mean, a->ln2_rstd, N);
    if (!attn_any) return;
    // attention branch: res1 = x + attn(LN1(x)); m->dres = d res1, its residual share is d x
    int need_ln1out = need_dx || tr_ln1;
    float *dln1 = need_ln1out ? m->dB : NULL;
    if (dln1) pb_zero(e, dln1, NC);
    model_attn_backward(m, l, a->ln1, dln1);
    if (need_ln1out)
        pb_norm_layer_backward(e, w->ln1, need_dx ? m->dres : NULL, dln1, x, a->ln1_mean, a->ln1_rstd, N);
}

void vit_backward_features(pb_model *m, const float *dfeat) {
    pb_engine *e = m->e;
    const pb_model_config *c = &m->cfg;
    int L = c->layers, B = m->B, T = m->T, T0 = vit_tokens(c), C = c->hidden, NP = T0 - 1;
    int lowest = vit_lowest_trainable(m);
    if (lowest > L) return;
    model_ensure_grads(m, B, T);
    size_t NC = (size_t)B * T * C;
    // final layernorm on the CLS rows: dA (B,C) = d cls_tok
    int below = lowest < L;
    if (below) pb_zero(e, m->dA, (size_t)B * C);
    pb_norm_layer_backward(e, m->norm_f, below ? m->dA : NULL, dfeat, m->cls_tok, m->lnf_mean, m->lnf_rstd, B);
    if (!below) return;
    pb_zero(e, m->dres, NC);
    pb_take_token_backward(e, m->dres, m->dA, B, T, C, 0);
    for (int l = L - 1; l >= PB_MAX(lowest, 0); l--) {
        vit_layer_backward(m, l, l > lowest);
        // m->dres = d(layer l input): the token site takes the rows of the tokens it put there
        if (m->tok && l > 0) m->tok->vt->layer_backward(m->tok, e, l, m->dres, B, T, C);
    }
    if (lowest >= 0) return;
    // embeddings: tokens = [cls; patches] + pos, dropout; m->dres = d(encoder input)
    const float *dtok = m->dres;
    int emb_tr = model_ptr(m->cls) || model_ptr(m->pos) || model_lin_active(&m->patch);
    if (m->tok) { // the inserted tokens' gradient; d(embeddings output) = the other rows
        m->tok->vt->embed_backward(m->tok, e, emb_tr ? m->dq : NULL, m->dres, B, T0, C);
        if (!emb_tr) return;
        dtok = m->dq;
    }
    size_t NC0 = (size_t)B * T0 * C;
    if (model_drop_on(m, c->hidden_dropout)) {
        pb_zero(e, m->dA, NC0);
        pb_dropout_backward(e, m->dA, dtok, m->emb_mask, NC0);
        dtok = m->dA;
    }
    int patch_tr = model_lin_active(&m->patch);
    float *dpatch = patch_tr ? m->dB : NULL; // (B*NP, C)
    if (dpatch) pb_zero(e, dpatch, (size_t)B * NP * C);
    pb_vit_tokens_backward(e, dpatch, model_ptr(m->cls) ? m->cls->grad : NULL,
                           model_ptr(m->pos) ? m->pos->grad : NULL, dtok, B, T0, C);
    if (patch_tr)
        pb_linear_layer_backward(e, &m->patch, NULL, dpatch, m->cols, B * NP); // no pixel grads
}
