// config.c: built-in model configs and HF config.json (ViTConfig / RobertaConfig) read/write.
// defines: pb_model_config_builtin, pb_model_config_read, pb_model_config_write
#include "model.h"
#include "../engine/fileutil.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

// ----------------------------------------------------------------------------
// built-ins

static void cfg_vit(pb_model_config *c, const char *name, int hidden, int layers, int heads, int mlp,
                    int image, int patch, int channels) {
    memset(c, 0, sizeof(*c));
    c->arch = PB_ARCH_VIT;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->hidden = hidden;
    c->layers = layers;
    c->heads = heads;
    c->intermediate = mlp;
    c->ln_eps = 1e-12f; // ViTConfig default, used by google/vit-*-in21k
    c->hidden_dropout = 0.0f;
    c->attn_dropout = 0.0f;
    c->classifier_dropout = -1.0f; // unused by ViTForImageClassification
    c->image_size = image;
    c->patch_size = patch;
    c->channels = channels;
    c->qkv_bias = 1;
    c->num_labels = 10;
    c->initializer_range = 0.02f;
}

static void cfg_roberta(pb_model_config *c, const char *name, int hidden, int layers, int heads,
                        int mlp, int vocab, int max_pos) {
    memset(c, 0, sizeof(*c));
    c->arch = PB_ARCH_ROBERTA;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->hidden = hidden;
    c->layers = layers;
    c->heads = heads;
    c->intermediate = mlp;
    c->ln_eps = 1e-5f; // roberta-base/large config.json (the RobertaConfig class default is 1e-12)
    c->hidden_dropout = 0.1f;
    c->attn_dropout = 0.1f;
    c->classifier_dropout = -1.0f; // null: use hidden_dropout
    c->vocab_size = vocab;
    c->max_positions = max_pos;
    c->type_vocab = 1;
    c->pad_id = 1;
    c->num_labels = 2;
    c->initializer_range = 0.02f;
}

static const char *const cfg_known = "vit-b16, vit-l16, vit-tiny, vit-small, roberta-base, "
                                     "roberta-large, roberta-tiny";

pb_status pb_model_config_builtin(const char *name, pb_model_config *cfg, char *err, size_t errlen) {
    if (!name) name = "";
    if (strcmp(name, "vit-b16") == 0) cfg_vit(cfg, name, 768, 12, 12, 3072, 224, 16, 3);
    else if (strcmp(name, "vit-l16") == 0) cfg_vit(cfg, name, 1024, 24, 16, 4096, 224, 16, 3);
    else if (strcmp(name, "vit-tiny") == 0 || strcmp(name, "vit-small") == 0)
        cfg_vit(cfg, name, 192, 6, 3, 768, 28, 4, 1); // machine.md's small ViT, 1 channel
    else if (strcmp(name, "roberta-base") == 0)
        cfg_roberta(cfg, name, 768, 12, 12, 3072, 50265, 514);
    else if (strcmp(name, "roberta-large") == 0)
        cfg_roberta(cfg, name, 1024, 24, 16, 4096, 50265, 514);
    else if (strcmp(name, "roberta-tiny") == 0) cfg_roberta(cfg, name, 64, 2, 4, 128, 1000, 130);
    else
        return pb_errf(PB_ERR_ARG, err, errlen, "unknown model '%s' (known: %s)", name, cfg_known);
    return PB_OK;
}

// ----------------------------------------------------------------------------
// reading config.json

typedef struct {
    const char *path;
    const cJSON *root;
    char *err;
    size_t errlen;
} cfg_ctx;

// Integer field. required: missing is an error; else *out keeps its default.
static pb_status cfg_int(cfg_ctx *x, const char *key, bool required, int minv, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(x->root, key);
    if (!j) {
        if (required)
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: missing required field '%s'",
                           x->path, key);
        return PB_OK;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) ||
        fabs(j->valuedouble) > 2147483647.0)
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: field '%s' must be an integer",
                       x->path, key);
    if (j->valuedouble < minv)
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: field '%s' = %.0f must be >= %d",
                       x->path, key, j->valuedouble, minv);
    *out = (int)j->valuedouble;
    return PB_OK;
}

