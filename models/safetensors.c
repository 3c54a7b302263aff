// safetensors.c: validating mmap reader and atomic writer for the safetensors format
// (formats.md §6; huggingface/safetensors Metadata::validate).
// defines: pb_st_open, pb_st_close, pb_st_find, pb_st_read_f32, pb_st_read_i32, pb_st_writer_*
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

// Loads go through memcpy (tensor data in a file is not necessarily aligned) and assume the host
// is little-endian like the format.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "peftbench's safetensors code assumes a little-endian host"
#endif

#define ST_MAX_HEADER 100000000ull // reference reader limit on N
#define ST_MAX_DIMS 8              // pb_st_tensor.shape capacity
#define ST_MAX_JSON_INT 9007199254740992.0 // 2^53: every integer below is exact in a double

// ----------------------------------------------------------------------------
// dtype table (every dtype of the spec; bits per element)

typedef struct {
    const char *name;
    int bits;
    pb_st_dtype dtype;
} st_dtype_info;

static const st_dtype_info st_dtypes[] = {
    {"BOOL", 8, PB_ST_BOOL},        {"U8", 8, PB_ST_U8},           {"I8", 8, PB_ST_I8},
    {"I16", 16, PB_ST_I16},         {"U16", 16, PB_ST_OTHER},      {"F16", 16, PB_ST_F16},
    {"BF16", 16, PB_ST_BF16},       {"I32", 32, PB_ST_I32},        {"U32", 32, PB_ST_OTHER},
    {"F32", 32, PB_ST_F32},         {"F64", 64, PB_ST_F64},        {"I64", 64, PB_ST_I64},
    {"U64", 64, PB_ST_OTHER},       {"C64", 64, PB_ST_OTHER},      {"F8_E4M3", 8, PB_ST_OTHER},
    {"F8_E5M2", 8, PB_ST_OTHER},    {"F8_E8M0", 8, PB_ST_OTHER},   {"F8_E4M3FNUZ", 8, PB_ST_OTHER},
    {"F8_E5M2FNUZ", 8, PB_ST_OTHER}, {"F6_E2M3", 6, PB_ST_OTHER},  {"F6_E3M2", 6, PB_ST_OTHER},
    {"F4", 4, PB_ST_OTHER},
};
#define ST_NDTYPES ((int)(sizeof(st_dtypes) / sizeof(st_dtypes[0])))

static const st_dtype_info *st_dtype_lookup(const char *s) {
    for (int i = 0; i < ST_NDTYPES; i++)
        if (strcmp(st_dtypes[i].name, s) == 0) return &st_dtypes[i];
    return NULL;
}

// ----------------------------------------------------------------------------
// small helpers

static uint64_t st_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

// Returns the byte offset of the first invalid UTF-8 sequence (or NUL byte), or n if valid.
static size_t st_utf8_check(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) return i;
        if (c < 0x80) { i++; continue; }
        int len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return i;
        if (n - i < (size_t)len) return i;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        // overlong forms, surrogates, beyond U+10FFFF
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return i;
        i += (size_t)len;
    }
    return n;
}

// A JSON number that is a non-negative integer exactly representable (< 2^53).
static bool st_json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d >= ST_MAX_JSON_INT || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

// Appends "[d0, d1, ...]" of a shape to buf (for messages).
static void st_shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

// ----------------------------------------------------------------------------
// reader

void pb_st_close(pb_st_file *f) {
    if (!f) return;
    if (f->map && f->map != MAP_FAILED) munmap(f->map, f->map_size);
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    memset(f, 0, sizeof(*f));
}

typedef struct {
    uint64_t begin, end;
    int idx;
} st_span;

static int st_span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

