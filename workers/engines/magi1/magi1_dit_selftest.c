/*  magi1_dit_selftest.c - magi1_dit_test on the tiny 4.5B-style reference weights
    (tests/data/reference/magi1/weights_dit_4.5B.safetensors under $VDGX_SOURCE_DIR):
    - FP8 *_quant checkpoints: the blocks' linears written as the official
      PerTensor/PerChannelQuantizedFp8Linear tensors (e4m3 weight (1, n, k), weight_scale,
      input_scale, smooth_scale) give the forward of the dequantized fp32 checkpoint; with
      uniform input scales and precision fp8 the e4m3 values are used as they are;
    - a malformed scale is refused with the tensor named;
    - the KV cache gives the numbers of recomputing the context: eight chunks in one forward
      (block-causal kv ranges of a 2-chunk window) against chunk by chunk through a cache of
      every chunk and through a 2-chunk cache that evicts the rows no later chunk reads
      (bit for bit the first's numbers); calls reaching evicted rows are refused.
    (The forwards themselves are pinned by `vdgx-refcheck magi1 DIR --part dit`.)
*/
#include "magi1_dit.h"
#include "vdgx_nn_testing.h"
#include "vdgx_quant.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_per_tensor [] = { "self_attention.linear_qkv.q", "self_attention.linear_qkv.k",
                                       "self_attention.linear_qkv.v", "self_attention.linear_qkv.qx",
                                       "mlp.linear_fc1" };
static const char *s_per_channel [] = { "self_attention.linear_proj", "mlp.linear_fc2" };

//  Which quantized layer (per-tensor 0, per-channel 1) a weight name is, or -1.
static int
s_quant_kind (const char *name, char *layer, size_t size)
{
    const char *dot = strrchr (name, '.');
    if (strncmp (name, "videodit_blocks.layers.", 23) || !dot || strcmp (dot, ".weight"))
        return -1;
    snprintf (layer, size, "%.*s", (int) (dot - name), name);
    const char *rest = strchr (name + 23, '.') + 1;
    for (size_t i = 0; i < 5; i++)
        if (strncmp (rest, s_per_tensor [i], strlen (s_per_tensor [i])) == 0 && rest [strlen (s_per_tensor [i])] == '.')
            return 0;
    for (size_t i = 0; i < 2; i++)
        if (strncmp (rest, s_per_channel [i], strlen (s_per_channel [i])) == 0 && rest [strlen (s_per_channel [i])] == '.')
            return 1;
    return -1;
}

typedef struct {
    vdgx_ckpt_tensor_t *t;
    size_t n, cap;
    void **bufs;
    size_t nb;
} s_out_t;

static void *
s_keep (s_out_t *o, size_t bytes)
{
    o->bufs = realloc (o->bufs, (o->nb + 1) * sizeof (void *));
    assert (o->bufs);
    o->bufs [o->nb] = calloc (1, bytes);
    assert (o->bufs [o->nb]);
    return o->bufs [o->nb++];
}

static void
s_add (s_out_t *o, const char *name, vdgx_dtype_t dtype, int ndim, const int64_t *shape,
       const void *data, size_t nbytes)
{
    if (o->n == o->cap) {
        o->cap = o->cap? 2 * o->cap: 64;
        o->t = realloc (o->t, o->cap * sizeof (vdgx_ckpt_tensor_t));
        assert (o->t);
    }
    vdgx_ckpt_tensor_t *t = &o->t [o->n++];
    memset (t, 0, sizeof (*t));
    char *nm = s_keep (o, strlen (name) + 1);
    strcpy (nm, name);
    t->name = nm;
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy (t->shape, shape, (size_t) ndim * sizeof (int64_t));
    t->data = data;
    t->nbytes = nbytes;
}

