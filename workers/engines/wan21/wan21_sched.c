/*  wan21_sched.c - UniPC (bh2), DPM++ 2M and Euler for flow matching (see wan21_sched.h).

    The latents are host f32; the per-step scalars (lambdas, phi functions, UniC weights) are
    computed in double from the f32 sigmas, which the official code keeps as f32 0-dim tensors:
    the difference is far below the 1e-4 reference tolerance. log(0) = -inf at sigma 0 (the last
    step) and at alpha 0 (DPM++ starts at sigma 1) is intended: the formulas then reduce to
    their exact limits (x_t = x0 on the last step, D1 = 0 after a sigma-1 step).
*/
#include "wan21_sched.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAN21_TRAIN_STEPS 1000

struct _wan21_sched_t {
    wan21_sampler_t sampler;
    int steps;
    size_t n;
    int64_t *timesteps;     //  [steps]
    float *sigmas;          //  [steps + 1]
    int index;              //  next step
    int lower_order_nums;
    int this_order;         //  UniPC: order of the last predictor (used by the corrector)
    float *m [2];           //  converted outputs (x0 predictions): m[1] newest
    float *last_sample;     //  UniPC: the sample the last predictor started from
    float *scratch;         //  UniPC: the newest x0 prediction while the corrector runs
    bool have_last;
};

static void
s_set_error (char **err, const char *msg)
{
    if (err)
        *err = strdup (msg);
}

int
wan21_sampler_from_name (const char *name, wan21_sampler_t *sampler)
{
    if (!name || !sampler)
        return -1;
    if (strcmp (name, "unipc") == 0)
        *sampler = WAN21_SAMPLER_UNIPC;
    else
    if (strcmp (name, "dpm++") == 0 || strcmp (name, "dpmpp") == 0)
        *sampler = WAN21_SAMPLER_DPMPP;
    else
    if (strcmp (name, "euler") == 0)
        *sampler = WAN21_SAMPLER_EULER;
    else
        return -1;
    return 0;
}

const char *
wan21_sampler_name (wan21_sampler_t sampler)
{
    switch (sampler) {
        case WAN21_SAMPLER_UNIPC: return "unipc";
        case WAN21_SAMPLER_DPMPP: return "dpm++";
        case WAN21_SAMPLER_EULER: return "euler";
    }
    return "?";
}

//  numpy.linspace(start, stop, num)[i] for i < num - 1 (the last element is never used).
static double
s_linspace (double start, double stop, int num, int i)
{
    double step = (stop - start) / (double) (num - 1);
    return (double) i * step + start;
}