// Float field (optional). allow_null: JSON null stores null_value.
static pb_status cfg_float(cfg_ctx *x, const char *key, bool allow_null, float null_value,
                           float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(x->root, key);
    if (!j) return PB_OK;
    if (allow_null && cJSON_IsNull(j)) {
        *out = null_value;
        return PB_OK;
    }
    if (!cJSON_IsNumber(j))
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: field '%s' must be a number%s",
                       x->path, key, allow_null ? " or null" : "");
    if (!(j->valuedouble >= 0.0) || !isfinite(j->valuedouble))
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: field '%s' must be >= 0", x->path,
                       key);
    *out = (float)j->valuedouble;
    return PB_OK;
}

// Optional string field that must equal one of the supported values (NULL-terminated list).
static pb_status cfg_str_is(cfg_ctx *x, const char *key, const char *const *ok) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(x->root, key);
    if (!j) return PB_OK;
    if (!cJSON_IsString(j))
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: field '%s' must be a string",
                       x->path, key);
    for (int i = 0; ok[i]; i++)
        if (strcmp(j->valuestring, ok[i]) == 0) return PB_OK;
    return pb_errf(PB_ERR_UNSUPPORTED, x->err, x->errlen,
                   "%s: field '%s' = '%.64s' is not supported (peftbench supports '%s')", x->path,
                   key, j->valuestring, ok[0]);
}

