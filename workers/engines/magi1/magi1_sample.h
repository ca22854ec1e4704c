/*  magi1_sample.h - MAGI-1's chunk scheduler (SampleTransport): chunks denoised in a sliding
    window of up to window_size chunks at staggered noise levels, Euler flow steps on the
    sd3-shifted t grid (0 = noise, 1 = clean), the base model's 3-way guidance (cfg_number 3:
    caption / null caption with the KV cache / each chunk alone) with noise-to-clean kv
    ranges and the clean previous chunk that refreshes the cache, and the caption rows with
    MAGI-1's special tokens. The KV cache is bounded: rows of chunks that no later step
    attends are evicted (magi1_dit_cache_evict), so its memory does not grow with the video.
*/
#ifndef MAGI1_SAMPLE_H_INCLUDED
#define MAGI1_SAMPLE_H_INCLUDED

#include "magi1_dit.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int num_steps;              //  denoise steps per chunk (a multiple of window_size and of 4)
    int window_size;            //  chunks in flight (4)
    int cfg_number;             //  3 (base: 3-way guidance) or 1 (distill: one caption pass)
    float clean_t;              //  t of the prepended clean chunk (0.9999)
    int noise2clean_kvrange [4];    //  chunks a denoising chunk sees, by quarter of its steps
    int clean_chunk_kvrange;    //  chunks the clean chunk sees (1)
    float cfg_t_range [5], prev_chunk_scales [5], text_scales [5];
    double nearly_clean_threshold;  //  0.3 (compared with float32(t) in double, as .item() > 0.3)
    float nearly_clean_blend;   //  distill: out = blend * out + (1 - blend) * out_copy (0.7)
    bool shortcut_16_16_8;      //  engine_config.shortcut_mode "16,16,8" instead of the default
                                //  "8,16,16" (num_steps 12 only)
} magi1_sched_t;

//  The official base configuration (4.5B / 24B base runtime_config) with num_steps; the
//  distill checkpoints use cfg_number 1.
void magi1_sched_defaults (magi1_sched_t *s, int num_steps);
//  The official configurations of the released checkpoints (example/<size>/<variant>_config.json):
//  4.5B_base 64 steps cfg 3, 4.5B_distill[_quant] 64 steps cfg 1, 24B_base 32 steps cfg 3,
//  24B_distill[_quant] 16 steps cfg 1 (window 4, shortcut mode "8,16,16"). variant is the
//  folder name ("4.5B_distill_quant"); -1 when unknown (s untouched).
int magi1_sched_official (magi1_sched_t *s, const char *variant);
//  The distill timestep the DiT adds in distill mode: num_steps / 4 * 2, except for the
//  12-step shortcut schedule (magi1_sched_distill_dt_at).
double magi1_sched_distill_dt (int num_steps);
//  The distill timestep of denoise step idx (0 .. num_steps / window - 1) of a stage: with
//  num_steps 12, 4 / interval[idx] * 2 where the intervals are [2, 1, 1] repeated ("8,16,16")
//  or [1, 1, 2] ("16,16,8"); otherwise magi1_sched_distill_dt.
double magi1_sched_distill_dt_at (const magi1_sched_t *s, int idx);
//  The t grid (num_steps + 1 values): linspace(0, 1)^2, then the sd3 shift 3, in float32.
//  num_steps 12 is the shortcut grid: quarters [0, 1/8, 3/16] + k/4 ("8,16,16") or
//  [0, 1/16, 1/8] + k/4 ("16,16,8"), k = 0..4, cut to 13 values, then the same transform.
void magi1_sched_t_grid (int num_steps, float *t);
void magi1_sched_grid (const magi1_sched_t *s, float *t);
//  Guidance weights (p = prev_chunk_scale, s = text_scale) at t.
void magi1_sched_cfg (const magi1_sched_t *s, float t, float *p, float *txt);