wan21_sched_t *
wan21_sched_new (wan21_sampler_t sampler, int steps, double shift, size_t n, char **err)
{
    if (steps < 1 || steps > WAN21_TRAIN_STEPS) {
        s_set_error (err, "wan21 sampler: steps must be within 1..1000");
        return NULL;
    }
    if (!(shift > 0.0) || !isfinite (shift)) {
        s_set_error (err, "wan21 sampler: shift must be a positive number");
        return NULL;
    }
    if (sampler != WAN21_SAMPLER_UNIPC && sampler != WAN21_SAMPLER_DPMPP
    &&  sampler != WAN21_SAMPLER_EULER) {
        s_set_error (err, "wan21 sampler: unknown sampler");
        return NULL;
    }
    if (n == 0) {
        s_set_error (err, "wan21 sampler: empty latent");
        return NULL;
    }
    wan21_sched_t *self = calloc (1, sizeof (wan21_sched_t));
    if (!self) {
        s_set_error (err, "wan21 sampler: out of memory");
        return NULL;
    }
    self->sampler = sampler;
    self->steps = steps;
    self->n = n;
    self->timesteps = calloc ((size_t) steps, sizeof (int64_t));
    self->sigmas = calloc ((size_t) steps + 1, sizeof (float));
    if (sampler != WAN21_SAMPLER_EULER) {
        self->m [0] = malloc (n * sizeof (float));
        self->m [1] = malloc (n * sizeof (float));
    }
    if (sampler == WAN21_SAMPLER_UNIPC) {
        self->last_sample = malloc (n * sizeof (float));
        self->scratch = malloc (n * sizeof (float));
    }
    if (!self->timesteps || !self->sigmas
    || (sampler != WAN21_SAMPLER_EULER && (!self->m [0] || !self->m [1]))
    || (sampler == WAN21_SAMPLER_UNIPC && (!self->last_sample || !self->scratch))) {
        wan21_sched_destroy (&self);
        s_set_error (err, "wan21 sampler: out of memory");
        return NULL;
    }
    //  UniPC starts from the training schedule's largest sigma, 1 - 1/T rounded to f32.
    double sigma_max = sampler == WAN21_SAMPLER_UNIPC
                     ? (double) (float) (1.0 - 1.0 / WAN21_TRAIN_STEPS): 1.0;
    for (int i = 0; i < steps; i++) {
        double s = s_linspace (sigma_max, 0.0, steps + 1, i);
        s = shift * s / (1.0 + (shift - 1.0) * s);
        self->timesteps [i] = (int64_t) (s * WAN21_TRAIN_STEPS);
        self->sigmas [i] = (float) s;
    }
    self->sigmas [steps] = 0.0f;
    return self;
}

void
wan21_sched_destroy (wan21_sched_t **self_p)
{
    assert (self_p);
    wan21_sched_t *self = *self_p;
    if (self) {
        free (self->timesteps);
        free (self->sigmas);
        free (self->m [0]);
        free (self->m [1]);
        free (self->last_sample);
        free (self->scratch);
        free (self);
        *self_p = NULL;
    }
}

int
wan21_sched_steps (wan21_sched_t *self)
{
    assert (self);
    return self->steps;
}

int64_t
wan21_sched_timestep (wan21_sched_t *self, int i)
{
    assert (self && i >= 0 && i < self->steps);
    return self->timesteps [i];
}

float
wan21_sched_sigma (wan21_sched_t *self, int i)
{
    assert (self && i >= 0 && i <= self->steps);
    return self->sigmas [i];
}

void
wan21_sched_reset (wan21_sched_t *self)
{
    assert (self);
    self->index = 0;
    self->lower_order_nums = 0;
    self->this_order = 0;
    self->have_last = false;
}

//  lambda = log(alpha) - log(sigma) with alpha = 1 - sigma (flow matching).
static double
s_lambda (float sigma)
{
    double alpha = (double) (1.0f - sigma);
    return log (alpha) - log ((double) sigma);
}

//  UniC corrector: refines sample (x at sigma[i]) using m_new = x0 prediction at it.
static void
s_unipc_correct (wan21_sched_t *self, const float *m_new, float *sample)
{
    const int i = self->index;
    const int order = self->this_order;
    const float *m0 = self->m [1];
    const float *x = self->last_sample;
    double sigma_t = self->sigmas [i], sigma_s0 = self->sigmas [i - 1];
    double alpha_t = (double) (1.0f - self->sigmas [i]);
    double lambda_t = s_lambda (self->sigmas [i]);
    double lambda_s0 = s_lambda (self->sigmas [i - 1]);
    double h = lambda_t - lambda_s0;
    double hh = -h;                         //  predict x0
    double h_phi_1 = expm1 (hh);
    double b_h = expm1 (hh);                //  bh2
    double rk = 0, rho0 = 0, rho_last = 0.5;
    if (order == 2) {
        rk = (s_lambda (self->sigmas [i - 2]) - lambda_s0) / h;
        double h_phi_k = h_phi_1 / hh - 1.0;
        double b1 = h_phi_k / b_h;
        h_phi_k = h_phi_k / hh - 0.5;
        double b2 = h_phi_k * 2.0 / b_h;
        //  Solve [[1, 1], [rk, 1]] rho = [b1, b2].
        rho0 = (b1 - b2) / (1.0 - rk);
        rho_last = b1 - rho0;
    }
    double cx = sigma_t / sigma_s0, cm = alpha_t * h_phi_1, cb = alpha_t * b_h;
    const float *m1 = self->m [0];
    for (size_t j = 0; j < self->n; j++) {
        double corr = rho_last * ((double) m_new [j] - m0 [j]);
        if (order == 2)
            corr += rho0 * (((double) m1 [j] - m0 [j]) / rk);
        sample [j] = (float) (cx * x [j] - cm * m0 [j] - cb * corr);
    }
}

