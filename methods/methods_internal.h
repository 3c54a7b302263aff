// methods_internal.h: private to methods/ (and its tests): the state structs of the adapters,
// the host SVD helpers and small shared utilities. Not part of the public interface.
// defines: pb_lora_state, pb_dylora_state, pb_svfit_state, pb_vera_state, pb_fourierft_state, pb_fact_state, pb_bottleneck, pb_aoft_state, pb_svd_full, pb_svd_lowrank,
//          pb_aoft_clamp_count, pb_grow, pb_method_seed, pb_adapter_new, pb_adapter_param,
//          pb_adapter_free_common, pb_lora_create, pb_lora_scaling, pb_lora_export_peft,
//          PB_OPT_LORA_* (shared LoRA-family options), pb_peft_* (PEFT export/import layout),
//          pb_mt19937, pb_mt_seed, pb_mt_next, pb_torch_uniform (torch's CPU generator)
#ifndef PB_METHODS_INTERNAL_H
#define PB_METHODS_INTERNAL_H

#include "adapter.h"
#include "../models/safetensors.h"

// ----------------------------------------------------------------------------
// Shared utilities

// Ensures *buf (engine memory) holds at least n floats; grows (contents lost) and updates *cap.
float *pb_grow(pb_engine *e, float **buf, size_t *cap, size_t n);
// Deterministic per-module seed: mixes the run seed, the linear's index and a stream tag.
uint64_t pb_method_seed(uint64_t seed, int index, uint64_t stream);
// Allocates an adapter with nparams zeroed pb_param slots and a zeroed state of state_size
// bytes, attached to l (l->adapter is set by the caller). Freed by the method's free().
pb_adapter *pb_adapter_new(const pb_adapter_vtbl *vt, pb_linear *l, int nparams, size_t state_size);
// Creates trainable adapter parameter i named "<linear name>.<leaf>".
pb_param *pb_adapter_param(pb_engine *e, pb_adapter *a, int i, const char *leaf, int ndim,
                           const int64_t *shape, int no_decay);
// Creates a frozen tensor "<linear name>.<leaf>" (zeroed, no grad) in a->frozen; freed with a.
// The array grows: a pointer returned by an earlier call is invalid after the next one.
pb_param *pb_adapter_frozen(pb_engine *e, pb_adapter *a, const char *leaf, int ndim, const int64_t *shape);
// The LoRA family's input dropout: when training with p > 0, *xd (N,in) = dropout(x) with its
// *mask (grown as needed; per-step seed, stream 0x10a of the linear's index) and *dropped = 1;
// returns the branch input (*xd, or x itself).
const float *pb_adapter_input_dropout(pb_engine *e, float **xd, size_t *cap_xd, float **mask, size_t *cap_mask,
                                      const float *x, size_t nx, float p, int train, uint64_t seed, int index,
                                      int *dropped);
// Frees the params and frozen arrays, the state and a (not the state's own buffers).
void pb_adapter_free_common(pb_engine *e, pb_adapter *a);

// ----------------------------------------------------------------------------
// SVD on the host (float32, LAPACK). W is (m,n) row-major; k = min(m,n).

// Full economy SVD (LAPACKE_sgesdd): U (m,k), S (k) descending, Vt (k,n); caller-allocated host
// arrays. Returns PB_ERR_NUMERIC when LAPACK fails to converge.
pb_status pb_svd_full(const float *W, int m, int n, float *U, float *S, float *Vt, char *err,
                      size_t errlen);
// Randomized rank-r SVD as torch.svd_lowrank(W, q=r, niter) (Halko et al. 2009, Alg. 4.4 + 5.1;
// no oversampling): U (m,r), S (r), Vt (r,n). The Gaussian test matrix comes from pb_rng(seed).
pb_status pb_svd_lowrank(const float *W, int m, int n, int r, int niter, uint64_t seed, float *U,
                         float *S, float *Vt, char *err, size_t errlen);

// ----------------------------------------------------------------------------
// Adapter states (all float* are engine buffers owned by the state)

// LoRA and PiSSA: y += s * B A dropout(x).
typedef struct {
    int r, in, out, index;
    float s, p;            // scaling, dropout probability
    int pissa;             // 1: PiSSA init (A0/B0 kept for the rank-2r PEFT export)
    float *A0, *B0;        // (r,in), (out,r): PiSSA's initial factors, or NULL
    // saved for backward
    float *xd, *mask;      // (N,in) dropped-out input and its mask (only when dropout ran)
    float *h;              // (N,r) = xd A^T
    float *gh, *dxd;       // scratch (N,r), (N,in)
    size_t cap_xd, cap_mask, cap_h, cap_gh, cap_dxd;
    int dropped;           // last forward applied dropout
} pb_lora_state;

