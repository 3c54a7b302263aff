// jsonutil.h: small helpers over cJSON for the harness: reading a JSON file with file:line
// errors, canonical serialisation (sorted keys, stable numbers) for cell ids, FNV-1a hashing,
// key validation with key paths, typed getters, and atomic file writes.
// defines: pb_json_read_file, pb_json_parse_text, pb_json_canonical, pb_json_hash_hex,
//          pb_json_check_keys, pb_json_num, pb_json_str, pb_json_bool, pb_write_file_atomic,
//          pb_read_text, pb_json_write_atomic, pb_utf8_valid, pb_jnum, pb_jstr, pb_jbool, pb_jcopy
#ifndef PB_JSONUTIL_H
#define PB_JSONUTIL_H

#include <cjson/cJSON.h>
#include "../engine/common.h"
#include "../engine/fileutil.h"

// Parses the JSON file at path. On a syntax error the message is "path:LINE:COL: ..." with the
// position of the first bad character. Caller frees the result with cJSON_Delete.
pb_status pb_json_read_file(const char *path, cJSON **out, char *err, size_t errlen);
// Parses text (name is used in messages). Same error format as pb_json_read_file.
pb_status pb_json_parse_text(const char *text, const char *name, cJSON **out, char *err,
                             size_t errlen);

// Canonical JSON: objects with keys sorted bytewise, no whitespace, integers printed as
// integers, other numbers with %.17g. Caller frees with free().
char *pb_json_canonical(const cJSON *j);

// 16 lowercase hex digits of the FNV-1a 64 hash of the canonical form of j; out has >= 17 bytes.
void pb_json_hash_hex(const cJSON *j, char out[17]);

// Checks every key of object obj against the NULL-terminated list allowed. On an unknown key:
// PB_ERR_FORMAT with "file: path.key: unknown key (allowed: a, b, ...)".
pb_status pb_json_check_keys(const cJSON *obj, const char *const *allowed, const char *file,
                             const char *path, char *err, size_t errlen);

// Typed getters (NULL obj or missing key returns the default; wrong type is an error naming
// file: path.key).
pb_status pb_json_num(const cJSON *obj, const char *key, double def, double *out,
                      const char *file, const char *path, char *err, size_t errlen);
pb_status pb_json_str(const cJSON *obj, const char *key, const char *def, char *out,
                      size_t outlen, const char *file, const char *path, char *err,
                      size_t errlen);
pb_status pb_json_bool(const cJSON *obj, const char *key, int def, int *out, const char *file,
                       const char *path, char *err, size_t errlen);

// Writes data to path atomically: temp file in the same directory, fsync, rename, fsync of the
// directory. A reader sees either the old file or the complete new one.
pb_status pb_write_file_atomic(const char *path, const char *data, size_t n, char *err,
                               size_t errlen);
// Reads a whole file into a NUL-terminated buffer (caller frees); NULL if unreadable.
char *pb_read_text(const char *path, size_t *n);
// Writes j (pretty-printed) atomically.
pb_status pb_json_write_atomic(const char *path, const cJSON *j, char *err, size_t errlen);

// 1 if s is well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
int pb_utf8_valid(const char *s);

// Lenient getters for resolved (already validated) objects: o[k] if it has the type, else def.
// o may be NULL. pb_jcopy copies a string o[k] into dst (dst unchanged otherwise).
double pb_jnum(const cJSON *o, const char *k, double def);
const char *pb_jstr(const cJSON *o, const char *k, const char *def);
int pb_jbool(const cJSON *o, const char *k, int def);
void pb_jcopy(const cJSON *o, const char *k, char *dst, size_t n);

#endif
