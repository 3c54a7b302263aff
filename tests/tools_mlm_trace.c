// tools_mlm_trace.c: test tool for the masked-LM head (models/mlm.h), driven by
// tests/ref/ref_mlm.py against transformers' RobertaForMaskedLM.
//
// usage: pb_mlm_trace --model DIR --batch BATCH.safetensors --out OUT.safetensors
//                     [--steps N] [--lr 1e-3] [--wd 0.01] [--save DIR] [--threads 2]
//                     [--device cpu|cuda] [--mask-seed S]
// DIR is an HF RobertaForMaskedLM directory; BATCH holds "input_ids", "attention_mask" and
// "labels" (B,T) integers (labels -100 where nothing is predicted). Every backbone tensor and the
// head are trainable. OUT gets "logits" (B,T,V) (eval, every token), "loss" (1), "nmasked" (1),
// "grad.<key>" for every trainable tensor under its checkpoint key ("roberta.<name>",
// "lm_head.<name>"); with --steps N, N AdamW steps (constant lr, torch's AdamW, weight decay on
// matrices only) on the same batch, then "loss.<i>" (1) before step i, "param.<key>" and
// "logits.final". --save DIR then writes the model with pb_mlm_save.
// --mask-seed S only masks input_ids with pb_mlm_mask (seed S, the model's vocabulary, specials
// 0-3 and <mask> = V-1) and writes "masked_ids" and "mask_labels" (B,T) as floats to OUT.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
// defines: pb_mlm_head, pb_mlm_* (the head under test)
#include "models/mlm.h"
// defines: pb_st_open, pb_st_find, pb_st_read_i32, pb_st_writer_*
#include "models/safetensors.h"

static int usage(void) {
    fprintf(stderr, "usage: pb_mlm_trace --model DIR --batch BATCH.safetensors --out OUT.safetensors\n"
                    "                    [--steps N] [--lr X] [--wd X] [--save DIR] [--threads N]\n"
                    "                    [--device cpu|cuda] [--mask-seed S]\n");
    return 2;
}

// Reads (B,T) int tensor `name` of f into a malloc'd array (caller frees); checks the shape.
static pb_status read_bt(const pb_st_file *f, const char *name, int *B, int *T, int32_t **out, char *err,
                         size_t errlen) {
    const pb_st_tensor *t = pb_st_find(f, name);
    if (!t) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: missing tensor '%s'", f->path, name);
    if (t->ndim != 2 || (*B && (t->shape[0] != *B || t->shape[1] != *T)))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: '%s' must be (B,T) like input_ids", f->path, name);
    *B = (int)t->shape[0];
    *T = (int)t->shape[1];
    *out = pb_xmalloc(t->numel * sizeof(int32_t));
    return pb_st_read_i32(f, t, *out, err, errlen);
}

static void dump(pb_st_writer *w, pb_engine *e, const char *key, const float *dev, int ndim, const int64_t *shape,
                 size_t n) {
    float *h = pb_xmalloc(n * sizeof(float));
    pb_download(e, h, dev, n);
    pb_st_writer_add(w, key, h, ndim, shape);
    free(h);
}

