/*  vdgx_mp.h - strict reading of msgpack maps, shared by every VDGX/1 decoder.

    A decoder lists the keys a map may hold, then reads each field with a typed reader:
        enum { K_ID, K_ATTEMPT, K_COUNT };
        static const char *keys [] = { "id", "attempt" };
        vdgx_mp_map_t map;
        if (vdgx_mp_map (&map, obj, "", keys, K_COUNT, err)) return -1;     //  non-map,
                                                     //  non-string / unknown / repeated key
        if (vdgx_mp_str (&map, K_ID, true, 1, 64, buf, sizeof buf) < 0) return -1;
    Readers return 1 when the field was present and read, 0 when absent (and not required),
    -1 on error with err = {"bad_request", "<field>: <why>", field}. Strings must be valid
    UTF-8 without NUL bytes; lengths are in bytes. Float fields accept any msgpack number
    but not NaN or infinities; integer fields accept only integers.

    vdgx_mp_check() walks raw msgpack bytes before msgpack-c sees them: it rejects truncated
    data, trailing bytes, the unused 0xc1 byte and container counts that cannot fit in the
    remaining bytes, so a tiny hostile frame cannot make msgpack-c reserve gigabytes.
*/
#ifndef VDGX_MP_H_INCLUDED
#define VDGX_MP_H_INCLUDED

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vdgx_genreq.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_MP_KEYS_MAX 32

typedef struct {
    const msgpack_object *values [VDGX_MP_KEYS_MAX];    //  NULL = absent
    const char *const *keys;
    size_t nkeys;
    char path [64];             //  prefix of field names ("" at top level)
    vdgx_error_t *err;
} vdgx_mp_map_t;

//  Checks that data holds exactly one well-formed msgpack object. Returns 0 or -1 (err).
int vdgx_mp_check (const void *data, size_t size, vdgx_error_t *err);

int vdgx_mp_map (vdgx_mp_map_t *self, const msgpack_object *obj, const char *path,
                 const char *const *keys, size_t nkeys, vdgx_error_t *err);
//  Field name for key index (path.key) written into buf.
void vdgx_mp_field (const vdgx_mp_map_t *self, size_t index, char *buf, size_t size);
//  Raises a bad_request error on a field (always returns -1).
int vdgx_mp_fail (const vdgx_mp_map_t *self, size_t index, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
const msgpack_object *vdgx_mp_value (const vdgx_mp_map_t *self, size_t index);

int vdgx_mp_str (vdgx_mp_map_t *self, size_t index, bool required, size_t min, size_t max,
                 char *buf, size_t bufsize);
int vdgx_mp_strdup (vdgx_mp_map_t *self, size_t index, bool required, size_t min, size_t max,
                    char **out);
int vdgx_mp_uint (vdgx_mp_map_t *self, size_t index, bool required, uint64_t min, uint64_t max,
                  uint64_t *out);
int vdgx_mp_u32 (vdgx_mp_map_t *self, size_t index, bool required, uint32_t min, uint32_t max,
                 uint32_t *out);
//  lo_open: the lower bound itself is excluded, i.e. (lo, hi].
int vdgx_mp_double (vdgx_mp_map_t *self, size_t index, bool required, double lo, double hi,
                    bool lo_open, double *out);
int vdgx_mp_bool (vdgx_mp_map_t *self, size_t index, bool required, bool *out);
//  A string that must be one of names; *out = its index.
int vdgx_mp_enum (vdgx_mp_map_t *self, size_t index, bool required, const char *const *names,
                  size_t nnames, int *out);
//  Binary (msgpack bin only); points into the unpacked object.
int vdgx_mp_bin (vdgx_mp_map_t *self, size_t index, bool required, size_t max,
                 const uint8_t **data, size_t *size);
//  A field that must hold exactly this string (e.g. type: "progress").
int vdgx_mp_const (vdgx_mp_map_t *self, size_t index, bool required, const char *expected);

//  True when the msgpack string (not NUL-terminated) is valid UTF-8 with no NUL byte.
bool vdgx_mp_utf8_valid (const char *text, size_t size);
//  Error for a whole object at path (not a map field).
int vdgx_mp_error (vdgx_error_t *err, const char *field, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Packing helpers (return 0 or -1 as msgpack_pack_* do).
int vdgx_mp_pack_cstr (msgpack_packer *pk, const char *text);
int vdgx_mp_pack_key (msgpack_packer *pk, const char *key);

//  A msgpack object as JSON (new reference), for introspection replies shown to people or sent
//  over HTTP: integers above INT64_MAX become reals, NaN and infinities null, binaries
//  {"bin_bytes": size}, map entries with non-string keys are skipped, and anything nested
//  deeper than 32 levels is null.
json_t *vdgx_mp_to_json (const msgpack_object *obj);

void vdgx_mp_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
