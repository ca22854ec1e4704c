/*  codec_util.h - helpers shared by the codec tests and fuzz targets: a table of every
    VDGX/1 decoder by name, and a JSON -> msgpack converter for readable test inputs.
*/
#ifndef VDGX_CODEC_UTIL_H_INCLUDED
#define VDGX_CODEC_UTIL_H_INCLUDED

#include "vdgx_msg.h"

//  Decodes data with the named decoder into a fresh struct, then frees it; if repack is not
//  NULL and the decode worked, the struct is packed again into *repack (caller frees).
typedef int (s_decode_fn) (const void *data, size_t size, vdgx_error_t *err,
                           msgpack_sbuffer *repack);
typedef struct {
    const char *name;
    s_decode_fn *decode;
} codec_t;

extern const codec_t codec_table [];
extern const size_t codec_count;
const codec_t *codec_find (const char *name);

//  JSON text -> msgpack bytes in sb. Strings "$A<n>" become n 'a' bytes, "$BIN<n>" a bin of
//  n bytes, "$U<n>" the uint64 n (JSON integers stop at 2^63-1); other integers >= 0 pack as uint, < 0 as int, reals as float64.
int codec_json_to_msgpack (const char *json, msgpack_sbuffer *sb);

#endif
