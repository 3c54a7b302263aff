// full.c: full fine-tuning — every backbone and head parameter trains; nothing is attached.
#include "method.h"

const pb_method_desc pb_method_full = {
    .name = "full",
    .summary = "full fine-tuning: every backbone and head parameter trains",
    .reference = "transformers (the model itself)",
    .site = PB_SITE_NONE,
    .unfreeze = PB_UNFREEZE_BACKBONE | PB_UNFREEZE_HEAD,
};
