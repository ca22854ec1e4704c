/*  test_video.c - round-trip tests of vdgx_video: encode synthetic clips, decode them back with
    libavformat/libavcodec and check what a player would see.

        test_video [-v] [case]     cases: h264 rgb24 codecs audio ffprobe thumbs sprite errors random
                                   determinism

    Tolerances: PSNR >= 40 dB per frame (RGB, 8-bit) at the default CRF 18; decoded audio
    length within 2 codec frames of what was pushed; dominant frequency within one bin of the
    sine that went in; JPEG thumbnails >= 40 dB PSNR against the source frame, PNG exact,
    sprite tiles >= 35 dB against a box-filtered source.
*/
#include "vdgx_video.h"

#include <assert.h>
#include <sched.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

static bool s_verbose = false;
static char s_dir [256];
static int s_failures = 0;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf (stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf (stderr, __VA_ARGS__);                                  \
            fprintf (stderr, "\n");                                         \
            s_failures++;                                                   \
        }                                                                   \
    } while (0)

static void
s_log (const char *fmt, ...)
{
    if (!s_verbose)
        return;
    va_list args;
    va_start (args, fmt);
    printf ("    ");
    vprintf (fmt, args);
    printf ("\n");
    va_end (args);
}

static char *
s_path (const char *name)
{
    static char buf [8][512];
    static int next = 0;
    char *p = buf [next++ % 8];
    snprintf (p, 512, "%s/%s", s_dir, name);
    return p;
}

static int
s_dir_count (void)
{
    DIR *d = opendir (s_dir);
    assert (d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir (d))) {
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, "..")) {
            s_log ("dir has %s", e->d_name);
            n++;
        }
    }
    closedir (d);
    return n;
}

static void
s_dir_clear (void)
{
    DIR *d = opendir (s_dir);
    assert (d);
    struct dirent *e;
    while ((e = readdir (d)))
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
            unlink (s_path (e->d_name));
    closedir (d);
}

//  --------------------------------------------------------------------------
//  Synthetic content: a smooth gradient, a soft disc moving right and a soft square moving
//  down, colours changing over time. Values in [-1, 1].

static void
s_pattern (float *rgb, int w, int h, int t)
{
    float cx = (float) ((t * 5) % w), cy = h * 0.4f;
    float sx = w * 0.7f, sy = (float) ((t * 3) % h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float dx = x - cx, dy = y - cy;
            float disc = fmaxf (0.0f, fminf (1.0f, (h * 0.15f - sqrtf (dx * dx + dy * dy)) / 3.0f));
            float ex = fabsf (x - sx), ey = fabsf (y - sy);
            float sq = fmaxf (0.0f, fminf (1.0f, (h * 0.12f - fmaxf (ex, ey)) / 3.0f));
            float *p = rgb + ((size_t) y * w + x) * 3;
            float r = -0.7f + 1.4f * x / w, g = -0.6f + 1.2f * y / h;
            float b = 0.5f * sinf (0.1f * t + 3.0f * x / w);
            r = r * (1 - disc) + disc * 0.6f;
            g = g * (1 - disc) + disc * (0.2f * cosf (0.2f * t));
            b = b * (1 - sq) + sq * -0.5f;
            g = g * (1 - sq) + sq * 0.7f;
            p [0] = r, p [1] = g, p [2] = b;
        }
}

static uint8_t
s_q (float v)
{
    float u = (v + 1.0f) * 127.5f;
    return (uint8_t) (u < 0 ? 0 : u > 255 ? 255 : (int) (u + 0.5f));
}

static void
s_quantize (const float *in, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out [i] = s_q (in [i]);
}

static double
s_psnr (const uint8_t *a, const uint8_t *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double) a [i] - b [i];
        se += d * d;
    }
    if (se == 0)
        return 99.0;
    return 10.0 * log10 (255.0 * 255.0 / (se / n));
}

//  --------------------------------------------------------------------------
//  Decoding

typedef struct {
    int frames, width, height;
    AVRational fps;
    double duration;            //  seconds: stream duration, else the container's
    enum AVCodecID codec;
    char format [64];
    int primaries, trc, space, range;
    uint8_t **rgb;              //  decoded frames as RGB24 (when keep_rgb)
    int rgb_cap;
    //  audio
    bool has_audio;
    int rate, channels;
    enum AVCodecID audio_codec;
    float *pcm;                 //  interleaved
    size_t samples;             //  per channel
} s_decoded_t;

static void
s_decoded_free (s_decoded_t *d)
{
    for (int i = 0; i < d->frames && d->rgb; i++)
        free (d->rgb [i]);
    free (d->rgb);
    free (d->pcm);
    memset (d, 0, sizeof *d);
}

static void
s_keep_frame (s_decoded_t *d, AVFrame *f, struct SwsContext **sws)
{
    if (!*sws) {
        *sws = sws_getContext (f->width, f->height, f->format, f->width, f->height,
                               AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND
                               | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP, NULL, NULL, NULL);
        assert (*sws);
        //  Undo what the file says it holds: video is BT.709 limited range; a JPEG is
        //  full-range BT.601 (JFIF); PNG is RGB already.
        if (f->format != AV_PIX_FMT_RGB24) {
            bool jfif = f->format == AV_PIX_FMT_YUVJ420P || f->format == AV_PIX_FMT_YUVJ444P
                     || f->format == AV_PIX_FMT_YUVJ422P || f->color_range == AVCOL_RANGE_JPEG;
            const int *in = sws_getCoefficients (jfif ? SWS_CS_DEFAULT : SWS_CS_ITU709);
            sws_setColorspaceDetails (*sws, in, jfif ? 1 : 0, in, 1, 0, 1 << 16, 1 << 16);
        }
    }
    if (d->frames >= d->rgb_cap) {
        d->rgb_cap = d->rgb_cap ? d->rgb_cap * 2 : 64;
        d->rgb = realloc (d->rgb, sizeof (uint8_t *) * d->rgb_cap);
        assert (d->rgb);
    }
    uint8_t *rgb = malloc ((size_t) f->width * f->height * 3);
    assert (rgb);
    uint8_t *out [1] = { rgb };
    int stride [1] = { f->width * 3 };
    sws_scale (*sws, (const uint8_t *const *) f->data, f->linesize, 0, f->height, out, stride);
    d->rgb [d->frames] = rgb;
}

static void
s_keep_audio (s_decoded_t *d, AVFrame *f, SwrContext **swr)
{
    if (!*swr) {
        int rc = swr_alloc_set_opts2 (swr, &f->ch_layout, AV_SAMPLE_FMT_FLT, f->sample_rate,
                                      &f->ch_layout, f->format, f->sample_rate, 0, NULL);
        assert (rc == 0 && swr_init (*swr) == 0);
    }
    d->pcm = realloc (d->pcm, sizeof (float) * (d->samples + f->nb_samples) * d->channels);
    assert (d->pcm);
    uint8_t *out [1] = { (uint8_t *) (d->pcm + d->samples * d->channels) };
    int got = swr_convert (*swr, out, f->nb_samples, (const uint8_t **) f->extended_data,
                           f->nb_samples);
    assert (got >= 0);
    d->samples += got;
}

