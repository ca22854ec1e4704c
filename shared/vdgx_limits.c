/*  vdgx_limits.c - what a model accepts (see the header). */
#include "vdgx_limits.h"
#include "vdgx_mp.h"
#include "vdgx_msg.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SIDE_MAX 16384            //  the protocol's width/height bound (genreq)

void
vdgx_limits_init (vdgx_limits_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
}

int
vdgx_limits_add_size (vdgx_limits_t *self, uint32_t width, uint32_t height)
{
    assert (self);
    if (self->nsizes >= VDGX_LIMITS_SIZES_MAX || !width || !height)
        return -1;
    self->sizes [self->nsizes][0] = width;
    self->sizes [self->nsizes][1] = height;
    self->nsizes++;
    return 0;
}

//  A bad_request on a field; the value of the expression is -1.
#define s_fail(err, field, ...) (vdgx_error_set ((err), VDGX_E_BAD_REQUEST, (field), __VA_ARGS__), -1)

//  "832x480, 480x832" into buf.
static void
s_sizes_text (const vdgx_limits_t *self, char *buf, size_t size)
{
    size_t used = 0;
    buf [0] = 0;
    for (size_t i = 0; i < self->nsizes && used < size; i++) {
        int n = snprintf (buf + used, size - used, "%s%ux%u", i? ", ": "",
                          self->sizes [i][0], self->sizes [i][1]);
        if (n < 0)
            break;
        used += (size_t) n;
    }
}

int
vdgx_limits_check (const vdgx_limits_t *self, const char *model, const vdgx_genreq_t *req,
                   vdgx_error_t *err)
{
    assert (self && req && err);
    if (!self->present)
        return 0;
    model = model && *model? model: req->model;
    if (req->width || req->height) {
        if (!req->width || !req->height)
            return s_fail (err, req->width? "height": "width",
                           "give both width and height (or neither) for %s", model);
        if (self->nsizes) {
            bool ok = false;
            for (size_t i = 0; i < self->nsizes && !ok; i++)
                ok = self->sizes [i][0] == req->width && self->sizes [i][1] == req->height;
            if (!ok) {
                char sizes [VDGX_LIMITS_SIZES_MAX * 14];
                s_sizes_text (self, sizes, sizeof sizes);
                return s_fail (err, "width", "%s supports the sizes %s (got %ux%u)", model, sizes,
                               req->width, req->height);
            }
        }
        else
        for (int k = 0; k < 2; k++) {
            uint32_t v = k? req->height: req->width;
            const char *name = k? "height": "width";
            if (v < self->wh_min || v > self->wh_max || v % self->wh_multiple)
                return s_fail (err, name, "%s must be a multiple of %u from %u to %u for %s (got %u)",
                               name, self->wh_multiple, self->wh_min, self->wh_max, model, v);
        }
    }
    uint32_t step = self->frames_step? self->frames_step: self->frames_4n1? 4: 0;
    if (req->frames && (req->frames > self->frames_max || (step > 1 && req->frames % step != 1))) {
        char rule [24] = "";
        if (step > 1)
            snprintf (rule, sizeof rule, "%un+1 ", step);
        return s_fail (err, "frames", "frames must be %sfrom 1 to %u for %s (got %u)", rule,
                       self->frames_max, model, req->frames);
    }
    if (req->steps > self->steps_max)
        return s_fail (err, "steps", "steps must be 1..%u for %s (got %u)", self->steps_max, model,
                       req->steps);
    if (req->has_guidance && !(req->guidance >= 0 && req->guidance <= self->guidance_max))
        return s_fail (err, "guidance", "guidance must be 0..%g for %s (got %g)", self->guidance_max,
                       model, req->guidance);
    if (req->fps > self->fps_max)
        return s_fail (err, "fps", "fps must be 1..%u for %s (got %u)", self->fps_max, model, req->fps);
    if (!req->image && self->images_required >= 1)
        return s_fail (err, "image", "%s needs a first-frame image (`image`; `input_reference` "
                       "on /v1/videos): it is an image-to-video model", model);
    if (!req->last_image && self->images_required >= 2)
        return s_fail (err, "last_image", "%s needs a last-frame image (`last_image`) as well as "
                       "`image`: it is a first-last-frame model", model);
    if (req->image && self->images < 1)
        return s_fail (err, "image", "%s does not take an image (it is a text-to-video model)", model);
    if (req->last_image && self->images < 2)
        return s_fail (err, "last_image", "%s does not take a last_image (only %s)", model,
                       self->images? "a first-frame image": "text");
    return 0;
}

