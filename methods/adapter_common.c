// adapter_common.c: the small helpers every adapter shares
// (methods_internal.h). Kept apart from method.c so adapters link without a model.
#include <string.h>
#include <stdio.h>
#include "methods_internal.h"

float *pb_grow(pb_engine *e, float **buf, size_t *cap, size_t n) {
    if (!*buf || *cap < n) {
        pb_free(e, *buf);
        *buf = pb_alloc(e, n);
        *cap = n;
    }
    return *buf;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t pb_method_seed(uint64_t seed, int index, uint64_t stream) {
    return splitmix64(splitmix64(seed ^ splitmix64(stream)) + (uint64_t)(uint32_t)index);
}

pb_adapter *pb_adapter_new(const pb_adapter_vtbl *vt, pb_linear *l, int nparams, size_t state_size) {
    pb_adapter *a = pb_xcalloc(1, sizeof(pb_adapter));
    a->vt = vt;
    a->lin = l;
    a->nparams = nparams;
    a->params = pb_xcalloc((size_t)nparams, sizeof(pb_param));
    a->state = pb_xcalloc(1, state_size);
    return a;
}

pb_param *pb_adapter_param(pb_engine *e, pb_adapter *a, int i, const char *leaf, int ndim,
                           const int64_t *shape, int no_decay) {
    PB_CHECK(i >= 0 && i < a->nparams, "param slot %d of %d", i, a->nparams);
    char name[PB_NAME_MAX];
    int n = snprintf(name, sizeof(name), "%s.%s", a->lin->name, leaf);
    PB_CHECK(n > 0 && n < (int)sizeof(name), "adapter param name too long: %s.%s", a->lin->name, leaf);
    pb_param *p = &a->params[i];
    pb_param_init(e, p, name, ndim, shape, PB_GROUP_ADAPTER);
    p->no_decay = no_decay;
    pb_param_set_trainable(e, p, 1);
    return p;
}

pb_param *pb_adapter_frozen(pb_engine *e, pb_adapter *a, const char *leaf, int ndim, const int64_t *shape) {
    char name[PB_NAME_MAX];
    int n = snprintf(name, sizeof(name), "%s.%s", a->lin->name, leaf);
    PB_CHECK(n > 0 && n < (int)sizeof(name), "adapter tensor name too long: %s.%s", a->lin->name, leaf);
    a->frozen = pb_xrealloc(a->frozen, (size_t)(a->nfrozen + 1) * sizeof(pb_param));
    pb_param *p = &a->frozen[a->nfrozen++];
    memset(p, 0, sizeof(*p));
    pb_param_init(e, p, name, ndim, shape, PB_GROUP_ADAPTER);
    return p;
}

void pb_adapter_free_common(pb_engine *e, pb_adapter *a) {
    for (int i = 0; i < a->nfrozen; i++) pb_param_free(e, &a->frozen[i]);
    free(a->frozen);
    for (int i = 0; i < a->nparams; i++) pb_param_free(e, &a->params[i]);
    free(a->params);
    free(a->state);
    free(a);
}


const float *pb_adapter_input_dropout(pb_engine *e, float **xd, size_t *cap_xd, float **mask, size_t *cap_mask,
                                      const float *x, size_t nx, float p, int train, uint64_t seed, int index,
                                      int *dropped) {
    *dropped = train && p > 0.0f;
    if (!*dropped) return x;
    pb_grow(e, xd, cap_xd, nx);
    pb_grow(e, mask, cap_mask, nx);
    pb_dropout_forward(e, *xd, *mask, x, p, pb_method_seed(seed, index, 0x10a), nx);
    return *xd;
}
