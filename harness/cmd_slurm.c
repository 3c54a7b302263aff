// cmd_slurm.c: `peftbench slurm SUITE [--out DIR] [--tasks N | --cells-per-task K] [--partition P]
//              [--time T] [--mem M] [--cpus-per-task C] [--gres G] [--device cpu|cuda] [--pretrain-seed N]
//              [--max-running M] [--baseline F] [--sbatch-arg ARG]... [--dry-run]`.
// Runs a suite as three Slurm jobs (docs/cluster.md): prepare (data + backbones, once), an array
// (task i runs its share of the cells that are missing, failed or stale, into the one results
// directory), report (tables, figures, check against a baseline), chained with dependencies.
// The job scripts are sh scripts under DIR/slurm/<n>/, every path and user string in them
// sh-quoted (slurm.h); sbatch runs as an argument vector (posix_spawnp), never through a shell.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cellstate.h"
#include "cli.h"
#include "jsonutil.h"
#include "runner.h"
#include "slurm.h"

#define MAX_SBATCH_ARGS 64

typedef struct {
    const char *suite, *out, *partition, *time, *mem, *gres, *baseline;
    int tasks, cells_per_task, cpus, max_running, dry_run;
    int pretrain_seed_set, pretrain_seed; // --pretrain-seed N: passed to every run (run.h)
    pb_device device;
    const char *extra[MAX_SBATCH_ARGS];
    int nextra;
} slurm_opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: peftbench slurm SUITE.json [--out DIR] [--tasks N | --cells-per-task K] [--partition P]\n"
            "                       [--time T] [--mem M] [--cpus-per-task C] [--gres G] [--device cpu|cuda]\n"
            "                       [--max-running M] [--baseline F] [--sbatch-arg ARG]... [--pretrain-seed N]\n"
            "                       [--dry-run]\n"
            "Submits the suite's missing, failed and stale cells as Slurm jobs (sbatch --parsable):\n"
            "  prepare  data built/checked, backbones pretrained (cached), once\n"
            "  array    --dependency=afterok:prepare; task i runs its share of the cells (run --shard i/N,\n"
            "           or an explicit --cells list when only some cells are left), all into DIR\n"
            "  report   --dependency=afterany:array; report --html, and check --baseline F if given\n"
            "Default: one cell per array task. Scripts and logs: DIR/slurm/<n>/. Finished cells are never\n"
            "submitted again; while an earlier submission still has jobs queued or running nothing is\n"
            "submitted. --dry-run prints the scripts and the sbatch command lines and submits nothing\n"
            "(it needs neither Slurm nor the data). --sbatch-arg passes one argument to every sbatch.\n"
            "--pretrain-seed N: every run pretrains the suite's backbones from seed N (run --pretrain-seed).\n"
            "Progress: peftbench status DIR. Exit status: 0 submitted (or nothing to do), 1 sbatch failed\n"
            "or an earlier submission is still active, 2 bad suite or arguments.\n");
}

