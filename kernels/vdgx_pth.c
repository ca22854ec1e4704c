/*  vdgx_pth.c - PyTorch .pth (torch.save zip format) without Python.

    The zip: stored (uncompressed) entries "<archive>/data.pkl", "<archive>/data/<key>", ...,
    found through the central directory (zip64 records too: an 11 GB T5 checkpoint needs
    them). The pickle is run on a tiny VM that knows only the opcodes a state dict of tensors
    uses and only these globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
    the torch.<Type>Storage classes. Nothing is ever executed: REDUCE of OrderedDict makes a
    dict, REDUCE of _rebuild_tensor_v2 makes a tensor description pointing into the mapped
    storage entry. Anything else is an error, as are non-contiguous tensors.

    numpy .npz archives (np.savez: a zip of stored "<name>.npy" entries, no data.pkl) are read
    here too: each .npy is the magic "\x93NUMPY", a version (1: u16 header length; 2, 3:
    u32), and a dict literal with 'descr' (little-endian or byte-sized f2/f4/f8/i4/i8/u1/b1),
    'fortran_order' (False only) and 'shape'; the tensor is named by the entry without .npy.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_PICKLE    (256u << 20)
#define S_MAX_STACK     (1u << 20)
#define S_MAX_MEMO      (1u << 22)
#define S_MAX_DEPTH     32              //  nested dicts when flattening

bool
vdgx_pth_detect (const void *buf, size_t size)
{
    return size >= 4 && memcmp (buf, "PK\x03\x04", 4) == 0;
}

void
vdgx_pth_result_free (vdgx_pth_result_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        free ((char *) r->tensors [i].name);
    free (r->tensors);
    r->tensors = NULL;
    r->count = 0;
}

static uint16_t s_u16 (const uint8_t *p) { return (uint16_t) (p [0] | p [1] << 8); }
static uint32_t s_u32 (const uint8_t *p) { return (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24; }
static uint64_t s_u64 (const uint8_t *p) { return (uint64_t) s_u32 (p) | (uint64_t) s_u32 (p + 4) << 32; }

static uint32_t s_crc_table [256];
static pthread_once_t s_crc_once = PTHREAD_ONCE_INIT;

static void
s_crc_init (void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1? 0xedb88320u ^ (c >> 1): c >> 1;
        s_crc_table [i] = c;
    }
}

static uint32_t
s_crc32 (const uint8_t *p, size_t n)
{
    pthread_once (&s_crc_once, s_crc_init);
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = s_crc_table [(c ^ p [i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

//  ---------------------------------------------------------------------------------------
//  Zip central directory

typedef struct {
    const char *name;           //  points into the directory (not NUL-terminated)
    size_t name_len;
    uint16_t method;
    uint32_t crc;
    uint64_t size;              //  uncompressed == compressed for stored entries
    uint64_t comp_size;
    const uint8_t *data;        //  NULL until resolved
} s_entry_t;

typedef struct {
    const uint8_t *buf;
    size_t size;
    s_entry_t *entries;
    size_t count;
    char *err;
} s_zip_t;

static int
s_zerr (s_zip_t *z, const char *msg)
{
    if (!z->err)
        z->err = vdgx_kstrdupf ("zip: %s", msg);
    return -1;
}

static int
s_zip_open (s_zip_t *z)
{
    const uint8_t *b = z->buf;
    size_t size = z->size;
    if (size < 22)
        return s_zerr (z, "too short for an end-of-directory record");
    size_t eocd = SIZE_MAX;
    size_t lowest = size - 22 > 65535? size - 22 - 65535: 0;
    for (size_t p = size - 22 + 1; p-- > lowest; )
        if (s_u32 (b + p) == 0x06054b50u && p + 22 + s_u16 (b + p + 20) == size) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX)
        return s_zerr (z, "no end-of-central-directory record");
    uint64_t entries = s_u16 (b + eocd + 10), cd_size = s_u32 (b + eocd + 12), cd_off = s_u32 (b + eocd + 16);
    uint64_t cd_limit = eocd;
    if (s_u16 (b + eocd + 4) != 0 || s_u16 (b + eocd + 6) != 0)
        if (s_u16 (b + eocd + 4) != 0xffff)
            return s_zerr (z, "multi-disk archives are not supported");
    if (entries == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        //  zip64: locator right before the record, pointing at the zip64 record
        if (eocd < 20 || s_u32 (b + eocd - 20) != 0x07064b50u)
            return s_zerr (z, "zip64 locator missing");
        uint64_t z64 = s_u64 (b + eocd - 12);
        if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || s_u32 (b + z64) != 0x06064b50u)
            return s_zerr (z, "bad zip64 end-of-directory record");
        entries = s_u64 (b + z64 + 32);
        cd_size = s_u64 (b + z64 + 40);
        cd_off = s_u64 (b + z64 + 48);
        cd_limit = z64;
    }
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
        return s_zerr (z, "central directory outside the file");
    if (entries > cd_size / 46)
        return s_zerr (z, "entry count larger than the directory");
    z->entries = calloc ((size_t) entries + 1, sizeof (s_entry_t));
    if (!z->entries)
        return s_zerr (z, "out of memory");
    const uint8_t *p = b + cd_off, *end = b + cd_off + cd_size;
    for (uint64_t i = 0; i < entries; i++) {
        if (end - p < 46 || s_u32 (p) != 0x02014b50u)
            return s_zerr (z, "bad central directory entry");
        s_entry_t *e = &z->entries [z->count];
        uint16_t flags = s_u16 (p + 8);
        e->method = s_u16 (p + 10);
        e->crc = s_u32 (p + 16);
        e->comp_size = s_u32 (p + 20);
        e->size = s_u32 (p + 24);
        size_t nlen = s_u16 (p + 28), xlen = s_u16 (p + 30), clen = s_u16 (p + 32);
        uint64_t local = s_u32 (p + 42);
        if ((size_t) (end - p) - 46 < nlen + xlen + clen)
            return s_zerr (z, "central directory entry overruns the directory");
        if (flags & 1)
            return s_zerr (z, "encrypted entries are not supported");
        e->name = (const char *) p + 46;
        e->name_len = nlen;
        //  zip64 extra field: the 32-bit fields set to all ones follow in a fixed order
        const uint8_t *x = p + 46 + nlen, *xend = x + xlen;
        while (xend - x >= 4) {
            uint16_t id = s_u16 (x), len = s_u16 (x + 2);
            if ((size_t) (xend - x) - 4 < len)
                return s_zerr (z, "extra field overruns its entry");
            if (id == 0x0001) {
                const uint8_t *q = x + 4, *qend = x + 4 + len;
                if (e->size == 0xffffffffu) {
                    if (qend - q < 8) return s_zerr (z, "short zip64 extra field");
                    e->size = s_u64 (q); q += 8;
                }
                if (e->comp_size == 0xffffffffu) {
                    if (qend - q < 8) return s_zerr (z, "short zip64 extra field");
                    e->comp_size = s_u64 (q); q += 8;
                }
                if (local == 0xffffffffu) {
                    if (qend - q < 8) return s_zerr (z, "short zip64 extra field");
                    local = s_u64 (q); q += 8;
                }
            }
            x += 4 + len;
        }
        //  resolve the data start from the local header (its own name/extra lengths)
        if (local > cd_off || cd_off - local < 30 || s_u32 (b + local) != 0x04034b50u)
            return s_zerr (z, "bad local header offset");
        uint64_t data = local + 30 + s_u16 (b + local + 26) + s_u16 (b + local + 28);
        if (data > cd_off || e->comp_size > cd_off - data)
            return s_zerr (z, "entry data outside the archive");
        e->data = b + data;
        z->count++;
        p += 46 + nlen + xlen + clen;
    }
    return 0;
}

static const s_entry_t *
s_zip_find (s_zip_t *z, const char *name)
{
    size_t n = strlen (name);
    for (size_t i = 0; i < z->count; i++)
        if (z->entries [i].name_len == n && memcmp (z->entries [i].name, name, n) == 0)
            return &z->entries [i];
    return NULL;
}

//  ---------------------------------------------------------------------------------------
//  Pickle VM

typedef enum {
    S_MARK, S_NONE, S_BOOL, S_INT, S_STR, S_TUPLE, S_LIST, S_DICT, S_GLOBAL, S_STORAGE, S_TENSOR
} s_kind_t;

typedef enum { S_G_ODICT, S_G_REBUILD, S_G_STORAGE } s_gkind_t;

typedef struct s_obj_t s_obj_t;
struct s_obj_t {
    s_kind_t kind;
    int64_t i;                  //  int / bool value; global kind
    char *s;                    //  string (NUL-terminated); storage key
    size_t n, cap;              //  items (tuple, list), pairs (dict)
    s_obj_t **items;            //  dict: key, value, key, value...
    vdgx_dtype_t dtype;         //  global storage type, storage, tensor
    s_obj_t *storage;           //  tensor
    int64_t offset, numel;      //  tensor offset (elements); storage numel
    int ndim;
    int64_t shape [VDGX_MAX_DIMS], stride [VDGX_MAX_DIMS];
    s_obj_t *next_alloc;        //  every object is on this list and freed at the end
};

typedef struct {
    const uint8_t *p, *end, *start;
    s_obj_t *allocs;
    s_obj_t **stack;
    size_t sp, scap;
    size_t *marks;
    size_t msp, mcap;
    s_obj_t **memo;
    size_t memo_n, memo_len;        //  slots allocated, entries set (MEMOIZE's next index)
    char *err;
} s_vm_t;

static int
s_verr (s_vm_t *vm, const char *fmt, const char *arg)
{
    if (!vm->err) {
        char msg [256];
        snprintf (msg, sizeof (msg), fmt, arg? arg: "");
        vm->err = vdgx_kstrdupf ("pickle: %s (at byte %zu)", msg, (size_t) (vm->p - vm->start));
    }
    return -1;
}

static s_obj_t *
s_new (s_vm_t *vm, s_kind_t kind)
{
    s_obj_t *o = calloc (1, sizeof (*o));
    if (!o)
        return NULL;
    o->kind = kind;
    o->next_alloc = vm->allocs;
    vm->allocs = o;
    return o;
}

static int
s_push (s_vm_t *vm, s_obj_t *o)
{
    if (!o)
        return s_verr (vm, "out of memory", NULL);
    if (vm->sp == vm->scap) {
        if (vm->scap >= S_MAX_STACK)
            return s_verr (vm, "stack deeper than the limit", NULL);
        size_t ncap = vm->scap? vm->scap * 2: 64;
        s_obj_t **s = realloc (vm->stack, ncap * sizeof (*s));
        if (!s)
            return s_verr (vm, "out of memory", NULL);
        vm->stack = s;
        vm->scap = ncap;
    }
    vm->stack [vm->sp++] = o;
    return 0;
}

//  Popping below the last MARK is an underflow too (as in CPython's unpickler).
static bool
s_at_mark (s_vm_t *vm)
{
    return vm->sp == 0 || (vm->msp > 0 && vm->sp <= vm->marks [vm->msp - 1]);
}

static s_obj_t *
s_pop (s_vm_t *vm)
{
    if (s_at_mark (vm)) {
        s_verr (vm, "stack underflow", NULL);
        return NULL;
    }
    return vm->stack [--vm->sp];
}

static s_obj_t *
s_top (s_vm_t *vm)
{
    if (s_at_mark (vm)) {
        s_verr (vm, "stack underflow", NULL);
        return NULL;
    }
    return vm->stack [vm->sp - 1];
}

//  Pops everything above the last MARK; returns the first index of the items.
static int
s_pop_mark (s_vm_t *vm, size_t *first)
{
    if (vm->msp == 0)
        return s_verr (vm, "no MARK on the stack", NULL);
    *first = vm->marks [--vm->msp];
    if (*first > vm->sp)
        return s_verr (vm, "corrupt MARK", NULL);
    return 0;
}

static int
s_append (s_vm_t *vm, s_obj_t *o, s_obj_t *item)
{
    if (o->n == o->cap) {
        size_t ncap = o->cap? o->cap * 2: 8;
        s_obj_t **items = realloc (o->items, ncap * sizeof (*items));
        if (!items)
            return s_verr (vm, "out of memory", NULL);
        o->items = items;
        o->cap = ncap;
    }
    o->items [o->n++] = item;
    return 0;
}

static s_obj_t *
s_tuple (s_vm_t *vm, s_obj_t **items, size_t n)
{
    s_obj_t *t = s_new (vm, S_TUPLE);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (s_append (vm, t, items [i]))
            return NULL;
    return t;
}

static int
s_need (s_vm_t *vm, size_t n)
{
    if ((size_t) (vm->end - vm->p) < n)
        return s_verr (vm, "truncated", NULL);
    return 0;
}

static int
s_memo_put (s_vm_t *vm, uint64_t idx)
{
    s_obj_t *top = s_top (vm);
    if (!top)
        return -1;
    if (idx >= S_MAX_MEMO)
        return s_verr (vm, "memo index too large", NULL);
    if (idx >= vm->memo_n) {
        size_t nn = vm->memo_n? vm->memo_n: 64;
        while (nn <= idx)
            nn *= 2;
        s_obj_t **m = realloc (vm->memo, nn * sizeof (*m));
        if (!m)
            return s_verr (vm, "out of memory", NULL);
        memset (m + vm->memo_n, 0, (nn - vm->memo_n) * sizeof (*m));
        vm->memo = m;
        vm->memo_n = nn;
    }
    if (!vm->memo [idx])
        vm->memo_len++;
    vm->memo [idx] = top;
    return 0;
}

static int
s_memo_get (s_vm_t *vm, uint64_t idx)
{
    if (idx >= vm->memo_n || !vm->memo [idx])
        return s_verr (vm, "memo entry missing", NULL);
    return s_push (vm, vm->memo [idx]);
}

static int
s_global (s_vm_t *vm, const char *module, const char *name)
{
    static const struct { const char *name; vdgx_dtype_t dtype; } storages [] = {
        { "FloatStorage", VDGX_DTYPE_F32 }, { "HalfStorage", VDGX_DTYPE_F16 },
        { "BFloat16Storage", VDGX_DTYPE_BF16 }, { "Float8_e4m3fnStorage", VDGX_DTYPE_F8_E4M3 },
        { "Float8_e5m2Storage", VDGX_DTYPE_F8_E5M2 }, { "DoubleStorage", VDGX_DTYPE_F64 },
        { "LongStorage", VDGX_DTYPE_I64 }, { "IntStorage", VDGX_DTYPE_I32 }, { "ByteStorage", VDGX_DTYPE_U8 },
    };
    s_obj_t *g = s_new (vm, S_GLOBAL);
    if (!g)
        return s_verr (vm, "out of memory", NULL);
    if (strcmp (module, "collections") == 0 && strcmp (name, "OrderedDict") == 0)
        g->i = S_G_ODICT;
    else if (strcmp (module, "torch._utils") == 0 && strcmp (name, "_rebuild_tensor_v2") == 0)
        g->i = S_G_REBUILD;
    else {
        bool found = false;
        if (strcmp (module, "torch") == 0)
            for (size_t i = 0; i < sizeof (storages) / sizeof (storages [0]) && !found; i++)
                if (strcmp (name, storages [i].name) == 0) {
                    g->i = S_G_STORAGE;
                    g->dtype = storages [i].dtype;
                    found = true;
                }
        if (!found) {
            char what [160];
            snprintf (what, sizeof (what), "%.70s.%.70s", module, name);
            return s_verr (vm, "forbidden global %s", what);
        }
    }
    return s_push (vm, g);
}

static int
s_read_string (s_vm_t *vm, uint64_t len, s_obj_t **out)
{
    if (s_need (vm, len))       //  checks huge lengths before allocating
        return -1;
    s_obj_t *o = s_new (vm, S_STR);
    if (!o || !(o->s = malloc ((size_t) len + 1)))
        return s_verr (vm, "out of memory", NULL);
    memcpy (o->s, vm->p, (size_t) len);
    o->s [len] = 0;
    o->n = (size_t) len;
    vm->p += len;
    *out = o;
    return 0;
}

//  GLOBAL's "module\nname\n" lines.
static int
s_read_line (s_vm_t *vm, char *dst, size_t cap)
{
    const uint8_t *nl = memchr (vm->p, '\n', (size_t) (vm->end - vm->p));
    if (!nl || (size_t) (nl - vm->p) >= cap)
        return s_verr (vm, "bad GLOBAL line", NULL);
    memcpy (dst, vm->p, (size_t) (nl - vm->p));
    dst [nl - vm->p] = 0;
    vm->p = nl + 1;
    return 0;
}

static bool
s_int_tuple (const s_obj_t *t, int64_t *out, int *ndim)
{
    if (t->kind != S_TUPLE || t->n > VDGX_MAX_DIMS)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items [i]->kind != S_INT)
            return false;
        out [i] = t->items [i]->i;
    }
    *ndim = (int) t->n;
    return true;
}

static int
s_reduce (s_vm_t *vm)
{
    s_obj_t *args = s_pop (vm), *fn = args? s_pop (vm): NULL;
    if (!fn)
        return -1;
    if (fn->kind != S_GLOBAL || args->kind != S_TUPLE)
        return s_verr (vm, "REDUCE needs a global and a tuple", NULL);
    if (fn->i == S_G_ODICT) {
        if (args->n != 0)
            return s_verr (vm, "OrderedDict with arguments", NULL);
        return s_push (vm, s_new (vm, S_DICT));
    }
    if (fn->i != S_G_REBUILD)
        return s_verr (vm, "REDUCE of a storage class", NULL);
    //  _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
    if (args->n < 6 || args->n > 7 || args->items [0]->kind != S_STORAGE || args->items [1]->kind != S_INT
        || args->items [4]->kind != S_BOOL || args->items [5]->kind != S_DICT
        || (args->n == 7 && args->items [6]->kind != S_DICT && args->items [6]->kind != S_NONE))
        return s_verr (vm, "unexpected _rebuild_tensor_v2 arguments", NULL);
    s_obj_t *t = s_new (vm, S_TENSOR);
    if (!t)
        return s_verr (vm, "out of memory", NULL);
    int sdim = 0;
    if (!s_int_tuple (args->items [2], t->shape, &t->ndim) || !s_int_tuple (args->items [3], t->stride, &sdim)
        || sdim != t->ndim)
        return s_verr (vm, "tensor size/stride must be int tuples of equal length (at most 6 dims)", NULL);
    t->storage = args->items [0];
    t->offset = args->items [1]->i;
    t->dtype = t->storage->dtype;
    return s_push (vm, t);
}

static int
s_persid (s_vm_t *vm)
{
    s_obj_t *pid = s_pop (vm);
    if (!pid)
        return -1;
    //  ('storage', storage_type, key, location, numel)
    if (pid->kind != S_TUPLE || pid->n != 5 || pid->items [0]->kind != S_STR || strcmp (pid->items [0]->s, "storage")
        || pid->items [1]->kind != S_GLOBAL || pid->items [1]->i != S_G_STORAGE || pid->items [2]->kind != S_STR
        || pid->items [3]->kind != S_STR || pid->items [4]->kind != S_INT || pid->items [4]->i < 0)
        return s_verr (vm, "persistent id is not ('storage', type, key, location, numel)", NULL);
    const char *key = pid->items [2]->s;
    if (!key [0] || strchr (key, '/') || strlen (key) != pid->items [2]->n || strcmp (key, "..") == 0)
        return s_verr (vm, "bad storage key", NULL);
    s_obj_t *s = s_new (vm, S_STORAGE);
    if (!s)
        return s_verr (vm, "out of memory", NULL);
    s->dtype = pid->items [1]->dtype;
    s->s = pid->items [2]->s;       //  shared with the key string object (same arena)
    s->numel = pid->items [4]->i;
    return s_push (vm, s);
}

static s_obj_t *
s_run (s_vm_t *vm)
{
    while (vm->p < vm->end) {
        uint8_t op = *vm->p++;
        s_obj_t *o = NULL, *a, *b2, *c;
        size_t first;
        char mod [256], name [256];
        int rc = 0;
        switch (op) {
            case 0x80:      //  PROTO
                if (s_need (vm, 1)) return NULL;
                if (*vm->p < 2 || *vm->p > 5) { s_verr (vm, "unsupported protocol", NULL); return NULL; }
                vm->p++;
                break;
            case 0x95:      //  FRAME (a length hint; the data follows inline)
                if (s_need (vm, 8)) return NULL;
                vm->p += 8;
                break;
            case '}': rc = s_push (vm, s_new (vm, S_DICT)); break;
            case ']': rc = s_push (vm, s_new (vm, S_LIST)); break;
            case ')': rc = s_push (vm, s_new (vm, S_TUPLE)); break;
            case 'N': rc = s_push (vm, s_new (vm, S_NONE)); break;
            case 0x88: case 0x89:   //  NEWTRUE, NEWFALSE
                o = s_new (vm, S_BOOL);
                if (o) o->i = op == 0x88;
                rc = s_push (vm, o);
                break;
            case '(':
                if (vm->msp == vm->mcap) {
                    if (vm->mcap >= S_MAX_STACK) { s_verr (vm, "too many MARKs", NULL); return NULL; }
                    size_t ncap = vm->mcap? vm->mcap * 2: 32;
                    size_t *m = realloc (vm->marks, ncap * sizeof (*m));
                    if (!m) { s_verr (vm, "out of memory", NULL); return NULL; }
                    vm->marks = m;
                    vm->mcap = ncap;
                }
                vm->marks [vm->msp++] = vm->sp;
                break;
            case 'X': case 0x8c: case 0x8d: {       //  BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                size_t w = op == 'X'? 4: op == 0x8c? 1: 8;
                if (s_need (vm, w)) return NULL;
                uint64_t len = w == 4? s_u32 (vm->p): w == 1? *vm->p: s_u64 (vm->p);
                vm->p += w;
                if (s_read_string (vm, len, &o)) return NULL;
                rc = s_push (vm, o);
                break;
            }
            case 'q': case 'h':     //  BINPUT, BINGET
                if (s_need (vm, 1)) return NULL;
                rc = op == 'q'? s_memo_put (vm, *vm->p): s_memo_get (vm, *vm->p);
                vm->p++;
                break;
            case 'r': case 'j':     //  LONG_BINPUT, LONG_BINGET
                if (s_need (vm, 4)) return NULL;
                rc = op == 'r'? s_memo_put (vm, s_u32 (vm->p)): s_memo_get (vm, s_u32 (vm->p));
                vm->p += 4;
                break;
            case 0x94:      //  MEMOIZE
                rc = s_memo_put (vm, vm->memo_len);
                break;
            case 'J':
                if (s_need (vm, 4)) return NULL;
                o = s_new (vm, S_INT);
                if (o) o->i = (int32_t) s_u32 (vm->p);
                vm->p += 4;
                rc = s_push (vm, o);
                break;
            case 'K':
                if (s_need (vm, 1)) return NULL;
                o = s_new (vm, S_INT);
                if (o) o->i = *vm->p;
                vm->p += 1;
                rc = s_push (vm, o);
                break;
            case 'M':
                if (s_need (vm, 2)) return NULL;
                o = s_new (vm, S_INT);
                if (o) o->i = s_u16 (vm->p);
                vm->p += 2;
                rc = s_push (vm, o);
                break;
            case 0x8a: {    //  LONG1: n bytes little-endian two's complement
                if (s_need (vm, 1)) return NULL;
                uint8_t n = *vm->p++;
                if (n > 8) { s_verr (vm, "integer wider than 64 bits", NULL); return NULL; }
                if (s_need (vm, n)) return NULL;
                uint64_t v = 0;
                for (int i = n - 1; i >= 0; i--)
                    v = (v << 8) | vm->p [i];
                if (n > 0 && n < 8 && (vm->p [n - 1] & 0x80))
                    v |= ~(uint64_t) 0 << (8 * n);
                vm->p += n;
                o = s_new (vm, S_INT);
                if (o) o->i = (int64_t) v;
                rc = s_push (vm, o);
                break;
            }
            case 'c':       //  GLOBAL
                if (s_read_line (vm, mod, sizeof (mod)) || s_read_line (vm, name, sizeof (name))) return NULL;
                rc = s_global (vm, mod, name);
                break;
            case 0x93:      //  STACK_GLOBAL
                b2 = s_pop (vm);
                a = b2? s_pop (vm): NULL;
                if (!a) return NULL;
                if (a->kind != S_STR || b2->kind != S_STR) { s_verr (vm, "STACK_GLOBAL needs two strings", NULL); return NULL; }
                rc = s_global (vm, a->s, b2->s);
                break;
            case 't':       //  TUPLE
                if (s_pop_mark (vm, &first)) return NULL;
                o = s_tuple (vm, vm->stack + first, vm->sp - first);
                vm->sp = first;
                rc = s_push (vm, o);
                break;
            case 0x85: case 0x86: case 0x87: {      //  TUPLE1..3
                size_t n = (size_t) (op - 0x84);
                s_obj_t *items [3];
                for (size_t i = n; i-- > 0; )
                    if (!(items [i] = s_pop (vm))) return NULL;
                rc = s_push (vm, s_tuple (vm, items, n));
                break;
            }
            case 's':       //  SETITEM
                b2 = s_pop (vm);
                a = b2? s_pop (vm): NULL;
                c = a? s_top (vm): NULL;
                if (!c) return NULL;
                if (c->kind != S_DICT) { s_verr (vm, "SETITEM on a non-dict", NULL); return NULL; }
                rc = s_append (vm, c, a) || s_append (vm, c, b2);
                break;
            case 'u':       //  SETITEMS
                if (s_pop_mark (vm, &first)) return NULL;
                if (first == 0 || (vm->sp - first) % 2 || vm->stack [first - 1]->kind != S_DICT) {
                    s_verr (vm, "SETITEMS needs a dict and key/value pairs", NULL);
                    return NULL;
                }
                c = vm->stack [first - 1];
                for (size_t i = first; i < vm->sp && !rc; i++)
                    rc = s_append (vm, c, vm->stack [i]);
                vm->sp = first;
                break;
            case 'a':       //  APPEND
                b2 = s_pop (vm);
                c = b2? s_top (vm): NULL;
                if (!c) return NULL;
                if (c->kind != S_LIST) { s_verr (vm, "APPEND on a non-list", NULL); return NULL; }
                rc = s_append (vm, c, b2);
                break;
            case 'e':       //  APPENDS
                if (s_pop_mark (vm, &first)) return NULL;
                if (first == 0 || vm->stack [first - 1]->kind != S_LIST) { s_verr (vm, "APPENDS on a non-list", NULL); return NULL; }
                c = vm->stack [first - 1];
                for (size_t i = first; i < vm->sp && !rc; i++)
                    rc = s_append (vm, c, vm->stack [i]);
                vm->sp = first;
                break;
            case 'R':
                rc = s_reduce (vm);
                break;
            case 'b':       //  BUILD: an OrderedDict's state (state_dict's _metadata) is dropped
                b2 = s_pop (vm);
                c = b2? s_top (vm): NULL;
                if (!c) return NULL;
                if (c->kind != S_DICT || (b2->kind != S_DICT && b2->kind != S_NONE)) {
                    s_verr (vm, "BUILD is only allowed on a dict with a dict state", NULL);
                    return NULL;
                }
                break;
            case 'Q':
                rc = s_persid (vm);
                break;
            case '.':       //  STOP
                o = s_pop (vm);
                if (o && (vm->sp != 0 || vm->msp != 0)) {
                    s_verr (vm, "data left on the stack at STOP", NULL);
                    return NULL;
                }
                return o;
            default: {
                char hex [8];
                snprintf (hex, sizeof (hex), "0x%02x", op);
                vm->p--;
                s_verr (vm, "unsupported opcode %s", hex);
                return NULL;
            }
        }
        if (rc)
            return NULL;
    }
    s_verr (vm, "no STOP opcode", NULL);
    return NULL;
}

static void
s_vm_free (s_vm_t *vm)
{
    while (vm->allocs) {
        s_obj_t *o = vm->allocs;
        vm->allocs = o->next_alloc;
        if (o->kind == S_STR)
            free (o->s);
        free (o->items);
        free (o);
    }
    free (vm->stack);
    free (vm->marks);
    free (vm->memo);
}

//  ---------------------------------------------------------------------------------------
//  Tensors out of the state dict

typedef struct {
    s_zip_t *zip;
    const char *prefix;         //  "<archive>/"
    vdgx_pth_result_t *out;
    size_t cap;
    char *err;
} s_collect_t;

static int
s_cerr (s_collect_t *c, const char *name, const char *msg)
{
    if (!c->err)
        c->err = vdgx_kstrdupf ("tensor \"%.200s\": %s", name, msg);
    return -1;
}

static int s_out_push (s_collect_t *c, const char *name, vdgx_dtype_t dtype, int ndim,
                       const int64_t *shape, const uint8_t *data, size_t nbytes);

static int
s_add (s_collect_t *c, const char *name, const s_obj_t *t)
{
    size_t el = vdgx_dtype_size (t->dtype);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape [d] < 0)
            return s_cerr (c, name, "negative size");
        if (t->shape [d] && numel > (UINT64_MAX >> 8) / (uint64_t) t->shape [d])
            return s_cerr (c, name, "size overflows");
        numel *= (uint64_t) t->shape [d];
    }
    //  contiguous row-major (dims of size 1 may carry any stride, as in PyTorch)
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape [d] != 1 && t->stride [d] != expect && numel > 0)
            return s_cerr (c, name, "non-contiguous tensors (views with strides) are not supported");
        expect *= t->shape [d];
    }
    const s_obj_t *st = t->storage;
    if (t->offset < 0 || (uint64_t) t->offset > (uint64_t) st->numel || numel > (uint64_t) st->numel - (uint64_t) t->offset)
        return s_cerr (c, name, "offset and size run past the end of its storage");
    char *ename = vdgx_kstrdupf ("%sdata/%s", c->prefix, st->s);
    if (!ename)
        return s_cerr (c, name, "out of memory");
    const s_entry_t *e = s_zip_find (c->zip, ename);
    free (ename);
    if (!e)
        return s_cerr (c, name, "its storage file is missing from the archive");
    if (e->method != 0 || e->comp_size != e->size)
        return s_cerr (c, name, "its storage is compressed (only stored entries are supported)");
    if ((uint64_t) st->numel > e->size / el || e->size != (uint64_t) st->numel * el)
        return s_cerr (c, name, "storage file size does not match its element count");
    return s_out_push (c, name, t->dtype, t->ndim, t->shape, e->data + (size_t) t->offset * el,
                   (size_t) numel * el);
}

//  Appends a checked tensor to the result.
static int
s_out_push (s_collect_t *c, const char *name, vdgx_dtype_t dtype, int ndim, const int64_t *shape,
        const uint8_t *data, size_t nbytes)
{
    if (c->out->count == c->cap) {
        size_t ncap = c->cap? c->cap * 2: 64;
        vdgx_ckpt_tensor_t *nt = realloc (c->out->tensors, ncap * sizeof (*nt));
        if (!nt)
            return s_cerr (c, name, "out of memory");
        c->out->tensors = nt;
        c->cap = ncap;
    }
    vdgx_ckpt_tensor_t *o = &c->out->tensors [c->out->count];
    memset (o, 0, sizeof (*o));
    o->name = strdup (name);
    if (!o->name)
        return s_cerr (c, name, "out of memory");
    o->dtype = dtype;
    o->ndim = ndim;
    memcpy (o->shape, shape, (size_t) ndim * sizeof (int64_t));
    o->data = data;
    o->nbytes = nbytes;
    c->out->count++;
    return 0;
}

//  Nested dicts flatten to "outer.inner" names; non-tensor values (ints, strings) are skipped.
static int
s_collect (s_collect_t *c, const s_obj_t *dict, const char *prefix, int depth)
{
    if (depth > S_MAX_DEPTH) {
        if (!c->err)
            c->err = vdgx_kstrdupf ("dicts nested deeper than %d", S_MAX_DEPTH);
        return -1;
    }
    for (size_t i = 0; i + 1 < dict->n; i += 2) {
        const s_obj_t *k = dict->items [i], *v = dict->items [i + 1];
        if (k->kind != S_STR || (v->kind != S_TENSOR && v->kind != S_DICT))
            continue;
        if (strlen (k->s) != k->n) {
            if (!c->err)
                c->err = vdgx_kstrdupf ("a key contains a NUL byte");
            return -1;
        }
        char *name = vdgx_kstrdupf ("%s%s", prefix, k->s);
        if (!name)
            return -1;
        int rc;
        if (v->kind == S_TENSOR)
            rc = s_add (c, name, v);
        else {
            char *sub = vdgx_kstrdupf ("%s.", name);
            rc = sub? s_collect (c, v, sub, depth + 1): -1;
            free (sub);
        }
        free (name);
        if (rc)
            return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  numpy .npz

//  The value of 'key' in a .npy header dict: *p just past "'key':" and spaces; NULL if absent.
static const char *
s_npy_value (const char *h, size_t n, const char *key)
{
    size_t kl = strlen (key);
    for (size_t i = 0; i + kl + 2 < n; i++)
        if (h [i] == '\'' && memcmp (h + i + 1, key, kl) == 0 && h [i + 1 + kl] == '\'') {
            const char *p = h + i + kl + 2;
            while (p < h + n && (*p == ' ' || *p == ':'))
                p++;
            return p < h + n? p: NULL;
        }
    return NULL;
}

static int
s_npy (s_collect_t *c, const s_entry_t *e)
{
    char name [256];
    size_t nl = e->name_len - 4;
    if (nl >= sizeof (name) || memchr (e->name, 0, nl))
        return s_cerr (c, "?", "entry name too long or with a NUL byte");
    memcpy (name, e->name, nl);
    name [nl] = 0;
    if (e->method != 0 || e->comp_size != e->size)
        return s_cerr (c, name, "compressed .npy entry (np.savez_compressed is not supported)");
    const uint8_t *d = e->data;
    uint64_t size = e->size;
    if (size < 10 || memcmp (d, "\x93NUMPY", 6) != 0 || d [6] < 1 || d [6] > 3)
        return s_cerr (c, name, "not a .npy array (magic or version)");
    uint64_t hl = d [6] == 1? s_u16 (d + 8): (size < 12? UINT64_MAX: s_u32 (d + 8));
    uint64_t hs = d [6] == 1? 10: 12;
    if (hl > size - hs || hl > 65536)
        return s_cerr (c, name, "header runs past the entry");
    const char *h = (const char *) d + hs;
    const char *descr = s_npy_value (h, hl, "descr"), *fo = s_npy_value (h, hl, "fortran_order");
    const char *shp = s_npy_value (h, hl, "shape");
    if (!descr || !fo || !shp || *descr != '\'' || *shp != '(')
        return s_cerr (c, name, "header lacks descr, fortran_order or shape");
    if (strncmp (fo, "False", 5) != 0)
        return s_cerr (c, name, "Fortran-order arrays are not supported");
    static const struct { const char *d; vdgx_dtype_t t; } types [] = {
        { "'<f4'", VDGX_DTYPE_F32 }, { "'<f8'", VDGX_DTYPE_F64 }, { "'<f2'", VDGX_DTYPE_F16 },
        { "'<i8'", VDGX_DTYPE_I64 }, { "'<i4'", VDGX_DTYPE_I32 }, { "'|u1'", VDGX_DTYPE_U8 },
        { "'|b1'", VDGX_DTYPE_U8 } };
    int type = -1;
    for (size_t i = 0; i < sizeof (types) / sizeof (types [0]); i++)
        if ((size_t) (h + hl - descr) >= 5 && memcmp (descr, types [i].d, 5) == 0)
            type = (int) i;
    if (type < 0)
        return s_cerr (c, name, "unsupported dtype (not a little-endian f2/f4/f8/i4/i8/u1/b1)");
    vdgx_dtype_t dtype = types [type].t;
    int ndim = 0;
    int64_t shape [VDGX_MAX_DIMS];
    const char *q = shp + 1, *hend = h + hl;
    while (q < hend && *q != ')') {
        while (q < hend && (*q == ' ' || *q == ','))
            q++;
        if (q < hend && *q == ')')
            break;
        if (q >= hend || *q < '0' || *q > '9' || ndim == VDGX_MAX_DIMS)
            return s_cerr (c, name, "bad shape");
        int64_t v = 0;
        while (q < hend && *q >= '0' && *q <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return s_cerr (c, name, "shape overflows");
            v = v * 10 + (*q++ - '0');
        }
        shape [ndim++] = v;
    }
    if (q >= hend)
        return s_cerr (c, name, "bad shape");
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape [i] && numel > INT64_MAX / shape [i])
            return s_cerr (c, name, "shape overflows");
        numel *= shape [i];
    }
    size_t el = vdgx_dtype_size (dtype);
    uint64_t data = hs + hl;
    if ((uint64_t) numel > (size - data) / el || (size - data) != (uint64_t) numel * el)
        return s_cerr (c, name, "data size does not match the shape");
    return s_out_push (c, name, dtype, ndim, shape, d + data, (size_t) (size - data));
}

static int
s_npz (s_zip_t *zip, s_collect_t *c)
{
    for (size_t i = 0; i < zip->count; i++) {
        const s_entry_t *e = &zip->entries [i];
        if (e->name_len > 4 && memcmp (e->name + e->name_len - 4, ".npy", 4) == 0 && s_npy (c, e))
            return -1;
    }
    return 0;
}

int
vdgx_pth_parse (const uint8_t *buf, size_t size, vdgx_pth_result_t *out, char **err)
{
    memset (out, 0, sizeof (*out));
    s_zip_t zip = { .buf = buf, .size = size };
    s_vm_t vm = { 0 };
    s_collect_t col = { .zip = &zip, .out = out };
    char *prefix = NULL;
    int rc = -1;
    if (s_zip_open (&zip))
        goto done;
    //  the pickle: "<archive>/data.pkl" with one path component before it
    const s_entry_t *pkl = NULL;
    for (size_t i = 0; i < zip.count; i++) {
        const s_entry_t *e = &zip.entries [i];
        if (e->name_len > 9 && memcmp (e->name + e->name_len - 9, "/data.pkl", 9) == 0
            && !memchr (e->name, '/', e->name_len - 9)) {
            if (pkl) {
                s_zerr (&zip, "more than one data.pkl");
                goto done;
            }
            pkl = e;
        }
    }
    if (!pkl) {
        bool npz = false;
        for (size_t i = 0; i < zip.count; i++)
            npz = npz || (zip.entries [i].name_len > 4
                          && memcmp (zip.entries [i].name + zip.entries [i].name_len - 4, ".npy", 4) == 0);
        if (!npz) {
            s_zerr (&zip, "no <archive>/data.pkl entry nor .npy entries (not a torch.save or .npz file?)");
            goto done;
        }
        if (s_npz (&zip, &col))
            goto done;
        rc = 0;
        goto done;
    }
    if (pkl->method != 0 || pkl->comp_size != pkl->size) {
        s_zerr (&zip, "data.pkl is compressed");
        goto done;
    }
    if (pkl->size > S_MAX_PICKLE) {
        s_zerr (&zip, "data.pkl is too large");
        goto done;
    }
    if (s_crc32 (pkl->data, (size_t) pkl->size) != pkl->crc) {
        s_zerr (&zip, "data.pkl fails its CRC check");
        goto done;
    }
    prefix = strndup (pkl->name, pkl->name_len - 8);        //  keeps the '/'
    if (!prefix)
        goto done;
    vm.p = vm.start = pkl->data;
    vm.end = pkl->data + pkl->size;
    s_obj_t *root = s_run (&vm);
    if (!root)
        goto done;
    if (root->kind != S_DICT) {
        s_verr (&vm, "the pickle is not a dict (state dict) of tensors", NULL);
        goto done;
    }
    col.prefix = prefix;
    if (s_collect (&col, root, "", 0))
        goto done;
    rc = 0;
done:
    if (rc) {
        char *msg = zip.err? zip.err: vm.err? vm.err: col.err;
        if (err)
            *err = msg? vdgx_kstrdupf ("%s", msg): vdgx_kstrdupf ("bad .pth file");
        vdgx_pth_result_free (out);
    }
    free (zip.err);
    free (vm.err);
    free (col.err);
    free (zip.entries);
    free (prefix);
    s_vm_free (&vm);
    return rc;
}
