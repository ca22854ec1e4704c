/*  refcheck_wan21_sampling.c - the samplers and the denoising loop against whole official
    WanT2V.generate runs (UniPC 5 steps, DPM++ 4 steps, guide scale 5, shift 5):
      1. replay: the stored cond/uncond model outputs of every step go through our scheduler;
         every step's latent, the schedule and the final latent x0 must match;
      2. loop: wan21_dit_sample with our DiT on the stored noise and contexts; every step's
         latent, cond and uncond outputs and x0 must match;
      3. the decoded video: vdgx_refcheck_wan21_sampling_video, a hook the VAE part provides
         (a weak default here reports it as not checked yet).
*/
#include "refcheck.h"
#include "wan21_dit.h"
#include "vdgx_flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_sampling.safetensors"

wan21_dit_t *refcheck_wan21_dit_load (vdgx_refcheck_t *rc);

//  Hook for the VAE part: decode x0 [16, F, H, W] and compare it with "<solver>.video".
//  The VAE engineer defines a strong vdgx_refcheck_wan21_sampling_video in their own file;
//  this default only says the comparison is not there yet. Returns 0 when it ran.
int vdgx_refcheck_wan21_sampling_video (vdgx_refcheck_t *rc, const char *solver,
                                        const float *x0, const int64_t shape [4]);
__attribute__ ((weak)) int
vdgx_refcheck_wan21_sampling_video (vdgx_refcheck_t *rc, const char *solver, const float *x0,
                                    const int64_t shape [4])
{
    (void) rc; (void) x0; (void) shape;
    printf ("  %s.video: not checked (the VAE part provides the decode hook)\n", solver);
    return 0;
}

typedef struct {
    const char *name;           //  "unipc" | "dpmpp"
    const char *sched_key;      //  manifest configs.schedules key
    vdgx_solver_t sampler;
} s_solver_t;

typedef struct {
    vdgx_refcheck_t *rc;
    const char *solver;
} s_step_ctx_t;

static void
s_on_step (void *arg, int step, int64_t t, const float *latent, const float *cond,
           const float *uncond, size_t n)
{
    s_step_ctx_t *ctx = (s_step_ctx_t *) arg;
    vdgx_refcheck_t *rc = ctx->rc;
    char name [128], label [160];
    size_t nt = 0;
    snprintf (name, sizeof (name), "%s.step%d.t", ctx->solver, step);
    int64_t *want_t = vdgx_refcheck_load_i64 (rc, S_VEC, name, NULL, NULL, &nt);
    rc->checks++;
    if (!want_t || nt != 1 || want_t [0] != t) {
        printf ("  loop %s: t %lld: FAIL (want %lld)\n", name, (long long) t,
                want_t? (long long) want_t [0]: -1LL);
        rc->failures++;
    }
    else
    if (rc->verbose)
        printf ("  loop %s = %lld: PASS\n", name, (long long) t);
    free (want_t);
    const char *parts [3] = { "latent", "cond", "uncond" };
    const float *got [3] = { latent, cond, uncond };
    for (int i = 0; i < 3; i++) {
        snprintf (name, sizeof (name), "%s.step%d.%s", ctx->solver, step, parts [i]);
        snprintf (label, sizeof (label), "loop %s", name);
        vdgx_refcheck_compare_stored (rc, label, got [i], n, S_VEC, name);
    }
}

static int
s_replay (vdgx_refcheck_t *rc, const s_solver_t *s, int steps, double shift, double guide)
{
    char name [128], label [160];
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0;
    snprintf (name, sizeof (name), "%s.noise", s->name);
    float *x = vdgx_refcheck_load (rc, S_VEC, name, shape, &ndim, &n);
    if (!x)
        return -1;
    char *err = NULL;
    vdgx_flow_t *sched = vdgx_flow_new (s->sampler, steps, shift, n, &err);
    if (!sched) {
        fprintf (stderr, "refcheck sampling: %s\n", err? err: "scheduler");
        free (err);
        free (x);
        return -1;
    }
    //  The schedule itself.
    size_t nts = 0, nsg = 0;
    snprintf (name, sizeof (name), "%s.sched.timesteps", s->name);
    int64_t *ts = vdgx_refcheck_load_i64 (rc, S_VEC, name, NULL, NULL, &nts);
    snprintf (name, sizeof (name), "%s.sched.sigmas", s->name);
    float *sg = vdgx_refcheck_load (rc, S_VEC, name, NULL, NULL, &nsg);
    int rcode = 0;
    if (!ts || !sg || nts != (size_t) steps || nsg != (size_t) steps + 1)
        rcode = -1;
    else {
        int bad = 0;
        float *mine = malloc ((steps + 1) * sizeof (float));
        for (int i = 0; i < steps; i++)
            bad += ts [i] != vdgx_flow_timestep (sched, i);
        for (int i = 0; i <= steps; i++)
            mine [i] = vdgx_flow_sigma (sched, i);
        rc->checks++;
        if (bad)
            rc->failures++;
        printf ("  replay %s.sched.timesteps: %s\n", s->name, bad? "FAIL": "PASS");
        snprintf (label, sizeof (label), "replay %s.sched.sigmas", s->name);
        vdgx_refcheck_compare (rc, label, mine, sg, (size_t) steps + 1);
        free (mine);
    }
    free (ts);
    free (sg);
    float *noise_pred = malloc (n * sizeof (float));
    for (int i = 0; rcode == 0 && i < steps; i++) {
        snprintf (name, sizeof (name), "%s.step%d.latent", s->name, i);
        snprintf (label, sizeof (label), "replay %s", name);
        vdgx_refcheck_compare_stored (rc, label, x, n, S_VEC, name);
        size_t nc = 0, nu = 0;
        snprintf (name, sizeof (name), "%s.step%d.cond", s->name, i);
        float *cond = vdgx_refcheck_load (rc, S_VEC, name, NULL, NULL, &nc);
        snprintf (name, sizeof (name), "%s.step%d.uncond", s->name, i);
        float *uncond = vdgx_refcheck_load (rc, S_VEC, name, NULL, NULL, &nu);
        if (!cond || !uncond || nc != n || nu != n || !noise_pred)
            rcode = -1;
        else {
            for (size_t j = 0; j < n; j++)
                noise_pred [j] = uncond [j] + (float) guide * (cond [j] - uncond [j]);
            vdgx_flow_step (sched, noise_pred, x);
        }
        free (cond);
        free (uncond);
    }
    if (rcode == 0) {
        snprintf (name, sizeof (name), "%s.x0", s->name);
        snprintf (label, sizeof (label), "replay %s", name);
        vdgx_refcheck_compare_stored (rc, label, x, n, S_VEC, name);
    }
    free (noise_pred);
    vdgx_flow_destroy (&sched);
    free (x);
    return rcode;
}

