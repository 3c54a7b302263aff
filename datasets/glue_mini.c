// glue_mini.c: GLUE-mini, six GLUE-shaped tasks built from Debian-shipped text (Jane Austen's six
// novels from r-cran-janeaustenr, the labelled Amazon fine-food reviews of r-cran-modeldata),
// written in the real GLUE TSV layouts (formats.md §10) so `glue/<task>:DIR` loads them, plus the
// masked-LM pretraining corpus (train text only) and a byte-level BPE trained on it.
// Construction, sizes and chance levels: docs/datasets.md, "GLUE-mini".
// The R data files are exported once per build by Rscript (an argument vector via posix_spawnp,
// never a shell) into a temp file; everything after that is integer-only C with splitmix64, so
// two builds are byte-identical.
// Paths and messages live in fixed buffers (>= 1 KiB); GCC cannot prove they fit.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bpe_train.h"
#include "data_internal.h"

extern char **environ;

const char *const pb_glue_mini_tasks[] = {"sst2", "cola", "mrpc", "stsb", "qnli", "rte", NULL};

// The R side: argv after -e is (rlib or "", output file). Exit 3 / 4 name the missing package.
// Tabs, CR and LF inside a text become spaces so each record is one line.
static const char R_EXPORT[] =
    "a <- commandArgs(TRUE); lib <- if (nzchar(a[1])) a[1] else NULL\n"
    "cl <- function(x) gsub('[\\t\\r\\n]', ' ', x, useBytes = TRUE)\n"
    "ja <- system.file('data', package = 'janeaustenr', lib.loc = lib)\n"
    "if (!nzchar(ja)) { message('janeaustenr'); quit(status = 3) }\n"
    "md <- system.file('data', package = 'modeldata', lib.loc = lib)\n"
    "if (!nzchar(md)) { message('modeldata'); quit(status = 4) }\n"
    "e <- new.env(); lazyLoad(file.path(ja, 'Rdata'), envir = e)\n"
    "f <- new.env(); lazyLoad(file.path(md, 'Rdata'), envir = f)\n"
    "out <- file(a[2], 'wb'); books <- c('emma', 'mansfieldpark', 'northangerabbey', 'persuasion',\n"
    "  'prideprejudice', 'sensesensibility')\n"
    "for (b in books) writeLines(paste0('A\\t', b, '\\t', cl(e[[b]])), out, useBytes = TRUE)\n"
    "for (s in c('training_data', 'testing_data')) { d <- f[[s]]\n"
    "  writeLines(paste0('F\\t', cl(d$product), '\\t', as.character(d$score), '\\t', cl(d$review)), out,\n"
    "             useBytes = TRUE) }\n"
    "close(out)\n";

// ---------------------------------------------------------------------------------------------
// Small utilities.

// splitmix64 (as vtab_mini.c): small, fast, fully specified.
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static int rng_int(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }

static void shuffle(int *p, int n, uint64_t *s) {
    for (int i = n - 1; i > 0; i--) {
        int j = rng_int(s, i + 1), t = p[i];
        p[i] = p[j], p[j] = t;
    }
}

// Growing byte buffer; owns b, free with free(sb.b).
typedef struct {
    char *b;
    size_t n, cap;
} strbuf;

static void sb_add(strbuf *s, const char *t, size_t n) {
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->b = pb_xrealloc(s->b, s->cap);
    }
    memcpy(s->b + s->n, t, n);
    s->n += n;
    s->b[s->n] = 0;
}
static void sb_str(strbuf *s, const char *t) { sb_add(s, t, strlen(t)); }
static void sb_printf(strbuf *s, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_add(s, tmp, (size_t)(k < (int)sizeof tmp ? k : (int)sizeof tmp - 1));
}

// Open-addressing set of 64-bit string hashes (dedup and disjointness). keys owned.
typedef struct {
    uint64_t *k;
    size_t cap, n;
} hset;
static void hs_init(hset *h, size_t want) {
    h->cap = 1024;
    while (h->cap < want * 2) h->cap *= 2;
    h->k = calloc(h->cap, sizeof(uint64_t));
    PB_CHECK(h->k != NULL, "out of memory");
    h->n = 0;
}
static int hs_has(const hset *h, uint64_t x) {
    x |= 1; // 0 marks an empty slot
    for (size_t i = x & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
        if (h->k[i] == x) return 1;
        if (!h->k[i]) return 0;
    }
}
static void hs_add(hset *h, uint64_t x) {
    x |= 1;
    size_t i = x & (h->cap - 1);
    while (h->k[i] && h->k[i] != x) i = (i + 1) & (h->cap - 1);
    if (!h->k[i]) h->k[i] = x, h->n++;
    PB_CHECK(h->n * 2 <= h->cap, "hash set sized by caller");
}
static uint64_t text_hash(const char *s) { return pb_hash_str(PB_HASH_INIT, s); }

// ---------------------------------------------------------------------------------------------
// Sources: the exported records, parsed into chapters' sentences and reviews.

