/*  vdgx_broker.c - the Majordomo broker actor (see the header and docs/PROTOCOL.md).

    Unlike the zguide broker and Titanic: a busy worker's request or job is re-queued when
    the worker dies (with an attempt limit), lookups are hashes and zlistx handles, queued
    requests and jobs for services without workers expire, empty services are deleted, and
    a client retry with the same idempotency key gets the same job instead of a new run.
*/
#include "vdgx_broker.h"
#include "vdgx_acl.h"
#include "vdgx_registry.h"
#include "vdgx_jobqueue.h"
#include "vdgx_jobstore.h"
#include "vdgx_syncer.h"
#include "vdgx_storeguard.h"
#include "vdgx_outcheck.h"
#include "vdgx_storecheck.h"
#include "vdgx_quota.h"
#include "vdgx_ratelimit.h"
#include "vdgx_msg.h"
#include "vdgx_mp.h"
#include "vdgx_sha256.h"
#include "vdgx_log.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  ---------------------------------------------------------------------------------------
//  Configuration

void
vdgx_broker_config_init (vdgx_broker_config_t *cfg)
{
    assert (cfg);
    memset (cfg, 0, sizeof *cfg);
    cfg->endpoint = "tcp://127.0.0.1:5555";
    cfg->events = "tcp://127.0.0.1:5556";
    cfg->data_dir = "./var";
    cfg->heartbeat_ms = 2500;
    cfg->liveness = 3;
    cfg->max_attempts = 3;
    cfg->queue_max = 1000;
    cfg->expire_s = 600;
    cfg->retain_hours = 24 * 7;
    cfg->retain_bytes = 0;
    cfg->peer_rate = 8ull << 20;
    cfg->peer_burst = 32ull << 20;
    cfg->owner_queued_max = 512ull << 20;
}

