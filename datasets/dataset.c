// dataset.c: pb_task_load for the image formats (VTAB-1k folders, FGVC json splits, CIFAR binary,
// gzip'd IDX, class-per-subfolder trees, VTAB-mini), the preprocessing cache, and batching.
// GLUE lives in glue.c. Layouts and conventions: docs/datasets.md.
// Paths and messages live in fixed buffers (>= 1 KiB); GCC cannot prove they fit.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "data_internal.h"
#include "../engine/fileutil.h"
#include "glue.h"

// Bump when the preprocessing code changes so old cache entries are not reused.
#define PB_PREPROC_VERSION "pb-preproc-1"

void pb_task_opts_default(pb_task_opts *o) {
    memset(o, 0, sizeof *o);
    o->image_size = 0;
    o->channels = 0;
    strcpy(o->resize, "bilinear");
    strcpy(o->norm, "hf");
    o->seq_len = 128;
    strcpy(o->split_protocol, "val");
    strcpy(o->data_root, "data");
}

static void split_free(pb_split *s) {
    free(s->pixels);
    free(s->ids);
    free(s->mask);
    free(s->labels);
    free(s->targets);
    memset(s, 0, sizeof *s);
}

void pb_task_free(pb_task *t) {
    split_free(&t->train);
    split_free(&t->val);
    split_free(&t->test);
}

void pb_split_batch_images(const pb_task *t, const pb_split *s, const int *idx, int B,
                           const uint8_t *flip, float *dst) {
    const int C = t->channels, H = t->height, W = t->width;
    const size_t per = (size_t)C * H * W;
    float scale[3], shift[3]; // x/255 - mean) / std == x * scale + shift
    for (int c = 0; c < C; c++) {
        scale[c] = 1.0f / (255.0f * t->std[c]);
        shift[c] = -t->mean[c] / t->std[c];
    }
    for (int b = 0; b < B; b++) {
        PB_CHECK(idx[b] >= 0 && idx[b] < s->n, "batch index %d of %d", idx[b], s->n);
        const uint8_t *src = s->pixels + (size_t)idx[b] * per; // (C, H, W)
        float *o = dst + (size_t)b * per;                       // (C, H, W)
        int fl = flip && flip[b];
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++) {
                const uint8_t *row = src + ((size_t)c * H + y) * W;
                float *orow = o + ((size_t)c * H + y) * W;
                for (int x = 0; x < W; x++) orow[x] = row[fl ? W - 1 - x : x] * scale[c] + shift[c];
            }
    }
}

static pb_status set_norm(pb_task *t, const char *norm, char *err, size_t errlen) {
    const char *nm = norm && norm[0] ? norm : "hf";
    float m[3], s[3];
    if (strcmp(nm, "hf") == 0) {
        for (int i = 0; i < 3; i++) m[i] = s[i] = 0.5f;
    } else if (strcmp(nm, "imagenet") == 0) {
        m[0] = 0.485f, m[1] = 0.456f, m[2] = 0.406f;
        s[0] = 0.229f, s[1] = 0.224f, s[2] = 0.225f;
        if (t->channels == 1) { // gray images: the channel means of the RGB profile
            m[0] = (0.485f + 0.456f + 0.406f) / 3.0f;
            s[0] = (0.229f + 0.224f + 0.225f) / 3.0f;
        }
    } else {
        return pb_errf(PB_ERR_ARG, err, errlen, "unknown normalisation profile '%s' (hf|imagenet)", nm);
    }
    snprintf(t->norm, sizeof t->norm, "%s", nm);
    memcpy(t->mean, m, sizeof m);
    memcpy(t->std, s, sizeof s);
    return PB_OK;
}

// ---------------------------------------------------------------------------------------------
// Sources: what a split is made of before preprocessing.

typedef struct {
    int n;
    char **paths;      // image files (owned), or NULL when px is used
    int *lines;        // source line per entry (list files), or NULL
    char origin[600];  // list/json file for error messages
    int32_t *labels;   // (n) owned
    uint8_t *px;       // native in-memory images (n, nc, nh, nw) CHW, owned; or NULL
    int nc, nh, nw;
} src_split;

typedef struct {
    src_split s[3]; // train, val, test
    int num_classes;
    uint64_t key;   // hash of the source files (path, size, mtime) and loader params
} src_set;

static void src_free(src_set *ss) {
    for (int i = 0; i < 3; i++) {
        src_split *s = &ss->s[i];
        if (s->paths)
            for (int j = 0; j < s->n; j++) free(s->paths[j]);
        free(s->paths);
        free(s->lines);
        free(s->labels);
        free(s->px);
    }
    memset(ss, 0, sizeof *ss);
}

static uint64_t hash_stat(uint64_t h, const char *path) {
    struct stat st;
    h = pb_hash_str(h, path);
    if (stat(path, &st) == 0) {
        int64_t v[2] = {(int64_t)st.st_size, (int64_t)st.st_mtime};
        h = pb_hash64(h, v, sizeof v);
    }
    return h;
}

