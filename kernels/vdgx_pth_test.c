/*  vdgx_pth_test.c - selftest of the .pth reader. torch is not available here, so the test
    writes the torch.save layout itself: a zip of stored entries "<archive>/data.pkl",
    "<archive>/byteorder", "<archive>/data/<key>", "<archive>/version",
    "<archive>/.data/serialization_id", each entry's data 64-byte aligned through a padding
    extra field, and a protocol-2 pickle of an OrderedDict state dict (with the _metadata
    BUILD that nn.Module.state_dict adds) whose tensors are
    _rebuild_tensor_v2(persistent_id ('storage', torch.<T>Storage, key, 'cpu', numel),
    offset, size, stride, False, OrderedDict()).
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint8_t *d;
    size_t n, cap;
} s_buf_t;

static void
s_put (s_buf_t *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->d = realloc (b->d, b->cap);
        assert (b->d);
    }
    memcpy (b->d + b->n, p, n);
    b->n += n;
}
static void s_u8 (s_buf_t *b, uint8_t v) { s_put (b, &v, 1); }
static void s_le (s_buf_t *b, uint64_t v, int bytes) { for (int i = 0; i < bytes; i++) s_u8 (b, (uint8_t) (v >> (8 * i))); }

//  pickle helpers (protocol 2, as torch.save writes by default)
static void
s_str (s_buf_t *b, const char *s)
{
    s_u8 (b, 'X');
    s_le (b, strlen (s), 4);
    s_put (b, s, strlen (s));
}
static void
s_int (s_buf_t *b, int64_t v)
{
    if (v >= 0 && v < 256) { s_u8 (b, 'K'); s_u8 (b, (uint8_t) v); }
    else if (v >= 0 && v < 65536) { s_u8 (b, 'M'); s_le (b, (uint64_t) v, 2); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { s_u8 (b, 'J'); s_le (b, (uint64_t) v, 4); }
    else { s_u8 (b, 0x8a); s_u8 (b, 8); s_le (b, (uint64_t) v, 8); }
}
static void
s_glob (s_buf_t *b, const char *mod, const char *name)
{
    s_u8 (b, 'c');
    s_put (b, mod, strlen (mod));
    s_u8 (b, '\n');
    s_put (b, name, strlen (name));
    s_u8 (b, '\n');
}
static void
s_int_tuple (s_buf_t *b, int n, const int64_t *v)
{
    if (n == 0) { s_u8 (b, ')'); return; }
    if (n > 3) s_u8 (b, '(');
    for (int i = 0; i < n; i++)
        s_int (b, v [i]);
    s_u8 (b, n == 1? 0x85: n == 2? 0x86: n == 3? 0x87: 't');
}

typedef struct {
    const char *name;
    const char *storage_type;
    const char *key;
    int64_t storage_numel, offset;
    int ndim;
    int64_t shape [4], stride [4];
} s_tdesc_t;

//  One tensor value: _rebuild_tensor_v2 (memo 2) with its argument tuple.
static void
s_tensor (s_buf_t *b, const s_tdesc_t *t, int *memo)
{
    if (*memo == 3) {                           //  first use: GLOBAL, memoized as 2
        s_glob (b, "torch._utils", "_rebuild_tensor_v2");
        s_u8 (b, 'q'); s_u8 (b, 2);
    }
    else {
        s_u8 (b, 'h'); s_u8 (b, 2);             //  BINGET _rebuild_tensor_v2
    }
    s_u8 (b, '(');
    s_u8 (b, '(');
    s_str (b, "storage");
    s_glob (b, "torch", t->storage_type);
    s_u8 (b, 'q'); s_u8 (b, (uint8_t) ++(*memo));
    s_str (b, t->key);
    s_str (b, "cpu");
    s_int (b, t->storage_numel);
    s_u8 (b, 't');
    s_u8 (b, 'Q');                              //  BINPERSID
    s_int (b, t->offset);
    s_int_tuple (b, t->ndim, t->shape);
    s_int_tuple (b, t->ndim, t->stride);
    s_u8 (b, 0x89);                             //  requires_grad False
    s_u8 (b, 'h'); s_u8 (b, 0);                 //  OrderedDict()
    s_u8 (b, ')');
    s_u8 (b, 'R');
    s_u8 (b, 't');
    s_u8 (b, 'R');
}

//  The state dict pickle: OrderedDict items, then the _metadata BUILD.
static void
s_pickle (s_buf_t *b, const s_tdesc_t *ts, int nt, bool nested)
{
    int memo = 3;
    s_u8 (b, 0x80); s_u8 (b, 2);
    s_glob (b, "collections", "OrderedDict");
    s_u8 (b, 'q'); s_u8 (b, 0);
    s_u8 (b, ')');
    s_u8 (b, 'R');
    s_u8 (b, 'q'); s_u8 (b, 1);
    s_u8 (b, '(');
    for (int i = 0; i < nt - (nested? 1: 0); i++) {
        s_str (b, ts [i].name);
        s_tensor (b, &ts [i], &memo);
    }
    if (nested) {       //  {"sub": {"x": tensor}, "epoch": 5}
        s_str (b, "sub");
        s_u8 (b, '}');
        s_str (b, ts [nt - 1].name);
        s_tensor (b, &ts [nt - 1], &memo);
        s_u8 (b, 's');
        s_str (b, "epoch");
        s_int (b, 5);
    }
    s_u8 (b, 'u');
    //  state: {'_metadata': OrderedDict([('', {'version': 1})])}
    s_u8 (b, '}');
    s_str (b, "_metadata");
    s_u8 (b, 'h'); s_u8 (b, 0);
    s_u8 (b, ')');
    s_u8 (b, 'R');
    s_str (b, "");
    s_u8 (b, '}');
    s_str (b, "version");
    s_int (b, 1);
    s_u8 (b, 's');
    s_u8 (b, 's');
    s_u8 (b, 's');
    s_u8 (b, 'b');
    s_u8 (b, '.');
}

typedef struct {
    const char *name;
    const void *data;
    size_t len;
    uint16_t method;
} s_zent_t;

static uint32_t
s_crc (const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p [i];
        for (int k = 0; k < 8; k++)
            c = c & 1? 0xedb88320u ^ (c >> 1): c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void
s_zip (s_buf_t *z, const s_zent_t *es, int n, bool zip64)
{
    uint64_t *offs = calloc ((size_t) n, sizeof (uint64_t));
    for (int i = 0; i < n; i++) {
        offs [i] = z->n;
        size_t nl = strlen (es [i].name);
        //  pad so the data starts 64-byte aligned (the 'FB' extra field torch uses)
        size_t base = z->n + 30 + nl + 4;
        size_t pad = (64 - base % 64) % 64;
        s_le (z, 0x04034b50u, 4); s_le (z, 20, 2); s_le (z, 0, 2); s_le (z, es [i].method, 2);
        s_le (z, 0, 2); s_le (z, 0, 2); s_le (z, s_crc (es [i].data, es [i].len), 4);
        s_le (z, es [i].len, 4); s_le (z, es [i].len, 4); s_le (z, nl, 2); s_le (z, 4 + pad, 2);
        s_put (z, es [i].name, nl);
        s_le (z, 0x4246, 2); s_le (z, pad, 2);
        for (size_t p = 0; p < pad; p++)
            s_u8 (z, 'Z');
        s_put (z, es [i].data, es [i].len);
    }
    uint64_t cd = z->n;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen (es [i].name);
        s_le (z, 0x02014b50u, 4); s_le (z, 45, 2); s_le (z, 45, 2); s_le (z, 0, 2); s_le (z, es [i].method, 2);
        s_le (z, 0, 2); s_le (z, 0, 2); s_le (z, s_crc (es [i].data, es [i].len), 4);
        s_le (z, zip64? 0xffffffffu: es [i].len, 4); s_le (z, zip64? 0xffffffffu: es [i].len, 4);
        s_le (z, nl, 2); s_le (z, zip64? 28: 0, 2); s_le (z, 0, 2); s_le (z, 0, 2); s_le (z, 0, 2);
        s_le (z, 0, 4); s_le (z, zip64? 0xffffffffu: offs [i], 4);
        s_put (z, es [i].name, nl);
        if (zip64) {
            s_le (z, 1, 2); s_le (z, 24, 2);
            s_le (z, es [i].len, 8); s_le (z, es [i].len, 8); s_le (z, offs [i], 8);
        }
    }
    uint64_t cd_size = z->n - cd;
    if (zip64) {
        uint64_t rec = z->n;
        s_le (z, 0x06064b50u, 4); s_le (z, 44, 8); s_le (z, 45, 2); s_le (z, 45, 2); s_le (z, 0, 4); s_le (z, 0, 4);
        s_le (z, (uint64_t) n, 8); s_le (z, (uint64_t) n, 8); s_le (z, cd_size, 8); s_le (z, cd, 8);
        s_le (z, 0x07064b50u, 4); s_le (z, 0, 4); s_le (z, rec, 8); s_le (z, 1, 4);
    }
    s_le (z, 0x06054b50u, 4); s_le (z, 0, 2); s_le (z, 0, 2);
    s_le (z, zip64? 0xffff: (uint64_t) n, 2); s_le (z, zip64? 0xffff: (uint64_t) n, 2);
    s_le (z, zip64? 0xffffffffu: cd_size, 4); s_le (z, zip64? 0xffffffffu: cd, 4); s_le (z, 0, 2);
    free (offs);
}

//  A .npy file: magic, version (1: u16 header length, 2: u32), the header padded with
//  spaces and a newline to a multiple of 64, then the data.
static void
s_npy (s_buf_t *b, int version, const char *header, const void *data, size_t len)
{
    size_t pre = version == 1? 10: 12, hl = strlen (header) + 1;
    size_t pad = (64 - (pre + hl) % 64) % 64;
    s_put (b, "\x93NUMPY", 6);
    s_u8 (b, (uint8_t) version);
    s_u8 (b, 0);
    s_le (b, hl + pad, version == 1? 2: 4);
    s_put (b, header, hl - 1);
    for (size_t i = 0; i < pad; i++)
        s_u8 (b, ' ');
    s_u8 (b, '\n');
    s_put (b, data, len);
}

//  A whole .pth image: the given pickle plus storages 0..4 of the test state dict.
static float s_w [12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static uint16_t s_b [4] = { 0x3f80, 0xbf80, 0x4000, 0x4040 };       //  1, -1, 2, 3 in bf16
static uint16_t s_h [4] = { 0x3c00, 0x4000, 0xc200, 0x3800 };       //  1, 2, -3, 0.5 in f16
static float s_scalar = 42.0f;
static uint8_t s_e4 [4] = { 0x38, 0x7e, 0xb8, 0x00 };               //  1, 448, -1, 0

static void
s_image (s_buf_t *z, const s_buf_t *pkl, bool zip64, uint16_t pkl_method)
{
    s_zent_t es [] = {
        { "archive/data.pkl", pkl->d, pkl->n, pkl_method },
        { "archive/byteorder", "little", 6, 0 },
        { "archive/data/0", s_w, sizeof (s_w), 0 },
        { "archive/data/1", s_b, sizeof (s_b), 0 },
        { "archive/data/2", s_h, sizeof (s_h), 0 },
        { "archive/data/3", &s_scalar, 4, 0 },
        { "archive/data/4", s_e4, 4, 0 },
        { "archive/version", "3\n", 2, 0 },
        { "archive/.data/serialization_id", "1234567890", 10, 0 },
    };
    s_zip (z, es, (int) (sizeof (es) / sizeof (es [0])), zip64);
}

static const s_tdesc_t s_good [] = {
    { "w", "FloatStorage", "0", 12, 0, 2, { 3, 4 }, { 4, 1 } },
    { "b", "BFloat16Storage", "1", 4, 0, 1, { 4 }, { 1 } },
    { "h", "HalfStorage", "2", 4, 0, 2, { 2, 2 }, { 2, 1 } },
    { "view", "FloatStorage", "0", 12, 4, 2, { 2, 4 }, { 4, 1 } },
    { "scalar", "FloatStorage", "3", 1, 0, 0, { 0 }, { 0 } },
    { "x", "Float8_e4m3fnStorage", "4", 4, 0, 2, { 4, 1 }, { 1, 7 } },   //  size-1 dim, any stride
};
#define S_NGOOD ((int) (sizeof (s_good) / sizeof (s_good [0])))

static char *
s_parse_err (const s_buf_t *z)
{
    vdgx_pth_result_t r;
    char *err = NULL;
    int rc = vdgx_pth_parse (z->d, z->n, &r, &err);
    if (rc == 0) {
        vdgx_pth_result_free (&r);
        return NULL;
    }
    assert (err);
    return err;
}

//  Wraps a raw pickle (no tensors needed) in a valid archive and returns the error.
static char *
s_pickle_err (const uint8_t *p, size_t n)
{
    s_buf_t pk = { 0 }, z = { 0 };
    s_put (&pk, p, n);
    s_image (&z, &pk, false, 0);
    char *err = s_parse_err (&z);
    free (pk.d);
    free (z.d);
    return err;
}

static void
s_expect (char *err, const char *what, bool verbose)
{
    if (!err || !strstr (err, what))
        fprintf (stderr, "\nexpected \"%s\", got \"%s\"\n", what, err? err: "(accepted)");
    assert (err && strstr (err, what));
    if (verbose)
        printf ("\n   %s", err);
    free (err);
}

void
vdgx_pth_test (bool verbose)
{
    printf (" * vdgx_pth: ");
    for (int z64 = 0; z64 < 2; z64++) {
        s_buf_t pk = { 0 }, z = { 0 };
        s_pickle (&pk, s_good, S_NGOOD, true);
        s_image (&z, &pk, z64, 0);
        assert (vdgx_pth_detect (z.d, z.n));
        vdgx_pth_result_t r;
        char *err = NULL;
        int rc = vdgx_pth_parse (z.d, z.n, &r, &err);
        if (rc)
            fprintf (stderr, "\n%s\n", err);
        assert (rc == 0 && r.count == 6);
        assert (strcmp (r.tensors [0].name, "w") == 0 && r.tensors [0].dtype == VDGX_DTYPE_F32);
        assert (r.tensors [0].ndim == 2 && r.tensors [0].shape [1] == 4 && r.tensors [0].nbytes == 48);
        assert (memcmp (r.tensors [0].data, s_w, 48) == 0 && ((uintptr_t) r.tensors [0].data - (uintptr_t) z.d) % 64 == 0);
        assert (r.tensors [1].dtype == VDGX_DTYPE_BF16 && memcmp (r.tensors [1].data, s_b, 8) == 0);
        assert (r.tensors [2].dtype == VDGX_DTYPE_F16 && memcmp (r.tensors [2].data, s_h, 8) == 0);
        assert (strcmp (r.tensors [3].name, "view") == 0 && r.tensors [3].data == (const uint8_t *) r.tensors [0].data + 16);
        assert (r.tensors [4].ndim == 0 && r.tensors [4].nbytes == 4);
        assert (strcmp (r.tensors [5].name, "sub.x") == 0 && r.tensors [5].dtype == VDGX_DTYPE_F8_E4M3);
        vdgx_pth_result_free (&r);
        //  through vdgx_ckpt (buffer and file, detected by content)
        vdgx_ckpt_t *c = vdgx_ckpt_open_buffer (z.d, z.n, &err);
        assert (c && vdgx_ckpt_count (c) == 6);
        float f [8];
        assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "h"), f, NULL) == 0 && f [2] == -3.0f && f [3] == 0.5f);
        assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "view"), f, NULL) == 0 && f [0] == 5.0f && f [7] == 12.0f);
        assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "sub.x"), f, NULL) == 0 && f [1] == 448.0f);
        vdgx_ckpt_destroy (&c);
        if (z64) {
            char path [] = "/tmp/vdgx-pth-test-XXXXXX";
            int fd = mkstemp (path);
            assert (fd >= 0 && write (fd, z.d, z.n) == (ssize_t) z.n);
            close (fd);
            c = vdgx_ckpt_open (path, &err);
            assert (c && vdgx_ckpt_count (c) == 6);
            vdgx_weight_t w;
            assert (vdgx_weight_from_ckpt (&w, c, "w", VDGX_WFMT_BF16, false, NULL) == 0 && w.n == 3 && w.k == 4);
            vdgx_weight_host_free (&w);
            vdgx_ckpt_destroy (&c);
            unlink (path);
        }
        //  every truncation fails cleanly; so do random corruptions
        for (size_t cut = 0; cut < z.n; cut++) {
            err = NULL;
            assert (vdgx_pth_parse (z.d, cut, &r, &err) == -1 && err);
            free (err);
        }
        uint32_t seed = 99;
        for (int it = 0; it < 3000; it++) {
            s_buf_t m = { 0 };
            s_put (&m, z.d, z.n);
            for (int k = 0; k < 1 + it % 4; k++) {
                seed = seed * 1664525u + 1013904223u;
                m.d [(seed >> 8) % m.n] ^= (uint8_t) (1u << ((seed >> 4) % 8));
            }
            err = NULL;
            if (vdgx_pth_parse (m.d, m.n, &r, &err) == 0)
                vdgx_pth_result_free (&r);      //  a flip in padding or a name can stay valid
            free (err);
            free (m.d);
        }
        free (pk.d);
        free (z.d);
    }

    //  hostile and malformed tensors
    static const struct { s_tdesc_t t; const char *expect; } bad [] = {
        { { "nc", "FloatStorage", "0", 12, 0, 2, { 4, 3 }, { 1, 4 } }, "non-contiguous" },
        { { "oob", "FloatStorage", "0", 12, 8, 2, { 2, 4 }, { 4, 1 } }, "past the end" },
        { { "neg", "FloatStorage", "0", 12, -1, 1, { 2 }, { 1 } }, "past the end" },
        { { "miss", "FloatStorage", "9", 12, 0, 1, { 2 }, { 1 } }, "missing" },
        { { "size", "FloatStorage", "1", 12, 0, 1, { 2 }, { 1 } }, "does not match" },
        { { "key", "FloatStorage", "../0", 12, 0, 1, { 2 }, { 1 } }, "bad storage key" },
        { { "type", "UntypedStorage", "0", 12, 0, 1, { 2 }, { 1 } }, "forbidden global torch.UntypedStorage" },
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        s_buf_t pk = { 0 }, z = { 0 };
        s_pickle (&pk, &bad [i].t, 1, false);
        s_image (&z, &pk, false, 0);
        s_expect (s_parse_err (&z), bad [i].expect, verbose);
        free (pk.d);
        free (z.d);
    }
    //  hostile pickles
    {
        static const uint8_t unknown [] = { 0x80, 2, 'i', 'o', 's', '\n', 's', 'y', 's', '\n', '.' };
        s_expect (s_pickle_err (unknown, sizeof (unknown)), "unsupported opcode 0x69", verbose);
        static const uint8_t sys [] = { 0x80, 2, 'c', 'o', 's', '\n', 's', 'y', 's', 't', 'e', 'm', '\n', 'X', 2, 0, 0, 0, 'l', 's', 0x85, 'R', '.' };
        s_expect (s_pickle_err (sys, sizeof (sys)), "forbidden global os.system", verbose);
        static const uint8_t sg [] = { 0x80, 4, 0x8c, 8, 'b', 'u', 'i', 'l', 't', 'i', 'n', 's', 0x8c, 4, 'e', 'v', 'a', 'l', 0x93, '.' };
        s_expect (s_pickle_err (sg, sizeof (sg)), "forbidden global builtins.eval", verbose);
        static const uint8_t huge [] = { 0x80, 2, 'X', 0xf0, 0xff, 0xff, 0xff, 'a', '.' };
        s_expect (s_pickle_err (huge, sizeof (huge)), "truncated", verbose);
        static const uint8_t memo [] = { 0x80, 2, '}', 'r', 0xff, 0xff, 0xff, 0xff, '.' };
        s_expect (s_pickle_err (memo, sizeof (memo)), "memo index too large", verbose);
        static const uint8_t get [] = { 0x80, 2, 'h', 7, '.' };
        s_expect (s_pickle_err (get, sizeof (get)), "memo entry missing", verbose);
        static const uint8_t notdict [] = { 0x80, 2, ']', '.' };
        s_expect (s_pickle_err (notdict, sizeof (notdict)), "not a dict", verbose);
        static const uint8_t nostop [] = { 0x80, 2, '}' };
        s_expect (s_pickle_err (nostop, sizeof (nostop)), "no STOP", verbose);
        static const uint8_t under [] = { 0x80, 2, 's', '.' };
        s_expect (s_pickle_err (under, sizeof (under)), "underflow", verbose);
        static const uint8_t redstore [] = { 0x80, 2, 'c', 't', 'o', 'r', 'c', 'h', '\n', 'F', 'l', 'o', 'a', 't', 'S', 't', 'o', 'r', 'a', 'g', 'e', '\n', ')', 'R', '.' };
        s_expect (s_pickle_err (redstore, sizeof (redstore)), "REDUCE of a storage class", verbose);
        static const uint8_t bigint [] = { 0x80, 2, 0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, '.' };
        s_expect (s_pickle_err (bigint, sizeof (bigint)), "wider than 64", verbose);
        static const uint8_t proto [] = { 0x80, 9, '}', '.' };
        s_expect (s_pickle_err (proto, sizeof (proto)), "protocol", verbose);
        //  deep recursion: a million MARKs, a million nested lists, dicts nested 40 deep
        size_t n = (1u << 20) + 8;
        uint8_t *deep = malloc (n + 4);
        deep [0] = 0x80; deep [1] = 2;
        memset (deep + 2, '(', n);
        deep [n + 2] = '.';
        s_expect (s_pickle_err (deep, n + 3), "too many MARKs", verbose);
        memset (deep + 2, ']', n);
        s_expect (s_pickle_err (deep, n + 3), "stack deeper", verbose);
        free (deep);
        s_buf_t nest = { 0 };
        s_u8 (&nest, 0x80); s_u8 (&nest, 2);
        for (int d = 0; d < 40; d++) {
            s_u8 (&nest, '}');
            s_str (&nest, "k");
        }
        s_u8 (&nest, '}');
        for (int d = 0; d < 40; d++)
            s_u8 (&nest, 's');
        s_u8 (&nest, '.');
        s_expect (s_pickle_err (nest.d, nest.n), "nested deeper", verbose);
        free (nest.d);
    }
    //  archive problems: compressed pickle, CRC mismatch, not a zip, no data.pkl
    {
        s_buf_t pk = { 0 }, z = { 0 };
        s_pickle (&pk, s_good, 1, false);
        s_image (&z, &pk, false, 8);
        s_expect (s_parse_err (&z), "compressed", verbose);
        free (z.d);
        z = (s_buf_t) { 0 };
        s_image (&z, &pk, false, 0);
        z.d [64 + 2] ^= 1;      //  inside data.pkl (the first entry's data starts at 64)
        s_expect (s_parse_err (&z), "CRC", verbose);
        free (z.d);
        z = (s_buf_t) { 0 };
        s_zent_t only [] = { { "archive/other", "x", 1, 0 } };
        s_zip (&z, only, 1, false);
        s_expect (s_parse_err (&z), "no <archive>/data.pkl entry nor .npy", verbose);
        free (z.d);
        free (pk.d);
        s_buf_t junk = { 0 };
        static const char nz [] = "PK\x03\x04 not really a zip at all, no directory";
        s_put (&junk, nz, sizeof (nz) - 1);
        s_expect (s_parse_err (&junk), "end-of-central-directory", verbose);
        free (junk.d);
    }
    //  numpy .npz (np.savez): stored "<name>.npy" entries, versions 1 and 2 headers
    {
        s_buf_t a = { 0 }, b = { 0 }, f = { 0 };
        s_npy (&a, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", s_w, 24);
        const double d8 [4] = { 0.5, -1.25, 3.0, 1e-3 };
        s_npy (&b, 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 4), }", d8, 32);
        const uint8_t flag = 1;
        s_npy (&f, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", &flag, 1);
        s_zent_t es [] = { { "w.npy", a.d, a.n, 0 }, { "other_tokens.npy", b.d, b.n, 0 },
                           { "flag.npy", f.d, f.n, 0 } };
        s_buf_t z = { 0 };
        s_zip (&z, es, 3, false);
        char *err = NULL;
        vdgx_ckpt_t *c = vdgx_ckpt_open_buffer (z.d, z.n, &err);
        if (!c)
            fprintf (stderr, "\n%s\n", err);
        assert (c && vdgx_ckpt_count (c) == 3);
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (c, "other_tokens");
        assert (t && t->dtype == VDGX_DTYPE_F64 && t->ndim == 2 && t->shape [0] == 1 && t->shape [1] == 4);
        float v [6];
        assert (vdgx_ckpt_read_f32 (t, v, NULL) == 0 && v [0] == 0.5f && v [1] == -1.25f && v [3] == 1e-3f);
        assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "w"), v, NULL) == 0 && v [5] == 6.0f);
        t = vdgx_ckpt_find (c, "flag");
        assert (t && t->ndim == 0 && t->dtype == VDGX_DTYPE_U8 && t->nbytes == 1);
        vdgx_ckpt_destroy (&c);
        free (z.d);
        //  refusals: big-endian, Fortran order, a size that does not match, compressed
        const struct { const char *hdr; size_t len; uint16_t method; const char *what; } bad [] = {
            { "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24, 0, "unsupported dtype" },
            { "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, 0, "Fortran" },
            { "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", 24, 0, "does not match" },
            { "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24, 8, "compressed" },
            { "{'descr': '<f4', 'shape': (2, 3), }", 24, 0, "lacks" } };
        for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
            s_buf_t e = { 0 }, zz = { 0 };
            s_npy (&e, 1, bad [i].hdr, s_w, bad [i].len);
            s_zent_t one [] = { { "x.npy", e.d, e.n, bad [i].method } };
            s_zip (&zz, one, 1, false);
            s_expect (s_parse_err (&zz), bad [i].what, verbose);
            free (e.d);
            free (zz.d);
        }
        free (a.d); free (b.d); free (f.d);
    }
    printf ("OK\n");
}
