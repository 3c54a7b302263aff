// test_safetensors.c: safetensors reader/writer tests.
//   test_safetensors                 fast tests (writer round trip, known F16/BF16 vectors,
//                                    every malformed-input class, mutation fuzz)
//   test_safetensors --compare A B   (ref) A: file from the real safetensors package; B: the same
//                                    names converted by torch to F32 (or I32 for integer dtypes);
//                                    every tensor of A must read bitwise equal to B's.
//   test_safetensors --write OUT     (ref) writes the fixed file tests/ref/st_fixtures.py checks
#include <errno.h>
#include "test_expect.h"
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/safetensors.h"

static char g_dir[256];


static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void path_in_dir(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", g_dir, name);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(2); }
    if (n && fwrite(p, 1, n, fp) != n) { perror(path); exit(2); }
    fclose(fp);
}

// Builds an 8-byte length + header (+ pad spaces) + data file. hlen_override >= 0 replaces N.
static void make_file_n(const char *path, const char *header, int pad, const void *data, size_t dlen,
                        int64_t hlen_override) {
    size_t hl = strlen(header) + (size_t)pad;
    size_t total = 8 + hl + dlen;
    uint8_t *b = calloc(1, total);
    uint64_t n = hlen_override >= 0 ? (uint64_t)hlen_override : hl;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, header, strlen(header));
    memset(b + 8 + strlen(header), ' ', (size_t)pad);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    write_bytes(path, b, total);
    free(b);
}

static void make_file(const char *path, const char *header, const void *data, size_t dlen) {
    make_file_n(path, header, 0, data, dlen, -1);
}

// Expects pb_st_open to fail with status st whose message names the file and contains `want`.
static void expect_open_err(const char *path, pb_status st, const char *want, int line) {
    pb_st_file f;
    char err[512] = "";
    pb_status got = pb_st_open(path, &f, err, sizeof err);
    if (got == PB_OK) {
        fprintf(stderr, "FAIL line %d: %s opened but should fail with '%s'\n", line, path, want);
        pb_st_close(&f);
        pb_test_fails++;
        return;
    }
    bool ok = got == st && strstr(err, path) == err && strstr(err, want) != NULL;
    printf("  %-28s -> %s\n", strrchr(path, '/') + 1, err);
    if (!ok) {
        fprintf(stderr, "FAIL line %d: status %d (want %d), message '%s' lacks '%s' or path\n",
                line, got, st, err, want);
        pb_test_fails++;
    }
    // the struct must be reset so a second close is harmless
    pb_st_close(&f);
}

#define BAD(name, header, data, dlen, want)                                                        \
    do {                                                                                           \
        char p_[512];                                                                              \
        path_in_dir(p_, sizeof p_, name);                                                          \
        make_file(p_, header, data, dlen);                                                         \
        expect_open_err(p_, PB_ERR_FORMAT, want, __LINE__);                                        \
    } while (0)

// ----------------------------------------------------------------------------

