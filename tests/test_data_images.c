// test_data_images.c: image readers on fixtures written here in the real formats (VTAB-1k folder
// with JPEG + PNG via libjpeg/libpng, FGVC json, CIFAR-10/100 binary, gzip'd IDX, class folders),
// the PIL-convention resize on hand-computed values, the cache, and bad-input errors.
#include <stdio.h>
#include <stddef.h>
#include <jpeglib.h>
#include <png.h>
#include <sys/stat.h>
#include <utime.h>
#include <zlib.h>
#include "../datasets/data_internal.h"
#include "../datasets/dataset.h"
#include "test_data_util.h"

static void write_png(const char *path, int w, int h, int c, const uint8_t *px) {
    FILE *f = fopen(path, "wb");
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    png_init_io(p, f);
    png_set_IHDR(p, info, w, h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (int y = 0; y < h; y++) png_write_row(p, (png_bytep)(px + (size_t)y * w * c));
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    fclose(f);
}

static void write_jpeg(const char *path, int w, int h, int c, const uint8_t *px) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&ci, f);
    ci.image_width = w, ci.image_height = h, ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW r = (JSAMPROW)(px + (size_t)ci.next_scanline * w * c);
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
}

// Smooth test pattern (JPEG-friendly): value depends on example id, position and channel.
static void pattern(int id, int w, int h, int c, uint8_t *px) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) px[((size_t)y * w + x) * c + ch] = (uint8_t)(20 + 10 * id + 4 * x + 3 * y + 40 * ch);
}

