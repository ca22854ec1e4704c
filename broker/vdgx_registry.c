/*  vdgx_registry.c - workers, services and hosts (see the header).
*/
#include "vdgx_registry.h"
#include <assert.h>
#include <string.h>

struct _vdgx_registry_t {
    zhashx_t *workers;          //  key -> vdgx_rworker_t (owned)
    zhashx_t *services;         //  name -> vdgx_rservice_t (owned)
    zhashx_t *hosts;            //  host -> zlistx_t of workers (borrowed)
    zlistx_t *seen;             //  all workers, oldest last_seen first
    zlistx_t *sent;             //  all workers, oldest last_sent first
    czmq_destructor *request_destructor;
};

static void
s_service_destroy (void **item_p)
{
    vdgx_rservice_t *s = (vdgx_rservice_t *) *item_p;
    if (s) {
        zlistx_destroy (&s->idle_warm);
        zlistx_destroy (&s->idle_cold);
        zlistx_destroy (&s->requests);
        free (s->name);
        free (s);
        *item_p = NULL;
    }
}

static void
s_worker_free (vdgx_rworker_t *w)
{
    zframe_destroy (&w->address);
    zlist_destroy (&w->pending);
    free (w->key);
    free (w->service);
    free (w);
}

static void
s_hostlist_destroy (void **item_p)
{
    zlistx_t *list = (zlistx_t *) *item_p;
    zlistx_destroy (&list);
    *item_p = NULL;
}

vdgx_registry_t *
vdgx_registry_new (void)
{
    vdgx_registry_t *self = (vdgx_registry_t *) zmalloc (sizeof (vdgx_registry_t));
    assert (self);
    self->workers = zhashx_new ();
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, s_service_destroy);
    self->hosts = zhashx_new ();
    zhashx_set_destructor (self->hosts, s_hostlist_destroy);
    self->seen = zlistx_new ();
    self->sent = zlistx_new ();
    return self;
}

void
vdgx_registry_set_request_destructor (vdgx_registry_t *self, czmq_destructor destructor)
{
    assert (self);
    self->request_destructor = destructor;
}

void
vdgx_registry_destroy (vdgx_registry_t **self_p)
{
    assert (self_p);
    vdgx_registry_t *self = *self_p;
    if (self) {
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zhashx_first (self->workers); w;
             w = (vdgx_rworker_t *) zhashx_next (self->workers))
            s_worker_free (w);
        zhashx_destroy (&self->workers);
        zhashx_destroy (&self->services);
        zhashx_destroy (&self->hosts);
        zlistx_destroy (&self->seen);
        zlistx_destroy (&self->sent);
        free (self);
        *self_p = NULL;
    }
}

vdgx_rservice_t *
vdgx_registry_service (vdgx_registry_t *self, const char *name, bool create)
{
    assert (self && name);
    vdgx_rservice_t *s = (vdgx_rservice_t *) zhashx_lookup (self->services, name);
    if (!s && create) {
        s = (vdgx_rservice_t *) zmalloc (sizeof (vdgx_rservice_t));
        assert (s);
        s->name = strdup (name);
        s->idle_warm = zlistx_new ();
        s->idle_cold = zlistx_new ();
        s->requests = zlistx_new ();
        if (self->request_destructor)
            zlistx_set_destructor (s->requests, self->request_destructor);
        s->no_worker_since = zclock_mono ();
        zhashx_insert (self->services, name, s);
    }
    return s;
}

int
vdgx_registry_service_remove (vdgx_registry_t *self, const char *name)
{
    assert (self && name);
    vdgx_rservice_t *s = vdgx_registry_service (self, name, false);
    if (!s || s->workers || zlistx_size (s->requests))
        return -1;
    zhashx_delete (self->services, name);
    return 0;
}

zlist_t *
vdgx_registry_services (vdgx_registry_t *self)
{
    assert (self);
    zlist_t *list = zlist_new ();
    for (void *s = zhashx_first (self->services); s; s = zhashx_next (self->services))
        zlist_append (list, s);
    return list;
}

size_t
vdgx_registry_service_count (vdgx_registry_t *self)
{
    assert (self);
    return zhashx_size (self->services);
}

vdgx_rworker_t *
vdgx_registry_worker (vdgx_registry_t *self, const char *key)
{
    assert (self && key);
    return (vdgx_rworker_t *) zhashx_lookup (self->workers, key);
}

