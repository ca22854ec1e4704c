/*  gemma3_selftest.c - gemma3_test: configuration parsing, RoPE tables, loading a generated
    random checkpoint in the HF layout (sharded, BF16 and FP8), padding and sliding-window
    semantics of the forward pass, and clear errors for broken files. The reference vectors are
    checked by `vdgx-refcheck gemma3` (ctest refcheck.gemma3).
*/
#include "gemma3.h"
#include "vdgx_nn_testing.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gemma3_config_t
s_tiny_config (void)
{
    gemma3_config_t c;
    gemma3_config_defaults (&c);
    c.vocab = 64;
    c.hidden = 32;
    c.layers = 7;           //  layer 5 global
    c.heads = 4;
    c.kv_heads = 2;
    c.head_dim = 8;
    c.ffn = 48;
    c.sliding_window = 3;
    return c;
}

static void
s_remove_dir (const char *path)
{
    zdir_t *d = zdir_new (path, NULL);
    if (d)
        zdir_remove (d, true);
    zdir_destroy (&d);
}

static void
s_config_test (void)
{
    gemma3_config_t c;
    gemma3_config_defaults (&c);
    assert (c.eps == 1e-6f && c.rope_theta == 1e6 && c.rope_local_theta == 1e4 && c.rope_factor == 8);
    assert (c.sliding_window == 1024 && c.sliding_pattern == 6 && c.query_pre_attn_scalar == 256);
    assert (!gemma3_layer_is_global (&c, 0) && gemma3_layer_is_global (&c, 5)
         && gemma3_layer_is_global (&c, 47) && !gemma3_layer_is_global (&c, 46));
    char *err = NULL;
    assert (gemma3_config_parse (&c, "{\"text_config\": {\"sliding_window\": 4, \"rope_theta\": 5e5, "
                                 "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 4.0}, "
                                 "\"query_pre_attn_scalar\": 16}, \"vision_config\": {}}", &err) == 0);
    assert (c.sliding_window == 4 && c.rope_theta == 5e5 && c.rope_factor == 4 && c.query_pre_attn_scalar == 16);
    assert (gemma3_config_parse (&c, "{\"layer_types\": [\"full_attention\", \"sliding_attention\"]}", &err) == 0);
    assert (c.layer_types_given && gemma3_layer_is_global (&c, 0) && !gemma3_layer_is_global (&c, 1));
    const char *bad [] = {
        "{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 8}}", "[1]", "{\"sliding_window\": -3}",
        "{\"layer_types\": [\"full_attention\", 7]}", "{\"rms_norm_eps\": \"x\"}", "{nope" };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        assert (gemma3_config_parse (&c, bad [i], &err) == -1 && err && strstr (err, "Gemma 3 config"));
        free (err);
        err = NULL;
    }
    //  RoPE: frequency 0 is 1 (local) and 1/factor (global); the angle is p * inv_freq
    gemma3_config_defaults (&c);
    c.head_dim = 16;
    float inv [8], cs [4 * 8], sn [4 * 8];
    gemma3_rope_tables (&c, false, 4, inv, cs, sn);
    assert (inv [0] == 1.0f && inv [7] < inv [6] && cs [0] == 1.0f && sn [0] == 0.0f);
    assert (fabsf (cs [3 * 8 + 1] - cosf (3.0f * inv [1])) == 0.0f);
    gemma3_rope_tables (&c, true, 4, inv, cs, sn);
    assert (inv [0] == 1.0f / 8.0f && fabsf (inv [1] - powf (1e6f, -2.0f / 16) / 8) < 1e-9f);
}

//  Copies every tensor of dir's checkpoint but `skip` (and changes `reshape`'s first dim to
//  1) into one file; loading it must fail naming that tensor.
static void
s_broken_copy (const char *dir, const char *skip, const char *reshape, const char *expect,
               vdgx_backend_t *b)
{
    char path [512];
    snprintf (path, sizeof (path), "%s/model.safetensors.index.json", dir);
    char *err = NULL;
    vdgx_ckpt_t *ck = vdgx_ckpt_open (path, &err);
    assert (ck);
    size_t n = vdgx_ckpt_count (ck), m = 0;
    vdgx_ckpt_tensor_t *list = (vdgx_ckpt_tensor_t *) calloc (n, sizeof (*list));
    for (size_t i = 0; i < n; i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (ck, i);
        if (skip && strcmp (t->name, skip) == 0)
            continue;
        list [m] = *t;
        if (reshape && strcmp (t->name, reshape) == 0) {
            list [m].shape [0] = 1;
            list [m].nbytes = t->nbytes / (size_t) t->shape [0];
        }
        m++;
    }
    snprintf (path, sizeof (path), "%s/broken.safetensors", dir);
    assert (vdgx_safetensors_write (path, list, m, &err) == 0);
    free (list);
    vdgx_ckpt_destroy (&ck);
    gemma3_t *g = gemma3_new (path, b, VDGX_WFMT_F32, &err);
    assert (!g && err);
    if (!strstr (err, expect))
        fprintf (stderr, "unexpected error: %s\n", err);
    assert (strstr (err, expect));
    free (err);
    unlink (path);
}