bool
vdgx_broker_endpoint_is_local (const char *endpoint)
{
    if (!endpoint)
        return false;
    if (strncmp (endpoint, "ipc://", 6) == 0 || strncmp (endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (!colon)
        return false;
    char name [256];
    size_t len = (size_t) (colon - host);
    if (len == 0 || len >= sizeof name)
        return false;
    memcpy (name, host, len);
    name [len] = 0;
    //  "tcp://lo;127.0.0.1:5555" style source;dest forms are not local binds.
    if (streq (name, "localhost") || streq (name, "lo") || streq (name, "[::1]") || streq (name, "::1"))
        return true;
    struct in_addr addr;
    if (inet_pton (AF_INET, name, &addr) == 1)
        return (ntohl (addr.s_addr) >> 24) == 127;
    return false;
}

int
vdgx_broker_config_check (const vdgx_broker_config_t *cfg, char *error, size_t errsize)
{
    assert (cfg && error);
    if (!cfg->endpoint || !*cfg->endpoint)
        return snprintf (error, errsize, "no broker endpoint"), -1;
    if (!cfg->data_dir || !*cfg->data_dir)
        return snprintf (error, errsize, "no data directory"), -1;
    if (cfg->heartbeat_ms < 10 || cfg->heartbeat_ms > 600000)
        return snprintf (error, errsize, "heartbeat-ms must be 10..600000"), -1;
    if (cfg->liveness < 1 || cfg->liveness > 100)
        return snprintf (error, errsize, "liveness must be 1..100"), -1;
    if (cfg->max_attempts < 1 || cfg->max_attempts > 100)
        return snprintf (error, errsize, "max-attempts must be 1..100"), -1;
    if (cfg->queue_max < 1 || cfg->queue_max > 1000000)
        return snprintf (error, errsize, "queue-max must be 1..1000000"), -1;
    if (cfg->expire_s < 1 || cfg->expire_s > 30 * 86400)
        return snprintf (error, errsize, "expire-s must be 1..2592000"), -1;
    if (cfg->retain_hours < 0)
        return snprintf (error, errsize, "retain-hours must be >= 0"), -1;
    if (cfg->peer_rate && cfg->peer_burst < VDGX_REQUEST_FRAME_MAX)
        return snprintf (error, errsize, "peer-burst must be at least %d bytes (the largest "
                         "submit, with two images)", VDGX_REQUEST_FRAME_MAX), -1;
    if (!cfg->curve_dir && !cfg->insecure) {
        if (!vdgx_broker_endpoint_is_local (cfg->endpoint))
            return snprintf (error, errsize, "refusing to bind %s without CURVE: use --curve DIR"
                             " or --insecure", cfg->endpoint), -1;
        if (cfg->events && *cfg->events && !vdgx_broker_endpoint_is_local (cfg->events))
            return snprintf (error, errsize, "refusing to bind %s without CURVE: use --curve DIR"
                             " or --insecure", cfg->events), -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Actor state

#define S_HIST_BUCKETS 14
#define S_CHECKPOINT_MS 2000        //  WAL truncation: looked at this often,
#define S_CHECKPOINT_QUIET_MS 250   //  done once the store has had no write this long,
#define S_CHECKPOINT_MAX_MS 60000   //  and at least this often under constant load
static const double s_hist_bounds [S_HIST_BUCKETS] = {
    0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600
};

//  Finer bounds for what the broker's own thread does per message (seconds).
#define S_FINE_BUCKETS 12
static const double s_fine_bounds [S_FINE_BUCKETS] = {
    25e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 0.1
};

typedef struct {
    const double *bounds;                   //  s_hist_bounds or s_fine_bounds
    int nbounds;
    uint64_t counts [S_HIST_BUCKETS + 1];   //  last = +Inf
    uint64_t count;
    double sum;
} s_hist_t;

//  A plain Majordomo request waiting for or held by a worker.
typedef struct {
    zframe_t *client;           //  routing id
    int proto;                  //  client MDP version
    bool delim;                 //  client used the empty delimiter
    char *service;
    zmsg_t *body;
    int64_t queued_at;          //  mono ms
    int attempts;
    void *handle;               //  in the service's requests list (while queued)
} s_request_t;

#define S_WAL_CHECKPOINT_FRAMES 1000
#define S_RESULTS_WAITING 4         //  results a batch lets wait while it reads messages
#define S_UNWRITTEN_MAX (8u << 20)  //  output bytes chunks may hold in memory, all runs

//  Output bytes taken from a CHUNK but not yet written (s_run_flush).
typedef struct s_unwritten_t {
    struct s_unwritten_t *next;
    uint8_t *data;
    size_t size;
} s_unwritten_t;

//  A job held by a worker.
typedef struct {
    char id [40];
    char model [65];
    vdgx_rworker_t *worker;
    uint32_t attempt;
    vdgx_phase_t phase;
    uint32_t step, steps;
    double percent;
    int fd;                     //  temp output file (-1: not open, or given up)
    bool opened;                //  its open was tried (at the first bytes: s_run_fd)
    uint64_t received;          //  output bytes accepted, in order (written or not yet)
    vdgx_sha256_t written;      //  of the bytes written to fd, as they come
    bool broken;                //  a chunk came out of order: later ones are not taken
    bool store_failed;          //  our side could not write the output (disk full)
    //  Chunks accepted but not written yet: a CHUNK is only queued, and written when no
    //  message is waiting (or a result, a ready prefix or the batch's end needs it), so
    //  a FINAL behind it in the socket is not kept waiting by the file's creation.
    s_unwritten_t *unwritten, *unwritten_last;
    size_t unwritten_bytes;
    zlistx_t *unwritten_list;   //  the broker's runs with unwritten chunks (NULL: not in it)
    void *unwritten_handle;
    size_t *unwritten_total;    //  the broker's count of unwritten bytes, all runs
    bool cancelled;
    int64_t started;            //  mono ms of this dispatch
    char token [VDGX_TOKEN_MAX + 1];    //  the attempt token the worker must echo ("" = none)
    //  Streaming: the playable prefix of the output so far (PROTOCOL.md 5.3 ready_*)
    bool has_ready;
    vdgx_ready_t ready;
    char ready_sha [VDGX_SHA256_HEX_SIZE];  //  of the ready prefix
} s_run_t;

//  What the broker knows of a registered worker's connection (by worker key).
typedef struct {
    bool tokens;                //  it echoes attempt tokens (READY ext "token")
    char user [48];             //  CURVE: the public key it registered with
} s_wauth_t;

//  Distinct models workers may add beyond the configured ones (a bound on what a trusted
//  but broken or hostile worker can make the broker remember).
#define S_WORKER_MODELS_MAX 256

typedef struct {
    vdgx_broker_config_t cfg;
    char *endpoint, *events, *data_dir, *curve_dir;
    zsock_t *pipe;
    zloop_t *loop;
    zsock_t *router;
    zsock_t *pub;
    vdgx_registry_t *reg;
    vdgx_jobqueue_t *queue;
    vdgx_jobstore_t *store;
    vdgx_storeguard_t *guard;   //  state changes go through it: degraded-store handling
    vdgx_outcheck_t *outcheck;  //  completed outputs checked before they are served
    zhashx_t *running;          //  job id -> s_run_t
    zhashx_t *known;            //  known model names -> "" (value unused)
    zhashx_t *limits;           //  model -> vdgx_limits_t, as its workers last advertised
    zhashx_t *precisions;       //  model -> "fp8,bf16": configured, or run by a worker since start
    zhashx_t *want_precision;   //  job id -> the precision it asked for (until it ends)
    zhashx_t *counters;         //  name{labels} -> uint64_t *
    zhashx_t *hists;            //  name{labels} -> s_hist_t
    zhashx_t *delims;           //  worker key -> (void *) 1 when it uses the empty delimiter
    zhashx_t *wauth;            //  worker key -> s_wauth_t
    vdgx_acl_t *acl;            //  peer roles, trusted networks, ZAP, attempt tokens
    size_t worker_models;       //  models first registered by a worker (S_WORKER_MODELS_MAX)
    vdgx_ratelimit_t *budget;   //  vdgx.jobs request bytes per client (--peer-rate, --peer-burst)
    vdgx_ratelimit_t *budget_log;   //  one log line per refused client per interval
    vdgx_quota_t *quota;        //  request bytes of unfinished jobs per owner (--owner-queued-max)
    uint64_t *routed;           //  the requests-routed counter (owned by counters)
    zlistx_t *finished;         //  s_finished_t: results taken before the batch commits
    zlistx_t *unwritten;        //  s_run_t with chunks not yet written (not owned)
    size_t unwritten_bytes;     //  in all of them (bounded: S_UNWRITTEN_MAX)
    zlistx_t *outbox;           //  s_held_t: messages held until their batch is durable
    zlistx_t *deferred;         //  s_held_t of batches whose sync failed: sent on recovery
    vdgx_syncer_t *syncer;      //  fsyncs committed batches off this thread
    uint64_t ticket_sent;       //  last batch handed to the syncer
    uint64_t ticket_done;       //  last batch the syncer reported durable
    int ckpt_asked;             //  WAL frames when a checkpoint was last asked for (0: none)
    int64_t last_write;         //  mono ms of the last batch that wrote to the store
    int64_t last_truncate;      //  mono ms of the last TRUNCATE checkpoint
    bool acking;                //  the reply being sent acknowledges stored state
    bool controlling;           //  the message being sent is a CONTROL to a worker
    bool job_state;             //  the job service reply being made reports stored state
    int64_t last_tick;          //  last heartbeat tick (mono ms), to notice our own stalls
    int64_t start_mono;
    double start_wall;
    bool stopping;
} s_broker_t;

//  A message held back until the store has committed the batch it reports on. A held
//  entry may instead be a deleted job's output file, removed once the delete is durable.
typedef struct {
    zsock_t *sock;
    zmsg_t *msg;
    char *unlink;               //  or: a file to remove once the batch is durable
    bool ack;                   //  a job service reply: it must not claim what was not stored
    bool defer;                 //  an event or CONTROL: after a failed sync, sent on recovery
    bool state;                 //  a job service reply on stored state: refused after one
    bool sealed;                //  its batch has ended: it waits for ticket
    uint64_t ticket;            //  the sync that makes its batch durable
} s_held_t;

//  A job whose worker answered FINAL. The worker is idle and has its next job at once; the
//  result is taken (output checked and renamed, row updated, worker acknowledged) later in
//  the same batch, before its commit (s_take_result). The run stays in `running` (with no
//  worker) until then.
typedef struct {
    s_run_t *run;
    vdgx_result_t result;       //  the decoded FINAL
    zframe_t *frame;            //  its bytes, stored with the completed job
    char *worker;               //  key of the worker that sent it (it may be gone by then)
    char weights_id [130];      //  of that worker, for the cache key
} s_finished_t;

static void
s_finished_destroy (void **item_p)
{
    s_finished_t *f = (s_finished_t *) *item_p;
    if (f) {
        zframe_destroy (&f->frame);
        free (f->worker);
        free (f);
        *item_p = NULL;
    }
}

static void
s_held_destroy (void **item_p)
{
    s_held_t *h = (s_held_t *) *item_p;
    if (h) {
        zmsg_destroy (&h->msg);
        free (h->unlink);
        free (h);
        *item_p = NULL;
    }
}

static double
s_now (void)
{
    return (double) zclock_time () / 1000.0;
}

static void
s_count_add (s_broker_t *self, uint64_t delta, const char *fmt, ...)
{
    char key [256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (key, sizeof key, fmt, args);
    va_end (args);
    uint64_t *value = (uint64_t *) zhashx_lookup (self->counters, key);
    if (!value) {
        value = (uint64_t *) zmalloc (sizeof (uint64_t));
        zhashx_insert (self->counters, key, value);
    }
    *value += delta;
}
#define s_count(self, ...) s_count_add ((self), 1, __VA_ARGS__)

static void
s_observe_into (s_broker_t *self, const double *bounds, int nbounds, double value, const char *key)
{
    s_hist_t *h = (s_hist_t *) zhashx_lookup (self->hists, key);
    if (!h) {
        h = (s_hist_t *) zmalloc (sizeof (s_hist_t));
        h->bounds = bounds;
        h->nbounds = nbounds;
        zhashx_insert (self->hists, key, h);
    }
    int b = 0;
    while (b < h->nbounds && value > h->bounds [b])
        b++;
    h->counts [b]++;
    h->count++;
    h->sum += value;
}

static void
s_observe (s_broker_t *self, double value, const char *fmt, ...)
{
    char key [256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (key, sizeof key, fmt, args);
    va_end (args);
    s_observe_into (self, s_hist_bounds, S_HIST_BUCKETS, value, key);
}

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static void
s_request_destroy (s_request_t **self_p)
{
    s_request_t *r = *self_p;
    if (r) {
        zframe_destroy (&r->client);
        zmsg_destroy (&r->body);
        free (r->service);
        free (r);
        *self_p = NULL;
    }
}

static void
s_request_destructor (void **item_p)
{
    s_request_destroy ((s_request_t **) item_p);
}

//  Drops the chunks a run has not written (it ended, or they cannot be written).
static void
s_run_drop_unwritten (s_run_t *run)
{
    while (run->unwritten) {
        s_unwritten_t *u = run->unwritten;
        run->unwritten = u->next;
        free (u->data);
        free (u);
    }
    run->unwritten_last = NULL;
    if (run->unwritten_total)
        *run->unwritten_total -= run->unwritten_bytes;
    run->unwritten_bytes = 0;
    if (run->unwritten_list) {
        zlistx_delete (run->unwritten_list, run->unwritten_handle);
        run->unwritten_list = NULL;
        run->unwritten_handle = NULL;
    }
}

static void
s_run_destroy (void **item_p)
{
    s_run_t *run = (s_run_t *) *item_p;
    if (run) {
        s_run_drop_unwritten (run);
        if (run->fd >= 0)
            close (run->fd);
        free (run);
        *item_p = NULL;
    }
}

//  ---------------------------------------------------------------------------------------
//  Sending

static zframe_t *s_error_frame (const char *code, const char *field, uint64_t retry_ms,
                                const char *fmt, ...);

//  Every message leaves through here. A message that reports stored state (replies and
//  events to clients, CONTROL to workers: ack tells a worker it may forget a result)
//  waits in the outbox, in order, while the store holds writes not yet durable (the open
//  batch, or committed batches the syncer has not reported yet): nothing that depends on
//  a state change goes out before that state is on disk (group commit). Work for workers
//  (REQUEST, HEARTBEAT, DISCONNECT) goes at once: a job dispatched before its `running`
//  row is durable is simply queued again after a crash, and its worker's result is taken
//  by the resend path.
static void
s_out (s_broker_t *self, zsock_t *sock, zmsg_t **msg_p, bool durable)
{
    if (durable && self->outbox && self->store
    &&  (zlistx_size (self->outbox) || vdgx_jobstore_pending (self->store)
         || self->ticket_done < self->ticket_sent
         || (self->guard && vdgx_storeguard_unsynced (self->guard)))) {
        s_held_t *h = (s_held_t *) zmalloc (sizeof (s_held_t));
        h->sock = sock;
        h->msg = *msg_p;
        h->ack = self->acking;
        h->defer = sock == self->pub || self->controlling;
        h->state = self->acking && self->job_state;
        *msg_p = NULL;
        zlistx_add_end (self->outbox, h);
    }
    else
        zmsg_send (msg_p, sock);
}

//  A held job service reply whose batch is not stored (or not known durable) becomes an
//  `unavailable` error with a retry hint: it never claims what may not be on disk.
static void
s_held_refuse (s_held_t *h, const char *text)
{
    zframe_t *last = zmsg_last (h->msg);
    zmsg_remove (h->msg, last);
    zframe_destroy (&last);
    zframe_t *err = s_error_frame (VDGX_E_UNAVAILABLE, NULL, 1000, "%s", text);
    zmsg_append (h->msg, &err);
}

//  Sends a held message, or removes its file. Destroys it.
static void
s_held_go (s_held_t *h)
{
    if (h->msg)
        zmsg_send (&h->msg, h->sock);
    if (h->unlink)
        unlink (h->unlink);
    s_held_destroy ((void **) &h);
}

//  Sends the held messages whose batch is durable (in order, up to the first that waits).
//  After a failed sync, until the store recovers, no batch is known durable: the replies
//  of the job service on stored state (jobs, limits; not `models`, `unload`, `drain`)
//  become `unavailable` errors and go now; events, CONTROL to workers
//  and deleted outputs wait (deferred) for the recovery that makes the batch durable;
//  other replies (MMI: health says the store is degraded) go as they are.
static void
s_release (s_broker_t *self)
{
    bool unsynced = self->guard && vdgx_storeguard_unsynced (self->guard);
    s_held_t *h;
    while ((h = (s_held_t *) zlistx_first (self->outbox))
       &&  h->sealed && h->ticket <= self->ticket_done) {
        zlistx_detach (self->outbox, NULL);
        if (!unsynced)
            s_held_go (h);
        else
        if (h->state) {
            s_held_refuse (h, "the job store could not make this durable (fsync failed); retry");
            s_held_go (h);
        }
        else
        if (h->defer || h->unlink)
            zlistx_add_end (self->deferred, h);
        else
            s_held_go (h);
    }
}

//  The store recovered: what failed batches held goes now (those batches were written
//  again and checkpointed), then whatever else is due.
static void
s_release_deferred (s_broker_t *self)
{
    s_held_t *h;
    while ((h = (s_held_t *) zlistx_detach (self->deferred, NULL)))
        s_held_go (h);
    s_release (self);
}

//  Opens a batch: the store's writes until s_batch_end go into one transaction.
static void
s_batch_begin (s_broker_t *self)
{
    vdgx_jobstore_begin (self->store);
}

//  Commits the batch (without waiting for the disk) and hands what must be synced to the
//  syncer under a new ticket; the messages the batch held wait for that ticket. When the
//  COMMIT fails nothing of the batch is stored: its held job service replies become
//  `unavailable` errors (the client retries, with its idempotency key).
static size_t s_take_results (s_broker_t *self, size_t max);

static void
s_batch_end (s_broker_t *self)
{
    s_take_results (self, SIZE_MAX);        //  results of the batch not taken yet
    int rc = vdgx_jobstore_commit (self->store);
    zlist_t *paths = vdgx_jobstore_take_syncs (self->store);
    zlist_t *unlinks = vdgx_jobstore_take_unlinks (self->store);
    if (rc) {
        s_count (self, "vdgx_store_commit_failures_total");
        vdgx_log_error ("store.commit", "held=%zu", zlistx_size (self->outbox));
    }
    //  A failed COMMIT: the guard keeps the batch's changes (the store is degraded until
    //  they are written); jobs it inserted never existed, so they leave the queues.
    zlist_t *lost = vdgx_storeguard_committed (self->guard, rc,
                                               self->ticket_sent + (paths? 1: 0), paths);
    for (char *id = lost? (char *) zlist_first (lost): NULL; id; id = (char *) zlist_next (lost))
        vdgx_jobqueue_remove (self->queue, id);
    zlist_destroy (&lost);
    if (paths) {
        self->last_write = zclock_mono ();
        vdgx_syncer_request (self->syncer, ++self->ticket_sent, &paths);
        s_count (self, "vdgx_store_commits_total");
    }
    //  The WAL is copied into the database by the syncer's thread (SQLite's own automatic
    //  checkpoint would sync on this one): asked for at 1000 frames (SQLite's default), and
    //  again each further 1000 while the WAL keeps growing (a PASSIVE copy can fall short).
    int frames = vdgx_jobstore_wal_frames (self->store);
    if (frames < S_WAL_CHECKPOINT_FRAMES)
        self->ckpt_asked = 0;
    else
    if (!self->ckpt_asked || frames >= self->ckpt_asked + S_WAL_CHECKPOINT_FRAMES) {
        vdgx_syncer_checkpoint (self->syncer, vdgx_jobstore_db_path (self->store));
        self->ckpt_asked = frames;
        s_count (self, "vdgx_store_checkpoints_total");
    }
    //  Outputs of jobs this batch deleted go once the delete is durable (a crash before
    //  must not bring the job back without its file): in the outbox like a message, ahead
    //  of the batch's messages, so the file is gone when the `delete` reply arrives.
    if (unlinks) {
        zlistx_t *batch = zlistx_new ();
        s_held_t *h;
        while ((h = (s_held_t *) zlistx_last (self->outbox)) && !h->sealed)
            zlistx_add_start (batch, zlistx_detach_cur (self->outbox));
        for (char *path = (char *) zlist_first (unlinks); path; path = (char *) zlist_next (unlinks)) {
            h = (s_held_t *) zmalloc (sizeof (s_held_t));
            h->unlink = strdup (path);
            zlistx_add_end (self->outbox, h);
        }
        while ((h = (s_held_t *) zlistx_first (batch)))
            zlistx_add_end (self->outbox, zlistx_detach_cur (batch));
        zlistx_destroy (&batch);
        zlist_destroy (&unlinks);
    }
    //  Messages of this batch wait for the newest ticket (a batch that wrote nothing only
    //  queued behind earlier ones).
    for (s_held_t *h = (s_held_t *) zlistx_last (self->outbox); h && !h->sealed;
         h = (s_held_t *) zlistx_prev (self->outbox)) {
        h->sealed = true;
        h->ticket = self->ticket_sent;
        if (rc && h->ack)
            s_held_refuse (h, "the job store could not record this; retry");
    }
    s_release (self);
}

//  The syncer made batches durable: their messages go.
static int
s_syncer_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    s_broker_t *self = (s_broker_t *) arg;
    uint64_t ticket = 0;
    int rc = vdgx_syncer_recv (self->syncer, &ticket);
    if (rc) {
        s_count (self, "vdgx_store_sync_failures_total");
        vdgx_log_error ("store.sync", "ticket=%llu", (unsigned long long) ticket);
    }
    //  Written but maybe not on the disk: degraded (and these batches refused, their
    //  changes kept to be written again) until recovery syncs and checkpoints.
    vdgx_storeguard_synced (self->guard, ticket, rc);
    if (ticket > self->ticket_done)
        self->ticket_done = ticket;
    s_release (self);
    return 0;
}

//  Waits for every batch handed to the syncer and sends what they held (shutdown).
static void
s_sync_all (s_broker_t *self)
{
    while (self->ticket_done < self->ticket_sent) {
        uint64_t ticket = 0;
        int rc = vdgx_syncer_recv (self->syncer, &ticket);
        vdgx_storeguard_synced (self->guard, ticket, rc);
        if (ticket > self->ticket_done)
            self->ticket_done = ticket;
        else
            break;              //  interrupted
    }
    self->ticket_done = self->ticket_sent;
    if (!vdgx_storeguard_unsynced (self->guard))
        s_release_deferred (self);
    s_release (self);
}

//  Sends to a client in the form it used. body is consumed.
static void
s_send_client (s_broker_t *self, zframe_t *client, int proto, bool delim, const char *service,
               uint8_t command, zmsg_t **body_p)
{
    zmsg_t *body = body_p? *body_p: NULL;
    if (body_p)
        *body_p = NULL;
    if (proto == 1 && command != VDGX_MDPC_FINAL) {
        zmsg_destroy (&body);           //  0.1 clients get only the final reply
        return;
    }
    zmsg_t *msg = body? body: zmsg_new ();
    zmsg_pushstr (msg, service);
    if (proto == 2)
        zmsg_pushmem (msg, &command, 1);
    zmsg_pushstr (msg, proto == 2? VDGX_MDPC02: VDGX_MDPC01);
    if (proto == 1 || delim)
        zmsg_pushmem (msg, NULL, 0);
    zmsg_prepend (msg, &(zframe_t *) { zframe_dup (client) });
    s_out (self, self->router, &msg, true);
}

static void
s_send_client_frame (s_broker_t *self, zframe_t *client, int proto, bool delim,
                     const char *service, zframe_t *frame)
{
    zmsg_t *body = zmsg_new ();
    zmsg_append (body, &frame);
    s_send_client (self, client, proto, delim, service, VDGX_MDPC_FINAL, &body);
}

static zframe_t *
s_sbuf_frame (msgpack_sbuffer *sbuf)
{
    zframe_t *frame = zframe_new (sbuf->data, sbuf->size);
    msgpack_sbuffer_destroy (sbuf);
    return frame;
}

static zframe_t *
s_error_frame (const char *code, const char *field, uint64_t retry_ms, const char *fmt, ...)
{
    vdgx_error_t err;
    vdgx_error_init (&err);
    char message [256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    vdgx_error_set (&err, code, field, "%s", message);
    return vdgx_error_frame (&err, retry_ms);
}

//  Worker commands: 0.2 numbering in, the worker's version on the wire.
static void
s_send_worker (s_broker_t *self, vdgx_rworker_t *w, uint8_t command, zframe_t *address,
               zmsg_t **body_p, bool delim)
{
    zmsg_t *msg = (body_p && *body_p)? *body_p: zmsg_new ();
    if (body_p)
        *body_p = NULL;
    if (address) {
        zmsg_pushmem (msg, NULL, 0);
        zmsg_prepend (msg, &(zframe_t *) { zframe_dup (address) });
    }
    uint8_t wire = command;
    if (w->proto == 1) {
        if (command == VDGX_MDPW_HEARTBEAT)
            wire = VDGX_MDPW01_HEARTBEAT;
        else
        if (command == VDGX_MDPW_DISCONNECT)
            wire = VDGX_MDPW01_DISCONNECT;
        else
        if (command == VDGX_MDPW_CONTROL) {
            zmsg_destroy (&msg);
            return;
        }
    }
    zmsg_pushmem (msg, &wire, 1);
    zmsg_pushstr (msg, w->proto == 2? VDGX_MDPW02: VDGX_MDPW01);
    if (w->proto == 1 || delim)
        zmsg_pushmem (msg, NULL, 0);
    zmsg_prepend (msg, &(zframe_t *) { zframe_dup (w->address) });
    self->controlling = command == VDGX_MDPW_CONTROL;
    s_out (self, self->router, &msg, self->controlling);
    self->controlling = false;
    //  Any message counts as a heartbeat for the worker (PROTOCOL.md). (An unregistered
    //  peer told to go away is a stack record outside the registry.)
    if (w->sent_handle)
        vdgx_registry_worker_sent (self->reg, w, zclock_mono ());
}

//  Whether a worker used the empty delimiter frame is kept in a hash keyed by identity
//  (self->delims), so vdgx_rworker_t stays protocol-neutral.
static bool
s_worker_delim (s_broker_t *self, vdgx_rworker_t *w)
{
    return zhashx_lookup (self->delims, w->key) != NULL;
}

static void
s_worker_cmd (s_broker_t *self, vdgx_rworker_t *w, uint8_t command)
{
    s_send_worker (self, w, command, NULL, NULL, s_worker_delim (self, w));
}

static void
s_send_control (s_broker_t *self, vdgx_rworker_t *w, vdgx_control_op_t op, const char *id)
{
    if (!w || !w->control || w->proto != 2)         //  !w: the worker is gone
        return;
    vdgx_control_t c;
    vdgx_control_init (&c);
    c.op = op;
    if (id && vdgx_control_op_has_id (op))
        snprintf (c.id, sizeof c.id, "%s", id);
    zmsg_t *body = zmsg_new ();
    zframe_t *frame = vdgx_control_frame (&c);
    zmsg_append (body, &frame);
    s_send_worker (self, w, VDGX_MDPW_CONTROL, NULL, &body, s_worker_delim (self, w));
    vdgx_control_clear (&c);
}

//  ---------------------------------------------------------------------------------------
//  Events and job records

static void
s_publish_job (s_broker_t *self, const char *id, const char *model, vdgx_event_type_t type,
               const char *state, vdgx_phase_t phase, uint32_t step, uint32_t steps,
               double percent, const char *err_code, const char *err_msg)
{
    if (!self->pub)
        return;
    vdgx_event_t ev;
    vdgx_event_init (&ev);
    ev.type = type;
    snprintf (ev.id, sizeof ev.id, "%s", id);
    snprintf (ev.model, sizeof ev.model, "%s", model);
    vdgx_job_state_parse (state, &ev.job_state);
    ev.has_phase = true;
    ev.phase = phase;
    ev.step = step;
    ev.steps = steps;
    ev.percent = percent;
    ev.ts = s_now ();
    if (err_code && *err_code) {
        ev.has_error = true;
        const char *code = vdgx_error_code_intern (err_code);
        vdgx_error_set (&ev.error, code? code: VDGX_E_INTERNAL, NULL, "%s", err_msg? err_msg: "");
    }
    zmsg_t *msg = vdgx_event_msg (&ev);
    if (msg)
        s_out (self, self->pub, &msg, true);
    vdgx_event_clear (&ev);
}

//  A streaming job's new playable prefix: a "chunk" event (PROTOCOL.md 8).
static void
s_publish_chunk (s_broker_t *self, const s_run_t *run)
{
    if (!self->pub)
        return;
    vdgx_event_t ev;
    vdgx_event_init (&ev);
    ev.type = VDGX_EVENT_CHUNK;
    snprintf (ev.id, sizeof ev.id, "%s", run->id);
    snprintf (ev.model, sizeof ev.model, "%s", run->model);
    ev.job_state = VDGX_JOB_RUNNING;
    ev.has_phase = true;
    ev.phase = run->phase;
    ev.step = run->step;
    ev.steps = run->steps;
    ev.percent = run->percent;
    ev.ts = s_now ();
    ev.has_ready = true;
    ev.ready = run->ready;
    zmsg_t *msg = vdgx_event_msg (&ev);
    if (msg)
        s_out (self, self->pub, &msg, true);
    vdgx_event_clear (&ev);
}

static void
s_publish_model (s_broker_t *self, vdgx_rworker_t *w)
{
    if (!self->pub)
        return;
    vdgx_rservice_t *s = vdgx_registry_service (self->reg, w->service, false);
    vdgx_event_t ev;
    vdgx_event_init (&ev);
    ev.type = VDGX_EVENT_STATE;
    ev.is_model = true;
    snprintf (ev.model, sizeof ev.model, "%s", w->service);
    ev.worker_state = w->state;
    ev.ts = s_now ();
    ev.workers = s? (uint32_t) s->workers: 0;
    zmsg_t *msg = vdgx_event_msg (&ev);
    if (msg)
        s_out (self, self->pub, &msg, true);
    vdgx_event_clear (&ev);
}

static vdgx_phase_t
s_phase_of (const vdgx_jobrec_t *job)
{
    if (streq (job->state, "queued"))
        return VDGX_PHASE_QUEUED;
    if (streq (job->state, "completed"))
        return VDGX_PHASE_DONE;
    return VDGX_PHASE_LOADING;
}

//  Records a state change durably and publishes it. -1 when the store could not write it
//  (the guard keeps it and the store is degraded until it can).
static int
s_job_changed (s_broker_t *self, vdgx_jobrec_t *job, const char *detail)
{
    int rc = vdgx_storeguard_save (self->guard, job);
    if (rc == 0)
        vdgx_jobstore_add_event (self->store, job->id, "state", job->state, detail, s_now ());
    s_run_t *run = (s_run_t *) zhashx_lookup (self->running, job->id);
    s_publish_job (self, job->id, job->model, VDGX_EVENT_STATE, job->state,
                   run? run->phase: s_phase_of (job), run? run->step: 0, run? run->steps: 0,
                   run? run->percent: (streq (job->state, "completed")? 100: 0),
                   job->err_code, job->err_msg);
    if (vdgx_jobrec_terminal (job)) {
        zhashx_delete (self->want_precision, job->id);
        vdgx_quota_release (self->quota, job->id);
        s_count (self, "vdgx_jobs_finished_total{model=\"%s\",status=\"%s\"}", job->model, job->state);
        if (job->started_at > 0 && job->finished_at >= job->started_at)
            s_observe (self, job->finished_at - job->started_at,
                       "vdgx_job_duration_seconds{model=\"%s\"}", job->model);
    }
    return rc;
}

static void
s_job_finish (vdgx_jobrec_t *job, const char *state, const char *code, const char *fmt, ...)
{
    snprintf (job->state, sizeof job->state, "%s", state);
    job->finished_at = s_now ();
    if (code) {
        snprintf (job->err_code, sizeof job->err_code, "%s", code);
        va_list args;
        va_start (args, fmt);
        vsnprintf (job->err_msg, sizeof job->err_msg, fmt, args);
        va_end (args);
    }
}

//  Cache key: model, weights identity and every generation parameter (seed included).
static void
s_cache_key (const char *model, const char *weights_id, const uint8_t *req, size_t size,
             char key [65])
{
    key [0] = 0;
    vdgx_genreq_t gr;
    vdgx_genreq_init (&gr);
    vdgx_error_t err;
    if (vdgx_genreq_decode (&gr, req, size, &err) == 0) {
        char *canon = vdgx_genreq_canonical (&gr);
        if (canon) {
            char *text = zsys_sprintf ("%s\n%s\n%s", model, weights_id, canon);
            vdgx_sha256_hex (text, strlen (text), key);
            zstr_free (&text);
            free (canon);
        }
    }
    vdgx_genreq_clear (&gr);
}

static const char *
s_weights_id (s_broker_t *self, const char *model)
{
    vdgx_rservice_t *s = vdgx_registry_service (self->reg, model, false);
    return s? s->weights_id: "";
}

//  ---------------------------------------------------------------------------------------
//  Precisions: what a model's workers run (configured, or seen since start), so a job that
//  asks for a precision goes to a worker that runs it, and one no worker can serve is
//  refused when it is submitted.

static const char *
s_str_or_empty (const char *text)
{
    return text? text: "";
}

static void
s_note_precisions (s_broker_t *self, const char *model, const char *list)
{
    const char *have = (const char *) zhashx_lookup (self->precisions, model);
    char merged [256];
    snprintf (merged, sizeof merged, "%s", have? have: "");
    char copy [256];
    snprintf (copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *p = strtok_r (copy, ", ", &save); p; p = strtok_r (NULL, ", ", &save))
        if (!vdgx_registry_list_has (merged, p) && strlen (merged) + strlen (p) + 2 < sizeof merged) {
            if (*merged)
                strcat (merged, ",");
            strcat (merged, p);
        }
    if (!have || !streq (have, merged))
        zhashx_update (self->precisions, model, strdup (merged));
}

//  The precision a job asked for ("" = any), from its request.
static void
s_remember_precision (s_broker_t *self, const char *id, const char *precision)
{
    if (precision && *precision)
        zhashx_update (self->want_precision, id, strdup (precision));
}

static void
s_remember_request_precision (s_broker_t *self, const vdgx_jobrec_t *job)
{
    vdgx_genreq_t gr;
    vdgx_genreq_init (&gr);
    vdgx_error_t err;
    if (job->request && vdgx_genreq_decode (&gr, job->request, job->request_size, &err) == 0)
        s_remember_precision (self, job->id, gr.precision);
    vdgx_genreq_clear (&gr);
}

//  ---------------------------------------------------------------------------------------
//  Dispatch

static void s_dispatch (s_broker_t *self, const char *service);

static void
s_queue_job (s_broker_t *self, const vdgx_jobrec_t *job, bool front)
{
    vdgx_jobqueue_push (self->queue, job->model, job->id, job->priority, front, true,
                        zclock_mono ());
}

//  Takes a job out of the queue to run it (the time it waited goes to the histogram).
static void
s_unqueue (s_broker_t *self, const char *id, const char *model)
{
    int64_t at = vdgx_jobqueue_queued_at (self->queue, id);
    if (at >= 0) {
        s_observe (self, (zclock_mono () - at) / 1000.0,
                   "vdgx_job_queue_wait_seconds{model=\"%s\"}", model);
        vdgx_jobqueue_remove (self->queue, id);
    }
}

static void
s_start_request (s_broker_t *self, vdgx_rworker_t *w, s_request_t *r)
{
    w->task = VDGX_TASK_REQUEST;
    w->task_data = r;
    w->task_started = zclock_mono ();
    w->last_used = w->task_started;
    w->task_id [0] = 0;         //  a request has no id; the client address is in task_data
    vdgx_registry_worker_refresh (self->reg, w, w->task_started);
    zmsg_t *body = zmsg_dup (r->body);
    s_send_worker (self, w, VDGX_MDPW_REQUEST, r->client, &body, s_worker_delim (self, w));
    //  Hot path: a direct counter, no key formatting per request.
    if (!self->routed)
        s_count_add (self, 0, "vdgx_requests_routed_total");
    if (!self->routed)
        self->routed = (uint64_t *) zhashx_lookup (self->counters, "vdgx_requests_routed_total");
    (*self->routed)++;
}

//  The attempt's temp output file, created on first use (not on the dispatch path: file
//  creation is the costliest part of a dispatch). -1 when it cannot be created (our disk:
//  the store is degraded) or was given up.
static int
s_run_fd (s_broker_t *self, s_run_t *run)
{
    if (!run->opened) {
        run->opened = true;
        char path [4096];
        vdgx_jobstore_temp_path (self->store, run->id, run->attempt, path, sizeof path);
        run->fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (run->fd < 0) {
            run->store_failed = true;
            char why [300];
            snprintf (why, sizeof why, "cannot create the output file of job %s: %s", run->id,
                      strerror (errno));
            vdgx_storeguard_fault (self->guard, why);
        }
    }
    return run->fd;
}

//  Writes the chunks a run has accepted but not written (creating its file at the first
//  bytes) and hashes them. A file that cannot be created or written is our disk, not the
//  worker: the store is degraded and the attempt will not count against the job.
static void
s_run_flush (s_broker_t *self, s_run_t *run)
{
    if (!run->unwritten)
        return;
    int fd = run->store_failed? -1: s_run_fd (self, run);
    for (s_unwritten_t *u = run->unwritten; u && fd >= 0; u = u->next) {
        ssize_t n = write (fd, u->data, u->size);
        if (n != (ssize_t) u->size) {
            char why [300];
            snprintf (why, sizeof why, "cannot write the output of job %s: %s", run->id,
                      strerror (n < 0? errno: ENOSPC));
            vdgx_storeguard_fault (self->guard, why);
            run->store_failed = true;
            close (run->fd);
            run->fd = fd = -1;
        }
        else
            vdgx_sha256_update (&run->written, u->data, u->size);
    }
    s_run_drop_unwritten (run);
}

//  Writes one run's unwritten chunks; false when there were none.
static bool
s_flush_one (s_broker_t *self)
{
    s_run_t *run = (s_run_t *) zlistx_first (self->unwritten);
    if (!run)
        return false;
    s_run_flush (self, run);
    return true;
}

//  0 when dispatched; -1 when the job is not in the store; -2 when its dispatch could not be
//  recorded (the store is degraded): the job goes back to the head of its queue, unsent.
static int
s_start_job (s_broker_t *self, vdgx_rworker_t *w, const char *id, bool resend)
{
    vdgx_jobrec_t job;
    if (vdgx_storeguard_get (self->guard, id, &job))
        return -1;
    int64_t now = zclock_mono ();
    uint32_t attempt_before = job.attempt;
    if (!resend)
        job.attempt++;
    if (job.attempt == 0)
        job.attempt = 1;
    snprintf (job.state, sizeof job.state, "running");
    if (job.started_at == 0)
        job.started_at = s_now ();
    //  The dispatch (and its attempt count) is recorded before anything is sent: a job
    //  whose attempt did not persist would be dispatched for ever.
    if (vdgx_storeguard_save (self->guard, &job)) {
        job.attempt = attempt_before;
        snprintf (job.state, sizeof job.state, "queued");
        vdgx_storeguard_save (self->guard, &job);       //  what is kept is its queued state
        s_queue_job (self, &job, true);
        s_count (self, "vdgx_dispatch_deferred_total{model=\"%s\"}", job.model);
        vdgx_jobrec_clear (&job);
        return -2;
    }
    s_run_t *run = (s_run_t *) zmalloc (sizeof (s_run_t));
    snprintf (run->id, sizeof run->id, "%s", job.id);
    snprintf (run->model, sizeof run->model, "%s", job.model);
    run->worker = w;
    run->started = now;
    run->phase = w->state == VDGX_WSTATE_COLD? VDGX_PHASE_LOADING: VDGX_PHASE_ENCODING_TEXT;
    run->attempt = job.attempt;
    vdgx_sha256_init (&run->written);
    s_wauth_t *auth = (s_wauth_t *) zhashx_lookup (self->wauth, w->key);
    if (auth && auth->tokens)
        vdgx_acl_token (self->acl, job.id, job.attempt, run->token);
    run->fd = -1;               //  created when its first bytes come, after the REQUEST
    zhashx_insert (self->running, job.id, run);
    vdgx_jobstore_add_event (self->store, job.id, "state", job.state, resend? "resend": "dispatch",
                             s_now ());
    s_publish_job (self, job.id, job.model, VDGX_EVENT_STATE, job.state, run->phase, 0, 0, 0,
                   NULL, NULL);

    w->task = resend? VDGX_TASK_RESEND: VDGX_TASK_JOB;
    snprintf (w->task_id, sizeof w->task_id, "%s", job.id);
    w->task_started = now;
    w->last_used = now;
    vdgx_wstate_state_t was = w->state;
    if (w->state == VDGX_WSTATE_WARM)
        w->state = VDGX_WSTATE_BUSY;
    else
    if (w->state == VDGX_WSTATE_COLD)
        w->state = VDGX_WSTATE_LOADING;
    vdgx_registry_worker_refresh (self->reg, w, now);
    if (w->state != was)
        s_publish_model (self, w);      //  model.* watchers see every change, ours included

    if (resend)
        s_send_control (self, w, VDGX_CONTROL_RESEND, job.id);
    else {
        //  {id, attempt, request}: the stored request bytes go in as they are.
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 3 + (*run->token != 0));
        vdgx_pack_str (&pk, "id");
        vdgx_pack_str (&pk, job.id);
        vdgx_pack_str (&pk, "attempt");
        msgpack_pack_uint32 (&pk, job.attempt);
        if (*run->token) {
            vdgx_pack_str (&pk, "token");
            vdgx_pack_str (&pk, run->token);
        }
        vdgx_pack_str (&pk, "request");
        msgpack_sbuffer_write (&sbuf, (const char *) job.request, job.request_size);
        zmsg_t *body = zmsg_new ();
        zframe_t *frame = s_sbuf_frame (&sbuf);
        zmsg_append (body, &frame);
        zframe_t *address = zframe_new (job.id, strlen (job.id));
        s_send_worker (self, w, VDGX_MDPW_REQUEST, address, &body, s_worker_delim (self, w));
        zframe_destroy (&address);
    }
    vdgx_log_info ("job.dispatch", "id=%s model=%s worker=%s attempt=%u%s", job.id, job.model,
                   w->key, job.attempt, resend? " resend=1": "");
    vdgx_jobrec_clear (&job);
    return 0;
}

//  Memory arbitration for a cold worker that must load. True when it may start now.
static bool
s_memory_ok (s_broker_t *self, vdgx_rworker_t *w)
{
    if (w->state != VDGX_WSTATE_COLD || w->model_bytes == 0 || !*w->host)
        return true;
    uint64_t budget = vdgx_registry_host_budget (self->reg, w->host);
    if (budget == 0)
        return true;
    uint64_t used = vdgx_registry_host_used (self->reg, w->host);
    if (used + w->model_bytes <= budget)
        return true;
    if (vdgx_registry_host_unloading (self->reg, w->host))
        return false;           //  an unload is under way: wait for its cold report
    vdgx_rworker_t *victim = vdgx_registry_lru_idle_warm (self->reg, w->host);
    if (victim) {
        victim->unload_asked = true;
        vdgx_registry_worker_refresh (self->reg, victim, zclock_mono ());
        s_send_control (self, victim, VDGX_CONTROL_UNLOAD, NULL);
        s_count (self, "vdgx_unloads_requested_total{model=\"%s\"}", victim->service);
        vdgx_log_info ("memory.unload", "host=%s victim=%s model=%s for=%s used=%llu budget=%llu",
                       w->host, victim->key, victim->service, w->service,
                       (unsigned long long) used, (unsigned long long) budget);
    }
    return false;
}

static bool
s_resend_next (s_broker_t *self, vdgx_rworker_t *w)
{
    while (zlist_size (w->pending)) {
        char *id = (char *) zlist_pop (w->pending);
        bool want = false;
        vdgx_jobrec_t job;
        if (!zhashx_lookup (self->running, id) && vdgx_storeguard_get (self->guard, id, &job) == 0) {
            want = streq (job.state, "queued") || streq (job.state, "running");
            vdgx_jobrec_clear (&job);
        }
        if (want) {
            s_count (self, "vdgx_jobs_resent_total");
            s_unqueue (self, id, w->service);
            s_start_job (self, w, id, true);
            free (id);
            return true;
        }
        s_send_control (self, w, VDGX_CONTROL_DROP, id);
        free (id);
    }
    vdgx_registry_worker_refresh (self->reg, w, zclock_mono ());
    return false;
}

static void
s_dispatch (s_broker_t *self, const char *service)
{
    if (self->stopping)
        return;
    vdgx_rservice_t *s = vdgx_registry_service (self->reg, service, false);
    if (!s || s->workers == 0)
        return;
    //  Plain requests first: they are small and interactive.
    s_request_t *r;
    vdgx_rworker_t *w;
    while ((r = (s_request_t *) zlistx_first (s->requests))
       &&  (w = vdgx_registry_select (self->reg, service))) {
        zlistx_detach (s->requests, r->handle);
        r->handle = NULL;
        s_start_request (self, w, r);
    }
    //  A job that asks for a precision waits for an idle worker that runs it (the jobs
    //  behind it wait too: queue order is kept).
    const char *id;
    while (!vdgx_storeguard_degraded (self->guard)
       &&  (id = vdgx_jobqueue_peek (self->queue, service))
       &&  (w = vdgx_registry_select_precision (self->reg, service,
                s_str_or_empty ((const char *) zhashx_lookup (self->want_precision, id))))) {
        if (!s_memory_ok (self, w))
            break;
        char *job_id = strdup (id);
        s_unqueue (self, job_id, service);
        int rc = s_start_job (self, w, job_id, false);
        if (rc == -1)
            vdgx_log_error ("job.lost", "id=%s reason=\"not in store\"", job_id);
        free (job_id);
        if (rc == -2)
            break;              //  the store is degraded: nothing more until it recovers
    }
}

static void
s_dispatch_all (s_broker_t *self)
{
    zlist_t *models = vdgx_jobqueue_models (self->queue);
    for (char *m = (char *) zlist_first (models); m; m = (char *) zlist_next (models))
        s_dispatch (self, m);
    zlist_destroy (&models);
}

//  Deletes a service that has nothing left (no workers, requests or jobs).
static void
s_service_gc (s_broker_t *self, const char *name)
{
    if (vdgx_jobqueue_depth (self->queue, name) == 0) {
        char *copy = strdup (name);
        vdgx_registry_service_remove (self->reg, copy);
        free (copy);
    }
}

//  ---------------------------------------------------------------------------------------
//  Worker life cycle

//  The worker's current task goes back to the queue (or fails after max_attempts).
static void
s_requeue_task (s_broker_t *self, vdgx_rworker_t *w, const char *reason)
{
    if (w->task == VDGX_TASK_REQUEST) {
        s_request_t *r = (s_request_t *) w->task_data;
        w->task_data = NULL;
        r->attempts++;
        vdgx_rservice_t *s = vdgx_registry_service (self->reg, r->service, true);
        if (r->attempts >= self->cfg.max_attempts) {
            s_send_client_frame (self, r->client, r->proto, r->delim, r->service,
                                 s_error_frame (VDGX_E_WORKER_FAILED, NULL, 0,
                                                "request failed on %d workers (%s)", r->attempts, reason));
            s_request_destroy (&r);
        }
        else
            r->handle = zlistx_add_start (s->requests, r);
    }
    else
    if (w->task == VDGX_TASK_JOB || w->task == VDGX_TASK_RESEND) {
        s_run_t *run = (s_run_t *) zhashx_lookup (self->running, w->task_id);
        vdgx_jobrec_t job;
        if (run && vdgx_storeguard_get (self->guard, run->id, &job) == 0) {
            char path [4096];
            vdgx_jobstore_temp_path (self->store, run->id, run->attempt, path, sizeof path);
            unlink (path);
            bool cancelled = run->cancelled;
            zhashx_delete (self->running, run->id);
            if (!cancelled && !vdgx_jobrec_terminal (&job)) {
                s_count (self, "vdgx_jobs_requeued_total{model=\"%s\"}", job.model);
                if ((int) job.attempt >= self->cfg.max_attempts) {
                    s_job_finish (&job, "failed", VDGX_E_WORKER_FAILED,
                                  "worker lost on attempt %u of %d: %s", job.attempt,
                                  self->cfg.max_attempts, reason);
                    s_job_changed (self, &job, reason);
                }
                else {
                    snprintf (job.state, sizeof job.state, "queued");
                    s_job_changed (self, &job, reason);
                    s_queue_job (self, &job, true);
                }
            }
            vdgx_jobrec_clear (&job);
        }
        else
        if (run)
            zhashx_delete (self->running, run->id);
    }
    w->task = VDGX_TASK_NONE;
    w->task_id [0] = 0;
}

static void
s_worker_delete (s_broker_t *self, vdgx_rworker_t *w, const char *reason, bool disconnect)
{
    vdgx_log_info ("worker.gone", "worker=%s model=%s reason=\"%s\"", w->key, w->service, reason);
    if (disconnect)
        s_worker_cmd (self, w, VDGX_MDPW_DISCONNECT);
    if (w->task != VDGX_TASK_NONE)
        s_count (self, "vdgx_worker_lost_busy_total{model=\"%s\"}", w->service);
    s_requeue_task (self, w, reason);
    char *service = strdup (w->service);
    zhashx_delete (self->delims, w->key);
    zhashx_delete (self->wauth, w->key);
    w->state = VDGX_WSTATE_COLD;
    vdgx_registry_worker_remove (self->reg, w, zclock_mono ());
    if (self->pub) {
        vdgx_event_t ev;
        vdgx_event_init (&ev);
        ev.type = VDGX_EVENT_STATE;
        ev.is_model = true;
        snprintf (ev.model, sizeof ev.model, "%s", service);
        ev.worker_state = VDGX_WSTATE_COLD;
        ev.ts = s_now ();
        vdgx_rservice_t *s = vdgx_registry_service (self->reg, service, false);
        ev.workers = s? (uint32_t) s->workers: 0;
        zmsg_t *msg = vdgx_event_msg (&ev);
        if (msg)
            s_out (self, self->pub, &msg, true);
        vdgx_event_clear (&ev);
    }
    s_dispatch (self, service);
    s_dispatch_all (self);      //  memory may have been freed on that host
    vdgx_rservice_t *s = vdgx_registry_service (self->reg, service, false);
    if (s && s->workers == 0 && zlistx_size (s->requests) == 0)
        s_service_gc (self, service);
    free (service);
}

static bool
s_service_name_ok (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > VDGX_MODEL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return strncmp (name, "mmi.", 4) != 0 && strncmp (name, "vdgx.", 5) != 0;
}

static void
s_join (char *buf, size_t size, char **items, size_t n)
{
    buf [0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen (buf);
        snprintf (buf + len, size - len, "%s%s", i? ",": "", items [i]);
    }
}

//  Takes the optional `weights_id` (PROTOCOL.md 5.4) out of a worker-state map, so the strict
//  codec sees only its own keys. Returns the remaining map (packed in sbuf) or -1.
static int
s_take_weights_id (zframe_t *frame, char *weights_id, size_t size, msgpack_sbuffer *sbuf)
{
    msgpack_unpacked u;
    vdgx_error_t err;
    weights_id [0] = 0;
    msgpack_sbuffer_init (sbuf);
    if (vdgx_unpack (&u, zframe_data (frame), zframe_size (frame), &err))
        return -1;
    int rc = -1;
    if (u.data.type == MSGPACK_OBJECT_MAP) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
        msgpack_object_map *map = &u.data.via.map;
        uint32_t keep = 0;
        int found = -1;
        for (uint32_t i = 0; i < map->size; i++) {
            msgpack_object *k = &map->ptr [i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 10
            &&  memcmp (k->via.str.ptr, "weights_id", 10) == 0)
                found = (int) i;
            else
                keep++;
        }
        rc = 0;
        if (found >= 0) {
            msgpack_object *v = &map->ptr [found].val;
            if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= size)
                rc = -1;
            else {
                memcpy (weights_id, v->via.str.ptr, v->via.str.size);
                weights_id [v->via.str.size] = 0;
            }
        }
        msgpack_pack_map (&pk, keep);
        for (uint32_t i = 0; i < map->size; i++)
            if ((int) i != found) {
                msgpack_pack_object (&pk, map->ptr [i].key);
                msgpack_pack_object (&pk, map->ptr [i].val);
            }
    }
    msgpack_unpacked_destroy (&u);
    return rc;
}

//  Applies a worker-state map. Returns 0, or -1 when it does not decode.
//  Records a model's limits (and stores them when persist).
static void
s_set_limits (s_broker_t *self, const char *model, const vdgx_limits_t *limits, bool persist)
{
    vdgx_limits_t *copy = (vdgx_limits_t *) malloc (sizeof *copy);
    if (!copy)
        return;
    *copy = *limits;
    zhashx_update (self->limits, model, copy);
    if (!persist)
        return;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    if (vdgx_limits_pack (limits, &pk) == 0
    &&  vdgx_jobstore_limits_set (self->store, model, sbuf.data, sbuf.size) == 0)
        vdgx_log_info ("model.limits", "model=%s", model);
    else
        vdgx_log_warn ("model.limits", "model=%s message=\"cannot store the limits\"", model);
    msgpack_sbuffer_destroy (&sbuf);
}

//  The limits stored at an earlier run, for every known model; a record that does not decode
//  (written by another version, damaged) is skipped: the workers will advertise again.
static void
s_load_limits (s_broker_t *self)
{
    for (const char *m = (const char *) zhashx_first (self->known); m;
         m = (const char *) zhashx_next (self->known)) {
        const char *name = (const char *) zhashx_cursor (self->known);
        zframe_t *frame = vdgx_jobstore_limits_get (self->store, name);
        if (!frame)
            continue;
        msgpack_unpacked up;
        vdgx_error_t err;
        vdgx_limits_t limits;
        if (vdgx_unpack (&up, zframe_data (frame), zframe_size (frame), &err) == 0) {
            if (vdgx_limits_decode_obj (&limits, &up.data, "limits", &err) == 0)
                s_set_limits (self, name, &limits, false);
            else
                vdgx_log_warn ("model.limits", "model=%s message=\"stored limits skipped: %s\"",
                               name, err.message);
            msgpack_unpacked_destroy (&up);
        }
        zframe_destroy (&frame);
    }
}

//  A result a worker says it holds is resent only when the worker proves it was given that
//  attempt (its token) and serves the job's model: nobody else may complete a job.
static bool
s_pending_ok (s_broker_t *self, vdgx_rworker_t *w, const char *id, const char *token)
{
    vdgx_jobrec_t job;
    if (vdgx_jobstore_get (self->store, id, &job))
        return false;           //  unknown: dropped, nothing to protect
    bool ok = streq (job.model, w->service)
           && vdgx_acl_token_ok (self->acl, job.id, job.attempt, token);
    if (!ok) {
        s_count (self, "vdgx_worker_rejected_total{reason=\"pending\"}");
        vdgx_log_warn ("worker.badpending", "worker=%s model=%s id=%s job_model=%s token=%s",
                       w->key, w->service, id, job.model, token? "wrong": "none");
    }
    vdgx_jobrec_clear (&job);
    return ok;
}

static int
s_apply_state (s_broker_t *self, vdgx_rworker_t *w, zframe_t *frame, bool ready)
{
    vdgx_wstate_t ws;
    vdgx_wstate_init (&ws);
    vdgx_error_t err;
    char weights_id [sizeof w->weights_id];
    msgpack_sbuffer sbuf;
    int rc = s_take_weights_id (frame, weights_id, sizeof weights_id, &sbuf);
    if (rc == 0)
        rc = vdgx_wstate_decode (&ws, sbuf.data, sbuf.size, &err);
    else
        vdgx_error_set (&err, VDGX_E_BAD_REQUEST, "weights_id", "not a map or a bad weights_id");
    msgpack_sbuffer_destroy (&sbuf);
    if (rc) {
        vdgx_log_warn ("worker.badstate", "worker=%s field=%s message=\"%s\"", w->key,
                       err.field, err.message);
        return -1;
    }
    vdgx_wstate_state_t old = w->state;
    //  While the broker has given it a task the worker may report its state from before it
    //  saw the task; keep the broker's view until the task ends.
    if (w->task == VDGX_TASK_NONE
    ||  (ws.state != VDGX_WSTATE_WARM && ws.state != VDGX_WSTATE_COLD))
        w->state = ws.state;
    if (w->task == VDGX_TASK_NONE && ws.state == VDGX_WSTATE_BUSY)
        w->state = VDGX_WSTATE_WARM;   //  a job we no longer hold: it is idle for us
    if (ws.state == VDGX_WSTATE_COLD || ws.state == VDGX_WSTATE_UNLOADING)
        w->unload_asked = ws.state == VDGX_WSTATE_UNLOADING;
    if (*ws.host)
        vdgx_registry_worker_set_host (self->reg, w, ws.host);
    w->pid = ws.pid;
    w->rss_bytes = ws.rss_bytes;
    w->peak_bytes = ws.peak_bytes;
    w->model_bytes = ws.model_bytes;
    w->host_budget_bytes = ws.host_budget_bytes;
    snprintf (w->device, sizeof w->device, "%s", ws.device);
    s_join (w->precisions, sizeof w->precisions, ws.precisions, ws.nprecisions);
    if (*w->precisions)
        s_note_precisions (self, w->service, w->precisions);
    snprintf (w->job, sizeof w->job, "%s", ws.job);
    if (*weights_id)
        snprintf (w->weights_id, sizeof w->weights_id, "%s", weights_id);
    if (ready) {
        w->control = vdgx_wstate_has_ext (&ws, "control");
        s_wauth_t *auth = (s_wauth_t *) zhashx_lookup (self->wauth, w->key);
        if (auth)
            auth->tokens = vdgx_wstate_has_ext (&ws, "token");
        for (size_t i = 0; i < ws.npending; i++)
            if (s_pending_ok (self, w, ws.pending [i], vdgx_wstate_pending_token (&ws, i)))
                zlist_append (w->pending, ws.pending [i]);
            else
                s_send_control (self, w, VDGX_CONTROL_DROP, ws.pending [i]);
    }
    vdgx_rservice_t *s = vdgx_registry_service (self->reg, w->service, false);
    if (s && ws.model_bytes)
        s->model_bytes = ws.model_bytes;
    if (s && *weights_id)
        snprintf (s->weights_id, sizeof s->weights_id, "%s", weights_id);
    if (ws.limits.present) {
        //  The model's limits, checked at submit from now on (kept when its workers leave,
        //  and in the store for the next start).
        vdgx_limits_t *known = (vdgx_limits_t *) zhashx_lookup (self->limits, w->service);
        if (!known || !vdgx_limits_equal (known, &ws.limits))
            s_set_limits (self, w->service, &ws.limits, true);
    }
    vdgx_wstate_clear (&ws);
    vdgx_registry_worker_refresh (self->reg, w, zclock_mono ());
    if (old != w->state) {
        s_publish_model (self, w);
        if (w->state == VDGX_WSTATE_COLD && old != VDGX_WSTATE_COLD)
            s_dispatch_all (self);  //  memory freed on its host
    }
    return 0;
}

//  Refuses a READY: DISCONNECT, counted by reason.
static void
s_worker_refuse (s_broker_t *self, zframe_t *identity, int proto, bool delim, const char *reason)
{
    s_count (self, "vdgx_workers_refused_total{reason=\"%s\"}", reason);
    vdgx_rworker_t tmp;
    memset (&tmp, 0, sizeof tmp);
    tmp.address = identity;
    tmp.proto = proto;
    s_send_worker (self, &tmp, VDGX_MDPW_DISCONNECT, NULL, NULL, delim);
}

static void
s_worker_ready (s_broker_t *self, const char *key, zframe_t *identity, int proto, bool delim,
                const char *service, zmsg_t *body, const vdgx_peer_t *peer)
{
    vdgx_rworker_t *w = vdgx_registry_worker (self->reg, key);
    if (w) {
        //  A second READY is a protocol error (RFC 18): drop the worker.
        s_count (self, "vdgx_protocol_errors_total");
        s_worker_delete (self, w, "READY from a registered worker", true);
        return;
    }
    if (!s_service_name_ok (service) || self->stopping) {
        s_count (self, "vdgx_protocol_errors_total");
        vdgx_rworker_t tmp;
        memset (&tmp, 0, sizeof tmp);
        tmp.address = identity;
        tmp.proto = proto;
        vdgx_log_kv (VDGX_LOG_WARN, "worker.refused", "service", service, NULL);
        s_send_worker (self, &tmp, VDGX_MDPW_DISCONNECT, NULL, NULL, delim);
        return;
    }
    //  Only a peer allowed to serve this model may register it, advertise its limits or
    //  claim its jobs; and workers may add only so many models the broker never heard of.
    if (!vdgx_peer_may_serve (peer, service)) {
        vdgx_log_warn ("worker.refused", "model=%s peer=%s address=%s reason=\"not allowed for this model\"",
                       service, *peer->owner? peer->owner: "-", *peer->address? peer->address: "local");
        s_worker_refuse (self, identity, proto, delim, "not_allowed");
        return;
    }
    if (!zhashx_lookup (self->known, service) && self->worker_models >= S_WORKER_MODELS_MAX) {
        vdgx_log_warn ("worker.refused", "model=%s reason=\"too many models registered by workers\"", service);
        s_worker_refuse (self, identity, proto, delim, "models");
        return;
    }
    int64_t now = zclock_mono ();
    w = vdgx_registry_worker_add (self->reg, key, identity, proto, service, now);
    if (delim)
        zhashx_insert (self->delims, key, (void *) 1);
    s_wauth_t *auth = (s_wauth_t *) zmalloc (sizeof (s_wauth_t));
    snprintf (auth->user, sizeof auth->user, "%s", peer->key);
    zhashx_update (self->wauth, key, auth);
    //  Plain RFC 18 / RFC 7 workers send no state: warm, memory unknown.
    w->state = VDGX_WSTATE_WARM;
    zframe_t *state = zmsg_first (body);
    if (state && s_apply_state (self, w, state, true)) {
        s_count (self, "vdgx_protocol_errors_total");
        s_worker_delete (self, w, "bad worker-state map", true);
        return;
    }
    vdgx_registry_worker_refresh (self->reg, w, now);
    if (!zhashx_lookup (self->known, service)) {
        zhashx_insert (self->known, service, (void *) "");
        vdgx_jobstore_model_add (self->store, service);
        self->worker_models++;
    }
    s_count (self, "vdgx_workers_registered_total{model=\"%s\"}", service);
    vdgx_log_info ("worker.ready", "worker=%s model=%s proto=%d host=%s state=%s pending=%zu",
                   key, service, proto, w->host, vdgx_wstate_state_name (w->state),
                   zlist_size (w->pending));
    s_publish_model (self, w);
    if (!s_resend_next (self, w))
        s_dispatch (self, service);
}

//  The worker's task ended: make it idle and give it the next thing to do.
static void
s_worker_idle (s_broker_t *self, vdgx_rworker_t *w)
{
    int64_t now = zclock_mono ();
    w->task = VDGX_TASK_NONE;
    w->task_id [0] = 0;
    w->task_data = NULL;
    w->idle_since = now;
    w->last_used = now;
    bool freed = w->state == VDGX_WSTATE_BUSY || w->state == VDGX_WSTATE_LOADING;
    if (freed)
        w->state = VDGX_WSTATE_WARM;
    vdgx_registry_worker_refresh (self->reg, w, now);
    if (freed)
        s_publish_model (self, w);      //  the `warm` that follows `busy`
    if (w->draining)
        return;
    if (!s_resend_next (self, w))
        s_dispatch (self, w->service);
    //  Still idle and warm: a cold worker elsewhere on this host may be waiting for memory
    //  that this one can now give up.
    if (w->task == VDGX_TASK_NONE && w->state == VDGX_WSTATE_WARM && *w->host
    &&  vdgx_jobqueue_size (self->queue) > 0)
        s_dispatch_all (self);
}

//  Takes the result of a job whose worker answered FINAL (s_finished_t): the output is
//  checked against the FINAL and renamed in, the job's row says how it ended, and the worker
//  is told (ack: it may forget the result, sent once the batch is durable; drop: it was not
//  taken).
static void
s_take_result (s_broker_t *self, s_finished_t *f)
{
    s_run_t *run = f->run;
    vdgx_result_t *res = &f->result;
    vdgx_rworker_t *w = vdgx_registry_worker (self->reg, f->worker);    //  NULL: gone since
    s_run_flush (self, run);
    char model [sizeof run->model];
    snprintf (model, sizeof model, "%s", run->model);
    bool requeued = false;
    if (res->ok)
        s_run_fd (self, run);           //  an empty output still has its (empty) file
    if (run->fd >= 0)
        close (run->fd);
    run->fd = -1;
    vdgx_jobrec_t job;
    char path [4096];
    vdgx_jobstore_temp_path (self->store, run->id, run->attempt, path, sizeof path);
    if (vdgx_storeguard_get (self->guard, run->id, &job)) {
        unlink (path);
        s_send_control (self, w, VDGX_CONTROL_DROP, run->id);
    }
    else
    if (run->cancelled || vdgx_jobrec_terminal (&job)) {
        unlink (path);
        s_send_control (self, w, VDGX_CONTROL_ACK, run->id);
    }
    else
    if (res->ok && run->store_failed) {
        //  The worker did its part; our disk could not take the output. The job waits
        //  at the head of its queue (this attempt not counted) until the store recovers.
        unlink (path);
        snprintf (job.state, sizeof job.state, "queued");
        if (job.attempt > 0)
            job.attempt--;
        zhashx_delete (self->running, run->id);
        run = NULL;
        s_job_changed (self, &job, "store degraded");
        s_queue_job (self, &job, true);
        requeued = true;
        s_send_control (self, w, VDGX_CONTROL_DROP, job.id);
    }
    else
    if (res->ok) {
        char why [256];
        char written [VDGX_SHA256_HEX_SIZE];
        vdgx_sha256_final_hex (&run->written, written);
        if (vdgx_jobstore_commit_output_hashed (self->store, run->id, run->attempt,
                                                res->video.size, res->video.sha256,
                                                written, why, sizeof why)) {
            vdgx_log_warn ("job.badoutput", "id=%s worker=%s reason=\"%s\"", run->id, f->worker, why);
            s_count (self, "vdgx_output_rejected_total{model=\"%s\"}", run->model);
            if ((int) job.attempt >= self->cfg.max_attempts) {
                s_job_finish (&job, "failed", VDGX_E_WORKER_FAILED, "output rejected: %s", why);
                s_job_changed (self, &job, "output rejected");
                zhashx_delete (self->running, run->id);
            }
            else {
                snprintf (job.state, sizeof job.state, "queued");
                zhashx_delete (self->running, run->id);
                s_job_changed (self, &job, "output rejected");
                s_queue_job (self, &job, true);
                requeued = true;
            }
            s_send_control (self, w, VDGX_CONTROL_DROP, job.id);
            run = NULL;
        }
        else {
            free (job.result);
            job.result = (uint8_t *) malloc (zframe_size (f->frame));
            memcpy (job.result, zframe_data (f->frame), zframe_size (f->frame));
            job.result_size = zframe_size (f->frame);
            job.size = res->video.size;
            snprintf (job.sha256, sizeof job.sha256, "%s", res->video.sha256);
            vdgx_outcheck_remember (self->outcheck, &job);      //  just hashed
            s_cache_key (job.model, f->weights_id, job.request, job.request_size, job.cache_key);
            run->phase = VDGX_PHASE_DONE;
            run->percent = 100;
            s_job_finish (&job, "completed", NULL, NULL);
            s_job_changed (self, &job, NULL);
            vdgx_timings_t *t = &res->timings;
            s_observe (self, t->load, "vdgx_phase_seconds{model=\"%s\",phase=\"load\"}", job.model);
            s_observe (self, t->text, "vdgx_phase_seconds{model=\"%s\",phase=\"text\"}", job.model);
            s_observe (self, t->denoise, "vdgx_phase_seconds{model=\"%s\",phase=\"denoise\"}", job.model);
            s_observe (self, t->decode, "vdgx_phase_seconds{model=\"%s\",phase=\"decode\"}", job.model);
            s_observe (self, t->mux, "vdgx_phase_seconds{model=\"%s\",phase=\"mux\"}", job.model);
            if (t->load > 0)
                s_observe (self, t->load, "vdgx_model_load_seconds{model=\"%s\"}", job.model);
            s_send_control (self, w, VDGX_CONTROL_ACK, job.id);
        }
    }
    else {
        unlink (path);
        const char *code = res->error.code? res->error.code: VDGX_E_WORKER_FAILED;
        s_job_finish (&job, streq (code, VDGX_E_CANCELLED)? "cancelled": "failed", code,
                      "%s", res->error.message);
        s_job_changed (self, &job, NULL);
        s_send_control (self, w, VDGX_CONTROL_ACK, job.id);
    }
    vdgx_jobrec_clear (&job);
    if (run)
        zhashx_delete (self->running, run->id);
    if (requeued)
        s_dispatch (self, model);       //  an idle worker may be waiting for it
}

//  Takes up to max of the results the batch received, in order; how many it took.
static size_t
s_take_results (s_broker_t *self, size_t max)
{
    size_t n = 0;
    s_finished_t *f;
    while (n < max && (f = (s_finished_t *) zlistx_detach (self->finished, NULL))) {
        s_take_result (self, f);
        s_finished_destroy ((void **) &f);
        n++;
    }
    return n;
}

//  Whether token is the one of one of the job's 16 attempts before the current one.
static bool
s_token_earlier (s_broker_t *self, const s_run_t *run, const char *token)
{
    for (uint32_t a = run->attempt > 16? run->attempt - 16: 1; a < run->attempt; a++)
        if (vdgx_acl_token_ok (self->acl, run->id, a, token))
            return true;
    return false;
}

static void
s_job_reply (s_broker_t *self, vdgx_rworker_t *w, bool final, zmsg_t *body)
{
    s_run_t *run = (s_run_t *) zhashx_lookup (self->running, w->task_id);
    zframe_t *frame = zmsg_first (body);
    if (!run || !frame) {
        s_count (self, "vdgx_malformed_total");
        return;
    }
    vdgx_wreply_t reply;
    vdgx_wreply_init (&reply);
    vdgx_error_t err;
    if (vdgx_wreply_decode (&reply, zframe_data (frame), zframe_size (frame), &err)
    ||  (final != (reply.type == VDGX_WREPLY_RESULT))) {
        s_count (self, "vdgx_malformed_total");
        vdgx_log_warn ("worker.badreply", "worker=%s id=%s field=%s message=\"%s\"", w->key,
                       run->id, err.field, err.message);
        vdgx_wreply_clear (&reply);
        if (final) {
            //  A FINAL we cannot read still ends the attempt.
            s_requeue_task (self, w, "unreadable result");
            s_worker_idle (self, w);
        }
        return;
    }
    if (*run->token) {
        //  Only the worker this attempt went to knows its token.
        const char *token = reply.type == VDGX_WREPLY_PROGRESS? reply.progress.token
                          : reply.type == VDGX_WREPLY_CHUNK? reply.chunk.token: reply.result.token;
        if (!vdgx_acl_token_ok (self->acl, run->id, run->attempt, token)
        &&  s_token_earlier (self, run, token)) {
            //  A reply of an earlier attempt of this job, on its way when the job was
            //  dispatched again (its worker reconnected, or the broker restarted, while it
            //  finished): its worker answers this attempt too. Dropped, and the attempt goes
            //  on (ending it would burn an attempt per late reply).
            s_count (self, "vdgx_worker_rejected_total{reason=\"stale\"}");
            vdgx_log_info ("worker.stale_reply", "worker=%s id=%s attempt=%u", w->key, run->id,
                           run->attempt);
            vdgx_wreply_clear (&reply);
            return;
        }
        if (!vdgx_acl_token_ok (self->acl, run->id, run->attempt, token)) {
            s_count (self, "vdgx_worker_rejected_total{reason=\"token\"}");
            vdgx_log_warn ("worker.badtoken", "worker=%s id=%s attempt=%u type=%s", w->key,
                           run->id, run->attempt, reply.type == VDGX_WREPLY_RESULT? "result"
                           : reply.type == VDGX_WREPLY_CHUNK? "chunk": "progress");
            vdgx_wreply_clear (&reply);
            if (final) {
                s_requeue_task (self, w, "result without the attempt token");
                s_worker_idle (self, w);
            }
            return;
        }
    }
    if (reply.type == VDGX_WREPLY_PROGRESS) {
        vdgx_phase_t old = run->phase;
        run->phase = reply.progress.phase;
        run->step = reply.progress.step;
        run->steps = reply.progress.steps;
        run->percent = reply.progress.percent;
        if (run->phase != VDGX_PHASE_LOADING && w->state == VDGX_WSTATE_LOADING) {
            w->state = VDGX_WSTATE_BUSY;
            vdgx_registry_worker_refresh (self->reg, w, zclock_mono ());
        }
        bool grew = false;
        if (reply.progress.has_ready) {
            //  A prefix is ready only when every byte of it arrived here, in order, and it
            //  grows; anything else is a broken worker and is not served.
            const vdgx_ready_t *r = &reply.progress.ready;
            s_run_flush (self, run);        //  the prefix's hash needs its bytes written
            if (s_run_fd (self, run) < 0 || r->bytes != run->received
            ||  (run->has_ready && (r->bytes <= run->ready.bytes || r->frames <= run->ready.frames))) {
                s_count (self, "vdgx_malformed_total");
                vdgx_log_warn ("worker.badready", "worker=%s id=%s ready_bytes=%llu received=%llu",
                               w->key, run->id, (unsigned long long) r->bytes,
                               (unsigned long long) run->received);
            }
            else {
                vdgx_sha256_t copy = run->written;
                vdgx_sha256_final_hex (&copy, run->ready_sha);
                run->ready = *r;
                run->has_ready = true;
                grew = true;
            }
        }
        if (!run->cancelled && grew)
            s_publish_chunk (self, run);
        if (!run->cancelled) {
            s_publish_job (self, run->id, run->model, VDGX_EVENT_PROGRESS, "running", run->phase,
                           run->step, run->steps, run->percent, NULL, NULL);
            if (old != run->phase)
                vdgx_jobstore_add_event (self->store, run->id, "phase", "running",
                                         vdgx_phase_name (run->phase), s_now ());
        }
    }
    else
    if (reply.type == VDGX_WREPLY_CHUNK) {
        if (run->broken || reply.chunk.offset != run->received) {
            //  Out of order or a gap: this attempt's output cannot be trusted.
            s_count (self, "vdgx_malformed_total");
            if (!run->broken) {
                s_run_drop_unwritten (run);
                if (run->fd >= 0)
                    close (run->fd);
                run->fd = -1;
                run->opened = true;         //  given up: no file is made for it now
                run->broken = true;
            }
        }
        else
        if (reply.chunk.size && !run->store_failed) {
            s_unwritten_t *u = (s_unwritten_t *) zmalloc (sizeof (s_unwritten_t));
            u->data = reply.chunk.data;     //  taken over from the decoded reply
            u->size = reply.chunk.size;
            reply.chunk.data = NULL;
            if (run->unwritten_last)
                run->unwritten_last->next = u;
            else
                run->unwritten = u;
            run->unwritten_last = u;
            run->unwritten_bytes += u->size;
            run->unwritten_total = &self->unwritten_bytes;
            self->unwritten_bytes += u->size;
            run->received += u->size;
            if (!run->unwritten_list) {
                run->unwritten_list = self->unwritten;
                run->unwritten_handle = zlistx_add_end (self->unwritten, run);
            }
            if (self->unwritten_bytes > S_UNWRITTEN_MAX)
                s_run_flush (self, run);
        }
    }
    else {
        //  The worker is done with this job: it gets its next one now, and the result is
        //  taken before the batch commits (the worker keeps it until its ack, which waits
        //  for that commit to be durable).
        int64_t read_at = zclock_usecs ();
        s_finished_t *f = (s_finished_t *) zmalloc (sizeof (s_finished_t));
        f->run = run;
        f->result = reply.result;
        zmsg_remove (body, frame);
        f->frame = frame;
        f->worker = strdup (w->key);
        snprintf (f->weights_id, sizeof f->weights_id, "%s", w->weights_id);
        zlistx_add_end (self->finished, f);
        run->worker = NULL;
        s_worker_idle (self, w);
        //  The broker's own share of a worker's wait between jobs: from reading its FINAL
        //  to sending it the next one (the time the FINAL spent in the sockets before is
        //  the network's and the scheduler's, and not seen here).
        if (w->task != VDGX_TASK_NONE)
            s_observe_into (self, s_fine_bounds, S_FINE_BUCKETS,
                            (double) (zclock_usecs () - read_at) / 1e6, "vdgx_redispatch_seconds");
    }
    vdgx_wreply_clear (&reply);
}

static void
s_worker_message (s_broker_t *self, const char *key, zframe_t *identity, int proto, bool delim,
                  uint8_t command, zmsg_t **msg_p, zframe_t *meta)
{
    zmsg_t *msg = *msg_p;
    int64_t now = zclock_mono ();
    if (command == VDGX_MDPW_READY) {
        char *service = zmsg_popstr (msg);
        if (!service) {
            s_count (self, "vdgx_malformed_total");
            return;
        }
        vdgx_peer_t peer;
        vdgx_acl_peer (self->acl, meta, &peer);
        s_worker_ready (self, key, identity, proto, delim, service, msg, &peer);
        free (service);
        return;
    }
    vdgx_rworker_t *w = vdgx_registry_worker (self->reg, key);
    if (w && vdgx_acl_curve (self->acl)) {
        //  The same routing id from another key (a reconnect that took over the id): not
        //  the worker that registered.
        vdgx_peer_t peer;
        vdgx_acl_peer (self->acl, meta, &peer);
        s_wauth_t *auth = (s_wauth_t *) zhashx_lookup (self->wauth, key);
        if (!auth || !streq (auth->user, peer.key)) {
            s_count (self, "vdgx_worker_rejected_total{reason=\"identity\"}");
            vdgx_log_warn ("worker.impostor", "worker=%s peer=%s", key, peer.owner);
            return;
        }
    }
    if (!w) {
        //  Not registered (e.g. the broker restarted): tell it to reconnect with READY.
        if (command != VDGX_MDPW_DISCONNECT) {
            vdgx_rworker_t tmp;
            memset (&tmp, 0, sizeof tmp);
            tmp.address = identity;
            tmp.proto = proto;
            s_send_worker (self, &tmp, VDGX_MDPW_DISCONNECT, NULL, NULL, delim);
        }
        return;
    }
    vdgx_registry_worker_touch (self->reg, w, now);
    switch (command) {
        case VDGX_MDPW_HEARTBEAT: {
            zframe_t *state = zmsg_first (msg);
            if (state && s_apply_state (self, w, state, false))
                s_count (self, "vdgx_malformed_total");
            if (w->state == VDGX_WSTATE_DRAINING && w->task == VDGX_TASK_NONE)
                vdgx_registry_worker_refresh (self->reg, w, now);
            break;
        }
        case VDGX_MDPW_DISCONNECT:
            s_worker_delete (self, w, "worker disconnected", false);
            break;
        case VDGX_MDPW_PARTIAL:
        case VDGX_MDPW_FINAL: {
            zframe_t *address = zmsg_pop (msg);
            zframe_t *empty = zmsg_pop (msg);
            bool ok = address && empty && zframe_size (empty) == 0;
            zframe_destroy (&empty);
            if (!ok || w->task == VDGX_TASK_NONE) {
                s_count (self, "vdgx_malformed_total");
                zframe_destroy (&address);
                break;
            }
            if (w->task == VDGX_TASK_REQUEST) {
                s_request_t *r = (s_request_t *) w->task_data;
                if (!zframe_eq (address, r->client)) {
                    s_count (self, "vdgx_malformed_total");
                    zframe_destroy (&address);
                    break;
                }
                bool final = command == VDGX_MDPW_FINAL;
                s_send_client (self, r->client, r->proto, r->delim, r->service,
                               final? VDGX_MDPC_FINAL: VDGX_MDPC_PARTIAL, msg_p);
                if (final) {
                    s_request_destroy (&r);
                    s_worker_idle (self, w);
                }
            }
            else {
                if (zframe_size (address) != strlen (w->task_id)
                ||  memcmp (zframe_data (address), w->task_id, zframe_size (address))) {
                    s_count (self, "vdgx_malformed_total");     //  late reply of an old job
                    zframe_destroy (&address);
                    break;
                }
                s_job_reply (self, w, command == VDGX_MDPW_FINAL, msg);
            }
            zframe_destroy (&address);
            break;
        }
        default:
            s_count (self, "vdgx_malformed_total");
            break;
    }
}

//  ---------------------------------------------------------------------------------------
//  Job service

//  What is wrong with a row that SQLite reads but the broker cannot make sense of (bytes
//  changed on disk, a hand edit), or NULL. Such a job reads as failed, with the reason,
//  instead of breaking every list that contains it.
static const char *
s_row_damage (const vdgx_jobrec_t *job)
{
    vdgx_job_state_t state;
    if (vdgx_job_state_parse (job->state, &state))
        return "unknown state";
    if (!vdgx_mp_utf8_valid (job->model, strlen (job->model)) || !s_service_name_ok (job->model))
        return "bad model name";
    if (!vdgx_mp_utf8_valid (job->err_msg, strlen (job->err_msg))
    ||  !vdgx_mp_utf8_valid (job->err_code, strlen (job->err_code)))
        return "bad error text";
    return NULL;
}

static void
s_fill_damaged (const vdgx_jobrec_t *job, vdgx_jobstatus_t *st, const char *damage)
{
    vdgx_jobstatus_clear (st);
    vdgx_jobstatus_init (st);
    snprintf (st->id, sizeof st->id, "%s", job->id);
    snprintf (st->model, sizeof st->model, "%s", s_service_name_ok (job->model)
              && vdgx_mp_utf8_valid (job->model, strlen (job->model))? job->model: "unknown");
    st->state = VDGX_JOB_FAILED;
    st->phase = VDGX_PHASE_DONE;
    st->created_at = job->created_at;
    st->has_error = true;
    vdgx_error_set (&st->error, VDGX_E_INTERNAL, NULL, "the store row of this job is damaged"
                    " (%s); the job cannot be served", damage);
}

static void
s_fill_status (s_broker_t *self, const vdgx_jobrec_t *job, vdgx_jobstatus_t *st)
{
    const char *damage = s_row_damage (job);
    if (damage) {
        vdgx_jobstatus_init (st);
        s_fill_damaged (job, st, damage);
        return;
    }
    vdgx_jobstatus_init (st);
    snprintf (st->id, sizeof st->id, "%s", job->id);
    snprintf (st->model, sizeof st->model, "%s", job->model);
    vdgx_job_state_parse (job->state, &st->state);
    st->phase = s_phase_of (job);
    st->attempt = job->attempt;
    st->created_at = job->created_at;
    st->started_at = job->started_at;
    st->finished_at = job->finished_at;
    st->cached = job->cached;
    s_run_t *run = (s_run_t *) zhashx_lookup (self->running, job->id);
    if (run && streq (job->state, "running")) {
        st->phase = run->phase;
        st->step = run->step;
        st->steps = run->steps;
        st->percent = run->percent;
        st->has_ready = run->has_ready;
        st->ready = run->ready;
    }
    if (streq (job->state, "completed"))
        st->percent = 100;
    st->queue_position = (uint32_t) vdgx_jobqueue_position (self->queue, job->id);
    if (*job->err_code) {
        st->has_error = true;
        const char *code = vdgx_error_code_intern (job->err_code);
        vdgx_error_set (&st->error, code? code: VDGX_E_INTERNAL, NULL, "%s", job->err_msg);
    }
    if (job->result && streq (job->state, "completed")) {
        vdgx_result_t res;
        vdgx_result_init (&res);
        vdgx_error_t err;
        if (vdgx_result_decode (&res, job->result, job->result_size, &err) == 0 && res.ok) {
            st->has_result = true;
            st->result = res.video;
        }
        vdgx_result_clear (&res);
    }
    vdgx_error_t err;
    if (job->request && vdgx_genreq_decode (&st->request, job->request, job->request_size, &err) == 0) {
        st->has_request = true;
        //  Images stay in the store (a retried job gets them); a status or a list of a
        //  thousand jobs does not carry them.
        vdgx_genreq_drop_images (&st->request);
    }
    if (!st->has_request)
        s_fill_damaged (job, st, "the request does not decode");
    else
    if (streq (job->state, "completed") && !st->has_result)
        s_fill_damaged (job, st, "the result does not decode");
}

static void
s_new_id (char *id, size_t size)
{
    //  Time first so ids sort by creation (list paging), random tail against collisions.
    uint64_t ms = (uint64_t) zclock_time ();
    uint32_t r1 = (uint32_t) randof (0x10000) << 16 | (uint32_t) randof (0x10000);
    snprintf (id, size, "%011llx%08x", (unsigned long long) ms, r1);
}

static uint64_t
s_random_seed (void)
{
    uint64_t seed = 0;
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read (fd, &seed, sizeof seed) != sizeof seed)
            seed = 0;
        close (fd);
    }
    if (seed == 0)
        seed = ((uint64_t) zclock_usecs () << 20) ^ (uint64_t) getpid ();
    return seed & 0x7fffffffffffffffULL;
}

static zframe_t *
s_reply_frame (vdgx_jobreply_t *reply)
{
    reply->ok = true;
    zframe_t *frame = vdgx_jobreply_frame (reply);
    if (!frame)
        frame = s_error_frame (VDGX_E_INTERNAL, NULL, 0, "cannot encode the reply");
    return frame;
}

//  Is gr a retry of job's request? Every parameter that changes the output must agree; a
//  retry without a seed matches the seed the broker chose for the first submit.
static bool
s_same_request (const vdgx_jobrec_t *job, const vdgx_genreq_t *gr)
{
    vdgx_genreq_t stored, retry;
    vdgx_genreq_init (&stored);
    vdgx_genreq_init (&retry);
    vdgx_error_t err;
    bool same = false;
    if (vdgx_genreq_decode (&stored, job->request, job->request_size, &err) == 0
    &&  vdgx_genreq_copy (&retry, gr) == 0) {
        if (!retry.has_seed) {
            retry.has_seed = stored.has_seed;
            retry.seed = stored.seed;
        }
        char *a = vdgx_genreq_canonical (&stored), *b = vdgx_genreq_canonical (&retry);
        same = a && b && streq (a, b);
        free (a);
        free (b);
    }
    vdgx_genreq_clear (&stored);
    vdgx_genreq_clear (&retry);
    return same;
}

//  The stored idempotency key: the client's own for the operator, scoped by owner for
//  everyone else (one user's key never finds another user's job).
static void
s_idem_key (const char *owner, const char *key, char out [129])
{
    if (!*owner || !*key) {
        snprintf (out, 129, "%s", key);
        return;
    }
    vdgx_sha256_t *h = vdgx_sha256_new ();
    vdgx_sha256_update (h, owner, strlen (owner) + 1);     //  with its NUL as separator
    vdgx_sha256_update (h, key, strlen (key));
    char hex [VDGX_SHA256_HEX_SIZE];
    vdgx_sha256_final_hex (h, hex);
    vdgx_sha256_destroy (&h);
    snprintf (out, 129, "o:%s", hex);
}

//  A submit the store could not write: a 503 with Retry-After for the client, and the
//  store degraded until a probe shows it writes again. (A duplicate id or idempotency key
//  cannot happen here: both were looked up first.)
static zframe_t *
s_store_refused (s_broker_t *self, const vdgx_jobrec_t *job)
{
    char path [4096];
    vdgx_jobstore_output_path (self->store, job->id, path, sizeof path);
    unlink (path);              //  a cache hit's shared output, if it was made
    vdgx_storeguard_fault (self->guard, "cannot store a submitted job");
    s_count (self, "vdgx_jobs_rejected_total{model=\"%s\",reason=\"store\"}", job->model);
    return s_error_frame (VDGX_E_UNAVAILABLE, NULL, 5000,
                          "the job store cannot write (%s); retry later",
                          vdgx_storeguard_reason (self->guard));
}

//  ---------------------------------------------------------------------------------------
//  Abuse limits: a byte budget per client, a cap on the request bytes each owner has waiting
//  (docs/SECURITY.md). Peers with the admin role (operators, trusted local peers) are exempt.

#define S_BUDGET_CLIENTS_MAX 16384  //  client identities whose budget is tracked at once
#define S_BUDGET_LOG_MS      10000  //  a refused client is logged once per interval
#define S_QUOTA_RETRY_MS     5000   //  the retry hint of a refusal by the owner's cap

//  A warning for a refusal, at most one per client and reason per S_BUDGET_LOG_MS: a flood
//  makes one line per interval (the metrics count every refusal).
static void
s_budget_log (s_broker_t *self, const char *reason, const char *who, const char *fmt, ...)
{
    char key [VDGX_OWNER_MAX + 80];
    snprintf (key, sizeof key, "%s|%s", reason, who);
    if (!vdgx_ratelimit_take (self->budget_log, key, zclock_mono (), NULL))
        return;
    char text [200];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    vdgx_log_warn ("jobs.over_budget", "reason=%s client=\"%s\" %s (logged once per %d s)",
                   reason, who, text, S_BUDGET_LOG_MS / 1000);
}

//  Takes bytes (a vdgx.jobs request) from the client's budget: NULL when it may go on,
//  else the error reply (queue_full with the wait until the budget holds it; too_large for
//  a request over the whole burst). The client is what the peer proved: its CURVE key, or
//  without CURVE its owner (a plain peer off the trusted networks is named by its address,
//  so new connections or routing ids do not make a new client); for an admin peer acting for
//  an owner (the REST bridge for its API keys), that owner. A refused request takes nothing.
static zframe_t *
s_budget_take (s_broker_t *self, const vdgx_peer_t *peer, const char *owner, bool on_behalf,
               bool admin, size_t bytes)
{
    if (admin || !self->cfg.peer_rate)
        return NULL;
    char who [VDGX_OWNER_MAX + 64];
    if (on_behalf || !*peer->key)
        snprintf (who, sizeof who, "owner:%s", owner);
    else
        snprintf (who, sizeof who, "key:%s", peer->key);
    int64_t retry = 0;
    if (vdgx_ratelimit_take_n (self->budget, who, (double) bytes, zclock_mono (), &retry))
        return NULL;
    s_count (self, "vdgx_budget_refused_total{reason=\"rate\"}");
    s_count_add (self, bytes, "vdgx_budget_refused_bytes_total{reason=\"rate\"}");
    s_budget_log (self, "rate", who, "bytes=%zu retry_ms=%lld", bytes, (long long) retry);
    if (retry <= 0)
        return s_error_frame (VDGX_E_TOO_LARGE, NULL, 0, "a request of %zu bytes is over the "
                              "per-client budget (%llu bytes at once)", bytes,
                              (unsigned long long) self->cfg.peer_burst);
    return s_error_frame (VDGX_E_QUEUE_FULL, NULL, (uint64_t) retry, "this client sent more "
                          "request bytes than its budget (%llu bytes/s, %llu at once); retry in "
                          "%lld ms", (unsigned long long) self->cfg.peer_rate,
                          (unsigned long long) self->cfg.peer_burst, (long long) retry);
}

//  A submit of job that would take its owner's unfinished jobs over --owner-queued-max: the
//  error reply, too_large with a retry hint (it passes once some of those jobs have ended).
static zframe_t *
s_quota_refused (s_broker_t *self, const char *owner, const vdgx_jobrec_t *job)
{
    uint64_t used = vdgx_quota_used (self->quota, owner);
    s_count (self, "vdgx_budget_refused_total{reason=\"quota\"}");
    s_count (self, "vdgx_jobs_rejected_total{model=\"%s\",reason=\"quota\"}", job->model);
    s_budget_log (self, "quota", owner, "queued_bytes=%llu request_bytes=%zu",
                  (unsigned long long) used, job->request_size);
    return s_error_frame (VDGX_E_TOO_LARGE, NULL, S_QUOTA_RETRY_MS, "the unfinished jobs of "
                          "this client hold %llu bytes of requests; this one (%zu bytes) would take "
                          "them over the cap of %llu: retry when some have ended",
                          (unsigned long long) used, job->request_size,
                          (unsigned long long) vdgx_quota_cap (self->quota));
}

static zframe_t *
s_submit (s_broker_t *self, vdgx_jobcmd_t *cmd, const char *owner, bool admin)
{
    vdgx_genreq_t *gr = &cmd->request;
    char idem [129];
    s_idem_key (owner, gr->idempotency_key, idem);
    if (self->stopping)
        return s_error_frame (VDGX_E_UNAVAILABLE, NULL, 1000, "the broker is shutting down");
    if (vdgx_storeguard_degraded (self->guard)) {
        s_count (self, "vdgx_jobs_rejected_total{model=\"%s\",reason=\"store\"}", gr->model);
        return s_error_frame (VDGX_E_UNAVAILABLE, NULL, 5000,
                              "the job store cannot write (%s); retry later",
                              vdgx_storeguard_reason (self->guard));
    }
    if (!zhashx_lookup (self->known, gr->model)) {
        //  Say which models there are: the fix is usually a typo.
        zlistx_t *names = zhashx_keys (self->known);
        zlistx_set_comparator (names, (czmq_comparator *) strcmp);
        zlistx_sort (names);
        char known [512] = "";
        size_t len = 0;
        for (const char *m = (const char *) zlistx_first (names); m && len < sizeof known - 1;
             m = (const char *) zlistx_next (names))
            len += (size_t) snprintf (known + len, sizeof known - len, "%s%s", len? ", ": "", m);
        zlistx_destroy (&names);
        return s_error_frame (VDGX_E_UNKNOWN_MODEL, "request.model", 0,
                              "model '%s' is not known to the broker; known models: %s",
                              gr->model, *known? known: "none (no worker has registered"
                              " and none is configured)");
    }
    vdgx_jobreply_t reply;
    vdgx_jobreply_init (&reply, VDGX_JOBCMD_SUBMIT);
    vdgx_jobrec_t job;
    if (*idem && vdgx_jobstore_find_idem (self->store, idem, &job) == 0) {
        if (!s_same_request (&job, gr)) {
            zframe_t *frame = s_error_frame (VDGX_E_CONFLICT, "request.idempotency_key", 0,
                                             "idempotency key already used by job %s for a different request",
                                             job.id);
            vdgx_jobrec_clear (&job);
            vdgx_jobreply_clear (&reply);
            return frame;
        }
        //  A retry: the same job, never a second run.
        s_count (self, "vdgx_jobs_idempotent_total{model=\"%s\"}", job.model);
        snprintf (reply.id, sizeof reply.id, "%s", job.id);
        vdgx_job_state_parse (job.state, &reply.state);
        reply.cached = job.cached;
        reply.queue_position = (uint32_t) vdgx_jobqueue_position (self->queue, job.id);
        vdgx_jobrec_clear (&job);
        zframe_t *frame = s_reply_frame (&reply);
        vdgx_jobreply_clear (&reply);
        return frame;
    }
    //  A precision no configured (or registered) worker of the model runs: refused now, not
    //  accepted to wait for ever or to fail on a worker that runs another one.
    const char *precs = (const char *) zhashx_lookup (self->precisions, gr->model);
    if (*gr->precision && precs && *precs && !vdgx_registry_list_has (precs, gr->precision)) {
        vdgx_jobreply_clear (&reply);
        s_count (self, "vdgx_jobs_rejected_total{model=\"%s\",reason=\"precision\"}", gr->model);
        return s_error_frame (VDGX_E_BAD_REQUEST, "request.precision", 0,
                              "no worker of model '%s' runs %s (its workers run: %s)",
                              gr->model, gr->precision, precs);
    }
    //  What the model's workers said it accepts: refused now, not when a worker picks it up.
    const vdgx_limits_t *limits = (const vdgx_limits_t *) zhashx_lookup (self->limits, gr->model);
    vdgx_error_t lerr;
    if (limits && vdgx_limits_check (limits, gr->model, gr, &lerr)) {
        vdgx_jobreply_clear (&reply);
        s_count (self, "vdgx_jobs_rejected_total{model=\"%s\",reason=\"limits\"}", gr->model);
        char field [80];
        snprintf (field, sizeof field, "request.%s", lerr.field);
        return s_error_frame (VDGX_E_BAD_REQUEST, field, 0, "%s", lerr.message);
    }
    if (!gr->has_seed) {
        gr->has_seed = true;
        gr->seed = s_random_seed ();
    }
    memset (&job, 0, sizeof job);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    if (vdgx_genreq_pack (gr, &pk)) {
        msgpack_sbuffer_destroy (&sbuf);
        vdgx_jobreply_clear (&reply);
        return s_error_frame (VDGX_E_INTERNAL, NULL, 0, "cannot encode the request");
    }
    job.request = (uint8_t *) sbuf.data;        //  handed over to the record
    job.request_size = sbuf.size;
    s_new_id (job.id, sizeof job.id);
    snprintf (job.model, sizeof job.model, "%s", gr->model);
    snprintf (job.idem_key, sizeof job.idem_key, "%s", idem);
    snprintf (job.owner, sizeof job.owner, "%s", owner);
    job.priority = (int) gr->priority;
    job.created_at = s_now ();
    s_cache_key (job.model, s_weights_id (self, job.model), job.request, job.request_size,
                 job.cache_key);
    vdgx_jobrec_t hit;
    bool cached = !gr->no_cache && *job.cache_key
               && vdgx_jobstore_find_cached (self->store, job.cache_key, &hit) == 0;
    zframe_t *frame = NULL;
    if (cached) {
        snprintf (job.state, sizeof job.state, "completed");
        job.cached = true;
        job.started_at = job.finished_at = job.created_at;
        job.result = hit.result;
        job.result_size = hit.result_size;
        hit.result = NULL;
        job.size = hit.size;
        snprintf (job.sha256, sizeof job.sha256, "%s", hit.sha256);
        job.seq = vdgx_jobstore_next_seq (self->store);
        if (vdgx_jobstore_share_output (self->store, hit.id, job.id)
        ||  vdgx_jobstore_insert (self->store, &job))
            frame = s_store_refused (self, &job);
        else {
            vdgx_storeguard_inserted (self->guard, job.id);
            s_count (self, "vdgx_cache_hits_total{model=\"%s\"}", job.model);
            s_count (self, "vdgx_jobs_submitted_total{model=\"%s\"}", job.model);
            s_job_changed (self, &job, "cache hit");
        }
        vdgx_jobrec_clear (&hit);
    }
    else
    if (!admin && !vdgx_quota_allows (self->quota, owner, job.request_size))
        frame = s_quota_refused (self, owner, &job);
    else
    if (vdgx_jobqueue_full (self->queue, job.model)) {
        s_count (self, "vdgx_jobs_rejected_total{model=\"%s\",reason=\"queue_full\"}", job.model);
        frame = s_error_frame (VDGX_E_QUEUE_FULL, NULL, 5000,
                               "the queue of model '%s' is full (%zu jobs); retry later",
                               job.model, self->cfg.queue_max);
    }
    else {
        snprintf (job.state, sizeof job.state, "queued");
        job.seq = vdgx_jobstore_next_seq (self->store);
        if (vdgx_jobstore_insert (self->store, &job))
            frame = s_store_refused (self, &job);
        else {
            vdgx_storeguard_inserted (self->guard, job.id);
            if (!gr->no_cache)
                s_count (self, "vdgx_cache_misses_total{model=\"%s\"}", job.model);
            s_count (self, "vdgx_jobs_submitted_total{model=\"%s\"}", job.model);
            vdgx_jobstore_add_event (self->store, job.id, "state", "queued", "submit", s_now ());
            s_queue_job (self, &job, false);
            vdgx_quota_add (self->quota, job.id, owner, job.request_size);
            s_remember_precision (self, job.id, gr->precision);
            s_publish_job (self, job.id, job.model, VDGX_EVENT_STATE, "queued", VDGX_PHASE_QUEUED,
                           0, 0, 0, NULL, NULL);
        }
    }
    if (!frame) {
        snprintf (reply.id, sizeof reply.id, "%s", job.id);
        reply.cached = job.cached;
        reply.queue_position = (uint32_t) vdgx_jobqueue_position (self->queue, job.id);
        vdgx_job_state_parse (job.state, &reply.state);
        frame = s_reply_frame (&reply);
        vdgx_log_info ("job.submit", "id=%s model=%s priority=%s cached=%d", job.id, job.model,
                       vdgx_priority_name (gr->priority), job.cached);
    }
    vdgx_jobrec_clear (&job);
    vdgx_jobreply_clear (&reply);
    if (!cached)
        s_dispatch (self, gr->model);
    return frame;
}

//  Cancels a job (queued: leaves the queue; running: CONTROL cancel). 0 when it changed.
static int
s_cancel (s_broker_t *self, vdgx_jobrec_t *job, const char *why)
{
    if (vdgx_jobrec_terminal (job))
        return -1;
    if (streq (job->state, "queued")) {
        vdgx_jobqueue_remove (self->queue, job->id);
    }
    s_run_t *run = (s_run_t *) zhashx_lookup (self->running, job->id);
    if (run) {
        run->cancelled = true;
        //  The worker stops at its next step boundary and answers FINAL; until then it
        //  stays busy. A worker without CONTROL runs the job to its end. (No worker: it
        //  has answered already, and the result is dropped when it is taken.)
        if (run->worker)
            s_send_control (self, run->worker, VDGX_CONTROL_CANCEL, job->id);
    }
    s_job_finish (job, "cancelled", VDGX_E_CANCELLED, "%s", why);
    s_job_changed (self, job, why);
    return 0;
}

//  A completed job whose output file is gone or changed becomes failed: output_missing
//  (never a 200 with bytes that are not there). True when that happened.
static bool
s_output_gone (s_broker_t *self, vdgx_jobrec_t *job, bool hash)
{
    if (!streq (job->state, "completed"))
        return false;
    char why [300];
    if (vdgx_outcheck_verify (self->outcheck, job, hash, why, sizeof why) == 0)
        return false;
    vdgx_log_error ("job.output_missing", "id=%s reason=\"%s\"", job->id, why);
    s_count (self, "vdgx_outputs_missing_total{model=\"%s\"}", job->model);
    s_job_finish (job, "failed", VDGX_E_OUTPUT_MISSING, "%s", why);
    s_job_changed (self, job, "output missing");
    return true;
}

//  The `result` of a running streaming job: bytes of its ready prefix, read from the attempt's
//  temp output (append-only while the job runs), marked partial, with the prefix's SHA-256.
static zframe_t *
s_read_partial (s_broker_t *self, s_run_t *run, const vdgx_jobcmd_t *cmd, vdgx_jobreply_t *reply)
{
    uint64_t size = run->ready.bytes;
    if (cmd->offset > size)
        return s_error_frame (VDGX_E_BAD_REQUEST, "offset", 0, "offset %llu is past the ready "
                              "part (%llu bytes so far)", (unsigned long long) cmd->offset,
                              (unsigned long long) size);
    char path [4096];
    vdgx_jobstore_temp_path (self->store, run->id, run->attempt, path, sizeof path);
    size_t want = (size_t) (size - cmd->offset);
    if (want > cmd->length)
        want = cmd->length;
    uint8_t *data = (uint8_t *) malloc (want? want: 1);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 && data? pread (fd, data, want, (off_t) cmd->offset): -1;
    if (fd >= 0)
        close (fd);
    if (got != (ssize_t) want) {
        free (data);
        return s_error_frame (VDGX_E_UNAVAILABLE, NULL, 1000, "cannot read the ready part of "
                              "job '%s' now", run->id);
    }
    reply->size = size;
    snprintf (reply->sha256, sizeof reply->sha256, "%s", run->ready_sha);
    reply->offset = cmd->offset;
    reply->partial = true;
    reply->attempt = run->attempt;
    vdgx_jobreply_set_data (reply, data, want);
    free (data);
    return s_reply_frame (reply);
}

static zframe_t *
s_job_service (s_broker_t *self, zmsg_t *body, const vdgx_peer_t *peer)
{
    zframe_t *frame = zmsg_first (body);
    if (!frame)
        return s_error_frame (VDGX_E_BAD_REQUEST, "", 0, "empty request");
    vdgx_jobcmd_t cmd;
    vdgx_jobcmd_init (&cmd);
    vdgx_error_t err;
    if (vdgx_jobcmd_decode (&cmd, zframe_data (frame), zframe_size (frame), &err)) {
        s_count (self, "vdgx_jobs_bad_requests_total");
        return vdgx_error_frame (&err, 0);
    }
    //  What a failed sync refuses (s_release): replies on jobs and stored limits.
    self->job_state = cmd.cmd != VDGX_JOBCMD_MODELS && cmd.cmd != VDGX_JOBCMD_UNLOAD
                   && cmd.cmd != VDGX_JOBCMD_DRAIN;
    //  Who acts: the peer itself, or for an admin peer (the REST bridge) the owner and role
    //  it names. A user sees and changes only its own jobs; operators' commands need admin.
    char owner [VDGX_OWNER_MAX + 1];
    bool admin = peer->role == VDGX_ROLE_ADMIN;
    snprintf (owner, sizeof owner, "%s", peer->owner);
    if (*cmd.owner || cmd.has_role) {
        if (!admin) {
            s_count (self, "vdgx_forbidden_total{cmd=\"%s\"}", vdgx_jobcmd_name (cmd.cmd));
            vdgx_jobcmd_clear (&cmd);
            return s_error_frame (VDGX_E_FORBIDDEN, "owner", 0,
                                  "only an admin peer may act on behalf of an owner");
        }
        snprintf (owner, sizeof owner, "%s", cmd.owner);
        admin = cmd.has_role && cmd.admin;
    }
    zframe_t *over = s_budget_take (self, peer, owner, *cmd.owner || cmd.has_role, admin,
                                    zmsg_content_size (body));
    if (over) {
        vdgx_jobcmd_clear (&cmd);
        return over;
    }
    if (!admin && (cmd.cmd == VDGX_JOBCMD_UNLOAD || cmd.cmd == VDGX_JOBCMD_DRAIN
               ||  cmd.cmd == VDGX_JOBCMD_RESET_LIMITS)) {
        s_count (self, "vdgx_forbidden_total{cmd=\"%s\"}", vdgx_jobcmd_name (cmd.cmd));
        vdgx_log_warn ("jobs.forbidden", "cmd=%s owner=%s", vdgx_jobcmd_name (cmd.cmd), owner);
        zframe_t *frame = s_error_frame (VDGX_E_FORBIDDEN, "cmd", 0, "'%s' needs the admin role",
                                         vdgx_jobcmd_name (cmd.cmd));
        vdgx_jobcmd_clear (&cmd);
        return frame;
    }
    zframe_t *out = NULL;
    vdgx_jobreply_t reply;
    vdgx_jobreply_init (&reply, cmd.cmd);
    vdgx_jobrec_t job;
    memset (&job, 0, sizeof job);
    if (*cmd.id && !admin && vdgx_jobstore_get (self->store, cmd.id, &job) == 0
    &&  !streq (job.owner, owner)) {
        //  Someone else's job: as if it did not exist.
        s_count (self, "vdgx_forbidden_total{cmd=\"%s\"}", vdgx_jobcmd_name (cmd.cmd));
        out = s_error_frame (VDGX_E_NOT_FOUND, "id", 0, "no job '%s'", cmd.id);
        cmd.cmd = VDGX_JOBCMD_COUNT;
    }
    vdgx_jobrec_clear (&job);
    switch (cmd.cmd) {
        case VDGX_JOBCMD_COUNT:
            break;
        case VDGX_JOBCMD_SUBMIT:
            out = s_submit (self, &cmd, owner, admin);
            break;
        case VDGX_JOBCMD_STATUS:
        case VDGX_JOBCMD_CANCEL:
            if (vdgx_storeguard_get (self->guard, cmd.id, &job)) {
                out = s_error_frame (VDGX_E_NOT_FOUND, "id", 0, "no job '%s'", cmd.id);
                break;
            }
            if (cmd.cmd == VDGX_JOBCMD_STATUS)
                s_output_gone (self, &job, true);
            if (cmd.cmd == VDGX_JOBCMD_CANCEL && s_cancel (self, &job, "cancelled by client")
            &&  !streq (job.state, "cancelled")) {
                out = s_error_frame (VDGX_E_CONFLICT, "id", 0, "job '%s' is already %s",
                                     job.id, job.state);
                break;
            }
            vdgx_jobstatus_clear (&reply.job);
            s_fill_status (self, &job, &reply.job);
            out = s_reply_frame (&reply);
            break;
        case VDGX_JOBCMD_LIST: {
            char state [16] = "";
            if (cmd.has_state)
                snprintf (state, sizeof state, "%s", vdgx_job_state_name (cmd.state));
            zlistx_t *list = vdgx_jobstore_list_owned (self->store, admin? NULL: owner, state,
                                                       cmd.model, cmd.after, cmd.limit, cmd.desc);
            size_t n = 0;
            for (vdgx_jobrec_t *j = (vdgx_jobrec_t *) zlistx_first (list); j;
                 j = (vdgx_jobrec_t *) zlistx_next (list)) {
                if (n++ == cmd.limit) {
                    reply.has_more = true;
                    break;
                }
                vdgx_jobstatus_t st;
                s_fill_status (self, j, &st);
                vdgx_jobreply_add_job (&reply, &st);
                vdgx_jobstatus_clear (&st);
            }
            zlistx_destroy (&list);
            out = s_reply_frame (&reply);
            break;
        }
        case VDGX_JOBCMD_RESULT: {
            if (vdgx_storeguard_get (self->guard, cmd.id, &job)) {
                out = s_error_frame (VDGX_E_NOT_FOUND, "id", 0, "no job '%s'", cmd.id);
                break;
            }
            //  The first read of a download checks the whole file against its SHA-256.
            s_output_gone (self, &job, cmd.offset == 0);
            if (streq (job.err_code, VDGX_E_OUTPUT_MISSING)) {
                out = s_error_frame (VDGX_E_OUTPUT_MISSING, "id", 0, "the output of job '%s' is"
                                     " missing: %s", job.id, job.err_msg);
                break;
            }
            s_run_t *run = (s_run_t *) zhashx_lookup (self->running, job.id);
            if (streq (job.state, "running") && run && run->has_ready) {
                //  Streaming: the ready prefix of the output being received.
                out = s_read_partial (self, run, &cmd, &reply);
                break;
            }
            if (!streq (job.state, "completed")) {
                out = s_error_frame (VDGX_E_CONFLICT, "id", 0, "job '%s' is %s, not completed%s",
                                     job.id, job.state, streq (job.state, "running")
                                     ? " (no part of it is ready yet)": "");
                break;
            }
            if (cmd.offset > job.size) {
                out = s_error_frame (VDGX_E_BAD_REQUEST, "offset", 0,
                                     "offset %llu is past the end (%llu bytes)",
                                     (unsigned long long) cmd.offset, (unsigned long long) job.size);
                break;
            }
            char path [4096];
            vdgx_jobstore_output_path (self->store, job.id, path, sizeof path);
            int fd = open (path, O_RDONLY | O_CLOEXEC);
            size_t want = (size_t) (job.size - cmd.offset);
            if (want > cmd.length)
                want = cmd.length;
            uint8_t *data = (uint8_t *) malloc (want? want: 1);
            ssize_t got = fd >= 0? pread (fd, data, want, (off_t) cmd.offset): -1;
            if (fd >= 0)
                close (fd);
            if (got != (ssize_t) want) {
                free (data);
                if (s_output_gone (self, &job, false))
                    out = s_error_frame (VDGX_E_OUTPUT_MISSING, "id", 0, "the output of job '%s' is"
                                         " missing: %s", job.id, job.err_msg);
                else
                    out = s_error_frame (VDGX_E_INTERNAL, NULL, 0, "cannot read the output of '%s'",
                                         job.id);
                break;
            }
            reply.size = job.size;
            snprintf (reply.sha256, sizeof reply.sha256, "%s", job.sha256);
            reply.offset = cmd.offset;
            reply.attempt = job.attempt <= 1000? job.attempt: 0;
            vdgx_jobreply_set_data (&reply, data, want);
            free (data);
            out = s_reply_frame (&reply);
            break;
        }
        case VDGX_JOBCMD_DELETE:
            if (vdgx_storeguard_get (self->guard, cmd.id, &job)) {
                out = s_error_frame (VDGX_E_NOT_FOUND, "id", 0, "no job '%s'", cmd.id);
                break;
            }
            s_cancel (self, &job, "deleted by client");
            vdgx_jobstore_delete (self->store, job.id);
            vdgx_storeguard_forget (self->guard, job.id);
            zhashx_delete (self->want_precision, job.id);
            vdgx_outcheck_forget (self->outcheck, job.id);
            s_publish_job (self, job.id, job.model, VDGX_EVENT_STATE, job.state, s_phase_of (&job),
                           0, 0, 0, job.err_code, job.err_msg);
            snprintf (reply.id, sizeof reply.id, "%s", job.id);
            out = s_reply_frame (&reply);
            break;
        case VDGX_JOBCMD_UNLOAD: {
            if (!zhashx_lookup (self->known, cmd.model)) {
                out = s_error_frame (VDGX_E_UNKNOWN_MODEL, "model", 0, "model '%s' is not known",
                                     cmd.model);
                break;
            }
            zlist_t *workers = vdgx_registry_workers (self->reg);
            for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlist_first (workers); w;
                 w = (vdgx_rworker_t *) zlist_next (workers))
                if (streq (w->service, cmd.model) && w->control && w->task == VDGX_TASK_NONE
                &&  w->state == VDGX_WSTATE_WARM && !w->unload_asked) {
                    w->unload_asked = true;
                    vdgx_registry_worker_refresh (self->reg, w, zclock_mono ());
                    s_send_control (self, w, VDGX_CONTROL_UNLOAD, NULL);
                    reply.workers++;
                }
            zlist_destroy (&workers);
            out = s_reply_frame (&reply);
            break;
        }
        case VDGX_JOBCMD_DRAIN: {
            //  Maintenance of a host or a model: each matching worker finishes the job it holds,
            //  takes no other and leaves (its supervisor decides whether it comes back).
            if (!cmd.model [0] && !cmd.host [0]) {
                out = s_error_frame (VDGX_E_BAD_REQUEST, "model", 0,
                                     "drain needs a model, a host or both (not every worker at once)");
                break;
            }
            zlist_t *workers = vdgx_registry_workers (self->reg);
            for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlist_first (workers); w;
                 w = (vdgx_rworker_t *) zlist_next (workers))
                if ((!cmd.model [0] || streq (w->service, cmd.model))
                &&  (!cmd.host [0] || streq (w->host, cmd.host))
                &&  w->control && w->proto == 2 && !w->draining) {
                    w->draining = true;
                    vdgx_registry_worker_refresh (self->reg, w, zclock_mono ());
                    s_send_control (self, w, VDGX_CONTROL_DRAIN, NULL);
                    s_count (self, "vdgx_workers_drained_total{model=\"%s\"}", w->service);
                    vdgx_log_info ("worker.drain", "worker=%s model=%s host=%s", w->key, w->service,
                                   w->host);
                    reply.workers++;
                }
            zlist_destroy (&workers);
            out = s_reply_frame (&reply);
            break;
        }
        case VDGX_JOBCMD_RESET_LIMITS: {
            //  Forget what the model's workers advertised (a bad advertisement persisted);
            //  its allowed workers advertise again with their next heartbeat or READY.
            zhashx_delete (self->limits, cmd.model);
            if (vdgx_jobstore_limits_delete (self->store, cmd.model)) {
                out = s_error_frame (VDGX_E_UNAVAILABLE, NULL, 1000, "cannot update the store");
                break;
            }
            vdgx_rservice_t *s = vdgx_registry_service (self->reg, cmd.model, false);
            reply.workers = s? (uint32_t) s->workers: 0;
            s_count (self, "vdgx_limits_reset_total");
            vdgx_log_info ("model.limits_reset", "model=%s owner=%s", cmd.model, *owner? owner: "operator");
            out = s_reply_frame (&reply);
            break;
        }
        case VDGX_JOBCMD_MODELS: {
            for (const char *m = (const char *) zhashx_first (self->known); m;
                 m = (const char *) zhashx_next (self->known)) {
                const char *name = (const char *) zhashx_cursor (self->known);
                vdgx_svcinfo_t info;
                memset (&info, 0, sizeof info);
                snprintf (info.name, sizeof info.name, "%s", name);
                vdgx_rservice_t *s = vdgx_registry_service (self->reg, name, false);
                if (s) {
                    info.workers = (uint32_t) s->workers;
                    for (int i = 0; i < VDGX_WSTATE_COUNT; i++)
                        info.states [i] = (uint32_t) s->by_state [i];
                }
                const vdgx_limits_t *limits = (const vdgx_limits_t *) zhashx_lookup (self->limits, name);
                if (limits)
                    info.limits = *limits;
                vdgx_jobreply_add_model (&reply, &info);
            }
            out = s_reply_frame (&reply);
            break;
        }
        default:
            out = s_error_frame (VDGX_E_BAD_REQUEST, "cmd", 0, "unknown command");
            break;
    }
    vdgx_jobrec_clear (&job);
    vdgx_jobreply_clear (&reply);
    vdgx_jobcmd_clear (&cmd);
    return out;
}

