// method.c: application of a method to a model (targets, freezing, attaching), merging and the
// method registry.
#include <ctype.h>
#include <string.h>
#include <stdio.h>
#include "methods_internal.h"

static const char *const method_names[] = {"full", "head", "lora", "pissa", "svfit", "aoft", NULL};

const char *const *pb_method_names(void) { return method_names; }

// ----------------------------------------------------------------------------
// Targets

static const char *const known_targets[] = {"query", "key", "value", "attention.output",
                                             "intermediate", "output", NULL};

// The role of an encoder linear from its module path: "encoder.layer.3.attention.attention.query"
// -> "query", "...attention.output.dense" -> "attention.output", "...output.dense" -> "output".
// Writes "" when the path is not an encoder-layer linear.
static void linear_role(const char *name, char *role, size_t n) {
    role[0] = 0;
    const char *p = strstr(name, "layer.");
    while (p && !isdigit((unsigned char)p[6])) p = strstr(p + 1, "layer.");
    if (!p) return;
    p += 6;
    while (isdigit((unsigned char)*p)) p++;
    if (*p != '.') return;
    p++;
    if (!strncmp(p, "attention.attention.", 20)) p += 20;
    else if (!strncmp(p, "attention.self.", 15)) p += 15;
    snprintf(role, n, "%s", p);
    size_t len = strlen(role);
    if (len > 6 && !strcmp(role + len - 6, ".dense")) role[len - 6] = 0;
}

static int is_target(const pb_method_config *c, const char *role, int use_output_only) {
    if (use_output_only) return !strcmp(role, "output");
    for (int t = 0; t < c->ntargets; t++)
        if (!strcmp(c->targets[t], role)) return 1;
    return 0;
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

typedef pb_status (*attach_fn)(pb_engine *, pb_linear *, const pb_method_config *, int, char *, size_t);

pb_status pb_method_apply(pb_model *m, const pb_method_config *c, char *err, size_t errlen) {
    if (!strcmp(c->method, "full")) {
        set_trainable_groups(m, 1, 1);
        return PB_OK;
    }
    if (!strcmp(c->method, "head")) {
        set_trainable_groups(m, 0, 1);
        return PB_OK;
    }
    attach_fn fn = NULL;
    if (!strcmp(c->method, "lora")) fn = pb_lora_attach;
    else if (!strcmp(c->method, "pissa")) fn = pb_pissa_attach;
    else if (!strcmp(c->method, "svfit")) fn = pb_svfit_attach;
    else if (!strcmp(c->method, "aoft")) fn = pb_aoft_attach;
    else
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "method: unknown method '%s' (known: full, head, lora, pissa, svfit, aoft)", c->method);
    if (c->ntargets < 1 || c->ntargets > PB_MAX_TARGETS)
        return pb_errf(PB_ERR_ARG, err, errlen, "targets: need 1..%d module names (got %d)", PB_MAX_TARGETS,
                       c->ntargets);
    for (int t = 0; t < c->ntargets; t++) {
        int ok = 0;
        for (int k = 0; known_targets[k]; k++) ok |= !strcmp(known_targets[k], c->targets[t]);
        if (!ok)
            return pb_errf(PB_ERR_ARG, err, errlen,
                           "targets: unknown module '%s' (known: query, key, value, attention.output, "
                           "intermediate, output)", c->targets[t]);
    }
    // Adapter+AOFT sits after the FFN output (papers.md §6.5); the default q,v target list
    // means "not chosen" there, any other explicit list is honoured.
    int output_only = !strcmp(c->method, "aoft") && !strcmp(c->variant, "adapter") && c->ntargets == 2 &&
                      !strcmp(c->targets[0], "query") && !strcmp(c->targets[1], "value");
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    // Validate every target layer before touching the model, so a bad rank leaves it unchanged.
    int hits = 0;
    for (int i = 0; i < n; i++) {
        char role[PB_NAME_MAX];
        linear_role(ls[i].name, role, sizeof(role));
        if (!is_target(c, role, output_only)) continue;
        hits++;
        if (ls[i].adapter) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", ls[i].name);
        int k = PB_MIN(ls[i].in, ls[i].out);
        if (!strcmp(c->method, "aoft") && !strcmp(c->variant, "adapter")) k = ls[i].out;
        if (strcmp(c->method, "lora") && c->rank > k)
            return pb_errf(PB_ERR_ARG, err, errlen, "rank: %s needs rank <= min(out,in) = %d for %s (got %d)",
                           c->method, k, ls[i].name, c->rank);
        if (c->rank < 1) return pb_errf(PB_ERR_ARG, err, errlen, "rank: must be >= 1 (got %d)", c->rank);
    }
    if (!hits) return pb_errf(PB_ERR_ARG, err, errlen, "targets: no linear layer of the model matches");
    set_trainable_groups(m, 0, c->train_head);
    pb_engine *e = pb_model_engine(m);
    for (int i = 0; i < n; i++) {
        char role[PB_NAME_MAX];
        linear_role(ls[i].name, role, sizeof(role));
        if (!is_target(c, role, output_only)) continue;
        pb_status st = fn(e, &ls[i], c, i, err, errlen);
        if (st != PB_OK) return st;
    }
    return PB_OK;
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

int64_t pb_method_aoft_clamps(pb_model *m) {
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        pb_adapter *a = ls[i].adapter;
        if (a && a->vt->forward == pb_aoft_vtbl.forward) total += pb_aoft_clamp_count(a, pb_model_engine(m));
    }
    return total;
}
