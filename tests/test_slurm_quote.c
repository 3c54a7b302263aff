// test_slurm_quote.c: the sh quoting of `peftbench slurm`'s job scripts (harness/slurm.h) against
// the reference, /bin/sh itself: every hostile string, quoted and handed to `sh -c "printf %s W"`,
// comes back byte for byte (no expansion, no splitting, no globbing, nothing run), also several
// words on one line; sbatch --output escaping doubles '%' and refuses '\'; pb_spawn_capture keeps
// stdout and stderr apart and reports exit status and a missing program; squeue liveness lookup.
#include <errno.h>
#include "test_expect.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness/slurm.h"


// What sh prints for `printf %s <quoted s>`: must be s.
static void roundtrip(const char *s, const char *canary) {
    char *q = pb_sh_quote(s);
    size_t n = strlen(q) + 32;
    char *cmd = malloc(n);
    snprintf(cmd, n, "printf %%s %s", q);
    char *argv[] = {"sh", "-c", cmd, NULL};
    char *out = NULL, *err = NULL;
    int rc = pb_spawn_capture(argv, &out, &err);
    EXPECT(rc == 0, "sh exit %d for %s (stderr %s)", rc, q, err ? err : "");
    EXPECT(out && !strcmp(out, s), "sh turned [%s] into [%s] (quoted %s)", s, out ? out : "(null)", q);
    EXPECT(access(canary, F_OK) != 0, "quoting [%s] ran a command", s);
    free(out), free(err), free(cmd), free(q);
}

int main(void) {
    char dir[] = "/tmp/pbquoteXXXXXX";
    if (!mkdtemp(dir)) return 1;
    char canary[256];
    snprintf(canary, sizeof canary, "%s/pwned", dir);
    char hostile[12][300];
    const char *pats[] = {"plain", "with space", "it's", "'", "''", "a'b'c", "$(touch %s)", "`touch %s`",
                          "$HOME ${PATH} $0 $$ $1", "*.c ? [ab] ~root", "x; touch %s # \\ \" \\\\n", "\t\nnew\nline"};
    for (int i = 0; i < 12; i++) {
        snprintf(hostile[i], sizeof hostile[i], pats[i], canary);
        roundtrip(hostile[i], canary);
    }
    roundtrip("", canary);
    // several words: sh sees exactly that many arguments, each intact
    char *line = NULL;
    for (int i = 0; i < 12; i++) pb_sh_append(&line, hostile[i]);
    size_t n = strlen(line) + 64;
    char *cmd = malloc(n);
    snprintf(cmd, n, "printf '%%s\\0' %s", line);
    char *argv[] = {"sh", "-c", cmd, NULL};
    char *out = NULL;
    EXPECT(pb_spawn_capture(argv, &out, NULL) == 0, "sh on the word list failed");
    const char *p = out;
    for (int i = 0; i < 12 && p; i++) { // out holds NUL-separated words
        EXPECT(!strcmp(p, hostile[i]), "word %d: [%s] became [%s]", i, hostile[i], p);
        p += strlen(p) + 1;
    }
    EXPECT(access(canary, F_OK) != 0, "a word list ran a command");
    free(out), free(cmd), free(line);

    char *e = pb_slurm_path_escape("/r/100%/x%j");
    EXPECT(e && !strcmp(e, "/r/100%%/x%%j"), "path escape: %s", e ? e : "(null)");
    free(e);
    EXPECT(pb_slurm_path_escape("/r/a\\b") == NULL, "a backslash must be refused");

    // spawn: stdout/stderr apart, exit status, missing program
    char *a2[] = {"sh", "-c", "printf out; printf err >&2; exit 3", NULL};
    char *o = NULL, *er = NULL;
    int rc = pb_spawn_capture(a2, &o, &er);
    EXPECT(rc == 3 && o && !strcmp(o, "out") && er && !strcmp(er, "err"), "spawn: rc %d out [%s] err [%s]", rc,
           o ? o : "", er ? er : "");
    free(o), free(er);
    char *a3[] = {"peftbench-no-such-program", NULL};
    EXPECT(pb_spawn_capture(a3, NULL, NULL) == -1 && errno == ENOENT, "missing program should be -1/ENOENT");

    // liveness from a snapshot: array id, unique id, unknown
    char arr[2][32] = {"41", "41"}, job[2][32] = {"41", "43"}, st[2][24] = {"PENDING", "RUNNING"};
    pb_squeue q = {1, 2, arr, job, st};
    EXPECT(pb_squeue_alive(&q, "41") == 1 && pb_squeue_alive(&q, "43") == 1 && pb_squeue_alive(&q, "42") == 0,
           "squeue lookup");
    pb_squeue none = {0, 0, NULL, NULL, NULL};
    EXPECT(pb_squeue_alive(&none, "41") == -1, "failed snapshot must be unknown");

    rmdir(dir);
    if (!pb_test_fails) printf("test_slurm_quote: ok\n");
    return pb_test_fails ? 1 : 0;
}