//  ---------------------------------------------------------------------------------------
//  MMI

static void
s_pack_kstr (msgpack_packer *pk, const char *key, const char *value)
{
    vdgx_pack_str (pk, key);
    vdgx_pack_str (pk, value);
}

static void
s_pack_kuint (msgpack_packer *pk, const char *key, uint64_t value)
{
    vdgx_pack_str (pk, key);
    msgpack_pack_uint64 (pk, value);
}

static void
s_pack_states (msgpack_packer *pk, const size_t *by_state)
{
    msgpack_pack_map (pk, VDGX_WSTATE_COUNT);
    for (int i = 0; i < VDGX_WSTATE_COUNT; i++)
        s_pack_kuint (pk, vdgx_wstate_state_name ((vdgx_wstate_state_t) i), by_state [i]);
}

static size_t
s_running_of (s_broker_t *self, const char *model)
{
    size_t n = 0;
    for (s_run_t *run = (s_run_t *) zhashx_first (self->running); run;
         run = (s_run_t *) zhashx_next (self->running))
        if (streq (run->model, model))
            n++;
    return n;
}

static void
s_pack_services (s_broker_t *self, msgpack_packer *pk)
{
    zlist_t *list = vdgx_registry_services (self->reg);
    //  Known models without a live service record are listed too (0 workers).
    zlist_t *extra = zlist_new ();
    for (const char *v = (const char *) zhashx_first (self->known); v;
         v = (const char *) zhashx_next (self->known)) {
        const char *name = (const char *) zhashx_cursor (self->known);
        if (!vdgx_registry_service (self->reg, name, false))
            zlist_append (extra, (void *) name);
    }
    msgpack_pack_array (pk, zlist_size (list) + zlist_size (extra));
    size_t zero [VDGX_WSTATE_COUNT] = { 0 };
    for (vdgx_rservice_t *s = (vdgx_rservice_t *) zlist_first (list); s;
         s = (vdgx_rservice_t *) zlist_next (list)) {
        msgpack_pack_map (pk, 6);
        s_pack_kstr (pk, "name", s->name);
        s_pack_kuint (pk, "workers", s->workers);
        s_pack_kuint (pk, "queued", vdgx_jobqueue_depth (self->queue, s->name) + zlistx_size (s->requests));
        s_pack_kuint (pk, "running", s_running_of (self, s->name));
        vdgx_pack_str (pk, "states");
        s_pack_states (pk, s->by_state);
        s_pack_kstr (pk, "weights_id", s->weights_id);
    }
    for (const char *name = (const char *) zlist_first (extra); name;
         name = (const char *) zlist_next (extra)) {
        msgpack_pack_map (pk, 6);
        s_pack_kstr (pk, "name", name);
        s_pack_kuint (pk, "workers", 0);
        s_pack_kuint (pk, "queued", vdgx_jobqueue_depth (self->queue, name));
        s_pack_kuint (pk, "running", 0);
        vdgx_pack_str (pk, "states");
        s_pack_states (pk, zero);
        s_pack_kstr (pk, "weights_id", "");
    }
    zlist_destroy (&extra);
    zlist_destroy (&list);
}

