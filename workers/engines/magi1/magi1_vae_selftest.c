/*  magi1_vae_selftest.c - magi1_vae_test: the config parser, and on random weights the tiled
    decode's geometry, crops and blends against single decoder passes of the tiles, and
    decode_chunk's scaling and uint8 conversion. (The numbers of the decoder itself are pinned
    by `vdgx-refcheck magi1 DIR --part vae`.)
*/
#include "magi1_vae.h"
#include "vdgx_nn_testing.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  out = pass of the latent z [C, T, H, W] restricted to [t0, t0 + tt) x [y0, y0 + th) x
//  [x0, x0 + tw): [3, frames, th * ps, tw * ps].
static float *
s_tile_pass (magi1_vae_t *vae, const float *z, int64_t T, int64_t H, int64_t W, int64_t t0,
             int64_t tt, int64_t y0, int64_t th, int64_t x0, int64_t tw)
{
    const magi1_vae_config_t *c = magi1_vae_config (vae);
    float *sub = malloc (sizeof (float) * (size_t) (c->z_chans * tt * th * tw));
    assert (sub);
    for (int64_t ch = 0; ch < c->z_chans; ch++)
        for (int64_t a = 0; a < tt; a++)
            for (int64_t y = 0; y < th; y++)
                for (int64_t x = 0; x < tw; x++)
                    sub [((ch * tt + a) * th + y) * tw + x] = z [((ch * T + t0 + a) * H + y0 + y) * W + x0 + x];
    size_t n = (size_t) (3 * magi1_vae_frames (vae, tt) * th * c->patch_size * tw * c->patch_size);
    float *out = malloc (sizeof (float) * n);
    char *err = NULL;
    assert (out && magi1_vae_decode_pass (vae, sub, tt, th, tw, out, &err) == 0);
    free (sub);
    return out;
}

