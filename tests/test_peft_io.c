// test_peft_io.c: PEFT directory export / import (methods/peft_io.c and each method's
// export_peft / import_peft hook) on vit-tiny and roberta-tiny.
//   round trips: every method with a PEFT export (lora, pissa, dora, dylora, adalora with and
//     without a rank pattern, vera, fourierft, ia3), adapters and head moved off their init:
//     export -> import into a fresh copy of the model gives the same logits (<= 1e-6 rel), the
//     backbone frozen, the imported method (pissa and dylora come back as lora), and a second
//     export of the imported model writes the same tensors bit for bit and the same peft_type;
//     a second import onto the imported model fails (PB_ERR_ARG); imported AdaLoRA adapters are
//     left alone by the rank allocator (fixed at the file's ranks).
//   error paths: a corrupted / duplicate-key / non-object config, unknown or missing peft_type,
//     unknown tensor keys, missing tensors, wrong shapes, unsupported config values (bias,
//     fan_in_fan_out, n_frequency_pattern, save_projection mismatches, rank_pattern, rank 0,
//     feedforward_modules disagreeing with the shapes, field types) — each a non-zero status, a
//     message naming the file and the field or tensor, and the model unchanged (no adapter,
//     the same trainable parameters as before).
#include <math.h>
#include "test_expect.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "methods/adalora.h"
#include "methods/methods_internal.h"
#include "test_method_util.h"


static pb_engine *E;

static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-30);
}

typedef struct {
    pb_batch b;
    float *pixels;
    int32_t *ids, *mask, *labels;
} tbatch;

// A random batch of 2 for cfg (RoBERTa: 8 tokens, the second row with one padded position).
static tbatch make_batch(const pb_model_config *cfg, pb_rng *r) {
    tbatch t;
    memset(&t, 0, sizeof(t));
    int B = 2, T = 8;
    t.b.B = B;
    int32_t lab[2];
    for (int i = 0; i < B; i++) lab[i] = (int32_t)pb_rng_below(r, (uint32_t)cfg->num_labels);
    t.labels = pb_alloc_i32(E, B);
    pb_upload_i32(E, t.labels, lab, B);
    t.b.labels = t.labels;
    if (cfg->arch == PB_ARCH_VIT) {
        size_t n = (size_t)B * cfg->channels * cfg->image_size * cfg->image_size;
        float *h = pb_xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) h[i] = pb_rng_normal(r);
        t.pixels = pb_alloc(E, n);
        pb_upload(E, t.pixels, h, n);
        free(h);
        t.b.pixels = t.pixels;
        t.b.T = (cfg->image_size / cfg->patch_size) * (cfg->image_size / cfg->patch_size) + 1;
    } else {
        int32_t ids[16], mask[16];
        for (int i = 0; i < B * T; i++) {
            ids[i] = 3 + (int32_t)pb_rng_below(r, (uint32_t)(cfg->vocab_size - 3));
            mask[i] = 1;
        }
        ids[0] = 0;
        ids[2 * T - 1] = cfg->pad_id;
        mask[2 * T - 1] = 0;
        t.ids = pb_alloc_i32(E, B * T);
        t.mask = pb_alloc_i32(E, B * T);
        pb_upload_i32(E, t.ids, ids, B * T);
        pb_upload_i32(E, t.mask, mask, B * T);
        t.b.ids = t.ids;
        t.b.mask = t.mask;
        t.b.T = T;
    }
    return t;
}

static void free_batch(tbatch *t) {
    pb_free(E, t->pixels); pb_free(E, t->ids); pb_free(E, t->mask); pb_free(E, t->labels);
}

static float *logits(pb_model *m, const tbatch *t) {
    size_t n = (size_t)t->b.B * pb_model_cfg(m)->num_labels;
    const float *d = pb_model_forward(m, &t->b, 0, 0);
    float *h = pb_xmalloc(n * sizeof(float));
    pb_download(E, h, d, n);
    return h;
}

