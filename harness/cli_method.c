// cli_method.c: method arguments shared by info, trace and bench (cli_method.h).
#include <stdio.h>
#include <string.h>
#include "cli_method.h"

// Short flags and the option each sets; a flag without a value sets the given text.
static const struct {
    const char *flag, *key, *fixed;
} shorts[] = {
    {"--rank", "rank", NULL},       {"--alpha", "alpha", NULL}, {"--dropout", "dropout", NULL},
    {"--targets", "targets", NULL}, {"--init", "init", NULL},   {"--variant", "variant", NULL},
    {"--gate", "gate", NULL},       {"--rslora", "rslora", "true"}, {"--no-head", "train_head", "false"},
};

static int add(pb_cli_method *cm, const char *key, const char *val, const char *cmd) {
    if (cm->n == PB_CLI_METHOD_MAX) {
        fprintf(stderr, "peftbench %s: at most %d method options\n", cmd, PB_CLI_METHOD_MAX);
        return -1;
    }
    int k = key ? snprintf(cm->kv[cm->n], sizeof cm->kv[0], "%s=%s", key, val)
                : snprintf(cm->kv[cm->n], sizeof cm->kv[0], "%s", val);
    if (k < 0 || k >= (int)sizeof cm->kv[0]) {
        fprintf(stderr, "peftbench %s: method option too long: '%.60s...'\n", cmd, val);
        return -1;
    }
    cm->n++;
    return 1;
}

int pb_cli_method_arg(pb_cli_method *cm, int argc, char **argv, int *i, const char *cmd) {
    const char *a = argv[*i];
    int has = *i + 1 < argc;
    if (!strcmp(a, "--method") || !strcmp(a, "--opt")) {
        if (!has) {
            fprintf(stderr, "peftbench %s: %s needs a value\n", cmd, a);
            return -1;
        }
        const char *v = argv[++*i];
        if (a[2] == 'm') {
            cm->method = v;
            return 1;
        }
        return add(cm, NULL, v, cmd);
    }
    if (!strncmp(a, "--opt=", 6)) return add(cm, NULL, a + 6, cmd);
    for (size_t k = 0; k < sizeof shorts / sizeof shorts[0]; k++) {
        if (strcmp(a, shorts[k].flag)) continue;
        if (shorts[k].fixed) return add(cm, shorts[k].key, shorts[k].fixed, cmd);
        if (!has) {
            fprintf(stderr, "peftbench %s: %s needs a value\n", cmd, a);
            return -1;
        }
        return add(cm, shorts[k].key, argv[++*i], cmd);
    }
    return 0;
}

pb_status pb_cli_method_build(const pb_cli_method *cm, const char *def, uint64_t seed, pb_method_config *c,
                              char *err, size_t errlen) {
    pb_status st = pb_method_config_init(c, cm->method ? cm->method : def, seed, err, errlen);
    for (int i = 0; i < cm->n && !st; i++) st = pb_method_config_set_kv(c, cm->kv[i], err, errlen);
    if (!st) pb_method_config_finish(c);
    return st;
}
