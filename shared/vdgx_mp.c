/*  vdgx_mp.c - strict msgpack map reading (see vdgx_mp.h). */
#include "vdgx_mp.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
vdgx_mp_error (vdgx_error_t *err, const char *field, const char *format, ...)
{
    if (!err)
        return -1;
    err->code = "bad_request";
    snprintf (err->field, sizeof err->field, "%s", field? field: "");
    char text [200];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    if (field && *field)
        snprintf (err->message, sizeof err->message, "%s: %s", field, text);
    else
        snprintf (err->message, sizeof err->message, "%s", text);
    return -1;
}

//  --------------------------------------------------------------------------
//  Raw pre-scan

static int
s_need (size_t off, size_t want, size_t size)
{
    return want <= size && off <= size - want? 0: -1;
}

static uint64_t
s_be (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p [i];
    return v;
}

int
vdgx_mp_check (const void *data, size_t size, vdgx_error_t *err)
{
    const uint8_t *p = data;
    size_t off = 0;
    uint64_t pending = 1;       //  objects still to read
    if (!data || size == 0)
        return vdgx_mp_error (err, "", "empty body");
    while (pending > 0) {
        if (off >= size)
            return vdgx_mp_error (err, "", "truncated msgpack");
        uint8_t b = p [off++];
        pending--;
        uint64_t skip = 0, items = 0;
        int lenbytes = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;
        else if (b >= 0x80 && b <= 0x8f) items = 2 * (uint64_t) (b & 0x0f);
        else if (b >= 0x90 && b <= 0x9f) items = b & 0x0f;
        else if (b >= 0xa0 && b <= 0xbf) skip = b & 0x1f;
        else switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; skip = 1; break;     //  ext: + type byte
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde:
            case 0xdd: case 0xdf: {
                int n = (b == 0xdc || b == 0xde)? 2: 4;
                if (s_need (off, (size_t) n, size))
                    return vdgx_mp_error (err, "", "truncated msgpack");
                items = s_be (p + off, n);
                off += (size_t) n;
                if (b >= 0xde)
                    items *= 2;
                break;
            }
            default:
                return vdgx_mp_error (err, "", "invalid msgpack byte 0x%02x", b);
        }
        if (lenbytes) {
            if (s_need (off, (size_t) lenbytes, size))
                return vdgx_mp_error (err, "", "truncated msgpack");
            skip += s_be (p + off, lenbytes);
            off += (size_t) lenbytes;
        }
        if (skip) {
            if (skip > size || s_need (off, (size_t) skip, size))
                return vdgx_mp_error (err, "", "truncated msgpack");
            off += (size_t) skip;
        }
        pending += items;
        //  Every object takes at least one byte: more pending objects than bytes is a lie.
        if (pending > size - off)
            return vdgx_mp_error (err, "", "truncated msgpack");
    }
    if (off != size)
        return vdgx_mp_error (err, "", "%zu trailing bytes after the body", size - off);
    return 0;
}

//  --------------------------------------------------------------------------
//  Map reading

static void
s_join (char *buf, size_t size, const char *path, const char *key)
{
    //  Field names longer than the buffer are cut (they only serve error messages).
    size_t len = 0;
    for (const char *p = path; p && *p && len + 1 < size; p++)
        buf [len++] = *p;
    if (path && *path && len + 1 < size)
        buf [len++] = '.';
    for (const char *p = key; *p && len + 1 < size; p++)
        buf [len++] = *p;
    buf [len] = 0;
}

int
vdgx_mp_map (vdgx_mp_map_t *self, const msgpack_object *obj, const char *path,
             const char *const *keys, size_t nkeys, vdgx_error_t *err)
{
    assert (self && keys && nkeys <= VDGX_MP_KEYS_MAX);
    memset (self, 0, sizeof *self);
    self->keys = keys;
    self->nkeys = nkeys;
    self->err = err;
    snprintf (self->path, sizeof self->path, "%s", path? path: "");
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return vdgx_mp_error (err, self->path, "expected a map");
    const msgpack_object_map *map = &obj->via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr [i].key;
        if (key->type != MSGPACK_OBJECT_STR)
            return vdgx_mp_error (err, self->path, "map keys must be strings");
        size_t k;
        for (k = 0; k < nkeys; k++)
            if (strlen (keys [k]) == key->via.str.size
            &&  memcmp (keys [k], key->via.str.ptr, key->via.str.size) == 0)
                break;
        if (k == nkeys) {
            char name [48], field [64];
            size_t n = key->via.str.size < sizeof name - 1? key->via.str.size: sizeof name - 1;
            if (n)      //  msgpack-c gives NULL for empty strings
                memcpy (name, key->via.str.ptr, n);
            name [n] = 0;
            for (size_t c = 0; c < n; c++)      //  keep the echoed key printable
                if ((unsigned char) name [c] < 0x20 || (unsigned char) name [c] >= 0x7f)
                    name [c] = '?';
            s_join (field, sizeof field, self->path, name);
            return vdgx_mp_error (err, field, "unknown key");
        }
        if (self->values [k]) {
            char field [64];
            s_join (field, sizeof field, self->path, keys [k]);
            return vdgx_mp_error (err, field, "repeated key");
        }
        self->values [k] = &map->ptr [i].val;
    }
    return 0;
}

