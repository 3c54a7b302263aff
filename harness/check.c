// check.c: regression check of a results directory against a baseline results.json.
#include "check.h"
#include "jsonutil.h"
#include "report.h"
#include <math.h>
#include <string.h>

pb_status pb_check(const char *dir, const char *baseline, double tol, FILE *out, int *bad, char *err,
                   size_t errlen) {
    *bad = 0;
    cJSON *base = NULL;
    pb_status st = pb_json_read_file(baseline, &base, err, errlen);
    if (st) return st;
    const cJSON *rows = cJSON_GetObjectItem(base, "rows");
    if (!cJSON_IsArray(rows)) {
        cJSON_Delete(base);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: not a peftbench results.json (no \"rows\" list)", baseline);
    }
    // A baseline that cannot fail is an error: no rows, or a row without a finite numeric median.
    if (cJSON_GetArraySize(rows) == 0) {
        cJSON_Delete(base);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: \"rows\" is empty: nothing to check against", baseline);
    }
    int ri = 0;
    for (const cJSON *b = rows->child; b; b = b->next, ri++) {
        const cJSON *med = cJSON_GetObjectItem(b, "median");
        if (!cJSON_IsObject(b) || !cJSON_IsNumber(med) || !isfinite(med->valuedouble)) {
            cJSON_Delete(base);
            return pb_errf(PB_ERR_FORMAT, err, errlen,
                           "%s: rows[%d].median: expected a finite number (a failed cell in the baseline? "
                           "regenerate it from a run where every cell finished)", baseline, ri);
        }
    }
    const cJSON *tb0 = cJSON_GetObjectItem(base, "tolerance");
    for (const cJSON *t = tb0 ? tb0->child : NULL; t; t = t->next)
        if ((!strcmp(t->string, "identical") || !strcmp(t->string, "different_numerics")) &&
            !(cJSON_IsNumber(t) && isfinite(t->valuedouble) && t->valuedouble >= 0)) {
            pb_errf(PB_ERR_FORMAT, err, errlen, "%s: tolerance.%s: expected a finite number >= 0", baseline, t->string);
            cJSON_Delete(base); // after the message: it names t's key
            return PB_ERR_FORMAT;
        }
    pb_record *R = NULL;
    int n = 0;
    pb_skips sk = {0};
    if ((st = pb_results_load(dir, &R, &n, &sk, err, errlen))) {
        cJSON_Delete(base);
        return st;
    }
    // skipped cells are not results: their rows show up as MISSING below
    pb_skips_print(&sk, "check", out);
    pb_skips_free(&sk);
    if (tol < 0) {
        // No --tol: the baseline's "tolerance" block decides, by whether this run reproduces the
        // baseline's numerics exactly (every cell's last training loss bit-identical).
        const cJSON *tb = cJSON_GetObjectItem(base, "tolerance");
        const cJSON *ti = cJSON_GetObjectItem(tb, "identical"), *td = cJSON_GetObjectItem(tb, "different_numerics");
        if (cJSON_IsNumber(ti) && cJSON_IsNumber(td)) {
            int compared = 0, same = 0;
            for (const cJSON *c = cJSON_GetObjectItem(base, "cells") ? cJSON_GetObjectItem(base, "cells")->child : NULL;
                 c; c = c->next) {
                const cJSON *id = cJSON_GetObjectItem(c, "id"), *l = cJSON_GetObjectItem(c, "train_loss_last");
                if (!cJSON_IsString(id) || !cJSON_IsNumber(l)) continue;
                for (int i = 0; i < n; i++)
                    if (!strcmp(R[i].id, id->valuestring)) {
                        compared++;
                        same += R[i].loss_last == l->valuedouble;
                    }
            }
            int identical = compared > 0 && same == compared;
            tol = identical ? ti->valuedouble : td->valuedouble;
            fprintf(out, "numerics: %d of %d cells reproduce the baseline's training loss bit for bit -> %s, tolerance %.2f points\n",
                    same, compared, identical ? "identical" : "different numerics (other CPU/BLAS/threads/build)", tol);
        } else {
            tol = 1.0;
        }
    }
    pb_agg *A = NULL;
    int na = 0;
    pb_aggregate(R, n, &A, &na, NULL, NULL);
    fprintf(out, "%-12s %-20s %-24s %-20s %9s %9s %8s  %s\n", "model", "method", "axes", "dataset", "baseline", "ours",
            "delta", "status");
    int idx = 0;
    for (const cJSON *b = rows->child; b; b = b->next, idx++) {
        const cJSON *jm = cJSON_GetObjectItem(b, "model"), *jk = cJSON_GetObjectItem(b, "method"),
                    *jd = cJSON_GetObjectItem(b, "dataset"), *jmed = cJSON_GetObjectItem(b, "median");
        const cJSON *jax = cJSON_GetObjectItem(b, "axes");
        if (!cJSON_IsString(jm) || !cJSON_IsString(jk) || !cJSON_IsString(jd)) {
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: rows[%d]: needs model, method, dataset strings", baseline, idx);
            break;
        }
        char *ax = jax ? pb_json_canonical(jax) : pb_xstrdup("{}");
        const pb_agg *g = NULL;
        for (int i = 0; i < na; i++)
            if (!strcmp(A[i].model, jm->valuestring) && !strcmp(A[i].method, jk->valuestring) &&
                !strcmp(A[i].dataset, jd->valuestring) && !strcmp(A[i].axes, ax))
                g = &A[i];
        double bv = jmed->valuedouble; // checked above: finite
        const char *status;
        double ours = g && g->n ? g->median : NAN;
        if (!g || g->n == 0) {
            status = g ? "FAILED (no finished seed)" : "MISSING";
            (*bad)++;
        } else if (!isfinite(ours)) { // NaN compares false below: it must not pass as "ok"
            status = "NOT FINITE";
            (*bad)++;
        } else if (ours < bv - tol - 1e-6) {
            // (1e-6 points: results.json stores medians as printed decimals, so an identical
            // result can read back a few ulps below the baseline.)
            status = "REGRESSION";
            (*bad)++;
        } else {
            status = "ok";
        }
        char b1[32] = "-", b2[32] = "-", b3[32] = "-";
        if (isfinite(bv)) snprintf(b1, sizeof(b1), "%.2f", bv);
        if (isfinite(ours)) snprintf(b2, sizeof(b2), "%.2f", ours);
        if (isfinite(bv) && isfinite(ours)) snprintf(b3, sizeof(b3), "%+.2f", ours - bv);
        char label[256];
        pb_axes_label(ax, label, sizeof label);
        fprintf(out, "%-12s %-20s %-24s %-20s %9s %9s %8s  %s\n", jm->valuestring, jk->valuestring,
                label[0] ? label : "-", jd->valuestring, b1, b2, b3, status);
        free(ax);
    }
    if (!st)
        fprintf(out, "%d baseline rows, tolerance %.2f points: %d regression(s)/missing\n", idx, tol, *bad);
    free(A);
    free(R);
    cJSON_Delete(base);
    return st;
}
