/*  vdgx_image.c - PNG, JPEG and WebP from untrusted memory into packed RGB8 (vdgx_image.h). */
#include "vdgx_image.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>

struct _vdgx_image_t {
    uint32_t width, height;
    const char *format;
    uint8_t *pixels;
};

typedef struct {
    size_t max_bytes;
    uint32_t max_width, max_height;
    uint64_t max_pixels;
} s_limits_t;

static s_limits_t
s_limits (const vdgx_image_limits_t *limits)
{
    s_limits_t l = { VDGX_IMAGE_BYTES_MAX, VDGX_IMAGE_SIDE_MAX, VDGX_IMAGE_SIDE_MAX,
                     VDGX_IMAGE_PIXELS_MAX };
    if (limits) {
        if (limits->max_bytes)  l.max_bytes = limits->max_bytes;
        if (limits->max_width)  l.max_width = limits->max_width;
        if (limits->max_height) l.max_height = limits->max_height;
        if (limits->max_pixels) l.max_pixels = limits->max_pixels;
    }
    return l;
}

static int
s_fail (char *err, size_t errlen, const char *format, ...)
{
    if (err && errlen) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, errlen, format, args);
        va_end (args);
    }
    return -1;
}

static uint32_t s_be16 (const uint8_t *p) { return (uint32_t) p [0] << 8 | p [1]; }
static uint32_t s_be32 (const uint8_t *p) { return s_be16 (p) << 16 | s_be16 (p + 2); }
static uint32_t s_le16 (const uint8_t *p) { return (uint32_t) p [1] << 8 | p [0]; }
static uint32_t s_le24 (const uint8_t *p) { return (uint32_t) p [2] << 16 | s_le16 (p); }
static uint32_t s_le32 (const uint8_t *p) { return (uint32_t) p [3] << 24 | s_le24 (p); }

static bool
s_chunk_name_valid (const uint8_t *p)
{
    for (int i = 0; i < 4; i++)
        if (!((p [i] >= 'A' && p [i] <= 'Z') || (p [i] >= 'a' && p [i] <= 'z')))
            return false;
    return true;
}

//  PNG: the signature, IHDR first, then chunks up to IEND, each within the data.
static int
s_probe_png (const uint8_t *d, size_t size, uint32_t *w, uint32_t *h, char *err, size_t errlen)
{
    size_t pos = 8;
    bool first = true;
    while (true) {
        if (size - pos < 12)
            return s_fail (err, errlen, "truncated PNG image (it ends before the IEND chunk)");
        uint32_t len = s_be32 (d + pos);
        const uint8_t *type = d + pos + 4;
        if (len > 0x7fffffffu || !s_chunk_name_valid (type))
            return s_fail (err, errlen, "corrupt PNG image (bad chunk at byte %zu)", pos);
        if (len > size - pos - 12)
            return s_fail (err, errlen, "truncated PNG image (the %.4s chunk at byte %zu "
                           "runs past the end)", (const char *) type, pos);
        if (first) {
            if (memcmp (type, "IHDR", 4) || len != 13)
                return s_fail (err, errlen, "corrupt PNG image (it does not start with IHDR)");
            *w = s_be32 (d + pos + 8);
            *h = s_be32 (d + pos + 12);
            if (*w == 0 || *h == 0)
                return s_fail (err, errlen, "corrupt PNG image (size %ux%u)", *w, *h);
            first = false;
        }
        pos += 12 + (size_t) len;
        if (memcmp (type, "IEND", 4) == 0)
            return 0;
    }
}