#define NBOOKS 6
static const char *const book_code[NBOOKS] = {"em", "mp", "na", "pe", "pp", "ss"};

typedef struct {
    char *text;  // owned; single spaces, no tabs
    int book, chapter, split; // split 0 train, 1 dev
    int pos;     // index within its chapter
    int para;    // paragraph index within its chapter
} sentence;

typedef struct {
    char *text, *product; // owned
    int great, split;
} review;

typedef struct {
    sentence *s;
    int ns, caps;
    review *r;
    int nr, capr;
    int nchap[NBOOKS];
} sources;

static void sources_free(sources *S) {
    for (int i = 0; i < S->ns; i++) free(S->s[i].text);
    for (int i = 0; i < S->nr; i++) free(S->r[i].text), free(S->r[i].product);
    free(S->s);
    free(S->r);
    memset(S, 0, sizeof *S);
}

static int word_count(const char *t) {
    int n = 0, in = 0;
    for (; *t; t++) {
        if (*t == ' ') in = 0;
        else if (!in) in = 1, n++;
    }
    return n;
}

// 1 if the word ending just before end (at text[0..end)) is an abbreviation that takes a period.
static int is_abbrev(const char *text, size_t end) {
    static const char *const ab[] = {"Mr", "Mrs", "Dr", "St", "Col", "Capt", "Esq", "Messrs", "Mme", NULL};
    size_t b = end;
    while (b > 0 && isalpha((unsigned char)text[b - 1])) b--;
    for (int i = 0; ab[i]; i++)
        if (strlen(ab[i]) == end - b && memcmp(text + b, ab[i], end - b) == 0) return 1;
    return end - b == 1 && isupper((unsigned char)text[b]); // an initial, "J. Smith"
}

// Splits one paragraph (single-spaced) into sentences and appends the usable ones: 6..40 words,
// ASCII letters present, no unbalanced-looking fragments shorter than that.
static void add_paragraph(sources *S, const char *p, int book, int chap, int para, int *pos) {
    size_t n = strlen(p), a = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c != '.' && c != '!' && c != '?') continue;
        size_t e = i + 1;
        while (e < n && (p[e] == '"' || p[e] == '\'' || p[e] == ')')) e++;
        int last = e >= n;
        if (!last && !(p[e] == ' ' && e + 1 < n &&
                       (isupper((unsigned char)p[e + 1]) || p[e + 1] == '"' || p[e + 1] == '\'')))
            continue;
        if (c == '.' && is_abbrev(p, i)) continue;
        size_t len = e - a;
        char *t = pb_xmalloc(len + 1);
        memcpy(t, p + a, len);
        t[len] = 0;
        int w = word_count(t);
        if (w >= 6 && w <= 40) {
            if (S->ns == S->caps) S->s = pb_xrealloc(S->s, sizeof(sentence) * (S->caps = S->caps ? S->caps * 2 : 4096));
            S->s[S->ns++] = (sentence){t, book, chap, 0, (*pos)++, para};
        } else free(t);
        a = e < n ? e + 1 : n;
        i = e > i + 1 ? e - 1 : i;
    }
}