static void
s_pack_worker (msgpack_packer *pk, vdgx_rworker_t *w, int64_t now)
{
    //  weights_id is 1..128 bytes when present (PROTOCOL.md 5.4): omitted when unknown.
    msgpack_pack_map (pk, w->weights_id [0]? 17: 16);
    s_pack_kstr (pk, "identity", w->key);
    s_pack_kstr (pk, "service", w->service);
    s_pack_kstr (pk, "host", w->host);
    s_pack_kuint (pk, "pid", w->pid);
    s_pack_kstr (pk, "state", vdgx_wstate_state_name (w->state));
    s_pack_kuint (pk, "rss_bytes", w->rss_bytes);
    s_pack_kuint (pk, "peak_bytes", w->peak_bytes);
    s_pack_kuint (pk, "model_bytes", w->model_bytes);
    s_pack_kuint (pk, "host_budget_bytes", w->host_budget_bytes);
    s_pack_kstr (pk, "device", w->device);
    vdgx_pack_str (pk, "precisions");
    char buf [sizeof w->precisions];
    snprintf (buf, sizeof buf, "%s", w->precisions);
    size_t n = 0;
    char *tok, *save = NULL;
    char *items [VDGX_LIST_MAX];
    for (tok = strtok_r (buf, ",", &save); tok && n < VDGX_LIST_MAX; tok = strtok_r (NULL, ",", &save))
        items [n++] = tok;
    msgpack_pack_array (pk, n);
    for (size_t i = 0; i < n; i++)
        vdgx_pack_str (pk, items [i]);
    s_pack_kstr (pk, "job", w->task == VDGX_TASK_JOB || w->task == VDGX_TASK_RESEND? w->task_id: "");
    vdgx_pack_str (pk, "ext");
    msgpack_pack_array (pk, w->control? 1: 0);
    if (w->control)
        vdgx_pack_str (pk, "control");
    vdgx_pack_str (pk, "pending");
    msgpack_pack_array (pk, 0);
    s_pack_kuint (pk, "idle_ms", w->task == VDGX_TASK_NONE? (uint64_t) (now - w->idle_since): 0);
    s_pack_kuint (pk, "protocol", (uint64_t) w->proto);
    if (w->weights_id [0])
        s_pack_kstr (pk, "weights_id", w->weights_id);
}

