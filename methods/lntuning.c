// lntuning.c: LayerNorm tuning (peft LNTuningConfig; Zhao et al. 2023): only the weight and bias
// of every backbone LayerNorm train, plus the head. Nothing is attached.
#include "method.h"

static const pb_method_opt lntuning_opts[] = {PB_OPT_TRAIN_HEAD};

const pb_method_desc pb_method_lntuning = {
    .name = "lntuning",
    .summary = "LayerNorm tuning: every LayerNorm weight and bias of the backbone trains",
    .reference = "peft LNTuningConfig (arXiv 2312.11420); transformers with only LayerNorms trainable",
    .opts = lntuning_opts,
    .nopts = (int)(sizeof lntuning_opts / sizeof lntuning_opts[0]),
    .site = PB_SITE_NONE,
    .unfreeze = PB_UNFREEZE_NORM | PB_UNFREEZE_HEAD,
};
