/*  vdgx_front.c - the bridge's front door: listening socket, request framing, relay
    (see vdgx_front.h). */
#include "vdgx_front.h"
#include "vdgx_apireq.h"
#include "vdgx_httpframe.h"
#include "vdgx_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_OUT_MAX       (64 * 1024)     //  server bytes waiting for a slow client
#define S_IN_SLACK      (8 * 1024)      //  client buffer: head_max + this
#define S_LINGER_MS     2000            //  draining a client after the last answer
#define S_LINGER_BYTES  (1024 * 1024)   //  ... at most this much
#define S_ACCEPT_PAUSE  100             //  ms without accepting when out of descriptors
#define S_EVENTS        64
#define S_ROUNDS        16              //  relay rounds per connection and wake-up
#define S_SERVER_ROUNDS 8               //  server runs per wake-up (then it waits no longer)
#define S_SWEEP_MS      1000            //  how often stalled clients are looked for

static const char s_continue [] = "HTTP/1.1 100 Continue\r\n\r\n";
#define S_CONTINUE_LEN  (sizeof s_continue - 1)

static const int s_statuses [] = { 400, 413, 414, 431, 501, 503, 505 };
#define S_NSTATUS ((int) (sizeof s_statuses / sizeof s_statuses [0]))

typedef struct _s_conn_t s_conn_t;
typedef struct _s_loop_t s_loop_t;

typedef enum { E_LISTEN, E_WAKE, E_HTTP, E_CLIENT, E_SERVER } s_kind_t;

//  One registered descriptor.
typedef struct {
    s_kind_t kind;
    s_conn_t *conn;
    int fd;
    uint32_t events;            //  registered interest; 0 = not registered
} s_end_t;

typedef enum {
    C_RELAY,                    //  relaying both ways
    C_FLUSH,                    //  the server's end is closed: writing what is left
    C_LINGER,                   //  written and shut down: draining the client
    C_DEAD                      //  closed, freed after this batch of events
} s_phase_t;

struct _s_conn_t {
    s_loop_t *loop;
    s_end_t client, server;     //  server.fd: the front's end of the socketpair (-1: closed)
    int backend_fd;             //  the server's end: the key of its done reports
    bool counted;               //  counted in front->open (until the server's end closes)
    char address [INET6_ADDRSTRLEN + 8];
    s_phase_t phase;
    vdgx_httpframe_t *parser;
    //  Client to server: in [] holds the stream from offset in_base
    uint8_t *in;
    size_t in_len, in_cap;
    uint64_t in_base;
    uint64_t released;          //  stream offset up to which bytes may go to the server
    uint64_t sent;              //  ... and up to which they went
    bool client_eof, server_shut, server_blocked;
    bool server_gone;           //  writing to the server failed: read what it left, then finish
    bool client_readable, server_readable;  //  may hold bytes (an event said so, no short read since)
    bool held;                  //  a head waits for the responses before it
    uint64_t held_end;
    bool refused;               //  the parser refused: answer once those responses are through
    //  Server to client
    uint8_t *out;
    size_t out_len, out_off;
    uint64_t heads;             //  heads released to the server
    uint64_t done;              //  requests the server completed (its done reports)
    uint64_t acked;             //  done reports taken into account
    bool drained;               //  the server's socket was empty after `acked` was read
    bool resp_started;          //  a response to the latest head began (not 100 Continue)
    size_t cont_match;          //  bytes of it matching s_continue
    //  Lists of the loop
    s_conn_t *prev, *next;      //  every connection
    s_conn_t *wprev, *wnext;    //  lingering
    s_conn_t *rnext;            //  done reports to act on
    bool in_linger, in_ready;
    int64_t deadline;
    size_t lingered;
    int64_t out_since;          //  when out [] last took bytes off (or filled)
};

//  A relay thread with its server. Everything here is the thread's own, apart from the
//  fields set before it starts.
struct _s_loop_t {
    vdgx_front_t *front;
    pthread_t thread;
    bool started;
    int epfd;
    s_end_t wake;               //  eventfd: resumed connections, stop
    s_end_t listen;             //  the shared listening socket
    s_end_t http;               //  the server's epoll descriptor
    struct MHD_Daemon *daemon;  //  the server, run by this thread only
    bool in_run;                //  inside MHD_run: done reports are taken
    bool http_due;              //  the server has work: run it before waiting
    int64_t http_at;            //  ... or at this time (its timeouts); 0: none
    s_conn_t **map;             //  the server's fd -> connection
    size_t map_size;
    s_conn_t *ready;            //  connections with done reports since the server last ran
    int64_t listen_resume;      //  0, or when to listen again (out of descriptors)
    int64_t sweep_at;           //  next look for stalled clients
    uint8_t *scratch;
    s_conn_t *all;
    s_conn_t *linger_head, *linger_tail;    //  by deadline
    s_conn_t *dead;
};

struct _vdgx_front_t {
    int listen_fd;
    uint16_t port;
    size_t head_max;
    int stall_ms;
    int conn_max;
    atomic_int open;            //  connections the servers hold, all threads together
    pthread_mutex_t gate;       //  handoffs vs quiesce
    bool accepting;
    atomic_bool stopping;
    int nloops;
    s_loop_t *loops;
    atomic_uint_fast64_t refused [S_NSTATUS];
};

static void *s_loop_run (void *arg);

//  ---------------------------------------------------------------------------------------
//  Construction

static void
s_loop_close (s_loop_t *loop)
{
    if (loop->wake.fd >= 0)
        close (loop->wake.fd);
    if (loop->epfd >= 0)
        close (loop->epfd);
    free (loop->scratch);
    free (loop->map);
}

