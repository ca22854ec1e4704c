/*  vdgx_storeguard.c - degraded-store handling (see the header).
*/
#include "vdgx_storeguard.h"
#include "vdgx_storecheck.h"
#include "vdgx_log.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _vdgx_storeguard_t {
    vdgx_jobstore_t *store;
    zhashx_t *unsaved;          //  job id -> vdgx_jobrec_t * (latest change not written)
    zlistx_t *order;            //  job ids in the order of their first unsaved change
    zhashx_t *batch;            //  job id -> vdgx_jobrec_t *: saved in the open batch
    zlistx_t *batch_order;      //  their ids, in order
    zlist_t *inserted;          //  ids inserted in the open batch
    zlistx_t *syncing;          //  s_syncing_t: committed, not yet reported durable
    zlist_t *resync;            //  files of batches whose sync failed (synced on recovery)
    bool unsynced;              //  a sync failed: nothing is durable until recovery
    bool degraded;
    char reason [256];
    uint64_t faults;
};

static void
s_rec_destroy (void **item_p)
{
    vdgx_jobrec_t *job = (vdgx_jobrec_t *) *item_p;
    if (job) {
        vdgx_jobrec_clear (job);
        free (job);
        *item_p = NULL;
    }
}

//  A change (job) or a file (path) of a committed batch, until its ticket is durable.
typedef struct {
    uint64_t ticket;
    vdgx_jobrec_t *job;
    char *path;
} s_syncing_t;

static void
s_syncing_destroy (void **item_p)
{
    s_syncing_t *item = (s_syncing_t *) *item_p;
    if (item) {
        s_rec_destroy ((void **) &item->job);
        free (item->path);
        free (item);
        *item_p = NULL;
    }
}

static uint8_t *
s_blob_dup (const uint8_t *data, size_t size)
{
    if (!data || !size)
        return NULL;
    uint8_t *copy = (uint8_t *) malloc (size);
    assert (copy);
    memcpy (copy, data, size);
    return copy;
}

static void
s_rec_copy (vdgx_jobrec_t *dst, const vdgx_jobrec_t *src)
{
    *dst = *src;
    dst->request = s_blob_dup (src->request, src->request_size);
    dst->result = s_blob_dup (src->result, src->result_size);
}

vdgx_storeguard_t *
vdgx_storeguard_new (vdgx_jobstore_t *store)
{
    assert (store);
    vdgx_storeguard_t *self = (vdgx_storeguard_t *) zmalloc (sizeof (vdgx_storeguard_t));
    assert (self);
    self->store = store;
    self->unsaved = zhashx_new ();
    zhashx_set_destructor (self->unsaved, s_rec_destroy);
    self->order = zlistx_new ();
    zlistx_set_destructor (self->order, (czmq_destructor *) zstr_free);
    zlistx_set_duplicator (self->order, (czmq_duplicator *) strdup);
    zlistx_set_comparator (self->order, (czmq_comparator *) strcmp);
    self->batch = zhashx_new ();
    zhashx_set_destructor (self->batch, s_rec_destroy);
    self->batch_order = zlistx_new ();
    zlistx_set_destructor (self->batch_order, (czmq_destructor *) zstr_free);
    zlistx_set_duplicator (self->batch_order, (czmq_duplicator *) strdup);
    self->inserted = zlist_new ();
    zlist_autofree (self->inserted);
    self->syncing = zlistx_new ();
    zlistx_set_destructor (self->syncing, s_syncing_destroy);
    self->resync = zlist_new ();
    zlist_autofree (self->resync);
    return self;
}

void
vdgx_storeguard_destroy (vdgx_storeguard_t **self_p)
{
    assert (self_p);
    vdgx_storeguard_t *self = *self_p;
    if (self) {
        if (zhashx_size (self->unsaved))
            vdgx_log_error ("store.unsaved", "jobs=%zu message=\"changes lost at shutdown;"
                            " these jobs are recovered from their last saved state\"",
                            zhashx_size (self->unsaved));
        zhashx_destroy (&self->unsaved);
        zlistx_destroy (&self->order);
        zhashx_destroy (&self->batch);
        zlistx_destroy (&self->batch_order);
        zlist_destroy (&self->inserted);
        zlistx_destroy (&self->syncing);
        zlist_destroy (&self->resync);
        free (self);
        *self_p = NULL;
    }
}

