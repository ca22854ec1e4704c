/*  vdgx_ratelimit.h - token-bucket rate limits per identity (an API key name, a client IP,
    a broker peer's CURVE key or owner).

    Each identity has a bucket of `burst` tokens refilled at `rate` tokens per second; a
    request takes one token (or n: the broker counts request bytes) or is refused with the
    time until enough are available (the HTTP Retry-After, the broker's retry_after_ms).
    rate 0 turns limiting off.

    The table is bounded: it keeps its buckets in the order they were last used. A bucket
    that has refilled completely carries no state worth keeping (it behaves exactly like a
    new one), so when the table is full the least recently used buckets that are full again
    are dropped (a walk from the oldest that stops at the first one still in use: constant
    cost per newcomer, whatever the table size); if none can be dropped, unknown identities
    share one overflow bucket, so a flood of fresh identities cannot grow memory and gets no
    fresh bursts either. vdgx_ratelimit_expire drops idle buckets the same way, for a
    periodic clean-up.

    Thread-safe: the bridge's HTTP threads share one limiter (a mutex guards the table).

        vdgx_ratelimit_t *rl = vdgx_ratelimit_new (8 << 20, 32 << 20, 65536);  //  bytes
        int64_t retry_ms;
        if (!vdgx_ratelimit_take_n (rl, "key:abc", size, zclock_mono (), &retry_ms))
            refuse (retry_ms);
*/
#ifndef VDGX_RATELIMIT_H_INCLUDED
#define VDGX_RATELIMIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_ratelimit_t vdgx_ratelimit_t;

//  rate: tokens per second (0 = unlimited); burst: bucket size (>= 1 when rate > 0);
//  max_entries: identities tracked at once.
vdgx_ratelimit_t *vdgx_ratelimit_new (double rate, double burst, size_t max_entries);
void vdgx_ratelimit_destroy (vdgx_ratelimit_t **self_p);
//  Takes one token for identity at time now_ms (monotonic). Returns true when allowed; else
//  false and *retry_ms (may be NULL) = ms until a token is available (>= 1).
bool vdgx_ratelimit_take (vdgx_ratelimit_t *self, const char *identity, int64_t now_ms,
                          int64_t *retry_ms);
//  Takes n tokens (n >= 0) at once, or none: true when allowed; else false and *retry_ms =
//  ms until n are available (>= 1), or 0 when n is over burst (never allowed).
bool vdgx_ratelimit_take_n (vdgx_ratelimit_t *self, const char *identity, double n,
                            int64_t now_ms, int64_t *retry_ms);
//  Whether identity has a token now, without taking it (*retry_ms as for take).
bool vdgx_ratelimit_peek (vdgx_ratelimit_t *self, const char *identity, int64_t now_ms,
                          int64_t *retry_ms);
//  Drops the least recently used buckets that have refilled completely (idle identities).
//  Returns how many were dropped.
size_t vdgx_ratelimit_expire (vdgx_ratelimit_t *self, int64_t now_ms);
//  Identities tracked now (the overflow bucket not counted).
size_t vdgx_ratelimit_size (vdgx_ratelimit_t *self);

void vdgx_ratelimit_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
