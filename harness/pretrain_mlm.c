// pretrain_mlm.c: masked-LM pretraining of a RoBERTa backbone (pretrain_mlm.h). The corpus is
// read as transformers' run_mlm.py does without --line_by_line: every non-empty line is encoded
// as <s> ... </s>, the encodings are concatenated and cut into blocks of seq_len tokens (the
// remainder dropped), so no block has padding. The last 5 % of the blocks (the end of the file)
// are held out for the validation loss, with one fixed mask so epochs are comparable.
#include "pretrain_mlm.h"
#include "jsonutil.h"
#include "loop.h"
#include "../datasets/tokenizer.h"
#include "../engine/fileutil.h"
#include "../models/mlm.h"
#include <math.h>
#include <string.h>

// The ids of RoBERTa's special tokens in <tok_dir>/vocab.json.
typedef struct {
    int32_t bos, pad, eos, unk, mask;
} special_ids;

// Reads the five special ids from vocab.json; an absent one is an error naming the file.
static pb_status read_specials(const char *tok_dir, special_ids *s, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/vocab.json", tok_dir);
    cJSON *v = NULL;
    pb_status st = pb_json_read_file(path, &v, err, errlen);
    if (st) return st;
    const char *names[5] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
    int32_t *dst[5] = {&s->bos, &s->pad, &s->eos, &s->unk, &s->mask};
    for (int i = 0; i < 5 && !st; i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, names[i]);
        if (!cJSON_IsNumber(id))
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: no special token '%s' (masked-LM pretraining needs <s> <pad> </s> <unk> <mask>)",
                         path, names[i]);
        else *dst[i] = (int32_t)id->valuedouble;
    }
    cJSON_Delete(v);
    return st;
}

// FNV-1a of the corpus and the tokenizer files (recorded with the backbone).
static pb_status data_hash(const char *text_path, const char *tok_dir, char hex[17], char *err, size_t errlen) {
    char p[3][1200];
    snprintf(p[0], sizeof p[0], "%s", text_path);
    snprintf(p[1], sizeof p[1], "%s/vocab.json", tok_dir);
    snprintf(p[2], sizeof p[2], "%s/merges.txt", tok_dir);
    uint64_t h = PB_HASH_INIT;
    for (int i = 0; i < 3; i++) {
        uint8_t *buf = NULL;
        size_t n = 0;
        pb_status st = pb_read_file(p[i], &buf, &n, err, errlen);
        if (st) return st;
        h = pb_hash64(h, buf, n);
        free(buf);
    }
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
    return PB_OK;
}

// Tokenises the corpus into *blocks (nblocks x T, malloc'd; caller frees); fewer than two blocks
// is an error naming the file.
static pb_status make_blocks(const char *text_path, pb_tokenizer *tok, const special_ids *sp, int T, int32_t **blocks,
                             int *nblocks, char *err, size_t errlen) {
    uint8_t *buf = NULL;
    size_t n = 0;
    pb_status st = pb_read_file(text_path, &buf, &n, err, errlen);
    if (st) return st;
    size_t len = 0, cap = 4096;
    int32_t *stream = pb_xmalloc(cap * sizeof(int32_t));
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && buf[b] != '\n') b++;
        size_t e = b;
        if (e > a && buf[e - 1] == '\r') e--;
        int blank = 1;
        for (size_t i = a; i < e && blank; i++) blank = buf[i] == ' ' || buf[i] == '\t';
        if (!blank) {
            int32_t *ids = NULL;
            int k = pb_tokenizer_encode(tok, (const char *)buf + a, e - a, &ids);
            while (len + (size_t)k + 2 > cap) stream = pb_xrealloc(stream, (cap *= 2) * sizeof(int32_t));
            stream[len++] = sp->bos;
            memcpy(stream + len, ids, (size_t)k * sizeof(int32_t));
            len += (size_t)k;
            stream[len++] = sp->eos;
            free(ids);
        }
        a = b + 1;
    }
    free(buf);
    *nblocks = (int)(len / (size_t)T);
    *blocks = stream; // the first nblocks * T tokens, row-major
    if (*nblocks < 2) {
        free(stream);
        *blocks = NULL;
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %zu tokens make fewer than 2 blocks of seq_len %d", text_path,
                       len, T);
    }
    return PB_OK;
}