void
vdgx_storeguard_fault (vdgx_storeguard_t *self, const char *reason)
{
    assert (self && reason);
    if (!self->degraded) {
        self->faults++;
        vdgx_log_error ("store.degraded", "reason=\"%s\" message=\"dispatch paused, submits"
                        " refused until the store can write again\"", reason);
    }
    self->degraded = true;
    snprintf (self->reason, sizeof self->reason, "%s", reason);
}

static void
s_keep (vdgx_storeguard_t *self, const vdgx_jobrec_t *job)
{
    vdgx_jobrec_t *copy = (vdgx_jobrec_t *) zmalloc (sizeof (vdgx_jobrec_t));
    assert (copy);
    s_rec_copy (copy, job);
    if (!zhashx_lookup (self->unsaved, job->id))
        zlistx_add_end (self->order, (void *) job->id);
    zhashx_update (self->unsaved, job->id, copy);
}

int
vdgx_storeguard_save (vdgx_storeguard_t *self, const vdgx_jobrec_t *job)
{
    assert (self && job);
    //  Changes are written in order: while older ones wait, this one waits behind them.
    if (!self->degraded && vdgx_jobstore_update (self->store, job) == 0) {
        zhashx_delete (self->unsaved, job->id);
        if (vdgx_jobstore_pending (self->store)) {
            //  In an open transaction: durable only if its COMMIT works.
            vdgx_jobrec_t *copy = (vdgx_jobrec_t *) zmalloc (sizeof (vdgx_jobrec_t));
            assert (copy);
            s_rec_copy (copy, job);
            if (!zhashx_lookup (self->batch, job->id))
                zlistx_add_end (self->batch_order, (void *) job->id);
            zhashx_update (self->batch, job->id, copy);
        }
        return 0;
    }
    s_keep (self, job);
    if (!self->degraded)
        vdgx_storeguard_fault (self, "cannot write a job's state to the database");
    return -1;
}

zlist_t *
vdgx_storeguard_committed (vdgx_storeguard_t *self, int rc, uint64_t ticket, zlist_t *paths)
{
    assert (self);
    zlist_t *lost = NULL;
    if (rc) {
        for (const char *id = (const char *) zlistx_first (self->batch_order); id;
             id = (const char *) zlistx_next (self->batch_order)) {
            const vdgx_jobrec_t *job = (const vdgx_jobrec_t *) zhashx_lookup (self->batch, id);
            if (job)
                s_keep (self, job);
        }
        vdgx_storeguard_fault (self, "the job store could not commit (disk full or I/O error)");
        if (zlist_size (self->inserted)) {
            lost = self->inserted;
            self->inserted = zlist_new ();
            zlist_autofree (self->inserted);
            //  An insert that did not commit is no job: nothing of it waits to be written.
            for (const char *id = (const char *) zlist_first (lost); id;
                 id = (const char *) zlist_next (lost))
                vdgx_storeguard_forget (self, id);
        }
    }
    else {
        //  Committed, not yet durable: the changes and files stay here until the syncer
        //  reports the ticket (vdgx_storeguard_synced).
        for (const char *id = (const char *) zlistx_first (self->batch_order); id;
             id = (const char *) zlistx_next (self->batch_order)) {
            const vdgx_jobrec_t *job = (const vdgx_jobrec_t *) zhashx_lookup (self->batch, id);
            if (!job)
                continue;
            s_syncing_t *item = (s_syncing_t *) zmalloc (sizeof (s_syncing_t));
            assert (item);
            item->ticket = ticket;
            item->job = (vdgx_jobrec_t *) zmalloc (sizeof (vdgx_jobrec_t));
            assert (item->job);
            s_rec_copy (item->job, job);
            zlistx_add_end (self->syncing, item);
        }
        for (const char *path = paths? (const char *) zlist_first (paths): NULL; path;
             path = (const char *) zlist_next (paths)) {
            s_syncing_t *item = (s_syncing_t *) zmalloc (sizeof (s_syncing_t));
            assert (item);
            item->ticket = ticket;
            item->path = strdup (path);
            zlistx_add_end (self->syncing, item);
        }
    }
    zhashx_purge (self->batch);
    zlistx_purge (self->batch_order);
    zlist_purge (self->inserted);
    return lost;
}

