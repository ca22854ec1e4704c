/*  vdgx_guide.c - the guided denoising loop (see vdgx_guide.h). */
#include "vdgx_guide.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
vdgx_guide_cfg (vdgx_guide_t *g, double scale)
{
    assert (g);
    g->branches = scale != 1.0? 2: 1;
    g->weight [1] = (float) scale;
    g->ref [1] = 0;
}

void
vdgx_guide_cfg2 (vdgx_guide_t *g, double scale, size_t split, double scale_split)
{
    assert (g);
    g->branches = scale != 1.0 || scale_split != 1.0? 2: 1;
    g->weight [1] = (float) scale;
    g->ref [1] = 0;
    g->split = split;
    g->weight_split [1] = (float) scale_split;
}

int
vdgx_guide_run (const vdgx_guide_t *g, vdgx_flow_t *sched, float *x, size_t n, char **err)
{
    assert (g && sched && x && g->velocity);
    int nb = g->branches;
    if (nb < 1 || nb > VDGX_GUIDE_MAX_BRANCHES) {
        if (err)
            *err = strdup ("guidance: 1..4 branches");
        return -1;
    }
    for (int b = 1; b < nb; b++)
        assert (g->ref [b] >= 0 && g->ref [b] < b);
    float *v [VDGX_GUIDE_MAX_BRANCHES] = { NULL };
    int rc = 0;
    for (int b = 0; b < nb && rc == 0; b++)
        if (!(v [b] = malloc (n * sizeof (float)))) {
            if (err)
                *err = strdup ("guidance: out of memory");
            rc = -1;
        }
    int steps = vdgx_flow_steps (sched);
    for (int i = 0; rc == 0 && i < steps; i++) {
        if (g->cancel && atomic_load (g->cancel) != 0) {
            rc = VDGX_GUIDE_CANCELLED;
            break;
        }
        int64_t t = vdgx_flow_timestep (sched, i);
        float sigma = vdgx_flow_sigma (sched, i);
        for (int b = 0; b < nb && rc == 0; b++)
            rc = g->velocity (g->ctx, b, x, t, sigma, v [b], err);
        if (rc)
            break;
        if (g->on_step)
            g->on_step (g->cb_ctx, i, t, x, v, n);
        //  Newest branch first, so every v[ref] is still the raw velocity when read.
        //  Two element ranges: [0, split) with weight, [split, n) with weight_split.
        size_t split = g->split > 0 && g->split < n? g->split: n;
        for (int b = nb - 1; b >= 1; b--) {
            const float *r = v [g->ref [b]];
            for (int part = 0; part < 2; part++) {
                size_t lo = part? split: 0, hi = part? n: split;
                float w = part? g->weight_split [b]: g->weight [b];
                if (b == 1)
                    for (size_t j = lo; j < hi; j++)
                        v [0] [j] = r [j] + w * (v [1] [j] - r [j]);
                else
                    for (size_t j = lo; j < hi; j++)
                        v [b] [j] = w * (v [b] [j] - r [j]);
            }
        }
        for (int b = 2; b < nb; b++)
            for (size_t j = 0; j < n; j++)
                v [0] [j] += v [b] [j];
        if (vdgx_flow_step (sched, v [0], x)) {
            if (err)
                *err = strdup ("guidance: the scheduler has no steps left");
            rc = -1;
        }
        else
        if (g->progress)
            g->progress (g->cb_ctx, i + 1, steps);
    }
    for (int b = 0; b < nb; b++)
        free (v [b]);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Selftest

typedef struct {
    int calls [VDGX_GUIDE_MAX_BRANCHES];
    int fail_at;
} s_model_t;

//  Branch b's velocity: x * (b + 1) + sigma.
static int
s_velocity (void *ctx, int branch, const float *x, int64_t t, float sigma, float *v, char **err)
{
    s_model_t *m = (s_model_t *) ctx;
    (void) t;
    if (--m->fail_at == 0) {
        *err = strdup ("model failed");
        return -1;
    }
    m->calls [branch]++;
    for (int j = 0; j < 3; j++)
        v [j] = x [j] * (float) (branch + 1) + sigma;
    return 0;
}

static void
s_cancel_after_one (void *ctx, int step, int steps)
{
    (void) step;
    (void) steps;
    atomic_store ((atomic_int *) ctx, 1);
}

void
vdgx_guide_test (bool verbose)
{
    printf (" * vdgx_guide: ");
    (void) verbose;
    const float x0 [3] = { 0.5f, -1.25f, 2.0f };
    char *err = NULL;
    //  CFG and 3-way against a hand-written Euler loop on the same velocities.
    for (int kind = 0; kind < 3; kind++) {
        s_model_t m = { { 0 }, -1 };
        vdgx_guide_t g = { .velocity = s_velocity, .ctx = &m };
        if (kind == 0)
            vdgx_guide_cfg (&g, 1.0);
        else
        if (kind == 1)
            vdgx_guide_cfg (&g, 5.0);
        else {
            g.branches = 3;
            g.weight [1] = 2.5f, g.ref [1] = 0;
            g.weight [2] = 4.0f, g.ref [2] = 1;
        }
        vdgx_flow_t *f = vdgx_flow_new (VDGX_SOLVER_EULER, 4, 3.0, 3, NULL);
        float x [3], want [3];
        memcpy (x, x0, sizeof (x));
        memcpy (want, x0, sizeof (want));
        assert (vdgx_guide_run (&g, f, x, 3, &err) == 0);
        for (int i = 0; i < 4; i++) {
            float s = vdgx_flow_sigma (f, i), ds = vdgx_flow_sigma (f, i + 1) - s;
            for (int j = 0; j < 3; j++) {
                float u = want [j] + s, c = want [j] * 2 + s, cc = want [j] * 3 + s;
                float v = kind == 0? u: kind == 1? u + 5.0f * (c - u): u + 2.5f * (c - u) + 4.0f * (cc - c);
                want [j] += ds * v;
            }
        }
        for (int j = 0; j < 3; j++)
            assert (fabsf (x [j] - want [j]) <= 1e-5f * fmaxf (1.0f, fabsf (want [j])));
        assert (m.calls [0] == 4 && m.calls [1] == (kind? 4: 0) && m.calls [2] == (kind == 2? 4: 0));
        vdgx_flow_destroy (&f);
    }
    //  Two modalities: scale 5 on the first element, 2 on the other two.
    {
        s_model_t m = { { 0 }, -1 };
        vdgx_guide_t g = { .velocity = s_velocity, .ctx = &m };
        vdgx_guide_cfg2 (&g, 5.0, 1, 2.0);
        assert (g.branches == 2);
        vdgx_flow_t *f = vdgx_flow_new (VDGX_SOLVER_EULER, 3, 3.0, 3, NULL);
        float x [3], want [3];
        memcpy (x, x0, sizeof (x));
        memcpy (want, x0, sizeof (want));
        assert (vdgx_guide_run (&g, f, x, 3, &err) == 0);
        for (int i = 0; i < 3; i++) {
            float s = vdgx_flow_sigma (f, i), ds = vdgx_flow_sigma (f, i + 1) - s;
            for (int j = 0; j < 3; j++) {
                float u = want [j] + s, c = want [j] * 2 + s;
                want [j] += ds * (u + (j? 2.0f: 5.0f) * (c - u));
            }
        }
        for (int j = 0; j < 3; j++)
            assert (fabsf (x [j] - want [j]) <= 1e-5f * fmaxf (1.0f, fabsf (want [j])));
        vdgx_guide_cfg2 (&g, 1.0, 1, 1.0);
        assert (g.branches == 1);
        vdgx_flow_destroy (&f);
    }
    //  A failing model stops the loop with its message; cancellation is seen at a step boundary.
    s_model_t m = { { 0 }, 3 };
    vdgx_guide_t g = { .velocity = s_velocity, .ctx = &m };
    vdgx_guide_cfg (&g, 4.0);
    vdgx_flow_t *f = vdgx_flow_new (VDGX_SOLVER_UNIPC, 5, 3.0, 3, NULL);
    float x [3];
    memcpy (x, x0, sizeof (x));
    assert (vdgx_guide_run (&g, f, x, 3, &err) == -1 && err && strcmp (err, "model failed") == 0);
    free (err);
    vdgx_flow_reset (f);
    atomic_int cancel = 0;
    m.fail_at = -1;
    g.cancel = &cancel;
    g.progress = s_cancel_after_one;
    g.cb_ctx = &cancel;
    assert (vdgx_guide_run (&g, f, x, 3, &err) == VDGX_GUIDE_CANCELLED);
    g.branches = 9;
    assert (vdgx_guide_run (&g, f, x, 3, &err) == -1 && strstr (err, "branches"));
    free (err);
    vdgx_flow_destroy (&f);
    printf ("OK\n");
}
