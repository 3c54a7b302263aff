// adapter_h.c: Adapter^H (Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP",
// arXiv 1902.00751): a bottleneck with an internal skip connection after both sub-layers of every
// block — on the output of the attention output projection and of the FFN output projection,
// before the block's residual (and, in RoBERTa, its LayerNorm):
//   y = z + s (act(z W_dᵀ + b_d) W_uᵀ + b_u),   z = the projection's output (bottleneck.c)
// Parameters per adapted projection: 2 D m + m + D (RoBERTa-large, m = 8: 24 × 2 × 17,416 = 0.84M,
// the papers' "0.8M"; m = 64: 6.34M, "6M"). Not mergeable (nonlinear).
#include "methods_internal.h"

static const pb_method_opt adapter_h_opts[] = {
    PB_OPT_BOTTLENECK("1"),
    {"targets", PB_OPT_LIST, "attention.output,output", 1, 2, 0, "attention.output|output",
     "projections followed by an adapter (Houlsby: both sub-layers)"},
    PB_OPT_TRAIN_HEAD,
};

const pb_method_desc pb_method_adapter_h = {
    .name = "adapter_h",
    .summary = "Adapter^H (Houlsby): bottleneck z + s up(act(down(z))) after the attention and the FFN output projections",
    .reference = "PyTorch module from Houlsby et al. 2019 (arXiv 1902.00751) + finite differences",
    .opts = adapter_h_opts,
    .nopts = (int)(sizeof adapter_h_opts / sizeof adapter_h_opts[0]),
    .site = PB_SITE_LINEAR,
    .unfreeze = PB_UNFREEZE_HEAD,
    .site_params = pb_bottleneck_site_params,
    .site_flops = pb_bottleneck_site_flops,
    .attach = pb_bottleneck_attach_seq,
};