void
vdgx_mp_field (const vdgx_mp_map_t *self, size_t index, char *buf, size_t size)
{
    assert (index < self->nkeys);
    s_join (buf, size, self->path, self->keys [index]);
}

int
vdgx_mp_fail (const vdgx_mp_map_t *self, size_t index, const char *format, ...)
{
    char field [64], text [200];
    vdgx_mp_field (self, index, field, sizeof field);
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    return vdgx_mp_error (self->err, field, "%s", text);
}

const msgpack_object *
vdgx_mp_value (const vdgx_mp_map_t *self, size_t index)
{
    assert (index < self->nkeys);
    return self->values [index];
}

//  Common start of every reader: 0 absent, 1 present, -1 missing-but-required.
static int
s_present (vdgx_mp_map_t *self, size_t index, bool required)
{
    assert (index < self->nkeys);
    if (self->values [index])
        return 1;
    if (required)
        return vdgx_mp_fail (self, index, "missing");
    return 0;
}

bool
vdgx_mp_utf8_valid (const char *text, size_t size)
{
    const unsigned char *p = (const unsigned char *) text;
    size_t i = 0;
    while (i < size) {
        unsigned c = p [i];
        if (c == 0)
            return false;
        if (c < 0x80) { i++; continue; }
        size_t n;
        unsigned min;
        if ((c & 0xe0) == 0xc0)      { n = 1; min = 0x80; c &= 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; min = 0x800; c &= 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; min = 0x10000; c &= 0x07; }
        else return false;
        if (size - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p [i + k] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (p [i + k] & 0x3f);
        }
        //  Overlong forms, UTF-16 surrogates and code points past U+10FFFF are invalid.
        if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
            return false;
        i += n + 1;
    }
    return true;
}

static int
s_str_obj (vdgx_mp_map_t *self, size_t index, size_t min, size_t max, const msgpack_object **out)
{
    const msgpack_object *v = self->values [index];
    if (v->type != MSGPACK_OBJECT_STR)
        return vdgx_mp_fail (self, index, "expected a string");
    if (v->via.str.size < min || v->via.str.size > max)
        return vdgx_mp_fail (self, index, "length %u is outside %zu..%zu bytes",
                             v->via.str.size, min, max);
    if (!vdgx_mp_utf8_valid (v->via.str.ptr, v->via.str.size))
        return vdgx_mp_fail (self, index, "not valid UTF-8 (or holds a NUL byte)");
    *out = v;
    return 0;
}

int
vdgx_mp_str (vdgx_mp_map_t *self, size_t index, bool required, size_t min, size_t max,
             char *buf, size_t bufsize)
{
    assert (buf && bufsize > max);
    int rc = s_present (self, index, required);
    if (rc <= 0)
        return rc;
    const msgpack_object *v = NULL;
    if (s_str_obj (self, index, min, max, &v))
        return -1;
    if (v->via.str.size)    //  msgpack-c gives NULL for empty strings
        memcpy (buf, v->via.str.ptr, v->via.str.size);
    buf [v->via.str.size] = 0;
    return 1;
}

int
vdgx_mp_strdup (vdgx_mp_map_t *self, size_t index, bool required, size_t min, size_t max,
                char **out)
{
    int rc = s_present (self, index, required);
    if (rc <= 0)
        return rc;
    const msgpack_object *v = NULL;
    if (s_str_obj (self, index, min, max, &v))
        return -1;
    char *copy = malloc (v->via.str.size + 1);
    if (!copy)
        return vdgx_mp_fail (self, index, "out of memory");
    if (v->via.str.size)
        memcpy (copy, v->via.str.ptr, v->via.str.size);
    copy [v->via.str.size] = 0;
    free (*out);
    *out = copy;
    return 1;
}

