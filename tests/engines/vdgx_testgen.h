/*  vdgx_testgen.h - "testgen", a test-only engine (never shipped) that drives every path of
    the engine interface without weights or a GPU.

    Frames are a deterministic pattern of the seed, frame index and pixel position, so two
    runs with one seed give identical frames (and, with a deterministic encoder, identical
    files). Knobs, from the environment (defaults) and from `key=value` words in the prompt
    (per job, overriding the environment):

      sleep_ms=N      sleep per denoising step (env VDGX_TESTGEN_SLEEP_MS, default 0)
      load_ms=N       time load() takes (env VDGX_TESTGEN_LOAD_MS, default 0)
      fail=WHAT       error | fatal (at step fail_at) | load_error | load_fatal | sink
                      (env VDGX_TESTGEN_FAIL)
      fail_at=K       the step that fails (default 1)
      hold=PATH       the first step waits until PATH exists (a test says when the job may
                      end; cancel still works; 10 minutes at most)
      audio=WHAT      an audio track as long as the video, a deterministic sine handed to
                      io->audio one chunk per frame: 1 (= stereo48), stereo24, mono48,
                      mono24 are declared by audio_format() and sent; undeclared sends
                      stereo 48 kHz without declaring it; mismatch declares mono 24 kHz and
                      sends stereo 48 kHz; silent declares stereo 48 kHz and sends
                      nothing (env VDGX_TESTGEN_AUDIO=WHAT)

    Defaults: 64x48, 8 frames, 8 fps, 4 steps. Limits: width/height 16..512, frames 1..64,
    steps 1..200. Cancel is checked at every step boundary and between frames.

    Image-to-video: the model "testgen-i2v" takes `image` and `last_image` (limits images 2;
    plain "testgen" takes none). The image is decoded with vdgx_image (any failure fails the
    job with the reason) and scaled (nearest) to the frame size: it is the first frame, and
    last_image the last one; the frames between are the pattern.
*/
#ifndef VDGX_TESTGEN_H_INCLUDED
#define VDGX_TESTGEN_H_INCLUDED

#include "engine.h"

extern const vdgx_engine_class_t vdgx_testgen_engine_class;

//  The reference pixel of the pattern (what the engine emits before encoding), for tests.
void vdgx_testgen_pixel (uint64_t seed, int frame, int x, int y, float rgb [3]);

//  The reference audio sample of channel 0 or 1 at sample index (before encoding).
float vdgx_testgen_sample (uint64_t seed, int channel, int index, int rate);

#endif
