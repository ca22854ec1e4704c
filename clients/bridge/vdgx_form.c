/*  vdgx_form.c - strict multipart/form-data and urlencoded bodies (see vdgx_form.h). */
#include "vdgx_form.h"
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
s_fail (vdgx_form_err_t *err, const char *field, const char *format, ...)
{
    snprintf (err->field, sizeof err->field, "%s", field && *field? field: "body");
    va_list args;
    va_start (args, format);
    vsnprintf (err->message, sizeof err->message, format, args);
    va_end (args);
    return -1;
}

bool
vdgx_form_is_form (const char *type)
{
    return type && (strncasecmp (type, "multipart/form-data", 19) == 0
                ||  strncasecmp (type, "application/x-www-form-urlencoded", 33) == 0);
}

static bool
s_name_ok (const char *name, size_t n)
{
    if (n < 1 || n > VDGX_FORM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) name [i] <= 0x20 || (unsigned char) name [i] >= 0x7f)
            return false;
    return true;
}

//  ---------------------------------------------------------------------------------------
//  Data URLs

static const char s_b64 [] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
vdgx_form_data_url_encode (const char *mime, const void *data, size_t size)
{
    assert (mime && (data || size == 0));
    size_t head = strlen (mime) + 13;                   //  "data:" mime ";base64,"
    char *out = (char *) malloc (head + (size + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    char *o = out + snprintf (out, head + 1, "data:%s;base64,", mime);
    const uint8_t *in = (const uint8_t *) data;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t) in [i] << 16;
        if (i + 1 < size) v |= (uint32_t) in [i + 1] << 8;
        if (i + 2 < size) v |= in [i + 2];
        *o++ = s_b64 [v >> 18 & 63];
        *o++ = s_b64 [v >> 12 & 63];
        *o++ = i + 1 < size? s_b64 [v >> 6 & 63]: '=';
        *o++ = i + 2 < size? s_b64 [v & 63]: '=';
    }
    *o = 0;
    return out;
}

static int
s_b64_value (unsigned char c)
{
    const char *at = c? strchr (s_b64, c): NULL;
    return at? (int) (at - s_b64): -1;
}

static int
s_why (char *why, size_t why_size, int rc, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (why, why_size, format, args);
    va_end (args);
    return rc;
}

int
vdgx_form_data_url_decode (const char *url, size_t max_size, char *mime, size_t mime_size,
                           uint8_t **data_p, size_t *size_p, char *why, size_t why_size)
{
    assert (url && mime && mime_size && data_p && size_p && why);
    *data_p = NULL;
    *size_p = 0;
    mime [0] = 0;
    if (strncasecmp (url, "data:", 5) != 0)
        return s_why (why, why_size, -1, "expected a data URL (data:image/png;base64,...); "
                      "URLs are not fetched");
    const char *comma = strchr (url + 5, ',');
    if (!comma)
        return s_why (why, why_size, -1, "a data URL without a ','");
    size_t mlen = (size_t) (comma - url - 5);
    if (mlen < 7 || strncasecmp (comma - 7, ";base64", 7) != 0)
        return s_why (why, why_size, -1, "only base64 data URLs are accepted (\";base64,\")");
    mlen -= 7;
    const char *semi = (const char *) memchr (url + 5, ';', mlen);
    if (semi)
        mlen = (size_t) (semi - url - 5);               //  parameters (charset=...) dropped
    if (mlen >= mime_size)
        return s_why (why, why_size, -1, "the data URL's media type is too long");
    memcpy (mime, url + 5, mlen);
    mime [mlen] = 0;
    const char *b = comma + 1;
    size_t n = strlen (b);
    while (n && b [n - 1] == '=' && n % 4 != 1)
        n--;                                            //  padding (at most two)
    if (strlen (b) - n > 2 || n % 4 == 1)
        return s_why (why, why_size, -1, "bad base64 padding");
    size_t size = n / 4 * 3 + (n % 4? n % 4 - 1: 0);
    if (size > max_size)
        return s_why (why, why_size, -2, "%zu bytes are over the %zu byte limit", size, max_size);
    if (size == 0)
        return 0;
    uint8_t *out = (uint8_t *) malloc (size);
    if (!out)
        return s_why (why, why_size, -1, "out of memory");
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = s_b64_value ((unsigned char) b [i]);
        if (v < 0) {
            free (out);
            return s_why (why, why_size, -1, "a character that is not base64 at offset %zu", i);
        }
        acc = acc << 6 | (uint32_t) v;
        if (i % 4 == 3) {
            out [o++] = (uint8_t) (acc >> 16);
            out [o++] = (uint8_t) (acc >> 8);
            out [o++] = (uint8_t) acc;
            acc = 0;
        }
    }
    if (n % 4 == 2)
        out [o++] = (uint8_t) (acc >> 4);
    else
    if (n % 4 == 3) {
        out [o++] = (uint8_t) (acc >> 10);
        out [o++] = (uint8_t) (acc >> 2);
    }
    assert (o == size);
    *data_p = out;
    *size_p = size;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Fields