// Parses the exported file: "A\t<book>\t<line>" and "F\t<product>\t<great|other>\t<review>".
static pb_status parse_export(const char *buf, size_t n, const char *name, sources *S, char *err, size_t errlen) {
    strbuf para = {0};
    int book = -1, chap = -1, npara = 0, pos = 0, line = 0;
    const char *p = buf, *end = buf + n;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        line++;
        size_t len = (size_t)(e - p);
        char *l = pb_xmalloc(len + 1);
        memcpy(l, p, len);
        l[len] = 0;
        p = e + 1;
        if (l[0] == 'A' && l[1] == '\t') {
            char *t = strchr(l + 2, '\t');
            if (!t) {
                free(l);
                free(para.b);
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: malformed novel record", name, line);
            }
            *t++ = 0;
            int b = -1;
            static const char *const names[NBOOKS] = {"emma", "mansfieldpark", "northangerabbey",
                                                      "persuasion", "prideprejudice", "sensesensibility"};
            for (int k = 0; k < NBOOKS; k++)
                if (!strcmp(l + 2, names[k])) b = k;
            int is_chap = !strncmp(t, "CHAPTER ", 8) || !strncmp(t, "Chapter ", 8);
            int blank = 1;
            for (char *q = t; *q; q++)
                if (*q != ' ') blank = 0;
            if (b != book || is_chap || blank) { // paragraph ends
                if (para.n && chap >= 0) add_paragraph(S, para.b, book, chap, npara++, &pos);
                para.n = 0;
            }
            if (b != book) book = b, chap = -1;
            if (is_chap && b >= 0) chap = S->nchap[b]++, npara = 0, pos = 0;
            else if (!blank && chap >= 0) {
                // Gutenberg italics (_word_) lose their underscores; whitespace collapses to one space.
                for (char *q = t; *q; q++) {
                    if (*q == '_') continue;
                    if (*q == ' ' && (para.n == 0 || para.b[para.n - 1] == ' ')) continue;
                    sb_add(&para, q, 1);
                }
                if (para.n && para.b[para.n - 1] != ' ') sb_add(&para, " ", 1);
            }
        } else if (l[0] == 'F' && l[1] == '\t') {
            char *f[3] = {l + 2, NULL, NULL};
            for (int k = 1; k < 3; k++) {
                f[k] = f[k - 1] ? strchr(f[k - 1], '\t') : NULL;
                if (f[k]) *f[k]++ = 0;
            }
            if (!f[2] || (strcmp(f[1], "great") && strcmp(f[1], "other"))) {
                free(l);
                free(para.b);
                return pb_errf(PB_ERR_FORMAT, err, errlen, "%s:%d: malformed review record", name, line);
            }
            // collapse runs of spaces, trim
            strbuf r = {0};
            for (char *q = f[2]; *q; q++)
                if (!(*q == ' ' && (r.n == 0 || r.b[r.n - 1] == ' '))) sb_add(&r, q, 1);
            while (r.n && r.b[r.n - 1] == ' ') r.b[--r.n] = 0;
            if (r.n) {
                if (S->nr == S->capr) S->r = pb_xrealloc(S->r, sizeof(review) * (S->capr = S->capr ? S->capr * 2 : 1024));
                S->r[S->nr++] = (review){r.b, pb_xstrdup(f[0]), !strcmp(f[1], "great"), 0};
            } else free(r.b);
        }
        free(l);
    }
    if (para.n && chap >= 0) add_paragraph(S, para.b, book, chap, npara, &pos);
    free(para.b);
    for (int b = 0; b < NBOOKS; b++)
        if (S->nchap[b] < 10)
            return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: novel '%s' has %d chapters; is r-cran-janeaustenr intact?",
                           name, book_code[b], S->nchap[b]);
    if (S->nr < 4000)
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: %d reviews, expected 5000 (r-cran-modeldata small_fine_foods)",
                       name, S->nr);
    return PB_OK;
}

