// cache.c: the decoded-image dataset file (format in data_internal.h), written atomically.
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"

#define PB_CACHE_MAGIC "PBDATA01"
#define PB_CACHE_HDR 48

static pb_split *split_at(pb_task *t, int i) { return i == 0 ? &t->train : i == 1 ? &t->val : &t->test; }

uint64_t pb_task_content_hash(const pb_task *t) {
    uint64_t h = PB_HASH_INIT;
    size_t per = (size_t)t->channels * t->height * t->width;
    for (int i = 0; i < 3; i++) {
        const pb_split *s = split_at((pb_task *)t, i);
        if (s->n == 0) continue;
        h = pb_hash64(h, s->labels, sizeof(int32_t) * s->n);
        h = pb_hash64(h, s->pixels, per * s->n);
    }
    return h;
}

pb_status pb_cache_write(const char *path, const pb_task *t, char *err, size_t errlen) {
    uint8_t hdr[PB_CACHE_HDR];
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, PB_CACHE_MAGIC, 8);
    uint32_t f[8] = {(uint32_t)t->channels, (uint32_t)t->height, (uint32_t)t->width,
                     (uint32_t)t->num_classes, (uint32_t)t->train.n, (uint32_t)t->val.n,
                     (uint32_t)t->test.n, 0};
    memcpy(hdr + 8, f, sizeof f);
    uint64_t h = pb_task_content_hash(t);
    memcpy(hdr + 40, &h, 8);
    const void *parts[7];
    size_t sizes[7];
    int np = 0;
    parts[np] = hdr;
    sizes[np++] = sizeof hdr;
    size_t per = (size_t)t->channels * t->height * t->width;
    for (int i = 0; i < 3; i++) {
        const pb_split *s = split_at((pb_task *)t, i);
        parts[np] = s->labels;
        sizes[np++] = sizeof(int32_t) * s->n;
        parts[np] = s->pixels;
        sizes[np++] = per * s->n;
    }
    return pb_write_atomic(path, parts, sizes, np, err, errlen);
}

pb_status pb_cache_read(const char *path, pb_task *t, char *err, size_t errlen) {
    uint8_t *buf;
    size_t n;
    pb_status st = pb_read_file(path, &buf, &n, err, errlen);
    if (st != PB_OK) return st;
    uint32_t f[8];
    uint64_t h;
    if (n < PB_CACHE_HDR || memcmp(buf, PB_CACHE_MAGIC, 8) != 0) {
        free(buf);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: not a peftbench data cache file", path);
    }
    memcpy(f, buf + 8, sizeof f);
    memcpy(&h, buf + 40, 8);
    size_t per = (size_t)f[0] * f[1] * f[2];
    size_t need = PB_CACHE_HDR;
    for (int i = 0; i < 3; i++) need += (sizeof(int32_t) + per) * (size_t)f[4 + i];
    if (f[0] < 1 || f[0] > 4 || f[1] > 16384 || f[2] > 16384 || need != n) {
        free(buf);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: truncated or inconsistent cache file (%zu bytes, expected %zu)",
                       path, n, need);
    }
    t->kind = PB_DATA_IMAGE;
    t->channels = (int)f[0];
    t->height = (int)f[1];
    t->width = (int)f[2];
    t->num_classes = (int)f[3];
    size_t off = PB_CACHE_HDR;
    for (int i = 0; i < 3; i++) {
        pb_split *s = split_at(t, i);
        memset(s, 0, sizeof *s);
        s->n = (int)f[4 + i];
        s->labels = pb_xmalloc(sizeof(int32_t) * (s->n + 1));
        s->pixels = pb_xmalloc(per * s->n + 1);
        memcpy(s->labels, buf + off, sizeof(int32_t) * s->n);
        off += sizeof(int32_t) * s->n;
        memcpy(s->pixels, buf + off, per * s->n);
        off += per * s->n;
        for (int j = 0; j < s->n; j++)
            if (s->labels[j] < 0 || s->labels[j] >= t->num_classes) {
                free(buf);
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: label out of range in cache", path);
            }
    }
    free(buf);
    if (pb_task_content_hash(t) != h)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: content hash mismatch (corrupt cache file)", path);
    snprintf(t->data_hash, sizeof t->data_hash, "%016llx", (unsigned long long)h);
    return PB_OK;
}
