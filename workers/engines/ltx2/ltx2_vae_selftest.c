/*  ltx2_vae_selftest.c - ltx2_vae_test: the video VAE decoder's config parsing and its errors,
    load errors on rewritten copies of the reference tiny checkpoints (wrong shape, missing
    tensor, no metadata), decode sizes, clamping, the default noise (torch.randn of the seed),
    cancel and consumer stop, random decoders and the memory estimate. The official outputs
    are checked by `vdgx-refcheck ltx2|ltx23 --part video_vae`. Needs VDGX_SOURCE_DIR (the
    reference checkpoints under tests/data/reference/); ctest sets it.
*/
#include "ltx2_vae.h"
#include "vdgx_torchrng.h"
#include "vdgx_util.h"

#include <assert.h>
#include <jansson.h>
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
    return vdgx_strdupf ("%s/tests/data/reference/%s/tiny_checkpoint.safetensors", src, set);
}

//  Parse error of a config, NULL when it parses (caller frees).
static char *
s_parse_err (const char *json, int base)
{
    ltx2_vae_config_t cfg;
    char *err = NULL;
    int rc = ltx2_vae_config_parse (json, base, &cfg, &err);
    assert ((rc == 0) == (err == NULL));
    return err;
}

//  Writes the vae.* tensors of src to a temporary file: `drop` left out, `reshape` given a
//  wrong first dimension, metadata config as `config` says (NULL: none). Returns the load
//  error (caller frees), NULL when it loads.
static char *
s_load_variant (const char *src, const char *config, const char *drop, const char *reshape,
                vdgx_backend_t *b)
{
    vdgx_ckpt_t *ck = vdgx_ckpt_open (src, NULL);
    assert (ck);
    size_t n = vdgx_ckpt_count (ck), m = 0;
    vdgx_ckpt_tensor_t *list = (vdgx_ckpt_tensor_t *) calloc (n, sizeof (*list));
    for (size_t i = 0; i < n; i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (ck, i);
        if (strncmp (t->name, "vae.", 4) || (drop && strcmp (t->name, drop) == 0))
            continue;
        list [m] = *t;
        if (reshape && strcmp (t->name, reshape) == 0) {
            //  Same bytes, other shape: [a, b, ...] -> [a/2, 2b, ...].
            assert (t->shape [0] % 2 == 0);
            list [m].shape [0] /= 2;
            list [m].shape [1] *= 2;
        }
        m++;
    }
    char path [] = "/tmp/ltx2-vae-test-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    const char *meta [] = { "config", config, NULL };
    assert (vdgx_safetensors_write_meta (path, list, m, config? meta: NULL, NULL) == 0);
    free (list);
    vdgx_ckpt_destroy (&ck);
    char *err = NULL;
    ltx2_vae_t *vae = ltx2_vae_new (path, b, &err);
    assert ((vae == NULL) == (err != NULL));
    ltx2_vae_destroy (&vae);
    unlink (path);
    return err;
}

typedef struct {
    int frames, width, height, stop_at;
    double max_abs, sum;
} s_sink_t;

static int
s_sink (void *ctx, int index, const float *chw, int width, int height)
{
    s_sink_t *s = (s_sink_t *) ctx;
    assert (index == s->frames);
    s->frames++;
    s->width = width;
    s->height = height;
    for (size_t i = 0; i < (size_t) 3 * (size_t) width * (size_t) height; i++) {
        s->max_abs = fmax (s->max_abs, fabs (chw [i]));
        s->sum += chw [i] * (double) (i % 7 + 1);
    }
    return index == s->stop_at? -1: 0;
}

