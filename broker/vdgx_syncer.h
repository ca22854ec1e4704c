/*  vdgx_syncer.h - makes files durable (fsync) on its own thread, in order, by ticket.

    The broker commits a batch to SQLite without waiting for the disk (WAL, synchronous=
    NORMAL) and hands the files that must reach the disk (the WAL, the batch's result files,
    the out/ folder) to the syncer with a ticket number; it keeps the replies that depend on
    that batch until the syncer reports the ticket done. Meanwhile the broker thread goes on
    routing and dispatching: the disk wait is off the path a worker's next job takes.
    Requests that pile up while one sync runs are merged: each file is synced once for all
    of them, and the reply names the highest ticket covered.

    An actor (a thread behind a pipe): threads share no state, tickets and paths travel as
    messages.
*/
#ifndef VDGX_SYNCER_H_INCLUDED
#define VDGX_SYNCER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_syncer_t vdgx_syncer_t;

vdgx_syncer_t *vdgx_syncer_new (void);
//  Waits for the syncs already asked for, then stops the thread.
void vdgx_syncer_destroy (vdgx_syncer_t **self_p);
//  Asks for every path of *paths_p (a zlist of strings, autofree; consumed, may be NULL or
//  empty) to be synced, in order, under ticket (tickets must grow).
void vdgx_syncer_request (vdgx_syncer_t *self, uint64_t ticket, zlist_t **paths_p);
//  Asks for a checkpoint of the SQLite database at db_path (WAL mode) from the syncer's
//  own connection, after the syncs already asked for: the disk wait of copying the WAL
//  into the database stays off the caller's thread. Nothing is reported back.
void vdgx_syncer_checkpoint (vdgx_syncer_t *self, const char *db_path);
//  The socket that becomes readable when a ticket is done (for a zloop or a poller).
zsock_t *vdgx_syncer_sock (vdgx_syncer_t *self);
//  Reads one report: the highest ticket now durable in *ticket; 0, or -1 when an fsync of
//  that round failed (the files may not be on disk).
int vdgx_syncer_recv (vdgx_syncer_t *self, uint64_t *ticket);

void vdgx_syncer_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