int
vdgx_mp_uint (vdgx_mp_map_t *self, size_t index, bool required, uint64_t min, uint64_t max,
              uint64_t *out)
{
    int rc = s_present (self, index, required);
    if (rc <= 0)
        return rc;
    const msgpack_object *v = self->values [index];
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return vdgx_mp_fail (self, index, "%" PRId64 " is outside %" PRIu64 "..%" PRIu64,
                             v->via.i64, min, max);
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return vdgx_mp_fail (self, index, "expected an unsigned integer");
    if (v->via.u64 < min || v->via.u64 > max)
        return vdgx_mp_fail (self, index, "%" PRIu64 " is outside %" PRIu64 "..%" PRIu64,
                             v->via.u64, min, max);
    *out = v->via.u64;
    return 1;
}

int
vdgx_mp_u32 (vdgx_mp_map_t *self, size_t index, bool required, uint32_t min, uint32_t max,
             uint32_t *out)
{
    uint64_t v = 0;
    int rc = vdgx_mp_uint (self, index, required, min, max, &v);
    if (rc == 1)
        *out = (uint32_t) v;
    return rc;
}

int
vdgx_mp_double (vdgx_mp_map_t *self, size_t index, bool required, double lo, double hi,
                bool lo_open, double *out)
{
    int rc = s_present (self, index, required);
    if (rc <= 0)
        return rc;
    const msgpack_object *v = self->values [index];
    double d;
    if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
        d = v->via.f64;
    else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        d = (double) v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        d = (double) v->via.i64;
    else
        return vdgx_mp_fail (self, index, "expected a number");
    if (!isfinite (d))
        return vdgx_mp_fail (self, index, "must be finite");
    if (d > hi || d < lo || (lo_open && d == lo))
        return vdgx_mp_fail (self, index, "%g is outside %s%g, %g]", d, lo_open? "(": "[", lo, hi);
    *out = d;
    return 1;
}

int
vdgx_mp_bool (vdgx_mp_map_t *self, size_t index, bool required, bool *out)
{
    int rc = s_present (self, index, required);
    if (rc <= 0)
        return rc;
    const msgpack_object *v = self->values [index];
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return vdgx_mp_fail (self, index, "expected true or false");
    *out = v->via.boolean;
    return 1;
}

int
vdgx_mp_enum (vdgx_mp_map_t *self, size_t index, bool required, const char *const *names,
              size_t nnames, int *out)
{
    int rc = s_present (self, index, required);
    if (rc <= 0)
        return rc;
    const msgpack_object *v = self->values [index];
    if (v->type != MSGPACK_OBJECT_STR)
        return vdgx_mp_fail (self, index, "expected a string");
    for (size_t i = 0; i < nnames; i++)
        if (strlen (names [i]) == v->via.str.size
        &&  memcmp (names [i], v->via.str.ptr, v->via.str.size) == 0) {
            *out = (int) i;
            return 1;
        }
    char allowed [160] = "";
    size_t len = 0;
    for (size_t i = 0; i < nnames && len < sizeof allowed; i++)
        len += (size_t) snprintf (allowed + len, sizeof allowed - len, "%s%s", i? ", ": "", names [i]);
    return vdgx_mp_fail (self, index, "must be one of: %s", allowed);
}

int
vdgx_mp_bin (vdgx_mp_map_t *self, size_t index, bool required, size_t max,
             const uint8_t **data, size_t *size)
{
    int rc = s_present (self, index, required);
    if (rc <= 0)
        return rc;
    const msgpack_object *v = self->values [index];
    if (v->type != MSGPACK_OBJECT_BIN)
        return vdgx_mp_fail (self, index, "expected binary data");
    if (v->via.bin.size > max)
        return vdgx_mp_fail (self, index, "%u bytes exceed the %zu byte cap", v->via.bin.size, max);
    *data = (const uint8_t *) v->via.bin.ptr;
    *size = v->via.bin.size;
    return 1;
}

int
vdgx_mp_const (vdgx_mp_map_t *self, size_t index, bool required, const char *expected)
{
    int value;
    const char *names [1] = { expected };
    return vdgx_mp_enum (self, index, required, names, 1, &value);
}

int
vdgx_mp_pack_cstr (msgpack_packer *pk, const char *text)
{
    if (!text)
        return msgpack_pack_nil (pk);
    size_t len = strlen (text);
    if (msgpack_pack_str (pk, len))
        return -1;
    return msgpack_pack_str_body (pk, text, len);
}

int
vdgx_mp_pack_key (msgpack_packer *pk, const char *key)
{
    return vdgx_mp_pack_cstr (pk, key);
}

//  --------------------------------------------------------------------------
//  Selftest

