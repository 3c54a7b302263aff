// cmd_bench.c: `peftbench bench`: times training steps of a model + method on the engine and puts
// them next to the sgemm ceiling of every GEMM provider (measured in the same process at the
// model's GEMM shapes) and the CPU's FP32 FMA peak; --profile adds a per-op profile.
//
// A step = zero grads + forward + loss + backward + AdamW, as the PyTorch peer (bench/peer_torch.py)
// times it. FLOPs are analytic (2 per multiply-add, biases ignored; machine.md §5.3), counted
// per mode so that frozen weights' dW GEMMs are not credited.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
// defines: pb_gemm_providers, pb_gemm_sgemm_gflops, pb_cpu_fp32_peak
#include "../engine/system.h"
#include "../engine/ops.h"
#include "../engine/param.h"
#include "../models/model.h"
#include "../methods/adapter.h"
#include "cli_method.h"
#include "loop.h"

typedef struct {
    double lin, att, patch, head, adapter_fwd; // forward FLOPs per example, by part
    double step;                               // total training-step FLOPs per example
    int T;
} bench_flops;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Tokens per example for the model's input.
static int bench_tokens(const pb_model_config *c, int seq) {
    if (c->arch == PB_ARCH_VIT) {
        int np = (c->image_size / c->patch_size) * (c->image_size / c->patch_size);
        return np + 1;
    }
    return seq;
}

// Analytic FLOPs of one training step per example for a method (machine.md §5.3, generalised to
// the targets a method adapts).
static bench_flops bench_count_flops(const pb_model_config *c, const pb_method_config *mc, int seq) {
    bench_flops f = {0};
    double D = c->hidden, M = c->intermediate, L = c->layers, V = c->num_labels;
    f.T = bench_tokens(c, seq);
    double T = f.T;
    f.lin = 2.0 * L * (4 * D * D + 2 * D * M) * T;
    f.att = 4.0 * L * T * T * D;
    if (c->arch == PB_ARCH_VIT) {
        double np = T - 1;
        f.patch = 2.0 * (c->channels * (double)c->patch_size * c->patch_size * D) * np;
        f.head = 2.0 * D * V;
    } else {
        f.patch = 0;
        f.head = 2.0 * (D * D + D * V); // dense + out_proj on <s>
    }
    double fwd = f.lin + f.att + f.patch + f.head;
    const pb_method_desc *d = mc->desc;
    if (d->unfreeze & PB_UNFREEZE_BACKBONE) {
        // backward = dX + dW for every GEMM (2x forward), except no dX for the image.
        f.step = 3 * fwd - f.patch;
    } else if (pb_method_head_only(d)) {
        f.step = fwd + 2 * f.head;
    } else {
        // The descriptor's forward FLOPs per token of every adapted linear (pb_method_estimate).
        pb_method_cost cost;
        if (pb_method_estimate(mc, c, 0, 0, &cost, NULL, 0) != PB_OK) cost.adapter_flops = 0;
        f.adapter_fwd = cost.adapter_flops * T;
        // frozen backbone: forward + dX through every linear and attention matmul, no dW;
        // adapter: forward + dX + dW (3x); head: forward + dW + dX.
        f.step = fwd + f.adapter_fwd + f.lin + 2 * f.att + 2 * f.adapter_fwd + 2 * f.head;
    }
    return f;
}

// The sgemm ceiling of every GEMM provider built in, at the model's main GEMM shapes (forward
// NT, backward dX NN and dW TN), FLOP-weighted: per shape the better of the engine's split and
// the library's own threading (pb_gemm_sgemm_gflops), so no provider is judged by a
// misconfiguration. Fills ceil[i] for prov[i]; returns the index of the best provider.
static int bench_ceilings(const pb_model_config *c, int B, int T, int reps, int threads,
                          const pb_gemm_info *prov, int np, double *ceil) {
    int N = B * T, D = c->hidden, Mw = c->intermediate;
    const int shapes[6][5] = { // ta, tb, M, N, K
        {0, 1, N, D, D}, {0, 1, N, Mw, D}, {0, 1, N, D, Mw}, {0, 0, N, D, Mw}, {1, 0, Mw, D, N}, {1, 0, D, D, N},
    };
    int best = 0;
    for (int i = 0; i < np; i++) {
        double flops = 0, time = 0;
        for (int s = 0; s < 6; s++) {
            const int *x = shapes[s];
            double g0 = pb_gemm_sgemm_gflops(prov[i].name, 0, threads, x[0], x[1], x[2], x[3], x[4], 1.0f, reps);
            double g1 = pb_gemm_sgemm_gflops(prov[i].name, 1, threads, x[0], x[1], x[2], x[3], x[4], 1.0f, reps);
            double g = g0 > g1 ? g0 : g1, f = 2.0 * x[2] * x[3] * x[4];
            flops += f;
            time += g > 0 ? f / (g * 1e9) : 0;
        }
        ceil[i] = time > 0 ? flops / time * 1e-9 : 0;
        if (ceil[i] > ceil[best]) best = i;
    }
    return best;
}

