/*  vdgx_video.h - streaming video encoder: frames in one at a time, an MP4/WebM file out.

    Frames are pushed one by one (never a whole-video buffer), exactly as an engine's frame()
    sink hands them over: float RGB interleaved [height][width][3] in [-1, 1], or RGB24.
    Optional float PCM audio is muxed into the same file (AAC in MP4, Opus in WebM).

    Codecs: "h264" (default; h264_nvenc is tried first when present and working, else libx264),
    "hevc" (hevc_nvenc, else libx265), "vp9" (libvpx-vp9). Pixels are yuv420p, limited ("tv")
    range, tagged BT.709 (primaries, transfer, matrix). Container: "mp4" (moov atom at the
    front, +faststart) or "webm"; by default taken from the path's extension (.webm -> webm,
    anything else -> mp4), and vp9 defaults to webm. h264 in webm is refused.

    Defaults: crf 18 (h264/hevc: x264/x265 CRF; vp9: CRF 18 with b:v 0; nvenc: constant
    quality 18), preset "medium" (the x264 default; encoding is a small fraction of generation
    time, so we favour size/quality over speed). The preset names are x264's; they are mapped
    to nvenc p1..p7 and to libvpx cpu-used.

    Sizes: width/height 0 = taken from the first frame. Odd sizes are handled as told by
    odd_size: REJECT (default: a clear error), CROP (drop the last column/row) or PAD (repeat
    the last column/row). Every frame must have the size of the first.

    Files: the video is written to "<dir>/.<name>.tmp-XXXXXX" beside the final path and renamed
    on a successful finish(). On any error (no frames, bad sizes, NaN/Inf pixels, mismatched
    frames, audio format mismatch, unwritable path, codec failure) the call returns -1,
    vdgx_video_error() says why, the temp file is removed, and nothing exists under the final
    name. destroy() without finish() aborts the same way.

    Thumbnails (written by finish(), beside the video, same temp+rename rule):
      <base>.thumb.jpg   frame thumb_frame at full size (the last frame if the video is shorter;
                         .png when thumb_format is "png")
      <base>.sprite.jpg  up to sprite_count frames spread evenly over the video, downscaled to
                         sprite_width pixels wide, in a grid of ceil(sqrt(n)) columns, row by
                         row; cells left over are black
    where <base> is the video path without its extension (out.mp4 -> out.thumb.jpg).
    Only copies of the chosen frames are kept while streaming: the sprite keeps at most
    2 * sprite_count tiles taken every k-th frame, and doubles k (dropping every other tile)
    when full, so the kept tiles stay evenly spaced without knowing the length in advance.
    JPEGs are 4:4:4 at qscale 2 (near-transparent); files are created mode 0644.

    Fragmented MP4 (opts.fragmented, for engines that finish the video piece by piece): the
    file starts with an empty moov (no samples) and vdgx_video_fragment() appends every frame
    pushed so far as one moof + mdat fragment, starting with a keyframe. The file is
    append-only: its bytes up to any fragment boundary are a valid, playable MP4 (players and
    ffprobe read fragmented files), and finish() only appends the last fragment and the mfra
    index, so a reader of the temp file (vdgx_video_temp_path) can hand on every prefix as
    it grows. The encoders run without frame delay in this mode (x264/x265 tune zerolatency:
    no B-frames, no lookahead; nvenc zerolatency, delay 0), so a fragment holds every frame
    pushed before it. +faststart does not apply (it would rewrite the file).

    Not thread-safe: one thread drives one encoder.
*/
#ifndef VDGX_VIDEO_H_INCLUDED
#define VDGX_VIDEO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VDGX_VIDEO_ODD_REJECT = 0,      //  odd width/height is an error
    VDGX_VIDEO_ODD_CROP = 1,        //  encode (w & ~1) x (h & ~1)
    VDGX_VIDEO_ODD_PAD = 2          //  encode (w + 1) & ~1 x (h + 1) & ~1, edge repeated
} vdgx_video_odd_t;