void
magi1_vae_test (bool verbose)
{
    vdgx_backend_t *b = vdgx_test_begin ("magi1_vae", verbose);
    char *err = NULL;

    //  Config: the official config.json form and a bare ddconfig; refusals.
    magi1_vae_config_t cfg;
    magi1_vae_config_default (&cfg);
    assert (magi1_vae_config_parse ("{\"_class_name\": \"ViTVAE\", \"ddconfig\": {\"embed_dim\": 64, "
                                    "\"depth\": 2, \"num_heads\": 4, \"patch_size\": 2, \"video_size\": 16, "
                                    "\"mlp_ratio\": 4.0, \"use_rope\": false}}", &cfg, &err) == 0);
    assert (cfg.embed_dim == 64 && cfg.depth == 2 && cfg.heads == 4 && cfg.mlp_hidden == 256
         && cfg.patch_size == 2 && cfg.patch_length == 4 && cfg.z_chans == 16);
    assert (magi1_vae_config_parse ("{\"use_final_proj\": true}", &cfg, &err) == -1 && strstr (err, "use_final_proj"));
    assert (magi1_vae_config_parse ("{\"embed_dim\": 30}", &cfg, &err) == -1 && strstr (err, "inconsistent"));
    assert (magi1_vae_config_parse ("{\"depth\": \"x\"}", &cfg, &err) == -1 && strstr (err, "depth"));
    assert (magi1_vae_config_parse ("[1", &cfg, &err) == -1);

    //  A small decoder with random weights: 32 wide (2 unpatch channels), grid 2 x 4 x 4.
    magi1_vae_config_t small = {
        .z_chans = 4, .embed_dim = 32, .depth = 1, .heads = 2, .mlp_hidden = 64,
        .patch_size = 2, .patch_length = 4, .video_size = 8, .video_length = 8,
    };
    vdgx_wsrc_t *src = vdgx_wsrc_new_random (7, "magi1 vae test");
    magi1_vae_t *vae = magi1_vae_load (b, src, &small, "fp32", &err);
    assert (vae);
    vdgx_wsrc_destroy (&src);
    uint64_t rs = 5;
    const int64_t C = 4, ps = 2;

    //  One tile covering the latent: the pass itself, frames first.
    {
        const int64_t T = 2, H = 3, W = 5;
        float *z = vdgx_test_randv (&rs, (size_t) (C * T * H * W), 2.0f);
        magi1_vae_tiling_t big = { 64, 64, 16, 0.25, 0 };
        int64_t f, h, w;
        assert (magi1_vae_output_size (vae, T, H, W, &big, &f, &h, &w) == 0 && f == 8 && h == 6 && w == 10);
        float *video = malloc (sizeof (float) * (size_t) (f * 3 * h * w));
        assert (magi1_vae_decode (vae, z, T, H, W, &big, video, &err) == 0);
        float *pass = s_tile_pass (vae, z, T, H, W, 0, T, 0, H, 0, W);
        for (int64_t a = 0; a < f; a++)
            for (int64_t ch = 0; ch < 3; ch++)
                assert (memcmp (video + (a * 3 + ch) * h * w, pass + (ch * f + a) * h * w,
                                sizeof (float) * (size_t) (h * w)) == 0);
        free (z); free (video); free (pass);
    }
    //  Several tiles (8 px / 8 frames: 4 x 4 latents every 3, 2 frames; blend 2 px; crop 6):
    //  tile (0,0,0)'s crop is its pass; the first row of tile (0,1,0) is tile (0,0,0)'s row
    //  6 (weight 0 on its own), the second the mean of both; the last column of 1 latent.
    {
        const int64_t T = 4, H = 6, W = 7;
        float *z = vdgx_test_randv (&rs, (size_t) (C * T * H * W), 2.0f);
        magi1_vae_tiling_t small_tiles = { 8, 8, 8, 0.25, 0 };
        int64_t f, h, w;
        assert (magi1_vae_output_size (vae, T, H, W, &small_tiles, &f, &h, &w) == 0);
        assert (f == 16 && h == 12 && w == 14);
        float *video = malloc (sizeof (float) * (size_t) (f * 3 * h * w));
        assert (magi1_vae_decode (vae, z, T, H, W, &small_tiles, video, &err) == 0);
        float *t0 = s_tile_pass (vae, z, T, H, W, 0, 2, 0, 4, 0, 4);       //  [3, 8, 8, 8]
        float *t1 = s_tile_pass (vae, z, T, H, W, 0, 2, 3, 3, 0, 4);       //  [3, 8, 6, 8]
        float *ta = s_tile_pass (vae, z, T, H, W, 2, 2, 0, 4, 3, 4);       //  [3, 8, 8, 8]
        float *tb = s_tile_pass (vae, z, T, H, W, 2, 2, 0, 4, 6, 1);       //  [3, 8, 8, 2]
        double e = 0;
        for (int64_t a = 0; a < 8; a++)
            for (int64_t ch = 0; ch < 3; ch++) {
                const float *out = video + (a * 3 + ch) * h * w;
                for (int64_t y = 0; y < 6; y++)
                    assert (memcmp (out + y * w, t0 + ((ch * 8 + a) * 8 + y) * 8, sizeof (float) * 6) == 0);
                for (int64_t x = 0; x < 6; x++) {
                    assert (out [6 * w + x] == t0 [((ch * 8 + a) * 8 + 6) * 8 + x]);
                    double want = 0.5 * t0 [((ch * 8 + a) * 8 + 7) * 8 + x] + 0.5 * t1 [((ch * 8 + a) * 6 + 1) * 8 + x];
                    e = fmax (e, fabs (out [7 * w + x] - want));
                }
            }
        //  Frames 8.. (temporal tile 1, no temporal blend), rows 0..5: the last column tile
        //  (1 latent, 2 px at columns 12, 13) blends with the unblended tile to its left.
        for (int64_t a = 0; a < 8; a++)
            for (int64_t ch = 0; ch < 3; ch++)
                for (int64_t y = 0; y < 6; y++) {
                    const float *row = video + ((8 + a) * 3 + ch) * h * w + y * w;
                    assert (row [12] == ta [((ch * 8 + a) * 8 + y) * 8 + 6]);
                    double want = 0.5 * ta [((ch * 8 + a) * 8 + y) * 8 + 7] + 0.5 * tb [((ch * 8 + a) * 8 + y) * 2 + 1];
                    e = fmax (e, fabs (row [13] - want));
                }
        if (verbose)
            printf ("blend err %.2e ", e);
        assert (e < 1e-6);
        free (z); free (video); free (t0); free (t1); free (ta); free (tb);
    }
    //  decode_chunk: latent / 0.18215, then (x * 127.5 + 127.5) clamped and truncated.
    {
        const int64_t T = 2, H = 2, W = 3;
        float *lat = vdgx_test_randv (&rs, (size_t) (C * T * H * W), 1.0f);
        float *z = malloc (sizeof (float) * (size_t) (C * T * H * W));
        for (int64_t i = 0; i < C * T * H * W; i++)
            z [i] = lat [i] / MAGI1_VAE_SCALE_FACTOR;
        int64_t f, h, w;
        assert (magi1_vae_output_size (vae, T, H, W, NULL, &f, &h, &w) == 0 && f == 8 && h == H * ps && w == W * ps);
        size_t n = (size_t) (f * 3 * h * w);
        float *video = malloc (sizeof (float) * n), *want = malloc (sizeof (float) * n);
        uint8_t *rgb = malloc (n);
        assert (magi1_vae_decode_chunk (vae, lat, T, H, W, 24, video, rgb, &err) == 0);
        assert (magi1_vae_decode (vae, z, T, H, W, NULL, want, &err) == 0);
        assert (memcmp (video, want, sizeof (float) * n) == 0);
        int clamped = 0;
        for (int64_t a = 0; a < f; a++)
            for (int64_t ch = 0; ch < 3; ch++)
                for (int64_t p = 0; p < h * w; p++) {
                    float x = want [(a * 3 + ch) * h * w + p] * 127.5f + 127.5f;
                    clamped += x < 0 || x > 255;
                    uint8_t u = (uint8_t) (x < 0? 0: x > 255? 255: x);
                    assert (rgb [(a * h * w + p) * 3 + ch] == u);
                }
        if (verbose)
            printf ("clamped %d ", clamped);
        assert (magi1_vae_decode_chunk (vae, lat, T, H, W, 1, NULL, rgb, &err) == -1 && strstr (err, "fps"));
        free (lat); free (z); free (video); free (want); free (rgb);
    }
    //  A tiling with no stride is refused.
    float one [4 * 2 * 2 * 2] = { 1 };
    magi1_vae_tiling_t none = { 1, 1, 1, 0.25, 0 };
    float out [3 * 8 * 4 * 4];
    assert (magi1_vae_decode (vae, one, 2, 2, 2, &none, out, &err) == -1 && strstr (err, "tiling"));
    //  A config the decoder cannot split is refused before any weight is read.
    magi1_vae_config_t wrong = small;
    wrong.heads = 5;
    src = vdgx_wsrc_new_random (7, "magi1 vae test");
    assert (magi1_vae_load (b, src, &wrong, NULL, &err) == NULL && strstr (err, "inconsistent"));
    vdgx_wsrc_destroy (&src);

    magi1_vae_destroy (&vae);
    assert (vae == NULL);
    free (err);
    vdgx_test_end (&b);
}
