// peft_io.c: HF PEFT adapter directories (formats.md §3): adapter_config.json +
// adapter_model.safetensors with keys base_model.model.<task prefix><module>.lora_{A,B}.weight and
// the head as modules_to_save (base_model.model.classifier.*).
// PiSSA is exported as PEFT's documented rank-2r conversion (formats.md §2.2): relative to the
// ORIGINAL pre-trained weights, A' = [A; A0] (2r,in), B' = [B | -B0] (out,2r), r' = 2r,
// alpha' = 2 alpha (sqrt(2) alpha under rslora), init_lora_weights = true, so a plain PEFT LoRA
// load on the unmodified base model reproduces W_res + s B A.
// Import: pb_method_import_peft parses adapter_config.json (duplicate keys refused) and calls the
// import_peft hook of the descriptor whose peft_type it names; the readers live in their
// methods' files (lora.c: LORA, ia3.c, vera.c, fourierft.c, adalora.c) on the pb_peft_* helpers
// here (pass 1 sorting and checking every tensor, freezing, head loading, config fields).
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "methods_internal.h"
#include "../engine/fileutil.h"
#include "models/safetensors.h"


// ViT module names: transformers >= 5 renames ViT's linears in memory (conversion mapping
// "ViTModel": encoder.layer.N -> layers.N, attention.{query,key,value} -> {q,k,v}_proj,
// attention.output.dense -> attention.o_proj, intermediate.dense -> mlp.fc1, output.dense ->
// mlp.fc2) and PEFT (0.21) saves adapters and matches target_modules on those names; RoBERTa is
// unchanged. peftbench keeps the hub (transformers 4) names internally and writes ViT adapters
// in the transformers 5 layout, which is what the pinned peers (tests/ref/requirements.txt) load.
static const char *const vit_v5_map[][2] = {
    {"attention.attention.query", "attention.q_proj"}, {"attention.attention.key", "attention.k_proj"},
    {"attention.attention.value", "attention.v_proj"}, {"attention.output.dense", "attention.o_proj"},
    {"intermediate.dense", "mlp.fc1"},                 {"output.dense", "mlp.fc2"},
};

// "encoder.layer.N.<hub leaf>" <-> "layers.N.<v5 leaf>". to_v5: direction. Returns 0 when name
// is not a ViT encoder linear in the source layout.
static int vit_rename(const char *name, int to_v5, char *out, size_t n) {
    const char *pre = to_v5 ? "encoder.layer." : "layers.";
    size_t pl = strlen(pre);
    if (strncmp(name, pre, pl)) return 0;
    const char *p = name + pl;
    char *end;
    long layer = strtol(p, &end, 10);
    if (end == p || *end != '.') return 0;
    for (size_t i = 0; i < sizeof(vit_v5_map) / sizeof(vit_v5_map[0]); i++) {
        if (strcmp(end + 1, vit_v5_map[i][to_v5 ? 0 : 1])) continue;
        snprintf(out, n, "%s%ld.%s", to_v5 ? "layers." : "encoder.layer.", layer, vit_v5_map[i][to_v5 ? 1 : 0]);
        return 1;
    }
    return 0;
}

void pb_peft_module(const pb_model *m, const pb_linear *l, char *out, size_t n) {
    char v5[PB_NAME_MAX];
    if (pb_model_cfg(m)->arch == PB_ARCH_VIT && vit_rename(l->name, 1, v5, sizeof(v5)))
        snprintf(out, n, "%s%s", pb_model_prefix(m), v5);
    else
        snprintf(out, n, "%s%s", pb_model_prefix(m), l->name);
}

void pb_peft_target(const pb_model *m, const pb_linear *l, char *out, size_t n) {
    // ViT (transformers 5 names): q_proj k_proj v_proj o_proj fc1 fc2 are unambiguous suffixes.
    // RoBERTa: query/key/value are unambiguous; the ".dense" linears are written as full module
    // paths because PEFT's suffix match of "output.dense" would also hit attention.output.dense.
    char mod[2 * PB_NAME_MAX];
    pb_peft_module(m, l, mod, sizeof(mod));
    const char *last = strrchr(mod, '.');
    last = last ? last + 1 : mod;
    if (strcmp(last, "dense")) snprintf(out, n, "%s", last);
    else snprintf(out, n, "%s", mod);
}

