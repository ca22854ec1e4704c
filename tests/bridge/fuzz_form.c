/*  libFuzzer target: any bytes as a form body through the bridge's form parser (vdgx_form),
    under both form content types and a few boundaries, then the accepted fields through the
    request validation like the JSON fuzzer. Nothing may crash or leak; an accepted form
    holds only unique, printable field names and values without NUL or control bytes
    other than tab, CR and LF. */
#include "vdgx_apireq.h"
#include "vdgx_form.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_check (json_t *fields)
{
    const char *key;
    json_t *value;
    assert (json_object_size (fields) <= VDGX_FORM_FIELDS_MAX);
    json_object_foreach (fields, key, value) {
        size_t n = strlen (key);
        assert (n >= 1 && n <= VDGX_FORM_NAME_MAX);
        for (size_t i = 0; i < n; i++)
            assert ((unsigned char) key [i] > 0x20 && (unsigned char) key [i] < 0x7f);
        assert (json_is_string (value));
        const char *text = json_string_value (value);
        size_t len = json_string_length (value);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char) text [i];
            assert (c >= 0x20 || c == '\t' || c == '\r' || c == '\n');
            assert (c != 0x7f);
        }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static const char *types [] = {
        "multipart/form-data; boundary=XyZ", "multipart/form-data; boundary=\"a b\"",
        "multipart/form-data; boundary=-", "application/x-www-form-urlencoded"
    };
    for (size_t t = 0; t < sizeof types / sizeof types [0]; t++) {
        json_t *fields = NULL;
        vdgx_form_err_t err;
        if (vdgx_form_parse (types [t], (const char *) data, size, &fields, &err) == 0) {
            s_check (fields);
            vdgx_genreq_t req;
            vdgx_genreq_init (&req);
            vdgx_apierr_t aerr;
            if (vdgx_apireq_parse (&req, fields, VDGX_APIREQ_OPENAI, true, "testgen", &aerr) == 0) {
                vdgx_error_t perr;
                assert (vdgx_genreq_validate (&req, &perr) == 0);
            }
            vdgx_genreq_clear (&req);
            json_decref (fields);
        }
        else
            assert (!fields && err.field [0] && err.message [0]);
    }
    return 0;
}