static int st_str_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Parses and validates one tensor entry; fills t (name already set) and its offsets.
static pb_status st_parse_tensor(const char *path, const cJSON *e, pb_st_tensor *t, size_t data_len,
                                 uint64_t *begin_out, uint64_t *end_out, char *err, size_t errlen) {
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': entry is not a JSON object", path, nm);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!jd) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor '%s': missing field 'dtype'", path, nm);
    if (!js) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor '%s': missing field 'shape'", path, nm);
    if (!jo)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor '%s': missing field 'data_offsets'",
                       path, nm);
    if (!cJSON_IsString(jd))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor '%s': 'dtype' is not a string", path, nm);
    const st_dtype_info *di = st_dtype_lookup(jd->valuestring);
    if (!di)
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': unknown dtype '%.32s' (known: BOOL, U8, I8, I16, U16, F16, "
                       "BF16, I32, U32, F32, F64, I64, U64, C64, F8_E4M3, F8_E5M2, F8_E8M0, "
                       "F8_E4M3FNUZ, F8_E5M2FNUZ, F6_E2M3, F6_E3M2, F4)",
                       path, nm, jd->valuestring);
    t->dtype = di->dtype;
    snprintf(t->dtype_str, sizeof(t->dtype_str), "%s", di->name);

    if (!cJSON_IsArray(js))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tensor '%s': 'shape' is not an array", path, nm);
    int ndim = cJSON_GetArraySize(js);
    if (ndim > ST_MAX_DIMS)
        return pb_errf(PB_ERR_UNSUPPORTED, err, errlen,
                       "%s: tensor '%s': shape has %d dimensions (peftbench supports at most %d)",
                       path, nm, ndim, ST_MAX_DIMS);
    t->ndim = ndim;
    size_t numel = 1;
    bool overflow = false;
    int k = 0;
    for (const cJSON *d = js->child; d; d = d->next, k++) {
        uint64_t v;
        if (!st_json_uint(d, &v))
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: tensor '%s': shape[%d] is not a non-negative integer", path, nm, k);
        t->shape[k] = (int64_t)v;
        // checked in order like the reference (an overflow before a zero dimension is an error)
        if (!overflow && v != 0 && numel > SIZE_MAX / v) overflow = true;
        if (!overflow) numel *= (size_t)v;
    }
    if (overflow)
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': number of elements of the shape overflows", path, nm);
    t->numel = numel;
    if (numel > SIZE_MAX / (size_t)di->bits)
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': byte size of the shape overflows", path, nm);
    size_t nbits = numel * (size_t)di->bits;
    if (nbits % 8 != 0)
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': %zu elements of %d-bit dtype %s do not fill whole bytes",
                       path, nm, numel, di->bits, di->name);
    t->nbytes = nbits / 8;

    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': 'data_offsets' is not an array [begin, end]", path, nm);
    uint64_t b, en;
    if (!st_json_uint(jo->child, &b) || !st_json_uint(jo->child->next, &en))
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': 'data_offsets' entries are not non-negative integers", path,
                       nm);
    if (en < b)
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before begin",
                       path, nm, b, en);
    if (en > data_len)
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] end beyond data buffer (%zu bytes)",
                       path, nm, b, en, data_len);
    if (en - b != t->nbytes) {
        char sh[160];
        st_shape_str(sh, sizeof sh, t->ndim, t->shape);
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] span %" PRIu64 " bytes but dtype %s with shape %s needs %zu bytes",
                       path, nm, b, en, en - b, di->name, sh, t->nbytes);
    }
    *begin_out = b;
    *end_out = en;
    return PB_OK;
}

static pb_status st_parse_meta(const char *path, const cJSON *m, pb_st_file *f, char *err,
                               size_t errlen) {
    if (cJSON_IsNull(m)) return PB_OK; // Option<HashMap> in the reference: null = absent
    if (!cJSON_IsObject(m))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: '__metadata__' is not a JSON object", path);
    int n = cJSON_GetArraySize(m);
    f->meta_keys = pb_xcalloc((size_t)n, sizeof(char *));
    f->meta_values = pb_xcalloc((size_t)n, sizeof(char *));
    for (const cJSON *c = m->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: '__metadata__' entry '%s': value is not a string", path, c->string);
        for (int i = 0; i < f->nmeta; i++)
            if (strcmp(f->meta_keys[i], c->string) == 0)
                return pb_errf(PB_ERR_FORMAT, err, errlen,
                               "%s: '__metadata__': duplicate key '%s'", path, c->string);
        f->meta_keys[f->nmeta] = pb_xstrdup(c->string);
        f->meta_values[f->nmeta] = pb_xstrdup(c->valuestring);
        f->nmeta++;
    }
    return PB_OK;
}

