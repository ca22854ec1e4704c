/*  vdgx_client.c - C client library for the VideosDGX broker (see vdgx_client.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vdgx_client.h"
#include "vdgx_image.h"
#include "vdgx_mp.h"
#include "vdgx_sha256.h"

struct _vdgx_client_t {
    char *broker, *events;
    zsock_t *dealer;            //  NULL until the first call / after a timeout
    int timeout_ms, retries;
    char server_key [41];       //  CURVE: the broker's public key (z85), "" = plain
    zcert_t *cert;              //  CURVE: our certificate
    char error_code [32];
    char error [512];
};

//  ---------------------------------------------------------------------------------------
//  Errors

static int
s_fail (vdgx_client_t *self, const char *code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (vdgx_client_t *self, const char *code, const char *format, ...)
{
    snprintf (self->error_code, sizeof self->error_code, "%s", code);
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
    return -1;
}

static void
s_ok (vdgx_client_t *self)
{
    self->error_code [0] = 0;
    self->error [0] = 0;
}

static int
s_fail_reply (vdgx_client_t *self, const vdgx_error_t *err)
{
    if (err->field [0])
        return s_fail (self, err->code? err->code: "internal", "%s (field %s)", err->message,
                       err->field);
    return s_fail (self, err->code? err->code: "internal", "%s", err->message);
}

//  ---------------------------------------------------------------------------------------
//  Connection and one request/reply round trip

static void
s_disconnect (vdgx_client_t *self)
{
    zsock_destroy (&self->dealer);
}

static int
s_connect (vdgx_client_t *self)
{
    if (self->dealer)
        return 0;
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer)
        return s_fail (self, "internal", "cannot create a socket");
    zsock_set_linger (self->dealer, 0);
    zsock_set_rcvhwm (self->dealer, 1000);
    if (self->cert && self->server_key [0]) {
        zcert_apply (self->cert, self->dealer);
        zsock_set_curve_serverkey (self->dealer, self->server_key);
    }
    if (zsock_connect (self->dealer, "%s", self->broker) != 0) {
        s_disconnect (self);
        return s_fail (self, "unavailable", "cannot connect to %s", self->broker);
    }
    return 0;
}

//  Sends body to service and waits for the FINAL. Each timeout drops the socket (so a late
//  reply to the old request can never be taken for the answer to a new one) and resends on
//  a fresh one. *reply_p gets the first body frame of the FINAL.
static int
s_call (vdgx_client_t *self, const char *service, zframe_t *body, zframe_t **reply_p)
{
    *reply_p = NULL;
    for (int attempt = 0; attempt <= self->retries; attempt++) {
        if (s_connect (self))
            return -1;
        zmsg_t *payload = zmsg_new ();
        zmsg_append (payload, &(zframe_t *) { zframe_dup (body) });
        zmsg_t *msg = vdgx_mdp_client_request (service, &payload);
        if (!msg || zmsg_send (&msg, self->dealer) != 0) {
            zmsg_destroy (&msg);
            s_disconnect (self);
            continue;
        }
        int64_t deadline = zclock_mono () + self->timeout_ms;
        zpoller_t *poller = zpoller_new (self->dealer, NULL);
        zpoller_set_nonstop (poller, true);
        while (true) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0 || !zpoller_wait (poller, (int) left))
                break;
            zmsg_t *in = zmsg_recv (self->dealer);
            if (!in)
                break;
            //  An empty delimiter in front of the header is tolerated.
            zframe_t *first = zmsg_first (in);
            if (first && zframe_size (first) == 0 && zmsg_size (in) > 1) {
                zframe_t *empty = zmsg_pop (in);
                zframe_destroy (&empty);
            }
            vdgx_mdp_t mdp;
            vdgx_mdp_init (&mdp);
            vdgx_error_t err;
            vdgx_error_init (&err);
            if (vdgx_mdp_decode (&mdp, &in, &err) == 0 && !mdp.worker
            &&  mdp.command == VDGX_MDPC_FINAL && streq (mdp.service, service)) {
                *reply_p = zmsg_pop (mdp.body);
                vdgx_mdp_clear (&mdp);
                zpoller_destroy (&poller);
                if (!*reply_p)
                    return s_fail (self, "protocol", "empty reply from %s", service);
                return 0;
            }
            vdgx_mdp_clear (&mdp);      //  PARTIALs and strays are skipped
        }
        zpoller_destroy (&poller);
        s_disconnect (self);
    }
    return s_fail (self, "timeout", "no reply from %s (%s) within %d ms, %d tries",
                   self->broker, service, self->timeout_ms, self->retries + 1);
}

//  One job-service command; reply decoded into *reply (init'ed here, cleared by the caller).
static int
s_jobcall (vdgx_client_t *self, const vdgx_jobcmd_t *cmd, vdgx_jobreply_t *reply)
{
    vdgx_jobreply_init (reply, cmd->cmd);
    zframe_t *body = vdgx_jobcmd_frame (cmd);
    if (!body)
        return s_fail (self, "bad_request", "cannot encode the %s command",
                       vdgx_jobcmd_name (cmd->cmd));
    zframe_t *frame = NULL;
    int rc = s_call (self, VDGX_JOBS_SERVICE, body, &frame);
    zframe_destroy (&body);
    if (rc)
        return -1;
    vdgx_error_t err;
    vdgx_error_init (&err);
    rc = vdgx_jobreply_decode (reply, zframe_data (frame), zframe_size (frame), &err);
    zframe_destroy (&frame);
    if (rc)
        return s_fail (self, "protocol", "bad %s reply: %s", vdgx_jobcmd_name (cmd->cmd),
                       err.message);
    if (!reply->ok)
        return s_fail_reply (self, &reply->error);
    s_ok (self);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  msgpack -> JSON (for introspection replies)


static const msgpack_object *
s_map_get (const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len
        &&  memcmp (k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr [i].val;
    }
    return NULL;
}

static void
s_copy_str (char *buf, size_t size, const msgpack_object *o)
{
    buf [0] = 0;
    if (o && o->type == MSGPACK_OBJECT_STR)
        snprintf (buf, size, "%.*s", (int) o->via.str.size, o->via.str.ptr);
}

//  Calls a service whose reply is a map with `ok`; checks it and returns it as JSON.
static int
s_mapcall (vdgx_client_t *self, const char *service, zframe_t *body, char **json_p,
           bool *healthy_p)
{
    if (json_p)
        *json_p = NULL;
    zframe_t *frame = NULL;
    int rc = s_call (self, service, body, &frame);
    zframe_destroy (&body);
    if (rc)
        return -1;
    msgpack_unpacked up;
    vdgx_error_t err;
    vdgx_error_init (&err);
    //  The unpacked objects point into the frame: it lives until they are done with.
    if (vdgx_unpack (&up, zframe_data (frame), zframe_size (frame), &err) != 0) {
        zframe_destroy (&frame);
        return s_fail (self, "protocol", "%s replied with bad msgpack: %s", service, err.message);
    }
    const msgpack_object *root = &up.data;
    const msgpack_object *ok = s_map_get (root, "ok");
    if (!ok || ok->type != MSGPACK_OBJECT_BOOLEAN) {
        msgpack_unpacked_destroy (&up);
        zframe_destroy (&frame);
        return s_fail (self, "protocol", "%s reply has no `ok`", service);
    }
    if (!ok->via.boolean) {
        const msgpack_object *e = s_map_get (root, "error");
        char code [32] = "internal", message [256] = "";
        if (e) {
            s_copy_str (code, sizeof code, s_map_get (e, "code"));
            s_copy_str (message, sizeof message, s_map_get (e, "message"));
        }
        msgpack_unpacked_destroy (&up);
        zframe_destroy (&frame);
        return s_fail (self, code [0]? code: "internal", "%s", message);
    }
    if (healthy_p) {
        const msgpack_object *h = s_map_get (root, "healthy");
        *healthy_p = h && h->type == MSGPACK_OBJECT_BOOLEAN && h->via.boolean;
    }
    if (json_p) {
        json_t *j = vdgx_mp_to_json (root);
        *json_p = json_dumps (j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref (j);
    }
    msgpack_unpacked_destroy (&up);
    zframe_destroy (&frame);
    s_ok (self);
    return 0;
}

//  A small map body: {} or {key: value}.
static zframe_t *
s_small_map (const char *key, const char *value)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    if (key && value) {
        msgpack_pack_map (&pk, 1);
        vdgx_pack_str (&pk, key);
        vdgx_pack_str (&pk, value);
    }
    else
        msgpack_pack_map (&pk, 0);
    zframe_t *frame = zframe_new (sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    return frame;
}

//  ---------------------------------------------------------------------------------------
//  Public API

static bool
s_endpoint_ok (const char *ep)
{
    return ep && (strncmp (ep, "tcp://", 6) == 0 || strncmp (ep, "ipc://", 6) == 0
               || strncmp (ep, "inproc://", 9) == 0) && strlen (ep) < 1024;
}

vdgx_client_t *
vdgx_client_new (const char *broker, const char *events)
{
    const char *eb = getenv ("VDGX_BROKER"), *ee = getenv ("VDGX_EVENTS");
    if (!broker)
        broker = eb && *eb? eb: VDGX_CLIENT_DEFAULT_BROKER;
    if (!events)
        events = ee && *ee? ee: VDGX_CLIENT_DEFAULT_EVENTS;
    if (!s_endpoint_ok (broker) || !s_endpoint_ok (events))
        return NULL;
    vdgx_client_t *self = (vdgx_client_t *) zmalloc (sizeof *self);
    self->broker = strdup (broker);
    self->events = strdup (events);
    self->timeout_ms = 5000;
    self->retries = 2;
    return self;
}

void
vdgx_client_destroy (vdgx_client_t **self_p)
{
    if (self_p && *self_p) {
        vdgx_client_t *self = *self_p;
        zsock_destroy (&self->dealer);
        zcert_destroy (&self->cert);
        free (self->broker);
        free (self->events);
        free (self);
        *self_p = NULL;
    }
}

void
vdgx_client_set_timeout (vdgx_client_t *self, int timeout_ms)
{
    assert (self);
    self->timeout_ms = timeout_ms > 0? timeout_ms: 1;
}

void
vdgx_client_set_retries (vdgx_client_t *self, int retries)
{
    assert (self);
    self->retries = retries >= 0? retries: 0;
}

int
vdgx_client_set_curve (vdgx_client_t *self, const char *broker_public_file,
                       const char *client_cert_file)
{
    assert (self);
    zcert_t *server = broker_public_file? zcert_load (broker_public_file): NULL;
    zcert_t *mine = client_cert_file? zcert_load (client_cert_file): NULL;
    if (!server || !mine) {
        zcert_destroy (&server);
        zcert_destroy (&mine);
        return s_fail (self, "io", "cannot read the CURVE certificate %s",
                       !server? (broker_public_file? broker_public_file: "(none)")
                              : (client_cert_file? client_cert_file: "(none)"));
    }
    snprintf (self->server_key, sizeof self->server_key, "%s", zcert_public_txt (server));
    zcert_destroy (&server);
    zcert_destroy (&self->cert);
    self->cert = mine;
    s_disconnect (self);                //  the next call connects with CURVE
    s_ok (self);
    return 0;
}

const char *
vdgx_client_error_code (vdgx_client_t *self)
{
    return self->error_code;
}

const char *
vdgx_client_error (vdgx_client_t *self)
{
    return self->error;
}

int
vdgx_client_image_file (vdgx_genreq_t *req, const char *field, const char *path, char *err,
                        size_t errlen)
{
    assert (req && field && path && err);
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (err, errlen, "%s: %s", path, strerror (errno));
        return -1;
    }
    //  One byte more than the limit tells "too large" without reading a huge file.
    uint8_t *data = (uint8_t *) malloc (VDGX_IMAGE_BYTES_MAX + 1);
    size_t size = data? fread (data, 1, VDGX_IMAGE_BYTES_MAX + 1, file): 0;
    bool failed = !data || ferror (file);
    fclose (file);
    int rc = -1;
    char why [256];
    vdgx_image_t *image = NULL;
    if (failed)
        snprintf (err, errlen, "%s: cannot read the file", path);
    else
    if (!(image = vdgx_image_decode (data, size, NULL, why, sizeof why)))
        snprintf (err, errlen, "%s: %s", path, why);
    else
    if (vdgx_genreq_set_image (req, field, data, size))
        snprintf (err, errlen, "%s: out of memory (or no field '%s')", path, field);
    else
        rc = 0;
    vdgx_image_destroy (&image);
    free (data);
    return rc;
}

int
vdgx_client_submit (vdgx_client_t *self, const vdgx_genreq_t *req, char **id_p,
                    vdgx_submit_info_t *info)
{
    assert (self && req && id_p);
    *id_p = NULL;
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_SUBMIT;
    if (vdgx_genreq_copy (&cmd.request, req) != 0) {
        vdgx_jobcmd_clear (&cmd);
        return s_fail (self, "internal", "out of memory");
    }
    //  Every submit carries a key, so the retry after a lost reply finds the same job.
    if (!cmd.request.idempotency_key [0]) {
        zuuid_t *uuid = zuuid_new ();
        snprintf (cmd.request.idempotency_key, sizeof cmd.request.idempotency_key, "%s",
                  zuuid_str_canonical (uuid));
        zuuid_destroy (&uuid);
    }
    vdgx_jobreply_t reply;
    int rc = s_jobcall (self, &cmd, &reply);
    if (rc == 0) {
        *id_p = strdup (reply.id);
        if (info) {
            memset (info, 0, sizeof *info);
            info->state = reply.state;
            info->cached = reply.cached;
            info->queue_position = reply.queue_position;
            snprintf (info->idempotency_key, sizeof info->idempotency_key, "%s",
                      cmd.request.idempotency_key);
        }
    }
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    return rc;
}

static int
s_id_cmd (vdgx_client_t *self, vdgx_jobcmd_type_t type, const char *id, vdgx_jobstatus_t *job)
{
    if (!id || !vdgx_job_id_valid (id))
        return s_fail (self, "bad_request", "bad job id '%s'", id? id: "(null)");
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = type;
    snprintf (cmd.id, sizeof cmd.id, "%s", id);
    vdgx_jobreply_t reply;
    int rc = s_jobcall (self, &cmd, &reply);
    if (rc == 0 && job) {
        vdgx_jobstatus_clear (job);
        if (vdgx_jobstatus_copy (job, &reply.job) != 0)
            rc = s_fail (self, "internal", "out of memory");
    }
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    return rc;
}

int
vdgx_client_status (vdgx_client_t *self, const char *id, vdgx_jobstatus_t *job)
{
    assert (self && job);
    return s_id_cmd (self, VDGX_JOBCMD_STATUS, id, job);
}

int
vdgx_client_cancel (vdgx_client_t *self, const char *id, vdgx_jobstatus_t *job)
{
    assert (self);
    return s_id_cmd (self, VDGX_JOBCMD_CANCEL, id, job);
}

int
vdgx_client_delete (vdgx_client_t *self, const char *id)
{
    assert (self);
    return s_id_cmd (self, VDGX_JOBCMD_DELETE, id, NULL);
}

static bool
s_progress_differs (const vdgx_jobstatus_t *a, const vdgx_jobstatus_t *b)
{
    return a->state != b->state || a->phase != b->phase || a->step != b->step
        || a->steps != b->steps || a->percent != b->percent
        || a->queue_position != b->queue_position;
}

int
vdgx_client_wait (vdgx_client_t *self, const char *id, int timeout_ms,
                  vdgx_client_progress_fn *progress, void *arg, vdgx_jobstatus_t *job)
{
    assert (self);
    vdgx_jobstatus_t cur, last;
    vdgx_jobstatus_init (&cur);
    vdgx_jobstatus_init (&last);
    int64_t deadline = timeout_ms > 0? zclock_mono () + timeout_ms: INT64_MAX;
    //  Subscribe before the first status, so no change between the two is missed.
    zsock_t *sub = zsock_new (ZMQ_SUB);
    char topic [VDGX_ID_MAX + 8];
    snprintf (topic, sizeof topic, "job.%s", id? id: "");
    if (sub) {
        zsock_set_linger (sub, 0);
        if (self->cert && self->server_key [0]) {
            zcert_apply (self->cert, sub);
            zsock_set_curve_serverkey (sub, self->server_key);
        }
        zsock_set_subscribe (sub, topic);
        if (zsock_connect (sub, "%s", self->events) != 0)
            zsock_destroy (&sub);
    }
    int rc = -1;
    bool have = false, finished = false;
    int64_t next_poll = 0;
    while (true) {
        int64_t now = zclock_mono ();
        if (now >= next_poll) {
            //  Events are lossy (PUB/SUB), so status is polled too: every second at first,
            //  less often while events arrive.
            if (vdgx_client_status (self, id, &cur) == 0) {
                have = true;
                finished = vdgx_job_state_is_final (cur.state);
            }
            else
            if (strcmp (self->error_code, "timeout") != 0)
                break;                  //  not_found, bad id, ...: waiting cannot help
            next_poll = zclock_mono () + 1000;
            if (have && (s_progress_differs (&cur, &last) || finished)) {
                if (progress)
                    progress (&cur, arg);
                vdgx_jobstatus_clear (&last);
                vdgx_jobstatus_copy (&last, &cur);
            }
            if (finished) {
                rc = 0;
                s_ok (self);
                break;
            }
        }
        now = zclock_mono ();
        if (now >= deadline) {
            s_fail (self, "timeout", "job %s did not finish within %d ms", id, timeout_ms);
            break;
        }
        int64_t wait = next_poll - now;
        if (deadline - now < wait)
            wait = deadline - now;
        if (wait < 0)
            wait = 0;
        if (!sub) {
            zclock_sleep ((int) wait);
            continue;
        }
        zpoller_t *poller = zpoller_new (sub, NULL);
        zpoller_set_nonstop (poller, true);
        void *which = zpoller_wait (poller, (int) wait);
        zpoller_destroy (&poller);
        if (!which)
            continue;
        zmsg_t *msg = zmsg_recv (sub);
        vdgx_event_t ev;
        vdgx_event_init (&ev);
        vdgx_error_t err;
        vdgx_error_init (&err);
        if (msg && have && vdgx_event_decode_msg (&ev, msg, &err) == 0 && !ev.is_model
        &&  streq (ev.id, id)) {
            cur.state = ev.job_state;
            if (ev.has_phase)
                cur.phase = ev.phase;
            cur.step = ev.step;
            cur.steps = ev.steps;
            cur.percent = ev.percent;
            if (vdgx_job_state_is_final (ev.job_state))
                next_poll = 0;          //  fetch the full final status (result / error)
            else {
                next_poll = zclock_mono () + 5000;
                if (s_progress_differs (&cur, &last)) {
                    if (progress)
                        progress (&cur, arg);
                    vdgx_jobstatus_clear (&last);
                    vdgx_jobstatus_copy (&last, &cur);
                }
            }
        }
        vdgx_event_clear (&ev);
        zmsg_destroy (&msg);
    }
    zsock_destroy (&sub);
    if (job) {
        vdgx_jobstatus_clear (job);
        if (have)
            vdgx_jobstatus_copy (job, &cur);
    }
    vdgx_jobstatus_clear (&cur);
    vdgx_jobstatus_clear (&last);
    return rc;
}

int
vdgx_client_read (vdgx_client_t *self, const char *id, uint64_t offset, uint32_t length,
                  vdgx_jobreply_t *reply)
{
    assert (self && reply);
    vdgx_jobreply_init (reply, VDGX_JOBCMD_RESULT);
    if (!id || !vdgx_job_id_valid (id))
        return s_fail (self, "bad_request", "bad job id '%s'", id? id: "(null)");
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_RESULT;
    snprintf (cmd.id, sizeof cmd.id, "%s", id);
    cmd.offset = offset;
    cmd.length = length? length: VDGX_CHUNK_MAX;
    int rc = s_jobcall (self, &cmd, reply);
    vdgx_jobcmd_clear (&cmd);
    if (rc == 0 && (reply->offset != offset || reply->offset > reply->size
                    ||  reply->data_size > reply->size - offset))
        rc = s_fail (self, "protocol", "result %s: a read past the end", id);
    return rc;
}

int
vdgx_client_result (vdgx_client_t *self, const char *id, const char *path)
{
    assert (self && path);
    if (!id || !vdgx_job_id_valid (id))
        return s_fail (self, "bad_request", "bad job id '%s'", id? id: "(null)");
    char *tmp = zsys_sprintf ("%s.part-XXXXXX", path);
    int fd = mkstemp (tmp);
    if (fd < 0) {
        int rc = s_fail (self, "io", "cannot create %s: %s", tmp, strerror (errno));
        zstr_free (&tmp);
        return rc;
    }
    fchmod (fd, 0644);
    vdgx_sha256_t sha;
    vdgx_sha256_init (&sha);
    uint64_t offset = 0, size = 0;
    char want [65] = "";
    int rc = 0;
    do {
        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = VDGX_JOBCMD_RESULT;
        snprintf (cmd.id, sizeof cmd.id, "%s", id);
        cmd.offset = offset;
        cmd.length = VDGX_CHUNK_MAX;
        vdgx_jobreply_t reply;
        rc = s_jobcall (self, &cmd, &reply);
        vdgx_jobcmd_clear (&cmd);
        if (rc == 0) {
            if (reply.partial)
                rc = s_fail (self, "conflict", "job %s is still running (only a part is ready)", id);
            else
            if (offset == 0) {
                size = reply.size;
                snprintf (want, sizeof want, "%s", reply.sha256);
            }
            if (rc == 0 && (reply.offset != offset || reply.size != size || strcmp (reply.sha256, want) != 0))
                rc = s_fail (self, "protocol", "result %s changed during the download", id);
            else
            if (rc == 0 && reply.data_size == 0 && offset < size)
                rc = s_fail (self, "protocol", "result %s: empty chunk at %llu of %llu", id,
                             (unsigned long long) offset, (unsigned long long) size);
            else
            if (rc == 0 && reply.data_size > size - offset)
                rc = s_fail (self, "protocol", "result %s: chunk past the end", id);
            else
            if (rc == 0) {
                const uint8_t *p = reply.data;
                size_t left = reply.data_size;
                while (left > 0 && rc == 0) {
                    ssize_t n = write (fd, p, left);
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n <= 0)
                        rc = s_fail (self, "io", "writing %s: %s", tmp, strerror (errno));
                    else {
                        p += n;
                        left -= (size_t) n;
                    }
                }
                vdgx_sha256_update (&sha, reply.data, reply.data_size);
                offset += reply.data_size;
            }
        }
        vdgx_jobreply_clear (&reply);
    } while (rc == 0 && offset < size);
    if (rc == 0) {
        char got [VDGX_SHA256_HEX_SIZE];
        vdgx_sha256_final_hex (&sha, got);
        if (strcmp (got, want) != 0)
            rc = s_fail (self, "integrity", "result %s: sha256 %s, expected %s", id, got, want);
    }
    if (rc == 0 && fsync (fd) != 0)
        rc = s_fail (self, "io", "syncing %s: %s", tmp, strerror (errno));
    if (close (fd) != 0 && rc == 0)
        rc = s_fail (self, "io", "closing %s: %s", tmp, strerror (errno));
    if (rc == 0 && rename (tmp, path) != 0)
        rc = s_fail (self, "io", "renaming to %s: %s", path, strerror (errno));
    if (rc != 0)
        unlink (tmp);
    else
        s_ok (self);
    zstr_free (&tmp);
    return rc;
}

int
vdgx_client_list (vdgx_client_t *self, const char *state, const char *model, uint32_t limit,
                  const char *after, bool newest_first, vdgx_jobstatus_t **jobs_p, size_t *count_p,
                  bool *has_more_p)
{
    assert (self && jobs_p && count_p);
    *jobs_p = NULL;
    *count_p = 0;
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_LIST;
    if (state && *state) {
        if (vdgx_job_state_parse (state, &cmd.state) != 0)
            return s_fail (self, "bad_request", "unknown job state '%s'", state);
        cmd.has_state = true;
    }
    if (model && *model) {
        if (strlen (model) > VDGX_MODEL_MAX)
            return s_fail (self, "bad_request", "model name too long");
        snprintf (cmd.model, sizeof cmd.model, "%s", model);
    }
    if (limit) {
        if (limit > VDGX_LIST_LIMIT_MAX)
            return s_fail (self, "bad_request", "limit must be 1..%d", VDGX_LIST_LIMIT_MAX);
        cmd.limit = limit;
    }
    if (after && *after) {
        if (!vdgx_job_id_valid (after))
            return s_fail (self, "bad_request", "bad job id '%s'", after);
        snprintf (cmd.after, sizeof cmd.after, "%s", after);
    }
    cmd.desc = newest_first;
    vdgx_jobreply_t reply;
    int rc = s_jobcall (self, &cmd, &reply);
    if (rc == 0) {
        //  Ownership of the array moves to the caller.
        *jobs_p = reply.jobs;
        *count_p = reply.njobs;
        reply.jobs = NULL;
        reply.njobs = 0;
        if (has_more_p)
            *has_more_p = reply.has_more;
    }
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    return rc;
}

void
vdgx_client_jobs_free (vdgx_jobstatus_t **jobs_p, size_t count)
{
    if (jobs_p && *jobs_p) {
        for (size_t i = 0; i < count; i++)
            vdgx_jobstatus_clear (&(*jobs_p) [i]);
        free (*jobs_p);
        *jobs_p = NULL;
    }
}

//  A command answered by a count of workers told (unload, drain); clears cmd.
static int
s_workers_call (vdgx_client_t *self, vdgx_jobcmd_t *cmd, uint32_t *workers_p)
{
    vdgx_jobreply_t reply;
    int rc = s_jobcall (self, cmd, &reply);
    if (rc == 0 && workers_p)
        *workers_p = reply.workers;
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (cmd);
    return rc;
}

//  A command about one model whose reply is a worker count (unload, reset_limits).
static int
s_model_call (vdgx_client_t *self, vdgx_jobcmd_type_t type, const char *model, uint32_t *workers_p)
{
    assert (self);
    if (!model || !*model || strlen (model) > VDGX_MODEL_MAX)
        return s_fail (self, "bad_request", "bad model name");
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = type;
    snprintf (cmd.model, sizeof cmd.model, "%s", model);
    return s_workers_call (self, &cmd, workers_p);
}

int
vdgx_client_unload (vdgx_client_t *self, const char *model, uint32_t *workers_p)
{
    return s_model_call (self, VDGX_JOBCMD_UNLOAD, model, workers_p);
}

int
vdgx_client_reset_limits (vdgx_client_t *self, const char *model, uint32_t *workers_p)
{
    return s_model_call (self, VDGX_JOBCMD_RESET_LIMITS, model, workers_p);
}

int
vdgx_client_drain (vdgx_client_t *self, const char *model, const char *host, uint32_t *workers_p)
{
    assert (self);
    model = model? model: "";
    host = host? host: "";
    if (strlen (model) > VDGX_MODEL_MAX || strlen (host) > VDGX_HOST_MAX)
        return s_fail (self, "bad_request", "model or host name too long");
    if (!*model && !*host)
        return s_fail (self, "bad_request", "drain needs a model, a host or both");
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_DRAIN;
    snprintf (cmd.model, sizeof cmd.model, "%s", model);
    snprintf (cmd.host, sizeof cmd.host, "%s", host);
    return s_workers_call (self, &cmd, workers_p);
}

int
vdgx_client_models (vdgx_client_t *self, char **json_p)
{
    assert (self && json_p);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    vdgx_pack_str (&pk, "cmd");
    vdgx_pack_str (&pk, "models");
    zframe_t *body = zframe_new (sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    return s_mapcall (self, VDGX_JOBS_SERVICE, body, json_p, NULL);
}

int
vdgx_client_workers (vdgx_client_t *self, const char *service, char **json_p)
{
    assert (self && json_p);
    return s_mapcall (self, "mmi.workers",
                      s_small_map (service && *service? "service": NULL, service), json_p, NULL);
}

int
vdgx_client_services (vdgx_client_t *self, char **json_p)
{
    assert (self && json_p);
    return s_mapcall (self, "mmi.services", s_small_map (NULL, NULL), json_p, NULL);
}

int
vdgx_client_health (vdgx_client_t *self, bool *healthy_p, char **json_p)
{
    assert (self);
    bool healthy = false;
    int rc = s_mapcall (self, "mmi.health", s_small_map (NULL, NULL), json_p, &healthy);
    if (healthy_p)
        *healthy_p = rc == 0 && healthy;
    return rc;
}

int
vdgx_client_metrics (vdgx_client_t *self, char **json_p)
{
    assert (self && json_p);
    return s_mapcall (self, "mmi.metrics", s_small_map (NULL, NULL), json_p, NULL);
}

char *
vdgx_client_job_json (const vdgx_jobstatus_t *job)
{
    assert (job);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    char *text = NULL;
    if (vdgx_jobstatus_pack (job, &pk) == 0) {
        msgpack_unpacked up;
        vdgx_error_t err;
        vdgx_error_init (&err);
        if (vdgx_unpack (&up, sbuf.data, sbuf.size, &err) == 0) {
            json_t *j = vdgx_mp_to_json (&up.data);
            text = json_dumps (j, JSON_COMPACT);
            json_decref (j);
            msgpack_unpacked_destroy (&up);
        }
    }
    msgpack_sbuffer_destroy (&sbuf);
    return text;
}

//  ---------------------------------------------------------------------------------------
//  Selftest: what needs no broker (tests/worker drives the library against a real one).

void
vdgx_client_test (bool verbose)
{
    printf (" * vdgx_client: ");
    {   //  Image files: a real PNG is taken, a cut one, a missing one, a huge one are not.
        static const uint8_t png [] = {
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
            0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
            0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
            0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50, 0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34,
            0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82 };
        char dir [] = "/tmp/vdgx-client-test-XXXXXX";
        assert (mkdtemp (dir));
        char path [64], err [300];
        snprintf (path, sizeof path, "%s/a.png", dir);
        vdgx_genreq_t req;
        vdgx_genreq_init (&req);
        for (int round = 0; round < 3; round++) {
            FILE *f = fopen (path, "wb");
            size_t n = round == 1? sizeof png - 9: sizeof png;
            assert (f && fwrite (png, 1, n, f) == n);
            fclose (f);
            if (round == 2)                     //  a sparse file over the byte limit
                assert (truncate (path, VDGX_IMAGE_BYTES_MAX + 1) == 0);
            if (round == 0) {
                assert (vdgx_client_image_file (&req, "image", path, err, sizeof err) == 0);
                assert (req.image_size == sizeof png && memcmp (req.image, png, sizeof png) == 0);
                assert (vdgx_client_image_file (&req, "last_image", path, err, sizeof err) == 0);
                assert (req.last_image_size == sizeof png);
            }
            else {
                assert (vdgx_client_image_file (&req, "image", path, err, sizeof err) == -1);
                assert (strstr (err, path) && strstr (err, round == 1? "truncated PNG": "too large"));
            }
        }
        snprintf (path, sizeof path, "%s/none.png", dir);
        assert (vdgx_client_image_file (&req, "image", path, err, sizeof err) == -1);
        assert (strstr (err, "No such file"));
        assert (req.image_size == sizeof png);      //  failures leave the request as it was
        snprintf (path, sizeof path, "%s/a.png", dir);
        remove (path);
        rmdir (dir);
        vdgx_genreq_clear (&req);
    }
    //  Endpoints: arguments, then environment, then defaults; bad ones refused.
    assert (vdgx_client_new ("bogus", NULL) == NULL);
    assert (vdgx_client_new (NULL, "http://x") == NULL);
    char *saved = getenv ("VDGX_BROKER")? strdup (getenv ("VDGX_BROKER")): NULL;
    setenv ("VDGX_BROKER", "tcp://127.0.0.1:9", 1);
    vdgx_client_t *client = vdgx_client_new (NULL, NULL);
    assert (client);
    assert (streq (client->broker, "tcp://127.0.0.1:9"));
    vdgx_client_destroy (&client);
    assert (client == NULL);
    if (saved) {
        setenv ("VDGX_BROKER", saved, 1);
        free (saved);
    }
    else
        unsetenv ("VDGX_BROKER");

    //  A dead endpoint: every call times out after (retries + 1) tries, never hangs.
    client = vdgx_client_new ("tcp://127.0.0.1:9", "tcp://127.0.0.1:9");
    vdgx_client_set_timeout (client, 150);
    vdgx_client_set_retries (client, 1);
    int64_t t0 = zclock_mono ();
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    assert (vdgx_client_status (client, "job-1", &job) == -1);
    int64_t elapsed = zclock_mono () - t0;
    assert (streq (vdgx_client_error_code (client), "timeout"));
    assert (strstr (vdgx_client_error (client), "2 tries"));
    assert (elapsed >= 280 && elapsed < 2000);
    if (verbose)
        printf ("\n   dead endpoint: %s (%lld ms)\n", vdgx_client_error (client), (long long) elapsed);

    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "testgen");
    req.prompt = strdup ("hello");
    char *id = (char *) "untouched";
    vdgx_submit_info_t info;
    assert (vdgx_client_submit (client, &req, &id, &info) == -1);
    assert (id == NULL);
    assert (streq (vdgx_client_error_code (client), "timeout"));
    vdgx_genreq_clear (&req);
    char *json = (char *) "untouched";
    assert (vdgx_client_health (client, NULL, &json) == -1 && json == NULL);
    bool healthy = true;
    assert (vdgx_client_health (client, &healthy, NULL) == -1 && !healthy);
    assert (vdgx_client_workers (client, "testgen", &json) == -1 && json == NULL);
    assert (vdgx_client_metrics (client, &json) == -1);
    assert (vdgx_client_services (client, &json) == -1);
    assert (vdgx_client_models (client, &json) == -1);
    uint32_t n = 7;
    assert (vdgx_client_unload (client, "testgen", &n) == -1 && n == 7);
    assert (vdgx_client_drain (client, NULL, "gpu2", &n) == -1 && n == 7);
    assert (vdgx_client_cancel (client, "job-1", NULL) == -1);
    assert (vdgx_client_delete (client, "job-1") == -1);
    //  wait gives up at its own deadline even when every status call times out
    t0 = zclock_mono ();
    assert (vdgx_client_wait (client, "job-1", 500, NULL, NULL, &job) == -1);
    assert (streq (vdgx_client_error_code (client), "timeout"));
    assert (zclock_mono () - t0 < 3000);

    //  Argument errors are caught before anything is sent.
    assert (vdgx_client_status (client, "bad id!", &job) == -1);
    assert (streq (vdgx_client_error_code (client), "bad_request"));
    vdgx_jobstatus_t *jobs = NULL;
    size_t count = 5;
    assert (vdgx_client_list (client, "sleeping", NULL, 0, NULL, false, &jobs, &count, NULL) == -1);
    assert (streq (vdgx_client_error_code (client), "bad_request") && count == 0 && !jobs);
    assert (vdgx_client_list (client, NULL, NULL, 5000, NULL, false, &jobs, &count, NULL) == -1);
    assert (vdgx_client_unload (client, "", NULL) == -1);
    assert (vdgx_client_drain (client, NULL, "", NULL) == -1);
    assert (streq (vdgx_client_error_code (client), "bad_request"));

    //  result: nothing is left behind on failure
    char dir [] = "/tmp/vdgx-client-test-XXXXXX";
    assert (mkdtemp (dir));
    char *path = zsys_sprintf ("%s/out.mp4", dir);
    assert (vdgx_client_result (client, "job-1", path) == -1);
    assert (streq (vdgx_client_error_code (client), "timeout"));
    zdir_t *zd = zdir_new (dir, NULL);
    assert (zd && zdir_count (zd) == 0);
    zdir_destroy (&zd);
    assert (vdgx_client_result (client, "job-1", "/nonexistent-dir/x.mp4") == -1);
    assert (streq (vdgx_client_error_code (client), "io"));
    zstr_free (&path);
    rmdir (dir);

    //  CURVE files that do not exist
    assert (vdgx_client_set_curve (client, "/nonexistent.pub", "/nonexistent") == -1);
    assert (streq (vdgx_client_error_code (client), "io"));

    //  job JSON uses the wire names
    job.state = VDGX_JOB_RUNNING;
    job.phase = VDGX_PHASE_DENOISING;
    snprintf (job.id, sizeof job.id, "job-1");
    snprintf (job.model, sizeof job.model, "testgen");
    job.step = 3;
    job.steps = 8;
    job.percent = 40;
    json = vdgx_client_job_json (&job);
    assert (json);
    json_error_t jerr;
    json_t *j = json_loads (json, 0, &jerr);
    assert (j);
    assert (streq (json_string_value (json_object_get (j, "state")), "running"));
    assert (streq (json_string_value (json_object_get (j, "phase")), "denoising"));
    assert (json_integer_value (json_object_get (j, "step")) == 3);
    json_decref (j);
    free (json);
    vdgx_jobstatus_clear (&job);
    vdgx_client_destroy (&client);
    printf ("OK\n");
}
