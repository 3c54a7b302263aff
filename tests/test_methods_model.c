// test_methods_model.c: methods applied to whole models.
//  - trainable parameter counts against papers.md §7 (ViT-B/16; with argument "slow" also SVFit
//    on ViT-B/16 and LoRA/SVFit on ViT-L/16);
//  - step 0 reproduces the pre-trained logits (rel <= 1e-5) for every method on every target;
//  - after moving the adapters off their init, merged logits == unmerged logits (rel <= 1e-5);
//  - backward reaches every adapter tensor (non-zero, finite gradients), frozen backbone gets none;
//  - bad targets / ranks fail with a message naming the field.
// Exits non-zero on failure.
#include <math.h>
#include "test_expect.h"
#include <stdlib.h>
#include <string.h>
#include "methods/methods_internal.h"
#include "test_method_util.h"


static pb_engine *E;

static void check_count_kv(const char *model, const char *method, const char *kv, size_t want_adapter,
                           size_t want_trainable_backbone);
static void check_count(const char *model, const char *method, int rank, size_t want_adapter,
                        size_t want_trainable_backbone) {
    char kv[32] = ""; // rank < 0: the method has none
    if (rank >= 0) snprintf(kv, sizeof kv, "rank=%d", rank);
    check_count_kv(model, method, kv, want_adapter, want_trainable_backbone);
}
static void check_count_kv(const char *model, const char *method, const char *kv, size_t want_adapter,
                           size_t want_trainable_backbone) {
    char err[512];
    pb_model_config cfg;
    if (pb_model_config_builtin(model, &cfg, err, sizeof(err)) != PB_OK) {
        EXPECT(0, "%s", err);
        return;
    }
    pb_model *m = pb_model_create(E, &cfg, 1);
    pb_method_config c;
    mc_make(&c, method, 0, kv);
    pb_status st = pb_method_apply(m, &c, err, sizeof(err));
    EXPECT(st == PB_OK, "%s %s: %s", model, method, err);
    pb_param_counts pc = pb_model_count(m);
    EXPECT(pc.adapter == want_adapter, "%s %s %s: adapter params %zu, want %zu", model, method, kv,
           pc.adapter, want_adapter);
    EXPECT(pc.trainable_backbone == want_trainable_backbone, "%s %s %s: trainable backbone %zu, want %zu",
           model, method, kv, pc.trainable_backbone, want_trainable_backbone);
    EXPECT(pc.trainable == pc.trainable_backbone + pc.head, "%s %s: head not (only) trainable", model, method);
    printf("%-8s %-9s %-16s adapter %zu trainable_backbone %zu\n", model, method, kv, pc.adapter,
           pc.trainable_backbone);
    pb_model_free(m);
}

