/*  vdgx_wsrc_selftest.c - vdgx_wsrc_test: layout maps, checked reads, FP8 scale companions,
    bad tensors refused with a message, random sources.
*/
#include "vdgx_wsrc.h"
#include "vdgx_quant.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const vdgx_wsrc_rename_t s_renames [] = {
    { "blocks.*.self_attn.q.", "blocks.*.attn1.to_q." },
    { "blocks.*.modulation", "blocks.*.scale_shift_table" },
    { "head.modulation", "scale_shift_table" },
};
static const vdgx_wsrc_map_t s_map = { "test", "model.", s_renames, 3 };

void
vdgx_wsrc_test (bool verbose)
{
    printf (" * vdgx_wsrc: ");
    if (verbose)
        printf ("\n");
    char *err = NULL;

    //  A checkpoint in the mapped layout: q weight + bias of block 12, a modulation table
    //  [1, 2, 4], an FP8 weight with a scale_weight, a norm weight, a NaN tensor.
    float qw [4 * 3], qb [4], mod [8], nw [3], nan3 [3] = { 1.0f, NAN, 2.0f }, scale = 0.5f;
    uint8_t f8 [4 * 3];
    for (int i = 0; i < 12; i++) {
        qw [i] = 0.1f * (float) (i + 1);
        f8 [i] = vdgx_f32_to_e4m3 (0.25f * (float) (i - 6) + 0.125f);
    }
    for (int i = 0; i < 4; i++)
        qb [i] = -0.5f + (float) i;
    for (int i = 0; i < 8; i++)
        mod [i] = 1.5f * (float) i + 0.25f;
    for (int i = 0; i < 3; i++)
        nw [i] = 1.0f + 0.125f * (float) i;
    vdgx_ckpt_tensor_t t [] = {
        { "model.blocks.12.attn1.to_q.weight", VDGX_DTYPE_F32, 2, { 4, 3 }, qw, sizeof (qw) },
        { "model.blocks.12.attn1.to_q.bias", VDGX_DTYPE_F32, 1, { 4 }, qb, sizeof (qb) },
        { "model.blocks.3.scale_shift_table", VDGX_DTYPE_F32, 3, { 1, 2, 4 }, mod, sizeof (mod) },
        { "model.fp8.weight", VDGX_DTYPE_F8_E4M3, 2, { 4, 3 }, f8, sizeof (f8) },
        { "model.fp8.scale_weight", VDGX_DTYPE_F32, 0, { 0 }, &scale, sizeof (scale) },
        { "model.norm.weight", VDGX_DTYPE_F32, 1, { 3 }, nw, sizeof (nw) },
        { "model.bad", VDGX_DTYPE_F32, 1, { 3 }, nan3, sizeof (nan3) },
    };
    char path [] = "/tmp/vdgx_wsrc_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    int rc = vdgx_safetensors_write (path, t, sizeof (t) / sizeof (t [0]), &err);
    assert (rc == 0);
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &err);
    assert (ckpt);
    vdgx_wsrc_t *src = vdgx_wsrc_new (ckpt, &s_map, "test model");
    assert (src);

    char name [256];
    vdgx_wsrc_name (src, "blocks.12.self_attn.q.weight", name, sizeof (name));
    assert (strcmp (name, "model.blocks.12.attn1.to_q.weight") == 0);
    vdgx_wsrc_name (src, "head.modulation", name, sizeof (name));
    assert (strcmp (name, "model.scale_shift_table") == 0);
    vdgx_wsrc_name (src, "blocks.x.self_attn.q.weight", name, sizeof (name));      //  '*' needs digits
    assert (strcmp (name, "model.blocks.x.self_attn.q.weight") == 0);
    vdgx_wsrc_name (src, "time.weight", name, sizeof (name));
    assert (strcmp (name, "model.time.weight") == 0);

    vdgx_backend_t *b = vdgx_backend_new ("cpu:1", VDGX_DTYPE_F32, &err);
    assert (b);
    vdgx_linear_t l;
    assert (vdgx_wsrc_linear (src, b, "blocks.12.self_attn.q", 4, 3, VDGX_WFMT_F32, VDGX_DTYPE_F32, &l, &err) == 0);
    float wdown [12], bdown [4];
    vdgx_weight_dequant (&l.w, wdown);
    assert (memcmp (wdown, qw, sizeof (qw)) == 0);
    assert (vdgx_tensor_to_f32 (b, &l.b, bdown) == 0 && memcmp (bdown, qb, sizeof (qb)) == 0);
    vdgx_linear_release (b, &l);
    //  Leading 1s tolerated; values through the map.
    const int64_t ms [2] = { 2, 4 };
    float *m = vdgx_wsrc_fetch (src, "blocks.3.modulation", 2, ms, &err);
    assert (m && memcmp (m, mod, sizeof (mod)) == 0);
    free (m);
    //  FP8 with a scale: dequantized values times the scale; kept as FP8 when asked.
    const int64_t fs [2] = { 4, 3 };
    float *f = vdgx_wsrc_fetch (src, "fp8.weight", 2, fs, &err);
    assert (f);
    for (int i = 0; i < 12; i++)
        assert (f [i] == vdgx_e4m3_to_f32 (f8 [i]) * scale);
    free (f);
    assert (vdgx_wsrc_linear (src, b, "fp8", 4, 3, VDGX_WFMT_FP8_E4M3, -1, &l, &err) == 0);
    assert (l.w.fmt == VDGX_WFMT_FP8_E4M3 && !l.b.data);
    vdgx_linear_release (b, &l);
    vdgx_norm_t n;
    assert (vdgx_wsrc_norm (src, b, &n, VDGX_NORM_RMS, "norm", 3, 1e-6f, true, false, true, &err) == 0);
    float nd [3];
    assert (vdgx_tensor_to_f32 (b, &n.w, nd) == 0 && nd [2] == 2.25f && !n.b.data);
    vdgx_norm_release (b, &n);
    size_t used = vdgx_wsrc_used (src);
    assert (used == 6);

    //  Errors: missing, wrong shape, non-finite, missing bias.
    const int64_t s3 [1] = { 3 }, s5 [1] = { 5 };
    assert (!vdgx_wsrc_fetch (src, "nothing.weight", 1, s3, &err) && strstr (err, "model.nothing.weight is missing"));
    assert (!vdgx_wsrc_fetch (src, "norm.weight", 1, s5, &err) && strstr (err, "shape [3], expected [5]"));
    assert (!vdgx_wsrc_fetch (src, "bad", 1, s3, &err) && strstr (err, "non-finite"));
    assert (vdgx_wsrc_linear (src, b, "fp8", 4, 3, VDGX_WFMT_F32, VDGX_DTYPE_F32, &l, &err) == -1);
    assert (strstr (err, "model.fp8.bias is missing") && !l.loaded);
    if (verbose)
        printf ("  %s\n", err);
    vdgx_wsrc_destroy (&src);
    assert (!src);

    //  Random sources: norms 1, biases 0, the rest uniform std 0.02, reproducible per seed.
    vdgx_wsrc_t *r1 = vdgx_wsrc_new_random (7, NULL), *r2 = vdgx_wsrc_new_random (7, NULL);
    const int64_t big [1] = { 4096 };
    float *a = vdgx_wsrc_fetch (r1, "x.weight", 1, big, &err), *c = vdgx_wsrc_fetch (r2, "x.weight", 1, big, &err);
    double var = 0;
    for (int i = 0; i < 4096; i++) {
        assert (a [i] == c [i] && fabsf (a [i]) < 0.035f);
        var += a [i] * (double) a [i] / 4096;
    }
    assert (fabs (sqrt (var) - 0.02) < 0.002);
    free (a);
    free (c);
    float *nr = vdgx_wsrc_fetch (r1, "blocks.0.norm3.weight", 1, s3, &err);
    float *br = vdgx_wsrc_fetch (r1, "blocks.0.norm3.bias", 1, s3, &err);
    assert (nr [0] == 1.0f && br [2] == 0.0f && vdgx_wsrc_used (r1) == 0);
    free (nr);
    free (br);
    vdgx_wsrc_destroy (&r1);
    vdgx_wsrc_destroy (&r2);

    //  NVFP4 checkpoint weights (U8 + tiled F8_E4M3 block scales + F32 tensor scale): read as
    //  f32, kept as NVFP4 (same codes and scales), dequantized for another format; a U8
    //  weight without its scales is refused by name.
    {
        float src [4 * 32];
        for (int i = 0; i < 4 * 32; i++)
            src [i] = 0.05f * (float) ((i * 7) % 23 - 11);
        vdgx_weight_t q;
        assert (vdgx_weight_quantize (&q, VDGX_WFMT_NVFP4, src, 4, 32, false, &err) == 0);
        uint8_t packed [4 * 16], tiled [128 * 4];
        vdgx_weight_to_nvfp4_tiled (&q, true, packed, tiled, 128, 4);
        float g = q.global_scale;
        vdgx_ckpt_tensor_t t4 [] = {
            { "model.q4.weight", VDGX_DTYPE_U8, 2, { 4, 16 }, packed, sizeof (packed) },
            { "model.q4.weight_scale", VDGX_DTYPE_F8_E4M3, 2, { 128, 4 }, tiled, sizeof (tiled) },
            { "model.q4.weight_scale_2", VDGX_DTYPE_F32, 0, { 0 }, &g, sizeof (g) },
            { "model.q4.bias", VDGX_DTYPE_F32, 1, { 4 }, qb, sizeof (qb) },
            { "model.lone.weight", VDGX_DTYPE_U8, 2, { 4, 16 }, packed, sizeof (packed) },
        };
        char path4 [] = "/tmp/vdgx_wsrc4_XXXXXX";
        int fd4 = mkstemp (path4);
        assert (fd4 >= 0);
        close (fd4);
        assert (vdgx_safetensors_write (path4, t4, 5, &err) == 0);
        vdgx_ckpt_t *c4 = vdgx_ckpt_open (path4, &err);
        vdgx_wsrc_t *s4 = vdgx_wsrc_new (c4, &s_map, "test model");
        float want [4 * 32];
        vdgx_weight_dequant (&q, want);
        const int64_t qs [2] = { 4, 32 };
        float *got = vdgx_wsrc_fetch (s4, "q4.weight", 2, qs, &err);
        assert (got && memcmp (got, want, sizeof (want)) == 0);
        free (got);
        assert (vdgx_wsrc_linear (s4, b, "q4", 4, 32, VDGX_WFMT_NVFP4, VDGX_DTYPE_F32, &l, &err) == 0);
        assert (l.w.fmt == VDGX_WFMT_NVFP4);
        float wq [4 * 32];
        vdgx_weight_dequant (&l.w, wq);
        assert (memcmp (wq, want, sizeof (want)) == 0);
        vdgx_linear_release (b, &l);
        assert (vdgx_wsrc_linear (s4, b, "q4", 4, 32, VDGX_WFMT_F32, -1, &l, &err) == 0);
        vdgx_weight_dequant (&l.w, wq);
        assert (memcmp (wq, want, sizeof (want)) == 0);
        vdgx_linear_release (b, &l);
        assert (vdgx_wsrc_linear (s4, b, "lone", 4, 32, VDGX_WFMT_NVFP4, -1, &l, &err) == -1);
        assert (strstr (err, "model.lone.weight is U8 but not NVFP4"));
        const int64_t wrong [2] = { 4, 64 };
        assert (!vdgx_wsrc_fetch (s4, "q4.weight", 2, wrong, &err) && strstr (err, "expected NVFP4 [4,32]"));
        vdgx_wsrc_destroy (&s4);
        vdgx_ckpt_destroy (&c4);
        vdgx_weight_host_free (&q);
        unlink (path4);
    }

    free (err);
    vdgx_backend_destroy (&b);
    vdgx_ckpt_destroy (&ckpt);
    unlink (path);
    printf ("OK\n");
}
