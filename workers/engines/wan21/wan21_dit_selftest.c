/*  wan21_dit_selftest.c - wan21_dit_test: the DiT loaders (official, diffusers, ComfyUI
    layouts), quantized precisions, error handling, and the sampling loop's seeding, progress
    and cancellation. Uses the tiny official-layout reference DiT of tests/data/reference/wan21
    (found through VDGX_SOURCE_DIR); numerical agreement with the official code is checked by
    vdgx-refcheck (refcheck_wan21_dit.c, refcheck_wan21_sampling.c).
*/
#include "wan21_dit.h"
#include "vdgx_rng.h"
#include "vdgx_ckpt.h"
#include "engine.h"

#include <jansson.h>

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_HEADS 4
#define S_TEXT_LEN 16

typedef struct {
    char name [160];
    vdgx_ckpt_tensor_t t;
    void *owned;
} s_entry_t;

//  The reference checkpoint's tensors, renamed by `rename` (NULL keeps names); entries whose
//  name `drop` matches are left out.
static size_t
s_copy_tensors (vdgx_ckpt_t *ckpt, s_entry_t *out, void (*rename) (const char *, char *, size_t),
                const char *drop)
{
    size_t n = 0;
    for (size_t i = 0; i < vdgx_ckpt_count (ckpt); i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (ckpt, i);
        if (drop && strcmp (t->name, drop) == 0)
            continue;
        out [n].t = *t;
        out [n].owned = NULL;
        if (rename)
            rename (t->name, out [n].name, sizeof (out [n].name));
        else
            snprintf (out [n].name, sizeof (out [n].name), "%s", t->name);
        out [n].t.name = out [n].name;
        n++;
    }
    return n;
}

//  diffusers names, written out from the conversion facts independently of the loader's table.
static void
s_to_diffusers (const char *official, char *out, size_t size)
{
    static const char *pairs [][2] = {
        { "time_embedding.0.", "condition_embedder.time_embedder.linear_1." },
        { "time_embedding.2.", "condition_embedder.time_embedder.linear_2." },
        { "text_embedding.0.", "condition_embedder.text_embedder.linear_1." },
        { "text_embedding.2.", "condition_embedder.text_embedder.linear_2." },
        { "time_projection.1.", "condition_embedder.time_proj." },
        { "head.modulation", "scale_shift_table" }, { "head.head.", "proj_out." },
        { ".modulation", ".scale_shift_table" },
        { ".ffn.0.", ".ffn.net.0.proj." }, { ".ffn.2.", ".ffn.net.2." },
        { ".norm3.", ".norm2." },
        { ".self_attn.norm_q.", ".attn1.norm_q." }, { ".self_attn.norm_k.", ".attn1.norm_k." },
        { ".self_attn.q.", ".attn1.to_q." }, { ".self_attn.k.", ".attn1.to_k." },
        { ".self_attn.v.", ".attn1.to_v." }, { ".self_attn.o.", ".attn1.to_out.0." },
        { ".cross_attn.norm_q.", ".attn2.norm_q." }, { ".cross_attn.norm_k.", ".attn2.norm_k." },
        { ".cross_attn.q.", ".attn2.to_q." }, { ".cross_attn.k.", ".attn2.to_k." },
        { ".cross_attn.v.", ".attn2.to_v." }, { ".cross_attn.o.", ".attn2.to_out.0." },
    };
    for (size_t i = 0; i < sizeof (pairs) / sizeof (pairs [0]); i++) {
        const char *at = strstr (official, pairs [i][0]);
        if (at) {
            snprintf (out, size, "%.*s%s%s", (int) (at - official), official, pairs [i][1],
                      at + strlen (pairs [i][0]));
            return;
        }
    }
    snprintf (out, size, "%s", official);
}

static void
s_to_comfy (const char *official, char *out, size_t size)
{
    snprintf (out, size, "model.diffusion_model.%s", official);
}

static void
s_write (const char *path, s_entry_t *e, size_t n)
{
    vdgx_ckpt_tensor_t *list = calloc (n, sizeof (vdgx_ckpt_tensor_t));
    assert (list);
    for (size_t i = 0; i < n; i++)
        list [i] = e [i].t;
    char *err = NULL;
    int rc = vdgx_safetensors_write (path, list, n, &err);
    if (rc)
        fprintf (stderr, "write %s: %s\n", path, err? err: "?");
    assert (rc == 0);
    free (list);
}

