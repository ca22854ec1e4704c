/*  vdgx_flow.c - UniPC (bh2), DPM++ 2M and Euler for flow matching (see vdgx_flow.h).

    The latents are host f32; the per-step scalars (lambdas, phi functions, UniC weights) are
    computed in double from the f32 sigmas, which the official code keeps as f32 0-dim tensors:
    the difference is far below the 1e-4 reference tolerance. log(0) = -inf at sigma 0 (the last
    step) and at alpha 0 (DPM++ starts at sigma 1) is intended: the formulas then reduce to
    their exact limits (x_t = x0 on the last step, D1 = 0 after a sigma-1 step).
*/
#include "vdgx_flow.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VDGX_FLOW_TRAIN_STEPS 1000

struct _vdgx_flow_t {
    vdgx_solver_t sampler;
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
vdgx_solver_from_name (const char *name, vdgx_solver_t *sampler)
{
    if (!name || !sampler)
        return -1;
    if (strcmp (name, "unipc") == 0)
        *sampler = VDGX_SOLVER_UNIPC;
    else
    if (strcmp (name, "dpm++") == 0 || strcmp (name, "dpmpp") == 0)
        *sampler = VDGX_SOLVER_DPMPP;
    else
    if (strcmp (name, "euler") == 0)
        *sampler = VDGX_SOLVER_EULER;
    else
        return -1;
    return 0;
}

const char *
vdgx_solver_name (vdgx_solver_t sampler)
{
    switch (sampler) {
        case VDGX_SOLVER_UNIPC: return "unipc";
        case VDGX_SOLVER_DPMPP: return "dpm++";
        case VDGX_SOLVER_EULER: return "euler";
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

double
vdgx_flow_shift (double sigma, double shift)
{
    return shift * sigma / (1.0 + (shift - 1.0) * sigma);
}

void
vdgx_flow_ltx_sigmas (int steps, int64_t tokens, double base_shift, double max_shift,
                      double terminal, float *sigmas)
{
    assert (steps >= 1 && sigmas && terminal < 1.0);
    //  The official code's float32 steps: torch.linspace (the first half counted from the
    //  start, the second from the end), python scalars rounded to float, a / t as
    //  reciprocal (t) * a (so sigma_0 is not exactly 1).
    int n = steps + 1, half = n / 2;
    float step = (0.0f - 1.0f) / (float) steps;
    double mm = (max_shift - base_shift) / (4096.0 - 1024.0);
    float e = (float) exp ((double) tokens * mm + (base_shift - mm * 1024.0));
    for (int i = 0; i < n; i++) {
        volatile float x = i < half? 1.0f + step * (float) i: 0.0f - step * (float) (n - 1 - i);
        if (x == 0.0f) {
            sigmas [i] = 0.0f;
            continue;
        }
        volatile float d = (1.0f / x) - 1.0f;
        volatile float r = 1.0f / (e + d);
        sigmas [i] = r * e;
    }
    if (terminal <= 0.0)
        return;                 //  no stretch
    //  Stretch: the last nonzero sigma becomes `terminal`.
    int last = n - 1;
    while (last > 0 && sigmas [last] == 0.0f)
        last--;
    volatile float scale = (1.0f - sigmas [last]) / (float) (1.0 - terminal);
    for (int i = 0; i < n; i++)
        if (sigmas [i] != 0.0f) {
            volatile float q = (1.0f - sigmas [i]) / scale;
            sigmas [i] = 1.0f - q;
        }
}

//  The scheduler with its buffers; the schedule is filled by the caller.
static vdgx_flow_t *
s_alloc (vdgx_solver_t sampler, int steps, size_t n, char **err)
{
    if (steps < 1 || steps > VDGX_FLOW_TRAIN_STEPS) {
        s_set_error (err, "flow sampler: steps must be within 1..1000");
        return NULL;
    }
    if (sampler != VDGX_SOLVER_UNIPC && sampler != VDGX_SOLVER_DPMPP
    &&  sampler != VDGX_SOLVER_EULER) {
        s_set_error (err, "flow sampler: unknown sampler");
        return NULL;
    }
    if (n == 0) {
        s_set_error (err, "flow sampler: empty latent");
        return NULL;
    }
    vdgx_flow_t *self = calloc (1, sizeof (vdgx_flow_t));
    if (!self) {
        s_set_error (err, "flow sampler: out of memory");
        return NULL;
    }
    self->sampler = sampler;
    self->steps = steps;
    self->n = n;
    self->timesteps = calloc ((size_t) steps, sizeof (int64_t));
    self->sigmas = calloc ((size_t) steps + 1, sizeof (float));
    if (sampler != VDGX_SOLVER_EULER) {
        self->m [0] = malloc (n * sizeof (float));
        self->m [1] = malloc (n * sizeof (float));
    }
    if (sampler == VDGX_SOLVER_UNIPC) {
        self->last_sample = malloc (n * sizeof (float));
        self->scratch = malloc (n * sizeof (float));
    }
    if (!self->timesteps || !self->sigmas
    || (sampler != VDGX_SOLVER_EULER && (!self->m [0] || !self->m [1]))
    || (sampler == VDGX_SOLVER_UNIPC && (!self->last_sample || !self->scratch))) {
        vdgx_flow_destroy (&self);
        s_set_error (err, "flow sampler: out of memory");
        return NULL;
    }
    return self;
}

vdgx_flow_t *
vdgx_flow_new (vdgx_solver_t sampler, int steps, double shift, size_t n, char **err)
{
    if (!(shift > 0.0) || !isfinite (shift)) {
        s_set_error (err, "flow sampler: shift must be a positive number");
        return NULL;
    }
    vdgx_flow_t *self = s_alloc (sampler, steps, n, err);
    if (!self)
        return NULL;
    //  UniPC starts from the training schedule's largest sigma, 1 - 1/T rounded to f32.
    double sigma_max = sampler == VDGX_SOLVER_UNIPC
                     ? (double) (float) (1.0 - 1.0 / VDGX_FLOW_TRAIN_STEPS): 1.0;
    for (int i = 0; i < steps; i++) {
        double s = vdgx_flow_shift (s_linspace (sigma_max, 0.0, steps + 1, i), shift);
        self->timesteps [i] = (int64_t) (s * VDGX_FLOW_TRAIN_STEPS);
        self->sigmas [i] = (float) s;
    }
    self->sigmas [steps] = 0.0f;
    return self;
}

vdgx_flow_t *
vdgx_flow_new_sigmas (vdgx_solver_t sampler, int steps, const float *sigmas,
                      const int64_t *timesteps, size_t n, char **err)
{
    assert (sigmas);
    for (int i = 0; i <= steps && steps >= 1; i++)
        if (!(sigmas [i] >= 0.0f && sigmas [i] <= 1.0f) || (i > 0 && sigmas [i] >= sigmas [i - 1])) {
            s_set_error (err, "flow sampler: sigmas must decrease within [0, 1]");
            return NULL;
        }
    vdgx_flow_t *self = s_alloc (sampler, steps, n, err);
    if (!self)
        return NULL;
    memcpy (self->sigmas, sigmas, (size_t) (steps + 1) * sizeof (float));
    for (int i = 0; i < steps; i++)
        self->timesteps [i] = timesteps? timesteps [i]: (int64_t) ((double) sigmas [i] * VDGX_FLOW_TRAIN_STEPS);
    return self;
}

void
vdgx_flow_destroy (vdgx_flow_t **self_p)
{
    assert (self_p);
    vdgx_flow_t *self = *self_p;
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
vdgx_flow_steps (vdgx_flow_t *self)
{
    assert (self);
    return self->steps;
}

int64_t
vdgx_flow_timestep (vdgx_flow_t *self, int i)
{
    assert (self && i >= 0 && i < self->steps);
    return self->timesteps [i];
}

float
vdgx_flow_sigma (vdgx_flow_t *self, int i)
{
    assert (self && i >= 0 && i <= self->steps);
    return self->sigmas [i];
}

void
vdgx_flow_reset (vdgx_flow_t *self)
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
s_unipc_correct (vdgx_flow_t *self, const float *m_new, float *sample)
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
s_unipc_predict (vdgx_flow_t *self, int order, float *sample)
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
s_push_x0 (vdgx_flow_t *self, const float *v, const float *sample)
{
    float *tmp = self->m [0];
    self->m [0] = self->m [1];
    self->m [1] = tmp;
    float sigma = self->sigmas [self->index];
    for (size_t j = 0; j < self->n; j++)
        tmp [j] = sample [j] - sigma * v [j];
}

static void
s_step_unipc (vdgx_flow_t *self, const float *v, float *sample)
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
s_step_dpmpp (vdgx_flow_t *self, const float *v, float *sample)
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
vdgx_flow_step (vdgx_flow_t *self, const float *model_output, float *sample)
{
    assert (self && model_output && sample);
    if (self->index >= self->steps)
        return -1;
    switch (self->sampler) {
        case VDGX_SOLVER_UNIPC:
            s_step_unipc (self, model_output, sample);
            break;
        case VDGX_SOLVER_DPMPP:
            s_step_dpmpp (self, model_output, sample);
            break;
        case VDGX_SOLVER_EULER: {
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
s_gauss_run (vdgx_solver_t sampler, int steps, double shift)
{
    const size_t n = 64;
    const double mu = 0.7, s = 0.4;
    float x [64], v [64], eps [64];
    for (size_t j = 0; j < n; j++)
        eps [j] = x [j] = (float) (-2.0 + 4.0 * (double) j / (n - 1));
    vdgx_flow_t *sched = vdgx_flow_new (sampler, steps, shift, n, NULL);
    assert (sched);
    for (int i = 0; i < steps; i++) {
        double t = vdgx_flow_sigma (sched, i);
        for (size_t j = 0; j < n; j++)
            v [j] = s_gauss_v (x [j], t, mu, s);
        int rc = vdgx_flow_step (sched, v, x);
        assert (rc == 0);
    }
    assert (vdgx_flow_step (sched, v, x) == -1);
    vdgx_flow_destroy (&sched);
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
vdgx_flow_test (bool verbose)
{
    printf (" * vdgx_flow: ");
    //  Schedules of the official pipeline (tests/data/reference/wan21/manifest.json).
    {
        const int64_t unipc_t [5] = { 999, 952, 882, 768, 555 };
        const float unipc_s [6] = { 0.9997998476028442f, 0.9521540403366089f,
                                    0.8820932507514954f, 0.7689347267150879f,
                                    0.5552467703819275f, 0.0f };
        vdgx_flow_t *sched = vdgx_flow_new (VDGX_SOLVER_UNIPC, 5, 5.0, 4, NULL);
        assert (sched);
        for (int i = 0; i < 5; i++)
            assert (vdgx_flow_timestep (sched, i) == unipc_t [i]);
        for (int i = 0; i < 6; i++)
            assert (vdgx_flow_sigma (sched, i) == unipc_s [i]);
        vdgx_flow_destroy (&sched);
        const int64_t dpm_t [4] = { 1000, 937, 833, 625 };
        const float dpm_s [5] = { 1.0f, 0.9375f, 0.8333333134651184f, 0.625f, 0.0f };
        sched = vdgx_flow_new (VDGX_SOLVER_DPMPP, 4, 5.0, 4, NULL);
        assert (sched);
        for (int i = 0; i < 4; i++)
            assert (vdgx_flow_timestep (sched, i) == dpm_t [i]);
        for (int i = 0; i < 5; i++)
            assert (vdgx_flow_sigma (sched, i) == dpm_s [i]);
        vdgx_flow_destroy (&sched);
    }
    //  LTX's token-count shift: 1 first, the last nonzero sigma is the terminal, shifted
    //  values as exp(mu) / (exp(mu) + 1/x - 1) with mu linear in the token count.
    {
        float ls [4];
        vdgx_flow_ltx_sigmas (3, 2560, 0.95, 2.05, 0.1, ls);
        double mu = 0.95 + (2.05 - 0.95) * (2560 - 1024) / 3072.0;
        double s1 = exp (mu) / (exp (mu) + 0.5), s2 = exp (mu) / (exp (mu) + 2.0);
        double want1 = 1.0 - (1.0 - s1) * 0.9 / (1.0 - s2);
        assert (fabsf (ls [0] - 1.0f) < 1e-6f && fabsf (ls [2] - 0.1f) < 1e-7f && ls [3] == 0.0f);
        assert (fabs (ls [1] - want1) < 1e-6);
        //  No stretch (terminal <= 0): the shifted linspace itself.
        float ns [4];
        vdgx_flow_ltx_sigmas (3, 2560, 0.95, 2.05, 0.0, ns);
        assert (fabs (ns [1] - s1) < 1e-6 && fabs (ns [2] - s2) < 1e-6 && ns [3] == 0.0f);
        //  More tokens shift the schedule towards noise.
        float lo [4];
        vdgx_flow_ltx_sigmas (3, 1024, 0.95, 2.05, 0.1, lo);
        assert (lo [1] < ls [1]);
        //  A given schedule: Euler follows it exactly; timesteps default to sigma * 1000.
        char *err = NULL;
        vdgx_flow_t *f = vdgx_flow_new_sigmas (VDGX_SOLVER_EULER, 3, ls, NULL, 2, &err);
        assert (f && vdgx_flow_timestep (f, 1) == (int64_t) ((double) ls [1] * 1000));
        float x [2] = { 1.0f, -2.0f }, v [2] = { 0.5f, 0.25f };
        assert (vdgx_flow_step (f, v, x) == 0);
        assert (x [0] == 1.0f + (ls [1] - ls [0]) * 0.5f && x [1] == -2.0f + (ls [1] - ls [0]) * 0.25f);
        vdgx_flow_destroy (&f);
        const float bad [3] = { 1.0f, 1.0f, 0.0f };
        assert (!vdgx_flow_new_sigmas (VDGX_SOLVER_EULER, 2, bad, NULL, 2, &err) && err);
        free (err);
    }
    //  Bad arguments are errors, not crashes.
    {
        char *err = NULL;
        assert (vdgx_flow_new (VDGX_SOLVER_UNIPC, 0, 5.0, 4, &err) == NULL);
        assert (err);
        free (err);
        err = NULL;
        assert (vdgx_flow_new (VDGX_SOLVER_DPMPP, 10, -1.0, 4, &err) == NULL);
        assert (err);
        free (err);
        assert (vdgx_flow_new (VDGX_SOLVER_EULER, 10, NAN, 4, NULL) == NULL);
        assert (vdgx_flow_new ((vdgx_solver_t) 7, 10, 5.0, 4, NULL) == NULL);
        vdgx_solver_t sampler;
        assert (vdgx_solver_from_name ("dpm++", &sampler) == 0 && sampler == VDGX_SOLVER_DPMPP);
        assert (vdgx_solver_from_name ("unipc", &sampler) == 0 && sampler == VDGX_SOLVER_UNIPC);
        assert (vdgx_solver_from_name ("ddim", &sampler) == -1);
        assert (strcmp (vdgx_solver_name (VDGX_SOLVER_EULER), "euler") == 0);
    }
    //  Convergence on a Gaussian data distribution, where the exact ODE endpoint is known:
    //  every solver converges, and the 2nd-order multistep solvers beat Euler at equal steps.
    {
        double e_unipc_10 = s_gauss_run (VDGX_SOLVER_UNIPC, 10, 3.0);
        double e_unipc_40 = s_gauss_run (VDGX_SOLVER_UNIPC, 40, 3.0);
        double e_dpm_10 = s_gauss_run (VDGX_SOLVER_DPMPP, 10, 3.0);
        double e_dpm_40 = s_gauss_run (VDGX_SOLVER_DPMPP, 40, 3.0);
        double e_euler_10 = s_gauss_run (VDGX_SOLVER_EULER, 10, 3.0);
        double e_euler_40 = s_gauss_run (VDGX_SOLVER_EULER, 40, 3.0);
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
