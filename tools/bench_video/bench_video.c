/*  bench_video.c - vdgx-bench-video: vdgx_video against the ffmpeg command line.

        vdgx-bench-video [-n frames] [-c codec] [-p preset] [-q crf] [-s WxH[,WxH...]] [-r repeats] [-e]

    For each size it makes N frames of moving synthetic content (RGB24), writes them to a raw
    .rgb temp file, then times, in the same run:
      ours-rgb24   vdgx_video_new + push_rgb24 x N + finish (thumbnail and sprite off)
      ours-float   the same through push_float (the engines' path; the RGB24 -> float
                   conversion happens outside the timed region)
      ffmpeg       ffmpeg -f rawvideo -pix_fmt rgb24 -i tmp.rgb, same codec/preset/crf,
                   yuv420p, BT.709 tags, +faststart (process start-up and file read included)
    and prints frames/s, output size and the ours/ffmpeg ratio. The best of -r repeats counts.
    Both sides use the same encoder library (libx264/libx265/libvpx-vp9) with automatic threads;
    nvenc is not tried unless -e is given, so by default the figures compare like with like.
*/
#include "vdgx_video.h"

#include <czmq.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

//  Monotonic seconds.
static double
s_now (void)
{
    return zclock_usecs () / 1e6;
}

static long long
s_file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? (long long) st.st_size : -1;
}

//  Natural-ish content: gradients, a few moving soft discs and a fine texture, so the encoder
//  has motion and detail to work on (flat frames would flatter both sides).
static void
s_make_frame (uint8_t *rgb, int w, int h, int t)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float r = 0.5f + 0.4f * sinf (0.013f * x + 0.05f * t);
            float g = 0.5f + 0.4f * cosf (0.017f * y - 0.03f * t);
            float b = 0.5f + 0.3f * sinf (0.011f * (x + y) + 0.07f * t);
            for (int k = 0; k < 3; k++) {
                float cx = w * (0.2f + 0.3f * k) + 40.0f * sinf (0.1f * t + k);
                float cy = h * 0.5f + 60.0f * cosf (0.08f * t + 2 * k);
                float d = sqrtf ((x - cx) * (x - cx) + (y - cy) * (y - cy));
                float disc = fmaxf (0.0f, fminf (1.0f, (h * 0.12f - d) / 4.0f));
                r = r * (1 - disc) + disc * (k == 0 ? 0.9f : 0.2f);
                g = g * (1 - disc) + disc * (k == 1 ? 0.9f : 0.3f);
                b = b * (1 - disc) + disc * (k == 2 ? 0.9f : 0.1f);
            }
            float tex = 0.03f * sinf (0.9f * x + 0.3f * t) * cosf (1.1f * y);
            uint8_t *p = rgb + ((size_t) y * w + x) * 3;
            p [0] = (uint8_t) lrintf (fminf (1, fmaxf (0, r + tex)) * 255);
            p [1] = (uint8_t) lrintf (fminf (1, fmaxf (0, g + tex)) * 255);
            p [2] = (uint8_t) lrintf (fminf (1, fmaxf (0, b + tex)) * 255);
        }
}

typedef struct {
    const char *codec, *preset;
    int crf, frames, fps, repeats;
    bool nvenc;                 //  -e: let ours try nvenc first (ffmpeg stays on the CPU codec)
    char dir [256];
} s_bench_t;