// The descriptors' cost model (what info and bench use) equals the instantiated counts, for every
// registered method and several option sets, on both architectures.
static void check_formulas(void) {
    static const char *const kvs[] = {"", "rank=3", "norms=false targets=query", "rank=5 targets=query,key,value,attention.output,intermediate,output",
                                      "rank=4 targets=intermediate,output train_head=false",
                                      "rank=2 variant=adapter gate=scalar", "rank=6 gate=scalar targets=key,output",
                                      "train_head=false"};
    const char *models[2] = {"vit-tiny", "roberta-tiny"};
    const pb_method_desc *const *reg = pb_method_registry(NULL);
    int checked = 0;
    for (int mi = 0; mi < 2; mi++)
        for (int d = 0; reg[d]; d++)
            for (size_t k = 0; k < sizeof kvs / sizeof kvs[0]; k++) {
                // only the option sets whose every key the method declares
                pb_method_config c;
                char err[512], buf[256];
                if (pb_method_config_init(&c, reg[d]->name, 1, err, sizeof err) != PB_OK) continue;
                snprintf(buf, sizeof buf, "%s", kvs[k]);
                int ok = 1;
                for (char *sv = NULL, *t = strtok_r(buf, " ", &sv); t && ok; t = strtok_r(NULL, " ", &sv))
                    ok = pb_method_config_set_kv(&c, t, err, sizeof err) == PB_OK;
                if (!ok) continue;
                pb_method_config_finish(&c);
                pb_model_config cfg;
                pb_model_config_builtin(models[mi], &cfg, err, sizeof err);
                pb_model *m = pb_model_create(E, &cfg, 1);
                pb_param_counts p0 = pb_model_count(m);
                pb_method_cost cost;
                pb_status se = pb_method_estimate(&c, &cfg, (double)p0.backbone, (double)p0.head, &cost, err, sizeof err);
                pb_status sa = pb_method_apply(m, &c, err, sizeof err);
                if (se == PB_ERR_ARG && sa == PB_ERR_ARG) { // a shape rule refuses this set: both agree
                    int nl = 0, nad = 0;
                    pb_linear *ls = pb_model_linears(m, &nl);
                    for (int i = 0; i < nl; i++) nad += ls[i].adapter != NULL;
                    EXPECT(nad == 0, "%s %s '%s': refused but %d adapters attached", models[mi], reg[d]->name, kvs[k], nad);
                    pb_model_free(m);
                    continue;
                }
                EXPECT(se == PB_OK && sa == PB_OK, "%s %s '%s': estimate %d apply %d: %s", models[mi], reg[d]->name,
                       kvs[k], se, sa, err);
                pb_param_counts pc = pb_model_count(m);
                EXPECT(cost.adapter == (double)pc.adapter && cost.trainable == (double)pc.trainable &&
                           cost.trainable_head == (double)(pc.trainable - pc.trainable_backbone),
                       "%s %s '%s': formula adapter %.0f trainable %.0f head %.0f, instantiated %zu %zu %zu", models[mi],
                       reg[d]->name, kvs[k], cost.adapter, cost.trainable, cost.trainable_head, pc.adapter, pc.trainable,
                       pc.trainable - pc.trainable_backbone);
                int nl = 0, nad = 0;
                pb_linear *ls = pb_model_linears(m, &nl);
                for (int i = 0; i < nl; i++) nad += ls[i].adapter != NULL;
                EXPECT(nad == cost.nsites, "%s %s '%s': %d adapters, the cost model counts %d sites", models[mi],
                       reg[d]->name, kvs[k], nad, cost.nsites);
                int nn = 0, nnad = 0;
                pb_norm *ns = pb_model_norms(m, &nn);
                for (int i = 0; i < nn; i++) nnad += ns[i].adapter != NULL;
                EXPECT(nnad == cost.nnorms, "%s %s '%s': %d norm adapters, the cost model counts %d", models[mi],
                       reg[d]->name, kvs[k], nnad, cost.nnorms);
                checked++;
                pb_model_free(m);
            }
    printf("formulas: %d (model, method, options) cases equal to the instantiated counts\n", checked);
    EXPECT(checked >= 20, "only %d formula cases ran", checked);
}

static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-30);
}

// Builds a random batch for model cfg (engine buffers owned by the caller via the returned arrays).
typedef struct {
    pb_batch b;
    float *pixels;
    int32_t *ids, *mask, *labels;
} tbatch;

static tbatch make_batch(const pb_model_config *cfg, int B, int T, pb_rng *r) {
    tbatch t;
    memset(&t, 0, sizeof(t));
    t.b.B = B;
    int32_t lab[8];
    for (int i = 0; i < B; i++) lab[i] = (int32_t)pb_rng_below(r, (uint32_t)cfg->num_labels);
    t.labels = pb_alloc_i32(E, B);
    pb_upload_i32(E, t.labels, lab, B);
    t.b.labels = t.labels;
    if (cfg->arch == PB_ARCH_VIT) {
        size_t n = (size_t)B * cfg->channels * cfg->image_size * cfg->image_size;
        float *h = pb_xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) h[i] = pb_rng_normal(r);
        t.pixels = pb_alloc(E, n);
        pb_upload(E, t.pixels, h, n);
        free(h);
        t.b.pixels = t.pixels;
        t.b.T = (cfg->image_size / cfg->patch_size) * (cfg->image_size / cfg->patch_size) + 1;
    } else {
        int32_t ids[64], mask[64];
        for (int i = 0; i < B * T; i++) {
            ids[i] = 3 + (int32_t)pb_rng_below(r, (uint32_t)(cfg->vocab_size - 3));
            mask[i] = 1;
        }
        ids[0] = 0;
        ids[T + T - 1] = cfg->pad_id; // one padded position in the second row
        mask[T + T - 1] = 0;
        t.ids = pb_alloc_i32(E, B * T);
        t.mask = pb_alloc_i32(E, B * T);
        pb_upload_i32(E, t.ids, ids, B * T);
        pb_upload_i32(E, t.mask, mask, B * T);
        t.b.ids = t.ids;
        t.b.mask = t.mask;
        t.b.T = T;
    }
    return t;
}

