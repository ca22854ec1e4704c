/*  vdgx_runner.h - the engine thread of a worker: an actor that owns one engine instance and
    runs jobs on it, so that the socket thread (heartbeats, control) never waits for a model.

    Commands (socket thread -> runner, zstr/zmsg frames):
        RUN id request-bytes          load if cold, validate, generate into <data>/<id>.mp4
        UNLOAD                        free the model (answered with STATE cold)
    Events (runner -> socket thread):
        STATE state model_bytes       loading | warm | cold; model_bytes as a decimal string
        PROGRESS id phase step steps percent message
        SEGMENT id tmp-path path bytes frames fps
                                      a streaming engine finished a piece: the first `bytes`
                                      of the growing video (at tmp-path until the job ends,
                                      then at path: the same bytes) are a playable MP4 of
                                      `frames` frames
        DONE id path output           the video is complete at path; output is a
                                      vdgx_runner_output_t (same process: a plain struct)
        FAILED id code message        the job failed; the engine is still usable
        FATAL id message              the engine hit OOM / a device error: the process must exit

    The only state the two threads share is the engine's cancel flag (an atomic the engine
    interface requires), owned by the caller and set from the socket thread.

    This header does not include engine.h: the socket-thread code needs only vdgx_msg.h, and
    the engine is looked up by model name.
*/
#ifndef VDGX_RUNNER_H_INCLUDED
#define VDGX_RUNNER_H_INCLUDED

#include <czmq.h>
#include <stdatomic.h>
#include "vdgx_limits.h"

typedef struct {
    const char *model;          //  service name; its engine comes from vdgx_engine_find
    const char *weights_dir;    //  may be NULL
    const char *device;         //  "cpu", "cuda:0"
    const char *precision;      //  NULL = the engine's first precision
    int threads;                //  0 = all cores
    const char *data_dir;       //  where result files go
    atomic_int *cancel;         //  set by the owner to cancel the running job
} vdgx_runner_args_t;

//  What a finished job produced; the socket thread turns it into the FINAL result map.
typedef struct {
    uint64_t size;
    char sha256 [65];
    uint32_t width, height, frames, fps;
    uint64_t seed;
    double t_load, t_text, t_denoise, t_decode, t_mux;     //  seconds
} vdgx_runner_output_t;

typedef struct _vdgx_runner_t vdgx_runner_t;

//  Creates the engine (no weights yet) and starts the thread. NULL with *err on failure.
vdgx_runner_t *vdgx_runner_new (const vdgx_runner_args_t *args, char **err);
//  The precision the engine runs at, and the ones it supports (NULL-terminated); valid while
//  the runner lives.
const char *vdgx_runner_precision (vdgx_runner_t *self);
const char *const *vdgx_runner_precisions (vdgx_runner_t *self);
//  What the model accepts (engine.h limits; present = false when the engine declares none).
const vdgx_limits_t *vdgx_runner_limits (vdgx_runner_t *self);
void vdgx_runner_destroy (vdgx_runner_t **self_p);
//  The actor's socket, for polling and commands.
zsock_t *vdgx_runner_sock (vdgx_runner_t *self);

void vdgx_runner_test (bool verbose);

#endif