static pb_split *task_split(pb_task *t, int i) { return i == 0 ? &t->train : i == 1 ? &t->val : &t->test; }

// Decodes/converts/resizes every source example into t (image splits).
static pb_status materialize(src_set *ss, const pb_task_opts *o, int default_c, pb_task *t, char *err,
                             size_t errlen) {
    int C = o->channels ? o->channels : default_c;
    int S = o->image_size;
    if (C != 1 && C != 3) return pb_errf(PB_ERR_ARG, err, errlen, "channels must be 1 or 3 (got %d)", C);
    t->kind = PB_DATA_IMAGE;
    t->channels = C;
    t->num_classes = ss->num_classes;
    t->height = t->width = S; // 0 = keep: set from the first image
    for (int si = 0; si < 3; si++) {
        src_split *s = &ss->s[si];
        pb_split *d = task_split(t, si);
        d->n = s->n;
        d->labels = pb_xmalloc(sizeof(int32_t) * (s->n + 1));
        if (s->n) memcpy(d->labels, s->labels, sizeof(int32_t) * s->n);
        for (int j = 0; j < s->n; j++) {
            char where[800];
            pb_img im = {0}, rs = {0};
            pb_status st;
            if (s->paths) {
                if (s->lines) snprintf(where, sizeof where, "%s:%d", s->origin, s->lines[j]);
                else snprintf(where, sizeof where, "%s", s->origin);
                char e2[900];
                st = pb_image_decode_file(s->paths[j], &im, e2, sizeof e2);
                if (st != PB_OK) return pb_errf(st, err, errlen, "%s: %s", where, e2);
            } else {
                im.w = s->nw, im.h = s->nh, im.c = s->nc;
                im.px = pb_xmalloc((size_t)s->nw * s->nh * s->nc);
                size_t np = (size_t)s->nw * s->nh;
                const uint8_t *src = s->px + (size_t)j * np * s->nc;
                for (int c = 0; c < s->nc; c++)
                    for (size_t k = 0; k < np; k++) im.px[k * s->nc + c] = src[c * np + k];
            }
            pb_image_convert(&im, C);
            if (t->width == 0) {
                t->width = im.w;
                t->height = im.h;
            }
            if (im.w != t->width || im.h != t->height) {
                if (S == 0) {
                    pb_img_free(&im);
                    return pb_errf(PB_ERR_FORMAT, err, errlen,
                                   "%s: image %d of split %d is %dx%d but earlier ones are %dx%d; set image_size",
                                   s->paths ? s->paths[j] : s->origin, j, si, im.w, im.h, t->width, t->height);
                }
                st = pb_image_resize(&im, t->width, t->height, o->resize, &rs, err, errlen);
                pb_img_free(&im);
                if (st != PB_OK) return st;
                im = rs;
            }
            if (!d->pixels) d->pixels = pb_xmalloc((size_t)s->n * C * t->width * t->height + 1);
            pb_image_to_chw(&im, d->pixels + (size_t)j * C * t->width * t->height);
            pb_img_free(&im);
        }
        if (!d->pixels) d->pixels = pb_xmalloc(1);
    }
    return PB_OK;
}

static const char *base_name(const char *p) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    const char *b = p + n;
    while (b > p && b[-1] != '/') b--;
    return b;
}

