/*  gpu_common.h - shared helpers of the GPU tests: random inputs, the CPU-vs-CUDA runner and
    the result lines that tests/gpu/run.sh collects into its summary table.

    Every test creates the "cpu" backend (the oracle) and "cuda:0", runs the same op on the
    same random non-zero inputs (rounded to bf16 first when the CUDA side runs in bf16, so
    both sides see identical values) and compares by relative L2 norm:
        err = ||cuda - cpu||_2 / ||cpu||_2
    A result line reads "RESULT <test> <case> err=<e> tol=<t> PASS|FAIL". Without a CUDA
    device the program prints "SKIP: no CUDA device" and exits 77 (ctest SKIP_RETURN_CODE).
*/
#ifndef VDGX_GPU_COMMON_H_INCLUDED
#define VDGX_GPU_COMMON_H_INCLUDED

#include "vdgx_backend.h"
#include "vdgx_quant.h"
#include "vdgx_cuda.h"
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gc_failures = 0;
static int gc_results = 0;
static uint64_t gc_rng = 0x243F6A8885A308D3ULL;

static double gc_urand (void)
{
    gc_rng ^= gc_rng << 13;
    gc_rng ^= gc_rng >> 7;
    gc_rng ^= gc_rng << 17;
    return (double) (gc_rng >> 11) / (double) (1ULL << 53);
}

//  Uniform in +-scale, never closer to 0 than scale/1000 (non-zero inputs).
static void gc_fill (float *p, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        float v = (float) (2.0 * gc_urand () - 1.0) * scale;
        if (fabsf (v) < scale * 1e-3f)
            v = v < 0 ? -scale * 1e-3f : scale * 1e-3f;
        p [i] = v;
    }
}

static void gc_round (float *p, size_t n, vdgx_dtype_t dt)
{
    if (dt == VDGX_DTYPE_BF16)
        for (size_t i = 0; i < n; i++)
            p [i] = vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (p [i]));
}

static int64_t gc_numel (int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape [i];
    return n;
}

static double gc_relerr (const float *got, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite (got [i]) != !isfinite (ref [i]))
            return INFINITY;
        if (!isfinite (ref [i]))
            continue;
        double d = (double) got [i] - (double) ref [i];
        num += d * d;
        den += (double) ref [i] * ref [i];
    }
    if (den == 0)
        return num == 0 ? 0 : INFINITY;
    return sqrt (num / den);
}

static void gc_report (const char *test, const char *cas, double err, double tol)
{
    bool ok = err <= tol;
    printf ("RESULT %s %s err=%.3e tol=%.1e %s\n", test, cas, err, tol, ok ? "PASS" : "FAIL");
    fflush (stdout);
    gc_results++;
    if (!ok)
        gc_failures++;
}

static void gc_error (const char *test, const char *cas, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    printf ("RESULT %s %s err=inf tol=0 FAIL (", test, cas);
    vprintf (fmt, ap);
    printf (")\n");
    va_end (ap);
    fflush (stdout);
    gc_results++;
    gc_failures++;
}

//  A tensor on backend b of dtype dt holding src (converted); 0 or -1.
static int gc_tensor (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dt, int nd,
                      const int64_t *shape, const float *src)
{
    memset (t, 0, sizeof *t);
    if (vdgx_tensor_alloc (b, t, dt, nd, shape))
        return -1;
    if (src && vdgx_tensor_from_f32 (b, t, src)) {
        vdgx_tensor_release (b, t);
        return -1;
    }
    return 0;
}

static float *gc_download (vdgx_backend_t *b, const vdgx_tensor_t *t)
{
    float *p = (float *) malloc ((size_t) gc_numel (t->ndim, t->shape) * sizeof (float) + 4);
    if (p && vdgx_tensor_to_f32 (b, t, p)) {
        free (p);
        return NULL;
    }
    return p;
}

//  Creates the two backends, or reports why not. Returns 77 (skip), 1 (error) or 0.
static int gc_open (vdgx_backend_t **cpu, vdgx_backend_t **cuda, const char *test)
{
    *cpu = *cuda = NULL;
    if (vdgx_cuda_device_count () == 0) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount (&n);
        printf ("SKIP: no CUDA device (%s: %s)\n", test, cudaGetErrorString (e));
        return 77;
    }
    char *err = NULL;
    *cpu = vdgx_backend_new ("cpu", VDGX_DTYPE_F32, &err);
    if (!*cpu) {
        printf ("FAIL: cpu backend: %s\n", err ? err : "?");
        free (err);
        return 1;
    }
    *cuda = vdgx_backend_new ("cuda:0", VDGX_DTYPE_BF16, &err);
    if (!*cuda) {
        printf ("FAIL: cuda backend: %s\n", err ? err : "?");
        free (err);
        vdgx_backend_destroy (cpu);
        return 1;
    }
    printf ("device: %s\n", vdgx_cuda_info (*cuda));
    return 0;
}

//  ------------------------------------------------------------------------------------
//  Generic runner for ops with tensor inputs and one output.

typedef enum { GC_ACT = 0, GC_F32, GC_MASK, GC_NONE, GC_MASKZ } gc_kind_t;

typedef struct {
    gc_kind_t kind;         //  ACT: act dtype on CUDA; F32: F32 on both; MASK: U8 0/1; NONE: NULL;
                            //  MASKZ: MASK whose last batch row is all 0 (every key masked)
    int nd;
    int64_t shape [6];
    float scale;            //  inputs are uniform in +-scale (0 means 1)
    float offset;           //  added after (e.g. positive gammas)
} gc_in_t;

