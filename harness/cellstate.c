// cellstate.c: in-flight markers and cell states (cellstate.h).
#include "cellstate.h"
#include "jsonutil.h"
#include "sharedfs.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

const char *const pb_cell_state_names[PB_CELL_NSTATES] = {"done", "failed", "running", "stale", "missing"};

static void marker_path(const char *dir, const char *id, char *p, size_t n) {
    snprintf(p, n, "%s/running/%s.json", dir, id);
}

pb_status pb_running_mark(const char *dir, const char *id, char *err, size_t errlen) {
    pb_self me;
    pb_self_get(&me);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "schema", "peftbench.running/1");
    cJSON_AddStringToObject(m, "host", me.host);
    cJSON_AddNumberToObject(m, "pid", (double)me.pid);
    cJSON_AddStringToObject(m, "slurm_job_id", me.job);
    cJSON_AddStringToObject(m, "slurm_array_job_id", me.array_job);
    cJSON_AddStringToObject(m, "slurm_array_task_id", me.array_task);
    cJSON_AddNumberToObject(m, "started", (double)time(NULL));
    char p[4200];
    marker_path(dir, id, p, sizeof p);
    pb_status st = pb_json_write_atomic(p, m, err, errlen);
    cJSON_Delete(m);
    return st;
}

void pb_running_touch(const char *dir, const char *id) {
    char p[4200];
    marker_path(dir, id, p, sizeof p);
    if (utime(p, NULL)) {
        // a missing marker only weakens status' liveness guess; the cell goes on
    }
}

void pb_running_clear(const char *dir, const char *id) {
    char p[4200];
    marker_path(dir, id, p, sizeof p);
    unlink(p);
}

int pb_running_any(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/running", dir);
    DIR *d = opendir(p);
    if (!d) return 0;
    struct dirent *de;
    int any = 0;
    while (!any && (de = readdir(d))) {
        size_t L = strlen(de->d_name);
        any = L > 5 && !strcmp(de->d_name + L - 5, ".json");
    }
    closedir(d);
    return any;
}

void pb_cell_state_get(const char *dir, const char *id, const pb_squeue *q, pb_cell_info *ci) {
    memset(ci, 0, sizeof *ci);
    char p[4200];
    snprintf(p, sizeof p, "%s/cells/%s.json", dir, id);
    cJSON *j = NULL;
    // The result first: it is written before the marker is removed.
    if (pb_file_exists(p) && pb_json_read_file(p, &j, NULL, 0) == PB_OK) {
        const cJSON *st = cJSON_GetObjectItem(j, "status");
        if (cJSON_IsString(st)) {
            ci->state = strcmp(st->valuestring, "ok") ? PB_CELL_FAILED : PB_CELL_DONE;
            if (ci->state == PB_CELL_FAILED) pb_jcopy(j, "reason", ci->reason, sizeof ci->reason);
            cJSON_Delete(j);
            return;
        }
        cJSON_Delete(j); // no status: not finished (run re-runs it), so the marker decides
    }
    marker_path(dir, id, p, sizeof p);
    cJSON *m = NULL;
    struct stat sb;
    if (stat(p, &sb) || pb_json_read_file(p, &m, NULL, 0) != PB_OK) {
        ci->state = PB_CELL_MISSING;
        return;
    }
    pb_jcopy(m, "host", ci->host, sizeof ci->host);
    ci->pid = (long)pb_jnum(m, "pid", 0);
    pb_jcopy(m, "slurm_job_id", ci->job, sizeof ci->job);
    const char *aj = pb_jstr(m, "slurm_array_job_id", ""), *at = pb_jstr(m, "slurm_array_task_id", "");
    if (aj[0] && at[0]) snprintf(ci->task, sizeof ci->task, "%s_%s", aj, at);
    cJSON_Delete(m);
    pb_self me;
    pb_self_get(&me);
    int same_host = !strcmp(ci->host, me.host);
    int pid_alive = ci->pid > 0 && (kill((pid_t)ci->pid, 0) == 0 || errno == EPERM);
    if (same_host && !pid_alive) {
        ci->state = PB_CELL_STALE;
        snprintf(ci->reason, sizeof ci->reason, "process %ld on %s is gone", ci->pid, ci->host);
        return;
    }
    int job_alive = q && ci->job[0] ? pb_squeue_alive(q, ci->job) : -1;
    if (job_alive == 0) {
        ci->state = PB_CELL_STALE;
        snprintf(ci->reason, sizeof ci->reason, "Slurm job %s is no longer queued or running", ci->job);
        return;
    }
    if (job_alive == 1 || same_host) {
        ci->state = PB_CELL_RUNNING;
        return;
    }
    // Another host and no word from Slurm: trust the heartbeat for a while.
    const char *e = getenv("PEFTBENCH_STALE_S");
    double lim = e && atof(e) > 0 ? atof(e) : PB_STALE_DEFAULT_S;
    double age = difftime(time(NULL), sb.st_mtime);
    if (age > lim) {
        ci->state = PB_CELL_STALE;
        snprintf(ci->reason, sizeof ci->reason, "no heartbeat from %s pid %ld for %.0f s", ci->host, ci->pid, age);
    } else {
        ci->state = PB_CELL_RUNNING;
    }
}
