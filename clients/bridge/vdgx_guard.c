/*  vdgx_guard.c - connection limits answered in HTTP, deadlines for slow requests
    (see vdgx_guard.h). */
#include "vdgx_guard.h"
#include <assert.h>
#include <czmq.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

typedef enum { S_HEADERS, S_BODY, S_SERVING } s_phase_t;

typedef struct {
    int fd;
    char address [64];
    s_phase_t phase;
    int64_t since;              //  mono ms: start of the header window / of the body
    uint64_t body;              //  body bytes of the current request
    bool slow;                  //  already shut down
    void *handle;               //  in conns
} s_conn_t;

struct _vdgx_guard_t {
    unsigned per_ip, total;
    int header_ms;
    size_t min_rate;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t watchdog;
    bool stopping;
    zlistx_t *conns;            //  s_conn_t
    zhashx_t *per_address;      //  address -> (void *) (uintptr_t) open connections
    uint64_t slow_closed;
};

static void *s_watchdog (void *arg);

vdgx_guard_t *
vdgx_guard_new (unsigned per_ip, unsigned total, int header_ms, size_t min_rate)
{
    assert (total >= 1 && header_ms >= 1);
    vdgx_guard_t *self = (vdgx_guard_t *) zmalloc (sizeof (vdgx_guard_t));
    self->per_ip = per_ip;
    self->total = total;
    self->header_ms = header_ms;
    self->min_rate = min_rate;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->wake, &attr);
    pthread_condattr_destroy (&attr);
    self->conns = zlistx_new ();
    self->per_address = zhashx_new ();
    if (pthread_create (&self->watchdog, NULL, s_watchdog, self)) {
        zlistx_destroy (&self->conns);
        zhashx_destroy (&self->per_address);
        free (self);
        return NULL;
    }
    return self;
}

void
vdgx_guard_destroy (vdgx_guard_t **self_p)
{
    assert (self_p);
    vdgx_guard_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->watchdog, NULL);
    for (s_conn_t *c = (s_conn_t *) zlistx_first (self->conns); c;
         c = (s_conn_t *) zlistx_next (self->conns))
        free (c);
    zlistx_destroy (&self->conns);
    zhashx_destroy (&self->per_address);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

static size_t
s_count (vdgx_guard_t *self, const char *address)
{
    return (size_t) (uintptr_t) zhashx_lookup (self->per_address, address);
}

static void
s_set_count (vdgx_guard_t *self, const char *address, size_t n)
{
    if (n)
        zhashx_update (self->per_address, address, (void *) (uintptr_t) n);
    else
        zhashx_delete (self->per_address, address);
}

void *
vdgx_guard_open (vdgx_guard_t *self, int fd, const char *address)
{
    s_conn_t *c = (s_conn_t *) zmalloc (sizeof (s_conn_t));
    c->fd = fd;
    snprintf (c->address, sizeof c->address, "%s", address && *address? address: "?");
    c->phase = S_HEADERS;
    c->since = zclock_mono ();
    pthread_mutex_lock (&self->lock);
    c->handle = zlistx_add_end (self->conns, c);
    s_set_count (self, c->address, s_count (self, c->address) + 1);
    pthread_mutex_unlock (&self->lock);
    return c;
}

void
vdgx_guard_close (vdgx_guard_t *self, void *conn)
{
    s_conn_t *c = (s_conn_t *) conn;
    if (!c)
        return;
    pthread_mutex_lock (&self->lock);
    zlistx_detach (self->conns, c->handle);
    size_t n = s_count (self, c->address);
    s_set_count (self, c->address, n? n - 1: 0);
    pthread_mutex_unlock (&self->lock);
    free (c);
}

int
vdgx_guard_admit (vdgx_guard_t *self, void *conn, int64_t *retry_ms)
{
    s_conn_t *c = (s_conn_t *) conn;
    if (!c)
        return 0;
    int status = 0;
    pthread_mutex_lock (&self->lock);
    c->phase = S_BODY;
    c->since = zclock_mono ();
    c->body = 0;
    if (self->per_ip && s_count (self, c->address) > self->per_ip)
        status = 429;
    else
    if (zlistx_size (self->conns) > self->total)
        status = 503;
    pthread_mutex_unlock (&self->lock);
    if (status && retry_ms)
        *retry_ms = 1000;
    return status;
}

void
vdgx_guard_body (vdgx_guard_t *self, void *conn, size_t n)
{
    s_conn_t *c = (s_conn_t *) conn;
    if (!c)
        return;
    pthread_mutex_lock (&self->lock);
    c->body += n;
    pthread_mutex_unlock (&self->lock);
}

