/*  vdgx_video.c - streaming video encoder (see vdgx_video.h).

    Pipeline per frame: validate -> convert to yuv420p BT.709 limited range in our own loop
    (float input goes straight to YUV, no 8-bit RGB round trip) -> encoder -> muxer. Copies of
    the thumbnail frame and of the sprite tiles are taken on the way, so memory stays at a few
    frames whatever the video length.
*/
#include "vdgx_video.h"
#include "vdgx_log.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/cpu.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#define VDGX_VIDEO_MAX_SIDE 8192      //  larger than any model output; keeps sizes sane
//  Slack after every RGB24 image that goes through libswscale: its SIMD row readers load
//  16 bytes at a time and run past the end of the last row (valgrind: invalid read).
#define S_SWS_PAD 64

struct _vdgx_video_t {
    char *path, *tmp_path;
    char *thumb_path, *thumb_tmp;
    char *sprite_path, *sprite_tmp;
    vdgx_video_options_t opts;              //  string fields point into the arrays below
    char codec [8], container [8], preset [16], thumb_ext [4];
    char error [512];
    bool failed, finished, header_done;
    int in_w, in_h;                         //  size of the pushed frames
    int width, height;                      //  encoded size
    int frames;
    int muxed;                              //  video packets handed to the muxer
    bool key_next;                          //  fragmented: the next frame starts a fragment

    AVFormatContext *fmt;
    AVCodecContext *venc;
    AVStream *vst;
    AVFrame *vframe;
    AVPacket *pkt;
    char encoder_name [32];

    AVCodecContext *aenc;
    AVStream *ast;
    AVFrame *aframe;
    SwrContext *swr;
    AVAudioFifo *fifo;
    int64_t apts;                           //  next audio pts, in samples at the encoder rate
    int64_t audio_in;                       //  samples pushed

    uint8_t *rgb;                           //  encoded-size RGB24 of the current frame
    uint8_t *thumb;                         //  copy of the thumbnail frame (encoded size)
    bool thumb_set;
    bool thumb_written, sprite_written;    //  renamed into place by finish()
    uint8_t *tiles;                         //  sprite tiles, RGB24, tile_cap of them
    int tile_w, tile_h, tile_cap, tile_n, tile_stride;
    struct SwsContext *tile_sws;
};

//  --------------------------------------------------------------------------
//  Errors: the first one wins (later ones are usually its consequences).

static int
s_fail (vdgx_video_t *self, const char *fmt, ...)
{
    if (!self->failed) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (self->error, sizeof self->error, fmt, args);
        va_end (args);
        self->failed = true;
    }
    return -1;
}

static const char *
s_averr (int code, char *buf, size_t size)
{
    av_strerror (code, buf, size);
    return buf;
}

static char *
s_strdup_printf (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = NULL;
    if (vasprintf (&text, fmt, args) < 0)
        text = NULL;
    va_end (args);
    return text;
}

//  Temp file beside path: "<dir>/.<name>.tmp-XXXXXX". Returns the name (caller frees) or NULL.
static char *
s_make_temp (const char *path, int *errno_p)
{
    const char *slash = strrchr (path, '/');
    int dir_len = slash ? (int) (slash - path + 1) : 0;
    char *tmp = s_strdup_printf ("%.*s.%s.tmp-XXXXXX", dir_len, path, path + dir_len);
    if (!tmp) {
        *errno_p = ENOMEM;
        return NULL;
    }
    int fd = mkstemp (tmp);
    if (fd < 0) {
        *errno_p = errno;
        free (tmp);
        return NULL;
    }
    close (fd);
    return tmp;
}

static void
s_unlink_temp (char **tmp_p)
{
    if (*tmp_p) {
        unlink (*tmp_p);
        free (*tmp_p);
        *tmp_p = NULL;
    }
}