// Validates the parsed header against the data buffer and fills f.
static pb_status st_build(const char *path, const cJSON *root, const uint8_t *data, size_t data_len,
                          pb_st_file *f, char *err, size_t errlen) {
    pb_status st = PB_OK;
    int nkeys = cJSON_GetArraySize(root);
    // duplicate keys: cJSON keeps them as separate children
    const char **keys = pb_xcalloc((size_t)nkeys, sizeof(char *));
    int ki = 0;
    for (const cJSON *c = root->child; c; c = c->next) keys[ki++] = c->string;
    qsort(keys, (size_t)nkeys, sizeof(char *), st_str_cmp);
    for (int i = 1; i < nkeys; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: duplicate key '%s' in the header", path,
                         keys[i]);
            break;
        }
    free(keys);
    if (st != PB_OK) return st;

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    int nt = nkeys - (meta ? 1 : 0);
    f->tensors = pb_xcalloc((size_t)nt, sizeof(pb_st_tensor));
    st_span *spans = pb_xcalloc((size_t)nt, sizeof(st_span));
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta) continue;
        pb_st_tensor *t = &f->tensors[f->ntensors];
        t->name = pb_xstrdup(c->string);
        f->ntensors++;
        st_span *sp = &spans[f->ntensors - 1];
        sp->idx = f->ntensors - 1;
        st = st_parse_tensor(path, c, t, data_len, &sp->begin, &sp->end, err, errlen);
        if (st != PB_OK) goto done;
    }
    if (meta && (st = st_parse_meta(path, meta, f, err, errlen)) != PB_OK) goto done;

    // the tensors, sorted by offsets, must tile the data buffer exactly
    qsort(spans, (size_t)nt, sizeof(st_span), st_span_cmp);
    uint64_t expect = 0;
    const char *prev = NULL;
    for (int i = 0; i < nt; i++) {
        const pb_st_tensor *t = &f->tensors[spans[i].idx];
        if (spans[i].begin > expect) {
            if (prev)
                st = pb_errf(PB_ERR_FORMAT, err, errlen,
                             "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] leave a gap: "
                             "the previous tensor '%s' ends at %" PRIu64,
                             path, t->name, spans[i].begin, spans[i].end, prev, expect);
            else
                st = pb_errf(PB_ERR_FORMAT, err, errlen,
                             "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] leave a gap: "
                             "the first tensor must begin at 0",
                             path, t->name, spans[i].begin, spans[i].end);
            goto done;
        }
        if (spans[i].begin < expect) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen,
                         "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                         "] overlap tensor '%s' (which ends at %" PRIu64 ")",
                         path, t->name, spans[i].begin, spans[i].end, prev, expect);
            goto done;
        }
        expect = spans[i].end;
        prev = t->name;
    }
    if (expect != data_len) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen,
                     "%s: the tensors cover %" PRIu64 " bytes but the data buffer has %zu bytes "
                     "(8 + header length + last end must equal the file size)",
                     path, expect, data_len);
        goto done;
    }
    // keep tensors in file (offset) order; point them into the mapping
    pb_st_tensor *sorted = pb_xcalloc((size_t)nt, sizeof(pb_st_tensor));
    for (int i = 0; i < nt; i++) {
        sorted[i] = f->tensors[spans[i].idx];
        sorted[i].data = data + spans[i].begin;
    }
    free(f->tensors);
    f->tensors = sorted;
done:
    free(spans);
    return st;
}

