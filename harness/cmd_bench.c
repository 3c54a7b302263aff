// cmd_bench.c: `peftbench bench`: times training steps of a model + method on the engine and puts
// them next to a cblas_sgemm ceiling measured in the same process at the model's GEMM shapes.
//
// A step = zero grads + forward + loss + backward + AdamW, as the PyTorch peer (bench/peer_torch.py)
// times it. FLOPs are analytic (2 per multiply-add, biases ignored; machine.md §5.3), counted
// per mode so that frozen weights' dW GEMMs are not credited.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "cli.h"
#include "../engine/ops.h"
#include "../engine/param.h"
#include "../models/model.h"
#include "../methods/adapter.h"

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
    const char *m = mc->method;
    if (!strcmp(m, "full")) {
        // backward = dX + dW for every GEMM (2x forward), except no dX for the image.
        f.step = 3 * fwd - f.patch;
    } else if (!strcmp(m, "head")) {
        f.step = fwd + 2 * f.head;
    } else {
        // Adapted (out x in) matrices: per target name, per layer.
        double per_layer_r = 0; // sum over adapted matrices of (in + out) * r-equivalent work
        for (int i = 0; i < mc->ntargets; i++) {
            const char *t = mc->targets[i];
            double in = D, out = D;
            if (!strcmp(t, "intermediate")) out = M;
            if (!strcmp(t, "output")) in = M;
            per_layer_r += in + out;
        }
        double r = mc->rank > 0 ? mc->rank : 8;
        if (!strcmp(m, "aoft")) r = mc->rank > 0 ? mc->rank : 8;
        // forward of the low-rank path: x A^T (in*r) then (.) B^T (r*out), 2 FLOPs per MAC.
        f.adapter_fwd = 2.0 * L * T * per_layer_r * r;
        // frozen backbone: forward + dX through every linear and attention matmul, no dW;
        // adapter: forward + dX + dW (3x); head: forward + dW + dX.
        f.step = fwd + f.adapter_fwd + f.lin + 2 * f.att + 2 * f.adapter_fwd + 2 * f.head;
    }
    return f;
}

// Median GFLOP/s of cblas_sgemm over the model's main GEMM shapes (forward NN-equivalent and the
// two backward forms), weighted by their FLOPs: the physical ceiling for this step's GEMM work.
// OpenBLAS runs on `threads` of its own threads here (the engine keeps it at 1 and splits GEMMs
// itself), so this is plain cblas_sgemm as any C program would call it.
static double bench_sgemm_ceiling(const pb_model_config *c, int B, int T, int reps, int threads) {
    int N = B * T, D = c->hidden, Mw = c->intermediate;
    int prev_threads = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    int shapes[6][4] = {
        // transA, transB, M, Nn, K encoded as: {M, Nn, K, kind} kind 0: NT (fwd), 1: NN (dX), 2: TN (dW)
        {N, D, D, 0}, {N, Mw, D, 0}, {N, D, Mw, 0}, {N, D, Mw, 1}, {Mw, D, N, 2}, {D, D, N, 2},
    };
    double total_flops = 0, total_time = 0;
    for (int s = 0; s < 6; s++) {
        int M = shapes[s][0], Nn = shapes[s][1], K = shapes[s][2], kind = shapes[s][3];
        float *A = pb_xcalloc((size_t)M * K, sizeof(float));
        float *Bm = pb_xcalloc((size_t)K * Nn, sizeof(float));
        float *C = pb_xcalloc((size_t)M * Nn, sizeof(float));
        for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
        for (size_t i = 0; i < (size_t)K * Nn; i++) Bm[i] = (float)((i * 40503u) % 1000) * 1e-3f;
        double *ts = pb_xmalloc(sizeof(double) * (size_t)reps);
        for (int r = -2; r < reps; r++) {
            double t0 = pb_now();
            if (kind == 0) // out = inp @ W^T : W stored (Nn, K)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, Nn, K, 1.f, A, K, Bm, K, 0.f, C, Nn);
            else if (kind == 1)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, Nn, K, 1.f, A, K, Bm, Nn, 1.f, C, Nn);
            else // dW (M=out, Nn=in) += dout^T (K x M) @ inp (K x Nn)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, Nn, K, 1.f, A, M, Bm, Nn, 1.f, C, Nn);
            double dt = pb_now() - t0;
            if (r >= 0) ts[r] = dt;
        }
        double t = median(ts, reps);
        total_flops += 2.0 * M * Nn * K;
        total_time += t;
        free(ts);
        free(A);
        free(Bm);
        free(C);
    }
    openblas_set_num_threads(prev_threads); // back to the engine's setting
    return total_flops / total_time * 1e-9;
}

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench bench --model NAME|DIR [options]\n"
            "  --model M         built-in config (vit-b16, vit-l16, vit-tiny, roberta-base, ...) or HF dir\n"
            "  --method M        full (default), head, lora, pissa, svfit, aoft\n"
            "  --rank R          adapter rank (default 8)\n"
            "  --targets a,b     adapted modules (default query,value)\n"
            "  --alpha A         LoRA/PiSSA alpha (default: rank)\n"
            "  --init I          lora: kaiming|gaussian; pissa: svd|niter_N\n"
            "  --batch B         batch size (default 8)\n"
            "  --seq T           RoBERTa sequence length (default 128)\n"
            "  --num-labels C    classes (default 10)\n"
            "  --steps N         timed steps (default 5)\n"
            "  --warmup N        untimed steps first (default 2)\n"
            "  --threads N       engine threads (default: cores)\n"
            "  --device D        cpu (default) or cuda\n"
            "  --no-ceiling      skip the in-process sgemm ceiling measurement\n"
            "  --epochs E        head only: time E epochs over --steps batches with cached features\n"
            "  --json            one JSON object on stdout\n");
}

