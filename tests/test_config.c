// test_config.c: built-in model configs and HF config.json read/write.
//   test_config                         fast tests
//   test_config --dump FILE             (ref) reads FILE, prints "key=value" lines
//   test_config --write NAME LABELS OUT (ref) writes built-in NAME with LABELS labels to OUT
#include <errno.h>
#include "test_expect.h"
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/model.h"

static char g_dir[256];


static void write_text(const char *path, const char *s) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(2); }
    fputs(s, fp);
    fclose(fp);
}

static void dump(FILE *o, const pb_model_config *c) {
    fprintf(o, "arch=%s\nname=%s\nhidden=%d\nlayers=%d\nheads=%d\nintermediate=%d\n",
            c->arch == PB_ARCH_VIT ? "vit" : "roberta", c->name, c->hidden, c->layers, c->heads,
            c->intermediate);
    fprintf(o, "ln_eps=%.9g\nhidden_dropout=%.9g\nattn_dropout=%.9g\nclassifier_dropout=%.9g\n",
            (double)c->ln_eps, (double)c->hidden_dropout, (double)c->attn_dropout,
            (double)c->classifier_dropout);
    fprintf(o, "image_size=%d\npatch_size=%d\nchannels=%d\nqkv_bias=%d\n", c->image_size,
            c->patch_size, c->channels, c->qkv_bias);
    fprintf(o, "vocab_size=%d\nmax_positions=%d\ntype_vocab=%d\npad_id=%d\n", c->vocab_size,
            c->max_positions, c->type_vocab, c->pad_id);
    fprintf(o, "num_labels=%d\ninitializer_range=%.9g\n", c->num_labels,
            (double)c->initializer_range);
}

static bool cfg_equal(const pb_model_config *a, const pb_model_config *b) {
    return a->arch == b->arch && a->hidden == b->hidden && a->layers == b->layers &&
           a->heads == b->heads && a->intermediate == b->intermediate && a->ln_eps == b->ln_eps &&
           a->hidden_dropout == b->hidden_dropout && a->attn_dropout == b->attn_dropout &&
           (a->arch == PB_ARCH_VIT || a->classifier_dropout == b->classifier_dropout) &&
           a->num_labels == b->num_labels && a->initializer_range == b->initializer_range &&
           (a->arch == PB_ARCH_ROBERTA ||
            (a->image_size == b->image_size && a->patch_size == b->patch_size &&
             a->channels == b->channels && a->qkv_bias == b->qkv_bias)) &&
           (a->arch == PB_ARCH_VIT ||
            (a->vocab_size == b->vocab_size && a->max_positions == b->max_positions &&
             a->type_vocab == b->type_vocab && a->pad_id == b->pad_id));
}

