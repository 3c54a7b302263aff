// jsonutil.c: cJSON helpers (file:line errors, canonical form, hashing, key checks, atomic I/O).
#include "jsonutil.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *pb_read_text(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = pb_xmalloc(cap);
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap *= 2;
            buf = pb_xrealloc(buf, cap);
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    if (n) *n = len;
    return buf;
}

pb_status pb_json_parse_text(const char *text, const char *name, cJSON **out, char *err,
                             size_t errlen) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) {
        // cJSON reports where parsing stopped; turn it into line:col.
        const char *at = end ? end : cJSON_GetErrorPtr();
        if (!at) at = text;
        int line = 1, col = 1;
        for (const char *p = text; *p && p < at; p++) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        char snippet[32] = {0};
        size_t k = 0;
        for (const char *p = at; *p && *p != '\n' && k < sizeof(snippet) - 1; p++) snippet[k++] = *p;
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d:%d: invalid JSON near '%s'", name, line,
                       col, snippet);
    }
    char dk[256];
    if (pb_json_dup_key(j, dk, sizeof dk)) {
        cJSON_Delete(j);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: duplicate key '%s'", name, dk);
    }
    *out = j;
    return PB_OK;
}

pb_status pb_json_read_file(const char *path, cJSON **out, char *err, size_t errlen) {
    char *text = pb_read_text(path, NULL);
    if (!text) return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot read: %s", path, strerror(errno));
    pb_status st = pb_json_parse_text(text, path, out, err, errlen);
    free(text);
    return st;
}

// ----------------------------------------------------------------------------
// Canonical form

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void sb_put(sbuf *s, const char *p, size_t n) {
    if (s->len + n + 1 > s->cap) {
        while (s->len + n + 1 > s->cap) s->cap = s->cap ? s->cap * 2 : 256;
        s->buf = pb_xrealloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = 0;
}
static void sb_puts(sbuf *s, const char *p) { sb_put(s, p, strlen(p)); }

static void sb_str(sbuf *s, const char *str) {
    sb_puts(s, "\"");
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        char tmp[8];
        switch (*p) {
        case '"': sb_puts(s, "\\\""); break;
        case '\\': sb_puts(s, "\\\\"); break;
        case '\n': sb_puts(s, "\\n"); break;
        case '\t': sb_puts(s, "\\t"); break;
        case '\r': sb_puts(s, "\\r"); break;
        default:
            if (*p < 0x20) {
                snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
                sb_puts(s, tmp);
            } else {
                sb_put(s, (const char *)p, 1);
            }
        }
    }
    sb_puts(s, "\"");
}

static int cmp_keys(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static void canon(sbuf *s, const cJSON *j) {
    char tmp[64];
    if (cJSON_IsNull(j)) {
        sb_puts(s, "null");
    } else if (cJSON_IsTrue(j)) {
        sb_puts(s, "true");
    } else if (cJSON_IsFalse(j)) {
        sb_puts(s, "false");
    } else if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0)
            snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
        else if (isfinite(v))
            snprintf(tmp, sizeof(tmp), "%.17g", v);
        else
            snprintf(tmp, sizeof(tmp), "null");
        sb_puts(s, tmp);
    } else if (cJSON_IsString(j)) {
        sb_str(s, j->valuestring);
    } else if (cJSON_IsArray(j)) {
        sb_puts(s, "[");
        int first = 1;
        for (const cJSON *c = j->child; c; c = c->next) {
            if (!first) sb_puts(s, ",");
            first = 0;
            canon(s, c);
        }
        sb_puts(s, "]");
    } else if (cJSON_IsObject(j)) {
        int n = cJSON_GetArraySize(j), k = 0;
        const cJSON **kids = pb_xmalloc(sizeof(*kids) * (size_t)(n ? n : 1));
        for (const cJSON *c = j->child; c; c = c->next) kids[k++] = c;
        qsort(kids, (size_t)n, sizeof(*kids), cmp_keys);
        sb_puts(s, "{");
        for (int i = 0; i < n; i++) {
            if (i) sb_puts(s, ",");
            sb_str(s, kids[i]->string);
            sb_puts(s, ":");
            canon(s, kids[i]);
        }
        sb_puts(s, "}");
        free(kids);
    } else {
        sb_puts(s, "null");
    }
}