// Runs Rscript (PB_RSCRIPT overrides the program; PB_GLUE_MINI_RLIB an R library directory to
// search instead of R's default) to export the sources into tmp. Errors say what to install.
static pb_status export_sources(const char *tmp, char *err, size_t errlen) {
    const char *rs = getenv("PB_RSCRIPT");
    const char *lib = getenv("PB_GLUE_MINI_RLIB");
    char rsbuf[512];
    snprintf(rsbuf, sizeof rsbuf, "%s", rs && rs[0] ? rs : "Rscript");
    char *argv[] = {rsbuf, "--vanilla", "-e", (char *)R_EXPORT, (char *)(lib ? lib : ""), (char *)tmp, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, rsbuf, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return pb_errf(PB_ERR_IO, err, errlen, "cannot run %s (%s): install the Debian package r-base-core "
                       "(scripts/install-deps.sh installs it with r-cran-janeaustenr and r-cran-modeldata)",
                       rsbuf, strerror(rc));
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return pb_errf(PB_ERR_IO, err, errlen, "waitpid: %s", strerror(errno));
    int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
    if (code == 3)
        return pb_errf(PB_ERR_IO, err, errlen, "R package janeaustenr not found%s%s: install the Debian package "
                       "r-cran-janeaustenr (scripts/install-deps.sh)", lib ? " in " : "", lib ? lib : "");
    if (code == 4)
        return pb_errf(PB_ERR_IO, err, errlen, "R package modeldata not found%s%s: install the Debian package "
                       "r-cran-modeldata (scripts/install-deps.sh)", lib ? " in " : "", lib ? lib : "");
    if (code == 127)
        return pb_errf(PB_ERR_IO, err, errlen, "%s not found: install the Debian package r-base-core "
                       "(scripts/install-deps.sh)", rsbuf);
    if (code != 0)
        return pb_errf(PB_ERR_IO, err, errlen, "%s exporting janeaustenr / modeldata failed (exit %d); check "
                       "r-base-core, r-cran-janeaustenr and r-cran-modeldata", rsbuf, code);
    return PB_OK;
}

// ---------------------------------------------------------------------------------------------
// Splits: a novel's chapter and a review's product belong to one split; dev text that also occurs
// in train (repeated short sentences, duplicated reviews) is dropped from dev.

#define SEED 0x676c75656d696e69ULL // "gluemini"

static void assign_splits(sources *S, int **pool, int *npool) {
    // per book, a fixed permutation of its chapters; the first ceil(15 %) are dev
    char *dev_chap[NBOOKS];
    for (int b = 0; b < NBOOKS; b++) {
        int n = S->nchap[b], *p = pb_xmalloc(sizeof(int) * n);
        for (int i = 0; i < n; i++) p[i] = i;
        uint64_t s = pb_hash_mix(SEED, (uint64_t)b);
        shuffle(p, n, &s);
        dev_chap[b] = calloc((size_t)n, 1);
        for (int i = 0; i < (n * 15 + 99) / 100; i++) dev_chap[b][p[i]] = 1;
        free(p);
    }
    hset tr;
    hs_init(&tr, (size_t)S->ns + S->nr);
    for (int i = 0; i < S->ns; i++) {
        S->s[i].split = dev_chap[S->s[i].book][S->s[i].chapter];
        if (!S->s[i].split) hs_add(&tr, text_hash(S->s[i].text));
    }
    for (int b = 0; b < NBOOKS; b++) free(dev_chap[b]);
    for (int i = 0; i < S->nr; i++) {
        uint64_t h = pb_hash_str(SEED, S->r[i].product);
        S->r[i].split = h % 100 < 15;
        if (!S->r[i].split) hs_add(&tr, text_hash(S->r[i].text));
    }
    for (int i = 0; i < S->ns; i++)
        if (S->s[i].split && hs_has(&tr, text_hash(S->s[i].text))) S->s[i].split = -1; // unused
    for (int i = 0; i < S->nr; i++)
        if (S->r[i].split && hs_has(&tr, text_hash(S->r[i].text))) S->r[i].split = -1;
    free(tr.k);
    for (int sp = 0; sp < 2; sp++) {
        pool[sp] = pb_xmalloc(sizeof(int) * (S->ns + 1));
        npool[sp] = 0;
        for (int i = 0; i < S->ns; i++)
            if (S->s[i].split == sp) pool[sp][npool[sp]++] = i;
    }
}

// ---------------------------------------------------------------------------------------------
// Word-level editing. A sentence is cut at spaces; a word is (leading punctuation, core letters,
// trailing punctuation); edits replace cores and keep the punctuation and initial capital.

typedef struct {
    char **w; // (n) owned
    int n;
} words;

static words split_words(const char *t) {
    words W = {pb_xmalloc(sizeof(char *) * (strlen(t) / 2 + 2)), 0};
    const char *p = t;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ' ') e++;
        W.w[W.n] = pb_xmalloc((size_t)(e - p) + 1);
        memcpy(W.w[W.n], p, (size_t)(e - p));
        W.w[W.n][e - p] = 0;
        W.n++;
        p = e;
    }
    return W;
}
static void words_free(words *W) {
    for (int i = 0; i < W->n; i++) free(W->w[i]);
    free(W->w);
}
static char *join_words(char *const *w, int n) {
    strbuf s = {0};
    for (int i = 0; i < n; i++) {
        if (i) sb_add(&s, " ", 1);
        sb_str(&s, w[i]);
    }
    if (!s.b) s.b = pb_xstrdup("");
    return s.b;
}
// Core of a word: [*b, *e) of its letters (apostrophes inside allowed).
static void word_core(const char *w, int *b, int *e) {
    int n = (int)strlen(w), i = 0, j = n;
    while (i < n && !isalpha((unsigned char)w[i])) i++;
    while (j > i && !isalpha((unsigned char)w[j - 1])) j--;
    *b = i, *e = j;
}
static int alpha_word(const char *w) {
    for (; *w; w++)
        if (!isalpha((unsigned char)*w)) return 0;
    return 1;
}
// Lower-case core equal to key?
static int core_is(const char *w, const char *key) {
    int b, e;
    word_core(w, &b, &e);
    if (e - b != (int)strlen(key)) return 0;
    for (int i = b; i < e; i++)
        if (tolower((unsigned char)w[i]) != key[i - b]) return 0;
    return 1;
}
// New word: w with its core replaced by rep (initial capital kept). Caller frees.
static char *replace_core(const char *w, const char *rep) {
    int b, e;
    word_core(w, &b, &e);
    strbuf s = {0};
    sb_add(&s, w, (size_t)b);
    size_t k = s.n;
    sb_str(&s, rep);
    if (isupper((unsigned char)w[b])) s.b[k] = (char)toupper((unsigned char)s.b[k]);
    sb_str(&s, w + e);
    return s.b;
}

// Meaning-preserving word pairs (both directions) and meaning-changing ones.
static const char *const synonyms[][2] = {
    {"very", "extremely"},  {"quite", "entirely"},   {"began", "started"},   {"almost", "nearly"},
    {"perhaps", "possibly"}, {"replied", "answered"}, {"glad", "pleased"},    {"large", "big"},
    {"little", "small"},    {"often", "frequently"}, {"soon", "shortly"},    {"certainly", "surely"},
    {"however", "nevertheless"}, {"immediately", "instantly"}, {"afraid", "fearful"}, {"rather", "somewhat"},
    {"indeed", "truly"},    {"wish", "desire"},      {"house", "home"},      {"believe", "think"},
    {"sure", "certain"},    {"happy", "cheerful"},   {"walk", "stroll"},     {"quickly", "rapidly"},
    {"spoke", "talked"},    {"looked", "glanced"},   {"beautiful", "lovely"}, {"fond", "attached"},
};
static const char *const antonyms[][2] = {
    {"good", "bad"},      {"happy", "unhappy"},   {"always", "never"},      {"first", "last"},
    {"right", "wrong"},   {"young", "old"},       {"rich", "poor"},         {"better", "worse"},
    {"more", "less"},     {"best", "worst"},      {"pleasant", "unpleasant"}, {"agreeable", "disagreeable"},
    {"possible", "impossible"}, {"kind", "unkind"}, {"early", "late"},      {"love", "hate"},
    {"could", "could not"}, {"would", "would not"}, {"was", "was not"},     {"is", "is not"},
    {"before", "after"},  {"easy", "difficult"},  {"warm", "cold"},         {"all", "none"},
};
static const char *const names[] = {"Elizabeth", "Jane", "Darcy", "Bingley", "Emma", "Harriet", "Knightley",
                                    "Elton", "Anne", "Wentworth", "Elinor", "Marianne", "Fanny", "Edmund",
                                    "Catherine", "Tilney", "Lydia", "Willoughby", "Edward", "Frank", "Crawford",
                                    "Bennet", "Weston", "Elliot", "Dashwood", "Thorpe", "Collins", "Wickham"};
