/*  refcheck_magi1.c - MAGI-1's DiT against the official VideoDiTModel forwards of
    vectors_dit.safetensors (tiny 4.5B- and 24B-style weights): a1 one chunk, a2 a clean chunk
    that writes the KV cache then a chunk that reads it, a3 three chunks with block-causal kv
    ranges, a4 the 24B layout, a5 distill mode. Every stored intermediate is compared through
    the DiT's taps. Then the KV cache against recomputing the context (two chunks in one
    forward = chunk 0 writing the cache + chunk 1 reading it). The ViT VAE decoder
    (vectors_vae.safetensors: b1-b3 one pass with its intermediates, b4 the tiled decode) and
    the decoded chunks of the sampling loop (decode_chunk with the pipeline's tiling).
*/
#include "refcheck.h"
#include "magi1_dit.h"
#include "magi1_sample.h"
#include "magi1_vae.h"
#include "vdgx_wsrc.h"

#include <math.h>
#include <unistd.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_dit.safetensors"

//  The vectors' criterion (their README): max |d| <= tol * max(1, max |want|) per tensor,
//  i.e. atol scaled by the tensor's largest magnitude (the 24B-style output is divided by
//  x_rescale 0.1, which scales its rounding with it); rtol applies as usual.
static int
s_compare_in (vdgx_refcheck_t *rc, const char *file, const char *label, const float *got, size_t n)
{
    size_t wn = 0;
    float *want = vdgx_refcheck_load (rc, file, label, NULL, NULL, &wn);
    if (!want || wn != n) {
        printf ("  FAIL %s: stored tensor missing or of %zu elements, got %zu\n", label, wn, n);
        rc->checks++;
        rc->failures++;
        free (want);
        return -1;
    }
    double m = 1;
    for (size_t i = 0; i < n; i++)
        if (fabs (want [i]) > m)
            m = fabs (want [i]);
    double atol = rc->atol;
    rc->atol = atol * m;
    int rv = vdgx_refcheck_compare (rc, label, got, want, n);
    rc->atol = atol;
    free (want);
    return rv;
}

static int
s_compare (vdgx_refcheck_t *rc, const char *label, const float *got, size_t n)
{
    return s_compare_in (rc, S_VEC, label, got, n);
}

static int
s_compare_tensor (vdgx_refcheck_t *rc, const char *label, const vdgx_tensor_t *t)
{
    size_t n = (size_t) vdgx_tensor_numel (t);
    float *got = malloc (n * sizeof (float));
    int rv = -1;
    if (got && vdgx_tensor_to_f32 (rc->backend, t, got) == 0)
        rv = s_compare (rc, label, got, n);
    else {
        printf ("  FAIL %s: cannot download\n", label);
        rc->checks++;
        rc->failures++;
    }
    free (got);
    return rv;
}

typedef struct {
    vdgx_refcheck_t *rc;
    const char *prefix;         //  "a1", "a2.chunk0", ...
    bool kv_case;               //  a2.chunk0: compare the cache rows too
    float *v_last;              //  v of the current layer (for the cache rows)
    size_t v_n;
} s_tap_ctx_t;

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_tap_ctx_t *ctx = arg;
    vdgx_refcheck_t *rc = ctx->rc;
    char label [160];
    size_t n = (size_t) vdgx_tensor_numel (t);
    if (strcmp (name, "x_embedder") == 0) {
        //  Ours is token-major [L, hidden]; the stored Conv3d output is [1, hidden, T, H, W].
        int64_t D = t->shape [t->ndim - 1], L = (int64_t) n / D;
        float *tok = malloc (n * sizeof (float)), *chw = malloc (n * sizeof (float));
        if (tok && chw && vdgx_tensor_to_f32 (rc->backend, t, tok) == 0) {
            for (int64_t l = 0; l < L; l++)
                for (int64_t d = 0; d < D; d++)
                    chw [d * L + l] = tok [l * D + d];
            snprintf (label, sizeof (label), "%s.mid.x_embedder", ctx->prefix);
            s_compare (rc, label, chw, n);
        }
        free (tok);
        free (chw);
        return;
    }
    if (strstr (name, "linear_qkv.v") && ctx->kv_case) {
        free (ctx->v_last);
        ctx->v_last = malloc (n * sizeof (float));
        ctx->v_n = n;
        if (ctx->v_last && vdgx_tensor_to_f32 (rc->backend, t, ctx->v_last)) {
            free (ctx->v_last);
            ctx->v_last = NULL;
        }
    }
    if (strstr (name, "k_rope")) {
        if (!ctx->kv_case || !ctx->v_last || ctx->v_n != n)
            return;
        //  a2.kv_cache.layer_numberN [tokens, groups, 2 D] = [k after norm + rotary | v].
        int layer = atoi (name + strlen ("layers."));
        char stored [96];
        snprintf (stored, sizeof (stored), "a2.kv_cache.layer_number%d", layer);
        int64_t shape [VDGX_MAX_DIMS];
        int nd = 0;
        size_t sn = 0;
        float *want = vdgx_refcheck_load (rc, S_VEC, stored, shape, &nd, &sn);
        float *k = malloc (n * sizeof (float)), *got = malloc (2 * n * sizeof (float));
        if (want && k && got && nd == 3 && sn == 2 * n && vdgx_tensor_to_f32 (rc->backend, t, k) == 0) {
            int64_t D = shape [2] / 2, rows = (int64_t) n / D;
            for (int64_t r = 0; r < rows; r++) {
                memcpy (got + r * 2 * D, k + r * D, (size_t) D * sizeof (float));
                memcpy (got + r * 2 * D + D, ctx->v_last + r * D, (size_t) D * sizeof (float));
            }
            vdgx_refcheck_compare (rc, stored, got, want, sn);
        }
        else {
            printf ("  FAIL %s: cannot compare\n", stored);
            rc->checks++;
            rc->failures++;
        }
        free (want); free (k); free (got);
        return;
    }
    snprintf (label, sizeof (label), "%s.mid.%s", ctx->prefix, name);
    if (strcmp (name, "condition") == 0 || strcmp (name, "y_xattn_flat") == 0)
        snprintf (label, sizeof (label), "%s.%s", ctx->prefix, name);
    vdgx_ckpt_t *f = vdgx_refcheck_file (rc, S_VEC);
    if (f && vdgx_ckpt_find (f, label))
        s_compare_tensor (rc, label, t);
}

