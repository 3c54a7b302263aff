// test_data_glue_mini.c: GLUE-mini builds byte-for-byte deterministically (two builds, compare
// every file), each task loads through the GLUE reader (glue/<task>:DIR) with the documented row
// counts and label sets, splits are disjoint at the source level (no chapter id in both train and
// dev; no dev text in corpus.txt, while train originals are in it), and a missing Rscript or R
// package is one error naming the Debian package to install.
#include "../datasets/data_internal.h"
#include "../datasets/dataset.h"
#include "../datasets/glue.h"
#include "test_data_util.h"

#define RLIB "/usr/lib/R/site-library"

static const char *const files[] = {"sst2/train.tsv", "sst2/dev.tsv", "cola/train.tsv", "cola/dev.tsv",
                                    "mrpc/train.tsv", "mrpc/dev.tsv", "stsb/train.tsv", "stsb/dev.tsv",
                                    "qnli/train.tsv", "qnli/dev.tsv", "rte/train.tsv",  "rte/dev.tsv",
                                    "corpus.txt",     "tokenizer/vocab.json", "tokenizer/merges.txt"};

// Sorted-array set of string hashes (small and enough for a test).
typedef struct {
    uint64_t *k;
    int n, cap;
} hlist;
static void hl_add(hlist *h, const char *s, size_t n) {
    if (h->n == h->cap) h->k = pb_xrealloc(h->k, sizeof(uint64_t) * (h->cap = h->cap ? h->cap * 2 : 4096));
    h->k[h->n++] = pb_hash64(PB_HASH_INIT, s, n);
}
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}
static int hl_has(const hlist *h, const char *s) {
    uint64_t x = pb_hash64(PB_HASH_INIT, s, strlen(s));
    return bsearch(&x, h->k, (size_t)h->n, sizeof x, cmp_u64) != NULL;
}

// The chapter id of a data line (column col, up to the first '.'), into id.
static void chapter_of(const char *line, int col, char *id, size_t n) {
    const char *p = line;
    for (int c = 0; c < col && p; c++) p = strchr(p, '\t'), p = p ? p + 1 : NULL;
    size_t k = 0;
    while (p && p[k] && p[k] != '\t' && p[k] != '.' && k + 1 < n) k++;
    if (p) memcpy(id, p, k);
    id[k] = 0;
}

