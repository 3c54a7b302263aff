// test_report_sweeps.c: pb_report_sweeps, the report's learning-rate sweep table, on hand-made
// aggregates: the best value and the edge flag of a bracketed, an unbracketed and a two-value
// sweep; a series of one value (a text model's own lr_scale [1] grid beside a ViT's sweep) is no
// sweep; a value that lacks a dataset of its block is not a candidate.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test_expect.h"
#include "harness/report.h"

static pb_agg A[64];
static int na;

// One aggregate: model, method, canonical axes JSON, table row and column, median (x100).
static void add(const char *model, const char *method, const char *axes, int row, int col, double median) {
    pb_agg *g = &A[na++];
    memset(g, 0, sizeof *g);
    snprintf(g->model, sizeof g->model, "%s", model);
    snprintf(g->method, sizeof g->method, "%s", method);
    snprintf(g->axes, sizeof g->axes, "%s", axes);
    snprintf(g->dataset, sizeof g->dataset, "d%d", col);
    g->n = 1;
    g->median = g->mean = median;
    g->row = row, g->col = col;
}

static const pb_sweep *find(const pb_sweep *S, int ns, const char *model, const char *method, const char *others) {
    for (int k = 0; k < ns; k++)
        if (!strcmp(S[k].model, model) && !strcmp(S[k].method, method) && !strcmp(S[k].others, others)) return &S[k];
    return NULL;
}

int main(void) {
    // block 1: model "vit", datasets 0 and 1; lora bracketed (best 1 of 0.3/1/3), head unbracketed
    // (best at 3, the largest), full over two values (best 0.3, the smallest)
    const double lr[3] = {0.3, 1, 3};
    const double lora[2][3] = {{60, 70, 65}, {50, 58, 57}}, head[2][3] = {{40, 45, 50}, {30, 31, 33}};
    int row = 0;
    for (int k = 0; k < 3; k++) {
        char ax[64], axr[64];
        snprintf(ax, sizeof ax, "{\"lr_scale\":%g}", lr[k]);
        snprintf(axr, sizeof axr, "{\"lr_scale\":%g,\"rank\":8}", lr[k]);
        for (int c = 0; c < 2; c++) {
            add("vit", "lora", axr, row, c, lora[c][k]);
            add("vit", "head", ax, row + 1, c, head[c][k]);
            if (k < 2) add("vit", "full", ax, row + 2, c, k == 0 ? 80 : 79);
        }
        row += 3;
    }
    // pissa at lr_scale 3 lacks dataset 1: 3 is no candidate although its d0 is the best
    add("vit", "pissa", "{\"lr_scale\":0.3,\"rank\":8}", row, 0, 50), add("vit", "pissa", "{\"lr_scale\":0.3,\"rank\":8}", row, 1, 50);
    add("vit", "pissa", "{\"lr_scale\":1,\"rank\":8}", row + 1, 0, 60), add("vit", "pissa", "{\"lr_scale\":1,\"rank\":8}", row + 1, 1, 60);
    add("vit", "pissa", "{\"lr_scale\":3,\"rank\":8}", row + 2, 0, 90);
    row += 3;
    // block 2: model "text", datasets 2 and 3, one lr_scale value only
    add("text", "lora", "{\"lr_scale\":1,\"rank\":8}", row, 2, 70), add("text", "lora", "{\"lr_scale\":1,\"rank\":8}", row, 3, 72);
    add("text", "head", "{\"lr_scale\":1}", row + 1, 2, 64), add("text", "head", "{\"lr_scale\":1}", row + 1, 3, 66);

    pb_sweep *S = NULL;
    int ns = pb_report_sweeps(A, na, 4, &S);
    EXPECT(ns == 4, "%d series (vit lora, head, full, pissa; no text series)", ns);
    const pb_sweep *s;
    EXPECT((s = find(S, ns, "vit", "lora", "rank=8")) && s->nx == 3 && s->best_x == 1 && !s->edge &&
               fabs(s->best_avg - 64) < 1e-12 && s->xmin == 0.3 && s->xmax == 3,
           "lora: nx %d best %g avg %g edge %d", s ? s->nx : -1, s ? s->best_x : NAN, s ? s->best_avg : NAN, s ? s->edge : -1);
    EXPECT((s = find(S, ns, "vit", "head", "")) && s->nx == 3 && s->best_x == 3 && s->edge, "head: best at the edge");
    EXPECT((s = find(S, ns, "vit", "full", "")) && s->nx == 2 && s->best_x == 0.3 && s->edge, "full: two values");
    EXPECT((s = find(S, ns, "vit", "pissa", "rank=8")) && s->nx == 2 && s->best_x == 1 && s->xmax == 1,
           "pissa: lr_scale 3 lacks a dataset (best %g, xmax %g)", s ? s->best_x : NAN, s ? s->xmax : NAN);
    EXPECT(!find(S, ns, "text", "lora", "rank=8") && !find(S, ns, "text", "head", ""), "a one-value series is no sweep");
    free(S);

    // only one-value series: no sweep at all
    na = 0;
    add("text", "lora", "{\"lr_scale\":1,\"rank\":8}", 0, 0, 70);
    add("text", "head", "{\"lr_scale\":1}", 1, 0, 64);
    S = NULL;
    ns = pb_report_sweeps(A, na, 1, &S);
    EXPECT(ns == 0 && !S, "%d series from one value each", ns);
    free(S);
    if (pb_test_fails) fprintf(stderr, "test_report_sweeps: %d failure(s)\n", pb_test_fails);
    return pb_test_fails ? 1 : 0;
}