//  Writes the quantized checkpoint (quant) and its dequantized fp32 twin (plain) from the tiny
//  weights. uniform: one input factor per layer (the e4m3 values can then be kept).
static void
s_write_pair (vdgx_ckpt_t *src, const char *quant, const char *plain, bool uniform, uint64_t seed)
{
    s_out_t q = { 0 }, p = { 0 };
    char *err = NULL;
    for (size_t i = 0; i < vdgx_ckpt_count (src); i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (src, i);
        char layer [200];
        int kind = s_quant_kind (t->name, layer, sizeof (layer));
        if (kind < 0 && strstr (t->name, "linear_kv_xattn.weight")) {
            //  Block linears that stay unquantized are loaded in the asked format too: give
            //  both files values that FP8 per channel holds exactly, so that an fp8 load
            //  differs from the fp32 one only in the *_quant tensors.
            int64_t n = t->shape [0], k = t->shape [1];
            float *w = malloc ((size_t) (n * k) * sizeof (float));
            float *deq = s_keep (&q, (size_t) (n * k) * sizeof (float));
            vdgx_weight_t host;
            assert (w && vdgx_ckpt_read_f32 (t, w, &err) == 0);
            assert (vdgx_weight_quantize (&host, VDGX_WFMT_FP8_E4M3, w, n, k, true, &err) == 0);
            vdgx_weight_dequant (&host, deq);
            vdgx_weight_host_free (&host);
            free (w);
            s_add (&q, t->name, VDGX_DTYPE_F32, 2, t->shape, deq, (size_t) (n * k) * 4);
            s_add (&p, t->name, VDGX_DTYPE_F32, 2, t->shape, deq, (size_t) (n * k) * 4);
            continue;
        }
        if (kind < 0) {
            s_add (&q, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes);
            s_add (&p, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes);
            continue;
        }
        int64_t n = t->shape [0], k = t->shape [1];
        float *w = malloc ((size_t) (n * k) * sizeof (float));
        assert (w && vdgx_ckpt_read_f32 (t, w, &err) == 0);
        //  d: input_scale (per-tensor) or smooth_scale (per-channel); c = input_scale[0].
        float *d = s_keep (&q, (size_t) k * sizeof (float)), *c = s_keep (&q, sizeof (float));
        for (int64_t j = 0; j < k; j++)
            d [j] = uniform? 0.75f: 0.5f + (float) (vdgx_splitmix64 (&seed) % 1000) / 666.0f;
        *c = kind == 0? d [0]: 0.9f;
        //  The official layer computes x / d -> e4m3 . W8^T * ws * c: W8 = quant(W * d / c).
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < k; j++)
                w [r * k + j] *= d [j] / *c;
        vdgx_weight_t host;
        assert (vdgx_weight_quantize (&host, VDGX_WFMT_FP8_E4M3, w, n, k, false, &err) == 0);
        uint8_t *e4m3 = s_keep (&q, (size_t) (n * k));
        float *ws = s_keep (&q, sizeof (float));
        memcpy (e4m3, host.data, (size_t) (n * k));
        *ws = ((float *) host.scales) [0];
        float *deq = s_keep (&p, (size_t) (n * k) * sizeof (float));
        vdgx_weight_dequant (&host, deq);
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < k; j++)
                deq [r * k + j] *= *c / d [j];
        vdgx_weight_host_free (&host);
        free (w);
        char name [240];
        const int64_t w3 [3] = { 1, n, k }, one [1] = { 1 }, kk [1] = { k }, k2 [2] = { 1, k };
        s_add (&q, t->name, VDGX_DTYPE_F8_E4M3, 3, w3, e4m3, (size_t) (n * k));
        snprintf (name, sizeof (name), "%s.weight_scale", layer);
        s_add (&q, name, VDGX_DTYPE_F32, 1, one, ws, 4);
        snprintf (name, sizeof (name), "%s.input_scale", layer);
        if (kind == 0)
            s_add (&q, name, VDGX_DTYPE_F32, 1, kk, d, (size_t) k * 4);
        else {
            s_add (&q, name, VDGX_DTYPE_F32, 1, one, c, 4);
            snprintf (name, sizeof (name), "%s.smooth_scale", layer);
            s_add (&q, name, VDGX_DTYPE_F32, 2, k2, d, (size_t) k * 4);
        }
        const int64_t w2 [2] = { n, k };
        s_add (&p, t->name, VDGX_DTYPE_F32, 2, w2, deq, (size_t) (n * k) * 4);
    }
    assert (vdgx_safetensors_write (quant, q.t, q.n, &err) == 0);
    assert (vdgx_safetensors_write (plain, p.t, p.n, &err) == 0);
    for (size_t i = 0; i < q.nb; i++)
        free (q.bufs [i]);
    for (size_t i = 0; i < p.nb; i++)
        free (p.bufs [i]);
    free (q.bufs); free (p.bufs); free (q.t); free (p.t);
    free (err);
}

