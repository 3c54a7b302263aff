// adapter_p.c: Adapter^P (Pfeiffer et al. 2021, "AdapterFusion", arXiv 2005.00247): one
// bottleneck per block, after the FFN output projection only (bottleneck.c):
//   y = z + s (act(z W_dᵀ + b_d) W_uᵀ + b_u),   z = the FFN output projection's output
// The simplified placement the LoRA/FourierFT/HTA tables count: RoBERTa-large m = 16: 24 × 33,808
// = 0.81M ("0.8M"), m = 64: 3.17M ("3M"); ViT-B m = 8: 12 × 13,064 = 156,768, HTA's and AOFT's
// "Adapter" row (0.16M). AdapterFusion's extra LayerNorm and residual variants are not modelled.
// Not mergeable (nonlinear).
#include "methods_internal.h"

static const pb_method_opt adapter_p_opts[] = {
    PB_OPT_BOTTLENECK("1"),
    {"targets", PB_OPT_LIST, "output", 1, 2, 0, "attention.output|output",
     "projections followed by an adapter (Pfeiffer: the FFN output)"},
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_adapter_p = {
    .name = "adapter_p",
    .summary = "Adapter^P (Pfeiffer): bottleneck z + s up(act(down(z))) after the FFN output projection",
    .reference = "PyTorch module from Pfeiffer et al. 2021 (arXiv 2005.00247) + finite differences",
    .opts = adapter_p_opts,
    .nopts = (int)(sizeof adapter_p_opts / sizeof adapter_p_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_params = pb_bottleneck_site_params,
    .site_flops = pb_bottleneck_site_flops,
    .attach = pb_bottleneck_attach_seq,
};
