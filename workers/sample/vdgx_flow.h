/*  vdgx_flow.h - flow-matching schedules and solvers of the toolkit (host-side, f32 latents).

    Wan's schedules (num_train_timesteps T = 1000, shift s, N steps), as its pipeline sets them:
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
    LTX's token-count shift (vdgx_flow_ltx_sigmas): sigma = linspace(1, 0, N+1), shifted by
      mu = base + (max - base) * (tokens - 1024) / (4096 - 1024) (base 0.95, max 2.05) as
      exp(mu) / (exp(mu) + 1/sigma - 1) (0 stays 0), then stretched so that the last nonzero
      sigma is `terminal` (0.1): 1 - (1 - sigma) * (1 - terminal) / (1 - sigma_last);
      terminal <= 0: no stretch. Computed in float32 step by step as the official
      LTX2Scheduler computes it (sigma_0 is 0.99999982, not 1, for 4 steps).
      Any other schedule goes in through vdgx_flow_new_sigmas.
    The step index simply counts calls (the official schedulers look the timestep up in the
    schedule, which is the same unless two leading timesteps are equal).
*/
#ifndef VDGX_FLOW_H_INCLUDED
#define VDGX_FLOW_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VDGX_SOLVER_UNIPC = 0,
    VDGX_SOLVER_DPMPP,
    VDGX_SOLVER_EULER
} vdgx_solver_t;

typedef struct _vdgx_flow_t vdgx_flow_t;

//  "unipc", "dpm++" (also "dpmpp"), "euler"; -1 when unknown.
int vdgx_solver_from_name (const char *name, vdgx_solver_t *sampler);
const char *vdgx_solver_name (vdgx_solver_t sampler);

//  A scheduler for `steps` steps (1..1000) over latents of n floats. NULL on bad arguments
//  (steps out of range, shift <= 0) or out of memory, with a message in *err when err is set.
vdgx_flow_t *vdgx_flow_new (vdgx_solver_t sampler, int steps, double shift, size_t n,
                                char **err);
//  A scheduler over given sigmas [steps + 1] (decreasing, the last usually 0) and model
//  timesteps [steps] (NULL = int64(sigma * 1000)).
vdgx_flow_t *vdgx_flow_new_sigmas (vdgx_solver_t sampler, int steps, const float *sigmas,
                                   const int64_t *timesteps, size_t n, char **err);
void vdgx_flow_destroy (vdgx_flow_t **self_p);
//  Wan's shift: s*x / (1 + (s-1)*x).
double vdgx_flow_shift (double sigma, double shift);
//  LTX's schedule for `tokens` latent tokens (see above): sigmas [steps + 1], last 0.
void vdgx_flow_ltx_sigmas (int steps, int64_t tokens, double base_shift, double max_shift,
                           double terminal, float *sigmas);
int vdgx_flow_steps (vdgx_flow_t *self);
//  Timestep passed to the model at step i (int64, as the official pipeline passes it).
int64_t vdgx_flow_timestep (vdgx_flow_t *self, int i);
//  Sigma i, 0 <= i <= steps (sigma[steps] = 0).
float vdgx_flow_sigma (vdgx_flow_t *self, int i);
//  Advances sample (n floats, in place) with the model output v of the current step.
//  Returns -1 when called more than `steps` times.
int vdgx_flow_step (vdgx_flow_t *self, const float *model_output, float *sample);
//  Restarts at step 0 (same schedule).
void vdgx_flow_reset (vdgx_flow_t *self);

void vdgx_flow_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
