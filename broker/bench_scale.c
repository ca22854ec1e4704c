/*  bench_scale.c - `vdgx-bench-broker scale ...`: the broker at scale, as a separate process.

    Runs a real vdgx-broker binary (--broker BIN, default: the one next to this program), so
    its CPU time and RSS are read from /proc alone, a restart is a real SIGKILL and exec,
    and an older build can be measured with the same client (a baseline in the same run).
      scale queue   --jobs Q [--window W] [--drain D] [--workers K]
          Q pipelined submits (W in flight, priorities mixed): the submit rate per tenth of
          the run; the broker's RSS at depth Q; SIGKILL and restart: the time until
          mmi.health answers with Q queued; then K simulated job workers drain D jobs at
          depth ~Q: dispatch rate and redispatch latency (a worker's FINAL to its next
          REQUEST) p50/p99. --work-ms M: each worker answers M ms after its REQUEST (a job
          that takes time, so K workers offer about K * 1000 / M jobs/s) instead of at once
          (then K workers keep the broker saturated, and each waits for the others' turns).
          --pause-ms P: wait P ms before the drain (to attach a profiler to the pid shown).
          Then the baseline, in the same run: the same workers answer D plain Majordomo
          requests (the broker only routes them: no store, no output file).
      scale workers --workers N [--seconds S]
          N simulated MDP/0.2 workers connect at once and heartbeat (every 2.5 s, as the
          broker does); the time until all are registered, then the broker's CPU share
          over S seconds, its RSS, and whether any worker was expired.
*/
#include "vdgx_msg.h"
#include "vdgx_mp.h"
#include "vdgx_sha256.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

typedef struct {
    const char *bin;
    char dir [64];
    char endpoint [192];
    pid_t pid;
} s_env_t;

static pid_t
s_broker_spawn (s_env_t *env)
{
    char bind [160], events [160], data [160], log [160];
    snprintf (bind, sizeof bind, "ipc://%s/b.sock", env->dir);
    snprintf (events, sizeof events, "ipc://%s/e.sock", env->dir);
    snprintf (data, sizeof data, "%s/data", env->dir);
    snprintf (log, sizeof log, "%s/broker.log", env->dir);
    snprintf (env->endpoint, sizeof env->endpoint, "%s", bind);
    pid_t pid = fork ();
    if (pid == 0) {
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
        }
        execl (env->bin, env->bin, "--bind", bind, "--events", events, "--data", data,
               "--queue-max", "1000000", "--model", "bench", "--expire-s", "2592000",
               "--retain-hours", "0", (char *) NULL);
        _exit (127);
    }
    env->pid = pid;
    return pid;
}

static void
s_broker_stop (s_env_t *env, int sig)
{
    if (env->pid > 0) {
        kill (env->pid, sig);
        waitpid (env->pid, NULL, 0);
        env->pid = 0;
    }
}

static zsock_t *
s_client (s_env_t *env)
{
    zsock_t *client = zsock_new_dealer (env->endpoint);
    zsock_set_sndhwm (client, 0);
    zsock_set_rcvhwm (client, 0);
    return client;
}

//  The body frame of the next FINAL on client (NULL on timeout).
static zframe_t *
s_final (zsock_t *client, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (client, NULL);
    zframe_t *body = NULL;
    if (zpoller_wait (poller, timeout_ms)) {
        zmsg_t *msg = zmsg_recv (client);
        vdgx_mdp_t in;
        vdgx_error_t err;
        vdgx_mdp_init (&in);
        if (msg && vdgx_mdp_decode (&in, &msg, &err) == 0 && in.body)
            body = zmsg_pop (in.body);
        vdgx_mdp_clear (&in);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return body;
}

static msgpack_object *
s_map_get (msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; map->type == MSGPACK_OBJECT_MAP && i < map->via.map.size; i++) {
        msgpack_object_kv *kv = &map->via.map.ptr [i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen (key)
        &&  memcmp (kv->key.via.str.ptr, key, kv->key.via.str.size) == 0)
            return &kv->val;
    }
    return NULL;
}

static uint64_t
s_map_uint (msgpack_object *map, const char *key)
{
    msgpack_object *val = s_map_get (map, key);
    return val && val->type == MSGPACK_OBJECT_POSITIVE_INTEGER? val->via.u64: 0;
}

