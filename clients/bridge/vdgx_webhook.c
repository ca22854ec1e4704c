/*  vdgx_webhook.c - per-job webhooks: registration, signed delivery, retries (see the header).
*/
#include "vdgx_webhook.h"
#include "vdgx_log.h"
#include "vdgx_msg.h"
#include "vdgx_netlist.h"
#include "vdgx_sha256.h"
#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <czmq.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_RECENT        512             //  events kept for registrations that come late
#define S_RECENT_MS     60000           //  ... for this long
#define S_ATTEMPTS      6               //  first try + 5 retries
#define S_TIMEOUT_MS    5000            //  per attempt

static const int64_t s_backoff_ms [S_ATTEMPTS] = { 0, 1000, 2000, 4000, 8000, 16000 };

struct _vdgx_webhook_t {
    zactor_t *actor;
    pthread_mutex_t lock;       //  HTTP threads share the pipe
    atomic_uint_fast64_t delivered, retried, failed;
    char *events;
    uint8_t *secret;
    size_t secret_size;
    vdgx_netlist_t *allow;      //  networks the operator allows besides public addresses
};

//  ---------------------------------------------------------------------------------------
//  Request fields

static int
s_filter_word (const char *word, size_t n, unsigned *events)
{
    static const struct { const char *name; unsigned bit; } words [] = {
        { "start", VDGX_WEBHOOK_START }, { "progress", VDGX_WEBHOOK_PROGRESS },
        { "completed", VDGX_WEBHOOK_COMPLETED },
    };
    for (size_t i = 0; i < sizeof words / sizeof words [0]; i++)
        if (strlen (words [i].name) == n && memcmp (words [i].name, word, n) == 0) {
            *events |= words [i].bit;
            return 0;
        }
    return -1;
}

