/*  vdgx_msg.c - VDGX/1 body codecs and Majordomo framing (PROTOCOL.md; see vdgx_msg.h). */
#include "vdgx_msg.h"
#include "vdgx_mp.h"
#include "vdgx_sha256.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Upper bounds that keep decoded numbers sane (PROTOCOL.md lists them).
#define S_BYTES_MAX     (1ULL << 50)        //  sizes and memory figures
#define S_TIME_MAX      1e11                //  epoch seconds / durations
#define S_SEED_MAX      ((uint64_t) INT64_MAX)
#define S_ARRAY_MAX     1000                //  jobs / models entries in one reply

//  ---------------------------------------------------------------------------------------
//  Small helpers

int
vdgx_pack_str (msgpack_packer *pk, const char *text)
{
    return vdgx_mp_pack_cstr (pk, text);
}

zframe_t *
vdgx_pack_frame (int (*pack) (const void *obj, msgpack_packer *pk), const void *obj)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    zframe_t *frame = NULL;
    if (pack (obj, &pk) == 0)
        frame = zframe_new (sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    return frame;
}

int
vdgx_unpack (msgpack_unpacked *result, const void *data, size_t size, vdgx_error_t *err)
{
    msgpack_unpacked_init (result);
    if (vdgx_mp_check (data, size, err))
        return -1;
    size_t off = 0;
    if (msgpack_unpack_next (result, data, size, &off) != MSGPACK_UNPACK_SUCCESS || off != size) {
        msgpack_unpacked_destroy (result);
        msgpack_unpacked_init (result);
        return vdgx_mp_error (err, "", "malformed msgpack");
    }
    return 0;
}

static int
s_kstr (msgpack_packer *pk, const char *key, const char *value)
{
    return vdgx_mp_pack_key (pk, key) | vdgx_mp_pack_cstr (pk, value);
}

static int
s_kuint (msgpack_packer *pk, const char *key, uint64_t value)
{
    return vdgx_mp_pack_key (pk, key) | msgpack_pack_uint64 (pk, value);
}

static int
s_kdbl (msgpack_packer *pk, const char *key, double value)
{
    return vdgx_mp_pack_key (pk, key) | msgpack_pack_double (pk, value);
}

static int
s_kbool (msgpack_packer *pk, const char *key, bool value)
{
    return vdgx_mp_pack_key (pk, key) | (value? msgpack_pack_true (pk): msgpack_pack_false (pk));
}

//  Generates vdgx_T_frame and vdgx_T_decode for a type with pack/decode_obj/clear.
#define S_FRAME_AND_DECODE(T) \
zframe_t * \
vdgx_##T##_frame (const vdgx_##T##_t *self) \
{ \
    msgpack_sbuffer sb; \
    msgpack_sbuffer_init (&sb); \
    msgpack_packer pk; \
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write); \
    zframe_t *frame = NULL; \
    if (vdgx_##T##_pack (self, &pk) == 0) \
        frame = zframe_new (sb.data, sb.size); \
    msgpack_sbuffer_destroy (&sb); \
    return frame; \
} \
int \
vdgx_##T##_decode (vdgx_##T##_t *self, const void *data, size_t size, vdgx_error_t *err) \
{ \
    vdgx_##T##_clear (self); \
    msgpack_unpacked up; \
    if (vdgx_unpack (&up, data, size, err)) \
        return -1; \
    int rc = vdgx_##T##_decode_obj (self, &up.data, err); \
    msgpack_unpacked_destroy (&up); \
    return rc; \
}

static bool
s_id_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == '-';
}

bool
vdgx_job_id_valid (const char *text)
{
    if (!text)
        return false;
    size_t i;
    for (i = 0; text [i]; i++)
        if (i >= VDGX_ID_MAX || !s_id_char (text [i]))
            return false;
    return i > 0;
}

//  Reads a job id field (1..64 of [A-Za-z0-9._-]).
static int
s_read_id (vdgx_mp_map_t *m, size_t index, bool required, char *buf)
{
    int rc = vdgx_mp_str (m, index, required, 1, VDGX_ID_MAX, buf, VDGX_ID_MAX + 1);
    if (rc == 1 && !vdgx_job_id_valid (buf))
        return vdgx_mp_fail (m, index, "job ids are 1..64 of A-Z, a-z, 0-9, '.', '_', '-'");
    return rc;
}

static int
s_read_model (vdgx_mp_map_t *m, size_t index, bool required, char *buf)
{
    int rc = vdgx_mp_str (m, index, required, 1, VDGX_MODEL_MAX, buf, VDGX_MODEL_MAX + 1);
    if (rc == 1 && !vdgx_model_name_valid (buf))
        return vdgx_mp_fail (m, index, "only a-z, 0-9, '.', '_' and '-' are allowed");
    return rc;
}

//  Printable ASCII without spaces (service names, identities).
static bool
s_printable (const char *text, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) text [i] <= 0x20 || (unsigned char) text [i] >= 0x7f)
            return false;
    return true;
}

static int
s_read_printable (vdgx_mp_map_t *m, size_t index, bool required, size_t min, size_t max,
                  char *buf, size_t bufsize)
{
    int rc = vdgx_mp_str (m, index, required, min, max, buf, bufsize);
    if (rc == 1 && !s_printable (buf, strlen (buf)))
        return vdgx_mp_fail (m, index, "only printable ASCII without spaces is allowed");
    return rc;
}

//  An optional attempt token (1..VDGX_TOKEN_MAX printable bytes) into buf [VDGX_TOKEN_MAX + 1].
static int
s_read_token (vdgx_mp_map_t *m, size_t index, char *buf)
{
    return s_read_printable (m, index, false, 1, VDGX_TOKEN_MAX, buf, VDGX_TOKEN_MAX + 1);
}

//  A field that must not be present in this variant of a map.
static int
s_forbid (vdgx_mp_map_t *m, size_t index, const char *why)
{
    if (vdgx_mp_value (m, index))
        return vdgx_mp_fail (m, index, "not allowed %s", why);
    return 0;
}

//  The ready prefix's three keys (ready_bytes, ready_frames, ready_seconds).
static int
s_ready_pack (const vdgx_ready_t *r, msgpack_packer *pk)
{
    return s_kuint (pk, "ready_bytes", r->bytes) | s_kuint (pk, "ready_frames", r->frames)
         | s_kdbl (pk, "ready_seconds", r->seconds);
}

//  Reads the three keys at kb, kb + 1, kb + 2: all or none. 0, or -1 (error set).
static int
s_ready_read (vdgx_mp_map_t *m, size_t kb, bool *has, vdgx_ready_t *r)
{
    int n = (vdgx_mp_value (m, kb) != NULL) + (vdgx_mp_value (m, kb + 1) != NULL)
          + (vdgx_mp_value (m, kb + 2) != NULL);
    *has = false;
    if (n == 0)
        return 0;
    for (size_t k = kb; k < kb + 3; k++)
        if (!vdgx_mp_value (m, k))
            return vdgx_mp_fail (m, k, "missing (ready_bytes, ready_frames and ready_seconds come together)");
    if (vdgx_mp_uint (m, kb, true, 1, S_BYTES_MAX, &r->bytes) < 0
    ||  vdgx_mp_u32 (m, kb + 1, true, 1, 1000000, &r->frames) < 0
    ||  vdgx_mp_double (m, kb + 2, true, 0, 86400, false, &r->seconds) < 0)
        return -1;
    *has = true;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Enumerations

static const char *s_job_states [] = {
    "queued", "running", "completed", "failed", "cancelled", "expired"
};
static const char *s_phases [] = {
    "queued", "loading", "encoding_text", "denoising", "decoding", "muxing", "done"
};
static const char *s_wstates [] = {
    "cold", "loading", "warm", "busy", "unloading", "draining"
};
static const char *s_control_ops [] = {
    "cancel", "unload", "drain", "ack", "drop", "resend"
};
static const char *s_jobcmds [] = {
    "submit", "status", "list", "cancel", "result", "delete", "unload", "models", "drain",
    "reset_limits"
};
static const char *s_error_codes [] = {
    VDGX_E_BAD_REQUEST, VDGX_E_UNKNOWN_MODEL, VDGX_E_NOT_FOUND, VDGX_E_QUEUE_FULL,
    VDGX_E_CONFLICT, VDGX_E_CANCELLED, VDGX_E_EXPIRED, VDGX_E_WORKER_FAILED, VDGX_E_INTERNAL,
    VDGX_E_UNAVAILABLE, VDGX_E_TOO_LARGE, VDGX_E_FORBIDDEN, VDGX_E_OUTPUT_MISSING
};
#define S_COUNT(a) (sizeof (a) / sizeof ((a) [0]))

static int
s_parse_name (const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp (name, names [i]) == 0)
            return (int) i;
    return -1;
}

const char *
vdgx_job_state_name (vdgx_job_state_t s)
{
    return (unsigned) s < S_COUNT (s_job_states)? s_job_states [s]: "?";
}

const char *
vdgx_phase_name (vdgx_phase_t p)
{
    return (unsigned) p < S_COUNT (s_phases)? s_phases [p]: "?";
}

const char *
vdgx_wstate_state_name (vdgx_wstate_state_t s)
{
    return (unsigned) s < S_COUNT (s_wstates)? s_wstates [s]: "?";
}

const char *
vdgx_control_op_name (vdgx_control_op_t op)
{
    return (unsigned) op < S_COUNT (s_control_ops)? s_control_ops [op]: "?";
}

const char *
vdgx_jobcmd_name (vdgx_jobcmd_type_t cmd)
{
    return (unsigned) cmd < S_COUNT (s_jobcmds)? s_jobcmds [cmd]: "?";
}

int
vdgx_job_state_parse (const char *name, vdgx_job_state_t *s)
{
    int i = s_parse_name (name, s_job_states, S_COUNT (s_job_states));
    if (i < 0)
        return -1;
    *s = (vdgx_job_state_t) i;
    return 0;
}

int
vdgx_phase_parse (const char *name, vdgx_phase_t *p)
{
    int i = s_parse_name (name, s_phases, S_COUNT (s_phases));
    if (i < 0)
        return -1;
    *p = (vdgx_phase_t) i;
    return 0;
}

int
vdgx_wstate_state_parse (const char *name, vdgx_wstate_state_t *s)
{
    int i = s_parse_name (name, s_wstates, S_COUNT (s_wstates));
    if (i < 0)
        return -1;
    *s = (vdgx_wstate_state_t) i;
    return 0;
}

bool
vdgx_job_state_is_final (vdgx_job_state_t s)
{
    return s == VDGX_JOB_COMPLETED || s == VDGX_JOB_FAILED || s == VDGX_JOB_CANCELLED
        || s == VDGX_JOB_EXPIRED;
}

static bool
s_state_has_error (vdgx_job_state_t s)
{
    return s == VDGX_JOB_FAILED || s == VDGX_JOB_CANCELLED || s == VDGX_JOB_EXPIRED;
}

//  ---------------------------------------------------------------------------------------
//  Majordomo framing

void
vdgx_mdp_init (vdgx_mdp_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->version = 2;
}

void
vdgx_mdp_clear (vdgx_mdp_t *self)
{
    assert (self);
    zframe_destroy (&self->address);
    zmsg_destroy (&self->body);
    vdgx_mdp_init (self);
}

const char *
vdgx_mdp_command_name (bool worker, uint8_t command)
{
    static const char *client [] = { "?", "REQUEST", "PARTIAL", "FINAL" };
    static const char *wrk [] = { "?", "READY", "REQUEST", "PARTIAL", "FINAL", "HEARTBEAT",
                                  "DISCONNECT", "CONTROL" };
    if (worker)
        return command < S_COUNT (wrk)? wrk [command]: "?";
    return command < S_COUNT (client)? client [command]: "?";
}

static bool
s_frame_is (zframe_t *frame, const char *text)
{
    size_t len = strlen (text);
    return frame && zframe_size (frame) == len && memcmp (zframe_data (frame), text, len) == 0;
}

static int
s_mdp_fail (vdgx_mdp_t *self, zmsg_t **msg_p, vdgx_error_t *err, const char *format, ...)
{
    char text [200];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    zmsg_destroy (msg_p);
    vdgx_mdp_clear (self);
    return vdgx_mp_error (err, "", "%s", text);
}

