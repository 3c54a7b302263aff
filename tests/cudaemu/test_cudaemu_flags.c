// test_cudaemu_flags.c: the CUDA backend's device-side validation on the emulator: an invalid
// embedding id (embedding_forward) or label (xent_forward) is recorded by the kernel in the
// error-flag word and must abort at the next sync with the CPU backend's message plus
// "(detected on the GPU)". Each case runs in a child process; the parent checks its stderr.
#include "engine/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_embed(pb_engine *e) {
    int32_t ids_h[4] = {1, 0, 7, 2}; // 7 is outside [0,5)
    int32_t *ids = pb_alloc_i32(e, 4);
    float *table = pb_alloc(e, 5 * 3), *out = pb_alloc(e, 4 * 3);
    pb_upload_i32(e, ids, ids_h, 4);
    pb_embedding_forward(e, out, ids, table, 4, 3, 5);
    pb_sync(e);
}

static void run_label(pb_engine *e) {
    int32_t lab_h[3] = {0, -1, 2}; // -1 is outside [0,4)
    int32_t *lab = pb_alloc_i32(e, 3);
    float *logits = pb_alloc(e, 3 * 4), *probs = pb_alloc(e, 3 * 4), loss = 0;
    pb_upload_i32(e, lab, lab_h, 3);
    pb_xent_forward(e, probs, &loss, logits, lab, 3, 4, 0.0f);
}

static int expect(const char *name, void (*fn)(pb_engine *), const char *needle) {
    int pfd[2];
    if (pipe(pfd)) return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        char err[256];
        pb_engine *e = pb_engine_init(PB_DEVICE_CUDA, 1, err, sizeof err);
        if (!e) {
            fprintf(stderr, "no engine: %s\n", err);
            _exit(0);
        }
        fn(e);
        fprintf(stderr, "returned without aborting\n");
        _exit(0);
    }
    close(pfd[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t r;
    while ((r = read(pfd[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    const int died = WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0);
    const int ok = died && strstr(buf, needle) != NULL;
    printf("%s %s: child %s, stderr:\n%s", ok ? "ok  " : "FAIL", name, died ? "failed" : "exited 0", buf);
    if (!ok) printf("expected: %s\n", needle);
    return !ok;
}

int main(void) {
    int fails = 0;
    fails += expect("invalid embedding id", run_embed,
                    "embedding id 7 at 2 outside [0,5) (detected on the GPU)");
    fails += expect("invalid label", run_label, "label -1 of row 1 outside [0,4) (detected on the GPU)");
    printf("%d failures\n", fails);
    return fails ? 1 : 0;
}