#define GC_MAXIN 6
//  in[i] may be NULL (GC_NONE). out == NULL means the op updates in[0] in place.
typedef int (*gc_fn_t) (vdgx_backend_t *b, vdgx_tensor_t *out, vdgx_tensor_t **in, const void *arg);

static void gc_run (vdgx_backend_t *cpu, vdgx_backend_t *cuda, const char *test, const char *cas,
                    gc_fn_t fn, const void *arg, int nin, const gc_in_t *ins, int ond,
                    const int64_t *oshape, vdgx_dtype_t dt, double tol)
{
    vdgx_tensor_t tc [GC_MAXIN], tg [GC_MAXIN], oc, og;
    vdgx_tensor_t *pc [GC_MAXIN] = { 0 }, *pg [GC_MAXIN] = { 0 };
    float *host [GC_MAXIN] = { 0 };
    bool inplace = oshape == NULL;
    bool have_oc = false, have_og = false;
    int rc = 0;
    for (int i = 0; i < nin && rc == 0; i++) {
        if (ins [i].kind == GC_NONE)
            continue;
        int64_t n = gc_numel (ins [i].nd, ins [i].shape);
        host [i] = (float *) malloc ((size_t) n * sizeof (float) + 4);
        if (!host [i]) { rc = -1; break; }
        bool mask = ins [i].kind == GC_MASK || ins [i].kind == GC_MASKZ;
        if (mask) {
            int64_t last = n - n / (ins [i].shape [0] ? ins [i].shape [0] : 1);
            for (int64_t j = 0; j < n; j++)
                host [i][j] = (ins [i].kind == GC_MASKZ && j >= last) ? 0.f
                            : (j % 7 == 0 || gc_urand () < 0.7) ? 1.f : 0.f;
        }
        else {
            gc_fill (host [i], (size_t) n, ins [i].scale > 0 ? ins [i].scale : 1.f);
            for (int64_t j = 0; j < n; j++)
                host [i][j] += ins [i].offset;
        }
        vdgx_dtype_t gd = mask ? VDGX_DTYPE_U8 : ins [i].kind == GC_F32 ? VDGX_DTYPE_F32 : dt;
        vdgx_dtype_t cd = mask ? VDGX_DTYPE_U8 : VDGX_DTYPE_F32;
        gc_round (host [i], (size_t) n, gd);
        if (gc_tensor (cpu, &tc [i], cd, ins [i].nd, ins [i].shape, mask ? NULL : host [i])) { rc = -1; break; }
        pc [i] = &tc [i];
        if (gc_tensor (cuda, &tg [i], gd, ins [i].nd, ins [i].shape, mask ? NULL : host [i])) { rc = -1; break; }
        pg [i] = &tg [i];
        if (mask) {
            uint8_t *m = (uint8_t *) malloc ((size_t) n + 1);
            if (!m) { rc = -1; break; }
            for (int64_t j = 0; j < n; j++)
                m [j] = host [i][j] != 0.f;
            memcpy (tc [i].data, m, (size_t) n);
            //  No float conversion exists for U8: raw copy to the device.
            //  (pageable H2D may return before the DMA lands: wait for the device)
            if (cudaMemcpy (tg [i].data, m, (size_t) n, cudaMemcpyHostToDevice) != cudaSuccess
                || cudaDeviceSynchronize () != cudaSuccess)
                rc = -1;
            free (m);
        }
    }
    if (rc == 0) {
        if (!inplace) {
            if (gc_tensor (cpu, &oc, VDGX_DTYPE_F32, ond, oshape, NULL) == 0) have_oc = true;
            if (gc_tensor (cuda, &og, dt, ond, oshape, NULL) == 0) have_og = true;
            if (!have_oc || !have_og) rc = -1;
        }
    }
    if (rc) {
        gc_error (test, cas, "set-up failed: %s", vdgx_backend_error (cuda));
        goto done;
    }
    if (fn (cpu, inplace ? NULL : &oc, pc, arg)) {
        gc_error (test, cas, "cpu: %s", vdgx_backend_error (cpu));
        goto done;
    }
    if (fn (cuda, inplace ? NULL : &og, pg, arg)) {
        gc_error (test, cas, "cuda: %s", vdgx_backend_error (cuda));
        goto done;
    }
    {
        const vdgx_tensor_t *rc_t = inplace ? pc [0] : &oc, *rg_t = inplace ? pg [0] : &og;
        float *a = gc_download (cpu, rc_t), *g = gc_download (cuda, rg_t);
        if (!a || !g)
            gc_error (test, cas, "download failed: %s", vdgx_backend_error (cuda));
        else
            gc_report (test, cas, gc_relerr (g, a, (size_t) gc_numel (rc_t->ndim, rc_t->shape)), tol);
        free (a);
        free (g);
    }
done:
    for (int i = 0; i < nin; i++) {
        if (pc [i]) vdgx_tensor_release (cpu, pc [i]);
        if (pg [i]) vdgx_tensor_release (cuda, pg [i]);
        free (host [i]);
    }
    if (have_oc) vdgx_tensor_release (cpu, &oc);
    if (have_og) vdgx_tensor_release (cuda, &og);
}

#endif