// The fastest plain sgemm for each GEMM shape a profiled step ran: every provider in both
// threadings (pb_gemm_sgemm_gflops), the winner kept per shape in best_prov/best_mode.
static void bench_pick_best(const pb_prof_gemm *g, int ng, int threads, const pb_gemm_info *prov, int np,
                            int *best_prov, int *best_mode) {
    for (int i = 0; i < ng; i++) {
        double best = -1;
        best_prov[i] = 0;
        best_mode[i] = 0;
        for (int p = 0; p < np; p++)
            for (int mode = 0; mode < 2; mode++) {
                double v = pb_gemm_sgemm_gflops(prov[p].name, mode, threads, g[i].ta, g[i].tb, g[i].M, g[i].N,
                                                g[i].K, g[i].beta, 3);
                if (v > best) best = v, best_prov[i] = p, best_mode[i] = mode;
            }
    }
}

// Seconds the step's GEMMs take as plain sgemm calls of their best variant (one timed call per
// shape after one untimed, times the calls per step).
static double bench_plain_gemm_time(const pb_prof_gemm *g, int ng, int threads, const pb_gemm_info *prov,
                                    const int *best_prov, const int *best_mode) {
    double t = 0;
    for (int i = 0; i < ng; i++) {
        double gf = pb_gemm_sgemm_gflops(prov[best_prov[i]].name, best_mode[i], threads, g[i].ta, g[i].tb, g[i].M,
                                         g[i].N, g[i].K, g[i].beta, 1);
        if (gf > 0) t += 2.0 * g[i].M * g[i].N * g[i].K * (double)g[i].calls / (gf * 1e9);
    }
    return t;
}

// One timed training step of the training loop (loop.h: forward + loss + zero grads + backward +
// AdamW on the LR groups), then a sync. Head only: the backbone's features each step (no cache).
typedef struct {
    pb_engine *e;
    pb_model *m;
    const pb_batch *bt;
    pb_loop *L;
    int head_only;
} bench_step_ctx;

static float bench_step(bench_step_ctx *c, int s) {
    const float *feat = c->head_only ? pb_model_features(c->m, c->bt, 0, (uint64_t)s) : NULL;
    float loss = pb_loop_step(c->L, c->bt, feat, 1, (uint64_t)s);
    pb_sync(c->e);
    return loss;
}

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench bench --model NAME|DIR [options]\n"
            "  --model M         built-in config (vit-b16, vit-l16, vit-tiny, roberta-base, ...) or HF dir\n"
            PB_CLI_METHOD_USAGE
            "  --batch B         batch size (default 8)\n"
            "  --seq T           RoBERTa sequence length (default 128)\n"
            "  --num-labels C    classes (default 10)\n"
            "  --steps N         timed steps (default 5)\n"
            "  --warmup N        untimed steps first (default 2)\n"
            "  --threads N       engine threads (default: cores)\n"
            "  --device D        cpu (default) or cuda\n"
            "  --no-ceiling      skip the sgemm ceilings (every GEMM provider) and the FP32 peak\n"
            "  --profile         per-op profile of --steps extra steps, and GEMM time against the\n"
            "                    best sgemm at the same shapes\n"
            "  --gemm P          CPU GEMM provider (auto, openblas, onednn; PB_GEMM)\n"
            "  (PB_CPU_MATH=bf16: linear-layer GEMMs with bf16 inputs and FP32 accumulation)\n"
            "  --epochs E        head only: time E epochs over --steps batches with cached features\n"
            "  --json            one JSON object on stdout\n");
}

