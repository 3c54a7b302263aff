// test_data_text.c: byte-level BPE on a hand-built vocabulary (pre-tokeniser splits, merges by
// rank, unknown bytes, RoBERTa pairs, longest-first truncation, padding), tokenizer file errors,
// and the six GLUE TSV readers on fixtures incl. literal quotes, ragged rows and bad labels.
#include "../datasets/data_internal.h"
#include "../datasets/dataset.h"
#include "../datasets/glue.h"
#include "../datasets/tokenizer.h"
#include "test_data_util.h"

static const char *VOCAB =
    "{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"<unk>\":3,\"h\":4,\"e\":5,\"l\":6,\"o\":7,\"\\u0120\":8,\"w\":9,"
    "\"r\":10,\"d\":11,\"he\":12,\"ll\":13,\"hell\":14,\"hello\":15,\"\\u0120w\":16,\"or\":17,\"\\u0120wor\":18,"
    "\"\\u0120worl\":19,\"\\u0120world\":20,\"'\":21,\"s\":22,\"'s\":23,\"a\":24,\"aa\":25}";
static const char *MERGES = "#version: 0.2\nh e\nl l\nhe ll\nhell o\n\xc4\xa0 w\no r\n\xc4\xa0w or\n\xc4\xa0wor l\n"
                            "\xc4\xa0worl d\n' s\na a\n";

static void expect_split(const char *text, const char *const *want, int nw) {
    size_t pos = 0, len = strlen(text);
    int k = 0;
    while (pos < len) {
        size_t l = pb_pretok_next(text, len, pos);
        if (l == 0) break;
        EXPECT(k < nw && strlen(want[k]) == l && memcmp(want[k], text + pos, l) == 0, "'%s' piece %d = '%.*s'", text,
               k, (int)l, text + pos);
        pos += l;
        k++;
    }
    EXPECT(k == nw, "'%s': %d pieces, want %d", text, k, nw);
}

static void expect_ids(pb_tokenizer *t, const char *text, const int *want, int nw) {
    int32_t *ids;
    int n = pb_tokenizer_encode(t, text, strlen(text), &ids);
    int ok = n == nw;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    EXPECT(ok, "'%s': got %d ids (first %d)", text, n, n ? ids[0] : -1);
    free(ids);
}

