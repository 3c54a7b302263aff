// test_mlm.c: fast C tests of the masked-LM head (models/mlm.h): gradients of the head and of
// the tied word embeddings (and the encoder below) against central differences of the loss;
// frozen encoder skips the encoder backward but keeps the head's gradients; the masking of
// DataCollatorForLanguageModeling (specials and padding never chosen, proportions within
// binomial bounds on a large sample, same seed = same mask, another seed = another); save ->
// load round trip; a bad checkpoint gives a clear error.
#include <math.h>
#include "test_expect.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
// defines: pb_mlm_* (under test)
#include "models/mlm.h"
// defines: pb_st_writer_*, pb_st_open (writing a bad checkpoint)
#include "models/safetensors.h"
// defines: pb_hash_mix
#include "engine/fileutil.h"


static pb_engine *E;
enum { TB = 3, TT = 7 };

static pb_model_config tiny(float dropout) {
    pb_model_config c;
    memset(&c, 0, sizeof(c));
    c.arch = PB_ARCH_ROBERTA;
    snprintf(c.name, sizeof(c.name), "test-roberta-mlm");
    c.hidden = 8, c.layers = 2, c.heads = 2, c.intermediate = 12;
    c.ln_eps = 1e-5f;
    c.hidden_dropout = c.attn_dropout = dropout;
    c.classifier_dropout = -1.0f;
    c.vocab_size = 19, c.max_positions = 12, c.type_vocab = 1, c.pad_id = 1;
    c.num_labels = 2;
    c.initializer_range = 0.3f;
    return c;
}

// Host batch (TB,TT) with padding, masked by pb_mlm_mask at a high rate (so a 21-token batch has
// several labels), then uploaded into *b (engine buffers d[0], d[1]).
static void make_batch(const pb_model_config *c, int32_t *labels, pb_batch *b, int32_t *d[2]) {
    int32_t ids[TB * TT], mask[TB * TT];
    pb_rng r;
    pb_rng_seed(&r, 3);
    for (int i = 0; i < TB; i++) {
        int len = i == 0 ? TT : 3 + i;
        for (int t = 0; t < TT; t++) {
            int32_t id = t == 0 ? 0 : t == len - 1 ? 2 : t < len ? 4 + (int32_t)pb_rng_below(&r, (uint32_t)(c->vocab_size - 5)) : 1;
            ids[i * TT + t] = id;
            mask[i * TT + t] = t < len;
        }
    }
    const int32_t special[5] = {0, 1, 2, 3, c->vocab_size - 1};
    pb_mlm_mask_config mc = pb_mlm_mask_config_default(c->vocab_size - 1, c->vocab_size, special, 5);
    mc.prob = 0.5f;
    int n = pb_mlm_mask(&mc, pb_hash_mix(17, 1), ids, labels, TB * TT);
    EXPECT(n >= 3, "fixture: only %d masked tokens", n);
    d[0] = pb_alloc_i32(E, TB * TT);
    d[1] = pb_alloc_i32(E, TB * TT);
    pb_upload_i32(E, d[0], ids, TB * TT);
    pb_upload_i32(E, d[1], mask, TB * TT);
    memset(b, 0, sizeof(*b));
    b->B = TB, b->T = TT, b->ids = d[0], b->mask = d[1];
}

// Adds noise to every 1-D tensor so zero biases / unit layernorms cannot hide mistakes.
static void perturb(pb_param **ps, int n, pb_rng *r) {
    for (int i = 0; i < n; i++) {
        if (ps[i]->ndim != 1) continue;
        float *h = malloc(ps[i]->numel * sizeof(float));
        pb_download(E, h, ps[i]->data, ps[i]->numel);
        for (size_t j = 0; j < ps[i]->numel; j++) h[j] += 0.2f * pb_rng_normal(r);
        pb_upload(E, ps[i]->data, h, ps[i]->numel);
        free(h);
    }
}

// The backbone tensors of m and the head's, in one array (caller frees); backbone ones made
// trainable when `backbone` is set.
static pb_param **all_params(pb_model *m, pb_mlm_head *h, int backbone, int *n) {
    int nm, nh;
    pb_param **mp = pb_model_params(m, &nm), **hp = pb_mlm_head_params(h, &nh);
    pb_param **ps = calloc((size_t)(nm + nh), sizeof(*ps));
    *n = 0;
    for (int i = 0; i < nm; i++)
        if (mp[i]->group == PB_GROUP_BACKBONE) {
            pb_param_set_trainable(E, mp[i], backbone);
            if (backbone) ps[(*n)++] = mp[i];
        }
    for (int i = 0; i < nh; i++) ps[(*n)++] = hp[i];
    return ps;
}