static double
s_relnorm (const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double) a [i] - b [i]) * ((double) a [i] - b [i]);
        den += (double) b [i] * b [i];
    }
    return sqrt (num / (den > 0? den: 1));
}

//  Loads path and runs one forward; returns 0 and fills out, or -1 (message in *err).
static int
s_run (vdgx_backend_t *b, const char *path, const char *precision, int heads, const float *x,
       const float *ctx, float *out, char **err)
{
    wan21_dit_load_opts_t opts = { .precision = precision, .num_heads = heads, .text_len = S_TEXT_LEN };
    wan21_dit_t *dit = wan21_dit_load (b, path, &opts, err);
    if (!dit)
        return -1;
    wan21_dit_context_t *c = wan21_dit_context_new (dit, ctx, 5, err);
    int rc = c? wan21_dit_forward (dit, x, 3, 4, 6, 937, c, out, err): -1;
    wan21_dit_context_destroy (dit, &c);
    wan21_dit_destroy (&dit);
    return rc;
}

typedef struct {
    atomic_int *cancel;
    int calls, cancel_after;
} s_progress_t;

static void
s_progress (void *arg, int step, int steps)
{
    s_progress_t *p = (s_progress_t *) arg;
    p->calls++;
    assert (step == p->calls && steps == 3);
    if (p->cancel && step == p->cancel_after)
        atomic_store (p->cancel, 1);
}