int main(int argc, char **argv) {
    const char *model_dir = NULL, *batch_path = NULL, *out_path = NULL, *save_dir = NULL, *device = "cpu";
    int steps = 0, threads = 2;
    long long mask_seed = -1;
    float lr = 1e-3f, wd = 0.01f;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return usage();
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--batch")) batch_path = v;
        else if (!strcmp(a, "--out")) out_path = v;
        else if (!strcmp(a, "--save")) save_dir = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--mask-seed")) mask_seed = atoll(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--lr")) lr = strtof(v, NULL);
        else if (!strcmp(a, "--wd")) wd = strtof(v, NULL);
        else return usage();
    }
    if (!model_dir || !batch_path || !out_path || steps < 0 || (strcmp(device, "cpu") && strcmp(device, "cuda")))
        return usage();
    char err[1024];
    pb_engine *e = pb_engine_init(strcmp(device, "cuda") ? PB_DEVICE_CPU : PB_DEVICE_CUDA, threads, err, sizeof err);
    if (!e) {
        fprintf(stderr, "pb_mlm_trace: %s\n", err);
        return 2;
    }
    int rc = 2, B = 0, T = 0;
    pb_model *m = NULL;
    pb_mlm_head *h = NULL;
    int32_t *ids = NULL, *mask = NULL, *labels = NULL, *d_ids = NULL, *d_mask = NULL;
    pb_param **ps = NULL;
    pb_st_writer *w = NULL;
    pb_st_file f;
    int f_open = 0;
    if (pb_model_load(e, model_dir, 0, 0, &m, err, sizeof err) || pb_mlm_head_load(m, model_dir, &h, err, sizeof err))
        goto fail;
    const pb_model_config *cfg = pb_model_cfg(m);
    if (pb_st_open(batch_path, &f, err, sizeof err)) goto fail;
    f_open = 1;
    if (read_bt(&f, "input_ids", &B, &T, &ids, err, sizeof err) ||
        read_bt(&f, "attention_mask", &B, &T, &mask, err, sizeof err) ||
        read_bt(&f, "labels", &B, &T, &labels, err, sizeof err))
        goto fail;
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= cfg->vocab_size || (labels[i] != PB_MLM_IGNORE && (labels[i] < 0 || labels[i] >= cfg->vocab_size))) {
            snprintf(err, sizeof err, "%s: token %d: id %d / label %d outside the vocabulary", batch_path, i, ids[i],
                     labels[i]);
            goto fail;
        }
    if (mask_seed >= 0) { // masking only (ref_mlm.py compares it with transformers' collator)
        int V = cfg->vocab_size;
        const int32_t special[5] = {0, 1, 2, 3, V - 1};
        pb_mlm_mask_config mc = pb_mlm_mask_config_default(V - 1, V, special, 5);
        pb_mlm_mask(&mc, (uint64_t)mask_seed, ids, labels, (size_t)B * (size_t)T);
        float *fi = pb_xmalloc((size_t)B * T * sizeof(float)), *fl = pb_xmalloc((size_t)B * T * sizeof(float));
        for (int i = 0; i < B * T; i++) fi[i] = (float)ids[i], fl[i] = (float)labels[i];
        w = pb_st_writer_init();
        pb_st_writer_add(w, "masked_ids", fi, 2, (int64_t[]){B, T});
        pb_st_writer_add(w, "mask_labels", fl, 2, (int64_t[]){B, T});
        free(fi);
        free(fl);
        if (pb_st_writer_finish(w, out_path, err, sizeof err)) goto fail;
        rc = 0;
        goto done;
    }
    // trainable set: the backbone (not the unused classification head) and the LM head
    int nm = 0, nh = 0, np = 0;
    pb_param **mp = pb_model_params(m, &nm), **hp = pb_mlm_head_params(h, &nh);
    ps = pb_xcalloc((size_t)(nm + nh), sizeof(*ps));
    for (int i = 0; i < nm; i++)
        if (mp[i]->group == PB_GROUP_BACKBONE) {
            pb_param_set_trainable(e, mp[i], 1);
            ps[np++] = mp[i];
        }
    for (int i = 0; i < nh; i++) ps[np++] = hp[i];

    size_t N = (size_t)B * (size_t)T;
    d_ids = pb_alloc_i32(e, N);
    d_mask = pb_alloc_i32(e, N);
    pb_upload_i32(e, d_ids, ids, N);
    pb_upload_i32(e, d_mask, mask, N);
    pb_batch b;
    memset(&b, 0, sizeof b);
    b.B = B, b.T = T, b.ids = d_ids, b.mask = d_mask;
    int V = cfg->vocab_size;
    int64_t lshape[3] = {B, T, V};
    w = pb_st_writer_init();
    dump(w, e, "logits", pb_mlm_logits(h, &b), 3, lshape, N * (size_t)V);
    pb_params_zero_grad(e, ps, np);
    int nmasked = 0;
    float loss = pb_mlm_forward(h, &b, labels, 0, 0, &nmasked);
    pb_mlm_backward(h);
    float nmf = (float)nmasked;
    pb_st_writer_add(w, "loss", &loss, 1, (int64_t[]){1});
    pb_st_writer_add(w, "nmasked", &nmf, 1, (int64_t[]){1});
    char key[PB_NAME_MAX + 32];
    const char *pre = pb_model_prefix(m);
    for (int i = 0; i < np; i++) {
        snprintf(key, sizeof key, "grad.%s%s", ps[i]->group == PB_GROUP_HEAD ? "" : pre, ps[i]->name);
        dump(w, e, key, ps[i]->grad, ps[i]->ndim, ps[i]->shape, ps[i]->numel);
    }
    pb_adamw_config ac = {lr, 0.9f, 0.999f, 1e-8f, wd};
    for (int s = 0; s < steps; s++) {
        if (s > 0) {
            pb_params_zero_grad(e, ps, np);
            loss = pb_mlm_forward(h, &b, labels, 0, 0, NULL);
            pb_mlm_backward(h);
        }
        snprintf(key, sizeof key, "loss.%d", s);
        pb_st_writer_add(w, key, &loss, 1, (int64_t[]){1});
        pb_params_adamw_step(e, ps, np, &ac, s + 1);
    }
    if (steps > 0) {
        for (int i = 0; i < np; i++) {
            snprintf(key, sizeof key, "param.%s%s", ps[i]->group == PB_GROUP_HEAD ? "" : pre, ps[i]->name);
            dump(w, e, key, ps[i]->data, ps[i]->ndim, ps[i]->shape, ps[i]->numel);
        }
        dump(w, e, "logits.final", pb_mlm_logits(h, &b), 3, lshape, N * (size_t)V);
    }
    if (pb_st_writer_finish(w, out_path, err, sizeof err)) goto fail;
    if (save_dir && pb_mlm_save(h, save_dir, err, sizeof err)) goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "pb_mlm_trace: %s\n", err);
done:
    if (w) pb_st_writer_free(w);
    if (f_open) pb_st_close(&f);
    free(ids);
    free(mask);
    free(labels);
    free(ps);
    pb_free(e, d_ids);
    pb_free(e, d_mask);
    pb_mlm_head_free(h);
    pb_model_free(m);
    pb_engine_free(e);
    return rc;
}