static magi1_dit_t *
s_load (vdgx_refcheck_t *rc, const char *file)
{
    vdgx_ckpt_t *ckpt = vdgx_refcheck_file (rc, file);
    if (!ckpt)
        return NULL;
    magi1_dit_load_opts_t opts = { .precision = rc->gpu? "bf16": "fp32" };
    char *err = NULL;
    magi1_dit_t *dit = magi1_dit_load (rc->backend, ckpt, &opts, &err);
    if (!dit) {
        fprintf (stderr, "refcheck magi1: %s: %s\n", file, err? err: "cannot load");
        free (err);
        return NULL;
    }
    const magi1_dit_config_t *c = magi1_dit_config (dit);
    printf ("  %s: layers %d hidden %lld heads %lld/%lld head_dim %lld ffn %lld %s in %lld x_rescale %g\n",
            file, c->num_layers, (long long) c->hidden, (long long) c->heads, (long long) c->groups,
            (long long) c->head_dim, (long long) c->ffn, c->gated? "SwiGLU": "GELU",
            (long long) c->in_channels, c->x_rescale);
    return dit;
}

static json_t *
s_case (vdgx_refcheck_t *rc, const char *name)
{
    return json_object_get (json_object_get (rc->manifest, "dit_cases"), name);
}

//  Runs one stored case through the DiT and compares rope, intermediates and the output.
static int
s_run_case (vdgx_refcheck_t *rc, magi1_dit_t *dit, magi1_dit_cache_t *cache, const char *name,
            const char *inputs, bool write_cache)
{
    json_t *cs = s_case (rc, name);
    json_t *kw = json_object_get (cs, "kwargs"), *meta = json_object_get (cs, "meta");
    if (!cs || !kw || !meta) {
        fprintf (stderr, "refcheck magi1: manifest lacks dit_cases.%s\n", name);
        return -1;
    }
    const magi1_dit_config_t *c = magi1_dit_config (dit);
    char key [128];
    int64_t xs [VDGX_MAX_DIMS];
    int xn = 0;
    size_t nx = 0, nt = 0, nm = 0, nk = 0, ny = 0;
    snprintf (key, sizeof (key), "%s.in.x", inputs);
    float *x = vdgx_refcheck_load (rc, S_VEC, key, xs, &xn, &nx);
    snprintf (key, sizeof (key), "%s.in.t", inputs);
    float *t = vdgx_refcheck_load (rc, S_VEC, key, NULL, NULL, &nt);
    snprintf (key, sizeof (key), "%s.in.xattn_mask", inputs);
    float *mask = vdgx_refcheck_load (rc, S_VEC, key, NULL, NULL, &nm);
    snprintf (key, sizeof (key), "%s.in.kv_range", inputs);
    int64_t *kvr = vdgx_refcheck_load_i64 (rc, S_VEC, key, NULL, NULL, &nk);
    snprintf (key, sizeof (key), "%s.in.y", inputs);
    vdgx_ckpt_t *f = vdgx_refcheck_file (rc, S_VEC);
    float *y = NULL;
    if (f && vdgx_ckpt_find (f, key))
        y = vdgx_refcheck_load (rc, S_VEC, key, NULL, NULL, &ny);
    int result = -1;
    float *out = NULL, *rope = NULL;
    char *err = NULL;
    int R = (int) json_integer_value (json_object_get (kw, "denoising_range_num"));
    if (!x || !t || !mask || !kvr || xn != 5 || R < 1 || (int) nt != R || nk != (size_t) (2 * R)
    ||  nm != (size_t) (R * c->caption_len)) {
        fprintf (stderr, "refcheck magi1: %s inputs missing or of unexpected shapes\n", name);
        goto done;
    }
    if (!y) {
        //  The null caption (a2.chunk0): y_embedder.null_caption_embedding for every chunk.
        ny = (size_t) (R * c->caption_len * c->caption_dim);
        y = malloc (ny * sizeof (float));
        if (!y)
            goto done;
        for (int r = 0; r < R; r++)
            memcpy (y + (size_t) r * c->caption_len * c->caption_dim, magi1_dit_null_caption (dit),
                    (size_t) (c->caption_len * c->caption_dim) * sizeof (float));
    }
    int64_t sp = json_integer_value (json_object_get (meta, "slice_point"));
    int64_t clip = json_integer_value (json_object_get (meta, "clip_token_nums"));
    json_t *drop = json_array_get (json_object_get (cs, "caption_dropout_mask"), 0);
    json_t *dt = json_object_get (cs, "distill_dt");
    magi1_dit_call_t call = {
        .T = xs [2], .H = xs [3], .W = xs [4], .chunks = R, .t = t, .y = y, .mask = mask,
        .caption_dropout = json_is_true (drop),
        .frame_offset = sp * (xs [2] / R), .cache_rows = sp * clip, .kv_range = kvr,
        .write_rows = write_cache? xs [2] * (xs [3] / 2) * (xs [4] / 2): 0,
        .distill_dt = json_is_number (dt)? json_number_value (dt): 0,
    };
    size_t L = (size_t) (call.T * (call.H / 2) * (call.W / 2));
    rope = malloc (L * 6 * (size_t) c->bands * sizeof (float));
    out = malloc ((size_t) c->out_channels * call.T * call.H * call.W * sizeof (float));
    if (!rope || !out)
        goto done;
    magi1_dit_rope_table (dit, &call, rope);
    snprintf (key, sizeof (key), "%s.rope", name);
    s_compare (rc, key, rope, L * 6 * (size_t) c->bands);
    s_tap_ctx_t ctx = { .rc = rc, .prefix = name, .kv_case = write_cache };
    magi1_dit_set_tap (dit, s_tap, &ctx);
    int frc = magi1_dit_forward (dit, cache, x, &call, out, &err);
    magi1_dit_set_tap (dit, NULL, NULL);
    free (ctx.v_last);
    if (frc) {
        fprintf (stderr, "refcheck magi1: %s: %s\n", name, err? err: "forward failed");
        goto done;
    }
    snprintf (key, sizeof (key), "%s.out", name);
    s_compare (rc, key, out, (size_t) c->out_channels * call.T * call.H * call.W);
    result = 0;
done:
    free (err); free (x); free (t); free (mask); free (kvr); free (y); free (out); free (rope);
    return result;
}

