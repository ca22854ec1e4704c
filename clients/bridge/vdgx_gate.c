/*  vdgx_gate.c - slots for costly work with a bounded wait (see the header). */
#include "vdgx_gate.h"
#include <assert.h>
#include <czmq.h>
#include <pthread.h>
#include <time.h>

struct _vdgx_gate_t {
    unsigned slots;
    int wait_ms;
    pthread_mutex_t lock;
    pthread_cond_t freed;       //  signalled when a slot is left
    unsigned busy;              //  under lock
    uint64_t entered, refused, waited;     //  under lock
};

vdgx_gate_t *
vdgx_gate_new (unsigned slots, int wait_ms)
{
    assert (slots >= 1 && wait_ms >= 0);
    vdgx_gate_t *self = (vdgx_gate_t *) zmalloc (sizeof (vdgx_gate_t));
    self->slots = slots;
    self->wait_ms = wait_ms;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->freed, &attr);
    pthread_condattr_destroy (&attr);
    return self;
}

void
vdgx_gate_destroy (vdgx_gate_t **self_p)
{
    assert (self_p);
    vdgx_gate_t *self = *self_p;
    if (self) {
        assert (self->busy == 0);
        pthread_cond_destroy (&self->freed);
        pthread_mutex_destroy (&self->lock);
        free (self);
        *self_p = NULL;
    }
}

bool
vdgx_gate_enter (vdgx_gate_t *self)
{
    assert (self);
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += self->wait_ms / 1000;
    deadline.tv_nsec += (long) (self->wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock);
    bool waited = false;
    int rc = 0;
    //  The deadline is absolute: spurious wake-ups do not extend the wait.
    while (self->busy >= self->slots && rc == 0 && self->wait_ms > 0) {
        waited = true;
        rc = pthread_cond_timedwait (&self->freed, &self->lock, &deadline);
    }
    bool ok = self->busy < self->slots;
    if (ok) {
        self->busy++;
        self->entered++;
        self->waited += waited;
    }
    else
        self->refused++;
    pthread_mutex_unlock (&self->lock);
    return ok;
}

void
vdgx_gate_leave (vdgx_gate_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    assert (self->busy > 0);
    self->busy--;
    pthread_cond_signal (&self->freed);
    pthread_mutex_unlock (&self->lock);
}

#define S_GETTER(type, name, field) \
    type vdgx_gate_##name (vdgx_gate_t *self) \
    { \
        assert (self); \
        pthread_mutex_lock (&self->lock); \
        type v = self->field; \
        pthread_mutex_unlock (&self->lock); \
        return v; \
    }
S_GETTER (unsigned, slots, slots)
S_GETTER (unsigned, busy, busy)
S_GETTER (uint64_t, entered, entered)
S_GETTER (uint64_t, refused, refused)
S_GETTER (uint64_t, waited, waited)

//  Selftest: a thread that enters, records whether it got in and how long it took, and
//  holds the slot for hold_ms.
typedef struct {
    vdgx_gate_t *gate;
    int hold_ms;
    bool ok;
    int64_t took_ms;
} s_try_t;

static void *
s_try (void *arg)
{
    s_try_t *t = (s_try_t *) arg;
    int64_t t0 = zclock_mono ();
    t->ok = vdgx_gate_enter (t->gate);
    t->took_ms = zclock_mono () - t0;
    if (t->ok) {
        zclock_sleep (t->hold_ms);
        vdgx_gate_leave (t->gate);
    }
    return NULL;
}

void
vdgx_gate_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_gate: ");
    //  Two slots: the third entry waits its 100 ms and is refused, without blocking longer.
    vdgx_gate_t *gate = vdgx_gate_new (2, 100);
    assert (vdgx_gate_slots (gate) == 2);
    assert (vdgx_gate_enter (gate));
    assert (vdgx_gate_enter (gate));
    assert (vdgx_gate_busy (gate) == 2);
    s_try_t t = { gate, 0, true, 0 };
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_try, &t) == 0);
    pthread_join (thread, NULL);
    assert (!t.ok && t.took_ms >= 90 && t.took_ms < 2000);
    assert (vdgx_gate_refused (gate) == 1 && vdgx_gate_entered (gate) == 2);
    vdgx_gate_leave (gate);
    vdgx_gate_leave (gate);
    vdgx_gate_destroy (&gate);
    assert (!gate);
    //  A slot left while another thread waits is its: it gets in before its deadline.
    gate = vdgx_gate_new (1, 5000);
    assert (vdgx_gate_enter (gate));
    t = (s_try_t) { gate, 10, false, 0 };
    assert (pthread_create (&thread, NULL, s_try, &t) == 0);
    zclock_sleep (100);
    assert (vdgx_gate_busy (gate) == 1);
    vdgx_gate_leave (gate);
    pthread_join (thread, NULL);
    assert (t.ok && t.took_ms >= 90 && t.took_ms < 4000);
    assert (vdgx_gate_waited (gate) == 1 && vdgx_gate_entered (gate) == 2);
    assert (vdgx_gate_busy (gate) == 0);
    vdgx_gate_destroy (&gate);
    //  No wait: refused at once when full; many threads never exceed the slots.
    gate = vdgx_gate_new (3, 0);
    s_try_t many [12];
    pthread_t threads [12];
    for (int i = 0; i < 12; i++) {
        many [i] = (s_try_t) { gate, 50, false, 0 };
        assert (pthread_create (&threads [i], NULL, s_try, &many [i]) == 0);
    }
    int in = 0;
    for (int i = 0; i < 12; i++) {
        pthread_join (threads [i], NULL);
        in += many [i].ok;
        assert (many [i].ok || many [i].took_ms < 1000);
    }
    assert (in >= 3 && vdgx_gate_entered (gate) + vdgx_gate_refused (gate) == 12);
    assert (vdgx_gate_busy (gate) == 0);
    vdgx_gate_destroy (&gate);
    printf ("OK\n");
}