int
vdgx_webhook_take (json_t *body, bool from_form, vdgx_webhook_spec_t *spec, vdgx_apierr_t *err)
{
    assert (spec && err);
    memset (spec, 0, sizeof *spec);
    if (!json_is_object (body))
        return 0;
    json_t *url = json_object_get (body, "webhook");
    json_t *filter = json_object_get (body, "webhook_events_filter");
    if (json_is_null (url) && !from_form)
        url = NULL;
    if (json_is_null (filter) && !from_form)
        filter = NULL;
    if (!url && !filter)
        return 0;
    json_incref (url);
    json_incref (filter);
    json_object_del (body, "webhook");
    json_object_del (body, "webhook_events_filter");
    int rc = -1;
    if (!url) {
        vdgx_apierr_set (err, 422, "invalid_field", "webhook_events_filter",
                         "webhook_events_filter without webhook");
        goto done;
    }
    const char *text = json_string_value (url);
    if (!text || strlen (text) > VDGX_WEBHOOK_URL_MAX
    ||  (strncmp (text, "http://", 7) != 0 && strncmp (text, "https://", 8) != 0)
    ||  strpbrk (text, " \t\r\n") || strlen (text) < 10) {
        vdgx_apierr_set (err, 422, "invalid_field", "webhook",
                         "webhook must be an http:// or https:// URL of at most %d bytes",
                         VDGX_WEBHOOK_URL_MAX);
        goto done;
    }
    snprintf (spec->url, sizeof spec->url, "%s", text);
    if (!filter)
        spec->events = VDGX_WEBHOOK_START | VDGX_WEBHOOK_COMPLETED;
    else
    if (json_is_array (filter) && !from_form) {
        size_t i;
        json_t *w;
        json_array_foreach (filter, i, w) {
            const char *word = json_string_value (w);
            if (!word || s_filter_word (word, strlen (word), &spec->events)) {
                vdgx_apierr_set (err, 422, "invalid_field", "webhook_events_filter",
                                 "webhook_events_filter: each entry is start, progress or completed");
                goto done;
            }
        }
    }
    else
    if (json_is_string (filter)) {
        //  A form field: "start,completed".
        const char *p = json_string_value (filter);
        while (*p) {
            size_t n = strcspn (p, ", ");
            if (n && s_filter_word (p, n, &spec->events)) {
                vdgx_apierr_set (err, 422, "invalid_field", "webhook_events_filter",
                                 "webhook_events_filter: each entry is start, progress or completed");
                goto done;
            }
            p += n;
            p += strspn (p, ", ");
        }
    }
    else {
        vdgx_apierr_set (err, 422, "invalid_field", "webhook_events_filter",
                         "webhook_events_filter must be a list of start, progress, completed");
        goto done;
    }
    if (!spec->events) {
        vdgx_apierr_set (err, 422, "invalid_field", "webhook_events_filter",
                         "webhook_events_filter names no event");
        goto done;
    }
    rc = 1;
done:
    json_decref (url);
    json_decref (filter);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Destinations: public addresses, or networks the operator allows (webhook_allow)

static bool
s_address_ok (vdgx_webhook_t *self, const struct sockaddr *sa)
{
    int family;
    uint8_t addr [16];
    if (vdgx_netlist_sockaddr (sa, &family, addr))
        return false;
    return !vdgx_netlist_is_special (family, addr) || vdgx_netlist_has (self->allow, family, addr);
}

int
vdgx_webhook_check (vdgx_webhook_t *self, const vdgx_webhook_spec_t *spec, vdgx_apierr_t *err)
{
    assert (self && spec && err);
    CURLU *u = curl_url ();
    char *host = NULL, *port = NULL;
    int rc = -1;
    if (!u || curl_url_set (u, CURLUPART_URL, spec->url, 0) != CURLUE_OK
    ||  curl_url_get (u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        vdgx_apierr_set (err, 422, "invalid_field", "webhook", "webhook is not a valid URL");
        goto done;
    }
    curl_url_get (u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    //  An IPv6 literal comes bracketed.
    char name [VDGX_WEBHOOK_URL_MAX + 1];
    size_t n = strlen (host);
    if (host [0] == '[' && n > 2 && host [n - 1] == ']')
        snprintf (name, sizeof name, "%.*s", (int) (n - 2), host + 1);
    else
        snprintf (name, sizeof name, "%s", host);
    *strchrnul (name, '%') = 0;                 //  no zone ids
    struct addrinfo hints, *res = NULL;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo (name, port, &hints, &res);
    if (gai != 0 || !res) {
        vdgx_apierr_set (err, 422, "invalid_field", "webhook", "webhook host '%s' does not resolve (%s)",
                         name, gai_strerror (gai));
        goto done;
    }
    //  Every address the name has must be allowed: delivery may use any of them.
    rc = 0;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next)
        if (!s_address_ok (self, ai->ai_addr)) {
            char text [INET6_ADDRSTRLEN] = "?";
            getnameinfo (ai->ai_addr, ai->ai_addrlen, text, sizeof text, NULL, 0, NI_NUMERICHOST);
            vdgx_apierr_set (err, 422, "invalid_field", "webhook",
                             "webhook host '%s' is %s, a loopback, private, link-local or other"
                             " non-public address; this bridge sends webhooks only to public"
                             " addresses and the networks its operator allows (webhook_allow)",
                             name, text);
            rc = -1;
        }
    freeaddrinfo (res);
done:
    curl_free (host);
    curl_free (port);
    curl_url_cleanup (u);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  The actor

typedef struct {
    char url [VDGX_WEBHOOK_URL_MAX + 1];
    unsigned events;
    int64_t added;
} s_hook_t;

typedef struct {
    char job [VDGX_ID_MAX + 1];
    unsigned event;             //  one VDGX_WEBHOOK_* bit
    char *data;                 //  the job object (JSON text)
    double ts;
    int64_t at;                 //  mono ms received
} s_recent_t;

typedef struct {
    char url [VDGX_WEBHOOK_URL_MAX + 1];
    char id [48];
    char *body;
    int attempt;                //  attempts made
    int64_t due;                //  mono ms of the next attempt
} s_delivery_t;

typedef struct {
    vdgx_webhook_t *owner;
    zsock_t *pipe, *sub;
    zhashx_t *hooks;            //  job id -> s_hook_t
    s_recent_t recent [S_RECENT];
    size_t recent_next;
    zlistx_t *queue;            //  s_delivery_t, any order (a few at a time)
    CURL *curl;
    uint64_t seq;
    bool stop;
    char refused [INET6_ADDRSTRLEN];    //  the address the last attempt would not connect to
} s_actor_t;

static const char *
s_event_name (unsigned event)
{
    return event == VDGX_WEBHOOK_START? "start": event == VDGX_WEBHOOK_PROGRESS? "progress": "completed";
}

static void
s_delivery_destroy (void **item_p)
{
    s_delivery_t *d = (s_delivery_t *) *item_p;
    if (d) {
        free (d->body);
        free (d);
        *item_p = NULL;
    }
}

static void
s_queue (s_actor_t *a, const s_hook_t *hook, const char *job, unsigned event, const char *data, double ts)
{
    s_delivery_t *d = (s_delivery_t *) zmalloc (sizeof (s_delivery_t));
    snprintf (d->url, sizeof d->url, "%s", hook->url);
    snprintf (d->id, sizeof d->id, "wh_%016" PRIx64 "_%" PRIu64, (uint64_t) zclock_time (), ++a->seq);
    d->body = zsys_sprintf ("{\"id\":\"%s\",\"event\":\"%s\",\"created_at\":%.3f,\"job\":%s}", d->id,
                            s_event_name (event), ts, data);
    d->due = zclock_mono ();
    zlistx_add_end (a->queue, d);
    (void) job;
}

json_t *
vdgx_webhook_job_json (const vdgx_event_t *ev)
{
    assert (ev);
    json_t *j = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:f}", "id", ev->id, "model", ev->model,
                           "state", vdgx_job_state_name (ev->job_state), "phase",
                           ev->has_phase? vdgx_phase_name (ev->phase): "queued",
                           "step", (json_int_t) ev->step, "steps", (json_int_t) ev->steps,
                           "percent", ev->percent, "ts", ev->ts);
    if (ev->has_ready) {
        json_object_set_new (j, "ready_bytes", json_integer ((json_int_t) ev->ready.bytes));
        json_object_set_new (j, "ready_frames", json_integer ((json_int_t) ev->ready.frames));
        json_object_set_new (j, "ready_seconds", json_real (ev->ready.seconds));
    }
    if (ev->has_error)
        json_object_set_new (j, "error", json_pack ("{s:s, s:s}", "code",
                                                    ev->error.code? ev->error.code: "internal",
                                                    "message", ev->error.message));
    return j;
}

//  The job object of an event, and which webhook event it is (0 = none).
static char *
s_event_json (const vdgx_event_t *ev, unsigned *event)
{
    *event = 0;
    if (ev->type == VDGX_EVENT_CHUNK)
        return NULL;            //  a streamed chunk: SSE only, no webhook of its own
    if (ev->type == VDGX_EVENT_PROGRESS)
        *event = VDGX_WEBHOOK_PROGRESS;
    else
    if (vdgx_job_state_is_final (ev->job_state))
        *event = VDGX_WEBHOOK_COMPLETED;
    else
    if (ev->job_state == VDGX_JOB_RUNNING)
        *event = VDGX_WEBHOOK_START;
    if (!*event)
        return NULL;
    json_t *j = vdgx_webhook_job_json (ev);
    if (ev->job_state == VDGX_JOB_COMPLETED) {
        char url [VDGX_ID_MAX + 32];
        snprintf (url, sizeof url, "/v1/videos/%s/content", ev->id);
        json_object_set_new (j, "content_url", json_string (url));
    }
    char *text = json_dumps (j, JSON_COMPACT | JSON_REAL_PRECISION (15));
    json_decref (j);
    return text;
}

static void
s_on_event (s_actor_t *a, const char *job, unsigned event, const char *data, double ts)
{
    s_hook_t *hook = (s_hook_t *) zhashx_lookup (a->hooks, job);
    if (!hook)
        return;
    if (hook->events & event)
        s_queue (a, hook, job, event, data, ts);
    if (event == VDGX_WEBHOOK_COMPLETED)
        zhashx_delete (a->hooks, job);      //  nothing follows a final state
}

static void
s_sub_event (s_actor_t *a)
{
    zmsg_t *msg = zmsg_recv (a->sub);
    if (!msg)
        return;
    vdgx_event_t ev;
    vdgx_event_init (&ev);
    vdgx_error_t err;
    unsigned event = 0;
    char *data = NULL;
    if (vdgx_event_decode_msg (&ev, msg, &err) == 0 && !ev.is_model
    &&  (data = s_event_json (&ev, &event))) {
        //  Kept a while for a registration that arrives after its first events.
        s_recent_t *r = &a->recent [a->recent_next++ % S_RECENT];
        free (r->data);
        snprintf (r->job, sizeof r->job, "%s", ev.id);
        r->event = event;
        r->data = strdup (data);
        r->ts = ev.ts;
        r->at = zclock_mono ();
        s_on_event (a, ev.id, event, data, ev.ts);
    }
    free (data);
    vdgx_event_clear (&ev);
    zmsg_destroy (&msg);
}

static void
s_add (s_actor_t *a, const char *job, const char *url, unsigned events)
{
    s_hook_t *hook = (s_hook_t *) zmalloc (sizeof (s_hook_t));
    snprintf (hook->url, sizeof hook->url, "%s", url);
    hook->events = events;
    hook->added = zclock_mono ();
    zhashx_update (a->hooks, job, hook);
    //  Replay what happened before it was registered, oldest first.
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < S_RECENT; i++) {
        s_recent_t *r = &a->recent [(a->recent_next + i) % S_RECENT];
        if (r->data && streq (r->job, job) && now - r->at < S_RECENT_MS
        &&  zhashx_lookup (a->hooks, job))
            s_on_event (a, job, r->event, r->data, r->ts);
    }
}