static void
s_unfile_idle (vdgx_rworker_t *w)
{
    if (w->idle_list) {
        zlistx_delete (w->idle_list, w->idle_handle);
        w->idle_list = NULL;
        w->idle_handle = NULL;
    }
}

vdgx_rworker_t *
vdgx_registry_worker_add (vdgx_registry_t *self, const char *key, zframe_t *address,
                          int proto, const char *service, int64_t now)
{
    assert (self && key && address && service);
    assert (!zhashx_lookup (self->workers, key));
    vdgx_rworker_t *w = (vdgx_rworker_t *) zmalloc (sizeof (vdgx_rworker_t));
    assert (w);
    w->key = strdup (key);
    w->address = zframe_dup (address);
    w->proto = proto;
    w->service = strdup (service);
    w->state = VDGX_WSTATE_COLD;
    w->counted_state = -1;
    w->last_seen = w->last_sent = w->idle_since = w->last_used = now;
    w->pending = zlist_new ();
    zlist_autofree (w->pending);
    zhashx_insert (self->workers, key, w);
    w->seen_handle = zlistx_add_end (self->seen, w);
    w->sent_handle = zlistx_add_end (self->sent, w);
    vdgx_rservice_t *s = vdgx_registry_service (self, service, true);
    s->workers++;
    vdgx_registry_worker_refresh (self, w, now);
    return w;
}

void
vdgx_registry_worker_set_host (vdgx_registry_t *self, vdgx_rworker_t *w, const char *host)
{
    assert (self && w && host);
    if (w->host_handle && streq (w->host, host))
        return;
    if (w->host_handle) {
        zlistx_t *old = (zlistx_t *) zhashx_lookup (self->hosts, w->host);
        assert (old);
        zlistx_delete (old, w->host_handle);
        if (zlistx_size (old) == 0)
            zhashx_delete (self->hosts, w->host);
    }
    snprintf (w->host, sizeof w->host, "%s", host);
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->hosts, w->host);
    if (!list) {
        list = zlistx_new ();
        zhashx_insert (self->hosts, w->host, list);
    }
    w->host_handle = zlistx_add_end (list, w);
}

void
vdgx_registry_worker_remove (vdgx_registry_t *self, vdgx_rworker_t *w, int64_t now)
{
    assert (self && w);
    s_unfile_idle (w);
    zlistx_delete (self->seen, w->seen_handle);
    zlistx_delete (self->sent, w->sent_handle);
    if (w->host_handle) {
        zlistx_t *list = (zlistx_t *) zhashx_lookup (self->hosts, w->host);
        zlistx_delete (list, w->host_handle);
        if (zlistx_size (list) == 0)
            zhashx_delete (self->hosts, w->host);
    }
    vdgx_rservice_t *s = vdgx_registry_service (self, w->service, false);
    assert (s);
    s->workers--;
    if (w->counted_state >= 0)
        s->by_state [w->counted_state]--;
    if (s->workers == 0)
        s->no_worker_since = now;
    zhashx_delete (self->workers, w->key);
    s_worker_free (w);
}

void
vdgx_registry_worker_touch (vdgx_registry_t *self, vdgx_rworker_t *w, int64_t now)
{
    assert (self && w);
    w->last_seen = now;
    zlistx_move_end (self->seen, w->seen_handle);
}

void
vdgx_registry_worker_sent (vdgx_registry_t *self, vdgx_rworker_t *w, int64_t now)
{
    assert (self && w);
    w->last_sent = now;
    zlistx_move_end (self->sent, w->sent_handle);
}

vdgx_rworker_t *
vdgx_registry_heartbeat_due (vdgx_registry_t *self, int64_t cutoff)
{
    assert (self);
    vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (self->sent);
    return w && w->last_sent <= cutoff? w: NULL;
}

void
vdgx_registry_touch_all (vdgx_registry_t *self, int64_t now)
{
    assert (self);
    //  The order does not change: everyone gets the same time.
    for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (self->seen); w;
         w = (vdgx_rworker_t *) zlistx_next (self->seen))
        w->last_seen = now;
}

void
vdgx_registry_credit_all (vdgx_registry_t *self, int64_t ms, int64_t now)
{
    assert (self && ms >= 0);
    //  x -> min (x + ms, now) never reverses two workers: the order holds.
    for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (self->seen); w;
         w = (vdgx_rworker_t *) zlistx_next (self->seen))
        w->last_seen = w->last_seen + ms < now? w->last_seen + ms: now;
}