int
vdgx_mdp_decode (vdgx_mdp_t *self, zmsg_t **msg_p, vdgx_error_t *err)
{
    assert (self && msg_p);
    vdgx_mdp_init (self);
    zmsg_t *msg = *msg_p;
    if (!msg)
        return s_mdp_fail (self, msg_p, err, "no message");
    size_t nframes = zmsg_size (msg);
    if (nframes == 0)
        return s_mdp_fail (self, msg_p, err, "empty message");
    if (nframes > VDGX_FRAMES_MAX)
        return s_mdp_fail (self, msg_p, err, "%zu frames exceed the limit of %d", nframes, VDGX_FRAMES_MAX);

    zframe_t *frame = zmsg_pop (msg);
    if (zframe_size (frame) == 0) {
        //  MDP/0.1 (RFC 7): every command starts with an empty frame.
        zframe_destroy (&frame);
        frame = zmsg_pop (msg);
        if (s_frame_is (frame, VDGX_MDPC01))
            self->worker = false;
        else if (s_frame_is (frame, VDGX_MDPW01))
            self->worker = true;
        else {
            bool v2 = s_frame_is (frame, VDGX_MDPC02) || s_frame_is (frame, VDGX_MDPW02);
            zframe_destroy (&frame);
            return s_mdp_fail (self, msg_p, err, v2
                ? "MDP/0.2 commands have no leading empty frame (RFC 18); use a DEALER socket"
                : "unknown protocol header after the empty frame");
        }
        self->version = 1;
    }
    else
    if (s_frame_is (frame, VDGX_MDPC02)) {
        self->worker = false;
        self->version = 2;
    }
    else
    if (s_frame_is (frame, VDGX_MDPW02)) {
        self->worker = true;
        self->version = 2;
    }
    else {
        zframe_destroy (&frame);
        return s_mdp_fail (self, msg_p, err, "unknown protocol header (expected MDPC02, MDPW02 or MDP/0.1)");
    }
    zframe_destroy (&frame);

    //  Command byte (MDP/0.1 clients have none: their one command is REQUEST/REPLY).
    uint8_t command = VDGX_MDPC_REQUEST;
    if (self->version == 2 || self->worker) {
        frame = zmsg_pop (msg);
        if (!frame || zframe_size (frame) != 1) {
            zframe_destroy (&frame);
            return s_mdp_fail (self, msg_p, err, "missing or malformed command frame");
        }
        command = zframe_data (frame) [0];
        zframe_destroy (&frame);
        if (self->worker && self->version == 1) {
            static const uint8_t map [] = { 0, VDGX_MDPW_READY, VDGX_MDPW_REQUEST,
                VDGX_MDPW_FINAL, VDGX_MDPW_HEARTBEAT, VDGX_MDPW_DISCONNECT };
            if (command == 0 || command >= S_COUNT (map))
                return s_mdp_fail (self, msg_p, err, "invalid MDP/0.1 worker command 0x%02x", command);
            command = map [command];
        }
        else
        if (self->worker? (command < VDGX_MDPW_READY || command > VDGX_MDPW_CONTROL)
                        : (command < VDGX_MDPC_REQUEST || command > VDGX_MDPC_FINAL))
            return s_mdp_fail (self, msg_p, err, "invalid %s command 0x%02x",
                               self->worker? "worker": "client", command);
    }
    self->command = command;

    bool needs_service = !self->worker || command == VDGX_MDPW_READY;
    bool needs_address = self->worker && (command == VDGX_MDPW_REQUEST
                      || command == VDGX_MDPW_PARTIAL || command == VDGX_MDPW_FINAL);
    if (needs_service) {
        frame = zmsg_pop (msg);
        size_t size = frame? zframe_size (frame): 0;
        if (!frame || size == 0 || size > VDGX_SERVICE_MAX
        ||  !s_printable ((const char *) zframe_data (frame), size)) {
            zframe_destroy (&frame);
            return s_mdp_fail (self, msg_p, err, "service name must be 1..%d printable bytes", VDGX_SERVICE_MAX);
        }
        memcpy (self->service, zframe_data (frame), size);
        self->service [size] = 0;
        zframe_destroy (&frame);
    }
    if (needs_address) {
        self->address = zmsg_pop (msg);
        if (!self->address || zframe_size (self->address) == 0
        ||  zframe_size (self->address) > VDGX_SERVICE_MAX)
            return s_mdp_fail (self, msg_p, err, "client address must be 1..%d bytes", VDGX_SERVICE_MAX);
        frame = zmsg_pop (msg);
        bool empty = frame && zframe_size (frame) == 0;
        zframe_destroy (&frame);
        if (!empty)
            return s_mdp_fail (self, msg_p, err, "missing empty frame after the client address");
    }
    //  What remains is the body.
    size_t body = zmsg_size (msg);
    size_t min_body = 0, max_body = 0;
    size_t frame_max = VDGX_FRAME_MAX;
    if (!self->worker) {
        min_body = 1;
        max_body = VDGX_FRAMES_MAX;
        if (command != VDGX_MDPC_REQUEST)
            frame_max = VDGX_REPLY_FRAME_MAX;
        else
        if (strcmp (self->service, VDGX_JOBS_SERVICE) == 0)
            frame_max = VDGX_REQUEST_FRAME_MAX;
    }
    else
    switch (command) {
        case VDGX_MDPW_READY:
        case VDGX_MDPW_HEARTBEAT:
            max_body = self->version == 2? 1: 0;    //  optional worker-state map (VDGX)
            break;
        case VDGX_MDPW_REQUEST:
            min_body = 1; max_body = VDGX_FRAMES_MAX;
            frame_max = VDGX_REQUEST_FRAME_MAX;
            break;
        case VDGX_MDPW_PARTIAL:
        case VDGX_MDPW_FINAL:
            min_body = 1; max_body = VDGX_FRAMES_MAX;
            frame_max = VDGX_CHUNK_FRAME_MAX;
            break;
        case VDGX_MDPW_CONTROL:
            min_body = 1; max_body = 1;
            break;
        default:                                    //  DISCONNECT
            break;
    }
    if (body < min_body || body > max_body)
        return s_mdp_fail (self, msg_p, err, "%s %s: %zu body frames (expected %zu..%zu)",
                           self->worker? "worker": "client",
                           vdgx_mdp_command_name (self->worker, command), body, min_body, max_body);
    for (frame = zmsg_first (msg); frame; frame = zmsg_next (msg))
        if (zframe_size (frame) > frame_max)
            return s_mdp_fail (self, msg_p, err, "body frame of %zu bytes exceeds %zu",
                               zframe_size (frame), frame_max);
    self->body = msg;
    *msg_p = NULL;
    return 0;
}

static zframe_t *
s_byte_frame (uint8_t byte)
{
    return zframe_new (&byte, 1);
}

zmsg_t *
vdgx_mdp_encode (vdgx_mdp_t *self)
{
    assert (self);
    zmsg_t *msg = zmsg_new ();
    bool ok = (self->version == 1 || self->version == 2);
    bool v1 = self->version == 1;
    uint8_t cmd = self->command;
    if (!self->worker && ok) {
        ok = cmd >= VDGX_MDPC_REQUEST && cmd <= VDGX_MDPC_FINAL && !(v1 && cmd == VDGX_MDPC_PARTIAL)
          && self->service [0] && self->body && zmsg_size (self->body) > 0 && !self->address;
        if (ok) {
            if (v1) {
                zmsg_addmem (msg, "", 0);
                zmsg_addstr (msg, VDGX_MDPC01);
            }
            else {
                zmsg_addstr (msg, VDGX_MDPC02);
                zframe_t *c = s_byte_frame (cmd);
                zmsg_append (msg, &c);
            }
            zmsg_addstr (msg, self->service);
        }
    }
    else
    if (ok) {
        size_t body = self->body? zmsg_size (self->body): 0;
        bool enveloped = cmd == VDGX_MDPW_REQUEST || cmd == VDGX_MDPW_PARTIAL || cmd == VDGX_MDPW_FINAL;
        ok = cmd >= VDGX_MDPW_READY && cmd <= VDGX_MDPW_CONTROL
          && (enveloped == (self->address != NULL))
          && (!enveloped || body > 0)
          && (cmd != VDGX_MDPW_READY || self->service [0])
          && (cmd != VDGX_MDPW_CONTROL || body == 1)
          && (cmd != VDGX_MDPW_DISCONNECT || body == 0)
          && ((cmd != VDGX_MDPW_READY && cmd != VDGX_MDPW_HEARTBEAT) || body <= (v1? 0u: 1u))
          && !(v1 && (cmd == VDGX_MDPW_PARTIAL || cmd == VDGX_MDPW_CONTROL));
        if (ok) {
            uint8_t wire = cmd;
            if (v1) {
                static const uint8_t to_v1 [] = { 0, VDGX_MDPW01_READY, VDGX_MDPW01_REQUEST, 0,
                    VDGX_MDPW01_REPLY, VDGX_MDPW01_HEARTBEAT, VDGX_MDPW01_DISCONNECT };
                wire = to_v1 [cmd];
                zmsg_addmem (msg, "", 0);
                zmsg_addstr (msg, VDGX_MDPW01);
            }
            else
                zmsg_addstr (msg, VDGX_MDPW02);
            zframe_t *c = s_byte_frame (wire);
            zmsg_append (msg, &c);
            if (cmd == VDGX_MDPW_READY)
                zmsg_addstr (msg, self->service);
            if (enveloped) {
                zmsg_append (msg, &self->address);
                zmsg_addmem (msg, "", 0);
            }
        }
    }
    if (ok && self->body) {
        zframe_t *frame;
        while ((frame = zmsg_pop (self->body)))
            zmsg_append (msg, &frame);
    }
    if (!ok)
        zmsg_destroy (&msg);
    vdgx_mdp_clear (self);
    return msg;
}

zmsg_t *
vdgx_mdp_client_request (const char *service, zmsg_t **body_p)
{
    return vdgx_mdp_client_reply (2, VDGX_MDPC_REQUEST, service, body_p);
}

zmsg_t *
vdgx_mdp_client_reply (uint8_t version, uint8_t command, const char *service, zmsg_t **body_p)
{
    vdgx_mdp_t m;
    vdgx_mdp_init (&m);
    m.version = version;
    m.command = command;
    snprintf (m.service, sizeof m.service, "%s", service? service: "");
    if (body_p) {
        m.body = *body_p;
        *body_p = NULL;
    }
    return vdgx_mdp_encode (&m);
}

zmsg_t *
vdgx_mdp_worker_command (uint8_t version, uint8_t command, zmsg_t **body_p)
{
    vdgx_mdp_t m;
    vdgx_mdp_init (&m);
    m.version = version;
    m.worker = true;
    m.command = command;
    if (body_p) {
        m.body = *body_p;
        *body_p = NULL;
    }
    return vdgx_mdp_encode (&m);
}

zmsg_t *
vdgx_mdp_worker_ready (uint8_t version, const char *service, zframe_t **state_p)
{
    vdgx_mdp_t m;
    vdgx_mdp_init (&m);
    m.version = version;
    m.worker = true;
    m.command = VDGX_MDPW_READY;
    snprintf (m.service, sizeof m.service, "%s", service? service: "");
    if (state_p && *state_p) {
        m.body = zmsg_new ();
        zmsg_append (m.body, state_p);
    }
    return vdgx_mdp_encode (&m);
}

zmsg_t *
vdgx_mdp_worker_envelope (uint8_t version, uint8_t command, zframe_t *address, zmsg_t **body_p)
{
    vdgx_mdp_t m;
    vdgx_mdp_init (&m);
    m.version = version;
    m.worker = true;
    m.command = command;
    m.address = address? zframe_dup (address): NULL;
    if (body_p) {
        m.body = *body_p;
        *body_p = NULL;
    }
    return vdgx_mdp_encode (&m);
}

//  ---------------------------------------------------------------------------------------
//  Errors

const char *
vdgx_error_code_intern (const char *code)
{
    int i = s_parse_name (code, s_error_codes, S_COUNT (s_error_codes));
    return i < 0? NULL: s_error_codes [i];
}

void
vdgx_error_init (vdgx_error_t *err)
{
    assert (err);
    memset (err, 0, sizeof *err);
}

void
vdgx_error_set (vdgx_error_t *err, const char *code, const char *field, const char *format, ...)
{
    if (!err)
        return;
    const char *interned = vdgx_error_code_intern (code);
    assert (interned);
    err->code = interned;
    snprintf (err->field, sizeof err->field, "%s", field? field: "");
    va_list args;
    va_start (args, format);
    vsnprintf (err->message, sizeof err->message, format, args);
    va_end (args);
}

static int
s_error_pack_inner (const vdgx_error_t *self, uint64_t retry_after_ms, msgpack_packer *pk)
{
    assert (self);
    const char *code = self->code? self->code: VDGX_E_INTERNAL;
    int rc = msgpack_pack_map (pk, 2 + (self->field [0] != 0) + (retry_after_ms > 0));
    rc |= s_kstr (pk, "code", code) | s_kstr (pk, "message", self->message);
    if (self->field [0])
        rc |= s_kstr (pk, "field", self->field);
    if (retry_after_ms)
        rc |= s_kuint (pk, "retry_after_ms", retry_after_ms);
    return rc? -1: 0;
}

int
vdgx_error_pack_inner (const vdgx_error_t *self, msgpack_packer *pk)
{
    return s_error_pack_inner (self, 0, pk);
}

int
vdgx_error_pack (const vdgx_error_t *self, uint64_t retry_after_ms, msgpack_packer *pk)
{
    int rc = msgpack_pack_map (pk, 2);
    rc |= s_kbool (pk, "ok", false) | vdgx_mp_pack_key (pk, "error");
    rc |= s_error_pack_inner (self, retry_after_ms, pk);
    return rc? -1: 0;
}

zframe_t *
vdgx_error_frame (const vdgx_error_t *self, uint64_t retry_after_ms)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    zframe_t *frame = NULL;
    if (vdgx_error_pack (self, retry_after_ms, &pk) == 0)
        frame = zframe_new (sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    return frame;
}

static int
s_error_decode_inner (vdgx_error_t *self, const msgpack_object *obj, const char *path,
                      uint64_t *retry_after_ms, vdgx_error_t *err)
{
    enum { K_CODE, K_MESSAGE, K_FIELD, K_RETRY, K_N };
    static const char *keys [] = { "code", "message", "field", "retry_after_ms" };
    vdgx_error_init (self);
    vdgx_mp_map_t m;
    if (vdgx_mp_map (&m, obj, path, keys, K_N, err))
        return -1;
    int code;
    uint64_t retry = 0;
    if (vdgx_mp_enum (&m, K_CODE, true, s_error_codes, S_COUNT (s_error_codes), &code) < 0
    ||  vdgx_mp_str (&m, K_MESSAGE, true, 0, sizeof self->message - 1, self->message, sizeof self->message) < 0
    ||  vdgx_mp_str (&m, K_FIELD, false, 1, sizeof self->field - 1, self->field, sizeof self->field) < 0
    ||  vdgx_mp_uint (&m, K_RETRY, false, 1, 86400000, &retry) < 0) {
        vdgx_error_init (self);
        return -1;
    }
    self->code = s_error_codes [code];
    if (retry_after_ms)
        *retry_after_ms = retry;
    return 0;
}

int
vdgx_error_decode_inner (vdgx_error_t *self, const msgpack_object *obj, const char *path,
                         vdgx_error_t *err)
{
    return s_error_decode_inner (self, obj, path, NULL, err);
}

