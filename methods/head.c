// head.c: head-only training (linear probing): the backbone is frozen, the classifier trains.
// With random augmentation off, the runner trains it on cached features.
#include "method.h"

const pb_method_desc pb_method_head = {
    .name = "head",
    .summary = "linear probing: frozen backbone, the classifier head trains",
    .reference = "transformers (the model itself)",
    .site = PB_SITE_NONE,
    .unfreeze = PB_UNFREEZE_HEAD,
};
