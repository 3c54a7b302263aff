// test_expect.h: the expectation macro of the C tests. EXPECT(cond, fmt, ...) prints
// "FAIL file:line: cond: message" on stderr and counts the failure in pb_test_fails; a test's
// main ends with `return pb_test_fails ? 1 : 0;` after saying what failed (one header, one
// counter per test binary: each test is one translation unit).
// defines: EXPECT, pb_test_fails
#ifndef PB_TEST_EXPECT_H
#define PB_TEST_EXPECT_H

#include <stdio.h>

static int pb_test_fails __attribute__((unused)) = 0;

#define EXPECT(cond, ...)                                                                                          \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                        \
            fprintf(stderr, __VA_ARGS__);                                                                          \
            fprintf(stderr, "\n");                                                                                 \
            pb_test_fails++;                                                                                       \
        }                                                                                                          \
    } while (0)

#endif