static void
s_phase (vdgx_guard_t *self, s_conn_t *c, s_phase_t phase)
{
    if (!c)
        return;
    pthread_mutex_lock (&self->lock);
    c->phase = phase;
    c->since = zclock_mono ();
    pthread_mutex_unlock (&self->lock);
}

void
vdgx_guard_received (vdgx_guard_t *self, void *conn)
{
    s_phase (self, (s_conn_t *) conn, S_SERVING);
}

void
vdgx_guard_done (vdgx_guard_t *self, void *conn)
{
    s_phase (self, (s_conn_t *) conn, S_HEADERS);
}

uint64_t
vdgx_guard_slow_closed (vdgx_guard_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t n = self->slow_closed;
    pthread_mutex_unlock (&self->lock);
    return n;
}

size_t
vdgx_guard_open_count (vdgx_guard_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t n = zlistx_size (self->conns);
    pthread_mutex_unlock (&self->lock);
    return n;
}

//  Whether a connection misses its deadline at now.
static bool
s_too_slow (vdgx_guard_t *self, s_conn_t *c, int64_t now)
{
    int64_t age = now - c->since;
    if (c->phase == S_HEADERS)
        return age > self->header_ms;
    if (c->phase == S_BODY && self->min_rate && age > self->header_ms)
        return c->body * 1000 < (uint64_t) age * self->min_rate;
    return false;
}

static void *
s_watchdog (void *arg)
{
    vdgx_guard_t *self = (vdgx_guard_t *) arg;
    pthread_mutex_lock (&self->lock);
    while (!self->stopping) {
        struct timespec until;
        clock_gettime (CLOCK_MONOTONIC, &until);
        until.tv_nsec += 100 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait (&self->wake, &self->lock, &until);
        int64_t now = zclock_mono ();
        for (s_conn_t *c = (s_conn_t *) zlistx_first (self->conns); c;
             c = (s_conn_t *) zlistx_next (self->conns))
            if (!c->slow && s_too_slow (self, c, now)) {
                //  The socket is still open: its CLOSED notification needs this lock.
                shutdown (c->fd, SHUT_RDWR);
                c->slow = true;
                self->slow_closed++;
            }
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

void
vdgx_guard_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_guard: ");
    vdgx_guard_t *guard = vdgx_guard_new (2, 3, 200, 1000);
    assert (guard);
    int fds [5][2];
    void *conns [5];
    for (int i = 0; i < 5; i++) {
        assert (socketpair (AF_UNIX, SOCK_STREAM, 0, fds [i]) == 0);
    }
    int64_t retry = 0;
    //  Three from one address with a limit of two: the third is answered 429.
    for (int i = 0; i < 3; i++) {
        conns [i] = vdgx_guard_open (guard, fds [i][0], "10.0.0.1");
        assert (vdgx_guard_admit (guard, conns [i], &retry) == (i < 2? 0: 429));
    }
    assert (retry >= 1000);
    conns [3] = vdgx_guard_open (guard, fds [3][0], "10.0.0.2");
    conns [4] = vdgx_guard_open (guard, fds [4][0], "10.0.0.2");
    //  Five in all with a total of three: 503.
    assert (vdgx_guard_admit (guard, conns [3], &retry) == 503);
    vdgx_guard_close (guard, conns [2]);
    vdgx_guard_close (guard, conns [4]);
    assert (vdgx_guard_open_count (guard) == 3);
    assert (vdgx_guard_admit (guard, conns [3], &retry) == 0);
    //  conns [0] sends its body fast enough, conns [1] trickles, conns [3] is served.
    vdgx_guard_body (guard, conns [0], 100000);
    vdgx_guard_received (guard, conns [3]);
    zclock_sleep (500);
    assert (vdgx_guard_slow_closed (guard) == 1);
    char byte;
    assert (recv (fds [1][1], &byte, 1, MSG_DONTWAIT) == 0);           //  shut down: EOF
    assert (recv (fds [0][1], &byte, 1, MSG_DONTWAIT) == -1);          //  open, no data
    assert (recv (fds [3][1], &byte, 1, MSG_DONTWAIT) == -1);
    //  A kept-alive connection has header_ms for its next request.
    vdgx_guard_received (guard, conns [0]);
    vdgx_guard_done (guard, conns [0]);
    zclock_sleep (500);
    assert (vdgx_guard_slow_closed (guard) == 2);
    assert (recv (fds [0][1], &byte, 1, MSG_DONTWAIT) == 0);
    for (int i = 0; i < 5; i++)
        if (i != 2 && i != 4)
            vdgx_guard_close (guard, conns [i]);
    for (int i = 0; i < 5; i++) {
        close (fds [i][0]);
        close (fds [i][1]);
    }
    vdgx_guard_destroy (&guard);
    assert (guard == NULL);
    printf ("OK\n");
}