void
gemma3_test (bool verbose)
{
    printf (" * gemma3: ");
    //  The FP8 checks compare weight handling, not rounding: the CPU's packed products
    //  keep x in f32 (hi + lo bf16 parts) instead of rounding it to bf16 (the default).
    setenv ("VDGX_CPU_BF16_ACT", "0", 1);
    s_config_test ();
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);
    char dir [] = "/tmp/vdgx-gemma3-test-XXXXXX";
    assert (mkdtemp (dir));
    gemma3_config_t cfg = s_tiny_config ();
    assert (gemma3_write_random (dir, &cfg, 7, false, &err) == 0);
    gemma3_t *g = gemma3_new (dir, b, VDGX_WFMT_F32, &err);
    if (!g)
        fprintf (stderr, "%s\n", err);
    assert (g);
    const gemma3_config_t *c = gemma3_config (g);
    assert (c->vocab == 64 && c->hidden == 32 && c->layers == 7 && c->heads == 4 && c->kv_heads == 2
         && c->head_dim == 8 && c->ffn == 48 && c->sliding_window == 3);
    assert (gemma3_weight_bytes (g) > 0);

    //  Batch of 2, length 12: row 0 full, row 1 left-padded by 5. The valid rows of row 1 must
    //  equal the same 7 tokens run alone (RoPE is relative; pads are invisible).
    enum { L = 12, P = 5 };
    const int64_t D = c->hidden, N = c->layers;
    int32_t ids [2 * L];
    uint8_t mask [2 * L];
    for (int i = 0; i < L; i++) {
        ids [i] = i == 0? 2: 3 + (i * 7) % 60;
        mask [i] = 1;
        ids [L + i] = i < P? 0: i == P? 2: 3 + (i * 11) % 60;
        mask [L + i] = i >= P;
    }
    vdgx_tensor_t hidden, last;
    float logits [2 * 64];
    assert (gemma3_forward (g, ids, mask, 2, L, &hidden, &last, logits) == 0);
    assert (hidden.ndim == 4 && hidden.shape [0] == N + 1 && hidden.shape [1] == 2 && hidden.shape [2] == L);
    float *hs = vdgx_test_download (b, &hidden);
    for (int64_t i = 0; i < vdgx_tensor_numel (&hidden); i++)
        assert (isfinite (hs [i]));
    vdgx_tensor_t alone;
    assert (gemma3_forward (g, ids + L + P, NULL, 1, L - P, &alone, NULL, NULL) == 0);
    float *ha = vdgx_test_download (b, &alone);
    double max_err = 0;
    for (int64_t s = 0; s <= N; s++)
        for (int64_t t = 0; t < L - P; t++)
            for (int64_t d = 0; d < D; d++) {
                float want = ha [(s * (L - P) + t) * D + d];
                float got = hs [((s * 2 + 1) * L + P + t) * D + d];
                double e = fabs ((double) got - want) / (1.0 + fabs (want));
                max_err = e > max_err? e: max_err;
            }
    if (verbose)
        printf ("\n   padded vs alone: max rel err %.2e", max_err);
    assert (max_err < 1e-4);
    //  Sliding window 3 on layer 0: changing token 1 leaves hidden[1] rows 0 and >= 4 untouched
    //  (row i sees i-2..i), but the global layer 5 carries it to the end.
    int32_t ids2 [L];
    memcpy (ids2, ids, sizeof (ids2));
    ids2 [1] = ids [1] == 5? 6: 5;
    vdgx_tensor_t h1, h2;
    assert (gemma3_forward (g, ids, NULL, 1, L, &h1, NULL, NULL) == 0);
    assert (gemma3_forward (g, ids2, NULL, 1, L, &h2, NULL, NULL) == 0);
    float *h1h = vdgx_test_download (b, &h1), *hb = vdgx_test_download (b, &h2);
    for (int t = 0; t < L; t++) {
        bool same = memcmp (hb + (1 * L + t) * D, h1h + (1 * L + t) * D, sizeof (float) * D) == 0;
        assert (same == (t == 0 || t >= 4));
    }
    assert (memcmp (hb + (N * L + L - 1) * D, h1h + (N * L + L - 1) * D, sizeof (float) * D) != 0);
    free (h1h);
    vdgx_tensor_release (b, &h1);
    //  the last layer's raw output, normalised, is hidden[N]; logits are finite
    assert (last.ndim == 3 && last.shape [0] == 2);
    for (int i = 0; i < 2 * 64; i++)
        assert (isfinite (logits [i]));
    free (hb);
    free (ha);
    free (hs);
    vdgx_tensor_release (b, &h2);
    vdgx_tensor_release (b, &alone);
    vdgx_tensor_release (b, &last);
    //  bad input
    int32_t bad_ids [2] = { 2, 64 };
    assert (gemma3_forward (g, bad_ids, NULL, 1, 2, &h2, NULL, NULL) == -1
         && strstr (gemma3_error (g), "outside the vocabulary"));

    //  FP8 checkpoint: held as FP8 it computes what the same weights held as F32 compute
    char dir8 [] = "/tmp/vdgx-gemma3-test8-XXXXXX";
    assert (mkdtemp (dir8));
    assert (gemma3_write_random (dir8, &cfg, 9, true, &err) == 0);
    gemma3_t *g8 = gemma3_new (dir8, b, VDGX_WFMT_FP8_E4M3, &err);
    gemma3_t *g32 = gemma3_new (dir8, b, VDGX_WFMT_F32, &err);
    assert (g8 && g32 && gemma3_weight_bytes (g8) < gemma3_weight_bytes (g32) / 2);
    vdgx_tensor_t o8, o32;
    assert (gemma3_forward (g8, ids, NULL, 1, L, &o8, NULL, NULL) == 0);
    assert (gemma3_forward (g32, ids, NULL, 1, L, &o32, NULL, NULL) == 0);
    float *a8 = vdgx_test_download (b, &o8), *a32 = vdgx_test_download (b, &o32);
    max_err = 0;
    for (int64_t i = 0; i < vdgx_tensor_numel (&o8); i++) {
        double e = fabs ((double) a8 [i] - a32 [i]) / (1.0 + fabs (a32 [i]));
        max_err = e > max_err? e: max_err;
    }
    if (verbose)
        printf ("\n   fp8-held vs f32-held: max rel err %.2e", max_err);
    assert (max_err < 1e-4);
    free (a8);
    free (a32);
    vdgx_tensor_release (b, &o8);
    vdgx_tensor_release (b, &o32);
    gemma3_destroy (&g8);
    gemma3_destroy (&g32);
    //  bf16-held loads too
    g8 = gemma3_new (dir8, b, VDGX_WFMT_BF16, &err);
    assert (g8);
    gemma3_destroy (&g8);

    //  errors name the file or tensor
    s_broken_copy (dir, "language_model.model.layers.3.mlp.up_proj.weight", NULL,
                   "missing tensor 'language_model.model.layers.3.mlp.up_proj.weight'", b);
    s_broken_copy (dir, NULL, "language_model.model.layers.2.self_attn.o_proj.weight",
                   "'language_model.model.layers.2.self_attn.o_proj.weight' has shape [1, 32], expected [32, 32]", b);
    s_broken_copy (dir, "language_model.model.norm.weight", NULL, "language_model.model.norm.weight", b);
    s_broken_copy (dir, "language_model.model.embed_tokens.weight", NULL, "no token embedding", b);
    char path [512];
    //  a truncated shard and a missing one are named
    snprintf (path, sizeof (path), "%s/model-00003-of-00008.safetensors", dir8);
    assert (truncate (path, 4000) == 0);
    assert (!gemma3_new (dir8, b, VDGX_WFMT_F32, &err) && strstr (err, "model-00003-of-00008.safetensors"));
    if (verbose)
        printf ("\n   %s", err);
    free (err);
    assert (gemma3_write_random (dir8, &cfg, 9, true, &err) == 0);
    snprintf (path, sizeof (path), "%s/model-00004-of-00008.safetensors", dir8);
    assert (unlink (path) == 0);
    assert (!gemma3_new (dir8, b, VDGX_WFMT_F32, &err) && strstr (err, "model-00004-of-00008.safetensors"));
    if (verbose)
        printf ("\n   %s", err);
    free (err);
    snprintf (path, sizeof (path), "%s/config.json", dir8);
    FILE *f = fopen (path, "w");
    assert (f);
    fprintf (f, "{\"text_config\": {\"rope_scaling\": {\"rope_type\": \"dynamic\"}}}");
    fclose (f);
    assert (!gemma3_new (dir8, b, VDGX_WFMT_F32, &err) && strstr (err, "config.json") && strstr (err, "dynamic"));
    free (err);
    assert (!gemma3_new ("/nonexistent/gemma", b, VDGX_WFMT_F32, &err) && strstr (err, "/nonexistent/gemma"));
    free (err);
    assert (!gemma3_new (dir, b, VDGX_WFMT_MXFP4, &err) && strstr (err, "not supported"));
    free (err);

    gemma3_destroy (&g);
    assert (g == NULL);
    vdgx_tensor_release (b, &hidden);
    s_remove_dir (dir);
    s_remove_dir (dir8);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