char *pb_json_canonical(const cJSON *j) {
    sbuf s = {0};
    canon(&s, j);
    if (!s.buf) return pb_xstrdup("");
    return s.buf;
}

void pb_json_hash_hex(const cJSON *j, char out[17]) {
    char *c = pb_json_canonical(j);
    uint64_t h = pb_hash64(PB_HASH_INIT, c, strlen(c));
    free(c);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

// ----------------------------------------------------------------------------
// Validation and getters

pb_status pb_json_check_keys(const cJSON *obj, const char *const *allowed, const char *file,
                             const char *path, char *err, size_t errlen) {
    if (!cJSON_IsObject(obj))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s: expected an object", file, path);
    for (const cJSON *c = obj->child; c; c = c->next) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            if (!strcmp(c->string, allowed[i])) ok = 1;
        if (ok) continue;
        char list[512] = {0};
        size_t used = 0;
        for (int i = 0; allowed[i] && used < sizeof(list) - 40; i++)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", allowed[i]);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s%s%s: unknown key (allowed: %s)", file,
                       path, *path ? "." : "", c->string, list);
    }
    return PB_OK;
}

pb_status pb_json_num(const cJSON *obj, const char *key, double def, double *out,
                      const char *file, const char *path, char *err, size_t errlen) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return PB_OK;
    }
    if (!cJSON_IsNumber(j))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s%s%s: expected a number", file, path,
                       *path ? "." : "", key);
    *out = j->valuedouble;
    return PB_OK;
}

pb_status pb_json_str(const cJSON *obj, const char *key, const char *def, char *out,
                      size_t outlen, const char *file, const char *path, char *err,
                      size_t errlen) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!j || cJSON_IsNull(j)) {
        snprintf(out, outlen, "%s", def ? def : "");
        return PB_OK;
    }
    if (!cJSON_IsString(j))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s%s%s: expected a string", file, path,
                       *path ? "." : "", key);
    if (strlen(j->valuestring) >= outlen)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s%s%s: string longer than %zu", file,
                       path, *path ? "." : "", key, outlen - 1);
    snprintf(out, outlen, "%s", j->valuestring);
    return PB_OK;
}

pb_status pb_json_bool(const cJSON *obj, const char *key, int def, int *out, const char *file,
                       const char *path, char *err, size_t errlen) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return PB_OK;
    }
    if (!cJSON_IsBool(j))
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %s%s%s: expected true or false", file,
                       path, *path ? "." : "", key);
    *out = cJSON_IsTrue(j);
    return PB_OK;
}

// ----------------------------------------------------------------------------
// Files

pb_status pb_write_file_atomic(const char *path, const char *data, size_t n, char *err,
                               size_t errlen) {
    const void *parts[1] = {data};
    size_t sizes[1] = {n};
    return pb_write_atomic(path, parts, sizes, 1, err, errlen);
}

pb_status pb_json_write_atomic(const char *path, const cJSON *j, char *err, size_t errlen) {
    char *text = cJSON_Print(j);
    if (!text) return pb_errf(PB_ERR_NOMEM, err, errlen, "%s: cannot serialise JSON", path);
    size_t n = strlen(text);
    text = pb_xrealloc(text, n + 2);
    text[n] = '\n';
    text[n + 1] = 0;
    pb_status st = pb_write_file_atomic(path, text, n + 1, err, errlen);
    free(text);
    return st;
}

int pb_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0) return 0;
        unsigned cp = n == 0 ? c : n == 1 ? c & 0x1F : n == 2 ? c & 0x0F : c & 0x07;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        // no overlong forms, no UTF-16 surrogates, nothing above U+10FFFF
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n + 1;
    }
    return 1;
}

double pb_jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
const char *pb_jstr(const cJSON *o, const char *k, const char *def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : def;
}
int pb_jbool(const cJSON *o, const char *k, int def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}
void pb_jcopy(const cJSON *o, const char *k, char *dst, size_t n) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    if (cJSON_IsString(v)) snprintf(dst, n, "%s", v->valuestring);
}
