/*  vdgx_attn_selftest.c - vdgx_attn_test: rotary tables and the attention module against a
    plain C reference (float64) on random inputs: MHA / GQA / MQA, q/k norms per head and
    across heads, interleaved and half rotary, full / causal / sliding / block-causal masks,
    key padding, cross-attention; the KV cache: chunked appends, truncation and batch 2 give
    what recomputing the whole context gives, and dropping its oldest rows leaves the others
    attending bit for bit as before. CPU f32, tolerance 1e-5 of the largest value.
*/
#include "vdgx_attn.h"
#include "vdgx_nn_testing.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_state = 0x9E3779B97F4A7C15ull;

#define s_randv(n, scale) vdgx_test_randv (&s_state, (n), (scale))

//  The geometry and host weights of one test module.
typedef struct {
    int64_t dim, H, G, D;
    float *wq, *wk, *wv, *wo, *nq, *nk;
    int64_t nq_dim, nk_dim;         //  0 = no norm
    vdgx_rope_layout_t layout;
    bool rope;
} s_ref_t;

static void
s_proj (const float *x, const float *w, double *y, int64_t L, int64_t n, int64_t k)
{
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t c = 0; c < k; c++)
                s += (double) x [i * k + c] * w [j * k + c];
            y [i * n + j] = s;
        }
}

static void
s_rms (double *y, int64_t rows, int64_t dim, const float *w)
{
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int64_t i = 0; i < dim; i++)
            ss += y [r * dim + i] * y [r * dim + i];
        double inv = 1.0 / sqrt (ss / (double) dim + 1e-6);
        for (int64_t i = 0; i < dim; i++)
            y [r * dim + i] *= inv * w [i];
    }
}

//  Rotates y [L, heads, D] at positions pos0.. with theta 10000 (1-D).
static void
s_rot (double *y, int64_t L, int64_t heads, int64_t D, int64_t pos0, vdgx_rope_layout_t layout)
{
    for (int64_t l = 0; l < L; l++)
        for (int64_t h = 0; h < heads; h++)
            for (int64_t j = 0; j < D / 2; j++) {
                double a = (double) (pos0 + l) / pow (10000.0, (double) (2 * j) / (double) D);
                double c = (float) cos (a), s = (float) sin (a);
                double *p = y + (l * heads + h) * D;
                int64_t i0 = layout == VDGX_ROPE_INTERLEAVED? 2 * j: j;
                int64_t i1 = layout == VDGX_ROPE_INTERLEAVED? 2 * j + 1: j + D / 2;
                double x0 = p [i0], x1 = p [i1];
                p [i0] = x0 * c - x1 * s;
                p [i1] = x1 * c + x0 * s;
            }
}

static bool
s_visible (const vdgx_attn_spec_t *s, int64_t i, int64_t j)
{
    int64_t p = i + s->q_offset;
    switch (s->kind) {
        case VDGX_ATTN_FULL: return true;
        case VDGX_ATTN_CAUSAL: return j <= p;
        case VDGX_ATTN_SLIDING: return j <= p && j > p - s->window;
        case VDGX_ATTN_BLOCK_CAUSAL: return j / s->block <= p / s->block;
    }
    return false;
}