// Loads from the preprocessing cache or materializes and writes it.
static pb_status load_cached(const char *kind, const char *dir, src_set *ss, const pb_task_opts *o,
                             int default_c, pb_task *t, char *err, size_t errlen) {
    uint64_t key = ss->key;
    key = pb_hash_str(key, PB_PREPROC_VERSION);
    int v[2] = {o->image_size, o->channels ? o->channels : default_c};
    key = pb_hash64(key, v, sizeof v);
    key = pb_hash_str(key, o->resize[0] ? o->resize : "bilinear");
    char bn[64], path[1200];
    snprintf(bn, sizeof bn, "%s", base_name(dir));
    for (char *p = bn; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            *p = '_';
    snprintf(path, sizeof path, "%s/cache/%s-%s-%016llx.pbd", o->data_root[0] ? o->data_root : "data", kind, bn,
             (unsigned long long)key);
    char e2[512];
    if (pb_file_exists(path)) {
        pb_status st = pb_cache_read(path, t, e2, sizeof e2);
        if (st == PB_OK) return PB_OK;
        fprintf(stderr, "peftbench data: ignoring bad cache entry (%s); rebuilding\n", e2);
        pb_task_free(t);
    }
    pb_status st = materialize(ss, o, default_c, t, err, errlen);
    if (st != PB_OK) return st;
    uint64_t h = pb_task_content_hash(t);
    snprintf(t->data_hash, sizeof t->data_hash, "%016llx", (unsigned long long)h);
    st = pb_cache_write(path, t, e2, sizeof e2);
    if (st != PB_OK) fprintf(stderr, "peftbench data: warning: cache not written: %s\n", e2);
    return PB_OK;
}

// ---------------------------------------------------------------------------------------------
// VTAB-1k (NOAH layout)

static const struct {
    const char *name, *alias;
    int classes, test;
} vtab_tasks[] = {
    {"cifar100", "cifar", 100, 10000},        {"caltech101", NULL, 102, 6084},
    {"dtd", NULL, 47, 1880},                  {"oxford_flowers102", NULL, 102, 6149},
    {"oxford_pet", "oxford_iiit_pet", 37, 3669}, {"svhn", NULL, 10, 26032},
    {"sun397", NULL, 397, 21750},             {"patch_camelyon", NULL, 2, 32768},
    {"eurosat", NULL, 10, 5400},              {"resisc45", NULL, 45, 6300},
    {"diabetic_retinopathy", NULL, 5, 42670}, {"clevr_count", NULL, 8, 15000},
    {"clevr_dist", NULL, 6, 15000},           {"dmlab", NULL, 6, 22735},
    {"kitti", NULL, 4, 711},                  {"dsprites_loc", NULL, 16, 73728},
    {"dsprites_ori", NULL, 16, 73728},        {"smallnorb_azi", NULL, 18, 12150},
    {"smallnorb_ele", NULL, 9, 12150},
};

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// Resolves a dataset directory: as given, else under data_root.
static pb_status resolve_dir(const char *dir, const pb_task_opts *o, char *out, size_t len, char *err,
                             size_t errlen) {
    if (is_dir(dir)) {
        snprintf(out, len, "%s", dir);
        return PB_OK;
    }
    if (dir[0] != '/') {
        snprintf(out, len, "%s/%s", o->data_root, dir);
        if (is_dir(out)) return PB_OK;
    }
    return pb_errf(PB_ERR_IO, err, errlen, "%s: dataset directory not found (also tried under %s/)", dir,
                   o->data_root);
}

static pb_status read_list(const char *dir, const char *file, src_split *s, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    uint8_t *buf;
    size_t n;
    pb_status st = pb_read_file(path, &buf, &n, err, errlen);
    if (st != PB_OK) return st;
    pb_listfile lf;
    st = pb_listfile_parse((const char *)buf, n, path, &lf, err, errlen);
    free(buf);
    if (st != PB_OK) return st;
    snprintf(s->origin, sizeof s->origin, "%s", path);
    s->n = lf.n;
    s->paths = pb_xmalloc(sizeof(char *) * (lf.n + 1));
    s->labels = pb_xmalloc(sizeof(int32_t) * (lf.n + 1));
    s->lines = lf.lines;
    for (int i = 0; i < lf.n; i++) {
        size_t L = strlen(dir) + strlen(lf.paths[i]) + 2;
        s->paths[i] = pb_xmalloc(L);
        snprintf(s->paths[i], L, "%s/%s", dir, lf.paths[i]);
        s->labels[i] = lf.labels[i];
        free(lf.paths[i]);
    }
    free(lf.paths);
    free(lf.labels);
    return PB_OK;
}

static uint64_t hash_sources(uint64_t h, src_set *ss) {
    for (int i = 0; i < 3; i++) {
        src_split *s = &ss->s[i];
        h = pb_hash_str(h, s->origin);
        h = pb_hash64(h, &s->n, sizeof s->n);
        if (s->n) h = pb_hash64(h, s->labels, sizeof(int32_t) * s->n);
        if (s->paths)
            for (int j = 0; j < s->n; j++) h = hash_stat(h, s->paths[j]);
    }
    return h;
}

static pb_status check_labels(src_set *ss, char *err, size_t errlen) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < ss->s[i].n; j++)
            if (ss->s[i].labels[j] < 0 || ss->s[i].labels[j] >= ss->num_classes) {
                if (ss->s[i].lines)
                    return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: label %d outside [0, %d)", ss->s[i].origin,
                                   ss->s[i].lines[j], ss->s[i].labels[j], ss->num_classes);
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: label %d outside [0, %d)", ss->s[i].origin,
                               ss->s[i].labels[j], ss->num_classes);
            }
    return PB_OK;
}

