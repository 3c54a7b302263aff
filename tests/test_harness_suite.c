// test_harness_suite.c: suite parsing errors (one clear message each), grid expansion, cell ids,
// canonical JSON and FNV-1a known vectors; the paper suites against their reference tables.
#include <dirent.h>
#include "test_expect.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "harness/grid.h"
#include "harness/jsonutil.h"
#include "harness/report.h"
#include "methods/method.h"


#define BASE_MODELS "\"models\": [{\"label\": \"m\", \"config\": {\"arch\": \"vit\", \"hidden\": 32, \"layers\": 2, \"heads\": 2, \"intermediate\": 64}}]"

// Parses text and expects failure whose message contains every needle.
static void expect_error(const char *text, const char *n1, const char *n2) {
    pb_suite s;
    char err[2048] = "";
    pb_status st = pb_suite_parse(text, "t.json", &s, err, sizeof(err));
    if (st == PB_OK) {
        pb_grid g;
        st = pb_grid_expand(&s, &g, err, sizeof(err));
        if (st == PB_OK) pb_grid_free(&g);
    }
    EXPECT(st != PB_OK, "expected an error for: %s", text);
    EXPECT(strstr(err, n1) != NULL, "error '%s' lacks '%s'", err, n1);
    if (n2) EXPECT(strstr(err, n2) != NULL, "error '%s' lacks '%s'", err, n2);
    pb_suite_free(&s);
}

// A paper suite and its reference table agree (issue 13): every method entry's ref names a row of
// the table for one of the suite's models (except the refs in no_cells: methods the papers publish no
// cells for), every dataset ref is a column, and every complete row's avg is the plain mean of its
// cells to the printed rounding (0.1: FGVC's RLRR, papers.md 5.7) and its VTAB group means match the
// cells to 0.06. skip_avg: one row whose printed mean is a known transcription error (papers.md 6.6).
static void check_paper_suite(const char *path, const char *const *no_cells, const char *skip_avg) {
    pb_suite s;
    pb_reference ref;
    char err[2048] = "";
    if (pb_suite_load(path, &s, err, sizeof(err)) != PB_OK) {
        EXPECT(0, "%s", err);
        pb_suite_free(&s);
        return;
    }
    EXPECT(pb_reference_load(s.reference, &ref, err, sizeof(err)) == PB_OK && ref.root, "%s: %s", path, err);
    if (!ref.root) {
        pb_suite_free(&s);
        return;
    }
    for (int i = 0; i < s.nmethods; i++) {
        const char *r = pb_jstr(s.methods[i], "ref", "");
        int listed = 0, hit = 0;
        for (int k = 0; no_cells[k]; k++) listed |= !strcmp(no_cells[k], r);
        for (int m = 0; m < s.nmodels; m++) hit |= pb_reference_row(&ref, r, pb_jstr(s.models[m], "label", "")) != NULL;
        EXPECT(r[0] && (hit || listed), "%s: methods[%d] ref '%s' matches no reference row", path, i, r);
        EXPECT(!(hit && listed), "%s: ref '%s' has a row now: drop it from no_cells", path, r);
    }
    for (int d = 0; d < s.ndatasets; d++) {
        const char *r = pb_jstr(s.datasets[d], "ref", "");
        int col = 0;
        for (const cJSON *c = ref.columns->child; c; c = c->next) col |= cJSON_IsString(c) && !strcmp(c->valuestring, r);
        EXPECT(col, "%s: dataset ref '%s' is not a reference column", path, r);
    }
    int ncols = cJSON_GetArraySize(ref.columns), nrows = 0;
    for (const cJSON *row = ref.rows->child; row; row = row->next, nrows++) {
        const char *name = pb_jstr(row, "method", "?");
        double x[64], sum = 0;
        int n = 0;
        for (const cJSON *c = ref.columns->child; c && n < 64; c = c->next) {
            x[n] = pb_reference_value(row, c->valuestring);
            if (x[n] != x[n]) break; // NaN: a cell not published
            sum += x[n++];
        }
        const cJSON *avg = cJSON_GetObjectItem(row, "avg");
        EXPECT(cJSON_IsNumber(avg), "%s: row '%s' has no avg", path, name);
        if (n == ncols && cJSON_IsNumber(avg) && !(skip_avg && !strcmp(name, skip_avg)))
            EXPECT(fabs(sum / n - avg->valuedouble) <= 0.1 + 1e-9, "%s: row '%s': avg %g, cells' mean %.3f", path,
                   name, avg->valuedouble, sum / n);
        const cJSON *g = cJSON_GetObjectItem(row, "groups");
        if (g && n == ncols && ncols == 19) { // VTAB-1k: 7 natural, 4 specialized, 8 structured
            const char *gn[3] = {"Natural", "Specialized", "Structured"};
            int lo[4] = {0, 7, 11, 19};
            for (int k = 0; k < 3; k++) {
                double m = 0;
                for (int j = lo[k]; j < lo[k + 1]; j++) m += x[j] / (lo[k + 1] - lo[k]);
                const cJSON *gv = cJSON_GetObjectItem(g, gn[k]);
                EXPECT(cJSON_IsNumber(gv) && fabs(gv->valuedouble - m) <= 0.06, "%s: row '%s': %s mean %.3f", path,
                       name, gn[k], m);
            }
        }
    }
    EXPECT(nrows > 0, "%s: empty reference table", path);
    pb_reference_free(&ref);
    pb_suite_free(&s);
}

