/*  vdgx_guard.h - the bridge's connection guard: limits on open connections (per client
    address and in all) answered in HTTP, and a deadline on slow requests.

    libmicrohttpd's own limits close an over-limit connection at once (a TCP reset to the
    client) and let a connection that trickles its headers live as long as each byte comes
    before the idle timeout. The guard instead:
    - counts open connections per address (notify STARTED/CLOSED); the request of a
      connection over per_ip (or over total) is answered 429 (503) with Retry-After and the
      connection closed, so a client learns why;
    - gives every request header_ms from its first byte window (connection start, or the end
      of the previous request on a kept-alive connection) until its headers are complete, and
      a body at least min_rate bytes per second after that grace: a watchdog thread shuts down
      the socket of a request that misses either (libmicrohttpd then closes the connection).
    libmicrohttpd keeps hard limits above these (a backstop: total + 64 connections).

    Thread-safe: one mutex; the watchdog holds it while it shuts a socket down, and the
    CLOSED notification (which libmicrohttpd sends before it closes the socket) takes it, so
    a socket number is never shut down after it was reused.

        vdgx_guard_t *guard = vdgx_guard_new (64, 1024, 10000, 1024);
        void *conn = vdgx_guard_open (guard, fd, "10.0.0.7");     //  notify STARTED
        int status = vdgx_guard_admit (guard, conn, &retry_ms);   //  headers complete
        vdgx_guard_body (guard, conn, n);                         //  body bytes
        vdgx_guard_done (guard, conn);                            //  request completed
        vdgx_guard_close (guard, conn);                           //  notify CLOSED
*/
#ifndef VDGX_GUARD_H_INCLUDED
#define VDGX_GUARD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_guard_t vdgx_guard_t;

//  per_ip: connections per address (0 = no limit); total: connections in all; header_ms:
//  time a request has for its headers; min_rate: body bytes per second after header_ms
//  (0 = no minimum). Starts the watchdog thread.
vdgx_guard_t *vdgx_guard_new (unsigned per_ip, unsigned total, int header_ms, size_t min_rate);
void vdgx_guard_destroy (vdgx_guard_t **self_p);

//  A new connection (its socket and its address as text). Returns its handle.
void *vdgx_guard_open (vdgx_guard_t *self, int fd, const char *address);
//  The connection is closed: forget it.
void vdgx_guard_close (vdgx_guard_t *self, void *conn);
//  A request's headers are complete: 0 to serve it, or 429 / 503 with *retry_ms when its
//  connection is over the per-address / total limit.
int vdgx_guard_admit (vdgx_guard_t *self, void *conn, int64_t *retry_ms);
//  n more body bytes arrived (uploads): the rate is checked by the watchdog.
void vdgx_guard_body (vdgx_guard_t *self, void *conn, size_t n);
//  The request is answered: the next one on this connection gets a new header window; a
//  request that streams a long response (downloads, events) is not watched meanwhile.
void vdgx_guard_done (vdgx_guard_t *self, void *conn);
//  The request's body is complete (or it has none): no rate check for the rest of it.
void vdgx_guard_received (vdgx_guard_t *self, void *conn);
//  Connections shut down for being slow, so far; connections open now.
uint64_t vdgx_guard_slow_closed (vdgx_guard_t *self);
size_t vdgx_guard_open_count (vdgx_guard_t *self);

void vdgx_guard_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