static void test_resize_hand(void) {
    char err[256];
    uint8_t in[2] = {0, 200};
    pb_img im = {2, 1, 1, in}, out;
    // PIL bilinear 2 -> 4 (hand-computed in the comments of docs/datasets.md): 0, 50, 150, 200
    EXPECT(pb_image_resize(&im, 4, 1, "bilinear", &out, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(out.px[0] == 0 && out.px[1] == 50 && out.px[2] == 150 && out.px[3] == 200, "%d %d %d %d", out.px[0],
           out.px[1], out.px[2], out.px[3]);
    pb_img_free(&out);
    // downscale 4 -> 2 bilinear: support scales to 2, out0 center 1.0 takes in 0..2 with weights
    // f(-.25), f(.25), f(.75) = .75, .75, .25 -> 200*.25/1.75 = 28.6 -> 29; out1 mirrors -> 171
    uint8_t in4[4] = {0, 0, 200, 200};
    pb_img im4 = {4, 1, 1, in4};
    EXPECT(pb_image_resize(&im4, 2, 1, "bilinear", &out, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(out.px[0] == 29 && out.px[1] == 171, "%d %d", out.px[0], out.px[1]);
    pb_img_free(&out);
    // bicubic on a constant image stays constant; identity size copies
    uint8_t cst[9] = {77, 77, 77, 77, 77, 77, 77, 77, 77};
    pb_img ic = {3, 3, 1, cst};
    EXPECT(pb_image_resize(&ic, 7, 5, "bicubic", &out, err, sizeof err) == PB_OK, "%s", err);
    int allc = 1;
    for (int i = 0; i < 35; i++) allc &= out.px[i] == 77;
    EXPECT(allc, "bicubic constant");
    pb_img_free(&out);
    EXPECT(pb_image_resize(&ic, 3, 3, "nearest", &out, err, sizeof err) == PB_ERR_ARG, "mode");
}

int main(void) {
    char root[256], dir[512], p[1024], err[2048];
    make_tmpdir(root, sizeof root, "img");
    test_resize_hand();
    pb_task_opts o;
    pb_task_opts_default(&o);
    snprintf(o.data_root, sizeof o.data_root, "%s/data", root);

    // ---- VTAB-1k folder (NOAH layout); folder named "cifar" to exercise the cifar100 alias ----
    snprintf(dir, sizeof dir, "%s/vtab/cifar", root);
    snprintf(p, sizeof p, "%s/images/train800", dir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/images/train800 %s/images/val200 %s/images/train800val200 %s/images/test", dir,
             dir, dir, dir);
    EXPECT(system(cmd) == 0, "mkdir");
    const char *splits[4] = {"train800", "val200", "train800val200", "test"};
    int counts[4] = {4, 2, 6, 3};
    uint8_t px[16 * 12 * 3];
    for (int s = 0; s < 4; s++) {
        char list[2048] = "";
        for (int i = 0; i < counts[s]; i++) {
            int id = s * 10 + i, png = i % 2 == 1, gray = i == 2;
            pattern(id, 16, 12, gray ? 1 : 3, px);
            char rel[128], full[1200];
            snprintf(rel, sizeof rel, "images/%s/%06d.%s", splits[s], i, png ? "png" : "jpg");
            snprintf(full, sizeof full, "%s/%s", dir, rel);
            if (png) write_png(full, 16, 12, gray ? 1 : 3, px);
            else write_jpeg(full, 16, 12, gray ? 1 : 3, px);
            char line[200];
            snprintf(line, sizeof line, "%s %d\n", rel, (id * 7) % 100);
            strcat(list, line);
        }
        snprintf(p, sizeof p, "%s/%s.txt", dir, splits[s]);
        write_text(p, list);
    }
    // spec uses the other name of the folder ("cifar100" -> finds "cifar")
    char spec[1100];
    snprintf(spec, sizeof spec, "vtab1k:%s/vtab/cifar100", root);
    o.image_size = 8;
    o.channels = 3;
    pb_task t;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "%s", err);
    if (!pb_test_fails) {
        EXPECT(t.num_classes == 100 && t.train.n == 4 && t.val.n == 2 && t.test.n == 3, "counts %d %d %d %d",
               t.num_classes, t.train.n, t.val.n, t.test.n);
        EXPECT(t.channels == 3 && t.height == 8 && t.width == 8, "shape");
        EXPECT(t.train.labels[1] == 7 && t.test.labels[2] == 24, "labels %d %d", t.train.labels[1], t.test.labels[2]);
        // train[1] is a lossless RGB PNG: compare with the same pattern resized in memory
        uint8_t ref[16 * 12 * 3];
        pattern(1, 16, 12, 3, ref);
        pb_img im = {16, 12, 3, ref}, rs;
        pb_image_resize(&im, 8, 8, "bilinear", &rs, err, sizeof err);
        uint8_t chw[192];
        pb_image_to_chw(&rs, chw);
        pb_img_free(&rs);
        EXPECT(memcmp(chw, t.train.pixels + 192, 192) == 0, "PNG pixels after resize");
        // train[2] is a gray JPEG expanded to RGB: all three planes equal
        const uint8_t *g = t.train.pixels + 2 * 192;
        EXPECT(memcmp(g, g + 64, 64) == 0 && memcmp(g, g + 128, 64) == 0, "gray->RGB replicate");
        // train[0] is an RGB JPEG (quality 95): close to the pattern
        pattern(0, 16, 12, 3, ref);
        pb_image_resize(&im, 8, 8, "bilinear", &rs, err, sizeof err);
        pb_image_to_chw(&rs, chw);
        pb_img_free(&rs);
        int maxd = 0;
        for (int i = 0; i < 192; i++) maxd = PB_MAX(maxd, abs(chw[i] - t.train.pixels[i]));
        EXPECT(maxd <= 6, "JPEG decode max diff %d", maxd);
        // batch normalisation (hf: (x/255 - 0.5)/0.5) and flip
        int idx[1] = {1};
        uint8_t fl[1] = {1};
        float out[192];
        pb_split_batch_images(&t, &t.train, idx, 1, fl, out);
        EXPECT_NEAR(out[0], t.train.pixels[192 + 7] / 255.0 * 2.0 - 1.0, 1e-6);
        EXPECT(strlen(t.data_hash) == 16, "hash");
    }
    char hash1[17];
    snprintf(hash1, sizeof hash1, "%s", t.data_hash);
    pb_task_free(&t);
    // cache: clobber an image (same size and mtime) -> a second load must not decode it again
    snprintf(p, sizeof p, "%s/images/train800/000001.png", dir);
    struct stat st0;
    stat(p, &st0);
    {
        FILE *f = fopen(p, "r+b");
        fputs("garbage!", f);
        fclose(f);
        struct utimbuf ub = {st0.st_atime, st0.st_mtime};
        utime(p, &ub);
    }
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "cache hit expected: %s", err);
    EXPECT(strcmp(hash1, t.data_hash) == 0, "same hash from cache");
    pb_task_free(&t);
    // trainval protocol
    snprintf(o.split_protocol, sizeof o.split_protocol, "trainval");
    o.image_size = 9;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK && t.train.n == 6 && t.val.n == 2, "trainval: %s", err);
    pb_task_free(&t);
    snprintf(o.split_protocol, sizeof o.split_protocol, "val");
    // bad inputs, each with file:line context
    struct {
        const char *list, *want;
    } bad[] = {
        {"images/train800/000000.jpg 3\nimages/train800/missing.jpg 1\n", "train800.txt:2"},
        {"images/train800/000000.jpg x3\n", "train800.txt:1: bad label"},
        {"images/train800/000000.jpg\n", "train800.txt:1"},
        {"images/train800/000000.jpg 100\n", "outside [0, 100)"},
        {"\n\nimages/train800/000001.png 1\n", "train800.txt:3"}, // the clobbered (corrupt) PNG
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(p, sizeof p, "%s/train800.txt", dir);
        write_text(p, bad[k].list);
        o.image_size = 10 + (int)k;
        EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) != PB_OK, "bad list %zu accepted", k);
        EXPECT(strstr(err, bad[k].want) != NULL, "case %zu: '%s' lacks '%s'", k, err, bad[k].want);
        pb_task_free(&t);
    }
    // truncated JPEG
    snprintf(p, sizeof p, "%s/images/train800/000000.jpg", dir);
    {
        uint8_t *b;
        size_t n;
        pb_read_file(p, &b, &n, err, sizeof err);
        write_bytes(p, b, n / 2);
        free(b);
        pb_img im;
        EXPECT(pb_image_decode_file(p, &im, err, sizeof err) != PB_OK, "truncated JPEG accepted");
        EXPECT(strstr(err, "JPEG") != NULL, "%s", err);
        pb_img_free(&im);
    }
    snprintf(spec, sizeof spec, "vtab1k:%s/nonexistent", root);
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_ERR_IO, "missing dir");

    // ---- CIFAR-10 binary: 5 data batches + test batch, 3 records each; CIFAR-100 ----
    snprintf(dir, sizeof dir, "%s/cifar10", root);
    mkdir(dir, 0777);
    uint8_t rec[3 * 3073];
    for (int b = 0; b <= 5; b++) {
        for (int r = 0; r < 3; r++) {
            rec[r * 3073] = (uint8_t)((b * 3 + r) % 10);
            for (int i = 0; i < 3072; i++) rec[r * 3073 + 1 + i] = (uint8_t)(b * 31 + r * 7 + i);
        }
        if (b < 5) snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, b + 1);
        else snprintf(p, sizeof p, "%s/test_batch.bin", dir);
        write_bytes(p, rec, sizeof rec);
    }
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    o.image_size = 0;
    o.channels = 0;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "%s", err);
    if (t.train.n) {
        EXPECT(t.train.n == 14 && t.val.n == 1 && t.test.n == 3 && t.channels == 3 && t.width == 32, "cifar shape %d %d %d",
               t.train.n, t.val.n, t.test.n);
        EXPECT(t.train.labels[4] == 4 && t.train.pixels[4 * 3072 + 5] == (uint8_t)(1 * 31 + 1 * 7 + 5), "cifar content");
        EXPECT(t.val.labels[0] == 14 % 10, "val is the last train record");
    }
    pb_task_free(&t);
    write_bytes(p, rec, 3000); // truncated test batch
    o.image_size = 16;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) != PB_OK && strstr(err, "test_batch.bin"), "%s", err);
    pb_task_free(&t);
    // CIFAR-100: 2 label bytes (coarse, fine), fine used
    snprintf(dir, sizeof dir, "%s/cifar100", root);
    mkdir(dir, 0777);
    uint8_t r100[2 * 3074];
    for (int r = 0; r < 2; r++) {
        r100[r * 3074] = 3;
        r100[r * 3074 + 1] = (uint8_t)(90 + r);
        memset(r100 + r * 3074 + 2, r * 100, 3072);
    }
    snprintf(p, sizeof p, "%s/train.bin", dir);
    write_bytes(p, r100, sizeof r100);
    snprintf(p, sizeof p, "%s/test.bin", dir);
    write_bytes(p, r100, sizeof r100);
    snprintf(spec, sizeof spec, "cifar100:%s", dir);
    o.image_size = 0;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(t.num_classes == 100 && t.test.n == 2 && t.test.labels[1] == 91 && t.test.pixels[3072] == 100, "cifar100");
    pb_task_free(&t);

    // ---- gzip'd IDX (Fashion-MNIST layout), 20 train + 5 test images of 4x4 ----
    snprintf(dir, sizeof dir, "%s/idx", root);
    mkdir(dir, 0777);
    for (int k = 0; k < 2; k++) {
        int n = k == 0 ? 20 : 5;
        const char *stem = k == 0 ? "train" : "t10k";
        uint8_t hdr[16] = {0, 0, 8, 3, 0, 0, 0, (uint8_t)n, 0, 0, 0, 4, 0, 0, 0, 4};
        snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte.gz", dir, stem);
        gzFile gz = gzopen(p, "wb");
        gzwrite(gz, hdr, 16);
        for (int i = 0; i < n * 16; i++) {
            uint8_t v = (uint8_t)(i * 3 + k);
            gzwrite(gz, &v, 1);
        }
        gzclose(gz);
        uint8_t lh[8] = {0, 0, 8, 1, 0, 0, 0, (uint8_t)n};
        snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, stem);
        gz = gzopen(p, "wb");
        gzwrite(gz, lh, 8);
        for (int i = 0; i < n; i++) {
            uint8_t v = (uint8_t)(i % 10);
            gzwrite(gz, &v, 1);
        }
        gzclose(gz);
    }
    snprintf(spec, sizeof spec, "idx:%s", dir);
    o.channels = 0;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(t.train.n == 18 && t.val.n == 2 && t.test.n == 5 && t.channels == 1 && t.width == 4, "idx shape");
    EXPECT(t.train.pixels[17] == (uint8_t)(17 * 3) && t.test.pixels[3] == (uint8_t)(3 * 3 + 1), "idx content");
    EXPECT(t.num_classes == 10, "idx classes %d", t.num_classes);
    pb_task_free(&t);
    // corrupt gzip
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    write_bytes(p, "\x1f\x8b\x08\x00garbage", 11);
    o.image_size = 5;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) != PB_OK && strstr(err, "t10k-labels"), "%s", err);
    pb_task_free(&t);

    // ---- class-per-subfolder tree and FGVC json ----
    snprintf(dir, sizeof dir, "%s/tree", root);
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 10; i++) {
            snprintf(p, sizeof p, "%s/class%d", dir, c);
            pb_mkdirs(p, err, sizeof err);
            snprintf(p, sizeof p, "%s/class%d/img%02d.png", dir, c, i);
            pattern(c * 10 + i, 6, 6, 3, px);
            write_png(p, 6, 6, 3, px);
        }
    snprintf(spec, sizeof spec, "folder:%s", dir);
    o.image_size = 0;
    o.channels = 1;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(t.num_classes == 2 && t.train.n == 16 && t.val.n == 2 && t.test.n == 2 && t.channels == 1, "tree %d %d %d",
           t.train.n, t.val.n, t.test.n);
    pb_task_free(&t);
    snprintf(p, sizeof p, "%s/train.json", dir);
    write_text(p, "{\"class0/img00.png\": 7, \"class1/img00.png\": 3, \"class1/img01.png\": 3}");
    snprintf(p, sizeof p, "%s/val.json", dir);
    write_text(p, "{\"class0/img01.png\": 7}");
    snprintf(p, sizeof p, "%s/test.json", dir);
    write_text(p, "{\"class0/img02.png\": 3}");
    snprintf(spec, sizeof spec, "fgvc:%s", dir);
    o.channels = 3;
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(t.num_classes == 2 && t.train.labels[0] == 1 && t.train.labels[1] == 0 && t.test.labels[0] == 0, "fgvc remap");
    pb_task_free(&t);
    snprintf(p, sizeof p, "%s/test.json", dir);
    write_text(p, "{\"class0/img02.png\": 5}");
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) != PB_OK && strstr(err, "test.json"), "%s", err);
    pb_task_free(&t);
    write_text(p, "{\"class0/img02.png\": 3,\n oops}");
    EXPECT(pb_task_load(spec, &o, &t, err, sizeof err) != PB_OK && strstr(err, "test.json:2"), "%s", err);
    pb_task_free(&t);

    rm_rf(root);
    if (pb_test_fails) fprintf(stderr, "%d failure(s)\n", pb_test_fails);
    else printf("test_data_images: ok\n");
    return pb_test_fails ? 1 : 0;
}
