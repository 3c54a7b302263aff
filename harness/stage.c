// stage.c: data staging (stage.h): a task loaded for a model's input size, and batches of its
// examples staged on the engine.
#include "stage.h"
#include "jsonutil.h"
#include <string.h>


pb_status pb_stage_task_load(const cJSON *ds, const pb_model_config *cfg, pb_task *t, char *err, size_t errlen) {
    pb_task_opts o;
    pb_task_opts_default(&o);
    if (cfg->arch == PB_ARCH_VIT) {
        o.image_size = cfg->image_size;
        o.channels = cfg->channels;
    }
    o.image_size = (int)pb_jnum(ds, "image_size", o.image_size);
    o.channels = (int)pb_jnum(ds, "channels", o.channels);
    o.seq_len = (int)pb_jnum(ds, "seq_len", o.seq_len);
    if (cfg->arch == PB_ARCH_ROBERTA && o.seq_len > cfg->max_positions - cfg->pad_id - 1)
        o.seq_len = cfg->max_positions - cfg->pad_id - 1;
    pb_jcopy(ds, "resize", o.resize, sizeof(o.resize));
    pb_jcopy(ds, "norm", o.norm, sizeof(o.norm));
    pb_jcopy(ds, "tokenizer_dir", o.tokenizer_dir, sizeof(o.tokenizer_dir));
    pb_jcopy(ds, "split_protocol", o.split_protocol, sizeof(o.split_protocol));
    pb_jcopy(ds, "data_root", o.data_root, sizeof(o.data_root));
    pb_status st = pb_task_load(pb_jstr(ds, "spec", ""), &o, t, err, errlen);
    if (st) return st;
    if (t->kind == PB_DATA_IMAGE && cfg->arch != PB_ARCH_VIT)
        return pb_errf(PB_ERR_ARG, err, errlen, "dataset %s: an image task needs a ViT model", t->name);
    if (t->kind == PB_DATA_TEXT && cfg->arch != PB_ARCH_ROBERTA)
        return pb_errf(PB_ERR_ARG, err, errlen, "dataset %s: a text task needs a RoBERTa model", t->name);
    if (t->kind == PB_DATA_IMAGE &&
        (t->height != cfg->image_size || t->width != cfg->image_size || t->channels != cfg->channels))
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "dataset %s: images are %dx%dx%d but the model takes %dx%dx%d (set image_size/channels)",
                       t->name, t->channels, t->height, t->width, cfg->channels, cfg->image_size, cfg->image_size);
    if (t->train.n < 1 || t->val.n < 1 || t->test.n < 1)
        return pb_errf(PB_ERR_ARG, err, errlen, "dataset %s: empty split (train %d, val %d, test %d)", t->name,
                       t->train.n, t->val.n, t->test.n);
    return PB_OK;
}


void pb_stager_init(pb_stager *s, pb_engine *e, const pb_task *t, int cap) {
    memset(s, 0, sizeof(*s));
    s->e = e;
    s->t = t;
    s->cap = cap;
    if (t->kind == PB_DATA_IMAGE) {
        s->px_per = (size_t)t->channels * t->height * t->width;
        s->h_px = pb_xmalloc(sizeof(float) * s->px_per * (size_t)cap);
        s->d_px = pb_alloc(e, s->px_per * (size_t)cap);
        s->h_flip = pb_xcalloc((size_t)cap, 1);
    } else {
        s->T = t->seq_len;
        s->h_ids = pb_xmalloc(sizeof(int32_t) * (size_t)s->T * (size_t)cap);
        s->h_mask = pb_xmalloc(sizeof(int32_t) * (size_t)s->T * (size_t)cap);
        s->d_ids = pb_alloc_i32(e, (size_t)s->T * (size_t)cap);
        s->d_mask = pb_alloc_i32(e, (size_t)s->T * (size_t)cap);
    }
    s->h_lab = pb_xmalloc(sizeof(int32_t) * (size_t)cap);
    s->h_tg = pb_xmalloc(sizeof(float) * (size_t)cap);
    s->d_lab = pb_alloc_i32(e, (size_t)cap);
    s->d_tg = pb_alloc(e, (size_t)cap);
}

void pb_stager_free(pb_stager *s) {
    free(s->h_px);
    free(s->h_tg);
    free(s->h_ids);
    free(s->h_mask);
    free(s->h_lab);
    free(s->h_flip);
    pb_free(s->e, s->d_px);
    pb_free(s->e, s->d_tg);
    pb_free(s->e, s->d_ids);
    pb_free(s->e, s->d_mask);
    pb_free(s->e, s->d_lab);
    memset(s, 0, sizeof(*s));
}

void pb_stage_batch(pb_stager *s, const pb_split *sp, const int *idx, int B, const uint8_t *flip, int inputs,
                  pb_batch *b) {
    PB_CHECK(B <= s->cap, "batch %d > stager capacity %d", B, s->cap);
    memset(b, 0, sizeof(*b));
    b->B = B;
    if (inputs) {
        if (s->t->kind == PB_DATA_IMAGE) {
            pb_split_batch_images(s->t, sp, idx, B, flip, s->h_px);
            pb_upload(s->e, s->d_px, s->h_px, s->px_per * (size_t)B);
            b->pixels = s->d_px;
        } else {
            size_t T = (size_t)s->T;
            for (int i = 0; i < B; i++) {
                memcpy(s->h_ids + (size_t)i * T, sp->ids + (size_t)idx[i] * T, T * sizeof(int32_t));
                memcpy(s->h_mask + (size_t)i * T, sp->mask + (size_t)idx[i] * T, T * sizeof(int32_t));
            }
            pb_upload_i32(s->e, s->d_ids, s->h_ids, T * (size_t)B);
            pb_upload_i32(s->e, s->d_mask, s->h_mask, T * (size_t)B);
            b->ids = s->d_ids;
            b->mask = s->d_mask;
            b->T = s->T;
        }
    }
    if (sp->labels) {
        for (int i = 0; i < B; i++) s->h_lab[i] = sp->labels[idx[i]];
        pb_upload_i32(s->e, s->d_lab, s->h_lab, (size_t)B);
        b->labels = s->d_lab;
    }
    if (sp->targets) {
        for (int i = 0; i < B; i++) s->h_tg[i] = sp->targets[idx[i]];
        pb_upload(s->e, s->d_tg, s->h_tg, (size_t)B);
        b->targets = s->d_tg;
    }
}

