/*  wan21_engine.c - the Wan 2.1 engine of the worker (see wan21_engine.h). */
#include "wan21_engine.h"
#include "vdgx_util.h"
#include "wan21_dit.h"
#include "vdgx_t5.h"
#include "vdgx_tok.h"
#include "wan21_vae.h"
#include "wan21_clip.h"
#include "wan21_i2v.h"
#include "vdgx_ckpt.h"
#include "vdgx_image.h"
#include "vdgx_msg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef enum { S_UNKNOWN = 0, S_1_3B, S_14B, S_TINY } s_variant_t;
//  What the model makes a video from: text, text + first frame, text + first and last frame.
typedef enum { S_KIND_UNKNOWN = -1, S_T2V = 0, S_I2V = 1, S_FLF2V = 2 } s_kind_t;

struct _vdgx_engine_t {
    char *model, *weights_dir, *device;
    char precision [8];
    int threads;
    bool tiny_service;          //  served as wan21-tiny / wan21-i2v-tiny: small sizes, small defaults
    s_variant_t variant;        //  from the service name or the DiT shapes
    s_kind_t kind;              //  from the service name or the DiT shapes
    bool kind_named;            //  the service name fixes the kind (all but "wan21")
    int res;                    //  image models: 480 or 720 (the -480p / -720p services), 0 any
    vdgx_backend_t *backend;
    vdgx_tok_t *tok;
    vdgx_t5_t *t5;
    wan21_dit_t *dit;
    wan21_vae_t *vae;
    wan21_clip_t *clip;         //  image models
    int text_len;
};

//  The CLIP checkpoint of the image models (official name; safetensors with the same keys).
static const char *const s_clip_files [] = {
    "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth",
    "models_clip_open-clip-xlm-roberta-large-vit-huge-14.safetensors", NULL
};

static const char *const s_precisions [] = { "bf16", "fp8", "fp4", "fp32", NULL };
static const char *const s_tiny_precisions [] = { "fp32", "bf16", "fp8", "fp4", NULL };

//  Monotonic seconds.
static double
s_now (void)
{
    return zclock_usecs () / 1e6;
}

//  The first existing file among dir/<names> (caller frees), NULL when none.
static char *
s_first_file (const char *dir, const char *const *names)
{
    for (int i = 0; names [i]; i++) {
        char *p = vdgx_strdupf ("%s/%s", dir, names [i]);
        if (p && vdgx_is_file (p))
            return p;
        free (p);
    }
    return NULL;
}

//  The DiT width and kind, read from the checkpoint header only (no weights are read).
static int
s_peek_dit (const char *dir, s_kind_t *kind)
{
    *kind = S_KIND_UNKNOWN;
    static const char *const names [] = {
        "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors",
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        "transformer/diffusion_pytorch_model.safetensors", NULL
    };
    char *file = dir? s_first_file (dir, names): NULL;
    if (!file)
        return 0;
    char *err = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (file, &err);
    free (err);
    free (file);
    if (!ckpt)
        return 0;
    const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (ckpt, "patch_embedding.weight");
    int dim = t && t->ndim == 5? (int) t->shape [0]: 0;
    if (dim > 0)
        *kind = !vdgx_ckpt_find (ckpt, "img_emb.proj.1.weight")? S_T2V
              : vdgx_ckpt_find (ckpt, "img_emb.emb_pos")? S_FLF2V: S_I2V;
    vdgx_ckpt_destroy (&ckpt);
    return dim;
}

static const char *
s_kind_name (s_kind_t k)
{
    return k == S_T2V? "text-to-video": k == S_I2V? "image-to-video"
         : k == S_FLF2V? "first-last-frame-to-video": "unknown";
}

static s_variant_t
s_variant_of_dim (int dim)
{
    return dim == 1536? S_1_3B: dim == 5120? S_14B: dim > 0? S_TINY: S_UNKNOWN;
}

static const char *
s_variant_name (s_variant_t v)
{
    return v == S_1_3B? "1.3B": v == S_14B? "14B": v == S_TINY? "tiny": "unknown";
}

