// registry.c: the method table, one line per method (its descriptor lives in its own file).
// Order is the order of `peftbench methods`, docs/methods.md and error messages.
#include "method.h"

#define PB_METHODS(X) X(full) X(head) X(bitfit) X(lntuning) X(lora) X(pissa) X(dora) X(dylora) X(adalora) X(vera) X(fourierft) X(svfit) X(aoft) X(ia3) X(adapter_h) X(adapter_p) X(adapterdrop) X(adaptformer) X(hta) X(ssf) X(vpt) X(fact_tk) X(fact_tt)

#define PB_DECLARE(m) extern const pb_method_desc pb_method_##m;
PB_METHODS(PB_DECLARE)
#define PB_ROW(m) &pb_method_##m,
static const pb_method_desc *const registry[] = {PB_METHODS(PB_ROW) NULL};

const pb_method_desc *const *pb_method_registry(int *n) {
    if (n) *n = (int)(sizeof(registry) / sizeof(registry[0])) - 1;
    return registry;
}
