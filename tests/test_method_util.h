// test_method_util.h: method configs for tests from "key=value key=value" text (method.h).
#ifndef PB_TEST_METHOD_UTIL_H
#define PB_TEST_METHOD_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "methods/method.h"

// c = method with the options in kvs (space-separated key=value; "" for none), resolved.
// A pair the descriptor refuses is a bug in the test: abort naming it.
static inline void mc_make(pb_method_config *c, const char *method, uint64_t seed, const char *kvs) {
    char err[512];
    if (pb_method_config_init(c, method, seed, err, sizeof err) != PB_OK) {
        fprintf(stderr, "mc_make: %s\n", err);
        abort();
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", kvs ? kvs : "");
    for (char *s = NULL, *t = strtok_r(buf, " ", &s); t; t = strtok_r(NULL, " ", &s))
        if (pb_method_config_set_kv(c, t, err, sizeof err) != PB_OK) {
            fprintf(stderr, "mc_make(%s, %s): %s\n", method, t, err);
            abort();
        }
    pb_method_config_finish(c);
}

#endif
