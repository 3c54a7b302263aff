// bpe_internal.h: pieces of the byte-level BPE shared by the encoder (tokenizer.c) and the trainer
// (bpe_train.c): the string -> int map and the GPT-2 byte -> unicode map. Not a public interface.
// defines: pb_strmap, pb_strmap_free, pb_strmap_find, pb_strmap_get, pb_strmap_put, pb_bpe_byte_cp,
//          pb_bpe_byte_utf8
#ifndef PB_BPE_INTERNAL_H
#define PB_BPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

// Open-addressing map from byte strings (any bytes, NUL allowed) to int. Zero-initialise to start
// empty; the map owns copies of its keys; free with pb_strmap_free (leaves it empty, reusable).
typedef struct {
    char **keys;     // (cap) owned NUL-terminated copies, NULL = empty slot
    uint32_t *klen;  // (cap)
    int *vals;       // (cap)
    size_t cap, n;   // cap is 0 or a power of two; n = keys in use
} pb_strmap;

void pb_strmap_free(pb_strmap *m);
// Pointer to the value of key k[0..n), or NULL when absent. Valid until the next put.
int *pb_strmap_find(const pb_strmap *m, const char *k, size_t n);
// Value of k, or -1 when absent.
int pb_strmap_get(const pb_strmap *m, const char *k, size_t n);
// Inserts k -> v; returns 0, or 1 when the key already existed (value unchanged).
int pb_strmap_put(pb_strmap *m, const char *k, size_t n, int v);

// GPT-2's bytes_to_unicode: the code point byte b is written as in vocab.json/merges.txt
// (printable Latin-1 bytes are themselves; the 68 others are 256, 257, ... in byte order).
uint32_t pb_bpe_byte_cp(uint8_t b);
// The UTF-8 of pb_bpe_byte_cp(b) into out (NUL-terminated); returns its length (1 or 2).
size_t pb_bpe_byte_utf8(uint8_t b, char out[3]);

#endif