//  JPEG: SOI, marker segments, entropy-coded scans (0xFF is stuffed as FF 00 there; FF D0..D7
//  are restart markers) up to EOI. The size is the SOFn segment's.
static int
s_probe_jpeg (const uint8_t *d, size_t size, uint32_t *w, uint32_t *h, char *err, size_t errlen)
{
    size_t pos = 2;
    bool have_sof = false;
    while (true) {
        if (pos >= size || d [pos] != 0xFF) {
            if (pos >= size)
                return s_fail (err, errlen, "truncated JPEG image (it ends before the EOI marker)");
            return s_fail (err, errlen, "corrupt JPEG image (no marker at byte %zu)", pos);
        }
        while (pos < size && d [pos] == 0xFF)
            pos++;                                  //  fill bytes
        if (pos >= size)
            return s_fail (err, errlen, "truncated JPEG image (it ends before the EOI marker)");
        uint8_t marker = d [pos++];
        if (marker == 0xD9) {
            if (!have_sof)
                return s_fail (err, errlen, "corrupt JPEG image (no frame header)");
            return 0;
        }
        if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01)
            continue;                               //  standalone markers
        if (marker == 0x00 || marker == 0xD8)
            return s_fail (err, errlen, "corrupt JPEG image (marker %02X at byte %zu)", marker, pos - 1);
        if (size - pos < 2)
            return s_fail (err, errlen, "truncated JPEG image (it ends before the EOI marker)");
        size_t len = s_be16 (d + pos);
        if (len < 2)
            return s_fail (err, errlen, "corrupt JPEG image (segment length %zu)", len);
        if (len > size - pos)
            return s_fail (err, errlen, "truncated JPEG image (the segment at byte %zu runs "
                           "past the end)", pos - 2);
        if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
            if (len < 8)
                return s_fail (err, errlen, "corrupt JPEG image (short frame header)");
            if (have_sof)
                return s_fail (err, errlen, "unsupported JPEG image (more than one frame)");
            *h = s_be16 (d + pos + 3);
            *w = s_be16 (d + pos + 5);
            if (*w == 0 || *h == 0)
                return s_fail (err, errlen, "unsupported JPEG image (size %ux%u)", *w, *h);
            if (marker == 0xC3 || marker == 0xC7 || marker == 0xCB || marker == 0xCF)
                return s_fail (err, errlen, "unsupported JPEG image (lossless JPEG)");
            have_sof = true;
        }
        pos += len;
        if (marker == 0xDA) {
            if (!have_sof)
                return s_fail (err, errlen, "corrupt JPEG image (a scan before the frame header)");
            //  Entropy-coded data up to the next marker that is not a stuffed byte or RSTn.
            while (true) {
                if (size - pos < 2)
                    return s_fail (err, errlen, "truncated JPEG image (it ends inside a scan)");
                if (d [pos] == 0xFF && d [pos + 1] != 0x00 && d [pos + 1] != 0xFF
                &&  !(d [pos + 1] >= 0xD0 && d [pos + 1] <= 0xD7))
                    break;
                pos++;
            }
        }
    }
}

//  WebP: RIFF <size> WEBP, then a VP8, VP8L or VP8X chunk.
static int
s_probe_webp (const uint8_t *d, size_t size, uint32_t *w, uint32_t *h, char *err, size_t errlen)
{
    uint32_t riff = s_le32 (d + 4);
    if (riff < 4 + 8 || (riff & 1))
        return s_fail (err, errlen, "corrupt WebP image (RIFF size %u)", riff);
    if ((size_t) riff > size - 8)
        return s_fail (err, errlen, "truncated WebP image (%zu of %zu bytes)", size,
                       (size_t) riff + 8);
    size_t end = (size_t) riff + 8;
    const uint8_t *chunk = d + 12;
    uint32_t clen = s_le32 (chunk + 4);
    const uint8_t *p = chunk + 8;
    if (clen > end - 20)
        return s_fail (err, errlen, "truncated WebP image (the %.4s chunk runs past the end)",
                       (const char *) chunk);
    if (memcmp (chunk, "VP8 ", 4) == 0) {
        if (clen < 10 || p [3] != 0x9d || p [4] != 0x01 || p [5] != 0x2a)
            return s_fail (err, errlen, "corrupt WebP image (bad VP8 header)");
        *w = s_le16 (p + 6) & 0x3fff;
        *h = s_le16 (p + 8) & 0x3fff;
    }
    else
    if (memcmp (chunk, "VP8L", 4) == 0) {
        if (clen < 5 || p [0] != 0x2f)
            return s_fail (err, errlen, "corrupt WebP image (bad VP8L header)");
        uint32_t bits = s_le32 (p + 1);
        *w = (bits & 0x3fff) + 1;
        *h = ((bits >> 14) & 0x3fff) + 1;
    }
    else
    if (memcmp (chunk, "VP8X", 4) == 0) {
        if (clen < 10)
            return s_fail (err, errlen, "corrupt WebP image (bad VP8X header)");
        if (p [0] & 0x02)
            return s_fail (err, errlen, "unsupported WebP image (animated)");
        *w = s_le24 (p + 4) + 1;
        *h = s_le24 (p + 7) + 1;
    }
    else
        return s_fail (err, errlen, "corrupt WebP image (unknown chunk %.4s)",
                       s_chunk_name_valid (chunk)? (const char *) chunk: "????");
    if (*w == 0 || *h == 0)
        return s_fail (err, errlen, "corrupt WebP image (size %ux%u)", *w, *h);
    return 0;
}

