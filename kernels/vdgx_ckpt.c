/*  vdgx_ckpt.c - read-only checkpoints: safetensors (single, or shards listed by an HF
    *.index.json) and PyTorch .pth (parsed in vdgx_pth.c). Files are mmapped; tensors point
    into the mapping. Everything read from a file is validated before use: a header can be
    hostile (sizes that overflow, offsets past the end, overlapping tensors, a huge JSON).
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_HEADER (100u << 20)       //  safetensors header cap (the reference loader's)

typedef struct {
    void *addr;
    size_t len;
} s_map_t;

struct _vdgx_ckpt_t {
    vdgx_ckpt_tensor_t *tensors;
    size_t count, cap;
    size_t *sorted;             //  indices sorted by name, for vdgx_ckpt_find
    s_map_t *maps;
    size_t map_count;
    char **meta;                //  __metadata__ key, value, key, value, ... (first file wins)
    size_t meta_count;          //  pairs
};

static int
s_add_tensor (vdgx_ckpt_t *self, const vdgx_ckpt_tensor_t *t)
{
    if (self->count == self->cap) {
        size_t ncap = self->cap? self->cap * 2: 64;
        vdgx_ckpt_tensor_t *nt = realloc (self->tensors, ncap * sizeof (*nt));
        if (!nt)
            return -1;
        self->tensors = nt;
        self->cap = ncap;
    }
    self->tensors [self->count++] = *t;
    return 0;
}

static int
s_add_map (vdgx_ckpt_t *self, void *addr, size_t len)
{
    s_map_t *m = realloc (self->maps, (self->map_count + 1) * sizeof (*m));
    if (!m)
        return -1;
    self->maps = m;
    m [self->map_count].addr = addr;
    m [self->map_count].len = len;
    self->map_count++;
    return 0;
}

void
vdgx_ckpt_destroy (vdgx_ckpt_t **self_p)
{
    assert (self_p);
    vdgx_ckpt_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free ((char *) self->tensors [i].name);
    for (size_t i = 0; i < 2 * self->meta_count; i++)
        free (self->meta [i]);
    free (self->meta);
    free (self->tensors);
    free (self->sorted);
    for (size_t i = 0; i < self->map_count; i++)
        if (self->maps [i].len)
            munmap (self->maps [i].addr, self->maps [i].len);
    free (self->maps);
    free (self);
    *self_p = NULL;
}

bool
vdgx_ckpt_mapped (vdgx_ckpt_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->map_count; i++)
        if (self->maps [i].len)
            return true;
    return false;
}

void
vdgx_ckpt_release_pages (vdgx_ckpt_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->map_count; i++)
        if (self->maps [i].len)
            (void) madvise (self->maps [i].addr, self->maps [i].len, MADV_DONTNEED);
}

//  ---------------------------------------------------------------------------------------
//  safetensors

//  Keeps the string pairs of a __metadata__ object; a key already held (from an earlier
//  shard) keeps its first value.
static int
s_add_metadata (vdgx_ckpt_t *self, const vdgx_json_t *obj)
{
    for (size_t m = 0; m < obj->count; m++) {
        if (vdgx_ckpt_metadata (self, obj->keys [m]))
            continue;
        char **grown = realloc (self->meta, 2 * (self->meta_count + 1) * sizeof (char *));
        if (!grown)
            return -1;
        self->meta = grown;
        char *k = strdup (obj->keys [m]), *v = strdup (obj->items [m]->string);
        if (!k || !v) {
            free (k);
            free (v);
            return -1;
        }
        self->meta [2 * self->meta_count] = k;
        self->meta [2 * self->meta_count + 1] = v;
        self->meta_count++;
    }
    return 0;
}

const char *
vdgx_ckpt_metadata (vdgx_ckpt_t *self, const char *key)
{
    assert (self && key);
    for (size_t i = 0; i < self->meta_count; i++)
        if (strcmp (self->meta [2 * i], key) == 0)
            return self->meta [2 * i + 1];
    return NULL;
}

typedef struct {
    uint64_t begin, end;
    size_t index;
} s_span_t;

static int
s_span_cmp (const void *a, const void *b)
{
    const s_span_t *x = a, *y = b;
    return x->begin < y->begin? -1: x->begin > y->begin? 1: (x->end < y->end? -1: x->end > y->end);
}

//  Parses one safetensors image and appends its tensors. `what` names it in errors.
static int
s_safetensors_parse (vdgx_ckpt_t *self, const uint8_t *buf, size_t size, const char *what, char **err)
{
    if (size < 8) {
        *err = vdgx_kstrdupf ("%s: truncated: %zu bytes, no header length", what, size);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | buf [i];
    if (hlen > S_MAX_HEADER) {
        *err = vdgx_kstrdupf ("%s: header length %llu exceeds the %u byte cap", what,
                              (unsigned long long) hlen, S_MAX_HEADER);
        return -1;
    }
    if (hlen > size - 8) {
        *err = vdgx_kstrdupf ("%s: truncated: header of %llu bytes but the file has %zu", what,
                              (unsigned long long) hlen, size - 8);
        return -1;
    }
    const uint8_t *data = buf + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    char *jerr = NULL;
    vdgx_json_t *root = vdgx_json_parse ((const char *) buf + 8, (size_t) hlen, &jerr);
    if (!root) {
        *err = vdgx_kstrdupf ("%s: bad header: %s", what, jerr? jerr: "?");
        free (jerr);
        return -1;
    }
    int rc = -1;
    size_t first = self->count;
    s_span_t *spans = NULL;
    if (root->type != VDGX_JSON_OBJECT) {
        *err = vdgx_kstrdupf ("%s: header is not a JSON object", what);
        goto done;
    }
    spans = malloc ((root->count + 1) * sizeof (*spans));
    if (!spans) {
        *err = vdgx_kstrdupf ("%s: out of memory", what);
        goto done;
    }
    size_t nspans = 0;
    for (size_t i = 0; i < root->count; i++) {
        const char *name = root->keys [i];
        vdgx_json_t *e = root->items [i];
        if (strcmp (name, "__metadata__") == 0) {
            bool ok = e->type == VDGX_JSON_OBJECT;
            for (size_t m = 0; ok && m < e->count; m++)
                ok = e->items [m]->type == VDGX_JSON_STRING;
            if (!ok) {
                *err = vdgx_kstrdupf ("%s: __metadata__ must map strings to strings", what);
                goto done;
            }
            if (s_add_metadata (self, e)) {
                *err = vdgx_kstrdupf ("%s: out of memory", what);
                goto done;
            }
            continue;
        }
        if (e->type != VDGX_JSON_OBJECT) {
            *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": entry is not an object", what, name);
            goto done;
        }
        vdgx_json_t *jd = NULL, *js = NULL, *jo = NULL;
        for (size_t f = 0; f < e->count; f++) {
            if (strcmp (e->keys [f], "dtype") == 0) jd = e->items [f];
            else if (strcmp (e->keys [f], "shape") == 0) js = e->items [f];
            else if (strcmp (e->keys [f], "data_offsets") == 0) jo = e->items [f];
            else {
                *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": unknown field \"%.50s\"", what, name, e->keys [f]);
                goto done;
            }
        }
        if (!jd || jd->type != VDGX_JSON_STRING || !js || js->type != VDGX_JSON_ARRAY
            || !jo || jo->type != VDGX_JSON_ARRAY || jo->count != 2) {
            *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": needs dtype, shape and data_offsets [begin, end]", what, name);
            goto done;
        }
        vdgx_ckpt_tensor_t t;
        memset (&t, 0, sizeof (t));
        if (vdgx_dtype_from_name (jd->string, &t.dtype)) {
            *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": unsupported dtype \"%.30s\"", what, name, jd->string);
            goto done;
        }
        if (js->count > VDGX_MAX_DIMS) {
            *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": %zu dims (at most %d)", what, name, js->count, VDGX_MAX_DIMS);
            goto done;
        }
        t.ndim = (int) js->count;
        uint64_t numel = 1;
        bool overflow = false;
        for (size_t d = 0; d < js->count; d++) {
            vdgx_json_t *v = js->items [d];
            if (v->type != VDGX_JSON_NUMBER || !v->is_integer || v->integer < 0) {
                *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": shape must hold non-negative integers", what, name);
                goto done;
            }
            t.shape [d] = v->integer;
            if (v->integer && numel > UINT64_MAX / 16 / (uint64_t) v->integer)
                overflow = true;
            numel *= (uint64_t) v->integer;
        }
        uint64_t off [2];
        for (int d = 0; d < 2; d++) {
            vdgx_json_t *v = jo->items [d];
            if (v->type != VDGX_JSON_NUMBER || !v->is_integer || v->integer < 0) {
                *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": data_offsets must be non-negative integers", what, name);
                goto done;
            }
            off [d] = (uint64_t) v->integer;
        }
        if (off [0] > off [1] || off [1] > data_size) {
            *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": data_offsets [%llu, %llu] outside the %llu data bytes",
                                  what, name, (unsigned long long) off [0], (unsigned long long) off [1],
                                  (unsigned long long) data_size);
            goto done;
        }
        if (overflow || numel * vdgx_dtype_size (t.dtype) != off [1] - off [0]) {
            *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": %s shape needs %llu bytes, data_offsets give %llu",
                                  what, name, jd->string,
                                  (unsigned long long) (overflow? 0: numel * vdgx_dtype_size (t.dtype)),
                                  (unsigned long long) (off [1] - off [0]));
            goto done;
        }
        t.data = data + off [0];
        t.nbytes = (size_t) (off [1] - off [0]);
        t.name = strdup (name);
        if (!t.name || s_add_tensor (self, &t)) {
            free ((char *) t.name);
            *err = vdgx_kstrdupf ("%s: out of memory", what);
            goto done;
        }
        spans [nspans].begin = off [0];
        spans [nspans].end = off [1];
        spans [nspans].index = self->count - 1;
        nspans++;
    }
    qsort (spans, nspans, sizeof (*spans), s_span_cmp);
    for (size_t i = 1; i < nspans; i++)
        if (spans [i].begin < spans [i - 1].end) {
            *err = vdgx_kstrdupf ("%s: tensors \"%.200s\" and \"%.200s\" overlap", what,
                                  self->tensors [spans [i - 1].index].name, self->tensors [spans [i].index].name);
            goto done;
        }
    rc = 0;
done:
    if (rc) {
        for (size_t i = first; i < self->count; i++)
            free ((char *) self->tensors [i].name);
        self->count = first;
    }
    free (spans);
    vdgx_json_destroy (&root);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Opening

static int
s_name_cmp_ctx (const void *a, const void *b, void *ctx)
{
    const vdgx_ckpt_tensor_t *t = ctx;
    return strcmp (t [*(const size_t *) a].name, t [*(const size_t *) b].name);
}

static int
s_finish (vdgx_ckpt_t *self, char **err)
{
    self->sorted = malloc ((self->count + 1) * sizeof (size_t));
    if (!self->sorted) {
        *err = vdgx_kstrdupf ("out of memory");
        return -1;
    }
    for (size_t i = 0; i < self->count; i++)
        self->sorted [i] = i;
    qsort_r (self->sorted, self->count, sizeof (size_t), s_name_cmp_ctx, self->tensors);
    for (size_t i = 1; i < self->count; i++)
        if (strcmp (self->tensors [self->sorted [i]].name, self->tensors [self->sorted [i - 1]].name) == 0) {
            *err = vdgx_kstrdupf ("tensor \"%.200s\" appears twice", self->tensors [self->sorted [i]].name);
            return -1;
        }
    return 0;
}

static int
s_parse_image (vdgx_ckpt_t *self, const uint8_t *buf, size_t size, const char *what, char **err)
{
    if (vdgx_pth_detect (buf, size)) {
        vdgx_pth_result_t r = { 0 };
        char *perr = NULL;
        if (vdgx_pth_parse (buf, size, &r, &perr)) {
            *err = vdgx_kstrdupf ("%s: %s", what, perr? perr: "bad .pth");
            free (perr);
            return -1;
        }
        for (size_t i = 0; i < r.count; i++) {
            if (s_add_tensor (self, &r.tensors [i])) {
                for (size_t j = i; j < r.count; j++)
                    free ((char *) r.tensors [j].name);
                free (r.tensors);
                *err = vdgx_kstrdupf ("%s: out of memory", what);
                return -1;
            }
        }
        free (r.tensors);
        return 0;
    }
    return s_safetensors_parse (self, buf, size, what, err);
}

vdgx_ckpt_t *
vdgx_ckpt_open_buffer (const void *buf, size_t size, char **err)
{
    char *e = NULL;
    vdgx_ckpt_t *self = calloc (1, sizeof (*self));
    if (!self) {
        if (err)
            *err = vdgx_kstrdupf ("out of memory");
        return NULL;
    }
    if (!buf && size) {
        e = vdgx_kstrdupf ("buffer: NULL");
        goto fail;
    }
    if (s_parse_image (self, buf? buf: (const void *) "", size, "buffer", &e) || s_finish (self, &e))
        goto fail;
    return self;
fail:
    vdgx_ckpt_destroy (&self);
    if (err)
        *err = e;
    else
        free (e);
    return NULL;
}

//  Maps a whole file read-only (an empty file maps to a zero-length image).
static int
s_map_file (vdgx_ckpt_t *self, const char *path, const uint8_t **buf, size_t *size, char **err)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = vdgx_kstrdupf ("%s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        *err = vdgx_kstrdupf ("%s: not a regular file", path);
        close (fd);
        return -1;
    }
    *size = (size_t) st.st_size;
    *buf = (const uint8_t *) "";
    if (*size) {
        void *addr = mmap (NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            *err = vdgx_kstrdupf ("%s: mmap: %s", path, strerror (errno));
            close (fd);
            return -1;
        }
        if (s_add_map (self, addr, *size)) {
            munmap (addr, *size);
            close (fd);
            *err = vdgx_kstrdupf ("out of memory");
            return -1;
        }
        *buf = addr;
    }
    close (fd);
    return 0;
}

static bool
s_ends_with (const char *s, const char *suffix)
{
    size_t a = strlen (s), b = strlen (suffix);
    return a >= b && strcmp (s + a - b, suffix) == 0;
}

static int
s_open_index (vdgx_ckpt_t *self, const char *path, const uint8_t *buf, size_t size, char **err)
{
    if (size > S_MAX_HEADER) {
        *err = vdgx_kstrdupf ("%s: index larger than %u bytes", path, S_MAX_HEADER);
        return -1;
    }
    char *jerr = NULL;
    vdgx_json_t *root = vdgx_json_parse ((const char *) buf, size, &jerr);
    if (!root) {
        *err = vdgx_kstrdupf ("%s: %s", path, jerr? jerr: "bad JSON");
        free (jerr);
        return -1;
    }
    int rc = -1;
    char *dir = NULL, *shard = NULL;
    vdgx_json_t *map = vdgx_json_get (root, "weight_map");
    if (!map || map->type != VDGX_JSON_OBJECT) {
        *err = vdgx_kstrdupf ("%s: no \"weight_map\" object", path);
        goto done;
    }
    const char *slash = strrchr (path, '/');
    dir = slash? strndup (path, (size_t) (slash - path + 1)): strdup ("");
    if (!dir)
        goto done;
    //  Shards in first-mention order; each is opened once. first [i] is the index of the
    //  first tensor of map item i's shard, so every listed tensor can be looked up in the
    //  shard the index names (and nowhere else).
    size_t *lo = calloc (map->count + 1, sizeof (size_t)), *hi = calloc (map->count + 1, sizeof (size_t));
    if (!lo || !hi) {
        free (lo);
        free (hi);
        *err = vdgx_kstrdupf ("out of memory");
        goto done;
    }
    for (size_t i = 0; i < map->count; i++) {
        vdgx_json_t *v = map->items [i];
        if (v->type != VDGX_JSON_STRING || !v->string [0] || strchr (v->string, '/')
            || strchr (v->string, '\\') || strcmp (v->string, ".") == 0 || strcmp (v->string, "..") == 0) {
            *err = vdgx_kstrdupf ("%s: tensor \"%.200s\": bad shard file name", path, map->keys [i]);
            break;
        }
        size_t seen = i;
        for (size_t j = 0; j < i && seen == i; j++)
            if (strcmp (map->items [j]->string, v->string) == 0)
                seen = j;
        if (seen < i) {
            lo [i] = lo [seen];
            hi [i] = hi [seen];
            continue;
        }
        free (shard);
        shard = vdgx_kstrdupf ("%s%s", dir, v->string);
        const uint8_t *sb;
        size_t ss;
        lo [i] = self->count;
        //  Shards are safetensors, or torch.save files (HF pytorch_model-*.bin): by content.
        if (!shard || s_map_file (self, shard, &sb, &ss, err) || s_parse_image (self, sb, ss, shard, err))
            break;
        hi [i] = self->count;
    }
    bool ok = !*err;
    for (size_t i = 0; ok && i < map->count; i++) {
        bool found = false;
        for (size_t t = lo [i]; t < hi [i] && !found; t++)
            found = strcmp (self->tensors [t].name, map->keys [i]) == 0;
        if (!found) {
            *err = vdgx_kstrdupf ("%s: tensor \"%.200s\" is not in shard %s", path, map->keys [i], map->items [i]->string);
            ok = false;
        }
    }
    free (lo);
    free (hi);
    if (!ok)
        goto done;
    rc = 0;
done:
    free (dir);
    free (shard);
    vdgx_json_destroy (&root);
    return rc;
}

vdgx_ckpt_t *
vdgx_ckpt_open (const char *path, char **err)
{
    assert (path);
    char *e = NULL;
    vdgx_ckpt_t *self = calloc (1, sizeof (*self));
    if (!self) {
        if (err)
            *err = vdgx_kstrdupf ("out of memory");
        return NULL;
    }
    const uint8_t *buf;
    size_t size;
    if (s_map_file (self, path, &buf, &size, &e))
        goto fail;
    size_t i = 0;
    while (i < size && (buf [i] == ' ' || buf [i] == '\n' || buf [i] == '\r' || buf [i] == '\t'))
        i++;
    if (s_ends_with (path, ".json") && i < size && buf [i] == '{') {
        if (s_open_index (self, path, buf, size, &e))
            goto fail;
    }
    else if (s_parse_image (self, buf, size, path, &e))
        goto fail;
    if (s_finish (self, &e))
        goto fail;
    return self;
fail:
    vdgx_ckpt_destroy (&self);
    if (err)
        *err = e? e: vdgx_kstrdupf ("%s: cannot open", path);
    else
        free (e);
    return NULL;
}

size_t
vdgx_ckpt_count (vdgx_ckpt_t *self)
{
    return self->count;
}

const vdgx_ckpt_tensor_t *
vdgx_ckpt_at (vdgx_ckpt_t *self, size_t index)
{
    return index < self->count? &self->tensors [index]: NULL;
}

const vdgx_ckpt_tensor_t *
vdgx_ckpt_find (vdgx_ckpt_t *self, const char *name)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp (self->tensors [self->sorted [mid]].name, name);
        if (c == 0)
            return &self->tensors [self->sorted [mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int
vdgx_ckpt_read_f32 (const vdgx_ckpt_tensor_t *t, float *dst, char **err)
{
    size_t n = t->nbytes / (vdgx_dtype_size (t->dtype)? vdgx_dtype_size (t->dtype): 1);
    if (vdgx_dtype_is_float (t->dtype))
        return vdgx_convert_to_f32 (dst, t->data, t->dtype, n);
    const uint8_t *p = t->data;
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == VDGX_DTYPE_I64) {
            int64_t v;
            memcpy (&v, p + 8 * i, 8);
            dst [i] = (float) v;
        }
        else if (t->dtype == VDGX_DTYPE_I32) {
            int32_t v;
            memcpy (&v, p + 4 * i, 4);
            dst [i] = (float) v;
        }
        else if (t->dtype == VDGX_DTYPE_U8)
            dst [i] = p [i];
        else {
            if (err)
                *err = vdgx_kstrdupf ("tensor \"%s\": cannot convert %s to f32", t->name, vdgx_dtype_name (t->dtype));
            return -1;
        }
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Writer

static int
s_json_string (FILE *f, const char *s)
{
    fputc ('"', f);
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf (f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf (f, "\\u%04x", *p);
        else
            fputc (*p, f);
    }
    return fputc ('"', f) == EOF? -1: 0;
}

int
vdgx_safetensors_write (const char *path, const vdgx_ckpt_tensor_t *tensors, size_t count, char **err)
{
    return vdgx_safetensors_write_meta (path, tensors, count, NULL, err);
}

int
vdgx_safetensors_write_meta (const char *path, const vdgx_ckpt_tensor_t *tensors, size_t count,
                             const char *const *meta, char **err)
{
    assert (path && (tensors || !count));
    char *hdr = NULL;
    size_t hsize = 0;
    FILE *h = open_memstream (&hdr, &hsize);
    if (!h) {
        if (err)
            *err = vdgx_kstrdupf ("out of memory");
        return -1;
    }
    uint64_t off = 0;
    fputc ('{', h);
    if (meta && meta [0]) {
        fputs ("\"__metadata__\":{", h);
        for (size_t m = 0; meta [m] && meta [m + 1]; m += 2) {
            if (m)
                fputc (',', h);
            s_json_string (h, meta [m]);
            fputc (':', h);
            s_json_string (h, meta [m + 1]);
        }
        fputs (count? "},": "}", h);
    }
    for (size_t i = 0; i < count; i++) {
        const vdgx_ckpt_tensor_t *t = &tensors [i];
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= (uint64_t) t->shape [d];
        if (!t->name || t->ndim < 0 || t->ndim > VDGX_MAX_DIMS || (unsigned) t->dtype >= VDGX_DTYPE_COUNT
            || numel * vdgx_dtype_size (t->dtype) != t->nbytes || (t->nbytes && !t->data)) {
            fclose (h);
            free (hdr);
            if (err)
                *err = vdgx_kstrdupf ("safetensors_write: tensor %zu: nbytes does not match dtype and shape", i);
            return -1;
        }
        if (i)
            fputc (',', h);
        s_json_string (h, t->name);
        fprintf (h, ":{\"dtype\":\"%s\",\"shape\":[", vdgx_dtype_name (t->dtype));
        for (int d = 0; d < t->ndim; d++)
            fprintf (h, "%s%lld", d? ",": "", (long long) t->shape [d]);
        fprintf (h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long) off,
                 (unsigned long long) (off + t->nbytes));
        off += t->nbytes;
    }
    fputc ('}', h);
    //  pad with spaces so the data starts 8-byte aligned, as the reference writer does
    while ((ftell (h) + 8) % 8)
        fputc (' ', h);
    fclose (h);
    char *tmp = vdgx_kstrdupf ("%s.tmp.%d", path, (int) getpid ());
    FILE *f = tmp? fopen (tmp, "wb"): NULL;
    if (!f) {
        if (err)
            *err = vdgx_kstrdupf ("%s: %s", tmp? tmp: path, strerror (errno));
        free (hdr);
        free (tmp);
        return -1;
    }
    uint8_t len [8];
    for (int i = 0; i < 8; i++)
        len [i] = (uint8_t) ((uint64_t) hsize >> (8 * i));
    bool ok = fwrite (len, 1, 8, f) == 8 && fwrite (hdr, 1, hsize, f) == hsize;
    for (size_t i = 0; ok && i < count; i++)
        ok = tensors [i].nbytes == 0 || fwrite (tensors [i].data, 1, tensors [i].nbytes, f) == tensors [i].nbytes;
    ok = (fclose (f) == 0) && ok;
    free (hdr);
    if (!ok || rename (tmp, path)) {
        if (err)
            *err = vdgx_kstrdupf ("%s: write failed: %s", path, strerror (errno));
        unlink (tmp);
        free (tmp);
        return -1;
    }
    free (tmp);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Selftest

static void
s_write_file (const char *path, const void *data, size_t n)
{
    FILE *f = fopen (path, "wb");
    assert (f);
    assert (fwrite (data, 1, n, f) == n);
    fclose (f);
}

//  Builds a safetensors image from a header string and a data size (data bytes = index).
static uint8_t *
s_image (const char *header, size_t data_size, size_t *size)
{
    size_t h = strlen (header);
    *size = 8 + h + data_size;
    uint8_t *buf = malloc (*size + 1);
    for (int i = 0; i < 8; i++)
        buf [i] = (uint8_t) ((uint64_t) h >> (8 * i));
    memcpy (buf + 8, header, h);
    for (size_t i = 0; i < data_size; i++)
        buf [8 + h + i] = (uint8_t) i;
    return buf;
}

void
vdgx_ckpt_test (bool verbose)
{
    printf (" * vdgx_ckpt: ");
    char dir [] = "/tmp/vdgx-ckpt-test-XXXXXX";
    assert (mkdtemp (dir));
    char path [256], idx [256], sh1 [256], sh2 [256];
    snprintf (path, sizeof (path), "%s/a.safetensors", dir);

    //  round trip of every dtype
    float f32 [6] = { 1, -2, 3.5f, 1e-3f, 448, -0.0f };
    uint16_t bf16 [3] = { 0x3f80, 0xc000, 0x0001 };
    uint8_t e4m3 [4] = { 0x38, 0x7e, 0x80, 0x01 };
    int64_t i64 [2] = { -5, 1LL << 40 };
    vdgx_ckpt_tensor_t ts [5] = {
        { "w.f32", VDGX_DTYPE_F32, 2, { 2, 3 }, f32, sizeof (f32) },
        { "w.bf16 \"quoted\"\n", VDGX_DTYPE_BF16, 1, { 3 }, bf16, sizeof (bf16) },
        { "blocks.0.weight", VDGX_DTYPE_F8_E4M3, 2, { 2, 2 }, e4m3, sizeof (e4m3) },
        { "pos", VDGX_DTYPE_I64, 1, { 2 }, i64, sizeof (i64) },
        { "empty", VDGX_DTYPE_F32, 2, { 0, 7 }, NULL, 0 },
    };
    char *err = NULL;
    assert (vdgx_safetensors_write (path, ts, 5, &err) == 0 && !err);
    vdgx_ckpt_t *c = vdgx_ckpt_open (path, &err);
    assert (c && !err && vdgx_ckpt_count (c) == 5);
    for (int i = 0; i < 5; i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (c, ts [i].name);
        assert (t && t == vdgx_ckpt_at (c, (size_t) i) && t->dtype == ts [i].dtype && t->ndim == ts [i].ndim);
        assert (t->nbytes == ts [i].nbytes && (!t->nbytes || memcmp (t->data, ts [i].data, t->nbytes) == 0));
        assert (t->shape [0] == ts [i].shape [0]);
    }
    assert (vdgx_ckpt_find (c, "nope") == NULL && vdgx_ckpt_at (c, 5) == NULL);
    float out [6];
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "w.bf16 \"quoted\"\n"), out, NULL) == 0);
    assert (out [0] == 1.0f && out [1] == -2.0f);
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "blocks.0.weight"), out, NULL) == 0 && out [1] == 448.0f);
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "pos"), out, NULL) == 0 && out [0] == -5.0f);
    //  Pages given back to the file read the same data again.
    assert (vdgx_ckpt_mapped (c));
    vdgx_ckpt_release_pages (c);
    for (int i = 0; i < (int) (sizeof (ts) / sizeof (ts [0])); i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (c, ts [i].name);
        assert (!t->nbytes || memcmp (t->data, ts [i].data, t->nbytes) == 0);
    }
    vdgx_ckpt_destroy (&c);
    assert (c == NULL);

    //  FP8 checkpoint (ComfyUI): e4m3 weight + scale_weight; and weight_scale per channel
    float sw = 0.5f, wsc [2] = { 2.0f, 0.25f };
    uint8_t e2 [4] = { 0x38, 0xb8, 0x40, 0x30 };     //  1, -1, 2, 0.5
    vdgx_ckpt_tensor_t f8 [4] = {
        { "a.weight", VDGX_DTYPE_F8_E4M3, 2, { 2, 2 }, e2, 4 },
        { "a.scale_weight", VDGX_DTYPE_F32, 0, { 0 }, &sw, 4 },
        { "b.weight", VDGX_DTYPE_F8_E4M3, 2, { 2, 2 }, e2, 4 },
        { "b.weight_scale", VDGX_DTYPE_F32, 2, { 2, 1 }, wsc, 8 },
    };
    assert (vdgx_safetensors_write (path, f8, 4, NULL) == 0);
    c = vdgx_ckpt_open (path, NULL);
    assert (c);
    vdgx_weight_t w;
    float deq [4];
    assert (vdgx_weight_from_ckpt (&w, c, "a.weight", VDGX_WFMT_FP8_E4M3, false, NULL) == 0);
    assert (w.scale_count == 1);
    vdgx_weight_dequant (&w, deq);
    assert (deq [0] == 0.5f && deq [1] == -0.5f && deq [2] == 1.0f && deq [3] == 0.25f);
    vdgx_weight_host_free (&w);
    assert (vdgx_weight_from_ckpt (&w, c, "b.weight", VDGX_WFMT_FP8_E4M3, true, NULL) == 0 && w.scale_count == 2);
    vdgx_weight_dequant (&w, deq);
    assert (deq [0] == 2.0f && deq [1] == -2.0f && deq [2] == 0.5f && deq [3] == 0.125f);
    vdgx_weight_host_free (&w);
    //  requantized to bf16 at load
    assert (vdgx_weight_from_ckpt (&w, c, "b.weight", VDGX_WFMT_BF16, false, NULL) == 0);
    vdgx_weight_dequant (&w, deq);
    assert (deq [0] == 2.0f && deq [3] == 0.125f);
    vdgx_weight_host_free (&w);
    err = NULL;
    assert (vdgx_weight_from_ckpt (&w, c, "missing.weight", VDGX_WFMT_F32, false, &err) == -1 && err);
    free (err);
    err = NULL;
    assert (vdgx_weight_from_ckpt (&w, c, "a.weight", VDGX_WFMT_NF4, false, &err) == -1 && err);   //  k = 2
    free (err);
    vdgx_ckpt_destroy (&c);

    //  sharded checkpoint
    snprintf (sh1, sizeof (sh1), "%s/model-00001-of-00002.safetensors", dir);
    snprintf (sh2, sizeof (sh2), "%s/model-00002-of-00002.safetensors", dir);
    snprintf (idx, sizeof (idx), "%s/model.safetensors.index.json", dir);
    assert (vdgx_safetensors_write (sh1, ts, 2, NULL) == 0);
    assert (vdgx_safetensors_write (sh2, ts + 2, 2, NULL) == 0);
    const char *index = "{\"metadata\": {\"total_size\": 44}, \"weight_map\": {"
                        "\"w.f32\": \"model-00001-of-00002.safetensors\","
                        "\"w.bf16 \\\"quoted\\\"\\n\": \"model-00001-of-00002.safetensors\","
                        "\"blocks.0.weight\": \"model-00002-of-00002.safetensors\","
                        "\"pos\": \"model-00002-of-00002.safetensors\"}}";
    s_write_file (idx, index, strlen (index));
    err = NULL;
    c = vdgx_ckpt_open (idx, &err);
    if (err)
        fprintf (stderr, "\n%s\n", err);
    assert (c && !err && vdgx_ckpt_count (c) == 4);
    int64_t pos [2];     //  tensor data need not be aligned: copy it out
    assert (vdgx_ckpt_find (c, "pos"));
    memcpy (pos, vdgx_ckpt_find (c, "pos")->data, 16);
    assert (pos [1] == 1LL << 40);
    vdgx_ckpt_destroy (&c);
    static const char *bad_index [] = {
        "{\"weight_map\": {\"x\": \"../../etc/passwd\"}}",
        "{\"weight_map\": {\"w.f32\": \"missing.safetensors\"}}",
        "{\"weight_map\": {\"nothere\": \"model-00001-of-00002.safetensors\"}}",
        "{\"metadata\": {}}",
        "{\"weight_map\": {\"w.f32\": \"model-00001-of-00002.safetensors\", \"w.f32\": \"model-00001-of-00002.safetensors\"}}",
        "{\"weight_map\": [1]}",
        "{\"weight_map\": {\"w.f32\": \"model-00002-of-00002.safetensors\", \"pos\": \"model-00001-of-00002.safetensors\"}}",
    };
    for (size_t i = 0; i < sizeof (bad_index) / sizeof (bad_index [0]); i++) {
        s_write_file (idx, bad_index [i], strlen (bad_index [i]));
        err = NULL;
        c = vdgx_ckpt_open (idx, &err);
        assert (!c && err);
        if (verbose)
            printf ("\n   index %zu -> %s", i, err);
        free (err);
    }
    //  a shard that repeats a tensor of another shard
    const char *dup_index = "{\"weight_map\": {\"w.f32\": \"model-00001-of-00002.safetensors\","
                            "\"pos\": \"model-00002-of-00002.safetensors\"}}";
    vdgx_ckpt_tensor_t dup [2] = { ts [0], ts [3] };
    assert (vdgx_safetensors_write (sh2, dup, 2, NULL) == 0);
    s_write_file (idx, dup_index, strlen (dup_index));
    err = NULL;
    assert (!vdgx_ckpt_open (idx, &err) && err && strstr (err, "twice"));
    free (err);

    //  malformed safetensors images
    static const struct { const char *header; size_t data; const char *expect; } bad [] = {
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "needs 8 bytes" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 12, "outside" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlap" },
        { "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unsupported dtype" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "non-negative" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 8, "needs" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dims" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8, "unknown field" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{}}", 8, "duplicate" },
        { "{\"__metadata__\":{\"k\":1}}", 0, "__metadata__" },
        { "[1,2]", 0, "not a JSON object" },
        { "{\"a\":", 0, "bad header" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8, "data_offsets" },
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        size_t size;
        uint8_t *img = s_image (bad [i].header, bad [i].data, &size);
        err = NULL;
        c = vdgx_ckpt_open_buffer (img, size, &err);
        if (c || !err || !strstr (err, bad [i].expect))
            fprintf (stderr, "\ncase %zu: %s\n", i, err? err: "(accepted)");
        assert (!c && err && strstr (err, bad [i].expect));
        if (verbose)
            printf ("\n   %s", err);
        free (err);
        free (img);
    }
    //  good image from memory, then every truncation of it fails cleanly
    {
        size_t size;
        uint8_t *img = s_image ("{\"__metadata__\":{\"format\":\"pt\"},"
                                "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
                                "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}", 11, &size);
        err = NULL;
        c = vdgx_ckpt_open_buffer (img, size, &err);
        assert (c && vdgx_ckpt_count (c) == 2 && vdgx_ckpt_find (c, "b")->nbytes == 3);
        assert (vdgx_ckpt_metadata (c, "format") && strcmp (vdgx_ckpt_metadata (c, "format"), "pt") == 0);
        assert (vdgx_ckpt_metadata (c, "config") == NULL);
        //  A caller's buffer is not this checkpoint's to give back.
        memset (img + size - 11, 0x5a, 11);
        assert (!vdgx_ckpt_mapped (c));
        vdgx_ckpt_release_pages (c);
        assert (((const uint8_t *) vdgx_ckpt_find (c, "b")->data) [2] == 0x5a);
        vdgx_ckpt_destroy (&c);
        //  metadata written and read back (quotes and newlines escaped)
        const char *meta [] = { "config", "{\"a\": \"b\"}\n", "v", "2.3", NULL };
        const vdgx_ckpt_tensor_t one = { "x", VDGX_DTYPE_U8, 1, { 3 }, "abc", 3 };
        assert (vdgx_safetensors_write_meta (path, &one, 1, meta, NULL) == 0);
        c = vdgx_ckpt_open (path, NULL);
        assert (c && vdgx_ckpt_count (c) == 1 && strcmp (vdgx_ckpt_metadata (c, "config"), meta [1]) == 0);
        assert (strcmp (vdgx_ckpt_metadata (c, "v"), "2.3") == 0);
        vdgx_ckpt_destroy (&c);
        for (size_t cut = 0; cut < size; cut++) {
            err = NULL;
            c = vdgx_ckpt_open_buffer (img, cut, &err);
            assert (!c && err);
            free (err);
        }
        //  header length beyond the cap, and beyond the file
        img [7] = 0x10;
        err = NULL;
        assert (!vdgx_ckpt_open_buffer (img, size, &err) && strstr (err, "cap"));
        free (err);
        img [7] = 0;
        img [3] = 0x01;
        err = NULL;
        assert (!vdgx_ckpt_open_buffer (img, size, &err) && strstr (err, "truncated"));
        free (err);
        free (img);
    }
    err = NULL;
    snprintf (path, sizeof (path), "%s/does-not-exist.safetensors", dir);
    assert (!vdgx_ckpt_open (path, &err) && err && strstr (err, "No such file"));
    free (err);
    //  the reference checkpoints of the project open (when the source tree is around)
    const char *src = getenv ("VDGX_SOURCE_DIR");
    if (src) {
        char ref [512];
        snprintf (ref, sizeof (ref), "%s/tests/data/reference/wan21/weights_t5.safetensors", src);
        if (access (ref, R_OK) == 0) {
            err = NULL;
            c = vdgx_ckpt_open (ref, &err);
            assert (c && !err && vdgx_ckpt_find (c, "token_embedding.weight"));
            if (verbose)
                printf ("\n   weights_t5.safetensors: %zu tensors", vdgx_ckpt_count (c));
            vdgx_ckpt_destroy (&c);
        }
    }
    unlink (sh1);
    unlink (sh2);
    unlink (idx);
    snprintf (path, sizeof (path), "%s/a.safetensors", dir);
    unlink (path);
    assert (rmdir (dir) == 0);
    printf ("OK\n");
}
