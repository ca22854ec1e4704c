/*  vdgx-worker-e2e SCENARIO - end-to-end tests of the worker runtime and the client library
    against the real vdgx-broker and vdgx-worker-test processes (test engine "testgen").

    Scenarios: lazy (lazy load, warm routing, idle unload and reload, CONTROL unload),
    cancel, sigkill (worker killed mid-job, a restarted worker finishes it), broker_restart
    (result delivered after the worker reconnects), sigterm (clean exit 0, idle and busy),
    fatal (job failed, worker exits non-zero), client (every library call and error path).
    Everything runs in a temp dir that is removed at exit; spawned processes are killed.
*/
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "vdgx_client.h"
#include "vdgx_sha256.h"
#include "vdgx_testproc.h"

static const char *s_dir = "";   //  vdgx_testproc_dir ()
static char s_bin [1024];
static char s_broker_ep [300], s_events_ep [300];
static pid_t s_broker = 0;
static char s_curve [300];          //  CURVE directory of the broker, "" = plain
static char s_worker_cert [300];    //  CURVE certificate the workers use

//  Heartbeats every 100 ms, a peer dead after 15 silent intervals (1.5 s), for the broker and
//  the workers alike: a loaded CI machine can keep a live process off the CPU for most of a
//  second, and a live worker expired there re-runs its job (attempt counts change).
#define S_HEARTBEAT_MS "100"
#define S_LIVENESS "15"

#define CHECK(cond) VDGX_TEST_CHECK (cond)
#define CHECK_CLIENT(client, cond) do { if (!(cond)) { \
    fprintf (stderr, "%s:%d: CHECK failed: %s (client: %s: %s)\n", __FILE__, __LINE__, #cond, \
             vdgx_client_error_code (client), vdgx_client_error (client)); \
    vdgx_testproc_dump_logs (); exit (1); } } while (0)

static pid_t
s_spawn (const char *name, char *const argv [])
{
    pid_t pid = vdgx_testproc_spawn (name, argv);
    CHECK (pid > 0);
    return pid;
}

#define s_wait_exit vdgx_testproc_wait_exit

static void
s_kill (pid_t pid, int sig)
{
    kill (pid, sig);
    if (sig == SIGKILL)
        CHECK (s_wait_exit (pid, 15000) == 128 + SIGKILL);
}

static void
s_start_broker (void)
{
    char bin [1100], data [300];
    snprintf (bin, sizeof bin, "%s/vdgx-broker", s_bin);
    snprintf (data, sizeof data, "%s/broker", s_dir);
    char *argv [] = { bin, "--bind", s_broker_ep, "--events", s_events_ep, "--data", data,
                      "--heartbeat-ms", S_HEARTBEAT_MS, "--liveness", S_LIVENESS, "--max-attempts", "3",
                      "--model", "testgen", *s_curve? "--curve": NULL, s_curve, NULL };
    s_broker = s_spawn ("broker", argv);
    //  Ready when it answers mmi.health.
    vdgx_client_t *client = vdgx_client_new (s_broker_ep, s_events_ep);
    if (*s_curve) {
        char key [320];
        snprintf (key, sizeof key, "%s/broker.key", s_curve);
        for (int i = 0; i < 1200 && access (key, R_OK) != 0; i++)
            zclock_sleep (25);
        char cert [300];
        snprintf (cert, sizeof cert, "%s/client.cert", s_dir);
        CHECK_CLIENT (client, vdgx_client_set_curve (client, key, cert) == 0);
    }
    vdgx_client_set_timeout (client, 300);
    vdgx_client_set_retries (client, 0);
    int64_t end = zclock_mono () + 30000;
    bool up = false;
    while (!up && zclock_mono () < end)
        up = vdgx_client_health (client, NULL, NULL) == 0;
    vdgx_client_destroy (&client);
    CHECK (up);
    CHECK (waitpid (s_broker, NULL, WNOHANG) == 0);     //  ours answered, not a stranger
}

