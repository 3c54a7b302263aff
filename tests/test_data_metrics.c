// test_data_metrics.c: metrics against hand-computed values, incl. degenerate inputs.
#include "../datasets/metrics.h"
#include "test_data_util.h"

int main(void) {
    // accuracy
    int32_t p1[] = {1, 0, 1, 1, 0, 2}, l1[] = {1, 1, 1, 0, 0, 2};
    EXPECT_NEAR(pb_metric_accuracy(p1, l1, 6), 4.0 / 6.0, 1e-12);
    EXPECT_NEAR(pb_metric_accuracy(p1, l1, 0), 0.0, 0);
    // binary confusion for p/l below: tp=3 tn=2 fp=1 fn=2
    int32_t p[] = {1, 1, 1, 1, 0, 0, 0, 0}, l[] = {1, 1, 1, 0, 1, 1, 0, 0};
    // MCC = (3*2 - 1*2) / sqrt(4*5*3*4) = 4 / sqrt(240)
    EXPECT_NEAR(pb_metric_mcc(p, l, 8), 4.0 / sqrt(240.0), 1e-12);
    // F1 = 2*3 / (2*3 + 1 + 2) = 6/9
    EXPECT_NEAR(pb_metric_f1(p, l, 8), 6.0 / 9.0, 1e-12);
    // perfect and inverted
    EXPECT_NEAR(pb_metric_mcc(l, l, 8), 1.0, 1e-12);
    int32_t inv[8];
    for (int i = 0; i < 8; i++) inv[i] = 1 - l[i];
    EXPECT_NEAR(pb_metric_mcc(inv, l, 8), -1.0, 1e-12);
    // degenerate: constant predictions -> MCC 0 (not NaN); no positives predicted -> F1 0
    int32_t zeros[8] = {0};
    EXPECT(pb_metric_mcc(zeros, l, 8) == 0.0, "constant predictions MCC %g", pb_metric_mcc(zeros, l, 8));
    EXPECT(pb_metric_f1(zeros, l, 8) == 0.0, "F1 without positives");
    EXPECT(pb_metric_mcc(zeros, zeros, 8) == 0.0, "all-constant MCC");
    // Pearson: x = 1..5, y = 2,4,5,4,5 -> r = 6 / sqrt(10 * 6) (hand: sxy = 6, sxx = 10, syy = 6)
    float x[] = {1, 2, 3, 4, 5}, y[] = {2, 4, 5, 4, 5};
    EXPECT_NEAR(pb_metric_pearson(x, y, 5), 6.0 / sqrt(60.0), 1e-7);
    // Spearman with ties: ranks(y) = 1, 2.5, 4.5, 2.5, 4.5; ranks(x) = 1..5
    // sxy = (-2)(-2) + (-1)(-0.5) + 0 + 1(-0.5) + 2(1.5) = 7; sxx = 10; syy = 4+0.25+2.25+0.25+2.25 = 9
    EXPECT_NEAR(pb_metric_spearman(x, y, 5), 7.0 / sqrt(90.0), 1e-12);
    // monotone non-linear -> Spearman exactly 1
    float z[] = {1, 8, 27, 64, 125};
    EXPECT_NEAR(pb_metric_spearman(x, z, 5), 1.0, 1e-12);
    // degenerate: constant vector -> 0 (documented), not NaN
    float c[] = {3, 3, 3, 3, 3};
    EXPECT(pb_metric_pearson(x, c, 5) == 0.0, "constant Pearson");
    EXPECT(pb_metric_spearman(c, x, 5) == 0.0, "constant Spearman");
    EXPECT(pb_metric_pearson(x, y, 1) == 0.0, "n=1");
    EXPECT_NEAR(pb_metric_by_name("f1", p, l, NULL, NULL, 8), 6.0 / 9.0, 1e-12);
    EXPECT(isnan(pb_metric_by_name("bogus", p, l, NULL, NULL, 8)), "unknown metric");
    if (pb_test_fails) fprintf(stderr, "%d failure(s)\n", pb_test_fails);
    else printf("test_data_metrics: ok\n");
    return pb_test_fails ? 1 : 0;
}
