/*  vdgx_worker.c - the worker runtime's socket thread (see vdgx_worker.h). */
#include <errno.h>
#include <inttypes.h>
#include <unistd.h>
#include "vdgx_worker.h"
#include "vdgx_tmpsweep.h"
#include "vdgx_runner.h"
#include "vdgx_msg.h"
#include "vdgx_log.h"
#include "vdgx_sha256.h"

struct _vdgx_worker_t {
    zactor_t *actor;
};

//  A finished job's answer, held until the broker acknowledges it.
typedef struct {
    char id [VDGX_ID_MAX + 1];
    char *path;                 //  the MP4, NULL for a failure
    zframe_t *final;            //  the FINAL body (without the token: added when sent)
    bool sent;                  //  delivered on the current connection
    char token [VDGX_TOKEN_MAX + 1];    //  the attempt token the broker gave ("" = none)
    uint64_t skip;              //  bytes already streamed while the job ran (first delivery)
} s_result_t;

typedef struct {
    zsock_t *pipe;
    zpoller_t *poller;
    zsock_t *dealer;            //  NULL while waiting to reconnect
    vdgx_runner_t *runner;
    zsock_t *runner_sock;
    atomic_int *cancel;         //  shared with the engine thread (engine.h contract)
    //  options
    char *model, *broker, *device, *data_dir, *precision;
    char *curve_server_key, *curve_cert;
    const char *const *precisions;
    uint64_t host_budget;
    int64_t unload_ms;
    int heartbeat_ms, liveness, reconnect_min_ms, reconnect_max_ms;
    char host [256];
    //  model state, as the runner reports it
    bool loaded, loading, unloading;
    uint64_t model_bytes;
    bool unload_wanted;         //  CONTROL unload while busy
    //  the current job
    bool busy;
    char job [VDGX_ID_MAX + 1];
    char job_token [VDGX_TOKEN_MAX + 1];    //  its attempt token, echoed in every reply
    uint64_t streamed;          //  bytes of its growing video sent as chunks (streaming)
    vdgx_progress_t last;       //  its last progress report (a ready report repeats it)
    bool handing_back;          //  stopping: the job's FAILED answer is swallowed
    //  A job the broker sent while this one still ran (it re-registered us as idle after a
    //  reconnect): run it next instead of failing it.
    char next_job [VDGX_ID_MAX + 1];
    char next_token [VDGX_TOKEN_MAX + 1];
    zframe_t *next_request;
    //  results not yet acknowledged
    zlistx_t *results;
    //  timers (zclock_mono ms)
    int64_t heartbeat_at, expire_at, reconnect_at, idle_since, exit_at;
    int backoff_ms;
    //  ending
    bool draining, stopping;
    bool exited;                //  EXIT sent; waiting for $TERM
    bool terminated;
} s_worker_t;

static void s_deliver (s_worker_t *self, s_result_t *result);
static void s_start_job (s_worker_t *self, const char *id, const char *token, zframe_t **request_p);

static void
s_result_destroy (void **item_p)
{
    s_result_t *r = (s_result_t *) *item_p;
    if (r) {
        if (r->path)
            unlink (r->path);
        free (r->path);
        zframe_destroy (&r->final);
        free (r);
        *item_p = NULL;
    }
}

static s_result_t *
s_result_find (s_worker_t *self, const char *id)
{
    for (s_result_t *r = (s_result_t *) zlistx_first (self->results); r;
         r = (s_result_t *) zlistx_next (self->results))
        if (streq (r->id, id))
            return r;
    return NULL;
}

static void
s_result_remove (s_worker_t *self, const char *id)
{
    s_result_t *r = s_result_find (self, id);
    if (r) {
        void *handle = zlistx_find (self->results, r);
        zlistx_delete (self->results, handle);
    }
}

static vdgx_wstate_state_t
s_state (s_worker_t *self)
{
    if (self->draining || self->stopping)
        return VDGX_WSTATE_DRAINING;
    if (self->busy)
        return self->loading? VDGX_WSTATE_LOADING: VDGX_WSTATE_BUSY;
    if (self->unloading)
        return VDGX_WSTATE_UNLOADING;
    return self->loaded? VDGX_WSTATE_WARM: VDGX_WSTATE_COLD;
}

static void
s_memory (uint64_t *rss, uint64_t *peak)
{
    *rss = *peak = 0;
    FILE *f = fopen ("/proc/self/status", "r");
    if (!f)
        return;
    char line [256];
    unsigned long long kb;
    while (fgets (line, sizeof line, f)) {
        if (sscanf (line, "VmRSS: %llu kB", &kb) == 1)
            *rss = kb * 1024ull;
        else
        if (sscanf (line, "VmHWM: %llu kB", &kb) == 1)
            *peak = kb * 1024ull;
    }
    fclose (f);
}

static zframe_t *
s_state_frame (s_worker_t *self)
{
    vdgx_wstate_t ws;
    vdgx_wstate_init (&ws);
    snprintf (ws.service, sizeof ws.service, "%s", self->model);
    snprintf (ws.host, sizeof ws.host, "%s", self->host);
    ws.pid = (uint32_t) getpid ();
    ws.state = s_state (self);
    s_memory (&ws.rss_bytes, &ws.peak_bytes);
    ws.model_bytes = self->model_bytes;
    ws.host_budget_bytes = self->host_budget;
    snprintf (ws.device, sizeof ws.device, "%s", self->device);
    //  The precision this process runs at is the one it can serve.
    vdgx_wstate_add_precision (&ws, self->precision);
    if (self->busy)
        snprintf (ws.job, sizeof ws.job, "%s", self->job);
    vdgx_wstate_add_ext (&ws, "control");
    vdgx_wstate_add_ext (&ws, "token");
    if (self->runner)
        ws.limits = *vdgx_runner_limits (self->runner);
    //  Each pending result with the attempt token that proves it is ours to resend.
    bool tokens = true;
    for (s_result_t *r = (s_result_t *) zlistx_first (self->results); r;
         r = (s_result_t *) zlistx_next (self->results))
        tokens &= *r->token != 0;
    for (s_result_t *r = (s_result_t *) zlistx_first (self->results); r;
         r = (s_result_t *) zlistx_next (self->results))
        if ((tokens? vdgx_wstate_add_pending_token (&ws, r->id, r->token)
                   : vdgx_wstate_add_pending (&ws, r->id)) != 0)
            break;
    zframe_t *frame = vdgx_wstate_frame (&ws);
    vdgx_wstate_clear (&ws);
    return frame;
}

//  Sends one message to the broker; on failure (send timeout) the connection is dropped
//  and rebuilt, which re-registers and lists undelivered results.
static void s_drop_connection (s_worker_t *self, const char *why);

static int
s_send (s_worker_t *self, zmsg_t **msg_p)
{
    if (!*msg_p)
        return -1;
    if (!self->dealer) {
        zmsg_destroy (msg_p);
        return -1;
    }
    if (zmsg_send (msg_p, self->dealer) != 0) {
        zmsg_destroy (msg_p);
        s_drop_connection (self, "send failed");
        return -1;
    }
    return 0;
}

static void
s_send_heartbeat (s_worker_t *self)
{
    zmsg_t *body = zmsg_new ();
    zframe_t *state = s_state_frame (self);
    zmsg_append (body, &state);
    zmsg_t *msg = vdgx_mdp_worker_command (2, VDGX_MDPW_HEARTBEAT, &body);
    s_send (self, &msg);
    self->heartbeat_at = zclock_mono () + self->heartbeat_ms;
}