static pid_t
s_start_worker (const char *unload_after)
{
    static int n = 0;
    char bin [1100], data [300];
    snprintf (bin, sizeof bin, "%s/vdgx-worker-test", s_bin);
    snprintf (data, sizeof data, "%s/worker%d", s_dir, n++);
    char key [320];
    snprintf (key, sizeof key, "%s/broker.key", s_curve);
    char *argv [] = { bin, "--model", "testgen", "--broker", s_broker_ep, "--data", data,
                      "--heartbeat-ms", S_HEARTBEAT_MS, "--liveness", S_LIVENESS,
                      "--reconnect-max-ms", "400",
                      "--unload-after", (char *) (unload_after? unload_after: "0"),
                      *s_curve? "--curve-server-key": NULL, key, "--curve-cert", s_worker_cert,
                      NULL };
    return s_spawn ("worker", argv);
}

//  Number of workers of testgen in state (NULL = any), from mmi.workers.
static int
s_count_workers (vdgx_client_t *client, const char *state)
{
    char *text = NULL;
    if (vdgx_client_workers (client, "testgen", &text) != 0)
        return -1;
    json_error_t jerr;
    json_t *root = json_loads (text, 0, &jerr);
    free (text);
    CHECK (root);
    json_t *list = json_object_get (root, "workers");
    CHECK (json_is_array (list));
    int n = 0;
    for (size_t i = 0; i < json_array_size (list); i++) {
        const char *st = json_string_value (json_object_get (json_array_get (list, i), "state"));
        if (!state || (st && streq (st, state)))
            n++;
    }
    json_decref (root);
    return n;
}

static void
s_wait_workers (vdgx_client_t *client, const char *state, int count, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    int n = -1;
    while (zclock_mono () < end) {
        n = s_count_workers (client, state);
        if (n == count)
            return;
        zclock_sleep (50);
    }
    fprintf (stderr, "expected %d workers %s, have %d (%s: %s)\n", count, state? state: "", n,
             vdgx_client_error_code (client), vdgx_client_error (client));
    CHECK (!"worker count");
}

//  Lines of the newest log of `name` holding `needle`.
static int
s_log_count (pid_t pid, const char *needle)
{
    (void) pid;
    return vdgx_testproc_count_lines ("/worker.", needle);
}

static char *
s_submit (vdgx_client_t *client, const char *prompt, uint32_t steps, uint64_t seed)
{
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "testgen");
    req.prompt = strdup (prompt);
    req.steps = steps;
    req.has_seed = true;
    req.seed = seed;
    char *id = NULL;
    vdgx_submit_info_t info;
    int rc = vdgx_client_submit (client, &req, &id, &info);
    CHECK_CLIENT (client, rc == 0 && id);
    CHECK (strlen (info.idempotency_key) > 0);
    vdgx_genreq_clear (&req);
    return id;
}

typedef struct {
    int calls;
    bool saw_denoising;
} s_progress_log_t;

static void
s_on_progress (const vdgx_jobstatus_t *job, void *arg)
{
    s_progress_log_t *log = (s_progress_log_t *) arg;
    log->calls++;
    if (job->phase == VDGX_PHASE_DENOISING)
        log->saw_denoising = true;
}

static s_progress_log_t s_last_log;        //  progress seen by the last s_wait_job

static void
s_wait_job (vdgx_client_t *client, const char *id, vdgx_job_state_t want, vdgx_jobstatus_t *job,
            int timeout_ms)
{
    s_progress_log_t log = { 0, false };
    int rc = vdgx_client_wait (client, id, timeout_ms, s_on_progress, &log, job);
    CHECK_CLIENT (client, rc == 0);
    if (job->state != want)
        fprintf (stderr, "job %s: state %s, wanted %s (%s: %s)\n", id,
                 vdgx_job_state_name (job->state), vdgx_job_state_name (want),
                 job->has_error? job->error.code: "", job->has_error? job->error.message: "");
    CHECK (job->state == want);
    CHECK (log.calls >= 1);
    s_last_log = log;
}

