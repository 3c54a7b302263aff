// method.h: the method table. Every method is one file that defines one pb_method_desc (its
// name, options, attachment site, size rule, parameter and FLOP formulas, the groups it unfreezes
// and its hooks) and one line in methods/registry.c. Everything else — suite validation, grid
// defaults, cell config reading, `methods`, `info`, `trace`, `bench`, docs/methods.md — reads the
// descriptor; no method name is compared as a string outside its own file and the registry.
// defines: pb_method_opt, pb_opt_type, pb_method_site, pb_site, pb_method_desc, pb_method_config,
//          pb_method_find, pb_method_registry, pb_method_config_init, pb_method_config_set*,
//          pb_mc_*, pb_method_option_key, pb_method_cost, pb_method_estimate, pb_method_roles,
//          pb_method_linear_role
#ifndef PB_METHOD_H
#define PB_METHOD_H

#include <cjson/cJSON.h>
#include "../models/model.h"

// ----------------------------------------------------------------------------
// Options

typedef enum {
    PB_OPT_INT,  // integer in [min, max]
    PB_OPT_NUM,  // finite number in [min, max] (max exclusive when max_open)
    PB_OPT_BOOL, // true / false
    PB_OPT_ENUM, // one of choices ("a|b|c"; an entry "x_N" matches "x_" + an integer >= 0)
    PB_OPT_LIST, // min..max distinct items of choices, stored comma-separated
} pb_opt_type;

typedef struct {
    const char *key;
    pb_opt_type type;
    const char *def;     // default as text: "8", "0", "false", "kaiming", "query,value"
    double min, max;     // INT/NUM range (inclusive), LIST item counts
    int max_open;        // NUM: max is exclusive (dropout < 1)
    const char *choices; // ENUM/LIST: '|'-separated allowed values
    const char *help;    // one line, for `methods`, usage texts and docs/methods.md
} pb_method_opt;

// Options several methods share, defined once here (a method lists the ones it takes).
#define PB_LINEAR_ROLES "query|key|value|attention.output|intermediate|output"
#define PB_OPT_RANK_MAX (4 * 16384)
#define PB_OPT_TARGETS(def)                                                                         \
    {"targets", PB_OPT_LIST, def, 1, 6, 0, PB_LINEAR_ROLES,                                          \
     "encoder linears to adapt, by role (every layer)"}
#define PB_OPT_TRAIN_HEAD                                                                           \
    {"train_head", PB_OPT_BOOL, "true", 0, 0, 0, NULL, "the classifier head trains too (papers' protocol)"}

// ----------------------------------------------------------------------------
// Descriptors

// Where a method attaches. NONE: it only chooses which parameter groups train.
// LINEAR: one adapter (pb_adapter, adapter.h) on every encoder linear whose role is in the
// "targets" option. The norm site (every LayerNorm: desc->norm_attach, SSF) comes on top of either.
// New sites (bottleneck modules after attention/FFN, prompt tokens) are
// new values here, each applied by one case of pb_method_apply.
typedef enum { PB_SITE_NONE, PB_SITE_LINEAR } pb_method_site;

// Parameter groups a method unfreezes (models/model.h PB_GROUP_*); the head is also subject to
// the train_head option where the method has one.
#define PB_UNFREEZE_BACKBONE 1u
#define PB_UNFREEZE_HEAD 2u
#define PB_UNFREEZE_BIAS 4u // every backbone bias (models/model.h PB_PKIND_BIAS), e.g. BitFit
#define PB_UNFREEZE_NORM 8u // every backbone LayerNorm weight and bias (PB_PKIND_NORM)

#define PB_METHOD_MAX_OPTS 16
#define PB_OPT_STR_MAX 192

typedef struct pb_method_desc pb_method_desc;

// What an attach hook knows about the site besides its own linear: index = the linear's position
// in the model (seeds derive from it); in_max / out_max = the largest in / out over every linear
// the method targets (VeRA's shared projections are sized by them); linears (nlinears) = the
// model's linears, where the adapters attached at lower indices can be found (FourierFT shares
// one basis between the linears of one shape), or NULL.
typedef struct {
    int index;
    int in_max, out_max;
    pb_linear *linears;
    int nlinears;
} pb_site;

typedef struct {
    int set;               // given explicitly (not the default)
    double num;            // INT, NUM, BOOL (0/1)
    char str[PB_OPT_STR_MAX]; // ENUM, LIST (comma-separated)
} pb_opt_value;

// A method with its option values (by index into desc->opts). Plain data: copy freely.
typedef struct {
    const pb_method_desc *desc;
    uint64_t seed;         // run seed: inits and dropout streams derive from it
    pb_opt_value v[PB_METHOD_MAX_OPTS];
} pb_method_config;

