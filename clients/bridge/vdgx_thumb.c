/*  vdgx_thumb.c - first frame of an in-memory video as JPEG (libavformat/libavcodec). */
#include "vdgx_thumb.h"
#include "vdgx_video.h"
#include <assert.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const uint8_t *data;
    size_t size, pos;
} s_mem_t;

static int
s_read (void *opaque, uint8_t *buf, int n)
{
    s_mem_t *m = (s_mem_t *) opaque;
    size_t left = m->size - m->pos;
    if (left == 0)
        return AVERROR_EOF;
    size_t k = (size_t) n < left? (size_t) n: left;
    memcpy (buf, m->data + m->pos, k);
    m->pos += k;
    return (int) k;
}

static int64_t
s_seek (void *opaque, int64_t offset, int whence)
{
    s_mem_t *m = (s_mem_t *) opaque;
    if (whence & AVSEEK_SIZE)
        return (int64_t) m->size;
    int64_t base = (whence & 3) == SEEK_SET? 0: (whence & 3) == SEEK_CUR? (int64_t) m->pos
                 : (whence & 3) == SEEK_END? (int64_t) m->size: -1;
    if (base < 0 || offset > INT64_MAX - base || base + offset < 0 || base + offset > (int64_t) m->size)
        return -1;
    m->pos = (size_t) (base + offset);
    return (int64_t) m->pos;
}

static int
s_fail (char *err, size_t err_size, const char *what)
{
    snprintf (err, err_size, "%s", what);
    return -1;
}

