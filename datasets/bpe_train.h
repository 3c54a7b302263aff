// bpe_train.h: training a RoBERTa/GPT-2 byte-level BPE (vocab.json + merges.txt) from text, with
// the encoder's pre-tokeniser and byte map (tokenizer.h), and the merge order of HF `tokenizers`'
// BpeTrainer (ByteLevelBPETokenizer.train): see docs/datasets.md, "Training a tokenizer".
// defines: pb_bpe_corpus, pb_bpe_corpus_new, pb_bpe_corpus_free, pb_bpe_corpus_add_text,
//          pb_bpe_corpus_add_file, pb_bpe_corpus_words, pb_bpe_corpus_distinct, pb_bpe_train_opts,
//          pb_bpe_model, pb_bpe_train, pb_bpe_model_free, pb_bpe_vocab_json, pb_bpe_merges_txt,
//          pb_bpe_model_save, PB_BPE_MIN_VOCAB
#ifndef PB_BPE_TRAIN_H
#define PB_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include "../engine/common.h"

// <s> <pad> </s> <unk>, the 256 byte tokens and <mask>: the smallest vocabulary (no merges).
#define PB_BPE_MIN_VOCAB 261

// Word counts of the text fed so far: each line (split after '\n', the '\n' kept, as tokenizers
// reads training files) is cut into pre-tokeniser words (pb_pretok_next), counted by their bytes.
typedef struct pb_bpe_corpus pb_bpe_corpus;

// A new empty corpus; free with pb_bpe_corpus_free.
pb_bpe_corpus *pb_bpe_corpus_new(void);
void pb_bpe_corpus_free(pb_bpe_corpus *c);
// Adds text[0..len) (not retained). Bytes that are not valid UTF-8 stay single "other" characters,
// as in the encoder (tokenizers refuses such files instead).
void pb_bpe_corpus_add_text(pb_bpe_corpus *c, const char *text, size_t len);
// Adds a whole file. Errors (missing, a directory, unreadable) name the path.
pb_status pb_bpe_corpus_add_file(pb_bpe_corpus *c, const char *path, char *err, size_t errlen);
int64_t pb_bpe_corpus_words(const pb_bpe_corpus *c);    // words counted (with repeats)
int64_t pb_bpe_corpus_distinct(const pb_bpe_corpus *c); // distinct words

typedef struct {
    int vocab_size;        // wanted size incl. the 5 special tokens, >= PB_BPE_MIN_VOCAB
    int64_t min_frequency; // a pair merges only if it occurs >= this often (>= 0; peer default 2)
} pb_bpe_train_opts;

// A trained vocabulary. ids: <s> 0, <pad> 1, </s> 2, <unk> 3, the 256 byte tokens 4..259 in code
// point order of their byte-level characters, merged tokens in creation order, <mask> last.
typedef struct {
    int n_tokens;          // vocabulary size (<= vocab_size: fewer when the corpus runs out of pairs)
    char **tokens;         // (n_tokens) byte-level token strings (UTF-8), index = id; owned
    int n_merges;          // merge rules (can exceed the merged tokens: two merges may make one string)
    int32_t (*merges)[2];  // (n_merges, 2) left and right token id of each rule, in rank order; owned
} pb_bpe_model;

// Trains on c. The caller frees *out with pb_bpe_model_free (also on error: then it is empty).
pb_status pb_bpe_train(const pb_bpe_corpus *c, const pb_bpe_train_opts *o, pb_bpe_model *out, char *err,
                       size_t errlen);
void pb_bpe_model_free(pb_bpe_model *m);

// vocab.json ({"token": id, ...} in id order, compact, as tokenizers saves it) and merges.txt
// ("#version: 0.2" then "left right" per line). malloc'd, NUL-terminated (*len excludes the NUL);
// the caller frees.
char *pb_bpe_vocab_json(const pb_bpe_model *m, size_t *len);
char *pb_bpe_merges_txt(const pb_bpe_model *m, size_t *len);
// Writes DIR/vocab.json and DIR/merges.txt (creating DIR), each atomically (temp file + rename).
pb_status pb_bpe_model_save(const pb_bpe_model *m, const char *dir, char *err, size_t errlen);

#endif