pb_status pb_method_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err,
                                size_t errlen) {
    if (!c->desc->export_peft) {
        char list[256] = "";
        size_t u = 0;
        const pb_method_desc *const *r = pb_method_registry(NULL);
        for (int i = 0; r[i]; i++)
            if (r[i]->export_peft) u += (size_t)snprintf(list + u, sizeof list - u, "%s%s", u ? ", " : "", r[i]->name);
        return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "method: PEFT export supports %s (got '%s')", list,
                       c->desc->name);
    }
    return c->desc->export_peft(m, c, dir, err, errlen);
}

pb_status pb_lora_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err, size_t errlen) {
    int pissa = 0; // PiSSA adapters carry their initial factors: exported as the rank-2r conversion
    {
        int nl = 0;
        pb_linear *ll = pb_model_linears(m, &nl);
        for (int i = 0; i < nl; i++)
            if (ll[i].adapter && ll[i].adapter->vt == &pb_lora_vtbl) pissa |= ((pb_lora_state *)ll[i].adapter->state)->pissa;
    }
    pb_engine *e = pb_model_engine(m);
    int n = 0, r = -1, dora = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    pb_st_writer *w = pb_st_writer_init();
    cJSON *targets = cJSON_CreateArray();
    char key[3 * PB_NAME_MAX];
    for (int i = 0; i < n; i++) {
        pb_adapter *a = ls[i].adapter;
        if (!a) continue;
        if (pb_adapter_is_dora(a)) dora = 1;
        else if (a->vt != &pb_lora_vtbl) {
            pb_st_writer_free(w);
            cJSON_Delete(targets);
            return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "method: %s has a non-LoRA adapter", ls[i].name);
        }
        pb_lora_state *st = a->state;
        int rr = pissa ? 2 * st->r : st->r, in = st->in, out = st->out;
        if (r < 0) r = rr;
        size_t na = (size_t)st->r * in, nb = (size_t)out * st->r;
        float *hA = pb_xmalloc((size_t)rr * in * sizeof(float));
        float *hB = pb_xmalloc((size_t)out * rr * sizeof(float));
        float *tmp = pb_xmalloc(nb * sizeof(float));
        pb_download(e, hA, a->params[0].data, na);
        pb_download(e, tmp, a->params[1].data, nb);
        for (int o = 0; o < out; o++) memcpy(hB + (size_t)o * rr, tmp + (size_t)o * st->r, st->r * sizeof(float));
        if (pissa) {
            PB_CHECK(st->pissa && st->A0 && st->B0, "pissa export without initial factors");
            pb_download(e, hA + na, st->A0, na);
            pb_download(e, tmp, st->B0, nb);
            for (int o = 0; o < out; o++)
                for (int k = 0; k < st->r; k++) hB[(size_t)o * rr + st->r + k] = -tmp[(size_t)o * st->r + k];
        }
        char mod[2 * PB_NAME_MAX];
        pb_peft_module(m, &ls[i], mod, sizeof(mod));
        snprintf(key, sizeof(key), PEFT_PREFIX "%s.lora_A.weight", mod);
        pb_st_writer_add(w, key, hA, 2, (int64_t[]){rr, in});
        snprintf(key, sizeof(key), PEFT_PREFIX "%s.lora_B.weight", mod);
        pb_st_writer_add(w, key, hB, 2, (int64_t[]){out, rr});
        if (pb_adapter_is_dora(a)) { // peft's checkpoint key has no ".weight" (its loader maps it)
            float *hm = pb_xmalloc((size_t)out * sizeof(float));
            pb_download(e, hm, a->params[2].data, (size_t)out);
            snprintf(key, sizeof(key), PEFT_PREFIX "%s.lora_magnitude_vector", mod);
            pb_st_writer_add(w, key, hm, 1, (int64_t[]){out});
            free(hm);
        }
        free(hA); free(hB); free(tmp);
        char t[2 * PB_NAME_MAX];
        pb_peft_target(m, &ls[i], t, sizeof(t));
        pb_peft_add_target(targets, t);
    }
    if (r < 0) {
        pb_st_writer_free(w);
        cJSON_Delete(targets);
        return pb_errf(PB_ERR_ARG, err, errlen, "method: the model has no adapters to export");
    }
    int r0 = pissa ? r / 2 : r;
    int rslora = pb_mc_bool(c, "rslora");
    float alpha = pb_mc_num(c, "alpha") > 0 ? (float)pb_mc_num(c, "alpha") : (float)r0;
    if (pissa) alpha *= rslora ? sqrtf(2.0f) : 2.0f;
    cJSON *o = pb_peft_lora_config(r, alpha, (float)pb_mc_num(c, "dropout"), targets, rslora, dora,
                                   !pissa && !strcmp(pb_mc_str(c, "init"), "gaussian"));
    return pb_peft_finish(m, c, w, o, dir, err, errlen);
}

