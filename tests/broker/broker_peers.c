/*  broker_peers.c - test peers for the broker tests (see broker_peers.h).
*/
#include "broker_peers.h"
#include "vdgx_sha256.h"
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

//  ---------------------------------------------------------------------------------------
//  Environment and processes

static pid_t s_children [64];
static int s_nchildren;
static tenv_t *s_env;

void
tenv_init (tenv_t *env, const char *broker_bin, const char *self_bin)
{
    memset (env, 0, sizeof *env);
    snprintf (env->dir, sizeof env->dir, "/tmp/vdgx-btest-XXXXXX");
    TCHECK (mkdtemp (env->dir));
    snprintf (env->endpoint, sizeof env->endpoint, "ipc://%s/b.sock", env->dir);
    snprintf (env->events, sizeof env->events, "ipc://%s/e.sock", env->dir);
    snprintf (env->data, sizeof env->data, "%s/data", env->dir);
    env->broker_bin = broker_bin;
    env->self_bin = self_bin;
    s_env = env;
}

void
tenv_flag (tenv_t *env, const char *flag)
{
    TCHECK (env->nextra < 16);
    snprintf (env->extra [env->nextra++], 128, "%s", flag);
}


void
tenv_fail (const char *file, int line, const char *what)
{
    fprintf (stderr, "%s:%d: check failed: %s\n", file, line, what);
    //  Children share our stdout: ctest would wait for them. Kill them all first.
    for (int i = 0; i < s_nchildren; i++)
        if (s_children [i] > 0)
            kill (s_children [i], SIGKILL);
    for (int i = 0; i < s_nchildren; i++)
        if (s_children [i] > 0)
            waitpid (s_children [i], NULL, 0);
    if (s_env) {
        s_env->broker = 0;
        tenv_cleanup (s_env);
    }
    _exit (1);
}

static pid_t
s_spawn (char *const argv [])
{
    pid_t pid = fork ();
    TCHECK (pid >= 0);
    if (pid > 0 && s_nchildren < 64)
        s_children [s_nchildren++] = pid;
    if (pid == 0) {
        //  Die with the test, even when it is killed (ctest timeout, sanitizer abort).
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        execv (argv [0], argv);
        fprintf (stderr, "exec %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
    return pid;
}

int
tenv_start_broker (tenv_t *env)
{
    char *argv [48];
    int n = 0;
    argv [n++] = (char *) env->broker_bin;
    argv [n++] = "--bind";          argv [n++] = env->endpoint;
    argv [n++] = "--events";        argv [n++] = env->events;
    argv [n++] = "--data";          argv [n++] = env->data;
    argv [n++] = "--heartbeat-ms";  argv [n++] = "100";
    //  A 1 s liveness window: tests stay right on a machine loaded enough to stall a
    //  process for most of a second.
    argv [n++] = "--liveness";      argv [n++] = "10";
    for (int i = 0; i < env->nextra; i++)
        argv [n++] = env->extra [i];
    argv [n] = NULL;
    env->broker = s_spawn (argv);
    //  Ready when mmi.health answers (30 s at most: a loaded machine starts it slowly).
    zsock_t *client = tclient_new (env);
    for (int i = 0; i < 150; i++) {
        zframe_t *body = zframe_new ("\x80", 1);
        zframe_t *reply = tclient_call (client, "mmi.health", &body, 200);
        if (reply) {
            zframe_destroy (&reply);
            zsock_destroy (&client);
            return 0;
        }
        int status;
        if (waitpid (env->broker, &status, WNOHANG) == env->broker) {
            env->broker = 0;
            break;
        }
    }
    zsock_destroy (&client);
    return -1;
}

void
tenv_track (pid_t pid)
{
    if (pid > 0 && s_nchildren < 64)
        s_children [s_nchildren++] = pid;
}

int
tenv_stop (pid_t pid, int sig)
{
    if (pid <= 0)
        return -1;
    for (int i = 0; i < s_nchildren; i++)
        if (s_children [i] == pid)
            s_children [i] = 0;
    kill (pid, sig);
    int status = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid (pid, &status, WNOHANG) == pid)
            return WIFEXITED (status)? WEXITSTATUS (status): -WTERMSIG (status);
        zclock_sleep (50);
    }
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
    return -SIGKILL;
}

static int
s_remove (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;
    return remove (path);
}