//  Waits until the job runs and has reached the denoising phase.
static void
s_wait_running (vdgx_client_t *client, const char *id)
{
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    int64_t end = zclock_mono () + 30000;
    bool running = false;
    while (!running && zclock_mono () < end) {
        CHECK_CLIENT (client, vdgx_client_status (client, id, &job) == 0);
        running = job.state == VDGX_JOB_RUNNING && job.phase == VDGX_PHASE_DENOISING;
        if (!running)
            zclock_sleep (30);
    }
    vdgx_jobstatus_clear (&job);
    CHECK (running);
}

//  Downloads a completed job and checks it against its status.
static void
s_check_result (vdgx_client_t *client, const char *id, const vdgx_jobstatus_t *job)
{
    CHECK (job->has_result && job->result.size > 0);
    char path [320];
    snprintf (path, sizeof path, "%s/%s.mp4", s_dir, id);
    CHECK_CLIENT (client, vdgx_client_result (client, id, path) == 0);
    char sha [VDGX_SHA256_HEX_SIZE];
    CHECK (vdgx_sha256_file (path, sha) == 0);
    CHECK (streq (sha, job->result.sha256));
    struct stat st;
    CHECK (stat (path, &st) == 0 && (uint64_t) st.st_size == job->result.size);
    FILE *f = fopen (path, "rb");
    char head [12];
    CHECK (f && fread (head, 1, 12, f) == 12);
    fclose (f);
    CHECK (memcmp (head + 4, "ftyp", 4) == 0);         //  an MP4
    unlink (path);
}

static void
s_scenario_lazy (vdgx_client_t *client)
{
    pid_t w = s_start_worker ("0.1");                   //  unload after 6 s idle
    s_wait_workers (client, "cold", 1, 30000);          //  registered without loading
    CHECK (s_log_count (w, "runner.loaded") == 0);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    char *id = s_submit (client, "first", 3, 1);
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    s_check_result (client, id, &job);
    CHECK (job.result.width == 64 && job.result.frames == 8);
    s_wait_workers (client, "warm", 1, 30000);
    CHECK (s_log_count (w, "runner.loaded") == 1);
    free (id);
    //  Warm routing: the second job does not load again.
    id = s_submit (client, "second", 2, 2);
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    CHECK (s_log_count (w, "runner.loaded") == 1);
    free (id);
    //  Idle unload, then a reload on the next job.
    s_wait_workers (client, "cold", 1, 30000);
    CHECK (s_log_count (w, "runner.unloaded") == 1);
    id = s_submit (client, "third", 2, 3);
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    CHECK (s_log_count (w, "runner.loaded") == 2);
    free (id);
    //  Unload asked through the broker.
    s_wait_workers (client, "warm", 1, 30000);
    uint32_t n = 0;
    CHECK_CLIENT (client, vdgx_client_unload (client, "testgen", &n) == 0);
    s_wait_workers (client, "cold", 1, 30000);
    CHECK (s_log_count (w, "runner.unloaded") == 2);
    vdgx_jobstatus_clear (&job);
}

static void
s_scenario_cancel (vdgx_client_t *client)
{
    s_start_worker (NULL);
    s_wait_workers (client, NULL, 1, 30000);
    char *id = s_submit (client, "sleep_ms=100", 100, 1);
    s_wait_running (client, id);
    int64_t t0 = zclock_mono ();
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    CHECK_CLIENT (client, vdgx_client_cancel (client, id, &job) == 0);
    s_wait_job (client, id, VDGX_JOB_CANCELLED, &job, 10000);
    CHECK (zclock_mono () - t0 < 5000);
    free (id);
    //  The worker serves the next job. Its steps take longer than the broker's dead-peer
    //  time; the heartbeats still flow (engine work is on its own thread), so it runs once.
    id = s_submit (client, "sleep_ms=2000", 2, 2);
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    CHECK (job.attempt == 1);
    CHECK (s_last_log.saw_denoising && s_last_log.calls >= 3);  //  progress reached the client
    free (id);
    vdgx_jobstatus_clear (&job);
}

