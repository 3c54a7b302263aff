// util.c: file reading (plain and gzip via zlib), atomic writes and FNV-1a hashing for datasets.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "data_internal.h"

uint64_t pb_hash64(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t pb_hash_str(uint64_t h, const char *s) { return pb_hash64(h, s, strlen(s) + 1); }

int pb_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

pb_status pb_read_file(const char *path, uint8_t **buf, size_t *n, char *err, size_t errlen) {
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    uint8_t *b = pb_xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            b = pb_xrealloc(b, cap + 1);
        }
        size_t r = fread(b + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return pb_errf(PB_ERR_IO, err, errlen, "%s: read error", path);
    }
    b[len] = 0;
    *buf = b;
    *n = len;
    return PB_OK;
}

pb_status pb_gunzip_file(const char *path, uint8_t **buf, size_t *n, char *err, size_t errlen) {
    uint8_t *raw;
    size_t rn;
    pb_status st = pb_read_file(path, &raw, &rn, err, errlen);
    if (st != PB_OK) return st;
    if (rn < 2 || raw[0] != 0x1f || raw[1] != 0x8b) { // not gzip: use as is
        *buf = raw;
        *n = rn;
        return PB_OK;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) {
        free(raw);
        return pb_errf(PB_ERR_NOMEM, err, errlen, "%s: zlib init failed", path);
    }
    size_t cap = rn * 4 + 1024, len = 0;
    uint8_t *out = pb_xmalloc(cap + 1);
    z.next_in = raw;
    z.avail_in = (uInt)PB_MIN(rn, (size_t)UINT_MAX);
    int zr;
    for (;;) {
        if (len == cap) {
            cap *= 2;
            out = pb_xrealloc(out, cap + 1);
        }
        z.next_out = out + len;
        z.avail_out = (uInt)PB_MIN(cap - len, (size_t)UINT_MAX);
        zr = inflate(&z, Z_NO_FLUSH);
        len = (size_t)(z.next_out - out);
        if (zr == Z_STREAM_END) break;
        if (zr != Z_OK && zr != Z_BUF_ERROR) break;
        if (zr == Z_BUF_ERROR && z.avail_in == 0) break; // truncated input
    }
    inflateEnd(&z);
    free(raw);
    if (zr != Z_STREAM_END) {
        free(out);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: corrupt or truncated gzip data (%s)", path,
                       zr == Z_DATA_ERROR ? "data error" : "unexpected end");
    }
    out[len] = 0;
    *buf = out;
    *n = len;
    return PB_OK;
}

pb_status pb_mkdirs(const char *dir, char *err, size_t errlen) {
    char tmp[4096];
    if (strlen(dir) >= sizeof tmp) return pb_errf(PB_ERR_ARG, err, errlen, "path too long: %s", dir);
    strcpy(tmp, dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create directory: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create directory: %s", tmp, strerror(errno));
    return PB_OK;
}

pb_status pb_write_atomic(const char *path, const void *const *parts, const size_t *sizes,
                          int nparts, char *err, size_t errlen) {
    char dir[4096], tmp[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        pb_status st = pb_mkdirs(dir, err, errlen);
        if (st != PB_OK) return st;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
    for (int i = 0; i < nparts; i++) {
        const uint8_t *p = parts[i];
        size_t left = sizes[i];
        while (left > 0) {
            ssize_t w = write(fd, p, PB_MIN(left, (size_t)1 << 30));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                close(fd);
                unlink(tmp);
                return pb_errf(PB_ERR_IO, err, errlen, "%s: write failed: %s", tmp, strerror(errno));
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return pb_errf(PB_ERR_IO, err, errlen, "%s: fsync/close failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return pb_errf(PB_ERR_IO, err, errlen, "%s: rename failed: %s", path, strerror(errno));
    }
    return PB_OK;
}
