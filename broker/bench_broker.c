/*  vdgx-bench-broker - routing throughput and added latency of the broker.

    Runs the broker actor in-process, N echo workers (MDP/0.2 sockets, served by one thread)
    and a client, and measures the same traffic against a plain ROUTER echo thread (no broker)
    in the same run, so the difference is what the broker adds:
      - throughput: pipelined small requests (window in flight), requests/s;
      - latency: paced requests at --rate per second, round trip p50/p99.
    usage: vdgx-bench-broker [--workers N] [--requests N] [--window N] [--size BYTES]
                             [--rate R] [--samples N] [--tcp PORT]
           vdgx-bench-broker scale queue|workers ...   (the broker at scale: bench_scale.c)
*/
#include "vdgx_broker.h"
#include "vdgx_msg.h"
#include "vdgx_log.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_endpoint;

//  The echo workers: N MDP/0.2 worker sockets served by one thread (fewer threads than cores
//  keeps the measurement about the broker, not the scheduler). Each answers every REQUEST
//  with a FINAL carrying the body.
static int s_nworkers;

//  Answers one message of one worker socket; -1 when none is waiting.
static int
s_serve (zsock_t *sock)
{
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg)
        return -1;
    zmsg_first (msg);                       //  frame 0 "MDPW02"
    zframe_t *cmd = zmsg_next (msg);        //  frame 1 the command
    if (cmd && zframe_size (cmd) == 1 && zframe_data (cmd) [0] == VDGX_MDPW_REQUEST) {
        zframe_data (cmd) [0] = VDGX_MDPW_FINAL;
        zmsg_send (&msg, sock);
        return 0;
    }
    //  DISCONNECT (e.g. expired while this machine stalled): register again.
    if (cmd && zframe_size (cmd) == 1 && zframe_data (cmd) [0] == VDGX_MDPW_DISCONNECT) {
        zmsg_t *ready = vdgx_mdp_worker_ready (2, "bench", NULL);
        zmsg_send (&ready, sock);
    }
    zmsg_destroy (&msg);
    return 0;
}

static void
s_workers_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *socks [64];
    //  One zmq_poll over all sockets reports every ready one (zpoller_wait names only the first),
    //  so each wake-up serves the whole burst the broker handed out to its idle workers.
    zmq_pollitem_t items [65];
    items [0] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
    for (int i = 0; i < s_nworkers; i++) {
        socks [i] = zsock_new_dealer (s_endpoint);
        zsock_set_sndhwm (socks [i], 0);
        zsock_set_rcvhwm (socks [i], 0);
        zsock_set_rcvtimeo (socks [i], 0);      //  drain until EAGAIN
        zmsg_t *ready = vdgx_mdp_worker_ready (2, "bench", NULL);
        zmsg_send (&ready, socks [i]);
        items [i + 1] = (zmq_pollitem_t) { zsock_resolve (socks [i]), 0, ZMQ_POLLIN, 0 };
    }
    zsock_signal (pipe, 0);
    int64_t last_hb = zclock_mono ();
    while (true) {
        int rc = zmq_poll (items, s_nworkers + 1, 500);
        if (rc < 0 || (items [0].revents & ZMQ_POLLIN))
            break;
        if (zclock_mono () - last_hb > 1000) {
            for (int i = 0; i < s_nworkers; i++) {
                zmsg_t *hb = vdgx_mdp_worker_command (2, VDGX_MDPW_HEARTBEAT, NULL);
                zmsg_send (&hb, socks [i]);
            }
            last_hb = zclock_mono ();
        }
        for (int i = 0; i < s_nworkers; i++)
            if (items [i + 1].revents & ZMQ_POLLIN)
                while (s_serve (socks [i]) == 0)
                    ;
    }
    for (int i = 0; i < s_nworkers; i++)
        zsock_destroy (&socks [i]);
}

