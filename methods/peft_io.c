// peft_io.c: HF PEFT adapter directories (formats.md §3): adapter_config.json +
// adapter_model.safetensors with keys base_model.model.<task prefix><module>.lora_{A,B}.weight and
// the head as modules_to_save (base_model.model.classifier.*).
// PiSSA is exported as PEFT's documented rank-2r conversion (formats.md §2.2): relative to the
// ORIGINAL pre-trained weights, A' = [A; A0] (2r,in), B' = [B | -B0] (out,2r), r' = 2r,
// alpha' = 2 alpha (sqrt(2) alpha under rslora), init_lora_weights = true, so a plain PEFT LoRA
// load on the unmodified base model reproduces W_res + s B A.
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
// Import

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

// The linear a PEFT module path names: hub names, and for ViT also transformers 5 names.
static pb_linear *find_linear(pb_model *m, const char *module, int *index) {
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

// Reads the tensor PEFT_PREFIX<mod>.<leaf> of f (pass 1 checked that it exists and fits) into p.
static pb_status load_partner(pb_engine *e, pb_st_file *f, const char *mod, const char *leaf, pb_param *p, char *err,
                              size_t errlen) {
    char key[2 * PB_NAME_MAX + 48];
    snprintf(key, sizeof(key), PEFT_PREFIX "%s.%s", mod, leaf);
    const pb_st_tensor *T = pb_st_find(f, key);
    PB_CHECK(T && T->numel == p->numel, "import: %s missing or resized after validation", key);
    float *h = pb_xmalloc(T->numel * sizeof(float));
    pb_status st = pb_st_read_f32(f, T, h, err, errlen);
    if (st == PB_OK) pb_upload(e, p->data, h, T->numel);
    free(h);
    return st;
}

pb_status pb_method_import_peft(pb_model *m, const char *dir, pb_method_config *c_out, char *err,
                                size_t errlen) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
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
    pb_status st = PB_OK;
    cJSON *pt = cJSON_GetObjectItemCaseSensitive(o, "peft_type");
    cJSON *jr = cJSON_GetObjectItemCaseSensitive(o, "r");
    cJSON *ja = cJSON_GetObjectItemCaseSensitive(o, "lora_alpha");
    cJSON *jrs = cJSON_GetObjectItemCaseSensitive(o, "use_rslora");
    cJSON *jd = cJSON_GetObjectItemCaseSensitive(o, "use_dora");
    if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA"))
        st = pb_errf(PB_ERR_UNSUPPORTED, err, errlen, "%s: field peft_type: only \"LORA\" is supported", path);
    else if (!cJSON_IsNumber(jr) || jr->valueint < 1)
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field r: missing or not a positive integer", path);
    else if (ja && !cJSON_IsNumber(ja))
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field lora_alpha: not a number", path);
    else if (jd && !cJSON_IsBool(jd))
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: field use_dora: not a boolean", path);
    int dora = jd && cJSON_IsTrue(jd); // DoRA: a lora_magnitude_vector per adapted module
    pb_method_config c;
    char roles[PB_OPT_STR_MAX] = ""; // targets found, comma-separated
    if (st == PB_OK) st = pb_method_config_init(&c, dora ? "dora" : "lora", 0, err, errlen);
    if (st == PB_OK) {
        char v[32];
        snprintf(v, sizeof v, "%d", jr->valueint);
        st = pb_method_config_set(&c, "rank", v, err, errlen);
        snprintf(v, sizeof v, "%.9g", ja ? ja->valuedouble : 8.0);
        if (st == PB_OK) st = pb_method_config_set(&c, "alpha", v, err, errlen);
        if (st == PB_OK) st = pb_method_config_set(&c, "rslora", cJSON_IsTrue(jrs) ? "true" : "false", err, errlen);
        if (st != PB_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s", path, why);
        }
    }
    cJSON_Delete(o);
    if (st != PB_OK) return st;

    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    pb_st_file f;
    st = pb_st_open(path, &f, err, errlen);
    if (st != PB_OK) return st;
    pb_engine *e = pb_model_engine(m);
    const size_t plen = strlen(PEFT_PREFIX);
    // pass 1: validate every key and shape before changing the model
    for (int t = 0; t < f.ntensors && st == PB_OK; t++) {
        const pb_st_tensor *T = &f.tensors[t];
        const char *k = T->name;
        if (strncmp(k, PEFT_PREFIX, plen)) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: key does not start with " PEFT_PREFIX, path, k);
            break;
        }
        k += plen;
        size_t kl = strlen(k);
        const char *sfx = kl > 14 ? k + kl - 14 : "";
        const char *msfx = ".lora_magnitude_vector";
        size_t ml = strlen(msfx);
        if (kl > ml && !strcmp(k + kl - ml, msfx)) {
            char mod[2 * PB_NAME_MAX], partner[2 * PB_NAME_MAX + 32];
            snprintf(mod, sizeof(mod), "%.*s", (int)(kl - ml), k);
            snprintf(partner, sizeof(partner), PEFT_PREFIX "%s.lora_A.weight", mod);
            int idx;
            pb_linear *l = find_linear(m, mod, &idx);
            if (!dora)
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: a DoRA magnitude but use_dora is not true", path,
                             T->name);
            else if (!l || T->ndim != 1 || T->shape[0] != l->out || !pb_st_find(&f, partner))
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: no linear %s with %s and %lld outputs", path,
                             T->name, mod, partner, (long long)(l ? l->out : 0));
        } else if (!strcmp(sfx, ".lora_A.weight") || !strcmp(sfx, ".lora_B.weight")) {
            char mod[2 * PB_NAME_MAX];
            snprintf(mod, sizeof(mod), "%.*s", (int)(kl - 14), k);
            int idx;
            pb_linear *l = find_linear(m, mod, &idx);
            int isA = sfx[6] == 'A';
            if (!l) st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: no linear %s in the model", path, T->name, mod);
            else if (l->adapter) st = pb_errf(PB_ERR_ARG, err, errlen, "%s: %s already has an adapter", path, l->name);
            else if (T->ndim != 2 || T->shape[isA ? 1 : 0] != (isA ? l->in : l->out) || T->shape[isA ? 0 : 1] < 1)
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: shape does not fit %s (%d -> %d)", path,
                             T->name, l->name, l->in, l->out);
            else {
                char other[2 * PB_NAME_MAX + 48];
                snprintf(other, sizeof(other), PEFT_PREFIX "%s.lora_%c.weight", mod, isA ? 'B' : 'A');
                const pb_st_tensor *O = pb_st_find(&f, other);
                if (!O || O->ndim != 2 || O->shape[isA ? 1 : 0] != T->shape[isA ? 0 : 1])
                    st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: missing or mismatched partner %s", path,
                                 T->name, other);
                snprintf(other, sizeof(other), PEFT_PREFIX "%s.lora_magnitude_vector", mod);
                if (st == PB_OK && dora && !pb_st_find(&f, other))
                    st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: use_dora is true but %s is missing", path, other);
            }
        } else {
            pb_param *p = pb_model_find(m, k);
            if (!p || p->group != PB_GROUP_HEAD)
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: not a LoRA factor or a head parameter of this model",
                             path, T->name);
            else if (T->numel != p->numel)
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: %zu elements, the model has %zu", path,
                             T->name, T->numel, p->numel);
        }
    }
    // pass 2: freeze the backbone, attach, load
    if (st == PB_OK) {
        int np = 0;
        pb_param **ps = pb_model_params(m, &np);
        for (int i = 0; i < np; i++) pb_param_set_trainable(e, ps[i], ps[i]->group == PB_GROUP_HEAD);
    }
    for (int t = 0; t < f.ntensors && st == PB_OK; t++) {
        const pb_st_tensor *T = &f.tensors[t];
        const char *k = T->name + plen;
        size_t kl = strlen(k);
        float *h = pb_xmalloc(T->numel * sizeof(float));
        st = pb_st_read_f32(&f, T, h, err, errlen);
        if (st == PB_OK && kl > 14 && !strcmp(k + kl - 14, ".lora_A.weight")) {
            char mod[2 * PB_NAME_MAX];
            snprintf(mod, sizeof(mod), "%.*s", (int)(kl - 14), k);
            int idx;
            pb_linear *l = find_linear(m, mod, &idx);
            int r = (int)T->shape[0];
            pb_adapter *a = dora ? pb_dora_create(e, l, r, pb_lora_scaling(&c, r), 0.0f, idx)
                                 : pb_lora_create(e, l, r, pb_lora_scaling(&c, r), 0.0f, idx);
            pb_upload(e, a->params[0].data, h, T->numel);
            st = load_partner(e, &f, mod, "lora_B.weight", &a->params[1], err, errlen);
            if (st == PB_OK && dora) st = load_partner(e, &f, mod, "lora_magnitude_vector", &a->params[2], err, errlen);
            // record the role as a target
            const char *last = strrchr(l->name, '.');
            char role[PB_NAME_MAX];
            snprintf(role, sizeof(role), "%s", last ? last + 1 : l->name);
            if (!strcmp(role, "dense")) {
                if (strstr(l->name, "attention.output.dense")) snprintf(role, sizeof(role), "attention.output");
                else if (strstr(l->name, "intermediate.dense")) snprintf(role, sizeof(role), "intermediate");
                else snprintf(role, sizeof(role), "output");
            }
            char probe[PB_OPT_STR_MAX + 2], item[PB_NAME_MAX + 2];
            snprintf(probe, sizeof probe, ",%s,", roles);
            snprintf(item, sizeof item, ",%s,", role);
            if (!strstr(probe, item) && strlen(roles) + strlen(role) + 2 < sizeof roles)
                snprintf(roles + strlen(roles), sizeof roles - strlen(roles), "%s%s", roles[0] ? "," : "", role);
        } else if (st == PB_OK && !(kl > 14 && !strcmp(k + kl - 14, ".lora_B.weight")) &&
                   !(kl > 22 && !strcmp(k + kl - 22, ".lora_magnitude_vector"))) {
            pb_upload(e, pb_model_find(m, k)->data, h, T->numel);
        }
        free(h);
    }
    pb_st_close(&f);
    if (st == PB_OK && roles[0]) pb_mc_put_str(&c, "targets", roles);
    if (st == PB_OK && c_out) *c_out = c;
    return st;
}