// ----------------------------------------------------------------------------
// 1. Gradients vs central differences (h = 3e-3 in float32: at 1e-2 the curvature of the tiny
// model with std 0.3 weights already costs 6 % on one dropout case; bounds as test_models.c: each
// sampled element |fd - an| <= 5e-3 |an| + 5e-5, the sampled set within 1e-3 relative). Train
// mode with dropout uses a fixed seed, so the loss is a deterministic function of the weights.
// Every element of the head's tensors is checked, and 8 per backbone tensor (word embedding rows
// that are labels, hence reached through the tied decoder, included).
static void test_fd(float dropout, const char *what) {
    pb_model_config c = tiny(dropout);
    pb_model *m = pb_model_create(E, &c, 7);
    pb_mlm_head *h = pb_mlm_head_create(m, 8);
    int n;
    pb_param **ps = all_params(m, h, 1, &n);
    pb_rng r;
    pb_rng_seed(&r, 11);
    perturb(ps, n, &r);
    int32_t labels[TB * TT], *d[2];
    pb_batch b;
    make_batch(&c, labels, &b, d);
    int train = dropout > 0;
    pb_params_zero_grad(E, ps, n);
    int nmasked = 0;
    pb_mlm_forward(h, &b, labels, train, 99, &nmasked);
    pb_mlm_backward(h);
    int checked = 0, bad = 0;
    double num = 0, den = 0;
    const float eps = 3e-3f;
    for (int i = 0; i < n; i++) {
        pb_param *p = ps[i];
        float *g = malloc(p->numel * sizeof(float)), *w = malloc(p->numel * sizeof(float));
        pb_download(E, g, p->grad, p->numel);
        pb_download(E, w, p->data, p->numel);
        int head = p->group == PB_GROUP_HEAD;
        size_t count = head ? p->numel : 8;
        for (size_t s = 0; s < count; s++) {
            size_t j = head ? s : pb_rng_below(&r, (uint32_t)p->numel);
            if (!head && s == 0 && !strcmp(p->name, "embeddings.word_embeddings.weight"))
                for (int t = 0; t < TB * TT; t++) // a label's row: decoder and (maybe) lookup
                    if (labels[t] != PB_MLM_IGNORE) j = (size_t)labels[t] * (size_t)c.hidden + 3;
            float w0 = w[j];
            w[j] = w0 + eps;
            pb_upload(E, p->data, w, p->numel);
            float lp = pb_mlm_forward(h, &b, labels, train, 99, NULL);
            w[j] = w0 - eps;
            pb_upload(E, p->data, w, p->numel);
            float lm = pb_mlm_forward(h, &b, labels, train, 99, NULL);
            w[j] = w0;
            pb_upload(E, p->data, w, p->numel);
            double fd = ((double)lp - (double)lm) / (2.0 * eps), an = g[j];
            checked++;
            num += (fd - an) * (fd - an);
            den += an * an;
            if (fabs(fd - an) > 5e-3 * fabs(an) + 5e-5) {
                bad++;
                fprintf(stderr, "  %s: %s[%zu]: analytic %.6g fd %.6g\n", what, p->name, j, an, fd);
            }
        }
        free(g);
        free(w);
    }
    double relerr = sqrt(num / (den > 0 ? den : 1));
    EXPECT(bad == 0, "%s: %d of %d sampled gradients off", what, bad, checked);
    EXPECT(relerr <= 1e-3, "%s: sampled gradients rel err %.3e", what, relerr);
    printf("fd %-18s %d masked, %4d elements, rel err %.2e, %d outside the per-element bound\n", what, nmasked,
           checked, relerr, bad);
    free(ps);
    pb_free(E, d[0]);
    pb_free(E, d[1]);
    pb_mlm_head_free(h);
    pb_model_free(m);
}

