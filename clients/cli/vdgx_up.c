/*  vdgx_up.c - `vdgx up` (broker, bridge and workers as supervised children) and
    `vdgx down` (stops what up started, through DATA/vdgx-up.pid).

    The pid file: line 1 is the supervisor's pid (what `down` signals); the lines after it
    are "NAME PID" for each running child, rewritten when one restarts, so `down` can still
    kill them if the supervisor itself is stuck.

    Models: the config's [models] (+ [worker.NAME]: workers, precision, device, and the
    vdgx-up extension `binary = PATH` to run another worker executable, e.g. a test build).
    With no [models], real weights found in DATA/models/wan21-1.3b or DATA/models/wan21-14b
    are served; else the tiny demo model wan21-tiny, whose checkpoint DATA/models/wan21-tiny is
    made first with `vdgx-worker --make-tiny-checkpoint DIR` when missing.
*/
#include <czmq.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "vdgx_cli.h"
#include "vdgx_config.h"
#include "vdgx_supervisor.h"

#define S_MAX_MODELS 32

typedef struct {
    char name [80];
    char weights [PATH_MAX];
    char binary [PATH_MAX];
    char precision [16];
    char device [32];
    int workers;
} s_model_t;

static int
s_mkdirs (const char *path)
{
    char buf [PATH_MAX];
    snprintf (buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (buf, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir (buf, 0755) && errno != EEXIST? -1: 0;
}

static bool
s_is_dir (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

static bool
s_is_exec (const char *path)
{
    return access (path, X_OK) == 0 && !s_is_dir (path);
}

//  The folder holding this executable (sibling binaries live there).
static void
s_bin_dir (vdgx_cli_t *cli, char *buf, size_t size)
{
    char exe [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        n = snprintf (exe, sizeof exe, "%s", cli->self_path);
    exe [n] = 0;
    char *slash = strrchr (exe, '/');
    if (slash)
        *slash = 0;
    else
        snprintf (exe, sizeof exe, ".");
    snprintf (buf, size, "%s", exe);
}

static int s_data_dir (vdgx_cli_t *cli, const char *flag, char *buf, size_t size,
                       vdgx_config_t **config_p);

int
vdgx_cli_data_dir (vdgx_cli_t *cli, const char *flag, char *buf, size_t size)
{
    return s_data_dir (cli, flag, buf, size, NULL);
}

//  The data directory: --data > config general.data_dir (VDGX_DATA_DIR) > ./var; absolute.
static int
s_data_dir (vdgx_cli_t *cli, const char *flag, char *buf, size_t size, vdgx_config_t **config_p)
{
    vdgx_config_t *config = vdgx_config_new ();
    if ((cli->config_path && vdgx_config_load (config, cli->config_path))
    ||  vdgx_config_apply_env (config)) {
        fprintf (stderr, "vdgx: %s\n", vdgx_config_error (config));
        vdgx_config_destroy (&config);
        return -1;
    }
    const char *dir = flag? flag: vdgx_config_data_dir (config);
    if (*dir == '/')
        snprintf (buf, size, "%s", dir);
    else {
        char cwd [PATH_MAX];
        if (!getcwd (cwd, sizeof cwd)) {
            vdgx_config_destroy (&config);
            return -1;
        }
        snprintf (buf, size, "%s/%s", cwd, strncmp (dir, "./", 2) == 0? dir + 2: dir);
    }
    size_t len = strlen (buf);
    while (len > 1 && buf [len - 1] == '/')
        buf [--len] = 0;
    if (config_p)
        *config_p = config;
    else
        vdgx_config_destroy (&config);
    return 0;
}

//  pid of a live `vdgx up` from the pid file, 0 when none (a stale file is not an error).
static pid_t
s_read_pidfile (const char *path, pid_t *children, int *nchildren, int max)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    long pid = 0;
    if (fscanf (f, "%ld", &pid) != 1)
        pid = 0;
    int n = 0;
    char name [128];
    long cpid;
    while (children && n < max && fscanf (f, "%127s %ld", name, &cpid) == 2)
        if (cpid > 1)
            children [n++] = (pid_t) cpid;
    if (nchildren)
        *nchildren = n;
    fclose (f);
    return pid > 1? (pid_t) pid: 0;
}

static bool
s_alive (pid_t pid)
{
    if (pid <= 1)
        return false;
    if (kill (pid, 0) != 0 && errno != EPERM)
        return false;
    //  A zombie is not alive (it only waits for its parent).
    char path [64], state = 0;
    snprintf (path, sizeof path, "/proc/%ld/stat", (long) pid);
    FILE *f = fopen (path, "r");
    if (f) {
        if (fscanf (f, "%*d (%*[^)]) %c", &state) != 1)
            state = 0;
        fclose (f);
    }
    return state != 'Z';
}

static int
s_write_pidfile (const char *path, vdgx_supervisor_t *sup)
{
    char tmp [PATH_MAX + 8];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen (tmp, "w");
    if (!f)
        return -1;
    fprintf (f, "%ld\n", (long) getpid ());
    for (size_t i = 0; sup && i < vdgx_supervisor_size (sup); i++)
        if (vdgx_supervisor_pid (sup, i) > 0)
            fprintf (f, "%s %ld\n", vdgx_supervisor_name (sup, i), (long) vdgx_supervisor_pid (sup, i));
    bool ok = fclose (f) == 0;
    return ok && rename (tmp, path) == 0? 0: -1;
}

static bool
s_broker_up (const char *broker, const char *events, int timeout_ms)
{
    vdgx_client_t *client = vdgx_client_new (broker, events);
    if (!client)
        return false;
    vdgx_client_set_timeout (client, timeout_ms);
    vdgx_client_set_retries (client, 0);
    bool up = vdgx_client_health (client, NULL, NULL) == 0;
    vdgx_client_destroy (&client);
    return up;
}

static void
s_tail (const char *path, int lines)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return;
    char *all [64] = { 0 };
    char line [512];
    int n = 0;
    if (lines > 64)
        lines = 64;
    while (fgets (line, sizeof line, f)) {
        free (all [n % lines]);
        all [n % lines] = strdup (line);
        n++;
    }
    fclose (f);
    for (int i = n > lines? n - lines: 0; i < n; i++) {
        fprintf (stderr, "  | %s", all [i % lines]? all [i % lines]: "\n");
    }
    for (int i = 0; i < lines; i++)
        free (all [i]);
}

//  Runs `vdgx-worker --make-tiny-checkpoint DIR` (output to LOGS/make-tiny.log).
static int
s_make_tiny (const char *worker_bin, const char *dir, const char *log_dir)
{
    char log [PATH_MAX + 32];
    snprintf (log, sizeof log, "%s/make-tiny-checkpoint.log", log_dir);
    fprintf (stderr, "vdgx up: creating the tiny demo checkpoint in %s ...\n", dir);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *f = freopen (log, "w", stdout);
        if (f)
            dup2 (fileno (stdout), 2);
        execl (worker_bin, worker_bin, "--make-tiny-checkpoint", dir, (char *) NULL);
        fprintf (stderr, "cannot run %s: %s\n", worker_bin, strerror (errno));
        _exit (127);
    }
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0 && s_is_dir (dir))
        return 0;
    fprintf (stderr, "vdgx up: model wan21-tiny: `%s --make-tiny-checkpoint %s` failed "
                     "(exit %d); this worker build may not support it yet. Its output (%s):\n",
             worker_bin, dir, WIFEXITED (status)? WEXITSTATUS (status): -1, log);
    s_tail (log, 8);
    //  A half-written checkpoint would be taken for a good one next time.
    char *cmd = zsys_sprintf ("rm -rf '%s'", dir);
    if (cmd && strchr (dir, '\'') == NULL && system (cmd) != 0)
        fprintf (stderr, "vdgx up: cannot remove %s\n", dir);
    zstr_free (&cmd);
    return -1;
}

