/*  vdgx_ratelimit.h - token-bucket rate limits per identity (API key name or client IP).

    Each identity has a bucket of `burst` tokens refilled at `rate` tokens per second; a
    request takes one token or is refused with the time until one is available (the HTTP
    Retry-After). rate 0 turns limiting off. The table is bounded: when it is full, buckets
    that have refilled completely (they carry no state worth keeping) are dropped; if none
    can be dropped, unknown identities share one overflow bucket, so a flood of fresh
    addresses cannot grow memory.

    Thread-safe: the HTTP threads share one limiter (a mutex guards the table).
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
//  Whether identity has a token now, without taking it (*retry_ms as for take).
bool vdgx_ratelimit_peek (vdgx_ratelimit_t *self, const char *identity, int64_t now_ms,
                          int64_t *retry_ms);
size_t vdgx_ratelimit_size (vdgx_ratelimit_t *self);

void vdgx_ratelimit_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