//  The thread's descriptors and its server (external polling: its epoll descriptor joins
//  the thread's set).
static int
s_loop_init (s_loop_t *loop, int listen_fd, vdgx_front_server_fn *start, void *arg)
{
    vdgx_front_t *front = loop->front;
    loop->wake.kind = E_WAKE;
    loop->wake.fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop->epfd = epoll_create1 (EPOLL_CLOEXEC);
    loop->scratch = (uint8_t *) malloc (S_OUT_MAX);
    loop->listen.kind = E_LISTEN;
    loop->listen.fd = listen_fd;
    loop->http.kind = E_HTTP;
    loop->http.fd = -1;
    if (loop->wake.fd < 0 || loop->epfd < 0 || !loop->scratch)
        return -1;
    loop->daemon = start (arg, MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET);
    if (!loop->daemon)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (loop->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    loop->http.fd = info? info->epoll_fd: -1;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &loop->wake };
    struct epoll_event hev = { .events = EPOLLIN, .data.ptr = &loop->http };
    struct epoll_event lev = { .events = EPOLLIN | (front->nloops > 1? EPOLLEXCLUSIVE: 0),
                               .data.ptr = &loop->listen };
    if (loop->http.fd < 0
    ||  epoll_ctl (loop->epfd, EPOLL_CTL_ADD, loop->wake.fd, &ev)
    ||  epoll_ctl (loop->epfd, EPOLL_CTL_ADD, loop->http.fd, &hev)
    ||  epoll_ctl (loop->epfd, EPOLL_CTL_ADD, listen_fd, &lev))
        return -1;
    loop->http.events = hev.events;
    loop->listen.events = lev.events;
    loop->http_due = true;
    return 0;
}

vdgx_front_t *
vdgx_front_new (const struct sockaddr *addr, socklen_t addr_len, int backlog, size_t head_max,
                int threads, int conn_max, int stall_ms, vdgx_front_server_fn *start, void *arg,
                char *err, size_t err_size)
{
    assert (addr && start && err && err_size && threads >= 1 && head_max >= 64 && stall_ms > 0
            && conn_max >= 1);
    err [0] = 0;
    int fd = socket (addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf (err, err_size, "socket: %s", strerror (errno));
        return NULL;
    }
    int on = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (addr->sa_family == AF_INET6)
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind (fd, addr, addr_len) || listen (fd, backlog)) {
        snprintf (err, err_size, "%s", strerror (errno));
        close (fd);
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    uint16_t port = 0;
    if (getsockname (fd, (struct sockaddr *) &bound, &bound_len) == 0)
        port = ntohs (bound.ss_family == AF_INET6? ((struct sockaddr_in6 *) &bound)->sin6_port
                      : ((struct sockaddr_in *) &bound)->sin_port);

    vdgx_front_t *self = (vdgx_front_t *) zmalloc (sizeof (vdgx_front_t));
    self->listen_fd = fd;
    self->port = port;
    self->head_max = head_max;
    self->stall_ms = stall_ms;
    self->conn_max = conn_max;
    self->accepting = true;
    pthread_mutex_init (&self->gate, NULL);
    self->nloops = threads;
    self->loops = (s_loop_t *) zmalloc (sizeof (s_loop_t) * (size_t) threads);
    for (int i = 0; i < threads; i++) {
        self->loops [i].front = self;
        self->loops [i].wake.fd = self->loops [i].epfd = self->loops [i].http.fd = -1;
    }
    for (int i = 0; i < threads; i++)
        if (s_loop_init (&self->loops [i], fd, start, arg)) {
            snprintf (err, err_size, "cannot start the HTTP server%s%s", errno? ": ": "",
                      errno? strerror (errno): "");
            vdgx_front_destroy (&self);
            return NULL;
        }
    return self;
}

int
vdgx_front_start (vdgx_front_t *self, char *err, size_t err_size)
{
    assert (self && err && err_size);
    for (int i = 0; i < self->nloops; i++) {
        s_loop_t *loop = &self->loops [i];
        if (loop->started)
            continue;
        if (pthread_create (&loop->thread, NULL, s_loop_run, loop)) {
            snprintf (err, err_size, "cannot start the front's thread: %s", strerror (errno));
            return -1;
        }
        loop->started = true;
    }
    return 0;
}

static void s_kill (s_loop_t *loop, s_conn_t *c);
static void s_reap (s_loop_t *loop);

void
vdgx_front_destroy (vdgx_front_t **self_p)
{
    assert (self_p);
    vdgx_front_t *self = *self_p;
    if (!self)
        return;
    vdgx_front_quiesce (self);
    atomic_store (&self->stopping, true);
    for (int i = 0; i < self->nloops; i++) {
        s_loop_t *loop = &self->loops [i];
        if (loop->started) {
            uint64_t one = 1;
            if (write (loop->wake.fd, &one, sizeof one) < 0)
                assert (false);
            pthread_join (loop->thread, NULL);
        }
    }
    //  The threads are gone: the servers stop here (their last done reports do nothing),
    //  then the front's ends close.
    for (int i = 0; i < self->nloops; i++) {
        s_loop_t *loop = &self->loops [i];
        if (loop->daemon)
            MHD_stop_daemon (loop->daemon);
        while (loop->all)
            s_kill (loop, loop->all);
        s_reap (loop);
        s_loop_close (loop);
    }
    free (self->loops);
    close (self->listen_fd);
    pthread_mutex_destroy (&self->gate);
    free (self);
    *self_p = NULL;
}

uint16_t
vdgx_front_port (vdgx_front_t *self)
{
    assert (self);
    return self->port;
}

void
vdgx_front_quiesce (vdgx_front_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->gate);
    self->accepting = false;
    pthread_mutex_unlock (&self->gate);
}

//  The thread whose server holds conn (NULL: none of them).
static s_loop_t *
s_loop_of (vdgx_front_t *self, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *server = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_DAEMON);
    for (int i = 0; server && i < self->nloops; i++)
        if (self->loops [i].daemon == server->daemon)
            return &self->loops [i];
    return NULL;
}

void
vdgx_front_done (vdgx_front_t *self, struct MHD_Connection *conn)
{
    assert (self && conn);
    s_loop_t *loop = s_loop_of (self, conn);
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    //  in_run is only ever true on the loop's own thread (inside its MHD_run).
    if (!loop || !fd || !loop->in_run)
        return;
    int sk = fd->connect_fd;
    s_conn_t *c = sk >= 0 && (size_t) sk < loop->map_size? loop->map [sk]: NULL;
    if (c && c->phase != C_DEAD) {
        c->done++;
        c->server_readable = true;      //  the whole response is in the socket
        if (!c->in_ready) {
            c->in_ready = true;
            c->rnext = loop->ready;
            loop->ready = c;
        }
    }
}

