// cmd_tokenizer.c: `peftbench tokenizer` — train a RoBERTa/GPT-2 byte-level BPE, encode with one.
//   peftbench tokenizer train --corpus FILE [--corpus FILE]... --vocab-size N [--min-frequency K]
//                             --out DIR
//   peftbench tokenizer encode (--dir DIR | --vocab FILE --merges FILE) [--roberta]
//                              (--file FILE [--lines] | TEXT...)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../datasets/bpe_train.h"
#include "../datasets/tokenizer.h"
#include "../engine/fileutil.h"
#include "cli.h"

static int usage_to(FILE *f, int rc) {
    fprintf(f,
            "usage: peftbench tokenizer train --corpus FILE [--corpus FILE]... --vocab-size N\n"
            "                                 [--min-frequency K] --out DIR\n"
            "         byte-level BPE as RoBERTa/GPT-2: writes DIR/vocab.json and DIR/merges.txt\n"
            "         (<s> 0, <pad> 1, </s> 2, <unk> 3, 256 byte tokens, merges, <mask> last = N-1);\n"
            "         N >= %d; K (default 2) is the least count a merged pair needs\n"
            "       peftbench tokenizer encode (--dir DIR | --vocab FILE --merges FILE) [--roberta]\n"
            "                                  (--file FILE [--lines] | TEXT...)\n"
            "         token ids, one line per TEXT (or for the whole FILE, or per line of it with\n"
            "         --lines, the newline not included); --roberta adds <s> ... </s>\n",
            PB_BPE_MIN_VOCAB);
    return rc;
}

// Parses a whole decimal integer in [lo, hi] for option `name`; prints the error and returns -1.
static int parse_int(const char *name, const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "peftbench tokenizer: %s '%s': expected an integer in [%lld, %lld]\n", name, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int cmd_train(int argc, char **argv) {
    const char **corpora = pb_xcalloc((size_t)argc + 1, sizeof(char *));
    int nc = 0;
    const char *outdir = NULL;
    long long vocab = -1, minf = 2;
    int rc = 2;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            free(corpora);
            return usage_to(stdout, 0);
        }
        if (!v) {
            fprintf(stderr, "peftbench tokenizer train: %s needs a value\n", a);
            goto done;
        }
        i++;
        if (!strcmp(a, "--corpus")) corpora[nc++] = v;
        else if (!strcmp(a, "--out")) outdir = v;
        else if (!strcmp(a, "--vocab-size")) {
            if (parse_int("--vocab-size", v, PB_BPE_MIN_VOCAB, 1 << 24, &vocab)) goto done;
        } else if (!strcmp(a, "--min-frequency")) {
            if (parse_int("--min-frequency", v, 0, (long long)1 << 62, &minf)) goto done;
        } else {
            fprintf(stderr, "peftbench tokenizer train: unknown option %s\n", a);
            goto done;
        }
    }
    if (!nc || vocab < 0 || !outdir || !outdir[0]) {
        fprintf(stderr, "peftbench tokenizer train: needs --corpus FILE, --vocab-size N (>= %d) and --out DIR\n",
                PB_BPE_MIN_VOCAB);
        usage_to(stderr, 2);
        goto done;
    }
    char err[1024];
    // corpora and output directory first: a bad --out should not cost a training run
    for (int i = 0; i < nc; i++) {
        struct stat cs;
        const char *why = stat(corpora[i], &cs) != 0 ? "no such file"
                          : S_ISDIR(cs.st_mode)      ? "is a directory (give text files)"
                                                     : NULL;
        if (why) {
            fprintf(stderr, "peftbench tokenizer train: corpus %s: %s\n", corpora[i], why);
            goto done;
        }
    }
    if (pb_mkdirs(outdir, err, sizeof err) != PB_OK) {
        fprintf(stderr, "peftbench tokenizer train: --out %s\n", err);
        goto done;
    }
    struct stat st;
    if (stat(outdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "peftbench tokenizer train: --out %s: not a directory\n", outdir);
        goto done;
    }
    double t0 = pb_now();
    pb_bpe_corpus *c = pb_bpe_corpus_new();
    for (int i = 0; i < nc; i++)
        if (pb_bpe_corpus_add_file(c, corpora[i], err, sizeof err) != PB_OK) {
            fprintf(stderr, "peftbench tokenizer train: %s\n", err);
            pb_bpe_corpus_free(c);
            goto done;
        }
    double t1 = pb_now();
    pb_bpe_train_opts o = {(int)vocab, minf};
    pb_bpe_model m;
    pb_status s = pb_bpe_train(c, &o, &m, err, sizeof err);
    double t2 = pb_now();
    if (s == PB_OK) s = pb_bpe_model_save(&m, outdir, err, sizeof err);
    if (s != PB_OK) {
        fprintf(stderr, "peftbench tokenizer train: %s\n", err);
        rc = s == PB_ERR_ARG ? 2 : 1;
    } else {
        printf("tokenizer: %lld words (%lld distinct) from %d file%s; %d tokens, %d merges; "
               "counted in %.2fs, merged in %.2fs\n",
               (long long)pb_bpe_corpus_words(c), (long long)pb_bpe_corpus_distinct(c), nc, nc == 1 ? "" : "s",
               m.n_tokens, m.n_merges, t1 - t0, t2 - t1);
        if (m.n_tokens < vocab)
            printf("note: the corpus has no more pairs occurring >= %lld times: %d tokens instead of %lld\n", minf,
                   m.n_tokens, vocab);
        printf("wrote %s/vocab.json and %s/merges.txt\n", outdir, outdir);
        rc = 0;
    }
    pb_bpe_model_free(&m);
    pb_bpe_corpus_free(c);