// Checks that the chapter ids of train and dev (column col) do not meet and returns how many
// distinct dev ids there were.
static int check_chapters(const char *dir, const char *task, int col, int header) {
    char path[1200], err[1024], id[32];
    hlist tr = {0};
    int dev_ids = 0;
    for (int sp = 0; sp < 2; sp++) {
        snprintf(path, sizeof path, "%s/%s/%s.tsv", dir, task, sp ? "dev" : "train");
        uint8_t *b;
        size_t n;
        EXPECT(pb_read_file(path, &b, &n, err, sizeof err) == PB_OK, "%s", err);
        if (sp) qsort(tr.k, (size_t)tr.n, sizeof(uint64_t), cmp_u64);
        hlist seen = {0};
        char *save = NULL;
        int line = 0;
        for (char *l = strtok_r((char *)b, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            if (line++ == 0 && header) continue;
            chapter_of(l, col, id, sizeof id);
            EXPECT(strlen(id) == 4, "%s:%d: chapter id '%s'", path, line, id);
            if (!sp) hl_add(&tr, id, strlen(id));
            else {
                EXPECT(!hl_has(&tr, id), "%s:%d: chapter %s is in train and dev", path, line, id);
                hl_add(&seen, id, strlen(id));
            }
        }
        if (sp) {
            qsort(seen.k, (size_t)seen.n, sizeof(uint64_t), cmp_u64);
            for (int i = 0; i < seen.n; i++) dev_ids += i == 0 || seen.k[i] != seen.k[i - 1];
        }
        free(seen.k);
        free(b);
    }
    free(tr.k);
    return dev_ids;
}

int main(void) {
    EXPECT(pb_file_exists(RLIB "/janeaustenr/DESCRIPTION") && pb_file_exists(RLIB "/modeldata/DESCRIPTION"),
           "r-cran-janeaustenr / r-cran-modeldata are not installed (run make deps)");
    unsetenv("PB_RSCRIPT");
    unsetenv("PB_GLUE_MINI_RLIB");
    char r1[256], r2[256], err[1024], p1[1200], p2[1200];
    make_tmpdir(r1, sizeof r1, "gm1");
    make_tmpdir(r2, sizeof r2, "gm2");
    double t0 = pb_now();
    EXPECT(pb_glue_mini_build(r1, NULL, err, sizeof err) == PB_OK, "%s", err);
    double t1 = pb_now();
    EXPECT(pb_glue_mini_build(r2, NULL, err, sizeof err) == PB_OK, "%s", err);
    printf("glue-mini build: %.2fs\n", t1 - t0);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p1, sizeof p1, "%s/%s", r1, files[i]);
        snprintf(p2, sizeof p2, "%s/%s", r2, files[i]);
        uint8_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        EXPECT(pb_read_file(p1, &a, &na, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(pb_read_file(p2, &b, &nb, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(na > 0 && na == nb && a && b && memcmp(a, b, na) == 0, "%s differs between builds", files[i]);
        free(a);
        free(b);
    }

    // Every task through the GLUE reader, with its documented sizes and both labels present.
    const struct {
        const char *task;
        int train, dev, classes;
        const char *metric;
    } want[] = {{"sst2", 4260, 733, 2, "accuracy"}, {"cola", 3000, 500, 2, "mcc"},  {"mrpc", 2000, 400, 2, "accuracy"},
                {"stsb", 2000, 400, 1, "pearson"},  {"qnli", 3000, 500, 2, "accuracy"}, {"rte", 2000, 300, 2, "accuracy"}};
    pb_task_opts o;
    pb_task_opts_default(&o);
    snprintf(o.tokenizer_dir, sizeof o.tokenizer_dir, "%s/tokenizer", r1);
    o.seq_len = 64;
    for (int k = 0; k < 6; k++) {
        char spec[1400];
        snprintf(spec, sizeof spec, "glue/%s:%s/%s", want[k].task, r1, want[k].task);
        pb_task t;
        memset(&t, 0, sizeof t);
        pb_status st = pb_task_load(spec, &o, &t, err, sizeof err);
        EXPECT(st == PB_OK, "%s: %s", spec, err);
        if (st != PB_OK) continue;
        EXPECT(t.train.n == want[k].train && t.val.n == want[k].dev, "%s: %d / %d rows, want %d / %d", spec,
               t.train.n, t.val.n, want[k].train, want[k].dev);
        EXPECT(t.num_classes == want[k].classes && !strcmp(t.metric, want[k].metric), "%s: %d classes, %s", spec,
               t.num_classes, t.metric);
        for (int sp = 0; sp < 2; sp++) {
            const pb_split *s = sp ? &t.val : &t.train;
            int c[2] = {0, 0}, lo = 0, hi = 0;
            for (int i = 0; i < s->n; i++) {
                if (want[k].classes == 1) {
                    EXPECT(s->targets[i] >= 0 && s->targets[i] <= 5, "%s: score %g", spec, s->targets[i]);
                    lo += s->targets[i] == 0, hi += s->targets[i] == 5;
                } else if (s->labels[i] == 0 || s->labels[i] == 1) c[s->labels[i]]++;
                else EXPECT(0, "%s: label %d", spec, s->labels[i]);
            }
            if (want[k].classes == 1) EXPECT(lo > 0 && hi > 0 && lo + hi < s->n, "%s: scores not graded", spec);
            else EXPECT(c[0] > s->n / 5 && c[1] > s->n / 5, "%s split %d: labels %d / %d", spec, sp, c[0], c[1]);
        }
        pb_task_free(&t);
    }

    // Source-level disjointness: chapter ids (CoLA source, MRPC #1 ID, STS-B filename).
    EXPECT(check_chapters(r1, "cola", 0, 0) >= 20, "cola dev covers few chapters");
    EXPECT(check_chapters(r1, "mrpc", 1, 1) >= 20, "mrpc dev covers few chapters");
    EXPECT(check_chapters(r1, "stsb", 2, 1) >= 20, "stsb dev covers few chapters");
    // No dev text is a line of the pretraining corpus; train originals are.
    uint8_t *cb;
    size_t cn;
    snprintf(p1, sizeof p1, "%s/corpus.txt", r1);
    EXPECT(pb_read_file(p1, &cb, &cn, err, sizeof err) == PB_OK, "%s", err);
    hlist corpus = {0};
    for (char *p = (char *)cb, *e; p < (char *)cb + cn; p = e + 1) {
        e = memchr(p, '\n', (size_t)((char *)cb + cn - p));
        if (!e) e = (char *)cb + cn;
        hl_add(&corpus, p, (size_t)(e - p));
    }
    qsort(corpus.k, (size_t)corpus.n, sizeof(uint64_t), cmp_u64);
    free(cb);
    for (int k = 0; k < 6; k++)
        for (int sp = 0; sp < 2; sp++) {
            snprintf(p1, sizeof p1, "%s/%s/%s.tsv", r1, want[k].task, sp ? "dev" : "train");
            uint8_t *b;
            size_t n;
            EXPECT(pb_read_file(p1, &b, &n, err, sizeof err) == PB_OK, "%s", err);
            pb_glue_rows rows;
            EXPECT(pb_glue_read_tsv(want[k].task, (const char *)b, n, p1, &rows, err, sizeof err) == PB_OK, "%s", err);
            free(b);
            int in_corpus = 0, leaks = 0;
            for (int i = 0; i < rows.n; i++) {
                int ha = hl_has(&corpus, rows.rows[i].a), hb = rows.rows[i].b && hl_has(&corpus, rows.rows[i].b);
                in_corpus += ha || hb;
                leaks += sp && (ha || hb);
            }
            EXPECT(leaks == 0, "%s: %d dev rows have text in corpus.txt", p1, leaks);
            // train: every row but CoLA's corrupted third holds a corpus line (a review, an
            // original sentence, QNLI's sentence), so the leak check above can fail
            if (!sp) EXPECT(in_corpus >= rows.n / 2, "%s: only %d of %d texts in corpus.txt", p1, in_corpus, rows.n);
            pb_glue_rows_free(&rows);
        }
    free(corpus.k);

    // Missing sources: one error naming the Debian package.
    char r3[256], lib[1200];
    make_tmpdir(r3, sizeof r3, "gm3");
    setenv("PB_RSCRIPT", "/nonexistent/Rscript", 1);
    EXPECT(pb_glue_mini_build(r3, NULL, err, sizeof err) != PB_OK && strstr(err, "r-base-core"), "no Rscript: %s", err);
    unsetenv("PB_RSCRIPT");
    snprintf(lib, sizeof lib, "%s/rlib", r3);
    EXPECT(pb_mkdirs(lib, err, sizeof err) == PB_OK, "%s", err);
    setenv("PB_GLUE_MINI_RLIB", lib, 1);
    EXPECT(pb_glue_mini_build(r3, NULL, err, sizeof err) != PB_OK && strstr(err, "r-cran-janeaustenr"),
           "no janeaustenr: %s", err);
    snprintf(p1, sizeof p1, "%s/janeaustenr", lib);
    EXPECT(symlink(RLIB "/janeaustenr", p1) == 0, "symlink %s", p1);
    EXPECT(pb_glue_mini_build(r3, NULL, err, sizeof err) != PB_OK && strstr(err, "r-cran-modeldata") &&
               !strstr(err, "janeaustenr"),
           "no modeldata: %s", err);
    unsetenv("PB_GLUE_MINI_RLIB");
    snprintf(p1, sizeof p1, "%s/cola/train.tsv", r3);
    EXPECT(!pb_file_exists(p1), "a failed build wrote %s", p1);

    rm_rf(r1);
    rm_rf(r2);
    rm_rf(r3);
    if (pb_test_fails) fprintf(stderr, "%d failure(s)\n", pb_test_fails);
    return pb_test_fails ? 1 : 0;
}