//  Adds name = value (value checked: UTF-8 by jansson, no control bytes but tab/CR/LF).
//  A file's value is its bytes, stored as a data URL of type mime.
static int
s_add (json_t *fields, const char *name, size_t nlen, const char *value, size_t vlen,
       const char *mime, vdgx_form_err_t *err)
{
    bool file = mime != NULL;
    char key [VDGX_FORM_NAME_MAX + 1];
    if (!s_name_ok (name, nlen)) {
        snprintf (key, sizeof key, "%.*s", (int) (nlen < VDGX_FORM_NAME_MAX? nlen: VDGX_FORM_NAME_MAX), name);
        for (char *p = key; *p; p++)
            if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                *p = '?';
        return s_fail (err, key, "a field name must be 1..%d printable characters", VDGX_FORM_NAME_MAX);
    }
    memcpy (key, name, nlen);
    key [nlen] = 0;
    if (json_object_get (fields, key))
        return s_fail (err, key, "the field '%s' is given more than once", key);
    if (json_object_size (fields) >= VDGX_FORM_FIELDS_MAX)
        return s_fail (err, key, "more than %d fields", VDGX_FORM_FIELDS_MAX);
    json_t *v;
    if (file) {
        char *url = vdgx_form_data_url_encode (mime, value, vlen);
        v = url? json_string (url): NULL;
        free (url);
        if (!v)
            return s_fail (err, key, "out of memory for the file '%s'", key);
    }
    else {
        for (size_t i = 0; i < vlen; i++) {
            unsigned char c = (unsigned char) value [i];
            if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
                return s_fail (err, key, "the field '%s' holds a control character (0x%02x)", key, c);
        }
        v = json_stringn (value, vlen);
        if (!v)
            return s_fail (err, key, "the field '%s' is not valid UTF-8", key);
    }
    json_object_set_new (fields, key, v);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  application/x-www-form-urlencoded

static int
s_hex (int c)
{
    return isdigit (c)? c - '0': isxdigit (c)? (tolower (c) - 'a' + 10): -1;
}

//  Decodes %XX and '+' into out (at most n bytes). Returns the length, or -1.
static long
s_urldecode (const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in [i] == '+')
            out [o++] = ' ';
        else
        if (in [i] == '%') {
            int hi = i + 1 < n? s_hex ((unsigned char) in [i + 1]): -1;
            int lo = i + 2 < n? s_hex ((unsigned char) in [i + 2]): -1;
            if (hi < 0 || lo < 0)
                return -1;
            out [o++] = (char) (hi << 4 | lo);
            i += 2;
        }
        else
            out [o++] = in [i];
    }
    return (long) o;
}

