/*  vdgx_stats.h - a sample of durations with nearest-rank percentiles (bench figures). */
#ifndef VDGX_STATS_H_INCLUDED
#define VDGX_STATS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _vdgx_stats_t vdgx_stats_t;

vdgx_stats_t *vdgx_stats_new (void);
void vdgx_stats_destroy (vdgx_stats_t **self_p);
//  Adds one value (NaN and infinities are ignored). Returns 0 or -1 (out of memory).
int vdgx_stats_add (vdgx_stats_t *self, double value);
size_t vdgx_stats_count (vdgx_stats_t *self);
//  Nearest-rank percentile, p in [0, 100]: the smallest value with at least p% of the sample
//  at or below it (p 0 = the minimum). NaN when the sample is empty.
double vdgx_stats_percentile (vdgx_stats_t *self, double p);
double vdgx_stats_mean (vdgx_stats_t *self);
double vdgx_stats_max (vdgx_stats_t *self);

void vdgx_stats_test (bool verbose);

#endif