//  y [Lq, dim] for one sequence: x [Lq, dim] at key positions q_offset.., ctx [Lk, dim].
static void
s_reference (const s_ref_t *r, const float *x, const float *ctx, int64_t Lq, int64_t Lk,
             const vdgx_attn_spec_t *spec, const uint8_t *kmask, double *y)
{
    int64_t H = r->H, G = r->G, D = r->D;
    double *q = malloc (sizeof (double) * (size_t) (Lq * H * D));
    double *k = malloc (sizeof (double) * (size_t) (Lk * G * D));
    double *v = malloc (sizeof (double) * (size_t) (Lk * G * D));
    double *o = calloc ((size_t) (Lq * H * D), sizeof (double));
    double *p = malloc (sizeof (double) * (size_t) Lk);
    s_proj (x, r->wq, q, Lq, H * D, r->dim);
    s_proj (ctx, r->wk, k, Lk, G * D, r->dim);
    s_proj (ctx, r->wv, v, Lk, G * D, r->dim);
    if (r->nq_dim)
        s_rms (q, Lq * H * D / r->nq_dim, r->nq_dim, r->nq);
    if (r->nk_dim)
        s_rms (k, Lk * G * D / r->nk_dim, r->nk_dim, r->nk);
    if (r->rope) {
        s_rot (q, Lq, H, D, spec? spec->q_offset: 0, r->layout);
        s_rot (k, Lk, G, D, 0, r->layout);
    }
    for (int64_t h = 0; h < H; h++) {
        int64_t g = h / (H / G);
        for (int64_t i = 0; i < Lq; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < Lk; j++) {
                bool vis = (!spec || s_visible (spec, i, j)) && (!kmask || kmask [j]);
                double s = 0;
                for (int64_t d = 0; d < D; d++)
                    s += q [(i * H + h) * D + d] * k [(j * G + g) * D + d];
                p [j] = vis? s / sqrt ((double) D): -INFINITY;
                mx = fmax (mx, p [j]);
            }
            for (int64_t j = 0; j < Lk; j++) {
                p [j] = mx == -INFINITY? 0: exp (p [j] - mx);
                sum += p [j];
            }
            for (int64_t j = 0; j < Lk && sum > 0; j++)
                for (int64_t d = 0; d < D; d++)
                    o [(i * H + h) * D + d] += p [j] / sum * v [(j * G + g) * D + d];
        }
    }
    for (int64_t i = 0; i < Lq; i++)
        for (int64_t c = 0; c < r->dim; c++) {
            double s = 0;
            for (int64_t e = 0; e < H * D; e++)
                s += o [i * H * D + e] * r->wo [c * H * D + e];
            y [i * r->dim + c] = s;
        }
    free (q); free (k); free (v); free (o); free (p);
}

//  A module on the backend with the weights of r; rope tables for positions 0..len-1.
static void
s_module (vdgx_backend_t *b, const s_ref_t *r, vdgx_attn_t *a)
{
    char *err = NULL;
    vdgx_attn_init (a, r->dim, r->H, r->G, r->D);
    const vdgx_dtype_t f32 = VDGX_DTYPE_F32;
    assert (vdgx_linear_from_f32 (b, &a->q, VDGX_WFMT_F32, r->wq, NULL, r->H * r->D, r->dim, f32, &err) == 0);
    assert (vdgx_linear_from_f32 (b, &a->k, VDGX_WFMT_F32, r->wk, NULL, r->G * r->D, r->dim, f32, &err) == 0);
    assert (vdgx_linear_from_f32 (b, &a->v, VDGX_WFMT_F32, r->wv, NULL, r->G * r->D, r->dim, f32, &err) == 0);
    assert (vdgx_linear_from_f32 (b, &a->o, VDGX_WFMT_F32, r->wo, NULL, r->dim, r->H * r->D, f32, &err) == 0);
    if (r->nq_dim) {
        a->has_q_norm = true;
        assert (vdgx_norm_init (b, &a->q_norm, VDGX_NORM_RMS, r->nq_dim, 1e-6f, r->nq, NULL, false, &err) == 0);
    }
    if (r->nk_dim) {
        a->has_k_norm = true;
        assert (vdgx_norm_init (b, &a->k_norm, VDGX_NORM_RMS, r->nk_dim, 1e-6f, r->nk, NULL, false, &err) == 0);
    }
}