void
tenv_cleanup (tenv_t *env)
{
    if (env->broker > 0)
        tenv_stop (env->broker, SIGKILL);
    env->broker = 0;
    if (*env->dir && nftw (env->dir, s_remove, 16, FTW_DEPTH | FTW_PHYS))
        fprintf (stderr, "warning: cannot remove %s\n", env->dir);
}

pid_t
tenv_worker (tenv_t *env, const char *service, ...)
{
    char *argv [48];
    int n = 0;
    argv [n++] = (char *) env->self_bin;
    argv [n++] = "worker";
    argv [n++] = "--endpoint";
    argv [n++] = env->endpoint;
    argv [n++] = "--service";
    argv [n++] = (char *) service;
    va_list args;
    va_start (args, service);
    char *arg;
    while ((arg = va_arg (args, char *)) && n < 46)
        argv [n++] = arg;
    va_end (args);
    argv [n] = NULL;
    return s_spawn (argv);
}

//  ---------------------------------------------------------------------------------------
//  Client helpers

zsock_t *
tclient_new (tenv_t *env)
{
    zsock_t *client = zsock_new (ZMQ_DEALER);
    TCHECK (client);
    zsock_set_linger (client, 0);
    TCHECK (zsock_connect (client, "%s", env->endpoint) == 0);
    return client;
}

zframe_t *
tclient_call (zsock_t *client, const char *service, zframe_t **body_p, int timeout_ms)
{
    zmsg_t *body = zmsg_new ();
    zmsg_append (body, body_p);
    zmsg_t *msg = vdgx_mdp_client_request (service, &body);
    TCHECK (msg);
    zmsg_send (&msg, client);
    zpoller_t *poller = zpoller_new (client, NULL);
    zframe_t *result = NULL;
    int64_t deadline = zclock_mono () + timeout_ms;
    while (!result) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 || !zpoller_wait (poller, (int) left))
            break;
        zmsg_t *reply = zmsg_recv (client);
        vdgx_mdp_t in;
        vdgx_error_t err;
        vdgx_mdp_init (&in);
        if (vdgx_mdp_decode (&in, &reply, &err) == 0 && !in.worker
        &&  in.command == VDGX_MDPC_FINAL && streq (in.service, service))
            result = zmsg_pop (in.body);
        vdgx_mdp_clear (&in);
    }
    zpoller_destroy (&poller);
    return result;
}

int
tclient_jobs (zsock_t *client, const vdgx_jobcmd_t *cmd, vdgx_jobreply_t *reply)
{
    zframe_t *body = vdgx_jobcmd_frame (cmd);
    TCHECK (body);
    vdgx_jobreply_init (reply, cmd->cmd);
    zframe_t *frame = tclient_call (client, VDGX_JOBS_SERVICE, &body, 15000);
    if (!frame)
        return -1;
    vdgx_error_t err;
    int rc = vdgx_jobreply_decode (reply, zframe_data (frame), zframe_size (frame), &err);
    if (rc)
        fprintf (stderr, "cannot decode %s reply: %s (%s)\n", vdgx_jobcmd_name (cmd->cmd),
                 err.message, err.field);
    zframe_destroy (&frame);
    return rc == 0 && reply->ok? 0: -1;
}

int
tclient_submit (zsock_t *client, const char *model, const char *prompt, uint64_t seed,
                bool has_seed, vdgx_priority_t priority, const char *idem, bool no_cache,
                vdgx_jobreply_t *reply)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_SUBMIT;
    snprintf (cmd.request.model, sizeof cmd.request.model, "%s", model);
    cmd.request.prompt = strdup (prompt);
    cmd.request.has_seed = has_seed;
    cmd.request.seed = seed;
    cmd.request.steps = 4;
    cmd.request.priority = priority;
    cmd.request.no_cache = no_cache;
    if (idem)
        snprintf (cmd.request.idempotency_key, sizeof cmd.request.idempotency_key, "%s", idem);
    int rc = tclient_jobs (client, &cmd, reply);
    vdgx_jobcmd_clear (&cmd);
    return rc;
}

int
tclient_status (zsock_t *client, const char *id, vdgx_jobstatus_t *status)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_STATUS;
    snprintf (cmd.id, sizeof cmd.id, "%s", id);
    vdgx_jobreply_t reply;
    int rc = tclient_jobs (client, &cmd, &reply);
    vdgx_jobstatus_init (status);
    if (rc == 0)
        vdgx_jobstatus_copy (status, &reply.job);
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    return rc;
}

