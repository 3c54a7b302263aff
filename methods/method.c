// method.c: the machinery behind the method table (method.h): option parsing and validation
// from text and JSON, config accessors, the cost model, and applying a method at its site.
// Nothing here knows a method by name: everything comes from the descriptors.
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "methods_internal.h"

// ----------------------------------------------------------------------------
// Registry lookups

const pb_method_desc *pb_method_find(const char *name) {
    if (!name) return NULL;
    const pb_method_desc *const *r = pb_method_registry(NULL);
    for (int i = 0; r[i]; i++)
        if (!strcmp(r[i]->name, name)) return r[i];
    return NULL;
}

void pb_method_list(char *out, size_t n) {
    const pb_method_desc *const *r = pb_method_registry(NULL);
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; r[i] && used < n; i++) used += (size_t)snprintf(out + used, n - used, "%s%s", i ? ", " : "", r[i]->name);
}

static int opt_index(const pb_method_desc *d, const char *key) {
    for (int i = 0; i < d->nopts; i++)
        if (!strcmp(d->opts[i].key, key)) return i;
    return -1;
}

const pb_method_opt *pb_method_opt_find(const pb_method_desc *d, const char *key) {
    int i = opt_index(d, key);
    return i < 0 ? NULL : &d->opts[i];
}

int pb_method_option_key(const char *key) {
    const pb_method_desc *const *r = pb_method_registry(NULL);
    for (int i = 0; r[i]; i++)
        if (opt_index(r[i], key) >= 0) return 1;
    return 0;
}

// ----------------------------------------------------------------------------
// Option values

// 1 if s is one of the '|'-separated choices ("x_N" matches "x_" + digits).
static int choice_ok(const char *choices, const char *s) {
    const char *p = choices;
    while (*p) {
        const char *q = strchr(p, '|');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n >= 2 && p[n - 2] == '_' && p[n - 1] == 'N') {
            if (!strncmp(s, p, n - 1) && s[n - 1]) {
                const char *t = s + n - 1;
                while (isdigit((unsigned char)*t)) t++;
                if (!*t && strlen(s + n - 1) <= 6) return 1;
            }
        } else if (strlen(s) == n && !strncmp(s, p, n)) {
            return 1;
        }
        p = q ? q + 1 : p + n;
    }
    return 0;
}

static void choices_text(const char *choices, char *out, size_t n) {
    snprintf(out, n, "%s", choices);
    for (char *p = out; *p; p++)
        if (*p == '|') *p = ',';
}

static pb_status bad(const pb_method_config *c, const pb_method_opt *o, const char *got, char *err, size_t errlen) {
    char allowed[256];
    switch (o->type) {
    case PB_OPT_INT: snprintf(allowed, sizeof allowed, "an integer in [%.17g, %.17g]", o->min, o->max); break;
    case PB_OPT_NUM:
        snprintf(allowed, sizeof allowed, "a number in [%.17g, %.17g%s", o->min, o->max, o->max_open ? ")" : "]");
        break;
    case PB_OPT_BOOL: snprintf(allowed, sizeof allowed, "true or false"); break;
    case PB_OPT_ENUM: {
        char ch[200];
        choices_text(o->choices, ch, sizeof ch);
        snprintf(allowed, sizeof allowed, "one of %s%s", ch, strstr(o->choices, "_N") ? " (N an integer)" : "");
        break;
    }
    default: {
        char ch[200];
        choices_text(o->choices, ch, sizeof ch);
        snprintf(allowed, sizeof allowed, "%.0f to %.0f distinct names of %s", o->min, o->max, ch);
    }
    }
    return pb_errf(PB_ERR_ARG, err, errlen, "%s: %s option: expected %s (got %s)", o->key, c->desc->name, allowed, got);
}

