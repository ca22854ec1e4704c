/*  vdgx_apireq.c - JSON / form bodies to validated generate requests. */
#include "vdgx_apireq.h"
#include "vdgx_form.h"
#include "vdgx_gate.h"
#include "vdgx_image.h"
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
vdgx_apierr_set (vdgx_apierr_t *err, int status, const char *code, const char *field,
                 const char *format, ...)
{
    assert (err && code);
    err->status = status;
    snprintf (err->code, sizeof err->code, "%s", code);
    snprintf (err->field, sizeof err->field, "%s", field? field: "");
    va_list args;
    va_start (args, format);
    vsnprintf (err->message, sizeof err->message, format, args);
    va_end (args);
    return -1;
}

char *
vdgx_apierr_body (int status, const char *code, const char *field, const char *message)
{
    assert (code && message);
    json_t *inner = json_object ();
    json_object_set_new (inner, "code", json_string (code));
    json_t *msg = json_string (message);
    json_object_set_new (inner, "message", msg? msg: json_string ("(message not UTF-8)"));
    if (field && *field) {
        json_t *f = json_string (field);
        json_object_set_new (inner, "field", f? f: json_string ("?"));
    }
    //  The OpenAI SDKs read error.message; type keeps their error classes happy.
    json_object_set_new (inner, "type", json_string (status >= 500? "server_error": "invalid_request_error"));
    json_t *obj = json_object ();
    json_object_set_new (obj, "error", inner);
    char *text = json_dumps (obj, JSON_COMPACT | JSON_REAL_PRECISION (15));
    json_decref (obj);
    return text;
}

int
vdgx_apireq_parse_size (const char *text, uint32_t *width, uint32_t *height)
{
    if (!text)
        return -1;
    uint32_t v [2] = { 0, 0 };
    const char *p = text;
    for (int k = 0; k < 2; k++) {
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 6) {
            v [k] = v [k] * 10 + (uint32_t) (*p - '0');
            p++;
            digits++;
        }
        if (digits == 0 || digits > 5)
            return -1;
        if (k == 0) {
            if (*p != 'x' && *p != 'X')
                return -1;
            p++;
        }
    }
    if (*p)
        return -1;
    *width = v [0];
    *height = v [1];
    return 0;
}

typedef enum { F_STR, F_UINT, F_NUM, F_BOOL, F_SIZE, F_SECONDS, F_IMAGE, F_REFUSE } s_kind_t;
typedef enum {
    K_MODEL, K_PROMPT, K_NEGATIVE, K_DURATION, K_SECONDS, K_RESOLUTION, K_SIZE, K_WIDTH,
    K_HEIGHT, K_FRAMES, K_FPS, K_STEPS, K_GUIDANCE, K_SHIFT, K_SAMPLER, K_SEED, K_PRECISION,
    K_PRIORITY, K_IDEMKEY, K_NO_CACHE, K_IMAGE, K_LAST_IMAGE, K_INPUT_REF, K_INPUT_REF_URL,
    K_INPUT_REF_FILE, K_COUNT
} s_key_t;
static const struct {
    const char *name;
    s_kind_t kind;
    unsigned dialects;      //  bit 0 native, bit 1 openai
    uint64_t max;           //  F_UINT upper bound (lower bound 1 except seed)
} s_fields [K_COUNT] = {
    { "model", F_STR, 3, 0 },
    { "prompt", F_STR, 3, 0 },
    { "negative_prompt", F_STR, 3, 0 },
    { "duration", F_SECONDS, 1, 0 },
    { "seconds", F_SECONDS, 3, 0 },
    { "resolution", F_SIZE, 1, 0 },
    { "size", F_SIZE, 2, 0 },
    { "width", F_UINT, 3, 4096 },
    { "height", F_UINT, 3, 4096 },
    { "frames", F_UINT, 3, 1025 },
    { "fps", F_UINT, 3, 120 },
    { "steps", F_UINT, 3, 1000 },
    { "guidance", F_NUM, 3, 0 },
    { "shift", F_NUM, 3, 0 },
    { "sampler", F_STR, 3, 0 },
    { "seed", F_UINT, 3, INT64_MAX },
    { "precision", F_STR, 3, 0 },
    { "priority", F_STR, 3, 0 },
    { "idempotency_key", F_STR, 3, 0 },
    { "no_cache", F_BOOL, 3, 0 },
    { "image", F_IMAGE, 3, 0 },
    { "last_image", F_IMAGE, 3, 0 },
    //  OpenAI: a file part or a data URL string (JSON: also {"image_url": ...}); the SDK's
    //  multipart form of {"image_url": ...} is the field input_reference[image_url].
    { "input_reference", F_IMAGE, 2, 0 },
    { "input_reference[image_url]", F_IMAGE, 2, 0 },
    { "input_reference[file_id]", F_REFUSE, 2, 0 },
};

