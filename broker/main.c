/*  vdgx-broker - the VideosDGX Majordomo broker daemon.
    Settings: embedded defaults < --config FILE < VDGX_* environment < command line.
*/
#include "vdgx_broker.h"
#include "vdgx_config.h"
#include "vdgx_log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: vdgx-broker [options]\n"
        "  --bind EP            ROUTER endpoint (default tcp://127.0.0.1:5555, VDGX_BROKER)\n"
        "  --events EP          PUB endpoint for job events (default tcp://127.0.0.1:5556, VDGX_EVENTS)\n"
        "  --data DIR           job store directory (default ./var, VDGX_DATA_DIR)\n"
        "  --config FILE        configuration file ([broker], [general], [models])\n"
        "  --curve DIR          CURVE: DIR/broker.key_secret, allowed keys in DIR/allowed/\n"
        "  --insecure           allow plain TCP on non-loopback addresses\n"
        "  --trust-net CIDRS    without CURVE: peers in these networks (comma list) are trusted\n"
        "                       like local ones: admin clients and workers for any model\n"
        "  --salvage            the job store failed its integrity check: keep every readable\n"
        "                       row in a new jobs.db, move the damaged file aside, and start\n"
        "  --heartbeat-ms N     heartbeat interval (default 2500)\n"
        "  --liveness N         missed heartbeats before a peer is dead (default 3)\n"
        "  --max-attempts N     dispatches of a job before it fails (default 3)\n"
        "  --queue-max N        queued jobs per model / requests per service (default 1000)\n"
        "  --expire-s N         queued work for a model with no worker expires (default 600)\n"
        "  --retain-hours H     delete finished jobs older than H hours (default 168, 0 = keep)\n"
        "  --retain-bytes N     cap on stored outputs, K/M/G suffixes (default 0 = no cap)\n"
        "  --peer-rate N        job-service request bytes per second per client, K/M/G\n"
        "                       (default 8M, 0 = no limit; admins are exempt)\n"
        "  --peer-burst N       ... at once (default 32M, at least 8M+64K: one image-to-video submit)\n"
        "  --owner-queued-max N request bytes of one owner's queued and running jobs\n"
        "                       (default 512M, 0 = no cap; admins are exempt)\n"
        "  --model NAME         a model known before any worker registers it (repeatable)\n"
        "  -v, --verbose        debug logging\n");
}

static int
s_parse_int (const char *flag, const char *text, long long min, long long max, long long *value)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || !end || *end || end == text || v < min || v > max) {
        fprintf (stderr, "vdgx-broker: %s: expected an integer in %lld..%lld, got '%s'\n",
                 flag, min, max, text);
        return -1;
    }
    *value = v;
    return 0;
}

static int
s_parse_size (const char *flag, const char *text, uint64_t *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || end == text || text [0] == '-') {
        fprintf (stderr, "vdgx-broker: %s: expected a size, got '%s'\n", flag, text);
        return -1;
    }
    int shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10, end++;
    else if (*end == 'M' || *end == 'm') shift = 20, end++;
    else if (*end == 'G' || *end == 'g') shift = 30, end++;
    else if (*end == 'T' || *end == 't') shift = 40, end++;
    if (*end || (shift && v > (UINT64_MAX >> shift))) {
        fprintf (stderr, "vdgx-broker: %s: expected a size, got '%s'\n", flag, text);
        return -1;
    }
    *value = (uint64_t) v << shift;
    return 0;
}