//  One chunk's forward of the model at path in precision.
static float *
s_forward (vdgx_backend_t *b, const char *path, const char *precision, const float *x,
           const float *y, const float *mask, int64_t T, int64_t H, int64_t W)
{
    char *err = NULL;
    magi1_dit_load_opts_t opts = { .precision = precision };
    magi1_dit_t *dit = magi1_dit_open (b, path, &opts, &err);
    if (!dit)
        fprintf (stderr, "magi1_dit_test: %s: %s\n", path, err? err: "?");
    assert (dit);
    float t = 0.4f;
    magi1_dit_call_t call = { .T = T, .H = H, .W = W, .chunks = 1, .t = &t, .y = y, .mask = mask };
    float *out = malloc (sizeof (float) * (size_t) (16 * T * H * W));
    assert (out && magi1_dit_forward (dit, NULL, x, &call, out, &err) == 0);
    magi1_dit_destroy (&dit);
    free (err);
    return out;
}

void
magi1_dit_test (bool verbose)
{
    vdgx_backend_t *b = vdgx_test_begin ("magi1_dit", verbose);
    //  The FP8 checks compare weight handling, not rounding: the CPU's packed products
    //  keep x in f32 (hi + lo bf16 parts) instead of rounding it to bf16 (the default).
    setenv ("VDGX_CPU_BF16_ACT", "0", 1);
    const char *srcdir = getenv ("VDGX_SOURCE_DIR");
    assert (srcdir && "VDGX_SOURCE_DIR must name the source tree (ctest sets it)");
    char path [600], dir [] = "/tmp/magi1-dit-XXXXXX", quant [640], plain [640];
    snprintf (path, sizeof (path), "%s/tests/data/reference/magi1/weights_dit_4.5B.safetensors", srcdir);
    assert (mkdtemp (dir));
    snprintf (quant, sizeof (quant), "%s/quant.safetensors", dir);
    snprintf (plain, sizeof (plain), "%s/plain.safetensors", dir);
    char *err = NULL;
    vdgx_ckpt_t *src = vdgx_ckpt_open (path, &err);
    assert (src);

    const int64_t T = 2, H = 4, W = 4, len = 800, dim = 32;
    uint64_t rs = 11;
    float *x = vdgx_test_randv (&rs, (size_t) (16 * T * H * W), 1.0f);
    float *y = vdgx_test_randv (&rs, (size_t) (3 * len * dim), 1.0f);
    float *mask = calloc ((size_t) (3 * len), sizeof (float));
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 9 + 3 * c; i++)
            mask [c * len + i] = 1;
    //  Per-input scales that differ: the fp32 load of both checkpoints agrees.
    for (int uniform = 0; uniform < 2; uniform++) {
        s_write_pair (src, quant, plain, uniform, 3 + (uint64_t) uniform);
        float *want = s_forward (b, plain, "fp32", x, y, mask, T, H, W);
        float *got = s_forward (b, quant, "fp32", x, y, mask, T, H, W);
        double e = vdgx_test_errf (got, want, (size_t) (16 * T * H * W));
        if (verbose)
            printf ("quant (%s scales) fp32 err %.2e ", uniform? "uniform": "varied", e), fflush (stdout);
        assert (e < 1e-5);
        free (got);
        if (uniform) {
            //  fp8 keeps the e4m3 values (one scale): the same weights, no second rounding
            //  (what remains is the CPU FP8 product's bf16 split of x, ~1e-5).
            got = s_forward (b, quant, "fp8", x, y, mask, T, H, W);
            e = vdgx_test_errf (got, want, (size_t) (16 * T * H * W));
            //  The plain checkpoint requantized to fp8 per channel rounds again.
            float *requant = s_forward (b, plain, "fp8", x, y, mask, T, H, W);
            double e2 = vdgx_test_errf (requant, want, (size_t) (16 * T * H * W));
            if (verbose)
                printf ("fp8 as is %.2e, requantized %.2e ", e, e2), fflush (stdout);
            assert (e < 1e-4 && e2 > 10 * e);
            free (got);
            free (requant);
        }
        free (want);
    }
    //  A malformed scale names its tensor.
    {
        s_out_t o = { 0 };
        vdgx_ckpt_destroy (&src);
        assert ((src = vdgx_ckpt_open (quant, &err)));
        const char *bad = "videodit_blocks.layers.1.mlp.linear_fc2.smooth_scale";
        for (size_t i = 0; i < vdgx_ckpt_count (src); i++) {
            const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (src, i);
            if (strcmp (t->name, bad) == 0) {
                const int64_t two [2] = { 1, 2 };
                s_add (&o, t->name, t->dtype, 2, two, t->data, 8);
            }
            else
                s_add (&o, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes);
        }
        assert (vdgx_safetensors_write (plain, o.t, o.n, &err) == 0);
        magi1_dit_load_opts_t opts = { .precision = "fp32" };
        magi1_dit_t *dit = magi1_dit_open (b, plain, &opts, &err);
        assert (!dit && err && strstr (err, bad));
        if (verbose)
            printf ("\n  refused: %s\n  ", err);
        for (size_t i = 0; i < o.nb; i++)
            free (o.bufs [i]);
        free (o.bufs);
        free (o.t);
        vdgx_ckpt_destroy (&src);
        assert ((src = vdgx_ckpt_open (path, &err)));
    }

    //  KV cache == recomputed context, with eviction: 8 chunks with a 2-chunk window (kv
    //  ranges [c - 1, c + 1) in chunks, chunk 0 [0, 1)) in one forward, then chunk by chunk,
    //  each writing its rows for the next, through (a) a cache of every chunk and (b) a
    //  cache of 2 chunks' rows that evicts the rows before c - 1 before chunk c (6 times).
    //  (b) must give (a)'s numbers bit for bit, both the recomputed ones within 1e-5.
    {
        magi1_dit_load_opts_t opts = { .precision = "fp32" };
        magi1_dit_t *dit = magi1_dit_load (b, src, &opts, &err);
        assert (dit);
        const int N = 8;
        const int64_t F = 2, plane = H * W, clip = F * (H / 2) * (W / 2);
        float *xn = vdgx_test_randv (&rs, (size_t) (16 * N * F * plane), 1.0f);
        float *yn = vdgx_test_randv (&rs, (size_t) (N * len * dim), 1.0f);
        float *mn = calloc ((size_t) (N * len), sizeof (float));
        float *full = malloc (sizeof (float) * (size_t) (16 * N * F * plane));
        float ts [8];
        int64_t ranges [16];
        for (int c = 0; c < N; c++) {
            ts [c] = 0.95f - 0.1f * (float) c;
            ranges [2 * c] = (c > 0? c - 1: 0) * clip;
            ranges [2 * c + 1] = (c + 1) * clip;
            for (int i = 0; i < 5 + c; i++)
                mn [c * len + i] = 1;
        }
        magi1_dit_call_t all = { .T = N * F, .H = H, .W = W, .chunks = N, .t = ts, .y = yn,
                                 .mask = mn, .kv_range = ranges };
        assert (magi1_dit_forward (dit, NULL, xn, &all, full, &err) == 0);
        magi1_dit_cache_t *every = magi1_dit_cache_new (dit, N * clip, &err);
        magi1_dit_cache_t *ring = magi1_dit_cache_new (dit, 2 * clip, &err);
        assert (every && ring && magi1_dit_cache_capacity (ring) == 2 * clip);
        float *xc = malloc (sizeof (float) * (size_t) (16 * F * plane));
        float *oa = malloc (sizeof (float) * (size_t) (16 * F * plane));
        float *ob = malloc (sizeof (float) * (size_t) (16 * F * plane));
        double e = 0;
        int evictions = 0;
        for (int c = 0; c < N; c++) {
            for (int64_t ch = 0; ch < 16; ch++)
                memcpy (xc + ch * F * plane, xn + (ch * N + c) * F * plane, sizeof (float) * (size_t) (F * plane));
            const int64_t r [2] = { ranges [2 * c], ranges [2 * c + 1] };
            magi1_dit_call_t one = {
                .T = F, .H = H, .W = W, .chunks = 1, .t = ts + c, .y = yn + (size_t) c * len * dim,
                .mask = mn + c * len, .frame_offset = c * F, .cache_rows = c * clip, .kv_range = r,
                .write_rows = c < N - 1? clip: 0,
            };
            assert (magi1_dit_forward (dit, every, xc, &one, oa, &err) == 0);
            if (ranges [2 * c] > magi1_dit_cache_first_row (ring)) {
                assert (magi1_dit_cache_evict (ring, ranges [2 * c], &err) == 0);
                evictions++;
            }
            assert (magi1_dit_cache_first_row (ring) == ranges [2 * c]);
            assert (magi1_dit_forward (dit, ring, xc, &one, ob, &err) == 0);
            assert (memcmp (oa, ob, sizeof (float) * (size_t) (16 * F * plane)) == 0);
            for (int64_t ch = 0; ch < 16; ch++)
                for (int64_t i = 0; i < F * plane; i++)
                    e = fmax (e, fabs (oa [ch * F * plane + i] - full [(ch * N + c) * F * plane + i]));
        }
        if (verbose)
            printf ("kv cache vs recompute %.2e over %d chunks (2-chunk cache, %d evictions: "
                    "identical) ", e, N, evictions);
        assert (e < 1e-5 && evictions == N - 2);
        //  Refused: a kv range or cached rows before the first row kept; evicting rows that
        //  were never written; more keys than the storage holds.
        {
            const int64_t r [2] = { 5 * clip, 8 * clip };
            magi1_dit_call_t one = { .T = F, .H = H, .W = W, .chunks = 1, .t = ts, .y = yn, .mask = mn,
                                     .frame_offset = 7 * F, .cache_rows = 7 * clip, .kv_range = r };
            assert (magi1_dit_forward (dit, ring, xc, &one, ob, &err) == -1 && strstr (err, "evicted"));
            if (verbose)
                printf ("\n  refused: %s", err);
            one.kv_range = NULL;
            one.cache_rows = 5 * clip;
            one.frame_offset = 5 * F;
            assert (magi1_dit_forward (dit, ring, xc, &one, ob, &err) == -1 && strstr (err, "starts at row"));
            assert (magi1_dit_cache_evict (ring, 9 * clip, &err) == -1 && strstr (err, "cannot evict"));
            one.cache_rows = 7 * clip;
            one.frame_offset = 7 * F;
            one.T = 2 * F;
            one.chunks = 2;
            const float t2 [2] = { 0.5f, 0.5f };
            one.t = t2;
            assert (magi1_dit_forward (dit, ring, xn, &one, full, &err) == -1 && strstr (err, "exceed"));
            if (verbose)
                printf ("\n  refused: %s\n  ", err);
        }
        magi1_dit_cache_destroy (&every);
        magi1_dit_cache_destroy (&ring);
        assert (every == NULL && ring == NULL);
        free (xn); free (yn); free (mn); free (full); free (xc); free (oa); free (ob);
        magi1_dit_destroy (&dit);
    }
    vdgx_ckpt_destroy (&src);
    unlink (quant);
    unlink (plain);
    rmdir (dir);
    free (x); free (y); free (mask); free (err);
    vdgx_test_end (&b);
}
