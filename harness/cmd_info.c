// cmd_info.c: `peftbench info MODEL [--json] [--num-labels N] [--method M] [--opt key=value ...]`:
// architecture summary and exact parameter counts. Everything comes from the config and the
// method descriptor's formulas (pb_method_estimate: size rule, trainable parameters, adapter
// FLOPs); nothing is allocated, so `info vit-l16 --method svfit --rank 768` is instant.
// tests/test_methods_model.c checks the formulas against instantiated models.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "cli.h"
// defines: pb_model_config_*, pb_model_* and model_count_config (counts from shapes)
#include "../models/model_internal.h"
// defines: pb_method_config, pb_method_estimate
#include "../methods/method.h"
#include "cli_method.h"

static void info_usage(FILE *f) {
    fprintf(f, "usage: peftbench info MODEL [--json] [--num-labels N] [--method M] [--opt key=value ...]\n"
               PB_CLI_METHOD_USAGE
               "       peftbench info --system [--json] [--peak] [--threads N]\n"
               "  --system: CPU ISA, GEMM providers and the kernels they selected, the OpenBLAS\n"
               "         core decision; --peak adds the measured FP32 FMA peak and its derivation\n"
               "  MODEL: a built-in name (vit-b16, vit-l16, roberta-base, roberta-large, vit-tiny,\n"
               "         roberta-tiny) or an HF save_pretrained directory (config.json)\n");
}