//  A reply to a job: PARTIAL or FINAL with the job id as the client address.
static int
s_send_reply (s_worker_t *self, uint8_t command, const char *id, zframe_t **body_p)
{
    zframe_t *address = zframe_new (id, strlen (id));
    zmsg_t *body = zmsg_new ();
    zmsg_append (body, body_p);
    zmsg_t *msg = vdgx_mdp_worker_envelope (2, command, address, &body);
    zframe_destroy (&address);
    return s_send (self, &msg);
}

static zframe_t *
s_error_result (const char *code, const char *message, const char *field, const char *token)
{
    vdgx_result_t res;
    vdgx_result_init (&res);
    snprintf (res.token, sizeof res.token, "%s", token? token: "");
    res.ok = false;
    vdgx_error_init (&res.error);
    const char *interned = vdgx_error_code_intern (code);
    res.error.code = interned? interned: VDGX_E_INTERNAL;
    snprintf (res.error.message, sizeof res.error.message, "%s", message? message: "");
    snprintf (res.error.field, sizeof res.error.field, "%s", field? field: "");
    zframe_t *frame = vdgx_result_frame (&res);
    vdgx_result_clear (&res);
    return frame;
}

static void
s_connect (s_worker_t *self)
{
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->dealer);
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, 5000);
    zsock_set_sndhwm (self->dealer, 10000);
    zsock_set_rcvhwm (self->dealer, 10000);
    if (self->curve_server_key) {
        zcert_t *server = zcert_load (self->curve_server_key);
        zcert_t *mine = self->curve_cert? zcert_load (self->curve_cert): NULL;
        if (server && mine) {
            zcert_apply (mine, self->dealer);
            zsock_set_curve_serverkey (self->dealer, zcert_public_txt (server));
        }
        else
            vdgx_log_error ("worker.curve", "what=\"cannot load certificates\"");
        zcert_destroy (&server);
        zcert_destroy (&mine);
    }
    if (zsock_connect (self->dealer, "%s", self->broker) != 0) {
        vdgx_log_error ("worker.connect", "endpoint=%s error=\"%s\"", self->broker,
                        zmq_strerror (zmq_errno ()));
        zsock_destroy (&self->dealer);
        self->reconnect_at = zclock_mono () + self->backoff_ms;
        return;
    }
    zpoller_add (self->poller, self->dealer);
    //  A job still running is dispatched again on the new connection: its stream restarts.
    self->streamed = 0;
    //  Results sent on an earlier connection may be lost: the READY pending list lets the
    //  broker decide (resend / drop / ack).
    for (s_result_t *r = (s_result_t *) zlistx_first (self->results); r;
         r = (s_result_t *) zlistx_next (self->results))
        r->sent = false;
    zframe_t *state = s_state_frame (self);
    zmsg_t *msg = vdgx_mdp_worker_ready (2, self->model, &state);
    int64_t now = zclock_mono ();
    self->expire_at = now + (int64_t) self->heartbeat_ms * self->liveness;
    self->heartbeat_at = now + self->heartbeat_ms;
    vdgx_log_info ("worker.ready", "service=%s broker=%s pending=%zu", self->model,
                   self->broker, zlistx_size (self->results));
    s_send (self, &msg);
}

static void
s_drop_connection (s_worker_t *self, const char *why)
{
    if (!self->dealer)
        return;
    vdgx_log_warn ("worker.disconnected", "broker=%s why=\"%s\" retry_ms=%d", self->broker,
                   why, self->backoff_ms);
    zpoller_remove (self->poller, self->dealer);
    zsock_destroy (&self->dealer);
    self->reconnect_at = zclock_mono () + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > self->reconnect_max_ms?
                       self->reconnect_max_ms: self->backoff_ms * 2;
}

static void
s_send_exit (s_worker_t *self, int code)
{
    if (self->exited)
        return;
    if (self->dealer) {
        zmsg_t *msg = vdgx_mdp_worker_command (2, VDGX_MDPW_DISCONNECT, NULL);
        zsock_set_linger (self->dealer, 2000);      //  let the last replies leave
        s_send (self, &msg);
    }
    vdgx_log_info ("worker.exit", "code=%d", code);
    zstr_sendx (self->pipe, "EXIT", code? (code == 3? "3": "1"): "0", NULL);
    self->exited = true;
}

//  Ends a stop or drain once nothing is running; unacked results have been delivered.
static void
s_maybe_finish (s_worker_t *self)
{
    if ((self->stopping || self->draining) && !self->busy && !self->exited) {
        //  give a just-delivered result a moment to be acknowledged
        bool unacked = zlistx_size (self->results) > 0 && self->dealer;
        if (unacked && self->exit_at == 0)
            self->exit_at = zclock_mono () + self->heartbeat_ms;
        if (!unacked || zclock_mono () >= self->exit_at)
            s_send_exit (self, 0);
    }
}

static void
s_start_unload (s_worker_t *self)
{
    if (self->busy || !self->loaded || self->unloading) {
        self->unload_wanted = self->busy;
        return;
    }
    self->unload_wanted = false;
    self->unloading = true;
    zstr_send (self->runner_sock, "UNLOAD");
    s_send_heartbeat (self);
}

//  A copy of a result frame that carries the attempt token (a plain copy without one).
static zframe_t *
s_with_token (zframe_t *final, const char *token)
{
    vdgx_result_t res;
    vdgx_result_init (&res);
    vdgx_error_t err;
    if (!*token || vdgx_result_decode (&res, zframe_data (final), zframe_size (final), &err) != 0)
        return zframe_dup (final);
    snprintf (res.token, sizeof res.token, "%s", token);
    zframe_t *frame = vdgx_result_frame (&res);
    vdgx_result_clear (&res);
    return frame? frame: zframe_dup (final);
}

//  Streams the MP4 as chunk PARTIALs, then the FINAL.
static void
s_deliver (s_worker_t *self, s_result_t *r)
{
    if (!self->dealer)
        return;
    if (r->path) {
        FILE *f = fopen (r->path, "rb");
        //  The first delivery goes on after what was streamed; a later one replays it all.
        uint64_t offset = r->skip;
        r->skip = 0;
        if (f && offset && fseeko (f, (off_t) offset, SEEK_SET) != 0) {
            fclose (f);
            f = NULL;
        }
        if (!f) {
            vdgx_log_error ("worker.result_lost", "id=%s path=%s error=\"%s\"", r->id,
                            r->path, strerror (errno));
            zframe_destroy (&r->final);
            r->final = s_error_result (VDGX_E_WORKER_FAILED, "the result file was lost", NULL, NULL);
            free (r->path);
            r->path = NULL;
        }
        else {
            uint8_t *buf = (uint8_t *) malloc (VDGX_CHUNK_MAX);
            size_t n;
            while (buf && (n = fread (buf, 1, VDGX_CHUNK_MAX, f)) > 0) {
                vdgx_chunk_t chunk;
                vdgx_chunk_init (&chunk);
                chunk.offset = offset;
                snprintf (chunk.token, sizeof chunk.token, "%s", r->token);
                chunk.data = buf;
                chunk.size = n;
                zframe_t *frame = vdgx_chunk_frame (&chunk);
                chunk.data = NULL;
                if (s_send_reply (self, VDGX_MDPW_PARTIAL, r->id, &frame) != 0) {
                    free (buf);
                    fclose (f);
                    return;             //  the connection was dropped; pending again
                }
                offset += n;
            }
            free (buf);
            fclose (f);
        }
    }
    zframe_t *final = s_with_token (r->final, r->token);
    if (s_send_reply (self, VDGX_MDPW_FINAL, r->id, &final) == 0) {
        r->sent = true;
        vdgx_log_info ("worker.delivered", "id=%s", r->id);
    }
}