int
vdgx_image_probe (const void *data, size_t size, const vdgx_image_limits_t *limits,
                  const char **format_p, uint32_t *width_p, uint32_t *height_p,
                  char *err, size_t errlen)
{
    s_limits_t l = s_limits (limits);
    const uint8_t *d = (const uint8_t *) data;
    if (!d || size == 0)
        return s_fail (err, errlen, "empty image");
    if (size > l.max_bytes)
        return s_fail (err, errlen, "image of %zu bytes is too large (the limit is %zu bytes)",
                       size, l.max_bytes);
    const char *format = NULL;
    uint32_t w = 0, h = 0;
    int rc;
    if (size >= 8 && memcmp (d, "\x89PNG\r\n\x1a\n", 8) == 0) {
        format = "png";
        rc = s_probe_png (d, size, &w, &h, err, errlen);
    }
    else
    if (size >= 3 && d [0] == 0xFF && d [1] == 0xD8 && d [2] == 0xFF) {
        format = "jpeg";
        rc = s_probe_jpeg (d, size, &w, &h, err, errlen);
    }
    else
    if (size >= 12 && memcmp (d, "RIFF", 4) == 0 && memcmp (d + 8, "WEBP", 4) == 0) {
        format = "webp";
        rc = size < 20? s_fail (err, errlen, "truncated WebP image (%zu bytes)", size)
                      : s_probe_webp (d, size, &w, &h, err, errlen);
    }
    else
    if ((size >= 4 && memcmp (d, "\x89PNG", 4) == 0)
    ||  (size >= 2 && d [0] == 0xFF && d [1] == 0xD8)
    ||  (size >= 4 && memcmp (d, "RIFF", 4) == 0))
        return s_fail (err, errlen, "truncated or corrupt image header (%zu bytes)", size);
    else
        return s_fail (err, errlen, "unsupported image format (PNG, JPEG or WebP are accepted)");
    if (rc)
        return -1;
    if (w > l.max_width || h > l.max_height || (uint64_t) w * h > l.max_pixels)
        return s_fail (err, errlen, "image of %ux%u pixels is too large (the limit is %ux%u "
                       "and %llu pixels)", w, h, l.max_width, l.max_height,
                       (unsigned long long) l.max_pixels);
    if (format_p)
        *format_p = format;
    if (width_p)
        *width_p = w;
    if (height_p)
        *height_p = h;
    return 0;
}

static const char *
s_av_error (int rc, char *buf, size_t size)
{
    if (av_strerror (rc, buf, size) < 0)
        snprintf (buf, size, "libavcodec error %d", rc);
    return buf;
}

//  The decoded frame as packed RGB8 (JPEG's full-range YUV mapped to its range, not the
//  deprecated yuvj formats; alpha dropped).
static int
s_to_rgb (const AVFrame *frame, uint8_t *out, char *err, size_t errlen)
{
    enum AVPixelFormat fmt = (enum AVPixelFormat) frame->format;
    int full = frame->color_range == AVCOL_RANGE_JPEG;
    switch (fmt) {
        case AV_PIX_FMT_YUVJ420P: fmt = AV_PIX_FMT_YUV420P; full = 1; break;
        case AV_PIX_FMT_YUVJ422P: fmt = AV_PIX_FMT_YUV422P; full = 1; break;
        case AV_PIX_FMT_YUVJ444P: fmt = AV_PIX_FMT_YUV444P; full = 1; break;
        case AV_PIX_FMT_YUVJ440P: fmt = AV_PIX_FMT_YUV440P; full = 1; break;
        case AV_PIX_FMT_YUVJ411P: fmt = AV_PIX_FMT_YUV411P; full = 1; break;
        default: break;
    }
    struct SwsContext *sws = sws_getContext (frame->width, frame->height, fmt,
                                             frame->width, frame->height, AV_PIX_FMT_RGB24,
                                             SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT,
                                             NULL, NULL, NULL);
    if (!sws)
        return s_fail (err, errlen, "unsupported image pixel format %s",
                       av_get_pix_fmt_name (fmt)? av_get_pix_fmt_name (fmt): "?");
    const int *coefs = sws_getCoefficients (SWS_CS_ITU601);
    sws_setColorspaceDetails (sws, coefs, full, coefs, 1, 0, 1 << 16, 1 << 16);
    uint8_t *dst [4] = { out, NULL, NULL, NULL };
    int stride [4] = { frame->width * 3, 0, 0, 0 };
    int rows = sws_scale (sws, (const uint8_t *const *) frame->data, frame->linesize, 0,
                          frame->height, dst, stride);
    sws_freeContext (sws);
    if (rows != frame->height)
        return s_fail (err, errlen, "cannot convert the image to RGB");
    return 0;
}

