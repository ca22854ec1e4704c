/*  vdgx_broker.h - the VDGX Majordomo broker as a CZMQ actor (zactor + zloop).

    One ROUTER for clients and workers (MDP/0.2 and MDP/0.1, both with or without the
    leading empty delimiter frame; replies use the form the peer used), a PUB socket for
    job and model events, the job service `vdgx.jobs`, MMI (`mmi.*`), plain Majordomo
    routing for any other service, a durable SQLite job store and heartbeats both ways.
    See docs/PROTOCOL.md and docs/ARCHITECTURE.md.

        vdgx_broker_config_t cfg;
        vdgx_broker_config_init (&cfg);
        cfg.data_dir = "/var/lib/vdgx";
        char error [256];
        vdgx_broker_t *broker = vdgx_broker_new (&cfg, error, sizeof error);
        ...
        vdgx_broker_destroy (&broker);      //  graceful: DISCONNECT workers, flush store
*/
#ifndef VDGX_BROKER_H_INCLUDED
#define VDGX_BROKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *endpoint;       //  ROUTER (--bind)
    const char *events;         //  PUB (--events); NULL or "" = none
    const char *data_dir;       //  job store (--data)
    const char *curve_dir;      //  NULL = plain (--curve)
    bool insecure;              //  allow plain on non-loopback (--insecure)
    const char *trust_nets;     //  plain peers trusted as before (--trust-net CIDR,..); NULL = loopback only
    int heartbeat_ms;           //  --heartbeat-ms
    int liveness;               //  --liveness
    int max_attempts;           //  --max-attempts
    size_t queue_max;           //  per model and per plain service (--queue-max)
    int expire_s;               //  --expire-s: queued jobs / requests with no worker
    double retain_hours;        //  --retain-hours (0 = keep)
    uint64_t retain_bytes;      //  --retain-bytes (0 = no cap)
    //  Abuse limits per client (docs/SECURITY.md); peers with the admin role are exempt.
    uint64_t peer_rate;         //  vdgx.jobs request bytes per second per peer (--peer-rate, 0 = off)
    uint64_t peer_burst;        //  ... at once (--peer-burst, >= VDGX_REQUEST_FRAME_MAX)
    uint64_t owner_queued_max;  //  request bytes of an owner's unfinished jobs (--owner-queued-max, 0 = off)
    const char **models;        //  models known from the configuration (--model)
    const char **model_precisions;  //  per model: "fp8,bf16" its configured workers run,
                                    //  or NULL (unknown); NULL array = none known
    size_t nmodels;
    bool verbose;
    bool salvage;               //  --salvage: a damaged store is salvaged, not refused
} vdgx_broker_config_t;

typedef struct _vdgx_broker_t vdgx_broker_t;

void vdgx_broker_config_init (vdgx_broker_config_t *cfg);
//  Checks a configuration (ranges, loopback rule). 0, or -1 with a message.
int vdgx_broker_config_check (const vdgx_broker_config_t *cfg, char *error, size_t errsize);
//  True when endpoint is ipc://, inproc:// or tcp:// on a loopback address.
bool vdgx_broker_endpoint_is_local (const char *endpoint);

//  Starts the broker (binds, opens the store, recovers jobs). NULL with error on failure.
vdgx_broker_t *vdgx_broker_new (const vdgx_broker_config_t *cfg, char *error, size_t errsize);
//  Graceful stop: stops accepting, sends DISCONNECT to workers, flushes the store.
void vdgx_broker_destroy (vdgx_broker_t **self_p);
//  The actor's pipe (readable when the actor ended on its own).
zsock_t *vdgx_broker_sock (vdgx_broker_t *self);

void vdgx_broker_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