static void
s_scenario_sigkill (vdgx_client_t *client)
{
    pid_t w1 = s_start_worker (NULL);
    s_wait_workers (client, NULL, 1, 30000);
    char *id = s_submit (client, "sleep_ms=100", 25, 1);
    s_wait_running (client, id);
    s_kill (w1, SIGKILL);
    //  The supervisor's part: start a fresh worker.
    s_start_worker (NULL);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    CHECK (job.attempt == 2);
    s_check_result (client, id, &job);
    free (id);
    vdgx_jobstatus_clear (&job);
}

static void
s_scenario_broker_restart (vdgx_client_t *client)
{
    s_start_worker (NULL);
    s_wait_workers (client, NULL, 1, 30000);
    char *id = s_submit (client, "sleep_ms=80", 20, 1);
    s_wait_running (client, id);
    s_kill (s_broker, SIGKILL);
    //  The job finishes while no broker is there, and the worker registers again (nobody
    //  hears it yet) holding the result (however long the loaded machine takes).
    int64_t end = zclock_mono () + 30000;
    while ((s_log_count (0, "runner.done") == 0 || s_log_count (0, "pending=1") == 0)
       &&  zclock_mono () < end)
        zclock_sleep (20);
    CHECK (s_log_count (0, "runner.done") == 1);
    CHECK (s_log_count (0, "pending=1") >= 1);
    s_start_broker ();
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    s_check_result (client, id, &job);
    //  the new broker heard it re-register holding the result
    CHECK (vdgx_testproc_count_lines ("/broker.", "pending=1") >= 1);
    free (id);
    vdgx_jobstatus_clear (&job);
}

//  The broker comes back while the job still runs: the re-registered worker keeps running it
//  and its result is accepted.
static void
s_scenario_broker_restart_busy (vdgx_client_t *client)
{
    s_start_worker (NULL);
    s_wait_workers (client, NULL, 1, 30000);
    char *id = s_submit (client, "sleep_ms=100", 30, 1);
    s_wait_running (client, id);
    s_kill (s_broker, SIGKILL);
    s_start_broker ();
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    s_check_result (client, id, &job);
    free (id);
    vdgx_jobstatus_clear (&job);
}

//  CURVE: an allowed worker and client work; a worker with an unknown key never registers.
static void
s_scenario_curve (vdgx_client_t *client)
{
    (void) client;
    char allowed [320], path [400];
    snprintf (s_curve, sizeof s_curve, "%s/curve", s_dir);
    snprintf (allowed, sizeof allowed, "%s/allowed", s_curve);
    CHECK (zsys_dir_create ("%s", allowed) == 0);
    const char *names [] = { "worker", "client", "stranger" };
    for (int i = 0; i < 3; i++) {
        zcert_t *cert = zcert_new ();
        //  Roles live in the certificates the broker allows (docs/SECURITY.md).
        if (i == 0) {
            zcert_set_meta (cert, "role", "worker");
            zcert_set_meta (cert, "models", "testgen");
        }
        else
            zcert_set_meta (cert, "role", i == 1? "admin": "worker");
        snprintf (path, sizeof path, "%s/%s.cert", s_dir, names [i]);
        CHECK (zcert_save (cert, path) == 0);
        if (i < 2) {
            snprintf (path, sizeof path, "%s/%s.key", allowed, names [i]);
            CHECK (zcert_save_public (cert, path) == 0);
        }
        zcert_destroy (&cert);
    }
    s_kill (s_broker, SIGKILL);
    s_start_broker ();
    vdgx_client_t *secure = vdgx_client_new (s_broker_ep, s_events_ep);
    vdgx_client_set_timeout (secure, 1000);
    snprintf (path, sizeof path, "%s/broker.key", s_curve);
    char cert [320];
    snprintf (cert, sizeof cert, "%s/client.cert", s_dir);
    CHECK_CLIENT (secure, vdgx_client_set_curve (secure, path, cert) == 0);
    //  a worker whose key is not allowed
    snprintf (s_worker_cert, sizeof s_worker_cert, "%s/stranger.cert", s_dir);
    pid_t stranger = s_start_worker (NULL);
    zclock_sleep (1000);
    CHECK (s_count_workers (secure, NULL) == 0);
    s_kill (stranger, SIGKILL);
    //  the allowed one
    snprintf (s_worker_cert, sizeof s_worker_cert, "%s/worker.cert", s_dir);
    s_start_worker (NULL);
    s_wait_workers (secure, NULL, 1, 30000);
    char *id = s_submit (secure, "over curve", 2, 1);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    s_wait_job (secure, id, VDGX_JOB_COMPLETED, &job, 60000);
    s_check_result (secure, id, &job);
    //  a plain client gets no answer
    vdgx_client_t *plain = vdgx_client_new (s_broker_ep, s_events_ep);
    vdgx_client_set_timeout (plain, 300);
    vdgx_client_set_retries (plain, 0);
    CHECK (vdgx_client_status (plain, id, &job) == -1);
    CHECK (streq (vdgx_client_error_code (plain), "timeout"));
    vdgx_client_destroy (&plain);
    vdgx_client_destroy (&secure);
    free (id);
    vdgx_jobstatus_clear (&job);
}

