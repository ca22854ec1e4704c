/*  vdgx_syncer.c - fsync on a thread of its own, by ticket (see the header).
*/
#include "vdgx_syncer.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <sys/stat.h>

struct _vdgx_syncer_t {
    zactor_t *actor;
};

//  Appends the paths of one request to the round. A path already in the round moves to
//  the end: a WAL synced before the result files of a later request would make that
//  request's rows durable before its files.
static void
s_add_paths (zlistx_t *round, zmsg_t *msg)
{
    char *path;
    while ((path = zmsg_popstr (msg))) {
        for (char *p = (char *) zlistx_first (round); p; p = (char *) zlistx_next (round))
            if (streq (p, path)) {
                zlistx_delete (round, zlistx_cursor (round));
                break;
            }
        zlistx_add_end (round, path);
        free (path);
    }
}

//  0, or -1 when a file could not be synced (a file that is gone was deleted meanwhile:
//  nothing of it is left to sync).
static int
s_sync (const char *path)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT? 0: -1;
    int rc = fsync (fd);
    close (fd);
    return rc? -1: 0;
}

//  Copies the WAL of the job store into its database file from a connection of this
//  thread's own (opened on first use). PASSIVE: never waits for, nor blocks, the broker's
//  writes; what it cannot copy now is copied next time. Failure is not an error of any
//  batch (the WAL still holds every committed frame, synced): it is logged and retried.
static void
s_checkpoint (sqlite3 **db_p, const char *path)
{
    if (!*db_p) {
        if (sqlite3_open_v2 (path, db_p, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL)
            != SQLITE_OK) {
            zsys_warning ("syncer: cannot open %s for checkpoints", path);
            sqlite3_close_v2 (*db_p);
            *db_p = NULL;
            return;
        }
        sqlite3_exec (*db_p, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    }
    int log = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2 (*db_p, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        zsys_warning ("syncer: checkpoint of %s failed: %s", path, sqlite3_errmsg (*db_p));
}

static void
s_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_signal (pipe, 0);
    sqlite3 *db = NULL;         //  for checkpoints
    char *checkpoint = NULL;    //  database to checkpoint after this round
    zlistx_t *round = zlistx_new ();
    zlistx_set_duplicator (round, (czmq_duplicator *) strdup);
    zlistx_set_destructor (round, (czmq_destructor *) zstr_free);
    bool terminated = false;
    while (!terminated) {
        //  One blocking read, then whatever else is already waiting: one round for all.
        uint64_t ticket = 0;
        bool any = false;
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;              //  interrupted: the owner is gone
        while (msg) {
            char *command = zmsg_popstr (msg);
            if (!command || streq (command, "$TERM"))
                terminated = true;
            else
            if (streq (command, "SYNC")) {
                zframe_t *t = zmsg_pop (msg);
                if (t && zframe_size (t) == sizeof (uint64_t)) {
                    memcpy (&ticket, zframe_data (t), sizeof ticket);
                    any = true;
                }
                zframe_destroy (&t);
                s_add_paths (round, msg);
            }
            else
            if (streq (command, "CKPT")) {
                zstr_free (&checkpoint);
                checkpoint = zmsg_popstr (msg);
            }
            free (command);
            zmsg_destroy (&msg);
            if (terminated || !(zsock_events (pipe) & ZMQ_POLLIN))
                break;
            msg = zmsg_recv (pipe);
        }
        if (!any) {
            if (checkpoint && !terminated)
                s_checkpoint (&db, checkpoint);
            zstr_free (&checkpoint);
            continue;
        }
        int rc = 0;
        for (const char *path = (const char *) zlistx_first (round); path;
             path = (const char *) zlistx_next (round))
            if (s_sync (path))
                rc = -1;
        zlistx_purge (round);
        zmsg_t *reply = zmsg_new ();
        zmsg_addmem (reply, &ticket, sizeof ticket);
        zmsg_addmem (reply, &rc, sizeof rc);
        zmsg_send (&reply, pipe);
        //  After the reply: the messages the round held go first, the copy comes after.
        if (checkpoint && !terminated)
            s_checkpoint (&db, checkpoint);
        zstr_free (&checkpoint);
    }
    zstr_free (&checkpoint);
    if (db)
        sqlite3_close_v2 (db);
    zlistx_destroy (&round);
}

vdgx_syncer_t *
vdgx_syncer_new (void)
{
    vdgx_syncer_t *self = (vdgx_syncer_t *) zmalloc (sizeof (vdgx_syncer_t));
    assert (self);
    self->actor = zactor_new (s_actor, NULL);
    assert (self->actor);
    return self;
}

void
vdgx_syncer_destroy (vdgx_syncer_t **self_p)
{
    assert (self_p);
    vdgx_syncer_t *self = *self_p;
    if (self) {
        zactor_destroy (&self->actor);
        free (self);
        *self_p = NULL;
    }
}

void
vdgx_syncer_request (vdgx_syncer_t *self, uint64_t ticket, zlist_t **paths_p)
{
    assert (self);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "SYNC");
    zmsg_addmem (msg, &ticket, sizeof ticket);
    zlist_t *paths = paths_p? *paths_p: NULL;
    if (paths)
        for (const char *p = (const char *) zlist_first (paths); p; p = (const char *) zlist_next (paths))
            zmsg_addstr (msg, p);
    if (paths_p)
        zlist_destroy (paths_p);
    zmsg_send (&msg, self->actor);
}

