/*  security_broker.c - the attacks of issue #23 on the broker, replayed against the real
    vdgx-broker and the real vdgx-worker-test (testgen engine) over real sockets; each case
    asserts that the attack fails. docs/SECURITY.md says what is protected.

        security_broker CASE BROKER_BIN WORKER_BIN
    cases: resend     a peer that lists another job in READY `pending` is never asked to
                      resend it, and the job completes with the real worker's bytes
           limits     READY/HEARTBEAT limits from a peer not allowed for the model are
                      ignored; persisted limits are reset by an admin only
           models     made-up model names from peers not allowed for them are not stored
           owners     users see, cancel, delete and read only their own jobs; operators'
                      commands need admin; a plain peer off the trusted networks is a user
           flood      a client flooding vdgx.jobs with large submits is refused after its
                      byte budget while another client is served
           quota      an owner's queued jobs hold at most --owner-queued-max request bytes
*/
#include "broker_peers.h"
#include "vdgx_sha256.h"
#include "vdgx_testproc.h"
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static tenv_t env;
static const char *s_worker_bin;
static char s_curve [400];          //  the broker's --curve DIR
static zcert_t *s_server;           //  the broker's certificate (public part)

//  ---------------------------------------------------------------------------------------
//  Certificates, peers and processes

static zcert_t *
s_cert (const char *name, const char *role, const char *models, bool allowed)
{
    zcert_t *cert = zcert_new ();
    if (role)
        zcert_set_meta (cert, "role", "%s", role);
    if (models)
        zcert_set_meta (cert, "models", "%s", models);
    zcert_set_meta (cert, "name", "%s", name);
    char path [600];
    snprintf (path, sizeof path, "%s/%s.cert", env.dir, name);
    TCHECK (zcert_save (cert, path) == 0);
    if (allowed) {
        snprintf (path, sizeof path, "%s/allowed/%s.key", s_curve, name);
        TCHECK (zcert_save_public (cert, path) == 0);
    }
    return cert;
}

static zsock_t *
s_dealer (zcert_t *cert, const char *endpoint)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    TCHECK (sock);
    zsock_set_linger (sock, 0);
    if (cert) {
        zcert_apply (cert, sock);
        zsock_set_curve_serverkey (sock, zcert_public_txt (s_server));
    }
    TCHECK (zsock_connect (sock, "%s", endpoint? endpoint: env.endpoint) == 0);
    return sock;
}

//  Starts the broker (CURVE when s_curve is set) with env.extra flags; waits until the
//  admin certificate gets an mmi.health answer.
static void
s_start_broker (zcert_t *admin)
{
    char *argv [48];
    int n = 0;
    argv [n++] = (char *) env.broker_bin;
    argv [n++] = "--bind";  argv [n++] = env.endpoint;
    argv [n++] = "--events"; argv [n++] = env.events;
    argv [n++] = "--data";  argv [n++] = env.data;
    argv [n++] = "--heartbeat-ms"; argv [n++] = "100";
    argv [n++] = "--liveness"; argv [n++] = "10";
    if (*s_curve) {
        argv [n++] = "--curve";
        argv [n++] = s_curve;
    }
    for (int i = 0; i < env.nextra; i++)
        argv [n++] = env.extra [i];
    argv [n] = NULL;
    env.broker = fork ();
    TCHECK (env.broker >= 0);
    if (env.broker == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        execv (argv [0], argv);
        _exit (127);
    }
    tenv_track (env.broker);
    if (*s_curve && !s_server) {
        char path [600];
        snprintf (path, sizeof path, "%s/broker.key", s_curve);
        for (int i = 0; i < 100 && !s_server; i++) {
            zclock_sleep (50);
            s_server = zsys_file_exists (path)? zcert_load (path): NULL;
        }
        TCHECK (s_server);
    }
    zsock_t *client = s_dealer (admin, NULL);
    zframe_t *reply = NULL;
    for (int i = 0; i < 50 && !reply; i++) {
        zframe_t *body = zframe_new ("\x80", 1);
        reply = tclient_call (client, "mmi.health", &body, 200);
    }
    TCHECK (reply);
    zframe_destroy (&reply);
    zsock_destroy (&client);
}

