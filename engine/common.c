// common.c: error tiers, must-allocators, timers.
#include "common.h"
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

void pb_abort_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

const char *pb_status_str(pb_status s) {
    switch (s) {
    case PB_OK: return "ok";
    case PB_ERR_IO: return "I/O error";
    case PB_ERR_FORMAT: return "format error";
    case PB_ERR_ARG: return "invalid argument";
    case PB_ERR_NOMEM: return "out of memory";
    case PB_ERR_NUMERIC: return "non-finite values";
    case PB_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown error";
}

pb_status pb_errf(pb_status s, char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return s;
}

void *pb_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) PB_ABORT("out of memory allocating %zu bytes", n);
    return p;
}

void *pb_xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) PB_ABORT("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *pb_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) PB_ABORT("out of memory reallocating to %zu bytes", n);
    return q;
}

char *pb_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = pb_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

double pb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t pb_peak_rss(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}