#undef NDEBUG
#include <assert.h>

static bool
s_streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

static int
s_check_hex (const char *hex, vdgx_error_t *err)
{
    uint8_t buf [256] = { 0 };
    size_t n = strlen (hex) / 2;
    assert (n <= sizeof buf);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf (hex + 2 * i, "%2x", &v);
        buf [i] = (uint8_t) v;
    }
    return vdgx_mp_check (buf, n, err);
}

static json_t *
s_to_json (const msgpack_object *o, int depth)
{
    if (depth > 32)
        return json_null ();
    switch (o->type) {
        case MSGPACK_OBJECT_NIL: return json_null ();
        case MSGPACK_OBJECT_BOOLEAN: return json_boolean (o->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return o->via.u64 > (uint64_t) INT64_MAX? json_real ((double) o->via.u64)
                                                    : json_integer ((json_int_t) o->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer ((json_int_t) o->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return isfinite (o->via.f64)? json_real (o->via.f64): json_null ();
        case MSGPACK_OBJECT_STR: {
            json_t *j = json_stringn (o->via.str.ptr, o->via.str.size);
            return j? j: json_null ();      //  not UTF-8
        }
        case MSGPACK_OBJECT_BIN: {
            json_t *j = json_object ();
            json_object_set_new (j, "bin_bytes", json_integer ((json_int_t) o->via.bin.size));
            return j;
        }
        case MSGPACK_OBJECT_ARRAY: {
            json_t *j = json_array ();
            for (uint32_t i = 0; i < o->via.array.size; i++)
                json_array_append_new (j, s_to_json (&o->via.array.ptr [i], depth + 1));
            return j;
        }
        case MSGPACK_OBJECT_MAP: {
            json_t *j = json_object ();
            for (uint32_t i = 0; i < o->via.map.size; i++) {
                const msgpack_object *k = &o->via.map.ptr [i].key;
                if (k->type != MSGPACK_OBJECT_STR || k->via.str.size > 255)
                    continue;
                char key [256];
                memcpy (key, k->via.str.ptr, k->via.str.size);
                key [k->via.str.size] = 0;
                json_object_set_new (j, key, s_to_json (&o->via.map.ptr [i].val, depth + 1));
            }
            return j;
        }
        default: return json_null ();
    }
}

json_t *
vdgx_mp_to_json (const msgpack_object *obj)
{
    return s_to_json (obj, 0);
}

void
vdgx_mp_test (bool verbose)
{
    (void) verbose;
    vdgx_error_t err;
    //  Pre-scan: good objects.
    assert (s_check_hex ("80", &err) == 0);                     //  {}
    assert (s_check_hex ("81a161c3", &err) == 0);               //  {a: true}
    assert (s_check_hex ("92cd0100a0", &err) == 0);             //  [256, ""]
    assert (s_check_hex ("c403010203", &err) == 0);             //  bin 3
    assert (s_check_hex ("d6ff00000001", &err) == 0);           //  timestamp ext
    //  Bad ones.
    assert (s_check_hex ("", &err) == -1);
    assert (s_check_hex ("c1", &err) == -1 && strstr (err.message, "0xc1"));
    assert (s_check_hex ("81a161", &err) == -1);                //  value missing
    assert (s_check_hex ("80c0", &err) == -1 && strstr (err.message, "trailing"));
    assert (s_check_hex ("dfffffffff", &err) == -1);            //  4G-entry map in 5 bytes
    assert (s_check_hex ("ddffffffff", &err) == -1);
    assert (s_check_hex ("dbffffffff41", &err) == -1);          //  4 GB string
    assert (s_check_hex ("cd01", &err) == -1);
    assert (s_check_hex ("c7ff01", &err) == -1);

    //  UTF-8.
    { const char *u = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x8e\xa5"; assert (vdgx_mp_utf8_valid (u, strlen (u))); }
    assert (!vdgx_mp_utf8_valid ("a\0b", 3));
    assert (!vdgx_mp_utf8_valid ("\xc0\xaf", 2));                //  overlong '/'
    assert (!vdgx_mp_utf8_valid ("\xed\xa0\x80", 3));            //  surrogate
    assert (!vdgx_mp_utf8_valid ("\xf4\x90\x80\x80", 4));        //  > U+10FFFF
    assert (!vdgx_mp_utf8_valid ("\xe2\x82", 2));                //  truncated
    assert (!vdgx_mp_utf8_valid ("\xff", 1));

    //  Map reading.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    vdgx_mp_pack_key (&pk, "name"); vdgx_mp_pack_cstr (&pk, "wan");
    vdgx_mp_pack_key (&pk, "n"); msgpack_pack_uint32 (&pk, 7);
    vdgx_mp_pack_key (&pk, "x"); msgpack_pack_double (&pk, 2.5);
    vdgx_mp_pack_key (&pk, "flag"); msgpack_pack_true (&pk);
    vdgx_mp_pack_key (&pk, "kind"); vdgx_mp_pack_cstr (&pk, "b");
    assert (vdgx_mp_check (sb.data, sb.size, &err) == 0);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t off = 0;
    assert (msgpack_unpack_next (&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS);
    static const char *keys [] = { "name", "n", "x", "flag", "kind", "opt" };
    static const char *kinds [] = { "a", "b" };
    vdgx_mp_map_t map;
    assert (vdgx_mp_map (&map, &up.data, "req", keys, 6, &err) == 0);
    char name [8];
    uint32_t n = 0;
    double x = 0;
    bool flag = false;
    int kind = -1;
    assert (vdgx_mp_str (&map, 0, true, 1, 7, name, sizeof name) == 1 && s_streq (name, "wan"));
    assert (vdgx_mp_u32 (&map, 1, true, 1, 10, &n) == 1 && n == 7);
    assert (vdgx_mp_double (&map, 2, true, 0, 10, true, &x) == 1 && x == 2.5);
    assert (vdgx_mp_bool (&map, 3, true, &flag) == 1 && flag);
    assert (vdgx_mp_enum (&map, 4, true, kinds, 2, &kind) == 1 && kind == 1);
    uint64_t opt = 42;
    assert (vdgx_mp_uint (&map, 5, false, 0, 1, &opt) == 0 && opt == 42);
    assert (vdgx_mp_uint (&map, 5, true, 0, 1, &opt) == -1);
    assert (s_streq (err.field, "req.opt") && strstr (err.message, "missing"));
    //  Wrong type / range errors name the field.
    assert (vdgx_mp_u32 (&map, 1, true, 8, 10, &n) == -1 && s_streq (err.field, "req.n"));
    assert (vdgx_mp_str (&map, 1, true, 0, 7, name, sizeof name) == -1);
    assert (vdgx_mp_double (&map, 2, true, 2.5, 10, true, &x) == -1);   //  open bound
    assert (vdgx_mp_double (&map, 2, true, 2.5, 10, false, &x) == 1);
    assert (vdgx_mp_str (&map, 0, true, 4, 7, name, sizeof name) == -1);
    assert (vdgx_mp_const (&map, 4, true, "a") == -1 && strstr (err.message, "one of: a"));
    assert (vdgx_mp_bool (&map, 1, true, &flag) == -1);
    //  Unknown key.
    assert (vdgx_mp_map (&map, &up.data, "", keys, 4, &err) == -1);
    assert (s_streq (err.field, "kind") && strstr (err.message, "unknown key"));
    //  Not a map.
    assert (vdgx_mp_map (&map, &up.data.via.map.ptr [0].val, "a.b", keys, 4, &err) == -1);
    assert (s_streq (err.field, "a.b") && s_streq (err.code, "bad_request"));
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);

    //  msgpack -> JSON for introspection replies.
    msgpack_sbuffer_init (&sb);
    msgpack_packer jp;
    msgpack_packer_init (&jp, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&jp, 5);
    msgpack_pack_str_with_body (&jp, "a", 1);
    msgpack_pack_array (&jp, 4);
    msgpack_pack_true (&jp);
    msgpack_pack_nil (&jp);
    msgpack_pack_double (&jp, 1.5);
    msgpack_pack_int64 (&jp, -7);
    msgpack_pack_str_with_body (&jp, "big", 3);
    msgpack_pack_uint64 (&jp, UINT64_MAX);
    msgpack_pack_str_with_body (&jp, "bin", 3);
    msgpack_pack_bin_with_body (&jp, "xyz", 3);
    msgpack_pack_int (&jp, 7);                  //  a non-string key: skipped
    msgpack_pack_str_with_body (&jp, "x", 1);
    msgpack_pack_str_with_body (&jp, "nan", 3);
    msgpack_pack_double (&jp, NAN);
    msgpack_unpacked_init (&up);
    assert (msgpack_unpack_next (&up, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    json_t *json = vdgx_mp_to_json (&up.data);
    char *text = json_dumps (json, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION (17));
    assert (text && s_streq (text, "{\"a\":[true,null,1.5,-7],\"big\":1.8446744073709552e19,"
                                   "\"bin\":{\"bin_bytes\":3},\"nan\":null}"));
    free (text);
    json_decref (json);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
}