pb_status pb_st_open(const char *path, pb_st_file *f, char *err, size_t errlen) {
    memset(f, 0, sizeof(*f));
    pb_status st = PB_OK;
    cJSON *root = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = pb_errf(PB_ERR_IO, err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return pb_errf(PB_ERR_IO, err, errlen, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return pb_errf(PB_ERR_FORMAT, err, errlen,
                       "%s: file is %zu bytes, too short for the 8-byte header length", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int mmap_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return pb_errf(PB_ERR_IO, err, errlen, "%s: mmap failed: %s", path, strerror(mmap_errno));
    f->map = map;
    f->map_size = size;
    f->path = pb_xstrdup(path);
    const uint8_t *bytes = map;

    uint64_t n = st_le64(bytes);
    if (n > ST_MAX_HEADER) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen,
                     "%s: header length %" PRIu64 " exceeds the limit of %llu bytes "
                     "(not a safetensors file?)",
                     path, n, ST_MAX_HEADER);
        goto fail;
    }
    if (n > size - 8) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen,
                     "%s: header length %" PRIu64 " is beyond the file size (%zu bytes): "
                     "file truncated?",
                     path, n, size);
        goto fail;
    }
    const uint8_t *hdr = bytes + 8;
    if (n == 0 || hdr[0] != '{') {
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: header does not start with '{'", path);
        goto fail;
    }
    size_t bad = st_utf8_check(hdr, (size_t)n);
    if (bad != n) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen,
                     "%s: header is not valid UTF-8 text (byte %zu of the header)", path, bad);
        goto fail;
    }
    // "\u0000" would silently cut a name short in C strings: refuse it. Backslashes only occur
    // inside JSON strings, so escapes can be scanned without a full tokenizer.
    for (size_t i = 0; i + 1 < n; i++) {
        if (hdr[i] != '\\') continue;
        if (hdr[i + 1] == 'u' && i + 5 < n && memcmp(hdr + i + 2, "0000", 4) == 0) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen,
                         "%s: header contains a \\u0000 escape (byte %zu of the header), which "
                         "peftbench does not accept in names",
                         path, i);
            goto fail;
        }
        i++; // skip the escaped character: an escaped backslash before "u0000" is no escape
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts((const char *)hdr, (size_t)n, &end, 0);
    if (!root) {
        size_t pos = end ? (size_t)(end - (const char *)hdr) : 0;
        st = pb_errf(PB_ERR_FORMAT, err, errlen,
                     "%s: header is not valid JSON (error near byte %zu of the header)", path, pos);
        goto fail;
    }
    for (const char *p = end; p < (const char *)hdr + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            st = pb_errf(PB_ERR_FORMAT, err, errlen,
                         "%s: header has non-space bytes after the JSON object (byte %zu of the "
                         "header)",
                         path, (size_t)(p - (const char *)hdr));
            goto fail;
        }
    if (!cJSON_IsObject(root)) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: header is not a JSON object", path);
        goto fail;
    }
    st = st_build(path, root, hdr + n, size - 8 - (size_t)n, f, err, errlen);
    if (st != PB_OK) goto fail;
    cJSON_Delete(root);
    return PB_OK;
fail:
    cJSON_Delete(root);
    pb_st_close(f);
    return st;
}

