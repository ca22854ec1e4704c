/*  vdgx_jobstore.h - the broker's durable job store: SQLite (WAL) plus output files.

    Tables: jobs (one row per job, request and result kept as msgpack blobs),
    events (state changes per job), models (every model ever known).
    Outputs live in DIR/out/<id>.mp4; a result is streamed into DIR/tmp/<id>.<attempt>.part
    and renamed into place only after its size and sha256 match what the worker
    claimed (atomic: readers see a whole file or none).

    Durability: journal_mode=WAL with synchronous=FULL, so a COMMIT returns only
    after the WAL is synced: "no accepted job is ever lost" holds across power
    loss too, not only a broker crash (or synchronous=NORMAL with the caller
    syncing the WAL before it relies on a batch: vdgx_jobstore_defer_sync). Group commit: between vdgx_jobstore_begin
    and vdgx_jobstore_commit every write goes into one transaction (opened by the
    first write), so the broker pays one WAL sync per batch of messages, not one
    per state change; outside a batch each write commits on its own. A result
    file is synced once (in a batch: every file of the batch, then the out/
    folder once, just before the COMMIT), so a committed `completed` row always
    has its whole file.
    Statements are compiled once and kept. The health counts (jobs, output bytes)
    are kept up to date by the writes, not counted by a scan.
*/
#ifndef VDGX_JOBSTORE_H_INCLUDED
#define VDGX_JOBSTORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_jobstore_t vdgx_jobstore_t;

//  One job row. Blobs are owned (freed by vdgx_jobrec_clear).
typedef struct {
    char id [40];
    char model [65];
    char state [16];            //  queued running completed failed cancelled expired
    int priority;               //  0 high .. 2 low
    int64_t seq;                //  queue order within a priority
    char idem_key [129];
    char cache_key [65];
    uint8_t *request;           //  msgpack generate request
    size_t request_size;
    uint32_t attempt;
    double created_at, started_at, finished_at;
    char err_code [32];
    char err_msg [256];
    uint8_t *result;            //  msgpack result map (completed)
    size_t result_size;
    uint64_t size;
    char sha256 [65];
    bool cached;
    char owner [65];            //  who submitted it ("" = the operator / no auth)
} vdgx_jobrec_t;

void vdgx_jobrec_clear (vdgx_jobrec_t *job);
bool vdgx_jobrec_terminal (const vdgx_jobrec_t *job);
bool vdgx_state_terminal (const char *state);

//  Opens or creates DIR/jobs.db, DIR/out/, DIR/tmp/ (stale temp files are removed).
//  Returns NULL with a message in error (size errsize) on failure.
vdgx_jobstore_t *vdgx_jobstore_new (const char *dir, char *error, size_t errsize);
void vdgx_jobstore_destroy (vdgx_jobstore_t **self_p);

//  Next queue sequence number (continues after a restart).
int64_t vdgx_jobstore_next_seq (vdgx_jobstore_t *self);
int vdgx_jobstore_insert (vdgx_jobstore_t *self, const vdgx_jobrec_t *job);
//  Writes every mutable column of job.
int vdgx_jobstore_update (vdgx_jobstore_t *self, const vdgx_jobrec_t *job);
//  0 and job filled when found, -1 when not found or on error (job cleared).
int vdgx_jobstore_get (vdgx_jobstore_t *self, const char *id, vdgx_jobrec_t *job);
int vdgx_jobstore_find_idem (vdgx_jobstore_t *self, const char *key, vdgx_jobrec_t *job);
//  A completed job with this cache key whose output file still exists.
int vdgx_jobstore_find_cached (vdgx_jobstore_t *self, const char *cache_key, vdgx_jobrec_t *job);
//  Removes the job, its events and its output. 0, or -1 when not found.
int vdgx_jobstore_delete (vdgx_jobstore_t *self, const char *id);
//  Jobs in id (= creation) order after `after` ("" = from the start), or with desc newest
//  first below `after`; optional filters ("" = any). Returns a list of vdgx_jobrec_t *
//  (caller destroys; items are freed with it), at most limit + 1 items so the caller can
//  tell has_more. Both orders walk the primary key from the cursor: a page costs its size.
zlistx_t *vdgx_jobstore_list (vdgx_jobstore_t *self, const char *state, const char *model,
                              const char *after, size_t limit, bool desc);
//  The same, only jobs of owner (NULL = anyone's).
zlistx_t *vdgx_jobstore_list_owned (vdgx_jobstore_t *self, const char *owner, const char *state,
                                    const char *model, const char *after, size_t limit,
                                    bool desc);
//  Calls visit for every job not in a terminal state (queued or running), by priority then
//  seq (recovery). The record has only id, model, state, priority, seq, attempt, owner and
//  request_size (no blobs: request is NULL) and is valid during the call. Returns the number visited, or -1 on error.
typedef void (vdgx_jobstore_visit_fn) (const vdgx_jobrec_t *job, void *arg);
int vdgx_jobstore_each_unfinished (vdgx_jobstore_t *self, vdgx_jobstore_visit_fn *visit, void *arg);
int vdgx_jobstore_add_event (vdgx_jobstore_t *self, const char *id, const char *type,
                             const char *state, const char *detail, double ts);
