/*  vdgx_promtext.h - builds a Prometheus text exposition (format 0.0.4) for GET /metrics.

    Samples are gathered by family (the metric name without labels), then rendered sorted by
    family name with one HELP and one TYPE line each, so the output passes
    `promtool check metrics`. Sources: the broker's mmi.metrics reply (counters, gauges,
    cumulative histograms, keys like `vdgx_jobs_finished_total{model="m",status="failed"}`),
    its mmi.workers reply (memory per worker) and the bridge's own counters. Samples whose name
    or labels are not valid Prometheus syntax are dropped (and counted), never passed through.
*/
#ifndef VDGX_PROMTEXT_H_INCLUDED
#define VDGX_PROMTEXT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { VDGX_PROM_COUNTER = 0, VDGX_PROM_GAUGE, VDGX_PROM_HISTOGRAM } vdgx_prom_type_t;

typedef struct _vdgx_promtext_t vdgx_promtext_t;

vdgx_promtext_t *vdgx_promtext_new (void);
void vdgx_promtext_destroy (vdgx_promtext_t **self_p);
//  One sample. key is `name` or `name{label="v",...}`. Returns 0, or -1 when dropped (bad
//  syntax, or the family was already given another type).
int vdgx_promtext_add (vdgx_promtext_t *self, vdgx_prom_type_t type, const char *key, double value);
//  A histogram: n upper bounds and n+1 cumulative counts (the last is +Inf), sum.
int vdgx_promtext_add_histogram (vdgx_promtext_t *self, const char *key, const double *bounds,
                                 const uint64_t *cumulative, size_t n, double sum);
//  The broker's mmi.metrics / mmi.workers reply bodies (msgpack). Return 0 or -1 (malformed).
int vdgx_promtext_add_broker_metrics (vdgx_promtext_t *self, const void *data, size_t size);
int vdgx_promtext_add_broker_workers (vdgx_promtext_t *self, const void *data, size_t size);
//  Samples dropped so far.
size_t vdgx_promtext_dropped (vdgx_promtext_t *self);
//  The exposition text; caller frees.
char *vdgx_promtext_render (vdgx_promtext_t *self);

void vdgx_promtext_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
