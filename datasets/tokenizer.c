// tokenizer.c: byte-level BPE (GPT-2/RoBERTa), see tokenizer.h and formats.md §7.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "data_internal.h"
#include "../engine/fileutil.h"
#include "tokenizer.h"
#include "bpe_internal.h"

// ---------------------------------------------------------------------------------------------
// String -> int open-addressing map (keys owned), see bpe_internal.h; also used by bpe_train.c.

static uint64_t shash(const char *k, size_t n) { return pb_hash64(PB_HASH_INIT, k, n); }

void pb_strmap_free(pb_strmap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->klen);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

// Value slot of key k, or NULL; *pos (if given) gets the slot index, or the empty slot to fill.
static int *smap_slot(const pb_strmap *m, const char *k, size_t n, size_t *pos) {
    if (!m->cap) return NULL;
    size_t i = shash(k, n) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->klen[i] == n && memcmp(m->keys[i], k, n) == 0) {
            if (pos) *pos = i;
            return &m->vals[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    if (pos) *pos = i;
    return NULL;
}

int *pb_strmap_find(const pb_strmap *m, const char *k, size_t n) { return smap_slot(m, k, n, NULL); }

int pb_strmap_get(const pb_strmap *m, const char *k, size_t n) {
    int *v = smap_slot(m, k, n, NULL);
    return v ? *v : -1;
}

int pb_strmap_put(pb_strmap *m, const char *k, size_t n, int v) {
    if ((m->n + 1) * 2 > m->cap) {
        pb_strmap old = *m;
        m->cap = old.cap ? old.cap * 2 : 1024;
        m->n = 0;
        m->keys = pb_xcalloc(m->cap, sizeof(char *));
        m->klen = pb_xcalloc(m->cap, sizeof(uint32_t));
        m->vals = pb_xcalloc(m->cap, sizeof(int));
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) {
                size_t p;
                smap_slot(m, old.keys[i], old.klen[i], &p);
                m->keys[p] = old.keys[i];
                m->klen[p] = old.klen[i];
                m->vals[p] = old.vals[i];
                m->n++;
            }
        free(old.keys);
        free(old.klen);
        free(old.vals);
    }
    size_t p;
    if (smap_slot(m, k, n, &p)) return 1;
    m->keys[p] = pb_xmalloc(n + 1);
    memcpy(m->keys[p], k, n);
    m->keys[p][n] = 0;
    m->klen[p] = (uint32_t)n;
    m->vals[p] = v;
    m->n++;
    return 0;
}

// ---------------------------------------------------------------------------------------------

struct pb_tokenizer {
    pb_strmap vocab;    // token string -> id
    pb_strmap ranks;    // "left right" -> merge rank (line order)
    pb_strmap cache;    // chunk -> offset into cache_ids (first int = count)
    int32_t *cache_ids;
    size_t cache_n, cache_cap;
    int nvocab, bos, eos, pad, unk;
    char byte_str[256][3]; // byte -> UTF-8 of its mapped code point (1 or 2 bytes, NUL-terminated)
};

// Bytes GPT-2 writes as themselves: '!'..'~', '¡'..'¬', '®'..'ÿ'.
static int byte_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

uint32_t pb_bpe_byte_cp(uint8_t b) {
    // printable Latin-1 bytes map to themselves; the other 68 get 256, 257, ... in byte order
    if (byte_printable(b)) return b;
    uint32_t next = 256;
    for (int c = 0; c < b; c++) next += !byte_printable(c);
    return next;
}

size_t pb_bpe_byte_utf8(uint8_t b, char out[3]) {
    uint32_t cp = pb_bpe_byte_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    out[2] = 0;
    return 2;
}

static void build_byte_map(pb_tokenizer *t) {
    for (int b = 0; b < 256; b++) pb_bpe_byte_utf8((uint8_t)b, t->byte_str[b]);
}

void pb_tokenizer_free(pb_tokenizer *t) {
    if (!t) return;
    pb_strmap_free(&t->vocab);
    pb_strmap_free(&t->ranks);
    pb_strmap_free(&t->cache);
    free(t->cache_ids);
    free(t);
}

int pb_tokenizer_vocab_size(const pb_tokenizer *t) { return t->nvocab; }

