/*  wan21_dit_sample.c - the denoising loop of WanT2V.generate / WanI2V.generate: noise, then
    the toolkit's guidance loop (vdgx_guide.h) with the DiT as its velocity model (cond and
    uncond forwards, classifier-free guidance, scheduler step). Progress and cancellation at
    step boundaries. An image DiT gets cat(latent, y) and the image features in both calls.
*/
#include "wan21_dit.h"
#include "vdgx_util.h"
#include "vdgx_rng.h"
#include "vdgx_guide.h"
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
        vdgx_set_error (err, "wan21: width and height must be positive multiples of 16 (got %dx%d)",
               width, height);
        return -1;
    }
    if (frames < 1 || (frames - 1) % 4) {
        vdgx_set_error (err, "wan21: frames must be 4n+1 (got %d)", frames);
        return -1;
    }
    if (width > 8192 || height > 8192 || frames > 4097) {
        vdgx_set_error (err, "wan21: video size %dx%dx%d is too large", width, height, frames);
        return -1;
    }
    shape [0] = 16;
    shape [1] = (frames - 1) / 4 + 1;
    shape [2] = height / 8;
    shape [3] = width / 8;
    return 0;
}

//  The model of the guidance loop: branch 0 is the negative prompt when guiding, else the prompt.
typedef struct {
    wan21_dit_t *dit;
    wan21_dit_context_t *ctx [2];
    const int64_t *shape;
    const wan21_dit_sample_args_t *args;
    float *xin;                 //  image DiT: [in_dim, F, H, W] = cat(latent, y)
    size_t n;                   //  latent elements
} s_model_t;

static int
s_velocity (void *ctxp, int branch, const float *x, int64_t t, float sigma, float *v, char **err)
{
    s_model_t *m = (s_model_t *) ctxp;
    (void) sigma;
    if (m->xin) {
        memcpy (m->xin, x, m->n * sizeof (float));
        x = m->xin;
    }
    return wan21_dit_forward (m->dit, x, m->shape [1], m->shape [2], m->shape [3], t, m->ctx [branch], v, err);
}

static void
s_on_step (void *ctxp, int step, int64_t t, const float *x, float *const *v, size_t n)
{
    s_model_t *m = (s_model_t *) ctxp;
    bool cfg = m->ctx [1] != NULL;
    if (m->args->on_step)
        m->args->on_step (m->args->on_step_ctx, step, t, x, cfg? v [1]: v [0], v [0], n);
}

static void
s_progress (void *ctxp, int step, int steps)
{
    s_model_t *m = (s_model_t *) ctxp;
    if (m->args->progress)
        m->args->progress (m->args->progress_ctx, step, steps);
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
    shape [0] = c->out_dim;
    bool image = c->img_dim > 0;
    if (image != (args->y != NULL) || image != (args->image != NULL)) {
        vdgx_set_error (err, image? "wan21: this image-to-video DiT needs the conditioning latent "
                        "and the CLIP features": "wan21: a text-to-video DiT takes no image conditioning");
        return -1;
    }
    if (!image && c->in_dim != c->out_dim) {
        vdgx_set_error (err, "wan21: in_dim %d != out_dim %d without an image branch", c->in_dim, c->out_dim);
        return -1;
    }
    if (!args->context || args->context_len < 1) {
        vdgx_set_error (err, "wan21: no prompt context");
        return -1;
    }
    bool cfg = args->guidance != 1.0;
    if (cfg && (!args->context_null || args->context_null_len < 1)) {
        vdgx_set_error (err, "wan21: guidance %.3g needs a negative-prompt context", args->guidance);
        return -1;
    }
    size_t n = (size_t) (shape [0] * shape [1] * shape [2] * shape [3]);
    vdgx_flow_t *sched = vdgx_flow_new (args->sampler, args->steps, args->shift, n, err);
    if (!sched)
        return -1;
    float *x = malloc (n * sizeof (float));
    s_model_t m = { .dit = self, .shape = shape, .args = args, .n = n };
    size_t ny = image? n / (size_t) c->out_dim * (size_t) (c->in_dim - c->out_dim): 0;
    if (image) {
        m.xin = malloc ((n + ny) * sizeof (float));
        if (m.xin)
            memcpy (m.xin + n, args->y, ny * sizeof (float));
    }
    int rc = 0;
    if (!x || (image && !m.xin)) {
        vdgx_set_error (err, "wan21: out of memory (latents)");
        rc = -1;
    }
    if (rc == 0) {
        if (args->noise)
            memcpy (x, args->noise, n * sizeof (float));
        else
            vdgx_rng_normal_at (args->seed, 0, x, n);
        //  With guidance: branch 0 the negative prompt, branch 1 the prompt (vdgx_guide_cfg).
        m.ctx [cfg? 1: 0] = wan21_dit_context_new_image (self, args->context, args->context_len,
                                                         args->image, args->image_tokens, err);
        if (!m.ctx [cfg? 1: 0])
            rc = -1;
    }
    if (rc == 0 && cfg) {
        m.ctx [0] = wan21_dit_context_new_image (self, args->context_null, args->context_null_len,
                                                 args->image, args->image_tokens, err);
        if (!m.ctx [0])
            rc = -1;
    }
    if (rc == 0) {
        vdgx_guide_t g = { .velocity = s_velocity, .ctx = &m, .on_step = s_on_step,
                           .progress = s_progress, .cb_ctx = &m, .cancel = args->cancel };
        vdgx_guide_cfg (&g, args->guidance);
        rc = vdgx_guide_run (&g, sched, x, n, err);
        if (rc == VDGX_GUIDE_CANCELLED)
            rc = VDGX_ENGINE_CANCELLED;
    }
    wan21_dit_context_destroy (self, &m.ctx [0]);
    wan21_dit_context_destroy (self, &m.ctx [1]);
    vdgx_flow_destroy (&sched);
    free (m.xin);
    if (rc == 0)
        *latent_p = x;
    else
        free (x);
    return rc;
}
