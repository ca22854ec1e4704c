/*  vdgx_cpu_attn_fast.c - attention on the CPU as blocked GEMM tiles with an online softmax.

    o[B,Lq,H,D] = softmax(q.k^T * scale + bias, masked) . v, k/v [B,Lk,Hkv,D] (GQA: query head
    h reads kv head h / (H / Hkv)); the mask kinds of vdgx_attn_kind_t (full, causal, sliding
    window, block causal, with a q_offset) plus a key padding mask.

    One task per (batch, head, 64 queries). Keys stream in blocks of 256: only the blocks that
    some query of the task can see are visited (causal / sliding / block-causal skip the rest).
    Per block:
      S[64,256] = Qs . Kt   Qs = q * scale (copied once), Kt the key block transposed into a
                            [D, 256] panel; 4 x 64 register tile of AVX-512 FMAs;
      mask, bias            per row: keys outside its visible interval or padded get -inf,
                            the bias row is added (only rows/blocks that need it are touched);
      online softmax        row max, P = exp(S - max) with a vector exp (exp(-inf) = 0
                            exactly), running sum, and the correction of O;
      O[64,D] += P . V      V rows read in place; 4 x 64 register tile.
    Softmax and every sum accumulate in f32; Lq x Lk is never materialised (S is 64 x 256).
    A query row that sees no key gets o = 0.
    vdgx_cpu_attention_fast returns 1 (nothing done) when the CPU has no AVX-512 or D is not a
    multiple of 16: the caller (vdgx_cpu_attention) then runs the plain reference.
*/
#include "vdgx_kernels_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10)
#define A_X86 1
#include <immintrin.h>
#endif


#define A_BQ 64
#define A_BK 256

#ifdef A_X86
#define A_TARGET __attribute__ ((target ("avx512f,avx512dq,avx512vl,avx512bw,fma")))

typedef struct {
    const vdgx_attn_args_t *a;
    int64_t qblocks;
} a_job_t;

//  exp(x) for x <= 0: 2^n * p(r), r = x - n ln2, degree-6 polynomial (relative error ~2e-7);
//  x below -103 (masked keys are -inf) gives exactly 0.
static inline __attribute__ ((always_inline)) A_TARGET __m512
a_exp (__m512 x)
{
    __mmask16 live = _mm512_cmp_ps_mask (x, _mm512_set1_ps (-103.0f), _CMP_GT_OQ);
    x = _mm512_max_ps (x, _mm512_set1_ps (-103.0f));
    __m512 n = _mm512_roundscale_ps (_mm512_mul_ps (x, _mm512_set1_ps (1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps (n, _mm512_set1_ps (0.693359375f), x);
    r = _mm512_fnmadd_ps (n, _mm512_set1_ps (-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps (1.0f / 720);
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f / 120));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f / 24));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f / 6));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (0.5f));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f));
    p = _mm512_fmadd_ps (p, r, _mm512_set1_ps (1.0f));
    return _mm512_maskz_mov_ps (live, _mm512_scalef_ps (p, n));
}

//  St[4 keys, 64 queries] = K[4 keys, D] (row stride ks, read in place) . Qt[D, 64].
static inline __attribute__ ((always_inline)) A_TARGET void
a_qk_tile (const float *k, int64_t ks, int64_t D, const float *qt, float *st, int rows)
{
    __m512 c [4][4];
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < 4; v++)
            c [r][v] = _mm512_setzero_ps ();
    const float *k1 = k + (rows > 1? ks: 0), *k2 = k + (rows > 2? 2 * ks: 0), *k3 = k + (rows > 3? 3 * ks: 0);
    for (int64_t d = 0; d < D; d++) {
        __m512 b [4];
        for (int v = 0; v < 4; v++)
            b [v] = _mm512_load_ps (qt + d * A_BQ + 16 * v);
        __m512 a [4] = { _mm512_set1_ps (k [d]), _mm512_set1_ps (k1 [d]), _mm512_set1_ps (k2 [d]),
                         _mm512_set1_ps (k3 [d]) };
        for (int r = 0; r < 4; r++)
            for (int v = 0; v < 4; v++)
                c [r][v] = _mm512_fmadd_ps (a [r], b [v], c [r][v]);
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < 4; v++)
            _mm512_store_ps (st + r * A_BQ + 16 * v, c [r][v]);
}

