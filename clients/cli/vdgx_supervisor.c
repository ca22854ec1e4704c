/*  vdgx_supervisor.c - supervised child processes (see the header). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "vdgx_supervisor.h"

typedef struct {
    char *name;
    char **argv;
    char **env;
    pid_t pid;
    int64_t started_ms;
    int64_t restart_at_ms;      //  0 = not scheduled
    int failures;               //  quick exits in a row (sets the back-off)
    int restarts;
    bool given_up;
} s_child_t;

struct _vdgx_supervisor_t {
    char *log_dir;
    FILE *events;
    s_child_t *children;
    size_t count;
    int initial_ms, max_ms, stable_ms;
    uint64_t generation;
};

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_event (vdgx_supervisor_t *self, const char *format, const char *name, long a, long b)
{
    if (!self->events)
        return;
    time_t t = time (NULL);
    struct tm tm;
    gmtime_r (&t, &tm);
    char when [32];
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf (self->events, "%s vdgx-up: %s ", when, name);
    fprintf (self->events, format, a, b);
    fputc ('\n', self->events);
    fflush (self->events);
}

static char **
s_strv_dup (char *const v [])
{
    size_t n = 0;
    while (v && v [n])
        n++;
    char **copy = calloc (n + 1, sizeof *copy);
    for (size_t i = 0; copy && i < n; i++)
        copy [i] = strdup (v [i]);
    return copy;
}

static void
s_strv_free (char **v)
{
    for (size_t i = 0; v && v [i]; i++)
        free (v [i]);
    free (v);
}

vdgx_supervisor_t *
vdgx_supervisor_new (const char *log_dir, FILE *events)
{
    assert (log_dir);
    vdgx_supervisor_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->log_dir = strdup (log_dir);
    self->events = events;
    self->initial_ms = 500;
    self->max_ms = 30000;
    self->stable_ms = 60000;
    return self;
}

void
vdgx_supervisor_destroy (vdgx_supervisor_t **self_p)
{
    assert (self_p);
    vdgx_supervisor_t *self = *self_p;
    if (!self)
        return;
    vdgx_supervisor_stop (self, 5000);
    for (size_t i = 0; i < self->count; i++) {
        free (self->children [i].name);
        s_strv_free (self->children [i].argv);
        s_strv_free (self->children [i].env);
    }
    free (self->children);
    free (self->log_dir);
    free (self);
    *self_p = NULL;
}

void
vdgx_supervisor_set_backoff (vdgx_supervisor_t *self, int initial_ms, int max_ms, int stable_ms)
{
    assert (self);
    assert (initial_ms > 0 && max_ms >= initial_ms && stable_ms >= 0);
    self->initial_ms = initial_ms;
    self->max_ms = max_ms;
    self->stable_ms = stable_ms;
}

int
vdgx_supervisor_add (vdgx_supervisor_t *self, const char *name, char *const argv [],
                     char *const env [])
{
    assert (self);
    assert (name && argv && argv [0]);
    s_child_t *children = realloc (self->children, (self->count + 1) * sizeof *children);
    if (!children)
        return -1;
    self->children = children;
    s_child_t *c = &children [self->count];
    memset (c, 0, sizeof *c);
    c->name = strdup (name);
    c->argv = s_strv_dup (argv);
    c->env = s_strv_dup (env);
    if (!c->name || !c->argv || !c->env) {
        free (c->name);
        s_strv_free (c->argv);
        s_strv_free (c->env);
        return -1;
    }
    self->count++;
    return 0;
}

static int
s_spawn (vdgx_supervisor_t *self, s_child_t *c)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s.log", self->log_dir, c->name);
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        s_event (self, "cannot open its log (errno %ld)%.0ld", c->name, errno, 0);
        return -1;
    }
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0) {
        close (fd);
        return -1;
    }
    if (pid == 0) {
        setpgid (0, 0);
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != parent)       //  the supervisor died before prctl
            _exit (1);
        int null = open ("/dev/null", O_RDONLY);
        if (null >= 0) {
            dup2 (null, 0);
            close (null);
        }
        dup2 (fd, 1);
        dup2 (fd, 2);
        //  Signals the supervisor catches must not stay blocked/ignored in children.
        signal (SIGINT, SIG_DFL);
        signal (SIGTERM, SIG_DFL);
        signal (SIGPIPE, SIG_DFL);
        for (size_t i = 0; c->env [i]; i++)
            putenv (c->env [i]);
        execv (c->argv [0], c->argv);
        fprintf (stderr, "vdgx-up: cannot run %s: %s\n", c->argv [0], strerror (errno));
        _exit (127);
    }
    close (fd);
    c->pid = pid;
    c->started_ms = s_now_ms ();
    c->restart_at_ms = 0;
    self->generation++;
    s_event (self, "started (pid %ld)%.0ld", c->name, (long) pid, 0);
    return 0;
}

int
vdgx_supervisor_start (vdgx_supervisor_t *self)
{
    assert (self);
    int running = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_child_t *c = &self->children [i];
        if (!c->pid && !c->given_up)
            s_spawn (self, c);
        running += c->pid > 0;
    }
    return running;
}

int
vdgx_supervisor_poll (vdgx_supervisor_t *self)
{
    assert (self);
    int64_t now = s_now_ms ();
    int running = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_child_t *c = &self->children [i];
        if (c->pid > 0) {
            int status;
            pid_t rc = waitpid (c->pid, &status, WNOHANG);
            if (rc == c->pid || (rc < 0 && errno == ECHILD)) {
                int code = rc == c->pid && WIFEXITED (status)? WEXITSTATUS (status): -1;
                int sig = rc == c->pid && WIFSIGNALED (status)? WTERMSIG (status): 0;
                self->generation++;
                c->pid = 0;
                if (now - c->started_ms >= self->stable_ms)
                    c->failures = 0;
                if (code == 2 || code == 127) {
                    c->given_up = true;
                    s_event (self, "exited with status %ld: not restarted (see its log)%.0ld",
                             c->name, code, 0);
                }
                else {
                    int64_t delay = self->initial_ms;
                    for (int k = 0; k < c->failures && delay < self->max_ms; k++)
                        delay *= 2;
                    if (delay > self->max_ms)
                        delay = self->max_ms;
                    c->failures++;
                    c->restart_at_ms = now + delay;
                    if (sig)
                        s_event (self, "killed by signal %ld, restarting in %ld ms", c->name, sig, (long) delay);
                    else
                        s_event (self, "exited with status %ld, restarting in %ld ms", c->name, code, (long) delay);
                }
            }
        }
        if (!c->pid && !c->given_up && c->restart_at_ms && now >= c->restart_at_ms) {
            c->restarts++;
            s_spawn (self, c);
        }
        running += c->pid > 0;
    }
    return running;
}

//  SIGTERMs children [from, to) and waits for them together (one slow child does not delay
//  another's SIGKILL), SIGKILL after grace_ms.
static void
s_stop_range (vdgx_supervisor_t *self, size_t from, size_t to, int grace_ms)
{
    for (size_t i = to; i-- > from; ) {
        s_child_t *c = &self->children [i];
        c->restart_at_ms = 0;
        if (c->pid > 0)
            kill (c->pid, SIGTERM);
    }
    int64_t end = s_now_ms () + grace_ms;
    bool any = true;
    while (any) {
        any = false;
        for (size_t i = from; i < to; i++) {
            s_child_t *c = &self->children [i];
            if (c->pid <= 0)
                continue;
            pid_t rc = waitpid (c->pid, NULL, WNOHANG);
            if (rc == c->pid || (rc < 0 && errno == ECHILD)) {
                s_event (self, "stopped (pid %ld)%.0ld", c->name, (long) c->pid, 0);
                c->pid = 0;
                self->generation++;
            }
            else
            if (s_now_ms () >= end) {
                s_event (self, "did not stop in %ld ms: SIGKILL (pid %ld)", c->name, grace_ms, (long) c->pid);
                kill (c->pid, SIGKILL);
                waitpid (c->pid, NULL, 0);
                c->pid = 0;
                self->generation++;
            }
            else
                any = true;
        }
        if (any)
            usleep (20000);
    }
}

void
vdgx_supervisor_stop (vdgx_supervisor_t *self, int grace_ms)
{
    assert (self);
    for (size_t i = 0; i < self->count; i++)
        self->children [i].restart_at_ms = 0;
    //  The first child (the broker) last: the others may still deliver results to it.
    if (self->count > 1)
        s_stop_range (self, 1, self->count, grace_ms);
    if (self->count > 0)
        s_stop_range (self, 0, 1, grace_ms);
}

uint64_t
vdgx_supervisor_generation (vdgx_supervisor_t *self)
{
    assert (self);
    return self->generation;
}

size_t
vdgx_supervisor_size (vdgx_supervisor_t *self)
{
    assert (self);
    return self->count;
}

const char *
vdgx_supervisor_name (vdgx_supervisor_t *self, size_t index)
{
    assert (self && index < self->count);
    return self->children [index].name;
}

pid_t
vdgx_supervisor_pid (vdgx_supervisor_t *self, size_t index)
{
    assert (self && index < self->count);
    return self->children [index].pid;
}

int
vdgx_supervisor_restarts (vdgx_supervisor_t *self, size_t index)
{
    assert (self && index < self->count);
    return self->children [index].restarts;
}

bool
vdgx_supervisor_given_up (vdgx_supervisor_t *self, size_t index)
{
    assert (self && index < self->count);
    return self->children [index].given_up;
}

//  ---------------------------------------------------------------------------------------

static char *
s_read_file (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return NULL;
    char *buf = calloc (1, 65536);
    size_t n = buf? fread (buf, 1, 65535, f): 0;
    (void) n;
    fclose (f);
    return buf;
}

void
vdgx_supervisor_test (bool verbose)
{
    printf (" * vdgx_supervisor: ");
    char dir [] = "/tmp/vdgx-supervisor-test-XXXXXX";
    assert (mkdtemp (dir));
    char *events_text = NULL;
    size_t events_size = 0;
    FILE *events = open_memstream (&events_text, &events_size);
    vdgx_supervisor_t *sup = vdgx_supervisor_new (dir, events);
    vdgx_supervisor_set_backoff (sup, 50, 200, 100000);

    //  A crashing child is restarted with a doubling delay: 50, 100, 200, 200 ms.
    char *crash [] = { "/bin/sh", "-c", "echo run; exit 3", NULL };
    //  A long-running child that writes its environment and stops on SIGTERM.
    char *steady [] = { "/bin/sh", "-c", "echo \"x=$VDGX_SUP_TEST\"; exec sleep 30", NULL };
    char *env [] = { "VDGX_SUP_TEST=42", NULL };
    //  A usage error is not restarted; neither is a missing binary.
    char *usage [] = { "/bin/sh", "-c", "exit 2", NULL };
    char *missing [] = { "/nonexistent/vdgx-binary", NULL };
    //  A child that ignores SIGTERM is killed after the grace period.
    char *stubborn [] = { "/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.05; done", NULL };
    assert (vdgx_supervisor_add (sup, "crash", crash, NULL) == 0);
    assert (vdgx_supervisor_add (sup, "steady", steady, env) == 0);
    assert (vdgx_supervisor_add (sup, "usage", usage, NULL) == 0);
    assert (vdgx_supervisor_add (sup, "missing", missing, NULL) == 0);
    assert (vdgx_supervisor_add (sup, "stubborn", stubborn, NULL) == 0);
    assert (vdgx_supervisor_size (sup) == 5);
    assert (vdgx_supervisor_start (sup) == 5);
    pid_t steady_pid = vdgx_supervisor_pid (sup, 1);
    assert (steady_pid > 0);
    int64_t t0 = s_now_ms ();
    while (s_now_ms () - t0 < 1000) {
        vdgx_supervisor_poll (sup);
        usleep (5000);
    }
    //  In 1 s: start + restarts after 50, 100, 200, 200, 200 ms (+ run time): 4..6 restarts.
    int restarts = vdgx_supervisor_restarts (sup, 0);
    assert (restarts >= 4 && restarts <= 6);
    assert (vdgx_supervisor_pid (sup, 1) == steady_pid);        //  never restarted
    assert (vdgx_supervisor_restarts (sup, 1) == 0);
    assert (vdgx_supervisor_given_up (sup, 2) && vdgx_supervisor_pid (sup, 2) == 0);
    assert (vdgx_supervisor_given_up (sup, 3) && vdgx_supervisor_pid (sup, 3) == 0);
    assert (!vdgx_supervisor_given_up (sup, 4) && vdgx_supervisor_pid (sup, 4) > 0);
    //  Children run in their own process group.
    assert (getpgid (steady_pid) == steady_pid);

    //  A child killed from outside comes back (after the initial delay).
    uint64_t gen = vdgx_supervisor_generation (sup);
    kill (steady_pid, SIGKILL);
    t0 = s_now_ms ();
    while (s_now_ms () - t0 < 2000 && (vdgx_supervisor_pid (sup, 1) == steady_pid
                                   ||  vdgx_supervisor_pid (sup, 1) == 0))
        vdgx_supervisor_poll (sup), usleep (5000);
    assert (vdgx_supervisor_pid (sup, 1) > 0 && vdgx_supervisor_pid (sup, 1) != steady_pid);
    assert (vdgx_supervisor_restarts (sup, 1) == 1);
    assert (vdgx_supervisor_generation (sup) > gen);
    //  Let the new child print before the stop below (a slow host, e.g. valgrind, lost it).
    char steady_log [300];
    snprintf (steady_log, sizeof steady_log, "%s/steady.log", dir);
    t0 = s_now_ms ();
    while (s_now_ms () - t0 < 3000) {
        char *seen = s_read_file (steady_log);
        bool twice = seen && strstr (seen, "x=42\nx=42\n");
        free (seen);
        if (twice)
            break;
        vdgx_supervisor_poll (sup), usleep (5000);
    }

    //  Stop: SIGTERM, then SIGKILL for the one that ignores it, within the grace period.
    pid_t stubborn_pid = vdgx_supervisor_pid (sup, 4);
    t0 = s_now_ms ();
    vdgx_supervisor_stop (sup, 300);
    int64_t took = s_now_ms () - t0;
    assert (took >= 250 && took < 3000);
    for (size_t i = 0; i < vdgx_supervisor_size (sup); i++)
        assert (vdgx_supervisor_pid (sup, i) == 0);
    assert (kill (stubborn_pid, 0) == -1 && errno == ESRCH);
    //  No restarts after a stop.
    usleep (100000);
    assert (vdgx_supervisor_poll (sup) == 0);

    //  Logs: one file per child, appended across restarts; env reached the child.
    char path [300];
    snprintf (path, sizeof path, "%s/crash.log", dir);
    char *text = s_read_file (path);
    assert (text);
    int runs = 0;
    for (char *p = text; (p = strstr (p, "run")); p++)
        runs++;
    //  The last run may have been stopped before it printed.
    restarts = vdgx_supervisor_restarts (sup, 0);
    assert (runs == restarts + 1 || runs == restarts);
    free (text);
    snprintf (path, sizeof path, "%s/steady.log", dir);
    text = s_read_file (path);
    assert (text && strstr (text, "x=42\nx=42\n"));
    free (text);
    snprintf (path, sizeof path, "%s/missing.log", dir);
    text = s_read_file (path);
    assert (text && strstr (text, "cannot run /nonexistent/vdgx-binary"));
    free (text);
    vdgx_supervisor_destroy (&sup);
    assert (sup == NULL);
    fclose (events);
    assert (strstr (events_text, "crash exited with status 3, restarting in 100 ms"));
    assert (strstr (events_text, "usage exited with status 2: not restarted"));
    assert (strstr (events_text, "steady killed by signal 9"));
    assert (strstr (events_text, "stubborn did not stop in 300 ms: SIGKILL"));
    if (verbose)
        printf ("\n%s", events_text);
    free (events_text);
    const char *names [] = { "crash", "steady", "usage", "missing", "stubborn" };
    for (int i = 0; i < 5; i++) {
        snprintf (path, sizeof path, "%s/%s.log", dir, names [i]);
        unlink (path);
    }
    assert (rmdir (dir) == 0);
    printf ("OK\n");
}
