// fuzz_data.c: libFuzzer targets for the dataset readers. Build one per -DFUZZ_TARGET value:
//   1 = GLUE TSV reader (task chosen by the first byte), 2 = VTAB list-file reader,
//   3 = tokenizer (vocab.json + merges.txt + text, split by NUL bytes), 4 = image decode+resize.
// Built and run by scripts/fuzz.sh (clang -fsanitize=fuzzer,address).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../datasets/data_internal.h"
#include "../../datasets/glue.h"
#include "../../datasets/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
#if FUZZ_TARGET == 1
    static const char *tasks[] = {"cola", "sst2", "mrpc", "stsb", "qnli", "rte"};
    if (size < 1) return 0;
    pb_glue_rows r;
    if (pb_glue_read_tsv(tasks[data[0] % 6], (const char *)data + 1, size - 1, "fuzz.tsv", &r, err, sizeof err) == PB_OK)
        pb_glue_rows_free(&r);
#elif FUZZ_TARGET == 2
    pb_listfile l;
    if (pb_listfile_parse((const char *)data, size, "fuzz.txt", &l, err, sizeof err) == PB_OK) pb_listfile_free(&l);
#elif FUZZ_TARGET == 3
    if (size > 8192) return 0; // BPE is quadratic per chunk; keep iterations fast
    const uint8_t *z1 = memchr(data, 0, size);
    if (!z1) return 0;
    const uint8_t *z2 = memchr(z1 + 1, 0, size - (size_t)(z1 + 1 - data));
    if (!z2) return 0;
    pb_tokenizer *t;
    if (pb_tokenizer_load_mem((const char *)data, (size_t)(z1 - data), "vocab.json", (const char *)z1 + 1,
                              (size_t)(z2 - z1 - 1), "merges.txt", &t, err, sizeof err) != PB_OK)
        return 0;
    size_t tl = size - (size_t)(z2 + 1 - data);
    char *text = malloc(tl + 1);
    memcpy(text, z2 + 1, tl);
    text[tl] = 0;
    int32_t *ids;
    int n = pb_tokenizer_encode(t, text, tl, &ids);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= pb_tokenizer_vocab_size(t)) abort();
    free(ids);
    int32_t pids[16], mask[16];
    pb_tokenizer_encode_pair(t, text, text, 16, pids, mask);
    free(text);
    pb_tokenizer_free(t);
#elif FUZZ_TARGET == 4
    pb_img im, out;
    if (pb_image_decode_mem(data, size, "fuzz.img", &im, err, sizeof err) != PB_OK) return 0;
    if ((size_t)im.w * im.h <= 1u << 20 && pb_image_resize(&im, 7, 5, "bicubic", &out, err, sizeof err) == PB_OK)
        pb_img_free(&out);
    pb_image_convert(&im, im.c == 1 ? 3 : 1);
    pb_img_free(&im);
#else
#error "define FUZZ_TARGET"
#endif
    return 0;
}