static void
s_job_ended (s_worker_t *self)
{
    self->busy = false;
    self->loading = false;
    self->job [0] = 0;
    self->handing_back = false;
    self->idle_since = zclock_mono ();
    if (self->next_request && !self->stopping && !self->draining) {
        char id [VDGX_ID_MAX + 1], token [VDGX_TOKEN_MAX + 1];
        snprintf (id, sizeof id, "%s", self->next_job);
        snprintf (token, sizeof token, "%s", self->next_token);
        self->next_job [0] = 0;
        self->next_token [0] = 0;
        s_start_job (self, id, token, &self->next_request);
    }
    else
    if (self->unload_wanted && !self->stopping && !self->draining)
        s_start_unload (self);
    else
        s_send_heartbeat (self);
}

static void
s_add_result (s_worker_t *self, const char *id, char *path, zframe_t *final)
{
    s_result_remove (self, id);
    s_result_t *r = (s_result_t *) zmalloc (sizeof *r);
    snprintf (r->id, sizeof r->id, "%s", id);
    if (streq (id, self->job)) {
        snprintf (r->token, sizeof r->token, "%s", self->job_token);
        r->skip = path? self->streamed: 0;
    }
    r->path = path;
    r->final = final;
    zlistx_add_end (self->results, r);
    //  A broker that never acknowledges must not fill the disk: keep the newest few.
    while (zlistx_size (self->results) > 16) {
        s_result_t *old = (s_result_t *) zlistx_first (self->results);
        vdgx_log_warn ("worker.result_expired", "id=%s", old->id);
        zlistx_delete (self->results, zlistx_cursor (self->results));
    }
    s_deliver (self, r);
}

//  A streaming engine finished a piece of the running job: its video file's first `bytes`
//  are a playable MP4. Sends what the broker has not got yet as chunks, then a progress
//  report with the ready prefix (PROTOCOL.md 5.3), all under the job's attempt token.
static void
s_stream (s_worker_t *self, const char *tmp, const char *path, uint64_t bytes, uint32_t frames,
          uint32_t fps)
{
    if (!self->dealer || self->handing_back || bytes <= self->streamed || frames == 0)
        return;
    //  The runner renames the file when the job ends (same bytes): try both names.
    FILE *f = fopen (tmp, "rb");
    if (!f)
        f = fopen (path, "rb");
    if (!f || fseeko (f, (off_t) self->streamed, SEEK_SET) != 0) {
        vdgx_log_warn ("worker.stream", "id=%s error=\"cannot read the growing video: %s\"",
                       self->job, strerror (errno));
        if (f)
            fclose (f);
        return;                 //  the result at the end still carries every byte
    }
    uint8_t *buf = (uint8_t *) malloc (VDGX_CHUNK_MAX);
    uint64_t offset = self->streamed;
    while (buf && offset < bytes) {
        size_t want = bytes - offset < VDGX_CHUNK_MAX? (size_t) (bytes - offset): VDGX_CHUNK_MAX;
        size_t n = fread (buf, 1, want, f);
        if (n != want)
            break;
        vdgx_chunk_t chunk;
        vdgx_chunk_init (&chunk);
        chunk.offset = offset;
        snprintf (chunk.token, sizeof chunk.token, "%s", self->job_token);
        chunk.data = buf;
        chunk.size = n;
        zframe_t *frame = vdgx_chunk_frame (&chunk);
        chunk.data = NULL;
        if (s_send_reply (self, VDGX_MDPW_PARTIAL, self->job, &frame) != 0)
            break;              //  dropped: the job starts over on the next connection
        offset += n;
    }
    free (buf);
    fclose (f);
    if (offset != bytes || !self->dealer)
        return;
    self->streamed = bytes;
    vdgx_progress_t p = self->last;
    snprintf (p.id, sizeof p.id, "%s", self->job);
    snprintf (p.token, sizeof p.token, "%s", self->job_token);
    p.has_ready = true;
    p.ready.bytes = bytes;
    p.ready.frames = frames;
    p.ready.seconds = fps? (double) frames / fps: 0;
    zframe_t *frame = vdgx_progress_frame (&p);
    if (frame)
        s_send_reply (self, VDGX_MDPW_PARTIAL, self->job, &frame);
    vdgx_log_info ("worker.streamed", "id=%s bytes=%" PRIu64 " frames=%u", self->job, bytes, frames);
}

static void
s_on_runner (s_worker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->runner_sock);
    if (!msg)
        return;
    char *what = zmsg_popstr (msg);
    if (!what) {
        zmsg_destroy (&msg);
        return;
    }
    if (streq (what, "STATE")) {
        char *state = zmsg_popstr (msg), *bytes = zmsg_popstr (msg);
        if (state) {
            self->loading = streq (state, "loading");
            self->loaded = streq (state, "warm");
            if (streq (state, "cold")) {
                self->unloading = false;
                self->idle_since = zclock_mono ();
            }
            self->model_bytes = bytes? strtoull (bytes, NULL, 10): 0;
            vdgx_log_info ("worker.state", "state=%s model_bytes=%s",
                           vdgx_wstate_state_name (s_state (self)), bytes? bytes: "0");
            s_send_heartbeat (self);
        }
        zstr_free (&state);
        zstr_free (&bytes);
    }
    else
    if (streq (what, "PROGRESS")) {
        char *id = zmsg_popstr (msg), *phase = zmsg_popstr (msg), *step = zmsg_popstr (msg),
             *steps = zmsg_popstr (msg), *percent = zmsg_popstr (msg), *text = zmsg_popstr (msg);
        vdgx_progress_t p;
        vdgx_progress_init (&p);
        if (id && phase && step && steps && percent && vdgx_phase_parse (phase, &p.phase) == 0
        &&  !self->handing_back) {
            snprintf (p.id, sizeof p.id, "%s", id);
            p.step = (uint32_t) strtoul (step, NULL, 10);
            p.steps = (uint32_t) strtoul (steps, NULL, 10);
            p.percent = strtod (percent, NULL);
            snprintf (p.message, sizeof p.message, "%s", text? text: "");
            if (streq (id, self->job)) {
                snprintf (p.token, sizeof p.token, "%s", self->job_token);
                self->last = p;
            }
            zframe_t *frame = vdgx_progress_frame (&p);
            if (frame)
                s_send_reply (self, VDGX_MDPW_PARTIAL, id, &frame);
        }
        vdgx_progress_clear (&p);
        zstr_free (&id); zstr_free (&phase); zstr_free (&step);
        zstr_free (&steps); zstr_free (&percent); zstr_free (&text);
    }
    else
    if (streq (what, "SEGMENT")) {
        char *id = zmsg_popstr (msg), *tmp = zmsg_popstr (msg), *path = zmsg_popstr (msg),
             *bytes = zmsg_popstr (msg), *frames = zmsg_popstr (msg), *fps = zmsg_popstr (msg);
        if (id && tmp && path && bytes && frames && fps && streq (id, self->job))
            s_stream (self, tmp, path, strtoull (bytes, NULL, 10),
                      (uint32_t) strtoul (frames, NULL, 10), (uint32_t) strtoul (fps, NULL, 10));
        zstr_free (&id); zstr_free (&tmp); zstr_free (&path);
        zstr_free (&bytes); zstr_free (&frames); zstr_free (&fps);
    }
    else
    if (streq (what, "DONE")) {
        char *id = zmsg_popstr (msg), *path = zmsg_popstr (msg);
        zframe_t *frame = zmsg_pop (msg);
        if (id && path && frame && zframe_size (frame) == sizeof (vdgx_runner_output_t)) {
            vdgx_runner_output_t out;
            memcpy (&out, zframe_data (frame), sizeof out);
            vdgx_result_t res;
            vdgx_result_init (&res);
            res.ok = true;
            res.video.size = out.size;
            snprintf (res.video.sha256, sizeof res.video.sha256, "%s", out.sha256);
            snprintf (res.video.mime, sizeof res.video.mime, "video/mp4");
            res.video.width = out.width;
            res.video.height = out.height;
            res.video.frames = out.frames;
            res.video.fps = out.fps;
            res.video.seconds = out.fps? (double) out.frames / out.fps: 0;
            res.seed = out.seed;
            res.timings.load = out.t_load;
            res.timings.text = out.t_text;
            res.timings.denoise = out.t_denoise;
            res.timings.decode = out.t_decode;
            res.timings.mux = out.t_mux;
            zframe_t *final = vdgx_result_frame (&res);
            vdgx_result_clear (&res);
            if (final) {
                s_add_result (self, id, path, final);
                path = NULL;
            }
            else
                s_add_result (self, id, NULL,
                              s_error_result (VDGX_E_INTERNAL, "cannot encode the result", NULL, NULL));
        }
        if (path)
            unlink (path);
        zstr_free (&id);
        zstr_free (&path);
        zframe_destroy (&frame);
        s_job_ended (self);
    }
    else
    if (streq (what, "FAILED")) {
        char *id = zmsg_popstr (msg), *code = zmsg_popstr (msg), *text = zmsg_popstr (msg),
             *field = zmsg_popstr (msg);
        vdgx_log_warn ("worker.job_failed", "id=%s code=%s message=\"%s\"", id? id: "",
                       code? code: "", text? text: "");
        if (id && self->handing_back && code && streq (code, VDGX_E_CANCELLED))
            vdgx_log_info ("worker.handed_back", "id=%s", id);
        else
        if (id && code)
            s_add_result (self, id, NULL, s_error_result (code, text, field, NULL));
        zstr_free (&id); zstr_free (&code); zstr_free (&text); zstr_free (&field);
        s_job_ended (self);
    }
    else
    if (streq (what, "FATAL")) {
        char *id = zmsg_popstr (msg), *text = zmsg_popstr (msg);
        char m [300];
        snprintf (m, sizeof m, "fatal engine error, worker restarting: %s", text? text: "");
        vdgx_log_error ("worker.fatal", "id=%s message=\"%s\"", id? id: "", text? text: "");
        if (id) {
            zframe_t *final = s_error_result (VDGX_E_WORKER_FAILED, m, NULL,
                                              streq (id, self->job)? self->job_token: NULL);
            s_send_reply (self, VDGX_MDPW_FINAL, id, &final);
        }
        zstr_free (&id);
        zstr_free (&text);
        self->busy = false;
        s_send_exit (self, 3);
    }
    zstr_free (&what);
    zmsg_destroy (&msg);
}