static pb_status cfg_parse(cfg_ctx *x, pb_model_config *cfg) {
    pb_status st;
    const cJSON *r = x->root;
    if (!cJSON_IsObject(r))
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: not a JSON object", x->path);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(r, "model_type");
    if (!mt)
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                       "%s: missing required field 'model_type' (expected \"vit\" or \"roberta\")",
                       x->path);
    if (!cJSON_IsString(mt))
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: field 'model_type' must be a string",
                       x->path);
    // Start from the HF class defaults (ViTConfig / RobertaConfig) for the optional fields.
    if (strcmp(mt->valuestring, "vit") == 0) {
        cfg_vit(cfg, "", 768, 12, 12, 3072, 224, 16, 3);
    } else if (strcmp(mt->valuestring, "roberta") == 0) {
        cfg_roberta(cfg, "", 768, 12, 12, 3072, 50265, 512);
        cfg->ln_eps = 1e-12f;
        cfg->type_vocab = 2;
    } else {
        return pb_errf(PB_ERR_UNSUPPORTED, x->err, x->errlen,
                       "%s: field 'model_type' = '%.64s' is not supported (supported: vit, roberta)",
                       x->path, mt->valuestring);
    }
    const cJSON *np = cJSON_GetObjectItemCaseSensitive(r, "_name_or_path");
    if (cJSON_IsString(np)) snprintf(cfg->name, sizeof(cfg->name), "%s", np->valuestring);

    // shape fields are required: every real checkpoint config has them
    if ((st = cfg_int(x, "hidden_size", true, 1, &cfg->hidden)) != PB_OK) return st;
    if ((st = cfg_int(x, "num_hidden_layers", true, 1, &cfg->layers)) != PB_OK) return st;
    if ((st = cfg_int(x, "num_attention_heads", true, 1, &cfg->heads)) != PB_OK) return st;
    if ((st = cfg_int(x, "intermediate_size", true, 1, &cfg->intermediate)) != PB_OK) return st;
    if (cfg->hidden % cfg->heads != 0)
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                       "%s: field 'hidden_size' = %d is not a multiple of 'num_attention_heads' = %d",
                       x->path, cfg->hidden, cfg->heads);
    static const char *const gelu[] = {"gelu", NULL};
    if ((st = cfg_str_is(x, "hidden_act", gelu)) != PB_OK) return st;
    if ((st = cfg_float(x, "layer_norm_eps", false, 0, &cfg->ln_eps)) != PB_OK) return st;
    if ((st = cfg_float(x, "hidden_dropout_prob", false, 0, &cfg->hidden_dropout)) != PB_OK)
        return st;
    if ((st = cfg_float(x, "attention_probs_dropout_prob", false, 0, &cfg->attn_dropout)) != PB_OK)
        return st;
    if ((st = cfg_float(x, "initializer_range", false, 0, &cfg->initializer_range)) != PB_OK)
        return st;
    if (cfg->hidden_dropout >= 1.0f)
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                       "%s: field 'hidden_dropout_prob' must be < 1", x->path);
    if (cfg->attn_dropout >= 1.0f)
        return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                       "%s: field 'attention_probs_dropout_prob' must be < 1", x->path);

    if (cfg->arch == PB_ARCH_VIT) {
        if ((st = cfg_int(x, "image_size", false, 1, &cfg->image_size)) != PB_OK) return st;
        if ((st = cfg_int(x, "patch_size", false, 1, &cfg->patch_size)) != PB_OK) return st;
        if ((st = cfg_int(x, "num_channels", false, 1, &cfg->channels)) != PB_OK) return st;
        const cJSON *qb = cJSON_GetObjectItemCaseSensitive(r, "qkv_bias");
        if (qb) {
            if (!cJSON_IsBool(qb))
                return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                               "%s: field 'qkv_bias' must be true or false", x->path);
            cfg->qkv_bias = cJSON_IsTrue(qb) ? 1 : 0;
        }
        if (cfg->image_size % cfg->patch_size != 0)
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                           "%s: field 'image_size' = %d is not a multiple of 'patch_size' = %d",
                           x->path, cfg->image_size, cfg->patch_size);
    } else {
        if ((st = cfg_int(x, "vocab_size", false, 1, &cfg->vocab_size)) != PB_OK) return st;
        if ((st = cfg_int(x, "max_position_embeddings", false, 1, &cfg->max_positions)) != PB_OK)
            return st;
        if ((st = cfg_int(x, "type_vocab_size", false, 1, &cfg->type_vocab)) != PB_OK) return st;
        if ((st = cfg_int(x, "pad_token_id", false, 0, &cfg->pad_id)) != PB_OK) return st;
        if ((st = cfg_float(x, "classifier_dropout", true, -1.0f, &cfg->classifier_dropout)) !=
            PB_OK)
            return st;
        if (cfg->classifier_dropout >= 1.0f)
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                           "%s: field 'classifier_dropout' must be < 1", x->path);
        static const char *const absolute[] = {"absolute", NULL};
        if ((st = cfg_str_is(x, "position_embedding_type", absolute)) != PB_OK) return st;
        if (cfg->pad_id >= cfg->vocab_size)
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                           "%s: field 'pad_token_id' = %d is outside the vocabulary (%d)", x->path,
                           cfg->pad_id, cfg->vocab_size);
        // positions start at pad_id + 1 (fairseq rule), so at least one real position is needed
        if (cfg->max_positions <= cfg->pad_id + 1)
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                           "%s: field 'max_position_embeddings' = %d leaves no positions after "
                           "pad_token_id + 1",
                           x->path, cfg->max_positions);
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(r, "is_decoder");
        if (cJSON_IsTrue(dec))
            return pb_errf(PB_ERR_UNSUPPORTED, x->err, x->errlen,
                           "%s: field 'is_decoder' = true is not supported (encoders only)",
                           x->path);
    }

    // labels: id2label's size, else num_labels, else the HF default (2)
    cfg->num_labels = 2;
    const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(r, "id2label");
    const cJSON *nl = cJSON_GetObjectItemCaseSensitive(r, "num_labels");
    int n_id2 = -1;
    if (id2 && !cJSON_IsNull(id2)) {
        if (!cJSON_IsObject(id2))
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: field 'id2label' must be an object",
                           x->path);
        n_id2 = cJSON_GetArraySize(id2);
        if (n_id2 < 1)
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen, "%s: field 'id2label' is empty",
                           x->path);
        cfg->num_labels = n_id2;
    }
    if (nl) {
        int v = 0;
        if ((st = cfg_int(x, "num_labels", true, 1, &v)) != PB_OK) return st;
        if (n_id2 >= 0 && v != n_id2)
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                           "%s: field 'num_labels' = %d disagrees with 'id2label' (%d entries)",
                           x->path, v, n_id2);
        cfg->num_labels = v;
    }
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(r, "problem_type");
    if (pt && !cJSON_IsNull(pt)) {
        if (!cJSON_IsString(pt))
            return pb_errf(PB_ERR_FORMAT, x->err, x->errlen,
                           "%s: field 'problem_type' must be a string", x->path);
        if (strcmp(pt->valuestring, "regression") == 0) {
            if (cfg->num_labels != 1)
                return pb_errf(PB_ERR_UNSUPPORTED, x->err, x->errlen,
                               "%s: field 'problem_type' = 'regression' with %d labels is not "
                               "supported (only single-output regression)",
                               x->path, cfg->num_labels);
        } else if (strcmp(pt->valuestring, "single_label_classification") == 0) {
            if (cfg->num_labels == 1)
                return pb_errf(PB_ERR_UNSUPPORTED, x->err, x->errlen,
                               "%s: field 'problem_type' = 'single_label_classification' with one "
                               "label is not supported",
                               x->path);
        } else {
            return pb_errf(PB_ERR_UNSUPPORTED, x->err, x->errlen,
                           "%s: field 'problem_type' = '%.64s' is not supported (supported: "
                           "single_label_classification, regression)",
                           x->path, pt->valuestring);
        }
    }
    return pb_model_config_check(cfg, x->path, x->err, x->errlen);
}

