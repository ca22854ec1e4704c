/*  vdgx_genreq.c - the generate request (PROTOCOL.md 5.1), strict codec. */
#include "vdgx_genreq.h"
#include "vdgx_mp.h"
#include "vdgx_image.h"
#include "vdgx_sha256.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    K_MODEL, K_PROMPT, K_NEGATIVE, K_WIDTH, K_HEIGHT, K_FRAMES, K_SECONDS, K_FPS, K_STEPS,
    K_GUIDANCE, K_SHIFT, K_SAMPLER, K_SEED, K_PRECISION, K_PRIORITY, K_IDEMKEY, K_NO_CACHE,
    K_IMAGE, K_LAST_IMAGE, K_COUNT
};
static const char *s_keys [K_COUNT] = {
    "model", "prompt", "negative_prompt", "width", "height", "frames", "seconds", "fps",
    "steps", "guidance", "shift", "sampler", "seed", "precision", "priority",
    "idempotency_key", "no_cache", "image", "last_image"
};
static const char *s_samplers [] = { "unipc", "dpm++", "euler" };
static const char *s_precisions [] = { "fp32", "bf16", "fp8", "fp4" };
static const char *s_priorities [] = { "high", "normal", "low" };

void
vdgx_genreq_init (vdgx_genreq_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->priority = VDGX_PRIORITY_NORMAL;
}

void
vdgx_genreq_clear (vdgx_genreq_t *self)
{
    assert (self);
    free (self->prompt);
    free (self->negative_prompt);
    free (self->image);
    free (self->last_image);
    vdgx_genreq_init (self);
}

void
vdgx_genreq_drop_images (vdgx_genreq_t *self)
{
    assert (self);
    free (self->image);
    free (self->last_image);
    self->image = self->last_image = NULL;
    self->image_size = self->last_image_size = 0;
}

int
vdgx_genreq_set_image (vdgx_genreq_t *self, const char *field, const void *data, size_t size)
{
    assert (self && field && (data || size == 0));
    bool last = strcmp (field, "last_image") == 0;
    if (!last && strcmp (field, "image"))
        return -1;
    uint8_t *copy = NULL;
    if (size) {
        copy = (uint8_t *) malloc (size);
        if (!copy)
            return -1;
        memcpy (copy, data, size);
    }
    uint8_t **slot = last? &self->last_image: &self->image;
    free (*slot);
    *slot = copy;
    *(last? &self->last_image_size: &self->image_size) = size;
    return 0;
}

int
vdgx_genreq_copy (vdgx_genreq_t *dst, const vdgx_genreq_t *src)
{
    assert (dst && src && dst != src);
    vdgx_genreq_t copy = *src;
    copy.prompt = src->prompt? strdup (src->prompt): NULL;
    copy.negative_prompt = src->negative_prompt? strdup (src->negative_prompt): NULL;
    copy.image = copy.last_image = NULL;
    copy.image_size = copy.last_image_size = 0;
    if ((src->prompt && !copy.prompt) || (src->negative_prompt && !copy.negative_prompt)
    ||  vdgx_genreq_set_image (&copy, "image", src->image, src->image_size)
    ||  vdgx_genreq_set_image (&copy, "last_image", src->last_image, src->last_image_size)) {
        free (copy.prompt);
        free (copy.negative_prompt);
        free (copy.image);
        free (copy.last_image);
        return -1;
    }
    vdgx_genreq_clear (dst);
    *dst = copy;
    return 0;
}

const char *
vdgx_priority_name (vdgx_priority_t p)
{
    return (unsigned) p < 3? s_priorities [p]: "normal";
}

int
vdgx_priority_parse (const char *name, vdgx_priority_t *p)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp (name, s_priorities [i]) == 0) {
            *p = (vdgx_priority_t) i;
            return 0;
        }
    return -1;
}

