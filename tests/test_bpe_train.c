// test_bpe_train.c: the byte-level BPE trainer on tiny corpora whose merges are worked out by hand
// (tie-breaking by trainer id, code point order of the byte alphabet, overlapping pairs,
// min_frequency, early stop, per-line pre-tokenisation), the exact file formats, a round trip
// through the encoder, determinism, and bad input (vocab size, missing corpus, bad output dir).
#include <sys/stat.h>
#include "../datasets/bpe_internal.h"
#include "../datasets/bpe_train.h"
#include "../datasets/tokenizer.h"
#include "../engine/fileutil.h"
#include "test_data_util.h"

// Trainer ids used below: byte token id = 4 + rank of its code point among the 256 (so '!' is 4,
// 'a' 4 + 97 - 33 = 68, 'c' 70; space 'Ġ' (U+0120 = 288) is 4 + 188 + 32 = 224); merged tokens
// from 260.
enum { ID_A = 68, ID_C = 70, ID_SPACE = 224, FIRST_MERGED = 260 };

// Trains on text; returns merges.txt (caller frees) and fills *m (caller frees).
static char *train(const char *text, int vocab, int minf, pb_bpe_model *m) {
    pb_bpe_corpus *c = pb_bpe_corpus_new();
    pb_bpe_corpus_add_text(c, text, strlen(text));
    pb_bpe_train_opts o = {vocab, minf};
    char err[512];
    pb_status s = pb_bpe_train(c, &o, m, err, sizeof err);
    EXPECT(s == PB_OK, "train: %s", err);
    pb_bpe_corpus_free(c);
    size_t n;
    return pb_bpe_merges_txt(m, &n);
}

static void expect_merges(const char *text, int vocab, int minf, const char *want, int want_tokens) {
    pb_bpe_model m;
    char *got = train(text, vocab, minf, &m);
    EXPECT(!strcmp(got, want), "corpus '%s' (min_frequency %d): merges\n%s--- want\n%s", text, minf, got, want);
    EXPECT(m.n_tokens == want_tokens, "corpus '%s': %d tokens, want %d", text, m.n_tokens, want_tokens);
    EXPECT(m.n_tokens > 0 && !strcmp(m.tokens[m.n_tokens - 1], "<mask>"), "<mask> is not last");
    free(got);
    pb_bpe_model_free(&m);
}

static void test_byte_map(void) {
    EXPECT(pb_bpe_byte_cp('a') == 'a' && pb_bpe_byte_cp('!') == 33 && pb_bpe_byte_cp(0xFF) == 0xFF, "printable");
    EXPECT(pb_bpe_byte_cp(0) == 256 && pb_bpe_byte_cp(' ') == 288 && pb_bpe_byte_cp('\n') == 266, "controls, space");
    EXPECT(pb_bpe_byte_cp(127) == 289 && pb_bpe_byte_cp(160) == 322 && pb_bpe_byte_cp(173) == 323, "DEL, NBSP, SHY");
    char u[3];
    EXPECT(pb_bpe_byte_utf8(' ', u) == 2 && !strcmp(u, "\xc4\xa0"), "space is U+0120 'Ġ'");
}