cJSON *pb_peft_lora_config(int r, float alpha, float dropout, cJSON *targets, int rslora, int dora, int gaussian) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "peft_type", "LORA");
    cJSON_AddNumberToObject(o, "r", r);
    cJSON_AddNumberToObject(o, "lora_alpha", alpha);
    cJSON_AddNumberToObject(o, "lora_dropout", dropout);
    cJSON_AddItemToObject(o, "target_modules", targets);
    cJSON_AddStringToObject(o, "bias", "none");
    cJSON_AddBoolToObject(o, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(o, "use_rslora", rslora);
    cJSON_AddBoolToObject(o, "use_dora", dora);
    if (gaussian) cJSON_AddStringToObject(o, "init_lora_weights", "gaussian");
    else cJSON_AddBoolToObject(o, "init_lora_weights", 1);
    cJSON_AddObjectToObject(o, "rank_pattern");
    cJSON_AddObjectToObject(o, "alpha_pattern");
    return o;
}

void pb_peft_add_target(cJSON *list, const char *t) {
    cJSON *it;
    cJSON_ArrayForEach(it, list) if (!strcmp(it->valuestring, t)) return;
    cJSON_AddItemToArray(list, cJSON_CreateString(t));
}

pb_status pb_peft_finish(pb_model *m, const pb_method_config *c, pb_st_writer *w, cJSON *o, const char *dir,
                         char *err, size_t errlen) {
    pb_engine *e = pb_model_engine(m);
    char key[3 * PB_NAME_MAX], path[4096];
    int np = 0;
    pb_param **ps = pb_model_params(m, &np);
    for (int i = 0; i < np; i++) { // the head, as PEFT saves modules_to_save
        if (ps[i]->group != PB_GROUP_HEAD) continue;
        float *h = pb_xmalloc(ps[i]->numel * sizeof(float));
        pb_download(e, h, ps[i]->data, ps[i]->numel);
        snprintf(key, sizeof(key), PEFT_PREFIX "%s", ps[i]->name);
        pb_st_writer_add(w, key, h, ps[i]->ndim, ps[i]->shape);
        free(h);
    }
    pb_st_writer_meta(w, "format", "pt");
    pb_status st = PB_OK;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        st = pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    if (!st) st = pb_st_writer_finish(w, path, err, errlen);
    pb_st_writer_free(w);
    if (st) {
        cJSON_Delete(o);
        return st;
    }
    const pb_model_config *cfg = pb_model_cfg(m);
    cJSON *mts = cJSON_AddArrayToObject(o, "modules_to_save");
    cJSON_AddItemToArray(mts, cJSON_CreateString("classifier"));
    cJSON_AddStringToObject(o, "base_model_name_or_path", cfg->name);
    if (cfg->arch == PB_ARCH_ROBERTA) cJSON_AddStringToObject(o, "task_type", "SEQ_CLS");
    else cJSON_AddNullToObject(o, "task_type");
    cJSON_AddBoolToObject(o, "inference_mode", 1);
    cJSON_AddStringToObject(o, "peftbench_method", c->desc->name); // provenance; PEFT ignores unknown keys
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    const void *parts[2] = {txt, "\n"};
    size_t sizes[2] = {strlen(txt), 1};
    st = pb_write_atomic(path, parts, sizes, 2, err, errlen);
    free(txt);
    return st;
}

// ----------------------------------------------------------------------------
// Import: pb_method_import_peft reads adapter_config.json and hands it to the descriptor that
// declares its peft_type (desc->import_peft); the helpers below are what those readers share.

void pb_peft_path(const char *dir, const char *name, char *out, size_t n) { snprintf(out, n, "%s/%s", dir, name); }

static char *read_text(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { pb_errf(PB_ERR_IO, err, errlen, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    size_t cap = 4096, len = 0;
    char *buf = pb_xmalloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2) { cap *= 2; buf = pb_xrealloc(buf, cap); }
    }
    fclose(f);
    buf[len] = 0;
    return buf;
}

pb_linear *pb_peft_find_linear(pb_model *m, const char *module, int *index) {
    int n = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    const char *pre = pb_model_prefix(m);
    if (!strncmp(module, pre, strlen(pre))) module += strlen(pre);
    char hub[PB_NAME_MAX];
    if (pb_model_cfg(m)->arch == PB_ARCH_VIT && vit_rename(module, 0, hub, sizeof(hub))) module = hub;
    for (int i = 0; i < n; i++)
        if (!strcmp(ls[i].name, module)) { *index = i; return &ls[i]; }
    return NULL;
}

