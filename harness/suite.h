// suite.h: a benchmark suite (JSON, see docs/suites.md): models, datasets, methods, grid axes,
// training recipe, evaluation protocol and overrides, parsed and validated into resolved cJSON
// objects that grid.c combines into cells.
// defines: pb_suite, pb_suite_load, pb_suite_parse, pb_suite_free, pb_suite_preflight,
//          pb_suite_build_local,
//          pb_recipe_keys, pb_dataset_is_text, pb_arch_is_text, pb_suite_pairs, pb_suite_set_pretrain_seed
#ifndef PB_SUITE_H
#define PB_SUITE_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include "../engine/common.h"

#define PB_SUITE_MAX 256
// Longest model/dataset/method label or ref, in bytes (UTF-8): every record field holds it whole.
#define PB_LABEL_MAX 63
// Seeds are integers in [0, PB_SEED_MAX] (result records and the grid hold them as int).
#define PB_SEED_MAX 2147483647

typedef struct {
    char file[1024];        // path the suite was read from
    char name[64];
    char description[512];
    char trainer[16];       // "engine" (the only trainer; recorded in every cell config)
    char reference[1024];   // reference table JSON (paper numbers) or ""
    int nmodels, ndatasets, nmethods;
    cJSON *models[PB_SUITE_MAX];   // resolved model specs (owned)
    int model_hidden[PB_SUITE_MAX], model_inter[PB_SUITE_MAX]; // dims for rank checks (0 unknown)
    // Each model's arch, "vit" or "roberta": from the built-in or inline config, or the model_type of a
    // checkpoint's config.json; "" when that file cannot be read at load (then the model pairs with
    // every dataset, which a suite allows only when its datasets are all of one modality).
    char model_arch[PB_SUITE_MAX][16];
    // models[i].grid: that model's own values for axes of the suite grid (owned; NULL: none). Kept
    // out of the model spec, so a cell's config (and id) holds only the values it ran with.
    cJSON *model_grid[PB_SUITE_MAX];
    cJSON *datasets[PB_SUITE_MAX]; // resolved dataset specs (owned)
    cJSON *methods[PB_SUITE_MAX];  // resolved method entries: method options + recipe overrides (owned)
    cJSON *recipe;          // resolved recipe with every default filled (owned)
    cJSON *eval;            // {"split", "select"} (owned)
    cJSON *grid;            // {"axis": [values...]} validated (owned)
    cJSON *overrides;       // [{"model","dataset","method","set"}] validated (owned)
} pb_suite;

// Reads and validates a suite file. Every problem is one error naming file and key path (or
// file:line:col for bad JSON). Caller frees with pb_suite_free (also after a failed load).
pb_status pb_suite_load(const char *path, pb_suite *s, char *err, size_t errlen);
pb_status pb_suite_parse(const char *text, const char *name, pb_suite *s, char *err,
                         size_t errlen);
void pb_suite_free(pb_suite *s);

// Checks that every dataset that lives in user-provided folders has its files, before any cell
// runs. The error lists every missing path and the layout expected.
pb_status pb_suite_preflight(const pb_suite *s, char *err, size_t errlen);

// Builds the local miniatures the suite names but that are not there yet, as VTAB-mini is built on
// first use: a missing dataset folder, tokenizer_dir or pretraining text <ROOT>/glue-mini/<member>
// (a GLUE-mini task, tokenizer or corpus.txt) runs `data build glue-mini --out <ROOT>/glue-mini`
// once per ROOT (deterministic, byte-identical; one line to log). Other missing paths are left to
// pb_suite_preflight. Returns the build's status (its error names the Debian package to install).
pb_status pb_suite_build_local(const pb_suite *s, FILE *log, char *err, size_t errlen);

// Modality pairing (grid.c makes a cell only for a pair that fits): a ViT takes the image datasets
// (vtab-mini/, vtab1k:, fgvc:, cifar10:, cifar100:, idx:, folder:), a RoBERTa the text ones (glue/).
// pb_dataset_is_text: 1 for a text spec. pb_arch_is_text: 1 for "roberta", 0 for "vit", -1 unknown.
int pb_dataset_is_text(const char *spec);
int pb_arch_is_text(const char *arch);
// 1 if model mi and dataset di of s make cells (the model's arch is unknown, or fits the dataset).
int pb_suite_pairs(const pb_suite *s, int mi, int di);

// Replaces the pretraining seed of every model the suite pretrains (`run/slurm --pretrain-seed`:
// the same suite on another backbone, other cell ids). PB_ERR_ARG naming the file when no model
// has a "pretrain" block.
pb_status pb_suite_set_pretrain_seed(pb_suite *s, int seed, char *err, size_t errlen);

// Recipe keys (method options come from the method table, methods/method.h).
extern const char *const pb_recipe_keys[]; // NULL-terminated

#endif
