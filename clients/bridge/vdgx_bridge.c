/*  vdgx_bridge.c - REST bridge: libmicrohttpd handlers + one actor owning the ZeroMQ sockets. */
#include "vdgx_bridge.h"
#include "vdgx_mp.h"
#include "vdgx_apikeys.h"
#include "vdgx_apireq.h"
#include "vdgx_client.h"
#include "vdgx_form.h"
#include "vdgx_front.h"
#include "vdgx_gate.h"
#include "vdgx_guard.h"
#include "vdgx_log.h"
#include "vdgx_msg.h"
#include "vdgx_promtext.h"
#include "vdgx_ratelimit.h"
#include "vdgx_thumb.h"
#include "vdgx_ui.h"
#include "vdgx_webhook.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_VERSION       "0.1.0"
#define S_MAXQ          4               //  broker requests one HTTP request may wait on
#define S_KEEPALIVE_MS  15000           //  SSE comment when a stream is quiet this long
#define S_HEADERS_MAX   16384           //  request line + headers we answer (431 beyond)

//  ---------------------------------------------------------------------------------------
//  Routes and HTTP counters

typedef enum {
    R_ROOT, R_HEALTH, R_READY, R_INFO, R_GENERATE, R_UNLOAD, R_QUEUE, R_JOB, R_JOB_DOWNLOAD,
    R_JOB_EVENTS, R_METRICS, R_OPENAPI, R_VIDEOS, R_VIDEO, R_VIDEO_CONTENT, R_DRAIN, R_JOB_CANCEL,
    R_UI, R_MODELS, R_MODEL, R_NONE, R_COUNT
} s_route_t;

static const struct {
    const char *label;          //  route label in metrics (never an id)
    const char *allow;          //  methods (HEAD goes with GET)
} s_routes [R_COUNT] = {
    { "/", "GET, HEAD" }, { "/health", "GET, HEAD" }, { "/ready", "GET, HEAD" },
    { "/info", "GET, HEAD" }, { "/generate", "POST" }, { "/unload", "POST" },
    { "/queue/status", "GET, HEAD" }, { "/jobs/{id}", "GET, HEAD" },
    { "/jobs/{id}/download", "GET, HEAD" }, { "/jobs/{id}/events", "GET" },
    { "/metrics", "GET, HEAD" }, { "/openapi.json", "GET, HEAD" },
    { "/v1/videos", "GET, HEAD, POST" }, { "/v1/videos/{id}", "GET, HEAD, DELETE" },
    { "/v1/videos/{id}/content", "GET, HEAD" }, { "/drain", "POST" },
    { "/jobs/{id}/cancel", "POST" }, { "/ui/", "GET, HEAD" }, { "/v1/models", "GET, HEAD" },
    { "/v1/models/{id}", "GET, HEAD" }, { "other", "" },
};

static const int s_codes [] = { 200, 202, 206, 304, 400, 401, 403, 404, 405, 409, 410, 413, 415,
                                416, 422, 429, 431, 500, 503 };
#define S_NCODES ((int) (sizeof s_codes / sizeof s_codes [0]))

//  ---------------------------------------------------------------------------------------
//  Structures

struct _vdgx_bridge_t {
    vdgx_bridge_cfg_t cfg;
    char *listen, *broker, *events, *default_model;     //  owned copies of cfg strings
    vdgx_front_t *front;                //  listens, validates requests, runs libmicrohttpd
    zactor_t *actor;
    pthread_mutex_t pipe_lock;          //  the actor pipe is written by every HTTP thread
    bool actor_alive;                   //  under pipe_lock
    zactor_t *thumbs;                   //  makes thumbnails off the HTTP threads
    bool thumbs_alive;                  //  under pipe_lock
    vdgx_apikeys_t *keys;               //  NULL = no auth
    vdgx_ratelimit_t *limiter;
    vdgx_ratelimit_t *auth_fails;       //  failed authentications per client address
    vdgx_guard_t *guard;                //  connection limits in HTTP, slow-request deadlines
    vdgx_gate_t *decodes;               //  image decodes at once (--decode-limit)
    zcert_t *curve_cert;                //  CURVE to the broker: our certificate ...
    char *curve_server;                 //  ... and the broker's public key (Z85); NULL = plain
    atomic_uint_fast64_t auth_refused;  //  requests refused while an address was locked out
    uint16_t port;
    int64_t started;
    int64_t started_wall;       //  unix seconds (the models' `created`)
    vdgx_webhook_t *webhooks;   //  NULL when no secret was given
    atomic_uint_fast64_t http [R_COUNT][S_NCODES + 1];  //  last column: other codes
    atomic_uint_fast64_t broker_ok, broker_failed, broker_timeouts;
    atomic_int inflight, sse_streams;
    //  Final job statuses as sent ("j:<id>" for /jobs, "v:<id>" for /v1/videos): a cache
    //  shared by the HTTP threads, read-mostly, hence a rwlock.
    zhashx_t *cache;
    pthread_rwlock_t cache_lock;
    atomic_uint_fast64_t cache_hits;
};

typedef struct {
    char *text;
    int64_t expires;
} s_cached_t;

typedef struct {
    char service [32];
    zframe_t *body;             //  request body (moved to the actor when sent)
    zframe_t *reply;            //  FINAL body, NULL when failed
} s_call_t;

typedef struct {
    vdgx_bridge_t *bridge;
    struct MHD_Connection *conn;
    s_route_t route;
    const char *method;
    const vdgx_ui_asset_t *ui;  //  the file a /ui/ URL names (NULL: none)
    bool head;
    bool first_done;            //  the request (headers and body) is in
    bool close_after;           //  the answer closes the connection
    char id [VDGX_ID_MAX + 1];              //  {id} of the path
    char who [VDGX_APIKEY_NAME_MAX + 48];   //  rate-limit identity
    char owner [VDGX_OWNER_MAX + 1];        //  with keys: "key:NAME", the owner of its jobs
    bool admin;                             //  with keys: the key's role; without: true
    void *gconn;                            //  the connection in the guard
    //  Upload
    char *body;  size_t body_size;
    bool too_large, bad_type, is_form;
    //  Broker exchange: owned by the actor between suspend and resume
    int step;
    size_t nq, pending;
    s_call_t q [S_MAXQ];
    bool failed;
    char fail_msg [128];
    //  Work kept between steps
    vdgx_genreq_t req;
    bool has_req;
    const char *size_field;     //  "size" / "resolution" when the body gave the size so (errors)
    const char *image_field;    //  "input_reference" when the body gave the image so (errors)
    vdgx_webhook_spec_t webhook;            //  the submit's webhook (url "" = none)
    char job_id [VDGX_ID_MAX + 1];
    //  Download streaming
    uint64_t dl_start, dl_end, dl_size;     //  byte range [start, end] of dl_size
    bool dl_partial;            //  the ready prefix of a running (streaming) job
    uint32_t dl_attempt;        //  ... of this attempt
    uint8_t *dl_buf;  uint64_t dl_buf_off;  size_t dl_buf_len;
    bool dl_fetching, dl_error;
    bool thumb;                 //  variant=thumbnail
    uint8_t *thumb_in;  size_t thumb_in_size;       //  the video's first chunk (to the thumbs thread)
    uint8_t *thumb_jpeg;  size_t thumb_size;        //  its answer, or thumb_err
    char thumb_err [128];
    json_t *win;                //  /v1/videos newest first: the newest entries seen so far
    bool win_more;              //  older entries fell out of the window
    //  SSE: the actor fills sse_out when the stream waits (WAIT), then resumes
    bool sse_open;
    char *sse_out;  size_t sse_len, sse_pos;
    bool sse_done, sse_waiting, sse_counted;
    uint64_t sse_last_id;       //  Last-Event-ID: events up to it are not sent again
} s_req_t;

static vdgx_bridge_t *s_unused;     //  keeps -Wunused quiet for static helpers in tests

//  ---------------------------------------------------------------------------------------
//  Actor messages