void
vdgx_front_resume (vdgx_front_t *self, struct MHD_Connection *conn)
{
    assert (self && conn);
    MHD_resume_connection (conn);
    s_loop_t *loop = s_loop_of (self, conn);
    if (!loop || !loop->started)
        return;                 //  not running: MHD_stop_daemon resumes it
    if (pthread_equal (pthread_self (), loop->thread))
        loop->http_due = true;  //  from the server's own callbacks
    else {
        uint64_t one = 1;
        if (write (loop->wake.fd, &one, sizeof one) < 0 && errno != EAGAIN)
            vdgx_log_warn ("bridge.front", "cannot wake a relay thread: %s", strerror (errno));
    }
}

uint64_t
vdgx_front_refused (vdgx_front_t *self, int status)
{
    assert (self);
    for (int i = 0; i < S_NSTATUS; i++)
        if (s_statuses [i] == status)
            return atomic_load (&self->refused [i]);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Connection lists and the server-fd map (the loop's own)

static void
s_map_set (s_loop_t *loop, int fd, s_conn_t *c, s_conn_t *only_if)
{
    if ((size_t) fd >= loop->map_size && c) {
        size_t size = loop->map_size? loop->map_size: 1024;
        while (size <= (size_t) fd)
            size *= 2;
        s_conn_t **map = (s_conn_t **) realloc (loop->map, size * sizeof (s_conn_t *));
        if (map) {
            memset (map + loop->map_size, 0, (size - loop->map_size) * sizeof (s_conn_t *));
            loop->map = map;
            loop->map_size = size;
        }
    }
    if ((size_t) fd < loop->map_size && (!only_if || loop->map [fd] == only_if))
        loop->map [fd] = c;
}

static void
s_linger_add (s_loop_t *loop, s_conn_t *c)
{
    c->in_linger = true;
    c->deadline = zclock_mono () + S_LINGER_MS;
    c->wnext = NULL;
    c->wprev = loop->linger_tail;
    if (loop->linger_tail)
        loop->linger_tail->wnext = c;
    else
        loop->linger_head = c;
    loop->linger_tail = c;
}

static void
s_linger_remove (s_loop_t *loop, s_conn_t *c)
{
    if (!c->in_linger)
        return;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        loop->linger_head = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else
        loop->linger_tail = c->wprev;
    c->in_linger = false;
    c->wprev = c->wnext = NULL;
}

//  Registers what an end waits for (want = 0: not registered at all, so a hung-up socket
//  that is not read cannot wake the loop again and again).
static void
s_want (s_loop_t *loop, s_end_t *end, uint32_t want)
{
    if (end->fd < 0 || end->events == want)
        return;
    struct epoll_event ev = { .events = want, .data.ptr = end };
    int op = !end->events? EPOLL_CTL_ADD: want? EPOLL_CTL_MOD: EPOLL_CTL_DEL;
    if (epoll_ctl (loop->epfd, op, end->fd, &ev) == 0)
        end->events = want;
}

static void
s_close_end (s_loop_t *loop, s_end_t *end)
{
    if (end->fd < 0)
        return;
    s_want (loop, end, 0);
    close (end->fd);
    end->fd = -1;
    end->events = 0;
}

//  The server's end: closed, and the connection no longer counts against conn_max.
static void
s_close_server (s_loop_t *loop, s_conn_t *c)
{
    s_close_end (loop, &c->server);
    if (c->counted) {
        c->counted = false;
        atomic_fetch_sub (&loop->front->open, 1);
    }
}

//  Closes everything at once; the memory goes after this batch of events (a connection on
//  the ready list is skipped there).
static void
s_kill (s_loop_t *loop, s_conn_t *c)
{
    if (c->phase == C_DEAD)
        return;
    s_close_end (loop, &c->client);
    s_close_server (loop, c);
    s_map_set (loop, c->backend_fd, NULL, c);
    s_linger_remove (loop, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        loop->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->phase = C_DEAD;
    c->next = loop->dead;
    loop->dead = c;
}

static void
s_reap (s_loop_t *loop)
{
    while (loop->dead) {
        s_conn_t *c = loop->dead;
        loop->dead = c->next;
        vdgx_httpframe_destroy (&c->parser);
        free (c->in);
        free (c->out);
        free (c);
    }
}

//  ---------------------------------------------------------------------------------------
//  Answers of the front

static const char *
s_reason (int status)
{
    switch (status) {
        case 400: return "Bad Request";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Error";
    }
}

//  Date: in the IMF-fixdate form, whatever the locale.
static void
s_http_date (char *text, size_t size)
{
    static const char *days [] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *months [] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                     "Sep", "Oct", "Nov", "Dec" };
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    snprintf (text, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days [tm.tm_wday % 7], tm.tm_mday,
              months [tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool
s_out_reserve (s_conn_t *c)
{
    if (!c->out)
        c->out = (uint8_t *) malloc (S_OUT_MAX);
    return c->out != NULL;
}

//  Closes the server's end and queues an answer of the front; the connection then flushes
//  and lingers.
static void
s_answer (s_loop_t *loop, s_conn_t *c, int status, const char *code, const char *message)
{
    s_close_server (loop, c);
    for (int i = 0; i < S_NSTATUS; i++)
        if (s_statuses [i] == status)
            atomic_fetch_add (&loop->front->refused [i], 1);
    vdgx_log_info ("bridge.front_refused", "address=%s status=%d code=%s", c->address, status, code);
    char *body = vdgx_apierr_body (status, code, NULL, message);
    char date [40];
    s_http_date (date, sizeof date);
    char *text = body? zsys_sprintf ("HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\n"
                                     "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n"
                                     "%s\r\n%s", status, s_reason (status), date, strlen (body),
                                     status == 503? "Retry-After: 1\r\n": "",
                                     c->parser && vdgx_httpframe_is_head (c->parser)? "": body): NULL;
    free (body);
    size_t size = text? strlen (text): 0;
    if (text && s_out_reserve (c)) {
        if (c->out_off) {
            memmove (c->out, c->out + c->out_off, c->out_len);
            c->out_off = 0;
        }
        if (c->out_len + size <= S_OUT_MAX) {
            memcpy (c->out + c->out_len, text, size);
            c->out_len += size;
            c->out_since = zclock_mono ();
        }
    }
    zstr_free (&text);
    c->phase = C_FLUSH;
}

//  The server's end is gone (or no longer wanted): write what is left, then linger.
static void
s_finish (s_loop_t *loop, s_conn_t *c)
{
    s_close_server (loop, c);
    if (c->phase == C_RELAY)
        c->phase = C_FLUSH;
}

//  ---------------------------------------------------------------------------------------
//  Relay

//  Whether bytes from the server start a response (anything but one 100 Continue).
static void
s_watch_response (s_conn_t *c, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size && !c->resp_started; i++) {
        if (c->cont_match < S_CONTINUE_LEN && data [i] == (uint8_t) s_continue [c->cont_match])
            c->cont_match++;
        else
            c->resp_started = true;
    }
}

//  Writes out [] to the client. Returns true when it wrote something (or failed).
static bool
s_to_client (s_loop_t *loop, s_conn_t *c)
{
    if (!c->out_len)
        return false;
    ssize_t n = send (c->client.fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
    if (n > 0) {
        c->out_off += (size_t) n;
        c->out_len -= (size_t) n;
        if (!c->out_len)
            c->out_off = 0;
        c->out_since = zclock_mono ();
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    s_kill (loop, c);
    return true;
}

//  The server's socket is empty. When every released head was reported done, the
//  responses to them are all read: a done report comes after the whole response was
//  written, on this thread, so before this read (no extra read to find that out).
static void
s_server_empty (s_conn_t *c)
{
    c->server_readable = false;
    if (c->done >= c->heads) {
        c->acked = c->heads;
        c->drained = true;
    }
}

//  Reads the server's bytes and writes them on to the client (what the client does not
//  take waits in out [], and the server is not read until it is written).
static bool
s_from_server (s_loop_t *loop, s_conn_t *c)
{
    if (c->server.fd < 0 || c->out_len || !c->server_readable)
        return false;
    ssize_t n = recv (c->server.fd, loop->scratch, S_OUT_MAX, 0);
    if (n > 0) {
        //  A short read took all there was: no need to ask again before the next event.
        if (n < S_OUT_MAX)
            s_server_empty (c);
        s_watch_response (c, loop->scratch, (size_t) n);
        ssize_t w = send (c->client.fd, loop->scratch, (size_t) n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            s_kill (loop, c);
            return true;
        }
        if (w < 0)
            w = 0;
        if (w < n) {
            if (!s_out_reserve (c)) {
                s_kill (loop, c);
                return true;
            }
            memcpy (c->out, loop->scratch + w, (size_t) (n - w));
            c->out_len = (size_t) (n - w);
            c->out_off = 0;
            c->out_since = zclock_mono ();
        }
        return true;
    }
    if (n < 0 && errno == EAGAIN) {
        s_server_empty (c);
        return false;
    }
    if (n < 0 && errno == EINTR)
        return false;
    s_finish (loop, c);         //  the server closed the connection
    return true;
}

//  Whether the response to every released head is complete and written to the client.
static bool
s_responses_complete (s_loop_t *loop, s_conn_t *c)
{
    if (c->acked != c->heads) {
        if (c->done < c->heads)
            return false;       //  its done report puts it on the ready list
        c->acked = c->heads;
        c->drained = false;
        c->server_readable = true;      //  read until it is empty, whatever the events said
    }
    //  The server wrote the whole response before it reported it: read to the end of it.
    while (!c->drained && c->phase == C_RELAY && !c->out_len)
        if (!s_from_server (loop, c))
            break;
    return c->drained && !c->out_len && c->phase == C_RELAY;
}

//  Reads what the client sent (while there is room and nothing stops it).
static bool
s_from_client (s_loop_t *loop, s_conn_t *c)
{
    if (c->client_eof || c->refused || c->phase != C_RELAY)
        return false;
    //  Drop what went to the server.
    if (c->sent > c->in_base) {
        size_t drop = (size_t) (c->sent - c->in_base);
        memmove (c->in, c->in + drop, c->in_len - drop);
        c->in_len -= drop;
        c->in_base = c->sent;
    }
    if (!c->in) {
        c->in_cap = loop->front->head_max + S_IN_SLACK;
        c->in = (uint8_t *) malloc (c->in_cap);
        if (!c->in) {
            s_kill (loop, c);
            return true;
        }
    }
    if (c->in_len == c->in_cap || !c->client_readable)
        return false;
    size_t room = c->in_cap - c->in_len;
    ssize_t n = recv (c->client.fd, c->in + c->in_len, room, 0);
    if (n > 0) {
        c->in_len += (size_t) n;
        if ((size_t) n < room)
            c->client_readable = false;
        return true;
    }
    if (n == 0) {
        c->client_eof = true;
        return true;
    }
    if (errno == EAGAIN || errno == EINTR) {
        c->client_readable = false;
        return false;
    }
    s_kill (loop, c);
    return true;
}

//  The parser refused the stream.
static void
s_refuse (s_loop_t *loop, s_conn_t *c)
{
    if (!vdgx_httpframe_in_body (c->parser)) {
        //  A new request's head: answered once the responses before it are through.
        c->refused = true;
        return;
    }
    //  The body of the latest released request: answered unless its response began.
    if (c->resp_started || (c->cont_match && c->cont_match < S_CONTINUE_LEN)) {
        vdgx_log_info ("bridge.front_refused", "address=%s status=%d code=%s (closed: the response had begun)",
                       c->address, vdgx_httpframe_status (c->parser), vdgx_httpframe_code (c->parser));
        s_finish (loop, c);
        return;
    }
    s_answer (loop, c, vdgx_httpframe_status (c->parser), vdgx_httpframe_code (c->parser),
              vdgx_httpframe_message (c->parser));
}

//  Parses what came in, releases what may go on, answers what is refused.
static bool
s_parse (s_loop_t *loop, s_conn_t *c)
{
    bool progress = false;
    while (c->phase == C_RELAY) {
        if (c->held) {
            if (!s_responses_complete (loop, c))
                break;
            c->held = false;
            c->heads++;
            c->resp_started = false;
            c->cont_match = 0;
            c->released = c->held_end;
            progress = true;
            continue;
        }
        if (c->refused) {
            if (!s_responses_complete (loop, c))
                break;
            s_answer (loop, c, vdgx_httpframe_status (c->parser), vdgx_httpframe_code (c->parser),
                      vdgx_httpframe_message (c->parser));
            return true;
        }
        size_t parsed = (size_t) (vdgx_httpframe_offset (c->parser) - c->in_base);
        if (parsed >= c->in_len)
            break;
        vdgx_httpframe_event_t ev;
        vdgx_httpframe_feed (c->parser, c->in + parsed, c->in_len - parsed, &ev);
        progress = true;
        if (ev == VDGX_HTTPFRAME_HEAD) {
            //  What came before the head (the rest of a body) goes; the head waits.
            c->released = vdgx_httpframe_head_from (c->parser);
            c->held = true;
            c->held_end = vdgx_httpframe_committed (c->parser);
        }
        else {
            c->released = vdgx_httpframe_committed (c->parser);
            if (ev == VDGX_HTTPFRAME_ERROR)
                s_refuse (loop, c);
        }
    }
    return progress;
}

//  Writes released bytes to the server.
static bool
s_to_server (s_loop_t *loop, s_conn_t *c)
{
    if (c->server.fd < 0 || c->server_blocked || c->server_gone || c->released <= c->sent
    ||  c->phase != C_RELAY)
        return false;
    size_t at = (size_t) (c->sent - c->in_base);
    ssize_t n = send (c->server.fd, c->in + at, (size_t) (c->released - c->sent), MSG_NOSIGNAL);
    if (n > 0) {
        c->sent += (uint64_t) n;
        loop->http_due = true;  //  the server reads it before the thread waits again
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        c->server_blocked = true;
        return false;
    }
    //  The server closed the connection: it may have answered first (an early error while
    //  the body was still coming), so its bytes are read to the end before the finish.
    c->server_gone = true;
    c->server_readable = true;
    return true;
}

//  The client closed its side: pass that on at a request boundary, else give up.
static void
s_client_eof (s_loop_t *loop, s_conn_t *c)
{
    if (!c->client_eof || c->phase != C_RELAY || c->held || c->refused || c->server_shut)
        return;
    if (vdgx_httpframe_offset (c->parser) - c->in_base < c->in_len)
        return;                 //  not all parsed yet
    if (!vdgx_httpframe_idle (c->parser)) {
        s_finish (loop, c);     //  a request cut short: nothing to answer
        return;
    }
    if (c->sent == c->released) {
        shutdown (c->server.fd, SHUT_WR);
        c->server_shut = true;
    }
}

static void
s_flush (s_loop_t *loop, s_conn_t *c)
{
    while (c->phase == C_FLUSH && c->out_len)
        if (!s_to_client (loop, c))
            return;
    if (c->phase != C_FLUSH)
        return;
    if (c->client_eof) {
        s_kill (loop, c);
        return;
    }
    shutdown (c->client.fd, SHUT_WR);
    c->phase = C_LINGER;
    s_linger_add (loop, c);
}

static void
s_linger (s_loop_t *loop, s_conn_t *c)
{
    while (c->phase == C_LINGER) {
        ssize_t n = recv (c->client.fd, loop->scratch, S_OUT_MAX, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0 || (c->lingered += (size_t) n) > S_LINGER_BYTES)
            s_kill (loop, c);
    }
}

static void
s_interest (s_loop_t *loop, s_conn_t *c)
{
    uint32_t client = 0, server = 0;
    if (c->phase == C_RELAY) {
        if (!c->client_eof && !c->refused && (c->in_len < c->in_cap || !c->in || c->sent > c->in_base))
            client |= EPOLLIN;
        if (c->out_len)
            client |= EPOLLOUT;
        else
            server |= EPOLLIN;
        if (c->server_blocked)
            server |= EPOLLOUT;
    }
    else
    if (c->phase == C_FLUSH)
        client = EPOLLOUT;
    else
    if (c->phase == C_LINGER)
        client = EPOLLIN;
    s_want (loop, &c->client, client);
    s_want (loop, &c->server, server);
}

//  Everything a connection can do now.
static void
s_step (s_loop_t *loop, s_conn_t *c)
{
    for (int round = 0; round < S_ROUNDS && c->phase == C_RELAY; round++) {
        bool progress = s_from_server (loop, c);
        progress |= s_to_client (loop, c);
        progress |= s_from_client (loop, c);
        progress |= s_parse (loop, c);
        progress |= s_to_server (loop, c);
        s_client_eof (loop, c);
        if (!progress)
            break;
    }
    if (c->phase == C_FLUSH)
        s_flush (loop, c);
    if (c->phase == C_LINGER)
        s_linger (loop, c);
    if (c->phase != C_DEAD)
        s_interest (loop, c);
}

//  ---------------------------------------------------------------------------------------
//  Accepting

static void
s_address (const struct sockaddr_storage *addr, char *text, size_t size)
{
    snprintf (text, size, "?");
    if (addr->ss_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *) addr)->sin_addr, text, (socklen_t) size);
    else
    if (addr->ss_family == AF_INET6)
        inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) addr)->sin6_addr, text, (socklen_t) size);
}

static void
s_connection (s_loop_t *loop, int fd, struct sockaddr_storage *addr, socklen_t addr_len)
{
    vdgx_front_t *front = loop->front;
    int on = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    s_conn_t *c = (s_conn_t *) calloc (1, sizeof (s_conn_t));
    int pair [2] = { -1, -1 };
    if (c)
        c->parser = vdgx_httpframe_new (front->head_max);
    if (!c || !c->parser
    ||  socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair)) {
        //  Out of memory or descriptors: no answer is possible without them.
        vdgx_log_warn ("bridge.front", "cannot take a connection: %s", strerror (errno));
        if (c)
            vdgx_httpframe_destroy (&c->parser);
        free (c);
        close (fd);
        return;
    }
    c->loop = loop;
    c->client.kind = E_CLIENT;
    c->client.conn = c;
    c->client.fd = fd;
    c->server.kind = E_SERVER;
    c->server.conn = c;
    c->server.fd = pair [0];
    c->backend_fd = pair [1];
    c->drained = true;
    c->client_readable = true;
    s_address (addr, c->address, sizeof c->address);
    c->next = loop->all;
    if (loop->all)
        loop->all->prev = c;
    loop->all = c;
    s_map_set (loop, pair [1], c, NULL);
    //  conn_max counts the connections of every thread's server together.
    bool room = atomic_fetch_add (&front->open, 1) < front->conn_max;
    if (room)
        c->counted = true;
    else
        atomic_fetch_sub (&front->open, 1);
    pthread_mutex_lock (&front->gate);
    bool accepting = front->accepting;
    bool taken = false;
    if (accepting && room)          //  the server owns pair [1] from here, taken or not
        taken = MHD_add_connection (loop->daemon, pair [1], (struct sockaddr *) addr, addr_len) == MHD_YES;
    else
        close (pair [1]);
    pthread_mutex_unlock (&front->gate);
    if (taken)
        loop->http_due = true;
    else {
        s_map_set (loop, pair [1], NULL, c);
        s_answer (loop, c, 503, "overloaded", accepting? "the server has too many open connections"
                  : "the server is shutting down");
    }
    s_step (loop, c);
}

