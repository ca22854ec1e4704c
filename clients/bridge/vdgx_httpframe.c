/*  vdgx_httpframe.c - HTTP/1.1 request framing, strictly (see vdgx_httpframe.h). */
#include "vdgx_httpframe.h"
#include <assert.h>
#include <ctype.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdarg.h>

typedef enum {
    P_START, P_START_LF,                            //  before a request line (empty lines)
    P_METHOD, P_TARGET, P_VERSION, P_LINE_LF,       //  the request line
    P_FIELD, P_NAME, P_VALUE, P_FIELD_LF, P_END_LF, //  header (or trailer) lines
    P_BODY,                                         //  Content-Length bytes
    P_SIZE, P_EXT, P_SIZE_LF, P_DATA, P_DATA_CR, P_DATA_LF,    //  chunks
    P_ERROR
} s_state_t;

typedef enum { F_OTHER, F_HOST, F_LENGTH, F_ENCODING, F_COOKIE } s_field_t;

#define S_CHUNK_SIZE_MAX    ((uint64_t) 1 << 60)
#define S_LENGTH_DIGITS_MAX 18

struct _vdgx_httpframe_t {
    size_t head_max;
    s_state_t state;
    bool trailer;               //  the field lines are a trailer section
    bool body;                  //  past the current request's head
    uint64_t offset, committed, requests;
    uint64_t head_from;         //  committed before the last head ended
    //  The current request
    size_t head_bytes;          //  of the head (or of the trailer section)
    size_t method_len;
    bool head_method;           //  the method so far matches "HEAD"
    bool is_head;
    size_t target_len, args;
    bool query;
    char version [8];
    size_t version_len;
    bool http11;
    size_t fields, hosts, cookies;
    bool has_length, has_encoding;
    uint64_t length;
    //  The current field line
    s_field_t field;
    char name [24];             //  lower case, while it fits
    size_t name_len;
    char value [32];            //  lower case, trailing white space trimmed at the end
    size_t value_len;           //  bytes of the value (white space inside included)
    size_t value_ws;            //  white space after the last other byte
    bool value_inner_ws, value_nondigit;
    //  Body and chunks
    uint64_t remaining, chunk_size;
    size_t chunk_digits, chunk_line;
    //  Error
    int status;
    const char *code;
    char message [160];
};

vdgx_httpframe_t *
vdgx_httpframe_new (size_t head_max)
{
    assert (head_max >= 64);
    vdgx_httpframe_t *self = (vdgx_httpframe_t *) zmalloc (sizeof (vdgx_httpframe_t));
    self->head_max = head_max;
    self->state = P_START;
    return self;
}

