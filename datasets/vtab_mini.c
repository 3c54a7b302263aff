// vtab_mini.c: VTAB-mini, a deterministic VTAB-1k-style suite built from Debian-shipped data
// (Fashion-MNIST, sklearn digits) and procedurally drawn sprites, all 28x28 grayscale.
// Task list, sources and sizes: docs/datasets.md. Integer-only drawing keeps the bytes identical
// across machines and compilers.
// Paths and messages live in fixed buffers (>= 1 KiB); GCC cannot prove they fit.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"

#define S 28
#define NP (S * S)
#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define DIGITS_PKG_PATH "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

const char *const pb_vtab_mini_tasks[] = {"fmnist-pretrain", "fmnist-1k", "digits-1k", "fmnist-rot",
                                          "fmnist-loc", "sprite-count", "bar-ori", "sprite-xpos", NULL};

void pb_vtab_mini_path(const char *data_root, const char *task, char *path, size_t len) {
    snprintf(path, len, "%s/cache/vtab-mini/%s.pbd", data_root && data_root[0] ? data_root : "data", task);
}

int pb_digits_find(const char *data_root, char *path, size_t len) {
    const char *env = getenv("PB_DIGITS_CSV");
    if (env && pb_file_exists(env)) {
        snprintf(path, len, "%s", env);
        return 0;
    }
    if (pb_file_exists(DIGITS_PKG_PATH)) {
        snprintf(path, len, "%s", DIGITS_PKG_PATH);
        return 0;
    }
    snprintf(path, len, "%s/sources/digits.csv.gz", data_root && data_root[0] ? data_root : "data");
    return pb_file_exists(path) ? 0 : -1;
}

// splitmix64: small, fast, fully specified.
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static int rng_int(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }

static void perm(int n, uint64_t seed, int *p) {
    for (int i = 0; i < n; i++) p[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = rng_int(&seed, i + 1);
        int t = p[i];
        p[i] = p[j], p[j] = t;
    }
}

typedef struct {
    int n;
    uint8_t *px;  // (n, 28, 28)
    int32_t *lab; // (n)
} rawset;

static pb_status read_idx(const char *stem, rawset *r, char *err, size_t errlen) {
    char pi[512], pl[512];
    snprintf(pi, sizeof pi, "%s/%s-images-idx3-ubyte.gz", FMNIST_DIR, stem);
    snprintf(pl, sizeof pl, "%s/%s-labels-idx1-ubyte.gz", FMNIST_DIR, stem);
    uint8_t *im, *lb;
    size_t ni, nl;
    pb_status st = pb_gunzip_file(pi, &im, &ni, err, errlen);
    if (st != PB_OK)
        return pb_errf(st, err, errlen, "%s: Fashion-MNIST missing or unreadable; install the Debian package "
                       "dataset-fashion-mnist (scripts/install-deps.sh)", pi);
    st = pb_gunzip_file(pl, &lb, &nl, err, errlen);
    if (st != PB_OK) {
        free(im);
        return st;
    }
    uint32_t n = ni >= 16 ? (uint32_t)im[4] << 24 | (uint32_t)im[5] << 16 | (uint32_t)im[6] << 8 | im[7] : 0;
    if (ni < 16 || im[2] != 8 || im[3] != 3 || im[11] != S || im[15] != S || ni != 16 + (size_t)n * NP ||
        nl != 8 + (size_t)n) {
        free(im);
        free(lb);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: unexpected IDX header/size", pi);
    }
    r->n = (int)n;
    r->px = pb_xmalloc((size_t)n * NP);
    memcpy(r->px, im + 16, (size_t)n * NP);
    r->lab = pb_xmalloc(sizeof(int32_t) * n);
    for (uint32_t i = 0; i < n; i++) r->lab[i] = lb[8 + i];
    free(im);
    free(lb);
    return PB_OK;
}