static void
s_scenario_sigterm (vdgx_client_t *client)
{
    //  Idle: exit 0 promptly.
    pid_t w1 = s_start_worker (NULL);
    s_wait_workers (client, NULL, 1, 30000);
    s_kill (w1, SIGTERM);
    int code = s_wait_exit (w1, 15000);
    if (code != 0)
        fprintf (stderr, "worker exit %d\n", code);
    CHECK (code == 0);
    s_wait_workers (client, NULL, 0, 15000);
    //  Busy: the job is handed back, the process exits 0, another worker finishes it.
    pid_t w2 = s_start_worker (NULL);
    s_wait_workers (client, NULL, 1, 30000);
    char *id = s_submit (client, "sleep_ms=100", 30, 1);
    s_wait_running (client, id);
    s_kill (w2, SIGTERM);
    CHECK (s_wait_exit (w2, 15000) == 0);
    s_start_worker (NULL);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    CHECK (job.attempt == 2);
    free (id);
    vdgx_jobstatus_clear (&job);
}

static void
s_scenario_fatal (vdgx_client_t *client)
{
    pid_t w = s_start_worker (NULL);
    s_wait_workers (client, NULL, 1, 30000);
    char *id = s_submit (client, "fail=fatal fail_at=1", 3, 1);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    s_wait_job (client, id, VDGX_JOB_FAILED, &job, 60000);
    CHECK (job.has_error && streq (job.error.code, "worker_failed"));
    CHECK (strstr (job.error.message, "device lost"));
    int code = s_wait_exit (w, 15000);
    CHECK (code != 0 && code != -1 && code < 128);
    free (id);
    vdgx_jobstatus_clear (&job);
}

