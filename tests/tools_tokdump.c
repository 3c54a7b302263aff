// tools_tokdump.c: helper for the reference tests (tests/ref/ref_tokenizer.py, ref_data_resize.py).
//   pb_tokdump tok DIR MAXLEN < cases.jsonl   one JSON object per line {"a": str, "b": str|null};
//                                            prints "ids..." for encode_pair per line
//   pb_tokdump resize MODE W H OW OH C < raw  reads W*H*C bytes (HWC), writes the resized bytes
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "../datasets/data_internal.h"
#include "../datasets/tokenizer.h"

int main(int argc, char **argv) {
    char err[1024];
    if (argc == 4 && strcmp(argv[1], "tok") == 0) {
        pb_tokenizer *t;
        if (pb_tokenizer_load(argv[2], &t, err, sizeof err) != PB_OK) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        int L = atoi(argv[3]);
        int32_t *ids = malloc(sizeof(int32_t) * L), *mask = malloc(sizeof(int32_t) * L);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) > 0) {
            cJSON *j = cJSON_Parse(line);
            cJSON *a = cJSON_GetObjectItem(j, "a"), *b = cJSON_GetObjectItem(j, "b");
            if (!cJSON_IsString(a)) return 3;
            int k = pb_tokenizer_encode_pair(t, a->valuestring, cJSON_IsString(b) ? b->valuestring : NULL, L, ids, mask);
            for (int i = 0; i < k; i++) printf(i ? " %d" : "%d", ids[i]);
            printf("\n");
            cJSON_Delete(j);
        }
        free(line);
        free(ids);
        free(mask);
        pb_tokenizer_free(t);
        return 0;
    }
    if (argc == 8 && strcmp(argv[1], "resize") == 0) {
        int w = atoi(argv[3]), h = atoi(argv[4]), ow = atoi(argv[5]), oh = atoi(argv[6]), c = atoi(argv[7]);
        pb_img im = {w, h, c, malloc((size_t)w * h * c)}, out;
        if (fread(im.px, 1, (size_t)w * h * c, stdin) != (size_t)w * h * c) return 3;
        if (pb_image_resize(&im, ow, oh, argv[2], &out, err, sizeof err) != PB_OK) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        fwrite(out.px, 1, (size_t)ow * oh * c, stdout);
        pb_img_free(&im);
        pb_img_free(&out);
        return 0;
    }
    fprintf(stderr, "usage: pb_tokdump tok DIR MAXLEN < cases.jsonl | resize MODE W H OW OH C < raw\n");
    return 2;
}