// Parses text into value v of option o (validated). Lists are comma-separated.
static pb_status opt_parse(const pb_method_config *c, const pb_method_opt *o, const char *text, pb_opt_value *v,
                           char *err, size_t errlen) {
    char got[96];
    snprintf(got, sizeof got, "'%.80s'", text);
    memset(v, 0, sizeof(*v));
    if (o->type == PB_OPT_INT || o->type == PB_OPT_NUM) {
        char *end;
        double x = strtod(text, &end);
        if (!*text || *end || !isfinite(x) || x < o->min || x > o->max || (o->max_open && x >= o->max) ||
            (o->type == PB_OPT_INT && x != floor(x)))
            return bad(c, o, got, err, errlen);
        v->num = x;
        return PB_OK;
    }
    if (o->type == PB_OPT_BOOL) {
        if (!strcmp(text, "true") || !strcmp(text, "1")) v->num = 1;
        else if (!strcmp(text, "false") || !strcmp(text, "0")) v->num = 0;
        else return bad(c, o, got, err, errlen);
        return PB_OK;
    }
    if (strlen(text) >= sizeof v->str) return bad(c, o, "a value too long", err, errlen);
    if (o->type == PB_OPT_ENUM) {
        if (o->choices && !choice_ok(o->choices, text)) return bad(c, o, got, err, errlen);
        snprintf(v->str, sizeof v->str, "%s", text);
        return PB_OK;
    }
    // LIST: distinct items of choices
    char buf[PB_OPT_STR_MAX];
    snprintf(buf, sizeof buf, "%s", text);
    int n = 0;
    size_t used = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->choices && !choice_ok(o->choices, tok)) return bad(c, o, got, err, errlen);
        // a duplicate item is an error
        char probe[PB_OPT_STR_MAX + 2];
        snprintf(probe, sizeof probe, ",%s,", v->str);
        char item[PB_OPT_STR_MAX + 2];
        snprintf(item, sizeof item, ",%s,", tok);
        if (used && strstr(probe, item)) return bad(c, o, got, err, errlen);
        used += (size_t)snprintf(v->str + used, sizeof v->str - used, "%s%s", n ? "," : "", tok);
        n++;
    }
    if (n < o->min || n > o->max) return bad(c, o, got, err, errlen);
    return PB_OK;
}

pb_status pb_method_config_init(pb_method_config *c, const char *name, uint64_t seed, char *err, size_t errlen) {
    memset(c, 0, sizeof(*c));
    c->desc = pb_method_find(name);
    if (!c->desc) {
        char known[512];
        pb_method_list(known, sizeof known);
        return pb_errf(PB_ERR_ARG, err, errlen, "method: unknown method '%s' (known: %s)", name ? name : "", known);
    }
    c->seed = seed;
    PB_CHECK(c->desc->nopts <= PB_METHOD_MAX_OPTS, "method %s declares %d options (max %d)", name, c->desc->nopts,
             PB_METHOD_MAX_OPTS);
    for (int i = 0; i < c->desc->nopts; i++) {
        char e2[256];
        pb_status st = opt_parse(c, &c->desc->opts[i], c->desc->opts[i].def, &c->v[i], e2, sizeof e2);
        PB_CHECK(st == PB_OK, "method %s: default of option %s does not validate: %s", name, c->desc->opts[i].key, e2);
    }
    return PB_OK;
}

static pb_status no_option(const pb_method_config *c, const char *key, char *err, size_t errlen) {
    char list[512] = "";
    size_t u = 0;
    for (int i = 0; i < c->desc->nopts && u < sizeof list; i++)
        u += (size_t)snprintf(list + u, sizeof list - u, "%s%s", i ? ", " : "", c->desc->opts[i].key);
    return pb_errf(PB_ERR_ARG, err, errlen, "%s: method '%s' has no such option (its options: %s)", key, c->desc->name,
                   list[0] ? list : "none");
}

pb_status pb_method_config_set(pb_method_config *c, const char *key, const char *text, char *err, size_t errlen) {
    int i = opt_index(c->desc, key);
    if (i < 0) return no_option(c, key, err, errlen);
    pb_opt_value v;
    pb_status st = opt_parse(c, &c->desc->opts[i], text, &v, err, errlen);
    if (st) return st;
    v.set = 1;
    c->v[i] = v;
    return PB_OK;
}

pb_status pb_method_config_set_kv(pb_method_config *c, const char *kv, char *err, size_t errlen) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || eq - kv >= 64)
        return pb_errf(PB_ERR_ARG, err, errlen, "--opt: expected key=value (got '%.80s')", kv);
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
    return pb_method_config_set(c, key, eq + 1, err, errlen);
}