vdgx_rworker_t *
vdgx_registry_first (vdgx_registry_t *self)
{
    assert (self);
    return (vdgx_rworker_t *) zlistx_first (self->seen);
}

vdgx_rworker_t *
vdgx_registry_next (vdgx_registry_t *self)
{
    assert (self);
    return (vdgx_rworker_t *) zlistx_next (self->seen);
}

void
vdgx_registry_worker_refresh (vdgx_registry_t *self, vdgx_rworker_t *w, int64_t now)
{
    assert (self && w);
    vdgx_rservice_t *s = vdgx_registry_service (self, w->service, false);
    assert (s);
    if (w->counted_state != (int) w->state) {
        if (w->counted_state >= 0)
            s->by_state [w->counted_state]--;
        s->by_state [w->state]++;
        w->counted_state = w->state;
    }
    if (w->state == VDGX_WSTATE_DRAINING)
        w->draining = true;
    zlistx_t *want = NULL;
    if (w->task == VDGX_TASK_NONE && !w->unload_asked && !w->draining
    &&  zlist_size (w->pending) == 0) {
        if (w->state == VDGX_WSTATE_WARM)
            want = s->idle_warm;
        else
        if (w->state == VDGX_WSTATE_COLD)
            want = s->idle_cold;
    }
    if (want == w->idle_list)
        return;                 //  keeps its place in the idle order
    s_unfile_idle (w);
    if (want) {
        w->idle_list = want;
        w->idle_handle = zlistx_add_end (want, w);
    }
    (void) now;
}

vdgx_rworker_t *
vdgx_registry_expired (vdgx_registry_t *self, int64_t cutoff)
{
    assert (self);
    vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (self->seen);
    return w && w->last_seen < cutoff? w: NULL;
}

vdgx_rworker_t *
vdgx_registry_select (vdgx_registry_t *self, const char *service)
{
    assert (self && service);
    vdgx_rservice_t *s = vdgx_registry_service (self, service, false);
    if (!s)
        return NULL;
    vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (s->idle_warm);
    if (!w)
        w = (vdgx_rworker_t *) zlistx_first (s->idle_cold);
    return w;
}

vdgx_rworker_t *
vdgx_registry_select_precision (vdgx_registry_t *self, const char *service, const char *precision)
{
    assert (self && service && precision);
    if (!*precision)
        return vdgx_registry_select (self, service);
    vdgx_rservice_t *s = vdgx_registry_service (self, service, false);
    if (!s)
        return NULL;
    zlistx_t *lists [2] = { s->idle_warm, s->idle_cold };
    for (int i = 0; i < 2; i++)
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (lists [i]); w;
             w = (vdgx_rworker_t *) zlistx_next (lists [i]))
            if (vdgx_registry_list_has (w->precisions, precision))
                return w;
    return NULL;
}

bool
vdgx_registry_list_has (const char *list, const char *name)
{
    assert (list && name);
    size_t n = strlen (name);
    for (const char *p = list; *p; ) {
        const char *end = strchr (p, ',');
        size_t len = end? (size_t) (end - p): strlen (p);
        if (len == n && memcmp (p, name, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

bool
vdgx_registry_has_idle_warm (vdgx_registry_t *self, const char *service)
{
    vdgx_rservice_t *s = vdgx_registry_service (self, service, false);
    return s && zlistx_size (s->idle_warm) > 0;
}

static bool
s_loaded (vdgx_rworker_t *w)
{
    return w->state == VDGX_WSTATE_LOADING || w->state == VDGX_WSTATE_WARM
        || w->state == VDGX_WSTATE_BUSY || w->state == VDGX_WSTATE_UNLOADING
        || w->state == VDGX_WSTATE_DRAINING || w->task != VDGX_TASK_NONE;
}

uint64_t
vdgx_registry_host_used (vdgx_registry_t *self, const char *host)
{
    assert (self && host);
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->hosts, host);
    uint64_t used = 0;
    if (list)
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (list); w;
             w = (vdgx_rworker_t *) zlistx_next (list))
            if (s_loaded (w))
                used += w->model_bytes;
    return used;
}

uint64_t
vdgx_registry_host_budget (vdgx_registry_t *self, const char *host)
{
    assert (self && host);
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->hosts, host);
    uint64_t budget = 0;
    if (list)
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (list); w;
             w = (vdgx_rworker_t *) zlistx_next (list))
            if (w->host_budget_bytes > budget)
                budget = w->host_budget_bytes;
    return budget;
}