static size_t
s_discard (char *ptr, size_t size, size_t n, void *user)
{
    (void) ptr;
    (void) user;
    return size * n;
}

//  Opens curl's sockets: the address actually connected to is checked again here, so a name
//  that resolved to a public address at submit and to an internal one now (DNS rebinding)
//  gets no connection.
static curl_socket_t
s_open_socket (void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    s_actor_t *a = (s_actor_t *) clientp;
    (void) purpose;
    if (!s_address_ok (a->owner, &address->addr)) {
        getnameinfo (&address->addr, address->addrlen, a->refused, sizeof a->refused, NULL, 0,
                     NI_NUMERICHOST);
        return CURL_SOCKET_BAD;
    }
    int fd = socket (address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    return fd < 0? CURL_SOCKET_BAD: fd;
}

//  One attempt. True when the receiver answered 2xx.
static bool
s_post (s_actor_t *a, s_delivery_t *d, long *status, char *why, size_t whysize)
{
    char ts [32], sig [VDGX_SHA256_HEX_SIZE], h1 [96], h2 [64], h3 [128], h4 [64];
    snprintf (ts, sizeof ts, "%" PRId64, (int64_t) (zclock_time () / 1000));
    const void *parts [] = { d->id, ".", ts, ".", d->body, NULL };
    size_t sizes [] = { strlen (d->id), 1, strlen (ts), 1, strlen (d->body) };
    uint8_t mac [VDGX_SHA256_SIZE];
    vdgx_sha256_hmac (a->owner->secret, a->owner->secret_size, parts, sizes, mac);
    vdgx_sha256_to_hex (mac, sig);
    snprintf (h1, sizeof h1, "X-VDGX-Webhook-Id: %s", d->id);
    snprintf (h2, sizeof h2, "X-VDGX-Webhook-Timestamp: %s", ts);
    snprintf (h3, sizeof h3, "X-VDGX-Webhook-Signature: sha256=%s", sig);
    const char *ev = strstr (d->body, "\"event\":\"");
    snprintf (h4, sizeof h4, "X-VDGX-Webhook-Event: %.*s", ev? (int) strcspn (ev + 9, "\""): 0,
              ev? ev + 9: "");
    struct curl_slist *headers = NULL;
    headers = curl_slist_append (headers, "Content-Type: application/json");
    headers = curl_slist_append (headers, "User-Agent: vdgx-bridge-webhook/1");
    headers = curl_slist_append (headers, h1);
    headers = curl_slist_append (headers, h2);
    headers = curl_slist_append (headers, h3);
    headers = curl_slist_append (headers, h4);
    CURL *c = a->curl;
    curl_easy_reset (c);
    curl_easy_setopt (c, CURLOPT_URL, d->url);
    curl_easy_setopt (c, CURLOPT_POST, 1L);
    curl_easy_setopt (c, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE, (long) strlen (d->body));
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, (long) S_TIMEOUT_MS);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt (c, CURLOPT_OPENSOCKETFUNCTION, s_open_socket);
    curl_easy_setopt (c, CURLOPT_OPENSOCKETDATA, a);
    curl_easy_setopt (c, CURLOPT_PROXY, "");            //  no proxy from the environment:
                                                        //  the receiver is connected directly
    *a->refused = 0;
    CURLcode rc = curl_easy_perform (c);
    *status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all (headers);
    if (rc != CURLE_OK && *a->refused)
        snprintf (why, whysize, "refused to connect to %s (not a public address, not allowed)",
                  a->refused);
    else
    if (rc != CURLE_OK)
        snprintf (why, whysize, "%s", curl_easy_strerror (rc));
    else
        snprintf (why, whysize, "HTTP %ld", *status);
    return rc == CURLE_OK && *status >= 200 && *status < 300;
}