static int
s_kuint (msgpack_packer *pk, const char *key, uint64_t value)
{
    return vdgx_mp_pack_key (pk, key) | msgpack_pack_uint64 (pk, value);
}

int
vdgx_limits_pack (const vdgx_limits_t *self, msgpack_packer *pk)
{
    assert (self && self->present);
    int rc = msgpack_pack_map (pk, 8 + (self->nsizes > 0) + (self->images > 0) + (self->frames_step > 0)
                                   + (self->images_required > 0));
    rc |= s_kuint (pk, "wh_min", self->wh_min) | s_kuint (pk, "wh_max", self->wh_max)
        | s_kuint (pk, "wh_multiple", self->wh_multiple);
    if (self->nsizes) {
        rc |= vdgx_mp_pack_key (pk, "sizes") | msgpack_pack_array (pk, self->nsizes);
        for (size_t i = 0; i < self->nsizes; i++) {
            char text [24];
            snprintf (text, sizeof text, "%ux%u", self->sizes [i][0], self->sizes [i][1]);
            rc |= vdgx_mp_pack_cstr (pk, text);
        }
    }
    rc |= s_kuint (pk, "frames_max", self->frames_max)
        | vdgx_mp_pack_key (pk, "frames_4n1")
        | (self->frames_4n1? msgpack_pack_true (pk): msgpack_pack_false (pk));
    if (self->frames_step)
        rc |= s_kuint (pk, "frames_step", self->frames_step);
    rc |= s_kuint (pk, "steps_max", self->steps_max)
        | vdgx_mp_pack_key (pk, "guidance_max") | msgpack_pack_double (pk, self->guidance_max)
        | s_kuint (pk, "fps_max", self->fps_max);
    if (self->images)
        rc |= s_kuint (pk, "images", self->images);
    if (self->images_required)
        rc |= s_kuint (pk, "images_required", self->images_required);
    return rc? -1: 0;
}

//  "WxH" with both sides 1..S_SIDE_MAX, nothing else.
static bool
s_parse_size (const char *text, size_t len, uint32_t *w, uint32_t *h)
{
    uint64_t v [2] = { 0, 0 };
    int side = 0;
    size_t digits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        if (c >= '0' && c <= '9') {
            v [side] = v [side] * 10 + (uint64_t) (c - '0');
            if (v [side] > S_SIDE_MAX || ++digits > 5)
                return false;
        }
        else
        if (c == 'x' && side == 0 && digits > 0) {
            side = 1;
            digits = 0;
        }
        else
            return false;
    }
    if (side != 1 || digits == 0 || !v [0] || !v [1])
        return false;
    *w = (uint32_t) v [0];
    *h = (uint32_t) v [1];
    return true;
}