static void free_batch(tbatch *t) {
    pb_free(E, t->pixels); pb_free(E, t->ids); pb_free(E, t->mask); pb_free(E, t->labels);
}

static float *logits(pb_model *m, const tbatch *t) {
    const pb_model_config *cfg = pb_model_cfg(m);
    size_t n = (size_t)t->b.B * cfg->num_labels;
    const float *d = pb_model_forward(m, &t->b, 0, 0);
    float *h = pb_xmalloc(n * sizeof(float));
    pb_download(E, h, d, n);
    return h;
}

static void check_model_method(const char *model, const char *method, const char *variant,
                               const char *gate, const char *init, int rank) {
    char err[512], label[128];
    snprintf(label, sizeof(label), "%s %s %s/%s %s r=%d", model, method, variant, gate, init, rank);
    pb_model_config cfg;
    if (pb_model_config_builtin(model, &cfg, err, sizeof(err)) != PB_OK) { EXPECT(0, "%s", err); return; }
    pb_model *m = pb_model_create(E, &cfg, 3);
    pb_rng r;
    pb_rng_seed(&r, 5);
    tbatch t = make_batch(&cfg, 2, 8, &r);
    size_t nl = (size_t)2 * cfg.num_labels;
    float *l0 = logits(m, &t);
    pb_method_config c;
    char kv[256];
    int fourier = !strcmp(method, "fourierft"); // rank = n_frequency
    int n = rank < 0 ? snprintf(kv, sizeof kv, "%s", "") // the method has no size option
                     : snprintf(kv, sizeof kv, fourier ? "n_frequency=%d" : "rank=%d", rank);
    if (!strcmp(method, "aoft")) n += snprintf(kv + n, sizeof kv - n, " variant=%s gate=%s", variant, gate);
    if (init[0]) n += snprintf(kv + n, sizeof kv - n, strchr(init, '=') ? " %s" : " init=%s", init); // "k=v": as is
    if (strcmp(variant, "adapter")) // every target role
        snprintf(kv + n, sizeof kv - n, " targets=query,key,value,attention.output,intermediate,output");
    mc_make(&c, method, 11, kv);
    pb_status st = pb_method_apply(m, &c, err, sizeof(err));
    EXPECT(st == PB_OK, "%s: %s", label, err);
    if (st != PB_OK) { pb_model_free(m); free(l0); free_batch(&t); return; }
    int nlin = 0, nad = 0;
    pb_linear *ls = pb_model_linears(m, &nlin);
    for (int i = 0; i < nlin; i++) nad += ls[i].adapter != NULL;
    int want = 0; // every linear whose role the method targets
    for (int i = 0; i < nlin; i++) {
        char role[PB_NAME_MAX];
        pb_method_linear_role(ls[i].name, role, sizeof role);
        want += role[0] && pb_mc_list_has(&c, "targets", role);
    }
    EXPECT(nad == want && want > 0, "%s: %d adapters attached, want %d", label, nad, want);
    if (fourier) { // one basis per shape: q/k/v/attention.output share one, intermediate and output one each
        const void *bases[8];
        int nb = 0;
        for (int i = 0; i < nlin; i++) {
            const void *b = ((const pb_fourierft_state *)ls[i].adapter->state)->basis;
            int seen = 0;
            for (int j = 0; j < nb; j++) seen |= bases[j] == b;
            if (!seen && nb < 8) bases[nb++] = b;
        }
        EXPECT(nb == 3, "%s: %d FourierFT bases for 3 linear shapes", label, nb);
    }
    float *l1 = logits(m, &t);
    double e0 = rel(l1, l0, nl);
    EXPECT(e0 <= 1e-5, "%s: step-0 logits differ from pre-trained: %.3g", label, e0);
    // backward: every adapter tensor gets a finite gradient; move params off init first
    pb_rng_seed(&r, 9);
    int nt = 0;
    pb_param **tp = pb_model_trainable(m, &nt);
    for (int i = 0; i < nt; i++) {
        if (tp[i]->group != PB_GROUP_ADAPTER) continue;
        float *h = pb_xmalloc(tp[i]->numel * sizeof(float));
        pb_download(E, h, tp[i]->data, tp[i]->numel);
        for (size_t k = 0; k < tp[i]->numel; k++) h[k] += 0.05f * pb_rng_normal(&r);
        pb_upload(E, tp[i]->data, h, tp[i]->numel);
        free(h);
    }
    pb_params_zero_grad(E, tp, nt);
    pb_model_forward(m, &t.b, 1, 1);
    pb_model_loss(m, &t.b, 0.0f);
    pb_model_backward(m, &t.b);
    int bad = 0, nadp = 0;
    for (int i = 0; i < nt; i++) {
        if (tp[i]->group == PB_GROUP_BACKBONE) bad++;
        if (tp[i]->group != PB_GROUP_ADAPTER) continue;
        nadp++;
        double ss = pb_sumsq(E, tp[i]->grad, tp[i]->numel);
        if (!(ss > 0) || !isfinite(ss)) { bad++; printf("  no/bad grad for %s (%g)\n", tp[i]->name, ss); }
    }
    EXPECT(bad == 0 && nadp > 0, "%s: %d trainable tensors with wrong group or missing gradient", label, bad);
    float *l2 = logits(m, &t);
    int mergeable = pb_method_mergeable(m); // bottleneck adapters are not
    if (mergeable) pb_method_merge(m);
    float *l3 = logits(m, &t);
    double em = mergeable ? rel(l3, l2, nl) : 0, moved = rel(l2, l0, nl);
    EXPECT(em <= 1e-5, "%s: merged vs unmerged logits: %.3g", label, em);
    EXPECT(moved > 1e-4, "%s: perturbing the adapters did not change the logits (%.3g)", label, moved);
    printf("%-44s step0 %.2e merge %s%.2e (moved %.2e)\n", label, e0, mergeable ? "" : "n/a ", em, moved);
    free(l0); free(l1); free(l2); free(l3);
    free_batch(&t);
    pb_model_free(m);
}