// Mean masked-LM loss of blocks [0, n) with one fixed mask (seed), eval mode, batches of B.
static double eval_loss(pb_mlm_head *h, pb_engine *e, const int32_t *blocks, int n, int T, int B,
                        const pb_mlm_mask_config *mc, uint64_t seed, int32_t *d_ids, int32_t *d_mask) {
    double sum = 0;
    long cnt = 0;
    size_t cap = (size_t)B * (size_t)T;
    int32_t *ids = pb_xmalloc(cap * sizeof(int32_t)), *lab = pb_xmalloc(cap * sizeof(int32_t));
    for (int s = 0; s < n; s += B) {
        int b = PB_MIN(B, n - s);
        size_t N = (size_t)b * (size_t)T;
        memcpy(ids, blocks + (size_t)s * (size_t)T, N * sizeof(int32_t));
        pb_mlm_mask(mc, pb_hash_mix(seed, (uint64_t)s), ids, lab, N);
        pb_upload_i32(e, d_ids, ids, N);
        pb_batch bt = {.B = b, .T = T, .ids = d_ids, .mask = d_mask};
        int k = 0;
        float l = pb_mlm_forward(h, &bt, lab, 0, 0, &k);
        sum += (double)l * k;
        cnt += k;
    }
    free(ids);
    free(lab);
    return cnt ? sum / (double)cnt : NAN;
}