int
tclient_wait (zsock_t *client, const char *id, int timeout_ms, vdgx_jobstatus_t *status)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        if (tclient_status (client, id, status) == 0) {
            if (vdgx_job_state_is_final (status->state))
                return (int) status->state;
        }
        vdgx_jobstatus_clear (status);
        zclock_sleep (50);
    }
    return -1;
}

int64_t
tclient_fetch (zsock_t *client, const char *id, uint32_t chunk, char sha [65])
{
    vdgx_sha256_t ctx;
    vdgx_sha256_init (&ctx);
    uint64_t offset = 0, size = UINT64_MAX;
    char want [65] = "";
    while (offset < size) {
        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = VDGX_JOBCMD_RESULT;
        snprintf (cmd.id, sizeof cmd.id, "%s", id);
        cmd.offset = offset;
        cmd.length = chunk;
        vdgx_jobreply_t reply;
        int rc = tclient_jobs (client, &cmd, &reply);
        vdgx_jobcmd_clear (&cmd);
        if (rc || reply.offset != offset || (reply.data_size == 0 && reply.size > offset)) {
            vdgx_jobreply_clear (&reply);
            return -1;
        }
        size = reply.size;
        snprintf (want, sizeof want, "%s", reply.sha256);
        vdgx_sha256_update (&ctx, reply.data, reply.data_size);
        offset += reply.data_size;
        vdgx_jobreply_clear (&reply);
    }
    vdgx_sha256_final_hex (&ctx, sha);
    return streq (sha, want)? (int64_t) size: -1;
}

int
tclient_mmi (zsock_t *client, const char *service, msgpack_unpacked *out, zframe_t **frame_p)
{
    zframe_t *body = zframe_new ("\x80", 1);
    zframe_t *frame = tclient_call (client, service, &body, 5000);
    *frame_p = NULL;
    if (!frame)
        return -1;
    vdgx_error_t err;
    int rc = vdgx_unpack (out, zframe_data (frame), zframe_size (frame), &err);
    if (rc)
        zframe_destroy (&frame);
    *frame_p = frame;           //  the unpacked objects point into it
    return rc;
}

msgpack_object *
tmap_get (msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object_kv *kv = &map->via.map.ptr [i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == len
        &&  memcmp (kv->key.via.str.ptr, key, len) == 0)
            return &kv->val;
    }
    return NULL;
}

uint64_t
tmap_uint (msgpack_object *map, const char *key)
{
    msgpack_object *v = tmap_get (map, key);
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER? v->via.u64: 0;
}

uint64_t
tmetrics_counter (msgpack_object *reply, const char *name)
{
    return tmap_uint (tmap_get (reply, "counters"), name);
}

//  ---------------------------------------------------------------------------------------
//  The test worker

void
tworker_output (const char *id, uint8_t *buf, size_t size)
{
    uint64_t x = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        x = (x ^ (uint8_t) *p) * 1099511628211ULL;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf [i] = (uint8_t) x;
    }
}

typedef struct {
    const char *endpoint, *service, *host, *weights;
    const char *record;         //  appends "<id> <attempt> <image sha256|-> <last_image sha256|->"
    int proto;
    bool plain, control, bad_sha, partials, delim, no_token;
    bool chunk_gap;             //  every chunk after the first claims one byte too far
    vdgx_wstate_state_t state;
    uint64_t budget, model_bytes;
    int steps, step_ms, load_ms, hb_ms;
    size_t size;
    zsock_t *sock;
    int64_t last_hb, last_heard;
    zlist_t *pending;           //  finished, not acknowledged: "id token" ("id -" without)
    char job [80];              //  current job
    char token [VDGX_TOKEN_MAX + 1];    //  its attempt token
    bool cancel, reconnect, quit;
} s_worker_t;