//  The models to serve. Returns how many (0..), or -1 on a config error.
static int
s_models (vdgx_config_t *config, const char *data, const char *bin_dir, s_model_t *models)
{
    int n = 0;
    size_t count = vdgx_config_model_count (config);
    for (size_t i = 0; i < count && n < S_MAX_MODELS; i++) {
        const vdgx_model_conf_t *m = vdgx_config_model (config, i);
        s_model_t *out = &models [n++];
        memset (out, 0, sizeof *out);
        snprintf (out->name, sizeof out->name, "%s", m->name);
        snprintf (out->weights, sizeof out->weights, "%s", m->weights);
        snprintf (out->precision, sizeof out->precision, "%s", m->precision? m->precision: "");
        snprintf (out->device, sizeof out->device, "%s", m->device? m->device: "cpu");
        out->workers = m->workers;
        char section [96];
        snprintf (section, sizeof section, "worker.%s", m->name);
        const char *binary = vdgx_config_get (config, section, "binary");
        if (binary && *binary)
            snprintf (out->binary, sizeof out->binary, "%s", binary);
        else
            snprintf (out->binary, sizeof out->binary, "%s/vdgx-worker", bin_dir);
    }
    if (count)
        return n;
    //  Defaults: real weights when present, else the tiny demo model.
    const char *real [] = { "wan21-1.3b", "wan21-14b" };
    for (int i = 0; i < 2; i++) {
        char dir [PATH_MAX];
        snprintf (dir, sizeof dir, "%s/models/%s", data, real [i]);
        char probe [PATH_MAX + 32];
        snprintf (probe, sizeof probe, "%s/config.json", dir);
        if (s_is_dir (dir) && access (probe, R_OK) == 0) {
            s_model_t *out = &models [n++];
            memset (out, 0, sizeof *out);
            snprintf (out->name, sizeof out->name, "%s", real [i]);
            snprintf (out->weights, sizeof out->weights, "%s", dir);
            snprintf (out->binary, sizeof out->binary, "%s/vdgx-worker", bin_dir);
            snprintf (out->device, sizeof out->device, "cpu");
            out->workers = 1;
        }
    }
    if (!n) {
        s_model_t *out = &models [n++];
        memset (out, 0, sizeof *out);
        snprintf (out->name, sizeof out->name, "wan21-tiny");
        snprintf (out->weights, sizeof out->weights, "%s/models/wan21-tiny", data);
        snprintf (out->binary, sizeof out->binary, "%s/vdgx-worker", bin_dir);
        snprintf (out->device, sizeof out->device, "cpu");
        out->workers = 1;
    }
    return n;
}