static void
s_start_job (s_worker_t *self, const char *id, const char *token, zframe_t **request_p)
{
    atomic_store (self->cancel, 0);
    self->busy = true;
    self->loading = !self->loaded;
    snprintf (self->job, sizeof self->job, "%s", id);
    snprintf (self->job_token, sizeof self->job_token, "%s", token);
    self->streamed = 0;
    vdgx_progress_init (&self->last);
    self->last.phase = VDGX_PHASE_LOADING;
    zmsg_t *run = zmsg_new ();
    zmsg_addstr (run, "RUN");
    zmsg_addstr (run, id);
    zmsg_append (run, request_p);
    zmsg_send (&run, self->runner_sock);
    s_send_heartbeat (self);
}

static void
s_on_request (s_worker_t *self, vdgx_mdp_t *in)
{
    char addr [VDGX_ID_MAX + 1] = "";
    if (in->address && zframe_size (in->address) <= VDGX_ID_MAX) {
        memcpy (addr, zframe_data (in->address), zframe_size (in->address));
        addr [zframe_size (in->address)] = 0;
    }
    if (!*addr) {
        vdgx_log_error ("worker.bad_request", "why=\"bad client address\"");
        return;
    }
    zframe_t *body = zmsg_first (in->body);
    vdgx_job_t job;
    vdgx_job_init (&job);
    vdgx_error_t err;
    vdgx_error_init (&err);
    if (!body || vdgx_job_decode (&job, zframe_data (body), zframe_size (body), &err) != 0) {
        zframe_t *final = s_error_result (VDGX_E_BAD_REQUEST,
                                          body? err.message: "empty job body", err.field, NULL);
        s_send_reply (self, VDGX_MDPW_FINAL, addr, &final);
        vdgx_job_clear (&job);
        return;
    }
    s_result_t *held = s_result_find (self, job.id);
    if (held) {
        //  The broker lost track of a job this worker finished: answer from the result,
        //  under the token of this dispatch.
        snprintf (held->token, sizeof held->token, "%s", job.token);
        s_deliver (self, held);
    }
    else
    if (self->busy && streq (self->job, job.id)) {
        //  re-dispatched after a reconnect: it is still running here, now for this attempt
        //  (whose output starts empty: the next piece streams the video from its start)
        snprintf (self->job_token, sizeof self->job_token, "%s", job.token);
        self->streamed = 0;
    }
    else
    if (self->busy && self->next_request && strcmp (self->next_job, job.id) != 0) {
        zframe_t *final = s_error_result (VDGX_E_UNAVAILABLE, "worker busy", NULL, job.token);
        s_send_reply (self, VDGX_MDPW_FINAL, job.id, &final);
    }
    else
    if (self->busy && streq (self->next_job, job.id))
        snprintf (self->next_token, sizeof self->next_token, "%s", job.token);  //  already queued here
    else
    if (self->draining || self->stopping || self->exited) {
        char m [160];
        snprintf (m, sizeof m, "worker shutting down");
        zframe_t *final = s_error_result (VDGX_E_UNAVAILABLE, m, NULL, job.token);
        s_send_reply (self, VDGX_MDPW_FINAL, job.id, &final);
    }
    else
    if (strcmp (job.request.model, self->model) != 0) {
        char m [200];
        snprintf (m, sizeof m, "this worker serves %s, not %s", self->model, job.request.model);
        zframe_t *final = s_error_result (VDGX_E_BAD_REQUEST, m, "request.model", job.token);
        s_send_reply (self, VDGX_MDPW_FINAL, job.id, &final);
    }
    else {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        vdgx_genreq_pack (&job.request, &pk);
        zframe_t *request = zframe_new (sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
        if (self->busy) {
            vdgx_log_info ("worker.job_queued", "id=%s running=%s", job.id, self->job);
            zframe_destroy (&self->next_request);
            snprintf (self->next_job, sizeof self->next_job, "%s", job.id);
            snprintf (self->next_token, sizeof self->next_token, "%s", job.token);
            self->next_request = request;
        }
        else {
            vdgx_log_info ("worker.job", "id=%s attempt=%u", job.id, job.attempt);
            s_start_job (self, job.id, job.token, &request);
        }
    }
    vdgx_job_clear (&job);
}

static void
s_on_control (s_worker_t *self, vdgx_mdp_t *in)
{
    zframe_t *body = zmsg_first (in->body);
    vdgx_control_t ctl;
    vdgx_control_init (&ctl);
    vdgx_error_t err;
    vdgx_error_init (&err);
    if (!body || vdgx_control_decode (&ctl, zframe_data (body), zframe_size (body), &err) != 0) {
        vdgx_log_warn ("worker.bad_control", "why=\"%s\"", body? err.message: "no body");
        return;
    }
    vdgx_log_info ("worker.control", "op=%s id=%s", vdgx_control_op_name (ctl.op), ctl.id);
    switch (ctl.op) {
        case VDGX_CONTROL_CANCEL:
            if (self->busy && streq (self->job, ctl.id))
                atomic_store (self->cancel, 1);
            break;
        case VDGX_CONTROL_UNLOAD:
            s_start_unload (self);
            if (!self->loaded && !self->busy)
                s_send_heartbeat (self);        //  already cold: say so
            break;
        case VDGX_CONTROL_DRAIN:
            self->draining = true;
            s_send_heartbeat (self);
            s_maybe_finish (self);
            break;
        case VDGX_CONTROL_ACK:
        case VDGX_CONTROL_DROP:
            s_result_remove (self, ctl.id);
            s_maybe_finish (self);
            break;
        case VDGX_CONTROL_RESEND: {
            s_result_t *r = s_result_find (self, ctl.id);
            if (r)
                s_deliver (self, r);
            else {
                zframe_t *final = s_error_result (VDGX_E_WORKER_FAILED,
                                                  "this worker no longer holds the result", NULL, NULL);
                s_send_reply (self, VDGX_MDPW_FINAL, ctl.id, &final);
            }
            break;
        }
        default:
            break;
    }
    vdgx_control_clear (&ctl);
}

static void
s_on_broker (s_worker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->dealer);
    if (!msg)
        return;
    //  Any message proves the broker alive.
    self->expire_at = zclock_mono () + (int64_t) self->heartbeat_ms * self->liveness;
    //  Tolerate an empty delimiter in front of the MDP/0.2 header.
    zframe_t *first = zmsg_first (msg);
    if (first && zframe_size (first) == 0 && zmsg_size (msg) > 1) {
        zframe_t *empty = zmsg_pop (msg);
        zframe_destroy (&empty);
    }
    vdgx_mdp_t in;
    vdgx_mdp_init (&in);
    vdgx_error_t err;
    vdgx_error_init (&err);
    if (vdgx_mdp_decode (&in, &msg, &err) != 0 || !in.worker) {
        vdgx_log_warn ("worker.bad_message", "why=\"%s\"", err.message);
        vdgx_mdp_clear (&in);
        return;
    }
    //  A broker that keeps refusing us (DISCONNECT) is retried with a growing back-off.
    if (in.command != VDGX_MDPW_DISCONNECT)
        self->backoff_ms = self->reconnect_min_ms;
    switch (in.command) {
        case VDGX_MDPW_REQUEST:
            s_on_request (self, &in);
            break;
        case VDGX_MDPW_HEARTBEAT:
            break;
        case VDGX_MDPW_DISCONNECT:
            //  The broker forgot us (it restarted, or thought us dead): register again.
            vdgx_log_warn ("worker.broker_disconnect", "broker=%s", self->broker);
            s_drop_connection (self, "broker sent DISCONNECT");
            break;
        case VDGX_MDPW_CONTROL:
            s_on_control (self, &in);
            break;
        default:
            vdgx_log_warn ("worker.unexpected", "command=%s",
                           vdgx_mdp_command_name (true, in.command));
            break;
    }
    vdgx_mdp_clear (&in);
}