#define NSYN (int)(sizeof synonyms / sizeof synonyms[0])
#define NANT (int)(sizeof antonyms / sizeof antonyms[0])
#define NNAME (int)(sizeof names / sizeof names[0])

// Applies one table substitution to W (first word that matches any entry, scanning from a random
// start): returns 1 if it did. table: n pairs; names mode (table NULL): swap a character name.
static int substitute(words *W, const char *const (*table)[2], int n, uint64_t *rng) {
    int start = rng_int(rng, W->n);
    for (int k = 0; k < W->n; k++) {
        int i = (start + k) % W->n;
        if (!table) {
            for (int j = 0; j < NNAME; j++)
                if (core_is(W->w[i], names[j]) && isupper((unsigned char)W->w[i][0])) {
                    int o = (j + 1 + rng_int(rng, NNAME - 1)) % NNAME;
                    char lower[32];
                    snprintf(lower, sizeof lower, "%s", names[o]);
                    char *r = replace_core(W->w[i], lower);
                    free(W->w[i]);
                    W->w[i] = r;
                    return 1;
                }
            continue;
        }
        for (int j = 0; j < n; j++)
            for (int d = 0; d < 2; d++) {
                // "x not" entries only go forward (negation is inserted, never removed)
                if (d == 1 && strchr(table[j][1], ' ')) continue;
                if (!core_is(W->w[i], table[j][d])) continue;
                char *r = replace_core(W->w[i], table[j][1 - d]);
                free(W->w[i]);
                W->w[i] = r;
                return 1;
            }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Task writers. Each takes the sentence pool of one split and appends rows to out; *counts
// gets (rows, positives) for the chance levels.

typedef struct {
    const sources *S;
    const int *pool;
    int npool;
    int split;
} ctx;

static const sentence *pick(const ctx *c, const int *perm, int *cursor) {
    return &c->S->s[c->pool[perm[(*cursor)++ % c->npool]]];
}
static int *pool_perm(const ctx *c, uint64_t seed) {
    int *p = pb_xmalloc(sizeof(int) * (c->npool + 1));
    for (int i = 0; i < c->npool; i++) p[i] = i;
    uint64_t s = seed;
    shuffle(p, c->npool, &s);
    return p;
}
static void src_id(const sentence *s, char *buf, size_t n) {
    snprintf(buf, n, "%s%02d", book_code[s->book], s->chapter + 1);
}

// CoLA: 4 columns, no header. 2/3 original sentences (1), 1/3 corrupted originals (0).
static void write_cola(const ctx *c, int rows, strbuf *out, int *npos) {
    uint64_t rng = pb_hash_mix(SEED, 100 + (uint64_t)c->split);
    int *perm = pool_perm(c, rng_next(&rng)), cur = 0;
    *npos = 0;
    for (int r = 0; r < rows; r++) {
        const sentence *s = pick(c, perm, &cur);
        char id[16];
        src_id(s, id, sizeof id);
        if (r % 3 != 2) {
            sb_printf(out, "%s\t1\t\t", id);
            sb_str(out, s->text);
            sb_add(out, "\n", 1);
            (*npos)++;
            continue;
        }
        words W = split_words(s->text);
        int n = W.n, kind = rng_int(&rng, 4), i = 1 + rng_int(&rng, n - 3); // 1 <= i <= n-3
        char **v = pb_xmalloc(sizeof(char *) * (n + 2));
        int m = 0;
        for (int k = 0; k < n; k++) {
            if (kind == 0 && k == i) v[m++] = W.w[i + 1];            // swap adjacent words
            else if (kind == 0 && k == i + 1) v[m++] = W.w[i];
            else if (kind == 1 && k == i) continue;                  // delete a word
            else if (kind == 2 && k == i) v[m++] = W.w[k], v[m++] = W.w[k]; // repeat a word
            else if (kind == 3 && k >= i && k <= i + 2) v[m++] = W.w[2 * i + 2 - k]; // reverse 3 words
            else v[m++] = W.w[k];
        }
        char *t = join_words(v, m);
        sb_printf(out, "%s\t0\t*\t", id);
        sb_str(out, t);
        sb_add(out, "\n", 1);
        free(t);
        free(v);
        words_free(&W);
    }
    free(perm);
}

// MRPC: header + (Quality, #1 ID, #2 ID, #1 String, #2 String). 2/3 paraphrases (1): a
// synonym substitution; 1/3 non-paraphrases (0): an antonym / negation or a swapped name.
static void write_mrpc(const ctx *c, int rows, strbuf *out, int *npos) {
    uint64_t rng = pb_hash_mix(SEED, 200 + (uint64_t)c->split);
    int *perm = pool_perm(c, rng_next(&rng)), cur = 0;
    sb_str(out, "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
    *npos = 0;
    for (int r = 0; r < rows;) {
        if (cur >= 4 * c->npool) break; // pool exhausted (cannot happen at the documented sizes)
        const sentence *s = pick(c, perm, &cur);
        int pos = r % 3 != 2;
        words W = split_words(s->text);
        uint64_t sub = rng_next(&rng);
        int ok = pos ? substitute(&W, synonyms, NSYN, &sub)
                     : (rng_int(&sub, 2) ? substitute(&W, antonyms, NANT, &sub) || substitute(&W, NULL, 0, &sub)
                                         : substitute(&W, NULL, 0, &sub) || substitute(&W, antonyms, NANT, &sub));
        if (ok) {
            char *t = join_words(W.w, W.n), id[16];
            src_id(s, id, sizeof id);
            sb_printf(out, "%d\t%s.%04d\t%s.%04d.%d\t", pos, id, s->pos, id, s->pos, r);
            sb_str(out, s->text);
            sb_add(out, "\t", 1);
            sb_str(out, t);
            sb_add(out, "\n", 1);
            free(t);
            *npos += pos;
            r++;
        }
        words_free(&W);
    }
    free(perm);
}

// STS-B: header + 10 columns. B = A with k of its n words (random positions) replaced, in order,
// by the words of another sentence; score = 5 (n - k) / n, k = round(n l / 5) for l uniform 0..5.
static void write_stsb(const ctx *c, int rows, strbuf *out) {
    uint64_t rng = pb_hash_mix(SEED, 300 + (uint64_t)c->split);
    int *perm = pool_perm(c, rng_next(&rng)), cur = 0;
    sb_str(out, "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n");
    for (int r = 0; r < rows; r++) {
        const sentence *a = pick(c, perm, &cur), *d = pick(c, perm, &cur);
        words A = split_words(a->text), D = split_words(d->text);
        int n = A.n, l = rng_int(&rng, 6), k = (n * l * 2 + 5) / 10;
        int *pos = pb_xmalloc(sizeof(int) * n), *hit = calloc((size_t)n, sizeof(int));
        for (int i = 0; i < n; i++) pos[i] = i;
        shuffle(pos, n, &rng);
        for (int i = 0; i < k; i++) hit[pos[i]] = 1;
        char **v = pb_xmalloc(sizeof(char *) * n);
        for (int i = 0, j = 0; i < n; i++) v[i] = hit[i] ? D.w[j++ % D.n] : A.w[i];
        char *t = join_words(v, n), id[16];
        src_id(a, id, sizeof id);
        int num = 5000 * (n - k) / n; // score in thousandths, integer so the text is exact
        sb_printf(out, "%d\tausten\t%s\t2026\t%04d\tnone\tnone\t", r, id, a->pos);
        sb_str(out, a->text);
        sb_add(out, "\t", 1);
        sb_str(out, t);
        sb_printf(out, "\t%d.%03d\n", num / 1000, num % 1000);
        free(t);
        free(v);
        free(pos);
        free(hit);
        words_free(&A);
        words_free(&D);
    }
    free(perm);
}

// Finds a sentence of the same chapter at distance in [lo, hi] positions (either side) in the
// pool; -1 if none. The pool is in text order, so neighbours are close in the array.
static int near_sentence(const ctx *c, int pi, int lo, int hi, uint64_t *rng) {
    const sentence *s = &c->S->s[c->pool[pi]];
    int cand[64], nc = 0;
    for (int d = -hi; d <= hi && nc < 64; d++) {
        int j = pi + d;
        if (d > -lo && d < lo) continue;
        if (j < 0 || j >= c->npool) continue;
        const sentence *t = &c->S->s[c->pool[j]];
        if (t->book == s->book && t->chapter == s->chapter) cand[nc++] = j;
    }
    return nc ? c->pool[cand[rng_int(rng, nc)]] : -1;
}

// QNLI: header + (index, question, sentence, label). The question is a sentence with one word of
// >= 4 letters (not the first) turned into "what" and a final "?"; half the rows pair it with its
// source sentence (entailment), half with a neighbour 1..4 sentences away in the same chapter.
static void write_qnli(const ctx *c, int rows, strbuf *out, int *npos) {
    uint64_t rng = pb_hash_mix(SEED, 400 + (uint64_t)c->split);
    int *perm = pool_perm(c, rng_next(&rng)), cur = 0;
    sb_str(out, "index\tquestion\tsentence\tlabel\n");
    *npos = 0;
    for (int r = 0; r < rows;) {
        if (cur >= 4 * c->npool) break;
        int pi = perm[cur++ % c->npool];
        const sentence *s = &c->S->s[c->pool[pi]];
        int ent = r % 2 == 0;
        int other = ent ? c->pool[pi] : near_sentence(c, pi, 1, 4, &rng);
        if (other < 0) continue;
        words W = split_words(s->text);
        int cand[64], nc = 0;
        for (int i = 1; i < W.n && nc < 64; i++) {
            int b, e;
            word_core(W.w[i], &b, &e);
            if (e - b >= 4 && alpha_word(W.w[i])) cand[nc++] = i;
        }
        if (nc) {
            int i = cand[rng_int(&rng, nc)];
            free(W.w[i]);
            W.w[i] = pb_xstrdup("what");
            char *q = join_words(W.w, W.n);
            size_t L = strlen(q);
            while (L && (ispunct((unsigned char)q[L - 1]) && q[L - 1] != '\'')) q[--L] = 0;
            sb_printf(out, "%d\t", r);
            sb_str(out, q);
            sb_str(out, "?\t");
            sb_str(out, c->S->s[other].text);
            sb_str(out, ent ? "\tentailment\n" : "\tnot_entailment\n");
            free(q);
            *npos += ent;
            r++;
        }
        words_free(&W);
    }
    free(perm);
}

// RTE: header + (index, sentence1, sentence2, label). sentence2 is the next sentence of the same
// paragraph (entailment) or a sentence 8..40 positions away in the same chapter (not_entailment).
static void write_rte(const ctx *c, int rows, strbuf *out, int *npos) {
    uint64_t rng = pb_hash_mix(SEED, 500 + (uint64_t)c->split);
    int *perm = pool_perm(c, rng_next(&rng)), cur = 0;
    sb_str(out, "index\tsentence1\tsentence2\tlabel\n");
    *npos = 0;
    for (int r = 0; r < rows;) {
        if (cur >= 4 * c->npool) break;
        int pi = perm[cur++ % c->npool];
        const sentence *s = &c->S->s[c->pool[pi]];
        int ent = r % 2 == 0, other = -1;
        if (ent) {
            if (pi + 1 < c->npool) {
                const sentence *t = &c->S->s[c->pool[pi + 1]];
                if (t->book == s->book && t->chapter == s->chapter && t->para == s->para && t->pos == s->pos + 1)
                    other = c->pool[pi + 1];
            }
        } else other = near_sentence(c, pi, 8, 40, &rng);
        if (other < 0) continue;
        sb_printf(out, "%d\t", r);
        sb_str(out, s->text);
        sb_add(out, "\t", 1);
        sb_str(out, c->S->s[other].text);
        sb_str(out, ent ? "\tentailment\n" : "\tnot_entailment\n");
        *npos += ent;
        r++;
    }
    free(perm);
}

// SST-2: header + (sentence, label). The reviews of one split, in a seeded order; great = 1.
static void write_sst2(const sources *S, int split, strbuf *out, int *rows, int *npos) {
    int *p = pb_xmalloc(sizeof(int) * (S->nr + 1)), n = 0;
    for (int i = 0; i < S->nr; i++)
        if (S->r[i].split == split) p[n++] = i;
    uint64_t s = pb_hash_mix(SEED, 600 + (uint64_t)split);
    shuffle(p, n, &s);
    sb_str(out, "sentence\tlabel\n");
    *npos = 0;
    for (int i = 0; i < n; i++) {
        sb_str(out, S->r[p[i]].text);
        sb_str(out, S->r[p[i]].great ? "\t1\n" : "\t0\n");
        *npos += S->r[p[i]].great;
    }
    *rows = n;
    free(p);
}

// ---------------------------------------------------------------------------------------------

static const struct {
    const char *task;
    int train, dev;
} sizes[] = {{"cola", 3000, 500}, {"mrpc", 2000, 400}, {"stsb", 2000, 400}, {"qnli", 3000, 500}, {"rte", 2000, 300}};

void pb_glue_mini_dir(const char *data_root, char *path, size_t len) {
    snprintf(path, len, "%s/glue-mini", data_root && data_root[0] ? data_root : "data");
}

static pb_status write_file(const char *path, const strbuf *b, char *err, size_t errlen) {
    const void *parts[1] = {b->b ? b->b : ""};
    size_t n[1] = {b->n};
    return pb_write_atomic(path, parts, n, 1, err, errlen);
}

// Chance level line for the log: majority-class accuracy (and F1 of always-1 for MRPC).
static void log_task(FILE *log, const char *task, int ntr, int ndev, int dpos) {
    if (!log) return;
    double p = ndev ? (double)dpos / ndev : 0;
    fprintf(log, "glue-mini/%-5s train %5d  dev %4d", task, ntr, ndev);
    if (!strcmp(task, "stsb")) fprintf(log, "  chance: pearson 0\n");
    else if (!strcmp(task, "cola")) fprintf(log, "  chance: mcc 0 (majority acc %.3f)\n", p > 0.5 ? p : 1 - p);
    else if (!strcmp(task, "mrpc"))
        fprintf(log, "  chance: majority acc %.3f, always-1 F1 %.3f\n", p > 0.5 ? p : 1 - p, 2 * p / (1 + p));
    else fprintf(log, "  chance: majority acc %.3f\n", p > 0.5 ? p : 1 - p);
}

pb_status pb_glue_mini_build(const char *out_dir, FILE *log, char *err, size_t errlen) {
    char path[1200];
    pb_status st = pb_mkdirs(out_dir, err, errlen);
    if (st != PB_OK) return st;
    snprintf(path, sizeof path, "%s/.export.%ld.tsv", out_dir, (long)getpid());
    st = export_sources(path, err, errlen);
    uint8_t *buf = NULL;
    size_t n = 0;
    if (st == PB_OK) st = pb_read_file(path, &buf, &n, err, errlen);
    unlink(path);
    if (st != PB_OK) return st;
    sources S = {0};
    st = parse_export((const char *)buf, n, "Rscript export", &S, err, errlen);
    free(buf);
    if (st != PB_OK) {
        sources_free(&S);
        return st;
    }
    int *pool[2], npool[2];
    assign_splits(&S, pool, npool);
    for (int sp = 0; sp < 2 && st == PB_OK; sp++)
        if (npool[sp] < 1000)
            st = pb_errf(PB_ERR_FORMAT, err, errlen, "only %d %s sentences parsed from janeaustenr", npool[sp],
                         sp ? "dev" : "train");
    // SST-2
    for (int k = 0; k < 6 && st == PB_OK; k++) {
        const char *task = pb_glue_mini_tasks[k];
        int cnt[2] = {0, 0}, pos[2] = {0, 0};
        for (int sp = 0; sp < 2 && st == PB_OK; sp++) {
            strbuf b = {0};
            ctx c = {&S, pool[sp], npool[sp], sp};
            int want = 0;
            for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
                if (!strcmp(sizes[z].task, task)) want = sp ? sizes[z].dev : sizes[z].train;
            if (!strcmp(task, "sst2")) write_sst2(&S, sp, &b, &cnt[sp], &pos[sp]);
            else if (!strcmp(task, "cola")) write_cola(&c, want, &b, &pos[sp]), cnt[sp] = want;
            else if (!strcmp(task, "mrpc")) write_mrpc(&c, want, &b, &pos[sp]), cnt[sp] = want;
            else if (!strcmp(task, "stsb")) write_stsb(&c, want, &b), cnt[sp] = want;
            else if (!strcmp(task, "qnli")) write_qnli(&c, want, &b, &pos[sp]), cnt[sp] = want;
            else write_rte(&c, want, &b, &pos[sp]), cnt[sp] = want;
            snprintf(path, sizeof path, "%s/%s/%s.tsv", out_dir, task, sp ? "dev" : "train");
            st = write_file(path, &b, err, errlen);
            free(b.b);
        }
        if (st == PB_OK) log_task(log, task, cnt[0], cnt[1], pos[1]);
    }
    // The masked-LM corpus: every train sentence (text order, one per line) and train review.
    strbuf corpus = {0};
    for (int i = 0; i < npool[0]; i++) {
        sb_str(&corpus, S.s[pool[0][i]].text);
        sb_add(&corpus, "\n", 1);
    }
    for (int i = 0; i < S.nr; i++)
        if (S.r[i].split == 0) {
            sb_str(&corpus, S.r[i].text);
            sb_add(&corpus, "\n", 1);
        }
    if (st == PB_OK) {
        snprintf(path, sizeof path, "%s/corpus.txt", out_dir);
        st = write_file(path, &corpus, err, errlen);
    }
    // A byte-level BPE on the corpus (the suite stage cannot train one itself).
    if (st == PB_OK) {
        pb_bpe_corpus *bc = pb_bpe_corpus_new();
        pb_bpe_corpus_add_text(bc, corpus.b, corpus.n);
        pb_bpe_train_opts o = {PB_GLUE_MINI_VOCAB, 2};
        pb_bpe_model m;
        st = pb_bpe_train(bc, &o, &m, err, errlen);
        pb_bpe_corpus_free(bc);
        snprintf(path, sizeof path, "%s/tokenizer", out_dir);
        if (st == PB_OK) st = pb_bpe_model_save(&m, path, err, errlen);
        pb_bpe_model_free(&m);
    }
    if (st == PB_OK && log)
        fprintf(log, "glue-mini corpus.txt: %zu bytes (%d train sentences + train reviews; %d dev sentences held out); "
                "tokenizer/ %d tokens\n", corpus.n, npool[0], npool[1], PB_GLUE_MINI_VOCAB);
    free(corpus.b);
    free(pool[0]);
    free(pool[1]);
    sources_free(&S);
    return st;
}