//  The caption rows of chunk i of n: [DURATION, HQ, prompt...][:len] with mask [1, 1, mask...];
//  DURATION = other_tokens[7 + min(n - i - 1, 7)], HQ = other_tokens[1]. prompt [len, dim],
//  prompt_mask [len]; y [len, dim], mask [len].
void magi1_caption_rows (const float *other_tokens, const float *prompt, const float *prompt_mask,
                         int64_t len, int64_t dim, int i, int n, float *y, float *mask);

//  MAGI-1's special tokens: "other_tokens" [count, dim] of the official
//  example/assets/special_tokens.npz (float64; HQ = row 1, DURATION_n = row 6 + n) or of any
//  checkpoint file holding that name, rounded to float16 as the pipeline does (nearest,
//  ties to even, from the float64 value), as f32 (malloc). dim must match the file; NULL with
//  *err naming the file or tensor.
float *magi1_special_tokens_load (const char *path, int64_t dim, int64_t *count, char **err);

//  Observer of each forward step: step index, the window's first chunk and chunk count,
//  the velocity over the window [C, n*F, H, W], the whole latent after the step, and each
//  pass's output ("cond_text", "cond_pre": [C, (n + extra)*F, H, W]; "uncond":
//  [n][C, F, H, W]; distill: "cond" [C, (n + extra + copy)*F, H, W]).
typedef void (magi1_sample_fn) (void *ctx, int step, const char *what, const float *data,
                                size_t n);

//  Called after each forward step (step 1..steps_total, the loop's total forward steps):
//  progress, and the cancel point. Non-zero stops the loop: magi1_sample returns -2.
typedef int (magi1_step_fn) (void *ctx, int step, int steps_total);
//  Called once per chunk, in order, as soon as it has been denoised num_steps times: x is
//  the whole latent [C, chunks*F, H, W] (chunk `chunk` is final there). Non-zero stops the
//  loop: magi1_sample returns -1 (the callback sets the error).
typedef int (magi1_chunk_fn) (void *ctx, int chunk, const float *x);

typedef struct {
    int chunks;                 //  chunks of the video
    int64_t C, F, H, W;         //  latent channels, frames per chunk, height, width
    const float *y;             //  [chunks, len, dim] caption rows per chunk (magi1_caption_rows)
    const float *mask;          //  [chunks, len]
    magi1_sample_fn *observe;   //  or NULL
    void *observe_ctx;
    magi1_step_fn *on_step;     //  or NULL
    magi1_chunk_fn *on_chunk;   //  or NULL
    void *cb_ctx;               //  for on_step and on_chunk
    bool kv_keep_all;           //  keep every chunk's K/V for the whole video (the unbounded
                                //  layout: for checks) instead of only the rows still attended
    int64_t *kv_tokens;         //  or NULL: set to the token rows the KV cache was made with
} magi1_sample_args_t;

//  Forward steps the loop makes for a video of `chunks` chunks.
int magi1_sample_steps_total (const magi1_sched_t *s, int chunks);

//  Chunks of K/V rows the loop's cache holds for a video of `chunks` chunks: from the first
//  chunk that the current or a later forward step still attends (noise-to-clean ranges of up
//  to 5 chunks, the clean chunk's 1) to the end of the step's own keys (the distill copy
//  included). Rows before it are evicted as the video advances, so the figure stops growing
//  with the length: 5 for the base schedules at any window, 6 for distill at windows 3-4
//  (the copy), 5 at windows 1-2. -1 for an invalid schedule or out of memory.
int magi1_sample_cache_chunks (const magi1_sched_t *s, int chunks);

//  Denoises x [C, chunks*F, H, W] (the initial noise) in place. Returns 0, -1 (error set)
//  or -2 (on_step asked to stop).
int magi1_sample (magi1_dit_t *dit, const magi1_sched_t *s, const magi1_sample_args_t *a,
                  float *x, char **err);

void magi1_sample_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
