/*  vdgx_msg.h - the VDGX/1 wire codecs (docs/PROTOCOL.md) and Majordomo framing helpers.

    Bodies are msgpack maps. Every body type T has:
        void vdgx_T_init (vdgx_T_t *self);                   //  zeroed, defaults set
        void vdgx_T_clear (vdgx_T_t *self);                  //  frees owned memory, re-inits
        int  vdgx_T_pack (const vdgx_T_t *self, msgpack_packer *pk);
        zframe_t *vdgx_T_frame (const vdgx_T_t *self);       //  packs into a new frame
        int  vdgx_T_decode_obj (vdgx_T_t *self, const msgpack_object *obj, vdgx_error_t *err);
        int  vdgx_T_decode (vdgx_T_t *self, const void *data, size_t size, vdgx_error_t *err);
    Decoding is strict (PROTOCOL.md section 1): a non-map, a missing required key, an unknown
    key, a wrong type, an oversized string, an out-of-range number or trailing bytes give -1 and
    err = {code "bad_request", message, field} where field is the key path ("request.prompt",
    "jobs[3].state", "" for the body itself). decode() clears self first; after an error self
    is cleared again, so callers only ever clear a decoded struct once.

    Majordomo frames (RFC 7 MDP/0.1, RFC 18 MDP/0.2) are parsed into vdgx_mdp_t and built back
    with vdgx_mdp_encode(). MDP/0.2 commands have NO leading empty frame (RFC 18 removed it);
    MDP/0.1 commands start with one. The ROUTER identity frame is not part of these helpers:
    the broker pops it before vdgx_mdp_decode and pushes it after vdgx_mdp_encode.

    Typical use:
        //  worker: answer a job with progress
        vdgx_progress_t p;  vdgx_progress_init (&p);  ... fill ...
        vdgx_mdp_t out;  vdgx_mdp_init (&out);
        out.version = 2;  out.worker = true;  out.command = VDGX_MDPW_PARTIAL;
        out.address = zframe_dup (job_address);
        out.body = zmsg_new ();  zmsg_append (out.body, &(zframe_t *) { vdgx_progress_frame (&p) });
        zmsg_t *msg = vdgx_mdp_encode (&out);     //  consumes address and body
        zmsg_send (&msg, dealer);

        //  broker: read anything from the ROUTER
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = zmsg_pop (msg);
        vdgx_mdp_t in;  vdgx_error_t err;
        if (vdgx_mdp_decode (&in, &msg, &err) == 0) { ... vdgx_mdp_clear (&in); }

    All functions are thread-safe (no shared state). Strings in structs are fixed-size arrays
    (with the caps of PROTOCOL.md) unless marked owned.
*/
#ifndef VDGX_MSG_H_INCLUDED
#define VDGX_MSG_H_INCLUDED

#include <czmq.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include "vdgx_limits.h"
#include "vdgx_genreq.h"
#include "vdgx_image.h"