static void check_errors(void) {
    char err[512] = "";
    pb_model_config cfg;
    pb_model_config_builtin("vit-tiny", &cfg, err, sizeof(err));
    pb_model *m = pb_model_create(E, &cfg, 1);
    pb_method_config c;
    mc_make(&c, "svfit", 0, "rank=193");
    EXPECT(pb_method_apply(m, &c, err, sizeof(err)) == PB_ERR_ARG && strstr(err, "rank"),
           "svfit rank above min(out,in) not rejected: '%s'", err);
    printf("errors: %s\n", err);
    pb_method_cost cost;
    EXPECT(pb_method_estimate(&c, &cfg, 0, 0, &cost, err, sizeof(err)) == PB_ERR_ARG && strstr(err, "rank"),
           "the cost model accepted the rank apply refused: '%s'", err);
    mc_make(&c, "pissa", 0, "rank=193 targets=key");
    EXPECT(pb_method_apply(m, &c, err, sizeof(err)) == PB_ERR_ARG && strstr(err, "rank"),
           "pissa rank above min(out,in) not rejected: '%s'", err);
    mc_make(&c, "aoft", 0, "rank=193 targets=value");
    EXPECT(pb_method_apply(m, &c, err, sizeof(err)) == PB_ERR_ARG && strstr(err, "rank"),
           "aoft bottleneck above min(out,in) not rejected: '%s'", err);
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    for (int i = 0; i < n; i++) EXPECT(!ls[i].adapter, "a failed apply left adapters behind");
    pb_model_free(m);
}

