// grid.c: suite -> cells.
#include "grid.h"
#include "jsonutil.h"
#include "../methods/method.h"
#include <stdint.h>
#include <string.h>

static int in_list(const char *k, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(k, list[i])) return 1;
    return 0;
}

static void set_item(cJSON *obj, const char *key, const cJSON *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, cJSON_Duplicate(v, 1));
}

// Applies one key=value (method option or recipe key) to a cell being built; an option the
// cell's method does not declare is dropped.
static void apply(cJSON *method, cJSON *recipe, const pb_method_desc *d, const char *key, const cJSON *v) {
    if (pb_method_option_key(key)) {
        if (pb_method_opt_find(d, key)) set_item(method, key, v);
    } else if (in_list(key, pb_recipe_keys)) {
        set_item(recipe, key, v);
    }
}

// Method object with the options the suite's entry sets explicitly (defaults come at resolve).
static cJSON *method_base(const cJSON *entry, const pb_method_desc *d) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "method", d->name);
    cJSON_AddStringToObject(m, "label", cJSON_GetObjectItem(entry, "label")->valuestring);
    cJSON_AddStringToObject(m, "ref", cJSON_GetObjectItem(entry, "ref")->valuestring);
    for (const cJSON *c = entry->child; c; c = c->next)
        if (pb_method_opt_find(d, c->string)) set_item(m, c->string, c);
    return m;
}

// Completes a cell's method object: every option of the descriptor, explicit values kept,
// defaults and dependent defaults (the resolve hook) filled in, typed as the descriptor says.
static pb_status method_resolve(cJSON *m, char *err, size_t errlen) {
    pb_method_config c;
    pb_status st = pb_method_config_from_json(m, 0, &c, err, errlen);
    if (!st) pb_method_config_to_json(&c, m);
    return st;
}

static int matches(const cJSON *o, const char *key, const char *label, const char *alt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 1;
    return !strcmp(v->valuestring, label) || (alt && !strcmp(v->valuestring, alt));
}

// Open-addressing set of the cell ids pushed so far (index + 1 of the cell; 0 = empty), so that
// de-duplication is O(1) per cell instead of a scan of every earlier cell.
typedef struct {
    int *slot;
    size_t mask;
} id_set;

static uint64_t id_key(const char *id) {
    uint64_t k = 0;
    for (const char *p = id; *p; p++) k = k * 16 + (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
    return k * 0x9E3779B97F4A7C15ULL; // ids are hashes already; spread the low bits anyway
}

// Returns 1 if id is already in the grid, else records cell index `idx` for it and returns 0.
static int id_set_add(id_set *h, const pb_grid *g, const char *id, int idx) {
    for (size_t i = (size_t)(id_key(id) >> 11) & h->mask;; i = (i + 1) & h->mask) {
        if (!h->slot[i]) {
            h->slot[i] = idx + 1;
            return 0;
        }
        if (!strcmp(g->cells[h->slot[i] - 1].id, id)) return 1;
    }
}

static void push_cell(pb_grid *g, int *cap, id_set *seen, cJSON *config, const char *model, const char *dataset,
                      const char *method, int seed) {
    char id[17];
    pb_json_hash_hex(config, id);
    if (g->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        g->cells = pb_xrealloc(g->cells, sizeof(pb_cell) * (size_t)*cap);
    }
    snprintf(g->cells[g->n].id, sizeof(g->cells[g->n].id), "%s", id); // so that the set can compare
    if (id_set_add(seen, g, id, g->n)) {
        cJSON_Delete(config);
        return;
    }
    if (g->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        g->cells = pb_xrealloc(g->cells, sizeof(pb_cell) * (size_t)*cap);
    }
    pb_cell *c = &g->cells[g->n];
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->index = g->n;
    c->config = config;
    snprintf(c->model, sizeof(c->model), "%s", model);
    snprintf(c->dataset, sizeof(c->dataset), "%s", dataset);
    snprintf(c->method, sizeof(c->method), "%s", method);
    c->seed = seed;
    g->n++;
}

// The values of axis x for the cells of a model (its own grid, NULL: none) and a suite method
// entry: the model's list when it gives one, else the method's, else the suite grid's.
static const cJSON *axis_values(const cJSON *model_grid, const cJSON *entry, const cJSON *axis) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(model_grid, axis->string);
    if (m) return m;
    const cJSON *own = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(entry, "grid"), axis->string);
    return own ? own : axis;
}