static void test_roundtrip(void) {
    printf("round trip (writer -> reader)\n");
    char path[512];
    path_in_dir(path, sizeof path, "rt.safetensors");
    float w[15], bias[7], sc = 3.5f, special[5];
    for (int i = 0; i < 15; i++) w[i] = (float)(i % 251 - 125) / 64.0f;
    for (int i = 0; i < 7; i++) bias[i] = -1.0f / (float)(i + 3); // not exactly decimal
    special[0] = INFINITY;
    special[1] = -INFINITY;
    special[2] = -0.0f;
    special[3] = 1e-45f;
    special[4] = NAN;
    int32_t ids[6] = {-2500, -1500, -500, 500, 1500, INT32_MAX};
    int64_t sw[2] = {3, 5}, sb[1] = {7}, se[2] = {0, 4}, sid[2] = {2, 3}, ssp[1] = {5};
    pb_st_writer *wr = pb_st_writer_init();
    pb_st_writer_add(wr, "z.weight", w, 2, sw);
    pb_st_writer_add(wr, "a.bias", bias, 1, sb);
    pb_st_writer_add(wr, "scalar", &sc, 0, NULL);
    pb_st_writer_add(wr, "empty", w, 2, se);
    pb_st_writer_add_i32(wr, "ids", ids, 2, sid);
    pb_st_writer_add(wr, "special", special, 1, ssp);
    pb_st_writer_meta(wr, "peftbench", "1");
    pb_st_writer_meta(wr, "quote", "a\"b\\c\nd");
    char err[512] = "";
    pb_status st = pb_st_writer_finish(wr, path, err, sizeof err);
    pb_st_writer_free(wr);
    EXPECT(st == PB_OK, "finish: %s", err);

    // raw layout: N multiple of 8, header begins with the metadata, no temp file left
    FILE *fp = fopen(path, "rb");
    uint8_t hdr[64];
    EXPECT(fp && fread(hdr, 1, 64, fp) == 64, "read back");
    if (fp) fclose(fp);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | hdr[i];
    EXPECT(n % 8 == 0, "header length %" PRIu64 " not 8-aligned", n);
    EXPECT(memcmp(hdr + 8, "{\"__metadata__\":{\"format\":\"pt\"", 30) == 0, "header start");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    EXPECT(access(tmp, F_OK) != 0, "temp file left behind");

    pb_st_file f;
    st = pb_st_open(path, &f, err, sizeof err);
    EXPECT(st == PB_OK, "open: %s", err);
    if (st != PB_OK) return;
    EXPECT(f.ntensors == 6, "ntensors %d", f.ntensors);
    // file (offset) order = name order from the writer
    const char *order[6] = {"a.bias", "empty", "ids", "scalar", "special", "z.weight"};
    for (int i = 0; i < 6 && i < f.ntensors; i++)
        EXPECT(strcmp(f.tensors[i].name, order[i]) == 0, "order %d: %s", i, f.tensors[i].name);
    const pb_st_tensor *t = pb_st_find(&f, "z.weight");
    EXPECT(t && t->dtype == PB_ST_F32 && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 5 &&
               t->numel == 15 && t->nbytes == 60 && strcmp(t->dtype_str, "F32") == 0,
           "z.weight meta");
    float buf[16];
    if (t) {
        EXPECT(pb_st_read_f32(&f, t, buf, err, sizeof err) == PB_OK, "%s", err);
        for (int i = 0; i < 15; i++) EXPECT(fbits(buf[i]) == fbits(w[i]), "w[%d]", i);
    }
    t = pb_st_find(&f, "a.bias");
    if (t) {
        EXPECT(pb_st_read_f32(&f, t, buf, err, sizeof err) == PB_OK, "%s", err);
        for (int i = 0; i < 7; i++) EXPECT(fbits(buf[i]) == fbits(bias[i]), "bias[%d]", i);
    } else EXPECT(0, "a.bias missing");
    t = pb_st_find(&f, "scalar");
    EXPECT(t && t->ndim == 0 && t->numel == 1, "scalar shape");
    if (t) {
        pb_st_read_f32(&f, t, buf, err, sizeof err);
        EXPECT(buf[0] == 3.5f, "scalar value %g", buf[0]);
    }
    t = pb_st_find(&f, "empty");
    EXPECT(t && t->ndim == 2 && t->numel == 0 && t->nbytes == 0, "empty tensor");
    if (t) EXPECT(pb_st_read_f32(&f, t, buf, err, sizeof err) == PB_OK, "%s", err);
    t = pb_st_find(&f, "special");
    if (t) {
        pb_st_read_f32(&f, t, buf, err, sizeof err);
        for (int i = 0; i < 5; i++) EXPECT(fbits(buf[i]) == fbits(special[i]), "special[%d]", i);
    } else EXPECT(0, "special missing");
    t = pb_st_find(&f, "ids");
    EXPECT(t && t->dtype == PB_ST_I32, "ids dtype");
    if (t) {
        int32_t ib[6];
        EXPECT(pb_st_read_i32(&f, t, ib, err, sizeof err) == PB_OK, "%s", err);
        for (int i = 0; i < 6; i++) EXPECT(ib[i] == ids[i], "ids[%d]", i);
        EXPECT(pb_st_read_f32(&f, t, buf, err, sizeof err) == PB_OK, "%s", err);
        EXPECT(buf[0] == -2500.0f, "ids as float");
    }
    EXPECT(pb_st_find(&f, "nope") == NULL, "find missing");
    // float tensor read as int32 is refused
    t = pb_st_find(&f, "z.weight");
    if (t) {
        int32_t ib[15];
        EXPECT(pb_st_read_i32(&f, t, ib, err, sizeof err) == PB_ERR_UNSUPPORTED, "f32 as i32");
        EXPECT(strstr(err, "z.weight") && strstr(err, path), "message: %s", err);
    }
    // metadata: format=pt default first, then the added keys
    EXPECT(f.nmeta == 3, "nmeta %d", f.nmeta);
    int seen = 0;
    for (int i = 0; i < f.nmeta; i++) {
        if (!strcmp(f.meta_keys[i], "format") && !strcmp(f.meta_values[i], "pt")) seen |= 1;
        if (!strcmp(f.meta_keys[i], "peftbench") && !strcmp(f.meta_values[i], "1")) seen |= 2;
        if (!strcmp(f.meta_keys[i], "quote") && !strcmp(f.meta_values[i], "a\"b\\c\nd")) seen |= 4;
    }
    EXPECT(seen == 7, "metadata content (%d)", seen);
    pb_st_close(&f);
    pb_st_close(&f); // idempotent

    // writer: metadata override and duplicate names
    wr = pb_st_writer_init();
    pb_st_writer_add(wr, "x", w, 1, sb);
    pb_st_writer_add(wr, "x", w, 1, sb);
    path_in_dir(path, sizeof path, "dup_writer.safetensors");
    st = pb_st_writer_finish(wr, path, err, sizeof err);
    EXPECT(st == PB_ERR_ARG && strstr(err, "'x'"), "duplicate in writer: %s", err);
    pb_st_writer_free(wr);
    EXPECT(access(path, F_OK) != 0, "no file written on error");
    // unwritable destination: clean error, nothing left behind
    wr = pb_st_writer_init();
    pb_st_writer_add(wr, "x", w, 1, sb);
    st = pb_st_writer_finish(wr, "/nonexistent-dir/m.safetensors", err, sizeof err);
    EXPECT(st == PB_ERR_IO && strstr(err, "/nonexistent-dir/m.safetensors"), "io: %s", err);
    pb_st_writer_free(wr);
    // empty file (no tensors, no metadata): valid
    wr = pb_st_writer_init();
    path_in_dir(path, sizeof path, "empty.safetensors");
    EXPECT(pb_st_writer_finish(wr, path, err, sizeof err) == PB_OK, "%s", err);
    pb_st_writer_free(wr);
    EXPECT(pb_st_open(path, &f, err, sizeof err) == PB_OK && f.ntensors == 0 && f.nmeta == 1,
           "empty file: %s", err);
    pb_st_close(&f);
}

