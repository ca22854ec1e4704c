/*  test_codecs.c - VDGX/1 codec tests beyond the class selftests:
    1. round trips of many random valid messages of every type (seeded PRNG): pack, decode,
       pack again must give identical bytes, and fields must survive;
    2. every strict prefix of a valid message and a message with a trailing byte is rejected,
       and so is each value replaced by nil and an extra unknown key (naming that field);
    3. a table of malformed inputs per decoder, each with the expected error code and field.
    Usage: test_codecs [seed] [rounds]
*/
#undef NDEBUG
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec_util.h"
#include "vdgx_msg.h"

static uint64_t s_rng;

static uint64_t
s_next (void)
{
    //  splitmix64
    uint64_t z = (s_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t
s_range (uint64_t lo, uint64_t hi)
{
    return lo + (hi > lo? s_next () % (hi - lo + 1): 0);
}

static bool
s_coin (void)
{
    return s_next () & 1;
}

static double
s_real (double lo, double hi)
{
    double d = lo + (hi - lo) * ((double) (s_next () >> 11) / 9007199254740992.0);
    //  Keep a few exact edges in play.
    switch (s_next () % 8) {
        case 0: return hi;
        case 1: return lo > 0? lo: 0;
        default: return d;
    }
}

static void
s_text (char *buf, size_t min, size_t max, const char *alphabet)
{
    size_t n = s_range (min, max);
    size_t k = strlen (alphabet);
    for (size_t i = 0; i < n; i++)
        buf [i] = alphabet [s_next () % k];
    buf [n] = 0;
}

static const char *ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
static const char *MODEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._-";
static const char *PRINTABLE = "abcXYZ019!#$%&()*+,-./:;<=>?@[]^_`{|}~";

//  UTF-8 text with multi-byte characters, exactly up to max bytes.
static char *
s_utf8 (size_t min, size_t max)
{
    static const char *pieces [] = { "a", "Z", " ", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x8e\xa5", "\"", "\\", "\n" };
    size_t want = s_range (min, max);
    char *text = malloc (max + 1);
    size_t len = 0;
    while (len < want) {
        const char *p = pieces [s_next () % 9];
        size_t n = strlen (p);
        if (len + n > want)
            p = "a", n = 1;
        memcpy (text + len, p, n);
        len += n;
    }
    text [len] = 0;
    return text;
}

//  A PNG-structured file (signature, IHDR of a random size up to the limits, an IDAT of
//  random bytes, IEND): what the request's header check accepts.
static void
s_random_png (vdgx_genreq_t *r, const char *field)
{
    size_t idat = (size_t) s_range (0, 3000);
    size_t size = 8 + 25 + 12 + idat + 12;
    uint8_t *png = malloc (size);
    memcpy (png, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
    uint32_t w = (uint32_t) s_range (1, 4096), h = (uint32_t) s_range (1, 4096);
    uint8_t *p = png + 16;
    p [0] = (uint8_t) (w >> 24); p [1] = (uint8_t) (w >> 16); p [2] = (uint8_t) (w >> 8); p [3] = (uint8_t) w;
    p [4] = (uint8_t) (h >> 24); p [5] = (uint8_t) (h >> 16); p [6] = (uint8_t) (h >> 8); p [7] = (uint8_t) h;
    memcpy (p + 8, "\x08\x02\0\0\0\0\0\0\0", 9);
    p = png + 33;
    p [0] = (uint8_t) (idat >> 24); p [1] = (uint8_t) (idat >> 16); p [2] = (uint8_t) (idat >> 8); p [3] = (uint8_t) idat;
    memcpy (p + 4, "IDAT", 4);
    for (size_t i = 0; i < idat + 4; i++)
        p [8 + i] = (uint8_t) s_next ();
    memcpy (png + size - 12, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    assert (vdgx_genreq_set_image (r, field, png, size) == 0);
    free (png);
}

static void
s_random_genreq (vdgx_genreq_t *r)
{
    vdgx_genreq_init (r);
    s_text (r->model, 1, VDGX_MODEL_MAX, MODEL_CHARS);
    r->prompt = s_utf8 (1, s_coin ()? 64: VDGX_PROMPT_MAX);
    if (s_coin ())
        r->negative_prompt = s_utf8 (0, 200);
    if (s_coin ()) r->width = (uint32_t) s_range (16, 4096);
    if (s_coin ()) r->height = (uint32_t) s_range (16, 4096);
    if (s_coin ()) r->frames = (uint32_t) s_range (1, 1025);
    else if (s_coin ()) { r->has_seconds = true; r->seconds = s_real (0.001, 600); }
    if (s_coin ()) r->fps = (uint32_t) s_range (1, 120);
    if (s_coin ()) r->steps = (uint32_t) s_range (1, 1000);
    if (s_coin ()) { r->has_guidance = true; r->guidance = s_real (0, 100); }
    if (s_coin ()) { r->has_shift = true; r->shift = s_real (0.001, 100); }
    static const char *samplers [] = { "unipc", "dpm++", "euler" };
    static const char *precisions [] = { "fp32", "bf16", "fp8", "fp4" };
    if (s_coin ()) strcpy (r->sampler, samplers [s_next () % 3]);
    if (s_coin ()) { r->has_seed = true; r->seed = s_next () >> 1; }
    if (s_coin ()) strcpy (r->precision, precisions [s_next () % 4]);
    r->priority = (vdgx_priority_t) (s_next () % 3);
    if (s_coin ()) s_text (r->idempotency_key, 1, VDGX_IDEMKEY_MAX, PRINTABLE);
    r->no_cache = s_coin ();
    if (s_next () % 4 == 0) {
        s_random_png (r, "image");
        if (s_coin ())
            s_random_png (r, "last_image");
    }
}

static void
s_random_video (vdgx_videoinfo_t *v)
{
    v->size = s_range (1, 1ULL << 40);
    s_text (v->sha256, 64, 64, "0123456789abcdef");
    strcpy (v->mime, s_coin ()? "video/mp4": "video/webm");
    v->width = (uint32_t) s_range (1, 16384);
    v->height = (uint32_t) s_range (1, 16384);
    v->frames = (uint32_t) s_range (1, 1000000);
    v->fps = (uint32_t) s_range (1, 240);
    v->seconds = s_real (0, 86400);
}

static void
s_random_error (vdgx_error_t *e)
{
    static const char *codes [] = { "bad_request", "unknown_model", "not_found", "queue_full",
        "conflict", "cancelled", "expired", "worker_failed", "internal", "unavailable", "too_large" };
    char *message = s_utf8 (0, 255);
    vdgx_error_set (e, codes [s_next () % 11], NULL, "%s", message);
    free (message);
    if (s_coin ())
        s_text (e->field, 1, 63, ID_CHARS);
}

static void
s_random_ready (vdgx_ready_t *r)
{
    r->bytes = s_range (1, 1ull << 50);
    r->frames = (uint32_t) s_range (1, 1000000);
    r->seconds = s_real (0, 86400);
}

static void
s_random_status (vdgx_jobstatus_t *s)
{
    vdgx_jobstatus_init (s);
    s_text (s->id, 1, VDGX_ID_MAX, ID_CHARS);
    s_text (s->model, 1, VDGX_MODEL_MAX, MODEL_CHARS);
    s->state = (vdgx_job_state_t) (s_next () % VDGX_JOB_STATE_COUNT);
    s->phase = (vdgx_phase_t) (s_next () % VDGX_PHASE_COUNT);
    s->step = (uint32_t) s_next ();
    s->steps = (uint32_t) s_next ();
    s->percent = s_real (0, 100);
    s->queue_position = (uint32_t) s_next ();
    s->attempt = (uint32_t) s_range (0, 1000);
    s->created_at = s_real (0, 2e9);
    s->started_at = s_real (0, 2e9);
    s->finished_at = s_real (0, 2e9);
    s->cached = s_coin ();
    if ((s->state == VDGX_JOB_FAILED || s->state == VDGX_JOB_CANCELLED || s->state == VDGX_JOB_EXPIRED) && s_coin ()) {
        s->has_error = true;
        s_random_error (&s->error);
    }
    if (s->state == VDGX_JOB_COMPLETED && s_coin ()) {
        s->has_result = true;
        s_random_video (&s->result);
    }
    if (s_coin ()) {
        s->has_request = true;
        s_random_genreq (&s->request);
    }
    if (s->state == VDGX_JOB_RUNNING && s_coin ()) {
        s->has_ready = true;
        s_random_ready (&s->ready);
    }
}

static void
s_random_limits (vdgx_limits_t *l)
{
    vdgx_limits_init (l);
    l->present = true;
    l->wh_min = (uint32_t) s_range (1, 256);
    l->wh_max = (uint32_t) s_range (l->wh_min, 16384);
    l->wh_multiple = (uint32_t) s_range (1, 64);
    for (int i = (int) s_range (0, 3); i > 0; i--)
        vdgx_limits_add_size (l, (uint32_t) s_range (1, 16384), (uint32_t) s_range (1, 16384));
    l->frames_max = (uint32_t) s_range (1, 1000);
    l->frames_4n1 = s_coin ();
    l->steps_max = (uint32_t) s_range (1, 10000);
    l->guidance_max = (double) s_range (0, 1000) / 4.0;
    l->fps_max = (uint32_t) s_range (1, 240);
    l->images = (uint32_t) s_range (0, 2);
}

static void
s_random_wstate (vdgx_wstate_t *w)
{
    vdgx_wstate_init (w);
    s_text (w->service, 1, 80, PRINTABLE);
    if (s_coin ()) s_text (w->host, 0, 100, PRINTABLE);
    w->pid = (uint32_t) s_next ();
    w->state = (vdgx_wstate_state_t) (s_next () % VDGX_WSTATE_COUNT);
    w->rss_bytes = s_next () >> 14;
    w->peak_bytes = s_next () >> 14;
    w->model_bytes = s_next () >> 14;
    w->host_budget_bytes = s_next () >> 14;
    strcpy (w->device, s_coin ()? "cpu": "cuda:0");
    static const char *precisions [] = { "fp32", "bf16", "fp8", "fp4" };
    for (int i = (int) s_range (0, 4); i > 0; i--)
        vdgx_wstate_add_precision (w, precisions [s_next () % 4]);
    if (s_coin ()) s_text (w->job, 1, VDGX_ID_MAX, ID_CHARS);
    if (s_coin ()) vdgx_wstate_add_ext (w, "control");
    bool tokens = s_coin ();
    for (int i = (int) s_range (0, 3); i > 0; i--) {
        char id [VDGX_ID_MAX + 1], token [VDGX_TOKEN_MAX + 1];
        s_text (id, 1, VDGX_ID_MAX, ID_CHARS);
        s_text (token, 1, VDGX_TOKEN_MAX, PRINTABLE);
        if (tokens)
            vdgx_wstate_add_pending_token (w, id, token);
        else
            vdgx_wstate_add_pending (w, id);
    }
    if (s_coin ()) s_text (w->identity, 1, 40, "0123456789abcdef");
    if (s_coin ()) { w->has_idle_ms = true; w->idle_ms = s_range (0, 1ULL << 40); }
    if (s_coin ()) s_text (w->weights_id, 1, VDGX_WEIGHTS_ID_MAX, PRINTABLE);
    w->protocol = (uint8_t) s_range (0, 2);
    if (s_coin ())
        s_random_limits (&w->limits);
}

static void
s_random_svcinfo (vdgx_svcinfo_t *s)
{
    memset (s, 0, sizeof *s);
    s_text (s->name, 1, 64, MODEL_CHARS);
    s->workers = (uint32_t) s_range (0, 100);
    if ((s->has_queue = s_coin ())) {
        s->queued = (uint32_t) s_next ();
        s->running = (uint32_t) s_next ();
    }
    for (int i = 0; i < VDGX_WSTATE_COUNT; i++)
        s->states [i] = s_coin ()? (uint32_t) s_range (0, 100): 0;
    if (s_coin ())
        s_random_limits (&s->limits);
}

//  Mutations of a valid top-level map that every decoder must reject, naming the field:
//  each value in turn replaced by nil (no field accepts nil), and an extra unknown key.
static void
s_mutations (const codec_t *c, const char *data, size_t size)
{
    msgpack_unpacked up;
    vdgx_error_t err;
    assert (vdgx_unpack (&up, data, size, &err) == 0 && up.data.type == MSGPACK_OBJECT_MAP);
    msgpack_object_map *map = &up.data.via.map;
    for (uint32_t victim = 0; victim <= map->size; victim++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        bool extra = victim == map->size;
        msgpack_pack_map (&pk, map->size + extra);
        for (uint32_t k = 0; k < map->size; k++) {
            msgpack_pack_object (&pk, map->ptr [k].key);
            if (k == victim)
                msgpack_pack_nil (&pk);
            else
                msgpack_pack_object (&pk, map->ptr [k].val);
        }
        if (extra) {
            vdgx_pack_str (&pk, "zz");
            msgpack_pack_uint8 (&pk, 1);
        }
        char want [64];
        if (extra)
            strcpy (want, "zz");
        else {
            const msgpack_object_str *key = &map->ptr [victim].key.via.str;
            snprintf (want, sizeof want, "%.*s", (int) key->size, key->ptr);
        }
        memset (&err, 0, sizeof err);
        int rc = c->decode (sb.data, sb.size, &err, NULL);
        if (rc != -1 || !err.code || strcmp (err.code, "bad_request") || strcmp (err.field, want)) {
            fprintf (stderr, "mutation of %s (%s %s): got rc=%d field '%s' message '%s'\n", c->name,
                     extra? "extra key": "nil value of", want, rc, rc? err.field: "", rc? err.message: "");
            assert (false);
        }
        msgpack_sbuffer_destroy (&sb);
    }
    msgpack_unpacked_destroy (&up);
}

//  Packs with pack(), decodes with the named codec, re-packs, compares bytes.
typedef int (s_pack_fn) (const void *value, msgpack_packer *pk);

static void
s_roundtrip (const char *codec, const void *value, s_pack_fn *pack, size_t *checked)
{
    msgpack_sbuffer sb, again;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert (pack (value, &pk) == 0);
    const codec_t *c = codec_find (codec);
    assert (c);
    vdgx_error_t err;
    int rc = c->decode (sb.data, sb.size, &err, &again);
    if (rc != 0) {
        fprintf (stderr, "round trip %s: decode failed: %s (field '%s')\n", codec, err.message, err.field);
        assert (false);
    }
    if (again.size != sb.size || memcmp (again.data, sb.data, sb.size) != 0) {
        fprintf (stderr, "round trip %s: re-packed bytes differ (%zu vs %zu)\n", codec, again.size, sb.size);
        assert (false);
    }
    //  Any strict prefix is truncated msgpack; one more byte is trailing garbage.
    if (*checked % 7 == 0) {
        for (size_t n = 0; n < sb.size; n += 1 + n / 16)
            assert (c->decode (sb.data, n, &err, NULL) == -1);
        char *longer = malloc (sb.size + 1);
        memcpy (longer, sb.data, sb.size);
        longer [sb.size] = (char) 0xc0;
        assert (c->decode (longer, sb.size + 1, &err, NULL) == -1 && strstr (err.message, "trailing"));
        free (longer);
    }
    if (*checked % 3 == 0)
        s_mutations (c, sb.data, sb.size);
    (*checked)++;
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&again);
}

#define PACKER(T) static int s_pack_##T (const void *v, msgpack_packer *pk) { return vdgx_##T##_pack (v, pk); }
PACKER (genreq)
PACKER (job)
PACKER (result)
PACKER (progress)
PACKER (chunk)
PACKER (wstate)
PACKER (control)
PACKER (jobstatus)
PACKER (jobcmd)
PACKER (jobreply)
PACKER (event)
static int s_pack_error (const void *v, msgpack_packer *pk) { return vdgx_error_pack (v, 250, pk); }

static void
s_random_roundtrips (int rounds)
{
    size_t checked = 0;
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    for (int round = 0; round < rounds; round++) {
        vdgx_genreq_t req;
        s_random_genreq (&req);
        s_roundtrip ("genreq", &req, s_pack_genreq, &checked);
        //  The decoded request also matches field by field (canonical text covers them all).
        {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init (&sb);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
            assert (vdgx_genreq_pack (&req, &pk) == 0);
            vdgx_genreq_t back;
            vdgx_genreq_init (&back);
            vdgx_error_t err;
            assert (vdgx_genreq_decode (&back, sb.data, sb.size, &err) == 0);
            char *a = vdgx_genreq_canonical (&req), *b = vdgx_genreq_canonical (&back);
            assert (strcmp (a, b) == 0);
            assert (back.priority == req.priority && back.no_cache == req.no_cache);
            assert (strcmp (back.idempotency_key, req.idempotency_key) == 0);
            assert (back.image_size == req.image_size && back.last_image_size == req.last_image_size);
            assert (!req.image || memcmp (back.image, req.image, req.image_size) == 0);
            assert (!req.last_image || memcmp (back.last_image, req.last_image, req.last_image_size) == 0);
            free (a);
            free (b);
            vdgx_genreq_clear (&back);
            msgpack_sbuffer_destroy (&sb);
        }
        vdgx_job_t job;
        vdgx_job_init (&job);
        s_text (job.id, 1, VDGX_ID_MAX, ID_CHARS);
        job.attempt = (uint32_t) s_range (1, 1000);
        if (s_coin ()) s_text (job.token, 1, VDGX_TOKEN_MAX, PRINTABLE);
        vdgx_genreq_copy (&job.request, &req);
        s_roundtrip ("job", &job, s_pack_job, &checked);
        vdgx_job_clear (&job);

        vdgx_result_t result;
        vdgx_result_init (&result);
        if ((result.ok = s_coin ())) {
            s_random_video (&result.video);
            result.seed = s_next () >> 1;
            result.timings = (vdgx_timings_t) { s_real (0, 100), s_real (0, 10), s_real (0, 1000), s_real (0, 50), s_real (0, 5) };
        }
        else
            s_random_error (&result.error);
        if (s_coin ()) s_text (result.token, 1, VDGX_TOKEN_MAX, PRINTABLE);
        s_roundtrip ("result", &result, s_pack_result, &checked);
        s_roundtrip ("wreply", &result, s_pack_result, &checked);

        vdgx_progress_t progress;
        vdgx_progress_init (&progress);
        s_text (progress.id, 1, VDGX_ID_MAX, ID_CHARS);
        progress.phase = (vdgx_phase_t) (s_next () % VDGX_PHASE_COUNT);
        progress.steps = (uint32_t) s_range (0, 1000);
        progress.step = (uint32_t) s_range (0, progress.steps);
        progress.percent = s_real (0, 100);
        if (s_coin ()) {
            char *m = s_utf8 (1, VDGX_MESSAGE_MAX);
            strcpy (progress.message, m);
            free (m);
        }
        if (s_coin ()) s_text (progress.token, 1, VDGX_TOKEN_MAX, PRINTABLE);
        if (s_coin ()) {
            progress.has_ready = true;
            s_random_ready (&progress.ready);
        }
        s_roundtrip ("progress", &progress, s_pack_progress, &checked);
        s_roundtrip ("wreply", &progress, s_pack_progress, &checked);

        vdgx_chunk_t chunk;
        vdgx_chunk_init (&chunk);
        chunk.offset = s_range (0, 1ULL << 40);
        chunk.size = round % 50 == 0? VDGX_CHUNK_MAX: s_range (0, 3000);
        chunk.data = malloc (chunk.size + 1);
        for (size_t i = 0; i < chunk.size; i++)
            chunk.data [i] = (uint8_t) s_next ();
        if (s_coin ()) s_text (chunk.token, 1, VDGX_TOKEN_MAX, PRINTABLE);
        s_roundtrip ("chunk", &chunk, s_pack_chunk, &checked);
        s_roundtrip ("wreply", &chunk, s_pack_chunk, &checked);
        vdgx_chunk_clear (&chunk);

        vdgx_wstate_t ws;
        s_random_wstate (&ws);
        s_roundtrip ("wstate", &ws, s_pack_wstate, &checked);
        vdgx_wstate_clear (&ws);

        vdgx_control_t control;
        vdgx_control_init (&control);
        control.op = (vdgx_control_op_t) (s_next () % VDGX_CONTROL_COUNT);
        if (vdgx_control_op_has_id (control.op))
            s_text (control.id, 1, VDGX_ID_MAX, ID_CHARS);
        s_roundtrip ("control", &control, s_pack_control, &checked);

        vdgx_jobstatus_t status;
        s_random_status (&status);
        s_roundtrip ("jobstatus", &status, s_pack_jobstatus, &checked);

        vdgx_jobcmd_t cmd;
        vdgx_jobcmd_init (&cmd);
        cmd.cmd = (vdgx_jobcmd_type_t) (s_next () % VDGX_JOBCMD_COUNT);
        vdgx_genreq_copy (&cmd.request, &req);
        s_text (cmd.id, 1, VDGX_ID_MAX, ID_CHARS);
        if (cmd.cmd == VDGX_JOBCMD_LIST || cmd.cmd == VDGX_JOBCMD_UNLOAD
        ||  cmd.cmd == VDGX_JOBCMD_RESET_LIMITS) {
            if (cmd.cmd != VDGX_JOBCMD_LIST || s_coin ())
                s_text (cmd.model, 1, VDGX_MODEL_MAX, MODEL_CHARS);
            if ((cmd.has_state = s_coin ()))
                cmd.state = (vdgx_job_state_t) (s_next () % VDGX_JOB_STATE_COUNT);
            cmd.limit = (uint32_t) s_range (1, 1000);
            if (s_coin ())
                s_text (cmd.after, 1, VDGX_ID_MAX, ID_CHARS);
            cmd.desc = cmd.cmd == VDGX_JOBCMD_LIST && s_coin ();
        }
        if (cmd.cmd == VDGX_JOBCMD_DRAIN) {
            if (s_coin ())
                s_text (cmd.model, 1, VDGX_MODEL_MAX, MODEL_CHARS);
            if (s_coin ())
                s_text (cmd.host, 1, VDGX_HOST_MAX, PRINTABLE);
        }
        if (s_coin ()) s_text (cmd.owner, 1, VDGX_OWNER_MAX, PRINTABLE);
        if ((cmd.has_role = s_coin ()))
            cmd.admin = s_coin ();
        cmd.offset = s_coin ()? s_range (0, 1ULL << 40): 0;
        cmd.length = (uint32_t) s_range (1, VDGX_RESULT_READ_MAX);
        s_roundtrip ("jobcmd", &cmd, s_pack_jobcmd, &checked);
        vdgx_jobcmd_clear (&cmd);

        //  One reply per command, sometimes an error reply.
        for (int c = 0; c < VDGX_JOBCMD_COUNT; c++) {
            vdgx_jobreply_t reply;
            vdgx_jobreply_init (&reply, (vdgx_jobcmd_type_t) c);
            if (s_next () % 5 == 0) {
                reply.ok = false;
                s_random_error (&reply.error);
                reply.retry_after_ms = s_coin ()? s_range (1, 86400000): 0;
            }
            else {
                s_text (reply.id, 1, VDGX_ID_MAX, ID_CHARS);
                reply.state = (vdgx_job_state_t) (s_next () % VDGX_JOB_STATE_COUNT);
                reply.cached = s_coin ();
                reply.queue_position = (uint32_t) s_next ();
                vdgx_jobstatus_copy (&reply.job, &status);
                for (int i = (int) s_range (0, 3); i > 0; i--) {
                    vdgx_jobstatus_t more;
                    s_random_status (&more);
                    vdgx_jobreply_add_job (&reply, &more);
                    vdgx_jobstatus_clear (&more);
                }
                reply.has_more = s_coin ();
                size_t n = s_range (0, 5000);
                uint8_t *data = malloc (n + 1);
                for (size_t i = 0; i < n; i++)
                    data [i] = (uint8_t) s_next ();
                vdgx_jobreply_set_data (&reply, data, n);
                free (data);
                reply.offset = s_range (0, 1ULL << 30);
                reply.size = reply.offset + n + s_range (0, 1000);
                reply.partial = s_coin ();      //  a streaming job's ready part
                reply.attempt = s_coin ()? (uint32_t) s_range (1, 1000): 0;
                s_text (reply.sha256, 64, 64, "0123456789abcdef");
                reply.workers = (uint32_t) s_range (0, 100);
                for (int i = (int) s_range (0, 3); i > 0; i--) {
                    vdgx_svcinfo_t info;
                    s_random_svcinfo (&info);
                    vdgx_jobreply_add_model (&reply, &info);
                }
            }
            char name [32];
            snprintf (name, sizeof name, "jobreply.%s", vdgx_jobcmd_name ((vdgx_jobcmd_type_t) c));
            s_roundtrip (name, &reply, s_pack_jobreply, &checked);
            vdgx_jobreply_clear (&reply);
        }
        vdgx_jobstatus_clear (&status);

        vdgx_error_t e;
        s_random_error (&e);
        s_roundtrip ("error", &e, s_pack_error, &checked);

        vdgx_event_t ev;
        vdgx_event_init (&ev);
        if (s_coin ()) {
            ev.is_model = true;
            ev.type = VDGX_EVENT_STATE;
            strcpy (ev.model, "wan21-tiny");
            ev.worker_state = (vdgx_wstate_state_t) (s_next () % VDGX_WSTATE_COUNT);
            ev.workers = (uint32_t) s_range (0, 64);
            ev.ts = s_real (0, 2e9);
            s_roundtrip ("event.model", &ev, s_pack_event, &checked);
        }
        else {
            ev.type = (vdgx_event_type_t) (s_next () % 3);
            if (ev.type == VDGX_EVENT_CHUNK) {
                ev.has_ready = true;
                s_random_ready (&ev.ready);
            }
            strcpy (ev.id, "j1");
            s_text (ev.model, 1, VDGX_MODEL_MAX, MODEL_CHARS);
            ev.job_state = (vdgx_job_state_t) (s_next () % VDGX_JOB_STATE_COUNT);
            ev.phase = (vdgx_phase_t) (s_next () % VDGX_PHASE_COUNT);
            ev.step = (uint32_t) s_next ();
            ev.steps = (uint32_t) s_next ();
            ev.percent = s_real (0, 100);
            ev.ts = s_real (0, 2e9);
            if ((ev.job_state == VDGX_JOB_FAILED || ev.job_state == VDGX_JOB_EXPIRED) && s_coin ()) {
                ev.has_error = true;
                s_random_error (&ev.error);
            }
            s_roundtrip ("event.job", &ev, s_pack_event, &checked);
        }
        vdgx_genreq_clear (&req);
    }
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf ("round trips: %zu messages in %.2f s (%.0f messages/s incl. generation and checks)\n",
            checked, secs, (double) checked / secs);
}

//  --------------------------------------------------------------------------
//  Malformed inputs

typedef struct {
    const char *codec;
    const char *json;           //  body as JSON (see codec_json_to_msgpack)
    const char *field;          //  expected err.field
    const char *why;            //  expected substring of err.message
} s_bad_t;

#define REQ "\"model\":\"wan21-tiny\",\"prompt\":\"a cat\""
#define VIDEO "\"size\":10,\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"mime\":\"video/mp4\",\"width\":832,\"height\":480,\"frames\":81,\"fps\":16,\"seconds\":5.0"
#define STATUS "\"id\":\"j1\",\"model\":\"wan21-tiny\",\"phase\":\"done\",\"step\":0,\"steps\":0,\"percent\":0,\"queue_position\":0,\"attempt\":1,\"created_at\":1.0,\"started_at\":0,\"finished_at\":0,\"cached\":false"
#define TIMINGS "\"timings\":{\"load\":1,\"text\":1,\"denoise\":1,\"decode\":1,\"mux\":1}"

static const s_bad_t s_bad [] = {
    //  Generate request (5.1).
    { "genreq", "[]", "", "expected a map" },
    { "genreq", "\"x\"", "", "expected a map" },
    { "genreq", "{\"prompt\":\"a\"}", "model", "missing" },
    { "genreq", "{\"model\":\"wan\"}", "prompt", "missing" },
    { "genreq", "{" REQ ",\"colour\":1}", "colour", "unknown key" },
    { "genreq", "{\"model\":7,\"prompt\":\"a\"}", "model", "expected a string" },
    { "genreq", "{\"model\":\"Wan\",\"prompt\":\"a\"}", "model", "only a-z" },
    { "genreq", "{\"model\":\"$A65\",\"prompt\":\"a\"}", "model", "length 65" },
    { "genreq", "{\"model\":\"wan\",\"prompt\":\"\"}", "prompt", "length 0" },
    { "genreq", "{\"model\":\"wan\",\"prompt\":\"$A8193\"}", "prompt", "length 8193" },
    { "genreq", "{\"model\":\"wan\",\"prompt\":\"a\\u0000b\"}", "prompt", "UTF-8" },
    { "genreq", "{" REQ ",\"negative_prompt\":\"$A8193\"}", "negative_prompt", "length" },
    { "genreq", "{" REQ ",\"width\":15}", "width", "outside 16..4096" },
    { "genreq", "{" REQ ",\"width\":4097}", "width", "outside" },
    { "genreq", "{" REQ ",\"height\":-1}", "height", "outside" },
    { "genreq", "{" REQ ",\"height\":480.0}", "height", "expected an unsigned integer" },
    { "genreq", "{" REQ ",\"frames\":0}", "frames", "outside 1..1025" },
    { "genreq", "{" REQ ",\"frames\":1026}", "frames", "outside" },
    { "genreq", "{" REQ ",\"frames\":81,\"seconds\":5.0}", "seconds", "exclusive" },
    { "genreq", "{" REQ ",\"seconds\":0}", "seconds", "outside (0, 600]" },
    { "genreq", "{" REQ ",\"seconds\":600.5}", "seconds", "outside" },
    { "genreq", "{" REQ ",\"seconds\":\"5\"}", "seconds", "expected a number" },
    { "genreq", "{" REQ ",\"fps\":121}", "fps", "outside" },
    { "genreq", "{" REQ ",\"steps\":0}", "steps", "outside" },
    { "genreq", "{" REQ ",\"guidance\":-0.5}", "guidance", "outside" },
    { "genreq", "{" REQ ",\"shift\":0.0}", "shift", "outside" },
    { "genreq", "{" REQ ",\"sampler\":\"ddim\"}", "sampler", "one of: unipc, dpm++, euler" },
    { "genreq", "{" REQ ",\"seed\":\"$U9223372036854775808\"}", "seed", "outside" },
    { "genreq", "{" REQ ",\"seed\":-1}", "seed", "outside" },
    { "genreq", "{" REQ ",\"precision\":\"int8\"}", "precision", "one of" },
    { "genreq", "{" REQ ",\"priority\":\"urgent\"}", "priority", "one of" },
    { "genreq", "{" REQ ",\"idempotency_key\":\"\"}", "idempotency_key", "length 0" },
    { "genreq", "{" REQ ",\"idempotency_key\":\"$A129\"}", "idempotency_key", "length 129" },
    { "genreq", "{" REQ ",\"idempotency_key\":\"a\\tb\"}", "idempotency_key", "printable" },
    { "genreq", "{" REQ ",\"no_cache\":1}", "no_cache", "true or false" },
    { "genreq", "{" REQ ",\"no_cache\":null}", "no_cache", "true or false" },
    //  Job map (3.1).
    { "job", "{\"id\":\"j1\",\"attempt\":1}", "request", "missing" },
    { "job", "{\"id\":\"j 1\",\"attempt\":1,\"request\":{" REQ "}}", "id", "job ids" },
    { "job", "{\"id\":\"$A65\",\"attempt\":1,\"request\":{" REQ "}}", "id", "length 65" },
    { "job", "{\"id\":\"j1\",\"attempt\":0,\"request\":{" REQ "}}", "attempt", "outside" },
    { "job", "{\"id\":\"j1\",\"attempt\":1,\"request\":{\"model\":\"wan\"}}", "request.prompt", "missing" },
    { "job", "{\"id\":\"j1\",\"attempt\":1,\"request\":[]}", "request", "expected a map" },
    //  Result (5.5).
    { "result", "{\"type\":\"result\",\"ok\":true," VIDEO ",\"seed\":1}", "timings", "missing" },
    { "result", "{\"type\":\"chunk\",\"ok\":true," VIDEO ",\"seed\":1," TIMINGS "}", "type", "one of: result" },
    { "result", "{\"type\":\"result\",\"ok\":true," VIDEO ",\"seed\":1,\"timings\":{\"load\":1}}", "timings.text", "missing" },
    { "result", "{\"type\":\"result\",\"ok\":true,\"size\":10,\"sha256\":\"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\",\"mime\":\"video/mp4\",\"width\":832,\"height\":480,\"frames\":81,\"fps\":16,\"seconds\":5.0,\"seed\":1," TIMINGS "}", "sha256", "hex" },
    { "result", "{\"type\":\"result\",\"ok\":false}", "error", "missing" },
    { "result", "{\"type\":\"result\",\"ok\":false,\"seed\":1,\"error\":{\"code\":\"internal\",\"message\":\"x\"}}", "seed", "when ok is false" },
    { "result", "{\"type\":\"result\",\"ok\":false,\"error\":{\"code\":\"oops\",\"message\":\"x\"}}", "error.code", "one of" },
    { "result", "{\"type\":\"result\",\"ok\":true," VIDEO ",\"seed\":1," TIMINGS ",\"error\":{\"code\":\"internal\",\"message\":\"\"}}", "error", "when ok is true" },
    { "result", "{\"type\":\"result\",\"ok\":true," VIDEO ",\"seed\":1,\"timings\":{\"load\":-1,\"text\":1,\"denoise\":1,\"decode\":1,\"mux\":1}}", "timings.load", "outside" },
    //  Progress (5.3) and chunks.
    { "progress", "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"denoising\",\"step\":1,\"steps\":50}", "percent", "missing" },
    { "progress", "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"sleeping\",\"step\":1,\"steps\":50,\"percent\":2}", "phase", "one of" },
    { "progress", "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"denoising\",\"step\":51,\"steps\":50,\"percent\":2}", "step", "exceeds steps" },
    { "progress", "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"denoising\",\"step\":1,\"steps\":50,\"percent\":100.5}", "percent", "outside" },
    { "progress", "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"denoising\",\"step\":1,\"steps\":50,\"percent\":2,\"message\":\"$A257\"}", "message", "length 257" },
    //  The ready prefix of a streaming job: three keys together, growing from 1 byte / frame.
    { "progress", "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"denoising\",\"step\":1,\"steps\":50,\"percent\":2,\"ready_bytes\":10,\"ready_frames\":24}", "ready_seconds", "come together" },
    { "progress", "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"denoising\",\"step\":1,\"steps\":50,\"percent\":2,\"ready_bytes\":0,\"ready_frames\":24,\"ready_seconds\":1}", "ready_bytes", "outside" },
    { "progress", "{\"type\":\"progress\",\"id\":\"j1\",\"phase\":\"denoising\",\"step\":1,\"steps\":50,\"percent\":2,\"ready_bytes\":9,\"ready_frames\":24,\"ready_seconds\":-1}", "ready_seconds", "outside" },
    { "event.job", "{\"type\":\"chunk\",\"id\":\"j1\",\"model\":\"m\",\"state\":\"running\",\"phase\":\"denoising\",\"step\":0,\"steps\":0,\"percent\":0,\"ts\":1}", "ready_bytes", "missing in a chunk event" },
    { "event.job", "{\"type\":\"progress\",\"id\":\"j1\",\"model\":\"m\",\"state\":\"running\",\"phase\":\"denoising\",\"step\":0,\"steps\":0,\"percent\":0,\"ts\":1,\"ready_bytes\":9,\"ready_frames\":24,\"ready_seconds\":1}", "ready_bytes", "only allowed in chunk events" },
    { "event.model", "{\"type\":\"state\",\"model\":\"wan21-tiny\",\"state\":\"warm\",\"workers\":1,\"ts\":1,\"ready_bytes\":9}", "ready_bytes", "not allowed" },
    { "jobreply.result", "{\"ok\":true,\"size\":1,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"offset\":0,\"data\":\"$BIN1\",\"partial\":false}", "partial", "must be true" },
    { "jobreply.result", "{\"ok\":true,\"size\":1,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"offset\":0,\"data\":\"$BIN1\",\"attempt\":0}", "attempt", "outside" },
    { "jobreply.status", "{\"ok\":true,\"partial\":true,\"job\":{}}", "partial", "not allowed" },
    { "chunk", "{\"type\":\"chunk\",\"offset\":0,\"data\":\"text\"}", "data", "expected binary" },
    { "chunk", "{\"type\":\"chunk\",\"offset\":0,\"data\":\"$BIN1048577\"}", "data", "exceed" },
    { "chunk", "{\"type\":\"chunk\",\"data\":\"$BIN1\"}", "offset", "missing" },
    { "wreply", "{\"offset\":0}", "type", "missing" },
    { "wreply", "{\"type\":\"status\"}", "type", "one of: progress, chunk, result" },
    { "wreply", "{\"type\":\"chunk\",\"offset\":0}", "data", "missing" },
    //  Worker state (5.4).
    { "wstate", "{\"state\":\"warm\"}", "service", "missing" },
    { "wstate", "{\"service\":\"wan\",\"state\":\"hot\"}", "state", "one of" },
    { "wstate", "{\"service\":\"wan\",\"state\":\"warm\",\"pid\":4294967296}", "pid", "outside" },
    { "wstate", "{\"service\":\"wan\",\"state\":\"warm\",\"ext\":\"control\"}", "ext", "array" },
    { "wstate", "{\"service\":\"wan\",\"state\":\"warm\",\"ext\":[1]}", "ext", "entry 0" },
    { "wstate", "{\"service\":\"wan\",\"state\":\"warm\",\"pending\":[\"ok\",\"not ok\"]}", "pending", "entry 1" },
    { "wstate", "{\"service\":\"wan\",\"state\":\"warm\",\"job\":\"a/b\"}", "job", "job id" },
    { "wstate", "{\"service\":\"w a n\",\"state\":\"warm\"}", "service", "printable" },
    { "wstate", "{\"service\":\"wan\",\"state\":\"warm\",\"weights_id\":\"$A129\"}", "weights_id", "length 129" },
    { "wstate", "{\"service\":\"wan\",\"state\":\"warm\",\"protocol\":3}", "protocol", "outside 1..2" },
    //  CONTROL.
    { "control", "{\"op\":\"cancel\"}", "id", "missing" },
    { "control", "{\"op\":\"drain\",\"id\":\"j1\"}", "id", "not allowed" },
    { "control", "{\"op\":\"reboot\"}", "op", "one of" },
    { "control", "{}", "op", "missing" },
    //  Job status (5.2).
    { "jobstatus", "{" STATUS "}", "state", "missing" },
    { "jobstatus", "{" STATUS ",\"state\":\"done\"}", "state", "one of" },
    { "jobstatus", "{" STATUS ",\"state\":\"queued\",\"error\":{\"code\":\"internal\",\"message\":\"x\"}}", "error", "only allowed" },
    { "jobstatus", "{" STATUS ",\"state\":\"failed\",\"error\":{\"code\":\"internal\"}}", "error.message", "missing" },
    { "jobstatus", "{" STATUS ",\"state\":\"running\",\"result\":{" VIDEO "}}", "result", "only allowed" },
    { "jobstatus", "{" STATUS ",\"state\":\"completed\",\"result\":{\"size\":1}}", "result.sha256", "missing" },
    { "jobstatus", "{" STATUS ",\"state\":\"completed\",\"request\":{\"model\":\"wan\",\"prompt\":\"a\",\"width\":1}}", "request.width", "outside" },
    { "jobstatus", "{" STATUS ",\"state\":\"completed\",\"ready_bytes\":9,\"ready_frames\":24,\"ready_seconds\":1}", "ready_bytes", "only allowed while the job runs" },
    { "jobstatus", "{" STATUS ",\"state\":\"queued\",\"created_at\":-1}", "created_at", "repeated key" },
    //  Job-service commands (7).
    { "jobcmd", "{\"cmd\":\"explode\"}", "cmd", "one of" },
    { "jobcmd", "{\"id\":\"j1\"}", "cmd", "missing" },
    { "jobcmd", "{\"cmd\":\"submit\"}", "request", "missing (required by cmd 'submit')" },
    { "jobcmd", "{\"cmd\":\"submit\",\"request\":{" REQ ",\"steps\":1001}}", "request.steps", "outside" },
    { "jobcmd", "{\"cmd\":\"status\",\"id\":\"j1\",\"limit\":5}", "limit", "not allowed with cmd 'status'" },
    { "jobcmd", "{\"cmd\":\"drain\",\"host\":\"\"}", "host", "" },
    { "jobcmd", "{\"cmd\":\"drain\",\"id\":\"j1\"}", "id", "not allowed with cmd 'drain'" },
    { "jobcmd", "{\"cmd\":\"unload\",\"model\":\"m\",\"host\":\"h\"}", "host", "not allowed with cmd 'unload'" },
    { "jobcmd", "{\"cmd\":\"status\",\"id\":\"\"}", "id", "length 0" },
    { "jobcmd", "{\"cmd\":\"list\",\"limit\":0}", "limit", "outside 1..1000" },
    { "jobcmd", "{\"cmd\":\"list\",\"limit\":1001}", "limit", "outside" },
    { "jobcmd", "{\"cmd\":\"list\",\"state\":\"lost\"}", "state", "one of" },
    { "jobcmd", "{\"cmd\":\"result\",\"id\":\"j1\",\"length\":4194305}", "length", "outside" },
    { "jobcmd", "{\"cmd\":\"result\",\"id\":\"j1\",\"length\":0}", "length", "outside" },
    { "jobcmd", "{\"cmd\":\"result\",\"id\":\"j1\",\"offset\":-5}", "offset", "outside" },
    { "jobcmd", "{\"cmd\":\"unload\"}", "model", "missing" },
    { "jobcmd", "{\"cmd\":\"models\",\"model\":\"wan\"}", "model", "not allowed" },
    //  Error replies (6).
    { "error", "{\"ok\":true,\"error\":{\"code\":\"internal\",\"message\":\"\"}}", "ok", "must be false" },
    { "error", "{\"ok\":false}", "error", "missing" },
    { "error", "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"$A256\"}}", "error.message", "length 256" },
    { "error", "{\"ok\":false,\"error\":{\"code\":\"queue_full\",\"message\":\"\",\"retry_after_ms\":0}}", "error.retry_after_ms", "outside" },
    { "error", "{\"ok\":false,\"error\":{\"code\":\"queue_full\",\"message\":\"\",\"extra\":1}}", "error.extra", "unknown key" },
    //  Job-service replies (7).
    { "jobreply.submit", "{\"ok\":true,\"id\":\"j1\",\"state\":\"queued\",\"cached\":false}", "queue_position", "missing" },
    { "jobreply.submit", "{\"ok\":true,\"id\":\"j1\",\"state\":\"queued\",\"cached\":false,\"queue_position\":1,\"job\":{}}", "job", "not allowed in a 'submit' reply" },
    { "jobreply.status", "{\"ok\":true,\"job\":{" STATUS ",\"state\":\"paused\"}}", "job.state", "one of" },
    { "jobreply.status", "{\"ok\":false,\"job\":{}}", "job", "not allowed when ok is false" },
    { "jobreply.list", "{\"ok\":true,\"jobs\":[{" STATUS ",\"state\":\"queued\"},{" STATUS "}],\"has_more\":false}", "jobs[1].state", "missing" },
    { "jobreply.list", "{\"ok\":true,\"jobs\":{},\"has_more\":false}", "jobs", "array" },
    { "jobreply.result", "{\"ok\":true,\"size\":4,\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"offset\":2,\"data\":\"$BIN3\"}", "data", "exceeds the size" },
    { "jobreply.result", "{\"ok\":true,\"size\":4,\"sha256\":\"0123\",\"offset\":0,\"data\":\"$BIN3\"}", "sha256", "length 4" },
    { "jobreply.delete", "{\"ok\":true,\"id\":\"j1\",\"deleted\":false}", "deleted", "must be true" },
    { "jobreply.unload", "{\"ok\":true,\"workers\":\"2\"}", "workers", "unsigned integer" },
    { "jobreply.drain", "{\"ok\":true}", "workers", "missing" },
    { "jobreply.models", "{\"ok\":true,\"models\":[{\"name\":\"wan\",\"workers\":1,\"states\":{\"hot\":1}}]}", "models[0].states.hot", "unknown key" },
    { "jobreply.models", "{\"ok\":true,\"models\":[{\"name\":\"wan\",\"workers\":1,\"queued\":1,\"states\":{}}]}", "models[0].running", "come together" },
    { "jobreply.models", "{\"ok\":true}", "models", "missing" },
    //  Events (8).
    { "event.job", "{\"type\":\"state\",\"id\":\"j2\",\"model\":\"wan\",\"state\":\"queued\",\"phase\":\"queued\",\"step\":0,\"steps\":0,\"percent\":0,\"ts\":1}", "id", "does not match the topic" },
    { "event.job", "{\"type\":\"state\",\"id\":\"j1\",\"model\":\"wan\",\"state\":\"queued\",\"phase\":\"queued\",\"step\":0,\"steps\":0,\"percent\":0,\"ts\":1,\"workers\":1}", "workers", "not allowed" },
    { "event.job", "{\"type\":\"news\",\"id\":\"j1\",\"model\":\"wan\",\"state\":\"queued\",\"phase\":\"queued\",\"step\":0,\"steps\":0,\"percent\":0,\"ts\":1}", "type", "one of" },
    { "event.job", "{\"type\":\"state\",\"id\":\"j1\",\"model\":\"wan\",\"state\":\"queued\",\"phase\":\"queued\",\"step\":0,\"steps\":0,\"percent\":0}", "ts", "missing" },
    { "event.model", "{\"type\":\"state\",\"model\":\"wan21-tiny\",\"state\":\"queued\",\"workers\":1,\"ts\":1}", "state", "one of: cold" },
    { "event.model", "{\"type\":\"progress\",\"model\":\"wan21-tiny\",\"state\":\"warm\",\"workers\":1,\"ts\":1}", "type", "model events" },
    { "event.model", "{\"type\":\"state\",\"model\":\"wan21-tiny\",\"state\":\"warm\",\"workers\":1,\"ts\":1,\"id\":\"j1\"}", "id", "not allowed" },
};

//  Raw byte inputs that JSON cannot express, tried against every decoder.
static const struct { const char *hex; const char *why; } s_raw [] = {
    { "", "empty body" },
    { "81a1", "truncated" },                          //  map whose key string is cut
    { "82a161c3", "truncated" },                      //  map of 2 with one entry
    { "80c0", "trailing" },                           //  {} then nil
    { "c1", "invalid msgpack byte" },
    { "dfffffffff", "truncated" },                    //  claims 4G entries
    { "81c3c3", "keys must be strings" },             //  {true: true}
    { "92c3c3", "expected a map" },                   //  [true, true]
    { "c3", "expected a map" },
    { "cb7ff8000000000000", "expected a map" },       //  NaN
};

static size_t
s_unhex (const char *hex, uint8_t *out)
{
    size_t n = strlen (hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf (hex + 2 * i, "%2x", &v);
        out [i] = (uint8_t) v;
    }
    return n;
}

static int
s_malformed (bool verbose)
{
    int failures = 0;
    vdgx_error_t err;
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad [0]; i++) {
        const s_bad_t *t = &s_bad [i];
        const codec_t *c = codec_find (t->codec);
        assert (c);
        msgpack_sbuffer sb;
        //  The "repeated key" case is written as JSON with a duplicate key; build it by hand.
        if (strstr (t->why, "repeated key")) {
            msgpack_sbuffer_init (&sb);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
            msgpack_sbuffer tmp;
            assert (codec_json_to_msgpack (t->json, &tmp) == 0);
            //  Re-pack the map with its first key repeated at the end.
            msgpack_unpacked up;
            assert (vdgx_unpack (&up, tmp.data, tmp.size, &err) == 0);
            msgpack_object_map *map = &up.data.via.map;
            msgpack_pack_map (&pk, map->size + 1);
            for (uint32_t k = 0; k < map->size; k++) {
                msgpack_pack_object (&pk, map->ptr [k].key);
                msgpack_pack_object (&pk, map->ptr [k].val);
            }
            //  created_at appears twice.
            for (uint32_t k = 0; k < map->size; k++)
                if (map->ptr [k].key.via.str.size == 10 && memcmp (map->ptr [k].key.via.str.ptr, "created_at", 10) == 0) {
                    msgpack_pack_object (&pk, map->ptr [k].key);
                    msgpack_pack_object (&pk, map->ptr [k].val);
                }
            msgpack_unpacked_destroy (&up);
            msgpack_sbuffer_destroy (&tmp);
        }
        else
        if (codec_json_to_msgpack (t->json, &sb)) {
            fprintf (stderr, "case %zu: bad JSON in the table: %s\n", i, t->json);
            failures++;
            continue;
        }
        memset (&err, 0, sizeof err);
        int rc = c->decode (sb.data, sb.size, &err, NULL);
        bool ok = rc == -1 && err.code && strcmp (err.code, "bad_request") == 0
               && strcmp (err.field, t->field) == 0 && strstr (err.message, t->why);
        if (!ok) {
            fprintf (stderr, "FAIL %s %s\n  want field '%s' message ~ '%s'\n  got rc=%d field '%s' message '%s'\n",
                     t->codec, t->json, t->field, t->why, rc, rc? err.field: "", rc? err.message: "");
            failures++;
        }
        else if (verbose)
            printf ("ok   %-16s %-24s %s\n", t->codec, t->field, err.message);
        msgpack_sbuffer_destroy (&sb);
    }
    for (size_t i = 0; i < sizeof s_raw / sizeof s_raw [0]; i++)
        for (size_t k = 0; k < codec_count; k++) {
            uint8_t bytes [64];
            size_t n = s_unhex (s_raw [i].hex, bytes);
            memset (&err, 0, sizeof err);
            int rc = codec_table [k].decode (bytes, n, &err, NULL);
            if (rc != -1 || !err.code || strcmp (err.code, "bad_request") || !strstr (err.message, s_raw [i].why)) {
                fprintf (stderr, "FAIL raw %s with %s: want '%s', got rc=%d '%s'\n", s_raw [i].hex,
                         codec_table [k].name, s_raw [i].why, rc, rc? err.message: "");
                failures++;
            }
        }
    printf ("malformed inputs: %zu table cases, %zu raw cases x %zu decoders, %d failures\n",
            sizeof s_bad / sizeof s_bad [0], sizeof s_raw / sizeof s_raw [0], codec_count, failures);
    return failures;
}

#include <dirent.h>
#include "vdgx_config.h"

static int
s_read_file (const char *path, uint8_t **data, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return -1;
    *data = malloc (1 << 20);
    *size = fread (*data, 1, 1 << 20, file);
    fclose (file);
    return 0;
}

//  Every seed under corpus/<target>/ must be accepted by its decoder.
static int
s_check_seeds (const char *corpus)
{
    static const char *targets [] = { "genreq", "job", "result", "progress", "chunk", "wreply",
        "wstate", "control", "jobstatus", "jobcmd", "error", "jobreply", "event", "config" };
    int failures = 0, checked = 0;
    for (size_t t = 0; t < sizeof targets / sizeof targets [0]; t++) {
        char dir [512];
        snprintf (dir, sizeof dir, "%s/%s", corpus, targets [t]);
        DIR *d = opendir (dir);
        if (!d) {
            fprintf (stderr, "no seed folder %s\n", dir);
            failures++;
            continue;
        }
        struct dirent *entry;
        while ((entry = readdir (d))) {
            if (entry->d_name [0] == '.')
                continue;
            char path [1024];
            snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            uint8_t *data;
            size_t size;
            assert (s_read_file (path, &data, &size) == 0);
            vdgx_error_t err;
            memset (&err, 0, sizeof err);
            int rc;
            const char *t_name = targets [t];
            if (strcmp (t_name, "jobreply") == 0) {
                char name [32];
                snprintf (name, sizeof name, "jobreply.%s", vdgx_jobcmd_name ((vdgx_jobcmd_type_t) (data [0] % VDGX_JOBCMD_COUNT)));
                rc = codec_find (name)->decode (data + 1, size - 1, &err, NULL);
            }
            else
            if (strcmp (t_name, "event") == 0) {
                vdgx_event_t ev;
                size_t topic = strlen ((char *) data);
                rc = vdgx_event_decode (&ev, (char *) data, data + topic + 1, size - topic - 1, &err);
            }
            else
            if (strcmp (t_name, "config") == 0) {
                data [size < (1 << 20)? size: size - 1] = 0;
                vdgx_config_t *config = vdgx_config_new ();
                rc = vdgx_config_load_string (config, (char *) data, path);
                if (rc)
                    snprintf (err.message, sizeof err.message, "%s", vdgx_config_error (config));
                vdgx_config_destroy (&config);
            }
            else
                rc = codec_find (t_name)->decode (data, size, &err, NULL);
            if (rc) {
                fprintf (stderr, "seed %s rejected: %s\n", path, err.message);
                failures++;
            }
            checked++;
            free (data);
        }
        closedir (d);
    }
    printf ("fuzz seeds: %d checked, %d rejected\n", checked, failures);
    return failures || checked == 0;
}

//  A list reply as long as the broker sends (1,000 jobs) grows by doubling: a handful of
//  reallocations, not one per job (that copied the array n times: O(n^2), seconds under
//  ASan). A decoded list (allocated to its exact size) still takes more jobs.
static void
s_long_list (void)
{
    vdgx_jobreply_t reply;
    vdgx_jobreply_init (&reply, VDGX_JOBCMD_LIST);
    size_t grows = 0, n = 1000;
    for (size_t i = 0; i < n; i++) {
        vdgx_jobstatus_t st;
        s_random_status (&st);
        snprintf (st.id, sizeof st.id, "j%05zu", i);
        size_t max = reply.jobs_max;
        assert (vdgx_jobreply_add_job (&reply, &st) == 0);
        grows += reply.jobs_max != max;
        vdgx_jobstatus_clear (&st);
    }
    assert (reply.njobs == n && reply.jobs_max >= n && reply.jobs_max < 2 * n);
    assert (grows <= 8);
    zframe_t *frame = vdgx_jobreply_frame (&reply);
    assert (frame);
    vdgx_jobreply_t back;
    vdgx_jobreply_init (&back, VDGX_JOBCMD_LIST);
    vdgx_error_t err;
    assert (vdgx_jobreply_decode (&back, zframe_data (frame), zframe_size (frame), &err) == 0);
    assert (back.njobs == n && back.jobs_max == n);
    for (size_t i = 0; i < n; i++)
        assert (streq (back.jobs [i].id, reply.jobs [i].id));
    assert (vdgx_jobreply_add_job (&back, &reply.jobs [0]) == 0);
    assert (back.njobs == n + 1 && back.jobs_max >= n + 1 && streq (back.jobs [n].id, "j00000"));
    zframe_destroy (&frame);
    vdgx_jobreply_clear (&back);
    vdgx_jobreply_clear (&reply);
}

int
main (int argc, char *argv [])
{
    if (argc == 3 && strcmp (argv [1], "--seeds") == 0)
        return s_check_seeds (argv [2]);
    bool verbose = getenv ("VERBOSE") != NULL;
    s_rng = argc > 1? strtoull (argv [1], NULL, 0): 20261127;
    int rounds = argc > 2? atoi (argv [2]): 300;
    printf ("seed %" PRIu64 ", %d rounds\n", s_rng, rounds);
    s_random_roundtrips (rounds);
    s_long_list ();
    return s_malformed (verbose)? 1: 0;
}