//  The real worker: vdgx-worker-test --model testgen, with a certificate when CURVE is on.
static pid_t
s_real_worker (const char *cert_name)
{
    char data [600], key [600], cert [600];
    snprintf (data, sizeof data, "%s/worker-%s", env.dir, cert_name? cert_name: "plain");
    snprintf (key, sizeof key, "%s/broker.key", s_curve);
    snprintf (cert, sizeof cert, "%s/%s.cert", env.dir, cert_name? cert_name: "");
    char *argv [24];
    int n = 0;
    argv [n++] = (char *) s_worker_bin;
    argv [n++] = "--model"; argv [n++] = "testgen";
    argv [n++] = "--broker"; argv [n++] = env.endpoint;
    argv [n++] = "--data"; argv [n++] = data;
    argv [n++] = "--heartbeat-ms"; argv [n++] = "100";
    if (cert_name) {
        argv [n++] = "--curve-server-key"; argv [n++] = key;
        argv [n++] = "--curve-cert"; argv [n++] = cert;
    }
    argv [n] = NULL;
    pid_t pid = fork ();
    TCHECK (pid >= 0);
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        setenv ("VDGX_LOG_LEVEL", "warn", 1);
        execv (argv [0], argv);
        _exit (127);
    }
    tenv_track (pid);
    return pid;
}

//  A worker-state map for an attacker: service, warm, ext [control, token], optional pending
//  with tokens, optional limits (narrow: only 16x16, 1 frame).
static zframe_t *
s_state (const char *service, const char *pending, const char *token, bool narrow)
{
    vdgx_wstate_t ws;
    vdgx_wstate_init (&ws);
    snprintf (ws.service, sizeof ws.service, "%s", service);
    ws.state = VDGX_WSTATE_WARM;
    vdgx_wstate_add_ext (&ws, "control");
    vdgx_wstate_add_ext (&ws, "token");
    if (pending && token)
        vdgx_wstate_add_pending_token (&ws, pending, token);
    else
    if (pending)
        vdgx_wstate_add_pending (&ws, pending);
    if (narrow) {
        vdgx_limits_t *l = &ws.limits;
        memset (l, 0, sizeof *l);
        l->present = true;
        l->wh_min = 16;
        l->wh_max = 16;
        l->wh_multiple = 16;
        l->frames_max = 1;
        l->steps_max = 1;
        l->guidance_max = 1;
        l->fps_max = 1;
    }
    zframe_t *frame = vdgx_wstate_frame (&ws);
    vdgx_wstate_clear (&ws);
    TCHECK (frame);
    return frame;
}

static void
s_send_ready (zsock_t *sock, const char *service, zframe_t *state)
{
    zmsg_t *msg = vdgx_mdp_worker_ready (2, service, &state);
    TCHECK (msg);
    zmsg_send (&msg, sock);
}

static void
s_send_heartbeat (zsock_t *sock, zframe_t *state)
{
    zmsg_t *body = zmsg_new ();
    zmsg_append (body, &state);
    zmsg_t *msg = vdgx_mdp_worker_command (2, VDGX_MDPW_HEARTBEAT, &body);
    zmsg_send (&msg, sock);
}

//  Reads what the broker sends a worker for ms: counts DISCONNECTs, REQUESTs and CONTROL ops
//  naming id (resends, drops).
typedef struct {
    int disconnects, requests, resends, drops;
} s_seen_t;