// SVFit: y = W_e x + U_r (sigma * V_r^T x) + b, W_e in the base weight.
typedef struct {
    int r, in, out;
    float *U;    // (out,r) frozen left singular vectors
    float *Vt;   // (r,in) frozen right singular vectors (rows)
    float *S0;   // (r) initial singular values (frozen copy, for docs/export)
    float *h;    // (N,r) saved V_r^T x
    float *gu;   // (N,r) scratch
    size_t cap_h, cap_gu;
} pb_svfit_state;

// VeRA: y += lambda_b * ((lambda_d * (xd A^T)) B^T), A, B frozen slices of the shared projections.
typedef struct {
    int r, in, out, index;
    float p;            // dropout probability
    float *A, *B;       // frozen slices (r,in), (out,r): a->frozen[0].data, [1].data
    float *xd, *mask;   // (N,in) dropout
    float *h, *hd;      // (N,r) xd Aᵀ, λ_d ⊙ h
    float *t;           // (N,out) hd Bᵀ
    float *gt, *gh, *dxd; // (N,out), (N,r), (N,in) scratch
    size_t cap_xd, cap_mask, cap_h, cap_hd, cap_t, cap_gt, cap_gh, cap_dxd;
    int dropped;
} pb_vera_state;

// FourierFT: y += x ΔWᵀ, ΔW = α/(MN) (Pu ⊙ [c,c]) Pvᵀ (fourierft.c); M = out, N = in.
typedef struct {
    int M, N, n;
    float scale;                    // α / (M N)
    struct pb_fourier_basis *basis; // frozen bases + scratch, shared by the adapters of one shape (refcounted)
    float *dW;                      // (M,N) ΔW of the last forward (backward's dx)
} pb_fourierft_state;

// FacT (fact.c): a linear (in -> out) is k = max(in,out)/d blocks of d x d, d = min(in,out).
// Every adapted linear shares U (r,d), V (d,r) and (TK) the core C (r,r,r) (struct
// pb_fact_shared, refcounted); its own core M (r, k r) is C ×3 P_i with its P columns (r,k) (TK,
// rebuilt each forward) or a trainable tensor (TT). expand (out = k d, square included):
// y += s · [dropout(x Uᵀ M)] Vᵀ per block; reduce (in = k d): y += s · dropout(u Mᵀ) Vᵀ with
// u = [x_j Uᵀ]_j.
struct pb_fact_shared;
typedef struct {
    int in, out, d, k, r, index;
    int reduce;                // in = k d (FFN output); else out = k d
    int tk;                    // FacT-TK (M = C ×3 P_i); else FacT-TT (M trainable)
    float s, p;                // scale, dropout probability
    struct pb_fact_shared *sh; // U, V, C and the backward scratch (host memory, refcounted)
    float *M;                  // (r, k r): TK an engine buffer owned here; TT params[0].data
    float *h;                  // expand (N,r) = x Uᵀ; reduce (N,k r) = [x_j Uᵀ]_j
    float *g;                  // expand (N,k r) = h M; reduce (N,r) = u Mᵀ; after dropout
    float *mask;               // (as g) dropout mask of the last training forward
    size_t cap_h, cap_g, cap_mask;
    int dropped;               // the last forward applied dropout
} pb_fact_state;

// The adapter methods' bottleneck (bottleneck.c): out += s (act(u W_dᵀ + b_d) W_uᵀ + b_u) on an
// input u (N,D); params of the owning adapter: [0] W_d (m,D), [1] b_d (m), [2] W_u (D,m), [3] b_u (D).
typedef struct {
    int D, m, gelu;      // gelu: act is GELU (else ReLU)
    float s;             // scaling
    float *u;            // (N,D) saved input
    float *h, *act;      // (N,m) pre-activation, activation
    float *t;            // (N,D) a W_uᵀ + b_u
    float *gt, *ga, *gh; // (N,D), (N,m), (N,m) scratch
    size_t cap_u, cap_h, cap_act, cap_t, cap_gt, cap_ga, cap_gh;
} pb_bottleneck;
// Creates a's four params (a has 4 slots) and initialises them (options scaling, act, init).
void pb_bottleneck_init(pb_engine *e, pb_adapter *a, pb_bottleneck *b, int D, int m, const pb_method_config *c,
                        int index);
