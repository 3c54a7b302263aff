// suite.c: parsing and validation of suite files into resolved cJSON objects.
#include "suite.h"
#include "jsonutil.h"
#include "../methods/method.h"
// defines: pb_model_config_from_spec
#include "../models/model.h"
#include "../datasets/data_internal.h"
#include <math.h>
#include <string.h>
#include <sys/stat.h>

// Methods come from the method table (methods/method.h): a method entry may set the options its
// descriptor declares, validated by the descriptor; options a method lacks are not copied into
// its cells, so e.g. a rank axis does not duplicate "full" cells.

// Recipe keys (flat) that can appear in "recipe", a method entry, an override or a grid axis.
const char *const pb_recipe_keys[] = {"epochs", "batch", "eval_batch", "lr", "head_lr",
                                      "lr_scale", "beta1", "beta2", "eps", "weight_decay",
                                      "warmup_steps", "warmup_ratio", "schedule",
                                      "label_smoothing", "flip", "train_subset",
                                      "max_grad_norm", "feature_cache", NULL};

static int in_list(const char *k, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(k, list[i])) return 1;
    return 0;
}

// Built-in model dimensions (hidden, intermediate, arch) from models/ (pb_model_config_builtin), for
// rank validation. arch is "" for an unknown name.
static void builtin_dims(const char *name, int *hidden, int *inter, char *arch, size_t archlen) {
    pb_model_config cfg;
    char e[512];
    *hidden = *inter = 0;
    snprintf(arch, archlen, "%s", "");
    if (pb_model_config_builtin(name, &cfg, e, sizeof(e)) != PB_OK) return;
    *hidden = cfg.hidden;
    *inter = cfg.intermediate;
    snprintf(arch, archlen, "%s", cfg.arch == PB_ARCH_VIT ? "vit" : "roberta");
}
// The keys of a masked-LM pretraining stage (models/mlm.h, harness/pretrain_mlm.c).
static int pretrain_mlm_key(const char *k) {
    return !strcmp(k, "objective") || !strcmp(k, "tokenizer_dir") || !strcmp(k, "seq_len") ||
           !strcmp(k, "mlm_probability");
}

// pretrain.objective: "classification" (the default: train on a labelled dataset spec) or "mlm"
// (masked-LM on the plain text file `dataset`, RoBERTa only: tokenizer_dir required, seq_len
// 8..4096 (128), mlm_probability in (0,1) (0.15)). Only an mlm stage adds its keys to the resolved
// pretrain object p, so the cache keys of classification stages are unchanged.
static pb_status suite_pretrain_mlm(const cJSON *pre, cJSON *p, const char *arch, const char *file,
                                    const char *ppath, char *err, size_t errlen) {
    char obj[32], tok[512];
    pb_status st = pb_json_str(pre, "objective", "classification", obj, sizeof obj, file, ppath, err, errlen);
    if (st) return st;
    int mlm = !strcmp(obj, "mlm");
    if (!mlm && strcmp(obj, "classification"))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.objective: '%s' is not \"classification\" or \"mlm\"", file,
                       ppath, obj);
    if (!mlm) {
        for (const cJSON *c = pre->child; c; c = c->next)
            if (pretrain_mlm_key(c->string) && strcmp(c->string, "objective"))
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.%s: only for objective \"mlm\"", file, ppath,
                               c->string);
        return PB_OK;
    }
    if (strcmp(arch, "roberta"))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.objective: \"mlm\" needs a RoBERTa model", file, ppath);
    if ((st = pb_json_str(pre, "tokenizer_dir", "", tok, sizeof tok, file, ppath, err, errlen))) return st;
    if (!tok[0])
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.tokenizer_dir: required for objective \"mlm\"", file, ppath);
    double seq, prob;
    if ((st = pb_json_num(pre, "seq_len", 128, &seq, file, ppath, err, errlen))) return st;
    if (!(seq >= 8 && seq <= 4096 && seq == floor(seq)))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.seq_len: expected an integer in [8, 4096]", file, ppath);
    if ((st = pb_json_num(pre, "mlm_probability", 0.15, &prob, file, ppath, err, errlen))) return st;
    if (!(prob > 0 && prob < 1))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.mlm_probability: expected 0 < p < 1", file, ppath);
    cJSON_AddStringToObject(p, "objective", "mlm");
    cJSON_AddStringToObject(p, "tokenizer_dir", tok);
    cJSON_AddNumberToObject(p, "seq_len", seq);
    cJSON_AddNumberToObject(p, "mlm_probability", prob);
    return PB_OK;
}

static int builtin_known(const char *name) {
    int h, i;
    char a[16];
    builtin_dims(name, &h, &i, a, sizeof(a));
    return a[0] != 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

// The arch of checkpoint directory dir: config.json's model_type when it is "vit" or "roberta", else
// "" (no readable file yet: the cell reports it, and preflight lists the missing file).
static void dir_arch(const char *dir, char *arch, size_t archlen) {
    char p[1200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    snprintf(arch, archlen, "%s", "");
    cJSON *j = NULL;
    if (!is_file(p) || pb_json_read_file(p, &j, NULL, 0)) return;
    const char *mt = pb_jstr(j, "model_type", "");
    if (!strcmp(mt, "vit") || !strcmp(mt, "roberta")) snprintf(arch, archlen, "%s", mt);
    cJSON_Delete(j);
}

int pb_dataset_is_text(const char *spec) { return !strncmp(spec, "glue/", 5); }

int pb_arch_is_text(const char *arch) { return !strcmp(arch, "roberta") ? 1 : !strcmp(arch, "vit") ? 0 : -1; }

int pb_suite_pairs(const pb_suite *s, int mi, int di) {
    int t = pb_arch_is_text(s->model_arch[mi]);
    return t < 0 || t == pb_dataset_is_text(cJSON_GetObjectItem(s->datasets[di], "spec")->valuestring);
}

// ----------------------------------------------------------------------------
// Recipe

static pb_status recipe_defaults(cJSON **out) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "epochs", 10);
    cJSON_AddNumberToObject(r, "batch", 32);
    cJSON_AddNumberToObject(r, "eval_batch", 256);
    cJSON_AddNumberToObject(r, "lr", 1e-3);
    cJSON_AddNullToObject(r, "head_lr"); // null: same as the (scaled) lr
    cJSON_AddNumberToObject(r, "lr_scale", 1);
    cJSON_AddNumberToObject(r, "beta1", 0.9);
    cJSON_AddNumberToObject(r, "beta2", 0.999);
    cJSON_AddNumberToObject(r, "eps", 1e-8);
    cJSON_AddNumberToObject(r, "weight_decay", 0);
    cJSON_AddNumberToObject(r, "warmup_steps", 0);
    cJSON_AddNumberToObject(r, "warmup_ratio", 0);
    cJSON_AddStringToObject(r, "schedule", "linear");
    cJSON_AddNumberToObject(r, "label_smoothing", 0);
    cJSON_AddFalseToObject(r, "flip");
    cJSON_AddNumberToObject(r, "train_subset", 0);
    cJSON_AddNumberToObject(r, "max_grad_norm", 0);
    cJSON_AddTrueToObject(r, "feature_cache");
    *out = r;
    return PB_OK;
}