static zframe_t *
s_state_frame (s_worker_t *w)
{
    vdgx_wstate_t ws;
    vdgx_wstate_init (&ws);
    snprintf (ws.service, sizeof ws.service, "%s", w->service);
    snprintf (ws.host, sizeof ws.host, "%s", w->host);
    ws.pid = (uint32_t) getpid ();
    ws.state = w->state;
    ws.rss_bytes = 1000;
    ws.peak_bytes = 2000;
    ws.model_bytes = w->model_bytes;
    ws.host_budget_bytes = w->budget;
    snprintf (ws.device, sizeof ws.device, "cpu");
    vdgx_wstate_add_precision (&ws, "fp32");
    snprintf (ws.job, sizeof ws.job, "%.64s", w->job);
    if (w->control)
        vdgx_wstate_add_ext (&ws, "control");
    if (!w->no_token)
        vdgx_wstate_add_ext (&ws, "token");
    for (char *e = (char *) zlist_first (w->pending); e; e = (char *) zlist_next (w->pending)) {
        char id [80], token [VDGX_TOKEN_MAX + 1];
        if (sscanf (e, "%79s %32s", id, token) != 2)
            continue;
        if (streq (token, "-"))
            vdgx_wstate_add_pending (&ws, id);
        else
            vdgx_wstate_add_pending_token (&ws, id, token);
    }
    zframe_t *frame = vdgx_wstate_frame (&ws);
    vdgx_wstate_clear (&ws);
    if (frame && *w->weights) {
        //  weights_id is a map key the codec may not know: append it by hand.
        msgpack_unpacked u;
        vdgx_error_t err;
        if (vdgx_unpack (&u, zframe_data (frame), zframe_size (frame), &err) == 0) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init (&sb);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map (&pk, u.data.via.map.size + 1);
            for (uint32_t i = 0; i < u.data.via.map.size; i++) {
                msgpack_pack_object (&pk, u.data.via.map.ptr [i].key);
                msgpack_pack_object (&pk, u.data.via.map.ptr [i].val);
            }
            vdgx_pack_str (&pk, "weights_id");
            vdgx_pack_str (&pk, w->weights);
            zframe_destroy (&frame);
            frame = zframe_new (sb.data, sb.size);
            msgpack_sbuffer_destroy (&sb);
            msgpack_unpacked_destroy (&u);
        }
    }
    return frame;
}

static void
s_wsend (s_worker_t *w, zmsg_t *msg)
{
    if (msg && w->delim && w->proto == 2)
        zmsg_pushmem (msg, NULL, 0);
    if (msg)
        zmsg_send (&msg, w->sock);
}

static void
s_heartbeat (s_worker_t *w)
{
    zmsg_t *body = NULL;
    if (!w->plain && w->proto == 2) {
        body = zmsg_new ();
        zframe_t *frame = s_state_frame (w);
        zmsg_append (body, &frame);
    }
    s_wsend (w, vdgx_mdp_worker_command ((uint8_t) w->proto, VDGX_MDPW_HEARTBEAT, &body));
    w->last_hb = zclock_mono ();
}

static void
s_connect (s_worker_t *w)
{
    zsock_destroy (&w->sock);
    w->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (w->sock, 0);
    zsock_set_sndhwm (w->sock, 0);
    zsock_connect (w->sock, "%s", w->endpoint);
    zframe_t *state = (!w->plain && w->proto == 2)? s_state_frame (w): NULL;
    s_wsend (w, vdgx_mdp_worker_ready ((uint8_t) w->proto, w->service, &state));
    w->last_hb = w->last_heard = zclock_mono ();
    w->reconnect = false;
}

static void
s_send_body (s_worker_t *w, uint8_t cmd, const char *id, zframe_t *frame)
{
    zframe_t *address = zframe_new (id, strlen (id));
    zmsg_t *body = zmsg_new ();
    zmsg_append (body, &frame);
    s_wsend (w, vdgx_mdp_worker_envelope ((uint8_t) w->proto, cmd, address, &body));
    zframe_destroy (&address);
}

