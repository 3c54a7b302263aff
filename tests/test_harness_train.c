// test_harness_train.c: the engine trainer on tiny real cells.
// - determinism: the same cell trained twice (same seed, same threads) gives bitwise-identical
//   per-epoch losses and metrics; another seed gives different losses;
// - the pretraining stage writes its backbone to the cache atomically (no temp dir left), and a
//   second cell loads it instead of pretraining again (identical results);
// - head-only on cached features trains only the head and matches the param counts; with flip
//   augmentation it runs the full forward (still deterministic);
// - the cached backbone loads as a plain HF checkpoint directory ("dir" model);
// - a cell with an absurd lr diverges: status PB_ERR_NUMERIC, "diverged at epoch 1 step N";
// - a bad method option is a failed cell with a message naming the field, never a crash;
// - text cells (RoBERTa, ids + mask): classification and regression, deterministic with dropout.
#include <dirent.h>
#include "test_expect.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "harness/train.h"
#include "harness/jsonutil.h"


static char cache_root[256];

// A resolved cell config as grid.c produces it (only the keys the trainer reads matter, but the
// recipe carries every key like a real cell).
// FNV-1a 64, written here from the published constants (not engine/fileutil.c), of a backbone
// directory <root>/<key>: "config.json" and "model.safetensors", each name with its NUL, then its
// bytes. Known vector: FNV-1a 64 of "a" is af63dc4c8601ec8c.
static uint64_t fnv_bytes(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}
static void fnv_backbone(const char *root, const char *key, char hex[17]) {
    uint64_t h = 14695981039346656037ULL;
    const char *files[2] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s/%s", root, key, files[i]);
        h = fnv_bytes(h, (const unsigned char *)files[i], strlen(files[i]) + 1);
        FILE *f = fopen(path, "rb");
        EXPECT(f != NULL, "open %s", path);
        int c;
        while (f && (c = fgetc(f)) != EOF) {
            unsigned char b = (unsigned char)c;
            h = fnv_bytes(h, &b, 1);
        }
        if (f) fclose(f);
    }
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
}

static cJSON *cell(const char *method_json, double lr, int seed, int pretrain) {
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"trainer\": \"engine\","
             " \"model\": {\"label\": \"nano\", \"source\": \"%s\","
             "   \"config\": {\"arch\": \"vit\", \"hidden\": 16, \"layers\": 2, \"heads\": 2, \"intermediate\": 32,"
             "                \"image_size\": 28, \"patch_size\": 7, \"channels\": 1}%s},"
             " \"dataset\": {\"spec\": \"vtab-mini/bar-ori\", \"label\": \"bar-ori\", \"ref\": \"bar-ori\"},"
             " \"method\": %s,"
             " \"recipe\": {\"epochs\": 2, \"batch\": 32, \"eval_batch\": 128, \"lr\": %.17g, \"head_lr\": null,"
             "   \"lr_scale\": 1, \"beta1\": 0.9, \"beta2\": 0.999, \"eps\": 1e-8, \"weight_decay\": 0.01,"
             "   \"warmup_steps\": 0, \"warmup_ratio\": 0.1, \"schedule\": \"cosine\", \"label_smoothing\": 0.1,"
             "   \"flip\": false, \"train_subset\": 96, \"max_grad_norm\": 1.0, \"feature_cache\": true},"
             " \"eval\": {\"split\": \"test\", \"select\": \"last\"}, \"seed\": %d}",
             pretrain ? "pretrain" : "builtin",
             pretrain ? ", \"pretrain\": {\"dataset\": \"vtab-mini/fmnist-pretrain\", \"train_subset\": 256, "
                        "\"epochs\": 1, \"batch\": 64, \"lr\": 0.002, \"weight_decay\": 0.05, \"schedule\": "
                        "\"cosine\", \"warmup_ratio\": 0.05, \"flip\": false, \"label_smoothing\": 0, \"seed\": 0}"
                      : "",
             method_json, lr, seed);
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        fprintf(stderr, "bad test JSON: %s\n", text);
        exit(1);
    }
    return j;
}