int pb_peft_shape(const pb_st_tensor *T, int ndim, int64_t d0, int64_t d1) {
    return T->ndim == ndim && T->shape[0] == d0 && (ndim == 1 || T->shape[1] == d1);
}

pb_status pb_peft_collect(pb_model *m, const char *dir, pb_st_file *f, const char *const *leaves, int nleaves,
                          const char *const *extra, const char *what, const pb_st_tensor **tab, char *err,
                          size_t errlen) {
    char path[4096];
    pb_peft_path(dir, "adapter_model.safetensors", path, sizeof path);
    memset(f, 0, sizeof *f);
    pb_status st = pb_st_open(path, f, err, errlen);
    if (st != PB_OK) return st;
    const size_t plen = strlen(PEFT_PREFIX);
    for (int t = 0; t < f->ntensors && st == PB_OK; t++) {
        const pb_st_tensor *T = &f->tensors[t];
        int skip = 0;
        for (int x = 0; extra && extra[x]; x++) skip |= !strcmp(T->name, extra[x]);
        if (skip) continue;
        if (strncmp(T->name, PEFT_PREFIX, plen))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: key does not start with " PEFT_PREFIX, path,
                           T->name);
        const char *k = T->name + plen;
        size_t kl = strlen(k);
        int leaf = -1;
        for (int q = 0; q < nleaves && leaf < 0; q++) {
            size_t ll = strlen(leaves[q]);
            if (kl > ll + 1 && k[kl - ll - 1] == '.' && !strcmp(k + kl - ll, leaves[q])) leaf = q;
        }
        if (leaf < 0) {
            pb_param *p = pb_model_find(m, k);
            if (!p || p->group != PB_GROUP_HEAD)
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: not %s or a head parameter of this model",
                               path, T->name, what);
            if (T->numel != p->numel)
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: %zu elements, the model has %zu", path,
                               T->name, T->numel, p->numel);
            continue;
        }
        char mod[2 * PB_NAME_MAX];
        snprintf(mod, sizeof mod, "%.*s", (int)(kl - strlen(leaves[leaf]) - 1), k);
        int idx;
        pb_linear *l = pb_peft_find_linear(m, mod, &idx);
        if (!l) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: no linear %s in the model", path, T->name, mod);
        if (l->adapter) return pb_errf(PB_ERR_ARG, err, errlen, "%s: %s already has an adapter", path, l->name);
        const pb_st_tensor **slot = &tab[(size_t)idx * nleaves + leaf];
        if (*slot)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: linear %s is named twice (also by %s)", path,
                           T->name, l->name, (*slot)->name);
        *slot = T;
    }
    return st;
}

void pb_peft_freeze(pb_model *m) {
    pb_engine *e = pb_model_engine(m);
    int np = 0;
    pb_param **ps = pb_model_params(m, &np);
    for (int i = 0; i < np; i++) pb_param_set_trainable(e, ps[i], ps[i]->group == PB_GROUP_HEAD);
}

pb_status pb_peft_load(pb_engine *e, const pb_st_file *f, const pb_st_tensor *T, float *dst, char *err,
                       size_t errlen) {
    float *h = pb_xmalloc(T->numel * sizeof(float) + 1);
    pb_status st = pb_st_read_f32(f, T, h, err, errlen);
    if (st == PB_OK) pb_upload(e, dst, h, T->numel);
    free(h);
    return st;
}

pb_status pb_peft_load_head(pb_model *m, const pb_st_file *f, char *err, size_t errlen) {
    const size_t plen = strlen(PEFT_PREFIX);
    pb_status st = PB_OK;
    for (int t = 0; t < f->ntensors && st == PB_OK; t++) {
        const pb_st_tensor *T = &f->tensors[t];
        if (strncmp(T->name, PEFT_PREFIX, plen)) continue;
        pb_param *p = pb_model_find(m, T->name + plen);
        if (!p || p->group != PB_GROUP_HEAD) continue;
        PB_CHECK(T->numel == p->numel, "import: head tensor %s resized after validation", T->name);
        st = pb_peft_load(pb_model_engine(m), f, T, p->data, err, errlen);
    }
    return st;
}

void pb_peft_add_role(char *roles, size_t n, const pb_linear *l) {
    char role[PB_NAME_MAX], probe[PB_OPT_STR_MAX + 2], item[PB_NAME_MAX + 2];
    pb_method_linear_role(l->name, role, sizeof role);
    snprintf(probe, sizeof probe, ",%s,", roles);
    snprintf(item, sizeof item, ",%s,", role);
    if (role[0] && !strstr(probe, item) && strlen(roles) + strlen(role) + 2 < n)
        snprintf(roles + strlen(roles), n - strlen(roles), "%s%s", roles[0] ? "," : "", role);
}

