/*  ltx2_engine.c - the LTX-2 / LTX-2.3 engine of the worker (see ltx2_engine.h). */
#include "ltx2_engine.h"
#include "ltx2_audio.h"
#include "ltx2_dit.h"
#include "ltx2_prompt.h"
#include "ltx2_sample.h"
#include "ltx2_text.h"
#include "ltx2_vae.h"
#include "vdgx_ckpt.h"
#include "vdgx_msg.h"
#include "vdgx_util.h"
#include "vdgx_wsrc.h"

#include <czmq.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum { S_ANY = 0, S_19B, S_22B, S_TINY } s_release_t;

struct _vdgx_engine_t {
    char *model, *weights_dir, *device, *ckpt_path, *gemma_dir;
    char precision [8];
    int threads;
    s_release_t want;               //  from the service name
    s_release_t release;            //  from the checkpoint's metadata
    bool distilled;                 //  distilled service: the 8-step schedule, no guidance
    char file_format [8];           //  the checkpoint's block weights: bf16, fp8, fp4
    ltx2_dit_config_t dit_cfg;      //  from the metadata (create)
    ltx2_audio_config_t audio_cfg;
    bool have_cfg;
    vdgx_backend_t *backend;
    ltx2_text_t *text;
    ltx2_prompt_t *prompt;
    ltx2_dit_t *dit;
    ltx2_vae_t *vae;
    ltx2_audio_t *audio;
};

static const char *const s_precisions [] = { "bf16", "fp8", "fp4", "fp32", NULL };
static const char *const s_tiny_precisions [] = { "fp32", "bf16", "fp8", "fp4", NULL };
//  The negative prompt when a request gives none (ours, in the spirit of the official one).
static const char *s_negative =
    "blurry, out of focus, low quality, distorted, flickering, jittery motion, artifacts, "
    "muted or distorted audio, off-sync sound";

static double
s_now (void)
{
    return zclock_usecs () / 1e6;
}

static const char *
s_release_name (s_release_t r)
{
    return r == S_19B? "LTX-2 19B": r == S_22B? "LTX-2.3 22B": r == S_TINY? "tiny": "unknown";
}

//  ---------------------------------------------------------------------------------------
//  The checkpoint: file, release, format.

static bool
s_has (const char *s, const char *part)
{
    return strstr (s, part) != NULL;
}

//  The LTX checkpoint in dir for this service (caller frees), NULL with *err.
static char *
s_find_checkpoint (vdgx_engine_t *self, char **err)
{
    if (vdgx_is_file (self->weights_dir))
        return strdup (self->weights_dir);
    DIR *d = opendir (self->weights_dir);
    if (!d) {
        *err = vdgx_strdupf ("%s: weights folder '%s' not found", self->model, self->weights_dir);
        return NULL;
    }
    bool fp8 = strcmp (self->precision, "fp8") == 0, fp4 = strcmp (self->precision, "fp4") == 0;
    char *best = NULL, *names = NULL;
    int best_score = -1, ties = 0;
    struct dirent *e;
    while ((e = readdir (d))) {
        const char *n = e->d_name;
        size_t len = strlen (n);
        if (len < 12 || strcmp (n + len - 12, ".safetensors") || strncmp (n, "ltx", 3)
        ||  s_has (n, "lora") || s_has (n, "upscaler") || s_has (n, "upsampler"))
            continue;
        //  The service's kind first (distilled or not), then the precision's file.
        int score = (s_has (n, "distilled") == self->distilled) * 4
                  + (fp8? s_has (n, "fp8"): fp4? s_has (n, "fp4"): !s_has (n, "fp8") && !s_has (n, "fp4")) * 2;
        char *all = vdgx_strdupf ("%s%s%s", names? names: "", names? ", ": "", n);
        free (names);
        names = all;
        if (score > best_score) {
            free (best);
            best = vdgx_strdupf ("%s/%s", self->weights_dir, n);
            best_score = score;
            ties = 0;
        }
        else
        if (score == best_score)
            ties++;
    }
    closedir (d);
    if (!best)
        *err = vdgx_strdupf ("%s: no LTX-2 checkpoint (ltx*.safetensors) in %s", self->model,
                             self->weights_dir);
    else
    if (ties) {
        *err = vdgx_strdupf ("%s: several LTX-2 checkpoints in %s fit (%s): name one with --weights FILE",
                             self->model, self->weights_dir, names);
        free (best);
        best = NULL;
    }
    free (names);
    return best;
}