vdgx_image_t *
vdgx_image_decode (const void *data, size_t size, const vdgx_image_limits_t *limits,
                   char *err, size_t errlen)
{
    const char *format;
    uint32_t w, h;
    if (vdgx_image_probe (data, size, limits, &format, &w, &h, err, errlen))
        return NULL;
    enum AVCodecID id = format [0] == 'p'? AV_CODEC_ID_PNG
                      : format [0] == 'j'? AV_CODEC_ID_MJPEG: AV_CODEC_ID_WEBP;
    const AVCodec *codec = avcodec_find_decoder (id);
    AVCodecContext *ctx = codec? avcodec_alloc_context3 (codec): NULL;
    AVPacket *pkt = av_packet_alloc ();
    AVFrame *frame = av_frame_alloc ();
    vdgx_image_t *self = NULL;
    char averr [AV_ERROR_MAX_STRING_SIZE];
    if (!ctx || !pkt || !frame) {
        s_fail (err, errlen, codec? "out of memory": "libavcodec has no %s decoder", format);
        goto done;
    }
    //  The declared size passed the limits; the decoder may not allocate beyond it (plus its
    //  alignment padding), whatever the data says later.
    ctx->max_pixels = (int64_t) (w + 128) * (h + 128);
    ctx->err_recognition = AV_EF_EXPLODE | AV_EF_CRCCHECK;
    ctx->thread_count = 1;
    //  Decoder complaints about hostile input are our error message, not log lines.
    ctx->log_level_offset = AV_LOG_DEBUG - AV_LOG_ERROR;
    int rc = avcodec_open2 (ctx, codec, NULL);
    if (rc < 0) {
        s_fail (err, errlen, "cannot open the %s decoder: %s", format,
                s_av_error (rc, averr, sizeof averr));
        goto done;
    }
    if (size > INT32_MAX || av_new_packet (pkt, (int) size) < 0) {
        s_fail (err, errlen, "out of memory");
        goto done;
    }
    memcpy (pkt->data, data, size);
    rc = avcodec_send_packet (ctx, pkt);
    if (rc >= 0)
        rc = avcodec_send_packet (ctx, NULL);
    if (rc >= 0 || rc == AVERROR_EOF)
        rc = avcodec_receive_frame (ctx, frame);
    if (rc < 0) {
        s_fail (err, errlen, "corrupt %s image (%s)",
                format [0] == 'p'? "PNG": format [0] == 'j'? "JPEG": "WebP",
                s_av_error (rc, averr, sizeof averr));
        goto done;
    }
    if ((uint32_t) frame->width != w || (uint32_t) frame->height != h) {
        s_fail (err, errlen, "corrupt %s image (it declares %ux%u and decodes to %dx%d)",
                format, w, h, frame->width, frame->height);
        goto done;
    }
    self = (vdgx_image_t *) calloc (1, sizeof *self);
    if (self)
        self->pixels = (uint8_t *) malloc ((size_t) w * h * 3);
    if (!self || !self->pixels) {
        s_fail (err, errlen, "out of memory for a %ux%u image", w, h);
        vdgx_image_destroy (&self);
        goto done;
    }
    self->width = w;
    self->height = h;
    self->format = format;
    if (s_to_rgb (frame, self->pixels, err, errlen))
        vdgx_image_destroy (&self);
done:
    av_frame_free (&frame);
    av_packet_free (&pkt);
    avcodec_free_context (&ctx);
    return self;
}

void
vdgx_image_destroy (vdgx_image_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->pixels);
        free (*self_p);
        *self_p = NULL;
    }
}

uint32_t
vdgx_image_width (const vdgx_image_t *self)
{
    assert (self);
    return self->width;
}