bool
vdgx_model_name_valid (const char *name)
{
    if (!name)
        return false;
    size_t i;
    for (i = 0; name [i]; i++) {
        char c = name [i];
        if (i >= VDGX_MODEL_MAX
        || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return i > 0;
}

int
vdgx_genreq_decode_at (vdgx_genreq_t *self, const msgpack_object *obj, const char *path,
                       vdgx_error_t *err)
{
    assert (self);
    vdgx_genreq_clear (self);
    vdgx_mp_map_t m;
    if (vdgx_mp_map (&m, obj, path, s_keys, K_COUNT, err))
        goto failed;
    if (vdgx_mp_str (&m, K_MODEL, true, 1, VDGX_MODEL_MAX, self->model, sizeof self->model) < 0)
        goto failed;
    if (!vdgx_model_name_valid (self->model)) {
        vdgx_mp_fail (&m, K_MODEL, "only a-z, 0-9, '.', '_' and '-' are allowed");
        goto failed;
    }
    if (vdgx_mp_strdup (&m, K_PROMPT, true, 1, VDGX_PROMPT_MAX, &self->prompt) < 0
    ||  vdgx_mp_strdup (&m, K_NEGATIVE, false, 0, VDGX_PROMPT_MAX, &self->negative_prompt) < 0
    ||  vdgx_mp_u32 (&m, K_WIDTH, false, 16, 4096, &self->width) < 0
    ||  vdgx_mp_u32 (&m, K_HEIGHT, false, 16, 4096, &self->height) < 0
    ||  vdgx_mp_u32 (&m, K_FRAMES, false, 1, 1025, &self->frames) < 0
    ||  vdgx_mp_u32 (&m, K_FPS, false, 1, 120, &self->fps) < 0
    ||  vdgx_mp_u32 (&m, K_STEPS, false, 1, 1000, &self->steps) < 0)
        goto failed;
    int rc;
    if ((rc = vdgx_mp_double (&m, K_SECONDS, false, 0, 600, true, &self->seconds)) < 0)
        goto failed;
    self->has_seconds = rc == 1;
    if (self->has_seconds && self->frames) {
        vdgx_mp_fail (&m, K_SECONDS, "frames and seconds are exclusive");
        goto failed;
    }
    if ((rc = vdgx_mp_double (&m, K_GUIDANCE, false, 0, 100, false, &self->guidance)) < 0)
        goto failed;
    self->has_guidance = rc == 1;
    if ((rc = vdgx_mp_double (&m, K_SHIFT, false, 0, 100, true, &self->shift)) < 0)
        goto failed;
    self->has_shift = rc == 1;
    int index;
    if ((rc = vdgx_mp_enum (&m, K_SAMPLER, false, s_samplers, 3, &index)) < 0)
        goto failed;
    if (rc == 1)
        snprintf (self->sampler, sizeof self->sampler, "%s", s_samplers [index]);
    if ((rc = vdgx_mp_uint (&m, K_SEED, false, 0, INT64_MAX, &self->seed)) < 0)
        goto failed;
    self->has_seed = rc == 1;
    if ((rc = vdgx_mp_enum (&m, K_PRECISION, false, s_precisions, 4, &index)) < 0)
        goto failed;
    if (rc == 1)
        snprintf (self->precision, sizeof self->precision, "%s", s_precisions [index]);
    if ((rc = vdgx_mp_enum (&m, K_PRIORITY, false, s_priorities, 3, &index)) < 0)
        goto failed;
    if (rc == 1)
        self->priority = (vdgx_priority_t) index;
    if (vdgx_mp_str (&m, K_IDEMKEY, false, 1, VDGX_IDEMKEY_MAX, self->idempotency_key,
                     sizeof self->idempotency_key) < 0)
        goto failed;
    for (const char *p = self->idempotency_key; *p; p++)
        if (*p < 0x20 || *p > 0x7e) {
            vdgx_mp_fail (&m, K_IDEMKEY, "only printable ASCII is allowed");
            goto failed;
        }
    if (vdgx_mp_bool (&m, K_NO_CACHE, false, &self->no_cache) < 0)
        goto failed;
    for (int k = K_IMAGE; k <= K_LAST_IMAGE; k++) {
        const uint8_t *data;
        size_t size;
        if ((rc = vdgx_mp_bin (&m, (size_t) k, false, VDGX_IMAGE_BYTES_MAX, &data, &size)) < 0)
            goto failed;
        if (rc == 0)
            continue;
        char why [200];
        if (vdgx_image_probe (data, size, NULL, NULL, NULL, NULL, why, sizeof why)) {
            vdgx_mp_fail (&m, (size_t) k, "%s", why);
            goto failed;
        }
        if (vdgx_genreq_set_image (self, s_keys [k], data, size)) {
            vdgx_mp_fail (&m, (size_t) k, "out of memory");
            goto failed;
        }
    }
    if (self->last_image && !self->image) {
        vdgx_mp_fail (&m, K_LAST_IMAGE, "needs image (the first frame)");
        goto failed;
    }
    return 0;
failed:
    vdgx_genreq_clear (self);
    return -1;
}

int
vdgx_genreq_decode_obj (vdgx_genreq_t *self, const msgpack_object *obj, vdgx_error_t *err)
{
    return vdgx_genreq_decode_at (self, obj, "", err);
}

int
vdgx_genreq_decode (vdgx_genreq_t *self, const void *data, size_t size, vdgx_error_t *err)
{
    assert (self);
    vdgx_genreq_clear (self);
    if (vdgx_mp_check (data, size, err))
        return -1;
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next (&up, data, size, &off) != MSGPACK_UNPACK_SUCCESS || off != size)
        vdgx_mp_error (err, "", "malformed msgpack");
    else
        rc = vdgx_genreq_decode_obj (self, &up.data, err);
    msgpack_unpacked_destroy (&up);
    return rc;
}

int
vdgx_genreq_pack (const vdgx_genreq_t *self, msgpack_packer *pk)
{
    assert (self && pk);
    uint32_t n = 2 + (self->negative_prompt != NULL) + (self->width > 0) + (self->height > 0)
               + (self->frames > 0) + self->has_seconds + (self->fps > 0) + (self->steps > 0)
               + self->has_guidance + self->has_shift + (self->sampler [0] != 0)
               + self->has_seed + (self->precision [0] != 0)
               + (self->priority != VDGX_PRIORITY_NORMAL) + (self->idempotency_key [0] != 0)
               + self->no_cache + (self->image != NULL) + (self->last_image != NULL);
    int rc = msgpack_pack_map (pk, n);
    rc |= vdgx_mp_pack_key (pk, "model") | vdgx_mp_pack_cstr (pk, self->model);
    rc |= vdgx_mp_pack_key (pk, "prompt") | vdgx_mp_pack_cstr (pk, self->prompt? self->prompt: "");
    if (self->negative_prompt)
        rc |= vdgx_mp_pack_key (pk, "negative_prompt") | vdgx_mp_pack_cstr (pk, self->negative_prompt);
    if (self->width)
        rc |= vdgx_mp_pack_key (pk, "width") | msgpack_pack_uint32 (pk, self->width);
    if (self->height)
        rc |= vdgx_mp_pack_key (pk, "height") | msgpack_pack_uint32 (pk, self->height);
    if (self->frames)
        rc |= vdgx_mp_pack_key (pk, "frames") | msgpack_pack_uint32 (pk, self->frames);
    if (self->has_seconds)
        rc |= vdgx_mp_pack_key (pk, "seconds") | msgpack_pack_double (pk, self->seconds);
    if (self->fps)
        rc |= vdgx_mp_pack_key (pk, "fps") | msgpack_pack_uint32 (pk, self->fps);
    if (self->steps)
        rc |= vdgx_mp_pack_key (pk, "steps") | msgpack_pack_uint32 (pk, self->steps);
    if (self->has_guidance)
        rc |= vdgx_mp_pack_key (pk, "guidance") | msgpack_pack_double (pk, self->guidance);
    if (self->has_shift)
        rc |= vdgx_mp_pack_key (pk, "shift") | msgpack_pack_double (pk, self->shift);
    if (self->sampler [0])
        rc |= vdgx_mp_pack_key (pk, "sampler") | vdgx_mp_pack_cstr (pk, self->sampler);
    if (self->has_seed)
        rc |= vdgx_mp_pack_key (pk, "seed") | msgpack_pack_uint64 (pk, self->seed);
    if (self->precision [0])
        rc |= vdgx_mp_pack_key (pk, "precision") | vdgx_mp_pack_cstr (pk, self->precision);
    if (self->priority != VDGX_PRIORITY_NORMAL)
        rc |= vdgx_mp_pack_key (pk, "priority") | vdgx_mp_pack_cstr (pk, vdgx_priority_name (self->priority));
    if (self->idempotency_key [0])
        rc |= vdgx_mp_pack_key (pk, "idempotency_key") | vdgx_mp_pack_cstr (pk, self->idempotency_key);
    if (self->no_cache)
        rc |= vdgx_mp_pack_key (pk, "no_cache") | msgpack_pack_true (pk);
    if (self->image)
        rc |= vdgx_mp_pack_key (pk, "image") | msgpack_pack_bin (pk, self->image_size)
            | msgpack_pack_bin_body (pk, self->image, self->image_size);
    if (self->last_image)
        rc |= vdgx_mp_pack_key (pk, "last_image") | msgpack_pack_bin (pk, self->last_image_size)
            | msgpack_pack_bin_body (pk, self->last_image, self->last_image_size);
    return rc? -1: 0;
}

int
vdgx_genreq_validate (const vdgx_genreq_t *self, vdgx_error_t *err)
{
    //  One source of truth: what the decoder accepts is valid.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    int rc = vdgx_genreq_pack (self, &pk);
    if (rc == 0) {
        vdgx_genreq_t check;
        vdgx_genreq_init (&check);
        rc = vdgx_genreq_decode (&check, sb.data, sb.size, err);
        vdgx_genreq_clear (&check);
    }
    else
        vdgx_mp_error (err, "", "cannot encode the request");
    msgpack_sbuffer_destroy (&sb);
    return rc;
}

//  Appends text quoted JSON-style so that canonical strings cannot collide.
static void
s_quote (char **buf, size_t *len, size_t *cap, const char *text)
{
    size_t need = *len + 2 + (text? 6 * strlen (text): 1) + 1;
    if (need > *cap) {
        size_t cap2 = need * 2;
        char *grown = realloc (*buf, cap2);
        if (!grown) {
            free (*buf);
            *buf = NULL;
            return;
        }
        *buf = grown;
        *cap = cap2;
    }
    char *out = *buf;
    if (!text) {
        out [(*len)++] = '-';
        out [*len] = 0;
        return;
    }
    out [(*len)++] = '"';
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (*p == '"' || *p == '\\') {
            out [(*len)++] = '\\';
            out [(*len)++] = (char) *p;
        }
        else if (*p < 0x20)
            *len += (size_t) sprintf (out + *len, "\\u%04x", *p);
        else
            out [(*len)++] = (char) *p;
    }
    out [(*len)++] = '"';
    out [*len] = 0;
}