//  Encodes the frames with vdgx_video; returns seconds or -1.
static double
s_run_ours (s_bench_t *b, uint8_t **frames, int w, int h, bool use_float, const char *out,
            const char **encoder)
{
    vdgx_video_options_t o;
    vdgx_video_options_init (&o);
    o.codec = b->codec;
    o.preset = b->preset;
    o.crf = b->crf;
    o.fps = b->fps;
    o.try_nvenc = b->nvenc;
    o.thumbnail = false;
    o.sprite_count = 0;
    float *fl = use_float ? malloc (sizeof (float) * w * h * 3) : NULL;
    double busy = 0, t0 = s_now ();
    char *err = NULL;
    vdgx_video_t *v = vdgx_video_new (out, &o, &err);
    if (!v) {
        fprintf (stderr, "vdgx_video_new: %s\n", err);
        free (err);
        free (fl);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < b->frames && rc == 0; i++) {
        if (use_float) {
            busy += s_now () - t0;
            for (size_t k = 0; k < (size_t) w * h * 3; k++)
                fl [k] = frames [i][k] / 127.5f - 1.0f;
            t0 = s_now ();
            rc = vdgx_video_push_float (v, fl, w, h);
        }
        else
            rc = vdgx_video_push_rgb24 (v, frames [i], w, h, 0);
    }
    if (rc == 0)
        rc = vdgx_video_finish (v);
    busy += s_now () - t0;
    if (rc)
        fprintf (stderr, "vdgx_video: %s\n", vdgx_video_error (v));
    static char name [32];
    snprintf (name, sizeof name, "%s", vdgx_video_encoder (v));
    *encoder = name;
    vdgx_video_destroy (&v);
    free (fl);
    return rc ? -1 : busy;
}

static const char *
s_ffmpeg_codec (const char *codec)
{
    return strcmp (codec, "hevc") == 0 ? "libx265" : strcmp (codec, "vp9") == 0 ? "libvpx-vp9" : "libx264";
}

static double
s_run_ffmpeg (s_bench_t *b, const char *raw, int w, int h, const char *out)
{
    char extra [128] = "";
    if (strcmp (b->codec, "vp9") == 0) {
        //  The x264 preset -> libvpx cpu-used mapping that vdgx_video uses.
        static const char *const presets [] = { "ultrafast", "superfast", "veryfast", "faster",
            "fast", "medium", "slow", "slower", "veryslow", "placebo" };
        static const int cpu [] = { 8, 7, 6, 5, 4, 3, 2, 1, 0, 0 };
        int used = 3;
        for (int i = 0; i < 10; i++)
            if (strcmp (presets [i], b->preset) == 0)
                used = cpu [i];
        snprintf (extra, sizeof extra, "-b:v 0 -deadline good -cpu-used %d -row-mt 1", used);
    }
    else
        snprintf (extra, sizeof extra, "-preset %s%s", b->preset,
                  strcmp (b->codec, "hevc") == 0 ? " -x265-params log-level=error" : "");
    char cmd [2048];
    snprintf (cmd, sizeof cmd,
              "ffmpeg -nostdin -hide_banner -loglevel error -y -f rawvideo -pix_fmt rgb24 "
              "-s %dx%d -r %d -i '%s' -c:v %s %s -crf %d -pix_fmt yuv420p "
              "-colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv "
              "%s '%s'", w, h, b->fps, raw, s_ffmpeg_codec (b->codec), extra, b->crf,
              strcmp (b->codec, "vp9") == 0 ? "" : "-movflags +faststart", out);
    double t0 = s_now ();
    int status = system (cmd);
    double dt = s_now () - t0;
    if (status == -1 || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        fprintf (stderr, "ffmpeg failed (status %d): %s\n", status, cmd);
        return -1;
    }
    return dt;
}

static double
s_best (double a, double b)
{
    return a < 0 ? b : b < 0 ? a : fmin (a, b);
}