static void
s_send_result (s_worker_t *w, const char *id, const char *token)
{
    uint8_t *data = (uint8_t *) malloc (w->size? w->size: 1);
    tworker_output (id, data, w->size);
    size_t chunk = 256 * 1024;
    for (size_t off = 0; off < w->size && w->proto == 2; off += chunk) {
        vdgx_chunk_t c;
        vdgx_chunk_init (&c);
        c.offset = off + (w->chunk_gap && off? 1: 0);
        c.size = w->size - off < chunk? w->size - off: chunk;
        c.data = (uint8_t *) malloc (c.size);
        memcpy (c.data, data + off, c.size);
        snprintf (c.token, sizeof c.token, "%s", token);
        s_send_body (w, VDGX_MDPW_PARTIAL, id, vdgx_chunk_frame (&c));
        vdgx_chunk_clear (&c);
    }
    vdgx_result_t res;
    vdgx_result_init (&res);
    res.ok = true;
    res.video.size = w->size;
    vdgx_sha256_hex (data, w->size, res.video.sha256);
    if (w->bad_sha)
        res.video.sha256 [0] = res.video.sha256 [0] == 'a'? 'b': 'a';
    snprintf (res.video.mime, sizeof res.video.mime, "video/mp4");
    res.video.width = 64;
    res.video.height = 64;
    res.video.frames = 5;
    res.video.fps = 16;
    res.video.seconds = 5.0 / 16;
    res.timings.load = 0.01;
    res.timings.denoise = 0.02;
    snprintf (res.token, sizeof res.token, "%s", token);
    s_send_body (w, VDGX_MDPW_FINAL, id, vdgx_result_frame (&res));
    vdgx_result_clear (&res);
    free (data);
}

static void s_wait_events (s_worker_t *w, int ms);

static void
s_run_job (s_worker_t *w, zframe_t *address, zmsg_t *body)
{
    zframe_t *frame = zmsg_first (body);
    vdgx_job_t job;
    vdgx_job_init (&job);
    vdgx_error_t err;
    char id [80];
    snprintf (id, sizeof id, "%.*s", (int) zframe_size (address), (char *) zframe_data (address));
    if (!frame || vdgx_job_decode (&job, zframe_data (frame), zframe_size (frame), &err)) {
        //  Not a job: echo service. Optionally one PARTIAL first.
        if (w->partials && w->proto == 2) {
            zmsg_t *partial = zmsg_new ();
            zmsg_addstr (partial, "partial");
            s_wsend (w, vdgx_mdp_worker_envelope ((uint8_t) w->proto, VDGX_MDPW_PARTIAL, address,
                                                  &partial));
        }
        zmsg_t *reply = zmsg_dup (body);
        s_wsend (w, vdgx_mdp_worker_envelope ((uint8_t) w->proto, VDGX_MDPW_FINAL, address, &reply));
        vdgx_job_clear (&job);
        return;
    }
    if (w->record) {
        char image [65] = "-", last [65] = "-";
        if (job.request.image)
            vdgx_sha256_hex (job.request.image, job.request.image_size, image);
        if (job.request.last_image)
            vdgx_sha256_hex (job.request.last_image, job.request.last_image_size, last);
        FILE *f = fopen (w->record, "a");
        if (f) {
            fprintf (f, "%s %u %s %s\n", id, job.attempt, image, last);
            fclose (f);
        }
    }
    snprintf (w->job, sizeof w->job, "%s", id);
    snprintf (w->token, sizeof w->token, "%s", job.token);
    w->cancel = false;
    if (w->state == VDGX_WSTATE_COLD) {
        w->state = VDGX_WSTATE_LOADING;
        s_heartbeat (w);
        s_wait_events (w, w->load_ms);
    }
    w->state = VDGX_WSTATE_BUSY;
    s_heartbeat (w);
    for (int step = 1; step <= w->steps && !w->cancel; step++) {
        vdgx_progress_t p;
        vdgx_progress_init (&p);
        snprintf (p.id, sizeof p.id, "%.64s", id);
        p.phase = VDGX_PHASE_DENOISING;
        p.step = (uint32_t) step;
        p.steps = (uint32_t) w->steps;
        p.percent = 100.0 * step / w->steps;
        snprintf (p.token, sizeof p.token, "%s", w->token);
        if (w->proto == 2)
            s_send_body (w, VDGX_MDPW_PARTIAL, id, vdgx_progress_frame (&p));
        vdgx_progress_clear (&p);
        s_wait_events (w, w->step_ms);
    }
    if (w->cancel) {
        vdgx_result_t res;
        vdgx_result_init (&res);
        res.ok = false;
        vdgx_error_set (&res.error, VDGX_E_CANCELLED, NULL, "cancelled at a step boundary");
        snprintf (res.token, sizeof res.token, "%s", w->token);
        s_send_body (w, VDGX_MDPW_FINAL, id, vdgx_result_frame (&res));
        vdgx_result_clear (&res);
    }
    else {
        if (w->control && zlist_size (w->pending) < 60) {
            char entry [128];
            snprintf (entry, sizeof entry, "%s %s", id, *w->token? w->token: "-");
            zlist_append (w->pending, entry);
        }
        s_send_result (w, id, w->token);
    }
    w->job [0] = 0;
    w->state = VDGX_WSTATE_WARM;
    s_heartbeat (w);
    vdgx_job_clear (&job);
}