//  Two chunks in one forward (kv ranges [0, clip), [0, 2 clip)) against chunk 0 writing the
//  cache and chunk 1 reading it, on the a3 inputs' first two chunks.
static int
s_cache_vs_recompute (vdgx_refcheck_t *rc, magi1_dit_t *dit)
{
    const magi1_dit_config_t *c = magi1_dit_config (dit);
    int64_t xs [VDGX_MAX_DIMS];
    int xn = 0;
    size_t nx = 0, nt = 0, nm = 0, ny = 0;
    float *x = vdgx_refcheck_load (rc, S_VEC, "a3.in.x", xs, &xn, &nx);
    float *t = vdgx_refcheck_load (rc, S_VEC, "a3.in.t", NULL, NULL, &nt);
    float *mask = vdgx_refcheck_load (rc, S_VEC, "a3.in.xattn_mask", NULL, NULL, &nm);
    float *y = vdgx_refcheck_load (rc, S_VEC, "a3.in.y", NULL, NULL, &ny);
    int result = -1;
    char *err = NULL;
    float *xa = NULL, *xb = NULL, *full = NULL, *part = NULL;
    magi1_dit_cache_t *cache = NULL;
    if (!x || !t || !mask || !y || xn != 5 || nt < 2 || xs [2] % 3) {
        fprintf (stderr, "refcheck magi1: a3 inputs missing\n");
        goto done;
    }
    int64_t C = xs [1], F = xs [2] / 3, H = xs [3], W = xs [4], plane = H * W;
    int64_t clip = F * (H / 2) * (W / 2);
    xa = malloc ((size_t) (C * 2 * F * plane) * sizeof (float));
    xb = malloc ((size_t) (C * F * plane) * sizeof (float));
    full = malloc ((size_t) (c->out_channels * 2 * F * plane) * sizeof (float));
    part = malloc ((size_t) (c->out_channels * 2 * F * plane) * sizeof (float));
    cache = magi1_dit_cache_new (dit, 2 * clip, &err);
    if (!xa || !xb || !full || !part || !cache)
        goto done;
    for (int64_t ch = 0; ch < C; ch++)
        memcpy (xa + ch * 2 * F * plane, x + ch * xs [2] * plane, (size_t) (2 * F * plane) * sizeof (float));
    int64_t ranges [4] = { 0, clip, 0, 2 * clip };
    magi1_dit_call_t two = {
        .T = 2 * F, .H = H, .W = W, .chunks = 2, .t = t, .y = y, .mask = mask, .kv_range = ranges,
    };
    if (magi1_dit_forward (dit, NULL, xa, &two, full, &err))
        goto done;
    //  Chunk 0 alone, writing its rows; chunk 1 after it, reading them.
    for (int64_t ch = 0; ch < C; ch++)
        memcpy (xb + ch * F * plane, x + ch * xs [2] * plane, (size_t) (F * plane) * sizeof (float));
    magi1_dit_call_t c0 = {
        .T = F, .H = H, .W = W, .chunks = 1, .t = t, .y = y, .mask = mask, .write_rows = clip,
    };
    float *o0 = malloc ((size_t) (c->out_channels * F * plane) * sizeof (float));
    float *o1 = malloc ((size_t) (c->out_channels * F * plane) * sizeof (float));
    int ok = o0 && o1 && magi1_dit_forward (dit, cache, xb, &c0, o0, &err) == 0;
    for (int64_t ch = 0; ok && ch < C; ch++)
        memcpy (xb + ch * F * plane, x + ch * xs [2] * plane + F * plane, (size_t) (F * plane) * sizeof (float));
    int64_t r1 [2] = { 0, 2 * clip };
    magi1_dit_call_t c1 = {
        .T = F, .H = H, .W = W, .chunks = 1, .t = t + 1, .y = y + c->caption_len * c->caption_dim,
        .mask = mask + c->caption_len, .frame_offset = F, .cache_rows = clip, .kv_range = r1,
    };
    ok = ok && magi1_dit_forward (dit, cache, xb, &c1, o1, &err) == 0;
    if (ok)
        for (int64_t ch = 0; ch < c->out_channels; ch++) {
            memcpy (part + ch * 2 * F * plane, o0 + ch * F * plane, (size_t) (F * plane) * sizeof (float));
            memcpy (part + ch * 2 * F * plane + F * plane, o1 + ch * F * plane, (size_t) (F * plane) * sizeof (float));
        }
    free (o0);
    free (o1);
    if (!ok)
        goto done;
    double atol = rc->atol, rtol = rc->rtol;
    rc->atol = rc->atol / 10;       //  same arithmetic up to summation order
    rc->rtol = rc->rtol / 10;
    vdgx_refcheck_compare (rc, "kv cache == recomputed context", part, full,
                           (size_t) (c->out_channels * 2 * F * plane));
    rc->atol = atol;
    rc->rtol = rtol;
    result = 0;
done:
    if (err)
        fprintf (stderr, "refcheck magi1: cache check: %s\n", err);
    free (err);
    magi1_dit_cache_destroy (&cache);
    free (x); free (t); free (mask); free (y); free (xa); free (xb); free (full); free (part);
    return result;
}