char *
vdgx_genreq_canonical (const vdgx_genreq_t *self)
{
    assert (self);
    size_t cap = 1024, len = 0;
    char *buf = malloc (cap);
    if (!buf)
        return NULL;
    char nums [700];
    //  Every parameter that changes the pixels, in a fixed order; '-' = model default.
    //  Not included: priority, idempotency_key, no_cache (they do not change the output).
    len = (size_t) snprintf (buf, cap, "vdgx.genreq.v1 model=%s prompt=", self->model);
    s_quote (&buf, &len, &cap, self->prompt);
    if (!buf)
        return NULL;
    const char *neg_label = " negative_prompt=";
    if (len + strlen (neg_label) + 1 > cap) {
        char *grown = realloc (buf, cap *= 2);
        if (!grown) { free (buf); return NULL; }
        buf = grown;
    }
    strcpy (buf + len, neg_label);
    len += strlen (neg_label);
    s_quote (&buf, &len, &cap, self->negative_prompt);
    if (!buf)
        return NULL;
    char width [16] = "-", height [16] = "-", frames [16] = "-", fps [16] = "-", steps [16] = "-";
    char seconds [32] = "-", guidance [32] = "-", shift [32] = "-", seed [24] = "-";
    if (self->width)  snprintf (width, sizeof width, "%u", self->width);
    if (self->height) snprintf (height, sizeof height, "%u", self->height);
    if (self->frames) snprintf (frames, sizeof frames, "%u", self->frames);
    if (self->fps)    snprintf (fps, sizeof fps, "%u", self->fps);
    if (self->steps)  snprintf (steps, sizeof steps, "%u", self->steps);
    if (self->has_seconds)  snprintf (seconds, sizeof seconds, "%.17g", self->seconds);
    if (self->has_guidance) snprintf (guidance, sizeof guidance, "%.17g", self->guidance);
    if (self->has_shift)    snprintf (shift, sizeof shift, "%.17g", self->shift);
    if (self->has_seed)     snprintf (seed, sizeof seed, "%" PRIu64, self->seed);
    //  Images by their digest, only when present (keys of text-to-video jobs stay as they were).
    char image [96] = "", last_image [96] = "";
    char hex [VDGX_SHA256_HEX_SIZE];
    if (self->image) {
        vdgx_sha256_hex (self->image, self->image_size, hex);
        snprintf (image, sizeof image, " image=sha256:%s", hex);
    }
    if (self->last_image) {
        vdgx_sha256_hex (self->last_image, self->last_image_size, hex);
        snprintf (last_image, sizeof last_image, " last_image=sha256:%s", hex);
    }
    int n = snprintf (nums, sizeof nums,
                      " width=%s height=%s frames=%s seconds=%s fps=%s steps=%s guidance=%s"
                      " shift=%s sampler=%s seed=%s precision=%s%s%s",
                      width, height, frames, seconds, fps, steps, guidance, shift,
                      self->sampler [0]? self->sampler: "-", seed,
                      self->precision [0]? self->precision: "-", image, last_image);
    if (len + (size_t) n + 1 > cap) {
        char *grown = realloc (buf, len + (size_t) n + 1);
        if (!grown) { free (buf); return NULL; }
        buf = grown;
    }
    memcpy (buf + len, nums, (size_t) n + 1);
    return buf;
}