static int
s_parse_urlencoded (const char *body, size_t size, json_t *fields, vdgx_form_err_t *err)
{
    char *name = (char *) malloc (size + 1), *value = (char *) malloc (size + 1);
    int rc = 0;
    size_t start = 0;
    while (rc == 0 && start < size) {
        const char *amp = (const char *) memchr (body + start, '&', size - start);
        size_t end = amp? (size_t) (amp - body): size;
        if (end > start) {
            const char *eq = (const char *) memchr (body + start, '=', end - start);
            size_t nend = eq? (size_t) (eq - body): end;
            long nl = s_urldecode (body + start, nend - start, name);
            long vl = eq? s_urldecode (eq + 1, end - nend - 1, value): 0;
            if (nl < 0 || vl < 0)
                rc = s_fail (err, NULL, "a bad %%-escape in the form");
            else
                rc = s_add (fields, name, (size_t) nl, value, (size_t) vl, NULL, err);
        }
        start = end + 1;
    }
    free (name);
    free (value);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  multipart/form-data (RFC 7578)

//  The value of parameter `param` in a header value ("form-data; name=\"x\""), unquoted,
//  into out. Returns its length, -1 when absent, -2 when malformed.
static long
s_param (const char *text, size_t n, const char *param, char *out, size_t out_size)
{
    size_t plen = strlen (param);
    for (size_t i = 0; i + plen < n; i++) {
        if ((i == 0 || text [i - 1] == ';' || text [i - 1] == ' ' || text [i - 1] == '\t')
        &&  strncasecmp (text + i, param, plen) == 0 && text [i + plen] == '=') {
            size_t p = i + plen + 1, o = 0;
            if (p < n && text [p] == '"') {
                for (p++; p < n && text [p] != '"'; p++) {
                    if (text [p] == '\\' && p + 1 < n)
                        p++;
                    if (o + 1 >= out_size)
                        return -2;
                    out [o++] = text [p];
                }
                if (p >= n)
                    return -2;
            }
            else
                for (; p < n && text [p] != ';' && text [p] != ' '; p++) {
                    if (o + 1 >= out_size)
                        return -2;
                    out [o++] = text [p];
                }
            out [o] = 0;
            return (long) o;
        }
    }
    return -1;
}

static int
s_parse_multipart (const char *type, const char *body, size_t size, json_t *fields,
                   vdgx_form_err_t *err)
{
    char boundary [80];
    long blen = s_param (type, strlen (type), "boundary", boundary, 71);
    if (blen < 1)
        return s_fail (err, NULL, "multipart/form-data needs a boundary of 1..70 characters");
    char delim [84];
    int dlen = snprintf (delim, sizeof delim, "--%s", boundary);
    //  The first delimiter starts the body or follows a preamble line.
    const char *p = NULL;
    if (size >= (size_t) dlen && memcmp (body, delim, (size_t) dlen) == 0)
        p = body;
    else {
        char first [88];
        int flen = snprintf (first, sizeof first, "\r\n%s", delim);
        const char *at = (const char *) memmem (body, size, first, (size_t) flen);
        p = at? at + 2: NULL;
    }
    if (!p)
        return s_fail (err, NULL, "the form has no part (boundary not found)");
    const char *end = body + size;
    char next [88];
    int nlen = snprintf (next, sizeof next, "\r\n%s", delim);
    for (;;) {
        p += dlen;
        if (end - p >= 2 && p [0] == '-' && p [1] == '-')
            return 0;                   //  the closing delimiter
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p [0] != '\r' || p [1] != '\n')
            return s_fail (err, NULL, "a malformed part delimiter");
        p += 2;
        const char *hend = (const char *) memmem (p, (size_t) (end - p), "\r\n\r\n", 4);
        if (!hend && end - p >= 2 && p [0] == '\r' && p [1] == '\n')
            hend = p - 2;               //  no headers at all
        if (!hend)
            return s_fail (err, NULL, "a part's headers never end");
        char name [VDGX_FORM_NAME_MAX + 2], filename [256], mime [64] = "";
        long name_len = -1;
        bool file = false;
        for (const char *line = p; line < hend; ) {
            const char *eol = (const char *) memmem (line, (size_t) (hend - line) + 2, "\r\n", 2);
            if (!eol)
                eol = hend;
            size_t n = (size_t) (eol - line);
            for (size_t i = 0; i < n; i++)
                if ((unsigned char) line [i] < 0x20 && line [i] != '\t')
                    return s_fail (err, NULL, "a control character in a part header");
            if (n > 20 && strncasecmp (line, "content-disposition:", 20) == 0) {
                const char *v = line + 20;
                size_t vn = n - 20;
                while (vn && (*v == ' ' || *v == '\t'))
                    v++, vn--;
                if (vn < 9 || strncasecmp (v, "form-data", 9) != 0)
                    return s_fail (err, NULL, "a part that is not form-data");
                name_len = s_param (v, vn, "name", name, sizeof name);
                if (name_len == -2)
                    return s_fail (err, NULL, "a malformed part name");
                file = s_param (v, vn, "filename", filename, sizeof filename) != -1;
            }
            else
            if (n > 13 && strncasecmp (line, "content-type:", 13) == 0) {
                //  type/subtype of token characters, parameters dropped; else none.
                const char *v = line + 13;
                size_t vn = n - 13, t = 0;
                while (vn && (*v == ' ' || *v == '\t'))
                    v++, vn--;
                while (t < vn && t + 1 < sizeof mime && (isalnum ((unsigned char) v [t])
                       || strchr ("/+.-_", v [t])))
                    t++;
                bool ok = t > 0 && t + 1 < sizeof mime && (t == vn || v [t] == ';' || v [t] == ' ')
                          && memchr (v, '/', t);
                snprintf (mime, sizeof mime, "%.*s", ok? (int) t: 0, v);
            }
            line = eol + 2;
        }
        if (name_len < 0)
            return s_fail (err, NULL, "a part without a name");
        const char *data = hend + 4;
        if (data > end)
            return s_fail (err, NULL, "a part is cut short");
        const char *stop = (const char *) memmem (data, (size_t) (end - data), next, (size_t) nlen);
        if (!stop)
            return s_fail (err, name_len? name: NULL, "a part is not terminated by the boundary");
        if (s_add (fields, name, (size_t) name_len, data, (size_t) (stop - data),
                   file? (*mime? mime: "application/octet-stream"): NULL, err))
            return -1;
        p = stop + 2;
    }
}