// out (N,D) += s B(u); u may alias out (read before out changes). Saves what backward needs.
void pb_bottleneck_forward(pb_adapter *a, pb_engine *e, pb_bottleneck *b, const float *u, float *out, int N);
// dout (N,D): gradient wrt out; du (N,D) += the gradient wrt u, or NULL; dout may alias du.
void pb_bottleneck_backward(pb_adapter *a, pb_engine *e, pb_bottleneck *b, const float *dout, float *du, int N);
void pb_bottleneck_free(pb_engine *e, pb_bottleneck *b);
// The sequential adapter (Houlsby, Pfeiffer): y = z + s B(z) on l's output z (rank = m).
pb_status pb_bottleneck_attach_seq(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site,
                                   char *err, size_t errlen);
// Parameters / forward FLOPs per token of one bottleneck on a D-wide stream (option rank = m).
double pb_bottleneck_params(const pb_method_config *c, int D);
double pb_bottleneck_flops(const pb_method_config *c, int D);
// site_params / site_flops of the sequential adapters (D = the linear's out).
double pb_bottleneck_site_params(const pb_method_config *c, const char *role, int in, int out);
double pb_bottleneck_site_flops(const pb_method_config *c, const char *role, int in, int out);
// Options every bottleneck method has.
#define PB_OPT_BOTTLENECK(scale_def)                                                                \
    {"rank", PB_OPT_INT, "8", 1, PB_OPT_RANK_MAX, 0, NULL, "m: bottleneck width"},                    \
    {"scaling", PB_OPT_NUM, scale_def, -1e6, 1e6, 0, NULL, "s: out += s * up(act(down(u)))"},          \
    {"act", PB_OPT_ENUM, "relu", 0, 0, 0, "relu|gelu", "bottleneck nonlinearity"},                    \
    {"init", PB_OPT_ENUM, "lora", 0, 0, 0, "lora|houlsby",                                         \
     "lora: down kaiming-uniform, up 0 (step 0 = pre-trained); houlsby: both N(0, 0.01^2)"}

// AOFT: LoRA+AOFT (variant "lora"): y += x AO_down diag(lam) AO_up^T, q_down (in), q_up (out).
// Adapter+AOFT (variant "adapter"): z = base output, out = z + z AO_down diag(lam) AO_up^T with
// q_down, q_up in R^out (the layer rewrites dy).
typedef struct {
    int d, in, out, Din; // Din: rows of AO_down (in for "lora", out for "adapter")
    int adapter;         // variant "adapter"
    int scalar_gate;     // gate "scalar": lam = s * ones(d)
    int32_t *nclamp;     // (1) engine counter: training forwards' AO builds that clamped 1+q0
    float *AOd, *AOu;    // (Din,d), (out,d) built from q each forward (pb_ao_forward)
    float *lam;          // (d) engine copy of the gate (scalar gate: s broadcast)
    float *ones;         // (d) ones, for the scalar gate
    float *dlam;         // (d) scratch
    float *GAd, *GAu;    // (Din,d), (out,d) scratch gradients wrt AO
    float *z;            // (N,out) saved base output ("adapter")
    float *h0, *hl, *gu; // (N,d) saved x AO_down, its gated copy, scratch
    size_t cap_z, cap_h0, cap_hl, cap_gu;
} pb_aoft_state;
// The clamp count of one AOFT adapter (downloads its engine counter: synchronises on CUDA).
int64_t pb_aoft_clamp_count(pb_adapter *a, pb_engine *e);

// DyLoRA (dylora.c): y += (alpha/b) (xd A[:b]^T) B[:, :b]^T with b sampled per training step
// (one b for the whole model: the first DyLoRA adapter in model order samples it into the shared
// struct, the others read it) and b = eval_rank otherwise.
typedef struct {
    int b;          // the rank of the current training step
    int64_t t;      // training forwards of the leader so far (sampling "cycle")
    int refs;       // adapters sharing it
} pb_dylora_shared;
typedef struct {
    int r, in, out, index;
    int eval_rank;         // b outside training
    int cycle;             // sampling "cycle": b = 1 + (t mod r); else uniform on 1..r
    int frozen;            // the paper's "frozen" mode: only row b of A / column b of B learn
    float alpha, p;        // scaling alpha/b; dropout probability
    int leader;            // this adapter samples shared->b
    pb_dylora_shared *shared; // host memory, refcounted
    int b;                 // the rank of the last forward
    float s;               // alpha / b of the last forward
    float *xd, *mask, *h, *gh, *dxd; // as pb_lora_state, (N,in), (N,in), (N,b), (N,b), (N,in)
    size_t cap_xd, cap_mask, cap_h, cap_gh, cap_dxd;
    int dropped;
} pb_dylora_state;

