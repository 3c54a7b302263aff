// metrics.c: accuracy, MCC, F1, Pearson, Spearman (see metrics.h for degenerate cases).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../engine/common.h"
#include "metrics.h"

double pb_metric_accuracy(const int32_t *pred, const int32_t *label, int n) {
    if (n <= 0) return 0.0;
    int64_t ok = 0;
    for (int i = 0; i < n; i++) ok += pred[i] == label[i];
    return (double)ok / n;
}

static void confusion(const int32_t *pred, const int32_t *label, int n, double *tp, double *tn, double *fp,
                      double *fn) {
    *tp = *tn = *fp = *fn = 0;
    for (int i = 0; i < n; i++) {
        int p = pred[i] != 0, l = label[i] != 0;
        if (p && l) *tp += 1;
        else if (!p && !l) *tn += 1;
        else if (p) *fp += 1;
        else *fn += 1;
    }
}

double pb_metric_mcc(const int32_t *pred, const int32_t *label, int n) {
    double tp, tn, fp, fn;
    confusion(pred, label, n, &tp, &tn, &fp, &fn);
    double den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
    if (den == 0.0) return 0.0;
    return (tp * tn - fp * fn) / sqrt(den);
}

double pb_metric_f1(const int32_t *pred, const int32_t *label, int n) {
    double tp, tn, fp, fn;
    confusion(pred, label, n, &tp, &tn, &fp, &fn);
    if (tp == 0.0) return 0.0;
    return 2.0 * tp / (2.0 * tp + fp + fn);
}

static double pearson_d(const double *x, const double *y, int n) {
    if (n <= 1) return 0.0;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double a = x[i] - mx, b = y[i] - my;
        sxy += a * b, sxx += a * a, syy += b * b;
    }
    if (sxx == 0.0 || syy == 0.0) return 0.0;
    double r = sxy / sqrt(sxx * syy);
    return r > 1.0 ? 1.0 : r < -1.0 ? -1.0 : r;
}

double pb_metric_pearson(const float *x, const float *y, int n) {
    if (n <= 1) return 0.0;
    double *a = pb_xmalloc(sizeof(double) * n), *b = pb_xmalloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) a[i] = x[i], b[i] = y[i];
    double r = pearson_d(a, b, n);
    free(a);
    free(b);
    return r;
}

static int cmp_idx(const void *pa, const void *pb, void *key) {
    int i = *(const int *)pa, j = *(const int *)pb;
    float a = ((const float *)key)[i], b = ((const float *)key)[j];
    if (a < b) return -1;
    if (a > b) return 1;
    return (i > j) - (i < j); // stable for determinism
}

// Average ranks (1-based) of v; ties share the mean of their positions.
static void avg_ranks(const float *v, int n, double *r) {
    int *idx = pb_xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, n, sizeof(int), cmp_idx, (void *)v);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) j++;
        double avg = (i + j) / 2.0 + 1.0;
        for (int k = i; k <= j; k++) r[idx[k]] = avg;
        i = j + 1;
    }
    free(idx);
}

double pb_metric_spearman(const float *x, const float *y, int n) {
    if (n <= 1) return 0.0;
    double *a = pb_xmalloc(sizeof(double) * n), *b = pb_xmalloc(sizeof(double) * n);
    avg_ranks(x, n, a);
    avg_ranks(y, n, b);
    double r = pearson_d(a, b, n);
    free(a);
    free(b);
    return r;
}

double pb_metric_by_name(const char *name, const int32_t *pred, const int32_t *label, const float *x,
                         const float *y, int n) {
    if (strcmp(name, "accuracy") == 0) return pb_metric_accuracy(pred, label, n);
    if (strcmp(name, "mcc") == 0) return pb_metric_mcc(pred, label, n);
    if (strcmp(name, "f1") == 0) return pb_metric_f1(pred, label, n);
    if (strcmp(name, "pearson") == 0) return pb_metric_pearson(x, y, n);
    if (strcmp(name, "spearman") == 0) return pb_metric_spearman(x, y, n);
    return NAN;
}