int
vdgx_limits_decode_obj (vdgx_limits_t *self, const msgpack_object *obj, const char *path,
                        vdgx_error_t *err)
{
    enum { K_WH_MIN, K_WH_MAX, K_WH_MULTIPLE, K_SIZES, K_FRAMES_MAX, K_FRAMES_4N1, K_STEPS_MAX,
           K_GUIDANCE_MAX, K_FPS_MAX, K_IMAGES, K_FRAMES_STEP, K_IMAGES_REQUIRED, K_N };
    static const char *keys [] = { "wh_min", "wh_max", "wh_multiple", "sizes", "frames_max",
                                   "frames_4n1", "steps_max", "guidance_max", "fps_max", "images",
                                   "frames_step", "images_required" };
    vdgx_limits_init (self);
    vdgx_mp_map_t m;
    if (vdgx_mp_map (&m, obj, path? path: "", keys, K_N, err)
    ||  vdgx_mp_u32 (&m, K_WH_MIN, true, 1, S_SIDE_MAX, &self->wh_min) < 0
    ||  vdgx_mp_u32 (&m, K_WH_MAX, true, 1, S_SIDE_MAX, &self->wh_max) < 0
    ||  vdgx_mp_u32 (&m, K_WH_MULTIPLE, true, 1, 1024, &self->wh_multiple) < 0
    ||  vdgx_mp_u32 (&m, K_FRAMES_MAX, true, 1, 1000000, &self->frames_max) < 0
    ||  vdgx_mp_bool (&m, K_FRAMES_4N1, true, &self->frames_4n1) < 0
    ||  vdgx_mp_u32 (&m, K_FRAMES_STEP, false, 1, 1024, &self->frames_step) < 0
    ||  vdgx_mp_u32 (&m, K_STEPS_MAX, true, 1, 10000, &self->steps_max) < 0
    ||  vdgx_mp_double (&m, K_GUIDANCE_MAX, true, 0, 1000, false, &self->guidance_max) < 0
    ||  vdgx_mp_u32 (&m, K_FPS_MAX, true, 1, 240, &self->fps_max) < 0
    ||  vdgx_mp_u32 (&m, K_IMAGES, false, 0, 2, &self->images) < 0
    ||  vdgx_mp_u32 (&m, K_IMAGES_REQUIRED, false, 0, 2, &self->images_required) < 0)
        goto failed;
    if (self->images_required > self->images) {
        vdgx_mp_fail (&m, K_IMAGES_REQUIRED, "images_required %u exceeds images %u",
                      self->images_required, self->images);
        goto failed;
    }
    if (self->wh_min > self->wh_max) {
        vdgx_mp_fail (&m, K_WH_MIN, "wh_min %u exceeds wh_max %u", self->wh_min, self->wh_max);
        goto failed;
    }
    const msgpack_object *sizes = vdgx_mp_value (&m, K_SIZES);
    if (sizes) {
        if (sizes->type != MSGPACK_OBJECT_ARRAY || sizes->via.array.size < 1
        ||  sizes->via.array.size > VDGX_LIMITS_SIZES_MAX) {
            vdgx_mp_fail (&m, K_SIZES, "expected 1..%d sizes", VDGX_LIMITS_SIZES_MAX);
            goto failed;
        }
        for (uint32_t i = 0; i < sizes->via.array.size; i++) {
            const msgpack_object *s = &sizes->via.array.ptr [i];
            uint32_t w, h;
            if (s->type != MSGPACK_OBJECT_STR || !s_parse_size (s->via.str.ptr, s->via.str.size, &w, &h)) {
                vdgx_mp_fail (&m, K_SIZES, "entry %u is not WxH (1..%d each)", i, S_SIDE_MAX);
                goto failed;
            }
            vdgx_limits_add_size (self, w, h);
        }
    }
    self->present = true;
    return 0;
failed:
    vdgx_limits_init (self);
    return -1;
}

bool
vdgx_limits_equal (const vdgx_limits_t *a, const vdgx_limits_t *b)
{
    assert (a && b);
    if (a->present != b->present)
        return false;
    if (!a->present)
        return true;
    if (a->wh_min != b->wh_min || a->wh_max != b->wh_max || a->wh_multiple != b->wh_multiple
    ||  a->nsizes != b->nsizes || a->frames_max != b->frames_max || a->frames_4n1 != b->frames_4n1
    ||  a->steps_max != b->steps_max || a->guidance_max != b->guidance_max || a->fps_max != b->fps_max
    ||  a->images != b->images || a->frames_step != b->frames_step
    ||  a->images_required != b->images_required)
        return false;
    return memcmp (a->sizes, b->sizes, a->nsizes * sizeof a->sizes [0]) == 0;
}

//  ---------------------------------------------------------------------------------------
//  Selftest

#undef NDEBUG
#include <assert.h>

static int
s_round_trip (const vdgx_limits_t *in, vdgx_limits_t *out, vdgx_error_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert (vdgx_limits_pack (in, &pk) == 0);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t off = 0;
    assert (msgpack_unpack_next (&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS);
    int rc = vdgx_limits_decode_obj (out, &up.data, "limits", err);
    msgpack_unpacked_destroy (&up);
    msgpack_sbuffer_destroy (&sb);
    return rc;
}

//  Decodes the msgpack bytes written in hex.
static int
s_decode_hex (const char *hex, vdgx_limits_t *out, vdgx_error_t *err)
{
    uint8_t buf [256] = { 0 };
    size_t n = strlen (hex) / 2;
    assert (n <= sizeof buf);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf (hex + 2 * i, "%2x", &v);
        buf [i] = (uint8_t) v;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next (&up, (const char *) buf, n, &off) == MSGPACK_UNPACK_SUCCESS)
        rc = vdgx_limits_decode_obj (out, &up.data, "limits", err);
    msgpack_unpacked_destroy (&up);
    return rc;
}