// Validates one flat recipe value and stores a copy in dst.
static pb_status recipe_set(cJSON *dst, const char *key, const cJSON *v, const char *file,
                            const char *path, char *err, size_t errlen) {
    if (!in_list(key, pb_recipe_keys))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: unknown recipe key", file, path);
    if (!strcmp(key, "schedule")) {
        if (!cJSON_IsString(v) || (strcmp(v->valuestring, "constant") && strcmp(v->valuestring, "linear") &&
                                   strcmp(v->valuestring, "cosine")))
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: %s: expected \"constant\", \"linear\" or \"cosine\"", file, path);
    } else if (!strcmp(key, "flip") || !strcmp(key, "feature_cache")) {
        if (!cJSON_IsBool(v))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected true or false", file, path);
    } else if (!strcmp(key, "head_lr") && cJSON_IsNull(v)) {
        // null allowed: follow lr
    } else {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected a number", file, path);
        double x = v->valuedouble;
        int integer = !strcmp(key, "epochs") || !strcmp(key, "batch") || !strcmp(key, "eval_batch") ||
                      !strcmp(key, "warmup_steps") || !strcmp(key, "train_subset");
        if (integer && (x != floor(x) || x < 0))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected a non-negative integer", file, path);
        if ((!strcmp(key, "epochs") || !strcmp(key, "batch") || !strcmp(key, "eval_batch")) && x < 1)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: must be >= 1", file, path);
        if (!integer && x < 0)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: must be >= 0", file, path);
        if ((!strcmp(key, "beta1") || !strcmp(key, "beta2") || !strcmp(key, "warmup_ratio") ||
             !strcmp(key, "label_smoothing")) && x >= 1)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: must be < 1", file, path);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(dst, key);
    cJSON_AddItemToObject(dst, key, cJSON_Duplicate(v, 1));
    return PB_OK;
}

// "recipe" block: flat keys plus the nested "optimizer" and "augment" forms.
static pb_status parse_recipe(const cJSON *j, cJSON *r, const char *file, char *err, size_t errlen) {
    if (!j) return PB_OK;
    static const char *const allowed[] = {"epochs", "batch", "eval_batch", "lr", "head_lr", "lr_scale",
                                          "optimizer", "weight_decay", "warmup_steps", "warmup_ratio",
                                          "schedule", "label_smoothing", "augment", "train_subset",
                                          "max_grad_norm", "feature_cache", NULL};
    pb_status st = pb_json_check_keys(j, allowed, file, "recipe", err, errlen);
    if (st) return st;
    char path[256];
    for (const cJSON *c = j->child; c; c = c->next) {
        snprintf(path, sizeof(path), "recipe.%s", c->string);
        if (!strcmp(c->string, "optimizer")) {
            static const char *const oa[] = {"name", "betas", "eps", NULL};
            if ((st = pb_json_check_keys(c, oa, file, "recipe.optimizer", err, errlen))) return st;
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
            if (name && (!cJSON_IsString(name) || strcmp(name->valuestring, "adamw")))
                return pb_errf(PB_ERR_FORMAT, err, errlen,
                               "%s: recipe.optimizer.name: only \"adamw\" is supported", file);
            const cJSON *betas = cJSON_GetObjectItemCaseSensitive(c, "betas");
            if (betas) {
                if (!cJSON_IsArray(betas) || cJSON_GetArraySize(betas) != 2)
                    return pb_errf(PB_ERR_FORMAT, err, errlen,
                                   "%s: recipe.optimizer.betas: expected [beta1, beta2]", file);
                if ((st = recipe_set(r, "beta1", cJSON_GetArrayItem(betas, 0), file,
                                     "recipe.optimizer.betas[0]", err, errlen)))
                    return st;
                if ((st = recipe_set(r, "beta2", cJSON_GetArrayItem(betas, 1), file,
                                     "recipe.optimizer.betas[1]", err, errlen)))
                    return st;
            }
            const cJSON *eps = cJSON_GetObjectItemCaseSensitive(c, "eps");
            if (eps && (st = recipe_set(r, "eps", eps, file, "recipe.optimizer.eps", err, errlen))) return st;
        } else if (!strcmp(c->string, "augment")) {
            static const char *const aa[] = {"flip", NULL};
            if ((st = pb_json_check_keys(c, aa, file, "recipe.augment", err, errlen))) return st;
            const cJSON *flip = cJSON_GetObjectItemCaseSensitive(c, "flip");
            if (flip && (st = recipe_set(r, "flip", flip, file, "recipe.augment.flip", err, errlen))) return st;
        } else if ((st = recipe_set(r, c->string, c, file, path, err, errlen))) {
            return st;
        }
    }
    return PB_OK;
}

// ----------------------------------------------------------------------------
// Models

static const char *const model_cfg_keys[] = {
    "arch", "hidden", "layers", "heads", "intermediate", "image_size", "patch_size", "channels",
    "qkv_bias", "ln_eps", "hidden_dropout", "attn_dropout", "classifier_dropout", "vocab_size",
    "max_positions", "type_vocab", "pad_id", "initializer_range", NULL};

