/*  vdgx_ratelimit.c - token buckets per identity, bounded table kept in order of use. */
#include "vdgx_ratelimit.h"
#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <pthread.h>

typedef struct {
    double tokens;
    int64_t last_ms;
    void *handle;               //  in self->order (NULL for the overflow bucket)
    char identity [];           //  its key, to drop it from the table by its handle
} s_bucket_t;

struct _vdgx_ratelimit_t {
    double rate, burst;
    size_t max_entries;
    zhashx_t *buckets;          //  identity -> s_bucket_t (owns them)
    zlistx_t *order;            //  s_bucket_t, least recently used first
    s_bucket_t overflow;        //  shared by identities that do not fit
    pthread_mutex_t lock;
};

static void
s_bucket_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

vdgx_ratelimit_t *
vdgx_ratelimit_new (double rate, double burst, size_t max_entries)
{
    assert (rate >= 0 && (rate == 0 || burst >= 1) && max_entries >= 1);
    vdgx_ratelimit_t *self = (vdgx_ratelimit_t *) calloc (1, sizeof (vdgx_ratelimit_t));
    if (!self)
        return NULL;
    self->rate = rate;
    self->burst = burst;
    self->max_entries = max_entries;
    self->buckets = zhashx_new ();
    zhashx_set_destructor (self->buckets, s_bucket_free);
    self->order = zlistx_new ();
    self->overflow.tokens = burst;
    self->overflow.last_ms = -1;
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
vdgx_ratelimit_destroy (vdgx_ratelimit_t **self_p)
{
    assert (self_p);
    vdgx_ratelimit_t *self = *self_p;
    if (self) {
        zlistx_destroy (&self->order);
        zhashx_destroy (&self->buckets);
        pthread_mutex_destroy (&self->lock);
        free (self);
        *self_p = NULL;
    }
}

static void
s_refill (vdgx_ratelimit_t *self, s_bucket_t *b, int64_t now_ms)
{
    if (b->last_ms < 0 || now_ms < b->last_ms)
        b->last_ms = now_ms;
    b->tokens += (double) (now_ms - b->last_ms) * self->rate / 1000.0;
    if (b->tokens > self->burst)
        b->tokens = self->burst;
    b->last_ms = now_ms;
}

//  Drops buckets that are full again (they behave exactly like a new one), oldest use
//  first, up to the first one that is not: O(dropped + 1).
static size_t
s_prune (vdgx_ratelimit_t *self, int64_t now_ms)
{
    size_t n = 0;
    s_bucket_t *b;
    while ((b = (s_bucket_t *) zlistx_first (self->order))) {
        s_refill (self, b, now_ms);
        if (b->tokens < self->burst)
            break;
        zlistx_delete (self->order, b->handle);
        zhashx_delete (self->buckets, b->identity);     //  frees b
        n++;
    }
    return n;
}

//  Refills b; true when it holds n tokens, else *retry_ms (may be NULL) = ms until it will.
static bool
s_has_tokens (vdgx_ratelimit_t *self, s_bucket_t *b, double n, int64_t now_ms, int64_t *retry_ms)
{
    s_refill (self, b, now_ms);
    if (b->tokens >= n)
        return true;
    if (retry_ms) {
        int64_t wait = (int64_t) ceil ((n - b->tokens) * 1000.0 / self->rate);
        *retry_ms = wait < 1? 1: wait;
    }
    return false;
}

bool
vdgx_ratelimit_take_n (vdgx_ratelimit_t *self, const char *identity, double n, int64_t now_ms,
                       int64_t *retry_ms)
{
    assert (self && identity && n >= 0);
    if (self->rate == 0)
        return true;
    if (n > self->burst) {
        if (retry_ms)
            *retry_ms = 0;
        return false;
    }
    pthread_mutex_lock (&self->lock);
    s_bucket_t *b = (s_bucket_t *) zhashx_lookup (self->buckets, identity);
    if (b)
        zlistx_move_end (self->order, b->handle);
    else {
        if (zhashx_size (self->buckets) >= self->max_entries)
            s_prune (self, now_ms);
        if (zhashx_size (self->buckets) < self->max_entries) {
            size_t len = strlen (identity);
            b = (s_bucket_t *) calloc (1, sizeof (s_bucket_t) + len + 1);
            if (b) {
                memcpy (b->identity, identity, len + 1);
                b->tokens = self->burst;
                b->last_ms = now_ms;
                b->handle = zlistx_add_end (self->order, b);
                zhashx_insert (self->buckets, identity, b);
            }
        }
        if (!b)
            b = &self->overflow;
    }
    bool ok = s_has_tokens (self, b, n, now_ms, retry_ms);
    if (ok)
        b->tokens -= n;
    pthread_mutex_unlock (&self->lock);
    return ok;
}

bool
vdgx_ratelimit_take (vdgx_ratelimit_t *self, const char *identity, int64_t now_ms,
                     int64_t *retry_ms)
{
    return vdgx_ratelimit_take_n (self, identity, 1.0, now_ms, retry_ms);
}

bool
vdgx_ratelimit_peek (vdgx_ratelimit_t *self, const char *identity, int64_t now_ms,
                     int64_t *retry_ms)
{
    assert (self && identity);
    if (self->rate == 0)
        return true;
    pthread_mutex_lock (&self->lock);
    s_bucket_t *b = (s_bucket_t *) zhashx_lookup (self->buckets, identity);
    bool ok = !b || s_has_tokens (self, b, 1.0, now_ms, retry_ms);
    pthread_mutex_unlock (&self->lock);
    return ok;
}

size_t
vdgx_ratelimit_expire (vdgx_ratelimit_t *self, int64_t now_ms)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t n = s_prune (self, now_ms);
    pthread_mutex_unlock (&self->lock);
    return n;
}

