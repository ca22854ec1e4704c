/*  ltx2_sample.h - the LTX-2 / LTX-2.3 denoising loop of the joint video + audio latent, as
    the official one-stage pipelines run it (ltx_pipelines ti2vid_one_stage, distilled).

    Schedules:
      dev       : LTX2Scheduler().execute(steps) without a latent, so with the token count 4096
                  (shift 2.05) whatever the resolution, stretched so that the last nonzero
                  sigma is 0.1, then 0 (vdgx_flow_ltx_sigmas, float32 steps).
      distilled : the distilled checkpoints' constant DISTILLED_SIGMA_VALUES (8 steps); the
                  official distilled pipeline runs them at half resolution and refines after
                  a latent upsampler with STAGE_2_DISTILLED_SIGMA_VALUES; here the 8 steps run
                  at the requested size (one stage, no upsampler).
    Noise: GaussianNoiser, torch.randn from torch.Generator().manual_seed(seed) in the
    patchified token layout, video first, then audio; the initial latent is that noise.
    Each step: every token takes timestep sigma; the DiT runs with the prompt's contexts
    (cond) and, when a modality's guidance scale is not 1, with the negative prompt's
    (uncond); each modality is guided with its own scale, cond + (scale - 1)(cond - uncond);
    then Euler x += (sigma_next - sigma) v, in float32 (vdgx_guide over vdgx_flow).
    Latent sizes: video (frames - 1)/8 + 1 latent frames of height/32 x width/32 tokens;
    audio round(frames / fps * 25) latent frames (16 kHz mel, hop 160, x4 in time).
*/
#ifndef LTX2_SAMPLE_H_INCLUDED
#define LTX2_SAMPLE_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LTX2_DISTILLED_STEPS 8

typedef enum { LTX2_SCHEDULE_DEV = 0, LTX2_SCHEDULE_DISTILLED } ltx2_schedule_t;

//  DISTILLED_SIGMA_VALUES [9] and STAGE_2_DISTILLED_SIGMA_VALUES [4] of ltx_pipelines.
extern const float ltx2_distilled_sigmas [LTX2_DISTILLED_STEPS + 1];
extern const float ltx2_stage2_distilled_sigmas [4];

//  The pipeline's sigmas [steps + 1]; distilled needs steps == 8. -1 with *err.
int ltx2_sample_sigmas (ltx2_schedule_t kind, int steps, float *sigmas, char **err);

//  Latent sizes of a request (width, height multiples of 32, frames 8n + 1).
typedef struct {
    int64_t frames, height, width;      //  video latent
    int64_t video_tokens;               //  frames * height * width
    int64_t audio_frames;               //  audio latent frames (= audio tokens)
} ltx2_latent_shape_t;

void ltx2_sample_shape (int width, int height, int frames, double fps, ltx2_latent_shape_t *shape);

//  The initial latent: video [video_n] then audio [audio_n] floats of torch.randn (seed).
void ltx2_sample_noise (uint64_t seed, float *x, size_t video_n, size_t audio_n);

//  One DiT call: velocities of both streams for the latents at sigma, with the prompt's
//  contexts (cond) or the negative prompt's. 0, or -1 with *err.
typedef int (ltx2_velocity_fn) (void *ctx, bool cond, const float *video, const float *audio,
                                float sigma, float *video_v, float *audio_v, char **err);

typedef struct {
    size_t video_n, audio_n;            //  floats of each stream
    const float *sigmas;                //  [steps + 1]
    int steps;
    double video_cfg, audio_cfg;        //  guidance scales (1 = none)
    ltx2_velocity_fn *velocity;
    void *ctx;
    void (*progress) (void *ctx, int step, int steps);     //  after each step, may be NULL
    atomic_int *cancel;                 //  checked before each step, may be NULL
} ltx2_sample_args_t;

//  Denoises x [video_n + audio_n] in place. 0, -2 when cancelled, -1 with *err.
int ltx2_sample_run (const ltx2_sample_args_t *args, float *x, char **err);

//  Patchified video tokens [F*H*W, C] (f-major, then h, then w) <-> latent [C, F, H, W].
void ltx2_sample_unpatchify (const float *tokens, int64_t channels, int64_t frames,
                             int64_t height, int64_t width, float *latent);

void ltx2_sample_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
