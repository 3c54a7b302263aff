// grid.h: expansion of a suite into cells. A cell is one fully resolved training run
// (model, dataset, method with options, recipe, eval protocol, seed); its id is the FNV-1a 64
// hash of the canonical JSON of that resolved config, so identical runs share an id.
// defines: pb_cell, pb_grid, pb_grid_expand, pb_grid_free
#ifndef PB_GRID_H
#define PB_GRID_H

#include "suite.h"

typedef struct {
    char id[17];        // 16 hex digits
    int index;          // position in the grid order
    cJSON *config;      // resolved config (owned)
    char model[64], dataset[128], method[64]; // labels for progress lines
    int seed;
} pb_cell;

typedef struct {
    int n;
    pb_cell *cells;     // owned
} pb_grid;

// Expands models x datasets x methods x (product of grid axes, first axis slowest), skipping the
// (model, dataset) pairs of different modalities (pb_suite_pairs: ViT x image, RoBERTa x text). Precedence of
// values: recipe defaults < suite recipe < method entry < matching overrides < grid axes; an axis
// takes the model's own list (models[].grid) if it has one, else the method's (methods[].grid), else
// the suite grid's. Options a method ignores are dropped, and duplicate cells (same id) are kept once.
pb_status pb_grid_expand(const pb_suite *s, pb_grid *g, char *err, size_t errlen);
void pb_grid_free(pb_grid *g);

#endif
