/*  broker_peers.h - protocol-level test peers for the broker tests: a configurable MDP
    worker (run as its own process so tests can SIGKILL it), client helpers for the job
    service and MMI, and process helpers that run the real vdgx-broker.
*/
#ifndef BROKER_PEERS_H_INCLUDED
#define BROKER_PEERS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "vdgx_msg.h"

//  A test environment: temp dir, endpoints, the broker process.
typedef struct {
    char dir [256];
    char endpoint [300];
    char events [300];
    char data [300];
    const char *broker_bin;
    const char *self_bin;
    pid_t broker;
    char extra [16][128];       //  extra broker flags
    int nextra;
} tenv_t;

void tenv_init (tenv_t *env, const char *broker_bin, const char *self_bin);
void tenv_flag (tenv_t *env, const char *flag);
//  Starts the broker with --heartbeat-ms 100 --liveness 10 plus the extra flags; waits until
//  it answers mmi.health. Returns 0 or -1.
int tenv_start_broker (tenv_t *env);
//  Sends sig and waits for the process; returns its exit status (or -signal).
int tenv_stop (pid_t pid, int sig);
//  Removes the temp dir and everything in it.
void tenv_cleanup (tenv_t *env);
//  Starts a test worker process: args after "worker" (NULL-terminated list).
pid_t tenv_worker (tenv_t *env, const char *service, ...);

//  Client helpers (DEALER, MDP/0.2 framing without delimiter).
zsock_t *tclient_new (tenv_t *env);
//  Sends one frame to service and returns the FINAL body's first frame, NULL on timeout.
zframe_t *tclient_call (zsock_t *client, const char *service, zframe_t **body_p, int timeout_ms);
//  Job service: sends cmd and decodes the reply into reply (init'ed with cmd->cmd). 0 or -1.
int tclient_jobs (zsock_t *client, const vdgx_jobcmd_t *cmd, vdgx_jobreply_t *reply);
//  Submits {model, prompt, ...}: fills id. Returns 0 (ok reply) or -1 (reply->error set).
int tclient_submit (zsock_t *client, const char *model, const char *prompt, uint64_t seed,
                    bool has_seed, vdgx_priority_t priority, const char *idem, bool no_cache,
                    vdgx_jobreply_t *reply);
int tclient_status (zsock_t *client, const char *id, vdgx_jobstatus_t *status);
//  Waits until the job is terminal (or timeout). Returns the final state or -1.
int tclient_wait (zsock_t *client, const char *id, int timeout_ms, vdgx_jobstatus_t *status);
//  Fetches the whole result and checks its sha256 against the reply. Returns bytes or -1.
int64_t tclient_fetch (zsock_t *client, const char *id, uint32_t chunk, char sha [65]);
//  mmi.* call with {} body; returns the unpacked reply or -1. The objects point into
//  *frame_p: destroy both (msgpack_unpacked_destroy, zframe_destroy) when done.
int tclient_mmi (zsock_t *client, const char *service, msgpack_unpacked *out, zframe_t **frame_p);
//  Looks up key in a msgpack map (NULL when absent).
msgpack_object *tmap_get (msgpack_object *map, const char *key);
uint64_t tmap_uint (msgpack_object *map, const char *key);
//  Counter value from an mmi.metrics reply (0 when absent).
uint64_t tmetrics_counter (msgpack_object *reply, const char *name);

//  A PNG-structured file of size bytes (IHDR, one IDAT of seeded noise, IEND): what the
//  broker's header check of a submit's images accepts (nothing decodes it). Caller frees.
uint8_t *tpng_file (size_t size, uint32_t seed, size_t *size_p);

//  The deterministic output a test worker produces for a job id.
void tworker_output (const char *id, uint8_t *buf, size_t size);
//  The worker process entry point.
int tworker_main (int argc, char *argv []);

//  Reports, kills every child process, removes the temp dir and exits 1.
void tenv_fail (const char *file, int line, const char *what);
//  Remembers a child started outside tenv (killed on failure).
void tenv_track (pid_t pid);
#define TCHECK(cond) do { if (!(cond)) tenv_fail (__FILE__, __LINE__, #cond); } while (0)

#endif