pb_status pb_tokenizer_load_mem(const char *vocab, size_t vocab_len, const char *vocab_name,
                                const char *merges, size_t merges_len, const char *merges_name,
                                pb_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    cJSON *j = cJSON_ParseWithLength(vocab, vocab_len);
    char dk[256];
    if (j && pb_json_dup_key(j, dk, sizeof dk)) {
        cJSON_Delete(j);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: token '%s' appears twice", vocab_name, dk);
    }
    if (!j || !cJSON_IsObject(j)) {
        const char *ep = cJSON_GetErrorPtr();
        int line = 1;
        if (ep && ep >= vocab && ep <= vocab + vocab_len)
            for (const char *p = vocab; p < ep; p++) line += *p == '\n';
        cJSON_Delete(j);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: invalid JSON (expected an object token -> id)", vocab_name,
                       line);
    }
    pb_tokenizer *t = pb_xcalloc(1, sizeof *t);
    build_byte_map(t);
    int n = cJSON_GetArraySize(j);
    if (n <= 0) {
        cJSON_Delete(j);
        pb_tokenizer_free(t);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: empty vocabulary", vocab_name);
    }
    // ids must be integers in [0, n) and unique, so every id indexes the embedding table
    uint8_t *seen = pb_xcalloc((size_t)n, 1);
    int idx = 0;
    for (cJSON *e = j->child; e; e = e->next, idx++) {
        const char *why = NULL;
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        // range before the integer test: casting an out-of-range double is undefined
        if (!cJSON_IsNumber(e)) why = "id is not a number";
        else if (!(v >= 0 && v < n)) why = "token id outside the vocabulary range [0, size)";
        else if (v != (double)(long)v) why = "id is not an integer";
        else if (seen[(int)v]) why = "duplicate id";
        else if (pb_strmap_put(&t->vocab, e->string, strlen(e->string), (int)v)) why = "duplicate token";
        if (why) {
            pb_status st = pb_errf(PB_ERR_FORMAT, err, errlen, "%s: entry %d (\"%.80s\"): %s (vocabulary has %d entries)",
                                   vocab_name, idx + 1, e->string ? e->string : "?", why, n);
            free(seen);
            cJSON_Delete(j);
            pb_tokenizer_free(t);
            return st;
        }
        seen[(int)v] = 1;
    }
    free(seen);
    cJSON_Delete(j);
    t->nvocab = n;
    t->bos = pb_strmap_get(&t->vocab, "<s>", 3);
    t->eos = pb_strmap_get(&t->vocab, "</s>", 4);
    t->pad = pb_strmap_get(&t->vocab, "<pad>", 5);
    t->unk = pb_strmap_get(&t->vocab, "<unk>", 5);
    if (t->bos < 0 || t->eos < 0 || t->pad < 0 || t->unk < 0) {
        pb_tokenizer_free(t);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: missing a special token (<s>, </s>, <pad>, <unk>)", vocab_name);
    }
    // merges.txt: optional "#version" first line, then "left right" per line; rank = line order.
    size_t pos = 0;
    int line = 0, rank = 0;
    while (pos < merges_len) {
        size_t end = pos;
        while (end < merges_len && merges[end] != '\n') end++;
        line++;
        size_t e = end;
        if (e > pos && merges[e - 1] == '\r') e--;
        size_t a = pos;
        pos = end + 1;
        if (e == a) continue;
        if (line == 1 && e - a >= 8 && memcmp(merges + a, "#version", 8) == 0) continue;
        const char *sp = memchr(merges + a, ' ', e - a);
        const char *why = NULL;
        if (!sp || sp == merges + a || sp + 1 >= merges + e || memchr(sp + 1, ' ', merges + e - sp - 1))
            why = "expected 'left right'";
        else if (memchr(merges + a, 0, e - a))
            why = "NUL byte";
        else if (pb_strmap_get(&t->vocab, merges + a, (size_t)(sp - merges - a)) < 0 ||
                 pb_strmap_get(&t->vocab, sp + 1, (size_t)(merges + e - sp - 1)) < 0)
            why = "merge token not in vocab.json";
        else {
            // the merged token must exist too, else the merge could produce an id-less piece
            size_t ln = (size_t)(sp - merges - a), rn = (size_t)(merges + e - sp - 1);
            char *cat = pb_xmalloc(ln + rn + 1);
            memcpy(cat, merges + a, ln);
            memcpy(cat + ln, sp + 1, rn);
            int ok = pb_strmap_get(&t->vocab, cat, ln + rn) >= 0;
            free(cat);
            if (!ok) why = "merged token not in vocab.json";
        }
        if (why) {
            pb_tokenizer_free(t);
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: %s", merges_name, line, why);
        }
        pb_strmap_put(&t->ranks, merges + a, e - a, rank++); // a repeated merge keeps its first rank
    }
    *out = t;
    return PB_OK;
}

