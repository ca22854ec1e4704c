/*  vdgx_gate.h - a bounded number of slots for costly work that HTTP threads do in place
    (the bridge decodes uploaded images: up to 16 Mpx, 48 MiB of pixels and a few hundred ms
    of CPU each).

    A thread enters the gate before the work and leaves it after. When every slot is taken
    it waits at most wait_ms for one (a libmicrohttpd thread serves many connections: it must
    never block for long), then gives up: the caller answers 503 with Retry-After. So the
    memory and CPU that simultaneous uploads can take is bounded by the slots, and no request
    ever hangs on the gate.

    Thread-safe (a mutex and a condition variable on the monotonic clock).

        vdgx_gate_t *gate = vdgx_gate_new (2, 250);
        if (!vdgx_gate_enter (gate))
            return answer_503 ();
        decode ();
        vdgx_gate_leave (gate);
*/
#ifndef VDGX_GATE_H_INCLUDED
#define VDGX_GATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_gate_t vdgx_gate_t;

//  slots >= 1 at once; a thread waits up to wait_ms (>= 0) for one.
vdgx_gate_t *vdgx_gate_new (unsigned slots, int wait_ms);
void vdgx_gate_destroy (vdgx_gate_t **self_p);
//  Takes a slot, waiting up to wait_ms. True when taken (call vdgx_gate_leave after the
//  work), false when none became free in time (counted as refused).
bool vdgx_gate_enter (vdgx_gate_t *self);
void vdgx_gate_leave (vdgx_gate_t *self);
//  Slots; slots taken now; entries so far; entries refused so far; entries that waited.
unsigned vdgx_gate_slots (vdgx_gate_t *self);
unsigned vdgx_gate_busy (vdgx_gate_t *self);
uint64_t vdgx_gate_entered (vdgx_gate_t *self);
uint64_t vdgx_gate_refused (vdgx_gate_t *self);
uint64_t vdgx_gate_waited (vdgx_gate_t *self);

void vdgx_gate_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