static int
s_push (vdgx_bridge_t *self, const char *cmd, s_req_t *r)
{
    int rc = -1;
    pthread_mutex_lock (&self->pipe_lock);
    if (self->actor_alive)
        rc = zsock_send (self->actor, "sp", cmd, (void *) r);
    pthread_mutex_unlock (&self->pipe_lock);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Responses

static int
s_code_index (int status)
{
    for (int i = 0; i < S_NCODES; i++)
        if (s_codes [i] == status)
            return i;
    return S_NCODES;
}

static enum MHD_Result
s_queue (s_req_t *r, int status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header (resp, "Cache-Control", "no-store");
    if (r->close_after)
        MHD_add_response_header (resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response (r->conn, (unsigned) status, resp);
    MHD_destroy_response (resp);
    atomic_fetch_add (&r->bridge->http [r->route][s_code_index (status)], 1);
    return rc;
}

static enum MHD_Result
s_send_text (s_req_t *r, int status, const char *type, char *text)
{
    //  text is malloc'ed and handed to MHD
    struct MHD_Response *resp = MHD_create_response_from_buffer (strlen (text), text,
                                                                 MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free (text);
        return MHD_NO;
    }
    MHD_add_response_header (resp, "Content-Type", type);
    return s_queue (r, status, resp);
}

static enum MHD_Result
s_send_json (s_req_t *r, int status, json_t *obj)
{
    char *text = json_dumps (obj, JSON_COMPACT | JSON_REAL_PRECISION (15));
    json_decref (obj);
    if (!text)
        return MHD_NO;
    return s_send_text (r, status, "application/json", text);
}

//  ---------------------------------------------------------------------------------------
//  Cache of final job statuses

#define S_CACHE_MAX 20000

static void
s_cached_free (void **item_p)
{
    s_cached_t *c = (s_cached_t *) *item_p;
    if (c) {
        free (c->text);
        free (c);
        *item_p = NULL;
    }
}

//  A copy of the cached text, or NULL. The first reader to find an entry expired refreshes
//  it (gets NULL and asks the broker) while the others keep the copy for one more broker
//  deadline: an expiry costs one broker call, not one per waiting client.
//  Entries are per owner: a user never gets another's job from the cache.
#define S_CACHE_KEY_MAX (VDGX_OWNER_MAX + VDGX_ID_MAX + 4)

static char *
s_cache_get (vdgx_bridge_t *self, char kind, const char *owner, const char *id)
{
    if (self->cfg.cache_ms <= 0)
        return NULL;
    char key [S_CACHE_KEY_MAX];
    snprintf (key, sizeof key, "%c:%s/%s", kind, owner, id);
    char *text = NULL;
    int64_t now = zclock_mono ();
    bool expired = false;
    pthread_rwlock_rdlock (&self->cache_lock);
    s_cached_t *c = (s_cached_t *) zhashx_lookup (self->cache, key);
    if (c && c->expires > now)
        text = strdup (c->text);
    expired = c && !text;
    pthread_rwlock_unlock (&self->cache_lock);
    if (expired) {
        pthread_rwlock_wrlock (&self->cache_lock);
        c = (s_cached_t *) zhashx_lookup (self->cache, key);
        if (c && c->expires > now)
            text = strdup (c->text);        //  someone else refreshes it
        else
        if (c)
            c->expires = now + self->cfg.request_timeout_ms;
        pthread_rwlock_unlock (&self->cache_lock);
    }
    return text;
}

static void
s_cache_put (vdgx_bridge_t *self, char kind, const char *owner, const char *id, const char *text)
{
    if (self->cfg.cache_ms <= 0 || !text)
        return;
    char key [S_CACHE_KEY_MAX];
    snprintf (key, sizeof key, "%c:%s/%s", kind, owner, id);
    s_cached_t *c = (s_cached_t *) calloc (1, sizeof (s_cached_t));
    if (!c || !(c->text = strdup (text))) {
        free (c);
        return;
    }
    int64_t now = zclock_mono ();
    c->expires = now + self->cfg.cache_ms;
    pthread_rwlock_wrlock (&self->cache_lock);
    if (zhashx_size (self->cache) >= S_CACHE_MAX) {
        //  Full: drop what expired; if nothing did, start over (bounded memory first).
        zlistx_t *keys = zhashx_keys (self->cache);
        for (const char *k = (const char *) zlistx_first (keys); k; k = (const char *) zlistx_next (keys)) {
            s_cached_t *old = (s_cached_t *) zhashx_lookup (self->cache, k);
            if (old->expires <= now)
                zhashx_delete (self->cache, k);
        }
        zlistx_destroy (&keys);
        if (zhashx_size (self->cache) >= S_CACHE_MAX)
            zhashx_purge (self->cache);
    }
    zhashx_update (self->cache, key, c);
    pthread_rwlock_unlock (&self->cache_lock);
}

static void
s_cache_drop (vdgx_bridge_t *self, const char *owner, const char *id)
{
    char key [S_CACHE_KEY_MAX];
    pthread_rwlock_wrlock (&self->cache_lock);
    snprintf (key, sizeof key, "j:%s/%s", owner, id);
    zhashx_delete (self->cache, key);
    snprintf (key, sizeof key, "v:%s/%s", owner, id);
    zhashx_delete (self->cache, key);
    pthread_rwlock_unlock (&self->cache_lock);
}

static enum MHD_Result
s_send_error (s_req_t *r, int status, const char *code, const char *field, int64_t retry_ms,
              const char *format, ...) __attribute__ ((format (printf, 6, 7)));

static enum MHD_Result
s_send_error (s_req_t *r, int status, const char *code, const char *field, int64_t retry_ms,
              const char *format, ...)
{
    char message [256];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    char *text = vdgx_apierr_body (status, code, field, message);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer (strlen (text), text,
                                                                 MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free (text);
        return MHD_NO;
    }
    MHD_add_response_header (resp, "Content-Type", "application/json");
    if (status == 405)
        MHD_add_response_header (resp, "Allow", s_routes [r->route].allow);
    if (status == 401)
        MHD_add_response_header (resp, "WWW-Authenticate", "Bearer realm=\"vdgx\"");
    if (retry_ms > 0) {
        char secs [24];
        snprintf (secs, sizeof secs, "%" PRId64, (retry_ms + 999) / 1000);
        MHD_add_response_header (resp, "Retry-After", secs);
    }
    return s_queue (r, status, resp);
}

static enum MHD_Result
s_send_apierr (s_req_t *r, const vdgx_apierr_t *err)
{
    //  503 (no image decode slot): worth a retry soon.
    return s_send_error (r, err->status, err->code, err->field, err->status == 503? 1000: 0,
                         "%s", err->message);
}

//  ---------------------------------------------------------------------------------------
//  Broker calls

static void
s_calls_reset (s_req_t *r)
{
    for (size_t i = 0; i < r->nq; i++) {
        zframe_destroy (&r->q [i].body);
        zframe_destroy (&r->q [i].reply);
    }
    r->nq = 0;
    r->failed = false;
    r->fail_msg [0] = 0;
}

static void
s_call (s_req_t *r, const char *service, zframe_t *body)
{
    assert (r->nq < S_MAXQ && body);
    s_call_t *c = &r->q [r->nq++];
    snprintf (c->service, sizeof c->service, "%s", service);
    c->body = body;
    c->reply = NULL;
}

static void
s_call_jobcmd (s_req_t *r, vdgx_jobcmd_t *cmd)
{
    //  With API keys the broker acts for the key: its jobs, its role (docs/SECURITY.md).
    if (r->bridge->keys) {
        snprintf (cmd->owner, sizeof cmd->owner, "%s", r->owner);
        cmd->has_role = true;
        cmd->admin = r->admin;
    }
    s_call (r, VDGX_JOBS_SERVICE, vdgx_jobcmd_frame (cmd));
    vdgx_jobcmd_clear (cmd);
}

//  A job-service command that names one job (status, delete).
static void
s_call_job (s_req_t *r, vdgx_jobcmd_type_t type, const char *id)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = type;
    snprintf (cmd.id, sizeof cmd.id, "%s", id);
    s_call_jobcmd (r, &cmd);
}

static zframe_t *
s_empty_map (void)
{
    static const uint8_t empty = 0x80;
    return zframe_new (&empty, 1);
}

//  Suspends the connection and hands the calls to the actor. The handler is called again
//  (step + 1) once every call has an answer or failed.
static enum MHD_Result
s_go (s_req_t *r)
{
    assert (r->nq > 0);         //  a handler that waits on nothing would never be resumed
    r->step++;
    r->pending = r->nq;
    r->failed = false;
    atomic_fetch_add (&r->bridge->inflight, 1);
    MHD_suspend_connection (r->conn);
    if (s_push (r->bridge, "REQ", r)) {
        r->failed = true;
        r->pending = 0;
        snprintf (r->fail_msg, sizeof r->fail_msg, "the bridge is shutting down");
        atomic_fetch_sub (&r->bridge->inflight, 1);
        vdgx_front_resume (r->bridge->front, r->conn);
    }
    return MHD_YES;
}

static int
s_http_status_of (const char *code, const char *field)
{
    if (!code) return 502;
    if (streq (code, VDGX_E_BAD_REQUEST)) return field && *field? 422: 400;
    if (streq (code, VDGX_E_UNKNOWN_MODEL)) return 422;
    if (streq (code, VDGX_E_NOT_FOUND) || streq (code, VDGX_E_EXPIRED)) return 404;
    if (streq (code, VDGX_E_QUEUE_FULL)) return 429;
    if (streq (code, VDGX_E_CONFLICT) || streq (code, VDGX_E_CANCELLED)) return 409;
    if (streq (code, VDGX_E_UNAVAILABLE)) return 503;
    if (streq (code, VDGX_E_TOO_LARGE)) return 413;
    if (streq (code, VDGX_E_FORBIDDEN)) return 403;
    if (streq (code, VDGX_E_OUTPUT_MISSING)) return 410;
    return 500;
}

//  Sends the HTTP error for a failed call i (timeout, or an error reply from the broker).
//  Returns true when call i failed (and *rc holds the result of sending the error).
static bool
s_call_failed (s_req_t *r, size_t i, enum MHD_Result *rc)
{
    if (r->failed || !r->q [i].reply) {
        *rc = s_send_error (r, 503, "unavailable", NULL, 1000, "%s",
                            r->fail_msg [0]? r->fail_msg: "the broker did not answer");
        return true;
    }
    //  Error replies are {ok: false, error}; decode them whatever the command.
    zframe_t *f = r->q [i].reply;
    vdgx_error_t e, derr;
    vdgx_error_init (&e);
    uint64_t retry = 0;
    if (vdgx_error_decode (&e, &retry, zframe_data (f), zframe_size (f), &derr) == 0) {
        int status = s_http_status_of (e.code, e.field);
        if (streq (e.code, VDGX_E_UNKNOWN_MODEL) && !e.field [0])
            snprintf (e.field, sizeof e.field, "model");
        if (strncmp (e.field, "request.", 8) == 0)
            memmove (e.field, e.field + 8, strlen (e.field + 8) + 1);
        //  A field the broker refused (e.g. beyond the model's limits) reads as the bridge's
        //  own field errors do.
        if (status == 422 && streq (e.code, VDGX_E_BAD_REQUEST))
            e.code = "invalid_field";
        //  The broker names width or height; the client may have sent one "WxH" field.
        if (r->size_field && (streq (e.field, "width") || streq (e.field, "height")))
            snprintf (e.field, sizeof e.field, "%s", r->size_field);
        if (r->image_field && streq (e.field, "image"))
            snprintf (e.field, sizeof e.field, "%s", r->image_field);
        if ((status == 429 || status == 503) && !retry)
            retry = 1000;
        *rc = s_send_error (r, status, e.code, e.field, (int64_t) retry, "%s", e.message);
        return true;
    }
    return false;
}

//  Decodes a job-service reply; on failure sends the error and returns -1.
static int
s_jobreply (s_req_t *r, size_t i, vdgx_jobreply_t *rep, vdgx_jobcmd_type_t cmd, enum MHD_Result *rc)
{
    vdgx_jobreply_init (rep, cmd);
    if (s_call_failed (r, i, rc))
        return -1;
    vdgx_error_t err;
    if (vdgx_jobreply_decode (rep, zframe_data (r->q [i].reply), zframe_size (r->q [i].reply), &err)) {
        *rc = s_send_error (r, 502, "protocol", NULL, 0, "malformed broker reply: %s", err.message);
        return -1;
    }
    return 0;
}

//  Decodes an mmi.* map reply as JSON; on failure sends the error and returns NULL.
static json_t *
s_mmireply (s_req_t *r, size_t i, enum MHD_Result *rc)
{
    if (s_call_failed (r, i, rc))
        return NULL;
    msgpack_unpacked up;
    vdgx_error_t err;
    if (vdgx_unpack (&up, zframe_data (r->q [i].reply), zframe_size (r->q [i].reply), &err)) {
        *rc = s_send_error (r, 502, "protocol", NULL, 0, "malformed broker reply");
        return NULL;
    }
    json_t *j = vdgx_mp_to_json (&up.data);
    msgpack_unpacked_destroy (&up);
    if (!json_is_object (j)) {
        json_decref (j);
        *rc = s_send_error (r, 502, "protocol", NULL, 0, "malformed broker reply");
        return NULL;
    }
    return j;
}

//  ---------------------------------------------------------------------------------------
//  JSON views of jobs

static json_t *
s_job_json (const vdgx_jobstatus_t *job)
{
    char *text = vdgx_client_job_json (job);
    json_t *j = text? json_loads (text, 0, NULL): NULL;
    free (text);
    return j? j: json_object ();
}

static const char *
s_openai_status (vdgx_job_state_t s)
{
    switch (s) {
        case VDGX_JOB_QUEUED: return "queued";
        case VDGX_JOB_RUNNING: return "in_progress";
        case VDGX_JOB_COMPLETED: return "completed";
        default: return "failed";
    }
}

static json_t *
s_video_json (const vdgx_jobstatus_t *job)
{
    json_t *v = json_object ();
    json_object_set_new (v, "id", json_string (job->id));
    json_object_set_new (v, "object", json_string ("video"));
    json_object_set_new (v, "model", json_string (job->model));
    json_object_set_new (v, "status", json_string (s_openai_status (job->state)));
    int progress = job->state == VDGX_JOB_COMPLETED? 100: (int) floor (job->percent);
    json_object_set_new (v, "progress", json_integer (progress < 0? 0: progress > 100? 100: progress));
    json_object_set_new (v, "created_at", json_integer ((json_int_t) job->created_at));
    json_object_set_new (v, "completed_at", job->finished_at > 0 && vdgx_job_state_is_final (job->state)
                                            ? json_integer ((json_int_t) job->finished_at): json_null ());
    json_object_set_new (v, "expires_at", json_null ());
    char buf [48];
    json_t *seconds = json_null (), *size = json_null ();
    if (job->has_result) {
        snprintf (buf, sizeof buf, "%g", job->result.seconds);
        seconds = json_string (buf);
        snprintf (buf, sizeof buf, "%ux%u", job->result.width, job->result.height);
        size = json_string (buf);
    }
    else
    if (job->has_request) {
        if (job->request.has_seconds) {
            snprintf (buf, sizeof buf, "%g", job->request.seconds);
            json_decref (seconds);
            seconds = json_string (buf);
        }
        if (job->request.width && job->request.height) {
            snprintf (buf, sizeof buf, "%ux%u", job->request.width, job->request.height);
            json_decref (size);
            size = json_string (buf);
        }
    }
    json_object_set_new (v, "seconds", seconds);
    json_object_set_new (v, "size", size);
    if (job->has_ready)         //  streaming: seconds downloadable now (GET .../content)
        json_object_set_new (v, "ready_seconds", json_real (job->ready.seconds));
    json_t *prompt = job->has_request && job->request.prompt? json_string (job->request.prompt): NULL;
    json_object_set_new (v, "prompt", prompt? prompt: json_null ());
    json_object_set_new (v, "remixed_from_video_id", json_null ());
    if (job->has_error) {
        json_t *e = json_object ();
        json_object_set_new (e, "code", json_string (job->error.code? job->error.code: "internal"));
        json_t *m = json_string (job->error.message);
        json_object_set_new (e, "message", m? m: json_string (""));
        json_object_set_new (v, "error", e);
    }
    else
        json_object_set_new (v, "error", json_null ());
    return v;
}

//  ---------------------------------------------------------------------------------------
//  Handlers that need no broker

//  The web UI's files (vdgx_ui.h): at /ui/..., and at / for browsers.
static enum MHD_Result
s_h_ui (s_req_t *r, const vdgx_ui_asset_t *asset)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer (asset->size, (void *) asset->data,
                                                                 MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header (resp, "Content-Type", asset->type);
    MHD_add_response_header (resp, "Content-Security-Policy", vdgx_ui_csp ());
    MHD_add_response_header (resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (resp, "X-Frame-Options", "DENY");
    if (r->route == R_ROOT)
        MHD_add_response_header (resp, "Vary", "Accept");
    return s_queue (r, 200, resp);
}

static enum MHD_Result
s_h_root (s_req_t *r)
{
    if (vdgx_ui_wants_html (MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "Accept")))
        return s_h_ui (r, vdgx_ui_find ("/"));
    json_t *o = json_pack ("{s:s, s:s, s:s, s:s}", "name", "VideosDGX REST bridge", "version",
                           S_VERSION, "openapi", "/openapi.json", "docs",
                           "POST /generate or POST /v1/videos; poll GET /jobs/{id} or GET /v1/videos/{id}");
    json_t *routes = json_array ();
    for (int i = 0; i < R_NONE; i++) {
        char line [96];
        snprintf (line, sizeof line, "%s %s", s_routes [i].allow, s_routes [i].label);
        json_array_append_new (routes, json_string (line));
    }
    json_object_set_new (o, "routes", routes);
    json_object_set_new (o, "auth", json_boolean (r->bridge->keys != NULL));
    return s_send_json (r, 200, o);
}

static enum MHD_Result
s_h_health (s_req_t *r)
{
    //  Liveness of the bridge itself: no broker round trip (that is /ready's job).
    static const char body [] = "{\"status\":\"ok\"}";
    struct MHD_Response *resp = MHD_create_response_from_buffer (sizeof body - 1, (void *) body,
                                                                 MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (resp, "Content-Type", "application/json");
    return s_queue (r, 200, resp);
}

static enum MHD_Result
s_h_openapi (s_req_t *r)
{
    const char *doc = vdgx_bridge_openapi ();
    struct MHD_Response *resp = MHD_create_response_from_buffer (strlen (doc), (void *) doc,
                                                                 MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (resp, "Content-Type", "application/json");
    return s_queue (r, 200, resp);
}

//  ---------------------------------------------------------------------------------------
//  Broker-backed handlers (step 0 queues calls, step 1.. reads replies)

static enum MHD_Result
s_h_job (s_req_t *r)
{
    char kind = r->route == R_VIDEO? 'v': 'j';
    if (r->step == 0) {
        char *text = s_cache_get (r->bridge, kind, r->owner, r->id);
        if (text) {
            atomic_fetch_add (&r->bridge->cache_hits, 1);
            return s_send_text (r, 200, "application/json", text);
        }
        s_call_job (r, VDGX_JOBCMD_STATUS, r->id);
        return s_go (r);
    }
    enum MHD_Result rc;
    vdgx_jobreply_t rep;
    if (s_jobreply (r, 0, &rep, VDGX_JOBCMD_STATUS, &rc)) {
        if (!r->failed && r->q [0].reply)
            s_cache_drop (r->bridge, r->owner, r->id);      //  the broker said no (deleted, expired)
    }
    else {
        json_t *j = r->route == R_VIDEO? s_video_json (&rep.job): s_job_json (&rep.job);
        char *text = json_dumps (j, JSON_COMPACT | JSON_REAL_PRECISION (15));
        json_decref (j);
        if (text && vdgx_job_state_is_final (rep.job.state))
            s_cache_put (r->bridge, kind, r->owner, r->id, text);
        rc = text? s_send_text (r, 200, "application/json", text): MHD_NO;
    }
    vdgx_jobreply_clear (&rep);
    return rc;
}

//  DELETE /v1/videos/{id} (cancels a running job first) and POST /jobs/{id}/cancel (a queued
//  job leaves the queue, a running one stops at its next step; 409 for one that already
//  ended otherwise): the deletion receipt, or the cancelled job.
static enum MHD_Result
s_h_job_cmd (s_req_t *r, vdgx_jobcmd_type_t type)
{
    if (r->step == 0) {
        s_call_job (r, type, r->id);
        return s_go (r);
    }
    enum MHD_Result rc;
    vdgx_jobreply_t rep;
    s_cache_drop (r->bridge, r->owner, r->id);
    if (s_jobreply (r, 0, &rep, type, &rc) == 0)
        rc = s_send_json (r, 200, type == VDGX_JOBCMD_CANCEL? s_job_json (&rep.job)
                                  : json_pack ("{s:s, s:s, s:b}", "id", rep.id, "object",
                                               "video.deleted", "deleted", 1));
    vdgx_jobreply_clear (&rep);
    return rc;
}

//  The body as JSON (the form's fields for multipart/urlencoded); sends 400 on bad JSON.
static json_t *
s_body_json (s_req_t *r, enum MHD_Result *rc)
{
    if (r->is_form) {
        //  Forms follow the JSON path's rules (vdgx_form.h): no repeated field, no NUL or
        //  other control byte, valid UTF-8.
        json_t *fields = NULL;
        vdgx_form_err_t ferr;
        const char *type = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "Content-Type");
        if (vdgx_form_parse (type, r->body, r->body_size, &fields, &ferr)) {
            *rc = s_send_error (r, 400, "invalid_form", ferr.field, 0, "%s", ferr.message);
            return NULL;
        }
        return fields;
    }
    json_error_t jerr;
    json_t *j = r->body_size? json_loadb (r->body, r->body_size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr): NULL;
    if (!j)
        *rc = s_send_error (r, 400, "invalid_json", NULL, 0, "the body is not valid JSON%s%s",
                            r->body_size? ": ": "", r->body_size? jerr.text: " (empty body)");
    return j;
}

static enum MHD_Result
s_h_submit (s_req_t *r)
{
    enum MHD_Result rc = MHD_NO;
    if (r->step == 0) {
        json_t *body = s_body_json (r, &rc);
        if (!body)
            return rc;
        vdgx_apierr_t err;
        //  The webhook fields are the bridge's, not the broker's: taken out first.
        int wrc = vdgx_webhook_take (body, r->is_form, &r->webhook, &err);
        if (wrc < 0) {
            json_decref (body);
            return s_send_apierr (r, &err);
        }
        if (wrc > 0 && !r->bridge->webhooks) {
            json_decref (body);
            return s_send_error (r, 422, "unsupported", "webhook", 0, "this bridge sends no webhooks:"
                                 " start it with a signing secret (--webhook-secret-file FILE)");
        }
        if (wrc > 0 && vdgx_webhook_check (r->bridge->webhooks, &r->webhook, &err)) {
            json_decref (body);
            return s_send_apierr (r, &err);
        }
        vdgx_genreq_init (&r->req);
        r->has_req = true;
        int prc = vdgx_apireq_parse_gated (&r->req, body, r->route == R_VIDEOS? VDGX_APIREQ_OPENAI
                                                                               : VDGX_APIREQ_NATIVE,
                                           r->is_form, r->bridge->default_model, r->bridge->decodes,
                                           &err);
        r->size_field = json_object_get (body, "size")? "size"
                      : json_object_get (body, "resolution")? "resolution": NULL;
        r->image_field = json_object_get (body, "input_reference")
                         || json_object_get (body, "input_reference[image_url]")? "input_reference": NULL;
        json_decref (body);
        if (prc)
            return s_send_apierr (r, &err);
        //  A retried POST with the same key makes one job (the broker dedupes on it).
        const char *idem = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "Idempotency-Key");
        if (idem && !r->req.idempotency_key [0]) {
            size_t n = strlen (idem);
            bool ok = n >= 1 && n <= VDGX_IDEMKEY_MAX;
            for (size_t i = 0; ok && i < n; i++)
                ok = idem [i] >= 0x20 && idem [i] <= 0x7e;
            if (!ok)
                return s_send_error (r, 400, "invalid_header", "Idempotency-Key", 0,
                                     "Idempotency-Key must be 1..128 printable ASCII characters");
            snprintf (r->req.idempotency_key, sizeof r->req.idempotency_key, "%s", idem);
        }
        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = VDGX_JOBCMD_SUBMIT;
        vdgx_genreq_copy (&cmd.request, &r->req);
        s_call_jobcmd (r, &cmd);
        return s_go (r);
    }
    if (r->step == 1) {
        vdgx_jobreply_t rep;
        if (s_jobreply (r, 0, &rep, VDGX_JOBCMD_SUBMIT, &rc)) {
            vdgx_jobreply_clear (&rep);
            return rc;
        }
        snprintf (r->job_id, sizeof r->job_id, "%s", rep.id);
        if (*r->webhook.url)
            vdgx_webhook_add (r->bridge->webhooks, rep.id, &r->webhook);
        char location [128];
        if (r->route == R_GENERATE) {
            snprintf (location, sizeof location, "/jobs/%s", rep.id);
            json_t *o = json_pack ("{s:s, s:s, s:b, s:i, s:s, s:s, s:s}", "id", rep.id, "state",
                                   vdgx_job_state_name (rep.state), "cached", rep.cached,
                                   "queue_position", (json_int_t) rep.queue_position, "model",
                                   r->req.model, "status_url", location, "events_url", "");
            char events [140];
            snprintf (events, sizeof events, "/jobs/%s/events", rep.id);
            json_object_set_new (o, "events_url", json_string (events));
            vdgx_jobreply_clear (&rep);
            char *text = json_dumps (o, JSON_COMPACT | JSON_REAL_PRECISION (15));
            json_decref (o);
            struct MHD_Response *resp = MHD_create_response_from_buffer (strlen (text), text,
                                                                         MHD_RESPMEM_MUST_FREE);
            MHD_add_response_header (resp, "Content-Type", "application/json");
            MHD_add_response_header (resp, "Location", location);
            return s_queue (r, 202, resp);
        }
        vdgx_jobreply_clear (&rep);
        //  OpenAI answers create with the video object: read it back for created_at etc.
        s_calls_reset (r);
        s_call_job (r, VDGX_JOBCMD_STATUS, r->job_id);
        return s_go (r);
    }
    vdgx_jobreply_t rep;
    if (s_jobreply (r, 0, &rep, VDGX_JOBCMD_STATUS, &rc) == 0) {
        if (!rep.job.has_request) {
            rep.job.has_request = true;
            vdgx_genreq_copy (&rep.job.request, &r->req);
        }
        rc = s_send_json (r, 200, s_video_json (&rep.job));
    }
    vdgx_jobreply_clear (&rep);
    return rc;
}

//  POST /unload {"model"} and POST /drain {"model"?, "host"?}: commands to a model's (or a
//  host's) workers, answered with how many were told. unload: the model is freed when idle;
//  drain: each finishes its job, takes no other and leaves.
static enum MHD_Result
s_h_workers_cmd (s_req_t *r, vdgx_jobcmd_type_t type)
{
    enum MHD_Result rc = MHD_NO;
    bool drain = type == VDGX_JOBCMD_DRAIN;
    if (r->step == 0) {
        json_t *body = s_body_json (r, &rc);
        if (!body)
            return rc;
        json_t *model = json_is_object (body)? json_object_get (body, "model"): NULL;
        json_t *host = json_is_object (body) && drain? json_object_get (body, "host"): NULL;
        const char *h = json_string_value (host);
        bool host_ok = h && *h && strlen (h) <= VDGX_HOST_MAX;
        for (const char *c = h; host_ok && *c; c++)
            host_ok = *c >= 0x20 && *c <= 0x7e;
        if (!json_is_object (body))
            rc = s_send_error (r, 400, "invalid_body", NULL, 0, "the body must be a JSON object");
        else
        if (json_object_size (body) != (size_t) (model != NULL) + (host != NULL))
            rc = s_send_error (r, 422, "unknown_field", NULL, 0, "%s", drain? "drain takes only model and host"
                                                                           : "unload takes only model");
        else
        if (!model && !host)
            rc = s_send_error (r, 422, "missing_field", "model", 0, "%s", drain?
                               "give model, host or both (not every worker at once)": "model is required");
        else
        if (model && (!json_is_string (model) || !vdgx_model_name_valid (json_string_value (model))))
            rc = s_send_error (r, 422, "invalid_field", "model", 0, "model names are 1..64 bytes of [a-z0-9._-]");
        else
        if (host && !host_ok)
            rc = s_send_error (r, 422, "invalid_field", "host", 0, "host names are 1..255 printable characters");
        else {
            vdgx_jobcmd_t cmd;
            vdgx_jobcmd_init (&cmd);
            cmd.cmd = type;
            snprintf (cmd.model, sizeof cmd.model, "%s", model? json_string_value (model): "");
            snprintf (cmd.host, sizeof cmd.host, "%s", h? h: "");
            snprintf (r->job_id, sizeof r->job_id, "%s", cmd.model);
            s_call_jobcmd (r, &cmd);
            json_decref (body);
            return s_go (r);
        }
        json_decref (body);
        return rc;
    }
    vdgx_jobreply_t rep;
    if (s_jobreply (r, 0, &rep, type, &rc) == 0)
        rc = s_send_json (r, 200, drain? json_pack ("{s:i}", "workers", (json_int_t) rep.workers)
                                       : json_pack ("{s:s, s:i}", "model", r->job_id, "workers",
                                                    (json_int_t) rep.workers));
    vdgx_jobreply_clear (&rep);
    return rc;
}

static enum MHD_Result
s_h_services (s_req_t *r)
{
    if (r->step == 0) {
        s_call (r, "mmi.services", s_empty_map ());
        if (r->route == R_READY)
            s_call (r, "mmi.health", s_empty_map ());
        return s_go (r);
    }
    enum MHD_Result rc = MHD_NO;
    json_t *j = s_mmireply (r, 0, &rc);
    if (!j) {
        //  Not ready when the broker does not answer.
        return rc;
    }
    //  Nor while the job store cannot write (submits would get 503).
    const char *store = "ok";
    if (r->route == R_READY) {
        json_t *health = s_mmireply (r, 1, &rc);
        if (!health) {
            json_decref (j);
            return rc;
        }
        if (!json_is_true (json_object_get (json_object_get (health, "store"), "ok")))
            store = "degraded";
        json_decref (health);
    }
    json_t *services = json_object_get (j, "services");
    json_t *models = json_object ();
    json_int_t queued = 0, running = 0;
    bool any_ready = false;
    json_t *list = json_array ();
    size_t i;
    json_t *s;
    json_array_foreach (services, i, s) {
        const char *name = json_string_value (json_object_get (s, "name"));
        if (!name)
            continue;
        json_t *states = json_object_get (s, "states");
        json_int_t warm = json_integer_value (json_object_get (states, "warm"));
        json_int_t busy = json_integer_value (json_object_get (states, "busy"));
        json_int_t q = json_integer_value (json_object_get (s, "queued"));
        json_int_t run = json_integer_value (json_object_get (s, "running"));
        queued += q;
        running += run;
        any_ready = any_ready || warm > 0;
        json_object_set_new (models, name, json_pack ("{s:b, s:I, s:I, s:I, s:O}", "ready", warm > 0,
                                                      "warm", warm, "busy", busy, "workers",
                                                      json_integer_value (json_object_get (s, "workers")),
                                                      "states", states? states: json_null ()));
        json_array_append_new (list, json_pack ("{s:s, s:I, s:I, s:I}", "model", name, "queued", q,
                                                "running", run, "workers",
                                                json_integer_value (json_object_get (s, "workers"))));
    }
    json_t *out;
    int status = 200;
    if (r->route == R_READY) {
        bool ready = any_ready && streq (store, "ok");
        out = json_pack ("{s:b, s:s, s:o}", "ready", ready, "store", store, "models", models);
        json_decref (list);
        status = ready? 200: 503;
    }
    else {
        out = json_pack ("{s:I, s:I, s:o}", "queued", queued, "running", running, "models", list);
        json_decref (models);
    }
    json_decref (j);
    return s_send_json (r, status, out);
}

//  GET /v1/models (OpenAI's list: {object: list, data: [{id, object: model, created,
//  owned_by}]}, plus workers and ready per model) and GET /v1/models/{id}.
static json_t *
s_model_json (vdgx_bridge_t *self, json_t *m)
{
    json_t *states = json_object_get (m, "states");
    json_int_t warm = json_integer_value (json_object_get (states, "warm"));
    json_int_t busy = json_integer_value (json_object_get (states, "busy"));
    const char *name = json_string_value (json_object_get (m, "name"));
    return json_pack ("{s:s, s:s, s:I, s:s, s:I, s:b, s:b}", "id", name? name: "", "object", "model",
                      "created", (json_int_t) self->started_wall, "owned_by", "videosdgx", "workers",
                      json_integer_value (json_object_get (m, "workers")), "ready", warm + busy > 0,
                      "default", *self->default_model && name && streq (name, self->default_model));
}

static enum MHD_Result
s_h_models (s_req_t *r)
{
    if (r->step == 0) {
        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = VDGX_JOBCMD_MODELS;
        s_call_jobcmd (r, &cmd);
        return s_go (r);
    }
    enum MHD_Result rc = MHD_NO;
    json_t *models = s_mmireply (r, 0, &rc);
    if (!models)
        return rc;
    json_t *data = json_array ();
    size_t i;
    json_t *m;
    json_array_foreach (json_object_get (models, "models"), i, m) {
        const char *name = json_string_value (json_object_get (m, "name"));
        if (!name)
            continue;
        if (r->route == R_MODEL && streq (name, r->id)) {
            json_t *one = s_model_json (r->bridge, m);
            json_decref (models);
            json_decref (data);
            return s_send_json (r, 200, one);
        }
        json_array_append_new (data, s_model_json (r->bridge, m));
    }
    json_decref (models);
    if (r->route == R_MODEL) {
        json_decref (data);
        return s_send_error (r, 404, "model_not_found", "model", 0, "no model '%s'", r->id);
    }
    return s_send_json (r, 200, json_pack ("{s:s, s:o}", "object", "list", "data", data));
}

static enum MHD_Result
s_h_info (s_req_t *r)
{
    if (r->step == 0) {
        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = VDGX_JOBCMD_MODELS;
        s_call_jobcmd (r, &cmd);
        s_call (r, "mmi.workers", s_empty_map ());
        s_call (r, "mmi.health", s_empty_map ());
        return s_go (r);
    }
    enum MHD_Result rc = MHD_NO;
    json_t *models = s_mmireply (r, 0, &rc);
    if (!models)
        return rc;
    json_t *workers = s_mmireply (r, 1, &rc);
    if (!workers) {
        json_decref (models);
        return rc;
    }
    json_t *health = s_mmireply (r, 2, &rc);
    if (!health) {
        json_decref (models);
        json_decref (workers);
        return rc;
    }
    json_object_del (health, "ok");
    json_t *ws = json_object_get (workers, "workers");
    json_t *out = json_object ();
    json_object_set_new (out, "bridge", json_pack ("{s:s, s:f, s:b}", "version", S_VERSION,
                                                   "uptime_s", (zclock_mono () - r->bridge->started) / 1000.0,
                                                   "auth", r->bridge->keys != NULL));
    json_object_set (out, "broker", health);
    //  The store's state at the top, where an operator looks first: "ok" or "degraded".
    json_t *store = json_object_get (health, "store");
    json_object_set_new (out, "store", json_string (json_is_true (json_object_get (store, "ok"))?
                                                    "ok": "degraded"));
    json_object_set (out, "models", json_object_get (models, "models"));
    //  Worker hosts are for operators: a user key sees the models, not the machines.
    json_object_set_new (out, "workers", ws && r->admin? json_incref (ws): json_array ());
    //  Memory in one place: per model, the sum over its workers.
    json_t *mem = json_object ();
    size_t i;
    json_t *w;
    json_array_foreach (ws, i, w) {
        const char *svc = json_string_value (json_object_get (w, "service"));
        if (!svc)
            continue;
        json_t *m = json_object_get (mem, svc);
        if (!m) {
            m = json_pack ("{s:I, s:I, s:I}", "rss_bytes", (json_int_t) 0, "peak_bytes", (json_int_t) 0,
                           "model_bytes", (json_int_t) 0);
            json_object_set_new (mem, svc, m);
        }
        const char *keys [] = { "rss_bytes", "peak_bytes", "model_bytes" };
        for (int k = 0; k < 3; k++)
            json_object_set_new (m, keys [k], json_integer (json_integer_value (json_object_get (m, keys [k]))
                                                            + json_integer_value (json_object_get (w, keys [k]))));
    }
    json_object_set_new (out, "memory", mem);
    json_decref (models);
    json_decref (workers);
    json_decref (health);
    return s_send_json (r, 200, out);
}

static void
s_bridge_counters (vdgx_bridge_t *self, vdgx_promtext_t *p)
{
    char key [160];
    for (int route = 0; route < R_COUNT; route++)
        for (int c = 0; c <= S_NCODES; c++) {
            uint64_t v = atomic_load (&self->http [route][c]);
            if (!v)
                continue;
            char code [8];
            if (c < S_NCODES)
                snprintf (code, sizeof code, "%d", s_codes [c]);
            else
                snprintf (code, sizeof code, "other");
            snprintf (key, sizeof key, "vdgx_bridge_http_requests_total{route=\"%s\",code=\"%s\"}",
                      s_routes [route].label, code);
            vdgx_promtext_add (p, VDGX_PROM_COUNTER, key, (double) v);
        }
    //  Requests the front door refused before libmicrohttpd saw them (route "front").
    static const int front_codes [] = { 400, 413, 414, 431, 501, 503, 505 };
    for (size_t i = 0; self->front && i < sizeof front_codes / sizeof front_codes [0]; i++) {
        uint64_t v = vdgx_front_refused (self->front, front_codes [i]);
        if (!v)
            continue;
        snprintf (key, sizeof key, "vdgx_bridge_http_requests_total{route=\"front\",code=\"%d\"}", front_codes [i]);
        vdgx_promtext_add (p, VDGX_PROM_COUNTER, key, (double) v);
    }
    vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_broker_requests_total{outcome=\"ok\"}",
                       (double) atomic_load (&self->broker_ok));
    vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_broker_requests_total{outcome=\"failed\"}",
                       (double) atomic_load (&self->broker_failed));
    vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_broker_requests_total{outcome=\"timeout\"}",
                       (double) atomic_load (&self->broker_timeouts));
    vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_status_cache_hits_total",
                       (double) atomic_load (&self->cache_hits));
    vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_bridge_inflight_requests", atomic_load (&self->inflight));
    vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_bridge_sse_streams", atomic_load (&self->sse_streams));
    vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_image_decodes_total{outcome=\"decoded\"}",
                       (double) vdgx_gate_entered (self->decodes));
    vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_image_decodes_total{outcome=\"busy\"}",
                       (double) vdgx_gate_refused (self->decodes));
    vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_image_decodes_waited_total",
                       (double) vdgx_gate_waited (self->decodes));
    vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_bridge_image_decodes_active", vdgx_gate_busy (self->decodes));
    if (self->webhooks) {
        uint64_t delivered, retried, failed;
        vdgx_webhook_counts (self->webhooks, &delivered, &retried, &failed);
        vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_webhooks_total{outcome=\"delivered\"}",
                           (double) delivered);
        vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_webhooks_total{outcome=\"retried\"}",
                           (double) retried);
        vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_webhooks_total{outcome=\"failed\"}",
                           (double) failed);
    }
}

