// peftbench_synth.c: the peftbench CLI with a fixture trainer, for runner tests only (resume,
// shards, interrupts, report/plot/check on many cells in seconds). Not part of peftbench: the
// product links only the engine trainer. Scores are deterministic functions of the cell config
// hash, rank and lr; a method label containing "diverge" gives a NaN loss (a failed cell);
// PB_SYNTH_SLEEP_MS (environment) sleeps per epoch so tests can interrupt a run. The result's
// backend field names this fixture, so report shows where such rows came from.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness/cli.h"
#include "harness/jsonutil.h"
#include "harness/runner.h"

static pb_status synthetic_train(const cJSON *config, pb_train_ctx *ctx, pb_train_result *r) {
    memset(r, 0, sizeof(*r));
    double t0 = pb_now();
    const cJSON *method = cJSON_GetObjectItem(config, "method"), *recipe = cJSON_GetObjectItem(config, "recipe");
    const char *label = cJSON_GetObjectItem(method, "label")->valuestring;
    const char *mname = cJSON_GetObjectItem(method, "method")->valuestring;
    int epochs = (int)pb_jnum(recipe, "epochs", 1);
    double rank = pb_jnum(method, "rank", 8);
    double lr = pb_jnum(recipe, "lr", 1e-3) * pb_jnum(recipe, "lr_scale", 1);
    char id[17];
    pb_json_hash_hex(config, id);
    uint64_t h = strtoull(id, NULL, 16);
    // A smooth, deterministic curve: better with rank, best near lr = 1e-3, per-cell jitter.
    double jitter = (double)(h % 1000) / 1000.0 * 0.02;
    double peak = 0.6 + 0.05 * log2(rank) / 8.0 - 0.03 * fabs(log10(lr) + 3.0) + jitter;
    if (!strcmp(mname, "full")) peak += 0.05;
    if (!strcmp(mname, "head")) peak -= 0.1;
    snprintf(r->metric, sizeof(r->metric), "accuracy");
    snprintf(r->backend, sizeof(r->backend), "synthetic test fixture (tests/peftbench_synth.c)");
    snprintf(r->data_hash, sizeof(r->data_hash), "%016llx", (unsigned long long)pb_hash64(PB_HASH_INIT, "synthetic", 9));
    r->threads = 1;
    r->epochs = pb_xcalloc((size_t)epochs, sizeof(pb_epoch_metrics));
    const char *sl = getenv("PB_SYNTH_SLEEP_MS");
    long sleep_ms = sl ? strtol(sl, NULL, 10) : 0;
    int diverge = strstr(label, "diverge") != NULL;
    for (int e = 1; e <= epochs; e++) {
        if (sleep_ms > 0) {
            struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        pb_epoch_metrics *m = &r->epochs[e - 1];
        m->epoch = e;
        m->train_loss = diverge && e >= 2 ? NAN : 2.0 * exp(-e / 3.0);
        m->val = peak * (1 - exp(-e / 2.0)) + 0.001 * (double)((h >> (e % 48)) % 7);
        m->test = m->val - 0.01;
        m->lr = lr;
        m->time_s = pb_now() - t0;
        r->nepochs = e;
        if (ctx->on_epoch) ctx->on_epoch(ctx, m, epochs);
        if (!isfinite(m->train_loss)) {
            r->status = pb_errf(PB_ERR_NUMERIC, r->reason, sizeof(r->reason),
                                "diverged: non-finite training loss at epoch %d", e);
            break;
        }
    }
    r->p_head = 650;
    r->p_adapter = cJSON_GetObjectItem(method, "rank") ? (long long)(24 * rank) : 0;
    r->p_trainable_backbone = !strcmp(mname, "full") ? 100000 : 0;
    r->p_trainable = r->p_head + r->p_adapter + r->p_trainable_backbone;
    r->p_backbone = 100000;
    r->p_total = r->p_backbone + r->p_head + r->p_adapter;
    r->train_examples = 100LL * epochs;
    r->n_val = 200; // as if VTAB-style splits: check's statistics need the counts
    r->n_test = 1000;
    r->train_time_s = pb_now() - t0;
    r->throughput = r->train_time_s > 0 ? (double)r->train_examples / r->train_time_s : 0;
    r->peak_rss = pb_peak_rss();
    return r->status;
}

int main(int argc, char **argv) {
    pb_runner_trainer = synthetic_train;
    return pb_cli_main(argc, argv);
}
