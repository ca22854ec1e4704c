/*  vdgx_front.h - the bridge's front door: it owns the listening socket, every request
    passes a framing check (vdgx_httpframe) before the HTTP server (libmicrohttpd) sees a
    byte of it, and what it refuses it answers itself in the bridge's JSON error shape.

    libmicrohttpd 0.9.75 answers malformed requests itself, with short HTML bodies, and has
    no hook to replace them (docs/SECURITY.md lists every case). So the front accepts each
    connection, hands the server one end of a socketpair (`handoff`: MHD_add_connection
    with the client's address, so per-address limits and logs stay right) and relays bytes
    both ways from its own epoll thread(s):
    - client to server: only bytes the parser committed (a whole head, body bytes, a whole
      chunk size line or trailer section). A request's head waits until the response to
      the request before it is complete (the server says so through vdgx_front_done), so
      pipelined requests stay in order and an answer of the front never lands inside
      another response;
    - server to client: as it comes; at most 64 KiB per connection waits for a slow client,
      then the server's socket fills and the server waits (no unbounded buffering).
    A refused request is answered (HTTP/1.1, JSON, Connection: close) when no byte of a
    response to it has been sent (an interim 100 Continue aside); otherwise the connection
    is only closed. Either way the server's end is closed, and the client's end is shut
    down for writing and drained for up to 2 s before it is closed, so the client reads
    the answer instead of a reset. A connection the server refuses (its connection limit:
    the handoff fails) is answered 503 with Retry-After.

    Threads: `threads` relay threads share the listening socket (EPOLLEXCLUSIVE), each owns
    the connections it accepted. vdgx_front_done is called from the server's threads.

        vdgx_front_t *front = vdgx_front_new (&addr, len, 1024, 16384, 1, 30000, handoff,
                                              daemon, err, sizeof err);
        //  the server, at each completed request: vdgx_front_done (front, its socket fd)
        vdgx_front_quiesce (front);         //  no handoff after this (server stopping)
        vdgx_front_destroy (&front);        //  once the server has stopped
*/
#ifndef VDGX_FRONT_H_INCLUDED
#define VDGX_FRONT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

//  libmicrohttpd's connection memory (MHD_OPTION_CONNECTION_MEMORY_LIMIT) that the front's
//  limits are made for: a head of 16 KiB with its header, argument and cookie records, a
//  copy of the cookies and the response headers always fit, so libmicrohttpd never runs
//  out of it (and never answers 431 or 500 on its own).
#define VDGX_FRONT_SERVER_MEMORY    (128 * 1024)

typedef struct _vdgx_front_t vdgx_front_t;

//  Gives the server its end of a connection, with the client's address. The server owns
//  fd from then on, whatever it returns (0: taken, -1: refused, fd closed).
typedef int (vdgx_front_handoff_fn) (void *arg, int fd, const struct sockaddr *addr, socklen_t addr_len);

//  Listens on addr (SO_REUSEADDR; an IPv6 address listens on IPv6 only) with backlog;
//  head_max: bytes of a request line and headers (431 beyond); threads: relay threads (>=1);
//  stall_ms: a client that takes none of the bytes waiting for it this long is closed.
//  Returns NULL with err filled when it cannot listen.
vdgx_front_t *vdgx_front_new (const struct sockaddr *addr, socklen_t addr_len, int backlog,
                              size_t head_max, int threads, int stall_ms,
                              vdgx_front_handoff_fn *handoff, void *arg, char *err, size_t err_size);
//  Stops the threads and closes every connection (call after the server stopped).
void vdgx_front_destroy (vdgx_front_t **self_p);

//  The port it listens on (the one given, or the one the system chose for port 0).
uint16_t vdgx_front_port (vdgx_front_t *self);
//  No more handoffs: new connections are answered 503. Returns when no handoff runs.
void vdgx_front_quiesce (vdgx_front_t *self);
//  The server completed a request (its response is all written) on its socket fd.
//  Thread-safe.
void vdgx_front_done (vdgx_front_t *self, int fd);
//  Requests (and connections) the front answered itself with this status, so far.
uint64_t vdgx_front_refused (vdgx_front_t *self, int status);

void vdgx_front_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
