/*  refcheck_gemma3.c - the Gemma 3 text decoder against the official gemma_pytorch outputs
    (tests/data/reference/gemma3): the RoPE tables, and three padded cases - (a) a batch of 2
    of length 16 with every intermediate of layers 0 (local) and 5 (global), (b) length 48 past
    the sliding window, (c) LTX-2's layout, 1024 tokens with 1001 left pads. Every float tensor
    is compared on the valid rows only (pad rows carry no contract); next_token must match.
    Not checked: attn_probs (the fused attention op never materialises them).
*/
#include "refcheck.h"
#include "gemma3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ROPE "vectors_rope.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    char file [64];
    char case_name [4];
    const uint8_t *mask;        //  [B*L]
    size_t rows;                //  B*L
} s_ctx_t;

//  Compares a [B,L,...] device tensor with a stored one on the valid rows.
static void
s_compare_rows (s_ctx_t *ctx, const char *name, const vdgx_tensor_t *t)
{
    char stored [96];
    snprintf (stored, sizeof (stored), "%s.%s", ctx->case_name, name);
    size_t n = (size_t) vdgx_tensor_numel (t), numel = 0;
    float *got = (float *) malloc ((n? n: 1) * sizeof (float));
    float *want = vdgx_refcheck_load (ctx->rc, ctx->file, stored, NULL, NULL, &numel);
    if (!got || !want || numel != n || n % ctx->rows
     || vdgx_tensor_to_f32 (ctx->rc->backend, t, got)) {
        printf ("  FAIL %-44s missing, size mismatch (%zu vs %zu) or unreadable\n", stored, n, numel);
        ctx->rc->checks++;
        ctx->rc->failures++;
    }
    else
        vdgx_refcheck_compare_rows (ctx->rc, stored, got, want, 1, ctx->rows, n / ctx->rows, ctx->mask);
    free (got);
    free (want);
}

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_compare_rows ((s_ctx_t *) arg, name, t);
}

//  The decoder's settings: the manifest's HF-equivalent text config.
static int
s_config (vdgx_refcheck_t *rc, gemma3_config_t *cfg)
{
    gemma3_config_defaults (cfg);
    json_t *hf = json_object_get (rc->manifest, "hf_equivalent_text_config");
    char *text = hf? json_dumps (hf, 0): NULL;
    char *err = NULL;
    if (!text || gemma3_config_parse (cfg, text, &err)) {
        fprintf (stderr, "refcheck gemma3: manifest hf_equivalent_text_config: %s\n",
                 err? err: "missing");
        free (err);
        free (text);
        return -1;
    }
    free (text);
    return 0;
}

static int
s_check_rope (vdgx_refcheck_t *rc, const gemma3_config_t *c)
{
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0;
    float *probe = vdgx_refcheck_load (rc, S_ROPE, "rope.local.cos", shape, &ndim, &n);
    if (!probe || ndim != 2 || shape [1] != c->head_dim / 2) {
        free (probe);
        fprintf (stderr, "refcheck gemma3: rope.local.cos missing or not [L, head_dim/2]\n");
        return -1;
    }
    free (probe);
    int len = (int) shape [0], half = c->head_dim / 2;
    float *inv = (float *) malloc (sizeof (float) * (size_t) half);
    float *cs = (float *) malloc (sizeof (float) * (size_t) len * half);
    float *sn = (float *) malloc (sizeof (float) * (size_t) len * half);
    for (int g = 0; g < 2; g++) {
        const char *kind = g? "global": "local";
        char name [64];
        gemma3_rope_tables (c, g == 1, len, inv, cs, sn);
        snprintf (name, sizeof (name), "rope.%s.inv_freq", kind);
        vdgx_refcheck_compare_stored (rc, name, inv, (size_t) half, S_ROPE, name);
        snprintf (name, sizeof (name), "rope.%s.cos", kind);
        vdgx_refcheck_compare_stored (rc, name, cs, (size_t) len * half, S_ROPE, name);
        snprintf (name, sizeof (name), "rope.%s.sin", kind);
        vdgx_refcheck_compare_stored (rc, name, sn, (size_t) len * half, S_ROPE, name);
    }
    free (inv);
    free (cs);
    free (sn);
    return 0;
}