//  A job service reply whose "ok" is true.
static bool
s_reply_ok (zframe_t *frame)
{
    msgpack_unpacked u;
    vdgx_error_t err;
    if (vdgx_unpack (&u, zframe_data (frame), zframe_size (frame), &err))
        return false;
    bool ok = false;
    if (u.data.type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            msgpack_object_kv *kv = &u.data.via.map.ptr [i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 2
            &&  memcmp (kv->key.via.str.ptr, "ok", 2) == 0)
                ok = kv->val.type == MSGPACK_OBJECT_BOOLEAN && kv->val.via.boolean;
        }
    msgpack_unpacked_destroy (&u);
    return ok;
}

//  mmi.health: 0 and the queued and workers counts when it answers within timeout_ms.
static int
s_health (zsock_t *client, int timeout_ms, uint64_t *queued, uint64_t *workers)
{
    zmsg_t *body = zmsg_new ();
    zmsg_addmem (body, "\x80", 1);         //  {}
    zmsg_t *msg = vdgx_mdp_client_request ("mmi.health", &body);
    zmsg_send (&msg, client);
    zframe_t *frame = s_final (client, timeout_ms);
    if (!frame)
        return -1;
    msgpack_unpacked u;
    vdgx_error_t err;
    int rc = -1;
    if (vdgx_unpack (&u, zframe_data (frame), zframe_size (frame), &err) == 0) {
        if (queued)
            *queued = s_map_uint (&u.data, "queued");
        if (workers)
            *workers = s_map_uint (&u.data, "workers");
        msgpack_unpacked_destroy (&u);
        rc = 0;
    }
    zframe_destroy (&frame);
    return rc;
}

//  A counter from mmi.metrics (0 when absent or no answer).
//  The broker's mmi.metrics answer, unpacked into u (0), or -1.
static int
s_metrics (zsock_t *client, msgpack_unpacked *u)
{
    zmsg_t *body = zmsg_new ();
    zmsg_addmem (body, "\x80", 1);
    zmsg_t *msg = vdgx_mdp_client_request ("mmi.metrics", &body);
    zmsg_send (&msg, client);
    zframe_t *frame = s_final (client, 30000);
    vdgx_error_t err;
    int rc = frame? vdgx_unpack (u, zframe_data (frame), zframe_size (frame), &err): -1;
    zframe_destroy (&frame);
    return rc;
}

static uint64_t
s_counter (zsock_t *client, const char *name)
{
    uint64_t value = 0;
    msgpack_unpacked u;
    if (s_metrics (client, &u) == 0) {
        msgpack_object *counters = s_map_get (&u.data, "counters");
        value = counters? s_map_uint (counters, name): 0;
        msgpack_unpacked_destroy (&u);
    }
    return value;
}

//  The upper bounds (seconds) of the buckets that hold the q-quantiles of one of the
//  broker's histograms (+Inf as -1); false when it has no such histogram.
static bool
s_hist_quantiles (zsock_t *client, const char *name, const double *q, double *bound, int nq)
{
    bool found = false;
    msgpack_unpacked u;
    if (s_metrics (client, &u) == 0) {
        msgpack_object *hists = s_map_get (&u.data, "histograms");
        msgpack_object *h = hists? s_map_get (hists, name): NULL;
        msgpack_object *buckets = h? s_map_get (h, "buckets"): NULL;
        msgpack_object *counts = h? s_map_get (h, "counts"): NULL;
        if (buckets && counts && buckets->type == MSGPACK_OBJECT_ARRAY
        &&  counts->type == MSGPACK_OBJECT_ARRAY
        &&  counts->via.array.size == buckets->via.array.size + 1 && counts->via.array.size > 0) {
            uint32_t n = counts->via.array.size;
            uint64_t total = counts->via.array.ptr [n - 1].via.u64;      //  cumulative
            for (int j = 0; j < nq && total; j++) {
                bound [j] = -1;
                for (uint32_t i = 0; i + 1 < n; i++)
                    if ((double) counts->via.array.ptr [i].via.u64 >= q [j] * (double) total) {
                        bound [j] = buckets->via.array.ptr [i].via.f64;
                        break;
                    }
            }
            found = total > 0;
        }
        msgpack_unpacked_destroy (&u);
    }
    return found;
}

//  Waits until the broker answers health; ms it took, or -1.
static int64_t
s_wait_ready (s_env_t *env, int64_t since, int timeout_ms, uint64_t *queued)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        zsock_t *client = s_client (env);
        int rc = s_health (client, 200, queued, NULL);
        zsock_destroy (&client);
        if (rc == 0)
            return zclock_mono () - since;
    }
    return -1;
}

static long
s_rss_kb (pid_t pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen (path, "r");
    long kb = -1;
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "VmRSS:", 6) == 0)
            kb = atol (line + 6);
    if (f)
        fclose (f);
    return kb;
}