static pb_status load_vtab1k(const char *dir0, const pb_task_opts *o, pb_task *t, char *err, size_t errlen) {
    char dir[1024];
    pb_status st = resolve_dir(dir0, o, dir, sizeof dir, err, errlen);
    if (st != PB_OK) {
        // Folder-name drift (NOAH generator vs training script): try the known alias.
        const char *b = base_name(dir0);
        for (size_t i = 0; i < sizeof vtab_tasks / sizeof vtab_tasks[0]; i++) {
            const char *alt = NULL;
            if (vtab_tasks[i].alias && strncmp(b, vtab_tasks[i].name, strlen(vtab_tasks[i].name)) == 0 &&
                strlen(b) == strlen(vtab_tasks[i].name))
                alt = vtab_tasks[i].alias;
            else if (vtab_tasks[i].alias && strcmp(b, vtab_tasks[i].alias) == 0)
                alt = vtab_tasks[i].name;
            if (!alt) continue;
            char d2[1024];
            snprintf(d2, sizeof d2, "%.*s%s", (int)(b - dir0), dir0, alt);
            if (resolve_dir(d2, o, dir, sizeof dir, err, errlen) == PB_OK) {
                st = PB_OK;
                break;
            }
        }
        if (st != PB_OK) return st;
    }
    int trainval = strcmp(o->split_protocol, "trainval") == 0;
    if (!trainval && o->split_protocol[0] && strcmp(o->split_protocol, "val") != 0)
        return pb_errf(PB_ERR_ARG, err, errlen, "split_protocol must be 'val' or 'trainval' (got '%s')", o->split_protocol);
    src_set ss;
    memset(&ss, 0, sizeof ss);
    if ((st = read_list(dir, trainval ? "train800val200.txt" : "train800.txt", &ss.s[0], err, errlen)) != PB_OK ||
        (st = read_list(dir, "val200.txt", &ss.s[1], err, errlen)) != PB_OK ||
        (st = read_list(dir, "test.txt", &ss.s[2], err, errlen)) != PB_OK) {
        src_free(&ss);
        return st;
    }
    const char *b = base_name(dir);
    int known = -1;
    for (size_t i = 0; i < sizeof vtab_tasks / sizeof vtab_tasks[0]; i++)
        if (strcmp(b, vtab_tasks[i].name) == 0 || (vtab_tasks[i].alias && strcmp(b, vtab_tasks[i].alias) == 0))
            known = (int)i;
    int maxl = -1;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < ss.s[i].n; j++) maxl = PB_MAX(maxl, ss.s[i].labels[j]);
    ss.num_classes = known >= 0 ? vtab_tasks[known].classes : maxl + 1;
    if ((st = check_labels(&ss, err, errlen)) != PB_OK) {
        src_free(&ss);
        return st;
    }
    // Count validation (dataset version drift): warn, do not fail (subsets are legitimate in tests).
    int want_train = trainval ? 1000 : 800;
    if (ss.s[0].n != want_train || ss.s[1].n != 200 || (known >= 0 && ss.s[2].n != vtab_tasks[known].test))
        fprintf(stderr, "peftbench data: note: %s has %d/%d/%d train/val/test examples (VTAB-1k: %d/200/%s)\n", dir,
                ss.s[0].n, ss.s[1].n, ss.s[2].n, want_train, known >= 0 ? "see docs" : "?");
    ss.key = hash_sources(pb_hash_str(PB_HASH_INIT, "vtab1k"), &ss);
    st = load_cached("vtab1k", dir, &ss, o, 3, t, err, errlen);
    src_free(&ss);
    if (st == PB_OK) snprintf(t->name, sizeof t->name, "vtab1k/%s", b);
    return st;
}

// ---------------------------------------------------------------------------------------------
// FGVC: train.json / val.json / test.json mapping relative image path -> class id.