static void
s_pack_hist (msgpack_packer *pk, s_hist_t *h)
{
    msgpack_pack_map (pk, 4);
    vdgx_pack_str (pk, "buckets");
    msgpack_pack_array (pk, (uint32_t) h->nbounds);
    for (int i = 0; i < h->nbounds; i++)
        msgpack_pack_double (pk, h->bounds [i]);
    vdgx_pack_str (pk, "counts");          //  cumulative, Prometheus style; last = +Inf
    msgpack_pack_array (pk, (uint32_t) h->nbounds + 1);
    uint64_t cum = 0;
    for (int i = 0; i <= h->nbounds; i++) {
        cum += h->counts [i];
        msgpack_pack_uint64 (pk, cum);
    }
    s_pack_kuint (pk, "count", h->count);
    vdgx_pack_str (pk, "sum");
    msgpack_pack_double (pk, h->sum);
}

static zframe_t *
s_mmi (s_broker_t *self, const char *service, zmsg_t *body, const vdgx_peer_t *peer)
{
    //  Worker hosts and the broker's counters are for operators.
    if ((streq (service, "mmi.workers") || streq (service, "mmi.metrics"))
    &&  peer->role != VDGX_ROLE_ADMIN) {
        s_count (self, "vdgx_forbidden_total{cmd=\"%s\"}", service);
        return s_error_frame (VDGX_E_FORBIDDEN, NULL, 0, "%s needs the admin role", service);
    }
    if (streq (service, "mmi.service")) {
        char *name = zmsg_popstr (body);
        vdgx_rservice_t *s = name? vdgx_registry_service (self->reg, name, false): NULL;
        const char *code = s && s->workers? "200": "404";
        if (name && streq (name, VDGX_JOBS_SERVICE))
            code = "200";
        free (name);
        return zframe_new (code, 3);
    }
    if (!streq (service, "mmi.workers") && !streq (service, "mmi.services")
    &&  !streq (service, "mmi.health") && !streq (service, "mmi.metrics"))
        return zframe_new ("501", 3);
    //  Bodies are {} or {service}; anything else is a bad request.
    char filter [VDGX_SERVICE_MAX + 1] = "";
    zframe_t *frame = zmsg_first (body);
    if (frame) {
        msgpack_unpacked u;
        vdgx_error_t err;
        if (vdgx_unpack (&u, zframe_data (frame), zframe_size (frame), &err) == 0) {
            bool ok = u.data.type == MSGPACK_OBJECT_MAP;
            for (uint32_t i = 0; ok && i < u.data.via.map.size; i++) {
                msgpack_object_kv *kv = &u.data.via.map.ptr [i];
                if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 7
                &&  memcmp (kv->key.via.str.ptr, "service", 7) == 0
                &&  kv->val.type == MSGPACK_OBJECT_STR && kv->val.via.str.size <= VDGX_SERVICE_MAX) {
                    memcpy (filter, kv->val.via.str.ptr, kv->val.via.str.size);
                    filter [kv->val.via.str.size] = 0;
                }
                else
                    ok = false;
            }
            msgpack_unpacked_destroy (&u);
            if (!ok)
                return s_error_frame (VDGX_E_BAD_REQUEST, "", 0, "expected {} or {service}");
        }
        else
            return vdgx_error_frame (&err, 0);
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    int64_t now = zclock_mono ();
    if (streq (service, "mmi.workers")) {
        zlist_t *workers = vdgx_registry_workers (self->reg);
        size_t n = 0;
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlist_first (workers); w;
             w = (vdgx_rworker_t *) zlist_next (workers))
            if (!*filter || streq (filter, w->service))
                n++;
        msgpack_pack_map (&pk, 2);
        vdgx_pack_str (&pk, "ok");
        msgpack_pack_true (&pk);
        vdgx_pack_str (&pk, "workers");
        msgpack_pack_array (&pk, n);
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlist_first (workers); w;
             w = (vdgx_rworker_t *) zlist_next (workers))
            if (!*filter || streq (filter, w->service))
                s_pack_worker (&pk, w, now);
        zlist_destroy (&workers);
    }
    else
    if (streq (service, "mmi.services")) {
        msgpack_pack_map (&pk, 2);
        vdgx_pack_str (&pk, "ok");
        msgpack_pack_true (&pk);
        vdgx_pack_str (&pk, "services");
        s_pack_services (self, &pk);
    }
    else
    if (streq (service, "mmi.health")) {
        uint64_t jobs = 0, bytes = 0;
        bool store_ok = vdgx_jobstore_health (self->store, &jobs, &bytes) == 0
                     && !vdgx_storeguard_degraded (self->guard);
        msgpack_pack_map (&pk, 9);
        vdgx_pack_str (&pk, "ok");
        msgpack_pack_true (&pk);
        vdgx_pack_str (&pk, "healthy");
        if (store_ok && !self->stopping)
            msgpack_pack_true (&pk);
        else
            msgpack_pack_false (&pk);
        vdgx_pack_str (&pk, "uptime_s");
        msgpack_pack_double (&pk, (now - self->start_mono) / 1000.0);
        vdgx_pack_str (&pk, "store");
        msgpack_pack_map (&pk, 6);
        vdgx_pack_str (&pk, "ok");
        if (store_ok)
            msgpack_pack_true (&pk);
        else
            msgpack_pack_false (&pk);
        s_pack_kstr (&pk, "state", store_ok? "ok": "degraded");
        s_pack_kstr (&pk, "reason", store_ok? "": vdgx_storeguard_degraded (self->guard)?
                     vdgx_storeguard_reason (self->guard): "the database does not answer");
        s_pack_kuint (&pk, "unsaved", vdgx_storeguard_unsaved (self->guard));
        s_pack_kuint (&pk, "jobs", jobs);
        s_pack_kuint (&pk, "output_bytes", bytes);
        s_pack_kuint (&pk, "queued", vdgx_jobqueue_size (self->queue));
        s_pack_kuint (&pk, "running", zhashx_size (self->running));
        s_pack_kuint (&pk, "workers", vdgx_registry_worker_count (self->reg));
        s_pack_kstr (&pk, "version", "VDGX/1");
        vdgx_pack_str (&pk, "services");
        s_pack_services (self, &pk);
    }
    else
    if (streq (service, "mmi.metrics")) {
        //  Gauges are computed now and reported with the counters.
        zlist_t *workers = vdgx_registry_workers (self->reg);
        zhashx_t *gauges = zhashx_new ();
        zhashx_set_destructor (gauges, s_free_item);
        char key [256];
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlist_first (workers); w;
             w = (vdgx_rworker_t *) zlist_next (workers)) {
            snprintf (key, sizeof key, "vdgx_worker_rss_bytes{worker=\"%s\",model=\"%s\"}", w->key, w->service);
            uint64_t *v = (uint64_t *) zmalloc (sizeof (uint64_t));
            *v = w->rss_bytes;
            zhashx_update (gauges, key, v);
            snprintf (key, sizeof key, "vdgx_worker_peak_bytes{worker=\"%s\",model=\"%s\"}", w->key, w->service);
            v = (uint64_t *) zmalloc (sizeof (uint64_t));
            *v = w->peak_bytes;
            zhashx_update (gauges, key, v);
        }
        zlist_destroy (&workers);
        zlist_t *services = vdgx_registry_services (self->reg);
        for (vdgx_rservice_t *s = (vdgx_rservice_t *) zlist_first (services); s;
             s = (vdgx_rservice_t *) zlist_next (services))
            for (int i = 0; i < VDGX_WSTATE_COUNT; i++) {
                snprintf (key, sizeof key, "vdgx_workers{model=\"%s\",state=\"%s\"}", s->name,
                          vdgx_wstate_state_name ((vdgx_wstate_state_t) i));
                uint64_t *v = (uint64_t *) zmalloc (sizeof (uint64_t));
                *v = s->by_state [i];
                zhashx_update (gauges, key, v);
            }
        zlist_destroy (&services);
        uint64_t *degraded = (uint64_t *) zmalloc (sizeof (uint64_t));
        *degraded = vdgx_storeguard_degraded (self->guard)? 1: 0;
        zhashx_update (gauges, "vdgx_store_degraded", degraded);
        uint64_t *unsaved = (uint64_t *) zmalloc (sizeof (uint64_t));
        *unsaved = vdgx_storeguard_unsaved (self->guard);
        zhashx_update (gauges, "vdgx_store_unsaved_changes", unsaved);
        uint64_t *faults = (uint64_t *) zmalloc (sizeof (uint64_t));
        *faults = vdgx_storeguard_faults (self->guard);
        zhashx_update (gauges, "vdgx_store_faults", faults);
        uint64_t *clients = (uint64_t *) zmalloc (sizeof (uint64_t));
        *clients = vdgx_ratelimit_size (self->budget);
        zhashx_update (gauges, "vdgx_budget_clients", clients);
        uint64_t *waiting = (uint64_t *) zmalloc (sizeof (uint64_t));
        *waiting = vdgx_quota_total (self->quota);
        zhashx_update (gauges, "vdgx_unfinished_request_bytes", waiting);
        for (const char *m = (const char *) zhashx_first (self->known); m;
             m = (const char *) zhashx_next (self->known)) {
            const char *name = (const char *) zhashx_cursor (self->known);
            snprintf (key, sizeof key, "vdgx_queue_depth{model=\"%s\"}", name);
            uint64_t *v = (uint64_t *) zmalloc (sizeof (uint64_t));
            *v = vdgx_jobqueue_depth (self->queue, name);
            zhashx_update (gauges, key, v);
        }
        msgpack_pack_map (&pk, 4);
        vdgx_pack_str (&pk, "ok");
        msgpack_pack_true (&pk);
        vdgx_pack_str (&pk, "counters");
        msgpack_pack_map (&pk, zhashx_size (self->counters));
        for (uint64_t *v = (uint64_t *) zhashx_first (self->counters); v;
             v = (uint64_t *) zhashx_next (self->counters))
            s_pack_kuint (&pk, (const char *) zhashx_cursor (self->counters), *v);
        vdgx_pack_str (&pk, "gauges");
        msgpack_pack_map (&pk, zhashx_size (gauges));
        for (uint64_t *v = (uint64_t *) zhashx_first (gauges); v; v = (uint64_t *) zhashx_next (gauges))
            s_pack_kuint (&pk, (const char *) zhashx_cursor (gauges), *v);
        zhashx_destroy (&gauges);
        vdgx_pack_str (&pk, "histograms");
        msgpack_pack_map (&pk, zhashx_size (self->hists));
        for (s_hist_t *h = (s_hist_t *) zhashx_first (self->hists); h;
             h = (s_hist_t *) zhashx_next (self->hists)) {
            vdgx_pack_str (&pk, (const char *) zhashx_cursor (self->hists));
            s_pack_hist (&pk, h);
        }
    }
    else {
        msgpack_sbuffer_destroy (&sbuf);
        return zframe_new ("501", 3);
    }
    return s_sbuf_frame (&sbuf);
}