//  O[4 queries, nv*16 dims at o] += P[4, nk] . V[nk, dims], P read from Pt[nk][A_BQ].
static inline __attribute__ ((always_inline)) A_TARGET void
a_pv_tile (const float *pt, int64_t nk, const float *v, int64_t vs, float *o, int64_t D, const int nv)
{
    __m512 c [4][4];
    for (int r = 0; r < 4; r++)
        for (int u = 0; u < nv; u++)
            c [r][u] = _mm512_loadu_ps (o + r * D + 16 * u);
    for (int64_t k = 0; k < nk; k++) {
        __m512 b [4];
        for (int u = 0; u < nv; u++)
            b [u] = _mm512_loadu_ps (v + k * vs + 16 * u);
        for (int r = 0; r < 4; r++) {
            __m512 a = _mm512_set1_ps (pt [k * A_BQ + r]);
            for (int u = 0; u < nv; u++)
                c [r][u] = _mm512_fmadd_ps (a, b [u], c [r][u]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int u = 0; u < nv; u++)
            _mm512_storeu_ps (o + r * D + 16 * u, c [r][u]);
}

A_TARGET static void
a_task (void *ctx, int64_t t)
{
    const a_job_t *job = ctx;
    const vdgx_attn_args_t *a = job->a;
    int64_t qb = t % job->qblocks, h = (t / job->qblocks) % a->H, bi = t / (job->qblocks * a->H);
    int64_t D = a->D, i0 = qb * A_BQ, nq = a->Lq - i0 < A_BQ? a->Lq - i0: A_BQ;
    int64_t hk = h / (a->H / a->Hkv), ks = a->Hkv * D;
    int64_t nq4 = (nq + 3) & ~(int64_t) 3;
    float *buf = aligned_alloc (64, sizeof (float) * (size_t) (2 * A_BQ * D + A_BK * A_BQ + 4 * A_BQ));
    if (!buf)
        abort ();       //  out of memory in a compute kernel: nothing sensible to return
    float *qt = buf, *o = qt + A_BQ * D, *st = o + A_BQ * D, *m = st + A_BK * A_BQ, *l = m + A_BQ;
    float *vlo = l + A_BQ, *vhi = vlo + A_BQ;       //  visible key interval per query, as floats
    int64_t klo = a->Lk, khi = 0;
    bool partial = false;           //  some query sees less than [klo, khi)
    for (int64_t r = 0; r < A_BQ; r++) {
        int64_t lo = 0, hi = 0;
        if (r < nq) {
            const float *src = a->q + ((bi * a->Lq + i0 + r) * a->H + h) * D;
            for (int64_t d = 0; d < D; d++)
                qt [d * A_BQ + r] = src [d] * a->scale;
            vdgx_attn_range (a->spec, a->Lk, i0 + r, &lo, &hi);
            klo = lo < klo? lo: klo;
            khi = hi > khi? hi: khi;
        }
        else
            for (int64_t d = 0; d < D; d++)
                qt [d * A_BQ + r] = 0.0f;
        vlo [r] = (float) lo;
        vhi [r] = (float) hi;
        m [r] = -INFINITY;
        l [r] = 0;
    }
    for (int64_t r = 0; r < nq; r++)
        partial |= (int64_t) vlo [r] != klo || (int64_t) vhi [r] != khi;
    memset (o, 0, sizeof (float) * (size_t) (A_BQ * D));
    const uint8_t *kmask = a->key_mask? a->key_mask + bi * a->Lk: NULL;
    const __m512 ninf = _mm512_set1_ps (-INFINITY);
    for (int64_t k0 = klo; k0 < khi; k0 += A_BK) {
        int64_t nk = khi - k0 < A_BK? khi - k0: A_BK;
        const float *kb = a->k + bi * a->kv_bstride + (k0 * a->Hkv + hk) * D;
        const float *vb = a->v + bi * a->kv_bstride + (k0 * a->Hkv + hk) * D;
        for (int64_t c = 0; c < nk; c += 4)
            a_qk_tile (kb + c * ks, ks, D, qt, st + c * A_BQ, nk - c < 4? (int) (nk - c): 4);
        //  masks and bias, one key row at a time across the 64 queries
        bool block_partial = false;
        for (int64_t r = 0; partial && r < nq && !block_partial; r++)
            block_partial = vlo [r] > (float) k0 || vhi [r] < (float) (k0 + nk);
        for (int64_t c = 0; c < nk; c++) {
            float *sr = st + c * A_BQ;
            if (kmask && !kmask [k0 + c]) {
                for (int v = 0; v < 4; v++)
                    _mm512_store_ps (sr + 16 * v, ninf);
                continue;
            }
            if (block_partial) {
                __m512 key = _mm512_set1_ps ((float) (k0 + c));
                for (int v = 0; v < 4; v++) {
                    __mmask16 out = _mm512_cmp_ps_mask (key, _mm512_load_ps (vlo + 16 * v), _CMP_LT_OQ)
                                  | _mm512_cmp_ps_mask (key, _mm512_load_ps (vhi + 16 * v), _CMP_GE_OQ);
                    _mm512_mask_store_ps (sr + 16 * v, out, ninf);
                }
            }
            if (a->bias)
                for (int64_t r = 0; r < nq; r++)
                    sr [r] += a->bias [(h * a->Lq + i0 + r) * a->Lk + k0 + c];
        }
        //  online softmax per query (column): block max, P = exp(S - max), sums, O correction
        __m512 mx [4] = { ninf, ninf, ninf, ninf };
        for (int64_t c = 0; c < nk; c++)
            for (int v = 0; v < 4; v++)
                mx [v] = _mm512_max_ps (mx [v], _mm512_load_ps (st + c * A_BQ + 16 * v));
        __m512 mnew [4], sum [4];
        float corr [A_BQ] __attribute__ ((aligned (64)));
        for (int v = 0; v < 4; v++) {
            __m512 mo = _mm512_load_ps (m + 16 * v);
            mnew [v] = _mm512_max_ps (mo, mx [v]);
            //  a query that has seen nothing yet keeps max -inf: use 0 so P = exp(-inf) = 0
            __mmask16 none = _mm512_cmp_ps_mask (mnew [v], ninf, _CMP_EQ_OQ);
            mnew [v] = _mm512_mask_mov_ps (mnew [v], none, _mm512_setzero_ps ());
            _mm512_store_ps (corr + 16 * v, a_exp (_mm512_sub_ps (mo, mnew [v])));
            _mm512_store_ps (m + 16 * v, _mm512_mask_mov_ps (mnew [v], none, ninf));
            sum [v] = _mm512_setzero_ps ();
        }
        for (int64_t c = 0; c < nk; c++)
            for (int v = 0; v < 4; v++) {
                float *p = st + c * A_BQ + 16 * v;
                __m512 e = a_exp (_mm512_sub_ps (_mm512_load_ps (p), mnew [v]));
                _mm512_store_ps (p, e);
                sum [v] = _mm512_add_ps (sum [v], e);
            }
        for (int v = 0; v < 4; v++)
            _mm512_store_ps (l + 16 * v, _mm512_fmadd_ps (_mm512_load_ps (l + 16 * v),
                                                           _mm512_load_ps (corr + 16 * v), sum [v]));
        for (int64_t r = 0; r < nq; r++)
            if (corr [r] != 1.0f) {
                __m512 cv = _mm512_set1_ps (corr [r]);
                for (int64_t d = 0; d < D; d += 16)
                    _mm512_storeu_ps (o + r * D + d, _mm512_mul_ps (_mm512_loadu_ps (o + r * D + d), cv));
            }
        for (int64_t r = 0; r < nq4; r += 4) {
            int64_t d = 0;
            for (; d + 64 <= D; d += 64)
                a_pv_tile (st + r, nk, vb + d, ks, o + r * D + d, D, 4);
            for (; d < D; d += 16)
                a_pv_tile (st + r, nk, vb + d, ks, o + r * D + d, D, 1);
        }
    }
    for (int64_t r = 0; r < nq; r++) {
        float *dst = a->o + ((bi * a->Lq + i0 + r) * a->H + h) * D;
        __m512 inv = _mm512_set1_ps (l [r] > 0? 1.0f / l [r]: 0.0f);
        for (int64_t d = 0; d < D; d += 16)
            _mm512_storeu_ps (dst + d, _mm512_mul_ps (_mm512_loadu_ps (o + r * D + d), inv));
    }
    free (buf);
}
#endif

bool vdgx_attn_fast_disable = false;

int
vdgx_cpu_attention_fast (vdgx_cpu_pool_t *pool, const vdgx_attn_args_t *a)
{
#ifdef A_X86
    __builtin_cpu_init ();
    if (vdgx_attn_fast_disable || a->D % 16 || a->D <= 0 || a->Hkv <= 0 || a->H % a->Hkv
    ||  !__builtin_cpu_supports ("avx512f") || !__builtin_cpu_supports ("avx512dq"))
        return 1;
    a_job_t j = { a, (a->Lq + A_BQ - 1) / A_BQ };
    vdgx_cpu_pool_run (pool, a->B * a->H * j.qblocks, a_task, &j);
    return 0;
#else
    (void) pool; (void) a;
    return 1;
#endif
}

//  ---------------------------------------------------------------------------------------
//  Selftest: the kernel against the definition (double precision, Lq x Lk scores per head)
//  over every mask kind, GQA, key padding, bias and odd sizes; random inputs in [-1, 1).
//  o is a convex combination of v rows, so |got - ref| <= 2e-5 is about 100 f32 roundings.

#include <assert.h>
#include <stdio.h>

static uint64_t a_seed = 0x853c49e6748fea9bull;

static void
a_reference (const vdgx_attn_args_t *a, double *out)
{
    double *sc = malloc (sizeof (double) * (size_t) a->Lk);
    assert (sc);
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t i = 0; i < a->Lq; i++) {
                const vdgx_attn_spec_t *sp = a->spec;
                int64_t hk = h / (a->H / a->Hkv), pos = i + sp->q_offset;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < a->Lk; j++) {
                    bool vis = sp->kind == VDGX_ATTN_FULL || (sp->kind == VDGX_ATTN_CAUSAL && j <= pos)
                            || (sp->kind == VDGX_ATTN_SLIDING && j <= pos && j > pos - sp->window)
                            || (sp->kind == VDGX_ATTN_BLOCK_CAUSAL
                                && (double) (j / sp->block) <= floor ((double) pos / (double) sp->block));
                    if (a->key_mask && !a->key_mask [b * a->Lk + j])
                        vis = false;
                    sc [j] = -INFINITY;
                    if (!vis)
                        continue;
                    double d = 0;
                    for (int64_t e = 0; e < a->D; e++)
                        d += (double) a->q [((b * a->Lq + i) * a->H + h) * a->D + e]
                           * a->k [b * a->kv_bstride + (j * a->Hkv + hk) * a->D + e];
                    sc [j] = d * a->scale + (a->bias? a->bias [(h * a->Lq + i) * a->Lk + j]: 0.0);
                    mx = sc [j] > mx? sc [j]: mx;
                }
                double *o = out + ((b * a->Lq + i) * a->H + h) * a->D;
                for (int64_t e = 0; e < a->D; e++)
                    o [e] = 0;
                if (mx == -INFINITY)
                    continue;
                for (int64_t j = 0; j < a->Lk; j++) {
                    double p = sc [j] == -INFINITY? 0.0: exp (sc [j] - mx);
                    sum += p;
                    for (int64_t e = 0; e < a->D; e++)
                        o [e] += p * a->v [b * a->kv_bstride + (j * a->Hkv + hk) * a->D + e];
                }
                for (int64_t e = 0; e < a->D; e++)
                    o [e] /= sum;
            }
    free (sc);
}