static void
s_on_pipe (s_worker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *cmd = zmsg_popstr (msg);
    if (!cmd || streq (cmd, "$TERM"))
        self->terminated = true;
    else
    if (streq (cmd, "STOP") && !self->stopping && !self->exited) {
        self->stopping = true;
        vdgx_log_info ("worker.stopping", "busy=%d job=%s", self->busy, self->job);
        if (self->busy) {
            self->handing_back = true;
            atomic_store (self->cancel, 1);
        }
        s_send_heartbeat (self);
        s_maybe_finish (self);
    }
    zstr_free (&cmd);
    zmsg_destroy (&msg);
}

static int64_t
s_min (int64_t a, int64_t b)
{
    return a < b? a: b;
}

static void
s_worker_actor (zsock_t *pipe, void *arg)
{
    const vdgx_worker_options_t *opts = (const vdgx_worker_options_t *) arg;
    s_worker_t *self = (s_worker_t *) zmalloc (sizeof *self);
    self->pipe = pipe;
    self->model = strdup (opts->model);
    self->broker = strdup (opts->broker);
    self->device = strdup (opts->device? opts->device: "cpu");
    const char *tmp = getenv ("TMPDIR");
    self->data_dir = strdup (opts->data_dir? opts->data_dir: tmp && *tmp? tmp: "/tmp");
    self->curve_server_key = opts->curve_server_key? strdup (opts->curve_server_key): NULL;
    self->curve_cert = opts->curve_cert? strdup (opts->curve_cert): NULL;
    self->host_budget = opts->host_budget_bytes;
    self->unload_ms = (int64_t) (opts->unload_after_min * 60000.0);
    self->heartbeat_ms = opts->heartbeat_ms > 0? opts->heartbeat_ms: 2500;
    self->liveness = opts->liveness > 0? opts->liveness: 3;
    self->reconnect_min_ms = opts->reconnect_min_ms > 0? opts->reconnect_min_ms: 250;
    self->reconnect_max_ms = opts->reconnect_max_ms >= self->reconnect_min_ms?
                             opts->reconnect_max_ms: self->reconnect_min_ms;
    self->backoff_ms = self->reconnect_min_ms;
    if (gethostname (self->host, sizeof self->host - 1) != 0)
        snprintf (self->host, sizeof self->host, "unknown");
    self->results = zlistx_new ();
    zlistx_set_destructor (self->results, s_result_destroy);
    self->cancel = (atomic_int *) zmalloc (sizeof (atomic_int));
    atomic_init (self->cancel, 0);
    zsys_dir_create ("%s", self->data_dir);
    vdgx_tmpsweep_run (self->data_dir);         //  what killed workers left behind

    vdgx_runner_args_t ra = {
        .model = self->model, .weights_dir = opts->weights_dir, .device = self->device,
        .precision = opts->precision, .threads = opts->threads, .data_dir = self->data_dir,
        .cancel = self->cancel
    };
    char *err = NULL;
    self->runner = vdgx_runner_new (&ra, &err);
    zsock_signal (pipe, 0);             //  options copied
    if (!self->runner) {
        zstr_sendx (pipe, "ERROR", err? err: "cannot start the engine", NULL);
        free (err);
        goto out;
    }
    zstr_sendx (pipe, "OK", NULL);
    self->precision = strdup (vdgx_runner_precision (self->runner));
    self->runner_sock = vdgx_runner_sock (self->runner);
    self->poller = zpoller_new (pipe, self->runner_sock, NULL);
    //  Signals are the owner's business (it sends STOP); never quit on zsys_interrupted.
    zpoller_set_nonstop (self->poller, true);
    self->idle_since = zclock_mono ();
    s_connect (self);

    while (!self->terminated) {
        int64_t now = zclock_mono ();
        int64_t wake = now + 1000;
        if (self->dealer)
            wake = s_min (s_min (wake, self->heartbeat_at), self->expire_at);
        else
        if (!self->exited)
            wake = s_min (wake, self->reconnect_at);
        if (self->loaded && !self->busy && self->unload_ms > 0)
            wake = s_min (wake, self->idle_since + self->unload_ms);
        if (self->exit_at)
            wake = s_min (wake, self->exit_at);
        int timeout = (int) (wake > now? wake - now: 0);
        void *which = zpoller_wait (self->poller, timeout);
        //  Woken later than asked (process stopped or starved): that silence was ours, and
        //  does not count against the broker's liveness.
        int64_t late = zclock_mono () - (wake > now? wake: now);
        if (self->dealer && late > 0)
            self->expire_at += late;
        if (which == pipe)
            s_on_pipe (self);
        else
        if (which == self->runner_sock)
            s_on_runner (self);
        else
        if (which && which == self->dealer)
            s_on_broker (self);
        if (self->terminated || self->exited)
            continue;
        now = zclock_mono ();
        //  A message of the broker's waiting behind the pipe's or the runner's proves it
        //  alive: read it before calling the broker silent.
        if (self->dealer && now >= self->expire_at && (zsock_events (self->dealer) & ZMQ_POLLIN))
            s_on_broker (self);
        if (!self->dealer && now >= self->reconnect_at)
            s_connect (self);
        else
        if (self->dealer && now >= self->expire_at)
            s_drop_connection (self, "broker silent");
        else
        if (self->dealer && now >= self->heartbeat_at)
            s_send_heartbeat (self);
        if (self->loaded && !self->busy && !self->unloading && self->unload_ms > 0
        &&  now - self->idle_since >= self->unload_ms) {
            vdgx_log_info ("worker.idle_unload", "idle_ms=%lld",
                           (long long) (now - self->idle_since));
            s_start_unload (self);
        }
        s_maybe_finish (self);
    }
out:
    vdgx_runner_destroy (&self->runner);       //  waits for the engine thread
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->dealer);
    zlistx_destroy (&self->results);           //  removes result files
    zframe_destroy (&self->next_request);
    free (self->cancel);
    free (self->model);
    free (self->broker);
    free (self->device);
    free (self->data_dir);
    free (self->precision);
    free (self->curve_server_key);
    free (self->curve_cert);
    free (self);
}