// Parses sklearn digits.csv(.gz): 1797 rows of 64 pixel values 0..16 and a label.
static pb_status read_digits(const char *path, rawset *r, char *err, size_t errlen) {
    uint8_t *buf;
    size_t n;
    pb_status st = pb_gunzip_file(path, &buf, &n, err, errlen);
    if (st != PB_OK) return st;
    r->n = 0;
    r->px = pb_xmalloc((size_t)2000 * NP);
    r->lab = pb_xmalloc(sizeof(int32_t) * 2000);
    const char *p = (const char *)buf, *end = p + n;
    int line = 0;
    while (p < end) {
        line++;
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        if (e == p) {
            p = e + 1;
            continue;
        }
        int v[65], k = 0;
        const char *q = p;
        while (q < e && k < 65) {
            char *qe;
            long x = strtol(q, &qe, 10);
            if (qe == q || x < 0 || x > 16) break;
            v[k++] = (int)x;
            q = qe;
            if (q < e && *q == ',') q++;
        }
        while (q < e && (*q == '\r' || *q == ' ')) q++;
        if (k != 65 || q != e || v[64] > 9 || r->n >= 2000) {
            free(buf);
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: expected 64 pixel values 0..16 and a digit label",
                           path, line);
        }
        // 8x8 (0..16) -> 0..255 -> 28x28 with the PIL-convention bilinear resize
        pb_img im = {8, 8, 1, pb_xmalloc(64)}, out;
        for (int i = 0; i < 64; i++) im.px[i] = (uint8_t)((v[i] * 255 + 8) / 16);
        st = pb_image_resize(&im, S, S, "bilinear", &out, err, errlen);
        pb_img_free(&im);
        if (st != PB_OK) {
            free(buf);
            return st;
        }
        memcpy(r->px + (size_t)r->n * NP, out.px, NP);
        pb_img_free(&out);
        r->lab[r->n++] = v[64];
        p = e + 1;
    }
    free(buf);
    if (r->n != 1797) return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %d rows, expected 1797", path, r->n);
    return PB_OK;
}

// A task under construction: splits filled by index.
typedef struct {
    pb_task t;
} builder;

static void bt_init(pb_task *t, int classes, int ntr, int nva, int nte) {
    memset(t, 0, sizeof *t);
    t->kind = PB_DATA_IMAGE;
    t->channels = 1, t->height = S, t->width = S;
    t->num_classes = classes;
    int ns[3] = {ntr, nva, nte};
    pb_split *sp[3] = {&t->train, &t->val, &t->test};
    for (int i = 0; i < 3; i++) {
        sp[i]->n = ns[i];
        sp[i]->pixels = pb_xcalloc((size_t)ns[i] * NP + 1, 1);
        sp[i]->labels = pb_xcalloc((size_t)ns[i] + 1, sizeof(int32_t));
    }
}

// Example j of the concatenation train|val|test.
static uint8_t *bt_px(pb_task *t, int j, int32_t **lab) {
    pb_split *s = &t->train;
    if (j >= t->train.n) {
        j -= t->train.n;
        s = &t->val;
        if (j >= t->val.n) {
            j -= t->val.n;
            s = &t->test;
        }
    }
    *lab = &s->labels[j];
    return s->pixels + (size_t)j * NP;
}

static pb_status bt_write(const char *root, const char *name, pb_task *t, FILE *log, double t0, char *err,
                          size_t errlen) {
    char path[1200];
    pb_vtab_mini_path(root, name, path, sizeof path);
    pb_status st = pb_cache_write(path, t, err, errlen);
    if (st == PB_OK && log)
        fprintf(log, "vtab-mini/%-16s %2d classes  train %5d  val %4d  test %5d  hash %016llx  (%.2fs)  %s\n", name,
                t->num_classes, t->train.n, t->val.n, t->test.n, (unsigned long long)pb_task_content_hash(t),
                pb_now() - t0, path);
    pb_task_free(t);
    return st;
}

// --- drawing helpers (integer only) -----------------------------------------------------------

static void rot90(const uint8_t *in, uint8_t *out, int r) {
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int sx = x, sy = y;
            for (int k = 0; k < r; k++) { // counter-clockwise quarter turns
                int nx = S - 1 - sy, ny = sx;
                sx = nx, sy = ny;
            }
            out[y * S + x] = in[sy * S + sx];
        }
}

// Fills a shape of size sz (bounding box) at top-left (x0, y0): 0 square, 1 disc, 2 triangle.
static void draw_shape(uint8_t *img, int shape, int x0, int y0, int sz, int val) {
    for (int y = 0; y < sz; y++)
        for (int x = 0; x < sz; x++) {
            int in;
            if (shape == 0) in = 1;
            else if (shape == 1) {
                int dx = 2 * x + 1 - sz, dy = 2 * y + 1 - sz; // doubled coordinates around the centre
                in = dx * dx + dy * dy <= sz * sz;
            } else {
                in = 2 * x >= sz - 1 - y && 2 * x <= sz - 1 + y; // apex at the top
            }
            int X = x0 + x, Y = y0 + y;
            if (in && X >= 0 && X < S && Y >= 0 && Y < S) img[Y * S + X] = (uint8_t)val;
        }
}

// --- the tasks -----------------------------------------------------------------------------