void
vdgx_limits_test (bool verbose)
{
    printf (" * vdgx_limits: ");
    vdgx_limits_t lim, back;
    vdgx_error_t err;
    vdgx_genreq_t req;
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "m");

    //  Absent limits pass everything.
    vdgx_limits_init (&lim);
    req.width = 3;
    req.height = 5;
    req.frames = 2;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == 0);

    //  A range model (multiples of 16 from 32 to 256, 4n+1 frames up to 33).
    lim = (vdgx_limits_t) { .present = true, .wh_min = 32, .wh_max = 256, .wh_multiple = 16,
                            .frames_max = 33, .frames_4n1 = true, .steps_max = 100,
                            .guidance_max = 50, .fps_max = 60 };
    vdgx_genreq_init (&req);
    snprintf (req.model, sizeof req.model, "wan21-tiny");
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == 0);      //  all defaults
    req.width = 64; req.height = 48; req.frames = 9; req.steps = 100; req.fps = 60;
    req.has_guidance = true; req.guidance = 50;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == 0);      //  every bound, inclusive
    req.height = 40;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "height") == 0);
    assert (strcmp (err.code, "bad_request") == 0 && strstr (err.message, "wan21-tiny"));
    req.height = 0;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "height") == 0);
    req.height = 48; req.width = 272;
    assert (vdgx_limits_check (&lim, "served-as", &req, &err) == -1 && strcmp (err.field, "width") == 0);
    assert (strstr (err.message, "served-as"));
    req.width = 64; req.frames = 8;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "frames") == 0);
    req.frames = 37;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strstr (err.message, "4n+1"));
    req.frames = 33; req.steps = 101;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "steps") == 0);
    req.steps = 0; req.guidance = 50.5;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "guidance") == 0);
    req.guidance = NAN;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "guidance") == 0);
    req.has_guidance = false; req.fps = 61;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "fps") == 0);
    assert (s_round_trip (&lim, &back, &err) == 0 && vdgx_limits_equal (&lim, &back));
    assert (back.images == 0);

    //  Images: a text-to-video model refuses them, an image-to-video model takes one, a
    //  first-last-frame model two; each refusal names its field.
    static const uint8_t png [] = { 0x89, 'P', 'N', 'G' };  //  the check does not decode
    req.fps = 0;
    req.image = (uint8_t *) png;
    req.image_size = sizeof png;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "image") == 0);
    assert (strstr (err.message, "wan21-tiny does not take an image"));
    lim.images = 1;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == 0);
    req.last_image = (uint8_t *) png;
    req.last_image_size = sizeof png;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == -1 && strcmp (err.field, "last_image") == 0);
    lim.images = 2;
    assert (vdgx_limits_check (&lim, NULL, &req, &err) == 0);
    assert (s_round_trip (&lim, &back, &err) == 0 && vdgx_limits_equal (&lim, &back));
    assert (back.images == 2);
    back.images = 1;
    assert (!vdgx_limits_equal (&lim, &back));
    //  Required images: a request without them is refused on the missing field, and the
    //  requirement travels (and is checked against `images`) over the wire.
    lim.images_required = 2;
    assert (vdgx_limits_check (&lim, "flf2v", &req, &err) == 0);
    req.last_image = NULL;
    req.last_image_size = 0;
    assert (vdgx_limits_check (&lim, "flf2v", &req, &err) == -1
            && strcmp (err.field, "last_image") == 0 && strstr (err.message, "flf2v needs"));
    req.image = NULL;
    req.image_size = 0;
    assert (vdgx_limits_check (&lim, "flf2v", &req, &err) == -1 && strcmp (err.field, "image") == 0);
    lim.images_required = 1;
    assert (vdgx_limits_check (&lim, "i2v", &req, &err) == -1 && strcmp (err.field, "image") == 0
            && strstr (err.message, "i2v needs a first-frame image"));
    assert (s_round_trip (&lim, &back, &err) == 0 && vdgx_limits_equal (&lim, &back));
    assert (back.images_required == 1);
    lim.images = 0;                         //  more required than taken: refused on decode
    assert (s_round_trip (&lim, &back, &err) == -1 && strstr (err.message, "images_required"));
    lim.images_required = 0;
    req.image = req.last_image = NULL;      //  not owned: not freed by clear
    req.image_size = req.last_image_size = 0;
    lim.images = 0;

    //  Frames 8n+1 (LTX-2): the step given on its own, and over the wire.
    vdgx_limits_t eight = lim;
    eight.frames_4n1 = false;
    eight.frames_step = 8;
    vdgx_genreq_init (&req);
    req.frames = 13;
    assert (vdgx_limits_check (&eight, "ltx2-tiny", &req, &err) == -1 && strstr (err.message, "8n+1"));
    req.frames = 17;
    assert (vdgx_limits_check (&eight, "ltx2-tiny", &req, &err) == 0);
    assert (s_round_trip (&eight, &back, &err) == 0 && vdgx_limits_equal (&eight, &back));
    assert (back.frames_step == 8 && !vdgx_limits_equal (&eight, &lim));

    //  A model of fixed sizes.
    vdgx_limits_t fixed = { .present = true, .wh_min = 16, .wh_max = 4096, .wh_multiple = 1,
                            .frames_max = 81, .frames_4n1 = true, .steps_max = 1000,
                            .guidance_max = 50, .fps_max = 60 };
    assert (vdgx_limits_add_size (&fixed, 832, 480) == 0 && vdgx_limits_add_size (&fixed, 480, 832) == 0);
    assert (vdgx_limits_add_size (&fixed, 0, 480) == -1);
    vdgx_genreq_init (&req);
    req.width = 480; req.height = 832;
    assert (vdgx_limits_check (&fixed, "wan21-1.3b", &req, &err) == 0);
    req.width = 1280; req.height = 720;
    assert (vdgx_limits_check (&fixed, "wan21-1.3b", &req, &err) == -1 && strcmp (err.field, "width") == 0);
    assert (strstr (err.message, "832x480, 480x832") && strstr (err.message, "1280x720"));
    assert (s_round_trip (&fixed, &back, &err) == 0 && vdgx_limits_equal (&fixed, &back));
    assert (!vdgx_limits_equal (&fixed, &lim));
    vdgx_limits_t full = fixed;
    full.nsizes = 0;
    for (int i = 0; i < VDGX_LIMITS_SIZES_MAX; i++)
        assert (vdgx_limits_add_size (&full, 16 * (i + 1), 16) == 0);
    assert (vdgx_limits_add_size (&full, 16, 16) == -1);
    assert (s_round_trip (&full, &back, &err) == 0 && back.nsizes == VDGX_LIMITS_SIZES_MAX);

    //  Malformed maps: each names the field, none is accepted.
    static const char *const head =
        "a677685f6d696e10a677685f6d617820ab77685f6d756c7469706c6510aa6672616d65735f6d617809"
        "aa6672616d65735f346e31c3a973746570735f6d617808ac67756964616e63655f6d6178cb4014000000000000"
        "a76670735f6d617810";    //  wh_min 16, wh_max 32, wh_multiple 16, frames_max 9, ... fps_max 16
    char hex [512];
    //  The reference map decodes (so each bad one below fails for its own reason).
    snprintf (hex, sizeof hex, "89%sa573697a657391a53634783438", head);        //  + sizes ["64x48"]
    assert (s_decode_hex (hex, &back, &err) == 0 && back.present && back.nsizes == 1
            && back.sizes [0][0] == 64 && back.sizes [0][1] == 48 && back.wh_max == 32);
    static const struct { const char *prefix, *tail, *field; } bad [] = {
        { "c0", "", "limits" },                                         //  nil
        { "80", "", "limits.wh_min" },                                  //  {}: required keys
        { "89", "a573697a657391a3363478", "limits.sizes" },             //  sizes ["64x"]
        { "89", "a573697a657390", "limits.sizes" },                     //  sizes []
        { "89", "a573697a657391a3307834", "limits.sizes" },             //  sizes ["0x4"]
        { "89", "a178c3", "limits.x" },                                 //  unknown key x
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        if (strcmp (bad [i].prefix, "89") == 0)
            snprintf (hex, sizeof hex, "89%s%s", head, bad [i].tail);
        else
            snprintf (hex, sizeof hex, "%s", bad [i].prefix);
        memset (&err, 0, sizeof err);
        int rc = s_decode_hex (hex, &back, &err);
        if (verbose)
            fprintf (stderr, "\n   bad %zu: %d %s: %s", i, rc, err.field, err.message);
        assert (rc == -1 && !back.present && strcmp (err.field, bad [i].field) == 0);
    }
    //  wh_min above wh_max.
    snprintf (hex, sizeof hex, "88%s", head);
    hex [16] = '4';             //  wh_min 16 (0x10) -> 64 (0x40)
    assert (s_decode_hex (hex, &back, &err) == -1 && strcmp (err.field, "limits.wh_min") == 0);
    vdgx_genreq_clear (&req);
    printf ("OK\n");
}