void
vdgx_worker_options_init (vdgx_worker_options_t *opts)
{
    memset (opts, 0, sizeof *opts);
    opts->unload_after_min = 10;
    const char *hb = getenv ("VDGX_HEARTBEAT_MS"), *lv = getenv ("VDGX_LIVENESS");
    opts->heartbeat_ms = hb && atoi (hb) > 0? atoi (hb): 2500;
    opts->liveness = lv && atoi (lv) > 0? atoi (lv): 3;
    opts->reconnect_min_ms = 250;
    opts->reconnect_max_ms = 10000;
}

vdgx_worker_t *
vdgx_worker_new (const vdgx_worker_options_t *opts, char **err)
{
    assert (opts && opts->model && opts->broker);
    vdgx_worker_t *self = (vdgx_worker_t *) zmalloc (sizeof *self);
    self->actor = zactor_new (s_worker_actor, (void *) opts);
    char *status = NULL, *detail = NULL;
    if (self->actor)
        zstr_recvx (self->actor, &status, &detail, NULL);
    if (!status || !streq (status, "OK")) {
        if (err)
            *err = strdup (detail? detail: "cannot start the worker");
        zstr_free (&status);
        zstr_free (&detail);
        vdgx_worker_destroy (&self);
        return NULL;
    }
    zstr_free (&status);
    zstr_free (&detail);
    return self;
}

