// image.c: JPEG (libjpeg) and PNG (libpng) decoding from memory, gray<->RGB conversion, and the
// PIL-convention resize (see pb_image_resize in data_internal.h and docs/datasets.md).
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include "data_internal.h"

// Images larger than this (per side) are rejected as implausible (guards huge allocations).
#define PB_IMG_MAX_SIDE 16384

void pb_img_free(pb_img *im) {
    free(im->px);
    im->px = NULL;
    im->w = im->h = im->c = 0;
}

// ---------------------------------------------------------------------------------------------
// JPEG

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} pb_jerr;

static void jpeg_error_exit_cb(j_common_ptr c) {
    pb_jerr *e = (pb_jerr *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}

static void jpeg_emit_cb(j_common_ptr c, int level) {
    // Treat corrupt-data warnings (premature end, bad Huffman code) as errors: a truncated file
    // must be rejected, not silently filled with gray.
    if (level < 0) {
        pb_jerr *e = (pb_jerr *)c->err;
        (*c->err->format_message)(c, e->msg);
        longjmp(e->jb, 1);
    }
}

static pb_status decode_jpeg(const uint8_t *buf, size_t n, const char *name, pb_img *out, char *err,
                             size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    pb_jerr jerr;
    uint8_t *volatile px = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit_cb;
    jerr.pub.emit_message = jpeg_emit_cb;
    jerr.msg[0] = 0;
    if (setjmp(jerr.jb)) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: corrupt or truncated JPEG: %s", name, jerr.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components == 1) cinfo.out_color_space = JCS_GRAYSCALE;
    else cinfo.out_color_space = JCS_RGB; // YCbCr, CMYK, ... -> RGB (libjpeg converts what it can)
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    if (w <= 0 || h <= 0 || w > PB_IMG_MAX_SIDE || h > PB_IMG_MAX_SIDE || (c != 1 && c != 3)) {
        jpeg_destroy_decompress(&cinfo);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: unsupported JPEG (%dx%d, %d components)", name, w,
                       h, c);
    }
    px = pb_xmalloc((size_t)w * h * c);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * w * c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    out->w = w;
    out->h = h;
    out->c = c;
    out->px = px;
    return PB_OK;
}

// ---------------------------------------------------------------------------------------------
// PNG

typedef struct {
    const uint8_t *buf;
    size_t n, pos;
    char msg[200];
} pb_pngsrc;

static void png_read_cb(png_structp p, png_bytep data, png_size_t len) {
    pb_pngsrc *s = png_get_io_ptr(p);
    if (len > s->n - s->pos) png_error(p, "unexpected end of file");
    memcpy(data, s->buf + s->pos, len);
    s->pos += len;
}