pb_status pb_method_config_set_json(pb_method_config *c, const char *key, const cJSON *v, char *err, size_t errlen) {
    int i = opt_index(c->desc, key);
    if (i < 0) return no_option(c, key, err, errlen);
    const pb_method_opt *o = &c->desc->opts[i];
    char text[PB_OPT_STR_MAX];
    int ok = 1;
    if (o->type == PB_OPT_INT || o->type == PB_OPT_NUM) {
        ok = cJSON_IsNumber(v);
        if (ok) snprintf(text, sizeof text, "%.17g", v->valuedouble);
    } else if (o->type == PB_OPT_BOOL) {
        ok = cJSON_IsBool(v);
        if (ok) snprintf(text, sizeof text, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (o->type == PB_OPT_ENUM) {
        ok = cJSON_IsString(v) && v->valuestring[0] && !strchr(v->valuestring, ',') &&
             strlen(v->valuestring) < sizeof text;
        if (ok) snprintf(text, sizeof text, "%s", v->valuestring);
    } else {
        ok = cJSON_IsArray(v);
        size_t u = 0;
        text[0] = 0;
        for (const cJSON *x = ok ? v->child : NULL; x && ok; x = x->next) {
            ok = cJSON_IsString(x) && x->valuestring[0] && !strchr(x->valuestring, ',') &&
                 u + strlen(x->valuestring) + 2 < sizeof text;
            if (ok) u += (size_t)snprintf(text + u, sizeof text - u, "%s%s", u ? "," : "", x->valuestring);
        }
        if (ok && !text[0] && o->min > 0) return bad(c, o, "an empty list", err, errlen);
    }
    if (!ok) {
        char *s = cJSON_PrintUnformatted(v);
        char got[96];
        snprintf(got, sizeof got, "%.80s", s ? s : "?");
        free(s);
        return bad(c, o, got, err, errlen);
    }
    return pb_method_config_set(c, key, text, err, errlen);
}

void pb_method_config_finish(pb_method_config *c) {
    if (c->desc->resolve) c->desc->resolve(c);
}

pb_status pb_method_config_from_json(const cJSON *mj, uint64_t seed, pb_method_config *c, char *err, size_t errlen) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(mj, "method");
    pb_status st = pb_method_config_init(c, cJSON_IsString(n) ? n->valuestring : "", seed, err, errlen);
    if (st) return st;
    for (const cJSON *x = mj ? mj->child : NULL; x; x = x->next) {
        if (opt_index(c->desc, x->string) < 0) continue; // method, label, ref, recipe
        if ((st = pb_method_config_set_json(c, x->string, x, err, errlen))) return st;
    }
    pb_method_config_finish(c);
    return PB_OK;
}

static cJSON *value_json(const pb_method_opt *o, const pb_opt_value *v) {
    switch (o->type) {
    case PB_OPT_INT:
    case PB_OPT_NUM: return cJSON_CreateNumber(v->num);
    case PB_OPT_BOOL: return cJSON_CreateBool(v->num != 0);
    case PB_OPT_ENUM: return cJSON_CreateString(v->str);
    default: {
        cJSON *a = cJSON_CreateArray();
        char buf[PB_OPT_STR_MAX];
        snprintf(buf, sizeof buf, "%s", v->str);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(a, cJSON_CreateString(t));
        return a;
    }
    }
}

void pb_method_config_to_json(const pb_method_config *c, cJSON *obj) {
    for (int i = 0; i < c->desc->nopts; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, c->desc->opts[i].key);
        cJSON_AddItemToObject(obj, c->desc->opts[i].key, value_json(&c->desc->opts[i], &c->v[i]));
    }
}

cJSON *pb_method_opt_default_json(const pb_method_opt *o) {
    pb_method_config tmp;
    memset(&tmp, 0, sizeof tmp);
    pb_method_desc d = {.name = "?", .opts = o, .nopts = 1};
    tmp.desc = &d;
    pb_opt_value v;
    char e[256];
    PB_CHECK(opt_parse(&tmp, o, o->def, &v, e, sizeof e) == PB_OK, "default of %s: %s", o->key, e);
    return value_json(o, &v);
}