// 2. A frozen backbone: the head's gradients equal those of the full backward (the tied decoder
// gets none: the word table is frozen), and the frozen tensors have no gradient buffer.
static void test_frozen(void) {
    pb_model_config c = tiny(0);
    pb_model *m = pb_model_create(E, &c, 7);
    pb_mlm_head *h = pb_mlm_head_create(m, 8);
    int32_t labels[TB * TT], *d[2];
    pb_batch b;
    make_batch(&c, labels, &b, d);
    float *g[2][5];
    for (int pass = 0; pass < 2; pass++) {
        int n;
        pb_param **ps = all_params(m, h, pass == 0, &n);
        pb_params_zero_grad(E, ps, n);
        pb_mlm_forward(h, &b, labels, 0, 0, NULL);
        pb_mlm_backward(h);
        int nh;
        pb_param **hp = pb_mlm_head_params(h, &nh);
        for (int i = 0; i < 5; i++) {
            g[pass][i] = malloc(hp[i]->numel * sizeof(float));
            pb_download(E, g[pass][i], hp[i]->grad, hp[i]->numel);
        }
        if (pass == 1) {
            int nm;
            pb_param **mp = pb_model_params(m, &nm);
            int with_grad = 0;
            for (int i = 0; i < nm; i++) with_grad += mp[i]->grad != NULL;
            EXPECT(with_grad == 0, "frozen backbone: %d tensors still have a gradient buffer", with_grad);
            for (int i = 0; i < 5; i++)
                EXPECT(!memcmp(g[0][i], g[1][i], hp[i]->numel * sizeof(float)),
                       "frozen backbone: %s gradient differs from the full backward", hp[i]->name);
        }
        free(ps);
    }
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 5; i++) free(g[p][i]);
    pb_free(E, d[0]);
    pb_free(E, d[1]);
    pb_mlm_head_free(h);
    pb_model_free(m);
}

