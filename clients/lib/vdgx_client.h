/*  vdgx_client.h - C client library for the VideosDGX broker (PROTOCOL.md 2, 4, 7, 8).

    One vdgx_client_t talks MDP/0.2 over a DEALER socket to the broker's `vdgx.jobs` service and
    the `mmi.*` services; `wait` also listens on the broker's PUB event socket. Every call is
    synchronous with a timeout. On a timeout the client drops its socket, reconnects and retries
    the call (up to the retry count): reads are naturally repeatable, and submit is retried
    with the SAME idempotency key (one is generated when the request has none), so a lost reply
    never creates a second job.

    Endpoints: the arguments of vdgx_client_new, else VDGX_BROKER / VDGX_EVENTS, else
    tcp://127.0.0.1:5555 / tcp://127.0.0.1:5556.

    Threads: a client belongs to one thread at a time (a bridge serving requests from several
    threads keeps one client per thread, or a pool).

    Errors: functions return 0 on success, -1 on failure; vdgx_client_error_code() then gives
    the broker's error code (PROTOCOL.md 6: "not_found", "bad_request", ...) or one of the
    client-side codes "timeout" (no reply in time, after all retries), "protocol" (malformed
    reply), "io" (local file error), "integrity" (sha256 mismatch); vdgx_client_error() gives
    the message. Strings returned as `char *` are freed by the caller (free()).

    Example:

        vdgx_client_t *client = vdgx_client_new (NULL, NULL);     //  env or defaults
        vdgx_genreq_t req;
        vdgx_genreq_init (&req);
        snprintf (req.model, sizeof req.model, "wan21-1.3b");
        req.prompt = strdup ("a red fox running through snow");
        char *id = NULL;
        if (vdgx_client_submit (client, &req, &id, NULL) == 0) {
            vdgx_jobstatus_t job;
            vdgx_jobstatus_init (&job);
            if (vdgx_client_wait (client, id, 0, print_progress, NULL, &job) == 0
            &&  job.state == VDGX_JOB_COMPLETED)
                vdgx_client_result (client, id, "fox.mp4");
            vdgx_jobstatus_clear (&job);
            free (id);
        }
        else
            fprintf (stderr, "submit: %s: %s\n",
                     vdgx_client_error_code (client), vdgx_client_error (client));
        vdgx_genreq_clear (&req);
        vdgx_client_destroy (&client);
*/
#ifndef VDGX_CLIENT_H_INCLUDED
#define VDGX_CLIENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vdgx_genreq.h"
#include "vdgx_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_CLIENT_DEFAULT_BROKER  "tcp://127.0.0.1:5555"
#define VDGX_CLIENT_DEFAULT_EVENTS  "tcp://127.0.0.1:5556"

//  What submit answered besides the job id.
typedef struct {
    vdgx_job_state_t state;
    bool cached;                    //  served from the result cache
    uint32_t queue_position;
    char idempotency_key [VDGX_IDEMKEY_MAX + 1];    //  the key used (generated if none given)
} vdgx_submit_info_t;

//  Job status results are vdgx_jobstatus_t (vdgx_msg.h, PROTOCOL.md 5.2), decoded by the
//  shared codecs: init with vdgx_jobstatus_init, free with vdgx_jobstatus_clear.

//  Called by vdgx_client_wait whenever the job's progress or state changes.
typedef void (vdgx_client_progress_fn) (const vdgx_jobstatus_t *job, void *arg);

typedef struct _vdgx_client_t vdgx_client_t;

//  Creates a client. broker / events may be NULL (env, then defaults). Connects lazily; never
//  fails for an unreachable broker (calls time out instead). Returns NULL only on a bad
//  endpoint string.
vdgx_client_t *vdgx_client_new (const char *broker, const char *events);
void vdgx_client_destroy (vdgx_client_t **self_p);

//  Per-attempt reply timeout (default 5000 ms) and retries after a timeout (default 2).
void vdgx_client_set_timeout (vdgx_client_t *self, int timeout_ms);
void vdgx_client_set_retries (vdgx_client_t *self, int retries);
//  CURVE: the broker's public key file (zcert public file) and this client's certificate
//  (zcert secret file). Applies to the next (re)connect. Returns -1 when a file can't be read.
int vdgx_client_set_curve (vdgx_client_t *self, const char *broker_public_file,
                           const char *client_cert_file);

//  Last error (valid until the next call on this client).
const char *vdgx_client_error_code (vdgx_client_t *self);
const char *vdgx_client_error (vdgx_client_t *self);

