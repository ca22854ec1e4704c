/*  vdgx_worker.h - the worker runtime: one model instance behind one Majordomo worker.

    The actor's thread owns the broker socket: it registers (READY + worker-state map, state
    cold, no weights loaded), heartbeats both ways, turns broker REQUESTs into jobs for the
    engine thread (vdgx_runner), forwards progress as PARTIALs, streams the finished MP4 as
    chunk PARTIALs and answers FINAL (PROTOCOL.md 3.1). Engine work never runs on this thread,
    so a long denoising step cannot make a live worker look dead.

    It also: unloads the model after an idle period or on CONTROL unload; cancels at the next
    step boundary on CONTROL cancel; reconnects with exponential back-off when the broker goes
    silent or tells it to disconnect, and re-registers listing undelivered results as
    `pending` (CONTROL resend / drop / ack); drains on CONTROL drain.

    The actor tells its owner when the process should end: "EXIT" <code> on its socket
    ("0" after a stop or drain, "3" after a fatal engine error: never serve from a corrupted
    state). After EXIT the owner destroys it.

    Commands to the actor:
        STOP        finish quickly: a running job is cancelled at its next step boundary and
                    handed back (no FINAL; the broker re-queues it on DISCONNECT), a finished
                    result is delivered first; then DISCONNECT and EXIT 0.
*/
#ifndef VDGX_WORKER_H_INCLUDED
#define VDGX_WORKER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *model;              //  service name, required
    const char *broker;             //  endpoint, required
    const char *weights_dir;        //  may be NULL
    const char *precision;          //  NULL = engine default
    const char *device;             //  NULL = "cpu"
    const char *data_dir;           //  temp results; NULL = $TMPDIR or /tmp
    double unload_after_min;        //  idle minutes before unloading; 0 = never (default 10)
    uint64_t host_budget_bytes;     //  reported to the broker; 0 = unknown
    int threads;                    //  engine CPU threads; 0 = all
    int heartbeat_ms;               //  default VDGX_HEARTBEAT_MS or 2500
    int liveness;                   //  default VDGX_LIVENESS or 3
    int reconnect_min_ms;           //  first back-off (default 250)
    int reconnect_max_ms;           //  back-off cap (default 10000)
    const char *curve_server_key;   //  broker public certificate file (enables CURVE)
    const char *curve_cert;         //  this worker's certificate (secret) file
} vdgx_worker_options_t;

typedef struct _vdgx_worker_t vdgx_worker_t;

//  Fills the defaults (environment included).
void vdgx_worker_options_init (vdgx_worker_options_t *opts);
//  Starts the engine thread and the socket thread. NULL with *err (caller frees) when the
//  model has no engine or the engine refuses its configuration.
vdgx_worker_t *vdgx_worker_new (const vdgx_worker_options_t *opts, char **err);
//  Stops immediately (no hand-back protocol); prefer STOP then waiting for EXIT.
void vdgx_worker_destroy (vdgx_worker_t **self_p);
zsock_t *vdgx_worker_sock (vdgx_worker_t *self);
//  Sends STOP.
void vdgx_worker_stop (vdgx_worker_t *self);
//  Waits up to timeout_ms (-1 = forever) for EXIT. Returns the exit code, or -1 on timeout.
int vdgx_worker_wait_exit (vdgx_worker_t *self, int timeout_ms);

//  The vdgx-worker command line (after engines are registered). Returns the exit status.
int vdgx_worker_main (int argc, char **argv);

void vdgx_worker_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