uint32_t
vdgx_image_height (const vdgx_image_t *self)
{
    assert (self);
    return self->height;
}

const char *
vdgx_image_format (const vdgx_image_t *self)
{
    assert (self);
    return self->format;
}

const uint8_t *
vdgx_image_pixels (const vdgx_image_t *self)
{
    assert (self);
    return self->pixels;
}

//  --------------------------------------------------------------------------
//  Selftest: real files made by libavcodec's encoders, then hostile variants of them.

#undef NDEBUG
#include <assert.h>

//  A smooth, non-constant test picture (JPEG round trips stay close on it).
static void
s_picture (uint8_t *rgb, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t) y * w + x) * 3;
            p [0] = (uint8_t) (20 + 200 * x / w);
            p [1] = (uint8_t) (30 + 180 * y / h);
            p [2] = (uint8_t) (60 + 100 * (x + y) / (w + h));
        }
}

//  Encodes rgb (w x h) with the named encoder in pix_fmt; returns malloc'ed bytes or NULL
//  when the encoder is missing.
static uint8_t *
s_encode (const char *name, enum AVPixelFormat pix_fmt, const uint8_t *rgb, int w, int h,
          const char *opt, const char *value, size_t *size_p)
{
    const AVCodec *codec = avcodec_find_encoder_by_name (name);
    if (!codec)
        return NULL;
    AVCodecContext *c = avcodec_alloc_context3 (codec);
    assert (c);
    c->width = w;
    c->height = h;
    c->pix_fmt = pix_fmt;
    c->time_base = (AVRational) { 1, 25 };
    c->color_range = AVCOL_RANGE_JPEG;
    if (strcmp (name, "mjpeg") == 0) {
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * 2;
    }
    AVDictionary *d = NULL;
    if (opt)
        av_dict_set (&d, opt, value, 0);
    assert (avcodec_open2 (c, codec, &d) == 0);
    av_dict_free (&d);
    AVFrame *f = av_frame_alloc ();
    f->width = w;
    f->height = h;
    f->format = pix_fmt;
    f->color_range = AVCOL_RANGE_JPEG;
    assert (av_frame_get_buffer (f, 0) == 0);
    bool jrange = pix_fmt == AV_PIX_FMT_YUVJ420P || pix_fmt == AV_PIX_FMT_YUVJ444P;
    enum AVPixelFormat sws_fmt = pix_fmt == AV_PIX_FMT_YUVJ420P? AV_PIX_FMT_YUV420P
                               : pix_fmt == AV_PIX_FMT_YUVJ444P? AV_PIX_FMT_YUV444P: pix_fmt;
    struct SwsContext *sws = sws_getContext (w, h, AV_PIX_FMT_RGB24, w, h, sws_fmt,
                                             SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP,
                                             NULL, NULL, NULL);
    assert (sws);
    const int *coefs = sws_getCoefficients (SWS_CS_ITU601);
    sws_setColorspaceDetails (sws, coefs, 1, coefs, jrange, 0, 1 << 16, 1 << 16);
    const uint8_t *src [4] = { rgb, NULL, NULL, NULL };
    int stride [4] = { w * 3, 0, 0, 0 };
    sws_scale (sws, src, stride, 0, h, f->data, f->linesize);
    sws_freeContext (sws);
    if (pix_fmt == AV_PIX_FMT_RGBA)         //  a varying alpha plane that must be dropped
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                f->data [0] [y * f->linesize [0] + x * 4 + 3] = (uint8_t) (x * 255 / w);
    AVPacket *pkt = av_packet_alloc ();
    assert (avcodec_send_frame (c, f) == 0);
    assert (avcodec_send_frame (c, NULL) == 0);
    assert (avcodec_receive_packet (c, pkt) == 0);
    uint8_t *bytes = (uint8_t *) malloc ((size_t) pkt->size);
    memcpy (bytes, pkt->data, (size_t) pkt->size);
    *size_p = (size_t) pkt->size;
    av_packet_free (&pkt);
    av_frame_free (&f);
    avcodec_free_context (&c);
    return bytes;
}