static pb_status parse_model(const cJSON *j, int idx, pb_suite *s, char *err, size_t errlen) {
    const char *file = s->file;
    char path[64];
    snprintf(path, sizeof(path), "models[%d]", idx);
    cJSON *m = cJSON_CreateObject();
    s->models[idx] = m;
    int hidden = 0, inter = 0;
    char arch[16] = "";
    if (cJSON_IsString(j)) {
        const char *n = j->valuestring;
        if (builtin_known(n)) {
            cJSON_AddStringToObject(m, "label", n);
            cJSON_AddStringToObject(m, "source", "builtin");
            cJSON_AddStringToObject(m, "builtin", n);
            builtin_dims(n, &hidden, &inter, arch, sizeof(arch));
        } else if (strchr(n, '/') || is_dir(n)) {
            const char *base = strrchr(n, '/');
            cJSON_AddStringToObject(m, "label", base && base[1] ? base + 1 : n);
            cJSON_AddStringToObject(m, "source", "dir");
            cJSON_AddStringToObject(m, "dir", n);
            dir_arch(n, arch, sizeof arch);
        } else {
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: %s: '%s' is neither a built-in model (vit-b16, vit-l16, vit-tiny, "
                           "vit-small, roberta-base, roberta-large, roberta-tiny) nor a checkpoint directory",
                           file, path, n);
        }
    } else if (cJSON_IsObject(j)) {
        static const char *const allowed[] = {"label", "builtin", "dir", "config", "pretrain", "grid", NULL};
        pb_status st = pb_json_check_keys(j, allowed, file, path, err, errlen);
        if (st) return st;
        const cJSON *mg = cJSON_GetObjectItemCaseSensitive(j, "grid");
        if (mg && !cJSON_IsObject(mg))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.grid: expected an object of axis lists", file, path);
        if (mg) s->model_grid[idx] = cJSON_Duplicate(mg, 1); // checked against the suite grid later
        char label[64], builtin[64], dir[1024];
        if ((st = pb_json_str(j, "label", "", label, sizeof(label), file, path, err, errlen))) return st;
        if ((st = pb_json_str(j, "builtin", "", builtin, sizeof(builtin), file, path, err, errlen))) return st;
        if ((st = pb_json_str(j, "dir", "", dir, sizeof(dir), file, path, err, errlen))) return st;
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
        const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "pretrain");
        if (builtin[0] && dir[0])
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: give either builtin or dir, not both", file, path);
        if (dir[0] && (cfg || pre))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: a checkpoint dir takes no config/pretrain", file, path);
        if (builtin[0] && !builtin_known(builtin))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.builtin: unknown model '%s'", file, path, builtin);
        if (!builtin[0] && !dir[0] && !cfg)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: needs builtin, dir or config", file, path);
        if (builtin[0]) builtin_dims(builtin, &hidden, &inter, arch, sizeof(arch));
        if (dir[0]) dir_arch(dir, arch, sizeof arch);
        cJSON_AddStringToObject(m, "label", label[0] ? label : builtin[0] ? builtin : dir[0] ? dir : "model");
        cJSON_AddStringToObject(m, "source", dir[0] ? "dir" : pre ? "pretrain" : "builtin");
        if (builtin[0]) cJSON_AddStringToObject(m, "builtin", builtin);
        if (dir[0]) cJSON_AddStringToObject(m, "dir", dir);
        if (cfg) {
            char cpath[96];
            snprintf(cpath, sizeof(cpath), "%s.config", path);
            if ((st = pb_json_check_keys(cfg, model_cfg_keys, file, cpath, err, errlen))) return st;
            for (const cJSON *c = cfg->child; c; c = c->next) {
                if (!strcmp(c->string, "arch")) {
                    if (!cJSON_IsString(c) || (strcmp(c->valuestring, "vit") && strcmp(c->valuestring, "roberta")))
                        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.arch: expected \"vit\" or \"roberta\"", file, cpath);
                    if (arch[0] && strcmp(arch, c->valuestring))
                        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.arch: '%s' contradicts builtin '%s'", file, cpath, c->valuestring, builtin);
                    snprintf(arch, sizeof(arch), "%s", c->valuestring);
                } else if (!cJSON_IsNumber(c) && !cJSON_IsBool(c)) {
                    return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.%s: expected a number", file, cpath, c->string);
                }
            }
            if (!arch[0])
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.arch: required without builtin", file, cpath);
            double v;
            // range-checked before the conversion to int (a huge number would be undefined behaviour)
            if ((st = pb_json_num(cfg, "hidden", hidden, &v, file, cpath, err, errlen))) return st;
            if (!(v >= 0 && v <= PB_CFG_MAX_HIDDEN))
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.hidden: expected 1..%d", file, cpath, PB_CFG_MAX_HIDDEN);
            hidden = (int)v;
            if ((st = pb_json_num(cfg, "intermediate", inter, &v, file, cpath, err, errlen))) return st;
            if (!(v >= 0 && v <= PB_CFG_MAX_INTERMEDIATE))
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.intermediate: expected 1..%d", file, cpath,
                               PB_CFG_MAX_INTERMEDIATE);
            inter = (int)v;
            if (!builtin[0] && (hidden <= 0 || inter <= 0))
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: hidden and intermediate are required without builtin", file, cpath);
            cJSON *c2 = cJSON_Duplicate(cfg, 1);
            if (!cJSON_GetObjectItemCaseSensitive(c2, "arch")) cJSON_AddStringToObject(c2, "arch", arch);
            cJSON_AddItemToObject(m, "config", c2);
        }
        if (pre) {
            char ppath[96];
            snprintf(ppath, sizeof(ppath), "%s.pretrain", path);
            static const char *const pa[] = {"dataset", "epochs", "batch", "lr", "weight_decay",
                                             "train_subset", "seed", "schedule", "warmup_ratio",
                                             "flip", "label_smoothing", "objective", "tokenizer_dir",
                                             "seq_len", "mlm_probability", NULL};
            if ((st = pb_json_check_keys(pre, pa, file, ppath, err, errlen))) return st;
            cJSON *p = cJSON_CreateObject();
            cJSON_AddItemToObject(m, "pretrain", p);
            char ds[512];
            if ((st = pb_json_str(pre, "dataset", "", ds, sizeof(ds), file, ppath, err, errlen))) return st;
            if (!ds[0]) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.dataset: required", file, ppath);
            cJSON_AddStringToObject(p, "dataset", ds);
            if ((st = suite_pretrain_mlm(pre, p, arch, file, ppath, err, errlen))) return st;
            // The pretraining stage reuses the recipe validation with its own defaults.
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "epochs", 2);
            cJSON_AddNumberToObject(r, "batch", 128);
            cJSON_AddNumberToObject(r, "lr", 1e-3);
            cJSON_AddNumberToObject(r, "weight_decay", 0.05);
            cJSON_AddNumberToObject(r, "train_subset", 0);
            cJSON_AddStringToObject(r, "schedule", "cosine");
            cJSON_AddNumberToObject(r, "warmup_ratio", 0.05);
            cJSON_AddFalseToObject(r, "flip");
            cJSON_AddNumberToObject(r, "label_smoothing", 0);
            char kp[160];
            for (const cJSON *c = pre->child; c; c = c->next) {
                if (!strcmp(c->string, "dataset") || !strcmp(c->string, "seed") || pretrain_mlm_key(c->string))
                    continue;
                snprintf(kp, sizeof(kp), "%s.%s", ppath, c->string);
                if ((st = recipe_set(r, c->string, c, file, kp, err, errlen))) {
                    cJSON_Delete(r);
                    return st;
                }
            }
            for (cJSON *c = r->child; c; c = c->next) cJSON_AddItemToObject(p, c->string, cJSON_Duplicate(c, 1));
            cJSON_Delete(r);
            double seed;
            if ((st = pb_json_num(pre, "seed", 0, &seed, file, ppath, err, errlen))) return st;
            if (!(seed >= 0 && seed <= PB_SEED_MAX && seed == floor(seed)))
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.seed: expected an integer in [0, %d]", file, ppath,
                               PB_SEED_MAX);
            cJSON_AddNumberToObject(p, "seed", seed);
        }
    } else {
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected a model name or object", file, path);
    }
    for (int i = 0; i < idx; i++)
        if (!strcmp(cJSON_GetObjectItem(s->models[i], "label")->valuestring,
                    cJSON_GetObjectItem(m, "label")->valuestring))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.label: duplicate model label '%s'",
                           file, path, cJSON_GetObjectItem(m, "label")->valuestring);
    s->model_hidden[idx] = hidden;
    s->model_inter[idx] = inter;
    snprintf(s->model_arch[idx], sizeof s->model_arch[idx], "%s", arch);
    return PB_OK;
}

// ----------------------------------------------------------------------------
// Datasets

