/*  vdgx_runner.c - the engine thread of a worker (see vdgx_runner.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "vdgx_runner.h"
#include "engine.h"
#include "vdgx_log.h"
#include "vdgx_sha256.h"
#include "vdgx_video.h"
//  libavformat/libavcodec only for the selftest's decoding of finished files.
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

struct _vdgx_runner_t {
    zactor_t *actor;
    char *precision;
    const char *const *precisions;
    vdgx_limits_t limits;
};

//  Everything below lives in the runner thread only.
typedef struct {
    zsock_t *pipe;
    const vdgx_engine_class_t *cls;
    vdgx_engine_config_t config;
    char *model, *weights_dir, *device, *precision;
    char *data_dir;
    atomic_int *cancel;
    vdgx_engine_t *engine;
    bool loaded;
    //  the running job
    const char *job_id;
    const vdgx_genreq_t *req;
    char *path;
    vdgx_video_t *video;
    char *video_err;            //  why a frame/audio sink refused, for the job error
    int audio_channels, audio_rate;     //  what the engine declared for this job (0 = none)
    int64_t audio_samples;              //  per-channel samples pushed this job
    char last_phase [16];
    uint32_t last_step;
    int64_t last_progress_ms;
} s_runner_t;

//  Monotonic seconds.
static double
s_now (void)
{
    return zclock_usecs () / 1e6;
}

static void
s_send_state (s_runner_t *self, const char *state)
{
    uint64_t bytes = 0;
    if (self->engine && self->cls->memory_estimate && strcmp (state, "cold") != 0)
        bytes = self->cls->memory_estimate (self->engine, self->precision);
    zstr_sendm (self->pipe, "STATE");
    zstr_sendm (self->pipe, state);
    zstr_sendf (self->pipe, "%" PRIu64, bytes);
}

static void
s_send_progress (s_runner_t *self, const char *phase, uint32_t step, uint32_t steps,
                 double percent, const char *message)
{
    zstr_sendm (self->pipe, "PROGRESS");
    zstr_sendm (self->pipe, self->job_id? self->job_id: "");
    zstr_sendm (self->pipe, phase);
    zstr_sendfm (self->pipe, "%u", step);
    zstr_sendfm (self->pipe, "%u", steps);
    zstr_sendfm (self->pipe, "%.3f", percent < 0? 0: percent > 100? 100: percent);
    zstr_send (self->pipe, message? message: "");
}

static void
s_send_failed (s_runner_t *self, const char *id, const char *code, const char *message,
               const char *field)
{
    zstr_sendm (self->pipe, "FAILED");
    zstr_sendm (self->pipe, id);
    zstr_sendm (self->pipe, code);
    zstr_sendm (self->pipe, message? message: "");
    zstr_send (self->pipe, field? field: "");
}

//  Engine progress callback. A phase or step change always goes out; within one step, at most
//  one report per 200 ms, so a chatty engine cannot flood the broker.
static void
s_on_progress (void *ctx, const vdgx_engine_progress_t *p)
{
    s_runner_t *self = (s_runner_t *) ctx;
    if (!p || !p->phase)
        return;
    int64_t now = zclock_mono ();
    bool changed = strcmp (p->phase, self->last_phase) != 0 || p->step != self->last_step;
    if (!changed && now - self->last_progress_ms < 200)
        return;
    snprintf (self->last_phase, sizeof self->last_phase, "%s", p->phase);
    self->last_step = p->step;
    self->last_progress_ms = now;
    s_send_progress (self, p->phase, p->step, p->steps, p->percent, p->message);
}

//  Opens the encoder on the first frame or audio chunk, with the audio track the engine
//  declared for this job (the encoder needs it at open time).
static int
s_open_video (s_runner_t *self)
{
    vdgx_video_options_t opts;
    vdgx_video_options_init (&opts);
    opts.fps = self->req->fps? (int) self->req->fps: 16;
    opts.thumbnail = false;
    opts.sprite_count = 0;
    opts.odd_size = VDGX_VIDEO_ODD_PAD;
    opts.try_nvenc = strncmp (self->device, "cuda", 4) == 0;
    opts.audio_channels = self->audio_channels;
    opts.audio_rate = self->audio_rate;
    opts.fragmented = self->cls->streaming;
    char *err = NULL;
    self->video = vdgx_video_new (self->path, &opts, &err);
    if (!self->video) {
        self->video_err = zsys_sprintf ("video encoder: %s",
                                        err? err: "cannot start the video encoder");
        free (err);
        return -1;
    }
    return 0;
}

//  Engine frame sink: frames go straight into the encoder.
static int
s_on_frame (void *ctx, const float *rgb, int width, int height)
{
    s_runner_t *self = (s_runner_t *) ctx;
    if (self->video_err)
        return -1;
    if (!self->video && s_open_video (self) != 0)
        return -1;
    if (vdgx_video_push_float (self->video, rgb, width, height) != 0) {
        self->video_err = zsys_sprintf ("video encoder: %s", vdgx_video_error (self->video));
        return -1;
    }
    return 0;
}

//  A streaming engine finished a piece: write it as a fragment and tell the socket thread
//  how much of the file is now a playable video.
static int
s_on_segment (void *ctx)
{
    s_runner_t *self = (s_runner_t *) ctx;
    if (self->video_err)
        return -1;
    if (!self->video)
        return 0;               //  nothing pushed yet
    uint64_t bytes = 0;
    int frames = 0;
    if (vdgx_video_fragment (self->video, &bytes, &frames) != 0) {
        self->video_err = zsys_sprintf ("video encoder: %s", vdgx_video_error (self->video));
        return -1;
    }
    if (bytes == 0 || frames == 0)
        return 0;
    zstr_sendm (self->pipe, "SEGMENT");
    zstr_sendm (self->pipe, self->job_id);
    zstr_sendm (self->pipe, vdgx_video_temp_path (self->video));
    zstr_sendm (self->pipe, self->path);
    zstr_sendfm (self->pipe, "%" PRIu64, bytes);
    zstr_sendfm (self->pipe, "%d", frames);
    zstr_sendf (self->pipe, "%u", self->req->fps? self->req->fps: 16);
    return 0;
}

//  Engine audio sink: PCM in the declared format goes into the encoder's audio track.
//  Undeclared audio, or audio in another format, fails the job rather than being dropped.
static int
s_on_audio (void *ctx, const float *pcm, int samples, int channels, int rate)
{
    s_runner_t *self = (s_runner_t *) ctx;
    if (self->video_err)
        return -1;
    if (self->audio_channels == 0) {
        self->video_err = zsys_sprintf ("the engine sent audio (%d ch at %d Hz) but declared "
                                        "no audio track for this job", channels, rate);
        return -1;
    }
    if (channels != self->audio_channels || rate != self->audio_rate) {
        self->video_err = zsys_sprintf ("the engine sent audio as %d ch at %d Hz but declared "
                                        "%d ch at %d Hz", channels, rate,
                                        self->audio_channels, self->audio_rate);
        return -1;
    }
    if (!self->video && s_open_video (self) != 0)
        return -1;
    if (vdgx_video_push_audio (self->video, pcm, samples, channels, rate) != 0) {
        self->video_err = zsys_sprintf ("video encoder: %s", vdgx_video_error (self->video));
        return -1;
    }
    self->audio_samples += samples;
    return 0;
}

static bool
s_precision_ok (s_runner_t *self, const char *precision)
{
    if (!self->cls->precisions)
        return true;
    const char *const *list = self->cls->precisions (self->engine);
    for (int i = 0; list && list [i]; i++)
        if (strcmp (list [i], precision) == 0)
            return true;
    return false;
}

//  Runs one job: RUN id request-bytes.
static void
s_run (s_runner_t *self, zmsg_t *msg)
{
    char *id = zmsg_popstr (msg);
    zframe_t *reqf = zmsg_pop (msg);
    if (!id || !reqf) {
        vdgx_log_error ("runner.bad_command", "what=RUN");
        zstr_free (&id);
        zframe_destroy (&reqf);
        return;
    }
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    vdgx_error_t verr;
    memset (&verr, 0, sizeof verr);
    self->job_id = id;
    self->req = &req;
    self->last_phase [0] = 0;
    self->last_step = 0;
    self->last_progress_ms = 0;
    vdgx_engine_io_t io = {
        .ctx = self, .progress = s_on_progress, .frame = s_on_frame, .audio = s_on_audio,
        .cancel = self->cancel, .segment = self->cls->streaming? s_on_segment: NULL
    };
    char *err = NULL;
    double t_load = 0;

    if (vdgx_genreq_decode (&req, zframe_data (reqf), zframe_size (reqf), &verr) != 0) {
        s_send_failed (self, id, verr.code? verr.code: "bad_request", verr.message, verr.field);
        goto done;
    }
    if (req.precision [0] && strcmp (req.precision, self->precision) != 0) {
        char m [128];
        snprintf (m, sizeof m, "this worker runs %s at %s, not %s", self->model,
                  self->precision, req.precision);
        s_send_failed (self, id, "bad_request", m, "precision");
        goto done;
    }
    //  A request the model cannot serve fails before any weights are read.
    if (self->cls->validate && self->cls->validate (self->engine, &req, &verr) != 0) {
        s_send_failed (self, id, verr.code? verr.code: "bad_request", verr.message, verr.field);
        goto done;
    }
    if (!self->loaded) {
        s_send_state (self, "loading");
        s_send_progress (self, "loading", 0, 0, 0, "loading weights");
        double t0 = s_now ();
        int rc = self->cls->load (self->engine, &io, &err);
        t_load = s_now () - t0;
        if (rc == VDGX_ENGINE_FATAL) {
            zstr_sendx (self->pipe, "FATAL", id, err? err: "fatal error while loading", NULL);
            goto done;
        }
        if (rc != VDGX_ENGINE_OK) {
            self->cls->unload (self->engine);
            s_send_state (self, "cold");
            char m [512];
            snprintf (m, sizeof m, "loading %s failed: %s", self->model, err? err: "unknown error");
            s_send_failed (self, id, rc == VDGX_ENGINE_CANCELLED? "cancelled": "worker_failed",
                           m, NULL);
            goto done;
        }
        self->loaded = true;
        s_send_state (self, "warm");
        vdgx_log_info ("runner.loaded", "model=%s seconds=%.3f", self->model, t_load);
    }
    if (!s_precision_ok (self, self->precision)) {
        s_send_failed (self, id, "bad_request", "precision not supported by this engine",
                       "precision");
        goto done;
    }
    //  One file per job and process, so workers sharing a data dir never collide.
    char safe [VDGX_MODEL_MAX + 64];
    snprintf (safe, sizeof safe, "%.100s", id);
    for (char *c = safe; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '-' && *c != '_')
            *c = '_';
    self->path = zsys_sprintf ("%s/%s.%d.mp4", self->data_dir, safe, (int) getpid ());

    //  The audio track, if any, must be known before the encoder opens.
    self->audio_channels = self->audio_rate = 0;
    self->audio_samples = 0;
    if (self->cls->audio_format) {
        int channels = 0, rate = 0;
        if (self->cls->audio_format (self->engine, &req, &channels, &rate) != 0) {
            s_send_failed (self, id, "bad_request", "the model cannot make the audio requested",
                           NULL);
            goto done;
        }
        if (channels != 0 && ((channels != 1 && channels != 2)
        ||  (rate != 16000 && rate != 24000 && rate != 48000))) {
            char m [128];
            snprintf (m, sizeof m, "the engine declared an unsupported audio format "
                      "(%d ch at %d Hz)", channels, rate);
            s_send_failed (self, id, "worker_failed", m, NULL);
            goto done;
        }
        self->audio_channels = channels;
        self->audio_rate = channels? rate: 0;
    }
    vdgx_engine_output_t out;
    memset (&out, 0, sizeof out);
    int rc = self->cls->generate (self->engine, &req, &io, &out, &err);
    if (rc == VDGX_ENGINE_FATAL) {
        zstr_sendx (self->pipe, "FATAL", id, err? err: "fatal engine error", NULL);
        goto done;
    }
    if (rc == VDGX_ENGINE_CANCELLED) {
        s_send_failed (self, id, "cancelled", "cancelled at a step boundary", NULL);
        goto done;
    }
    //  A sink refusal fails the job even if the engine ignored the sink's -1.
    if (rc != VDGX_ENGINE_OK || self->video_err) {
        char m [512];
        if (self->video_err)
            snprintf (m, sizeof m, "%s", self->video_err);
        else
            snprintf (m, sizeof m, "%s", err? err: "engine error");
        s_send_failed (self, id, "worker_failed", m, NULL);
        goto done;
    }
    if (!self->video) {
        s_send_failed (self, id, "worker_failed", "the engine produced no frames", NULL);
        goto done;
    }
    //  A declared track left empty would be a broken file: an engine bug, said as such.
    if (self->audio_channels && self->audio_samples == 0) {
        s_send_failed (self, id, "worker_failed", "the engine declared an audio track but "
                       "sent no audio", NULL);
        goto done;
    }
    s_send_progress (self, "muxing", 0, 0, 96, NULL);
    double t_mux0 = s_now ();
    if (vdgx_video_finish (self->video) != 0) {
        char m [512];
        snprintf (m, sizeof m, "video encoder: %s", vdgx_video_error (self->video));
        s_send_failed (self, id, "worker_failed", m, NULL);
        goto done;
    }
    vdgx_video_destroy (&self->video);
    char sha [VDGX_SHA256_HEX_SIZE];
    struct stat st;
    if (vdgx_sha256_file (self->path, sha) != 0 || stat (self->path, &st) != 0) {
        char m [512];
        snprintf (m, sizeof m, "cannot read the finished video: %s", strerror (errno));
        unlink (self->path);
        s_send_failed (self, id, "worker_failed", m, NULL);
        goto done;
    }
    double t_mux = s_now () - t_mux0;

    vdgx_runner_output_t result = {
        .size = (uint64_t) st.st_size, .width = out.width, .height = out.height,
        .frames = out.frames, .fps = out.fps, .seed = out.seed, .t_load = t_load,
        .t_text = out.t_text, .t_denoise = out.t_denoise, .t_decode = out.t_decode,
        .t_mux = t_mux
    };
    memcpy (result.sha256, sha, sizeof result.sha256);
    zmsg_t *done = zmsg_new ();
    zmsg_addstr (done, "DONE");
    zmsg_addstr (done, id);
    zmsg_addstr (done, self->path);
    zmsg_addmem (done, &result, sizeof result);
    zmsg_send (&done, self->pipe);
    vdgx_log_info ("runner.done", "id=%s size=%lld", id, (long long) st.st_size);
done:
    vdgx_video_destroy (&self->video);      //  aborts an unfinished encode, removing its file
    zstr_free (&self->video_err);
    zstr_free (&self->path);
    free (err);
    self->job_id = NULL;
    self->req = NULL;
    vdgx_genreq_clear (&req);
    zframe_destroy (&reqf);
    zstr_free (&id);
}

static void
s_runner_actor (zsock_t *pipe, void *arg)
{
    const vdgx_runner_args_t *args = (const vdgx_runner_args_t *) arg;
    s_runner_t self;
    memset (&self, 0, sizeof self);
    self.pipe = pipe;
    self.cls = vdgx_engine_find (args->model);
    self.model = strdup (args->model);
    self.weights_dir = args->weights_dir? strdup (args->weights_dir): NULL;
    self.device = strdup (args->device? args->device: "cpu");
    self.data_dir = strdup (args->data_dir? args->data_dir: ".");
    self.cancel = args->cancel;
    self.config.model = self.model;
    self.config.weights_dir = self.weights_dir;
    self.config.device = self.device;
    self.config.precision = args->precision;
    self.config.threads = args->threads;
    char *err = NULL;
    int rc = VDGX_ENGINE_ERROR;
    if (!self.cls)
        err = zsys_sprintf ("no engine serves model '%s' (see --list-models)", self.model);
    else
        rc = self.cls->create (&self.engine, &self.config, &err);
    if (rc == VDGX_ENGINE_OK) {
        //  The engine's default precision when none was asked for.
        const char *p = args->precision;
        if (!p || !*p) {
            const char *const *list = self.cls->precisions? self.cls->precisions (self.engine): NULL;
            p = list && list [0]? list [0]: "fp32";
        }
        self.precision = strdup (p);
        self.config.precision = self.precision;
    }
    zsock_signal (pipe, 0);         //  args are copied; the caller may free them now
    if (rc != VDGX_ENGINE_OK) {
        zstr_sendx (pipe, "ERROR", err? err: "engine create failed", NULL);
        free (err);
        goto out;
    }
    zstr_sendx (pipe, "OK", self.precision, NULL);
    //  The precision list is static engine data; its address goes to the owner once.
    zsock_send (pipe, "p", self.cls->precisions? (void *) self.cls->precisions (self.engine): NULL);
    //  And what the model accepts (engine.h limits), copied to the owner once.
    vdgx_limits_t limits;
    vdgx_limits_init (&limits);
    if (self.cls->limits && self.cls->limits (self.engine, &limits) != 0)
        vdgx_limits_init (&limits);
    zsock_send (pipe, "b", &limits, sizeof limits);
    while (true) {
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;
        char *cmd = zmsg_popstr (msg);
        if (!cmd || streq (cmd, "$TERM")) {
            zstr_free (&cmd);
            zmsg_destroy (&msg);
            break;
        }
        if (streq (cmd, "RUN"))
            s_run (&self, msg);
        else
        if (streq (cmd, "UNLOAD")) {
            if (self.loaded) {
                self.cls->unload (self.engine);
                self.loaded = false;
                vdgx_log_info ("runner.unloaded", "model=%s", self.model);
            }
            s_send_state (&self, "cold");
        }
        else
            vdgx_log_error ("runner.bad_command", "what=%s", cmd);
        zstr_free (&cmd);
        zmsg_destroy (&msg);
    }
out:
    if (self.engine) {
        if (self.loaded)
            self.cls->unload (self.engine);
        self.cls->destroy (&self.engine);
    }
    free (self.model);
    free (self.weights_dir);
    free (self.device);
    free (self.data_dir);
    free (self.precision);
}

vdgx_runner_t *
vdgx_runner_new (const vdgx_runner_args_t *args, char **err)
{
    assert (args && args->model && args->cancel);
    vdgx_runner_t *self = (vdgx_runner_t *) zmalloc (sizeof *self);
    self->actor = zactor_new (s_runner_actor, (void *) args);
    char *status = NULL, *detail = NULL;
    if (self->actor)
        zstr_recvx (self->actor, &status, &detail, NULL);
    if (!status || !streq (status, "OK")) {
        if (err)
            *err = strdup (detail? detail: "cannot start the engine thread");
        zstr_free (&status);
        zstr_free (&detail);
        vdgx_runner_destroy (&self);
        return NULL;
    }
    self->precision = detail;
    zstr_free (&status);
    void *list = NULL;
    zsock_recv (self->actor, "p", &list);
    self->precisions = (const char *const *) list;
    zframe_t *limits = NULL;
    vdgx_limits_init (&self->limits);
    if (zsock_recv (self->actor, "f", &limits) == 0 && limits
    &&  zframe_size (limits) == sizeof self->limits)
        memcpy (&self->limits, zframe_data (limits), sizeof self->limits);
    zframe_destroy (&limits);
    return self;
}

const vdgx_limits_t *
vdgx_runner_limits (vdgx_runner_t *self)
{
    assert (self);
    return &self->limits;
}

const char *
vdgx_runner_precision (vdgx_runner_t *self)
{
    return self->precision;
}

const char *const *
vdgx_runner_precisions (vdgx_runner_t *self)
{
    static const char *const none [] = { NULL };
    return self->precisions? self->precisions: none;
}

void
vdgx_runner_destroy (vdgx_runner_t **self_p)
{
    if (self_p && *self_p) {
        vdgx_runner_t *self = *self_p;
        zactor_destroy (&self->actor);
        free (self->precision);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
vdgx_runner_sock (vdgx_runner_t *self)
{
    return zactor_sock (self->actor);
}

//  ---------------------------------------------------------------------------------------
//  Selftest: needs an engine named "testgen" registered (the test build links tests/engines).

//  Reads events until one named `want` arrives (or 10 s pass); returns it with the name
//  popped, or NULL. Progress phases seen on the way are appended to seen.
static zmsg_t *
s_expect (zsock_t *sock, const char *want, char *seen, size_t seen_size)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    zmsg_t *found = NULL;
    int64_t end = zclock_mono () + 10000;
    while (!found && zclock_mono () < end) {
        if (!zpoller_wait (poller, 200))
            continue;
        zmsg_t *msg = zmsg_recv (sock);
        char *what = zmsg_popstr (msg);
        if (what && streq (what, "PROGRESS") && seen) {
            zframe_t *id = zmsg_pop (msg);
            char *phase = zmsg_popstr (msg);
            if (phase && !strstr (seen, phase) && strlen (seen) + strlen (phase) + 2 < seen_size) {
                strcat (seen, phase);
                strcat (seen, " ");
            }
            zstr_free (&phase);
            zframe_destroy (&id);
            zmsg_pushstr (msg, "");
            zmsg_pushstr (msg, "");
        }
        if (what && streq (what, want))
            found = msg;
        else
            zmsg_destroy (&msg);
        zstr_free (&what);
    }
    zpoller_destroy (&poller);
    return found;
}

static zframe_t *
s_test_request (const char *prompt, uint32_t width, uint32_t steps, uint64_t seed)
{
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "testgen");
    req.prompt = strdup (prompt);
    req.width = width;
    req.height = width? 48: 0;      //  both or neither
    req.steps = steps;
    req.has_seed = true;
    req.seed = seed;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    vdgx_genreq_pack (&req, &pk);
    zframe_t *frame = zframe_new (sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    vdgx_genreq_clear (&req);
    return frame;
}

static void
s_test_run (zsock_t *sock, const char *id, zframe_t *request)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "RUN");
    zmsg_addstr (msg, id);
    zmsg_append (msg, &request);
    zmsg_send (&msg, sock);
}

//  Probes a finished MP4 with libavformat. want_channels 0: no audio stream may exist; else
//  one AAC stream at want_rate with want_channels, as long as the video (within 0.1 s: AAC
//  pads to whole 1024-sample frames) and decoding to a sine at the level testgen sends.
static void
s_test_probe (const char *path, int want_channels, int want_rate)
{
    AVFormatContext *fmt = NULL;
    assert (avformat_open_input (&fmt, path, NULL, NULL) == 0);
    assert (avformat_find_stream_info (fmt, NULL) >= 0);
    int vi = av_find_best_stream (fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    int ai = av_find_best_stream (fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    assert (vi >= 0);
    if (want_channels == 0) {
        assert (ai < 0);
        avformat_close_input (&fmt);
        return;
    }
    assert (ai >= 0);
    AVStream *vs = fmt->streams [vi], *as = fmt->streams [ai];
    assert (as->codecpar->codec_id == AV_CODEC_ID_AAC);
    assert (as->codecpar->sample_rate == want_rate);
    assert (as->codecpar->ch_layout.nb_channels == want_channels);
    double vdur = vs->duration * av_q2d (vs->time_base);
    double adur = as->duration * av_q2d (as->time_base);
    const AVCodec *codec = avcodec_find_decoder (AV_CODEC_ID_AAC);
    AVCodecContext *dec = avcodec_alloc_context3 (codec);
    assert (dec && avcodec_parameters_to_context (dec, as->codecpar) >= 0);
    assert (avcodec_open2 (dec, codec, NULL) == 0);
    AVPacket *pkt = av_packet_alloc ();
    AVFrame *frame = av_frame_alloc ();
    double energy = 0;
    int64_t decoded = 0;
    bool eof = false;
    while (!eof) {
        eof = av_read_frame (fmt, pkt) < 0;
        if (!eof && pkt->stream_index != ai) {
            av_packet_unref (pkt);
            continue;
        }
        avcodec_send_packet (dec, eof? NULL: pkt);
        av_packet_unref (pkt);
        while (avcodec_receive_frame (dec, frame) == 0) {
            //  The native AAC decoder gives planar float.
            assert (frame->format == AV_SAMPLE_FMT_FLTP);
            for (int c = 0; c < want_channels; c++)
                for (int i = 0; i < frame->nb_samples; i++) {
                    float v = ((const float *) frame->extended_data [c]) [i];
                    energy += (double) v * v;
                }
            decoded += frame->nb_samples;
        }
    }
    double rms = decoded? sqrt (energy / ((double) decoded * want_channels)): 0;
    if (fabs (adur - vdur) >= 0.1 || fabs (rms - 0.25 / sqrt (2.0)) >= 0.03)
        fprintf (stderr, "audio: %.3f s (video %.3f s), %lld samples, rms %.4f\n", adur, vdur,
                 (long long) decoded, rms);
    assert (fabs (adur - vdur) < 0.1);
    assert (fabs ((double) decoded / want_rate - vdur) < 0.1);
    assert (fabs (rms - 0.25 / sqrt (2.0)) < 0.03);     //  a 0.25 sine, not silence or noise
    av_frame_free (&frame);
    av_packet_free (&pkt);
    avcodec_free_context (&dec);
    avformat_close_input (&fmt);
}

//  Checks a DONE event: the file exists, its sha256 and size match the output; with
//  want_channels >= 0 also its audio track (see s_test_probe).
static void
s_test_done_av (zmsg_t *msg, const char *id, char *sha_out, int want_channels, int want_rate)
{
    char *got_id = zmsg_popstr (msg), *path = zmsg_popstr (msg);
    zframe_t *frame = zmsg_pop (msg);
    assert (got_id && streq (got_id, id) && path && frame);
    assert (zframe_size (frame) == sizeof (vdgx_runner_output_t));
    vdgx_runner_output_t out;
    memcpy (&out, zframe_data (frame), sizeof out);
    char sha [VDGX_SHA256_HEX_SIZE];
    assert (vdgx_sha256_file (path, sha) == 0);
    struct stat st;
    assert (stat (path, &st) == 0 && st.st_size > 0);
    assert (streq (out.sha256, sha) && out.size == (uint64_t) st.st_size);
    assert (out.width > 0 && out.frames > 0 && out.fps > 0);
    if (want_channels >= 0)
        s_test_probe (path, want_channels, want_rate);
    if (sha_out)
        memcpy (sha_out, sha, VDGX_SHA256_HEX_SIZE);
    unlink (path);
    zframe_destroy (&frame);
    zstr_free (&got_id);
    zstr_free (&path);
}

static void
s_test_done (zmsg_t *msg, const char *id, char *sha_out)
{
    s_test_done_av (msg, id, sha_out, -1, 0);
}

static void
s_test_failed (zmsg_t *msg, const char *id, const char *code, const char *field)
{
    assert (msg);
    char *got_id = zmsg_popstr (msg), *got_code = zmsg_popstr (msg), *text = zmsg_popstr (msg),
         *got_field = zmsg_popstr (msg);
    assert (streq (got_id, id));
    if (!streq (got_code, code))
        fprintf (stderr, "expected %s, got %s: %s\n", code, got_code, text);
    assert (streq (got_code, code));
    assert (text && *text);
    if (field)
        assert (streq (got_field, field));
    zstr_free (&got_id); zstr_free (&got_code); zstr_free (&text); zstr_free (&got_field);
    zmsg_destroy (&msg);
}

void
vdgx_runner_test (bool verbose)
{
    printf (" * vdgx_runner: ");
    assert (vdgx_engine_find ("testgen"));
    char dir [] = "/tmp/vdgx-runner-test-XXXXXX";
    assert (mkdtemp (dir));
    atomic_int cancel;
    atomic_init (&cancel, 0);

    //  A model without an engine is refused with a clear message.
    vdgx_runner_args_t bad = { .model = "no-such-model", .data_dir = dir, .cancel = &cancel };
    char *err = NULL;
    assert (vdgx_runner_new (&bad, &err) == NULL);
    assert (err && strstr (err, "no engine"));
    free (err);

    //  Missing weights: the job fails with the reason, the model stays cold, nothing crashes.
    vdgx_runner_args_t noweights = { .model = "testgen", .weights_dir = "/nonexistent/weights",
                                     .data_dir = dir, .cancel = &cancel };
    vdgx_runner_t *runner = vdgx_runner_new (&noweights, &err);
    assert (runner);
    zsock_t *sock = vdgx_runner_sock (runner);
    s_test_run (sock, "job-w", s_test_request ("no weights", 64, 1, 1));
    zmsg_t *msg = s_expect (sock, "FAILED", NULL, 0);
    assert (msg);
    char *wid = zmsg_popstr (msg), *wcode = zmsg_popstr (msg), *wtext = zmsg_popstr (msg);
    assert (streq (wcode, "worker_failed") && strstr (wtext, "/nonexistent/weights"));
    zstr_free (&wid); zstr_free (&wcode); zstr_free (&wtext);
    zmsg_destroy (&msg);
    vdgx_runner_destroy (&runner);

    vdgx_runner_args_t args = { .model = "testgen", .device = "cpu", .data_dir = dir,
                                .cancel = &cancel };
    runner = vdgx_runner_new (&args, &err);
    assert (runner);
    assert (streq (vdgx_runner_precision (runner), "fp32"));
    assert (streq (vdgx_runner_precisions (runner) [0], "fp32"));
    sock = vdgx_runner_sock (runner);

    //  A request the model refuses fails without loading anything.
    s_test_run (sock, "job-0", s_test_request ("too wide", 600, 3, 1));
    char seen0 [256] = "";
    s_test_failed (s_expect (sock, "FAILED", seen0, sizeof seen0), "job-0", "bad_request", "width");
    assert (!strstr (seen0, "loading"));

    //  First job: lazy load (loading -> warm), every phase reported, a verified MP4.
    s_test_run (sock, "job-1", s_test_request ("a test", 64, 3, 42));
    char seen [256] = "";
    msg = s_expect (sock, "STATE", seen, sizeof seen);
    char *state = zmsg_popstr (msg);
    assert (streq (state, "loading"));
    zstr_free (&state);
    zmsg_destroy (&msg);
    msg = s_expect (sock, "STATE", seen, sizeof seen);
    state = zmsg_popstr (msg);
    char *bytes = zmsg_popstr (msg);
    assert (streq (state, "warm") && strtoull (bytes, NULL, 10) == 4u << 20);
    zstr_free (&state);
    zstr_free (&bytes);
    zmsg_destroy (&msg);
    msg = s_expect (sock, "DONE", seen, sizeof seen);
    assert (msg);
    char sha1 [VDGX_SHA256_HEX_SIZE], sha2 [VDGX_SHA256_HEX_SIZE], sha3 [VDGX_SHA256_HEX_SIZE];
    s_test_done (msg, "job-1", sha1);
    zmsg_destroy (&msg);
    if (verbose)
        printf ("\n   phases: %s\n", seen);
    assert (strstr (seen, "loading") && strstr (seen, "encoding_text")
            && strstr (seen, "denoising") && strstr (seen, "decoding") && strstr (seen, "muxing"));

    //  Warm: no second load; the same seed gives the same video, another seed another one.
    s_test_run (sock, "job-2", s_test_request ("a test", 64, 3, 42));
    msg = s_expect (sock, "DONE", NULL, 0);
    s_test_done (msg, "job-2", sha2);
    zmsg_destroy (&msg);
    assert (streq (sha1, sha2));
    s_test_run (sock, "job-3", s_test_request ("a test", 64, 3, 43));
    msg = s_expect (sock, "DONE", NULL, 0);
    s_test_done (msg, "job-3", sha3);
    zmsg_destroy (&msg);
    assert (!streq (sha1, sha3));

    //  Validation, engine errors, encoder refusal: FAILED with the right code; engine usable.
    s_test_run (sock, "job-4", s_test_request ("too wide", 4000, 3, 1));
    s_test_failed (s_expect (sock, "FAILED", NULL, 0), "job-4", "bad_request", "width");
    s_test_run (sock, "job-5", s_test_request ("fail=error fail_at=2", 64, 3, 1));
    s_test_failed (s_expect (sock, "FAILED", NULL, 0), "job-5", "worker_failed", NULL);
    s_test_run (sock, "job-6", s_test_request ("fail=sink", 64, 2, 1));
    s_test_failed (s_expect (sock, "FAILED", NULL, 0), "job-6", "worker_failed", NULL);
    //  Audio: the declared track is muxed (AAC, declared rate and channels, as long as the
    //  video); a job without audio has no audio stream; undeclared audio or audio in another
    //  format than declared fails the job with a clear error.
    s_test_run (sock, "job-6a", s_test_request ("audio=1", 64, 1, 1));
    msg = s_expect (sock, "DONE", NULL, 0);
    assert (msg);
    s_test_done_av (msg, "job-6a", NULL, 2, 48000);
    zmsg_destroy (&msg);
    s_test_run (sock, "job-6b", s_test_request ("audio=mono24", 64, 1, 2));
    msg = s_expect (sock, "DONE", NULL, 0);
    assert (msg);
    s_test_done_av (msg, "job-6b", NULL, 1, 24000);
    zmsg_destroy (&msg);
    s_test_run (sock, "job-6c", s_test_request ("no audio", 64, 1, 2));
    msg = s_expect (sock, "DONE", NULL, 0);
    assert (msg);
    s_test_done_av (msg, "job-6c", NULL, 0, 0);
    zmsg_destroy (&msg);
    const char *bad_audio [][2] = {
        { "audio=undeclared", "declared no audio track" },
        { "audio=mismatch", "2 ch at 48000 Hz but declared 1 ch at 24000 Hz" },
        { "audio=silent", "declared an audio track but sent no audio" }
    };
    for (int i = 0; i < 3; i++) {
        s_test_run (sock, "job-6d", s_test_request (bad_audio [i][0], 64, 1, 1));
        msg = s_expect (sock, "FAILED", NULL, 0);
        assert (msg);
        char *aid = zmsg_popstr (msg), *acode = zmsg_popstr (msg), *atext = zmsg_popstr (msg);
        if (verbose)
            printf ("\n   %s: %s\n", bad_audio [i][0], atext);
        assert (streq (aid, "job-6d") && streq (acode, "worker_failed"));
        assert (strstr (atext, bad_audio [i][1]));
        zstr_free (&aid); zstr_free (&acode); zstr_free (&atext);
        zmsg_destroy (&msg);
    }
    zframe_t *garbage = zframe_new ("\xc1", 1);
    s_test_run (sock, "job-7", garbage);
    s_test_failed (s_expect (sock, "FAILED", NULL, 0), "job-7", "bad_request", NULL);

    //  Cancel at a step boundary: 50 steps of 50 ms would take 2.5 s.
    int64_t t0 = zclock_mono ();
    s_test_run (sock, "job-8", s_test_request ("sleep_ms=50", 64, 50, 1));
    zclock_sleep (120);
    atomic_store (&cancel, 1);
    s_test_failed (s_expect (sock, "FAILED", NULL, 0), "job-8", "cancelled", NULL);
    assert (zclock_mono () - t0 < 1500);
    atomic_store (&cancel, 0);

    //  Unload -> cold; the next job loads again.
    zstr_send (sock, "UNLOAD");
    msg = s_expect (sock, "STATE", NULL, 0);
    state = zmsg_popstr (msg);
    assert (streq (state, "cold"));
    zstr_free (&state);
    zmsg_destroy (&msg);
    s_test_run (sock, "job-9", s_test_request ("again", 32, 1, 5));
    msg = s_expect (sock, "STATE", NULL, 0);
    state = zmsg_popstr (msg);
    assert (streq (state, "loading"));
    zstr_free (&state);
    zmsg_destroy (&msg);
    msg = s_expect (sock, "DONE", NULL, 0);
    s_test_done (msg, "job-9", NULL);
    zmsg_destroy (&msg);

    //  A fatal engine error is reported as FATAL (the owner must end the process).
    s_test_run (sock, "job-10", s_test_request ("fail=fatal", 64, 2, 1));
    msg = s_expect (sock, "FATAL", NULL, 0);
    assert (msg);
    char *id = zmsg_popstr (msg), *text = zmsg_popstr (msg);
    assert (streq (id, "job-10") && strstr (text, "device lost"));
    zstr_free (&id);
    zstr_free (&text);
    zmsg_destroy (&msg);
    vdgx_runner_destroy (&runner);
    assert (runner == NULL);

    //  Nothing left in the data dir: finished files were removed above, failed ones by the
    //  encoder's abort.
    zdir_t *zd = zdir_new (dir, NULL);
    assert (zd);
    if (zdir_count (zd) != 0)
        zdir_print (zd, 0);
    assert (zdir_count (zd) == 0);
    zdir_destroy (&zd);
    rmdir (dir);
    printf ("OK\n");
}