//  One check: err must be set and name `what`.
static void
s_expect_error (vdgx_refcheck_t *rc, const char *label, magi1_dit_t *dit, const char *err,
                const char *what)
{
    bool ok = !dit && err && strstr (err, what);
    printf ("  %-4s %s: %s\n", ok? "PASS": "FAIL", label, err? err: "(loaded)");
    rc->checks++;
    if (!ok)
        rc->failures++;
}

//  The official layout (<variant>/inference_weight/model.safetensors.index.json + 2 shards)
//  written from the tiny 4.5B weights: it loads and gives a1; a missing shard, a tensor of the
//  wrong shape and a truncated shard are refused with the file or tensor named.
static int
s_layout_check (vdgx_refcheck_t *rc)
{
    vdgx_ckpt_t *src = vdgx_refcheck_file (rc, "weights_dit_4.5B.safetensors");
    char tmpl [] = "/tmp/magi1-layout-XXXXXX";
    if (!src || !mkdtemp (tmpl))
        return -1;
    char dir [512], idx [600], sh [2][600];
    snprintf (dir, sizeof (dir), "%s/4.5B_base", tmpl);
    mkdir (dir, 0755);
    snprintf (dir, sizeof (dir), "%s/4.5B_base/inference_weight", tmpl);
    mkdir (dir, 0755);
    snprintf (idx, sizeof (idx), "%s/model.safetensors.index.json", dir);
    for (int i = 0; i < 2; i++)
        snprintf (sh [i], sizeof (sh [i]), "%s/model-0000%d-of-00002.safetensors", dir, i + 1);
    size_t n = vdgx_ckpt_count (src), half = n / 2;
    vdgx_ckpt_tensor_t *all = calloc (n, sizeof (vdgx_ckpt_tensor_t));
    int result = -1;
    char *err = NULL;
    FILE *f = NULL;
    if (!all)
        goto done;
    for (size_t i = 0; i < n; i++)
        all [i] = *vdgx_ckpt_at (src, i);
    if (vdgx_safetensors_write (sh [0], all, half, &err) || vdgx_safetensors_write (sh [1], all + half, n - half, &err))
        goto done;
    f = fopen (idx, "w");
    if (!f)
        goto done;
    fprintf (f, "{\"metadata\": {}, \"weight_map\": {");
    for (size_t i = 0; i < n; i++)
        fprintf (f, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i? ", ": "", all [i].name, i < half? 1: 2);
    fprintf (f, "}}\n");
    fclose (f);
    f = NULL;
    char variant [600];
    snprintf (variant, sizeof (variant), "%s/4.5B_base", tmpl);
    magi1_dit_load_opts_t opts = { .precision = rc->gpu? "bf16": "fp32" };
    magi1_dit_t *dit = magi1_dit_open (rc->backend, variant, &opts, &err);
    if (!dit) {
        printf ("  FAIL official layout %s: %s\n", variant, err? err: "cannot load");
        rc->checks++;
        rc->failures++;
        goto done;
    }
    printf ("  PASS official layout (<variant>/inference_weight/ index + 2 shards) loads\n");
    rc->checks++;
    int r = s_run_case (rc, dit, NULL, "a1", "a1", false);
    magi1_dit_destroy (&dit);
    if (r)
        goto done;
    //  A tensor of the wrong shape (the last one of shard 2, its dims swapped).
    vdgx_ckpt_tensor_t bad = all [n - 1];
    if (bad.ndim == 2) {
        int64_t d = bad.shape [0];
        bad.shape [0] = bad.shape [1];
        bad.shape [1] = d;
    }
    else
        bad.shape [0] = 1, bad.ndim = 1, bad.nbytes = vdgx_dtype_size (bad.dtype);
    all [n - 1] = bad;
    if (vdgx_safetensors_write (sh [1], all + half, n - half, &err))
        goto done;
    free (err);
    err = NULL;
    dit = magi1_dit_open (rc->backend, variant, &opts, &err);
    s_expect_error (rc, "wrong shape refused", dit, err, bad.name);
    magi1_dit_destroy (&dit);
    //  A truncated shard.
    free (err);
    err = NULL;
    if (truncate (sh [1], 64))
        goto done;
    dit = magi1_dit_open (rc->backend, variant, &opts, &err);
    s_expect_error (rc, "truncated shard refused", dit, err, "model-00002-of-00002");
    magi1_dit_destroy (&dit);
    //  A missing shard.
    free (err);
    err = NULL;
    unlink (sh [1]);
    dit = magi1_dit_open (rc->backend, variant, &opts, &err);
    s_expect_error (rc, "missing shard refused", dit, err, "model-00002-of-00002");
    magi1_dit_destroy (&dit);
    result = 0;
done:
    if (f)
        fclose (f);
    if (result && err)
        fprintf (stderr, "refcheck magi1 layout: %s\n", err);
    free (err);
    free (all);
    unlink (sh [0]);
    unlink (sh [1]);
    unlink (idx);
    rmdir (dir);
    snprintf (dir, sizeof (dir), "%s/4.5B_base", tmpl);
    rmdir (dir);
    rmdir (tmpl);
    return result;
}

