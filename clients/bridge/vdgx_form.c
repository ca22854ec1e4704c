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

//  Adds name = value (value checked: UTF-8 by jansson, no control bytes but tab/CR/LF).
static int
s_add (json_t *fields, const char *name, size_t nlen, const char *value, size_t vlen,
       bool file, vdgx_form_err_t *err)
{
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
    if (file)
        v = json_string ("<file>");
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
                rc = s_add (fields, name, (size_t) nl, value, (size_t) vl, false, err);
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
        char name [VDGX_FORM_NAME_MAX + 2], filename [256];
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
        if (s_add (fields, name, (size_t) name_len, data, (size_t) (stop - data), file, err))
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
    assert (strcmp (json_string_value (json_object_get (f, "input_reference")), "<file>") == 0);
    json_decref (f);
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