pb_status pb_model_config_parse(const char *buf, size_t n, const char *path, pb_model_config *cfg, char *err,
                                size_t errlen) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    if (!root) {
        // report line:column of the parse error
        size_t pos = end ? (size_t)(end - buf) : 0;
        int line = 1, col = 1;
        for (size_t i = 0; i < pos && i < n; i++) {
            if (buf[i] == '\n') { line++; col = 1; }
            else col++;
        }
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d:%d: invalid JSON", path, line, col);
    }
    for (const char *p = end; p < buf + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: trailing data after the JSON object",
                           path);
        }
    char dk[256];
    if (pb_json_dup_key(root, dk, sizeof dk)) {
        cJSON_Delete(root);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: duplicate key '%s'", path, dk);
    }
    cfg_ctx x = {path, root, err, errlen};
    pb_model_config tmp;
    pb_status st = cfg_parse(&x, &tmp);
    if (st == PB_OK) *cfg = tmp;
    cJSON_Delete(root);
    return st;
}

pb_status pb_model_config_read(const char *path, pb_model_config *cfg, char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = pb_xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= (64u << 20)) {
                fclose(fp);
                free(buf);
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: larger than 64 MiB, not a config",
                               path);
            }
            cap *= 2;
            buf = pb_xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0) break;
    }
    int rerr = ferror(fp) ? errno : 0;
    fclose(fp);
    if (rerr) {
        free(buf);
        return pb_errf(PB_ERR_IO, err, errlen, "%s: read error: %s", path, strerror(rerr));
    }
    buf[n] = 0;
    pb_status st = pb_model_config_parse(buf, n, path, cfg, err, errlen);
    free(buf);
    return st;
}

// ----------------------------------------------------------------------------
// writing config.json

// Shortest decimal that reads back as the same float (so 1e-12f is written "1e-12").
static cJSON *cfg_float_json(float v) {
    char s[40];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, (double)v);
        if (strtof(s, NULL) == v) break;
    }
    return cJSON_CreateRaw(s);
}

pb_status pb_model_config_write(const char *path, const pb_model_config *cfg, char *err,
                                size_t errlen) {
    return pb_model_config_write_as(path, cfg, NULL, err, errlen);
}