// Parses a positive integer option value; 0 after an error message.
static int pos_int(const char *opt, const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 1 || x > INT_MAX) {
        fprintf(stderr, "peftbench slurm: %s expects a positive integer, got '%s'\n", opt, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

// Growing argv of owned strings.
typedef struct {
    char **v;
    int n, cap;
} argvec;

static void av_add(argvec *a, const char *s) {
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? 2 * a->cap : 32;
        a->v = pb_xrealloc(a->v, sizeof(char *) * (size_t)a->cap);
    }
    a->v[a->n++] = pb_xstrdup(s);
    a->v[a->n] = NULL;
}

static void av_addf(argvec *a, const char *fmt, const char *s) {
    size_t n = strlen(fmt) + strlen(s) + 1;
    char *b = pb_xmalloc(n);
    snprintf(b, n, fmt, s);
    av_add(a, b);
    free(b);
}

static void av_free(argvec *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

// Growing text buffer for the scripts.
typedef struct {
    char *d;
    size_t n, cap;
} text;

static void tx_add(text *t, const char *s) {
    size_t L = strlen(s);
    if (t->n + L + 1 > t->cap) {
        t->cap = (t->n + L + 1) * 2;
        t->d = pb_xrealloc(t->d, t->cap);
    }
    memcpy(t->d + t->n, s, L + 1);
    t->n += L;
}

// Appends s sh-quoted.
static void tx_q(text *t, const char *s) {
    char *q = pb_sh_quote(s);
    tx_add(t, q);
    free(q);
}

// The command line as a user would type it (sh-quoted where needed): for --dry-run and errors.
static char *av_show(const argvec *a) {
    text t = {0};
    tx_add(&t, "");
    for (int i = 0; i < a->n; i++) {
        const char *w = a->v[i];
        if (i) tx_add(&t, " ");
        // words sh reads as they are stay bare (readable); anything else is quoted
        if (w[0] && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") == strlen(w))
            tx_add(&t, w);
        else tx_q(&t, w);
    }
    return t.d;
}

// Common head of the three scripts: shebang, what it is, the working directory, the environment
// the cells need that a compute node's login shell would not have.
static void script_head(text *t, const char *what, const char *suite_name, int nsub, const char *cwd) {
    char line[512];
    tx_add(t, "#!/bin/sh\n");
    snprintf(line, sizeof line, "# peftbench slurm: %s job of suite ", what);
    tx_add(t, line);
    // The suite name is validated (letters, digits, - _ .), but a comment must stay one line anyway.
    for (const char *p = suite_name; *p; p++) {
        char c[2] = {*p == '\n' || *p == '\r' ? ' ' : *p, 0};
        tx_add(t, c);
    }
    snprintf(line, sizeof line, ", submission %d (written by peftbench; safe to read, not to edit)\n", nsub);
    tx_add(t, line);
    tx_add(t, "cd ");
    tx_q(t, cwd);
    tx_add(t, " || exit 1\n");
    const char *keep[] = {"PEFTBENCH_BACKBONE_CACHE", "PB_GEMM", "PB_CUDA_MATH", NULL};
    for (int i = 0; keep[i]; i++) {
        const char *v = getenv(keep[i]);
        if (!v || !v[0]) continue;
        char abs[4096];
        // the cache path as the submitter meant it, even if a job starts elsewhere
        if (!strcmp(keep[i], "PEFTBENCH_BACKBONE_CACHE") && !pb_path_resolve(v, abs, sizeof abs)) v = abs;
        tx_add(t, keep[i]);
        tx_add(t, "=");
        tx_q(t, v);
        tx_add(t, "; export ");
        tx_add(t, keep[i]);
        tx_add(t, "\n");
    }
}

// `PB run SUITE --out OUT` plus the engine options, as the start of an exec line.
static void run_line(text *t, const char *pb, const char *suite, const char *out, const slurm_opts *o) {
    tx_add(t, "exec ");
    tx_q(t, pb);
    tx_add(t, " run ");
    tx_q(t, suite);
    tx_add(t, " --out ");
    tx_q(t, out);
    // threads follow the allocation (--cpus-per-task), 1 when Slurm sets none
    tx_add(t, " --threads \"${SLURM_CPUS_PER_TASK:-1}\" --device ");
    tx_add(t, o->device == PB_DEVICE_CUDA ? "cuda" : "cpu");
    if (o->pretrain_seed_set) {
        char b[32];
        snprintf(b, sizeof b, " --pretrain-seed %d", o->pretrain_seed);
        tx_add(t, b);
    }
}

// The sbatch argument vector shared by the jobs; resources: cpus/mem/gres (prepare and array).
static void sbatch_common(argvec *a, const slurm_opts *o, const char *name, const char *log, int resources) {
    av_add(a, "sbatch");
    av_add(a, "--parsable");
    av_addf(a, "--job-name=%s", name);
    av_addf(a, "--output=%s", log);
    if (o->partition) av_addf(a, "--partition=%s", o->partition);
    if (o->time) av_addf(a, "--time=%s", o->time);
    if (resources) {
        char c[32];
        if (o->cpus) {
            snprintf(c, sizeof c, "%d", o->cpus);
            av_addf(a, "--cpus-per-task=%s", c);
        }
        if (o->mem) av_addf(a, "--mem=%s", o->mem);
        if (o->gres) av_addf(a, "--gres=%s", o->gres);
    }
    for (int i = 0; i < o->nextra; i++) av_add(a, o->extra[i]);
}

// Runs sbatch (argv vector) and reads the job id from --parsable ("ID" or "ID;CLUSTER").
// Returns 0 with id filled, else 1 after printing the command and sbatch's message.
static int submit(const argvec *a, char *id, size_t n) {
    char *out = NULL, *err = NULL;
    int rc = pb_spawn_capture(a->v, &out, &err);
    int ok = 0;
    if (rc < 0) {
        fprintf(stderr, "peftbench slurm: cannot run sbatch: %s (install Slurm's client, slurm-client on Debian; "
                        "or use --dry-run)\n", strerror(errno));
    } else {
        size_t L = strspn(out, "0123456789");
        ok = rc == 0 && L > 0 && L < n && (out[L] == 0 || out[L] == ';' || out[L] == '\n');
        if (ok) {
            memcpy(id, out, L);
            id[L] = 0;
        } else {
            char *cmd = av_show(a);
            fprintf(stderr, "peftbench slurm: sbatch failed (status %d): %s%s\n  command: %s\n", rc, err,
                    rc == 0 ? "(no job id in its output)" : "", cmd);
            free(cmd);
        }
    }
    free(out);
    free(err);
    return !ok;
}

// scancel of the jobs submitted before a later sbatch failed (best effort).
static void cancel(char ids[][32], int n) {
    for (int i = 0; i < n; i++) {
        char *argv[] = {"scancel", ids[i], NULL};
        if (pb_spawn_capture(argv, NULL, NULL) == 0) fprintf(stderr, "peftbench slurm: cancelled job %s\n", ids[i]);
    }
}

// Earlier submissions (DIR/slurm/submissions.json) with a job still queued or running: prints
// them and returns 1; 0 when none (or none recorded); -1 when squeue cannot tell.
static int earlier_active(const char *out, cJSON *subs, int quiet) {
    const cJSON *list = cJSON_GetObjectItem(subs, "submissions");
    if (!cJSON_GetArraySize(list)) return 0;
    pb_squeue q;
    pb_squeue_snapshot(&q);
    int active = 0;
    const char *kinds[3] = {"prepare", "array", "report"};
    for (const cJSON *s = list ? list->child : NULL; s; s = s->next)
        for (int k = 0; k < 3; k++) {
            const char *id = pb_jstr(s, kinds[k], "");
            int alive = pb_squeue_alive(&q, id);
            if (alive < 0) {
                pb_squeue_free(&q);
                return -1;
            }
            if (alive) {
                if (!quiet)
                    fprintf(stderr, "peftbench slurm: submission %d of %s: %s job %s is still queued or running\n",
                            (int)pb_jnum(s, "n", 0), out, kinds[k], id);
                active = 1;
            }
        }
    pb_squeue_free(&q);
    return active;
}

// Writes path (mode 0755) atomically, or prints it under a header for --dry-run.
static int emit(const char *path, const text *t, int dry) {
    if (dry) {
        printf("==> %s\n%s\n", path, t->d);
        return 0;
    }
    char err[4400];
    if (pb_write_file_atomic(path, t->d, t->n, err, sizeof err)) {
        fprintf(stderr, "peftbench slurm: %s\n", err);
        return 1;
    }
    chmod(path, 0755);
    return 0;
}

static int slurm_main(const slurm_opts *o) {
    char err[4096];
    pb_suite s;
    if (pb_suite_load(o->suite, &s, err, sizeof err) ||
        (o->pretrain_seed_set && pb_suite_set_pretrain_seed(&s, o->pretrain_seed, err, sizeof err))) {
        fprintf(stderr, "peftbench slurm: %s\n", err);
        pb_suite_free(&s);
        return 2;
    }
    pb_grid g;
    if (pb_grid_expand(&s, &g, err, sizeof err)) {
        fprintf(stderr, "peftbench slurm: %s\n", err);
        pb_suite_free(&s);
        return 2;
    }
    int rc = 2;
    int *todo = pb_xmalloc(sizeof(int) * (size_t)(g.n ? g.n : 1));
    char outrel[2048], out[4096], suite_abs[4096], pb[4096], cwd[4096], base_abs[4096] = "";
    argvec av[3] = {{0}, {0}, {0}};
    text sc[3] = {{0}, {0}, {0}};
    cJSON *subs = NULL;
    pb_run_out_dir(&s, o->out, outrel, sizeof outrel);
    // Jobs start in another process, maybe on another node: absolute paths only.
    ssize_t L = readlink("/proc/self/exe", pb, sizeof pb - 1);
    if (L <= 0 || !getcwd(cwd, sizeof cwd) || pb_path_resolve(outrel, out, sizeof out) ||
        pb_path_resolve(o->suite, suite_abs, sizeof suite_abs) ||
        (o->baseline && pb_path_resolve(o->baseline, base_abs, sizeof base_abs))) {
        fprintf(stderr, "peftbench slurm: cannot make the paths absolute (peftbench, cwd, suite, --out): %s\n",
                strerror(errno));
        goto done;
    }
    pb[L] = 0;
    // Missing data would fail the prepare job on a node minutes later: say so now (not for --dry-run,
    // which shows what would be submitted even before the data is in place).
    if (!o->dry_run && (pb_suite_build_local(&s, stderr, err, sizeof err) || pb_suite_preflight(&s, err, sizeof err))) {
        fprintf(stderr, "peftbench slurm: %s\n", err);
        goto done;
    }
    if (o->baseline && !pb_file_exists(base_abs)) {
        fprintf(stderr, "peftbench slurm: --baseline %s: no such file\n", o->baseline);
        goto done;
    }
    char subs_path[4200];
    snprintf(subs_path, sizeof subs_path, "%s/slurm/submissions.json", out);
    if (pb_file_exists(subs_path) && pb_json_read_file(subs_path, &subs, err, sizeof err)) {
        fprintf(stderr, "peftbench slurm: %s\n", err);
        goto done;
    }
    if (!subs) {
        subs = cJSON_CreateObject();
        cJSON_AddStringToObject(subs, "schema", "peftbench.slurm/1");
        cJSON_AddArrayToObject(subs, "submissions");
    }
    cJSON *list = cJSON_GetObjectItem(subs, "submissions");
    if (!cJSON_IsArray(list)) {
        fprintf(stderr, "peftbench slurm: %s: \"submissions\" is not an array\n", subs_path);
        goto done;
    }
    int nsub = cJSON_GetArraySize(list) + 1;
    if (!o->dry_run) {
        int act = earlier_active(out, subs, 0);
        if (act) {
            if (act > 0)
                fprintf(stderr, "peftbench slurm: not submitting while an earlier submission is active (its cells "
                                "would run twice): wait for it (peftbench status %s) or scancel it\n", out);
            else fprintf(stderr, "peftbench slurm: squeue failed, so earlier submissions cannot be checked\n");
            rc = 1;
            goto done;
        }
    }

    // The cells to submit: missing, failed (retry-failed) and stale; never a finished one.
    pb_squeue q;
    memset(&q, 0, sizeof q);
    if (pb_running_any(out)) pb_squeue_snapshot(&q);
    int ntodo = 0, count[PB_CELL_NSTATES] = {0};
    for (int i = 0; i < g.n; i++) {
        pb_cell_info ci;
        pb_cell_state_get(out, g.cells[i].id, q.ok ? &q : NULL, &ci);
        count[ci.state]++;
        if (ci.state == PB_CELL_MISSING || ci.state == PB_CELL_FAILED || ci.state == PB_CELL_STALE) todo[ntodo++] = i;
    }
    pb_squeue_free(&q);
    printf("suite %s: %d cells: %d done, %d failed, %d stale, %d missing, %d running elsewhere -> %d to submit\n",
           s.name, g.n, count[PB_CELL_DONE], count[PB_CELL_FAILED], count[PB_CELL_STALE], count[PB_CELL_MISSING],
           count[PB_CELL_RUNNING], ntodo);
    if (!ntodo) {
        printf("nothing to submit; results in %s\n", out);
        rc = 0;
        goto done;
    }
    int N = o->tasks ? o->tasks : o->cells_per_task ? (ntodo + o->cells_per_task - 1) / o->cells_per_task : ntodo;
    if (N > ntodo) N = ntodo;
    int shard_mode = ntodo == g.n; // every cell to run: task i is shard i/N; else explicit lists

    char sub_dir[4200], logs[4300], path[3][4400], logpat[3][4400];
    snprintf(sub_dir, sizeof sub_dir, "%s/slurm/%d", out, nsub);
    snprintf(logs, sizeof logs, "%s/logs", sub_dir);
    const char *names[3] = {"prepare", "array", "report"};
    const char *logname[3] = {"prepare-%j.out", "array-%A_%a.out", "report-%j.out"};
    for (int k = 0; k < 3; k++) {
        snprintf(path[k], sizeof path[k], "%s/%s.sh", sub_dir, names[k]);
        char *esc = pb_slurm_path_escape(logs);
        if (!esc) {
            fprintf(stderr, "peftbench slurm: --out %s holds a backslash, which sbatch's --output cannot take "
                            "with %%A/%%a patterns; choose another directory\n", out);
            goto done;
        }
        snprintf(logpat[k], sizeof logpat[k], "%s/%s", esc, logname[k]);
        free(esc);
    }

    // prepare.sh: data and backbones of exactly the cells submitted
    script_head(&sc[0], "prepare", s.name, nsub, cwd);
    char *cells_all = NULL; // comma list of the cells to submit (ids)
    size_t cl = 0;
    for (int k = 0; k < ntodo; k++) {
        cells_all = pb_xrealloc(cells_all, cl + 18);
        cl += (size_t)snprintf(cells_all + cl, 18, "%s%s", k ? "," : "", g.cells[todo[k]].id);
    }
    run_line(&sc[0], pb, suite_abs, out, o);
    tx_add(&sc[0], " --prepare");
    if (!shard_mode) {
        tx_add(&sc[0], " --cells ");
        tx_q(&sc[0], cells_all);
    }
    tx_add(&sc[0], "\n");
    free(cells_all);

    // array.sh: which cells task i runs, then one exec
    script_head(&sc[1], "array", s.name, nsub, cwd);
    tx_add(&sc[1], "case \"${SLURM_ARRAY_TASK_ID:-}\" in\n");
    for (int t = 0; t < N; t++) {
        char line[64];
        snprintf(line, sizeof line, "%d) set -- ", t);
        tx_add(&sc[1], line);
        if (shard_mode) {
            snprintf(line, sizeof line, "--shard %d/%d ;;\n", t, N);
            tx_add(&sc[1], line);
        } else {
            text ids = {0};
            for (int k = t; k < ntodo; k += N) {
                if (k > t) tx_add(&ids, ",");
                tx_add(&ids, g.cells[todo[k]].id);
            }
            tx_add(&sc[1], "--cells ");
            tx_q(&sc[1], ids.d);
            tx_add(&sc[1], " ;;\n");
            free(ids.d);
        }
    }
    tx_add(&sc[1], "*) echo \"peftbench slurm: no cells for array task '${SLURM_ARRAY_TASK_ID:-}'\" >&2; exit 2 ;;\n"
                   "esac\n");
    // --retry-failed: a failed cell in the list runs again; a finished ok one is still skipped
    run_line(&sc[1], pb, suite_abs, out, o);
    tx_add(&sc[1], " --no-report --retry-failed \"$@\"\n");

    // report.sh: tables and figures of whatever finished, the state of every cell, the check
    script_head(&sc[2], "report", s.name, nsub, cwd);
    tx_q(&sc[2], pb);
    tx_add(&sc[2], " report ");
    tx_q(&sc[2], out);
    tx_add(&sc[2], " --html; rc=$?\n");
    tx_q(&sc[2], pb);
    tx_add(&sc[2], " status ");
    tx_q(&sc[2], out);
    tx_add(&sc[2], "\n");
    if (o->baseline) {
        char junit[4500];
        snprintf(junit, sizeof junit, "%s/check.xml", sub_dir);
        tx_add(&sc[2], "[ $rc = 0 ] || exit $rc\nexec ");
        tx_q(&sc[2], pb);
        tx_add(&sc[2], " check ");
        tx_q(&sc[2], out);
        tx_add(&sc[2], " --baseline ");
        tx_q(&sc[2], base_abs);
        tx_add(&sc[2], " --junit ");
        tx_q(&sc[2], junit);
        tx_add(&sc[2], "\n");
    } else {
        tx_add(&sc[2], "exit $rc\n");
    }

    // sbatch command lines
    char jname[3][128];
    for (int k = 0; k < 3; k++) snprintf(jname[k], sizeof jname[k], "pb-%s-%s", s.name, names[k]);
    char ids[3][32] = {"", "", ""};
    sbatch_common(&av[0], o, jname[0], logpat[0], 1);
    av_add(&av[0], path[0]);
    if (o->dry_run) {
        printf("%d array task%s (%s), results in %s\n\n", N, N == 1 ? "" : "s",
               shard_mode ? "task i runs --shard i/N" : "explicit --cells lists", out);
        for (int k = 0; k < 3; k++) emit(path[k], &sc[k], 1);
    } else {
        if (pb_mkdirs(logs, err, sizeof err)) {
            fprintf(stderr, "peftbench slurm: %s\n", err);
            goto done;
        }
        for (int k = 0; k < 3; k++)
            if (emit(path[k], &sc[k], 0)) goto done;
        // status groups cells from the manifest before any result exists
        if (pb_run_write_manifest(out, &s, &g, err, sizeof err)) fprintf(stderr, "peftbench slurm: %s\n", err);
    }
    for (int k = 0; k < 3; k++) {
        if (k > 0) {
            sbatch_common(&av[k], o, jname[k], logpat[k], k == 1);
            char a[96];
            if (k == 1) {
                if (o->max_running) snprintf(a, sizeof a, "--array=0-%d%%%d", N - 1, o->max_running);
                else snprintf(a, sizeof a, "--array=0-%d", N - 1);
                av_add(&av[k], a);
                av_addf(&av[k], "--dependency=afterok:%s", o->dry_run ? "<prepare job id>" : ids[0]);
                // a failed prepare cancels the array (else it would wait forever, DependencyNeverSatisfied)
                av_add(&av[k], "--kill-on-invalid-dep=yes");
            } else {
                av_addf(&av[k], "--dependency=afterany:%s", o->dry_run ? "<array job id>" : ids[1]);
            }
            av_add(&av[k], path[k]);
        }
        if (o->dry_run) {
            char *c = av_show(&av[k]);
            printf("%s\n", c);
            free(c);
        } else if (submit(&av[k], ids[k], sizeof ids[k])) {
            cancel(ids, k);
            rc = 1;
            goto done;
        }
    }
    if (o->dry_run) {
        rc = 0;
        goto done;
    }
    // Record the submission (resubmission refuses while one of these jobs is active).
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddNumberToObject(rec, "n", nsub);
    cJSON_AddNumberToObject(rec, "time", (double)time(NULL));
    for (int k = 0; k < 3; k++) cJSON_AddStringToObject(rec, names[k], ids[k]);
    cJSON_AddNumberToObject(rec, "tasks", N);
    cJSON_AddNumberToObject(rec, "cells", ntodo);
    cJSON_AddStringToObject(rec, "mode", shard_mode ? "shard" : "cells");
    cJSON *cellids = cJSON_AddArrayToObject(rec, "cell_ids");
    for (int k = 0; k < ntodo; k++) cJSON_AddItemToArray(cellids, cJSON_CreateString(g.cells[todo[k]].id));
    cJSON_AddItemToArray(list, rec);
    if (pb_json_write_atomic(subs_path, subs, err, sizeof err)) fprintf(stderr, "peftbench slurm: %s\n", err);
    printf("submission %d: %d cells in %d array tasks\n", nsub, ntodo, N);
    printf("prepare job %s\narray job %s (tasks 0-%d)\nreport job %s\n", ids[0], ids[1], N - 1, ids[2]);
    printf("scripts and logs: %s\nprogress: peftbench status %s\n", sub_dir, out);
    rc = 0;
done:
    for (int k = 0; k < 3; k++) {
        av_free(&av[k]);
        free(sc[k].d);
    }
    cJSON_Delete(subs);
    free(todo);
    pb_grid_free(&g);
    pb_suite_free(&s);
    return rc;
}

int pb_cmd_slurm(int argc, char **argv) {
    slurm_opts o;
    memset(&o, 0, sizeof o);
    o.device = PB_DEVICE_CPU;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--dry-run")) {
            o.dry_run = 1;
        } else if (!has && a[0] == '-') {
            fprintf(stderr, "peftbench slurm: %s needs a value (or is unknown)\n", a);
            return 2;
        } else if (!strcmp(a, "--out")) {
            o.out = argv[++i];
        } else if (!strcmp(a, "--tasks")) {
            if (!pos_int(a, argv[++i], &o.tasks)) return 2;
        } else if (!strcmp(a, "--cells-per-task")) {
            if (!pos_int(a, argv[++i], &o.cells_per_task)) return 2;
        } else if (!strcmp(a, "--cpus-per-task")) {
            if (!pos_int(a, argv[++i], &o.cpus)) return 2;
        } else if (!strcmp(a, "--max-running")) {
            if (!pos_int(a, argv[++i], &o.max_running)) return 2;
        } else if (!strcmp(a, "--partition")) {
            o.partition = argv[++i];
        } else if (!strcmp(a, "--time")) {
            o.time = argv[++i];
        } else if (!strcmp(a, "--mem")) {
            o.mem = argv[++i];
        } else if (!strcmp(a, "--gres")) {
            o.gres = argv[++i];
        } else if (!strcmp(a, "--baseline")) {
            o.baseline = argv[++i];
        } else if (!strcmp(a, "--sbatch-arg")) {
            if (o.nextra == MAX_SBATCH_ARGS) {
                fprintf(stderr, "peftbench slurm: more than %d --sbatch-arg\n", MAX_SBATCH_ARGS);
                return 2;
            }
            o.extra[o.nextra++] = argv[++i];
        } else if (!strcmp(a, "--device")) {
            if (pb_cli_device_arg("slurm", argv[++i], &o.device)) return 2;
        } else if (!strcmp(a, "--pretrain-seed")) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || !argv[i][0] || v < 0 || v > PB_SEED_MAX) {
                fprintf(stderr, "peftbench slurm: --pretrain-seed expects an integer in [0, %d], got '%s'\n",
                        PB_SEED_MAX, argv[i]);
                return 2;
            }
            o.pretrain_seed = (int)v;
            o.pretrain_seed_set = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "peftbench slurm: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!o.suite) {
            o.suite = a;
        } else {
            fprintf(stderr, "peftbench slurm: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!o.suite) {
        usage(stderr);
        return 2;
    }
    if (o.tasks && o.cells_per_task) {
        fprintf(stderr, "peftbench slurm: --tasks and --cells-per-task exclude each other\n");
        return 2;
    }
    return slurm_main(&o);
}