int main(void) {
    // FNV-1a 64 known vectors (Fowler/Noll/Vo reference values).
    EXPECT(pb_hash64(PB_HASH_INIT, "", 0) == 0xcbf29ce484222325ULL, "fnv empty");
    EXPECT(pb_hash64(PB_HASH_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL, "fnv a");
    EXPECT(pb_hash64(PB_HASH_INIT, "foobar", 6) == 0x85944171f73967e8ULL, "fnv foobar");

    // Canonical JSON: key order and whitespace do not matter; numbers are stable.
    cJSON *a = cJSON_Parse("{\"b\": 1, \"a\": [1.5, 2, \"x\"], \"c\": {\"z\": true, \"y\": null}}");
    cJSON *b = cJSON_Parse("{\"c\":{\"y\":null,\"z\":true},\"a\":[1.5,2.0,\"x\"],\"b\":1}");
    char *ca = pb_json_canonical(a), *cb = pb_json_canonical(b);
    EXPECT(!strcmp(ca, "{\"a\":[1.5,2,\"x\"],\"b\":1,\"c\":{\"y\":null,\"z\":true}}"), "canonical: %s", ca);
    EXPECT(!strcmp(ca, cb), "canonical differs: %s vs %s", ca, cb);
    free(ca);
    free(cb);
    cJSON_Delete(a);
    cJSON_Delete(b);

    // Malformed suites: one clear error each.
    expect_error("{\"name\": \"x\",\n  \"models\": [\"vit-tiny\"],\n  \"datasets\": [\"vtab-mini/a\"]\n  \"methods\": [\"lora\"]}",
                 "t.json:4:", "invalid JSON");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"lorax\"]}",
                 "methods[0]", "unknown method 'lorax'");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"lora\"], "
                 "\"recipe\": {\"optimizer\": {\"betaz\": [0.9, 0.99]}}}",
                 "recipe.optimizer.betaz", "unknown key");
    expect_error("{\"name\": \"x\", \"modles\": []}", "modles", "unknown key");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [{\"method\": \"pissa\", \"rank\": 64}]}",
                 "methods[0].rank", "needs rank <= 32");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"svfit\"], \"grid\": {\"rank\": [8, 33]}}",
                 "grid.rank", "(got 33)");
    { // LoRA has no size rule (as in PEFT and pb_method_apply): a rank above min(out,in) is accepted
        pb_suite s;
        char err[2048] = "";
        pb_status st = pb_suite_parse("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], "
                                      "\"methods\": [{\"method\": \"lora\", \"rank\": 64}]}", "t.json", &s, err, sizeof(err));
        EXPECT(st == PB_OK, "lora rank 64 on hidden 32 refused: %s", err);
        pb_suite_free(&s);
    }
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [{\"method\": \"lora\", \"init\": \"svd\"}]}",
                 "methods[0].init", "kaiming,gaussian");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"lora\", \"pissa\"], \"grid\": {\"init\": [\"gaussian\"]}}",
                 "grid.init[0]", "svd,niter_N");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"lora\"], \"grid\": {\"lr\": []}}",
                 "grid.lr", "empty grid");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [], \"methods\": [\"lora\"]}", "datasets", "empty");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [{\"method\": \"full\", \"rank\": 4}]}",
                 "methods[0].rank", "no option 'rank'");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"lora\"], \"recipe\": {\"schedule\": \"step\"}}",
                 "recipe.schedule", "cosine");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"imagenet\"], \"methods\": [\"lora\"]}",
                 "datasets[0]", "unknown dataset spec");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"lora\"], "
                 "\"overrides\": [{\"method\": \"svfit\", \"set\": {\"lr\": 0.1}}]}",
                 "overrides[0].method", "matches no");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"lora\"], \"eval\": {\"select\": \"best\"}}",
                 "eval.select", "best_val");

    // Missing dataset files: the preflight names every missing path.
    {
        pb_suite s;
        char err[4096];
        const char *t = "{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab1k:/nonexistent/vtab/cifar100\"], \"methods\": [\"lora\"]}";
        EXPECT(pb_suite_parse(t, "t.json", &s, err, sizeof(err)) == PB_OK, "parse: %s", err);
        EXPECT(pb_suite_preflight(&s, err, sizeof(err)) != PB_OK, "preflight should fail");
        EXPECT(strstr(err, "/nonexistent/vtab/cifar100") && strstr(err, "train800val200.txt"), "preflight msg: %s", err);
        pb_suite_free(&s);
    }

    // Grid: precedence, dedupe of options a method ignores, stable ids.
    {
        const char *t =
            "{\"name\": \"g\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\", {\"spec\": \"vtab-mini/b\", \"label\": \"B\"}],"
            " \"methods\": [\"full\", {\"method\": \"lora\", \"lr\": 0.002}],"
            " \"grid\": {\"rank\": [4, 8], \"seed\": [0, 1]},"
            " \"recipe\": {\"lr\": 0.001, \"epochs\": 2},"
            " \"overrides\": [{\"method\": \"lora\", \"dataset\": \"B\", \"set\": {\"lr\": 0.005, \"rank\": 2}}]}";
        pb_suite s;
        pb_grid g;
        char err[1024];
        EXPECT(pb_suite_parse(t, "g.json", &s, err, sizeof(err)) == PB_OK, "parse: %s", err);
        EXPECT(pb_grid_expand(&s, &g, err, sizeof(err)) == PB_OK, "expand: %s", err);
        // per dataset: full x 2 seeds (rank ignored -> deduped) + lora x 2 ranks x 2 seeds = 6; two datasets.
        EXPECT(g.n == 12, "cells %d", g.n);
        int saw_lora_b = 0;
        for (int i = 0; i < g.n; i++) {
            const cJSON *m = cJSON_GetObjectItem(g.cells[i].config, "method");
            const cJSON *r = cJSON_GetObjectItem(g.cells[i].config, "recipe");
            if (!strcmp(g.cells[i].method, "full")) {
                EXPECT(!cJSON_GetObjectItem(m, "rank"), "full has no rank");
                EXPECT(cJSON_GetObjectItem(r, "lr")->valuedouble == 0.001, "full lr");
            } else if (!strcmp(g.cells[i].dataset, "B")) {
                saw_lora_b = 1;
                // override beats the method entry; the grid axis beats the override.
                EXPECT(cJSON_GetObjectItem(r, "lr")->valuedouble == 0.005, "override lr");
                EXPECT(cJSON_GetObjectItem(m, "rank")->valuedouble != 2, "grid rank wins");
            } else {
                EXPECT(cJSON_GetObjectItem(r, "lr")->valuedouble == 0.002, "method lr");
            }
            for (int j = 0; j < i; j++) EXPECT(strcmp(g.cells[i].id, g.cells[j].id), "duplicate id");
            EXPECT(strlen(g.cells[i].id) == 16, "id length");
        }
        EXPECT(saw_lora_b, "lora on B");
        // Same suite, different key order -> same ids.
        const char *t2 =
            "{\"recipe\": {\"epochs\": 2, \"lr\": 0.001}, \"name\": \"g\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\", {\"label\": \"B\", \"spec\": \"vtab-mini/b\"}],"
            " \"methods\": [\"full\", {\"lr\": 0.002, \"method\": \"lora\"}],"
            " \"grid\": {\"rank\": [4, 8], \"seed\": [0, 1]},"
            " \"overrides\": [{\"set\": {\"rank\": 2, \"lr\": 0.005}, \"dataset\": \"B\", \"method\": \"lora\"}]}";
        pb_suite s2;
        pb_grid g2;
        EXPECT(pb_suite_parse(t2, "g2.json", &s2, err, sizeof(err)) == PB_OK, "parse2: %s", err);
        EXPECT(pb_grid_expand(&s2, &g2, err, sizeof(err)) == PB_OK, "expand2: %s", err);
        EXPECT(g2.n == g.n, "n2");
        for (int i = 0; i < g.n && i < g2.n; i++) EXPECT(!strcmp(g.cells[i].id, g2.cells[i].id), "id %d differs", i);
        pb_grid_free(&g2);
        pb_suite_free(&s2);
        pb_grid_free(&g);
        pb_suite_free(&s);
    }

    // Per-method grids (issue 17): a method's own values for a suite axis replace the suite's for
    // that method only; every cell still records the axis; errors name methods[i].grid.<axis>.
    {
        const char *t =
            "{\"name\": \"mg\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"],"
            " \"methods\": [{\"method\": \"lora\", \"grid\": {\"lr_scale\": [1, 2, 3], \"rank\": [2]}},"
            " {\"method\": \"head\", \"grid\": {\"seed\": [0, 1, 2, 3]}}, \"full\"],"
            " \"grid\": {\"lr_scale\": [10, 20], \"rank\": [4, 8], \"seed\": [0]}}";
        pb_suite s;
        pb_grid g;
        char err[2048] = "";
        EXPECT(pb_suite_parse(t, "mg.json", &s, err, sizeof(err)) == PB_OK, "parse: %s", err);
        EXPECT(pb_grid_expand(&s, &g, err, sizeof(err)) == PB_OK, "expand: %s", err);
        // lora 3 x 1 x 1, head 2 lr_scale x 4 seeds, full 2 lr_scale x 1 seed
        EXPECT(g.n == 3 + 8 + 2, "per-method grid: %d cells, want 13", g.n);
        int lora = 0, head = 0, seeds3 = 0;
        for (int i = 0; i < g.n; i++) {
            const cJSON *m = cJSON_GetObjectItem(g.cells[i].config, "method");
            const cJSON *r = cJSON_GetObjectItem(g.cells[i].config, "recipe");
            double ls = cJSON_GetObjectItem(r, "lr_scale")->valuedouble;
            if (!strcmp(g.cells[i].method, "lora")) {
                lora++;
                EXPECT(ls >= 1 && ls <= 3, "lora lr_scale %g from the suite grid", ls);
                EXPECT(cJSON_GetObjectItem(m, "rank")->valuedouble == 2, "lora rank from its grid");
            } else {
                EXPECT(ls == 10 || ls == 20, "%s lr_scale %g", g.cells[i].method, ls);
            }
            if (!strcmp(g.cells[i].method, "head")) head++, seeds3 += g.cells[i].seed == 3;
        }
        EXPECT(lora == 3 && head == 8 && seeds3 == 2, "lora %d head %d seed3 %d", lora, head, seeds3);
        pb_grid_free(&g);
        pb_suite_free(&s);
    }
    // Modality pairing: a ViT takes the image datasets, a RoBERTa the text (glue/) ones; mismatched
    // pairs make no cell, in the models x datasets order of the cross product.
    {
        const char *t =
            "{\"name\": \"mix\", \"models\": [{\"label\": \"v\", \"config\": {\"arch\": \"vit\", \"hidden\": 32,"
            " \"layers\": 2, \"heads\": 2, \"intermediate\": 64}}, {\"label\": \"r\", \"builtin\": \"roberta-tiny\"},"
            " {\"label\": \"v2\", \"builtin\": \"vit-tiny\"}],"
            " \"datasets\": [\"glue/sst2:d/sst2\", \"vtab-mini/a\", \"glue/rte:d/rte\", \"vtab-mini/b\"],"
            " \"methods\": [\"head\", \"lora\"], \"grid\": {\"seed\": [0, 1]}}";
        pb_suite s;
        pb_grid g;
        char err[2048] = "";
        EXPECT(pb_suite_parse(t, "mix.json", &s, err, sizeof(err)) == PB_OK, "parse: %s", err);
        EXPECT(!strcmp(s.model_arch[0], "vit") && !strcmp(s.model_arch[1], "roberta"), "archs %s %s", s.model_arch[0],
               s.model_arch[1]);
        EXPECT(pb_grid_expand(&s, &g, err, sizeof(err)) == PB_OK, "expand: %s", err);
        EXPECT(g.n == 3 * 2 * 2 * 2, "mixed grid: %d cells, want 24", g.n);
        static const char *const want[6][2] = {{"v", "a"}, {"v", "b"}, {"r", "sst2"}, {"r", "rte"}, {"v2", "a"}, {"v2", "b"}};
        for (int i = 0; i < g.n; i++) {
            int p = i / 4; // 2 methods x 2 seeds per pair
            EXPECT(p < 6 && !strcmp(g.cells[i].model, want[p][0]) && !strcmp(g.cells[i].dataset, want[p][1]),
                   "cell %d: %s x %s", i, g.cells[i].model, g.cells[i].dataset);
        }
        pb_grid_free(&g);
        pb_suite_free(&s);
    }
    // models[].grid: a model's own axis values for its cells, over the method's and the suite's (a
    // text block with a smaller grid beside a ViT's); a cell's config keeps only the values it ran.
    {
        const char *t =
            "{\"name\": \"mg\", \"models\": [{\"label\": \"v\", \"config\": {\"arch\": \"vit\", \"hidden\": 32,"
            " \"layers\": 2, \"heads\": 2, \"intermediate\": 64}}, {\"label\": \"r\", \"builtin\": \"roberta-tiny\","
            " \"grid\": {\"rank\": [8], \"seed\": [0]}}],"
            " \"datasets\": [\"vtab-mini/a\", \"glue/sst2:d/sst2\", \"vtab-mini/b\", \"glue/rte:d/rte\"],"
            " \"methods\": [{\"method\": \"head\", \"grid\": {\"seed\": [0, 1, 2]}}, \"lora\"],"
            " \"grid\": {\"rank\": [4, 16], \"seed\": [0, 1]}}";
        pb_suite s;
        pb_grid g;
        char err[2048] = "";
        EXPECT(pb_suite_parse(t, "mg.json", &s, err, sizeof(err)) == PB_OK, "parse: %s", err);
        EXPECT(pb_grid_expand(&s, &g, err, sizeof(err)) == PB_OK, "expand: %s", err);
        // v: 2 datasets x (head 3 seeds + lora 2 ranks x 2 seeds) = 14; r: 2 datasets x (head 1 + lora 1) = 4
        EXPECT(g.n == 18, "model grid: %d cells, want 18", g.n);
        int rcells = 0, vhead = 0;
        for (int i = 0; i < g.n; i++) {
            const cJSON *cfg = g.cells[i].config;
            const cJSON *model = cJSON_GetObjectItem(cfg, "model");
            EXPECT(!cJSON_GetObjectItem(model, "grid"), "cell %d: the model's grid is in its config", i);
            if (!strcmp(g.cells[i].model, "v") && !strcmp(g.cells[i].method, "head")) vhead++;
            if (strcmp(g.cells[i].model, "r")) continue;
            rcells++;
            const cJSON *rank = cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "method"), "rank");
            EXPECT(g.cells[i].seed == 0 && (!strcmp(g.cells[i].method, "head") || (rank && rank->valuedouble == 8)),
                   "r cell %d: %s seed %d rank %g", i, g.cells[i].method, g.cells[i].seed, rank ? rank->valuedouble : -1);
        }
        EXPECT(rcells == 4 && vhead == 6, "r cells %d (want 4), v head cells %d (want 6: the method's 3 seeds)", rcells,
               vhead);
        pb_grid_free(&g);
        pb_suite_free(&s);
    }