static enum MHD_Result
s_h_metrics (s_req_t *r)
{
    if (r->step == 0) {
        s_call (r, "mmi.metrics", s_empty_map ());
        s_call (r, "mmi.workers", s_empty_map ());
        return s_go (r);
    }
    vdgx_promtext_t *p = vdgx_promtext_new ();
    //  The bridge's own figures are served even when the broker is away (up = 0).
    bool up = !r->failed && r->q [0].reply
              && vdgx_promtext_add_broker_metrics (p, zframe_data (r->q [0].reply),
                                                   zframe_size (r->q [0].reply)) == 0;
    if (up && r->q [1].reply)
        vdgx_promtext_add_broker_workers (p, zframe_data (r->q [1].reply), zframe_size (r->q [1].reply));
    size_t dropped = vdgx_promtext_dropped (p);
    s_bridge_counters (r->bridge, p);
    vdgx_promtext_add (p, VDGX_PROM_GAUGE, "vdgx_bridge_up", up? 1: 0);
    vdgx_promtext_add (p, VDGX_PROM_COUNTER, "vdgx_bridge_metrics_dropped_total", (double) dropped);
    char *text = vdgx_promtext_render (p);
    vdgx_promtext_destroy (&p);
    if (!text)
        return MHD_NO;
    return s_send_text (r, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

//  GET /v1/videos: after, limit (1..100, default 20), order (asc|desc, default desc).
//  The broker lists oldest first with an `after` cursor. Oldest first maps onto it directly;
//  newest first walks every page (1000 jobs per round trip) keeping a sliding window of the
//  limit + 1 newest jobs before the cursor, so memory stays bounded whatever the store holds.
static enum MHD_Result
s_h_videos_list (s_req_t *r)
{
    const char *after = MHD_lookup_connection_value (r->conn, MHD_GET_ARGUMENT_KIND, "after");
    const char *limit_s = MHD_lookup_connection_value (r->conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *order = MHD_lookup_connection_value (r->conn, MHD_GET_ARGUMENT_KIND, "order");
    long limit = 20;
    if (limit_s) {
        char *end = NULL;
        limit = strtol (limit_s, &end, 10);
        if (!*limit_s || *end || limit < 1 || limit > 100)
            return s_send_error (r, 400, "invalid_query", "limit", 0, "limit must be an integer from 1 to 100");
    }
    if (order && !streq (order, "asc") && !streq (order, "desc"))
        return s_send_error (r, 400, "invalid_query", "order", 0, "order must be asc or desc");
    if (after && *after && !vdgx_job_id_valid (after))
        return s_send_error (r, 400, "invalid_query", "after", 0, "after must be a video id");
    if (after && !*after)
        after = NULL;
    bool desc = !order || streq (order, "desc");
    if (r->step == 0) {
        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = VDGX_JOBCMD_LIST;
        cmd.limit = desc? VDGX_LIST_LIMIT_MAX: (uint32_t) limit;
        if (!desc && after)
            snprintf (cmd.after, sizeof cmd.after, "%s", after);
        if (desc)
            r->win = json_array ();
        s_call_jobcmd (r, &cmd);
        return s_go (r);
    }
    enum MHD_Result rc;
    vdgx_jobreply_t rep;
    if (s_jobreply (r, 0, &rep, VDGX_JOBCMD_LIST, &rc)) {
        vdgx_jobreply_clear (&rep);
        return rc;
    }
    json_t *data = json_array ();
    bool has_more = rep.has_more;
    if (desc) {
        bool found = false;
        for (size_t i = 0; i < rep.njobs && !found; i++) {
            if (after && streq (rep.jobs [i].id, after)) {
                found = true;
                break;
            }
            json_array_append_new (r->win, s_video_json (&rep.jobs [i]));
            if (json_array_size (r->win) > (size_t) limit) {
                json_array_remove (r->win, 0);
                r->win_more = true;
            }
        }
        if (!found && rep.has_more && rep.njobs > 0 && r->step < 100000) {
            //  Next page after the last job of this one.
            vdgx_jobcmd_t cmd;
            vdgx_jobcmd_init (&cmd);
            cmd.cmd = VDGX_JOBCMD_LIST;
            cmd.limit = VDGX_LIST_LIMIT_MAX;
            snprintf (cmd.after, sizeof cmd.after, "%s", rep.jobs [rep.njobs - 1].id);
            vdgx_jobreply_clear (&rep);
            json_decref (data);
            s_calls_reset (r);
            s_call_jobcmd (r, &cmd);
            return s_go (r);
        }
        if (after && !found)
            json_array_clear (r->win);  //  an unknown cursor gives an empty page
        for (size_t i = json_array_size (r->win); i-- > 0;)
            json_array_append (data, json_array_get (r->win, i));
        has_more = r->win_more && !(after && !found);
    }
    else
        for (size_t i = 0; i < rep.njobs; i++)
            json_array_append_new (data, s_video_json (&rep.jobs [i]));
    size_t count = json_array_size (data);
    json_t *out = json_object ();
    json_object_set_new (out, "object", json_string ("list"));
    json_object_set_new (out, "data", data);
    json_object_set_new (out, "first_id", count? json_incref (json_object_get (json_array_get (data, 0), "id")): json_null ());
    json_object_set_new (out, "last_id", count? json_incref (json_object_get (json_array_get (data, count - 1), "id")): json_null ());
    json_object_set_new (out, "has_more", json_boolean (has_more));
    vdgx_jobreply_clear (&rep);
    return s_send_json (r, 200, out);
}

//  ---------------------------------------------------------------------------------------
//  Download: status first, then the range streamed in chunks fetched on demand

static ssize_t
s_dl_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
    s_req_t *r = (s_req_t *) cls;
    uint64_t off = r->dl_start + pos;
    if (off > r->dl_end)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (r->dl_fetching) {
        //  Resumed: the chunk (or a failure) is in q [0].
        r->dl_fetching = false;
        vdgx_jobreply_t rep;
        vdgx_jobreply_init (&rep, VDGX_JOBCMD_RESULT);
        vdgx_error_t err;
        vdgx_error_init (&err);
        zframe_t *f = r->q [0].reply;
        if (r->failed || !f || vdgx_jobreply_decode (&rep, zframe_data (f), zframe_size (f), &err)
        ||  !rep.ok || rep.offset != off || rep.data_size == 0
        ||  (r->dl_partial? rep.size < r->dl_end + 1 || (rep.attempt && rep.attempt != r->dl_attempt)
                          : rep.size != r->dl_size)) {
            vdgx_log_warn ("download.failed", "id=%s offset=%" PRIu64 " ok=%d size=%" PRIu64 " want=%" PRIu64 " attempt=%u/%u error=\"%s\" decode=\"%s: %s\"", r->id, off, rep.ok, rep.size, r->dl_size, rep.attempt, r->dl_attempt, rep.ok? "": rep.error.message, err.field, err.message);
            r->dl_error = true;
        }
        else {
            free (r->dl_buf);
            r->dl_buf = rep.data;           //  take the buffer
            r->dl_buf_len = rep.data_size;
            r->dl_buf_off = rep.offset;
            rep.data = NULL;
            rep.data_size = 0;
        }
        vdgx_jobreply_clear (&rep);
        s_calls_reset (r);
    }
    if (r->dl_error)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (r->dl_buf && off >= r->dl_buf_off && off < r->dl_buf_off + r->dl_buf_len) {
        size_t n = (size_t) (r->dl_buf_off + r->dl_buf_len - off);
        uint64_t left = r->dl_end + 1 - off;
        if (n > left)
            n = (size_t) left;
        if (n > max)
            n = max;
        memcpy (buf, r->dl_buf + (off - r->dl_buf_off), n);
        return (ssize_t) n;
    }
    //  Fetch the next chunk and wait for it without holding a thread.
    free (r->dl_buf);
    r->dl_buf = NULL;
    r->dl_buf_len = 0;
    s_calls_reset (r);
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_RESULT;
    snprintf (cmd.id, sizeof cmd.id, "%s", r->id);
    cmd.offset = off;
    uint64_t left = r->dl_end + 1 - off;
    uint64_t chunk = r->bridge->cfg.chunk_bytes;
    cmd.length = (uint32_t) (left < chunk? left: chunk);
    s_call_jobcmd (r, &cmd);
    r->dl_fetching = true;
    r->pending = r->nq;
    atomic_fetch_add (&r->bridge->inflight, 1);
    MHD_suspend_connection (r->conn);
    if (s_push (r->bridge, "REQ", r)) {
        atomic_fetch_sub (&r->bridge->inflight, 1);
        r->dl_fetching = false;
        r->dl_error = true;
        vdgx_front_resume (r->bridge->front, r->conn);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return 0;
}

//  Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against size.
//  Returns 1 (range set), 0 (no usable Range header: send everything), -1 (unsatisfiable).
static int
s_parse_range (const char *h, uint64_t size, uint64_t *start, uint64_t *end)
{
    if (!h || strncmp (h, "bytes=", 6) != 0 || strchr (h, ','))
        return 0;           //  other units or several ranges: a full 200 is allowed
    const char *p = h + 6;
    while (*p == ' ')
        p++;
    char *e = NULL;
    if (*p == '-') {
        if (p [1] < '0' || p [1] > '9')
            return 0;
        unsigned long long n = strtoull (p + 1, &e, 10);
        if (*e)
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *start = n >= size? 0: size - n;
        *end = size - 1;
        return 1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    unsigned long long a = strtoull (p, &e, 10);
    if (*e != '-')
        return 0;
    const char *q = e + 1;
    unsigned long long b = size? size - 1: 0;
    if (*q) {
        if (*q < '0' || *q > '9')
            return 0;
        b = strtoull (q, &e, 10);
        if (*e)
            return 0;
        if (b < a)
            return 0;       //  invalid syntax: ignore the header
        if (b >= size)
            b = size - 1;
    }
    if (a >= size)
        return -1;
    *start = a;
    *end = b;
    return 1;
}

//  variant=thumbnail: the first frame of the video's first chunk as JPEG. Decoding and
//  encoding take milliseconds (5 at 832x480, 11 at 1280x720 on one core): done on the thumbs
//  thread while the connection is suspended, so an HTTP thread never stalls its other
//  connections on it (by default there is one HTTP thread on a small machine).

static void
s_thumb_make (s_req_t *r)
{
    r->thumb_err [0] = 0;
    if (vdgx_thumb_jpeg (r->thumb_in, r->thumb_in_size, 512, &r->thumb_jpeg, &r->thumb_size,
                         r->thumb_err, sizeof r->thumb_err) && !r->thumb_err [0])
        snprintf (r->thumb_err, sizeof r->thumb_err, "thumbnail failed");
    free (r->thumb_in);
    r->thumb_in = NULL;
}

//  The thumbs thread: "THUMB" r (r's connection is suspended) -> makes r's thumbnail and
//  resumes it. Everything queued before $TERM is answered.
static void
s_thumbs_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_signal (pipe, 0);
    while (true) {
        char *cmd = NULL;
        void *p = NULL;
        if (zsock_recv (pipe, "sp", &cmd, &p) != 0 || !cmd || streq (cmd, "$TERM")) {
            zstr_free (&cmd);
            break;
        }
        s_req_t *r = (s_req_t *) p;
        s_thumb_make (r);
        zstr_free (&cmd);
        atomic_fetch_sub (&r->bridge->inflight, 1);
        vdgx_front_resume (r->bridge->front, r->conn);
    }
}

//  Step 2: hands the chunk to the thumbs thread (or, when it is gone, makes it here).
static enum MHD_Result
s_thumb_start (s_req_t *r)
{
    enum MHD_Result rc;
    vdgx_jobreply_t rep;
    if (s_jobreply (r, 0, &rep, VDGX_JOBCMD_RESULT, &rc)) {
        vdgx_jobreply_clear (&rep);
        return rc;
    }
    r->thumb_in = rep.data;         //  taken over
    r->thumb_in_size = rep.data_size;
    rep.data = NULL;
    rep.data_size = 0;
    vdgx_jobreply_clear (&rep);
    s_calls_reset (r);
    r->step++;
    atomic_fetch_add (&r->bridge->inflight, 1);
    MHD_suspend_connection (r->conn);
    int pushed = -1;
    pthread_mutex_lock (&r->bridge->pipe_lock);
    if (r->bridge->thumbs_alive)
        pushed = zsock_send (r->bridge->thumbs, "sp", "THUMB", (void *) r);
    pthread_mutex_unlock (&r->bridge->pipe_lock);
    if (pushed != 0) {
        s_thumb_make (r);
        atomic_fetch_sub (&r->bridge->inflight, 1);
        vdgx_front_resume (r->bridge->front, r->conn);
    }
    return MHD_YES;
}

//  Step 3: the answer.
static enum MHD_Result
s_thumb_reply (s_req_t *r)
{
    if (!r->thumb_jpeg)
        return s_send_error (r, 500, "internal", "variant", 0, "no thumbnail: %s", r->thumb_err);
    struct MHD_Response *resp = MHD_create_response_from_buffer (r->thumb_size, r->thumb_jpeg,
                                                                 MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->thumb_jpeg = NULL;           //  the response frees it
    char etag [40], disp [128];
    snprintf (etag, sizeof etag, "\"%.16s-thumb\"", r->job_id);
    snprintf (disp, sizeof disp, "inline; filename=\"%s.jpg\"", r->id);
    MHD_add_response_header (resp, "Content-Type", "image/jpeg");
    MHD_add_response_header (resp, "ETag", etag);
    MHD_add_response_header (resp, "Content-Disposition", disp);
    return s_queue (r, 200, resp);
}

static enum MHD_Result
s_h_download (s_req_t *r)
{
    if (r->step == 0) {
        if (r->route == R_VIDEO_CONTENT) {
            const char *variant = MHD_lookup_connection_value (r->conn, MHD_GET_ARGUMENT_KIND, "variant");
            r->thumb = variant && streq (variant, "thumbnail");
            if (variant && !streq (variant, "video") && !r->thumb)
                return s_send_error (r, 400, "invalid_query", "variant", 0, "variant must be video or thumbnail");
        }
        s_call_job (r, VDGX_JOBCMD_STATUS, r->id);
        return s_go (r);
    }
    enum MHD_Result rc;
    vdgx_jobreply_t rep;
    if (r->step == 2)
        return s_thumb_start (r);
    if (r->step == 3)
        return s_thumb_reply (r);
    if (s_jobreply (r, 0, &rep, VDGX_JOBCMD_STATUS, &rc)) {
        vdgx_jobreply_clear (&rep);
        return rc;
    }
    s_calls_reset (r);
    if (r->thumb && rep.job.state == VDGX_JOB_COMPLETED && rep.job.has_result) {
        //  The index and first frames are at the start (+faststart): one read is enough.
        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = VDGX_JOBCMD_RESULT;
        snprintf (cmd.id, sizeof cmd.id, "%s", r->id);
        cmd.length = (uint32_t) (rep.job.result.size < VDGX_RESULT_READ_MAX? rep.job.result.size: VDGX_RESULT_READ_MAX);
        snprintf (r->job_id, sizeof r->job_id, "%.16s", rep.job.result.sha256);
        vdgx_jobreply_clear (&rep);
        if (cmd.length == 0) {
            vdgx_jobcmd_clear (&cmd);
            return s_send_error (r, 500, "internal", NULL, 0, "the video is empty");
        }
        s_call_jobcmd (r, &cmd);
        return s_go (r);
    }
    if (rep.job.has_error && streq (rep.job.error.code, VDGX_E_OUTPUT_MISSING)) {
        rc = s_send_error (r, 410, VDGX_E_OUTPUT_MISSING, NULL, 0, "%s", rep.job.error.message);
        vdgx_jobreply_clear (&rep);
        return rc;
    }
    //  A streaming job serves the part that is ready while it runs (fragmented MP4: every
    //  ready prefix plays). Its ETag names the attempt and the size, so a cache or a resumed
    //  Range request never mixes two prefixes.
    bool partial = rep.job.state == VDGX_JOB_RUNNING && rep.job.has_ready && !r->thumb;
    if (!partial && (rep.job.state != VDGX_JOB_COMPLETED || !rep.job.has_result)) {
        rc = s_send_error (r, 409, "conflict", NULL, 0, "the job is %s, not completed%s",
                           vdgx_job_state_name (rep.job.state),
                           rep.job.state == VDGX_JOB_RUNNING? " (no part of it is ready yet)": "");
        vdgx_jobreply_clear (&rep);
        return rc;
    }
    uint64_t size = partial? rep.job.ready.bytes: rep.job.result.size;
    char etag [72], mime [VDGX_MIME_MAX + 1], ready [32] = "";
    if (partial) {
        snprintf (etag, sizeof etag, "\"partial-%u-%" PRIu64 "\"", rep.job.attempt, size);
        snprintf (mime, sizeof mime, "video/mp4");
        snprintf (ready, sizeof ready, "%.3f", rep.job.ready.seconds);
        r->dl_partial = true;
        r->dl_attempt = rep.job.attempt;
    }
    else {
        snprintf (etag, sizeof etag, "\"%s\"", rep.job.result.sha256);
        snprintf (mime, sizeof mime, "%s", rep.job.result.mime);
    }
    vdgx_jobreply_clear (&rep);
    const char *inm = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm && (strstr (inm, etag) || streq (inm, "*"))) {
        struct MHD_Response *resp = MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header (resp, "ETag", etag);
        return s_queue (r, 304, resp);
    }
    const char *range = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "Range");
    const char *if_range = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "If-Range");
    if (if_range && !streq (if_range, etag))
        range = NULL;       //  the client's copy is another version: send it all
    uint64_t start = 0, end = size - 1;
    int pr = s_parse_range (range, size, &start, &end);
    if (pr < 0) {
        char cr [64];
        snprintf (cr, sizeof cr, "bytes */%" PRIu64, size);
        char *text = strdup ("{\"error\":{\"code\":\"range_not_satisfiable\",\"message\":\"the range is outside the video\"}}");
        struct MHD_Response *resp = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header (resp, "Content-Range", cr);
        MHD_add_response_header (resp, "Content-Type", "application/json");
        return s_queue (r, 416, resp);
    }
    r->dl_size = size;
    r->dl_start = start;
    r->dl_end = end;
    struct MHD_Response *resp = MHD_create_response_from_callback (end - start + 1, 64 * 1024,
                                                                   s_dl_reader, r, NULL);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header (resp, "Content-Type", mime);
    MHD_add_response_header (resp, "Accept-Ranges", "bytes");
    MHD_add_response_header (resp, "ETag", etag);
    if (partial) {
        MHD_add_response_header (resp, "Cache-Control", "no-store");
        MHD_add_response_header (resp, "X-Video-Partial", "true");
        MHD_add_response_header (resp, "X-Video-Ready-Seconds", ready);
    }
    char disp [128];
    snprintf (disp, sizeof disp, "attachment; filename=\"%s.mp4\"", r->id);
    MHD_add_response_header (resp, "Content-Disposition", disp);
    if (pr > 0) {
        char cr [96];
        snprintf (cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, end, size);
        MHD_add_response_header (resp, "Content-Range", cr);
        return s_queue (r, 206, resp);
    }
    return s_queue (r, 200, resp);
}

//  ---------------------------------------------------------------------------------------
//  Server-sent events

//  SSE event ids are the broker's time of the event in microseconds: they grow through a
//  job's life, so a client that reconnects with Last-Event-ID gets only what is newer (the
//  state as it is now, if it changed, then the events that follow).
static uint64_t
s_sse_id (double ts)
{
    return ts > 0? (uint64_t) (ts * 1e6): 0;
}

static char *
s_sse_format (const char *type, json_t *data, uint64_t id)
{
    char *text = json_dumps (data, JSON_COMPACT | JSON_REAL_PRECISION (15));
    json_decref (data);
    if (!text)
        return NULL;
    char *out = zsys_sprintf ("id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", id, type, text);
    free (text);
    return out;
}

static json_t *
s_event_from_job (const vdgx_jobstatus_t *job)
{
    json_t *j = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:f}", "id", job->id, "model", job->model,
                           "state", vdgx_job_state_name (job->state), "phase", vdgx_phase_name (job->phase),
                           "step", (json_int_t) job->step, "steps", (json_int_t) job->steps,
                           "percent", job->percent);
    if (job->has_error)
        json_object_set_new (j, "error", json_pack ("{s:s, s:s}", "code", job->error.code? job->error.code: "internal",
                                                    "message", job->error.message));
    return j;
}