static pb_model *fresh(const char *model) {
    char err[256];
    pb_model_config cfg;
    if (pb_model_config_builtin(model, &cfg, err, sizeof err) != PB_OK) {
        printf("%s\n", err);
        abort();
    }
    return pb_model_create(E, &cfg, 3);
}

static int nadapters(pb_model *m) {
    int n = 0, k = 0;
    pb_linear *ls = pb_model_linears(m, &n);
    for (int i = 0; i < n; i++) k += ls[i].adapter != NULL;
    return k;
}

static void rm_rf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("warning: could not remove %s\n", dir);
}

static void cp_dir(const char *from, const char *to) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    if (system(cmd) != 0) {
        printf("cp -r %s %s failed\n", from, to);
        abort();
    }
}

// Every tensor of dir1/adapter_model.safetensors equals dir2's bit for bit (same key set, dtype,
// shape, bytes); returns the number of tensors, or -1 with a message.
static int same_tensors(const char *dir1, const char *dir2) {
    char p1[512], p2[512], err[512];
    snprintf(p1, sizeof p1, "%s/adapter_model.safetensors", dir1);
    snprintf(p2, sizeof p2, "%s/adapter_model.safetensors", dir2);
    pb_st_file a, b;
    if (pb_st_open(p1, &a, err, sizeof err) || pb_st_open(p2, &b, err, sizeof err)) {
        printf("  %s\n", err);
        return -1;
    }
    int n = a.ntensors == b.ntensors ? a.ntensors : -1;
    for (int i = 0; n >= 0 && i < a.ntensors; i++) {
        const pb_st_tensor *x = &a.tensors[i], *y = pb_st_find(&b, x->name);
        int same = y && x->dtype == y->dtype && x->ndim == y->ndim && x->nbytes == y->nbytes &&
                   !memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim) && !memcmp(x->data, y->data, x->nbytes);
        if (!same) {
            printf("  tensor %s differs (or is missing) in %s\n", x->name, p2);
            n = -1;
        }
    }
    if (a.ntensors != b.ntensors) printf("  %d vs %d tensors\n", a.ntensors, b.ntensors);
    pb_st_close(&a);
    pb_st_close(&b);
    return n;
}