//  Makes the attempts that are due. Returns ms until the next one (-1 = none).
static int64_t
s_deliver (s_actor_t *a)
{
    int64_t next = -1;
    s_delivery_t *d = (s_delivery_t *) zlistx_first (a->queue);
    while (d && !a->stop) {
        int64_t now = zclock_mono ();
        if (d->due > now) {
            if (next < 0 || d->due - now < next)
                next = d->due - now;
            d = (s_delivery_t *) zlistx_next (a->queue);
            continue;
        }
        long status;
        char why [128];
        bool ok = s_post (a, d, &status, why, sizeof why);
        d->attempt++;
        if (ok) {
            atomic_fetch_add (&a->owner->delivered, 1);
            vdgx_log_info ("webhook.delivered", "id=%s attempt=%d status=%ld", d->id, d->attempt, status);
        }
        else
        if (d->attempt < S_ATTEMPTS) {
            atomic_fetch_add (&a->owner->retried, 1);
            d->due = zclock_mono () + s_backoff_ms [d->attempt];
            vdgx_log_warn ("webhook.retry", "id=%s attempt=%d reason=\"%s\" in_ms=%" PRId64, d->id,
                           d->attempt, why, s_backoff_ms [d->attempt]);
            d = (s_delivery_t *) zlistx_next (a->queue);
            continue;
        }
        else {
            atomic_fetch_add (&a->owner->failed, 1);
            vdgx_log_error ("webhook.failed", "id=%s attempts=%d reason=\"%s\" url_host_only=1", d->id,
                            d->attempt, why);
        }
        zlistx_delete (a->queue, zlistx_cursor (a->queue));
        d = (s_delivery_t *) zlistx_first (a->queue);      //  the list changed: start over
        next = -1;
    }
    return next;
}