// A tiny GLUE-style text task (byte-level BPE vocab + TSVs) under root; returns nothing, aborts the
// test on I/O errors.
static const char *VOCAB =
    "{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"<unk>\":3,\"h\":4,\"e\":5,\"l\":6,\"o\":7,\"\\u0120\":8,\"w\":9,"
    "\"r\":10,\"d\":11,\"he\":12,\"ll\":13,\"hell\":14,\"hello\":15,\"\\u0120w\":16,\"or\":17,\"\\u0120wor\":18,"
    "\"\\u0120worl\":19,\"\\u0120world\":20,\"a\":21,\"\\u0120hello\":22}";
static const char *MERGES = "#version: 0.2\nh e\nl l\nhe ll\nhell o\n\xc4\xa0 w\no r\n\xc4\xa0w or\n\xc4\xa0wor l\n"
                            "\xc4\xa0worl d\n\xc4\xa0 hello\n";

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

// sst2 (label 1 when the sentence starts with "hello") and stsb (score 4 when it does, else 1).
static void make_text_tasks(const char *root) {
    char p[600], cmd[1200];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/tok' '%s/sst2' '%s/stsb'", root, root, root);
    if (system(cmd) != 0) exit(1);
    snprintf(p, sizeof(p), "%s/tok/vocab.json", root);
    write_file(p, VOCAB);
    snprintf(p, sizeof(p), "%s/tok/merges.txt", root);
    write_file(p, MERGES);
    static const char *const sent[] = {"hello world", "world hello", "hello hello world", "world world",
                                       "hello", "world", "world hello hello", "hello world world"};
    size_t cap = 16384, n1 = 0, n2 = 0;
    char *a = malloc(cap), *b = malloc(cap);
    n1 += (size_t)snprintf(a + n1, cap - n1, "sentence\tlabel\n");
    n2 += (size_t)snprintf(b + n2, cap - n2,
                           "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n");
    for (int i = 0; i < 48; i++) {
        const char *x = sent[i % 8], *y = sent[(i * 3 + 1) % 8];
        n1 += (size_t)snprintf(a + n1, cap - n1, "%s\t%d\n", x, x[0] == 'h');
        n2 += (size_t)snprintf(b + n2, cap - n2, "%d\tmain\tx\t2012\t%d\tnone\tnone\t%s\t%s\t%.3f\n", i, i, x, y,
                               x[0] == 'h' ? 4.0 : 1.0);
    }
    snprintf(p, sizeof(p), "%s/sst2/train.tsv", root);
    write_file(p, a);
    snprintf(p, sizeof(p), "%s/sst2/dev.tsv", root);
    write_file(p, a);
    snprintf(p, sizeof(p), "%s/stsb/train.tsv", root);
    write_file(p, b);
    snprintf(p, sizeof(p), "%s/stsb/dev.tsv", root);
    write_file(p, b);
    free(a);
    free(b);
}

static cJSON *text_cell(const char *root, const char *task, const char *method_json) {
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"trainer\": \"engine\", \"model\": {\"label\": \"rt\", \"source\": \"builtin\", \"builtin\": \"roberta-tiny\"},"
             " \"dataset\": {\"spec\": \"glue/%s:%s/%s\", \"label\": \"%s\", \"ref\": \"%s\", \"seq_len\": 10,"
             "   \"tokenizer_dir\": \"%s/tok\", \"data_root\": \"%s/data\"},"
             " \"method\": %s,"
             " \"recipe\": {\"epochs\": 2, \"batch\": 16, \"eval_batch\": 32, \"lr\": 0.003, \"head_lr\": null,"
             "   \"lr_scale\": 1, \"beta1\": 0.9, \"beta2\": 0.999, \"eps\": 1e-8, \"weight_decay\": 0.01,"
             "   \"warmup_steps\": 1, \"warmup_ratio\": 0, \"schedule\": \"linear\", \"label_smoothing\": 0,"
             "   \"flip\": false, \"train_subset\": 0, \"max_grad_norm\": 0, \"feature_cache\": true},"
             " \"eval\": {\"split\": \"val\", \"select\": \"best_val\"}, \"seed\": 3}",
             task, root, task, task, task, root, root, method_json);
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        fprintf(stderr, "bad test JSON: %s\n", text);
        exit(1);
    }
    return j;
}