static void
s_accept (s_loop_t *loop)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof addr;
        int fd = accept4 (loop->listen.fd, (struct sockaddr *) &addr, &addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            s_connection (loop, fd, &addr, addr_len);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            //  Out of descriptors: stop listening a moment (the backlog waits).
            vdgx_log_warn ("bridge.front", "accept: %s", strerror (errno));
            s_want (loop, &loop->listen, 0);
            loop->listen_resume = zclock_mono () + S_ACCEPT_PAUSE;
        }
        if (errno != ECONNABORTED && errno != EINTR && errno != EPROTO)
            return;
    }
}

//  ---------------------------------------------------------------------------------------
//  The relay thread

//  Milliseconds until the next timer: lingering, the sweep, listening again, the server's
//  own timeouts (MHD_get_timeout; 0 when it has work left).
static int
s_timeout (s_loop_t *loop)
{
    int64_t now = zclock_mono ();
    int64_t next = loop->sweep_at;
    if (loop->linger_head && loop->linger_head->deadline < next)
        next = loop->linger_head->deadline;
    if (loop->listen_resume && loop->listen_resume < next)
        next = loop->listen_resume;
    loop->http_at = 0;
    MHD_UNSIGNED_LONG_LONG wait;
    if (MHD_get_timeout (loop->daemon, &wait) == MHD_YES) {
        loop->http_at = now + (wait < 3600000? (int64_t) wait: 3600000);
        if (loop->http_at < next)
            next = loop->http_at;
    }
    int64_t ms = next - now;
    return ms < 0? 0: ms > 60000? 60000: (int) ms;
}