const pb_st_tensor *pb_st_find(const pb_st_file *f, const char *name) {
    for (int i = 0; i < f->ntensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

// IEEE binary16 -> binary32, exact (subnormals, +-0, inf, NaN payloads kept).
static float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0) {
        float v = (float)mant * 0x1p-24f; // subnormal half: mant * 2^-24, exact in float32
        memcpy(&bits, &v, 4);
        bits |= sign;
    } else if (exp == 31) {
        // inf, or NaN keeping its payload; a signaling NaN comes out quiet, as IEEE conversion
        // (and F16C / torch) does
        bits = sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static const char *st_path(const pb_st_file *f) { return f && f->path ? f->path : "(safetensors)"; }

pb_status pb_st_read_f32(const pb_st_file *f, const pb_st_tensor *t, float *dst, char *err,
                         size_t errlen) {
    const uint8_t *p = t->data;
    size_t n = t->numel;
    switch (t->dtype) {
    case PB_ST_F32: if (n) memcpy(dst, p, n * 4); return PB_OK;
    case PB_ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = st_f16_to_f32(h);
        }
        return PB_OK;
    case PB_ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return PB_OK;
    case PB_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return PB_OK;
    case PB_ST_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
        }
        return PB_OK;
    case PB_ST_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = (float)v;
        }
        return PB_OK;
    case PB_ST_I16:
        for (size_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, p + 2 * i, 2);
            dst[i] = (float)v;
        }
        return PB_OK;
    case PB_ST_I8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i];
        return PB_OK;
    case PB_ST_U8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)p[i];
        return PB_OK;
    case PB_ST_BOOL:
        for (size_t i = 0; i < n; i++) dst[i] = p[i] ? 1.0f : 0.0f;
        return PB_OK;
    case PB_ST_OTHER:
        if (strcmp(t->dtype_str, "U16") == 0) {
            for (size_t i = 0; i < n; i++) {
                uint16_t v;
                memcpy(&v, p + 2 * i, 2);
                dst[i] = (float)v;
            }
            return PB_OK;
        }
        if (strcmp(t->dtype_str, "U32") == 0) {
            for (size_t i = 0; i < n; i++) {
                uint32_t v;
                memcpy(&v, p + 4 * i, 4);
                dst[i] = (float)v;
            }
            return PB_OK;
        }
        if (strcmp(t->dtype_str, "U64") == 0) {
            for (size_t i = 0; i < n; i++) {
                uint64_t v;
                memcpy(&v, p + 8 * i, 8);
                dst[i] = (float)v;
            }
            return PB_OK;
        }
        break;
    }
    return pb_errf(PB_ERR_UNSUPPORTED, err, errlen,
                   "%s: tensor '%s': dtype %s cannot be converted to float32 (supported: F32, F16, "
                   "BF16, F64, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)",
                   st_path(f), t->name, t->dtype_str);
}

pb_status pb_st_read_i32(const pb_st_file *f, const pb_st_tensor *t, int32_t *dst, char *err,
                         size_t errlen) {
    const uint8_t *p = t->data;
    size_t n = t->numel;
    int w; // element width; 0 = unsupported
    bool is_signed = true;
    switch (t->dtype) {
    case PB_ST_I64: w = 8; break;
    case PB_ST_I32: w = 4; break;
    case PB_ST_I16: w = 2; break;
    case PB_ST_I8: w = 1; break;
    case PB_ST_U8: w = 1; is_signed = false; break;
    case PB_ST_BOOL: w = 1; is_signed = false; break;
    case PB_ST_OTHER:
        is_signed = false;
        w = strcmp(t->dtype_str, "U16") == 0 ? 2
            : strcmp(t->dtype_str, "U32") == 0 ? 4
            : strcmp(t->dtype_str, "U64") == 0 ? 8
                                               : 0;
        break;
    default: w = 0; break;
    }
    if (!w)
        return pb_errf(PB_ERR_UNSUPPORTED, err, errlen,
                       "%s: tensor '%s': dtype %s is not an integer dtype (supported: I64, I32, I16, "
                       "I8, U64, U32, U16, U8, BOOL)",
                       st_path(f), t->name, t->dtype_str);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *q = p + (size_t)w * i;
        int64_t sv = 0;
        uint64_t uv = 0;
        bool ok;
        if (is_signed) {
            if (w == 8) { int64_t v; memcpy(&v, q, 8); sv = v; }
            else if (w == 4) { int32_t v; memcpy(&v, q, 4); sv = v; }
            else if (w == 2) { int16_t v; memcpy(&v, q, 2); sv = v; }
            else sv = (int8_t)q[0];
            ok = sv >= INT32_MIN && sv <= INT32_MAX;
        } else {
            if (w == 8) { uint64_t v; memcpy(&v, q, 8); uv = v; }
            else if (w == 4) { uint32_t v; memcpy(&v, q, 4); uv = v; }
            else if (w == 2) { uint16_t v; memcpy(&v, q, 2); uv = v; }
            else uv = q[0];
            if (t->dtype == PB_ST_BOOL) uv = uv != 0;
            ok = uv <= INT32_MAX;
            sv = (int64_t)(ok ? uv : 0);
        }
        if (!ok)
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: tensor '%s': element %zu does not fit in int32", st_path(f),
                           t->name, i);
        dst[i] = (int32_t)sv;
    }
    return PB_OK;
}