// Loads MODEL as a built-in name or a directory holding config.json.
static pb_status info_config(const char *model, pb_model_config *cfg, char *err, size_t errlen) {
    struct stat sb;
    if (stat(model, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/config.json", model);
        return pb_model_config_read(path, cfg, err, errlen);
    }
    return pb_model_config_builtin(model, cfg, err, errlen);
}

static int parse_int(const char *flag, const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000000) {
        fprintf(stderr, "peftbench info: %s: expected a non-negative integer, got '%s'\n", flag, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int pb_cmd_info(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--system")) return pb_cmd_info_system(argc, argv);
    const char *model = NULL;
    int json = 0, num_labels = 0, k;
    pb_cli_method cm;
    memset(&cm, 0, sizeof cm);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if ((k = pb_cli_method_arg(&cm, argc, argv, &i, "info")) != 0) {
            if (k < 0) return 2;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            info_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--num-labels") && has) {
            if (!parse_int(a, argv[++i], &num_labels)) return 2;
        } else if (a[0] != '-' && !model) {
            model = a;
        } else {
            fprintf(stderr, "peftbench info: unknown or incomplete argument '%s'\n", a);
            info_usage(stderr);
            return 2;
        }
    }
    if (!model) {
        info_usage(stderr);
        return 2;
    }
    char err[1024];
    pb_model_config cfg;
    if (info_config(model, &cfg, err, sizeof(err)) != PB_OK) {
        fprintf(stderr, "peftbench info: %s\n", err);
        return 2;
    }
    if (num_labels > 0) cfg.num_labels = num_labels;
    if (pb_model_config_check(&cfg, model, err, sizeof(err)) != PB_OK) {
        fprintf(stderr, "peftbench info: %s\n", err);
        return 2;
    }

    pb_param_counts c = model_count_config(&cfg);
    pb_method_config mc;
    pb_method_cost cost;
    if (pb_cli_method_build(&cm, "full", 0, &mc, err, sizeof(err)) != PB_OK ||
        pb_method_estimate(&mc, &cfg, (double)c.backbone, (double)c.head, &cost, err, sizeof(err)) != PB_OK) {
        fprintf(stderr, "peftbench info: %s\n", err);
        return 2;
    }
    const char *method = mc.desc->name;
    c.adapter = (size_t)cost.adapter;
    c.trainable = (size_t)cost.trainable;
    c.trainable_backbone = (size_t)(cost.trainable_backbone + cost.adapter);
    size_t trainable_head = (size_t)cost.trainable_head;
    const char *arch = cfg.arch == PB_ARCH_VIT ? "vit" : "roberta";
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddStringToObject(o, "arch", arch);
        cJSON_AddNumberToObject(o, "hidden", cfg.hidden);
        cJSON_AddNumberToObject(o, "layers", cfg.layers);
        cJSON_AddNumberToObject(o, "heads", cfg.heads);
        cJSON_AddNumberToObject(o, "intermediate", cfg.intermediate);
        cJSON_AddNumberToObject(o, "layer_norm_eps", cfg.ln_eps);
        if (cfg.arch == PB_ARCH_VIT) {
            cJSON_AddNumberToObject(o, "image_size", cfg.image_size);
            cJSON_AddNumberToObject(o, "patch_size", cfg.patch_size);
            cJSON_AddNumberToObject(o, "channels", cfg.channels);
            int g = cfg.image_size / cfg.patch_size;
            cJSON_AddNumberToObject(o, "tokens", g * g + 1);
        } else {
            cJSON_AddNumberToObject(o, "vocab_size", cfg.vocab_size);
            cJSON_AddNumberToObject(o, "max_positions", cfg.max_positions);
        }
        cJSON_AddNumberToObject(o, "num_labels", cfg.num_labels);
        cJSON_AddStringToObject(o, "method", method);
        cJSON *opts = cJSON_AddObjectToObject(o, "options");
        pb_method_config_to_json(&mc, opts);
        cJSON_AddNumberToObject(o, "params_total", (double)c.total);
        cJSON_AddNumberToObject(o, "params_backbone", (double)c.backbone);
        cJSON_AddNumberToObject(o, "params_head", (double)c.head);
        cJSON_AddNumberToObject(o, "params_trainable", (double)c.trainable);
        cJSON_AddNumberToObject(o, "params_trainable_backbone", (double)c.trainable_backbone);
        cJSON_AddNumberToObject(o, "params_trainable_head", (double)trainable_head);
        cJSON_AddNumberToObject(o, "params_adapter", (double)c.adapter);
        cJSON_AddNumberToObject(o, "adapted_linears", cost.nsites);
        cJSON_AddNumberToObject(o, "adapted_norms", cost.nnorms);
        cJSON_AddNumberToObject(o, "added_tokens", cost.ntokens);
        int T = cfg.arch == PB_ARCH_VIT ? 0 : 128;
        cJSON_AddNumberToObject(o, "flops_forward", pb_model_flops_forward(&cfg, T));
        cJSON_AddNumberToObject(o, "adapter_flops_per_token", cost.adapter_flops);
        char *s = cJSON_Print(o);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
        return 0;
    }
    printf("model            %s (%s)\n", model, arch);
    printf("shape            hidden %d, layers %d, heads %d, mlp %d, layer_norm_eps %g\n",
           cfg.hidden, cfg.layers, cfg.heads, cfg.intermediate, (double)cfg.ln_eps);
    if (cfg.arch == PB_ARCH_VIT) {
        int g = cfg.image_size / cfg.patch_size;
        printf("input            %dx%dx%d, patch %d, tokens %d\n", cfg.channels, cfg.image_size,
               cfg.image_size, cfg.patch_size, g * g + 1);
    } else {
        printf("input            vocab %d, max positions %d, pad id %d\n", cfg.vocab_size,
               cfg.max_positions, cfg.pad_id);
    }
    printf("labels           %d%s\n", cfg.num_labels, cfg.num_labels == 1 ? " (regression)" : "");
    printf("method           %s\n", method);
    printf("params_total     %zu\n", c.total);
    printf("params_backbone  %zu\n", c.backbone);
    printf("params_head      %zu\n", c.head);
    printf("params_trainable %zu (backbone %zu, head %zu)\n", c.trainable, c.trainable_backbone,
           trainable_head);
    char norms[48] = "";
    if (cost.nnorms) snprintf(norms, sizeof norms, " and %d LayerNorms", cost.nnorms);
    if (cost.ntokens) snprintf(norms, sizeof norms, ", %d tokens added to the sequence", cost.ntokens);
    printf("params_adapter   %zu (%d adapted linears%s, %.0f forward FLOPs per token)\n", c.adapter, cost.nsites,
           norms, cost.adapter_flops);
    return 0;
}