int
vdgx_refcheck_magi1_dit (vdgx_refcheck_t *rc)
{
    int result = -1;
    magi1_dit_cache_t *cache = NULL;
    magi1_dit_t *dit = s_load (rc, "weights_dit_4.5B.safetensors");
    magi1_dit_t *big = dit? s_load (rc, "weights_dit_24B.safetensors"): NULL;
    char *err = NULL;
    if (!big)
        goto done;
    if (s_run_case (rc, dit, NULL, "a1", "a1", false)
    ||  s_run_case (rc, dit, NULL, "a3", "a3", false)
    ||  s_run_case (rc, big, NULL, "a4", "a1", false))
        goto done;
    //  a2: chunk 0 (clean) writes its K/V, chunk 1 attends to them.
    json_t *c1 = json_object_get (s_case (rc, "a2.chunk1"), "meta");
    int64_t cap = json_integer_value (json_object_get (c1, "max_seqlen_k"));
    if (!(cache = magi1_dit_cache_new (dit, cap > 0? cap: 1, &err))
    ||  s_run_case (rc, dit, cache, "a2.chunk0", "a2.chunk0", true)
    ||  s_run_case (rc, dit, cache, "a2.chunk1", "a2.chunk1", false))
        goto done;
    //  a5 (distill): the float32 sinusoid of distill_dt * 1000 = 32 000 rad is
    //  platform-dependent at ~1e-3 (the vectors' README): 30x the tolerance.
    double atol = rc->atol, rtol = rc->rtol;
    rc->atol *= 30;
    rc->rtol *= 30;
    int a5 = s_run_case (rc, dit, NULL, "a5", "a1", false);
    rc->atol = atol;
    rc->rtol = rtol;
    if (a5 || s_cache_vs_recompute (rc, dit) || s_layout_check (rc))
        goto done;
    result = 0;
done:
    if (err)
        fprintf (stderr, "refcheck magi1: %s\n", err);
    free (err);
    magi1_dit_cache_destroy (&cache);
    magi1_dit_destroy (&big);
    magi1_dit_destroy (&dit);
    return result;
}

//  ---------------------------------------------------------------------------------------
//  Sampling: the official chunk loop (2 chunks, 8 steps, window 4, cfg_number 3), closed
//  loop: every pass of every step, the velocity, the latent after each step, the chunks.

#define S_SAMP "vectors_sampling.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    const char *file;
    int64_t C;
} s_obs_t;

static void
s_observe (void *arg, int step, const char *what, const float *data, size_t n)
{
    s_obs_t *o = arg;
    char label [96];
    if (strcmp (what, "velocity") == 0 || strcmp (what, "x_after") == 0)
        snprintf (label, sizeof (label), "step%d.%s", step, what);
    else
        snprintf (label, sizeof (label), "step%d.%s.out", step, what);
    size_t wn = 0;
    float *want = strcmp (what, "velocity") == 0? vdgx_refcheck_load (o->rc, o->file, label, NULL, NULL, &wn): NULL;
    if (want && wn > n && n % (size_t) o->C == 0 && wn % (size_t) o->C == 0) {
        //  With the clean chunk prepended the stored velocity covers it too (then dropped):
        //  compare the denoising chunks, the trailing frames of every channel.
        size_t per = n / (size_t) o->C, wper = wn / (size_t) o->C;
        float *got = malloc (wn * sizeof (float));
        if (got) {
            memcpy (got, want, wn * sizeof (float));
            for (int64_t c = 0; c < o->C; c++)
                memcpy (got + c * wper + (wper - per), data + c * per, per * sizeof (float));
            double atol = o->rc->atol;
            double mx = 1;
            for (size_t i = 0; i < wn; i++)
                mx = fabs (want [i]) > mx? fabs (want [i]): mx;
            o->rc->atol = atol * mx;
            vdgx_refcheck_compare (o->rc, label, got, want, wn);
            o->rc->atol = atol;
            free (got);
        }
        free (want);
        return;
    }
    free (want);
    s_compare_in (o->rc, o->file, label, data, n);
}

static int
s_sampling (vdgx_refcheck_t *rc, const char *key, const char *file, int cfg_number)
{
    json_t *sm = json_object_get (rc->manifest, key);
    int steps = (int) json_integer_value (json_object_get (sm, "num_steps"));
    int chunks = (int) json_integer_value (json_object_get (sm, "chunk_num"));
    magi1_dit_t *dit = s_load (rc, "weights_dit_4.5B.safetensors");
    if (!dit || steps < 4 || chunks < 1) {
        magi1_dit_destroy (&dit);
        return -1;
    }
    const magi1_dit_config_t *c = magi1_dit_config (dit);
    int64_t xs [VDGX_MAX_DIMS];
    int xn = 0;
    size_t nx = 0, ne = 0, nm = 0, no = 0;
    float *x = vdgx_refcheck_load (rc, file, "noise", xs, &xn, &nx);
    float *emb = vdgx_refcheck_load (rc, S_SAMP, "in.caption_embs", NULL, NULL, &ne);
    int64_t *emask = vdgx_refcheck_load_i64 (rc, S_SAMP, "in.emb_masks", NULL, NULL, &nm);
    float *other = vdgx_refcheck_load (rc, S_SAMP, "special.other_tokens", NULL, NULL, &no);
    int64_t len = c->caption_len, dim = c->caption_dim;
    float *y = malloc ((size_t) (chunks * len * dim) * sizeof (float));
    float *m = malloc ((size_t) (chunks * len) * sizeof (float));
    float *pm = malloc ((size_t) len * sizeof (float));
    float *tgrid = malloc ((size_t) (steps + 1) * sizeof (float));
    float *ty = malloc ((size_t) (2 * chunks * len * dim) * sizeof (float));
    float *tm = malloc ((size_t) (2 * chunks * len) * sizeof (float));
    int result = -1;
    char *err = NULL;
    if (!x || !emb || !emask || !other || !y || !m || !pm || !tgrid || !ty || !tm || xn != 5
    ||  ne != (size_t) (len * dim) || nm != (size_t) len || xs [2] % chunks) {
        fprintf (stderr, "refcheck magi1 sampling: inputs missing or of unexpected shapes\n");
        goto done;
    }
    magi1_sched_t sched;
    magi1_sched_defaults (&sched, steps);
    sched.cfg_number = cfg_number;
    magi1_sched_t_grid (steps, tgrid);
    s_compare_in (rc, file, "sched.t", tgrid, (size_t) steps + 1);
    for (int64_t i = 0; i < len; i++)
        pm [i] = (float) emask [i];
    for (int i = 0; i < chunks; i++)
        magi1_caption_rows (other, emb, pm, len, dim, i, chunks, y + (size_t) i * len * dim,
                            m + (size_t) i * len);
    //  transport.y / emb_masks: [0] the caption rows, [1] the null caption (first 50 rows).
    memcpy (ty, y, (size_t) (chunks * len * dim) * sizeof (float));
    memset (tm, 0, (size_t) (2 * chunks * len) * sizeof (float));
    memcpy (tm, m, (size_t) (chunks * len) * sizeof (float));
    for (int i = 0; i < chunks; i++) {
        memcpy (ty + (size_t) (chunks + i) * len * dim, magi1_dit_null_caption (dit),
                (size_t) (len * dim) * sizeof (float));
        for (int r = 0; r < 50; r++)
            tm [(chunks + i) * len + r] = 1;
    }
    s_compare_in (rc, S_SAMP, "transport.y", ty, (size_t) (2 * chunks * len * dim));
    s_compare_in (rc, S_SAMP, "transport.emb_masks", tm, (size_t) (2 * chunks * len));
    s_obs_t obs = { .rc = rc, .file = file, .C = xs [1] };
    magi1_sample_args_t args = {
        .chunks = chunks, .C = xs [1], .F = xs [2] / chunks, .H = xs [3], .W = xs [4],
        .y = y, .mask = m, .observe = s_observe, .observe_ctx = &obs,
    };
    if (magi1_sample (dit, &sched, &args, x, &err)) {
        fprintf (stderr, "refcheck magi1 sampling: %s\n", err? err: "failed");
        goto done;
    }
    int64_t plane = xs [3] * xs [4], F = xs [2] / chunks;
    float *lat = malloc ((size_t) (xs [1] * F * plane) * sizeof (float));
    for (int i = 0; lat && i < chunks; i++) {
        for (int64_t ch = 0; ch < xs [1]; ch++)
            memcpy (lat + ch * F * plane, x + (ch * xs [2] + i * F) * plane, (size_t) (F * plane) * sizeof (float));
        char label [64];
        snprintf (label, sizeof (label), "chunk%d.latent", i);
        s_compare_in (rc, file, label, lat, (size_t) (xs [1] * F * plane));
    }
    free (lat);
    result = 0;
done:
    free (err); free (x); free (emb); free (emask); free (other); free (y); free (m); free (pm);
    free (tgrid); free (ty); free (tm);
    magi1_dit_destroy (&dit);
    return result;
}