//  Decodes every frame of every stream. Returns 0, or -1 if the file does not open.
static int
s_decode (const char *path, bool keep_rgb, s_decoded_t *d)
{
    memset (d, 0, sizeof *d);
    AVFormatContext *fmt = NULL;
    if (avformat_open_input (&fmt, path, NULL, NULL) < 0)
        return -1;
    if (avformat_find_stream_info (fmt, NULL) < 0) {
        avformat_close_input (&fmt);
        return -1;
    }
    snprintf (d->format, sizeof d->format, "%s", fmt->iformat->name);
    AVCodecContext *dec [8] = { NULL };
    int vi = av_find_best_stream (fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    int ai = av_find_best_stream (fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    for (unsigned i = 0; i < fmt->nb_streams && i < 8; i++) {
        AVCodecParameters *par = fmt->streams [i]->codecpar;
        const AVCodec *codec = avcodec_find_decoder (par->codec_id);
        assert (codec);
        dec [i] = avcodec_alloc_context3 (codec);
        avcodec_parameters_to_context (dec [i], par);
        dec [i]->thread_count = 1;
        int rc = avcodec_open2 (dec [i], codec, NULL);
        assert (rc == 0);
    }
    if (vi >= 0) {
        AVStream *st = fmt->streams [vi];
        d->width = st->codecpar->width;
        d->height = st->codecpar->height;
        d->fps = st->avg_frame_rate;
        d->codec = st->codecpar->codec_id;
        d->primaries = st->codecpar->color_primaries;
        d->trc = st->codecpar->color_trc;
        d->space = st->codecpar->color_space;
        d->range = st->codecpar->color_range;
        d->duration = st->duration > 0 ? st->duration * av_q2d (st->time_base)
                                       : fmt->duration / (double) AV_TIME_BASE;
    }
    if (ai >= 0) {
        AVStream *st = fmt->streams [ai];
        d->has_audio = true;
        d->rate = st->codecpar->sample_rate;
        d->channels = st->codecpar->ch_layout.nb_channels;
        d->audio_codec = st->codecpar->codec_id;
    }
    AVPacket *pkt = av_packet_alloc ();
    AVFrame *f = av_frame_alloc ();
    struct SwsContext *sws = NULL;
    SwrContext *swr = NULL;
    bool eof = false;
    while (!eof) {
        int idx = -1;
        if (av_read_frame (fmt, pkt) < 0) {
            eof = true;
        }
        else
            idx = pkt->stream_index;
        for (unsigned i = 0; i < fmt->nb_streams && i < 8; i++) {
            if (!eof && (int) i != idx)
                continue;
            avcodec_send_packet (dec [i], eof ? NULL : pkt);
            while (avcodec_receive_frame (dec [i], f) == 0) {
                if ((int) i == vi) {
                    if (keep_rgb)
                        s_keep_frame (d, f, &sws);
                    d->frames++;
                }
                else
                if ((int) i == ai)
                    s_keep_audio (d, f, &swr);
                av_frame_unref (f);
            }
        }
        av_packet_unref (pkt);
    }
    if (!keep_rgb && d->rgb) {
        free (d->rgb);
        d->rgb = NULL;
    }
    sws_freeContext (sws);
    swr_free (&swr);
    av_frame_free (&f);
    av_packet_free (&pkt);
    for (int i = 0; i < 8; i++)
        avcodec_free_context (&dec [i]);
    avformat_close_input (&fmt);
    return 0;
}

//  Top-level MP4 boxes in file order: is 'moov' before 'mdat' (+faststart)?
static bool
s_moov_first (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return false;
    int moov = -1, mdat = -1;
    long pos = 0;
    for (int i = 0; i < 64; i++) {
        uint8_t h [16];
        if (fseek (f, pos, SEEK_SET) || fread (h, 1, 8, f) != 8)
            break;
        uint64_t size = ((uint32_t) h [0] << 24) | (h [1] << 16) | (h [2] << 8) | h [3];
        if (size == 1) {
            if (fread (h + 8, 1, 8, f) != 8)
                break;
            size = 0;
            for (int k = 8; k < 16; k++)
                size = (size << 8) | h [k];
        }
        if (memcmp (h + 4, "moov", 4) == 0)
            moov = i;
        if (memcmp (h + 4, "mdat", 4) == 0)
            mdat = i;
        if (size < 8)
            break;
        pos += (long) size;
    }
    fclose (f);
    return moov >= 0 && mdat >= 0 && moov < mdat;
}

//  --------------------------------------------------------------------------
//  Encoding helper: n frames of the pattern, float input.

static int
s_encode_pattern (const char *path, vdgx_video_options_t *o, int w, int h, int n, char *err,
                  size_t err_size)
{
    char *e = NULL;
    vdgx_video_t *v = vdgx_video_new (path, o, &e);
    if (!v) {
        snprintf (err, err_size, "%s", e);
        free (e);
        return -1;
    }
    float *frame = malloc (sizeof (float) * w * h * 3);
    assert (frame);
    int rc = 0;
    for (int t = 0; t < n && rc == 0; t++) {
        s_pattern (frame, w, h, t);
        rc = vdgx_video_push_float (v, frame, w, h);
    }
    if (rc == 0)
        rc = vdgx_video_finish (v);
    snprintf (err, err_size, "%s", vdgx_video_error (v));
    s_log ("%s: encoder %s", path, vdgx_video_encoder (v));
    vdgx_video_destroy (&v);
    free (frame);
    return rc;
}

//  Checks a decoded clip against the pattern: count, size, fps, duration, PSNR.
static void
s_check_clip (const char *what, s_decoded_t *d, int w, int h, int n, int fps, double min_psnr)
{
    CHECK (d->frames == n, "%s: %d frames decoded, %d pushed", what, d->frames, n);
    CHECK (d->width == w && d->height == h, "%s: %dx%d, want %dx%d", what, d->width, d->height, w, h);
    CHECK (d->fps.num == fps * d->fps.den, "%s: fps %d/%d, want %d", what, d->fps.num, d->fps.den, fps);
    CHECK (fabs (d->duration - (double) n / fps) < 0.5 / fps, "%s: duration %.4f s, want %.4f",
           what, d->duration, (double) n / fps);
    if (!d->rgb)
        return;
    float *frame = malloc (sizeof (float) * w * h * 3);
    uint8_t *ref = malloc ((size_t) w * h * 3);
    double worst = 99, sum = 0;
    for (int t = 0; t < d->frames && t < n; t++) {
        s_pattern (frame, w, h, t);
        s_quantize (frame, ref, (size_t) w * h * 3);
        double p = s_psnr (ref, d->rgb [t], (size_t) w * h * 3);
        worst = fmin (worst, p);
        sum += p;
    }
    s_log ("%s: PSNR worst %.2f dB, mean %.2f dB over %d frames", what, worst,
           sum / (d->frames ? d->frames : 1), d->frames);
    CHECK (worst >= min_psnr, "%s: worst frame PSNR %.2f dB < %.1f", what, worst, min_psnr);
    free (frame);
    free (ref);
}

//  --------------------------------------------------------------------------
//  Cases

static void
s_case_h264 (void)
{
    const int W = 160, H = 120, N = 24, FPS = 16;
    vdgx_video_options_t o;
    vdgx_video_options_init (&o);           //  default CRF and preset: the quality we promise
    o.fps = FPS;
    o.thumbnail = false;
    o.sprite_count = 0;
    char err [512];
    const char *path = s_path ("h264.mp4");
    CHECK (s_encode_pattern (path, &o, W, H, N, err, sizeof err) == 0, "encode: %s", err);
    s_decoded_t d;
    CHECK (s_decode (path, true, &d) == 0, "cannot open %s", path);
    CHECK (d.codec == AV_CODEC_ID_H264, "codec %d", d.codec);
    CHECK (strstr (d.format, "mp4") != NULL, "format %s", d.format);
    CHECK (d.primaries == AVCOL_PRI_BT709 && d.trc == AVCOL_TRC_BT709
           && d.space == AVCOL_SPC_BT709 && d.range == AVCOL_RANGE_MPEG,
           "colour tags %d %d %d %d", d.primaries, d.trc, d.space, d.range);
    CHECK (!d.has_audio, "unexpected audio stream");
    s_check_clip ("h264", &d, W, H, N, FPS, 40.0);
    CHECK (s_moov_first (path), "moov is not before mdat (faststart)");
    s_decoded_free (&d);
    CHECK (s_dir_count () == 1, "stray files");
    s_dir_clear ();

    //  Width/height from the options must match the frames; small 64x48 at 24 fps.
    o.width = 64;
    o.height = 48;
    o.fps = 24;
    path = s_path ("small.mp4");
    CHECK (s_encode_pattern (path, &o, 64, 48, 7, err, sizeof err) == 0, "encode: %s", err);
    //  Structure only: at 64x48 the pattern's edges are a large share of the picture and
    //  4:2:0 chroma alone costs ~2 dB; the PSNR promise is checked at 160x120 above.
    CHECK (s_decode (path, false, &d) == 0, "cannot open %s", path);
    s_check_clip ("h264 64x48", &d, 64, 48, 7, 24, 40.0);
    s_decoded_free (&d);
    s_dir_clear ();
}

//  RGB24 input with a padded stride, and odd input sizes cropped / padded.
static void
s_case_rgb24 (void)
{
    const int W = 160, H = 120, N = 8, STRIDE = W * 3 + 13;
    float *frame = malloc (sizeof (float) * W * H * 3);
    uint8_t *rgb = calloc ((size_t) STRIDE * H, 1);
    uint8_t *ref = malloc ((size_t) W * H * 3);
    vdgx_video_odd_t policy [3] = { VDGX_VIDEO_ODD_REJECT, VDGX_VIDEO_ODD_CROP, VDGX_VIDEO_ODD_PAD };
    int in_w [3] = { W, W - 1, W - 1 }, in_h [3] = { H, H - 1, H - 1 };
    int out_w [3] = { W, W - 2, W }, out_h [3] = { H, H - 2, H };
    for (int p = 0; p < 3; p++) {
        vdgx_video_options_t o;
        vdgx_video_options_init (&o);
        o.odd_size = policy [p];
        o.thumbnail = false;
        o.sprite_count = 0;
        const char *path = s_path ("rgb24.mp4");
        vdgx_video_t *v = vdgx_video_new (path, &o, NULL);
        assert (v);
        for (int t = 0; t < N; t++) {
            s_pattern (frame, W, H, t);
            for (int y = 0; y < H; y++)
                s_quantize (frame + (size_t) y * W * 3, rgb + (size_t) y * STRIDE, (size_t) W * 3);
            int rc = vdgx_video_push_rgb24 (v, rgb, in_w [p], in_h [p], STRIDE);
            CHECK (rc == 0, "push: %s", vdgx_video_error (v));
        }
        CHECK (vdgx_video_finish (v) == 0, "finish: %s", vdgx_video_error (v));
        vdgx_video_destroy (&v);
        s_decoded_t d;
        CHECK (s_decode (path, true, &d) == 0, "cannot open %s", path);
        CHECK (d.frames == N && d.width == out_w [p] && d.height == out_h [p],
               "policy %d: %d frames %dx%d", p, d.frames, d.width, d.height);
        //  Every decoded pixel must match the input pixel it came from (edge repeat for pad).
        double worst = 99;
        for (int t = 0; t < d.frames && d.width == out_w [p] && d.height == out_h [p]; t++) {
            s_pattern (frame, W, H, t);
            for (int y = 0; y < out_h [p]; y++)
                for (int x = 0; x < out_w [p]; x++) {
                    int sx = x < in_w [p] ? x : in_w [p] - 1, sy = y < in_h [p] ? y : in_h [p] - 1;
                    for (int c = 0; c < 3; c++)
                        ref [((size_t) y * out_w [p] + x) * 3 + c] =
                            s_q (frame [((size_t) sy * W + sx) * 3 + c]);
                }
            worst = fmin (worst, s_psnr (ref, d.rgb [t], (size_t) out_w [p] * out_h [p] * 3));
        }
        s_log ("rgb24 policy %d: %dx%d -> %dx%d, worst PSNR %.2f dB", p, in_w [p], in_h [p],
               d.width, d.height, worst);
        CHECK (worst >= 40.0, "rgb24 policy %d: PSNR %.2f", p, worst);
        s_decoded_free (&d);
        s_dir_clear ();
    }
    free (frame);
    free (rgb);
    free (ref);
}

static void
s_case_codecs (void)
{
    struct {
        const char *codec, *file, *container;
        enum AVCodecID id;
        const char *format;
    } cases [] = {
        { "hevc", "clip-hevc.mp4", NULL, AV_CODEC_ID_HEVC, "mp4" },
        { "vp9", "clip-vp9.webm", NULL, AV_CODEC_ID_VP9, "webm" },
        { "vp9", "clip-vp9-noext", NULL, AV_CODEC_ID_VP9, "webm" },     //  vp9 -> webm
        { "h264", "clip-h264.bin", "mp4", AV_CODEC_ID_H264, "mp4" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        vdgx_video_options_t o;
        vdgx_video_options_init (&o);
        o.codec = cases [c].codec;
        o.container = cases [c].container;
        o.fps = 12;
        o.thumbnail = false;
        o.sprite_count = 0;
        char err [512];
        const char *path = s_path (cases [c].file);
        CHECK (s_encode_pattern (path, &o, 160, 120, 10, err, sizeof err) == 0, "%s: %s",
               cases [c].file, err);
        s_decoded_t d;
        CHECK (s_decode (path, true, &d) == 0, "cannot open %s", path);
        CHECK (d.codec == cases [c].id, "%s: codec %d", cases [c].file, d.codec);
        CHECK (strstr (d.format, cases [c].format) != NULL, "%s: format %s", cases [c].file, d.format);
        s_check_clip (cases [c].file, &d, 160, 120, 10, 12, 40.0);
        if (strcmp (cases [c].format, "mp4") == 0)
            CHECK (s_moov_first (path), "%s: moov is not before mdat", cases [c].file);
        s_decoded_free (&d);
        CHECK (s_dir_count () == 1, "stray files");
        s_dir_clear ();
    }
}

//  Power of frequency f in channel ch of interleaved pcm (Goertzel).
static double
s_power (const float *pcm, size_t n, int channels, int ch, int rate, double f)
{
    double w = 2.0 * M_PI * f / rate, coeff = 2.0 * cos (w), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s0 = pcm [i * channels + ch] + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

//  The frequency with the most power, searched 50..(rate/2 - 50) Hz in 10 Hz steps, over
//  the middle of the signal (codec start-up and padding left out).
static double
s_dominant (const float *pcm, size_t samples, int channels, int ch, int rate)
{
    size_t from = samples / 4, n = samples / 2;
    double best = 0, best_f = 0;
    for (double f = 50; f < rate / 2.0 - 50; f += 10) {
        double p = s_power (pcm + from * channels, n, channels, ch, rate, f);
        if (p > best) {
            best = p;
            best_f = f;
        }
    }
    return best_f;
}

static void
s_case_audio (void)
{
    struct {
        const char *file, *codec;
        int channels, rate;
        double freq [2];
        enum AVCodecID id;
    } cases [] = {
        { "audio-mono.mp4", "h264", 1, 24000, { 440, 0 }, AV_CODEC_ID_AAC },
        { "audio-stereo.mp4", "h264", 2, 48000, { 440, 1000 }, AV_CODEC_ID_AAC },
        { "audio-16k.webm", "vp9", 1, 16000, { 700, 0 }, AV_CODEC_ID_OPUS },
    };
    const int W = 64, H = 48, N = 24, FPS = 16;
    float *frame = malloc (sizeof (float) * W * H * 3);
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        vdgx_video_options_t o;
        vdgx_video_options_init (&o);
        o.codec = cases [c].codec;
        o.preset = "veryfast";
        o.fps = FPS;
        o.audio_channels = cases [c].channels;
        o.audio_rate = cases [c].rate;
        o.thumbnail = false;
        o.sprite_count = 0;
        const char *path = s_path (cases [c].file);
        vdgx_video_t *v = vdgx_video_new (path, &o, NULL);
        assert (v);
        //  1.5 s of sine, in uneven chunks: some before the first frame, some between
        //  frames, the rest after the last one.
        const int rate = cases [c].rate, ch = cases [c].channels;
        const size_t total = (size_t) rate * N / FPS;
        float *pcm = malloc (sizeof (float) * total * ch);
        for (size_t i = 0; i < total; i++)
            for (int k = 0; k < ch; k++)
                pcm [i * ch + k] = 0.5f * (float) sin (2 * M_PI * cases [c].freq [k] * i / rate);
        size_t sent = 0;
        size_t chunk = 777;
        CHECK (vdgx_video_push_audio (v, pcm, (int) chunk, ch, rate) == 0, "audio: %s",
               vdgx_video_error (v));
        sent += chunk;
        for (int t = 0; t < N; t++) {
            s_pattern (frame, W, H, t);
            CHECK (vdgx_video_push_float (v, frame, W, H) == 0, "push: %s", vdgx_video_error (v));
            size_t n = t % 3 == 0 ? 0 : (total - sent) / 5;
            CHECK (vdgx_video_push_audio (v, pcm + sent * ch, (int) n, ch, rate) == 0, "audio: %s",
                   vdgx_video_error (v));
            sent += n;
        }
        CHECK (vdgx_video_push_audio (v, pcm + sent * ch, (int) (total - sent), ch, rate) == 0,
               "audio: %s", vdgx_video_error (v));
        CHECK (vdgx_video_finish (v) == 0, "finish: %s", vdgx_video_error (v));
        vdgx_video_destroy (&v);
        free (pcm);

        s_decoded_t d;
        CHECK (s_decode (path, false, &d) == 0, "cannot open %s", path);
        CHECK (d.frames == N, "%s: %d frames", cases [c].file, d.frames);
        CHECK (d.has_audio && d.audio_codec == cases [c].id, "%s: audio codec %d", cases [c].file,
               d.audio_codec);
        //  Opus always decodes at 48 kHz; the container keeps the input rate for AAC.
        int want_rate = cases [c].id == AV_CODEC_ID_OPUS ? 48000 : rate;
        CHECK (d.rate == want_rate && d.channels == ch, "%s: %d Hz %d ch", cases [c].file,
               d.rate, d.channels);
        double secs = d.rate ? (double) d.samples / d.rate : 0;
        s_log ("%s: %zu samples = %.4f s at %d Hz, %d ch", cases [c].file, d.samples, secs,
               d.rate, d.channels);
        CHECK (fabs (secs - (double) N / FPS) < 2048.0 / want_rate, "%s: audio %.4f s, want %.4f",
               cases [c].file, secs, (double) N / FPS);
        for (int k = 0; k < ch && d.samples > 0 && d.channels == ch; k++) {
            double f = s_dominant (d.pcm, d.samples, d.channels, k, d.rate);
            s_log ("%s: channel %d dominant %.0f Hz (sent %.0f)", cases [c].file, k, f,
                   cases [c].freq [k]);
            CHECK (fabs (f - cases [c].freq [k]) <= 10, "%s ch %d: dominant %.0f Hz, sent %.0f",
                   cases [c].file, k, f, cases [c].freq [k]);
        }
        s_decoded_free (&d);
        s_dir_clear ();
    }
    free (frame);
}

//  ffprobe, the reference parser, must accept our files and see the same streams.
//  Fragmented MP4 (streaming): after each fragment the temp file's prefix is a playable
//  video of exactly the frames pushed so far (decoded here and, when present, by ffprobe);
//  the finished file starts with the very same bytes and holds every frame.
static void
s_copy_prefix (const char *from, const char *to, uint64_t n)
{
    FILE *in = fopen (from, "rb"), *out = fopen (to, "wb");
    assert (in && out);
    uint8_t buf [65536];
    while (n > 0) {
        size_t want = n < sizeof buf? (size_t) n: sizeof buf;
        size_t got = fread (buf, 1, want, in);
        CHECK (got == want, "%s: short read (%zu of %zu)", from, got, want);
        if (got == 0)
            break;
        fwrite (buf, 1, got, out);
        n -= got;
    }
    fclose (in);
    fclose (out);
}

static bool
s_same_prefix (const char *a, const char *b)
{
    FILE *fa = fopen (a, "rb"), *fb = fopen (b, "rb");
    bool same = fa && fb;
    int ca, cb;
    while (same && (cb = fgetc (fb)) != EOF) {
        ca = fgetc (fa);
        same = ca == cb;
    }
    if (fa)
        fclose (fa);
    if (fb)
        fclose (fb);
    return same;
}

static void
s_case_fragmented (void)
{
    const int W = 64, H = 48, FPS = 24, PER = 8, PARTS = 3;
    bool probe = system ("ffprobe -version >/dev/null 2>&1") == 0;
    vdgx_video_options_t o;
    vdgx_video_options_init (&o);
    o.fps = FPS;
    o.preset = "veryfast";
    o.fragmented = true;
    char *e = NULL;
    char *path = strdup (s_path ("frag.mp4"));
    vdgx_video_t *v = vdgx_video_new (path, &o, &e);
    CHECK (v, "fragmented: %s", e? e: "");
    if (!v) {
        free (e);
        free (path);
        return;
    }
    float *frame = malloc (sizeof (float) * W * H * 3);
    uint64_t last = 0;
    for (int part = 1; part <= PARTS; part++) {
        for (int t = (part - 1) * PER; t < part * PER; t++) {
            s_pattern (frame, W, H, t);
            CHECK (vdgx_video_push_float (v, frame, W, H) == 0, "%s", vdgx_video_error (v));
        }
        uint64_t bytes = 0;
        int frames = 0;
        CHECK (vdgx_video_fragment (v, &bytes, &frames) == 0, "%s", vdgx_video_error (v));
        CHECK (frames == part * PER, "fragment %d holds %d frames, want %d", part, frames, part * PER);
        CHECK (bytes > last, "fragment %d: the file did not grow (%llu)", part, (unsigned long long) bytes);
        last = bytes;
        char name [32];
        snprintf (name, sizeof name, "prefix-%d.mp4", part);
        char *prefix = strdup (s_path (name));
        s_copy_prefix (vdgx_video_temp_path (v), prefix, bytes);
        s_decoded_t d;
        CHECK (s_decode (prefix, true, &d) == 0, "prefix %d does not decode", part);
        s_check_clip (name, &d, W, H, part * PER, FPS, 30);
        s_decoded_free (&d);
        if (probe) {
            char cmd [512], out [64] = "";
            snprintf (cmd, sizeof cmd, "ffprobe -v error -count_frames -select_streams v:0 "
                      "-show_entries stream=nb_read_frames -of csv=p=0 '%s'", prefix);
            FILE *p = popen (cmd, "r");
            if (p) {
                if (!fgets (out, sizeof out, p))
                    out [0] = 0;
                pclose (p);
            }
            CHECK (atoi (out) == part * PER, "ffprobe counts '%s' frames in prefix %d, want %d",
                   out, part, part * PER);
        }
        if (part == 1) {
            //  a second fragment call with no new frame adds nothing
            uint64_t again = 0;
            int f2 = 0;
            CHECK (vdgx_video_fragment (v, &again, &f2) == 0 && again == bytes && f2 == frames,
                   "an empty fragment changed the file (%llu -> %llu)", (unsigned long long) bytes,
                   (unsigned long long) again);
        }
        s_log ("fragment %d: %llu bytes, %d frames", part, (unsigned long long) bytes, frames);
        free (prefix);
    }
    CHECK (vdgx_video_finish (v) == 0, "%s", vdgx_video_error (v));
    CHECK (s_same_prefix (path, s_path ("prefix-3.mp4")), "the final file does not extend the streamed bytes");
    s_decoded_t d;
    CHECK (s_decode (path, true, &d) == 0, "the fragmented file does not decode");
    s_check_clip ("fragmented", &d, W, H, PARTS * PER, FPS, 30);
    s_decoded_free (&d);
    vdgx_video_destroy (&v);
    //  webm cannot be fragmented MP4; a plain video refuses fragment()
    o.container = "webm";
    o.codec = "vp9";
    v = vdgx_video_new (s_path ("frag.webm"), &o, &e);
    CHECK (!v && e && strstr (e, "fragmented"), "fragmented webm: %s", e? e: "accepted");
    free (e);
    e = NULL;
    vdgx_video_options_init (&o);
    v = vdgx_video_new (s_path ("plain.mp4"), &o, NULL);
    uint64_t b;
    int f;
    CHECK (v && vdgx_video_fragment (v, &b, &f) == -1 && strstr (vdgx_video_error (v), "not fragmented"),
           "fragment() on a plain video");
    vdgx_video_destroy (&v);
    free (frame);
    free (path);
}

static void
s_case_ffprobe (void)
{
    if (system ("ffprobe -version >/dev/null 2>&1") != 0) {
        printf ("    ffprobe not found: skipping the ffprobe check\n");
        return;
    }
    struct {
        const char *file, *codec;
        int audio;
        const char *want;
    } cases [] = {
        { "probe.mp4", "h264", 2, "h264,64,48|aac" },
        { "probe-hevc.mp4", "hevc", 0, "hevc,64,48" },
        { "probe.webm", "vp9", 1, "vp9,64,48|opus" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        vdgx_video_options_t o;
        vdgx_video_options_init (&o);
        o.codec = cases [c].codec;
        o.preset = "ultrafast";
        o.audio_channels = cases [c].audio;
        o.audio_rate = 48000;
        o.thumbnail = false;
        o.sprite_count = 0;
        const char *path = s_path (cases [c].file);
        vdgx_video_t *v = vdgx_video_new (path, &o, NULL);
        assert (v);
        float *frame = malloc (sizeof (float) * 64 * 48 * 3);
        float *pcm = calloc (48000 / 2 * 2, sizeof (float));
        for (int i = 0; i < 48000 / 2 * 2; i++)
            pcm [i] = 0.3f * sinf (i * 0.05f);
        for (int t = 0; t < 8; t++) {
            s_pattern (frame, 64, 48, t);
            CHECK (vdgx_video_push_float (v, frame, 64, 48) == 0, "%s", vdgx_video_error (v));
        }
        if (cases [c].audio)
            CHECK (vdgx_video_push_audio (v, pcm, 48000 / 2, cases [c].audio, 48000) == 0, "%s",
                   vdgx_video_error (v));
        CHECK (vdgx_video_finish (v) == 0, "%s", vdgx_video_error (v));
        vdgx_video_destroy (&v);
        free (frame);
        free (pcm);

        char cmd [1024];
        snprintf (cmd, sizeof cmd, "ffprobe -v error -show_entries stream=codec_name,width,height "
                  "-of csv=p=0 '%s' 2>&1", path);
        FILE *p = popen (cmd, "r");
        assert (p);
        char out [512] = "", line [256];
        while (fgets (line, sizeof line, p)) {
            line [strcspn (line, "\r\n")] = 0;
            //  audio lines print as "aac,," or "aac"; normalise to the codec name
            char *comma = strstr (line, ",,");
            if (comma)
                *comma = 0;
            if (*out)
                strncat (out, "|", sizeof out - strlen (out) - 1);
            strncat (out, line, sizeof out - strlen (out) - 1);
        }
        int status = pclose (p);
        s_log ("ffprobe %s: %s", cases [c].file, out);
        CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "ffprobe failed on %s: %s",
               cases [c].file, out);
        CHECK (strcmp (out, cases [c].want) == 0, "ffprobe %s: '%s', want '%s'", cases [c].file,
               out, cases [c].want);
        s_dir_clear ();
    }
}

//  Thumbnail: the chosen frame at the video's size, JPEG close to the source, PNG exact.
static void
s_case_thumbs (void)
{
    const int W = 160, H = 120, N = 12, PICK = 5;
    const char *formats [2] = { "jpg", "png" };
    float *frame = malloc (sizeof (float) * W * H * 3);
    uint8_t *ref = malloc ((size_t) W * H * 3);
    for (int fi = 0; fi < 2; fi++) {
        for (int shorter = 0; shorter < 2; shorter++) {
            vdgx_video_options_t o;
            vdgx_video_options_init (&o);
            o.preset = "ultrafast";
            o.thumb_format = formats [fi];
            o.thumb_frame = shorter ? 100 : PICK;     //  past the end: the last frame
            o.sprite_count = 0;
            char err [512];
            CHECK (s_encode_pattern (s_path ("t.mp4"), &o, W, H, N, err, sizeof err) == 0, "%s", err);
            char name [64];
            snprintf (name, sizeof name, "t.thumb.%s", formats [fi]);
            s_decoded_t d;
            CHECK (s_decode (s_path (name), true, &d) == 0, "cannot open %s", name);
            CHECK (d.frames == 1 && d.width == W && d.height == H, "%s: %d frames %dx%d", name,
                   d.frames, d.width, d.height);
            if (d.frames == 1 && d.width == W && d.height == H) {
                int pick = shorter ? N - 1 : PICK;
                s_pattern (frame, W, H, pick);
                s_quantize (frame, ref, (size_t) W * H * 3);
                double p = s_psnr (ref, d.rgb [0], (size_t) W * H * 3);
                //  The neighbour frames must match worse: proves which frame was kept.
                s_pattern (frame, W, H, pick - 1);
                s_quantize (frame, ref + 0, (size_t) W * H * 3);
                double q = s_psnr (ref, d.rgb [0], (size_t) W * H * 3);
                s_log ("%s: PSNR %.2f dB against frame %d, %.2f dB against frame %d", name, p,
                       pick, q, pick - 1);
                CHECK (p >= (fi ? 60.0 : 40.0), "%s: PSNR %.2f dB", name, p);
                CHECK (q < p - 3, "%s: frame %d matches as well as %d", name, pick - 1, pick);
            }
            s_decoded_free (&d);
            CHECK (s_dir_count () == 2, "want the video and the thumbnail only");
            s_dir_clear ();
        }
    }
    free (frame);
    free (ref);
}

//  Decodes an image file to RGB24; returns the pixels (caller frees) and its size.
static uint8_t *
s_read_image (const char *name, int *w, int *h)
{
    s_decoded_t d;
    *w = *h = 0;
    if (s_decode (s_path (name), true, &d) || d.frames != 1) {
        s_decoded_free (&d);
        return NULL;
    }
    uint8_t *rgb = d.rgb [0];
    d.rgb [0] = NULL;
    *w = d.width;
    *h = d.height;
    s_decoded_free (&d);
    return rgb;
}

static void
s_case_sprite (void)
{
    //  (a) 24 frames, 16 tiles of 40x30 in a 4x4 grid: tile i is frame i * 23 / 15, the
    //  source box-averaged 4x4. JPEG + area scaling: PSNR >= 35 dB per tile.
    const int W = 160, H = 120, N = 24, TW = 40, TH = 30;
    vdgx_video_options_t o;
    vdgx_video_options_init (&o);
    o.preset = "ultrafast";
    o.thumbnail = false;
    o.sprite_count = 16;
    o.sprite_width = TW;
    char err [512];
    CHECK (s_encode_pattern (s_path ("s.mp4"), &o, W, H, N, err, sizeof err) == 0, "%s", err);
    int sw, sh;
    uint8_t *sheet = s_read_image ("s.sprite.jpg", &sw, &sh);
    CHECK (sheet && sw == 4 * TW && sh == 4 * TH, "sprite %dx%d, want %dx%d", sw, sh, 4 * TW, 4 * TH);
    if (sheet && sw == 4 * TW && sh == 4 * TH) {
        float *frame = malloc (sizeof (float) * W * H * 3);
        uint8_t *tile = malloc ((size_t) TW * TH * 3), *ref = malloc ((size_t) TW * TH * 3);
        double worst = 99;
        for (int i = 0; i < 16; i++) {
            s_pattern (frame, W, H, i * (N - 1) / 15);
            for (int y = 0; y < TH; y++)
                for (int x = 0; x < TW; x++)
                    for (int c = 0; c < 3; c++) {
                        int sum = 0;
                        for (int k = 0; k < 16; k++)
                            sum += s_q (frame [((size_t) (y * 4 + k / 4) * W + x * 4 + k % 4) * 3 + c]);
                        ref [((size_t) y * TW + x) * 3 + c] = (uint8_t) ((sum + 8) / 16);
                        tile [((size_t) y * TW + x) * 3 + c] =
                            sheet [((size_t) ((i / 4) * TH + y) * sw + (i % 4) * TW + x) * 3 + c];
                    }
            worst = fmin (worst, s_psnr (ref, tile, (size_t) TW * TH * 3));
        }
        s_log ("sprite 4x4 of %dx%d: worst tile PSNR %.2f dB", TW, TH, worst);
        CHECK (worst >= 35.0, "sprite tile PSNR %.2f dB", worst);
        free (frame);
        free (tile);
        free (ref);
    }
    free (sheet);
    CHECK (s_dir_count () == 2, "want the video and the sprite only");
    s_dir_clear ();

    //  (b) 100 frames, each one flat grey 20 + 2 * index, 4 tiles: the encoder keeps at most
    //  8 tiles, halving its sampling rate when full (stride 1, 2, 4, 8, 16), so it ends with
    //  frames 0, 16, ..., 96 and picks 0, 32, 64, 96 of them for a 2x2 grid of 32x24 tiles.
    vdgx_video_options_init (&o);
    o.preset = "ultrafast";
    o.thumbnail = false;
    o.sprite_count = 4;
    o.sprite_width = 32;
    vdgx_video_t *v = vdgx_video_new (s_path ("g.mp4"), &o, NULL);
    assert (v);
    uint8_t *grey = malloc (64 * 48 * 3);
    for (int t = 0; t < 100; t++) {
        memset (grey, 20 + 2 * t, 64 * 48 * 3);
        CHECK (vdgx_video_push_rgb24 (v, grey, 64, 48, 0) == 0, "%s", vdgx_video_error (v));
    }
    CHECK (vdgx_video_finish (v) == 0, "%s", vdgx_video_error (v));
    vdgx_video_destroy (&v);
    free (grey);
    sheet = s_read_image ("g.sprite.jpg", &sw, &sh);
    CHECK (sheet && sw == 64 && sh == 48, "sprite %dx%d, want 64x48", sw, sh);
    if (sheet && sw == 64 && sh == 48) {
        for (int i = 0; i < 4; i++) {
            int cx = (i % 2) * 32 + 16, cy = (i / 2) * 24 + 12;
            int value = sheet [((size_t) cy * sw + cx) * 3 + 1];
            int index = (int) lrint ((value - 20) / 2.0);
            s_log ("sprite tile %d: grey %d = frame %d", i, value, index);
            CHECK (abs (index - 32 * i) <= 1, "tile %d shows frame %d, want %d", i, index, 32 * i);
        }
    }
    free (sheet);
    s_dir_clear ();

    //  (c) fewer frames than tiles: 3 tiles in a 2x2 grid, the fourth cell black.
    vdgx_video_options_init (&o);
    o.preset = "ultrafast";
    o.thumbnail = false;
    o.sprite_count = 5;
    o.sprite_width = 32;
    CHECK (s_encode_pattern (s_path ("f.mp4"), &o, 64, 48, 3, err, sizeof err) == 0, "%s", err);
    sheet = s_read_image ("f.sprite.jpg", &sw, &sh);
    CHECK (sheet && sw == 64 && sh == 48, "sprite %dx%d, want 64x48", sw, sh);
    if (sheet && sw == 64 && sh == 48)
        CHECK (sheet [((size_t) 36 * sw + 48) * 3] < 8, "empty cell is not black");
    free (sheet);
    s_dir_clear ();
}

static bool
s_file_is (const char *path, const char *content)
{
    char buf [64] = "";
    FILE *f = fopen (path, "rb");
    if (!f)
        return false;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    return strcmp (buf, content) == 0;
}

//  Failures beyond the selftest's matrix: audio errors, thumbnails of a failed video, an
//  older file under the final name stays as it was.
static void
s_case_errors (void)
{
    char *err = NULL;
    vdgx_video_t *v = vdgx_video_new ("/dev/null/x.mp4", NULL, &err);
    CHECK (!v && err && strstr (err, "Not a directory"), "unwritable path: %s", err ? err : "-");
    s_log ("unwritable: %s", err);
    free (err);

    const char *path = s_path ("e.mp4");
    float frame [64 * 48 * 3];
    float pcm [2 * 1000];
    for (int i = 0; i < 2000; i++)
        pcm [i] = 0.1f * sinf (i * 0.1f);
    for (int c = 0; c < 4; c++) {
        FILE *old = fopen (path, "wb");
        fputs ("old", old);
        fclose (old);
        vdgx_video_options_t o;
        vdgx_video_options_init (&o);
        o.preset = "ultrafast";
        o.audio_channels = 2;
        o.audio_rate = 48000;
        v = vdgx_video_new (path, &o, NULL);
        assert (v);
        for (int t = 0; t < 3; t++) {
            s_pattern (frame, 64, 48, t);
            CHECK (vdgx_video_push_float (v, frame, 64, 48) == 0, "%s", vdgx_video_error (v));
        }
        const char *needle = NULL;
        int rc = 0;
        if (c == 0) {
            rc = vdgx_video_push_audio (v, pcm, 1000, 1, 48000);
            needle = "the options say 2 ch at 48000 Hz";
        }
        else
        if (c == 1) {
            rc = vdgx_video_push_audio (v, pcm, 1000, 2, 24000);
            needle = "the options say 2 ch at 48000 Hz";
        }
        else
        if (c == 2) {
            pcm [777] = NAN;
            rc = vdgx_video_push_audio (v, pcm, 1000, 2, 48000);
            pcm [777] = 0;
            needle = "not finite";
        }
        else {
            rc = vdgx_video_push_audio (v, NULL, 1000, 2, 48000);
            needle = "bad audio buffer";
        }
        CHECK (rc == -1, "case %d accepted", c);
        CHECK (vdgx_video_finish (v) == -1, "case %d finished", c);
        s_log ("audio case %d: %s", c, vdgx_video_error (v));
        CHECK (strstr (vdgx_video_error (v), needle), "case %d: '%s'", c, vdgx_video_error (v));
        CHECK (!vdgx_video_thumb_path (v) && !vdgx_video_sprite_path (v), "images of a failed video");
        vdgx_video_destroy (&v);
        CHECK (s_file_is (path, "old"), "case %d: the old file was touched", c);
        CHECK (s_dir_count () == 1, "case %d: stray files", c);
        s_dir_clear ();
    }

    //  A full disk, played by a 20 kB file size limit: the writes fail (EFBIG), finish()
    //  says so, and neither the temp file nor anything under the final names stays.
    struct rlimit old_limit, limit;
    getrlimit (RLIMIT_FSIZE, &old_limit);
    limit = old_limit;
    limit.rlim_cur = 20000;
    void (*old_handler) (int) = signal (SIGXFSZ, SIG_IGN);
    CHECK (setrlimit (RLIMIT_FSIZE, &limit) == 0, "setrlimit");
    vdgx_video_options_t o;
    vdgx_video_options_init (&o);
    o.preset = "ultrafast";
    o.crf = 0;                      //  lossless: 60 frames of 160x120 are far above 20 kB
    char msg [512];
    int rc = s_encode_pattern (path, &o, 160, 120, 60, msg, sizeof msg);
    setrlimit (RLIMIT_FSIZE, &old_limit);
    signal (SIGXFSZ, old_handler);
    s_log ("disk full: %s", msg);
    CHECK (rc == -1, "encode past the file size limit succeeded");
    CHECK (strstr (msg, "cannot write to") && strstr (msg, "File too large"), "message: %s", msg);
    CHECK (s_dir_count () == 0, "disk full: stray files");
    s_dir_clear ();
}

//  Model-based random sequences: random options, frame sizes, poisoned pixels and audio
//  chunks (fixed seed). The model says whether the encode must succeed; on success the file
//  must decode to the frames pushed, on failure nothing may stay in the directory.
static void
s_case_random (void)
{
    unsigned seed = 20261127;
    const char *codecs [2] = { "h264", "vp9" };
    float *frame = malloc (sizeof (float) * 34 * 34 * 3);
    float pcm [2 * 3000];
    for (int i = 0; i < 2 * 3000; i++)
        pcm [i] = 0.2f * sinf (i * 0.03f);
    int successes = 0, failures = 0;
    for (int run = 0; run < 40; run++) {
        vdgx_video_options_t o;
        vdgx_video_options_init (&o);
        o.codec = codecs [rand_r (&seed) % 2];
        o.preset = "ultrafast";
        o.audio_channels = rand_r (&seed) % 3;
        o.audio_rate = 16000;
        o.odd_size = (vdgx_video_odd_t) (rand_r (&seed) % 3);
        o.sprite_count = rand_r (&seed) % 4;
        o.sprite_width = 16;
        o.thumb_frame = rand_r (&seed) % 4;
        const char *path = s_path (strcmp (o.codec, "vp9") ? "r.mp4" : "r.webm");
        vdgx_video_t *v = vdgx_video_new (path, &o, NULL);
        assert (v);
        int w = 16 + rand_r (&seed) % 3, h = 16 + rand_r (&seed) % 3;
        bool ok = true;
        int frames = rand_r (&seed) % 5;
        if (frames == 0 || (((w | h) & 1) && o.odd_size == VDGX_VIDEO_ODD_REJECT))
            ok = false;
        for (int t = 0; t < frames; t++) {
            int fw = w, fh = h;
            if (rand_r (&seed) % 12 == 0) {
                fw += 2;                //  size change
                ok = false;
            }
            s_pattern (frame, fw, fh, t);
            if (rand_r (&seed) % 15 == 0) {
                frame [rand_r (&seed) % (fw * fh * 3)] = (rand_r (&seed) % 2) ? NAN : -INFINITY;
                ok = false;
            }
            vdgx_video_push_float (v, frame, fw, fh);
            if (o.audio_channels && rand_r (&seed) % 2) {
                int ch = o.audio_channels;
                if (rand_r (&seed) % 15 == 0) {
                    ch = 3 - ch;        //  wrong channel count
                    ok = false;
                }
                vdgx_video_push_audio (v, pcm, rand_r (&seed) % 3000, ch, 16000);
            }
        }
        int rc = vdgx_video_finish (v);
        s_log ("run %d: %s %dx%d %d frames audio %d -> %s %s", run, o.codec, w, h, frames,
               o.audio_channels, rc ? "failed" : "ok", vdgx_video_error (v));
        CHECK ((rc == 0) == ok, "run %d: finish %d, model says %s (%s)", run, rc,
               ok ? "ok" : "fail", vdgx_video_error (v));
        vdgx_video_destroy (&v);
        if (rc == 0) {
            s_decoded_t d;
            CHECK (s_decode (path, false, &d) == 0 && d.frames == frames, "run %d: %d frames back",
                   run, d.frames);
            s_decoded_free (&d);
            successes++;
        }
        else {
            CHECK (s_dir_count () == 0, "run %d: stray files after a failure", run);
            failures++;
        }
        s_dir_clear ();
    }
    s_log ("random: %d succeeded, %d failed as the model said", successes, failures);
    CHECK (successes >= 5 && failures >= 5, "the mix is too one-sided: %d/%d", successes, failures);
    free (frame);
}

//  --------------------------------------------------------------------------
//  Determinism: the same frames with the worker's settings give the same bytes, run after
//  run in one process, and in a child that may use only one CPU (libx264's automatic thread
//  count follows the CPUs a thread may run on, and it is written into the stream).

static uint8_t *
s_read_file (const char *path, size_t *size)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    uint8_t *data = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *grown = realloc (data, cap);
            assert (grown);
            data = grown;
        }
        got = fread (data + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose (f);
    *size = len;
    return data;
}

//  The options vdgx_runner uses on a CPU worker.
static void
s_worker_options (vdgx_video_options_t *o)
{
    vdgx_video_options_init (o);
    o->thumbnail = false;
    o->sprite_count = 0;
    o->odd_size = VDGX_VIDEO_ODD_PAD;
    o->try_nvenc = false;
}

//  Encodes a noisy moving pattern (noise defeats skip blocks, so every macroblock is coded).
static int
s_encode_noisy (const char *path, const vdgx_video_options_t *o, int w, int h, int n,
                bool rgb24)
{
    vdgx_video_t *v = vdgx_video_new (path, o, NULL);
    if (!v)
        return -1;
    float *frame = malloc (sizeof (float) * w * h * 3);
    uint8_t *bytes = malloc ((size_t) w * h * 3);
    assert (frame && bytes);
    uint32_t state = 12345;
    int rc = 0;
    for (int t = 0; t < n && rc == 0; t++) {
        s_pattern (frame, w, h, t);
        for (size_t i = 0; i < (size_t) w * h * 3; i++) {
            state = state * 1664525u + 1013904223u;
            frame [i] += 0.1f * ((float) (state >> 8) / 16777216.0f - 0.5f);
        }
        if (rgb24) {
            s_quantize (frame, bytes, (size_t) w * h * 3);
            rc = vdgx_video_push_rgb24 (v, bytes, w, h, 0);
        }
        else
            rc = vdgx_video_push_float (v, frame, w, h);
    }
    if (rc == 0)
        rc = vdgx_video_finish (v);
    vdgx_video_destroy (&v);
    free (bytes);
    free (frame);
    return rc;
}

//  Encodes path in a child process pinned to one CPU. Returns 0 or -1.
static int
s_encode_pinned (const char *path, const vdgx_video_options_t *o, int w, int h, int n)
{
    fflush (NULL);
    pid_t pid = fork ();
    if (pid == 0) {
        cpu_set_t set;
        CPU_ZERO (&set);
        if (sched_getaffinity (0, sizeof set, &set) == 0) {
            int first = 0;
            while (first < CPU_SETSIZE && !CPU_ISSET (first, &set))
                first++;
            CPU_ZERO (&set);
            CPU_SET (first, &set);
            sched_setaffinity (0, sizeof set, &set);
        }
        _exit (s_encode_noisy (path, o, w, h, n, false) == 0 ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid (pid, &status, 0) != pid)
        return -1;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

static void
s_case_determinism (void)
{
    const struct {
        int w, h, n;
        bool rgb24;
    } sizes [] = {
        { 64, 48, 17, false }, { 65, 49, 9, false }, { 63, 47, 9, true }, { 832, 480, 9, false },
    };
    const int runs = 4;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes [0]; s++) {
        vdgx_video_options_t o;
        s_worker_options (&o);
        int w = sizes [s].w, h = sizes [s].h, n = sizes [s].n;
        size_t first_size = 0;
        uint8_t *first = NULL;
        for (int run = 0; run <= runs; run++) {
            //  The last run happens in a child restricted to one CPU.
            const char *path = s_path ("det.mp4");
            int rc = run < runs ? s_encode_noisy (path, &o, w, h, n, sizes [s].rgb24)
                   : sizes [s].rgb24 ? 0 : s_encode_pinned (path, &o, w, h, n);
            if (run == runs && sizes [s].rgb24)
                break;
            CHECK (rc == 0, "%dx%d run %d: encode failed", w, h, run);
            size_t size = 0;
            uint8_t *data = s_read_file (path, &size);
            CHECK (data && size > 0, "%dx%d run %d: no file", w, h, run);
            unlink (path);
            if (!data)
                continue;
            if (!first) {
                first = data;
                first_size = size;
                s_log ("%dx%d%s: %zu bytes", w, h, sizes [s].rgb24 ? " rgb24" : "", size);
                continue;
            }
            CHECK (size == first_size && memcmp (data, first, size) == 0,
                   "%dx%d run %d%s: %zu bytes differ from run 0 (%zu bytes)", w, h, run,
                   run == runs ? " (one CPU)" : "", size, first_size);
            free (data);
        }
        free (first);
    }
    CHECK (s_dir_count () == 0, "files left behind");
}

int
main (int argc, char *argv [])
{
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0)
            s_verbose = true;
        else
            only = argv [i];
    }
    av_log_set_level (AV_LOG_ERROR);
    const char *tmp = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    snprintf (s_dir, sizeof s_dir, "%s/vdgx-test-video-XXXXXX", tmp);
    if (!mkdtemp (s_dir)) {
        perror ("mkdtemp");
        return 1;
    }
    struct {
        const char *name;
        void (*fn) (void);
    } cases [] = {
        { "h264", s_case_h264 }, { "rgb24", s_case_rgb24 }, { "codecs", s_case_codecs },
        { "audio", s_case_audio }, { "ffprobe", s_case_ffprobe }, { "thumbs", s_case_thumbs },
        { "sprite", s_case_sprite }, { "errors", s_case_errors }, { "random", s_case_random },
        { "determinism", s_case_determinism }, { "fragmented", s_case_fragmented },
    };
    int ran = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        if (only && strcmp (only, cases [c].name))
            continue;
        int before = s_failures;
        cases [c].fn ();
        printf (" * %s: %s\n", cases [c].name, s_failures == before ? "OK" : "FAILED");
        ran++;
    }
    s_dir_clear ();
    rmdir (s_dir);
    if (!ran) {
        fprintf (stderr, "unknown case '%s'\n", only);
        return 1;
    }
    return s_failures ? 1 : 0;
}