static pb_status parse_dataset(const cJSON *j, int idx, pb_suite *s, char *err, size_t errlen) {
    const char *file = s->file;
    char path[64];
    snprintf(path, sizeof(path), "datasets[%d]", idx);
    cJSON *d = cJSON_CreateObject();
    s->datasets[idx] = d;
    const char *spec = NULL;
    if (cJSON_IsString(j)) {
        spec = j->valuestring;
    } else if (cJSON_IsObject(j)) {
        static const char *const allowed[] = {"spec", "label", "ref", "group", "image_size", "channels", "resize",
                                              "norm", "seq_len", "tokenizer_dir", "split_protocol",
                                              "data_root", NULL};
        pb_status st = pb_json_check_keys(j, allowed, file, path, err, errlen);
        if (st) return st;
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "spec");
        if (!cJSON_IsString(sp))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.spec: required string", file, path);
        spec = sp->valuestring;
        for (const cJSON *c = j->child; c; c = c->next) {
            if (!strcmp(c->string, "spec")) continue;
            int is_str = !strcmp(c->string, "label") || !strcmp(c->string, "ref") || !strcmp(c->string, "group") ||
                         !strcmp(c->string, "resize") ||
                         !strcmp(c->string, "norm") || !strcmp(c->string, "tokenizer_dir") ||
                         !strcmp(c->string, "split_protocol") || !strcmp(c->string, "data_root");
            if (is_str ? !cJSON_IsString(c) : !cJSON_IsNumber(c))
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.%s: expected a %s", file, path, c->string,
                               is_str ? "string" : "number");
            if (!strcmp(c->string, "label") || !strcmp(c->string, "ref") || !strcmp(c->string, "group")) continue;
            cJSON_AddItemToObject(d, c->string, cJSON_Duplicate(c, 1));
        }
    } else {
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected a spec string or object", file, path);
    }
    static const char *const kinds[] = {"vtab-mini/", "vtab1k:", "fgvc:", "cifar10:", "cifar100:", "idx:",
                                        "folder:", "glue/", NULL};
    int ok = 0;
    for (int i = 0; kinds[i]; i++)
        if (!strncmp(spec, kinds[i], strlen(kinds[i]))) ok = 1;
    if (!ok || strlen(spec) >= 512)
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: %s: unknown dataset spec '%s' (expected vtab-mini/<task>, vtab1k:<dir>, "
                       "fgvc:<dir>, cifar10:<dir>, cifar100:<dir>, idx:<dir>, folder:<dir>, glue/<task>:<dir>)",
                       file, path, spec);
    cJSON_AddStringToObject(d, "spec", spec);
    // Default label: the last path component (or the vtab-mini task name).
    const cJSON *lab = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "label") : NULL;
    char label[128];
    if (lab) {
        snprintf(label, sizeof(label), "%s", lab->valuestring);
    } else {
        const char *p = strrchr(spec, '/');
        const char *q = strrchr(spec, ':');
        const char *b = p && (!q || p > q) ? p + 1 : q ? q + 1 : spec;
        if (!*b) b = spec;
        snprintf(label, sizeof(label), "%s", b);
    }
    cJSON_AddStringToObject(d, "label", label);
    const cJSON *ref = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "ref") : NULL;
    cJSON_AddStringToObject(d, "ref", ref ? ref->valuestring : label);
    // The table's column group (VTAB's natural / specialized / structured): only when given, so
    // that the cell ids of suites without groups stay what they were.
    const cJSON *grp = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "group") : NULL;
    if (grp) cJSON_AddStringToObject(d, "group", grp->valuestring);
    for (int i = 0; i < idx; i++)
        if (!strcmp(cJSON_GetObjectItem(s->datasets[i], "label")->valuestring, label))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: duplicate dataset label '%s'", file, path, label);
    return PB_OK;
}

// ----------------------------------------------------------------------------
// Methods

// Validates v as option key of method d (the descriptor's type, range and choices). The error
// names file and key path.
static pb_status method_opt_check(const pb_method_desc *d, const char *key, const cJSON *v, const char *file,
                                  const char *path, char *err, size_t errlen) {
    pb_method_config c;
    char e2[512];
    pb_status st = pb_method_config_init(&c, d->name, 0, e2, sizeof e2);
    if (!st) st = pb_method_config_set_json(&c, key, v, e2, sizeof e2);
    if (st) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: %s", file, path, e2);
    return PB_OK;
}

// A grid axis or override value for option key: valid for every suite method that has the key.
static pb_status suite_opt_check(const pb_suite *s, const char *key, const cJSON *v, const char *file,
                                 const char *path, char *err, size_t errlen) {
    for (int i = 0; i < s->nmethods; i++) {
        const pb_method_desc *d = pb_method_find(cJSON_GetObjectItem(s->methods[i], "method")->valuestring);
        if (!pb_method_opt_find(d, key)) continue;
        pb_status st = method_opt_check(d, key, v, file, path, err, errlen);
        if (st) return st;
    }
    return PB_OK;
}

static pb_status parse_method(const cJSON *j, int idx, pb_suite *s, char *err, size_t errlen) {
    const char *file = s->file;
    char path[64], kp[128];
    snprintf(path, sizeof(path), "methods[%d]", idx);
    cJSON *m = cJSON_CreateObject();
    s->methods[idx] = m;
    const char *name = NULL;
    if (cJSON_IsString(j)) name = j->valuestring;
    else if (cJSON_IsObject(j)) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "method");
        if (!cJSON_IsString(n)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.method: required string", file, path);
        name = n->valuestring;
    } else {
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected a method name or object", file, path);
    }
    const pb_method_desc *desc = pb_method_find(name);
    if (!desc) {
        char known[512];
        pb_method_list(known, sizeof(known));
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: unknown method '%s' (known: %s)", file, path, name,
                       known);
    }
    cJSON_AddStringToObject(m, "method", name);
    const cJSON *lab = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "label") : NULL;
    if (lab && !cJSON_IsString(lab)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.label: expected a string", file, path);
    cJSON_AddStringToObject(m, "label", lab ? lab->valuestring : name);
    const cJSON *ref = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "ref") : NULL;
    if (ref && !cJSON_IsString(ref)) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.ref: expected a string", file, path);
    cJSON_AddStringToObject(m, "ref", ref ? ref->valuestring : "");
    pb_status st;
    if (cJSON_IsObject(j)) {
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddItemToObject(m, "recipe", rec);
        for (const cJSON *c = j->child; c; c = c->next) {
            const char *k = c->string;
            snprintf(kp, sizeof(kp), "%s.%s", path, k);
            if (!strcmp(k, "method") || !strcmp(k, "label") || !strcmp(k, "ref")) continue;
            if (!strcmp(k, "grid")) {
                // this method's own values for axes of the suite grid: checked once that grid is read
                if (!cJSON_IsObject(c))
                    return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected an object of axis lists", file, kp);
                cJSON_AddItemToObject(m, "grid", cJSON_Duplicate(c, 1));
            } else if (pb_method_opt_find(desc, k)) {
                if ((st = method_opt_check(desc, k, c, file, kp, err, errlen))) return st;
                cJSON_AddItemToObject(m, k, cJSON_Duplicate(c, 1));
            } else if (in_list(k, pb_recipe_keys)) {
                if ((st = recipe_set(rec, k, c, file, kp, err, errlen))) return st;
            } else {
                char opts[512] = "";
                size_t u = 0;
                for (int i = 0; i < desc->nopts && u < sizeof opts; i++)
                    u += (size_t)snprintf(opts + u, sizeof opts - u, "%s, ", desc->opts[i].key);
                if (opts[0]) opts[strlen(opts) - 2] = 0;
                return pb_errf(PB_ERR_FORMAT, err, errlen,
                               "%s: %s: method '%s' has no option '%s' (its options: %s; besides label, ref, grid "
                               "and recipe keys)",
                               file, kp, name, k, opts[0] ? opts : "none");
            }
        }
    } else {
        cJSON_AddItemToObject(m, "recipe", cJSON_CreateObject());
    }
    for (int i = 0; i < idx; i++)
        if (!strcmp(cJSON_GetObjectItem(s->methods[i], "label")->valuestring,
                    cJSON_GetObjectItem(m, "label")->valuestring))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.label: duplicate method label '%s'", file, path,
                           cJSON_GetObjectItem(m, "label")->valuestring);
    return PB_OK;
}

