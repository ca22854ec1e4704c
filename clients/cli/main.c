/*  vdgx - the VideosDGX command line: jobs, introspection, health, benchmark, and
    `vdgx up` / `vdgx down` (the embedded one-command stack).

    Global options may appear anywhere before a "--": they are taken out of argv first, then
    the command parses what is left with getopt_long.
*/
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vdgx_cli.h"
#include "vdgx_config.h"
#include "vdgx_download.h"
#include "vdgx_log.h"

volatile int vdgx_cli_interrupted = 0;

static void
s_usage (FILE *out)
{
    fprintf (out,
"usage: vdgx [global options] COMMAND [args]\n"
"\n"
"Jobs:\n"
"  generate \"PROMPT\" --model M [-o out.mp4] [--size WxH] [--frames N | --seconds S]\n"
"           [--fps N] [--steps N] [--guidance G] [--shift S] [--sampler unipc|dpm++|euler]\n"
"           [--seed S] [--negative TEXT] [--precision fp32|bf16|fp8|fp4]\n"
"           [--priority high|normal|low] [--no-cache] [--detach] [--max-wait S] [--stream]\n"
"           [--image FILE [--last-image FILE]]\n"
"                        submit, follow the progress, download the MP4 (default ID.mp4);\n"
"                        --detach prints the job id and returns at once; --image: the first\n"
"                        frame (PNG, JPEG or WebP) for an image-to-video model; --stream\n"
"                        writes the file as its chunks are ready (MAGI-1)\n"
"  wait ID [-o FILE] [--max-wait S]   follow a job to its end (and download it with -o)\n"
"  status ID [--json]    one job's status\n"
"  list [--state S] [--model M] [--limit N] [--after ID] [--oldest-first] [--json]   newest first\n"
"  cancel ID | delete ID | download ID -o FILE\n"
"Models and workers:\n"
"  workers [--model M] [--json]   models [--json]   unload MODEL\n"
"  drain [--model M] [--host H]   those workers finish their job, take no other, exit\n"
"  reset-limits MODEL    forget the limits stored for MODEL (its workers advertise again)\n"
"  models download NAME [--dir DIR] ...   models sources   (fetch weights from a hub)\n"
"  health [--json] [--require MODEL]...   broker, store, queues and workers per model\n"
"  bench [-n N] [-c C] [--model M]... [--json] [generate options]\n"
"                        N jobs at concurrency C: latency p50/p90/p99, throughput,\n"
"                        time to first progress, model load times\n"
"Stack:\n"
"  up [--config FILE] [--data DIR] [--detach]   start broker, bridge and workers\n"
"  down [--data DIR] [--grace S]                 stop what `vdgx up` started\n"
"  logs [--data DIR] [-n N] [--no-follow]        the stack's logs (DATA/logs/*.log)\n"
"  backup [--data DIR] FILE                      online copy of the job store (restore:\n"
"                        stop the broker, copy FILE to DATA/jobs.db, start it)\n"
"\n"
"Global options: --broker EP (VDGX_BROKER, default %s)\n"
"  --events EP (VDGX_EVENTS, default %s)  --timeout S (broker reply, default 5)\n"
"  --config FILE  --curve-server-key FILE --curve-cert FILE (VDGX_CURVE_SERVER_KEY,\n"
"  VDGX_CURVE_CERT: the broker's public cert and our secret cert)\n"
"\n"
"Exit status: 0 ok; 1 job failed, cancelled or expired (up: could not start);\n"
"  2 usage or invalid request; 3 broker unreachable or no reply in time; 4 no such job\n"
"  or model; 5 refused by the broker (queue full, conflict, ...); 6 unhealthy (health);\n"
"  7 local file error or checksum mismatch; 130 interrupted.\n",
        VDGX_DEFAULT_BROKER, VDGX_DEFAULT_EVENTS);
}

static void
s_on_signal (int sig)
{
    (void) sig;
    vdgx_cli_interrupted = 1;
}

void
vdgx_cli_catch_signals (void)
{
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
}

int
vdgx_cli_parse_uint (const char *cmd, const char *opt, const char *text, unsigned long lo,
                     unsigned long hi, unsigned long *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = text && *text != '-'? strtoull (text, &end, 10): 0;
    if (!text || *text == '-' || errno || end == text || *end || v < lo || v > hi) {
        fprintf (stderr, "vdgx %s: %s: expected an integer in %lu..%lu, got '%s'\n",
                 cmd, opt, lo, hi, text? text: "");
        return -1;
    }
    *value = (unsigned long) v;
    return 0;
}

int
vdgx_cli_parse_double (const char *cmd, const char *opt, const char *text, double lo,
                       double hi, double *value)
{
    char *end = NULL;
    errno = 0;
    double v = text? strtod (text, &end): 0;
    if (!text || errno || end == text || *end || v != v || v < lo || v > hi) {
        fprintf (stderr, "vdgx %s: %s: expected a number in [%g, %g], got '%s'\n",
                 cmd, opt, lo, hi, text? text: "");
        return -1;
    }
    *value = v;
    return 0;
}

