// backbone.c: the model of a cell (backbone.h): built-in, checkpoint directory, inline config, or a
// backbone pretrained by peftbench (full fine-tuning on the pretraining task through pb_fit, or the
// masked-LM stage of pretrain_mlm.c for a RoBERTa) and cached by config hash with a content hash.
#include "backbone.h"
#include "jsonutil.h"
#include "loop.h"
#include "pretrain_mlm.h"
#include "sharedfs.h"
#include "../methods/adapter.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

// Bumped when the pretraining algorithm changes, so old cached backbones are not reused.
#define PB_PRETRAIN_VERSION "pretrain/1"

// ----------------------------------------------------------------------------
// Pretraining stage and backbone cache

static int dir_has_model(const char *dir) {
    char p[1400];
    snprintf(p, sizeof(p), "%s/config.json", dir);
    if (!pb_file_exists(p)) return 0;
    snprintf(p, sizeof(p), "%s/model.safetensors", dir);
    return pb_file_exists(p);
}

// FNV-1a 64 of config.json then model.safetensors (their bytes, each with its name): the
// content hash a cached backbone carries in pretrain.json, and a checkpoint directory's. Read in
// chunks: a RoBERTa-large checkpoint is 1.4 GB, next to the loaded model. Returns 0, -1 if a file
// is unreadable.
static int backbone_hash(const char *dir, char hex[17]) {
    const char *files[2] = {"config.json", "model.safetensors"};
    uint64_t h = PB_HASH_INIT;
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = pb_xmalloc(CHUNK);
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        char p[1400];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        FILE *f = fopen(p, "rb");
        if (!f) {
            rc = -1;
            break;
        }
        h = pb_hash_str(h, files[i]);
        size_t n;
        while ((n = fread(buf, 1, CHUNK, f)) > 0) h = pb_hash64(h, buf, n);
        if (ferror(f)) rc = -1;
        fclose(f);
    }
    free(buf);
    if (!rc) snprintf(hex, 17, "%016llx", (unsigned long long)h);
    return rc;
}

// 1 if the cached backbone in dir matches the content hash its pretrain.json records.
static int backbone_intact(const char *dir) {
    char p[1400], want[17] = "", got[17];
    snprintf(p, sizeof(p), "%s/pretrain.json", dir);
    cJSON *info = NULL;
    if (pb_json_read_file(p, &info, NULL, 0) != PB_OK) return 0;
    const char *h = pb_jstr(info, "content_hash", "");
    snprintf(want, sizeof want, "%s", h);
    cJSON_Delete(info);
    return want[0] && !backbone_hash(dir, got) && !strcmp(got, want);
}

static void rm_tree_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[1400];
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

// Removes <cache_root>/<key>.tmp.<pid> directories whose writer is gone (killed mid-pretraining):
// pid gone here and untouched for PB_TMP_GRACE_S, since on a shared filesystem the pid may be a
// live writer's on another node.
static void clean_stale_backbones(const char *root) {
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *de;
    char p[1400];
    while ((de = readdir(d))) {
        if (!pb_tmp_stale(root, de->d_name)) continue;
        snprintf(p, sizeof(p), "%s/%s", root, de->d_name);
        rm_tree_flat(p);
    }
    closedir(d);
}

// The cache key of a pretrained backbone: everything that determines its weights.
void pb_backbone_key(const cJSON *model, char out[17]) {
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "version", PB_PRETRAIN_VERSION);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(model, "builtin");
    if (b) cJSON_AddItemToObject(k, "builtin", cJSON_Duplicate(b, 1));
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(model, "config");
    if (c) cJSON_AddItemToObject(k, "config", cJSON_Duplicate(c, 1));
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(model, "pretrain");
    if (p) cJSON_AddItemToObject(k, "pretrain", cJSON_Duplicate(p, 1));
    pb_json_hash_hex(k, out);
    cJSON_Delete(k);
}

typedef struct {
    FILE *log;
    const char *label;
} pre_user;

static void pre_on_epoch(void *user, const pb_epoch_metrics *m, int epochs) {
    pre_user *u = user;
    char val[32] = "-"; // the pretraining task may have no validation split
    if (isfinite(m->val)) snprintf(val, sizeof val, "%.2f", 100 * m->val);
    fprintf(stderr, "[pretrain] %s: epoch %d/%d loss %.4f val %s test %.2f (%.0fs)\n", u->label, m->epoch, epochs,
            m->train_loss, val, 100 * m->test, m->time_s);
}