#define MG_SUITE(grid) \
    "{\"name\": \"x\", \"models\": [{\"label\": \"m\", \"config\": {\"arch\": \"vit\", \"hidden\": 32, \"layers\": 2," \
    " \"heads\": 2, \"intermediate\": 64}, \"grid\": " grid "}], \"datasets\": [\"vtab-mini/a\"]," \
    " \"methods\": [\"svfit\"], \"grid\": {\"rank\": [4], \"seed\": [0]}}"
    expect_error(MG_SUITE("{\"lr_scale\": [1]}"), "models[0].grid.lr_scale: not an axis of the suite's \"grid\"", NULL);
    expect_error(MG_SUITE("{\"colour\": [1]}"), "models[0].grid.colour: unknown axis", NULL);
    expect_error(MG_SUITE("{\"rank\": []}"), "models[0].grid.rank: expected a non-empty list", NULL);
    expect_error(MG_SUITE("{\"seed\": [0, 0]}"), "models[0].grid.seed", "duplicate");
    expect_error(MG_SUITE("[8]"), "models[0].grid: expected an object", NULL);
    expect_error(MG_SUITE("{\"rank\": [4, 64]}"), "models[0].grid.rank[1]", "model 'm'");
#undef MG_SUITE
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\", \"glue/sst2:d\"], \"methods\": [\"head\"]}",
                 "t.json: datasets[1]: 'glue/sst2:d' is a text dataset and no model of the suite takes it",
                 "RoBERTa model (arch roberta)");
    expect_error("{\"name\": \"x\", \"models\": [\"roberta-tiny\"], \"datasets\": [\"vtab-mini/a\"], \"methods\": [\"head\"]}",
                 "t.json: datasets[0]: 'vtab-mini/a' is an image dataset and no model", "ViT model (arch vit)");
    expect_error("{\"name\": \"x\", \"models\": [\"vit-tiny\", \"roberta-tiny\"], \"datasets\": [\"vtab-mini/a\"],"
                 " \"methods\": [\"head\"]}",
                 "t.json: models[1]: 'roberta-tiny' is a RoBERTa model (arch roberta) and no dataset of the suite fits it",
                 "glue/<task>:<dir>");
    // A checkpoint directory: its arch is config.json's model_type; without a readable config.json it
    // pairs with everything (one-modality suites), and a mixed suite refuses it.
    {
        char dir[] = "/tmp/pb_suite_ckXXXXXX", path[128], text[1024];
        EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "w");
        EXPECT(f != NULL, "write %s", path);
        if (f) fputs("{\"model_type\": \"roberta\"}", f), fclose(f);
        snprintf(text, sizeof text,
                 "{\"name\": \"x\", \"models\": [\"%s\", {\"label\": \"v\", \"builtin\": \"vit-tiny\"}],"
                 " \"datasets\": [\"vtab-mini/a\", \"glue/rte:d\"], \"methods\": [\"head\"]}", dir);
        pb_suite s;
        pb_grid g;
        char err[2048] = "";
        EXPECT(pb_suite_parse(text, "ck.json", &s, err, sizeof(err)) == PB_OK, "parse: %s", err);
        EXPECT(!strcmp(s.model_arch[0], "roberta"), "checkpoint arch '%s'", s.model_arch[0]);
        EXPECT(pb_grid_expand(&s, &g, err, sizeof(err)) == PB_OK, "expand: %s", err);
        // the checkpoint (models[0]) x the text dataset (label "d"), then the ViT x the image one
        EXPECT(g.n == 2 && !strcmp(g.cells[0].dataset, "d") && !strcmp(g.cells[1].dataset, "a"), "checkpoint pairs: %d",
               g.n);
        pb_grid_free(&g);
        pb_suite_free(&s);
        remove(path);
        // no config.json: a one-modality suite takes it for every dataset, a mixed one names it
        snprintf(text, sizeof text, "{\"name\": \"x\", \"models\": [\"%s\"], \"datasets\": [\"vtab-mini/a\", \"vtab-mini/b\"],"
                                    " \"methods\": [\"head\"]}", dir);
        EXPECT(pb_suite_parse(text, "ck.json", &s, err, sizeof(err)) == PB_OK, "parse: %s", err);
        EXPECT(pb_grid_expand(&s, &g, err, sizeof(err)) == PB_OK && g.n == 2, "unknown arch: %d cells", g.n);
        pb_grid_free(&g);
        pb_suite_free(&s);
        snprintf(text, sizeof text, "{\"name\": \"x\", \"models\": [\"%s\", \"roberta-tiny\"],"
                                    " \"datasets\": [\"vtab-mini/a\", \"glue/rte:d\"], \"methods\": [\"head\"]}", dir);
        expect_error(text, "t.json: models[0]: cannot tell whether checkpoint", "both image and text datasets");
        rmdir(dir);
    }