vdgx_rworker_t *
vdgx_registry_lru_idle_warm (vdgx_registry_t *self, const char *host)
{
    assert (self && host);
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->hosts, host);
    vdgx_rworker_t *best = NULL;
    if (list)
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (list); w;
             w = (vdgx_rworker_t *) zlistx_next (list))
            if (w->state == VDGX_WSTATE_WARM && w->task == VDGX_TASK_NONE && w->control
            &&  !w->unload_asked && !w->draining
            &&  (!best || w->last_used < best->last_used))
                best = w;
    return best;
}

bool
vdgx_registry_host_unloading (vdgx_registry_t *self, const char *host)
{
    assert (self && host);
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->hosts, host);
    if (list)
        for (vdgx_rworker_t *w = (vdgx_rworker_t *) zlistx_first (list); w;
             w = (vdgx_rworker_t *) zlistx_next (list))
            if (w->unload_asked || w->state == VDGX_WSTATE_UNLOADING)
                return true;
    return false;
}

zlist_t *
vdgx_registry_workers (vdgx_registry_t *self)
{
    assert (self);
    zlist_t *list = zlist_new ();
    for (void *w = zlistx_first (self->seen); w; w = zlistx_next (self->seen))
        zlist_append (list, w);
    return list;
}

size_t
vdgx_registry_worker_count (vdgx_registry_t *self)
{
    assert (self);
    return zhashx_size (self->workers);
}

static vdgx_rworker_t *
s_test_add (vdgx_registry_t *reg, const char *key, const char *service,
            vdgx_wstate_state_t state, const char *host, uint64_t model_bytes, int64_t now)
{
    zframe_t *addr = zframe_new (key, strlen (key));
    vdgx_rworker_t *w = vdgx_registry_worker_add (reg, key, addr, 2, service, now);
    zframe_destroy (&addr);
    w->state = state;
    w->control = true;
    w->model_bytes = model_bytes;
    w->host_budget_bytes = 100;
    w->last_used = now;
    vdgx_registry_worker_set_host (reg, w, host);
    vdgx_registry_worker_refresh (reg, w, now);
    return w;
}

