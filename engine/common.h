// common.h: the project-wide error tiers, "must" allocators and small helpers.
// defines: PB_CHECK, PB_ABORT, pb_status, pb_status_str, pb_xmalloc, pb_xcalloc, pb_xrealloc,
//          pb_xstrdup, pb_errf
#ifndef PB_COMMON_H
#define PB_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// ----------------------------------------------------------------------------
// Tier 1: broken invariants. They abort with file:line and a hint; they are bugs, not user errors.

void pb_abort_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

// Most worker threads an engine accepts (--threads, bench, trace).
#define PB_MAX_THREADS 1024

#define PB_ABORT(...) pb_abort_at(__FILE__, __LINE__, __VA_ARGS__)
#define PB_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) pb_abort_at(__FILE__, __LINE__, "check failed: " #cond ": " __VA_ARGS__);     \
    } while (0)

// ----------------------------------------------------------------------------
// Tier 2: recoverable failures. Functions return a pb_status and write a message into a
// caller-provided buffer (err, errlen); the caller reports it (or marks a cell failed).

typedef enum {
    PB_OK = 0,
    PB_ERR_IO = -1,      // file missing, unreadable, short read/write
    PB_ERR_FORMAT = -2,  // malformed file contents (header, JSON, TSV, image)
    PB_ERR_ARG = -3,     // bad user argument / config value
    PB_ERR_NOMEM = -4,   // allocation failed where recovery is possible
    PB_ERR_NUMERIC = -5, // NaN/Inf (divergence)
    PB_ERR_UNSUPPORTED = -6,
} pb_status;

const char *pb_status_str(pb_status s);

// printf into err (if non-NULL); returns the status so callers can `return pb_errf(...)`.
pb_status pb_errf(pb_status s, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// ----------------------------------------------------------------------------
// "Must" allocators: never return NULL; abort with the requested size on failure.
// Caller owns the result and frees it with free().

void *pb_xmalloc(size_t n);
void *pb_xcalloc(size_t count, size_t size);
void *pb_xrealloc(void *p, size_t n);
char *pb_xstrdup(const char *s);

// Wall-clock seconds (monotonic).
double pb_now(void);

// Peak resident set size of this process in bytes (from getrusage).
size_t pb_peak_rss(void);

#define PB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PB_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
