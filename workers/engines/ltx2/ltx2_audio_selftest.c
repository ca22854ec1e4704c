/*  ltx2_audio_selftest.c - ltx2_audio_test: the configuration (official defaults, the real
    LTX-2.3 vocoder + BWE settings, refused settings), loading the reference tiny checkpoints
    and the errors of rewritten copies (missing tensor, shape against config), the latent and
    token layouts decoding alike, output length and range, bad latents, random weights and
    the memory estimate. The official outputs are checked by
    `vdgx-refcheck ltx2|ltx23 --part audio`. Needs VDGX_SOURCE_DIR (ctest sets it).
*/
#include "ltx2_audio.h"
#include "vdgx_nn.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
s_reference (const char *set)
{
    const char *src = getenv ("VDGX_SOURCE_DIR");
    assert (src && "VDGX_SOURCE_DIR must name the source tree (ctest sets it)");
    return zsys_sprintf ("%s/tests/data/reference/%s/tiny_checkpoint.safetensors", src, set);
}

//  The parse error of config (NULL when it parses).
static char *
s_parse_error (const char *config)
{
    ltx2_audio_config_t c;
    char *err = NULL;
    int rc = ltx2_audio_config_parse (config, &c, &err);
    assert ((rc == 0) == (err == NULL));
    return err;
}

//  Writes the audio tensors of src (minus drop) with metadata config to path; returns the
//  error of loading it (caller frees), NULL when it loads.
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
        if ((strncmp (t->name, "audio_vae.", 10) == 0 || strncmp (t->name, "vocoder.", 8) == 0)
         && !(drop && strcmp (t->name, drop) == 0))
            list [m++] = *t;
    }
    const char *cfg = config? config: vdgx_ckpt_metadata (ck, "config");
    const char *meta [] = { "config", cfg, NULL };
    assert (vdgx_safetensors_write_meta (path, list, m, meta, NULL) == 0);
    free (list);
    vdgx_ckpt_destroy (&ck);
    char *err = NULL;
    ck = vdgx_ckpt_open (path, &err);
    assert (ck);
    ltx2_audio_t *a = ltx2_audio_new (ck, b, &err);
    assert ((a == NULL) == (err != NULL));
    ltx2_audio_destroy (&a);
    vdgx_ckpt_destroy (&ck);
    return err;
}

static void
s_keep_mel (void *arg, const char *name, const vdgx_tensor_t *t)
{
    float **mel = (float **) arg;
    if (strcmp (name, "mel"))
        return;
    assert (t->ndim == 4 && t->dtype == VDGX_DTYPE_F32);
    *mel = (float *) malloc (vdgx_tensor_nbytes (t));
    memcpy (*mel, t->data, vdgx_tensor_nbytes (t));         //  CPU backend: host memory
}

