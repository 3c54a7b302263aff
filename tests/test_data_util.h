// test_data_util.h: tiny check macros and fixture writers shared by the dataset tests.
#ifndef PB_TEST_DATA_UTIL_H
#define PB_TEST_DATA_UTIL_H

// Fixture paths live in fixed buffers; GCC cannot prove they fit.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_expect.h"
#define EXPECT_NEAR(a, b, tol) EXPECT(fabs((double)(a) - (double)(b)) <= (tol), "%.10g vs %.10g", (double)(a), (double)(b))

static inline void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static inline void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fwrite(b, 1, n, f);
    fclose(f);
}

// mkdtemp under /tmp; the caller removes it with rm_rf.
static inline void make_tmpdir(char *out, size_t len, const char *tag) {
    snprintf(out, len, "/tmp/pbtest-%s-XXXXXX", tag);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(2);
    }
}

static inline void rm_rf(const char *dir) {
    char cmd[1200];
    if (strncmp(dir, "/tmp/pbtest-", 12) != 0) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

#endif
