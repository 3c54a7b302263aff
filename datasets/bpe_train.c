// bpe_train.c: byte-level BPE training (see bpe_train.h and docs/datasets.md).
//
// The merge loop reproduces HF tokenizers' BpeTrainer (models/bpe/trainer.rs, 0.23), so that the
// same corpus gives the same merges.txt, rule for rule:
//  - trainer ids: special tokens, then the byte alphabet sorted by code point, then each merged
//    token when first made (a merge whose string already exists reuses that id);
//  - a max-heap of entries (count, pair, words to visit); among equal counts the smaller pair
//    (left id, then right id) wins. Counts are checked lazily: a popped entry whose count is stale
//    is re-pushed with the current count. After a merge, every pair whose count rose in some word
//    gets a new entry holding just those words (an older entry of the same pair stays queued);
//  - a word merges the pair left to right without overlap; the merged pair's own count is left
//    as it is (only its neighbours' pairs change), exactly as tokenizers' Word::merge.
// The last two rules matter only for strings that two different merges produce ("  " + "  " and
// "   " + " "), which real text with runs of spaces or dashes has.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "../engine/fileutil.h"
#include "bpe_internal.h"
#include "bpe_train.h"
#include "tokenizer.h"

static const char *const SPECIAL[4] = {"<s>", "<pad>", "</s>", "<unk>"};
#define N_SPECIAL 4

// ---------------------------------------------------------------------------------------------
// Corpus: distinct words (raw bytes) -> index, with counts.

struct pb_bpe_corpus {
    pb_strmap index;  // word bytes -> position in counts and klen
    int64_t *counts;  // (n) occurrences of each word
    uint32_t *klen;   // (n) its length in bytes
    size_t n, cap;
    int64_t total;
};

pb_bpe_corpus *pb_bpe_corpus_new(void) { return pb_xcalloc(1, sizeof(pb_bpe_corpus)); }

void pb_bpe_corpus_free(pb_bpe_corpus *c) {
    if (!c) return;
    pb_strmap_free(&c->index);
    free(c->counts);
    free(c->klen);
    free(c);
}

int64_t pb_bpe_corpus_words(const pb_bpe_corpus *c) { return c->total; }
int64_t pb_bpe_corpus_distinct(const pb_bpe_corpus *c) { return (int64_t)c->n; }

static void corpus_count(pb_bpe_corpus *c, const char *w, size_t n) {
    c->total++;
    int *v = pb_strmap_find(&c->index, w, n);
    if (v) {
        c->counts[*v]++;
        return;
    }
    PB_CHECK(c->n < 0x7fffffff, "more than 2^31 distinct words");
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4096;
        c->counts = pb_xrealloc(c->counts, sizeof(int64_t) * c->cap);
        c->klen = pb_xrealloc(c->klen, sizeof(uint32_t) * c->cap);
    }
    c->counts[c->n] = 1;
    c->klen[c->n] = (uint32_t)n;
    pb_strmap_put(&c->index, w, n, (int)c->n);
    c->n++;
}

void pb_bpe_corpus_add_text(pb_bpe_corpus *c, const char *text, size_t len) {
    size_t a = 0;
    while (a < len) {
        // one line, '\n' included (tokenizers' lines_with_ending): the pre-tokeniser's lookahead
        // (\s+(?!\S)) sees the line's end, not the next line
        const char *nl = memchr(text + a, '\n', len - a);
        size_t b = nl ? (size_t)(nl - text) + 1 : len;
        size_t pos = 0, ln = b - a;
        while (pos < ln) {
            size_t l = pb_pretok_next(text + a, ln, pos);
            PB_CHECK(l > 0, "pre-tokeniser made no progress at byte %zu", a + pos);
            corpus_count(c, text + a + pos, l);
            pos += l;
        }
        a = b;
    }
}