// Hand-crafted F16 / BF16 files (odd header length: data unaligned) against known vectors.
static void test_half(void) {
    printf("F16 / BF16 / other dtypes: known vectors\n");
    static const uint16_t h16[14] = {0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF,
                                     0x0400, 0x7C00, 0xFC00, 0x7E00, 0x3555, 0x8001, 0x7C01};
    // float32 bit patterns from numpy's float16 -> float32 conversion (0x7C01: signaling NaN,
    // comes out quiet with its payload)
    static const uint32_t f16_want[14] = {0x0, 0x80000000, 0x3f800000, 0xc0000000, 0x477fe000,
                                          0x33800000, 0x387fc000, 0x38800000, 0x7f800000,
                                          0xff800000, 0x7fc00000, 0x3eaaa000, 0xb3800000,
                                          0x7fc02000};
    static const uint16_t b16[8] = {0x3F80, 0xC049, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x8000, 0x3EAB};
    uint8_t data[28 + 16 + 16 + 24 + 6 + 3];
    memcpy(data, h16, 28);
    memcpy(data + 28, b16, 16);
    double d64[2] = {0.1, -1e300};
    memcpy(data + 44, d64, 16);
    int64_t i64[3] = {-5, (int64_t)1 << 40, 7};
    memcpy(data + 60, i64, 24);
    uint16_t u16[3] = {0, 65535, 12};
    memcpy(data + 84, u16, 6);
    uint8_t bools[3] = {0, 1, 1};
    memcpy(data + 90, bools, 3);
    // header of odd length: data starts at an unaligned address in the mapping
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[14],\"data_offsets\":[0,28]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[28,44]},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[44,60]},"
                      "\"l\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[60,84]},"
                      "\"u\":{\"dtype\":\"U16\",\"shape\":[3],\"data_offsets\":[84,90]},"
                      "\"q\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[90,93]}}";
    char path[512];
    path_in_dir(path, sizeof path, "half.safetensors");
    make_file_n(path, hdr, 8 - (int)(strlen(hdr) % 8) + 1, data, sizeof data, -1);
    pb_st_file f;
    char err[512] = "";
    pb_status st = pb_st_open(path, &f, err, sizeof err);
    EXPECT(st == PB_OK, "open: %s", err);
    if (st != PB_OK) return;
    float out[14];
    const pb_st_tensor *t = pb_st_find(&f, "h");
    EXPECT(t && ((uintptr_t)t->data % 2) == 1, "data should be unaligned for this test");
    EXPECT(t && pb_st_read_f32(&f, t, out, err, sizeof err) == PB_OK, "%s", err);
    for (int i = 0; i < 14; i++)
        EXPECT(fbits(out[i]) == f16_want[i], "f16 0x%04x -> 0x%08x want 0x%08x", h16[i],
               fbits(out[i]), f16_want[i]);
    t = pb_st_find(&f, "b");
    EXPECT(t && t->ndim == 2 && pb_st_read_f32(&f, t, out, err, sizeof err) == PB_OK, "%s", err);
    for (int i = 0; i < 8; i++)
        EXPECT(fbits(out[i]) == (uint32_t)b16[i] << 16, "bf16 0x%04x -> 0x%08x", b16[i],
               fbits(out[i]));
    t = pb_st_find(&f, "d");
    EXPECT(t && pb_st_read_f32(&f, t, out, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(out[0] == 0.1f && out[1] == -INFINITY, "f64: %g %g", out[0], out[1]);
    t = pb_st_find(&f, "l");
    EXPECT(t && pb_st_read_f32(&f, t, out, err, sizeof err) == PB_OK, "%s", err);
    EXPECT(out[0] == -5.0f && out[1] == 1099511627776.0f && out[2] == 7.0f, "i64 as f32");
    int32_t iv[3];
    st = t ? pb_st_read_i32(&f, t, iv, err, sizeof err) : PB_OK;
    EXPECT(st == PB_ERR_FORMAT && strstr(err, "element 1") && strstr(err, "'l'"),
           "i64 out of int32 range: %s", err);
    t = pb_st_find(&f, "u");
    EXPECT(t && t->dtype == PB_ST_OTHER && pb_st_read_i32(&f, t, iv, err, sizeof err) == PB_OK,
           "%s", err);
    EXPECT(iv[0] == 0 && iv[1] == 65535 && iv[2] == 12, "u16");
    t = pb_st_find(&f, "q");
    EXPECT(t && t->dtype == PB_ST_BOOL && pb_st_read_f32(&f, t, out, err, sizeof err) == PB_OK,
           "%s", err);
    EXPECT(out[0] == 0.0f && out[1] == 1.0f && out[2] == 1.0f, "bool");
    pb_st_close(&f);

    // F8 / F4 / C64 headers validate (sizes by bit width), reading them is refused clearly
    uint8_t d8[2 + 8 + 2] = {0};
    path_in_dir(path, sizeof path, "f8.safetensors");
    make_file(path,
              "{\"e\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]},"
              "\"c\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[2,10]},"
              "\"f\":{\"dtype\":\"F4\",\"shape\":[2,2],\"data_offsets\":[10,12]}}",
              d8, sizeof d8);
    st = pb_st_open(path, &f, err, sizeof err);
    EXPECT(st == PB_OK, "open f8: %s", err);
    if (st == PB_OK) {
        t = pb_st_find(&f, "e");
        st = pb_st_read_f32(&f, t, out, err, sizeof err);
        EXPECT(st == PB_ERR_UNSUPPORTED && strstr(err, "F8_E4M3") && strstr(err, "'e'") &&
                   strstr(err, path),
               "f8 read: %s", err);
        printf("  %-28s -> %s\n", "f8 read_f32", err);
        t = pb_st_find(&f, "f");
        EXPECT(t && t->nbytes == 2 && strcmp(t->dtype_str, "F4") == 0, "f4 nbytes");
        pb_st_close(&f);
    }
}

static void test_bad(void) {
    printf("malformed inputs (each must fail with a clear message)\n");
    char path[512];
    uint8_t d[64] = {0};
    const char *ok1 = "{\"x.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    // sizes / header length
    path_in_dir(path, sizeof path, "short.safetensors");
    write_bytes(path, "\x02\0\0", 3);
    expect_open_err(path, PB_ERR_FORMAT, "too short", __LINE__);
    path_in_dir(path, sizeof path, "hlen_gt_file.safetensors");
    make_file_n(path, ok1, 0, d, 8, 1000);
    expect_open_err(path, PB_ERR_FORMAT, "beyond the file size", __LINE__);
    path_in_dir(path, sizeof path, "hlen_huge.safetensors");
    make_file_n(path, ok1, 0, d, 8, (int64_t)100000001);
    expect_open_err(path, PB_ERR_FORMAT, "exceeds the limit", __LINE__);
    path_in_dir(path, sizeof path, "hlen_u64max.safetensors");
    make_file_n(path, ok1, 0, d, 8, INT64_MAX);
    expect_open_err(path, PB_ERR_FORMAT, "exceeds the limit", __LINE__);
    // a valid file cut in the header and in the data
    {
        char full[512];
        path_in_dir(full, sizeof full, "full.safetensors");
        make_file(full, ok1, d, 8);
        FILE *fp = fopen(full, "rb");
        uint8_t buf[256];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        path_in_dir(path, sizeof path, "cut_header.safetensors");
        write_bytes(path, buf, 30);
        expect_open_err(path, PB_ERR_FORMAT, "beyond the file size", __LINE__);
        path_in_dir(path, sizeof path, "cut_data.safetensors");
        write_bytes(path, buf, n - 3);
        expect_open_err(path, PB_ERR_FORMAT, "end beyond data buffer (5 bytes)", __LINE__);
        pb_st_file f;
        char err[256];
        EXPECT(pb_st_open(full, &f, err, sizeof err) == PB_OK, "full: %s", err);
        pb_st_close(&f);
    }
    // JSON-level
    BAD("not_json.safetensors", "{\"a\": nope}", d, 0, "not valid JSON");
    BAD("not_object.safetensors", "[1, 2]", d, 0, "does not start with '{'");
    BAD("empty_header.safetensors", "", d, 0, "does not start with '{'");
    BAD("trailing.safetensors", "{} x", d, 0, "non-space bytes after the JSON object");
    BAD("bad_utf8.safetensors", "{\"\xff\":1}", d, 0, "not valid UTF-8");
    {
        // NUL byte inside the header
        char p_[512];
        path_in_dir(p_, sizeof p_, "nul.safetensors");
        uint8_t b[8 + 4] = {4, 0, 0, 0, 0, 0, 0, 0, '{', 0, '}', ' '};
        write_bytes(p_, b, sizeof b);
        expect_open_err(p_, PB_ERR_FORMAT, "not valid UTF-8", __LINE__);
    }
    {
        // padded with spaces: valid
        char p_[512];
        pb_st_file f;
        char err[256];
        path_in_dir(p_, sizeof p_, "padded.safetensors");
        make_file_n(p_, ok1, 5, d, 8, -1);
        EXPECT(pb_st_open(p_, &f, err, sizeof err) == PB_OK && f.ntensors == 1, "padded: %s", err);
        pb_st_close(&f);
    }
    // entry fields
    BAD("entry_not_obj.safetensors", "{\"x\":5}", d, 0, "tensor 'x': entry is not a JSON object");
    BAD("no_dtype.safetensors", "{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8,
        "tensor 'x': missing field 'dtype'");
    BAD("no_shape.safetensors", "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", d, 8,
        "tensor 'x': missing field 'shape'");
    BAD("no_offsets.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", d, 8,
        "tensor 'x': missing field 'data_offsets'");
    BAD("dtype_num.safetensors", "{\"x\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8,
        "'dtype' is not a string");
    BAD("dtype_unknown.safetensors",
        "{\"x\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8,
        "unknown dtype 'F128'");
    BAD("dtype_lower.safetensors",
        "{\"x\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8,
        "unknown dtype 'f32'");
    BAD("shape_neg.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
        d, 8, "shape[0] is not a non-negative integer");
    BAD("shape_frac.safetensors",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[2, 1.5],\"data_offsets\":[0,8]}}", d, 8,
        "shape[1] is not a non-negative integer");
    BAD("shape_str.safetensors",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", d, 8,
        "shape[0] is not a non-negative integer");
    BAD("shape_obj.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,8]}}",
        d, 8, "'shape' is not an array");
    BAD("shape_overflow.safetensors",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[4503599627370496,4503599627370496,0],"
        "\"data_offsets\":[0,0]}}",
        d, 0, "overflows");
    BAD("bytes_overflow.safetensors",
        "{\"x\":{\"dtype\":\"F64\",\"shape\":[4503599627370496,2048],\"data_offsets\":[0,0]}}", d, 0,
        "overflows");
    BAD("f4_odd.safetensors", "{\"x\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", d,
        2, "do not fill whole bytes");
    BAD("offsets_short.safetensors",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", d, 8,
        "'data_offsets' is not an array [begin, end]");
    BAD("offsets_neg.safetensors",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", d, 8,
        "'data_offsets' entries are not non-negative integers");
    BAD("offsets_rev.safetensors",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", d, 8,
        "end before begin");
    BAD("offsets_range.safetensors",
        "{\"x.weight\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", d, 8,
        "tensor 'x.weight': data_offsets [0, 12] end beyond data buffer (8 bytes)");
    BAD("size_mismatch.safetensors",
        "{\"x\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", d, 8,
        "span 8 bytes but dtype F16 with shape [2, 3] needs 12 bytes");
    BAD("gap.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
        d, 12, "tensor 'b': data_offsets [8, 12] leave a gap: the previous tensor 'a' ends at 4");
    BAD("gap_first.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        d, 8, "leave a gap");
    BAD("overlap.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        d, 8, "overlap tensor 'a'");
    BAD("extra_data.safetensors", ok1, d, 12, "the tensors cover 8 bytes but the data buffer has 12");
    {
        char p_[512];
        path_in_dir(p_, sizeof p_, "rank9.safetensors");
        make_file(p_, "{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                      "\"data_offsets\":[0,1]}}",
                  d, 1);
        expect_open_err(p_, PB_ERR_UNSUPPORTED, "shape has 9 dimensions", __LINE__);
    }
    BAD("duplicate.safetensors",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        d, 8, "duplicate key 'x'");
    BAD("meta_nonstring.safetensors",
        "{\"__metadata__\":{\"format\":\"pt\",\"n\":3},"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        d, 4, "'__metadata__' entry 'n': value is not a string");
    BAD("meta_array.safetensors", "{\"__metadata__\":[\"pt\"]}", d, 0,
        "'__metadata__' is not a JSON object");
    BAD("meta_dup.safetensors", "{\"__metadata__\":{\"format\":\"pt\"},\"__metadata__\":{}}", d, 0,
        "duplicate key '__metadata__'");
    BAD("nul_escape.safetensors",
        "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4,
        "\\u0000 escape");
    {
        // an escaped backslash followed by the text u0000 is a legal name
        char p_[512], err[256];
        pb_st_file f;
        path_in_dir(p_, sizeof p_, "bs_escape.safetensors");
        make_file(p_, "{\"a\\\\u0000\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                  d, 4);
        EXPECT(pb_st_open(p_, &f, err, sizeof err) == PB_OK && f.ntensors == 1 &&
                   strcmp(f.tensors[0].name, "a\\u0000") == 0,
               "escaped backslash: %s", err);
        pb_st_close(&f);
    }
    // null metadata is accepted (Option in the reference)
    {
        char p_[512], err[256];
        pb_st_file f;
        path_in_dir(p_, sizeof p_, "meta_null.safetensors");
        make_file(p_, "{\"__metadata__\":null}", d, 0);
        EXPECT(pb_st_open(p_, &f, err, sizeof err) == PB_OK && f.nmeta == 0, "null meta: %s", err);
        pb_st_close(&f);
    }
    // I/O errors
    path_in_dir(path, sizeof path, "does-not-exist.safetensors");
    expect_open_err(path, PB_ERR_IO, "cannot open", __LINE__);
    expect_open_err(g_dir, PB_ERR_IO, "not a regular file", __LINE__);
}

// xorshift64* for the fuzz loop (deterministic)
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

// Random mutations of valid files: opening must never crash (ASan/UBSan), errors name the file.
static void test_fuzz(void) {
    printf("mutation fuzz\n");
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[6,10]},"
                      "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[10,18]},"
                      "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[18,26]}}";
    char base[512], path[512];
    path_in_dir(base, sizeof base, "fuzz_base.safetensors");
    path_in_dir(path, sizeof path, "fuzz.safetensors");
    uint8_t d[26];
    for (int i = 0; i < 26; i++) d[i] = (uint8_t)(i * 37 + 11);
    make_file(base, hdr, d, sizeof d);
    FILE *fp = fopen(base, "rb");
    uint8_t orig[1024];
    size_t n = fread(orig, 1, sizeof orig, fp);
    fclose(fp);
    static const char tokens[] = "{}[]\",:0123456789-e. ntfu\\";
    int opened = 0, failed = 0;
    for (int it = 0; it < 3000; it++) {
        uint8_t buf[1100];
        memcpy(buf, orig, n);
        size_t len = n;
        int kind = (int)(rnd() % 5);
        int muts = 1 + (int)(rnd() % 4);
        for (int m = 0; m < muts && len > 0; m++) {
            size_t pos = (size_t)(rnd() % len);
            if (kind == 0) buf[pos] = (uint8_t)rnd();                          // random byte
            else if (kind == 1) buf[pos] = (uint8_t)tokens[rnd() % (sizeof tokens - 1)]; // JSON-ish
            else if (kind == 2) len = pos;                                     // truncate
            else if (kind == 3) buf[rnd() % 8] = (uint8_t)rnd();               // header length
            else if (len < sizeof buf - 1) {                                   // insert a byte
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = (uint8_t)tokens[rnd() % (sizeof tokens - 1)];
                len++;
            }
        }
        write_bytes(path, buf, len);
        pb_st_file f;
        char err[512] = "";
        pb_status st = pb_st_open(path, &f, err, sizeof err);
        if (st == PB_OK) {
            opened++;
            for (int i = 0; i < f.ntensors; i++) {
                const pb_st_tensor *t = &f.tensors[i];
                if (t->numel > 4096) continue;
                float *o = malloc((t->numel ? t->numel : 1) * sizeof(float));
                int32_t *o32 = malloc((t->numel ? t->numel : 1) * sizeof(int32_t));
                pb_st_read_f32(&f, t, o, err, sizeof err);
                pb_st_read_i32(&f, t, o32, err, sizeof err);
                free(o);
                free(o32);
            }
            pb_st_close(&f);
        } else {
            failed++;
            EXPECT(strncmp(err, path, strlen(path)) == 0 && strlen(err) > strlen(path) + 5,
                   "fuzz %d: message without the file name: '%s'", it, err);
        }
    }
    printf("  3000 mutated files: %d opened, %d rejected with a message, no crash\n", opened,
           failed);
    EXPECT(failed > 1000, "fuzz should reject most mutations");
}

// ----------------------------------------------------------------------------
// ref modes

static int bits_equal(float a, float b) { return fbits(a) == fbits(b); } // NaN payloads too

static int cmd_compare(const char *pa, const char *pb) {
    pb_st_file a, b;
    char err[512];
    if (pb_st_open(pa, &a, err, sizeof err) != PB_OK) { fprintf(stderr, "%s\n", err); return 1; }
    if (pb_st_open(pb, &b, err, sizeof err) != PB_OK) { fprintf(stderr, "%s\n", err); return 1; }
    size_t total = 0;
    EXPECT(a.ntensors == b.ntensors, "tensor counts %d vs %d", a.ntensors, b.ntensors);
    for (int i = 0; i < a.ntensors; i++) {
        const pb_st_tensor *ta = &a.tensors[i], *tb = pb_st_find(&b, ta->name);
        if (!tb) { EXPECT(0, "'%s' missing in the expected file", ta->name); continue; }
        EXPECT(ta->ndim == tb->ndim && ta->numel == tb->numel, "'%s' shape", ta->name);
        for (int k = 0; k < ta->ndim && k < tb->ndim; k++)
            EXPECT(ta->shape[k] == tb->shape[k], "'%s' dim %d", ta->name, k);
        size_t n = ta->numel;
        int mism = 0;
        if (tb->dtype == PB_ST_I32) {
            int32_t *x = malloc((n + 1) * 4), *y = malloc((n + 1) * 4);
            EXPECT(pb_st_read_i32(&a, ta, x, err, sizeof err) == PB_OK, "%s", err);
            EXPECT(pb_st_read_i32(&b, tb, y, err, sizeof err) == PB_OK, "%s", err);
            for (size_t k = 0; k < n; k++) mism += x[k] != y[k];
            free(x);
            free(y);
        } else {
            float *x = malloc((n + 1) * 4), *y = malloc((n + 1) * 4);
            EXPECT(pb_st_read_f32(&a, ta, x, err, sizeof err) == PB_OK, "%s", err);
            EXPECT(pb_st_read_f32(&b, tb, y, err, sizeof err) == PB_OK, "%s", err);
            for (size_t k = 0; k < n; k++) mism += !bits_equal(x[k], y[k]);
            free(x);
            free(y);
        }
        EXPECT(mism == 0, "'%s' (%s): %d of %zu values differ", ta->name, ta->dtype_str, mism, n);
        if (mism || a.ntensors <= 20)
            printf("  %-24s %-5s %8zu values  %s\n", ta->name, ta->dtype_str, n,
                   mism ? "MISMATCH" : "bitwise equal");
        total += n;
    }
    EXPECT(a.nmeta == b.nmeta, "metadata counts %d vs %d", a.nmeta, b.nmeta);
    for (int i = 0; i < a.nmeta; i++) {
        int found = 0;
        for (int k = 0; k < b.nmeta; k++)
            found |= !strcmp(a.meta_keys[i], b.meta_keys[k]) &&
                     !strcmp(a.meta_values[i], b.meta_values[k]);
        EXPECT(found, "metadata '%s'='%s' not matched", a.meta_keys[i], a.meta_values[i]);
    }
    printf("  %d tensors, %zu values, %d metadata entries: %s\n", a.ntensors, total, a.nmeta,
           pb_test_fails ? "MISMATCH" : "all bitwise equal to torch's conversion");
    pb_st_close(&a);
    pb_st_close(&b);
    return pb_test_fails ? 1 : 0;
}

// The fixed content tests/ref/st_fixtures.py recomputes.
static int cmd_write(const char *out) {
    float w[3 * 5], bias[7], sc = 3.5f, special[5] = {INFINITY, -INFINITY, -0.0f, 1e-45f, NAN};
    for (int i = 0; i < 15; i++) w[i] = (float)(i % 251 - 125) / 64.0f;
    for (int i = 0; i < 7; i++) bias[i] = 0.25f * (float)i - 1.0f;
    int32_t ids[6];
    for (int i = 0; i < 6; i++) ids[i] = i * 1000 - 2500;
    int64_t sw[2] = {3, 5}, sb[1] = {7}, se[2] = {0, 4}, sid[2] = {2, 3}, ssp[1] = {5};
    pb_st_writer *wr = pb_st_writer_init();
    pb_st_writer_add(wr, "z.weight", w, 2, sw);
    pb_st_writer_add(wr, "a.bias", bias, 1, sb);
    pb_st_writer_add(wr, "scalar", &sc, 0, NULL);
    pb_st_writer_add(wr, "empty", w, 2, se);
    pb_st_writer_add_i32(wr, "ids", ids, 2, sid);
    pb_st_writer_add(wr, "special", special, 1, ssp);
    pb_st_writer_add(wr, "n\xc3\xa4me \"q\"", bias, 1, sb); // non-ASCII + quotes in a name
    pb_st_writer_meta(wr, "peftbench", "1");
    pb_st_writer_meta(wr, "quote", "a\"b\\c\nd");
    char err[512];
    pb_status st = pb_st_writer_finish(wr, out, err, sizeof err);
    pb_st_writer_free(wr);
    if (st != PB_OK) { fprintf(stderr, "%s\n", err); return 1; }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 4 && !strcmp(argv[1], "--compare")) return cmd_compare(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "--write")) return cmd_write(argv[2]);
    snprintf(g_dir, sizeof g_dir, "/tmp/pb_test_st_%ld", (long)getpid());
    if (mkdir(g_dir, 0700) != 0 && errno != EEXIST) { perror(g_dir); return 2; }
    test_roundtrip();
    test_half();
    test_bad();
    test_fuzz();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
    if (pb_test_fails) {
        fprintf(stderr, "test_safetensors: %d failure(s)\n", pb_test_fails);
        return 1;
    }
    printf("test_safetensors: all passed\n");
    return 0;
}