pb_status pb_model_config_write_as(const char *path, const pb_model_config *cfg, const char *architecture,
                                   char *err, size_t errlen) {
    bool vit = cfg->arch == PB_ARCH_VIT;
    if (cfg->num_labels < 1)
        return pb_errf(PB_ERR_ARG, err, errlen, "%s: num_labels = %d must be >= 1", path,
                       cfg->num_labels);
    cJSON *r = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(architecture ? architecture
                                                  : vit        ? "ViTForImageClassification"
                                                               : "RobertaForSequenceClassification"));
    cJSON_AddItemToObject(r, "attention_probs_dropout_prob", cfg_float_json(cfg->attn_dropout));
    if (!vit) {
        cJSON_AddNumberToObject(r, "bos_token_id", 0);
        if (cfg->classifier_dropout < 0) cJSON_AddNullToObject(r, "classifier_dropout");
        else cJSON_AddItemToObject(r, "classifier_dropout", cfg_float_json(cfg->classifier_dropout));
        cJSON_AddNumberToObject(r, "eos_token_id", 2);
    }
    cJSON_AddStringToObject(r, "hidden_act", "gelu");
    cJSON_AddItemToObject(r, "hidden_dropout_prob", cfg_float_json(cfg->hidden_dropout));
    cJSON_AddNumberToObject(r, "hidden_size", cfg->hidden);
    cJSON *id2 = cJSON_AddObjectToObject(r, "id2label");
    cJSON *l2i = cJSON_CreateObject();
    for (int i = 0; i < cfg->num_labels; i++) {
        char k[32], v[40];
        snprintf(k, sizeof k, "%d", i);
        snprintf(v, sizeof v, "LABEL_%d", i);
        cJSON_AddStringToObject(id2, k, v);
        cJSON_AddNumberToObject(l2i, v, i);
    }
    if (vit) cJSON_AddNumberToObject(r, "image_size", cfg->image_size);
    cJSON_AddItemToObject(r, "initializer_range", cfg_float_json(cfg->initializer_range));
    cJSON_AddNumberToObject(r, "intermediate_size", cfg->intermediate);
    cJSON_AddItemToObject(r, "label2id", l2i);
    cJSON_AddItemToObject(r, "layer_norm_eps", cfg_float_json(cfg->ln_eps));
    if (!vit) cJSON_AddNumberToObject(r, "max_position_embeddings", cfg->max_positions);
    cJSON_AddStringToObject(r, "model_type", vit ? "vit" : "roberta");
    cJSON_AddNumberToObject(r, "num_attention_heads", cfg->heads);
    if (vit) cJSON_AddNumberToObject(r, "num_channels", cfg->channels);
    cJSON_AddNumberToObject(r, "num_hidden_layers", cfg->layers);
    if (!vit) cJSON_AddNumberToObject(r, "pad_token_id", cfg->pad_id);
    if (vit) cJSON_AddNumberToObject(r, "patch_size", cfg->patch_size);
    if (!vit) cJSON_AddStringToObject(r, "position_embedding_type", "absolute");
    cJSON_AddStringToObject(r, "problem_type",
                            cfg->num_labels == 1 ? "regression" : "single_label_classification");
    if (vit) cJSON_AddBoolToObject(r, "qkv_bias", cfg->qkv_bias != 0);
    if (!vit) {
        cJSON_AddNumberToObject(r, "type_vocab_size", cfg->type_vocab);
        cJSON_AddNumberToObject(r, "vocab_size", cfg->vocab_size);
    }
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    PB_CHECK(text, "cJSON_Print failed");

    // atomic: temp file + fsync + rename
    size_t plen = strlen(path) + 32;
    char *tmp = pb_xmalloc(plen);
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    pb_status st = PB_OK;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        size_t len = strlen(text);
        if (fwrite(text, 1, len, fp) != len || fputc('\n', fp) == EOF || fflush(fp) != 0 ||
            fsync(fileno(fp)) != 0)
            st = pb_errf(PB_ERR_IO, err, errlen, "%s: write failed: %s", tmp, strerror(errno));
        if (fclose(fp) != 0 && st == PB_OK)
            st = pb_errf(PB_ERR_IO, err, errlen, "%s: close failed: %s", tmp, strerror(errno));
        if (st == PB_OK && rename(tmp, path) != 0)
            st = pb_errf(PB_ERR_IO, err, errlen, "%s: cannot rename to %s: %s", tmp, path,
                         strerror(errno));
        if (st != PB_OK) unlink(tmp);
    }
    free(tmp);
    cJSON_free(text);
    return st;
}

// ----------------------------------------------------------------------------
// Limits and the memory estimate