static int
s_field_index (const char *name, vdgx_apireq_dialect_t dialect)
{
    for (int i = 0; i < K_COUNT; i++)
        if (strcmp (s_fields [i].name, name) == 0 && (s_fields [i].dialects >> dialect & 1))
            return i;
    return -1;
}

//  Text of a form value or a JSON string; NULL for other JSON types.
static const char *
s_text (const json_t *value)
{
    return json_is_string (value)? json_string_value (value): NULL;
}

static int
s_get_uint (const json_t *value, bool from_form, const char *name, uint64_t min, uint64_t max,
            uint64_t *out, vdgx_apierr_t *err)
{
    if (json_is_integer (value)) {
        json_int_t v = json_integer_value (value);
        if (v < 0 || (uint64_t) v < min || (uint64_t) v > max)
            return vdgx_apierr_set (err, 422, "invalid_field", name,
                                    "%s must be an integer from %" PRIu64 " to %" PRIu64, name, min, max);
        *out = (uint64_t) v;
        return 0;
    }
    const char *text = from_form? s_text (value): NULL;
    if (text && *text && strlen (text) <= 20) {
        bool digits = true;
        for (const char *p = text; *p; p++)
            digits = digits && *p >= '0' && *p <= '9';
        errno = 0;
        char *end = NULL;
        unsigned long long v = digits? strtoull (text, &end, 10): 0;
        if (digits && errno == 0 && end && *end == 0) {
            if (v < min || v > max)
                return vdgx_apierr_set (err, 422, "invalid_field", name,
                                        "%s must be an integer from %" PRIu64 " to %" PRIu64, name, min, max);
            *out = v;
            return 0;
        }
    }
    return vdgx_apierr_set (err, 422, "invalid_field", name, "%s must be an integer", name);
}

static int
s_get_num (const json_t *value, bool from_form, bool text_ok, const char *name, double *out,
           vdgx_apierr_t *err)
{
    double v = NAN;
    if (json_is_number (value))
        v = json_number_value (value);
    else {
        const char *text = (from_form || text_ok)? s_text (value): NULL;
        if (text && *text && strlen (text) <= 32) {
            char *end = NULL;
            errno = 0;
            double d = strtod (text, &end);
            //  Plain decimals only: no hex floats, "inf" or "nan" from a form.
            bool plain = strspn (text, "0123456789.eE+-") == strlen (text);
            if (plain && errno == 0 && end && *end == 0)
                v = d;
        }
    }
    if (!isfinite (v))
        return vdgx_apierr_set (err, 422, "invalid_field", name, "%s must be a number", name);
    *out = v;
    return 0;
}

static int
s_get_bool (const json_t *value, bool from_form, const char *name, bool *out, vdgx_apierr_t *err)
{
    if (json_is_boolean (value)) {
        *out = json_is_true (value);
        return 0;
    }
    const char *text = from_form? s_text (value): NULL;
    if (text && (strcmp (text, "true") == 0 || strcmp (text, "false") == 0)) {
        *out = text [0] == 't';
        return 0;
    }
    return vdgx_apierr_set (err, 422, "invalid_field", name, "%s must be true or false", name);
}

//  An image field: a data URL (a form's file part arrives as one), or for input_reference in
//  JSON {"image_url": "data:..."}. Decoded and checked whole with vdgx_image (format,
//  structure, size and pixel limits) inside a slot of gate (when given), then stored in the
//  request as the original bytes.
static int
s_get_image (vdgx_genreq_t *req, const json_t *value, bool from_form, int k, vdgx_gate_t *gate,
             vdgx_apierr_t *err)
{
    const char *name = k == K_LAST_IMAGE? "last_image": k == K_IMAGE? "image": "input_reference";
    const char *url = s_text (value);
    if (!url && k == K_INPUT_REF && !from_form && json_is_object (value)) {
        const char *key;
        json_t *sub;
        json_object_foreach ((json_t *) value, key, sub) {
            if (strcmp (key, "file_id") == 0 && !json_is_null (sub))
                return vdgx_apierr_set (err, 422, "unsupported", name, "input_reference.file_id "
                                        "is not supported (no Files API): send the image itself");
            if (strcmp (key, "image_url") && strcmp (key, "file_id"))
                return vdgx_apierr_set (err, 422, "unknown_field", name,
                                        "input_reference has no field '%.40s'", key);
        }
        url = s_text (json_object_get (value, "image_url"));
    }
    if (!url)
        return vdgx_apierr_set (err, 422, "invalid_field", name, "%s must be an image file or a "
                                "data URL (data:image/png;base64,...)", name);
    char mime [64], why [200];
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = vdgx_form_data_url_decode (url, VDGX_IMAGE_BYTES_MAX, mime, sizeof mime, &data,
                                        &size, why, sizeof why);
    if (rc == -2)
        return vdgx_apierr_set (err, 413, "too_large", name, "%s: the image is too large: %s",
                                name, why);
    if (rc)
        return vdgx_apierr_set (err, 422, "invalid_image", name, "%s: %s", name, why);
    if (*mime && strncasecmp (mime, "image/", 6) && strcasecmp (mime, "application/octet-stream")) {
        free (data);
        return vdgx_apierr_set (err, 422, "invalid_image", name, "%s: the file is %s, not an image",
                                name, mime);
    }
    if (gate && !vdgx_gate_enter (gate)) {
        free (data);
        return vdgx_apierr_set (err, 503, "unavailable", name, "%s: the server is decoding as "
                                "many images as it may at once; retry shortly", name);
    }
    vdgx_image_t *image = vdgx_image_decode (data, size, NULL, why, sizeof why);
    if (gate)
        vdgx_gate_leave (gate);
    if (!image) {
        free (data);
        bool large = strstr (why, "too large") != NULL;
        return vdgx_apierr_set (err, large? 413: 422, large? "too_large": "invalid_image", name,
                                "%s: %s", name, why);
    }
    vdgx_image_destroy (&image);
    rc = vdgx_genreq_set_image (req, k == K_LAST_IMAGE? "last_image": "image", data, size);
    free (data);
    if (rc)
        return vdgx_apierr_set (err, 500, "internal", "", "out of memory");
    return 0;
}

