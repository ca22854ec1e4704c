/*  vdgx_testgen.c - the test engine (see vdgx_testgen.h). */
#include <czmq.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "vdgx_testgen.h"
#include "vdgx_image.h"

struct _vdgx_engine_t {
    char *model;
    char *weights_dir;
    char precision [8];
    float *weights;             //  a real allocation, so load/unload change the RSS
    size_t weights_len;
};

typedef struct {
    long sleep_ms, load_ms;
    char fail [16];
    long fail_at;
    char hold [64];             //  "" = none
    //  audio track: channels/rate declared by audio_format(), and what generate() sends
    int audio_channels, audio_rate;         //  declared (0 = none)
    int send_channels, send_rate;           //  sent (0 = none)
} s_knobs_t;

static const char *const s_precisions [] = { "fp32", "bf16", "fp8", "fp4", NULL };

//  Monotonic seconds.
static double
s_now (void)
{
    return zclock_usecs () / 1e6;
}

static void
s_sleep_ms (long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        ;
}

static long
s_env_long (const char *name, long dflt)
{
    const char *v = getenv (name);
    return v && *v? strtol (v, NULL, 10): dflt;
}

//  audio=WHAT: 1 or stereo48 | stereo24 | mono48 | mono24 declare and send that track;
//  undeclared sends stereo 48 kHz without declaring it; mismatch declares mono 24 kHz and
//  sends stereo 48 kHz; silent declares stereo 48 kHz and sends nothing; 0 or anything else:
//  no audio.
static void
s_audio_knob (s_knobs_t *k, const char *v)
{
    k->audio_channels = k->audio_rate = k->send_channels = k->send_rate = 0;
    if (!v)
        return;
    if (strcmp (v, "undeclared") == 0) {
        k->send_channels = 2;
        k->send_rate = 48000;
        return;
    }
    if (strcmp (v, "silent") == 0) {
        k->audio_channels = 2;
        k->audio_rate = 48000;
        return;
    }
    if (strcmp (v, "mismatch") == 0) {
        k->audio_channels = 1;
        k->audio_rate = 24000;
        k->send_channels = 2;
        k->send_rate = 48000;
        return;
    }
    if (strcmp (v, "1") == 0 || strcmp (v, "stereo48") == 0)
        k->audio_channels = 2, k->audio_rate = 48000;
    else
    if (strcmp (v, "stereo24") == 0)
        k->audio_channels = 2, k->audio_rate = 24000;
    else
    if (strcmp (v, "mono48") == 0)
        k->audio_channels = 1, k->audio_rate = 48000;
    else
    if (strcmp (v, "mono24") == 0)
        k->audio_channels = 1, k->audio_rate = 24000;
    k->send_channels = k->audio_channels;
    k->send_rate = k->audio_rate;
}

//  Environment first, then key=value words of the prompt.
static void
s_knobs (const char *prompt, s_knobs_t *k)
{
    k->sleep_ms = s_env_long ("VDGX_TESTGEN_SLEEP_MS", 0);
    k->load_ms = s_env_long ("VDGX_TESTGEN_LOAD_MS", 0);
    k->fail_at = 1;
    k->hold [0] = 0;
    s_audio_knob (k, getenv ("VDGX_TESTGEN_AUDIO"));
    const char *f = getenv ("VDGX_TESTGEN_FAIL");
    snprintf (k->fail, sizeof k->fail, "%s", f? f: "");
    if (!prompt)
        return;
    const char *p = prompt;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        const char *word = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        char buf [64];
        size_t len = (size_t) (p - word);
        if (len == 0 || len >= sizeof buf)
            continue;
        memcpy (buf, word, len);
        buf [len] = 0;
        char *eq = strchr (buf, '=');
        if (!eq)
            continue;
        *eq++ = 0;
        if (strcmp (buf, "sleep_ms") == 0)
            k->sleep_ms = strtol (eq, NULL, 10);
        else
        if (strcmp (buf, "load_ms") == 0)
            k->load_ms = strtol (eq, NULL, 10);
        else
        if (strcmp (buf, "fail") == 0)
            snprintf (k->fail, sizeof k->fail, "%s", eq);
        else
        if (strcmp (buf, "fail_at") == 0)
            k->fail_at = strtol (eq, NULL, 10);
        else
        if (strcmp (buf, "hold") == 0)
            snprintf (k->hold, sizeof k->hold, "%s", eq);
        else
        if (strcmp (buf, "audio") == 0)
            s_audio_knob (k, eq);
    }
}

static char *
s_strdup_err (const char *msg)
{
    return strdup (msg);
}