static void
s_scenario_client (vdgx_client_t *client)
{
    s_start_worker (NULL);
    s_wait_workers (client, NULL, 1, 30000);
    //  An explicit idempotency key: a retried submit finds the same job.
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "testgen");
    req.prompt = strdup ("idempotent");
    req.steps = 2;
    snprintf (req.idempotency_key, sizeof req.idempotency_key, "key-%d", (int) getpid ());
    char *id = NULL, *id2 = NULL;
    vdgx_submit_info_t info;
    CHECK_CLIENT (client, vdgx_client_submit (client, &req, &id, &info) == 0);
    CHECK_CLIENT (client, vdgx_client_submit (client, &req, &id2, NULL) == 0);
    CHECK (streq (id, id2));
    CHECK (streq (info.idempotency_key, req.idempotency_key));
    free (id2);
    vdgx_genreq_clear (&req);
    vdgx_jobstatus_t job;
    vdgx_jobstatus_init (&job);
    CHECK_CLIENT (client, vdgx_client_status (client, id, &job) == 0);
    CHECK (streq (job.id, id) && streq (job.model, "testgen"));
    s_wait_job (client, id, VDGX_JOB_COMPLETED, &job, 60000);
    s_check_result (client, id, &job);
    char *json = vdgx_client_job_json (&job);
    CHECK (json && strstr (json, "\"completed\""));
    free (json);
    //  Replies lost to a tiny timeout: every retry reuses the generated idempotency key, so
    //  however many submits reach the broker, one job exists.
    vdgx_client_set_timeout (client, 2);
    vdgx_client_set_retries (client, 300);
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "testgen");
    req.prompt = strdup ("retried submit");
    req.steps = 1;
    char *rid = NULL;
    int rrc = vdgx_client_submit (client, &req, &rid, &info);
    vdgx_genreq_clear (&req);
    vdgx_client_set_timeout (client, 1000);
    vdgx_client_set_retries (client, 5);
    vdgx_jobstatus_t *all = NULL;
    size_t nall = 0, same = 0;
    CHECK_CLIENT (client, vdgx_client_list (client, NULL, NULL, 1000, NULL, false, &all, &nall, NULL) == 0);
    for (size_t i = 0; i < nall; i++)
        if (all [i].has_request && all [i].request.prompt
        &&  streq (all [i].request.prompt, "retried submit"))
            same++;
    vdgx_client_jobs_free (&all, nall);
    CHECK (same == 1);
    if (rrc == 0)
        s_wait_job (client, rid, VDGX_JOB_COMPLETED, &job, 60000);
    free (rid);
    //  list: all, and filtered
    vdgx_jobstatus_t *jobs = NULL;
    size_t count = 0;
    bool more = true;
    CHECK_CLIENT (client, vdgx_client_list (client, NULL, NULL, 0, NULL, false, &jobs, &count, &more) == 0);
    CHECK (count >= 1 && !more);
    bool found = false;
    for (size_t i = 0; i < count; i++)
        found |= streq (jobs [i].id, id);
    CHECK (found);
    vdgx_client_jobs_free (&jobs, count);
    CHECK_CLIENT (client, vdgx_client_list (client, "failed", "testgen", 10, NULL, false, &jobs, &count,
                                            NULL) == 0);
    CHECK (count == 0);
    vdgx_client_jobs_free (&jobs, count);
    //  introspection
    char *text = NULL;
    CHECK_CLIENT (client, vdgx_client_workers (client, NULL, &text) == 0);
    CHECK (strstr (text, "testgen"));
    free (text);
    CHECK_CLIENT (client, vdgx_client_services (client, &text) == 0);
    CHECK (strstr (text, "testgen"));
    free (text);
    CHECK_CLIENT (client, vdgx_client_models (client, &text) == 0);
    CHECK (strstr (text, "testgen"));
    free (text);
    bool healthy = false;
    CHECK_CLIENT (client, vdgx_client_health (client, &healthy, &text) == 0);
    CHECK (healthy && strstr (text, "uptime_s"));
    free (text);
    CHECK_CLIENT (client, vdgx_client_metrics (client, &text) == 0);
    CHECK (strstr (text, "counters"));
    free (text);
    //  error paths the broker answers
    CHECK (vdgx_client_status (client, "no-such-job", &job) == -1);
    CHECK (streq (vdgx_client_error_code (client), "not_found"));
    char path [320];
    snprintf (path, sizeof path, "%s/none.mp4", s_dir);
    CHECK (vdgx_client_result (client, "no-such-job", path) == -1);
    CHECK (streq (vdgx_client_error_code (client), "not_found"));
    CHECK (access (path, F_OK) != 0);
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "no-such-model");
    req.prompt = strdup ("x");
    CHECK (vdgx_client_submit (client, &req, &id2, NULL) == -1 && id2 == NULL);
    CHECK (streq (vdgx_client_error_code (client), "unknown_model"));
    vdgx_genreq_clear (&req);
    //  cancel a queued job (no worker can take it while the worker is busy)
    char *busy = s_submit (client, "sleep_ms=100", 20, 9);
    char *queued = s_submit (client, "queued", 2, 10);
    CHECK_CLIENT (client, vdgx_client_cancel (client, queued, &job) == 0);
    CHECK (job.state == VDGX_JOB_CANCELLED);
    CHECK_CLIENT (client, vdgx_client_cancel (client, busy, NULL) == 0);
    s_wait_job (client, busy, VDGX_JOB_CANCELLED, &job, 10000);
    //  delete
    CHECK_CLIENT (client, vdgx_client_delete (client, id) == 0);
    CHECK (vdgx_client_status (client, id, &job) == -1);
    CHECK (streq (vdgx_client_error_code (client), "not_found"));
    //  wait with a deadline on a job that cannot finish in time
    char *slow = s_submit (client, "sleep_ms=100", 50, 11);
    int64_t t0 = zclock_mono ();
    CHECK (vdgx_client_wait (client, slow, 500, NULL, NULL, &job) == -1);
    CHECK (streq (vdgx_client_error_code (client), "timeout"));
    CHECK (zclock_mono () - t0 < 3000);
    CHECK_CLIENT (client, vdgx_client_cancel (client, slow, NULL) == 0);
    free (busy);
    free (queued);
    free (slow);
    free (id);
    vdgx_jobstatus_clear (&job);
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "usage: vdgx-worker-e2e lazy|cancel|sigkill|broker_restart|"
                         "broker_restart_busy|sigterm|curve|"
                         "fatal|client\n");
        return 2;
    }
    //  Binaries sit beside this program.
    char self [1024];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    CHECK (n > 0);
    self [n] = 0;
    *strrchr (self, '/') = 0;
    snprintf (s_bin, sizeof s_bin, "%s", self);
    char bin [1100];
    snprintf (bin, sizeof bin, "%s/vdgx-broker", s_bin);
    if (access (bin, X_OK) != 0) {
        fprintf (stderr, "vdgx-broker not built (%s)\n", bin);
        return 1;
    }
    CHECK (vdgx_testproc_init ("vdgx-e2e") == 0);
    s_dir = vdgx_testproc_dir ();
    signal (SIGPIPE, SIG_IGN);
    zsys_init ();
    zsys_handler_set (NULL);
    //  Endpoints in the test's own temp dir: no other test can take them, and no port is
    //  chosen, released and bound again later.
    snprintf (s_broker_ep, sizeof s_broker_ep, "ipc://%s/broker.ipc", s_dir);
    snprintf (s_events_ep, sizeof s_events_ep, "ipc://%s/events.ipc", s_dir);
    s_start_broker ();
    vdgx_client_t *client = vdgx_client_new (s_broker_ep, s_events_ep);
    vdgx_client_set_timeout (client, 1000);
    vdgx_client_set_retries (client, 5);
    const char *which = argv [1];
    if (streq (which, "lazy"))
        s_scenario_lazy (client);
    else
    if (streq (which, "cancel"))
        s_scenario_cancel (client);
    else
    if (streq (which, "sigkill"))
        s_scenario_sigkill (client);
    else
    if (streq (which, "broker_restart"))
        s_scenario_broker_restart (client);
    else
    if (streq (which, "broker_restart_busy"))
        s_scenario_broker_restart_busy (client);
    else
    if (streq (which, "sigterm"))
        s_scenario_sigterm (client);
    else
    if (streq (which, "curve"))
        s_scenario_curve (client);
    else
    if (streq (which, "fatal"))
        s_scenario_fatal (client);
    else
    if (streq (which, "client"))
        s_scenario_client (client);
    else {
        fprintf (stderr, "unknown scenario %s\n", which);
        vdgx_client_destroy (&client);
        return 2;
    }
    //  A sanitizer report in any child's log fails the test (their exit codes alone may not).
    CHECK (vdgx_testproc_sanitizer_clean ());
    if (getenv ("VDGX_VERBOSE"))
        vdgx_testproc_dump_logs ();
    vdgx_client_destroy (&client);
    printf ("e2e %s: OK\n", which);
    return 0;
}
