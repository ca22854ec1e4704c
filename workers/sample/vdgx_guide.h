/*  vdgx_guide.h - the toolkit's denoising loop: a flow scheduler (vdgx_flow.h) driven by a
    velocity callback, with classifier-free and multi-branch guidance.

    Each step calls the callback once per branch (0..branches-1, in order) on the same
    latent, then combines the velocities
        v = v[0] + sum over b >= 1 of weight[b] * (v[b] - v[ref[b]])      (ref[b] < b)
    and advances the scheduler. Examples:
      no guidance   : 1 branch (the conditional one).
      CFG (Wan)     : branches (uncond, cond), weight[1] = g, ref[1] = 0: u + g (c - u).
      3-way (MAGI-1): (uncond, text-free cond, full cond) with weights (g_x, g_t) and
                      refs (0, 1): u + g_x (x - u) + g_t (c - x).
      two modalities (LTX-2): one latent of video then audio tokens, CFG at scale g_v on
                      the first `split` elements and g_a on the rest (vdgx_guide_cfg2).
*/
#ifndef VDGX_GUIDE_H_INCLUDED
#define VDGX_GUIDE_H_INCLUDED

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "vdgx_flow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_GUIDE_MAX_BRANCHES 4
#define VDGX_GUIDE_CANCELLED (-2)

//  v [n] = the model's velocity for branch `branch` at latent x [n], timestep t, sigma.
//  Returns 0, or -1 with *err.
typedef int (vdgx_guide_velocity_fn) (void *ctx, int branch, const float *x, int64_t t,
                                      float sigma, float *v, char **err);

typedef struct {
    int branches;                                   //  1..VDGX_GUIDE_MAX_BRANCHES
    float weight [VDGX_GUIDE_MAX_BRANCHES];         //  [0] unused
    int ref [VDGX_GUIDE_MAX_BRANCHES];              //  [0] unused
    vdgx_guide_velocity_fn *velocity;
    void *ctx;
    //  After the model calls of step `step`, before the combination (v[b] per branch), may be NULL.
    void (*on_step) (void *ctx, int step, int64_t t, const float *x, float *const *v, size_t n);
    void (*progress) (void *ctx, int step, int steps);      //  after each step, may be NULL
    void *cb_ctx;                                           //  for on_step and progress
    atomic_int *cancel;                                     //  checked before each step, may be NULL
    //  Elements at and after `split` (0 = none) take weight_split [b] instead of weight [b].
    size_t split;
    float weight_split [VDGX_GUIDE_MAX_BRANCHES];
} vdgx_guide_t;

//  Classifier-free guidance with scale g: branches (uncond, cond); one branch when g == 1.
void vdgx_guide_cfg (vdgx_guide_t *g, double scale);
//  The same with scale for the first `split` elements and scale_split for the rest; one
//  branch when both are 1.
void vdgx_guide_cfg2 (vdgx_guide_t *g, double scale, size_t split, double scale_split);

//  Runs every remaining step of sched on x [n] (in place). 0, VDGX_GUIDE_CANCELLED, or -1
//  with *err.
int vdgx_guide_run (const vdgx_guide_t *g, vdgx_flow_t *sched, float *x, size_t n, char **err);

void vdgx_guide_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