// ----------------------------------------------------------------------------
// writer

typedef struct {
    char *name;
    pb_st_dtype dtype; // PB_ST_F32 or PB_ST_I32
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    void *data; // numel * 4 bytes, owned
} st_wtensor;

struct pb_st_writer {
    st_wtensor *t;
    int n, cap;
    char **mk, **mv;
    int nmeta, metacap;
};

pb_st_writer *pb_st_writer_init(void) {
    pb_st_writer *w = pb_xcalloc(1, sizeof(*w));
    pb_st_writer_meta(w, "format", "pt");
    return w;
}

void pb_st_writer_free(pb_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    for (int i = 0; i < w->nmeta; i++) {
        free(w->mk[i]);
        free(w->mv[i]);
    }
    free(w->mk);
    free(w->mv);
    free(w);
}

static void st_writer_add4(pb_st_writer *w, const char *name, const void *data, int ndim,
                           const int64_t *shape, pb_st_dtype dt) {
    PB_CHECK(ndim >= 0 && ndim <= ST_MAX_DIMS, "tensor '%s': ndim %d", name, ndim);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->t = pb_xrealloc(w->t, (size_t)w->cap * sizeof(st_wtensor));
    }
    st_wtensor *t = &w->t[w->n++];
    memset(t, 0, sizeof(*t));
    t->name = pb_xstrdup(name);
    t->dtype = dt;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        PB_CHECK(shape[i] >= 0, "tensor '%s': negative dimension %" PRId64, name, shape[i]);
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->data = pb_xmalloc(t->numel * 4);
    if (t->numel) memcpy(t->data, data, t->numel * 4);
}

void pb_st_writer_add(pb_st_writer *w, const char *name, const float *data, int ndim,
                      const int64_t *shape) {
    st_writer_add4(w, name, data, ndim, shape, PB_ST_F32);
}

void pb_st_writer_add_i32(pb_st_writer *w, const char *name, const int32_t *data, int ndim,
                          const int64_t *shape) {
    st_writer_add4(w, name, data, ndim, shape, PB_ST_I32);
}

void pb_st_writer_meta(pb_st_writer *w, const char *key, const char *value) {
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->mk[i], key) == 0) {
            free(w->mv[i]);
            w->mv[i] = pb_xstrdup(value);
            return;
        }
    if (w->nmeta == w->metacap) {
        w->metacap = w->metacap ? 2 * w->metacap : 4;
        w->mk = pb_xrealloc(w->mk, (size_t)w->metacap * sizeof(char *));
        w->mv = pb_xrealloc(w->mv, (size_t)w->metacap * sizeof(char *));
    }
    w->mk[w->nmeta] = pb_xstrdup(key);
    w->mv[w->nmeta] = pb_xstrdup(value);
    w->nmeta++;
}

// growable byte buffer for the header
typedef struct {
    char *p;
    size_t n, cap;
} st_buf;

static void st_put(st_buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 4096;
        b->p = pb_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void st_puts(st_buf *b, const char *s) { st_put(b, s, strlen(s)); }

static void st_put_json_str(st_buf *b, const char *s) {
    st_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"') st_put(b, "\\\"", 2);
        else if (*p == '\\') st_put(b, "\\\\", 2);
        else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            st_puts(b, esc);
        } else st_put(b, (const char *)p, 1);
    }
    st_put(b, "\"", 1);
}

static int st_wt_cmp(const void *a, const void *b) {
    return strcmp(((const st_wtensor *)a)->name, ((const st_wtensor *)b)->name);
}

static pb_status st_write_all(FILE *fp, const void *p, size_t n, const char *tmp, char *err,
                              size_t errlen) {
    if (n && fwrite(p, 1, n, fp) != n)
        return pb_errf(PB_ERR_IO, err, errlen, "%s: write failed: %s", tmp, strerror(errno));
    return PB_OK;
}