//  Runs case x ("a", "b", "c") and compares what it stores.
static int
s_check_case (vdgx_refcheck_t *rc, gemma3_t *g, const char *x)
{
    s_ctx_t ctx;
    memset (&ctx, 0, sizeof (ctx));
    ctx.rc = rc;
    snprintf (ctx.file, sizeof (ctx.file), "vectors_%s.safetensors", x);
    snprintf (ctx.case_name, sizeof (ctx.case_name), "%s", x);
    const gemma3_config_t *c = gemma3_config (g);
    char name [96];
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0, mn = 0;
    snprintf (name, sizeof (name), "%s.in.input_ids", x);
    int64_t *raw = vdgx_refcheck_load_i64 (rc, ctx.file, name, shape, &ndim, &n);
    snprintf (name, sizeof (name), "%s.in.attention_mask", x);
    int64_t *rawm = vdgx_refcheck_load_i64 (rc, ctx.file, name, NULL, NULL, &mn);
    if (!raw || !rawm || ndim != 2 || mn != n || n == 0) {
        fprintf (stderr, "refcheck gemma3: case %s: ids / mask missing or not [B,L]\n", x);
        free (raw);
        free (rawm);
        return -1;
    }
    const int B = (int) shape [0], L = (int) shape [1];
    const int64_t D = c->hidden, N = c->layers;
    int32_t *ids = (int32_t *) malloc (sizeof (int32_t) * n);
    uint8_t *mask = (uint8_t *) malloc (n);
    for (size_t i = 0; i < n; i++) {
        ids [i] = (int32_t) raw [i];
        mask [i] = rawm [i] != 0;
    }
    free (raw);
    free (rawm);
    ctx.mask = mask;
    ctx.rows = n;
    //  every intermediate of the recorded layers (case c stores only q/k_rope_valid)
    bool full = strcmp (x, "c") != 0;
    uint64_t layers = 0;
    json_t *rec = json_object_get (rc->manifest, "recorded_layers");
    for (size_t i = 0; i < json_array_size (rec); i++)
        layers |= 1ULL << json_integer_value (json_array_get (rec, i));
    gemma3_set_tap (g, full? s_tap: NULL, &ctx, layers);
    vdgx_tensor_t hidden, last;
    float *logits = (float *) malloc (sizeof (float) * (size_t) B * c->vocab);
    int rv = gemma3_forward (g, ids, mask, B, L, &hidden, &last, logits);
    gemma3_set_tap (g, NULL, NULL, 0);
    if (rv) {
        fprintf (stderr, "refcheck gemma3: case %s: forward failed: %s\n", x, gemma3_error (g));
        free (ids);
        free (mask);
        free (logits);
        return -1;
    }
    size_t hn = (size_t) vdgx_tensor_numel (&hidden);
    float *hs = (float *) malloc (sizeof (float) * hn);
    float *lo = (float *) malloc (sizeof (float) * (size_t) vdgx_tensor_numel (&last));
    vdgx_tensor_to_f32 (rc->backend, &hidden, hs);
    vdgx_tensor_to_f32 (rc->backend, &last, lo);
    size_t rows = n, row = (size_t) D;
    if (full) {
        //  hidden_states [N+1,B,L,D]; layer_out [N,B,L,D] = hidden [1..N-1] + the raw last
        snprintf (name, sizeof (name), "%s.hidden_states", x);
        float *want = vdgx_refcheck_load (rc, ctx.file, name, NULL, NULL, &n);
        if (want && n == hn)
            vdgx_refcheck_compare_rows (rc, name, hs, want, (size_t) N + 1, rows, row, mask);
        else
            printf ("  FAIL %-44s missing or size mismatch\n", name), rc->checks++, rc->failures++;
        free (want);
        float *lout = (float *) malloc (sizeof (float) * (size_t) N * rows * row);
        memcpy (lout, hs + rows * row, sizeof (float) * (size_t) (N - 1) * rows * row);
        memcpy (lout + (size_t) (N - 1) * rows * row, lo, sizeof (float) * rows * row);
        snprintf (name, sizeof (name), "%s.layer_out", x);
        want = vdgx_refcheck_load (rc, ctx.file, name, NULL, NULL, &n);
        if (want && n == (size_t) N * rows * row)
            vdgx_refcheck_compare_rows (rc, name, lout, want, (size_t) N, rows, row, mask);
        else
            printf ("  FAIL %-44s missing or size mismatch\n", name), rc->checks++, rc->failures++;
        free (want);
        free (lout);
        snprintf (name, sizeof (name), "%s.final_norm", x);
        want = vdgx_refcheck_load (rc, ctx.file, name, NULL, NULL, &n);
        if (want && n == rows * row)
            vdgx_refcheck_compare_rows (rc, name, hs + (size_t) N * rows * row, want, 1, rows, row, mask);
        else
            printf ("  FAIL %-44s missing or size mismatch\n", name), rc->checks++, rc->failures++;
        free (want);
    }
    else {
        //  stored for the valid rows only: [N+1,1,n,D] and [1,n,D]
        size_t valid = 0;
        for (size_t i = 0; i < rows; i++)
            valid += mask [i];
        float *hv = (float *) malloc (sizeof (float) * (size_t) (N + 1) * valid * row);
        for (int64_t s = 0, at = 0; s <= N; s++)
            for (size_t r = 0; r < rows; r++)
                if (mask [r])
                    memcpy (hv + (at++) * row, hs + ((size_t) s * rows + r) * row, sizeof (float) * row);
        snprintf (name, sizeof (name), "%s.hidden_states_valid", x);
        vdgx_refcheck_compare_stored (rc, name, hv, (size_t) (N + 1) * valid * row, ctx.file, name);
        for (size_t r = 0, at = 0; r < rows; r++)
            if (mask [r])
                memcpy (hv + (at++) * row, lo + r * row, sizeof (float) * row);
        snprintf (name, sizeof (name), "%s.last_layer_out_valid", x);
        vdgx_refcheck_compare_stored (rc, name, hv, valid * row, ctx.file, name);
        free (hv);
    }
    snprintf (name, sizeof (name), "%s.logits_last", x);
    vdgx_refcheck_compare_stored (rc, name, logits, (size_t) B * c->vocab, ctx.file, name);
    snprintf (name, sizeof (name), "%s.next_token", x);
    int64_t *want_tok = vdgx_refcheck_load_i64 (rc, ctx.file, name, NULL, NULL, &n);
    bool ok = want_tok && n == (size_t) B;
    for (int bi = 0; ok && bi < B; bi++) {
        int best = 0;
        for (int v = 1; v < c->vocab; v++)
            if (logits [(size_t) bi * c->vocab + v] > logits [(size_t) bi * c->vocab + best])
                best = v;
        ok = best == want_tok [bi];
    }
    printf ("  %-4s %-44s (exact)\n", ok? "PASS": "FAIL", name);
    rc->checks++;
    rc->failures += !ok;
    free (want_tok);
    free (hs);
    free (lo);
    free (logits);
    vdgx_tensor_release (rc->backend, &hidden);
    vdgx_tensor_release (rc->backend, &last);
    free (ids);
    free (mask);
    return 0;
}