void
vdgx_syncer_checkpoint (vdgx_syncer_t *self, const char *db_path)
{
    assert (self && db_path);
    zstr_sendx (self->actor, "CKPT", db_path, NULL);
}

zsock_t *
vdgx_syncer_sock (vdgx_syncer_t *self)
{
    assert (self);
    return zactor_sock (self->actor);
}

int
vdgx_syncer_recv (vdgx_syncer_t *self, uint64_t *ticket)
{
    assert (self && ticket);
    zmsg_t *msg = zmsg_recv (self->actor);
    zframe_t *t = msg? zmsg_first (msg): NULL;
    zframe_t *r = msg? zmsg_next (msg): NULL;
    int rc = -1;
    if (t && r && zframe_size (t) == sizeof (uint64_t) && zframe_size (r) == sizeof (int)) {
        memcpy (ticket, zframe_data (t), sizeof *ticket);
        memcpy (&rc, zframe_data (r), sizeof rc);
    }
    zmsg_destroy (&msg);
    return rc;
}

void
vdgx_syncer_test (bool verbose)
{
    printf (" * vdgx_syncer: ");
    //  Merging keeps each path once, at its last place.
    zlistx_t *round = zlistx_new ();
    zlistx_set_duplicator (round, (czmq_duplicator *) strdup);
    zlistx_set_destructor (round, (czmq_destructor *) zstr_free);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "f1");
    zmsg_addstr (msg, "dir");
    zmsg_addstr (msg, "wal");
    s_add_paths (round, msg);
    zmsg_addstr (msg, "f2");
    zmsg_addstr (msg, "dir");
    zmsg_addstr (msg, "wal");
    s_add_paths (round, msg);
    zmsg_destroy (&msg);
    const char *want [] = { "f1", "f2", "dir", "wal" };
    assert (zlistx_size (round) == 4);
    int i = 0;
    for (const char *p = (const char *) zlistx_first (round); p; p = (const char *) zlistx_next (round))
        assert (streq (p, want [i++]));
    zlistx_destroy (&round);

    char dir [] = "/tmp/vdgx-syncer-XXXXXX";
    assert (mkdtemp (dir));
    char file [64];
    snprintf (file, sizeof file, "%s/a", dir);
    FILE *f = fopen (file, "w");
    assert (f);
    fputs ("data", f);
    fclose (f);
    vdgx_syncer_t *syncer = vdgx_syncer_new ();
    //  Tickets come back in order; a gone file is no error; requests may merge.
    for (uint64_t t = 1; t <= 5; t++) {
        zlist_t *paths = zlist_new ();
        zlist_autofree (paths);
        zlist_append (paths, file);
        zlist_append (paths, dir);
        if (t == 3)
            zlist_append (paths, (void *) "/tmp/vdgx-syncer-no-such-file");
        vdgx_syncer_request (syncer, t, &paths);
        assert (paths == NULL);
    }
    uint64_t done = 0, last = 0;
    int replies = 0;
    while (done < 5) {
        assert (vdgx_syncer_recv (syncer, &done) == 0);
        assert (done > last);
        last = done;
        replies++;
    }
    //  No paths at all: still a ticket.
    vdgx_syncer_request (syncer, 6, NULL);
    assert (vdgx_syncer_recv (syncer, &done) == 0 && done == 6);

    //  Checkpoints: a WAL written with the automatic checkpoint off reaches the database
    //  file only through the syncer's own connection.
    char dbfile [64], walfile [80];
    snprintf (dbfile, sizeof dbfile, "%s/t.db", dir);
    snprintf (walfile, sizeof walfile, "%s-wal", dbfile);
    sqlite3 *db = NULL;
    assert (sqlite3_open (dbfile, &db) == SQLITE_OK);
    assert (sqlite3_exec (db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
                          "CREATE TABLE t (v BLOB);", NULL, NULL, NULL) == SQLITE_OK);
    for (int r = 0; r < 64; r++)
        assert (sqlite3_exec (db, "INSERT INTO t VALUES (randomblob(4000))", NULL, NULL, NULL)
                == SQLITE_OK);
    struct stat sb;
    assert (stat (dbfile, &sb) == 0 && sb.st_size < 64 * 4000);
    vdgx_syncer_checkpoint (syncer, dbfile);
    vdgx_syncer_request (syncer, 7, NULL);
    assert (vdgx_syncer_recv (syncer, &done) == 0 && done == 7);
    vdgx_syncer_request (syncer, 8, NULL);      //  answered after the checkpoint ran
    assert (vdgx_syncer_recv (syncer, &done) == 0 && done == 8);
    assert (stat (dbfile, &sb) == 0 && sb.st_size >= 64 * 4000);
    //  A database that cannot be opened is logged, not fatal.
    vdgx_syncer_checkpoint (syncer, "/tmp/vdgx-syncer-no-such-dir/x.db");
    vdgx_syncer_request (syncer, 9, NULL);
    assert (vdgx_syncer_recv (syncer, &done) == 0 && done == 9);
    sqlite3_close (db);
    unlink (dbfile);
    unlink (walfile);
    char shm [80];
    snprintf (shm, sizeof shm, "%s-shm", dbfile);
    unlink (shm);

    vdgx_syncer_destroy (&syncer);
    assert (syncer == NULL);
    unlink (file);
    rmdir (dir);
    if (verbose)
        printf ("(5 requests in %d rounds) ", replies);
    printf ("OK\n");
}