static ssize_t
s_sse_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    s_req_t *r = (s_req_t *) cls;
    r->sse_waiting = false;
    if (r->sse_out && r->sse_pos < r->sse_len) {
        size_t n = r->sse_len - r->sse_pos;
        if (n > max)
            n = max;
        memcpy (buf, r->sse_out + r->sse_pos, n);
        r->sse_pos += n;
        return (ssize_t) n;
    }
    zstr_free (&r->sse_out);
    r->sse_len = r->sse_pos = 0;
    if (r->sse_done)
        return MHD_CONTENT_READER_END_OF_STREAM;
    //  Nothing to send: let the actor fill sse_out when an event comes, then resume.
    r->sse_waiting = true;
    MHD_suspend_connection (r->conn);
    if (s_push (r->bridge, "WAIT", r)) {
        r->sse_waiting = false;
        r->sse_done = true;
        vdgx_front_resume (r->bridge->front, r->conn);
    }
    return 0;
}

static enum MHD_Result
s_h_events (s_req_t *r)
{
    if (r->step == 0) {
        const char *last = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "Last-Event-ID");
        if (last) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull (last, &end, 10);
            if (errno || !end || *end || end == last || *last == '-')
                return s_send_error (r, 400, "invalid_header", "Last-Event-ID", 0,
                                     "Last-Event-ID must be an event id this stream sent");
            r->sse_last_id = (uint64_t) v;
        }
        //  Subscribe first, so no event between the status read and the stream is lost.
        if (s_push (r->bridge, "OPEN", r))
            return s_send_error (r, 503, "unavailable", NULL, 1000, "the bridge is shutting down");
        r->sse_open = true;
        s_call_job (r, VDGX_JOBCMD_STATUS, r->id);
        return s_go (r);
    }
    enum MHD_Result rc;
    vdgx_jobreply_t rep;
    if (s_jobreply (r, 0, &rep, VDGX_JOBCMD_STATUS, &rc)) {
        vdgx_jobreply_clear (&rep);
        return rc;
    }
    s_calls_reset (r);
    bool final = vdgx_job_state_is_final (rep.job.state);
    //  The state now, unless the client resumes from an event at least as new.
    double ts = rep.job.created_at;
    if (rep.job.started_at > ts)
        ts = rep.job.started_at;
    if (rep.job.finished_at > ts)
        ts = rep.job.finished_at;
    uint64_t id = s_sse_id (ts);
    if (id > r->sse_last_id) {
        //  "retry": how long a client waits before it reconnects with Last-Event-ID.
        char *event = s_sse_format ("state", s_event_from_job (&rep.job), id);
        r->sse_out = event? zsys_sprintf ("retry: 2000\n%s", event): NULL;
        zstr_free (&event);
    }
    else
        r->sse_out = strdup ("retry: 2000\n\n");
    r->sse_len = r->sse_out? strlen (r->sse_out): 0;
    r->sse_done = final;
    vdgx_jobreply_clear (&rep);
    struct MHD_Response *resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096,
                                                                   s_sse_reader, r, NULL);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header (resp, "Content-Type", "text/event-stream");
    MHD_add_response_header (resp, "X-Accel-Buffering", "no");
    atomic_fetch_add (&r->bridge->sse_streams, 1);
    r->sse_counted = true;
    return s_queue (r, 200, resp);
}

