/*  engine.h - the model-engine interface of the worker runtime.

    One engine instance serves one model in one worker process. create() only reads the
    configuration (no weights); load() reads the weights onto the backend; generate() runs one
    job, reporting progress and handing decoded frames to the sink one at a time (never a
    whole-video buffer); unload() frees everything load() took. Engines register by name.

    Audio: an engine that makes sound declares the track's format with audio_format() before
    generate() (the runtime opens the encoder with it), then hands PCM to io->audio in that
    exact format, before, between or after frames. Audio from an engine that declared none,
    or in another format, fails the job with a clear error.

    Threading: the worker runtime calls an engine from one thread only. The cancel flag is
    set from another thread; engines check it at step boundaries and return VDGX_ENGINE_CANCELLED.
*/
#ifndef VDGX_ENGINE_H_INCLUDED
#define VDGX_ENGINE_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vdgx_genreq.h"
#include "vdgx_limits.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    VDGX_ENGINE_OK = 0,
    VDGX_ENGINE_ERROR = -1,         //  the job failed; the engine is still usable
    VDGX_ENGINE_CANCELLED = -2,     //  cancel flag seen at a step boundary
    VDGX_ENGINE_FATAL = -3          //  out of memory / device error: the process must exit
};

typedef struct {
    const char *model;          //  service name, e.g. "wan21-1.3b"
    const char *weights_dir;    //  may be NULL for engines that need none
    const char *device;         //  "cpu", "cuda:0"
    const char *precision;      //  "fp32", "bf16", "fp8", "fp4" (NULL = engine default)
    int threads;                //  CPU threads, 0 = all cores
} vdgx_engine_config_t;

typedef struct {
    const char *phase;          //  loading | encoding_text | denoising | decoding | muxing
    uint32_t step, steps;       //  0/0 when the phase has no steps
    double percent;             //  overall job percent 0..100
    const char *message;        //  optional, may be NULL
} vdgx_engine_progress_t;

typedef struct {
    void *ctx;
    //  Progress report; cheap, may be called often.
    void (*progress) (void *ctx, const vdgx_engine_progress_t *p);
    //  One decoded frame: RGB interleaved [height][width][3] floats in [-1, 1].
    //  Returns 0, or -1 to abort the job (e.g. the encoder failed).
    int (*frame) (void *ctx, const float *rgb, int width, int height);
    //  Interleaved float PCM in [-1, 1]; samples counts per-channel sample frames. Must match
    //  what the class's audio_format() declared for this request. Returns 0, or -1 to abort
    //  the job (undeclared audio, another format, encoder failure). NULL where the runtime
    //  takes no audio.
    int (*audio) (void *ctx, const float *pcm, int samples, int channels, int rate);
    atomic_int *cancel;         //  non-zero: stop at the next step boundary
    //  Optional (NULL = the runtime does not stream). A streaming engine (class `streaming`)
    //  calls it when the frames handed to frame() so far are final and complete a piece of
    //  the video (MAGI-1: a 24-frame chunk): the runtime writes them as one fragment of the
    //  MP4 and hands that prefix on at once, so the client can watch it while the rest is
    //  made. Returns 0, or -1 to abort the job (the encoder failed).
    int (*segment) (void *ctx);
} vdgx_engine_io_t;

//  What generate() produced, for the result metadata.
typedef struct {
    uint32_t width, height, frames, fps;
    uint64_t seed;
    double t_text, t_denoise, t_decode;    //  seconds per phase
} vdgx_engine_output_t;

typedef struct _vdgx_engine_t vdgx_engine_t;