typedef struct {
    const char *codec;          //  "h264" (NULL/"" = default), "hevc" ("h265"), "vp9"
    const char *container;      //  "mp4", "webm"; NULL/"" = from the extension / codec
    int width, height;          //  frame size; 0 = from the first frame
    int fps;                    //  frames per second, > 0 (default 16)
    int crf;                    //  quality, lower is better; -1 = default (18)
    const char *preset;         //  x264 preset name; NULL = "medium"
    bool try_nvenc;             //  try h264_nvenc / hevc_nvenc first (default true)
    vdgx_video_odd_t odd_size;  //  default VDGX_VIDEO_ODD_REJECT
    int audio_channels;         //  0 = no audio track (default), 1 or 2
    int audio_rate;             //  16000, 24000 or 48000 (when audio_channels > 0)
    bool thumbnail;             //  write <base>.thumb.jpg (default true)
    int thumb_frame;            //  index of the thumbnail frame (default 0)
    const char *thumb_format;   //  "jpg" (default) or "png"; also used for the sprite sheet
    int sprite_count;           //  frames in the sprite sheet; 0 = no sprite (default 16)
    int sprite_width;           //  width of one sprite tile in pixels (default 160)
    bool fragmented;            //  fragmented MP4 for streaming (default false; mp4 only)
} vdgx_video_options_t;

typedef struct _vdgx_video_t vdgx_video_t;

//  Fills opts with the defaults above.
void vdgx_video_options_init (vdgx_video_options_t *opts);

//  Checks the options and creates the temp file beside path. opts NULL = defaults.
//  Returns NULL on error; then *err (if err is not NULL) gets a message the caller frees.
vdgx_video_t *vdgx_video_new (const char *path, const vdgx_video_options_t *opts, char **err);

//  Aborts an unfinished encode (removes the temp file) and frees; nulls *self_p.
void vdgx_video_destroy (vdgx_video_t **self_p);

//  One frame, float RGB interleaved HWC in [-1, 1] (values outside are clamped; NaN/Inf is
//  an error). Returns 0 or -1. After an error every later call returns -1.
int vdgx_video_push_float (vdgx_video_t *self, const float *rgb, int width, int height);

//  One frame, RGB24 interleaved; stride is the row size in bytes (0 = width * 3).
int vdgx_video_push_rgb24 (vdgx_video_t *self, const uint8_t *rgb, int width, int height,
                           int stride);

//  Interleaved float PCM in [-1, 1]; samples counts per-channel sample frames. channels and
//  rate must match the options. May be called before, between or after frames.
int vdgx_video_push_audio (vdgx_video_t *self, const float *pcm, int samples, int channels,
                           int rate);

//  Fragmented mode: writes the frames pushed so far as one fragment (none when no frame came
//  since the last) and flushes it to the file. *bytes gets the file's size, a fragment
//  boundary; *frames the frames it holds. Returns 0, or -1 (not fragmented, or a write
//  failed; vdgx_video_error says why).
int vdgx_video_fragment (vdgx_video_t *self, uint64_t *bytes, int *frames);

//  The file being written (beside the final path) until finish() renames it; NULL after.
const char *vdgx_video_temp_path (vdgx_video_t *self);

//  Flushes the encoders, writes the trailer, thumbnails and sprite, renames into place.
//  Returns 0 or -1 (nothing left under the final names on -1).
int vdgx_video_finish (vdgx_video_t *self);

//  Last error message ("" when none). Valid until the next call on self.
const char *vdgx_video_error (vdgx_video_t *self);

//  Name of the video encoder in use ("libx264", "h264_nvenc", ...; "" before the first frame).
const char *vdgx_video_encoder (vdgx_video_t *self);

//  Frames pushed so far, and the encoded size (valid after the first frame).
int vdgx_video_frames (vdgx_video_t *self);
int vdgx_video_width (vdgx_video_t *self);
int vdgx_video_height (vdgx_video_t *self);

//  Final paths of the video, the thumbnail and the sprite sheet (NULL when not written).
const char *vdgx_video_path (vdgx_video_t *self);
const char *vdgx_video_thumb_path (vdgx_video_t *self);
const char *vdgx_video_sprite_path (vdgx_video_t *self);

void vdgx_video_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