static void
s_pipe_command (s_actor_t *a)
{
    char *cmd = NULL, *job = NULL, *url = NULL, *events = NULL;
    if (zstr_recvx (a->pipe, &cmd, &job, &url, &events, NULL) < 1 || !cmd || streq (cmd, "$TERM"))
        a->stop = true;
    else
    if (streq (cmd, "ADD") && job && url && events)
        s_add (a, job, url, (unsigned) atoi (events));
    zstr_free (&cmd);
    zstr_free (&job);
    zstr_free (&url);
    zstr_free (&events);
}

static void
s_actor (zsock_t *pipe, void *args)
{
    vdgx_webhook_t *owner = (vdgx_webhook_t *) args;
    s_actor_t a;
    memset (&a, 0, sizeof a);
    a.owner = owner;
    a.pipe = pipe;
    a.hooks = zhashx_new ();
    zhashx_set_destructor (a.hooks, (czmq_destructor *) zstr_free);
    a.queue = zlistx_new ();
    zlistx_set_destructor (a.queue, s_delivery_destroy);
    a.curl = curl_easy_init ();
    a.sub = zsock_new_sub (owner->events, "job.");
    zsock_signal (pipe, a.sub && a.curl? 0: 1);
    zpoller_t *poller = a.sub && a.curl? zpoller_new (pipe, a.sub, NULL): NULL;
    int64_t wait = -1;
    while (poller && !a.stop) {
        void *which = zpoller_wait (poller, wait < 0? 1000: (int) (wait < 1? 1: wait));
        if (which == pipe)
            s_pipe_command (&a);
        else
        if (which == a.sub)
            s_sub_event (&a);
        else
        if (zpoller_terminated (poller))
            break;
        wait = s_deliver (&a);
    }
    zpoller_destroy (&poller);
    for (size_t i = 0; i < S_RECENT; i++)
        free (a.recent [i].data);
    if (zlistx_size (a.queue))
        vdgx_log_warn ("webhook.dropped", "pending=%zu reason=\"bridge stopped\"", zlistx_size (a.queue));
    zlistx_destroy (&a.queue);
    zhashx_destroy (&a.hooks);
    zsock_destroy (&a.sub);
    if (a.curl)
        curl_easy_cleanup (a.curl);
}

//  ---------------------------------------------------------------------------------------

vdgx_webhook_t *
vdgx_webhook_new (const char *events, const char *secret, size_t secret_size, const char *allow,
                  char *err, size_t errsize)
{
    assert (events && secret && err);
    if (secret_size < 16) {
        snprintf (err, errsize, "the webhook secret must be at least 16 bytes");
        return NULL;
    }
    vdgx_netlist_t *nets = vdgx_netlist_new ();
    char why [200];
    if (vdgx_netlist_add (nets, allow, why, sizeof why)) {
        snprintf (err, errsize, "webhook_allow: %s", why);
        vdgx_netlist_destroy (&nets);
        return NULL;
    }
    vdgx_webhook_t *self = (vdgx_webhook_t *) zmalloc (sizeof (vdgx_webhook_t));
    self->allow = nets;
    pthread_mutex_init (&self->lock, NULL);
    self->events = strdup (events);
    self->secret = (uint8_t *) malloc (secret_size);
    memcpy (self->secret, secret, secret_size);
    self->secret_size = secret_size;
    curl_global_init (CURL_GLOBAL_DEFAULT);
    self->actor = zactor_new (s_actor, self);
    if (!self->actor) {
        snprintf (err, errsize, "cannot start the webhook sender (events endpoint %s)", events);
        vdgx_webhook_destroy (&self);
        return NULL;
    }
    return self;
}

void
vdgx_webhook_destroy (vdgx_webhook_t **self_p)
{
    assert (self_p);
    vdgx_webhook_t *self = *self_p;
    if (self) {
        zactor_destroy (&self->actor);
        pthread_mutex_destroy (&self->lock);
        free (self->events);
        vdgx_netlist_destroy (&self->allow);
        if (self->secret)
            memset (self->secret, 0, self->secret_size);
        free (self->secret);
        free (self);
        *self_p = NULL;
    }
}

