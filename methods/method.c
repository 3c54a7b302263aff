// method.c: method configuration, application to a model, merging, and the method registry.
#include <string.h>
#include <stdio.h>
#include "adapter.h"

static const char *const method_names[] = {"full", "head", NULL};

const char *const *pb_method_names(void) { return method_names; }

void pb_method_config_default(pb_method_config *c, const char *method) {
    memset(c, 0, sizeof(*c));
    snprintf(c->method, sizeof(c->method), "%s", method ? method : "lora");
    c->rank = 8;
    c->alpha = 0;
    c->ntargets = 2;
    snprintf(c->targets[0], sizeof(c->targets[0]), "query");
    snprintf(c->targets[1], sizeof(c->targets[1]), "value");
    snprintf(c->init, sizeof(c->init), "kaiming");
    snprintf(c->variant, sizeof(c->variant), "lora");
    snprintf(c->gate, sizeof(c->gate), "lambda");
    c->train_head = 1;
}

// Sets every parameter of the model frozen except the groups asked for.
static void set_trainable_groups(pb_model *m, int backbone, int head) {
    pb_engine *e = pb_model_engine(m);
    int n = 0;
    pb_param **ps = pb_model_params(m, &n);
    for (int i = 0; i < n; i++) {
        int on = (ps[i]->group == PB_GROUP_BACKBONE && backbone) || (ps[i]->group == PB_GROUP_HEAD && head);
        pb_param_set_trainable(e, ps[i], on);
    }
}

pb_status pb_method_apply(pb_model *m, const pb_method_config *c, char *err, size_t errlen) {
    if (!strcmp(c->method, "full")) {
        set_trainable_groups(m, 1, 1);
        return PB_OK;
    }
    if (!strcmp(c->method, "head")) {
        set_trainable_groups(m, 0, 1);
        return PB_OK;
    }
    return pb_errf(PB_ERR_ARG, err, errlen, "method: unknown method '%s' (known: full, head)", c->method);
}

void pb_method_merge(pb_model *m) {
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    pb_engine *e = pb_model_engine(m);
    for (int i = 0; i < n; i++) {
        pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        a->vt->merge(a, e, ls[i].w->data, ls[i].b ? ls[i].b->data : NULL);
        a->vt->free(a, e);
        ls[i].adapter = NULL;
    }
}