// ----------------------------------------------------------------------------
// Accessors

static int need(const pb_method_config *c, const char *key, pb_opt_type t1, pb_opt_type t2) {
    PB_CHECK(c && c->desc, "method config not initialised (reading '%s')", key);
    int i = opt_index(c->desc, key);
    PB_CHECK(i >= 0, "method %s reads option '%s' it does not declare", c->desc->name, key);
    PB_CHECK(c->desc->opts[i].type == t1 || c->desc->opts[i].type == t2, "method %s: option '%s' read with the wrong type",
             c->desc->name, key);
    return i;
}

int pb_mc_has(const pb_method_config *c, const char *key) { return c && c->desc && opt_index(c->desc, key) >= 0; }
int pb_mc_int(const pb_method_config *c, const char *key) { return (int)c->v[need(c, key, PB_OPT_INT, PB_OPT_INT)].num; }
double pb_mc_num(const pb_method_config *c, const char *key) { return c->v[need(c, key, PB_OPT_NUM, PB_OPT_INT)].num; }
int pb_mc_bool(const pb_method_config *c, const char *key) { return c->v[need(c, key, PB_OPT_BOOL, PB_OPT_BOOL)].num != 0; }
const char *pb_mc_str(const pb_method_config *c, const char *key) {
    return c->v[need(c, key, PB_OPT_ENUM, PB_OPT_LIST)].str;
}
int pb_mc_set_by_user(const pb_method_config *c, const char *key) {
    int i = opt_index(c->desc, key);
    return i >= 0 && c->v[i].set;
}
int pb_mc_list_has(const pb_method_config *c, const char *key, const char *role) {
    char probe[PB_OPT_STR_MAX + 2], item[PB_NAME_MAX + 2];
    snprintf(probe, sizeof probe, ",%s,", pb_mc_str(c, key));
    snprintf(item, sizeof item, ",%s,", role);
    return strstr(probe, item) != NULL;
}
void pb_mc_put_str(pb_method_config *c, const char *key, const char *s) {
    pb_opt_value *v = &c->v[need(c, key, PB_OPT_ENUM, PB_OPT_LIST)];
    snprintf(v->str, sizeof v->str, "%s", s);
}

// ----------------------------------------------------------------------------
// Sites

void pb_method_linear_role(const char *name, char *role, size_t n) {
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

int pb_method_roles(const pb_model_config *cfg, const char **role, int *in, int *out, int max) {
    static const char *const names[6] = {"query", "key", "value", "attention.output", "intermediate", "output"};
    int D = cfg->hidden, M = cfg->intermediate;
    const int shp[6][2] = {{D, D}, {D, D}, {D, D}, {D, D}, {D, M}, {M, D}};
    int n = max < 6 ? max : 6;
    for (int i = 0; i < n; i++) {
        role[i] = names[i];
        in[i] = shp[i][0];
        out[i] = shp[i][1];
    }
    return n;
}

// Backbone kinds (PB_PKIND_*) a method unfreezes besides whole groups.
static unsigned unfreeze_kinds(unsigned u) {
    return (u & PB_UNFREEZE_BIAS ? PB_PKIND_BIAS : 0u) | (u & PB_UNFREEZE_NORM ? PB_PKIND_NORM : 0u);
}

static pb_status rank_rule(const pb_method_config *c, int in, int out, const char *where, char *err, size_t errlen) {
    const char *why = c->desc->site_check ? c->desc->site_check(c, in, out) : NULL;
    if (why) return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s cannot adapt %s (%d -> %d): %s", c->desc->name, where,
                            in, out, why);
    const char *key = c->desc->size_opt ? c->desc->size_opt : "rank";
    if (!c->desc->rank_limit || !pb_mc_has(c, key)) return PB_OK;
    int lim = c->desc->rank_limit(c, in, out), r = pb_mc_int(c, key);
    if (lim > 0 && r > lim)
        return pb_errf(PB_ERR_ARG, err, errlen, "%s: %s needs %s <= %d for %s (%d -> %d) (got %d)", key, c->desc->name,
                       key, lim, where, in, out, r);
    return PB_OK;
}