int
vdgx_error_decode (vdgx_error_t *self, uint64_t *retry_after_ms, const void *data, size_t size,
                   vdgx_error_t *err)
{
    assert (self);
    vdgx_error_init (self);
    if (retry_after_ms)
        *retry_after_ms = 0;
    msgpack_unpacked up;
    if (vdgx_unpack (&up, data, size, err))
        return -1;
    enum { K_OK, K_ERROR, K_N };
    static const char *keys [] = { "ok", "error" };
    vdgx_mp_map_t m;
    bool ok = true;
    int rc = -1;
    if (vdgx_mp_map (&m, &up.data, "", keys, K_N, err) == 0
    &&  vdgx_mp_bool (&m, K_OK, true, &ok) == 1) {
        if (ok)
            vdgx_mp_fail (&m, K_OK, "must be false in an error reply");
        else
        if (!vdgx_mp_value (&m, K_ERROR))
            vdgx_mp_fail (&m, K_ERROR, "missing");
        else
            rc = s_error_decode_inner (self, vdgx_mp_value (&m, K_ERROR), "error", retry_after_ms, err);
    }
    msgpack_unpacked_destroy (&up);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  3.1 Job map

void
vdgx_job_init (vdgx_job_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->attempt = 1;
    vdgx_genreq_init (&self->request);
}

void
vdgx_job_clear (vdgx_job_t *self)
{
    assert (self);
    vdgx_genreq_clear (&self->request);
    vdgx_job_init (self);
}

int
vdgx_job_pack (const vdgx_job_t *self, msgpack_packer *pk)
{
    assert (self);
    int rc = msgpack_pack_map (pk, 3 + (self->token [0] != 0));
    rc |= s_kstr (pk, "id", self->id) | s_kuint (pk, "attempt", self->attempt);
    rc |= vdgx_mp_pack_key (pk, "request") | vdgx_genreq_pack (&self->request, pk);
    if (self->token [0])
        rc |= s_kstr (pk, "token", self->token);
    return rc? -1: 0;
}

int
vdgx_job_decode_obj (vdgx_job_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    enum { K_ID, K_ATTEMPT, K_REQUEST, K_TOKEN, K_N };
    static const char *keys [] = { "id", "attempt", "request", "token" };
    vdgx_job_clear (self);
    vdgx_mp_map_t m;
    if (vdgx_mp_map (&m, obj, "", keys, K_N, err)
    ||  s_read_id (&m, K_ID, true, self->id) < 0
    ||  vdgx_mp_u32 (&m, K_ATTEMPT, true, 1, 1000, &self->attempt) < 0
    ||  s_read_token (&m, K_TOKEN, self->token) < 0)
        goto failed;
    if (!vdgx_mp_value (&m, K_REQUEST)) {
        vdgx_mp_fail (&m, K_REQUEST, "missing");
        goto failed;
    }
    if (vdgx_genreq_decode_at (&self->request, vdgx_mp_value (&m, K_REQUEST), "request", err))
        goto failed;
    return 0;
failed:
    vdgx_job_clear (self);
    return -1;
}

S_FRAME_AND_DECODE (job)

//  ---------------------------------------------------------------------------------------
//  Video info (5.2 result, 5.5)

enum { KV_SIZE, KV_SHA256, KV_MIME, KV_WIDTH, KV_HEIGHT, KV_FRAMES, KV_FPS, KV_SECONDS, KV_N };
static const char *s_video_keys [] = {
    "size", "sha256", "mime", "width", "height", "frames", "fps", "seconds"
};

static int
s_video_pack_fields (const vdgx_videoinfo_t *v, msgpack_packer *pk)
{
    int rc = s_kuint (pk, "size", v->size) | s_kstr (pk, "sha256", v->sha256)
           | s_kstr (pk, "mime", v->mime) | s_kuint (pk, "width", v->width)
           | s_kuint (pk, "height", v->height) | s_kuint (pk, "frames", v->frames)
           | s_kuint (pk, "fps", v->fps) | s_kdbl (pk, "seconds", v->seconds);
    return rc? -1: 0;
}

//  Reads the video fields from a map whose key table starts with s_video_keys (offset 'base').
static int
s_video_read (vdgx_mp_map_t *m, size_t base, vdgx_videoinfo_t *v)
{
    if (vdgx_mp_uint (m, base + KV_SIZE, true, 1, S_BYTES_MAX, &v->size) < 0
    ||  vdgx_mp_str (m, base + KV_SHA256, true, 64, 64, v->sha256, sizeof v->sha256) < 0)
        return -1;
    if (!vdgx_sha256_is_hex (v->sha256))
        return vdgx_mp_fail (m, base + KV_SHA256, "must be 64 lowercase hex digits");
    if (s_read_printable (m, base + KV_MIME, true, 1, VDGX_MIME_MAX, v->mime, sizeof v->mime) < 0
    ||  vdgx_mp_u32 (m, base + KV_WIDTH, true, 1, 16384, &v->width) < 0
    ||  vdgx_mp_u32 (m, base + KV_HEIGHT, true, 1, 16384, &v->height) < 0
    ||  vdgx_mp_u32 (m, base + KV_FRAMES, true, 1, 1000000, &v->frames) < 0
    ||  vdgx_mp_u32 (m, base + KV_FPS, true, 1, 240, &v->fps) < 0
    ||  vdgx_mp_double (m, base + KV_SECONDS, true, 0, 86400, false, &v->seconds) < 0)
        return -1;
    return 0;
}

static int
s_video_decode (vdgx_videoinfo_t *v, const msgpack_object *obj, const char *path, vdgx_error_t *err)
{
    memset (v, 0, sizeof *v);
    vdgx_mp_map_t m;
    if (vdgx_mp_map (&m, obj, path, s_video_keys, KV_N, err) || s_video_read (&m, 0, v)) {
        memset (v, 0, sizeof *v);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  5.5 Result

void
vdgx_result_init (vdgx_result_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->ok = true;
    strcpy (self->video.mime, "video/mp4");
}

void
vdgx_result_clear (vdgx_result_t *self)
{
    vdgx_result_init (self);
}

static int
s_timings_pack (const vdgx_timings_t *t, msgpack_packer *pk)
{
    int rc = msgpack_pack_map (pk, 5);
    rc |= s_kdbl (pk, "load", t->load) | s_kdbl (pk, "text", t->text)
        | s_kdbl (pk, "denoise", t->denoise) | s_kdbl (pk, "decode", t->decode)
        | s_kdbl (pk, "mux", t->mux);
    return rc? -1: 0;
}

int
vdgx_result_pack (const vdgx_result_t *self, msgpack_packer *pk)
{
    assert (self);
    int rc;
    if (!self->ok) {
        rc = msgpack_pack_map (pk, 3 + (self->token [0] != 0));
        rc |= s_kstr (pk, "type", "result") | s_kbool (pk, "ok", false);
        rc |= vdgx_mp_pack_key (pk, "error") | vdgx_error_pack_inner (&self->error, pk);
        if (self->token [0])
            rc |= s_kstr (pk, "token", self->token);
        return rc? -1: 0;
    }
    rc = msgpack_pack_map (pk, 2 + KV_N + 2 + (self->token [0] != 0));
    if (self->token [0])
        rc |= s_kstr (pk, "token", self->token);
    rc |= s_kstr (pk, "type", "result") | s_kbool (pk, "ok", true);
    rc |= s_video_pack_fields (&self->video, pk);
    rc |= s_kuint (pk, "seed", self->seed);
    rc |= vdgx_mp_pack_key (pk, "timings") | s_timings_pack (&self->timings, pk);
    return rc? -1: 0;
}

static int
s_timings_decode (vdgx_timings_t *t, const msgpack_object *obj, const char *path, vdgx_error_t *err)
{
    enum { K_LOAD, K_TEXT, K_DENOISE, K_DECODE, K_MUX, K_N };
    static const char *keys [] = { "load", "text", "denoise", "decode", "mux" };
    vdgx_mp_map_t m;
    memset (t, 0, sizeof *t);
    if (vdgx_mp_map (&m, obj, path, keys, K_N, err)
    ||  vdgx_mp_double (&m, K_LOAD, true, 0, S_TIME_MAX, false, &t->load) < 0
    ||  vdgx_mp_double (&m, K_TEXT, true, 0, S_TIME_MAX, false, &t->text) < 0
    ||  vdgx_mp_double (&m, K_DENOISE, true, 0, S_TIME_MAX, false, &t->denoise) < 0
    ||  vdgx_mp_double (&m, K_DECODE, true, 0, S_TIME_MAX, false, &t->decode) < 0
    ||  vdgx_mp_double (&m, K_MUX, true, 0, S_TIME_MAX, false, &t->mux) < 0)
        return -1;
    return 0;
}

int
vdgx_result_decode_obj (vdgx_result_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    //  The video keys come first so s_video_read can index them.
    enum { K_TYPE = KV_N, K_OK, K_SEED, K_TIMINGS, K_ERROR, K_TOKEN, K_N };
    static const char *keys [] = {
        "size", "sha256", "mime", "width", "height", "frames", "fps", "seconds",
        "type", "ok", "seed", "timings", "error", "token"
    };
    vdgx_result_clear (self);
    vdgx_mp_map_t m;
    if (vdgx_mp_map (&m, obj, "", keys, K_N, err)
    ||  vdgx_mp_const (&m, K_TYPE, true, "result") < 0
    ||  vdgx_mp_bool (&m, K_OK, true, &self->ok) < 0
    ||  s_read_token (&m, K_TOKEN, self->token) < 0)
        goto failed;
    if (self->ok) {
        if (s_forbid (&m, K_ERROR, "when ok is true")
        ||  s_video_read (&m, 0, &self->video)
        ||  vdgx_mp_uint (&m, K_SEED, true, 0, S_SEED_MAX, &self->seed) < 0)
            goto failed;
        if (!vdgx_mp_value (&m, K_TIMINGS)) {
            vdgx_mp_fail (&m, K_TIMINGS, "missing");
            goto failed;
        }
        if (s_timings_decode (&self->timings, vdgx_mp_value (&m, K_TIMINGS), "timings", err))
            goto failed;
    }
    else {
        for (size_t k = 0; k < K_N; k++)
            if (k != K_TYPE && k != K_OK && k != K_ERROR && k != K_TOKEN
            &&  s_forbid (&m, k, "when ok is false"))
                goto failed;
        if (!vdgx_mp_value (&m, K_ERROR)) {
            vdgx_mp_fail (&m, K_ERROR, "missing");
            goto failed;
        }
        if (vdgx_error_decode_inner (&self->error, vdgx_mp_value (&m, K_ERROR), "error", err))
            goto failed;
    }
    return 0;
failed:
    vdgx_result_clear (self);
    return -1;
}

S_FRAME_AND_DECODE (result)

//  ---------------------------------------------------------------------------------------
//  5.3 Progress

void
vdgx_progress_init (vdgx_progress_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
}

void
vdgx_progress_clear (vdgx_progress_t *self)
{
    vdgx_progress_init (self);
}

int
vdgx_progress_pack (const vdgx_progress_t *self, msgpack_packer *pk)
{
    assert (self);
    int rc = msgpack_pack_map (pk, 6 + (self->message [0] != 0) + (self->token [0] != 0)
                                   + 3 * self->has_ready);
    rc |= s_kstr (pk, "type", "progress") | s_kstr (pk, "id", self->id)
        | s_kstr (pk, "phase", vdgx_phase_name (self->phase))
        | s_kuint (pk, "step", self->step) | s_kuint (pk, "steps", self->steps)
        | s_kdbl (pk, "percent", self->percent);
    if (self->message [0])
        rc |= s_kstr (pk, "message", self->message);
    if (self->token [0])
        rc |= s_kstr (pk, "token", self->token);
    if (self->has_ready)
        rc |= s_ready_pack (&self->ready, pk);
    return rc? -1: 0;
}

int
vdgx_progress_decode_obj (vdgx_progress_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    enum { K_TYPE, K_ID, K_PHASE, K_STEP, K_STEPS, K_PERCENT, K_MESSAGE, K_TOKEN, K_READY_BYTES,
           K_READY_FRAMES, K_READY_SECONDS, K_N };
    static const char *keys [] = { "type", "id", "phase", "step", "steps", "percent", "message",
                                   "token", "ready_bytes", "ready_frames", "ready_seconds" };
    vdgx_progress_clear (self);
    vdgx_mp_map_t m;
    int phase;
    if (vdgx_mp_map (&m, obj, "", keys, K_N, err)
    ||  vdgx_mp_const (&m, K_TYPE, true, "progress") < 0
    ||  s_read_id (&m, K_ID, true, self->id) < 0
    ||  vdgx_mp_enum (&m, K_PHASE, true, s_phases, S_COUNT (s_phases), &phase) < 0
    ||  vdgx_mp_u32 (&m, K_STEP, true, 0, UINT32_MAX, &self->step) < 0
    ||  vdgx_mp_u32 (&m, K_STEPS, true, 0, UINT32_MAX, &self->steps) < 0
    ||  vdgx_mp_double (&m, K_PERCENT, true, 0, 100, false, &self->percent) < 0
    ||  vdgx_mp_str (&m, K_MESSAGE, false, 0, VDGX_MESSAGE_MAX, self->message, sizeof self->message) < 0
    ||  s_read_token (&m, K_TOKEN, self->token) < 0
    ||  s_ready_read (&m, K_READY_BYTES, &self->has_ready, &self->ready) < 0)
        goto failed;
    self->phase = (vdgx_phase_t) phase;
    if (self->steps && self->step > self->steps) {
        vdgx_mp_fail (&m, K_STEP, "%u exceeds steps (%u)", self->step, self->steps);
        goto failed;
    }
    return 0;
failed:
    vdgx_progress_clear (self);
    return -1;
}

S_FRAME_AND_DECODE (progress)

//  ---------------------------------------------------------------------------------------
//  Chunk

void
vdgx_chunk_init (vdgx_chunk_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
}

void
vdgx_chunk_clear (vdgx_chunk_t *self)
{
    assert (self);
    free (self->data);
    vdgx_chunk_init (self);
}

int
vdgx_chunk_pack (const vdgx_chunk_t *self, msgpack_packer *pk)
{
    assert (self && self->size <= VDGX_CHUNK_MAX);
    int rc = msgpack_pack_map (pk, 3 + (self->token [0] != 0));
    rc |= s_kstr (pk, "type", "chunk") | s_kuint (pk, "offset", self->offset);
    if (self->token [0])
        rc |= s_kstr (pk, "token", self->token);
    rc |= vdgx_mp_pack_key (pk, "data") | msgpack_pack_bin (pk, self->size);
    if (self->size)
        rc |= msgpack_pack_bin_body (pk, self->data, self->size);
    return rc? -1: 0;
}

int
vdgx_chunk_decode_obj (vdgx_chunk_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    enum { K_TYPE, K_OFFSET, K_DATA, K_TOKEN, K_N };
    static const char *keys [] = { "type", "offset", "data", "token" };
    vdgx_chunk_clear (self);
    vdgx_mp_map_t m;
    const uint8_t *data = NULL;
    size_t size = 0;
    if (vdgx_mp_map (&m, obj, "", keys, K_N, err)
    ||  vdgx_mp_const (&m, K_TYPE, true, "chunk") < 0
    ||  s_read_token (&m, K_TOKEN, self->token) < 0
    ||  vdgx_mp_uint (&m, K_OFFSET, true, 0, S_BYTES_MAX, &self->offset) < 0
    ||  vdgx_mp_bin (&m, K_DATA, true, VDGX_CHUNK_MAX, &data, &size) < 0)
        goto failed;
    if (size) {
        self->data = malloc (size);
        if (!self->data) {
            vdgx_mp_fail (&m, K_DATA, "out of memory");
            goto failed;
        }
        memcpy (self->data, data, size);
        self->size = size;
    }
    return 0;
failed:
    vdgx_chunk_clear (self);
    return -1;
}

S_FRAME_AND_DECODE (chunk)

//  ---------------------------------------------------------------------------------------
//  Worker replies

void
vdgx_wreply_init (vdgx_wreply_t *self)
{
    assert (self);
    self->type = VDGX_WREPLY_PROGRESS;
    vdgx_progress_init (&self->progress);
    vdgx_chunk_init (&self->chunk);
    vdgx_result_init (&self->result);
}

void
vdgx_wreply_clear (vdgx_wreply_t *self)
{
    assert (self);
    vdgx_progress_clear (&self->progress);
    vdgx_chunk_clear (&self->chunk);
    vdgx_result_clear (&self->result);
    self->type = VDGX_WREPLY_PROGRESS;
}

int
vdgx_wreply_decode (vdgx_wreply_t *self, const void *data, size_t size, vdgx_error_t *err)
{
    vdgx_wreply_clear (self);
    msgpack_unpacked up;
    if (vdgx_unpack (&up, data, size, err))
        return -1;
    int rc = -1;
    const msgpack_object *type = NULL;
    if (up.data.type != MSGPACK_OBJECT_MAP)
        vdgx_mp_error (err, "", "expected a map");
    else {
        bool keys_ok = true;
        for (uint32_t i = 0; i < up.data.via.map.size; i++) {
            const msgpack_object *k = &up.data.via.map.ptr [i].key;
            keys_ok &= k->type == MSGPACK_OBJECT_STR;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 4 && memcmp (k->via.str.ptr, "type", 4) == 0)
                type = &up.data.via.map.ptr [i].val;
        }
        static const char *types [] = { "progress", "chunk", "result" };
        int which = -1;
        if (type && type->type == MSGPACK_OBJECT_STR)
            for (int t = 0; t < 3; t++)
                if (strlen (types [t]) == type->via.str.size && memcmp (types [t], type->via.str.ptr, type->via.str.size) == 0)
                    which = t;
        if (!keys_ok)
            vdgx_mp_error (err, "", "map keys must be strings");
        else if (!type)
            vdgx_mp_error (err, "type", "missing");
        else if (which < 0)
            vdgx_mp_error (err, "type", "must be one of: progress, chunk, result");
        else {
            self->type = (vdgx_wreply_type_t) which;
            if (which == 0)
                rc = vdgx_progress_decode_obj (&self->progress, &up.data, err);
            else if (which == 1)
                rc = vdgx_chunk_decode_obj (&self->chunk, &up.data, err);
            else
                rc = vdgx_result_decode_obj (&self->result, &up.data, err);
        }
    }
    msgpack_unpacked_destroy (&up);
    if (rc)
        vdgx_wreply_clear (self);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  5.4 Worker state

void
vdgx_wstate_init (vdgx_wstate_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->state = VDGX_WSTATE_COLD;
}

static void
s_list_free (char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free ((*list) [i]);
    free (*list);
    *list = NULL;
    *n = 0;
}

void
vdgx_wstate_clear (vdgx_wstate_t *self)
{
    assert (self);
    s_list_free (&self->precisions, &self->nprecisions);
    s_list_free (&self->ext, &self->next);
    s_list_free (&self->pending, &self->npending);
    s_list_free (&self->tokens, &self->ntokens);
    vdgx_wstate_init (self);
}

static int
s_list_add (char ***list, size_t *n, const char *text)
{
    if (*n >= VDGX_LIST_MAX)
        return -1;
    char *copy = strdup (text);
    char **grown = realloc (*list, (*n + 1) * sizeof *grown);
    if (!copy || !grown) {
        free (copy);
        if (grown)
            *list = grown;
        return -1;
    }
    *list = grown;
    grown [(*n)++] = copy;
    return 0;
}

int
vdgx_wstate_add_precision (vdgx_wstate_t *self, const char *name)
{
    return s_list_add (&self->precisions, &self->nprecisions, name);
}

int
vdgx_wstate_add_ext (vdgx_wstate_t *self, const char *name)
{
    return s_list_add (&self->ext, &self->next, name);
}

int
vdgx_wstate_add_pending (vdgx_wstate_t *self, const char *job_id)
{
    return s_list_add (&self->pending, &self->npending, job_id);
}

int
vdgx_wstate_add_pending_token (vdgx_wstate_t *self, const char *job_id, const char *token)
{
    assert (token && *token && strlen (token) <= VDGX_TOKEN_MAX);
    if (self->ntokens != self->npending || self->npending >= VDGX_LIST_MAX)
        return -1;              //  tokens are all or none
    if (s_list_add (&self->pending, &self->npending, job_id))
        return -1;
    if (s_list_add (&self->tokens, &self->ntokens, token)) {
        free (self->pending [--self->npending]);
        return -1;
    }
    return 0;
}

const char *
vdgx_wstate_pending_token (const vdgx_wstate_t *self, size_t i)
{
    return i < self->ntokens && self->ntokens == self->npending? self->tokens [i]: NULL;
}

bool
vdgx_wstate_has_ext (const vdgx_wstate_t *self, const char *name)
{
    for (size_t i = 0; i < self->next; i++)
        if (strcmp (self->ext [i], name) == 0)
            return true;
    return false;
}

int
vdgx_wstate_copy (vdgx_wstate_t *dst, const vdgx_wstate_t *src)
{
    assert (dst && src && dst != src);
    vdgx_wstate_clear (dst);
    *dst = *src;
    dst->precisions = dst->ext = dst->pending = dst->tokens = NULL;
    dst->nprecisions = dst->next = dst->npending = dst->ntokens = 0;
    for (size_t i = 0; i < src->nprecisions; i++)
        if (vdgx_wstate_add_precision (dst, src->precisions [i])) goto failed;
    for (size_t i = 0; i < src->next; i++)
        if (vdgx_wstate_add_ext (dst, src->ext [i])) goto failed;
    for (size_t i = 0; i < src->npending; i++)
        if (vdgx_wstate_add_pending (dst, src->pending [i])) goto failed;
    for (size_t i = 0; i < src->ntokens; i++)
        if (s_list_add (&dst->tokens, &dst->ntokens, src->tokens [i])) goto failed;
    return 0;
failed:
    vdgx_wstate_clear (dst);
    return -1;
}

static int
s_pack_list (msgpack_packer *pk, const char *key, char **list, size_t n)
{
    int rc = vdgx_mp_pack_key (pk, key) | msgpack_pack_array (pk, n);
    for (size_t i = 0; i < n; i++)
        rc |= vdgx_mp_pack_cstr (pk, list [i]);
    return rc;
}

int
vdgx_wstate_pack (const vdgx_wstate_t *self, msgpack_packer *pk)
{
    assert (self);
    int rc = msgpack_pack_map (pk, 13 + (self->identity [0] != 0) + self->has_idle_ms
                                   + (self->weights_id [0] != 0) + (self->protocol != 0)
                                   + self->limits.present + (self->ntokens > 0));
    rc |= s_kstr (pk, "service", self->service) | s_kstr (pk, "host", self->host)
        | s_kuint (pk, "pid", self->pid) | s_kstr (pk, "state", vdgx_wstate_state_name (self->state))
        | s_kuint (pk, "rss_bytes", self->rss_bytes) | s_kuint (pk, "peak_bytes", self->peak_bytes)
        | s_kuint (pk, "model_bytes", self->model_bytes)
        | s_kuint (pk, "host_budget_bytes", self->host_budget_bytes)
        | s_kstr (pk, "device", self->device)
        | s_pack_list (pk, "precisions", self->precisions, self->nprecisions)
        | s_kstr (pk, "job", self->job)
        | s_pack_list (pk, "ext", self->ext, self->next)
        | s_pack_list (pk, "pending", self->pending, self->npending);
    if (self->identity [0])
        rc |= s_kstr (pk, "identity", self->identity);
    if (self->has_idle_ms)
        rc |= s_kuint (pk, "idle_ms", self->idle_ms);
    if (self->weights_id [0])
        rc |= s_kstr (pk, "weights_id", self->weights_id);
    if (self->protocol)
        rc |= s_kuint (pk, "protocol", self->protocol);
    if (self->limits.present)
        rc |= vdgx_mp_pack_key (pk, "limits") | vdgx_limits_pack (&self->limits, pk);
    if (self->ntokens)
        rc |= s_pack_list (pk, "tokens", self->tokens, self->ntokens);
    return rc? -1: 0;
}

//  Reads an array of strings (each 1..max printable bytes; job ids when ids is true).
static int
s_read_list (vdgx_mp_map_t *m, size_t index, size_t max, bool ids, char ***list, size_t *n)
{
    const msgpack_object *v = vdgx_mp_value (m, index);
    if (!v)
        return 0;
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return vdgx_mp_fail (m, index, "expected an array of strings");
    if (v->via.array.size > VDGX_LIST_MAX)
        return vdgx_mp_fail (m, index, "%u entries exceed the limit of %d", v->via.array.size, VDGX_LIST_MAX);
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *s = &v->via.array.ptr [i];
        char text [VDGX_SERVICE_MAX + 1];
        if (s->type != MSGPACK_OBJECT_STR || s->via.str.size < 1 || s->via.str.size > max
        ||  !s_printable (s->via.str.ptr, s->via.str.size))
            return vdgx_mp_fail (m, index, "entry %u must be 1..%zu printable bytes", i, max);
        memcpy (text, s->via.str.ptr, s->via.str.size);
        text [s->via.str.size] = 0;
        if (ids && !vdgx_job_id_valid (text))
            return vdgx_mp_fail (m, index, "entry %u is not a valid job id", i);
        if (s_list_add (list, n, text))
            return vdgx_mp_fail (m, index, "out of memory");
    }
    return 1;
}

int
vdgx_wstate_decode_obj (vdgx_wstate_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    enum { K_SERVICE, K_HOST, K_PID, K_STATE, K_RSS, K_PEAK, K_MODEL, K_BUDGET, K_DEVICE,
           K_PRECISIONS, K_JOB, K_EXT, K_PENDING, K_IDENTITY, K_IDLE, K_WEIGHTS, K_PROTOCOL,
           K_LIMITS, K_TOKENS, K_N };
    static const char *keys [] = { "service", "host", "pid", "state", "rss_bytes", "peak_bytes",
        "model_bytes", "host_budget_bytes", "device", "precisions", "job", "ext", "pending",
        "identity", "idle_ms", "weights_id", "protocol", "limits", "tokens" };
    vdgx_wstate_clear (self);
    vdgx_mp_map_t m;
    int state, rc;
    if (vdgx_mp_map (&m, obj, "", keys, K_N, err)
    ||  s_read_printable (&m, K_SERVICE, true, 1, VDGX_SERVICE_MAX, self->service, sizeof self->service) < 0
    ||  vdgx_mp_str (&m, K_HOST, false, 0, VDGX_HOST_MAX, self->host, sizeof self->host) < 0
    ||  vdgx_mp_u32 (&m, K_PID, false, 0, UINT32_MAX, &self->pid) < 0
    ||  vdgx_mp_enum (&m, K_STATE, true, s_wstates, S_COUNT (s_wstates), &state) < 0
    ||  vdgx_mp_uint (&m, K_RSS, false, 0, S_BYTES_MAX, &self->rss_bytes) < 0
    ||  vdgx_mp_uint (&m, K_PEAK, false, 0, S_BYTES_MAX, &self->peak_bytes) < 0
    ||  vdgx_mp_uint (&m, K_MODEL, false, 0, S_BYTES_MAX, &self->model_bytes) < 0
    ||  vdgx_mp_uint (&m, K_BUDGET, false, 0, S_BYTES_MAX, &self->host_budget_bytes) < 0
    ||  vdgx_mp_str (&m, K_DEVICE, false, 0, VDGX_DEVICE_MAX, self->device, sizeof self->device) < 0
    ||  s_read_list (&m, K_PRECISIONS, 16, false, &self->precisions, &self->nprecisions) < 0
    ||  vdgx_mp_str (&m, K_JOB, false, 0, VDGX_ID_MAX, self->job, sizeof self->job) < 0
    ||  s_read_list (&m, K_EXT, 32, false, &self->ext, &self->next) < 0
    ||  s_read_list (&m, K_PENDING, VDGX_ID_MAX, true, &self->pending, &self->npending) < 0
    ||  s_read_printable (&m, K_IDENTITY, false, 1, VDGX_SERVICE_MAX, self->identity, sizeof self->identity) < 0
    ||  (rc = vdgx_mp_uint (&m, K_IDLE, false, 0, S_BYTES_MAX, &self->idle_ms)) < 0)
        goto failed;
    self->has_idle_ms = rc == 1;
    uint64_t protocol = 0;
    if (s_read_printable (&m, K_WEIGHTS, false, 1, VDGX_WEIGHTS_ID_MAX, self->weights_id, sizeof self->weights_id) < 0
    ||  vdgx_mp_uint (&m, K_PROTOCOL, false, 1, 2, &protocol) < 0)
        goto failed;
    self->protocol = (uint8_t) protocol;
    const msgpack_object *limits = vdgx_mp_value (&m, K_LIMITS);
    if (limits && vdgx_limits_decode_obj (&self->limits, limits, "limits", err))
        goto failed;
    if (s_read_list (&m, K_TOKENS, VDGX_TOKEN_MAX, false, &self->tokens, &self->ntokens) < 0)
        goto failed;
    if (vdgx_mp_value (&m, K_TOKENS) && self->ntokens != self->npending) {
        vdgx_mp_fail (&m, K_TOKENS, "%zu entries, but pending has %zu", self->ntokens, self->npending);
        goto failed;
    }
    self->state = (vdgx_wstate_state_t) state;
    if (self->job [0] && !vdgx_job_id_valid (self->job)) {
        vdgx_mp_fail (&m, K_JOB, "not a valid job id");
        goto failed;
    }
    return 0;
failed:
    vdgx_wstate_clear (self);
    return -1;
}

S_FRAME_AND_DECODE (wstate)

//  ---------------------------------------------------------------------------------------
//  CONTROL

void
vdgx_control_init (vdgx_control_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
}

void
vdgx_control_clear (vdgx_control_t *self)
{
    vdgx_control_init (self);
}

bool
vdgx_control_op_has_id (vdgx_control_op_t op)
{
    return op == VDGX_CONTROL_CANCEL || op == VDGX_CONTROL_ACK || op == VDGX_CONTROL_DROP
        || op == VDGX_CONTROL_RESEND;
}

int
vdgx_control_pack (const vdgx_control_t *self, msgpack_packer *pk)
{
    assert (self && (unsigned) self->op < VDGX_CONTROL_COUNT);
    bool id = vdgx_control_op_has_id (self->op);
    int rc = msgpack_pack_map (pk, 1 + id);
    rc |= s_kstr (pk, "op", vdgx_control_op_name (self->op));
    if (id)
        rc |= s_kstr (pk, "id", self->id);
    return rc? -1: 0;
}

int
vdgx_control_decode_obj (vdgx_control_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    enum { K_OP, K_ID, K_N };
    static const char *keys [] = { "op", "id" };
    vdgx_control_clear (self);
    vdgx_mp_map_t m;
    int op;
    if (vdgx_mp_map (&m, obj, "", keys, K_N, err)
    ||  vdgx_mp_enum (&m, K_OP, true, s_control_ops, S_COUNT (s_control_ops), &op) < 0)
        goto failed;
    self->op = (vdgx_control_op_t) op;
    if (vdgx_control_op_has_id (self->op)) {
        if (s_read_id (&m, K_ID, true, self->id) < 0)
            goto failed;
    }
    else
    if (s_forbid (&m, K_ID, "with this op"))
        goto failed;
    return 0;
failed:
    vdgx_control_clear (self);
    return -1;
}

S_FRAME_AND_DECODE (control)

//  ---------------------------------------------------------------------------------------
//  5.2 Job status

void
vdgx_jobstatus_init (vdgx_jobstatus_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    vdgx_genreq_init (&self->request);
}

void
vdgx_jobstatus_clear (vdgx_jobstatus_t *self)
{
    assert (self);
    vdgx_genreq_clear (&self->request);
    vdgx_jobstatus_init (self);
}

int
vdgx_jobstatus_copy (vdgx_jobstatus_t *dst, const vdgx_jobstatus_t *src)
{
    assert (dst && src && dst != src);
    vdgx_jobstatus_clear (dst);
    vdgx_genreq_t request = dst->request;
    *dst = *src;
    dst->request = request;
    if (src->has_request && vdgx_genreq_copy (&dst->request, &src->request)) {
        vdgx_jobstatus_clear (dst);
        return -1;
    }
    return 0;
}

int
vdgx_jobstatus_pack (const vdgx_jobstatus_t *self, msgpack_packer *pk)
{
    assert (self);
    int rc = msgpack_pack_map (pk, 13 + self->has_error + self->has_result + self->has_request
                                   + 3 * self->has_ready);
    rc |= s_kstr (pk, "id", self->id) | s_kstr (pk, "model", self->model)
        | s_kstr (pk, "state", vdgx_job_state_name (self->state))
        | s_kstr (pk, "phase", vdgx_phase_name (self->phase))
        | s_kuint (pk, "step", self->step) | s_kuint (pk, "steps", self->steps)
        | s_kdbl (pk, "percent", self->percent)
        | s_kuint (pk, "queue_position", self->queue_position)
        | s_kuint (pk, "attempt", self->attempt)
        | s_kdbl (pk, "created_at", self->created_at)
        | s_kdbl (pk, "started_at", self->started_at)
        | s_kdbl (pk, "finished_at", self->finished_at)
        | s_kbool (pk, "cached", self->cached);
    if (self->has_error)
        rc |= vdgx_mp_pack_key (pk, "error") | vdgx_error_pack_inner (&self->error, pk);
    if (self->has_result)
        rc |= vdgx_mp_pack_key (pk, "result") | msgpack_pack_map (pk, KV_N)
            | s_video_pack_fields (&self->result, pk);
    if (self->has_request)
        rc |= vdgx_mp_pack_key (pk, "request") | vdgx_genreq_pack (&self->request, pk);
    if (self->has_ready)
        rc |= s_ready_pack (&self->ready, pk);
    return rc? -1: 0;
}

static int
s_jobstatus_decode_at (vdgx_jobstatus_t *self, const msgpack_object *obj, const char *path,
                       vdgx_error_t *err)
{
    enum { K_ID, K_MODEL, K_STATE, K_PHASE, K_STEP, K_STEPS, K_PERCENT, K_QPOS, K_ATTEMPT,
           K_CREATED, K_STARTED, K_FINISHED, K_CACHED, K_ERROR, K_RESULT, K_REQUEST,
           K_READY_BYTES, K_READY_FRAMES, K_READY_SECONDS, K_N };
    static const char *keys [] = { "id", "model", "state", "phase", "step", "steps", "percent",
        "queue_position", "attempt", "created_at", "started_at", "finished_at", "cached",
        "error", "result", "request", "ready_bytes", "ready_frames", "ready_seconds" };
    vdgx_jobstatus_clear (self);
    vdgx_mp_map_t m;
    int state, phase;
    char sub [64];
    if (vdgx_mp_map (&m, obj, path, keys, K_N, err)
    ||  s_read_id (&m, K_ID, true, self->id) < 0
    ||  s_read_model (&m, K_MODEL, true, self->model) < 0
    ||  vdgx_mp_enum (&m, K_STATE, true, s_job_states, S_COUNT (s_job_states), &state) < 0
    ||  vdgx_mp_enum (&m, K_PHASE, true, s_phases, S_COUNT (s_phases), &phase) < 0
    ||  vdgx_mp_u32 (&m, K_STEP, true, 0, UINT32_MAX, &self->step) < 0
    ||  vdgx_mp_u32 (&m, K_STEPS, true, 0, UINT32_MAX, &self->steps) < 0
    ||  vdgx_mp_double (&m, K_PERCENT, true, 0, 100, false, &self->percent) < 0
    ||  vdgx_mp_u32 (&m, K_QPOS, true, 0, UINT32_MAX, &self->queue_position) < 0
    ||  vdgx_mp_u32 (&m, K_ATTEMPT, true, 0, 1000, &self->attempt) < 0
    ||  vdgx_mp_double (&m, K_CREATED, true, 0, S_TIME_MAX, false, &self->created_at) < 0
    ||  vdgx_mp_double (&m, K_STARTED, true, 0, S_TIME_MAX, false, &self->started_at) < 0
    ||  vdgx_mp_double (&m, K_FINISHED, true, 0, S_TIME_MAX, false, &self->finished_at) < 0
    ||  vdgx_mp_bool (&m, K_CACHED, true, &self->cached) < 0
    ||  s_ready_read (&m, K_READY_BYTES, &self->has_ready, &self->ready) < 0)
        goto failed;
    self->state = (vdgx_job_state_t) state;
    self->phase = (vdgx_phase_t) phase;
    if (self->has_ready && self->state != VDGX_JOB_RUNNING) {
        vdgx_mp_fail (&m, K_READY_BYTES, "only allowed while the job runs");
        goto failed;
    }
    if (vdgx_mp_value (&m, K_ERROR)) {
        if (!s_state_has_error (self->state)) {
            vdgx_mp_fail (&m, K_ERROR, "only allowed when the job failed, was cancelled or expired");
            goto failed;
        }
        vdgx_mp_field (&m, K_ERROR, sub, sizeof sub);
        if (vdgx_error_decode_inner (&self->error, vdgx_mp_value (&m, K_ERROR), sub, err))
            goto failed;
        self->has_error = true;
    }
    if (vdgx_mp_value (&m, K_RESULT)) {
        if (self->state != VDGX_JOB_COMPLETED) {
            vdgx_mp_fail (&m, K_RESULT, "only allowed when the job completed");
            goto failed;
        }
        vdgx_mp_field (&m, K_RESULT, sub, sizeof sub);
        if (s_video_decode (&self->result, vdgx_mp_value (&m, K_RESULT), sub, err))
            goto failed;
        self->has_result = true;
    }
    if (vdgx_mp_value (&m, K_REQUEST)) {
        vdgx_mp_field (&m, K_REQUEST, sub, sizeof sub);
        if (vdgx_genreq_decode_at (&self->request, vdgx_mp_value (&m, K_REQUEST), sub, err))
            goto failed;
        self->has_request = true;
    }
    return 0;
failed:
    vdgx_jobstatus_clear (self);
    return -1;
}

int
vdgx_jobstatus_decode_obj (vdgx_jobstatus_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    return s_jobstatus_decode_at (self, obj, "", err);
}

S_FRAME_AND_DECODE (jobstatus)

//  ---------------------------------------------------------------------------------------
//  7. Job-service commands

void
vdgx_jobcmd_init (vdgx_jobcmd_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    vdgx_genreq_init (&self->request);
    self->limit = 100;
    self->length = 1024 * 1024;
}

void
vdgx_jobcmd_clear (vdgx_jobcmd_t *self)
{
    assert (self);
    vdgx_genreq_clear (&self->request);
    vdgx_jobcmd_init (self);
}

enum { KC_CMD, KC_REQUEST, KC_ID, KC_STATE, KC_MODEL, KC_LIMIT, KC_AFTER, KC_OFFSET, KC_LENGTH,
       KC_HOST, KC_OWNER, KC_ROLE, KC_ORDER, KC_N };
static const char *s_jobcmd_keys [] = {
    "cmd", "request", "id", "state", "model", "limit", "after", "offset", "length", "host",
    "owner", "role", "order"
};
static const char *s_roles [] = { "user", "admin" };
static const char *s_list_orders [] = { "asc", "desc" };
//  owner and role may come with every command (on behalf of).
#define S_JOBCMD_ANY (1u << KC_OWNER | 1u << KC_ROLE)
//  Per command: keys allowed (bit per KC_*) and keys required.
static const struct { unsigned allowed, required; } s_jobcmd_shape [VDGX_JOBCMD_COUNT] = {
    [VDGX_JOBCMD_SUBMIT] = { 1u << KC_REQUEST, 1u << KC_REQUEST },
    [VDGX_JOBCMD_STATUS] = { 1u << KC_ID, 1u << KC_ID },
    [VDGX_JOBCMD_LIST]   = { 1u << KC_STATE | 1u << KC_MODEL | 1u << KC_LIMIT | 1u << KC_AFTER
                             | 1u << KC_ORDER, 0 },
    [VDGX_JOBCMD_CANCEL] = { 1u << KC_ID, 1u << KC_ID },
    [VDGX_JOBCMD_RESULT] = { 1u << KC_ID | 1u << KC_OFFSET | 1u << KC_LENGTH, 1u << KC_ID },
    [VDGX_JOBCMD_DELETE] = { 1u << KC_ID, 1u << KC_ID },
    [VDGX_JOBCMD_UNLOAD] = { 1u << KC_MODEL, 1u << KC_MODEL },
    [VDGX_JOBCMD_MODELS] = { 0, 0 },
    [VDGX_JOBCMD_DRAIN]  = { 1u << KC_MODEL | 1u << KC_HOST, 0 },
    [VDGX_JOBCMD_RESET_LIMITS] = { 1u << KC_MODEL, 1u << KC_MODEL },
};

int
vdgx_jobcmd_pack (const vdgx_jobcmd_t *self, msgpack_packer *pk)
{
    assert (self && (unsigned) self->cmd < VDGX_JOBCMD_COUNT);
    //  Optional list/result keys are sent only when they differ from the defaults.
    bool send [KC_N] = { false };
    switch (self->cmd) {
        case VDGX_JOBCMD_SUBMIT: send [KC_REQUEST] = true; break;
        case VDGX_JOBCMD_STATUS: case VDGX_JOBCMD_CANCEL: case VDGX_JOBCMD_DELETE:
            send [KC_ID] = true; break;
        case VDGX_JOBCMD_LIST:
            send [KC_STATE] = self->has_state;
            send [KC_MODEL] = self->model [0] != 0;
            send [KC_LIMIT] = self->limit != 100;
            send [KC_AFTER] = self->after [0] != 0;
            send [KC_ORDER] = self->desc;
            break;
        case VDGX_JOBCMD_RESULT:
            send [KC_ID] = true;
            send [KC_OFFSET] = self->offset != 0;
            send [KC_LENGTH] = self->length != 1024 * 1024;
            break;
        case VDGX_JOBCMD_UNLOAD: case VDGX_JOBCMD_RESET_LIMITS: send [KC_MODEL] = true; break;
        case VDGX_JOBCMD_DRAIN:
            send [KC_MODEL] = self->model [0] != 0;
            send [KC_HOST] = self->host [0] != 0;
            break;
        default: break;
    }
    send [KC_OWNER] = self->owner [0] != 0;
    send [KC_ROLE] = self->has_role;
    uint32_t n = 1;
    for (int k = 1; k < KC_N; k++)
        n += send [k];
    int rc = msgpack_pack_map (pk, n);
    rc |= s_kstr (pk, "cmd", vdgx_jobcmd_name (self->cmd));
    if (send [KC_REQUEST])
        rc |= vdgx_mp_pack_key (pk, "request") | vdgx_genreq_pack (&self->request, pk);
    if (send [KC_ID])     rc |= s_kstr (pk, "id", self->id);
    if (send [KC_STATE])  rc |= s_kstr (pk, "state", vdgx_job_state_name (self->state));
    if (send [KC_MODEL])  rc |= s_kstr (pk, "model", self->model);
    if (send [KC_LIMIT])  rc |= s_kuint (pk, "limit", self->limit);
    if (send [KC_AFTER])  rc |= s_kstr (pk, "after", self->after);
    if (send [KC_OFFSET]) rc |= s_kuint (pk, "offset", self->offset);
    if (send [KC_LENGTH]) rc |= s_kuint (pk, "length", self->length);
    if (send [KC_HOST])   rc |= s_kstr (pk, "host", self->host);
    if (send [KC_OWNER])  rc |= s_kstr (pk, "owner", self->owner);
    if (send [KC_ROLE])   rc |= s_kstr (pk, "role", s_roles [self->admin]);
    if (send [KC_ORDER])  rc |= s_kstr (pk, "order", "desc");
    return rc? -1: 0;
}

int
vdgx_jobcmd_decode_obj (vdgx_jobcmd_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    vdgx_jobcmd_clear (self);
    vdgx_mp_map_t m;
    int cmd, state, order, rc;
    if (vdgx_mp_map (&m, obj, "", s_jobcmd_keys, KC_N, err)
    ||  vdgx_mp_enum (&m, KC_CMD, true, s_jobcmds, S_COUNT (s_jobcmds), &cmd) < 0)
        goto failed;
    self->cmd = (vdgx_jobcmd_type_t) cmd;
    for (int k = 1; k < KC_N; k++) {
        bool present = vdgx_mp_value (&m, (size_t) k) != NULL;
        if (present && !((s_jobcmd_shape [cmd].allowed | S_JOBCMD_ANY) & (1u << k))) {
            vdgx_mp_fail (&m, (size_t) k, "not allowed with cmd '%s'", s_jobcmds [cmd]);
            goto failed;
        }
        if (!present && (s_jobcmd_shape [cmd].required & (1u << k))) {
            vdgx_mp_fail (&m, (size_t) k, "missing (required by cmd '%s')", s_jobcmds [cmd]);
            goto failed;
        }
    }
    if (vdgx_mp_value (&m, KC_REQUEST)
    &&  vdgx_genreq_decode_at (&self->request, vdgx_mp_value (&m, KC_REQUEST), "request", err))
        goto failed;
    if (s_read_id (&m, KC_ID, false, self->id) < 0
    ||  (rc = vdgx_mp_enum (&m, KC_STATE, false, s_job_states, S_COUNT (s_job_states), &state)) < 0)
        goto failed;
    self->has_state = rc == 1;
    if (self->has_state)
        self->state = (vdgx_job_state_t) state;
    if (s_read_model (&m, KC_MODEL, false, self->model) < 0
    ||  vdgx_mp_u32 (&m, KC_LIMIT, false, 1, VDGX_LIST_LIMIT_MAX, &self->limit) < 0
    ||  s_read_id (&m, KC_AFTER, false, self->after) < 0
    ||  vdgx_mp_uint (&m, KC_OFFSET, false, 0, S_BYTES_MAX, &self->offset) < 0
    ||  vdgx_mp_u32 (&m, KC_LENGTH, false, 1, VDGX_RESULT_READ_MAX, &self->length) < 0
    ||  s_read_printable (&m, KC_HOST, false, 1, VDGX_HOST_MAX, self->host, sizeof self->host) < 0
    ||  s_read_printable (&m, KC_OWNER, false, 1, VDGX_OWNER_MAX, self->owner, sizeof self->owner) < 0
    ||  (rc = vdgx_mp_enum (&m, KC_ROLE, false, s_roles, S_COUNT (s_roles), &state)) < 0)
        goto failed;
    self->has_role = rc == 1;
    self->admin = self->has_role && state == 1;
    if ((rc = vdgx_mp_enum (&m, KC_ORDER, false, s_list_orders, S_COUNT (s_list_orders), &order)) < 0)
        goto failed;
    self->desc = rc == 1 && order == 1;
    return 0;
failed:
    vdgx_jobcmd_clear (self);
    return -1;
}

S_FRAME_AND_DECODE (jobcmd)

//  ---------------------------------------------------------------------------------------
//  Service summaries

int
vdgx_svcinfo_pack (const vdgx_svcinfo_t *self, msgpack_packer *pk)
{
    assert (self);
    int rc = msgpack_pack_map (pk, 3 + 2 * self->has_queue + self->limits.present);
    rc |= s_kstr (pk, "name", self->name) | s_kuint (pk, "workers", self->workers);
    if (self->has_queue)
        rc |= s_kuint (pk, "queued", self->queued) | s_kuint (pk, "running", self->running);
    uint32_t n = 0;
    for (int s = 0; s < VDGX_WSTATE_COUNT; s++)
        n += self->states [s] > 0;
    rc |= vdgx_mp_pack_key (pk, "states") | msgpack_pack_map (pk, n);
    for (int s = 0; s < VDGX_WSTATE_COUNT; s++)
        if (self->states [s])
            rc |= s_kuint (pk, s_wstates [s], self->states [s]);
    if (self->limits.present)
        rc |= vdgx_mp_pack_key (pk, "limits") | vdgx_limits_pack (&self->limits, pk);
    return rc? -1: 0;
}

int
vdgx_svcinfo_decode_obj (vdgx_svcinfo_t *self, const msgpack_object *obj, const char *path,
                         vdgx_error_t *err)
{
    enum { K_NAME, K_WORKERS, K_QUEUED, K_RUNNING, K_STATES, K_LIMITS, K_N };
    static const char *keys [] = { "name", "workers", "queued", "running", "states", "limits" };
    memset (self, 0, sizeof *self);
    vdgx_mp_map_t m;
    int rq, rr;
    if (vdgx_mp_map (&m, obj, path, keys, K_N, err)
    ||  s_read_printable (&m, K_NAME, true, 1, VDGX_SERVICE_MAX, self->name, sizeof self->name) < 0
    ||  vdgx_mp_u32 (&m, K_WORKERS, true, 0, 1000000, &self->workers) < 0
    ||  (rq = vdgx_mp_u32 (&m, K_QUEUED, false, 0, UINT32_MAX, &self->queued)) < 0
    ||  (rr = vdgx_mp_u32 (&m, K_RUNNING, false, 0, UINT32_MAX, &self->running)) < 0)
        goto failed;
    if (rq != rr) {
        vdgx_mp_fail (&m, rq? K_RUNNING: K_QUEUED, "queued and running come together");
        goto failed;
    }
    self->has_queue = rq == 1;
    if (!vdgx_mp_value (&m, K_STATES)) {
        vdgx_mp_fail (&m, K_STATES, "missing");
        goto failed;
    }
    char sub [64];
    vdgx_mp_field (&m, K_STATES, sub, sizeof sub);
    vdgx_mp_map_t states;
    if (vdgx_mp_map (&states, vdgx_mp_value (&m, K_STATES), sub, s_wstates, VDGX_WSTATE_COUNT, err))
        goto failed;
    for (size_t s = 0; s < VDGX_WSTATE_COUNT; s++)
        if (vdgx_mp_u32 (&states, s, false, 0, 1000000, &self->states [s]) < 0)
            goto failed;
    if (vdgx_mp_value (&m, K_LIMITS)) {
        vdgx_mp_field (&m, K_LIMITS, sub, sizeof sub);
        if (vdgx_limits_decode_obj (&self->limits, vdgx_mp_value (&m, K_LIMITS), sub, err))
            goto failed;
    }
    return 0;
failed:
    memset (self, 0, sizeof *self);
    return -1;
}

//  ---------------------------------------------------------------------------------------
//  7. Job-service replies

void
vdgx_jobreply_init (vdgx_jobreply_t *self, vdgx_jobcmd_type_t cmd)
{
    assert (self && (unsigned) cmd < VDGX_JOBCMD_COUNT);
    memset (self, 0, sizeof *self);
    self->cmd = cmd;
    self->ok = true;
    vdgx_jobstatus_init (&self->job);
}

void
vdgx_jobreply_clear (vdgx_jobreply_t *self)
{
    assert (self);
    vdgx_jobstatus_clear (&self->job);
    for (size_t i = 0; i < self->njobs; i++)
        vdgx_jobstatus_clear (&self->jobs [i]);
    free (self->jobs);
    free (self->models);
    free (self->data);
    vdgx_jobreply_init (self, self->cmd);
}

int
vdgx_jobreply_add_job (vdgx_jobreply_t *self, const vdgx_jobstatus_t *status)
{
    //  Doubling: a list reply of n jobs costs O(n) copying, not O(n^2) (one realloc per
    //  job copied the whole array each time: seconds for 1,000 jobs under ASan).
    if (self->njobs == self->jobs_max) {
        size_t max = self->jobs_max? self->jobs_max * 2: 16;
        vdgx_jobstatus_t *grown = realloc (self->jobs, max * sizeof *grown);
        if (!grown)
            return -1;
        self->jobs = grown;
        self->jobs_max = max;
    }
    vdgx_jobstatus_init (&self->jobs [self->njobs]);
    if (vdgx_jobstatus_copy (&self->jobs [self->njobs], status))
        return -1;
    self->njobs++;
    return 0;
}

int
vdgx_jobreply_add_model (vdgx_jobreply_t *self, const vdgx_svcinfo_t *info)
{
    vdgx_svcinfo_t *grown = realloc (self->models, (self->nmodels + 1) * sizeof *grown);
    if (!grown)
        return -1;
    self->models = grown;
    grown [self->nmodels++] = *info;
    return 0;
}

int
vdgx_jobreply_set_data (vdgx_jobreply_t *self, const void *data, size_t size)
{
    assert (size <= VDGX_RESULT_READ_MAX);
    uint8_t *copy = size? malloc (size): NULL;
    if (size && !copy)
        return -1;
    if (size)
        memcpy (copy, data, size);
    free (self->data);
    self->data = copy;
    self->data_size = size;
    return 0;
}

int
vdgx_jobreply_pack (const vdgx_jobreply_t *self, msgpack_packer *pk)
{
    assert (self && (unsigned) self->cmd < VDGX_JOBCMD_COUNT);
    if (!self->ok)
        return vdgx_error_pack (&self->error, self->retry_after_ms, pk);
    static const uint32_t nkeys [VDGX_JOBCMD_COUNT] = { 5, 2, 3, 2, 5, 3, 2, 2, 2, 2 };
    uint32_t extra = self->cmd == VDGX_JOBCMD_RESULT? (uint32_t) self->partial + (self->attempt != 0): 0;
    int rc = msgpack_pack_map (pk, nkeys [self->cmd] + extra);
    rc |= s_kbool (pk, "ok", true);
    switch (self->cmd) {
        case VDGX_JOBCMD_SUBMIT:
            rc |= s_kstr (pk, "id", self->id) | s_kstr (pk, "state", vdgx_job_state_name (self->state))
                | s_kbool (pk, "cached", self->cached) | s_kuint (pk, "queue_position", self->queue_position);
            break;
        case VDGX_JOBCMD_STATUS:
        case VDGX_JOBCMD_CANCEL:
            rc |= vdgx_mp_pack_key (pk, "job") | vdgx_jobstatus_pack (&self->job, pk);
            break;
        case VDGX_JOBCMD_LIST:
            rc |= vdgx_mp_pack_key (pk, "jobs") | msgpack_pack_array (pk, self->njobs);
            for (size_t i = 0; i < self->njobs; i++)
                rc |= vdgx_jobstatus_pack (&self->jobs [i], pk);
            rc |= s_kbool (pk, "has_more", self->has_more);
            break;
        case VDGX_JOBCMD_RESULT:
            rc |= s_kuint (pk, "size", self->size) | s_kstr (pk, "sha256", self->sha256)
                | s_kuint (pk, "offset", self->offset)
                | vdgx_mp_pack_key (pk, "data") | msgpack_pack_bin (pk, self->data_size);
            if (self->data_size)
                rc |= msgpack_pack_bin_body (pk, self->data, self->data_size);
            if (self->partial)
                rc |= s_kbool (pk, "partial", true);
            if (self->attempt)
                rc |= s_kuint (pk, "attempt", self->attempt);
            break;
        case VDGX_JOBCMD_DELETE:
            rc |= s_kstr (pk, "id", self->id) | s_kbool (pk, "deleted", true);
            break;
        case VDGX_JOBCMD_UNLOAD: case VDGX_JOBCMD_DRAIN: case VDGX_JOBCMD_RESET_LIMITS:
            rc |= s_kuint (pk, "workers", self->workers);
            break;
        case VDGX_JOBCMD_MODELS:
            rc |= vdgx_mp_pack_key (pk, "models") | msgpack_pack_array (pk, self->nmodels);
            for (size_t i = 0; i < self->nmodels; i++)
                rc |= vdgx_svcinfo_pack (&self->models [i], pk);
            break;
        default:
            return -1;
    }
    return rc? -1: 0;
}

int
vdgx_jobreply_decode_obj (vdgx_jobreply_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    enum { K_OK, K_ERROR, K_ID, K_STATE, K_CACHED, K_QPOS, K_JOB, K_JOBS, K_HAS_MORE, K_SIZE,
           K_SHA256, K_OFFSET, K_DATA, K_DELETED, K_WORKERS, K_MODELS, K_PARTIAL, K_ATTEMPT, K_N };
    static const char *keys [] = { "ok", "error", "id", "state", "cached", "queue_position",
        "job", "jobs", "has_more", "size", "sha256", "offset", "data", "deleted", "workers",
        "models", "partial", "attempt" };
    //  Optional keys of a variant (the others are required).
    static const unsigned optional [VDGX_JOBCMD_COUNT] = {
        [VDGX_JOBCMD_RESULT] = 1u << K_PARTIAL | 1u << K_ATTEMPT,
    };
    static const unsigned shape [VDGX_JOBCMD_COUNT] = {
        [VDGX_JOBCMD_SUBMIT] = 1u << K_ID | 1u << K_STATE | 1u << K_CACHED | 1u << K_QPOS,
        [VDGX_JOBCMD_STATUS] = 1u << K_JOB,
        [VDGX_JOBCMD_LIST]   = 1u << K_JOBS | 1u << K_HAS_MORE,
        [VDGX_JOBCMD_CANCEL] = 1u << K_JOB,
        [VDGX_JOBCMD_RESULT] = 1u << K_SIZE | 1u << K_SHA256 | 1u << K_OFFSET | 1u << K_DATA,
        [VDGX_JOBCMD_DELETE] = 1u << K_ID | 1u << K_DELETED,
        [VDGX_JOBCMD_UNLOAD] = 1u << K_WORKERS,
        [VDGX_JOBCMD_MODELS] = 1u << K_MODELS,
        [VDGX_JOBCMD_DRAIN]  = 1u << K_WORKERS,
        [VDGX_JOBCMD_RESET_LIMITS] = 1u << K_WORKERS,
    };
    vdgx_jobreply_clear (self);
    vdgx_mp_map_t m;
    char sub [64];
    if (vdgx_mp_map (&m, obj, "", keys, K_N, err)
    ||  vdgx_mp_bool (&m, K_OK, true, &self->ok) < 0)
        goto failed;
    //  Every key of the variant is required; nothing else is allowed.
    unsigned want = self->ok? shape [self->cmd]: 1u << K_ERROR;
    unsigned may = self->ok? optional [self->cmd]: 0;
    for (size_t k = 1; k < K_N; k++)
        if (vdgx_mp_value (&m, k) && !((want | may) & (1u << k))) {
            if (self->ok)
                vdgx_mp_fail (&m, k, "not allowed in a '%s' reply", s_jobcmds [self->cmd]);
            else
                vdgx_mp_fail (&m, k, "not allowed when ok is false");
            goto failed;
        }
    for (size_t k = 1; k < K_N; k++) {
        if (!vdgx_mp_value (&m, k) && (want & (1u << k))) {
            vdgx_mp_fail (&m, k, "missing");
            goto failed;
        }
    }
    if (!self->ok) {
        vdgx_mp_field (&m, K_ERROR, sub, sizeof sub);
        if (s_error_decode_inner (&self->error, vdgx_mp_value (&m, K_ERROR), sub,
                                  &self->retry_after_ms, err))
            goto failed;
        return 0;
    }
    int state;
    bool deleted;
    const uint8_t *data;
    size_t size;
    if (s_read_id (&m, K_ID, false, self->id) < 0
    ||  vdgx_mp_enum (&m, K_STATE, false, s_job_states, S_COUNT (s_job_states), &state) == -1
    ||  vdgx_mp_bool (&m, K_CACHED, false, &self->cached) < 0
    ||  vdgx_mp_u32 (&m, K_QPOS, false, 0, UINT32_MAX, &self->queue_position) < 0
    ||  vdgx_mp_bool (&m, K_HAS_MORE, false, &self->has_more) < 0
    ||  vdgx_mp_uint (&m, K_SIZE, false, 0, S_BYTES_MAX, &self->size) < 0
    ||  vdgx_mp_str (&m, K_SHA256, false, 64, 64, self->sha256, sizeof self->sha256) < 0
    ||  vdgx_mp_uint (&m, K_OFFSET, false, 0, S_BYTES_MAX, &self->offset) < 0
    ||  vdgx_mp_bool (&m, K_DELETED, false, &deleted) < 0
    ||  vdgx_mp_u32 (&m, K_WORKERS, false, 0, 1000000, &self->workers) < 0
    ||  vdgx_mp_bool (&m, K_PARTIAL, false, &self->partial) < 0
    ||  vdgx_mp_u32 (&m, K_ATTEMPT, false, 1, 1000, &self->attempt) < 0)
        goto failed;
    if (vdgx_mp_value (&m, K_PARTIAL) && !self->partial) {
        vdgx_mp_fail (&m, K_PARTIAL, "must be true (left out when the video is complete)");
        goto failed;
    }
    if (vdgx_mp_value (&m, K_STATE))
        self->state = (vdgx_job_state_t) state;
    if (self->sha256 [0] && !vdgx_sha256_is_hex (self->sha256)) {
        vdgx_mp_fail (&m, K_SHA256, "must be 64 lowercase hex digits");
        goto failed;
    }
    if (vdgx_mp_value (&m, K_DELETED) && !deleted) {
        vdgx_mp_fail (&m, K_DELETED, "must be true");
        goto failed;
    }
    if (vdgx_mp_bin (&m, K_DATA, false, VDGX_RESULT_READ_MAX, &data, &size) == 1) {
        if (size > 0 && self->offset + size > self->size) {
            vdgx_mp_fail (&m, K_DATA, "offset + length exceeds the size");
            goto failed;
        }
        if (vdgx_jobreply_set_data (self, data, size)) {
            vdgx_mp_fail (&m, K_DATA, "out of memory");
            goto failed;
        }
    }
    else
    if (vdgx_mp_value (&m, K_DATA))
        goto failed;
    if (vdgx_mp_value (&m, K_JOB)) {
        vdgx_mp_field (&m, K_JOB, sub, sizeof sub);
        if (s_jobstatus_decode_at (&self->job, vdgx_mp_value (&m, K_JOB), sub, err))
            goto failed;
    }
    const msgpack_object *jobs = vdgx_mp_value (&m, K_JOBS);
    if (jobs) {
        if (jobs->type != MSGPACK_OBJECT_ARRAY || jobs->via.array.size > S_ARRAY_MAX) {
            vdgx_mp_fail (&m, K_JOBS, "expected an array of at most %d job statuses", S_ARRAY_MAX);
            goto failed;
        }
        if (jobs->via.array.size) {
            self->jobs = calloc (jobs->via.array.size, sizeof *self->jobs);
            if (!self->jobs) {
                vdgx_mp_fail (&m, K_JOBS, "out of memory");
                goto failed;
            }
            self->jobs_max = jobs->via.array.size;
        }
        for (uint32_t i = 0; i < jobs->via.array.size; i++) {
            snprintf (sub, sizeof sub, "jobs[%u]", i);
            vdgx_jobstatus_init (&self->jobs [i]);
            self->njobs = i + 1;
            if (s_jobstatus_decode_at (&self->jobs [i], &jobs->via.array.ptr [i], sub, err))
                goto failed;
        }
    }
    const msgpack_object *models = vdgx_mp_value (&m, K_MODELS);
    if (models) {
        if (models->type != MSGPACK_OBJECT_ARRAY || models->via.array.size > S_ARRAY_MAX) {
            vdgx_mp_fail (&m, K_MODELS, "expected an array of at most %d entries", S_ARRAY_MAX);
            goto failed;
        }
        if (models->via.array.size) {
            self->models = calloc (models->via.array.size, sizeof *self->models);
            if (!self->models) {
                vdgx_mp_fail (&m, K_MODELS, "out of memory");
                goto failed;
            }
        }
        for (uint32_t i = 0; i < models->via.array.size; i++) {
            snprintf (sub, sizeof sub, "models[%u]", i);
            self->nmodels = i + 1;
            if (vdgx_svcinfo_decode_obj (&self->models [i], &models->via.array.ptr [i], sub, err))
                goto failed;
        }
    }
    return 0;
failed:
    vdgx_jobreply_clear (self);
    return -1;
}

S_FRAME_AND_DECODE (jobreply)

//  ---------------------------------------------------------------------------------------
//  8. Events

void
vdgx_event_init (vdgx_event_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
}

void
vdgx_event_clear (vdgx_event_t *self)
{
    vdgx_event_init (self);
}

int
vdgx_event_topic (const vdgx_event_t *self, char *buf, size_t size)
{
    int n = self->is_model? snprintf (buf, size, "model.%s", self->model)
                          : snprintf (buf, size, "job.%s", self->id);
    return n < 0 || (size_t) n >= size? -1: 0;
}

int
vdgx_event_pack (const vdgx_event_t *self, msgpack_packer *pk)
{
    assert (self);
    int rc;
    if (self->is_model) {
        rc = msgpack_pack_map (pk, 5);
        rc |= s_kstr (pk, "type", "state") | s_kstr (pk, "model", self->model)
            | s_kstr (pk, "state", vdgx_wstate_state_name (self->worker_state))
            | s_kuint (pk, "workers", self->workers) | s_kdbl (pk, "ts", self->ts);
        return rc? -1: 0;
    }
    rc = msgpack_pack_map (pk, 9 + self->has_error + 3 * self->has_ready);
    rc |= s_kstr (pk, "type", self->type == VDGX_EVENT_PROGRESS? "progress"
                             : self->type == VDGX_EVENT_CHUNK? "chunk": "state")
        | s_kstr (pk, "id", self->id) | s_kstr (pk, "model", self->model)
        | s_kstr (pk, "state", vdgx_job_state_name (self->job_state))
        | s_kstr (pk, "phase", vdgx_phase_name (self->phase))
        | s_kuint (pk, "step", self->step) | s_kuint (pk, "steps", self->steps)
        | s_kdbl (pk, "percent", self->percent) | s_kdbl (pk, "ts", self->ts);
    if (self->has_error)
        rc |= vdgx_mp_pack_key (pk, "error") | vdgx_error_pack_inner (&self->error, pk);
    if (self->has_ready)
        rc |= s_ready_pack (&self->ready, pk);
    return rc? -1: 0;
}

zmsg_t *
vdgx_event_msg (const vdgx_event_t *self)
{
    char topic [VDGX_ID_MAX + 16];
    if (vdgx_event_topic (self, topic, sizeof topic))
        return NULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    zmsg_t *msg = NULL;
    if (vdgx_event_pack (self, &pk) == 0) {
        msg = zmsg_new ();
        zmsg_addstr (msg, topic);
        zmsg_addmem (msg, sb.data, sb.size);
    }
    msgpack_sbuffer_destroy (&sb);
    return msg;
}

static int
s_event_decode_obj (vdgx_event_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    enum { K_TYPE, K_ID, K_MODEL, K_STATE, K_PHASE, K_STEP, K_STEPS, K_PERCENT, K_TS, K_ERROR,
           K_WORKERS, K_READY_BYTES, K_READY_FRAMES, K_READY_SECONDS, K_N };
    static const char *keys [] = { "type", "id", "model", "state", "phase", "step", "steps",
        "percent", "ts", "error", "workers", "ready_bytes", "ready_frames", "ready_seconds" };
    static const char *types [] = { "progress", "state", "chunk" };
    vdgx_mp_map_t m;
    int type, state, phase;
    char model [VDGX_MODEL_MAX + 1] = "";
    if (vdgx_mp_map (&m, obj, "", keys, K_N, err)
    ||  vdgx_mp_enum (&m, K_TYPE, true, types, 3, &type) < 0
    ||  s_read_model (&m, K_MODEL, true, model) < 0
    ||  vdgx_mp_double (&m, K_TS, true, 0, S_TIME_MAX, false, &self->ts) < 0)
        return -1;
    self->type = (vdgx_event_type_t) type;
    if (self->is_model) {
        if (strcmp (model, self->model) != 0)
            return vdgx_mp_fail (&m, K_MODEL, "does not match the topic");
        if (self->type != VDGX_EVENT_STATE)
            return vdgx_mp_fail (&m, K_TYPE, "model events are of type state");
        for (size_t k = 0; k < K_N; k++)
            if (k == K_ID || k == K_PHASE || k == K_STEP || k == K_STEPS || k == K_PERCENT || k == K_ERROR
            ||  k == K_READY_BYTES || k == K_READY_FRAMES || k == K_READY_SECONDS)
                if (s_forbid (&m, k, "in a model event"))
                    return -1;
        if (vdgx_mp_enum (&m, K_STATE, true, s_wstates, S_COUNT (s_wstates), &state) < 0
        ||  vdgx_mp_u32 (&m, K_WORKERS, true, 0, 1000000, &self->workers) < 0)
            return -1;
        self->worker_state = (vdgx_wstate_state_t) state;
        return 0;
    }
    char id [VDGX_ID_MAX + 1];
    if (s_forbid (&m, K_WORKERS, "in a job event")
    ||  s_read_id (&m, K_ID, true, id) < 0)
        return -1;
    if (strcmp (id, self->id) != 0)
        return vdgx_mp_fail (&m, K_ID, "does not match the topic");
    memcpy (self->model, model, sizeof model);
    if (vdgx_mp_enum (&m, K_STATE, true, s_job_states, S_COUNT (s_job_states), &state) < 0
    ||  vdgx_mp_enum (&m, K_PHASE, true, s_phases, S_COUNT (s_phases), &phase) < 0
    ||  vdgx_mp_u32 (&m, K_STEP, true, 0, UINT32_MAX, &self->step) < 0
    ||  vdgx_mp_u32 (&m, K_STEPS, true, 0, UINT32_MAX, &self->steps) < 0
    ||  vdgx_mp_double (&m, K_PERCENT, true, 0, 100, false, &self->percent) < 0)
        return -1;
    self->job_state = (vdgx_job_state_t) state;
    self->phase = (vdgx_phase_t) phase;
    self->has_phase = true;
    if (s_ready_read (&m, K_READY_BYTES, &self->has_ready, &self->ready) < 0)
        return -1;
    if ((self->type == VDGX_EVENT_CHUNK) != self->has_ready)
        return vdgx_mp_fail (&m, K_READY_BYTES, self->has_ready? "only allowed in chunk events"
                                                                : "missing in a chunk event");
    if (vdgx_mp_value (&m, K_ERROR)) {
        if (!s_state_has_error (self->job_state))
            return vdgx_mp_fail (&m, K_ERROR, "only allowed when the job failed, was cancelled or expired");
        if (vdgx_error_decode_inner (&self->error, vdgx_mp_value (&m, K_ERROR), "error", err))
            return -1;
        self->has_error = true;
    }
    return 0;
}

int
vdgx_event_decode (vdgx_event_t *self, const char *topic, const void *data, size_t size,
                   vdgx_error_t *err)
{
    vdgx_event_clear (self);
    if (!topic)
        return vdgx_mp_error (err, "topic", "missing");
    if (strncmp (topic, "job.", 4) == 0) {
        if (!vdgx_job_id_valid (topic + 4))
            return vdgx_mp_error (err, "topic", "'job.' must be followed by a job id");
        strcpy (self->id, topic + 4);
    }
    else
    if (strncmp (topic, "model.", 6) == 0) {
        if (!vdgx_model_name_valid (topic + 6))
            return vdgx_mp_error (err, "topic", "'model.' must be followed by a model name");
        strcpy (self->model, topic + 6);
        self->is_model = true;
    }
    else
        return vdgx_mp_error (err, "topic", "must start with 'job.' or 'model.'");
    msgpack_unpacked up;
    if (vdgx_unpack (&up, data, size, err)) {
        vdgx_event_clear (self);
        return -1;
    }
    int rc = s_event_decode_obj (self, &up.data, err);
    msgpack_unpacked_destroy (&up);
    if (rc)
        vdgx_event_clear (self);
    return rc;
}

int
vdgx_event_decode_msg (vdgx_event_t *self, zmsg_t *msg, vdgx_error_t *err)
{
    vdgx_event_clear (self);
    if (!msg || zmsg_size (msg) != 2)
        return vdgx_mp_error (err, "", "an event has exactly two frames (topic, map)");
    zframe_t *topic = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    size_t len = zframe_size (topic);
    if (len == 0 || len > VDGX_ID_MAX + 8)
        return vdgx_mp_error (err, "topic", "length %zu is outside 1..%d", len, VDGX_ID_MAX + 8);
    char text [VDGX_ID_MAX + 9];
    memcpy (text, zframe_data (topic), len);
    text [len] = 0;
    if (strlen (text) != len)
        return vdgx_mp_error (err, "topic", "holds a NUL byte");
    return vdgx_event_decode (self, text, zframe_data (body), zframe_size (body), err);
}

//  ---------------------------------------------------------------------------------------
//  Selftest

#undef NDEBUG
#include <assert.h>

//  Builds a message from string frames ("" = empty frame; "\x01" etc. for command bytes).
static zmsg_t *
s_msg (int n, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, n);
    for (int i = 0; i < n; i++) {
        const char *text = va_arg (args, const char *);
        zmsg_addmem (msg, text, strlen (text));
    }
    va_end (args);
    return msg;
}

static bool
s_frame_eq (zmsg_t *msg, size_t index, const char *text)
{
    zframe_t *f = zmsg_first (msg);
    for (size_t i = 0; i < index && f; i++)
        f = zmsg_next (msg);
    return f && s_frame_is (f, text);
}

static void
s_expect_mdp_error (zmsg_t *msg, const char *want)
{
    vdgx_mdp_t m;
    vdgx_error_t err;
    int rc = vdgx_mdp_decode (&m, &msg, &err);
    if (rc != -1 || !strstr (err.message, want)) {
        fprintf (stderr, "mdp: want error '%s', got rc=%d '%s'\n", want, rc, rc? err.message: "");
        assert (false);
    }
    assert (msg == NULL && m.body == NULL && m.address == NULL);
}

void
vdgx_msg_test (bool verbose)
{
    (void) verbose;
    vdgx_error_t err;
    vdgx_mdp_t m;

    //  MDP/0.2 client REQUEST round trip: no leading empty frame (RFC 18).
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "payload");
    zmsg_t *msg = vdgx_mdp_client_request ("vdgx.jobs", &body);
    assert (msg && !body && zmsg_size (msg) == 4);
    assert (s_frame_eq (msg, 0, "MDPC02") && s_frame_eq (msg, 1, "\x01") && s_frame_eq (msg, 2, "vdgx.jobs"));
    assert (vdgx_mdp_decode (&m, &msg, &err) == 0 && !msg);
    assert (m.version == 2 && !m.worker && m.command == VDGX_MDPC_REQUEST);
    assert (streq (m.service, "vdgx.jobs") && zmsg_size (m.body) == 1);
    vdgx_mdp_clear (&m);

    //  Broker -> client PARTIAL and an MDP/0.1 reply (with the empty frame of RFC 7).
    body = zmsg_new ();
    zmsg_addstr (body, "p");
    msg = vdgx_mdp_client_reply (2, VDGX_MDPC_PARTIAL, "wan", &body);
    assert (s_frame_eq (msg, 1, "\x02"));
    zmsg_destroy (&msg);
    body = zmsg_new ();
    zmsg_addstr (body, "r");
    msg = vdgx_mdp_client_reply (1, VDGX_MDPC_FINAL, "wan", &body);
    assert (zmsg_size (msg) == 4 && s_frame_eq (msg, 0, "") && s_frame_eq (msg, 1, "MDPC01"));
    assert (vdgx_mdp_decode (&m, &msg, &err) == 0 && m.version == 1 && !m.worker);
    vdgx_mdp_clear (&m);
    body = zmsg_new ();
    zmsg_addstr (body, "p");
    assert (vdgx_mdp_client_reply (1, VDGX_MDPC_PARTIAL, "wan", &body) == NULL);   //  no 0.1 partials
    assert (vdgx_mdp_client_request ("wan", NULL) == NULL);                       //  needs a body

    //  Worker READY with a state map, HEARTBEAT, DISCONNECT, envelopes, CONTROL.
    vdgx_wstate_t ws;
    vdgx_wstate_init (&ws);
    strcpy (ws.service, "wan21-tiny");
    ws.state = VDGX_WSTATE_WARM;
    assert (vdgx_wstate_add_ext (&ws, "control") == 0);
    zframe_t *state = vdgx_wstate_frame (&ws);
    msg = vdgx_mdp_worker_ready (2, "wan21-tiny", &state);
    assert (msg && !state && zmsg_size (msg) == 4);
    assert (vdgx_mdp_decode (&m, &msg, &err) == 0 && m.worker && m.command == VDGX_MDPW_READY);
    assert (streq (m.service, "wan21-tiny") && zmsg_size (m.body) == 1);
    zframe_t *f = zmsg_first (m.body);
    vdgx_wstate_t ws2;
    vdgx_wstate_init (&ws2);
    assert (vdgx_wstate_decode (&ws2, zframe_data (f), zframe_size (f), &err) == 0);
    assert (vdgx_wstate_has_ext (&ws2, "control") && ws2.state == VDGX_WSTATE_WARM);
    vdgx_wstate_clear (&ws2);
    vdgx_wstate_clear (&ws);
    vdgx_mdp_clear (&m);

    zframe_t *address = zframe_new ("job-1", 5);
    body = zmsg_new ();
    zmsg_addstr (body, "x");
    msg = vdgx_mdp_worker_envelope (2, VDGX_MDPW_FINAL, address, &body);
    assert (zmsg_size (msg) == 5 && s_frame_eq (msg, 2, "job-1") && s_frame_eq (msg, 3, ""));
    assert (vdgx_mdp_decode (&m, &msg, &err) == 0 && m.command == VDGX_MDPW_FINAL);
    assert (zframe_streq (m.address, "job-1"));
    vdgx_mdp_clear (&m);
    //  MDP/0.1 REQUEST to a worker, and its REPLY decoded as FINAL.
    body = zmsg_new ();
    zmsg_addstr (body, "x");
    msg = vdgx_mdp_worker_envelope (1, VDGX_MDPW_FINAL, address, &body);
    assert (zmsg_size (msg) == 6 && s_frame_eq (msg, 1, "MDPW01") && s_frame_eq (msg, 2, "\x03"));
    assert (vdgx_mdp_decode (&m, &msg, &err) == 0 && m.version == 1 && m.command == VDGX_MDPW_FINAL);
    vdgx_mdp_clear (&m);
    body = zmsg_new ();
    zmsg_addstr (body, "x");
    assert (vdgx_mdp_worker_envelope (1, VDGX_MDPW_PARTIAL, address, &body) == NULL);
    zframe_destroy (&address);
    msg = vdgx_mdp_worker_command (1, VDGX_MDPW_HEARTBEAT, NULL);
    assert (s_frame_eq (msg, 2, "\x04"));
    assert (vdgx_mdp_decode (&m, &msg, &err) == 0 && m.command == VDGX_MDPW_HEARTBEAT);
    vdgx_mdp_clear (&m);
    msg = vdgx_mdp_worker_command (2, VDGX_MDPW_DISCONNECT, NULL);
    assert (zmsg_size (msg) == 2 && s_frame_eq (msg, 1, "\x06"));
    zmsg_destroy (&msg);

    vdgx_control_t control;
    vdgx_control_init (&control);
    control.op = VDGX_CONTROL_CANCEL;
    strcpy (control.id, "j1");
    body = zmsg_new ();
    f = vdgx_control_frame (&control);
    zmsg_append (body, &f);
    msg = vdgx_mdp_worker_command (2, VDGX_MDPW_CONTROL, &body);
    assert (vdgx_mdp_decode (&m, &msg, &err) == 0 && m.command == VDGX_MDPW_CONTROL);
    f = zmsg_first (m.body);
    vdgx_control_t back;
    assert (vdgx_control_decode (&back, zframe_data (f), zframe_size (f), &err) == 0);
    assert (back.op == VDGX_CONTROL_CANCEL && streq (back.id, "j1"));
    vdgx_mdp_clear (&m);
    assert (vdgx_mdp_worker_command (2, VDGX_MDPW_CONTROL, NULL) == NULL);

    //  Malformed framing.
    s_expect_mdp_error (zmsg_new (), "empty message");
    s_expect_mdp_error (s_msg (2, "MDPX02", "\x01"), "unknown protocol header");
    s_expect_mdp_error (s_msg (4, "", "MDPC02", "\x01", "svc"), "no leading empty frame");
    s_expect_mdp_error (s_msg (3, "MDPC02", "\x01", "svc"), "0 body frames");
    s_expect_mdp_error (s_msg (4, "MDPC02", "\x09", "svc", "b"), "invalid client command");
    s_expect_mdp_error (s_msg (4, "MDPC02", "\x01\x01", "svc", "b"), "command frame");
    s_expect_mdp_error (s_msg (4, "MDPC02", "\x01", "", "b"), "service name");
    s_expect_mdp_error (s_msg (4, "MDPC02", "\x01", "a b", "b"), "service name");
    s_expect_mdp_error (s_msg (2, "MDPW02", "\x08"), "invalid worker command");
    s_expect_mdp_error (s_msg (2, "MDPW02", "\x01"), "service name");
    s_expect_mdp_error (s_msg (5, "MDPW02", "\x01", "svc", "a", "b"), "2 body frames");
    s_expect_mdp_error (s_msg (5, "MDPW02", "\x04", "client", "x", "body"), "missing empty frame");
    s_expect_mdp_error (s_msg (4, "MDPW02", "\x04", "client", ""), "0 body frames");
    s_expect_mdp_error (s_msg (3, "MDPW02", "\x06", "extra"), "1 body frames");
    s_expect_mdp_error (s_msg (4, "", "MDPW01", "\x05", "x"), "1 body frames");
    s_expect_mdp_error (s_msg (3, "", "MDPW01", "\x06"), "invalid MDP/0.1 worker command");
    s_expect_mdp_error (s_msg (4, "", "MDPW01", "\x04", "state"), "1 body frames");  //  no 0.1 state maps
    msg = s_msg (3, "MDPC02", "\x01", "svc");
    char *big = calloc (1, VDGX_FRAME_MAX + 1);
    zmsg_addmem (msg, big, VDGX_FRAME_MAX + 1);
    s_expect_mdp_error (msg, "exceeds");
    msg = s_msg (4, "MDPW02", "\x03", "job", "");
    zmsg_addmem (msg, big, VDGX_FRAME_MAX + 1);          //  chunk frames may be larger
    assert (vdgx_mdp_decode (&m, &msg, &err) == 0);
    vdgx_mdp_clear (&m);
    free (big);
    msg = s_msg (3, "MDPC02", "\x01", "svc");
    for (int i = 0; i < VDGX_FRAMES_MAX; i++)
        zmsg_addstr (msg, "b");
    s_expect_mdp_error (msg, "frames exceed");

    //  Error replies.
    vdgx_error_t e, e2;
    vdgx_error_set (&e, VDGX_E_QUEUE_FULL, "model", "queue for %s is full", "wan");
    f = vdgx_error_frame (&e, 1500);
    uint64_t retry;
    assert (vdgx_error_decode (&e2, &retry, zframe_data (f), zframe_size (f), &err) == 0);
    assert (e2.code == e.code && streq (e2.message, "queue for wan is full"));
    assert (streq (e2.field, "model") && retry == 1500);
    zframe_destroy (&f);
    assert (vdgx_error_code_intern ("nope") == NULL);
    assert (streq (vdgx_error_code_intern ("too_large"), "too_large"));

    //  Event round trip and topic checks.
    vdgx_event_t ev, ev2;
    vdgx_event_init (&ev);
    ev.type = VDGX_EVENT_STATE;
    strcpy (ev.id, "j42");
    strcpy (ev.model, "wan21-tiny");
    ev.job_state = VDGX_JOB_FAILED;
    ev.phase = VDGX_PHASE_DENOISING;
    ev.step = 3;
    ev.steps = 10;
    ev.percent = 30;
    ev.ts = 1700000000.5;
    ev.has_error = true;
    vdgx_error_set (&ev.error, VDGX_E_WORKER_FAILED, NULL, "worker died");
    msg = vdgx_event_msg (&ev);
    assert (msg && s_frame_eq (msg, 0, "job.j42"));
    assert (vdgx_event_decode_msg (&ev2, msg, &err) == 0);
    assert (streq (ev2.id, "j42") && ev2.job_state == VDGX_JOB_FAILED && ev2.has_error);
    assert (ev2.error.code == ev.error.code && ev2.ts == ev.ts && ev2.step == 3);
    zmsg_destroy (&msg);
    vdgx_event_init (&ev);
    ev.is_model = true;
    strcpy (ev.model, "wan21-tiny");
    ev.type = VDGX_EVENT_STATE;
    ev.worker_state = VDGX_WSTATE_LOADING;
    ev.workers = 2;
    msg = vdgx_event_msg (&ev);
    assert (s_frame_eq (msg, 0, "model.wan21-tiny"));
    assert (vdgx_event_decode_msg (&ev2, msg, &err) == 0);
    assert (ev2.is_model && ev2.worker_state == VDGX_WSTATE_LOADING && ev2.workers == 2);
    //  A body that names another model than the topic is rejected.
    zframe_t *topic = zmsg_first (msg);
    zframe_reset (topic, "model.other", 11);
    assert (vdgx_event_decode_msg (&ev2, msg, &err) == -1 && streq (err.field, "model"));
    zframe_reset (topic, "jobs.x", 6);
    assert (vdgx_event_decode_msg (&ev2, msg, &err) == -1 && streq (err.field, "topic"));
    zmsg_destroy (&msg);
}