#ifdef __cplusplus
extern "C" {
#endif

//  ---------------------------------------------------------------------------------------
//  Majordomo constants

#define VDGX_MDPC01 "MDPC01"
#define VDGX_MDPC02 "MDPC02"
#define VDGX_MDPW01 "MDPW01"
#define VDGX_MDPW02 "MDPW02"

//  MDP/0.2 client commands (RFC 18)
#define VDGX_MDPC_REQUEST       0x01
#define VDGX_MDPC_PARTIAL       0x02
#define VDGX_MDPC_FINAL         0x03
//  MDP/0.2 worker commands (RFC 18) and the VDGX CONTROL extension
#define VDGX_MDPW_READY         0x01
#define VDGX_MDPW_REQUEST       0x02
#define VDGX_MDPW_PARTIAL       0x03
#define VDGX_MDPW_FINAL         0x04
#define VDGX_MDPW_HEARTBEAT     0x05
#define VDGX_MDPW_DISCONNECT    0x06
#define VDGX_MDPW_CONTROL       0x07
//  MDP/0.1 worker command bytes on the wire (RFC 7). vdgx_mdp_t always holds the 0.2 numbers:
//  0.1 REPLY is mapped to FINAL, HEARTBEAT/DISCONNECT to their 0.2 values.
#define VDGX_MDPW01_READY       0x01
#define VDGX_MDPW01_REQUEST     0x02
#define VDGX_MDPW01_REPLY       0x03
#define VDGX_MDPW01_HEARTBEAT   0x04
#define VDGX_MDPW01_DISCONNECT  0x05

//  Limits (PROTOCOL.md 9)
#define VDGX_FRAME_MAX          (64 * 1024)             //  any frame into the broker
#define VDGX_CHUNK_MAX          (1024 * 1024)           //  data in one worker chunk
#define VDGX_CHUNK_FRAME_MAX    (VDGX_CHUNK_MAX + 1024) //  a worker PARTIAL/FINAL body frame
#define VDGX_RESULT_READ_MAX    (4 * 1024 * 1024)       //  `result` command length cap
#define VDGX_REPLY_FRAME_MAX    (VDGX_RESULT_READ_MAX + 4096)   //  a reply frame to a client
#define VDGX_FRAMES_MAX         64                      //  frames in one message
//  A job command or a job (a generate request with its images, VDGX_IMAGE_BYTES_MAX each):
//  client REQUEST bodies to vdgx.jobs and worker REQUEST bodies.
#define VDGX_REQUEST_FRAME_MAX  (2 * VDGX_IMAGE_BYTES_MAX + VDGX_FRAME_MAX)
#define VDGX_SERVICE_MAX        255
#define VDGX_ID_MAX             64      //  job ids: 1..64 of [A-Za-z0-9._-]
#define VDGX_HOST_MAX           255
#define VDGX_DEVICE_MAX         32
#define VDGX_MESSAGE_MAX        256     //  progress message
#define VDGX_MIME_MAX           64
#define VDGX_LIST_MAX           64      //  entries in ext / pending / precisions lists
#define VDGX_LIST_LIMIT_MAX     1000    //  `list` command limit
#define VDGX_WEIGHTS_ID_MAX     128     //  worker-state weights_id
#define VDGX_TOKEN_MAX          32      //  attempt token: 1..32 printable bytes (the broker sends 32 hex)
#define VDGX_OWNER_MAX          64      //  job owner / on-behalf-of principal

//  ---------------------------------------------------------------------------------------
//  Majordomo framing

typedef struct {
    uint8_t version;            //  1 = MDP/0.1, 2 = MDP/0.2
    bool worker;                //  MDPWxx (true) or MDPCxx (false)
    uint8_t command;            //  VDGX_MDPC_* or VDGX_MDPW_* (0.2 numbering)
    char service [VDGX_SERVICE_MAX + 1];    //  client commands and worker READY, else ""
    zframe_t *address;          //  worker REQUEST/PARTIAL/FINAL: the client address; owned
    zmsg_t *body;               //  body frames (READY: optional state map, CONTROL: the map,
                                //  HEARTBEAT: optional state map); owned, never NULL after
                                //  decode, may be empty
} vdgx_mdp_t;

void vdgx_mdp_init (vdgx_mdp_t *self);
void vdgx_mdp_clear (vdgx_mdp_t *self);
//  Parses a message (ROUTER identity already removed). Destroys *msg_p in every case.
//  Checks: header, command valid for version and direction, required frames present, service
//  name 1..255 printable bytes, empty delimiter after the address, frame count <= 64, frame
//  sizes (VDGX_FRAME_MAX; VDGX_CHUNK_FRAME_MAX for worker PARTIAL/FINAL bodies;
//  VDGX_REPLY_FRAME_MAX for client PARTIAL/FINAL replies; VDGX_REQUEST_FRAME_MAX for client
//  REQUEST bodies to vdgx.jobs and worker REQUEST bodies). Body frames: client commands and
//  worker REQUEST/PARTIAL/FINAL >= 1; READY/HEARTBEAT 0..1 (0 for MDP/0.1); CONTROL exactly 1;
//  DISCONNECT 0. An MDP/0.1 client message decodes as REQUEST (its request and reply have
//  the same frames). Returns 0, or -1 with err (code "bad_request").
int vdgx_mdp_decode (vdgx_mdp_t *self, zmsg_t **msg_p, vdgx_error_t *err);
//  Builds the wire message; moves self->address and self->body into it (self is left
//  cleared). Returns NULL on API misuse (e.g. CONTROL or PARTIAL for version 1, missing
//  address), after clearing self.
zmsg_t *vdgx_mdp_encode (vdgx_mdp_t *self);
//  Shorthands (body_p may be NULL; *body_p is consumed):
zmsg_t *vdgx_mdp_client_request (const char *service, zmsg_t **body_p);            //  0.2
zmsg_t *vdgx_mdp_client_reply (uint8_t version, uint8_t command, const char *service,
                               zmsg_t **body_p);           //  broker -> client
zmsg_t *vdgx_mdp_worker_command (uint8_t version, uint8_t command, zmsg_t **body_p);
zmsg_t *vdgx_mdp_worker_ready (uint8_t version, const char *service, zframe_t **state_p);
zmsg_t *vdgx_mdp_worker_envelope (uint8_t version, uint8_t command, zframe_t *address,
                                  zmsg_t **body_p);        //  REQUEST/PARTIAL/FINAL; address copied
const char *vdgx_mdp_command_name (bool worker, uint8_t command);

//  ---------------------------------------------------------------------------------------
//  Enumerations (names as on the wire)

typedef enum {
    VDGX_JOB_QUEUED = 0, VDGX_JOB_RUNNING, VDGX_JOB_COMPLETED, VDGX_JOB_FAILED,
    VDGX_JOB_CANCELLED, VDGX_JOB_EXPIRED, VDGX_JOB_STATE_COUNT
} vdgx_job_state_t;
typedef enum {
    VDGX_PHASE_QUEUED = 0, VDGX_PHASE_LOADING, VDGX_PHASE_ENCODING_TEXT, VDGX_PHASE_DENOISING,
    VDGX_PHASE_DECODING, VDGX_PHASE_MUXING, VDGX_PHASE_DONE, VDGX_PHASE_COUNT
} vdgx_phase_t;
typedef enum {
    VDGX_WSTATE_COLD = 0, VDGX_WSTATE_LOADING, VDGX_WSTATE_WARM, VDGX_WSTATE_BUSY,
    VDGX_WSTATE_UNLOADING, VDGX_WSTATE_DRAINING, VDGX_WSTATE_COUNT
} vdgx_wstate_state_t;

const char *vdgx_job_state_name (vdgx_job_state_t s);
const char *vdgx_phase_name (vdgx_phase_t p);
const char *vdgx_wstate_state_name (vdgx_wstate_state_t s);
//  Name -> value; return 0 or -1 when unknown.
int vdgx_job_state_parse (const char *name, vdgx_job_state_t *s);
int vdgx_phase_parse (const char *name, vdgx_phase_t *p);
int vdgx_wstate_state_parse (const char *name, vdgx_wstate_state_t *s);
bool vdgx_job_state_is_final (vdgx_job_state_t s);

//  ---------------------------------------------------------------------------------------
//  Errors (PROTOCOL.md 6)

#define VDGX_E_BAD_REQUEST      "bad_request"
#define VDGX_E_UNKNOWN_MODEL    "unknown_model"
#define VDGX_E_NOT_FOUND        "not_found"
#define VDGX_E_QUEUE_FULL       "queue_full"
#define VDGX_E_CONFLICT         "conflict"
#define VDGX_E_CANCELLED        "cancelled"
#define VDGX_E_EXPIRED          "expired"
#define VDGX_E_WORKER_FAILED    "worker_failed"
#define VDGX_E_INTERNAL         "internal"
#define VDGX_E_UNAVAILABLE      "unavailable"
#define VDGX_E_TOO_LARGE        "too_large"
#define VDGX_E_FORBIDDEN        "forbidden"
#define VDGX_E_OUTPUT_MISSING   "output_missing"

//  The static string for a known code (so vdgx_error_t.code can point at it), else NULL.
const char *vdgx_error_code_intern (const char *code);
//  Fills err (code must be a VDGX_E_* string; field may be NULL).
void vdgx_error_set (vdgx_error_t *err, const char *code, const char *field,
                     const char *format, ...) __attribute__ ((format (printf, 4, 5)));
void vdgx_error_init (vdgx_error_t *err);   //  code NULL, empty message and field

//  The error reply {ok: false, error: {code, message, field?, retry_after_ms?}}.
//  retry_after_ms 0 = not sent; field "" = not sent.
int vdgx_error_pack (const vdgx_error_t *self, uint64_t retry_after_ms, msgpack_packer *pk);
zframe_t *vdgx_error_frame (const vdgx_error_t *self, uint64_t retry_after_ms);
//  Packs only the inner {code, message, field?} map (used inside status and result maps).
int vdgx_error_pack_inner (const vdgx_error_t *self, msgpack_packer *pk);
int vdgx_error_decode_inner (vdgx_error_t *self, const msgpack_object *obj, const char *path,
                             vdgx_error_t *err);
//  Decodes a whole error reply into self (+ retry_after_ms, may be NULL).
int vdgx_error_decode (vdgx_error_t *self, uint64_t *retry_after_ms, const void *data,
                       size_t size, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  3.1 Job map, broker -> worker REQUEST body: {id, attempt, request}

typedef struct {
    char id [VDGX_ID_MAX + 1];
    uint32_t attempt;           //  >= 1
    vdgx_genreq_t request;
    char token [VDGX_TOKEN_MAX + 1];    //  attempt token ("" = absent); echoed in every reply
} vdgx_job_t;

void vdgx_job_init (vdgx_job_t *self);
void vdgx_job_clear (vdgx_job_t *self);
int vdgx_job_pack (const vdgx_job_t *self, msgpack_packer *pk);
zframe_t *vdgx_job_frame (const vdgx_job_t *self);
int vdgx_job_decode_obj (vdgx_job_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_job_decode (vdgx_job_t *self, const void *data, size_t size, vdgx_error_t *err);
//  True when text is a valid job id (1..64 of [A-Za-z0-9._-]).
bool vdgx_job_id_valid (const char *text);

//  ---------------------------------------------------------------------------------------
//  5.5 Result / video info

typedef struct {
    uint64_t size;
    char sha256 [65];
    char mime [VDGX_MIME_MAX + 1];
    uint32_t width, height, frames, fps;
    double seconds;
} vdgx_videoinfo_t;

typedef struct {
    double load, text, denoise, decode, mux;
} vdgx_timings_t;

//  Worker FINAL body: ok -> info + seed + timings; !ok -> error.
typedef struct {
    bool ok;
    vdgx_videoinfo_t video;
    uint64_t seed;
    vdgx_timings_t timings;
    vdgx_error_t error;         //  when !ok
    char token [VDGX_TOKEN_MAX + 1];    //  the job's attempt token echoed ("" = absent)
} vdgx_result_t;

void vdgx_result_init (vdgx_result_t *self);
void vdgx_result_clear (vdgx_result_t *self);
int vdgx_result_pack (const vdgx_result_t *self, msgpack_packer *pk);
zframe_t *vdgx_result_frame (const vdgx_result_t *self);
int vdgx_result_decode_obj (vdgx_result_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_result_decode (vdgx_result_t *self, const void *data, size_t size, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  The playable prefix of a video that is still being made (streaming engines): its first
//  `bytes` bytes form a valid fragmented MP4 holding `frames` frames (`seconds` of video).
//  Carried by progress maps (5.3), job statuses (5.2) and "chunk" events (8).

typedef struct {
    uint64_t bytes;             //  1..2^50
    uint32_t frames;            //  1..1000000
    double seconds;             //  [0, 86400]
} vdgx_ready_t;

//  ---------------------------------------------------------------------------------------
//  5.3 Progress (worker PARTIAL {type: "progress", ...})

typedef struct {
    char id [VDGX_ID_MAX + 1];
    vdgx_phase_t phase;
    uint32_t step, steps;
    double percent;             //  0..100
    char message [VDGX_MESSAGE_MAX + 1];    //  "" = absent
    char token [VDGX_TOKEN_MAX + 1];        //  the job's attempt token echoed ("" = absent)
    bool has_ready;     vdgx_ready_t ready; //  ready_bytes, ready_frames, ready_seconds
} vdgx_progress_t;

void vdgx_progress_init (vdgx_progress_t *self);
void vdgx_progress_clear (vdgx_progress_t *self);
int vdgx_progress_pack (const vdgx_progress_t *self, msgpack_packer *pk);
zframe_t *vdgx_progress_frame (const vdgx_progress_t *self);
int vdgx_progress_decode_obj (vdgx_progress_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_progress_decode (vdgx_progress_t *self, const void *data, size_t size, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  Chunk (worker PARTIAL {type: "chunk", offset, data})

typedef struct {
    uint64_t offset;
    uint8_t *data;              //  owned (copied on decode), may be NULL when size is 0
    size_t size;                //  <= VDGX_CHUNK_MAX
    char token [VDGX_TOKEN_MAX + 1];    //  the job's attempt token echoed ("" = absent)
} vdgx_chunk_t;

void vdgx_chunk_init (vdgx_chunk_t *self);
void vdgx_chunk_clear (vdgx_chunk_t *self);
int vdgx_chunk_pack (const vdgx_chunk_t *self, msgpack_packer *pk);
zframe_t *vdgx_chunk_frame (const vdgx_chunk_t *self);
int vdgx_chunk_decode_obj (vdgx_chunk_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_chunk_decode (vdgx_chunk_t *self, const void *data, size_t size, vdgx_error_t *err);

//  Any worker reply body (PARTIAL progress/chunk, FINAL result), dispatched on `type`.
typedef enum { VDGX_WREPLY_PROGRESS = 0, VDGX_WREPLY_CHUNK, VDGX_WREPLY_RESULT } vdgx_wreply_type_t;
typedef struct {
    vdgx_wreply_type_t type;
    vdgx_progress_t progress;
    vdgx_chunk_t chunk;
    vdgx_result_t result;
} vdgx_wreply_t;

void vdgx_wreply_init (vdgx_wreply_t *self);
void vdgx_wreply_clear (vdgx_wreply_t *self);
int vdgx_wreply_decode (vdgx_wreply_t *self, const void *data, size_t size, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  5.4 Worker state (READY/HEARTBEAT extra frame; mmi.workers entries add identity, idle_ms)

typedef struct {
    char service [VDGX_SERVICE_MAX + 1];    //  required
    char host [VDGX_HOST_MAX + 1];
    uint32_t pid;
    vdgx_wstate_state_t state;              //  required
    uint64_t rss_bytes, peak_bytes, model_bytes, host_budget_bytes;
    char device [VDGX_DEVICE_MAX + 1];
    char **precisions;  size_t nprecisions; //  owned string lists (<= VDGX_LIST_MAX each)
    char job [VDGX_ID_MAX + 1];             //  "" = idle
    char **ext;         size_t next;
    char **pending;     size_t npending;
    //  Only in mmi.workers replies:
    char identity [VDGX_SERVICE_MAX + 1];   //  "" = absent (hex of the ROUTER identity)
    bool has_idle_ms;   uint64_t idle_ms;
    //  Added later, optional everywhere:
    char weights_id [VDGX_WEIGHTS_ID_MAX + 1];  //  "" = absent; names the loaded weights
    uint8_t protocol;                       //  mmi.workers: MDP version 1 or 2; 0 = absent
    vdgx_limits_t limits;                   //  what the model accepts (5.8); present = false: absent
    char **tokens;      size_t ntokens;     //  attempt tokens of `pending`, same order (or none)
} vdgx_wstate_t;

void vdgx_wstate_init (vdgx_wstate_t *self);
void vdgx_wstate_clear (vdgx_wstate_t *self);
int vdgx_wstate_copy (vdgx_wstate_t *dst, const vdgx_wstate_t *src);
//  List helpers (lists hold at most VDGX_LIST_MAX entries; return -1 when full).
int vdgx_wstate_add_precision (vdgx_wstate_t *self, const char *name);
int vdgx_wstate_add_ext (vdgx_wstate_t *self, const char *name);
int vdgx_wstate_add_pending (vdgx_wstate_t *self, const char *job_id);
//  A pending job with its attempt token (tokens are sent only when every pending one has one).
int vdgx_wstate_add_pending_token (vdgx_wstate_t *self, const char *job_id, const char *token);
//  The attempt token of pending entry i, or NULL when none was given.
const char *vdgx_wstate_pending_token (const vdgx_wstate_t *self, size_t i);
bool vdgx_wstate_has_ext (const vdgx_wstate_t *self, const char *name);
int vdgx_wstate_pack (const vdgx_wstate_t *self, msgpack_packer *pk);
zframe_t *vdgx_wstate_frame (const vdgx_wstate_t *self);
int vdgx_wstate_decode_obj (vdgx_wstate_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_wstate_decode (vdgx_wstate_t *self, const void *data, size_t size, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  CONTROL map (broker -> worker): {op, id?}

typedef enum {
    VDGX_CONTROL_CANCEL = 0,    //  id
    VDGX_CONTROL_UNLOAD,
    VDGX_CONTROL_DRAIN,
    VDGX_CONTROL_ACK,           //  id
    VDGX_CONTROL_DROP,          //  id
    VDGX_CONTROL_RESEND,        //  id
    VDGX_CONTROL_COUNT
} vdgx_control_op_t;

typedef struct {
    vdgx_control_op_t op;
    char id [VDGX_ID_MAX + 1];  //  required for cancel/ack/drop/resend, absent otherwise
} vdgx_control_t;

void vdgx_control_init (vdgx_control_t *self);
void vdgx_control_clear (vdgx_control_t *self);
const char *vdgx_control_op_name (vdgx_control_op_t op);
bool vdgx_control_op_has_id (vdgx_control_op_t op);
int vdgx_control_pack (const vdgx_control_t *self, msgpack_packer *pk);
zframe_t *vdgx_control_frame (const vdgx_control_t *self);
int vdgx_control_decode_obj (vdgx_control_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_control_decode (vdgx_control_t *self, const void *data, size_t size, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  5.2 Job status

typedef struct {
    char id [VDGX_ID_MAX + 1];
    char model [VDGX_MODEL_MAX + 1];
    vdgx_job_state_t state;
    vdgx_phase_t phase;
    uint32_t step, steps;
    double percent;
    uint32_t queue_position;    //  0 when not queued
    uint32_t attempt;
    double created_at, started_at, finished_at;     //  epoch seconds, 0 = not yet
    bool has_error;     vdgx_error_t error;
    bool has_result;    vdgx_videoinfo_t result;
    bool cached;
    bool has_request;   vdgx_genreq_t request;
    bool has_ready;     vdgx_ready_t ready; //  running: the playable prefix so far
} vdgx_jobstatus_t;

void vdgx_jobstatus_init (vdgx_jobstatus_t *self);
void vdgx_jobstatus_clear (vdgx_jobstatus_t *self);
int vdgx_jobstatus_copy (vdgx_jobstatus_t *dst, const vdgx_jobstatus_t *src);
int vdgx_jobstatus_pack (const vdgx_jobstatus_t *self, msgpack_packer *pk);
zframe_t *vdgx_jobstatus_frame (const vdgx_jobstatus_t *self);
int vdgx_jobstatus_decode_obj (vdgx_jobstatus_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_jobstatus_decode (vdgx_jobstatus_t *self, const void *data, size_t size, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  7. Job service `vdgx.jobs`: commands (client -> broker) and replies

#define VDGX_JOBS_SERVICE "vdgx.jobs"

typedef enum {
    VDGX_JOBCMD_SUBMIT = 0, VDGX_JOBCMD_STATUS, VDGX_JOBCMD_LIST, VDGX_JOBCMD_CANCEL,
    VDGX_JOBCMD_RESULT, VDGX_JOBCMD_DELETE, VDGX_JOBCMD_UNLOAD, VDGX_JOBCMD_MODELS,
    VDGX_JOBCMD_DRAIN, VDGX_JOBCMD_RESET_LIMITS, VDGX_JOBCMD_COUNT
} vdgx_jobcmd_type_t;

typedef struct {
    vdgx_jobcmd_type_t cmd;
    vdgx_genreq_t request;      //  submit
    char id [VDGX_ID_MAX + 1];  //  status, cancel, result, delete
    //  list filters
    bool has_state;     vdgx_job_state_t state;
    char model [VDGX_MODEL_MAX + 1];        //  list, drain filter ("" = any); unload: required
    char host [VDGX_HOST_MAX + 1];          //  drain filter ("" = any)
    uint32_t limit;             //  list: 1..1000, default 100
    char after [VDGX_ID_MAX + 1];           //  list: "" = from the start
    bool desc;                  //  list: newest first (order "desc"): after continues below it
    //  result
    uint64_t offset;            //  default 0
    uint32_t length;            //  1..VDGX_RESULT_READ_MAX, default 1 MiB
    //  On behalf of (any command; honoured only from an admin peer such as the REST bridge)
    char owner [VDGX_OWNER_MAX + 1];        //  "" = absent: the peer itself
    bool has_role;      bool admin;         //  the principal's role (admin / user)
} vdgx_jobcmd_t;

const char *vdgx_jobcmd_name (vdgx_jobcmd_type_t cmd);
void vdgx_jobcmd_init (vdgx_jobcmd_t *self);
void vdgx_jobcmd_clear (vdgx_jobcmd_t *self);
int vdgx_jobcmd_pack (const vdgx_jobcmd_t *self, msgpack_packer *pk);
zframe_t *vdgx_jobcmd_frame (const vdgx_jobcmd_t *self);
int vdgx_jobcmd_decode_obj (vdgx_jobcmd_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_jobcmd_decode (vdgx_jobcmd_t *self, const void *data, size_t size, vdgx_error_t *err);

//  A per-service summary: `models` reply entries and mmi.services entries.
typedef struct {
    char name [VDGX_SERVICE_MAX + 1];
    uint32_t workers;
    uint32_t queued, running;           //  mmi.services only (packed when has_queue)
    bool has_queue;
    uint32_t states [VDGX_WSTATE_COUNT];    //  workers per state; packed as {name: n} (n > 0)
    vdgx_limits_t limits;               //  what the model accepts (5.8), when its workers said
} vdgx_svcinfo_t;

int vdgx_svcinfo_pack (const vdgx_svcinfo_t *self, msgpack_packer *pk);
int vdgx_svcinfo_decode_obj (vdgx_svcinfo_t *self, const msgpack_object *obj, const char *path,
                             vdgx_error_t *err);

//  The FINAL reply to one job-service command. ok=false: only `error` (+ retry_after_ms).
//  Which other fields are packed / required depends on cmd (PROTOCOL.md 7):
//    submit: id, state, cached, queue_position      status, cancel: job
//    list: jobs, has_more                           result: size, sha256, offset, data
//    delete: id (deleted: true)                     unload, drain: workers
//    models: models
typedef struct {
    vdgx_jobcmd_type_t cmd;     //  not on the wire: the decoder must be told
    bool ok;
    vdgx_error_t error;         //  !ok
    uint64_t retry_after_ms;    //  !ok, 0 = absent
    char id [VDGX_ID_MAX + 1];
    vdgx_job_state_t state;
    bool cached;
    uint32_t queue_position;
    vdgx_jobstatus_t job;
    vdgx_jobstatus_t *jobs;     size_t njobs;       //  owned array (list)
    size_t jobs_max;            //  slots allocated in jobs (add_job doubles it)
    bool has_more;
    uint64_t size;              //  result: whole video size
    char sha256 [65];
    uint64_t offset;
    uint8_t *data;              size_t data_size;   //  owned (result)
    bool partial;               //  result: the job still runs; size is its ready prefix
    uint32_t attempt;           //  result: the attempt that made the bytes (0 = absent)
    uint32_t workers;           //  unload, drain: workers told
    vdgx_svcinfo_t *models;     size_t nmodels;     //  owned array (models)
} vdgx_jobreply_t;

void vdgx_jobreply_init (vdgx_jobreply_t *self, vdgx_jobcmd_type_t cmd);
void vdgx_jobreply_clear (vdgx_jobreply_t *self);       //  keeps cmd
//  Appends a copy of status to jobs / of info to models. Return 0 or -1 (out of memory).
int vdgx_jobreply_add_job (vdgx_jobreply_t *self, const vdgx_jobstatus_t *status);
int vdgx_jobreply_add_model (vdgx_jobreply_t *self, const vdgx_svcinfo_t *info);
//  Copies data into the reply (result).
int vdgx_jobreply_set_data (vdgx_jobreply_t *self, const void *data, size_t size);
int vdgx_jobreply_pack (const vdgx_jobreply_t *self, msgpack_packer *pk);
zframe_t *vdgx_jobreply_frame (const vdgx_jobreply_t *self);
//  self->cmd must be set (vdgx_jobreply_init) before decoding; it is kept.
int vdgx_jobreply_decode_obj (vdgx_jobreply_t *self, const msgpack_object *obj, vdgx_error_t *err);
int vdgx_jobreply_decode (vdgx_jobreply_t *self, const void *data, size_t size, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  8. Events (PUB): frame 1 topic "job.<id>" or "model.<name>", frame 2 the event map.

typedef enum { VDGX_EVENT_PROGRESS = 0, VDGX_EVENT_STATE, VDGX_EVENT_CHUNK } vdgx_event_type_t;

typedef struct {
    vdgx_event_type_t type;
    bool is_model;              //  topic model.<name> (else job.<id>)
    char id [VDGX_ID_MAX + 1];  //  job events: required (equals the topic's id); model: absent
    char model [VDGX_MODEL_MAX + 1];        //  required (model events: equals the topic's name)
    //  state: a job state name for job events, a worker state name for model events
    vdgx_job_state_t job_state;
    vdgx_wstate_state_t worker_state;
    bool has_phase;     vdgx_phase_t phase;     //  job events
    uint32_t step, steps;
    double percent;
    double ts;                  //  epoch seconds
    bool has_error;     vdgx_error_t error;     //  job events of failed/cancelled/expired jobs
    uint32_t workers;           //  model events: live workers of the model
    bool has_ready;     vdgx_ready_t ready; //  chunk events (required there): the prefix now
} vdgx_event_t;

void vdgx_event_init (vdgx_event_t *self);
void vdgx_event_clear (vdgx_event_t *self);
//  Writes the topic ("job.<id>" / "model.<name>") into buf. Returns 0 or -1 (too small).
int vdgx_event_topic (const vdgx_event_t *self, char *buf, size_t size);
int vdgx_event_pack (const vdgx_event_t *self, msgpack_packer *pk);
//  Two-frame message: topic, map.
zmsg_t *vdgx_event_msg (const vdgx_event_t *self);
//  Decodes a map given its topic (checks they agree).
int vdgx_event_decode (vdgx_event_t *self, const char *topic, const void *data, size_t size,
                       vdgx_error_t *err);
//  Decodes a received two-frame message (the message is not destroyed).
int vdgx_event_decode_msg (vdgx_event_t *self, zmsg_t *msg, vdgx_error_t *err);

//  ---------------------------------------------------------------------------------------
//  Small msgpack helpers for code that builds or reads other maps (MMI replies, ...)

//  Packs a C string (NULL packs nil).
int vdgx_pack_str (msgpack_packer *pk, const char *text);
//  Packs into a new frame via a callback (returns NULL when pack fails).
zframe_t *vdgx_pack_frame (int (*pack) (const void *obj, msgpack_packer *pk), const void *obj);
//  Unpacks exactly one object: rejects truncated data and trailing bytes (err, field "").
//  On success *result must be destroyed with msgpack_unpacked_destroy. Strings and binaries
//  in *result point into data (no copy): keep data alive while *result is in use.
int vdgx_unpack (msgpack_unpacked *result, const void *data, size_t size, vdgx_error_t *err);

void vdgx_msg_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
