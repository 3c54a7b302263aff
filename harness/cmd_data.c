// cmd_data.c: `peftbench data` — build VTAB-mini, list tasks, load a task spec and summarise it.
//   peftbench data build vtab-mini [--data-root DIR]
//   peftbench data build glue-mini [--data-root DIR] [--out DIR]
//   peftbench data list
//   peftbench data info SPEC [--data-root DIR] [--image-size N] [--channels C] [--resize M]
//                            [--norm P] [--seq-len L] [--tokenizer DIR] [--split-protocol val|trainval]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../datasets/data_internal.h"
#include "../datasets/dataset.h"
#include "cli.h"

static int usage_to(FILE *f, int rc) {
    fprintf(f,
            "usage: peftbench data build vtab-mini [--data-root DIR]\n"
            "       peftbench data build glue-mini [--data-root DIR] [--out DIR]   (default DIR: <data-root>/glue-mini)\n"
            "       peftbench data list\n"
            "       peftbench data info SPEC [--data-root DIR] [--image-size N] [--channels C]\n"
            "                               [--resize bilinear|bicubic] [--norm hf|imagenet] [--seq-len L]\n"
            "                               [--tokenizer DIR] [--split-protocol val|trainval]\n");
    return rc;
}
static int usage(void) { return usage_to(stderr, 2); }

static int parse_opts(int argc, char **argv, int i, pb_task_opts *o) {
    // Options come in (name, value) pairs.
    for (; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "peftbench data: %s needs a value\n", a);
            return -1;
        }
        if (strcmp(a, "--data-root") == 0) snprintf(o->data_root, sizeof o->data_root, "%s", v);
        else if (strcmp(a, "--image-size") == 0) o->image_size = atoi(v);
        else if (strcmp(a, "--channels") == 0) o->channels = atoi(v);
        else if (strcmp(a, "--resize") == 0) snprintf(o->resize, sizeof o->resize, "%s", v);
        else if (strcmp(a, "--norm") == 0) snprintf(o->norm, sizeof o->norm, "%s", v);
        else if (strcmp(a, "--seq-len") == 0) o->seq_len = atoi(v);
        else if (strcmp(a, "--tokenizer") == 0) snprintf(o->tokenizer_dir, sizeof o->tokenizer_dir, "%s", v);
        else if (strcmp(a, "--split-protocol") == 0) snprintf(o->split_protocol, sizeof o->split_protocol, "%s", v);
        else {
            fprintf(stderr, "peftbench data: unknown option %s\n", a);
            return -1;
        }
    }
    return 0;
}

// `data build glue-mini`: argv[2..] are --data-root / --out pairs.
static int build_glue_mini(int argc, char **argv) {
    char root[1024] = "data", out[1200] = "", err[1024];
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "peftbench data: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--data-root") == 0) snprintf(root, sizeof root, "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--out") == 0) snprintf(out, sizeof out, "%s", argv[i + 1]);
        else {
            fprintf(stderr, "peftbench data: unknown option %s for glue-mini (--data-root, --out)\n", argv[i]);
            return 2;
        }
    }
    if (!out[0]) pb_glue_mini_dir(root, out, sizeof out);
    double t0 = pb_now();
    if (pb_glue_mini_build(out, stdout, err, sizeof err) != PB_OK) {
        fprintf(stderr, "peftbench data build: %s\n", err);
        return 1;
    }
    printf("built glue-mini in %.2fs under %s/ (load with glue/<task>:%s/<task> --tokenizer %s/tokenizer)\n",
           pb_now() - t0, out, out, out);
    return 0;
}

int pb_cmd_data(int argc, char **argv) {
    // argv[0] is "data" or the first argument depending on the dispatcher; skip a leading "data"
    if (argc > 0 && strcmp(argv[0], "data") == 0) argc--, argv++;
    if (argc < 1) return usage();
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) return usage_to(stdout, 0);
    pb_task_opts o;
    pb_task_opts_default(&o);
    char err[1024];
    if (strcmp(argv[0], "list") == 0) {
        for (int i = 0; pb_vtab_mini_tasks[i]; i++) printf("vtab-mini/%s\n", pb_vtab_mini_tasks[i]);
        for (int i = 0; pb_glue_mini_tasks[i]; i++) printf("glue/%s:glue-mini/%s\n", pb_glue_mini_tasks[i], pb_glue_mini_tasks[i]);
        printf("glue/{cola,sst2,mrpc,stsb,qnli,rte}:DIR\nvtab1k:DIR fgvc:DIR cifar10:DIR cifar100:DIR idx:DIR folder:DIR\n");
        return 0;
    }
    if (strcmp(argv[0], "build") == 0) {
        if (argc >= 2 && strcmp(argv[1], "glue-mini") == 0) return build_glue_mini(argc, argv);
        if (argc < 2 || strcmp(argv[1], "vtab-mini") != 0) return usage();
        if (parse_opts(argc, argv, 2, &o) != 0) return 2;
        double t0 = pb_now();
        pb_status st = pb_vtab_mini_build(o.data_root, stdout, err, sizeof err);
        if (st != PB_OK) {
            fprintf(stderr, "peftbench data build: %s\n", err);
            return 1;
        }
        printf("built vtab-mini in %.2fs under %s/cache/vtab-mini/\n", pb_now() - t0, o.data_root);
        return 0;
    }
    if (strcmp(argv[0], "info") == 0) {
        if (argc < 2) return usage();
        if (parse_opts(argc, argv, 2, &o) != 0) return 2;
        pb_task t;
        double t0 = pb_now();
        pb_status st = pb_task_load(argv[1], &o, &t, err, sizeof err);
        if (st != PB_OK) {
            fprintf(stderr, "peftbench data: %s\n", err);
            return 2;
        }
        printf("task %s\nkind %s\nclasses %d\nmetric %s\n", t.name, t.kind == PB_DATA_IMAGE ? "image" : "text",
               t.num_classes, t.metric);
        if (t.kind == PB_DATA_IMAGE)
            printf("input %dx%dx%d\nnorm %s mean %.3f %.3f %.3f std %.3f %.3f %.3f\n", t.channels, t.height, t.width,
                   t.norm, t.mean[0], t.mean[1], t.mean[2], t.std[0], t.std[1], t.std[2]);
        else printf("seq_len %d\n", t.seq_len);
        printf("train %d\nval %d\ntest %d\ndata_hash %s\nload_s %.3f\n", t.train.n, t.val.n, t.test.n, t.data_hash,
               pb_now() - t0);
        pb_task_free(&t);
        return 0;
    }
    return usage();
}