static int
s_loop (vdgx_refcheck_t *rc, wan21_dit_t *dit, const s_solver_t *s, int steps, double shift,
        double guide, int width, int height, int frames)
{
    char name [128], label [160];
    int64_t cs [VDGX_MAX_DIMS], us [VDGX_MAX_DIMS];
    int cn = 0, un = 0;
    size_t nn = 0;
    snprintf (name, sizeof (name), "%s.noise", s->name);
    float *noise = vdgx_refcheck_load (rc, S_VEC, name, NULL, NULL, &nn);
    snprintf (name, sizeof (name), "%s.context", s->name);
    float *ctx = vdgx_refcheck_load (rc, S_VEC, name, cs, &cn, NULL);
    snprintf (name, sizeof (name), "%s.context_null", s->name);
    float *ctx_null = vdgx_refcheck_load (rc, S_VEC, name, us, &un, NULL);
    int rcode = -1;
    if (noise && ctx && ctx_null && cn == 2 && un == 2) {
        s_step_ctx_t sctx = { rc, s->name };
        wan21_dit_sample_args_t a = {
            .context = ctx, .context_len = cs [0],
            .context_null = ctx_null, .context_null_len = us [0],
            .width = width, .height = height, .frames = frames,
            .steps = steps, .guidance = guide, .shift = shift, .sampler = s->sampler,
            .noise = noise, .on_step = s_on_step, .on_step_ctx = &sctx,
        };
        float *x0 = NULL;
        int64_t shape [4];
        char *err = NULL;
        int r = wan21_dit_sample (dit, &a, &x0, shape, &err);
        if (r != 0)
            fprintf (stderr, "refcheck sampling: %s loop: %s\n", s->name, err? err: "failed");
        else
        if ((size_t) (shape [0] * shape [1] * shape [2] * shape [3]) != nn)
            fprintf (stderr, "refcheck sampling: %s latent shape differs from the stored noise\n",
                     s->name);
        else {
            snprintf (name, sizeof (name), "%s.x0", s->name);
            snprintf (label, sizeof (label), "loop %s", name);
            vdgx_refcheck_compare_stored (rc, label, x0, nn, S_VEC, name);
            rcode = vdgx_refcheck_wan21_sampling_video (rc, s->name, x0, shape);
        }
        free (err);
        free (x0);
    }
    free (noise);
    free (ctx);
    free (ctx_null);
    return rcode;
}

int
vdgx_refcheck_wan21_sampling (vdgx_refcheck_t *rc)
{
    json_t *pipe = json_object_get (json_object_get (rc->manifest, "configs"), "pipeline");
    json_t *scheds = json_object_get (json_object_get (rc->manifest, "configs"), "schedules");
    json_t *size = json_object_get (pipe, "size");
    if (!json_is_object (pipe) || !json_is_object (scheds) || json_array_size (size) != 2) {
        fprintf (stderr, "refcheck sampling: manifest configs.pipeline / schedules missing\n");
        return -1;
    }
    double shift = json_number_value (json_object_get (pipe, "shift"));
    double guide = json_number_value (json_object_get (pipe, "guide_scale"));
    int width = (int) json_integer_value (json_array_get (size, 0));
    int height = (int) json_integer_value (json_array_get (size, 1));
    int frames = (int) json_integer_value (json_object_get (pipe, "frame_num"));
    const s_solver_t solvers [2] = {
        { "unipc", "unipc", VDGX_SOLVER_UNIPC },
        { "dpmpp", "dpmpp", VDGX_SOLVER_DPMPP },
    };
    int result = 0;
    for (int i = 0; i < 2; i++) {
        json_t *st = json_object_get (json_object_get (scheds, solvers [i].sched_key), "steps");
        if (!json_is_integer (st) || s_replay (rc, &solvers [i], (int) json_integer_value (st),
                                               shift, guide))
            result = -1;
    }
    wan21_dit_t *dit = refcheck_wan21_dit_load (rc);
    if (!dit)
        return -1;
    for (int i = 0; i < 2; i++) {
        json_t *st = json_object_get (json_object_get (scheds, solvers [i].sched_key), "steps");
        if (s_loop (rc, dit, &solvers [i], (int) json_integer_value (st), shift, guide, width,
                    height, frames))
            result = -1;
    }
    wan21_dit_destroy (&dit);
    return result;
}