int
vdgx_refcheck_magi1_sampling (vdgx_refcheck_t *rc)
{
    return s_sampling (rc, "sampling", S_SAMP, 3);
}

//  The distill loop (cfg_number 1, distill_dt, the nearly-clean copy blended 0.7 / 0.3). Its
//  caption inputs are the base loop's (same prompt and special tokens). Tolerance 10x: the
//  float32 distill sinusoid (the vectors' README: 1e-3 for the distill loop).
int
vdgx_refcheck_magi1_sampling_distill (vdgx_refcheck_t *rc)
{
    double atol = rc->atol, rtol = rc->rtol;
    rc->atol *= 10;
    rc->rtol *= 10;
    int r = s_sampling (rc, "sampling_distill", "vectors_sampling_distill.safetensors", 1);
    rc->atol = atol;
    rc->rtol = rtol;
    return r;
}

//  ---------------------------------------------------------------------------------------
//  The ViT VAE decoder.

#define S_VAE "vectors_vae.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    const char *prefix;         //  "b1"
} s_vae_tap_t;

static void
s_vae_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_vae_tap_t *ctx = arg;
    char label [160];
    snprintf (label, sizeof (label), "%s.mid.%s", ctx->prefix, name);
    vdgx_ckpt_t *f = vdgx_refcheck_file (ctx->rc, S_VAE);
    if (!f || !vdgx_ckpt_find (f, label))
        return;
    size_t n = (size_t) vdgx_tensor_numel (t);
    float *got = malloc (n * sizeof (float));
    if (got && vdgx_tensor_to_f32 (ctx->rc->backend, t, got) == 0)
        s_compare_in (ctx->rc, S_VAE, label, got, n);
    free (got);
}

//  uint8 frames [frames, 3, h, w] against ours (RGB interleaved [frames, h, w, 3]): equal, or
//  +-1 on a few values that sit on an integer boundary before truncation (the README).
static void
s_compare_u8 (vdgx_refcheck_t *rc, const char *file, const char *label, const uint8_t *rgb,
              int64_t frames, int64_t h, int64_t w)
{
    size_t n = 0;
    int64_t *want = vdgx_refcheck_load_i64 (rc, file, label, NULL, NULL, &n);
    size_t off1 = 0, bad = 0;
    if (want && n == (size_t) (frames * 3 * h * w))
        for (int64_t f = 0; f < frames; f++)
            for (int64_t c = 0; c < 3; c++)
                for (int64_t p = 0; p < h * w; p++) {
                    int64_t d = llabs (want [(f * 3 + c) * h * w + p] - (int64_t) rgb [(f * h * w + p) * 3 + c]);
                    off1 += d == 1;
                    bad += d > 1;
                }
    bool ok = want && n == (size_t) (frames * 3 * h * w) && bad == 0 && off1 * 1000 <= n;
    printf ("  %s %s: %zu values, %zu off by 1, %zu off by more\n", ok? "PASS": "FAIL", label, n, off1, bad);
    rc->checks++;
    if (!ok)
        rc->failures++;
    free (want);
}