pb_status pb_bpe_corpus_add_file(pb_bpe_corpus *c, const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) return pb_errf(PB_ERR_IO, err, errlen, "corpus %s: no such file", path);
    if (S_ISDIR(st.st_mode))
        return pb_errf(PB_ERR_IO, err, errlen, "corpus %s: is a directory (give text files)", path);
    uint8_t *buf;
    size_t n;
    char e2[512];
    if (pb_read_file(path, &buf, &n, e2, sizeof e2) != PB_OK)
        return pb_errf(PB_ERR_IO, err, errlen, "corpus %s", e2);
    pb_bpe_corpus_add_text(c, (const char *)buf, n);
    free(buf);
    return PB_OK;
}

// ---------------------------------------------------------------------------------------------
// Pair -> count map. A pair (left id, right id) is the key left << 32 | right, so key order is
// tokenizers' tuple order. Key 0 marks an empty slot: (0, 0) is (<s>, <s>), never in a word.

typedef struct {
    uint64_t *keys;  // (cap)
    int64_t *vals;   // (cap)
    size_t cap, n;
} pairmap;

static size_t pair_hash(uint64_t k, size_t cap) { return (size_t)((k * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1); }

// The count slot of key (inserted as 0 when absent).
static int64_t *pairmap_at(pairmap *m, uint64_t k) {
    if ((m->n + 1) * 2 > m->cap) {
        pairmap old = *m;
        m->cap = old.cap ? old.cap * 2 : 1 << 16;
        m->keys = pb_xcalloc(m->cap, sizeof(uint64_t));
        m->vals = pb_xcalloc(m->cap, sizeof(int64_t));
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) {
                size_t j = pair_hash(old.keys[i], m->cap);
                while (m->keys[j]) j = (j + 1) & (m->cap - 1);
                m->keys[j] = old.keys[i];
                m->vals[j] = old.vals[i];
            }
        free(old.keys);
        free(old.vals);
    }
    size_t j = pair_hash(k, m->cap);
    while (m->keys[j] && m->keys[j] != k) j = (j + 1) & (m->cap - 1);
    if (!m->keys[j]) {
        m->keys[j] = k;
        m->vals[j] = 0;
        m->n++;
    }
    return &m->vals[j];
}

// ---------------------------------------------------------------------------------------------
// Priority queue of merge candidates (binary max-heap).

typedef struct {
    int64_t count;
    uint64_t pair;
    int32_t *pos;  // (npos) distinct word indices to visit when this entry merges; owned
    int32_t npos;
} cand;

typedef struct {
    cand *a;
    size_t n, cap;
} heap;

// 1 when x comes out before y: the higher count, then the smaller pair (tokenizers' Merge::cmp).
static int cand_before(const cand *x, const cand *y) {
    if (x->count != y->count) return x->count > y->count;
    return x->pair < y->pair;
}

static void heap_push(heap *h, cand c) {
    if (h->n == h->cap) h->a = pb_xrealloc(h->a, sizeof(cand) * (h->cap = h->cap ? h->cap * 2 : 1024));
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = c;
}

static cand heap_pop(heap *h) {
    cand top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < h->n && cand_before(&h->a[l], best)) m = l, best = &h->a[l];
        if (r < h->n && cand_before(&h->a[r], best)) m = r;
        if (m == i) break;
        h->a[i] = h->a[m];
        i = m;
    }
    if (h->n) h->a[i] = last;
    return top;
}

// ---------------------------------------------------------------------------------------------
// Training state.

typedef struct {
    uint64_t pair;
    int32_t word;
} hit; // "pair's count rose in word" (tokenizers' where_to_update)

typedef struct {
    int32_t *sym;     // all words' symbols back to back; word w is sym[off[w] .. off[w] + len[w])
    int64_t *off;     // (n_words)
    int32_t *len;     // (n_words) shrinks as merges apply
    const int64_t *counts;
    pairmap pc;       // pair counts
    hit *hits;        // pending rises since the last flush
    size_t nhits, caphits;
    heap q;
} trainer;