static void
s_forget (s_worker_t *w, const char *id)
{
    size_t n = strlen (id);
    for (char *p = (char *) zlist_first (w->pending); p; p = (char *) zlist_next (w->pending))
        if (strncmp (p, id, n) == 0 && p [n] == ' ') {
            zlist_remove (w->pending, p);
            break;
        }
}

//  Handles one message from the broker. Jobs run only when !busy (the broker sends one at a time).
static void
s_handle (s_worker_t *w, zmsg_t *msg, bool busy)
{
    if (w->delim && w->proto == 2) {
        zframe_t *empty = zmsg_pop (msg);
        zframe_destroy (&empty);
    }
    vdgx_mdp_t in;
    vdgx_mdp_init (&in);
    vdgx_error_t err;
    if (vdgx_mdp_decode (&in, &msg, &err) || !in.worker) {
        fprintf (stderr, "test worker: bad message from broker: %s\n", err.message);
        vdgx_mdp_clear (&in);
        return;
    }
    w->last_heard = zclock_mono ();
    if (in.command == VDGX_MDPW_DISCONNECT)
        w->reconnect = true;
    else
    if (in.command == VDGX_MDPW_REQUEST && !busy)
        s_run_job (w, in.address, in.body);
    else
    if (in.command == VDGX_MDPW_CONTROL) {
        vdgx_control_t c;
        vdgx_control_init (&c);
        zframe_t *frame = zmsg_first (in.body);
        if (frame && vdgx_control_decode (&c, zframe_data (frame), zframe_size (frame), &err) == 0) {
            if (c.op == VDGX_CONTROL_CANCEL && streq (c.id, w->job))
                w->cancel = true;
            else
            if (c.op == VDGX_CONTROL_ACK || c.op == VDGX_CONTROL_DROP)
                s_forget (w, c.id);
            else
            if (c.op == VDGX_CONTROL_RESEND && !busy) {
                char token [VDGX_TOKEN_MAX + 1] = "";
                size_t n = strlen (c.id);
                for (char *e = (char *) zlist_first (w->pending); e; e = (char *) zlist_next (w->pending))
                    if (strncmp (e, c.id, n) == 0 && e [n] == ' ' && !streq (e + n + 1, "-"))
                        snprintf (token, sizeof token, "%s", e + n + 1);
                s_send_result (w, c.id, token);
            }
            else
            if (c.op == VDGX_CONTROL_UNLOAD && !busy) {
                w->state = VDGX_WSTATE_UNLOADING;
                s_heartbeat (w);
                zclock_sleep (20);
                w->state = VDGX_WSTATE_COLD;
                s_heartbeat (w);
            }
            else
            if (c.op == VDGX_CONTROL_DRAIN)
                w->quit = true;
        }
        vdgx_control_clear (&c);
    }
    vdgx_mdp_clear (&in);
}

static void
s_wait_events (s_worker_t *w, int ms)
{
    int64_t end = zclock_mono () + ms;
    zpoller_t *poller = zpoller_new (w->sock, NULL);
    while (!w->cancel) {
        int64_t now = zclock_mono ();
        if (now >= end)
            break;
        if (now - w->last_hb >= w->hb_ms)
            s_heartbeat (w);
        int64_t wait = end - now < w->hb_ms? end - now: w->hb_ms;
        if (zpoller_wait (poller, (int) wait)) {
            zmsg_t *msg = zmsg_recv (w->sock);
            if (msg)
                s_handle (w, msg, true);
        }
    }
    zpoller_destroy (&poller);
}

