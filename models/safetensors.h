// safetensors.h: reader (mmap) and writer for the safetensors format
// (8-byte LE header length, JSON header, tightly tiled little-endian data).
// defines: pb_st_file, pb_st_tensor, pb_st_open, pb_st_close, pb_st_find, pb_st_read_f32,
//          pb_st_writer, pb_st_writer_init, pb_st_writer_add, pb_st_writer_add_i32, pb_st_writer_meta,
//          pb_st_writer_finish, pb_st_writer_free
#ifndef PB_SAFETENSORS_H
#define PB_SAFETENSORS_H

#include <stdint.h>
#include <stddef.h>
#include "../engine/common.h"

typedef enum {
    PB_ST_F32, PB_ST_F16, PB_ST_BF16, PB_ST_F64, PB_ST_I64, PB_ST_I32, PB_ST_I16, PB_ST_I8,
    PB_ST_U8, PB_ST_BOOL, PB_ST_OTHER
} pb_st_dtype;

typedef struct {
    char *name;
    pb_st_dtype dtype;
    char dtype_str[16];
    int ndim;
    int64_t shape[8];
    size_t numel;
    const uint8_t *data; // points into the mapping
    size_t nbytes;
} pb_st_tensor;

// An open, fully validated file (header per the spec: size limits, JSON object, known fields,
// offsets in bounds and tiling the data buffer exactly, byte sizes = numel * dtype size, no
// duplicate names). Owned by the caller; pb_st_close unmaps and frees.
typedef struct {
    char *path;
    void *map;
    size_t map_size;
    int ntensors;
    pb_st_tensor *tensors;
    int nmeta;
    char **meta_keys, **meta_values; // __metadata__ (string -> string)
} pb_st_file;

pb_status pb_st_open(const char *path, pb_st_file *f, char *err, size_t errlen);
void pb_st_close(pb_st_file *f);
const pb_st_tensor *pb_st_find(const pb_st_file *f, const char *name);
// Converts t (F32, F16, BF16, F64; integer dtypes too) to float32 into dst (numel floats).
// Returns PB_ERR_FORMAT with a message naming file and tensor for unsupported dtypes.
pb_status pb_st_read_f32(const pb_st_file *f, const pb_st_tensor *t, float *dst, char *err,
                         size_t errlen);
// Same for integer tensors (I64/I32/I16/I8/U8/BOOL) into int32 (range-checked).
pb_status pb_st_read_i32(const pb_st_file *f, const pb_st_tensor *t, int32_t *dst, char *err,
                         size_t errlen);

// Writer: collects tensors (copies the data) and writes atomically (temp file + rename), with
// the header padded with spaces to 8-byte alignment and tensors sorted by name.
typedef struct pb_st_writer pb_st_writer;
pb_st_writer *pb_st_writer_init(void);
void pb_st_writer_add(pb_st_writer *w, const char *name, const float *data, int ndim,
                      const int64_t *shape);
void pb_st_writer_add_i32(pb_st_writer *w, const char *name, const int32_t *data, int ndim,
                          const int64_t *shape);
void pb_st_writer_meta(pb_st_writer *w, const char *key, const char *value);
pb_status pb_st_writer_finish(pb_st_writer *w, const char *path, char *err, size_t errlen);
void pb_st_writer_free(pb_st_writer *w);

#endif