//  The Gemma 3 folder beside the checkpoint (caller frees), NULL when none.
static char *
s_find_gemma (const char *ckpt_path)
{
    char *dir = strdup (ckpt_path);
    char *slash = dir? strrchr (dir, '/'): NULL;
    if (slash)
        *slash = 0;
    static const char *const subs [] = { "gemma-3-12b-it-qat-q4_0-unquantized", "gemma",
                                         "text_encoder", NULL };
    char *found = NULL;
    for (int i = 0; subs [i] && dir && !found; i++) {
        char *p = vdgx_strdupf ("%s/%s/config.json", slash? dir: ".", subs [i]);
        if (p && vdgx_is_file (p))
            found = vdgx_strdupf ("%s/%s", slash? dir: ".", subs [i]);
        free (p);
    }
    free (dir);
    return found;
}

//  Reads the metadata (header only): release, configs, the block weights' format.
static int
s_peek (vdgx_engine_t *self, char **err)
{
    char *e = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (self->ckpt_path, &e);
    if (!ckpt) {
        *err = vdgx_strdupf ("%s: %s", self->model, e? e: "cannot open the checkpoint");
        free (e);
        return -1;
    }
    int rc = ltx2_dit_config_from_ckpt (ckpt, &self->dit_cfg, &e);
    if (rc == 0)
        rc = ltx2_audio_config_parse (vdgx_ckpt_metadata (ckpt, "config"), &self->audio_cfg, &e);
    if (rc) {
        *err = vdgx_strdupf ("%s: %s: %s", self->model, self->ckpt_path, e? e: "bad metadata config");
        free (e);
        vdgx_ckpt_destroy (&ckpt);
        return -1;
    }
    const ltx2_dit_config_t *c = &self->dit_cfg;
    bool full = c->layers == 48 && c->heads * c->head_dim == 4096;
    self->release = !full? S_TINY: c->caption_projection? S_19B: S_22B;
    const vdgx_ckpt_tensor_t *q = vdgx_ckpt_find (ckpt, "model.diffusion_model.transformer_blocks.0.attn1.to_q.weight");
    snprintf (self->file_format, sizeof self->file_format, "%s",
              q && q->dtype == VDGX_DTYPE_F8_E4M3? "fp8": q && q->dtype == VDGX_DTYPE_U8? "fp4": "bf16");
    self->have_cfg = true;
    vdgx_ckpt_destroy (&ckpt);
    return 0;
}

static void s_free_strings (vdgx_engine_t *self);

static int
s_create_common (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, const char *family,
                 char **err)
{
    if (!cfg || !cfg->model) {
        *err = vdgx_strdupf ("%s: no model name", family);
        return VDGX_ENGINE_ERROR;
    }
    const char *m = cfg->model;
    s_release_t want = S_ANY;
    bool distilled = false, tiny = strcmp (family, "ltx2-tiny") == 0;
    if (tiny)
        want = S_TINY;
    else
    if (strcmp (family, "ltx2") == 0 && (strcmp (m, "ltx2") == 0 || strcmp (m, "ltx2-19b") == 0
                                      || strcmp (m, "ltx2-19b-distilled") == 0)) {
        want = strcmp (m, "ltx2") == 0? S_ANY: S_19B;
        distilled = s_has (m, "distilled");
    }
    else
    if (strcmp (family, "ltx23") == 0 && (strcmp (m, "ltx23") == 0 || strcmp (m, "ltx23-22b") == 0
                                       || strcmp (m, "ltx23-22b-distilled") == 0)) {
        want = S_22B;
        distilled = s_has (m, "distilled");
    }
    else {
        *err = vdgx_strdupf ("%s: unknown service '%s' (ltx2, ltx2-19b, ltx2-19b-distilled, ltx23, "
                             "ltx23-22b, ltx23-22b-distilled, ltx2-tiny)", family, m);
        return VDGX_ENGINE_ERROR;
    }
    const char *const *list = tiny? s_tiny_precisions: s_precisions;
    if (vdgx_engine_config_check (cfg, m, list, "the model folder", err))
        return VDGX_ENGINE_ERROR;
    vdgx_engine_t *self = (vdgx_engine_t *) calloc (1, sizeof *self);
    if (!self) {
        *err = vdgx_strdupf ("out of memory");
        return VDGX_ENGINE_FATAL;
    }
    self->model = strdup (m);
    self->weights_dir = strdup (cfg->weights_dir);
    self->device = strdup (cfg->device && *cfg->device? cfg->device: "cpu");
    self->threads = cfg->threads;
    self->want = want;
    self->distilled = distilled;
    snprintf (self->precision, sizeof self->precision, "%s",
              cfg->precision && *cfg->precision? cfg->precision: list [0]);
    //  The checkpoint and its release when the weights are there (header only); a folder
    //  without them yet is fine until load.
    char *e = NULL;
    self->ckpt_path = s_find_checkpoint (self, &e);
    if (self->ckpt_path && s_peek (self, &e) == 0 && want != S_ANY && self->release != want) {
        *err = vdgx_strdupf ("%s: service %s needs %s weights, but %s holds %s (by its metadata)",
                             family, m, s_release_name (want), self->ckpt_path,
                             s_release_name (self->release));
        free (e);
        s_free_strings (self);
        free (self);
        return VDGX_ENGINE_ERROR;
    }
    free (e);
    //  Unless asked, the precision follows a pre-quantized file.
    if (!(cfg->precision && *cfg->precision) && self->have_cfg && strcmp (self->file_format, "bf16"))
        snprintf (self->precision, sizeof self->precision, "%s", self->file_format);
    *self_p = self;
    return VDGX_ENGINE_OK;
}

