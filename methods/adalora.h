// adalora.h: AdaLoRA's pieces below the method descriptor (adalora.c), private to methods/ and
// its tests: the adapter's state, the orthogonality regulariser and the rank allocator on a set
// of AdaLoRA adapters (the descriptor's hooks apply them to every AdaLoRA adapter of a model).
// defines: pb_adalora_state, pb_adalora_vtbl, pb_adalora_orth, pb_adalora_allocate,
//          pb_adalora_collect
#ifndef PB_ADALORA_H
#define PB_ADALORA_H

#include <stdint.h>
#include "adapter.h"

// y += s (dropout(x) (A ⊙ E)ᵀ) Bᵀ, s = scaling / (r + 1e-5); params [0] A (r,in), [1] E (r,1),
// [2] B (out,r) (peft's lora_A, lora_E, lora_B).
typedef struct {
    int r, in, out, index;
    float s, p;                 // scaling / (ranknum + 1e-5), dropout probability
    // saved for backward (engine buffers)
    float *xd, *mask;           // (N,in) dropped-out input and its mask (only when dropout ran)
    float *h, *he;              // (N,r) xd Aᵀ and h ⊙ E
    float *g, *dxd;             // (N,r), (N,in) scratch
    size_t cap_xd, cap_mask, cap_h, cap_he, cap_g, cap_dxd;
    int dropped;
    // RankAllocator (host memory): EMAs of |p grad| (sensitivity) and of its deviation
    // (uncertainty) for A, E, B; the rank pattern (1 = triplet kept) once one was allocated.
    float *ipt[3], *unc[3];     // (r*in), (r), (out*r)
    uint8_t *keep;              // (r)
    int has_pattern;
    // Imported from a PEFT directory (adalora.c): the ranks are final (no allocation: see
    // pb_adalora_allocate); import_bits (import_nbits = init_r, host) is the module's entry of
    // the file's rank_pattern, kept for the export (NULL when the file had none).
    int fixed;
    uint8_t *import_bits;
    int import_nbits;
} pb_adalora_state;

extern const pb_adapter_vtbl pb_adalora_vtbl;

// The AdaLoRA adapters of a model in model order: *n of them in a malloc'd array (caller frees;
// NULL when none).
pb_adapter **pb_adalora_collect(pb_model *m, int *n);
// weight x (1/(2n)) Σ_adapters (‖A Aᵀ − I‖_F + ‖Bᵀ B − I‖_F), peft's orth regulariser; with grad
// != 0 its gradient is added to the A and B grads. Returns the term (0 for n = 0).
double pb_adalora_orth(pb_engine *e, pb_adapter **as, int n, double weight, int grad);
// peft's RankAllocator.update_and_allocate as AdaLoraModel.update_and_allocate calls it, for the
// 0-based step `step`, with T = total (the schedule's total_step): the EMAs from the current
// params and grads (steps < T − tfinal), the budget schedule, masking of E by the global kthvalue
// threshold (every deltaT steps in the budget phase, forced at T − tfinal, where the EMAs reset)
// and the fixed rank pattern afterwards. Options from c (init_r, target_r, tinit, tfinal,
// deltaT, beta1, beta2). Returns the budget of the step (-1: the pattern phase). Adapters
// imported from a PEFT directory (fixed) keep their ranks: nothing is updated or masked (-1).
int pb_adalora_allocate(pb_engine *e, pb_adapter **as, int n, const pb_method_config *c, int step, int total);

#endif