// Creates a LoRA adapter (A, B zeroed, trainable) on l with scaling s and dropout p; the
// caller fills A/B (lora.c: kaiming/gaussian; pissa.c: SVD factors). Sets l->adapter.
pb_adapter *pb_lora_create(pb_engine *e, pb_linear *l, int r, float s, float p, int index);
// LoRA's A init (r,in) into engine buffer A: kaiming_uniform(a=sqrt 5), or N(0, 1/r^2) when gaussian.
void pb_lora_init_A(pb_engine *e, float *A, int r, int in, int gaussian, uint64_t seed);
// LoRA scaling from a config: alpha/r, or alpha/sqrt(r) with rslora (alpha <= 0: alpha = r).
float pb_lora_scaling(const pb_method_config *c, int r);
// The LoRA family's cost formulas (lora.c; PiSSA has the same shapes).
double pb_lora_site_params(const pb_method_config *c, const char *role, int in, int out);
double pb_lora_site_flops(const pb_method_config *c, const char *role, int in, int out);
// PEFT export of LoRA adapters (peft_io.c): LoRA as is, PiSSA as its rank-2r conversion.
pb_status pb_lora_export_peft(pb_model *m, const pb_method_config *c, const char *dir, char *err, size_t errlen);
// Key prefix of every tensor in a PEFT adapter_model.safetensors.
#define PEFT_PREFIX "base_model.model."
// peft's LoraConfig as adapter_config.json fields (peft_type LORA, r, lora_alpha, ...; takes
// targets, a JSON list); the caller passes it to pb_peft_finish, which frees it.
cJSON *pb_peft_lora_config(int r, float alpha, float dropout, cJSON *targets, int rslora, int dora, int gaussian);
// PEFT layout helpers for a method's exporter (peft_io.c). pb_peft_module: the module path PEFT
// uses for a linear (without "base_model.model."; ViT in transformers 5 names); pb_peft_target:
// its target_modules entry (unambiguous suffix, or the full path for ".dense" linears);
// pb_peft_add_target appends t to a JSON list once. pb_peft_finish adds the head tensors as
// modules_to_save to w, writes dir/adapter_model.safetensors, completes the config o (modules_to_save,
// base model, task_type, inference_mode, peftbench_method) and writes dir/adapter_config.json
// atomically; it takes w and o (freed, also on error).
struct pb_st_writer;
void pb_peft_module(const pb_model *m, const pb_linear *l, char *out, size_t n);
void pb_peft_target(const pb_model *m, const pb_linear *l, char *out, size_t n);
void pb_peft_add_target(cJSON *list, const char *t);
pb_status pb_peft_finish(pb_model *m, const pb_method_config *c, struct pb_st_writer *w, cJSON *o, const char *dir,
                         char *err, size_t errlen);

// PEFT import helpers for the methods' import_peft hooks (peft_io.c). Errors name the file and
// the field or tensor.
// dir/name into out (n bytes).
void pb_peft_path(const char *dir, const char *name, char *out, size_t n);
// The encoder linear a PEFT module path names (with or without the model prefix; hub names and,
// for ViT, transformers-5 names), or NULL; *index = its position in pb_model_linears.
pb_linear *pb_peft_find_linear(pb_model *m, const char *module, int *index);
// Pass 1 of an import: opens dir/adapter_model.safetensors into *f (the caller closes it, also
// on error) and sorts its tensors: an adapter tensor is PEFT_PREFIX "<module>.<leaf>" with leaf
// one of leaves[0..nleaves) and module an encoder linear of m without an adapter: tab[i * nleaves
// + k] (nlinears * nleaves entries, zeroed by the caller) = the tensor of leaf k on linear i;
// any other tensor must be a head parameter of m (PEFT_PREFIX + its name, same element count)
// or one of the full keys in extra (NULL-terminated, or NULL; the caller reads those). `what`
// names the adapter tensors in messages ("a LoRA factor"). Errors: a key that is neither, a
// module that is no linear of m, a linear with an adapter already (PB_ERR_ARG), one linear
// named twice (hub and transformers-5 names).
pb_status pb_peft_collect(pb_model *m, const char *dir, pb_st_file *f, const char *const *leaves, int nleaves,
                          const char *const *extra, const char *what, const pb_st_tensor **tab, char *err,
                          size_t errlen);
