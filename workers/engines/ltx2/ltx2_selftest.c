/*  ltx2_selftest.c - ltx2_text_test and ltx2_prompt_test: the text path's arrangement choice
    and its errors on rewritten copies of the reference tiny checkpoints, padding invariance,
    and the prompt encoder's cache and Gemma lifetime on a generated random Gemma. The official
    outputs are checked by `vdgx-refcheck ltx2|ltx23 --part text`. Needs VDGX_SOURCE_DIR (the
    reference checkpoints under tests/data/reference/); ctest sets it.
*/
#include "ltx2_prompt.h"
#include "ltx2_text.h"
#include "gemma3.h"
#include "gemma3_tok.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
s_reference (const char *set)
{
    const char *src = getenv ("VDGX_SOURCE_DIR");
    assert (src && "VDGX_SOURCE_DIR must name the source tree (ctest sets it)");
    return zsys_sprintf ("%s/tests/data/reference/%s/tiny_checkpoint.safetensors", src, set);
}

static void
s_remove_dir (const char *path)
{
    zdir_t *d = zdir_new (path, NULL);
    if (d)
        zdir_remove (d, true);
    zdir_destroy (&d);
}

//  Writes the text tensors of `src` (minus `drop`) with metadata config `config` (NULL: none)
//  to path, and returns the error of loading it (caller frees), NULL when it loads.
static char *
s_load_variant (const char *src, const char *path, const char *config, const char *drop,
                vdgx_backend_t *b)
{
    vdgx_ckpt_t *ck = vdgx_ckpt_open (src, NULL);
    assert (ck);
    size_t n = vdgx_ckpt_count (ck), m = 0;
    vdgx_ckpt_tensor_t *list = (vdgx_ckpt_tensor_t *) calloc (n, sizeof (*list));
    for (size_t i = 0; i < n; i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (ck, i);
        if ((strstr (t->name, "embeddings_connector") || strstr (t->name, "text_embedding_projection"))
         && !(drop && strcmp (t->name, drop) == 0))
            list [m++] = *t;
    }
    const char *meta [] = { "config", config, NULL };
    assert (vdgx_safetensors_write_meta (path, list, m, config? meta: NULL, NULL) == 0);
    free (list);
    vdgx_ckpt_destroy (&ck);
    char *err = NULL;
    ltx2_text_t *t = ltx2_text_new (path, b, VDGX_WFMT_F32, &err);
    ltx2_text_destroy (&t);
    return err;
}