static void
s_timers (s_loop_t *loop)
{
    int64_t now = zclock_mono ();
    while (loop->linger_head && loop->linger_head->deadline <= now)
        s_kill (loop, loop->linger_head);
    //  A client that takes none of the bytes waiting for it for stall_ms is closed (the
    //  server may have given up on it already: its end is not read while they wait).
    if (now >= loop->sweep_at) {
        loop->sweep_at = now + S_SWEEP_MS;
        for (s_conn_t *c = loop->all; c; ) {
            s_conn_t *next = c->next;
            if (c->out_len && now - c->out_since > loop->front->stall_ms)
                s_kill (loop, c);
            c = next;
        }
    }
    if (loop->listen_resume && loop->listen_resume <= now) {
        loop->listen_resume = 0;
        uint32_t events = EPOLLIN | (loop->front->nloops > 1? EPOLLEXCLUSIVE: 0);
        struct epoll_event ev = { .events = events, .data.ptr = &loop->listen };
        if (epoll_ctl (loop->epfd, EPOLL_CTL_ADD, loop->listen.fd, &ev) == 0)
            loop->listen.events = events;
    }
    if (loop->http_at && loop->http_at <= now)
        loop->http_due = true;
}

//  Runs the server while it has work: what the relay passed on, resumed connections, its
//  timeouts. Its callbacks run here, and done reports put their connections on the ready
//  list, which is stepped right after: the response is relayed and the next pipelined head
//  released (more work for the server, so another round) without a wait in between.
static void
s_serve (s_loop_t *loop)
{
    for (int round = 0; round < S_SERVER_ROUNDS && loop->http_due; round++) {
        loop->http_due = false;
        loop->in_run = true;
        MHD_run (loop->daemon);
        loop->in_run = false;
        while (loop->ready) {
            s_conn_t *c = loop->ready;
            loop->ready = c->rnext;
            c->rnext = NULL;
            c->in_ready = false;
            if (c->phase != C_DEAD)
                s_step (loop, c);
        }
    }
}