// Finishes a pretrained backbone written to tmp: adds schema, model, backend and the content
// hash to info (taken over), writes tmp/pretrain.json and renames tmp to dir atomically. Another
// process finishing first is fine. tmp is removed on failure.
static pb_status backbone_commit(pb_engine *e, const cJSON *model, const char *tmp, const char *dir, cJSON *info,
                                 char *err, size_t errlen) {
    pb_status st = PB_OK;
    cJSON_AddStringToObject(info, "schema", "peftbench.backbone/1");
    cJSON_AddItemToObject(info, "model", cJSON_Duplicate(model, 1));
    cJSON_AddStringToObject(info, "backend", pb_engine_describe(e));
    char ch[17];
    if (backbone_hash(tmp, ch)) st = pb_errf(PB_ERR_IO, err, errlen, "%s: cannot read back the saved backbone", tmp);
    else cJSON_AddStringToObject(info, "content_hash", ch);
    if (!st) {
        char ip[1500];
        snprintf(ip, sizeof(ip), "%s/pretrain.json", tmp);
        st = pb_json_write_atomic(ip, info, err, errlen);
    }
    cJSON_Delete(info);
    if (!st && rename(tmp, dir) != 0) {
        if (dir_has_model(dir)) { // another process won the race: use its (identical) backbone
            rm_tree_flat(tmp);
        } else {
            st = pb_errf(PB_ERR_IO, err, errlen, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
        }
    }
    if (st) rm_tree_flat(tmp);
    return st;
}

// Pretrains the backbone of a `pretrain` model spec and stores it in dir (backbone_commit):
// objective "mlm" is the masked-LM stage of pretrain_mlm.c; otherwise full fine-tuning on the
// pretraining classification task through pb_fit.
static pb_status pretrain(pb_engine *e, const cJSON *model, const pb_model_config *cfg0, const char *dir, FILE *log,
                          char *err, size_t errlen) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(model, "pretrain");
    char tmp[1400];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dir, (long)getpid());
    rm_tree_flat(tmp);
    if (!strcmp(pb_jstr(p, "objective", "classification"), "mlm")) {
        cJSON *info = NULL;
        pb_status st = pb_pretrain_mlm(e, p, cfg0, pb_jstr(model, "label", "model"), tmp, log, &info, err, errlen);
        if (st) {
            rm_tree_flat(tmp);
            return st;
        }
        return backbone_commit(e, model, tmp, dir, info, err, errlen);
    }
    pb_recipe rc;
    pb_recipe_read(p, &rc);
    rc.eval_batch = 256;
    rc.head_lr = rc.lr;
    rc.feature_cache = 0;
    pb_model_config cfg = *cfg0;
    cJSON *ds = cJSON_CreateObject();
    cJSON_AddStringToObject(ds, "spec", pb_jstr(p, "dataset", ""));
    pb_task t;
    memset(&t, 0, sizeof(t));
    pb_status st = pb_stage_task_load(ds, &cfg, &t, err, errlen);
    cJSON_Delete(ds);
    if (st) {
        pb_task_free(&t);
        return st;
    }
    cfg.num_labels = t.num_classes;
    uint64_t seed = (uint64_t)pb_jnum(p, "seed", 0);
    pb_model *m = pb_model_create(e, &cfg, seed);
    pb_method_config mc;
    if ((st = pb_method_config_init(&mc, "full", seed, err, errlen)) || (st = pb_method_apply(m, &mc, err, errlen))) {
        pb_model_free(m);
        pb_task_free(&t);
        return st;
    }
    const char *label = pb_jstr(model, "label", "model");
    fprintf(stderr, "[pretrain] %s on %s: %d epochs, %d examples -> %s\n", label, t.name, rc.epochs,
            rc.train_subset > 0 && rc.train_subset < t.train.n ? rc.train_subset : t.train.n, dir);
    fprintf(log, "pretraining %s on %s -> %s\n", label, t.name, dir);
    pb_fit L;
    pb_fit_init(&L, m, &t, &rc, seed, 0);
    pb_epoch_metrics *eps = NULL;
    int neps = 0;
    pre_user u = {log, label};
    char reason[256] = "";
    // Pretraining skips the per-epoch validation pass (the test split is the progress signal).
    st = pb_fit_run(&L, &eps, &neps, 0, pre_on_epoch, &u, log, reason, sizeof(reason));
    double ttime = L.train_time;
    pb_fit_free(&L);
    if (st) {
        pb_errf(st, err, errlen, "pretraining %s: %s", label, reason);
    } else {
        st = pb_model_save(m, tmp, err, errlen);
        if (!st) {
            cJSON *info = cJSON_CreateObject();
            cJSON_AddStringToObject(info, "dataset", t.name);
            cJSON_AddStringToObject(info, "data_hash", t.data_hash);
            cJSON_AddNumberToObject(info, "train_time_s", ttime);
            cJSON *ea = cJSON_AddArrayToObject(info, "epochs");
            for (int i = 0; i < neps; i++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "epoch", eps[i].epoch);
                cJSON_AddNumberToObject(o, "train_loss", eps[i].train_loss);
                cJSON_AddNumberToObject(o, "test", eps[i].test);
                cJSON_AddItemToArray(ea, o);
            }
            st = backbone_commit(e, model, tmp, dir, info, err, errlen);
        } else {
            rm_tree_flat(tmp);
        }
        fprintf(log, "pretraining done in %.1fs (test %.4f)\n", ttime, neps ? eps[neps - 1].test : NAN);
    }
    free(eps);
    pb_model_free(m);
    pb_task_free(&t);
    return st;
}