//  Decodes and compares with the source: the largest channel difference.
static int
s_max_diff (const uint8_t *file, size_t size, const uint8_t *rgb, int w, int h,
            const char *format)
{
    char err [256];
    vdgx_image_t *img = vdgx_image_decode (file, size, NULL, err, sizeof err);
    if (!img)
        fprintf (stderr, "vdgx_image selftest: %s: %s\n", format, err);
    assert (img);
    assert (vdgx_image_width (img) == (uint32_t) w && vdgx_image_height (img) == (uint32_t) h);
    assert (strcmp (vdgx_image_format (img), format) == 0);
    int worst = 0;
    const uint8_t *p = vdgx_image_pixels (img);
    for (size_t i = 0; i < (size_t) w * h * 3; i++) {
        int diff = abs ((int) p [i] - (int) rgb [i]);
        if (diff > worst)
            worst = diff;
    }
    vdgx_image_destroy (&img);
    assert (img == NULL);
    return worst;
}

static void
s_expect_error (const void *data, size_t size, const vdgx_image_limits_t *limits,
                const char *needle, bool verbose)
{
    char err [256] = "";
    vdgx_image_t *img = vdgx_image_decode (data, size, limits, err, sizeof err);
    if (img || !strstr (err, needle))
        fprintf (stderr, "vdgx_image selftest: expected an error with '%s', got '%s'\n",
                 needle, img? "an image": err);
    assert (!img && strstr (err, needle));
    assert (strchr (err, '\n') == NULL);
    if (verbose)
        printf ("\n   refused: %s", err);
}