void
vdgx_worker_destroy (vdgx_worker_t **self_p)
{
    if (self_p && *self_p) {
        vdgx_worker_t *self = *self_p;
        zactor_destroy (&self->actor);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
vdgx_worker_sock (vdgx_worker_t *self)
{
    return zactor_sock (self->actor);
}

void
vdgx_worker_stop (vdgx_worker_t *self)
{
    zstr_send (self->actor, "STOP");
}

int
vdgx_worker_wait_exit (vdgx_worker_t *self, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (self->actor, NULL);
    zpoller_set_nonstop (poller, true);
    int64_t end = zclock_mono () + timeout_ms;
    int code = -1;
    while (code < 0) {
        int64_t left = timeout_ms < 0? -1: end - zclock_mono ();
        if (timeout_ms >= 0 && left <= 0)
            break;
        if (!zpoller_wait (poller, (int) left))
            continue;
        char *what = NULL, *value = NULL;
        zstr_recvx (self->actor, &what, &value, NULL);
        if (what && value && streq (what, "EXIT"))
            code = atoi (value);
        zstr_free (&what);
        zstr_free (&value);
    }
    zpoller_destroy (&poller);
    return code;
}

//  ---------------------------------------------------------------------------------------
//  Selftest: the worker against a ROUTER driven by the test itself, checking the wire
//  behaviour of PROTOCOL.md 3 / 3.1 step by step. Needs the "testgen" engine registered.
//  (The end-to-end tests in tests/worker run it against the real broker.)

typedef struct {
    zsock_t *router;
    zframe_t *identity;         //  the worker's
    char endpoint [64];
} s_peer_t;

static void s_peer_send (s_peer_t *peer, zmsg_t *msg);

//  Receives one worker command (any, or `want`; others are skipped) within timeout_ms.
static vdgx_mdp_t *
s_peer_recv (s_peer_t *peer, int want, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (peer->router, NULL);
    int64_t end = zclock_mono () + timeout_ms;
    vdgx_mdp_t *found = NULL;
    while (!found && zclock_mono () < end) {
        if (!zpoller_wait (poller, 50))
            continue;
        zmsg_t *msg = zmsg_recv (peer->router);
        zframe_t *identity = zmsg_pop (msg);
        zframe_t *first = zmsg_first (msg);
        if (first && zframe_size (first) == 0) {
            zframe_t *empty = zmsg_pop (msg);
            zframe_destroy (&empty);
        }
        vdgx_mdp_t *mdp = (vdgx_mdp_t *) zmalloc (sizeof *mdp);
        vdgx_mdp_init (mdp);
        vdgx_error_t err;
        vdgx_error_init (&err);
        int rc = vdgx_mdp_decode (mdp, &msg, &err);
        assert (rc == 0);
        assert (mdp->worker && mdp->version == 2);
        zframe_destroy (&peer->identity);
        peer->identity = identity;
        //  Answer like a broker: any message from the worker gets a HEARTBEAT back, so the
        //  worker's liveness never runs out while the test listens (a worker that gives up
        //  on its broker reconnects with a new identity, and what the test sends to the old
        //  one is lost).
        if (mdp->command != VDGX_MDPW_DISCONNECT)
            s_peer_send (peer, vdgx_mdp_worker_command (2, VDGX_MDPW_HEARTBEAT, NULL));
        if (want < 0 || mdp->command == want)
            found = mdp;
        else {
            vdgx_mdp_clear (mdp);
            free (mdp);
        }
    }
    zpoller_destroy (&poller);
    return found;
}

static void
s_peer_free (vdgx_mdp_t **mdp_p)
{
    if (*mdp_p) {
        vdgx_mdp_clear (*mdp_p);
        free (*mdp_p);
        *mdp_p = NULL;
    }
}

static void
s_peer_send (s_peer_t *peer, zmsg_t *msg)
{
    assert (msg && peer->identity);
    zmsg_pushmem (msg, zframe_data (peer->identity), zframe_size (peer->identity));
    zmsg_send (&msg, peer->router);
}

static void
s_peer_job (s_peer_t *peer, const char *id, const char *prompt, uint32_t steps)
{
    vdgx_job_t job;
    vdgx_job_init (&job);
    snprintf (job.id, sizeof job.id, "%s", id);
    job.attempt = 1;
    snprintf (job.request.model, sizeof job.request.model, "testgen");
    job.request.prompt = strdup (prompt);
    job.request.steps = steps;
    job.request.has_seed = true;
    job.request.seed = 7;
    zmsg_t *body = zmsg_new ();
    zframe_t *frame = vdgx_job_frame (&job);
    zmsg_append (body, &frame);
    zframe_t *address = zframe_new (id, strlen (id));
    s_peer_send (peer, vdgx_mdp_worker_envelope (2, VDGX_MDPW_REQUEST, address, &body));
    zframe_destroy (&address);
    vdgx_job_clear (&job);
}

static void
s_peer_control (s_peer_t *peer, vdgx_control_op_t op, const char *id)
{
    vdgx_control_t ctl;
    vdgx_control_init (&ctl);
    ctl.op = op;
    if (id)
        snprintf (ctl.id, sizeof ctl.id, "%s", id);
    zmsg_t *body = zmsg_new ();
    zframe_t *frame = vdgx_control_frame (&ctl);
    zmsg_append (body, &frame);
    s_peer_send (peer, vdgx_mdp_worker_command (2, VDGX_MDPW_CONTROL, &body));
}

static vdgx_wstate_state_t
s_peer_state (vdgx_mdp_t *mdp, vdgx_wstate_t *ws)
{
    zframe_t *f = zmsg_first (mdp->body);
    assert (f);
    vdgx_error_t err;
    assert (vdgx_wstate_decode (ws, zframe_data (f), zframe_size (f), &err) == 0);
    return ws->state;
}

//  Waits for a HEARTBEAT (or READY) whose state is `want`.
static void
s_peer_wait_state (s_peer_t *peer, vdgx_wstate_state_t want)
{
    int64_t end = zclock_mono () + 20000;      //  generous: a loaded machine is slow
    while (zclock_mono () < end) {
        vdgx_mdp_t *mdp = s_peer_recv (peer, -1, 500);
        if (!mdp)
            continue;
        bool hit = false;
        if ((mdp->command == VDGX_MDPW_HEARTBEAT || mdp->command == VDGX_MDPW_READY)
        &&  zmsg_size (mdp->body) > 0) {
            vdgx_wstate_t ws;
            vdgx_wstate_init (&ws);
            hit = s_peer_state (mdp, &ws) == want;
            vdgx_wstate_clear (&ws);
        }
        s_peer_free (&mdp);
        if (hit)
            return;
    }
    assert (!"worker state not reached");
}

//  Collects a job's answer: chunks reassembled, progress phases, the FINAL result.
static void
s_peer_answer (s_peer_t *peer, const char *id, vdgx_result_t *result, char *sha, int *progress)
{
    vdgx_sha256_t ctx;
    vdgx_sha256_init (&ctx);
    uint64_t offset = 0;
    *progress = 0;
    int64_t end = zclock_mono () + 60000;       //  a lost answer fails, it does not hang
    while (true) {
        assert (zclock_mono () < end);
        vdgx_mdp_t *mdp = s_peer_recv (peer, -1, 10000);
        assert (mdp);
        //  A READY that lists the job pending (a new connection: what went to the old one,
        //  a RESEND included, is lost): ask again, and start over.
        if (mdp->command == VDGX_MDPW_READY && zmsg_size (mdp->body) > 0) {
            vdgx_wstate_t ws;
            vdgx_wstate_init (&ws);
            s_peer_state (mdp, &ws);
            bool pending = false;
            for (size_t i = 0; i < ws.npending; i++)
                pending |= streq (ws.pending [i], id);
            vdgx_wstate_clear (&ws);
            if (pending) {
                s_peer_control (peer, VDGX_CONTROL_RESEND, id);
                vdgx_sha256_init (&ctx);
                offset = 0;
                *progress = 0;
            }
        }
        if (mdp->command == VDGX_MDPW_PARTIAL || mdp->command == VDGX_MDPW_FINAL) {
            assert (zframe_streq (mdp->address, id));
            zframe_t *f = zmsg_first (mdp->body);
            vdgx_wreply_t reply;
            vdgx_wreply_init (&reply);
            vdgx_error_t err;
            vdgx_error_init (&err);
            assert (vdgx_wreply_decode (&reply, zframe_data (f), zframe_size (f), &err) == 0);
            if (reply.type == VDGX_WREPLY_PROGRESS)
                (*progress)++;
            else
            if (reply.type == VDGX_WREPLY_CHUNK) {
                assert (reply.chunk.offset == offset);
                vdgx_sha256_update (&ctx, reply.chunk.data, reply.chunk.size);
                offset += reply.chunk.size;
            }
            else {
                *result = reply.result;
                vdgx_result_init (&reply.result);
                vdgx_wreply_clear (&reply);
                s_peer_free (&mdp);
                break;
            }
            vdgx_wreply_clear (&reply);
        }
        s_peer_free (&mdp);
    }
    vdgx_sha256_final_hex (&ctx, sha);
    if (result->ok)
        assert (result->video.size == offset && streq (result->video.sha256, sha));
}

void
vdgx_worker_test (bool verbose)
{
    printf (" * vdgx_worker: ");
    char dir [] = "/tmp/vdgx-worker-test-XXXXXX";
    assert (mkdtemp (dir));
    s_peer_t peer = { NULL, NULL, "" };
    peer.router = zsock_new (ZMQ_ROUTER);
    //  An ipc endpoint named after the test's directory: it can be bound again after the
    //  "broker" vanishes (a TCP port, once released, may be taken by any other process).
    //  Outside the directory, which must end up empty (libzmq unlinks the file lazily).
    snprintf (peer.endpoint, sizeof peer.endpoint, "ipc://%s.ipc", dir);
    assert (zsock_bind (peer.router, "%s", peer.endpoint) == 0);

    vdgx_worker_options_t opts;
    vdgx_worker_options_init (&opts);
    opts.model = "testgen";
    opts.broker = peer.endpoint;
    opts.data_dir = dir;
    opts.heartbeat_ms = 100;
    opts.liveness = 3;
    opts.reconnect_min_ms = 50;
    opts.reconnect_max_ms = 200;
    opts.unload_after_min = 0.8 / 60;           //  800 ms
    opts.host_budget_bytes = 1 << 30;
    char *err = NULL;
    vdgx_worker_t *worker = vdgx_worker_new (&opts, &err);
    assert (worker);

    //  READY, cold, with the worker-state map.
    vdgx_mdp_t *mdp = s_peer_recv (&peer, VDGX_MDPW_READY, 5000);
    assert (mdp && streq (mdp->service, "testgen"));
    vdgx_wstate_t ws;
    vdgx_wstate_init (&ws);
    assert (s_peer_state (mdp, &ws) == VDGX_WSTATE_COLD);
    assert (streq (ws.service, "testgen") && ws.pid == (uint32_t) getpid ());
    assert (ws.model_bytes == 0 && ws.host_budget_bytes == 1 << 30);
    assert (vdgx_wstate_has_ext (&ws, "control") && ws.npending == 0);
    assert (ws.nprecisions == 1 && streq (ws.precisions [0], "fp32"));
    //  The engine's limits travel in READY (testgen: 16..512, up to 64 frames, 200 steps).
    assert (ws.limits.present && ws.limits.wh_min == 16 && ws.limits.wh_max == 512);
    assert (ws.limits.frames_max == 64 && ws.limits.steps_max == 200 && !ws.limits.frames_4n1);
    vdgx_wstate_clear (&ws);
    s_peer_free (&mdp);

    //  First job: loads, answers with progress, chunks and a matching FINAL.
    s_peer_job (&peer, "job-a", "first", 3);
    vdgx_result_t result;
    vdgx_result_init (&result);
    char sha [VDGX_SHA256_HEX_SIZE];
    int progress = 0;
    s_peer_answer (&peer, "job-a", &result, sha, &progress);
    assert (result.ok && result.video.width == 64 && result.video.frames == 8);
    assert (result.seed == 7 && progress >= 5);
    if (verbose)
        printf ("\n   job-a: %llu bytes, %d progress reports\n",
                (unsigned long long) result.video.size, progress);
    vdgx_result_clear (&result);
    s_peer_control (&peer, VDGX_CONTROL_ACK, "job-a");

    //  Warm now; idle for 800 ms -> unloads by itself.
    s_peer_wait_state (&peer, VDGX_WSTATE_WARM);
    s_peer_wait_state (&peer, VDGX_WSTATE_COLD);

    //  Cancel mid-run.
    s_peer_job (&peer, "job-b", "sleep_ms=40", 100);
    s_peer_wait_state (&peer, VDGX_WSTATE_BUSY);
    s_peer_control (&peer, VDGX_CONTROL_CANCEL, "job-b");
    s_peer_answer (&peer, "job-b", &result, sha, &progress);
    assert (!result.ok && streq (result.error.code, "cancelled"));
    vdgx_result_clear (&result);
    s_peer_control (&peer, VDGX_CONTROL_ACK, "job-b");

    //  CONTROL unload while warm.
    s_peer_job (&peer, "job-c", "quick", 1);
    s_peer_answer (&peer, "job-c", &result, sha, &progress);
    assert (result.ok);
    vdgx_result_clear (&result);
    s_peer_control (&peer, VDGX_CONTROL_ACK, "job-c");
    s_peer_control (&peer, VDGX_CONTROL_UNLOAD, NULL);
    s_peer_wait_state (&peer, VDGX_WSTATE_COLD);

    //  The broker vanishes while a job runs: the worker re-registers on a new broker with the
    //  undelivered result pending, and replays it on resend.
    s_peer_job (&peer, "job-d", "sleep_ms=30", 10);
    s_peer_wait_state (&peer, VDGX_WSTATE_BUSY);
    zsock_destroy (&peer.router);
    zframe_destroy (&peer.identity);
    zclock_sleep (600);                     //  the job may finish meanwhile (or not)
    peer.router = zsock_new (ZMQ_ROUTER);
    assert (zsock_bind (peer.router, "%s", peer.endpoint) == 0);
    //  The worker re-registers; while the job still runs (a slow machine) its READY shows
    //  it busy, and the result, when it is delivered on the new connection, stays unacked:
    //  a later READY (after the connection is dropped again) lists it pending. So drop the
    //  connection, by staying silent, until a READY lists job-d pending.
    int64_t pending_end = zclock_mono () + 30000;
    bool listed = false;
    while (!listed && zclock_mono () < pending_end) {
        zpoller_t *poller = zpoller_new (peer.router, NULL);
        if (zpoller_wait (poller, 100)) {
            zmsg_t *msg = zmsg_recv (peer.router);
            zframe_t *identity = zmsg_pop (msg);
            zframe_t *first = zmsg_first (msg);
            if (first && zframe_size (first) == 0) {
                zframe_t *empty = zmsg_pop (msg);
                zframe_destroy (&empty);
            }
            vdgx_mdp_t *in = (vdgx_mdp_t *) zmalloc (sizeof *in);
            vdgx_mdp_init (in);
            vdgx_error_t derr;
            vdgx_error_init (&derr);
            assert (vdgx_mdp_decode (in, &msg, &derr) == 0);
            if (in->command == VDGX_MDPW_READY) {
                vdgx_wstate_init (&ws);
                s_peer_state (in, &ws);
                listed = ws.npending == 1 && streq (ws.pending [0], "job-d");
                vdgx_wstate_clear (&ws);
                if (listed) {
                    zframe_destroy (&peer.identity);
                    peer.identity = identity;
                    identity = NULL;
                }
            }
            zframe_destroy (&identity);
            s_peer_free (&in);
        }
        zpoller_destroy (&poller);
    }
    assert (listed);
    s_peer_control (&peer, VDGX_CONTROL_RESEND, "job-d");
    s_peer_answer (&peer, "job-d", &result, sha, &progress);
    assert (result.ok && progress == 0);
    vdgx_result_clear (&result);
    s_peer_control (&peer, VDGX_CONTROL_ACK, "job-d");

    //  A bad job body is answered, not fatal.
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "not msgpack");
    zframe_t *address = zframe_new ("job-e", 5);
    s_peer_send (&peer, vdgx_mdp_worker_envelope (2, VDGX_MDPW_REQUEST, address, &body));
    zframe_destroy (&address);
    s_peer_answer (&peer, "job-e", &result, sha, &progress);
    assert (!result.ok && streq (result.error.code, "bad_request"));
    vdgx_result_clear (&result);
    s_peer_control (&peer, VDGX_CONTROL_DROP, "job-e");

    //  STOP during a job: handed back (no FINAL), DISCONNECT, EXIT 0.
    s_peer_job (&peer, "job-f", "sleep_ms=50", 100);
    s_peer_wait_state (&peer, VDGX_WSTATE_BUSY);
    vdgx_worker_stop (worker);
    while (true) {
        mdp = s_peer_recv (&peer, -1, 5000);
        assert (mdp);
        assert (mdp->command != VDGX_MDPW_FINAL);
        bool done = mdp->command == VDGX_MDPW_DISCONNECT;
        s_peer_free (&mdp);
        if (done)
            break;
    }
    assert (vdgx_worker_wait_exit (worker, 5000) == 0);
    vdgx_worker_destroy (&worker);
    assert (worker == NULL);

    //  A fatal engine error: FINAL worker_failed, DISCONNECT, EXIT 3.
    worker = vdgx_worker_new (&opts, &err);
    assert (worker);
    mdp = s_peer_recv (&peer, VDGX_MDPW_READY, 5000);
    assert (mdp);
    s_peer_free (&mdp);
    s_peer_job (&peer, "job-g", "fail=fatal", 2);
    s_peer_answer (&peer, "job-g", &result, sha, &progress);
    assert (!result.ok && streq (result.error.code, "worker_failed"));
    assert (strstr (result.error.message, "device lost"));
    vdgx_result_clear (&result);
    mdp = s_peer_recv (&peer, VDGX_MDPW_DISCONNECT, 5000);
    assert (mdp);
    s_peer_free (&mdp);
    assert (vdgx_worker_wait_exit (worker, 5000) == 3);
    vdgx_worker_destroy (&worker);

    //  CONTROL drain while idle: DISCONNECT, EXIT 0.
    worker = vdgx_worker_new (&opts, &err);
    assert (worker);
    mdp = s_peer_recv (&peer, VDGX_MDPW_READY, 5000);
    assert (mdp);
    s_peer_free (&mdp);
    s_peer_control (&peer, VDGX_CONTROL_DRAIN, NULL);
    mdp = s_peer_recv (&peer, VDGX_MDPW_DISCONNECT, 5000);
    assert (mdp);
    s_peer_free (&mdp);
    assert (vdgx_worker_wait_exit (worker, 5000) == 0);
    vdgx_worker_destroy (&worker);

    //  No engine for the model: refused at start.
    opts.model = "nonexistent-model";
    assert (vdgx_worker_new (&opts, &err) == NULL);
    assert (err && strstr (err, "no engine"));
    free (err);

    zframe_destroy (&peer.identity);
    zsock_destroy (&peer.router);
    unlink (peer.endpoint + 6);
    zdir_t *zd = zdir_new (dir, NULL);
    assert (zd && zdir_count (zd) == 0);
    zdir_destroy (&zd);
    rmdir (dir);
    printf ("OK\n");
}
