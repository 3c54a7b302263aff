// bitfit.c: BitFit (Ben Zaken et al. 2022): only the bias terms of the backbone train (every
// ".bias": attention q/k/v/output, both FFN linears, the LayerNorms, the patch embedding), plus
// the head. Nothing is attached, so there is nothing to merge.
#include "method.h"

static const pb_method_opt bitfit_opts[] = {PB_OPT_TRAIN_HEAD};

const pb_method_desc pb_method_bitfit = {
    .name = "bitfit",
    .summary = "BitFit: every bias of the backbone trains (attention, FFN, LayerNorm), weights frozen",
    .reference = "arXiv 2106.10199; transformers with only the biases trainable",
    .opts = bitfit_opts,
    .nopts = (int)(sizeof bitfit_opts / sizeof bitfit_opts[0]),
    .site = PB_SITE_NONE,
    .unfreeze = PB_UNFREEZE_BIAS | PB_UNFREEZE_HEAD,
};