//  The baseline: a ROUTER that sends every message straight back.
static void
s_direct_actor (zsock_t *pipe, void *args)
{
    const char *endpoint = (const char *) args;
    zsock_t *sock = zsock_new_router (endpoint);
    zsock_set_sndhwm (sock, 0);
    zsock_set_rcvhwm (sock, 0);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, sock, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != sock)
            break;
        zmsg_t *msg = zmsg_recv (sock);
        zmsg_send (&msg, sock);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&sock);
}

static zmsg_t *
s_request (size_t size)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, VDGX_MDPC02);
    zmsg_addmem (msg, "\x01", 1);
    zmsg_addstr (msg, "bench");
    char *body = (char *) calloc (1, size? size: 1);
    zmsg_addmem (msg, body, size);
    free (body);
    return msg;
}

static double
s_throughput (zsock_t *client, int requests, int window, size_t size)
{
    zmsg_t *proto = s_request (size);
    int sent = 0, received = 0;
    int64_t t0 = zclock_usecs ();
    for (; sent < window && sent < requests; sent++) {
        zmsg_t *m = zmsg_dup (proto);
        zmsg_send (&m, client);
    }
    while (received < requests) {
        zmsg_t *reply = zmsg_recv (client);
        if (!reply)
            break;
        zmsg_destroy (&reply);
        received++;
        if (sent < requests) {
            zmsg_t *m = zmsg_dup (proto);
            zmsg_send (&m, client);
            sent++;
        }
    }
    int64_t t1 = zclock_usecs ();
    zmsg_destroy (&proto);
    return received * 1e6 / (double) (t1 - t0);
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

//  Paced round trips at rate/s; fills p50 and p99 in microseconds.
static void
s_latency (zsock_t *client, int samples, int rate, size_t size, double *p50, double *p99)
{
    int64_t *rtt = (int64_t *) calloc ((size_t) samples, sizeof (int64_t));
    zmsg_t *proto = s_request (size);
    int64_t period = 1000000 / rate;
    int64_t next = zclock_usecs ();
    for (int i = 0; i < samples; i++) {
        //  Sleep, not spin, until the next send: on a 2-core machine a spinning client takes a
        //  core from the broker and the workers, and that shows up as their tail latency.
        //  The round trip is timed from the send, so wake-up jitter only shifts the pacing.
        int64_t wait = next - zclock_usecs ();
        if (wait > 0)
            usleep ((useconds_t) wait);
        int64_t t0 = zclock_usecs ();
        zmsg_t *m = zmsg_dup (proto);
        zmsg_send (&m, client);
        zmsg_t *reply = zmsg_recv (client);
        rtt [i] = zclock_usecs () - t0;
        zmsg_destroy (&reply);
        next += period;
    }
    qsort (rtt, (size_t) samples, sizeof (int64_t), s_cmp);
    *p50 = (double) rtt [samples / 2];
    *p99 = (double) rtt [(size_t) (samples * 0.99)];
    free (rtt);
    zmsg_destroy (&proto);
}

int vdgx_bench_scale (int argc, char *argv [], const char *self_path);

int
main (int argc, char *argv [])
{
    if (argc > 1 && streq (argv [1], "scale")) {
        char self [4096];
        ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
        self [n > 0? n: 0] = 0;
        return vdgx_bench_scale (argc - 2, argv + 2, n > 0? self: argv [0]);
    }
    int workers = 4, requests = 200000, window = 256, rate = 1000, samples = 3000, port = 0;
    size_t size = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (streq (argv [i], "--workers")) workers = atoi (argv [i + 1]);
        else if (streq (argv [i], "--requests")) requests = atoi (argv [i + 1]);
        else if (streq (argv [i], "--window")) window = atoi (argv [i + 1]);
        else if (streq (argv [i], "--size")) size = (size_t) atoi (argv [i + 1]);
        else if (streq (argv [i], "--rate")) rate = atoi (argv [i + 1]);
        else if (streq (argv [i], "--samples")) samples = atoi (argv [i + 1]);
        else if (streq (argv [i], "--tcp")) port = atoi (argv [i + 1]);
        else {
            fprintf (stderr, "usage: vdgx-bench-broker [--workers N] [--requests N] [--window N]"
                     " [--size B] [--rate R] [--samples N] [--tcp PORT]\n");
            return 2;
        }
    }
    if (workers < 1 || requests < 1 || window < 1 || rate < 1 || samples < 100 || workers > 64) {
        fprintf (stderr, "vdgx-bench-broker: bad arguments\n");
        return 2;
    }
    vdgx_log_set_level (VDGX_LOG_WARN);
    char dir [] = "/tmp/vdgx-bench-XXXXXX";
    if (!mkdtemp (dir))
        return 1;
    char *endpoint = port? zsys_sprintf ("tcp://127.0.0.1:%d", port): zsys_sprintf ("ipc://%s/broker.sock", dir);
    char *direct = port? zsys_sprintf ("tcp://127.0.0.1:%d", port + 1): zsys_sprintf ("ipc://%s/direct.sock", dir);
    char *data = zsys_sprintf ("%s/data", dir);
    s_endpoint = endpoint;

    //  Baseline first, alone on the machine.
    zactor_t *echo = zactor_new (s_direct_actor, direct);
    zsock_t *client = zsock_new_dealer (direct);
    zsock_set_sndhwm (client, 0);
    zsock_set_rcvhwm (client, 0);
    zclock_sleep (100);
    double base_tp = s_throughput (client, requests, window, size);
    double base_p50, base_p99;
    s_latency (client, samples, rate, size, &base_p50, &base_p99);
    zsock_destroy (&client);
    zactor_destroy (&echo);

    vdgx_broker_config_t cfg;
    vdgx_broker_config_init (&cfg);
    cfg.endpoint = endpoint;
    cfg.events = "";
    cfg.data_dir = data;
    char error [512];
    vdgx_broker_t *broker = vdgx_broker_new (&cfg, error, sizeof error);
    if (!broker) {
        fprintf (stderr, "vdgx-bench-broker: %s\n", error);
        return 1;
    }
    s_nworkers = workers;
    zactor_t *wactor = zactor_new (s_workers_actor, NULL);
    client = zsock_new_dealer (endpoint);
    zsock_set_sndhwm (client, 0);
    zsock_set_rcvhwm (client, 0);
    zclock_sleep (200);
    double tp = s_throughput (client, requests, window, size);
    double p50, p99;
    s_latency (client, samples, rate, size, &p50, &p99);
    zsock_destroy (&client);
    zactor_destroy (&wactor);
    vdgx_broker_destroy (&broker);

    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    printf ("vdgx-bench-broker: %s, %d echo workers (one thread), %d requests (window %d), %zu-byte bodies, %ld CPUs\n",
            port? "tcp loopback": "ipc", workers, requests, window, size, cpus);
    printf ("  %-26s %10.0f req/s   rtt p50 %7.1f us  p99 %7.1f us  (%d req at %d/s)\n",
            "direct DEALER-ROUTER:", base_tp, base_p50, base_p99, samples, rate);
    printf ("  %-26s %10.0f req/s   rtt p50 %7.1f us  p99 %7.1f us\n", "via broker:", tp, p50, p99);
    printf ("  %-26s p50 %.1f us, p99 %.1f us\n", "added by the broker:", p50 - base_p50, p99 - base_p99);

    zsys_dir_delete ("%s/data/out", dir);
    zsys_dir_delete ("%s/data/tmp", dir);
    const char *files [] = { "data/jobs.db", "data/jobs.db-wal", "data/jobs.db-shm", "broker.sock", "direct.sock" };
    for (int i = 0; i < 5; i++) {
        char *path = zsys_sprintf ("%s/%s", dir, files [i]);
        unlink (path);
        zstr_free (&path);
    }
    zsys_dir_delete ("%s/data", dir);
    zsys_dir_delete ("%s", dir);
    zstr_free (&endpoint);
    zstr_free (&direct);
    zstr_free (&data);
    return 0;
}