static void test_tokenizer(const char *root) {
    char err[1024], p[600];
    // pre-tokeniser (splits derived by hand from the GPT-2 pattern)
    expect_split("Hello world", (const char *const[]){"Hello", " world"}, 2);
    expect_split("a  b", (const char *const[]){"a", " ", " b"}, 3);
    expect_split("x \n\ny", (const char *const[]){"x", " \n", "\n", "y"}, 4);
    expect_split("I'm 42!!", (const char *const[]){"I", "'m", " 42", "!!"}, 4);
    expect_split("caf\xc3\xa9" "123", (const char *const[]){"caf\xc3\xa9", "123"}, 2);
    expect_split("  end  ", (const char *const[]){" ", " end", "  "}, 3);
    expect_split("it'S 's", (const char *const[]){"it", "'", "S", " '", "s"}, 5);
    expect_split("\xe4\xb8\xad\xe6\x96\x87 \xd9\xa3", (const char *const[]){"\xe4\xb8\xad\xe6\x96\x87", " \xd9\xa3"}, 2);
    expect_split("a\xff" "b", (const char *const[]){"a", "\xff", "b"}, 3); // invalid UTF-8 byte
    EXPECT(pb_uni_is_letter(0x4E2D) && pb_uni_is_number(0x663) && !pb_uni_is_letter('1') && pb_uni_is_space(0x3000),
           "unicode classes");

    snprintf(p, sizeof p, "%s/tok", root);
    pb_mkdirs(p, err, sizeof err);
    snprintf(p, sizeof p, "%s/tok/vocab.json", root);
    write_text(p, VOCAB);
    snprintf(p, sizeof p, "%s/tok/merges.txt", root);
    write_text(p, MERGES);
    snprintf(p, sizeof p, "%s/tok", root);
    pb_tokenizer *t;
    EXPECT(pb_tokenizer_load(p, &t, err, sizeof err) == PB_OK, "%s", err);
    if (!t) return;
    expect_ids(t, "hello world", (const int[]){15, 20}, 2);
    expect_ids(t, "hello  world", (const int[]){15, 8, 20}, 3);
    expect_ids(t, "hello's", (const int[]){15, 23}, 2);
    expect_ids(t, "aaaaa", (const int[]){25, 25, 24}, 3); // left-to-right non-overlapping merges
    expect_ids(t, "hex", (const int[]){12, 3}, 2);        // 'x' not in the vocabulary -> <unk>
    expect_ids(t, "", NULL, 0);
    // pairs: <s> A </s></s> B </s>, padding with <pad> = 1
    int32_t ids[16], mask[16];
    int n = pb_tokenizer_encode_pair(t, "hello world", "hello", 10, ids, mask);
    const int want[10] = {0, 15, 20, 2, 2, 15, 2, 1, 1, 1};
    EXPECT(n == 7 && memcmp(ids, want, sizeof want) == 0 && mask[6] == 1 && mask[7] == 0, "pair n=%d", n);
    // longest-first: A = 5 tokens (aa aa aa aa aa), B = 2 tokens, budget 8-4 = 4 -> A keeps 2, B 2
    n = pb_tokenizer_encode_pair(t, "aaaaaaaaaa", "hello world", 8, ids, mask);
    const int want2[8] = {0, 25, 25, 2, 2, 15, 20, 2};
    EXPECT(n == 8 && memcmp(ids, want2, sizeof want2) == 0, "longest-first n=%d ids %d %d %d", n, ids[1], ids[5], ids[6]);
    // both long: budget 5 -> first gets 2, second 3
    n = pb_tokenizer_encode_pair(t, "aaaaaaaaaa", "aaaaaaaaaa", 9, ids, mask);
    EXPECT(n == 9 && ids[3] == 2 && ids[4] == 2 && ids[8] == 2, "split budget");
    n = pb_tokenizer_encode_pair(t, "aaaaaaaaaa", NULL, 4, ids, mask);
    EXPECT(n == 4 && ids[0] == 0 && ids[3] == 2 && ids[1] == 25, "single truncation");
    EXPECT(pb_tokenizer_encode_pair(t, "a", "b", 3, ids, mask) == -1, "too short");
    pb_tokenizer_free(t);

    // bad tokenizer files: each error names the file and line / entry
    struct {
        const char *v, *m, *want;
    } bad[] = {
        {"{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"<unk>\":7e300}", "", "token id outside the vocabulary"},
        {"{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"<unk>\":2}", "", "duplicate id"},
        {"{\"<s>\":0,\n\"<pad>\":1,\n\"</s>\":2,\"<unk>\":}", "", "vocab.json:3"},
        {"{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"x\":3}", "", "missing a special token"},
        {VOCAB, "#version: 0.2\nh e\nq z\n", "merges.txt:3: merge token not in vocab"},
        {VOCAB, "h e\nhe\n", "merges.txt:2: expected"},
        {VOCAB, "e h\n", "merges.txt:1: merged token"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        pb_tokenizer *tb = NULL;
        pb_status st = pb_tokenizer_load_mem(bad[k].v, strlen(bad[k].v), "vocab.json", bad[k].m, strlen(bad[k].m),
                                             "merges.txt", &tb, err, sizeof err);
        EXPECT(st != PB_OK && strstr(err, bad[k].want), "case %zu: '%s' lacks '%s'", k, err, bad[k].want);
        pb_tokenizer_free(tb);
    }
    snprintf(p, sizeof p, "%s/no-such-dir", root);
    EXPECT(pb_tokenizer_load(p, &t, err, sizeof err) == PB_ERR_IO && strstr(err, "vocab.json") && strstr(err, "merges.txt"),
           "%s", err);
}

static void test_glue(const char *root) {
    char err[1024], dir[600], p[700], spec[800];
    static const struct {
        const char *task, *train, *dev;
        int ndev, lab0;
        const char *metric;
    } g[] = {
        {"cola", "gj04\t1\t\thello world\ngj04\t0\t*\thello\n", "cl03\t1\t\tworld hello\n", 1, 1, "mcc"},
        {"sst2", "sentence\tlabel\nhello \"world\" \t1\n", "sentence\tlabel\nhello\t0\nworld\t1\n", 2, 0, "accuracy"},
        {"mrpc", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\thello\tworld\n",
         "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t3\t4\thello world\thello\n", 1, 0, "accuracy"},
        {"stsb",
         "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
         "0\tmain\tx\t2012\t1\tnone\tnone\thello\tworld\t3.800\n",
         "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
         "0\tmain\tx\t2012\t1\tnone\tnone\thello\thello\t5.000\n",
         1, -1, "pearson"},
        {"qnli", "index\tquestion\tsentence\tlabel\n0\thello?\tworld\tnot_entailment\n",
         "index\tquestion\tsentence\tlabel\n0\thello\tworld\tentailment\n1\t\"hello\tworld\tnot_entailment\n", 2, 0,
         "accuracy"},
        {"rte", "index\tsentence1\tsentence2\tlabel\n0\thello\tworld\tentailment\n",
         "index\tsentence1\tsentence2\tlabel\r\n0\thello\tworld\tnot_entailment\r\n", 1, 1, "accuracy"},
    };
    pb_task_opts o;
    pb_task_opts_default(&o);
    snprintf(o.tokenizer_dir, sizeof o.tokenizer_dir, "%s/tok", root);
    snprintf(o.data_root, sizeof o.data_root, "%s/data", root);
    o.seq_len = 12;
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
        snprintf(dir, sizeof dir, "%s/glue/%s", root, g[k].task);
        pb_mkdirs(dir, err, sizeof err);
        snprintf(p, sizeof p, "%s/train.tsv", dir);
        write_text(p, g[k].train);
        snprintf(p, sizeof p, "%s/dev.tsv", dir);
        write_text(p, g[k].dev);
        snprintf(spec, sizeof spec, "glue/%s:%s", g[k].task, dir);
        pb_task t;
        EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "%s: %s", g[k].task, err);
        if (t.val.n == 0) continue;
        EXPECT(t.kind == PB_DATA_TEXT && t.seq_len == 12 && t.val.n == g[k].ndev && t.test.n == g[k].ndev, "%s sizes",
               g[k].task);
        EXPECT(strcmp(t.metric, g[k].metric) == 0, "%s metric %s", g[k].task, t.metric);
        if (g[k].lab0 >= 0) EXPECT(t.val.labels && t.val.labels[0] == g[k].lab0, "%s label", g[k].task);
        else EXPECT(t.val.targets && t.val.targets[0] == 5.0f && t.train.targets[0] == 3.8f && t.num_classes == 1, "stsb");
        EXPECT(t.val.ids[0] == 0 && t.val.mask[0] == 1 && t.val.ids[11] == 1 && t.val.mask[11] == 0, "%s framing", g[k].task);
        pb_task_free(&t);
    }
    // pair framing on MRPC dev: <s> hello Ġworld </s></s> hello </s>
    {
        snprintf(spec, sizeof spec, "glue/mrpc:%s/glue/mrpc", root);
        pb_task t;
        pb_task_load(spec, &o, &t, err, sizeof err);
        const int want[12] = {0, 15, 20, 2, 2, 15, 2, 1, 1, 1, 1, 1};
        EXPECT(t.val.n == 1 && memcmp(t.val.ids, want, sizeof want) == 0, "mrpc pair ids");
        pb_task_free(&t);
    }
    // quotes are literal, blanks kept
    pb_glue_rows rows;
    const char *q = "sentence\tlabel\n\"a \"\"b\"\" c\t1\n";
    EXPECT(pb_glue_read_tsv("sst2", q, strlen(q), "q.tsv", &rows, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(rows.n == 1 && strcmp(rows.rows[0].a, "\"a \"\"b\"\" c") == 0 && rows.rows[0].label == 1, "literal quotes '%s'",
           rows.n ? rows.rows[0].a : "");
    pb_glue_rows_free(&rows);
    const char *qn = "index\tquestion\tsentence\tlabel\n0\t\"q\ts \"x\"\tentailment\n";
    EXPECT(pb_glue_read_tsv("qnli", qn, strlen(qn), "q.tsv", &rows, err, sizeof err) == PB_OK &&
               strcmp(rows.rows[0].a, "\"q") == 0 && strcmp(rows.rows[0].b, "s \"x\"") == 0,
           "qnli quotes: %s", err);
    pb_glue_rows_free(&rows);
    // bad inputs with file:line
    struct {
        const char *task, *text, *want;
    } bad[] = {
        {"rte", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\n", "d.tsv:3: ragged row: 3"},
        {"rte", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", "d.tsv:2: column 4: bad label 'maybe'"},
        {"cola", "x\t2\t\ta\n", "d.tsv:1: column 2: bad label"},
        {"stsb", "h\th\th\th\th\th\th\th\th\th\n0\t1\t2\t3\t4\t5\t6\ta\tb\tnan\n", "d.tsv:2"},
        {"stsb", "h\th\th\th\th\th\th\th\th\th\n0\t1\t2\t3\t4\t5\t6\ta\tb\t4.0\t\n", "ragged row: 11"},
        {"sst2", "sentence\tlabel\nab\0c\t1\n", "d.tsv:2: NUL"},
        {"mnli", "x", "unknown GLUE task"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        size_t len = strlen(bad[k].text);
        if (k == 5) len = 22; // contains a NUL
        EXPECT(pb_glue_read_tsv(bad[k].task, bad[k].text, len, "d.tsv", &rows, err, sizeof err) != PB_OK &&
                   strstr(err, bad[k].want),
               "case %zu: '%s' lacks '%s'", k, err, bad[k].want);
    }
    // missing dev.tsv / missing tokenizer
    snprintf(p, sizeof p, "%s/glue/rte/dev.tsv", root);
    remove(p);
    snprintf(spec, sizeof spec, "glue/rte:%s/glue/rte", root);
    pb_task t;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_ERR_IO && strstr(err, "dev.tsv"), "%s", err);
    snprintf(o.tokenizer_dir, sizeof o.tokenizer_dir, "%s/nowhere", root);
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_ERR_IO && strstr(err, "vocab.json"), "%s", err);
}

int main(void) {
    char root[256];
    make_tmpdir(root, sizeof root, "text");
    test_tokenizer(root);
    test_glue(root);
    rm_rf(root);
    if (pb_test_fails) fprintf(stderr, "%d failure(s)\n", pb_test_fails);
    else printf("test_data_text: ok\n");
    return pb_test_fails ? 1 : 0;
}
