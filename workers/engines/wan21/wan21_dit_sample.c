/*  wan21_dit_sample.c - the text-to-video denoising loop of WanT2V.generate:
    noise -> for each timestep: cond and uncond forwards, classifier-free guidance,
    scheduler step -> final latent. Progress and cancellation at step boundaries.
*/
#include "wan21_dit.h"
#include "wan21_util.h"
#include "wan21_rng.h"
#include "engine.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  wan/configs/shared_config.py sample_neg_prompt (UTF-8).
const char *wan21_default_negative_prompt =
    "\xe8\x89\xb2\xe8\xb0\x83\xe8\x89\xb3\xe4\xb8\xbd\xef\xbc\x8c\xe8\xbf\x87\xe6\x9b\x9d\xef\xbc\x8c"
    "\xe9\x9d\x99\xe6\x80\x81\xef\xbc\x8c\xe7\xbb\x86\xe8\x8a\x82\xe6\xa8\xa1\xe7\xb3\x8a\xe4\xb8\x8d"
    "\xe6\xb8\x85\xef\xbc\x8c\xe5\xad\x97\xe5\xb9\x95\xef\xbc\x8c\xe9\xa3\x8e\xe6\xa0\xbc\xef\xbc\x8c"
    "\xe4\xbd\x9c\xe5\x93\x81\xef\xbc\x8c\xe7\x94\xbb\xe4\xbd\x9c\xef\xbc\x8c\xe7\x94\xbb\xe9\x9d\xa2"
    "\xef\xbc\x8c\xe9\x9d\x99\xe6\xad\xa2\xef\xbc\x8c\xe6\x95\xb4\xe4\xbd\x93\xe5\x8f\x91\xe7\x81\xb0"
    "\xef\xbc\x8c\xe6\x9c\x80\xe5\xb7\xae\xe8\xb4\xa8\xe9\x87\x8f\xef\xbc\x8c\xe4\xbd\x8e\xe8\xb4\xa8"
    "\xe9\x87\x8f\xef\xbc\x8c" "JPEG" "\xe5\x8e\x8b\xe7\xbc\xa9\xe6\xae\x8b\xe7\x95\x99\xef\xbc\x8c"
    "\xe4\xb8\x91\xe9\x99\x8b\xe7\x9a\x84\xef\xbc\x8c\xe6\xae\x8b\xe7\xbc\xba\xe7\x9a\x84\xef\xbc\x8c"
    "\xe5\xa4\x9a\xe4\xbd\x99\xe7\x9a\x84\xe6\x89\x8b\xe6\x8c\x87\xef\xbc\x8c\xe7\x94\xbb\xe5\xbe\x97"
    "\xe4\xb8\x8d\xe5\xa5\xbd\xe7\x9a\x84\xe6\x89\x8b\xe9\x83\xa8\xef\xbc\x8c\xe7\x94\xbb\xe5\xbe\x97"
    "\xe4\xb8\x8d\xe5\xa5\xbd\xe7\x9a\x84\xe8\x84\xb8\xe9\x83\xa8\xef\xbc\x8c\xe7\x95\xb8\xe5\xbd\xa2"
    "\xe7\x9a\x84\xef\xbc\x8c\xe6\xaf\x81\xe5\xae\xb9\xe7\x9a\x84\xef\xbc\x8c\xe5\xbd\xa2\xe6\x80\x81"
    "\xe7\x95\xb8\xe5\xbd\xa2\xe7\x9a\x84\xe8\x82\xa2\xe4\xbd\x93\xef\xbc\x8c\xe6\x89\x8b\xe6\x8c\x87"
    "\xe8\x9e\x8d\xe5\x90\x88\xef\xbc\x8c\xe9\x9d\x99\xe6\xad\xa2\xe4\xb8\x8d\xe5\x8a\xa8\xe7\x9a\x84"
    "\xe7\x94\xbb\xe9\x9d\xa2\xef\xbc\x8c\xe6\x9d\x82\xe4\xb9\xb1\xe7\x9a\x84\xe8\x83\x8c\xe6\x99\xaf"
    "\xef\xbc\x8c\xe4\xb8\x89\xe6\x9d\xa1\xe8\x85\xbf\xef\xbc\x8c\xe8\x83\x8c\xe6\x99\xaf\xe4\xba\xba"
    "\xe5\xbe\x88\xe5\xa4\x9a\xef\xbc\x8c\xe5\x80\x92\xe7\x9d\x80\xe8\xb5\xb0";