int pb_cmd_bench(int argc, char **argv) {
    const char *model_name = NULL, *device = "cpu";
    int batch = 8, seq = 128, steps = 5, warmup = 2, threads = 0, num_labels = 10, json = 0;
    int ceiling = 1, epochs = 0, profile = 0;
    // Method arguments first (cli_method.h), the rest through getopt.
    pb_cli_method cm;
    memset(&cm, 0, sizeof cm);
    {
        int out = 1;
        for (int i = 1; i < argc; i++) {
            int k = pb_cli_method_arg(&cm, argc, argv, &i, "bench");
            if (k < 0) return 2;
            if (!k) argv[out++] = argv[i];
        }
        argc = out;
        argv[argc] = NULL;
    }
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"batch", required_argument, 0, 'b'}, {"seq", required_argument, 0, 's'},
        {"steps", required_argument, 0, 'n'}, {"warmup", required_argument, 0, 'w'},
        {"threads", required_argument, 0, 't'}, {"device", required_argument, 0, 'd'},
        {"num-labels", required_argument, 0, 'c'}, {"json", no_argument, 0, 'j'},
        {"no-ceiling", no_argument, 0, 'C'}, {"epochs", required_argument, 0, 'E'},
        {"profile", no_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model_name = optarg; break;
        case 'b': batch = atoi(optarg); break;
        case 's': seq = atoi(optarg); break;
        case 'n': steps = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'd': device = optarg; break;
        case 'c': num_labels = atoi(optarg); break;
        case 'j': json = 1; break;
        case 'C': ceiling = 0; break;
        case 'P': profile = 1; break;
        case 'E': epochs = atoi(optarg); break;
        case 'h': bench_usage(stdout); return 0;
        default: bench_usage(stderr); return 2;
        }
    }
    if (!model_name) {
        bench_usage(stderr);
        return 2;
    }
    pb_method_config mc;
    {
        char e2[512];
        if (pb_cli_method_build(&cm, "full", 0, &mc, e2, sizeof e2) != PB_OK) {
            fprintf(stderr, "peftbench bench: %s\n", e2);
            return 2;
        }
    }
    if (batch < 1 || steps < 1 || warmup < 0 || seq < 1 || num_labels < 1) {
        fprintf(stderr, "peftbench bench: --batch, --steps, --seq, --num-labels must be >= 1\n");
        return 2;
    }
    char err[1024] = "";
    pb_device dev = !strcmp(device, "cuda") ? PB_DEVICE_CUDA : PB_DEVICE_CPU;
    if (dev == PB_DEVICE_CPU && strcmp(device, "cpu")) {
        fprintf(stderr, "peftbench bench: --device must be cpu or cuda, not '%s'\n", device);
        return 2;
    }
    pb_engine *e = pb_engine_init(dev, threads, err, sizeof err);
    if (!e) {
        fprintf(stderr, "peftbench bench: %s\n", err);
        return 2;
    }
    pb_model *m = NULL;
    pb_model_config cfg;
    if (pb_model_config_builtin(model_name, &cfg, NULL, 0) == PB_OK) {
        cfg.num_labels = num_labels;
        // Benchmarks time the arithmetic; dropout off as in the peer's configs.
        cfg.hidden_dropout = cfg.attn_dropout = 0;
        cfg.classifier_dropout = 0;
        m = pb_model_create(e, &cfg, 1234);
    } else if (pb_model_load(e, model_name, num_labels, 1234, &m, err, sizeof err) != PB_OK) {
        fprintf(stderr, "peftbench bench: %s\n", err);
        pb_engine_free(e);
        return 2;
    }
    cfg = *pb_model_cfg(m);
    double t_init = pb_now();
    if (pb_method_apply(m, &mc, err, sizeof err) != PB_OK) {
        fprintf(stderr, "peftbench bench: %s\n", err);
        pb_model_free(m);
        pb_engine_free(e);
        return 2;
    }
    t_init = pb_now() - t_init;
    int head_only = pb_method_head_only(mc.desc);
    if (epochs > 0 && !head_only) {
        fprintf(stderr, "peftbench bench: --epochs applies to --method head only\n");
        pb_model_free(m);
        pb_engine_free(e);
        return 2;
    }

    // Random inputs and labels (fixed seed).
    pb_rng rng;
    pb_rng_seed(&rng, 42);
    int T = bench_tokens(&cfg, seq);
    pb_batch bt = {.B = batch, .T = T};
    float *pix = NULL;
    int32_t *ids = NULL, *mask = NULL, *labels = pb_alloc_i32(e, (size_t)batch);
    int32_t *hl = pb_xmalloc(sizeof(int32_t) * (size_t)batch);
    for (int b = 0; b < batch; b++) hl[b] = (int32_t)pb_rng_below(&rng, (uint32_t)cfg.num_labels);
    pb_upload_i32(e, labels, hl, (size_t)batch);
    float *targets = NULL;
    if (cfg.num_labels == 1) {
        targets = pb_alloc(e, (size_t)batch);
        float *ht = pb_xmalloc(sizeof(float) * (size_t)batch);
        for (int b = 0; b < batch; b++) ht[b] = pb_rng_normal(&rng);
        pb_upload(e, targets, ht, (size_t)batch);
        free(ht);
    }
    if (cfg.arch == PB_ARCH_VIT) {
        size_t n = (size_t)batch * cfg.channels * cfg.image_size * cfg.image_size;
        float *h = pb_xmalloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) h[i] = 2 * pb_rng_uniform(&rng) - 1;
        pix = pb_alloc(e, n);
        pb_upload(e, pix, h, n);
        free(h);
        bt.pixels = pix;
    } else {
        size_t n = (size_t)batch * seq;
        int32_t *h = pb_xmalloc(sizeof(int32_t) * n), *hm = pb_xmalloc(sizeof(int32_t) * n);
        for (size_t i = 0; i < n; i++) {
            h[i] = 3 + (int32_t)pb_rng_below(&rng, (uint32_t)(cfg.vocab_size - 3));
            hm[i] = 1;
        }
        for (int b = 0; b < batch; b++) h[(size_t)b * seq] = 0; // <s>
        ids = pb_alloc_i32(e, n);
        mask = pb_alloc_i32(e, n);
        pb_upload_i32(e, ids, h, n);
        pb_upload_i32(e, mask, hm, n);
        free(h);
        free(hm);
        bt.ids = ids;
        bt.mask = mask;
    }
    bt.labels = labels;
    bt.targets = targets;

    int ntr = 0;
    pb_param **tr = pb_model_trainable(m, &ntr);
    size_t trainable = 0;
    for (int i = 0; i < ntr; i++) trainable += tr[i]->numel;
    // Constant LR 1e-4, weight decay 0.01 (as the peer): the schedule does not change the work.
    pb_recipe rcp;
    pb_recipe_read(NULL, &rcp);
    rcp.lr = rcp.head_lr = 1e-4;
    rcp.weight_decay = 0.01;
    rcp.sched = PB_SCHED_CONSTANT;
    pb_loop L;
    pb_loop_init(&L, m, &rcp, warmup + steps);
    if (pb_loop_set_method(&L, &mc, err, sizeof err) != PB_OK) { // training hooks (AdaLoRA) are timed too
        fprintf(stderr, "peftbench bench: %s\n", err);
        pb_loop_free(&L);
        pb_model_free(m);
        pb_engine_free(e);
        return 2;
    }
    double *ts = pb_xmalloc(sizeof(double) * (size_t)steps);
    float loss = 0;
    bench_step_ctx sc = {.e = e, .m = m, .bt = &bt, .L = &L, .head_only = head_only};
    for (int s = -warmup; s < steps; s++) {
        double t0 = pb_now();
        loss = bench_step(&sc, s);
        double dt = pb_now() - t0;
        if (s >= 0) ts[s] = dt;
    }
    double t_step = median(ts, steps);
    // --profile (CPU and CUDA): the same steps again with every op timed (after the timed run, so
    // the timing above is unperturbed); per-op totals are divided by the number of profiled steps.
    // On the CPU each profiled step is followed by the step's own GEMM shapes run as plain sgemm
    // calls of the fastest provider/threading for each shape, so both see the same machine load
    // (this VM's speed drifts by +-20 %); the GEMM efficiency is the median over these pairs.
    pb_prof_op pops[64];
    pb_prof_gemm pgem[64];
    int npops = 0, npgem = 0;
    double t_prof = 0, gemm_eff = 0;
    if (profile) {
        pb_prof_op acc[64];
        int nacc = 0;
        double *eff = pb_xmalloc(sizeof(double) * (size_t)steps);
        int best_prov[64], best_mode[64];
        pb_gemm_info pv[8];
        int npv = dev == PB_DEVICE_CPU ? pb_gemm_providers(pv, 8) : 0;
        for (int s = -1; s < steps; s++) { // s = -1: learn the shapes, pick the best variants
            pb_engine_profile(e, 1);
            double t0 = pb_now();
            bench_step(&sc, s);
            double dt = pb_now() - t0;
            int no = pb_engine_profile_ops(e, pops, 64);
            npgem = pb_engine_profile_gemms(e, pgem, 64);
            pb_engine_profile(e, 0);
            if (s < 0) {
                if (npv) bench_pick_best(pgem, npgem, pb_engine_threads(e), pv, npv, best_prov, best_mode);
                continue;
            }
            t_prof += dt;
            double g_s = 0;
            for (int i = 0; i < no; i++) {
                if (pops[i].flops > 0) g_s += pops[i].seconds;
                int j = 0;
                while (j < nacc && strcmp(acc[j].op, pops[i].op)) j++;
                if (j == nacc) acc[nacc++] = (pb_prof_op){.op = pops[i].op};
                acc[j].calls += pops[i].calls;
                acc[j].seconds += pops[i].seconds;
                acc[j].flops += pops[i].flops;
            }
            double plain = npv ? bench_plain_gemm_time(pgem, npgem, pb_engine_threads(e), pv, best_prov, best_mode) : 0;
            eff[s] = g_s > 0 ? plain / g_s : 0;
        }
        t_prof /= steps;
        memcpy(pops, acc, sizeof(pb_prof_op) * (size_t)nacc);
        npops = nacc;
        gemm_eff = median(eff, steps);
        free(eff);
    }
    // Head-only over E epochs with feature caching, as the runner trains it: one backbone forward
    // per example (for `steps` batches), then E epochs of head steps on the cached features.
    double t_epochs = 0;
    if (head_only && epochs > 0) {
        size_t fb = (size_t)batch * cfg.hidden;
        float *cache = pb_alloc(e, fb * (size_t)steps);
        double t0 = pb_now();
        for (int s = 0; s < steps; s++)
            pb_copy(e, cache + fb * (size_t)s, pb_model_features(m, &bt, 0, (uint64_t)s), fb);
        for (int ep = 0; ep < epochs; ep++)
            for (int s = 0; s < steps; s++) {
                loss = pb_loop_step(&L, &bt, cache + fb * (size_t)s, 1, (uint64_t)s);
            }
        pb_sync(e);
        t_epochs = pb_now() - t0;
        pb_free(e, cache);
    }
    bench_flops fl = bench_count_flops(&cfg, &mc, seq);
    double gflop_step = fl.step * batch * 1e-9;
    double achieved = gflop_step / t_step;
    // Ceilings (CPU): every provider at the model's shapes; the FP32 FMA peak; with --profile the
    // best sgemm at exactly the step's GEMM shapes.
    pb_gemm_info prov[8];
    int np = dev == PB_DEVICE_CPU ? pb_gemm_providers(prov, 8) : 0;
    double pceil[8] = {0}, ceil_gflops = 0, gemm_s = 0, gemm_flops = 0;
    int best = -1;
    pb_fp32_peak peak = {0};
    int nth = pb_engine_threads(e);
    if (ceiling && dev == PB_DEVICE_CPU) {
        best = bench_ceilings(&cfg, batch, T, 5, nth, prov, np, pceil);
        ceil_gflops = pceil[best];
        pb_cpu_fp32_peak(nth, &peak);
    }
    for (int i = 0; i < npops; i++)
        if (pops[i].flops > 0) {
            gemm_s += pops[i].seconds / steps;
            gemm_flops += pops[i].flops / steps;
        }
    double gemm_gflops = gemm_s > 0 ? gemm_flops / gemm_s * 1e-9 : 0;
    double same_shape = gemm_eff > 0 ? gemm_gflops / gemm_eff : 0; // the plain calls' speed
    double rss = (double)pb_peak_rss() / (1024.0 * 1024 * 1024);
    size_t dev_cur = 0, dev_peak = 0;
    int dev_mem = pb_engine_memory(e, &dev_cur, &dev_peak); // GPU: the torch max_memory_allocated analogue
    pb_param_counts pc = pb_model_count(m);
    const char *unit = cfg.arch == PB_ARCH_VIT ? "img/s" : "seq/s";
    // With --epochs, throughput counts examples seen over all epochs (what the user waits for).
    double throughput = t_epochs > 0 ? (double)epochs * steps * batch / t_epochs : batch / t_step;
    pb_gemm_info in_use = {0};
    if (dev == PB_DEVICE_CPU) {
        const char *gname = pb_gemm_resolve(getenv("PB_GEMM"), NULL, 0);
        for (int i = 0; i < np; i++)
            if (gname && !strcmp(prov[i].name, gname)) in_use = prov[i];
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", model_name);
        cJSON_AddStringToObject(o, "method", mc.desc->name);
        if (pb_mc_has(&mc, "rank")) cJSON_AddNumberToObject(o, "rank", pb_mc_int(&mc, "rank"));
        else cJSON_AddNullToObject(o, "rank");
        pb_method_config_to_json(&mc, cJSON_AddObjectToObject(o, "options"));
        cJSON_AddNumberToObject(o, "batch", batch);
        cJSON_AddNumberToObject(o, "tokens", T);
        cJSON_AddNumberToObject(o, "threads", nth);
        cJSON_AddStringToObject(o, "backend", pb_engine_describe(e));
        const char *math = getenv("PB_CPU_MATH");
        cJSON_AddStringToObject(o, "cpu_math", dev == PB_DEVICE_CPU && math && !strcmp(math, "bf16") ? "bf16" : "fp32");
        if (in_use.name) {
            cJSON_AddStringToObject(o, "gemm", in_use.name);
            cJSON_AddStringToObject(o, "gemm_kernel", in_use.kernel);
            cJSON_AddBoolToObject(o, "gemm_generic", in_use.generic);
        }
        cJSON_AddNumberToObject(o, "steps", steps);
        cJSON_AddNumberToObject(o, "step_s", t_step);
        cJSON_AddNumberToObject(o, "throughput", throughput);
        cJSON_AddStringToObject(o, "unit", unit);
        cJSON_AddNumberToObject(o, "gflop_per_step", gflop_step);
        cJSON_AddNumberToObject(o, "gflops", achieved);
        cJSON_AddNumberToObject(o, "sgemm_ceiling_gflops", ceil_gflops);
        cJSON_AddStringToObject(o, "sgemm_ceiling_provider", best >= 0 ? prov[best].name : "");
        cJSON_AddNumberToObject(o, "pct_of_ceiling", ceil_gflops > 0 ? 100 * achieved / ceil_gflops : 0);
        cJSON *cj = cJSON_AddObjectToObject(o, "sgemm_ceilings");
        for (int i = 0; i < np && best >= 0; i++) cJSON_AddNumberToObject(cj, prov[i].name, pceil[i]);
        cJSON_AddNumberToObject(o, "fp32_peak_gflops", peak.gflops);
        cJSON_AddNumberToObject(o, "pct_of_fp32_peak", peak.gflops > 0 ? 100 * achieved / peak.gflops : 0);
        cJSON_AddNumberToObject(o, "peak_rss_gib", rss);
        if (dev_mem) cJSON_AddNumberToObject(o, "peak_device_gib", (double)dev_peak / (1024.0 * 1024 * 1024));
        else cJSON_AddNullToObject(o, "peak_device_gib");
        cJSON_AddNumberToObject(o, "params_trainable", (double)trainable);
        cJSON_AddNumberToObject(o, "params_adapter", (double)pc.adapter);
        cJSON_AddNumberToObject(o, "init_s", t_init);
        cJSON_AddNumberToObject(o, "epochs", epochs);
        cJSON_AddNumberToObject(o, "epochs_s", t_epochs);
        cJSON_AddNumberToObject(o, "final_loss", loss);
        if (profile) {
            cJSON *pj = cJSON_AddObjectToObject(o, "profile");
            cJSON_AddNumberToObject(pj, "step_s", t_prof);
            cJSON_AddNumberToObject(pj, "gemm_s", gemm_s);
            cJSON_AddNumberToObject(pj, "gemm_gflops", gemm_gflops);
            cJSON_AddNumberToObject(pj, "same_shape_sgemm_gflops", same_shape);
            cJSON_AddNumberToObject(pj, "gemm_pct_of_same_shape", 100 * gemm_eff);
            cJSON *oa = cJSON_AddArrayToObject(pj, "ops");
            for (int i = 0; i < npops; i++) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "op", pops[i].op);
                cJSON_AddNumberToObject(x, "calls_per_step", (double)pops[i].calls / steps);
                cJSON_AddNumberToObject(x, "s_per_step", pops[i].seconds / steps);
                if (pops[i].flops > 0) cJSON_AddNumberToObject(x, "gflops", pops[i].flops / pops[i].seconds * 1e-9);
                cJSON_AddItemToArray(oa, x);
            }
        }
        char *js = cJSON_PrintUnformatted(o);
        printf("%s\n", js);
        free(js);
        cJSON_Delete(o);
    } else {
        char rk[32] = "";
        if (pb_mc_has(&mc, "rank")) snprintf(rk, sizeof rk, " (rank %d)", pb_mc_int(&mc, "rank"));
        printf("model %s, method %s%s, batch %d, %d tokens, %s\n", model_name, mc.desc->name, rk, batch, T,
               pb_engine_describe(e));
        printf("  trainable params   %zu (adapter %zu)\n", trainable, pc.adapter);
        printf("  method init        %.3f s\n", t_init);
        printf("  step (median of %d) %.4f s   %.2f %s\n", steps, t_step, batch / t_step, unit);
        printf("  FLOPs per step     %.2f GFLOP   achieved %.1f GFLOP/s\n", gflop_step, achieved);
        if (best >= 0) {
            printf("  sgemm ceilings     at the model's GEMM shapes, best of engine split / library threads:\n");
            for (int i = 0; i < np; i++)
                printf("                     %-9s %-16s %-40s %6.1f GFLOP/s%s\n", prov[i].name, prov[i].library,
                       prov[i].kernel, pceil[i], i == best ? "  (best)" : "");
            printf("  -> %.1f%% of the best sgemm ceiling (%s)\n", 100 * achieved / ceil_gflops, prov[best].name);
            printf("  fp32 peak          %.1f GFLOP/s = %d x %d FMA units x %d lanes x 2 x %.2f GHz -> %.1f%% of peak\n",
                   peak.gflops, peak.threads, peak.fma_units, peak.lanes, peak.ghz, 100 * achieved / peak.gflops);
        }
        if (in_use.generic)
            printf("  WARNING: the GEMM provider in use runs generic kernels on this CPU (%s)\n", in_use.kernel);
        if (t_epochs > 0)
            printf("  head-only, %d epochs x %d examples with cached features: %.3f s (%.1f %s)\n",
                   epochs, steps * batch, t_epochs, throughput, unit);
        printf("  peak RSS           %.3f GiB\n", rss);
        if (dev_mem) printf("  peak device memory %.3f GiB (engine buffers + scratch)\n",
                            (double)dev_peak / (1024.0 * 1024 * 1024));
        if (profile) {
            double sum = 0;
            printf("  profile (per step, %d profiled steps: %.4f s/step; each op timed after a sync)\n", steps, t_prof);
            printf("    %-22s %8s %10s %7s %9s\n", "op", "calls", "ms", "%", "GFLOP/s");
            for (int i = 0; i < npops; i++) {
                double sec = pops[i].seconds / steps;
                sum += sec;
                printf("    %-22s %8.1f %10.3f %6.1f%%", pops[i].op, (double)pops[i].calls / steps, 1e3 * sec,
                       100 * sec / t_prof);
                if (pops[i].flops > 0) printf(" %9.1f", pops[i].flops / pops[i].seconds * 1e-9);
                printf("\n");
            }
            printf("    %-22s %8s %10.3f %6.1f%%\n", "(outside ops)", "", 1e3 * (t_prof - sum), 100 * (t_prof - sum) / t_prof);
            if (gemm_eff > 0)
                printf("  GEMM ops           %.1f GFLOP/s = %.1f%% of the best plain sgemm at the same %d shapes\n"
                       "                     (median over %d step/sgemm pairs; the plain calls ran at %.1f GFLOP/s)\n",
                       gemm_gflops, 100 * gemm_eff, npgem, steps, same_shape);
        }
    }
    free(ts);
    pb_loop_free(&L);
    free(hl);
    pb_free(e, pix);
    pb_free(e, ids);
    pb_free(e, mask);
    pb_free(e, labels);
    pb_free(e, targets);
    pb_model_free(m);
    pb_engine_free(e);
    return 0;
}
