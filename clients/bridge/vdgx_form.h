/*  vdgx_form.h - strict HTML form bodies for the REST bridge: multipart/form-data and
    application/x-www-form-urlencoded, parsed whole (bodies are capped) into a JSON object
    of fields, with the same rules as the JSON path:
    - a field name is 1..64 printable ASCII bytes; a field may appear once (a repeated one
      is refused, not merged or overwritten);
    - a value is UTF-8 without NUL or other control bytes (tab, CR and LF are allowed in
      text); a file part (filename=...) becomes the string "<file>" (only its presence
      matters to the API);
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

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_FORM_FIELDS_MAX    64
#define VDGX_FORM_NAME_MAX      64

typedef struct {
    char field [VDGX_FORM_NAME_MAX + 1];    //  the offending field, or "body"
    char message [160];
} vdgx_form_err_t;

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