//  --------------------------------------------------------------------------
//  Selftest

#undef NDEBUG
#include <assert.h>

static int
s_decode_packed (vdgx_genreq_t *out, const vdgx_genreq_t *in, vdgx_error_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert (vdgx_genreq_pack (in, &pk) == 0);
    int rc = vdgx_genreq_decode (out, sb.data, sb.size, err);
    msgpack_sbuffer_destroy (&sb);
    return rc;
}

void
vdgx_genreq_test (bool verbose)
{
    (void) verbose;
    vdgx_genreq_t req, back;
    vdgx_error_t err;
    vdgx_genreq_init (&req);
    vdgx_genreq_init (&back);
    strcpy (req.model, "wan21-1.3b");
    req.prompt = strdup ("a cat surfing a wave, \"cinematic\"");
    req.negative_prompt = strdup ("");
    req.width = 832;
    req.height = 480;
    req.has_seconds = true;
    req.seconds = 5.0;
    req.fps = 16;
    req.steps = 50;
    req.has_guidance = true;
    req.guidance = 5.0;
    req.has_shift = true;
    req.shift = 3.0;
    strcpy (req.sampler, "dpm++");
    req.has_seed = true;
    req.seed = INT64_MAX;
    strcpy (req.precision, "fp8");
    req.priority = VDGX_PRIORITY_LOW;
    strcpy (req.idempotency_key, "k-123");
    req.no_cache = true;
    assert (vdgx_genreq_validate (&req, &err) == 0);
    assert (s_decode_packed (&back, &req, &err) == 0);
    char *a = vdgx_genreq_canonical (&req);
    char *b = vdgx_genreq_canonical (&back);
    assert (a && b && strcmp (a, b) == 0);
    assert (strstr (a, "prompt=\"a cat surfing a wave, \\\"cinematic\\\"\""));
    assert (strstr (a, "seed=9223372036854775807"));
    assert (!strstr (a, "k-123"));          //  idempotency key is not a generation parameter
    assert (back.priority == VDGX_PRIORITY_LOW && back.no_cache && back.seed == INT64_MAX);
    assert (strcmp (back.negative_prompt, "") == 0);
    free (b);

    //  Copy is deep and compares equal.
    vdgx_genreq_t copy;
    vdgx_genreq_init (&copy);
    assert (vdgx_genreq_copy (&copy, &req) == 0);
    assert (copy.prompt != req.prompt);
    b = vdgx_genreq_canonical (&copy);
    assert (strcmp (a, b) == 0);
    free (b);
    vdgx_genreq_clear (&copy);

    //  Canonical text differs for a different seed and for an absent vs present negative.
    back.seed = 1;
    b = vdgx_genreq_canonical (&back);
    assert (strcmp (a, b) != 0);
    free (b);
    free (a);

    //  Minimal request: only model and prompt are packed.
    vdgx_genreq_clear (&req);
    strcpy (req.model, "wan21-tiny");
    req.prompt = strdup ("x");
    assert (s_decode_packed (&back, &req, &err) == 0);
    assert (back.negative_prompt == NULL && !back.has_seed && back.priority == VDGX_PRIORITY_NORMAL);

    //  Cross-field rule and validation errors name the field.
    req.frames = 33;
    req.has_seconds = true;
    req.seconds = 2;
    assert (vdgx_genreq_validate (&req, &err) == -1 && strcmp (err.field, "seconds") == 0);
    req.has_seconds = false;
    req.width = 8;
    assert (vdgx_genreq_validate (&req, &err) == -1 && strcmp (err.field, "width") == 0);
    req.width = 0;
    strcpy (req.model, "Wan");
    assert (vdgx_genreq_validate (&req, &err) == -1 && strcmp (err.field, "model") == 0);
    assert (strcmp (err.code, "bad_request") == 0);
    //  A failed decode leaves the output cleared.
    assert (s_decode_packed (&back, &req, &err) == -1);
    assert (back.prompt == NULL && back.model [0] == 0);

    //  Images: bin fields round-trip byte for byte; the canonical text holds their digest.
    static const uint8_t png [] = {         //  a 1x1 RGB PNG
        0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
        0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0x90, 0x77, 0x53, 0xde,
        0, 0, 0, 12, 'I', 'D', 'A', 'T', 0x08, 0xd7, 0x63, 0xf8, 0xcf, 0xc0, 0, 0, 3, 1, 1, 0,
        0x18, 0xdd, 0x8d, 0xb0, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82 };
    vdgx_genreq_clear (&req);
    strcpy (req.model, "wan21-i2v-tiny");
    req.prompt = strdup ("the cat starts to dance");
    assert (vdgx_genreq_set_image (&req, "image", png, sizeof png) == 0);
    assert (vdgx_genreq_set_image (&req, "last_image", png, sizeof png) == 0);
    req.last_image [30] ^= 1;                           //  another CRC byte: not the same file
    assert (vdgx_genreq_validate (&req, &err) == 0);
    assert (s_decode_packed (&back, &req, &err) == 0);
    assert (back.image_size == sizeof png && memcmp (back.image, png, sizeof png) == 0);
    assert (back.last_image_size == sizeof png && back.last_image [30] == (png [30] ^ 1));
    assert (vdgx_genreq_copy (&copy, &back) == 0);
    assert (copy.image != back.image && memcmp (copy.image, png, sizeof png) == 0);
    a = vdgx_genreq_canonical (&req);
    b = vdgx_genreq_canonical (&copy);
    assert (strcmp (a, b) == 0 && strstr (a, " image=sha256:") && strstr (a, " last_image=sha256:"));
    free (b);
    vdgx_genreq_drop_images (&copy);
    assert (!copy.image && !copy.last_image && copy.image_size == 0);
    b = vdgx_genreq_canonical (&copy);
    assert (strcmp (a, b) != 0 && !strstr (b, "image="));
    free (b);
    free (a);
    vdgx_genreq_clear (&copy);
    //  Not an image, empty, truncated, too large, last_image alone: errors name the field.
    req.last_image [0] = 'G';
    assert (vdgx_genreq_validate (&req, &err) == -1 && strcmp (err.field, "last_image") == 0);
    assert (strstr (err.message, "unsupported image format"));
    assert (vdgx_genreq_set_image (&req, "last_image", NULL, 0) == 0 && !req.last_image);
    assert (vdgx_genreq_set_image (&req, "image", png, sizeof png - 12) == 0);
    assert (vdgx_genreq_validate (&req, &err) == -1 && strcmp (err.field, "image") == 0);
    assert (strstr (err.message, "truncated PNG"));
    uint8_t *big = (uint8_t *) calloc (1, VDGX_IMAGE_BYTES_MAX + 1);
    memcpy (big, png, sizeof png);
    free (req.image);
    req.image = big;
    req.image_size = VDGX_IMAGE_BYTES_MAX + 1;
    assert (vdgx_genreq_validate (&req, &err) == -1 && strcmp (err.field, "image") == 0);
    assert (strstr (err.message, "byte cap"));
    assert (vdgx_genreq_set_image (&req, "image", NULL, 0) == 0);
    assert (vdgx_genreq_set_image (&req, "last_image", png, sizeof png) == 0);
    assert (vdgx_genreq_validate (&req, &err) == -1 && strcmp (err.field, "last_image") == 0);
    assert (strstr (err.message, "needs image"));
    assert (vdgx_genreq_set_image (&req, "thumbnail", png, sizeof png) == -1);
    {   //  An empty bin is refused by the decoder.
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 3);
        vdgx_mp_pack_key (&pk, "model"), vdgx_mp_pack_cstr (&pk, "wan21-i2v-tiny");
        vdgx_mp_pack_key (&pk, "prompt"), vdgx_mp_pack_cstr (&pk, "x");
        vdgx_mp_pack_key (&pk, "image"), msgpack_pack_bin (&pk, 0);
        assert (vdgx_genreq_decode (&back, sb.data, sb.size, &err) == -1);
        assert (strcmp (err.field, "image") == 0 && strstr (err.message, "empty image"));
        msgpack_sbuffer_destroy (&sb);
    }

    vdgx_priority_t p;
    assert (vdgx_priority_parse ("high", &p) == 0 && p == VDGX_PRIORITY_HIGH);
    assert (vdgx_priority_parse ("urgent", &p) == -1);
    assert (vdgx_model_name_valid ("wan21-1.3b") && !vdgx_model_name_valid (""));
    assert (!vdgx_model_name_valid ("a/b"));
    vdgx_genreq_clear (&req);
    vdgx_genreq_clear (&back);
}
