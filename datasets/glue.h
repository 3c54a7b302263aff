// glue.h: GLUE TSV readers (CoLA, SST-2, MRPC, STS-B, QNLI, RTE) built on libcsv.
// defines: pb_glue_row, pb_glue_rows, pb_glue_read_tsv, pb_glue_rows_free, pb_glue_load
#ifndef PB_GLUE_H
#define PB_GLUE_H

#include <stddef.h>
#include "../engine/common.h"
#include "dataset.h"

typedef struct {
    char *a, *b;   // sentence(s); b NULL for single-sentence tasks (owned)
    int label;     // class id, or -1 for regression
    float target;  // regression target (STS-B)
    int line;      // 1-based line in the TSV
} pb_glue_row;

typedef struct {
    int n;
    pb_glue_row *rows;
} pb_glue_rows;

// Reads one GLUE TSV for task ("cola", "sst2", "mrpc", "stsb", "qnli", "rte") from buf.
// Tab separated, quotes are literal (quotechar=None, like transformers' glue processors).
// Every row must have the task's column count; labels must parse. Errors name name:line.
pb_status pb_glue_read_tsv(const char *task, const char *buf, size_t n, const char *name,
                           pb_glue_rows *out, char *err, size_t errlen);
void pb_glue_rows_free(pb_glue_rows *r);

// pb_task_load("glue/<task>:<dir>"): train.tsv -> train, dev.tsv -> val and test (GLUE test
// sets have no labels; papers report dev). Tokenises with opts->tokenizer_dir.
pb_status pb_glue_load(const char *spec, const pb_task_opts *o, pb_task *t, char *err, size_t errlen);

#endif