// ----------------------------------------------------------------------------
// Suite

pb_status pb_suite_set_pretrain_seed(pb_suite *s, int seed, char *err, size_t errlen) {
    int np = 0;
    for (int i = 0; i < s->nmodels; i++) {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(s->models[i], "pretrain");
        if (!cJSON_IsObject(p)) continue;
        cJSON_ReplaceItemInObjectCaseSensitive(p, "seed", cJSON_CreateNumber(seed));
        np++;
    }
    if (!np)
        return pb_errf(PB_ERR_ARG, err, errlen, "--pretrain-seed: %s pretrains no backbone (no model has a \"pretrain\" "
                       "block)", s->file);
    return PB_OK;
}

void pb_suite_free(pb_suite *s) {
    for (int i = 0; i < s->nmodels; i++) cJSON_Delete(s->models[i]);
    for (int i = 0; i < PB_SUITE_MAX; i++) cJSON_Delete(s->model_grid[i]); // set before nmodels counts it
    for (int i = 0; i < s->ndatasets; i++) cJSON_Delete(s->datasets[i]);
    for (int i = 0; i < s->nmethods; i++) cJSON_Delete(s->methods[i]);
    cJSON_Delete(s->recipe);
    cJSON_Delete(s->eval);
    cJSON_Delete(s->grid);
    cJSON_Delete(s->overrides);
    memset(s, 0, sizeof(*s));
}

static pb_status parse_list(const cJSON *root, const char *key, int *n, const pb_suite *s, char *err,
                            size_t errlen) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: required", s->file, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected a non-empty list (empty grid)", s->file, key);
    if (cJSON_GetArraySize(a) > PB_SUITE_MAX)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: at most %d entries", s->file, key, PB_SUITE_MAX);
    *n = cJSON_GetArraySize(a);
    return PB_OK;
}

// The method's size rule on every model whose dimensions are known, for the entry's rank and
// every rank on the grid axis (pb_method_estimate checks each target linear).
static pb_status check_ranks(const pb_suite *s, char *err, size_t errlen) {
    for (int mi = 0; mi < s->nmethods; mi++) {
        const cJSON *m = s->methods[mi];
        // the method's own rank values when its grid gives them, else the suite's
        const cJSON *mg0 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "grid"), "rank");
        const pb_method_desc *d = pb_method_find(cJSON_GetObjectItem(m, "method")->valuestring);
        if (!d->rank_limit || !pb_method_opt_find(d, "rank")) continue;
        for (int k = 0; k < s->nmodels; k++) {
            if (s->model_hidden[k] <= 0) continue; // unknown until the checkpoint is read; the method checks again
            // the model's own rank values, else the method's, else the suite's (as grid.c applies them)
            const cJSON *kg = cJSON_GetObjectItemCaseSensitive(s->model_grid[k], "rank");
            const cJSON *mg = kg ? NULL : mg0;
            const cJSON *gr = kg ? kg : mg ? mg : cJSON_GetObjectItemCaseSensitive(s->grid, "rank");
            pb_model_config cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.hidden = s->model_hidden[k];
            cfg.intermediate = s->model_inter[k] > 0 ? s->model_inter[k] : cfg.hidden;
            cfg.layers = 1;
            const cJSON *one = cJSON_GetObjectItemCaseSensitive(m, "rank");
            int nr = gr ? cJSON_GetArraySize(gr) : 0;
            for (int ri = -1; ri < nr; ri++) {
                const cJSON *rv = ri < 0 ? one : cJSON_GetArrayItem(gr, ri);
                if (!rv) continue;
                pb_method_config c;
                char e2[512];
                pb_method_cost cost;
                pb_status st = pb_method_config_from_json(m, 0, &c, e2, sizeof e2);
                if (!st) st = pb_method_config_set_json(&c, "rank", rv, e2, sizeof e2);
                if (!st) pb_method_config_finish(&c);
                if (!st) st = pb_method_estimate(&c, &cfg, 0, 0, &cost, e2, sizeof e2);
                if (st) {
                    char where[64];
                    if (ri < 0) snprintf(where, sizeof where, "methods[%d].rank", mi);
                    else if (kg) snprintf(where, sizeof where, "models[%d].grid.rank[%d]", k, ri);
                    else if (mg) snprintf(where, sizeof where, "methods[%d].grid.rank[%d]", mi, ri);
                    else snprintf(where, sizeof where, "grid.rank[%d]", ri);
                    return pb_errf(PB_ERR_ARG, err, errlen, "%s: %s: %s on model '%s'", s->file, where, e2,
                                   cJSON_GetObjectItem(s->models[k], "label")->valuestring);
                }
            }
        }
    }
    return PB_OK;
}

typedef struct {
    char *text; // canonical JSON of the value
    int idx;
} axis_val;

static int cmp_axis_val(const void *a, const void *b) {
    const axis_val *x = a, *y = b;
    int c = strcmp(x->text, y->text);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

// Two equal values on one grid axis are an error naming the later one. Sorted canonical forms:
// O(n log n) (a pairwise compare made a 10^5-value axis take minutes).
static pb_status axis_duplicates(const cJSON *axis, const char *file, const char *kp, char *err, size_t errlen) {
    int n = cJSON_GetArraySize(axis), i = 0;
    axis_val *v = pb_xmalloc(sizeof(axis_val) * (size_t)(n ? n : 1));
    for (const cJSON *c = axis->child; c; c = c->next, i++) v[i] = (axis_val){pb_json_canonical(c), i};
    qsort(v, (size_t)n, sizeof(axis_val), cmp_axis_val);
    int dup = -1;
    for (i = 1; i < n && dup < 0; i++)
        if (!strcmp(v[i].text, v[i - 1].text)) dup = v[i].idx;
    for (i = 0; i < n; i++) free(v[i].text);
    free(v);
    if (dup >= 0) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s[%d]: duplicate value", file, kp, dup);
    return PB_OK;
}

// A label (model, dataset, method) or ref: 1..PB_LABEL_MAX bytes of well-formed UTF-8 without
// control characters, so that every table, plot and result file holds it whole and two
// distinct labels never merge. `obj` is the resolved entry; where its label was derived (from a
// directory or spec) the message says so.
static pb_status check_labels(const cJSON *obj, const char *file, const char *path, int derived, char *err,
                              size_t errlen) {
    const char *keys[3] = {"label", "ref", "group"};
    for (int k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItem(obj, keys[k]);
        if (!cJSON_IsString(v)) continue;
        const char *t = v->valuestring;
        size_t n = strlen(t);
        if (k == 1 && n == 0) continue; // an empty ref means "none"
        int ctrl = 0;
        for (const unsigned char *p = (const unsigned char *)t; *p; p++) ctrl |= *p < 0x20 || *p == 0x7f;
        if (n == 0 || n > PB_LABEL_MAX || ctrl || !pb_utf8_valid(t))
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: %s.%s: %s must be 1-%d bytes of UTF-8 without control characters (%s%zu bytes%s)%s",
                           file, path, keys[k], keys[k], PB_LABEL_MAX, ctrl ? "control characters, " : "", n,
                           pb_utf8_valid(t) ? "" : ", not valid UTF-8",
                           derived && k == 0 ? "; it was derived from the entry: give a shorter \"label\"" : "");
    }
    return PB_OK;
}

