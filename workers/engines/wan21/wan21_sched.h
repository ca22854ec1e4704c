/*  wan21_sched.h - flow-matching samplers of Wan 2.1 (host-side, f32 latents).

    Schedules (num_train_timesteps T = 1000, shift s, N steps), as the official pipeline sets them:
      UNIPC : sigma_i = shift(linspace(sigma_max, 0, N+1)[i]), i < N, sigma_max = f32(0.999)
              (the training schedule's first sigma), so t_0 = 999.
      DPMPP, EULER : sigma_i = shift(linspace(1, 0, N+1)[i]), i < N, so t_0 = 1000.
      shift(x) = s*x / (1 + (s-1)*x) in float64; timesteps = int64(sigma_i * T) (truncated);
      sigmas are then rounded to f32 and a final sigma 0 is appended.
    Solvers (flow prediction v, x0 = x - sigma*v):
      UNIPC : FlowUniPCMultistepScheduler, order 2, bh2, predict-x0 with the UniC corrector,
              lower-order final (order 1 on the last step, order 1 warm-up on the first).
      DPMPP : FlowDPMSolverMultistepScheduler, dpmsolver++ 2M midpoint, first-order on the
              first and last step.
      EULER : x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v.
    The step index simply counts calls (the official schedulers look the timestep up in the
    schedule, which is the same unless two leading timesteps are equal).
*/
#ifndef WAN21_SCHED_H_INCLUDED
#define WAN21_SCHED_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WAN21_SAMPLER_UNIPC = 0,
    WAN21_SAMPLER_DPMPP,
    WAN21_SAMPLER_EULER
} wan21_sampler_t;

typedef struct _wan21_sched_t wan21_sched_t;

//  "unipc", "dpm++" (also "dpmpp"), "euler"; -1 when unknown.
int wan21_sampler_from_name (const char *name, wan21_sampler_t *sampler);
const char *wan21_sampler_name (wan21_sampler_t sampler);

//  A scheduler for `steps` steps (1..1000) over latents of n floats. NULL on bad arguments
//  (steps out of range, shift <= 0) or out of memory, with a message in *err when err is set.
wan21_sched_t *wan21_sched_new (wan21_sampler_t sampler, int steps, double shift, size_t n,
                                char **err);
void wan21_sched_destroy (wan21_sched_t **self_p);
int wan21_sched_steps (wan21_sched_t *self);
//  Timestep passed to the model at step i (int64, as the official pipeline passes it).
int64_t wan21_sched_timestep (wan21_sched_t *self, int i);
//  Sigma i, 0 <= i <= steps (sigma[steps] = 0).
float wan21_sched_sigma (wan21_sched_t *self, int i);
//  Advances sample (n floats, in place) with the model output v of the current step.
//  Returns -1 when called more than `steps` times.
int wan21_sched_step (wan21_sched_t *self, const float *model_output, float *sample);
//  Restarts at step 0 (same schedule).
void wan21_sched_reset (wan21_sched_t *self);

void wan21_sched_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