//  UniP predictor from sigma[i] to sigma[i+1] (m[1] = x0 prediction at sigma[i]).
static void
s_unipc_predict (wan21_sched_t *self, int order, float *sample)
{
    const int i = self->index;
    const float *m0 = self->m [1], *m1 = self->m [0];
    double sigma_t = self->sigmas [i + 1], sigma_s0 = self->sigmas [i];
    double alpha_t = (double) (1.0f - self->sigmas [i + 1]);
    double lambda_s0 = s_lambda (self->sigmas [i]);
    double h = s_lambda (self->sigmas [i + 1]) - lambda_s0;
    double hh = -h;
    double h_phi_1 = expm1 (hh);
    double b_h = expm1 (hh);
    double rk = order == 2? (s_lambda (self->sigmas [i - 1]) - lambda_s0) / h: 1.0;
    double cx = sigma_t / sigma_s0, cm = alpha_t * h_phi_1, cb = alpha_t * b_h;
    for (size_t j = 0; j < self->n; j++) {
        double v = cx * sample [j] - cm * m0 [j];
        if (order == 2)
            v -= cb * 0.5 * (((double) m1 [j] - m0 [j]) / rk);
        sample [j] = (float) v;
    }
}

static void
s_push_x0 (wan21_sched_t *self, const float *v, const float *sample)
{
    float *tmp = self->m [0];
    self->m [0] = self->m [1];
    self->m [1] = tmp;
    float sigma = self->sigmas [self->index];
    for (size_t j = 0; j < self->n; j++)
        tmp [j] = sample [j] - sigma * v [j];
}

static void
s_step_unipc (wan21_sched_t *self, const float *v, float *sample)
{
    //  x0 prediction at this step, from the sample the model saw (before the corrector).
    float *m_new = self->scratch;
    float sigma = self->sigmas [self->index];
    for (size_t j = 0; j < self->n; j++)
        m_new [j] = sample [j] - sigma * v [j];
    if (self->index > 0 && self->have_last)
        s_unipc_correct (self, m_new, sample);
    //  Rotate the history: oldest slot becomes the next scratch buffer.
    self->scratch = self->m [0];
    self->m [0] = self->m [1];
    self->m [1] = m_new;

    int order = self->steps - self->index < 2? self->steps - self->index: 2;
    if (order > self->lower_order_nums + 1)
        order = self->lower_order_nums + 1;
    self->this_order = order;
    memcpy (self->last_sample, sample, self->n * sizeof (float));
    self->have_last = true;
    s_unipc_predict (self, order, sample);
    if (self->lower_order_nums < 2)
        self->lower_order_nums++;
}

