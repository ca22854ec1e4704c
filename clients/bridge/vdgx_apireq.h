/*  vdgx_apireq.h - HTTP request bodies to generate requests (PROTOCOL.md 5.1), validated.

    Two dialects share one field table:
      native  (POST /generate): model, prompt, negative_prompt, duration (= seconds),
               seconds, resolution "WxH" (= width, height), width, height, frames, fps, steps,
               guidance, shift, sampler, seed, precision, priority, idempotency_key, no_cache
      openai  (POST /v1/videos): model, prompt, seconds (string "8" or number), size "WxH",
               plus the native extras; input_reference is refused (no image-to-video model).
    The body is a JSON object (jansson) or, for multipart/form-data, an object of strings
    (`from_form`): numbers and booleans are then parsed from text, strictly.

    Every field's type and range is checked, then the request against the protocol rules
    (vdgx_genreq_validate). Errors say which field and give the HTTP status: 422 for a field
    that is wrong, 400 for a body that is not an object. What a model accepts (sizes, frame
    counts, steps, guidance, fps) is checked by the broker at submit, against the limits the
    model's workers advertise (shared/vdgx_limits.h): no model facts live in the bridge.
*/
#ifndef VDGX_APIREQ_H_INCLUDED
#define VDGX_APIREQ_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "vdgx_genreq.h"
#include "vdgx_gate.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { VDGX_APIREQ_NATIVE = 0, VDGX_APIREQ_OPENAI } vdgx_apireq_dialect_t;

//  An HTTP error: status, a short machine code, a message and the field ("" = none).
typedef struct {
    int status;
    char code [32];
    char message [256];
    char field [64];
} vdgx_apierr_t;

//  Fills err (status, code, field, printf message). Returns -1 for convenience.
int vdgx_apierr_set (vdgx_apierr_t *err, int status, const char *code, const char *field,
                     const char *format, ...) __attribute__ ((format (printf, 5, 6)));

//  The JSON error body every HTTP error of the bridge has (its HTTP layer, the front door
//  and the handlers): {"error":{"code","message","field"?,"type"}}. field may be NULL or "".
//  Returns the text (the caller frees it), or NULL when out of memory.
char *vdgx_apierr_body (int status, const char *code, const char *field, const char *message);

//  Parses body into req (vdgx_genreq_init'ed; cleared first). default_model (may be NULL or
//  "") is used when the body names none. Returns 0, or -1 with err set (req cleared).
int vdgx_apireq_parse (vdgx_genreq_t *req, const json_t *body, vdgx_apireq_dialect_t dialect,
                       bool from_form, const char *default_model, vdgx_apierr_t *err);
//  The same, with every image decoded inside a slot of gate (NULL = no limit): when none
//  frees within the gate's wait, -1 with a 503 `unavailable` error on the image's field.
int vdgx_apireq_parse_gated (vdgx_genreq_t *req, const json_t *body, vdgx_apireq_dialect_t dialect,
                             bool from_form, const char *default_model, vdgx_gate_t *gate,
                             vdgx_apierr_t *err);
//  Parses "WxH" (decimal, 1..5 digits each). Returns 0 or -1.
int vdgx_apireq_parse_size (const char *text, uint32_t *width, uint32_t *height);

void vdgx_apireq_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