//  ---------------------------------------------------------------------------------------
//  Routing, auth, limits, bodies

static s_route_t
s_route (const char *url, char *id, size_t id_size)
{
    static const struct { const char *path; s_route_t route; } fixed [] = {
        { "/", R_ROOT }, { "/health", R_HEALTH }, { "/ready", R_READY }, { "/info", R_INFO },
        { "/generate", R_GENERATE }, { "/unload", R_UNLOAD }, { "/drain", R_DRAIN }, { "/queue/status", R_QUEUE },
        { "/metrics", R_METRICS }, { "/openapi.json", R_OPENAPI }, { "/v1/videos", R_VIDEOS },
        { "/v1/models", R_MODELS },
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed [0]; i++)
        if (streq (url, fixed [i].path))
            return fixed [i].route;
    if (streq (url, "/ui") || strncmp (url, "/ui/", 4) == 0)
        return R_UI;
    if (strncmp (url, "/v1/models/", 11) == 0) {
        size_t n = strlen (url + 11);
        if (n == 0 || n >= id_size || !vdgx_model_name_valid (url + 11))
            return R_NONE;
        memcpy (id, url + 11, n + 1);
        return R_MODEL;
    }
    const char *rest = NULL;
    bool v1 = false;
    if (strncmp (url, "/jobs/", 6) == 0)
        rest = url + 6;
    else
    if (strncmp (url, "/v1/videos/", 11) == 0) {
        rest = url + 11;
        v1 = true;
    }
    if (!rest)
        return R_NONE;
    const char *slash = strchr (rest, '/');
    size_t n = slash? (size_t) (slash - rest): strlen (rest);
    if (n == 0 || n > VDGX_ID_MAX || n >= id_size)
        return R_NONE;
    memcpy (id, rest, n);
    id [n] = 0;
    if (!vdgx_job_id_valid (id))
        return R_NONE;
    if (!slash)
        return v1? R_VIDEO: R_JOB;
    if (v1)
        return streq (slash, "/content")? R_VIDEO_CONTENT: R_NONE;
    if (streq (slash, "/download"))
        return R_JOB_DOWNLOAD;
    if (streq (slash, "/events"))
        return R_JOB_EVENTS;
    if (streq (slash, "/cancel"))
        return R_JOB_CANCEL;
    return R_NONE;
}

static bool
s_method_ok (s_route_t route, const char *method, bool *head)
{
    *head = streq (method, "HEAD");
    const char *allow = s_routes [route].allow;
    if (*head)
        return strstr (allow, "HEAD") != NULL;
    size_t n = strlen (method);
    for (const char *p = allow; (p = strstr (p, method)); p += n)
        if ((p == allow || p [-1] == ' ') && (p [n] == 0 || p [n] == ','))
            return true;
    return false;
}

static bool
s_has_body (s_route_t route, const char *method)
{
    return streq (method, "POST") && (route == R_GENERATE || route == R_UNLOAD || route == R_DRAIN
                                      || route == R_VIDEOS);
}

//  First call of a request: route, method, auth, rate limit, body type and size.
//  Returns true when a response was queued (into *rc).
//  True when text holds a control byte (C0 or DEL); the unescaper turns %00 into 0x01, so a
//  NUL in a path or query shows here instead of cutting the string short.
static bool
s_has_control (const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

static enum MHD_Result
s_check_arg (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    const char **bad = (const char **) cls;
    if (s_has_control (key) || s_has_control (value)) {
        *bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result
s_sum_header (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    *(size_t *) cls += strlen (key) + (value? strlen (value): 0) + 4;
    return MHD_YES;
}

//  The client's address as text.
static void
s_client_address (struct MHD_Connection *conn, char *addr, size_t size)
{
    snprintf (addr, size, "?");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        if (ci->client_addr->sa_family == AF_INET)
            inet_ntop (AF_INET, &((const struct sockaddr_in *) ci->client_addr)->sin_addr, addr, (socklen_t) size);
        else
        if (ci->client_addr->sa_family == AF_INET6)
            inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) ci->client_addr)->sin6_addr, addr, (socklen_t) size);
    }
}

//  Checks the API key. Failures are limited per address: once an address used up its
//  allowance, its requests get 429 without their key being looked at (no guessing at speed).
static bool
s_authenticate (s_req_t *r, enum MHD_Result *rc)
{
    vdgx_bridge_t *self = r->bridge;
    char addr [INET6_ADDRSTRLEN + 4], ip [INET6_ADDRSTRLEN + 8];
    s_client_address (r->conn, addr, sizeof addr);
    snprintf (ip, sizeof ip, "ip:%s", addr);
    int64_t now = zclock_mono (), retry = 0;
    if (!vdgx_ratelimit_peek (self->auth_fails, ip, now, &retry)) {
        atomic_fetch_add (&self->auth_refused, 1);
        *rc = s_send_error (r, 429, "rate_limited", NULL, retry,
                            "too many failed authentications from this address: retry in %" PRId64 " ms", retry);
        return false;
    }
    const char *auth = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "Authorization");
    char who [VDGX_APIKEY_NAME_MAX + 1] = "";
    bool ok = false;
    if (auth && strncasecmp (auth, "Bearer ", 7) == 0) {
        const char *token = auth + 7;
        while (*token == ' ')
            token++;
        ok = vdgx_apikeys_check (self->keys, token, strlen (token), who, sizeof who, &r->admin);
    }
    if (!ok) {
        if (!vdgx_ratelimit_take (self->auth_fails, ip, now, &retry)) {
            atomic_fetch_add (&self->auth_refused, 1);
            *rc = s_send_error (r, 429, "rate_limited", NULL, retry,
                                "too many failed authentications from this address: retry in %" PRId64 " ms", retry);
        }
        else
            *rc = s_send_error (r, 401, "unauthorized", NULL, 0, auth? "invalid API key"
                                : "an API key is required (Authorization: Bearer KEY)");
        vdgx_log_warn ("bridge.auth_failed", "address=%s key=%s", addr, auth? "wrong": "none");
        return false;
    }
    snprintf (r->who, sizeof r->who, "key:%s", who);
    snprintf (r->owner, sizeof r->owner, "key:%s", who);
    return true;
}

//  Submits may carry images (two 4 MiB files, base64 in JSON): their own, larger cap.
static size_t
s_body_cap (const s_req_t *r)
{
    const vdgx_bridge_cfg_t *cfg = &r->bridge->cfg;
    bool submit = r->route == R_GENERATE || (r->route == R_VIDEOS && streq (r->method, "POST"));
    return submit && cfg->submit_body_max > cfg->body_max? cfg->submit_body_max: cfg->body_max;
}