static void
s_progress (const vdgx_engine_io_t *io, const char *phase, uint32_t step, uint32_t steps,
            double percent)
{
    if (io && io->progress) {
        vdgx_engine_progress_t p = { phase, step, steps, percent, NULL };
        io->progress (io->ctx, &p);
    }
}

static bool
s_cancelled (const vdgx_engine_io_t *io)
{
    return io && io->cancel && atomic_load (io->cancel) != 0;
}

void
vdgx_testgen_pixel (uint64_t seed, int frame, int x, int y, float rgb [3])
{
    //  A moving diagonal gradient whose colours and phase come from the seed.
    uint64_t h = seed * 0x9E3779B97F4A7C15ull;
    int base = (int) (h >> 56), tint = (int) ((h >> 40) & 0xff);
    rgb [0] = ((x * 4 + frame * 8 + base) & 0xff) / 127.5f - 1.f;
    rgb [1] = ((y * 4 + frame * 4 + tint) & 0xff) / 127.5f - 1.f;
    rgb [2] = (((x + y) * 2 + (int) (seed & 0xff)) & 0xff) / 127.5f - 1.f;
}

float
vdgx_testgen_sample (uint64_t seed, int channel, int index, int rate)
{
    //  A sine whose pitch comes from the seed (220..605 Hz), a fifth higher on channel 1.
    double hz = 220.0 + 55.0 * (double) (seed % 8);
    if (channel == 1)
        hz *= 1.5;
    return (float) (0.25 * sin (2.0 * M_PI * hz * index / rate));
}

static int
s_create (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, char **err)
{
    if (!cfg || !cfg->model || strncmp (cfg->model, "testgen", 7) != 0) {
        *err = s_strdup_err ("testgen serves only models named testgen or testgen-*");
        return VDGX_ENGINE_ERROR;
    }
    if (cfg->precision && *cfg->precision) {
        bool known = false;
        for (int i = 0; s_precisions [i]; i++)
            known |= strcmp (cfg->precision, s_precisions [i]) == 0;
        if (!known) {
            *err = s_strdup_err ("testgen: unknown precision");
            return VDGX_ENGINE_ERROR;
        }
    }
    vdgx_engine_t *self = calloc (1, sizeof *self);
    if (!self) {
        *err = s_strdup_err ("out of memory");
        return VDGX_ENGINE_FATAL;
    }
    self->model = strdup (cfg->model);
    self->weights_dir = cfg->weights_dir? strdup (cfg->weights_dir): NULL;
    snprintf (self->precision, sizeof self->precision, "%s",
              cfg->precision && *cfg->precision? cfg->precision: "fp32");
    *self_p = self;
    return VDGX_ENGINE_OK;
}

static uint64_t
s_memory_estimate (vdgx_engine_t *self, const char *precision)
{
    const char *p = precision && *precision? precision: self->precision;
    uint64_t full = 4u << 20;               //  "4 MiB of fp32 weights"
    if (strcmp (p, "bf16") == 0)
        return full / 2;
    if (strcmp (p, "fp8") == 0)
        return full / 4;
    if (strcmp (p, "fp4") == 0)
        return full / 8;
    return full;
}