void
ltx2_vae_test (bool verbose)
{
    printf (" * ltx2_vae: ");
    if (verbose)
        printf ("\n");
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);

    //  Config parsing: the 2.3 block list, reversed into decode order, and its widths.
    const char *v23 = "{\"latent_channels\": 8, \"patch_size\": 4, \"decoder_base_channels\": 4,"
        "\"decoder_blocks\": [[\"res_x\", {\"num_layers\": 1}], [\"compress_space\", {\"multiplier\": 2}],"
        "[\"res_x\", {\"num_layers\": 2}], [\"compress_time\", {\"multiplier\": 2}], [\"res_x\", {\"num_layers\": 1}],"
        "[\"compress_all\", {\"multiplier\": 1}], [\"res_x\", {\"num_layers\": 1}],"
        "[\"compress_all\", {\"multiplier\": 2}], [\"res_x\", {\"num_layers\": 1}]],"
        "\"norm_layer\": \"pixel_norm\", \"causal_decoder\": false, \"spatial_padding_mode\": \"reflect\","
        "\"timestep_conditioning\": false}";
    ltx2_vae_config_t cfg;
    assert (ltx2_vae_config_parse (v23, 0, &cfg, &err) == 0);
    assert (cfg.nblocks == 9 && cfg.blocks [1].kind == LTX2_VAE_COMPRESS_ALL && cfg.blocks [1].multiplier == 2);
    assert (cfg.blocks [5].kind == LTX2_VAE_COMPRESS_TIME && cfg.blocks [7].kind == LTX2_VAE_COMPRESS_SPACE);
    assert (cfg.blocks [0].in_channels == 32 && cfg.blocks [8].out_channels == 4 && cfg.blocks [6].layers == 2);
    assert (cfg.time_scale == 8 && cfg.space_scale == 32 && !cfg.timestep_conditioning);
    static const struct { const char *json; const char *want; } bad [] = {
        { "not json", "not a JSON object" },
        { "{\"decoder_blocks\": []}", "decoder_blocks" },
        { "{\"decoder_blocks\": [[\"res_x_y\", {}]]}", "res_x_y" },
        { "{\"decoder_blocks\": [[\"res_x\", {\"inject_noise\": true}]]}", "inject_noise" },
        { "{\"causal_decoder\": true, \"decoder_blocks\": [[\"res_x\", {}]]}", "causal_decoder" },
        { "{\"norm_layer\": \"group_norm\", \"decoder_blocks\": [[\"res_x\", {}]]}", "pixel_norm" },
        { "{\"decoder_blocks\": [[\"compress_all\", {\"multiplier\": 0}]]}", "multiplier" },
        { "{\"latent_channels\": 0, \"decoder_blocks\": [[\"res_x\", {}]]}", "latent_channels" },
        { "{\"decoder_blocks\": [[\"res_x\", {\"num_layers\": \"2\"}]]}", "num_layers" },
        { "{\"spatial_padding_mode\": \"zeros\", \"decoder_blocks\": [[\"res_x\", {}]]}", "reflect" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char *e = s_parse_err (bad [i].json, 8);
        if (verbose)
            printf ("  config error: %s\n", e? e: "(none)");
        assert (e && strstr (e, bad [i].want));
        free (e);
    }
    char *e = s_parse_err ("{\"decoder_blocks\": [[\"res_x\", {}]]}", 0);
    assert (e && strstr (e, "decoder_base_channels"));
    free (e);

    //  Load errors on rewritten reference checkpoints.
    char *src23 = s_reference ("ltx23"), *src2 = s_reference ("ltx2");
    vdgx_ckpt_t *ck = vdgx_ckpt_open (src23, NULL);
    assert (ck);
    char *config = strdup (vdgx_ckpt_metadata (ck, "config"));
    vdgx_ckpt_destroy (&ck);
    assert ((e = s_load_variant (src23, config, NULL, NULL, b)) == NULL);
    e = s_load_variant (src23, config, "vae.decoder.up_blocks.3.conv.conv.weight", NULL, b);
    assert (e && strstr (e, "up_blocks.3.conv.conv.weight") && strstr (e, "missing"));
    free (e);
    e = s_load_variant (src23, config, NULL, "vae.decoder.up_blocks.6.res_blocks.1.conv2.conv.weight", b);
    if (verbose)
        printf ("  shape error: %s\n", e);
    assert (e && strstr (e, "res_blocks.1.conv2.conv.weight") && strstr (e, "shape"));
    free (e);
    e = s_load_variant (src23, NULL, NULL, NULL, b);
    assert (e && strstr (e, "__metadata__"));
    free (e);
    //  Conditioning asked for without the time embedders.
    json_t *root = json_loads (config, 0, NULL);
    assert (root && json_is_object (json_object_get (root, "vae")));
    json_object_set_new (json_object_get (root, "vae"), "timestep_conditioning", json_true ());
    char *tc = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    e = s_load_variant (src23, tc, NULL, NULL, b);
    assert (e && strstr (e, "time_embedder"));
    free (e);
    free (tc);
    free (config);
    assert (ltx2_vae_new ("/nonexistent/ltx2.safetensors", b, &err) == NULL && err);
    free (err);
    err = NULL;

    //  Decoding: sizes, clamping, cancel, a consumer that stops, bad sizes.
    ltx2_vae_t *vae = ltx2_vae_new (src23, b, &err);
    assert (vae && !ltx2_vae_config (vae)->timestep_conditioning && ltx2_vae_weight_bytes (vae) > 0);
    const int64_t F = 2, H = 2, W = 3;
    size_t n = (size_t) (8 * F * H * W);
    float *latent = (float *) malloc (n * sizeof (float));
    vdgx_torchrng_t *rng = vdgx_torchrng_new (5);
    vdgx_torchrng_randn (rng, latent, n);
    vdgx_torchrng_destroy (&rng);
    s_sink_t sink = { .stop_at = -1 };
    assert (ltx2_vae_decode (vae, latent, F, H, W, NULL, s_sink, &sink, &err) == 0);
    assert (sink.frames == 9 && sink.width == 96 && sink.height == 64 && sink.max_abs <= 1.0);
    ltx2_vae_decode_opts_t raw = { .raw = true };
    s_sink_t unclamped = { .stop_at = -1 };
    assert (ltx2_vae_decode (vae, latent, F, H, W, &raw, s_sink, &unclamped, &err) == 0);
    if (verbose)
        printf ("  max |pixel| clamped %.3f, raw %.3f\n", sink.max_abs, unclamped.max_abs);
    atomic_int cancel = 1;
    ltx2_vae_decode_opts_t opts = { .cancel = &cancel };
    s_sink_t none = { .stop_at = -1 };
    assert (ltx2_vae_decode (vae, latent, F, H, W, &opts, s_sink, &none, &err) == -2 && none.frames == 0);
    s_sink_t stop = { .stop_at = 3 };
    assert (ltx2_vae_decode (vae, latent, F, H, W, NULL, s_sink, &stop, &err) == -1 && stop.frames == 4);
    assert (err && strstr (err, "stopped"));
    free (err);
    err = NULL;
    assert (ltx2_vae_decode (vae, latent, 0, H, W, NULL, s_sink, &none, &err) == -1 && err);
    free (err);
    err = NULL;
    ltx2_vae_destroy (&vae);
    assert (vae == NULL);

    //  Timestep-conditioned (LTX-2): without noise the decoder draws torch.randn (seed), so
    //  the same seed repeats, the drawn noise given explicitly matches, another seed differs.
    vae = ltx2_vae_new (src2, b, &err);
    assert (vae && ltx2_vae_config (vae)->timestep_conditioning);
    float *noise = (float *) malloc (n * sizeof (float));
    rng = vdgx_torchrng_new (42);
    vdgx_torchrng_randn (rng, noise, n);
    vdgx_torchrng_destroy (&rng);
    s_sink_t a = { .stop_at = -1 }, a2 = { .stop_at = -1 }, a3 = { .stop_at = -1 }, c = { .stop_at = -1 };
    ltx2_vae_decode_opts_t seeded = { .seed = 42 }, given = { .noise = noise }, other = { .seed = 43 };
    assert (ltx2_vae_decode (vae, latent, F, H, W, &seeded, s_sink, &a, &err) == 0);
    assert (ltx2_vae_decode (vae, latent, F, H, W, &seeded, s_sink, &a2, &err) == 0);
    assert (ltx2_vae_decode (vae, latent, F, H, W, &given, s_sink, &a3, &err) == 0);
    assert (ltx2_vae_decode (vae, latent, F, H, W, &other, s_sink, &c, &err) == 0);
    if (verbose)
        printf ("  seeded decodes: %.9g %.9g %.9g, other seed %.9g\n", a.sum, a2.sum, a3.sum, c.sum);
    assert (a.sum == a2.sum && a.sum == a3.sum && a.sum != c.sum);
    ltx2_vae_destroy (&vae);
    free (noise);
    free (latent);

    //  A random decoder of the parsed config; the memory estimate grows with the latent.
    vae = ltx2_vae_new_random (&cfg, b, 7, &err);
    assert (vae && ltx2_vae_weight_bytes (vae) > 0);
    latent = (float *) calloc ((size_t) (8 * 1 * 2 * 2), sizeof (float));
    s_sink_t r = { .stop_at = -1 };
    assert (ltx2_vae_decode (vae, latent, 1, 2, 2, NULL, s_sink, &r, &err) == 0);
    assert (r.frames == 1 && r.width == 64 && r.height == 64);
    //  Reflect padding needs 2 latent pixels per side.
    assert (ltx2_vae_decode (vae, latent, 1, 1, 2, NULL, s_sink, &r, &err) == -1 && strstr (err, "sides"));
    free (err);
    err = NULL;
    free (latent);
    ltx2_vae_destroy (&vae);
    uint64_t small = ltx2_vae_activation_bytes (&cfg, 2, 2, 3, 4);
    uint64_t big = ltx2_vae_activation_bytes (&cfg, 16, 16, 24, 4);
    //  The largest tensor of the small case: 4 channels x 9 x 64 x 96 before the 48-channel
    //  conv_out's 48 x 9 x 16 x 24 (x 7 copies, 4 bytes).
    assert (small >= (uint64_t) 7 * 4 * 48 * 9 * 16 * 24 && big > 60 * small);
    if (verbose)
        printf ("  activation estimate: %llu bytes (2x2x3), %llu (16x16x24)\n",
                (unsigned long long) small, (unsigned long long) big);

    free (src23);
    free (src2);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