//  Decodes a random latent of T frames both as [1, z, T, F] and as tokens [T, z*F]; checks
//  they agree, the length and the range. Returns the samples per channel.
static int64_t
s_decode_both (ltx2_audio_t *a, vdgx_backend_t *b, int64_t T)
{
    const ltx2_audio_config_t *c = ltx2_audio_config (a);
    const int64_t Z = c->z_channels, F = c->latent_mel_bins;
    float *lat = (float *) malloc (sizeof (float) * (size_t) (Z * T * F));
    float *tok = (float *) malloc (sizeof (float) * (size_t) (Z * T * F));
    uint64_t rng = 7;
    for (int64_t i = 0; i < Z * T * F; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        lat [i] = (float) ((double) (rng >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
    for (int64_t z = 0; z < Z; z++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t f = 0; f < F; f++)
                tok [t * Z * F + z * F + f] = lat [(z * T + t) * F + f];
    const int64_t ls [4] = { 1, Z, T, F }, ts [2] = { T, Z * F };
    vdgx_tensor_t tl, tt;
    assert (vdgx_tensor_alloc (b, &tl, VDGX_DTYPE_F32, 4, ls) == 0 && vdgx_tensor_from_f32 (b, &tl, lat) == 0);
    assert (vdgx_tensor_alloc (b, &tt, VDGX_DTYPE_F32, 2, ts) == 0 && vdgx_tensor_from_f32 (b, &tt, tok) == 0);
    float *p1 = NULL, *p2 = NULL, *mel = NULL;
    int64_t n1 = 0, n2 = 0;
    char *err = NULL;
    ltx2_audio_set_tap (a, s_keep_mel, &mel);
    assert (ltx2_audio_decode (a, &tl, &p1, &n1, &err) == 0);
    ltx2_audio_set_tap (a, NULL, NULL);
    //  The vocoder alone on the decoder's mel gives the same waveform.
    const int64_t ms [4] = { 1, c->out_ch, 4 * T - 3, c->mel_bins };
    vdgx_tensor_t tm;
    float *p4 = NULL;
    int64_t n4 = 0;
    assert (mel && vdgx_tensor_alloc (b, &tm, VDGX_DTYPE_F32, 4, ms) == 0 && vdgx_tensor_from_f32 (b, &tm, mel) == 0);
    assert (ltx2_audio_vocode (a, &tm, &p4, &n4, &err) == 0 && n4 == ltx2_audio_samples (c, T));
    assert (memcmp (p4, p1, sizeof (float) * (size_t) (2 * n4)) == 0);
    vdgx_tensor_t bad_mel = vdgx_nn_view4 (&tm, 1, c->out_ch, c->mel_bins, 4 * T - 3);
    free (p4);
    p4 = NULL;
    assert (T == 4 * T - 3 || (ltx2_audio_vocode (a, &bad_mel, &p4, &n4, &err) == -1 && err && !p4));
    vdgx_tensor_release (b, &tm);
    free (mel);
    assert (ltx2_audio_decode (a, &tt, &p2, &n2, &err) == 0);
    assert (n1 == n2 && n1 == ltx2_audio_samples (c, T));
    assert (memcmp (p1, p2, sizeof (float) * (size_t) (2 * n1)) == 0);
    bool differ = false;
    for (int64_t i = 0; i < 2 * n1; i++) {
        assert (isfinite (p1 [i]) && p1 [i] >= -1.0f && p1 [i] <= 1.0f);
        differ |= i % 2 && p1 [i] != p1 [i - 1];
    }
    assert (differ);                    //  two channels, not one copied
    //  A latent of the wrong layout is an error, not a crash.
    const int64_t bad [4] = { 1, Z + 1, T, F };
    vdgx_tensor_t tb;
    float *p3 = NULL;
    int64_t n3 = 0;
    assert (vdgx_tensor_alloc (b, &tb, VDGX_DTYPE_F32, 4, bad) == 0);
    assert (ltx2_audio_decode (a, &tb, &p3, &n3, &err) == -1 && err && !p3 && n3 == 0);
    vdgx_tensor_release (b, &tb);
    free (err);
    free (p1);
    free (p2);
    free (lat);
    free (tok);
    vdgx_tensor_release (b, &tl);
    vdgx_tensor_release (b, &tt);
    return n1;
}

void
ltx2_audio_test (bool verbose)
{
    printf (" * ltx2_audio: ");
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);

    //  Configuration: the defaults are the LTX-2 19B audio VAE + vocoder, except the mid-block
    //  attention the code defaults to (refused; every released config turns it off).
    ltx2_audio_config_t c;
    char *e0 = s_parse_error (NULL);
    assert (e0 && strstr (e0, "mid_block_add_attention"));
    free (e0);
    assert (ltx2_audio_config_parse ("{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": "
                                     "{\"mid_block_add_attention\": false}}}}}", &c, &err) == 0);
    assert (c.ch == 128 && c.levels == 3 && c.z_channels == 8 && c.latent_mel_bins == 16
         && c.stats_channels == 128 && !c.bwe && !c.vocoder.amp && c.vocoder.initial_channel == 1024
         && c.vocoder.num_ups == 5 && c.output_rate == 24000 && c.vocoder.final_tanh);
    assert (ltx2_audio_samples (&c, 25) == (4 * 25 - 3) * 240 && ltx2_audio_samples (&c, 0) == 0);
    //  ... and the real LTX-2.3 vocoder with the bandwidth extension.
    ltx2_audio_config_t c19;
    ltx2_audio_config_released (&c19, false);
    assert (memcmp (&c19, &c, sizeof (c)) == 0);
    ltx2_audio_config_released (&c, true);
    assert (c.bwe && c.vocoder.amp && c.bwe_gen.amp && c.vocoder_rate == 16000 && c.output_rate == 48000
         && c.vocoder.initial_channel == 1536 && c.vocoder.num_ups == 6 && !c.vocoder.final_bias
         && c.vocoder.final_act && !c.vocoder.final_tanh && !c.bwe_gen.final_act && c.bwe_hop == 80
         && c.bwe_n_fft == 512 && c.bwe_mels == 64);
    assert (ltx2_audio_samples (&c, 25) == (4 * 25 - 3) * 160 * 3);
    size_t est1 = ltx2_audio_memory_estimate (&c, 25), est2 = ltx2_audio_memory_estimate (&c, 125);
    assert (est1 > 4 * (size_t) 129000000 && est2 > est1);     //  129 M vocoder+BWE parameters alone
    if (verbose)
        printf ("\n  LTX-2.3 memory estimate: %.0f MB for 1 s, %.0f MB for 5 s\n", est1 / 1e6, est2 / 1e6);
    //  Refused settings, each with a message.
    const char *bad [] = {
        "not json",
        "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": {\"mid_block_add_attention\": true}}}}}",
        "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": {\"mid_block_add_attention\": false, "
            "\"attn_resolutions\": [64]}}}}}",
        "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": {\"mid_block_add_attention\": false, "
            "\"norm_type\": \"group\"}}}}}",
        "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": {\"mid_block_add_attention\": false, "
            "\"ch_mult\": \"1,2,4\"}}}}}",
        "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": {\"mid_block_add_attention\": false}}}}, "
            "\"vocoder\": {\"resblock\": \"2\"}}",
        "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": {\"mid_block_add_attention\": false}}}}, "
            "\"vocoder\": {\"upsample_rates\": [6, 5, 2, 2], \"upsample_kernel_sizes\": [16, 15, 8, 4]}}",
        "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": {\"mid_block_add_attention\": false}}}}, "
            "\"vocoder\": {\"vocoder\": {\"resblock\": \"AMP1\"}, \"bwe\": {\"resblock\": \"AMP1\"}}}",
        "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": {\"mid_block_add_attention\": false}}}}, "
            "\"vocoder\": {\"upsample_initial_channel\": -4}}",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        char *e = s_parse_error (bad [i]);
        if (verbose)
            printf ("  refused: %s\n", e? e: "(nothing)");
        assert (e && strstr (e, "LTX-2 checkpoint"));
        free (e);
    }

    //  The reference tiny checkpoints: both layouts decode alike, in range, at the right length.
    for (int v = 0; v < 2; v++) {
        char *path = s_reference (v? "ltx23": "ltx2");
        vdgx_ckpt_t *ck = vdgx_ckpt_open (path, &err);
        assert (ck);
        ltx2_audio_t *a = ltx2_audio_new (ck, b, &err);
        vdgx_ckpt_destroy (&ck);
        assert (a && !err);
        assert (ltx2_audio_sample_rate (a) == (v? 48000: 24000) && ltx2_audio_config (a)->bwe == (v == 1));
        assert (ltx2_audio_weight_bytes (a) > 0
             && ltx2_audio_memory_estimate (ltx2_audio_config (a), 6) > ltx2_audio_weight_bytes (a));
        int64_t n = s_decode_both (a, b, 6);
        if (verbose)
            printf ("  %s: 6 latent frames -> %lld samples at %d Hz, %zu weight bytes\n", v? "ltx23": "ltx2",
                    (long long) n, ltx2_audio_sample_rate (a), ltx2_audio_weight_bytes (a));
        assert (s_decode_both (a, b, 1) == ltx2_audio_samples (ltx2_audio_config (a), 1));
        ltx2_audio_destroy (&a);
        assert (a == NULL);
        ltx2_audio_destroy (&a);
        zstr_free (&path);
    }

    //  Rewritten checkpoints: a missing tensor and a config that does not fit the shapes are
    //  errors naming the tensor; no config at all is an error too.
    char dir [] = "/tmp/vdgx-ltx2-audio-XXXXXX";
    assert (mkdtemp (dir));
    char *out = zsys_sprintf ("%s/variant.safetensors", dir);
    char *src2 = s_reference ("ltx2"), *src23 = s_reference ("ltx23");
    char *e = s_load_variant (src2, out, NULL, NULL, b);
    assert (e == NULL);
    e = s_load_variant (src23, out, NULL, "vocoder.bwe_generator.resblocks.4.acts2.1.downsample.lowpass.filter", b);
    assert (e && strstr (e, "vocoder.bwe_generator.resblocks.4.acts2.1.downsample.lowpass.filter"));
    free (e);
    e = s_load_variant (src2, out, NULL, "audio_vae.per_channel_statistics.mean-of-means", b);
    assert (e && strstr (e, "mean-of-means"));
    free (e);
    e = s_load_variant (src2, out, "{\"audio_vae\": {\"model\": {\"params\": {\"ddconfig\": "
                        "{\"ch\": 32, \"mid_block_add_attention\": false}}}}}", NULL, b);
    assert (e && strstr (e, "audio_vae.decoder.conv_in.conv.weight"));
    if (verbose)
        printf ("  shape error: %s\n", e);
    free (e);
    vdgx_ckpt_tensor_t none [1];
    memset (none, 0, sizeof (none));
    assert (vdgx_safetensors_write (out, none, 0, NULL) == 0);
    vdgx_ckpt_t *ck = vdgx_ckpt_open (out, &err);
    assert (ck);
    ltx2_audio_t *a = ltx2_audio_new (ck, b, &err);
    assert (!a && err && strstr (err, "no __metadata__"));
    free (err);
    err = NULL;
    vdgx_ckpt_destroy (&ck);
    remove (out);
    rmdir (dir);
    zstr_free (&out);
    zstr_free (&src2);
    zstr_free (&src23);

    //  Random weights of a small BWE configuration decode too (benchmarks use full size).
    ltx2_audio_config_released (&c, true);
    c.ch = 8;
    c.vocoder.initial_channel = 64;
    c.bwe_gen.initial_channel = 32;
    a = ltx2_audio_new_random (&c, 3, b, &err);
    assert (a);
    s_decode_both (a, b, 3);
    ltx2_audio_destroy (&a);

    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
