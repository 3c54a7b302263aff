// test_data_vtab_mini.c: VTAB-mini builds byte-for-byte deterministically (two builds, compare
// files), loads by name (with on-demand build and preprocessing cache), keeps the documented
// sizes, and no downstream image comes from the Fashion-MNIST pretraining train split.
#include "../datasets/data_internal.h"
#include "../datasets/dataset.h"
#include "test_data_util.h"

static uint64_t img_hash(const uint8_t *p) { return pb_hash64(PB_HASH_INIT, p, 784); }

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(void) {
    // Both sources are installed by `make deps` (scripts/install-deps.sh); a missing one is a
    // failure, not a skip. The tests run from the source root, where make deps puts the digits.
    EXPECT(pb_file_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
           "dataset-fashion-mnist is not installed (run make deps)");
    if (!getenv("PB_DIGITS_CSV") && pb_file_exists("data/sources/digits.csv.gz"))
        setenv("PB_DIGITS_CSV", "data/sources/digits.csv.gz", 1);
    char r1[256], r2[256], err[1024], p1[1200], p2[1200];
    make_tmpdir(r1, sizeof r1, "vm1");
    make_tmpdir(r2, sizeof r2, "vm2");
    double t0 = pb_now();
    EXPECT(pb_vtab_mini_build(r1, NULL, err, sizeof err) == PB_OK, "%s", err);
    double t1 = pb_now();
    EXPECT(pb_vtab_mini_build(r2, NULL, err, sizeof err) == PB_OK, "%s", err);
    printf("vtab-mini build: %.2fs\n", t1 - t0);
    int have_digits = pb_digits_find(r1, p1, sizeof p1) == 0;
    EXPECT(have_digits, "sklearn's digits.csv.gz not found (run make deps, or set PB_DIGITS_CSV)");
    for (int i = 0; pb_vtab_mini_tasks[i]; i++) {
        if (!have_digits && strcmp(pb_vtab_mini_tasks[i], "digits-1k") == 0) continue;
        pb_vtab_mini_path(r1, pb_vtab_mini_tasks[i], p1, sizeof p1);
        pb_vtab_mini_path(r2, pb_vtab_mini_tasks[i], p2, sizeof p2);
        uint8_t *a, *b;
        size_t na, nb;
        EXPECT(pb_read_file(p1, &a, &na, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(pb_read_file(p2, &b, &nb, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(na == nb && a && b && memcmp(a, b, na) == 0, "%s differs between builds", pb_vtab_mini_tasks[i]);
        free(a);
        free(b);
    }
    // load by name; the pretraining task's train split feeds the overlap check
    pb_task_opts o;
    pb_task_opts_default(&o);
    snprintf(o.data_root, sizeof o.data_root, "%s", r1);
    pb_task pre;
    EXPECT(pb_task_load("vtab-mini/fmnist-pretrain", &o, &pre, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(pre.train.n == 55000 && pre.val.n == 5000 && pre.test.n == 1000 && pre.num_classes == 10, "pretrain sizes");
    uint64_t *hs = pb_xmalloc(sizeof(uint64_t) * 60000);
    for (int i = 0; i < pre.train.n; i++) hs[i] = img_hash(pre.train.pixels + (size_t)i * 784);
    for (int i = 0; i < pre.val.n; i++) hs[55000 + i] = img_hash(pre.val.pixels + (size_t)i * 784);
    qsort(hs, 60000, sizeof(uint64_t), cmp_u64);
    pb_task_free(&pre);
    const struct {
        const char *name;
        int classes, test;
    } want[] = {{"fmnist-1k", 10, 2000}, {"fmnist-rot", 4, 2000}, {"fmnist-loc", 9, 2000}, {"sprite-count", 6, 1000},
                {"bar-ori", 8, 1000},    {"sprite-xpos", 8, 1000}, {"digits-1k", 10, 797}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        if (!have_digits && strcmp(want[k].name, "digits-1k") == 0) continue;
        char spec[64];
        snprintf(spec, sizeof spec, "vtab-mini/%s", want[k].name);
        pb_task t;
        EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(t.num_classes == want[k].classes && t.train.n == 800 && t.val.n == 200 && t.test.n == want[k].test,
               "%s sizes", spec);
        // every class occurs in train
        int seen[16] = {0}, nseen = 0;
        for (int i = 0; i < t.train.n; i++) nseen += !seen[t.train.labels[i]]++;
        EXPECT(nseen == t.num_classes, "%s: %d of %d classes in train", spec, nseen, t.num_classes);
        if (strncmp(want[k].name, "fmnist-1k", 9) == 0) {
            int overlap = 0;
            pb_split *sp[3] = {&t.train, &t.val, &t.test};
            for (int s = 0; s < 3; s++)
                for (int i = 0; i < sp[s]->n; i++) {
                    uint64_t h = img_hash(sp[s]->pixels + (size_t)i * 784);
                    overlap += bsearch(&h, hs, 60000, sizeof(uint64_t), cmp_u64) != NULL;
                }
            // Fashion-MNIST has a few exact duplicates across its splits; allow none of ours to be
            // one of the pretraining images beyond those (measured: see docs/datasets.md)
            EXPECT(overlap <= 5, "%s: %d images also in pretraining train", spec, overlap);
            if (overlap) printf("note: %d fmnist-1k images are byte-identical to some pretraining image\n", overlap);
        }
        pb_task_free(&t);
    }
    free(hs);
    // preprocessing for another model input: 3 channels at 32x32, cached under cache/
    o.image_size = 32;
    o.channels = 3;
    pb_task t;
    EXPECT(pb_task_load("vtab-mini/bar-ori", &o, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(t.channels == 3 && t.height == 32 && t.test.n == 1000, "resized shape");
    char h1[17];
    snprintf(h1, sizeof h1, "%s", t.data_hash);
    pb_task_free(&t);
    EXPECT(pb_task_load("vtab-mini/bar-ori", &o, &t, err, sizeof err) == PB_OK && strcmp(h1, t.data_hash) == 0,
           "cached reload hash");
    pb_task_free(&t);
    // on-demand build into an empty root
    char r3[256];
    make_tmpdir(r3, sizeof r3, "vm3");
    snprintf(o.data_root, sizeof o.data_root, "%s", r3);
    o.image_size = 0, o.channels = 0;
    EXPECT(pb_task_load("vtab-mini/sprite-count", &o, &t, err, sizeof err) == PB_OK && t.train.n == 800, "on demand: %s", err);
    pb_task_free(&t);
    EXPECT(pb_task_load("vtab-mini/nope", &o, &t, err, sizeof err) == PB_ERR_ARG && strstr(err, "fmnist-1k"), "%s", err);
    // a corrupted built file is detected by its content hash
    pb_vtab_mini_path(r3, "bar-ori", p1, sizeof p1);
    FILE *f = fopen(p1, "r+b");
    fseek(f, 5000, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    EXPECT(pb_task_load("vtab-mini/bar-ori", &o, &t, err, sizeof err) != PB_OK && strstr(err, "hash"), "%s", err);
    rm_rf(r1);
    rm_rf(r2);
    rm_rf(r3);
    if (pb_test_fails) fprintf(stderr, "%d failure(s)\n", pb_test_fails);
    else printf("test_data_vtab_mini: ok\n");
    return pb_test_fails ? 1 : 0;
}