void
wan21_dit_test (bool verbose)
{
    printf (" * wan21_dit: ");
    //  Presets and memory estimates.
    wan21_dit_config_t c13, c14;
    assert (wan21_dit_config_preset ("1.3b", &c13) == 0 && c13.dim == 1536 && c13.num_layers == 30);
    assert (wan21_dit_config_preset ("14b", &c14) == 0 && c14.num_heads == 40 && c14.ffn_dim == 13824);
    assert (wan21_dit_config_preset ("7b", &c14) == -1);
    uint64_t w32 = wan21_dit_memory_estimate (&c13, "fp32", 0, 4);
    uint64_t w16 = wan21_dit_memory_estimate (&c13, "bf16", 0, 2);
    uint64_t w8 = wan21_dit_memory_estimate (&c13, "fp8", 0, 2);
    uint64_t w4 = wan21_dit_memory_estimate (&c13, "fp4", 0, 2);
    if (verbose)
        printf ("\n   1.3B weights: fp32 %.2f GB, bf16 %.2f GB, fp8 %.2f GB, fp4 %.2f GB\n   ",
                w32 / 1e9, w16 / 1e9, w8 / 1e9, w4 / 1e9);
    //  1.42e9 parameters (1.3B T2V): fp32 ~5.7 GB, bf16 ~2.8 GB.
    assert (w32 > 5.4e9 && w32 < 6.0e9 && w16 > 2.7e9 && w16 < 3.0e9);
    assert (w4 < w8 && w8 < w16 && w16 < w32);
    assert (wan21_dit_memory_estimate (&c13, "bf16", 32760, 2) > w16 + 1e9);
    assert (wan21_dit_memory_estimate (&c13, "int3", 0, 2) == 0);
    {
        int64_t shape [4];
        char *err = NULL;
        assert (wan21_latent_shape (832, 480, 81, shape, NULL) == 0);
        assert (shape [0] == 16 && shape [1] == 21 && shape [2] == 60 && shape [3] == 104);
        assert (wan21_latent_shape (832, 480, 80, shape, &err) == -1 && err);
        free (err);
        err = NULL;
        assert (wan21_latent_shape (830, 480, 81, shape, &err) == -1 && err);
        free (err);
    }
    assert (strlen (wan21_default_negative_prompt) > 100);
    assert (strstr (wan21_default_negative_prompt, "JPEG"));

    const char *src_dir = getenv ("VDGX_SOURCE_DIR");
    char ref [4096];
    snprintf (ref, sizeof (ref), "%s/tests/data/reference/wan21/weights_dit.safetensors",
              src_dir? src_dir: ".");
    char *err = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (ref, &err);
    if (!ckpt)
        fprintf (stderr, "wan21_dit_test: %s (set VDGX_SOURCE_DIR)\n", err? err: ref);
    assert (ckpt);
    vdgx_backend_t *b = vdgx_backend_new ("cpu", VDGX_DTYPE_F32, &err);
    assert (b);

    const size_t n = 16 * 3 * 4 * 6;
    float x [16 * 3 * 4 * 6], ctx [5 * 32];
    float out_ref [16 * 3 * 4 * 6], out [16 * 3 * 4 * 6];
    vdgx_rng_normal_at (11, 0, x, n);
    vdgx_rng_normal_at (12, 0, ctx, 5 * 32);
    assert (s_run (b, ref, "fp32", S_HEADS, x, ctx, out_ref, &err) == 0);
    double mag = s_relnorm (out_ref, out_ref, 0);
    (void) mag;

    char tmp [] = "/tmp/wan21-dit-test-XXXXXX";
    assert (mkdtemp (tmp));
    char dir [64], path [4400], cfg_path [4400], tdir [4200];
    snprintf (dir, sizeof (dir), "%s", tmp);
    size_t count = vdgx_ckpt_count (ckpt);
    s_entry_t *e = calloc (count + 1, sizeof (s_entry_t));
    assert (e);

    //  Diffusers layout: transformer/ folder with a config.json that gives the head count.
    snprintf (tdir, sizeof (tdir), "%s/transformer", dir);
    assert (mkdir (tdir, 0700) == 0);
    size_t m = s_copy_tensors (ckpt, e, s_to_diffusers, NULL);
    snprintf (path, sizeof (path), "%s/diffusion_pytorch_model.safetensors", tdir);
    s_write (path, e, m);
    snprintf (cfg_path, sizeof (cfg_path), "%s/config.json", tdir);
    FILE *f = fopen (cfg_path, "w");
    assert (f);
    fprintf (f, "{\"_class_name\": \"WanTransformer3DModel\", \"num_attention_heads\": %d, "
                "\"attention_head_dim\": %d}\n", S_HEADS, 64 / S_HEADS);
    fclose (f);
    assert (s_run (b, dir, "fp32", 0, x, ctx, out, &err) == 0);
    assert (memcmp (out, out_ref, sizeof (out)) == 0);
    unlink (path);
    unlink (cfg_path);
    rmdir (tdir);

    //  ComfyUI layout (prefixed), f32: bitwise the same result.
    m = s_copy_tensors (ckpt, e, s_to_comfy, NULL);
    snprintf (path, sizeof (path), "%s/wan2.1_t2v_tiny.safetensors", dir);
    s_write (path, e, m);
    assert (s_run (b, path, "fp32", S_HEADS, x, ctx, out, &err) == 0);
    assert (memcmp (out, out_ref, sizeof (out)) == 0);
    //  ComfyUI scaled FP8: block linears as e4m3 with a per-tensor scale_weight.
    {
        size_t extra = 0;
        s_entry_t *e8 = calloc (2 * count, sizeof (s_entry_t));
        float *scales = calloc (count, sizeof (float));
        assert (e8 && scales);
        for (size_t i = 0; i < m; i++) {
            e8 [i] = e [i];
            e8 [i].t.name = e8 [i].name;
            const char *nm = e [i].name;
            bool block_linear = strstr (nm, ".blocks.") && e [i].t.ndim == 2
                             && strstr (nm, ".weight") && !strstr (nm, "norm");
            if (!block_linear)
                continue;
            size_t numel = (size_t) (e [i].t.shape [0] * e [i].t.shape [1]);
            const float *w = (const float *) e [i].t.data;
            float amax = 0;
            for (size_t j = 0; j < numel; j++)
                amax = fmaxf (amax, fabsf (w [j]));
            float scale = amax / 448.0f;
            uint8_t *q = malloc (numel);
            assert (q);
            for (size_t j = 0; j < numel; j++)
                q [j] = vdgx_f32_to_e4m3 (w [j] / scale);
            e8 [i].owned = q;
            e8 [i].t.data = q;
            e8 [i].t.dtype = VDGX_DTYPE_F8_E4M3;
            e8 [i].t.nbytes = numel;
            s_entry_t *s = &e8 [m + extra++];
            snprintf (s->name, sizeof (s->name), "%.*s.scale_weight",
                      (int) (strlen (nm) - strlen (".weight")), nm);
            scales [extra - 1] = scale;
            s->t.name = s->name;
            s->t.dtype = VDGX_DTYPE_F32;
            s->t.ndim = 0;
            s->t.data = &scales [extra - 1];
            s->t.nbytes = sizeof (float);
        }
        assert (extra == 2 * 10);
        snprintf (path, sizeof (path), "%s/wan2.1_t2v_tiny_fp8_scaled.safetensors", dir);
        s_write (path, e8, m + extra);
        assert (s_run (b, path, "fp8", S_HEADS, x, ctx, out, &err) == 0);
        double r8 = s_relnorm (out, out_ref, n);
        assert (s_run (b, path, "bf16", S_HEADS, x, ctx, out, &err) == 0);
        double r8b = s_relnorm (out, out_ref, n);
        if (verbose)
            printf ("fp8-scaled file: relnorm %.2e (fp8), %.2e (as bf16)\n   ", r8, r8b);
        assert (r8 > 0 && r8 < 0.05 && r8b > 0 && r8b < 0.05);
        for (size_t i = 0; i < m; i++)
            free (e8 [i].owned);
        free (e8);
        free (scales);
        unlink (path);
    }
    snprintf (path, sizeof (path), "%s/wan2.1_t2v_tiny.safetensors", dir);
    unlink (path);

    //  Sharded diffusers folder: two shards and their index.
    {
        assert (mkdir (tdir, 0700) == 0);
        m = s_copy_tensors (ckpt, e, s_to_diffusers, NULL);
        char shard [2][4400], index [4400];
        const char *shard_name [2] = { "diffusion_pytorch_model-00001-of-00002.safetensors",
                                       "diffusion_pytorch_model-00002-of-00002.safetensors" };
        for (int i = 0; i < 2; i++)
            snprintf (shard [i], sizeof (shard [i]), "%s/%s", tdir, shard_name [i]);
        s_write (shard [0], e, m / 2);
        s_write (shard [1], e + m / 2, m - m / 2);
        snprintf (index, sizeof (index), "%s/diffusion_pytorch_model.safetensors.index.json", tdir);
        f = fopen (index, "w");
        assert (f);
        fprintf (f, "{\"metadata\": {}, \"weight_map\": {");
        for (size_t i = 0; i < m; i++)
            fprintf (f, "%s\"%s\": \"%s\"", i? ", ": "", e [i].name, shard_name [i < m / 2? 0: 1]);
        fprintf (f, "}}\n");
        fclose (f);
        f = fopen (cfg_path, "w");
        assert (f);
        fprintf (f, "{\"num_attention_heads\": %d, \"attention_head_dim\": %d}\n", S_HEADS, 64 / S_HEADS);
        fclose (f);
        assert (s_run (b, dir, "fp32", 0, x, ctx, out, &err) == 0);
        assert (memcmp (out, out_ref, sizeof (out)) == 0);
        unlink (shard [0]);
        unlink (shard [1]);
        unlink (index);
        unlink (cfg_path);
        assert (rmdir (tdir) == 0);
    }

    //  The REAL checkpoints' names (real_checkpoint_layout.json, 825 tensors, 30 blocks; the
    //  I2V-14B's real_checkpoint_layout_i2v.json, 1303 tensors, 40 blocks) at a reduced width:
    //  every name is found and used, and the model runs.
    for (int v = 0; v < 2; v++) {
        char layout [4096];
        snprintf (layout, sizeof (layout), "%s/tests/data/reference/%s", src_dir? src_dir: ".",
                  v? "wan21-i2v/real_checkpoint_layout_i2v.json": "wan21/real_checkpoint_layout.json");
        size_t want = v? 1303: 825;
        json_t *root = json_load_file (layout, 0, NULL);
        json_t *tensors = json_object_get (json_object_get (root, v? "dit_i2v_14B": "dit"), "tensors");
        assert (json_is_object (tensors));
        size_t real_count = json_object_size (tensors);
        assert (real_count == want);
        s_entry_t *re = calloc (real_count, sizeof (s_entry_t));
        assert (re);
        size_t i = 0;
        const char *key;
        json_t *shape_j;
        json_object_foreach (tensors, key, shape_j) {
            s_entry_t *t = &re [i++];
            snprintf (t->name, sizeof (t->name), "%s", key);
            t->t.name = t->name;
            t->t.dtype = VDGX_DTYPE_F32;
            t->t.ndim = (int) json_array_size (shape_j);
            int64_t numel = 1;
            for (int j = 0; j < t->t.ndim; j++) {
                int64_t d = json_integer_value (json_array_get (shape_j, (size_t) j));
                //  1.3B: dim 1536, ffn 8960, 6 dim 9216; 14B: 5120, 13824, 30720; text 4096;
                //  CLIP features 1280.
                d = d == 1536 || d == 5120? 64: d == 8960 || d == 13824? 128
                  : d == 9216 || d == 30720? 384: d == 4096 || d == 1280? 32: d;
                t->t.shape [j] = d;
                numel *= d;
            }
            float *data = malloc ((size_t) numel * sizeof (float));
            assert (data);
            vdgx_rng_normal_at (100 + i, 0, data, (size_t) numel);
            bool norm = strstr (key, "norm") != NULL || strstr (key, "img_emb.proj.0.weight")
                     || strstr (key, "img_emb.proj.4.weight");
            for (int64_t j = 0; j < numel; j++)
                data [j] = norm? 1.0f + 0.1f * data [j]: 0.05f * data [j];
            t->owned = data;
            t->t.data = data;
            t->t.nbytes = (size_t) numel * sizeof (float);
        }
        json_decref (root);
        snprintf (path, sizeof (path), "%s/diffusion_pytorch_model.safetensors", dir);
        s_write (path, re, real_count);
        for (i = 0; i < real_count; i++)
            free (re [i].owned);
        free (re);
        wan21_dit_load_opts_t ro = { .precision = "bf16", .num_heads = S_HEADS,
                                     .text_len = v? 512: S_TEXT_LEN };
        wan21_dit_t *real = wan21_dit_load (b, dir, &ro, &err);
        if (!real)
            fprintf (stderr, "real layout: %s\n", err? err: "?");
        assert (real);
        const wan21_dit_config_t *rc = wan21_dit_config (real);
        assert (rc->num_layers == (v? 40: 30) && rc->dim == 64 && rc->ffn_dim == 128 && rc->text_dim == 32
             && rc->in_dim == (v? 36: 16) && rc->out_dim == 16 && rc->freq_dim == 256);
        assert (rc->img_dim == (v? 32: 0) && rc->img_pos == 0);
        assert (wan21_dit_tensors_used (real) == want);
        float *img = NULL, *xi = NULL;
        if (v) {
            img = malloc (257 * 32 * sizeof (float));
            xi = malloc (36 * 3 * 4 * 6 * sizeof (float));
            assert (img && xi);
            vdgx_rng_normal_at (31, 0, img, 257 * 32);
            vdgx_rng_normal_at (32, 0, xi, 36 * 3 * 4 * 6);
        }
        wan21_dit_context_t *rctx = wan21_dit_context_new_image (real, ctx, 5, img, v? 257: 0, &err);
        assert (rctx);
        assert (wan21_dit_forward (real, v? xi: x, 3, 4, 6, 999, rctx, out, &err) == 0);
        for (size_t j = 0; j < n; j++)
            assert (isfinite (out [j]));
        wan21_dit_context_destroy (real, &rctx);
        wan21_dit_destroy (&real);
        free (img);
        free (xi);
        unlink (path);
    }

    //  Quantized block linears on the official file: close to f32, not identical.
    const char *precs [] = { "bf16", "fp8", "nvfp4", "nf4" };
    const double bounds [] = { 0.01, 0.05, 0.25, 0.25 };
    for (int i = 0; i < 4; i++) {
        assert (s_run (b, ref, precs [i], S_HEADS, x, ctx, out, &err) == 0);
        double r = s_relnorm (out, out_ref, n);
        if (verbose)
            printf ("%s relnorm %.2e; ", precs [i], r);
        assert (r > 0 && r < bounds [i]);
    }
    if (verbose)
        printf ("\n   ");

    //  Errors are messages, never crashes.
    snprintf (path, sizeof (path), "%s/broken.safetensors", dir);
    m = s_copy_tensors (ckpt, e, NULL, "blocks.1.ffn.2.bias");
    s_write (path, e, m);
    assert (s_run (b, path, "fp32", S_HEADS, x, ctx, out, &err) == -1);
    assert (err && strstr (err, "blocks.1.ffn.2.bias"));
    free (err);
    err = NULL;
    m = s_copy_tensors (ckpt, e, NULL, NULL);
    for (size_t i = 0; i < m; i++)
        if (strcmp (e [i].name, "blocks.0.self_attn.o.weight") == 0) {
            e [i].t.shape [1] = 32;             //  a [64, 32] view of the [64, 64] data
            e [i].t.nbytes /= 2;
        }
    s_write (path, e, m);
    assert (s_run (b, path, "fp32", S_HEADS, x, ctx, out, &err) == -1);
    assert (err && strstr (err, "self_attn.o.weight") && strstr (err, "shape"));
    free (err);
    err = NULL;
    m = s_copy_tensors (ckpt, e, NULL, NULL);
    //  An image branch without the 36-channel patch embedding it needs.
    float k_img [64 * 64] = { 0 };
    snprintf (e [m].name, sizeof (e [m].name), "img_emb.proj.1.weight");
    e [m].t = e [0].t;
    e [m].t.name = e [m].name;
    e [m].t.dtype = VDGX_DTYPE_F32;
    e [m].t.ndim = 2;
    e [m].t.shape [0] = e [m].t.shape [1] = 64;
    e [m].t.data = k_img;
    e [m].t.nbytes = sizeof (k_img);
    s_write (path, e, m + 1);
    assert (s_run (b, path, "fp32", S_HEADS, x, ctx, out, &err) == -1);
    assert (err && strstr (err, "image-to-video"));
    free (err);
    err = NULL;
    f = fopen (path, "w");
    assert (f);
    fprintf (f, "this is not a checkpoint");
    fclose (f);
    assert (s_run (b, path, "fp32", S_HEADS, x, ctx, out, &err) == -1 && err);
    free (err);
    err = NULL;
    unlink (path);
    assert (s_run (b, ref, "int3", S_HEADS, x, ctx, out, &err) == -1 && err);
    free (err);
    err = NULL;
    assert (s_run (b, ref, "fp32", 5, x, ctx, out, &err) == -1 && err);      //  64 % 5 != 0
    free (err);
    err = NULL;
    assert (s_run (b, dir, "fp32", S_HEADS, x, ctx, out, &err) == -1 && err); //  empty folder
    free (err);
    err = NULL;
    assert (rmdir (dir) == 0);

    //  Forward argument checks, and the sampling loop.
    wan21_dit_load_opts_t opts = { .precision = "fp32", .num_heads = S_HEADS, .text_len = S_TEXT_LEN };
    wan21_dit_t *dit = wan21_dit_load (b, ref, &opts, &err);
    assert (dit);
    float long_ctx [17 * 32] = { 0 };
    assert (wan21_dit_context_new (dit, long_ctx, 17, &err) == NULL && err);
    free (err);
    err = NULL;
    wan21_dit_context_t *cc = wan21_dit_context_new (dit, ctx, 5, &err);
    assert (cc);
    assert (wan21_dit_forward (dit, x, 3, 3, 6, 500, cc, out, &err) == -1 && err);
    free (err);
    err = NULL;
    wan21_dit_context_destroy (dit, &cc);
    assert (cc == NULL);

    atomic_int cancel;
    atomic_init (&cancel, 0);
    s_progress_t prog = { 0 };
    wan21_dit_sample_args_t a = {
        .context = ctx, .context_len = 5, .context_null = ctx + 32, .context_null_len = 3,
        .width = 48, .height = 32, .frames = 9, .steps = 3, .guidance = 5.0, .shift = 5.0,
        .sampler = VDGX_SOLVER_UNIPC, .seed = 7, .progress = s_progress, .progress_ctx = &prog,
        .cancel = &cancel,
    };
    float *l1 = NULL, *l2 = NULL, *l3 = NULL;
    int64_t shape [4];
    assert (wan21_dit_sample (dit, &a, &l1, shape, &err) == 0 && l1);
    assert (prog.calls == 3 && shape [0] == 16 && shape [1] == 3 && shape [2] == 4 && shape [3] == 6);
    prog.calls = 0;
    assert (wan21_dit_sample (dit, &a, &l2, shape, &err) == 0 && l2);
    assert (memcmp (l1, l2, n * sizeof (float)) == 0);      //  same seed, same latent
    a.seed = 8;
    prog.calls = 0;
    assert (wan21_dit_sample (dit, &a, &l3, shape, &err) == 0 && l3);
    assert (memcmp (l1, l3, n * sizeof (float)) != 0);
    for (size_t i = 0; i < n; i++)
        assert (isfinite (l1 [i]));
    free (l1); free (l2); free (l3);
    l1 = NULL;
    //  Cancelled after the first step: the loop stops at the next boundary.
    prog.calls = 0;
    prog.cancel = &cancel;
    prog.cancel_after = 1;
    assert (wan21_dit_sample (dit, &a, &l1, shape, &err) == VDGX_ENGINE_CANCELLED);
    assert (l1 == NULL && prog.calls == 1);
    //  Guidance without a negative prompt, bad sizes and steps are errors.
    atomic_store (&cancel, 0);
    prog.cancel = NULL;
    a.context_null = NULL;
    assert (wan21_dit_sample (dit, &a, &l1, shape, &err) == -1 && err);
    free (err);
    err = NULL;
    a.guidance = 1.0;           //  no CFG: the negative prompt is not needed
    prog.calls = 0;
    assert (wan21_dit_sample (dit, &a, &l1, shape, &err) == 0 && l1);
    free (l1);
    l1 = NULL;
    a.frames = 8;
    assert (wan21_dit_sample (dit, &a, &l1, shape, &err) == -1 && err);
    free (err);
    err = NULL;
    a.frames = 9;
    a.steps = 0;
    assert (wan21_dit_sample (dit, &a, &l1, shape, &err) == -1 && err);
    free (err);
    err = NULL;
    wan21_dit_destroy (&dit);
    assert (dit == NULL);

    //  Any ffn_dim the official code accepts: ffn_dim 32 < dim 64 (the head then has buffers
    //  of its own) computes what ffn_dim 128 computes when the extra hidden units feed zero
    //  columns of ffn.2 (that one reuses the FFN buffers for the head).
    {
        const int64_t F = 128, FS = 32, D = 64;
        float *small_out = malloc (sizeof (out)), *pad_out = malloc (sizeof (out));
        char ftmp [] = "/tmp/wan21-dit-ffn-XXXXXX";
        assert (mkdtemp (ftmp));
        for (int variant = 0; variant < 2; variant++) {
            size_t cnt = s_copy_tensors (ckpt, e, NULL, NULL);
            for (size_t i = 0; i < cnt; i++) {
                const char *nm = e [i].name;
                bool w0 = strstr (nm, ".ffn.0.weight") != NULL, b0 = strstr (nm, ".ffn.0.bias") != NULL;
                bool w2 = strstr (nm, ".ffn.2.weight") != NULL;
                if (!w0 && !b0 && !w2)
                    continue;
                int64_t numel = w0 || w2? F * D: F;
                float *full = malloc (sizeof (float) * (size_t) numel);
                assert (full && vdgx_ckpt_read_f32 (&e [i].t, full, NULL) == 0);
                float *dst = malloc (sizeof (float) * (size_t) numel);
                int64_t keep = variant == 0? FS: F;
                if (w0 || b0) {     //  rows [F, D] / [F]: the first FS rows (all for the padded one)
                    int64_t row = w0? D: 1;
                    memcpy (dst, full, sizeof (float) * (size_t) (keep * row));
                }
                else                //  ffn.2 [D, F]: the first FS columns, zeros after them
                    for (int64_t r = 0; r < D; r++)
                        for (int64_t col = 0; col < keep; col++)
                            dst [r * keep + col] = col < FS? full [r * F + col]: 0.0f;
                free (full);
                e [i].owned = dst;
                e [i].t.data = dst;
                e [i].t.dtype = VDGX_DTYPE_F32;
                e [i].t.shape [w2? 1: 0] = keep;
                e [i].t.nbytes = sizeof (float) * (size_t) (w0 || w2? keep * D: keep);
            }
            snprintf (path, sizeof (path), "%s/ffn%d.safetensors", ftmp, variant);
            s_write (path, e, cnt);
            for (size_t i = 0; i < cnt; i++)
                free (e [i].owned);
            assert (s_run (b, path, "fp32", S_HEADS, x, ctx, variant? pad_out: small_out, &err) == 0);
            unlink (path);
        }
        double rel = s_relnorm (small_out, pad_out, n);
        if (verbose)
            printf ("  ffn_dim 32 vs zero-padded 128: relative norm %.3g\n", rel);
        assert (rel < 1e-6 && s_relnorm (small_out, out_ref, n) > 1e-3);
        assert (rmdir (ftmp) == 0);
        free (small_out);
        free (pad_out);
    }

    //  Random full-width-style model (what the benchmark builds), one small forward.
    wan21_dit_config_t small = c13;
    small.dim = 128; small.num_heads = 2; small.ffn_dim = 256; small.num_layers = 1;
    small.text_dim = 64; small.text_len = 8;
    dit = wan21_dit_new_random (b, &small, "fp8", 1, &err);
    assert (dit);
    float tctx [8 * 64];
    vdgx_rng_normal_at (13, 0, tctx, 8 * 64);
    cc = wan21_dit_context_new (dit, tctx, 8, &err);
    assert (cc);
    assert (wan21_dit_forward (dit, x, 3, 4, 6, 999, cc, out, &err) == 0);
    for (size_t i = 0; i < n; i++)
        assert (isfinite (out [i]));
    wan21_dit_context_destroy (dit, &cc);
    wan21_dit_destroy (&dit);

    //  Image-to-video (the official numbers: vdgx-refcheck wan21-i2v --part dit): a random
    //  I2V DiT takes cat(x, y) and needs the CLIP features; the image changes the output.
    {
        wan21_dit_config_t ic = small;
        ic.in_dim = 36; ic.img_dim = 32; ic.text_len = 512; ic.text_dim = 64;
        wan21_dit_t *idit = wan21_dit_new_random (b, &ic, "fp32", 3, &err);
        assert (idit && wan21_dit_config (idit)->img_dim == 32);
        ic.text_len = 8;
        assert (wan21_dit_new_random (b, &ic, "fp32", 3, &err) == NULL && err && strstr (err, "512"));
        free (err);
        err = NULL;
        float img [257 * 32], img2 [257 * 32];
        vdgx_rng_normal_at (21, 0, img, 257 * 32);
        vdgx_rng_normal_at (22, 0, img2, 257 * 32);
        assert (wan21_dit_context_new (idit, tctx, 8, &err) == NULL && err && strstr (err, "CLIP"));
        free (err);
        err = NULL;
        assert (wan21_dit_context_new_image (idit, tctx, 8, img, 256, &err) == NULL && err);
        free (err);
        err = NULL;
        size_t nin = 36 * 3 * 4 * 6, nout = 16 * 3 * 4 * 6;
        float *xin = malloc (nin * sizeof (float)), *o1 = malloc (nout * sizeof (float));
        float *o2 = malloc (nout * sizeof (float));
        assert (xin && o1 && o2);
        vdgx_rng_normal_at (23, 0, xin, nin);
        wan21_dit_context_t *c1 = wan21_dit_context_new_image (idit, tctx, 8, img, 257, &err);
        wan21_dit_context_t *c2 = wan21_dit_context_new_image (idit, tctx, 8, img2, 257, &err);
        assert (c1 && c2);
        assert (wan21_dit_forward (idit, xin, 3, 4, 6, 500, c1, o1, &err) == 0);
        assert (wan21_dit_forward (idit, xin, 3, 4, 6, 500, c2, o2, &err) == 0);
        double infl = s_relnorm (o1, o2, nout);
        if (verbose)
            printf ("  i2v: another image changes the output by %.3g\n", infl);
        assert (infl > 1e-6);
        wan21_dit_context_destroy (idit, &c1);
        wan21_dit_context_destroy (idit, &c2);
        //  The sampler refuses an image DiT without y / features, and a T2V DiT with them.
        float *lat = NULL;
        int64_t shp [4];
        wan21_dit_sample_args_t ia = {
            .context = tctx, .context_len = 8, .width = 48, .height = 32, .frames = 9, .steps = 2,
            .guidance = 1.0, .shift = 5.0, .sampler = VDGX_SOLVER_UNIPC, .seed = 1,
        };
        assert (wan21_dit_sample (idit, &ia, &lat, shp, &err) == -1 && err && !lat);
        free (err);
        err = NULL;
        ia.y = xin + 16 * 3 * 4 * 6;
        ia.image = img;
        ia.image_tokens = 257;
        assert (wan21_dit_sample (idit, &ia, &lat, shp, &err) == 0 && lat && shp [0] == 16);
        for (size_t i = 0; i < nout; i++)
            assert (isfinite (lat [i]));
        free (lat);
        lat = NULL;
        wan21_dit_destroy (&idit);
        dit = wan21_dit_new_random (b, &small, "fp32", 1, &err);
        assert (dit);
        assert (wan21_dit_context_new_image (dit, tctx, 8, img, 257, &err) == NULL && err);
        free (err);
        err = NULL;
        assert (wan21_dit_sample (dit, &ia, &lat, shp, &err) == -1 && err);
        free (err);
        err = NULL;
        wan21_dit_destroy (&dit);
        //  The memory estimate counts the image branch.
        wan21_dit_config_t t14, i14;
        assert (wan21_dit_config_preset ("14b", &t14) == 0 && wan21_dit_config_preset ("i2v-14b", &i14) == 0);
        assert (i14.in_dim == 36 && i14.img_dim == 1280);
        assert (wan21_dit_memory_estimate (&i14, "bf16", 0, 2) > wan21_dit_memory_estimate (&t14, "bf16", 0, 2)
                                                                + 40ull * 2 * 5120 * 5120 * 2);
        free (xin);
        free (o1);
        free (o2);
    }

    free (e);
    vdgx_ckpt_destroy (&ckpt);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