static void
s_watch (zsock_t *sock, int ms, const char *id, s_seen_t *seen)
{
    memset (seen, 0, sizeof *seen);
    zpoller_t *poller = zpoller_new (sock, NULL);
    int64_t end = zclock_mono () + ms;
    while (zclock_mono () < end) {
        if (!zpoller_wait (poller, (int) (end - zclock_mono ())))
            continue;
        zmsg_t *msg = zmsg_recv (sock);
        vdgx_mdp_t in;
        vdgx_mdp_init (&in);
        vdgx_error_t err;
        if (vdgx_mdp_decode (&in, &msg, &err) == 0 && in.worker) {
            if (in.command == VDGX_MDPW_DISCONNECT)
                seen->disconnects++;
            if (in.command == VDGX_MDPW_REQUEST)
                seen->requests++;
            if (in.command == VDGX_MDPW_CONTROL) {
                vdgx_control_t c;
                vdgx_control_init (&c);
                zframe_t *f = zmsg_first (in.body);
                if (f && vdgx_control_decode (&c, zframe_data (f), zframe_size (f), &err) == 0
                &&  id && streq (c.id, id)) {
                    seen->resends += c.op == VDGX_CONTROL_RESEND;
                    seen->drops += c.op == VDGX_CONTROL_DROP;
                }
            }
        }
        vdgx_mdp_clear (&in);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
}

//  Sends a forged result for id: one chunk of garbage and a FINAL that matches it.
static void
s_send_forgery (zsock_t *sock, const char *id, const char *token)
{
    uint8_t junk [1000];
    memset (junk, 'X', sizeof junk);
    vdgx_chunk_t c;
    vdgx_chunk_init (&c);
    c.data = junk;
    c.size = sizeof junk;
    snprintf (c.token, sizeof c.token, "%s", token);
    zframe_t *frame = vdgx_chunk_frame (&c);
    c.data = NULL;
    zframe_t *address = zframe_new (id, strlen (id));
    zmsg_t *body = zmsg_new ();
    zmsg_append (body, &frame);
    zmsg_t *msg = vdgx_mdp_worker_envelope (2, VDGX_MDPW_PARTIAL, address, &body);
    zmsg_send (&msg, sock);
    vdgx_result_t res;
    vdgx_result_init (&res);
    res.video.size = sizeof junk;
    vdgx_sha256_hex (junk, sizeof junk, res.video.sha256);
    res.video.width = res.video.height = 64;
    res.video.frames = 5;
    res.video.fps = 16;
    snprintf (res.token, sizeof res.token, "%s", token);
    frame = vdgx_result_frame (&res);
    body = zmsg_new ();
    zmsg_append (body, &frame);
    msg = vdgx_mdp_worker_envelope (2, VDGX_MDPW_FINAL, address, &body);
    zmsg_send (&msg, sock);
    zframe_destroy (&address);
}

static uint64_t
s_counter (zsock_t *admin, const char *name)
{
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    zframe_t *frame = NULL;
    TCHECK (tclient_mmi (admin, "mmi.metrics", &up, &frame) == 0);
    uint64_t n = tmetrics_counter (&up.data, name);
    msgpack_unpacked_destroy (&up);
    zframe_destroy (&frame);
    return n;
}

//  A job-service call whose reply is an error: its code ("" when the call succeeded).
static const char *
s_call_code (zsock_t *sock, vdgx_jobcmd_t *cmd)
{
    vdgx_jobreply_t reply;
    int rc = tclient_jobs (sock, cmd, &reply);
    static char code [32];
    snprintf (code, sizeof code, "%s", rc == 0? "": reply.ok? "?": reply.error.code);
    vdgx_jobreply_clear (&reply);
    return code;
}

static const char *
s_id_call (zsock_t *sock, vdgx_jobcmd_type_t type, const char *id)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = type;
    snprintf (cmd.id, sizeof cmd.id, "%s", id);
    const char *code = s_call_code (sock, &cmd);
    vdgx_jobcmd_clear (&cmd);
    return code;
}

static const char *
s_model_call (zsock_t *sock, vdgx_jobcmd_type_t type, const char *model)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = type;
    snprintf (cmd.model, sizeof cmd.model, "%s", model);
    const char *code = s_call_code (sock, &cmd);
    vdgx_jobcmd_clear (&cmd);
    return code;
}

static size_t
s_models (zsock_t *sock, const char *name, bool *has_limits)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_MODELS;
    vdgx_jobreply_t reply;
    TCHECK (tclient_jobs (sock, &cmd, &reply) == 0);
    size_t n = reply.nmodels;
    if (has_limits) {
        *has_limits = false;
        for (size_t i = 0; i < reply.nmodels; i++)
            if (streq (reply.models [i].name, name))
                *has_limits = reply.models [i].limits.present;
    }
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    return n;
}

//  Submits {model, prompt, width=height=size}; returns the error code ("" = accepted) and
//  the id into id.
static const char *
s_submit (zsock_t *sock, const char *prompt, uint32_t size, const char *idem, char *id)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_SUBMIT;
    snprintf (cmd.request.model, sizeof cmd.request.model, "testgen");
    cmd.request.prompt = strdup (prompt);
    cmd.request.steps = 2;
    cmd.request.width = cmd.request.height = size;
    cmd.request.frames = 5;
    if (idem)
        snprintf (cmd.request.idempotency_key, sizeof cmd.request.idempotency_key, "%s", idem);
    vdgx_jobreply_t reply;
    int rc = tclient_jobs (sock, &cmd, &reply);
    static char code [32];
    snprintf (code, sizeof code, "%s", rc == 0? "": reply.ok? "?": reply.error.code);
    if (rc == 0 && id)
        snprintf (id, VDGX_ID_MAX + 1, "%s", reply.id);
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    return code;
}

static void
s_setup_curve (void)
{
    snprintf (s_curve, sizeof s_curve, "%s/curve", env.dir);
    TCHECK (zsys_dir_create ("%s/allowed", s_curve) == 0);
}

//  A non-loopback address of this host ("" when it has none), for plain peers that the
//  broker must not trust.
static void
s_outside_address (char *buf, size_t size)
{
    *buf = 0;
    struct ifaddrs *all = NULL;
    if (getifaddrs (&all))
        return;
    for (struct ifaddrs *a = all; a && !*buf; a = a->ifa_next)
        if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET && !(a->ifa_flags & IFF_LOOPBACK)
        &&  (a->ifa_flags & IFF_UP))
            inet_ntop (AF_INET, &((struct sockaddr_in *) a->ifa_addr)->sin_addr, buf, (socklen_t) size);
    freeifaddrs (all);
}

//  ---------------------------------------------------------------------------------------
//  Cases

