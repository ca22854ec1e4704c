/*  codec_util.c - decoder table and JSON -> msgpack for the codec tests. */
#include "codec_util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void
s_sbuffer_start (msgpack_sbuffer *sb, msgpack_packer *pk)
{
    msgpack_sbuffer_init (sb);
    msgpack_packer_init (pk, sb, msgpack_sbuffer_write);
}

//  One wrapper per decoder, so every decoder has the same shape.
#define S_WRAP(T) \
static int \
s_##T (const void *data, size_t size, vdgx_error_t *err, msgpack_sbuffer *repack) \
{ \
    vdgx_##T##_t value; \
    vdgx_##T##_init (&value); \
    int rc = vdgx_##T##_decode (&value, data, size, err); \
    if (rc == 0 && repack) { \
        msgpack_packer pk; \
        s_sbuffer_start (repack, &pk); \
        if (vdgx_##T##_pack (&value, &pk)) \
            rc = -2; \
    } \
    vdgx_##T##_clear (&value); \
    return rc; \
}

S_WRAP (genreq)
S_WRAP (job)
S_WRAP (result)
S_WRAP (progress)
S_WRAP (chunk)
S_WRAP (wstate)
S_WRAP (control)
S_WRAP (jobstatus)
S_WRAP (jobcmd)

static int
s_wreply (const void *data, size_t size, vdgx_error_t *err, msgpack_sbuffer *repack)
{
    vdgx_wreply_t value;
    vdgx_wreply_init (&value);
    int rc = vdgx_wreply_decode (&value, data, size, err);
    if (rc == 0 && repack) {
        msgpack_packer pk;
        s_sbuffer_start (repack, &pk);
        int prc = value.type == VDGX_WREPLY_PROGRESS? vdgx_progress_pack (&value.progress, &pk)
                : value.type == VDGX_WREPLY_CHUNK? vdgx_chunk_pack (&value.chunk, &pk)
                : vdgx_result_pack (&value.result, &pk);
        if (prc)
            rc = -2;
    }
    vdgx_wreply_clear (&value);
    return rc;
}

static int
s_error (const void *data, size_t size, vdgx_error_t *err, msgpack_sbuffer *repack)
{
    vdgx_error_t value;
    uint64_t retry;
    int rc = vdgx_error_decode (&value, &retry, data, size, err);
    if (rc == 0 && repack) {
        msgpack_packer pk;
        s_sbuffer_start (repack, &pk);
        if (vdgx_error_pack (&value, retry, &pk))
            rc = -2;
    }
    return rc;
}

static int
s_jobreply_as (vdgx_jobcmd_type_t cmd, const void *data, size_t size, vdgx_error_t *err,
               msgpack_sbuffer *repack)
{
    vdgx_jobreply_t value;
    vdgx_jobreply_init (&value, cmd);
    int rc = vdgx_jobreply_decode (&value, data, size, err);
    if (rc == 0 && repack) {
        msgpack_packer pk;
        s_sbuffer_start (repack, &pk);
        if (vdgx_jobreply_pack (&value, &pk))
            rc = -2;
    }
    vdgx_jobreply_clear (&value);
    return rc;
}

#define S_REPLY(C, E) \
static int \
s_jobreply_##C (const void *data, size_t size, vdgx_error_t *err, msgpack_sbuffer *repack) \
{ \
    return s_jobreply_as (E, data, size, err, repack); \
}
S_REPLY (submit, VDGX_JOBCMD_SUBMIT)
S_REPLY (status, VDGX_JOBCMD_STATUS)
S_REPLY (list, VDGX_JOBCMD_LIST)
S_REPLY (cancel, VDGX_JOBCMD_CANCEL)
S_REPLY (result, VDGX_JOBCMD_RESULT)
S_REPLY (delete, VDGX_JOBCMD_DELETE)
S_REPLY (unload, VDGX_JOBCMD_UNLOAD)
S_REPLY (models, VDGX_JOBCMD_MODELS)
S_REPLY (drain, VDGX_JOBCMD_DRAIN)
S_REPLY (reset_limits, VDGX_JOBCMD_RESET_LIMITS)

//  Events: the map is checked against a fixed topic (job.j1 or model.wan21-tiny).
static int
s_event_topic (const char *topic, const void *data, size_t size, vdgx_error_t *err,
               msgpack_sbuffer *repack)
{
    vdgx_event_t value;
    vdgx_event_init (&value);
    int rc = vdgx_event_decode (&value, topic, data, size, err);
    if (rc == 0 && repack) {
        msgpack_packer pk;
        s_sbuffer_start (repack, &pk);
        if (vdgx_event_pack (&value, &pk))
            rc = -2;
    }
    vdgx_event_clear (&value);
    return rc;
}

static int
s_event_job (const void *data, size_t size, vdgx_error_t *err, msgpack_sbuffer *repack)
{
    return s_event_topic ("job.j1", data, size, err, repack);
}

static int
s_event_model (const void *data, size_t size, vdgx_error_t *err, msgpack_sbuffer *repack)
{
    return s_event_topic ("model.wan21-tiny", data, size, err, repack);
}

const codec_t codec_table [] = {
    { "genreq", s_genreq },
    { "job", s_job },
    { "result", s_result },
    { "progress", s_progress },
    { "chunk", s_chunk },
    { "wreply", s_wreply },
    { "wstate", s_wstate },
    { "control", s_control },
    { "jobstatus", s_jobstatus },
    { "jobcmd", s_jobcmd },
    { "error", s_error },
    { "jobreply.submit", s_jobreply_submit },
    { "jobreply.status", s_jobreply_status },
    { "jobreply.list", s_jobreply_list },
    { "jobreply.cancel", s_jobreply_cancel },
    { "jobreply.result", s_jobreply_result },
    { "jobreply.delete", s_jobreply_delete },
    { "jobreply.unload", s_jobreply_unload },
    { "jobreply.models", s_jobreply_models },
    { "jobreply.drain", s_jobreply_drain },
    { "jobreply.reset_limits", s_jobreply_reset_limits },
    { "event.job", s_event_job },
    { "event.model", s_event_model },
};
const size_t codec_count = sizeof codec_table / sizeof codec_table [0];

const codec_t *
codec_find (const char *name)
{
    for (size_t i = 0; i < codec_count; i++)
        if (strcmp (codec_table [i].name, name) == 0)
            return &codec_table [i];
    return NULL;
}

static int
s_pack_json (msgpack_packer *pk, json_t *value)
{
    switch (json_typeof (value)) {
        case JSON_OBJECT: {
            const char *key;
            json_t *item;
            if (msgpack_pack_map (pk, json_object_size (value)))
                return -1;
            json_object_foreach (value, key, item) {
                if (vdgx_pack_str (pk, key) || s_pack_json (pk, item))
                    return -1;
            }
            return 0;
        }
        case JSON_ARRAY: {
            if (msgpack_pack_array (pk, json_array_size (value)))
                return -1;
            for (size_t i = 0; i < json_array_size (value); i++)
                if (s_pack_json (pk, json_array_get (value, i)))
                    return -1;
            return 0;
        }
        case JSON_STRING: {
            const char *text = json_string_value (value);
            size_t len = json_string_length (value);
            if (strncmp (text, "$BIN", 4) == 0) {
                size_t n = strtoul (text + 4, NULL, 10);
                char *buf = calloc (1, n + 1);
                int rc = msgpack_pack_bin (pk, n) | msgpack_pack_bin_body (pk, buf, n);
                free (buf);
                return rc;
            }
            if (strncmp (text, "$U", 2) == 0)
                return msgpack_pack_uint64 (pk, strtoull (text + 2, NULL, 10));
            if (strncmp (text, "$A", 2) == 0) {
                size_t n = strtoul (text + 2, NULL, 10);
                char *buf = malloc (n + 1);
                memset (buf, 'a', n);
                int rc = msgpack_pack_str (pk, n) | msgpack_pack_str_body (pk, buf, n);
                free (buf);
                return rc;
            }
            return msgpack_pack_str (pk, len) | msgpack_pack_str_body (pk, text, len);
        }
        case JSON_INTEGER: {
            json_int_t v = json_integer_value (value);
            return v >= 0? msgpack_pack_uint64 (pk, (uint64_t) v): msgpack_pack_int64 (pk, v);
        }
        case JSON_REAL:
            return msgpack_pack_double (pk, json_real_value (value));
        case JSON_TRUE:
            return msgpack_pack_true (pk);
        case JSON_FALSE:
            return msgpack_pack_false (pk);
        default:
            return msgpack_pack_nil (pk);
    }
}

int
codec_json_to_msgpack (const char *json, msgpack_sbuffer *sb)
{
    json_error_t error;
    //  JSON_ALLOW_NUL keeps "\u0000" inside strings (to test NUL rejection).
    json_t *root = json_loads (json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (!root)
        return -1;
    msgpack_packer pk;
    msgpack_sbuffer_init (sb);
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    int rc = s_pack_json (&pk, root);
    json_decref (root);
    return rc;
}
