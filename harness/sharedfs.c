// sharedfs.c: process identity, stale temp files and the flock lock-with-wait (sharedfs.h).
#include "sharedfs.h"
#include "../engine/fileutil.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// Copies getenv(name) (or "") into dst.
static void env_copy(const char *name, char *dst, size_t n) {
    const char *v = getenv(name);
    snprintf(dst, n, "%s", v ? v : "");
}

void pb_self_get(pb_self *s) {
    memset(s, 0, sizeof *s);
    if (gethostname(s->host, sizeof s->host - 1)) snprintf(s->host, sizeof s->host, "unknown");
    s->host[strcspn(s->host, ".")] = 0; // short name, as Slurm and squeue print it
    s->pid = (long)getpid();
    env_copy("SLURM_JOB_ID", s->job, sizeof s->job);
    env_copy("SLURM_ARRAY_JOB_ID", s->array_job, sizeof s->array_job);
    env_copy("SLURM_ARRAY_TASK_ID", s->array_task, sizeof s->array_task);
}

int pb_tmp_stale(const char *dir, const char *name) {
    if (!pb_tmp_orphaned(name)) return 0;
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    if (lstat(p, &sb)) return 0;
    return difftime(time(NULL), sb.st_mtime) > PB_TMP_GRACE_S;
}

// Reads the holder line of an open lock file into out ("?" when empty).
static void lock_holder(int fd, char *out, size_t n) {
    ssize_t r = pread(fd, out, n - 1, 0);
    out[r > 0 ? r : 0] = 0;
    out[strcspn(out, "\n")] = 0;
    if (!out[0]) snprintf(out, n, "?");
}

pb_status pb_lock_acquire(pb_lock *l, const char *path, double timeout_s, FILE *msg, char *err, size_t errlen) {
    l->fd = -1;
    l->unsupported = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return pb_errf(PB_ERR_IO, err, errlen, "%s: cannot open the lock file: %s", path, strerror(errno));
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double next_note = 0;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) {
            // ENOLCK / EOPNOTSUPP / ENOSYS / EINVAL: no locking on this filesystem (e.g. NFS mounted
            // nolock). The caller still publishes atomically, so nobody reads a half-written entry;
            // only the duplicate work is not prevented.
            if (msg)
                fprintf(msg, "warning: %s: the filesystem cannot lock (%s); going on without the lock\n", path,
                        strerror(errno));
            close(fd);
            l->unsupported = 1;
            return PB_OK;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec);
        char who[256];
        if (el >= timeout_s) {
            lock_holder(fd, who, sizeof who);
            close(fd);
            return pb_errf(PB_ERR_IO, err, errlen, "%s: still locked after %.0f s by %s (PEFTBENCH_LOCK_TIMEOUT_S)",
                           path, el, who);
        }
        if (msg && el >= next_note) {
            lock_holder(fd, who, sizeof who);
            fprintf(msg, "waiting for %s, held by %s (%.0f s so far)\n", path, who, el);
            fflush(msg);
            next_note = el + 60;
        }
        struct timespec d = {0, 200 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    // Holder line for the waiters: "host H pid P[ job J]".
    pb_self me;
    pb_self_get(&me);
    char line[256];
    int n = snprintf(line, sizeof line, "host %s pid %ld%s%s\n", me.host, me.pid, me.job[0] ? " job " : "", me.job);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) != n) {
        // informational only: the lock is held either way
    }
    l->fd = fd;
    return PB_OK;
}

void pb_lock_release(pb_lock *l) {
    if (l->fd < 0) return;
    if (ftruncate(l->fd, 0)) {
        // informational line only
    }
    flock(l->fd, LOCK_UN);
    close(l->fd);
    l->fd = -1;
}