static bool
s_admit (s_req_t *r, const char *url, const char *method, enum MHD_Result *rc)
{
    vdgx_bridge_t *self = r->bridge;
    //  Control bytes (a NUL included) in the path or a query argument: refused, never cut.
    const char *bad_arg = NULL;
    if (s_has_control (url)) {
        *rc = s_send_error (r, 400, "invalid_path", NULL, 0, "the path holds a control character");
        return true;
    }
    //  The front door already refuses heads over S_HEADERS_MAX bytes (431); this counts
    //  what libmicrohttpd parsed, a second guard on the same limit.
    size_t header_bytes = strlen (url);
    MHD_get_connection_values (r->conn, MHD_HEADER_KIND, s_sum_header, &header_bytes);
    if (header_bytes > S_HEADERS_MAX) {
        r->close_after = true;
        *rc = s_send_error (r, 431, "headers_too_large", NULL, 0, "the request line and headers are over %d bytes",
                            S_HEADERS_MAX);
        return true;
    }
    MHD_get_connection_values (r->conn, MHD_GET_ARGUMENT_KIND, s_check_arg, &bad_arg);
    if (bad_arg) {
        *rc = s_send_error (r, 400, "invalid_query", bad_arg, 0, "a query argument holds a control character");
        return true;
    }
    r->route = s_route (url, r->id, sizeof r->id);
    if (r->route == R_NONE) {
        *rc = s_send_error (r, 404, "not_found", NULL, 0, "no such route: %s", url);
        return true;
    }
    if (r->route == R_UI && !(r->ui = vdgx_ui_find (url))) {
        *rc = s_send_error (r, 404, "not_found", NULL, 0, "no such file: %s", url);
        return true;
    }
    if (!s_method_ok (r->route, method, &r->head)) {
        *rc = s_send_error (r, 405, "method_not_allowed", NULL, 0, "%s is not allowed here (allowed: %s)",
                            method, s_routes [r->route].allow);
        return true;
    }
    bool open_route = r->route == R_HEALTH || r->route == R_ROOT || r->route == R_OPENAPI
                      || r->route == R_UI;
    r->admin = !self->keys;         //  without keys the bridge is the operator (as before)
    if (self->keys && !open_route) {
        if (!s_authenticate (r, rc))
            return true;
        //  Operators' routes need an admin key (the broker refuses the rest on its side).
        if (!r->admin && (r->route == R_UNLOAD || r->route == R_DRAIN || r->route == R_METRICS)) {
            *rc = s_send_error (r, 403, "forbidden", NULL, 0, "this route needs an admin key");
            return true;
        }
    }
    else {
        char addr [INET6_ADDRSTRLEN + 4];
        s_client_address (r->conn, addr, sizeof addr);
        snprintf (r->who, sizeof r->who, "ip:%s", addr);
    }
    if (r->route != R_HEALTH && r->route != R_UI) {
        int64_t retry = 0;
        if (!vdgx_ratelimit_take (self->limiter, r->who, zclock_mono (), &retry)) {
            *rc = s_send_error (r, 429, "rate_limited", NULL, retry, "too many requests: retry in %" PRId64 " ms", retry);
            return true;
        }
    }
    if (s_has_body (r->route, method)) {
        const char *len = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "Content-Length");
        size_t cap = s_body_cap (r);
        if (len && strtoull (len, NULL, 10) > cap) {
            *rc = s_send_error (r, 413, "too_large", NULL, 0, "the body is over %zu bytes", cap);
            return true;
        }
        const char *type = MHD_lookup_connection_value (r->conn, MHD_HEADER_KIND, "Content-Type");
        bool json = type && strncasecmp (type, "application/json", 16) == 0
                    && (type [16] == 0 || type [16] == ';' || type [16] == ' ');
        bool form = type && (r->route == R_VIDEOS || r->route == R_GENERATE)
                    && (strncasecmp (type, "multipart/form-data", 19) == 0
                        || strncasecmp (type, "application/x-www-form-urlencoded", 33) == 0);
        if (!json && !form) {
            *rc = s_send_error (r, 415, "unsupported_media_type", NULL, 0, "send the body as application/json%s",
                                r->route == R_VIDEOS || r->route == R_GENERATE? " or multipart/form-data": "");
            return true;
        }
        if (form) {
            r->is_form = true;
        }
    }
    return false;
}

static enum MHD_Result
s_dispatch (s_req_t *r)
{
    switch (r->route) {
        case R_ROOT: return s_h_root (r);
        case R_HEALTH: return s_h_health (r);
        case R_OPENAPI: return s_h_openapi (r);
        case R_READY: case R_QUEUE: return s_h_services (r);
        case R_INFO: return s_h_info (r);
        case R_GENERATE: return s_h_submit (r);
        case R_UNLOAD: return s_h_workers_cmd (r, VDGX_JOBCMD_UNLOAD);
        case R_DRAIN: return s_h_workers_cmd (r, VDGX_JOBCMD_DRAIN);
        case R_JOB: return s_h_job (r);
        case R_JOB_DOWNLOAD: case R_VIDEO_CONTENT: return s_h_download (r);
        case R_JOB_EVENTS: return s_h_events (r);
        case R_JOB_CANCEL: return s_h_job_cmd (r, VDGX_JOBCMD_CANCEL);
        case R_UI: return s_h_ui (r, r->ui);
        case R_METRICS: return s_h_metrics (r);
        case R_MODELS: case R_MODEL: return s_h_models (r);
        case R_VIDEOS:
            return streq (r->method, "POST")? s_h_submit (r): s_h_videos_list (r);
        case R_VIDEO:
            return streq (r->method, "DELETE")? s_h_job_cmd (r, VDGX_JOBCMD_DELETE): s_h_job (r);
        default: return MHD_NO;
    }
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    vdgx_bridge_t *self = (vdgx_bridge_t *) cls;
    s_req_t *r = (s_req_t *) *con_cls;
    if (!r) {
        r = (s_req_t *) calloc (1, sizeof (s_req_t));
        if (!r)
            return MHD_NO;
        r->bridge = self;
        r->conn = conn;
        r->method = method;
        *con_cls = r;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->gconn = ci? ci->socket_context: NULL;
        enum MHD_Result rc;
        int64_t retry = 0;
        int over = vdgx_guard_admit (self->guard, r->gconn, &retry);
        if (over) {
            //  Over the connection limits: an HTTP answer, and the connection closes.
            r->first_done = true;
            r->step = -1;
            r->close_after = true;
            vdgx_guard_received (self->guard, r->gconn);
            return s_send_error (r, over, over == 429? "too_many_connections": "overloaded", NULL, retry,
                                 over == 429? "too many open connections from this address"
                                 : "the server has too many open connections");
        }
        if (s_admit (r, url, method, &rc)) {
            r->first_done = true;
            r->step = -1;       //  answered: ignore whatever body follows
            vdgx_guard_received (self->guard, r->gconn);
            return rc;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        vdgx_guard_body (self->guard, r->gconn, n);
        if (r->step < 0 || !s_has_body (r->route, method) || r->too_large)
            return MHD_YES;     //  discarded
        if (r->body_size + n > s_body_cap (r)) {
            r->too_large = true;
            return MHD_YES;
        }
        r->body_size += n;
        char *grown = (char *) realloc (r->body, r->body_size);
        if (!grown)
            return MHD_NO;
        r->body = grown;
        memcpy (r->body + r->body_size - n, upload_data, n);
        return MHD_YES;
    }
    if (r->step < 0)
        return MHD_YES;
    if (!r->first_done) {
        r->first_done = true;
        vdgx_guard_received (self->guard, r->gconn);
    }
    if (r->too_large)
        return s_send_error (r, 413, "too_large", NULL, 0, "the body is over %zu bytes", s_body_cap (r));
    return s_dispatch (r);
}

static void
s_completed (void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void) toe;
    vdgx_bridge_t *self = (vdgx_bridge_t *) cls;
    //  The response is all written: the front may pass on the connection's next request.
    if (self->front)
        vdgx_front_done (self->front, conn);
    s_req_t *r = (s_req_t *) *con_cls;
    if (!r)
        return;
    vdgx_guard_done (self->guard, r->gconn);
    if (r->sse_open) {
        //  The actor forgets the stream; it never dereferences r after this message.
        s_push (self, "CLOSE", r);
        if (r->sse_counted)
            atomic_fetch_sub (&self->sse_streams, 1);
    }
    json_decref (r->win);
    s_calls_reset (r);
    if (r->has_req)
        vdgx_genreq_clear (&r->req);
    free (r->body);
    free (r->dl_buf);
    free (r->thumb_in);
    free (r->thumb_jpeg);
    zstr_free (&r->sse_out);
    free (r);
    *con_cls = NULL;
}

//  ---------------------------------------------------------------------------------------
//  The actor: owns the DEALER (broker) and the SUB (events)

typedef struct {
    s_req_t *r;
    size_t index;
    int64_t deadline;
} s_pend_t;

typedef struct {
    s_req_t *r;                 //  dereferenced only while r waits (WAIT received)
    char id [VDGX_ID_MAX + 1];
    zchunk_t *pending;          //  SSE text not yet handed over
    bool waiting, done;
    int64_t opened, last_sent;
    uint64_t last_id;           //  newest event id sent (or the client's Last-Event-ID)
} s_sub_t;

typedef struct {
    vdgx_bridge_t *bridge;
    zsock_t *pipe, *dealer, *sub;
    zpoller_t *poller;
    zlistx_t *pend;             //  s_pend_t, in send order
    zhashx_t *subs;             //  "%p" of r -> s_sub_t
} s_actor_t;

static void
s_sub_free (void **item_p)
{
    s_sub_t *s = (s_sub_t *) *item_p;
    if (s) {
        zchunk_destroy (&s->pending);
        free (s);
        *item_p = NULL;
    }
}

static void
s_apply_curve (vdgx_bridge_t *self, zsock_t *sock)
{
    if (self->curve_cert) {
        zcert_apply (self->curve_cert, sock);
        zsock_set_curve_serverkey (sock, self->curve_server);
    }
}

static void
s_actor_connect (s_actor_t *a)
{
    if (a->dealer) {
        zpoller_remove (a->poller, a->dealer);
        zsock_destroy (&a->dealer);
    }
    a->dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (a->dealer, 0);
    //  Never block the actor: a bounded queue (requests wait in it while the broker is
    //  away, each until its deadline), and a send that finds it full fails at once, which
    //  answers the request 503.
    zsock_set_sndhwm (a->dealer, 1000);
    zsock_set_sndtimeo (a->dealer, 0);
    s_apply_curve (a->bridge, a->dealer);
    zsock_connect (a->dealer, "%s", a->bridge->broker);
    zpoller_add (a->poller, a->dealer);
}

static void
s_resume_calls (s_actor_t *a, s_req_t *r)
{
    atomic_fetch_sub (&a->bridge->inflight, 1);
    vdgx_front_resume (r->bridge->front, r->conn);
}

//  Every outstanding call fails (timeout or shutdown); the DEALER is replaced because the
//  broker may still answer them and the reply order would no longer match.
static void
s_fail_all (s_actor_t *a, const char *why, bool reconnect)
{
    s_pend_t *p;
    while ((p = (s_pend_t *) zlistx_detach (a->pend, NULL))) {
        s_req_t *r = p->r;
        free (p);
        r->failed = true;
        snprintf (r->fail_msg, sizeof r->fail_msg, "%s", why);
        if (--r->pending == 0)
            s_resume_calls (a, r);
    }
    if (reconnect)
        s_actor_connect (a);
}

static void
s_actor_request (s_actor_t *a, s_req_t *r)
{
    int64_t deadline = zclock_mono () + a->bridge->cfg.request_timeout_ms;
    for (size_t i = 0; i < r->nq; i++) {
        zmsg_t *body = zmsg_new ();
        zmsg_append (body, &r->q [i].body);
        zmsg_t *msg = vdgx_mdp_client_request (r->q [i].service, &body);
        s_pend_t *p = (s_pend_t *) calloc (1, sizeof (s_pend_t));
        p->r = r;
        p->index = i;
        p->deadline = deadline;
        if (!msg || zmsg_send (&msg, a->dealer)) {
            zmsg_destroy (&msg);
            r->failed = true;
            snprintf (r->fail_msg, sizeof r->fail_msg, "cannot send to the broker");
            free (p);
            if (--r->pending == 0)
                s_resume_calls (a, r);
            continue;
        }
        zlistx_add_end (a->pend, p);
    }
}

static void
s_actor_reply (s_actor_t *a)
{
    zmsg_t *msg = zmsg_recv (a->dealer);
    if (!msg)
        return;
    vdgx_mdp_t in;
    vdgx_mdp_init (&in);
    vdgx_error_t err;
    int rc = vdgx_mdp_decode (&in, &msg, &err);
    if (rc == 0 && !in.worker && in.command == VDGX_MDPC_PARTIAL) {
        vdgx_mdp_clear (&in);
        return;
    }
    s_pend_t *p = (s_pend_t *) zlistx_first (a->pend);
    if (rc || in.worker || in.command != VDGX_MDPC_FINAL || !p
    ||  !streq (in.service, p->r->q [p->index].service) || zmsg_size (in.body) != 1) {
        vdgx_log_warn ("bridge.reply", "unexpected broker reply: %s", rc? err.message: "out of order");
        atomic_fetch_add (&a->bridge->broker_failed, 1);
        vdgx_mdp_clear (&in);
        if (p)
            s_fail_all (a, "the broker answered out of order", true);
        return;
    }
    zlistx_detach_cur (a->pend);
    s_req_t *r = p->r;
    r->q [p->index].reply = zmsg_pop (in.body);
    free (p);
    vdgx_mdp_clear (&in);
    atomic_fetch_add (&a->bridge->broker_ok, 1);
    if (--r->pending == 0)
        s_resume_calls (a, r);
}

//  Hands a waiting stream what is pending (if anything) and resumes it.
static void
s_sub_deliver (s_sub_t *s)
{
    if (!s->waiting || (!s->done && zchunk_size (s->pending) == 0))
        return;
    s_req_t *r = s->r;
    size_t n = zchunk_size (s->pending);
    r->sse_out = (char *) malloc (n + 1);
    if (r->sse_out) {
        memcpy (r->sse_out, zchunk_data (s->pending), n);
        r->sse_out [n] = 0;
        r->sse_len = n;
        r->sse_pos = 0;
    }
    zchunk_set (s->pending, NULL, 0);
    r->sse_done = s->done;
    s->waiting = false;
    s->last_sent = zclock_mono ();
    vdgx_front_resume (r->bridge->front, r->conn);
}

static void
s_sub_append (s_sub_t *s, const char *text)
{
    if (text && !s->done)
        zchunk_extend (s->pending, text, strlen (text));
}

static void
s_actor_event (s_actor_t *a)
{
    zmsg_t *msg = zmsg_recv (a->sub);
    if (!msg)
        return;
    vdgx_event_t ev;
    vdgx_event_init (&ev);
    vdgx_error_t err;
    if (zhashx_size (a->subs) && vdgx_event_decode_msg (&ev, msg, &err) == 0 && !ev.is_model) {
        json_t *j = vdgx_webhook_job_json (&ev);
        bool final = vdgx_job_state_is_final (ev.job_state);
        uint64_t id = s_sse_id (ev.ts);
        char *text = s_sse_format (ev.type == VDGX_EVENT_PROGRESS? "progress"
                                   : ev.type == VDGX_EVENT_CHUNK? "chunk": "state", j, id);
        for (s_sub_t *s = (s_sub_t *) zhashx_first (a->subs); s; s = (s_sub_t *) zhashx_next (a->subs)) {
            if (!streq (s->id, ev.id) || s->done)
                continue;
            if (id <= s->last_id && !final)
                continue;           //  the client has it already (resumed stream)
            if (id > s->last_id)
                s->last_id = id;
            s_sub_append (s, text);
            s->done = final;
            s_sub_deliver (s);
        }
        zstr_free (&text);
    }
    vdgx_event_clear (&ev);
    zmsg_destroy (&msg);
}

static void
s_actor_timers (s_actor_t *a)
{
    int64_t now = zclock_mono ();
    s_pend_t *p = (s_pend_t *) zlistx_first (a->pend);
    if (p && now >= p->deadline) {
        //  Deadlines grow with the send order, so the head is the oldest.
        vdgx_log_warn ("bridge.timeout", "broker did not answer in %d ms: %zu requests failed",
                       a->bridge->cfg.request_timeout_ms, zlistx_size (a->pend));
        atomic_fetch_add (&a->bridge->broker_timeouts, zlistx_size (a->pend));
        s_fail_all (a, "the broker did not answer in time", true);
    }
    for (s_sub_t *s = (s_sub_t *) zhashx_first (a->subs); s; s = (s_sub_t *) zhashx_next (a->subs)) {
        if (!s->waiting)
            continue;
        if (now - s->opened > (int64_t) a->bridge->cfg.sse_max_s * 1000) {
            s_sub_append (s, "event: timeout\ndata: {}\n\n");
            s->done = true;
        }
        else
        if (now - s->last_sent > S_KEEPALIVE_MS)
            s_sub_append (s, ": keepalive\n\n");
        s_sub_deliver (s);
    }
}