static void *
s_loop_run (void *arg)
{
    s_loop_t *loop = (s_loop_t *) arg;
    struct epoll_event events [S_EVENTS];
    while (!atomic_load (&loop->front->stopping)) {
        int n = epoll_wait (loop->epfd, events, S_EVENTS, loop->http_due? 0: s_timeout (loop));
        for (int i = 0; i < n; i++) {
            s_end_t *end = (s_end_t *) events [i].data.ptr;
            if (end->kind == E_WAKE) {
                //  A connection was resumed (or the front stops).
                uint64_t count;
                if (read (end->fd, &count, sizeof count) < 0 && errno != EAGAIN)
                    assert (false);
                loop->http_due = true;
            }
            else
            if (end->kind == E_HTTP)
                loop->http_due = true;
            else
            if (end->kind == E_LISTEN)
                s_accept (loop);
            else {
                s_conn_t *c = end->conn;
                if (c->phase == C_DEAD)
                    continue;
                uint32_t e = events [i].events;
                if (end->kind == E_SERVER) {
                    if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
                        c->server_readable = true;
                    //  A hung-up server end: the next write finds out.
                    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                        c->server_blocked = false;
                }
                else
                if (e & (EPOLLIN | EPOLLHUP))
                    c->client_readable = true;
                if (end->kind == E_CLIENT && (e & EPOLLERR))
                    s_kill (loop, c);
                else
                    s_step (loop, c);
            }
        }
        s_timers (loop);
        s_serve (loop);
        s_reap (loop);
    }
    return NULL;
}

//  ---------------------------------------------------------------------------------------
//  Selftest: a real libmicrohttpd daemon without a listening socket behind the front, as in
//  the bridge; raw TCP clients.

#include <poll.h>