int
vdgx_form_parse (const char *type, const char *body, size_t size, json_t **fields,
                 vdgx_form_err_t *err)
{
    assert (fields && err);
    *fields = NULL;
    memset (err, 0, sizeof *err);
    if (!vdgx_form_is_form (type))
        return s_fail (err, NULL, "not a form content type");
    json_t *out = json_object ();
    int rc = strncasecmp (type, "multipart/", 10) == 0
           ? s_parse_multipart (type, body? body: "", size, out, err)
           : s_parse_urlencoded (body? body: "", size, out, err);
    if (rc) {
        json_decref (out);
        return -1;
    }
    *fields = out;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Selftest

static json_t *
s_parse_ok (const char *type, const char *body, size_t size)
{
    json_t *fields = NULL;
    vdgx_form_err_t err;
    int rc = vdgx_form_parse (type, body, size, &fields, &err);
    if (rc)
        fprintf (stderr, "form: %s (%s)\n", err.message, err.field);
    assert (rc == 0 && fields);
    return fields;
}

static void
s_parse_bad (const char *type, const char *body, size_t size, const char *field)
{
    json_t *fields = NULL;
    vdgx_form_err_t err;
    assert (vdgx_form_parse (type, body, size, &fields, &err) == -1 && !fields);
    if (strcmp (err.field, field))
        fprintf (stderr, "form: field '%s', expected '%s' (%s)\n", err.field, field, err.message);
    assert (strcmp (err.field, field) == 0 && err.message [0]);
}

void
vdgx_form_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_form: ");
    const char *mp = "multipart/form-data; boundary=XyZ";
    const char good [] = "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n"
                         "a cat\r\non a mat\r\n--XyZ\r\ncontent-disposition: form-data; name=model\r\n"
                         "Content-Type: text/plain\r\n\r\nwan\r\n--XyZ\r\nContent-Disposition: form-data;"
                         " name=\"input_reference\"; filename=\"x.png\"\r\n\r\n\x89PNG\x00\x01\r\n--XyZ--\r\n";
    json_t *f = s_parse_ok (mp, good, sizeof good - 1);
    assert (json_object_size (f) == 3);
    assert (strcmp (json_string_value (json_object_get (f, "prompt")), "a cat\r\non a mat") == 0);
    assert (strcmp (json_string_value (json_object_get (f, "model")), "wan") == 0);
    //  A file part keeps its bytes (NUL and CR included) as a data URL.
    const char *url = json_string_value (json_object_get (f, "input_reference"));
    assert (strcmp (url, "data:application/octet-stream;base64,iVBORwAB") == 0);
    char mime [64], why [128];
    uint8_t *bytes;
    size_t nbytes;
    assert (vdgx_form_data_url_decode (url, 100, mime, sizeof mime, &bytes, &nbytes, why, sizeof why) == 0);
    assert (strcmp (mime, "application/octet-stream") == 0);
    assert (nbytes == 6 && memcmp (bytes, "\x89PNG\x00\x01", 6) == 0);
    free (bytes);
    json_decref (f);
    //  With a Content-Type (parameters dropped), the file's bytes holding CRLF and the
    //  boundary's prefix; a bad type is not passed on.
    const char typed [] = "--XyZ\r\nContent-Disposition: form-data; name=\"input_reference\"; "
                          "filename=\"cat.webp\"\r\nContent-Type: image/webp; q=1\r\n\r\n"
                          "RIFF\r\n--Xy\xff\r\n--XyZ\r\nContent-Disposition: form-data; name=\"last\";"
                          " filename=\"x\"\r\nContent-Type: <script>\r\n\r\n\r\n--XyZ--\r\n";
    f = s_parse_ok (mp, typed, sizeof typed - 1);
    url = json_string_value (json_object_get (f, "input_reference"));
    assert (vdgx_form_data_url_decode (url, 100, mime, sizeof mime, &bytes, &nbytes, why, sizeof why) == 0);
    assert (strcmp (mime, "image/webp") == 0 && nbytes == 11 && memcmp (bytes, "RIFF\r\n--Xy\xff", 11) == 0);
    free (bytes);
    assert (strcmp (json_string_value (json_object_get (f, "last")), "data:application/octet-stream;base64,") == 0);
    json_decref (f);
    //  Data URLs: every length round-trips; bad ones are refused with a reason.
    uint8_t src [70];
    for (size_t i = 0; i < sizeof src; i++)
        src [i] = (uint8_t) (i * 37 + 11);
    for (size_t len = 0; len <= sizeof src; len++) {
        char *enc = vdgx_form_data_url_encode ("image/png", src, len);
        assert (enc && vdgx_form_data_url_decode (enc, sizeof src, mime, sizeof mime, &bytes,
                                                  &nbytes, why, sizeof why) == 0);
        assert (nbytes == len && (len == 0 || memcmp (bytes, src, len) == 0) && strcmp (mime, "image/png") == 0);
        free (bytes);
        free (enc);
    }
    static const struct { const char *url; int rc; } bad_urls [] = {
        { "http://example.com/cat.png", -1 }, { "data:image/png,rawbytes", -1 },
        { "data:image/png;base64", -1 }, { "data:image/png;base64,iVB*", -1 },
        { "data:image/png;base64,iV BO", -1 }, { "data:;base64,A", -1 },
        { "data:;base64,AAAA===", -1 }, { "data:image/png;base64,AAAAAAAA", -2 },
    };
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls [0]; i++) {
        int rc = vdgx_form_data_url_decode (bad_urls [i].url, 5, mime, sizeof mime, &bytes, &nbytes,
                                            why, sizeof why);
        if (verbose)
            printf ("\n   %s: %d %s", bad_urls [i].url, rc, why);
        assert (rc == bad_urls [i].rc && !bytes && why [0]);
    }
    assert (vdgx_form_data_url_decode ("DATA:text/plain;charset=utf-8;BASE64,aGk=", 5, mime, sizeof mime,
                                       &bytes, &nbytes, why, sizeof why) == 0);
    assert (strcmp (mime, "text/plain") == 0 && nbytes == 2 && memcmp (bytes, "hi", 2) == 0);
    free (bytes);
    //  Quoted boundary, a preamble, an empty value.
    const char pre [] = "preamble\r\n--b 1\r\nContent-Disposition: form-data; name=\"seconds\"\r\n\r\n"
                        "\r\n--b 1--";
    f = s_parse_ok ("multipart/form-data; boundary=\"b 1\"", pre, sizeof pre - 1);
    assert (strcmp (json_string_value (json_object_get (f, "seconds")), "") == 0);
    json_decref (f);
    //  A NUL in a value, a repeated field, a control byte in a name, no name, no end.
    const char nul [] = "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na\0b\r\n--XyZ--";
    s_parse_bad (mp, nul, sizeof nul - 1, "prompt");
    const char dup [] = "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na\r\n"
                        "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nb\r\n--XyZ--";
    s_parse_bad (mp, dup, sizeof dup - 1, "prompt");
    const char ctl [] = "--XyZ\r\nContent-Disposition: form-data; name=\"pr\x01mpt\"\r\n\r\na\r\n--XyZ--";
    s_parse_bad (mp, ctl, sizeof ctl - 1, "body");
    const char noname [] = "--XyZ\r\nContent-Disposition: form-data\r\n\r\na\r\n--XyZ--";
    s_parse_bad (mp, noname, sizeof noname - 1, "body");
    const char open [] = "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nno end";
    s_parse_bad (mp, open, sizeof open - 1, "prompt");
    s_parse_bad ("multipart/form-data", good, sizeof good - 1, "body");
    s_parse_bad ("multipart/form-data; boundary=other", good, sizeof good - 1, "body");
    const char bad8 [] = "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n\xff\xfe\r\n--XyZ--";
    s_parse_bad (mp, bad8, sizeof bad8 - 1, "prompt");
    //  urlencoded
    const char *ue = "application/x-www-form-urlencoded";
    const char *flat = "prompt=a+cat%21&model=wan&empty=&flag";
    f = s_parse_ok (ue, flat, strlen (flat));
    assert (strcmp (json_string_value (json_object_get (f, "prompt")), "a cat!") == 0);
    assert (strcmp (json_string_value (json_object_get (f, "empty")), "") == 0);
    assert (strcmp (json_string_value (json_object_get (f, "flag")), "") == 0);
    json_decref (f);
    s_parse_bad (ue, "prompt=a%00b", 12, "prompt");
    s_parse_bad (ue, "prompt=a&prompt=b", 17, "prompt");
    s_parse_bad (ue, "prompt=%zz", 10, "body");
    s_parse_bad (ue, "prompt=%4", 9, "body");
    s_parse_bad (ue, "%01=x", 5, "?");
    s_parse_bad ("text/plain", "a=b", 3, "body");
    printf ("OK\n");
}