static int
s_one_of (const char *value, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (value, names [i]) == 0)
            return (int) i;
    return -1;
}

int
vdgx_apireq_parse (vdgx_genreq_t *req, const json_t *body, vdgx_apireq_dialect_t dialect,
                   bool from_form, const char *default_model, vdgx_apierr_t *err)
{
    return vdgx_apireq_parse_gated (req, body, dialect, from_form, default_model, NULL, err);
}

int
vdgx_apireq_parse_gated (vdgx_genreq_t *req, const json_t *body, vdgx_apireq_dialect_t dialect,
                         bool from_form, const char *default_model, vdgx_gate_t *gate,
                         vdgx_apierr_t *err)
{
    assert (req && err);
    vdgx_genreq_clear (req);
    if (!json_is_object (body))
        return vdgx_apierr_set (err, 400, "invalid_body", "", "the body must be a JSON object");
    const json_t *seen [K_COUNT] = { NULL };
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) body, key, value) {
        int k = s_field_index (key, dialect);
        if (k < 0) {
            char field [64];
            snprintf (field, sizeof field, "%.60s", key);
            return vdgx_apierr_set (err, 422, "unknown_field", field, "unknown field '%.60s'", key);
        }
        if (json_is_null (value) && !from_form)
            continue;           //  null = absent, as the OpenAI SDKs send optional fields
        seen [k] = value;
    }
    if (seen [K_INPUT_REF_FILE])
        return vdgx_apierr_set (err, 422, "unsupported", "input_reference",
                                "input_reference.file_id is not supported (no Files API): send the image itself");
    if ((seen [K_INPUT_REF] != NULL) + (seen [K_INPUT_REF_URL] != NULL) + (seen [K_IMAGE] != NULL) > 1)
        return vdgx_apierr_set (err, 422, "invalid_field", seen [K_IMAGE]? "image": "input_reference",
                                "give the first-frame image once (input_reference or image)");
    if (seen [K_LAST_IMAGE] && !seen [K_IMAGE] && !seen [K_INPUT_REF] && !seen [K_INPUT_REF_URL])
        return vdgx_apierr_set (err, 422, "invalid_field", "last_image",
                                "last_image needs a first-frame image (image or input_reference)");
    if (seen [K_DURATION] && seen [K_SECONDS])
        return vdgx_apierr_set (err, 422, "invalid_field", "duration", "give duration or seconds, not both");
    if (seen [K_RESOLUTION] && (seen [K_WIDTH] || seen [K_HEIGHT]))
        return vdgx_apierr_set (err, 422, "invalid_field", "resolution", "give resolution or width/height, not both");
    if (seen [K_SIZE] && (seen [K_WIDTH] || seen [K_HEIGHT]))
        return vdgx_apierr_set (err, 422, "invalid_field", "size", "give size or width/height, not both");
    if (seen [K_FRAMES] && (seen [K_SECONDS] || seen [K_DURATION]))
        return vdgx_apierr_set (err, 422, "invalid_field", seen [K_SECONDS]? "seconds": "duration",
                                "give frames or a duration, not both");
    for (int k = 0; k < K_COUNT; k++) {
        const json_t *v = seen [k];
        if (!v)
            continue;
        const char *name = s_fields [k].name;
        uint64_t u = 0;
        double d = 0;
        bool b = false;
        const char *text = NULL;
        switch (s_fields [k].kind) {
            case F_STR:
                text = s_text (v);
                if (!text)
                    goto fail_str;
                break;
            case F_UINT:
                if (s_get_uint (v, from_form, name, k == K_SEED? 0: 1, s_fields [k].max, &u, err))
                    goto fail;
                break;
            case F_NUM:
            case F_SECONDS:
                //  OpenAI sends seconds as a string ("8") even in JSON.
                if (s_get_num (v, from_form, s_fields [k].kind == F_SECONDS, name, &d, err))
                    goto fail;
                break;
            case F_BOOL:
                if (s_get_bool (v, from_form, name, &b, err))
                    goto fail;
                break;
            case F_SIZE:
                text = s_text (v);
                if (!text)
                    goto fail_str;
                break;
            case F_IMAGE:
                if (s_get_image (req, v, from_form, k == K_INPUT_REF_URL? K_INPUT_REF: k, gate, err))
                    goto fail;
                break;
            case F_REFUSE:
                break;
        }
        switch ((s_key_t) k) {
            case K_MODEL:
                if (!vdgx_model_name_valid (text)) {
                    vdgx_apierr_set (err, 422, "invalid_field", name,
                                     "model names are 1..64 bytes of [a-z0-9._-]");
                    goto fail;
                }
                snprintf (req->model, sizeof req->model, "%s", text);
                break;
            case K_PROMPT:
            case K_NEGATIVE: {
                size_t n = strlen (text);
                if ((k == K_PROMPT && n == 0) || n > VDGX_PROMPT_MAX) {
                    vdgx_apierr_set (err, 422, "invalid_field", name, "%s must be %d..%d bytes", name,
                                     k == K_PROMPT? 1: 0, VDGX_PROMPT_MAX);
                    goto fail;
                }
                char *copy = strdup (text);
                if (!copy) {
                    vdgx_apierr_set (err, 500, "internal", "", "out of memory");
                    goto fail;
                }
                if (k == K_PROMPT)
                    req->prompt = copy;
                else
                    req->negative_prompt = copy;
                break;
            }
            case K_DURATION:
            case K_SECONDS:
                if (!(d > 0) || d > 600) {
                    vdgx_apierr_set (err, 422, "invalid_field", name, "%s must be > 0 and <= 600 seconds", name);
                    goto fail;
                }
                req->has_seconds = true;
                req->seconds = d;
                break;
            case K_RESOLUTION:
            case K_SIZE:
                if (vdgx_apireq_parse_size (text, &req->width, &req->height)
                ||  req->width < 16 || req->width > 4096 || req->height < 16 || req->height > 4096) {
                    vdgx_apierr_set (err, 422, "invalid_field", name,
                                     "%s must be WIDTHxHEIGHT, each 16..4096 (e.g. \"832x480\")", name);
                    goto fail;
                }
                break;
            case K_WIDTH:  req->width = (uint32_t) u; if (u < 16) goto small; break;
            case K_HEIGHT: req->height = (uint32_t) u; if (u < 16) goto small; break;
            case K_FRAMES: req->frames = (uint32_t) u; break;
            case K_FPS:    req->fps = (uint32_t) u; break;
            case K_STEPS:  req->steps = (uint32_t) u; break;
            case K_SEED:   req->has_seed = true; req->seed = u; break;
            case K_GUIDANCE:
                if (d < 0 || d > 100) {
                    vdgx_apierr_set (err, 422, "invalid_field", name, "guidance must be 0..100");
                    goto fail;
                }
                req->has_guidance = true;
                req->guidance = d;
                break;
            case K_SHIFT:
                if (!(d > 0) || d > 100) {
                    vdgx_apierr_set (err, 422, "invalid_field", name, "shift must be > 0 and <= 100");
                    goto fail;
                }
                req->has_shift = true;
                req->shift = d;
                break;
            case K_SAMPLER: {
                static const char *const names [] = { "unipc", "dpm++", "euler" };
                if (s_one_of (text, names, 3) < 0) {
                    vdgx_apierr_set (err, 422, "invalid_field", name, "sampler must be unipc, dpm++ or euler");
                    goto fail;
                }
                snprintf (req->sampler, sizeof req->sampler, "%s", text);
                break;
            }
            case K_PRECISION: {
                static const char *const names [] = { "fp32", "bf16", "fp8", "fp4" };
                if (s_one_of (text, names, 4) < 0) {
                    vdgx_apierr_set (err, 422, "invalid_field", name, "precision must be fp32, bf16, fp8 or fp4");
                    goto fail;
                }
                snprintf (req->precision, sizeof req->precision, "%s", text);
                break;
            }
            case K_PRIORITY:
                if (vdgx_priority_parse (text, &req->priority)) {
                    vdgx_apierr_set (err, 422, "invalid_field", name, "priority must be high, normal or low");
                    goto fail;
                }
                break;
            case K_IDEMKEY: {
                size_t n = strlen (text);
                bool ok = n >= 1 && n <= VDGX_IDEMKEY_MAX;
                for (size_t i = 0; ok && i < n; i++)
                    ok = text [i] >= 0x20 && text [i] <= 0x7e;
                if (!ok) {
                    vdgx_apierr_set (err, 422, "invalid_field", name,
                                     "idempotency_key must be 1..128 printable ASCII characters");
                    goto fail;
                }
                snprintf (req->idempotency_key, sizeof req->idempotency_key, "%s", text);
                break;
            }
            case K_NO_CACHE: req->no_cache = b; break;
            case K_IMAGE: case K_LAST_IMAGE: case K_INPUT_REF: case K_INPUT_REF_URL:
            case K_INPUT_REF_FILE: case K_COUNT: break;
        }
        continue;
small:
        vdgx_apierr_set (err, 422, "invalid_field", name, "%s must be an integer from 16 to 4096", name);
        goto fail;
fail_str:
        vdgx_apierr_set (err, 422, "invalid_field", name, "%s must be a string", name);
        goto fail;
    }
    if (!req->model [0]) {
        if (!default_model || !*default_model) {
            vdgx_apierr_set (err, 422, "missing_field", "model", "model is required");
            goto fail;
        }
        snprintf (req->model, sizeof req->model, "%s", default_model);
    }
    if (!req->prompt) {
        vdgx_apierr_set (err, 422, "missing_field", "prompt", "prompt is required");
        goto fail;
    }
    vdgx_error_t perr;
    if (vdgx_genreq_validate (req, &perr)) {
        //  What the typed checks above let through (invalid UTF-8, ...): the codec's word.
        vdgx_apierr_set (err, 422, "invalid_field", perr.field, "%s", perr.message);
        goto fail;
    }
    if (!req->width != !req->height) {
        vdgx_apierr_set (err, 422, "invalid_field", req->width? "height": "width",
                         "give both width and height (or neither)");
        goto fail;
    }
    //  What the model accepts (sizes, frames, steps, ...) is the broker's check, against the
    //  limits its workers advertise (shared/vdgx_limits.h).
    return 0;