typedef struct {
    vdgx_front_t *front;
    zactor_t *resumer;          //  resumes suspended connections from another thread
    pthread_mutex_t lock;       //  its pipe (two relay threads call the handler)
} s_test_server_t;

typedef struct {
    size_t body;                //  body bytes
    bool suspended;             //  /later: suspended once, resumed by the resumer
} s_test_request_t;

//  Resumes each connection it is sent 50 ms later, from its own thread (as the bridge's
//  actor resumes a connection when the broker answers).
static void
s_test_resumer (zsock_t *pipe, void *args)
{
    s_test_server_t *server = (s_test_server_t *) args;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        void *conn = NULL;
        if (zsock_recv (pipe, "sp", &command, &conn) || !command || streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        zclock_sleep (50);
        vdgx_front_resume (server->front, (struct MHD_Connection *) conn);
        zstr_free (&command);
    }
}

static void
s_test_completed (void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void) toe;
    s_test_server_t *server = (s_test_server_t *) cls;
    if (server->front)
        vdgx_front_done (server->front, conn);
    free (*con_cls);
    *con_cls = NULL;
}

//  Answers "ok URL ADDRESS BODY-BYTES"; /big answers 1 MiB; /early answers 413 before the
//  body (libmicrohttpd then closes the connection without reading it); /later is suspended
//  and answered when another thread resumed it.
static enum MHD_Result
s_test_access (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) method; (void) version; (void) upload_data;
    s_test_server_t *server = (s_test_server_t *) cls;
    s_test_request_t *request = (s_test_request_t *) *con_cls;
    if (!request) {
        *con_cls = request = (s_test_request_t *) calloc (1, sizeof (s_test_request_t));
        if (request && streq (url, "/early")) {
            static char refused [] = "too large";
            struct MHD_Response *resp = MHD_create_response_from_buffer (strlen (refused), refused,
                                                                         MHD_RESPMEM_PERSISTENT);
            enum MHD_Result rc = MHD_queue_response (conn, 413, resp);
            MHD_destroy_response (resp);
            return rc;
        }
        return request? MHD_YES: MHD_NO;
    }
    if (*upload_data_size) {
        request->body += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (streq (url, "/later") && !request->suspended) {
        request->suspended = true;
        MHD_suspend_connection (conn);
        pthread_mutex_lock (&server->lock);
        zsock_send (server->resumer, "sp", "RESUME", conn);
        pthread_mutex_unlock (&server->lock);
        return MHD_YES;
    }
    static char big [1024 * 1024];
    struct MHD_Response *resp;
    if (streq (url, "/big")) {
        memset (big, 'x', sizeof big);
        resp = MHD_create_response_from_buffer (sizeof big, big, MHD_RESPMEM_PERSISTENT);
    }
    else {
        char addr [INET6_ADDRSTRLEN] = "?";
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop (AF_INET, &((const struct sockaddr_in *) ci->client_addr)->sin_addr, addr, sizeof addr);
        char *text = zsys_sprintf ("ok %s %s %zu", url, addr, request->body);
        resp = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
    }
    enum MHD_Result rc = MHD_queue_response (conn, 200, resp);
    MHD_destroy_response (resp);
    return rc;
}

//  Starts a relay thread's server as the bridge does (external polling, suspend/resume).
static struct MHD_Daemon *
s_test_start (void *arg, unsigned int flags)
{
    return MHD_start_daemon (flags | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, s_test_access, arg,
                             MHD_OPTION_NOTIFY_COMPLETED, s_test_completed, arg,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) VDGX_FRONT_SERVER_MEMORY,
                             MHD_OPTION_END);
}

//  A connection with one kept-alive request answered (its socket, or -1).
static int
s_test_keep (uint16_t port, char *answer, size_t size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    const char *request = "GET /keep HTTP/1.1\r\nHost: x\r\n\r\n";
    assert (send (fd, request, strlen (request), MSG_NOSIGNAL) == (ssize_t) strlen (request));
    size_t len = 0;
    int64_t until = zclock_mono () + 3000;
    answer [0] = 0;
    while (len < size - 1 && zclock_mono () < until && !strstr (answer, "ok /keep")
    &&     !strstr (answer, "}}")) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll (&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv (fd, answer + len, size - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t) n;
        answer [len] = 0;
    }
    return fd;
}