// One grid-axis value at path vp: a seed, an option of method d (d NULL: of every suite method
// that has it), or a recipe value.
static pb_status axis_value_check(const pb_suite *s, const pb_method_desc *d, const char *k, const cJSON *v,
                                  const char *file, const char *vp, char *err, size_t errlen) {
    if (!strcmp(k, "seed")) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > PB_SEED_MAX ||
            v->valuedouble != floor(v->valuedouble))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected an integer in [0, %d]", file, vp, PB_SEED_MAX);
        return PB_OK;
    }
    if (pb_method_option_key(k))
        return d ? method_opt_check(d, k, v, file, vp, err, errlen) : suite_opt_check(s, k, v, file, vp, err, errlen);
    cJSON *tmp = cJSON_CreateObject();
    pb_status st = recipe_set(tmp, k, v, file, vp, err, errlen);
    cJSON_Delete(tmp);
    return st;
}

// An own grid (models[i].grid or methods[i].grid, at path `where`, by `whose` "model" or
// "method"): per axis, its own values for an axis of the suite grid (so every cell records it and
// the tables and plots see it), a non-empty list of distinct values, each checked against method d
// (NULL: as the suite grid's, valid for every method with the option).
static pb_status check_own_grid(const pb_suite *s, const cJSON *g, const char *where, const char *whose,
                                const pb_method_desc *d, char *err, size_t errlen) {
    char kp[160], vp[200];
    for (const cJSON *c = g->child; c; c = c->next) {
        const char *k = c->string;
        snprintf(kp, sizeof kp, "%s.%s", where, k);
        if (strcmp(k, "seed") && !pb_method_option_key(k) && !in_list(k, pb_recipe_keys))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: unknown axis (seed, a method option or a recipe key)",
                           s->file, kp);
        if (!cJSON_GetObjectItemCaseSensitive(s->grid, k))
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: %s: not an axis of the suite's \"grid\" (a %s's grid gives its own values for "
                           "the suite's axes: add \"%s\" to \"grid\")",
                           s->file, kp, whose, k);
        if (d && pb_method_option_key(k) && !pb_method_opt_find(d, k))
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: method '%s' has no option '%s'", s->file, kp, d->name, k);
        if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) == 0)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected a non-empty list (empty grid)", s->file, kp);
        int idx = 0;
        for (const cJSON *v = c->child; v; v = v->next, idx++) {
            snprintf(vp, sizeof vp, "%s[%d]", kp, idx);
            pb_status st = axis_value_check(s, d, k, v, s->file, vp, err, errlen);
            if (st) return st;
        }
        pb_status st = axis_duplicates(c, s->file, kp, err, errlen);
        if (st) return st;
    }
    return PB_OK;
}

// methods[i].grid replaces the suite grid's values for that method (e.g. its own lr_scale
// range), checked against the method; models[i].grid replaces the suite's and the methods' for
// the cells of that model (e.g. a text model's smaller grid beside a ViT's).
static pb_status check_own_grids(const pb_suite *s, char *err, size_t errlen) {
    char where[64];
    for (int i = 0; i < s->nmethods; i++) {
        const cJSON *mg = cJSON_GetObjectItemCaseSensitive(s->methods[i], "grid");
        if (!mg) continue;
        snprintf(where, sizeof where, "methods[%d].grid", i);
        pb_status st = check_own_grid(s, mg, where, "method",
                                      pb_method_find(cJSON_GetObjectItem(s->methods[i], "method")->valuestring), err,
                                      errlen);
        if (st) return st;
    }
    for (int i = 0; i < s->nmodels; i++) {
        if (!s->model_grid[i]) continue;
        snprintf(where, sizeof where, "models[%d].grid", i);
        pb_status st = check_own_grid(s, s->model_grid[i], where, "model", NULL, err, errlen);
        if (st) return st;
    }
    return PB_OK;
}

// Modality pairing (pb_suite_pairs): every dataset must fit some model of the suite and every model
// some dataset; in a suite with both image and text datasets every model's arch must be known.
static pb_status check_modalities(const pb_suite *s, char *err, size_t errlen) {
    static const char *const kind[2] = {"an image", "a text"};
    static const char *const needs[2] = {"a ViT model (arch vit)", "a RoBERTa model (arch roberta)"};
    static const char *const specs[2] = {"vtab-mini/<task>, vtab1k:, fgvc:, cifar10:, cifar100:, idx:, folder:",
                                         "glue/<task>:<dir>"};
    int has[2] = {0, 0};
    for (int di = 0; di < s->ndatasets; di++)
        has[pb_dataset_is_text(cJSON_GetObjectItem(s->datasets[di], "spec")->valuestring)] = 1;
    for (int mi = 0; mi < s->nmodels && has[0] && has[1]; mi++)
        if (pb_arch_is_text(s->model_arch[mi]) < 0)
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: models[%d]: cannot tell whether checkpoint '%s' is a ViT or a RoBERTa (its "
                           "config.json is not readable or has no model_type \"vit\"/\"roberta\"), and the suite "
                           "has both image and text datasets: put the checkpoint in place",
                           s->file, mi, pb_jstr(s->models[mi], "dir", "?"));
    char list[512];
    size_t u = 0;
    list[0] = 0;
    for (int mi = 0; mi < s->nmodels && u < sizeof list; mi++)
        u += (size_t)snprintf(list + u, sizeof list - u, "%s%s (%s)", mi ? ", " : "",
                              cJSON_GetObjectItem(s->models[mi], "label")->valuestring,
                              s->model_arch[mi][0] ? s->model_arch[mi] : "arch unknown");
    for (int di = 0; di < s->ndatasets; di++) {
        int mi = 0;
        while (mi < s->nmodels && !pb_suite_pairs(s, mi, di)) mi++;
        if (mi < s->nmodels) continue;
        const char *spec = cJSON_GetObjectItem(s->datasets[di], "spec")->valuestring;
        int t = pb_dataset_is_text(spec);
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: datasets[%d]: '%s' is %s dataset and no model of the suite takes it (it needs %s; the "
                       "suite's models: %s)",
                       s->file, di, spec, kind[t], needs[t], list);
    }
    for (int mi = 0; mi < s->nmodels; mi++) {
        int di = 0;
        while (di < s->ndatasets && !pb_suite_pairs(s, mi, di)) di++;
        if (di < s->ndatasets) continue;
        int t = pb_arch_is_text(s->model_arch[mi]) > 0; // known: an unknown arch pairs with everything
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: models[%d]: '%s' is %s and no dataset of the suite fits it (it takes %s datasets: %s)",
                       s->file, mi, cJSON_GetObjectItem(s->models[mi], "label")->valuestring, needs[t],
                       t ? "text" : "image", specs[t]);
    }
    return PB_OK;
}