// ----------------------------------------------------------------------------
// 3. Masking. A large sample of a token stream with specials and padding: no special is ever
// chosen or rewritten; chosen/eligible ~ 0.15, and of the chosen 0.8 <mask>, 0.1 random (any
// id, so a random draw may land on the original), 0.1 unchanged; each within 5 binomial
// standard deviations (a correct sampler fails this with probability < 1e-6 per proportion).
// The random ids cover the vocabulary uniformly (chi-square). Same seed = same result.
static void test_mask(void) {
    const int V = 50, n = 400000;
    const int32_t mask_id = V - 1, special[5] = {0, 1, 2, 3, V - 1};
    int32_t *ids = malloc(n * sizeof(int32_t)), *orig = malloc(n * sizeof(int32_t));
    int32_t *lab = malloc(n * sizeof(int32_t)), *ids2 = malloc(n * sizeof(int32_t));
    int32_t *lab2 = malloc(n * sizeof(int32_t));
    pb_rng r;
    pb_rng_seed(&r, 5);
    int eligible = 0;
    for (int i = 0; i < n; i++) {
        // sequences of 20: <s> ... </s> then padding
        int t = i % 20;
        int len = 8 + (i / 20) % 12;
        orig[i] = t == 0 ? 0 : t == len - 1 ? 2 : t >= len ? 1 : (i % 97 == 0) ? 3 : 4 + (int32_t)pb_rng_below(&r, V - 5);
        eligible += orig[i] >= 4 && orig[i] != mask_id;
    }
    pb_mlm_mask_config mc = pb_mlm_mask_config_default(mask_id, V, special, 5);
    memcpy(ids, orig, n * sizeof(int32_t));
    int chosen = pb_mlm_mask(&mc, 42, ids, lab, n);
    int cnt = 0, nmask = 0, nrand_changed = 0, nsame = 0, bad_special = 0, bad_label = 0;
    long hist[50] = {0};
    for (int i = 0; i < n; i++) {
        int sp = orig[i] < 4 || orig[i] == mask_id;
        if (sp && (lab[i] != PB_MLM_IGNORE || ids[i] != orig[i])) bad_special++;
        if (lab[i] == PB_MLM_IGNORE) {
            if (ids[i] != orig[i]) bad_label++;
            continue;
        }
        cnt++;
        if (lab[i] != orig[i]) bad_label++;
        if (ids[i] == mask_id) nmask++;
        else if (ids[i] == orig[i]) nsame++;
        else {
            nrand_changed++;
            hist[ids[i]]++;
        }
    }
    EXPECT(bad_special == 0, "mask: %d special / padding tokens chosen or changed", bad_special);
    EXPECT(bad_label == 0, "mask: %d labels inconsistent with the ids", bad_label);
    EXPECT(cnt == chosen, "mask: returned %d, %d labelled", chosen, cnt);
    double p = 0.15, sd = sqrt(eligible * p * (1 - p));
    EXPECT(fabs(chosen - eligible * p) <= 5 * sd, "mask: %d of %d chosen (expected %.0f +- %.0f)", chosen, eligible,
           eligible * p, sd);
    // <mask> p = 0.8 (a random id may also be mask_id: 0.1/V more); unchanged 0.1 + 0.1/V
    double pm = 0.8 + 0.1 / V, ps = 0.1 + 0.1 / V, pr = 1 - pm - ps;
    double sm = sqrt(cnt * pm * (1 - pm)), ss = sqrt(cnt * ps * (1 - ps)), sr = sqrt(cnt * pr * (1 - pr));
    EXPECT(fabs(nmask - cnt * pm) <= 5 * sm, "mask: %d <mask> of %d (expected %.0f +- %.0f)", nmask, cnt, cnt * pm, sm);
    EXPECT(fabs(nsame - cnt * ps) <= 5 * ss, "mask: %d unchanged of %d (expected %.0f +- %.0f)", nsame, cnt, cnt * ps,
           ss);
    EXPECT(fabs(nrand_changed - cnt * pr) <= 5 * sr, "mask: %d random of %d (expected %.0f +- %.0f)", nrand_changed,
           cnt, cnt * pr, sr);
    // the random replacements are uniform over [0,V) (every id but the mask, which counts as
    // <mask>, and the original, which counts as unchanged): chi-square over V-1 cells, df V-2
    // = 48; the 1e-6 upper quantile of chi2(48) is about 110
    double chi = 0, expct = 0;
    for (int v = 0; v < V - 1; v++) expct += hist[v];
    expct /= V - 1;
    for (int v = 0; v < V - 1; v++) chi += (hist[v] - expct) * (hist[v] - expct) / expct;
    EXPECT(chi < 110, "mask: random ids not uniform (chi2 %.1f, df 48)", chi);
    printf("mask: %d of %d eligible chosen (%.4f); <mask> %.4f, random %.4f, unchanged %.4f; chi2 %.1f\n", chosen,
           eligible, (double)chosen / eligible, (double)nmask / cnt, (double)nrand_changed / cnt,
           (double)nsame / cnt, chi);
    // determinism
    memcpy(ids2, orig, n * sizeof(int32_t));
    int chosen2 = pb_mlm_mask(&mc, 42, ids2, lab2, n);
    EXPECT(chosen2 == chosen && !memcmp(ids, ids2, n * sizeof(int32_t)) && !memcmp(lab, lab2, n * sizeof(int32_t)),
           "mask: the same seed gave another mask");
    memcpy(ids2, orig, n * sizeof(int32_t));
    pb_mlm_mask(&mc, 43, ids2, lab2, n);
    EXPECT(memcmp(lab, lab2, n * sizeof(int32_t)) != 0, "mask: seeds 42 and 43 gave the same mask");
    free(ids);
    free(orig);
    free(lab);
    free(ids2);
    free(lab2);
}

