/*  vdgx_tmpsweep.c - leftovers of killed workers (see the header).
*/
#include "vdgx_tmpsweep.h"
#include "vdgx_log.h"
#include <assert.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  The pid in "<id>.<pid>.mp4" or ".<id>.<pid>.mp4.tmp-XXXXXX", or 0 when name is neither.
static long
s_owner_pid (const char *name)
{
    const char *mp4 = strstr (name, ".mp4");
    if (!mp4)
        return 0;
    bool temp = name [0] == '.';
    if (temp? strncmp (mp4, ".mp4.tmp-", 9) != 0: mp4 [4] != 0)
        return 0;
    //  Back from ".mp4" over the digits of the pid to the dot before them.
    const char *p = mp4;
    while (p > name && p [-1] >= '0' && p [-1] <= '9')
        p--;
    if (p == mp4 || p == name || p [-1] != '.' || p - 1 == name + (temp? 1: 0))
        return 0;
    long pid = strtol (p, NULL, 10);
    return pid > 0? pid: 0;
}

static bool
s_alive (long pid)
{
    return kill ((pid_t) pid, 0) == 0 || errno == EPERM;
}

size_t
vdgx_tmpsweep_run (const char *dir)
{
    assert (dir);
    DIR *d = opendir (dir);
    if (!d)
        return 0;
    size_t removed = 0;
    struct dirent *e;
    char path [4096];
    while ((e = readdir (d))) {
        long pid = s_owner_pid (e->d_name);
        if (!pid || pid == (long) getpid () || s_alive (pid))
            continue;
        snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat (path, &sb) == 0 && S_ISREG (sb.st_mode) && unlink (path) == 0)
            removed++;
    }
    closedir (d);
    if (removed)
        vdgx_log_info ("worker.sweep", "dir=%s removed=%zu reason=\"left by workers that died\"",
                       dir, removed);
    return removed;
}

void
vdgx_tmpsweep_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_tmpsweep: ");
    assert (s_owner_pid ("job1.123.mp4") == 123);
    assert (s_owner_pid (".job1.123.mp4.tmp-AbC123") == 123);
    assert (s_owner_pid ("job1.mp4") == 0 && s_owner_pid ("123.mp4") == 0);
    assert (s_owner_pid ("job1.123.mp4.bak") == 0 && s_owner_pid ("notes.txt") == 0);
    assert (s_owner_pid (".job1.123.mp4") == 0);
    char dir [] = "/tmp/vdgx-tmpsweep-XXXXXX";
    assert (mkdtemp (dir));
    //  A dead pid: a child that has exited and been reaped.
    pid_t dead = fork ();
    assert (dead >= 0);
    if (dead == 0)
        _exit (0);
    waitpid (dead, NULL, 0);
    const char *names [] = { "a.%d.mp4", ".a.%d.mp4.tmp-XYZ123", "b.%d.mp4", "keep.txt" };
    char path [4096], name [128];
    for (int i = 0; i < 4; i++) {
        snprintf (name, sizeof name, names [i], i < 2? (int) dead: (int) getppid ());
        snprintf (path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen (path, "w");
        assert (f);
        fputs ("x", f);
        fclose (f);
    }
    //  The dead worker's two files go; a live process's result and other files stay.
    assert (vdgx_tmpsweep_run (dir) == 2);
    assert (vdgx_tmpsweep_run (dir) == 0);
    snprintf (path, sizeof path, "%s/b.%d.mp4", dir, (int) getppid ());
    assert (access (path, F_OK) == 0);
    unlink (path);
    snprintf (path, sizeof path, "%s/keep.txt", dir);
    assert (access (path, F_OK) == 0);
    unlink (path);
    rmdir (dir);
    assert (vdgx_tmpsweep_run ("/nonexistent/vdgx") == 0);
    printf ("OK\n");
}
