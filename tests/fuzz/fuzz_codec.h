/*  fuzz_codec.h - the check every codec fuzz target runs on its input:
    - a rejected input gives rc -1 and a complete bad_request error (code, message);
    - an accepted input packs again, and that packing decodes to identical bytes (so what
      the decoder accepts is something the encoder can reproduce).
    Any violation aborts, which libFuzzer reports as a crash.
*/
#ifndef VDGX_FUZZ_CODEC_H_INCLUDED
#define VDGX_FUZZ_CODEC_H_INCLUDED

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "codec_util.h"

static void
fuzz_codec_check (const char *codec, const uint8_t *data, size_t size)
{
    const codec_t *c = codec_find (codec);
    if (!c)
        abort ();
    vdgx_error_t err;
    memset (&err, 0, sizeof err);
    msgpack_sbuffer once;
    int rc = c->decode (data, size, &err, &once);
    if (rc == -2)
        abort ();                   //  a decoded value failed to pack
    if (rc != 0) {
        if (rc != -1 || !err.code || strcmp (err.code, "bad_request") || !err.message [0])
            abort ();
        return;
    }
    msgpack_sbuffer twice;
    vdgx_error_t err2;
    if (c->decode (once.data, once.size, &err2, &twice) != 0)
        abort ();
    if (twice.size != once.size || memcmp (twice.data, once.data, once.size) != 0)
        abort ();
    msgpack_sbuffer_destroy (&once);
    msgpack_sbuffer_destroy (&twice);
}

//  One libFuzzer entry point per decoder.
#define FUZZ_CODEC(name) \
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size); \
int \
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) \
{ \
    fuzz_codec_check (name, data, size); \
    return 0; \
}

#endif
