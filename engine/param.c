// param.c: named parameter tensors with grad/AdamW state allocated only while trainable.
// defines: pb_param_init, pb_param_free, pb_param_set_trainable, pb_params_zero_grad,
//          pb_params_adamw_step
#include "param.h"
#include <string.h>

// Allocates p->data (zeroed, engine memory); p owns it until pb_param_free. p starts frozen.
void pb_param_init(pb_engine *e, pb_param *p, const char *name, int ndim, const int64_t *shape,
                   pb_param_group group) {
    PB_CHECK(ndim >= 0 && ndim <= PB_MAX_DIMS, "param %s: ndim %d", name, ndim);
    memset(p, 0, sizeof *p);
    PB_CHECK(strlen(name) < PB_NAME_MAX, "param name too long: %s", name);
    strcpy(p->name, name);
    p->ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        PB_CHECK(shape[i] >= 0, "param %s: negative dim %d", name, i);
        p->shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    p->numel = numel;
    p->group = group;
    p->data = pb_alloc(e, numel);
}

// Releases data, grad, m, v; leaves p zeroed (safe to free twice).
void pb_param_free(pb_engine *e, pb_param *p) {
    pb_free(e, p->data);
    pb_free(e, p->grad);
    pb_free(e, p->m);
    pb_free(e, p->v);
    memset(p, 0, sizeof *p);
}

// On: allocates a zeroed grad (moments come lazily at the first step). Off: frees grad/m/v, so
// turning a param back on restarts its AdamW state.
void pb_param_set_trainable(pb_engine *e, pb_param *p, int trainable) {
    if (trainable) {
        if (!p->grad) p->grad = pb_alloc(e, p->numel);
        p->trainable = 1;
    } else {
        pb_free(e, p->grad);
        pb_free(e, p->m);
        pb_free(e, p->v);
        p->grad = p->m = p->v = NULL;
        p->trainable = 0;
    }
}

void pb_params_zero_grad(pb_engine *e, pb_param **ps, int n) {
    for (int i = 0; i < n; i++)
        if (ps[i]->trainable && ps[i]->grad) pb_zero(e, ps[i]->grad, ps[i]->numel);
}

// Skips frozen params; weight decay only where !no_decay; m/v allocated zeroed on first use.
void pb_params_adamw_step(pb_engine *e, pb_param **ps, int n, const pb_adamw_config *cfg, int step) {
    for (int i = 0; i < n; i++) {
        pb_param *p = ps[i];
        if (!p->trainable) continue;
        if (p->skip_step) { // unused by this step's forward: no update, no decay, moments kept
            p->skipped++;
            continue;
        }
        PB_CHECK(p->grad, "trainable param %s has no grad", p->name);
        if (!p->m) p->m = pb_alloc(e, p->numel);
        if (!p->v) p->v = pb_alloc(e, p->numel);
        float wd = p->no_decay ? 0.0f : cfg->weight_decay;
        pb_adamw_step(e, p->data, p->grad, p->m, p->v, p->numel, cfg->lr, cfg->beta1, cfg->beta2,
                      cfg->eps, wd, step - p->skipped);
    }
}