//  ---------------------------------------------------------------------------------------
//  Client requests

static void
s_client_message (s_broker_t *self, zframe_t *identity, int proto, bool delim,
                  const char *service, zmsg_t **body_p, zframe_t *meta)
{
    zmsg_t *body = *body_p;
    if (strncmp (service, "mmi.", 4) == 0 || streq (service, VDGX_JOBS_SERVICE)) {
        vdgx_peer_t peer;
        vdgx_acl_peer (self->acl, meta, &peer);
        if (*service == 'm') {
            s_count (self, "vdgx_mmi_requests_total");
            s_send_client_frame (self, identity, proto, delim, service, s_mmi (self, service, body, &peer));
        }
        else {
            self->job_state = true;
            zframe_t *reply = s_job_service (self, body, &peer);
            self->acking = true;
            s_send_client_frame (self, identity, proto, delim, service, reply);
            self->acking = false;
        }
        zmsg_destroy (body_p);
        return;
    }
    if (self->stopping) {
        s_send_client_frame (self, identity, proto, delim, service,
                             s_error_frame (VDGX_E_UNAVAILABLE, NULL, 1000, "the broker is shutting down"));
        zmsg_destroy (body_p);
        return;
    }
    //  Plain Majordomo routing. A name no worker could register is refused at once, so
    //  garbage names cannot create services.
    vdgx_rservice_t *s = s_service_name_ok (service)? vdgx_registry_service (self->reg, service, true): NULL;
    if (!s || zlistx_size (s->requests) >= self->cfg.queue_max) {
        s_send_client_frame (self, identity, proto, delim, service, s
                             ? s_error_frame (VDGX_E_QUEUE_FULL, NULL, 1000, "the queue of '%s' is full", service)
                             : s_error_frame (VDGX_E_BAD_REQUEST, "service", 0, "invalid service name"));
        zmsg_destroy (body_p);
        return;
    }
    s_request_t *r = (s_request_t *) zmalloc (sizeof (s_request_t));
    r->client = zframe_dup (identity);
    r->proto = proto;
    r->delim = delim;
    r->service = strdup (service);
    r->body = body;
    *body_p = NULL;
    r->queued_at = zclock_mono ();
    vdgx_rworker_t *w = vdgx_registry_select (self->reg, service);
    if (w && zlistx_size (s->requests) == 0)
        s_start_request (self, w, r);
    else {
        r->handle = zlistx_add_end (s->requests, r);
        s_dispatch (self, service);
    }
}