static void note_hit(trainer *t, uint64_t pair, int32_t w) {
    if (t->nhits == t->caphits)
        t->hits = pb_xrealloc(t->hits, sizeof(hit) * (t->caphits = t->caphits ? t->caphits * 2 : 4096));
    t->hits[t->nhits++] = (hit){pair, w};
}

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

// Adds change * count(word) to the pair's count, remembering the word when the pair rose.
static void change(trainer *t, int32_t a, int32_t b, int change, int32_t w) {
    *pairmap_at(&t->pc, pair_key(a, b)) += change * t->counts[w];
    if (change > 0) note_hit(t, pair_key(a, b), w);
}

static int hit_cmp(const void *x, const void *y) {
    const hit *p = x, *q = y;
    if (p->pair != q->pair) return p->pair < q->pair ? -1 : 1;
    return (p->word > q->word) - (p->word < q->word);
}

// Turns the pending rises into queue entries: one per pair, with its distinct words, when the
// pair's count is positive (tokenizers drains where_to_update the same way).
static void flush_hits(trainer *t) {
    if (!t->nhits) return; // (qsort of a NULL array is undefined)
    qsort(t->hits, t->nhits, sizeof(hit), hit_cmp);
    for (size_t i = 0; i < t->nhits;) {
        size_t j = i;
        while (j < t->nhits && t->hits[j].pair == t->hits[i].pair) j++;
        int64_t count = *pairmap_at(&t->pc, t->hits[i].pair);
        if (count > 0) {
            cand c = {count, t->hits[i].pair, pb_xmalloc(sizeof(int32_t) * (j - i)), 0};
            for (size_t k = i; k < j; k++)
                if (k == i || t->hits[k].word != t->hits[k - 1].word) c.pos[c.npos++] = t->hits[k].word;
            heap_push(&t->q, c);
        }
        i = j;
    }
    t->nhits = 0;
}

// Merges every non-overlapping (a, b) in word w, left to right, into r, recording the changed
// neighbour pairs as tokenizers' Word::merge does (the (a, b) count itself is not touched).
static void merge_word(trainer *t, int32_t w, int32_t a, int32_t b, int32_t r) {
    int32_t *s = t->sym + t->off[w];
    int32_t n = t->len[w], out = 0;
    for (int32_t i = 0; i < n;) {
        if (s[i] == a && i + 1 < n && s[i + 1] == b) {
            if (out > 0) {
                change(t, s[out - 1], a, -1, w);
                change(t, s[out - 1], r, +1, w);
            }
            s[out++] = r;
            if (i + 2 < n) {
                change(t, b, s[i + 2], -1, w);
                change(t, r, s[i + 2], +1, w);
            }
            i += 2;
        } else {
            s[out++] = s[i++];
        }
    }
    t->len[w] = out;
}

void pb_bpe_model_free(pb_bpe_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_tokens; i++) free(m->tokens[i]);
    free(m->tokens);
    free(m->merges);
    memset(m, 0, sizeof *m);
}

// Appends token s (owned by the model afterwards).
static void model_add(pb_bpe_model *m, char *s, int *cap) {
    if (m->n_tokens == *cap) m->tokens = pb_xrealloc(m->tokens, sizeof(char *) * (size_t)(*cap = *cap * 2 + 16));
    m->tokens[m->n_tokens++] = s;
}