pb_status pb_tokenizer_load(const char *dir, pb_tokenizer **out, char *err, size_t errlen) {
    char pv[1100], pm[1100];
    snprintf(pv, sizeof pv, "%s/vocab.json", dir && dir[0] ? dir : ".");
    snprintf(pm, sizeof pm, "%s/merges.txt", dir && dir[0] ? dir : ".");
    *out = NULL;
    if (!pb_file_exists(pv) || !pb_file_exists(pm))
        return pb_errf(PB_ERR_IO, err, errlen,
                       "tokenizer files not found: put the RoBERTa/GPT-2 byte-level BPE files vocab.json and "
                       "merges.txt in %s (expected %s and %s; e.g. from the roberta-base model repository)",
                       dir && dir[0] ? dir : ".", pv, pm);
    uint8_t *v, *m;
    size_t vn, mn;
    pb_status st = pb_read_file(pv, &v, &vn, err, errlen);
    if (st != PB_OK) return st;
    st = pb_read_file(pm, &m, &mn, err, errlen);
    if (st != PB_OK) {
        free(v);
        return st;
    }
    st = pb_tokenizer_load_mem((const char *)v, vn, pv, (const char *)m, mn, pm, out, err, errlen);
    free(v);
    free(m);
    return st;
}

// ---------------------------------------------------------------------------------------------
// Unicode classes and the pre-tokeniser.

static int in_ranges(const uint32_t (*r)[2], int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid - 1;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int pb_uni_is_letter(uint32_t cp) { return in_ranges(pb_uni_letter, pb_uni_letter_n, cp); }
int pb_uni_is_number(uint32_t cp) { return in_ranges(pb_uni_number, pb_uni_number_n, cp); }

// \s: the Unicode White_Space property.
int pb_uni_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

// Decodes one code point at p (n bytes left); invalid sequences count as one byte with cp
// 0xFFFFFFFF (class "other"). Returns the byte length.
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp) {
    uint8_t c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07, min = 0x10000;
    else goto bad;
    if (len > n) goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) goto bad;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto bad;
    *cp = v;
    return len;
bad:
    *cp = 0xFFFFFFFFu;
    return 1;
}

enum { CL_SPACE, CL_L, CL_N, CL_OTHER };

static int cls(uint32_t cp) {
    if (cp == 0xFFFFFFFFu) return CL_OTHER;
    if (pb_uni_is_space(cp)) return CL_SPACE;
    if (pb_uni_is_letter(cp)) return CL_L;
    if (pb_uni_is_number(cp)) return CL_N;
    return CL_OTHER;
}

// Length of the run of class k (k = CL_OTHER means "not space/L/N") starting at q.
static size_t run_of(const uint8_t *s, size_t len, size_t q, int k) {
    size_t p = q;
    while (p < len) {
        uint32_t cp;
        size_t l = utf8_next(s + p, len - p, &cp);
        if (cls(cp) != k) break;
        p += l;
    }
    return p - q;
}