//  Case c's q_rope / k_rope of the recorded layers on the valid rows ("c.l0.q_rope_valid").
typedef struct {
    vdgx_refcheck_t *rc;
    const uint8_t *mask;
    size_t rows;
} s_valid_ctx_t;

static void
s_valid_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_valid_ctx_t *ctx = (s_valid_ctx_t *) arg;
    const char *dot = strchr (name, '.');
    if (!dot || (strcmp (dot, ".q_rope") && strcmp (dot, ".k_rope")))
        return;
    size_t n = (size_t) vdgx_tensor_numel (t), inner = n / ctx->rows, valid = 0;
    float *got = (float *) malloc (sizeof (float) * n);
    vdgx_tensor_to_f32 (ctx->rc->backend, t, got);
    for (size_t r = 0; r < ctx->rows; r++)
        if (ctx->mask [r])
            memmove (got + (valid++) * inner, got + r * inner, sizeof (float) * inner);
    char stored [96];
    snprintf (stored, sizeof (stored), "c.%s_valid", name);
    vdgx_refcheck_compare_stored (ctx->rc, stored, got, valid * inner, "vectors_c.safetensors", stored);
    free (got);
}

static int
s_check_case_c_rope (vdgx_refcheck_t *rc, gemma3_t *g)
{
    size_t n = 0, mn = 0;
    int64_t *raw = vdgx_refcheck_load_i64 (rc, "vectors_c.safetensors", "c.in.input_ids", NULL, NULL, &n);
    int64_t *rawm = vdgx_refcheck_load_i64 (rc, "vectors_c.safetensors", "c.in.attention_mask", NULL, NULL, &mn);
    if (!raw || !rawm || n != mn || n == 0) {
        free (raw);
        free (rawm);
        return -1;
    }
    int32_t *ids = (int32_t *) malloc (sizeof (int32_t) * n);
    uint8_t *mask = (uint8_t *) malloc (n);
    for (size_t i = 0; i < n; i++) {
        ids [i] = (int32_t) raw [i];
        mask [i] = rawm [i] != 0;
    }
    s_valid_ctx_t ctx = { rc, mask, n };
    uint64_t layers = 0;
    json_t *rec = json_object_get (rc->manifest, "recorded_layers");
    for (size_t i = 0; i < json_array_size (rec); i++)
        layers |= 1ULL << json_integer_value (json_array_get (rec, i));
    gemma3_set_tap (g, s_valid_tap, &ctx, layers);
    vdgx_tensor_t hidden;
    int rv = gemma3_forward (g, ids, mask, 1, (int) n, &hidden, NULL, NULL);
    gemma3_set_tap (g, NULL, NULL, 0);
    if (rv == 0)
        vdgx_tensor_release (rc->backend, &hidden);
    free (raw);
    free (rawm);
    free (ids);
    free (mask);
    return rv;
}

