// cmd_trace.c: `peftbench trace --model DIR --batch BATCH.safetensors --out OUT.safetensors
// [--steps N] [--lr X] [--wd X] [--beta1 X] [--beta2 X] [--eps X] [--label-smoothing X]
// [--threads N] [--device cpu|cuda] [--seed S] [--num-labels N] [--train] [--dump-steps] [--save DIR]
// [--method M] [--opt key=value ...] (and the short option flags of cli_method.h)
// [--peft-import DIR] [--peft-export DIR] [--params FILE]`:
// one forward + loss + backward (and optionally N constant-lr AdamW steps) dumped to
// safetensors, for cross-checks against PyTorch / PEFT.
//
// Tensor names ("<key>" below): model parameters under their checkpoint key (pb_model_save:
// "vit."/"roberta." + name for the backbone, "classifier.*" for the head); adapter tensors under
// their PEFT-style key, i.e. the key HF PEFT writes to adapter_model.safetensors minus
// "base_model.model.", in the hub (transformers 4) module layout:
// "<prefix><linear>.lora_A.weight", ".lora_B.weight" (lora, pissa), ".svfit_sigma" (svfit),
// ".aoft_q_down", ".aoft_q_up", ".aoft_lambda" or ".aoft_gate" (aoft), e.g.
// "vit.encoder.layer.0.attention.attention.query.lora_A.weight".
//
// Output tensors: "logits" (B,V), "loss" (1), "grad.<key>" for every trainable tensor,
// "init.<key>" (the value every adapter tensor had at step 0) and "base.<prefix><linear>.weight"
// (the frozen base weight of every adapted linear at step 0: W_res for PiSSA, W_e for SVFit),
// "frozen.<key>" (frozen tensors an adapter owns, e.g. VeRA's vera_A / vera_B slices);
// with --steps N: "loss.<i>" (1) for the loss before step i (i = 0..N-1), "param.<key>" after the
// N steps and "logits.final" (eval forward after the steps). With --save DIR: "logits.merged"
// (eval forward after pb_method_merge), then the merged model is written with pb_model_save.
// Step 0 uses the gradients already dumped. With --dump-steps also "step.<i>.grad.<key>" (the
// gradient step i used, the method's regulariser included) and "step.<i>.param.<key>" (after
// step i's update and the method's after_update hook, e.g. AdaLoRA's masking).
// The method's training hooks (method.h) run as in `run`; the schedule length is --steps.
// --params FILE loads trainable tensors by "<key>" (every tensor in FILE must name a trainable
// tensor of the same size) before step 0. --peft-import DIR attaches the adapters of a PEFT
// directory instead of --method (pb_method_import_peft: peft_type LORA with or without use_dora,
// IA3, VERA, FOURIERFT, ADALORA; the method and its hooks are the imported one's);
// --peft-export DIR writes the adapters after the steps (before any merge) with
// pb_method_export_peft.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../engine/fileutil.h"
// defines: pb_model_*, pb_batch
#include "../models/model.h"
// defines: pb_st_open, pb_st_find, pb_st_read_*, pb_st_writer_*
#include "../models/safetensors.h"
// defines: pb_method_config, pb_method_apply
#include "../methods/adapter.h"
#include "cli_method.h"
#include "loop.h"

static void trace_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench trace --model DIR --batch BATCH.safetensors --out OUT.safetensors\n"
            "         [--steps N] [--lr 1e-3] [--wd 0.01] [--beta1 0.9] [--beta2 0.999] [--eps 1e-8]\n"
            "         [--label-smoothing 0] [--schedule constant|linear|cosine] [--warmup-steps N]\n"
            "         [--warmup-ratio R] [--head-lr X] [--max-grad-norm X] [--batch-size B]\n"
            "         [--threads 1] [--device cpu|cuda] [--seed 0]\n"
            "         [--num-labels N] [--train] [--dump-steps]\n"
            "         [--save DIR] [--method M] [--opt key=value ...] [--peft-import DIR]\n"
            "         [--peft-export DIR] [--params FILE]\n"
            PB_CLI_METHOD_USAGE
            "  the steps run the training loop of `run` (harness/loop.h): schedule over --steps with\n"
            "  warmup, head LR group, clipping, label smoothing, AdamW; --batch-size B: step i uses\n"
            "  examples [(i mod K) B, +B) of the file (K = n / B; default B = n)\n"
            "  batch: ViT \"pixel_values\" (B,C,H,W) float + \"labels\" (B);\n"
            "         RoBERTa \"input_ids\", \"attention_mask\" (B,T) int + \"labels\" (B)\n"
            "         (labels float when num_labels == 1: regression)\n");
}