static int
s_create (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, char **err)
{
    return s_create_common (self_p, cfg, "ltx2", err);
}

static int
s_create23 (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, char **err)
{
    return s_create_common (self_p, cfg, "ltx23", err);
}

static int
s_create_tiny (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, char **err)
{
    return s_create_common (self_p, cfg, "ltx2-tiny", err);
}

static const char *const *
s_get_precisions (vdgx_engine_t *self)
{
    return self->want == S_TINY? s_tiny_precisions: s_precisions;
}

static void
s_unload (vdgx_engine_t *self)
{
    ltx2_prompt_destroy (&self->prompt);
    ltx2_text_destroy (&self->text);
    ltx2_dit_destroy (&self->dit);
    ltx2_vae_destroy (&self->vae);
    ltx2_audio_destroy (&self->audio);
    vdgx_backend_destroy (&self->backend);
}

static void
s_free_strings (vdgx_engine_t *self)
{
    free (self->model);
    free (self->weights_dir);
    free (self->device);
    free (self->ckpt_path);
    free (self->gemma_dir);
}

static void
s_destroy (vdgx_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdgx_engine_t *self = *self_p;
    s_unload (self);
    s_free_strings (self);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------------------
//  Formats and memory

static vdgx_wfmt_t
s_wfmt (const char *precision)
{
    return strcmp (precision, "fp32") == 0? VDGX_WFMT_F32: strcmp (precision, "bf16") == 0? VDGX_WFMT_BF16
         : strcmp (precision, "fp8") == 0? VDGX_WFMT_FP8_E4M3: VDGX_WFMT_NVFP4;
}

//  The DiT's precision name ("fp4" is NVFP4).
static const char *
s_dit_precision (const char *precision)
{
    return strcmp (precision, "fp4") == 0? "nvfp4": precision;
}

//  Defaults of the request sizes (for the estimate and validate).
static void
s_default_size (vdgx_engine_t *self, int *w, int *h, int *frames)
{
    bool tiny = self->want == S_TINY || self->release == S_TINY;
    *w = tiny? 64: 768;
    *h = tiny? 64: 512;
    *frames = tiny? 9: 121;
}

static uint64_t
s_memory_estimate (vdgx_engine_t *self, const char *precision)
{
    const char *p = precision && *precision? precision: self->precision;
    bool cuda = strncmp (self->device, "cuda", 4) == 0;
    size_t act = cuda && strcmp (p, "fp32") != 0? 2: 4;
    vdgx_wfmt_t fmt = s_wfmt (p);
    ltx2_dit_config_t cfg;
    if (self->have_cfg)
        cfg = self->dit_cfg;
    else
    if (ltx2_dit_config_preset (self->want == S_19B? "19b": "22b", &cfg))
        return 0;
    bool tiny = self->want == S_TINY || (self->have_cfg && self->release == S_TINY);
    int w, h, frames;
    s_default_size (self, &w, &h, &frames);
    ltx2_latent_shape_t sh;
    ltx2_sample_shape (w, h, frames, 24.0, &sh);
    uint64_t bytes = ltx2_dit_weight_bytes (&cfg, fmt, act == 2);
    //  Activations of one forward: about 12 rows of the stream width per token (residual,
    //  norms, q/k/v, attention out) plus the FFN's 4x hidden, video and audio.
    int64_t vdim = (int64_t) cfg.heads * cfg.head_dim, adim = (int64_t) cfg.audio_heads * cfg.audio_head_dim;
    bytes += (uint64_t) (sh.video_tokens * vdim * 16 + sh.audio_frames * adim * 16) * act;
    size_t wsize = fmt == VDGX_WFMT_F32? 4: fmt == VDGX_WFMT_BF16? 2: 1;
    if (tiny)
        bytes += 8ull << 20;       //  text path, VAEs, vocoder, Gemma of the tiny model
    else {
        //  Gemma 3 12B (peak, while encoding), the text projection and connectors, the video
        //  VAE decoder (+ its activations), the audio VAE and the vocoder (real layouts).
        bool v23 = self->want == S_22B || (self->have_cfg && self->release == S_22B);
        bytes += 12ull * 1000 * 1000 * 1000 * wsize;
        bytes += (v23? 3172227584ull: 1431535200ull) * wsize;
        bytes += (v23? 407169328ull: 552815281ull) * act;
        bytes += (v23? 161000426ull: 87508196ull) * 4;
        //  Decoder activations, roughly, of its largest tile (the decode is tiled as the
        //  official command line does: LTX2_VAE_TILING_DEFAULT).
        ltx2_vae_tiling_t tiling = LTX2_VAE_TILING_DEFAULT;
        int64_t tf = frames < tiling.temporal_tile_frames? frames: tiling.temporal_tile_frames;
        int64_t tw = w < tiling.spatial_tile_px? w: tiling.spatial_tile_px;
        int64_t th = h < tiling.spatial_tile_px? h: tiling.spatial_tile_px;
        bytes += (uint64_t) (tf * tw * th * 3 * 64) * act / 8;
    }
    return bytes;
}

//  ---------------------------------------------------------------------------------------
//  Loading

static int
s_load (vdgx_engine_t *self, const vdgx_engine_io_t *io, char **err)
{
    if (self->dit)
        return VDGX_ENGINE_OK;
    char *e = NULL;
    if (!self->ckpt_path && !(self->ckpt_path = s_find_checkpoint (self, err)))
        return VDGX_ENGINE_ERROR;
    if (!self->have_cfg && s_peek (self, err))
        return VDGX_ENGINE_ERROR;
    if (self->want != S_ANY && self->release != self->want) {
        *err = vdgx_strdupf ("%s: needs %s weights, but %s holds %s (by its metadata)", self->model,
                             s_release_name (self->want), self->ckpt_path, s_release_name (self->release));
        return VDGX_ENGINE_ERROR;
    }
    free (self->gemma_dir);
    self->gemma_dir = s_find_gemma (self->ckpt_path);
    if (!self->gemma_dir) {
        *err = vdgx_strdupf ("%s: no Gemma 3 text encoder beside %s (a folder gemma-3-12b-it-qat-q4_0-"
                             "unquantized/ or gemma/ with config.json, weights and tokenizer.model)",
                             self->model, self->ckpt_path);
        return VDGX_ENGINE_ERROR;
    }
    char device [64];
    if (strcmp (self->device, "cpu") == 0 && self->threads > 0)
        snprintf (device, sizeof device, "cpu:%d", self->threads);
    else
        snprintf (device, sizeof device, "%s", self->device);
    bool cpu = strncmp (device, "cpu", 3) == 0;
    vdgx_dtype_t act = cpu || strcmp (self->precision, "fp32") == 0? VDGX_DTYPE_F32: VDGX_DTYPE_BF16;
    self->backend = vdgx_backend_new (device, act, &e);
    if (!self->backend) {
        *err = vdgx_strdupf ("%s: cannot open device %s: %s", self->model, device, e? e: "unknown error");
        free (e);
        return VDGX_ENGINE_ERROR;
    }
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (self->ckpt_path, &e);
    vdgx_wsrc_t *src = NULL;
    vdgx_wfmt_t small = s_wfmt (self->precision);
    if (small == VDGX_WFMT_NVFP4)
        small = VDGX_WFMT_FP8_E4M3;         //  the text path and Gemma have no 4-bit path
    if (!ckpt)
        goto fail;
    vdgx_engine_report (io, "loading", 0, 0, 1, "text projection and connectors");
    if (!(self->text = ltx2_text_new_from_ckpt (ckpt, self->backend, small, &e)))
        goto fail;
    ltx2_prompt_options_t po;
    memset (&po, 0, sizeof po);
    po.gemma_path = self->gemma_dir;
    po.gemma_wfmt = small;
    po.max_tokens = self->release == S_TINY? 128: 0;
    po.cache_entries = 8;
    po.policy = LTX2_GEMMA_AUTO;
    po.reserve_bytes = ltx2_dit_weight_bytes (&self->dit_cfg, s_wfmt (self->precision), act == VDGX_DTYPE_BF16);
    if (!(self->prompt = ltx2_prompt_new (self->text, self->backend, &po, &e)))
        goto fail;
    vdgx_engine_report (io, "loading", 0, 0, 3, "diffusion transformer");
    src = vdgx_wsrc_new (ckpt, &ltx2_dit_map, "ltx2 dit");
    if (!src || !(self->dit = ltx2_dit_new (self->backend, src, &self->dit_cfg,
                                            s_dit_precision (self->precision), &e)))
        goto fail;
    vdgx_wsrc_destroy (&src);
    vdgx_engine_report (io, "loading", 0, 0, 8, "video VAE");
    if (!(self->vae = ltx2_vae_new_from_ckpt (ckpt, self->backend, &e)))
        goto fail;
    vdgx_engine_report (io, "loading", 0, 0, 9, "audio VAE and vocoder");
    if (!(self->audio = ltx2_audio_new (ckpt, self->backend, &e)))
        goto fail;
    //  The pieces must fit together.
    const ltx2_vae_config_t *vc = ltx2_vae_config (self->vae);
    const ltx2_audio_config_t *ac = ltx2_audio_config (self->audio);
    if (vc->latent_channels != self->dit_cfg.in_channels || vc->time_scale != 8 || vc->space_scale != 32) {
        e = vdgx_strdupf ("the video VAE (%d latent channels, x%d time, x%d space) does not fit the DiT "
                          "(%d channels; LTX-2 is x8 / x32)", vc->latent_channels, vc->time_scale,
                          vc->space_scale, self->dit_cfg.in_channels);
        goto fail;
    }
    if (ac->stats_channels != self->dit_cfg.audio_in_channels) {
        e = vdgx_strdupf ("the audio VAE latent has %d features, the DiT's audio stream %d",
                          ac->stats_channels, self->dit_cfg.audio_in_channels);
        goto fail;
    }
    self->audio_cfg = *ac;
    vdgx_ckpt_destroy (&ckpt);
    vdgx_engine_report (io, "loading", 0, 0, 10, NULL);
    return VDGX_ENGINE_OK;
fail:
    *err = vdgx_strdupf ("%s: %s", self->model, e? e: "loading failed");
    free (e);
    vdgx_wsrc_destroy (&src);
    vdgx_ckpt_destroy (&ckpt);
    s_unload (self);
    return VDGX_ENGINE_ERROR;
}

//  ---------------------------------------------------------------------------------------
//  Limits and validation

//  A bad_request on a field; the value of the expression is -1.
#define s_bad(err, field, ...) (vdgx_error_set ((err), VDGX_E_BAD_REQUEST, (field), __VA_ARGS__), -1)

static bool
s_tiny (vdgx_engine_t *self)
{
    return self->want == S_TINY || (self->have_cfg && self->release == S_TINY);
}

static int
s_limits (vdgx_engine_t *self, vdgx_limits_t *lim)
{
    vdgx_limits_init (lim);
    lim->present = true;
    lim->frames_step = 8;
    lim->wh_multiple = 32;
    lim->fps_max = 60;
    lim->guidance_max = self->distilled? 1: 50;
    if (s_tiny (self)) {
        lim->wh_min = 32;
        lim->wh_max = 256;
        lim->frames_max = 97;
        lim->steps_max = self->distilled? LTX2_DISTILLED_STEPS: 100;
        return 0;
    }
    lim->wh_min = 64;
    lim->wh_max = 2048;
    lim->frames_max = 257;
    lim->steps_max = self->distilled? LTX2_DISTILLED_STEPS: 1000;
    return 0;
}

static int
s_validate (vdgx_engine_t *self, vdgx_genreq_t *req, vdgx_error_t *err)
{
    vdgx_limits_t lim;
    s_limits (self, &lim);
    if (vdgx_limits_check (&lim, self->model, req, err))
        return -1;
    if (req->image || req->last_image)
        return s_bad (err, "image", "%s is text-to-video: no image input", self->model);
    int w, h, frames;
    s_default_size (self, &w, &h, &frames);
    if (!req->width && !req->height) {
        req->width = (uint32_t) w;
        req->height = (uint32_t) h;
    }
    if (!req->fps)
        req->fps = 24;
    if (!req->frames) {
        if (req->has_seconds) {
            if (!(req->seconds > 0) || req->seconds > 3600)
                return s_bad (err, "seconds", "seconds must be > 0 (got %g)", req->seconds);
            double eighth = req->seconds * req->fps / 8.0;
            if (eighth > 1e6)
                eighth = 1e6;
            uint32_t f = 8u * (uint32_t) llround (eighth) + 1u;
            req->frames = f > lim.frames_max? 1 + 8 * ((lim.frames_max - 1) / 8): f;
        }
        else
            req->frames = (uint32_t) frames;
    }
    bool v23 = self->want == S_22B || (self->have_cfg && self->release == S_22B);
    if (!req->steps)
        req->steps = self->distilled? LTX2_DISTILLED_STEPS: s_tiny (self)? 4: v23? 30: 40;
    if (self->distilled && req->steps != LTX2_DISTILLED_STEPS)
        return s_bad (err, "steps", "%s runs the 8-step distilled schedule (got %u)", self->model, req->steps);
    if (!req->has_guidance) {
        req->has_guidance = true;
        req->guidance = self->distilled? 1.0: 3.0;
    }
    if (!req->sampler [0])
        snprintf (req->sampler, sizeof req->sampler, "euler");
    if (strcmp (req->sampler, "euler") != 0)
        return s_bad (err, "sampler", "%s samples with euler (got '%s')", self->model, req->sampler);
    if (!req->has_seed) {
        req->has_seed = true;
        req->seed = vdgx_random_seed ();
    }
    if (!req->prompt || !*req->prompt)
        return s_bad (err, "prompt", "prompt must not be empty");
    return 0;
}

static int
s_audio_format (vdgx_engine_t *self, const vdgx_genreq_t *req, int *channels, int *rate)
{
    (void) req;
    *channels = 2;
    *rate = self->audio? ltx2_audio_sample_rate (self->audio)
          : self->have_cfg? self->audio_cfg.output_rate: self->want == S_22B? 48000: 24000;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Generation

typedef struct {
    vdgx_engine_t *self;
    const vdgx_engine_io_t *io;
    ltx2_latent_shape_t sh;
    float *video_pos, *audio_pos, *video_t, *audio_t;
    vdgx_tensor_t ctx_v [2], ctx_a [2];     //  [0] negative, [1] prompt
    uint32_t frames;
    float *rgb;
} s_gen_t;

static int
s_velocity (void *ctx, bool cond, const float *video, const float *audio, float sigma,
            float *video_v, float *audio_v, char **err)
{
    s_gen_t *g = (s_gen_t *) ctx;
    for (int64_t i = 0; i < g->sh.video_tokens; i++)
        g->video_t [i] = sigma;
    for (int64_t i = 0; i < g->sh.audio_frames; i++)
        g->audio_t [i] = sigma;
    int c = cond? 1: 0;
    ltx2_dit_step_t st = {
        .batch = 1,
        .video_tokens = g->sh.video_tokens, .video_latent = video, .video_timesteps = g->video_t,
        .video_sigma = &sigma, .video_positions = g->video_pos, .video_context = &g->ctx_v [c],
        .audio_tokens = g->sh.audio_frames, .audio_latent = audio, .audio_timesteps = g->audio_t,
        .audio_sigma = &sigma, .audio_positions = g->audio_pos, .audio_context = &g->ctx_a [c],
        .video_out = video_v, .audio_out = audio_v,
    };
    return ltx2_dit_forward (g->self->dit, &st, err);
}

static void
s_on_step (void *ctx, int step, int steps)
{
    s_gen_t *g = (s_gen_t *) ctx;
    vdgx_engine_report (g->io, "denoising", (uint32_t) step, (uint32_t) steps,
                15.0 + 65.0 * step / (steps > 0? steps: 1), NULL);
}

static int
s_on_frame (void *ctx, int index, const float *chw, int width, int height)
{
    s_gen_t *g = (s_gen_t *) ctx;
    size_t hw = (size_t) width * (size_t) height;
    for (size_t i = 0; i < hw; i++) {
        g->rgb [3 * i] = chw [i];
        g->rgb [3 * i + 1] = chw [hw + i];
        g->rgb [3 * i + 2] = chw [2 * hw + i];
    }
    if (g->io && g->io->frame && g->io->frame (g->io->ctx, g->rgb, width, height))
        return -1;
    vdgx_engine_report (g->io, "decoding", (uint32_t) index + 1, g->frames,
                80.0 + 15.0 * (index + 1) / (g->frames? g->frames: 1), NULL);
    return 0;
}

static bool
s_cancelled (const vdgx_engine_io_t *io)
{
    return io && io->cancel && atomic_load (io->cancel) != 0;
}

//  The vocoder's PCM, cut or padded with silence to the video's duration, to the sink.
static int
s_audio_out (vdgx_engine_t *self, const vdgx_genreq_t *req, const vdgx_engine_io_t *io,
             const float *x_audio, int64_t audio_frames, char **err)
{
    int64_t features = self->dit_cfg.audio_in_channels;
    const int64_t shape [2] = { audio_frames, features };
    vdgx_tensor_t lat = { 0 };
    float *pcm = NULL;
    int64_t samples = 0;
    char *e = NULL;
    if (vdgx_tensor_alloc (self->backend, &lat, VDGX_DTYPE_F32, 2, shape)
    ||  vdgx_tensor_from_f32 (self->backend, &lat, x_audio)) {
        *err = vdgx_strdupf ("%s: audio latent: %s", self->model, vdgx_backend_error (self->backend));
        vdgx_tensor_release (self->backend, &lat);
        return VDGX_ENGINE_ERROR;
    }
    int rc = ltx2_audio_decode (self->audio, &lat, &pcm, &samples, &e);
    vdgx_tensor_release (self->backend, &lat);
    if (rc) {
        *err = vdgx_strdupf ("%s: audio decoder: %s", self->model, e? e: "failed");
        free (e);
        return VDGX_ENGINE_ERROR;
    }
    int rate = ltx2_audio_sample_rate (self->audio);
    int64_t want = (int64_t) llround ((double) req->frames * rate / req->fps);
    if (want > samples) {
        float *grown = (float *) realloc (pcm, (size_t) want * 2 * sizeof (float));
        if (!grown) {
            free (pcm);
            *err = vdgx_strdupf ("out of memory");
            return VDGX_ENGINE_ERROR;
        }
        pcm = grown;
        memset (pcm + samples * 2, 0, (size_t) (want - samples) * 2 * sizeof (float));
    }
    rc = 0;
    if (io && io->audio && want > 0)
        rc = io->audio (io->ctx, pcm, (int) want, 2, rate);
    free (pcm);
    if (rc) {
        *err = vdgx_strdupf ("%s: the audio track was refused", self->model);
        return VDGX_ENGINE_ERROR;
    }
    return VDGX_ENGINE_OK;
}

static int
s_generate (vdgx_engine_t *self, const vdgx_genreq_t *req, const vdgx_engine_io_t *io,
            vdgx_engine_output_t *out, char **err)
{
    if (!self->dit) {
        *err = vdgx_strdupf ("%s: generate before load", self->model);
        return VDGX_ENGINE_ERROR;
    }
    s_gen_t g;
    memset (&g, 0, sizeof g);
    g.self = self;
    g.io = io;
    g.frames = req->frames;
    int rc = VDGX_ENGINE_ERROR;
    float *x = NULL, *latent = NULL;
    double t0 = s_now ();
    double video_cfg = req->has_guidance? req->guidance: 3.0;
    double audio_cfg = self->distilled || video_cfg == 1.0? 1.0: 7.0;
    bool guided = video_cfg != 1.0 || audio_cfg != 1.0;
    //  Text: the prompt, and the negative prompt when guided.
    vdgx_engine_report (io, "encoding_text", 0, 0, 11, NULL);
    const char *texts [2] = { req->prompt, req->negative_prompt? req->negative_prompt: s_negative };
    vdgx_tensor_t v [2], a [2];
    memset (v, 0, sizeof v);
    memset (a, 0, sizeof a);
    if (ltx2_prompt_encode_many (self->prompt, texts, guided? 2: 1, v, a)) {
        *err = vdgx_strdupf ("%s: text encoder: %s", self->model, ltx2_prompt_error (self->prompt));
        goto out;
    }
    g.ctx_v [1] = v [0];
    g.ctx_a [1] = a [0];
    g.ctx_v [0] = guided? v [1]: v [0];
    g.ctx_a [0] = guided? a [1]: a [0];
    out->t_text = s_now () - t0;
    if (s_cancelled (io)) {
        rc = VDGX_ENGINE_CANCELLED;
        goto out;
    }
    //  Denoising.
    double t1 = s_now ();
    ltx2_sample_shape ((int) req->width, (int) req->height, (int) req->frames, (double) req->fps, &g.sh);
    size_t vn = (size_t) (g.sh.video_tokens * self->dit_cfg.in_channels);
    size_t an = (size_t) (g.sh.audio_frames * self->dit_cfg.audio_in_channels);
    x = (float *) malloc ((vn + an) * sizeof (float));
    g.video_pos = (float *) malloc ((size_t) g.sh.video_tokens * 6 * sizeof (float));
    g.audio_pos = (float *) malloc ((size_t) (g.sh.audio_frames + 1) * 2 * sizeof (float));
    g.video_t = (float *) malloc ((size_t) g.sh.video_tokens * sizeof (float));
    g.audio_t = (float *) malloc ((size_t) (g.sh.audio_frames + 1) * sizeof (float));
    if (!x || !g.video_pos || !g.audio_pos || !g.video_t || !g.audio_t) {
        *err = vdgx_strdupf ("out of memory");
        goto out;
    }
    ltx2_dit_video_positions (g.sh.frames, g.sh.height, g.sh.width, (double) req->fps, g.video_pos);
    ltx2_dit_audio_positions (g.sh.audio_frames, g.audio_pos);
    ltx2_sample_noise (req->seed, x, vn, an);
    int steps = (int) req->steps;
    float sigmas [1001];
    if (ltx2_sample_sigmas (self->distilled? LTX2_SCHEDULE_DISTILLED: LTX2_SCHEDULE_DEV, steps,
                            sigmas, err))
        goto out;
    vdgx_engine_report (io, "denoising", 0, (uint32_t) steps, 15, NULL);
    ltx2_sample_args_t sa = {
        .video_n = vn, .audio_n = an, .sigmas = sigmas, .steps = steps,
        .video_cfg = video_cfg, .audio_cfg = audio_cfg, .velocity = s_velocity, .ctx = &g,
        .progress = s_on_step, .cancel = io? io->cancel: NULL,
    };
    int r = ltx2_sample_run (&sa, x, err);
    if (r == -2) {
        rc = VDGX_ENGINE_CANCELLED;
        goto out;
    }
    if (r)
        goto out;
    out->t_denoise = s_now () - t1;
    //  Video: unpatchify, decode frame by frame into the sink.
    double t2 = s_now ();
    vdgx_engine_report (io, "decoding", 0, req->frames, 80, NULL);
    int64_t C = self->dit_cfg.in_channels;
    latent = (float *) malloc (vn * sizeof (float));
    g.rgb = (float *) malloc ((size_t) req->width * req->height * 3 * sizeof (float));
    if (!latent || !g.rgb) {
        *err = vdgx_strdupf ("out of memory");
        goto out;
    }
    ltx2_sample_unpatchify (x, C, g.sh.frames, g.sh.height, g.sh.width, latent);
    //  Tiled as the official command line decodes (a video of any length in bounded memory;
    //  a latent inside one tile decodes exactly as the whole).
    ltx2_vae_decode_opts_t vo = { .raw = false, .seed = req->seed, .cancel = io? io->cancel: NULL,
                                  .tiling = LTX2_VAE_TILING_DEFAULT };
    char *e = NULL;
    r = ltx2_vae_decode (self->vae, latent, g.sh.frames, g.sh.height, g.sh.width, &vo, s_on_frame, &g, &e);
    if (r == -2) {
        free (e);
        rc = VDGX_ENGINE_CANCELLED;
        goto out;
    }
    if (r) {
        *err = vdgx_strdupf ("%s: video decoder: %s", self->model, e? e: "failed");
        free (e);
        goto out;
    }
    //  Audio.
    vdgx_engine_report (io, "decoding", req->frames, req->frames, 96, "audio");
    if (s_cancelled (io)) {
        rc = VDGX_ENGINE_CANCELLED;
        goto out;
    }
    if (s_audio_out (self, req, io, x + vn, g.sh.audio_frames, err))
        goto out;
    out->t_decode = s_now () - t2;
    out->width = req->width;
    out->height = req->height;
    out->frames = req->frames;
    out->fps = req->fps;
    out->seed = req->seed;
    rc = VDGX_ENGINE_OK;
out:
    for (int i = 0; i < 2; i++) {
        vdgx_tensor_release (self->backend, &v [i]);
        vdgx_tensor_release (self->backend, &a [i]);
    }
    free (x);
    free (latent);
    free (g.rgb);
    free (g.video_pos);
    free (g.audio_pos);
    free (g.video_t);
    free (g.audio_t);
    return rc;
}

#define S_CLASS(cname, sname, desc, create_fn) \
const vdgx_engine_class_t cname = { \
    .name = sname, .description = desc, \
    .create = create_fn, .load = s_load, .validate = s_validate, .generate = s_generate, \
    .unload = s_unload, .memory_estimate = s_memory_estimate, .precisions = s_get_precisions, \
    .destroy = s_destroy, .audio_format = s_audio_format, .limits = s_limits, \
}

S_CLASS (vdgx_ltx2_engine_class, "ltx2",
         "LTX-2 19B text-to-audio+video (ltx2-19b, ltx2-19b-distilled)", s_create);
S_CLASS (vdgx_ltx23_engine_class, "ltx23",
         "LTX-2.3 22B text-to-audio+video (ltx23-22b, ltx23-22b-distilled)", s_create23);
S_CLASS (vdgx_ltx2_tiny_engine_class, "ltx2-tiny",
         "LTX-2 tiny random-weight audio+video demo (vdgx-worker --make-tiny-checkpoint DIR "
         "--model ltx2-tiny)", s_create_tiny);