// Re-initialises the classification head from seed (HF-style: normal(0, initializer_range)
// weights, zero biases), so a downstream cell never starts from the pretraining head.
static void head_reinit(pb_model *m, uint64_t seed) {
    pb_engine *e = pb_model_engine(m);
    float std = pb_model_cfg(m)->initializer_range;
    int n = 0;
    pb_param **ps = pb_model_params(m, &n);
    pb_rng r;
    pb_rng_seed(&r, pb_hash_mix(seed, 0x48454144ULL)); // "HEAD"
    for (int i = 0; i < n; i++) {
        if (ps[i]->group != PB_GROUP_HEAD) continue;
        float *h = pb_xmalloc(sizeof(float) * ps[i]->numel);
        for (size_t j = 0; j < ps[i]->numel; j++) h[j] = ps[i]->ndim >= 2 ? std * pb_rng_normal(&r) : 0.0f;
        pb_upload(e, ps[i]->data, h, ps[i]->numel);
        free(h);
    }
}

pb_status pb_backbone_obtain(pb_engine *e, const cJSON *model, int num_labels, uint64_t seed, const char *cache_root,
                             FILE *log, pb_model **out, char hash[17], char *err, size_t errlen) {
    *out = NULL;
    if (hash) hash[0] = 0;
    const char *source = pb_jstr(model, "source", "builtin");
    if (!strcmp(source, "dir")) {
        const char *d = pb_jstr(model, "dir", "");
        pb_status st = pb_model_load(e, d, num_labels, seed, out, err, errlen);
        if (!st && hash && backbone_hash(d, hash)) hash[0] = 0; // a layout without config.json: unknown
        return st;
    }
    pb_model_config cfg;
    pb_status st = pb_model_config_from_spec(model, &cfg, err, errlen);
    if (st) return st;
    if (!strcmp(source, "pretrain")) {
        char key[17], dir[1200];
        pb_backbone_key(model, key);
        snprintf(dir, sizeof(dir), "%s/%s", cache_root ? cache_root : "data/cache/backbones", key);
        if (dir_has_model(dir) && !backbone_intact(dir)) {
            // edited, truncated or from before content hashes: never trained on, rebuilt
            fprintf(log, "backbone: %s does not match its content hash (edited, truncated or old): rebuilding\n",
                    dir);
            rm_tree_flat(dir);
        }
        if (!dir_has_model(dir)) {
            const char *root = cache_root ? cache_root : "data/cache/backbones";
            char locks[1300], lockp[1400];
            snprintf(locks, sizeof locks, "%s/.locks", root);
            if ((st = pb_mkdirs(locks, err, errlen))) return st;
            // One pretrainer per key across processes and hosts: the others wait for its entry
            // (published atomically by rename, so never seen half-written) and then load it.
            snprintf(lockp, sizeof lockp, "%s/%s.lock", locks, key);
            const char *ts = getenv("PEFTBENCH_LOCK_TIMEOUT_S");
            double timeout = ts && atof(ts) > 0 ? atof(ts) : 6 * 3600.0;
            double t0 = pb_now();
            pb_lock lk;
            if ((st = pb_lock_acquire(&lk, lockp, timeout, stderr, err, errlen))) {
                fprintf(log, "backbone: %s\n", err);
                return st;
            }
            if (pb_now() - t0 > 1) fprintf(log, "backbone: waited %.1fs for %s\n", pb_now() - t0, lockp);
            if (dir_has_model(dir) && backbone_intact(dir)) {
                fprintf(log, "backbone: %s was pretrained by another process meanwhile\n", dir);
            } else {
                if (dir_has_model(dir)) rm_tree_flat(dir);
                clean_stale_backbones(root);
                st = pretrain(e, model, &cfg, dir, log, err, errlen);
            }
            pb_lock_release(&lk);
            if (st) return st;
        } else {
            fprintf(log, "backbone: cached %s\n", dir);
        }
        if ((st = pb_model_load(e, dir, num_labels, seed, out, err, errlen))) return st;
        head_reinit(*out, seed);
        if (hash) { // what pretrain.json records (backbone_intact checked it against the files)
            char ip[1400];
            snprintf(ip, sizeof ip, "%s/pretrain.json", dir);
            cJSON *info = NULL;
            if (!pb_json_read_file(ip, &info, NULL, 0)) snprintf(hash, 17, "%s", pb_jstr(info, "content_hash", ""));
            cJSON_Delete(info);
        }
        return PB_OK;
    }
    cfg.num_labels = num_labels;
    *out = pb_model_create(e, &cfg, seed);
    return PB_OK;
}

