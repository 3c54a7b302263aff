// adapterdrop.c: AdapterDrop (Rücklé et al., EMNLP 2021, arXiv 2010.11918), the tables' Adapter^D:
// Pfeiffer adapters (adapter_p.c: one bottleneck after each block's FFN output projection)
// trained with "robust AdapterDrop": each training step draws n in 0..drop_max (one n for the
// whole model) and the adapters of the first n layers are skipped — neither run nor trained that
// step — so the model stays usable when the lowest adapters are removed for speed. Evaluation
// skips the first eval_drop layers (0: every adapter runs). The parameters are those of every
// layer's adapter: RoBERTa-base m = 16: 12 x 25,360 = 304,320 ("0.3M"), m = 48: 894,528
// ("0.9M"), the LoRA / FourierFT / SVFit Adapter^D rows. Not in peft; not mergeable (nonlinear).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

// The step's draw, shared by every AdapterDrop adapter of a model (the first in model order, the
// leader, draws it; its forward runs first each step).
typedef struct {
    int n;     // adapters of layers < n are skipped this step
    int64_t t; // training forwards of the leader (sampling "cycle")
    int refs;
} drop_shared;

typedef struct {
    pb_bottleneck b;       // first: pb_bottleneck_* take the state
    int layer;             // encoder layer of the adapted linear
    int drop_max, eval_drop, cycle, leader;
    drop_shared *shared;
    int skipped;           // the last forward skipped this adapter
} drop_state;

static void drop_forward(pb_adapter *a, pb_engine *e, float *y, const float *x, int N, int train, uint64_t seed) {
    (void)x;
    drop_state *st = a->state;
    if (train && st->leader) {
        drop_shared *sh = st->shared;
        if (st->cycle) {
            sh->n = (int)(sh->t % (st->drop_max + 1));
        } else {
            pb_rng rng;
            pb_rng_seed(&rng, seed ^ 0xad0d0ull);
            int n = (int)(pb_rng_uniform(&rng) * (float)(st->drop_max + 1));
            sh->n = n > st->drop_max ? st->drop_max : n;
        }
        sh->t++;
    }
    st->skipped = st->layer < (train ? st->shared->n : st->eval_drop);
    if (train) // a skipped adapter sits this optimizer step out (torch: its grads stay None)
        for (int i = 0; i < a->nparams; i++) a->params[i].skip_step = st->skipped;
    if (!st->skipped) pb_bottleneck_forward(a, e, &st->b, y, y, N);
}

// A skipped adapter leaves dy (the gradient wrt z = y) as it is and gets no gradient.
static void drop_backward(pb_adapter *a, pb_engine *e, float *dx, float *dy, const float *x, int N) {
    (void)dx; (void)x;
    drop_state *st = a->state;
    if (!st->skipped) pb_bottleneck_backward(a, e, &st->b, dy, dy, N);
}

static void drop_free(pb_adapter *a, pb_engine *e) {
    drop_state *st = a->state;
    if (--st->shared->refs == 0) free(st->shared);
    pb_bottleneck_free(e, &st->b);
    pb_adapter_free_common(e, a);
}

static const pb_adapter_vtbl drop_vtbl = {"adapterdrop", 1, drop_forward, drop_backward, NULL, drop_free, NULL};

static pb_status drop_attach(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site, char *err,
                             size_t errlen) {
    if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", l->name);
    int layer = -1;
    if (sscanf(l->name, "encoder.layer.%d.", &layer) != 1 || layer < 0)
        return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s is not an encoder-layer linear", l->name);
    pb_adapter *a = pb_adapter_new(&drop_vtbl, l, 4, sizeof(drop_state));
    drop_state *st = a->state;
    pb_bottleneck_init(e, a, &st->b, l->out, pb_mc_int(c, "rank"), c, site->index);
    st->layer = layer;
    st->drop_max = pb_mc_int(c, "drop_max");
    if (st->drop_max < 0) st->drop_max = site->nlinears > 0 ? site->nlinears / 6 - 1 : 0; // L - 1 (6 linears a layer)
    st->eval_drop = pb_mc_int(c, "eval_drop");
    st->cycle = !strcmp(pb_mc_str(c, "sampling"), "cycle");
    for (int i = 0; site->linears && i < site->nlinears && i < site->index && !st->shared; i++) {
        const pb_adapter *o = site->linears[i].adapter;
        if (o && o->vt == &drop_vtbl) st->shared = ((const drop_state *)o->state)->shared;
    }
    if (!st->shared) {
        st->shared = pb_xcalloc(1, sizeof(drop_shared));
        st->leader = 1;
    }
    st->shared->refs++;
    l->adapter = a;
    return PB_OK;
}

static const pb_method_opt drop_opts[] = {
    {"rank", PB_OPT_INT, "16", 1, PB_OPT_RANK_MAX, 0, NULL, "m: bottleneck width (16: the tables' 0.3M, 48: 0.9M)"},
    {"scaling", PB_OPT_NUM, "1", -1e6, 1e6, 0, NULL, "s: out += s * up(act(down(u)))"},
    {"act", PB_OPT_ENUM, "relu", 0, 0, 0, "relu|gelu", "bottleneck nonlinearity"},
    {"init", PB_OPT_ENUM, "lora", 0, 0, 0, "lora|houlsby",
     "lora: down kaiming-uniform, up 0 (step 0 = pre-trained); houlsby: both N(0, 0.01^2)"},
    {"drop_max", PB_OPT_INT, "-1", -1, 4096, 0, NULL,
     "training skips the adapters of the first n layers, n ~ U{0..drop_max} per step; -1 = layers - 1"},
    {"eval_drop", PB_OPT_INT, "0", 0, 4096, 0, NULL, "evaluation skips the adapters of the first eval_drop layers"},
    {"sampling", PB_OPT_ENUM, "uniform", 0, 0, 0, "uniform|cycle",
     "n per training step: uniform (the paper's robust AdapterDrop) or 0, 1, ..., drop_max in turn"},
    {"targets", PB_OPT_LIST, "output", 1, 2, 0, "attention.output|output",
     "projections followed by an adapter (Pfeiffer: the FFN output)"},
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_adapterdrop = {
    .name = "adapterdrop",
    .summary = "AdapterDrop (Adapter^D): Pfeiffer adapters, the first n ~ U{0..drop_max} layers' skipped each step",
    .reference = "PyTorch module from Rücklé et al. 2021 (arXiv 2010.11918) + finite differences; not in peft",
    .opts = drop_opts,
    .nopts = (int)(sizeof drop_opts / sizeof drop_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_params = pb_bottleneck_site_params,
    .site_flops = pb_bottleneck_site_flops,
    .attach = drop_attach,
};