typedef struct {
    int B, T;
    float *pixels;   // host (B,C,H,W)
    int32_t *ids, *mask, *labels;
    float *targets;
} host_batch;

static void host_batch_free(host_batch *h) {
    free(h->pixels);
    free(h->ids);
    free(h->mask);
    free(h->labels);
    free(h->targets);
    memset(h, 0, sizeof(*h));
}

static const pb_st_tensor *need(const pb_st_file *f, const char *name, char *err, size_t errlen,
                                pb_status *st) {
    const pb_st_tensor *t = pb_st_find(f, name);
    if (!t) *st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: missing tensor '%s'", f->path, name);
    return t;
}

// Reads and validates a batch against the model's config.
static pb_status read_batch(const char *path, const pb_model_config *cfg, host_batch *h, char *err,
                            size_t errlen) {
    memset(h, 0, sizeof(*h));
    pb_st_file f;
    pb_status st = pb_st_open(path, &f, err, errlen);
    if (st != PB_OK) return st;
    const pb_st_tensor *lab = need(&f, "labels", err, errlen, &st);
    if (cfg->arch == PB_ARCH_VIT) {
        const pb_st_tensor *px = need(&f, "pixel_values", err, errlen, &st);
        if (st == PB_OK && (px->ndim != 4 || px->shape[1] != cfg->channels ||
                            px->shape[2] != cfg->image_size || px->shape[3] != cfg->image_size))
            st = pb_errf(PB_ERR_FORMAT, err, errlen,
                         "%s: pixel_values must be (B, %d, %d, %d) for this model", path,
                         cfg->channels, cfg->image_size, cfg->image_size);
        if (st == PB_OK) {
            h->B = (int)px->shape[0];
            h->T = 1;
            h->pixels = pb_xmalloc(px->numel * sizeof(float));
            st = pb_st_read_f32(&f, px, h->pixels, err, errlen);
        }
    } else {
        const pb_st_tensor *ids = need(&f, "input_ids", err, errlen, &st);
        const pb_st_tensor *am = st == PB_OK ? need(&f, "attention_mask", err, errlen, &st) : NULL;
        if (st == PB_OK && (ids->ndim != 2 || am->ndim != 2 || ids->shape[0] != am->shape[0] ||
                            ids->shape[1] != am->shape[1]))
            st = pb_errf(PB_ERR_FORMAT, err, errlen,
                         "%s: input_ids and attention_mask must both be (B,T)", path);
        if (st == PB_OK) {
            h->B = (int)ids->shape[0];
            h->T = (int)ids->shape[1];
            if (h->T + cfg->pad_id >= cfg->max_positions)
                st = pb_errf(PB_ERR_FORMAT, err, errlen,
                             "%s: sequence length %d exceeds the model's %d positions", path, h->T,
                             cfg->max_positions - cfg->pad_id - 1);
        }
        if (st == PB_OK) {
            h->ids = pb_xmalloc(ids->numel * sizeof(int32_t));
            h->mask = pb_xmalloc(am->numel * sizeof(int32_t));
            st = pb_st_read_i32(&f, ids, h->ids, err, errlen);
            if (st == PB_OK) st = pb_st_read_i32(&f, am, h->mask, err, errlen);
            for (size_t i = 0; st == PB_OK && i < ids->numel; i++)
                if (h->ids[i] < 0 || h->ids[i] >= cfg->vocab_size)
                    st = pb_errf(PB_ERR_FORMAT, err, errlen,
                                 "%s: input_ids[%zu] = %d outside the vocabulary [0,%d)", path, i,
                                 h->ids[i], cfg->vocab_size);
        }
    }
    if (st == PB_OK && (lab->numel != (size_t)h->B))
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: labels must have %d elements, has %zu", path,
                     h->B, lab->numel);
    if (st == PB_OK && h->B < 1)
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: empty batch", path);
    if (st == PB_OK) {
        if (cfg->num_labels == 1) {
            h->targets = pb_xmalloc((size_t)h->B * sizeof(float));
            st = pb_st_read_f32(&f, lab, h->targets, err, errlen);
        } else {
            h->labels = pb_xmalloc((size_t)h->B * sizeof(int32_t));
            st = pb_st_read_i32(&f, lab, h->labels, err, errlen);
            for (int i = 0; st == PB_OK && i < h->B; i++)
                if (h->labels[i] < 0 || h->labels[i] >= cfg->num_labels)
                    st = pb_errf(PB_ERR_FORMAT, err, errlen,
                                 "%s: labels[%d] = %d outside [0,%d)", path, i, h->labels[i],
                                 cfg->num_labels);
        }
    }
    pb_st_close(&f);
    if (st != PB_OK) host_batch_free(h);
    return st;
}