static void test_merges(void) {
    // words abab, ab, abc (and "\n" x3, no pairs). (a,b) = 4 first. Then (ab,ab) and (ab,c) both
    // occur once: the smaller trainer pair wins, (260, 70) before (260, 260), although the string
    // "ab ab" sorts before "ab c".
    expect_merges("abab\nab\nabc\n", 264, 1, "#version: 0.2\na b\nab c\nab ab\n", 264);
    // words ab, " cd": three pairs once each. Ties go to ids in code point order of the byte
    // characters: (a,b) = (68,69), (c,d) = (70,71), (Ġ,c) = (224,70); by byte value the space (32)
    // would come first. Then " cd" has (Ġ,cd) only; no pair left, so 264 tokens of the 300 asked.
    expect_merges("ab cd\n", 300, 1, "#version: 0.2\na b\nc d\n\xc4\xa0 cd\n", 264);
    // min_frequency 2: (a,b) x3, then (Ġ,ab) x2 (" ab" twice); (Ġ,c), (c,d) once each stop it.
    expect_merges("ab ab ab cd\n", 300, 2, "#version: 0.2\na b\n\xc4\xa0 ab\n", 263);
    // overlapping pairs: aaaa -> aa|aa, aaa -> aa|a (left to right); then (aa,a) and (aa,aa) once
    // each: (260, 68) first.
    expect_merges("aaaa\naaa\n", 300, 1, "#version: 0.2\na a\naa a\naa aa\n", 264);
    // vocab size caps the merges: 262 = specials + bytes + one merge + <mask>
    expect_merges("abab\nab\nabc\n", 262, 1, "#version: 0.2\na b\n", 262);
    // no merges at all
    expect_merges("abab\n", 261, 1, "#version: 0.2\n", 261);
    expect_merges("", 300, 0, "#version: 0.2\n", 261);

    // ids as documented: the merged tokens follow the bytes, <mask> last
    pb_bpe_model m;
    free(train("abab\nab\nabc\n", 264, 1, &m));
    EXPECT(m.n_tokens == 264 && !strcmp(m.tokens[0], "<s>") && !strcmp(m.tokens[1], "<pad>") &&
               !strcmp(m.tokens[2], "</s>") && !strcmp(m.tokens[3], "<unk>") && !strcmp(m.tokens[4], "!") &&
               !strcmp(m.tokens[ID_A], "a") && !strcmp(m.tokens[ID_C], "c") &&
               !strcmp(m.tokens[ID_SPACE], "\xc4\xa0") && !strcmp(m.tokens[FIRST_MERGED], "ab") &&
               !strcmp(m.tokens[261], "abc") && !strcmp(m.tokens[262], "abab") && !strcmp(m.tokens[263], "<mask>"),
           "token ids");
    EXPECT(m.n_merges == 3 && m.merges[1][0] == FIRST_MERGED && m.merges[1][1] == ID_C, "merge ids");
    size_t vn;
    char *v = pb_bpe_vocab_json(&m, &vn);
    const char *head = "{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"<unk>\":3,\"!\":4,\"\\\"\":5,\"#\":6,";
    const char *tail = ",\"ab\":260,\"abc\":261,\"abab\":262,\"<mask>\":263}";
    EXPECT(vn == strlen(v) && !strncmp(v, head, strlen(head)), "vocab.json starts %.60s", v);
    EXPECT(vn > strlen(tail) && !strcmp(v + vn - strlen(tail), tail), "vocab.json ends %s", v + vn - strlen(tail));
    EXPECT(strstr(v, ",\"\\\\\":63,") && strstr(v, ",\"\xc4\xa0\":224,"), "backslash / space entries");

    // round trip through the encoder: abab -> [abab], " abc" -> [Ġ, abc] (no (Ġ, a) merge learned)
    size_t mn;
    char *mt = pb_bpe_merges_txt(&m, &mn), err[512];
    pb_tokenizer *t;
    EXPECT(pb_tokenizer_load_mem(v, vn, "vocab.json", mt, mn, "merges.txt", &t, err, sizeof err) == PB_OK,
           "load: %s", err);
    if (t) {
        int32_t *ids;
        int n = pb_tokenizer_encode(t, "abab abc", 8, &ids);
        EXPECT(n == 3 && ids[0] == 262 && ids[1] == ID_SPACE && ids[2] == 261, "encode: %d ids", n);
        free(ids);
        EXPECT(pb_tokenizer_vocab_size(t) == 264, "vocab size %d", pb_tokenizer_vocab_size(t));
        pb_tokenizer_free(t);
    }
    free(v);
    free(mt);
    pb_bpe_model_free(&m);
}

static void test_corpus(void) {
    // one line at a time: "ab  \n" gives "ab" and "  \n" (the run reaches the line's end); the
    // whole text would give "ab", "  ", "\n" ("\s+(?!\S)" before the next line's "ab")
    pb_bpe_corpus *c = pb_bpe_corpus_new();
    const char *text = "ab  \nab\n";
    pb_bpe_corpus_add_text(c, text, strlen(text));
    EXPECT(pb_bpe_corpus_words(c) == 4 && pb_bpe_corpus_distinct(c) == 3, "words %lld distinct %lld",
           (long long)pb_bpe_corpus_words(c), (long long)pb_bpe_corpus_distinct(c));
    // a last line without '\n', and invalid UTF-8 kept as bytes
    pb_bpe_corpus_add_text(c, "ab\xff", 3);
    EXPECT(pb_bpe_corpus_words(c) == 6 && pb_bpe_corpus_distinct(c) == 4, "words %lld distinct %lld",
           (long long)pb_bpe_corpus_words(c), (long long)pb_bpe_corpus_distinct(c));
    pb_bpe_corpus_free(c);

    // deterministic: two trainings of a text with ties everywhere give the same bytes
    const char *tie = "the cat sat on the mat; a bat, a rat. Ünïcödé   runs\t\ttabs\r\n123 4567 it's we'll\n";
    pb_bpe_model m1, m2;
    char *a = train(tie, 400, 1, &m1), *b = train(tie, 400, 1, &m2);
    EXPECT(!strcmp(a, b), "two runs differ");
    size_t n1, n2;
    char *v1 = pb_bpe_vocab_json(&m1, &n1), *v2 = pb_bpe_vocab_json(&m2, &n2);
    EXPECT(n1 == n2 && !memcmp(v1, v2, n1), "vocab.json differs between runs");
    free(a), free(b), free(v1), free(v2);
    pb_bpe_model_free(&m1);
    pb_bpe_model_free(&m2);
}

