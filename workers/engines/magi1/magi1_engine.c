/*  magi1_engine.c - the MAGI-1 engine of the worker (see magi1_engine.h). */
#include "magi1_engine.h"
#include "magi1_dit.h"
#include "magi1_sample.h"
#include "magi1_vae.h"
#include "vdgx_util.h"
#include "vdgx_t5.h"
#include "vdgx_tok.h"
#include "vdgx_ckpt.h"
#include "vdgx_torchrng.h"
#include "vdgx_msg.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_WHO           "magi1"
#define S_FPS           24
#define S_CHUNK_FRAMES  24          //  video frames per chunk
#define S_CHUNK_LATENT  6           //  latent frames per chunk (temporal factor 4)
#define S_TEXT_LEN      800         //  caption_max_length
#define S_SCALE         0.18215f    //  latent scale factor of the VAE
#define S_MAX_CHUNKS    30          //  product limit: 30 s
#define S_TINY_CHUNKS   4

typedef enum { S_UNKNOWN = 0, S_4_5B, S_24B, S_TINY } s_variant_t;

struct _vdgx_engine_t {
    char *model, *weights_dir, *device;
    char precision [8];
    int threads;
    bool tiny_service;          //  served as magi1-tiny
    s_variant_t variant;        //  from the name, then from the DiT shapes
    bool distill;               //  cfg_number 1 (the name or the folder says so)
    const char *dit_folder;     //  official variant folder wanted ("4.5B_distill"), or NULL
    int window_size;            //  chunks in flight (VDGX_MAGI1_WINDOW_SIZE)
    vdgx_backend_t *backend;
    vdgx_tok_t *tok;
    vdgx_t5_t *t5;
    magi1_dit_t *dit;
    magi1_vae_t *vae;
    float *other_tokens;        //  special tokens [100, caption_dim], rounded through float16
    int64_t caption_dim;
};

static const char *const s_precisions [] = { "bf16", "fp8", "fp32", NULL };
static const char *const s_tiny_precisions [] = { "fp32", "bf16", "fp8", NULL };

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *
s_variant_name (s_variant_t v)
{
    return v == S_4_5B? "4.5B": v == S_24B? "24B": v == S_TINY? "tiny": "unknown";
}

static s_variant_t
s_variant_of_hidden (int64_t hidden)
{
    return hidden == 3072? S_4_5B: hidden == 6144? S_24B: hidden > 0? S_TINY: S_UNKNOWN;
}

uint32_t
magi1_engine_chunks_for (double seconds)
{
    if (!(seconds > 0))
        return 1;
    if (seconds > 1e6)
        seconds = 1e6;
    //  a hair of tolerance: 2.0000001 s is two chunks, not three
    uint32_t n = (uint32_t) ceil (seconds - 1e-6);
    return n? n: 1;
}

//  ---------------------------------------------------------------------------------------
//  Services and folders

typedef struct {
    const char *name;
    s_variant_t variant;
    bool distill;
    const char *folder;         //  ckpt/magi/<folder>
    const char *precision;      //  forced precision (the fp8 checkpoints), or NULL
} s_service_t;

static const s_service_t s_services [] = {
    { "magi1", S_UNKNOWN, false, NULL, NULL },
    { "magi1-4.5b", S_4_5B, false, "4.5B_base", NULL },
    { "magi1-4.5b-distill", S_4_5B, true, "4.5B_distill", NULL },
    { "magi1-4.5b-distill-quant", S_4_5B, true, "4.5B_distill_quant", "fp8" },
    { "magi1-24b", S_24B, false, "24B_base", NULL },
    { "magi1-24b-distill", S_24B, true, "24B_distill", NULL },
    { "magi1-24b-distill-quant", S_24B, true, "24B_distill_quant", "fp8" },
};

//  The first existing path among base/<names> (caller frees), NULL when none.
static char *
s_first (const char *base, const char *const *names, bool dir)
{
    for (int i = 0; names [i]; i++) {
        char *p = *names [i]? vdgx_strdupf ("%s/%s", base, names [i]): vdgx_strdupf ("%s", base);
        if (p && (dir? vdgx_is_dir (p): vdgx_is_file (p)))
            return p;
        free (p);
    }
    return NULL;
}

//  The DiT folder: ckpt/magi/<folder> (or magi/<folder>, <folder>) for the service's variant;
//  for the plain service the single variant folder present, else the folder itself.
static char *
s_dit_path (vdgx_engine_t *self, char **err)
{
    const char *prefixes [] = { "ckpt/magi/", "magi/", "" };
    if (self->dit_folder) {
        for (size_t i = 0; i < 3; i++) {
            char *p = vdgx_strdupf ("%s/%s%s", self->weights_dir, prefixes [i], self->dit_folder);
            if (p && vdgx_is_dir (p))
                return p;
            free (p);
        }
    }
    else {
        char *found = NULL;
        int count = 0;
        for (size_t s = 1; s < sizeof s_services / sizeof s_services [0]; s++)
            for (size_t i = 0; i < 3; i++) {
                char *p = vdgx_strdupf ("%s/%s%s", self->weights_dir, prefixes [i], s_services [s].folder);
                if (p && vdgx_is_dir (p)) {
                    count++;
                    if (!found) {
                        found = p;
                        self->distill = s_services [s].distill;
                        continue;
                    }
                }
                free (p);
            }
        if (count > 1) {
            vdgx_set_error (err, "%s: %s holds several MAGI-1 variants: serve one of them by "
                            "name (magi1-4.5b, magi1-4.5b-distill, magi1-24b, ...)", S_WHO,
                            self->weights_dir);
            free (found);
            return NULL;
        }
        if (found)
            return found;
    }
    static const char *const direct [] = { "dit", "", NULL };
    for (int i = 0; direct [i]; i++) {
        char *p = *direct [i]? vdgx_strdupf ("%s/%s", self->weights_dir, direct [i])
                             : vdgx_strdupf ("%s", self->weights_dir);
        if (!p)
            break;
        static const char *const files [] = { "model.safetensors.index.json", "model.safetensors",
            "inference_weight", "inference_weight.distill", "inference_weight.fp8.distill", NULL };
        char *hit = s_first (p, files, false);
        if (!hit)
            hit = s_first (p, files, true);
        if (hit) {
            if (strstr (hit, ".distill"))
                self->distill = true;
            free (hit);
            return p;
        }
        free (p);
    }
    vdgx_set_error (err, "%s: no MAGI-1 DiT in %s (expected ckpt/magi/%s/inference_weight*/)",
                    S_WHO, self->weights_dir, self->dit_folder? self->dit_folder: "<variant>");
    return NULL;
}