static cJSON *read_config(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

static void write_text(const char *dir, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

// Sets (or with json NULL removes) top-level key of dir's config to the JSON text json.
static void config_set(const char *dir, const char *key, const char *json) {
    cJSON *o = read_config(dir);
    if (!o) abort();
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (json) cJSON_AddItemToObject(o, key, cJSON_Parse(json));
    char *t = cJSON_Print(o);
    write_text(dir, t);
    free(t);
    cJSON_Delete(o);
}

// The first tensor name of dir's file ending in suffix (static buffer), or "".
static const char *find_key(const char *dir, const char *suffix) {
    static char name[512];
    char p[512], err[256];
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    pb_st_file f;
    name[0] = 0;
    if (pb_st_open(p, &f, err, sizeof err)) return name;
    for (int i = 0; i < f.ntensors && !name[0]; i++) {
        size_t l = strlen(f.tensors[i].name), s = strlen(suffix);
        if (l >= s && !strcmp(f.tensors[i].name + l - s, suffix)) snprintf(name, sizeof name, "%s", f.tensors[i].name);
    }
    pb_st_close(&f);
    return name;
}

// Rewrites dir's safetensors: op 'd' drops key; 'a' adds a copy of key named key2; 's' changes
// key's shape (2-D: dims swapped, or 2 x n when already n x 1 / 1 x n; 1-D: one element more).
static void st_edit(const char *dir, char op, const char *key, const char *key2) {
    char p[512], err[256];
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    pb_st_file f;
    if (pb_st_open(p, &f, err, sizeof err)) abort();
    pb_st_writer *w = pb_st_writer_init();
    int hit = 0;
    for (int i = 0; i < f.ntensors; i++) {
        const pb_st_tensor *T = &f.tensors[i];
        float *h = pb_xcalloc(T->numel + 2, sizeof(float));
        if (pb_st_read_f32(&f, T, h, err, sizeof err)) abort();
        int64_t shape[8];
        memcpy(shape, T->shape, sizeof shape);
        int is = !strcmp(T->name, key), ndim = T->ndim;
        hit |= is;
        if (is && op == 'd') {
            free(h);
            continue;
        }
        if (is && op == 's') {
            if (ndim == 1) shape[0]++;
            else if (shape[0] == 1 || shape[1] == 1) {
                int64_t m = shape[0] * shape[1];
                shape[0] = 2;
                shape[1] = m;
                h = pb_xrealloc(h, (size_t)(2 * m) * sizeof(float));
                memset(h + m, 0, (size_t)m * sizeof(float));
            } else {
                int64_t t = shape[0];
                shape[0] = shape[1];
                shape[1] = t;
            }
        }
        pb_st_writer_add(w, T->name, h, ndim, shape);
        if (is && op == 'a') pb_st_writer_add(w, key2, h, ndim, shape);
        free(h);
    }
    if (!hit) {
        printf("st_edit: no tensor %s in %s\n", key, p);
        abort();
    }
    pb_st_writer_meta(w, "format", "pt");
    if (pb_st_writer_finish(w, p, err, sizeof err)) abort();
    pb_st_writer_free(w);
    pb_st_close(&f);
}

// Moves every trainable tensor of m off its init (the head, the adapters); for AdaLoRA with
// `pattern` set also masks triplets as its rank allocator would (E = 0, keep = 0; at least one
// kept per matrix, one matrix with init_r - 1 masked).
static void perturb(pb_model *m, pb_rng *r, int pattern) {
    int nt = 0;
    pb_param **tp = pb_model_trainable(m, &nt);
    for (int i = 0; i < nt; i++) {
        float *h = pb_xmalloc(tp[i]->numel * sizeof(float));
        pb_download(E, h, tp[i]->data, tp[i]->numel);
        for (size_t k = 0; k < tp[i]->numel; k++) h[k] += 0.05f * pb_rng_normal(r);
        pb_upload(E, tp[i]->data, h, tp[i]->numel);
        free(h);
    }
    if (!pattern) return;
    int n = 0;
    pb_adapter **as = pb_adalora_collect(m, &n);
    for (int k = 0; k < n; k++) {
        pb_adalora_state *st = as[k]->state;
        float *hE = pb_xmalloc((size_t)st->r * sizeof(float));
        pb_download(E, hE, as[k]->params[1].data, (size_t)st->r);
        for (int q = 0; q < st->r; q++) {
            st->keep[q] = k == 0 ? q == 1 : (q + k) % 3 != 0;
            if (!st->keep[q]) hE[q] = 0.0f;
        }
        st->has_pattern = 1;
        pb_upload(E, as[k]->params[1].data, hE, (size_t)st->r);
        free(hE);
    }
    free(as);
}

static void check_roundtrip(const char *model, const char *method, const char *kvs, const char *want, int pattern) {
    char err[512], d1[] = "/tmp/pb_peftio_XXXXXX", d2[64], label[160];
    snprintf(label, sizeof label, "%s %s %s%s", model, method, kvs, pattern ? " (rank pattern)" : "");
    if (!mkdtemp(d1)) { EXPECT(0, "mkdtemp"); return; }
    snprintf(d2, sizeof d2, "%s.re", d1);
    pb_model *m = fresh(model);
    pb_rng r;
    pb_rng_seed(&r, 5);
    tbatch t = make_batch(pb_model_cfg(m), &r);
    size_t nl = (size_t)2 * pb_model_cfg(m)->num_labels;
    pb_method_config c, c2;
    mc_make(&c, method, 7, kvs);
    pb_status st = pb_method_apply(m, &c, err, sizeof err);
    EXPECT(st == PB_OK, "%s: apply: %s", label, err);
    perturb(m, &r, pattern);
    float *l1 = logits(m, &t);
    st = pb_method_export_peft(m, &c, d1, err, sizeof err);
    EXPECT(st == PB_OK, "%s: export: %s", label, err);
    pb_model *m2 = fresh(model);
    st = pb_method_import_peft(m2, d1, &c2, err, sizeof err);
    EXPECT(st == PB_OK, "%s: import: %s", label, err);
    float *l2 = logits(m2, &t);
    double e = rel(l2, l1, nl);
    EXPECT(e <= 1e-6, "%s: imported logits differ: %.3g", label, e);
    EXPECT(st != PB_OK || !strcmp(c2.desc->name, want), "%s: imported as %s, want %s", label, c2.desc->name, want);
    pb_param_counts pc = pb_model_count(m2);
    EXPECT(pc.trainable == pc.adapter + pc.head && pc.adapter > 0, "%s: imported model: backbone not frozen", label);
    EXPECT(nadapters(m2) == nadapters(m), "%s: %d adapters imported, %d exported", label, nadapters(m2), nadapters(m));
    if (st == PB_OK && !strcmp(c2.desc->name, "adalora")) { // imported ranks are final: the allocator leaves them
        int na = 0;
        pb_adapter **as = pb_adalora_collect(m2, &na);
        float *before = logits(m2, &t);
        int b = pb_adalora_allocate(E, as, na, &c2, 1, 10);
        float *after = logits(m2, &t);
        EXPECT(b == -1 && rel(after, before, nl) == 0, "%s: the allocator touched imported adapters (%d)", label, b);
        free(as);
        free(before);
        free(after);
    }
    // export of the imported model: the same tensors, the same type
    st = pb_method_export_peft(m2, &c2, d2, err, sizeof err);
    EXPECT(st == PB_OK, "%s: re-export: %s", label, err);
    int nt = same_tensors(d1, d2);
    EXPECT(nt > 0, "%s: export -> import -> export changed the tensors", label);
    cJSON *j1 = read_config(d1), *j2 = read_config(d2);
    const cJSON *t1 = cJSON_GetObjectItem(j1, "peft_type"), *t2 = cJSON_GetObjectItem(j2, "peft_type");
    EXPECT(t1 && t2 && !strcmp(t1->valuestring, t2->valuestring), "%s: re-export peft_type differs", label);
    if (pattern) { // the rank pattern survives
        char *a = cJSON_PrintUnformatted(cJSON_GetObjectItem(j1, "rank_pattern"));
        char *b = cJSON_PrintUnformatted(cJSON_GetObjectItem(j2, "rank_pattern"));
        EXPECT(!strcmp(a, b) && strchr(a, '{'), "%s: rank_pattern %s re-exported as %s", label, a, b);
        free(a);
        free(b);
    }
    cJSON_Delete(j1);
    cJSON_Delete(j2);
    // a second import onto the imported model fails cleanly
    st = pb_method_import_peft(m2, d1, NULL, err, sizeof err);
    EXPECT(st == PB_ERR_ARG && strstr(err, "already has an adapter"), "%s: second import: %d '%s'", label, st, err);
    printf("%-48s -> %-9s logits %.1e, re-export %d tensors equal\n", label, c2.desc->name, e, nt);
    rm_rf(d1);
    rm_rf(d2);
    free(l1);
    free(l2);
    free_batch(&t);
    pb_model_free(m);
    pb_model_free(m2);
}

// A valid export of method on model into a new temporary directory (caller frees the name).
static char *export_dir(const char *model, const char *method, const char *kvs) {
    char err[512], *d = pb_xmalloc(64);
    snprintf(d, 64, "/tmp/pb_peftio_XXXXXX");
    if (!mkdtemp(d)) abort();
    pb_model *m = fresh(model);
    pb_method_config c;
    mc_make(&c, method, 7, kvs);
    pb_rng r;
    pb_rng_seed(&r, 9);
    if (pb_method_apply(m, &c, err, sizeof err) != PB_OK) abort();
    perturb(m, &r, 0);
    if (pb_method_export_peft(m, &c, d, err, sizeof err) != PB_OK) {
        printf("export %s: %s\n", method, err);
        abort();
    }
    pb_model_free(m);
    return d;
}

// Imports dir into a fresh model: must fail with every string of want (| separated) in the
// message, and leave the model as it was (no adapter, the same trainable parameters).
static void expect_error(const char *model, const char *dir, const char *what, const char *want) {
    char err[1024] = "";
    pb_model *m = fresh(model);
    pb_param_counts before = pb_model_count(m);
    pb_method_config c;
    pb_status st = pb_method_import_peft(m, dir, &c, err, sizeof err);
    int all = 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", want);
    for (char *s = NULL, *w = strtok_r(buf, "|", &s); w; w = strtok_r(NULL, "|", &s)) all &= strstr(err, w) != NULL;
    pb_param_counts after = pb_model_count(m);
    EXPECT(st != PB_OK && all, "%s: status %d, message '%s' (want '%s')", what, st, err, want);
    EXPECT(nadapters(m) == 0 && after.trainable == before.trainable && after.adapter == 0,
           "%s: a failed import changed the model", what);
    printf("error %-40s %s\n", what, err);
    pb_model_free(m);
}

static void check_errors(void) {
    char tmp[128];
    // config: not JSON, duplicate key, not an object, peft_type unknown / missing / not a string
    char *d = export_dir("vit-tiny", "lora", "rank=4");
    snprintf(tmp, sizeof tmp, "%s.x", d);
    cp_dir(d, tmp);
    write_text(tmp, "{\"peft_type\": \"LORA\", \"r\": 4");
    expect_error("vit-tiny", tmp, "config not JSON", "adapter_config.json|not valid JSON");
    write_text(tmp, "{\"peft_type\": \"LORA\", \"r\": 4, \"r\": 8}");
    expect_error("vit-tiny", tmp, "config duplicate key", "adapter_config.json|duplicate key 'r'");
    write_text(tmp, "[1, 2]");
    expect_error("vit-tiny", tmp, "config not an object", "adapter_config.json|not a JSON object");
    cp_dir(d, tmp);
    config_set(tmp, "peft_type", "\"LOHA\"");
    expect_error("vit-tiny", tmp, "peft_type LOHA", "adapter_config.json|peft_type|\"LOHA\"|LORA, ADALORA");
    config_set(tmp, "peft_type", NULL);
    expect_error("vit-tiny", tmp, "peft_type missing", "field peft_type: missing");
    config_set(tmp, "peft_type", "3");
    expect_error("vit-tiny", tmp, "peft_type a number", "field peft_type: missing or not a string");
    // LoRA: unknown key, a factor of the wrong shape, a missing partner, no such linear
    cp_dir(d, tmp);
    st_edit(tmp, 'a', find_key(tmp, ".lora_A.weight"), "base_model.model.vit.layers.0.attention.q_proj.lora_Z.weight");
    expect_error("vit-tiny", tmp, "lora unknown key", "adapter_model.safetensors|lora_Z.weight|not a LoRA factor");
    cp_dir(d, tmp);
    st_edit(tmp, 's', find_key(tmp, ".lora_B.weight"), NULL);
    expect_error("vit-tiny", tmp, "lora B shape", "adapter_model.safetensors|lora_B.weight");
    cp_dir(d, tmp);
    st_edit(tmp, 'd', find_key(tmp, ".lora_B.weight"), NULL);
    expect_error("vit-tiny", tmp, "lora B missing", "adapter_model.safetensors|lora_B.weight");
    cp_dir(d, tmp);
    st_edit(tmp, 'a', find_key(tmp, ".lora_A.weight"), "base_model.model.vit.layers.7.attention.q_proj.lora_A.weight");
    expect_error("vit-tiny", tmp, "lora no such linear", "layers.7.attention.q_proj.lora_A.weight|no linear");
    cp_dir(d, tmp);
    { // the same linear by its hub and its transformers-5 name
        char k[512], hub[512];
        snprintf(k, sizeof k, "%s", find_key(tmp, "layers.0.attention.q_proj.lora_A.weight"));
        snprintf(hub, sizeof hub, "base_model.model.vit.encoder.layer.0.attention.attention.query.lora_A.weight");
        st_edit(tmp, 'a', k, hub);
        expect_error("vit-tiny", tmp, "lora linear named twice", "named twice");
    }
    cp_dir(d, tmp);
    st_edit(tmp, 'a', find_key(tmp, "classifier.weight"), "classifier.weight");
    expect_error("vit-tiny", tmp, "key without prefix", "classifier.weight|does not start with base_model.model.");
    cp_dir(d, tmp);
    { // a truncated file
        char p[512];
        snprintf(p, sizeof p, "%s/adapter_model.safetensors", tmp);
        if (truncate(p, 100) != 0) abort();
        expect_error("vit-tiny", tmp, "truncated safetensors", "adapter_model.safetensors");
    }
    rm_rf(tmp);
    rm_rf(d);
    free(d);

    // IA3: wrong shape, shape vs feedforward_modules, bias, fan_in_fan_out
    d = export_dir("roberta-tiny", "ia3", "");
    snprintf(tmp, sizeof tmp, "%s.x", d);
    cp_dir(d, tmp);
    st_edit(tmp, 's', find_key(tmp, "layer.0.attention.self.key.ia3_l"), NULL);
    expect_error("roberta-tiny", tmp, "ia3 shape", "adapter_model.safetensors|layer.0.attention.self.key.ia3_l|shape");
    cp_dir(d, tmp);
    config_set(tmp, "feedforward_modules", "[]");
    expect_error("roberta-tiny", tmp, "ia3 feedforward_modules", "output.dense.ia3_l|feedforward_modules|input");
    config_set(tmp, "feedforward_modules", "[3]");
    expect_error("roberta-tiny", tmp, "ia3 feedforward_modules type", "field feedforward_modules");
    cp_dir(d, tmp);
    config_set(tmp, "bias", "\"all\"");
    expect_error("roberta-tiny", tmp, "ia3 bias all", "adapter_config.json|field bias|\"all\"");
    cp_dir(d, tmp);
    config_set(tmp, "fan_in_fan_out", "true");
    expect_error("roberta-tiny", tmp, "ia3 fan_in_fan_out", "field fan_in_fan_out");
    cp_dir(d, tmp);
    st_edit(tmp, 'a', find_key(tmp, ".ia3_l"), "base_model.model.roberta.encoder.layer.0.attention.self.key.lora_A");
    expect_error("roberta-tiny", tmp, "ia3 unknown key", "lora_A|not an IA3 vector");
    rm_rf(tmp);
    rm_rf(d);
    free(d);

    // VeRA: shared projections missing / of the wrong shape / present with save_projection
    // false, lambda shapes, r of the wrong type or range
    d = export_dir("vit-tiny", "vera", "rank=8");
    snprintf(tmp, sizeof tmp, "%s.x", d);
    cp_dir(d, tmp);
    st_edit(tmp, 'd', "base_model.vera_B", NULL);
    expect_error("vit-tiny", tmp, "vera B missing", "base_model.vera_B is missing|save_projection");
    cp_dir(d, tmp);
    st_edit(tmp, 's', "base_model.vera_A", NULL);
    expect_error("vit-tiny", tmp, "vera A shape", "base_model.vera_A|expected shape (8, ");
    cp_dir(d, tmp);
    config_set(tmp, "save_projection", "false");
    expect_error("vit-tiny", tmp, "vera save_projection false + A", "base_model.vera_A|save_projection is false");
    cp_dir(d, tmp);
    st_edit(tmp, 's', find_key(tmp, ".vera_lambda_d"), NULL);
    expect_error("vit-tiny", tmp, "vera lambda_d shape", "vera_lambda_d|expected 8 elements|field r");
    cp_dir(d, tmp);
    st_edit(tmp, 'd', find_key(tmp, ".vera_lambda_b"), NULL);
    expect_error("vit-tiny", tmp, "vera lambda_b missing", "vera_lambda_d|partner vera_lambda_b is missing");
    cp_dir(d, tmp);
    config_set(tmp, "r", "\"eight\"");
    expect_error("vit-tiny", tmp, "vera r a string", "adapter_config.json|field r|integer");
    config_set(tmp, "r", "4");
    expect_error("vit-tiny", tmp, "vera r 4 vs tensors", "vera_lambda_d|expected 4 elements");
    cp_dir(d, tmp);
    config_set(tmp, "projection_prng_key", "4294967296");
    expect_error("vit-tiny", tmp, "vera key range", "field projection_prng_key");
    cp_dir(d, tmp);
    config_set(tmp, "vera_dropout", "1.5");
    expect_error("vit-tiny", tmp, "vera dropout range", "field vera_dropout");
    rm_rf(tmp);
    rm_rf(d);
    free(d);

    // FourierFT: per-module n, spectrum length, n above the linear's entries
    d = export_dir("vit-tiny", "fourierft", "n_frequency=50");
    snprintf(tmp, sizeof tmp, "%s.x", d);
    cp_dir(d, tmp);
    config_set(tmp, "n_frequency_pattern", "{\"vit.layers.0.attention.q_proj\": 20}");
    expect_error("vit-tiny", tmp, "fourierft n_frequency_pattern", "field n_frequency_pattern");
    config_set(tmp, "n_frequency_pattern", "{}");
    st_edit(tmp, 's', find_key(tmp, ".fourierft_spectrum"), NULL);
    expect_error("vit-tiny", tmp, "fourierft spectrum length", "fourierft_spectrum|expected 50 elements|n_frequency");
    cp_dir(d, tmp);
    config_set(tmp, "random_loc_seed", "-1");
    expect_error("vit-tiny", tmp, "fourierft seed range", "field random_loc_seed");
    cp_dir(d, tmp);
    while (find_key(tmp, ".fourierft_spectrum")[0]) st_edit(tmp, 'd', find_key(tmp, ".fourierft_spectrum"), NULL);
    expect_error("vit-tiny", tmp, "fourierft no adapters", "nothing to import");
    rm_rf(tmp);
    rm_rf(d);
    free(d);

    // AdaLoRA: a missing E, shapes vs init_r, rank_pattern (length, unknown module, rank 0),
    // ranknum, DoRA
    d = export_dir("roberta-tiny", "adalora", "init_r=4 target_r=2");
    snprintf(tmp, sizeof tmp, "%s.x", d);
    cp_dir(d, tmp);
    st_edit(tmp, 'd', find_key(tmp, "layer.1.attention.self.value.lora_E"), NULL);
    expect_error("roberta-tiny", tmp, "adalora E missing", "layer.1.attention.self.value.lora_A|lora_E|missing");
    cp_dir(d, tmp);
    config_set(tmp, "init_r", "5");
    expect_error("roberta-tiny", tmp, "adalora init_r vs shapes", "lora_A|expected shape (5, 64)|init_r");
    cp_dir(d, tmp);
    config_set(tmp, "rank_pattern", "{\"roberta.encoder.layer.0.attention.self.query.lora_E\": [true, false]}");
    expect_error("roberta-tiny", tmp, "adalora pattern length", "field rank_pattern|init_r = 4");
    config_set(tmp, "rank_pattern", "{\"roberta.encoder.layer.0.attention.self.nosuch.lora_E\": [true, false, true, true]}");
    expect_error("roberta-tiny", tmp, "adalora pattern module", "field rank_pattern|nosuch");
    config_set(tmp, "rank_pattern", "{\"roberta.encoder.layer.0.attention.self.query.lora_E\": [true, false, true, true]}");
    expect_error("roberta-tiny", tmp, "adalora pattern vs shapes", "lora_A|expected shape (3, 64)|rank_pattern");
    config_set(tmp, "rank_pattern", "{\"roberta.encoder.layer.0.attention.self.query.lora_E\": [false, false, false, false]}");
    expect_error("roberta-tiny", tmp, "adalora rank 0", "field rank_pattern|rank 0");
    config_set(tmp, "rank_pattern", "{\"roberta.encoder.layer.0.attention.self.query.lora_E\": [true, false, true, true]}");
    config_set(tmp, "lora_alpha", "0");
    expect_error("roberta-tiny", tmp, "adalora alpha 0 + cut", "field lora_alpha|cuts|rank 3");
    config_set(tmp, "lora_alpha", "8");
    config_set(tmp, "rank_pattern", "{\"roberta.encoder.layer.0.attention.self.query.lora_E\": [true, \"x\", true, true]}");
    expect_error("roberta-tiny", tmp, "adalora pattern entry", "field rank_pattern|not a boolean");
    config_set(tmp, "rank_pattern", "[]");
    expect_error("roberta-tiny", tmp, "adalora pattern type", "field rank_pattern|object or null");
    cp_dir(d, tmp);
    config_set(tmp, "use_dora", "true");
    expect_error("roberta-tiny", tmp, "adalora use_dora", "field use_dora");
    cp_dir(d, tmp);
    config_set(tmp, "total_step", "0");
    expect_error("roberta-tiny", tmp, "adalora total_step 0", "field total_step");
    cp_dir(d, tmp);
    { // an older peft's ranknum tensor: init_r is fine, anything else is refused
        char k[512], rk[512];
        snprintf(k, sizeof k, "%s", find_key(tmp, "layer.0.attention.self.query.lora_E"));
        snprintf(rk, sizeof rk, "%.*s.ranknum", (int)(strlen(k) - strlen(".lora_E")), k);
        st_edit(tmp, 'a', k, rk); // E has 4 elements: not one
        expect_error("roberta-tiny", tmp, "adalora ranknum shape", "ranknum|one element");
    }
    rm_rf(tmp);
    rm_rf(d);
    free(d);

    // no directory at all
    expect_error("vit-tiny", "/tmp/pb_peftio_no_such_dir", "missing directory", "adapter_config.json|cannot open");
}

int main(void) {
    char err[256];
    E = pb_engine_init(PB_DEVICE_CPU, 1, err, sizeof err);
    if (!E) {
        printf("engine: %s\n", err);
        return 1;
    }
    static const char *const six = "targets=query,key,value,attention.output,intermediate,output";
    char kv[256];
    check_roundtrip("vit-tiny", "lora", "rank=4 alpha=6", "lora", 0);
    check_roundtrip("roberta-tiny", "lora", "rank=3 rslora=true targets=query,intermediate", "lora", 0);
    check_roundtrip("vit-tiny", "pissa", "rank=4 alpha=6", "lora", 0);
    check_roundtrip("roberta-tiny", "dora", "rank=4 alpha=6", "dora", 0);
    check_roundtrip("vit-tiny", "dylora", "rank=6 eval_rank=3", "lora", 0);
    check_roundtrip("vit-tiny", "ia3", "", "ia3", 0);
    snprintf(kv, sizeof kv, "%s feedforward=attention.output,intermediate", six);
    check_roundtrip("roberta-tiny", "ia3", kv, "ia3", 0);
    check_roundtrip("vit-tiny", "vera", "rank=8", "vera", 0);
    snprintf(kv, sizeof kv, "rank=40 d_initial=0.5 projection_seed=9 %s", six);
    check_roundtrip("roberta-tiny", "vera", kv, "vera", 0);
    check_roundtrip("vit-tiny", "fourierft", "n_frequency=60 scaling=20", "fourierft", 0);
    snprintf(kv, sizeof kv, "n_frequency=40 scaling=5 random_loc_seed=3 %s", six);
    check_roundtrip("roberta-tiny", "fourierft", kv, "fourierft", 0);
    check_roundtrip("vit-tiny", "adalora", "init_r=4 target_r=2", "adalora", 0);
    snprintf(kv, sizeof kv, "init_r=3 target_r=1 alpha=0 %s", six);
    check_roundtrip("roberta-tiny", "adalora", kv, "adalora", 1);
    check_roundtrip("vit-tiny", "adalora", "init_r=4 target_r=2 targets=query,key,intermediate", "adalora", 1);
    check_errors();
    pb_engine_free(E);
    printf(pb_test_fails ? "test_peft_io: %d FAILED\n" : "test_peft_io: all passed\n", pb_test_fails);
    return pb_test_fails ? 1 : 0;
}
