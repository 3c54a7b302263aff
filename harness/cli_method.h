// cli_method.h: the method arguments every command shares (info, trace, bench): --method M,
// --opt key=value (any option of the method's descriptor) and the short flags that name common
// options (--rank, --alpha, --dropout, --rslora, --targets, --init, --variant, --gate, --no-head).
// defines: pb_cli_method, pb_cli_method_arg, pb_cli_method_build, PB_CLI_METHOD_USAGE
#ifndef PB_CLI_METHOD_H
#define PB_CLI_METHOD_H

#include "../methods/method.h"

#define PB_CLI_METHOD_MAX 32

typedef struct {
    const char *method;                 // NULL: the command's default
    int n;
    char kv[PB_CLI_METHOD_MAX][PB_OPT_STR_MAX + 64]; // "key=value" in command-line order
} pb_cli_method;

#define PB_CLI_METHOD_USAGE                                                                          \
    "  --method M        a method of `peftbench methods`\n"                                           \
    "  --opt key=value   any option of the method (repeatable); short forms: --rank R, --alpha A,\n"  \
    "                    --dropout P, --rslora, --targets a,b, --init I, --variant V, --gate G,\n"     \
    "                    --no-head (train_head=false)\n"

// Consumes a method argument at argv[*i] (advancing *i past its value). Returns 1 if consumed,
// 0 if argv[*i] is not a method argument, -1 (message printed, prefixed by cmd) on a missing or
// too long value.
int pb_cli_method_arg(pb_cli_method *cm, int argc, char **argv, int *i, const char *cmd);
// Builds the config: method (or def), then every key=value in order, then the resolve hook.
pb_status pb_cli_method_build(const pb_cli_method *cm, const char *def, uint64_t seed, pb_method_config *c,
                              char *err, size_t errlen);

#endif
