/*  vdgx_spares.c - empty files made ahead of need (see the header).
*/
#include "vdgx_spares.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int fd;
    char *path;
} s_spare_t;

struct _vdgx_spares_t {
    zactor_t *actor;
    zlistx_t *ready;            //  s_spare_t, oldest first
    int target;
    bool asked;                 //  a MORE is on its way: don't ask twice
};

static void
s_spare_destroy (s_spare_t **self_p)
{
    s_spare_t *self = *self_p;
    if (self) {
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

//  The actor: MORE n creates n files and sends them in one FILES message (fd, path pairs);
//  STOP answers STOPPED, so the owner can read everything sent before it.
static void
s_actor (zsock_t *pipe, void *args)
{
    char *dir = (char *) args;
    zsock_signal (pipe, 0);
    unsigned long counter = 0;
    while (true) {
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;
        char *command = zmsg_popstr (msg);
        if (!command || streq (command, "$TERM")) {
            free (command);
            zmsg_destroy (&msg);
            break;
        }
        if (streq (command, "STOP"))
            zstr_send (pipe, "STOPPED");
        else
        if (streq (command, "MORE")) {
            char *count = zmsg_popstr (msg);
            int n = count? atoi (count): 0;
            free (count);
            zmsg_t *files = zmsg_new ();
            zmsg_addstr (files, "FILES");
            for (int i = 0; i < n; i++) {
                char path [4096];
                snprintf (path, sizeof path, "%s/spare-%ld-%lu", dir, (long) getpid (), counter++);
                int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
                if (fd < 0)
                    break;      //  the owner falls back to creating files itself
                zmsg_addmem (files, &fd, sizeof fd);
                zmsg_addstr (files, path);
            }
            zmsg_send (&files, pipe);
        }
        free (command);
        zmsg_destroy (&msg);
    }
    free (dir);
}

static void
s_ask (vdgx_spares_t *self)
{
    int want = self->target - (int) zlistx_size (self->ready);
    if (self->asked || want <= 0 || (int) zlistx_size (self->ready) > self->target / 2)
        return;
    char count [16];
    snprintf (count, sizeof count, "%d", want);
    zstr_sendx (self->actor, "MORE", count, NULL);
    self->asked = true;
}

vdgx_spares_t *
vdgx_spares_new (const char *dir, int target)
{
    assert (dir && target > 0);
    vdgx_spares_t *self = (vdgx_spares_t *) zmalloc (sizeof (vdgx_spares_t));
    assert (self);
    self->ready = zlistx_new ();
    self->target = target;
    self->actor = zactor_new (s_actor, strdup (dir));
    assert (self->actor);
    s_ask (self);
    return self;
}

//  Takes one message from the actor: FILES go into the pool. True when it was STOPPED.
static bool
s_absorb (vdgx_spares_t *self, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    char *command = zmsg_popstr (msg);
    bool stopped = command && streq (command, "STOPPED");
    if (command && streq (command, "FILES")) {
        self->asked = false;
        zframe_t *fd_frame;
        while ((fd_frame = zmsg_pop (msg))) {
            char *path = zmsg_popstr (msg);
            if (zframe_size (fd_frame) == sizeof (int) && path) {
                s_spare_t *spare = (s_spare_t *) zmalloc (sizeof (s_spare_t));
                assert (spare);
                memcpy (&spare->fd, zframe_data (fd_frame), sizeof (int));
                spare->path = path;
                zlistx_add_end (self->ready, spare);
            }
            else
                free (path);
            zframe_destroy (&fd_frame);
        }
    }
    free (command);
    zmsg_destroy (msg_p);
    return stopped;
}

void
vdgx_spares_recv (vdgx_spares_t *self)
{
    assert (self);
    zmsg_t *msg = zmsg_recv (self->actor);
    if (msg)
        s_absorb (self, &msg);
}

int
vdgx_spares_take (vdgx_spares_t *self, const char *path)
{
    assert (self && path);
    s_spare_t *spare = (s_spare_t *) zlistx_first (self->ready);
    if (spare)
        zlistx_detach_cur (self->ready);
    s_ask (self);
    if (!spare) {
        errno = EAGAIN;
        return -1;
    }
    int fd = spare->fd;
    if (rename (spare->path, path)) {
        int err = errno;
        close (fd);
        unlink (spare->path);
        s_spare_destroy (&spare);
        errno = err;
        return -1;
    }
    s_spare_destroy (&spare);
    return fd;
}

zsock_t *
vdgx_spares_sock (vdgx_spares_t *self)
{
    assert (self);
    return zactor_sock (self->actor);
}

size_t
vdgx_spares_ready (vdgx_spares_t *self)
{
    assert (self);
    return zlistx_size (self->ready);
}

void
vdgx_spares_destroy (vdgx_spares_t **self_p)
{
    assert (self_p);
    vdgx_spares_t *self = *self_p;
    if (!self)
        return;
    //  Everything the actor sent before STOPPED is read, so no descriptor is left behind.
    zstr_send (self->actor, "STOP");
    while (true) {
        zmsg_t *msg = zmsg_recv (self->actor);
        if (!msg || s_absorb (self, &msg))
            break;
    }
    zactor_destroy (&self->actor);
    s_spare_t *spare;
    while ((spare = (s_spare_t *) zlistx_detach (self->ready, NULL))) {
        close (spare->fd);
        unlink (spare->path);
        s_spare_destroy (&spare);
    }
    zlistx_destroy (&self->ready);
    free (self);
    *self_p = NULL;
}

void
vdgx_spares_test (bool verbose)
{
    printf (" * vdgx_spares: ");
    char dir [] = "/tmp/vdgx-spares-XXXXXX";
    assert (mkdtemp (dir));
    vdgx_spares_t *spares = vdgx_spares_new (dir, 4);
    //  The first batch arrives on the socket.
    zpoller_t *poller = zpoller_new (vdgx_spares_sock (spares), NULL);
    assert (zpoller_wait (poller, 5000));
    vdgx_spares_recv (spares);
    assert (vdgx_spares_ready (spares) == 4);
    //  Taking one renames it into place, open and empty; the fd writes to the new name.
    char path [4096];
    snprintf (path, sizeof path, "%s/job.1.part", dir);
    int fd = vdgx_spares_take (spares, path);
    assert (fd >= 0);
    assert (write (fd, "abc", 3) == 3);
    close (fd);
    struct stat sb;
    assert (stat (path, &sb) == 0 && sb.st_size == 3);
    unlink (path);
    //  Draining the pool asks for more; an empty pool says EAGAIN.
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/job.%d.part", dir, i + 2);
        fd = vdgx_spares_take (spares, path);
        assert (fd >= 0);
        close (fd);
        unlink (path);
    }
    errno = 0;
    assert (vdgx_spares_take (spares, path) == -1 && errno == EAGAIN);
    assert (zpoller_wait (poller, 5000));
    vdgx_spares_recv (spares);
    assert (vdgx_spares_ready (spares) > 0);
    //  A rename that cannot happen (no such folder): -1, and the spare is removed.
    size_t before = vdgx_spares_ready (spares);
    assert (vdgx_spares_take (spares, "/tmp/vdgx-spares-no-such-dir/x") == -1);
    assert (vdgx_spares_ready (spares) == before - 1);
    zpoller_destroy (&poller);
    //  Destroy removes what was not taken, including a batch still in the pipe.
    vdgx_spares_destroy (&spares);
    assert (spares == NULL);
    assert (rmdir (dir) == 0);          //  empty: no spare left behind
    if (verbose)
        printf ("(pool of 4) ");
    printf ("OK\n");
}