static void
s_actor (zsock_t *pipe, void *args)
{
    s_actor_t a;
    memset (&a, 0, sizeof a);
    a.bridge = (vdgx_bridge_t *) args;
    a.pipe = pipe;
    a.pend = zlistx_new ();
    a.subs = zhashx_new ();
    zhashx_set_destructor (a.subs, s_sub_free);
    a.poller = zpoller_new (pipe, NULL);
    s_actor_connect (&a);
    a.sub = zsock_new (ZMQ_SUB);
    zsock_set_linger (a.sub, 0);
    zsock_set_rcvhwm (a.sub, 100000);
    zsock_set_subscribe (a.sub, "job.");
    s_apply_curve (a.bridge, a.sub);
    zsock_connect (a.sub, "%s", a.bridge->events);
    zpoller_add (a.poller, a.sub);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (a.poller, zlistx_size (a.pend) || zhashx_size (a.subs)? 100: 1000);
        if (which == pipe) {
            char *cmd = NULL;
            void *ptr = NULL;
            if (zsock_recv (pipe, "sp", &cmd, &ptr)) {
                zstr_free (&cmd);
                break;
            }
            if (!cmd || streq (cmd, "$TERM")) {
                zstr_free (&cmd);
                break;
            }
            s_req_t *r = (s_req_t *) ptr;
            char key [32];
            snprintf (key, sizeof key, "%p", ptr);
            if (streq (cmd, "REQ"))
                s_actor_request (&a, r);
            else
            if (streq (cmd, "OPEN")) {
                s_sub_t *s = (s_sub_t *) calloc (1, sizeof (s_sub_t));
                s->r = r;
                snprintf (s->id, sizeof s->id, "%s", r->id);
                s->last_id = r->sse_last_id;
                s->pending = zchunk_new (NULL, 256);
                s->opened = s->last_sent = zclock_mono ();
                zhashx_update (a.subs, key, s);
            }
            else
            if (streq (cmd, "WAIT")) {
                s_sub_t *s = (s_sub_t *) zhashx_lookup (a.subs, key);
                if (s) {
                    s->waiting = true;
                    s_sub_deliver (s);
                }
                else {
                    r->sse_done = true;
                    vdgx_front_resume (r->bridge->front, r->conn);
                }
            }
            else
            if (streq (cmd, "CLOSE"))
                zhashx_delete (a.subs, key);
            zstr_free (&cmd);
        }
        else
        if (which == a.dealer)
            s_actor_reply (&a);
        else
        if (which == a.sub)
            s_actor_event (&a);
        else
        if (zpoller_terminated (a.poller))
            break;
        s_actor_timers (&a);
    }
    //  Nobody may stay suspended: answer every call and end every waiting stream.
    s_fail_all (&a, "the bridge is shutting down", false);
    for (s_sub_t *s = (s_sub_t *) zhashx_first (a.subs); s; s = (s_sub_t *) zhashx_next (a.subs)) {
        s->done = true;
        s_sub_deliver (s);
    }
    zhashx_destroy (&a.subs);
    zlistx_destroy (&a.pend);
    zpoller_destroy (&a.poller);
    zsock_destroy (&a.dealer);
    zsock_destroy (&a.sub);
}

//  ---------------------------------------------------------------------------------------
//  Construction

//  HTTP threads when none are configured: the CPUs, 1 to 8. Every broker call suspends its
//  connection, so a thread only ever does CPU work. Before the front door, half the CPUs
//  (1 to 4) was best (2 cores: p99 about 8 ms with 4 threads, 2-4 ms with 1); each thread
//  now also checks and relays its requests (about twice the CPU per small request), and the
//  relay used to run on as many threads again, so this keeps that count of threads busy
//  (2 cores: one thread made 26-31k /health req/s where two made 36-56k; PERFORMANCE.md).
static int
s_auto_threads (void)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    return cpus < 1? 1: cpus > 8? 8: (int) cpus;
}

void
vdgx_bridge_cfg_init (vdgx_bridge_cfg_t *cfg)
{
    assert (cfg);
    memset (cfg, 0, sizeof *cfg);
    cfg->listen = "127.0.0.1:8000";
    cfg->threads = 0;           //  auto: s_auto_threads ()
    cfg->conn_limit = 1024;
    cfg->per_ip_limit = 64;
    cfg->conn_timeout_s = 30;
    cfg->body_max = 64 * 1024;
    cfg->submit_body_max = 12 * 1024 * 1024;
    cfg->request_timeout_ms = 5000;
    cfg->sse_max_s = 3600;
    cfg->chunk_bytes = 1024 * 1024;
    cfg->cache_ms = 1000;
    cfg->header_timeout_ms = 10000;
    cfg->min_body_rate = 1024;
    cfg->auth_fail_burst = 10;
    cfg->auth_fail_rate = 10.0 / 60;
    cfg->decode_limit = 0;      //  auto: s_decode_slots ()
    cfg->decode_wait_ms = 250;
}

//  Image decodes at once: configured, or half the HTTP threads (at least one), so that
//  uploads never take every thread (and the memory of a 16 Mpx decode each).
static unsigned
s_decode_slots (const vdgx_bridge_cfg_t *cfg)
{
    if (cfg->decode_limit)
        return cfg->decode_limit;
    //  Auto: a quarter of the CPUs (half the HTTP threads before they took the relay's work).
    int threads = cfg->threads? cfg->threads: s_auto_threads () / 2;
    return threads / 2 < 1? 1: (unsigned) threads / 2;
}

//  libmicrohttpd's connection notifications: the guard counts and watches connections.
static void
s_notify_connection (void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    vdgx_bridge_t *self = (vdgx_bridge_t *) cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        char addr [INET6_ADDRSTRLEN + 4];
        s_client_address (conn, addr, sizeof addr);
        *socket_context = fd? vdgx_guard_open (self->guard, fd->connect_fd, addr): NULL;
    }
    else {
        vdgx_guard_close (self->guard, *socket_context);
        *socket_context = NULL;
    }
}

//  "host:port", "[v6]:port", "localhost:port". Returns 0 and fills addr, or -1.
static int
s_parse_listen (const char *text, struct sockaddr_storage *addr, socklen_t *len, bool *loopback)
{
    char host [128];
    const char *colon;
    if (text [0] == '[') {
        const char *close = strchr (text, ']');
        if (!close || close [1] != ':' || (size_t) (close - text - 1) >= sizeof host)
            return -1;
        memcpy (host, text + 1, (size_t) (close - text - 1));
        host [close - text - 1] = 0;
        colon = close + 1;
    }
    else {
        colon = strrchr (text, ':');
        if (!colon || (size_t) (colon - text) >= sizeof host)
            return -1;
        memcpy (host, text, (size_t) (colon - text));
        host [colon - text] = 0;
    }
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    if (!colon [1] || *end || port < 0 || port > 65535)
        return -1;
    if (streq (host, "localhost"))
        snprintf (host, sizeof host, "127.0.0.1");
    memset (addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *) addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) addr;
    if (inet_pton (AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons ((uint16_t) port);
        *len = sizeof *v4;
        *loopback = (ntohl (v4->sin_addr.s_addr) >> 24) == 127;
        return 0;
    }
    if (inet_pton (AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons ((uint16_t) port);
        *len = sizeof *v6;
        *loopback = IN6_IS_ADDR_LOOPBACK (&v6->sin6_addr);
        return 0;
    }
    return -1;
}

//  Percent-decoding of paths and query arguments in place. A %00 becomes 0x01 (a NUL would
//  cut the string and "/jobs/ID%00junk" would read as "/jobs/ID"); s_admit refuses every
//  control byte with 400.
static size_t
s_unescape (void *cls, struct MHD_Connection *conn, char *text)
{
    (void) cls;
    (void) conn;
    char *out = text;
    for (const char *in = text; *in; in++) {
        if (*in == '%' && isxdigit ((unsigned char) in [1]) && isxdigit ((unsigned char) in [2])) {
            char hex [3] = { in [1], in [2], 0 };
            char c = (char) strtol (hex, NULL, 16);
            *out++ = c? c: 0x01;
            in += 2;
        }
        else
            *out++ = *in;
    }
    *out = 0;
    return (size_t) (out - text);
}

static void
s_mhd_log (void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    //  libmicrohttpd tunes TCP options (NODELAY, CORK) on its sockets; its sockets are the
    //  front's socketpair ends, where those options do not exist (the front sets them on
    //  the client's socket): not worth a warning per response.
    if (strstr (fmt, "option to %s state failed") || strstr (fmt, "Zero-send failed")
    ||  strstr (fmt, "Failed to push the data"))
        return;
    char text [512];
    vsnprintf (text, sizeof text, fmt, ap);
    size_t n = strlen (text);
    while (n && text [n - 1] == '\n')
        text [--n] = 0;
    vdgx_log_kv (VDGX_LOG_WARN, "bridge.http", "message", text, NULL);
}

//  The HTTP server of one of the front door's threads: libmicrohttpd without a listening
//  socket or a thread of its own (flags: the front runs it, see vdgx_front.h).
static struct MHD_Daemon *
s_start_server (void *arg, unsigned int flags)
{
    vdgx_bridge_t *self = (vdgx_bridge_t *) arg;
    return MHD_start_daemon (flags | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_access, self,
                             MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
                             MHD_OPTION_NOTIFY_CONNECTION, s_notify_connection, self,
                             MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
                             //  The guard answers over-limit connections in HTTP; the front's
                             //  conn_max (all threads) and this (each) are only the backstop
                             //  above it.
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned) self->cfg.conn_limit + 64,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) self->cfg.conn_timeout_s,
                             //  What the front's limits are made for (it never runs out: no
                             //  431/500 of its own).
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) VDGX_FRONT_SERVER_MEMORY,
                             MHD_OPTION_END);
}