//  <base><suffix>, base = path without its extension (a dot in a directory name is no
//  extension, nor is a leading dot of the file name).
static char *
s_sibling (const char *path, const char *suffix)
{
    const char *slash = strrchr (path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr (name, '.');
    size_t base_len = (dot && dot > name) ? (size_t) (dot - path) : strlen (path);
    return s_strdup_printf ("%.*s%s", (int) base_len, path, suffix);
}

static const char *
s_extension (const char *path)
{
    const char *slash = strrchr (path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr (name, '.');
    return (dot && dot > name) ? dot + 1 : "";
}

//  --------------------------------------------------------------------------
//  Options

void
vdgx_video_options_init (vdgx_video_options_t *opts)
{
    assert (opts);
    memset (opts, 0, sizeof *opts);
    opts->codec = "h264";
    opts->fps = 16;
    opts->crf = -1;
    opts->preset = "medium";
    opts->try_nvenc = true;
    opts->odd_size = VDGX_VIDEO_ODD_REJECT;
    opts->thumbnail = true;
    opts->thumb_frame = 0;
    opts->thumb_format = "jpg";
    opts->sprite_count = 16;
    opts->sprite_width = 160;
}

static const char *const s_presets [] = {
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo", NULL
};

static int
s_preset_index (const char *preset)
{
    for (int i = 0; s_presets [i]; i++)
        if (strcmp (s_presets [i], preset) == 0)
            return i;
    return -1;
}

//  Validates opts into self->opts (with owned copies of the strings). Returns 0 or -1.
static int
s_check_options (vdgx_video_t *self, const vdgx_video_options_t *in)
{
    vdgx_video_options_t *o = &self->opts;
    *o = *in;

    const char *codec = (in->codec && *in->codec) ? in->codec : "h264";
    if (strcasecmp (codec, "h264") == 0 || strcasecmp (codec, "avc") == 0)
        strcpy (self->codec, "h264");
    else
    if (strcasecmp (codec, "hevc") == 0 || strcasecmp (codec, "h265") == 0)
        strcpy (self->codec, "hevc");
    else
    if (strcasecmp (codec, "vp9") == 0)
        strcpy (self->codec, "vp9");
    else
        return s_fail (self, "unknown codec '%s' (h264, hevc or vp9)", codec);
    o->codec = self->codec;

    const char *container = in->container;
    if (!container || !*container) {
        const char *ext = s_extension (self->path);
        if (strcasecmp (ext, "webm") == 0)
            container = "webm";
        else
        if (strcasecmp (ext, "mp4") == 0 || strcasecmp (ext, "m4v") == 0
        ||  strcasecmp (ext, "mov") == 0)
            container = "mp4";
        else
            container = strcmp (self->codec, "vp9") == 0 ? "webm" : "mp4";
    }
    if (strcasecmp (container, "mp4") == 0)
        strcpy (self->container, "mp4");
    else
    if (strcasecmp (container, "webm") == 0)
        strcpy (self->container, "webm");
    else
        return s_fail (self, "unknown container '%s' (mp4 or webm)", container);
    o->container = self->container;
    if (strcmp (self->container, "webm") == 0 && strcmp (self->codec, "vp9") != 0)
        return s_fail (self, "codec %s cannot go into webm (use vp9 or mp4)", self->codec);
    if (in->fragmented && strcmp (self->container, "mp4") != 0)
        return s_fail (self, "fragmented output needs the mp4 container, not %s", self->container);

    if (in->width < 0 || in->height < 0 || in->width > VDGX_VIDEO_MAX_SIDE
    ||  in->height > VDGX_VIDEO_MAX_SIDE || (in->width == 0) != (in->height == 0))
        return s_fail (self, "bad size %dx%d (1..%d each, or both 0 = from the first frame)",
                       in->width, in->height, VDGX_VIDEO_MAX_SIDE);
    if (in->fps <= 0 || in->fps > 240)
        return s_fail (self, "bad fps %d (1..240)", in->fps);
    if (in->crf == -1)
        o->crf = 18;
    else
    if (in->crf < 0 || in->crf > 51)
        return s_fail (self, "bad crf %d (0..51, or -1 = default)", in->crf);

    const char *preset = (in->preset && *in->preset) ? in->preset : "medium";
    if (s_preset_index (preset) < 0)
        return s_fail (self, "unknown preset '%s' (ultrafast .. veryslow)", preset);
    snprintf (self->preset, sizeof self->preset, "%s", preset);
    o->preset = self->preset;

    if (in->odd_size != VDGX_VIDEO_ODD_REJECT && in->odd_size != VDGX_VIDEO_ODD_CROP
    &&  in->odd_size != VDGX_VIDEO_ODD_PAD)
        return s_fail (self, "bad odd_size policy %d", (int) in->odd_size);

    if (in->audio_channels != 0) {
        if (in->audio_channels != 1 && in->audio_channels != 2)
            return s_fail (self, "bad audio channels %d (1 or 2)", in->audio_channels);
        if (in->audio_rate != 16000 && in->audio_rate != 24000 && in->audio_rate != 48000)
            return s_fail (self, "bad audio rate %d (16000, 24000 or 48000)", in->audio_rate);
    }

    const char *tf = (in->thumb_format && *in->thumb_format) ? in->thumb_format : "jpg";
    if (strcasecmp (tf, "jpg") == 0 || strcasecmp (tf, "jpeg") == 0)
        strcpy (self->thumb_ext, "jpg");
    else
    if (strcasecmp (tf, "png") == 0)
        strcpy (self->thumb_ext, "png");
    else
        return s_fail (self, "unknown thumbnail format '%s' (jpg or png)", tf);
    o->thumb_format = self->thumb_ext;
    if (in->thumb_frame < 0)
        return s_fail (self, "bad thumb_frame %d", in->thumb_frame);
    if (in->sprite_count < 0 || in->sprite_count > 256)
        return s_fail (self, "bad sprite_count %d (0..256)", in->sprite_count);
    if (in->sprite_count > 0 && (in->sprite_width < 16 || in->sprite_width > 1024))
        return s_fail (self, "bad sprite_width %d (16..1024)", in->sprite_width);
    return 0;
}

//  --------------------------------------------------------------------------
//  Audio: float interleaved in -> swr (rate/format) -> FIFO -> encoder frames of frame_size.

static int
s_open_audio (vdgx_video_t *self)
{
    char eb [AV_ERROR_MAX_STRING_SIZE];
    bool webm = strcmp (self->container, "webm") == 0;
    const char *name = webm ? "libopus" : "aac";
    const AVCodec *codec = avcodec_find_encoder_by_name (name);
    if (!codec)
        return s_fail (self, "audio encoder %s is not available", name);
    self->aenc = avcodec_alloc_context3 (codec);
    if (!self->aenc)
        return s_fail (self, "out of memory");
    AVCodecContext *c = self->aenc;
    //  Opus only runs at 48 kHz; AAC keeps the source rate.
    c->sample_rate = webm ? 48000 : self->opts.audio_rate;
    c->sample_fmt = webm ? AV_SAMPLE_FMT_FLT : AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default (&c->ch_layout, self->opts.audio_channels);
    c->bit_rate = 64000 * self->opts.audio_channels;
    c->time_base = (AVRational) { 1, c->sample_rate };
    if (self->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2 (c, codec, NULL);
    if (rc < 0)
        return s_fail (self, "cannot open audio encoder %s: %s", name, s_averr (rc, eb, sizeof eb));

    AVChannelLayout in_layout;
    av_channel_layout_default (&in_layout, self->opts.audio_channels);
    rc = swr_alloc_set_opts2 (&self->swr, &c->ch_layout, c->sample_fmt, c->sample_rate,
                              &in_layout, AV_SAMPLE_FMT_FLT, self->opts.audio_rate, 0, NULL);
    av_channel_layout_uninit (&in_layout);
    if (rc < 0 || swr_init (self->swr) < 0)
        return s_fail (self, "cannot set up audio resampling");
    int frame_size = c->frame_size > 0 ? c->frame_size : 1024;
    self->fifo = av_audio_fifo_alloc (c->sample_fmt, self->opts.audio_channels, frame_size * 4);
    self->aframe = av_frame_alloc ();
    if (!self->fifo || !self->aframe)
        return s_fail (self, "out of memory");
    return 0;
}

static int s_write_packets (vdgx_video_t *self, AVCodecContext *enc, AVStream *st);

//  Sends full frames from the FIFO to the encoder; with flush, the partial last one too.
static int
s_drain_audio (vdgx_video_t *self, bool flush)
{
    char eb [AV_ERROR_MAX_STRING_SIZE];
    AVCodecContext *c = self->aenc;
    int frame_size = c->frame_size > 0 ? c->frame_size : 1024;
    while (av_audio_fifo_size (self->fifo) >= frame_size
       || (flush && av_audio_fifo_size (self->fifo) > 0)) {
        int n = FFMIN (frame_size, av_audio_fifo_size (self->fifo));
        AVFrame *f = self->aframe;
        av_frame_unref (f);
        f->nb_samples = n;
        f->format = c->sample_fmt;
        f->sample_rate = c->sample_rate;
        if (av_channel_layout_copy (&f->ch_layout, &c->ch_layout) < 0
        ||  av_frame_get_buffer (f, 0) < 0)
            return s_fail (self, "out of memory");
        if (av_audio_fifo_read (self->fifo, (void **) f->data, n) != n)
            return s_fail (self, "audio FIFO read failed");
        f->pts = self->apts;
        self->apts += n;
        int rc = avcodec_send_frame (c, f);
        if (rc < 0)
            return s_fail (self, "audio encoding failed: %s", s_averr (rc, eb, sizeof eb));
        if (s_write_packets (self, c, self->ast))
            return -1;
    }
    return 0;
}

//  Resamples in (NULL = flush the resampler) into the FIFO.
static int
s_audio_to_fifo (vdgx_video_t *self, const float *pcm, int samples)
{
    AVCodecContext *c = self->aenc;
    int out_max = swr_get_out_samples (self->swr, samples);
    if (out_max < 0)
        return s_fail (self, "audio resampling failed");
    if (out_max == 0)
        return 0;
    uint8_t **planes = NULL;
    if (av_samples_alloc_array_and_samples (&planes, NULL, self->opts.audio_channels, out_max,
                                            c->sample_fmt, 0) < 0)
        return s_fail (self, "out of memory");
    const uint8_t *in [1] = { (const uint8_t *) pcm };
    int got = swr_convert (self->swr, planes, out_max, pcm ? in : NULL, pcm ? samples : 0);
    int rc = 0;
    if (got < 0)
        rc = s_fail (self, "audio resampling failed");
    else
    if (got > 0 && av_audio_fifo_write (self->fifo, (void **) planes, got) < got)
        rc = s_fail (self, "out of memory");
    av_freep (&planes [0]);
    av_freep (&planes);
    return rc;
}

//  --------------------------------------------------------------------------
//  Video encoder and muxer header (at the first frame, once the size is known).

//  x264 preset index 0..9 -> nvenc p1..p7.
static const char *
s_nvenc_preset (int idx)
{
    static const char *const map [] = { "p1", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p7", "p7" };
    return map [idx];
}

//  libx264 (core 164) AVX-512 kernels read uninitialised memory on frames whose sides are
//  not multiples of 16, so the output depended on what the heap held before (same frames,
//  different bytes, frame 0 equal, later frames off by up to ~20 levels). On AVX-512 CPUs we
//  hand x264 the CPU's other SIMD flags explicitly, which leaves AVX-512 out; elsewhere x264
//  detects its own. Writes "asm=..." into buf and returns true when it is needed.
static bool
s_x264_asm_flags (char *buf, size_t size)
{
#if defined(__x86_64__) || defined(__i386__)
    int cpu = av_get_cpu_flags ();
    if (!(cpu & AV_CPU_FLAG_AVX512))
        return false;
    static const struct { int flag; const char *name; } map [] = {
        { AV_CPU_FLAG_MMXEXT, "MMX2" }, { AV_CPU_FLAG_SSE2, "SSE2" }, { AV_CPU_FLAG_SSE3, "SSE3" },
        { AV_CPU_FLAG_SSSE3, "SSSE3" }, { AV_CPU_FLAG_SSE4, "SSE4.1" },
        { AV_CPU_FLAG_SSE42, "SSE4.2" }, { AV_CPU_FLAG_AVX, "AVX" }, { AV_CPU_FLAG_XOP, "XOP" },
        { AV_CPU_FLAG_FMA4, "FMA4" }, { AV_CPU_FLAG_FMA3, "FMA3" }, { AV_CPU_FLAG_BMI2, "BMI2" },
        { AV_CPU_FLAG_AVX2, "AVX2" },
    };
    size_t len = (size_t) snprintf (buf, size, "asm=");
    for (size_t i = 0; i < sizeof map / sizeof map [0] && len < size; i++)
        if (cpu & map [i].flag)
            len += (size_t) snprintf (buf + len, size - len, "%s%s", len > 4 ? "," : "",
                                      map [i].name);
    return len > 4 && len < size;
#else
    (void) buf;
    (void) size;
    return false;
#endif
}

static int
s_try_encoder (vdgx_video_t *self, const char *name, bool quiet_fail, int *rc_p)
{
    const AVCodec *codec = avcodec_find_encoder_by_name (name);
    if (!codec) {
        *rc_p = AVERROR_ENCODER_NOT_FOUND;
        return -1;
    }
    AVCodecContext *c = avcodec_alloc_context3 (codec);
    if (!c) {
        *rc_p = AVERROR (ENOMEM);
        return -1;
    }
    c->width = self->width;
    c->height = self->height;
    c->time_base = (AVRational) { 1, self->opts.fps };
    c->framerate = (AVRational) { self->opts.fps, 1 };
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->sample_aspect_ratio = (AVRational) { 1, 1 };
    c->color_primaries = AVCOL_PRI_BT709;
    c->color_trc = AVCOL_TRC_BT709;
    c->colorspace = AVCOL_SPC_BT709;
    c->color_range = AVCOL_RANGE_MPEG;
    //  Our chroma is the mean of each 2x2 block, i.e. sited at its centre.
    c->chroma_sample_location = AVCHROMA_LOC_CENTER;
    c->thread_count = 0;
    if (self->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

    int pidx = s_preset_index (self->opts.preset);
    char crf [8];
    snprintf (crf, sizeof crf, "%d", self->opts.crf);
    AVDictionary *d = NULL;
    if (strstr (name, "nvenc")) {
        av_dict_set (&d, "preset", s_nvenc_preset (pidx), 0);
        av_dict_set (&d, "rc", "vbr", 0);
        av_dict_set (&d, "cq", crf, 0);
        av_dict_set (&d, "b", "0", 0);
        if (self->opts.fragmented) {
            //  Every pushed frame leaves the encoder at once (see the header).
            av_dict_set (&d, "zerolatency", "1", 0);
            av_dict_set (&d, "delay", "0", 0);
            c->max_b_frames = 0;
        }
    }
    else
    if (strcmp (name, "libvpx-vp9") == 0) {
        //  x264 preset -> libvpx cpu-used: faster presets trade quality for speed the same way.
        static const char *const cpu [] = { "8", "7", "6", "5", "4", "3", "2", "1", "0", "0" };
        av_dict_set (&d, "crf", crf, 0);
        av_dict_set (&d, "b", "0", 0);
        av_dict_set (&d, "deadline", "good", 0);
        av_dict_set (&d, "cpu-used", cpu [pidx], 0);
        av_dict_set (&d, "row-mt", "1", 0);
    }
    else {
        av_dict_set (&d, "crf", crf, 0);
        av_dict_set (&d, "preset", self->opts.preset, 0);
        if (self->opts.fragmented)
            av_dict_set (&d, "tune", "zerolatency", 0);
        if (strcmp (name, "libx265") == 0)
            av_dict_set (&d, "x265-params", "log-level=error", 0);
        else {
            //  Same frames, same bytes on every host: x264 writes its thread count into the
            //  stream, and "auto" follows the CPUs this thread may use. (x264 caps it by the
            //  frame height; pixels do not depend on it at CRF.)
            c->thread_count = 4;
            char asm_flags [128];
            if (s_x264_asm_flags (asm_flags, sizeof asm_flags))
                av_dict_set (&d, "x264-params", asm_flags, 0);
        }
    }
    //  A missing GPU/driver makes nvenc fail loudly inside libavcodec; the fallback is
    //  expected, so keep its noise out of the log (one line of ours says what happened).
    int level = av_log_get_level ();
    if (quiet_fail)
        av_log_set_level (AV_LOG_QUIET);
    int rc = avcodec_open2 (c, codec, &d);
    if (quiet_fail)
        av_log_set_level (level);
    av_dict_free (&d);
    if (rc < 0) {
        avcodec_free_context (&c);
        *rc_p = rc;
        return -1;
    }
    self->venc = c;
    snprintf (self->encoder_name, sizeof self->encoder_name, "%s", name);
    return 0;
}

static int
s_open_video (vdgx_video_t *self)
{
    char eb [AV_ERROR_MAX_STRING_SIZE];
    const char *names [2] = { NULL, NULL };
    if (strcmp (self->codec, "h264") == 0) {
        names [0] = self->opts.try_nvenc ? "h264_nvenc" : NULL;
        names [1] = "libx264";
    }
    else
    if (strcmp (self->codec, "hevc") == 0) {
        names [0] = self->opts.try_nvenc ? "hevc_nvenc" : NULL;
        names [1] = "libx265";
    }
    else
        names [1] = "libvpx-vp9";

    int rc = 0;
    if (names [0] && avcodec_find_encoder_by_name (names [0])) {
        if (s_try_encoder (self, names [0], true, &rc) == 0)
            vdgx_log_info ("video.encoder", "encoder=%s size=%dx%d", names [0],
                           self->width, self->height);
        else
            vdgx_log_info ("video.nvenc_fallback", "encoder=%s error=\"%s\" using=%s",
                           names [0], s_averr (rc, eb, sizeof eb), names [1]);
    }
    if (!self->venc && s_try_encoder (self, names [1], false, &rc))
        return s_fail (self, "cannot open video encoder %s at %dx%d: %s", names [1],
                       self->width, self->height, s_averr (rc, eb, sizeof eb));

    self->vframe = av_frame_alloc ();
    if (!self->vframe)
        return s_fail (self, "out of memory");
    self->vframe->format = AV_PIX_FMT_YUV420P;
    self->vframe->width = self->width;
    self->vframe->height = self->height;
    self->vframe->color_primaries = AVCOL_PRI_BT709;
    self->vframe->color_trc = AVCOL_TRC_BT709;
    self->vframe->colorspace = AVCOL_SPC_BT709;
    self->vframe->color_range = AVCOL_RANGE_MPEG;
    if (av_frame_get_buffer (self->vframe, 0) < 0)
        return s_fail (self, "out of memory");
    return 0;
}

static int
s_write_header (vdgx_video_t *self)
{
    char eb [AV_ERROR_MAX_STRING_SIZE];
    if (s_open_video (self))
        return -1;
    self->vst = avformat_new_stream (self->fmt, NULL);
    if (!self->vst)
        return s_fail (self, "out of memory");
    int rc = avcodec_parameters_from_context (self->vst->codecpar, self->venc);
    if (rc < 0)
        return s_fail (self, "cannot set stream parameters: %s", s_averr (rc, eb, sizeof eb));
    self->vst->time_base = self->venc->time_base;
    self->vst->avg_frame_rate = self->venc->framerate;
    self->vst->r_frame_rate = self->venc->framerate;
    //  Apple players want hvc1 (parameter sets in the sample description) for HEVC in MP4.
    if (strcmp (self->codec, "hevc") == 0 && strcmp (self->container, "mp4") == 0)
        self->vst->codecpar->codec_tag = MKTAG ('h', 'v', 'c', '1');

    if (self->aenc) {
        self->ast = avformat_new_stream (self->fmt, NULL);
        if (!self->ast)
            return s_fail (self, "out of memory");
        rc = avcodec_parameters_from_context (self->ast->codecpar, self->aenc);
        if (rc < 0)
            return s_fail (self, "cannot set audio parameters: %s", s_averr (rc, eb, sizeof eb));
        self->ast->time_base = self->aenc->time_base;
    }
    AVDictionary *d = NULL;
    if (self->opts.fragmented)
        av_dict_set (&d, "movflags", "+frag_custom+empty_moov+default_base_moof", 0);
    else
    if (strcmp (self->container, "mp4") == 0)
        av_dict_set (&d, "movflags", "+faststart", 0);
    rc = avformat_write_header (self->fmt, &d);
    av_dict_free (&d);
    if (rc < 0)
        return s_fail (self, "cannot write the %s header: %s", self->container,
                       s_averr (rc, eb, sizeof eb));
    self->header_done = true;
    //  Audio that came before the first frame waited in the FIFO.
    if (self->aenc && s_drain_audio (self, false))
        return -1;
    return 0;
}

static int
s_write_packets (vdgx_video_t *self, AVCodecContext *enc, AVStream *st)
{
    char eb [AV_ERROR_MAX_STRING_SIZE];
    while (true) {
        int rc = avcodec_receive_packet (enc, self->pkt);
        if (rc == AVERROR (EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return s_fail (self, "encoding failed: %s", s_averr (rc, eb, sizeof eb));
        if (self->pkt->duration == 0 && enc->codec_type == AVMEDIA_TYPE_VIDEO)
            self->pkt->duration = 1;        //  one frame at 1/fps: gives the last frame a length
        av_packet_rescale_ts (self->pkt, enc->time_base, st->time_base);
        self->pkt->stream_index = st->index;
        rc = av_interleaved_write_frame (self->fmt, self->pkt);
        //  AVIO keeps a failed write (disk full) in pb->error; catch it now, not at the end.
        if (rc >= 0 && self->fmt->pb->error < 0)
            rc = self->fmt->pb->error;
        if (rc < 0)
            return s_fail (self, "cannot write to %s: %s", self->tmp_path,
                           s_averr (rc, eb, sizeof eb));
        if (enc == self->venc)
            self->muxed++;
    }
}

//  --------------------------------------------------------------------------
//  Colour conversion. BT.709, limited range: Y 16..235, Cb/Cr 16..240. Chroma is the mean of
//  each 2x2 block. Source pixel (x, y) of encoded pixel (x, y) is clamped to the input size,
//  which gives both cropping (encoded < input) and edge-repeat padding (encoded > input).

#define KR 0.2126f
#define KB 0.0722f
#define KG (1.0f - KR - KB)

static inline uint8_t
s_u8 (float v)
{
    return (uint8_t) (v < 0.0f ? 0 : v > 255.0f ? 255 : (int) (v + 0.5f));
}

static inline float
s_unit (float v)
{
    float u = (v + 1.0f) * 0.5f;
    return u < 0.0f ? 0.0f : u > 1.0f ? 1.0f : u;
}

//  Converts a frame given as [0,1] RGB through a fetch function into vframe. Written once for
//  both inputs with a macro, so the inner loop inlines the fetch.
#define S_TO_YUV(NAME, TYPE, FETCH)                                                         \
static void                                                                                 \
NAME (vdgx_video_t *self, const TYPE *src, size_t stride)                                   \
{                                                                                           \
    AVFrame *f = self->vframe;                                                              \
    const int W = self->width, H = self->height, iw = self->in_w, ih = self->in_h;          \
    for (int y = 0; y < H; y += 2) {                                                        \
        const TYPE *r0 = src + (size_t) FFMIN (y, ih - 1) * stride;                         \
        const TYPE *r1 = src + (size_t) FFMIN (y + 1, ih - 1) * stride;                     \
        uint8_t *y0 = f->data [0] + (size_t) y * f->linesize [0];                           \
        uint8_t *y1 = y0 + f->linesize [0];                                                 \
        uint8_t *cb = f->data [1] + (size_t) (y / 2) * f->linesize [1];                     \
        uint8_t *cr = f->data [2] + (size_t) (y / 2) * f->linesize [2];                     \
        for (int x = 0; x < W; x += 2) {                                                    \
            const size_t a = (size_t) FFMIN (x, iw - 1) * 3;                                \
            const size_t b = (size_t) FFMIN (x + 1, iw - 1) * 3;                            \
            float R0 = FETCH (r0 [a]), G0 = FETCH (r0 [a + 1]), B0 = FETCH (r0 [a + 2]);    \
            float R1 = FETCH (r0 [b]), G1 = FETCH (r0 [b + 1]), B1 = FETCH (r0 [b + 2]);    \
            float R2 = FETCH (r1 [a]), G2 = FETCH (r1 [a + 1]), B2 = FETCH (r1 [a + 2]);    \
            float R3 = FETCH (r1 [b]), G3 = FETCH (r1 [b + 1]), B3 = FETCH (r1 [b + 2]);    \
            y0 [x]     = s_u8 (16.0f + 219.0f * (KR * R0 + KG * G0 + KB * B0));             \
            y0 [x + 1] = s_u8 (16.0f + 219.0f * (KR * R1 + KG * G1 + KB * B1));             \
            y1 [x]     = s_u8 (16.0f + 219.0f * (KR * R2 + KG * G2 + KB * B2));             \
            y1 [x + 1] = s_u8 (16.0f + 219.0f * (KR * R3 + KG * G3 + KB * B3));             \
            float R = 0.25f * (R0 + R1 + R2 + R3);                                          \
            float G = 0.25f * (G0 + G1 + G2 + G3);                                          \
            float B = 0.25f * (B0 + B1 + B2 + B3);                                          \
            float L = KR * R + KG * G + KB * B;                                             \
            cb [x / 2] = s_u8 (128.0f + 224.0f * (B - L) / (2.0f * (1.0f - KB)));           \
            cr [x / 2] = s_u8 (128.0f + 224.0f * (R - L) / (2.0f * (1.0f - KR)));           \
        }                                                                                   \
    }                                                                                       \
}

#define S_FETCH_FLOAT(v) s_unit (v)
#define S_FETCH_U8(v) ((float) (v) * (1.0f / 255.0f))
S_TO_YUV (s_float_to_yuv, float, S_FETCH_FLOAT)
S_TO_YUV (s_rgb24_to_yuv, uint8_t, S_FETCH_U8)

//  Encoded-size RGB24 of the current frame into self->rgb (for the thumbnail and sprite).
static void
s_float_to_rgb (vdgx_video_t *self, const float *src)
{
    for (int y = 0; y < self->height; y++) {
        const float *row = src + (size_t) FFMIN (y, self->in_h - 1) * self->in_w * 3;
        uint8_t *out = self->rgb + (size_t) y * self->width * 3;
        for (int x = 0; x < self->width; x++) {
            const float *p = row + (size_t) FFMIN (x, self->in_w - 1) * 3;
            for (int c = 0; c < 3; c++)
                out [x * 3 + c] = s_u8 (s_unit (p [c]) * 255.0f);
        }
    }
}

static void
s_rgb24_to_rgb (vdgx_video_t *self, const uint8_t *src, size_t stride)
{
    for (int y = 0; y < self->height; y++) {
        const uint8_t *row = src + (size_t) FFMIN (y, self->in_h - 1) * stride;
        uint8_t *out = self->rgb + (size_t) y * self->width * 3;
        int n = FFMIN (self->width, self->in_w);
        memcpy (out, row, (size_t) n * 3);
        if (self->width > n)        //  padded column
            memcpy (out + (size_t) n * 3, row + (size_t) (n - 1) * 3, 3);
    }
}

//  --------------------------------------------------------------------------
//  Thumbnail and sprite tiles

//  Does frame number index need an RGB copy (thumbnail or sprite tile)?
static bool
s_wants_rgb (vdgx_video_t *self, int index)
{
    if (self->opts.thumbnail && index <= self->opts.thumb_frame)
        return true;        //  until the chosen frame: the video may end before it
    return self->tiles && index % self->tile_stride == 0;
}

static int
s_take_copies (vdgx_video_t *self, int index)
{
    size_t frame_bytes = (size_t) self->width * self->height * 3;
    if (self->opts.thumbnail && index <= self->opts.thumb_frame) {
        memcpy (self->thumb, self->rgb, frame_bytes);
        self->thumb_set = true;
    }
    if (self->tiles && index % self->tile_stride == 0) {
        size_t tile_bytes = (size_t) self->tile_w * self->tile_h * 3;
        if (self->tile_n == self->tile_cap) {
            //  Full: keep every other tile and sample half as often. The kept tiles stay
            //  evenly spaced, and memory stays at tile_cap tiles for any video length.
            for (int i = 0; i < self->tile_cap / 2; i++)
                memmove (self->tiles + i * tile_bytes, self->tiles + 2 * i * tile_bytes,
                         tile_bytes);
            self->tile_n = self->tile_cap / 2;
            self->tile_stride *= 2;
            if (index % self->tile_stride != 0)
                return 0;
        }
        const uint8_t *in [1] = { self->rgb };
        int in_stride [1] = { self->width * 3 };
        uint8_t *out [1] = { self->tiles + self->tile_n * tile_bytes };
        int out_stride [1] = { self->tile_w * 3 };
        if (sws_scale (self->tile_sws, in, in_stride, 0, self->height, out, out_stride) <= 0)
            return s_fail (self, "sprite downscale failed");
        self->tile_n++;
    }
    return 0;
}

static int
s_setup_copies (vdgx_video_t *self)
{
    size_t frame_bytes = (size_t) self->width * self->height * 3;
    self->rgb = malloc (frame_bytes + S_SWS_PAD);
    if (!self->rgb)
        return s_fail (self, "out of memory");
    if (self->opts.thumbnail) {
        self->thumb = malloc (frame_bytes + S_SWS_PAD);
        if (!self->thumb)
            return s_fail (self, "out of memory");
    }
    if (self->opts.sprite_count > 0) {
        self->tile_w = FFMIN (self->opts.sprite_width, self->width) & ~1;
        self->tile_h = (int) lrint ((double) self->tile_w * self->height / self->width) & ~1;
        if (self->tile_h < 2)
            self->tile_h = 2;
        self->tile_cap = 2 * self->opts.sprite_count;
        self->tile_stride = 1;
        self->tiles = malloc ((size_t) self->tile_cap * self->tile_w * self->tile_h * 3
                              + S_SWS_PAD);
        self->tile_sws = sws_getContext (self->width, self->height, AV_PIX_FMT_RGB24,
                                         self->tile_w, self->tile_h, AV_PIX_FMT_RGB24,
                                         SWS_AREA, NULL, NULL, NULL);
        if (!self->tiles || !self->tile_sws)
            return s_fail (self, "out of memory");
    }
    return 0;
}

//  Encodes one RGB24 image as JPEG or PNG into a temp file beside final. Returns 0 or -1.
static int
s_write_image (vdgx_video_t *self, const uint8_t *rgb, int w, int h, const char *final,
               char **tmp_p)
{
    char eb [AV_ERROR_MAX_STRING_SIZE];
    bool png = strcmp (self->thumb_ext, "png") == 0;
    const AVCodec *codec = avcodec_find_encoder (png ? AV_CODEC_ID_PNG : AV_CODEC_ID_MJPEG);
    if (!codec)
        return s_fail (self, "no %s encoder", self->thumb_ext);
    AVCodecContext *c = avcodec_alloc_context3 (codec);
    AVFrame *f = av_frame_alloc ();
    AVPacket *pkt = av_packet_alloc ();
    struct SwsContext *sws = NULL;
    FILE *file = NULL;
    int rc = -1;
    if (!c || !f || !pkt) {
        s_fail (self, "out of memory");
        goto done;
    }
    c->width = w;
    c->height = h;
    c->time_base = (AVRational) { 1, 1 };
    //  JPEG is full-range BT.601 YCbCr (JFIF). 4:4:4 and qscale 2 keep it near-transparent:
    //  4:2:0 chroma smears colour across the sharp tile borders of a sprite sheet.
    c->pix_fmt = png ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_YUVJ444P;
    if (!png) {
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * 2;
        c->color_range = AVCOL_RANGE_JPEG;
    }
    int arc = avcodec_open2 (c, codec, NULL);
    if (arc < 0) {
        s_fail (self, "cannot open the %s encoder: %s", self->thumb_ext,
                s_averr (arc, eb, sizeof eb));
        goto done;
    }
    f->format = c->pix_fmt;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer (f, 0) < 0) {
        s_fail (self, "out of memory");
        goto done;
    }
    if (png)
        av_image_copy_plane (f->data [0], f->linesize [0], rgb, w * 3, w * 3, h);
    else {
        f->quality = c->global_quality;
        f->color_range = AVCOL_RANGE_JPEG;
        sws = sws_getContext (w, h, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUVJ444P,
                              SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
        if (!sws) {
            s_fail (self, "out of memory");
            goto done;
        }
        const uint8_t *in [1] = { rgb };
        int in_stride [1] = { w * 3 };
        sws_scale (sws, in, in_stride, 0, h, f->data, f->linesize);
    }
    if ((arc = avcodec_send_frame (c, f)) < 0
    ||  (arc = avcodec_send_frame (c, NULL)) < 0
    ||  (arc = avcodec_receive_packet (c, pkt)) < 0) {
        s_fail (self, "%s encoding failed: %s", self->thumb_ext, s_averr (arc, eb, sizeof eb));
        goto done;
    }
    int err = 0;
    *tmp_p = s_make_temp (final, &err);
    if (!*tmp_p) {
        s_fail (self, "cannot create a temp file beside %s: %s", final, strerror (err));
        goto done;
    }
    file = fopen (*tmp_p, "wb");
    if (!file || fwrite (pkt->data, 1, (size_t) pkt->size, file) != (size_t) pkt->size) {
        s_fail (self, "cannot write %s: %s", *tmp_p, strerror (errno));
        goto done;
    }
    if (fclose (file)) {
        file = NULL;
        s_fail (self, "cannot write %s: %s", *tmp_p, strerror (errno));
        goto done;
    }
    file = NULL;
    //  mkstemp makes 0600 files; the outputs are ordinary files, readable like the video.
    chmod (*tmp_p, 0644);
    rc = 0;
done:
    if (file)
        fclose (file);
    sws_freeContext (sws);
    av_packet_free (&pkt);
    av_frame_free (&f);
    avcodec_free_context (&c);
    return rc;
}

static int
s_write_sprite (vdgx_video_t *self)
{
    int n = FFMIN (self->opts.sprite_count, self->tile_n);
    int cols = (int) ceil (sqrt ((double) n));
    int rows = (n + cols - 1) / cols;
    int sw = cols * self->tile_w, sh = rows * self->tile_h;
    size_t tile_bytes = (size_t) self->tile_w * self->tile_h * 3;
    uint8_t *sheet = calloc ((size_t) sw * sh * 3 + S_SWS_PAD, 1);    //  empty cells: black
    if (!sheet)
        return s_fail (self, "out of memory");
    for (int i = 0; i < n; i++) {
        //  n of the tile_n evenly spaced tiles, first and last included.
        int t = n > 1 ? (int) ((int64_t) i * (self->tile_n - 1) / (n - 1)) : 0;
        const uint8_t *tile = self->tiles + t * tile_bytes;
        int cx = (i % cols) * self->tile_w, cy = (i / cols) * self->tile_h;
        for (int y = 0; y < self->tile_h; y++)
            memcpy (sheet + ((size_t) (cy + y) * sw + cx) * 3,
                    tile + (size_t) y * self->tile_w * 3, (size_t) self->tile_w * 3);
    }
    int rc = s_write_image (self, sheet, sw, sh, self->sprite_path, &self->sprite_tmp);
    free (sheet);
    return rc;
}

//  --------------------------------------------------------------------------
//  Public API

vdgx_video_t *
vdgx_video_new (const char *path, const vdgx_video_options_t *opts, char **err)
{
    char eb [AV_ERROR_MAX_STRING_SIZE];
    if (err)
        *err = NULL;
    vdgx_video_options_t defaults;
    if (!opts) {
        vdgx_video_options_init (&defaults);
        opts = &defaults;
    }
    vdgx_video_t *self = calloc (1, sizeof *self);
    if (!self) {
        if (err)
            *err = strdup ("out of memory");
        return NULL;
    }
    if (!path || !*path || path [strlen (path) - 1] == '/')
        s_fail (self, "bad output path '%s'", path ? path : "(null)");
    else
    if (!(self->path = strdup (path)))
        s_fail (self, "out of memory");
    else
    if (s_check_options (self, opts) == 0) {
        char suffix [32];
        snprintf (suffix, sizeof suffix, ".thumb.%s", self->thumb_ext);
        self->thumb_path = self->opts.thumbnail ? s_sibling (path, suffix) : NULL;
        snprintf (suffix, sizeof suffix, ".sprite.%s", self->thumb_ext);
        self->sprite_path = self->opts.sprite_count ? s_sibling (path, suffix) : NULL;
        int errnum = 0;
        if ((self->opts.thumbnail && !self->thumb_path)
        ||  (self->opts.sprite_count && !self->sprite_path))
            s_fail (self, "out of memory");
        else
        if (!(self->tmp_path = s_make_temp (path, &errnum)))
            s_fail (self, "cannot create a file beside %s: %s", path, strerror (errnum));
        else {
            chmod (self->tmp_path, 0644);
            int rc = avformat_alloc_output_context2 (&self->fmt, NULL, self->container,
                                                     self->tmp_path);
            if (rc < 0)
                s_fail (self, "cannot set up the %s muxer: %s", self->container,
                        s_averr (rc, eb, sizeof eb));
            else
            if ((rc = avio_open (&self->fmt->pb, self->tmp_path, AVIO_FLAG_WRITE)) < 0)
                s_fail (self, "cannot open %s: %s", self->tmp_path, s_averr (rc, eb, sizeof eb));
            else
            if (!(self->pkt = av_packet_alloc ()))
                s_fail (self, "out of memory");
            else
            if (self->opts.audio_channels)
                s_open_audio (self);
        }
    }
    if (self->failed) {
        if (err)
            *err = strdup (self->error);
        vdgx_video_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_release (vdgx_video_t *self)
{
    if (self->fmt) {
        if (self->fmt->pb)
            avio_closep (&self->fmt->pb);
        avformat_free_context (self->fmt);
        self->fmt = NULL;
    }
    avcodec_free_context (&self->venc);
    avcodec_free_context (&self->aenc);
    av_frame_free (&self->vframe);
    av_frame_free (&self->aframe);
    av_packet_free (&self->pkt);
    swr_free (&self->swr);
    if (self->fifo) {
        av_audio_fifo_free (self->fifo);
        self->fifo = NULL;
    }
    sws_freeContext (self->tile_sws);
    self->tile_sws = NULL;
    free (self->rgb);
    free (self->thumb);
    free (self->tiles);
    self->rgb = self->thumb = self->tiles = NULL;
}

void
vdgx_video_destroy (vdgx_video_t **self_p)
{
    assert (self_p);
    vdgx_video_t *self = *self_p;
    if (!self)
        return;
    s_release (self);
    //  Anything still in a temp file is an unfinished or failed encode.
    s_unlink_temp (&self->tmp_path);
    s_unlink_temp (&self->thumb_tmp);
    s_unlink_temp (&self->sprite_tmp);
    free (self->path);
    free (self->thumb_path);
    free (self->sprite_path);
    free (self);
    *self_p = NULL;
}

//  Checks one pushed frame's size; opens everything at the first one.
static int
s_begin_frame (vdgx_video_t *self, const void *pixels, int width, int height)
{
    if (self->failed)
        return -1;
    if (self->finished)
        return s_fail (self, "frame pushed after finish");
    if (!pixels)
        return s_fail (self, "frame %d: no pixels", self->frames);
    if (width <= 0 || height <= 0 || width > VDGX_VIDEO_MAX_SIDE || height > VDGX_VIDEO_MAX_SIDE)
        return s_fail (self, "frame %d: bad size %dx%d (1..%d each)", self->frames, width,
                       height, VDGX_VIDEO_MAX_SIDE);
    if (self->frames > 0) {
        if (width != self->in_w || height != self->in_h)
            return s_fail (self, "frame %d is %dx%d, earlier frames were %dx%d", self->frames,
                           width, height, self->in_w, self->in_h);
        return 0;
    }
    if (self->opts.width && (width != self->opts.width || height != self->opts.height))
        return s_fail (self, "frame 0 is %dx%d, the options say %dx%d", width, height,
                       self->opts.width, self->opts.height);
    int w = width, h = height;
    if ((w | h) & 1) {
        if (self->opts.odd_size == VDGX_VIDEO_ODD_REJECT)
            return s_fail (self, "odd frame size %dx%d: yuv420p needs even sides "
                           "(set odd_size to crop or pad)", width, height);
        if (self->opts.odd_size == VDGX_VIDEO_ODD_CROP) {
            w &= ~1;
            h &= ~1;
            if (w == 0 || h == 0)
                return s_fail (self, "frame size %dx%d is too small to crop to even",
                               width, height);
        }
        else {
            w += w & 1;
            h += h & 1;
        }
    }
    self->in_w = width;
    self->in_h = height;
    self->width = w;
    self->height = h;
    if (s_setup_copies (self) || s_write_header (self))
        return -1;
    return 0;
}

static int
s_encode_frame (vdgx_video_t *self)
{
    char eb [AV_ERROR_MAX_STRING_SIZE];
    self->vframe->pts = self->frames;
    //  A fragment starts with a keyframe, so that it decodes without the ones before.
    self->vframe->pict_type = self->key_next? AV_PICTURE_TYPE_I: AV_PICTURE_TYPE_NONE;
    self->key_next = false;
    int rc = avcodec_send_frame (self->venc, self->vframe);
    if (rc < 0)
        return s_fail (self, "video encoding failed at frame %d: %s", self->frames,
                       s_averr (rc, eb, sizeof eb));
    if (s_write_packets (self, self->venc, self->vst))
        return -1;
    self->frames++;
    return 0;
}

int
vdgx_video_push_float (vdgx_video_t *self, const float *rgb, int width, int height)
{
    assert (self);
    if (s_begin_frame (self, rgb, width, height))
        return -1;
    //  Reject non-finite pixels before touching any state: 0 * x is NaN exactly when x is
    //  NaN or Inf, so one sum answers for the whole frame.
    size_t n = (size_t) width * height * 3;
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += rgb [i] * 0.0f;
    if (isnan (acc)) {
        for (size_t i = 0; i < n; i++)
            if (!isfinite (rgb [i]))
                return s_fail (self, "frame %d has a non-finite value (%g) at pixel (%zu, %zu)",
                               self->frames, (double) rgb [i], (i / 3) % (size_t) width,
                               i / 3 / (size_t) width);
    }
    if (av_frame_make_writable (self->vframe) < 0)
        return s_fail (self, "out of memory");
    s_float_to_yuv (self, rgb, (size_t) width * 3);
    if (s_wants_rgb (self, self->frames)) {
        s_float_to_rgb (self, rgb);
        if (s_take_copies (self, self->frames))
            return -1;
    }
    return s_encode_frame (self);
}

int
vdgx_video_push_rgb24 (vdgx_video_t *self, const uint8_t *rgb, int width, int height,
                       int stride)
{
    assert (self);
    if (s_begin_frame (self, rgb, width, height))
        return -1;
    if (stride == 0)
        stride = width * 3;
    if (stride < width * 3)
        return s_fail (self, "frame %d: stride %d is shorter than a row (%d bytes)",
                       self->frames, stride, width * 3);
    if (av_frame_make_writable (self->vframe) < 0)
        return s_fail (self, "out of memory");
    s_rgb24_to_yuv (self, rgb, (size_t) stride);
    if (s_wants_rgb (self, self->frames)) {
        s_rgb24_to_rgb (self, rgb, (size_t) stride);
        if (s_take_copies (self, self->frames))
            return -1;
    }
    return s_encode_frame (self);
}

int
vdgx_video_push_audio (vdgx_video_t *self, const float *pcm, int samples, int channels,
                       int rate)
{
    assert (self);
    if (self->failed)
        return -1;
    if (self->finished)
        return s_fail (self, "audio pushed after finish");
    if (!self->aenc)
        return s_fail (self, "audio pushed, but the options have no audio track");
    if (channels != self->opts.audio_channels || rate != self->opts.audio_rate)
        return s_fail (self, "audio is %d ch at %d Hz, the options say %d ch at %d Hz",
                       channels, rate, self->opts.audio_channels, self->opts.audio_rate);
    if (samples < 0 || (samples > 0 && !pcm))
        return s_fail (self, "bad audio buffer (%d samples)", samples);
    if (samples > INT_MAX / 8 / channels)
        return s_fail (self, "audio chunk too large (%d samples)", samples);
    size_t n = (size_t) samples * channels;
    for (size_t i = 0; i < n; i++)
        if (!isfinite (pcm [i]))
            return s_fail (self, "audio sample %zu is not finite", (size_t) self->audio_in + i / channels);
    if (samples == 0)
        return 0;
    if (s_audio_to_fifo (self, pcm, samples))
        return -1;
    self->audio_in += samples;
    if (self->header_done)
        return s_drain_audio (self, false);
    return 0;
}

int
vdgx_video_fragment (vdgx_video_t *self, uint64_t *bytes, int *frames)
{
    assert (self && bytes && frames);
    char eb [AV_ERROR_MAX_STRING_SIZE];
    if (self->failed)
        return -1;
    if (!self->opts.fragmented)
        return s_fail (self, "vdgx_video_fragment: the video is not fragmented");
    if (self->finished)
        return s_fail (self, "vdgx_video_fragment: the video is finished");
    if (self->header_done && self->muxed > 0) {
        //  The interleaving queue, then the fragment (frag_custom: a NULL packet flushes).
        int rc = av_interleaved_write_frame (self->fmt, NULL);
        if (rc >= 0)
            rc = av_write_frame (self->fmt, NULL);
        if (rc >= 0) {
            avio_flush (self->fmt->pb);
            rc = self->fmt->pb->error;
        }
        if (rc < 0)
            return s_fail (self, "cannot write a fragment to %s: %s", self->tmp_path,
                           s_averr (rc, eb, sizeof eb));
        self->key_next = true;
    }
    *bytes = self->header_done? (uint64_t) avio_tell (self->fmt->pb): 0;
    *frames = self->muxed;
    return 0;
}

const char *
vdgx_video_temp_path (vdgx_video_t *self)
{
    assert (self);
    return self->tmp_path;
}

int
vdgx_video_finish (vdgx_video_t *self)
{
    assert (self);
    char eb [AV_ERROR_MAX_STRING_SIZE];
    if (self->finished && !self->failed)
        return s_fail (self, "finish called twice");
    self->finished = true;
    if (!self->failed && self->frames == 0)
        s_fail (self, "no frames were pushed; nothing to encode");
    if (!self->failed) {
        int rc = avcodec_send_frame (self->venc, NULL);
        if (rc < 0)
            s_fail (self, "video flush failed: %s", s_averr (rc, eb, sizeof eb));
        else
            s_write_packets (self, self->venc, self->vst);
    }
    if (!self->failed && self->aenc) {
        if (s_audio_to_fifo (self, NULL, 0) == 0 && s_drain_audio (self, true) == 0) {
            int rc = avcodec_send_frame (self->aenc, NULL);
            if (rc < 0)
                s_fail (self, "audio flush failed: %s", s_averr (rc, eb, sizeof eb));
            else
                s_write_packets (self, self->aenc, self->ast);
        }
    }
    if (!self->failed) {
        int rc = av_write_trailer (self->fmt);
        if (rc < 0)
            s_fail (self, "cannot finish %s: %s", self->tmp_path, s_averr (rc, eb, sizeof eb));
    }
    if (!self->failed) {
        int rc = self->fmt->pb->error;
        int crc = avio_closep (&self->fmt->pb);
        if (rc < 0 || crc < 0)
            s_fail (self, "cannot write %s: %s", self->tmp_path,
                    s_averr (rc < 0 ? rc : crc, eb, sizeof eb));
    }
    if (!self->failed && self->opts.thumbnail && self->thumb_set)
        s_write_image (self, self->thumb, self->width, self->height, self->thumb_path,
                       &self->thumb_tmp);
    if (!self->failed && self->tiles && self->tile_n > 0)
        s_write_sprite (self);
    //  Images first, the video last: a video under its final name means the job finished.
    if (!self->failed && self->thumb_tmp) {
        if (rename (self->thumb_tmp, self->thumb_path))
            s_fail (self, "cannot rename into %s: %s", self->thumb_path, strerror (errno));
        else {
            free (self->thumb_tmp);
            self->thumb_tmp = NULL;
            self->thumb_written = true;
        }
    }
    if (!self->failed && self->sprite_tmp) {
        if (rename (self->sprite_tmp, self->sprite_path))
            s_fail (self, "cannot rename into %s: %s", self->sprite_path, strerror (errno));
        else {
            free (self->sprite_tmp);
            self->sprite_tmp = NULL;
            self->sprite_written = true;
        }
    }
    if (!self->failed) {
        if (rename (self->tmp_path, self->path))
            s_fail (self, "cannot rename into %s: %s", self->path, strerror (errno));
        else {
            free (self->tmp_path);
            self->tmp_path = NULL;
        }
    }
    if (self->failed) {
        //  Images already renamed belong to this failed video: take them away too.
        if (self->thumb_written)
            unlink (self->thumb_path);
        if (self->sprite_written)
            unlink (self->sprite_path);
        self->thumb_written = self->sprite_written = false;
    }
    s_release (self);
    s_unlink_temp (&self->tmp_path);
    s_unlink_temp (&self->thumb_tmp);
    s_unlink_temp (&self->sprite_tmp);
    return self->failed ? -1 : 0;
}

const char *
vdgx_video_error (vdgx_video_t *self)
{
    assert (self);
    return self->error;
}

const char *
vdgx_video_encoder (vdgx_video_t *self)
{
    assert (self);
    return self->encoder_name;
}

int
vdgx_video_frames (vdgx_video_t *self)
{
    assert (self);
    return self->frames;
}

int
vdgx_video_width (vdgx_video_t *self)
{
    assert (self);
    return self->width;
}

int
vdgx_video_height (vdgx_video_t *self)
{
    assert (self);
    return self->height;
}

const char *
vdgx_video_path (vdgx_video_t *self)
{
    assert (self);
    return self->path;
}

const char *
vdgx_video_thumb_path (vdgx_video_t *self)
{
    assert (self);
    return self->thumb_written ? self->thumb_path : NULL;
}

const char *
vdgx_video_sprite_path (vdgx_video_t *self)
{
    assert (self);
    return self->sprite_written ? self->sprite_path : NULL;
}

//  --------------------------------------------------------------------------
//  Selftest: the API contract (outputs appear only on success, errors are clear, temp files
//  never stay). Decoding the outputs back (PSNR, audio, ffprobe) is in tests/video/.

#include <dirent.h>

static int
s_test_dir_count (const char *dir)
{
    DIR *d = opendir (dir);
    assert (d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir (d)))
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
            n++;
    closedir (d);
    return n;
}

static void
s_test_dir_clear (const char *dir)
{
    DIR *d = opendir (dir);
    assert (d);
    struct dirent *e;
    while ((e = readdir (d))) {
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, "..")) {
            char *p = s_strdup_printf ("%s/%s", dir, e->d_name);
            unlink (p);
            free (p);
        }
    }
    closedir (d);
}

static bool
s_test_exists (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && st.st_size > 0;
}

//  A moving soft-edged disc over a diagonal gradient, in [-1, 1].
static void
s_test_pattern (float *rgb, int w, int h, int t)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float dx = (float) x - (float) (t * 3 % w), dy = (float) y - h / 2.0f;
            float disc = fmaxf (0.0f, fminf (1.0f, 6.0f - sqrtf (dx * dx + dy * dy) / 2.0f));
            float *p = rgb + ((size_t) y * w + x) * 3;
            p [0] = -0.8f + 1.6f * x / w;
            p [1] = -0.8f + 1.6f * y / h * (1.0f - disc) + disc * 0.5f;
            p [2] = 0.6f - 1.2f * (x + y) / (w + h);
        }
}

//  Expects vdgx_video_new to fail with a message containing needle.
static void
s_test_bad_options (const char *path, const vdgx_video_options_t *opts, const char *needle,
                    bool verbose)
{
    char *err = NULL;
    vdgx_video_t *v = vdgx_video_new (path, opts, &err);
    assert (v == NULL);
    assert (err);
    if (verbose)
        printf ("\n    new: %s", err);
    assert (strstr (err, needle));
    free (err);
}

void
vdgx_video_test (bool verbose)
{
    //  Quiet the expected nvenc fallback lines and x264's banner; restored at the end.
    int av_level = av_log_get_level ();
    vdgx_log_level_t log_level = vdgx_log_level ();
    av_log_set_level (AV_LOG_ERROR);
    vdgx_log_set_level (VDGX_LOG_WARN);
    const char *base = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    char *dir = s_strdup_printf ("%s/vdgx-video-selftest-XXXXXX", base);
    assert (dir && mkdtemp (dir));
    char *path = s_strdup_printf ("%s/clip.mp4", dir);
    char *thumb = s_strdup_printf ("%s/clip.thumb.jpg", dir);
    char *sprite = s_strdup_printf ("%s/clip.sprite.jpg", dir);
    const int W = 64, H = 48;
    float *frame = malloc (sizeof (float) * W * H * 3);
    assert (frame);

    //  Names of the outputs
    char *s = s_sibling ("/a.b/c.mp4", ".thumb.jpg");
    assert (strcmp (s, "/a.b/c.thumb.jpg") == 0);
    free (s);
    s = s_sibling ("/a.b/.hidden", ".sprite.jpg");
    assert (strcmp (s, "/a.b/.hidden.sprite.jpg") == 0);
    free (s);

    //  Bad options never leave a file
    vdgx_video_options_t o;
    vdgx_video_options_init (&o);
    o.codec = "mpeg2";
    s_test_bad_options (path, &o, "unknown codec", verbose);
    vdgx_video_options_init (&o);
    o.container = "webm";
    s_test_bad_options (path, &o, "cannot go into webm", verbose);
    vdgx_video_options_init (&o);
    o.fps = 0;
    s_test_bad_options (path, &o, "bad fps", verbose);
    vdgx_video_options_init (&o);
    o.audio_channels = 2;
    o.audio_rate = 44100;
    s_test_bad_options (path, &o, "bad audio rate", verbose);
    vdgx_video_options_init (&o);
    o.width = 64;
    s_test_bad_options (path, &o, "bad size", verbose);
    vdgx_video_options_init (&o);
    o.preset = "warp";
    s_test_bad_options (path, &o, "unknown preset", verbose);
    s = s_strdup_printf ("%s/no/such/dir/x.mp4", dir);
    s_test_bad_options (s, NULL, "cannot create", verbose);
    free (s);
    s_test_bad_options ("", NULL, "bad output path", verbose);
    assert (s_test_dir_count (dir) == 0);

    //  A good encode: video, thumbnail and sprite appear, nothing else stays
    vdgx_video_options_init (&o);
    o.preset = "veryfast";
    o.thumb_frame = 3;
    char *err = NULL;
    vdgx_video_t *v = vdgx_video_new (path, &o, &err);
    assert (v && !err);
    assert (s_test_dir_count (dir) == 1);           //  the temp file
    assert (!s_test_exists (path));
    for (int t = 0; t < 10; t++) {
        s_test_pattern (frame, W, H, t);
        int rc = vdgx_video_push_float (v, frame, W, H);
        if (rc && verbose)
            printf ("\n    push: %s", vdgx_video_error (v));
        assert (rc == 0);
    }
    assert (vdgx_video_frames (v) == 10);
    assert (vdgx_video_width (v) == W && vdgx_video_height (v) == H);
    assert (*vdgx_video_encoder (v));
    assert (vdgx_video_finish (v) == 0);
    assert (strcmp (vdgx_video_path (v), path) == 0);
    assert (vdgx_video_thumb_path (v) && strcmp (vdgx_video_thumb_path (v), thumb) == 0);
    assert (vdgx_video_sprite_path (v) && strcmp (vdgx_video_sprite_path (v), sprite) == 0);
    assert (vdgx_video_finish (v) == -1);           //  twice is misuse with a clear error
    assert (strstr (vdgx_video_error (v), "twice"));
    vdgx_video_destroy (&v);
    assert (v == NULL);
    assert (s_test_exists (path) && s_test_exists (thumb) && s_test_exists (sprite));
    assert (s_test_dir_count (dir) == 3);
    s_test_dir_clear (dir);

    //  Failures: clear message, no final file, no temp file
    struct {
        const char *what, *needle;
        int w, h;               //  first frame size
        int w2, h2;             //  second frame size
        float poison;           //  value put in pixel 5 of the second frame (0 = none)
        vdgx_video_odd_t odd;
        int frames;
    } cases [] = {
        { "zero frames", "no frames", W, H, W, H, 0, VDGX_VIDEO_ODD_REJECT, 0 },
        { "NaN pixel", "non-finite", W, H, W, H, NAN, VDGX_VIDEO_ODD_REJECT, 3 },
        { "Inf pixel", "non-finite", W, H, W, H, INFINITY, VDGX_VIDEO_ODD_REJECT, 3 },
        { "size change", "earlier frames were", W, H, W - 2, H, 0, VDGX_VIDEO_ODD_REJECT, 3 },
        { "odd width", "odd frame size", W - 1, H, W - 1, H, 0, VDGX_VIDEO_ODD_REJECT, 3 },
        { "odd height", "odd frame size", W, H - 1, W, H - 1, 0, VDGX_VIDEO_ODD_REJECT, 3 },
        { "zero size", "bad size", 0, H, 0, H, 0, VDGX_VIDEO_ODD_REJECT, 3 },
        { "crop 1x1", "too small", 1, 1, 1, 1, 0, VDGX_VIDEO_ODD_CROP, 3 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        vdgx_video_options_init (&o);
        o.preset = "ultrafast";
        o.odd_size = cases [c].odd;
        v = vdgx_video_new (path, &o, NULL);
        assert (v);
        int rc = 0;
        for (int t = 0; t < cases [c].frames && rc == 0; t++) {
            int w = t ? cases [c].w2 : cases [c].w, h = t ? cases [c].h2 : cases [c].h;
            s_test_pattern (frame, W, H, t);
            if (t == 1 && cases [c].poison != 0)
                frame [5] = cases [c].poison;
            rc = vdgx_video_push_float (v, frame, w, h);
        }
        if (rc == 0)
            assert (vdgx_video_finish (v) == -1);
        else {
            assert (vdgx_video_push_float (v, frame, W, H) == -1);   //  stays failed
            assert (vdgx_video_finish (v) == -1);
        }
        if (verbose)
            printf ("\n    %s: %s", cases [c].what, vdgx_video_error (v));
        assert (strstr (vdgx_video_error (v), cases [c].needle));
        assert (vdgx_video_thumb_path (v) == NULL);
        vdgx_video_destroy (&v);
        assert (s_test_dir_count (dir) == 0);
    }

    //  destroy without finish aborts; audio without an audio track is an error
    v = vdgx_video_new (path, NULL, NULL);
    assert (v);
    s_test_pattern (frame, W, H, 0);
    assert (vdgx_video_push_float (v, frame, W, H) == 0);
    assert (vdgx_video_push_audio (v, frame, 100, 1, 16000) == -1);
    assert (strstr (vdgx_video_error (v), "no audio track"));
    vdgx_video_destroy (&v);
    assert (s_test_dir_count (dir) == 0);

    //  Odd sizes: crop and pad give the even neighbours
    vdgx_video_odd_t policies [2] = { VDGX_VIDEO_ODD_CROP, VDGX_VIDEO_ODD_PAD };
    for (int p = 0; p < 2; p++) {
        vdgx_video_options_init (&o);
        o.preset = "ultrafast";
        o.odd_size = policies [p];
        o.sprite_count = 0;
        o.thumbnail = false;
        v = vdgx_video_new (path, &o, NULL);
        assert (v);
        for (int t = 0; t < 3; t++) {
            s_test_pattern (frame, W - 1, H - 1, t);
            assert (vdgx_video_push_float (v, frame, W - 1, H - 1) == 0);
        }
        assert (vdgx_video_width (v) == (p ? W : W - 2));
        assert (vdgx_video_height (v) == (p ? H : H - 2));
        assert (vdgx_video_finish (v) == 0);
        assert (vdgx_video_thumb_path (v) == NULL && vdgx_video_sprite_path (v) == NULL);
        vdgx_video_destroy (&v);
        assert (s_test_dir_count (dir) == 1);
        s_test_dir_clear (dir);
    }

    free (frame);
    free (path);
    free (thumb);
    free (sprite);
    assert (rmdir (dir) == 0);
    free (dir);
    av_log_set_level (av_level);
    vdgx_log_set_level (log_level);
}