static int
s_load (vdgx_engine_t *self, const vdgx_engine_io_t *io, char **err)
{
    s_knobs_t k;
    s_knobs (NULL, &k);
    if (self->weights_dir) {
        struct stat st;
        if (stat (self->weights_dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
            char msg [512];
            snprintf (msg, sizeof msg, "testgen: weights directory '%s' not found",
                      self->weights_dir);
            *err = s_strdup_err (msg);
            return VDGX_ENGINE_ERROR;
        }
    }
    if (strcmp (k.fail, "load_error") == 0) {
        *err = s_strdup_err ("testgen: injected load error");
        return VDGX_ENGINE_ERROR;
    }
    if (strcmp (k.fail, "load_fatal") == 0) {
        *err = s_strdup_err ("testgen: injected fatal load error (out of memory)");
        return VDGX_ENGINE_FATAL;
    }
    int ticks = 4;
    for (int i = 0; i < ticks; i++) {
        s_progress (io, "loading", 0, 0, 10.0 * i / ticks);
        s_sleep_ms (k.load_ms / ticks);
    }
    self->weights_len = s_memory_estimate (self, NULL) / sizeof (float);
    self->weights = malloc (self->weights_len * sizeof (float));
    if (!self->weights) {
        *err = s_strdup_err ("testgen: out of memory loading weights");
        return VDGX_ENGINE_FATAL;
    }
    for (size_t i = 0; i < self->weights_len; i++)
        self->weights [i] = (float) (i % 977) / 977.f;
    s_progress (io, "loading", 0, 0, 10.0);
    return VDGX_ENGINE_OK;
}

static int
s_check_range (vdgx_error_t *err, const char *field, uint32_t v, uint32_t lo, uint32_t hi)
{
    if (v >= lo && v <= hi)
        return 0;
    err->code = "bad_request";
    snprintf (err->field, sizeof err->field, "%s", field);
    snprintf (err->message, sizeof err->message, "%s must be %u..%u for testgen (got %u)",
              field, lo, hi, v);
    return -1;
}

//  Sizes 16..512, up to 64 frames and 200 steps (cheap patterns, so generous).
static int
s_limits (vdgx_engine_t *self, vdgx_limits_t *lim)
{
    vdgx_limits_init (lim);
    *lim = (vdgx_limits_t) { .present = true, .wh_min = 16, .wh_max = 512, .wh_multiple = 1,
                             .frames_max = 64, .steps_max = 200, .guidance_max = 100,
                             .fps_max = 120 };
    lim->images = strcmp (self->model, "testgen-i2v") == 0? 2: 0;
    return 0;
}

//  An input image decoded and scaled (nearest) to w x h, as floats in [-1, 1]; NULL with
//  *err on failure.
static float *
s_image_frame (const uint8_t *data, size_t size, int w, int h, char **err)
{
    char why [256];
    vdgx_image_t *img = vdgx_image_decode (data, size, NULL, why, sizeof why);
    float *rgb = img? malloc ((size_t) w * h * 3 * sizeof (float)): NULL;
    if (!rgb) {
        char text [300];
        snprintf (text, sizeof text, "testgen: image: %s", img? "out of memory": why);
        *err = s_strdup_err (text);
        vdgx_image_destroy (&img);
        return NULL;
    }
    int iw = (int) vdgx_image_width (img), ih = (int) vdgx_image_height (img);
    const uint8_t *px = vdgx_image_pixels (img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = px + ((size_t) (y * ih / h) * iw + (size_t) (x * iw / w)) * 3;
            for (int c = 0; c < 3; c++)
                rgb [((size_t) y * w + x) * 3 + c] = p [c] / 127.5f - 1.f;
        }
    vdgx_image_destroy (&img);
    return rgb;
}

static int
s_validate (vdgx_engine_t *self, vdgx_genreq_t *req, vdgx_error_t *err)
{
    vdgx_limits_t lim;
    s_limits (self, &lim);
    if (vdgx_limits_check (&lim, req->model, req, err))
        return -1;
    if (!req->width)
        req->width = 64;
    if (!req->height)
        req->height = 48;
    if (!req->fps)
        req->fps = 8;
    if (!req->frames)
        req->frames = req->has_seconds? (uint32_t) (req->seconds * req->fps + 0.5): 8;
    if (req->frames == 0)
        req->frames = 1;
    if (!req->steps)
        req->steps = 4;
    if (!req->has_seed) {
        req->has_seed = true;
        req->seed = ((uint64_t) rand () << 31 ^ (uint64_t) rand ()) & 0x7fffffffffffffffull;
    }
    //  Frames made from seconds * fps were not checked above.
    return s_check_range (err, "frames", req->frames, 1, lim.frames_max);
}

static int
s_generate (vdgx_engine_t *self, const vdgx_genreq_t *req, const vdgx_engine_io_t *io,
            vdgx_engine_output_t *out, char **err)
{
    if (!self->weights) {
        *err = s_strdup_err ("testgen: generate() before load()");
        return VDGX_ENGINE_ERROR;
    }
    s_knobs_t k;
    s_knobs (req->prompt, &k);
    double t0 = s_now ();
    s_progress (io, "encoding_text", 0, 0, 12.0);
    if (s_cancelled (io))
        return VDGX_ENGINE_CANCELLED;
    double t1 = s_now ();
    uint32_t steps = req->steps;
    for (uint32_t step = 1; step <= steps; step++) {
        if (s_cancelled (io))
            return VDGX_ENGINE_CANCELLED;
        s_sleep_ms (k.sleep_ms);
        for (int i = 0; step == 1 && *k.hold && access (k.hold, F_OK) != 0 && i < 30000; i++) {
            if (s_cancelled (io))
                return VDGX_ENGINE_CANCELLED;
            s_sleep_ms (20);
        }
        if ((long) step == k.fail_at && strcmp (k.fail, "error") == 0) {
            *err = s_strdup_err ("testgen: injected error");
            return VDGX_ENGINE_ERROR;
        }
        if ((long) step == k.fail_at && strcmp (k.fail, "fatal") == 0) {
            *err = s_strdup_err ("testgen: injected fatal error (device lost)");
            return VDGX_ENGINE_FATAL;
        }
        s_progress (io, "denoising", step, steps, 15.0 + 70.0 * step / steps);
    }
    double t2 = s_now ();
    int w = (int) req->width, h = (int) req->height;
    float *rgb = malloc ((size_t) w * h * 3 * sizeof (float));
    if (!rgb) {
        *err = s_strdup_err ("testgen: out of memory for a frame");
        return VDGX_ENGINE_FATAL;
    }
    //  Audio as long as the video, handed over one chunk per frame (so it interleaves with
    //  the frames, as a real audio-video model's would).
    int ach = k.send_channels, arate = k.send_rate;
    float *pcm = NULL;
    if (ach && io->audio) {
        pcm = malloc (((size_t) arate / req->fps + 1) * ach * sizeof (float));
        if (!pcm) {
            free (rgb);
            *err = s_strdup_err ("testgen: out of memory for audio");
            return VDGX_ENGINE_FATAL;
        }
    }
    float *first = NULL, *last = NULL;
    if ((req->image && !(first = s_image_frame (req->image, req->image_size, w, h, err)))
    ||  (req->last_image && !(last = s_image_frame (req->last_image, req->last_image_size, w, h, err)))) {
        free (first);
        free (rgb);
        free (pcm);
        return VDGX_ENGINE_ERROR;
    }
    int rc = VDGX_ENGINE_OK;
    for (uint32_t f = 0; f < req->frames && rc == VDGX_ENGINE_OK; f++) {
        if (s_cancelled (io)) {
            rc = VDGX_ENGINE_CANCELLED;
            break;
        }
        const float *given = f == 0 && first? first: f + 1 == req->frames && last? last: NULL;
        if (given)
            memcpy (rgb, given, (size_t) w * h * 3 * sizeof (float));
        else
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                vdgx_testgen_pixel (req->seed, (int) f, x, y, rgb + ((size_t) y * w + x) * 3);
        if (strcmp (k.fail, "sink") == 0)
            rgb [0] = 0.f / 0.f;        //  NaN: the encoder must refuse it
        if (io->frame && io->frame (io->ctx, rgb, w, h) != 0) {
            *err = s_strdup_err ("testgen: the frame sink refused a frame");
            rc = VDGX_ENGINE_ERROR;
            break;
        }
        if (pcm) {
            int64_t a = (int64_t) f * arate / req->fps, b = (int64_t) (f + 1) * arate / req->fps;
            for (int64_t i = a; i < b; i++)
                for (int c = 0; c < ach; c++)
                    pcm [(i - a) * ach + c] = vdgx_testgen_sample (req->seed, c, (int) i, arate);
            if (io->audio (io->ctx, pcm, (int) (b - a), ach, arate) != 0) {
                *err = s_strdup_err ("testgen: the audio sink refused the track");
                rc = VDGX_ENGINE_ERROR;
            }
        }
        s_progress (io, "decoding", f + 1, req->frames, 85.0 + 10.0 * (f + 1) / req->frames);
    }
    free (rgb);
    free (pcm);
    free (first);
    free (last);
    if (rc != VDGX_ENGINE_OK)
        return rc;
    double t3 = s_now ();
    out->width = req->width;
    out->height = req->height;
    out->frames = req->frames;
    out->fps = req->fps;
    out->seed = req->seed;
    out->t_text = t1 - t0;
    out->t_denoise = t2 - t1;
    out->t_decode = t3 - t2;
    return VDGX_ENGINE_OK;
}

static int
s_audio_format (vdgx_engine_t *self, const vdgx_genreq_t *req, int *channels, int *rate)
{
    (void) self;
    s_knobs_t k;
    s_knobs (req->prompt, &k);
    *channels = k.audio_channels;
    *rate = k.audio_rate;
    return 0;
}

static void
s_unload (vdgx_engine_t *self)
{
    free (self->weights);
    self->weights = NULL;
    self->weights_len = 0;
}

static const char *const *
s_get_precisions (vdgx_engine_t *self)
{
    (void) self;
    return s_precisions;
}

static void
s_destroy (vdgx_engine_t **self_p)
{
    if (self_p && *self_p) {
        vdgx_engine_t *self = *self_p;
        s_unload (self);
        free (self->model);
        free (self->weights_dir);
        free (self);
        *self_p = NULL;
    }
}

const vdgx_engine_class_t vdgx_testgen_engine_class = {
    .name = "testgen",
    .description = "test engine: deterministic patterns, injectable delays and failures",
    .create = s_create,
    .load = s_load,
    .validate = s_validate,
    .generate = s_generate,
    .unload = s_unload,
    .memory_estimate = s_memory_estimate,
    .precisions = s_get_precisions,
    .destroy = s_destroy,
    .audio_format = s_audio_format,
    .limits = s_limits
};