static pb_status build_from_fmnist(const char *root, const rawset *tk, const int *pm, FILE *log, char *err,
                                   size_t errlen) {
    pb_status st;
    double t0 = pb_now();
    // fmnist-1k: natural, Fashion-MNIST test images perm[0, 3000)
    pb_task t;
    bt_init(&t, 10, 800, 200, 2000);
    for (int j = 0; j < 3000; j++) {
        int32_t *lab;
        uint8_t *px = bt_px(&t, j, &lab);
        memcpy(px, tk->px + (size_t)pm[j] * NP, NP);
        *lab = tk->lab[pm[j]];
    }
    if ((st = bt_write(root, "fmnist-1k", &t, log, t0, err, errlen)) != PB_OK) return st;
    // fmnist-rot: perm[3000, 6000), rotated by label * 90 degrees (counter-clockwise)
    t0 = pb_now();
    uint64_t rs = 0x526f7401ULL;
    bt_init(&t, 4, 800, 200, 2000);
    for (int j = 0; j < 3000; j++) {
        int32_t *lab;
        uint8_t *px = bt_px(&t, j, &lab);
        int r = rng_int(&rs, 4);
        rot90(tk->px + (size_t)pm[3000 + j] * NP, px, r);
        *lab = r;
    }
    if ((st = bt_write(root, "fmnist-rot", &t, log, t0, err, errlen)) != PB_OK) return st;
    // fmnist-loc: perm[6000, 9000), 2x2-box-downscaled 14x14 object at one of 3x3 positions
    t0 = pb_now();
    rs = 0x4c6f6301ULL;
    bt_init(&t, 9, 800, 200, 2000);
    for (int j = 0; j < 3000; j++) {
        int32_t *lab;
        uint8_t *px = bt_px(&t, j, &lab);
        const uint8_t *src = tk->px + (size_t)pm[6000 + j] * NP;
        int pos = rng_int(&rs, 9), ox = (pos % 3) * 7, oy = (pos / 3) * 7;
        for (int y = 0; y < 14; y++)
            for (int x = 0; x < 14; x++) {
                int s4 = src[(2 * y) * S + 2 * x] + src[(2 * y) * S + 2 * x + 1] + src[(2 * y + 1) * S + 2 * x] +
                         src[(2 * y + 1) * S + 2 * x + 1];
                px[(oy + y) * S + ox + x] = (uint8_t)((s4 + 2) / 4);
            }
        *lab = pos;
    }
    return bt_write(root, "fmnist-loc", &t, log, t0, err, errlen);
}

static pb_status build_sprites(const char *root, FILE *log, char *err, size_t errlen) {
    pb_status st;
    pb_task t;
    double t0 = pb_now();
    // sprite-count: 1..6 non-overlapping 4x4 shapes; label = count - 1
    uint64_t rs = 0x436e7401ULL;
    bt_init(&t, 6, 800, 200, 1000);
    for (int j = 0; j < 2000; j++) {
        int32_t *lab;
        uint8_t *px = bt_px(&t, j, &lab);
        int cnt = 1 + rng_int(&rs, 6), placed = 0, bx[6], by[6];
        while (placed < cnt) {
            int x = 1 + rng_int(&rs, S - 6), y = 1 + rng_int(&rs, S - 6), ok = 1;
            for (int k = 0; k < placed; k++) // keep a 1-pixel gap so objects stay separable
                if (abs(x - bx[k]) < 6 && abs(y - by[k]) < 6) ok = 0;
            if (!ok) continue;
            bx[placed] = x, by[placed] = y;
            draw_shape(px, rng_int(&rs, 3), x, y, 4, 128 + rng_int(&rs, 128));
            placed++;
        }
        *lab = cnt - 1;
    }
    if ((st = bt_write(root, "sprite-count", &t, log, t0, err, errlen)) != PB_OK) return st;
    // bar-ori: a 3-pixel-wide bar; label = orientation bin of 22.5 degrees over [0, 180)
    t0 = pb_now();
    rs = 0x4f726901ULL;
    bt_init(&t, 8, 800, 200, 1000);
    for (int j = 0; j < 2000; j++) {
        int32_t *lab;
        uint8_t *px = bt_px(&t, j, &lab);
        int bin = rng_int(&rs, 8);
        int cdeg = bin * 2250 + 100 + rng_int(&rs, 2051); // centi-degrees, 1 degree from bin edges
        // cos/sin rounded to 1/4096: only a value exactly at a rounding boundary could differ
        double th = cdeg * (3.14159265358979323846 / 18000.0);
        int c = (int)lround(cos(th) * 4096), s = (int)lround(sin(th) * 4096);
        int half_len = 8 * 16 + rng_int(&rs, 3 * 16); // in 1/16 pixel
        int half_w = 24;                              // 1.5 px
        int cx = (11 + rng_int(&rs, 7)) * 16, cy = (11 + rng_int(&rs, 7)) * 16;
        int val = 160 + rng_int(&rs, 96);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int cov = 0;
                for (int sy = 0; sy < 4; sy++)
                    for (int sx = 0; sx < 4; sx++) {
                        int dx = x * 16 + sx * 4 + 2 - cx, dy = y * 16 + sy * 4 + 2 - cy;
                        // image y grows downwards; angle measured counter-clockwise from +x
                        int64_t along = (int64_t)dx * c - (int64_t)dy * s;
                        int64_t across = (int64_t)dx * s + (int64_t)dy * c;
                        if (llabs(along) <= (int64_t)half_len * 4096 && llabs(across) <= (int64_t)half_w * 4096) cov++;
                    }
                px[y * S + x] = (uint8_t)(cov * val / 16);
            }
        *lab = bin;
    }
    if ((st = bt_write(root, "bar-ori", &t, log, t0, err, errlen)) != PB_OK) return st;
    // sprite-xpos: one 6x6 shape; label = horizontal position bin (8 bins over x in [0, 22])
    t0 = pb_now();
    rs = 0x58706f01ULL;
    bt_init(&t, 8, 800, 200, 1000);
    for (int j = 0; j < 2000; j++) {
        int32_t *lab;
        uint8_t *px = bt_px(&t, j, &lab);
        int bin = rng_int(&rs, 8);
        int x = bin * 23 / 8 + rng_int(&rs, (bin + 1) * 23 / 8 - bin * 23 / 8); // x in the bin's range
        int y = rng_int(&rs, S - 6 + 1);
        draw_shape(px, rng_int(&rs, 3), x, y, 6, 128 + rng_int(&rs, 128));
        *lab = bin;
    }
    return bt_write(root, "sprite-xpos", &t, log, t0, err, errlen);
}