//  Forged resend: another worker's key (a worker host allowed for another model) lists a
//  queued job as pending with a made-up token; the broker drops it, never asks for a resend,
//  and counts it; the job is completed by the real worker with its own bytes. The same for
//  a local (trusted) plain peer after a broker restart.
static void
s_case_resend (void)
{
    s_setup_curve ();
    zcert_t *admin = s_cert ("admin", "admin", NULL, true);
    zcert_t *host = s_cert ("gpu1", "worker", "testgen", true);
    zcert_t *other = s_cert ("gpu2", "worker", "other", true);
    tenv_flag (&env, "--model");
    tenv_flag (&env, "testgen");
    s_start_broker (admin);
    zsock_t *client = s_dealer (admin, NULL);
    char id [VDGX_ID_MAX + 1];
    TCHECK (streq (s_submit (client, "the victim's prompt", 64, NULL, id), ""));
    //  The attacker registers for its own model and claims the job.
    zsock_t *evil = s_dealer (other, NULL);
    s_send_ready (evil, "other", s_state ("other", id, "0123456789abcdef0123456789abcdef", false));
    s_seen_t seen;
    s_watch (evil, 600, id, &seen);
    TCHECK (seen.resends == 0);
    TCHECK (seen.drops == 1);
    //  Pushing a result anyway (chunk + FINAL for the job) changes nothing.
    s_send_forgery (evil, id, "0123456789abcdef0123456789abcdef");
    //  And an allowed key of the same model, without the job's token, gets no resend either.
    zsock_t *evil2 = s_dealer (host, NULL);
    s_send_ready (evil2, "testgen", s_state ("testgen", id, NULL, false));
    s_watch (evil2, 400, id, &seen);
    TCHECK (seen.resends == 0);
    zsock_destroy (&evil2);
    TCHECK (s_counter (client, "vdgx_worker_rejected_total{reason=\"pending\"}") >= 2);
    //  The real worker completes it with the real bytes.
    s_real_worker ("gpu1");
    vdgx_jobstatus_t st;
    TCHECK (tclient_wait (client, id, 20000, &st) == VDGX_JOB_COMPLETED);
    TCHECK (st.result.size != 1000);
    char sha [65];
    TCHECK (tclient_fetch (client, id, 1 << 20, sha) == (int64_t) st.result.size);
    char forged [65];
    uint8_t junk [1000];
    memset (junk, 'X', sizeof junk);
    vdgx_sha256_hex (junk, sizeof junk, forged);
    TCHECK (!streq (sha, forged));
    vdgx_jobstatus_clear (&st);
    zsock_destroy (&evil);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
    zcert_destroy (&admin);
    zcert_destroy (&host);
    zcert_destroy (&other);
}

//  Narrow limits: a READY or HEARTBEAT with limits from a peer not allowed for the model
//  changes nothing. Limits an allowed worker advertised persist over a restart, and only an
//  admin can reset them.
static void
s_case_limits (void)
{
    s_setup_curve ();
    zcert_t *admin = s_cert ("admin", "admin", NULL, true);
    zcert_t *user = s_cert ("mallory", "user", NULL, true);
    zcert_t *other = s_cert ("gpu2", "worker", "other", true);
    zcert_t *host = s_cert ("gpu1", "worker", "testgen", true);
    tenv_flag (&env, "--model");
    tenv_flag (&env, "testgen");
    s_start_broker (admin);
    zsock_t *client = s_dealer (admin, NULL);
    s_seen_t seen;
    zcert_t *attackers [] = { user, other };
    for (int i = 0; i < 2; i++) {
        zsock_t *evil = s_dealer (attackers [i], NULL);
        s_send_ready (evil, "testgen", s_state ("testgen", NULL, NULL, true));
        s_watch (evil, 300, NULL, &seen);
        TCHECK (seen.disconnects >= 1);
        s_send_heartbeat (evil, s_state ("testgen", NULL, NULL, true));
        s_watch (evil, 200, NULL, &seen);
        zsock_destroy (&evil);
    }
    bool limited = true;
    s_models (client, "testgen", &limited);
    TCHECK (!limited);
    TCHECK (s_counter (client, "vdgx_workers_refused_total{reason=\"not_allowed\"}") >= 2);
    char id [VDGX_ID_MAX + 1];
    TCHECK (streq (s_submit (client, "valid", 256, NULL, id), ""));

    //  A worker allowed for the model advertises narrow limits: they hold, also after a
    //  restart (persisted); a user cannot reset them, an admin can.
    zsock_t *narrow = s_dealer (host, NULL);
    s_send_ready (narrow, "testgen", s_state ("testgen", NULL, NULL, true));
    for (int i = 0; i < 40 && !limited; i++) {
        zclock_sleep (50);
        s_models (client, "testgen", &limited);
    }
    TCHECK (limited);
    zsock_destroy (&narrow);
    TCHECK (streq (s_submit (client, "valid", 256, NULL, id), VDGX_E_BAD_REQUEST));
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    s_start_broker (admin);
    client = s_dealer (admin, NULL);
    TCHECK (streq (s_submit (client, "valid", 256, NULL, id), VDGX_E_BAD_REQUEST));
    zsock_t *mallory = s_dealer (user, NULL);
    TCHECK (streq (s_model_call (mallory, VDGX_JOBCMD_RESET_LIMITS, "testgen"), VDGX_E_FORBIDDEN));
    TCHECK (streq (s_submit (client, "valid", 256, NULL, id), VDGX_E_BAD_REQUEST));
    TCHECK (streq (s_model_call (client, VDGX_JOBCMD_RESET_LIMITS, "testgen"), ""));
    TCHECK (streq (s_submit (client, "valid", 256, NULL, id), ""));
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    //  ... and the reset is durable.
    s_start_broker (admin);
    client = s_dealer (admin, NULL);
    TCHECK (streq (s_submit (client, "valid", 256, NULL, id), ""));
    zsock_destroy (&mallory);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
    zcert_destroy (&admin);
    zcert_destroy (&user);
    zcert_destroy (&other);
    zcert_destroy (&host);
}