//  ---------------------------------------------------------------------------------------
//  Create / destroy

static int
s_create_common (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, bool tiny, char **err)
{
    if (!cfg || !cfg->model) {
        *err = vdgx_strdupf ("%s: no model name", S_WHO);
        return VDGX_ENGINE_ERROR;
    }
    const s_service_t *svc = NULL;
    if (!tiny) {
        for (size_t i = 0; i < sizeof s_services / sizeof s_services [0]; i++)
            if (strcmp (cfg->model, s_services [i].name) == 0)
                svc = &s_services [i];
        if (!svc) {
            *err = vdgx_strdupf ("%s: unknown service '%s' (magi1, magi1-4.5b, magi1-4.5b-distill, "
                                 "magi1-4.5b-distill-quant, magi1-24b, magi1-24b-distill, "
                                 "magi1-24b-distill-quant, magi1-tiny)", S_WHO, cfg->model);
            return VDGX_ENGINE_ERROR;
        }
    }
    const char *const *list = tiny? s_tiny_precisions: s_precisions;
    const char *precision = cfg->precision && *cfg->precision? cfg->precision: NULL;
    if (vdgx_engine_config_check (cfg, S_WHO, list, "the MAGI-1 folder", err))
        return VDGX_ENGINE_ERROR;
    if (svc && svc->precision && precision && strcmp (precision, svc->precision) != 0) {
        *err = vdgx_strdupf ("%s: %s is an %s checkpoint (not %s)", S_WHO, svc->name,
                             svc->precision, precision);
        return VDGX_ENGINE_ERROR;
    }
    int window = 4;
    const char *env = getenv ("VDGX_MAGI1_WINDOW_SIZE");
    if (env && *env) {
        char *end = NULL;
        long w = strtol (env, &end, 10);
        if (*end || w < 1 || w > 4) {
            *err = vdgx_strdupf ("%s: VDGX_MAGI1_WINDOW_SIZE must be 1..4 (got '%s')", S_WHO, env);
            return VDGX_ENGINE_ERROR;
        }
        window = (int) w;
    }
    vdgx_engine_t *self = (vdgx_engine_t *) calloc (1, sizeof *self);
    if (!self) {
        *err = vdgx_strdupf ("out of memory");
        return VDGX_ENGINE_FATAL;
    }
    self->model = strdup (cfg->model);
    self->weights_dir = strdup (cfg->weights_dir);
    self->device = strdup (cfg->device && *cfg->device? cfg->device: "cpu");
    snprintf (self->precision, sizeof self->precision, "%s",
              precision? precision: svc && svc->precision? svc->precision: list [0]);
    self->threads = cfg->threads;
    self->tiny_service = tiny;
    self->variant = tiny? S_TINY: svc->variant;
    self->distill = svc && svc->distill;
    self->dit_folder = svc? svc->folder: NULL;
    self->window_size = window;
    *self_p = self;
    return VDGX_ENGINE_OK;
}

static int
s_create (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, char **err)
{
    return s_create_common (self_p, cfg, false, err);
}

static int
s_create_tiny (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, char **err)
{
    return s_create_common (self_p, cfg, true, err);
}

static const char *const *
s_get_precisions (vdgx_engine_t *self)
{
    return self->tiny_service? s_tiny_precisions: s_precisions;
}

static void
s_unload (vdgx_engine_t *self)
{
    magi1_vae_destroy (&self->vae);
    magi1_dit_destroy (&self->dit);
    vdgx_t5_destroy (&self->t5);
    vdgx_tok_destroy (&self->tok);
    vdgx_backend_destroy (&self->backend);
    free (self->other_tokens);
    self->other_tokens = NULL;
}

