/*  vdgx_backend.c - backend factory, pooled allocator, checked op wrappers, CPU fallback.

    The pool rounds each request up to a bucket (4 sizes per power of two, so at most 25%
    slack) and keeps freed blocks per exact bucket size: a denoising loop that allocates the
    same activations every step reuses the same blocks and never calls the device allocator
    after the first step.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VDGX_LIBDIR
#define VDGX_LIBDIR "lib"
#endif

#define S_LIVE_BUCKETS 1024

typedef struct s_live_t {
    void *ptr;
    size_t size;
    struct s_live_t *next;
} s_live_t;

typedef struct {
    void *ptr;
    size_t size;
} s_block_t;

struct _vdgx_backend_t {
    char name [32];
    int device;
    vdgx_dtype_t act_dtype;
    const vdgx_backend_impl_t *impl;
    const vdgx_backend_ops_t *ops;
    void *priv;
    char error [512];
    s_live_t *live [S_LIVE_BUCKETS];
    s_block_t *cache;                   //  freed blocks kept for reuse
    size_t cache_count, cache_cap;
    size_t bytes_in_use, peak_bytes, bytes_cached;
    vdgx_backend_t *host;               //  CPU backend for the fallback (non-CPU backends)
};

//  ---------------------------------------------------------------------------------------
//  Registry: the built-in CPU backend first, then what registers itself (modules included).

#define S_MAX_BACKENDS 16

static pthread_mutex_t s_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const vdgx_backend_impl_t *s_reg [S_MAX_BACKENDS];
static int s_reg_count = 0;

static bool
s_prefix_ok (const char *p, size_t n)
{
    if (n < 1 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p [i] >= 'a' && p [i] <= 'z') || (p [i] >= '0' && p [i] <= '9') || p [i] == '_'))
            return false;
    return true;
}

static void
s_builtin_locked (void)
{
    if (s_reg_count == 0)
        s_reg [s_reg_count++] = vdgx_cpu_backend_impl ();
}

static const vdgx_backend_impl_t *
s_find_locked (const char *prefix, size_t n)
{
    for (int i = 0; i < s_reg_count; i++)
        if (strlen (s_reg [i]->prefix) == n && strncmp (s_reg [i]->prefix, prefix, n) == 0)
            return s_reg [i];
    return NULL;
}

static int
s_register_locked (const vdgx_backend_impl_t *impl)
{
    if (!impl || !impl->prefix || !impl->ops || !s_prefix_ok (impl->prefix, strlen (impl->prefix)))
        return -1;
    const vdgx_backend_impl_t *have = s_find_locked (impl->prefix, strlen (impl->prefix));
    if (have)
        return have == impl? 0: -1;
    if (s_reg_count == S_MAX_BACKENDS)
        return -1;
    s_reg [s_reg_count++] = impl;
    return 0;
}

int
vdgx_backend_register (const vdgx_backend_impl_t *impl)
{
    pthread_mutex_lock (&s_reg_lock);
    s_builtin_locked ();
    int rc = s_register_locked (impl);
    pthread_mutex_unlock (&s_reg_lock);
    return rc;
}

int
vdgx_backend_count (void)
{
    pthread_mutex_lock (&s_reg_lock);
    s_builtin_locked ();
    int n = s_reg_count;
    pthread_mutex_unlock (&s_reg_lock);
    return n;
}

const vdgx_backend_impl_t *
vdgx_backend_get (int index)
{
    pthread_mutex_lock (&s_reg_lock);
    s_builtin_locked ();
    const vdgx_backend_impl_t *impl = index >= 0 && index < s_reg_count && index < S_MAX_BACKENDS? s_reg [index]: NULL;
    pthread_mutex_unlock (&s_reg_lock);
    return impl;
}

static const vdgx_backend_host_t s_host = {
    .abi = VDGX_BACKEND_ABI, .size = sizeof (vdgx_backend_host_t), .priv = vdgx_backend_priv,
    .set_priv = vdgx_backend_set_priv, .set_error = vdgx_backend_set_error,
    .nf4_values = vdgx_nf4_values
};

//  Loads libvdgx_<prefix>.so from the first place that has it and registers its backend.
//  The object stays loaded for the life of the process (GPU runtimes do not unload cleanly).
static const vdgx_backend_impl_t *
s_load_module_locked (const char *prefix, char **err)
{
    char name [64], exe [PATH_MAX], path [PATH_MAX + 128];
    snprintf (name, sizeof (name), "libvdgx_%s.so", prefix);
    //  candidate folders, in order
    char *dirs [40];
    int nd = 0;
    char *env = getenv ("VDGX_BACKEND_PATH")? strdup (getenv ("VDGX_BACKEND_PATH")): NULL;
    for (char *save = NULL, *d = env? strtok_r (env, ":", &save): NULL; d && nd < 32; d = strtok_r (NULL, ":", &save))
        dirs [nd++] = strdup (d);
    free (env);
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
    if (n > 0) {
        exe [n] = 0;
        char *slash = strrchr (exe, '/');
        if (slash) {
            *slash = 0;
            dirs [nd++] = vdgx_kstrdupf ("%s", exe);
            dirs [nd++] = vdgx_kstrdupf ("%s/../lib", exe);
            dirs [nd++] = vdgx_kstrdupf ("%s/../%s/vdgx", exe, VDGX_LIBDIR);
        }
    }
    void *handle = NULL;
    char *why = NULL;
    for (int i = 0; i < nd && !handle && !why; i++) {
        if (!dirs [i])
            continue;
        snprintf (path, sizeof (path), "%s/%s", dirs [i], name);
        if (access (path, F_OK) != 0)
            continue;
        handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
        if (!handle)
            why = vdgx_kstrdupf ("cannot load %s: %s", path, dlerror ());
    }
    if (!handle && !why) {
        handle = dlopen (name, RTLD_NOW | RTLD_LOCAL);      //  LD_LIBRARY_PATH, rpath, ld.so.cache
        if (!handle) {
            const char *e = dlerror ();
            if (e && !strstr (e, "No such file") && !strstr (e, "cannot open shared object file: No such"))
                why = vdgx_kstrdupf ("cannot load %s: %s", name, e);
            else
                why = vdgx_kstrdupf ("no backend \"%s\": %s not found ($VDGX_BACKEND_PATH, beside the "
                                     "executable, ../lib, ../%s/vdgx, the library path)", prefix, name, VDGX_LIBDIR);
        }
    }
    for (int i = 0; i < nd; i++)
        free (dirs [i]);
    const vdgx_backend_impl_t *impl = NULL;
    if (handle) {
        vdgx_backend_module_init_fn *init = (vdgx_backend_module_init_fn *) dlsym (handle, "vdgx_backend_module_init");
        char *merr = NULL;
        if (!init)
            why = vdgx_kstrdupf ("%s has no vdgx_backend_module_init", name);
        else if (!(impl = init (&s_host, &merr)))
            why = vdgx_kstrdupf ("%s: %s", name, merr? merr: "module refused to start");
        else if (strcmp (impl->prefix, prefix) != 0 || s_register_locked (impl)) {
            why = vdgx_kstrdupf ("%s registers \"%s\", not \"%s\"", name, impl->prefix, prefix);
            impl = NULL;
        }
        free (merr);
    }
    if (!impl && err)
        *err = why;
    else
        free (why);
    return impl;
}

//  ---------------------------------------------------------------------------------------
//  Factory

static vdgx_backend_t *s_new_impl (const vdgx_backend_impl_t *impl, int ordinal, vdgx_dtype_t act_dtype, char **err);

vdgx_backend_t *
vdgx_backend_new (const char *device, vdgx_dtype_t act_dtype, char **err)
{
    assert (device);
    int ordinal = 0;
    const char *colon = strchr (device, ':');
    size_t plen = colon? (size_t) (colon - device): strlen (device);
    if (colon) {
        char *end;
        long v = strtol (colon + 1, &end, 10);
        if (*end || end == colon + 1 || v < 0 || v > 4096) {
            if (err)
                *err = vdgx_kstrdupf ("bad device \"%s\": expected NAME or NAME:N (e.g. cpu, cpu:4)", device);
            return NULL;
        }
        ordinal = (int) v;
    }
    if (!s_prefix_ok (device, plen)) {
        if (err)
            *err = vdgx_kstrdupf ("unknown device \"%s\": expected NAME or NAME:N (e.g. cpu, cpu:4)", device);
        return NULL;
    }
    char prefix [16];
    memcpy (prefix, device, plen);
    prefix [plen] = 0;
    char *lerr = NULL;
    pthread_mutex_lock (&s_reg_lock);
    s_builtin_locked ();
    const vdgx_backend_impl_t *impl = s_find_locked (prefix, plen);
    if (!impl)
        impl = s_load_module_locked (prefix, &lerr);
    pthread_mutex_unlock (&s_reg_lock);
    if (!impl) {
        if (err)
            *err = vdgx_kstrdupf ("unknown device \"%s\": %s", device, lerr? lerr: "no such backend");
        free (lerr);
        return NULL;
    }
    if (!vdgx_dtype_is_float (act_dtype) || act_dtype == VDGX_DTYPE_F64
        || act_dtype == VDGX_DTYPE_F8_E4M3 || act_dtype == VDGX_DTYPE_F8_E5M2) {
        if (err)
            *err = vdgx_kstrdupf ("activation dtype %s is not supported", vdgx_dtype_name (act_dtype));
        return NULL;
    }
    return s_new_impl (impl, ordinal, act_dtype, err);
}

static vdgx_backend_t *
s_new_impl (const vdgx_backend_impl_t *impl, int ordinal, vdgx_dtype_t act_dtype, char **err)
{
    vdgx_backend_t *self = calloc (1, sizeof (*self));
    if (!self) {
        if (err)
            *err = vdgx_kstrdupf ("out of memory");
        return NULL;
    }
    self->impl = impl;
    self->ops = impl->ops;
    self->act_dtype = impl->flags & VDGX_BACKEND_F32_ONLY? VDGX_DTYPE_F32: act_dtype;
    if (impl->flags & VDGX_BACKEND_HOST_MEMORY) {
        self->device = VDGX_DEVICE_CPU;
        snprintf (self->name, sizeof (self->name), "%s", impl->prefix);
    }
    else {
        self->device = ordinal;
        snprintf (self->name, sizeof (self->name), "%s:%d", impl->prefix, ordinal);
    }
    char *oerr = NULL;
    if (impl->open && impl->open (self, ordinal, &oerr)) {
        if (err)
            *err = oerr? oerr: vdgx_kstrdupf ("cannot open device %s:%d", impl->prefix, ordinal);
        else
            free (oerr);
        free (self);
        return NULL;
    }
    return self;
}

static void s_cache_release (vdgx_backend_t *self);

void
vdgx_backend_destroy (vdgx_backend_t **self_p)
{
    assert (self_p);
    vdgx_backend_t *self = *self_p;
    if (!self)
        return;
    s_cache_release (self);
    //  Blocks still in use are a leak in the caller; return them to the device anyway.
    for (int i = 0; i < S_LIVE_BUCKETS; i++)
        while (self->live [i]) {
            s_live_t *l = self->live [i];
            self->live [i] = l->next;
            self->ops->free (self, l->ptr);
            free (l);
        }
    if (self->impl->close)
        self->impl->close (self);
    vdgx_backend_destroy (&self->host);
    free (self->cache);
    free (self);
    *self_p = NULL;
}

const char *vdgx_backend_name (vdgx_backend_t *self) { return self->name; }
int vdgx_backend_device (vdgx_backend_t *self) { return self->device; }
vdgx_dtype_t vdgx_backend_act_dtype (vdgx_backend_t *self) { return self->act_dtype; }
const char *vdgx_backend_error (vdgx_backend_t *self) { return self->error; }
size_t vdgx_backend_bytes_in_use (vdgx_backend_t *self) { return self->bytes_in_use; }
size_t vdgx_backend_peak_bytes (vdgx_backend_t *self) { return self->peak_bytes; }
void *vdgx_backend_priv (vdgx_backend_t *self) { return self->priv; }
void vdgx_backend_set_priv (vdgx_backend_t *self, void *priv) { self->priv = priv; }

int
vdgx_backend_threads (vdgx_backend_t *self)
{
    return self->impl->threads? self->impl->threads (self): 1;
}

bool
vdgx_backend_available (const char *device)
{
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new (device, VDGX_DTYPE_BF16, &err);
    free (err);
    bool ok = b != NULL;
    vdgx_backend_destroy (&b);
    return ok;
}

void
vdgx_backend_set_error (vdgx_backend_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->error, sizeof (self->error), fmt, ap);
    va_end (ap);
}

//  ---------------------------------------------------------------------------------------
//  Pool

static size_t
s_bucket (size_t bytes)
{
    if (bytes <= 256)
        return 256;
    //  Four steps per power of two: p, 1.25p, 1.5p, 1.75p.
    size_t p = 1;
    while (p * 2 <= bytes && p < ((size_t) 1 << 62))
        p *= 2;
    size_t q = p / 4;
    size_t r = ((bytes + q - 1) / q) * q;
    return r < bytes? bytes: r;
}

static size_t
s_hash (void *ptr)
{
    uintptr_t v = (uintptr_t) ptr;
    v ^= v >> 17;
    v *= 0x9e3779b97f4a7c15ull;
    return (size_t) (v >> 40) % S_LIVE_BUCKETS;
}

static void
s_cache_release (vdgx_backend_t *self)
{
    for (size_t i = 0; i < self->cache_count; i++)
        self->ops->free (self, self->cache [i].ptr);
    self->cache_count = 0;
    self->bytes_cached = 0;
}

void
vdgx_backend_trim (vdgx_backend_t *self)
{
    s_cache_release (self);
}

void *
vdgx_backend_alloc (vdgx_backend_t *self, size_t bytes)
{
    size_t size = s_bucket (bytes);
    void *ptr = NULL;
    //  Most recently freed first: it is likeliest to be warm in cache.
    for (size_t i = self->cache_count; i-- > 0; )
        if (self->cache [i].size == size) {
            ptr = self->cache [i].ptr;
            self->cache [i] = self->cache [--self->cache_count];
            self->bytes_cached -= size;
            break;
        }
    if (!ptr) {
        ptr = self->ops->alloc (self, size);
        if (!ptr && self->cache_count) {
            s_cache_release (self);
            ptr = self->ops->alloc (self, size);
        }
        if (!ptr) {
            vdgx_backend_set_error (self, "%s: out of memory allocating %zu bytes", self->name, size);
            return NULL;
        }
    }
    s_live_t *l = malloc (sizeof (*l));
    if (!l) {
        self->ops->free (self, ptr);
        vdgx_backend_set_error (self, "out of host memory");
        return NULL;
    }
    size_t h = s_hash (ptr);
    l->ptr = ptr;
    l->size = size;
    l->next = self->live [h];
    self->live [h] = l;
    self->bytes_in_use += size;
    if (self->bytes_in_use > self->peak_bytes)
        self->peak_bytes = self->bytes_in_use;
    return ptr;
}

void
vdgx_backend_free (vdgx_backend_t *self, void *ptr)
{
    if (!ptr)
        return;
    size_t h = s_hash (ptr);
    s_live_t **pp = &self->live [h];
    while (*pp && (*pp)->ptr != ptr)
        pp = &(*pp)->next;
    assert (*pp);       //  freeing a pointer this backend did not hand out
    if (!*pp)
        return;
    s_live_t *l = *pp;
    *pp = l->next;
    self->bytes_in_use -= l->size;
    if (self->cache_count == self->cache_cap) {
        size_t ncap = self->cache_cap? self->cache_cap * 2: 64;
        s_block_t *c = realloc (self->cache, ncap * sizeof (*c));
        if (!c) {
            self->ops->free (self, ptr);
            free (l);
            return;
        }
        self->cache = c;
        self->cache_cap = ncap;
    }
    self->cache [self->cache_count].ptr = ptr;
    self->cache [self->cache_count].size = l->size;
    self->cache_count++;
    self->bytes_cached += l->size;
    free (l);
}

//  ---------------------------------------------------------------------------------------
//  Tensors

int
vdgx_tensor_alloc (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dtype, int ndim,
                   const int64_t *shape)
{
    assert (b && t);
    if (ndim < 0 || ndim > VDGX_MAX_DIMS || (unsigned) dtype >= VDGX_DTYPE_COUNT) {
        vdgx_backend_set_error (b, "tensor_alloc: bad ndim %d or dtype", ndim);
        return -1;
    }
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape [i] < 0 || (shape [i] > 0 && n > (UINT64_MAX >> 4) / (uint64_t) shape [i])) {
            vdgx_backend_set_error (b, "tensor_alloc: bad shape");
            return -1;
        }
        n *= (uint64_t) shape [i];
    }
    vdgx_tensor_init (t, dtype, ndim, shape, NULL, b->device);
    t->data = vdgx_backend_alloc (b, (size_t) n * vdgx_dtype_size (dtype));
    if (!t->data)
        return -1;
    t->owner = b;
    return 0;
}

void
vdgx_tensor_release (vdgx_backend_t *b, vdgx_tensor_t *t)
{
    if (!t || !t->data)
        return;
    if (t->owner == b)
        vdgx_backend_free (b, t->data);
    t->data = NULL;
    t->owner = NULL;
}

int
vdgx_tensor_from_f32 (vdgx_backend_t *b, vdgx_tensor_t *t, const float *src)
{
    size_t n = (size_t) vdgx_tensor_numel (t);
    if (!vdgx_dtype_is_float (t->dtype)) {
        vdgx_backend_set_error (b, "tensor_from_f32: %s is not a float dtype", vdgx_dtype_name (t->dtype));
        return -1;
    }
    if (b->device == VDGX_DEVICE_CPU)
        return vdgx_convert_from_f32 (t->data, t->dtype, src, n);
    void *tmp = malloc (n * vdgx_dtype_size (t->dtype) + 1);
    if (!tmp)
        return -1;
    vdgx_convert_from_f32 (tmp, t->dtype, src, n);
    int rc = b->ops->upload (b, t->data, tmp, n * vdgx_dtype_size (t->dtype));
    free (tmp);
    return rc;
}

int
vdgx_tensor_to_f32 (vdgx_backend_t *b, const vdgx_tensor_t *t, float *dst)
{
    size_t n = (size_t) vdgx_tensor_numel (t);
    if (!vdgx_dtype_is_float (t->dtype)) {
        vdgx_backend_set_error (b, "tensor_to_f32: %s is not a float dtype", vdgx_dtype_name (t->dtype));
        return -1;
    }
    if (b->device == VDGX_DEVICE_CPU)
        return vdgx_convert_to_f32 (dst, t->data, t->dtype, n);
    void *tmp = malloc (n * vdgx_dtype_size (t->dtype) + 1);
    if (!tmp)
        return -1;
    int rc = b->ops->download (b, tmp, t->data, n * vdgx_dtype_size (t->dtype));
    if (rc == 0)
        rc = vdgx_convert_to_f32 (dst, tmp, t->dtype, n);
    free (tmp);
    return rc;
}

int
vdgx_tensor_upload (vdgx_backend_t *b, vdgx_tensor_t *t, const void *src)
{
    size_t bytes = vdgx_tensor_nbytes (t);
    if (b->device == VDGX_DEVICE_CPU) {
        if (bytes)
            memcpy (t->data, src, bytes);
        return 0;
    }
    return b->ops->upload (b, t->data, src, bytes);
}

//  ---------------------------------------------------------------------------------------
//  Weights

static size_t
s_weight_data_bytes (const vdgx_weight_t *w)
{
    size_t nk = (size_t) w->n * (size_t) w->k;
    switch (w->fmt) {
        case VDGX_WFMT_F32:      return nk * 4;
        case VDGX_WFMT_BF16:
        case VDGX_WFMT_F16:      return nk * 2;
        case VDGX_WFMT_FP8_E4M3: return nk;
        default:                 return nk / 2;
    }
}

static size_t
s_weight_scale_bytes (const vdgx_weight_t *w)
{
    size_t el = (w->fmt == VDGX_WFMT_NVFP4 || w->fmt == VDGX_WFMT_MXFP4)? 1: 4;
    return w->scales? (size_t) w->scale_count * el: 0;
}

static int
s_weight_upload_generic (vdgx_backend_t *b, vdgx_weight_t *dst, const vdgx_weight_t *host)
{
    *dst = *host;
    dst->data = dst->scales = NULL;
    dst->backend_priv = NULL;
    dst->device = b->device;
    dst->owner = b;
    size_t db = s_weight_data_bytes (host), sb = s_weight_scale_bytes (host);
    dst->data = vdgx_backend_alloc (b, db);
    if (!dst->data || b->ops->upload (b, dst->data, host->data, db))
        goto fail;
    if (sb) {
        dst->scales = vdgx_backend_alloc (b, sb);
        if (!dst->scales || b->ops->upload (b, dst->scales, host->scales, sb))
            goto fail;
    }
    return 0;
fail:
    vdgx_backend_free (b, dst->data);
    vdgx_backend_free (b, dst->scales);
    dst->data = dst->scales = NULL;
    return -1;
}

static void
s_weight_free_generic (vdgx_backend_t *b, vdgx_weight_t *w)
{
    vdgx_backend_free (b, w->data);
    vdgx_backend_free (b, w->scales);
    w->data = w->scales = NULL;
}

//  Exposed to the CPU backend, whose weight ops are exactly the generic ones.
int vdgx_backend_weight_upload_generic (vdgx_backend_t *b, vdgx_weight_t *dst, const vdgx_weight_t *host);
void vdgx_backend_weight_free_generic (vdgx_backend_t *b, vdgx_weight_t *w);
int vdgx_backend_weight_upload_generic (vdgx_backend_t *b, vdgx_weight_t *dst, const vdgx_weight_t *host)
{ return s_weight_upload_generic (b, dst, host); }
void vdgx_backend_weight_free_generic (vdgx_backend_t *b, vdgx_weight_t *w)
{ s_weight_free_generic (b, w); }

static int
s_check_weight (vdgx_backend_t *b, const vdgx_weight_t *w)
{
    if (!w || (unsigned) w->fmt >= VDGX_WFMT_COUNT || w->n <= 0 || w->k <= 0 || !w->data) {
        vdgx_backend_set_error (b, "weight: bad format, shape or data");
        return -1;
    }
    static const int block [VDGX_WFMT_COUNT] = { 1, 1, 1, 1, 16, 32, 64 };
    if (w->k % block [w->fmt]) {
        vdgx_backend_set_error (b, "weight: %s needs k (%lld) to be a multiple of %d",
                                vdgx_wfmt_name (w->fmt), (long long) w->k, block [w->fmt]);
        return -1;
    }
    int64_t want = 0;
    switch (w->fmt) {
        case VDGX_WFMT_FP8_E4M3: want = (w->scale_count == 1)? 1: w->n; break;
        case VDGX_WFMT_NVFP4:    want = w->n * (w->k / 16); break;
        case VDGX_WFMT_MXFP4:    want = w->n * (w->k / 32); break;
        case VDGX_WFMT_NF4:      want = w->n * (w->k / 64); break;
        default:                 want = 0;
    }
    if (want && (w->scale_count != want || !w->scales)) {
        vdgx_backend_set_error (b, "weight: %s [%lld,%lld] needs %lld scales, has %lld",
                                vdgx_wfmt_name (w->fmt), (long long) w->n, (long long) w->k,
                                (long long) want, (long long) w->scale_count);
        return -1;
    }
    return 0;
}

int
vdgx_weight_to_backend (vdgx_backend_t *b, vdgx_weight_t *dst, const vdgx_weight_t *host)
{
    assert (b && dst && host);
    if (s_check_weight (b, host))
        return -1;
    if (host->device != VDGX_DEVICE_CPU) {
        vdgx_backend_set_error (b, "weight_to_backend: the source weight must be on the host");
        return -1;
    }
    if (b->ops->weight_upload)
        return b->ops->weight_upload (b, dst, host);
    return s_weight_upload_generic (b, dst, host);
}

void
vdgx_weight_release (vdgx_backend_t *b, vdgx_weight_t *w)
{
    if (!w || (!w->data && !w->scales && !w->backend_priv))
        return;
    if (w->owner != b)
        return;
    if (b->ops->weight_free)
        b->ops->weight_free (b, w);
    else
        s_weight_free_generic (b, w);
    w->data = w->scales = w->backend_priv = NULL;
    w->owner = NULL;
}

//  ---------------------------------------------------------------------------------------
//  Op names

static const char *s_op_names [VDGX_OP_COUNT] = {
    "linear", "matmul", "attention", "layernorm", "rmsnorm", "channel_rmsnorm", "modulate",
    "gated_residual", "gelu_tanh", "silu", "add_scaled", "mul", "affine_clamp", "rope",
    "permute", "concat", "slice", "conv3d", "conv2d", "upsample2x", "cast", "conv1d",
    "conv_transpose1d", "pad1d", "snake", "unary", "channel_rmsnorm_silu"
};

const char *
vdgx_op_name (vdgx_op_t op)
{
    return (unsigned) op < VDGX_OP_COUNT? s_op_names [op]: "?";
}

//  ---------------------------------------------------------------------------------------
//  Checks shared by the wrappers

static int
s_check (vdgx_backend_t *b, const char *op, const char *what, const vdgx_tensor_t *t, bool act)
{
    if (!t) {
        vdgx_backend_set_error (b, "%s: %s is NULL", op, what);
        return -1;
    }
    if (t->ndim < 0 || t->ndim > VDGX_MAX_DIMS || (unsigned) t->dtype >= VDGX_DTYPE_COUNT) {
        vdgx_backend_set_error (b, "%s: %s has a bad ndim or dtype", op, what);
        return -1;
    }
    for (int i = 0; i < t->ndim; i++)
        if (t->shape [i] < 0) {
            vdgx_backend_set_error (b, "%s: %s has a negative dim", op, what);
            return -1;
        }
    if (!t->data && vdgx_tensor_numel (t) > 0) {
        vdgx_backend_set_error (b, "%s: %s has no data", op, what);
        return -1;
    }
    if (!vdgx_tensor_is_contiguous (t)) {
        vdgx_backend_set_error (b, "%s: %s is not contiguous", op, what);
        return -1;
    }
    if (t->device != b->device) {
        vdgx_backend_set_error (b, "%s: %s is on device %d, backend %s", op, what, t->device, b->name);
        return -1;
    }
    if (act && t->dtype != VDGX_DTYPE_F32 && t->dtype != b->act_dtype) {
        vdgx_backend_set_error (b, "%s: %s is %s; expected F32 or %s", op, what,
                                vdgx_dtype_name (t->dtype), vdgx_dtype_name (b->act_dtype));
        return -1;
    }
    return 0;
}

static int
s_check_numel (vdgx_backend_t *b, const char *op, const char *what, const vdgx_tensor_t *t, int64_t n)
{
    if (vdgx_tensor_numel (t) != n) {
        vdgx_backend_set_error (b, "%s: %s has %lld elements, expected %lld", op, what,
                                (long long) vdgx_tensor_numel (t), (long long) n);
        return -1;
    }
    return 0;
}

static int
s_check_same_shape_named (vdgx_backend_t *b, const char *op, const char *yn, const vdgx_tensor_t *y,
                          const char *xn, const vdgx_tensor_t *x)
{
    bool same = y->ndim == x->ndim;
    for (int i = 0; same && i < x->ndim; i++)
        same = y->shape [i] == x->shape [i];
    if (!same) {
        vdgx_backend_set_error (b, "%s: %s must have the shape of %s (%d dims, %lld x ... vs %d dims, %lld x ...)",
                                op, yn, xn, y->ndim, (long long) (y->ndim? y->shape [0]: 0), x->ndim,
                                (long long) (x->ndim? x->shape [0]: 0));
        return -1;
    }
    return 0;
}

static int
s_check_same_shape (vdgx_backend_t *b, const char *op, const vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    return s_check_same_shape_named (b, op, "the output", y, "the input", x);
}

static int
s_check_dims (vdgx_backend_t *b, const char *op, const char *what, const vdgx_tensor_t *t, int ndim)
{
    if (t->ndim != ndim) {
        vdgx_backend_set_error (b, "%s: %s must have %d dims, has %d", op, what, ndim, t->ndim);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  CPU fallback: download every tensor to host f32 (U8 stays U8), run the CPU op, upload
//  the outputs converted back to their dtype.

#define S_FB_MAX 6

typedef struct {
    int kind;
    const vdgx_weight_t *w;
    float f [4];
    int i [8];
    int64_t l [2];
    const int *perm;
    const vdgx_attn_spec_t *attn;
} s_fb_args_t;

typedef int (s_fb_fn_t) (vdgx_backend_t *cpu, vdgx_tensor_t **t, const s_fb_args_t *a);

//  Downloads t into contiguous host memory; t may have a batch stride (dim 0) over its
//  contiguous inner dims (the KV-cache views attention accepts).
static int
s_download_rows (vdgx_backend_t *b, void *dst, const vdgx_tensor_t *t)
{
    size_t raw = vdgx_tensor_nbytes (t);
    if (vdgx_tensor_is_contiguous (t))
        return b->ops->download (b, dst, t->data, raw);
    size_t row = raw / (size_t) t->shape [0], el = vdgx_dtype_size (t->dtype);
    for (int64_t i = 0; i < t->shape [0]; i++)
        if (b->ops->download (b, (char *) dst + (size_t) i * row,
                              (const char *) t->data + (size_t) (i * t->stride [0]) * el, row))
            return -1;
    return 0;
}

static int
s_fallback (vdgx_backend_t *b, const char *op, int nt, const vdgx_tensor_t **ts, int nout,
            s_fb_fn_t *fn, const s_fb_args_t *args)
{
    //  ts [0 .. nout-1] are outputs (downloaded too: gated_residual updates in place).
    if (!b->host) {
        char *err = NULL;
        b->host = s_new_impl (vdgx_cpu_backend_impl (), 0, VDGX_DTYPE_F32, &err);
        free (err);
        if (!b->host) {
            vdgx_backend_set_error (b, "%s: cannot create the CPU fallback backend", op);
            return -1;
        }
    }
    vdgx_tensor_t host [S_FB_MAX];
    vdgx_tensor_t *hp [S_FB_MAX] = { 0 };
    int rc = 0;
    for (int i = 0; i < nt && rc == 0; i++) {
        if (!ts [i])
            continue;
        const vdgx_tensor_t *t = ts [i];
        vdgx_dtype_t hd = vdgx_dtype_is_float (t->dtype)? VDGX_DTYPE_F32: t->dtype;
        if (vdgx_tensor_alloc (b->host, &host [i], hd, t->ndim, t->shape)) {
            rc = -1;
            break;
        }
        hp [i] = &host [i];
        size_t raw = vdgx_tensor_nbytes (t);
        void *tmp = malloc (raw + 1);
        if (!tmp || s_download_rows (b, tmp, t))
            rc = -1;
        else if (hd == VDGX_DTYPE_F32)
            rc = vdgx_convert_to_f32 (host [i].data, tmp, t->dtype, (size_t) vdgx_tensor_numel (t));
        else
            memcpy (host [i].data, tmp, raw);
        free (tmp);
    }
    s_fb_args_t a = *args;
    vdgx_weight_t hw;
    void *wdata = NULL, *wscales = NULL;
    if (rc == 0 && args->w) {
        hw = *args->w;
        size_t db = s_weight_data_bytes (&hw), sb = s_weight_scale_bytes (&hw);
        wdata = malloc (db + 1);
        wscales = sb? malloc (sb): NULL;
        if (!wdata || (sb && !wscales) || b->ops->download (b, wdata, args->w->data, db)
            || (sb && b->ops->download (b, wscales, args->w->scales, sb)))
            rc = -1;
        hw.data = wdata;
        hw.scales = wscales;
        hw.device = VDGX_DEVICE_CPU;
        hw.owner = NULL;
        hw.backend_priv = NULL;
        a.w = &hw;
    }
    if (rc == 0 && fn (b->host, hp, &a)) {
        vdgx_backend_set_error (b, "%s (CPU fallback): %s", op, vdgx_backend_error (b->host));
        rc = -1;
    }
    for (int i = 0; i < nout && rc == 0; i++) {
        const vdgx_tensor_t *t = ts [i];
        size_t raw = vdgx_tensor_nbytes (t);
        void *tmp = malloc (raw + 1);
        if (!tmp || vdgx_convert_from_f32 (tmp, t->dtype, host [i].data, (size_t) vdgx_tensor_numel (t))
            || b->ops->upload (b, t->data, tmp, raw))
            rc = -1;
        free (tmp);
    }
    for (int i = 0; i < nt; i++)
        if (hp [i])
            vdgx_tensor_release (b->host, hp [i]);
    free (wdata);
    free (wscales);
    if (rc && !b->error [0])
        vdgx_backend_set_error (b, "%s: CPU fallback failed", op);
    return rc;
}

//  One adapter per op: unpacks host tensors and calls the CPU backend's wrapper.
static int s_fb_linear (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_linear (c, t [0], t [1], a->w, t [2]); }
static int s_fb_matmul (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_matmul (c, t [0], t [1], t [2]); }
static int s_fb_attention (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{
    vdgx_attn_spec_t spec = *a->attn;
    spec.key_mask = t [4];
    spec.bias = t [5];
    return vdgx_op_attention_ex (c, t [0], t [1], t [2], t [3], &spec, a->f [0]);
}
static int s_fb_layernorm (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_layernorm (c, t [0], t [1], t [2], t [3], a->f [0]); }
static int s_fb_rmsnorm (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_rmsnorm (c, t [0], t [1], t [2], a->f [0]); }
static int s_fb_channel_rmsnorm (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_channel_rmsnorm (c, t [0], t [1], t [2], t [3]); }
static int s_fb_modulate (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_modulate (c, t [0], t [1], t [2], t [3]); }
static int s_fb_gated_residual (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_gated_residual (c, t [0], t [1], t [2]); }
static int s_fb_gelu_tanh (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_gelu_tanh (c, t [0], t [1]); }
static int s_fb_silu (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_silu (c, t [0], t [1]); }
static int s_fb_add_scaled (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_add_scaled (c, t [0], t [1], t [2], a->f [0]); }
static int s_fb_mul (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_mul (c, t [0], t [1], t [2]); }
static int s_fb_affine_clamp (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_affine_clamp (c, t [0], t [1], a->f [0], a->f [1], a->f [2], a->f [3]); }
static int s_fb_rope (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_rope (c, t [0], t [1], t [2], t [3], (vdgx_rope_layout_t) a->i [0]); }
static int s_fb_permute (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_permute (c, t [0], t [1], a->perm); }
static int s_fb_concat (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_concat (c, t [0], t [1], t [2], a->i [0]); }
static int s_fb_slice (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_slice (c, t [0], t [1], a->i [0], a->l [0], a->l [1]); }
static int s_fb_conv3d (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_conv3d (c, t [0], t [1], t [2], t [3], a->i, a->i + 3); }
static int s_fb_conv2d (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_conv2d (c, t [0], t [1], t [2], t [3], a->i, a->i + 2); }
static int s_fb_upsample2x (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_upsample2x (c, t [0], t [1]); }
static int s_fb_cast (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ (void) a; return vdgx_op_cast (c, t [0], t [1]); }
static vdgx_conv1d_params_t s_fb_conv1d_params (const s_fb_args_t *a)
{
    return (vdgx_conv1d_params_t) { .stride = a->i [0], .pad_left = a->i [1], .pad_right = a->i [2],
                                    .dilation = a->i [3], .groups = a->i [4], .output_padding = a->i [5] };
}
static int s_fb_conv1d (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ vdgx_conv1d_params_t p = s_fb_conv1d_params (a); return vdgx_op_conv1d (c, t [0], t [1], t [2], t [3], &p); }
static int s_fb_conv_transpose1d (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ vdgx_conv1d_params_t p = s_fb_conv1d_params (a); return vdgx_op_conv_transpose1d (c, t [0], t [1], t [2], t [3], &p); }
static int s_fb_pad1d (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_pad1d (c, t [0], t [1], a->i [0], a->i [1], (vdgx_pad_mode_t) a->i [2]); }
static int s_fb_snake (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_snake (c, t [0], t [1], t [2], t [3], a->i [0] != 0); }
static int s_fb_unary (vdgx_backend_t *c, vdgx_tensor_t **t, const s_fb_args_t *a)
{ return vdgx_op_unary (c, t [0], t [1], (vdgx_unary_t) a->i [0], a->f [0]); }

//  Whether the backend has the op's function (vdgx_backend_supports adds supports_op).
static bool
s_has_op (const vdgx_backend_ops_t *o, vdgx_op_t op)
{
    switch (op) {
        case VDGX_OP_LINEAR:            return o->linear;
        case VDGX_OP_MATMUL:            return o->matmul;
        case VDGX_OP_ATTENTION:         return o->attention;
        case VDGX_OP_LAYERNORM:         return o->layernorm;
        case VDGX_OP_RMSNORM:           return o->rmsnorm;
        case VDGX_OP_CHANNEL_RMSNORM:   return o->channel_rmsnorm;
        case VDGX_OP_MODULATE:          return o->modulate;
        case VDGX_OP_GATED_RESIDUAL:    return o->gated_residual;
        case VDGX_OP_GELU_TANH:         return o->gelu_tanh;
        case VDGX_OP_SILU:              return o->silu;
        case VDGX_OP_ADD_SCALED:        return o->add_scaled;
        case VDGX_OP_MUL:               return o->mul;
        case VDGX_OP_AFFINE_CLAMP:      return o->affine_clamp;
        case VDGX_OP_ROPE:              return o->rope;
        case VDGX_OP_PERMUTE:           return o->permute;
        case VDGX_OP_CONCAT:            return o->concat;
        case VDGX_OP_SLICE:             return o->slice;
        case VDGX_OP_CONV3D:            return o->conv3d;
        case VDGX_OP_CONV2D:            return o->conv2d;
        case VDGX_OP_UPSAMPLE2X:        return o->upsample2x;
        case VDGX_OP_CAST:              return o->cast;
        case VDGX_OP_CONV1D:            return o->conv1d;
        case VDGX_OP_CONV_TRANSPOSE1D:  return o->conv_transpose1d;
        case VDGX_OP_PAD1D:             return o->pad1d;
        case VDGX_OP_SNAKE:             return o->snake;
        case VDGX_OP_UNARY:             return o->unary;
        case VDGX_OP_CHANNEL_RMSNORM_SILU: return o->channel_rmsnorm_silu;
        default:                        return false;
    }
}

bool
vdgx_backend_supports (vdgx_backend_t *self, const vdgx_op_desc_t *desc)
{
    return s_has_op (self->ops, desc->op) && (!self->ops->supports_op || self->ops->supports_op (self, desc));
}

static bool
s_supports (vdgx_backend_t *b, vdgx_op_t op, int nt, const vdgx_tensor_t **ts, const s_fb_args_t *a)
{
    if (!b->ops->supports_op)
        return true;
    vdgx_op_desc_t d = { .op = op, .ntensors = nt, .w = a->w, .attn = a->attn };
    for (int i = 0; i < nt && i < VDGX_OP_MAX_TENSORS; i++)
        d.t [i] = ts [i];
    return b->ops->supports_op (b, &d);
}

#define S_DISPATCH(opname, openum, nt, nout, call, ...) do { \
    const vdgx_tensor_t *ts_ [] = { __VA_ARGS__ }; \
    if (b->ops->opname && s_supports (b, openum, nt, ts_, &args_)) \
        return b->ops->opname call; \
    return s_fallback (b, #opname, nt, ts_, nout, s_fb_##opname, &args_); \
} while (0)

//  ---------------------------------------------------------------------------------------
//  Op wrappers

int
vdgx_op_linear (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_weight_t *w, const vdgx_tensor_t *bias)
{
    const char *op = "linear";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_weight (b, w))
        return -1;
    if (w->device != b->device) {
        vdgx_backend_set_error (b, "linear: weight is on device %d, backend %s (use vdgx_weight_to_backend)", w->device, b->name);
        return -1;
    }
    if (x->ndim < 1 || y->ndim < 1 || x->shape [x->ndim - 1] != w->k || y->shape [y->ndim - 1] != w->n
        || vdgx_tensor_numel (x) / w->k != (w->n? vdgx_tensor_numel (y) / w->n: 0)) {
        vdgx_backend_set_error (b, "linear: x [...,%lld] / y [...,%lld] do not match weight [%lld,%lld]",
                                (long long) (x->ndim? x->shape [x->ndim - 1]: 0),
                                (long long) (y->ndim? y->shape [y->ndim - 1]: 0), (long long) w->n, (long long) w->k);
        return -1;
    }
    if (bias && (s_check (b, op, "bias", bias, true) || s_check_numel (b, op, "bias", bias, w->n)))
        return -1;
    s_fb_args_t args_ = { .w = w };
    S_DISPATCH (linear, VDGX_OP_LINEAR, 3, 1, (b, y, x, w, bias), y, x, bias);
}

int
vdgx_op_matmul (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bm)
{
    const char *op = "matmul";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "a", a, true) || s_check (b, op, "b", bm, true)
        || s_check_dims (b, op, "a", a, 3) || s_check_dims (b, op, "b", bm, 3) || s_check_dims (b, op, "y", y, 3))
        return -1;
    if (a->shape [0] != bm->shape [0] || y->shape [0] != a->shape [0] || a->shape [2] != bm->shape [1]
        || y->shape [1] != a->shape [1] || y->shape [2] != bm->shape [2]) {
        vdgx_backend_set_error (b, "matmul: shapes do not match (a [B,M,K], b [B,K,N], y [B,M,N])");
        return -1;
    }
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (matmul, VDGX_OP_MATMUL, 3, 1, (b, y, a, bm), y, a, bm);
}

bool
vdgx_attn_visible (const vdgx_attn_spec_t *spec, int64_t i, int64_t j)
{
    if (!spec)
        return true;
    int64_t p = i + spec->q_offset;
    switch (spec->kind) {
        case VDGX_ATTN_CAUSAL:  return j <= p;
        case VDGX_ATTN_SLIDING: return j <= p && j > p - spec->window;
        case VDGX_ATTN_BLOCK_CAUSAL: {
            //  floor division: p may be negative (queries before the first key)
            int64_t pb = p >= 0? p / spec->block: -((-p + spec->block - 1) / spec->block);
            return j / spec->block <= pb;
        }
        default:                return true;
    }
}

//  k and v: [B,Lk,Hkv,D] with contiguous inner dims; a batch stride over Lk*Hkv*D is allowed.
static int
s_check_kv (vdgx_backend_t *b, const char *what, const vdgx_tensor_t *t)
{
    if (!t) {
        vdgx_backend_set_error (b, "attention: %s is NULL", what);
        return -1;
    }
    if (t->ndim != 4) {
        vdgx_backend_set_error (b, "attention: %s must have 4 dims, has %d", what, t->ndim);
        return -1;
    }
    vdgx_tensor_t c = *t;
    c.stride [0] = t->shape [1] * t->shape [2] * t->shape [3];
    if (s_check (b, "attention", what, &c, true))
        return -1;
    if (t->shape [0] > 1 && t->stride [0] < c.stride [0]) {
        vdgx_backend_set_error (b, "attention: %s is not contiguous (only a batch stride >= Lk*Hkv*D is allowed)", what);
        return -1;
    }
    return 0;
}

int
vdgx_op_attention_ex (vdgx_backend_t *b, vdgx_tensor_t *o, const vdgx_tensor_t *q, const vdgx_tensor_t *k,
                      const vdgx_tensor_t *v, const vdgx_attn_spec_t *spec, float scale)
{
    const char *op = "attention";
    static const vdgx_attn_spec_t full = { .kind = VDGX_ATTN_FULL };
    if (!spec)
        spec = &full;
    if (s_check (b, op, "o", o, true) || s_check (b, op, "q", q, true) || s_check_kv (b, "k", k)
        || s_check_kv (b, "v", v) || s_check_dims (b, op, "q", q, 4)
        || s_check_same_shape_named (b, op, "o", o, "q", q) || s_check_same_shape_named (b, op, "v", v, "k", k))
        return -1;
    int64_t B = q->shape [0], Lq = q->shape [1], H = q->shape [2], Lk = k->shape [1], Hkv = k->shape [2];
    if (k->shape [0] != B || k->shape [3] != q->shape [3] || (H > 0 && (Hkv <= 0 || H % Hkv))) {
        vdgx_backend_set_error (b, "attention: q [B,Lq,H,D] and k [B,Lk,Hkv,D] differ in B or D, or H %% Hkv != 0"
                                " (B %lld/%lld, H %lld, Hkv %lld, D %lld/%lld)", (long long) B, (long long) k->shape [0],
                                (long long) H, (long long) Hkv, (long long) q->shape [3], (long long) k->shape [3]);
        return -1;
    }
    if (B > 1 && k->stride [0] != v->stride [0]) {
        vdgx_backend_set_error (b, "attention: k and v must have the same batch stride");
        return -1;
    }
    if ((unsigned) spec->kind > VDGX_ATTN_BLOCK_CAUSAL || spec->q_offset < -((int64_t) 1 << 40)
        || spec->q_offset > ((int64_t) 1 << 40) || (spec->kind == VDGX_ATTN_SLIDING && spec->window < 1)
        || (spec->kind == VDGX_ATTN_BLOCK_CAUSAL && spec->block < 1)) {
        vdgx_backend_set_error (b, "attention: bad spec (kind %d, q_offset %lld, window %lld, block %lld)",
                                (int) spec->kind, (long long) spec->q_offset, (long long) spec->window,
                                (long long) spec->block);
        return -1;
    }
    const vdgx_tensor_t *key_mask = spec->key_mask, *bias = spec->bias;
    if (key_mask && (s_check (b, op, "key_mask", key_mask, false) || s_check_numel (b, op, "key_mask", key_mask, B * Lk)))
        return -1;
    if (key_mask && key_mask->dtype != VDGX_DTYPE_U8) {
        vdgx_backend_set_error (b, "attention: key_mask must be U8");
        return -1;
    }
    if (bias && (s_check (b, op, "bias", bias, false) || s_check_numel (b, op, "bias", bias, H * Lq * Lk)))
        return -1;
    if (bias && bias->dtype != VDGX_DTYPE_F32) {
        vdgx_backend_set_error (b, "attention: bias must be F32 [H,Lq,Lk]");
        return -1;
    }
    s_fb_args_t args_ = { .f = { scale }, .attn = spec };
    S_DISPATCH (attention, VDGX_OP_ATTENTION, 6, 1, (b, o, q, k, v, spec, scale), o, q, k, v, key_mask, bias);
}

int
vdgx_op_attention (vdgx_backend_t *b, vdgx_tensor_t *o, const vdgx_tensor_t *q, const vdgx_tensor_t *k, const vdgx_tensor_t *v, const vdgx_tensor_t *key_mask, const vdgx_tensor_t *bias, float scale)
{
    vdgx_attn_spec_t spec = { .kind = VDGX_ATTN_FULL, .key_mask = key_mask, .bias = bias };
    return vdgx_op_attention_ex (b, o, q, k, v, &spec, scale);
}

static int
s_check_norm (vdgx_backend_t *b, const char *op, vdgx_tensor_t *y, const vdgx_tensor_t *x,
              const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta)
{
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_same_shape (b, op, y, x))
        return -1;
    if (x->ndim < 1) {
        vdgx_backend_set_error (b, "%s: x needs at least one dim", op);
        return -1;
    }
    int64_t C = x->shape [x->ndim - 1];
    if (gamma && (s_check (b, op, "gamma", gamma, true) || s_check_numel (b, op, "gamma", gamma, C)))
        return -1;
    if (beta && (s_check (b, op, "beta", beta, true) || s_check_numel (b, op, "beta", beta, C)))
        return -1;
    return 0;
}

int
vdgx_op_layernorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta, float eps)
{
    if (s_check_norm (b, "layernorm", y, x, gamma, beta))
        return -1;
    s_fb_args_t args_ = { .f = { eps } };
    S_DISPATCH (layernorm, VDGX_OP_LAYERNORM, 4, 1, (b, y, x, gamma, beta, eps), y, x, gamma, beta);
}

int
vdgx_op_rmsnorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, float eps)
{
    if (s_check_norm (b, "rmsnorm", y, x, gamma, NULL))
        return -1;
    s_fb_args_t args_ = { .f = { eps } };
    S_DISPATCH (rmsnorm, VDGX_OP_RMSNORM, 3, 1, (b, y, x, gamma, eps), y, x, gamma);
}

static int
s_check_channel_norm (vdgx_backend_t *b, const char *op, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                      const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta)
{
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_same_shape (b, op, y, x))
        return -1;
    if (x->ndim < 2) {
        vdgx_backend_set_error (b, "%s: x must be [N,C,...]", op);
        return -1;
    }
    int64_t C = x->shape [1];
    if (gamma && (s_check (b, op, "gamma", gamma, true) || s_check_numel (b, op, "gamma", gamma, C)))
        return -1;
    if (beta && (s_check (b, op, "beta", beta, true) || s_check_numel (b, op, "beta", beta, C)))
        return -1;
    return 0;
}

int
vdgx_op_channel_rmsnorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta)
{
    if (s_check_channel_norm (b, "channel_rmsnorm", y, x, gamma, beta))
        return -1;
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (channel_rmsnorm, VDGX_OP_CHANNEL_RMSNORM, 4, 1, (b, y, x, gamma, beta), y, x, gamma, beta);
}

int
vdgx_op_channel_rmsnorm_silu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta)
{
    if (s_check_channel_norm (b, "channel_rmsnorm_silu", y, x, gamma, beta))
        return -1;
    s_fb_args_t args_ = { 0 };
    const vdgx_tensor_t *ts [] = { y, x, gamma, beta };
    if (b->ops->channel_rmsnorm_silu && s_supports (b, VDGX_OP_CHANNEL_RMSNORM_SILU, 4, ts, &args_))
        return b->ops->channel_rmsnorm_silu (b, y, x, gamma, beta);
    //  Two passes on this backend (each falls back on its own where unsupported).
    if (vdgx_op_channel_rmsnorm (b, y, x, gamma, beta))
        return -1;
    return vdgx_op_silu (b, y, y);
}

int
vdgx_op_modulate (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *shift, const vdgx_tensor_t *scale)
{
    const char *op = "modulate";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_same_shape (b, op, y, x)
        || s_check_dims (b, op, "x", x, 3) || s_check (b, op, "shift", shift, true) || s_check (b, op, "scale", scale, true)
        || s_check_numel (b, op, "shift", shift, x->shape [0] * x->shape [2])
        || s_check_numel (b, op, "scale", scale, x->shape [0] * x->shape [2]))
        return -1;
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (modulate, VDGX_OP_MODULATE, 4, 1, (b, y, x, shift, scale), y, x, shift, scale);
}

int
vdgx_op_gated_residual (vdgx_backend_t *b, vdgx_tensor_t *x, const vdgx_tensor_t *y, const vdgx_tensor_t *gate)
{
    const char *op = "gated_residual";
    if (s_check (b, op, "x", x, true) || s_check (b, op, "y", y, true) || s_check_dims (b, op, "x", x, 3)
        || s_check_same_shape_named (b, op, "y", y, "x [B,L,C]", x))
        return -1;
    if (gate && (s_check (b, op, "gate", gate, true) || s_check_numel (b, op, "gate", gate, x->shape [0] * x->shape [2])))
        return -1;
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (gated_residual, VDGX_OP_GATED_RESIDUAL, 3, 1, (b, x, y, gate), x, y, gate);
}

static int
s_check_unary (vdgx_backend_t *b, const char *op, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true)
        || s_check_numel (b, op, "y", y, vdgx_tensor_numel (x)))
        return -1;
    return 0;
}

int
vdgx_op_gelu_tanh (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    if (s_check_unary (b, "gelu_tanh", y, x))
        return -1;
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (gelu_tanh, VDGX_OP_GELU_TANH, 2, 1, (b, y, x), y, x);
}

int
vdgx_op_silu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    if (s_check_unary (b, "silu", y, x))
        return -1;
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (silu, VDGX_OP_SILU, 2, 1, (b, y, x), y, x);
}

static int
s_check_binary (vdgx_backend_t *b, const char *op, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt)
{
    if (s_check (b, op, "y", y, true) || s_check (b, op, "a", a, true) || s_check (b, op, "b", bt, true)
        || s_check_numel (b, op, "y", y, vdgx_tensor_numel (a)))
        return -1;
    int64_t na = vdgx_tensor_numel (a), nb = vdgx_tensor_numel (bt);
    if (nb == 0 ? na != 0: na % nb != 0) {
        vdgx_backend_set_error (b, "%s: b has %lld elements, which does not divide a's %lld", op,
                                (long long) nb, (long long) na);
        return -1;
    }
    return 0;
}

int
vdgx_op_add_scaled (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt, float alpha)
{
    if (s_check_binary (b, "add_scaled", y, a, bt))
        return -1;
    s_fb_args_t args_ = { .f = { alpha } };
    S_DISPATCH (add_scaled, VDGX_OP_ADD_SCALED, 3, 1, (b, y, a, bt, alpha), y, a, bt);
}

int
vdgx_op_mul (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt)
{
    if (s_check_binary (b, "mul", y, a, bt))
        return -1;
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (mul, VDGX_OP_MUL, 3, 1, (b, y, a, bt), y, a, bt);
}

int
vdgx_op_affine_clamp (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, float alpha, float beta, float lo, float hi)
{
    if (s_check_unary (b, "affine_clamp", y, x))
        return -1;
    s_fb_args_t args_ = { .f = { alpha, beta, lo, hi } };
    S_DISPATCH (affine_clamp, VDGX_OP_AFFINE_CLAMP, 2, 1, (b, y, x, alpha, beta, lo, hi), y, x);
}

int
vdgx_op_rope (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *cos, const vdgx_tensor_t *sin, vdgx_rope_layout_t layout)
{
    const char *op = "rope";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_same_shape (b, op, y, x)
        || s_check_dims (b, op, "x", x, 4) || s_check (b, op, "cos", cos, false) || s_check (b, op, "sin", sin, false))
        return -1;
    int64_t L = x->shape [1], D = x->shape [3];
    if (D % 2 || cos->dtype != VDGX_DTYPE_F32 || sin->dtype != VDGX_DTYPE_F32
        || (layout != VDGX_ROPE_INTERLEAVED && layout != VDGX_ROPE_HALF)) {
        vdgx_backend_set_error (b, "rope: needs an even D, F32 cos/sin and a known layout");
        return -1;
    }
    if (s_check_numel (b, op, "cos", cos, L * D / 2) || s_check_numel (b, op, "sin", sin, L * D / 2))
        return -1;
    s_fb_args_t args_ = { .i = { (int) layout } };
    S_DISPATCH (rope, VDGX_OP_ROPE, 4, 1, (b, y, x, cos, sin, layout), y, x, cos, sin);
}

int
vdgx_op_permute (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const int *perm)
{
    const char *op = "permute";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_dims (b, op, "y", y, x->ndim))
        return -1;
    if (!perm) {
        vdgx_backend_set_error (b, "permute: perm is NULL");
        return -1;
    }
    int seen = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (perm [i] < 0 || perm [i] >= x->ndim || (seen & (1 << perm [i]))
            || y->shape [i] != x->shape [perm [i]]) {
            vdgx_backend_set_error (b, "permute: perm is not a permutation or y has the wrong shape");
            return -1;
        }
        seen |= 1 << perm [i];
    }
    s_fb_args_t args_ = { .perm = perm };
    S_DISPATCH (permute, VDGX_OP_PERMUTE, 2, 1, (b, y, x, perm), y, x);
}

int
vdgx_op_concat (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt, int dim)
{
    const char *op = "concat";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "a", a, true) || s_check (b, op, "b", bt, true)
        || s_check_dims (b, op, "b", bt, a->ndim) || s_check_dims (b, op, "y", y, a->ndim))
        return -1;
    if (dim < 0 || dim >= a->ndim) {
        vdgx_backend_set_error (b, "concat: dim %d out of range", dim);
        return -1;
    }
    for (int i = 0; i < a->ndim; i++) {
        int64_t want = i == dim? a->shape [i] + bt->shape [i]: a->shape [i];
        if ((i != dim && bt->shape [i] != a->shape [i]) || y->shape [i] != want) {
            vdgx_backend_set_error (b, "concat: shapes differ outside dim %d", dim);
            return -1;
        }
    }
    if (a->dtype != y->dtype || bt->dtype != y->dtype) {
        vdgx_backend_set_error (b, "concat: a, b and y must share a dtype");
        return -1;
    }
    s_fb_args_t args_ = { .i = { dim } };
    S_DISPATCH (concat, VDGX_OP_CONCAT, 3, 1, (b, y, a, bt, dim), y, a, bt);
}

int
vdgx_op_slice (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int dim, int64_t start, int64_t len)
{
    const char *op = "slice";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_dims (b, op, "y", y, x->ndim))
        return -1;
    if (dim < 0 || dim >= x->ndim || start < 0 || len < 0 || start > x->shape [dim] - len) {
        vdgx_backend_set_error (b, "slice: dim %d [%lld, +%lld) out of range", dim, (long long) start, (long long) len);
        return -1;
    }
    for (int i = 0; i < x->ndim; i++)
        if (y->shape [i] != (i == dim? len: x->shape [i])) {
            vdgx_backend_set_error (b, "slice: y has the wrong shape");
            return -1;
        }
    if (x->dtype != y->dtype) {
        vdgx_backend_set_error (b, "slice: x and y must share a dtype");
        return -1;
    }
    s_fb_args_t args_ = { .i = { dim }, .l = { start, len } };
    S_DISPATCH (slice, VDGX_OP_SLICE, 2, 1, (b, y, x, dim, start, len), y, x);
}

static int
s_check_conv (vdgx_backend_t *b, const char *op, int sd, vdgx_tensor_t *y, const vdgx_tensor_t *x,
              const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int *stride, const int *pad)
{
    int nd = sd + 2;
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check (b, op, "w", w, true)
        || s_check_dims (b, op, "x", x, nd) || s_check_dims (b, op, "w", w, nd) || s_check_dims (b, op, "y", y, nd))
        return -1;
    if (!stride || !pad) {
        vdgx_backend_set_error (b, "%s: stride and pad are required", op);
        return -1;
    }
    if (w->shape [1] != x->shape [1] || y->shape [0] != x->shape [0] || y->shape [1] != w->shape [0]) {
        vdgx_backend_set_error (b, "%s: channels do not match (x [N,Cin,...], w [Cout,Cin,...])", op);
        return -1;
    }
    for (int i = 0; i < 4; i++)
        if (pad [i] < 0) {
            vdgx_backend_set_error (b, "%s: negative pad", op);
            return -1;
        }
    for (int d = 0; d < sd; d++) {
        int64_t lo, hi;
        if (sd == 3) {
            lo = d == 0? pad [0]: pad [d + 1];
            hi = d == 0? pad [1]: pad [d + 1];
        }
        else {
            lo = pad [2 * d];
            hi = pad [2 * d + 1];
        }
        int64_t span = x->shape [2 + d] + lo + hi - w->shape [2 + d];
        if (stride [d] <= 0 || span < 0 || y->shape [2 + d] != span / stride [d] + 1) {
            vdgx_backend_set_error (b, "%s: output dim %d should be %lld", op, d,
                                    (long long) (stride [d] > 0 && span >= 0? span / stride [d] + 1: -1));
            return -1;
        }
    }
    if (bias && (s_check (b, op, "bias", bias, true) || s_check_numel (b, op, "bias", bias, w->shape [0])))
        return -1;
    return 0;
}

int
vdgx_op_conv3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int stride [3], const int pad [4])
{
    if (s_check_conv (b, "conv3d", 3, y, x, w, bias, stride, pad))
        return -1;
    s_fb_args_t args_ = { .i = { stride [0], stride [1], stride [2], pad [0], pad [1], pad [2], pad [3] } };
    S_DISPATCH (conv3d, VDGX_OP_CONV3D, 4, 1, (b, y, x, w, bias, stride, pad), y, x, w, bias);
}

int
vdgx_op_conv2d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int stride [2], const int pad [4])
{
    if (s_check_conv (b, "conv2d", 2, y, x, w, bias, stride, pad))
        return -1;
    s_fb_args_t args_ = { .i = { stride [0], stride [1], pad [0], pad [1], pad [2], pad [3] } };
    S_DISPATCH (conv2d, VDGX_OP_CONV2D, 4, 1, (b, y, x, w, bias, stride, pad), y, x, w, bias);
}

int
vdgx_op_upsample2x (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    const char *op = "upsample2x";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_dims (b, op, "x", x, 4)
        || s_check_dims (b, op, "y", y, 4))
        return -1;
    if (y->shape [0] != x->shape [0] || y->shape [1] != x->shape [1] || y->shape [2] != 2 * x->shape [2]
        || y->shape [3] != 2 * x->shape [3]) {
        vdgx_backend_set_error (b, "upsample2x: y must be [N,C,2H,2W]");
        return -1;
    }
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (upsample2x, VDGX_OP_UPSAMPLE2X, 2, 1, (b, y, x), y, x);
}

int
vdgx_op_cast (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    const char *op = "cast";
    if (s_check (b, op, "y", y, false) || s_check (b, op, "x", x, false)
        || s_check_numel (b, op, "y", y, vdgx_tensor_numel (x)))
        return -1;
    if (!vdgx_dtype_is_float (x->dtype) || !vdgx_dtype_is_float (y->dtype)) {
        vdgx_backend_set_error (b, "cast: %s -> %s: only float dtypes convert", vdgx_dtype_name (x->dtype),
                                vdgx_dtype_name (y->dtype));
        return -1;
    }
    s_fb_args_t args_ = { 0 };
    S_DISPATCH (cast, VDGX_OP_CAST, 2, 1, (b, y, x), y, x);
}

//  Normalises p (zero stride, dilation, groups mean 1) into *q; -1 when invalid.
static int
s_conv1d_params (const vdgx_conv1d_params_t *p, vdgx_conv1d_params_t *q)
{
    *q = p? *p: (vdgx_conv1d_params_t) { 0 };
    q->stride = q->stride? q->stride: 1;
    q->dilation = q->dilation? q->dilation: 1;
    q->groups = q->groups? q->groups: 1;
    const int big = 1 << 24;
    if (q->stride < 1 || q->dilation < 1 || q->groups < 1 || q->pad_left < 0 || q->pad_right < 0
        || q->output_padding < 0 || q->stride > big || q->dilation > big || q->pad_left > big
        || q->pad_right > big)
        return -1;
    return 0;
}

int64_t
vdgx_conv1d_out_len (int64_t L, int64_t K, const vdgx_conv1d_params_t *p)
{
    vdgx_conv1d_params_t q;
    if (s_conv1d_params (p, &q) || L < 0 || K < 1 || q.output_padding || L > ((int64_t) 1 << 40)
        || K > ((int64_t) 1 << 24))
        return -1;
    int64_t span = L + q.pad_left + q.pad_right - (int64_t) q.dilation * (K - 1) - 1;
    return span < 0? -1: span / q.stride + 1;
}

int64_t
vdgx_conv_transpose1d_out_len (int64_t L, int64_t K, const vdgx_conv1d_params_t *p)
{
    vdgx_conv1d_params_t q;
    if (s_conv1d_params (p, &q) || L < 1 || K < 1 || L > ((int64_t) 1 << 40) || K > ((int64_t) 1 << 24)
        || (q.output_padding >= q.stride && q.output_padding >= q.dilation))
        return -1;
    int64_t n = (L - 1) * q.stride - q.pad_left - q.pad_right + (int64_t) q.dilation * (K - 1)
                + q.output_padding + 1;
    return n < 1? -1: n;
}

static int
s_check_conv1d (vdgx_backend_t *b, const char *op, bool transposed, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p,
                vdgx_conv1d_params_t *q)
{
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check (b, op, "w", w, true)
        || s_check_dims (b, op, "x", x, 3) || s_check_dims (b, op, "w", w, 3) || s_check_dims (b, op, "y", y, 3))
        return -1;
    if (s_conv1d_params (p, q)) {
        vdgx_backend_set_error (b, "%s: bad parameters (stride, dilation, groups >= 1, pads >= 0)", op);
        return -1;
    }
    int64_t Cin = x->shape [1], Cout = y->shape [1], G = q->groups, K = w->shape [2];
    int64_t wout = transposed? w->shape [1] * G: w->shape [0];
    int64_t win = transposed? w->shape [0]: w->shape [1] * G;
    if (Cin % G || Cout % G || wout != Cout || win != Cin || y->shape [0] != x->shape [0]) {
        vdgx_backend_set_error (b, "%s: channels do not match (x [N,%lld,L], y [N,%lld,L'], w %s, groups %lld)", op,
                                (long long) Cin, (long long) Cout,
                                transposed? "[Cin,Cout/groups,K]": "[Cout,Cin/groups,K]", (long long) G);
        return -1;
    }
    if (!transposed && q->output_padding) {
        vdgx_backend_set_error (b, "%s: output_padding is for the transposed convolution", op);
        return -1;
    }
    int64_t want = transposed? vdgx_conv_transpose1d_out_len (x->shape [2], K, q)
                             : vdgx_conv1d_out_len (x->shape [2], K, q);
    if (want < 0 || y->shape [2] != want) {
        vdgx_backend_set_error (b, "%s: output length %lld, expected %lld (input %lld, kernel %lld)", op,
                                (long long) y->shape [2], (long long) want, (long long) x->shape [2], (long long) K);
        return -1;
    }
    if (bias && (s_check (b, op, "bias", bias, true) || s_check_numel (b, op, "bias", bias, Cout)))
        return -1;
    return 0;
}

static int
s_conv1d_op (vdgx_backend_t *b, bool transposed, vdgx_tensor_t *y, const vdgx_tensor_t *x,
             const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p)
{
    vdgx_conv1d_params_t q;
    if (s_check_conv1d (b, transposed? "conv_transpose1d": "conv1d", transposed, y, x, w, bias, p, &q))
        return -1;
    s_fb_args_t args_ = { .i = { q.stride, q.pad_left, q.pad_right, q.dilation, q.groups, q.output_padding } };
    const vdgx_conv1d_params_t *pq = &q;
    if (transposed)
        S_DISPATCH (conv_transpose1d, VDGX_OP_CONV_TRANSPOSE1D, 4, 1, (b, y, x, w, bias, pq), y, x, w, bias);
    S_DISPATCH (conv1d, VDGX_OP_CONV1D, 4, 1, (b, y, x, w, bias, pq), y, x, w, bias);
}

int
vdgx_op_conv1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p)
{
    return s_conv1d_op (b, false, y, x, w, bias, p);
}

int
vdgx_op_conv_transpose1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p)
{
    return s_conv1d_op (b, true, y, x, w, bias, p);
}

int
vdgx_op_pad1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int left, int right, vdgx_pad_mode_t mode)
{
    const char *op = "pad1d";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_dims (b, op, "y", y, x->ndim))
        return -1;
    if (x->ndim < 1 || left < 0 || right < 0 || (unsigned) mode > VDGX_PAD_REFLECT) {
        vdgx_backend_set_error (b, "pad1d: needs a tensor, pads >= 0 and a known mode");
        return -1;
    }
    int64_t L = x->shape [x->ndim - 1];
    for (int i = 0; i < x->ndim; i++)
        if (y->shape [i] != (i == x->ndim - 1? L + left + right: x->shape [i])) {
            vdgx_backend_set_error (b, "pad1d: y must be x's shape with the last dim %lld", (long long) (L + left + right));
            return -1;
        }
    if ((mode == VDGX_PAD_REFLECT && (left >= L || right >= L)) || (mode == VDGX_PAD_REPLICATE && L < 1 && left + right > 0)) {
        vdgx_backend_set_error (b, "pad1d: %s padding of %d, %d needs a longer input (%lld)",
                                mode == VDGX_PAD_REFLECT? "reflect": "replicate", left, right, (long long) L);
        return -1;
    }
    s_fb_args_t args_ = { .i = { left, right, (int) mode } };
    S_DISPATCH (pad1d, VDGX_OP_PAD1D, 2, 1, (b, y, x, left, right, mode), y, x);
}

int
vdgx_op_snake (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *alpha, const vdgx_tensor_t *beta, bool logscale)
{
    const char *op = "snake";
    if (s_check (b, op, "y", y, true) || s_check (b, op, "x", x, true) || s_check_same_shape (b, op, y, x)
        || s_check (b, op, "alpha", alpha, true))
        return -1;
    if (x->ndim < 2) {
        vdgx_backend_set_error (b, "snake: x must be [N,C,...]");
        return -1;
    }
    if (s_check_numel (b, op, "alpha", alpha, x->shape [1])
        || (beta && (s_check (b, op, "beta", beta, true) || s_check_numel (b, op, "beta", beta, x->shape [1]))))
        return -1;
    s_fb_args_t args_ = { .i = { logscale } };
    S_DISPATCH (snake, VDGX_OP_SNAKE, 4, 1, (b, y, x, alpha, beta, logscale), y, x, alpha, beta);
}

int
vdgx_op_unary (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, vdgx_unary_t op, float param)
{
    if (s_check_unary (b, "unary", y, x))
        return -1;
    if ((unsigned) op >= VDGX_UNARY_COUNT) {
        vdgx_backend_set_error (b, "unary: unknown function %d", (int) op);
        return -1;
    }
    s_fb_args_t args_ = { .i = { (int) op }, .f = { param } };
    S_DISPATCH (unary, VDGX_OP_UNARY, 2, 1, (b, y, x, op, param), y, x);
}

//  ---------------------------------------------------------------------------------------
//  Selftest. A "test" device keeps its memory in separate host buffers with device ordinal 0
//  and implements no compute op, so every op goes through the CPU fallback (download,
//  compute, upload) and must give exactly the CPU result; it stores activations as BF16 to
//  check the conversions on the way.

static int s_test_allocs = 0;
static void *s_tdev_alloc (vdgx_backend_t *b, size_t n) { (void) b; s_test_allocs++; return malloc (n); }
static void s_tdev_free (vdgx_backend_t *b, void *p) { (void) b; free (p); }
static int s_tdev_copy (vdgx_backend_t *b, void *d, const void *s, size_t n) { (void) b; memmove (d, s, n); return 0; }
static const vdgx_backend_ops_t s_tdev_ops = {
    .alloc = s_tdev_alloc, .free = s_tdev_free, .upload = s_tdev_copy, .download = s_tdev_copy, .copy = s_tdev_copy
};
static const vdgx_backend_impl_t s_tdev_impl = { "test", NULL, NULL, &s_tdev_ops, 0, NULL };
static const vdgx_backend_impl_t s_tdev_clash = { "test", NULL, NULL, &s_tdev_ops, 0, NULL };
static const vdgx_backend_impl_t s_tdev_badname = { "Test-2", NULL, NULL, &s_tdev_ops, 0, NULL };

void
vdgx_backend_test (bool verbose)
{
    printf (" * vdgx_backend: ");
    char *err = NULL;
    //  factory
    assert (!vdgx_backend_new ("tpu", VDGX_DTYPE_F32, &err) && err && strstr (err, "unknown device"));
    free (err);
    err = NULL;
    assert (!vdgx_backend_new ("cpu:x", VDGX_DTYPE_F32, &err) && err);
    free (err);
    err = NULL;
    assert (!vdgx_backend_new ("tpu", VDGX_DTYPE_F32, &err) && err && strstr (err, "libvdgx_tpu.so not found"));
    free (err);
    err = NULL;
    assert (!vdgx_backend_new ("../x", VDGX_DTYPE_F32, &err) && err && strstr (err, "unknown device"));
    free (err);
    err = NULL;
    assert (!vdgx_backend_available ("nosuch:0"));

    //  registry: the CPU backend is built in; a backend registers under its own prefix
    assert (vdgx_backend_count () >= 1 && vdgx_backend_get (0) == vdgx_cpu_backend_impl ());
    assert (vdgx_backend_get (-1) == NULL && vdgx_backend_get (S_MAX_BACKENDS) == NULL);
    assert (vdgx_backend_register (&s_tdev_impl) == 0 && vdgx_backend_register (&s_tdev_impl) == 0);
    assert (vdgx_backend_register (&s_tdev_clash) == -1 && vdgx_backend_register (&s_tdev_badname) == -1);
    assert (vdgx_backend_register (vdgx_cpu_backend_impl ()) == 0);
    vdgx_backend_t *tb = vdgx_backend_new ("test:3", VDGX_DTYPE_BF16, &err);
    assert (tb && !err && strcmp (vdgx_backend_name (tb), "test:3") == 0 && vdgx_backend_device (tb) == 3);
    assert (vdgx_backend_act_dtype (tb) == VDGX_DTYPE_BF16 && vdgx_backend_threads (tb) == 1);
    vdgx_op_desc_t desc = { .op = VDGX_OP_SILU };
    assert (!vdgx_backend_supports (tb, &desc));      //  no compute ops: everything falls back
    vdgx_backend_destroy (&tb);
    //  a module that is not a loadable object is reported with the loader's reason
    char dir [] = "/tmp/vdgx_backend_test_XXXXXX";
    assert (mkdtemp (dir));
    char junk [sizeof (dir) + 32];
    snprintf (junk, sizeof (junk), "%s/libvdgx_junk.so", dir);
    FILE *f = fopen (junk, "w");
    assert (f && fputs ("not an ELF object\n", f) >= 0 && fclose (f) == 0);
    const char *old = getenv ("VDGX_BACKEND_PATH");
    char *saved = old? strdup (old): NULL;
    setenv ("VDGX_BACKEND_PATH", dir, 1);
    assert (!vdgx_backend_new ("junk", VDGX_DTYPE_F32, &err) && err && strstr (err, "cannot load"));
    if (verbose)
        printf ("(%s) ", err);
    free (err);
    err = NULL;
    if (saved)
        setenv ("VDGX_BACKEND_PATH", saved, 1);
    else
        unsetenv ("VDGX_BACKEND_PATH");
    free (saved);
    unlink (junk);
    rmdir (dir);

    vdgx_backend_t *b = vdgx_backend_new ("cpu", VDGX_DTYPE_BF16, &err);
    assert (b && !err);
    assert (strcmp (vdgx_backend_name (b), "cpu") == 0 && vdgx_backend_device (b) == VDGX_DEVICE_CPU);
    assert (vdgx_backend_act_dtype (b) == VDGX_DTYPE_F32 && vdgx_backend_threads (b) >= 1);
    if (verbose)
        printf ("(%d threads) ", vdgx_backend_threads (b));

    //  pool: buckets, reuse, in-use / peak accounting
    assert (s_bucket (1) == 256 && s_bucket (1000) == 1024 && s_bucket (1025) == 1280);
    assert (s_bucket (1u << 20) == 1u << 20 && s_bucket ((1u << 20) + 1) == (1u << 20) + (1u << 18));
    for (size_t sz = 200; sz < 5000000; sz = sz * 3 + 7)
        assert (s_bucket (sz) >= sz && s_bucket (sz) <= sz + sz / 4 + 256);
    int64_t shape [2] = { 100, 300 };
    vdgx_tensor_t t1, t2, t3;
    assert (vdgx_tensor_alloc (b, &t1, VDGX_DTYPE_F32, 2, shape) == 0);
    size_t one = vdgx_backend_bytes_in_use (b);
    assert (one >= 120000 && one <= 150000 && t1.owner == b && ((uintptr_t) t1.data & 63) == 0);
    assert (vdgx_tensor_alloc (b, &t2, VDGX_DTYPE_F32, 2, shape) == 0);
    assert (vdgx_backend_bytes_in_use (b) == 2 * one && vdgx_backend_peak_bytes (b) == 2 * one);
    void *p1 = t1.data;
    vdgx_tensor_release (b, &t1);
    assert (t1.data == NULL && vdgx_backend_bytes_in_use (b) == one);
    shape [1] = 299;        //  same bucket: the freed block comes back
    assert (vdgx_tensor_alloc (b, &t3, VDGX_DTYPE_F32, 2, shape) == 0 && t3.data == p1);
    assert (vdgx_backend_peak_bytes (b) == 2 * one);
    vdgx_tensor_release (b, &t2);
    vdgx_tensor_release (b, &t3);
    assert (vdgx_backend_bytes_in_use (b) == 0 && b->cache_count == 2);
    vdgx_backend_trim (b);
    assert (b->cache_count == 0 && b->bytes_cached == 0);
    int64_t badshape [2] = { -1, 4 };
    assert (vdgx_tensor_alloc (b, &t1, VDGX_DTYPE_F32, 2, badshape) == -1);
    int64_t huge [3] = { INT64_MAX / 2, 4, 4 };
    assert (vdgx_tensor_alloc (b, &t1, VDGX_DTYPE_F32, 3, huge) == -1);

    //  from/to f32 with conversion
    int64_t s5 [1] = { 5 };
    float src [5] = { 1, -2, 3.5f, 0.25f, 100 }, back [5];
    assert (vdgx_tensor_alloc (b, &t1, VDGX_DTYPE_BF16, 1, s5) == 0);
    assert (vdgx_tensor_from_f32 (b, &t1, src) == 0 && vdgx_tensor_to_f32 (b, &t1, back) == 0);
    assert (memcmp (src, back, sizeof (src)) == 0);
    vdgx_tensor_release (b, &t1);

    //  wrappers refuse bad input with a message, never crash
    float buf [64];
    vdgx_tensor_t x, y;
    int64_t s3 [3] = { 2, 4, 8 };
    vdgx_tensor_init (&x, VDGX_DTYPE_F32, 3, s3, buf, VDGX_DEVICE_CPU);
    y = x;
    y.stride [0] = 99;
    assert (vdgx_op_silu (b, &y, &x) == -1 && strstr (vdgx_backend_error (b), "contiguous"));
    y = x;
    y.device = 0;
    assert (vdgx_op_silu (b, &y, &x) == -1 && strstr (vdgx_backend_error (b), "device"));
    assert (vdgx_op_silu (b, NULL, &x) == -1);
    y = x;
    y.data = NULL;
    assert (vdgx_op_silu (b, &y, &x) == -1);
    vdgx_weight_t w = { .fmt = VDGX_WFMT_NF4, .n = 4, .k = 8, .data = buf, .device = VDGX_DEVICE_CPU };
    assert (vdgx_op_linear (b, &x, &x, &w, NULL) == -1 && strstr (vdgx_backend_error (b), "multiple of 64"));
    //  raw upload of a non-float tensor (a U8 key mask)
    {
        const int64_t ms [2] = { 2, 3 };
        const uint8_t bytes [6] = { 0, 1, 1, 0, 0, 1 };
        vdgx_tensor_t m;
        assert (vdgx_tensor_alloc (b, &m, VDGX_DTYPE_U8, 2, ms) == 0);
        assert (vdgx_tensor_upload (b, &m, bytes) == 0 && memcmp (m.data, bytes, 6) == 0);
        vdgx_tensor_release (b, &m);
    }
    vdgx_backend_destroy (&b);
    assert (b == NULL);

    //  CPU fallback on the test device (BF16 activations)
    vdgx_backend_t *cpu = vdgx_backend_new ("cpu", VDGX_DTYPE_F32, NULL);
    vdgx_backend_t *dev = s_new_impl (&s_tdev_impl, 0, VDGX_DTYPE_BF16, NULL);
    assert (cpu && dev && strcmp (vdgx_backend_name (dev), "test:0") == 0);
    int64_t xs [2] = { 6, 64 };
    float xin [6 * 64], wsrc [24 * 64], ycpu [6 * 24], ydev [6 * 24], bsrc [24];
    uint32_t seed = 7;
    for (int i = 0; i < 6 * 64; i++) {
        seed = seed * 1103515245u + 12345u;
        xin [i] = vdgx_bf16_to_f32 (vdgx_f32_to_bf16 ((float) ((seed >> 9) % 2001) / 1000.0f - 1.0f));
    }
    for (int i = 0; i < 24 * 64; i++)
        wsrc [i] = (float) ((i * 37) % 101) / 50.0f - 1.0f;
    for (int i = 0; i < 24; i++)
        bsrc [i] = (float) i / 8.0f;
    vdgx_weight_t hw, cw, dw;
    assert (vdgx_weight_quantize (&hw, VDGX_WFMT_NF4, wsrc, 24, 64, false, NULL) == 0);
    assert (vdgx_weight_to_backend (cpu, &cw, &hw) == 0 && vdgx_weight_to_backend (dev, &dw, &hw) == 0);
    assert (dw.device == 0 && dw.owner == dev);
    vdgx_tensor_t cx, cy, cb, dx, dy, db;
    int64_t ys [2] = { 6, 24 }, bs [1] = { 24 };
    assert (vdgx_tensor_alloc (cpu, &cx, VDGX_DTYPE_F32, 2, xs) == 0 && vdgx_tensor_alloc (cpu, &cy, VDGX_DTYPE_F32, 2, ys) == 0);
    assert (vdgx_tensor_alloc (cpu, &cb, VDGX_DTYPE_F32, 1, bs) == 0);
    assert (vdgx_tensor_alloc (dev, &dx, VDGX_DTYPE_BF16, 2, xs) == 0 && vdgx_tensor_alloc (dev, &dy, VDGX_DTYPE_F32, 2, ys) == 0);
    assert (vdgx_tensor_alloc (dev, &db, VDGX_DTYPE_F32, 1, bs) == 0);
    assert (vdgx_tensor_from_f32 (cpu, &cx, xin) == 0 && vdgx_tensor_from_f32 (dev, &dx, xin) == 0);
    assert (vdgx_tensor_from_f32 (cpu, &cb, bsrc) == 0 && vdgx_tensor_from_f32 (dev, &db, bsrc) == 0);
    assert (vdgx_op_linear (cpu, &cy, &cx, &cw, &cb) == 0);
    assert (vdgx_op_linear (dev, &dy, &dx, &dw, &db) == 0);
    assert (vdgx_tensor_to_f32 (cpu, &cy, ycpu) == 0 && vdgx_tensor_to_f32 (dev, &dy, ydev) == 0);
    assert (memcmp (ycpu, ydev, sizeof (ycpu)) == 0);
    //  an elementwise op writing BF16 on the device matches the CPU result rounded to BF16
    vdgx_tensor_t dz;
    assert (vdgx_tensor_alloc (dev, &dz, VDGX_DTYPE_BF16, 2, xs) == 0);
    assert (vdgx_op_silu (dev, &dz, &dx) == 0 && vdgx_op_silu (cpu, &cx, &cx) == 0);
    float zc [6 * 64], zd [6 * 64];
    assert (vdgx_tensor_to_f32 (cpu, &cx, zc) == 0 && vdgx_tensor_to_f32 (dev, &dz, zd) == 0);
    for (int i = 0; i < 6 * 64; i++)
        assert (zd [i] == vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (zc [i])));
    //  a shape error on the device is reported before any fallback work
    assert (vdgx_op_silu (dev, &dy, &dx) == -1);
    //  steady state: a second step allocates nothing new on the device
    int before = s_test_allocs;
    for (int step = 0; step < 3; step++) {
        vdgx_tensor_t tmp;
        assert (vdgx_tensor_alloc (dev, &tmp, VDGX_DTYPE_BF16, 2, xs) == 0);
        assert (vdgx_op_gelu_tanh (dev, &tmp, &dx) == 0);
        vdgx_tensor_release (dev, &tmp);
    }
    assert (s_test_allocs == before + 1);
    //  masked GQA attention through the fallback: a batch-strided KV-cache view, key_mask
    //  and bias travel too, and the device result is exactly the CPU one
    {
        enum { AB = 2, ALq = 3, ALk = 9, ACap = 12, AH = 4, AHkv = 2, AD = 8 };
        int64_t qsh [4] = { AB, ALq, AH, AD }, ksh [4] = { AB, ACap, AHkv, AD }, msh [2] = { AB, ALk };
        int64_t bsh [3] = { AH, ALq, ALk };
        float qf [AB * ALq * AH * AD], kf [AB * ACap * AHkv * AD], vf [AB * ACap * AHkv * AD];
        float bf [AH * ALq * ALk], oc [AB * ALq * AH * AD], od [AB * ALq * AH * AD];
        uint8_t mk [AB * ALk];
        for (size_t i = 0; i < sizeof (qf) / 4; i++)
            qf [i] = vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (xin [i % (6 * 64)]));
        for (size_t i = 0; i < sizeof (kf) / 4; i++) {
            kf [i] = vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (xin [(i * 7) % (6 * 64)]));
            vf [i] = vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (xin [(i * 5 + 3) % (6 * 64)]));
        }
        for (size_t i = 0; i < sizeof (bf) / 4; i++)
            bf [i] = xin [(i * 3) % (6 * 64)];
        for (int i = 0; i < AB * ALk; i++)
            mk [i] = i % 4 != 1;
        vdgx_tensor_t t [2][6];         //  q, k, v, mask, bias, o on cpu / dev
        for (int side = 0; side < 2; side++) {
            vdgx_backend_t *be = side? dev: cpu;
            vdgx_dtype_t adt = side? VDGX_DTYPE_BF16: VDGX_DTYPE_F32;
            assert (vdgx_tensor_alloc (be, &t [side][0], adt, 4, qsh) == 0);
            assert (vdgx_tensor_alloc (be, &t [side][1], adt, 4, ksh) == 0);
            assert (vdgx_tensor_alloc (be, &t [side][2], adt, 4, ksh) == 0);
            assert (vdgx_tensor_alloc (be, &t [side][3], VDGX_DTYPE_U8, 2, msh) == 0);
            assert (vdgx_tensor_alloc (be, &t [side][4], VDGX_DTYPE_F32, 3, bsh) == 0);
            assert (vdgx_tensor_alloc (be, &t [side][5], VDGX_DTYPE_F32, 4, qsh) == 0);
            assert (vdgx_tensor_from_f32 (be, &t [side][0], qf) == 0 && vdgx_tensor_from_f32 (be, &t [side][1], kf) == 0);
            assert (vdgx_tensor_from_f32 (be, &t [side][2], vf) == 0 && vdgx_tensor_from_f32 (be, &t [side][4], bf) == 0);
            assert (be->ops->upload (be, t [side][3].data, mk, sizeof (mk)) == 0);
            vdgx_tensor_t kv [2];
            for (int i = 0; i < 2; i++) {
                kv [i] = t [side][1 + i];
                kv [i].shape [1] = ALk;     //  the first ALk rows of each batch
            }
            vdgx_attn_spec_t sp = { .kind = VDGX_ATTN_SLIDING, .q_offset = ALk - ALq, .window = 4,
                                    .key_mask = &t [side][3], .bias = &t [side][4] };
            assert (vdgx_op_attention_ex (be, &t [side][5], &t [side][0], &kv [0], &kv [1], &sp, 0.5f) == 0);
            assert (vdgx_tensor_to_f32 (be, &t [side][5], side? od: oc) == 0);
            for (int i = 0; i < 6; i++)
                vdgx_tensor_release (be, &t [side][i]);
        }
        assert (memcmp (oc, od, sizeof (oc)) == 0);
    }
    vdgx_tensor_release (dev, &dz);
    vdgx_tensor_release (dev, &dx);
    vdgx_tensor_release (dev, &dy);
    vdgx_tensor_release (dev, &db);
    vdgx_weight_release (dev, &dw);
    assert (vdgx_backend_bytes_in_use (dev) == 0 && vdgx_backend_peak_bytes (dev) > 0);
    vdgx_tensor_release (cpu, &cx);
    vdgx_tensor_release (cpu, &cy);
    vdgx_tensor_release (cpu, &cb);
    vdgx_weight_release (cpu, &cw);
    vdgx_weight_host_free (&hw);
    vdgx_backend_destroy (&dev);
    vdgx_backend_destroy (&cpu);
    printf ("OK\n");
}