void
vdgx_registry_test (bool verbose)
{
    printf (" * vdgx_registry: ");
    vdgx_registry_t *reg = vdgx_registry_new ();
    vdgx_rworker_t *c1 = s_test_add (reg, "c1", "m", VDGX_WSTATE_COLD, "h1", 60, 1);
    vdgx_rworker_t *w1 = s_test_add (reg, "w1", "m", VDGX_WSTATE_WARM, "h1", 60, 2);
    vdgx_rworker_t *w2 = s_test_add (reg, "w2", "m", VDGX_WSTATE_WARM, "h1", 60, 3);
    vdgx_rworker_t *o1 = s_test_add (reg, "o1", "other", VDGX_WSTATE_WARM, "h1", 30, 0);
    assert (vdgx_registry_worker_count (reg) == 4);
    assert (vdgx_registry_service_count (reg) == 2);
    vdgx_rservice_t *s = vdgx_registry_service (reg, "m", false);
    assert (s && s->workers == 3 && s->by_state [VDGX_WSTATE_WARM] == 2 && s->by_state [VDGX_WSTATE_COLD] == 1);
    //  By precision: the first idle worker (warm, then cold) that runs it.
    snprintf (w1->precisions, sizeof w1->precisions, "bf16");
    snprintf (w2->precisions, sizeof w2->precisions, "fp8");
    snprintf (c1->precisions, sizeof c1->precisions, "fp32,fp4");
    assert (vdgx_registry_select_precision (reg, "m", "fp8") == w2);
    assert (vdgx_registry_select_precision (reg, "m", "fp4") == c1);
    assert (vdgx_registry_select_precision (reg, "m", "fp") == NULL);
    assert (vdgx_registry_select_precision (reg, "m", "") == w1);
    assert (vdgx_registry_list_has ("fp32,fp4", "fp4") && !vdgx_registry_list_has ("", "fp4"));
    //  Warm before cold, longest idle first.
    assert (vdgx_registry_select (reg, "m") == w1);
    w1->task = VDGX_TASK_JOB;
    w1->state = VDGX_WSTATE_BUSY;
    vdgx_registry_worker_refresh (reg, w1, 4);
    assert (vdgx_registry_select (reg, "m") == w2);
    w2->task = VDGX_TASK_JOB;
    vdgx_registry_worker_refresh (reg, w2, 4);
    assert (vdgx_registry_select (reg, "m") == c1);
    assert (!vdgx_registry_has_idle_warm (reg, "m"));
    assert (vdgx_registry_select (reg, "nope") == NULL);
    //  w2 finishes first, so it is idle longer than w1.
    w2->task = VDGX_TASK_NONE;
    vdgx_registry_worker_refresh (reg, w2, 5);
    w1->task = VDGX_TASK_NONE;
    w1->state = VDGX_WSTATE_WARM;
    vdgx_registry_worker_refresh (reg, w1, 6);
    assert (vdgx_registry_select (reg, "m") == w2);
    //  Memory: w1, w2, o1 are loaded on h1 (150 of 100).
    assert (vdgx_registry_host_used (reg, "h1") == 150);
    assert (vdgx_registry_host_budget (reg, "h1") == 100);
    assert (vdgx_registry_lru_idle_warm (reg, "h1") == o1);
    o1->unload_asked = true;
    vdgx_registry_worker_refresh (reg, o1, 7);
    assert (vdgx_registry_host_unloading (reg, "h1"));
    assert (vdgx_registry_lru_idle_warm (reg, "h1") == w1);
    assert (vdgx_registry_select (reg, "other") == NULL);
    o1->unload_asked = false;
    o1->state = VDGX_WSTATE_COLD;
    vdgx_registry_worker_refresh (reg, o1, 8);
    assert (!vdgx_registry_host_unloading (reg, "h1"));
    assert (vdgx_registry_host_used (reg, "h1") == 120);
    assert (vdgx_registry_select (reg, "other") == o1);
    //  Expiry order follows the last message.
    vdgx_registry_worker_touch (reg, c1, 10);
    vdgx_registry_worker_touch (reg, w1, 11);
    vdgx_registry_worker_touch (reg, w2, 12);
    vdgx_registry_worker_touch (reg, o1, 13);
    assert (vdgx_registry_expired (reg, 10) == NULL);
    assert (vdgx_registry_expired (reg, 11) == c1);
    vdgx_registry_worker_remove (reg, c1, 14);
    assert (vdgx_registry_expired (reg, 12) == w1);
    //  Heartbeats: only the workers sent nothing since the cutoff are due, oldest first.
    vdgx_registry_worker_sent (reg, w1, 20);
    vdgx_registry_worker_sent (reg, o1, 21);
    assert (vdgx_registry_heartbeat_due (reg, 19) == w2);      //  added at 3, never sent to
    vdgx_registry_worker_sent (reg, w2, 22);
    assert (vdgx_registry_heartbeat_due (reg, 19) == NULL);
    assert (vdgx_registry_heartbeat_due (reg, 20) == w1);
    size_t walked = 0;
    for (vdgx_rworker_t *x = vdgx_registry_first (reg); x; x = vdgx_registry_next (reg))
        walked++;
    assert (walked == 3);
    vdgx_registry_credit_all (reg, 2, 14);        //  11, 12, 13 -> 13, 14, 14 (not past now)
    assert (vdgx_registry_expired (reg, 13) == NULL && vdgx_registry_expired (reg, 14) == w1);
    assert (w2->last_seen == 14 && o1->last_seen == 14);
    vdgx_registry_touch_all (reg, 30);
    assert (vdgx_registry_expired (reg, 30) == NULL && vdgx_registry_expired (reg, 31) == w1);
    vdgx_registry_worker_remove (reg, w1, 14);
    assert (vdgx_registry_heartbeat_due (reg, 21) == o1);
    vdgx_registry_worker_remove (reg, w2, 15);
    assert (s->workers == 0 && s->no_worker_since == 15);
    assert (s->by_state [VDGX_WSTATE_WARM] == 0 && s->by_state [VDGX_WSTATE_COLD] == 0);
    assert (vdgx_registry_service_remove (reg, "m") == 0);
    assert (vdgx_registry_service (reg, "m", false) == NULL);
    assert (vdgx_registry_service_remove (reg, "other") == -1);
    //  Moving host.
    vdgx_registry_worker_set_host (reg, o1, "h2");
    assert (vdgx_registry_host_used (reg, "h1") == 0);
    vdgx_registry_destroy (&reg);
    assert (reg == NULL);
    (void) verbose;
    printf ("OK\n");
}
