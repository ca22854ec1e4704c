/*  libFuzzer target: any bytes through the front door's request-framing parser
    (vdgx_httpframe), then every request it accepted through a real libmicrohttpd.

    1. The parser, fed the input in one piece, in pieces of a size the first byte picks, and
       byte by byte, must agree on the error, the complete requests and the committed
       offset; committed never passes the offset, an error has a status the front answers.
    2. Differential: each complete request the parser accepted goes alone, on a fresh
       connection, to libmicrohttpd set up as in the bridge (no listening socket, the
       front's connection memory) whose handler answers every request 200 with
       "X-Front-Fuzz: 1". libmicrohttpd must hand it to the handler: never answer it
       itself (its HTML 4xx/5xx: what the front exists to prevent) nor close the
       connection. */
#include "vdgx_front.h"
#include "vdgx_httpframe.h"
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define S_REQUESTS_MAX 4

static void
s_fail (const char *what, const uint8_t *request, size_t size, const char *answer)
{
    fprintf (stderr, "fuzz_httpframe: %s\n--- request (%zu bytes):\n%.*s\n--- answer:\n%s\n", what, size,
             (int) size, (const char *) request, answer? answer: "(none)");
    abort ();
}

static void
s_completed (void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void) cls; (void) conn; (void) toe;
    *con_cls = NULL;
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) cls; (void) url; (void) method; (void) version; (void) upload_data;
    static int marker;
    if (!*con_cls) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (resp, "X-Front-Fuzz", "1");
    enum MHD_Result rc = MHD_queue_response (conn, 200, resp);
    MHD_destroy_response (resp);
    return rc;
}

static struct MHD_Daemon *
s_daemon (void)
{
    static struct MHD_Daemon *daemon;
    if (!daemon)
        daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET
                                   | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_access, NULL,
                                   MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL,
                                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) VDGX_FRONT_SERVER_MEMORY,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10, MHD_OPTION_END);
    if (!daemon)
        abort ();
    return daemon;
}

//  One request alone on a fresh connection: libmicrohttpd's handler must answer it.
static void
s_through_server (const uint8_t *request, size_t size)
{
    int pair [2];
    if (socketpair (AF_UNIX, SOCK_STREAM, 0, pair))
        abort ();
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (40000) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (MHD_add_connection (s_daemon (), pair [1], (struct sockaddr *) &sa, sizeof sa) != MHD_YES)
        abort ();
    for (size_t at = 0; at < size; ) {
        ssize_t n = send (pair [0], request + at, size - at, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;           //  libFuzzer's timer signals
        if (n <= 0)
            s_fail ("libmicrohttpd closed the connection while the request was sent", request, size, NULL);
        at += (size_t) n;
    }
    char answer [4096];
    size_t len = 0;
    const char *head_end = NULL;
    while (len < sizeof answer - 1) {
        struct pollfd p = { .fd = pair [0], .events = POLLIN };
        int ready = poll (&p, 1, 5000);
        if (ready < 0 && errno == EINTR)
            continue;           //  libFuzzer's timer signals
        if (ready <= 0)
            break;
        ssize_t n = recv (pair [0], answer + len, sizeof answer - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t) n;
        answer [len] = 0;
        //  An interim 100 Continue (Expect: 100-continue) comes before the answer.
        const char *start = answer;
        if (strncmp (start, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0)
            start += 25;
        if ((head_end = strstr (start, "\r\n\r\n")))
            break;
    }
    answer [len] = 0;
    close (pair [0]);
    const char *start = strncmp (answer, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0? answer + 25: answer;
    if (!head_end || (strncmp (start, "HTTP/1.1 200 ", 13) && strncmp (start, "HTTP/1.0 200 ", 13))
    ||  !strstr (start, "X-Front-Fuzz: 1\r\n"))
        s_fail ("a request the front accepts was not handed to the handler", request, size, answer);
}

typedef struct {
    int status;
    uint64_t requests, committed, offset;
    size_t ends [S_REQUESTS_MAX];   //  where complete requests end (byte-by-byte pass)
    size_t nends;
} s_run_t;

//  piece 0: all at once; else pieces of that size (1: byte by byte, recording request ends).
static void
s_run (const uint8_t *data, size_t size, size_t piece, s_run_t *run)
{
    memset (run, 0, sizeof *run);
    vdgx_httpframe_t *p = vdgx_httpframe_new (16384);
    size_t at = 0;
    vdgx_httpframe_event_t ev = VDGX_HTTPFRAME_MORE;
    while (at < size && ev != VDGX_HTTPFRAME_ERROR) {
        size_t step = piece && piece < size - at? piece: size - at;
        uint64_t before = vdgx_httpframe_requests (p);
        size_t n = vdgx_httpframe_feed (p, data + at, step, &ev);
        if (n > step || (n == 0 && ev != VDGX_HTTPFRAME_ERROR))
            abort ();
        if (vdgx_httpframe_committed (p) > vdgx_httpframe_offset (p))
            abort ();
        at += n;
        if (piece == 1 && vdgx_httpframe_requests (p) > before && run->nends < S_REQUESTS_MAX)
            run->ends [run->nends++] = at;
    }
    run->status = vdgx_httpframe_status (p);
    run->requests = vdgx_httpframe_requests (p);
    run->committed = vdgx_httpframe_committed (p);
    run->offset = vdgx_httpframe_offset (p);
    if (run->status) {
        int s = run->status;
        if ((s != 400 && s != 413 && s != 414 && s != 431 && s != 501 && s != 505)
        ||  !*vdgx_httpframe_code (p) || !*vdgx_httpframe_message (p))
            abort ();
    }
    vdgx_httpframe_destroy (&p);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_run_t whole, pieces, bytes;
    s_run (data, size, 0, &whole);
    s_run (data, size, size? (size_t) (data [0] % 61) + 2: 2, &pieces);
    s_run (data, size, 1, &bytes);
    if (whole.status != pieces.status || whole.status != bytes.status
    ||  whole.requests != pieces.requests || whole.requests != bytes.requests
    ||  whole.committed != pieces.committed || whole.committed != bytes.committed)
        abort ();
    size_t start = 0;
    for (size_t i = 0; i < bytes.nends; i++) {
        s_through_server (data + start, bytes.ends [i] - start);
        start = bytes.ends [i];
    }
    return 0;
}
