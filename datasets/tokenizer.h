// tokenizer.h: RoBERTa/GPT-2 byte-level BPE (vocab.json + merges.txt), the GPT-2 pre-tokeniser
// regex implemented by hand over UTF-8 code points, and RoBERTa sequence building.
// defines: pb_tokenizer, pb_tokenizer_load, pb_tokenizer_load_mem, pb_tokenizer_free,
//          pb_tokenizer_vocab_size, pb_tokenizer_encode, pb_tokenizer_encode_pair,
//          pb_uni_is_letter, pb_uni_is_number, pb_uni_is_space, pb_pretok_next
#ifndef PB_TOKENIZER_H
#define PB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "../engine/common.h"

typedef struct pb_tokenizer pb_tokenizer;

// Loads <dir>/vocab.json and <dir>/merges.txt. Errors name the file and line (merges) or the
// entry (vocab). The caller frees the tokenizer with pb_tokenizer_free.
pb_status pb_tokenizer_load(const char *dir, pb_tokenizer **out, char *err, size_t errlen);
// Same from memory (names are used in messages only). Buffers are not retained.
pb_status pb_tokenizer_load_mem(const char *vocab, size_t vocab_len, const char *vocab_name,
                                const char *merges, size_t merges_len, const char *merges_name,
                                pb_tokenizer **out, char *err, size_t errlen);
void pb_tokenizer_free(pb_tokenizer *t);

int pb_tokenizer_vocab_size(const pb_tokenizer *t);

// Tokenises text[0..len) without special tokens. Returns the count; *ids is malloc'd (caller
// frees). Invalid UTF-8 bytes are kept as single bytes (byte-level BPE covers every byte).
int pb_tokenizer_encode(pb_tokenizer *t, const char *text, size_t len, int32_t **ids);

// RoBERTa input: "<s> A </s>" or "<s> A </s></s> B </s>" (b may be NULL), truncated to max_len
// (longest-first for pairs, like HF `truncation=True`; as tokenizers 0.23, each text is tokenised
// only until it has >= max_len tokens at a word boundary and the rule compares those lengths, see
// docs/datasets.md) and padded with <pad>. ids and mask have
// max_len entries; returns the number of real tokens, or -1 when max_len is too small for the
// special tokens (< 2 single, < 4 pair).
int pb_tokenizer_encode_pair(pb_tokenizer *t, const char *a, const char *b, int max_len,
                             int32_t *ids, int32_t *mask);

// Unicode classes used by the pre-tokeniser (tables generated into unicode_tables.c).
extern const uint32_t pb_uni_letter[][2];
extern const int pb_uni_letter_n;
extern const uint32_t pb_uni_number[][2];
extern const int pb_uni_number_n;
int pb_uni_is_letter(uint32_t cp);
int pb_uni_is_number(uint32_t cp);
int pb_uni_is_space(uint32_t cp);

// Pre-tokeniser: length in bytes of the regex match starting at byte `pos` of text[0..len)
// (pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+).
size_t pb_pretok_next(const char *text, size_t len, size_t pos);

#endif
