/*  vdgx_webhook.h - per-job webhooks of the REST bridge.

    A submit may carry `webhook` (an http:// or https:// URL) and `webhook_events_filter`
    (any of "start", "progress", "completed"; default start + completed; in a form, a
    comma-separated list). The bridge hands the job to this class once the broker accepted
    it. The class is an actor with its own SUB socket on the broker's events: for each event
    of a registered job that the filter asks for it POSTs a JSON delivery

        {"id": DELIVERY_ID, "event": "start"|"progress"|"completed", "created_at": TS,
         "job": {id, model, state, phase, step, steps, percent, error?, content_url}}

    signed with HMAC-SHA256 under the bridge's webhook secret:

        X-VDGX-Webhook-Id: DELIVERY_ID          (the same on every retry)
        X-VDGX-Webhook-Timestamp: UNIX_SECONDS  (of this attempt)
        X-VDGX-Webhook-Signature: sha256=HEX    HMAC-SHA256(secret, "ID.TIMESTAMP.BODY")

    Destinations: the URL's host must resolve to public addresses only, or to networks the
    operator allows (--webhook-allow / webhook_allow); checked at submit (422 on "webhook")
    and again on the address each delivery connects to (no DNS rebinding to an internal
    address). Redirects are not followed; no proxy from the environment is used.

    A delivery that does not get a 2xx (or no answer in 5 s) is retried after 1, 2, 4, 8 and
    16 s, then given up (counted, logged). A job's registration ends after its `completed`
    delivery. Events that came before the registration (a fast job) are replayed from a
    short memory of recent events. Registrations live in the bridge's memory: a bridge
    restart forgets them (the job itself is safe in the broker).
*/
#ifndef VDGX_WEBHOOK_H_INCLUDED
#define VDGX_WEBHOOK_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "vdgx_apireq.h"
#include "vdgx_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_WEBHOOK_START      1u
#define VDGX_WEBHOOK_PROGRESS   2u
#define VDGX_WEBHOOK_COMPLETED  4u
#define VDGX_WEBHOOK_URL_MAX    2048

typedef struct {
    char url [VDGX_WEBHOOK_URL_MAX + 1];
    unsigned events;            //  VDGX_WEBHOOK_* bits
} vdgx_webhook_spec_t;

typedef struct _vdgx_webhook_t vdgx_webhook_t;

//  Takes `webhook` and `webhook_events_filter` out of a request body (so the rest parses as a
//  generate request). 1 when a webhook was given (spec filled), 0 when none, -1 with err set
//  (422, field named) when they are wrong.
int vdgx_webhook_take (json_t *body, bool from_form, vdgx_webhook_spec_t *spec, vdgx_apierr_t *err);

//  Starts the delivery actor on the broker's events endpoint. secret signs every delivery
//  (at least 16 bytes). allow (NULL = none) lists networks (CIDRs, comma separated) that
//  webhooks may reach besides public addresses. NULL with a message in err on failure.
vdgx_webhook_t *vdgx_webhook_new (const char *events, const char *secret, size_t secret_size,
                                  const char *allow, char *err, size_t errsize);
//  Whether a webhook URL may be used: its host is resolved and every address must be a
//  public one or in an allowed network (not loopback, private, link-local, unique-local,
//  multicast, unspecified; IPv4-mapped IPv6 by its IPv4 address). 0, or -1 with err set
//  (422, field "webhook"). Each delivery checks the address it connects to again.
int vdgx_webhook_check (vdgx_webhook_t *self, const vdgx_webhook_spec_t *spec, vdgx_apierr_t *err);
void vdgx_webhook_destroy (vdgx_webhook_t **self_p);
//  Registers a job the broker accepted (thread-safe: it goes to the actor through a pipe).
void vdgx_webhook_add (vdgx_webhook_t *self, const char *job_id, const vdgx_webhook_spec_t *spec);
//  The JSON object of a job event, as SSE streams and webhook deliveries show it: id,
//  model, state, phase, step, steps, percent, ts, error (when failed). Caller owns it.
json_t *vdgx_webhook_job_json (const vdgx_event_t *ev);
//  Counters for /metrics: deliveries made (2xx), attempts retried, deliveries given up.
void vdgx_webhook_counts (vdgx_webhook_t *self, uint64_t *delivered, uint64_t *retried,
                          uint64_t *failed);

void vdgx_webhook_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