void
vdgx_storeguard_synced (vdgx_storeguard_t *self, uint64_t ticket, int rc)
{
    assert (self);
    if (rc) {
        self->unsynced = true;
        vdgx_storeguard_fault (self, "an fsync of the job store failed (disk full or I/O error)");
    }
    s_syncing_t *item;
    while ((item = (s_syncing_t *) zlistx_first (self->syncing)) && item->ticket <= ticket) {
        if (self->unsynced) {
            //  Not known to be on disk: written again, and synced, on recovery. A change
            //  made since (kept while degraded) is newer and wins.
            if (item->job && !zhashx_lookup (self->unsaved, item->job->id))
                s_keep (self, item->job);
            if (item->path)
                zlist_append (self->resync, item->path);
        }
        zlistx_delete (self->syncing, zlistx_cursor (self->syncing));
    }
}

bool
vdgx_storeguard_unsynced (vdgx_storeguard_t *self)
{
    assert (self);
    return self->unsynced;
}

void
vdgx_storeguard_inserted (vdgx_storeguard_t *self, const char *id)
{
    assert (self && id);
    if (vdgx_jobstore_pending (self->store))
        zlist_append (self->inserted, (void *) id);
}

int
vdgx_storeguard_get (vdgx_storeguard_t *self, const char *id, vdgx_jobrec_t *job)
{
    assert (self && id && job);
    const vdgx_jobrec_t *kept = (const vdgx_jobrec_t *) zhashx_lookup (self->unsaved, id);
    if (kept) {
        s_rec_copy (job, kept);
        return 0;
    }
    return vdgx_jobstore_get (self->store, id, job);
}

void
vdgx_storeguard_forget (vdgx_storeguard_t *self, const char *id)
{
    assert (self && id);
    if (zhashx_lookup (self->unsaved, id)) {
        zhashx_delete (self->unsaved, id);
        void *handle = zlistx_find (self->order, (void *) id);
        if (handle)
            zlistx_delete (self->order, handle);
    }
}

bool
vdgx_storeguard_degraded (vdgx_storeguard_t *self)
{
    assert (self);
    return self->degraded;
}

const char *
vdgx_storeguard_reason (vdgx_storeguard_t *self)
{
    assert (self);
    return self->degraded? self->reason: "";
}

size_t
vdgx_storeguard_unsaved (vdgx_storeguard_t *self)
{
    assert (self);
    return zhashx_size (self->unsaved);
}

uint64_t
vdgx_storeguard_faults (vdgx_storeguard_t *self)
{
    assert (self);
    return self->faults;
}