static void
s_step_dpmpp (wan21_sched_t *self, const float *v, float *sample)
{
    const int i = self->index;
    s_push_x0 (self, v, sample);
    const float *m0 = self->m [1], *m1 = self->m [0];
    bool first_order = self->lower_order_nums < 1 || i == self->steps - 1;
    double sigma_t = self->sigmas [i + 1], sigma_s0 = self->sigmas [i];
    double alpha_t = (double) (1.0f - self->sigmas [i + 1]);
    double lambda_s0 = s_lambda (self->sigmas [i]);
    double h = s_lambda (self->sigmas [i + 1]) - lambda_s0;
    double cx = sigma_t / sigma_s0;
    double cm = alpha_t * (exp (-h) - 1.0);
    if (first_order)
        for (size_t j = 0; j < self->n; j++)
            sample [j] = (float) (cx * sample [j] - cm * m0 [j]);
    else {
        double h0 = lambda_s0 - s_lambda (self->sigmas [i - 1]);
        double inv_r0 = 1.0 / (h0 / h);     //  0 when the previous sigma was 1
        for (size_t j = 0; j < self->n; j++) {
            double d1 = inv_r0 * ((double) m0 [j] - m1 [j]);
            sample [j] = (float) (cx * sample [j] - cm * m0 [j] - 0.5 * cm * d1);
        }
    }
    if (self->lower_order_nums < 2)
        self->lower_order_nums++;
}

int
wan21_sched_step (wan21_sched_t *self, const float *model_output, float *sample)
{
    assert (self && model_output && sample);
    if (self->index >= self->steps)
        return -1;
    switch (self->sampler) {
        case WAN21_SAMPLER_UNIPC:
            s_step_unipc (self, model_output, sample);
            break;
        case WAN21_SAMPLER_DPMPP:
            s_step_dpmpp (self, model_output, sample);
            break;
        case WAN21_SAMPLER_EULER: {
            float dt = self->sigmas [self->index + 1] - self->sigmas [self->index];
            for (size_t j = 0; j < self->n; j++)
                sample [j] += dt * model_output [j];
            break;
        }
    }
    self->index++;
    return 0;
}

//  Exact flow velocity for data x0 ~ N(mu, s^2) per element and x_t = (1-t) x0 + t eps:
//  E[x0 | x_t] is affine in x_t, and the ODE maps eps to mu + s*eps.
static float
s_gauss_v (double x, double t, double mu, double s)
{
    double a = 1.0 - t;
    double x0 = mu + a * s * s * (x - a * mu) / (a * a * s * s + t * t);
    return (float) ((x - x0) / t);
}

static double
s_gauss_run (wan21_sampler_t sampler, int steps, double shift)
{
    const size_t n = 64;
    const double mu = 0.7, s = 0.4;
    float x [64], v [64], eps [64];
    for (size_t j = 0; j < n; j++)
        eps [j] = x [j] = (float) (-2.0 + 4.0 * (double) j / (n - 1));
    wan21_sched_t *sched = wan21_sched_new (sampler, steps, shift, n, NULL);
    assert (sched);
    for (int i = 0; i < steps; i++) {
        double t = wan21_sched_sigma (sched, i);
        for (size_t j = 0; j < n; j++)
            v [j] = s_gauss_v (x [j], t, mu, s);
        int rc = wan21_sched_step (sched, v, x);
        assert (rc == 0);
    }
    assert (wan21_sched_step (sched, v, x) == -1);
    wan21_sched_destroy (&sched);
    assert (sched == NULL);
    double err = 0;
    //  UniPC starts at sigma 0.9998, not 1: compare with the exact solution from there on
    //  is not needed at this tolerance (the start offset changes the endpoint by < 1e-3).
    for (size_t j = 0; j < n; j++) {
        double want = mu + s * eps [j];
        if (fabs (x [j] - want) > err)
            err = fabs (x [j] - want);
    }
    return err;
}