static pb_status read_fgvc_json(const char *dir, const char *file, src_split *s, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    uint8_t *buf;
    size_t n;
    pb_status st = pb_read_file(path, &buf, &n, err, errlen);
    if (st != PB_OK) return st;
    cJSON *j = cJSON_ParseWithLength((const char *)buf, n);
    char dk[256];
    if (j && pb_json_dup_key(j, dk, sizeof dk)) {
        cJSON_Delete(j);
        free(buf);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: duplicate key '%s'", path, dk);
    }
    if (!j || !cJSON_IsObject(j)) {
        // cJSON gives a pointer into the buffer; turn it into a line number
        const char *ep = cJSON_GetErrorPtr();
        int line = 1;
        if (ep && ep >= (const char *)buf && ep <= (const char *)buf + n)
            for (const char *p = (const char *)buf; p < ep; p++) line += *p == '\n';
        cJSON_Delete(j);
        free(buf);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: invalid JSON (expected an object path -> class id)", path,
                       line);
    }
    free(buf);
    snprintf(s->origin, sizeof s->origin, "%s", path);
    int cnt = cJSON_GetArraySize(j), i = 0;
    s->paths = pb_xcalloc(cnt + 1, sizeof(char *));
    s->labels = pb_xmalloc(sizeof(int32_t) * (cnt + 1));
    // Image roots differ per dataset (CUB/NABirds images/, Dogs Images/, others the root).
    const char *roots[] = {"images/", "Images/", ""};
    for (cJSON *e = j->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble < 1e9) ||
            e->valuedouble != (double)(int)e->valuedouble) {
            s->n = i;
            cJSON_Delete(j);
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: entry %d (\"%.200s\"): class id must be a non-negative integer",
                           path, i + 1, e->string ? e->string : "?");
        }
        char full[2400] = {0};
        for (int r = 0; r < 3; r++) {
            snprintf(full, sizeof full, "%s/%s%s", dir, roots[r], e->string);
            if (pb_file_exists(full)) break;
        }
        s->paths[i] = pb_xstrdup(full);
        s->labels[i] = e->valueint;
    }
    s->n = i;
    cJSON_Delete(j);
    return PB_OK;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static pb_status load_fgvc(const char *dir0, const pb_task_opts *o, pb_task *t, char *err, size_t errlen) {
    char dir[1024];
    pb_status st = resolve_dir(dir0, o, dir, sizeof dir, err, errlen);
    if (st != PB_OK) return st;
    src_set ss;
    memset(&ss, 0, sizeof ss);
    if ((st = read_fgvc_json(dir, "train.json", &ss.s[0], err, errlen)) != PB_OK ||
        (st = read_fgvc_json(dir, "val.json", &ss.s[1], err, errlen)) != PB_OK ||
        (st = read_fgvc_json(dir, "test.json", &ss.s[2], err, errlen)) != PB_OK) {
        src_free(&ss);
        return st;
    }
    // Remap class ids to 0..K-1 by sorted unique train id.
    int n = ss.s[0].n, *u = pb_xmalloc(sizeof(int) * (n + 1)), k = 0;
    memcpy(u, ss.s[0].labels, sizeof(int) * n);
    qsort(u, n, sizeof(int), cmp_int);
    for (int i = 0; i < n; i++)
        if (k == 0 || u[k - 1] != u[i]) u[k++] = u[i];
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < ss.s[s].n; i++) {
            int *f = bsearch(&ss.s[s].labels[i], u, k, sizeof(int), cmp_int);
            if (!f) {
                st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: \"%s\": class id %d does not occur in train.json",
                             ss.s[s].origin, ss.s[s].paths[i], ss.s[s].labels[i]);
                free(u);
                src_free(&ss);
                return st;
            }
            ss.s[s].labels[i] = (int32_t)(f - u);
        }
    free(u);
    ss.num_classes = k;
    ss.key = hash_sources(pb_hash_str(PB_HASH_INIT, "fgvc"), &ss);
    st = load_cached("fgvc", dir, &ss, o, 3, t, err, errlen);
    src_free(&ss);
    if (st == PB_OK) snprintf(t->name, sizeof t->name, "fgvc/%s", base_name(dir));
    return st;
}

// ---------------------------------------------------------------------------------------------
// Class-per-subfolder tree: <dir>/<class>/<image>, or <dir>/{train,val,test}/<class>/<image>.

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int list_dir(const char *dir, int want_dirs, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (want_dirs ? !is_dir(p) : !pb_file_exists(p)) continue;
        if (!want_dirs) {
            const char *ext = strrchr(e->d_name, '.');
            if (!ext || (strcasecmp(ext, ".jpg") && strcasecmp(ext, ".jpeg") && strcasecmp(ext, ".png"))) continue;
        }
        if (n == cap) v = pb_xrealloc(v, sizeof(char *) * (cap = cap ? cap * 2 : 64));
        v[n++] = pb_xstrdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(v, n, sizeof(char *), cmp_str);
    *out = v;
    return n;
}