int
tworker_main (int argc, char *argv [])
{
    s_worker_t w;
    memset (&w, 0, sizeof w);
    w.service = "m";
    w.host = "testhost";
    w.weights = "";
    w.proto = 2;
    w.control = true;
    w.state = VDGX_WSTATE_WARM;
    w.steps = 3;
    w.step_ms = 20;
    w.load_ms = 20;
    w.hb_ms = 100;
    w.size = 300000;
    w.pending = zlist_new ();
    zlist_autofree (w.pending);
    for (int i = 0; i < argc; i++) {
        const char *a = argv [i];
        const char *v = i + 1 < argc? argv [i + 1]: "";
        if (streq (a, "--endpoint"))        w.endpoint = v, i++;
        else if (streq (a, "--service"))    w.service = v, i++;
        else if (streq (a, "--host"))       w.host = v, i++;
        else if (streq (a, "--weights"))    w.weights = v, i++;
        else if (streq (a, "--record"))     w.record = v, i++;
        else if (streq (a, "--proto"))      w.proto = atoi (v), i++;
        else if (streq (a, "--budget"))     w.budget = strtoull (v, NULL, 10), i++;
        else if (streq (a, "--model-bytes")) w.model_bytes = strtoull (v, NULL, 10), i++;
        else if (streq (a, "--steps"))      w.steps = atoi (v), i++;
        else if (streq (a, "--step-ms"))    w.step_ms = atoi (v), i++;
        else if (streq (a, "--load-ms"))    w.load_ms = atoi (v), i++;
        else if (streq (a, "--size"))       w.size = strtoull (v, NULL, 10), i++;
        else if (streq (a, "--cold"))       w.state = VDGX_WSTATE_COLD;
        else if (streq (a, "--plain"))      w.plain = true, w.control = false;
        else if (streq (a, "--no-control")) w.control = false;
        else if (streq (a, "--bad-sha"))    w.bad_sha = true;
        else if (streq (a, "--chunk-gap"))  w.chunk_gap = true;
        else if (streq (a, "--partials"))   w.partials = true;
        else if (streq (a, "--delim"))      w.delim = true;
        else if (streq (a, "--no-token"))   w.no_token = true;
        else if (streq (a, "--curve-dir"))  {
            //  Worker certificate DIR/worker.key, broker key DIR/broker.key.
            i++;
        }
    }
    if (!w.endpoint)
        return 2;
    s_connect (&w);
    zpoller_t *poller = NULL;
    while (!w.quit && !zsys_interrupted) {
        if (w.reconnect || zclock_mono () - w.last_heard > 30 * w.hb_ms) {
            zpoller_destroy (&poller);
            zclock_sleep (w.hb_ms / 2);
            s_connect (&w);
        }
        if (!poller)
            poller = zpoller_new (w.sock, NULL);
        if (zclock_mono () - w.last_hb >= w.hb_ms)
            s_heartbeat (&w);
        if (zpoller_wait (poller, w.hb_ms / 2)) {
            zmsg_t *msg = zmsg_recv (w.sock);
            if (msg)
                s_handle (&w, msg, false);
        }
    }
    zpoller_destroy (&poller);
    s_wsend (&w, vdgx_mdp_worker_command ((uint8_t) w.proto, VDGX_MDPW_DISCONNECT, NULL));
    zclock_sleep (20);
    zsock_destroy (&w.sock);
    zlist_destroy (&w.pending);
    return 0;
}

//  A PNG-structured file of about size bytes (IHDR, one IDAT of seeded noise, IEND): what the
//  broker's header check accepts; the test worker never decodes it.
uint8_t *
tpng_file (size_t size, uint32_t seed, size_t *size_p)
{
    static const uint8_t head [] = { 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
        0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 2, 0, 0, 0, 1, 0x20, 8, 2, 0, 0, 0, 1, 2, 3, 4 };
    size_t idat = size - sizeof head - 12 - 12;
    uint8_t *png = (uint8_t *) malloc (size);
    memcpy (png, head, sizeof head);
    uint8_t *p = png + sizeof head;
    p [0] = (uint8_t) (idat >> 24), p [1] = (uint8_t) (idat >> 16);
    p [2] = (uint8_t) (idat >> 8), p [3] = (uint8_t) idat;
    memcpy (p + 4, "IDAT", 4);
    for (size_t i = 0; i < idat; i++) {
        seed = seed * 1664525u + 1013904223u;
        p [8 + i] = (uint8_t) (seed >> 24);
    }
    memcpy (p + 8 + idat, "\0\0\0\0", 4);
    memcpy (p + 12 + idat, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    *size_p = size;
    return png;
}
