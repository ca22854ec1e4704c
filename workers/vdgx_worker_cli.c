/*  vdgx_worker_cli.c - the vdgx-worker command line: options, --list-models, signals. */
#include <getopt.h>
#include <czmq.h>
#include "engine.h"
#include "vdgx_worker.h"
#include "vdgx_log.h"

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: vdgx-worker --model NAME [--broker EP] [--weights DIR]\n"
        "                   [--precision bf16|fp8|fp4|fp32] [--device cpu|cuda:N]\n"
        "                   [--unload-after MINUTES] [--host-memory GB] [--threads N]\n"
        "                   [--curve-server-key FILE --curve-cert FILE] [--data DIR]\n"
        "                   [--heartbeat-ms MS] [--liveness N] [--reconnect-max-ms MS]\n"
        "       vdgx-worker --list-models\n"
        "       vdgx-worker --make-tiny-checkpoint DIR [--model wan21-tiny|wan21-i2v-tiny|ltx2-tiny|magi1-tiny]\n"
        "                   (random-weight demo model; default wan21-tiny)\n"
        "Serves one model instance to the broker (default $VDGX_BROKER or %s).\n"
        "Weights load on the first job and unload after MINUTES idle (default 10, or\n"
        "$AUTO_UNLOAD_MINUTES; 0 = never).\n"
        "Exit status: 0 after SIGTERM/drain, 3 after a fatal engine error, 2 bad usage.\n",
        "tcp://127.0.0.1:5555");
}

static int
s_parse_double (const char *text, double lo, double hi, double *value)
{
    char *end = NULL;
    errno = 0;
    double v = strtod (text, &end);
    if (errno || end == text || *end || v < lo || v > hi || v != v)
        return -1;
    *value = v;
    return 0;
}

static int
s_parse_int (const char *text, long lo, long hi, int *value)
{
    char *end = NULL;
    errno = 0;
    long v = strtol (text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return -1;
    *value = (int) v;
    return 0;
}

static bool
s_model_name_ok (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > 64 || strncmp (name, "mmi.", 4) == 0 || strncmp (name, "vdgx.", 5) == 0)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_'
        ||    *c == '-'))
            return false;
    return true;
}