// The key a tensor is written under: the checkpoint key for model params, the PEFT-style key
// ("<prefix><linear>.<leaf>") for adapter params; head params carry no prefix.
static void out_key(char *buf, size_t n, const char *kind, pb_model *m, const pb_param *p) {
    snprintf(buf, n, "%s%s%s%s", kind, kind[0] ? "." : "",
             p->group != PB_GROUP_HEAD ? pb_model_prefix(m) : "", p->name);
}

static void add_tensor(pb_st_writer *w, pb_engine *e, const char *key, const float *dev,
                       const pb_param *shape_of, size_t n) {
    float *h = pb_xmalloc(n * sizeof(float));
    pb_download(e, h, dev, n);
    pb_st_writer_add(w, key, h, shape_of->ndim, shape_of->shape);
    free(h);
}

static int parse_f(const char *flag, const char *s, float *out) {
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !isfinite(v)) {
        fprintf(stderr, "peftbench trace: %s: expected a finite number, got '%s'\n", flag, s);
        return 0;
    }
    // ranges: rates and decays >= 0, betas in [0, 1), eps > 0, smoothing in [0, 1)
    int beta = !strcmp(flag, "--beta1") || !strcmp(flag, "--beta2");
    int unit = beta || !strcmp(flag, "--label-smoothing") || !strcmp(flag, "--warmup-ratio");
    if (v < 0 || (unit && v >= 1) || (!strcmp(flag, "--eps") && v <= 0)) {
        fprintf(stderr, "peftbench trace: %s: %s out of range (%s)\n", flag, s,
                unit ? "want 0 <= x < 1" : !strcmp(flag, "--eps") ? "want x > 0" : "want x >= 0");
        return 0;
    }
    *out = (float)v;
    return 1;
}

static int parse_i(const char *flag, const char *s, long long *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "peftbench trace: %s: expected a non-negative integer, got '%s'\n", flag, s);
        return 0;
    }
    *out = v;
    return 1;
}

// Loads trainable tensors by their trace key from a safetensors file (see the header). Every
// tensor of the file must match a trainable tensor's key and element count; nothing is changed
// unless all match.
static pb_status load_params(pb_model *m, const char *path, char *err, size_t errlen) {
    pb_st_file f;
    pb_status st = pb_st_open(path, &f, err, errlen);
    if (st != PB_OK) return st;
    pb_engine *e = pb_model_engine(m);
    int np = 0;
    pb_param **ps = pb_model_trainable(m, &np);
    pb_param **hit = pb_xcalloc((size_t)f.ntensors + 1, sizeof(pb_param *));
    char key[PB_NAME_MAX + 32];
    for (int t = 0; t < f.ntensors && st == PB_OK; t++) {
        for (int i = 0; i < np && !hit[t]; i++) {
            out_key(key, sizeof(key), "", m, ps[i]);
            if (!strcmp(key, f.tensors[t].name)) hit[t] = ps[i];
        }
        if (!hit[t])
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: no trainable tensor of that name",
                         path, f.tensors[t].name);
        else if (hit[t]->numel != f.tensors[t].numel)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor %s: %zu elements, the model has %zu",
                         path, f.tensors[t].name, f.tensors[t].numel, hit[t]->numel);
    }
    for (int t = 0; t < f.ntensors && st == PB_OK; t++) {
        float *h = pb_xmalloc(f.tensors[t].numel * sizeof(float));
        st = pb_st_read_f32(&f, &f.tensors[t], h, err, errlen);
        if (st == PB_OK) pb_upload(e, hit[t]->data, h, hit[t]->numel);
        free(h);
    }
    free(hit);
    pb_st_close(&f);
    return st;
}