pb_status pb_suite_parse(const char *text, const char *name, pb_suite *s, char *err, size_t errlen) {
    memset(s, 0, sizeof(*s));
    snprintf(s->file, sizeof(s->file), "%s", name);
    cJSON *root = NULL;
    pb_status st = pb_json_parse_text(text, name, &root, err, errlen);
    if (st) return st;
    const char *file = s->file;
    static const char *const allowed[] = {"name", "description", "trainer", "reference", "models", "datasets",
                                          "methods", "grid", "recipe", "eval", "overrides", NULL};
    if ((st = pb_json_check_keys(root, allowed, file, "", err, errlen))) goto done;
    if ((st = pb_json_str(root, "name", "", s->name, sizeof(s->name), file, "", err, errlen))) goto done;
    if (!s->name[0]) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: name: required", file);
        goto done;
    }
    for (const char *p = s->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.')) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: name: use only letters, digits, '-', '_', '.'", file);
            goto done;
        }
    if ((st = pb_json_str(root, "description", "", s->description, sizeof(s->description), file, "", err, errlen))) goto done;
    if ((st = pb_json_str(root, "trainer", "engine", s->trainer, sizeof(s->trainer), file, "", err, errlen))) goto done;
    if (strcmp(s->trainer, "engine")) {
        // every number peftbench reports is measured on its engine; there is no other trainer
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: trainer: expected \"engine\" (the only trainer)", file);
        goto done;
    }
    if ((st = pb_json_str(root, "reference", "", s->reference, sizeof(s->reference), file, "", err, errlen))) goto done;

    int n = 0;
    if ((st = parse_list(root, "models", &n, s, err, errlen))) goto done;
    for (int i = 0; i < n; i++) {
        s->nmodels = i + 1;
        const cJSON *mj = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "models"), i);
        if ((st = parse_model(mj, i, s, err, errlen))) goto done;
        char lp[32];
        snprintf(lp, sizeof lp, "models[%d]", i);
        if ((st = check_labels(s->models[i], file, lp, !cJSON_GetObjectItem(mj, "label"), err, errlen))) goto done;
        // a built-in or inline config is checked now (limits, heads | hidden), not when a cell runs
        const cJSON *src = cJSON_GetObjectItem(s->models[i], "source");
        if (!cJSON_IsString(src) || strcmp(src->valuestring, "dir")) {
            pb_model_config mc;
            char e2[512];
            if (pb_model_config_from_spec(s->models[i], &mc, e2, sizeof e2)) {
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: %s", file, lp, e2);
                goto done;
            }
        }
    }
    if ((st = parse_list(root, "datasets", &n, s, err, errlen))) goto done;
    for (int i = 0; i < n; i++) {
        s->ndatasets = i + 1;
        const cJSON *dj = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "datasets"), i);
        if ((st = parse_dataset(dj, i, s, err, errlen))) goto done;
        char lp[32];
        snprintf(lp, sizeof lp, "datasets[%d]", i);
        if ((st = check_labels(s->datasets[i], file, lp, !cJSON_GetObjectItem(dj, "label"), err, errlen))) goto done;
    }
    if ((st = check_modalities(s, err, errlen))) goto done;
    if ((st = parse_list(root, "methods", &n, s, err, errlen))) goto done;
    for (int i = 0; i < n; i++) {
        s->nmethods = i + 1;
        if ((st = parse_method(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "methods"), i), i, s, err, errlen))) goto done;
        char lp[32];
        snprintf(lp, sizeof lp, "methods[%d]", i);
        if ((st = check_labels(s->methods[i], file, lp, 0, err, errlen))) goto done;
    }

    recipe_defaults(&s->recipe);
    if ((st = parse_recipe(cJSON_GetObjectItemCaseSensitive(root, "recipe"), s->recipe, file, err, errlen))) goto done;

    // Evaluation protocol.
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "eval");
    s->eval = cJSON_CreateObject();
    {
        static const char *const ea[] = {"split", "select", NULL};
        char split[16], select[16];
        if (ev && (st = pb_json_check_keys(ev, ea, file, "eval", err, errlen))) goto done;
        if ((st = pb_json_str(ev, "split", "test", split, sizeof(split), file, "eval", err, errlen))) goto done;
        if ((st = pb_json_str(ev, "select", "last", select, sizeof(select), file, "eval", err, errlen))) goto done;
        if (strcmp(split, "test") && strcmp(split, "val")) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: eval.split: expected \"test\" or \"val\"", file);
            goto done;
        }
        if (strcmp(select, "last") && strcmp(select, "best_val")) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: eval.select: expected \"last\" or \"best_val\"", file);
            goto done;
        }
        cJSON_AddStringToObject(s->eval, "split", split);
        cJSON_AddStringToObject(s->eval, "select", select);
    }

    // Grid axes: seed, a method option or a recipe key; each a non-empty list of distinct values.
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "grid");
    s->grid = cJSON_CreateObject();
    if (g) {
        if (!cJSON_IsObject(g)) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: grid: expected an object of axis lists", file);
            goto done;
        }
        char kp[128];
        for (const cJSON *c = g->child; c; c = c->next) {
            const char *k = c->string;
            snprintf(kp, sizeof(kp), "grid.%s", k);
            if (strcmp(k, "seed") && !pb_method_option_key(k) && !in_list(k, pb_recipe_keys)) {
                st = pb_errf(PB_ERR_FORMAT, err, errlen,
                             "%s: %s: unknown axis (seed, a method option or a recipe key)", file, kp);
                goto done;
            }
            if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) == 0) {
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected a non-empty list (empty grid)", file, kp);
                goto done;
            }
            int idx = 0;
            for (const cJSON *v = c->child; v; v = v->next, idx++) {
                char vp[160];
                snprintf(vp, sizeof(vp), "%s[%d]", kp, idx);
                if ((st = axis_value_check(s, NULL, k, v, file, vp, err, errlen))) goto done;
            }
            if ((st = axis_duplicates(c, file, kp, err, errlen))) goto done;
            cJSON_AddItemToObject(s->grid, k, cJSON_Duplicate(c, 1));
        }
    }
    if (!cJSON_GetObjectItemCaseSensitive(s->grid, "seed")) {
        cJSON *seeds = cJSON_CreateArray();
        cJSON_AddItemToArray(seeds, cJSON_CreateNumber(0));
        cJSON_AddItemToObject(s->grid, "seed", seeds);
    }
    if ((st = check_own_grids(s, err, errlen))) goto done;

    // Overrides: [{"model"?, "dataset"?, "method"?, "set": {...}}]; selectors match labels (method
    // also matches the method name).
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(root, "overrides");
    s->overrides = cJSON_CreateArray();
    if (ov) {
        if (!cJSON_IsArray(ov)) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: overrides: expected a list", file);
            goto done;
        }
        int idx = 0;
        for (const cJSON *o = ov->child; o; o = o->next, idx++) {
            char op[64], kp[160];
            snprintf(op, sizeof(op), "overrides[%d]", idx);
            static const char *const oa[] = {"model", "dataset", "method", "set", NULL};
            if ((st = pb_json_check_keys(o, oa, file, op, err, errlen))) goto done;
            const char *sel[3] = {"model", "dataset", "method"};
            for (int q = 0; q < 3; q++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, sel[q]);
                if (!v) continue;
                int found = 0;
                if (cJSON_IsString(v)) {
                    int cnt = q == 0 ? s->nmodels : q == 1 ? s->ndatasets : s->nmethods;
                    for (int i = 0; i < cnt; i++) {
                        cJSON *e = q == 0 ? s->models[i] : q == 1 ? s->datasets[i] : s->methods[i];
                        if (!strcmp(cJSON_GetObjectItem(e, "label")->valuestring, v->valuestring)) found = 1;
                        if (q == 2 && !strcmp(cJSON_GetObjectItem(e, "method")->valuestring, v->valuestring)) found = 1;
                    }
                }
                if (!found) {
                    st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.%s: matches no %s label in the suite", file, op,
                                 sel[q], sel[q]);
                    goto done;
                }
            }
            const cJSON *set = cJSON_GetObjectItemCaseSensitive(o, "set");
            if (!cJSON_IsObject(set)) {
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s.set: required object", file, op);
                goto done;
            }
            for (const cJSON *c = set->child; c; c = c->next) {
                snprintf(kp, sizeof(kp), "%s.set.%s", op, c->string);
                if (pb_method_option_key(c->string)) {
                    if ((st = suite_opt_check(s, c->string, c, file, kp, err, errlen))) goto done;
                } else if (in_list(c->string, pb_recipe_keys)) {
                    cJSON *tmp = cJSON_CreateObject();
                    st = recipe_set(tmp, c->string, c, file, kp, err, errlen);
                    cJSON_Delete(tmp);
                    if (st) goto done;
                } else {
                    st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: unknown key (a method option or a recipe key)",
                                 file, kp);
                    goto done;
                }
            }
            cJSON_AddItemToArray(s->overrides, cJSON_Duplicate(o, 1));
        }
    }
    st = check_ranks(s, err, errlen);