static const cJSON *cfg_field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

pb_status pb_peft_cfg_int(const cJSON *o, const char *path, const char *key, long long def, long long min,
                          long long max, long long *out, char *err, size_t errlen) {
    const cJSON *v = cfg_field(o, key);
    *out = def;
    if (!v) return PB_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)min ||
        v->valuedouble > (double)max)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field %s: expected an integer in [%lld, %lld]", path, key, min,
                       max);
    *out = (long long)v->valuedouble;
    return PB_OK;
}

pb_status pb_peft_cfg_num(const cJSON *o, const char *path, const char *key, double def, double *out, char *err,
                          size_t errlen) {
    const cJSON *v = cfg_field(o, key);
    *out = def;
    if (!v) return PB_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field %s: expected a finite number", path, key);
    *out = v->valuedouble;
    return PB_OK;
}

pb_status pb_peft_cfg_bool(const cJSON *o, const char *path, const char *key, int def, int *out, char *err,
                           size_t errlen) {
    const cJSON *v = cfg_field(o, key);
    *out = def;
    if (!v) return PB_OK;
    if (!cJSON_IsBool(v)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field %s: expected true or false", path, key);
    *out = cJSON_IsTrue(v);
    return PB_OK;
}

pb_status pb_peft_cfg_str(const cJSON *o, const char *path, const char *key, const char *def, const char **out,
                          char *err, size_t errlen) {
    const cJSON *v = cfg_field(o, key);
    *out = def;
    if (!v) return PB_OK;
    if (!cJSON_IsString(v)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field %s: expected a string", path, key);
    *out = v->valuestring;
    return PB_OK;
}

pb_status pb_peft_cfg_plain(const cJSON *o, const char *path, char *err, size_t errlen) {
    const char *bias;
    int fifo;
    pb_status st = pb_peft_cfg_str(o, path, "bias", "none", &bias, err, errlen);
    if (st == PB_OK && strcmp(bias, "none"))
        st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field bias: \"%s\" is not supported (only \"none\": no bias "
                     "tensors are trained)", path, bias);
    if (st == PB_OK) st = pb_peft_cfg_bool(o, path, "fan_in_fan_out", 0, &fifo, err, errlen);
    if (st == PB_OK && fifo)
        st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field fan_in_fan_out: true is not supported (the "
                     "models' linears store W as (out, in))", path);
    return st;
}

pb_status pb_peft_set(pb_method_config *c, const char *path, const char *field, const char *key, const char *text,
                      char *err, size_t errlen) {
    char why[512];
    if (pb_method_config_set(c, key, text, why, sizeof why) == PB_OK) return PB_OK;
    return pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field %s: %s", path, field, why);
}

pb_status pb_method_import_peft(pb_model *m, const char *dir, pb_method_config *c_out, char *err,
                                size_t errlen) {
    char path[4096];
    pb_peft_path(dir, "adapter_config.json", path, sizeof path);
    char *txt = read_text(path, err, errlen);
    if (!txt) return PB_ERR_IO;
    cJSON *o = cJSON_Parse(txt);
    free(txt);
    if (!o) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: not valid JSON", path);
    char dk[256];
    if (pb_json_dup_key(o, dk, sizeof dk)) {
        cJSON_Delete(o);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: duplicate key '%s'", path, dk);
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: not a JSON object", path);
    }
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(o, "peft_type");
    const pb_method_desc *const *r = pb_method_registry(NULL);
    const pb_method_desc *d = NULL;
    char list[256] = "";
    size_t u = 0;
    for (int i = 0; r[i]; i++) {
        if (!r[i]->import_peft || !r[i]->peft_type) continue;
        u += (size_t)snprintf(list + u, sizeof list - u, "%s%s", u ? ", " : "", r[i]->peft_type);
        if (cJSON_IsString(pt) && !strcmp(pt->valuestring, r[i]->peft_type)) d = r[i];
    }
    pb_status st;
    if (!d) {
        if (cJSON_IsString(pt))
            st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field peft_type: \"%s\" is not supported (peftbench "
                         "imports %s)", path, pt->valuestring, list);
        else
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field peft_type: missing or not a string (peftbench imports %s)",
                         path, list);
    } else {
        pb_method_config c;
        st = d->import_peft(m, o, dir, &c, err, errlen);
        if (st == PB_OK && c_out) *c_out = c;
    }
    cJSON_Delete(o);
    return st;
}