// Export as a PEFT directory, import into a fresh copy of the pre-trained model: same logits.
// PiSSA goes through the rank-2r conversion relative to the original weights.
static void check_peft_roundtrip(const char *model, const char *method) {
    char err[512], dir[] = "/tmp/pb_peft_XXXXXX";
    if (!mkdtemp(dir)) { EXPECT(0, "mkdtemp"); return; }
    pb_model_config cfg;
    pb_model_config_builtin(model, &cfg, err, sizeof(err));
    pb_model *m = pb_model_create(E, &cfg, 3);
    pb_rng r;
    pb_rng_seed(&r, 5);
    tbatch t = make_batch(&cfg, 2, 8, &r);
    size_t nl = (size_t)2 * cfg.num_labels;
    pb_method_config c;
    mc_make(&c, method, 0, "rank=4 alpha=6");
    pb_status st = pb_method_apply(m, &c, err, sizeof(err));
    EXPECT(st == PB_OK, "%s", err);
    int nt = 0;
    pb_param **tp = pb_model_trainable(m, &nt);
    for (int i = 0; i < nt; i++) { // adapters and head off their init
        float *h = pb_xmalloc(tp[i]->numel * sizeof(float));
        pb_download(E, h, tp[i]->data, tp[i]->numel);
        for (size_t k = 0; k < tp[i]->numel; k++) h[k] += 0.05f * pb_rng_normal(&r);
        pb_upload(E, tp[i]->data, h, tp[i]->numel);
        free(h);
    }
    float *l1 = logits(m, &t);
    st = pb_method_export_peft(m, &c, dir, err, sizeof(err));
    EXPECT(st == PB_OK, "export: %s", err);
    pb_model *m2 = pb_model_create(E, &cfg, 3);
    pb_method_config c2;
    st = pb_method_import_peft(m2, dir, &c2, err, sizeof(err));
    EXPECT(st == PB_OK, "import: %s", err);
    float *l2 = logits(m2, &t);
    double e = rel(l2, l1, nl);
    EXPECT(e <= 1e-5, "%s %s: PEFT export/import logits differ: %.3g", model, method, e);
    EXPECT(pb_mc_int(&c2, "rank") == (strcmp(method, "pissa") ? 4 : 8), "imported rank %d", pb_mc_int(&c2, "rank"));
    pb_param_counts pc = pb_model_count(m2);
    EXPECT(pc.trainable == pc.adapter + pc.head, "imported model: backbone not frozen");
    printf("%-12s %-6s PEFT export -> import: logits rel %.2e (r=%d alpha=%g)\n", model, method, e, pb_mc_int(&c2, "rank"),
           pb_mc_num(&c2, "alpha"));
    // A second import onto the same model must fail cleanly.
    EXPECT(pb_method_import_peft(m2, dir, NULL, err, sizeof(err)) == PB_ERR_ARG, "double import accepted");
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) printf("warning: could not remove %s\n", dir);
    free(l1); free(l2);
    free_batch(&t);
    pb_model_free(m);
    pb_model_free(m2);
}

// DyLoRA in a model: one b per training forward for every adapter (the first in model order draws
// it), b varies with the step seed, and an eval forward runs every adapter at eval_rank.
static void check_dylora_shared(const char *model) {
    char err[512];
    pb_model_config cfg;
    if (pb_model_config_builtin(model, &cfg, err, sizeof(err)) != PB_OK) { EXPECT(0, "%s", err); return; }
    pb_model *m = pb_model_create(E, &cfg, 3);
    pb_rng r;
    pb_rng_seed(&r, 5);
    tbatch t = make_batch(&cfg, 2, 8, &r);
    pb_method_config c;
    mc_make(&c, "dylora", 11, "rank=6 eval_rank=2 targets=query,key,value,attention.output,intermediate,output");
    pb_status st = pb_method_apply(m, &c, err, sizeof(err));
    EXPECT(st == PB_OK, "%s dylora: %s", model, err);
    int nlin = 0, same = 1, leaders = 0, seen[7] = {0};
    pb_linear *ls = pb_model_linears(m, &nlin);
    for (uint64_t step = 0; st == PB_OK && step < 40; step++) {
        pb_model_forward(m, &t.b, 1, 1000 + step);
        int b0 = ((pb_dylora_state *)ls[0].adapter->state)->b;
        seen[b0] = 1;
        for (int i = 0; i < nlin; i++) same &= ((pb_dylora_state *)ls[i].adapter->state)->b == b0;
    }
    pb_model_forward(m, &t.b, 0, 0);
    int at_eval = 1;
    for (int i = 0; st == PB_OK && i < nlin; i++) {
        pb_dylora_state *ds = ls[i].adapter->state;
        at_eval &= ds->b == 2;
        leaders += ds->leader;
    }
    int distinct = 0;
    for (int b = 1; b <= 6; b++) distinct += seen[b];
    EXPECT(same, "%s dylora: adapters of one forward ran at different ranks", model);
    EXPECT(leaders == 1, "%s dylora: %d adapters draw the rank, want 1", model, leaders);
    EXPECT(distinct >= 5 && !seen[0], "%s dylora: 40 steps drew only %d of the ranks 1..6", model, distinct);
    EXPECT(at_eval, "%s dylora: an eval forward did not run at eval_rank", model);
    printf("%-44s one b per step over %d linears, %d of 6 ranks drawn in 40 steps\n", model, nlin, distinct);
    free_batch(&t);
    pb_model_free(m);
}