//  Encodes one frame (any pixel format) as JPEG, scaled to out_w x out_h.
static int
s_encode (const AVFrame *in, int out_w, int out_h, uint8_t **jpeg_p, size_t *jpeg_size,
          char *err, size_t err_size)
{
    int rc = -1;
    const AVCodec *codec = avcodec_find_encoder (AV_CODEC_ID_MJPEG);
    AVCodecContext *enc = codec? avcodec_alloc_context3 (codec): NULL;
    AVFrame *out = av_frame_alloc ();
    AVPacket *pkt = av_packet_alloc ();
    struct SwsContext *sws = NULL;
    if (!enc || !out || !pkt) {
        s_fail (err, err_size, "no JPEG encoder");
        goto done;
    }
    enc->width = out_w;
    enc->height = out_h;
    //  Full-range 4:2:0 as plain YUV420P + the JPEG range tag (YUVJ420P is deprecated: libswscale
    //  warns on every frame, which would end up in the bridge's log per thumbnail).
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->color_range = AVCOL_RANGE_JPEG;
    enc->time_base = (AVRational) { 1, 25 };
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * 3;
    if (avcodec_open2 (enc, codec, NULL) < 0) {
        s_fail (err, err_size, "cannot open the JPEG encoder");
        goto done;
    }
    out->format = AV_PIX_FMT_YUV420P;
    out->color_range = AVCOL_RANGE_JPEG;
    out->width = out_w;
    out->height = out_h;
    out->quality = enc->global_quality;
    sws = sws_getContext (in->width, in->height, (enum AVPixelFormat) in->format, out_w, out_h,
                          AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
    if (!sws || av_frame_get_buffer (out, 0) < 0) {
        s_fail (err, err_size, "cannot convert the frame");
        goto done;
    }
    {
        //  Video range in (unless the stream says full), JPEG range out; BT.709 or BT.601
        //  matrix as the stream is tagged (unknown: 601, as decoders assume for SD).
        int space = in->colorspace == AVCOL_SPC_BT709? SWS_CS_ITU709: SWS_CS_ITU601;
        const int *coefs = sws_getCoefficients (space);
        sws_setColorspaceDetails (sws, coefs, in->color_range == AVCOL_RANGE_JPEG, coefs, 1,
                                  0, 1 << 16, 1 << 16);
    }
    sws_scale (sws, (const uint8_t *const *) in->data, in->linesize, 0, in->height, out->data, out->linesize);
    if (avcodec_send_frame (enc, out) < 0 || avcodec_send_frame (enc, NULL) < 0
    ||  avcodec_receive_packet (enc, pkt) < 0) {
        s_fail (err, err_size, "JPEG encoding failed");
        goto done;
    }
    *jpeg_p = (uint8_t *) malloc ((size_t) pkt->size);
    if (!*jpeg_p) {
        s_fail (err, err_size, "out of memory");
        goto done;
    }
    memcpy (*jpeg_p, pkt->data, (size_t) pkt->size);
    *jpeg_size = (size_t) pkt->size;
    rc = 0;
done:
    sws_freeContext (sws);
    av_packet_free (&pkt);
    av_frame_free (&out);
    avcodec_free_context (&enc);
    return rc;
}

int
vdgx_thumb_jpeg (const uint8_t *data, size_t size, int max_width, uint8_t **jpeg_p,
                 size_t *jpeg_size, char *err, size_t err_size)
{
    assert (jpeg_p && jpeg_size && err && err_size && max_width >= 16);
    *jpeg_p = NULL;
    *jpeg_size = 0;
    if (!data || size < 16)
        return s_fail (err, err_size, "not a video");
    int rc = -1;
    s_mem_t mem = { data, size, 0 };
    AVFormatContext *fmt = avformat_alloc_context ();
    uint8_t *iobuf = (uint8_t *) av_malloc (32768);
    AVIOContext *io = iobuf? avio_alloc_context (iobuf, 32768, 0, &mem, s_read, NULL, s_seek): NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc ();
    AVFrame *frame = av_frame_alloc ();
    if (!fmt || !io || !pkt || !frame) {
        if (!io)
            av_free (iobuf);
        avformat_free_context (fmt);
        fmt = NULL;
        s_fail (err, err_size, "out of memory");
        goto done;
    }
    fmt->pb = io;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (avformat_open_input (&fmt, NULL, NULL, NULL) < 0) {
        //  avformat_open_input frees fmt on failure
        s_fail (err, err_size, "not a video container");
        goto done;
    }
    if (avformat_find_stream_info (fmt, NULL) < 0) {
        s_fail (err, err_size, "no stream information");
        goto done;
    }
    const AVCodec *codec = NULL;
    int stream = av_find_best_stream (fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream < 0 || !codec) {
        s_fail (err, err_size, "no video stream");
        goto done;
    }
    dec = avcodec_alloc_context3 (codec);
    if (!dec || avcodec_parameters_to_context (dec, fmt->streams [stream]->codecpar) < 0
    ||  avcodec_open2 (dec, codec, NULL) < 0) {
        s_fail (err, err_size, "cannot open the decoder");
        goto done;
    }
    bool got = false, flushing = false;
    for (int packets = 0; !got && packets < 10000;) {
        int r = avcodec_receive_frame (dec, frame);
        if (r == 0) {
            got = true;
            break;
        }
        if (r != AVERROR (EAGAIN) || flushing)
            break;
        if (av_read_frame (fmt, pkt) < 0) {
            avcodec_send_packet (dec, NULL);
            flushing = true;
            continue;
        }
        if (pkt->stream_index == stream) {
            packets++;
            avcodec_send_packet (dec, pkt);
        }
        av_packet_unref (pkt);
    }
    if (!got || frame->width < 1 || frame->height < 1) {
        s_fail (err, err_size, "no frame could be decoded");
        goto done;
    }
    int out_w = frame->width > max_width? max_width: frame->width;
    int out_h = (int) ((int64_t) frame->height * out_w / frame->width);
    out_w = out_w < 2? 2: out_w & ~1;
    out_h = out_h < 2? 2: out_h & ~1;
    rc = s_encode (frame, out_w, out_h, jpeg_p, jpeg_size, err, err_size);
done:
    av_frame_free (&frame);
    av_packet_free (&pkt);
    avcodec_free_context (&dec);
    avformat_close_input (&fmt);
    if (io) {
        av_freep (&io->buffer);
        avio_context_free (&io);
    }
    return rc;
}

void
vdgx_thumb_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_thumb: ");
    av_log_set_level (AV_LOG_QUIET);
    //  A real MP4 from the project's encoder: 64x48, 6 frames.
    char path [] = "/tmp/vdgx_thumb_test_XXXXXX.mp4";
    int fd = mkstemps (path, 4);
    assert (fd >= 0);
    close (fd);
    vdgx_video_options_t opts;
    vdgx_video_options_init (&opts);
    opts.thumbnail = false;
    opts.sprite_count = 0;
    opts.try_nvenc = false;
    opts.fps = 8;
    vdgx_video_t *video = vdgx_video_new (path, &opts, NULL);
    assert (video);
    uint8_t rgb [64 * 48 * 3];
    for (int f = 0; f < 6; f++) {
        for (int i = 0; i < 64 * 48 * 3; i++)
            rgb [i] = (uint8_t) (i * 7 + f * 31);
        assert (vdgx_video_push_rgb24 (video, rgb, 64, 48, 0) == 0);
    }
    assert (vdgx_video_finish (video) == 0);
    vdgx_video_destroy (&video);
    FILE *file = fopen (path, "rb");
    assert (file);
    uint8_t *data = (uint8_t *) malloc (1 << 20);
    size_t size = fread (data, 1, 1 << 20, file);
    fclose (file);
    unlink (path);
    char err [128];
    uint8_t *jpeg = NULL;
    size_t jsize = 0;
    assert (vdgx_thumb_jpeg (data, size, 320, &jpeg, &jsize, err, sizeof err) == 0);
    assert (jsize > 100 && jpeg [0] == 0xFF && jpeg [1] == 0xD8 && jpeg [jsize - 2] == 0xFF && jpeg [jsize - 1] == 0xD9);
    free (jpeg);
    assert (vdgx_thumb_jpeg (data, size, 32, &jpeg, &jsize, err, sizeof err) == 0);   //  scaled down
    free (jpeg);
    //  Truncated, corrupted and random inputs fail cleanly.
    assert (vdgx_thumb_jpeg (data, 100, 320, &jpeg, &jsize, err, sizeof err) == -1 && !jpeg);
    assert (vdgx_thumb_jpeg (data, 8, 320, &jpeg, &jsize, err, sizeof err) == -1);
    unsigned seed = 7;
    for (int round = 0; round < 20; round++) {
        uint8_t *bad = (uint8_t *) malloc (size);
        memcpy (bad, data, size);
        for (int k = 0; k < 40; k++) {
            seed = seed * 1103515245u + 12345u;
            bad [(seed >> 8) % size] ^= (uint8_t) (seed >> 3);
        }
        if (vdgx_thumb_jpeg (bad, size, 320, &jpeg, &jsize, err, sizeof err) == 0)
            free (jpeg);
        free (bad);
    }
    memset (data, 0x5a, 4096);
    assert (vdgx_thumb_jpeg (data, 4096, 320, &jpeg, &jsize, err, sizeof err) == -1);
    free (data);
    printf ("OK\n");
}