pb_status pb_grid_expand(const pb_suite *s, pb_grid *g, char *err, size_t errlen) {
    memset(g, 0, sizeof(*g));
    int cap = 0;
    int naxes = cJSON_GetArraySize(s->grid);
    const cJSON *axes[64];
    int sizes[64], pos[64];
    if (naxes > 64) return pb_errf(PB_ERR_ARG, err, errlen, "%s: grid: at most 64 axes", s->file);
    int a = 0;
    for (const cJSON *c = s->grid->child; c; c = c->next, a++) axes[a] = c;
    // Cells per (model, method entry) (their own axis lists where they have them), times the
    // datasets the model pairs with (pb_suite_pairs: only one modality makes cells).
    long long total = 0;
    for (int mi = 0; mi < s->nmodels; mi++) {
        long long nd = 0;
        for (int di = 0; di < s->ndatasets; di++) nd += pb_suite_pairs(s, mi, di);
        for (int ki = 0; ki < s->nmethods && nd; ki++) {
            long long per = 1;
            for (int x = 0; x < naxes && per <= 1000000; x++)
                per *= cJSON_GetArraySize(axis_values(s->model_grid[mi], s->methods[ki], axes[x]));
            if (per > 1000000) return pb_errf(PB_ERR_ARG, err, errlen, "%s: the grid has more than 1e6 cells", s->file);
            total += per * nd;
            if (total > 1000000) break;
        }
    }
    if (total <= 0) return pb_errf(PB_ERR_ARG, err, errlen, "%s: the grid is empty", s->file);
    if (total > 1000000) return pb_errf(PB_ERR_ARG, err, errlen, "%s: the grid has %lld cells (limit 1e6)", s->file, total);
    // Each axis's values as an array, per (model, method entry) (cJSON_GetArrayItem walks the
    // list: quadratic on long axes).
    int nkm = s->nmodels * s->nmethods;
    const cJSON ***vals = pb_xcalloc((size_t)(nkm * (naxes ? naxes : 1)), sizeof(const cJSON **));
    for (int mi = 0; mi < s->nmodels; mi++)
        for (int ki = 0; ki < s->nmethods; ki++)
            for (int x = 0; x < naxes; x++) {
                const cJSON *list = axis_values(s->model_grid[mi], s->methods[ki], axes[x]);
                const cJSON **v = pb_xmalloc(sizeof(cJSON *) * (size_t)(cJSON_GetArraySize(list) + 1));
                int i = 0;
                for (const cJSON *e = list->child; e; e = e->next) v[i++] = e;
                vals[(mi * s->nmethods + ki) * naxes + x] = v;
            }
    id_set seen;
    size_t slots = 64;
    while (slots < (size_t)total * 2) slots *= 2;
    seen.slot = pb_xcalloc(slots, sizeof(int));
    seen.mask = slots - 1;
    pb_status st = PB_OK;

    for (int mi = 0; mi < s->nmodels && !st; mi++)
        for (int di = 0; di < s->ndatasets && !st; di++)
            for (int ki = 0; ki < s->nmethods && !st && pb_suite_pairs(s, mi, di); ki++) {
                const cJSON *model = s->models[mi], *ds = s->datasets[di], *entry = s->methods[ki];
                const char *mlabel = cJSON_GetObjectItem(model, "label")->valuestring;
                const char *dlabel = cJSON_GetObjectItem(ds, "label")->valuestring;
                const char *klabel = cJSON_GetObjectItem(entry, "label")->valuestring;
                const char *kname = cJSON_GetObjectItem(entry, "method")->valuestring;
                const pb_method_desc *desc = pb_method_find(kname);
                const cJSON **const *mv = vals + (mi * s->nmethods + ki) * naxes;
                for (int x = 0; x < naxes; x++)
                    sizes[x] = cJSON_GetArraySize(axis_values(s->model_grid[mi], entry, axes[x]));
                memset(pos, 0, sizeof(pos));
                for (;;) {
                    cJSON *method = method_base(entry, desc);
                    cJSON *recipe = cJSON_Duplicate(s->recipe, 1);
                    for (const cJSON *c = cJSON_GetObjectItem(entry, "recipe")->child; c; c = c->next)
                        set_item(recipe, c->string, c);
                    for (const cJSON *o = s->overrides->child; o; o = o->next) {
                        if (!matches(o, "model", mlabel, NULL) || !matches(o, "dataset", dlabel, NULL) ||
                            !matches(o, "method", klabel, kname))
                            continue;
                        for (const cJSON *c = cJSON_GetObjectItem(o, "set")->child; c; c = c->next)
                            apply(method, recipe, desc, c->string, c);
                    }
                    int seed = 0;
                    for (int x = 0; x < naxes; x++) {
                        const cJSON *v = mv[x][pos[x]];
                        if (!strcmp(axes[x]->string, "seed")) seed = (int)v->valuedouble;
                        else apply(method, recipe, desc, axes[x]->string, v);
                    }
                    char e2[512];
                    if (method_resolve(method, e2, sizeof e2)) {
                        cJSON_Delete(method);
                        cJSON_Delete(recipe);
                        st = pb_errf(PB_ERR_ARG, err, errlen, "%s: method '%s': %s", s->file, klabel, e2);
                        break;
                    }
                    cJSON *cfg = cJSON_CreateObject();
                    cJSON_AddStringToObject(cfg, "trainer", s->trainer);
                    cJSON_AddItemToObject(cfg, "model", cJSON_Duplicate(model, 1));
                    cJSON_AddItemToObject(cfg, "dataset", cJSON_Duplicate(ds, 1));
                    cJSON_AddItemToObject(cfg, "method", method);
                    cJSON_AddItemToObject(cfg, "recipe", recipe);
                    cJSON_AddItemToObject(cfg, "eval", cJSON_Duplicate(s->eval, 1));
                    cJSON_AddNumberToObject(cfg, "seed", seed);
                    push_cell(g, &cap, &seen, cfg, mlabel, dlabel, klabel, seed);
                    // odometer, last axis fastest
                    int x = naxes - 1;
                    while (x >= 0 && ++pos[x] == sizes[x]) pos[x--] = 0;
                    if (x < 0) break;
                }
            }
    for (int i = 0; i < nkm * naxes; i++) free(vals[i]);
    free(vals);
    free(seen.slot);
    if (st) pb_grid_free(g);
    return st;
}

void pb_grid_free(pb_grid *g) {
    for (int i = 0; i < g->n; i++) cJSON_Delete(g->cells[i].config);
    free(g->cells);
    memset(g, 0, sizeof(*g));
}