pb_status pb_st_writer_finish(pb_st_writer *w, const char *path, char *err, size_t errlen) {
    // names and metadata must be valid UTF-8 and unique (the reader rejects duplicates)
    for (int i = 0; i < w->n; i++) {
        size_t len = strlen(w->t[i].name);
        if (len == 0 || st_utf8_check((const uint8_t *)w->t[i].name, len) != len ||
            strcmp(w->t[i].name, "__metadata__") == 0)
            return pb_errf(PB_ERR_ARG, err, errlen, "%s: invalid tensor name '%s'", path,
                           w->t[i].name);
    }
    for (int i = 0; i < w->nmeta; i++) {
        size_t lk = strlen(w->mk[i]), lv = strlen(w->mv[i]);
        if (st_utf8_check((const uint8_t *)w->mk[i], lk) != lk ||
            st_utf8_check((const uint8_t *)w->mv[i], lv) != lv)
            return pb_errf(PB_ERR_ARG, err, errlen, "%s: metadata '%s' is not valid UTF-8", path,
                           w->mk[i]);
    }
    // F32 and I32 share the 4-byte alignment, so the reference order (alignment, then name) is
    // the name order
    if (w->n > 1) qsort(w->t, (size_t)w->n, sizeof(st_wtensor), st_wt_cmp);
    for (int i = 1; i < w->n; i++)
        if (strcmp(w->t[i - 1].name, w->t[i].name) == 0)
            return pb_errf(PB_ERR_ARG, err, errlen, "%s: tensor '%s' added twice", path,
                           w->t[i].name);

    st_buf h = {0};
    st_puts(&h, "{");
    bool first = true;
    if (w->nmeta) {
        st_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->nmeta; i++) {
            if (i) st_puts(&h, ",");
            st_put_json_str(&h, w->mk[i]);
            st_puts(&h, ":");
            st_put_json_str(&h, w->mv[i]);
        }
        st_puts(&h, "}");
        first = false;
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const st_wtensor *t = &w->t[i];
        char num[64];
        if (!first) st_puts(&h, ",");
        first = false;
        st_put_json_str(&h, t->name);
        st_puts(&h, t->dtype == PB_ST_F32 ? ":{\"dtype\":\"F32\",\"shape\":["
                                          : ":{\"dtype\":\"I32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", t->shape[d]);
            st_puts(&h, num);
        }
        uint64_t nb = (uint64_t)t->numel * 4;
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + nb);
        st_puts(&h, num);
        off += nb;
    }
    st_puts(&h, "}");
    while (h.n % 8) st_puts(&h, " "); // data buffer starts 8-byte aligned

    size_t plen = strlen(path) + 32;
    char *tmp = pb_xmalloc(plen);
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    pb_status st = PB_OK;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = pb_errf(PB_ERR_IO, err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        free(h.p);
        return st;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    st = st_write_all(fp, len8, 8, tmp, err, errlen);
    if (st == PB_OK) st = st_write_all(fp, h.p, h.n, tmp, err, errlen);
    for (int i = 0; i < w->n && st == PB_OK; i++)
        st = st_write_all(fp, w->t[i].data, w->t[i].numel * 4, tmp, err, errlen);
    if (st == PB_OK && fflush(fp) != 0)
        st = pb_errf(PB_ERR_IO, err, errlen, "%s: write failed: %s", tmp, strerror(errno));
    if (st == PB_OK && fsync(fileno(fp)) != 0)
        st = pb_errf(PB_ERR_IO, err, errlen, "%s: fsync failed: %s", tmp, strerror(errno));
    if (fclose(fp) != 0 && st == PB_OK)
        st = pb_errf(PB_ERR_IO, err, errlen, "%s: close failed: %s", tmp, strerror(errno));
    if (st == PB_OK && rename(tmp, path) != 0)
        st = pb_errf(PB_ERR_IO, err, errlen, "%s: cannot rename to %s: %s", tmp, path,
                     strerror(errno));
    if (st != PB_OK) unlink(tmp);
    free(tmp);
    free(h.p);
    return st;
}