//  Made-up model names: READYs from a user key, from a worker key of another model, and
//  from a plain peer off the trusted networks add nothing (`models` does not grow) and
//  submits to those names are refused.
static void
s_case_models (void)
{
    s_setup_curve ();
    zcert_t *admin = s_cert ("admin", "admin", NULL, true);
    zcert_t *user = s_cert ("mallory", "user", NULL, true);
    zcert_t *other = s_cert ("gpu2", "worker", "other", true);
    tenv_flag (&env, "--model");
    tenv_flag (&env, "testgen");
    s_start_broker (admin);
    zsock_t *client = s_dealer (admin, NULL);
    size_t before = s_models (client, NULL, NULL);
    zcert_t *attackers [] = { user, other };
    zsock_t *evil [300];
    for (int a = 0; a < 2; a++) {
        for (int i = 0; i < 150; i++) {
            zsock_t *sock = evil [a * 150 + i] = s_dealer (attackers [a], NULL);
            char name [32];
            snprintf (name, sizeof name, "made-up-%d-%d", a, i);
            s_send_ready (sock, name, s_state (name, NULL, NULL, false));
        }
    }
    for (int i = 0; i < 100 && s_counter (client, "vdgx_workers_refused_total{reason=\"not_allowed\"}") < 300; i++)
        zclock_sleep (50);
    TCHECK (s_counter (client, "vdgx_workers_refused_total{reason=\"not_allowed\"}") == 300);
    TCHECK (s_models (client, NULL, NULL) == before);
    for (int i = 0; i < 300; i++)
        zsock_destroy (&evil [i]);
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_SUBMIT;
    snprintf (cmd.request.model, sizeof cmd.request.model, "made-up-0-1");
    cmd.request.prompt = strdup ("x");
    TCHECK (streq (s_call_code (client, &cmd), VDGX_E_UNKNOWN_MODEL));
    vdgx_jobcmd_clear (&cmd);
    zsock_destroy (&client);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;

    //  Without CURVE: a peer on a non-loopback address (not in --trust-net) is no worker.
    char addr [64];
    s_outside_address (addr, sizeof addr);
    if (!*addr) {
        printf ("models: no non-loopback address, plain case skipped\n");
        zcert_destroy (&admin);
        zcert_destroy (&user);
        zcert_destroy (&other);
        return;
    }
    *s_curve = 0;
    int port = 0;
    TCHECK (vdgx_testproc_free_ports (&port, 1) == 0);
    char outside [128];
    snprintf (outside, sizeof outside, "tcp://%s:%d", addr, port);
    snprintf (env.endpoint, sizeof env.endpoint, "%s", outside);
    tenv_flag (&env, "--insecure");
    s_start_broker (NULL);
    zsock_t *outsider = s_dealer (NULL, outside);
    s_send_ready (outsider, "made-up", s_state ("made-up", NULL, NULL, true));
    s_seen_t seen;
    s_watch (outsider, 400, NULL, &seen);
    TCHECK (seen.disconnects >= 1);
    zsock_destroy (&outsider);
    //  The same peer as a client is a user: no operators' commands, no metrics.
    zsock_t *plain = s_dealer (NULL, outside);
    TCHECK (streq (s_model_call (plain, VDGX_JOBCMD_UNLOAD, "testgen"), VDGX_E_FORBIDDEN));
    zsock_destroy (&plain);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
    //  ... unless its network is trusted explicitly.
    snprintf (env.extra [env.nextra++], 128, "--trust-net");
    snprintf (env.extra [env.nextra++], 128, "%s/32", addr);
    s_start_broker (NULL);
    outsider = s_dealer (NULL, outside);
    s_send_ready (outsider, "testgen", s_state ("testgen", NULL, NULL, false));
    s_watch (outsider, 400, NULL, &seen);
    TCHECK (seen.disconnects == 0);
    zsock_destroy (&outsider);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
    zcert_destroy (&admin);
    zcert_destroy (&user);
    zcert_destroy (&other);
}