void
wan21_sched_test (bool verbose)
{
    printf (" * wan21_sched: ");
    //  Schedules of the official pipeline (tests/data/reference/wan21/manifest.json).
    {
        const int64_t unipc_t [5] = { 999, 952, 882, 768, 555 };
        const float unipc_s [6] = { 0.9997998476028442f, 0.9521540403366089f,
                                    0.8820932507514954f, 0.7689347267150879f,
                                    0.5552467703819275f, 0.0f };
        wan21_sched_t *sched = wan21_sched_new (WAN21_SAMPLER_UNIPC, 5, 5.0, 4, NULL);
        assert (sched);
        for (int i = 0; i < 5; i++)
            assert (wan21_sched_timestep (sched, i) == unipc_t [i]);
        for (int i = 0; i < 6; i++)
            assert (wan21_sched_sigma (sched, i) == unipc_s [i]);
        wan21_sched_destroy (&sched);
        const int64_t dpm_t [4] = { 1000, 937, 833, 625 };
        const float dpm_s [5] = { 1.0f, 0.9375f, 0.8333333134651184f, 0.625f, 0.0f };
        sched = wan21_sched_new (WAN21_SAMPLER_DPMPP, 4, 5.0, 4, NULL);
        assert (sched);
        for (int i = 0; i < 4; i++)
            assert (wan21_sched_timestep (sched, i) == dpm_t [i]);
        for (int i = 0; i < 5; i++)
            assert (wan21_sched_sigma (sched, i) == dpm_s [i]);
        wan21_sched_destroy (&sched);
    }
    //  Bad arguments are errors, not crashes.
    {
        char *err = NULL;
        assert (wan21_sched_new (WAN21_SAMPLER_UNIPC, 0, 5.0, 4, &err) == NULL);
        assert (err);
        free (err);
        err = NULL;
        assert (wan21_sched_new (WAN21_SAMPLER_DPMPP, 10, -1.0, 4, &err) == NULL);
        assert (err);
        free (err);
        assert (wan21_sched_new (WAN21_SAMPLER_EULER, 10, NAN, 4, NULL) == NULL);
        assert (wan21_sched_new ((wan21_sampler_t) 7, 10, 5.0, 4, NULL) == NULL);
        wan21_sampler_t sampler;
        assert (wan21_sampler_from_name ("dpm++", &sampler) == 0 && sampler == WAN21_SAMPLER_DPMPP);
        assert (wan21_sampler_from_name ("unipc", &sampler) == 0 && sampler == WAN21_SAMPLER_UNIPC);
        assert (wan21_sampler_from_name ("ddim", &sampler) == -1);
        assert (strcmp (wan21_sampler_name (WAN21_SAMPLER_EULER), "euler") == 0);
    }
    //  Convergence on a Gaussian data distribution, where the exact ODE endpoint is known:
    //  every solver converges, and the 2nd-order multistep solvers beat Euler at equal steps.
    {
        double e_unipc_10 = s_gauss_run (WAN21_SAMPLER_UNIPC, 10, 3.0);
        double e_unipc_40 = s_gauss_run (WAN21_SAMPLER_UNIPC, 40, 3.0);
        double e_dpm_10 = s_gauss_run (WAN21_SAMPLER_DPMPP, 10, 3.0);
        double e_dpm_40 = s_gauss_run (WAN21_SAMPLER_DPMPP, 40, 3.0);
        double e_euler_10 = s_gauss_run (WAN21_SAMPLER_EULER, 10, 3.0);
        double e_euler_40 = s_gauss_run (WAN21_SAMPLER_EULER, 40, 3.0);
        if (verbose)
            printf ("\n   max err 10/40 steps: unipc %.2e/%.2e dpm++ %.2e/%.2e euler %.2e/%.2e\n   ",
                    e_unipc_10, e_unipc_40, e_dpm_10, e_dpm_40, e_euler_10, e_euler_40);
        assert (e_unipc_40 < e_unipc_10 && e_dpm_40 < e_dpm_10 && e_euler_40 < e_euler_10);
        //  Measured: unipc 1.1e-3, dpm++ 2.9e-3, euler 6.7e-2 at 40 steps.
        assert (e_unipc_40 < 3e-3 && e_dpm_40 < 6e-3 && e_euler_40 < 0.1);
        assert (e_unipc_40 < 0.1 * e_euler_40 && e_dpm_40 < 0.1 * e_euler_40);
        assert (e_dpm_10 < e_euler_10 && e_unipc_10 < e_euler_10);
    }
    printf ("OK\n");
}