#define MG(grid) "{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": " \
                 "[\"full\", {\"method\": \"lora\", \"grid\": " grid "}], \"grid\": {\"lr_scale\": [1]}}"
    expect_error(MG("{\"rank\": [4]}"), "methods[1].grid.rank", "not an axis of the suite's");
    expect_error(MG("{\"lr_scale\": []}"), "methods[1].grid.lr_scale", "non-empty list");
    expect_error(MG("{\"lr_scale\": [1, 1]}"), "methods[1].grid.lr_scale[1]", "duplicate");
    expect_error(MG("{\"lr_scale\": [-1]}"), "methods[1].grid.lr_scale[0]", ">= 0");
    expect_error(MG("{\"seed\": [0.5]}"), "methods[1].grid.seed[0]", "integer");
    expect_error(MG("{\"bogus\": [1]}"), "methods[1].grid.bogus", "unknown axis");
    expect_error(MG("[1]"), "methods[1].grid", "object of axis lists");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": "
                 "[{\"method\": \"head\", \"grid\": {\"rank\": [4]}}], \"grid\": {\"rank\": [4]}}",
                 "methods[0].grid.rank", "method 'head' has no option 'rank'");
    expect_error("{\"name\": \"x\", " BASE_MODELS ", \"datasets\": [\"vtab-mini/a\"], \"methods\": "
                 "[{\"method\": \"svfit\", \"grid\": {\"rank\": [4, 33]}}], \"grid\": {\"rank\": [4]}}",
                 "methods[0].grid.rank[1]", "(got 33)");
