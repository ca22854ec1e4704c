/*  vdgx_json.c - a small strict JSON reader so kernels/ depends on nothing but libc.
    It rejects anything RFC 8259 does not allow (trailing commas, comments, bad escapes,
    control characters, invalid UTF-16 surrogates), duplicate object keys and nesting deeper
    than 64 levels, so a hostile checkpoint header cannot exhaust the stack.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_DEPTH 64

typedef struct {
    const char *p, *end, *start;
    char *err;
} s_parser_t;

char *
vdgx_kstrdupf (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *s = NULL;
    if (vasprintf (&s, fmt, ap) < 0)
        s = NULL;
    va_end (ap);
    return s;
}

static void
s_fail (s_parser_t *ps, const char *what)
{
    if (!ps->err)
        ps->err = vdgx_kstrdupf ("JSON: %s at byte %zu", what, (size_t) (ps->p - ps->start));
}

static void
s_skip_ws (s_parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int
s_hex4 (s_parser_t *ps, uint32_t *out)
{
    if (ps->end - ps->p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = ps->p [i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t) (c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t) (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t) (c - 'A' + 10);
        else return -1;
    }
    ps->p += 4;
    *out = v;
    return 0;
}

static char *
s_parse_string (s_parser_t *ps)
{
    assert (*ps->p == '"');
    ps->p++;
    //  The decoded string is never longer than the source text.
    const char *q = ps->p;
    while (q < ps->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= ps->end) {
        s_fail (ps, "unterminated string");
        return NULL;
    }
    char *out = malloc ((size_t) (q - ps->p) + 1), *o = out;
    if (!out) {
        s_fail (ps, "out of memory");
        return NULL;
    }
    while (true) {
        if (ps->p >= ps->end) {
            s_fail (ps, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char) *ps->p++;
        if (c == '"') {
            *o = 0;
            return out;
        }
        if (c < 0x20) {
            s_fail (ps, "control character in string");
            break;
        }
        if (c != '\\') {
            *o++ = (char) c;
            continue;
        }
        if (ps->p >= ps->end) {
            s_fail (ps, "bad escape");
            break;
        }
        char e = *ps->p++;
        if (e == '"' || e == '\\' || e == '/') *o++ = e;
        else if (e == 'b') *o++ = '\b';
        else if (e == 'f') *o++ = '\f';
        else if (e == 'n') *o++ = '\n';
        else if (e == 'r') *o++ = '\r';
        else if (e == 't') *o++ = '\t';
        else if (e == 'u') {
            uint32_t cp;
            if (s_hex4 (ps, &cp)) {
                s_fail (ps, "bad \\u escape");
                break;
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                s_fail (ps, "lone low surrogate");
                break;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (ps->end - ps->p < 2 || ps->p [0] != '\\' || ps->p [1] != 'u') {
                    s_fail (ps, "lone high surrogate");
                    break;
                }
                ps->p += 2;
                if (s_hex4 (ps, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                    s_fail (ps, "bad surrogate pair");
                    break;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) {
                s_fail (ps, "\\u0000 in string");
                break;
            }
            //  Encoded length <= the 6 (or 12) escape characters it replaces.
            if (cp < 0x80) *o++ = (char) cp;
            else if (cp < 0x800) {
                *o++ = (char) (0xc0 | (cp >> 6));
                *o++ = (char) (0x80 | (cp & 0x3f));
            }
            else if (cp < 0x10000) {
                *o++ = (char) (0xe0 | (cp >> 12));
                *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char) (0x80 | (cp & 0x3f));
            }
            else {
                *o++ = (char) (0xf0 | (cp >> 18));
                *o++ = (char) (0x80 | ((cp >> 12) & 0x3f));
                *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char) (0x80 | (cp & 0x3f));
            }
        }
        else {
            s_fail (ps, "bad escape");
            break;
        }
    }
    free (out);
    return NULL;
}

static int
s_parse_number (s_parser_t *ps, vdgx_json_t *v)
{
    const char *s = ps->p;
    const char *p = s;
    bool integer = true;
    if (p < ps->end && *p == '-')
        p++;
    if (p >= ps->end)
        return -1;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    else
        return -1;
    if (p < ps->end && *p == '.') {
        integer = false;
        p++;
        if (p >= ps->end || *p < '0' || *p > '9')
            return -1;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= ps->end || *p < '0' || *p > '9')
            return -1;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t len = (size_t) (p - s);
    char buf [64];
    if (len >= sizeof (buf)) {
        //  Long numbers are legal but never needed here; a float parse of them is fine.
        integer = false;
        len = sizeof (buf) - 1;
    }
    memcpy (buf, s, len);
    buf [len] = 0;
    v->type = VDGX_JSON_NUMBER;
    v->number = strtod (buf, NULL);
    if (integer) {
        errno = 0;
        long long ll = strtoll (buf, NULL, 10);
        if (errno == 0) {
            v->is_integer = true;
            v->integer = ll;
        }
    }
    ps->p = p;
    return 0;
}

static int
s_cmp_keys (const void *a, const void *b)
{
    return strcmp (**(char * const * const *) a, **(char * const * const *) b);
}

static vdgx_json_t *s_parse_value (s_parser_t *ps, int depth);

static int
s_push (vdgx_json_t *v, size_t *cap, char *key, vdgx_json_t *item)
{
    if (v->count == *cap) {
        size_t ncap = *cap? *cap * 2: 8;
        vdgx_json_t **items = realloc (v->items, ncap * sizeof (*items));
        if (!items)
            return -1;
        v->items = items;
        if (v->type == VDGX_JSON_OBJECT) {
            char **keys = realloc (v->keys, ncap * sizeof (*keys));
            if (!keys)
                return -1;
            v->keys = keys;
        }
        *cap = ncap;
    }
    if (v->type == VDGX_JSON_OBJECT)
        v->keys [v->count] = key;
    v->items [v->count++] = item;
    return 0;
}

static vdgx_json_t *
s_parse_value (s_parser_t *ps, int depth)
{
    s_skip_ws (ps);
    if (ps->p >= ps->end) {
        s_fail (ps, "unexpected end");
        return NULL;
    }
    if (depth > S_MAX_DEPTH) {
        s_fail (ps, "nesting too deep");
        return NULL;
    }
    vdgx_json_t *v = calloc (1, sizeof (*v));
    if (!v) {
        s_fail (ps, "out of memory");
        return NULL;
    }
    char c = *ps->p;
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        char close = obj? '}': ']';
        v->type = obj? VDGX_JSON_OBJECT: VDGX_JSON_ARRAY;
        size_t cap = 0;
        ps->p++;
        s_skip_ws (ps);
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return v;
        }
        while (true) {
            char *key = NULL;
            if (obj) {
                s_skip_ws (ps);
                if (ps->p >= ps->end || *ps->p != '"') {
                    s_fail (ps, "expected a string key");
                    break;
                }
                key = s_parse_string (ps);
                if (!key)
                    break;
                s_skip_ws (ps);
                if (ps->p >= ps->end || *ps->p != ':') {
                    free (key);
                    s_fail (ps, "expected ':'");
                    break;
                }
                ps->p++;
            }
            vdgx_json_t *item = s_parse_value (ps, depth + 1);
            if (!item) {
                free (key);
                break;
            }
            if (s_push (v, &cap, key, item)) {
                free (key);
                vdgx_json_destroy (&item);
                s_fail (ps, "out of memory");
                break;
            }
            s_skip_ws (ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                if (obj && v->count > 1) {
                    //  Duplicate keys: sort pointers to the keys, compare neighbours.
                    char ***idx = malloc (v->count * sizeof (*idx));
                    if (!idx) {
                        s_fail (ps, "out of memory");
                        break;
                    }
                    for (size_t i = 0; i < v->count; i++)
                        idx [i] = &v->keys [i];
                    qsort (idx, v->count, sizeof (*idx), s_cmp_keys);
                    bool dup = false;
                    for (size_t i = 1; i < v->count && !dup; i++)
                        if (strcmp (*idx [i - 1], *idx [i]) == 0) {
                            if (!ps->err)
                                ps->err = vdgx_kstrdupf ("JSON: duplicate key \"%.200s\"", *idx [i]);
                            dup = true;
                        }
                    free (idx);
                    if (dup)
                        break;
                }
                return v;
            }
            s_fail (ps, obj? "expected ',' or '}'": "expected ',' or ']'");
            break;
        }
        vdgx_json_destroy (&v);
        return NULL;
    }
    if (c == '"') {
        v->type = VDGX_JSON_STRING;
        v->string = s_parse_string (ps);
        if (!v->string) {
            free (v);
            return NULL;
        }
        return v;
    }
    static const struct { const char *word; vdgx_json_type_t type; bool value; } lits [] = {
        { "true", VDGX_JSON_BOOL, true }, { "false", VDGX_JSON_BOOL, false },
        { "null", VDGX_JSON_NULL, false }
    };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen (lits [i].word);
        if ((size_t) (ps->end - ps->p) >= n && memcmp (ps->p, lits [i].word, n) == 0) {
            ps->p += n;
            v->type = lits [i].type;
            v->boolean = lits [i].value;
            return v;
        }
    }
    if (s_parse_number (ps, v) == 0)
        return v;
    s_fail (ps, "unexpected character");
    free (v);
    return NULL;
}

vdgx_json_t *
vdgx_json_parse (const char *text, size_t len, char **err)
{
    s_parser_t ps = { .p = text, .end = text + len, .start = text, .err = NULL };
    vdgx_json_t *v = s_parse_value (&ps, 0);
    if (v) {
        s_skip_ws (&ps);
        if (ps.p != ps.end) {
            s_fail (&ps, "trailing data");
            vdgx_json_destroy (&v);
        }
    }
    if (!v) {
        if (err)
            *err = ps.err? ps.err: vdgx_kstrdupf ("JSON: parse error");
        else
            free (ps.err);
    }
    return v;
}

void
vdgx_json_destroy (vdgx_json_t **self_p)
{
    assert (self_p);
    vdgx_json_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        if (self->keys)
            free (self->keys [i]);
        vdgx_json_destroy (&self->items [i]);
    }
    free (self->keys);
    free (self->items);
    free (self->string);
    free (self);
    *self_p = NULL;
}

vdgx_json_t *
vdgx_json_get (const vdgx_json_t *obj, const char *key)
{
    if (!obj || obj->type != VDGX_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp (obj->keys [i], key) == 0)
            return obj->items [i];
    return NULL;
}

void
vdgx_json_test (bool verbose)
{
    printf (" * vdgx_json: ");
    const char *ok = " {\"a\": [1, -2, 3.5e2, true, false, null], \"b\\u00e9\\ud83d\\ude00\": "
                     "{\"c\": \"x\\n\\\"y\"}, \"big\": 12345678901234} ";
    char *err = NULL;
    vdgx_json_t *j = vdgx_json_parse (ok, strlen (ok), &err);
    assert (j && !err);
    vdgx_json_t *a = vdgx_json_get (j, "a");
    assert (a && a->type == VDGX_JSON_ARRAY && a->count == 6);
    assert (a->items [1]->is_integer && a->items [1]->integer == -2);
    assert (!a->items [2]->is_integer && a->items [2]->number == 350.0);
    assert (a->items [3]->type == VDGX_JSON_BOOL && a->items [3]->boolean);
    assert (a->items [5]->type == VDGX_JSON_NULL);
    vdgx_json_t *b = vdgx_json_get (j, "b\xc3\xa9\xf0\x9f\x98\x80");
    assert (b && strcmp (vdgx_json_get (b, "c")->string, "x\n\"y") == 0);
    assert (vdgx_json_get (j, "big")->integer == 12345678901234LL);
    vdgx_json_destroy (&j);
    assert (j == NULL);

    const char *bad [] = {
        "", "{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{'a':1}", "[01]", "[1.]", "[.5]", "[1e]",
        "\"abc", "\"a\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\u0000\"", "\"a\tb\"", "[1] 2",
        "{\"a\":1,\"a\":2}", "tru", "[nul]", "{\"a\":1 /*c*/}", "-", "[+1]",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        err = NULL;
        j = vdgx_json_parse (bad [i], strlen (bad [i]), &err);
        if (j || !err)
            fprintf (stderr, "accepted bad JSON: %s\n", bad [i]);
        assert (!j && err);
        if (verbose)
            printf ("\n   %s -> %s", bad [i], err);
        free (err);
    }
    //  deep nesting is refused, not a stack overflow
    size_t n = 100000;
    char *deep = malloc (n);
    memset (deep, '[', n);
    err = NULL;
    j = vdgx_json_parse (deep, n, &err);
    assert (!j && err && strstr (err, "deep"));
    free (err);
    free (deep);
    printf ("OK\n");
}