done:
    free(corpora);
    return rc;
}

// Prints the ids of text[0..len) on one line (with <s> ... </s> when roberta).
static void print_ids(pb_tokenizer *t, const char *text, size_t len, int roberta, int bos, int eos) {
    int32_t *ids;
    int n = pb_tokenizer_encode(t, text, len, &ids);
    if (roberta) printf("%d%s", bos, n ? " " : "");
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    if (roberta) printf(" %d", eos);
    printf("\n");
    free(ids);
}

static int cmd_encode(int argc, char **argv) {
    const char *dir = NULL, *vocab = NULL, *merges = NULL, *file = NULL;
    int roberta = 0, lines = 0, first_text = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage_to(stdout, 0);
        if (!strcmp(a, "--roberta")) roberta = 1;
        else if (!strcmp(a, "--lines")) lines = 1;
        else if (!strcmp(a, "--")) {
            first_text = i + 1;
            break;
        } else if (!strcmp(a, "--dir") || !strcmp(a, "--vocab") || !strcmp(a, "--merges") || !strcmp(a, "--file")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "peftbench tokenizer encode: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--dir")) dir = v;
            else if (!strcmp(a, "--vocab")) vocab = v;
            else if (!strcmp(a, "--merges")) merges = v;
            else file = v;
        } else if (!strncmp(a, "--", 2)) {
            fprintf(stderr, "peftbench tokenizer encode: unknown option %s (texts starting with -- go after --)\n", a);
            return 2;
        } else {
            first_text = i;
            break;
        }
    }
    int ntext = first_text < 0 ? 0 : argc - first_text;
    if (!!dir == (vocab || merges) || (!dir && (!vocab || !merges)) || !!file == (ntext > 0) || (lines && !file)) {
        fprintf(stderr, "peftbench tokenizer encode: give --dir DIR or both --vocab and --merges, and either --file "
                        "FILE or TEXT arguments (--lines only with --file)\n");
        return usage_to(stderr, 2);
    }
    char err[1024];
    pb_tokenizer *t = NULL;
    if (dir) {
        if (pb_tokenizer_load(dir, &t, err, sizeof err) != PB_OK) {
            fprintf(stderr, "peftbench tokenizer encode: %s\n", err);
            return 2;
        }
    } else {
        uint8_t *vb = NULL, *mb = NULL;
        size_t vn, mn;
        pb_status s = pb_read_file(vocab, &vb, &vn, err, sizeof err);
        if (s == PB_OK) s = pb_read_file(merges, &mb, &mn, err, sizeof err);
        if (s == PB_OK)
            s = pb_tokenizer_load_mem((const char *)vb, vn, vocab, (const char *)mb, mn, merges, &t, err, sizeof err);
        free(vb);
        free(mb);
        if (s != PB_OK) {
            fprintf(stderr, "peftbench tokenizer encode: %s\n", err);
            return 2;
        }
    }
    // the special ids as encode_pair uses them: <s> and </s> around an empty text
    int32_t sp[2], mask[2];
    pb_tokenizer_encode_pair(t, "", NULL, 2, sp, mask);
    if (file) {
        uint8_t *buf;
        size_t n;
        if (pb_read_file(file, &buf, &n, err, sizeof err) != PB_OK) {
            fprintf(stderr, "peftbench tokenizer encode: %s\n", err);
            pb_tokenizer_free(t);
            return 2;
        }
        const char *s = (const char *)buf;
        if (!lines) print_ids(t, s, n, roberta, sp[0], sp[1]);
        else
            for (size_t a = 0; a < n;) {
                const char *nl = memchr(s + a, '\n', n - a);
                size_t b = nl ? (size_t)(nl - s) : n;
                print_ids(t, s + a, b - a, roberta, sp[0], sp[1]);
                a = b + 1;
            }
        free(buf);
    } else {
        for (int i = first_text; i < argc; i++) print_ids(t, argv[i], strlen(argv[i]), roberta, sp[0], sp[1]);
    }
    pb_tokenizer_free(t);
    return 0;
}

int pb_cmd_tokenizer(int argc, char **argv) {
    if (argc > 0 && !strcmp(argv[0], "tokenizer")) argc--, argv++;
    if (argc < 1) return usage_to(stderr, 2);
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) return usage_to(stdout, 0);
    if (!strcmp(argv[0], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[0], "encode")) return cmd_encode(argc - 1, argv + 1);
    fprintf(stderr, "peftbench tokenizer: unknown subcommand '%s' (train, encode)\n", argv[0]);
    return usage_to(stderr, 2);
}