int
vdgx_refcheck_gemma3 (vdgx_refcheck_t *rc)
{
    gemma3_config_t cfg;
    if (s_config (rc, &cfg))
        return -1;
    char path [4096];
    snprintf (path, sizeof (path), "%s/weights_hf.safetensors", rc->dir);
    char *err = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &err);
    if (!ckpt) {
        fprintf (stderr, "refcheck gemma3: %s\n", err? err: "cannot open the weights");
        free (err);
        return -1;
    }
    //  f32 weights on the CPU (the stored bf16 values convert exactly), bf16 on a GPU.
    gemma3_t *g = gemma3_new_from_ckpt (&ckpt, &cfg, rc->backend,
                                        rc->gpu? VDGX_WFMT_BF16: VDGX_WFMT_F32, &err);
    if (!g) {
        fprintf (stderr, "refcheck gemma3: %s\n", err? err: "cannot load the decoder");
        free (err);
        return -1;
    }
    const gemma3_config_t *c = gemma3_config (g);
    json_t *mc = json_object_get (rc->manifest, "config");
    const struct { const char *key; int got; } want [] = {
        { "vocab_size", c->vocab }, { "hidden_size", c->hidden }, { "num_hidden_layers", c->layers },
        { "num_attention_heads", c->heads }, { "num_key_value_heads", c->kv_heads },
        { "head_dim", c->head_dim }, { "intermediate_size", c->ffn },
        { "sliding_window_size", c->sliding_window } };
    for (size_t i = 0; i < sizeof (want) / sizeof (want [0]); i++) {
        json_t *v = json_object_get (mc, want [i].key);
        bool ok = v && json_integer_value (v) == want [i].got;
        printf ("  %-4s config %-35s loaded %d, manifest %lld\n", ok? "PASS": "FAIL", want [i].key,
                want [i].got, (long long) json_integer_value (v));
        rc->checks++;
        rc->failures += !ok;
    }
    //  layer types: the manifest's list against the pattern
    json_t *types = json_object_get (rc->manifest, "layer_types");
    bool types_ok = (int) json_array_size (types) == c->layers;
    for (int i = 0; types_ok && i < c->layers; i++)
        types_ok = (strcmp (json_string_value (json_array_get (types, (size_t) i)), "GLOBAL") == 0)
                == gemma3_layer_is_global (c, i);
    printf ("  %-4s config layer_types (global iff (i+1) %% %d == 0)\n", types_ok? "PASS": "FAIL",
            c->sliding_pattern);
    rc->checks++;
    rc->failures += !types_ok;
    int rv = s_check_rope (rc, c);
    if (rv == 0)
        rv = s_check_case (rc, g, "a");
    if (rv == 0)
        rv = s_check_case (rc, g, "b");
    if (rv == 0)
        rv = s_check_case (rc, g, "c");
    if (rv == 0)
        rv = s_check_case_c_rope (rc, g);
    gemma3_destroy (&g);
    return rv;
}
