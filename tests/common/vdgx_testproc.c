/*  vdgx_testproc.c - process helpers for the end-to-end test programs (see the header). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     //  mkdtemp, prctl
#endif
#include "vdgx_testproc.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MAX_PROCS 16

static char s_dir [256];
static pid_t s_pids [S_MAX_PROCS];
static char s_logs [S_MAX_PROCS][320];
static int s_nprocs;

static void
s_cleanup (void)
{
    for (int i = 0; i < s_nprocs; i++)
        if (s_pids [i] > 0) {
            kill (s_pids [i], SIGKILL);
            waitpid (s_pids [i], NULL, 0);
            s_pids [i] = 0;
        }
    if (*s_dir) {
        char cmd [300];
        snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
        if (system (cmd) != 0)
            fprintf (stderr, "cannot remove %s\n", s_dir);
        *s_dir = 0;
    }
}

int
vdgx_testproc_init (const char *prefix)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp (s_dir)) {
        fprintf (stderr, "mkdtemp %s: %s\n", s_dir, strerror (errno));
        *s_dir = 0;
        return -1;
    }
    atexit (s_cleanup);
    return 0;
}

const char *
vdgx_testproc_dir (void)
{
    return s_dir;
}

pid_t
vdgx_testproc_spawn (const char *name, char *const argv [])
{
    if (s_nprocs >= S_MAX_PROCS) {
        fprintf (stderr, "vdgx_testproc_spawn %s: more than %d children\n", name, S_MAX_PROCS);
        return -1;
    }
    int slot = s_nprocs;
    snprintf (s_logs [slot], sizeof s_logs [slot], "%s/%s.%d.log", s_dir, name, slot);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        //  Children never outlive a crashed test.
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        int fd = open (s_logs [slot], O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        execv (argv [0], argv);
        fprintf (stderr, "exec %s: %s\n", argv [0], strerror (errno));
        _exit (127);
    }
    s_pids [slot] = pid;
    s_nprocs++;
    return pid;
}

int
vdgx_testproc_wait_exit (pid_t pid, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (true) {
        int status;
        pid_t rc = waitpid (pid, &status, WNOHANG);
        if (rc == pid) {
            for (int i = 0; i < s_nprocs; i++)
                if (s_pids [i] == pid)
                    s_pids [i] = 0;
            return WIFEXITED (status)? WEXITSTATUS (status): 128 + WTERMSIG (status);
        }
        if (zclock_mono () >= end)
            return -1;
        zclock_sleep (20);
    }
}

void
vdgx_testproc_dump_logs (void)
{
    for (int i = 0; i < s_nprocs; i++) {
        fprintf (stderr, "----- %s -----\n", s_logs [i]);
        FILE *f = fopen (s_logs [i], "r");
        if (!f)
            continue;
        char line [1024];
        while (fgets (line, sizeof line, f))
            fputs (line, stderr);
        fclose (f);
    }
}

int
vdgx_testproc_count_lines (const char *which, const char *needle)
{
    int n = 0;
    for (int i = 0; i < s_nprocs; i++) {
        if (which && !strstr (s_logs [i], which))
            continue;
        FILE *f = fopen (s_logs [i], "r");
        if (!f)
            continue;
        char line [2048];
        while (fgets (line, sizeof line, f))
            if (strstr (line, needle))
                n++;
        fclose (f);
    }
    return n;
}

int
vdgx_testproc_sanitizer_clean (void)
{
    return vdgx_testproc_count_lines (NULL, "Sanitizer") == 0
        && vdgx_testproc_count_lines (NULL, "runtime error:") == 0;
}

int
vdgx_testproc_free_ports (int *ports, int count)
{
    if (count < 1 || count > 8)
        return -1;
    //  Plain sockets, not ZeroMQ ones: zmq_close hands a listener to its I/O thread, which
    //  closes it later (on a loaded machine, after the broker we start has tried to bind
    //  the port: "Address already in use"). close () releases the port before it returns.
    int holders [8];
    for (int i = 0; i < 8; i++)
        holders [i] = -1;
    //  Own generator: zsys_init reseeds random() from the clock's seconds, which parallel
    //  tests share.
    uint64_t x = ((uint64_t) getpid () << 32) ^ (uint64_t) zclock_usecs ();
    int found = 0;
    for (int i = 0; i < 200 && found < count; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int port = 20000 + (int) ((x >> 33) % 12000);
        if (holders [found] < 0)
            holders [found] = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (holders [found] < 0)
            break;
        struct sockaddr_in addr;
        memset (&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_port = htons ((uint16_t) port);
        addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        if (bind (holders [found], (struct sockaddr *) &addr, sizeof addr) == 0)
            ports [found++] = port;
    }
    //  Released only now, so no two of them can be the same port.
    for (int i = 0; i < 8; i++)
        if (holders [i] >= 0)
            close (holders [i]);
    return found == count? 0: -1;
}