// Examples [k B, (k+1) B) of the staged batch b as a batch of its own (views, no copies).
static void trace_chunk(const pb_batch *b, const pb_model_config *cfg, int k, int B, pb_batch *out) {
    *out = *b;
    out->B = B;
    size_t o = (size_t)k * (size_t)B;
    if (b->pixels) out->pixels = b->pixels + o * (size_t)cfg->channels * cfg->image_size * cfg->image_size;
    if (b->ids) out->ids = b->ids + o * (size_t)b->T;
    if (b->mask) out->mask = b->mask + o * (size_t)b->T;
    if (b->labels) out->labels = b->labels + o;
    if (b->targets) out->targets = b->targets + o;
}

// Eval forward; adds the logits (B,V) to w under name.
static void dump_logits(pb_st_writer *w, pb_model *m, const pb_batch *b, const char *name) {
    int V = pb_model_cfg(m)->num_labels;
    const float *logits = pb_model_forward(m, b, 0, 0);
    size_t n = (size_t)b->B * (size_t)V;
    float *h = pb_xmalloc(n * sizeof(float));
    pb_download(pb_model_engine(m), h, logits, n);
    pb_st_writer_add(w, name, h, 2, (int64_t[]){b->B, V});
    free(h);
}

// Outputs must never land on an input: --out not an input file nor inside the model or PEFT
// import directory (nor inside --save/--peft-export, written after it); --save and --peft-export
// not the model or import directory nor inside them, and holding no input file. Paths are
// compared resolved (pb_path_resolve: symlinks, "..", not-yet-existing tails). Prints the error
// and returns 1 on a conflict.
static int trace_check_outputs(const char *model_dir, const char *batch, const char *params, const char *peft_import,
                               const char *out, const char *save, const char *peft_export) {
    const char *in_files[2] = {batch, params}, *in_dirs[2] = {model_dir, peft_import};
    const char *in_names[4] = {"--batch", "--params", "--model", "--peft-import"};
    const char *outs[3] = {out, save, peft_export}, *out_names[3] = {"--out", "--save", "--peft-export"};
    char ri[4][4096], ro[3][4096];
    for (int i = 0; i < 4; i++) {
        const char *p = i < 2 ? in_files[i] : in_dirs[i - 2];
        ri[i][0] = 0;
        if (p && pb_path_resolve(p, ri[i], sizeof ri[i])) ri[i][0] = 0;
    }
    for (int o = 0; o < 3; o++) {
        ro[o][0] = 0;
        if (outs[o] && pb_path_resolve(outs[o], ro[o], sizeof ro[o])) {
            fprintf(stderr, "peftbench trace: %s %s: path too long\n", out_names[o], outs[o]);
            return 1;
        }
    }
    for (int o = 0; o < 3; o++) {
        if (!ro[o][0]) continue;
        for (int i = 0; i < 4; i++) {
            if (!ri[i][0]) continue;
            int clash = i < 2 ? (o == 0 ? !strcmp(ro[o], ri[i]) : pb_path_inside(ri[i], ro[o]))
                              : (pb_path_inside(ro[o], ri[i]) || (o > 0 && pb_path_inside(ri[i], ro[o])));
            if (clash) {
                fprintf(stderr, "peftbench trace: %s %s would overwrite the input %s %s (%s); choose another path\n",
                        out_names[o], outs[o], in_names[i], i < 2 ? in_files[i] : in_dirs[i - 2], ri[i]);
                return 1;
            }
        }
        if (o == 0)
            for (int d = 1; d < 3; d++)
                if (ro[d][0] && pb_path_inside(ro[0], ro[d])) {
                    fprintf(stderr, "peftbench trace: --out %s lies inside %s %s, which is written after it\n", out,
                            out_names[d], outs[d]);
                    return 1;
                }
    }
    return 0;
}