#undef MG

    // Every suite shipped in suites/ parses and expands (all of suites/*.json, so a new suite is
    // covered the day it lands; a missing shipped suite is a failure).
    DIR *dir = opendir("suites");
    EXPECT(dir != NULL, "cannot open suites/ (run from the source root)");
    int nshipped = 0;
    for (struct dirent *de; dir && (de = readdir(dir));) {
        size_t nl = strlen(de->d_name);
        if (nl < 6 || strcmp(de->d_name + nl - 5, ".json")) continue;
        char path[512];
        snprintf(path, sizeof path, "suites/%s", de->d_name);
        pb_suite s;
        pb_grid g;
        char err[2048];
        nshipped++;
        EXPECT(pb_suite_load(path, &s, err, sizeof(err)) == PB_OK, "%s", err);
        if (s.nmodels) {
            EXPECT(pb_grid_expand(&s, &g, err, sizeof(err)) == PB_OK, "%s", err);
            pb_grid_free(&g);
        }
        pb_suite_free(&s);
    }
    if (dir) closedir(dir);
    EXPECT(nshipped >= 11, "suites/ holds %d suites, want the 11 shipped ones at least", nshipped);
    // baselines-mini runs every method of the registry (issue 13).
    {
        pb_suite s;
        char err[2048];
        EXPECT(pb_suite_load("suites/baselines-mini.json", &s, err, sizeof(err)) == PB_OK, "%s", err);
        int nreg = 0;
        const pb_method_desc *const *reg = pb_method_registry(&nreg);
        for (int r = 0; r < nreg; r++) {
            int found = 0;
            for (int k = 0; k < s.nmethods; k++)
                found |= !strcmp(cJSON_GetObjectItem(s.methods[k], "method")->valuestring, reg[r]->name);
            EXPECT(found, "suites/baselines-mini.json has no entry for method '%s'", reg[r]->name);
        }
        pb_suite_free(&s);
    }
    // The paper suites list every implemented row of their tables (issue 13).
    static const char *const glue_none[] = {"PiSSA", "SVFit", NULL}, *const vit_none[] = {"PiSSA", NULL},
                             *const none[] = {NULL};
    check_paper_suite("suites/svfit-glue-table2.json", glue_none, NULL);
    check_paper_suite("suites/svfit-vit-table3.json", vit_none, NULL);
    check_paper_suite("suites/aoft-vtab1k.json", none, NULL);
    check_paper_suite("suites/aoft-fgvc.json", none, "VPT-Deep+AOFT");
    if (pb_test_fails) fprintf(stderr, "%d failure(s)\n", pb_test_fails);
    else printf("test_harness_suite: ok\n");
    return pb_test_fails ? 1 : 0;
}