int
vdgx_storeguard_recover (vdgx_storeguard_t *self)
{
    assert (self);
    if (!self->degraded)
        return 0;
    char why [256];
    if (vdgx_jobstore_probe (self->store, why, sizeof why)) {
        if (!streq (why, self->reason))
            snprintf (self->reason, sizeof self->reason, "%s", why);
        return -1;
    }
    const char *id;
    while ((id = (const char *) zlistx_first (self->order))) {
        const vdgx_jobrec_t *job = (const vdgx_jobrec_t *) zhashx_lookup (self->unsaved, id);
        if (job && vdgx_jobstore_update (self->store, job))
            return -1;
        zhashx_delete (self->unsaved, id);
        zlistx_delete (self->order, zlistx_cursor (self->order));
    }
    if (self->unsynced) {
        //  After a failed fsync the kernel may have dropped the failed pages' dirty state
        //  (a later fsync of the same file can succeed without writing them), so no later
        //  sync of the WAL proves anything. The changes were written again above; now the
        //  result files of the failed batches are synced again, and a TRUNCATE checkpoint
        //  copies the whole WAL into the main file, syncs that, and empties the WAL (a
        //  frame of it that never reached the disk cannot cut the WAL short any more).
        const char *path;
        while ((path = (const char *) zlist_first (self->resync))) {
            int fd = open (path, O_RDONLY | O_CLOEXEC);
            int err = fd < 0? (errno == ENOENT? 0: errno): fsync (fd)? errno: 0;
            if (fd >= 0)
                close (fd);
            if (err) {
                snprintf (self->reason, sizeof self->reason, "cannot sync %s: %s", path,
                          strerror (err));
                return -1;
            }
            free (zlist_pop (self->resync));
        }
        if (vdgx_jobstore_checkpoint (self->store)) {
            snprintf (self->reason, sizeof self->reason,
                      "cannot checkpoint the job store after a failed fsync");
            return -1;
        }
        self->unsynced = false;
    }
    self->degraded = false;
    self->reason [0] = 0;
    vdgx_log_info ("store.recovered", "message=\"the store writes again; dispatch resumes\"");
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Selftest: a real store; faults as the broker reports them, and a probe that fails
//  because DIR/tmp is not a folder any more (a full disk is the chaos test's business).

void
vdgx_storeguard_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_storeguard: ");
    char dir [] = "/tmp/vdgx-storeguard-XXXXXX";
    assert (mkdtemp (dir));
    char error [256];
    vdgx_jobstore_t *store = vdgx_jobstore_new (dir, error, sizeof error);
    assert (store);
    vdgx_storeguard_t *guard = vdgx_storeguard_new (store);
    assert (!vdgx_storeguard_degraded (guard) && vdgx_storeguard_recover (guard) == 0);
    vdgx_jobrec_t job, got;
    memset (&job, 0, sizeof job);
    snprintf (job.id, sizeof job.id, "g1");
    snprintf (job.model, sizeof job.model, "m");
    snprintf (job.state, sizeof job.state, "queued");
    job.request = (uint8_t *) strdup ("\x80");
    job.request_size = 1;
    assert (vdgx_jobstore_insert (store, &job) == 0);
    snprintf (job.state, sizeof job.state, "running");
    job.attempt = 1;
    assert (vdgx_storeguard_save (guard, &job) == 0);
    //  A fault (as a failed output write reports it): later changes wait in order and
    //  are read back from the guard; the store still holds the last written state.
    vdgx_storeguard_fault (guard, "disk full");
    assert (vdgx_storeguard_degraded (guard) && vdgx_storeguard_faults (guard) == 1);
    assert (streq (vdgx_storeguard_reason (guard), "disk full"));
    job.attempt = 2;
    assert (vdgx_storeguard_save (guard, &job) == -1);
    snprintf (job.state, sizeof job.state, "completed");
    assert (vdgx_storeguard_save (guard, &job) == -1);
    assert (vdgx_storeguard_unsaved (guard) == 1);
    assert (vdgx_storeguard_get (guard, "g1", &got) == 0 && streq (got.state, "completed")
            && got.attempt == 2 && got.request_size == 1);
    vdgx_jobrec_clear (&got);
    assert (vdgx_jobstore_get (store, "g1", &got) == 0 && streq (got.state, "running")
            && got.attempt == 1);
    vdgx_jobrec_clear (&got);
    //  The probe works (the disk was never full): the waiting change is written.
    assert (vdgx_storeguard_recover (guard) == 0 && !vdgx_storeguard_degraded (guard));
    assert (vdgx_storeguard_unsaved (guard) == 0);
    assert (vdgx_jobstore_get (store, "g1", &got) == 0 && streq (got.state, "completed"));
    vdgx_jobrec_clear (&got);
    //  A probe that fails keeps the store degraded: the tmp folder is replaced by a file.
    vdgx_storeguard_fault (guard, "test");
    char tmp [4096];
    snprintf (tmp, sizeof tmp, "%s/tmp", dir);
    assert (rmdir (tmp) == 0);
    FILE *f = fopen (tmp, "w");
    assert (f);
    fclose (f);
    assert (vdgx_storeguard_recover (guard) == -1 && vdgx_storeguard_degraded (guard));
    assert (strstr (vdgx_storeguard_reason (guard), "cannot"));
    unlink (tmp);
    assert (mkdir (tmp, 0750) == 0);
    assert (vdgx_storeguard_recover (guard) == 0);
    assert (vdgx_storeguard_faults (guard) == 2);
    //  Group commit: a batch whose COMMIT failed (reported by the broker): its changes wait,
    //  its inserts are handed back. (The COMMIT itself worked here; the guard only keeps
    //  the books the broker asks it to.)
    vdgx_jobstore_begin (store);
    snprintf (job.state, sizeof job.state, "failed");
    assert (vdgx_storeguard_save (guard, &job) == 0);
    vdgx_jobrec_t job2;
    memset (&job2, 0, sizeof job2);
    snprintf (job2.id, sizeof job2.id, "g2");
    snprintf (job2.model, sizeof job2.model, "m");
    snprintf (job2.state, sizeof job2.state, "queued");
    job2.request = (uint8_t *) "\x80";
    job2.request_size = 1;
    assert (vdgx_jobstore_insert (store, &job2) == 0);
    vdgx_storeguard_inserted (guard, "g2");
    assert (vdgx_jobstore_commit (store) == 0);
    zlist_t *lost = vdgx_storeguard_committed (guard, -1, 0, NULL);
    assert (lost && zlist_size (lost) == 1 && streq ((char *) zlist_first (lost), "g2"));
    zlist_destroy (&lost);
    assert (vdgx_storeguard_degraded (guard) && vdgx_storeguard_unsaved (guard) == 1);
    assert (vdgx_storeguard_recover (guard) == 0 && vdgx_storeguard_faults (guard) == 3);
    //  A batch that committed and synced: nothing kept.
    vdgx_jobstore_begin (store);
    assert (vdgx_storeguard_save (guard, &job) == 0);
    assert (vdgx_jobstore_commit (store) == 0);
    assert (vdgx_storeguard_committed (guard, 0, 1, NULL) == NULL);
    vdgx_storeguard_synced (guard, 1, 0);
    assert (!vdgx_storeguard_degraded (guard) && vdgx_storeguard_unsaved (guard) == 0);
    //  A batch whose sync failed (as the syncer reports it; the real fsync failure is the
    //  broker.sync_failure test's): degraded and unsynced; its change waits to be written
    //  again and its file to be synced again, and so does the next batch's even though its
    //  own sync worked (a later fsync proves nothing); recovery checkpoints.
    snprintf (job.state, sizeof job.state, "completed");
    vdgx_jobstore_begin (store);
    assert (vdgx_storeguard_save (guard, &job) == 0);
    assert (vdgx_jobstore_commit (store) == 0);
    zlist_t *paths = zlist_new ();
    zlist_autofree (paths);
    char file [4096];
    snprintf (file, sizeof file, "%s/jobs.db", dir);
    zlist_append (paths, file);
    assert (vdgx_storeguard_committed (guard, 0, 2, paths) == NULL);
    vdgx_jobstore_begin (store);
    assert (vdgx_storeguard_save (guard, &job2) == 0);
    assert (vdgx_jobstore_commit (store) == 0);
    assert (vdgx_storeguard_committed (guard, 0, 3, paths) == NULL);
    zlist_destroy (&paths);
    vdgx_storeguard_synced (guard, 2, -1);
    assert (vdgx_storeguard_degraded (guard) && vdgx_storeguard_unsynced (guard));
    assert (vdgx_storeguard_faults (guard) == 4 && vdgx_storeguard_unsaved (guard) == 1);
    assert (strstr (vdgx_storeguard_reason (guard), "fsync"));
    vdgx_storeguard_synced (guard, 3, 0);
    assert (vdgx_storeguard_unsynced (guard) && vdgx_storeguard_unsaved (guard) == 2);
    assert (vdgx_storeguard_get (guard, "g1", &got) == 0 && streq (got.state, "completed"));
    vdgx_jobrec_clear (&got);
    assert (vdgx_storeguard_recover (guard) == 0);
    assert (!vdgx_storeguard_degraded (guard) && !vdgx_storeguard_unsynced (guard));
    assert (vdgx_storeguard_unsaved (guard) == 0);
    assert (vdgx_jobstore_get (store, "g1", &got) == 0 && streq (got.state, "completed"));
    vdgx_jobrec_clear (&got);
    char wal [4096];
    struct stat st;
    snprintf (wal, sizeof wal, "%s/jobs.db-wal", dir);
    assert (stat (wal, &st) == 0 && st.st_size == 0);       //  checkpointed, emptied
    vdgx_storeguard_forget (guard, "g1");
    vdgx_jobrec_clear (&job);
    vdgx_storeguard_destroy (&guard);
    assert (guard == NULL);
    vdgx_jobstore_destroy (&store);
    vdgx_storecheck_remove (dir);
    printf ("OK\n");
}
