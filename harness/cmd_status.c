// cmd_status.c: `peftbench status DIR [--json]`: where every cell of a results directory stands
// (cellstate.h: done, failed, running, stale, missing), per method and dataset, from the manifest
// `run` and `slurm` write, the result files and the in-flight markers (checked against squeue
// when Slurm is there). Also lists the Slurm submissions recorded in DIR/slurm/submissions.json.
#include <stdio.h>
#include <string.h>
#include "cellstate.h"
#include "cli.h"
#include "grid.h"
#include "jsonutil.h"

typedef struct {
    char method[64], dataset[128];
    int n[PB_CELL_NSTATES];
} group;

static void usage(FILE *f) {
    fprintf(f, "usage: peftbench status DIR [--json]\n"
               "Cells of the suite in DIR (its manifest.json): done, failed, running (its process or Slurm job\n"
               "is alive), stale (it was running, but its process or job is gone: resubmit), missing; per\n"
               "method and dataset, then the failed, running and stale cells one by one. `peftbench slurm`\n"
               "and `peftbench run --retry-failed` run exactly the failed, stale and missing ones.\n"
               "Exit status: 0, or 2 when DIR has no manifest.\n");
}

// Labels of every cell in grid order: from the manifest, else by expanding its suite file again.
// Fills ids/labels (owned by the returned cJSON objects); returns the cell count or -1.
static int cell_list(const cJSON *man, const char *dir, cJSON **labels_out, char *err, size_t errlen) {
    const cJSON *ids = cJSON_GetObjectItem(man, "cells"), *lab = cJSON_GetObjectItem(man, "cell_labels");
    if (!cJSON_IsArray(ids)) {
        pb_errf(PB_ERR_FORMAT, err, errlen, "%s/manifest.json: no \"cells\" array", dir);
        return -1;
    }
    int n = cJSON_GetArraySize(ids);
    cJSON *out = cJSON_CreateArray();
    if (cJSON_IsArray(lab) && cJSON_GetArraySize(lab) == n) {
        int i = 0;
        for (const cJSON *c = lab->child, *id = ids->child; c && id; c = c->next, id = id->next, i++) {
            cJSON *o = cJSON_Duplicate(c, 1);
            cJSON_AddStringToObject(o, "id", cJSON_IsString(id) ? id->valuestring : "");
            cJSON_AddItemToArray(out, o);
        }
        *labels_out = out;
        return n;
    }
    // An older manifest (no labels): the suite file it names gives them, if it still matches.
    pb_suite s;
    pb_grid g = {0};
    const char *sf = pb_jstr(man, "suite_file", "");
    if (pb_suite_load(sf, &s, err, errlen) || pb_grid_expand(&s, &g, err, errlen)) {
        pb_suite_free(&s);
        cJSON_Delete(out);
        return -1;
    }
    for (const cJSON *id = ids->child; id; id = id->next) {
        cJSON *o = cJSON_CreateObject();
        const char *want = cJSON_IsString(id) ? id->valuestring : "";
        cJSON_AddStringToObject(o, "id", want);
        for (int i = 0; i < g.n; i++)
            if (!strcmp(g.cells[i].id, want)) {
                cJSON_AddStringToObject(o, "model", g.cells[i].model);
                cJSON_AddStringToObject(o, "dataset", g.cells[i].dataset);
                cJSON_AddStringToObject(o, "method", g.cells[i].method);
                cJSON_AddNumberToObject(o, "seed", g.cells[i].seed);
                break;
            }
        cJSON_AddItemToArray(out, o);
    }
    pb_grid_free(&g);
    pb_suite_free(&s);
    *labels_out = out;
    return n;
}

