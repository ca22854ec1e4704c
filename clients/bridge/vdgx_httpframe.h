/*  vdgx_httpframe.h - an HTTP/1.1 request-framing parser: decides, byte by byte and request
    after request on one connection, which bytes form valid requests, before libmicrohttpd
    sees any of them (vdgx_front).

    It checks only what frames a request, strictly (RFC 9112), and exactly what
    libmicrohttpd 0.9.75 would otherwise answer itself with its own HTML (docs/SECURITY.md):
    - the request line: a token method, one space, a target of visible ASCII, one space,
      HTTP/1.0 or HTTP/1.1 (another HTTP/d.d: 505), CRLF;
    - header lines: a token name, a colon right after it, a value without control bytes
      (tab allowed), CRLF; no line folding; at most head_max bytes for the request line and
      headers (414 while still in the request line, else 431), VDGX_HTTPFRAME_FIELDS_MAX
      header lines, VDGX_HTTPFRAME_ARGS_MAX query arguments, VDGX_HTTPFRAME_COOKIES_MAX
      cookies (libmicrohttpd keeps a record of each in its connection memory);
    - Host exactly once on HTTP/1.1 (at most once on 1.0); Content-Length digits only, once,
      under 10^18 (413 above); Transfer-Encoding only "chunked" (501 for another coding),
      once, not with Content-Length, not on HTTP/1.0;
    - chunked bodies: hex size (below 2^60) then ';' extensions or CRLF, data, CRLF, the last
      chunk, trailer lines like header lines (VDGX_HTTPFRAME_TRAILER_MAX bytes), CRLF.
    Bare LF line ends are refused (400) so that no two parsers can disagree on a line end.

    The parser copies nothing: it keeps a few counters. `committed` is the stream offset up
    to which the bytes form complete, valid parts (a whole head, body bytes, a whole chunk
    size line, a whole trailer section): those may be passed on; the rest must wait.

        vdgx_httpframe_t *p = vdgx_httpframe_new (16384);
        vdgx_httpframe_event_t ev;
        size_t n = vdgx_httpframe_feed (p, data, size, &ev);  //  stops after each head
        if (ev == VDGX_HTTPFRAME_ERROR)
            answer (vdgx_httpframe_status (p), vdgx_httpframe_code (p), vdgx_httpframe_message (p));
*/
#ifndef VDGX_HTTPFRAME_H_INCLUDED
#define VDGX_HTTPFRAME_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_HTTPFRAME_FIELDS_MAX       100     //  header lines in a head
#define VDGX_HTTPFRAME_ARGS_MAX         100     //  query arguments ('&'-separated)
#define VDGX_HTTPFRAME_COOKIES_MAX      100     //  cookies (';' or ',' separated)
#define VDGX_HTTPFRAME_CHUNK_LINE_MAX   1024    //  a chunk size line with its extensions
#define VDGX_HTTPFRAME_TRAILER_MAX      4096    //  a trailer section, bytes
#define VDGX_HTTPFRAME_TRAILERS_MAX     32      //  trailer lines

typedef struct _vdgx_httpframe_t vdgx_httpframe_t;

typedef enum {
    VDGX_HTTPFRAME_MORE,        //  everything given was taken; more is needed
    VDGX_HTTPFRAME_HEAD,        //  a request's head ended with the last byte taken
    VDGX_HTTPFRAME_ERROR        //  the stream is invalid (sticky): see status, code, message
} vdgx_httpframe_event_t;

//  head_max: bytes allowed for a request line and its headers (CRLFs included).
vdgx_httpframe_t *vdgx_httpframe_new (size_t head_max);
void vdgx_httpframe_destroy (vdgx_httpframe_t **self_p);

//  Parses up to size bytes; returns how many it took (fewer when a head ends: the caller
//  decides when to go on). After an error it takes nothing more.
size_t vdgx_httpframe_feed (vdgx_httpframe_t *self, const void *data, size_t size,
                            vdgx_httpframe_event_t *event);
//  Bytes taken so far, and the offset up to which they are valid and may be passed on.
uint64_t vdgx_httpframe_offset (vdgx_httpframe_t *self);
uint64_t vdgx_httpframe_committed (vdgx_httpframe_t *self);
//  At a head's end: the committed offset before it (the bytes of the requests before it,
//  which may be passed on while the head waits).
uint64_t vdgx_httpframe_head_from (vdgx_httpframe_t *self);
//  Complete requests (head and body) so far.
uint64_t vdgx_httpframe_requests (vdgx_httpframe_t *self);
//  Between requests: nothing of a next request taken yet (leading empty lines aside).
bool vdgx_httpframe_idle (vdgx_httpframe_t *self);
//  The current request's head has ended (the parser is in its body, chunks or trailers;
//  after an error: the error is in those).
bool vdgx_httpframe_in_body (vdgx_httpframe_t *self);
//  The current (or refused) request's method is HEAD: an answer to it has no body.
bool vdgx_httpframe_is_head (vdgx_httpframe_t *self);
//  After VDGX_HTTPFRAME_ERROR: the HTTP status (400, 413, 414, 431, 501, 505), a short
//  machine code and a sentence.
int vdgx_httpframe_status (vdgx_httpframe_t *self);
const char *vdgx_httpframe_code (vdgx_httpframe_t *self);
const char *vdgx_httpframe_message (vdgx_httpframe_t *self);

void vdgx_httpframe_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