//  The official VAE folder (config.json with the ddconfig + diffusion_pytorch_model.safetensors)
//  written from the tiny weights: it loads through magi1_vae_open and gives b1; a tensor of
//  the wrong shape, a missing tensor and a truncated file are refused with the tensor or file
//  named.
static int
s_vae_layout_check (vdgx_refcheck_t *rc, const char *cfg_text)
{
    vdgx_ckpt_t *src = vdgx_refcheck_file (rc, "weights_vae.safetensors");
    char tmpl [] = "/tmp/magi1-vae-XXXXXX";
    if (!src || !mkdtemp (tmpl))
        return -1;
    char conf [600], file [600];
    snprintf (conf, sizeof (conf), "%s/config.json", tmpl);
    snprintf (file, sizeof (file), "%s/diffusion_pytorch_model.safetensors", tmpl);
    size_t n = vdgx_ckpt_count (src);
    vdgx_ckpt_tensor_t *all = calloc (n, sizeof (vdgx_ckpt_tensor_t));
    int result = -1;
    char *err = NULL;
    float *z = NULL, *video = NULL;
    magi1_vae_t *vae = NULL;
    FILE *f = fopen (conf, "w");
    if (!all || !f)
        goto done;
    fprintf (f, "{\"_class_name\": \"ViTVAE\", \"ddconfig\": %s, \"model_type\": \"vit\"}\n", cfg_text);
    fclose (f);
    f = NULL;
    for (size_t i = 0; i < n; i++)
        all [i] = *vdgx_ckpt_at (src, i);
    if (vdgx_safetensors_write (file, all, n, &err))
        goto done;
    const char *precision = rc->gpu? "bf16": "fp32";
    vae = magi1_vae_open (rc->backend, tmpl, precision, &err);
    bool ok = vae != NULL;
    printf ("  %s official VAE folder (config.json + diffusion_pytorch_model.safetensors) loads%s%s\n",
            ok? "PASS": "FAIL", ok? "": ": ", ok? "": (err? err: "?"));
    rc->checks++;
    if (!ok) {
        rc->failures++;
        goto done;
    }
    int64_t zs [VDGX_MAX_DIMS];
    int zn = 0;
    size_t nz = 0;
    z = vdgx_refcheck_load (rc, S_VAE, "b1.in.z", zs, &zn, &nz);
    const magi1_vae_config_t *c = magi1_vae_config (vae);
    size_t nv = zn == 5? (size_t) (3 * magi1_vae_frames (vae, zs [2]) * zs [3] * c->patch_size * zs [4] * c->patch_size): 0;
    video = nv? malloc (nv * sizeof (float)): NULL;
    if (!z || !video || magi1_vae_decode_pass (vae, z, zs [2], zs [3], zs [4], video, &err))
        goto done;
    s_compare_in (rc, S_VAE, "b1.out", video, nv);
    magi1_vae_destroy (&vae);
    //  Wrong shape: the last decoder tensor with its dims reversed (or one element).
    size_t last = n;
    for (size_t i = 0; i < n; i++)
        if (strncmp (all [i].name, "decoder.", 8) == 0)
            last = i;
    if (last == n)
        goto done;
    vdgx_ckpt_tensor_t keep = all [last], bad = keep;
    if (bad.ndim >= 2) {
        int64_t d = bad.shape [0];
        bad.shape [0] = bad.shape [bad.ndim - 1];
        bad.shape [bad.ndim - 1] = d;
    }
    else
        bad.shape [0] = 1, bad.nbytes = vdgx_dtype_size (bad.dtype);
    if (bad.shape [0] == keep.shape [0])
        bad.shape [0] = 1, bad.ndim = 1, bad.nbytes = vdgx_dtype_size (bad.dtype);
    all [last] = bad;
    free (err);
    err = NULL;
    if (vdgx_safetensors_write (file, all, n, &err))
        goto done;
    vae = magi1_vae_open (rc->backend, tmpl, precision, &err);
    ok = !vae && err && strstr (err, keep.name);
    printf ("  %s wrong shape refused: %s\n", ok? "PASS": "FAIL", err? err: "(loaded)");
    rc->checks++, rc->failures += !ok;
    magi1_vae_destroy (&vae);
    //  Missing tensor: the same one left out.
    all [last] = all [n - 1];
    free (err);
    err = NULL;
    if (vdgx_safetensors_write (file, all, n - 1, &err))
        goto done;
    vae = magi1_vae_open (rc->backend, tmpl, precision, &err);
    ok = !vae && err && strstr (err, keep.name);
    printf ("  %s missing tensor refused: %s\n", ok? "PASS": "FAIL", err? err: "(loaded)");
    rc->checks++, rc->failures += !ok;
    magi1_vae_destroy (&vae);
    //  Truncated file.
    free (err);
    err = NULL;
    if (truncate (file, 100))
        goto done;
    vae = magi1_vae_open (rc->backend, tmpl, precision, &err);
    ok = !vae && err && strstr (err, "diffusion_pytorch_model.safetensors");
    printf ("  %s truncated file refused: %s\n", ok? "PASS": "FAIL", err? err: "(loaded)");
    rc->checks++, rc->failures += !ok;
    result = 0;
done:
    if (f)
        fclose (f);
    if (result && err)
        fprintf (stderr, "refcheck magi1 vae layout: %s\n", err);
    free (err);
    free (all);
    free (z);
    free (video);
    magi1_vae_destroy (&vae);
    unlink (conf);
    unlink (file);
    rmdir (tmpl);
    return result;
}