void
vdgx_webhook_add (vdgx_webhook_t *self, const char *job_id, const vdgx_webhook_spec_t *spec)
{
    assert (self && job_id && spec);
    char events [16];
    snprintf (events, sizeof events, "%u", spec->events);
    pthread_mutex_lock (&self->lock);
    zstr_sendx (self->actor, "ADD", job_id, spec->url, events, NULL);
    pthread_mutex_unlock (&self->lock);
}

void
vdgx_webhook_counts (vdgx_webhook_t *self, uint64_t *delivered, uint64_t *retried, uint64_t *failed)
{
    assert (self);
    if (delivered)
        *delivered = atomic_load (&self->delivered);
    if (retried)
        *retried = atomic_load (&self->retried);
    if (failed)
        *failed = atomic_load (&self->failed);
}

//  ---------------------------------------------------------------------------------------
//  Selftest: request fields, and a delivery end to end (a PUB socket as the broker's events,
//  a real HTTP receiver on loopback that fails the first attempt, checks the signature).

#define S_TEST_WAIT_MS  60000           //  deadline for each step of the selftest

typedef struct {
    int port;
    int requests;
    char last_body [2048];
    char last_sig [128];
    char last_ts [32];
    char last_id [64];
} s_receiver_t;

static void
s_header (const char *req, const char *name, char *out, size_t size)
{
    out [0] = 0;
    const char *p = strcasestr (req, name);
    if (p) {
        p += strlen (name);
        size_t n = strcspn (p, "\r\n");
        snprintf (out, size, "%.*s", (int) n, p);
    }
}

//  Answers one HTTP request on fd: 503 for the first, 204 after.
static void
s_receive_one (s_receiver_t *rx, int fd)
{
    char buf [8192];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = recv (fd, buf + len, sizeof buf - 1 - len, 0)) > 0) {
        len += (size_t) n;
        buf [len] = 0;
        char *end = strstr (buf, "\r\n\r\n");
        char cl [16];
        s_header (buf, "Content-Length: ", cl, sizeof cl);
        if (end && (size_t) (end + 4 - buf) + (size_t) atoi (cl) <= len)
            break;
    }
    buf [len] = 0;
    rx->requests++;
    char *body = strstr (buf, "\r\n\r\n");
    snprintf (rx->last_body, sizeof rx->last_body, "%s", body? body + 4: "");
    s_header (buf, "X-VDGX-Webhook-Signature: ", rx->last_sig, sizeof rx->last_sig);
    s_header (buf, "X-VDGX-Webhook-Timestamp: ", rx->last_ts, sizeof rx->last_ts);
    s_header (buf, "X-VDGX-Webhook-Id: ", rx->last_id, sizeof rx->last_id);
    const char *answer = rx->requests == 1? "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                          : "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    send (fd, answer, strlen (answer), 0);
    close (fd);
}