int
main (int argc, char *argv [])
{
    vdgx_log_init ("broker");
    vdgx_broker_config_t cfg;
    vdgx_broker_config_init (&cfg);
    vdgx_config_t *config = vdgx_config_new ();
    const char **models = (const char **) calloc ((size_t) argc + 256, sizeof (char *));
    const char **precisions = (const char **) calloc ((size_t) argc + 256, sizeof (char *));
    char **owned = (char **) calloc (256, sizeof (char *));
    size_t nmodels = 0;
    int rc = 1;

    //  Pass 1: the configuration file comes before everything else.
    for (int i = 1; i < argc; i++)
        if (streq (argv [i], "--config") && i + 1 < argc
        &&  vdgx_config_load (config, argv [i + 1])) {
            fprintf (stderr, "vdgx-broker: %s\n", vdgx_config_error (config));
            goto done;
        }
    if (vdgx_config_apply_env (config)) {
        fprintf (stderr, "vdgx-broker: %s\n", vdgx_config_error (config));
        goto done;
    }
    cfg.endpoint = vdgx_config_broker_endpoint (config);
    cfg.events = vdgx_config_events_endpoint (config);
    cfg.data_dir = vdgx_config_data_dir (config);
    cfg.heartbeat_ms = vdgx_config_heartbeat_ms (config);
    cfg.liveness = vdgx_config_liveness (config);
    int64_t iv;
    double dv;
    uint64_t sv;
    bool bv;
    if (vdgx_config_get_int (config, "broker", "max_attempts", cfg.max_attempts, 1, 100, &iv))
        goto config_error;
    cfg.max_attempts = (int) iv;
    if (vdgx_config_get_int (config, "broker", "queue_max", (int64_t) cfg.queue_max, 1, 1000000, &iv))
        goto config_error;
    cfg.queue_max = (size_t) iv;
    if (vdgx_config_get_int (config, "broker", "expire_s", cfg.expire_s, 1, 2592000, &iv))
        goto config_error;
    cfg.expire_s = (int) iv;
    if (vdgx_config_get_double (config, "broker", "retain_hours", cfg.retain_hours, 0, 1e6, &dv))
        goto config_error;
    cfg.retain_hours = dv;
    if (vdgx_config_get_size (config, "broker", "retain_bytes", cfg.retain_bytes, &sv))
        goto config_error;
    cfg.retain_bytes = sv;
    if (vdgx_config_get_size (config, "broker", "peer_rate", cfg.peer_rate, &cfg.peer_rate)
    ||  vdgx_config_get_size (config, "broker", "peer_burst", cfg.peer_burst, &cfg.peer_burst)
    ||  vdgx_config_get_size (config, "broker", "owner_queued_max", cfg.owner_queued_max,
                              &cfg.owner_queued_max))
        goto config_error;
    if (vdgx_config_get_bool (config, "broker", "insecure", false, &bv))
        goto config_error;
    cfg.insecure = bv;
    cfg.curve_dir = vdgx_config_get (config, "broker", "curve");
    cfg.trust_nets = vdgx_config_get (config, "broker", "trust_net");
    for (size_t i = 0; i < vdgx_config_model_count (config) && i < 256; i++) {
        //  The precisions its configured workers may run, for refusal at submit.
        const vdgx_model_conf_t *mc = vdgx_config_model (config, i);
        char list [64] = "";
        size_t len = 0;
        for (size_t p = 0; p < mc->nprecisions; p++)
            len += (size_t) snprintf (list + len, sizeof list - len, "%s%s", p? ",": "",
                                      mc->precisions [p]);
        owned [i] = strdup (list);
        precisions [nmodels] = *list? owned [i]: NULL;
        models [nmodels++] = mc->name;
    }

    //  Pass 2: command-line flags win.
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        const char *val = i + 1 < argc? argv [i + 1]: NULL;
        long long v;
        bool takes = true;
        if (streq (arg, "-h") || streq (arg, "--help")) {
            s_usage (stdout);
            rc = 0;
            goto done;
        }
        else
        if (streq (arg, "-v") || streq (arg, "--verbose")) {
            cfg.verbose = true;
            vdgx_log_set_level (VDGX_LOG_DEBUG);
            takes = false;
        }
        else
        if (streq (arg, "--insecure")) {
            cfg.insecure = true;
            takes = false;
        }
        else
        if (streq (arg, "--salvage")) {
            cfg.salvage = true;
            takes = false;
        }
        else
        if (!val) {
            fprintf (stderr, "vdgx-broker: unknown option or missing value: %s\n", arg);
            s_usage (stderr);
            goto done;
        }
        else
        if (streq (arg, "--config"))
            ;
        else
        if (streq (arg, "--bind"))
            cfg.endpoint = val;
        else
        if (streq (arg, "--events"))
            cfg.events = val;
        else
        if (streq (arg, "--data"))
            cfg.data_dir = val;
        else
        if (streq (arg, "--curve"))
            cfg.curve_dir = val;
        else
        if (streq (arg, "--trust-net"))
            cfg.trust_nets = val;
        else
        if (streq (arg, "--model"))
            models [nmodels++] = val;
        else
        if (streq (arg, "--heartbeat-ms")) {
            if (s_parse_int (arg, val, 10, 600000, &v))
                goto done;
            cfg.heartbeat_ms = (int) v;
        }
        else
        if (streq (arg, "--liveness")) {
            if (s_parse_int (arg, val, 1, 100, &v))
                goto done;
            cfg.liveness = (int) v;
        }
        else
        if (streq (arg, "--max-attempts")) {
            if (s_parse_int (arg, val, 1, 100, &v))
                goto done;
            cfg.max_attempts = (int) v;
        }
        else
        if (streq (arg, "--queue-max")) {
            if (s_parse_int (arg, val, 1, 1000000, &v))
                goto done;
            cfg.queue_max = (size_t) v;
        }
        else
        if (streq (arg, "--expire-s")) {
            if (s_parse_int (arg, val, 1, 2592000, &v))
                goto done;
            cfg.expire_s = (int) v;
        }
        else
        if (streq (arg, "--retain-hours")) {
            char *end = NULL;
            double h = strtod (val, &end);
            if (!end || *end || end == val || !(h >= 0 && h <= 1e6)) {
                fprintf (stderr, "vdgx-broker: --retain-hours: expected hours >= 0, got '%s'\n", val);
                goto done;
            }
            cfg.retain_hours = h;
        }
        else
        if (streq (arg, "--retain-bytes")) {
            if (s_parse_size (arg, val, &cfg.retain_bytes))
                goto done;
        }
        else
        if (streq (arg, "--peer-rate")) {
            if (s_parse_size (arg, val, &cfg.peer_rate))
                goto done;
        }
        else
        if (streq (arg, "--peer-burst")) {
            if (s_parse_size (arg, val, &cfg.peer_burst))
                goto done;
        }
        else
        if (streq (arg, "--owner-queued-max")) {
            if (s_parse_size (arg, val, &cfg.owner_queued_max))
                goto done;
        }
        else {
            fprintf (stderr, "vdgx-broker: unknown option: %s\n", arg);
            s_usage (stderr);
            goto done;
        }
        if (takes)
            i++;
    }
    cfg.models = models;
    cfg.model_precisions = precisions;
    cfg.nmodels = nmodels;

    char error [512];
    if (vdgx_broker_config_check (&cfg, error, sizeof error)) {
        fprintf (stderr, "vdgx-broker: %s\n", error);
        goto done;
    }
    //  One file descriptor per TCP peer: thousands of workers and clients need more than
    //  the usual soft limit of 1024, so take what the hard limit allows.
    struct rlimit nofile;
    if (getrlimit (RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit (RLIMIT_NOFILE, &nofile);
    }
    zsys_init ();           //  installs the SIGINT/SIGTERM handler
    vdgx_broker_t *broker = vdgx_broker_new (&cfg, error, sizeof error);
    if (!broker) {
        fprintf (stderr, "vdgx-broker: %s\n", error);
        goto done;
    }
    //  SIGINT/SIGTERM set zsys_interrupted; the actor itself never sees signals.
    zpoller_t *poller = zpoller_new (vdgx_broker_sock (broker), NULL);
    rc = 0;
    while (!zsys_interrupted) {
        void *which = zpoller_wait (poller, 100);
        if (which) {
            vdgx_log_error ("broker.died", "reason=\"actor ended\"");
            rc = 1;
            break;
        }
    }
    zpoller_destroy (&poller);
    vdgx_broker_destroy (&broker);
    goto done;
config_error:
    fprintf (stderr, "vdgx-broker: %s\n", vdgx_config_error (config));
done:
    free (models);
    free (precisions);
    for (size_t i = 0; i < 256; i++)
        free (owned [i]);
    free (owned);
    vdgx_config_destroy (&config);
    return rc;
}