//  True when nothing can listen at the broker endpoint: a TCP connect is refused (or the
//  host or network is unreachable), or an ipc:// socket file is missing. Anything less
//  certain (a firewall that drops, a slow network) is left to the normal call and its
//  timeout. Costs one connect, at most 1 s.
bool
vdgx_cli_broker_absent (vdgx_cli_t *cli, char *why, size_t size)
{
    cli->probed = true;
    const char *endpoint = cli->broker;
    if (!endpoint)
        return false;
    if (strncmp (endpoint, "ipc://", 6) == 0) {
        struct stat sb;
        if (stat (endpoint + 6, &sb) && errno == ENOENT) {
            snprintf (why, size, "no socket file %s", endpoint + 6);
            return true;
        }
        return false;
    }
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    char host [256];
    snprintf (host, sizeof host, "%s", endpoint + 6);
    char *colon = strrchr (host, ':');
    if (!colon)
        return false;
    *colon = 0;
    const char *port = colon + 1;
    char *h = host;
    if (*h == '[') {                    //  [::1]:5555
        h++;
        char *end = strchr (h, ']');
        if (end)
            *end = 0;
    }
    if (streq (h, "*") || streq (h, "0.0.0.0"))
        h = (char *) "127.0.0.1";
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    if (getaddrinfo (h, port, &hints, &res) || !res)
        return false;
    //  Refused for a whole second: a broker that is (re)starting has bound by then.
    bool absent = false;
    for (int attempt = 0; attempt < 6; attempt++) {
        if (attempt)
            zclock_sleep (200);
        int fd = socket (res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            break;
        int rc = connect (fd, res->ai_addr, res->ai_addrlen);
        int err = rc == 0? 0: errno;
        if (err == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            err = poll (&p, 1, 1000) == 1? 0: ETIMEDOUT;
            socklen_t len = sizeof err;
            if (err == 0 && getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len))
                err = 0;
        }
        close (fd);
        absent = err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH;
        if (absent)
            snprintf (why, size, "%s", strerror (err));
        else
            break;
    }
    freeaddrinfo (res);
    return absent;
}

vdgx_client_t *
vdgx_cli_client (vdgx_cli_t *cli)
{
    char why [128];
    if (!cli->probed && vdgx_cli_broker_absent (cli, why, sizeof why)) {
        //  Said at once, not after the reply timeouts.
        fprintf (stderr, "vdgx: no broker at %s (%s).\n"
                 "Start the stack with `vdgx up` (or `make up`), or name a running broker with\n"
                 "--broker ENDPOINT / VDGX_BROKER.\n", cli->broker, why);
        exit (VDGX_EXIT_UNREACHABLE);
    }
    vdgx_client_t *client = vdgx_client_new (cli->broker, cli->events);
    if (!client) {
        fprintf (stderr, "vdgx: bad endpoint (broker '%s', events '%s')\n",
                 cli->broker? cli->broker: "", cli->events? cli->events: "");
        return NULL;
    }
    vdgx_client_set_timeout (client, cli->timeout_ms);
    //  One retry: a lost reply is survived, a dead broker is reported within 2 timeouts.
    vdgx_client_set_retries (client, 1);
    if (cli->curve_server_key || cli->curve_cert) {
        if (!cli->curve_server_key || !cli->curve_cert) {
            fprintf (stderr, "vdgx: --curve-server-key and --curve-cert go together\n");
            vdgx_client_destroy (&client);
            return NULL;
        }
        if (vdgx_client_set_curve (client, cli->curve_server_key, cli->curve_cert)) {
            fprintf (stderr, "vdgx: cannot read the CURVE certificates: %s\n",
                     vdgx_client_error (client));
            vdgx_client_destroy (&client);
            return NULL;
        }
    }
    return client;
}

int
vdgx_cli_fail (vdgx_client_t *client, const char *what)
{
    const char *code = vdgx_client_error_code (client);
    const char *msg = vdgx_client_error (client);
    if (streq (code, "timeout"))
        fprintf (stderr, "vdgx %s: broker unreachable: %s\n(is it running? `vdgx up` starts the"
                 " stack; --broker / VDGX_BROKER name another)\n", what, msg);
    else
        fprintf (stderr, "vdgx %s: %s: %s\n", what, code, msg);
    if (streq (code, "timeout"))
        return VDGX_EXIT_UNREACHABLE;
    if (streq (code, "not_found") || streq (code, "unknown_model"))
        return VDGX_EXIT_NOT_FOUND;
    if (streq (code, "io") || streq (code, "integrity"))
        return VDGX_EXIT_IO;
    if (streq (code, "bad_request"))
        return VDGX_EXIT_USAGE;
    return VDGX_EXIT_REFUSED;
}

typedef int (s_command_fn) (vdgx_cli_t *cli, int argc, char **argv);
static const struct { const char *name; s_command_fn *fn; } s_commands [] = {
    { "generate", vdgx_cli_generate }, { "wait", vdgx_cli_wait },
    { "status", vdgx_cli_status }, { "list", vdgx_cli_list }, { "cancel", vdgx_cli_cancel },
    { "delete", vdgx_cli_delete }, { "download", vdgx_cli_download },
    { "workers", vdgx_cli_workers }, { "models", vdgx_cli_models },
    { "unload", vdgx_cli_unload }, { "drain", vdgx_cli_drain }, { "reset-limits", vdgx_cli_reset_limits }, { "health", vdgx_cli_health }, { "bench", vdgx_cli_bench },
    { "up", vdgx_cli_up }, { "down", vdgx_cli_down }, { "backup", vdgx_cli_backup },
    { "logs", vdgx_cli_logs },
};

