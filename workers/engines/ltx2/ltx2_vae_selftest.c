/*  ltx2_vae_selftest.c - ltx2_vae_test: the video VAE decoder's config parsing and its errors,
    load errors on rewritten copies of the reference tiny checkpoints (wrong shape, missing
    tensor, no metadata), decode sizes, clamping, the default noise (torch.randn of the seed),
    cancel and consumer stop, random decoders and the memory estimate; tiled decoding (tile
    plans and blend weights, whole-covering tiles equal to the whole decode, single-tile
    regions equal to that tile's own decode, lower peak backend memory). The official outputs
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

//  Collects every frame [3][h][w] into one buffer (frames in order).
typedef struct {
    float *data;
    int frames, width, height;
} s_video_t;

static int
s_collect (void *ctx, int index, const float *chw, int width, int height)
{
    s_video_t *v = (s_video_t *) ctx;
    assert (index == v->frames);
    size_t n = (size_t) 3 * (size_t) width * (size_t) height;
    v->data = (float *) realloc (v->data, (size_t) (index + 1) * n * sizeof (float));
    assert (v->data);
    memcpy (v->data + (size_t) index * n, chw, n * sizeof (float));
    v->frames++;
    v->width = width;
    v->height = height;
    return 0;
}

//  Decodes on a fresh backend (so its peak is this decode's): returns the backend's peak
//  bytes less the weights.
static uint64_t
s_decode_fresh (const ltx2_vae_config_t *cfg, const float *latent, int64_t F, int64_t H, int64_t W,
                const ltx2_vae_decode_opts_t *opts, s_video_t *v)
{
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);
    ltx2_vae_t *vae = ltx2_vae_new_random (cfg, b, 11, &err);
    assert (vae);
    size_t before = vdgx_backend_peak_bytes (b);
    int rc = ltx2_vae_decode (vae, latent, F, H, W, opts, s_collect, v, &err);
    if (rc)
        fprintf (stderr, "decode: %s\n", err);
    assert (rc == 0);
    uint64_t peak = vdgx_backend_peak_bytes (b) - before;
    ltx2_vae_destroy (&vae);
    vdgx_backend_destroy (&b);
    return peak;
}

//  Tiled decoding: the official tile plan (counts and blend weights summing to 1), tilings
//  covering the whole latent decode exactly as the whole decode, real overlaps stay close
//  to it, the peak backend memory falls, bad tilings are refused.
static void
s_tiling_test (const ltx2_vae_config_t *cfg, const char *src2, bool verbose)
{
    char *err = NULL;
    //  768x512x121 (latent 16 x 16 x 24) with the default: height tiles of round (16 * 16 /
    //  24) = 11 latent pixels (2), width 16 (2), time 8 latent frames with stride 5 (3).
    ltx2_vae_tiling_t dflt = LTX2_VAE_TILING_DEFAULT;
    assert (ltx2_vae_tiling_plan (cfg, &dflt, 16, 16, 24, NULL, &err) == 12);
    assert (ltx2_vae_tiling_plan (cfg, NULL, 16, 16, 24, NULL, &err) == 1);
    //  Where every tile is at least twice the overlap the summed weights are 1 everywhere;
    //  smaller tiles (a short side's tile of 3 latent pixels with overlap 2 here) overlap
    //  three deep and sum above 1 in places, which the division by the summed weights (as in
    //  the official tiled_decode) normalises.
    static const struct { int64_t f, h, w; ltx2_vae_tiling_t t; bool unit; } plans [] = {
        { 16, 16, 24, { 512, 64, 64, 24 }, true },      //  768x512x121
        { 33, 34, 60, { 512, 64, 64, 24 }, true },      //  1920x1088x257
        { 31, 24, 24, { 512, 64, 64, 24 }, true },
        { 61, 40, 23, { 768, 64, 80, 24 }, true },      //  the later ltx-core default
        { 40, 10, 30, { 256, 32, 32, 8 }, true },
        { 9, 7, 12, { 128, 64, 16, 8 }, false },
        { 4, 5, 6, { 128, 64, 16, 8 }, false },
        { 20, 9, 9, { 96, 32, 24, 16 }, false },
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans [0]; i++) {
        int64_t len [3] = { 8 * (plans [i].f - 1) + 1, 32 * plans [i].h, 32 * plans [i].w };
        float *sums [3];
        for (int a = 0; a < 3; a++)
            sums [a] = (float *) malloc ((size_t) len [a] * sizeof (float));
        int64_t n = ltx2_vae_tiling_plan (cfg, &plans [i].t, plans [i].f, plans [i].h, plans [i].w, sums, &err);
        assert (n > 1);
        double worst = 0, least = 1;
        for (int a = 0; a < 3; a++)
            for (int64_t k = 0; k < len [a]; k++) {
                worst = fmax (worst, fabs (sums [a][k] - 1.0));
                least = fmin (least, sums [a][k]);
            }
        if (verbose)
            printf ("  plan %lldx%lldx%lld: %lld tiles, max |weight sum - 1| %.2g\n", (long long) plans [i].f,
                    (long long) plans [i].h, (long long) plans [i].w, (long long) n, worst);
        assert (plans [i].unit? worst < 1e-6: worst > 0.01 && least > 1 - 1e-6);
        for (int a = 0; a < 3; a++)
            free (sums [a]);
    }
    //  Bad tilings, as the official TilingConfig checks.
    static const ltx2_vae_tiling_t bad [] = {
        { 32, 0, 0, 0 }, { 100, 0, 0, 0 }, { 128, 16, 0, 0 }, { 128, 128, 0, 0 },
        { 0, 0, 8, 0 }, { 0, 0, 20, 0 }, { 0, 0, 16, 4 }, { 0, 0, 16, 16 }, { 0, 32, 0, 0 }, { -64, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert (ltx2_vae_tiling_plan (cfg, &bad [i], 4, 4, 4, NULL, &err) == -1 && err && strstr (err, "tiles must"));
        free (err);
        err = NULL;
    }

    //  Tiles covering the whole latent: the same frames, bit for bit (timestep-conditioned
    //  LTX-2 reference decoder, seeded noise; the one tile draws what the whole decode draws).
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    ltx2_vae_t *vae = ltx2_vae_new (src2, b, &err);
    assert (vae && ltx2_vae_config (vae)->timestep_conditioning);
    const int64_t F = 4, H = 5, W = 6;
    size_t n = (size_t) (8 * F * H * W);
    float *latent = (float *) malloc (n * sizeof (float)), *noise = (float *) malloc (n * sizeof (float));
    vdgx_torchrng_t *rng = vdgx_torchrng_new (9);
    vdgx_torchrng_randn (rng, latent, n);
    vdgx_torchrng_randn (rng, noise, n);
    vdgx_torchrng_destroy (&rng);
    s_video_t whole = { 0 }, covered = { 0 };
    ltx2_vae_decode_opts_t wo = { .seed = 3 }, co = { .seed = 3, .tiling = LTX2_VAE_TILING_DEFAULT };
    assert (ltx2_vae_decode (vae, latent, F, H, W, &wo, s_collect, &whole, &err) == 0);
    assert (ltx2_vae_decode (vae, latent, F, H, W, &co, s_collect, &covered, &err) == 0);
    size_t pixels = (size_t) whole.frames * 3 * (size_t) whole.width * (size_t) whole.height;
    assert (whole.frames == 25 && covered.frames == 25 && covered.width == 192 && covered.height == 160);
    assert (memcmp (whole.data, covered.data, pixels * sizeof (float)) == 0);
    free (covered.data);

    //  Real overlaps, 8 tiles (the given noise cut per tile): latent time [0, 3) [1, 4),
    //  height [0, 4) [2, 5), width [0, 5) [3, 6); pixels frames [0, 17) [8, 25), rows
    //  [0, 128) [64, 160), columns [0, 160) [96, 192). Where one tile alone has weight 1 the
    //  output is that tile decoded as a whole latent, bit for bit: frames [0, 9) x rows
    //  [0, 64) x columns [0, 96) of the first tile, frames [17, 25) x rows [128, 160) x
    //  columns [160, 192) of the last (frame 8 too: the later tile's weight there is 0).
    //  Elsewhere it stays near the whole decode (a tiny decoder on tiles of 3 to 5 latent
    //  pixels: edge effects reach every pixel, so the bound is loose).
    ltx2_vae_decode_opts_t tn = { .noise = noise, .tiling = { 160, 64, 24, 8 } }, wn = { .noise = noise };
    assert (ltx2_vae_tiling_plan (ltx2_vae_config (vae), &tn.tiling, F, H, W, NULL, &err) == 8);
    s_video_t tiled = { 0 };
    free (whole.data);
    whole = (s_video_t) { 0 };
    assert (ltx2_vae_decode (vae, latent, F, H, W, &wn, s_collect, &whole, &err) == 0);
    assert (ltx2_vae_decode (vae, latent, F, H, W, &tn, s_collect, &tiled, &err) == 0);
    assert (tiled.frames == 25 && tiled.width == 192 && tiled.height == 160);
    static const struct { int64_t box [6]; int64_t frames [2], rows [2], cols [2]; } alone [] = {
        { { 0, 3, 0, 4, 0, 5 }, { 0, 9 }, { 0, 64 }, { 0, 96 } },
        { { 1, 4, 2, 5, 3, 6 }, { 17, 25 }, { 128, 160 }, { 160, 192 } },
    };
    for (int k = 0; k < 2; k++) {
        const int64_t *bx = alone [k].box;
        int64_t tf = bx [1] - bx [0], th = bx [3] - bx [2], tw = bx [5] - bx [4];
        size_t tn_ = (size_t) (8 * tf * th * tw);
        float *sl = (float *) malloc (tn_ * sizeof (float)), *sn = (float *) malloc (tn_ * sizeof (float));
        size_t i = 0;
        for (int64_t ch = 0; ch < 8; ch++)
            for (int64_t f = bx [0]; f < bx [1]; f++)
                for (int64_t y = bx [2]; y < bx [3]; y++)
                    for (int64_t x = bx [4]; x < bx [5]; x++, i++) {
                        sl [i] = latent [((ch * F + f) * H + y) * W + x];
                        sn [i] = noise [((ch * F + f) * H + y) * W + x];
                    }
        ltx2_vae_decode_opts_t so = { .noise = sn };
        s_video_t sub = { 0 };
        assert (ltx2_vae_decode (vae, sl, tf, th, tw, &so, s_collect, &sub, &err) == 0);
        int64_t f0 = 8 * bx [0], y0 = 32 * bx [2], x0 = 32 * bx [4];
        size_t checked = 0;
        for (int64_t f = alone [k].frames [0]; f < alone [k].frames [1]; f++)
            for (int ch = 0; ch < 3; ch++)
                for (int64_t y = alone [k].rows [0]; y < alone [k].rows [1]; y++)
                    for (int64_t x = alone [k].cols [0]; x < alone [k].cols [1]; x++, checked++)
                        assert (tiled.data [((f * 3 + ch) * 160 + y) * 192 + x]
                                == sub.data [(((f - f0) * 3 + ch) * sub.height + (y - y0)) * sub.width + (x - x0)]);
        if (verbose)
            printf ("  tile %d alone: %zu values equal to its own decode\n", k, checked);
        free (sub.data);
        free (sl);
        free (sn);
    }
    double sum_diff = 0, max_diff = 0, sum_abs = 0;
    for (size_t i = 0; i < pixels; i++) {
        double d = fabs ((double) tiled.data [i] - (double) whole.data [i]);
        sum_diff += d;
        max_diff = fmax (max_diff, d);
        sum_abs += fabs (whole.data [i]);
    }
    if (verbose)
        printf ("  tiled vs whole (8 tiles): mean |diff| %.4g (mean |pixel| %.4g), max %.4g\n",
                sum_diff / (double) pixels, sum_abs / (double) pixels, max_diff);
    assert (sum_diff > 0 && sum_diff < 0.75 * sum_abs);
    free (tiled.data);
    free (whole.data);
    //  A tile under 2 latent pixels wide is refused (reflect padding), not crashed on.
    ltx2_vae_decode_opts_t thin = { .tiling = { 64, 0, 0, 0 } };
    s_video_t none = { 0 };
    assert (ltx2_vae_decode (vae, latent, F, H, W, &thin, s_collect, &none, &err) == -1 && strstr (err, "reflect"));
    free (err);
    err = NULL;
    ltx2_vae_decode_opts_t odd = { .tiling = { 0, 0, 20, 8 } };
    assert (ltx2_vae_decode (vae, latent, F, H, W, &odd, s_collect, &none, &err) == -1 && strstr (err, "tiles must")
            && none.frames == 0);
    free (err);
    err = NULL;
    ltx2_vae_destroy (&vae);
    vdgx_backend_destroy (&b);
    free (noise);
    free (latent);

    //  Peak backend memory of a random decoder of cfg: tiled below whole, as estimated.
    const int64_t MF = 5, MH = 6, MW = 8;
    n = (size_t) (cfg->latent_channels * MF * MH * MW);
    latent = (float *) malloc (n * sizeof (float));
    rng = vdgx_torchrng_new (4);
    vdgx_torchrng_randn (rng, latent, n);
    vdgx_torchrng_destroy (&rng);
    ltx2_vae_decode_opts_t mo = { .tiling = { 128, 32, 16, 8 } };
    s_video_t mw = { 0 }, mt = { 0 };
    uint64_t peak_whole = s_decode_fresh (cfg, latent, MF, MH, MW, NULL, &mw);
    uint64_t peak_tiled = s_decode_fresh (cfg, latent, MF, MH, MW, &mo, &mt);
    uint64_t est_whole = ltx2_vae_activation_bytes (cfg, NULL, MF, MH, MW, 4);
    uint64_t est_tiled = ltx2_vae_activation_bytes (cfg, &mo.tiling, MF, MH, MW, 4);
    if (verbose)
        printf ("  peak backend bytes whole %llu (estimate %llu), tiled %llu (estimate %llu)\n",
                (unsigned long long) peak_whole, (unsigned long long) est_whole,
                (unsigned long long) peak_tiled, (unsigned long long) est_tiled);
    assert (mt.frames == mw.frames && mt.frames == 33);
    assert (peak_tiled * 2 < peak_whole && est_tiled * 2 < est_whole);
    assert (peak_whole <= est_whole && peak_tiled <= est_tiled);
    free (mw.data);
    free (mt.data);
    free (latent);
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
    uint64_t small = ltx2_vae_activation_bytes (&cfg, NULL, 2, 2, 3, 4);
    uint64_t big = ltx2_vae_activation_bytes (&cfg, NULL, 16, 16, 24, 4);
    //  The largest tensor of the small case: 4 channels x 9 x 64 x 96 before the 48-channel
    //  conv_out's 48 x 9 x 16 x 24 (x 7 copies, 4 bytes).
    assert (small >= (uint64_t) 7 * 4 * 48 * 9 * 16 * 24 && big > 60 * small);
    if (verbose)
        printf ("  activation estimate: %llu bytes (2x2x3), %llu (16x16x24)\n",
                (unsigned long long) small, (unsigned long long) big);

    s_tiling_test (&cfg, src2, verbose);
    free (src23);
    free (src2);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
