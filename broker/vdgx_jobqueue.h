/*  vdgx_jobqueue.h - per-model priority queues of job ids for the broker.

    Three priorities (high, normal, low), FIFO within one. Each model's queue is an
    order-statistic tree (vdgx_ostree) keyed by (priority, turn), so push, pop, remove
    and the queue position (asked by every submit reply, status and listed job) are
    O(log n) whatever the depth. Each model also keeps its ids in the order they were
    queued (a list sorted by queued_at), so expiry looks only at the oldest ones.
    Each model's queue is bounded; re-queues and recovery may exceed the bound
    because those jobs were already accepted.
*/
#ifndef VDGX_JOBQUEUE_H_INCLUDED
#define VDGX_JOBQUEUE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_JOBQUEUE_PRIORITIES 3

typedef struct _vdgx_jobqueue_t vdgx_jobqueue_t;

//  The hash of the queue's table of ids, for other tables keyed by job id
//  (zhashx_set_key_hasher): FNV-1a with a final mix; zhashx's default hash chains the
//  broker's time-ordered ids badly.
size_t vdgx_jobqueue_id_hash (const void *key);

//  max_per_model: bound of one model's queue (0 = unbounded).
vdgx_jobqueue_t *vdgx_jobqueue_new (size_t max_per_model);
void vdgx_jobqueue_destroy (vdgx_jobqueue_t **self_p);

//  Queue id for model. priority 0 (high) .. 2 (low). front: put it before the
//  others of its priority (a re-queued job keeps its turn). force: ignore the
//  bound (accepted jobs coming back). queued_at: ms timestamp (for expiry).
//  Returns 0, -1 when the model's queue is full, -2 when id is already queued.
int vdgx_jobqueue_push (vdgx_jobqueue_t *self, const char *model, const char *id,
                        int priority, bool front, bool force, int64_t queued_at);
//  Next job of model, or NULL. peek: borrowed; pop: caller frees.
const char *vdgx_jobqueue_peek (vdgx_jobqueue_t *self, const char *model);
char *vdgx_jobqueue_pop (vdgx_jobqueue_t *self, const char *model);
//  0 when id was queued and is removed, -1 otherwise.
int vdgx_jobqueue_remove (vdgx_jobqueue_t *self, const char *id);
bool vdgx_jobqueue_contains (vdgx_jobqueue_t *self, const char *id);
//  1-based position in its model's queue, 0 when not queued.
size_t vdgx_jobqueue_position (vdgx_jobqueue_t *self, const char *id);
size_t vdgx_jobqueue_depth (vdgx_jobqueue_t *self, const char *model);
size_t vdgx_jobqueue_size (vdgx_jobqueue_t *self);
bool vdgx_jobqueue_full (vdgx_jobqueue_t *self, const char *model);
//  Models that have queued jobs; caller destroys the list (strings owned by it).
zlist_t *vdgx_jobqueue_models (vdgx_jobqueue_t *self);
//  The id of model's job queued longest ago (borrowed) and its queued_at in *queued_at_p,
//  or NULL when model has none. Expiry pops from here while queued_at is past the deadline.
const char *vdgx_jobqueue_oldest (vdgx_jobqueue_t *self, const char *model, int64_t *queued_at_p);
//  When id was queued (the push's queued_at), or -1 when it is not queued.
int64_t vdgx_jobqueue_queued_at (vdgx_jobqueue_t *self, const char *id);

void vdgx_jobqueue_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