void
vdgx_httpframe_destroy (vdgx_httpframe_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  RFC 9110 tchar.
static bool
s_tchar (uint8_t c)
{
    if (c >= '0' && c <= '9')
        return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return true;
    return c && strchr ("!#$%&'*+-.^_`|~", c) != NULL;
}

//  A byte of a field value or chunk extension: visible ASCII, obs-text, space or tab.
static bool
s_value_byte (uint8_t c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static int
s_fail (vdgx_httpframe_t *self, int status, const char *code, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_fail (vdgx_httpframe_t *self, int status, const char *code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->message, sizeof self->message, format, args);
    va_end (args);
    self->status = status;
    self->code = code;
    self->state = P_ERROR;
    return -1;
}

static int
s_bad_line (vdgx_httpframe_t *self, const char *what)
{
    return s_fail (self, 400, "invalid_request_line", "%s", what);
}

static int
s_bad_field (vdgx_httpframe_t *self, const char *what)
{
    return s_fail (self, 400, self->trailer? "invalid_chunk": "invalid_header", "%s%s",
                   self->trailer? "trailer: ": "", what);
}

static int
s_bad_chunk (vdgx_httpframe_t *self, const char *what)
{
    return s_fail (self, 400, "invalid_chunk", "%s", what);
}

//  A new request starts (nothing of it taken yet).
static void
s_request_reset (vdgx_httpframe_t *self)
{
    uint64_t offset = self->offset, committed = self->committed, requests = self->requests;
    uint64_t head_from = self->head_from;
    size_t head_max = self->head_max;
    memset (self, 0, sizeof *self);
    self->head_max = head_max;
    self->head_from = head_from;
    self->offset = offset;
    self->committed = committed;
    self->requests = requests;
    self->state = P_START;
}

static void
s_request_done (vdgx_httpframe_t *self)
{
    self->committed = self->offset;
    self->requests++;
    s_request_reset (self);
}

//  The request line's version, at its CR.
static int
s_version (vdgx_httpframe_t *self)
{
    const char *v = self->version;
    if (self->version_len != 8 || memcmp (v, "HTTP/", 5) || v [6] != '.'
    ||  v [5] < '0' || v [5] > '9' || v [7] < '0' || v [7] > '9')
        return s_bad_line (self, "the request line does not end in an HTTP version (HTTP/1.1)");
    if (v [5] != '1' || v [7] > '1')
        return s_fail (self, 505, "http_version_not_supported",
                       "HTTP/%c.%c is not supported: send HTTP/1.1 or HTTP/1.0", v [5], v [7]);
    self->http11 = v [7] == '1';
    return 0;
}

//  A field name ended (at its colon).
static void
s_name_done (vdgx_httpframe_t *self)
{
    self->field = F_OTHER;
    if (self->trailer || self->name_len >= sizeof self->name)
        return;
    self->name [self->name_len] = 0;
    if (streq (self->name, "host"))
        self->field = F_HOST;
    else
    if (streq (self->name, "content-length"))
        self->field = F_LENGTH;
    else
    if (streq (self->name, "transfer-encoding"))
        self->field = F_ENCODING;
    else
    if (streq (self->name, "cookie"))
        self->field = F_COOKIE;
}

//  One byte of a field name (the first included).
static int
s_name_byte (vdgx_httpframe_t *self, uint8_t c)
{
    if (c == ':') {
        s_name_done (self);
        self->state = P_VALUE;
        self->value_len = 0;
        self->value_ws = 0;
        self->value_inner_ws = false;
        self->value_nondigit = false;
        if (self->field == F_COOKIE)
            self->cookies++;
        return 0;
    }
    if (c == ' ' || c == '\t')
        return s_bad_field (self, "white space between a header name and its colon");
    if (!s_tchar (c))
        return s_bad_field (self, "a header line has no colon, or its name holds a byte that is not a token character");
    if (self->name_len < sizeof self->name)
        self->name [self->name_len] = (char) tolower (c);
    self->name_len++;
    return 0;
}

//  A field line ended (at its LF): what its value means for the framing.
static int
s_field_done (vdgx_httpframe_t *self)
{
    size_t len = self->value_len - self->value_ws;
    if (len < sizeof self->value)
        self->value [len] = 0;
    switch (self->field) {
        case F_HOST:
            if (++self->hosts > 1)
                return s_bad_field (self, "more than one Host header");
            break;
        case F_LENGTH:
            if (self->has_length)
                return s_bad_field (self, "more than one Content-Length header");
            self->has_length = true;
            //  libmicrohttpd keeps white space after a value: "5 " would be its own 400.
            if (len == 0 || self->value_nondigit || self->value_inner_ws || self->value_ws)
                return s_bad_field (self, "Content-Length is not a number of bytes");
            if (len > S_LENGTH_DIGITS_MAX)
                return s_fail (self, 413, "too_large", "Content-Length is over %d digits", S_LENGTH_DIGITS_MAX);
            self->length = strtoull (self->value, NULL, 10);
            break;
        case F_ENCODING:
            if (self->has_encoding)
                return s_bad_field (self, "more than one Transfer-Encoding header");
            self->has_encoding = true;
            //  libmicrohttpd compares the whole value ("chunked " is not chunked to it).
            if (self->value_ws)
                return s_bad_field (self, "white space after the Transfer-Encoding value");
            if (len >= sizeof self->value || !streq (self->value, "chunked"))
                return s_fail (self, 501, "unsupported_transfer_encoding",
                               "Transfer-Encoding must be chunked (no other coding is supported)");
            break;
        case F_COOKIE:
            if (self->cookies > VDGX_HTTPFRAME_COOKIES_MAX)
                return s_fail (self, 431, "headers_too_large", "more than %d cookies", VDGX_HTTPFRAME_COOKIES_MAX);
            break;
        default:
            break;
    }
    return 0;
}

//  The head ended (at its final LF).
static int
s_head_done (vdgx_httpframe_t *self)
{
    if (self->http11 && self->hosts == 0)
        return s_bad_field (self, "an HTTP/1.1 request needs a Host header");
    if (self->has_encoding && self->has_length)
        return s_bad_field (self, "a request has Content-Length or Transfer-Encoding, not both");
    if (self->has_encoding && !self->http11)
        return s_bad_field (self, "Transfer-Encoding needs HTTP/1.1");
    self->head_from = self->committed;
    self->committed = self->offset;
    self->body = true;
    if (self->has_encoding) {
        self->state = P_SIZE;
        self->chunk_size = 0;
        self->chunk_digits = 0;
        self->chunk_line = 0;
    }
    else
    if (self->length) {
        self->state = P_BODY;
        self->remaining = self->length;
    }
    else {
        bool is_head = self->is_head;
        s_request_done (self);
        self->is_head = is_head;    //  until the next request starts
    }
    return 0;
}

//  One byte of a head or trailer section. Returns 1 when the head ended, 0 to go on, -1.
static int
s_head_byte (vdgx_httpframe_t *self, uint8_t c)
{
    size_t limit = self->trailer? VDGX_HTTPFRAME_TRAILER_MAX: self->head_max;
    if (++self->head_bytes > limit) {
        if (self->trailer)
            return s_fail (self, 431, "headers_too_large", "the trailer section is over %d bytes",
                           VDGX_HTTPFRAME_TRAILER_MAX);
        if (self->state <= P_LINE_LF)
            return s_fail (self, 414, "uri_too_long", "the request line is over %zu bytes", self->head_max);
        return s_fail (self, 431, "headers_too_large", "the request line and headers are over %zu bytes",
                       self->head_max);
    }
    switch (self->state) {
        case P_START:
            if (c == '\r') {
                self->state = P_START_LF;
                return 0;
            }
            if (!s_tchar (c))
                return s_bad_line (self, "the request line does not start with a method");
            self->state = P_METHOD;
            self->is_head = false;
            self->method_len = 1;
            self->head_method = c == 'H';
            return 0;
        case P_START_LF:
            if (c != '\n')
                return s_bad_line (self, "a CR without LF before the request line");
            self->state = P_START;
            return 0;
        case P_METHOD:
            if (c == ' ') {
                self->is_head = self->head_method && self->method_len == 4;
                self->state = P_TARGET;
                return 0;
            }
            if (!s_tchar (c))
                return s_bad_line (self, "the method is not a token (letters, digits, !#$%&'*+-.^_`|~)");
            self->head_method = self->head_method && self->method_len < 4 && c == "HEAD" [self->method_len];
            self->method_len++;
            return 0;
        case P_TARGET:
            if (c == ' ') {
                if (self->target_len == 0)
                    return s_bad_line (self, "the request line has no target (one space between its parts)");
                self->state = P_VERSION;
                return 0;
            }
            if (c < 0x21 || c > 0x7e)
                return s_bad_line (self, c == '\r' || c == '\n'? "the request line has no HTTP version"
                                   : "the request target holds a byte that is not visible ASCII");
            self->target_len++;
            if (c == '?' && !self->query) {
                self->query = true;
                self->args = 1;
            }
            else
            if (c == '&' && self->query && ++self->args > VDGX_HTTPFRAME_ARGS_MAX)
                return s_fail (self, 414, "uri_too_long", "the query has more than %d arguments",
                               VDGX_HTTPFRAME_ARGS_MAX);
            return 0;
        case P_VERSION:
            if (c == '\r') {
                if (s_version (self))
                    return -1;
                self->state = P_LINE_LF;
                return 0;
            }
            if (c < 0x21 || c > 0x7e)
                return s_bad_line (self, "the request line does not end in an HTTP version (HTTP/1.1)");
            if (self->version_len < sizeof self->version)
                self->version [self->version_len] = (char) c;
            self->version_len++;
            return 0;
        case P_LINE_LF:
            if (c != '\n')
                return s_bad_line (self, "a CR without LF in the request line");
            self->state = P_FIELD;
            return 0;
        case P_FIELD:
            if (c == '\r') {
                self->state = P_END_LF;
                return 0;
            }
            if (c == ' ' || c == '\t')
                return s_bad_field (self, "a header line starts with white space (folded lines are not accepted)");
            if (!s_tchar (c))
                return s_bad_field (self, "a header name holds a byte that is not a token character");
            if (++self->fields > (self->trailer? VDGX_HTTPFRAME_TRAILERS_MAX: VDGX_HTTPFRAME_FIELDS_MAX)) {
                if (self->trailer)
                    return s_fail (self, 431, "headers_too_large", "more than %d trailer lines",
                                   VDGX_HTTPFRAME_TRAILERS_MAX);
                return s_fail (self, 431, "headers_too_large", "more than %d header lines",
                               VDGX_HTTPFRAME_FIELDS_MAX);
            }
            self->state = P_NAME;
            self->name_len = 0;
            return s_name_byte (self, c);
        case P_NAME:
            return s_name_byte (self, c);
        case P_VALUE:
            if (c == '\r') {
                self->state = P_FIELD_LF;
                return 0;
            }
            if (!s_value_byte (c))
                return s_bad_field (self, "a header value holds a control byte");
            if (c == ' ' || c == '\t') {
                if (self->value_len == 0)
                    return 0;       //  leading white space
                self->value_ws++;
            }
            else {
                if (self->value_ws)
                    self->value_inner_ws = true;
                self->value_ws = 0;
                if (c < '0' || c > '9')
                    self->value_nondigit = true;
                if (self->field == F_COOKIE && (c == ';' || c == ',')
                &&  ++self->cookies > VDGX_HTTPFRAME_COOKIES_MAX)
                    return s_fail (self, 431, "headers_too_large", "more than %d cookies",
                                   VDGX_HTTPFRAME_COOKIES_MAX);
            }
            if (self->value_len < sizeof self->value)
                self->value [self->value_len] = (char) tolower (c);
            self->value_len++;
            return 0;
        case P_FIELD_LF:
            if (c != '\n')
                return s_bad_field (self, "a CR without LF in a header line");
            if (s_field_done (self))
                return -1;
            self->state = P_FIELD;
            return 0;
        case P_END_LF:
            if (c != '\n')
                return s_bad_field (self, "a CR without LF at the end of the headers");
            if (self->trailer) {
                s_request_done (self);
                return 0;
            }
            return s_head_done (self) == 0? 1: -1;
        default:
            assert (false);
            return -1;
    }
}

//  One byte of a chunk size line or of the CRLF after chunk data. Returns 0 or -1.
static int
s_chunk_byte (vdgx_httpframe_t *self, uint8_t c)
{
    if (self->state != P_DATA_CR && self->state != P_DATA_LF
    &&  ++self->chunk_line > VDGX_HTTPFRAME_CHUNK_LINE_MAX)
        return s_fail (self, 400, "invalid_chunk", "a chunk size line is over %d bytes",
                       VDGX_HTTPFRAME_CHUNK_LINE_MAX);
    switch (self->state) {
        case P_SIZE:
            if (isxdigit (c)) {
                int v = c <= '9'? c - '0': (c | 0x20) - 'a' + 10;
                self->chunk_size = self->chunk_size * 16 + (uint64_t) v;
                self->chunk_digits++;
                if (self->chunk_size >= S_CHUNK_SIZE_MAX)
                    return s_bad_chunk (self, "a chunk size is over 2^60 bytes");
                return 0;
            }
            if (self->chunk_digits == 0)
                return s_bad_chunk (self, "a chunk does not start with its size in hexadecimal");
            if (c == ';') {
                self->state = P_EXT;
                return 0;
            }
            if (c == '\r') {
                self->state = P_SIZE_LF;
                return 0;
            }
            return s_bad_chunk (self, "a chunk size is not hexadecimal, or is not followed by ';' or CRLF");
        case P_EXT:
            if (c == '\r') {
                self->state = P_SIZE_LF;
                return 0;
            }
            if (!s_value_byte (c))
                return s_bad_chunk (self, "a chunk extension holds a control byte");
            return 0;
        case P_SIZE_LF:
            if (c != '\n')
                return s_bad_chunk (self, "a CR without LF in a chunk size line");
            self->committed = self->offset;
            if (self->chunk_size == 0) {
                //  The last chunk: a trailer section follows.
                self->state = P_FIELD;
                self->trailer = true;
                self->head_bytes = 0;
                self->fields = 0;
            }
            else {
                self->state = P_DATA;
                self->remaining = self->chunk_size;
            }
            return 0;
        case P_DATA_CR:
            if (c != '\r')
                return s_bad_chunk (self, "chunk data is not followed by CRLF (the chunk is longer than its size)");
            self->state = P_DATA_LF;
            return 0;
        case P_DATA_LF:
            if (c != '\n')
                return s_bad_chunk (self, "chunk data is not followed by CRLF");
            self->committed = self->offset;
            self->state = P_SIZE;
            self->chunk_size = 0;
            self->chunk_digits = 0;
            self->chunk_line = 0;
            return 0;
        default:
            assert (false);
            return -1;
    }
}

size_t
vdgx_httpframe_feed (vdgx_httpframe_t *self, const void *data, size_t size, vdgx_httpframe_event_t *event)
{
    assert (self && (data || !size) && event);
    const uint8_t *bytes = (const uint8_t *) data;
    size_t i = 0;
    *event = VDGX_HTTPFRAME_MORE;
    while (i < size && self->state != P_ERROR) {
        if (self->state == P_BODY || self->state == P_DATA) {
            uint64_t n = size - i < self->remaining? size - i: self->remaining;
            i += n;
            self->offset += n;
            self->committed = self->offset;
            self->remaining -= n;
            if (self->remaining == 0) {
                if (self->state == P_BODY)
                    s_request_done (self);
                else
                    self->state = P_DATA_CR;
            }
            continue;
        }
        //  The byte counts as taken while it is looked at (committed includes it).
        self->offset++;
        int rc;
        if (self->state >= P_SIZE)
            rc = s_chunk_byte (self, bytes [i]);
        else
            rc = s_head_byte (self, bytes [i]);
        if (rc < 0) {
            self->offset--;
            break;
        }
        i++;
        if (rc == 1) {
            *event = VDGX_HTTPFRAME_HEAD;
            return i;
        }
    }
    if (self->state == P_ERROR)
        *event = VDGX_HTTPFRAME_ERROR;
    return i;
}

uint64_t
vdgx_httpframe_offset (vdgx_httpframe_t *self)
{
    assert (self);
    return self->offset;
}

uint64_t
vdgx_httpframe_committed (vdgx_httpframe_t *self)
{
    assert (self);
    return self->committed;
}

uint64_t
vdgx_httpframe_head_from (vdgx_httpframe_t *self)
{
    assert (self);
    return self->head_from;
}

uint64_t
vdgx_httpframe_requests (vdgx_httpframe_t *self)
{
    assert (self);
    return self->requests;
}

bool
vdgx_httpframe_idle (vdgx_httpframe_t *self)
{
    assert (self);
    return self->state == P_START;
}

bool
vdgx_httpframe_in_body (vdgx_httpframe_t *self)
{
    assert (self);
    return self->body;
}

bool
vdgx_httpframe_is_head (vdgx_httpframe_t *self)
{
    assert (self);
    return self->is_head;
}

int
vdgx_httpframe_status (vdgx_httpframe_t *self)
{
    assert (self);
    return self->state == P_ERROR? self->status: 0;
}

const char *
vdgx_httpframe_code (vdgx_httpframe_t *self)
{
    assert (self);
    return self->state == P_ERROR? self->code: "";
}

const char *
vdgx_httpframe_message (vdgx_httpframe_t *self)
{
    assert (self);
    return self->state == P_ERROR? self->message: "";
}

//  ---------------------------------------------------------------------------------------
//  Selftest

//  Parses text in one go, then byte by byte: both must agree. Returns the status (0 for
//  no error) and the complete requests through *requests.
static int
s_parse (const char *text, size_t len, uint64_t *requests, uint64_t *committed)
{
    int status [2];
    uint64_t reqs [2], comm [2];
    for (int pass = 0; pass < 2; pass++) {
        vdgx_httpframe_t *p = vdgx_httpframe_new (1024);
        size_t at = 0;
        vdgx_httpframe_event_t ev = VDGX_HTTPFRAME_MORE;
        while (at < len && ev != VDGX_HTTPFRAME_ERROR) {
            size_t step = pass == 0? len - at: 1;
            size_t n = vdgx_httpframe_feed (p, text + at, step, &ev);
            assert (n <= step);
            assert (ev == VDGX_HTTPFRAME_ERROR || n > 0);
            assert (vdgx_httpframe_committed (p) <= vdgx_httpframe_offset (p));
            at += n;
        }
        status [pass] = vdgx_httpframe_status (p);
        reqs [pass] = vdgx_httpframe_requests (p);
        comm [pass] = vdgx_httpframe_committed (p);
        if (status [pass])
            assert (*vdgx_httpframe_code (p) && *vdgx_httpframe_message (p));
        vdgx_httpframe_destroy (&p);
        assert (p == NULL);
    }
    assert (status [0] == status [1] && reqs [0] == reqs [1] && comm [0] == comm [1]);
    if (requests)
        *requests = reqs [0];
    if (committed)
        *committed = comm [0];
    return status [0];
}

void
vdgx_httpframe_test (bool verbose)
{
    printf (" * vdgx_httpframe: ");
#   define T(text) text, sizeof (text) - 1
    static const struct {
        const char *text;
        size_t len;
        int status;             //  0: valid
        uint64_t requests;      //  complete requests (before the error, if any)
    } cases [] = {
        { T ("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0, 1 },
        { T ("\r\n\r\nGET /a?b=1&c HTTP/1.0\r\n\r\n"), 0, 1 },
        { T ("HEAD / HTTP/1.1\r\nHost: x\r\nX-A:\r\nX-B: \t v  \r\n\r\n"), 0, 1 },
        { T ("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: y\r\n\r\n"), 0, 2 },
        { T ("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
          "3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n"), 0, 1 },
        { T ("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n1234567"), 0, 1 },
        //  Version
        { T ("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505, 0 },
        { T ("GET / HTTP/9.9\r\n\r\n"), 505, 0 },
        { T ("GET / HTTP/0.9\r\n\r\n"), 505, 0 },
        { T ("GET / HTTP/1.2\r\n\r\n"), 505, 0 },
        { T ("GET / HTTP/1.10\r\n\r\n"), 400, 0 },
        { T ("GET / http/1.1\r\n\r\n"), 400, 0 },
        { T ("GET /\r\n\r\n"), 400, 0 },
        //  Request line
        { T ("GARBAGE\r\n\r\n"), 400, 0 },
        { T ("\x16\x03\x01\x02\x00"), 400, 0 },
        { T ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, 0 },
        { T ("GET / x HTTP/1.1\r\nHost: x\r\n\r\n"), 400, 0 },
        { T ("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"), 400, 0 },
        { T ("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n"), 400, 0 },
        { T ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, 0 },
        { T ("GET / HTTP/1.1\nHost: x\n\n"), 400, 0 },
        { T ("GET / HTTP/1.1\rHost: x\r\n\r\n"), 400, 0 },
        //  Headers
        { T ("GET / HTTP/1.1\r\n\r\n"), 400, 0 },
        { T ("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"), 400, 0 },
        { T ("GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n"), 400, 0 },
        { T ("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400, 0 },
        { T ("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"), 400, 0 },
        { T ("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"), 400, 0 },
        { T ("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"), 400, 0 },
        { T ("GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 \r\n\r\nx"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"), 413, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), 400, 0 },
        { T ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, 0 },
        //  Chunks
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n"), 400, 0 },
        { T ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n"), 400, 0 },
        //  A second request after a good one
        { T ("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/3.0\r\n\r\n"), 505, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        uint64_t requests = 0;
        int status = s_parse (cases [i].text, cases [i].len, &requests, NULL);
        if (verbose || status != cases [i].status || requests != cases [i].requests)
            printf ("\n   case %zu: status %d (want %d), requests %" PRIu64 " (want %" PRIu64 ")",
                    i, status, cases [i].status, requests, cases [i].requests);
        assert (status == cases [i].status && requests == cases [i].requests);
    }
    //  Limits: head_max (414 in the request line, 431 after), header lines, arguments, cookies.
    char big [4096];
    snprintf (big, sizeof big, "GET /%01100d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert (s_parse (big, strlen (big), NULL, NULL) == 414);
    snprintf (big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\nX: %01100d\r\n\r\n", 0);
    assert (s_parse (big, strlen (big), NULL, NULL) == 431);
    strcpy (big, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < VDGX_HTTPFRAME_FIELDS_MAX; i++)
        strcat (big, "a:\r\n");
    assert (s_parse (big, strlen (big), NULL, NULL) == 431);
    strcpy (big, "GET /?");
    for (int i = 0; i < VDGX_HTTPFRAME_ARGS_MAX; i++)
        strcat (big, "&");
    assert (s_parse (big, strlen (big), NULL, NULL) == 414);
    strcpy (big, "GET / HTTP/1.1\r\nHost: x\r\nCookie: ");
    for (int i = 0; i < VDGX_HTTPFRAME_COOKIES_MAX; i++)
        strcat (big, "a;");
    assert (s_parse (big, strlen (big), NULL, NULL) == 431);
    //  committed: a head only when whole; body bytes at once; a chunk line when whole.
    uint64_t committed = 0;
    const char *partial = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
    assert (s_parse (partial, strlen (partial), NULL, &committed) == 0);
    assert (committed == strlen (partial));
    partial = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n1f";
    assert (s_parse (partial, strlen (partial), NULL, &committed) == 0);
    assert (committed == strlen (partial) - 2);
    assert (s_parse ("GET / HTTP/1.1\r\nHost: x\r\n", 25, NULL, &committed) == 0 && committed == 0);
    assert (s_parse ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, NULL, &committed) == 0 && committed == 27);
    partial = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\r\n";
    assert (s_parse (partial, strlen (partial), NULL, &committed) == 0 && committed == strlen (partial));
    //  The parser stops after each head; HEAD is remembered for the answer.
    vdgx_httpframe_t *p = vdgx_httpframe_new (1024);
    const char *two = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/7.0\r\n";
    vdgx_httpframe_event_t ev;
    size_t n = vdgx_httpframe_feed (p, two, strlen (two), &ev);
    assert (ev == VDGX_HTTPFRAME_HEAD && n == 28 && vdgx_httpframe_is_head (p) && vdgx_httpframe_idle (p));
    n += vdgx_httpframe_feed (p, two + n, strlen (two) - n, &ev);
    assert (ev == VDGX_HTTPFRAME_ERROR && vdgx_httpframe_status (p) == 505 && !vdgx_httpframe_is_head (p));
    assert (!vdgx_httpframe_in_body (p));
    assert (vdgx_httpframe_feed (p, "x", 1, &ev) == 0 && ev == VDGX_HTTPFRAME_ERROR);
    vdgx_httpframe_destroy (&p);
    //  A body and the next head in one feed: the body is committed before that head.
    p = vdgx_httpframe_new (1024);
    const char *body_then_head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    n = vdgx_httpframe_feed (p, body_then_head, strlen (body_then_head), &ev);
    assert (ev == VDGX_HTTPFRAME_HEAD && n == 47 && vdgx_httpframe_head_from (p) == 0);
    n += vdgx_httpframe_feed (p, body_then_head + n, strlen (body_then_head) - n, &ev);
    assert (ev == VDGX_HTTPFRAME_HEAD && n == strlen (body_then_head));
    assert (vdgx_httpframe_head_from (p) == 49 && vdgx_httpframe_committed (p) == n);
    vdgx_httpframe_destroy (&p);
    printf ("OK\n");
}
