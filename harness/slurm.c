// slurm.c: sh quoting, argv spawning with captured output, and squeue snapshots (slurm.h).
#include "slurm.h"
#include "../engine/common.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *pb_sh_quote(const char *s) {
    size_t n = 3;
    for (const char *p = s; *p; p++) n += *p == '\'' ? 4 : 1;
    char *o = pb_xmalloc(n), *w = o;
    *w++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') { // close the quote, an escaped quote, reopen
            memcpy(w, "'\\''", 4);
            w += 4;
        } else {
            *w++ = *p;
        }
    }
    *w++ = '\'';
    *w = 0;
    return o;
}

void pb_sh_append(char **buf, const char *word) {
    char *q = pb_sh_quote(word);
    size_t old = *buf ? strlen(*buf) : 0, add = strlen(q);
    *buf = realloc(*buf, old + add + 2);
    if (!*buf) abort();
    if (old) (*buf)[old++] = ' ';
    memcpy(*buf + old, q, add + 1);
    free(q);
}

char *pb_slurm_path_escape(const char *path) {
    if (strchr(path, '\\')) return NULL;
    size_t n = 1;
    for (const char *p = path; *p; p++) n += *p == '%' ? 2 : 1;
    char *o = pb_xmalloc(n), *w = o;
    for (const char *p = path; *p; p++) {
        *w++ = *p;
        if (*p == '%') *w++ = '%';
    }
    *w = 0;
    return o;
}

// Growing byte buffer for one pipe.
typedef struct {
    char *d;
    size_t n, cap;
} sbuf;

static void sbuf_add(sbuf *b, const char *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->d = realloc(b->d, b->cap);
        if (!b->d) abort();
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
    b->d[b->n] = 0;
}

int pb_spawn_capture(char *const argv[], char **out, char **errout) {
    if (out) *out = NULL;
    if (errout) *errout = NULL;
    int po[2], pe[2];
    if (pipe(po)) return -1;
    if (pipe(pe)) {
        close(po[0]), close(po[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addclose(&fa, po[0]);
    posix_spawn_file_actions_addclose(&fa, pe[0]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]), close(pe[1]);
    if (rc) {
        close(po[0]), close(pe[0]);
        errno = rc;
        return -1;
    }
    // Both pipes at once (poll), so a chatty stderr cannot block the child while we wait on stdout.
    sbuf b[2] = {{0}, {0}};
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_n = 2;
    while (open_n > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char tmp[4096];
            ssize_t r = read(fds[i].fd, tmp, sizeof tmp);
            if (r > 0) {
                sbuf_add(&b[i], tmp, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_n--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    for (int i = 0; i < 2; i++)
        if (!b[i].d) sbuf_add(&b[i], "", 0);
    if (out) *out = b[0].d;
    else free(b[0].d);
    if (errout) *errout = b[1].d;
    else free(b[1].d);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
}

void pb_squeue_snapshot(pb_squeue *q) {
    memset(q, 0, sizeof *q);
    char *out = NULL;
    char *argv[] = {"squeue", "-h", "-r", "-o", "%F|%A|%T", NULL};
    int rc = pb_spawn_capture(argv, &out, NULL);
    if (rc != 0) {
        free(out);
        return;
    }
    int cap = 16;
    q->array = pb_xmalloc(sizeof *q->array * (size_t)cap);
    q->job = pb_xmalloc(sizeof *q->job * (size_t)cap);
    q->state = pb_xmalloc(sizeof *q->state * (size_t)cap);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char a[32], j[32], s[24];
        if (sscanf(line, "%31[^|]|%31[^|]|%23s", a, j, s) != 3) continue;
        if (q->n == cap) {
            cap *= 2;
            q->array = realloc(q->array, sizeof *q->array * (size_t)cap);
            q->job = realloc(q->job, sizeof *q->job * (size_t)cap);
            q->state = realloc(q->state, sizeof *q->state * (size_t)cap);
            if (!q->array || !q->job || !q->state) abort();
        }
        snprintf(q->array[q->n], sizeof q->array[0], "%s", a);
        snprintf(q->job[q->n], sizeof q->job[0], "%s", j);
        snprintf(q->state[q->n], sizeof q->state[0], "%s", s);
        q->n++;
    }
    free(out);
    q->ok = 1;
}

void pb_squeue_free(pb_squeue *q) {
    free(q->array), free(q->job), free(q->state);
    memset(q, 0, sizeof *q);
}

int pb_squeue_alive(const pb_squeue *q, const char *id) {
    if (!q->ok) return -1;
    if (!id || !id[0]) return 0;
    for (int i = 0; i < q->n; i++)
        if (!strcmp(q->array[i], id) || !strcmp(q->job[i], id)) return 1;
    return 0;
}