size_t pb_pretok_next(const char *text, size_t len, size_t pos) {
    const uint8_t *s = (const uint8_t *)text;
    if (pos >= len) return 0;
    size_t rem = len - pos;
    // contractions (case-sensitive, in pattern order)
    if (s[pos] == '\'' && rem >= 2) {
        static const char *c[] = {"s", "t", "re", "ve", "m", "ll", "d"};
        for (int i = 0; i < 7; i++) {
            size_t l = strlen(c[i]);
            if (rem >= 1 + l && memcmp(s + pos + 1, c[i], l) == 0) return 1 + l;
        }
    }
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": optional ASCII space then a run
    uint32_t cp0, cp1;
    size_t l0 = utf8_next(s + pos, rem, &cp0);
    int c0 = cls(cp0);
    if (cp0 == ' ' && rem > 1) {
        utf8_next(s + pos + 1, rem - 1, &cp1);
        int c1 = cls(cp1);
        if (c1 != CL_SPACE) return 1 + run_of(s, len, pos + 1, c1);
    }
    if (c0 != CL_SPACE) return run_of(s, len, pos, c0);
    // whitespace: "\s+(?!\S)" gives the run minus its last char when a non-space follows
    // (unless the run is one char long), "\s+" the whole run otherwise.
    size_t run = run_of(s, len, pos, CL_SPACE);
    if (pos + run >= len) return run;
    // find the start of the last code point of the run
    size_t last = pos, p = pos;
    while (p < pos + run) {
        last = p;
        p += utf8_next(s + p, len - p, &cp1);
    }
    if (last > pos) return last - pos;
    (void)l0;
    return run;
}

// ---------------------------------------------------------------------------------------------
// BPE

typedef struct {
    uint32_t a, b; // byte range [a, b) of the mapped chunk string
} sym;

// Encodes one pre-token (raw bytes) into ids appended to *ids (growable).
static void bpe_chunk(pb_tokenizer *t, const uint8_t *raw, size_t rn, int32_t **ids, size_t *n, size_t *cap) {
    // cache lookup by raw bytes
    int *hit = smap_slot(&t->cache, (const char *)raw, rn, NULL);
    if (hit) {
        int32_t cnt = t->cache_ids[*hit];
        if (*n + cnt > *cap) *ids = pb_xrealloc(*ids, sizeof(int32_t) * (*cap = (*n + cnt) * 2 + 16));
        memcpy(*ids + *n, t->cache_ids + *hit + 1, sizeof(int32_t) * cnt);
        *n += cnt;
        return;
    }
    char *m = pb_xmalloc(rn * 2 + 1); // mapped string
    size_t mn = 0;
    sym *sy = pb_xmalloc(sizeof(sym) * (rn + 1));
    size_t ns = 0;
    for (size_t i = 0; i < rn; i++) {
        const char *bs = t->byte_str[raw[i]];
        size_t l = strlen(bs);
        sy[ns].a = (uint32_t)mn;
        memcpy(m + mn, bs, l);
        mn += l;
        sy[ns++].b = (uint32_t)mn;
    }
    char *key = pb_xmalloc(mn + 2);
    for (;;) {
        int best = -1;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            size_t la = sy[i].b - sy[i].a, lb = sy[i + 1].b - sy[i + 1].a;
            memcpy(key, m + sy[i].a, la);
            key[la] = ' ';
            memcpy(key + la + 1, m + sy[i + 1].a, lb);
            int r = pb_strmap_get(&t->ranks, key, la + 1 + lb);
            if (r >= 0 && (best < 0 || r < best)) best = r, bi = i;
        }
        if (best < 0) break;
        // merge every non-overlapping occurrence of the pair (by content), left to right
        size_t la = sy[bi].b - sy[bi].a, lb = sy[bi + 1].b - sy[bi + 1].a;
        const char *A = m + sy[bi].a, *B = m + sy[bi + 1].a;
        size_t w = 0;
        for (size_t i = 0; i < ns;) {
            if (i + 1 < ns && sy[i].b - sy[i].a == la && sy[i + 1].b - sy[i + 1].a == lb &&
                memcmp(m + sy[i].a, A, la) == 0 && memcmp(m + sy[i + 1].a, B, lb) == 0) {
                sy[w].a = sy[i].a;
                sy[w++].b = sy[i + 1].b;
                i += 2;
            } else {
                sy[w++] = sy[i++];
            }
        }
        ns = w;
    }
    if (*n + ns > *cap) *ids = pb_xrealloc(*ids, sizeof(int32_t) * (*cap = (*n + ns) * 2 + 16));
    size_t start = *n;
    for (size_t i = 0; i < ns; i++) {
        int id = pb_strmap_get(&t->vocab, m + sy[i].a, sy[i].b - sy[i].a);
        (*ids)[(*n)++] = id >= 0 ? id : t->unk;
    }
    // cache (bounded: cleared when large)
    if (t->cache.n > 200000) {
        pb_strmap_free(&t->cache);
        t->cache_n = 0;
    }
    if (t->cache_n + ns + 1 > t->cache_cap)
        t->cache_ids = pb_xrealloc(t->cache_ids, sizeof(int32_t) * (t->cache_cap = (t->cache_n + ns + 1) * 2));
    t->cache_ids[t->cache_n] = (int32_t)ns;
    memcpy(t->cache_ids + t->cache_n + 1, *ids + start, sizeof(int32_t) * ns);
    pb_strmap_put(&t->cache, (const char *)raw, rn, (int)t->cache_n);
    t->cache_n += ns + 1;
    free(key);
    free(sy);
    free(m);
}

