/*  vdgx_storeguard.h - the broker's view of whether its job store can write.

    The job store is SQLite plus output files on one disk. When a write fails (disk full,
    read-only file system, I/O error) the broker must not carry on as if it had worked: a
    job whose dispatch was not recorded would be dispatched again and again with an
    attempt count that never persists. The guard sits between the broker and the store
    for state changes: a change that cannot be written is kept here (and read back from
    here) until it can, the store is `degraded` (the broker stops dispatching and refuses
    submits with 503 + Retry-After), and a probe every few seconds (a synced 64 KiB block
    in DIR/tmp and one committed row) finds out when space is back; then the kept changes
    are written in order and the store is `ok` again.

    Group commit: inside a batch (vdgx_jobstore_begin/commit) a write only fails for good
    at COMMIT, which rolls the whole batch back. The guard keeps a copy of every change
    saved in the open batch; the broker reports the COMMIT's outcome (committed), and on
    failure those changes become waiting changes like any other. The copy is kept until the
    syncer reports the batch durable (vdgx_storeguard_synced): when an fsync fails, the
    batch's changes wait to be written again too (see docs/ARCHITECTURE.md for why a later
    sync alone proves nothing), and recovery ends with a checkpoint into the main file.
*/
#ifndef VDGX_STOREGUARD_H_INCLUDED
#define VDGX_STOREGUARD_H_INCLUDED

#include "vdgx_jobstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_storeguard_t vdgx_storeguard_t;

//  Guards store (borrowed; it must outlive the guard).
vdgx_storeguard_t *vdgx_storeguard_new (vdgx_jobstore_t *store);
void vdgx_storeguard_destroy (vdgx_storeguard_t **self_p);

//  Writes every mutable column of job. When the store refuses, the record is kept to be
//  written later, the store becomes degraded, and -1 is returned.
int vdgx_storeguard_save (vdgx_storeguard_t *self, const vdgx_jobrec_t *job);
//  The job as last saved, changes still waiting included. 0, or -1 when not found.
int vdgx_storeguard_get (vdgx_storeguard_t *self, const char *id, vdgx_jobrec_t *job);
//  The broker's batch ended: rc is vdgx_jobstore_commit's. On failure every change saved
//  in the batch waits to be written, the store is degraded, and the ids of the jobs the
//  batch inserted (noted with vdgx_storeguard_inserted) are returned: they are not in the
//  store, the caller takes them out of its queues. NULL when there are none. Caller
//  destroys the list.
//  On success the batch goes to the syncer under ticket with paths (its files, borrowed):
//  the guard keeps a copy of its changes and files until vdgx_storeguard_synced says.
zlist_t *vdgx_storeguard_committed (vdgx_storeguard_t *self, int rc, uint64_t ticket,
                                    zlist_t *paths);
//  The syncer reported ticket (and every ticket before it) with rc (0, or -1 when an fsync
//  failed). A failure makes the store degraded and `unsynced`: the changes of the batches
//  reported then, and of every batch reported until recovery, wait to be written again
//  and their files to be synced again; recovery ends with a TRUNCATE checkpoint.
void vdgx_storeguard_synced (vdgx_storeguard_t *self, uint64_t ticket, int rc);
//  A sync failed and the store has not recovered: no batch is known durable meanwhile.
bool vdgx_storeguard_unsynced (vdgx_storeguard_t *self);
//  A job was inserted in the open batch.
void vdgx_storeguard_inserted (vdgx_storeguard_t *self, const char *id);
//  Drops a waiting change (the job was deleted).
void vdgx_storeguard_forget (vdgx_storeguard_t *self, const char *id);
//  Another write of the store failed (an insert, an output file): degraded, with reason.
void vdgx_storeguard_fault (vdgx_storeguard_t *self, const char *reason);
bool vdgx_storeguard_degraded (vdgx_storeguard_t *self);
//  Why it is degraded ("" when not).
const char *vdgx_storeguard_reason (vdgx_storeguard_t *self);
//  Changes waiting to be written.
size_t vdgx_storeguard_unsaved (vdgx_storeguard_t *self);
//  Times the store became degraded since the start.
uint64_t vdgx_storeguard_faults (vdgx_storeguard_t *self);
//  When degraded: probes the store and writes the waiting changes. 0 when the store is
//  healthy (again), -1 while it is still degraded.
int vdgx_storeguard_recover (vdgx_storeguard_t *self);

void vdgx_storeguard_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