static void
s_destroy (vdgx_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdgx_engine_t *self = *self_p;
    s_unload (self);
    free (self->model);
    free (self->weights_dir);
    free (self->device);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------------------
//  Memory estimate: DiT weights, T5-v1.1 linears, VAE decoder, KV cache and activations of
//  the largest video the service accepts.

typedef struct {
    int layers;
    int64_t hidden, ffn, heads, groups, hd, cond, caption;
    bool gated;
} s_dims_t;

static void
s_dims (vdgx_engine_t *self, s_dims_t *d)
{
    if (self->dit) {
        const magi1_dit_config_t *c = magi1_dit_config (self->dit);
        *d = (s_dims_t) { c->num_layers, c->hidden, c->ffn, c->heads, c->groups, c->head_dim,
                          c->cond_dim, c->caption_dim, c->gated };
    }
    else
    if (self->variant == S_24B)
        *d = (s_dims_t) { 48, 6144, 16384, 48, 8, 128, 1536, 4096, true };
    else
    if (self->variant == S_TINY)
        *d = (s_dims_t) { 2, 128, 512, 4, 2, 32, 32, 32, false };
    else
        *d = (s_dims_t) { 34, 3072, 12288, 24, 8, 128, 768, 4096, false };
}

static uint32_t s_default_steps (vdgx_engine_t *self);

//  The service's schedule at its default steps (the window and cfg of the worker).
static void
s_sched (vdgx_engine_t *self, int steps, magi1_sched_t *sched)
{
    magi1_sched_defaults (sched, steps);
    sched->window_size = self->window_size;
    sched->cfg_number = self->distill? 1: 3;
}

//  Chunks of K/V the bounded cache holds for a video of `chunks` (the plan of the default
//  steps made a multiple of the window; the figure depends on the window and cfg, not on
//  the step count: magi1_sample_test checks that).
static int
s_cache_chunks (vdgx_engine_t *self, int chunks)
{
    magi1_sched_t sched;
    int unit = self->window_size == 3? 12: 4, steps = (int) s_default_steps (self);
    s_sched (self, (steps + unit - 1) / unit * unit, &sched);
    int n = magi1_sample_cache_chunks (&sched, chunks);
    return n > 0? n: chunks + 1;
}

static uint64_t
s_memory_estimate (vdgx_engine_t *self, const char *precision)
{
    const char *p = precision && *precision? precision: self->precision;
    size_t wsize = strcmp (p, "fp32") == 0? 4: strcmp (p, "bf16") == 0? 2: 1;
    bool cuda = strncmp (self->device, "cuda", 4) == 0;
    size_t act = cuda && strcmp (p, "fp32") != 0? 2: 4;
    s_dims_t d;
    s_dims (self, &d);
    uint64_t q = (uint64_t) d.heads * d.hd, kv = (uint64_t) d.groups * d.hd;
    uint64_t per_layer = (uint64_t) d.hidden * (2 * q + 2 * kv)          //  q, qx, k, v
                       + (uint64_t) d.hidden * 2 * kv                    //  kv_xattn
                       + (uint64_t) d.hidden * 2 * q                     //  proj
                       + (uint64_t) d.hidden * d.ffn * (d.gated? 3: 2)   //  fc1, fc2
                       + (uint64_t) d.cond * 2 * d.hidden;               //  ada modulation
    uint64_t bytes = per_layer * (uint64_t) d.layers * wsize
                   + (uint64_t) S_TEXT_LEN * d.caption * 4              //  null caption
                   + (uint64_t) d.caption * d.hidden * 4;               //  y_proj_xattn
    //  T5-v1.1-XXL: 24 blocks of q,k,v,o (4096^2) and the gated FFN (3 x 4096 x 10240);
    //  the tiny one is negligible.
    if (self->t5) {
        const vdgx_t5_config_t *tc = vdgx_t5_config (self->t5);
        bytes += (uint64_t) tc->num_layers * (4ull * tc->dim * tc->dim_attn + 3ull * tc->dim * tc->dim_ffn) * wsize;
    }
    else
    if (self->variant != S_TINY)
        bytes += 24ull * (4ull * 4096 * 4096 + 3ull * 4096 * 10240) * wsize;
    //  VAE decoder (24 ViT blocks of 1024): about 300M parameters, activations of one tile.
    if (self->variant != S_TINY)
        bytes += 310000000ull * act + 3ull * 32 * 32 * 1024 * 16 * act;
    //  The largest video: its KV cache (all layers, k and v, of the chunks still attended:
    //  magi1_sample_cache_chunks, 5 or 6 whatever the length) and the activations of one
    //  forward step (the chunks in flight, the clean chunk, the distill copy).
    int64_t w = self->variant == S_TINY? 64: 1280, h = self->variant == S_TINY? 64: 720;
    int chunks = self->variant == S_TINY? S_TINY_CHUNKS: S_MAX_CHUNKS;
    int64_t vae_factor = self->variant == S_TINY? 2: 8;
    int64_t tokens_per_chunk = S_CHUNK_LATENT * (h / vae_factor / 2) * (w / vae_factor / 2);
    uint64_t cache_per_token = self->dit? magi1_dit_cache_bytes_per_token (self->dit)
                             : (uint64_t) d.layers * 2 * kv * act;
    bytes += cache_per_token * (uint64_t) tokens_per_chunk * (uint64_t) s_cache_chunks (self, chunks);
    uint64_t window_tokens = (uint64_t) tokens_per_chunk
                           * (uint64_t) (self->window_size + 1 + (self->distill? 1: 0));
    bytes += window_tokens * (uint64_t) (d.hidden * 6 + d.ffn * (d.gated? 2: 1) + 4 * q) * act;
    return bytes;
}

//  ---------------------------------------------------------------------------------------
//  Loading

static vdgx_wfmt_t
s_t5_format (const char *precision)
{
    if (strcmp (precision, "fp32") == 0)
        return VDGX_WFMT_F32;
    if (strcmp (precision, "bf16") == 0)
        return VDGX_WFMT_BF16;
    return VDGX_WFMT_FP8_E4M3;
}

//  MAGI-1's special tokens: special_tokens.npz (the official file of the code repository) or
//  a .safetensors with the same names, read by magi1_special_tokens_load.
static int
s_load_special (vdgx_engine_t *self, int64_t dim, char **err)
{
    static const char *const names [] = { "special_tokens.npz", "example/assets/special_tokens.npz",
        "ckpt/special_tokens.npz", "special_tokens.safetensors", NULL };
    char *path = s_first (self->weights_dir, names, false);
    if (!path) {
        vdgx_set_error (err, "%s: no special_tokens.npz in %s (MAGI-1's special tokens: "
                        "example/assets/special_tokens.npz of the MAGI-1 code repository)",
                        S_WHO, self->weights_dir);
        return -1;
    }
    int64_t count = 0;
    self->other_tokens = magi1_special_tokens_load (path, dim, &count, err);
    free (path);
    return self->other_tokens? 0: -1;
}

static int
s_load (vdgx_engine_t *self, const vdgx_engine_io_t *io, char **err)
{
    if (self->dit)
        return VDGX_ENGINE_OK;
    if (!vdgx_is_dir (self->weights_dir)) {
        *err = vdgx_strdupf ("%s: weights folder '%s' not found", S_WHO, self->weights_dir);
        return VDGX_ENGINE_ERROR;
    }
    char device [64];
    if (strcmp (self->device, "cpu") == 0 && self->threads > 0)
        snprintf (device, sizeof device, "cpu:%d", self->threads);
    else
        snprintf (device, sizeof device, "%s", self->device);
    bool cpu = strncmp (device, "cpu", 3) == 0;
    vdgx_dtype_t act = cpu || strcmp (self->precision, "fp32") == 0? VDGX_DTYPE_F32: VDGX_DTYPE_BF16;
    char *e = NULL, *path = NULL;
    self->backend = vdgx_backend_new (device, act, &e);
    if (!self->backend) {
        *err = vdgx_strdupf ("%s: cannot open device %s: %s", S_WHO, device, e? e: "unknown error");
        free (e);
        return VDGX_ENGINE_ERROR;
    }
    //  The DiT first: its shapes say which model this is.
    vdgx_engine_report (io, "loading", 0, 0, 1, "diffusion transformer");
    path = s_dit_path (self, &e);
    if (!path)
        goto fail;
    magi1_dit_load_opts_t dopts = { .precision = self->precision };
    self->dit = magi1_dit_open (self->backend, path, &dopts, &e);
    free (path);
    path = NULL;
    if (!self->dit)
        goto fail;
    const magi1_dit_config_t *dc = magi1_dit_config (self->dit);
    s_variant_t v = s_variant_of_hidden (dc->hidden);
    if ((self->tiny_service && v != S_TINY) || (!self->tiny_service && v == S_TINY)
    ||  (self->variant != S_UNKNOWN && v != self->variant)) {
        e = vdgx_strdupf ("%s: service %s cannot serve the %s DiT (hidden %lld) in %s", S_WHO,
                          self->model, s_variant_name (v), (long long) dc->hidden, self->weights_dir);
        goto fail;
    }
    self->variant = v;
    self->caption_dim = dc->caption_dim;
    if (dc->caption_len != S_TEXT_LEN) {
        e = vdgx_strdupf ("%s: the DiT's null caption has %lld rows, not %d", S_WHO,
                          (long long) dc->caption_len, S_TEXT_LEN);
        goto fail;
    }
    vdgx_engine_report (io, "loading", 0, 0, 4, "tokenizer and text encoder");
    static const char *const t5_dirs [] = { "ckpt/t5/t5-v1_1-xxl", "t5_pretrained/t5-v1_1-xxl",
        "t5/t5-v1_1-xxl", "ckpt/t5", "t5", NULL };
    path = s_first (self->weights_dir, t5_dirs, true);
    if (!path) {
        e = vdgx_strdupf ("%s: no T5 encoder in %s (expected ckpt/t5/t5-v1_1-xxl/)", S_WHO,
                          self->weights_dir);
        goto fail;
    }
    vdgx_tok_opts_t tok_opts = vdgx_tok_opts_t5 ("T5 tokenizer");
    tok_opts.lowercase = true;      //  MAGI-1 cleans the caption to lower case
    self->tok = vdgx_tok_new (path, &tok_opts, &e);
    if (!self->tok)
        goto fail;
    self->t5 = vdgx_t5_new (path, self->backend, s_t5_format (self->precision), &e);
    free (path);
    path = NULL;
    if (!self->t5)
        goto fail;
    const vdgx_t5_config_t *tc = vdgx_t5_config (self->t5);
    if (tc->dim != dc->caption_dim) {
        e = vdgx_strdupf ("%s: the text encoder width %d differs from the DiT caption width %lld",
                          S_WHO, tc->dim, (long long) dc->caption_dim);
        goto fail;
    }
    if (vdgx_tok_vocab_size (self->tok) > tc->vocab) {
        e = vdgx_strdupf ("%s: the tokenizer has %d pieces, the text encoder only %d embeddings",
                          S_WHO, vdgx_tok_vocab_size (self->tok), tc->vocab);
        goto fail;
    }
    if (s_load_special (self, dc->caption_dim, &e))
        goto fail;
    vdgx_engine_report (io, "loading", 0, 0, 8, "VAE");
    static const char *const vae_dirs [] = { "ckpt/vae", "vae", NULL };
    path = s_first (self->weights_dir, vae_dirs, true);
    if (!path) {
        e = vdgx_strdupf ("%s: no VAE in %s (expected ckpt/vae/)", S_WHO, self->weights_dir);
        goto fail;
    }
    self->vae = magi1_vae_open (self->backend, path, NULL, &e);
    free (path);
    path = NULL;
    if (!self->vae)
        goto fail;
    const magi1_vae_config_t *vc = magi1_vae_config (self->vae);
    if (vc->z_chans != dc->out_channels || vc->patch_length != 4) {
        e = vdgx_strdupf ("%s: the VAE has %lld latent channels and a temporal factor %lld; the "
                          "DiT needs %lld and 4", S_WHO, (long long) vc->z_chans,
                          (long long) vc->patch_length, (long long) dc->out_channels);
        goto fail;
    }
    vdgx_engine_report (io, "loading", 0, 0, 10, NULL);
    return VDGX_ENGINE_OK;
fail:
    free (path);
    *err = e? e: vdgx_strdupf ("%s: loading failed", S_WHO);
    s_unload (self);
    return VDGX_ENGINE_ERROR;
}

//  ---------------------------------------------------------------------------------------
//  Limits and validation

#define s_bad(err, field, ...) (vdgx_error_set ((err), VDGX_E_BAD_REQUEST, (field), __VA_ARGS__), -1)

static bool
s_is_tiny (vdgx_engine_t *self)
{
    return self->tiny_service || self->variant == S_TINY;
}

static int
s_limits (vdgx_engine_t *self, vdgx_limits_t *lim)
{
    vdgx_limits_init (lim);
    lim->present = true;
    lim->frames_4n1 = false;
    lim->fps_max = S_FPS;
    lim->guidance_max = 50;
    if (s_is_tiny (self)) {
        lim->wh_min = 32;
        lim->wh_max = 64;
        lim->wh_multiple = 16;
        lim->frames_max = S_TINY_CHUNKS * S_CHUNK_FRAMES;
        lim->steps_max = 64;
        return 0;
    }
    lim->wh_min = 720;
    lim->wh_max = 1280;
    lim->wh_multiple = 16;
    lim->frames_max = S_MAX_CHUNKS * S_CHUNK_FRAMES;
    lim->steps_max = 256;
    vdgx_limits_add_size (lim, 720, 720);
    vdgx_limits_add_size (lim, 1280, 720);
    vdgx_limits_add_size (lim, 720, 1280);
    return 0;
}

//  The official step counts: 4.5B 64, 24B 32 (base) / 16 (distill); tiny 8.
static uint32_t
s_default_steps (vdgx_engine_t *self)
{
    if (s_is_tiny (self))
        return 8;
    if (self->variant == S_24B)
        return self->distill? 16: 32;
    return 64;
}

static int
s_validate (vdgx_engine_t *self, vdgx_genreq_t *req, vdgx_error_t *err)
{
    bool tiny = s_is_tiny (self);
    vdgx_limits_t lim;
    s_limits (self, &lim);
    if (vdgx_limits_check (&lim, self->model, req, err))
        return -1;
    if (!req->prompt || !*req->prompt)
        return s_bad (err, "prompt", "prompt must not be empty");
    if (req->negative_prompt)
        return s_bad (err, "negative_prompt", "%s has no negative prompt: its unconditional "
                      "side is the learned null caption", self->model);
    if (req->fps && req->fps != S_FPS)
        return s_bad (err, "fps", "%s makes 24 fps video (got %u)", self->model, req->fps);
    req->fps = S_FPS;
    if (!req->width && !req->height) {
        req->width = tiny? 32: self->variant == S_24B? 1280: 720;
        req->height = tiny? 32: 720;
    }
    uint32_t max_chunks = lim.frames_max / S_CHUNK_FRAMES;
    if (req->frames) {
        if (req->frames % S_CHUNK_FRAMES)
            return s_bad (err, "frames", "%s makes whole chunks of 24 frames: frames must be a "
                          "multiple of 24 from 24 to %u (got %u)", self->model, lim.frames_max,
                          req->frames);
    }
    else
    if (req->has_seconds) {
        if (!(req->seconds > 0) || req->seconds > max_chunks)
            return s_bad (err, "seconds", "%s makes 1 to %u seconds (whole 24-frame chunks; "
                          "got %g)", self->model, max_chunks, req->seconds);
        req->frames = magi1_engine_chunks_for (req->seconds) * S_CHUNK_FRAMES;
    }
    else
        req->frames = (tiny? 2: 4) * S_CHUNK_FRAMES;
    if (!req->steps)
        req->steps = s_default_steps (self);
    if (req->steps % 4 || req->steps % (uint32_t) self->window_size)
        return s_bad (err, "steps", "%s needs steps that are a multiple of 4 and of the window "
                      "size %d (got %u)", self->model, self->window_size, req->steps);
    if (req->has_shift && req->shift != 3.0)
        return s_bad (err, "shift", "%s uses its fixed sd3 shift of 3 (got %g)", self->model,
                      req->shift);
    if (req->sampler [0] && strcmp (req->sampler, "euler") != 0)
        return s_bad (err, "sampler", "%s samples with euler (flow) steps (got '%s')", self->model,
                      req->sampler);
    snprintf (req->sampler, sizeof req->sampler, "euler");
    if (req->has_guidance && self->distill)
        return s_bad (err, "guidance", "the distilled %s runs without guidance", self->model);
    if (!req->has_seed) {
        req->has_seed = true;
        req->seed = vdgx_random_seed ();
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Generation

//  The prompt as MAGI-1's DiT takes it: T5 rows of its tokens (EOS included), zero-padded to
//  800, and the mask [800] (1 = a real token). Caller frees both.
static int
s_encode (vdgx_engine_t *self, const char *text, float **emb_p, float **mask_p, char **err)
{
    int64_t dim = self->caption_dim;
    int32_t *ids = (int32_t *) calloc (S_TEXT_LEN, sizeof (int32_t));
    float *emb = (float *) calloc ((size_t) (S_TEXT_LEN * dim), sizeof (float));
    float *mask = (float *) calloc (S_TEXT_LEN, sizeof (float));
    int rc = -1;
    vdgx_tensor_t out = { 0 };
    if (!ids || !emb || !mask) {
        vdgx_set_error (err, "out of memory");
        goto done;
    }
    int n = vdgx_tok_encode (self->tok, text, S_TEXT_LEN, ids, NULL, err);
    if (n < 1) {
        if (!*err)
            vdgx_set_error (err, "%s: the prompt could not be tokenized", S_WHO);
        goto done;
    }
    if (vdgx_t5_encode (self->t5, ids, n, S_TEXT_LEN, &out)) {
        vdgx_set_error (err, "%s: text encoder: %s", S_WHO, vdgx_t5_error (self->t5));
        goto done;
    }
    if (vdgx_tensor_to_f32 (self->backend, &out, emb)) {
        vdgx_set_error (err, "%s: cannot read the text encoding: %s", S_WHO,
                        vdgx_backend_error (self->backend));
        goto done;
    }
    for (int i = 0; i < n; i++)
        mask [i] = 1;
    rc = 0;
done:
    vdgx_tensor_release (self->backend, &out);
    free (ids);
    if (rc) {
        free (emb);
        free (mask);
    }
    else {
        *emb_p = emb;
        *mask_p = mask;
    }
    return rc;
}

typedef struct {
    vdgx_engine_t *self;
    const vdgx_engine_io_t *io;
    int chunks, steps_total;
    int64_t C, F, h, w;         //  latent chunk shape
    float *chunk;               //  [C, F, h, w] scratch
    uint8_t *rgb8;              //  the chunk's frames [24, height, width, 3] (official uint8)
    float *rgb;                 //  one frame, HWC in [-1, 1]
    int width, height;          //  the requested video size
    uint32_t frames_out;
    double t_decode;
    char *err;
} s_gen_t;

static bool
s_cancelled (const vdgx_engine_io_t *io)
{
    return io && io->cancel && atomic_load (io->cancel) != 0;
}

static int
s_on_step (void *ctx, int step, int total)
{
    s_gen_t *g = (s_gen_t *) ctx;
    vdgx_engine_report (g->io, "denoising", (uint32_t) step, (uint32_t) total,
                10.0 + 85.0 * step / (total > 0? total: 1), NULL);
    return s_cancelled (g->io)? 1: 0;
}

//  A clean chunk: decoded as the official pipeline does (decode_chunk: latent / 0.18215, the
//  tiled decode at 24 fps, uint8 frames), handed to the frame sink, and published as a
//  playable piece of the video (io->segment).
static int
s_on_chunk (void *ctx, int chunk, const float *x)
{
    s_gen_t *g = (s_gen_t *) ctx;
    double t0 = s_now ();
    int64_t plane = g->h * g->w, T = (int64_t) g->chunks * g->F;
    for (int64_t c = 0; c < g->C; c++)
        memcpy (g->chunk + c * g->F * plane, x + (c * T + (int64_t) chunk * g->F) * plane,
                (size_t) (g->F * plane) * sizeof (float));
    vdgx_engine_report (g->io, "decoding", (uint32_t) chunk + 1, (uint32_t) g->chunks,
                10.0 + 85.0 * (chunk + 1) / g->chunks, "chunk");
    if (magi1_vae_decode_chunk (g->self->vae, g->chunk, g->F, g->h, g->w, S_FPS, NULL, g->rgb8,
                                &g->err))
        return -1;
    size_t hw3 = (size_t) g->width * (size_t) g->height * 3;
    for (int f = 0; f < S_CHUNK_FRAMES; f++) {
        const uint8_t *p = g->rgb8 + (size_t) f * hw3;
        for (size_t i = 0; i < hw3; i++)
            g->rgb [i] = p [i] / 127.5f - 1.0f;
        if (g->io->frame && g->io->frame (g->io->ctx, g->rgb, g->width, g->height)) {
            vdgx_set_error (&g->err, "%s: the video encoder refused a frame", S_WHO);
            return -1;
        }
        g->frames_out++;
    }
    if (g->io->segment && g->io->segment (g->io->ctx)) {
        vdgx_set_error (&g->err, "%s: the video encoder could not write chunk %d", S_WHO, chunk);
        return -1;
    }
    g->t_decode += s_now () - t0;
    return 0;
}

static int
s_generate (vdgx_engine_t *self, const vdgx_genreq_t *req, const vdgx_engine_io_t *io,
            vdgx_engine_output_t *out, char **err)
{
    if (!self->dit) {
        *err = vdgx_strdupf ("%s: generate before load", S_WHO);
        return VDGX_ENGINE_ERROR;
    }
    const magi1_dit_config_t *dc = magi1_dit_config (self->dit);
    int64_t factor = magi1_vae_config (self->vae)->patch_size;
    if (factor < 1 || req->width % (2 * factor) || req->height % (2 * factor)) {
        *err = vdgx_strdupf ("%s: %ux%u is not a multiple of %lld (the VAE's patches x the "
                             "DiT's 2x2)", S_WHO, req->width, req->height, (long long) (2 * factor));
        return VDGX_ENGINE_ERROR;
    }
    int chunks = (int) (req->frames / S_CHUNK_FRAMES);
    int64_t C = dc->out_channels, F = S_CHUNK_LATENT;
    int64_t h = req->height / factor, w = req->width / factor;
    int64_t len = S_TEXT_LEN, dim = dc->caption_dim;
    int rc = VDGX_ENGINE_ERROR;
    float *emb = NULL, *mask = NULL, *y = NULL, *ym = NULL, *x = NULL;
    s_gen_t g = { .self = self, .io = io, .chunks = chunks, .C = C, .F = F, .h = h, .w = w,
                  .width = (int) req->width, .height = (int) req->height };
    double t0 = s_now ();
    vdgx_engine_report (io, "encoding_text", 0, 0, 10, NULL);
    if (s_encode (self, req->prompt, &emb, &mask, err))
        goto done;
    y = (float *) malloc ((size_t) (chunks * len * dim) * sizeof (float));
    ym = (float *) malloc ((size_t) (chunks * len) * sizeof (float));
    x = (float *) malloc ((size_t) (C * chunks * F * h * w) * sizeof (float));
    g.chunk = (float *) malloc ((size_t) (C * F * h * w) * sizeof (float));
    g.rgb = (float *) malloc ((size_t) req->width * req->height * 3 * sizeof (float));
    g.rgb8 = (uint8_t *) malloc ((size_t) S_CHUNK_FRAMES * req->width * req->height * 3);
    if (!y || !ym || !x || !g.chunk || !g.rgb || !g.rgb8) {
        *err = vdgx_strdupf ("out of memory");
        goto done;
    }
    for (int i = 0; i < chunks; i++)
        magi1_caption_rows (self->other_tokens, emb, mask, len, dim, i, chunks,
                            y + (size_t) i * len * dim, ym + (size_t) i * len);
    out->t_text = s_now () - t0;
    if (s_cancelled (io)) {
        rc = VDGX_ENGINE_CANCELLED;
        goto done;
    }
    //  The initial noise: torch.randn of the whole latent [1, C, chunks*F, h, w] under the seed.
    vdgx_torchrng_t *rng = vdgx_torchrng_new (req->seed);
    if (!rng) {
        *err = vdgx_strdupf ("out of memory");
        goto done;
    }
    vdgx_torchrng_randn (rng, x, (size_t) (C * chunks * F * h * w));
    vdgx_torchrng_destroy (&rng);

    magi1_sched_t sched;
    s_sched (self, (int) req->steps, &sched);
    if (req->has_guidance)
        for (int i = 0; i < 5; i++)
            if (sched.text_scales [i] != 0)
                sched.text_scales [i] = (float) req->guidance;
    g.steps_total = magi1_sample_steps_total (&sched, chunks);
    double t1 = s_now ();
    vdgx_engine_report (io, "denoising", 0, (uint32_t) g.steps_total, 10, NULL);
    magi1_sample_args_t a = {
        .chunks = chunks, .C = C, .F = F, .H = h, .W = w, .y = y, .mask = ym,
        .on_step = s_on_step, .on_chunk = s_on_chunk, .cb_ctx = &g,
    };
    char *serr = NULL;
    int r = magi1_sample (self->dit, &sched, &a, x, &serr);
    if (r == -2) {
        free (serr);
        rc = VDGX_ENGINE_CANCELLED;
        goto done;
    }
    if (r != 0) {
        *err = g.err? g.err: serr? serr: vdgx_strdupf ("%s: sampling failed", S_WHO);
        if (*err == g.err)
            free (serr);
        g.err = NULL;
        goto done;
    }
    free (serr);
    if (g.frames_out != req->frames) {
        *err = vdgx_strdupf ("%s: %u frames made, %u asked", S_WHO, g.frames_out, req->frames);
        goto done;
    }
    out->t_decode = g.t_decode;
    out->t_denoise = s_now () - t1 - g.t_decode;
    out->width = req->width;
    out->height = req->height;
    out->frames = req->frames;
    out->fps = S_FPS;
    out->seed = req->seed;
    rc = VDGX_ENGINE_OK;
done:
    free (g.err);
    free (g.chunk);
    free (g.rgb);
    free (g.rgb8);
    free (emb);
    free (mask);
    free (y);
    free (ym);
    free (x);
    return rc;
}

const vdgx_engine_class_t vdgx_magi1_engine_class = {
    .name = "magi1",
    .description = "MAGI-1 autoregressive text-to-video, streamed chunk by chunk (4.5B / 24B, "
                   "base and distill; magi1-4.5b, magi1-4.5b-distill, magi1-24b, ...)",
    .create = s_create, .load = s_load, .validate = s_validate, .generate = s_generate,
    .unload = s_unload, .memory_estimate = s_memory_estimate, .precisions = s_get_precisions,
    .destroy = s_destroy, .limits = s_limits, .streaming = true,
};

const vdgx_engine_class_t vdgx_magi1_tiny_engine_class = {
    .name = "magi1-tiny",
    .description = "MAGI-1 tiny random-weight demo, streamed chunk by chunk "
                   "(vdgx-worker --make-tiny-checkpoint DIR --model magi1-tiny)",
    .create = s_create_tiny, .load = s_load, .validate = s_validate, .generate = s_generate,
    .unload = s_unload, .memory_estimate = s_memory_estimate, .precisions = s_get_precisions,
    .destroy = s_destroy, .limits = s_limits, .streaming = true,
};

//  ---------------------------------------------------------------------------------------
//  Selftest: the tiny checkpoint end to end through the engine interface (validation with
//  the field named, progress per step and chunk, frames chunk by chunk with a segment after
//  each, cancel between steps, determinism, memory estimates, refusals).

typedef struct {
    int frames, segments, steps, steps_total, decodes;
    int frames_at_segment [8];
    int cancel_at;              //  set the cancel flag at this denoising step (0 = never)
    atomic_int cancel;
    uint64_t hash;
} s_sink_t;

static void
s_test_progress (void *ctx, const vdgx_engine_progress_t *p)
{
    s_sink_t *s = (s_sink_t *) ctx;
    if (strcmp (p->phase, "denoising") == 0 && p->step > 0) {
        assert (p->step == (uint32_t) s->steps + 1);        //  every step, in order
        s->steps = (int) p->step;
        s->steps_total = (int) p->steps;
        if (s->cancel_at && s->steps == s->cancel_at)
            atomic_store (&s->cancel, 1);
    }
    if (strcmp (p->phase, "decoding") == 0)
        s->decodes++;
    assert (p->percent >= 0 && p->percent <= 100);
}

static int
s_test_frame (void *ctx, const float *rgb, int width, int height)
{
    s_sink_t *s = (s_sink_t *) ctx;
    for (int i = 0; i < width * height * 3; i++) {
        assert (rgb [i] >= -1.0f && rgb [i] <= 1.0f);
        s->hash = s->hash * 1099511628211ull + (uint64_t) llroundf ((rgb [i] + 1) * 127.5f);
    }
    s->frames++;
    return 0;
}

static int
s_test_segment (void *ctx)
{
    s_sink_t *s = (s_sink_t *) ctx;
    assert (s->segments < 8);
    s->frames_at_segment [s->segments++] = s->frames;
    return 0;
}

static void
s_test_refused (vdgx_engine_t *e, vdgx_genreq_t *req, const char *field, bool verbose)
{
    vdgx_error_t err;
    vdgx_error_init (&err);
    int rc = s_validate (e, req, &err);
    if (verbose)
        printf ("\n    refused %s: %s", err.field, err.message);
    assert (rc == -1 && strcmp (err.field, field) == 0 && *err.message);
}

void
magi1_engine_test (bool verbose)
{
    printf (" * magi1_engine: ");
    assert (magi1_engine_chunks_for (1) == 1 && magi1_engine_chunks_for (1.5) == 2);
    assert (magi1_engine_chunks_for (2.0) == 2 && magi1_engine_chunks_for (0.2) == 1);
    assert (magi1_engine_chunks_for (4) == 4);
    char dir [] = "/tmp/vdgx-magi1-engine-XXXXXX";
    assert (mkdtemp (dir));
    char *weights = vdgx_strdupf ("%s/tiny", dir), *err = NULL;
    assert (magi1_tiny_write (weights, 7, &err) == 0);

    //  names and options
    vdgx_engine_config_t cfg = { .model = "magi1-tiny", .weights_dir = weights, .device = "cpu",
                                 .threads = 2 };
    vdgx_engine_t *e = NULL;
    vdgx_engine_config_t bad = cfg;
    bad.model = "magi1-7b";
    assert (s_create (&e, &bad, &err) == VDGX_ENGINE_ERROR && strstr (err, "unknown service"));
    free (err);
    err = NULL;
    bad = cfg;
    bad.model = "magi1-4.5b-distill-quant";
    bad.precision = "bf16";
    assert (s_create (&e, &bad, &err) == VDGX_ENGINE_ERROR && strstr (err, "fp8 checkpoint"));
    free (err);
    err = NULL;
    setenv ("VDGX_MAGI1_WINDOW_SIZE", "5", 1);
    assert (s_create_tiny (&e, &cfg, &err) == VDGX_ENGINE_ERROR && strstr (err, "WINDOW_SIZE"));
    free (err);
    err = NULL;
    unsetenv ("VDGX_MAGI1_WINDOW_SIZE");
    //  a 24B service on the tiny folder: a clear error, nothing loaded
    bad = cfg;
    bad.model = "magi1-24b";
    assert (s_create (&e, &bad, &err) == VDGX_ENGINE_OK);
    assert (s_load (e, NULL, &err) == VDGX_ENGINE_ERROR && strstr (err, "cannot serve the tiny DiT"));
    if (verbose)
        printf ("\n    %s", err);
    free (err);
    err = NULL;
    s_destroy (&e);
    //  ... and the 4.5B service on a folder holding the tiny DiT: refused by its shapes
    char *fake = vdgx_strdupf ("%s/fake", dir), *link = vdgx_strdupf ("%s/fake/dit", dir);
    assert (mkdir (fake, 0755) == 0 && symlink (weights, link) == 0);
    free (link);
    link = vdgx_strdupf ("%s/tiny/dit", dir);
    char *base = vdgx_strdupf ("%s/fake/ckpt", dir);
    assert (mkdir (base, 0755) == 0);
    free (base);
    base = vdgx_strdupf ("%s/fake/ckpt/magi", dir);
    assert (mkdir (base, 0755) == 0);
    free (base);
    base = vdgx_strdupf ("%s/fake/ckpt/magi/4.5B_base", dir);
    assert (symlink (link, base) == 0);
    bad = cfg;
    bad.model = "magi1-4.5b";
    bad.weights_dir = fake;
    assert (s_create (&e, &bad, &err) == VDGX_ENGINE_OK);
    assert (s_load (e, NULL, &err) == VDGX_ENGINE_ERROR && strstr (err, "cannot serve the tiny DiT"));
    if (verbose)
        printf ("\n    %s", err);
    free (err);
    err = NULL;
    s_destroy (&e);
    free (base);
    free (link);
    free (fake);

    //  the estimate's KV cache is the bounded one: 5 chunks of rows (6 for distill at windows
    //  3 and 4: the nearly-clean copy) for a video of any length
    for (int window = 1; window <= 4; window++) {
        char wenv [8];
        snprintf (wenv, sizeof wenv, "%d", window);
        setenv ("VDGX_MAGI1_WINDOW_SIZE", wenv, 1);
        const char *names [4] = { "magi1-4.5b", "magi1-4.5b-distill", "magi1-24b", "magi1-24b-distill" };
        for (int i = 0; i < 4; i++) {
            vdgx_engine_config_t real = { .model = names [i], .weights_dir = dir, .device = "cuda:0" };
            assert (s_create (&e, &real, &err) == VDGX_ENGINE_OK);
            int want = e->distill && window >= 3? 6: 5;
            assert (s_cache_chunks (e, S_MAX_CHUNKS) == want && s_cache_chunks (e, 8) == want);
            assert (s_cache_chunks (e, 1) <= 2);
            if (verbose && (window == 4 || window == 1))
                printf ("\n    %s window %d: KV cache %d chunks, estimate %.2f GB (bf16)", names [i],
                        window, want, s_memory_estimate (e, "bf16") / 1e9);
            s_destroy (&e);
        }
    }
    unsetenv ("VDGX_MAGI1_WINDOW_SIZE");

    assert (s_create_tiny (&e, &cfg, &err) == VDGX_ENGINE_OK);
    uint64_t m32 = s_memory_estimate (e, "fp32"), m8 = s_memory_estimate (e, "fp8");
    assert (m32 > m8 && m8 > 0);

    //  validation: defaults, then each bad field named
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "magi1-tiny");
    req.prompt = strdup ("a red kite over a green hill");
    vdgx_error_t verr;
    vdgx_error_init (&verr);
    assert (s_validate (e, &req, &verr) == 0);
    assert (req.width == 32 && req.height == 32 && req.frames == 48 && req.fps == 24);
    assert (req.steps == 8 && strcmp (req.sampler, "euler") == 0 && req.has_seed);
    req.frames = 30;
    s_test_refused (e, &req, "frames", verbose);
    req.frames = 120;       //  5 chunks: over the tiny model's 4
    s_test_refused (e, &req, "frames", verbose);
    req.frames = 0;
    req.has_seconds = true;
    req.seconds = 2.5;
    assert (s_validate (e, &req, &verr) == 0 && req.frames == 72);
    req.frames = 0;
    req.seconds = 4.5;
    s_test_refused (e, &req, "seconds", verbose);
    req.has_seconds = false;
    req.frames = 24;
    req.fps = 30;
    s_test_refused (e, &req, "fps", verbose);
    req.fps = 0;
    req.steps = 6;
    s_test_refused (e, &req, "steps", verbose);
    req.steps = 8;
    snprintf (req.sampler, sizeof req.sampler, "unipc");
    s_test_refused (e, &req, "sampler", verbose);
    req.sampler [0] = 0;
    req.width = 40;
    req.height = 32;
    s_test_refused (e, &req, "width", verbose);
    req.width = 32;
    req.negative_prompt = strdup ("blurry");
    s_test_refused (e, &req, "negative_prompt", verbose);
    free (req.negative_prompt);
    req.negative_prompt = NULL;

    //  a 2-chunk job: every step reported, 24 frames then a segment, twice
    s_sink_t sink;
    memset (&sink, 0, sizeof sink);
    vdgx_engine_io_t io = { .ctx = &sink, .progress = s_test_progress, .frame = s_test_frame,
                            .segment = s_test_segment, .cancel = &sink.cancel };
    assert (s_load (e, &io, &err) == VDGX_ENGINE_OK);
    req.frames = 48;
    req.seed = 11;
    req.width = 48;
    req.height = 32;
    assert (s_validate (e, &req, &verr) == 0);
    vdgx_engine_output_t out;
    memset (&out, 0, sizeof out);
    double t0 = s_now ();
    int rc = s_generate (e, &req, &io, &out, &err);
    if (rc && err)
        fprintf (stderr, "\n%s\n", err);
    assert (rc == VDGX_ENGINE_OK);
    if (verbose)
        printf ("\n    2 chunks 48x32, 8 steps: %.2f s", s_now () - t0);
    assert (sink.frames == 48 && sink.segments == 2);
    assert (sink.frames_at_segment [0] == 24 && sink.frames_at_segment [1] == 48);
    assert (sink.steps == sink.steps_total && sink.steps_total == (2 + 4 - 1) * 2);
    assert (sink.decodes >= 2);
    assert (out.frames == 48 && out.fps == 24 && out.width == 48 && out.height == 32 && out.seed == 11);
    uint64_t hash = sink.hash;
    //  the same seed: the same frames
    memset (&sink, 0, sizeof sink);
    assert (s_generate (e, &req, &io, &out, &err) == VDGX_ENGINE_OK && sink.hash == hash);
    //  cancel between steps
    memset (&sink, 0, sizeof sink);
    sink.cancel_at = 3;
    assert (s_generate (e, &req, &io, &out, &err) == VDGX_ENGINE_CANCELLED);
    assert (sink.steps == 3 && sink.frames < 48);
    vdgx_genreq_clear (&req);
    s_destroy (&e);
    assert (!e);
    free (weights);
    char *cmd = vdgx_strdupf ("rm -rf '%s'", dir);
    assert (cmd && system (cmd) == 0);
    free (cmd);
    printf ("OK\n");
}