static void
s_rope1d (vdgx_backend_t *b, vdgx_rope_t *rope, int64_t pos0, int64_t len, int64_t D, vdgx_rope_layout_t layout)
{
    double *coords = malloc (sizeof (double) * (size_t) len), *freq = malloc (sizeof (double) * (size_t) (D / 2));
    for (int64_t l = 0; l < len; l++)
        coords [l] = (double) (pos0 + l);
    vdgx_rope_theta_freqs (10000.0, D, freq);
    char *err = NULL;
    assert (vdgx_rope_build (b, rope, layout, len, 1, coords, D / 2, NULL, freq, &err) == 0);
    free (coords);
    free (freq);
}

static float *
s_forward (vdgx_backend_t *b, const vdgx_attn_t *a, const float *x, const float *ctx, int64_t B,
           int64_t Lq, int64_t Lk, const vdgx_rope_t *rq, const vdgx_rope_t *rk,
           const vdgx_attn_spec_t *spec, vdgx_kvcache_t *cache)
{
    vdgx_tensor_t xt, ct, yt;
    const int64_t sx [3] = { B, Lq, a->dim }, sc [3] = { B, Lk, a->dim };
    assert (vdgx_nn_upload (b, &xt, VDGX_DTYPE_F32, 3, sx, x) == 0);
    assert (vdgx_nn_upload (b, &ct, VDGX_DTYPE_F32, 3, sc, ctx) == 0);
    assert (vdgx_nn_alloc (b, &yt, VDGX_DTYPE_F32, B, Lq, a->dim, 0) == 0);
    char *err = NULL;
    int rc = vdgx_attn_forward (b, a, &yt, &xt, ctx == x? NULL: &ct, rq, rk, spec, cache, &err);
    if (rc)
        printf ("attention: %s\n", err);
    assert (rc == 0);
    float *y = malloc (sizeof (float) * (size_t) (B * Lq * a->dim));
    assert (vdgx_tensor_to_f32 (b, &yt, y) == 0);
    vdgx_nn_free (b, &xt);
    vdgx_nn_free (b, &ct);
    vdgx_nn_free (b, &yt);
    return y;
}