done:
    cJSON_Delete(root);
    return st;
}

pb_status pb_suite_load(const char *path, pb_suite *s, char *err, size_t errlen) {
    memset(s, 0, sizeof(*s));
    char *text = pb_read_text(path, NULL);
    if (!text) return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot read suite file", path);
    pb_status st = pb_suite_parse(text, path, s, err, errlen);
    free(text);
    return st;
}

// ----------------------------------------------------------------------------
// Preflight: dataset folders named by the suite must hold their files.

static void need(char *list, size_t cap, size_t *used, int *missing, const char *dir, const char *rel) {
    char p[1200];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    if (is_file(p)) return;
    (*missing)++;
    if (*used < cap) *used += (size_t)snprintf(list + *used, cap - *used, "\n    missing: %s", p);
}

// If the missing path p is <ROOT>/glue-mini/<member> (a task folder, tokenizer or corpus.txt),
// writes <ROOT>/glue-mini to out and returns 1.
static int glue_mini_member(const char *p, char *out, size_t len) {
    char q[1024];
    snprintf(q, sizeof q, "%s", p);
    size_t n = strlen(q);
    while (n > 1 && q[n - 1] == '/') q[--n] = 0; // "data/glue-mini/tokenizer/"
    char *slash = strrchr(q, '/');
    if (!slash) return 0;
    const char *member = slash + 1;
    int known = !strcmp(member, "tokenizer") || !strcmp(member, "corpus.txt");
    for (int i = 0; !known && pb_glue_mini_tasks[i]; i++) known = !strcmp(member, pb_glue_mini_tasks[i]);
    if (!known) return 0;
    *slash = 0; // q = <ROOT>/glue-mini
    const char *base = strrchr(q, '/');
    if (strcmp(base ? base + 1 : q, "glue-mini")) return 0;
    snprintf(out, len, "%s", q);
    return 1;
}

pb_status pb_suite_build_local(const pb_suite *s, FILE *log, char *err, size_t errlen) {
    const char *paths[4 * PB_SUITE_MAX];
    int np = 0;
    for (int i = 0; i < s->ndatasets; i++) {
        const char *spec = cJSON_GetObjectItem(s->datasets[i], "spec")->valuestring;
        const char *colon = strchr(spec, ':');
        if (colon && !strncmp(spec, "glue/", 5)) paths[np++] = colon + 1;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(s->datasets[i], "tokenizer_dir");
        if (cJSON_IsString(t) && t->valuestring[0]) paths[np++] = t->valuestring;
    }
    for (int i = 0; i < s->nmodels; i++) {
        const cJSON *pre = cJSON_GetObjectItemCaseSensitive(s->models[i], "pretrain");
        const char *keys[2] = {"dataset", "tokenizer_dir"};
        for (int k = 0; pre && k < 2; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(pre, keys[k]);
            if (cJSON_IsString(v) && v->valuestring[0]) paths[np++] = v->valuestring;
        }
    }
    // Once per root: after a build every member of that root exists, so its other paths pass the stat.
    for (int i = 0; i < np; i++) {
        struct stat st;
        char root[1024];
        if (stat(paths[i], &st) == 0 || !glue_mini_member(paths[i], root, sizeof root)) continue;
        if (log) fprintf(log, "peftbench: %s is missing: building glue-mini into %s (peftbench data build glue-mini)\n",
                         paths[i], root);
        pb_status rc = pb_glue_mini_build(root, log, err, errlen);
        if (rc != PB_OK) return rc;
    }
    return PB_OK;
}

pb_status pb_suite_preflight(const pb_suite *s, char *err, size_t errlen) {
    char list[4096] = {0};
    size_t used = 0;
    int missing = 0;
    for (int i = 0; i < s->ndatasets; i++) {
        const char *spec = cJSON_GetObjectItem(s->datasets[i], "spec")->valuestring;
        const char *colon = strchr(spec, ':');
        if (!colon) continue; // built locally (vtab-mini)
        const char *dir = colon + 1;
        char kind[64];
        snprintf(kind, sizeof(kind), "%.*s", (int)(colon - spec), spec);
        if (!is_dir(dir)) {
            missing++;
            const char *layout = "";
            if (!strcmp(kind, "vtab1k"))
                layout = "VTAB-1k task folder: train800.txt val200.txt train800val200.txt test.txt images/<split>/NNNNNN.jpg";
            else if (!strcmp(kind, "fgvc"))
                layout = "FGVC folder: train.json val.json test.json + images";
            else if (!strncmp(kind, "glue/", 5))
                layout = "GLUE task folder: train.tsv dev.tsv";
            else
                layout = "see docs/suites.md";
            if (used < sizeof(list))
                used += (size_t)snprintf(list + used, sizeof(list) - used, "\n    missing directory: %s  (%s; %s)", dir,
                                         spec, layout);
            continue;
        }
        if (!strcmp(kind, "vtab1k")) {
            need(list, sizeof(list), &used, &missing, dir, "train800.txt");
            need(list, sizeof(list), &used, &missing, dir, "val200.txt");
            need(list, sizeof(list), &used, &missing, dir, "train800val200.txt");
            need(list, sizeof(list), &used, &missing, dir, "test.txt");
        } else if (!strcmp(kind, "fgvc")) {
            need(list, sizeof(list), &used, &missing, dir, "train.json");
            need(list, sizeof(list), &used, &missing, dir, "val.json");
            need(list, sizeof(list), &used, &missing, dir, "test.json");
        } else if (!strncmp(kind, "glue/", 5)) {
            need(list, sizeof(list), &used, &missing, dir, "train.tsv");
            need(list, sizeof(list), &used, &missing, dir, "dev.tsv");
        }
    }
    for (int i = 0; i < s->nmodels; i++) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(s->models[i], "dir");
        if (!d) continue;
        need(list, sizeof(list), &used, &missing, d->valuestring, "config.json");
        need(list, sizeof(list), &used, &missing, d->valuestring, "model.safetensors");
    }
    if (missing)
        return pb_errf(PB_ERR_IO, err, errlen,
                       "%s: %d required data file(s) missing; put them in place (docs/suites.md, "
                       "\"Paper suites\") and re-run:%s",
                       s->file, missing, list);
    return PB_OK;
}