void
vdgx_image_test (bool verbose)
{
    const int w = 67, h = 45;                       //  odd sizes: chroma subsampling edges
    uint8_t *rgb = (uint8_t *) malloc ((size_t) w * h * 3);
    s_picture (rgb, w, h);
    size_t png_size, jpeg_size, webp_size = 0, rgba_size, lossy_size = 0;
    uint8_t *png = s_encode ("png", AV_PIX_FMT_RGB24, rgb, w, h, NULL, NULL, &png_size);
    uint8_t *rgba = s_encode ("png", AV_PIX_FMT_RGBA, rgb, w, h, NULL, NULL, &rgba_size);
    uint8_t *jpeg = s_encode ("mjpeg", AV_PIX_FMT_YUVJ420P, rgb, w, h, NULL, NULL, &jpeg_size);
    uint8_t *webp = s_encode ("libwebp", AV_PIX_FMT_BGRA, rgb, w, h, "lossless", "1", &webp_size);
    uint8_t *lossy = s_encode ("libwebp", AV_PIX_FMT_YUV420P, rgb, w, h, "quality", "95",
                               &lossy_size);
    assert (png && rgba && jpeg);

    //  Round trips: PNG and lossless WebP exact, JPEG and lossy WebP close.
    assert (s_max_diff (png, png_size, rgb, w, h, "png") == 0);
    assert (s_max_diff (rgba, rgba_size, rgb, w, h, "png") == 0);
    int jpeg_diff = s_max_diff (jpeg, jpeg_size, rgb, w, h, "jpeg");
    assert (jpeg_diff > 0 && jpeg_diff <= 8);
    if (webp) {
        assert (s_max_diff (webp, webp_size, rgb, w, h, "webp") == 0);
        int lossy_diff = s_max_diff (lossy, lossy_size, rgb, w, h, "webp");
        assert (lossy_diff <= 12);
        if (verbose)
            printf ("\n   jpeg max diff %d, lossy webp max diff %d", jpeg_diff, lossy_diff);
    }
    else
        printf ("(libavcodec has no libwebp encoder: WebP round trip skipped) ");
    const char *format;
    uint32_t pw, ph;
    assert (vdgx_image_probe (jpeg, jpeg_size, NULL, &format, &pw, &ph, NULL, 0) == 0);
    assert (strcmp (format, "jpeg") == 0 && pw == (uint32_t) w && ph == (uint32_t) h);

    //  Empty, unsupported, truncated and corrupt input.
    s_expect_error (NULL, 0, NULL, "empty image", verbose);
    s_expect_error (png, 0, NULL, "empty image", verbose);
    s_expect_error ("GIF89a\x01\x00\x01\x00", 10, NULL, "unsupported image format", verbose);
    s_expect_error ("hello, world", 12, NULL, "unsupported image format", verbose);
    s_expect_error (png, 5, NULL, "truncated or corrupt image header", verbose);
    s_expect_error (png, png_size / 2, NULL, "truncated PNG", verbose);
    s_expect_error (png, png_size - 1, NULL, "truncated PNG", verbose);
    s_expect_error (jpeg, jpeg_size / 2, NULL, "truncated JPEG", verbose);
    s_expect_error (jpeg, jpeg_size - 2, NULL, "truncated JPEG", verbose);
    if (webp) {
        s_expect_error (webp, webp_size - 3, NULL, "truncated WebP", verbose);
        s_expect_error (lossy, 16, NULL, "truncated WebP", verbose);
    }
    uint8_t *bad = (uint8_t *) malloc (png_size);
    memcpy (bad, png, png_size);
    bad [png_size - 20] ^= 0x5a;                    //  inside the image data: CRC mismatch
    s_expect_error (bad, png_size, NULL, "corrupt PNG", verbose);
    memcpy (bad, png, png_size);
    memcpy (bad + 12, "ihdr", 4);
    s_expect_error (bad, png_size, NULL, "corrupt PNG", verbose);
    free (bad);
    bad = (uint8_t *) malloc (jpeg_size);
    memcpy (bad, jpeg, jpeg_size);
    bad [3] = 0x00;                                 //  FF 00 is no marker
    s_expect_error (bad, jpeg_size, NULL, "corrupt JPEG", verbose);
    memcpy (bad, jpeg, jpeg_size);
    //  Garbage over the whole scan: the decoder (strict) refuses it.
    size_t sos = 0;
    for (size_t i = 2; i + 1 < jpeg_size; i++)
        if (jpeg [i] == 0xFF && jpeg [i + 1] == 0xDA) {
            sos = i;
            break;
        }
    assert (sos);
    size_t scan = sos + 2 + s_be16 (jpeg + sos + 2);
    for (size_t i = scan; i + 2 < jpeg_size; i++)
        bad [i] = (uint8_t) (i * 7 % 251 == 0xFF? 0x00: i * 7 % 251);
    bad [scan + 1] = 0x17;                          //  broken Huffman codes
    s_expect_error (bad, jpeg_size, NULL, "corrupt JPEG", verbose);
    free (bad);

    //  Limits: bytes, sides and pixels, from the header, before any decoding.
    vdgx_image_limits_t limits = { .max_bytes = png_size - 1 };
    s_expect_error (png, png_size, &limits, "too large", verbose);
    limits = (vdgx_image_limits_t) { .max_width = w - 1 };
    s_expect_error (jpeg, jpeg_size, &limits, "too large", verbose);
    limits = (vdgx_image_limits_t) { .max_pixels = (uint64_t) w * h - 1 };
    s_expect_error (png, png_size, &limits, "too large", verbose);
    limits = (vdgx_image_limits_t) { .max_width = w, .max_height = h, .max_pixels = (uint64_t) w * h };
    char err [256];
    vdgx_image_t *img = vdgx_image_decode (png, png_size, &limits, err, sizeof err);
    assert (img);
    vdgx_image_destroy (&img);

    //  Decompression bombs: small files that declare a huge canvas.
    bad = (uint8_t *) malloc (png_size);
    memcpy (bad, png, png_size);
    memcpy (bad + 16, "\x00\x01\x86\xa0\x00\x01\x86\xa0", 8);    //  IHDR 100000x100000
    s_expect_error (bad, png_size, NULL, "100000x100000 pixels is too large", verbose);
    free (bad);
    bad = (uint8_t *) malloc (jpeg_size);
    memcpy (bad, jpeg, jpeg_size);
    for (size_t i = 2; i + 9 < jpeg_size; i++)
        if (bad [i] == 0xFF && bad [i + 1] == 0xC0) {
            memcpy (bad + i + 5, "\xea\x60\xea\x60", 4);        //  SOF0 60000x60000
            break;
        }
    s_expect_error (bad, jpeg_size, NULL, "60000x60000 pixels is too large", verbose);
    free (bad);
    //  A WebP VP8X header declaring 16384x16384 (the format's largest canvas).
    uint8_t vp8x [30] = { 'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P',
                          'V', 'P', '8', 'X', 10, 0, 0, 0, 0, 0, 0, 0,
                          0xff, 0x3f, 0x00, 0xff, 0x3f, 0x00 };
    s_expect_error (vp8x, sizeof vp8x, NULL, "16384x16384 pixels is too large", verbose);
    vp8x [20] = 0x02;                               //  the animation flag
    s_expect_error (vp8x, sizeof vp8x, NULL, "animated", verbose);

    free (rgb);
    free (png);
    free (rgba);
    free (jpeg);
    free (webp);
    free (lossy);
}