int
wan21_latent_shape (int width, int height, int frames, int64_t shape [4], char **err)
{
    //  VAE stride (4, 8, 8) and DiT patch (1, 2, 2).
    if (width < 16 || height < 16 || width % 16 || height % 16) {
        wan21_set_error (err, "wan21: width and height must be positive multiples of 16 (got %dx%d)",
               width, height);
        return -1;
    }
    if (frames < 1 || (frames - 1) % 4) {
        wan21_set_error (err, "wan21: frames must be 4n+1 (got %d)", frames);
        return -1;
    }
    if (width > 8192 || height > 8192 || frames > 4097) {
        wan21_set_error (err, "wan21: video size %dx%dx%d is too large", width, height, frames);
        return -1;
    }
    shape [0] = 16;
    shape [1] = (frames - 1) / 4 + 1;
    shape [2] = height / 8;
    shape [3] = width / 8;
    return 0;
}

static bool
s_cancelled (const wan21_dit_sample_args_t *a)
{
    return a->cancel && atomic_load (a->cancel) != 0;
}

int
wan21_dit_sample (wan21_dit_t *self, const wan21_dit_sample_args_t *args, float **latent_p,
                  int64_t shape [4], char **err)
{
    assert (self && args && latent_p && shape);
    *latent_p = NULL;
    const wan21_dit_config_t *c = wan21_dit_config (self);
    if (wan21_latent_shape (args->width, args->height, args->frames, shape, err))
        return -1;
    shape [0] = c->in_dim;
    if (c->in_dim != c->out_dim) {
        wan21_set_error (err, "wan21: in_dim %d != out_dim %d: not a text-to-video DiT", c->in_dim, c->out_dim);
        return -1;
    }
    if (!args->context || args->context_len < 1) {
        wan21_set_error (err, "wan21: no prompt context");
        return -1;
    }
    bool cfg = args->guidance != 1.0;
    if (cfg && (!args->context_null || args->context_null_len < 1)) {
        wan21_set_error (err, "wan21: guidance %.3g needs a negative-prompt context", args->guidance);
        return -1;
    }
    size_t n = (size_t) (shape [0] * shape [1] * shape [2] * shape [3]);
    wan21_sched_t *sched = wan21_sched_new (args->sampler, args->steps, args->shift, n, err);
    if (!sched)
        return -1;
    float *x = malloc (n * sizeof (float));
    float *cond = malloc (n * sizeof (float));
    float *uncond = cfg? malloc (n * sizeof (float)): NULL;
    wan21_dit_context_t *ctx_c = NULL, *ctx_u = NULL;
    int rc = 0;
    if (!x || !cond || (cfg && !uncond)) {
        wan21_set_error (err, "wan21: out of memory (latents)");
        rc = -1;
    }
    if (rc == 0) {
        if (args->noise)
            memcpy (x, args->noise, n * sizeof (float));
        else
            wan21_rng_normal_at (args->seed, 0, x, n);
        ctx_c = wan21_dit_context_new (self, args->context, args->context_len, err);
        if (!ctx_c)
            rc = -1;
    }
    if (rc == 0 && cfg) {
        ctx_u = wan21_dit_context_new (self, args->context_null, args->context_null_len, err);
        if (!ctx_u)
            rc = -1;
    }
    for (int i = 0; rc == 0 && i < args->steps; i++) {
        if (s_cancelled (args)) {
            rc = VDGX_ENGINE_CANCELLED;
            break;
        }
        int64_t t = wan21_sched_timestep (sched, i);
        if (wan21_dit_forward (self, x, shape [1], shape [2], shape [3], t, ctx_c, cond, err)) {
            rc = -1;
            break;
        }
        if (cfg && wan21_dit_forward (self, x, shape [1], shape [2], shape [3], t, ctx_u, uncond, err)) {
            rc = -1;
            break;
        }
        if (args->on_step)
            args->on_step (args->on_step_ctx, i, t, x, cond, cfg? uncond: cond, n);
        if (cfg) {
            float g = (float) args->guidance;
            for (size_t j = 0; j < n; j++)
                cond [j] = uncond [j] + g * (cond [j] - uncond [j]);
        }
        wan21_sched_step (sched, cond, x);
        if (args->progress)
            args->progress (args->progress_ctx, i + 1, args->steps);
    }
    wan21_dit_context_destroy (self, &ctx_c);
    wan21_dit_context_destroy (self, &ctx_u);
    wan21_sched_destroy (&sched);
    free (cond);
    free (uncond);
    if (rc == 0)
        *latent_p = x;
    else
        free (x);
    return rc;
}
