// fileutil.c: see fileutil.h.
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fileutil.h"
#include <cjson/cJSON.h>

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
    // Make the rename itself durable: fsync the directory that holds the new entry.
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return PB_OK;
}

int pb_path_resolve(const char *path, char *out, size_t n) {
    char abs[4096];
    if (path[0] == '/') {
        if (snprintf(abs, sizeof abs, "%s", path) >= (int)sizeof abs) return -1;
    } else {
        char cwd[2048];
        if (!getcwd(cwd, sizeof cwd)) return -1;
        if (snprintf(abs, sizeof abs, "%s/%s", cwd, path) >= (int)sizeof abs) return -1;
    }
    // fold "." / ".." and repeated slashes lexically, then resolve the longest existing prefix
    char norm[4096] = "";
    size_t len = 0;
    for (char *tok = strtok(abs, "/"); tok; tok = strtok(NULL, "/")) {
        if (!strcmp(tok, ".")) continue;
        if (!strcmp(tok, "..")) {
            while (len > 0 && norm[len - 1] != '/') len--;
            if (len > 0) len--;
            norm[len] = 0;
            continue;
        }
        int w = snprintf(norm + len, sizeof norm - len, "/%s", tok);
        if (w < 0 || len + (size_t)w >= sizeof norm) return -1;
        len += (size_t)w;
    }
    if (!len) snprintf(norm, sizeof norm, "/");
    char head[4096];
    snprintf(head, sizeof head, "%s", norm);
    size_t cut = strlen(head);
    char real[4096];
    for (;;) {
        if (realpath(head, real)) break;
        while (cut > 0 && head[cut - 1] != '/') cut--; // drop the last component
        if (cut <= 1) {
            snprintf(real, sizeof real, "/");
            cut = 0;
            break;
        }
        head[--cut] = 0;
    }
    const char *rest = norm + (cut ? strlen(head) : 0);
    int w = snprintf(out, n, "%s%s", strcmp(real, "/") || !*rest ? real : "", rest);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int pb_path_inside(const char *p, const char *dir) {
    size_t d = strlen(dir);
    if (d == 1 && dir[0] == '/') return 1;
    return !strncmp(p, dir, d) && (p[d] == 0 || p[d] == '/');
}

static int cmp_key_ptr(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static int dup_key_at(const cJSON *o, char *path, size_t n, size_t used) {
    if (cJSON_IsObject(o)) {
        int k = cJSON_GetArraySize(o), i = 0;
        if (k > 1) {
            const cJSON **v = pb_xmalloc(sizeof(cJSON *) * (size_t)k);
            for (const cJSON *c = o->child; c; c = c->next) v[i++] = c;
            qsort(v, (size_t)k, sizeof(cJSON *), cmp_key_ptr);
            for (i = 1; i < k; i++)
                if (!strcmp(v[i]->string, v[i - 1]->string)) {
                    snprintf(path + used, n > used ? n - used : 0, "%s%s", used ? "." : "", v[i]->string);
                    free(v);
                    return 1;
                }
            free(v);
        }
        for (const cJSON *c = o->child; c; c = c->next) {
            int w = snprintf(path + used, n > used ? n - used : 0, "%s%s", used ? "." : "", c->string);
            if (dup_key_at(c, path, n, used + (w > 0 ? (size_t)w : 0) < n ? used + (size_t)w : n - 1)) return 1;
        }
    } else if (cJSON_IsArray(o)) {
        int i = 0;
        for (const cJSON *c = o->child; c; c = c->next, i++) {
            int w = snprintf(path + used, n > used ? n - used : 0, "[%d]", i);
            if (dup_key_at(c, path, n, used + (w > 0 ? (size_t)w : 0) < n ? used + (size_t)w : n - 1)) return 1;
        }
    }
    if (used < n) path[used] = 0;
    return 0;
}

int pb_json_dup_key(const cJSON *root, char *path, size_t n) {
    if (n) path[0] = 0;
    return n ? dup_key_at(root, path, n, 0) : 0;
}

int pb_tmp_orphaned(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    long pid = strtol(t + 5, NULL, 10);
    return pid > 0 && !(kill((pid_t)pid, 0) == 0 || errno == EPERM);
}