size_t
vdgx_ratelimit_size (vdgx_ratelimit_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t n = zhashx_size (self->buckets);
    pthread_mutex_unlock (&self->lock);
    return n;
}

void
vdgx_ratelimit_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_ratelimit: ");
    //  2 tokens/s, burst 3: three at once, then one every 500 ms.
    vdgx_ratelimit_t *rl = vdgx_ratelimit_new (2, 3, 4);
    int64_t retry = 0;
    assert (vdgx_ratelimit_take (rl, "a", 1000, NULL));
    assert (vdgx_ratelimit_take (rl, "a", 1000, NULL));
    assert (vdgx_ratelimit_take (rl, "a", 1000, NULL));
    assert (!vdgx_ratelimit_take (rl, "a", 1000, &retry));
    assert (retry == 500);
    assert (!vdgx_ratelimit_take (rl, "a", 1300, &retry));
    assert (retry == 200);
    assert (vdgx_ratelimit_take (rl, "a", 1500, NULL));
    //  peek looks without taking.
    assert (!vdgx_ratelimit_peek (rl, "a", 1500, &retry) && retry == 500);
    assert (vdgx_ratelimit_peek (rl, "a", 2000, NULL));
    assert (vdgx_ratelimit_peek (rl, "a", 2000, NULL));
    assert (vdgx_ratelimit_peek (rl, "nobody", 2000, NULL));
    //  Another identity has its own bucket.
    assert (vdgx_ratelimit_take (rl, "b", 1500, NULL));
    //  Bounded table: c, d fill it; e finds no full bucket to drop and uses the overflow.
    assert (vdgx_ratelimit_take (rl, "c", 1500, NULL));
    assert (vdgx_ratelimit_take (rl, "d", 1500, NULL));
    assert (vdgx_ratelimit_size (rl) == 4);
    for (int i = 0; i < 3; i++)
        assert (vdgx_ratelimit_take (rl, "e", 1500, NULL));
    assert (!vdgx_ratelimit_take (rl, "f", 1500, NULL));       //  overflow shared and empty
    assert (vdgx_ratelimit_size (rl) == 4);
    //  Much later every bucket is full again: pruned, and the newcomer gets its own.
    assert (vdgx_ratelimit_take (rl, "g", 100000, NULL));
    assert (vdgx_ratelimit_size (rl) == 1);
    //  A clock going backwards does not mint tokens.
    assert (vdgx_ratelimit_take (rl, "g", 100000, NULL));
    assert (vdgx_ratelimit_take (rl, "g", 100000, NULL));
    assert (!vdgx_ratelimit_take (rl, "g", 50, NULL));
    vdgx_ratelimit_destroy (&rl);
    assert (rl == NULL);
    //  rate 0 = unlimited.
    rl = vdgx_ratelimit_new (0, 0, 1);
    for (int i = 0; i < 100; i++)
        assert (vdgx_ratelimit_take (rl, "x", 0, NULL));
    assert (vdgx_ratelimit_take_n (rl, "x", 1e12, 0, NULL));
    vdgx_ratelimit_destroy (&rl);

    //  Byte budgets (the broker): 8 MiB/s, burst 32 MiB, requests of 3 MiB.
    const double MiB = 1024.0 * 1024.0;
    rl = vdgx_ratelimit_new (8 * MiB, 32 * MiB, 3);
    int taken = 0;
    while (vdgx_ratelimit_take_n (rl, "key:alice", 3 * MiB, 0, &retry))
        taken++;
    assert (taken == 10);                                   //  30 of 32 MiB
    assert (retry == 125);                                  //  1 MiB more at 8 MiB/s
    assert (!vdgx_ratelimit_take_n (rl, "key:alice", 3 * MiB, 124, NULL));
    assert (vdgx_ratelimit_take_n (rl, "key:alice", 3 * MiB, 126, NULL));
    //  A refused request takes nothing; another peer is not affected.
    assert (vdgx_ratelimit_take_n (rl, "key:bob", 32 * MiB, 2000, NULL));
    assert (!vdgx_ratelimit_take_n (rl, "key:bob", 1, 2000, &retry) && retry == 1);
    //  More than the burst is never allowed (retry 0), and takes nothing.
    assert (!vdgx_ratelimit_take_n (rl, "key:carol", 33 * MiB, 2000, &retry) && retry == 0);
    assert (vdgx_ratelimit_size (rl) == 2);
    assert (vdgx_ratelimit_take_n (rl, "key:carol", 0, 2000, NULL));
    assert (vdgx_ratelimit_size (rl) == 3);
    //  Idle peers expire oldest first: at 5 s alice (empty at 126 ms) is full again, bob
    //  (empty at 2 s) not yet, so the walk stops at bob and keeps carol (full, but used
    //  after bob) until bob has refilled too.
    assert (vdgx_ratelimit_expire (rl, 5000) == 1);
    assert (vdgx_ratelimit_size (rl) == 2);
    assert (vdgx_ratelimit_expire (rl, 100000) == 2);
    assert (vdgx_ratelimit_size (rl) == 0);
    //  A peer that keeps coming with new identities cannot grow the table: beyond 3, they
    //  share the overflow bucket (and its single burst) while the others are in use.
    for (int i = 0; i < 3; i++) {
        char who [16];
        snprintf (who, sizeof who, "id-%d", i);
        assert (vdgx_ratelimit_take_n (rl, who, 32 * MiB, 200000, NULL));
    }
    assert (vdgx_ratelimit_take_n (rl, "id-3", 20 * MiB, 200000, NULL));
    assert (!vdgx_ratelimit_take_n (rl, "id-4", 20 * MiB, 200000, NULL));
    for (int i = 5; i < 1000; i++) {
        char who [16];
        snprintf (who, sizeof who, "id-%d", i);
        vdgx_ratelimit_take_n (rl, who, MiB, 200000, NULL);
    }
    assert (vdgx_ratelimit_size (rl) == 3);
    //  Recently used buckets move to the end of the order: id-0, used again, is kept when
    //  the others have refilled and a newcomer needs room.
    assert (vdgx_ratelimit_take_n (rl, "id-1", 0, 203000, NULL));
    assert (vdgx_ratelimit_take_n (rl, "id-0", 32 * MiB, 204000, NULL));
    assert (vdgx_ratelimit_take_n (rl, "newcomer", MiB, 204100, NULL));
    assert (vdgx_ratelimit_size (rl) == 2);         //  id-1 and id-2 (full) dropped
    assert (!vdgx_ratelimit_take_n (rl, "id-0", 32 * MiB, 204100, NULL));
    vdgx_ratelimit_destroy (&rl);
    printf ("OK\n");
}