pb_status pb_method_estimate(const pb_method_config *c, const pb_model_config *cfg, double backbone, double head,
                             pb_method_cost *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    const pb_method_desc *d = c->desc;
    int train_head = (d->unfreeze & PB_UNFREEZE_HEAD) && (!pb_mc_has(c, "train_head") || pb_mc_bool(c, "train_head"));
    unsigned kinds = unfreeze_kinds(d->unfreeze);
    out->trainable_backbone = d->unfreeze & PB_UNFREEZE_BACKBONE ? backbone
                              : kinds                           ? (double)pb_model_config_count_kind(cfg, kinds)
                                                                : 0;
    out->trainable_head = train_head ? head : 0;
    if (d->site == PB_SITE_LINEAR) {
        const char *role[6];
        int in[6], o[6];
        int n = pb_method_roles(cfg, role, in, o, 6);
        for (int i = 0; i < n; i++) {
            if (!pb_mc_list_has(c, "targets", role[i])) continue;
            char where[64];
            snprintf(where, sizeof where, "every %s linear", role[i]);
            pb_status st = rank_rule(c, in[i], o[i], where, err, errlen);
            if (st) return st;
            out->adapter += cfg->layers * d->site_params(c, role[i], in[i], o[i]);
            out->adapter_flops += cfg->layers * d->site_flops(c, role[i], in[i], o[i]);
            out->nsites += cfg->layers;
        }
        if (d->shared_params && out->nsites) out->adapter += d->shared_params(c, cfg);
    }
    if (pb_method_norm_site(c)) {
        int nn = pb_model_config_norms(cfg);
        out->adapter += nn * d->norm_params(c, cfg->hidden);
        out->adapter_flops += nn * d->norm_flops(c, cfg->hidden);
        out->nnorms = nn;
    }
    if (d->token_attach) {
        if (cfg->arch != PB_ARCH_VIT)
            return pb_errf(PB_ERR_ARG, err, errlen, "method: %s adds tokens to a ViT's sequence; %s is not a ViT",
                           d->name, cfg->name);
        out->adapter += d->token_params(c, cfg);
        out->ntokens = pb_mc_int(c, "tokens");
    }
    out->trainable = out->trainable_backbone + out->trainable_head + out->adapter;
    return PB_OK;
}

// ----------------------------------------------------------------------------
// Applying a method

// Sets every parameter of the model frozen except what the method unfreezes.
static void set_trainable(pb_model *m, unsigned unfreeze, int head) {
    pb_engine *e = pb_model_engine(m);
    int n = 0;
    pb_param **ps = pb_model_params(m, &n);
    unsigned kinds = unfreeze_kinds(unfreeze);
    for (int i = 0; i < n; i++) {
        int bb = ps[i]->group == PB_GROUP_BACKBONE;
        int on = (bb && ((unfreeze & PB_UNFREEZE_BACKBONE) || (pb_param_kind(ps[i]->name) & kinds))) ||
                 (ps[i]->group == PB_GROUP_HEAD && head);
        pb_param_set_trainable(e, ps[i], on);
    }
}

int pb_method_norm_site(const pb_method_config *c) {
    return c->desc->norm_attach && (!pb_mc_has(c, "norms") || pb_mc_bool(c, "norms"));
}

// The norm site: one adapter on every LayerNorm (after the linear site, if any).
static pb_status apply_norms(pb_model *m, const pb_method_config *c, char *err, size_t errlen) {
    int n = 0;
    pb_norm *ns = pb_model_norms(m, &n);
    for (int i = 0; i < n; i++)
        if (ns[i].adapter) return pb_errf(PB_ERR_ARG, err, errlen, "norms: %s already has an adapter", ns[i].name);
    for (int i = 0; i < n; i++) {
        pb_status st = c->desc->norm_attach(pb_model_engine(m), &ns[i], c, i, err, errlen);
        if (st != PB_OK) return st;
    }
    return PB_OK;
}

