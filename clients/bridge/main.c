/*  vdgx-bridge: the REST bridge. Options override [bridge]/[broker] of the config file, which
    override the environment's VDGX_BROKER / VDGX_EVENTS / VDGX_HTTP and the defaults. */
#include "vdgx_apikeys.h"
#include "vdgx_bridge.h"
#include "vdgx_config.h"
#include "vdgx_log.h"
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: vdgx-bridge [options]\n"
        "       vdgx-bridge --hash-key KEY [NAME]   print a keys-file line for KEY\n"
        "  --listen HOST:PORT       where to serve HTTP (default 127.0.0.1:8000; VDGX_HTTP)\n"
        "  --broker ENDPOINT        broker (VDGX_BROKER, default tcp://127.0.0.1:5555)\n"
        "  --events ENDPOINT        broker events (VDGX_EVENTS, default tcp://127.0.0.1:5556)\n"
        "  --config FILE            vdgx.ini ([broker] endpoint/events, [bridge] http, keys, rate, ...)\n"
        "  --keys FILE              API keys (sha256 hex [name] per line); required off loopback\n"
        "  --webhook-secret-file F  signs webhook deliveries (HMAC-SHA256) with the secret in F\n"
        "                           (or VDGX_WEBHOOK_SECRET); without one, webhooks are refused\n"
        "  --webhook-allow CIDRS    networks webhooks may reach besides public addresses\n"
        "                           (e.g. 127.0.0.0/8,10.1.0.0/16; default none)\n"
        "  --make-key               when the keys file is missing or holds no key, make one:\n"
        "                           its hash goes into the file, the key is printed once\n"
        "  --rate R --burst B       requests/s per key (or per IP without keys); 0 = no limit\n"
        "  --default-model NAME     model for requests that name none\n"
        "  --threads N              HTTP threads (default 0 = auto: the CPUs, 1 to 8)\n"
        "  --decode-limit N         uploaded images decoded at once (default 0 = half of --threads,\n"
        "                           a quarter of the CPUs without it; at least 1); an upload\n"
        "                           that gets no slot is answered 503\n"
        "  --decode-wait-ms N       how long an upload waits for a decode slot (default 250)\n"
        "  --conn-limit N           open connections (default 1024)\n"
        "  --per-ip-limit N         open connections per address (default 64, 0 = none)\n"
        "  --timeout-s N            idle connection timeout (default 30)\n"
        "  --body-max BYTES         request body cap (default 65536)\n"
        "  --submit-body-max BYTES  body cap of POST /generate and /v1/videos, which may carry\n"
        "                           images (default 12582912)\n"
        "  --request-timeout-ms N   broker deadline per request (default 5000)\n"
        "  --sse-max-s N            longest event stream (default 3600)\n"
        "  --chunk-bytes N          download chunk per broker read (default 1048576)\n"
        "  --cache-ms N             serve final job statuses from memory this long (default 1000, 0 = off)\n"
        "  --curve-server-key FILE  CURVE to the broker: its public certificate (DIR/broker.key)\n"
        "  --curve-cert FILE        CURVE: this bridge's certificate (role admin in the broker's allowed/)\n"
        "  --header-timeout-ms N    a request's headers must arrive within N ms (default 10000)\n"
        "  --min-body-rate N        bytes/s a body must keep up after that (default 1024, 0 = none)\n"
        "  -v, --verbose            debug logging\n");
}

static void
s_hard_stop (int sig)
{
    (void) sig;
    static const char text [] = "vdgx-bridge: stop took over a second, leaving\n";
    if (write (2, text, sizeof text - 1) < 0)
        _exit (1);
    _exit (0);
}