static void png_error_cb(png_structp p, png_const_charp msg) {
    pb_pngsrc *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void png_warn_cb(png_structp p, png_const_charp msg) {
    (void)p;
    (void)msg;
}

static pb_status decode_png(const uint8_t *buf, size_t n, const char *name, pb_img *out, char *err,
                            size_t errlen) {
    pb_pngsrc src = {buf, n, 0, {0}};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_error_cb, png_warn_cb);
    if (!p) return pb_errf(PB_ERR_NOMEM, err, errlen, "%s: libpng init failed", name);
    png_infop info = png_create_info_struct(p);
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        free(px);
        free(rows);
        return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: corrupt or truncated PNG: %s", name, src.msg);
    }
    png_set_read_fn(p, &src, png_read_cb);
    png_set_user_limits(p, PB_IMG_MAX_SIDE, PB_IMG_MAX_SIDE);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    int ct = png_get_color_type(p, info), bd = png_get_bit_depth(p, info);
    // Normalise to 8-bit gray or RGB: expand palettes/low bit depths, strip 16 bit and alpha.
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(p);
    if (png_get_valid(p, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(p);
    if (bd == 16) png_set_strip_16(p);
    png_set_strip_alpha(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    int c = png_get_channels(p, info);
    if (c != 1 && c != 3) png_error(p, "unsupported channel count");
    if (png_get_rowbytes(p, info) != (size_t)w * c) png_error(p, "unexpected row size");
    px = pb_xmalloc((size_t)w * h * c);
    rows = pb_xmalloc(sizeof(png_bytep) * h);
    for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * w * c;
    png_read_image(p, rows);
    png_read_end(p, NULL);
    png_destroy_read_struct(&p, &info, NULL);
    free(rows);
    out->w = (int)w;
    out->h = (int)h;
    out->c = c;
    out->px = px;
    return PB_OK;
}

pb_status pb_image_decode_mem(const uint8_t *buf, size_t n, const char *name, pb_img *out,
                              char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        return decode_jpeg(buf, n, name, out, err, errlen);
    if (n >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(buf, n, name, out, err, errlen);
    return pb_errf(PB_ERR_FORMAT, err, errlen, "%s: not a JPEG or PNG image (%zu bytes)", name, n);
}

pb_status pb_image_decode_file(const char *path, pb_img *out, char *err, size_t errlen) {
    uint8_t *buf;
    size_t n;
    memset(out, 0, sizeof *out);
    pb_status st = pb_read_file(path, &buf, &n, err, errlen);
    if (st != PB_OK) return st;
    st = pb_image_decode_mem(buf, n, path, out, err, errlen);
    free(buf);
    return st;
}

void pb_image_convert(pb_img *im, int c) {
    if (c == 0 || c == im->c) return;
    size_t np = (size_t)im->w * im->h;
    uint8_t *o = pb_xmalloc(np * c);
    if (c == 3) { // gray -> RGB: replicate
        for (size_t i = 0; i < np; i++) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = im->px[i];
    } else { // RGB -> gray: PIL "L" luma in 16-bit fixed point
        for (size_t i = 0; i < np; i++) {
            const uint8_t *q = im->px + 3 * i;
            o[i] = (uint8_t)((19595u * q[0] + 38470u * q[1] + 7471u * q[2] + 0x8000u) >> 16);
        }
    }
    free(im->px);
    im->px = o;
    im->c = c;
}

// ---------------------------------------------------------------------------------------------
// Resize (PIL convention)

#define PREC_BITS 22

static double filt_bilinear(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filt_bicubic(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

// Per output index: first input index bounds[2*i], count bounds[2*i+1], and ksize int weights.
// Returns ksize; caller frees *bounds and *kk.
static int resize_coeffs(int in, int outn, double support0, double (*f)(double), int **bounds,
                         int32_t **kk) {
    double scale = (double)in / outn, fscale = scale < 1.0 ? 1.0 : scale;
    double support = support0 * fscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = pb_xmalloc(sizeof(double) * ksize);
    *bounds = pb_xmalloc(sizeof(int) * 2 * outn);
    *kk = pb_xcalloc((size_t)outn * ksize, sizeof(int32_t));
    for (int xx = 0; xx < outn; xx++) {
        double center = (xx + 0.5) * scale, ss = 1.0 / fscale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = f((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++) {
            double w = ww != 0.0 ? k[x] / ww : k[x];
            (*kk)[(size_t)xx * ksize + x] =
                (int32_t)(w < 0 ? -0.5 + w * (1 << PREC_BITS) : 0.5 + w * (1 << PREC_BITS));
        }
        (*bounds)[2 * xx] = xmin;
        (*bounds)[2 * xx + 1] = xmax;
    }
    free(k);
    return ksize;
}

static inline uint8_t clip8(int64_t v) {
    v >>= PREC_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

pb_status pb_image_resize(const pb_img *in, int ow, int oh, const char *mode, pb_img *out,
                          char *err, size_t errlen) {
    double (*f)(double);
    double support;
    if (!mode || !mode[0] || strcmp(mode, "bilinear") == 0) {
        f = filt_bilinear;
        support = 1.0;
    } else if (strcmp(mode, "bicubic") == 0) {
        f = filt_bicubic;
        support = 2.0;
    } else {
        return pb_errf(PB_ERR_ARG, err, errlen, "unknown resize mode '%s' (bilinear|bicubic)", mode);
    }
    if (ow <= 0 || oh <= 0 || in->w <= 0 || in->h <= 0)
        return pb_errf(PB_ERR_ARG, err, errlen, "bad resize %dx%d -> %dx%d", in->w, in->h, ow, oh);
    const int c = in->c;
    // Horizontal pass (skipped when the width is unchanged), then vertical, like PIL.
    uint8_t *tmp = in->px;
    int tw = in->w;
    if (ow != in->w) {
        int *b;
        int32_t *kk;
        int ks = resize_coeffs(in->w, ow, support, f, &b, &kk);
        tmp = pb_xmalloc((size_t)ow * in->h * c);
        for (int y = 0; y < in->h; y++) {
            const uint8_t *row = in->px + (size_t)y * in->w * c;
            for (int x = 0; x < ow; x++) {
                const int32_t *k = kk + (size_t)x * ks;
                for (int ch = 0; ch < c; ch++) {
                    int64_t ss = 1 << (PREC_BITS - 1);
                    for (int i = 0; i < b[2 * x + 1]; i++) ss += (int64_t)row[(size_t)(b[2 * x] + i) * c + ch] * k[i];
                    tmp[((size_t)y * ow + x) * c + ch] = clip8(ss);
                }
            }
        }
        free(b);
        free(kk);
        tw = ow;
    }
    uint8_t *o;
    if (oh != in->h) {
        int *b;
        int32_t *kk;
        int ks = resize_coeffs(in->h, oh, support, f, &b, &kk);
        o = pb_xmalloc((size_t)tw * oh * c);
        for (int y = 0; y < oh; y++) {
            const int32_t *k = kk + (size_t)y * ks;
            for (int x = 0; x < tw; x++)
                for (int ch = 0; ch < c; ch++) {
                    int64_t ss = 1 << (PREC_BITS - 1);
                    for (int i = 0; i < b[2 * y + 1]; i++)
                        ss += (int64_t)tmp[((size_t)(b[2 * y] + i) * tw + x) * c + ch] * k[i];
                    o[((size_t)y * tw + x) * c + ch] = clip8(ss);
                }
        }
        free(b);
        free(kk);
        if (tmp != in->px) free(tmp);
    } else if (tmp != in->px) {
        o = tmp;
    } else {
        o = pb_xmalloc((size_t)in->w * in->h * c);
        memcpy(o, in->px, (size_t)in->w * in->h * c);
    }
    out->w = ow;
    out->h = oh;
    out->c = c;
    out->px = o;
    return PB_OK;
}

void pb_image_to_chw(const pb_img *im, uint8_t *dst) {
    size_t np = (size_t)im->w * im->h;
    for (int ch = 0; ch < im->c; ch++)
        for (size_t i = 0; i < np; i++) dst[ch * np + i] = im->px[i * im->c + ch];
}