static void free_strs(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void push_example(src_split *s, const char *path, int label) {
    if ((s->n & (s->n - 1)) == 0) { // grow at powers of two
        int cap = s->n ? s->n * 2 : 1;
        s->paths = pb_xrealloc(s->paths, sizeof(char *) * cap);
        s->labels = pb_xrealloc(s->labels, sizeof(int32_t) * cap);
    }
    s->paths[s->n] = pb_xstrdup(path);
    s->labels[s->n] = label;
    s->n++;
}

static pb_status load_folder(const char *dir0, const pb_task_opts *o, pb_task *t, char *err, size_t errlen) {
    char dir[1024];
    pb_status st = resolve_dir(dir0, o, dir, sizeof dir, err, errlen);
    if (st != PB_OK) return st;
    src_set ss;
    memset(&ss, 0, sizeof ss);
    char tr[1100];
    snprintf(tr, sizeof tr, "%s/train", dir);
    int presplit = is_dir(tr);
    char **classes;
    int nc = list_dir(presplit ? tr : dir, 1, &classes);
    if (nc <= 0) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: no class subfolders found", presplit ? tr : dir);
    static const char *names[3] = {"train", "val", "test"};
    for (int c = 0; c < nc; c++) {
        for (int s = 0; s < (presplit ? 3 : 1); s++) {
            char cd[2200];
            if (presplit) snprintf(cd, sizeof cd, "%s/%s/%s", dir, names[s], classes[c]);
            else snprintf(cd, sizeof cd, "%s/%s", dir, classes[c]);
            char **files;
            int nf = list_dir(cd, 0, &files);
            if (nf < 0) continue; // e.g. a class without val images
            for (int i = 0; i < nf; i++) {
                char p[4400];
                snprintf(p, sizeof p, "%s/%s", cd, files[i]);
                // Without split folders: per class, file i%10 == 8 -> val, == 9 -> test.
                int dst = presplit ? s : (i % 10 == 8 ? 1 : i % 10 == 9 ? 2 : 0);
                push_example(&ss.s[dst], p, c);
            }
            free_strs(files, nf);
        }
    }
    free_strs(classes, nc);
    for (int s = 0; s < 3; s++) snprintf(ss.s[s].origin, sizeof ss.s[s].origin, "%s (%s)", dir, names[s]);
    ss.num_classes = nc;
    if (ss.s[0].n == 0) {
        src_free(&ss);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: no .jpg/.jpeg/.png images in the class folders", dir);
    }
    ss.key = hash_sources(pb_hash_str(PB_HASH_INIT, "folder"), &ss);
    st = load_cached("folder", dir, &ss, o, 3, t, err, errlen);
    src_free(&ss);
    if (st == PB_OK) snprintf(t->name, sizeof t->name, "folder/%s", base_name(dir));
    return st;
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10/100 binary and IDX: train file(s) -> train (first 90%) + val (last 10%); test file.

// Moves the last n/10 train examples into val.
static void carve_val(src_set *ss) {
    src_split *tr = &ss->s[0], *va = &ss->s[1];
    int nv = tr->n / 10, nt = tr->n - nv;
    size_t per = (size_t)tr->nc * tr->nh * tr->nw;
    va->nc = tr->nc, va->nh = tr->nh, va->nw = tr->nw;
    va->n = nv;
    va->labels = pb_xmalloc(sizeof(int32_t) * (nv + 1));
    va->px = pb_xmalloc(per * nv + 1);
    memcpy(va->labels, tr->labels + nt, sizeof(int32_t) * nv);
    memcpy(va->px, tr->px + per * nt, per * nv);
    tr->n = nt;
    snprintf(va->origin, sizeof va->origin, "%s (last 10%%)", tr->origin);
}

static pb_status cifar_append(const char *path, int fine, src_split *s, int ncls, char *err, size_t errlen) {
    uint8_t *buf;
    size_t n;
    pb_status st = pb_read_file(path, &buf, &n, err, errlen);
    if (st != PB_OK) return st;
    size_t rec = (size_t)(fine ? 2 : 1) + 3072;
    if (n == 0 || n % rec != 0) {
        free(buf);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: size %zu is not a multiple of the %zu-byte CIFAR record",
                       path, n, rec);
    }
    int cnt = (int)(n / rec);
    s->nc = 3, s->nh = 32, s->nw = 32;
    s->labels = pb_xrealloc(s->labels, sizeof(int32_t) * (s->n + cnt + 1));
    s->px = pb_xrealloc(s->px, 3072 * (size_t)(s->n + cnt) + 1);
    for (int i = 0; i < cnt; i++) {
        const uint8_t *r = buf + rec * i;
        int lab = fine ? r[1] : r[0];
        if (lab >= ncls) {
            free(buf);
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: record %d: label %d outside [0, %d)", path, i, lab, ncls);
        }
        s->labels[s->n + i] = lab;
        memcpy(s->px + 3072 * (size_t)(s->n + i), r + rec - 3072, 3072); // CHW already
    }
    s->n += cnt;
    free(buf);
    snprintf(s->origin, sizeof s->origin, "%s", path);
    return PB_OK;
}

static pb_status load_cifar(const char *dir0, int fine, const pb_task_opts *o, pb_task *t, char *err, size_t errlen) {
    char dir[1024], p[1200];
    pb_status st = resolve_dir(dir0, o, dir, sizeof dir, err, errlen);
    if (st != PB_OK) return st;
    src_set ss;
    memset(&ss, 0, sizeof ss);
    uint64_t key = pb_hash_str(PB_HASH_INIT, fine ? "cifar100" : "cifar10");
    int ncls = fine ? 100 : 10;
    if (fine) {
        snprintf(p, sizeof p, "%s/train.bin", dir);
        key = hash_stat(key, p);
        st = cifar_append(p, 1, &ss.s[0], ncls, err, errlen);
        snprintf(p, sizeof p, "%s/test.bin", dir);
    } else {
        for (int b = 1; b <= 5 && st == PB_OK; b++) {
            snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, b);
            key = hash_stat(key, p);
            st = cifar_append(p, 0, &ss.s[0], ncls, err, errlen);
        }
        snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    }
    key = hash_stat(key, p);
    if (st == PB_OK) st = cifar_append(p, fine, &ss.s[2], ncls, err, errlen);
    if (st != PB_OK) {
        src_free(&ss);
        return st;
    }
    carve_val(&ss);
    ss.num_classes = ncls;
    ss.key = key;
    st = load_cached(fine ? "cifar100" : "cifar10", dir, &ss, o, 3, t, err, errlen);
    src_free(&ss);
    if (st == PB_OK) snprintf(t->name, sizeof t->name, "%s/%s", fine ? "cifar100" : "cifar10", base_name(dir));
    return st;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

// Reads an IDX image/label pair (gzip or raw) into s.
static pb_status pb_idx_read(const char *img_path, const char *lab_path, src_split *s, char *err, size_t errlen) {
    uint8_t *im, *lb;
    size_t ni, nl;
    pb_status st = pb_gunzip_file(img_path, &im, &ni, err, errlen);
    if (st != PB_OK) return st;
    st = pb_gunzip_file(lab_path, &lb, &nl, err, errlen);
    if (st != PB_OK) {
        free(im);
        return st;
    }
    if (ni < 16 || be32(im) != 0x00000803) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: not an IDX3 ubyte image file (magic)", img_path);
    } else if (nl < 8 || be32(lb) != 0x00000801) {
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: not an IDX1 ubyte label file (magic)", lab_path);
    } else {
        uint32_t n = be32(im + 4), r = be32(im + 8), c = be32(im + 12);
        if (r == 0 || c == 0 || r > 4096 || c > 4096 || n > 100000000u || ni - 16 != (size_t)n * r * c)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: header says %u images of %ux%u but payload is %zu bytes",
                         img_path, n, r, c, ni - 16);
        else if (be32(lb + 4) != n || nl - 8 != n)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %u labels / %zu bytes, expected %u", lab_path, be32(lb + 4),
                         nl - 8, n);
        else {
            s->n = (int)n, s->nc = 1, s->nh = (int)r, s->nw = (int)c;
            s->px = pb_xmalloc((size_t)n * r * c + 1);
            memcpy(s->px, im + 16, (size_t)n * r * c);
            s->labels = pb_xmalloc(sizeof(int32_t) * (n + 1));
            for (uint32_t i = 0; i < n; i++) s->labels[i] = lb[8 + i];
            snprintf(s->origin, sizeof s->origin, "%s", img_path);
        }
    }
    free(im);
    free(lb);
    return st;
}

