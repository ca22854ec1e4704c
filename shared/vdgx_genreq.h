/*  vdgx_genreq.h - the generate request (PROTOCOL.md 5.1): the one schema that the bridge,
    the CLI, the broker and every engine share. Decoding is strict: a missing, unknown,
    mistyped, oversized or out-of-range field is an error naming the field.
*/
#ifndef VDGX_GENREQ_H_INCLUDED
#define VDGX_GENREQ_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { VDGX_PRIORITY_HIGH = 0, VDGX_PRIORITY_NORMAL = 1, VDGX_PRIORITY_LOW = 2 } vdgx_priority_t;

#define VDGX_MODEL_MAX      64
#define VDGX_PROMPT_MAX     8192
#define VDGX_IDEMKEY_MAX    128

typedef struct {
    char model [VDGX_MODEL_MAX + 1];
    char *prompt;                       //  owned, never NULL after a successful decode
    char *negative_prompt;              //  owned, NULL when absent (model default)
    uint32_t width, height;             //  0 = model default
    uint32_t frames;                    //  0 = absent (use seconds or the model default)
    bool has_seconds;   double seconds;
    uint32_t fps;                       //  0 = model default
    uint32_t steps;                     //  0 = model default
    bool has_guidance;  double guidance;
    bool has_shift;     double shift;
    char sampler [16];                  //  "" = model default; else unipc | dpm++ | euler
    bool has_seed;      uint64_t seed;
    char precision [8];                 //  "" = worker default; else fp32 | bf16 | fp8 | fp4
    vdgx_priority_t priority;
    char idempotency_key [VDGX_IDEMKEY_MAX + 1];    //  "" = none
    bool no_cache;
    //  Image-to-video inputs: the original encoded file (PNG, JPEG or WebP, at most
    //  VDGX_IMAGE_BYTES_MAX bytes, header checked by vdgx_image_probe), owned, NULL when
    //  absent. last_image (first-last-frame models) needs image.
    uint8_t *image;       size_t image_size;
    uint8_t *last_image;  size_t last_image_size;
} vdgx_genreq_t;

//  Error detail of a failed decode or validation (static strings or the field buffer).
typedef struct {
    const char *code;           //  "bad_request", ...
    char message [256];
    char field [64];
} vdgx_error_t;

void vdgx_genreq_init (vdgx_genreq_t *self);
void vdgx_genreq_clear (vdgx_genreq_t *self);          //  frees owned strings, re-inits
int vdgx_genreq_copy (vdgx_genreq_t *dst, const vdgx_genreq_t *src);
//  Decodes a msgpack map object / raw bytes. Returns 0, or -1 with err filled.
int vdgx_genreq_decode_obj (vdgx_genreq_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_genreq_decode (vdgx_genreq_t *self, const void *data, size_t size, vdgx_error_t *err);
//  Encodes as a msgpack map (only the fields that are set).
int vdgx_genreq_pack (const vdgx_genreq_t *self, msgpack_packer *pk);
//  Copies an image into the request (field "image" or "last_image"), replacing what was
//  there; size 0 removes it. Returns 0, or -1 when out of memory or the field is unknown.
int vdgx_genreq_set_image (vdgx_genreq_t *self, const char *field, const void *data, size_t size);
//  Frees the images (job status replies carry the request without them).
void vdgx_genreq_drop_images (vdgx_genreq_t *self);
//  Canonical text of every generation parameter (for the result cache key; images by their
//  SHA-256); caller frees.
char *vdgx_genreq_canonical (const vdgx_genreq_t *self);
const char *vdgx_priority_name (vdgx_priority_t p);

//  Additions (foundation): decoding with a field-path prefix ("request" gives fields like
//  "request.prompt"); validating a request built in C (CLI, bridge) against exactly the
//  decoder's rules (0, or -1 with err naming the field); "high"|"normal"|"low" -> value
//  (0 or -1); model/service name rule: 1..64 bytes of [a-z0-9._-].
int vdgx_genreq_decode_at (vdgx_genreq_t *self, const msgpack_object *obj, const char *path,
                           vdgx_error_t *err);
int vdgx_genreq_validate (const vdgx_genreq_t *self, vdgx_error_t *err);
int vdgx_priority_parse (const char *name, vdgx_priority_t *p);
bool vdgx_model_name_valid (const char *name);

void vdgx_genreq_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