int
vdgx_cli_up (vdgx_cli_t *cli, int argc, char **argv)
{
    static const struct option longopts [] = {
        { "config", required_argument, NULL, 'C' }, { "data", required_argument, NULL, 'D' },
        { "detach", no_argument, NULL, 'd' }, { "grace", required_argument, NULL, 'g' },
        { "no-bridge", no_argument, NULL, 'B' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *data_flag = NULL;
    bool detach = false, bridge = true;
    double grace = 10;
    int c;
    optind = 0;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'C') cli->config_path = optarg;
        else if (c == 'D') data_flag = optarg;
        else if (c == 'd') detach = true;
        else if (c == 'B') bridge = false;
        else if (c == 'g') {
            if (vdgx_cli_parse_double ("up", "--grace", optarg, 0, 3600, &grace))
                return VDGX_EXIT_USAGE;
        }
        else if (c == 'h') {
            printf ("usage: vdgx up [--config FILE] [--data DIR] [--detach] [--grace S] [--no-bridge]\n"
                    "Starts vdgx-broker, vdgx-bridge (when built) and the configured workers, restarts\n"
                    "crashed ones, logs to DATA/logs/, pid file DATA/vdgx-up.pid; stop with vdgx down.\n");
            return 0;
        }
        else {
            fprintf (stderr, "vdgx up: bad option (try vdgx up --help)\n");
            return VDGX_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf (stderr, "vdgx up: unexpected argument '%s'\n", argv [optind]);
        return VDGX_EXIT_USAGE;
    }
    char data [PATH_MAX], logs [PATH_MAX + 8], pidfile [PATH_MAX + 16], bin_dir [PATH_MAX];
    vdgx_config_t *config = NULL;
    if (s_data_dir (cli, data_flag, data, sizeof data, &config))
        return VDGX_EXIT_USAGE;
    snprintf (logs, sizeof logs, "%s/logs", data);
    snprintf (pidfile, sizeof pidfile, "%s/vdgx-up.pid", data);
    s_bin_dir (cli, bin_dir, sizeof bin_dir);
    int rc = VDGX_EXIT_JOB_FAILED;
    vdgx_supervisor_t *sup = NULL;
    bool daemon = false;                //  the detached supervisor (child of the fork)
    if (s_mkdirs (logs)) {
        fprintf (stderr, "vdgx up: cannot create %s: %s\n", logs, strerror (errno));
        goto done;
    }
    pid_t running = s_read_pidfile (pidfile, NULL, NULL, 0);
    if (running && s_alive (running)) {
        fprintf (stderr, "vdgx up: already running (pid %ld, %s); stop it with: vdgx down --data %s\n",
                 (long) running, pidfile, data);
        goto done;
    }
    //  The broker must be free: another stack on these ports would take our clients.
    if (s_broker_up (cli->broker, cli->events, 300)) {
        fprintf (stderr, "vdgx up: a broker already answers on %s (another vdgx up?)\n", cli->broker);
        goto done;
    }
    char broker_bin [PATH_MAX + 32], bridge_bin [PATH_MAX + 32];
    snprintf (broker_bin, sizeof broker_bin, "%s/vdgx-broker", bin_dir);
    snprintf (bridge_bin, sizeof bridge_bin, "%s/vdgx-bridge", bin_dir);
    if (!s_is_exec (broker_bin)) {
        fprintf (stderr, "vdgx up: %s not found (build it: cmake --build BUILD)\n", broker_bin);
        goto done;
    }
    s_model_t models [S_MAX_MODELS];
    int nmodels = s_models (config, data, bin_dir, models);

    //  Weights: the tiny demo checkpoint is made on demand; other models need their folder.
    bool served [S_MAX_MODELS];
    int nserved = 0;
    for (int i = 0; i < nmodels; i++) {
        s_model_t *m = &models [i];
        served [i] = false;
        if (!s_is_exec (m->binary)) {
            fprintf (stderr, "vdgx up: model %s: worker binary %s not found; not started\n",
                     m->name, m->binary);
            continue;
        }
        if (!s_is_dir (m->weights)) {
            if (streq (m->name, "wan21-tiny")) {
                char parent [PATH_MAX];
                snprintf (parent, sizeof parent, "%s", m->weights);
                char *slash = strrchr (parent, '/');
                if (slash && slash != parent) {
                    *slash = 0;
                    s_mkdirs (parent);
                }
                if (s_make_tiny (m->binary, m->weights, logs))
                    continue;
            }
            else {
                fprintf (stderr, "vdgx up: model %s: weights folder %s does not exist "
                                 "(vdgx models download %s --dir %s); not started\n",
                         m->name, m->weights, m->name, m->weights);
                continue;
            }
        }
        served [i] = true;
        nserved += m->workers > 0;
    }

    int heartbeat = vdgx_config_heartbeat_ms (config), liveness = vdgx_config_liveness (config);
    char hb [16], lv [16];
    snprintf (hb, sizeof hb, "%d", heartbeat);
    snprintf (lv, sizeof lv, "%d", liveness);

    if (detach) {
        //  The parent waits for the stack to answer, prints the endpoints and returns; the
        //  child becomes a session leader with its output in DATA/logs/vdgx-up.log.
        fflush (stdout);
        fflush (stderr);
        pid_t pid = fork ();
        if (pid < 0) {
            fprintf (stderr, "vdgx up: fork: %s\n", strerror (errno));
            goto done;
        }
        if (pid > 0) {
            char uplog [PATH_MAX + 32];
            snprintf (uplog, sizeof uplog, "%s/vdgx-up.log", logs);
            int64_t end = zclock_mono () + 30000;
            bool up = false;
            while (!up && zclock_mono () < end && !vdgx_cli_interrupted) {
                int status;
                if (waitpid (pid, &status, WNOHANG) == pid) {
                    fprintf (stderr, "vdgx up: the supervisor exited early; %s says:\n", uplog);
                    s_tail (uplog, 12);
                    goto done;
                }
                pid_t in_file = s_read_pidfile (pidfile, NULL, NULL, 0);
                up = in_file == pid && s_broker_up (cli->broker, cli->events, 300);
                if (!up)
                    zclock_sleep (100);
            }
            if (!up) {
                fprintf (stderr, "vdgx up: the broker did not answer on %s within 30 s; see %s\n",
                         cli->broker, logs);
                kill (pid, SIGTERM);
                goto done;
            }
            printf ("VideosDGX is up (pid %ld)\n", (long) pid);
            printf ("  broker   %s\n  events   %s\n", cli->broker, cli->events);
            if (bridge && s_is_exec (bridge_bin))
                printf ("  http     http://%s\n", vdgx_config_http (config));
            for (int i = 0; i < nmodels; i++)
                printf ("  model    %s: %s\n", models [i].name,
                        served [i]? "starting": "NOT started (see above)");
            printf ("  data     %s\n  logs     %s\n  stop:    vdgx down --data %s\n", data, logs, data);
            rc = nserved == 0 && nmodels > 0? VDGX_EXIT_JOB_FAILED: 0;
            goto done;
        }
        setsid ();
        daemon = true;
        char uplog [PATH_MAX + 32];
        snprintf (uplog, sizeof uplog, "%s/vdgx-up.log", logs);
        if (!freopen ("/dev/null", "r", stdin) || !freopen (uplog, "a", stdout))
            _exit (1);
        dup2 (fileno (stdout), 2);
        setvbuf (stdout, NULL, _IOLBF, 0);
    }

    sup = vdgx_supervisor_new (logs, stdout);
    //  Broker first: `stop` goes in reverse, so workers stop before the broker.
    char store [PATH_MAX + 16];
    snprintf (store, sizeof store, "%s/broker", data);
    {
        char *args [12 + 2 * S_MAX_MODELS + 4];
        int k = 0;
        args [k++] = broker_bin;
        args [k++] = "--bind"; args [k++] = (char *) cli->broker;
        args [k++] = "--events"; args [k++] = (char *) cli->events;
        args [k++] = "--data"; args [k++] = store;
        args [k++] = "--heartbeat-ms"; args [k++] = hb;
        args [k++] = "--liveness"; args [k++] = lv;
        if (cli->config_path) {
            args [k++] = "--config";
            args [k++] = (char *) cli->config_path;
        }
        for (int i = 0; i < nmodels; i++)
            if (served [i]) {
                args [k++] = "--model";
                args [k++] = models [i].name;
            }
        args [k] = NULL;
        vdgx_supervisor_add (sup, "broker", args, NULL);
    }
    if (bridge && s_is_exec (bridge_bin)) {
        char e1 [600], e2 [600], e3 [300], e4 [PATH_MAX + 32];
        snprintf (e1, sizeof e1, "VDGX_BROKER=%s", cli->broker);
        snprintf (e2, sizeof e2, "VDGX_EVENTS=%s", cli->events);
        snprintf (e3, sizeof e3, "VDGX_HTTP=%s", vdgx_config_http (config));
        snprintf (e4, sizeof e4, "VDGX_DATA_DIR=%s", data);
        char *env [] = { e1, e2, e3, e4, NULL };
        //  Endpoints as flags too (they win over its config), so it talks to this broker.
        char *args [12] = { bridge_bin, "--broker", (char *) cli->broker, "--events",
                            (char *) cli->events, "--listen", (char *) vdgx_config_http (config),
                            NULL, NULL, NULL, NULL, NULL };
        int k = 7;
        if (cli->config_path) {
            args [k++] = "--config";
            args [k++] = (char *) cli->config_path;
        }
        //  A request that names no model goes to the first model this stack serves, unless
        //  the configuration names a default ([bridge] default_model).
        const char *dm = vdgx_config_get (config, "bridge", "default_model");
        for (int i = 0; (!dm || !*dm) && i < nmodels; i++)
            if (served [i]) {
                args [k++] = "--default-model";
                args [k++] = models [i].name;
                break;
            }
        vdgx_supervisor_add (sup, "bridge", args, env);
    }
    for (int i = 0; i < nmodels; i++) {
        s_model_t *m = &models [i];
        for (int w = 0; served [i] && w < m->workers; w++) {
            char name [128], wdata [PATH_MAX + 160];
            snprintf (name, sizeof name, "worker-%s-%d", m->name, w + 1);
            snprintf (wdata, sizeof wdata, "%s/workers/%s-%d", data, m->name, w + 1);
            s_mkdirs (wdata);
            char *args [24];
            int k = 0;
            args [k++] = m->binary;
            args [k++] = "--model"; args [k++] = m->name;
            args [k++] = "--broker"; args [k++] = (char *) cli->broker;
            args [k++] = "--weights"; args [k++] = m->weights;
            args [k++] = "--data"; args [k++] = wdata;
            args [k++] = "--heartbeat-ms"; args [k++] = hb;
            args [k++] = "--liveness"; args [k++] = lv;
            if (*m->device) {
                args [k++] = "--device";
                args [k++] = m->device;
            }
            if (*m->precision) {
                args [k++] = "--precision";
                args [k++] = m->precision;
            }
            args [k] = NULL;
            vdgx_supervisor_add (sup, name, args, NULL);
        }
    }
    vdgx_supervisor_start (sup);
    if (s_write_pidfile (pidfile, sup)) {
        fprintf (stderr, "vdgx up: cannot write %s: %s\n", pidfile, strerror (errno));
        goto done;
    }
    uint64_t gen = vdgx_supervisor_generation (sup);
    if (!detach) {
        int64_t end = zclock_mono () + 30000;
        bool up = false;
        while (!up && !vdgx_cli_interrupted && zclock_mono () < end) {
            vdgx_supervisor_poll (sup);
            up = s_broker_up (cli->broker, cli->events, 300);
        }
        if (up) {
            printf ("VideosDGX is up (pid %ld; Ctrl-C stops it)\n  broker   %s\n  events   %s\n",
                    (long) getpid (), cli->broker, cli->events);
            if (bridge && s_is_exec (bridge_bin))
                printf ("  http     http://%s\n", vdgx_config_http (config));
            for (int i = 0; i < nmodels; i++)
                printf ("  model    %s: %s\n", models [i].name,
                        served [i]? "starting": "NOT started (see above)");
            printf ("  data     %s\n  logs     %s\n", data, logs);
            fflush (stdout);
        }
        else
        if (!vdgx_cli_interrupted)
            fprintf (stderr, "vdgx up: the broker does not answer on %s yet; see %s/broker.log\n",
                     cli->broker, logs);
    }
    while (!vdgx_cli_interrupted) {
        vdgx_supervisor_poll (sup);
        if (vdgx_supervisor_generation (sup) != gen) {
            gen = vdgx_supervisor_generation (sup);
            s_write_pidfile (pidfile, sup);
        }
        zclock_sleep (100);
    }
    printf ("vdgx up: stopping\n");
    fflush (stdout);
    vdgx_supervisor_stop (sup, (int) (grace * 1000));
    unlink (pidfile);
    printf ("vdgx up: stopped\n");
    rc = 0;
done:
    vdgx_supervisor_destroy (&sup);
    vdgx_config_destroy (&config);
    if (daemon) {
        //  The ZeroMQ context was made before the fork (the pre-start check): its threads
        //  do not exist here, so CZMQ's exit-time shutdown would wait for them forever.
        fflush (stdout);
        _exit (rc);
    }
    return rc;
}

int
vdgx_cli_down (vdgx_cli_t *cli, int argc, char **argv)
{
    static const struct option longopts [] = {
        { "data", required_argument, NULL, 'D' }, { "grace", required_argument, NULL, 'g' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    const char *data_flag = NULL;
    double grace = 20;
    int c;
    optind = 0;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'D') data_flag = optarg;
        else if (c == 'g') {
            if (vdgx_cli_parse_double ("down", "--grace", optarg, 0, 3600, &grace))
                return VDGX_EXIT_USAGE;
        }
        else if (c == 'h') {
            printf ("usage: vdgx down [--data DIR] [--grace S]\n"
                    "SIGTERM to `vdgx up` (which stops its children in order), SIGKILL for all\n"
                    "of them after S seconds (default 20). Exit 4 when nothing is running.\n");
            return 0;
        }
        else {
            fprintf (stderr, "vdgx down: bad option (try vdgx down --help)\n");
            return VDGX_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf (stderr, "vdgx down: unexpected argument '%s'\n", argv [optind]);
        return VDGX_EXIT_USAGE;
    }
    char data [PATH_MAX], pidfile [PATH_MAX + 16];
    if (s_data_dir (cli, data_flag, data, sizeof data, NULL))
        return VDGX_EXIT_USAGE;
    snprintf (pidfile, sizeof pidfile, "%s/vdgx-up.pid", data);
    pid_t children [256];
    int nchildren = 0;
    pid_t pid = s_read_pidfile (pidfile, children, &nchildren, 256);
    if (!pid) {
        fprintf (stderr, "vdgx down: nothing running (no %s)\n", pidfile);
        return VDGX_EXIT_NOT_FOUND;
    }
    if (!s_alive (pid)) {
        for (int i = 0; i < nchildren; i++)
            if (s_alive (children [i]))
                kill (children [i], SIGKILL);
        unlink (pidfile);
        fprintf (stderr, "vdgx down: vdgx up (pid %ld) was not running; stale %s removed\n",
                 (long) pid, pidfile);
        return 0;
    }
    kill (pid, SIGTERM);
    int64_t end = zclock_mono () + (int64_t) (grace * 1000);
    while (s_alive (pid) && zclock_mono () < end)
        zclock_sleep (50);
    if (s_alive (pid)) {
        fprintf (stderr, "vdgx down: still running after %.0f s: SIGKILL\n", grace);
        kill (pid, SIGKILL);
        for (int i = 0; i < nchildren; i++)
            if (s_alive (children [i]))
                kill (children [i], SIGKILL);
        unlink (pidfile);
    }
    printf ("VideosDGX stopped (pid %ld)\n", (long) pid);
    return 0;
}