pb_status pb_model_config_check(const pb_model_config *c, const char *what, char *err, size_t errlen) {
    const struct {
        const char *name;
        long long v, lo, hi;
    } f[] = {
        {"hidden", c->hidden, 1, PB_CFG_MAX_HIDDEN},
        {"layers", c->layers, 1, PB_CFG_MAX_LAYERS},
        {"heads", c->heads, 1, c->hidden > 0 ? c->hidden : 1},
        {"intermediate", c->intermediate, 1, PB_CFG_MAX_INTERMEDIATE},
        {"num_labels", c->num_labels, 1, PB_CFG_MAX_LABELS},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < f[i].lo || f[i].v > f[i].hi)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s = %lld outside [%lld, %lld]", what, f[i].name, f[i].v,
                           f[i].lo, f[i].hi);
    if (c->hidden % c->heads)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: hidden = %d is not a multiple of heads = %d", what, c->hidden,
                       c->heads);
    if (!(c->ln_eps > 0 && isfinite(c->ln_eps)) || !(c->initializer_range >= 0 && isfinite(c->initializer_range)))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: layer_norm_eps = %g must be > 0 and initializer_range = %g >= 0",
                       what, (double)c->ln_eps, (double)c->initializer_range);
    const float drops[3] = {c->hidden_dropout, c->attn_dropout, c->classifier_dropout};
    for (int i = 0; i < 3; i++)
        if (!(drops[i] < 1) || (i < 2 && !(drops[i] >= 0)) || (i == 2 && !(drops[i] >= -1))) // -1: "use hidden"
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: dropout probabilities must lie in [0, 1) (got %g)", what,
                           (double)drops[i]);
    if (c->arch == PB_ARCH_VIT) {
        if (c->image_size < 1 || c->image_size > PB_CFG_MAX_IMAGE || c->patch_size < 1 ||
            c->patch_size > c->image_size || c->image_size % c->patch_size)
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: image_size = %d must be in [1, %d] and a multiple of patch_size = %d", what,
                           c->image_size, PB_CFG_MAX_IMAGE, c->patch_size);
        long long g = c->image_size / c->patch_size, T = g * g + 1;
        if (T > PB_CFG_MAX_TOKENS)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: (image_size / patch_size)^2 + 1 = %lld tokens, more than %d",
                           what, T, PB_CFG_MAX_TOKENS);
        if (c->channels < 1 || c->channels > PB_CFG_MAX_CHANNELS)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: channels = %d outside [1, %d]", what, c->channels,
                           PB_CFG_MAX_CHANNELS);
    } else {
        if (c->vocab_size < 1 || c->vocab_size > PB_CFG_MAX_VOCAB)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: vocab_size = %d outside [1, %d]", what, c->vocab_size,
                           PB_CFG_MAX_VOCAB);
        if (c->max_positions < 1 || c->max_positions > PB_CFG_MAX_TOKENS)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: max_position_embeddings = %d outside [1, %d]", what,
                           c->max_positions, PB_CFG_MAX_TOKENS);
        if (c->type_vocab < 1 || c->type_vocab > PB_CFG_MAX_TYPE_VOCAB)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: type_vocab_size = %d outside [1, %d]", what, c->type_vocab,
                           PB_CFG_MAX_TYPE_VOCAB);
        if (c->pad_id < 0 || c->pad_id >= c->vocab_size || c->max_positions <= c->pad_id + 1)
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: pad_token_id = %d must lie in the vocabulary (%d) and below max_position_embeddings - 1 (%d)",
                           what, c->pad_id, c->vocab_size, c->max_positions);
    }
    return PB_OK;
}

double pb_model_memory_estimate(const pb_model_config *c, int B, int T, double trainable, double *weights,
                                double *optimizer, double *activations) {
    double C = c->hidden, I = c->intermediate, L = c->layers, NH = c->heads, V = c->num_labels;
    double P = 0; // parameters, from the shapes (double: no overflow)
    if (c->arch == PB_ARCH_VIT) {
        double g = (double)(c->image_size / (c->patch_size > 0 ? c->patch_size : 1));
        P += C * c->channels * c->patch_size * (double)c->patch_size + C + C + (g * g + 1) * C;
    } else {
        P += ((double)c->vocab_size + c->max_positions + c->type_vocab) * C + 2 * C + C * C + C;
    }
    P += L * (4 * (C * C + C) + 2 * C * I + I + C + 4 * C) + 2 * C + C * V + V;
    double w = 4 * P, o = 4 * 3 * trainable; // grad, m, v
    double tok = (double)B * T;
    double a = 4 * (L * tok * (13 * C + 3 * I + 2 * NH * T) + 2 * tok * C + (double)B * V * 4);
    if (weights) *weights = w;
    if (optimizer) *optimizer = o;
    if (activations) *activations = a;
    return w + o + a;
}

// MemAvailable from /proc/meminfo in bytes, or the physical memory; 0 if neither is known.
static double mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        double kb = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
        fclose(f);
        if (kb > 0) return kb * 1024;
    }
    long pages = sysconf(_SC_PHYS_PAGES), ps = sysconf(_SC_PAGESIZE);
    return pages > 0 && ps > 0 ? (double)pages * ps : 0;
}

pb_status pb_model_memory_check(const pb_model_config *cfg, int B, int T, double trainable, char *err, size_t errlen) {
    double w, o, a, need = pb_model_memory_estimate(cfg, B, T, trainable, &w, &o, &a);
    double have = mem_available();
    const double G = 1024.0 * 1024 * 1024;
    if (have > 0 && need > have)
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "model '%s' needs about %.1f GiB (weights %.1f, gradients + AdamW %.1f, activations %.1f for "
                       "batch %d x %d tokens) but %.1f GiB are available: use a smaller batch or model",
                       cfg->name, need / G, w / G, o / G, a / G, B, T, have / G);
    return PB_OK;
}