fail:
    vdgx_genreq_clear (req);
    return -1;
}

//  ---------------------------------------------------------------------------------------

static int
s_try (const char *text, vdgx_apireq_dialect_t dialect, bool from_form, vdgx_genreq_t *req,
       vdgx_apierr_t *err)
{
    json_error_t jerr;
    json_t *body = json_loads (text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    assert (body);
    int rc = vdgx_apireq_parse (req, body, dialect, from_form, "testgen", err);
    json_decref (body);
    return rc;
}

void
vdgx_apireq_test (bool verbose)
{
    printf (" * vdgx_apireq: ");
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    vdgx_apierr_t err;
    uint32_t w, h;
    assert (vdgx_apireq_parse_size ("1024x576", &w, &h) == 0 && w == 1024 && h == 576);
    assert (vdgx_apireq_parse_size ("1024x", &w, &h) == -1);
    assert (vdgx_apireq_parse_size ("x576", &w, &h) == -1);
    assert (vdgx_apireq_parse_size ("1024x576 ", &w, &h) == -1);
    assert (vdgx_apireq_parse_size ("999999x1", &w, &h) == -1);
    assert (vdgx_apireq_parse_size ("-1x5", &w, &h) == -1);

    //  The seed's body, native dialect.
    assert (s_try ("{\"model\":\"wan21-tiny\",\"prompt\":\"a cat\",\"duration\":2,"
                   "\"resolution\":\"64x64\",\"fps\":8,\"seed\":9223372036854775807,\"steps\":4,"
                   "\"guidance\":4.5,\"shift\":3,\"sampler\":\"euler\",\"precision\":\"bf16\","
                   "\"priority\":\"high\",\"idempotency_key\":\"k1\",\"no_cache\":true,"
                   "\"negative_prompt\":\"\"}",
                   VDGX_APIREQ_NATIVE, false, &req, &err) == 0);
    assert (strcmp (req.model, "wan21-tiny") == 0 && req.width == 64 && req.height == 64);
    assert (req.has_seconds && req.seconds == 2 && req.fps == 8 && req.steps == 4);
    assert (req.has_seed && req.seed == INT64_MAX && req.no_cache && req.priority == VDGX_PRIORITY_HIGH);
    assert (strcmp (req.sampler, "euler") == 0 && req.negative_prompt && !*req.negative_prompt);
    //  Default model.
    assert (s_try ("{\"prompt\":\"x\"}", VDGX_APIREQ_NATIVE, false, &req, &err) == 0);
    assert (strcmp (req.model, "testgen") == 0);

    //  Bad-input matrix: every one is a 4xx naming the field, never a crash.
    static const struct { const char *body; int status; const char *field; } bad [] = {
        { "[]", 400, "" },
        { "\"x\"", 400, "" },
        { "{}", 422, "prompt" },
        { "{\"prompt\":\"\"}", 422, "prompt" },
        { "{\"prompt\":1}", 422, "prompt" },
        { "{\"prompt\":\"x\",\"bogus\":1}", 422, "bogus" },
        { "{\"prompt\":\"x\",\"size\":\"64x64\"}", 422, "size" },          //  openai-only field
        { "{\"prompt\":\"x\",\"model\":\"Bad Model\"}", 422, "model" },
        { "{\"prompt\":\"x\",\"model\":7}", 422, "model" },
        { "{\"prompt\":\"x\",\"width\":-1,\"height\":64}", 422, "width" },
        { "{\"prompt\":\"x\",\"width\":1.5,\"height\":64}", 422, "width" },
        { "{\"prompt\":\"x\",\"width\":\"64\",\"height\":64}", 422, "width" },
        { "{\"prompt\":\"x\",\"width\":64}", 422, "height" },
        { "{\"prompt\":\"x\",\"width\":8,\"height\":64}", 422, "width" },
        { "{\"prompt\":\"x\",\"frames\":0}", 422, "frames" },
        { "{\"prompt\":\"x\",\"frames\":1026}", 422, "frames" },
        { "{\"prompt\":\"x\",\"frames\":5,\"duration\":1}", 422, "duration" },
        { "{\"prompt\":\"x\",\"duration\":0}", 422, "duration" },
        { "{\"prompt\":\"x\",\"duration\":601}", 422, "duration" },
        { "{\"prompt\":\"x\",\"duration\":\"2s\"}", 422, "duration" },
        { "{\"prompt\":\"x\",\"duration\":1,\"seconds\":1}", 422, "duration" },
        { "{\"prompt\":\"x\",\"fps\":0}", 422, "fps" },
        { "{\"prompt\":\"x\",\"fps\":121}", 422, "fps" },
        { "{\"prompt\":\"x\",\"steps\":0}", 422, "steps" },
        { "{\"prompt\":\"x\",\"guidance\":-1}", 422, "guidance" },
        { "{\"prompt\":\"x\",\"guidance\":true}", 422, "guidance" },
        { "{\"prompt\":\"x\",\"shift\":0}", 422, "shift" },
        { "{\"prompt\":\"x\",\"sampler\":\"ddim\"}", 422, "sampler" },
        { "{\"prompt\":\"x\",\"seed\":-1}", 422, "seed" },
        { "{\"prompt\":\"x\",\"precision\":\"fp7\"}", 422, "precision" },
        { "{\"prompt\":\"x\",\"priority\":\"urgent\"}", 422, "priority" },
        { "{\"prompt\":\"x\",\"idempotency_key\":\"\"}", 422, "idempotency_key" },
        { "{\"prompt\":\"x\",\"no_cache\":1}", 422, "no_cache" },
        { "{\"prompt\":\"x\",\"resolution\":\"64*64\"}", 422, "resolution" },
        { "{\"prompt\":\"x\",\"resolution\":\"8x8\"}", 422, "resolution" },
        { "{\"prompt\":\"x\",\"resolution\":\"64x64\",\"width\":64}", 422, "resolution" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        memset (&err, 0, sizeof err);
        int rc = s_try (bad [i].body, VDGX_APIREQ_NATIVE, false, &req, &err);
        if (verbose || rc != -1 || err.status != bad [i].status || strcmp (err.field, bad [i].field))
            printf ("\n   %s -> %d %d %s %s", bad [i].body, rc, err.status, err.field, err.message);
        assert (rc == -1 && err.status == bad [i].status && strcmp (err.field, bad [i].field) == 0);
        assert (req.prompt == NULL);
    }
    //  A prompt over 8192 bytes.
    char *big = (char *) malloc (VDGX_PROMPT_MAX + 64);
    int n = snprintf (big, 32, "{\"prompt\":\"");
    memset (big + n, 'a', VDGX_PROMPT_MAX + 1);
    strcpy (big + n + VDGX_PROMPT_MAX + 1, "\"}");
    assert (s_try (big, VDGX_APIREQ_NATIVE, false, &req, &err) == -1 && strcmp (err.field, "prompt") == 0);
    free (big);

    //  OpenAI dialect: seconds as a string, size, nulls as absent; form values are strings.
    assert (s_try ("{\"model\":\"testgen\",\"prompt\":\"p\",\"seconds\":\"4\",\"size\":\"64x48\","
                   "\"input_reference\":null}", VDGX_APIREQ_OPENAI, false, &req, &err) == 0);
    assert (req.has_seconds && req.seconds == 4 && req.width == 64 && req.height == 48);
    //  Images: a data URL (JSON string, {"image_url"}, the SDK's form field, or a form file
    //  part, which vdgx_form hands over as a data URL), decoded and checked, stored as sent.
    static const char png1 [] = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    char body [512];
    snprintf (body, sizeof body, "{\"prompt\":\"p\",\"input_reference\":\"data:image/png;base64,%s\"}", png1);
    assert (s_try (body, VDGX_APIREQ_OPENAI, false, &req, &err) == 0);
    assert (req.image && req.image_size == 70 && memcmp (req.image, "\x89PNG", 4) == 0 && !req.last_image);
    snprintf (body, sizeof body, "{\"prompt\":\"p\",\"input_reference\":{\"image_url\":\"data:image/png;base64,%s\"}}", png1);
    assert (s_try (body, VDGX_APIREQ_OPENAI, false, &req, &err) == 0 && req.image_size == 70);
    snprintf (body, sizeof body, "{\"prompt\":\"p\",\"input_reference[image_url]\":\"data:image/png;base64,%s\"}", png1);
    assert (s_try (body, VDGX_APIREQ_OPENAI, true, &req, &err) == 0 && req.image_size == 70);
    snprintf (body, sizeof body, "{\"prompt\":\"p\",\"image\":\"data:;base64,%s\",\"last_image\":\"data:image/png;base64,%s\"}", png1, png1);
    assert (s_try (body, VDGX_APIREQ_NATIVE, false, &req, &err) == 0 && req.image_size == 70 && req.last_image_size == 70);
    snprintf (body, sizeof body, "{\"prompt\":\"p\",\"image\":\"data:application/octet-stream;base64,%s\"}", png1);
    assert (s_try (body, VDGX_APIREQ_NATIVE, true, &req, &err) == 0 && req.image_size == 70);
    static const struct { const char *body; vdgx_apireq_dialect_t d; int status; const char *field, *says; } ibad [] = {
        { "{\"prompt\":\"p\",\"input_reference\":\"x\"}", VDGX_APIREQ_OPENAI, 422, "input_reference", "data URL" },
        { "{\"prompt\":\"p\",\"input_reference\":\"https://example.com/a.png\"}", VDGX_APIREQ_OPENAI, 422, "input_reference", "not fetched" },
        { "{\"prompt\":\"p\",\"input_reference\":\"data:image/png;base64,\"}", VDGX_APIREQ_OPENAI, 422, "input_reference", "empty image" },
        { "{\"prompt\":\"p\",\"input_reference\":\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB\"}", VDGX_APIREQ_OPENAI, 422, "input_reference", "truncated PNG" },
        { "{\"prompt\":\"p\",\"input_reference\":\"data:text/plain;base64,aGk=\"}", VDGX_APIREQ_OPENAI, 422, "input_reference", "not an image" },
        { "{\"prompt\":\"p\",\"input_reference\":\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\"}", VDGX_APIREQ_OPENAI, 422, "input_reference", "unsupported image format" },
        { "{\"prompt\":\"p\",\"input_reference\":{\"file_id\":\"file-1\"}}", VDGX_APIREQ_OPENAI, 422, "input_reference", "Files API" },
        { "{\"prompt\":\"p\",\"input_reference\":{\"url\":\"x\"}}", VDGX_APIREQ_OPENAI, 422, "input_reference", "no field" },
        { "{\"prompt\":\"p\",\"input_reference\":7}", VDGX_APIREQ_OPENAI, 422, "input_reference", "data URL" },
        { "{\"prompt\":\"p\",\"input_reference[file_id]\":\"file-1\"}", VDGX_APIREQ_OPENAI, 422, "input_reference", "Files API" },
        { "{\"prompt\":\"p\",\"image\":\"data:;base64,AAAA\",\"input_reference\":\"data:;base64,AAAA\"}", VDGX_APIREQ_OPENAI, 422, "image", "once" },
        { "{\"prompt\":\"p\",\"last_image\":\"data:;base64,AAAA\"}", VDGX_APIREQ_NATIVE, 422, "last_image", "needs a first-frame" },
        { "{\"prompt\":\"p\",\"input_reference\":\"data:;base64,AAAA\"}", VDGX_APIREQ_NATIVE, 422, "input_reference", "unknown" },
        { "{\"prompt\":\"p\",\"image\":\"data:;base64,AA*A\"}", VDGX_APIREQ_NATIVE, 422, "image", "not base64" },
    };
    for (size_t i = 0; i < sizeof ibad / sizeof ibad [0]; i++) {
        memset (&err, 0, sizeof err);
        int rc = s_try (ibad [i].body, ibad [i].d, false, &req, &err);
        if (verbose || rc != -1 || err.status != ibad [i].status || strcmp (err.field, ibad [i].field)
        ||  !strstr (err.message, ibad [i].says))
            printf ("\n   %s -> %d %d %s %s", ibad [i].body, rc, err.status, err.field, err.message);
        assert (rc == -1 && err.status == ibad [i].status && strcmp (err.field, ibad [i].field) == 0);
        assert (strstr (err.message, ibad [i].says) && !req.image && !req.prompt);
    }
    //  Over the byte limit: 413 before anything is decoded; a declared bomb: 413 by its header.
    size_t blen = (VDGX_IMAGE_BYTES_MAX + 3) / 3 * 4 + 100;
    char *huge = (char *) malloc (blen + 64);
    n = snprintf (huge, 64, "{\"prompt\":\"p\",\"image\":\"data:image/png;base64,");
    memset (huge + n, 'A', blen);
    strcpy (huge + n + blen, "\"}");
    assert (s_try (huge, VDGX_APIREQ_NATIVE, false, &req, &err) == -1 && err.status == 413);
    assert (strcmp (err.field, "image") == 0 && strcmp (err.code, "too_large") == 0);
    free (huge);
    //  The 1x1 PNG with its IHDR saying 100000x100000 (the probe refuses it before decoding).
    char url [200], mime [64], why [100];
    snprintf (url, sizeof url, "data:image/png;base64,%s", png1);
    uint8_t *bytes;
    size_t nbytes;
    assert (vdgx_form_data_url_decode (url, 100, mime, sizeof mime, &bytes, &nbytes, why, sizeof why) == 0);
    memcpy (bytes + 16, "\x00\x01\x86\xa0\x00\x01\x86\xa0", 8);
    char *bomb = vdgx_form_data_url_encode ("image/png", bytes, nbytes);
    free (bytes);
    snprintf (body, sizeof body, "{\"prompt\":\"p\",\"image\":\"%s\"}", bomb);
    free (bomb);
    assert (s_try (body, VDGX_APIREQ_NATIVE, false, &req, &err) == -1 && err.status == 413);
    assert (strcmp (err.field, "image") == 0 && strstr (err.message, "100000x100000"));
    //  Decodes inside a gate: with its one slot taken, an image gets 503 on its field (no
    //  wait), a request without images is not held up; with the slot free, it passes.
    vdgx_gate_t *gate = vdgx_gate_new (1, 0);
    assert (vdgx_gate_enter (gate));
    json_t *j = json_pack ("{s:s, s:s}", "prompt", "p", "input_reference", url);
    assert (vdgx_apireq_parse_gated (&req, j, VDGX_APIREQ_OPENAI, false, "testgen", gate, &err) == -1);
    assert (err.status == 503 && strcmp (err.code, "unavailable") == 0);
    assert (strcmp (err.field, "input_reference") == 0 && !req.image);
    json_t *plain = json_pack ("{s:s}", "prompt", "p");
    assert (vdgx_apireq_parse_gated (&req, plain, VDGX_APIREQ_OPENAI, false, "testgen", gate, &err) == 0);
    json_decref (plain);
    vdgx_gate_leave (gate);
    assert (vdgx_apireq_parse_gated (&req, j, VDGX_APIREQ_OPENAI, false, "testgen", gate, &err) == 0);
    assert (req.image_size == 70 && vdgx_gate_busy (gate) == 0 && vdgx_gate_refused (gate) == 1);
    json_decref (j);
    vdgx_gate_destroy (&gate);
    assert (s_try ("{\"prompt\":\"p\",\"resolution\":\"64x48\"}", VDGX_APIREQ_OPENAI, false, &req, &err) == -1);
    assert (s_try ("{\"prompt\":\"p\",\"seconds\":\"4\",\"steps\":\"3\",\"no_cache\":\"true\",\"guidance\":\"2.5\"}",
                   VDGX_APIREQ_OPENAI, true, &req, &err) == 0);
    assert (req.steps == 3 && req.no_cache && req.guidance == 2.5);
    assert (s_try ("{\"prompt\":\"p\",\"steps\":\"3x\"}", VDGX_APIREQ_OPENAI, true, &req, &err) == -1);
    assert (s_try ("{\"prompt\":\"p\",\"seconds\":\"nan\"}", VDGX_APIREQ_OPENAI, true, &req, &err) == -1);
    assert (s_try ("{\"prompt\":\"p\",\"seconds\":\"inf\"}", VDGX_APIREQ_OPENAI, true, &req, &err) == -1);
    assert (s_try ("{\"prompt\":\"p\",\"seed\":\"99999999999999999999\"}", VDGX_APIREQ_OPENAI, true, &req, &err) == -1);
    assert (s_try ("{\"prompt\":\"p\",\"seed\":\"18446744073709551615\"}", VDGX_APIREQ_OPENAI, true, &req, &err) == -1);
    vdgx_genreq_clear (&req);
    //  Model limits are not the bridge's: any size the protocol allows passes here.
    assert (s_try ("{\"model\":\"wan21-1.3b\",\"prompt\":\"x\",\"resolution\":\"1024x576\",\"frames\":16}",
                   VDGX_APIREQ_NATIVE, false, &req, &err) == 0);
    vdgx_genreq_clear (&req);
    printf ("OK\n");
}