static pb_status train(const cJSON *cfg, pb_train_result *r, FILE *log) {
    pb_train_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.threads = 2;
    ctx.log = log;
    ctx.cache_root = cache_root;
    return pb_train_cell(cfg, &ctx, r);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof(a)) == 0; }

static void expect_identical(const pb_train_result *a, const pb_train_result *b, const char *what) {
    EXPECT(a->nepochs == b->nepochs, "%s: epochs %d vs %d", what, a->nepochs, b->nepochs);
    for (int i = 0; i < a->nepochs && i < b->nepochs; i++) {
        EXPECT(same_bits(a->epochs[i].train_loss, b->epochs[i].train_loss), "%s: epoch %d loss %.17g vs %.17g", what,
               i + 1, a->epochs[i].train_loss, b->epochs[i].train_loss);
        EXPECT(same_bits(a->epochs[i].val, b->epochs[i].val), "%s: epoch %d val", what, i + 1);
        EXPECT(same_bits(a->epochs[i].test, b->epochs[i].test), "%s: epoch %d test", what, i + 1);
    }
}

static int count_entries(const char *dir, int *tmp) {
    DIR *d = opendir(dir);
    int n = 0;
    *tmp = 0;
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        n++;
        if (strstr(de->d_name, ".tmp.")) (*tmp)++;
    }
    closedir(d);
    return n;
}

static void rm_cache(void) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cache_root);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", cache_root);
}

