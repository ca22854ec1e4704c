/*  vdgx_registry.h - the broker's workers, services and hosts.

    Every per-message operation is O(1): workers are found by identity in a
    hash; each service keeps its idle warm and idle cold workers in zlistx
    lists ordered by idle time (dispatch takes the head = longest idle); all
    workers sit in one list ordered by last message received, so heartbeat expiry
    only looks at the head, and in one list ordered by last message sent, so a
    heartbeat tick touches only the workers due a heartbeat (the head, until the
    first that is not due), never a copy of the registry. Per-host walks happen
    only when a cold worker must load (memory arbitration).

    Worker records are plain structs owned by the registry; the broker reads
    and sets their fields and calls vdgx_registry_worker_refresh after a change
    of state or task, which re-files the worker.
*/
#ifndef VDGX_REGISTRY_H_INCLUDED
#define VDGX_REGISTRY_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include "vdgx_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { VDGX_TASK_NONE = 0, VDGX_TASK_JOB, VDGX_TASK_REQUEST, VDGX_TASK_RESEND } vdgx_task_t;

typedef struct _vdgx_registry_t vdgx_registry_t;

typedef struct {
    char *key;                  //  identity as hex (hash key)
    zframe_t *address;          //  routing id
    int proto;                  //  1 = MDP/0.1, 2 = MDP/0.2
    char *service;
    char host [64];
    uint64_t pid;
    vdgx_wstate_state_t state;
    uint64_t rss_bytes, peak_bytes, model_bytes, host_budget_bytes;
    char device [40];
    char precisions [64];       //  comma separated
    char weights_id [130];
    char job [80];              //  as reported by the worker
    bool control;               //  understands CONTROL
    int64_t last_seen;          //  ms, any message
    int64_t last_sent;          //  ms, any message to it (each one counts as a heartbeat)
    int64_t idle_since;         //  ms, when the last task ended
    int64_t last_used;          //  ms, for least-recently-used unload choice
    bool unload_asked;          //  CONTROL unload sent, waiting for cold
    bool draining;              //  CONTROL drain sent or state draining
    //  The broker's view of what the worker is doing.
    vdgx_task_t task;
    char task_id [80];          //  job id (job/resend) or client address hex (request)
    void *task_data;            //  request: the queued request (owned by the broker)
    int64_t task_started;
    zlist_t *pending;           //  job ids the worker still holds (READY pending), autofree
    //  Registry internals.
    void *seen_handle, *sent_handle, *idle_handle, *host_handle;
    zlistx_t *idle_list;
    int counted_state;
} vdgx_rworker_t;

typedef struct {
    char *name;
    size_t workers;
    size_t by_state [VDGX_WSTATE_COUNT];
    zlistx_t *idle_warm, *idle_cold;
    zlistx_t *requests;         //  queued plain requests (broker's items)
    int64_t no_worker_since;    //  ms when the last worker left (or the service appeared)
    char weights_id [130];      //  last reported by a worker
    uint64_t model_bytes;       //  last reported footprint
} vdgx_rservice_t;

vdgx_registry_t *vdgx_registry_new (void);
//  Destructor of the items in a service's requests list (the broker's).
void vdgx_registry_set_request_destructor (vdgx_registry_t *self, czmq_destructor destructor);
void vdgx_registry_destroy (vdgx_registry_t **self_p);

//  Service by name; create makes an empty one.
vdgx_rservice_t *vdgx_registry_service (vdgx_registry_t *self, const char *name, bool create);
//  Drops a service with no workers and no queued requests (services are deleted
//  when they become empty). Returns 0 when removed.
int vdgx_registry_service_remove (vdgx_registry_t *self, const char *name);
//  Services (borrowed records); caller destroys the list.
zlist_t *vdgx_registry_services (vdgx_registry_t *self);
size_t vdgx_registry_service_count (vdgx_registry_t *self);

vdgx_rworker_t *vdgx_registry_worker (vdgx_registry_t *self, const char *key);
//  Registers a worker (cold unless refreshed). address is copied.
vdgx_rworker_t *vdgx_registry_worker_add (vdgx_registry_t *self, const char *key,
                                          zframe_t *address, int proto,
                                          const char *service, int64_t now);
//  Removes and frees the worker; the broker must have handled its task first.
void vdgx_registry_worker_remove (vdgx_registry_t *self, vdgx_rworker_t *worker, int64_t now);
//  Any message from the worker: it moves to the end of the expiry order.
void vdgx_registry_worker_touch (vdgx_registry_t *self, vdgx_rworker_t *worker, int64_t now);
//  Re-files the worker after the broker changed state, task or flags.
void vdgx_registry_worker_refresh (vdgx_registry_t *self, vdgx_rworker_t *worker, int64_t now);
//  Sets the host (moves the worker between host lists).
void vdgx_registry_worker_set_host (vdgx_registry_t *self, vdgx_rworker_t *worker, const char *host);
//  A message went to the worker: it moves to the end of the heartbeat order.
void vdgx_registry_worker_sent (vdgx_registry_t *self, vdgx_rworker_t *worker, int64_t now);
//  The worker that was sent nothing since cutoff (last_sent <= cutoff), or NULL: the next
//  one due a heartbeat. Sending to it (worker_sent) moves it out of the way.
vdgx_rworker_t *vdgx_registry_heartbeat_due (vdgx_registry_t *self, int64_t cutoff);
//  Every worker counts as heard from now (after the broker itself stalled).
void vdgx_registry_touch_all (vdgx_registry_t *self, int64_t now);
//  Every worker counts as heard from ms later than it was, never later than now (the time
//  the broker did not run does not count against them).
void vdgx_registry_credit_all (vdgx_registry_t *self, int64_t ms, int64_t now);
//  Walks every worker without a copy: first, then next until NULL (no changes between).
vdgx_rworker_t *vdgx_registry_first (vdgx_registry_t *self);
vdgx_rworker_t *vdgx_registry_next (vdgx_registry_t *self);
//  The worker that sent nothing since before cutoff, or NULL.
vdgx_rworker_t *vdgx_registry_expired (vdgx_registry_t *self, int64_t cutoff);
//  Best idle worker of the service: warm, then cold, longest idle first. Not removed.
vdgx_rworker_t *vdgx_registry_select (vdgx_registry_t *self, const char *service);
//  The same, among the workers whose precisions include precision ("" = any). Walks the
//  idle lists (only a job that asks for a precision pays for it).
vdgx_rworker_t *vdgx_registry_select_precision (vdgx_registry_t *self, const char *service,
                                                const char *precision);
//  True when the comma-separated list holds name.
bool vdgx_registry_list_has (const char *list, const char *name);
bool vdgx_registry_has_idle_warm (vdgx_registry_t *self, const char *service);
//  Memory arbitration: bytes held by loaded models on host, the host's budget (0 = unknown),
//  and the least recently used idle warm worker there (except one of service `except`).
uint64_t vdgx_registry_host_used (vdgx_registry_t *self, const char *host);
uint64_t vdgx_registry_host_budget (vdgx_registry_t *self, const char *host);
vdgx_rworker_t *vdgx_registry_lru_idle_warm (vdgx_registry_t *self, const char *host);
bool vdgx_registry_host_unloading (vdgx_registry_t *self, const char *host);
//  All workers (borrowed), in expiry order; caller destroys the list.
zlist_t *vdgx_registry_workers (vdgx_registry_t *self);
size_t vdgx_registry_worker_count (vdgx_registry_t *self);

void vdgx_registry_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