static int
s_bench_size (s_bench_t *b, int w, int h)
{
    size_t bytes = (size_t) w * h * 3;
    uint8_t **frames = calloc (b->frames, sizeof (uint8_t *));
    char raw [320], out_ours [320], out_ff [320];
    const char *ext = strcmp (b->codec, "vp9") == 0 ? "webm" : "mp4";
    snprintf (raw, sizeof raw, "%s/frames.rgb", b->dir);
    snprintf (out_ours, sizeof out_ours, "%s/ours.%s", b->dir, ext);
    snprintf (out_ff, sizeof out_ff, "%s/ffmpeg.%s", b->dir, ext);
    FILE *f = fopen (raw, "wb");
    if (!f || !frames) {
        perror (raw);
        return -1;
    }
    for (int i = 0; i < b->frames; i++) {
        frames [i] = malloc (bytes);
        s_make_frame (frames [i], w, h, i);
        fwrite (frames [i], 1, bytes, f);
    }
    if (fclose (f)) {
        perror (raw);
        return -1;
    }
    double t_rgb = -1, t_float = -1, t_ff = -1;
    long long size_ours = 0, size_ff = 0;
    const char *encoder = "";
    for (int r = 0; r < b->repeats; r++) {
        t_rgb = s_best (t_rgb, s_run_ours (b, frames, w, h, false, out_ours, &encoder));
        size_ours = s_file_size (out_ours);
        t_float = s_best (t_float, s_run_ours (b, frames, w, h, true, out_ours, &encoder));
        t_ff = s_best (t_ff, s_run_ffmpeg (b, raw, w, h, out_ff));
        size_ff = s_file_size (out_ff);
    }
    printf ("%4dx%-4d %3d frames  %-7s %-9s crf %2d | ours-rgb24 %7.2f fps | ours-float %7.2f fps "
            "| ffmpeg %7.2f fps | ratio rgb24/ffmpeg %.2f float/ffmpeg %.2f | size ours %lld ffmpeg %lld B\n",
            w, h, b->frames, encoder, b->preset, b->crf,
            t_rgb > 0 ? b->frames / t_rgb : 0, t_float > 0 ? b->frames / t_float : 0,
            t_ff > 0 ? b->frames / t_ff : 0, (t_rgb > 0 && t_ff > 0) ? t_ff / t_rgb : 0,
            (t_float > 0 && t_ff > 0) ? t_ff / t_float : 0, size_ours, size_ff);
    fflush (stdout);
    unlink (raw);
    unlink (out_ours);
    unlink (out_ff);
    for (int i = 0; i < b->frames; i++)
        free (frames [i]);
    free (frames);
    return (t_rgb > 0 && t_float > 0 && t_ff > 0) ? 0 : -1;
}

int
main (int argc, char *argv [])
{
    s_bench_t b = { .codec = "h264", .preset = "medium", .crf = 18, .frames = 48, .fps = 16,
                    .repeats = 1 };
    const char *sizes = "832x480,1280x720";
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc ? argv [i + 1] : NULL;
        if (strcmp (a, "-e") == 0) {
            b.nvenc = true;
            continue;
        }
        if (!v || a [0] != '-' || strlen (a) != 2) {
            fprintf (stderr, "usage: %s [-n frames] [-c h264|hevc|vp9] [-p preset] [-q crf] "
                     "[-s WxH,...] [-r repeats] [-e]\n", argv [0]);
            return 2;
        }
        switch (a [1]) {
            case 'n': b.frames = atoi (v); break;
            case 'c': b.codec = v; break;
            case 'p': b.preset = v; break;
            case 'q': b.crf = atoi (v); break;
            case 's': sizes = v; break;
            case 'r': b.repeats = atoi (v); break;
            default:
                fprintf (stderr, "unknown option %s\n", a);
                return 2;
        }
        i++;
    }
    if (b.frames < 1 || b.repeats < 1) {
        fprintf (stderr, "frames and repeats must be >= 1\n");
        return 2;
    }
    if (system ("ffmpeg -version >/dev/null 2>&1") != 0) {
        fprintf (stderr, "ffmpeg is not on PATH\n");
        return 1;
    }
    av_log_set_level (AV_LOG_ERROR);
    const char *tmp = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    snprintf (b.dir, sizeof b.dir, "%s/vdgx-bench-video-XXXXXX", tmp);
    if (!mkdtemp (b.dir)) {
        perror ("mkdtemp");
        return 1;
    }
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    printf ("vdgx-bench-video: %ld CPUs, best of %d\n", cpus, b.repeats);
    int rc = 0;
    char *list = strdup (sizes), *save = NULL;
    for (char *tok = strtok_r (list, ",", &save); tok; tok = strtok_r (NULL, ",", &save)) {
        int w = 0, h = 0;
        if (sscanf (tok, "%dx%d", &w, &h) != 2 || w < 2 || h < 2 || w > 8192 || h > 8192) {
            fprintf (stderr, "bad size '%s'\n", tok);
            rc = 2;
            continue;
        }
        if (s_bench_size (&b, w, h))
            rc = 1;
    }
    free (list);
    rmdir (b.dir);
    return rc;
}
