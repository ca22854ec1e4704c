/*  vdgx_form.h - strict HTML form bodies for the REST bridge: multipart/form-data and
    application/x-www-form-urlencoded, parsed whole (bodies are capped) into a JSON object
    of fields, with the same rules as the JSON path:
    - a field name is 1..64 printable ASCII bytes; a field may appear once (a repeated one
      is refused, not merged or overwritten);
    - a value is UTF-8 without NUL or other control bytes (tab, CR and LF are allowed in
      text); a file part (filename=...) holds any bytes and becomes a data URL
      "data:<its Content-Type>;base64,<the bytes>" (application/octet-stream when the part
      has no usable type), the same text a JSON body sends for a file (input_reference);
    - at most 64 fields; anything malformed (no boundary, an unterminated part, a part
      without a name, a bad %-escape) is refused with the field or "body" named.

        json_t *fields = NULL;
        vdgx_form_err_t err;
        if (vdgx_form_parse (content_type, body, size, &fields, &err))
            ... 400 with err.field and err.message
*/
#ifndef VDGX_FORM_H_INCLUDED
#define VDGX_FORM_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_FORM_FIELDS_MAX    64
#define VDGX_FORM_NAME_MAX      64

typedef struct {
    char field [VDGX_FORM_NAME_MAX + 1];    //  the offending field, or "body"
    char message [160];
} vdgx_form_err_t;

//  Data URLs ("data:image/png;base64,iVBOR..."): how a file travels inside the JSON object
//  of fields, and how JSON bodies send one. _encode returns a new string (caller frees) or
//  NULL when out of memory. _decode accepts only base64 data URLs (RFC 2397, the standard
//  alphabet, '=' padding optional, no whitespace): 0 with the media type ("" when none, at
//  most mime_size - 1 bytes) and *data_p (malloc'ed, caller frees; NULL when empty), or -1
//  with a one-line reason in why. max_size caps the decoded bytes: over it is -2 (why says).
char *vdgx_form_data_url_encode (const char *mime, const void *data, size_t size);
int vdgx_form_data_url_decode (const char *url, size_t max_size, char *mime, size_t mime_size,
                               uint8_t **data_p, size_t *size_p, char *why, size_t why_size);

//  True when content_type is one of the two form types.
bool vdgx_form_is_form (const char *content_type);
//  Parses a form body. 0 with *fields (a new JSON object), or -1 with err filled.
int vdgx_form_parse (const char *content_type, const char *body, size_t size, json_t **fields,
                     vdgx_form_err_t *err);

void vdgx_form_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