int pb_cmd_trace(int argc, char **argv) {
    const char *model_dir = NULL, *batch_path = NULL, *out_path = NULL;
    const char *save_dir = NULL, *peft_import = NULL, *peft_export = NULL, *params_path = NULL;
    const char *device = "cpu";
    long long steps = 0, threads = 1, seed = 0, num_labels = 0, warmup_steps = 0, bsz = 0;
    float lr = 1e-3f, wd = 0.01f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, ls = 0.0f;
    float head_lr = -1.0f, max_grad_norm = 0.0f, warmup_ratio = 0.0f;
    const char *schedule = "constant";
    int train = 0, dump_steps = 0;
    pb_cli_method cm;
    memset(&cm, 0, sizeof cm);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc, ok = 1, k;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            trace_usage(stdout);
            return 0;
        } else if ((k = pb_cli_method_arg(&cm, argc, argv, &i, "trace")) != 0) {
            if (k < 0) return 2;
        } else if (!strcmp(a, "--train")) train = 1;
        else if (!strcmp(a, "--dump-steps")) dump_steps = 1;
        else if (!has) ok = 0;
        else if (!strcmp(a, "--model")) model_dir = argv[++i];
        else if (!strcmp(a, "--batch")) batch_path = argv[++i];
        else if (!strcmp(a, "--out")) out_path = argv[++i];
        else if (!strcmp(a, "--save")) save_dir = argv[++i];
        else if (!strcmp(a, "--device")) device = argv[++i];
        else if (!strcmp(a, "--peft-import")) peft_import = argv[++i];
        else if (!strcmp(a, "--peft-export")) peft_export = argv[++i];
        else if (!strcmp(a, "--params")) params_path = argv[++i];
        else if (!strcmp(a, "--steps")) ok = parse_i(a, argv[++i], &steps);
        else if (!strcmp(a, "--threads")) ok = parse_i(a, argv[++i], &threads);
        else if (!strcmp(a, "--seed")) ok = parse_i(a, argv[++i], &seed);
        else if (!strcmp(a, "--num-labels")) ok = parse_i(a, argv[++i], &num_labels);
        else if (!strcmp(a, "--lr")) ok = parse_f(a, argv[++i], &lr);
        else if (!strcmp(a, "--wd")) ok = parse_f(a, argv[++i], &wd);
        else if (!strcmp(a, "--beta1")) ok = parse_f(a, argv[++i], &beta1);
        else if (!strcmp(a, "--beta2")) ok = parse_f(a, argv[++i], &beta2);
        else if (!strcmp(a, "--eps")) ok = parse_f(a, argv[++i], &eps);
        else if (!strcmp(a, "--label-smoothing")) ok = parse_f(a, argv[++i], &ls);
        else if (!strcmp(a, "--head-lr")) ok = parse_f(a, argv[++i], &head_lr);
        else if (!strcmp(a, "--max-grad-norm")) ok = parse_f(a, argv[++i], &max_grad_norm);
        else if (!strcmp(a, "--warmup-ratio")) ok = parse_f(a, argv[++i], &warmup_ratio);
        else if (!strcmp(a, "--warmup-steps")) ok = parse_i(a, argv[++i], &warmup_steps);
        else if (!strcmp(a, "--batch-size")) ok = parse_i(a, argv[++i], &bsz);
        else if (!strcmp(a, "--schedule")) {
            schedule = argv[++i];
            ok = !strcmp(schedule, "constant") || !strcmp(schedule, "linear") || !strcmp(schedule, "cosine");
        }
        else ok = 0;
        if (!ok) {
            fprintf(stderr, "peftbench trace: bad or incomplete argument '%s'\n", a);
            trace_usage(stderr);
            return 2;
        }
    }
    if (!model_dir || !batch_path || !out_path) {
        trace_usage(stderr);
        return 2;
    }
    if (strcmp(device, "cpu") && strcmp(device, "cuda")) {
        fprintf(stderr, "peftbench trace: --device must be cpu or cuda, not '%s'\n", device);
        return 2;
    }
    if (trace_check_outputs(model_dir, batch_path, params_path, peft_import, out_path, save_dir, peft_export))
        return 2;
    char err[1024];
    pb_engine *e = pb_engine_init(strcmp(device, "cuda") ? PB_DEVICE_CPU : PB_DEVICE_CUDA,
                                  (int)threads, err, sizeof(err));
    if (!e) {
        fprintf(stderr, "peftbench trace: %s\n", err);
        return 2;
    }
    int rc = 2;
    pb_model *m = NULL;
    host_batch hb;
    memset(&hb, 0, sizeof(hb));
    pb_st_writer *w = NULL;
    float *d_pixels = NULL, *d_targets = NULL;
    int32_t *d_ids = NULL, *d_mask = NULL, *d_labels = NULL;
    if (pb_model_load(e, model_dir, (int)num_labels, (uint64_t)seed, &m, err, sizeof(err)) != PB_OK)
        goto fail;
    pb_method_config mc;
    if (pb_cli_method_build(&cm, "full", (uint64_t)seed, &mc, err, sizeof(err)) != PB_OK) goto fail;
    if (peft_import) {
        if (pb_method_import_peft(m, peft_import, &mc, err, sizeof(err)) != PB_OK) goto fail;
    } else if (pb_method_apply(m, &mc, err, sizeof(err)) != PB_OK) {
        goto fail;
    }
    if (save_dir && !pb_method_mergeable(m)) {
        snprintf(err, sizeof(err), "--save: %s cannot be merged into the model's linears (nonlinear adapters)",
                 mc.desc->name);
        goto fail;
    }
    if (params_path && load_params(m, params_path, err, sizeof(err)) != PB_OK) goto fail;
    const pb_model_config *cfg = pb_model_cfg(m);
    if (read_batch(batch_path, cfg, &hb, err, sizeof(err)) != PB_OK) goto fail;

    pb_batch b;
    memset(&b, 0, sizeof(b));
    b.B = hb.B;
    b.T = hb.T;
    if (hb.pixels) {
        size_t n = (size_t)hb.B * cfg->channels * cfg->image_size * cfg->image_size;
        d_pixels = pb_alloc(e, n);
        pb_upload(e, d_pixels, hb.pixels, n);
        b.pixels = d_pixels;
    }
    if (hb.ids) {
        size_t n = (size_t)hb.B * (size_t)hb.T;
        d_ids = pb_alloc_i32(e, n);
        d_mask = pb_alloc_i32(e, n);
        pb_upload_i32(e, d_ids, hb.ids, n);
        pb_upload_i32(e, d_mask, hb.mask, n);
        b.ids = d_ids;
        b.mask = d_mask;
    }
    if (hb.labels) {
        d_labels = pb_alloc_i32(e, (size_t)hb.B);
        pb_upload_i32(e, d_labels, hb.labels, (size_t)hb.B);
        b.labels = d_labels;
    }
    if (hb.targets) {
        d_targets = pb_alloc(e, (size_t)hb.B);
        pb_upload(e, d_targets, hb.targets, (size_t)hb.B);
        b.targets = d_targets;
    }

    w = pb_st_writer_init();
    pb_st_writer_meta(w, "format", "pt");
    char key[PB_NAME_MAX + 32];
    int np = 0;
    pb_param **ps = pb_model_trainable(m, &np);
    // step-0 values of the adapter tensors and the frozen base weights under them
    for (int i = 0; i < np; i++) {
        if (ps[i]->group != PB_GROUP_ADAPTER) continue;
        out_key(key, sizeof(key), "init", m, ps[i]);
        add_tensor(w, e, key, ps[i]->data, ps[i], ps[i]->numel);
    }
    {
        int nl = 0;
        pb_linear *lin = pb_model_linears(m, &nl);
        for (int i = 0; i < nl; i++) {
            if (!lin[i].adapter) continue;
            snprintf(key, sizeof(key), "base.%s%s.weight", pb_model_prefix(m), lin[i].name);
            add_tensor(w, e, key, lin[i].w->data, lin[i].w, lin[i].w->numel);
            for (int j = 0; j < lin[i].adapter->nfrozen; j++) {
                pb_param *fz = &lin[i].adapter->frozen[j];
                snprintf(key, sizeof(key), "frozen.%s%s", pb_model_prefix(m), fz->name);
                add_tensor(w, e, key, fz->data, fz, fz->numel);
            }
        }
    }

    // The loop of `run` (loop.h) on consecutive chunks of the batch file.
    int Bc = bsz > 0 ? (int)bsz : b.B;
    if (Bc > b.B || b.B % Bc) {
        snprintf(err, sizeof(err), "--batch-size %d must divide the %d examples of %s", Bc, b.B, batch_path);
        goto fail;
    }
    int K = b.B / Bc;
    pb_recipe rcp;
    pb_recipe_read(NULL, &rcp);
    rcp.lr = lr;
    rcp.head_lr = head_lr >= 0 ? head_lr : lr;
    rcp.beta1 = beta1;
    rcp.beta2 = beta2;
    rcp.eps = eps;
    rcp.weight_decay = wd;
    rcp.label_smoothing = ls;
    rcp.max_grad_norm = max_grad_norm;
    rcp.warmup_steps = (int)warmup_steps;
    rcp.warmup_ratio = warmup_ratio;
    rcp.sched = !strcmp(schedule, "cosine") ? PB_SCHED_COSINE : !strcmp(schedule, "linear") ? PB_SCHED_LINEAR
                                                                                            : PB_SCHED_CONSTANT;
    pb_loop L;
    pb_loop_init(&L, m, &rcp, (int)steps);
    if (pb_loop_set_method(&L, &mc, err, sizeof(err)) != PB_OK) {
        pb_loop_free(&L);
        goto fail;
    }
    int V = cfg->num_labels;
    float *hl = pb_xmalloc((size_t)Bc * (size_t)V * sizeof(float));
    pb_batch chunk;
    trace_chunk(&b, cfg, 0, Bc, &chunk);
    float loss = pb_loop_forward_backward(&L, &chunk, NULL, train, (uint64_t)seed, hl);
    pb_st_writer_add(w, "logits", hl, 2, (int64_t[]){Bc, V});
    free(hl);
    pb_st_writer_add(w, "loss", &loss, 1, (int64_t[]){1});
    for (int i = 0; i < np; i++) {
        out_key(key, sizeof(key), "grad", m, ps[i]);
        add_tensor(w, e, key, ps[i]->grad, ps[i], ps[i]->numel);
    }
    for (long long s = 0; s < steps; s++) {
        if (s > 0) {
            trace_chunk(&b, cfg, (int)(s % K), Bc, &chunk);
            loss = pb_loop_forward_backward(&L, &chunk, NULL, train, (uint64_t)seed + (uint64_t)s, NULL);
        }
        if (!isfinite(loss)) {
            pb_loop_free(&L);
            snprintf(err, sizeof(err), "non-finite loss %g before step %lld", (double)loss, s);
            goto fail;
        }
        snprintf(key, sizeof(key), "loss.%lld", s);
        pb_st_writer_add(w, key, &loss, 1, (int64_t[]){1});
        pb_loop_update(&L);
        for (int i = 0; dump_steps && i < np; i++) { // after the update (and the method's hook)
            char k2[PB_NAME_MAX + 96];
            out_key(key, sizeof(key), "", m, ps[i]);
            snprintf(k2, sizeof(k2), "step.%lld.grad.%s", s, key);
            add_tensor(w, e, k2, ps[i]->grad, ps[i], ps[i]->numel);
            snprintf(k2, sizeof(k2), "step.%lld.param.%s", s, key);
            add_tensor(w, e, k2, ps[i]->data, ps[i], ps[i]->numel);
        }
        float rates[3] = {L.lr, L.head_lr, (float)L.grad_norm};
        const char *rn[3] = {"lr", "head_lr", "grad_norm"};
        for (int q = 0; q < 3; q++) {
            snprintf(key, sizeof(key), "%s.%lld", rn[q], s);
            pb_st_writer_add(w, key, &rates[q], 1, (int64_t[]){1});
        }
    }
    pb_loop_free(&L);
    if (steps > 0) {
        for (int i = 0; i < np; i++) {
            out_key(key, sizeof(key), "param", m, ps[i]);
            add_tensor(w, e, key, ps[i]->data, ps[i], ps[i]->numel);
        }
        dump_logits(w, m, &b, "logits.final");
    }
    if (peft_export && pb_method_export_peft(m, &mc, peft_export, err, sizeof(err)) != PB_OK) goto fail;
    if (save_dir) {
        pb_method_merge(m);
        dump_logits(w, m, &b, "logits.merged");
    }
    if (pb_st_writer_finish(w, out_path, err, sizeof(err)) != PB_OK) goto fail;
    if (save_dir && pb_model_save(m, save_dir, err, sizeof(err)) != PB_OK) goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "peftbench trace: %s\n", err);
done:
    if (w) pb_st_writer_free(w);
    host_batch_free(&hb);
    pb_free(e, d_pixels);
    pb_free(e, d_targets);
    pb_free(e, d_ids);
    pb_free(e, d_mask);
    pb_free(e, d_labels);
    pb_model_free(m);
    pb_engine_free(e);
    return rc;
}