//  Ownership: users read, cancel, delete and fetch only their own jobs (another's is "not
//  found"), list only theirs, cannot reuse another's idempotency key to reach its job, and
//  need admin for unload, drain, reset_limits, mmi.workers and mmi.metrics and to act on
//  behalf of an owner. The admin (the REST bridge) acts on behalf of its API keys' owners.
static void
s_case_owners (void)
{
    s_setup_curve ();
    zcert_t *admin = s_cert ("admin", "admin", NULL, true);
    zcert_t *alice = s_cert ("alice", "user", NULL, true);
    zcert_t *bob = s_cert ("bob", NULL, NULL, true);        //  no role: a user
    tenv_flag (&env, "--model");
    tenv_flag (&env, "testgen");
    s_start_broker (admin);
    zsock_t *a = s_dealer (alice, NULL);
    zsock_t *b = s_dealer (bob, NULL);
    zsock_t *op = s_dealer (admin, NULL);
    char ida [VDGX_ID_MAX + 1], idb [VDGX_ID_MAX + 1], idx [VDGX_ID_MAX + 1];
    TCHECK (streq (s_submit (a, "alice's secret prompt", 64, "k1", ida), ""));
    TCHECK (streq (s_submit (b, "bob's prompt", 64, NULL, idb), ""));
    //  Bob sees nothing of Alice's job.
    TCHECK (streq (s_id_call (b, VDGX_JOBCMD_STATUS, ida), VDGX_E_NOT_FOUND));
    TCHECK (streq (s_id_call (b, VDGX_JOBCMD_CANCEL, ida), VDGX_E_NOT_FOUND));
    TCHECK (streq (s_id_call (b, VDGX_JOBCMD_DELETE, ida), VDGX_E_NOT_FOUND));
    TCHECK (streq (s_id_call (b, VDGX_JOBCMD_RESULT, ida), VDGX_E_NOT_FOUND));
    //  The same idempotency key is his own, not a way to her job.
    TCHECK (streq (s_submit (b, "bob's prompt", 64, "k1", idx), ""));
    TCHECK (!streq (idx, ida));
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_LIST;
    vdgx_jobreply_t reply;
    TCHECK (tclient_jobs (b, &cmd, &reply) == 0);
    TCHECK (reply.njobs == 2);
    for (size_t i = 0; i < reply.njobs; i++) {
        TCHECK (!streq (reply.jobs [i].id, ida));
        TCHECK (!reply.jobs [i].has_request || !strstr (reply.jobs [i].request.prompt, "alice"));
    }
    vdgx_jobreply_clear (&reply);
    TCHECK (tclient_jobs (op, &cmd, &reply) == 0);
    TCHECK (reply.njobs == 3);
    vdgx_jobreply_clear (&reply);
    //  Acting on behalf of someone needs admin.
    snprintf (cmd.owner, sizeof cmd.owner, "curve:alice");
    TCHECK (streq (s_call_code (b, &cmd), VDGX_E_FORBIDDEN));
    TCHECK (tclient_jobs (op, &cmd, &reply) == 0);
    TCHECK (reply.njobs == 1 && streq (reply.jobs [0].id, ida));
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    //  Operators' commands.
    TCHECK (streq (s_model_call (b, VDGX_JOBCMD_UNLOAD, "testgen"), VDGX_E_FORBIDDEN));
    TCHECK (streq (s_model_call (b, VDGX_JOBCMD_DRAIN, "testgen"), VDGX_E_FORBIDDEN));
    TCHECK (streq (s_model_call (b, VDGX_JOBCMD_RESET_LIMITS, "testgen"), VDGX_E_FORBIDDEN));
    TCHECK (streq (s_model_call (op, VDGX_JOBCMD_UNLOAD, "testgen"), ""));
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    zframe_t *frame = NULL;
    TCHECK (tclient_mmi (b, "mmi.workers", &up, &frame) == 0);
    TCHECK (tmap_get (&up.data, "workers") == NULL);
    msgpack_unpacked_destroy (&up);
    zframe_destroy (&frame);
    //  Her own job is hers: she reads, cancels and deletes it; the admin sees it all.
    TCHECK (streq (s_id_call (a, VDGX_JOBCMD_STATUS, ida), ""));
    TCHECK (streq (s_id_call (op, VDGX_JOBCMD_STATUS, idb), ""));
    TCHECK (streq (s_id_call (a, VDGX_JOBCMD_CANCEL, ida), ""));
    TCHECK (streq (s_id_call (a, VDGX_JOBCMD_DELETE, ida), ""));
    TCHECK (streq (s_id_call (b, VDGX_JOBCMD_DELETE, idb), ""));
    zsock_destroy (&a);
    zsock_destroy (&b);
    zsock_destroy (&op);
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
    zcert_destroy (&admin);
    zcert_destroy (&alice);
    zcert_destroy (&bob);
}

