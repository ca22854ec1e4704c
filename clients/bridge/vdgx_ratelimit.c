/*  vdgx_ratelimit.c - token buckets per identity, bounded table. */
#include "vdgx_ratelimit.h"
#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <pthread.h>

typedef struct {
    double tokens;
    int64_t last_ms;
} s_bucket_t;

struct _vdgx_ratelimit_t {
    double rate, burst;
    size_t max_entries;
    zhashx_t *buckets;          //  identity -> s_bucket_t
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

//  Drops buckets that are full again: they behave exactly like a new one.
static void
s_prune (vdgx_ratelimit_t *self, int64_t now_ms)
{
    zlistx_t *keys = zhashx_keys (self->buckets);
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys)) {
        s_bucket_t *b = (s_bucket_t *) zhashx_lookup (self->buckets, key);
        s_refill (self, b, now_ms);
        if (b->tokens >= self->burst)
            zhashx_delete (self->buckets, key);
    }
    zlistx_destroy (&keys);
}

//  Refills b; true when it holds a token, else *retry_ms (may be NULL) = ms until it will.
static bool
s_has_token (vdgx_ratelimit_t *self, s_bucket_t *b, int64_t now_ms, int64_t *retry_ms)
{
    s_refill (self, b, now_ms);
    if (b->tokens >= 1.0)
        return true;
    if (retry_ms) {
        int64_t wait = (int64_t) ceil ((1.0 - b->tokens) * 1000.0 / self->rate);
        *retry_ms = wait < 1? 1: wait;
    }
    return false;
}

bool
vdgx_ratelimit_take (vdgx_ratelimit_t *self, const char *identity, int64_t now_ms,
                     int64_t *retry_ms)
{
    assert (self && identity);
    if (self->rate == 0)
        return true;
    pthread_mutex_lock (&self->lock);
    s_bucket_t *b = (s_bucket_t *) zhashx_lookup (self->buckets, identity);
    if (!b) {
        if (zhashx_size (self->buckets) >= self->max_entries)
            s_prune (self, now_ms);
        if (zhashx_size (self->buckets) < self->max_entries) {
            b = (s_bucket_t *) calloc (1, sizeof (s_bucket_t));
            if (b) {
                b->tokens = self->burst;
                b->last_ms = now_ms;
                zhashx_insert (self->buckets, identity, b);
            }
        }
        if (!b)
            b = &self->overflow;
    }
    bool ok = s_has_token (self, b, now_ms, retry_ms);
    if (ok)
        b->tokens -= 1.0;
    pthread_mutex_unlock (&self->lock);
    return ok;
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
    bool ok = !b || s_has_token (self, b, now_ms, retry_ms);
    pthread_mutex_unlock (&self->lock);
    return ok;
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
    vdgx_ratelimit_destroy (&rl);
    printf ("OK\n");
}