int
main (int argc, char **argv)
{
    //  CZMQ's own SIGINT handler would make blocking calls retry forever; ours sets a flag.
    zsys_handler_set (NULL);
    vdgx_cli_catch_signals ();
    vdgx_log_set_level (VDGX_LOG_WARN);

    vdgx_cli_t cli = { .timeout_ms = 5000, .self_path = argv [0] };
    const char *flag_broker = NULL, *flag_events = NULL;
    cli.curve_server_key = getenv ("VDGX_CURVE_SERVER_KEY");
    cli.curve_cert = getenv ("VDGX_CURVE_CERT");
    if (cli.curve_server_key && !*cli.curve_server_key)
        cli.curve_server_key = NULL;
    if (cli.curve_cert && !*cli.curve_cert)
        cli.curve_cert = NULL;

    //  Take the global options out of argv (up to a "--").
    int n = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        if (streq (a, "--")) {
            while (i < argc)
                argv [n++] = argv [i++];
            break;
        }
        const char **slot = NULL;
        const char *name = a;
        const char *value = NULL;
        char key [32];
        const char *eq = strchr (a, '=');
        if (strncmp (a, "--", 2) == 0 && eq && (size_t) (eq - a) < sizeof key) {
            memcpy (key, a, eq - a);
            key [eq - a] = 0;
            name = key;
            value = eq + 1;
        }
        if (streq (name, "--broker")) slot = &flag_broker;
        else if (streq (name, "--events")) slot = &flag_events;
        else if (streq (name, "--config")) slot = &cli.config_path;
        else if (streq (name, "--curve-server-key")) slot = &cli.curve_server_key;
        else if (streq (name, "--curve-cert")) slot = &cli.curve_cert;
        else if (streq (name, "--timeout")) {
            if (!value) {
                if (i + 1 >= argc) {
                    fprintf (stderr, "vdgx: --timeout needs seconds\n");
                    return VDGX_EXIT_USAGE;
                }
                value = argv [++i];
            }
            double s;
            if (vdgx_cli_parse_double ("", "--timeout", value, 0.05, 86400, &s))
                return VDGX_EXIT_USAGE;
            cli.timeout_ms = (int) (s * 1000);
            continue;
        }
        else if (streq (a, "-h") || streq (a, "--help")) {
            if (n == 1) {               //  vdgx --help; `vdgx CMD --help` goes to CMD
                s_usage (stdout);
                return 0;
            }
        }
        if (slot) {
            if (!value) {
                if (i + 1 >= argc || !*argv [i + 1]) {
                    fprintf (stderr, "vdgx: %s needs a value\n", name);
                    return VDGX_EXIT_USAGE;
                }
                value = argv [++i];
            }
            *slot = value;
            continue;
        }
        argv [n++] = argv [i];
    }
    argc = n;
    argv [argc] = NULL;
    if (argc < 2) {
        s_usage (stderr);
        return VDGX_EXIT_USAGE;
    }

    //  Endpoints: flags > environment > config file > defaults.
    vdgx_config_t *config = vdgx_config_new ();
    if (!config) {
        fprintf (stderr, "vdgx: out of memory\n");
        return VDGX_EXIT_IO;
    }
    if ((cli.config_path && vdgx_config_load (config, cli.config_path))
    ||  vdgx_config_apply_env (config)) {
        fprintf (stderr, "vdgx: %s\n", vdgx_config_error (config));
        vdgx_config_destroy (&config);
        return VDGX_EXIT_USAGE;
    }
    char *broker = strdup (flag_broker? flag_broker: vdgx_config_broker_endpoint (config));
    char *events = strdup (flag_events? flag_events: vdgx_config_events_endpoint (config));
    vdgx_config_destroy (&config);
    cli.broker = broker;
    cli.events = events;
    cli.color = isatty (STDOUT_FILENO) && !getenv ("NO_COLOR");

    int rc = -1;
    const char *cmd = argv [1];
    if (streq (cmd, "models") && argc > 2
    &&  (streq (argv [2], "download") || streq (argv [2], "sources")))
        rc = vdgx_models_download_main (argc - 2, argv + 2);
    else
    if (streq (cmd, "help")) {
        s_usage (stdout);
        rc = 0;
    }
    else {
        for (size_t i = 0; i < sizeof s_commands / sizeof s_commands [0]; i++)
            if (streq (cmd, s_commands [i].name))
                rc = s_commands [i].fn (&cli, argc - 1, argv + 1);
        if (rc < 0) {
            fprintf (stderr, "vdgx: unknown command '%s' (try vdgx --help)\n", cmd);
            rc = VDGX_EXIT_USAGE;
        }
    }
    free (broker);
    free (events);
    return rc;
}