vdgx_bridge_t *
vdgx_bridge_new (const vdgx_bridge_cfg_t *cfg, char *err, size_t err_size)
{
    assert (cfg && err && err_size);
    err [0] = 0;
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    bool loopback = false;
    if (!cfg->listen || s_parse_listen (cfg->listen, &addr, &addr_len, &loopback)) {
        snprintf (err, err_size, "--listen: '%s' is not host:port (an IP address or localhost)",
                  cfg->listen? cfg->listen: "");
        return NULL;
    }
    if (cfg->threads < 0 || cfg->threads > 256 || cfg->conn_limit < 1 || cfg->body_max < 1
    ||  cfg->submit_body_max < 1
    ||  cfg->request_timeout_ms < 1 || cfg->sse_max_s < 1 || cfg->rate < 0
    ||  cfg->chunk_bytes < 1 || cfg->chunk_bytes > VDGX_RESULT_READ_MAX || cfg->cache_ms < 0
    ||  (cfg->rate > 0 && cfg->burst < 1) || cfg->header_timeout_ms < 100
    ||  cfg->auth_fail_rate <= 0 || cfg->auth_fail_burst < 1
    ||  cfg->decode_limit > 1024 || cfg->decode_wait_ms < 0 || cfg->decode_wait_ms > 60000) {
        snprintf (err, err_size, "invalid limits (threads 0..256, positive limits, burst >= 1, chunk <= 4 MiB,"
                  " decode limit 0..1024, decode wait 0..60000 ms)");
        return NULL;
    }
    vdgx_bridge_t *self = (vdgx_bridge_t *) calloc (1, sizeof (vdgx_bridge_t));
    self->cfg = *cfg;
    const char *broker = cfg->broker? cfg->broker: getenv ("VDGX_BROKER");
    const char *events = cfg->events? cfg->events: getenv ("VDGX_EVENTS");
    self->broker = strdup (broker && *broker? broker: VDGX_CLIENT_DEFAULT_BROKER);
    self->events = strdup (events && *events? events: VDGX_CLIENT_DEFAULT_EVENTS);
    self->listen = strdup (cfg->listen);
    self->default_model = strdup (cfg->default_model? cfg->default_model: "");
    self->started = zclock_mono ();
    self->started_wall = (int64_t) (zclock_time () / 1000);
    pthread_mutex_init (&self->pipe_lock, NULL);
    //  Writers first: with glibc's default (readers first) a refresh waiting for the lock
    //  under a steady stream of readers stalls its HTTP thread and every connection on it.
    pthread_rwlockattr_t rwattr;
    pthread_rwlockattr_init (&rwattr);
    pthread_rwlockattr_setkind_np (&rwattr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init (&self->cache_lock, &rwattr);
    pthread_rwlockattr_destroy (&rwattr);
    self->cache = zhashx_new ();
    zhashx_set_destructor (self->cache, s_cached_free);
    if (cfg->keys_file) {
        self->keys = vdgx_apikeys_new ();
        if (vdgx_apikeys_load (self->keys, cfg->keys_file) || vdgx_apikeys_count (self->keys) == 0) {
            snprintf (err, err_size, "--keys: %s", vdgx_apikeys_count (self->keys)? vdgx_apikeys_error (self->keys)
                      : *vdgx_apikeys_error (self->keys)? vdgx_apikeys_error (self->keys): "the keys file holds no key (add one: vdgx-bridge --hash-key KEY >> FILE;"
                      " or start once with --make-key)");
            vdgx_bridge_destroy (&self);
            return NULL;
        }
    }
    else
    if (!loopback) {
        snprintf (err, err_size, "listening on %s (not loopback) needs API keys: give --keys FILE", cfg->listen);
        vdgx_bridge_destroy (&self);
        return NULL;
    }
    if (cfg->webhook_secret && *cfg->webhook_secret) {
        self->webhooks = vdgx_webhook_new (self->events, cfg->webhook_secret, strlen (cfg->webhook_secret),
                                           cfg->webhook_allow, err, err_size);
        if (!self->webhooks) {
            vdgx_bridge_destroy (&self);
            return NULL;
        }
    }
    self->limiter = vdgx_ratelimit_new (cfg->rate, cfg->rate > 0? cfg->burst: 0, 100000);
    self->auth_fails = vdgx_ratelimit_new (cfg->auth_fail_rate, cfg->auth_fail_burst, 100000);
    self->decodes = vdgx_gate_new (s_decode_slots (cfg), cfg->decode_wait_ms);
    if ((cfg->curve_server_key != NULL) != (cfg->curve_cert != NULL)) {
        snprintf (err, err_size, "CURVE needs both --curve-server-key and --curve-cert");
        vdgx_bridge_destroy (&self);
        return NULL;
    }
    if (cfg->curve_server_key) {
        zcert_t *server = zcert_load (cfg->curve_server_key);
        self->curve_cert = zcert_load (cfg->curve_cert);
        if (!server || !self->curve_cert) {
            snprintf (err, err_size, "cannot load the CURVE certificate %s",
                      server? cfg->curve_cert: cfg->curve_server_key);
            zcert_destroy (&server);
            vdgx_bridge_destroy (&self);
            return NULL;
        }
        self->curve_server = strdup (zcert_public_txt (server));
        zcert_destroy (&server);
    }
    self->guard = vdgx_guard_new (cfg->per_ip_limit, cfg->conn_limit, cfg->header_timeout_ms,
                                  cfg->min_body_rate);
    self->actor = zactor_new (s_actor, self);
    self->actor_alive = true;
    //  An HTTP thread never waits on a stuck actor for long: the push fails (503).
    zsock_set_sndtimeo (self->actor, 1000);
    self->thumbs = zactor_new (s_thumbs_actor, NULL);
    self->thumbs_alive = self->thumbs != NULL;
    //  The front door (vdgx_front) accepts, checks the framing of every request and hands
    //  the connections to libmicrohttpd: one server per front thread, run by that thread
    //  (a request is read, checked, served and relayed without a hand-over).
    int threads = cfg->threads? cfg->threads: s_auto_threads ();
    char why [128];
    //  A client that reads nothing for --timeout-s is closed, as libmicrohttpd closes it.
    self->front = vdgx_front_new ((struct sockaddr *) &addr, addr_len, 1024, S_HEADERS_MAX, threads,
                                  cfg->conn_limit > INT_MAX - 64? INT_MAX: (int) cfg->conn_limit + 64,
                                  cfg->conn_timeout_s? (int) cfg->conn_timeout_s * 1000: 86400000,
                                  s_start_server, self, why, sizeof why);
    if (!self->front || vdgx_front_start (self->front, why, sizeof why)) {
        snprintf (err, err_size, "cannot listen on %s (%s)", cfg->listen, why);
        vdgx_bridge_destroy (&self);
        return NULL;
    }
    self->port = vdgx_front_port (self->front);
    vdgx_log_info ("bridge.listen", "addr=%s port=%u broker=%s events=%s auth=%s threads=%d",
                   self->listen, self->port, self->broker, self->events, self->keys? "keys": "none",
                   threads);
    (void) s_unused;
    return self;
}

void
vdgx_bridge_destroy (vdgx_bridge_t **self_p)
{
    assert (self_p);
    vdgx_bridge_t *self = *self_p;
    if (!self)
        return;
    if (self->front)
        vdgx_front_quiesce (self->front);
    vdgx_webhook_destroy (&self->webhooks);
    //  The actor answers everything that waits on it before it ends; afterwards handlers
    //  find it gone (actor_alive) and answer 503 themselves.
    pthread_mutex_lock (&self->pipe_lock);
    self->actor_alive = false;
    pthread_mutex_unlock (&self->pipe_lock);
    zactor_destroy (&self->actor);
    pthread_mutex_lock (&self->pipe_lock);
    self->thumbs_alive = false;
    pthread_mutex_unlock (&self->pipe_lock);
    zactor_destroy (&self->thumbs);
    //  The front's threads stop, then their servers (no connection is suspended by now).
    vdgx_front_destroy (&self->front);
    vdgx_apikeys_destroy (&self->keys);
    vdgx_ratelimit_destroy (&self->limiter);
    vdgx_ratelimit_destroy (&self->auth_fails);
    vdgx_gate_destroy (&self->decodes);
    vdgx_guard_destroy (&self->guard);
    zcert_destroy (&self->curve_cert);
    free (self->curve_server);
    pthread_mutex_destroy (&self->pipe_lock);
    zhashx_destroy (&self->cache);
    pthread_rwlock_destroy (&self->cache_lock);
    free (self->listen);
    free (self->broker);
    free (self->events);
    free (self->default_model);
    free (self);
    *self_p = NULL;
}

uint16_t
vdgx_bridge_port (vdgx_bridge_t *self)
{
    assert (self);
    return self->port;
}

bool
vdgx_bridge_auth_required (vdgx_bridge_t *self)
{
    assert (self);
    return self->keys != NULL;
}

//  ---------------------------------------------------------------------------------------
//  Selftest: everything that needs no broker (tests/bridge runs the real broker and worker).
//  The broker endpoint is a port nobody listens on, so calls exercise the deadline path.

static int
s_http (uint16_t port, const char *request, char **body_p, char *headers, size_t headers_size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in sa;
    memset (&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons (port);
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int rc = connect (fd, (struct sockaddr *) &sa, sizeof sa);
    assert (rc == 0);
    size_t len = strlen (request);
    assert (send (fd, request, len, MSG_NOSIGNAL) == (ssize_t) len);
    zchunk_t *in = zchunk_new (NULL, 4096);
    char buf [4096];
    ssize_t n;
    while ((n = recv (fd, buf, sizeof buf, 0)) > 0)
        zchunk_extend (in, buf, (size_t) n);
    close (fd);
    zchunk_extend (in, "", 1);
    const char *text = (const char *) zchunk_data (in);
    int status = 0;
    sscanf (text, "HTTP/1.1 %d", &status);
    const char *sep = strstr (text, "\r\n\r\n");
    if (headers)
        snprintf (headers, headers_size, "%.*s", sep? (int) (sep - text): 0, text);
    if (body_p)
        *body_p = strdup (sep? sep + 4: "");
    zchunk_destroy (&in);
    return status;
}

static int
s_get (uint16_t port, const char *path, const char *extra, char **body_p, char *headers, size_t hsize)
{
    char req [1024];
    snprintf (req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", path,
              extra? extra: "");
    return s_http (port, req, body_p, headers, hsize);
}

static int
s_post (uint16_t port, const char *path, const char *type, const char *body, char **body_p)
{
    char *req = zsys_sprintf ("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s"
                              "Content-Length: %zu\r\n\r\n%s", path, type? "Content-Type: ": "",
                              type? type: "", type? "\r\n": "", strlen (body), body);
    int status = s_http (port, req, body_p, NULL, 0);
    zstr_free (&req);
    return status;
}

static void
s_expect_error (const char *body, const char *code, const char *field)
{
    json_t *j = json_loads (body, 0, NULL);
    assert (j);
    json_t *e = json_object_get (j, "error");
    assert (json_is_object (e));
    assert (streq (json_string_value (json_object_get (e, "code")), code));
    assert (json_is_string (json_object_get (e, "message")));
    if (field)
        assert (streq (json_string_value (json_object_get (e, "field")), field));
    json_decref (j);
}

void
vdgx_bridge_test (bool verbose)
{
    printf (" * vdgx_bridge: ");
    if (!verbose)
        vdgx_log_set_level (VDGX_LOG_ERROR);
    vdgx_bridge_cfg_t cfg;
    vdgx_bridge_cfg_init (&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.broker = "tcp://127.0.0.1:1";       //  nothing there: every call times out
    cfg.events = "tcp://127.0.0.1:1";
    cfg.request_timeout_ms = 300;
    cfg.threads = 2;
    cfg.body_max = 4096;
    cfg.submit_body_max = 6144;     //  submits (images) have their own cap
    char err [256];
    vdgx_bridge_t *bridge = vdgx_bridge_new (&cfg, err, sizeof err);
    assert (bridge);
    uint16_t port = vdgx_bridge_port (bridge);
    assert (port > 0 && !vdgx_bridge_auth_required (bridge));
    char *body = NULL;
    char headers [2048];

    assert (s_get (port, "/health", NULL, &body, NULL, 0) == 200);
    assert (streq (body, "{\"status\":\"ok\"}"));
    zstr_free (&body);
    assert (s_get (port, "/", NULL, &body, NULL, 0) == 200);
    assert (strstr (body, "/v1/videos"));
    zstr_free (&body);
    //  A browser gets the web UI at / (with its policy), API clients keep the JSON.
    assert (s_get (port, "/", "Accept: text/html,*/*;q=0.8\r\n", &body, headers, sizeof headers) == 200);
    assert (strstr (body, "<!doctype html>") && strstr (headers, "Content-Security-Policy: default-src 'none'"));
    assert (strstr (headers, "Vary: Accept"));
    zstr_free (&body);
    assert (s_get (port, "/", "Accept: application/json\r\n", &body, NULL, 0) == 200);
    assert (strstr (body, "\"routes\""));
    zstr_free (&body);
    assert (s_get (port, "/ui/app.js", NULL, &body, headers, sizeof headers) == 200);
    assert (strstr (headers, "Content-Type: text/javascript"));
    zstr_free (&body);
    assert (s_get (port, "/ui/nope.js", NULL, &body, NULL, 0) == 404);
    zstr_free (&body);
    assert (s_get (port, "/openapi.json", NULL, &body, NULL, 0) == 200);
    json_t *doc = json_loads (body, 0, NULL);
    assert (doc && streq (json_string_value (json_object_get (doc, "openapi")), "3.0.3"));
    json_decref (doc);
    zstr_free (&body);
    assert (s_get (port, "/nope", NULL, &body, NULL, 0) == 404);
    s_expect_error (body, "not_found", NULL);
    zstr_free (&body);
    assert (s_get (port, "/jobs/bad!id", NULL, &body, NULL, 0) == 404);
    zstr_free (&body);
    assert (s_http (port, "DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    &body, headers, sizeof headers) == 405);
    assert (strstr (headers, "Allow: GET, HEAD"));
    s_expect_error (body, "method_not_allowed", NULL);
    zstr_free (&body);
    //  The broker never answers: 503 with Retry-After, after the deadline, not a hang.
    int64_t t0 = zclock_mono ();
    assert (s_get (port, "/jobs/abc", NULL, &body, headers, sizeof headers) == 503);
    assert (zclock_mono () - t0 >= 250 && zclock_mono () - t0 < 3000);
    assert (strstr (headers, "Retry-After: 1"));
    s_expect_error (body, "unavailable", NULL);
    zstr_free (&body);
    //  Metrics still come (the bridge's own), with up = 0.
    assert (s_get (port, "/metrics", NULL, &body, headers, sizeof headers) == 200);
    assert (strstr (headers, "text/plain; version=0.0.4"));
    assert (strstr (body, "vdgx_bridge_up 0\n"));
    assert (strstr (body, "vdgx_bridge_http_requests_total{route=\"/jobs/{id}\",code=\"503\"} 1\n"));
    zstr_free (&body);
    //  Bodies: type, syntax, fields, size.
    assert (s_post (port, "/generate", NULL, "{}", &body) == 415);
    zstr_free (&body);
    assert (s_post (port, "/generate", "text/plain", "{}", &body) == 415);
    zstr_free (&body);
    assert (s_post (port, "/generate", "application/json", "{\"prompt\":", &body) == 400);
    s_expect_error (body, "invalid_json", NULL);
    zstr_free (&body);
    assert (s_post (port, "/generate", "application/json", "", &body) == 400);
    zstr_free (&body);
    assert (s_post (port, "/generate", "application/json", "{\"prompt\":\"a\",\"prompt\":\"b\"}", &body) == 400);
    zstr_free (&body);
    assert (s_post (port, "/generate", "application/json; charset=utf-8", "{\"model\":\"testgen\"}", &body) == 422);
    s_expect_error (body, "missing_field", "prompt");
    zstr_free (&body);
    assert (s_post (port, "/generate", "application/json", "{\"prompt\":\"x\"}", &body) == 422);
    s_expect_error (body, "missing_field", "model");        //  no default model configured
    zstr_free (&body);
    assert (s_post (port, "/generate", "application/json", "{\"model\":\"testgen\",\"prompt\":\"\\u0000\"}", &body) == 400);
    zstr_free (&body);
    char *big = (char *) malloc (8192);
    memset (big, ' ', 8191);
    big [8191] = 0;
    big [0] = '{';
    big [8190] = '}';
    assert (s_post (port, "/generate", "application/json", big, &body) == 413);
    s_expect_error (body, "too_large", NULL);
    zstr_free (&body);
    //  Chunked upload over the cap (no Content-Length to refuse up front).
    char *req = zsys_sprintf ("POST /generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "%x\r\n%s\r\n0\r\n\r\n", 8191, big);
    assert (s_http (port, req, &body, NULL, 0) == 413);
    zstr_free (&req);
    zstr_free (&body);
    free (big);
    //  multipart/form-data, as the OpenAI SDKs send it.
    const char *form = "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ntestgen\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=\"steps\"\r\n\r\n0\r\n--XyZ--\r\n";
    assert (s_post (port, "/v1/videos", "multipart/form-data; boundary=XyZ", form, &body) == 422);
    s_expect_error (body, "invalid_field", "steps");
    zstr_free (&body);
    form = "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n"
           "--XyZ\r\nContent-Disposition: form-data; name=\"input_reference\"; filename=\"a.png\"\r\n"
           "Content-Type: image/png\r\n\r\nPNG\r\n--XyZ--\r\n";
    assert (s_post (port, "/v1/videos", "multipart/form-data; boundary=XyZ", form, &body) == 422);
    s_expect_error (body, "invalid_image", "input_reference");
    assert (strstr (body, "unsupported image format"));
    zstr_free (&body);
    assert (s_post (port, "/generate", "multipart/form-data; boundary=XyZ", form, &body) == 422);
    s_expect_error (body, "unknown_field", "input_reference");      //  OpenAI's name only
    zstr_free (&body);
    //  Between body_max and submit_body_max: a submit is read (and refused for its field),
    //  another route gets 413.
    big = (char *) malloc (5001);
    memset (big, 'A', 5000);
    big [5000] = 0;
    memcpy (big, "{\"model\":\"testgen\",\"prompt\":\"x\",\"image\":\"data:image/png;base64,", 63);
    memcpy (big + 4998, "\"}", 2);
    assert (s_post (port, "/generate", "application/json", big, &body) == 422);
    s_expect_error (body, "invalid_image", "image");
    zstr_free (&body);
    assert (s_post (port, "/unload", "application/json", big, &body) == 413);
    zstr_free (&body);
    free (big);
    //  A valid request reaches the broker (which is away): 503.
    assert (s_post (port, "/v1/videos", "application/json",
                    "{\"model\":\"testgen\",\"prompt\":\"x\",\"seconds\":\"1\",\"size\":\"64x48\"}", &body) == 503);
    zstr_free (&body);
    assert (s_get (port, "/v1/videos?limit=0", NULL, &body, NULL, 0) == 400);
    s_expect_error (body, "invalid_query", "limit");
    zstr_free (&body);
    assert (s_get (port, "/v1/videos?order=up", NULL, &body, NULL, 0) == 400);
    zstr_free (&body);
    assert (s_get (port, "/v1/videos/abc/content?variant=gif", NULL, &body, NULL, 0) == 400);
    zstr_free (&body);
    //  Several requests in flight at once all get their answer.
    for (int i = 0; i < 3; i++)
        assert (s_get (port, "/ready", NULL, NULL, NULL, 0) == 503);
    vdgx_bridge_destroy (&bridge);
    assert (bridge == NULL);

    //  Keys and rate limits.
    char path [] = "/tmp/vdgx_bridge_keys_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    char *line = vdgx_apikeys_hash_line ("t0ken", "tester");
    assert (write (fd, line, strlen (line)) == (ssize_t) strlen (line));
    close (fd);
    free (line);
    cfg.keys_file = path;
    cfg.rate = 0.05;                //  a token per 20 s: a slow run (valgrind) refills none
    cfg.burst = 2;
    bridge = vdgx_bridge_new (&cfg, err, sizeof err);
    assert (bridge && vdgx_bridge_auth_required (bridge));
    port = vdgx_bridge_port (bridge);
    assert (s_get (port, "/health", NULL, NULL, NULL, 0) == 200);          //  open
    assert (s_get (port, "/queue/status", NULL, &body, headers, sizeof headers) == 401);
    assert (strstr (headers, "WWW-Authenticate: Bearer"));
    s_expect_error (body, "unauthorized", NULL);
    zstr_free (&body);
    assert (s_get (port, "/queue/status", "Authorization: Bearer nope\r\n", NULL, NULL, 0) == 401);
    assert (s_get (port, "/queue/status", "Authorization: Basic dDBrZW4=\r\n", NULL, NULL, 0) == 401);
    assert (s_get (port, "/v1/videos/abc", "Authorization: Bearer t0ken\r\n", NULL, NULL, 0) == 503);
    assert (s_get (port, "/v1/videos/abc", "Authorization: Bearer t0ken\r\n", NULL, NULL, 0) == 503);
    assert (s_get (port, "/v1/videos/abc", "Authorization: Bearer t0ken\r\n", &body, headers, sizeof headers) == 429);
    const char *retry = strstr (headers, "Retry-After: ");
    assert (retry);
    int retry_s = atoi (retry + strlen ("Retry-After: "));
    assert (retry_s >= 1 && retry_s <= 20);                 //  until the next token
    s_expect_error (body, "rate_limited", NULL);
    zstr_free (&body);
    vdgx_bridge_destroy (&bridge);
    //  Threads: 0 picks a count from the CPUs; a negative count is refused.
    cfg.keys_file = NULL;
    cfg.threads = 0;
    bridge = vdgx_bridge_new (&cfg, err, sizeof err);
    assert (bridge);
    assert (s_get (vdgx_bridge_port (bridge), "/health", NULL, &body, NULL, 0) == 200);
    zstr_free (&body);
    vdgx_bridge_destroy (&bridge);
    cfg.threads = -1;
    assert (vdgx_bridge_new (&cfg, err, sizeof err) == NULL && strstr (err, "threads"));
    cfg.threads = 2;
    //  Refusals at start.
    cfg.listen = "0.0.0.0:0";
    assert (vdgx_bridge_new (&cfg, err, sizeof err) == NULL && strstr (err, "--keys"));
    cfg.listen = "127.0.0.1";
    assert (vdgx_bridge_new (&cfg, err, sizeof err) == NULL);
    cfg.listen = "example.com:80";
    assert (vdgx_bridge_new (&cfg, err, sizeof err) == NULL);
    cfg.listen = "127.0.0.1:0";
    cfg.keys_file = "/nonexistent/keys";
    assert (vdgx_bridge_new (&cfg, err, sizeof err) == NULL);
    cfg.keys_file = path;
    fd = open (path, O_WRONLY | O_TRUNC);
    close (fd);
    assert (vdgx_bridge_new (&cfg, err, sizeof err) == NULL);       //  empty keys file
    unlink (path);
    vdgx_log_set_level (VDGX_LOG_INFO);
    printf ("OK\n");
}