static int
s_create_common (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, bool tiny, char **err)
{
    if (!cfg || !cfg->model) {
        *err = vdgx_strdupf ("wan21: no model name");
        return VDGX_ENGINE_ERROR;
    }
    const char *m = cfg->model;
    s_variant_t by_name = S_UNKNOWN;
    s_kind_t kind_by_name = S_T2V;
    int res = 0;
    if (strcmp (m, "wan21-i2v-tiny") == 0 || strcmp (m, "wan21-flf2v-tiny") == 0) {
        tiny = true;
        kind_by_name = strstr (m, "flf2v")? S_FLF2V: S_I2V;
    }
    if (tiny)
        by_name = S_TINY;
    else
    if (strcmp (m, "wan21-1.3b") == 0)
        by_name = S_1_3B;
    else
    if (strcmp (m, "wan21-14b") == 0)
        by_name = S_14B;
    else
    if (strcmp (m, "wan21-i2v-14b-480p") == 0 || strcmp (m, "wan21-i2v-14b-720p") == 0) {
        by_name = S_14B;
        kind_by_name = S_I2V;
        res = strstr (m, "480p")? 480: 720;
    }
    else
    if (strcmp (m, "wan21-flf2v-14b-720p") == 0) {
        by_name = S_14B;
        kind_by_name = S_FLF2V;
        res = 720;
    }
    else
    if (strcmp (m, "wan21") == 0)
        kind_by_name = S_KIND_UNKNOWN;      //  whatever the weights are
    else {
        *err = vdgx_strdupf ("wan21: unknown service '%s' (wan21, wan21-1.3b, wan21-14b, wan21-tiny, "
                             "wan21-i2v-14b-480p, wan21-i2v-14b-720p, wan21-flf2v-14b-720p, "
                             "wan21-i2v-tiny, wan21-flf2v-tiny)", m);
        return VDGX_ENGINE_ERROR;
    }
    const char *const *list = tiny? s_tiny_precisions: s_precisions;
    if (vdgx_engine_config_check (cfg, "wan21", list, "the model folder", err))
        return VDGX_ENGINE_ERROR;
    vdgx_engine_t *self = (vdgx_engine_t *) calloc (1, sizeof *self);
    if (!self) {
        *err = vdgx_strdupf ("out of memory");
        return VDGX_ENGINE_FATAL;
    }
    self->model = strdup (m);
    self->weights_dir = strdup (cfg->weights_dir);
    self->device = strdup (cfg->device && *cfg->device? cfg->device: "cpu");
    snprintf (self->precision, sizeof self->precision, "%s",
              cfg->precision && *cfg->precision? cfg->precision: list [0]);
    self->threads = cfg->threads;
    self->tiny_service = tiny;
    //  The size and kind from the weights when they are there (header only), else from the name.
    s_kind_t kind_by_shape;
    s_variant_t by_shape = s_variant_of_dim (s_peek_dit (self->weights_dir, &kind_by_shape));
    if ((by_shape != S_UNKNOWN && by_name != S_UNKNOWN && by_shape != by_name)
    ||  (kind_by_shape != S_KIND_UNKNOWN && kind_by_name != S_KIND_UNKNOWN && kind_by_shape != kind_by_name)) {
        *err = vdgx_strdupf ("wan21: service %s needs %s %s weights, but %s holds a %s %s DiT", m,
                          s_variant_name (by_name), s_kind_name (kind_by_name), self->weights_dir,
                          s_variant_name (by_shape), s_kind_name (kind_by_shape));
        vdgx_engine_t *tmp = self;
        free (tmp->model);
        free (tmp->weights_dir);
        free (tmp->device);
        free (tmp);
        return VDGX_ENGINE_ERROR;
    }
    self->variant = by_shape != S_UNKNOWN? by_shape: by_name;
    self->kind = kind_by_shape != S_KIND_UNKNOWN? kind_by_shape
               : kind_by_name != S_KIND_UNKNOWN? kind_by_name: S_T2V;
    self->kind_named = kind_by_name != S_KIND_UNKNOWN;
    self->res = res;
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
    wan21_clip_destroy (&self->clip);
    wan21_vae_destroy (&self->vae);
    wan21_dit_destroy (&self->dit);
    vdgx_t5_destroy (&self->t5);
    vdgx_tok_destroy (&self->tok);
    vdgx_backend_destroy (&self->backend);
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
//  Memory estimate: DiT (weights + activations of the largest video), umT5 linears, VAE.

static void
s_count_vae (void *arg, const char *name, int ndim, const int64_t *shape)
{
    (void) name;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (uint64_t) shape [i];
    *(uint64_t *) arg += n;
}

static uint64_t
s_memory_estimate (vdgx_engine_t *self, const char *precision)
{
    const char *p = precision && *precision? precision: self->precision;
    bool cuda = strncmp (self->device, "cuda", 4) == 0;
    size_t act = cuda && strcmp (p, "fp32") != 0? 2: 4;
    wan21_dit_config_t cfg;
    int vae_dim = 96;
    //  umT5-XXL encoder: 24 blocks of q,k,v,o (4096^2) and the gated FFN (3 x 4096 x 10240).
    uint64_t t5_params = 24ull * (4ull * 4096 * 4096 + 3ull * 4096 * 10240);
    int64_t tokens;
    int w, h, frames;
    //  CLIP visual tower of the image models: ViT-H/14, 1280 wide, 31 of 32 blocks run.
    int64_t clip_dim = 1280, clip_blocks = 31, clip_tokens = 257;
    if (self->dit) {
        cfg = *wan21_dit_config (self->dit);
        const vdgx_t5_config_t *tc = vdgx_t5_config (self->t5);
        t5_params = (uint64_t) tc->num_layers * (4ull * tc->dim * tc->dim_attn + 3ull * tc->dim * tc->dim_ffn);
        vae_dim = wan21_vae_dim (self->vae);
        if (self->clip) {
            clip_dim = wan21_clip_dim (self->clip);
            clip_blocks = wan21_clip_blocks (self->clip);
            clip_tokens = wan21_clip_tokens (self->clip);
        }
    }
    else
    if (wan21_dit_config_preset (self->variant != S_14B? "1.3b": self->kind == S_I2V? "i2v-14b"
                                 : self->kind == S_FLF2V? "flf2v-14b": "14b", &cfg)) {
        return 0;
    }
    if (self->variant == S_TINY || self->tiny_service) {
        w = 256, h = 256, frames = 33;
        if (!self->dit) {       //  the tiny checkpoint's sizes
            cfg.dim = 64, cfg.ffn_dim = 128, cfg.num_heads = 4, cfg.num_layers = 2;
            cfg.text_dim = 32, cfg.text_len = 32;
            t5_params = 2ull * (4ull * 32 * 32 + 3ull * 32 * 64);
            vae_dim = 8;
            if (self->kind != S_T2V) {      //  the wan21-i2v-tiny / -flf2v-tiny checkpoints
                cfg.in_dim = 36, cfg.text_len = 512, cfg.img_dim = 64;
                cfg.img_pos = self->kind == S_FLF2V? 2 * 257: 0;
                clip_dim = 64, clip_blocks = 2;
            }
        }
    }
    else
    if (self->variant == S_14B && self->res != 480)
        w = 1280, h = 720, frames = 81;
    else
        w = 832, h = 480, frames = 81;
    tokens = (int64_t) ((frames - 1) / 4 + 1) * (h / 16) * (w / 16);
    uint64_t bytes = wan21_dit_memory_estimate (&cfg, p, tokens, act);
    size_t t5_size = strcmp (p, "fp32") == 0? 4: strcmp (p, "bf16") == 0? 2: 1;
    bytes += t5_params * t5_size;
    uint64_t vae_params = 0;
    wan21_vae_layout (vae_dim, 16, s_count_vae, &vae_params);
    bytes += vae_params * act + wan21_vae_activation_bytes (vae_dim, w, h, act);
    if (self->kind != S_T2V) {
        //  CLIP (weights in the act dtype, one image's activations; two for flf2v), the VAE
        //  encoder (weights, and activations taken as the decoder's at this size).
        uint64_t cp = (uint64_t) clip_blocks * (12ull * clip_dim * clip_dim + 13ull * clip_dim)
                    + (uint64_t) clip_dim * (3 * 14 * 14 + clip_tokens + 3);
        bytes += cp * act + (uint64_t) clip_tokens * clip_dim * 8 * act;
        uint64_t enc_params = 0;
        wan21_vae_encoder_layout (vae_dim, 16, s_count_vae, &enc_params);
        bytes += enc_params * act + wan21_vae_activation_bytes (vae_dim, w, h, act);
    }
    return bytes;
}

//  ---------------------------------------------------------------------------------------
//  Loading

static vdgx_wfmt_t
s_t5_format (const char *precision, vdgx_dtype_t act)
{
    if (strcmp (precision, "fp32") == 0)
        return VDGX_WFMT_F32;
    if (strcmp (precision, "bf16") == 0)
        return VDGX_WFMT_BF16;
    (void) act;
    return VDGX_WFMT_FP8_E4M3;      //  fp8, and fp4 (the text encoder has no 4-bit path)
}

static int
s_load (vdgx_engine_t *self, const vdgx_engine_io_t *io, char **err)
{
    if (self->dit)
        return VDGX_ENGINE_OK;
    if (!vdgx_is_dir (self->weights_dir)) {
        *err = vdgx_strdupf ("wan21: weights folder '%s' not found", self->weights_dir);
        return VDGX_ENGINE_ERROR;
    }
    char device [64];
    if (strcmp (self->device, "cpu") == 0 && self->threads > 0)
        snprintf (device, sizeof device, "cpu:%d", self->threads);
    else
        snprintf (device, sizeof device, "%s", self->device);
    bool cpu = strncmp (device, "cpu", 3) == 0;
    vdgx_dtype_t act = cpu || strcmp (self->precision, "fp32") == 0? VDGX_DTYPE_F32: VDGX_DTYPE_BF16;
    char *e = NULL;
    self->backend = vdgx_backend_new (device, act, &e);
    if (!self->backend) {
        *err = vdgx_strdupf ("wan21: cannot open device %s: %s", device, e? e: "unknown error");
        free (e);
        return VDGX_ENGINE_ERROR;
    }
    vdgx_engine_report (io, "loading", 0, 0, 1, "tokenizer");
    //  umT5's SentencePiece model: in the folder, under google/umt5-xxl/ (official layout)
    //  or tokenizer/ (diffusers layout).
    static const char *const tok_files [] = {
        "spiece.model", "google/umt5-xxl/spiece.model", "tokenizer/spiece.model", NULL };
    vdgx_tok_opts_t tok_opts = vdgx_tok_opts_t5 ("umT5 tokenizer");
    tok_opts.files = tok_files;
    self->tok = vdgx_tok_new (self->weights_dir, &tok_opts, &e);
    if (!self->tok) {
        free (e);
        e = NULL;
        char *alt = vdgx_strdupf ("%s/tokenizer", self->weights_dir);
        self->tok = alt? vdgx_tok_new (alt, &tok_opts, &e): NULL;
        free (alt);
    }
    if (!self->tok)
        goto fail;
    vdgx_engine_report (io, "loading", 0, 0, 2, "text encoder");
    static const char *const t5_names [] = {
        "models_t5_umt5-xxl-enc-bf16.pth", "models_t5_umt5-xxl-enc-bf16.safetensors", NULL
    };
    char *t5_file = s_first_file (self->weights_dir, t5_names);
    self->t5 = vdgx_t5_new (t5_file? t5_file: self->weights_dir, self->backend,
                             s_t5_format (self->precision, act), &e);
    free (t5_file);
    if (!self->t5)
        goto fail;
    vdgx_engine_report (io, "loading", 0, 0, 5, "diffusion transformer");
    wan21_dit_load_opts_t opts = { .precision = self->precision };
    self->dit = wan21_dit_load (self->backend, self->weights_dir, &opts, &e);
    if (!self->dit)
        goto fail;
    const wan21_dit_config_t *dc = wan21_dit_config (self->dit);
    s_kind_t kind = dc->img_dim == 0? S_T2V: dc->img_pos > 0? S_FLF2V: S_I2V;
    if (self->kind_named && kind != self->kind) {
        e = vdgx_strdupf ("wan21: service %s is %s, but %s holds a %s DiT", self->model,
                          s_kind_name (self->kind), self->weights_dir, s_kind_name (kind));
        goto fail;
    }
    self->kind = kind;
    vdgx_engine_report (io, "loading", 0, 0, 9, "VAE");
    //  Text-to-video decodes only; the image models also encode the image.
    self->vae = kind == S_T2V? wan21_vae_load_decoder (self->backend, self->weights_dir, &e)
                             : wan21_vae_load (self->backend, self->weights_dir, &e);
    if (!self->vae)
        goto fail;
    if (kind != S_T2V) {
        if (!wan21_vae_has_encoder (self->vae)) {
            e = vdgx_strdupf ("wan21: the VAE in %s has no encoder (image-to-video needs it)",
                              self->weights_dir);
            goto fail;
        }
        vdgx_engine_report (io, "loading", 0, 0, 9.5, "CLIP image encoder");
        char *clip_file = s_first_file (self->weights_dir, s_clip_files);
        if (!clip_file) {
            e = vdgx_strdupf ("wan21: no %s in %s (the CLIP image encoder of the image models)",
                              s_clip_files [0], self->weights_dir);
            goto fail;
        }
        self->clip = wan21_clip_load (self->backend, clip_file, 0, &e);
        free (clip_file);
        if (!self->clip)
            goto fail;
        if (wan21_clip_dim (self->clip) != dc->img_dim) {
            e = vdgx_strdupf ("wan21: the CLIP features are %d wide, the DiT's img_emb takes %d",
                              wan21_clip_dim (self->clip), dc->img_dim);
            goto fail;
        }
    }
    const vdgx_t5_config_t *tc = vdgx_t5_config (self->t5);
    s_variant_t v = s_variant_of_dim (dc->dim);
    if ((self->tiny_service && v != S_TINY) || (self->variant != S_UNKNOWN && v != self->variant)) {
        e = vdgx_strdupf ("wan21: service %s cannot serve the %s DiT in %s", self->model,
                       s_variant_name (v), self->weights_dir);
        goto fail;
    }
    self->variant = v;
    if (tc->dim != dc->text_dim) {
        e = vdgx_strdupf ("wan21: the text encoder width %d differs from the DiT text_dim %d",
                       tc->dim, dc->text_dim);
        goto fail;
    }
    if (vdgx_tok_vocab_size (self->tok) > tc->vocab) {
        e = vdgx_strdupf ("wan21: the tokenizer has %d pieces, the text encoder only %d embeddings",
                       vdgx_tok_vocab_size (self->tok), tc->vocab);
        goto fail;
    }
    if (wan21_vae_z_dim (self->vae) != dc->out_dim) {
        e = vdgx_strdupf ("wan21: the VAE has %d latent channels, the DiT %d",
                       wan21_vae_z_dim (self->vae), dc->out_dim);
        goto fail;
    }
    self->text_len = dc->text_len;
    vdgx_engine_report (io, "loading", 0, 0, 10, NULL);
    return VDGX_ENGINE_OK;
fail:
    *err = e? e: vdgx_strdupf ("wan21: loading failed");
    s_unload (self);
    return VDGX_ENGINE_ERROR;
}

//  ---------------------------------------------------------------------------------------
//  Validation

uint32_t
wan21_engine_frames_for (double seconds, uint32_t fps, uint32_t max_frames)
{
    double quarter = seconds * (double) fps / 4.0;
    if (!(quarter >= 0))        //  NaN or negative
        quarter = 0;
    if (quarter > 1e6)
        quarter = 1e6;
    uint32_t frames = 4u * (uint32_t) llround (quarter) + 1u;
    if (frames > max_frames)
        frames = 1 + 4 * ((max_frames - 1) / 4);
    return frames;
}

//  A bad_request on a field; the value of the expression is -1.
#define s_bad(err, field, ...) (vdgx_error_set ((err), VDGX_E_BAD_REQUEST, (field), __VA_ARGS__), -1)

//  What this checkpoint accepts. The tiny model: multiples of 16 from 32 to 256, up to 33
//  frames; 1.3B: 832x480 and 480x832; 14B (and a checkpoint not yet told apart): also
//  1280x720 and 720x1280 (the -480p image service: 480p only). Always 4n+1 frames, up to 81.
//  The image models take `image` (flf2v also `last_image`); for them width x height is the
//  pixel budget and the video's aspect follows the image's (wan21_i2v_size).
static int
s_limits (vdgx_engine_t *self, vdgx_limits_t *lim)
{
    bool tiny = self->tiny_service || self->variant == S_TINY;
    vdgx_limits_init (lim);
    lim->present = true;
    lim->frames_4n1 = true;
    lim->guidance_max = 50;
    lim->fps_max = 60;
    lim->images = (uint32_t) self->kind;
    lim->images_required = lim->images;     //  i2v needs its image, flf2v both
    if (tiny) {
        lim->wh_min = 32;
        lim->wh_max = 256;
        lim->wh_multiple = 16;
        lim->frames_max = 33;
        lim->steps_max = 100;
        return 0;
    }
    lim->wh_min = 480;
    lim->wh_max = self->variant == S_1_3B || self->res == 480? 832: 1280;
    lim->wh_multiple = 16;
    lim->frames_max = 81;
    lim->steps_max = 1000;
    vdgx_limits_add_size (lim, 832, 480);
    vdgx_limits_add_size (lim, 480, 832);
    if (self->variant != S_1_3B && self->res != 480) {
        vdgx_limits_add_size (lim, 1280, 720);
        vdgx_limits_add_size (lim, 720, 1280);
    }
    return 0;
}

//  Decodes a request image (field "image" / "last_image"); NULL with a bad_request naming it.
static vdgx_image_t *
s_image (const uint8_t *data, size_t size, const char *field, vdgx_error_t *err)
{
    char e [256] = "";
    vdgx_image_t *img = vdgx_image_decode (data, size, NULL, e, sizeof e);
    if (!img)
        vdgx_error_set (err, VDGX_E_BAD_REQUEST, field, "%s: %s", field, e [0]? e: "cannot decode the image");
    return img;
}

//  The image fields: present as the kind needs, decodable; the video size from the first
//  image's aspect within the width x height pixel budget (req->width/height are set to it).
static int
s_validate_images (vdgx_engine_t *self, vdgx_genreq_t *req, const vdgx_limits_t *lim,
                   vdgx_error_t *err)
{
    if (self->kind == S_T2V) {
        if (req->image || req->last_image)
            return s_bad (err, req->image? "image": "last_image", "%s is a text-to-video model: "
                          "it takes no image (an image-to-video model is wan21-i2v-14b-480p)", self->model);
        return 0;
    }
    if (!req->image || req->image_size == 0)
        return s_bad (err, "image", "%s makes a video from an image: the request needs `image` "
                      "(the first frame; input_reference in the OpenAI API)", self->model);
    if (self->kind == S_I2V && req->last_image)
        return s_bad (err, "last_image", "%s takes one image; last_image needs a first-last-frame "
                      "model (wan21-flf2v-14b-720p)", self->model);
    if (self->kind == S_FLF2V && (!req->last_image || req->last_image_size == 0))
        return s_bad (err, "last_image", "%s needs `last_image` (the last frame) as well as `image`",
                      self->model);
    if (self->kind == S_FLF2V && req->frames < 5)
        return s_bad (err, "frames", "%s needs at least 5 frames (first and last are given)", self->model);
    vdgx_image_t *img = s_image (req->image, req->image_size, "image", err);
    if (!img)
        return -1;
    int iw = (int) vdgx_image_width (img), ih = (int) vdgx_image_height (img);
    vdgx_image_destroy (&img);
    if (req->last_image) {
        vdgx_image_t *last = s_image (req->last_image, req->last_image_size, "last_image", err);
        if (!last)
            return -1;
        vdgx_image_destroy (&last);
    }
    int w = 0, h = 0;
    char *e = NULL;
    int64_t area = (int64_t) req->width * req->height;
    if (wan21_i2v_size (iw, ih, area, &w, &h, &e)) {
        vdgx_error_set (err, VDGX_E_BAD_REQUEST, "image", "%s", e? e: "image size");
        free (e);
        return -1;
    }
    //  An extreme aspect ratio within the budget: at most 4 times the largest allowed side.
    if ((uint32_t) w > 4 * lim->wh_max || (uint32_t) h > 4 * lim->wh_max)
        return s_bad (err, "image", "an image of %dx%d gives a %dx%d video for %s; its aspect ratio "
                      "is too extreme", iw, ih, w, h, self->model);
    req->width = (uint32_t) w;
    req->height = (uint32_t) h;
    return 0;
}

static int
s_validate (vdgx_engine_t *self, vdgx_genreq_t *req, vdgx_error_t *err)
{
    bool tiny = self->tiny_service || self->variant == S_TINY;
    bool big = self->variant == S_14B && self->res != 480;
    vdgx_limits_t lim;
    s_limits (self, &lim);
    uint32_t max_frames = lim.frames_max;
    //  The explicit fields first (the same check the broker runs at submit), then defaults.
    if (vdgx_limits_check (&lim, self->model, req, err))
        return -1;
    if (!req->width && !req->height) {
        req->width = tiny? 64: big? 1280: 832;
        req->height = tiny? 48: big? 720: 480;
    }
    if (!req->fps)
        req->fps = 16;
    if (!req->frames) {
        if (req->has_seconds) {
            if (!(req->seconds > 0) || req->seconds > 3600)
                return s_bad (err, "seconds", "seconds must be > 0 (got %g)", req->seconds);
            req->frames = wan21_engine_frames_for (req->seconds, req->fps, max_frames);
        }
        else
            req->frames = tiny? 9: 81;
    }
    if (!req->steps)
        req->steps = tiny? 8: self->kind == S_I2V? 40: 50;     //  generate.py: 40 for i2v
    if (!req->has_guidance) {
        req->has_guidance = true;
        req->guidance = 5.0;
    }
    if (!req->has_shift) {
        req->has_shift = true;
        //  generate.py: 3 for i2v at the 480p sizes, 16 for flf2v, else 5.
        bool p480 = (req->width == 832 && req->height == 480) || (req->width == 480 && req->height == 832);
        req->shift = self->kind == S_FLF2V? 16.0: self->kind == S_I2V && p480? 3.0: 5.0;
    }
    if (!(req->shift > 0) || req->shift > 100)
        return s_bad (err, "shift", "shift must be > 0 and <= 100 (got %g)", req->shift);
    vdgx_solver_t sampler;
    if (!req->sampler [0])
        snprintf (req->sampler, sizeof req->sampler, "unipc");
    if (vdgx_solver_from_name (req->sampler, &sampler))
        return s_bad (err, "sampler", "sampler must be unipc, dpm++ or euler (got '%s')", req->sampler);
    if (!req->has_seed) {
        req->has_seed = true;
        req->seed = vdgx_random_seed ();
    }
    if (!req->prompt || !*req->prompt)
        return s_bad (err, "prompt", "prompt must not be empty");
    return s_validate_images (self, req, &lim, err);
}

//  ---------------------------------------------------------------------------------------
//  Generation

//  Prompt -> umT5 output rows of its real tokens, host f32 [n, dim] (caller frees).
static float *
s_encode (vdgx_engine_t *self, const char *text, int64_t *len_p, char **err)
{
    int L = self->text_len;
    int32_t *ids = (int32_t *) calloc ((size_t) L, sizeof (int32_t));
    float *host = NULL;
    if (!ids) {
        *err = vdgx_strdupf ("out of memory");
        return NULL;
    }
    int n = vdgx_tok_encode (self->tok, text, L, ids, NULL, err);
    if (n < 1) {
        if (!*err)
            *err = vdgx_strdupf ("wan21: the prompt could not be tokenized");
        free (ids);
        return NULL;
    }
    vdgx_tensor_t out = { 0 };
    if (vdgx_t5_encode (self->t5, ids, n, L, &out)) {
        *err = vdgx_strdupf ("wan21: text encoder: %s", vdgx_t5_error (self->t5));
        free (ids);
        return NULL;
    }
    int64_t dim = out.shape [out.ndim - 1];
    host = (float *) malloc ((size_t) vdgx_tensor_numel (&out) * sizeof (float));
    if (!host || vdgx_tensor_to_f32 (self->backend, &out, host)) {
        *err = vdgx_strdupf ("wan21: cannot read the text encoding: %s", vdgx_backend_error (self->backend));
        free (host);
        host = NULL;
    }
    vdgx_tensor_release (self->backend, &out);
    free (ids);
    (void) dim;
    *len_p = n;
    return host;
}

typedef struct {
    const vdgx_engine_io_t *io;
    uint32_t frames;
    float *rgb;
    int failed;
} s_gen_ctx_t;

static void
s_on_step (void *arg, int step, int steps)
{
    s_gen_ctx_t *g = (s_gen_ctx_t *) arg;
    vdgx_engine_report (g->io, "denoising", (uint32_t) step, (uint32_t) steps,
                15.0 + 70.0 * step / (steps > 0? steps: 1), NULL);
}

static int
s_on_frame (void *arg, int index, const float *chw, int width, int height)
{
    s_gen_ctx_t *g = (s_gen_ctx_t *) arg;
    size_t hw = (size_t) width * (size_t) height;
    for (size_t i = 0; i < hw; i++) {
        g->rgb [3 * i] = chw [i];
        g->rgb [3 * i + 1] = chw [hw + i];
        g->rgb [3 * i + 2] = chw [2 * hw + i];
    }
    if (g->io->frame && g->io->frame (g->io->ctx, g->rgb, width, height)) {
        g->failed = 1;
        return -1;
    }
    vdgx_engine_report (g->io, "decoding", (uint32_t) index + 1, g->frames,
                85.0 + 10.0 * (index + 1) / (g->frames? g->frames: 1), NULL);
    return 0;
}

static bool
s_cancelled (const vdgx_engine_io_t *io)
{
    return io && io->cancel && atomic_load (io->cancel) != 0;
}

static int
s_generate (vdgx_engine_t *self, const vdgx_genreq_t *req, const vdgx_engine_io_t *io,
            vdgx_engine_output_t *out, char **err)
{
    if (!self->dit) {
        *err = vdgx_strdupf ("wan21: generate before load");
        return VDGX_ENGINE_ERROR;
    }
    vdgx_solver_t sampler;
    if (vdgx_solver_from_name (req->sampler [0]? req->sampler: "unipc", &sampler)) {
        *err = vdgx_strdupf ("wan21: unknown sampler '%s'", req->sampler);
        return VDGX_ENGINE_ERROR;
    }
    double t0 = s_now ();
    vdgx_engine_report (io, "encoding_text", 0, 0, 11, NULL);
    int64_t clen = 0, nlen = 0;
    float *ctx = NULL, *neg = NULL, *latent = NULL;
    vdgx_image_t *first = NULL, *last = NULL;
    wan21_i2v_cond_t cond;
    memset (&cond, 0, sizeof cond);
    bool have_cond = false;
    s_gen_ctx_t g = { io, req->frames, NULL, 0 };
    int rc = VDGX_ENGINE_ERROR;
    ctx = s_encode (self, req->prompt, &clen, err);
    if (!ctx)
        goto out;
    if (req->guidance != 1.0) {
        const char *np = req->negative_prompt? req->negative_prompt: wan21_default_negative_prompt;
        neg = s_encode (self, np, &nlen, err);
        if (!neg)
            goto out;
    }
    if (self->kind != S_T2V) {
        //  The image conditioning: CLIP features, mask + y latent at the size validate chose.
        vdgx_engine_report (io, "encoding_text", 0, 0, 13, "image");
        vdgx_error_t verr;
        memset (&verr, 0, sizeof verr);
        first = s_image (req->image, req->image_size, "image", &verr);
        if (first && req->last_image)
            last = s_image (req->last_image, req->last_image_size, "last_image", &verr);
        if (!first || (req->last_image && !last)) {
            *err = vdgx_strdupf ("wan21: %s", verr.message);
            goto out;
        }
        wan21_i2v_image_t fi = { vdgx_image_pixels (first), (int) vdgx_image_width (first),
                                 (int) vdgx_image_height (first) };
        wan21_i2v_image_t li = { last? vdgx_image_pixels (last): NULL, last? (int) vdgx_image_width (last): 0,
                                 last? (int) vdgx_image_height (last): 0 };
        if (wan21_i2v_condition (self->clip, self->vae, &fi, last? &li: NULL, (int) req->width,
                                 (int) req->height, (int) req->frames, &cond, err))
            goto out;
        have_cond = true;
    }
    out->t_text = s_now () - t0;
    if (s_cancelled (io)) {
        rc = VDGX_ENGINE_CANCELLED;
        goto out;
    }
    double t1 = s_now ();
    vdgx_engine_report (io, "denoising", 0, req->steps, 15, NULL);
    wan21_dit_sample_args_t a = {
        .context = ctx, .context_len = clen,
        .context_null = neg, .context_null_len = nlen,
        .width = (int) req->width, .height = (int) req->height, .frames = (int) req->frames,
        .steps = (int) req->steps, .guidance = req->guidance, .shift = req->shift,
        .sampler = sampler, .seed = req->seed,
        .progress = s_on_step, .progress_ctx = &g, .cancel = io? io->cancel: NULL,
        .y = have_cond? cond.y: NULL, .image = have_cond? cond.clip: NULL,
        .image_tokens = have_cond? cond.clip_tokens: 0,
    };
    int64_t shape [4];
    int r = wan21_dit_sample (self->dit, &a, &latent, shape, err);
    if (r == VDGX_ENGINE_CANCELLED) {
        rc = VDGX_ENGINE_CANCELLED;
        goto out;
    }
    if (r != 0)
        goto out;
    out->t_denoise = s_now () - t1;
    double t2 = s_now ();
    vdgx_engine_report (io, "decoding", 0, req->frames, 85, NULL);
    g.rgb = (float *) malloc ((size_t) req->width * req->height * 3 * sizeof (float));
    if (!g.rgb) {
        *err = vdgx_strdupf ("out of memory");
        goto out;
    }
    wan21_vae_decode_opts_t vo = { .raw = false, .cancel = io? io->cancel: NULL };
    r = wan21_vae_decode (self->vae, latent, shape [1], shape [2], shape [3], &vo, s_on_frame, &g, err);
    if (r == -2) {
        rc = VDGX_ENGINE_CANCELLED;
        goto out;
    }
    if (r != 0)
        goto out;
    out->t_decode = s_now () - t2;
    out->width = req->width;
    out->height = req->height;
    out->frames = req->frames;
    out->fps = req->fps;
    out->seed = req->seed;
    rc = VDGX_ENGINE_OK;
out:
    free (ctx);
    free (neg);
    free (latent);
    free (g.rgb);
    vdgx_image_destroy (&first);
    vdgx_image_destroy (&last);
    wan21_i2v_cond_free (&cond);
    return rc;
}

const vdgx_engine_class_t vdgx_wan21_engine_class = {
    .name = "wan21",
    .description = "Wan 2.1 text-to-video (wan21-1.3b, wan21-14b) and image-to-video "
                   "(wan21-i2v-14b-480p, wan21-i2v-14b-720p, wan21-flf2v-14b-720p, wan21-i2v-tiny, "
                   "wan21-flf2v-tiny)",
    .create = s_create, .load = s_load, .validate = s_validate, .generate = s_generate,
    .unload = s_unload, .memory_estimate = s_memory_estimate, .precisions = s_get_precisions,
    .destroy = s_destroy, .limits = s_limits,
};

const vdgx_engine_class_t vdgx_wan21_tiny_engine_class = {
    .name = "wan21-tiny",
    .description = "Wan 2.1 tiny random-weight demo (vdgx-worker --make-tiny-checkpoint DIR)",
    .create = s_create_tiny, .load = s_load, .validate = s_validate, .generate = s_generate,
    .unload = s_unload, .memory_estimate = s_memory_estimate, .precisions = s_get_precisions,
    .destroy = s_destroy, .limits = s_limits,
};