void
ltx2_text_test (bool verbose)
{
    printf (" * ltx2_text: ");
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);
    char *src2 = s_reference ("ltx2"), *src23 = s_reference ("ltx23");
    ltx2_text_t *t2 = ltx2_text_new (src2, b, VDGX_WFMT_F32, &err);
    ltx2_text_t *t23 = ltx2_text_new (src23, b, VDGX_WFMT_BF16, &err);
    assert (t2 && t23);
    const ltx2_text_config_t *c2 = ltx2_text_config (t2), *c23 = ltx2_text_config (t23);
    assert (!c2->v2 && c2->feature_dim == 160 && c2->video_dim == 32 && c2->video.heads == 4
         && c2->video.registers == 8 && !c2->video.gated && c2->rope_max_pos == 4096 && c2->rope_double);
    assert (c23->v2 && c23->video_dim == 64 && c23->audio_dim == 32 && c23->video.gated
         && c23->video.registers == 128 && c23->audio.head_dim == 8);

    //  Padding invariance: only the valid tokens, in order, matter (left or right padded; any
    //  values in the pad rows).
    enum { S = 5, T = 16, D = 32, N = 6 };
    float *h = (float *) malloc (sizeof (float) * S * T * D), *h2 = (float *) malloc (sizeof (float) * S * T * D);
    uint64_t rng = 1;
    for (int i = 0; i < S * T * D; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        h [i] = (float) ((double) (rng >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
    uint8_t left [T], right [T];
    for (int t = 0; t < T; t++) {
        left [t] = t >= T - N;
        right [t] = t < N;
    }
    for (int l = 0; l < S; l++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++)
                h2 [(l * T + t) * D + d] = t < N? h [(l * T + t + T - N) * D + d]: 1000.0f + (float) t;
    const int64_t shape [4] = { S, 1, T, D };
    vdgx_tensor_t hl, hr, v1, a1, v2, a2;
    assert (vdgx_tensor_alloc (b, &hl, VDGX_DTYPE_F32, 4, shape) == 0 && vdgx_tensor_from_f32 (b, &hl, h) == 0);
    assert (vdgx_tensor_alloc (b, &hr, VDGX_DTYPE_F32, 4, shape) == 0 && vdgx_tensor_from_f32 (b, &hr, h2) == 0);
    assert (ltx2_text_encode (t2, &hl, left, &v1, &a1) == 0);
    assert (ltx2_text_encode (t2, &hr, right, &v2, &a2) == 0);
    assert (v1.shape [0] == T && v1.shape [1] == 32 && a1.shape [1] == 32);
    assert (memcmp (v1.data, v2.data, vdgx_tensor_nbytes (&v1)) == 0);
    assert (memcmp (a1.data, a2.data, vdgx_tensor_nbytes (&a1)) == 0);
    //  ... and the two connectors differ (their weights do)
    assert (memcmp (v1.data, a1.data, vdgx_tensor_nbytes (&v1)) != 0);
    for (int i = 0; i < T * 32; i++)
        assert (isfinite (((float *) v1.data) [i]));
    vdgx_tensor_release (b, &v1);
    vdgx_tensor_release (b, &a1);
    vdgx_tensor_release (b, &v2);
    vdgx_tensor_release (b, &a2);
    //  encode errors: not one prompt, tokens not a multiple of the registers
    const int64_t bad [4] = { S, 1, 12, D }, bad2 [4] = { S - 1, 1, T, D };
    vdgx_tensor_t hb;
    assert (vdgx_tensor_alloc (b, &hb, VDGX_DTYPE_F32, 4, bad) == 0);
    assert (ltx2_text_encode (t2, &hb, left, &v1, &a1) == -1 && strstr (ltx2_text_error (t2), "multiple of the 8 registers"));
    vdgx_tensor_release (b, &hb);
    assert (vdgx_tensor_alloc (b, &hb, VDGX_DTYPE_F32, 4, bad2) == 0);
    assert (ltx2_text_encode (t2, &hb, left, &v1, &a1) == -1 && strstr (ltx2_text_error (t2), "S*D = 160"));
    vdgx_tensor_release (b, &hb);
    vdgx_tensor_release (b, &hl);
    vdgx_tensor_release (b, &hr);
    free (h);
    free (h2);

    //  The arrangement comes from the metadata; broken metadata or tensors are named.
    char dir [] = "/tmp/vdgx-ltx2-text-XXXXXX";
    assert (mkdtemp (dir));
    char path [256];
    snprintf (path, sizeof (path), "%s/variant.safetensors", dir);
    const char *base = "{\"transformer\": {\"rope_type\": \"split\", \"frequencies_precision\": "
                       "\"float64\", \"connector_positional_embedding_max_pos\": [4096], "
                       "\"connector_num_attention_heads\": 4, \"connector_attention_head_dim\": 8%s}}";
    char config [1024];
    snprintf (config, sizeof (config), base, "");
    err = s_load_variant (src2, path, config, NULL, b);
    assert (!err);
    struct { const char *extra, *drop, *expect; } cases [] = {
        { NULL, NULL, "no __metadata__" },
        { ", \"caption_proj_before_connector\": true, \"caption_proj_input_norm\": false", NULL, "2 of the 4" },
        { ", \"caption_proj_before_connector\": true, \"caption_proj_input_norm\": false, "
          "\"caption_projection_first_linear\": false, \"caption_projection_second_linear\": true",
          NULL, "caption_projection_second_linear must be false" },
        { ", \"rope_type\": \"interleaved\"", NULL, "not supported" },
        { ", \"connector_num_attention_heads\": 3", NULL, "config says 3 heads" },
        { "", "model.diffusion_model.audio_embeddings_connector.transformer_1d_blocks.1.attn1.to_v.bias",
          "model.diffusion_model.audio_embeddings_connector.transformer_1d_blocks.1.attn1.to_v.bias is missing" },
        { "", "text_embedding_projection.aggregate_embed.weight", "aggregate_embed.weight' missing" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        snprintf (config, sizeof (config), base, cases [i].extra? cases [i].extra: "");
        err = s_load_variant (src2, path, cases [i].extra? config: NULL, cases [i].drop, b);
        if (!err || !strstr (err, cases [i].expect))
            fprintf (stderr, "case %zu: %s\n", i, err? err: "(loaded)");
        assert (err && strstr (err, cases [i].expect));
        if (verbose)
            printf ("\n   %s", err);
        free (err);
    }
    unlink (path);
    rmdir (dir);
    ltx2_text_destroy (&t2);
    ltx2_text_destroy (&t23);
    assert (!t2);
    free (src2);
    free (src23);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}

void
ltx2_prompt_test (bool verbose)
{
    printf (" * ltx2_prompt: ");
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);
    //  A random Gemma that fits the LTX-2 tiny text path: 4 layers of 32 (5 x 32 = 160 features).
    char dir [] = "/tmp/vdgx-ltx2-prompt-XXXXXX";
    assert (mkdtemp (dir));
    gemma3_config_t gc;
    gemma3_config_defaults (&gc);
    gc.vocab = 96;
    gc.hidden = 32;
    gc.layers = 4;
    gc.heads = 2;
    gc.kv_heads = 1;
    gc.head_dim = 16;
    gc.ffn = 64;
    gc.sliding_window = 4;
    assert (gemma3_write_random (dir, &gc, 3, false, &err) == 0);
    const char *corpus [] = {
        "a cat walks along a sunny windowsill", "waves roll onto a quiet beach at sunset",
        "a red car drives through a rainy city at night", "snow falls over a pine forest",
        "the quick brown fox jumps over the lazy dog" };
    char tokpath [256];
    snprintf (tokpath, sizeof (tokpath), "%s/tokenizer.model", dir);
    assert (gemma3_tok_train_tiny (tokpath, corpus, 5, 60, &err) == 0);
    char *src2 = s_reference ("ltx2");
    ltx2_text_t *text = ltx2_text_new (src2, b, VDGX_WFMT_F32, &err);
    assert (text);

    ltx2_prompt_options_t opt;
    memset (&opt, 0, sizeof (opt));
    opt.gemma_path = dir;
    opt.gemma_wfmt = VDGX_WFMT_F32;
    opt.max_tokens = 16;
    opt.cache_entries = 2;
    opt.policy = LTX2_GEMMA_FREE;
    ltx2_prompt_t *p = ltx2_prompt_new (text, b, &opt, &err);
    assert (p && ltx2_prompt_frees_gemma (p) && !ltx2_prompt_gemma_loaded (p));
    vdgx_tensor_t v, a, v2, a2;
    int loads, hits, misses;
    assert (ltx2_prompt_encode (p, "a cat walks", &v, &a) == 0);
    assert (v.shape [0] == 16 && v.shape [1] == 32 && a.shape [1] == 32);
    ltx2_prompt_stats (p, &loads, &hits, &misses);
    assert (loads == 1 && hits == 0 && misses == 1 && !ltx2_prompt_gemma_loaded (p));
    //  the same contexts as tokenizer -> Gemma -> text path by hand
    {
        vdgx_tok_opts_t tok_opts = gemma3_tok_opts ();
        vdgx_tok_t *tok = vdgx_tok_new (dir, &tok_opts, &err);
        gemma3_t *g = gemma3_new (dir, b, VDGX_WFMT_F32, &err);
        int32_t ids [16];
        uint8_t mask [16];
        assert (tok && g && vdgx_tok_encode (tok, "a cat walks", 16, ids, mask, NULL) > 1);
        vdgx_tensor_t hs, vv, aa;
        assert (gemma3_forward (g, ids, mask, 1, 16, &hs, NULL, NULL) == 0);
        assert (ltx2_text_encode (text, &hs, mask, &vv, &aa) == 0);
        assert (memcmp (vv.data, v.data, vdgx_tensor_nbytes (&v)) == 0);
        assert (memcmp (aa.data, a.data, vdgx_tensor_nbytes (&a)) == 0);
        vdgx_tensor_release (b, &hs);
        vdgx_tensor_release (b, &vv);
        vdgx_tensor_release (b, &aa);
        gemma3_destroy (&g);
        vdgx_tok_destroy (&tok);
    }
    //  a repeat is a hit: no Gemma, the same bytes
    assert (ltx2_prompt_encode (p, "a cat walks", &v2, &a2) == 0);
    ltx2_prompt_stats (p, &loads, &hits, &misses);
    assert (loads == 1 && hits == 1 && misses == 1);
    assert (memcmp (v.data, v2.data, vdgx_tensor_nbytes (&v)) == 0 && memcmp (a.data, a2.data, vdgx_tensor_nbytes (&a)) == 0);
    vdgx_tensor_release (b, &v2);
    vdgx_tensor_release (b, &a2);
    //  two new prompts in one call: one load; the cache (2) now drops the first prompt
    const char *two [2] = { "snow falls", "the lazy dog" };
    vdgx_tensor_t vs [2], as [2];
    assert (ltx2_prompt_encode_many (p, two, 2, vs, as) == 0);
    ltx2_prompt_stats (p, &loads, &hits, &misses);
    assert (loads == 2 && misses == 3 && memcmp (vs [0].data, vs [1].data, vdgx_tensor_nbytes (&vs [0])) != 0);
    for (int i = 0; i < 2; i++) {
        vdgx_tensor_release (b, &vs [i]);
        vdgx_tensor_release (b, &as [i]);
    }
    assert (ltx2_prompt_encode (p, "the lazy dog", &v2, &a2) == 0);
    ltx2_prompt_stats (p, &loads, &hits, &misses);
    assert (loads == 2 && hits == 2);
    vdgx_tensor_release (b, &v2);
    vdgx_tensor_release (b, &a2);
    assert (ltx2_prompt_encode (p, "a cat walks", &v2, &a2) == 0);
    ltx2_prompt_stats (p, &loads, &hits, &misses);
    assert (loads == 3 && misses == 4);
    assert (memcmp (v.data, v2.data, vdgx_tensor_nbytes (&v)) == 0);
    vdgx_tensor_release (b, &v2);
    vdgx_tensor_release (b, &a2);
    ltx2_prompt_destroy (&p);
    assert (!p);

    //  KEEP: Gemma stays until released; no cache: every call computes
    opt.policy = LTX2_GEMMA_KEEP;
    opt.cache_entries = 0;
    p = ltx2_prompt_new (text, b, &opt, &err);
    assert (p && !ltx2_prompt_frees_gemma (p));
    assert (ltx2_prompt_encode (p, "a cat walks", &v2, &a2) == 0 && ltx2_prompt_gemma_loaded (p));
    assert (memcmp (v.data, v2.data, vdgx_tensor_nbytes (&v)) == 0);
    vdgx_tensor_release (b, &v2);
    vdgx_tensor_release (b, &a2);
    assert (ltx2_prompt_encode (p, "a cat walks", &v2, &a2) == 0);
    ltx2_prompt_stats (p, &loads, &hits, &misses);
    assert (loads == 1 && hits == 0 && misses == 2);
    ltx2_prompt_release_gemma (p);
    assert (!ltx2_prompt_gemma_loaded (p));
    vdgx_tensor_release (b, &v2);
    vdgx_tensor_release (b, &a2);
    ltx2_prompt_destroy (&p);
    //  AUTO: frees when the host is short of Gemma + the reserve
    assert (ltx2_prompt_memory_short (128ULL << 30, 24ULL << 30, 110ULL << 30));
    assert (!ltx2_prompt_memory_short (256ULL << 30, 24ULL << 30, 110ULL << 30));
    opt.policy = LTX2_GEMMA_AUTO;
    opt.host_bytes = 1024;             //  below the tiny Gemma itself
    p = ltx2_prompt_new (text, b, &opt, &err);
    assert (p && ltx2_prompt_frees_gemma (p));
    ltx2_prompt_destroy (&p);
    opt.host_bytes = (size_t) 1 << 40;
    p = ltx2_prompt_new (text, b, &opt, &err);
    assert (p && !ltx2_prompt_frees_gemma (p));
    ltx2_prompt_destroy (&p);

    //  errors: the tokenizer or the weights missing, a Gemma that does not fit the text path
    opt.tokenizer_path = "/nonexistent/tokenizer.model";
    assert (!ltx2_prompt_new (text, b, &opt, &err) && strstr (err, "/nonexistent/tokenizer.model") && strstr (err, "Gemma tokenizer"));
    if (verbose)
        printf ("\n   %s", err);
    free (err);
    opt.tokenizer_path = tokpath;
    char empty [] = "/tmp/vdgx-ltx2-empty-XXXXXX";
    assert (mkdtemp (empty));
    opt.gemma_path = empty;
    assert (!ltx2_prompt_new (text, b, &opt, &err) && strstr (err, "Gemma weights") && strstr (err, empty));
    if (verbose)
        printf ("\n   %s", err);
    free (err);
    rmdir (empty);
    char wide [] = "/tmp/vdgx-ltx2-wide-XXXXXX";
    assert (mkdtemp (wide));
    gc.hidden = 40;
    assert (gemma3_write_random (wide, &gc, 4, false, &err) == 0);
    opt.gemma_path = wide;
    p = ltx2_prompt_new (text, b, &opt, &err);
    assert (p && ltx2_prompt_encode (p, "a cat", &v2, &a2) == -1 && strstr (ltx2_prompt_error (p), "does not fit"));
    if (verbose)
        printf ("\n   %s", ltx2_prompt_error (p));
    ltx2_prompt_destroy (&p);
    s_remove_dir (wide);

    vdgx_tensor_release (b, &v);
    vdgx_tensor_release (b, &a);
    ltx2_text_destroy (&text);
    free (src2);
    s_remove_dir (dir);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