// 1 if T has ndim dims equal to d0, d1 (d1 ignored when ndim == 1).
int pb_peft_shape(const pb_st_tensor *T, int ndim, int64_t d0, int64_t d1);
// Pass 2 helpers. pb_peft_freeze: every parameter of m trainable iff it is the head's;
// pb_peft_load: T (numel floats, any float dtype) into the engine buffer dst;
// pb_peft_load_head: every head tensor of f into its parameter.
void pb_peft_freeze(pb_model *m);
pb_status pb_peft_load(pb_engine *e, const pb_st_file *f, const pb_st_tensor *T, float *dst, char *err,
                       size_t errlen);
pb_status pb_peft_load_head(pb_model *m, const pb_st_file *f, char *err, size_t errlen);
// Adds l's role (pb_method_linear_role) to the comma-separated list roles (n bytes) once.
void pb_peft_add_role(char *roles, size_t n, const pb_linear *l);
// adapter_config.json fields: absent or null gives def; a value of the wrong type or outside
// [min, max] is an error naming path and key. pb_peft_cfg_str: *out = the string or def.
pb_status pb_peft_cfg_int(const cJSON *o, const char *path, const char *key, long long def, long long min,
                          long long max, long long *out, char *err, size_t errlen);
pb_status pb_peft_cfg_num(const cJSON *o, const char *path, const char *key, double def, double *out, char *err,
                          size_t errlen);
pb_status pb_peft_cfg_bool(const cJSON *o, const char *path, const char *key, int def, int *out, char *err,
                           size_t errlen);
pb_status pb_peft_cfg_str(const cJSON *o, const char *path, const char *key, const char *def, const char **out,
                          char *err, size_t errlen);
// The fields every non-LoRA importer requires at their plain value: bias "none" (no bias
// tensors), fan_in_fan_out false (peftbench's linears are nn.Linear), no layer replication.
pb_status pb_peft_cfg_plain(const cJSON *o, const char *path, char *err, size_t errlen);
// Option key of c from text; an error reads "<path>: field <field>: <why>".
pb_status pb_peft_set(pb_method_config *c, const char *path, const char *field, const char *key, const char *text,
                      char *err, size_t errlen);

// torch's CPU generator (torch.Generator().manual_seed(seed)): mt19937 seeded as init_genrand
// with the seed's low 32 bits (Matsumoto & Nishimura 1998); pb_mt_next = its 32-bit outputs.
// pb_torch_uniform: n draws of tensor.uniform_(from, to, generator) on a float32 tensor, in
// order (torch's serial CPU kernel: x = (u32 & (2^24 - 1)) 2^-24, x (to - from) + from as one
// fused multiply-add in float, from / to rounded to float first).
typedef struct {
    uint32_t s[624];
    int i;
} pb_mt19937;
void pb_mt_seed(pb_mt19937 *m, uint32_t seed);
uint32_t pb_mt_next(pb_mt19937 *m);
void pb_torch_uniform(pb_mt19937 *m, float *out, size_t n, double from, double to);
extern const pb_adapter_vtbl pb_lora_vtbl, pb_svfit_vtbl, pb_aoft_vtbl;
// DoRA (dora.c): its state starts with a pb_lora_state, so the LoRA exporter reads A, B from it;
// params[2] is the magnitude vector. Two tables: dy rewritten (no dropout) or a parallel branch.
extern const pb_adapter_vtbl pb_dora_vtbl, pb_dora_drop_vtbl;
int pb_adapter_is_dora(const pb_adapter *a);
// Creates a DoRA adapter on l (A, B zeroed, m = ||W||_row, all trainable); sets l->adapter.
pb_adapter *pb_dora_create(pb_engine *e, pb_linear *l, int r, float s, float p, int index);

// Options of the LoRA family (lora.c, pissa.c), defined once.
#define PB_OPT_LORA_ALPHA                                                                            \
    {"alpha", PB_OPT_NUM, "0", 0, 1e6, 0, NULL, "lora_alpha: scaling alpha/r (rslora: alpha/sqrt r); 0 = rank"}
#define PB_OPT_LORA_DROPOUT                                                                          \
    {"dropout", PB_OPT_NUM, "0", 0, 1, 1, NULL, "lora_dropout on the adapter input while training"}
#define PB_OPT_LORA_RSLORA {"rslora", PB_OPT_BOOL, "false", 0, 0, 0, NULL, "rank-stabilised scaling alpha/sqrt(r)"}

#endif