pb_status pb_bpe_train(const pb_bpe_corpus *c, const pb_bpe_train_opts *o, pb_bpe_model *out, char *err,
                       size_t errlen) {
    memset(out, 0, sizeof *out);
    if (o->vocab_size < PB_BPE_MIN_VOCAB)
        return pb_errf(PB_ERR_ARG, err, errlen,
                       "vocab size %d is too small: the 4 special tokens, 256 byte tokens and <mask> need %d",
                       o->vocab_size, PB_BPE_MIN_VOCAB);
    if (o->min_frequency < 0)
        return pb_errf(PB_ERR_ARG, err, errlen, "min frequency %lld must be >= 0", (long long)o->min_frequency);

    // vocabulary: specials, then the byte alphabet in code point order (tokenizers sorts its
    // alphabet by char), so byte b has id byte_id[b]
    pb_bpe_model *m = out;
    int cap = 0;
    pb_strmap ids = {0}; // token string -> id
    for (int i = 0; i < N_SPECIAL; i++) {
        model_add(m, pb_xstrdup(SPECIAL[i]), &cap);
        pb_strmap_put(&ids, SPECIAL[i], strlen(SPECIAL[i]), i);
    }
    int32_t byte_id[256];
    for (uint32_t cp = 0; cp < 0x200; cp++)
        for (int b = 0; b < 256; b++)
            if (pb_bpe_byte_cp((uint8_t)b) == cp) {
                char u[3];
                size_t l = pb_bpe_byte_utf8((uint8_t)b, u);
                byte_id[b] = m->n_tokens;
                pb_strmap_put(&ids, u, l, m->n_tokens);
                model_add(m, pb_xstrdup(u), &cap);
            }
    PB_CHECK(m->n_tokens == N_SPECIAL + 256, "byte map is not a bijection onto [0, 0x200)");

    // words as symbol ids (word w's bytes are the corpus map's key whose value is w)
    trainer t = {0};
    size_t nw = c->n, nsym = 0;
    const char **wk = pb_xmalloc(sizeof(char *) * (nw + 1)); // (nw) borrowed
    for (size_t i = 0; i < c->index.cap; i++)
        if (c->index.keys[i]) wk[c->index.vals[i]] = c->index.keys[i];
    for (size_t w = 0; w < nw; w++) nsym += c->klen[w];
    t.sym = pb_xmalloc(sizeof(int32_t) * (nsym + 1));
    t.off = pb_xmalloc(sizeof(int64_t) * (nw + 1));
    t.len = pb_xmalloc(sizeof(int32_t) * (nw + 1));
    t.counts = c->counts;
    size_t at = 0;
    for (size_t w = 0; w < nw; w++) {
        t.off[w] = (int64_t)at;
        t.len[w] = (int32_t)c->klen[w];
        for (uint32_t i = 0; i < c->klen[w]; i++) t.sym[at++] = byte_id[(uint8_t)wk[w][i]];
    }
    free(wk);
    // initial pair counts and, per pair, every word that has it
    for (size_t w = 0; w < nw; w++) {
        const int32_t *s = t.sym + t.off[w];
        for (int32_t i = 0; i + 1 < t.len[w]; i++) change(&t, s[i], s[i + 1], +1, (int32_t)w);
    }
    flush_hits(&t);

    // merge until the vocabulary (without <mask>, added last) is full
    int mcap = 0;
    while (m->n_tokens < o->vocab_size - 1 && t.q.n > 0) {
        cand top = heap_pop(&t.q);
        int64_t now = *pairmap_at(&t.pc, top.pair);
        if (top.count != now) { // stale: back in with the current count
            top.count = now;
            heap_push(&t.q, top);
            continue;
        }
        if (top.count < 1 || top.count < o->min_frequency) {
            free(top.pos);
            break;
        }
        int32_t a = (int32_t)(top.pair >> 32), b = (int32_t)(top.pair & 0xffffffffu);
        size_t la = strlen(m->tokens[a]), lb = strlen(m->tokens[b]);
        char *s = pb_xmalloc(la + lb + 1);
        memcpy(s, m->tokens[a], la);
        memcpy(s + la, m->tokens[b], lb + 1);
        int32_t r = pb_strmap_get(&ids, s, la + lb);
        if (r < 0) {
            r = m->n_tokens;
            pb_strmap_put(&ids, s, la + lb, r);
            model_add(m, s, &cap);
        } else {
            free(s); // a second merge making an existing string (e.g. "aa"+"a" and "a"+"aa")
        }
        if (m->n_merges == mcap)
            m->merges = pb_xrealloc(m->merges, sizeof(int32_t[2]) * (size_t)(mcap = mcap * 2 + 256));
        m->merges[m->n_merges][0] = a;
        m->merges[m->n_merges++][1] = b;
        for (int32_t k = 0; k < top.npos; k++) merge_word(&t, top.pos[k], a, b, r);
        free(top.pos);
        flush_hits(&t);
    }
    for (size_t i = 0; i < t.q.n; i++) free(t.q.a[i].pos);
    free(t.q.a);
    free(t.hits);
    free(t.pc.keys);
    free(t.pc.vals);
    free(t.sym);
    free(t.off);
    free(t.len);

    // a pair merged twice (two queue entries of one pair) is saved once, at its last rank, as
    // tokenizers does (its merges map keeps the last rank)
    pairmap last = {0};
    for (int i = 0; i < m->n_merges; i++) *pairmap_at(&last, pair_key(m->merges[i][0], m->merges[i][1])) = i;
    int k = 0;
    for (int i = 0; i < m->n_merges; i++)
        if (*pairmap_at(&last, pair_key(m->merges[i][0], m->merges[i][1])) == i) {
            m->merges[k][0] = m->merges[i][0];
            m->merges[k++][1] = m->merges[i][1];
        }
    m->n_merges = k;
    free(last.keys);
    free(last.vals);

    // <mask> last, as in RoBERTa's vocabulary. The pre-tokeniser never joins '<' and letters, so
    // no merge can have made it.
    PB_CHECK(pb_strmap_get(&ids, "<mask>", 6) < 0, "a merge produced <mask>");
    model_add(m, pb_xstrdup("<mask>"), &cap);
    pb_strmap_free(&ids);
    return PB_OK;
}