struct pb_method_desc {
    const char *name;
    const char *summary;   // one line
    const char *reference; // paper / peer implementation it is checked against
    const pb_method_opt *opts;
    int nopts;
    pb_method_site site;
    unsigned unfreeze;     // PB_UNFREEZE_* besides the method's own parameters
    // Defaults that depend on other options (AOFT: targets follow the variant); NULL if none.
    // Called by pb_method_config_finish after all options are set.
    void (*resolve)(pb_method_config *c);
    // Largest rank (the "rank" option, or the size_opt option) on a linear (in -> out); 0: no
    // limit. NULL: no rank rule.
    int (*rank_limit)(const pb_method_config *c, int in, int out);
    const char *size_opt; // the option rank_limit bounds (NULL: "rank"), e.g. FourierFT's n_frequency
    // Other shape rules on a linear (in -> out): NULL if it can be adapted, else why not (HTA's
    // LoRA form needs a square linear). NULL hook: no rule.
    const char *(*site_check)(const pb_method_config *c, int in, int out);
    // Trainable parameters and forward FLOPs per token that the method adds on one linear of
    // the site (its role, in -> out). NULL for site NONE. Backward is costed as twice the forward.
    double (*site_params)(const pb_method_config *c, const char *role, int in, int out);
    double (*site_flops)(const pb_method_config *c, const char *role, int in, int out);
    // Trainable parameters the adapters of the site share, counted once per model when at least
    // one linear is adapted (FacT's U, V and core); NULL: none.
    double (*shared_params)(const pb_method_config *c, const pb_model_config *cfg);
    // LINEAR: attaches one adapter to l (site: where it is among the targets).
    pb_status (*attach)(pb_engine *e, pb_linear *l, const pb_method_config *c, const pb_site *site, char *err,
                        size_t errlen);
    // The norm site, beside the linear one (SSF): when norm_attach is set and the config's
    // "norms" option is on (or the method has none), pb_method_apply attaches one adapter to every
    // LayerNorm of the model (pb_model_norms; index = its position there). norm_params: its
    // trainable parameters on a norm of width C; norm_flops: forward FLOPs per token.
    pb_status (*norm_attach)(pb_engine *e, pb_norm *n, const pb_method_config *c, int index, char *err,
                             size_t errlen);
    double (*norm_params)(const pb_method_config *c, int C);
    double (*norm_flops)(const pb_method_config *c, int C);
    // The token site (VPT): token_attach gives the model one pb_token_adapter
    // (pb_model_attach_tokens; ViT only); token_params counts its tensors on a config.
    pb_status (*token_attach)(pb_model *m, const pb_method_config *c, char *err, size_t errlen);
    double (*token_params)(const pb_method_config *c, const pb_model_config *cfg);
    // PEFT directory export (adapter_config.json + adapter_model.safetensors); NULL: none.
    pb_status (*export_peft)(pb_model *m, const pb_method_config *c, const char *dir, char *err, size_t errlen);
    // PEFT directory import: peft_type = the "peft_type" of adapter_config.json this method reads
    // ("LORA", "IA3", ...; at most one descriptor per type), import_peft the reader that
    // pb_method_import_peft dispatches to. cfg = the parsed adapter_config.json (duplicate keys
    // already refused), dir = the directory. It validates every field it honours, every tensor
    // key and shape before changing m (errors name the file and the field or tensor), then freezes
    // the backbone, attaches adapters holding the file's values, loads the head (modules_to_save)
    // and sets *c to a config of the method that describes them. NULL / NULL: imports nothing.
    const char *peft_type;
    pb_status (*import_peft)(pb_model *m, const cJSON *cfg, const char *dir, pb_method_config *c, char *err,
                             size_t errlen);
    // Name of the per-adapter event counter (pb_adapter_vtbl.events, e.g. AOFT "clamps"), or NULL.
    const char *events;
    // Training hooks of the loop (harness/loop.h pb_loop_set_method); NULL: none. AdaLoRA uses all.
    // train_check: whether c can train for total_steps steps (the run's schedule length); an
    // error names the option. regularize: called after the backward of the model loss; adds the
    // gradient of a method penalty to the adapters' grads and returns its value, which the loop
    // adds to the step's loss (peft adds AdaLoRA's orthogonality term to outputs.loss).
    // after_update: after the optimizer update of a training step, grads still in place; step is
    // the 0-based index of that step (peft's update_and_allocate(global_step) after
    // optimizer.step(), before zero_grad()).
    pb_status (*train_check)(const pb_method_config *c, int total_steps, char *err, size_t errlen);
    double (*regularize)(pb_model *m, const pb_method_config *c);
    void (*after_update)(pb_model *m, const pb_method_config *c, int step, int total_steps);
};

