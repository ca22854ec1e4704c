/*  broker_tests.c - tests of the real vdgx-broker process with protocol-level peers.
        broker_tests CASE BROKER_BIN        run one case (ctest registers each)
        broker_tests worker ARGS...         a test worker process (used by the cases)
    Every case uses its own temp dir with ipc:// endpoints, so cases run in parallel.
*/
#include "broker_peers.h"
#include "vdgx_sha256.h"
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static tenv_t env;
static bool verbose;

static void
s_log (const char *fmt, ...)
{
    if (!verbose)
        return;
    va_list args;
    va_start (args, fmt);
    vfprintf (stderr, fmt, args);
    va_end (args);
    fputc ('\n', stderr);
}

//  Sends raw frames (for malformed input); frames are strings, "" = empty frame.
static void
s_send_raw (zsock_t *sock, int n, const char **frames)
{
    zmsg_t *msg = zmsg_new ();
    for (int i = 0; i < n; i++)
        zmsg_addstr (msg, frames [i]);
    zmsg_send (&msg, sock);
}

static zmsg_t *
s_recv (zsock_t *sock, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    zmsg_t *msg = zpoller_wait (poller, timeout_ms)? zmsg_recv (sock): NULL;
    zpoller_destroy (&poller);
    return msg;
}

static bool
s_healthy (zsock_t *client)
{
    msgpack_unpacked u;
    zframe_t *uf = NULL;
    if (tclient_mmi (client, "mmi.health", &u, &uf))
        return false;
    msgpack_object *h = tmap_get (&u.data, "healthy");
    bool ok = h && h->type == MSGPACK_OBJECT_BOOLEAN && h->via.boolean;
    msgpack_unpacked_destroy (&u);
    zframe_destroy (&uf);
    return ok;
}

static uint64_t
s_counter (zsock_t *client, const char *name)
{
    msgpack_unpacked u;
    zframe_t *uf = NULL;
    TCHECK (tclient_mmi (client, "mmi.metrics", &u, &uf) == 0);
    uint64_t v = tmetrics_counter (&u.data, name);
    msgpack_unpacked_destroy (&u);
    zframe_destroy (&uf);
    return v;
}

//  Workers of service in mmi.workers, and how many are in state (NULL = any).
static int
s_workers (zsock_t *client, const char *service, const char *state)
{
    msgpack_unpacked u;
    zframe_t *uf = NULL;
    if (tclient_mmi (client, "mmi.workers", &u, &uf))
        return -1;
    msgpack_object *list = tmap_get (&u.data, "workers");
    int n = 0;
    for (uint32_t i = 0; list && i < list->via.array.size; i++) {
        msgpack_object *w = &list->via.array.ptr [i];
        //  Every worker map must pass the strict shared decoder (PROTOCOL.md 5.4).
        vdgx_wstate_t ws;
        vdgx_error_t err;
        vdgx_wstate_init (&ws);
        if (vdgx_wstate_decode_obj (&ws, w, &err) != 0)
            fprintf (stderr, "mmi.workers: %s: %s\n", err.field, err.message);
        TCHECK (vdgx_wstate_decode_obj (&ws, w, &err) == 0);
        vdgx_wstate_clear (&ws);
        msgpack_object *svc = tmap_get (w, "service"), *st = tmap_get (w, "state");
        if (svc && svc->via.str.size == strlen (service)
        &&  memcmp (svc->via.str.ptr, service, svc->via.str.size) == 0
        &&  (!state || (st && st->via.str.size == strlen (state)
                        && memcmp (st->via.str.ptr, state, st->via.str.size) == 0)))
            n++;
    }
    msgpack_unpacked_destroy (&u);
    zframe_destroy (&uf);
    return n;
}

static void
s_wait_workers (zsock_t *client, const char *service, const char *state, int n)
{
    for (int i = 0; i < 300; i++) {
        if (s_workers (client, service, state) == n)
            return;
        zclock_sleep (50);
    }
    fprintf (stderr, "timeout waiting for %d %s workers of %s (have %d)\n", n,
             state? state: "", service, s_workers (client, service, state));
    exit (1);
}

static const char *
s_submit_ok (zsock_t *client, const char *model, const char *prompt, uint64_t seed,
             vdgx_priority_t prio, char id [80])
{
    vdgx_jobreply_t reply;
    int rc = tclient_submit (client, model, prompt, seed, true, prio, NULL, true, &reply);
    if (rc)
        fprintf (stderr, "submit failed: %s %s\n", reply.error.code? reply.error.code: "-",
                 reply.error.message);
    TCHECK (rc == 0);
    snprintf (id, 80, "%s", reply.id);
    vdgx_jobreply_clear (&reply);
    return id;
}

static int
s_wait_state (zsock_t *client, const char *id, int timeout_ms)
{
    vdgx_jobstatus_t st;
    int state = tclient_wait (client, id, timeout_ms, &st);
    if (state >= 0)
        vdgx_jobstatus_clear (&st);
    return state;
}

//  ---------------------------------------------------------------------------------------
//  Cases