void
vdgx_attn_test (bool verbose)
{
    vdgx_backend_t *b = vdgx_test_begin ("vdgx_attn", verbose);
    char *err = NULL;

    //  Wan's 3-axis table: pair j of c = D/2 rotates by the frame, row or column position
    //  ([c - 2(c/3), c/3, c/3]) with rope_params frequencies of that part's width.
    {
        const int64_t D = 12, c = 6, gf = 2, gh = 3, gw = 2;
        vdgx_rope_t r;
        assert (vdgx_rope_wan3d (b, &r, D, gf, gh, gw, &err) == 0);
        assert (r.len == 12 && r.pairs == c && r.layout == VDGX_ROPE_INTERLEAVED);
        float cs [12 * 6], sn [12 * 6];
        assert (vdgx_tensor_to_f32 (b, &r.cos, cs) == 0 && vdgx_tensor_to_f32 (b, &r.sin, sn) == 0);
        const int dims [3] = { 4, 4, 4 }, first [3] = { 0, 2, 4 };
        for (int64_t tok = 0; tok < 12; tok++) {
            int64_t pos [3] = { tok / (gh * gw), tok / gw % gh, tok % gw };
            for (int part = 0; part < 3; part++)
                for (int i = 0; i < dims [part] / 2; i++) {
                    double a = (double) pos [part] / pow (10000.0, (double) (2 * i) / dims [part]);
                    assert (cs [tok * c + first [part] + i] == (float) cos (a));
                    assert (sn [tok * c + first [part] + i] == (float) sin (a));
                }
        }
        vdgx_rope_release (b, &r);
    }

    //  The module: shapes x layouts x masks, batch 1, against the reference.
    const struct { int64_t H, G, D, nq, nk; bool rope; vdgx_rope_layout_t layout; } geo [] = {
        { 4, 4, 8, 0, 0, false, VDGX_ROPE_HALF },           //  MHA, no norms
        { 4, 2, 8, 8, 8, true, VDGX_ROPE_HALF },            //  GQA, per-head norms, half rope
        { 4, 1, 8, 32, 8, true, VDGX_ROPE_INTERLEAVED },    //  MQA, q norm across heads
    };
    const int64_t dim = 24, L = 11;
    for (size_t gi = 0; gi < sizeof (geo) / sizeof (geo [0]); gi++) {
        s_ref_t r = { dim, geo [gi].H, geo [gi].G, geo [gi].D, NULL, NULL, NULL, NULL, NULL, NULL,
                      geo [gi].nq, geo [gi].nk, geo [gi].layout, geo [gi].rope };
        int64_t HD = r.H * r.D, GD = r.G * r.D;
        r.wq = s_randv ((size_t) (HD * dim), 0.3f);
        r.wk = s_randv ((size_t) (GD * dim), 0.3f);
        r.wv = s_randv ((size_t) (GD * dim), 0.3f);
        r.wo = s_randv ((size_t) (dim * HD), 0.3f);
        r.nq = s_randv ((size_t) HD, 1.0f);
        r.nk = s_randv ((size_t) GD, 1.0f);
        vdgx_attn_t a;
        s_module (b, &r, &a);
        vdgx_rope_t rope;
        s_rope1d (b, &rope, 0, L, r.D, r.layout);
        float *x = s_randv ((size_t) (2 * L * dim), 1.0f);
        double *want = malloc (sizeof (double) * (size_t) (2 * L * dim));
        vdgx_attn_spec_t specs [4] = {
            { .kind = VDGX_ATTN_FULL }, { .kind = VDGX_ATTN_CAUSAL },
            { .kind = VDGX_ATTN_SLIDING, .window = 3 }, { .kind = VDGX_ATTN_BLOCK_CAUSAL, .block = 4 } };
        for (int si = 0; si < 4; si++) {
            float *y = s_forward (b, &a, x, x, 1, L, L, r.rope? &rope: NULL, NULL, &specs [si], NULL);
            s_reference (&r, x, x, L, L, &specs [si], NULL, want);
            double e = vdgx_test_err (y, want, (size_t) (L * dim));
            if (verbose)
                printf ("  H %lld Hkv %lld mask %d: %.3g\n", (long long) r.H, (long long) r.G, si, e);
            assert (e < 1e-5);
            free (y);
        }
        //  Cross-attention to 7 context rows, the last 2 padding (key mask), no rope.
        {
            const int64_t Lk = 7;
            uint8_t km [7] = { 1, 1, 1, 1, 1, 0, 0 };
            vdgx_tensor_t kmt;
            const int64_t sk [2] = { 1, Lk };
            assert (vdgx_tensor_alloc (b, &kmt, VDGX_DTYPE_U8, 2, sk) == 0);
            memcpy (kmt.data, km, sizeof (km));
            vdgx_attn_spec_t spec = { .kind = VDGX_ATTN_FULL, .key_mask = &kmt };
            s_ref_t rc = r;
            rc.rope = false;
            float *y = s_forward (b, &a, x, x + L * dim, 1, L, Lk, NULL, NULL, &spec, NULL);
            s_reference (&rc, x, x + L * dim, L, Lk, &spec, km, want);
            double e = vdgx_test_err (y, want, (size_t) (L * dim));
            if (verbose)
                printf ("  cross-attention with key padding: %.3g\n", e);
            assert (e < 1e-5);
            free (y);
            vdgx_nn_free (b, &kmt);
        }
        //  KV cache, batch 2: chunks of 4, 4, 3 appended (causal) give the full causal run;
        //  truncating to 4 and appending other rows gives the run on that other context.
        {
            float *xx = s_randv ((size_t) (2 * L * dim), 1.0f);      //  [2, L, dim]
            vdgx_kvcache_t *cache = vdgx_kvcache_new (b, VDGX_DTYPE_F32, 2, 16, r.G, r.D, &err);
            assert (cache && vdgx_kvcache_capacity (cache) == 16);
            vdgx_attn_spec_t causal = { .kind = VDGX_ATTN_CAUSAL };
            const int64_t chunks [3] = { 4, 4, 3 };
            float *got = malloc (sizeof (float) * (size_t) (2 * L * dim));
            float *chunk = malloc (sizeof (float) * (size_t) (2 * 4 * dim));
            int64_t at = 0;
            for (int ci = 0; ci < 3; ci++) {
                int64_t n = chunks [ci];
                for (int s = 0; s < 2; s++)
                    memcpy (chunk + s * n * dim, xx + (s * L + at) * dim, sizeof (float) * (size_t) (n * dim));
                vdgx_rope_t rp;
                s_rope1d (b, &rp, at, n, r.D, r.layout);
                float *y = s_forward (b, &a, chunk, chunk, 2, n, n, r.rope? &rp: NULL, NULL, &causal, cache);
                for (int s = 0; s < 2; s++)
                    memcpy (got + (s * L + at) * dim, y + s * n * dim, sizeof (float) * (size_t) (n * dim));
                free (y);
                vdgx_rope_release (b, &rp);
                at += n;
                assert (vdgx_kvcache_len (cache) == at);
            }
            for (int s = 0; s < 2; s++)
                s_reference (&r, xx + s * L * dim, xx + s * L * dim, L, L, &causal, NULL, want + s * L * dim);
            double e = vdgx_test_err (got, want, (size_t) (2 * L * dim));
            if (verbose)
                printf ("  kv cache (4+4+3, batch 2) vs full: %.3g\n", e);
            assert (e < 1e-5);
            //  Truncate to 4 rows, append 5 new rows (positions 4..8) of another context.
            assert (vdgx_kvcache_truncate (cache, 4) == 0 && vdgx_kvcache_len (cache) == 4);
            float *alt = s_randv ((size_t) (2 * 5 * dim), 1.0f);
            float *ctx9 = malloc (sizeof (float) * (size_t) (2 * 9 * dim));
            for (int s = 0; s < 2; s++) {
                memcpy (ctx9 + s * 9 * dim, xx + s * L * dim, sizeof (float) * (size_t) (4 * dim));
                memcpy (ctx9 + (s * 9 + 4) * dim, alt + s * 5 * dim, sizeof (float) * (size_t) (5 * dim));
            }
            vdgx_rope_t rp;
            s_rope1d (b, &rp, 4, 5, r.D, r.layout);
            float *y = s_forward (b, &a, alt, alt, 2, 5, 5, r.rope? &rp: NULL, NULL, &causal, cache);
            vdgx_rope_release (b, &rp);
            for (int s = 0; s < 2; s++) {
                double full [9 * 24];
                s_reference (&r, ctx9 + s * 9 * dim, ctx9 + s * 9 * dim, 9, 9, &causal, NULL, full);
                e = vdgx_test_err (y + s * 5 * dim, full + 4 * dim, (size_t) (5 * dim));
                if (verbose)
                    printf ("  truncated + appended, sequence %d: %.3g\n", s, e);
                assert (e < 1e-5);
            }
            free (y);
            //  Errors: over capacity, truncating beyond the length.
            vdgx_tensor_t big;
            assert (vdgx_nn_alloc (b, &big, VDGX_DTYPE_F32, 2, 8, r.G, r.D) == 0);
            assert (vdgx_kvcache_append (cache, &big, &big) == -1);
            assert (strstr (vdgx_backend_error (b), "capacity"));
            assert (vdgx_kvcache_truncate (cache, 10) == -1 && vdgx_kvcache_len (cache) == 9);
            vdgx_nn_free (b, &big);
            vdgx_kvcache_destroy (&cache);
            assert (!cache);
            free (xx); free (got); free (chunk); free (alt); free (ctx9);
        }
        //  Dropping the oldest rows: a cache of rows 0..8 with 3, then 4 more dropped attends
        //  bit for bit as a cache that was only ever given the rows kept (batch 2, full mask;
        //  batch 1 over a span). The 4 of 6 case moves a piece shorter than the drop.
        {
            const int64_t rows = 9, kvn = 2 * rows * GD;
            float *kh = s_randv ((size_t) kvn, 1.0f), *vh = s_randv ((size_t) kvn, 1.0f);
            float *qh = s_randv ((size_t) (2 * 2 * HD), 1.0f);
            vdgx_tensor_t k, v, q, o1, o2;
            const int64_t sk [4] = { 2, rows, r.G, r.D }, sq [4] = { 2, 2, r.H, r.D };
            assert (vdgx_nn_upload (b, &k, VDGX_DTYPE_F32, 4, sk, kh) == 0);
            assert (vdgx_nn_upload (b, &v, VDGX_DTYPE_F32, 4, sk, vh) == 0);
            assert (vdgx_nn_upload (b, &q, VDGX_DTYPE_F32, 4, sq, qh) == 0);
            assert (vdgx_nn_alloc (b, &o1, VDGX_DTYPE_F32, 2, 2, r.H, r.D) == 0);
            assert (vdgx_nn_alloc (b, &o2, VDGX_DTYPE_F32, 2, 2, r.H, r.D) == 0);
            vdgx_kvcache_t *all = vdgx_kvcache_new (b, VDGX_DTYPE_F32, 2, rows, r.G, r.D, &err);
            assert (all && vdgx_kvcache_append (all, &k, &v) == 0);
            vdgx_attn_spec_t full = { .kind = VDGX_ATTN_FULL };
            float *g1 = malloc (sizeof (float) * (size_t) (4 * HD)), *g2 = malloc (sizeof (float) * (size_t) (4 * HD));
            const int64_t drops [2] = { 3, 4 };
            int64_t first = 0;
            for (int di = 0; di < 2; di++) {
                assert (vdgx_kvcache_drop_front (all, drops [di]) == 0);
                first += drops [di];
                int64_t kept = rows - first;
                assert (vdgx_kvcache_len (all) == kept && vdgx_kvcache_capacity (all) == rows);
                vdgx_kvcache_t *fresh = vdgx_kvcache_new (b, VDGX_DTYPE_F32, 2, kept, r.G, r.D, &err);
                assert (fresh);
                float *kk = malloc (sizeof (float) * (size_t) (2 * kept * GD));
                float *vv = malloc (sizeof (float) * (size_t) (2 * kept * GD));
                for (int64_t s = 0; s < 2; s++) {
                    memcpy (kk + s * kept * GD, kh + (s * rows + first) * GD, sizeof (float) * (size_t) (kept * GD));
                    memcpy (vv + s * kept * GD, vh + (s * rows + first) * GD, sizeof (float) * (size_t) (kept * GD));
                }
                vdgx_tensor_t k2, v2;
                const int64_t s2 [4] = { 2, kept, r.G, r.D };
                assert (vdgx_nn_upload (b, &k2, VDGX_DTYPE_F32, 4, s2, kk) == 0);
                assert (vdgx_nn_upload (b, &v2, VDGX_DTYPE_F32, 4, s2, vv) == 0);
                assert (vdgx_kvcache_append (fresh, &k2, &v2) == 0);
                assert (vdgx_kvcache_attend (all, &o1, &q, &full, 0.3f) == 0);
                assert (vdgx_kvcache_attend (fresh, &o2, &q, &full, 0.3f) == 0);
                assert (vdgx_tensor_to_f32 (b, &o1, g1) == 0 && vdgx_tensor_to_f32 (b, &o2, g2) == 0);
                assert (memcmp (g1, g2, sizeof (float) * (size_t) (4 * HD)) == 0);
                vdgx_nn_free (b, &k2);
                vdgx_nn_free (b, &v2);
                vdgx_kvcache_destroy (&fresh);
                free (kk);
                free (vv);
            }
            //  Batch 1: a span of the rows kept, before and after dropping the rows before it.
            vdgx_kvcache_t *one = vdgx_kvcache_new (b, VDGX_DTYPE_F32, 1, rows, r.G, r.D, &err);
            vdgx_tensor_t k1 = vdgx_nn_rows (&k, 0, 1), v1 = vdgx_nn_rows (&v, 0, 1);
            vdgx_tensor_t q1 = vdgx_nn_rows (&q, 0, 1), o11 = vdgx_nn_rows (&o1, 0, 1), o21 = vdgx_nn_rows (&o2, 0, 1);
            assert (one && vdgx_kvcache_append (one, &k1, &v1) == 0);
            assert (vdgx_kvcache_attend_span (one, &o11, &q1, 5, 3, 0.3f) == 0);
            assert (vdgx_kvcache_drop_front (one, 5) == 0 && vdgx_kvcache_len (one) == 4);
            assert (vdgx_kvcache_attend_span (one, &o21, &q1, 0, 3, 0.3f) == 0);
            assert (vdgx_tensor_to_f32 (b, &o1, g1) == 0 && vdgx_tensor_to_f32 (b, &o2, g2) == 0);
            assert (memcmp (g1, g2, sizeof (float) * (size_t) (2 * HD)) == 0);
            //  Errors: dropping more rows than there are.
            assert (vdgx_kvcache_drop_front (one, 5) == -1 && strstr (vdgx_backend_error (b), "drop"));
            assert (vdgx_kvcache_len (one) == 4 && vdgx_kvcache_drop_front (one, 0) == 0);
            if (verbose)
                printf ("  kv cache rows dropped (3, 4; batch 2 and 1): identical\n");
            vdgx_kvcache_destroy (&one);
            vdgx_kvcache_destroy (&all);
            vdgx_nn_free (b, &k); vdgx_nn_free (b, &v); vdgx_nn_free (b, &q);
            vdgx_nn_free (b, &o1); vdgx_nn_free (b, &o2);
            free (kh); free (vh); free (qh); free (g1); free (g2);
        }
        vdgx_rope_release (b, &rope);
        vdgx_attn_release (b, &a);
        free (x);
        free (want);
        free (r.wq); free (r.wk); free (r.wv); free (r.wo); free (r.nq); free (r.nk);
    }
    //  Per-head gates: o [B,L,H,D] *= 2 sigmoid (logits [B,L,H]).
    {
        const int64_t B = 2, L = 3, H = 4, D = 6, n = B * L * H * D;
        float *o = s_randv ((size_t) n, 1.0f), *lg = s_randv ((size_t) (B * L * H), 3.0f);
        double *want = malloc (sizeof (double) * (size_t) n);
        for (int64_t i = 0; i < n; i++)
            want [i] = o [i] * 2.0 / (1.0 + exp (-(double) lg [i / D]));
        vdgx_tensor_t ot, lt;
        const int64_t so [4] = { B, L, H, D }, sl [3] = { B, L, H };
        assert (vdgx_nn_upload (b, &ot, VDGX_DTYPE_F32, 4, so, o) == 0);
        assert (vdgx_nn_upload (b, &lt, VDGX_DTYPE_F32, 3, sl, lg) == 0);
        assert (vdgx_attn_head_gate (b, &ot, &lt, 2.0f) == 0);
        float *got = vdgx_test_download (b, &ot);
        double e = vdgx_test_err (got, want, (size_t) n);
        if (verbose)
            printf ("  head gate: %.3g\n", e);
        assert (e < 1e-6);
        vdgx_tensor_t o6 = vdgx_nn_view2 (&ot, B * L * H * 2, D / 2);
        assert (vdgx_attn_head_gate (b, &o6, &lt, 2.0f) == -1);
        free (o); free (lg); free (want); free (got);
        vdgx_nn_free (b, &ot);
        vdgx_nn_free (b, &lt);
    }
    free (err);
    vdgx_test_end (&b);
}