static bool
s_device_ok (const char *device)
{
    if (streq (device, "cpu"))
        return true;
    if (strncmp (device, "cuda:", 5) != 0 || !device [5])
        return false;
    for (const char *c = device + 5; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    return strlen (device) < 12;
}

int
vdgx_worker_main (int argc, char **argv)
{
    enum { O_HB = 1000, O_LIVENESS, O_RECONNECT, O_LIST, O_CURVE_KEY, O_CURVE_CERT,
           O_UNLOAD, O_HOSTMEM };
    static const struct option longopts [] = {
        { "model", required_argument, NULL, 'm' },
        { "broker", required_argument, NULL, 'b' },
        { "weights", required_argument, NULL, 'w' },
        { "precision", required_argument, NULL, 'p' },
        { "device", required_argument, NULL, 'd' },
        { "unload-after", required_argument, NULL, O_UNLOAD },
        { "host-memory", required_argument, NULL, O_HOSTMEM },
        { "threads", required_argument, NULL, 't' },
        { "curve-server-key", required_argument, NULL, O_CURVE_KEY },
        { "curve-cert", required_argument, NULL, O_CURVE_CERT },
        { "data", required_argument, NULL, 'D' },
        { "heartbeat-ms", required_argument, NULL, O_HB },
        { "liveness", required_argument, NULL, O_LIVENESS },
        { "reconnect-max-ms", required_argument, NULL, O_RECONNECT },
        { "list-models", no_argument, NULL, O_LIST },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    vdgx_worker_options_t opts;
    vdgx_worker_options_init (&opts);
    const char *env_broker = getenv ("VDGX_BROKER");
    opts.broker = env_broker && *env_broker? env_broker: "tcp://127.0.0.1:5555";
    //  The seed's AUTO_UNLOAD_MINUTES sets the idle-unload default; --unload-after wins.
    const char *env_unload = getenv ("AUTO_UNLOAD_MINUTES");
    if (env_unload && *env_unload
    &&  s_parse_double (env_unload, 0, 1e6, &opts.unload_after_min)) {
        fprintf (stderr, "vdgx-worker: AUTO_UNLOAD_MINUTES must be minutes >= 0, not '%s'\n", env_unload);
        return 2;
    }
    bool list = false;
    double gb = 0;
    int c;
    optind = 1;
    while ((c = getopt_long (argc, argv, "m:b:w:p:d:t:D:h", longopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
            case 'm': opts.model = optarg; break;
            case 'b': opts.broker = optarg; break;
            case 'w': opts.weights_dir = optarg; break;
            case 'p':
                opts.precision = optarg;
                if (!streq (optarg, "fp32") && !streq (optarg, "bf16") && !streq (optarg, "fp8")
                &&  !streq (optarg, "fp4"))
                    bad = "--precision must be fp32, bf16, fp8 or fp4";
                break;
            case 'd':
                opts.device = optarg;
                if (!s_device_ok (optarg))
                    bad = "--device must be cpu or cuda:N";
                break;
            case O_UNLOAD:
                if (s_parse_double (optarg, 0, 1e6, &opts.unload_after_min))
                    bad = "--unload-after must be minutes >= 0 (fractions allowed)";
                break;
            case O_HOSTMEM:
                if (s_parse_double (optarg, 0, 1e6, &gb))
                    bad = "--host-memory must be GB >= 0";
                opts.host_budget_bytes = (uint64_t) (gb * 1073741824.0);
                break;
            case 't':
                if (s_parse_int (optarg, 0, 4096, &opts.threads))
                    bad = "--threads must be 0..4096";
                break;
            case O_CURVE_KEY: opts.curve_server_key = optarg; break;
            case O_CURVE_CERT: opts.curve_cert = optarg; break;
            case 'D': opts.data_dir = optarg; break;
            case O_HB:
                if (s_parse_int (optarg, 10, 600000, &opts.heartbeat_ms))
                    bad = "--heartbeat-ms must be 10..600000";
                break;
            case O_LIVENESS:
                if (s_parse_int (optarg, 1, 100, &opts.liveness))
                    bad = "--liveness must be 1..100";
                break;
            case O_RECONNECT:
                if (s_parse_int (optarg, 10, 3600000, &opts.reconnect_max_ms))
                    bad = "--reconnect-max-ms must be 10..3600000";
                break;
            case O_LIST: list = true; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
        if (bad) {
            fprintf (stderr, "vdgx-worker: %s (got '%s')\n", bad, optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "vdgx-worker: unexpected argument '%s'\n", argv [optind]);
        return 2;
    }
    if (list) {
        for (int i = 0; vdgx_engine_at (i); i++)
            printf ("%-16s %s\n", vdgx_engine_at (i)->name,
                    vdgx_engine_at (i)->description? vdgx_engine_at (i)->description: "");
        return 0;
    }
    if (!opts.model) {
        fprintf (stderr, "vdgx-worker: --model is required\n");
        s_usage (stderr);
        return 2;
    }
    if (!s_model_name_ok (opts.model)) {
        fprintf (stderr, "vdgx-worker: bad model name '%s' (1..64 of [a-z0-9._-], "
                         "not mmi.* or vdgx.*)\n", opts.model);
        return 2;
    }
    if (!vdgx_engine_find (opts.model)) {
        fprintf (stderr, "vdgx-worker: no engine serves model '%s' (see --list-models)\n",
                 opts.model);
        return 2;
    }
    if ((opts.curve_server_key != NULL) != (opts.curve_cert != NULL)) {
        fprintf (stderr, "vdgx-worker: --curve-server-key and --curve-cert go together\n");
        return 2;
    }
    if (opts.curve_server_key) {
        zcert_t *a = zcert_load (opts.curve_server_key), *b = zcert_load (opts.curve_cert);
        bool ok = a && b;
        zcert_destroy (&a);
        zcert_destroy (&b);
        if (!ok) {
            fprintf (stderr, "vdgx-worker: cannot read the CURVE certificates\n");
            return 2;
        }
    }
    char component [96];
    snprintf (component, sizeof component, "worker.%s", opts.model);
    vdgx_log_init (component);
    zsys_init ();
    char *err = NULL;
    vdgx_worker_t *worker = vdgx_worker_new (&opts, &err);
    if (!worker) {
        fprintf (stderr, "vdgx-worker: %s\n", err? err: "cannot start");
        free (err);
        return 1;
    }
    //  Main thread: wait for EXIT from the runtime; SIGTERM/SIGINT asks it to stop nicely,
    //  a second signal stops it at once.
    zpoller_t *poller = zpoller_new (vdgx_worker_sock (worker), NULL);
    int code = -1, signals = 0;
    while (code < 0) {
        void *which = zpoller_wait (poller, 500);
        if (which) {
            char *what = NULL, *value = NULL;
            zstr_recvx (vdgx_worker_sock (worker), &what, &value, NULL);
            if (what && value && streq (what, "EXIT"))
                code = atoi (value);
            zstr_free (&what);
            zstr_free (&value);
        }
        else
        if (zsys_interrupted) {
            zsys_interrupted = 0;
            zctx_interrupted = 0;
            if (++signals == 1)
                vdgx_worker_stop (worker);
            else {
                vdgx_log_warn ("worker.forced_exit", "signals=%d", signals);
                code = 1;
            }
        }
    }
    zpoller_destroy (&poller);
    vdgx_worker_destroy (&worker);
    return code;
}