// ----------------------------------------------------------------------------
// A suite's resolved model spec -> config

static double spec_num(const cJSON *o, const char *k, double def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
// An integer field of an inline config: non-integers and values outside int become -1, which
// pb_model_config_check then rejects with the field's name (no undefined conversion).
static int spec_int(const cJSON *o, const char *k, int def) {
    double v = spec_num(o, k, def);
    if (!(v == floor(v)) || v > 2147483647.0 || v < -2147483647.0) return -1;
    return (int)v;
}
// A float field: beyond the float range it becomes +-inf (pb_model_config_check rejects it).
static float spec_float(const cJSON *o, const char *k, float def) {
    double v = spec_num(o, k, def);
    return v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v;
}
static const char *spec_str(const cJSON *o, const char *k, const char *def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : def;
}

pb_status pb_model_config_from_spec(const cJSON *model, pb_model_config *cfg, char *err, size_t errlen) {
    const char *builtin = spec_str(model, "builtin", NULL);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(model, "config");
    const char *arch = spec_str(c, "arch", NULL);
    // Without a built-in name the inline config starts from the tiny model of its architecture
    // (so unspecified fields get sane values: ln_eps, dropouts, initializer_range, ...).
    const char *base = builtin ? builtin : (arch && !strcmp(arch, "roberta")) ? "roberta-tiny" : "vit-tiny";
    pb_status st = pb_model_config_builtin(base, cfg, err, errlen);
    if (st) return st;
    if (!c) return PB_OK;
    snprintf(cfg->name, sizeof(cfg->name), "%s", spec_str(model, "label", base));
#define SETI(k, f) if (cJSON_GetObjectItemCaseSensitive(c, k)) cfg->f = spec_int(c, k, cfg->f)
#define SETF(k, f) if (cJSON_GetObjectItemCaseSensitive(c, k)) cfg->f = spec_float(c, k, cfg->f)
    SETI("hidden", hidden);
    SETI("layers", layers);
    SETI("heads", heads);
    SETI("intermediate", intermediate);
    SETI("image_size", image_size);
    SETI("patch_size", patch_size);
    SETI("channels", channels);
    SETI("vocab_size", vocab_size);
    SETI("max_positions", max_positions);
    SETI("type_vocab", type_vocab);
    SETI("pad_id", pad_id);
    SETF("ln_eps", ln_eps);
    SETF("hidden_dropout", hidden_dropout);
    SETF("attn_dropout", attn_dropout);
    SETF("classifier_dropout", classifier_dropout);
    SETF("initializer_range", initializer_range);
#undef SETI
#undef SETF
    const cJSON *qb = cJSON_GetObjectItemCaseSensitive(c, "qkv_bias");
    if (qb) cfg->qkv_bias = cJSON_IsBool(qb) ? cJSON_IsTrue(qb) : qb->valuedouble != 0;
    if (cfg->hidden <= 0 || cfg->layers <= 0 || cfg->heads <= 0 || cfg->intermediate <= 0 ||
        cfg->hidden % cfg->heads)
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "model '%s': config: hidden (%d) must be a positive multiple of heads (%d); layers %d, "
                       "intermediate %d must be positive",
                       cfg->name, cfg->hidden, cfg->heads, cfg->layers, cfg->intermediate);
    if (cfg->arch == PB_ARCH_VIT &&
        (cfg->patch_size <= 0 || cfg->image_size <= 0 || cfg->image_size % cfg->patch_size ||
         (cfg->channels != 1 && cfg->channels != 3)))
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "model '%s': config: image_size %d must be a multiple of patch_size %d; channels 1 or 3 (got %d)",
                       cfg->name, cfg->image_size, cfg->patch_size, cfg->channels);
    char what[96];
    snprintf(what, sizeof what, "model '%s': config", cfg->name);
    return pb_model_config_check(cfg, what, err, errlen);
}

pb_status pb_model_config_resolve(const cJSON *model, pb_model_config *cfg, char *err, size_t errlen) {
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(model, "source");
    if (cJSON_IsString(src) && !strcmp(src->valuestring, "dir")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(model, "dir");
        char cp[4200];
        snprintf(cp, sizeof(cp), "%s/config.json", cJSON_IsString(d) ? d->valuestring : "");
        return pb_model_config_read(cp, cfg, err, errlen);
    }
    return pb_model_config_from_spec(model, cfg, err, errlen);
}