int
vdgx_refcheck_magi1_vae (vdgx_refcheck_t *rc)
{
    magi1_vae_config_t cfg;
    magi1_vae_config_default (&cfg);
    char *text = json_dumps (json_object_get (rc->manifest, "vae_ddconfig_tiny"), 0);
    char *err = NULL;
    vdgx_ckpt_t *ck = vdgx_refcheck_file (rc, "weights_vae.safetensors");
    vdgx_wsrc_t *src = ck? vdgx_wsrc_new (ck, NULL, "magi1 vae"): NULL;
    magi1_vae_t *vae = NULL;
    int result = -1;
    if (!text || !src || magi1_vae_config_parse (text, &cfg, &err)
    ||  !(vae = magi1_vae_load (rc->backend, src, &cfg, rc->gpu? "bf16": "fp32", &err))) {
        fprintf (stderr, "refcheck magi1 vae: %s\n", err? err: "cannot load the tiny VAE");
        goto done;
    }
    //  b1 (pos_embed resized), b2 (native grid), b3 (T == 1): one pass each.
    const char *cases [] = { "b1", "b2", "b3" };
    for (size_t i = 0; i < 3; i++) {
        char name [64];
        snprintf (name, sizeof (name), "%s.in.z", cases [i]);
        int64_t zs [VDGX_MAX_DIMS];
        int zn = 0;
        size_t nz = 0;
        float *z = vdgx_refcheck_load (rc, S_VAE, name, zs, &zn, &nz);
        if (!z || zn != 5 || zs [1] != cfg.z_chans) {
            fprintf (stderr, "refcheck magi1 vae: %s missing or of an unexpected shape\n", name);
            free (z);
            goto done;
        }
        int64_t frames = magi1_vae_frames (vae, zs [2]);
        size_t nv = (size_t) (3 * frames * zs [3] * cfg.patch_size * zs [4] * cfg.patch_size);
        float *video = malloc (nv * sizeof (float));
        s_vae_tap_t ctx = { rc, cases [i] };
        magi1_vae_set_tap (vae, s_vae_tap, &ctx);
        int r = video? magi1_vae_decode_pass (vae, z, zs [2], zs [3], zs [4], video, &err): -1;
        magi1_vae_set_tap (vae, NULL, NULL);
        if (r == 0) {
            snprintf (name, sizeof (name), "%s.out", cases [i]);
            s_compare_in (rc, S_VAE, name, video, nv);
        }
        free (z);
        free (video);
        if (r) {
            fprintf (stderr, "refcheck magi1 vae: %s: %s\n", cases [i], err? err: "decode failed");
            goto done;
        }
    }
    //  b4: TileProcessor.tiled_decode with the manifest's small tiles.
    json_t *ta = json_object_get (json_object_get (json_object_get (rc->manifest, "vae_cases"), "b4"), "tile_args");
    magi1_vae_tiling_t tiling = {
        .tile_px_h = json_integer_value (json_object_get (ta, "tile_sample_min_height")),
        .tile_px_w = json_integer_value (json_object_get (ta, "tile_sample_min_width")),
        .tile_frames = json_integer_value (json_object_get (ta, "tile_sample_min_length")),
        .spatial_overlap = json_number_value (json_object_get (ta, "spatial_tile_overlap_factor")),
        .temporal_overlap = json_number_value (json_object_get (ta, "temporal_tile_overlap_factor")),
    };
    int64_t zs [VDGX_MAX_DIMS];
    int zn = 0;
    size_t nz = 0;
    float *z = vdgx_refcheck_load (rc, S_VAE, "b4.in.z", zs, &zn, &nz);
    int64_t frames = 0, h = 0, w = 0;
    if (!z || zn != 5 || magi1_vae_output_size (vae, zs [2], zs [3], zs [4], &tiling, &frames, &h, &w)) {
        fprintf (stderr, "refcheck magi1 vae: b4 inputs or tile_args missing\n");
        free (z);
        goto done;
    }
    float *video = malloc ((size_t) (frames * 3 * h * w) * sizeof (float));
    uint8_t *rgb = malloc ((size_t) (frames * 3 * h * w));
    int r = video && rgb? magi1_vae_decode (vae, z, zs [2], zs [3], zs [4], &tiling, video, &err): -1;
    if (r == 0) {
        s_compare_in (rc, S_VAE, "b4.out.float", video, (size_t) (frames * 3 * h * w));
        for (int64_t f = 0; f < frames; f++)
            for (int64_t c = 0; c < 3; c++)
                for (int64_t p = 0; p < h * w; p++) {
                    float x = video [(f * 3 + c) * h * w + p] * 127.5f + 127.5f;
                    rgb [(f * h * w + p) * 3 + c] = (uint8_t) (x < 0? 0: x > 255? 255: x);
                }
        s_compare_u8 (rc, S_VAE, "b4.out.uint8", rgb, frames, h, w);
    }
    free (z);
    free (video);
    free (rgb);
    if (r) {
        fprintf (stderr, "refcheck magi1 vae: b4: %s\n", err? err: "decode failed");
        goto done;
    }
    //  The sampling loop's chunks through decode_chunk (latent / 0.18215, 256 px and 12-frame
    //  tiles at 24 fps: two temporal tiles of 3 latent frames here).
    for (int i = 0; i < 2; i++) {
        char name [64];
        snprintf (name, sizeof (name), "chunk%d.latent", i);
        float *lat = vdgx_refcheck_load (rc, S_SAMP, name, zs, &zn, &nz);
        if (!lat || zn != 5 || magi1_vae_output_size (vae, zs [2], zs [3], zs [4], NULL, &frames, &h, &w)) {
            fprintf (stderr, "refcheck magi1 vae: %s missing\n", name);
            free (lat);
            goto done;
        }
        video = malloc ((size_t) (frames * 3 * h * w) * sizeof (float));
        rgb = malloc ((size_t) (frames * 3 * h * w));
        r = video && rgb? magi1_vae_decode_chunk (vae, lat, zs [2], zs [3], zs [4], 24, video, rgb, &err): -1;
        if (r == 0) {
            snprintf (name, sizeof (name), "chunk%d.video_float", i);
            s_compare_in (rc, S_SAMP, name, video, (size_t) (frames * 3 * h * w));
            snprintf (name, sizeof (name), "chunk%d.video_uint8", i);
            s_compare_u8 (rc, S_SAMP, name, rgb, frames, h, w);
        }
        free (lat);
        free (video);
        free (rgb);
        if (r) {
            fprintf (stderr, "refcheck magi1 vae: chunk %d: %s\n", i, err? err: "decode failed");
            goto done;
        }
    }
    if (s_vae_layout_check (rc, text))
        goto done;
    result = 0;
done:
    free (err);
    free (text);
    magi1_vae_destroy (&vae);
    vdgx_wsrc_destroy (&src);
    return result;
}