// ----------------------------------------------------------------------------
// 4. Save -> load round trip (same logits and loss; the loader's classification view ignores the
// head) and a checkpoint whose decoder is untied is refused with the file and tensor named.
static void test_save_load(void) {
    pb_model_config c = tiny(0);
    pb_model *m = pb_model_create(E, &c, 7);
    pb_mlm_head *h = pb_mlm_head_create(m, 8);
    int n;
    pb_param **ps = all_params(m, h, 0, &n);
    pb_rng r;
    pb_rng_seed(&r, 12);
    perturb(ps, n, &r);
    int32_t labels[TB * TT], *d[2];
    pb_batch b;
    make_batch(&c, labels, &b, d);
    size_t NV = (size_t)TB * TT * (size_t)c.vocab_size;
    float *l1 = malloc(NV * sizeof(float)), *l2 = malloc(NV * sizeof(float));
    pb_download(E, l1, pb_mlm_logits(h, &b), NV);
    float loss1 = pb_mlm_forward(h, &b, labels, 0, 0, NULL);
    char dir[] = "/tmp/pb_test_mlm_XXXXXX", err[1024];
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    EXPECT(pb_mlm_save(h, dir, err, sizeof err) == PB_OK, "save: %s", err);
    pb_model *m2 = NULL;
    pb_mlm_head *h2 = NULL;
    EXPECT(pb_model_load(E, dir, 0, 0, &m2, err, sizeof err) == PB_OK, "load: %s", err);
    if (m2) EXPECT(pb_mlm_head_load(m2, dir, &h2, err, sizeof err) == PB_OK, "head load: %s", err);
    if (h2) {
        pb_download(E, l2, pb_mlm_logits(h2, &b), NV);
        EXPECT(!memcmp(l1, l2, NV * sizeof(float)), "round trip: logits differ");
        float loss2 = pb_mlm_forward(h2, &b, labels, 0, 0, NULL);
        EXPECT(loss1 == loss2, "round trip: loss %g vs %g", loss1, loss2);
    }
    pb_mlm_head_free(h2);
    pb_model_free(m2);
    // no masked token: loss 0 and a harmless backward
    int32_t none[TB * TT];
    for (int i = 0; i < TB * TT; i++) none[i] = PB_MLM_IGNORE;
    int nm = -1;
    EXPECT(pb_mlm_forward(h, &b, none, 0, 0, &nm) == 0.0f && nm == 0, "no masked token: loss not 0");
    pb_mlm_backward(h);

    // a file with an untied decoder, and one without the head
    char sub[1200], path[1400];
    snprintf(sub, sizeof sub, "%s/bad", dir);
    EXPECT(pb_mlm_save(h, sub, err, sizeof err) == PB_OK, "save: %s", err);
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    pb_st_file f;
    EXPECT(pb_st_open(path, &f, err, sizeof err) == PB_OK, "open: %s", err);
    pb_st_writer *w = pb_st_writer_init();
    for (int i = 0; i < f.ntensors; i++) {
        const pb_st_tensor *t = &f.tensors[i];
        float *buf = malloc(t->numel * sizeof(float));
        pb_st_read_f32(&f, t, buf, err, sizeof err);
        if (strcmp(t->name, "lm_head.dense.bias")) pb_st_writer_add(w, t->name, buf, t->ndim, t->shape);
        if (!strcmp(t->name, "roberta.embeddings.word_embeddings.weight")) {
            buf[5] += 1.0f;
            pb_st_writer_add(w, "lm_head.decoder.weight", buf, t->ndim, t->shape);
        }
        if (!strcmp(t->name, "lm_head.dense.bias")) pb_st_writer_add(w, t->name, buf, t->ndim, t->shape);
        free(buf);
    }
    pb_st_close(&f);
    EXPECT(pb_st_writer_finish(w, path, err, sizeof err) == PB_OK, "rewrite: %s", err);
    pb_st_writer_free(w);
    pb_model *m3 = NULL;
    pb_mlm_head *h3 = NULL;
    EXPECT(pb_model_load(E, sub, 0, 0, &m3, err, sizeof err) == PB_OK, "load: %s", err);
    if (m3) {
        pb_status st = pb_mlm_head_load(m3, sub, &h3, err, sizeof err);
        EXPECT(st != PB_OK && h3 == NULL && strstr(err, "lm_head.decoder.weight") && strstr(err, path),
               "untied decoder accepted or unclear error: %s", err);
        pb_model_free(m3);
    }
    m3 = pb_model_create(E, &c, 1);
    pb_status st = pb_mlm_head_load(m3, "tests/nonexistent-dir", &h3, err, sizeof err);
    EXPECT(st != PB_OK && strstr(err, "nonexistent-dir"), "missing dir: %s", err);
    pb_model_free(m3);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", sub);
    unlink(path);
    rmdir(sub);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
    free(l1);
    free(l2);
    free(ps);
    pb_free(E, d[0]);
    pb_free(E, d[1]);
    pb_mlm_head_free(h);
    pb_model_free(m);
}

int main(void) {
    char err[256];
    E = pb_engine_init(PB_DEVICE_CPU, 1, err, sizeof err);
    if (!E) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    test_fd(0.0f, "mlm");
    test_fd(0.1f, "mlm dropout (train)");
    test_frozen();
    test_mask();
    test_save_load();
    pb_engine_free(E);
    if (pb_test_fails) fprintf(stderr, "%d failures\n", pb_test_fails);
    else printf("test_mlm: all passed\n");
    return pb_test_fails ? 1 : 0;
}