//  utime + stime of pid in seconds.
static double
s_cpu_s (pid_t pid)
{
    char path [64], buf [1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    char *p = strrchr (buf, ')');
    unsigned long ut = 0, st = 0;
    //  After ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double) (ut + st) / (double) sysconf (_SC_CLK_TCK);
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

//  ---------------------------------------------------------------------------------------
//  Submits

static zmsg_t *
s_submit_msg (int priority)
{
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    cmd.cmd = VDGX_JOBCMD_SUBMIT;
    snprintf (cmd.request.model, sizeof cmd.request.model, "bench");
    cmd.request.prompt = strdup ("a lighthouse at dusk, slow pan");
    cmd.request.steps = 4;
    cmd.request.priority = (vdgx_priority_t) priority;
    cmd.request.no_cache = true;
    zframe_t *frame = vdgx_jobcmd_frame (&cmd);
    vdgx_jobcmd_clear (&cmd);
    zmsg_t *body = zmsg_new ();
    zmsg_append (body, &frame);
    return vdgx_mdp_client_request (VDGX_JOBS_SERVICE, &body);
}

//  Q pipelined submits; prints the rate of each tenth. Returns failures.
static int
s_submits (s_env_t *env, int jobs, int window)
{
    zsock_t *client = s_client (env);
    zmsg_t *protos [3] = { s_submit_msg (0), s_submit_msg (1), s_submit_msg (2) };
    int sent = 0, received = 0, failed = 0;
    int tenth = jobs / 10 > 0? jobs / 10: 1;
    int64_t t0 = zclock_usecs (), tenth_start = t0;
    double first = 0, last = 0;
    printf ("  submit rate per tenth (jobs/s):");
    for (; sent < window && sent < jobs; sent++) {
        zmsg_t *m = zmsg_dup (protos [sent % 3]);
        zmsg_send (&m, client);
    }
    while (received < jobs) {
        zframe_t *frame = s_final (client, 30000);
        if (!frame) {
            fprintf (stderr, "\nno submit reply within 30 s after %d\n", received);
            failed += jobs - received;
            break;
        }
        if (!s_reply_ok (frame))
            failed++;
        zframe_destroy (&frame);
        received++;
        if (sent < jobs) {
            zmsg_t *m = zmsg_dup (protos [sent % 3]);
            zmsg_send (&m, client);
            sent++;
        }
        if (received % tenth == 0 && received / tenth <= 10) {
            int64_t now = zclock_usecs ();
            double rate = tenth * 1e6 / (double) (now - tenth_start);
            if (received / tenth == 1)
                first = rate;
            last = rate;
            printf (" %.0f", rate);
            fflush (stdout);
            tenth_start = now;
        }
    }
    int64_t t1 = zclock_usecs ();
    printf ("\n  submits: %d in %.1f s = %.0f/s overall, last tenth / first = %.2f, failed %d\n",
            received, (t1 - t0) / 1e6, received * 1e6 / (double) (t1 - t0),
            first > 0? last / first: 0, failed);
    for (int i = 0; i < 3; i++)
        zmsg_destroy (&protos [i]);
    zsock_destroy (&client);
    return failed;
}

//  ---------------------------------------------------------------------------------------
//  Simulated job workers: K MDP/0.2 sockets served by one thread. Each REQUEST gets one
//  1 KiB chunk (PARTIAL) and a FINAL with its sha256; the time from a worker's FINAL to its
//  next REQUEST is the redispatch latency.

typedef struct {
    const char *endpoint;
    int workers;
    int jobs;                   //  stop after this many FINALs
    int work_ms;                //  each job takes this long (0: answered at once)
} s_drain_args_t;

//  One job's answer: its 1 KiB chunk (PARTIAL), then the FINAL with its sha256.
static void
s_drain_answer (zsock_t *sock, zframe_t *address, zframe_t *chunk, zframe_t *result)
{
    zframe_t *chunk_copy = zframe_dup (chunk);
    zmsg_t *body = zmsg_new ();
    zmsg_append (body, &chunk_copy);
    zmsg_t *partial = vdgx_mdp_worker_envelope (2, VDGX_MDPW_PARTIAL, address, &body);
    zmsg_send (&partial, sock);
    zframe_t *result_copy = zframe_dup (result);
    body = zmsg_new ();
    zmsg_append (body, &result_copy);
    zmsg_t *final = vdgx_mdp_worker_envelope (2, VDGX_MDPW_FINAL, address, &body);
    zmsg_send (&final, sock);
}

static void
s_drain_actor (zsock_t *pipe, void *arg)
{
    s_drain_args_t *a = (s_drain_args_t *) arg;
    int k = a->workers;
    zsock_t **socks = (zsock_t **) calloc ((size_t) k, sizeof (zsock_t *));
    int64_t *t_final = (int64_t *) calloc ((size_t) k, sizeof (int64_t));
    int64_t *due = (int64_t *) calloc ((size_t) k, sizeof (int64_t));         //  usecs, 0 = idle
    zframe_t **job = (zframe_t **) calloc ((size_t) k, sizeof (zframe_t *));  //  its address
    int64_t *lat = (int64_t *) calloc ((size_t) a->jobs + 1, sizeof (int64_t));
    //  Item k + 1: a timer with microsecond resolution for the next answer due. zmq_poll's
    //  own timeout is in milliseconds, which would answer every job due within the same
    //  millisecond together: bursts no real set of workers sends.
    zmq_pollitem_t *items = (zmq_pollitem_t *) calloc ((size_t) k + 2, sizeof (zmq_pollitem_t));
    items [0] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
    int timer = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    assert (timer >= 0);
    items [k + 1] = (zmq_pollitem_t) { NULL, timer, ZMQ_POLLIN, 0 };
    uint8_t data [1024];
    for (size_t i = 0; i < sizeof data; i++)
        data [i] = (uint8_t) (i * 7 + 3);
    vdgx_chunk_t c;
    vdgx_chunk_init (&c);
    c.size = sizeof data;
    c.data = (uint8_t *) malloc (sizeof data);
    memcpy (c.data, data, sizeof data);
    zframe_t *chunk = vdgx_chunk_frame (&c);
    vdgx_chunk_clear (&c);
    vdgx_result_t res;
    vdgx_result_init (&res);
    res.ok = true;
    res.video.size = sizeof data;
    vdgx_sha256_hex (data, sizeof data, res.video.sha256);
    snprintf (res.video.mime, sizeof res.video.mime, "video/mp4");
    res.video.width = res.video.height = 64;
    res.video.frames = 5;
    res.video.fps = 16;
    res.video.seconds = 5.0 / 16;
    zframe_t *result = vdgx_result_frame (&res);
    vdgx_result_clear (&res);
    for (int i = 0; i < k; i++) {
        socks [i] = zsock_new_dealer (a->endpoint);
        zsock_set_sndhwm (socks [i], 0);
        zsock_set_rcvhwm (socks [i], 0);
        zsock_set_rcvtimeo (socks [i], 0);
        zmsg_t *ready = vdgx_mdp_worker_ready (2, "bench", NULL);
        zmsg_send (&ready, socks [i]);
        items [i + 1] = (zmq_pollitem_t) { zsock_resolve (socks [i]), 0, ZMQ_POLLIN, 0 };
    }
    zsock_signal (pipe, 0);
    int done = 0, nlat = 0, answering = 0;
    int64_t first_request = 0, last_final = 0, last_hb = zclock_mono ();
    while (done < a->jobs) {
        //  Jobs that take time: wake up when the next one is due (zclock_usecs is
        //  CLOCK_MONOTONIC, as the timer).
        int64_t next = 0;
        for (int i = 0; i < k && answering; i++)
            if (due [i] && (!next || due [i] < next))
                next = due [i];
        struct itimerspec its;
        memset (&its, 0, sizeof its);
        if (next) {
            its.it_value.tv_sec = next / 1000000;
            its.it_value.tv_nsec = (next % 1000000) * 1000 + 1;    //  never 0: that disarms
        }
        timerfd_settime (timer, TFD_TIMER_ABSTIME, &its, NULL);
        if (zmq_poll (items, k + 2, 500) < 0 || (items [0].revents & ZMQ_POLLIN))
            break;
        uint64_t expirations;
        if ((items [k + 1].revents & ZMQ_POLLIN) && read (timer, &expirations, sizeof expirations) < 0)
            expirations = 0;
        int64_t now;
        if (zclock_mono () - last_hb > 1000) {
            for (int i = 0; i < k; i++) {
                zmsg_t *hb = vdgx_mdp_worker_command (2, VDGX_MDPW_HEARTBEAT, NULL);
                zmsg_send (&hb, socks [i]);
            }
            last_hb = zclock_mono ();
        }
        for (int i = 0; i < k && answering && done < a->jobs; i++)
            if (due [i] && due [i] <= zclock_usecs ()) {
                s_drain_answer (socks [i], job [i], chunk, result);
                zframe_destroy (&job [i]);
                due [i] = 0;
                answering--;
                t_final [i] = last_final = zclock_usecs ();
                done++;
            }
        for (int i = 0; i < k && done < a->jobs; i++) {
            if (!(items [i + 1].revents & ZMQ_POLLIN))
                continue;
            zmsg_t *msg;
            while (done < a->jobs && (msg = zmsg_recv (socks [i]))) {
                now = zclock_usecs ();
                zmsg_first (msg);                       //  "MDPW02"
                zframe_t *cmd = zmsg_next (msg);
                if (cmd && zframe_size (cmd) == 1 && zframe_data (cmd) [0] == VDGX_MDPW_REQUEST) {
                    zframe_t *address = zmsg_next (msg);
                    if (!first_request)
                        first_request = now;
                    if (t_final [i])
                        lat [nlat++] = now - t_final [i];
                    t_final [i] = 0;
                    if (a->work_ms > 0 && !due [i]) {
                        job [i] = zframe_dup (address);
                        due [i] = now + (int64_t) a->work_ms * 1000;
                        answering++;
                    }
                    else
                    if (!due [i]) {
                        s_drain_answer (socks [i], address, chunk, result);
                        t_final [i] = last_final = zclock_usecs ();
                        done++;
                    }
                }
                zmsg_destroy (&msg);
            }
        }
    }
    //  Report: jobs, microseconds from the first REQUEST to the last FINAL, latencies.
    zmsg_t *report = zmsg_new ();
    zmsg_addmem (report, &done, sizeof done);
    int64_t span = last_final - first_request;
    zmsg_addmem (report, &span, sizeof span);
    zmsg_addmem (report, lat, (size_t) nlat * sizeof (int64_t));
    zmsg_send (&report, pipe);
    zsock_wait (pipe);          //  until the owner is done with the broker
    for (int i = 0; i < k; i++)
        zsock_destroy (&socks [i]);
    zframe_destroy (&chunk);
    zframe_destroy (&result);
    for (int i = 0; i < k; i++)
        zframe_destroy (&job [i]);
    close (timer);
    free (items);
    free (lat);
    free (job);
    free (due);
    free (t_final);
    free (socks);
}

//  Prints the harness's report (done, span, latencies) under label; how many it did.
static int
s_drain_print (const char *label, zmsg_t *report, double cpu_s, const char *unit)
{
    zframe_t *f_done = zmsg_first (report), *f_span = zmsg_next (report), *f_lat = zmsg_next (report);
    int done = *(int *) zframe_data (f_done);
    int64_t span = *(int64_t *) zframe_data (f_span);
    size_t nlat = zframe_size (f_lat) / sizeof (int64_t);
    int64_t *lat = (int64_t *) zframe_data (f_lat);
    qsort (lat, nlat, sizeof (int64_t), s_cmp_i64);
    printf ("  %s: %d %ss in %.2f s = %.0f/s (broker CPU %.0f %%, %.0f us per %s)\n", label, done,
            unit, span / 1e6, done * 1e6 / (double) span, 100.0 * cpu_s / (span / 1e6),
            done? 1e6 * cpu_s / done: 0, unit);
    if (nlat)
        printf ("    redispatch latency (FINAL -> next REQUEST): p50 %.2f ms, p99 %.2f ms, max %.2f ms"
                " (%zu samples)\n", lat [nlat / 2] / 1e3, lat [(size_t) (nlat * 0.99)] / 1e3,
                lat [nlat - 1] / 1e3, nlat);
    return done;
}

static int
s_drain (s_env_t *env, int workers, int jobs, int work_ms)
{
    s_drain_args_t args = { env->endpoint, workers, jobs, work_ms };
    zsock_t *client = s_client (env);
    uint64_t commits0 = s_counter (client, "vdgx_store_commits_total");
    zsock_destroy (&client);
    double cpu0 = s_cpu_s (env->pid);
    zactor_t *actor = zactor_new (s_drain_actor, &args);
    zmsg_t *report = zmsg_recv (actor);
    double cpu1 = s_cpu_s (env->pid);
    client = s_client (env);
    uint64_t commits = s_counter (client, "vdgx_store_commits_total") - commits0;
    double quantiles [2] = { 0.5, 0.99 }, own [2];
    bool has_own = s_hist_quantiles (client, "vdgx_redispatch_seconds", quantiles, own, 2);
    zsock_destroy (&client);
    printf ("  drain: %d workers, jobs of %d ms\n", workers, work_ms);
    int done = s_drain_print ("jobs (dispatched and completed)", report, cpu1 - cpu0, "job");
    printf ("    %llu commits (%.1f jobs per commit)\n", (unsigned long long) commits,
            commits? (double) done / (double) commits: 0);
    if (has_own)
        printf ("    of which the broker's own (FINAL read -> next REQUEST sent, its histogram"
                " vdgx_redispatch_seconds): p50 <= %.3f ms, p99 <= %.3f ms\n", own [0] * 1e3,
                own [1] * 1e3);
    zmsg_destroy (&report);
    zsock_signal (actor, 0);
    zactor_destroy (&actor);
    return done == jobs? 0: 1;
}

//  The baseline in the same run: the same harness and workers, fed plain Majordomo requests
//  (no job store, no output file, no events: the broker only routes), 2 per worker in flight.
//  What the job path adds to the redispatch latency is the difference.
static int
s_drain_plain (s_env_t *env, int workers, int requests, int work_ms)
{
    s_drain_args_t args = { env->endpoint, workers, requests, work_ms };
    zsock_t *client = s_client (env);
    double cpu0 = s_cpu_s (env->pid);
    zactor_t *actor = zactor_new (s_drain_actor, &args);
    zpoller_t *poller = zpoller_new (client, actor, NULL);
    zmsg_t *report = NULL;
    int sent = 0, answered = 0;
    while (!report) {
        while (sent < requests && sent - answered < 2 * workers) {
            zmsg_t *body = zmsg_new ();
            zmsg_addmem (body, "plain", 5);
            zmsg_t *msg = vdgx_mdp_client_request ("bench", &body);
            zmsg_send (&msg, client);
            sent++;
        }
        void *which = zpoller_wait (poller, 10000);
        if (which == client) {
            zmsg_t *msg = zmsg_recv (client);
            vdgx_mdp_t in;
            vdgx_error_t err;
            vdgx_mdp_init (&in);
            if (msg && vdgx_mdp_decode (&in, &msg, &err) == 0 && in.command == VDGX_MDPC_FINAL)
                answered++;
            vdgx_mdp_clear (&in);
            zmsg_destroy (&msg);
        }
        else
        if (which == actor)
            report = zmsg_recv (actor);
        else
            break;                      //  nothing for 10 s: the broker stopped routing
    }
    double cpu1 = s_cpu_s (env->pid);
    int done = 0;
    if (report)
        done = s_drain_print ("baseline, plain requests to the same workers (routing only)",
                              report, cpu1 - cpu0, "request");
    zmsg_destroy (&report);
    zpoller_destroy (&poller);
    zsock_signal (actor, 0);
    zactor_destroy (&actor);
    zsock_destroy (&client);
    return done == requests? 0: 1;
}

//  ---------------------------------------------------------------------------------------
//  Many idle workers with heartbeats

//  One process's share of the workers: they register, heartbeat every 2.5 s (also while the
//  others are still being created) and read what the broker sends every 100 ms, answering
//  DISCONNECT with a new READY as a worker does, until SIGTERM.
static volatile sig_atomic_t s_stop;

static void
s_on_term (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_workers_child (const char *endpoint, int n)
{
    signal (SIGTERM, s_on_term);
    zsys_handler_set (NULL);
    zsys_set_max_sockets (0);               //  as many as the file limit allows
    zsock_t **socks = (zsock_t **) calloc ((size_t) n, sizeof (zsock_t *));
    int64_t *last_ready = (int64_t *) calloc ((size_t) n, sizeof (int64_t));
    int made = 0;
    int64_t last_hb = zclock_mono ();
    for (int i = 0; i < n; i++) {
        if (zclock_mono () - last_hb >= 2500) {
            for (int k = 0; k < made; k++) {
                zmsg_t *hb = vdgx_mdp_worker_command (2, VDGX_MDPW_HEARTBEAT, NULL);
                zmsg_send (&hb, socks [k]);
            }
            last_hb = zclock_mono ();
        }
        socks [i] = zsock_new (ZMQ_DEALER);
        if (!socks [i] || zsock_connect (socks [i], "%s", endpoint)) {
            fprintf (stderr, "only %d sockets in this process (file limit?)\n", made);
            break;
        }
        zsock_set_rcvtimeo (socks [i], 0);
        zsock_set_sndhwm (socks [i], 0);
        zmsg_t *ready = vdgx_mdp_worker_ready (2, "bench", NULL);
        zmsg_send (&ready, socks [i]);
        made++;
    }
    while (!s_stop) {
        if (zclock_mono () - last_hb >= 2500) {
            for (int i = 0; i < made; i++) {
                zmsg_t *hb = vdgx_mdp_worker_command (2, VDGX_MDPW_HEARTBEAT, NULL);
                zmsg_send (&hb, socks [i]);
            }
            last_hb = zclock_mono ();
        }
        for (int i = 0; i < made; i++) {
            zmsg_t *msg;
            while ((msg = zmsg_recv (socks [i]))) {
                zmsg_first (msg);                       //  "MDPW02"
                zframe_t *cmd = zmsg_next (msg);
                //  One READY per second at most: a starved worker may get DISCONNECT twice
                //  (expired, then its late heartbeat answered) and must not register twice.
                if (cmd && zframe_size (cmd) == 1 && zframe_data (cmd) [0] == VDGX_MDPW_DISCONNECT
                &&  zclock_mono () - last_ready [i] > 1000) {
                    zmsg_t *ready = vdgx_mdp_worker_ready (2, "bench", NULL);
                    zmsg_send (&ready, socks [i]);
                    last_ready [i] = zclock_mono ();
                }
                zmsg_destroy (&msg);
            }
        }
        usleep (100000);
    }
    for (int i = 0; i < made; i++)
        zsock_destroy (&socks [i]);
    free (socks);
    free (last_ready);
}

//  N workers in processes of up to 2500 sockets each (every socket holds two descriptors).
static int
s_workers (s_env_t *env, int n, int seconds)
{
    enum { PER_PROCESS = 2500 };
    int nproc = (n + PER_PROCESS - 1) / PER_PROCESS;
    pid_t *kids = (pid_t *) calloc ((size_t) nproc, sizeof (pid_t));
    int64_t t0 = zclock_mono ();
    fflush (stdout);
    for (int p = 0; p < nproc; p++) {
        int share = p < nproc - 1? PER_PROCESS: n - PER_PROCESS * (nproc - 1);
        kids [p] = fork ();
        if (kids [p] == 0) {
            s_workers_child (env->endpoint, share);
            _exit (0);
        }
    }
    zsock_t *client = s_client (env);
    uint64_t registered = 0;
    int64_t t_all = -1;
    while (zclock_mono () - t0 < 120000) {
        if (s_health (client, 5000, NULL, &registered) == 0 && registered >= (uint64_t) n) {
            t_all = zclock_mono () - t0;
            break;
        }
        zclock_sleep (50);
    }
    printf ("  %d workers (%d processes) connected and registered in %lld ms (%llu registered)\n",
            n, nproc, (long long) t_all, (unsigned long long) registered);
    double cpu_reg = s_cpu_s (env->pid);
    printf ("  broker CPU during the connection storm: %.2f s\n", cpu_reg);
    double cpu0 = cpu_reg;
    int64_t m0 = zclock_mono ();
    long rss_peak = 0;
    while (zclock_mono () - m0 < seconds * 1000) {
        long rss = s_rss_kb (env->pid);
        if (rss > rss_peak)
            rss_peak = rss;
        zclock_sleep (200);
    }
    double cpu1 = s_cpu_s (env->pid);
    double wall = (zclock_mono () - m0) / 1000.0;
    uint64_t still = 0;
    for (int i = 0; i < 5 && s_health (client, 5000, NULL, &still); i++)
        ;
    uint64_t expired = s_counter (client, "vdgx_workers_expired_total{model=\"bench\"}");
    printf ("  broker over %.0f s with %d heartbeating workers: CPU %.1f %% of a core, RSS %ld KiB"
            " (%.1f KiB per worker), %llu still registered, %llu expired since the start\n",
            wall, n, 100.0 * (cpu1 - cpu0) / wall, rss_peak, n? (double) rss_peak / n: 0,
            (unsigned long long) still, (unsigned long long) expired);
    zsock_destroy (&client);
    for (int p = 0; p < nproc; p++)
        if (kids [p] > 0) {
            kill (kids [p], SIGTERM);
            waitpid (kids [p], NULL, 0);
        }
    free (kids);
    return still == (uint64_t) n? 0: 1;
}

//  ---------------------------------------------------------------------------------------

int vdgx_bench_scale (int argc, char *argv [], const char *self_path);

int
vdgx_bench_scale (int argc, char *argv [], const char *self_path)
{
    if (argc < 1 || (!streq (argv [0], "queue") && !streq (argv [0], "workers"))) {
        fprintf (stderr, "usage: vdgx-bench-broker scale queue [--jobs Q] [--window W] [--drain D]"
                 " [--workers K] [--work-ms M] [--pause-ms P] [--broker BIN]\n"
                 "       vdgx-bench-broker scale workers [--workers N] [--seconds S] [--broker BIN]\n");
        return 2;
    }
    bool queue = streq (argv [0], "queue");
    int jobs = 100000, window = 1000, drain = 20000, workers = queue? 16: 10000, seconds = 30;
    int work_ms = 0, pause_ms = 0;
    char bin [4096];
    snprintf (bin, sizeof bin, "%s", self_path);
    char *slash = strrchr (bin, '/');
    snprintf (slash? slash + 1: bin, sizeof bin - (size_t) (slash? slash + 1 - bin: 0), "vdgx-broker");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (streq (argv [i], "--jobs")) jobs = atoi (argv [i + 1]);
        else if (streq (argv [i], "--window")) window = atoi (argv [i + 1]);
        else if (streq (argv [i], "--drain")) drain = atoi (argv [i + 1]);
        else if (streq (argv [i], "--workers")) workers = atoi (argv [i + 1]);
        else if (streq (argv [i], "--seconds")) seconds = atoi (argv [i + 1]);
        else if (streq (argv [i], "--work-ms")) work_ms = atoi (argv [i + 1]);
        else if (streq (argv [i], "--pause-ms")) pause_ms = atoi (argv [i + 1]);
        else if (streq (argv [i], "--broker")) snprintf (bin, sizeof bin, "%s", argv [i + 1]);
        else {
            fprintf (stderr, "vdgx-bench-broker scale: unknown option %s\n", argv [i]);
            return 2;
        }
    }
    if (jobs < 1 || jobs > 1000000 || window < 1 || drain < 0 || workers < 1 || seconds < 1
    ||  work_ms < 0 || work_ms > 60000) {
        fprintf (stderr, "vdgx-bench-broker scale: bad arguments\n");
        return 2;
    }
    if (drain > jobs)
        drain = jobs;
    //  Thousands of sockets need thousands of file descriptors.
    struct rlimit nofile;
    if (getrlimit (RLIMIT_NOFILE, &nofile) == 0) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit (RLIMIT_NOFILE, &nofile);
    }
    s_env_t env;
    memset (&env, 0, sizeof env);
    env.bin = bin;
    snprintf (env.dir, sizeof env.dir, "/tmp/vdgx-bscale-XXXXXX");
    if (!mkdtemp (env.dir))
        return 1;
    int64_t t0 = zclock_mono ();
    s_broker_spawn (&env);
    if (s_wait_ready (&env, t0, 20000, NULL) < 0) {
        fprintf (stderr, "vdgx-bench-broker scale: %s did not answer (see %s/broker.log)\n", bin, env.dir);
        s_broker_stop (&env, SIGKILL);
        return 1;
    }
    printf ("vdgx-bench-broker scale %s: broker %s, ipc, %ld CPUs\n", argv [0], bin,
            sysconf (_SC_NPROCESSORS_ONLN));
    int rc = 0;
    if (queue) {
        rc |= s_submits (&env, jobs, window);
        printf ("  broker RSS with %d queued: %ld KiB\n", jobs, s_rss_kb (env.pid));
        s_broker_stop (&env, SIGKILL);
        int64_t t1 = zclock_mono ();
        s_broker_spawn (&env);
        uint64_t queued = 0;
        int64_t ms = s_wait_ready (&env, t1, 120000, &queued);
        printf ("  restart after SIGKILL: health answered in %lld ms with %llu queued"
                " (broker CPU %.2f s until then, RSS %ld KiB)\n", (long long) ms,
                (unsigned long long) queued, s_cpu_s (env.pid), s_rss_kb (env.pid));
        if (queued != (uint64_t) jobs)
            rc = 1;
        if (drain > 0) {
            if (pause_ms > 0) {
                printf ("  broker pid %d: pausing %d ms before the drain\n", (int) env.pid, pause_ms);
                fflush (stdout);
                zclock_sleep (pause_ms);
            }
            rc |= s_drain (&env, workers, drain, work_ms);
            rc |= s_drain_plain (&env, workers, drain, work_ms);
        }
    }
    else
        rc |= s_workers (&env, workers, seconds);
    s_broker_stop (&env, SIGTERM);
    if (rc) {
        fprintf (stderr, "vdgx-bench-broker scale: failed; the broker's files are in %s\n", env.dir);
        return rc;
    }
    char cmd [256];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", env.dir);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", env.dir);
    return rc;
}