int pb_cmd_bench(int argc, char **argv) {
    const char *model_name = NULL, *device = "cpu";
    int batch = 8, seq = 128, steps = 5, warmup = 2, threads = 0, num_labels = 10, json = 0;
    int ceiling = 1, epochs = 0;
    const char *method = "full", *target_list = NULL, *init = NULL;
    int rank = 8;
    float alpha = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"method", required_argument, 0, 'M'},
        {"rank", required_argument, 0, 'r'},  {"targets", required_argument, 0, 'g'},
        {"batch", required_argument, 0, 'b'}, {"seq", required_argument, 0, 's'},
        {"steps", required_argument, 0, 'n'}, {"warmup", required_argument, 0, 'w'},
        {"threads", required_argument, 0, 't'}, {"device", required_argument, 0, 'd'},
        {"num-labels", required_argument, 0, 'c'}, {"json", no_argument, 0, 'j'},
        {"no-ceiling", no_argument, 0, 'C'}, {"epochs", required_argument, 0, 'E'},
        {"init", required_argument, 0, 'I'}, {"alpha", required_argument, 0, 'A'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model_name = optarg; break;
        case 'M': method = optarg; break;
        case 'r': rank = atoi(optarg); break;
        case 'g': target_list = optarg; break;
        case 'I': init = optarg; break;
        case 'A': alpha = (float)atof(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 's': seq = atoi(optarg); break;
        case 'n': steps = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'd': device = optarg; break;
        case 'c': num_labels = atoi(optarg); break;
        case 'j': json = 1; break;
        case 'C': ceiling = 0; break;
        case 'E': epochs = atoi(optarg); break;
        case 'h': bench_usage(stdout); return 0;
        default: bench_usage(stderr); return 2;
        }
    }
    if (!model_name) {
        bench_usage(stderr);
        return 2;
    }
    // Options may come in any order: build the method config once they are all known.
    pb_method_config mc;
    pb_method_config_default(&mc, method);
    mc.rank = rank;
    mc.alpha = alpha;
    if (init) snprintf(mc.init, sizeof mc.init, "%s", init);
    if (target_list) {
        mc.ntargets = 0;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", target_list);
        for (char *tok = strtok(buf, ","); tok && mc.ntargets < PB_MAX_TARGETS; tok = strtok(NULL, ","))
            snprintf(mc.targets[mc.ntargets++], sizeof mc.targets[0], "%s", tok);
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
    int head_only = !strcmp(mc.method, "head");
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
    pb_adamw_config opt = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    double *ts = pb_xmalloc(sizeof(double) * (size_t)steps);
    float loss = 0;
    for (int s = -warmup; s < steps; s++) {
        double t0 = pb_now();
        pb_params_zero_grad(e, tr, ntr);
        if (head_only) {
            const float *feat = pb_model_features(m, &bt, 0, (uint64_t)s);
            pb_model_head_forward(m, feat, batch, 1, (uint64_t)s);
            loss = pb_model_head_loss(m, &bt, 0);
            pb_model_head_backward(m, &bt);
        } else {
            pb_model_forward(m, &bt, 1, (uint64_t)s);
            loss = pb_model_loss(m, &bt, 0);
            pb_model_backward(m, &bt);
        }
        pb_params_adamw_step(e, tr, ntr, &opt, s + warmup + 1);
        pb_sync(e);
        double dt = pb_now() - t0;
        if (s >= 0) ts[s] = dt;
    }
    double t_step = median(ts, steps);
    // Head-only over E epochs with feature caching, as the runner trains it: one backbone forward
    // per example (for `steps` batches), then E epochs of head steps on the cached features.
    double t_epochs = 0;
    if (head_only && epochs > 0) {
        size_t fb = (size_t)batch * cfg.hidden;
        float *cache = pb_alloc(e, fb * (size_t)steps);
        double t0 = pb_now();
        for (int s = 0; s < steps; s++)
            pb_copy(e, cache + fb * (size_t)s, pb_model_features(m, &bt, 0, (uint64_t)s), fb);
        int step = warmup + steps;
        for (int ep = 0; ep < epochs; ep++)
            for (int s = 0; s < steps; s++) {
                pb_params_zero_grad(e, tr, ntr);
                pb_model_head_forward(m, cache + fb * (size_t)s, batch, 1, (uint64_t)s);
                loss = pb_model_head_loss(m, &bt, 0);
                pb_model_head_backward(m, &bt);
                pb_params_adamw_step(e, tr, ntr, &opt, ++step);
            }
        pb_sync(e);
        t_epochs = pb_now() - t0;
        pb_free(e, cache);
    }
    bench_flops fl = bench_count_flops(&cfg, &mc, seq);
    double gflop_step = fl.step * batch * 1e-9;
    double achieved = gflop_step / t_step;
    double ceil_gflops = ceiling && dev == PB_DEVICE_CPU ? bench_sgemm_ceiling(&cfg, batch, T, 5, pb_engine_threads(e)) : 0;
    double rss = (double)pb_peak_rss() / (1024.0 * 1024 * 1024);
    size_t dev_cur = 0, dev_peak = 0;
    int dev_mem = pb_engine_memory(e, &dev_cur, &dev_peak); // GPU: the torch max_memory_allocated analogue
    char dev_json[32] = "null";
    if (dev_mem) snprintf(dev_json, sizeof dev_json, "%.4f", (double)dev_peak / (1024.0 * 1024 * 1024));
    pb_param_counts pc = pb_model_count(m);
    const char *unit = cfg.arch == PB_ARCH_VIT ? "img/s" : "seq/s";
    // With --epochs, throughput counts examples seen over all epochs (what the user waits for).
    double throughput = t_epochs > 0 ? (double)epochs * steps * batch / t_epochs : batch / t_step;
    if (json) {
        printf("{\"model\": \"%s\", \"method\": \"%s\", \"rank\": %d, \"batch\": %d, \"tokens\": %d, "
               "\"threads\": %d, \"backend\": \"%s\", \"steps\": %d, \"step_s\": %.6f, "
               "\"throughput\": %.4f, \"unit\": \"%s\", \"gflop_per_step\": %.4f, "
               "\"gflops\": %.3f, \"sgemm_ceiling_gflops\": %.3f, \"pct_of_ceiling\": %.2f, "
               "\"peak_rss_gib\": %.4f, \"peak_device_gib\": %s, \"params_trainable\": %zu, \"params_adapter\": %zu, "
               "\"init_s\": %.4f, \"epochs\": %d, \"epochs_s\": %.4f, \"final_loss\": %.6f}\n",
               model_name, mc.method, mc.rank, batch, T, pb_engine_threads(e), pb_engine_describe(e),
               steps, t_step, throughput, unit, gflop_step, achieved, ceil_gflops,
               ceil_gflops > 0 ? 100 * achieved / ceil_gflops : 0, rss, dev_json, trainable, pc.adapter, t_init,
               epochs, t_epochs, loss);
    } else {
        printf("model %s, method %s (rank %d), batch %d, %d tokens, %s\n", model_name, mc.method,
               mc.rank, batch, T, pb_engine_describe(e));
        printf("  trainable params   %zu (adapter %zu)\n", trainable, pc.adapter);
        printf("  method init        %.3f s\n", t_init);
        printf("  step (median of %d) %.4f s   %.2f %s\n", steps, t_step, batch / t_step, unit);
        printf("  FLOPs per step     %.2f GFLOP   achieved %.1f GFLOP/s\n", gflop_step, achieved);
        if (ceil_gflops > 0)
            printf("  sgemm ceiling      %.1f GFLOP/s at these shapes -> %.1f%% of ceiling\n",
                   ceil_gflops, 100 * achieved / ceil_gflops);
        if (t_epochs > 0)
            printf("  head-only, %d epochs x %d examples with cached features: %.3f s (%.1f %s)\n",
                   epochs, steps * batch, t_epochs, throughput, unit);
        printf("  peak RSS           %.3f GiB\n", rss);
        if (dev_mem) printf("  peak device memory %.3f GiB (engine buffers + scratch)\n",
                            (double)dev_peak / (1024.0 * 1024 * 1024));
    }
    free(ts);
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