//  Sends request (size bytes; after a pause of pause_ms, reads), returns what came back
//  until the server closed or 3 s passed (the caller frees it).
static char *
s_test_exchange (uint16_t port, const char *request, size_t size, int pause_ms, size_t *got)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    for (size_t at = 0; at < size; ) {
        ssize_t n = send (fd, request + at, size - at, MSG_NOSIGNAL);
        if (n <= 0)
            break;              //  the front may close before it read everything
        at += (size_t) n;
    }
    if (pause_ms)
        zclock_sleep (pause_ms);
    size_t cap = 2 * 1024 * 1024, len = 0;
    char *out = (char *) malloc (cap + 1);
    int64_t until = zclock_mono () + 3000;
    while (len < cap && zclock_mono () < until) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll (&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv (fd, out + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    out [len] = 0;
    close (fd);
    *got = len;
    return out;
}

//  The response starting at text is STATUS with a JSON error of CODE (and a body unless
//  no_body), Connection: close. Returns where it ends.
static const char *
s_test_json_error (const char *text, int status, const char *code, bool no_body)
{
    char line [32];
    snprintf (line, sizeof line, "HTTP/1.1 %d ", status);
    assert (text && strncmp (text, line, strlen (line)) == 0);
    const char *end = strstr (text, "\r\n\r\n");
    assert (end);
    assert (strstr (text, "Content-Type: application/json\r\n") < end);
    assert (strstr (text, "Connection: close\r\n") < end);
    const char *cl = strstr (text, "Content-Length: ");
    assert (cl && cl < end);
    size_t length = strtoul (cl + 16, NULL, 10);
    end += 4;
    if (no_body) {
        assert (*end == 0);
        return end;
    }
    assert (strlen (end) == length);
    char want [64];
    snprintf (want, sizeof want, "{\"error\":{\"code\":\"%s\",", code);
    assert (strncmp (end, want, strlen (want)) == 0);
    assert (strstr (end, "\"message\":\"") && strstr (end, "\"type\":\""));
    return end + length;
}

void
vdgx_front_test (bool verbose)
{
    printf (" * vdgx_front: ");
    if (!verbose)
        vdgx_log_set_level (VDGX_LOG_ERROR);
    s_test_server_t server;
    memset (&server, 0, sizeof server);
    pthread_mutex_init (&server.lock, NULL);
    server.resumer = zactor_new (s_test_resumer, &server);
    assert (server.resumer);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    char err [256];
    //  Two relay threads, each with its server; at most 4 connections to them.
    server.front = vdgx_front_new ((struct sockaddr *) &sa, sizeof sa, 64, 16384, 2, 4, 30000, s_test_start,
                                   &server, err, sizeof err);
    assert (server.front);
    assert (vdgx_front_start (server.front, err, sizeof err) == 0);
    uint16_t port = vdgx_front_port (server.front);
    assert (port);
    size_t got;

    //  A valid request reaches the server with the client's address.
    const char *one = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *out = s_test_exchange (port, one, strlen (one), 0, &got);
    if (verbose)
        fprintf (stderr, "\n%zu bytes: %s\n", got, out);
    assert (strncmp (out, "HTTP/1.1 200", 12) == 0 && strstr (out, "\r\n\r\nok /a 127.0.0.1 0"));
    free (out);

    //  Pipelined: two answers in order, then the third (HTTP/2.0) refused in JSON.
    const char *three = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
                        "GET /3 HTTP/2.0\r\nHost: x\r\n\r\n";
    out = s_test_exchange (port, three, strlen (three), 0, &got);
    if (verbose)
        fprintf (stderr, "\n%zu bytes: %s\n", got, out);
    const char *first = strstr (out, "ok /1 127.0.0.1 0"), *second = strstr (out, "ok /2 127.0.0.1 4");
    assert (first && second && first < second);
    assert (strstr (second, "HTTP/1.1 505 "));
    s_test_json_error (strstr (second, "HTTP/1.1 505 "), 505, "http_version_not_supported", false);
    free (out);

    //  Chunked: a valid body goes through; a broken one is refused after its head went.
    const char *chunked = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                          "POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n";
    out = s_test_exchange (port, chunked, strlen (chunked), 0, &got);
    first = strstr (out, "ok /c 127.0.0.1 5");
    assert (first && strstr (first, "HTTP/1.1 400 "));
    s_test_json_error (strstr (first, "HTTP/1.1 400 "), 400, "invalid_chunk", false);
    assert (!strstr (out, "ok /d"));
    free (out);

    //  Headers over head_max: 431 without waiting for the rest (the rest is drained).
    size_t big_size = 80 * 1024;
    char *big = (char *) malloc (big_size + 64);
    int n = snprintf (big, big_size, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset (big + n, 'a', big_size - (size_t) n - 4);
    memcpy (big + big_size - 4, "\r\n\r\n", 4);
    out = s_test_exchange (port, big, big_size, 0, &got);
    s_test_json_error (out, 431, "headers_too_large", false);
    free (out);
    free (big);

    //  A refused HEAD has no body; a missing Host on HTTP/1.1 is refused.
    out = s_test_exchange (port, "HEAD / HTTP/1.1\r\n\r\n", 19, 0, &got);
    s_test_json_error (out, 400, "invalid_header", true);
    free (out);

    //  An early answer (the server closes without reading the body): relayed, not lost.
    size_t early_size = 600 * 1024;
    char *early = (char *) malloc (early_size);
    n = snprintf (early, early_size, "POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", early_size);
    memset (early + n, 'b', early_size - (size_t) n);
    out = s_test_exchange (port, early, early_size, 0, &got);
    assert (strncmp (out, "HTTP/1.1 413 ", 13) == 0 && strstr (out, "\r\n\r\ntoo large"));
    free (out);
    free (early);

    //  A large response to a slow reader arrives whole.
    const char *dl = "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    out = s_test_exchange (port, dl, strlen (dl), 300, &got);
    const char *body = strstr (out, "\r\n\r\n");
    assert (body && got - (size_t) (body + 4 - out) == 1024 * 1024);
    free (out);

    assert (vdgx_front_refused (server.front, 505) == 1);
    assert (vdgx_front_refused (server.front, 400) == 2);
    assert (vdgx_front_refused (server.front, 431) == 1);

    //  A suspended request is answered once another thread resumed it (the server's
    //  ITC wakes the relay thread), and the connection goes on with the next request.
    const char *later = "GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int64_t began = zclock_mono ();
    out = s_test_exchange (port, later, strlen (later), 0, &got);
    first = strstr (out, "ok /later 127.0.0.1 0");
    assert (first && strstr (first, "ok /b 127.0.0.1 0"));
    assert (zclock_mono () - began >= 50 && zclock_mono () - began < 2500);
    free (out);

    //  conn_max: the fifth connection at once is answered 503; one closed makes room.
    int kept [4];
    char answer [1024];
    for (int i = 0; i < 4; i++) {
        kept [i] = s_test_keep (port, answer, sizeof answer);
        assert (strstr (answer, "ok /keep 127.0.0.1 0"));
    }
    int extra = s_test_keep (port, answer, sizeof answer);
    s_test_json_error (answer, 503, "overloaded", false);
    close (extra);
    close (kept [0]);
    bool served = false;
    for (int tries = 0; tries < 40 && !served; tries++) {
        zclock_sleep (50);
        extra = s_test_keep (port, answer, sizeof answer);
        served = strstr (answer, "ok /keep 127.0.0.1 0") != NULL;
        close (extra);
    }
    assert (served);
    for (int i = 1; i < 4; i++)
        close (kept [i]);
    assert (vdgx_front_refused (server.front, 503) >= 1);

    //  No more handoffs: 503 with Retry-After.
    vdgx_front_quiesce (server.front);
    out = s_test_exchange (port, one, strlen (one), 0, &got);
    s_test_json_error (out, 503, "overloaded", false);
    assert (strstr (out, "Retry-After: 1\r\n"));
    free (out);

    vdgx_front_destroy (&server.front);
    assert (server.front == NULL);
    zactor_destroy (&server.resumer);
    pthread_mutex_destroy (&server.lock);
    printf ("OK\n");
}
