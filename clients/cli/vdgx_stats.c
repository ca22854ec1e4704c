/*  vdgx_stats.c - sample percentiles (see the header). */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "vdgx_stats.h"

struct _vdgx_stats_t {
    double *values;
    size_t count, size;
    bool sorted;
};

vdgx_stats_t *
vdgx_stats_new (void)
{
    return calloc (1, sizeof (vdgx_stats_t));
}

void
vdgx_stats_destroy (vdgx_stats_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->values);
        free (*self_p);
        *self_p = NULL;
    }
}

int
vdgx_stats_add (vdgx_stats_t *self, double value)
{
    assert (self);
    if (!isfinite (value))
        return 0;
    if (self->count == self->size) {
        size_t size = self->size? self->size * 2: 64;
        double *values = realloc (self->values, size * sizeof *values);
        if (!values)
            return -1;
        self->values = values;
        self->size = size;
    }
    self->values [self->count++] = value;
    self->sorted = false;
    return 0;
}

size_t
vdgx_stats_count (vdgx_stats_t *self)
{
    assert (self);
    return self->count;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

double
vdgx_stats_percentile (vdgx_stats_t *self, double p)
{
    assert (self);
    assert (p >= 0 && p <= 100);
    if (!self->count)
        return NAN;
    if (!self->sorted) {
        qsort (self->values, self->count, sizeof (double), s_compare);
        self->sorted = true;
    }
    //  rank = ceil(p/100 * n), 1-based; the small epsilon keeps 0.9 * 10 from becoming 9.0000001.
    double rank = ceil (p / 100.0 * (double) self->count - 1e-9);
    size_t index = rank < 1? 0: (size_t) rank - 1;
    return self->values [index < self->count? index: self->count - 1];
}

double
vdgx_stats_mean (vdgx_stats_t *self)
{
    assert (self);
    if (!self->count)
        return NAN;
    double sum = 0;
    for (size_t i = 0; i < self->count; i++)
        sum += self->values [i];
    return sum / (double) self->count;
}

double
vdgx_stats_max (vdgx_stats_t *self)
{
    return vdgx_stats_percentile (self, 100);
}

void
vdgx_stats_test (bool verbose)
{
    printf (" * vdgx_stats: ");
    vdgx_stats_t *s = vdgx_stats_new ();
    assert (isnan (vdgx_stats_percentile (s, 50)));
    assert (isnan (vdgx_stats_mean (s)));
    //  1..100 shuffled: the nearest-rank p-th percentile is p itself.
    double values [100];
    for (int i = 0; i < 100; i++)
        values [i] = i + 1;
    srand (7);
    for (int i = 99; i > 0; i--) {
        int j = rand () % (i + 1);
        double t = values [i];
        values [i] = values [j];
        values [j] = t;
    }
    for (int i = 0; i < 100; i++)
        assert (vdgx_stats_add (s, values [i]) == 0);
    assert (vdgx_stats_add (s, NAN) == 0 && vdgx_stats_add (s, INFINITY) == 0);
    assert (vdgx_stats_count (s) == 100);
    assert (vdgx_stats_percentile (s, 50) == 50);
    assert (vdgx_stats_percentile (s, 90) == 90);
    assert (vdgx_stats_percentile (s, 99) == 99);
    assert (vdgx_stats_percentile (s, 0) == 1);
    assert (vdgx_stats_max (s) == 100);
    assert (fabs (vdgx_stats_mean (s) - 50.5) < 1e-12);
    vdgx_stats_destroy (&s);
    assert (s == NULL);

    //  Ten values: p90 is the 9th, p99 the 10th; one value is every percentile.
    s = vdgx_stats_new ();
    for (int i = 10; i >= 1; i--)
        vdgx_stats_add (s, i * 0.5);
    assert (vdgx_stats_percentile (s, 90) == 4.5);
    assert (vdgx_stats_percentile (s, 99) == 5.0);
    assert (vdgx_stats_percentile (s, 50) == 2.5);
    vdgx_stats_add (s, 0.25);               //  adding after a sort re-sorts
    assert (vdgx_stats_percentile (s, 0) == 0.25);
    vdgx_stats_destroy (&s);
    s = vdgx_stats_new ();
    vdgx_stats_add (s, 3.0);
    assert (vdgx_stats_percentile (s, 50) == 3.0 && vdgx_stats_percentile (s, 99) == 3.0);
    vdgx_stats_destroy (&s);
    (void) verbose;
    printf ("OK\n");
}