static void test_builtin(void) {
    printf("built-in configs\n");
    pb_model_config c;
    char err[512];
    EXPECT(pb_model_config_builtin("vit-b16", &c, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(c.arch == PB_ARCH_VIT && c.hidden == 768 && c.layers == 12 && c.heads == 12 &&
               c.intermediate == 3072 && c.image_size == 224 && c.patch_size == 16 &&
               c.channels == 3 && c.qkv_bias == 1 && c.ln_eps == 1e-12f &&
               c.hidden_dropout == 0.0f && c.attn_dropout == 0.0f && c.num_labels == 10 &&
               c.initializer_range == 0.02f && !strcmp(c.name, "vit-b16"),
           "vit-b16");
    EXPECT(pb_model_config_builtin("vit-l16", &c, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(c.hidden == 1024 && c.layers == 24 && c.heads == 16 && c.intermediate == 4096 &&
               c.ln_eps == 1e-12f,
           "vit-l16");
    EXPECT(pb_model_config_builtin("vit-tiny", &c, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(c.image_size == 28 && c.channels == 1 && c.patch_size == 4 && c.hidden == 192 &&
               c.layers == 6 && c.heads == 3 && c.intermediate == 768 && c.ln_eps == 1e-12f,
           "vit-tiny");
    EXPECT(pb_model_config_builtin("vit-small", &c, err, sizeof err) == PB_OK && c.hidden == 192,
           "vit-small alias");
    EXPECT(pb_model_config_builtin("roberta-base", &c, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(c.arch == PB_ARCH_ROBERTA && c.hidden == 768 && c.layers == 12 && c.heads == 12 &&
               c.intermediate == 3072 && c.vocab_size == 50265 && c.max_positions == 514 &&
               c.type_vocab == 1 && c.pad_id == 1 && c.ln_eps == 1e-5f &&
               c.hidden_dropout == 0.1f && c.attn_dropout == 0.1f &&
               c.classifier_dropout < 0 && c.num_labels == 2 && c.initializer_range == 0.02f,
           "roberta-base");
    EXPECT(pb_model_config_builtin("roberta-large", &c, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(c.hidden == 1024 && c.layers == 24 && c.heads == 16 && c.intermediate == 4096 &&
               c.vocab_size == 50265 && c.max_positions == 514,
           "roberta-large");
    EXPECT(pb_model_config_builtin("roberta-tiny", &c, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(c.vocab_size == 1000 && c.layers == 2 && c.hidden == 64 && c.heads == 4 &&
               c.intermediate == 128 && c.max_positions == 130,
           "roberta-tiny");
    pb_status st = pb_model_config_builtin("vit-b32", &c, err, sizeof err);
    printf("  unknown name -> %s\n", err);
    EXPECT(st == PB_ERR_ARG && strstr(err, "vit-b32") && strstr(err, "vit-b16") &&
               strstr(err, "roberta-tiny"),
           "%s", err);
}

static void test_roundtrip(void) {
    printf("write -> read round trip of every built-in\n");
    const char *names[] = {"vit-b16", "vit-l16", "vit-tiny", "roberta-base", "roberta-large",
                           "roberta-tiny"};
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    for (int i = 0; i < 6; i++) {
        for (int nl = 1; nl <= 3; nl += 2) {
            pb_model_config a, b;
            pb_model_config_builtin(names[i], &a, err, sizeof err);
            a.num_labels = nl;
            if (i == 3 && nl == 3) a.classifier_dropout = 0.25f;
            EXPECT(pb_model_config_write(path, &a, err, sizeof err) == PB_OK, "%s", err);
            memset(&b, 0x55, sizeof b);
            EXPECT(pb_model_config_read(path, &b, err, sizeof err) == PB_OK, "%s: %s", names[i],
                   err);
            EXPECT(cfg_equal(&a, &b), "%s labels %d differ after round trip", names[i], nl);
            if (!cfg_equal(&a, &b)) { dump(stderr, &a); dump(stderr, &b); }
            EXPECT(b.name[0] == 0, "name should be empty without _name_or_path");
        }
    }
    // the file is readable JSON with the HF keys
    FILE *fp = fopen(path, "rb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = 0;
    fclose(fp);
    EXPECT(strstr(buf, "\"RobertaForSequenceClassification\"") &&
               strstr(buf, "\"layer_norm_eps\":\t1e-05") && strstr(buf, "\"LABEL_2\":\t2") &&
               strstr(buf, "\"bos_token_id\":\t0") && strstr(buf, "\"eos_token_id\":\t2"),
           "written text:\n%s", buf);
    EXPECT(pb_model_config_write("/nonexistent-dir/config.json", &(pb_model_config){.num_labels = 2},
                                 err, sizeof err) == PB_ERR_IO &&
               strstr(err, "/nonexistent-dir/config.json"),
           "%s", err);
}

// Real hub configs (google/vit-base-patch16-224-in21k, roberta-base) as published.
static void test_hub(void) {
    printf("hub config.json files\n");
    char path[512], err[512];
    pb_model_config c;
    snprintf(path, sizeof path, "%s/hub.json", g_dir);
    write_text(path, "{\n  \"_name_or_path\": \"google/vit-base-patch16-224-in21k\",\n"
                     "  \"architectures\": [\"ViTModel\"],\n"
                     "  \"attention_probs_dropout_prob\": 0.0,\n  \"hidden_act\": \"gelu\",\n"
                     "  \"hidden_dropout_prob\": 0.0,\n  \"hidden_size\": 768,\n"
                     "  \"image_size\": 224,\n  \"initializer_range\": 0.02,\n"
                     "  \"intermediate_size\": 3072,\n  \"layer_norm_eps\": 1e-12,\n"
                     "  \"model_type\": \"vit\",\n  \"num_attention_heads\": 12,\n"
                     "  \"num_channels\": 3,\n  \"num_hidden_layers\": 12,\n"
                     "  \"patch_size\": 16,\n  \"qkv_bias\": true,\n"
                     "  \"transformers_version\": \"4.13.0.dev0\"\n}\n");
    EXPECT(pb_model_config_read(path, &c, err, sizeof err) == PB_OK, "%s", err);
    pb_model_config want;
    pb_model_config_builtin("vit-b16", &want, err, sizeof err);
    want.num_labels = 2; // no id2label: the HF default
    EXPECT(cfg_equal(&c, &want), "in21k config");
    EXPECT(!strcmp(c.name, "google/vit-base-patch16-224-in21k"), "name '%s'", c.name);
    write_text(path, "{\n  \"architectures\": [\"RobertaForMaskedLM\"],\n"
                     "  \"attention_probs_dropout_prob\": 0.1,\n  \"bos_token_id\": 0,\n"
                     "  \"eos_token_id\": 2,\n  \"hidden_act\": \"gelu\",\n"
                     "  \"hidden_dropout_prob\": 0.1,\n  \"hidden_size\": 768,\n"
                     "  \"initializer_range\": 0.02,\n  \"intermediate_size\": 3072,\n"
                     "  \"layer_norm_eps\": 1e-05,\n  \"max_position_embeddings\": 514,\n"
                     "  \"model_type\": \"roberta\",\n  \"num_attention_heads\": 12,\n"
                     "  \"num_hidden_layers\": 12,\n  \"pad_token_id\": 1,\n"
                     "  \"type_vocab_size\": 1,\n  \"vocab_size\": 50265\n}\n");
    EXPECT(pb_model_config_read(path, &c, err, sizeof err) == PB_OK, "%s", err);
    pb_model_config_builtin("roberta-base", &want, err, sizeof err);
    EXPECT(cfg_equal(&c, &want), "roberta-base config");
    // labels: id2label size, num_labels, regression
    write_text(path, "{\"model_type\":\"roberta\",\"hidden_size\":64,\"num_hidden_layers\":2,"
                     "\"num_attention_heads\":4,\"intermediate_size\":128,\"id2label\":"
                     "{\"0\":\"neg\",\"1\":\"neu\",\"2\":\"pos\"},\"classifier_dropout\":null}");
    EXPECT(pb_model_config_read(path, &c, err, sizeof err) == PB_OK && c.num_labels == 3 &&
               c.classifier_dropout < 0 && c.ln_eps == 1e-12f && c.type_vocab == 2 &&
               c.max_positions == 512,
           "id2label / RobertaConfig class defaults: %s", err);
    write_text(path, "{\"model_type\":\"vit\",\"hidden_size\":64,\"num_hidden_layers\":2,"
                     "\"num_attention_heads\":4,\"intermediate_size\":128,\"num_labels\":1,"
                     "\"problem_type\":\"regression\"}");
    EXPECT(pb_model_config_read(path, &c, err, sizeof err) == PB_OK && c.num_labels == 1,
           "regression: %s", err);
}

static void expect_bad(const char *text, pb_status st, const char *want) {
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/bad.json", g_dir);
    if (text) write_text(path, text);
    else snprintf(path, sizeof path, "%s/missing.json", g_dir);
    pb_model_config c;
    memset(&c, 0x33, sizeof c);
    pb_model_config before = c;
    pb_status got = pb_model_config_read(path, &c, err, sizeof err);
    printf("  -> %s\n", err);
    EXPECT(got == st && strstr(err, path) == err && strstr(err, want),
           "status %d want %d; '%s' should contain '%s'", got, st, err, want);
    EXPECT(memcmp(&c, &before, sizeof c) == 0, "cfg modified on error");
}

#define VIT_CORE "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128"

static void test_bad(void) {
    printf("malformed config.json\n");
    expect_bad(NULL, PB_ERR_IO, "cannot open");
    expect_bad("", PB_ERR_FORMAT, ":1:1: invalid JSON");
    expect_bad("{\n  \"model_type\": \"vit\",\n  \"hidden_size\": 7x\n}", PB_ERR_FORMAT,
               ":3:");
    expect_bad("{\"model_type\":\"vit\"} {}", PB_ERR_FORMAT, "trailing data");
    expect_bad("[1,2]", PB_ERR_FORMAT, "not a JSON object");
    expect_bad("{\"hidden_size\":768}", PB_ERR_FORMAT, "missing required field 'model_type'");
    expect_bad("{\"model_type\":3}", PB_ERR_FORMAT, "'model_type' must be a string");
    expect_bad("{\"model_type\":\"bert\"}", PB_ERR_UNSUPPORTED, "'model_type' = 'bert'");
    expect_bad("{\"model_type\":\"xlm-roberta\"}", PB_ERR_UNSUPPORTED, "'xlm-roberta'");
    expect_bad("{\"model_type\":\"vit\",\"num_hidden_layers\":2}", PB_ERR_FORMAT,
               "missing required field 'hidden_size'");
    expect_bad("{\"model_type\":\"vit\",\"hidden_size\":\"768\"}", PB_ERR_FORMAT,
               "field 'hidden_size' must be an integer");
    expect_bad("{\"model_type\":\"vit\",\"hidden_size\":76.5}", PB_ERR_FORMAT,
               "field 'hidden_size' must be an integer");
    expect_bad("{\"model_type\":\"vit\",\"hidden_size\":0}", PB_ERR_FORMAT,
               "field 'hidden_size' = 0 must be >= 1");
    expect_bad("{\"model_type\":\"vit\",\"hidden_size\":1e12}", PB_ERR_FORMAT,
               "field 'hidden_size' must be an integer");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"hidden_act\":\"relu\"}", PB_ERR_UNSUPPORTED,
               "field 'hidden_act' = 'relu' is not supported");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"hidden_act\":\"gelu_new\"}",
               PB_ERR_UNSUPPORTED, "'gelu_new'");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"hidden_act\":1}", PB_ERR_FORMAT,
               "field 'hidden_act' must be a string");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"layer_norm_eps\":\"1e-12\"}", PB_ERR_FORMAT,
               "field 'layer_norm_eps' must be a number");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"layer_norm_eps\":null}", PB_ERR_FORMAT,
               "field 'layer_norm_eps' must be a number");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"qkv_bias\":1}", PB_ERR_FORMAT,
               "field 'qkv_bias' must be true or false");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"image_size\":30,\"patch_size\":4}",
               PB_ERR_FORMAT, "'image_size' = 30 is not a multiple of 'patch_size' = 4");
    expect_bad("{\"model_type\":\"vit\",\"hidden_size\":66,\"num_hidden_layers\":2,"
               "\"num_attention_heads\":4,\"intermediate_size\":128}",
               PB_ERR_FORMAT, "'hidden_size' = 66 is not a multiple of 'num_attention_heads' = 4");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"hidden_dropout_prob\":1.5}", PB_ERR_FORMAT,
               "field 'hidden_dropout_prob' must be < 1");
    expect_bad("{\"model_type\":\"roberta\"," VIT_CORE ",\"position_embedding_type\":"
               "\"relative_key\"}",
               PB_ERR_UNSUPPORTED, "'position_embedding_type' = 'relative_key'");
    expect_bad("{\"model_type\":\"roberta\"," VIT_CORE ",\"classifier_dropout\":\"x\"}",
               PB_ERR_FORMAT, "field 'classifier_dropout' must be a number or null");
    expect_bad("{\"model_type\":\"roberta\"," VIT_CORE ",\"vocab_size\":[1]}", PB_ERR_FORMAT,
               "field 'vocab_size' must be an integer");
    expect_bad("{\"model_type\":\"roberta\"," VIT_CORE ",\"pad_token_id\":-1}", PB_ERR_FORMAT,
               "field 'pad_token_id' = -1 must be >= 0");
    expect_bad("{\"model_type\":\"roberta\"," VIT_CORE ",\"is_decoder\":true}", PB_ERR_UNSUPPORTED,
               "'is_decoder'");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"id2label\":[\"a\"]}", PB_ERR_FORMAT,
               "field 'id2label' must be an object");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"id2label\":{\"0\":\"a\"},\"num_labels\":3}",
               PB_ERR_FORMAT, "'num_labels' = 3 disagrees with 'id2label' (1 entries)");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"num_labels\":3,\"problem_type\":"
               "\"multi_label_classification\"}",
               PB_ERR_UNSUPPORTED, "'multi_label_classification'");
    expect_bad("{\"model_type\":\"vit\"," VIT_CORE ",\"num_labels\":3,\"problem_type\":"
               "\"regression\"}",
               PB_ERR_UNSUPPORTED, "'regression' with 3 labels");
}

// Random mutations of a valid config.json: never a crash, every error names the file.
static void test_fuzz(void) {
    printf("config.json mutation fuzz\n");
    const char *base = "{\"model_type\":\"roberta\",\"hidden_size\":64,\"num_hidden_layers\":2,"
                       "\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":1000,"
                       "\"max_position_embeddings\":130,\"type_vocab_size\":1,\"pad_token_id\":1,"
                       "\"layer_norm_eps\":1e-05,\"classifier_dropout\":null,\"id2label\":"
                       "{\"0\":\"a\",\"1\":\"b\"},\"hidden_act\":\"gelu\"}";
    static const char tokens[] = "{}[]\",:0123456789-e. ntfu\\";
    char path[512];
    snprintf(path, sizeof path, "%s/fuzz.json", g_dir);
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    int ok = 0, bad = 0;
    for (int it = 0; it < 1500; it++) {
        char buf[1024];
        size_t len = strlen(base);
        memcpy(buf, base, len + 1);
        int muts = 1 + it % 3;
        for (int m = 0; m < muts && len > 0; m++) {
            rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
            uint64_t r = rng * 2685821657736338717ull;
            size_t pos = (size_t)(r % len);
            if (r & (1ull << 40)) buf[pos] = tokens[(r >> 20) % (sizeof tokens - 1)];
            else if (r & (1ull << 41)) buf[pos] = (char)(r >> 32);
            else { len = pos; buf[len] = 0; }
        }
        FILE *fp = fopen(path, "wb");
        fwrite(buf, 1, len, fp);
        fclose(fp);
        pb_model_config c;
        char err[512] = "";
        if (pb_model_config_read(path, &c, err, sizeof err) == PB_OK) ok++;
        else {
            bad++;
            EXPECT(strncmp(err, path, strlen(path)) == 0, "fuzz %d: message '%s'", it, err);
        }
    }
    printf("  1500 mutated files: %d read, %d rejected with a message, no crash\n", ok, bad);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char err[512];
    if (argc == 3 && !strcmp(argv[1], "--dump")) {
        pb_model_config c;
        if (pb_model_config_read(argv[2], &c, err, sizeof err) != PB_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        dump(stdout, &c);
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "--write")) {
        pb_model_config c;
        if (pb_model_config_builtin(argv[2], &c, err, sizeof err) != PB_OK ||
            (c.num_labels = atoi(argv[3]), pb_model_config_write(argv[4], &c, err, sizeof err)) !=
                PB_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        return 0;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/pb_test_cfg_%ld", (long)getpid());
    if (mkdir(g_dir, 0700) != 0 && errno != EEXIST) { perror(g_dir); return 2; }
    test_builtin();
    test_roundtrip();
    test_hub();
    test_bad();
    test_fuzz();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
    if (pb_test_fails) {
        fprintf(stderr, "test_config: %d failure(s)\n", pb_test_fails);
        return 1;
    }
    printf("test_config: all passed\n");
    return 0;
}