// VPT on a whole ViT: the prompt gradients vs central differences of the float32 model's loss
// along random directions (rel <= 1e-3; the 1e-4 reference is ref_methods.py's), frozen backbone untouched, not mergeable,
// counts, and a RoBERTa refused without a change.
static void check_vpt(int deep) {
    char err[512];
    pb_model_config cfg;
    pb_model_config_builtin("vit-tiny", &cfg, err, sizeof err);
    pb_model *m = pb_model_create(E, &cfg, 3);
    pb_rng r;
    pb_rng_seed(&r, 5);
    tbatch t = make_batch(&cfg, 2, 8, &r);
    pb_method_config c;
    mc_make(&c, "vpt", 11, deep ? "tokens=3 depth=deep" : "tokens=3 depth=shallow");
    EXPECT(pb_method_apply(m, &c, err, sizeof err) == PB_OK, "vpt: %s", err);
    pb_param_counts pc = pb_model_count(m);
    size_t want = (size_t)3 * cfg.hidden * (deep ? cfg.layers : 1);
    EXPECT(pc.adapter == want, "vpt %s: %zu prompt parameters, want %zu", deep ? "deep" : "shallow", pc.adapter, want);
    EXPECT(!pb_method_mergeable(m), "vpt: reported mergeable");
    int nt = 0;
    pb_param **tp = pb_model_trainable(m, &nt);
    pb_params_zero_grad(E, tp, nt);
    pb_model_forward(m, &t.b, 0, 0);
    pb_model_loss(m, &t.b, 0.0f);
    pb_model_backward(m, &t.b);
    // directional derivatives over every prompt entry, along the gradient and 3 directions 45
    // degrees off it: g . u vs (L(w + h u) - L(w - h u)) / 2h; the signal is ~|g|, not one entry's
    // (which float32 rounding of the loss would swamp)
    int np = 0;
    size_t ntot = 0;
    pb_param *pp[64];
    for (int i = 0; i < nt && np < 64; i++)
        if (tp[i]->group == PB_GROUP_ADAPTER) { pp[np++] = tp[i]; ntot += tp[i]->numel; }
    float *w0 = pb_xmalloc(ntot * sizeof(float)), *u = pb_xmalloc(ntot * sizeof(float)), *wt = pb_xmalloc(ntot * sizeof(float));
    double *g = pb_xmalloc(ntot * sizeof(double)), worst = 0;
    for (int i = 0, off = 0; i < np; off += (int)pp[i]->numel, i++) {
        float *h = pb_xmalloc(pp[i]->numel * sizeof(float));
        pb_download(E, w0 + off, pp[i]->data, pp[i]->numel);
        pb_download(E, h, pp[i]->grad, pp[i]->numel);
        for (size_t k = 0; k < pp[i]->numel; k++) g[off + k] = h[k];
        free(h);
    }
    for (int dir = 0; dir < 4; dir++) {
        double un = 0, an = 0, L[2];
        // direction 0: the gradient's; then the gradient's plus an equal random part (45 degrees off)
        double gn = 0, rn = 0;
        for (size_t k = 0; k < ntot; k++) gn += g[k] * g[k];
        for (size_t k = 0; k < ntot; k++) {
            wt[k] = dir ? pb_rng_normal(&r) : 0.0f;
            rn += (double)wt[k] * wt[k];
        }
        for (size_t k = 0; k < ntot; k++) {
            u[k] = (float)(g[k] / sqrt(gn) + (dir ? wt[k] / sqrt(rn) : 0.0));
            un += (double)u[k] * u[k];
        }
        for (size_t k = 0; k < ntot; k++) an += g[k] * (u[k] /= (float)sqrt(un));
        for (int sgn = 0; sgn < 2; sgn++) {
            for (size_t k = 0; k < ntot; k++) wt[k] = w0[k] + (sgn ? -1e-2f : 1e-2f) * u[k];
            for (int i = 0, off = 0; i < np; off += (int)pp[i]->numel, i++) pb_upload(E, pp[i]->data, wt + off, pp[i]->numel);
            pb_model_forward(m, &t.b, 0, 0);
            L[sgn] = pb_model_loss(m, &t.b, 0.0f);
        }
        double fd = (L[0] - L[1]) / 2e-2, e = fabs(fd - an) / fmax(fabs(an), 1e-12);
        worst = fmax(worst, e);
        EXPECT(e <= 1e-3 && fabs(an) > 1e-6, "vpt %s: directional derivative %.6g vs fd %.6g (rel %.2e)",
               deep ? "deep" : "shallow", an, fd, e);
    }
    for (int i = 0, off = 0; i < np; off += (int)pp[i]->numel, i++) pb_upload(E, pp[i]->data, w0 + off, pp[i]->numel);
    printf("vit-tiny vpt %-7s fd along 4 directions over %zu prompt entries: worst rel err %.2e\n",
           deep ? "deep" : "shallow", ntot, worst);
    free(w0); free(u); free(wt); free(g);
    free_batch(&t);
    pb_model_free(m);
    // RoBERTa: refused, nothing changed
    pb_model_config_builtin("roberta-tiny", &cfg, err, sizeof err);
    m = pb_model_create(E, &cfg, 3);
    EXPECT(pb_method_apply(m, &c, err, sizeof err) == PB_ERR_ARG && strstr(err, "not a ViT"), "vpt on RoBERTa: '%s'", err);
    pb_model_trainable(m, &nt);
    EXPECT(nt == 0 && !pb_model_token_adapter(m), "vpt on RoBERTa changed the model (%d trainable)", nt);
    pb_model_free(m);
}