static pb_status find_idx(const char *dir, const char *stem, char *out, size_t len) {
    snprintf(out, len, "%s/%s.gz", dir, stem);
    if (pb_file_exists(out)) return PB_OK;
    snprintf(out, len, "%s/%s", dir, stem);
    return pb_file_exists(out) ? PB_OK : PB_ERR_IO;
}

static pb_status load_idx(const char *dir0, const pb_task_opts *o, pb_task *t, char *err, size_t errlen) {
    char dir[1024], pi[1200], pl[1200];
    pb_status st = resolve_dir(dir0, o, dir, sizeof dir, err, errlen);
    if (st != PB_OK) return st;
    src_set ss;
    memset(&ss, 0, sizeof ss);
    uint64_t key = pb_hash_str(PB_HASH_INIT, "idx");
    const char *pre[2] = {"train", "t10k"};
    for (int k = 0; k < 2; k++) {
        char si[64], sl[64];
        snprintf(si, sizeof si, "%s-images-idx3-ubyte", pre[k]);
        snprintf(sl, sizeof sl, "%s-labels-idx1-ubyte", pre[k]);
        if (find_idx(dir, si, pi, sizeof pi) != PB_OK || find_idx(dir, sl, pl, sizeof pl) != PB_OK) {
            src_free(&ss);
            return pb_errf(PB_ERR_IO, err, errlen, "%s: missing %s(.gz) or %s(.gz)", dir, si, sl);
        }
        key = hash_stat(hash_stat(key, pi), pl);
        st = pb_idx_read(pi, pl, &ss.s[k == 0 ? 0 : 2], err, errlen);
        if (st != PB_OK) {
            src_free(&ss);
            return st;
        }
    }
    carve_val(&ss);
    int maxl = 0;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < ss.s[s].n; i++) maxl = PB_MAX(maxl, ss.s[s].labels[i]);
    ss.num_classes = maxl + 1;
    ss.key = key;
    st = load_cached("idx", dir, &ss, o, 1, t, err, errlen);
    src_free(&ss);
    if (st == PB_OK) snprintf(t->name, sizeof t->name, "idx/%s", base_name(dir));
    return st;
}

// ---------------------------------------------------------------------------------------------
// VTAB-mini: built natively at 28x28x1; preprocessing for other model inputs is cached too.