//  An image-to-video submit of png (about its size in bytes) to the model "i2v" (no worker:
//  the job stays queued), optionally on behalf of owner (an admin peer only). Returns the
//  error code ("" = accepted) with the id and the reply's retry hint.
static const char *
s_submit_image (zsock_t *sock, const uint8_t *png, size_t size, const char *owner, char *id,
                uint64_t *retry_ms)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_SUBMIT;
    if (owner) {
        snprintf (cmd.owner, sizeof cmd.owner, "%s", owner);
        cmd.has_role = true;
        cmd.admin = false;
    }
    snprintf (cmd.request.model, sizeof cmd.request.model, "i2v");
    cmd.request.prompt = strdup ("the picture comes alive");
    cmd.request.no_cache = true;
    TCHECK (vdgx_genreq_set_image (&cmd.request, "image", png, size) == 0);
    vdgx_jobreply_t reply;
    int rc = tclient_jobs (sock, &cmd, &reply);
    static char code [32];
    snprintf (code, sizeof code, "%s", rc == 0? "": reply.ok? "?": reply.error.code);
    if (id)
        snprintf (id, VDGX_ID_MAX + 1, "%s", rc == 0? reply.id: "");
    if (retry_ms)
        *retry_ms = rc == 0? 0: reply.retry_after_ms;
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    return code;
}

//  The cases on limits per client: CURVE, an admin and two users (alice, bob), the model
//  "i2v" without workers, the broker started with flags (NULL-terminated); and their end.
static void
s_start_i2v (zcert_t *certs [3], const char **flags)
{
    s_setup_curve ();
    certs [0] = s_cert ("admin", "admin", NULL, true);
    certs [1] = s_cert ("alice", "user", NULL, true);
    certs [2] = s_cert ("bob", "user", NULL, true);
    tenv_flag (&env, "--model");
    tenv_flag (&env, "i2v");
    for (; *flags; flags++)
        tenv_flag (&env, *flags);
    s_start_broker (certs [0]);
}

static void
s_stop_i2v (zcert_t *certs [3])
{
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    env.broker = 0;
    for (int i = 0; i < 3; i++)
        zcert_destroy (&certs [i]);
}

//  Byte budget: a client flooding vdgx.jobs with large submits (image-to-video requests carry
//  megabytes) is refused once its budget (9 MiB at once, 512 KiB/s) is spent, with queue_full
//  and a retry hint, also on fresh connections (new routing ids) of the same key; another
//  client is still served, the admin is exempt, and after the hinted wait the flooder is
//  served again. The refusals are counted.
static void
s_case_flood (void)
{
    zcert_t *certs [3];
    s_start_i2v (certs, (const char *[]) { "--peer-rate", "512K", "--peer-burst", "9M", NULL });
    zcert_t *admin = certs [0], *alice = certs [1], *bob = certs [2];
    size_t size;
    uint8_t *png = tpng_file (2 << 20, 1, &size);
    zsock_t *a = s_dealer (alice, NULL);
    int accepted = 0;
    uint64_t retry = 0;
    const char *code = "";
    //  At most 9 MiB at once plus 512 KiB/s: four 2 MiB submits pass, and however slow this
    //  machine is, a flood of them is refused long before forty.
    for (int i = 0; i < 40 && !*code; i++) {
        code = s_submit_image (a, png, size, NULL, NULL, &retry);
        accepted += !*code;
    }
    printf ("flood: %d accepted, then %s (retry in %llu ms)\n", accepted, code,
            (unsigned long long) retry);
    TCHECK (streq (code, VDGX_E_QUEUE_FULL) && retry >= 1 && retry <= 5000);
    TCHECK (accepted >= 4 && accepted < 40);
    //  A new connection of the same key is the same client.
    zsock_t *again = s_dealer (alice, NULL);
    TCHECK (streq (s_submit_image (again, png, size, NULL, NULL, NULL), VDGX_E_QUEUE_FULL));
    zsock_destroy (&again);
    //  Meanwhile another client and the admin are served.
    zsock_t *b = s_dealer (bob, NULL);
    zsock_t *op = s_dealer (admin, NULL);
    TCHECK (streq (s_submit_image (b, png, size, NULL, NULL, NULL), ""));
    for (int i = 0; i < 6; i++)
        TCHECK (streq (s_submit_image (op, png, size, NULL, NULL, NULL), ""));
    TCHECK (s_counter (op, "vdgx_budget_refused_total{reason=\"rate\"}") >= 2);
    //  After the hinted wait the budget holds a submit again.
    zclock_sleep ((int) retry + 600);
    TCHECK (streq (s_submit_image (a, png, size, NULL, NULL, NULL), ""));
    free (png);
    zsock_destroy (&a);
    zsock_destroy (&b);
    zsock_destroy (&op);
    s_stop_i2v (certs);
}