pb_status pb_pretrain_mlm(pb_engine *e, const cJSON *p, const pb_model_config *cfg, const char *label,
                          const char *out_dir, FILE *log, cJSON **info, char *err, size_t errlen) {
    *info = NULL;
    const char *text = pb_jstr(p, "dataset", ""), *tok_dir = pb_jstr(p, "tokenizer_dir", "");
    int T = (int)pb_jnum(p, "seq_len", 128);
    uint64_t seed = (uint64_t)pb_jnum(p, "seed", 0);
    pb_recipe rc;
    pb_recipe_read(p, &rc);
    if (T + cfg->pad_id >= cfg->max_positions)
        return pb_errf(PB_ERR_ARG, err, errlen, "pretrain.seq_len %d needs more than the model's %d positions", T,
                       cfg->max_positions);
    special_ids sp;
    pb_status st = read_specials(tok_dir, &sp, err, errlen);
    if (st) return st;
    pb_tokenizer *tok = NULL;
    if ((st = pb_tokenizer_load(tok_dir, &tok, err, errlen))) return st;
    int V = pb_tokenizer_vocab_size(tok);
    if (V > cfg->vocab_size || sp.pad != cfg->pad_id) {
        pb_tokenizer_free(tok);
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "%s: the tokenizer (%d ids, <pad> = %d) does not fit the model (vocab_size %d, pad_id %d)", tok_dir,
                       V, sp.pad, cfg->vocab_size, cfg->pad_id);
    }
    char dh[17];
    int32_t *blocks = NULL;
    int nb = 0;
    st = data_hash(text, tok_dir, dh, err, errlen);
    if (!st) st = make_blocks(text, tok, &sp, T, &blocks, &nb, err, errlen);
    pb_tokenizer_free(tok);
    if (st) return st;
    int nval = PB_MAX(1, nb / 20), ntrain = nb - nval;
    if (rc.train_subset > 0 && rc.train_subset < ntrain) ntrain = rc.train_subset;
    const int32_t *val = blocks + (size_t)(nb - nval) * (size_t)T;
    const int32_t special[5] = {sp.bos, sp.pad, sp.eos, sp.unk, sp.mask};
    pb_mlm_mask_config mc = pb_mlm_mask_config_default(sp.mask, V, special, 5);
    mc.prob = (float)pb_jnum(p, "mlm_probability", 0.15);

    pb_model *m = pb_model_create(e, cfg, seed);
    pb_mlm_head *h = pb_mlm_head_create(m, seed);
    int nm = 0, nh = 0, np = 0;
    pb_param **mp = pb_model_params(m, &nm), **hp = pb_mlm_head_params(h, &nh);
    pb_param **ps = pb_xcalloc((size_t)(nm + nh), sizeof(*ps));
    for (int i = 0; i < nm; i++)
        if (mp[i]->group == PB_GROUP_BACKBONE) { // not the (unused) classification head
            pb_param_set_trainable(e, mp[i], 1);
            ps[np++] = mp[i];
        }
    for (int i = 0; i < nh; i++) ps[np++] = hp[i];

    int B = PB_MIN(rc.batch, ntrain), steps_per_epoch = (ntrain + B - 1) / B;
    int total = rc.epochs * steps_per_epoch;
    int warmup = rc.warmup_steps > 0 ? rc.warmup_steps : (int)ceil(rc.warmup_ratio * total);
    size_t cap = (size_t)B * (size_t)T;
    int32_t *d_ids = pb_alloc_i32(e, cap), *d_mask = pb_alloc_i32(e, cap);
    int32_t *ids = pb_xmalloc(cap * sizeof(int32_t)), *lab = pb_xmalloc(cap * sizeof(int32_t));
    int32_t *ones = pb_xmalloc(cap * sizeof(int32_t)), *order = pb_xmalloc((size_t)ntrain * sizeof(int32_t));
    for (size_t i = 0; i < cap; i++) ones[i] = 1; // blocks are never padded
    pb_upload_i32(e, d_mask, ones, cap);
    fprintf(stderr, "[pretrain] %s: masked LM on %s: %d blocks of %d tokens (%d held out), %d epochs x %d steps -> %s\n",
            label, text, ntrain, T, nval, rc.epochs, steps_per_epoch, out_dir);
    fprintf(log, "pretraining %s (masked LM) on %s -> %s\n", label, text, out_dir);
    cJSON *ea = cJSON_CreateArray();
    double t0 = pb_now(), first_loss = NAN;
    int step = 0;
    for (int ep = 0; ep < rc.epochs && !st; ep++) {
        // a fresh permutation of the training blocks per epoch (Fisher-Yates)
        pb_rng r;
        pb_rng_seed(&r, pb_hash_mix(seed, 0x5348554600ull + (uint64_t)ep)); // "SHUF"
        for (int i = 0; i < ntrain; i++) order[i] = i;
        for (int i = ntrain - 1; i > 0; i--) {
            int j = (int)pb_rng_below(&r, (uint32_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double esum = 0;
        long ecnt = 0;
        for (int s = 0; s < ntrain && !st; s += B, step++) {
            int b = PB_MIN(B, ntrain - s);
            size_t N = (size_t)b * (size_t)T;
            for (int i = 0; i < b; i++)
                memcpy(ids + (size_t)i * (size_t)T, blocks + (size_t)order[s + i] * (size_t)T, (size_t)T * sizeof(int32_t));
            uint64_t ss = pb_hash_mix(seed, (uint64_t)step);
            pb_mlm_mask(&mc, ss, ids, lab, N);
            pb_upload_i32(e, d_ids, ids, N);
            pb_batch bt = {.B = b, .T = T, .ids = d_ids, .mask = d_mask};
            pb_params_zero_grad(e, ps, np);
            int k = 0;
            float loss = pb_mlm_forward(h, &bt, lab, 1, ss, &k);
            if (!isfinite(loss)) {
                st = pb_errf(PB_ERR_NUMERIC, err, errlen, "pretraining %s: non-finite masked-LM loss at step %d", label,
                             step);
                break;
            }
            pb_mlm_backward(h);
            pb_adamw_config ac = {pb_lr_at(rc.sched, (float)rc.lr, step, warmup, total), (float)rc.beta1,
                                  (float)rc.beta2, (float)rc.eps, (float)rc.weight_decay};
            pb_params_adamw_step(e, ps, np, &ac, step + 1);
            esum += (double)loss * k;
            ecnt += k;
            if (step == 0) first_loss = loss;
        }
        if (st) break;
        double tl = ecnt ? esum / (double)ecnt : NAN;
        double vl = eval_loss(h, e, val, nval, T, B, &mc, pb_hash_mix(seed, 0x56414Cull), d_ids, d_mask); // "VAL"
        fprintf(stderr, "[pretrain] %s: epoch %d/%d loss %.4f val loss %.4f (%.0fs)\n", label, ep + 1, rc.epochs, tl,
                vl, pb_now() - t0);
        fprintf(log, "pretrain epoch %d: masked-LM loss %.4f, val %.4f\n", ep + 1, tl, vl);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", ep + 1);
        cJSON_AddNumberToObject(o, "train_loss", tl);
        cJSON_AddNumberToObject(o, "val_loss", vl);
        cJSON_AddItemToArray(ea, o);
    }
    double ttime = pb_now() - t0;
    if (!st) st = pb_mlm_save(h, out_dir, err, errlen);
    if (!st) {
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "objective", "mlm");
        cJSON_AddStringToObject(in, "dataset", text);
        cJSON_AddStringToObject(in, "data_hash", dh);
        cJSON_AddNumberToObject(in, "train_blocks", ntrain);
        cJSON_AddNumberToObject(in, "val_blocks", nval);
        cJSON_AddNumberToObject(in, "first_step_loss", first_loss);
        cJSON_AddNumberToObject(in, "train_time_s", ttime);
        cJSON_AddItemToObject(in, "epochs", ea);
        ea = NULL;
        *info = in;
    }
    cJSON_Delete(ea);
    free(ids);
    free(lab);
    free(ones);
    free(order);
    free(blocks);
    free(ps);
    pb_free(e, d_ids);
    pb_free(e, d_mask);
    pb_mlm_head_free(h);
    pb_model_free(m);
    return st;
}
