/*  vdgx_front.h - the bridge's front door: it owns the listening socket, every request
    passes a framing check (vdgx_httpframe) before the HTTP server (libmicrohttpd) sees a
    byte of it, and what it refuses it answers itself in the bridge's JSON error shape.

    libmicrohttpd 0.9.75 answers malformed requests itself, with short HTML bodies, and has
    no hook to replace them (docs/SECURITY.md lists every case). So the front accepts each
    connection, hands the server one end of a socketpair (MHD_add_connection with the
    client's address, so per-address limits and logs stay right) and relays bytes both ways:
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
    the answer instead of a reset. A connection over conn_max, or one the server refuses
    (the handoff fails), is answered 503 with Retry-After.

    Threads: `threads` relay threads share the listening socket (EPOLLEXCLUSIVE). Each owns
    the connections it accepted and a libmicrohttpd daemon of its own that it runs itself
    (external polling: the daemon's epoll descriptor sits in the thread's epoll set), so a
    request is read, checked, served and its response relayed on one thread, without a
    hand-over between threads. The server's callbacks run on that thread, inside its
    MHD_run; vdgx_front_done must be called from them (MHD_OPTION_NOTIFY_COMPLETED).
    libmicrohttpd 0.9.75 has no wake-up channel of its own in this mode (it drops
    MHD_USE_ITC), so a suspended connection is resumed with vdgx_front_resume, from any
    thread: it resumes it and wakes the thread that runs its server.

        //  start (arg, flags): MHD_start_daemon (flags | its own, ...) for one thread
        vdgx_front_t *front = vdgx_front_new (&addr, len, 1024, 16384, 1, 1088, 30000, start,
                                              arg, err, sizeof err);
        vdgx_front_start (front);           //  the relay threads (once front is stored)
        //  the server, at each completed request: vdgx_front_done (front, connection)
        //  any thread, instead of MHD_resume_connection: vdgx_front_resume (front, connection)
        vdgx_front_quiesce (front);         //  no new connection to a server after this
        vdgx_front_destroy (&front);        //  stops the threads, then the daemons
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
struct MHD_Daemon;
struct MHD_Connection;

//  Starts the HTTP server of one relay thread: MHD_start_daemon with these flags (external
//  polling on epoll, no listening socket) and any of its own that keep polling external
//  (MHD_ALLOW_SUSPEND_RESUME, MHD_USE_ERROR_LOG). NULL when it cannot.
typedef struct MHD_Daemon *(vdgx_front_server_fn) (void *arg, unsigned int flags);

//  Listens on addr (SO_REUSEADDR; an IPv6 address listens on IPv6 only) with backlog and
//  starts `threads` (>= 1) servers; head_max: bytes of a request line and headers (431
//  beyond); conn_max: connections open to the servers at once, in all (503 beyond);
//  stall_ms: a client that takes none of the bytes waiting for it this long is closed.
//  Returns NULL with err filled when it cannot listen or a server does not start.
vdgx_front_t *vdgx_front_new (const struct sockaddr *addr, socklen_t addr_len, int backlog,
                              size_t head_max, int threads, int conn_max, int stall_ms,
                              vdgx_front_server_fn *start, void *arg, char *err, size_t err_size);
//  Starts the relay threads (after the caller stored the front where the server's callbacks
//  find it). Returns 0, or -1 with err filled.
int vdgx_front_start (vdgx_front_t *self, char *err, size_t err_size);
//  Stops the threads, then the servers, and closes every connection.
void vdgx_front_destroy (vdgx_front_t **self_p);

//  The port it listens on (the one given, or the one the system chose for port 0).
uint16_t vdgx_front_port (vdgx_front_t *self);
//  No more connections to the servers: new ones are answered 503. Returns when no
//  handoff runs.
void vdgx_front_quiesce (vdgx_front_t *self);
//  The server completed a request on this connection (its response is all written).
//  Called from the server's completion callback, on its relay thread (anywhere else, as
//  while the servers stop, it does nothing).
void vdgx_front_done (vdgx_front_t *self, struct MHD_Connection *conn);
//  MHD_resume_connection (conn), and the thread that runs its server runs it soon (at once
//  when called from that server's callbacks). Thread-safe.
void vdgx_front_resume (vdgx_front_t *self, struct MHD_Connection *conn);
//  Requests (and connections) the front answered itself with this status, so far.
uint64_t vdgx_front_refused (vdgx_front_t *self, int status);

void vdgx_front_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