//  ---------------------------------------------------------------------------------------
//  The ROUTER: framing and limits

//  Routing ids as hex hash keys, without a heap allocation per message.
static void
s_hex (zframe_t *frame, char *buf, size_t size)
{
    static const char digits [] = "0123456789ABCDEF";
    size_t n = zframe_size (frame);
    if (n > (size - 1) / 2)
        n = (size - 1) / 2;
    const uint8_t *data = zframe_data (frame);
    for (size_t i = 0; i < n; i++) {
        buf [2 * i] = digits [data [i] >> 4];
        buf [2 * i + 1] = digits [data [i] & 15];
    }
    buf [2 * n] = 0;
}

static void s_router_message (s_broker_t *self, zmsg_t *msg);

static int
s_zap_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    s_broker_t *self = (s_broker_t *) arg;
    vdgx_acl_zap_handle (self->acl);
    return 0;
}

static int
s_router_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    s_broker_t *self = (s_broker_t *) arg;
    //  Drain what is waiting (bounded, so timers still run): one poll per batch, not per
    //  message, is most of the routing cost on a busy broker. The batch is also the unit
    //  of group commit: its state changes are stored in one transaction, and the replies
    //  go out once it is durable.
    //  Results are taken when nothing is waiting (one at a time, looking again between
    //  them), so a worker's FINAL gets its next job before the others' results are taken;
    //  past S_RESULTS_WAITING waiting, one is taken per message read, so no FINAL (nor the
    //  batch's end) waits behind a long queue of them (64 measured no better than 4, and
    //  letting all wait was worse). Chunks wait the same way (s_flush_one).
    s_batch_begin (self);
    int received = 0;
    while (true) {
        if (zlistx_size (self->finished) > S_RESULTS_WAITING)
            s_take_results (self, 1);
        zmsg_t *msg = received < 256? zmsg_recv (self->router): NULL;   //  NULL (EAGAIN) once
        if (msg) {                                                      //  drained: rcvtimeo 0
            received++;
            s_router_message (self, msg);
        }
        else
        if (!s_take_results (self, 1) && !s_flush_one (self))
            break;
    }
    s_batch_end (self);
    return 0;
}

static void
s_router_message (s_broker_t *self, zmsg_t *msg)
{
    zframe_t *header = NULL;
    zframe_t *identity = zmsg_pop (msg);
    if (!identity || zmsg_size (msg) > VDGX_FRAMES_MAX) {
        s_count (self, "vdgx_dropped_total{reason=\"frames\"}");
        goto drop;
    }
    //  MDP/0.2 per RFC 18 has no empty delimiter, MDP/0.1 and REQ peers have one.
    bool delim = false;
    zframe_t *first = zmsg_first (msg);
    if (first && zframe_size (first) == 0) {
        delim = true;
        first = zmsg_pop (msg);
        zframe_destroy (&first);
    }
    header = zmsg_pop (msg);
    if (!header || zframe_size (header) != 6) {
        s_count (self, "vdgx_malformed_total");
        goto drop;
    }
    bool worker = memcmp (zframe_data (header), "MDPW0", 5) == 0;
    bool client = memcmp (zframe_data (header), "MDPC0", 5) == 0;
    char ver = ((char *) zframe_data (header)) [5];
    int proto = ver == '2'? 2: ver == '1'? 1: 0;
    if ((!worker && !client) || !proto) {
        s_count (self, "vdgx_malformed_total");
        goto drop;
    }
    uint8_t command = 0;
    if (worker || proto == 2) {
        zframe_t *cmd = zmsg_pop (msg);
        if (!cmd || zframe_size (cmd) != 1) {
            zframe_destroy (&cmd);
            s_count (self, "vdgx_malformed_total");
            goto drop;
        }
        command = zframe_data (cmd) [0];
        zframe_destroy (&cmd);
    }
    if (worker && proto == 1) {
        static const uint8_t map01 [6] = { 0, VDGX_MDPW_READY, VDGX_MDPW_REQUEST,
                                           VDGX_MDPW_FINAL, VDGX_MDPW_HEARTBEAT, VDGX_MDPW_DISCONNECT };
        command = command < 6? map01 [command]: 0;
        if (command == VDGX_MDPW_REQUEST)
            command = 0;
    }
    //  Frame size limits: only a worker's PARTIAL/FINAL body may carry a chunk, and only a
    //  job command (a submit with its images) may be larger than VDGX_FRAME_MAX.
    bool chunky = worker && (command == VDGX_MDPW_PARTIAL || command == VDGX_MDPW_FINAL);
    zframe_t *service_frame = zmsg_first (msg);
    bool jobs = !worker && service_frame && zframe_streq (service_frame, VDGX_JOBS_SERVICE);
    size_t frame_max = chunky? VDGX_CHUNK_FRAME_MAX: jobs? VDGX_REQUEST_FRAME_MAX: VDGX_FRAME_MAX;
    for (zframe_t *f = zmsg_first (msg); f; f = zmsg_next (msg)) {
        size_t size = zframe_size (f);
        if (size > frame_max) {
            s_count (self, "vdgx_dropped_total{reason=\"size\"}");
            goto drop;
        }
    }
    if (worker) {
        if (command == 0 || command == VDGX_MDPW_REQUEST || command == VDGX_MDPW_CONTROL
        ||  command > VDGX_MDPW_CONTROL) {
            s_count (self, "vdgx_malformed_total");
            goto drop;
        }
        char key [2 * 256 + 1];
        s_hex (identity, key, sizeof key);
        s_worker_message (self, key, identity, proto, delim, command, &msg, header);
    }
    else {
        if (proto == 2 && command != VDGX_MDPC_REQUEST) {
            s_count (self, "vdgx_malformed_total");
            goto drop;
        }
        char *service = zmsg_popstr (msg);
        if (!service || !*service || strlen (service) > VDGX_SERVICE_MAX) {
            free (service);
            s_count (self, "vdgx_malformed_total");
            goto drop;
        }
        s_client_message (self, identity, proto, delim, service, &msg, header);
        free (service);
    }
drop:
    zframe_destroy (&header);       //  kept until here: its metadata names the peer
    zframe_destroy (&identity);
    zmsg_destroy (&msg);
}

//  ---------------------------------------------------------------------------------------
//  Timers

//  Runs a few times per heartbeat interval: each tick expires the workers silent for the
//  liveness window and sends HEARTBEAT to those sent nothing for an interval, both taken
//  from the head of an ordered list, so a tick costs what is due, not the registry size.
static int
s_heartbeat_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) timer_id;
    s_broker_t *self = (s_broker_t *) arg;
    int64_t now = zclock_mono ();
    int64_t window = (int64_t) self->cfg.heartbeat_ms * self->cfg.liveness;
    int64_t cutoff = now - window;
    vdgx_rworker_t *w;
    if (self->last_tick && now - self->last_tick > window) {
        //  We did not run for a whole liveness window (process stopped, host suspended,
        //  starved): the silence was ours. Give every worker a fresh window instead of
        //  declaring them all dead at once.
        vdgx_log_warn ("broker.stalled", "ms=%lld", (long long) (now - self->last_tick));
        s_count (self, "vdgx_broker_stalls_total");
        vdgx_registry_touch_all (self->reg, now);
    }
    else
    if (self->last_tick && now - self->last_tick > self->cfg.heartbeat_ms) {
        //  A shorter stall (four ticks or more missed) is not counted against the workers
        //  either: a worker that sent its heartbeats on time is never found more than two
        //  intervals late, so with liveness >= 3 only a silent one is expired.
        int64_t tick = self->cfg.heartbeat_ms / 4;
        vdgx_registry_credit_all (self->reg, now - self->last_tick - tick, now);
    }
    self->last_tick = now;
    //  Before anyone is declared dead, read what waits on the socket (zloop runs timers
    //  before readers): after this loop was slow or starved, the heartbeats queued meanwhile
    //  prove their senders alive. Only when someone is due, so an idle tick costs nothing.
    for (int i = 0; i < 16 && vdgx_registry_expired (self->reg, cutoff)
                    && (zsock_events (self->router) & ZMQ_POLLIN); i++)
        s_router_event (loop, self->router, self);
    s_batch_begin (self);
    while ((w = vdgx_registry_expired (self->reg, cutoff))) {
        s_count (self, "vdgx_workers_expired_total{model=\"%s\"}", w->service);
        s_worker_delete (self, w, "heartbeat expired", true);
    }
    while ((w = vdgx_registry_heartbeat_due (self->reg, now - self->cfg.heartbeat_ms)))
        s_worker_cmd (self, w, VDGX_MDPW_HEARTBEAT);
    s_batch_end (self);
    return 0;
}

static void
s_expire_jobs (s_broker_t *self, int64_t now)
{
    int64_t limit = (int64_t) self->cfg.expire_s * 1000;
    zlist_t *models = vdgx_jobqueue_models (self->queue);
    for (char *m = (char *) zlist_first (models); m; m = (char *) zlist_next (models)) {
        vdgx_rservice_t *s = vdgx_registry_service (self->reg, m, false);
        if (s && s->workers)
            continue;
        int64_t since = s? s->no_worker_since: self->start_mono;
        if (now - since < limit)
            continue;
        //  Deadline order: only the jobs due are touched.
        const char *oldest;
        int64_t at;
        while ((oldest = vdgx_jobqueue_oldest (self->queue, m, &at)) && now - at >= limit) {
            char id [64];
            snprintf (id, sizeof id, "%s", oldest);
            vdgx_jobqueue_remove (self->queue, id);
            vdgx_jobrec_t job;
            if (vdgx_storeguard_get (self->guard, id, &job) == 0) {
                s_job_finish (&job, "expired", VDGX_E_EXPIRED,
                              "no worker for model '%s' within %d s", m, self->cfg.expire_s);
                s_job_changed (self, &job, "expired");
                vdgx_jobrec_clear (&job);
            }
        }
    }
    zlist_destroy (&models);
    //  Plain requests: expire after the same time in the queue.
    zlist_t *services = vdgx_registry_services (self->reg);
    for (vdgx_rservice_t *s = (vdgx_rservice_t *) zlist_first (services); s;
         s = (vdgx_rservice_t *) zlist_next (services)) {
        s_request_t *r;
        while ((r = (s_request_t *) zlistx_first (s->requests)) && now - r->queued_at >= limit) {
            zlistx_detach (s->requests, r->handle);
            s_send_client_frame (self, r->client, r->proto, r->delim, r->service,
                                 s_error_frame (VDGX_E_EXPIRED, NULL, 0,
                                                "no worker for service '%s' within %d s",
                                                r->service, self->cfg.expire_s));
            s_count (self, "vdgx_requests_expired_total");
            s_request_destroy (&r);
        }
        if (s->workers == 0 && zlistx_size (s->requests) == 0)
            s_service_gc (self, s->name);
    }
    zlist_destroy (&services);
}

static int
s_housekeeping_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_broker_t *self = (s_broker_t *) arg;
    s_batch_begin (self);
    s_expire_jobs (self, zclock_mono ());
    s_batch_end (self);
    vdgx_ratelimit_expire (self->budget, zclock_mono ());     //  idle clients
    vdgx_ratelimit_expire (self->budget_log, zclock_mono ());
    //  Outside the batch: the probe must see its own write fail or succeed.
    if (vdgx_storeguard_degraded (self->guard) && vdgx_storeguard_recover (self->guard) == 0) {
        s_release_deferred (self);
        s_dispatch_all (self);
    }
    return 0;
}

//  Frequent checkpoints keep the WAL short: a -wal file lost after a crash costs the
//  changes of the last interval, not every change since the last automatic checkpoint.
//  A TRUNCATE checkpoint holds this thread for its copy, two fsyncs and the truncation
//  (10-30 ms on a loaded disk), which every FINAL arriving meanwhile would wait for; so it
//  runs when the store has been quiet a moment, and under constant load once a minute.
//  In between, the syncer's PASSIVE checkpoints (every 1000 frames, off this thread) keep
//  copying the WAL into the database.
static int
s_checkpoint_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_broker_t *self = (s_broker_t *) arg;
    int64_t now = zclock_mono ();
    if (vdgx_storeguard_degraded (self->guard)
    ||  (now - self->last_write < S_CHECKPOINT_QUIET_MS
    &&   now - self->last_truncate < S_CHECKPOINT_MAX_MS))
        return 0;
    if (vdgx_jobstore_checkpoint (self->store) == 0)
        self->last_truncate = zclock_mono ();
    return 0;
}

static int
s_gc_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_broker_t *self = (s_broker_t *) arg;
    s_batch_begin (self);
    size_t n = vdgx_jobstore_gc (self->store, s_now (), self->cfg.retain_hours * 3600.0,
                                 self->cfg.retain_bytes);
    s_batch_end (self);
    if (n) {
        s_count_add (self, n, "vdgx_jobs_collected_total");
        vdgx_log_info ("store.gc", "deleted=%zu", n);
    }
    return 0;
}

static int
s_pipe_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_broker_t *self = (s_broker_t *) arg;
    char *command = zstr_recv (reader);
    int rc = 0;
    if (!command || streq (command, "$TERM"))
        rc = -1;
    free (command);
    (void) self;
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Start and stop

static void
s_broker_free (s_broker_t *self)
{
    zloop_destroy (&self->loop);
    zlistx_destroy (&self->finished);
    zhashx_destroy (&self->running);
    zlistx_destroy (&self->unwritten);          //  after the runs: they leave it as they go
    zlistx_destroy (&self->outbox);
    zlistx_destroy (&self->deferred);
    vdgx_syncer_destroy (&self->syncer);
    zhashx_destroy (&self->known);
    zhashx_destroy (&self->limits);
    zhashx_destroy (&self->precisions);
    zhashx_destroy (&self->want_precision);
    zhashx_destroy (&self->counters);
    zhashx_destroy (&self->hists);
    zhashx_destroy (&self->delims);
    zhashx_destroy (&self->wauth);
    if (self->reg) {
        //  Requests held by workers belong to us, queued ones to the service lists.
        zlist_t *workers = vdgx_registry_workers (self->reg);
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlist_first (workers); w;
             w = (vdgx_rworker_t *) zlist_next (workers))
            if (w->task == VDGX_TASK_REQUEST) {
                s_request_t *r = (s_request_t *) w->task_data;
                s_request_destroy (&r);
            }
        zlist_destroy (&workers);
    }
    vdgx_registry_destroy (&self->reg);
    vdgx_jobqueue_destroy (&self->queue);
    vdgx_outcheck_destroy (&self->outcheck);
    vdgx_storeguard_destroy (&self->guard);
    vdgx_jobstore_destroy (&self->store);
    zsock_destroy (&self->router);
    zsock_destroy (&self->pub);
    vdgx_acl_destroy (&self->acl);
    vdgx_ratelimit_destroy (&self->budget);
    vdgx_ratelimit_destroy (&self->budget_log);
    vdgx_quota_destroy (&self->quota);
    zstr_free (&self->endpoint);
    zstr_free (&self->events);
    zstr_free (&self->data_dir);
    zstr_free (&self->curve_dir);
}

static int
s_setup_curve (s_broker_t *self, char *error, size_t errsize)
{
    char *allowed = zsys_sprintf ("%s/allowed", self->curve_dir);
    char *certfile = zsys_sprintf ("%s/broker.key", self->curve_dir);
    char *secret = zsys_sprintf ("%s/broker.key_secret", self->curve_dir);
    int rc = -1;
    zcert_t *cert = NULL;
    if (!zsys_file_exists (secret) && zsys_file_exists (certfile)) {
        //  Never replace a certificate peers already hold: its secret half is missing.
        snprintf (error, errsize, "%s exists but %s does not: copy the secret file made with it"
                  " (vdgx-mkcert DIR/broker writes both) or remove %s", certfile, secret, certfile);
        goto done;
    }
    if (!zsys_file_exists (secret)) {
        //  First start: make the broker's certificate; clients need DIR/broker.key.
        vdgx_log_info ("curve.cert", "message=\"no %s: making one\"", secret);
        //  Written under temporary names and renamed, the secret first: a peer polling for
        //  broker.key never reads half a file, and a crash never leaves a public key whose
        //  secret is lost.
        cert = zcert_new ();
        char *tmp = zsys_sprintf ("%s/.broker.key.new", self->curve_dir);
        char *tmp_secret = zsys_sprintf ("%s_secret", tmp);
        bool saved = cert && zcert_save (cert, tmp) == 0
                  && rename (tmp_secret, secret) == 0 && rename (tmp, certfile) == 0;
        unlink (tmp);
        unlink (tmp_secret);
        zstr_free (&tmp);
        zstr_free (&tmp_secret);
        if (!saved) {
            snprintf (error, errsize, "cannot write %s", certfile);
            goto done;
        }
        zcert_destroy (&cert);
    }
    cert = zcert_load (certfile);
    if (!cert) {
        snprintf (error, errsize, "cannot load %s", secret);
        goto done;
    }
    if (!zsys_file_exists (certfile)) {
        //  The secret survived without its public half (a crash between the renames of an
        //  older version): clients need the public file, so it is written again.
        char *tmp = zsys_sprintf ("%s/.broker.key.new", self->curve_dir);
        bool saved = zcert_save_public (cert, tmp) == 0 && rename (tmp, certfile) == 0;
        unlink (tmp);
        zstr_free (&tmp);
        if (!saved) {
            snprintf (error, errsize, "cannot write %s", certfile);
            goto done;
        }
    }
    vdgx_log_info ("curve.cert", "secret=%s public_key=%s", secret, zcert_public_txt (cert));
    if (!zsys_file_exists (allowed))
        zsys_dir_create ("%s", allowed);
    //  Our own ZAP handler: it accepts the keys in allowed/ and gives each connection the
    //  role, models and name of its certificate (vdgx_acl.h).
    if (!vdgx_acl_zap_bind (self->acl, allowed)) {
        snprintf (error, errsize, "cannot start the ZAP handler (another CURVE broker in this process?)");
        goto done;
    }
    zcert_apply (cert, self->router);
    zsock_set_curve_server (self->router, 1);
    zsock_set_zap_domain (self->router, "vdgx");
    if (self->pub) {
        zcert_apply (cert, self->pub);
        zsock_set_curve_server (self->pub, 1);
        zsock_set_zap_domain (self->pub, "vdgx");
    }
    rc = 0;
done:
    zcert_destroy (&cert);
    zstr_free (&allowed);
    zstr_free (&certfile);
    zstr_free (&secret);
    return rc;
}