size_t vdgx_jobstore_event_count (vdgx_jobstore_t *self, const char *id);
//  Known models.
int vdgx_jobstore_model_add (vdgx_jobstore_t *self, const char *name);
zlist_t *vdgx_jobstore_models (vdgx_jobstore_t *self);     //  autofree strings
//  A model's limits as its workers last advertised them (PROTOCOL.md 5.8), kept as the
//  msgpack bytes the broker encodes, so they hold from the broker's start, before any worker
//  re-registers. get: a new frame, or NULL when none is stored.
int vdgx_jobstore_limits_set (vdgx_jobstore_t *self, const char *name, const void *data, size_t size);
zframe_t *vdgx_jobstore_limits_get (vdgx_jobstore_t *self, const char *name);
//  Forgets a model's stored limits (an operator's reset). 0 or -1.
int vdgx_jobstore_limits_delete (vdgx_jobstore_t *self, const char *name);

//  Output files. Paths are written into buf.
void vdgx_jobstore_output_path (vdgx_jobstore_t *self, const char *id, char *buf, size_t size);
void vdgx_jobstore_temp_path (vdgx_jobstore_t *self, const char *id, uint32_t attempt,
                              char *buf, size_t size);
//  Verifies the temp file of (id, attempt) against size and sha256 and renames it to the
//  output path, durable before the job can be stored completed (alone: synced now; in a
//  batch: synced by vdgx_jobstore_commit, before the COMMIT). 0, or -1 with a reason in
//  error (the temp file is removed).
int vdgx_jobstore_commit_output (vdgx_jobstore_t *self, const char *id, uint32_t attempt,
                                 uint64_t size, const char *sha256, char *error, size_t errsize);
//  The same, for a caller that hashed the bytes as it wrote them: `written` is that
//  SHA-256 (hex), compared with `sha256` instead of hashing the file again.
int vdgx_jobstore_commit_output_hashed (vdgx_jobstore_t *self, const char *id, uint32_t attempt,
                                        uint64_t size, const char *sha256, const char *written,
                                        char *error, size_t errsize);
//  Gives job `id` the output of job `from` (hard link, or a copy). 0 or -1.
int vdgx_jobstore_share_output (vdgx_jobstore_t *self, const char *from, const char *id);
//  Retention: deletes terminal jobs finished before now - retain_s (0 = keep), then the
//  oldest completed ones while outputs exceed retain_bytes (0 = no cap). Returns the
//  number of jobs deleted.
size_t vdgx_jobstore_gc (vdgx_jobstore_t *self, double now, double retain_s, uint64_t retain_bytes);
//  Health: 0 when the database answers; counts (kept up to date, no scan) filled.
int vdgx_jobstore_health (vdgx_jobstore_t *self, uint64_t *jobs, uint64_t *output_bytes);
//  Group commit. begin: the writes that follow go into one transaction (opened lazily by
//  the first write). commit: syncs the out/ folder when outputs were renamed in, then
//  COMMITs; 0 when everything of the batch is durable, -1 when the COMMIT failed and the
//  whole batch was rolled back. pending: the batch has something to make durable.
void vdgx_jobstore_begin (vdgx_jobstore_t *self);
//  Deferred sync, for a caller that syncs on another thread (vdgx_syncer): synchronous=
//  NORMAL, so a COMMIT does not wait for the disk, and commit does not sync the batch's
//  outputs either; instead each commit leaves the paths to sync, in the order they must
//  be synced (result files, out/, the WAL last), and take_syncs hands them over (a zlist
//  of strings, autofree; NULL when there is nothing). A batch is durable once those are
//  synced. Writes outside a batch are then durable at the next sync.
int vdgx_jobstore_defer_sync (vdgx_jobstore_t *self);
//  Deferred sync turns SQLite's automatic checkpoint off: the WAL's length in frames after
//  the last commit, for the caller to checkpoint elsewhere (vdgx_syncer_checkpoint), and
//  the database file's path for that.
int vdgx_jobstore_wal_frames (vdgx_jobstore_t *self);
const char *vdgx_jobstore_db_path (vdgx_jobstore_t *self);
zlist_t *vdgx_jobstore_take_syncs (vdgx_jobstore_t *self);
//  Deferred sync: the outputs of jobs deleted by the committed batches, which the caller
//  removes only once those batches are durable (zlist of strings, autofree; NULL if none).
zlist_t *vdgx_jobstore_take_unlinks (vdgx_jobstore_t *self);
int vdgx_jobstore_commit (vdgx_jobstore_t *self);
bool vdgx_jobstore_pending (vdgx_jobstore_t *self);
//  Store health when writes failed: writes and syncs a 64 KiB block in DIR/tmp and commits
//  one row. 0 when both worked, -1 with the reason in error (disk full, read-only, I/O).
int vdgx_jobstore_probe (vdgx_jobstore_t *self, char *error, size_t errsize);
//  Copies the WAL back into the main file and empties it, without waiting (run every few
//  seconds, so a lost or truncated -wal file costs seconds of changes, not the store).
//  0, or -1 when it could not run now (a reader holds the WAL).
int vdgx_jobstore_checkpoint (vdgx_jobstore_t *self);
//  Makes the WAL durable in the main file (shutdown).
void vdgx_jobstore_flush (vdgx_jobstore_t *self);

void vdgx_jobstore_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