// 1 if only the head trains (no site, nothing of the backbone): the runner may train it on
// cached features.
static inline int pb_method_head_only(const pb_method_desc *d) {
    return d->site == PB_SITE_NONE && (d->unfreeze & ~PB_UNFREEZE_HEAD) == 0 && !d->norm_attach && !d->token_attach;
}

// The registry (methods/registry.c), in table order; NULL-terminated. *n (may be NULL) = count.
const pb_method_desc *const *pb_method_registry(int *n);
// The method called name, or NULL.
const pb_method_desc *pb_method_find(const char *name);
// "full, head, lora, ..." into out (for messages).
void pb_method_list(char *out, size_t n);
// The option of d called key, or NULL.
const pb_method_opt *pb_method_opt_find(const pb_method_desc *d, const char *key);
// 1 if key is an option of any registered method (suite axes and overrides accept it).
int pb_method_option_key(const char *key);

// ----------------------------------------------------------------------------
// Configs

// c = method `name` with every option at its default. Error (unknown method) lists the known.
pb_status pb_method_config_init(pb_method_config *c, const char *name, uint64_t seed, char *err, size_t errlen);
// Sets option key from text ("--opt key=value", CLI flags): parsed and range-checked. Errors name
// the key, the method and what is allowed.
pb_status pb_method_config_set(pb_method_config *c, const char *key, const char *text, char *err, size_t errlen);
// Sets option key from a JSON value (number, bool, string or list of strings).
pb_status pb_method_config_set_json(pb_method_config *c, const char *key, const cJSON *v, char *err,
                                    size_t errlen);
// "key=value" as given to --opt.
pb_status pb_method_config_set_kv(pb_method_config *c, const char *kv, char *err, size_t errlen);
// Applies the method's resolve hook (dependent defaults). Call once every option is set.
void pb_method_config_finish(pb_method_config *c);
// Reads a resolved method object {"method": name, <option>: value, ...} (other keys such as
// label/ref/recipe are ignored); finishes it.
pb_status pb_method_config_from_json(const cJSON *mj, uint64_t seed, pb_method_config *c, char *err,
                                     size_t errlen);
// Adds every option of c (typed JSON values) to obj.
void pb_method_config_to_json(const pb_method_config *c, cJSON *obj);
// The default of option o as a JSON value (caller frees).
cJSON *pb_method_opt_default_json(const pb_method_opt *o);

// Option accessors; the option must exist (a method reading an option it did not declare is a
// broken invariant: abort naming it).
int pb_mc_has(const pb_method_config *c, const char *key);
int pb_mc_int(const pb_method_config *c, const char *key);
double pb_mc_num(const pb_method_config *c, const char *key);
int pb_mc_bool(const pb_method_config *c, const char *key);
const char *pb_mc_str(const pb_method_config *c, const char *key);
int pb_mc_set_by_user(const pb_method_config *c, const char *key);
// 1 if role is an item of the LIST option key.
int pb_mc_list_has(const pb_method_config *c, const char *key, const char *role);
// Replaces a LIST/ENUM option's text without validation (resolve hooks).
void pb_mc_put_str(pb_method_config *c, const char *key, const char *s);

// ----------------------------------------------------------------------------
// Cost model (no model instantiated): what `info` prints and `bench` divides by.

typedef struct {
    double trainable;       // every trainable parameter (backbone, head, adapters)
    double trainable_backbone, trainable_head, adapter;
    double adapter_flops;   // forward FLOPs per token the adapters add (all layers)
    int nsites;             // adapted linears
    int nnorms;             // adapted LayerNorms (the norm site)
    int ntokens;            // tokens the token site adds to the sequence
} pb_method_cost;

// The role of an encoder linear from its module path ("encoder.layer.3.attention.attention.query"
// -> "query", "...attention.output.dense" -> "attention.output", "...output.dense" -> "output");
// "" when the path is not an encoder-layer linear.
void pb_method_linear_role(const char *name, char *role, size_t n);
// Encoder linear roles and their shapes for a config: role i of n has (in, out).
int pb_method_roles(const pb_model_config *cfg, const char **role, int *in, int *out, int max);
// Estimates c's cost on a model config with the given backbone/head parameter counts; checks the
// size rule (rank limits) on every target. Errors name the option and the layer.
pb_status pb_method_estimate(const pb_method_config *c, const pb_model_config *cfg, double backbone, double head,
                             pb_method_cost *out, char *err, size_t errlen);

#endif