typedef struct {
    const char *name;           //  engine name matched against --model (exact or prefix "name-")
    const char *description;
    int (*create) (vdgx_engine_t **self_p, const vdgx_engine_config_t *cfg, char **err);
    int (*load) (vdgx_engine_t *self, const vdgx_engine_io_t *io, char **err);
    //  Fills model defaults into req and checks it against the model's limits.
    int (*validate) (vdgx_engine_t *self, vdgx_genreq_t *req, vdgx_error_t *err);
    int (*generate) (vdgx_engine_t *self, const vdgx_genreq_t *req, const vdgx_engine_io_t *io,
                     vdgx_engine_output_t *out, char **err);
    void (*unload) (vdgx_engine_t *self);
    //  Bytes the loaded model needs at this precision (for the broker's memory arbitration).
    uint64_t (*memory_estimate) (vdgx_engine_t *self, const char *precision);
    //  Precisions this engine supports, NULL-terminated.
    const char *const *(*precisions) (vdgx_engine_t *self);
    void (*destroy) (vdgx_engine_t **self_p);
    //  Optional (NULL = video only). The audio track generate() will produce for req (after
    //  validate): sets *channels (0 = no audio for this request, 1 or 2) and *rate (16000,
    //  24000 or 48000 Hz). Returns 0, or -1 if the request cannot have the audio it asks for.
    //  Kept last so that classes initialised without it stay valid.
    int (*audio_format) (vdgx_engine_t *self, const vdgx_genreq_t *req, int *channels,
                         int *rate);
    //  Optional (NULL = none declared). What the model accepts (vdgx_limits.h), known after
    //  create(): the worker advertises it so that the broker refuses requests the model cannot
    //  make at submit time. validate() must refuse at least what vdgx_limits_check refuses
    //  (engines validate with that same check). Returns 0, or -1 when nothing is declared.
    int (*limits) (vdgx_engine_t *self, vdgx_limits_t *limits);
    //  The engine finishes the video piece by piece and calls io->segment after each piece:
    //  the runtime then writes a fragmented MP4 (vdgx_video.h) and streams every finished
    //  piece to the broker while the job runs (PROTOCOL.md 5.3 ready_*).
    bool streaming;
} vdgx_engine_class_t;

//  Glue every engine needs (small enough to live here, so no engine copies another's).
//  Reports progress through io when the runtime asked for it.
static inline void
vdgx_engine_report (const vdgx_engine_io_t *io, const char *phase, uint32_t step,
                    uint32_t steps, double percent, const char *message)
{
    if (io && io->progress) {
        vdgx_engine_progress_t pr = { phase, step, steps, percent, message };
        io->progress (io->ctx, &pr);
    }
}

//  True when precision is one of the NULL-terminated list.
static inline bool
vdgx_engine_precision_known (const char *const *list, const char *precision)
{
    for (int i = 0; list && list [i]; i++)
        if (strcmp (precision, list [i]) == 0)
            return true;
    return false;
}

//  The checks every engine's create() makes of its configuration: precision, when given,
//  one of the NULL-terminated precisions; a weights folder given (folder names it in the
//  message). Returns 0, or -1 with *err (malloc'd, starting with who).
static inline int
vdgx_engine_config_check (const vdgx_engine_config_t *cfg, const char *who,
                          const char *const *precisions, const char *folder, char **err)
{
    char msg [512];
    if (cfg->precision && *cfg->precision && !vdgx_engine_precision_known (precisions, cfg->precision)) {
        int n = snprintf (msg, sizeof msg, "%s: unknown precision '%.64s' (", who, cfg->precision);
        for (int i = 0; precisions && precisions [i] && n > 0 && n < (int) sizeof msg; i++)
            n += snprintf (msg + n, sizeof msg - (size_t) n, "%s%s", i? ", ": "", precisions [i]);
        if (n > 0 && n < (int) sizeof msg)
            snprintf (msg + n, sizeof msg - (size_t) n, ")");
    }
    else
    if (!cfg->weights_dir || !*cfg->weights_dir)
        snprintf (msg, sizeof msg, "%s: --weights DIR is required (%s)", who, folder);
    else
        return 0;
    *err = strdup (msg);
    return -1;
}

//  Registry. Built-in engines are registered by vdgx_engines_register_builtin().
int vdgx_engine_register (const vdgx_engine_class_t *cls);
const vdgx_engine_class_t *vdgx_engine_find (const char *model);
void vdgx_engines_register_builtin (void);
//  The index-th registered class, NULL past the end (for --list-models).
const vdgx_engine_class_t *vdgx_engine_at (int index);

#ifdef __cplusplus
}
#endif
#endif