int main(void) {
    snprintf(cache_root, sizeof(cache_root), "/tmp/pb_test_train_%ld/backbones", (long)getpid());
    FILE *log = fopen("/dev/null", "w");

    // 1. Determinism of a full fine-tuning cell (random init, no pretraining).
    {
        const char *full = "{\"method\": \"full\", \"label\": \"full\", \"ref\": \"\", \"train_head\": true}";
        cJSON *c0 = cell(full, 1e-3, 0, 0), *c1 = cell(full, 1e-3, 1, 0);
        pb_train_result a, b, d;
        EXPECT(train(c0, &a, log) == PB_OK, "full cell failed: %s", a.reason);
        EXPECT(train(c0, &b, log) == PB_OK, "full cell (again) failed: %s", b.reason);
        expect_identical(&a, &b, "full same seed");
        EXPECT(a.nepochs == 2, "epochs %d", a.nepochs);
        EXPECT(train(c1, &d, log) == PB_OK, "full seed 1 failed: %s", d.reason);
        EXPECT(d.nepochs == 2 && !same_bits(a.epochs[0].train_loss, d.epochs[0].train_loss),
               "seed 1 gave the same loss as seed 0");
        for (int i = 0; i < a.nepochs; i++) {
            EXPECT(isfinite(a.epochs[i].train_loss) && a.epochs[i].train_loss > 0, "loss %g", a.epochs[i].train_loss);
            EXPECT(a.epochs[i].test >= 0 && a.epochs[i].test <= 1, "test %g", a.epochs[i].test);
            EXPECT(a.epochs[i].lr > 0, "lr %g", a.epochs[i].lr);
        }
        // Param bookkeeping: full trains backbone + head, no adapter.
        EXPECT(a.p_adapter == 0 && a.p_trainable == a.p_total && a.p_trainable == a.p_trainable_backbone + a.p_head &&
                   a.p_head == 16 * 8 + 8 && a.p_backbone == a.p_total - a.p_head,
               "full counts: trainable %lld total %lld backbone %lld head %lld", a.p_trainable, a.p_total,
               a.p_backbone, a.p_head);
        EXPECT(a.train_examples == 2 * 96, "train_examples %lld", a.train_examples);
        EXPECT(a.throughput > 0 && a.train_time_s > 0 && a.peak_rss > 0, "timing fields");
        EXPECT(!a.backbone_hash[0], "a built-in model (weights from the seed) records backbone hash '%s'", a.backbone_hash);
        {
            char kv[17];
            snprintf(kv, sizeof kv, "%016llx", (unsigned long long)fnv_bytes(14695981039346656037ULL,
                                                                               (const unsigned char *)"a", 1));
            EXPECT(!strcmp(kv, "af63dc4c8601ec8c"), "the test's FNV-1a 64 of \"a\" is %s", kv);
        }
        EXPECT(a.threads == 2 && strstr(a.backend, "cpu") && strlen(a.data_hash) == 16, "backend '%s' threads %d hash %s",
               a.backend, a.threads, a.data_hash);
        EXPECT(!strcmp(a.metric, "accuracy"), "metric %s", a.metric);
        pb_train_result_free(&a);
        pb_train_result_free(&b);
        pb_train_result_free(&d);
        cJSON_Delete(c0);
        cJSON_Delete(c1);
    }

    // 2. Pretraining stage: first cell pretrains and caches; the second loads the cache.
    {
        rm_cache();
        // A temp dir left by a killed pretraining (dead pid, untouched for an hour) is cleaned up by
        // the next one; a young one is left alone (on a shared filesystem it may be a live writer's
        // on another node: harness/sharedfs.h).
        char stale[400], young[400], cmd0[2400];
        snprintf(stale, sizeof(stale), "%s/0123456789abcdef.tmp.2147483646", cache_root);
        snprintf(young, sizeof(young), "%s/0123456789abcdee.tmp.2147483645", cache_root);
        snprintf(cmd0, sizeof(cmd0),
                 "mkdir -p '%s' '%s' && touch '%s/model.safetensors' && touch -d '1 hour ago' '%s/model.safetensors' '%s'",
                 stale, young, stale, stale, stale);
        EXPECT(system(cmd0) == 0, "cannot create %s", stale);
        const char *lora = "{\"method\": \"lora\", \"label\": \"lora\", \"ref\": \"\", \"train_head\": true, "
                           "\"rank\": 4, \"alpha\": 8, \"dropout\": 0.1, \"rslora\": false, \"init\": \"kaiming\", "
                           "\"targets\": [\"query\", \"value\"]}";
        cJSON *c = cell(lora, 3e-3, 0, 1);
        pb_train_result a, b;
        EXPECT(train(c, &a, log) == PB_OK, "lora/pretrain cell failed: %s", a.reason);
        int tmp = 0, nent = count_entries(cache_root, &tmp);
        EXPECT(nent == 2 && tmp == 1 && access(young, F_OK) == 0,
               "cache %s: %d entries, %d temp: want one backbone dir and only the young temp dir", cache_root, nent, tmp);
        snprintf(cmd0, sizeof(cmd0), "rm -rf '%s'", young);
        EXPECT(system(cmd0) == 0, "cannot remove %s", young);
        char key[17], p[600];
        pb_backbone_key(cJSON_GetObjectItem(c, "model"), key);
        snprintf(p, sizeof(p), "%s/%s/model.safetensors", cache_root, key);
        EXPECT(pb_file_exists(p), "missing %s", p);
        snprintf(p, sizeof(p), "%s/%s/pretrain.json", cache_root, key);
        EXPECT(pb_file_exists(p), "missing %s", p);
        // The second run must load (not re-pretrain): make the cached weights read-only evidence
        // by checking the mtime does not change.
        char st_before[64] = "", st_after[64] = "";
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "stat -c %%Y.%%y '%s/%s/model.safetensors'", cache_root, key);
        FILE *f = popen(cmd, "r");
        if (f) {
            if (!fgets(st_before, sizeof(st_before), f)) st_before[0] = 0;
            pclose(f);
        }
        EXPECT(train(c, &b, log) == PB_OK, "lora/pretrain cell (cached) failed: %s", b.reason);
        f = popen(cmd, "r");
        if (f) {
            if (!fgets(st_after, sizeof(st_after), f)) st_after[0] = 0;
            pclose(f);
        }
        EXPECT(st_before[0] && !strcmp(st_before, st_after), "cached backbone was rewritten");
        expect_identical(&a, &b, "pretrained lora, cold vs cached");
        // Both cells record the backbone they fine-tuned: the content hash of pretrain.json, which
        // is FNV-1a 64 (offset basis 14695981039346656037, prime 1099511628211, the published
        // constants) over "config.json\0", its bytes, "model.safetensors\0", its bytes.
        {
            char want[17];
            fnv_backbone(cache_root, key, want);
            cJSON *info = NULL;
            EXPECT(pb_json_read_file(p, &info, NULL, 0) == PB_OK, "read %s", p);
            EXPECT(!strcmp(pb_jstr(info, "content_hash", ""), want) && !strcmp(a.backbone_hash, want) &&
                       !strcmp(b.backbone_hash, want),
                   "backbone hash: pretrain.json %s, cells %s / %s, want %s", pb_jstr(info, "content_hash", ""),
                   a.backbone_hash, b.backbone_hash, want);
            cJSON_Delete(info);
        }
        // LoRA r=4 on q,v of 2 layers: 2 * 2 * (4*16 + 16*4) adapter params.
        EXPECT(a.p_adapter == 2 * 2 * (4 * 16 + 16 * 4), "lora adapter params %lld", a.p_adapter);
        EXPECT(a.p_trainable == a.p_adapter + a.p_head && a.p_trainable_backbone == 0, "lora trainable %lld",
               a.p_trainable);
        // The cached backbone is a plain HF directory: a "dir" model loads it too.
        {
            char dir[600];
            snprintf(dir, sizeof(dir), "%s/%s", cache_root, key);
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "label", "fromdir");
            cJSON_AddStringToObject(m, "source", "dir");
            cJSON_AddStringToObject(m, "dir", dir);
            cJSON *c2 = cJSON_Duplicate(c, 1);
            cJSON_ReplaceItemInObject(c2, "model", m);
            pb_train_result g;
            EXPECT(train(c2, &g, log) == PB_OK, "dir model cell failed: %s", g.reason);
            EXPECT(g.nepochs == 2 && g.p_adapter == a.p_adapter && g.p_backbone == a.p_backbone, "dir model counts");
            EXPECT(!strcmp(g.backbone_hash, a.backbone_hash), "dir model backbone hash %s, the cache's %s", g.backbone_hash,
                   a.backbone_hash);
            pb_train_result_free(&g);
            cJSON_Delete(c2);
        }
        pb_train_result_free(&a);
        pb_train_result_free(&b);
        cJSON_Delete(c);
    }

    // 3. Head-only on cached features: deterministic, head params only, one backbone pass.
    {
        const char *head = "{\"method\": \"head\", \"label\": \"head\", \"ref\": \"\", \"train_head\": true}";
        cJSON *c = cell(head, 5e-3, 0, 1);
        pb_train_result a, b;
        EXPECT(train(c, &a, log) == PB_OK, "head cell failed: %s", a.reason);
        EXPECT(train(c, &b, log) == PB_OK, "head cell failed: %s", b.reason);
        expect_identical(&a, &b, "head cached");
        EXPECT(a.p_trainable == a.p_head && a.p_adapter == 0, "head trainable %lld head %lld", a.p_trainable, a.p_head);
        // 96 feature passes + 2 epochs x 96 head steps.
        EXPECT(a.train_examples == 96 + 2 * 96, "head train_examples %lld", a.train_examples);
        // The cached path is the full-forward path (the one trace and ref_methods check against
        // transformers) on stored features: without the cache the same cell gives the same curve.
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "recipe"), "feature_cache", cJSON_CreateFalse());
        pb_train_result u;
        EXPECT(train(c, &u, log) == PB_OK, "head uncached failed: %s", u.reason);
        for (int ep = 0; ep < a.nepochs && ep < u.nepochs; ep++) {
            double dl = fabs(u.epochs[ep].train_loss - a.epochs[ep].train_loss) / fabs(a.epochs[ep].train_loss);
            EXPECT(dl <= 1e-5, "epoch %d: cached head loss %.9g, uncached %.9g (rel %.2g)", ep + 1,
                   a.epochs[ep].train_loss, u.epochs[ep].train_loss, dl);
            EXPECT(fabs(u.epochs[ep].test - a.epochs[ep].test) <= 2e-3, "epoch %d: cached test %.4f, uncached %.4f",
                   ep + 1, a.epochs[ep].test, u.epochs[ep].test);
        }
        printf("head: cached vs uncached features, epoch-%d loss %.9g vs %.9g\n", a.nepochs,
               a.epochs[a.nepochs - 1].train_loss, u.epochs[u.nepochs - 1].train_loss);
        pb_train_result_free(&u);
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "recipe"), "feature_cache", cJSON_CreateTrue());
        // With flip augmentation the features change per step: full forward, no feature cache.
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "recipe"), "flip", cJSON_CreateTrue());
        pb_train_result f1, f2;
        EXPECT(train(c, &f1, log) == PB_OK, "head+flip failed: %s", f1.reason);
        EXPECT(train(c, &f2, log) == PB_OK, "head+flip failed: %s", f2.reason);
        expect_identical(&f1, &f2, "head + flip");
        EXPECT(f1.train_examples == 2 * 96, "head+flip train_examples %lld", f1.train_examples);
        EXPECT(f1.nepochs == 2 && !same_bits(f1.epochs[0].train_loss, a.epochs[0].train_loss), "flip changed nothing");
        pb_train_result_free(&f1);
        pb_train_result_free(&f2);
        pb_train_result_free(&a);
        pb_train_result_free(&b);
        cJSON_Delete(c);
    }

    // 4. Divergence: lr 1e30 blows the weights up; the cell fails with a clear reason.
    {
        const char *full = "{\"method\": \"full\", \"label\": \"full\", \"ref\": \"\", \"train_head\": true}";
        cJSON *c = cell(full, 1e30, 0, 0);
        cJSON *rec = cJSON_GetObjectItem(c, "recipe");
        cJSON_ReplaceItemInObject(rec, "max_grad_norm", cJSON_CreateNumber(0));
        cJSON_ReplaceItemInObject(rec, "warmup_ratio", cJSON_CreateNumber(0));
        pb_train_result a;
        pb_status st = train(c, &a, log);
        EXPECT(st == PB_ERR_NUMERIC, "divergence status %d (%s)", (int)st, a.reason);
        EXPECT(strstr(a.reason, "diverged at epoch 1 step ") != NULL, "reason '%s'", a.reason);
        EXPECT(a.nepochs == 1 && isnan(a.epochs[0].train_loss), "diverged epoch record");
        pb_train_result_free(&a);
        cJSON_Delete(c);
    }

    // 7. Learning happens: full fine-tuning and LoRA on a small task end far above chance and far
    // above the same cell with lr 0 (the fresh head on the pretrained features). Fails when the
    // optimizer step is a no-op or the loss does not reach the weights.
    {
        const char *full = "{\"method\": \"full\", \"label\": \"full\", \"ref\": \"\"}";
        const char *lora = "{\"method\": \"lora\", \"label\": \"lora\", \"ref\": \"\", \"rank\": 8, "
                           "\"alpha\": 16, \"targets\": [\"query\", \"value\", \"intermediate\", \"output\"]}";
        const char *ms[2] = {full, lora};
        const double lrs[2] = {2e-3, 1e-2};
        for (int k = 0; k < 2; k++) {
            double acc[2];
            int ncls = 0;
            for (int z = 0; z < 2; z++) {
                cJSON *c = cell(ms[k], z ? lrs[k] : 0.0, 0, 1); // on the backbone case 2 cached
                cJSON *rc = cJSON_GetObjectItem(c, "recipe");
                cJSON_ReplaceItemInObject(rc, "epochs", cJSON_CreateNumber(6));
                cJSON_ReplaceItemInObject(rc, "train_subset", cJSON_CreateNumber(1024));
                pb_train_result a;
                EXPECT(train(c, &a, log) == PB_OK, "learning cell %d/%d failed: %s", k, z, a.reason);
                acc[z] = a.nepochs ? a.epochs[a.nepochs - 1].test : 0;
                ncls = (int)a.p_head; // head = C*K + K weights
                pb_train_result_free(&a);
                cJSON_Delete(c);
            }
            int K = ncls / (16 + 1); // hidden 16
            double chance = K > 0 ? 1.0 / K : 0.5;
            printf("learning: %s test accuracy %.3f after 6 epochs, %.3f with lr 0 (chance %.3f, %d classes)\n",
                   k ? "lora" : "full", acc[1], acc[0], chance, K);
            EXPECT(acc[1] >= 3.0 * chance && acc[1] >= acc[0] + 0.2,
                   "%s did not learn: accuracy %.3f (lr 0: %.3f, chance %.3f)", k ? "lora" : "full", acc[1], acc[0],
                   chance);
        }
    }

    // 5. A bad method option fails the cell with a message naming the field.
    {
        const char *bad = "{\"method\": \"pissa\", \"label\": \"pissa\", \"ref\": \"\", \"train_head\": true, "
                          "\"rank\": 99, \"alpha\": 0, \"init\": \"svd\", \"targets\": [\"query\", \"value\"]}";
        cJSON *c = cell(bad, 1e-3, 0, 0);
        pb_train_result a;
        pb_status st = train(c, &a, log);
        EXPECT(st != PB_OK && strstr(a.reason, "rank"), "bad rank: status %d reason '%s'", (int)st, a.reason);
        pb_train_result_free(&a);
        cJSON_Delete(c);
    }

    // 6. Text (RoBERTa with dropout 0.1): classification (ids + mask + labels) and regression
    //    (targets, MSE, Pearson); deterministic with dropout on.
    {
        char root[300];
        snprintf(root, sizeof(root), "/tmp/pb_test_train_%ld/text", (long)getpid());
        make_text_tasks(root);
        const char *lora = "{\"method\": \"lora\", \"label\": \"lora\", \"ref\": \"\", \"train_head\": true, "
                           "\"rank\": 4, \"alpha\": 8, \"dropout\": 0.1, \"rslora\": false, \"init\": \"kaiming\", "
                           "\"targets\": [\"query\", \"value\"]}";
        const char *full = "{\"method\": \"full\", \"label\": \"full\", \"ref\": \"\", \"train_head\": true}";
        cJSON *c1 = text_cell(root, "sst2", lora), *c2 = text_cell(root, "stsb", full);
        pb_train_result a, b, d;
        EXPECT(train(c1, &a, log) == PB_OK, "sst2 lora failed: %s", a.reason);
        EXPECT(train(c1, &b, log) == PB_OK, "sst2 lora failed: %s", b.reason);
        expect_identical(&a, &b, "sst2 lora (dropout) same seed");
        EXPECT(!strcmp(a.metric, "accuracy") && a.nepochs == 2, "sst2 metric %s", a.metric);
        EXPECT(a.p_head == 64 * 64 + 64 + 64 * 2 + 2, "roberta head params %lld", a.p_head);
        EXPECT(train(c2, &d, log) == PB_OK, "stsb full failed: %s", d.reason);
        EXPECT(!strcmp(d.metric, "pearson") && d.nepochs == 2 && isfinite(d.epochs[1].train_loss) &&
                   d.epochs[1].val >= -1 && d.epochs[1].val <= 1,
               "stsb: metric %s val %g", d.metric, d.nepochs ? d.epochs[d.nepochs - 1].val : NAN);
        EXPECT(d.p_head == 64 * 64 + 64 + 64 + 1, "regression head params %lld", d.p_head);
        pb_train_result_free(&a);
        pb_train_result_free(&b);
        pb_train_result_free(&d);
        cJSON_Delete(c1);
        cJSON_Delete(c2);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", root);
    }

    rm_cache();
    char top[300];
    snprintf(top, sizeof(top), "/tmp/pb_test_train_%ld", (long)getpid());
    rmdir(top);
    fclose(log);
    if (pb_test_fails) {
        fprintf(stderr, "test_harness_train: %d failure(s)\n", pb_test_fails);
        return 1;
    }
    printf("test_harness_train: ok\n");
    return 0;
}