//  Queued bytes: an owner's queued and running jobs may hold at most --owner-queued-max of
//  request bytes (5 MiB here: two 2 MiB image submits). The third is refused (too_large,
//  with a retry hint), also when the admin peer (the bridge) submits it on her behalf, and
//  also after a broker restart (the store's unfinished jobs are counted again); another
//  owner and the admin itself are served; a job that ends gives its bytes back.
static void
s_case_quota (void)
{
    zcert_t *certs [3];
    s_start_i2v (certs, (const char *[]) { "--owner-queued-max", "5M", NULL });
    zcert_t *admin = certs [0], *alice = certs [1], *bob = certs [2];
    size_t size;
    uint8_t *png = tpng_file (2 << 20, 2, &size);
    zsock_t *a = s_dealer (alice, NULL);
    zsock_t *b = s_dealer (bob, NULL);
    zsock_t *op = s_dealer (admin, NULL);
    char id1 [VDGX_ID_MAX + 1], id2 [VDGX_ID_MAX + 1];
    uint64_t retry = 0;
    TCHECK (streq (s_submit_image (a, png, size, NULL, id1, NULL), ""));
    TCHECK (streq (s_submit_image (a, png, size, NULL, id2, NULL), ""));
    TCHECK (streq (s_submit_image (a, png, size, NULL, NULL, &retry), VDGX_E_TOO_LARGE));
    TCHECK (retry > 0);
    TCHECK (streq (s_submit_image (op, png, size, "curve:alice", NULL, NULL), VDGX_E_TOO_LARGE));
    TCHECK (streq (s_submit_image (b, png, size, NULL, NULL, NULL), ""));
    TCHECK (streq (s_submit_image (b, png, size, NULL, NULL, NULL), ""));
    for (int i = 0; i < 3; i++)
        TCHECK (streq (s_submit_image (op, png, size, NULL, NULL, NULL), ""));
    //  A cancelled job no longer counts.
    TCHECK (streq (s_id_call (a, VDGX_JOBCMD_CANCEL, id1), ""));
    TCHECK (streq (s_submit_image (a, png, size, NULL, id1, NULL), ""));
    TCHECK (streq (s_submit_image (a, png, size, NULL, NULL, NULL), VDGX_E_TOO_LARGE));
    TCHECK (s_counter (op, "vdgx_budget_refused_total{reason=\"quota\"}") == 3);
    zsock_destroy (&a);
    zsock_destroy (&b);
    zsock_destroy (&op);
    //  After a restart her two queued jobs still count.
    TCHECK (tenv_stop (env.broker, SIGTERM) == 0);
    s_start_broker (admin);
    a = s_dealer (alice, NULL);
    TCHECK (streq (s_submit_image (a, png, size, NULL, NULL, NULL), VDGX_E_TOO_LARGE));
    TCHECK (streq (s_id_call (a, VDGX_JOBCMD_DELETE, id2), ""));
    TCHECK (streq (s_submit_image (a, png, size, NULL, NULL, NULL), ""));
    free (png);
    zsock_destroy (&a);
    s_stop_i2v (certs);
}

int
main (int argc, char *argv [])
{
    if (argc < 4) {
        fprintf (stderr, "usage: security_broker CASE BROKER_BIN WORKER_BIN\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    zsys_init ();
    zsys_set_linger (0);
    tenv_init (&env, argv [2], argv [0]);
    s_worker_bin = argv [3];
    struct { const char *name; void (*fn) (void); } cases [] = {
        { "resend", s_case_resend }, { "limits", s_case_limits },
        { "models", s_case_models }, { "owners", s_case_owners },
        { "flood", s_case_flood }, { "quota", s_case_quota },
    };
    bool found = false;
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        if (streq (argv [1], cases [i].name)) {
            found = true;
            int64_t t0 = zclock_mono ();
            cases [i].fn ();
            printf ("%s: OK (%lld ms)\n", argv [1], (long long) (zclock_mono () - t0));
        }
    zcert_destroy (&s_server);
    tenv_cleanup (&env);
    if (!found) {
        fprintf (stderr, "unknown case %s\n", argv [1]);
        return 2;
    }
    return 0;
}
