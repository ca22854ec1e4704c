/*  vdgx_cpu_ew_fast.c - AVX-512 paths of the CPU's sigmoid-type activations.

    gelu_tanh(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), is computed as the
    identical x / (1 + exp(-2u)), and silu(x) = x / (1 + exp(-x)); exp is a vector 2^n p(r)
    (degree-5 minimax polynomial in r = x - n ln2, about 1 ulp: the degree-6 Taylor one of
    vdgx_cpu_attn_fast.c moved the fragile refcheck.ltx23.audio chain past its tolerance),
    with its argument clamped to [-103, 88] (exp(88) is finite, so the quotient goes to 0
    without inf / inf). 16 lanes per step, a masked tail. The plain C reference is the
    scalar loop of vdgx_cpu.c (tanhf / expf), which runs when this file returns false: no AVX-512 on this CPU, VDGX_CPU_EXACT=1 in the
    environment (read once), or vdgx_ew_fast_disable.

    The scalar GELU spent a third of the DiT's non-GEMM time in tanhf/expm1f (perf, 1,560
    tokens, 2 blocks: 12 % of all CPU samples); the VAE's SiLU has the same shape.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10)
#define E_X86 1
#include <immintrin.h>
#endif

bool vdgx_ew_fast_disable = false;

#ifdef E_X86
#define E_TARGET __attribute__ ((target ("avx512f,avx512dq,fma")))

//  exp(x) for x in [-103, 88] (callers clamp): 2^n * p(r), r = x - n ln2 (two-part ln2).
static inline __attribute__ ((always_inline)) E_TARGET __m512
e_exp (__m512 x)
{
    __m512 n = _mm512_roundscale_ps (_mm512_mul_ps (x, _mm512_set1_ps (1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps (n, _mm512_set1_ps (0.693359375f), x);
    r = _mm512_fnmadd_ps (n, _mm512_set1_ps (-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps (1.9875691500e-4f);     //  minimax on |r| <= ln2 / 2 (~1 ulp)
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.3981999507e-3f));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (8.3334519073e-3f));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (4.1665795894e-2f));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.6666665459e-1f));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (5.0000001201e-1f));
    p = _mm512_fmadd_ps (p, _mm512_mul_ps (r, r), _mm512_add_ps (r, _mm512_set1_ps (1.0f)));
    return _mm512_scalef_ps (p, n);
}

//  x / (1 + exp(t)), t clamped to [-103, 88].
static inline __attribute__ ((always_inline)) E_TARGET __m512
e_x_sigmoid (__m512 x, __m512 t)
{
    t = _mm512_min_ps (_mm512_max_ps (t, _mm512_set1_ps (-103.0f)), _mm512_set1_ps (88.0f));
    return _mm512_div_ps (x, _mm512_add_ps (_mm512_set1_ps (1.0f), e_exp (t)));
}

static E_TARGET void
e_run (vdgx_cpu_ew_t kind, float *y, const float *x, int64_t n)
{
    const __m512 c1 = _mm512_set1_ps (-2.0f * 0.7978845608028654f);
    const __m512 c3 = _mm512_set1_ps (-2.0f * 0.7978845608028654f * 0.044715f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16? (__mmask16) 0xffff: (__mmask16) ((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps (m, x + i), t;
        if (kind == VDGX_CPU_EW_GELU_TANH)      //  -2u = x (c1 + c3 x^2)
            t = _mm512_mul_ps (v, _mm512_fmadd_ps (_mm512_mul_ps (v, v), c3, c1));
        else
            t = _mm512_sub_ps (_mm512_setzero_ps (), v);
        _mm512_mask_storeu_ps (y + i, m, e_x_sigmoid (v, t));
    }
}
#endif

bool
vdgx_cpu_ew_fast (vdgx_cpu_ew_t kind, float *y, const float *x, int64_t n)
{
#ifdef E_X86
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init ();
        const char *exact = getenv ("VDGX_CPU_EXACT");
        have = __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512dq")
            && !(exact && *exact && strcmp (exact, "0") != 0);
    }
    if (vdgx_ew_fast_disable || !have)
        return false;
    e_run (kind, y, x, n);
    return true;
#else
    (void) kind; (void) y; (void) x; (void) n;
    return false;
#endif
}

//  ---------------------------------------------------------------------------------------
//  Selftest: the fast path and the scalar reference (the backend op with the fast path off)
//  against an f64 evaluation on random inputs of every scale, including the tails where the
//  reference's 1 + tanh cancels. Bound: |y - y64| <= 1e-6 |x| + 1e-37 per element.

static double
s_ref64 (vdgx_cpu_ew_t kind, double x)
{
    if (kind == VDGX_CPU_EW_GELU_TANH)
        return 0.5 * x * (1.0 + tanh (0.7978845608028654 * (x + 0.044715 * x * x * x)));
    return x / (1.0 + exp (-x));
}

void
vdgx_cpu_ew_fast_test (bool verbose)
{
    printf (" * vdgx_cpu_ew_fast: ");
    const int64_t n = 4099;         //  a masked tail of 3
    float *x = malloc (sizeof (float) * n), *y = malloc (sizeof (float) * n);
    assert (x && y);
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);
    const int64_t shape [1] = { n };
    vdgx_tensor_t tx, ty;
    assert (vdgx_tensor_alloc (b, &tx, VDGX_DTYPE_F32, 1, shape) == 0);
    assert (vdgx_tensor_alloc (b, &ty, VDGX_DTYPE_F32, 1, shape) == 0);
    uint32_t rng = 12345;
    for (int64_t i = 0; i < n; i++) {
        rng = rng * 1664525u + 1013904223u;
        double u = ((rng >> 8) * (1.0 / 16777216.0)) * 2.0 - 1.0;
        //  scales 1e-3 .. 1e2 (x^3 overflows the exp argument past ~12 for GELU)
        double s = pow (10.0, -3.0 + 5.0 * (double) (i % 11) / 10.0);
        x [i] = (float) (u * s);
    }
    x [0] = 0.0f, x [1] = -200.0f, x [2] = 200.0f, x [3] = -1e-30f;
    assert (vdgx_tensor_from_f32 (b, &tx, x) == 0);
    bool fast = false;
    double worst [2][2] = { { 0 } };
    for (int k = 0; k < 2; k++) {
        vdgx_cpu_ew_t kind = k? VDGX_CPU_EW_SILU: VDGX_CPU_EW_GELU_TANH;
        for (int path = 0; path < 2; path++) {
            if (path == 0) {
                if (!vdgx_cpu_ew_fast (kind, y, x, n))
                    continue;
                fast = true;
            }
            else {
                vdgx_ew_fast_disable = true;
                assert ((k? vdgx_op_silu (b, &ty, &tx): vdgx_op_gelu_tanh (b, &ty, &tx)) == 0);
                vdgx_ew_fast_disable = false;
                assert (vdgx_tensor_to_f32 (b, &ty, y) == 0);
            }
            for (int64_t i = 0; i < n; i++) {
                double ref = s_ref64 (kind, x [i]), e = fabs (y [i] - ref);
                double bound = 1e-6 * fabs ((double) x [i]) + 1e-37;
                if (!(e <= bound))
                    fprintf (stderr, "\new_fast %s path %d: x %g y %g ref %g\n", k? "silu": "gelu",
                             path, x [i], y [i], ref);
                assert (e <= bound);
                if (x [i] != 0 && e / fabs ((double) x [i]) > worst [k][path])
                    worst [k][path] = e / fabs ((double) x [i]);
            }
        }
    }
    //  The backend op takes the fast path when there is one: same values as the direct call.
    if (fast) {
        float *z = malloc (sizeof (float) * n);
        assert (z && vdgx_op_gelu_tanh (b, &ty, &tx) == 0 && vdgx_tensor_to_f32 (b, &ty, z) == 0);
        assert (vdgx_cpu_ew_fast (VDGX_CPU_EW_GELU_TANH, y, x, n));
        for (int64_t i = 0; i < n; i++)
            assert (z [i] == y [i]);
        free (z);
    }
    if (verbose)
        printf ("\n   worst |y - y64| / |x|: gelu fast %.2e ref %.2e, silu fast %.2e ref %.2e%s\n   ",
                worst [0][0], worst [0][1], worst [1][0], worst [1][1], fast? "": " (no fast path here: reference only)");
    vdgx_tensor_release (b, &tx);
    vdgx_tensor_release (b, &ty);
    vdgx_backend_destroy (&b);
    free (x);
    free (y);
    printf ("OK\n");
}