typedef struct {
    s_broker_t *broker;
    zlist_t *running;           //  ids of jobs that were running (autofree)
    size_t queued;
} s_recovery_t;

static void
s_recover_one (const vdgx_jobrec_t *job, void *arg)
{
    s_recovery_t *rec = (s_recovery_t *) arg;
    s_broker_t *self = rec->broker;
    //  A running job waits in the queue at its old place: its worker may report the
    //  result on reconnect (READY pending).
    if (streq (job->state, "running"))
        zlist_append (rec->running, (void *) job->id);
    else
        rec->queued++;
    s_queue_job (self, job, false);
    vdgx_quota_add (self->quota, job->id, job->owner, job->request_size);
    s_remember_request_precision (self, job);
    if (!zhashx_lookup (self->known, job->model))
        zhashx_insert (self->known, job->model, (void *) "");
}

static void
s_recover (s_broker_t *self)
{
    s_recovery_t rec = { self, zlist_new (), 0 };
    zlist_autofree (rec.running);
    vdgx_jobstore_each_unfinished (self->store, s_recover_one, &rec);
    //  After the scan (a row is not changed under its own cursor), in one transaction.
    vdgx_jobstore_begin (self->store);
    for (char *id = (char *) zlist_first (rec.running); id; id = (char *) zlist_next (rec.running)) {
        vdgx_jobrec_t job;
        if (vdgx_jobstore_get (self->store, id, &job) == 0) {
            snprintf (job.state, sizeof job.state, "queued");
            s_job_changed (self, &job, "broker restart");
            vdgx_jobrec_clear (&job);
        }
    }
    vdgx_jobstore_commit (self->store);
    if (rec.queued + zlist_size (rec.running))
        vdgx_log_info ("store.recover", "queued=%zu requeued_running=%zu", rec.queued,
                       zlist_size (rec.running));
    zlist_destroy (&rec.running);
}

static s_broker_t *
s_broker_start (const vdgx_broker_config_t *cfg, char *error, size_t errsize)
{
    s_broker_t *self = (s_broker_t *) zmalloc (sizeof (s_broker_t));
    self->cfg = *cfg;
    self->endpoint = strdup (cfg->endpoint);
    self->events = cfg->events && *cfg->events? strdup (cfg->events): NULL;
    self->data_dir = strdup (cfg->data_dir);
    self->curve_dir = cfg->curve_dir && *cfg->curve_dir? strdup (cfg->curve_dir): NULL;
    self->cfg.endpoint = self->endpoint;
    self->cfg.events = self->events;
    self->cfg.data_dir = self->data_dir;
    self->cfg.curve_dir = self->curve_dir;
    self->cfg.models = NULL;
    self->start_mono = zclock_mono ();
    self->start_wall = s_now ();
    self->running = zhashx_new ();
    zhashx_set_destructor (self->running, s_run_destroy);
    self->known = zhashx_new ();
    self->limits = zhashx_new ();
    zhashx_set_destructor (self->limits, s_free_item);
    self->precisions = zhashx_new ();
    zhashx_set_destructor (self->precisions, (czmq_destructor *) zstr_free);
    self->want_precision = zhashx_new ();
    zhashx_set_destructor (self->want_precision, (czmq_destructor *) zstr_free);
    self->counters = zhashx_new ();
    zhashx_set_destructor (self->counters, s_free_item);
    self->hists = zhashx_new ();
    zhashx_set_destructor (self->hists, s_free_item);
    self->delims = zhashx_new ();
    self->finished = zlistx_new ();
    self->unwritten = zlistx_new ();
    zlistx_set_destructor (self->finished, s_finished_destroy);
    self->outbox = zlistx_new ();
    zlistx_set_destructor (self->outbox, s_held_destroy);
    self->deferred = zlistx_new ();
    zlistx_set_destructor (self->deferred, s_held_destroy);
    self->wauth = zhashx_new ();
    zhashx_set_destructor (self->wauth, s_free_item);
    self->acl = vdgx_acl_new ();
    self->reg = vdgx_registry_new ();
    vdgx_registry_set_request_destructor (self->reg, s_request_destructor);
    self->queue = vdgx_jobqueue_new (cfg->queue_max);
    if (vdgx_broker_config_check (&self->cfg, error, errsize))
        goto fail;
    self->budget = vdgx_ratelimit_new ((double) cfg->peer_rate, (double) cfg->peer_burst,
                                       S_BUDGET_CLIENTS_MAX);
    self->budget_log = vdgx_ratelimit_new (1000.0 / S_BUDGET_LOG_MS, 1, 1024);
    self->quota = vdgx_quota_new (cfg->owner_queued_max);
    char report [1024];
    if (vdgx_storecheck_run (self->data_dir, cfg->salvage, report, sizeof report, error, errsize))
        goto fail;
    if (*report)
        vdgx_log_warn ("store.salvage", "report=\"%s\"", report);
    self->store = vdgx_jobstore_new (self->data_dir, error, errsize);
    if (!self->store)
        goto fail;
    char *secret = zsys_sprintf ("%s/token.key", self->data_dir);
    int secret_rc = vdgx_acl_load_secret (self->acl, secret, error, errsize);
    zstr_free (&secret);
    if (secret_rc || vdgx_acl_trust_nets (self->acl, cfg->trust_nets, error, errsize))
        goto fail;
    //  Group commit with the disk wait on another thread: batches commit at once, the
    //  syncer makes them durable, and what depends on them waits in the outbox.
    if (vdgx_jobstore_defer_sync (self->store)) {
        snprintf (error, errsize, "cannot set up the job store");
        goto fail;
    }
    self->syncer = vdgx_syncer_new ();
    self->guard = vdgx_storeguard_new (self->store);
    self->outcheck = vdgx_outcheck_new (self->store);
    for (size_t i = 0; i < cfg->nmodels; i++) {
        zhashx_insert (self->known, cfg->models [i], (void *) "");
        if (cfg->model_precisions && cfg->model_precisions [i])
            s_note_precisions (self, cfg->models [i], cfg->model_precisions [i]);
    }
    zlist_t *models = vdgx_jobstore_models (self->store);
    for (char *m = (char *) zlist_first (models); m; m = (char *) zlist_next (models))
        zhashx_insert (self->known, m, (void *) "");
    zlist_destroy (&models);
    s_load_limits (self);

    self->router = zsock_new (ZMQ_ROUTER);
    if (self->events)
        self->pub = zsock_new (ZMQ_PUB);
    if (!self->router || (self->events && !self->pub)) {
        snprintf (error, errsize, "cannot create sockets");
        goto fail;
    }
    zsock_set_maxmsgsize (self->router, VDGX_REQUEST_FRAME_MAX > VDGX_CHUNK_FRAME_MAX
                                        ? VDGX_REQUEST_FRAME_MAX: VDGX_CHUNK_FRAME_MAX);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_linger (self->router, 500);
    //  Thousands of peers: a connection storm (every worker reconnecting after a restart)
    //  must not overflow the listen queue (ZMQ's default backlog is 100; the kernel caps
    //  it at net.core.somaxconn). Keepalive finds peers whose host vanished without a FIN.
    zsock_set_backlog (self->router, 4096);
    zsock_set_tcp_keepalive (self->router, 1);
    zsock_set_tcp_keepalive_idle (self->router, 60);
    zsock_set_tcp_keepalive_intvl (self->router, 10);
    zsock_set_tcp_keepalive_cnt (self->router, 6);
    //  Non-blocking receives: the loop drains the socket until EAGAIN, without asking
    //  ZMQ_EVENTS after every message (that costs a poll() system call each time).
    zsock_set_rcvtimeo (self->router, 0);
    if (self->pub)
        zsock_set_linger (self->pub, 0);
    if (self->curve_dir && s_setup_curve (self, error, errsize))
        goto fail;
    if (zsock_bind (self->router, "%s", self->endpoint) < 0) {
        snprintf (error, errsize, "cannot bind %s: %s", self->endpoint, zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (self->pub && zsock_bind (self->pub, "%s", self->events) < 0) {
        snprintf (error, errsize, "cannot bind %s: %s", self->events, zmq_strerror (zmq_errno ()));
        goto fail;
    }
    s_recover (self);
    s_gc_timer (NULL, 0, self);
    return self;
fail:
    s_broker_free (self);
    free (self);
    return NULL;
}

//  Actor: starts, reports "OK" or an error on the pipe, runs the loop until $TERM.
static void
s_broker_actor (zsock_t *pipe, void *args)
{
    vdgx_broker_config_t *cfg = (vdgx_broker_config_t *) args;
    char error [512] = "";
    s_broker_t *self = s_broker_start (cfg, error, sizeof error);
    zsock_signal (pipe, 0);
    if (!self) {
        zstr_sendx (pipe, "ERROR", error, NULL);
        return;
    }
    zstr_sendx (pipe, "OK", "", NULL);
    self->pipe = pipe;
    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);      //  signals are the owner's business
    zloop_reader (self->loop, pipe, s_pipe_event, self);
    zloop_reader (self->loop, self->router, s_router_event, self);
    if (vdgx_acl_curve (self->acl))
        zloop_reader (self->loop, vdgx_acl_zap (self->acl), s_zap_event, self);
    zloop_reader (self->loop, vdgx_syncer_sock (self->syncer), s_syncer_event, self);
    //  Four ticks per interval: a worker gets its heartbeat at most a quarter interval late,
    //  and the heartbeats of many workers spread over the interval as they registered.
    size_t hb_tick = (size_t) self->cfg.heartbeat_ms / 4;
    zloop_timer (self->loop, hb_tick > 0? hb_tick: 1, 0, s_heartbeat_timer, self);
    //  In 64 bits: --expire-s goes to 30 days, past what milliseconds in an int hold.
    int64_t tick = (int64_t) self->cfg.expire_s * 1000 / 4;
    if (tick > 1000)
        tick = 1000;
    if (tick < 50)
        tick = 50;
    zloop_timer (self->loop, (size_t) tick, 0, s_housekeeping_timer, self);
    zloop_timer (self->loop, 60000, 0, s_gc_timer, self);
    zloop_timer (self->loop, S_CHECKPOINT_MS, 0, s_checkpoint_timer, self);
    vdgx_log_info ("broker.start", "endpoint=%s events=%s data=%s curve=%s", self->endpoint,
                   self->events? self->events: "-", self->data_dir,
                   self->curve_dir? self->curve_dir: "off");
    zloop_start (self->loop);

    //  Shutdown: refuse new work, tell workers, make the store durable. Running jobs stay
    //  `running` in the store and are recovered (or resent by their workers) on restart.
    self->stopping = true;
    zlist_t *workers = vdgx_registry_workers (self->reg);
    for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlist_first (workers); w;
         w = (vdgx_rworker_t *) zlist_next (workers))
        s_worker_cmd (self, w, VDGX_MDPW_DISCONNECT);
    zlist_destroy (&workers);
    vdgx_storeguard_recover (self->guard);     //  a last try for changes still waiting
    s_sync_all (self);
    vdgx_jobstore_flush (self->store);
    vdgx_log_info ("broker.stop", "workers=%zu queued=%zu running=%zu",
                   vdgx_registry_worker_count (self->reg), vdgx_jobqueue_size (self->queue),
                   zhashx_size (self->running));
    s_broker_free (self);
    free (self);
}

struct _vdgx_broker_t {
    zactor_t *actor;
};

vdgx_broker_t *
vdgx_broker_new (const vdgx_broker_config_t *cfg, char *error, size_t errsize)
{
    assert (cfg && error);
    vdgx_broker_t *self = (vdgx_broker_t *) zmalloc (sizeof (vdgx_broker_t));
    self->actor = zactor_new (s_broker_actor, (void *) cfg);
    char *status = NULL, *detail = NULL;
    if (!self->actor || zstr_recvx (self->actor, &status, &detail, NULL) < 1
    ||  !streq (status, "OK")) {
        snprintf (error, errsize, "%s", detail? detail: "broker failed to start");
        zstr_free (&status);
        zstr_free (&detail);
        zactor_destroy (&self->actor);
        free (self);
        return NULL;
    }
    zstr_free (&status);
    zstr_free (&detail);
    return self;
}

void
vdgx_broker_destroy (vdgx_broker_t **self_p)
{
    assert (self_p);
    vdgx_broker_t *self = *self_p;
    if (self) {
        zactor_destroy (&self->actor);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
vdgx_broker_sock (vdgx_broker_t *self)
{
    assert (self);
    return zactor_sock (self->actor);
}

//  ---------------------------------------------------------------------------------------
//  Selftest: the actor in-process over ipc://, a DEALER worker and a DEALER client.

static zmsg_t *
s_test_recv (zsock_t *sock)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    zmsg_t *msg = zpoller_wait (poller, 5000)? zmsg_recv (sock): NULL;
    zpoller_destroy (&poller);
    return msg;
}

static void
s_test_request (zsock_t *client, const char *service, zframe_t *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_pushstr (msg, VDGX_MDPC02);
    uint8_t cmd = VDGX_MDPC_REQUEST;
    zmsg_addmem (msg, &cmd, 1);
    zmsg_addstr (msg, service);
    zmsg_append (msg, &body);
    zmsg_send (&msg, client);
}

//  Receives a FINAL for service and returns its first body frame.
static zframe_t *
s_test_final (zsock_t *client, const char *service)
{
    zmsg_t *msg = s_test_recv (client);
    assert (msg && zmsg_size (msg) >= 4);
    char *header = zmsg_popstr (msg);
    assert (streq (header, VDGX_MDPC02));
    zframe_t *cmd = zmsg_pop (msg);
    assert (zframe_data (cmd) [0] == VDGX_MDPC_FINAL);
    char *svc = zmsg_popstr (msg);
    assert (streq (svc, service));
    zframe_t *body = zmsg_pop (msg);
    free (header);
    free (svc);
    zframe_destroy (&cmd);
    zmsg_destroy (&msg);
    return body;
}

void
vdgx_broker_test (bool verbose)
{
    printf (" * vdgx_broker: ");
    char error [512];
    assert (vdgx_broker_endpoint_is_local ("tcp://127.0.0.1:5555"));
    assert (vdgx_broker_endpoint_is_local ("tcp://127.3.2.1:1"));
    assert (vdgx_broker_endpoint_is_local ("tcp://localhost:5555"));
    assert (vdgx_broker_endpoint_is_local ("tcp://[::1]:5555"));
    assert (vdgx_broker_endpoint_is_local ("ipc:///tmp/x"));
    assert (!vdgx_broker_endpoint_is_local ("tcp://0.0.0.0:5555"));
    assert (!vdgx_broker_endpoint_is_local ("tcp://*:5555"));
    assert (!vdgx_broker_endpoint_is_local ("tcp://10.0.0.1:5555"));
    assert (!vdgx_broker_endpoint_is_local ("tcp://eth0:5555"));
    assert (!vdgx_broker_endpoint_is_local ("tcp://128.0.0.1:5555"));
    vdgx_broker_config_t cfg;
    vdgx_broker_config_init (&cfg);
    cfg.endpoint = "tcp://*:5555";
    assert (vdgx_broker_config_check (&cfg, error, sizeof error) == -1);
    assert (strstr (error, "--insecure"));
    cfg.insecure = true;
    assert (vdgx_broker_config_check (&cfg, error, sizeof error) == 0);
    cfg.heartbeat_ms = 0;
    assert (vdgx_broker_config_check (&cfg, error, sizeof error) == -1);
    //  A byte budget must hold the largest submit; off (rate 0), the burst does not matter.
    vdgx_broker_config_init (&cfg);
    cfg.peer_burst = VDGX_REQUEST_FRAME_MAX - 1;
    assert (vdgx_broker_config_check (&cfg, error, sizeof error) == -1 && strstr (error, "peer-burst"));
    cfg.peer_rate = 0;
    assert (vdgx_broker_config_check (&cfg, error, sizeof error) == 0);

    char dir [] = "/tmp/vdgx-broker-XXXXXX";
    assert (mkdtemp (dir));
    char *data = zsys_sprintf ("%s/data", dir);
    char *endpoint = zsys_sprintf ("ipc://%s/broker.sock", dir);
    char *events = zsys_sprintf ("ipc://%s/events.sock", dir);
    vdgx_broker_config_init (&cfg);
    cfg.endpoint = endpoint;
    cfg.events = events;
    cfg.data_dir = data;
    cfg.heartbeat_ms = 100;
    vdgx_log_set_level (verbose? VDGX_LOG_DEBUG: VDGX_LOG_ERROR);
    vdgx_broker_t *broker = vdgx_broker_new (&cfg, error, sizeof error);
    assert (broker);
    //  A data dir that cannot be made, or a bad endpoint: clean failures.
    char *data2 = zsys_sprintf ("%s/data2", dir);
    cfg.data_dir = "/proc/vdgx-none/data";
    assert (vdgx_broker_new (&cfg, error, sizeof error) == NULL);
    cfg.data_dir = data2;
    cfg.endpoint = "tcp://127.0.0.1:notaport";
    assert (vdgx_broker_new (&cfg, error, sizeof error) == NULL);
    assert (strstr (error, "cannot bind"));
    cfg.endpoint = endpoint;
    cfg.data_dir = data;

    zsock_t *client = zsock_new_dealer (endpoint);
    zsock_t *worker = zsock_new_dealer (endpoint);
    assert (client && worker);
    //  mmi.service before and after a worker registers.
    s_test_request (client, "mmi.service", zframe_new ("echo", 4));
    zframe_t *reply = s_test_final (client, "mmi.service");
    assert (zframe_streq (reply, "404"));
    zframe_destroy (&reply);
    zmsg_t *msg = vdgx_mdp_worker_ready (2, "echo", NULL);
    zmsg_send (&msg, worker);
    zclock_sleep (50);
    s_test_request (client, "mmi.service", zframe_new ("echo", 4));
    reply = s_test_final (client, "mmi.service");
    assert (zframe_streq (reply, "200"));
    zframe_destroy (&reply);
    s_test_request (client, "mmi.bogus", zframe_new ("", 0));
    reply = s_test_final (client, "mmi.bogus");
    assert (zframe_streq (reply, "501"));
    zframe_destroy (&reply);
    //  Routing: the worker sees the client's address and the body, its FINAL goes back.
    s_test_request (client, "echo", zframe_new ("hello", 5));
    msg = s_test_recv (worker);
    while (msg && zmsg_size (msg) == 2) {       //  skip heartbeats
        zmsg_destroy (&msg);
        msg = s_test_recv (worker);
    }
    assert (msg && zmsg_size (msg) == 5);
    char *header = zmsg_popstr (msg);
    assert (streq (header, VDGX_MDPW02));
    free (header);
    zframe_t *cmd = zmsg_pop (msg);
    assert (zframe_data (cmd) [0] == VDGX_MDPW_REQUEST);
    zframe_destroy (&cmd);
    zframe_t *address = zmsg_pop (msg);
    zmsg_destroy (&msg);
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "world");
    msg = vdgx_mdp_worker_envelope (2, VDGX_MDPW_FINAL, address, &body);
    zframe_destroy (&address);
    zmsg_send (&msg, worker);
    reply = s_test_final (client, "echo");
    assert (zframe_streq (reply, "world"));
    zframe_destroy (&reply);
    //  Job service: a model no worker has registered is refused.
    vdgx_jobcmd_t jc;
    vdgx_jobcmd_init (&jc);
    jc.cmd = VDGX_JOBCMD_SUBMIT;
    snprintf (jc.request.model, sizeof jc.request.model, "nomodel");
    jc.request.prompt = strdup ("a cat");
    s_test_request (client, VDGX_JOBS_SERVICE, vdgx_jobcmd_frame (&jc));
    vdgx_jobcmd_clear (&jc);
    reply = s_test_final (client, VDGX_JOBS_SERVICE);
    vdgx_error_t err, derr;
    assert (vdgx_error_decode (&err, NULL, zframe_data (reply), zframe_size (reply), &derr) == 0);
    assert (streq (err.code, VDGX_E_UNKNOWN_MODEL));
    zframe_destroy (&reply);
    //  Garbage is dropped, the broker keeps answering.
    zstr_sendx (client, "garbage", "more", NULL);
    s_test_request (client, "mmi.health", zframe_new ("\x80", 1));
    reply = s_test_final (client, "mmi.health");
    assert (zframe_size (reply) > 10);
    zframe_destroy (&reply);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    vdgx_broker_destroy (&broker);
    assert (broker == NULL);
    zsys_dir_delete ("%s/out", data);
    zsys_dir_delete ("%s/tmp", data);
    const char *files [] = { "jobs.db", "jobs.db-wal", "jobs.db-shm" };
    for (int i = 0; i < 3; i++) {
        char *path = zsys_sprintf ("%s/%s", data, files [i]);
        unlink (path);
        zstr_free (&path);
        path = zsys_sprintf ("%s/%s", data2, files [i]);
        unlink (path);
        zstr_free (&path);
    }
    zsys_dir_delete ("%s/out", data2);
    zsys_dir_delete ("%s/tmp", data2);
    rmdir (data);
    rmdir (data2);
    char *path = zsys_sprintf ("%s/broker.sock", dir);
    unlink (path);
    zstr_free (&path);
    path = zsys_sprintf ("%s/events.sock", dir);
    unlink (path);
    zstr_free (&path);
    rmdir (dir);
    zstr_free (&data);
    zstr_free (&data2);
    zstr_free (&endpoint);
    zstr_free (&events);
    printf ("OK\n");
}
