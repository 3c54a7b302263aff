// pretrain_mlm.h: the masked-LM pretraining stage of a RoBERTa backbone (pretrain.objective
// "mlm", docs/suites.md): a plain text file tokenised with a byte-level BPE directory, grouped
// into blocks as transformers' run_mlm.py, masked as DataCollatorForLanguageModeling, trained
// with AdamW on the RobertaForMaskedLM objective (models/mlm.h).
// defines: pb_pretrain_mlm
#ifndef PB_PRETRAIN_MLM_H
#define PB_PRETRAIN_MLM_H

#include <stdio.h>
#include <cjson/cJSON.h>
#include "../models/model.h"

// Pretrains a fresh model of config cfg on the resolved `pretrain` object p (dataset = text file,
// tokenizer_dir, seq_len, mlm_probability, epochs, batch, lr, weight_decay, schedule,
// warmup_ratio, train_subset = blocks kept, seed) and saves it in the HF RobertaForMaskedLM layout
// to out_dir (pb_mlm_save). *info (caller frees) gets the record for pretrain.json: dataset,
// data_hash (text + vocab.json + merges.txt), block counts, train_time_s, epochs [{epoch,
// train_loss, val_loss}] (val: the held-out last 5 % of the blocks, one fixed mask). label names
// the model in progress lines (stderr, "[pretrain] ...") and log.
pb_status pb_pretrain_mlm(pb_engine *e, const cJSON *p, const pb_model_config *cfg, const char *label,
                          const char *out_dir, FILE *log, cJSON **info, char *err, size_t errlen);

#endif