//  Reads an image file (PNG, JPEG or WebP) into req's field "image" or "last_image", after
//  checking it whole as the bridge and the worker will (vdgx_image_decode: format, structure,
//  at most 4 MiB, 4096 pixels a side, 16 Mpx). Returns 0, or -1 with a one-line reason that
//  names the file in err. Needs no client.
int vdgx_client_image_file (vdgx_genreq_t *req, const char *field, const char *path, char *err,
                            size_t errlen);

//  Submits a generate request; *id_p receives the job id (caller frees). info may be NULL.
int vdgx_client_submit (vdgx_client_t *self, const vdgx_genreq_t *req, char **id_p,
                        vdgx_submit_info_t *info);
//  Job status into *job (vdgx_jobstatus_init'ed or decoded before: it is cleared first;
//  vdgx_jobstatus_clear it afterwards).
int vdgx_client_status (vdgx_client_t *self, const char *id, vdgx_jobstatus_t *job);
//  Waits until the job is completed, failed, cancelled or expired (returns 0 with the final
//  status in *job), or timeout_ms elapses (0 = no limit; returns -1, code "timeout", *job
//  holds the last status). Progress from the event socket, with status polls as a fallback.
//  progress may be NULL; job may be NULL.
int vdgx_client_wait (vdgx_client_t *self, const char *id, int timeout_ms,
                      vdgx_client_progress_fn *progress, void *arg, vdgx_jobstatus_t *job);
//  Cancels a job; *job (may be NULL) gets its status after the cancel.
int vdgx_client_cancel (vdgx_client_t *self, const char *id, vdgx_jobstatus_t *job);
//  Deletes a job and its result (cancels it first when running).
int vdgx_client_delete (vdgx_client_t *self, const char *id);
//  Downloads a completed job's MP4 to path: chunks into a temp file beside it, sha256
//  checked, then renamed over path. Nothing is left behind on failure.
int vdgx_client_result (vdgx_client_t *self, const char *id, const char *path);
//  One `result` read: up to length bytes at offset. For a running streaming job the reply is
//  its ready prefix (reply->partial, size = the bytes ready now, sha256 of that prefix).
//  Fills *reply (the caller clears it with vdgx_jobreply_clear). Returns 0 or -1.
int vdgx_client_read (vdgx_client_t *self, const char *id, uint64_t offset, uint32_t length,
                      vdgx_jobreply_t *reply);
//  Lists jobs (state, model, after may be NULL; limit 0 = broker default), oldest first, or
//  newest first with newest_first (then after pages towards older jobs). *jobs_p is an
//  array of *count_p jobs; free it with vdgx_client_jobs_free. has_more_p may be NULL.
int vdgx_client_list (vdgx_client_t *self, const char *state, const char *model,
                      uint32_t limit, const char *after, bool newest_first,
                      vdgx_jobstatus_t **jobs_p, size_t *count_p, bool *has_more_p);
//  Asks the workers of a model to unload it; *workers_p (may be NULL) = how many were asked.
int vdgx_client_unload (vdgx_client_t *self, const char *model, uint32_t *workers_p);
//  Drains the workers of a model and/or on a host (NULL or "" = any; not both): each finishes
//  the job it holds, takes no other and leaves. *workers_p (may be NULL) = how many were told.
int vdgx_client_drain (vdgx_client_t *self, const char *model, const char *host,
                       uint32_t *workers_p);
//  Forgets the limits the broker stored for a model (its allowed workers advertise them
//  again); needs the admin role. *workers_p (may be NULL) = live workers of the model.
int vdgx_client_reset_limits (vdgx_client_t *self, const char *model, uint32_t *workers_p);

//  Introspection. *json_p gets the broker's whole reply map as JSON text (caller frees).
int vdgx_client_models (vdgx_client_t *self, char **json_p);               //  vdgx.jobs models
int vdgx_client_workers (vdgx_client_t *self, const char *service, char **json_p);  //  mmi.workers
int vdgx_client_services (vdgx_client_t *self, char **json_p);             //  mmi.services
//  mmi.health; *healthy_p (may be NULL) = the broker's `healthy`. json_p may be NULL.
int vdgx_client_health (vdgx_client_t *self, bool *healthy_p, char **json_p);
int vdgx_client_metrics (vdgx_client_t *self, char **json_p);              //  mmi.metrics

//  Job helpers.
void vdgx_client_jobs_free (vdgx_jobstatus_t **jobs_p, size_t count);
//  The job as JSON text (PROTOCOL.md 5.2 field names); caller frees.
char *vdgx_client_job_json (const vdgx_jobstatus_t *job);

void vdgx_client_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