void
vdgx_cpu_attn_fast_test (bool verbose)
{
    printf (" * vdgx_cpu_attn_fast: ");
    vdgx_cpu_pool_t *pool = vdgx_cpu_pool_new (3);
    static const int64_t shapes [][6] = {     //  B, Lq, Lk, H, Hkv, D
        { 2, 70, 300, 4, 2, 64 }, { 1, 1, 37, 4, 1, 128 }, { 2, 130, 130, 2, 2, 16 },
        { 1, 5, 600, 3, 3, 48 }, { 1, 64, 256, 2, 1, 128 }
    };
    double worst = 0;
    int cases = 0;
    for (size_t s = 0; s < sizeof (shapes) / sizeof (shapes [0]); s++)
        for (int kind = VDGX_ATTN_FULL; kind <= VDGX_ATTN_BLOCK_CAUSAL; kind++)
            for (int extra = 0; extra < 2; extra++) {
                vdgx_attn_args_t a = { 0 };
                vdgx_attn_spec_t sp = { 0 };
                a.spec = &sp;
                a.B = shapes [s][0]; a.Lq = shapes [s][1]; a.Lk = shapes [s][2];
                a.H = shapes [s][3]; a.Hkv = shapes [s][4]; a.D = shapes [s][5];
                sp.kind = (vdgx_attn_kind_t) kind;
                sp.q_offset = extra? a.Lk - a.Lq: 0;    //  appending to a KV cache, or not
                sp.window = 1 + (int64_t) s * 17;
                sp.block = s == 2? 64: 3 + (int64_t) s;
                a.scale = 1.0f / sqrtf ((float) a.D) * (extra? 4.0f: 1.0f);
                int64_t nq = a.B * a.Lq * a.H * a.D, nk = a.B * a.Lk * a.Hkv * a.D;
                float *q = malloc (sizeof (float) * (size_t) nq), *k = malloc (sizeof (float) * (size_t) nk);
                float *v = malloc (sizeof (float) * (size_t) nk), *o = malloc (sizeof (float) * (size_t) nq);
                float *bias = malloc (sizeof (float) * (size_t) (a.H * a.Lq * a.Lk));
                uint8_t *mask = malloc ((size_t) (a.B * a.Lk));
                double *ref = malloc (sizeof (double) * (size_t) nq);
                assert (q && k && v && o && bias && mask && ref);
                for (int64_t i = 0; i < nq; i++) q [i] = vdgx_test_randf (&a_seed);
                for (int64_t i = 0; i < nk; i++) { k [i] = vdgx_test_randf (&a_seed); v [i] = vdgx_test_randf (&a_seed); }
                for (int64_t i = 0; i < a.H * a.Lq * a.Lk; i++) bias [i] = 2.0f * vdgx_test_randf (&a_seed);
                //  key padding: the tail of batch 0, every key of batch 1 (its rows get 0)
                for (int64_t b = 0; b < a.B; b++)
                    for (int64_t j = 0; j < a.Lk; j++)
                        mask [b * a.Lk + j] = b == 0? (j < a.Lk - a.Lk / 3 && vdgx_test_randf (&a_seed) > -0.8f): 0;
                a.o = o; a.q = q; a.k = k; a.v = v;
                a.kv_bstride = a.Lk * a.Hkv * a.D;
                a.bias = extra? bias: NULL;
                a.key_mask = extra || kind == VDGX_ATTN_FULL? mask: NULL;
                assert (vdgx_cpu_attention_fast (pool, &a) == 0 || a.D % 16);
                if (a.D % 16 == 0) {
                    a_reference (&a, ref);
                    for (int64_t i = 0; i < nq; i++) {
                        double e = fabs (o [i] - ref [i]);
                        worst = e > worst? e: worst;
                        if (!(e <= 2e-5)) {
                            fprintf (stderr, "\nFAIL attention kind %d shape %zu extra %d at %lld: got %.8g ref %.8g\n",
                                     kind, s, extra, (long long) i, o [i], ref [i]);
                            assert (false);
                        }
                    }
                    cases++;
                }
                free (q); free (k); free (v); free (o); free (bias); free (mask); free (ref);
            }
    if (verbose)
        printf ("(%d cases, worst %.1e) ", cases, worst);
    vdgx_cpu_pool_destroy (&pool);
    printf ("OK\n");
}