// ---------------------------------------------------------------------------------------------
// Files.

char *pb_bpe_vocab_json(const pb_bpe_model *m, size_t *len) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < m->n_tokens; i++) cJSON_AddItemToObject(j, m->tokens[i], cJSON_CreateNumber(i));
    char *s = cJSON_PrintUnformatted(j);
    PB_CHECK(s, "cJSON could not print the vocabulary (%d tokens)", m->n_tokens);
    cJSON_Delete(j);
    *len = strlen(s);
    return s;
}

char *pb_bpe_merges_txt(const pb_bpe_model *m, size_t *len) {
    static const char head[] = "#version: 0.2\n";
    size_t n = sizeof head - 1;
    for (int i = 0; i < m->n_merges; i++)
        n += strlen(m->tokens[m->merges[i][0]]) + strlen(m->tokens[m->merges[i][1]]) + 2;
    char *s = pb_xmalloc(n + 1), *p = s;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    for (int i = 0; i < m->n_merges; i++)
        p += sprintf(p, "%s %s\n", m->tokens[m->merges[i][0]], m->tokens[m->merges[i][1]]);
    *p = 0; // also when there is no rule (sprintf wrote none)
    *len = (size_t)(p - s);
    PB_CHECK(*len == n, "merges.txt size %zu != %zu", *len, n);
    return s;
}

pb_status pb_bpe_model_save(const pb_bpe_model *m, const char *dir, char *err, size_t errlen) {
    char e2[600];
    if (pb_mkdirs(dir, e2, sizeof e2) != PB_OK) return pb_errf(PB_ERR_IO, err, errlen, "output %s", e2);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pb_errf(PB_ERR_IO, err, errlen, "output %s: not a directory", dir);
    size_t vn, mn;
    char *v = pb_bpe_vocab_json(m, &vn), *mt = pb_bpe_merges_txt(m, &mn);
    char pv[4200], pm[4200];
    snprintf(pv, sizeof pv, "%s/vocab.json", dir);
    snprintf(pm, sizeof pm, "%s/merges.txt", dir);
    const void *parts[1] = {v};
    size_t sizes[1] = {vn};
    pb_status s = pb_write_atomic(pv, parts, sizes, 1, err, errlen);
    if (s == PB_OK) {
        parts[0] = mt;
        sizes[0] = mn;
        s = pb_write_atomic(pm, parts, sizes, 1, err, errlen);
    }
    free(v);
    free(mt);
    return s;
}
