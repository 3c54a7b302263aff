// metrics.h: evaluation metrics (GLUE conventions, transformers glue_compute_metrics).
// defines: pb_metric_accuracy, pb_metric_mcc, pb_metric_f1, pb_metric_pearson, pb_metric_spearman,
//          pb_metric_by_name
#ifndef PB_METRICS_H
#define PB_METRICS_H

#include <stdint.h>

// Fraction of pred[i] == label[i]; 0 for n == 0.
double pb_metric_accuracy(const int32_t *pred, const int32_t *label, int n);
// Matthews correlation for binary labels {0,1} (any non-zero counts as 1). Returns 0 when the
// denominator is 0 (constant predictions or labels), as sklearn does.
double pb_metric_mcc(const int32_t *pred, const int32_t *label, int n);
// F1 of the positive class 1. Returns 0 when there are no true positives.
double pb_metric_f1(const int32_t *pred, const int32_t *label, int n);
// Pearson correlation; 0 when either vector is constant (scipy would give NaN).
double pb_metric_pearson(const float *x, const float *y, int n);
// Spearman rank correlation (Pearson on average ranks for ties); 0 for a constant vector.
double pb_metric_spearman(const float *x, const float *y, int n);
// Dispatch by name ("accuracy", "mcc", "f1", "pearson", "spearman"): classification metrics use
// pred/label, regression ones x/y. Returns NaN for an unknown name.
double pb_metric_by_name(const char *name, const int32_t *pred, const int32_t *label, const float *x,
                         const float *y, int n);

#endif