static void test_errors(const char *root) {
    char err[512], p[600];
    pb_bpe_corpus *c = pb_bpe_corpus_new();
    pb_bpe_corpus_add_text(c, "abc\n", 4);
    pb_bpe_model m;
    pb_bpe_train_opts o = {260, 2};
    EXPECT(pb_bpe_train(c, &o, &m, err, sizeof err) == PB_ERR_ARG && strstr(err, "260") && strstr(err, "261"),
           "vocab 260: %s", err);
    EXPECT(m.n_tokens == 0 && !m.tokens, "model not empty after an error");
    o = (pb_bpe_train_opts){300, -1};
    EXPECT(pb_bpe_train(c, &o, &m, err, sizeof err) == PB_ERR_ARG && strstr(err, "min frequency"), "minf: %s", err);

    snprintf(p, sizeof p, "%s/missing.txt", root);
    EXPECT(pb_bpe_corpus_add_file(c, p, err, sizeof err) == PB_ERR_IO && strstr(err, p) && strstr(err, "no such file"),
           "missing corpus: %s", err);
    EXPECT(pb_bpe_corpus_add_file(c, root, err, sizeof err) == PB_ERR_IO && strstr(err, "is a directory"),
           "directory corpus: %s", err);
    snprintf(p, sizeof p, "%s/corpus.txt", root);
    write_text(p, "abab ab\n");
    EXPECT(pb_bpe_corpus_add_file(c, p, err, sizeof err) == PB_OK, "corpus file: %s", err);
    EXPECT(pb_bpe_corpus_words(c) == 5, "words %lld", (long long)pb_bpe_corpus_words(c));

    o = (pb_bpe_train_opts){300, 1};
    EXPECT(pb_bpe_train(c, &o, &m, err, sizeof err) == PB_OK, "train: %s", err);
    // output under a regular file, and a regular file as the output
    snprintf(p, sizeof p, "%s/corpus.txt/out", root);
    EXPECT(pb_bpe_model_save(&m, p, err, sizeof err) == PB_ERR_IO && strstr(err, "corpus.txt"), "under a file: %s",
           err);
    snprintf(p, sizeof p, "%s/corpus.txt", root);
    EXPECT(pb_bpe_model_save(&m, p, err, sizeof err) == PB_ERR_IO && strstr(err, "not a directory"), "file: %s", err);
    // a good one: both files, loadable, no temp files left
    snprintf(p, sizeof p, "%s/out/tok", root);
    EXPECT(pb_bpe_model_save(&m, p, err, sizeof err) == PB_OK, "save: %s", err);
    pb_tokenizer *t;
    EXPECT(pb_tokenizer_load(p, &t, err, sizeof err) == PB_OK, "load saved: %s", err);
    pb_tokenizer_free(t);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "test \"$(ls '%s' | tr '\\n' ' ')\" = 'merges.txt vocab.json '", p);
    EXPECT(system(cmd) == 0, "%s holds more than vocab.json and merges.txt", p);
    pb_bpe_model_free(&m);
    pb_bpe_corpus_free(c);
}

int main(void) {
    char root[256];
    make_tmpdir(root, sizeof root, "bpe");
    test_byte_map();
    test_merges();
    test_corpus();
    test_errors(root);
    rm_rf(root);
    if (pb_test_fails) fprintf(stderr, "%d failure(s)\n", pb_test_fails);
    else printf("test_bpe_train: ok\n");
    return pb_test_fails ? 1 : 0;
}