void
vdgx_webhook_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_webhook: ");
    vdgx_webhook_spec_t spec;
    vdgx_apierr_t err;
    json_t *body = json_pack ("{s:s, s:s}", "prompt", "x", "webhook", "https://example.org/hook");
    assert (vdgx_webhook_take (body, false, &spec, &err) == 1);
    assert (spec.events == (VDGX_WEBHOOK_START | VDGX_WEBHOOK_COMPLETED));
    assert (!json_object_get (body, "webhook") && json_object_get (body, "prompt"));
    assert (vdgx_webhook_take (body, false, &spec, &err) == 0);
    json_decref (body);
    body = json_pack ("{s:s, s:[s]}", "webhook", "http://h.example/x", "webhook_events_filter", "progress");
    assert (vdgx_webhook_take (body, false, &spec, &err) == 1 && spec.events == VDGX_WEBHOOK_PROGRESS);
    json_decref (body);
    body = json_pack ("{s:s, s:s}", "webhook", "http://h.example/x", "webhook_events_filter", "start, completed");
    assert (vdgx_webhook_take (body, true, &spec, &err) == 1
            && spec.events == (VDGX_WEBHOOK_START | VDGX_WEBHOOK_COMPLETED));
    json_decref (body);
    const char *bad [] = {
        "{\"webhook\":\"ftp://h/x\"}", "{\"webhook\":5}", "{\"webhook\":\"http://h x/\"}",
        "{\"webhook_events_filter\":[\"start\"]}", "{\"webhook\":\"http://h.example/x\",\"webhook_events_filter\":[\"done\"]}",
        "{\"webhook\":\"http://h.example/x\",\"webhook_events_filter\":[]}",
        "{\"webhook\":\"http://h.example/x\",\"webhook_events_filter\":\"start,nope\"}",
        "{\"webhook\":\"http://h.example/x\",\"webhook_events_filter\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        body = json_loads (bad [i], 0, NULL);
        assert (body);
        assert (vdgx_webhook_take (body, false, &spec, &err) == -1 && err.status == 422
                && strncmp (err.field, "webhook", 7) == 0);
        json_decref (body);
    }

    //  End to end: events from a PUB socket, a receiver that answers 503 once, then 204.
    //  An XPUB, so the test sees the sender's subscription arrive instead of sleeping for it.
    //  The waits below are deadlines, not expectations: a slow run (valgrind, a loaded
    //  machine) takes longer, and what arrives is checked the same.
    zsock_t *pub = zsock_new_xpub ("tcp://127.0.0.1:*");
    assert (pub);
    zsock_set_xpub_verbose (pub, 1);
    zsock_set_rcvtimeo (pub, S_TEST_WAIT_MS);
    char *events = zsock_last_endpoint (pub);
    int lfd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (bind (lfd, (struct sockaddr *) &addr, sizeof addr) == 0 && listen (lfd, 8) == 0);
    socklen_t alen = sizeof addr;
    getsockname (lfd, (struct sockaddr *) &addr, &alen);
    s_receiver_t rx;
    memset (&rx, 0, sizeof rx);
    rx.port = ntohs (addr.sin_port);
    const char *secret = "0123456789abcdef-test-secret";
    char emsg [256];
    assert (vdgx_webhook_new (events, "short", 5, NULL, emsg, sizeof emsg) == NULL);
    assert (vdgx_webhook_new (events, secret, strlen (secret), "127.0.0.0/8, nope", emsg, sizeof emsg) == NULL);
    assert (strstr (emsg, "webhook_allow") && strstr (emsg, "nope"));

    //  Destinations. Without an allow list: only public addresses, by every address a name
    //  resolves to; an allowed network opens its addresses (and only those).
    vdgx_webhook_t *strict = vdgx_webhook_new (events, secret, strlen (secret), NULL, emsg, sizeof emsg);
    assert (strict);
    const char *internal [] = {
        "http://127.0.0.1/x", "http://localhost:8080/x", "http://[::1]/x", "https://10.0.0.5/x",
        "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]:9/x",
        "http://[::ffff:a9fe:a9fe]/x", "http://0.0.0.0/x", "http://[fe80::1]/x",
        "http://[fd00::1]/x", "http://192.168.1.1/x", "http://172.16.3.4/x", "http://[ff02::1]/x",
        "http://224.0.0.1/x", "http://2130706433/x", "http://0x7f.1/x", "http://127.1/x",
        "http://[::]/x", "http://100.64.1.1/x",
    };
    for (size_t i = 0; i < sizeof internal / sizeof internal [0]; i++) {
        memset (&spec, 0, sizeof spec);
        snprintf (spec.url, sizeof spec.url, "%s", internal [i]);
        memset (&err, 0, sizeof err);
        int rc = vdgx_webhook_check (strict, &spec, &err);
        if (rc != -1 || err.status != 422 || !streq (err.field, "webhook"))
            fprintf (stderr, "%s: rc=%d status=%d\n", internal [i], rc, err.status);
        assert (rc == -1 && err.status == 422 && streq (err.field, "webhook"));
    }
    //  Public literals pass (no lookup needed); a name that does not resolve is refused.
    snprintf (spec.url, sizeof spec.url, "https://93.184.215.14/hook");
    assert (vdgx_webhook_check (strict, &spec, &err) == 0);
    snprintf (spec.url, sizeof spec.url, "http://[2606:4700::1111]:8443/hook");
    assert (vdgx_webhook_check (strict, &spec, &err) == 0);
    snprintf (spec.url, sizeof spec.url, "http://no-such-host.invalid/hook");
    assert (vdgx_webhook_check (strict, &spec, &err) == -1 && streq (err.field, "webhook"));

    vdgx_webhook_t *hooks = vdgx_webhook_new (events, secret, strlen (secret), "127.0.0.0/8",
                                              emsg, sizeof emsg);
    assert (hooks);
    snprintf (spec.url, sizeof spec.url, "http://127.0.0.1:%d/hook", rx.port);
    assert (vdgx_webhook_check (hooks, &spec, &err) == 0);
    snprintf (spec.url, sizeof spec.url, "http://[::1]:%d/hook", rx.port);
    assert (vdgx_webhook_check (hooks, &spec, &err) == -1);
    snprintf (spec.url, sizeof spec.url, "http://10.0.0.1/hook");
    assert (vdgx_webhook_check (hooks, &spec, &err) == -1);
    //  Both senders' SUBs have connected (an XPUB passes each subscription when verbose).
    for (int i = 0; i < 2; i++) {
        zframe_t *subscription = zframe_recv (pub);
        assert (subscription && zframe_size (subscription) == 5
                && memcmp (zframe_data (subscription), "\x01job.", 5) == 0);
        zframe_destroy (&subscription);
    }
    //  The job's first event comes before its registration: it is replayed.
    vdgx_event_t ev;
    vdgx_event_init (&ev);
    ev.type = VDGX_EVENT_STATE;
    snprintf (ev.id, sizeof ev.id, "job1");
    snprintf (ev.model, sizeof ev.model, "m");
    ev.job_state = VDGX_JOB_RUNNING;
    ev.ts = 1000.5;
    zmsg_t *msg = vdgx_event_msg (&ev);
    zmsg_send (&msg, pub);
    zclock_sleep (100);
    memset (&spec, 0, sizeof spec);
    snprintf (spec.url, sizeof spec.url, "http://127.0.0.1:%d/hook", rx.port);
    spec.events = VDGX_WEBHOOK_START | VDGX_WEBHOOK_COMPLETED;
    vdgx_webhook_add (hooks, "job1", &spec);
    //  The start delivery: 503 first (retried after 1 s), then 204.
    for (int i = 0; i < 2; i++) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        assert (poll (&p, 1, S_TEST_WAIT_MS) == 1);
        s_receive_one (&rx, accept (lfd, NULL, NULL));
    }
    assert (rx.requests == 2 && strstr (rx.last_body, "\"event\":\"start\"")
            && strstr (rx.last_body, "\"id\":\"job1\""));
    //  The signature: HMAC-SHA256(secret, id.timestamp.body).
    uint8_t mac [VDGX_SHA256_SIZE];
    char hex [VDGX_SHA256_HEX_SIZE], want [80];
    const void *parts [] = { rx.last_id, ".", rx.last_ts, ".", rx.last_body, NULL };
    size_t sizes [] = { strlen (rx.last_id), 1, strlen (rx.last_ts), 1, strlen (rx.last_body) };
    vdgx_sha256_hmac (secret, strlen (secret), parts, sizes, mac);
    vdgx_sha256_to_hex (mac, hex);
    snprintf (want, sizeof want, "sha256=%s", hex);
    assert (streq (rx.last_sig, want));
    //  Progress is not asked for: nothing; completed: delivered.
    ev.type = VDGX_EVENT_PROGRESS;
    msg = vdgx_event_msg (&ev);
    zmsg_send (&msg, pub);
    ev.type = VDGX_EVENT_STATE;
    ev.job_state = VDGX_JOB_COMPLETED;
    msg = vdgx_event_msg (&ev);
    zmsg_send (&msg, pub);
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    assert (poll (&p, 1, S_TEST_WAIT_MS) == 1);
    s_receive_one (&rx, accept (lfd, NULL, NULL));
    assert (strstr (rx.last_body, "\"event\":\"completed\"") && strstr (rx.last_body, "content_url"));
    //  The sender counts a delivery once it has read the answer: wait for it.
    uint64_t delivered, retried, failed;
    int64_t deadline = zclock_mono () + S_TEST_WAIT_MS;
    do {
        zclock_sleep (20);
        vdgx_webhook_counts (hooks, &delivered, &retried, &failed);
    } while (delivered < 2 && zclock_mono () < deadline);
    assert (delivered == 2 && retried == 1 && failed == 0);

    //  At delivery the address connected to is checked again (a name that resolved to a
    //  public address at submit may resolve to an internal one now): a registration that
    //  points at the receiver on loopback, given to the strict sender, gets no connection.
    memset (&spec, 0, sizeof spec);
    snprintf (spec.url, sizeof spec.url, "http://127.0.0.1:%d/hook", rx.port);
    spec.events = VDGX_WEBHOOK_START | VDGX_WEBHOOK_COMPLETED;
    vdgx_webhook_add (strict, "job2", &spec);
    snprintf (ev.id, sizeof ev.id, "job2");
    ev.job_state = VDGX_JOB_RUNNING;
    msg = vdgx_event_msg (&ev);
    zmsg_send (&msg, pub);
    //  The first attempt fails without connecting; the retry after 1 s too.
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    uint64_t sdelivered = 0, sretried = 0, sfailed = 0;
    while (sretried < 2 && zclock_mono () < until) {
        struct pollfd q = { .fd = lfd, .events = POLLIN };
        assert (poll (&q, 1, 100) == 0);            //  nobody connects
        vdgx_webhook_counts (strict, &sdelivered, &sretried, &sfailed);
    }
    assert (sretried == 2 && sdelivered == 0);
    //  The allowing sender delivered nothing for job2 (not registered there).
    vdgx_webhook_counts (hooks, &delivered, &retried, &failed);
    assert (delivered == 2);
    vdgx_webhook_destroy (&strict);
    vdgx_event_clear (&ev);
    vdgx_webhook_destroy (&hooks);
    assert (hooks == NULL);
    close (lfd);
    zstr_free (&events);
    zsock_destroy (&pub);
    printf ("OK\n");
}