// Tokenises pre-tokeniser words of text[0..len) until at least `cap` tokens exist (cap <= 0: no
// limit), stopping only at a word boundary. *ids is malloc'd (caller frees); returns the count.
static int encode_words(pb_tokenizer *t, const char *text, size_t len, int cap, int32_t **ids) {
    size_t n = 0, cap_ids = 16;
    *ids = pb_xmalloc(sizeof(int32_t) * cap_ids);
    size_t pos = 0;
    while (pos < len && (cap <= 0 || n < (size_t)cap)) {
        size_t l = pb_pretok_next(text, len, pos);
        PB_CHECK(l > 0, "pre-tokeniser made no progress at byte %zu", pos);
        bpe_chunk(t, (const uint8_t *)text + pos, l, ids, &n, &cap_ids);
        pos += l;
    }
    return (int)n;
}

int pb_tokenizer_encode(pb_tokenizer *t, const char *text, size_t len, int32_t **ids) {
    return encode_words(t, text, len, 0, ids);
}

int pb_tokenizer_encode_pair(pb_tokenizer *t, const char *a, const char *b, int max_len, int32_t *ids,
                             int32_t *mask) {
    int special = b ? 4 : 2;
    if (max_len < special) return -1;
    // Each text is tokenised word by word only until it holds >= max_len tokens, as tokenizers
    // 0.23 does when truncation is on; the longest-first rule below then sees these (possibly
    // partial) lengths, which decides which side counts as longer. Verified against the peer
    // by tests/ref/ref_tokenizer.py (grid of pair lengths x max_len, both orders).
    int32_t *ia, *ib = NULL;
    int na = encode_words(t, a, strlen(a), max_len, &ia), nb = 0;
    if (b) nb = encode_words(t, b, strlen(b), max_len, &ib);
    int budget = max_len - special;
    if (!b) {
        if (na > budget) na = budget;
    } else if (na + nb > budget) {
        // longest-first (tokenizers `truncate_encodings`): n1 = the shorter length; if it fits,
        // the longer side gets the rest of the budget (but at least n1); if that still overflows,
        // the shorter side gets budget/2 and the longer one budget/2 + budget%2. Equal lengths
        // count as "first is shorter", so the second sequence gets the odd token.
        int n1 = na, n2 = nb, swap = 0;
        if (n1 > n2) {
            int x = n1;
            n1 = n2, n2 = x, swap = 1;
        }
        if (n1 > budget) n2 = n1;
        else n2 = PB_MAX(n1, budget - n1);
        if (n1 + n2 > budget) {
            n1 = budget / 2;
            n2 = n1 + budget % 2;
        }
        if (swap) {
            int x = n1;
            n1 = n2, n2 = x;
        }
        na = PB_MIN(na, n1);
        nb = PB_MIN(nb, n2);
    }
    int k = 0;
    ids[k++] = t->bos;
    for (int i = 0; i < na; i++) ids[k++] = ia[i];
    ids[k++] = t->eos;
    if (b) {
        ids[k++] = t->eos;
        for (int i = 0; i < nb; i++) ids[k++] = ib[i];
        ids[k++] = t->eos;
    }
    for (int i = 0; i < max_len; i++) mask[i] = i < k;
    for (int i = k; i < max_len; i++) ids[i] = t->pad;
    free(ia);
    free(ib);
    return k;
}