pb_status pb_vtab_mini_build(const char *data_root, FILE *log, char *err, size_t errlen) {
    const char *root = data_root && data_root[0] ? data_root : "data";
    double t0 = pb_now();
    rawset tr = {0}, tk = {0};
    pb_status st = read_idx("train", &tr, err, errlen);
    if (st == PB_OK) st = read_idx("t10k", &tk, err, errlen);
    if (st == PB_OK && (tr.n != 60000 || tk.n != 10000))
        st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: expected 60000/10000 images, found %d/%d", FMNIST_DIR, tr.n, tk.n);
    int *pm = pb_xmalloc(sizeof(int) * 10000);
    perm(10000, 0x766d696e69ULL, pm); // fixed seed: the t10k partition never changes
    if (st == PB_OK) {
        // fmnist-pretrain: train split 55000 / 5000, test = t10k perm[9000, 10000)
        pb_task t;
        bt_init(&t, 10, 55000, 5000, 1000);
        memcpy(t.train.pixels, tr.px, (size_t)55000 * NP);
        for (int i = 0; i < 55000; i++) t.train.labels[i] = tr.lab[i];
        memcpy(t.val.pixels, tr.px + (size_t)55000 * NP, (size_t)5000 * NP);
        for (int i = 0; i < 5000; i++) t.val.labels[i] = tr.lab[55000 + i];
        for (int i = 0; i < 1000; i++) {
            memcpy(t.test.pixels + (size_t)i * NP, tk.px + (size_t)pm[9000 + i] * NP, NP);
            t.test.labels[i] = tk.lab[pm[9000 + i]];
        }
        st = bt_write(root, "fmnist-pretrain", &t, log, t0, err, errlen);
    }
    if (st == PB_OK) st = build_from_fmnist(root, &tk, pm, log, err, errlen);
    free(pm);
    free(tr.px), free(tr.lab), free(tk.px), free(tk.lab);
    if (st == PB_OK) st = build_sprites(root, log, err, errlen);
    if (st != PB_OK) return st;
    // digits-1k: natural, sklearn digits (UCI optdigits test set) 800 / 200 / 797
    char dp[1024];
    if (pb_digits_find(root, dp, sizeof dp) != 0) {
        if (log)
            fprintf(log, "vtab-mini/digits-1k        skipped: digits.csv.gz not found (install python3-sklearn, or run "
                         "scripts/fetch-digits.sh to extract it into %s/sources/)\n", root);
        return PB_OK;
    }
    double t1 = pb_now();
    rawset dg = {0};
    st = read_digits(dp, &dg, err, errlen);
    if (st == PB_OK) {
        int *dpm = pb_xmalloc(sizeof(int) * dg.n);
        perm(dg.n, 0x6469676974ULL, dpm);
        pb_task t;
        bt_init(&t, 10, 800, 200, dg.n - 1000);
        for (int j = 0; j < dg.n; j++) {
            int32_t *lab;
            uint8_t *px = bt_px(&t, j, &lab);
            memcpy(px, dg.px + (size_t)dpm[j] * NP, NP);
            *lab = dg.lab[dpm[j]];
        }
        free(dpm);
        st = bt_write(root, "digits-1k", &t, log, t1, err, errlen);
    }
    free(dg.px), free(dg.lab);
    return st;
}