int pb_cmd_status(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] != '-' && !dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "peftbench status: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }
    char err[4096], path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    cJSON *man = NULL, *labels = NULL;
    if (!pb_file_exists(path)) {
        fprintf(stderr, "peftbench status: %s: no such file (not a results directory of `run` or `slurm`)\n", path);
        return 2;
    }
    if (pb_json_read_file(path, &man, err, sizeof err)) {
        fprintf(stderr, "peftbench status: %s\n", err);
        return 2;
    }
    int n = cell_list(man, dir, &labels, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "peftbench status: %s\n", err);
        cJSON_Delete(man);
        return 2;
    }
    pb_squeue q;
    memset(&q, 0, sizeof q);
    snprintf(path, sizeof path, "%s/slurm/submissions.json", dir);
    cJSON *subs = NULL;
    if (pb_file_exists(path) && pb_json_read_file(path, &subs, err, sizeof err))
        fprintf(stderr, "peftbench status: %s\n", err); // still report the cells
    if (pb_running_any(dir) || subs) pb_squeue_snapshot(&q);

    group *gr = pb_xcalloc((size_t)(n ? n : 1), sizeof(group));
    int ng = 0, total[PB_CELL_NSTATES] = {0};
    cJSON *cells = cJSON_CreateArray();
    int idx = 0;
    for (const cJSON *c = labels->child; c; c = c->next, idx++) {
        pb_cell_info ci;
        const char *id = pb_jstr(c, "id", "");
        pb_cell_state_get(dir, id, q.ok ? &q : NULL, &ci);
        const char *m = pb_jstr(c, "method", "?"), *d = pb_jstr(c, "dataset", "?");
        int k = 0;
        while (k < ng && (strcmp(gr[k].method, m) || strcmp(gr[k].dataset, d))) k++;
        if (k == ng) {
            snprintf(gr[k].method, sizeof gr[k].method, "%s", m);
            snprintf(gr[k].dataset, sizeof gr[k].dataset, "%s", d);
            ng++;
        }
        gr[k].n[ci.state]++;
        total[ci.state]++;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddNumberToObject(o, "index", idx);
        cJSON_AddStringToObject(o, "model", pb_jstr(c, "model", "?"));
        cJSON_AddStringToObject(o, "dataset", d);
        cJSON_AddStringToObject(o, "method", m);
        cJSON_AddNumberToObject(o, "seed", pb_jnum(c, "seed", 0));
        cJSON_AddStringToObject(o, "state", pb_cell_state_names[ci.state]);
        if (ci.reason[0]) cJSON_AddStringToObject(o, "reason", ci.reason);
        if (ci.host[0]) {
            cJSON_AddStringToObject(o, "host", ci.host);
            cJSON_AddNumberToObject(o, "pid", (double)ci.pid);
        }
        if (ci.job[0]) cJSON_AddStringToObject(o, "slurm_job", ci.job);
        if (ci.task[0]) cJSON_AddStringToObject(o, "slurm_task", ci.task);
        cJSON_AddItemToArray(cells, o);
    }
    // Submissions, each with whether a job of it is still queued or running.
    cJSON *sj = cJSON_CreateArray();
    const cJSON *sl = cJSON_GetObjectItem(subs, "submissions");
    for (const cJSON *s = cJSON_IsArray(sl) ? sl->child : NULL; s; s = s->next) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", pb_jnum(s, "n", 0));
        int active = 0, known = q.ok;
        const char *kinds[3] = {"prepare", "array", "report"};
        for (int k = 0; k < 3; k++) {
            const char *id = pb_jstr(s, kinds[k], "");
            cJSON_AddStringToObject(o, kinds[k], id);
            active |= pb_squeue_alive(&q, id) == 1;
        }
        cJSON_AddNumberToObject(o, "cells", pb_jnum(s, "cells", 0));
        cJSON_AddNumberToObject(o, "tasks", pb_jnum(s, "tasks", 0));
        if (known) cJSON_AddBoolToObject(o, "active", active);
        cJSON_AddItemToArray(sj, o);
    }
    pb_squeue_free(&q);

    if (json) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "schema", "peftbench.status/1");
        cJSON_AddStringToObject(r, "suite", pb_jstr(man, "suite", ""));
        cJSON_AddStringToObject(r, "dir", dir);
        cJSON_AddNumberToObject(r, "total", n);
        cJSON *cnt = cJSON_AddObjectToObject(r, "counts");
        for (int k = 0; k < PB_CELL_NSTATES; k++) cJSON_AddNumberToObject(cnt, pb_cell_state_names[k], total[k]);
        cJSON *ga = cJSON_AddArrayToObject(r, "groups");
        for (int i = 0; i < ng; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "method", gr[i].method);
            cJSON_AddStringToObject(o, "dataset", gr[i].dataset);
            for (int k = 0; k < PB_CELL_NSTATES; k++) cJSON_AddNumberToObject(o, pb_cell_state_names[k], gr[i].n[k]);
            cJSON_AddItemToArray(ga, o);
        }
        cJSON_AddItemToObject(r, "cells", cells);
        cJSON_AddItemToObject(r, "submissions", sj);
        cells = sj = NULL;
        char *txt = cJSON_Print(r);
        printf("%s\n", txt);
        free(txt);
        cJSON_Delete(r);
    } else {
        printf("suite %s: %d cells: %d done, %d failed, %d running, %d stale, %d missing  (%s)\n",
               pb_jstr(man, "suite", "?"), n, total[PB_CELL_DONE], total[PB_CELL_FAILED], total[PB_CELL_RUNNING],
               total[PB_CELL_STALE], total[PB_CELL_MISSING], dir);
        printf("%-20s %-28s %6s %6s %7s %5s %7s\n", "method", "dataset", "done", "failed", "running", "stale",
               "missing");
        for (int i = 0; i < ng; i++)
            printf("%-20s %-28s %6d %6d %7d %5d %7d\n", gr[i].method, gr[i].dataset, gr[i].n[0], gr[i].n[1],
                   gr[i].n[2], gr[i].n[3], gr[i].n[4]);
        for (const cJSON *o = cells->child; o; o = o->next) {
            const char *st = pb_jstr(o, "state", "");
            if (!strcmp(st, "done") || !strcmp(st, "missing")) continue;
            printf("%-7s %s %s %s %s seed %d", st, pb_jstr(o, "id", ""), pb_jstr(o, "model", ""),
                   pb_jstr(o, "method", ""), pb_jstr(o, "dataset", ""), (int)pb_jnum(o, "seed", 0));
            if (cJSON_GetObjectItem(o, "host"))
                printf("  host %s pid %d", pb_jstr(o, "host", ""), (int)pb_jnum(o, "pid", 0));
            if (cJSON_GetObjectItem(o, "slurm_job")) printf(" job %s", pb_jstr(o, "slurm_job", ""));
            if (cJSON_GetObjectItem(o, "slurm_task")) printf(" (task %s)", pb_jstr(o, "slurm_task", ""));
            if (cJSON_GetObjectItem(o, "reason")) printf(": %s", pb_jstr(o, "reason", ""));
            printf("\n");
        }
        for (const cJSON *o = sj->child; o; o = o->next) {
            const cJSON *a = cJSON_GetObjectItem(o, "active");
            printf("slurm submission %d: %d cells in %d tasks; jobs prepare %s, array %s, report %s%s\n",
                   (int)pb_jnum(o, "n", 0), (int)pb_jnum(o, "cells", 0), (int)pb_jnum(o, "tasks", 0),
                   pb_jstr(o, "prepare", ""), pb_jstr(o, "array", ""), pb_jstr(o, "report", ""),
                   !a ? " (squeue unavailable)" : cJSON_IsTrue(a) ? " (active)" : " (finished)");
        }
    }
    cJSON_Delete(cells);
    cJSON_Delete(sj);
    cJSON_Delete(subs);
    cJSON_Delete(labels);
    cJSON_Delete(man);
    free(gr);
    return 0;
}