static pb_status load_vtab_mini(const char *task, const pb_task_opts *o, pb_task *t, char *err, size_t errlen) {
    int ok = 0;
    for (int i = 0; pb_vtab_mini_tasks[i]; i++) ok |= strcmp(task, pb_vtab_mini_tasks[i]) == 0;
    if (!ok) {
        char list[512] = "";
        for (int i = 0; pb_vtab_mini_tasks[i]; i++) {
            strncat(list, " ", sizeof list - strlen(list) - 1);
            strncat(list, pb_vtab_mini_tasks[i], sizeof list - strlen(list) - 1);
        }
        return pb_errf(PB_ERR_ARG, err, errlen, "unknown vtab-mini task '%s' (tasks:%s)", task, list);
    }
    char path[1200];
    pb_vtab_mini_path(o->data_root, task, path, sizeof path);
    pb_status st;
    if (!pb_file_exists(path)) {
        st = pb_vtab_mini_build(o->data_root, stderr, err, errlen);
        if (st != PB_OK) return st;
        if (!pb_file_exists(path))
            return pb_errf(PB_ERR_IO, err, errlen, "%s: vtab-mini task '%s' was not built (see messages above)", path, task);
    }
    pb_task nat;
    memset(&nat, 0, sizeof nat);
    st = pb_cache_read(path, &nat, err, errlen);
    if (st != PB_OK) {
        pb_task_free(&nat);
        return st;
    }
    int C = o->channels ? o->channels : nat.channels;
    if ((o->image_size == 0 || o->image_size == nat.width) && C == nat.channels) {
        *t = nat;
    } else {
        src_set ss;
        memset(&ss, 0, sizeof ss);
        for (int i = 0; i < 3; i++) {
            pb_split *s = task_split(&nat, i);
            ss.s[i].n = s->n, ss.s[i].labels = s->labels, ss.s[i].px = s->pixels;
            ss.s[i].nc = nat.channels, ss.s[i].nh = nat.height, ss.s[i].nw = nat.width;
            snprintf(ss.s[i].origin, sizeof ss.s[i].origin, "%s", path);
            s->labels = NULL, s->pixels = NULL;
        }
        ss.num_classes = nat.num_classes;
        ss.key = pb_hash_str(pb_hash_str(PB_HASH_INIT, "vtab-mini"), nat.data_hash);
        pb_task_free(&nat);
        st = load_cached("vtab-mini", task, &ss, o, 1, t, err, errlen);
        src_free(&ss);
        if (st != PB_OK) return st;
    }
    snprintf(t->name, sizeof t->name, "vtab-mini/%s", task);
    return PB_OK;
}

// ---------------------------------------------------------------------------------------------

pb_status pb_task_load(const char *spec, const pb_task_opts *opts, pb_task *out, char *err, size_t errlen) {
    pb_task_opts o;
    if (opts) o = *opts;
    else pb_task_opts_default(&o);
    if (!o.data_root[0]) strcpy(o.data_root, "data");
    if (!o.resize[0]) strcpy(o.resize, "bilinear");
    if (strcmp(o.resize, "bilinear") != 0 && strcmp(o.resize, "bicubic") != 0)
        return pb_errf(PB_ERR_ARG, err, errlen, "unknown resize mode '%s' (bilinear|bicubic)", o.resize);
    if (o.image_size < 0 || o.image_size > 4096)
        return pb_errf(PB_ERR_ARG, err, errlen, "image_size %d out of range", o.image_size);
    if (o.channels != 0 && o.channels != 1 && o.channels != 3)
        return pb_errf(PB_ERR_ARG, err, errlen, "channels must be 0, 1 or 3 (got %d)", o.channels);
    memset(out, 0, sizeof *out);
    pb_status st;
    const char *colon = strchr(spec, ':');
    if (strncmp(spec, "vtab-mini/", 10) == 0) st = load_vtab_mini(spec + 10, &o, out, err, errlen);
    else if (strncmp(spec, "glue/", 5) == 0) st = pb_glue_load(spec + 5, &o, out, err, errlen);
    else if (!colon) st = pb_errf(PB_ERR_ARG, err, errlen, "bad task spec '%s' (see dataset.h for the forms)", spec);
    else {
        size_t k = (size_t)(colon - spec);
        const char *dir = colon + 1;
#define IS(x) (k == strlen(x) && strncmp(spec, x, k) == 0)
        if (IS("vtab1k")) st = load_vtab1k(dir, &o, out, err, errlen);
        else if (IS("fgvc")) st = load_fgvc(dir, &o, out, err, errlen);
        else if (IS("cifar10")) st = load_cifar(dir, 0, &o, out, err, errlen);
        else if (IS("cifar100")) st = load_cifar(dir, 1, &o, out, err, errlen);
        else if (IS("idx")) st = load_idx(dir, &o, out, err, errlen);
        else if (IS("folder")) st = load_folder(dir, &o, out, err, errlen);
        else st = pb_errf(PB_ERR_ARG, err, errlen, "unknown dataset kind '%.*s' in '%s'", (int)k, spec, spec);
#undef IS
    }
    if (st == PB_OK && out->kind == PB_DATA_IMAGE) {
        snprintf(out->metric, sizeof out->metric, "accuracy");
        st = set_norm(out, o.norm, err, errlen);
        // data_hash covers the stored examples and the batch-time preprocessing (normalisation).
        uint64_t h = pb_hash_str(PB_HASH_INIT, out->data_hash);
        h = pb_hash_str(pb_hash_str(h, out->norm), o.resize);
        snprintf(out->data_hash, sizeof out->data_hash, "%016llx", (unsigned long long)h);
    }
    if (st != PB_OK) pb_task_free(out);
    return st;
}
