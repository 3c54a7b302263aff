// util.c: gzip reading (zlib) for datasets; plain file I/O and hashing live in engine/fileutil.c.
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




