/*  vdgx_bridge.h - the REST bridge: HTTP (libmicrohttpd) in front of the VDGX broker.

    Threads: the HTTP threads are the front door's (vdgx_front): each runs a libmicrohttpd
    daemon of its own (external polling) next to the connections it relays. One actor thread
    owns the ZeroMQ sockets (a DEALER to the broker, a SUB on its event socket), because
    ZeroMQ sockets are not thread-safe. An HTTP handler that needs the broker fills its
    request context, suspends its connection (MHD_suspend_connection) and hands the context
    to the actor over the actor pipe; the actor sends the MDP requests, matches the FINAL
    replies (in order: the broker answers `vdgx.jobs` and `mmi.*` synchronously), stores them
    in the context and resumes the connection. While a connection is suspended only the actor
    touches its context, and after the resume only the HTTP thread does: the context changes
    hands, nothing is shared.
    Every handed-over request has a deadline; when it passes, the actor answers it and all
    requests behind it with 503 and opens a fresh DEALER (the reply order is then unknown).

    Downloads are streamed: the response callback asks the actor for the next chunk (the
    broker's `result` command, 1 MiB at a time) and suspends until it arrives, so a video is
    never held whole in memory. Server-sent events are fed the same way from the SUB socket.

    Job statuses that can no longer change (completed, failed, cancelled, expired) are kept
    for cache_ms, so polling a finished job does not cost a broker round trip; a DELETE through
    this bridge drops the entry at once, one from elsewhere shows within cache_ms.

    Routes, errors and limits: see docs in clients/bridge/README.md and GET /openapi.json.
*/
#ifndef VDGX_BRIDGE_H_INCLUDED
#define VDGX_BRIDGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *listen;         //  "host:port" (IPv4, [IPv6] or localhost); port 0 = any
    const char *broker;         //  broker endpoint
    const char *events;         //  broker event endpoint
    const char *keys_file;      //  API keys (NULL = none); required on non-loopback
    const char *default_model;  //  model for requests that name none (NULL/"" = required)
    double rate, burst;         //  requests per second per key/IP (0 = no limit), bucket
    int threads;                //  HTTP threads, 0 = auto (the CPUs, 1 to 8)
    unsigned decode_limit;      //  images decoded at once (0 = auto: threads / 2, CPUs / 4 with auto threads; >= 1)
    int decode_wait_ms;         //  how long an upload waits for a decode slot before its 503
    unsigned conn_limit;        //  open connections at once
    unsigned per_ip_limit;      //  open connections per client address (0 = no limit)
    unsigned conn_timeout_s;    //  idle connection timeout
    size_t body_max;            //  request body cap in bytes
    size_t submit_body_max;     //  ... for POST /generate and /v1/videos, which may carry two
                                //  images (default 12 MiB: two 4 MiB files as base64 + fields)
    int request_timeout_ms;     //  deadline of one broker round trip
    int sse_max_s;              //  longest life of an event stream
    uint32_t chunk_bytes;       //  download chunk read from the broker per round trip
    int cache_ms;               //  how long a FINAL job status is served from memory (0 = off)
    int header_timeout_ms;      //  a request's headers must be in within this (and a body
                                //  must come at min_body_rate after it), else it is closed
    size_t min_body_rate;       //  bytes per second (0 = no minimum)
    double auth_fail_rate;      //  failed authentications per second per address (refill) ...
    double auth_fail_burst;     //  ... and at once; beyond: 429 without looking at the key
    const char *curve_server_key;   //  CURVE: the broker's public certificate (NULL = plain)
    const char *curve_cert;         //  CURVE: this bridge's certificate (its _secret file)
    const char *webhook_secret; //  signs webhook deliveries (NULL = webhooks refused)
    const char *webhook_allow;  //  CIDRs webhooks may reach besides public addresses (NULL = none)
} vdgx_bridge_cfg_t;

//  Defaults: 127.0.0.1:8000, VDGX_* endpoints, no keys, no rate limit, auto threads, 1024
//  connections, 64 per IP, 30 s idle timeout, 64 KiB bodies, 5 s broker deadline, 1 h SSE,
//  1 MiB download chunks, final statuses cached 1000 ms.
void vdgx_bridge_cfg_init (vdgx_bridge_cfg_t *cfg);

typedef struct _vdgx_bridge_t vdgx_bridge_t;

//  Starts serving. Returns NULL with a message in err (bad address, port in use, keys file,
//  no keys on a non-loopback address).
vdgx_bridge_t *vdgx_bridge_new (const vdgx_bridge_cfg_t *cfg, char *err, size_t err_size);
//  Stops serving: answers whatever waits on the broker, closes every connection.
void vdgx_bridge_destroy (vdgx_bridge_t **self_p);
//  The port actually bound (useful with port 0).
uint16_t vdgx_bridge_port (vdgx_bridge_t *self);
//  True when API keys are enforced.
bool vdgx_bridge_auth_required (vdgx_bridge_t *self);

//  The OpenAPI 3 document served at /openapi.json (static text).
const char *vdgx_bridge_openapi (void);

void vdgx_bridge_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