pb_status pb_method_apply(pb_model *m, const pb_method_config *c, char *err, size_t errlen) {
    const pb_method_desc *d = c->desc;
    PB_CHECK(d, "pb_method_apply: config not initialised (pb_method_config_init)");
    int head = (d->unfreeze & PB_UNFREEZE_HEAD) && (!pb_mc_has(c, "train_head") || pb_mc_bool(c, "train_head"));
    switch (d->site) {
    case PB_SITE_NONE: break;
    case PB_SITE_LINEAR: {
        int n = 0;
        pb_linear *ls = pb_model_linears(m, &n);
        // Validate every target layer before touching the model, so a bad rank leaves it unchanged.
        int hits = 0;
        pb_site site = {0, 0, 0, ls, n};
        for (int i = 0; i < n; i++) {
            char role[PB_NAME_MAX];
            pb_method_linear_role(ls[i].name, role, sizeof(role));
            if (!role[0] || !pb_mc_list_has(c, "targets", role)) continue;
            hits++;
            site.in_max = PB_MAX(site.in_max, ls[i].in);
            site.out_max = PB_MAX(site.out_max, ls[i].out);
            if (ls[i].adapter)
                return pb_errf(PB_ERR_ARG, err, errlen, "targets: %s already has an adapter", ls[i].name);
            pb_status st = rank_rule(c, ls[i].in, ls[i].out, ls[i].name, err, errlen);
            if (st) return st;
        }
        if (!hits) return pb_errf(PB_ERR_ARG, err, errlen, "targets: no linear layer of the model matches");
        set_trainable(m, d->unfreeze, head);
        pb_engine *e = pb_model_engine(m);
        for (int i = 0; i < n; i++) {
            char role[PB_NAME_MAX];
            pb_method_linear_role(ls[i].name, role, sizeof(role));
            if (!role[0] || !pb_mc_list_has(c, "targets", role)) continue;
            site.index = i;
            pb_status st = d->attach(e, &ls[i], c, &site, err, errlen);
            if (st != PB_OK) return st;
        }
        return pb_method_norm_site(c) ? apply_norms(m, c, err, errlen) : PB_OK;
    }
    }
    if (d->token_attach && pb_model_cfg(m)->arch != PB_ARCH_VIT) // refused before the model changes
        return pb_errf(PB_ERR_ARG, err, errlen, "method: %s adds tokens to a ViT's sequence; %s is not a ViT", d->name,
                       pb_model_cfg(m)->name);
    set_trainable(m, d->unfreeze, head);
    if (d->token_attach) {
        pb_status st = d->token_attach(m, c, err, errlen);
        if (st) return st;
    }
    return pb_method_norm_site(c) ? apply_norms(m, c, err, errlen) : PB_OK;
}

int pb_method_mergeable(pb_model *m) {
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    for (int i = 0; i < n; i++)
        if (ls[i].adapter && !ls[i].adapter->vt->merge) return 0;
    pb_norm *ns = pb_model_norms(m, &n);
    for (int i = 0; i < n; i++)
        if (ns[i].adapter && !ns[i].adapter->vt->merge) return 0;
    return pb_model_token_adapter(m) == NULL; // extra tokens are not a weight change
}

void pb_method_merge(pb_model *m) {
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    pb_engine *e = pb_model_engine(m);
    PB_CHECK(pb_method_mergeable(m), "pb_method_merge: the model has adapters without a merge (check pb_method_mergeable)");
    for (int i = 0; i < n; i++) {
        pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        a->vt->merge(a, e, ls[i].w->data, ls[i].b ? ls[i].b->data : NULL);
        a->vt->free(a, e);
        ls[i].adapter = NULL;
    }
    pb_norm *ns = pb_model_norms(m, &n);
    for (int i = 0; i < n; i++) {
        pb_norm_adapter *a = ns[i].adapter;
        if (!a) continue;
        a->vt->merge(a, e, ns[i].w->data, ns[i].b->data);
        a->vt->free(a, e);
        ns[i].adapter = NULL;
    }
}

int64_t pb_method_events(pb_model *m) {
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        pb_adapter *a = ls[i].adapter;
        if (a && a->vt->events) total += a->vt->events(a, pb_model_engine(m));
    }
    return total;
}