static int
s_num (const char *opt, const char *text, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = text? strtod (text, &end): 0;
    if (!text || !*text || *end || errno || !(v >= min && v <= max)) {
        fprintf (stderr, "vdgx-bridge: %s must be a number from %g to %g\n", opt, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

//  --make-key: a keys file with no key gets one (a fresh deployment, e.g. docker compose),
//  instead of a bridge that exits and is restarted for ever. The key is printed once, on
//  stdout (docker compose logs bridge); only its hash is stored. 0, or -1 with a message.
static int
s_make_key (const char *path)
{
    vdgx_apikeys_t *keys = vdgx_apikeys_new ();
    bool have = access (path, F_OK) == 0 && vdgx_apikeys_load (keys, path) == 0
             && vdgx_apikeys_count (keys) > 0;
    bool unreadable = access (path, F_OK) == 0 && *vdgx_apikeys_error (keys);
    vdgx_apikeys_destroy (&keys);
    if (have)
        return 0;
    if (unreadable)
        return 0;               //  the bridge reports the bad line itself
    uint8_t raw [24];
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && read (fd, raw, sizeof raw) == (ssize_t) sizeof raw;
    if (fd >= 0)
        close (fd);
    if (!ok) {
        fprintf (stderr, "vdgx-bridge: --make-key: no random source\n");
        return -1;
    }
    char key [8 + 2 * sizeof raw + 1];
    int n = snprintf (key, sizeof key, "vdgx-");
    for (size_t i = 0; i < sizeof raw; i++)
        n += snprintf (key + n, sizeof key - (size_t) n, "%02x", raw [i]);
    char *line = vdgx_apikeys_hash_line (key, "made-by-make-key");
    fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    FILE *f = fd >= 0? fdopen (fd, "a"): NULL;
    //  The deployment's first key is the operator's: admin (docs/SECURITY.md).
    ok = f && fprintf (f, "%s role=admin\n", line) > 0;
    if (f)
        ok = fclose (f) == 0 && ok;
    else
    if (fd >= 0)
        close (fd);
    free (line);
    if (!ok) {
        fprintf (stderr, "vdgx-bridge: --make-key: cannot write %s: %s\n", path, strerror (errno));
        return -1;
    }
    printf ("vdgx-bridge: %s held no API key, so one (an admin key) was made. It is shown only\n"
            "now; clients send it as 'Authorization: Bearer KEY'. More keys (users by default, add\n"
            "role=admin for operators): vdgx-bridge --hash-key KEY NAME >> %s\n"
            "api_key=%s\n", path, path, key);
    fflush (stdout);
    return 0;
}

int
main (int argc, char **argv)
{
    vdgx_log_init ("bridge");
    if (argc >= 3 && strcmp (argv [1], "--hash-key") == 0) {
        char *line = vdgx_apikeys_hash_line (argv [2], argc > 3? argv [3]: NULL);
        printf ("%s\n", line);
        free (line);
        return 0;
    }
    vdgx_bridge_cfg_t cfg;
    vdgx_bridge_cfg_init (&cfg);
    vdgx_config_t *config = vdgx_config_new ();
    const char *config_file = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp (argv [i], "--config") == 0)
            config_file = argv [i + 1];
    if ((config_file && vdgx_config_load (config, config_file)) || vdgx_config_apply_env (config)) {
        fprintf (stderr, "vdgx-bridge: %s\n", vdgx_config_error (config));
        vdgx_config_destroy (&config);
        return 2;
    }
    cfg.listen = vdgx_config_http (config);
    cfg.broker = vdgx_config_broker_endpoint (config);
    cfg.events = vdgx_config_events_endpoint (config);
    cfg.keys_file = vdgx_config_get (config, "bridge", "keys");
    cfg.default_model = vdgx_config_get (config, "bridge", "default_model");
    cfg.curve_server_key = vdgx_config_get (config, "bridge", "curve_server_key");
    cfg.curve_cert = vdgx_config_get (config, "bridge", "curve_cert");
    double rate = 0, burst = 0;
    int64_t threads = cfg.threads, decode_limit = cfg.decode_limit, decode_wait = cfg.decode_wait_ms;
    if (vdgx_config_get_double (config, "bridge", "rate", 0, 0, 1e6, &rate)
    ||  vdgx_config_get_double (config, "bridge", "burst", 0, 0, 1e6, &burst)
    ||  vdgx_config_get_int (config, "bridge", "threads", cfg.threads, 0, 256, &threads)
    ||  vdgx_config_get_int (config, "bridge", "decode_limit", decode_limit, 0, 1024, &decode_limit)
    ||  vdgx_config_get_int (config, "bridge", "decode_wait_ms", decode_wait, 0, 60000, &decode_wait)) {
        fprintf (stderr, "vdgx-bridge: %s\n", vdgx_config_error (config));
        vdgx_config_destroy (&config);
        return 2;
    }
    cfg.rate = rate;
    cfg.burst = burst;
    cfg.threads = (int) threads;
    cfg.decode_limit = (unsigned) decode_limit;
    cfg.decode_wait_ms = (int) decode_wait;
    int rc = 0;
    bool make_key = false;
    const char *secret_file = vdgx_config_get (config, "bridge", "webhook_secret_file");
    cfg.webhook_allow = vdgx_config_get (config, "bridge", "webhook_allow");
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *arg = argv [i];
        const char *val = i + 1 < argc? argv [i + 1]: NULL;
        double v = 0;
        if (strcmp (arg, "-h") == 0 || strcmp (arg, "--help") == 0) {
            s_usage (stdout);
            vdgx_config_destroy (&config);
            return 0;
        }
        if (strcmp (arg, "-v") == 0 || strcmp (arg, "--verbose") == 0) {
            vdgx_log_set_level (VDGX_LOG_DEBUG);
            continue;
        }
        if (strcmp (arg, "--make-key") == 0) {
            make_key = true;
            continue;
        }
        bool takes = true;
        if (!val && strncmp (arg, "--", 2) == 0) {
            fprintf (stderr, "vdgx-bridge: %s needs a value\n", arg);
            rc = 2;
            break;
        }
        if (strcmp (arg, "--config") == 0) ;
        else if (strcmp (arg, "--listen") == 0) cfg.listen = val;
        else if (strcmp (arg, "--broker") == 0) cfg.broker = val;
        else if (strcmp (arg, "--events") == 0) cfg.events = val;
        else if (strcmp (arg, "--keys") == 0) cfg.keys_file = val;
        else if (strcmp (arg, "--default-model") == 0) cfg.default_model = val;
        else if (strcmp (arg, "--webhook-secret-file") == 0) secret_file = val;
        else if (strcmp (arg, "--webhook-allow") == 0) cfg.webhook_allow = val;
        else if (strcmp (arg, "--rate") == 0) rc = s_num (arg, val, 0, 1e6, &cfg.rate);
        else if (strcmp (arg, "--burst") == 0) rc = s_num (arg, val, 1, 1e6, &cfg.burst);
        else if (strcmp (arg, "--threads") == 0) { rc = s_num (arg, val, 0, 256, &v); cfg.threads = (int) v; }
        else if (strcmp (arg, "--decode-limit") == 0) { rc = s_num (arg, val, 0, 1024, &v); cfg.decode_limit = (unsigned) v; }
        else if (strcmp (arg, "--decode-wait-ms") == 0) { rc = s_num (arg, val, 0, 60000, &v); cfg.decode_wait_ms = (int) v; }
        else if (strcmp (arg, "--conn-limit") == 0) { rc = s_num (arg, val, 1, 1e6, &v); cfg.conn_limit = (unsigned) v; }
        else if (strcmp (arg, "--per-ip-limit") == 0) { rc = s_num (arg, val, 0, 1e6, &v); cfg.per_ip_limit = (unsigned) v; }
        else if (strcmp (arg, "--timeout-s") == 0) { rc = s_num (arg, val, 1, 86400, &v); cfg.conn_timeout_s = (unsigned) v; }
        else if (strcmp (arg, "--body-max") == 0) { rc = s_num (arg, val, 1024, 1 << 30, &v); cfg.body_max = (size_t) v; }
        else if (strcmp (arg, "--submit-body-max") == 0) { rc = s_num (arg, val, 1024, 1 << 30, &v); cfg.submit_body_max = (size_t) v; }
        else if (strcmp (arg, "--request-timeout-ms") == 0) { rc = s_num (arg, val, 10, 600000, &v); cfg.request_timeout_ms = (int) v; }
        else if (strcmp (arg, "--sse-max-s") == 0) { rc = s_num (arg, val, 1, 86400, &v); cfg.sse_max_s = (int) v; }
        else if (strcmp (arg, "--cache-ms") == 0) { rc = s_num (arg, val, 0, 3600000, &v); cfg.cache_ms = (int) v; }
        else if (strcmp (arg, "--curve-server-key") == 0) cfg.curve_server_key = val;
        else if (strcmp (arg, "--curve-cert") == 0) cfg.curve_cert = val;
        else if (strcmp (arg, "--header-timeout-ms") == 0) { rc = s_num (arg, val, 100, 3600000, &v); cfg.header_timeout_ms = (int) v; }
        else if (strcmp (arg, "--min-body-rate") == 0) { rc = s_num (arg, val, 0, 1e9, &v); cfg.min_body_rate = (size_t) v; }
        else if (strcmp (arg, "--chunk-bytes") == 0) { rc = s_num (arg, val, 1024, 4194304, &v); cfg.chunk_bytes = (uint32_t) v; }
        else {
            fprintf (stderr, "vdgx-bridge: unknown option '%s' (see --help)\n", arg);
            rc = 2;
            takes = false;
        }
        if (rc)
            rc = 2;
        if (takes)
            i++;
    }
    if (rc == 0 && cfg.rate > 0 && cfg.burst < 1)
        cfg.burst = cfg.rate < 1? 1: cfg.rate;      //  default burst: one second's worth
    if (rc) {
        vdgx_config_destroy (&config);
        return rc;
    }
    //  The webhook secret: from a file (not the command line, where ps shows it) or the
    //  environment.
    char secret [512] = "";
    if (secret_file) {
        FILE *f = fopen (secret_file, "r");
        if (!f || !fgets (secret, sizeof secret, f)) {
            fprintf (stderr, "vdgx-bridge: --webhook-secret-file: cannot read %s\n", secret_file);
            if (f)
                fclose (f);
            vdgx_config_destroy (&config);
            return 2;
        }
        fclose (f);
        secret [strcspn (secret, "\r\n")] = 0;
    }
    else
    if (getenv ("VDGX_WEBHOOK_SECRET"))
        snprintf (secret, sizeof secret, "%s", getenv ("VDGX_WEBHOOK_SECRET"));
    cfg.webhook_secret = *secret? secret: NULL;
    if (make_key && !cfg.keys_file) {
        fprintf (stderr, "vdgx-bridge: --make-key needs --keys FILE (where the key's hash goes)\n");
        vdgx_config_destroy (&config);
        return 2;
    }
    if (make_key && s_make_key (cfg.keys_file)) {
        vdgx_config_destroy (&config);
        return 1;
    }
    //  Three descriptors per HTTP connection (the client's socket and the socketpair to
    //  libmicrohttpd): --conn-limit 1024 needs more than the usual soft limit of 1024.
    struct rlimit nofile;
    if (getrlimit (RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit (RLIMIT_NOFILE, &nofile);
    }
    char err [512];
    vdgx_bridge_t *bridge = vdgx_bridge_new (&cfg, err, sizeof err);
    if (!bridge) {
        fprintf (stderr, "vdgx-bridge: %s\n", err);
        vdgx_config_destroy (&config);
        return 1;
    }
    while (!zsys_interrupted)
        zclock_sleep (50);
    //  SIGTERM ends the process within a second, whatever is in flight: the orderly stop
    //  answers waiting requests 503; if it cannot finish in time, the process leaves anyway.
    signal (SIGALRM, s_hard_stop);
    alarm (1);
    vdgx_log_info ("bridge.stop", NULL);
    vdgx_bridge_destroy (&bridge);
    vdgx_config_destroy (&config);
    return 0;
}