int main(int argc, char **argv) {
    int slow = argc > 1 && !strcmp(argv[1], "slow");
    char err[256];
    E = pb_engine_init(PB_DEVICE_CPU, 1, err, sizeof(err));
    if (!E) { printf("%s\n", err); return 1; }
    check_errors();
    check_formulas();
    // papers.md §7
    check_count("vit-b16", "lora", 8, 294912, 294912);
    check_count("vit-b16", "vera", 256, 24 * (256 + 768), 24 * (256 + 768));
    check_count_kv("vit-b16", "fourierft", "n_frequency=3000", 72000, 72000);   // FourierFT Table 5: 72K
    check_count_kv("vit-b16", "fourierft", "n_frequency=10000", 240000, 240000); // printed there as 239K
    check_count_kv("vit-b16", "adapter_p", "rank=8", 156768, 156768);     // HTA / AOFT "Adapter": 0.16M
    check_count_kv("vit-b16", "adaptformer", "rank=8", 156768, 156768);   // HTA table: 0.16M
    check_count_kv("vit-b16", "hta", "rank=1", 184320, 184320);           // HTA headline: 48 x 3,840
    check_count_kv("vit-b16", "hta", "targets=query,value", 92160, 92160); // HTA(W_q, W_v) 0.09M
    check_count_kv("vit-b16", "hta", "form=adapter", 46080, 46080);       // HTA(FC1, FC2) adapter form 0.05M
    check_count_kv("vit-b16", "ssf", "", 204288, 204288);                 // SSF: 72 linears + 25 LayerNorms
    // FacT-TK (U, V 2 r d, core r^3, P r x 144): r = 32 / 16, FacT's per-task ranks; their VTAB-1k
    // mean (13 tasks at 32, 6 at 16) is 68,985: HTA / AOFT tables' "FacT-TK<=32 0.07M"
    check_count_kv("vit-b16", "fact_tk", "rank=32", 86528, 86528);
    check_count_kv("vit-b16", "fact_tk", "rank=16", 30976, 30976);
    // FacT-TT (U, V 2 r d, a core per linear: 12 r^2 per layer): r = 16 / 8 / 4; their VTAB-1k mean
    // (9 tasks at 16, 9 at 8, 1 at 4) is 39,734 (the "FacT-TT<=16" row); r = 4: 8,448, FacT's "8K"
    check_count_kv("vit-b16", "fact_tt", "rank=16", 61440, 61440);
    check_count_kv("vit-b16", "fact_tt", "rank=8", 21504, 21504);
    check_count_kv("vit-b16", "fact_tt", "rank=4", 8448, 8448);
    if (slow) {
        check_count_kv("roberta-base", "ssf", "norms=false", 165888, 165888); // SSF on the linears only
        check_count_kv("roberta-base", "adapterdrop", "rank=16", 304320, 304320); // Adpt^D 0.3M
        check_count_kv("roberta-base", "adapterdrop", "rank=48", 894528, 894528); // Adpt^D 0.9M
        check_count_kv("roberta-large", "adapter_h", "rank=8", 835968, 835968);   // Adpt^H 0.8M
        check_count_kv("roberta-large", "adapter_h", "rank=64", 6343680, 6343680); // Adpt^H 6M
        check_count_kv("roberta-large", "adapter_p", "rank=16", 811392, 811392);  // Adpt^P 0.8M
        check_count_kv("roberta-large", "adapter_p", "rank=64", 3171840, 3171840); // Adpt^P 3M
        check_count("vit-b16", "dora", 16, 589824 + 24 * 768, 589824 + 24 * 768);
        check_count("vit-b16", "lora", 16, 589824, 589824);
        check_count("vit-b16", "full", -1, 0, 85798656);
        check_count("vit-b16", "head", -1, 0, 0);
        check_count("vit-b16", "aoft", 8, 24 * (2 * 768 + 8), 24 * (2 * 768 + 8));
        check_count("vit-b16", "svfit", 768, 18432, 18432);
        check_count("vit-b16", "svfit", 8, 24 * 8, 24 * 8);
        check_count("vit-b16", "pissa", 8, 294912, 294912);
        check_count("vit-l16", "lora", 8, 786432, 786432);
        check_count("vit-l16", "svfit", 768, 36864, 36864);
    }
    const char *models[] = {"vit-tiny", "roberta-tiny"};
    for (int k = 0; k < 2; k++) {
        check_model_method(models[k], "lora", "lora", "lambda", "kaiming", 4);
        check_model_method(models[k], "lora", "lora", "lambda", "gaussian", 4);
        check_model_method(models[k], "pissa", "lora", "lambda", "svd", 4);
        check_model_method(models[k], "pissa", "lora", "lambda", "niter_2", 4);
        check_model_method(models[k], "dora", "lora", "lambda", "kaiming", 4);
        check_model_method(models[k], "vera", "lora", "lambda", "", 8);
        check_model_method(models[k], "fourierft", "lora", "lambda", "zeros", 200);
        check_model_method(models[k], "adapter_h", "adapter", "lambda", "", 4); // "adapter": the method's own targets
        check_model_method(models[k], "adapter_p", "adapter", "lambda", "", 8);
        check_model_method(models[k], "adapterdrop", "adapter", "lambda", "drop_max=0", 4); // no layer dropped: every adapter trains
        check_model_method(models[k], "adaptformer", "adapter", "lambda", "", 4);
        check_model_method(models[k], "hta", "adapter", "lambda", "", 1);            // lora form on q, k, v, o
        check_model_method(models[k], "hta", "adapter", "lambda", "form=adapter", 2); // on the FFN output
        check_model_method(models[k], "dylora", "lora", "lambda", "eval_rank=3", 4); // eval / merge at b = 3
        check_model_method(models[k], "ssf", "lora", "lambda", "init=identity", -1); // linears and LayerNorms
        check_model_method(models[k], "svfit", "lora", "lambda", "", 16);
        check_model_method(models[k], "aoft", "lora", "lambda", "", 4);
        check_model_method(models[k], "aoft", "lora", "scalar", "", 4);
        check_model_method(models[k], "aoft", "adapter", "lambda", "", 4);
        check_model_method(models[k], "fact_tk", "lora", "lambda", "", 4);  // U, V, C shared by every linear
        check_model_method(models[k], "fact_tt", "lora", "lambda", "", 3);  // U, V shared, a core per linear
    }
    check_vpt(0);
    check_vpt(1);
    check_dylora_shared("vit-tiny");
    check_dylora_shared("roberta-tiny");
    check_peft_roundtrip("vit-tiny", "lora");
    check_peft_roundtrip("roberta-tiny", "lora");
    check_peft_roundtrip("vit-tiny", "pissa");
    check_peft_roundtrip("roberta-tiny", "dora");
    pb_engine_free(E);
    printf(pb_test_fails ? "test_methods_model: %d FAILED\n" : "test_methods_model: all passed\n", pb_test_fails);
    return pb_test_fails ? 1 : 0;
}