//  Protocol conformance: every command, malformed and out-of-order frames, 0.1 peers.
static void
s_case_protocol (void)
{
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    //  MMI
    zframe_t *body = zframe_new ("echo", 4);
    zframe_t *reply = tclient_call (client, "mmi.service", &body, 2000);
    TCHECK (reply && zframe_streq (reply, "404"));
    zframe_destroy (&reply);
    body = zframe_new ("\x80", 1);
    reply = tclient_call (client, "mmi.nothing", &body, 2000);
    TCHECK (reply && zframe_streq (reply, "501"));
    zframe_destroy (&reply);
    pid_t echo = tenv_worker (&env, "echo", "--partials", NULL);
    s_wait_workers (client, "echo", NULL, 1);
    body = zframe_new ("echo", 4);
    reply = tclient_call (client, "mmi.service", &body, 2000);
    TCHECK (reply && zframe_streq (reply, "200"));
    zframe_destroy (&reply);
    //  Plain routing with a PARTIAL then a FINAL (0.2 client).
    zmsg_t *req = zmsg_new ();
    zmsg_addstr (req, "ping");
    zmsg_t *msg = vdgx_mdp_client_request ("echo", &req);
    zmsg_send (&msg, client);
    msg = s_recv (client, 2000);
    TCHECK (msg && zmsg_size (msg) == 4);
    zframe_t *f = zmsg_first (msg);
    f = zmsg_next (msg);
    TCHECK (zframe_data (f) [0] == VDGX_MDPC_PARTIAL);
    zmsg_destroy (&msg);
    msg = s_recv (client, 2000);
    TCHECK (msg && zmsg_size (msg) == 4);
    f = zmsg_first (msg);
    f = zmsg_next (msg);
    TCHECK (zframe_data (f) [0] == VDGX_MDPC_FINAL);
    TCHECK (zframe_streq (zmsg_last (msg), "ping"));
    zmsg_destroy (&msg);
    //  A REQ client (leading empty frame) and an MDP/0.1 client.
    zsock_t *req01 = zsock_new_req (env.endpoint);
    zstr_sendx (req01, VDGX_MDPC01, "echo", "v1", NULL);
    msg = s_recv (req01, 2000);
    TCHECK (msg && zmsg_size (msg) == 3);
    char *h = zmsg_popstr (msg);
    TCHECK (streq (h, VDGX_MDPC01));
    free (h);
    TCHECK (zframe_streq (zmsg_last (msg), "v1"));
    zmsg_destroy (&msg);
    zsock_destroy (&req01);
    zsock_t *req02 = zsock_new_req (env.endpoint);
    zmsg_t *m = zmsg_new ();
    zmsg_addstr (m, VDGX_MDPC02);
    zmsg_addmem (m, "\x01", 1);
    zmsg_addstr (m, "echo");
    zmsg_addstr (m, "v2req");
    zmsg_send (&m, req02);
    //  A REQ socket gets exactly one reply: the PARTIAL (REQ drops nothing; we read it).
    msg = s_recv (req02, 2000);
    TCHECK (msg && zmsg_size (msg) == 4);
    zmsg_destroy (&msg);
    zsock_destroy (&req02);
    //  An MDP/0.1 worker (RFC 7 framing, REPLY ends the request).
    pid_t w01 = tenv_worker (&env, "echo01", "--proto", "1", NULL);
    s_wait_workers (client, "echo01", NULL, 1);
    body = zframe_new ("hello01", 7);
    reply = tclient_call (client, "echo01", &body, 2000);
    TCHECK (reply && zframe_streq (reply, "hello01"));
    zframe_destroy (&reply);
    //  A 0.2 worker using the empty delimiter form.
    pid_t wd = tenv_worker (&env, "echod", "--delim", NULL);
    s_wait_workers (client, "echod", NULL, 1);
    body = zframe_new ("hellod", 6);
    reply = tclient_call (client, "echod", &body, 2000);
    TCHECK (reply && zframe_streq (reply, "hellod"));
    zframe_destroy (&reply);

    //  Malformed input of every kind: dropped and counted, never fatal.
    uint64_t before = s_counter (client, "vdgx_malformed_total");
    zsock_t *bad = tclient_new (&env);
    const char *g1 [] = { "XXXX" };
    s_send_raw (bad, 1, g1);
    const char *g2 [] = { "MDPC02" };
    s_send_raw (bad, 1, g2);
    const char *g3 [] = { "MDPC02", "\x09", "echo", "x" };
    s_send_raw (bad, 4, g3);
    const char *g4 [] = { "MDPW02", "\x09" };
    s_send_raw (bad, 2, g4);
    const char *g5 [] = { "MDPC02", "\x01" };
    s_send_raw (bad, 2, g5);
    const char *g6 [] = { "MDPW02", "\x01" };          //  READY without a service
    s_send_raw (bad, 2, g6);
    const char *g7 [] = { "MDPC03", "\x01", "echo", "x" };
    s_send_raw (bad, 4, g7);
    zstr_send (bad, "");
    //  Too many frames, and a frame over 64 KiB.
    zmsg_t *big = zmsg_new ();
    zmsg_addstr (big, VDGX_MDPC02);
    zmsg_addmem (big, "\x01", 1);
    zmsg_addstr (big, "echo");
    for (int i = 0; i < 70; i++)
        zmsg_addstr (big, "x");
    zmsg_send (&big, bad);
    big = zmsg_new ();
    zmsg_addstr (big, VDGX_MDPC02);
    zmsg_addmem (big, "\x01", 1);
    zmsg_addstr (big, "echo");
    char *huge = (char *) calloc (1, 70000);
    zmsg_addmem (big, huge, 70000);
    free (huge);
    zmsg_send (&big, bad);
    //  Out of order: a worker FINAL with no READY -> DISCONNECT; PARTIAL with no task.
    const char *o1 [] = { "MDPW02", "\x04", "someone", "", "x" };
    s_send_raw (bad, 5, o1);
    msg = s_recv (bad, 2000);
    TCHECK (msg && zmsg_size (msg) == 2);
    f = zmsg_last (msg);
    TCHECK (zframe_data (f) [0] == VDGX_MDPW_DISCONNECT);
    zmsg_destroy (&msg);
    zsock_t *rogue = tclient_new (&env);
    const char *r1 [] = { "MDPW02", "\x01", "rogue" };
    s_send_raw (rogue, 3, r1);
    const char *r2 [] = { "MDPW02", "\x03", "nobody", "", "x" };
    s_send_raw (rogue, 5, r2);
    //  A second READY is a protocol error: the worker is dropped.
    s_send_raw (rogue, 3, r1);
    for (int i = 0; i < 20; i++) {
        msg = s_recv (rogue, 500);
        TCHECK (msg);
        bool disc = zframe_data (zmsg_last (msg)) [0] == VDGX_MDPW_DISCONNECT;
        zmsg_destroy (&msg);
        if (disc)
            break;
    }
    //  READY listing a pending result the broker does not know: CONTROL drop for it.
    zsock_t *pend = tclient_new (&env);
    vdgx_wstate_t ws;
    vdgx_wstate_init (&ws);
    snprintf (ws.service, sizeof ws.service, "pendsvc");
    ws.state = VDGX_WSTATE_WARM;
    vdgx_wstate_add_ext (&ws, "control");
    vdgx_wstate_add_pending (&ws, "nosuchjob");
    zframe_t *wsf = vdgx_wstate_frame (&ws);
    vdgx_wstate_clear (&ws);
    msg = vdgx_mdp_worker_ready (2, "pendsvc", &wsf);
    zmsg_send (&msg, pend);
    bool dropped_pending = false;
    for (int i = 0; i < 20 && !dropped_pending; i++) {
        msg = s_recv (pend, 1000);
        TCHECK (msg);
        vdgx_mdp_t in;
        vdgx_mdp_init (&in);
        vdgx_error_t derr2;
        if (vdgx_mdp_decode (&in, &msg, &derr2) == 0 && in.command == VDGX_MDPW_CONTROL) {
            vdgx_control_t c;
            vdgx_control_init (&c);
            zframe_t *cf = zmsg_first (in.body);
            TCHECK (vdgx_control_decode (&c, zframe_data (cf), zframe_size (cf), &derr2) == 0);
            dropped_pending = c.op == VDGX_CONTROL_DROP && streq (c.id, "nosuchjob");
            vdgx_control_clear (&c);
        }
        vdgx_mdp_clear (&in);
    }
    TCHECK (dropped_pending);
    zsock_destroy (&pend);
    //  Reserved names are refused.
    zsock_t *mmiw = tclient_new (&env);
    const char *r3 [] = { "MDPW02", "\x01", "mmi.evil" };
    s_send_raw (mmiw, 3, r3);
    msg = s_recv (mmiw, 2000);
    TCHECK (msg && zframe_data (zmsg_last (msg)) [0] == VDGX_MDPW_DISCONNECT);
    zmsg_destroy (&msg);
    const char *r4 [] = { "MDPW02", "\x01", "vdgx.jobs" };
    s_send_raw (mmiw, 3, r4);
    msg = s_recv (mmiw, 2000);
    TCHECK (msg && zframe_data (zmsg_last (msg)) [0] == VDGX_MDPW_DISCONNECT);
    zmsg_destroy (&msg);
    zclock_sleep (100);
    uint64_t after = s_counter (client, "vdgx_malformed_total");
    uint64_t dropped = s_counter (client, "vdgx_dropped_total{reason=\"frames\"}")
                     + s_counter (client, "vdgx_dropped_total{reason=\"size\"}");
    s_log ("malformed %llu -> %llu, dropped %llu", (unsigned long long) before,
           (unsigned long long) after, (unsigned long long) dropped);
    TCHECK (after >= before + 8);
    TCHECK (dropped == 2);
    TCHECK (s_workers (client, "rogue", NULL) == 0);
    //  Job service: bad bodies get bad_request naming the field.
    body = zframe_new ("\x81\xa3" "cmd" "\xa4" "nope", 10);
    reply = tclient_call (client, VDGX_JOBS_SERVICE, &body, 2000);
    TCHECK (reply);
    vdgx_error_t err, derr;
    TCHECK (vdgx_error_decode (&err, NULL, zframe_data (reply), zframe_size (reply), &derr) == 0);
    TCHECK (streq (err.code, VDGX_E_BAD_REQUEST));
    zframe_destroy (&reply);
    vdgx_jobreply_t jr;
    TCHECK (tclient_submit (client, "unknown-model", "x", 1, true, VDGX_PRIORITY_NORMAL, NULL,
                            false, &jr) == -1);
    TCHECK (jr.error.code && streq (jr.error.code, VDGX_E_UNKNOWN_MODEL));
    vdgx_jobreply_clear (&jr);
    vdgx_jobcmd_t jc;
    vdgx_jobcmd_init (&jc);
    jc.cmd = VDGX_JOBCMD_STATUS;
    snprintf (jc.id, sizeof jc.id, "nosuchjob");
    TCHECK (tclient_jobs (client, &jc, &jr) == -1 && streq (jr.error.code, VDGX_E_NOT_FOUND));
    vdgx_jobreply_clear (&jr);
    jc.cmd = VDGX_JOBCMD_MODELS;
    TCHECK (tclient_jobs (client, &jc, &jr) == 0 && jr.nmodels >= 3);
    vdgx_jobreply_clear (&jr);
    vdgx_jobcmd_clear (&jc);
    //  mmi.services / mmi.health / mmi.metrics answer msgpack maps.
    msgpack_unpacked u;
    zframe_t *uf = NULL;
    TCHECK (tclient_mmi (client, "mmi.services", &u, &uf) == 0);
    TCHECK (tmap_get (&u.data, "services")->via.array.size >= 3);
    msgpack_unpacked_destroy (&u);
    zframe_destroy (&uf);
    TCHECK (tclient_mmi (client, "mmi.metrics", &u, &uf) == 0);
    TCHECK (tmap_get (&u.data, "histograms") && tmap_get (&u.data, "gauges"));
    msgpack_unpacked_destroy (&u);
    zframe_destroy (&uf);
    TCHECK (s_healthy (client));
    zsock_destroy (&mmiw);
    zsock_destroy (&rogue);
    zsock_destroy (&bad);
    zsock_destroy (&client);
    tenv_stop (echo, SIGTERM);
    tenv_stop (w01, SIGTERM);
    tenv_stop (wd, SIGTERM);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  Heartbeats: a silent worker expires; the broker sends heartbeats; plain requests for a
//  service without workers expire; empty services are deleted.
static void
s_case_heartbeat (void)
{
    tenv_flag (&env, "--expire-s");
    tenv_flag (&env, "1");
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    zsock_t *silent = tclient_new (&env);
    const char *ready [] = { "MDPW02", "\x01", "quiet" };
    s_send_raw (silent, 3, ready);
    s_wait_workers (client, "quiet", NULL, 1);
    //  The broker heartbeats us every 100 ms.
    zmsg_t *msg = s_recv (silent, 1000);
    TCHECK (msg && zframe_data (zmsg_last (msg)) [0] == VDGX_MDPW_HEARTBEAT);
    zmsg_destroy (&msg);
    int64_t t0 = zclock_mono ();
    s_wait_workers (client, "quiet", NULL, 0);
    int64_t gone = zclock_mono () - t0;
    s_log ("silent worker expired after %lld ms", (long long) gone);
    TCHECK (gone >= 500 && gone < 5000);      //  liveness window 1 s
    TCHECK (s_counter (client, "vdgx_workers_expired_total{model=\"quiet\"}") == 1);
    //  A request for a service with no worker expires with a clear error.
    zframe_t *body = zframe_new ("x", 1);
    t0 = zclock_mono ();
    zframe_t *reply = tclient_call (client, "nobody-home", &body, 4000);
    TCHECK (reply);
    vdgx_error_t err, derr;
    TCHECK (vdgx_error_decode (&err, NULL, zframe_data (reply), zframe_size (reply), &derr) == 0);
    TCHECK (streq (err.code, VDGX_E_EXPIRED));
    zframe_destroy (&reply);
    TCHECK (zclock_mono () - t0 >= 900);
    //  The service record is gone again.
    zclock_sleep (300);
    msgpack_unpacked u;
    zframe_t *uf = NULL;
    TCHECK (tclient_mmi (client, "mmi.services", &u, &uf) == 0);
    msgpack_object *list = tmap_get (&u.data, "services");
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        msgpack_object *name = tmap_get (&list->via.array.ptr [i], "name");
        TCHECK (!(name->via.str.size == 11 && memcmp (name->via.str.ptr, "nobody-home", 11) == 0));
    }
    msgpack_unpacked_destroy (&u);
    zframe_destroy (&uf);
    //  A busy worker is watched too: it takes a request, then goes silent.
    const char *ready2 [] = { "MDPW02", "\x01", "busy" };
    zsock_t *busy = tclient_new (&env);
    s_send_raw (busy, 3, ready2);
    s_wait_workers (client, "busy", NULL, 1);
    body = zframe_new ("job", 3);
    zmsg_t *breq = zmsg_new ();
    zmsg_append (breq, &body);
    msg = vdgx_mdp_client_request ("busy", &breq);
    zmsg_send (&msg, client);
    s_wait_workers (client, "busy", NULL, 0);
    //  The broker itself stops for 1.6 s (SIGSTOP; longer than its 1 s liveness window,
    //  shorter than the 3 s after which the test worker reconnects): live workers must not
    //  be declared dead for the broker's own silence.
    pid_t live = tenv_worker (&env, "live", NULL);
    s_wait_workers (client, "live", NULL, 1);
    kill (env.broker, SIGSTOP);
    zclock_sleep (1600);
    kill (env.broker, SIGCONT);
    zclock_sleep (300);
    TCHECK (s_workers (client, "live", NULL) == 1);
    TCHECK (s_counter (client, "vdgx_workers_expired_total{model=\"live\"}") == 0);
    TCHECK (s_counter (client, "vdgx_broker_stalls_total") >= 1);
    tenv_stop (live, SIGTERM);
    zsock_destroy (&busy);
    zsock_destroy (&silent);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  Jobs end to end: submit, progress events, chunks, sha256, status, list, idempotency,
//  the result cache, delete.
static void
s_case_jobs (void)
{
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    zsock_t *sub = zsock_new_sub (env.events, "job.");
    zsock_t *msub = zsock_new_sub (env.events, "model.");
    pid_t w = tenv_worker (&env, "wan21-tiny", "--size", "700000", "--weights", "w1", NULL);
    s_wait_workers (client, "wan21-tiny", NULL, 1);
    zclock_sleep (100);
    vdgx_jobreply_t r1, r2;
    TCHECK (tclient_submit (client, "wan21-tiny", "a red fox", 42, true, VDGX_PRIORITY_NORMAL,
                            "key-1", false, &r1) == 0);
    TCHECK (!r1.cached);
    //  Retry with the same key: the same job, not a second one.
    TCHECK (tclient_submit (client, "wan21-tiny", "a red fox", 42, true, VDGX_PRIORITY_NORMAL,
                            "key-1", false, &r2) == 0);
    TCHECK (streq (r1.id, r2.id));
    vdgx_jobreply_clear (&r2);
    //  A retry that leaves the seed out still matches (the stored request has the seed)...
    vdgx_jobreply_t r3;
    TCHECK (tclient_submit (client, "wan21-tiny", "a red fox", 0, false, VDGX_PRIORITY_NORMAL,
                            "key-1", false, &r3) == 0);
    TCHECK (streq (r1.id, r3.id));
    vdgx_jobreply_clear (&r3);
    //  ...but the same key with another request is a conflict, not the old job.
    TCHECK (tclient_submit (client, "wan21-tiny", "a blue fox", 42, true, VDGX_PRIORITY_NORMAL,
                            "key-1", false, &r3) == -1);
    TCHECK (r3.error.code && streq (r3.error.code, VDGX_E_CONFLICT));
    TCHECK (streq (r3.error.field, "request.idempotency_key"));
    vdgx_jobreply_clear (&r3);
    vdgx_jobstatus_t st;
    TCHECK (tclient_wait (client, r1.id, 30000, &st) == VDGX_JOB_COMPLETED);
    TCHECK (st.has_result && st.result.size == 700000 && st.attempt == 1 && !st.cached);
    TCHECK (st.has_request && st.request.has_seed && st.request.seed == 42);
    TCHECK (st.finished_at >= st.started_at && st.started_at >= st.created_at);
    char sha [65];
    uint8_t *want = (uint8_t *) malloc (700000);
    tworker_output (r1.id, want, 700000);
    char want_sha [65];
    vdgx_sha256_hex (want, 700000, want_sha);
    free (want);
    TCHECK (streq (st.result.sha256, want_sha));
    vdgx_jobstatus_clear (&st);
    TCHECK (tclient_fetch (client, r1.id, 256 * 1024, sha) == 700000);
    TCHECK (streq (sha, want_sha));
    TCHECK (tclient_fetch (client, r1.id, 4 * 1024 * 1024, sha) == 700000);
    //  Events: queued, running, progress, completed on job.<id>.
    int progress = 0, completed = 0;
    zmsg_t *ev;
    while ((ev = s_recv (sub, 200))) {
        vdgx_event_t e;
        vdgx_error_t err;
        if (vdgx_event_decode_msg (&e, ev, &err) == 0) {
            if (e.type == VDGX_EVENT_PROGRESS)
                progress++;
            if (e.type == VDGX_EVENT_STATE && e.job_state == VDGX_JOB_COMPLETED)
                completed++;
            vdgx_event_clear (&e);
        }
        zmsg_destroy (&ev);
    }
    s_log ("events: %d progress, %d completed", progress, completed);
    TCHECK (progress >= 3 && completed == 1);
    //  Model events: the worker went busy for the job and warm again after it (a client
    //  watching model.* sees it free up, not only get busy).
    int busy_at = -1, warm_after = -1, n = 0;
    while ((ev = s_recv (msub, 200))) {
        vdgx_event_t e;
        vdgx_error_t err;
        if (vdgx_event_decode_msg (&e, ev, &err) == 0 && e.is_model) {
            if (e.worker_state == VDGX_WSTATE_BUSY && busy_at < 0)
                busy_at = n;
            if (e.worker_state == VDGX_WSTATE_WARM && busy_at >= 0 && warm_after < 0)
                warm_after = n;
            n++;
            vdgx_event_clear (&e);
        }
        zmsg_destroy (&ev);
    }
    s_log ("model events: %d, busy at %d, warm at %d", n, busy_at, warm_after);
    TCHECK (busy_at >= 0 && warm_after > busy_at);
    zsock_destroy (&msub);
    //  Same model, weights and parameters (seed included): answered from the cache.
    TCHECK (tclient_submit (client, "wan21-tiny", "a red fox", 42, true, VDGX_PRIORITY_NORMAL,
                            NULL, false, &r2) == 0);
    TCHECK (r2.cached && r2.state == VDGX_JOB_COMPLETED && !streq (r2.id, r1.id));
    TCHECK (tclient_fetch (client, r2.id, 1024 * 1024, sha) == 700000 && streq (sha, want_sha));
    vdgx_jobreply_clear (&r2);
    TCHECK (s_counter (client, "vdgx_cache_hits_total{model=\"wan21-tiny\"}") == 1);
    //  no_cache, another seed, or no seed (random): a new run.
    TCHECK (tclient_submit (client, "wan21-tiny", "a red fox", 42, true, VDGX_PRIORITY_NORMAL,
                            NULL, true, &r2) == 0 && !r2.cached);
    TCHECK (s_wait_state (client, r2.id, 30000) == VDGX_JOB_COMPLETED);
    vdgx_jobreply_clear (&r2);
    TCHECK (tclient_submit (client, "wan21-tiny", "a red fox", 0, false, VDGX_PRIORITY_NORMAL,
                            NULL, false, &r2) == 0 && !r2.cached);
    TCHECK (tclient_wait (client, r2.id, 30000, &st) == VDGX_JOB_COMPLETED);
    TCHECK (st.request.has_seed);         //  the broker chose and reports a seed
    vdgx_jobstatus_clear (&st);
    vdgx_jobreply_clear (&r2);
    //  list with paging.
    vdgx_jobcmd_t jc;
    vdgx_jobcmd_init (&jc);
    jc.cmd = VDGX_JOBCMD_LIST;
    jc.limit = 2;
    vdgx_jobreply_t lr;
    TCHECK (tclient_jobs (client, &jc, &lr) == 0 && lr.njobs == 2 && lr.has_more);
    snprintf (jc.after, sizeof jc.after, "%s", lr.jobs [1].id);
    vdgx_jobreply_clear (&lr);
    TCHECK (tclient_jobs (client, &jc, &lr) == 0 && lr.njobs == 2 && !lr.has_more);
    vdgx_jobreply_clear (&lr);
    //  Newest first: the same four in reverse, paged towards older ones below the cursor.
    jc.desc = true;
    jc.after [0] = 0;
    TCHECK (tclient_jobs (client, &jc, &lr) == 0 && lr.njobs == 2 && lr.has_more);
    TCHECK (strcmp (lr.jobs [0].id, lr.jobs [1].id) > 0);
    snprintf (jc.after, sizeof jc.after, "%s", lr.jobs [1].id);
    vdgx_jobreply_clear (&lr);
    TCHECK (tclient_jobs (client, &jc, &lr) == 0 && lr.njobs == 2 && !lr.has_more);
    TCHECK (strcmp (lr.jobs [0].id, jc.after) < 0 && strcmp (lr.jobs [1].id, lr.jobs [0].id) < 0);
    vdgx_jobreply_clear (&lr);
    jc.desc = false;
    jc.after [0] = 0;
    jc.limit = 100;
    jc.has_state = true;
    jc.state = VDGX_JOB_COMPLETED;
    snprintf (jc.model, sizeof jc.model, "wan21-tiny");
    TCHECK (tclient_jobs (client, &jc, &lr) == 0 && lr.njobs == 4);
    vdgx_jobreply_clear (&lr);
    //  result out of range; delete; then not_found.
    vdgx_jobcmd_clear (&jc);
    vdgx_jobcmd_init (&jc);
    jc.cmd = VDGX_JOBCMD_RESULT;
    snprintf (jc.id, sizeof jc.id, "%.64s", r1.id);
    jc.offset = 800000;
    TCHECK (tclient_jobs (client, &jc, &lr) == -1 && streq (lr.error.code, VDGX_E_BAD_REQUEST));
    vdgx_jobreply_clear (&lr);
    jc.cmd = VDGX_JOBCMD_DELETE;
    jc.offset = 0;
    TCHECK (tclient_jobs (client, &jc, &lr) == 0);
    vdgx_jobreply_clear (&lr);
    jc.cmd = VDGX_JOBCMD_STATUS;
    TCHECK (tclient_jobs (client, &jc, &lr) == -1 && streq (lr.error.code, VDGX_E_NOT_FOUND));
    vdgx_jobreply_clear (&lr);
    vdgx_jobcmd_clear (&jc);
    vdgx_jobreply_clear (&r1);
    //  A worker whose sha256 does not match: the output is refused, the job fails after
    //  max attempts (3) with the reason.
    pid_t liar = tenv_worker (&env, "liar", "--bad-sha", NULL);
    s_wait_workers (client, "liar", NULL, 1);
    TCHECK (tclient_submit (client, "liar", "x", 1, true, VDGX_PRIORITY_NORMAL, NULL, true, &r1) == 0);
    TCHECK (tclient_wait (client, r1.id, 30000, &st) == VDGX_JOB_FAILED);
    TCHECK (st.has_error && st.attempt == 3 && strstr (st.error.message, "sha256"));
    vdgx_jobstatus_clear (&st);
    vdgx_jobreply_clear (&r1);
    tenv_stop (liar, SIGTERM);
    //  Chunks out of order (a gap): the attempt's output is not taken, whatever the FINAL
    //  says; the job fails after max attempts.
    pid_t gappy = tenv_worker (&env, "gappy", "--chunk-gap", NULL);
    s_wait_workers (client, "gappy", NULL, 1);
    TCHECK (tclient_submit (client, "gappy", "x", 1, true, VDGX_PRIORITY_NORMAL, NULL, true, &r1) == 0);
    TCHECK (tclient_wait (client, r1.id, 30000, &st) == VDGX_JOB_FAILED);
    TCHECK (st.has_error && st.attempt == 3 && strstr (st.error.message, "output"));
    vdgx_jobstatus_clear (&st);
    vdgx_jobreply_clear (&r1);
    tenv_stop (gappy, SIGTERM);
    //  An output larger than the chunks the broker holds in memory before writing them
    //  (8 MiB): written in order, intact.
    pid_t big = tenv_worker (&env, "big", "--size", "10000000", NULL);
    s_wait_workers (client, "big", NULL, 1);
    TCHECK (tclient_submit (client, "big", "x", 1, true, VDGX_PRIORITY_NORMAL, NULL, true, &r1) == 0);
    TCHECK (tclient_wait (client, r1.id, 30000, &st) == VDGX_JOB_COMPLETED);
    vdgx_jobstatus_clear (&st);
    char big_sha [65];
    TCHECK (tclient_fetch (client, r1.id, 4 * 1024 * 1024, big_sha) == 10000000);
    vdgx_jobreply_clear (&r1);
    tenv_stop (big, SIGTERM);
    zsock_destroy (&sub);
    zsock_destroy (&client);
    tenv_stop (w, SIGTERM);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  A worker killed with SIGKILL mid-job: the job completes on another worker; a job whose
//  workers keep dying fails after --max-attempts with the reason.
static void
s_case_worker_kill (void)
{
    tenv_flag (&env, "--max-attempts");
    tenv_flag (&env, "2");
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    pid_t a = tenv_worker (&env, "m", "--steps", "40", "--step-ms", "50", NULL);
    s_wait_workers (client, "m", NULL, 1);
    char id [80];
    s_submit_ok (client, "m", "x", 1, VDGX_PRIORITY_NORMAL, id);
    vdgx_jobstatus_t st;
    for (int i = 0; i < 100; i++) {
        TCHECK (tclient_status (client, id, &st) == 0);
        bool running = st.state == VDGX_JOB_RUNNING && st.step >= 2;
        vdgx_jobstatus_clear (&st);
        if (running)
            break;
        zclock_sleep (20);
    }
    pid_t b = tenv_worker (&env, "m", "--steps", "3", NULL);
    s_wait_workers (client, "m", NULL, 2);
    tenv_stop (a, SIGKILL);
    TCHECK (tclient_wait (client, id, 30000, &st) == VDGX_JOB_COMPLETED);
    TCHECK (st.attempt == 2);
    vdgx_jobstatus_clear (&st);
    char sha [65];
    TCHECK (tclient_fetch (client, id, 1024 * 1024, sha) == 300000);
    tenv_stop (b, SIGTERM);
    //  Two slow workers killed in turn: failed after 2 attempts.
    s_wait_workers (client, "m", NULL, 0);
    pid_t c = tenv_worker (&env, "m", "--steps", "100", "--step-ms", "50", NULL);
    s_wait_workers (client, "m", NULL, 1);
    s_submit_ok (client, "m", "y", 2, VDGX_PRIORITY_NORMAL, id);
    zclock_sleep (300);
    tenv_stop (c, SIGKILL);
    pid_t d = tenv_worker (&env, "m", "--steps", "100", "--step-ms", "50", NULL);
    for (int i = 0; i < 100; i++) {
        TCHECK (tclient_status (client, id, &st) == 0);
        bool again = st.state == VDGX_JOB_RUNNING && st.attempt == 2;
        vdgx_jobstatus_clear (&st);
        if (again)
            break;
        zclock_sleep (50);
    }
    tenv_stop (d, SIGKILL);
    TCHECK (tclient_wait (client, id, 15000, &st) == VDGX_JOB_FAILED);
    TCHECK (st.has_error && streq (st.error.code, VDGX_E_WORKER_FAILED));
    s_log ("failed: %s", st.error.message);
    vdgx_jobstatus_clear (&st);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  The broker killed with SIGKILL mid-run and restarted: every accepted job ends terminal,
//  including one whose worker finished while the broker was down (READY pending -> resend).
static void
s_case_broker_kill (void)
{
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    pid_t w1 = tenv_worker (&env, "m", "--steps", "10", "--step-ms", "60", NULL);
    pid_t w2 = tenv_worker (&env, "m", "--steps", "10", "--step-ms", "60", NULL);
    s_wait_workers (client, "m", NULL, 2);
    char ids [8][80];
    for (int i = 0; i < 8; i++)
        s_submit_ok (client, "m", "p", (uint64_t) i, (vdgx_priority_t) (i % 3), ids [i]);
    zclock_sleep (250);
    TCHECK (tenv_stop (env.broker, SIGKILL) == -SIGKILL);
    env.broker = 0;
    zsock_destroy (&client);
    //  Workers finish their jobs while the broker is away.
    zclock_sleep (700);
    TCHECK (tenv_start_broker (&env) == 0);
    client = tclient_new (&env);
    int completed = 0;
    for (int i = 0; i < 8; i++) {
        int state = s_wait_state (client, ids [i], 20000);
        TCHECK (state >= 0);
        completed += state == VDGX_JOB_COMPLETED;
        char sha [65];
        if (state == VDGX_JOB_COMPLETED)
            TCHECK (tclient_fetch (client, ids [i], 1024 * 1024, sha) == 300000);
    }
    TCHECK (completed == 8);
    //  The two jobs running at the kill finished while the broker was away: their workers
    //  listed them as pending and replayed them (CONTROL resend).
    uint64_t resends = s_counter (client, "vdgx_jobs_resent_total");
    s_log ("resends: %llu", (unsigned long long) resends);
    TCHECK (resends >= 1);
    zsock_destroy (&client);
    tenv_stop (w1, SIGTERM);
    tenv_stop (w2, SIGTERM);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  Waits (30 s at most) until the job runs and has reported a step.
static void
s_wait_running (zsock_t *client, const char *id)
{
    vdgx_jobstatus_t st;
    int64_t end = zclock_mono () + 30000;
    bool running = false;
    while (!running && zclock_mono () < end) {
        TCHECK (tclient_status (client, id, &st) == 0);
        running = st.state == VDGX_JOB_RUNNING && st.step >= 1;
        vdgx_jobstatus_clear (&st);
        if (!running)
            zclock_sleep (20);
    }
    TCHECK (running);
}

//  Cancel a queued job and a running one; priority order; queue full; expiry.
static void
s_case_queue (void)
{
    tenv_flag (&env, "--queue-max");
    tenv_flag (&env, "4");
    tenv_flag (&env, "--expire-s");
    tenv_flag (&env, "1");
    tenv_flag (&env, "--model");
    tenv_flag (&env, "ghost");
    tenv_flag (&env, "--model");
    tenv_flag (&env, "m");
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    //  Expiry: a known model with no worker.
    char gid [80];
    s_submit_ok (client, "ghost", "boo", 1, VDGX_PRIORITY_NORMAL, gid);
    //  Priority: low, normal and high queue behind a job that keeps m's only worker busy
    //  (with a worker, m's queue never expires, however slowly this machine runs), then a
    //  second worker takes them.
    pid_t busy = tenv_worker (&env, "m", "--steps", "2000", "--step-ms", "50", NULL);
    s_wait_workers (client, "m", NULL, 1);
    char run [80];
    s_submit_ok (client, "m", "long", 9, VDGX_PRIORITY_NORMAL, run);
    s_wait_running (client, run);
    char lo [80], no [80], hi [80], extra [80];
    s_submit_ok (client, "m", "lo", 1, VDGX_PRIORITY_LOW, lo);
    s_submit_ok (client, "m", "no", 2, VDGX_PRIORITY_NORMAL, no);
    s_submit_ok (client, "m", "hi", 3, VDGX_PRIORITY_HIGH, hi);
    s_submit_ok (client, "m", "ex", 4, VDGX_PRIORITY_NORMAL, extra);
    vdgx_jobstatus_t st;
    TCHECK (tclient_status (client, hi, &st) == 0 && st.queue_position == 1);
    vdgx_jobstatus_clear (&st);
    TCHECK (tclient_status (client, lo, &st) == 0 && st.queue_position == 4);
    vdgx_jobstatus_clear (&st);
    //  Queue full: a clear error with a retry hint.
    vdgx_jobreply_t r;
    TCHECK (tclient_submit (client, "m", "full", 5, true, VDGX_PRIORITY_NORMAL, NULL, true, &r) == -1);
    TCHECK (streq (r.error.code, VDGX_E_QUEUE_FULL) && r.retry_after_ms > 0);
    vdgx_jobreply_clear (&r);
    //  Cancel a queued job: it leaves the queue.
    vdgx_jobcmd_t jc;
    vdgx_jobcmd_init (&jc);
    jc.cmd = VDGX_JOBCMD_CANCEL;
    snprintf (jc.id, sizeof jc.id, "%.64s", extra);
    TCHECK (tclient_jobs (client, &jc, &r) == 0 && r.job.state == VDGX_JOB_CANCELLED);
    vdgx_jobreply_clear (&r);
    TCHECK (tclient_jobs (client, &jc, &r) == 0);     //  again: still cancelled, ok
    vdgx_jobreply_clear (&r);
    TCHECK (tclient_status (client, lo, &st) == 0 && st.queue_position == 3);
    vdgx_jobstatus_clear (&st);
    //  Expired with a reason while nothing serves ghost (its 1 s, however late we look).
    TCHECK (tclient_wait (client, gid, 30000, &st) == VDGX_JOB_EXPIRED);
    TCHECK (st.has_error && streq (st.error.code, VDGX_E_EXPIRED) && strstr (st.error.message, "ghost"));
    vdgx_jobstatus_clear (&st);
    //  The queued ones waited, then run highest priority first on the new worker.
    TCHECK (tclient_status (client, lo, &st) == 0 && st.state == VDGX_JOB_QUEUED);
    vdgx_jobstatus_clear (&st);
    pid_t w = tenv_worker (&env, "m", "--steps", "2", NULL);
    double t_hi, t_no, t_lo;
    TCHECK (tclient_wait (client, hi, 30000, &st) == VDGX_JOB_COMPLETED);
    t_hi = st.started_at;
    vdgx_jobstatus_clear (&st);
    TCHECK (tclient_wait (client, no, 30000, &st) == VDGX_JOB_COMPLETED);
    t_no = st.started_at;
    vdgx_jobstatus_clear (&st);
    TCHECK (tclient_wait (client, lo, 30000, &st) == VDGX_JOB_COMPLETED);
    t_lo = st.started_at;
    vdgx_jobstatus_clear (&st);
    TCHECK (t_hi < t_no && t_no < t_lo);
    tenv_stop (w, SIGTERM);
    //  Cancel a running job: the worker stops at its next step; state cancelled.
    TCHECK (tclient_status (client, run, &st) == 0 && st.state == VDGX_JOB_RUNNING);
    vdgx_jobstatus_clear (&st);
    snprintf (jc.id, sizeof jc.id, "%.64s", run);
    TCHECK (tclient_jobs (client, &jc, &r) == 0 && r.job.state == VDGX_JOB_CANCELLED);
    vdgx_jobreply_clear (&r);
    //  The worker is free again (it stopped at a step boundary): a new job runs.
    char next [80];
    s_submit_ok (client, "m", "after", 10, VDGX_PRIORITY_NORMAL, next);
    s_wait_running (client, next);
    TCHECK (tclient_status (client, run, &st) == 0 && st.state == VDGX_JOB_CANCELLED);
    TCHECK (st.has_error && streq (st.error.code, VDGX_E_CANCELLED));
    vdgx_jobstatus_clear (&st);
    //  Deleting a running job cancels it first.
    jc.cmd = VDGX_JOBCMD_DELETE;
    snprintf (jc.id, sizeof jc.id, "%.64s", next);
    TCHECK (tclient_jobs (client, &jc, &r) == 0);
    vdgx_jobreply_clear (&r);
    //  A completed job cannot be cancelled.
    jc.cmd = VDGX_JOBCMD_CANCEL;
    snprintf (jc.id, sizeof jc.id, "%.64s", hi);
    TCHECK (tclient_jobs (client, &jc, &r) == -1 && streq (r.error.code, VDGX_E_CONFLICT));
    vdgx_jobreply_clear (&r);
    vdgx_jobcmd_clear (&jc);
    tenv_stop (busy, SIGTERM);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  Group commit and durable acknowledgements: a burst of pipelined submits (stored in
//  shared transactions: fewer commits than submits), each reply with the right queue
//  position; SIGKILL right after the last reply; after the restart every acknowledged job
//  is queued at the same place and the health counts agree.
static void
s_case_group_commit (void)
{
    enum { N = 1500 };
    tenv_flag (&env, "--queue-max");
    tenv_flag (&env, "5000");
    tenv_flag (&env, "--model");
    tenv_flag (&env, "m");
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    uint64_t commits0 = s_counter (client, "vdgx_store_commits_total");
    for (int i = 0; i < N; i++) {
        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = VDGX_JOBCMD_SUBMIT;
        snprintf (cmd.request.model, sizeof cmd.request.model, "m");
        cmd.request.prompt = strdup ("burst");
        cmd.request.has_seed = true;
        cmd.request.seed = (uint64_t) i;
        cmd.request.steps = 4;
        cmd.request.priority = (vdgx_priority_t) (i % 3);
        cmd.request.no_cache = true;
        zframe_t *frame = vdgx_jobcmd_frame (&cmd);
        zmsg_t *body = zmsg_new ();
        zmsg_append (body, &frame);
        zmsg_t *msg = vdgx_mdp_client_request (VDGX_JOBS_SERVICE, &body);
        zmsg_send (&msg, client);
        vdgx_jobcmd_clear (&cmd);
    }
    //  Replies come in submit order; position = jobs of the same or a higher priority
    //  queued before + 1.
    static char ids [N][80];
    size_t before [3] = { 0, 0, 0 };
    for (int i = 0; i < N; i++) {
        zmsg_t *reply = s_recv (client, 15000);
        TCHECK (reply);
        vdgx_mdp_t in;
        vdgx_error_t err;
        vdgx_mdp_init (&in);
        TCHECK (vdgx_mdp_decode (&in, &reply, &err) == 0);
        zframe_t *frame = zmsg_first (in.body);
        vdgx_jobreply_t r;
        vdgx_jobreply_init (&r, VDGX_JOBCMD_SUBMIT);
        TCHECK (frame && vdgx_jobreply_decode (&r, zframe_data (frame), zframe_size (frame), &err) == 0);
        TCHECK (r.ok && r.state == VDGX_JOB_QUEUED);
        int p = i % 3;
        size_t want = 1;
        for (int q = 0; q <= p; q++)
            want += before [q];
        TCHECK (r.queue_position == want);
        before [p]++;
        snprintf (ids [i], sizeof ids [i], "%s", r.id);
        vdgx_jobreply_clear (&r);
        vdgx_mdp_clear (&in);
    }
    uint64_t commits = s_counter (client, "vdgx_store_commits_total") - commits0;
    s_log ("%d submits in %llu commits", N, (unsigned long long) commits);
    //  Killed right after the last acknowledgement: nothing acknowledged may be lost.
    TCHECK (tenv_stop (env.broker, SIGKILL) == -SIGKILL);
    env.broker = 0;
    zsock_destroy (&client);
    TCHECK (commits >= 1 && commits < N);
    TCHECK (tenv_start_broker (&env) == 0);
    client = tclient_new (&env);
    msgpack_unpacked u;
    zframe_t *uf = NULL;
    TCHECK (tclient_mmi (client, "mmi.health", &u, &uf) == 0);
    msgpack_object *store = tmap_get (&u.data, "store");
    TCHECK (store && tmap_uint (store, "jobs") == N && tmap_uint (&u.data, "queued") == N);
    msgpack_unpacked_destroy (&u);
    zframe_destroy (&uf);
    //  Same order after the restart: all high, then normal, then low, each in submit order.
    size_t final_before [3] = { 0, before [0], before [0] + before [1] };
    for (int i = 0; i < N; i += 7) {
        vdgx_jobstatus_t st;
        TCHECK (tclient_status (client, ids [i], &st) == 0 && st.state == VDGX_JOB_QUEUED);
        TCHECK (st.queue_position == final_before [i % 3] + (size_t) (i / 3) + 1);
        vdgx_jobstatus_clear (&st);
    }
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  The broker killed right after workers' FINALs arrive (a worker gets its next job before
//  the result of its last one is stored, and the ack waits until that is durable): every
//  job still ends completed exactly once (one `completed` in its stored history), with the
//  bytes its worker made. The kill follows a new line in the workers' record file: a worker
//  was just sent its next job, so its previous result is being stored or synced.
static void
s_case_final_kill (void)
{
    enum { N = 240, WORKERS = 4, KILLS = 6, SIZE = 3000 };
    tenv_flag (&env, "--model");
    tenv_flag (&env, "m");
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    static char ids [N][80];
    for (int i = 0; i < N; i++)
        s_submit_ok (client, "m", "final kill", (uint64_t) i, VDGX_PRIORITY_NORMAL, ids [i]);
    char record [300];
    snprintf (record, sizeof record, "%s/record", env.dir);
    pid_t workers [WORKERS];
    for (int i = 0; i < WORKERS; i++)
        workers [i] = tenv_worker (&env, "m", "--steps", "1", "--step-ms", "3", "--size", "3000",
                                   "--record", record, NULL);
    int kills = 0;
    int64_t deadline = zclock_mono () + 40000;
    while (kills < KILLS && zclock_mono () < deadline) {
        //  Some jobs run on this broker first, then the kill at the next dispatch seen.
        struct stat sb;
        off_t seen = stat (record, &sb) == 0? sb.st_size: 0, grown = seen;
        int lines = 0;
        while (lines < 10 && zclock_mono () < deadline) {
            zclock_sleep (1);
            if (stat (record, &sb) == 0 && sb.st_size > grown) {
                grown = sb.st_size;
                lines++;
            }
        }
        if (lines < 10)
            break;              //  all done (or stuck: the checks below say which)
        TCHECK (tenv_stop (env.broker, SIGKILL) == -SIGKILL);
        env.broker = 0;
        kills++;
        TCHECK (tenv_start_broker (&env) == 0);
    }
    s_log ("%d kills", kills);
    TCHECK (kills >= 2);
    zsock_destroy (&client);
    client = tclient_new (&env);
    for (int i = 0; i < N; i++) {
        TCHECK (s_wait_state (client, ids [i], 30000) == VDGX_JOB_COMPLETED);
        char sha [65], want [65];
        uint8_t data [SIZE];
        tworker_output (ids [i], data, SIZE);
        vdgx_sha256_hex (data, SIZE, want);
        TCHECK (tclient_fetch (client, ids [i], 1024 * 1024, sha) == SIZE && streq (sha, want));
    }
    s_log ("resent since the last restart: %llu",
           (unsigned long long) s_counter (client, "vdgx_jobs_resent_total"));
    zsock_destroy (&client);
    for (int i = 0; i < WORKERS; i++)
        tenv_stop (workers [i], SIGTERM);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
    //  Completed exactly once: one `completed` state change stored per job, none twice.
    char db [400];
    snprintf (db, sizeof db, "%s/jobs.db", env.data);
    sqlite3 *sql = NULL;
    TCHECK (sqlite3_open_v2 (db, &sql, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    TCHECK (sqlite3_prepare_v2 (sql, "SELECT job_id, COUNT(*) FROM events WHERE type='state'"
                                " AND state='completed' GROUP BY job_id", -1, &st, NULL) == SQLITE_OK);
    int jobs = 0;
    while (sqlite3_step (st) == SQLITE_ROW) {
        if (sqlite3_column_int (st, 1) != 1)
            fprintf (stderr, "job %s completed %d times\n", sqlite3_column_text (st, 0),
                     sqlite3_column_int (st, 1));
        TCHECK (sqlite3_column_int (st, 1) == 1);
        jobs++;
    }
    sqlite3_finalize (st);
    sqlite3_close (sql);
    TCHECK (jobs == N);
}

//  Memory arbitration: host budget 100, two models of 60 each. A job for the cold model
//  makes the broker unload the idle warm one first, then load.
static void
s_case_memory (void)
{
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    pid_t a = tenv_worker (&env, "model-a", "--host", "h1", "--budget", "100", "--model-bytes", "60", NULL);
    pid_t b = tenv_worker (&env, "model-b", "--host", "h1", "--budget", "100", "--model-bytes", "60",
                           "--cold", NULL);
    s_wait_workers (client, "model-a", "warm", 1);
    s_wait_workers (client, "model-b", "cold", 1);
    char id [80];
    s_submit_ok (client, "model-b", "x", 1, VDGX_PRIORITY_NORMAL, id);
    TCHECK (s_wait_state (client, id, 30000) == VDGX_JOB_COMPLETED);
    TCHECK (s_workers (client, "model-a", "cold") == 1);
    TCHECK (s_counter (client, "vdgx_unloads_requested_total{model=\"model-a\"}") == 1);
    //  And back: model-a must load, so model-b (idle, warm) is unloaded.
    s_submit_ok (client, "model-a", "y", 2, VDGX_PRIORITY_NORMAL, id);
    TCHECK (s_wait_state (client, id, 30000) == VDGX_JOB_COMPLETED);
    TCHECK (s_workers (client, "model-b", "cold") == 1);
    //  The unload command of the job service.
    vdgx_jobcmd_t jc;
    vdgx_jobcmd_init (&jc);
    jc.cmd = VDGX_JOBCMD_UNLOAD;
    snprintf (jc.model, sizeof jc.model, "model-a");
    vdgx_jobreply_t r;
    TCHECK (tclient_jobs (client, &jc, &r) == 0 && r.workers == 1);
    vdgx_jobreply_clear (&r);
    vdgx_jobcmd_clear (&jc);
    s_wait_workers (client, "model-a", "cold", 1);
    //  The only worker that could give memory back is busy: the cold model's job waits, and
    //  runs after that worker finishes and is unloaded.
    pid_t c = tenv_worker (&env, "model-c", "--host", "h2", "--budget", "100", "--model-bytes", "60",
                           "--steps", "20", "--step-ms", "50", NULL);
    pid_t d = tenv_worker (&env, "model-d", "--host", "h2", "--budget", "100", "--model-bytes", "60",
                           "--cold", NULL);
    s_wait_workers (client, "model-c", "warm", 1);
    s_wait_workers (client, "model-d", "cold", 1);
    char cid [80], did [80];
    s_submit_ok (client, "model-c", "slow", 3, VDGX_PRIORITY_NORMAL, cid);
    zclock_sleep (200);
    s_submit_ok (client, "model-d", "waits", 4, VDGX_PRIORITY_NORMAL, did);
    vdgx_jobstatus_t st;
    TCHECK (tclient_status (client, did, &st) == 0 && st.state == VDGX_JOB_QUEUED);
    vdgx_jobstatus_clear (&st);
    TCHECK (s_wait_state (client, cid, 30000) == VDGX_JOB_COMPLETED);
    TCHECK (s_wait_state (client, did, 30000) == VDGX_JOB_COMPLETED);
    s_wait_workers (client, "model-c", "cold", 1);
    tenv_stop (c, SIGTERM);
    tenv_stop (d, SIGTERM);
    tenv_stop (a, SIGTERM);
    tenv_stop (b, SIGTERM);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  CURVE: allowed keys get answers, unknown keys get nothing; plain non-loopback refused.
static void
s_case_curve (void)
{
    //  Non-loopback without CURVE: refused with a message, exit status != 0.
    char *argv [] = { (char *) env.broker_bin, "--bind", "tcp://0.0.0.0:0", "--data", env.data, NULL };
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open ("/dev/null", O_WRONLY);
        dup2 (devnull, 2);
        execv (argv [0], argv);
        _exit (127);
    }
    int status;
    waitpid (pid, &status, 0);
    TCHECK (WIFEXITED (status) && WEXITSTATUS (status) != 0);

    char curve [600];
    snprintf (curve, sizeof curve, "%s/curve", env.dir);
    zsys_dir_create ("%s/allowed", curve);
    zcert_t *allowed = zcert_new ();
    zcert_t *stranger = zcert_new ();
    char path [700];
    snprintf (path, sizeof path, "%s/allowed/client.key", curve);
    TCHECK (zcert_save_public (allowed, path) == 0);
    tenv_flag (&env, "--curve");
    tenv_flag (&env, curve);
    //  tenv_start_broker's health probe is plain: start and probe with a key instead.
    char *bargv [32];
    int n = 0;
    bargv [n++] = (char *) env.broker_bin;
    bargv [n++] = "--bind";  bargv [n++] = env.endpoint;
    bargv [n++] = "--events"; bargv [n++] = env.events;
    bargv [n++] = "--data";  bargv [n++] = env.data;
    bargv [n++] = "--curve"; bargv [n++] = curve;
    bargv [n] = NULL;
    env.broker = fork ();
    if (env.broker == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        execv (bargv [0], bargv);
        _exit (127);
    }
    tenv_track (env.broker);
    snprintf (path, sizeof path, "%s/broker.key", curve);
    zcert_t *server = NULL;
    for (int i = 0; i < 100 && !server; i++) {
        zclock_sleep (50);
        server = zsys_file_exists (path)? zcert_load (path): NULL;
    }
    TCHECK (server);
    zclock_sleep (200);
    zsock_t *good = zsock_new (ZMQ_DEALER);
    zcert_apply (allowed, good);
    zsock_set_curve_serverkey (good, zcert_public_txt (server));
    zsock_connect (good, "%s", env.endpoint);
    zframe_t *body = zframe_new ("\x80", 1);
    zframe_t *reply = tclient_call (good, "mmi.health", &body, 3000);
    TCHECK (reply);
    zframe_destroy (&reply);
    zsock_t *evil = zsock_new (ZMQ_DEALER);
    zcert_apply (stranger, evil);
    zsock_set_curve_serverkey (evil, zcert_public_txt (server));
    zsock_connect (evil, "%s", env.endpoint);
    body = zframe_new ("\x80", 1);
    reply = tclient_call (evil, "mmi.health", &body, 1000);
    TCHECK (reply == NULL);
    zsock_t *plain = tclient_new (&env);
    body = zframe_new ("\x80", 1);
    reply = tclient_call (plain, "mmi.health", &body, 1000);
    TCHECK (reply == NULL);
    zsock_destroy (&plain);
    zsock_destroy (&good);
    zsock_destroy (&evil);
    zcert_destroy (&allowed);
    zcert_destroy (&stranger);
    zcert_destroy (&server);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  SIGTERM: workers get DISCONNECT, the process exits 0, the store is consistent.
static void
s_case_sigterm (void)
{
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    zsock_t *worker = tclient_new (&env);
    const char *ready [] = { "MDPW02", "\x01", "m" };
    s_send_raw (worker, 3, ready);
    s_wait_workers (client, "m", NULL, 1);
    char id [80];
    s_submit_ok (client, "m", "x", 1, VDGX_PRIORITY_NORMAL, id);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
    bool disconnect = false;
    zmsg_t *msg;
    while (!disconnect && (msg = s_recv (worker, 1000))) {
        disconnect = zframe_data (zmsg_last (msg)) [0] == VDGX_MDPW_DISCONNECT;
        zmsg_destroy (&msg);
    }
    TCHECK (disconnect);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    //  Restart: the running job is queued again (its worker is gone).
    TCHECK (tenv_start_broker (&env) == 0);
    client = tclient_new (&env);
    vdgx_jobstatus_t st;
    TCHECK (tclient_status (client, id, &st) == 0 && st.state == VDGX_JOB_QUEUED);
    vdgx_jobstatus_clear (&st);
    pid_t w = tenv_worker (&env, "m", NULL);
    TCHECK (s_wait_state (client, id, 15000) == VDGX_JOB_COMPLETED);
    tenv_stop (w, SIGTERM);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  Model limits: a worker's READY state advertises what its model accepts; from then on the
//  broker refuses a job beyond them at submit (bad_request naming the field), queues one
//  within them, keeps the limits when the worker leaves, and leaves models without limits
//  to their workers.
static int
s_submit_size (zsock_t *client, const char *model, uint32_t width, uint32_t height,
               uint32_t frames, vdgx_jobreply_t *reply)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_SUBMIT;
    snprintf (cmd.request.model, sizeof cmd.request.model, "%s", model);
    cmd.request.prompt = strdup ("p");
    cmd.request.width = width;
    cmd.request.height = height;
    cmd.request.frames = frames;
    int rc = tclient_jobs (client, &cmd, reply);
    vdgx_jobcmd_clear (&cmd);
    return rc;
}

static void
s_case_limits (void)
{
    tenv_flag (&env, "--model");
    tenv_flag (&env, "m");
    tenv_flag (&env, "--model");
    tenv_flag (&env, "open");
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    vdgx_jobreply_t r;
    //  Before any worker: nothing known, the job is queued (its worker will judge it).
    TCHECK (s_submit_size (client, "m", 40, 48, 0, &r) == 0);
    vdgx_jobreply_clear (&r);

    zsock_t *worker = tclient_new (&env);
    vdgx_wstate_t ws;
    vdgx_wstate_init (&ws);
    snprintf (ws.service, sizeof ws.service, "m");
    ws.state = VDGX_WSTATE_COLD;
    ws.limits = (vdgx_limits_t) { .present = true, .wh_min = 32, .wh_max = 256, .wh_multiple = 16,
                                  .frames_max = 33, .frames_4n1 = true, .steps_max = 100,
                                  .guidance_max = 50, .fps_max = 60 };
    zframe_t *wsf = vdgx_wstate_frame (&ws);
    vdgx_wstate_clear (&ws);
    zmsg_t *msg = vdgx_mdp_worker_ready (2, "m", &wsf);
    zmsg_send (&msg, worker);
    s_wait_workers (client, "m", NULL, 1);

    TCHECK (s_submit_size (client, "m", 40, 48, 0, &r) == -1);
    TCHECK (streq (r.error.code, VDGX_E_BAD_REQUEST) && streq (r.error.field, "request.width"));
    TCHECK (strstr (r.error.message, "multiple of 16 from 32 to 256"));
    vdgx_jobreply_clear (&r);
    TCHECK (s_submit_size (client, "m", 64, 48, 35, &r) == -1 && streq (r.error.field, "request.frames"));
    vdgx_jobreply_clear (&r);
    TCHECK (s_submit_size (client, "m", 64, 48, 33, &r) == 0 && r.id [0]);
    vdgx_jobreply_clear (&r);
    TCHECK (s_counter (client, "vdgx_jobs_rejected_total{model=\"m\",reason=\"limits\"}") == 2);
    //  The models reply shows them.
    vdgx_jobcmd_t mc;
    vdgx_jobcmd_init (&mc);
    mc.cmd = VDGX_JOBCMD_MODELS;
    vdgx_jobreply_t mr;
    vdgx_jobreply_init (&mr, VDGX_JOBCMD_MODELS);
    TCHECK (tclient_jobs (client, &mc, &mr) == 0);
    bool shown = false;
    for (size_t i = 0; i < mr.nmodels; i++)
        if (streq (mr.models [i].name, "m"))
            shown = mr.models [i].limits.present && mr.models [i].limits.frames_max == 33;
        else
            TCHECK (!mr.models [i].limits.present);
    TCHECK (shown);
    vdgx_jobreply_clear (&mr);
    vdgx_jobcmd_clear (&mc);
    //  The worker leaves: its model's limits stay.
    const char *disconnect [] = { "MDPW02", "\x05" };
    s_send_raw (worker, 2, disconnect);
    s_wait_workers (client, "m", NULL, 0);
    TCHECK (s_submit_size (client, "m", 48, 300, 0, &r) == -1 && streq (r.error.field, "request.height"));
    vdgx_jobreply_clear (&r);
    //  ... and across a restart of the broker, before any worker has registered again.
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    TCHECK (tenv_start_broker (&env) == 0);
    client = tclient_new (&env);
    TCHECK (s_submit_size (client, "m", 48, 300, 0, &r) == -1 && streq (r.error.field, "request.height"));
    vdgx_jobreply_clear (&r);
    //  A model whose workers advertise nothing: only the protocol's limits.
    TCHECK (s_submit_size (client, "open", 40, 48, 35, &r) == 0);
    vdgx_jobreply_clear (&r);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  Exit status of pid once it ends by itself within timeout_ms, or -1.
static int
s_exited (pid_t pid, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (zclock_mono () < end) {
        int status;
        if (waitpid (pid, &status, WNOHANG) == pid)
            return WIFEXITED (status)? WEXITSTATUS (status): 128 + WTERMSIG (status);
        zclock_sleep (20);
    }
    return -1;
}

static int
s_drain (zsock_t *client, const char *model, const char *host, vdgx_jobreply_t *reply)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_DRAIN;
    snprintf (cmd.model, sizeof cmd.model, "%s", model? model: "");
    snprintf (cmd.host, sizeof cmd.host, "%s", host? host: "");
    int rc = tclient_jobs (client, &cmd, reply);
    vdgx_jobcmd_clear (&cmd);
    return rc;
}

//  Drain by host: the busy worker there finishes its job and leaves, the idle one there
//  leaves at once, the worker on the other host serves the next job; the draining worker is
//  never given another job.
static void
s_case_drain (void)
{
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    pid_t busy = tenv_worker (&env, "m", "--host", "h1", "--steps", "20", "--step-ms", "100", NULL);
    s_wait_workers (client, "m", NULL, 1);
    char first [80], second [80];
    s_submit_ok (client, "m", "p", 1, VDGX_PRIORITY_NORMAL, first);
    vdgx_jobstatus_t st;
    bool running = false;
    for (int i = 0; i < 100 && !running; i++) {
        running = tclient_status (client, first, &st) == 0 && st.state == VDGX_JOB_RUNNING;
        vdgx_jobstatus_clear (&st);
        if (!running)
            zclock_sleep (20);
    }
    TCHECK (running);
    pid_t idle = tenv_worker (&env, "m2", "--host", "h1", NULL);
    pid_t other = tenv_worker (&env, "m", "--host", "h2", "--steps", "2", NULL);
    s_wait_workers (client, "m", NULL, 2);
    s_wait_workers (client, "m2", NULL, 1);

    vdgx_jobreply_t r;
    vdgx_jobreply_init (&r, VDGX_JOBCMD_DRAIN);
    TCHECK (s_drain (client, NULL, NULL, &r) == -1 && streq (r.error.code, VDGX_E_BAD_REQUEST));
    vdgx_jobreply_clear (&r);
    TCHECK (s_drain (client, NULL, "h1", &r) == 0 && r.workers == 2);
    vdgx_jobreply_clear (&r);
    TCHECK (s_drain (client, NULL, "h1", &r) == 0 && r.workers == 0);      //  already told
    vdgx_jobreply_clear (&r);
    TCHECK (s_counter (client, "vdgx_workers_drained_total{model=\"m\"}") == 1);
    TCHECK (s_counter (client, "vdgx_workers_drained_total{model=\"m2\"}") == 1);
    //  The idle one leaves at once; the busy one only after its job: the job completes on
    //  its first attempt (a worker leaving mid-job would have had it re-dispatched).
    TCHECK (s_exited (idle, 3000) == 0);
    //  A job queued meanwhile goes to the other host, never to the draining worker.
    s_submit_ok (client, "m", "p", 2, VDGX_PRIORITY_NORMAL, second);
    TCHECK (s_exited (busy, 20000) == 0);
    TCHECK (tclient_wait (client, first, 15000, &st) == VDGX_JOB_COMPLETED && st.attempt == 1);
    vdgx_jobstatus_clear (&st);
    TCHECK (s_wait_state (client, second, 15000) == VDGX_JOB_COMPLETED);
    TCHECK (tclient_status (client, second, &st) == 0);
    vdgx_jobstatus_clear (&st);
    s_wait_workers (client, "m", NULL, 1);
    tenv_stop (other, SIGTERM);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

//  Retention by size: four 300 KB results under a 700 KB cap. The collection at start-up
//  (the broker also runs it every minute) deletes the two oldest; the two newest stay whole.
static void
s_case_retention (void)
{
    tenv_flag (&env, "--retain-bytes");
    tenv_flag (&env, "700K");
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    pid_t w = tenv_worker (&env, "m", NULL);
    s_wait_workers (client, "m", NULL, 1);
    char ids [4][80];
    for (int i = 0; i < 4; i++) {
        s_submit_ok (client, "m", "p", (uint64_t) i, VDGX_PRIORITY_NORMAL, ids [i]);
        TCHECK (s_wait_state (client, ids [i], 15000) == VDGX_JOB_COMPLETED);
        zclock_sleep (20);      //  distinct finish times: "oldest" is well defined
    }
    tenv_stop (w, SIGTERM);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;

    TCHECK (tenv_start_broker (&env) == 0);
    client = tclient_new (&env);
    TCHECK (s_counter (client, "vdgx_jobs_collected_total") == 2);
    for (int i = 0; i < 4; i++) {
        vdgx_jobstatus_t st;
        int rc = tclient_status (client, ids [i], &st);
        bool completed = rc == 0 && st.state == VDGX_JOB_COMPLETED;
        vdgx_jobstatus_clear (&st);
        if (i < 2)
            TCHECK (rc == -1);      //  gone: not_found, never a half-deleted job
        else {
            char sha [65];
            TCHECK (completed);
            TCHECK (tclient_fetch (client, ids [i], 1024 * 1024, sha) == 300000);
        }
    }
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

static int
s_submit_images (zsock_t *client, const char *model, const uint8_t *image, size_t image_size,
                 const uint8_t *last, size_t last_size, vdgx_jobreply_t *reply)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_SUBMIT;
    snprintf (cmd.request.model, sizeof cmd.request.model, "%s", model);
    cmd.request.prompt = strdup ("the picture comes alive");
    cmd.request.steps = 4;
    cmd.request.no_cache = true;
    TCHECK (vdgx_genreq_set_image (&cmd.request, "image", image, image_size) == 0);
    TCHECK (vdgx_genreq_set_image (&cmd.request, "last_image", last, last_size) == 0);
    int rc = tclient_jobs (client, &cmd, reply);
    vdgx_jobcmd_clear (&cmd);
    return rc;
}

//  Lines of a worker's --record file that name id with this image digest.
static int
s_recorded (const char *path, const char *id, const char *image_sha, const char *last_sha)
{
    FILE *f = fopen (path, "r");
    int n = 0;
    char line [400];
    while (f && fgets (line, sizeof line, f)) {
        char rid [100], a [70], b [70];
        unsigned attempt;
        if (sscanf (line, "%99s %u %69s %69s", rid, &attempt, a, b) == 4
        &&  streq (rid, id) && streq (a, image_sha) && streq (b, last_sha))
            n++;
    }
    if (f)
        fclose (f);
    return n;
}

//  Image-to-video inputs are stored with the job: a submit of several MiB (over the 64 KiB
//  frame limit of other commands) is accepted, the worker gets the exact bytes, a worker
//  killed mid-job and a broker killed with the job queued both end with a rerun that has
//  the image; status replies leave the images out; an oversized image is refused.
static void
s_case_image (void)
{
    TCHECK (tenv_start_broker (&env) == 0);
    zsock_t *client = tclient_new (&env);
    size_t big_size, small_size;
    uint8_t *big = tpng_file (3 * 1024 * 1024 + 123, 7, &big_size);
    uint8_t *small = tpng_file (5000, 9, &small_size);
    char big_sha [65], small_sha [65];
    vdgx_sha256_hex (big, big_size, big_sha);
    vdgx_sha256_hex (small, small_size, small_sha);
    char rec_a [400], rec_b [400], rec_c [400];
    snprintf (rec_a, sizeof rec_a, "%s/record-a", env.dir);
    snprintf (rec_b, sizeof rec_b, "%s/record-b", env.dir);
    snprintf (rec_c, sizeof rec_c, "%s/record-c", env.dir);

    //  Worker killed mid-job: attempt 2 on another worker has both images.
    pid_t a = tenv_worker (&env, "m", "--steps", "40", "--step-ms", "50", "--record", rec_a, NULL);
    s_wait_workers (client, "m", NULL, 1);
    vdgx_jobreply_t r;
    TCHECK (s_submit_images (client, "m", big, big_size, small, small_size, &r) == 0);
    char id [80];
    snprintf (id, sizeof id, "%s", r.id);
    s_log ("submitted %s", id);
    vdgx_jobreply_clear (&r);
    vdgx_jobstatus_t st;
    for (int i = 0; i < 200; i++) {
        TCHECK (tclient_status (client, id, &st) == 0);
        bool running = st.state == VDGX_JOB_RUNNING && st.step >= 2;
        TCHECK (st.has_request && !st.request.image && !st.request.last_image);
        vdgx_jobstatus_clear (&st);
        if (running)
            break;
        zclock_sleep (20);
    }
    TCHECK (s_recorded (rec_a, id, big_sha, small_sha) == 1);
    pid_t b = tenv_worker (&env, "m", "--steps", "3", "--record", rec_b, NULL);
    s_wait_workers (client, "m", NULL, 2);
    tenv_stop (a, SIGKILL);
    TCHECK (tclient_wait (client, id, 30000, &st) == VDGX_JOB_COMPLETED);
    TCHECK (st.attempt == 2);
    vdgx_jobstatus_clear (&st);
    TCHECK (s_recorded (rec_b, id, big_sha, small_sha) == 1);
    tenv_stop (b, SIGTERM);
    s_wait_workers (client, "m", NULL, 0);

    //  Broker killed with the job queued (no worker): after the restart it runs with the image.
    TCHECK (s_submit_images (client, "m", small, small_size, NULL, 0, &r) == 0);
    snprintf (id, sizeof id, "%s", r.id);
    vdgx_jobreply_clear (&r);
    TCHECK (tenv_stop (env.broker, SIGKILL) == -SIGKILL);
    env.broker = 0;
    zsock_destroy (&client);
    TCHECK (tenv_start_broker (&env) == 0);
    client = tclient_new (&env);
    pid_t c = tenv_worker (&env, "m", "--steps", "3", "--record", rec_c, NULL);
    TCHECK (tclient_wait (client, id, 30000, &st) == VDGX_JOB_COMPLETED);
    vdgx_jobstatus_clear (&st);
    TCHECK (s_recorded (rec_c, id, small_sha, "-") == 1);

    //  Over the per-image cap: refused, naming the field; nothing queued.
    uint8_t *huge = (uint8_t *) calloc (1, VDGX_IMAGE_BYTES_MAX + 1);
    memcpy (huge, small, 64);
    TCHECK (s_submit_images (client, "m", huge, VDGX_IMAGE_BYTES_MAX + 1, NULL, 0, &r) == -1);
    s_log ("oversized: %s: %s", r.error.field, r.error.message);
    TCHECK (streq (r.error.code, VDGX_E_BAD_REQUEST) && streq (r.error.field, "request.image"));
    vdgx_jobreply_clear (&r);
    //  Not an image at all: refused by the header check.
    memset (huge, 'x', 100);
    TCHECK (s_submit_images (client, "m", huge, 100, NULL, 0, &r) == -1);
    TCHECK (streq (r.error.field, "request.image") && strstr (r.error.message, "unsupported"));
    vdgx_jobreply_clear (&r);
    free (huge);
    free (big);
    free (small);
    tenv_stop (c, SIGTERM);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
}

int
main (int argc, char *argv [])
{
    if (argc >= 2 && streq (argv [1], "worker"))
        //  The worker runs until SIGTERM/SIGKILL or DISCONNECT handling ends it.
        return tworker_main (argc - 2, argv + 2);
    if (argc < 3) {
        fprintf (stderr, "usage: broker_tests CASE BROKER_BIN [-v]\n");
        return 2;
    }
    verbose = argc > 3 && streq (argv [3], "-v");
    signal (SIGPIPE, SIG_IGN);
    zsys_init ();
    zsys_set_linger (0);
    char self [4096];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    TCHECK (n > 0);
    self [n] = 0;
    tenv_init (&env, argv [2], self);
    const char *name = argv [1];
    struct { const char *name; void (*fn) (void); } cases [] = {
        { "protocol", s_case_protocol }, { "heartbeat", s_case_heartbeat },
        { "jobs", s_case_jobs }, { "worker_kill", s_case_worker_kill },
        { "broker_kill", s_case_broker_kill }, { "queue", s_case_queue },
        { "memory", s_case_memory }, { "curve", s_case_curve }, { "sigterm", s_case_sigterm },
        { "retention", s_case_retention }, { "limits", s_case_limits },
        { "drain", s_case_drain }, { "group_commit", s_case_group_commit },
        { "final_kill", s_case_final_kill },
        { "image", s_case_image },
    };
    bool found = false;
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        if (streq (name, cases [i].name)) {
            found = true;
            int64_t t0 = zclock_mono ();
            cases [i].fn ();
            printf ("%s: OK (%lld ms)\n", name, (long long) (zclock_mono () - t0));
        }
    tenv_cleanup (&env);
    if (!found) {
        fprintf (stderr, "unknown case %s\n", name);
        return 2;
    }
    return 0;
}
