/*  vdgx_spares.h - empty files made ahead of need, on a thread of their own.

    Each dispatched job gets a new temp file for its output. Creating a file allocates an
    inode, and on some file systems (ext4 without a journal scans for recently deleted
    inodes) that costs far more than the rest of a dispatch: on the broker thread it sat
    between one job's FINAL and the worker's next REQUEST. The spares actor creates empty
    files in the temp folder ahead of time and hands them over open; the broker renames one
    to the job's temp name (a rename, no allocation) and writes through the fd it got. When
    none is ready the caller creates the file itself, as before.

    Spares are named "spare-*" in the temp folder, which the job store empties at start, so
    a crash leaves nothing behind for long. An actor (a thread behind a pipe): threads share
    no state; names and descriptors travel as messages.
*/
#ifndef VDGX_SPARES_H_INCLUDED
#define VDGX_SPARES_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_spares_t vdgx_spares_t;

//  Keeps up to `target` spare files ready in folder dir.
vdgx_spares_t *vdgx_spares_new (const char *dir, int target);
//  Stops the thread, closes and removes the spares not taken.
void vdgx_spares_destroy (vdgx_spares_t **self_p);
//  Renames a ready spare to path and returns its descriptor (open for writing, empty,
//  close-on-exec), or -1 when none is ready (errno EAGAIN) or the rename failed: the
//  caller then creates the file itself. Asks for more when the pool runs low.
int vdgx_spares_take (vdgx_spares_t *self, const char *path);
//  The socket that becomes readable when spares arrive (for a zloop or a poller), and
//  the call that reads them into the pool.
zsock_t *vdgx_spares_sock (vdgx_spares_t *self);
void vdgx_spares_recv (vdgx_spares_t *self);
//  Spares ready now (for tests and metrics).
size_t vdgx_spares_ready (vdgx_spares_t *self);

void vdgx_spares_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
