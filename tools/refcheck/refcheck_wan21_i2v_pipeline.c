/*  refcheck_wan21_i2v_pipeline.c - the whole official WanI2V.generate run (UniPC 3 steps,
    guide 5, shift 5, 9 frames, max_area 2000): the size from the image's aspect, the
    resized image, the mask, the y latent and y, the CLIP features, the initial noise from the
    seed (torch.randn), every step's latent / t / cond / uncond of wan21_dit_sample, x0 and
    the decoded video. The text contexts are the stored umT5 outputs.
*/
#include "refcheck.h"
#include "wan21_clip.h"
#include "wan21_dit.h"
#include "wan21_i2v.h"
#include "wan21_vae.h"
#include "vdgx_torchrng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_i2v.safetensors"

wan21_dit_t *refcheck_wan21_i2v_dit_load (vdgx_refcheck_t *rc);

static void
s_on_step (void *arg, int step, int64_t t, const float *latent, const float *cond,
           const float *uncond, size_t n)
{
    vdgx_refcheck_t *rc = (vdgx_refcheck_t *) arg;
    char name [96], label [128];
    size_t nt = 0;
    snprintf (name, sizeof name, "i2v.step%d.t", step);
    int64_t *want = vdgx_refcheck_load_i64 (rc, S_VEC, name, NULL, NULL, &nt);
    rc->checks++;
    if (!want || nt != 1 || want [0] != t) {
        printf ("  FAIL %s = %lld (want %lld)\n", name, (long long) t, want? (long long) want [0]: -1LL);
        rc->failures++;
    }
    else
        printf ("  PASS %s = %lld\n", name, (long long) t);
    free (want);
    const char *parts [3] = { "latent", "cond", "uncond" };
    const float *got [3] = { latent, cond, uncond };
    for (int i = 0; i < 3; i++) {
        snprintf (name, sizeof name, "i2v.step%d.%s", step, parts [i]);
        snprintf (label, sizeof label, "pipeline %s", name);
        vdgx_refcheck_compare_stored (rc, label, got [i], n, S_VEC, name);
    }
}

typedef struct {
    float *video;               //  [3, F, H, W]
    int frames, width, height;
} s_video_t;

static int
s_on_frame (void *arg, int index, const float *chw, int width, int height)
{
    s_video_t *v = (s_video_t *) arg;
    if (index >= v->frames || width != v->width || height != v->height)
        return -1;
    size_t hw = (size_t) width * height;
    for (int c = 0; c < 3; c++)
        memcpy (v->video + ((size_t) c * v->frames + index) * hw, chw + c * hw, hw * sizeof (float));
    return 0;
}

int
vdgx_refcheck_wan21_i2v_pipeline (vdgx_refcheck_t *rc)
{
    json_t *pipe = json_object_get (json_object_get (rc->manifest, "configs"), "pipeline");
    json_t *clipc = json_object_get (json_object_get (rc->manifest, "configs"), "clip");
    json_t *pix = json_object_get (pipe, "pixel_hw");
    if (!json_is_object (pipe) || !json_is_integer (json_object_get (clipc, "vision_heads"))
    ||  json_array_size (pix) != 2) {
        fprintf (stderr, "refcheck pipeline: manifest configs.pipeline / clip missing\n");
        return -1;
    }
    int64_t max_area = json_integer_value (json_object_get (pipe, "max_area"));
    int frames = (int) json_integer_value (json_object_get (pipe, "frame_num"));
    int steps = (int) json_integer_value (json_object_get (pipe, "sampling_steps"));
    double shift = json_number_value (json_object_get (pipe, "shift"));
    double guide = json_number_value (json_object_get (pipe, "guide_scale"));
    uint64_t seed = (uint64_t) json_integer_value (json_object_get (pipe, "seed"));
    char path [4096];
    char *err = NULL;
    int result = -1;
    wan21_clip_t *clip = NULL;
    wan21_vae_t *vae = NULL;
    wan21_dit_t *dit = NULL;
    wan21_i2v_cond_t cond = { 0 };
    uint8_t *rgb = NULL;
    float *ctx = NULL, *ctx_null = NULL, *noise = NULL, *x0 = NULL, *resized = NULL, *mask = NULL;
    s_video_t vid = { 0 };

    snprintf (path, sizeof path, "%s/weights_clip.safetensors", rc->dir);
    clip = wan21_clip_load (rc->backend, path, (int) json_integer_value (json_object_get (clipc, "vision_heads")), &err);
    if (!clip)
        goto fail;
    snprintf (path, sizeof path, "%s/weights_vae.safetensors", rc->dir);
    vae = wan21_vae_load (rc->backend, path, &err);
    if (!vae)
        goto fail;
    dit = refcheck_wan21_i2v_dit_load (rc);
    if (!dit)
        goto done;

    //  The input image (the same as the CLIP vectors').
    int64_t is [VDGX_MAX_DIMS];
    int in = 0;
    size_t nimg = 0;
    int64_t *img = vdgx_refcheck_load_i64 (rc, "vectors_clip.safetensors", "clip.in.image_u8", is, &in, &nimg);
    if (!img || in != 3 || is [2] != 3) {
        free (img);
        fprintf (stderr, "refcheck pipeline: clip.in.image_u8 missing\n");
        goto done;
    }
    rgb = malloc (nimg);
    if (!rgb) {
        free (img);
        goto done;
    }
    for (size_t i = 0; i < nimg; i++)
        rgb [i] = (uint8_t) img [i];
    free (img);
    wan21_i2v_image_t image = { rgb, (int) is [1], (int) is [0] };

    //  Size, resized image, mask.
    int width = 0, height = 0;
    rc->checks++;
    if (wan21_i2v_size (image.width, image.height, max_area, &width, &height, &err)
    ||  height != json_integer_value (json_array_get (pix, 0))
    ||  width != json_integer_value (json_array_get (pix, 1))) {
        printf ("  FAIL pipeline size %dx%d (want %lldx%lld)\n", width, height,
                (long long) json_integer_value (json_array_get (pix, 1)),
                (long long) json_integer_value (json_array_get (pix, 0)));
        rc->failures++;
        goto done;
    }
    printf ("  PASS pipeline size from the image's aspect: %dx%d\n", width, height);
    resized = malloc (3 * (size_t) width * height * sizeof (float));
    int64_t T = 1 + (frames - 1) / 4, lat = T * (height / 8) * (width / 8);
    mask = malloc ((size_t) (4 * lat) * sizeof (float));
    if (!resized || !mask)
        goto done;
    wan21_i2v_resize (&image, width, height, resized);
    vdgx_refcheck_compare_stored (rc, "pipeline i2v.resized", resized, 3 * (size_t) width * height, S_VEC, "i2v.resized");
    wan21_i2v_mask (frames, height / 8, width / 8, false, mask);
    vdgx_refcheck_compare_stored (rc, "pipeline i2v.mask", mask, (size_t) (4 * lat), S_VEC, "i2v.mask");

    //  Conditioning: CLIP features, y latent, y.
    if (wan21_i2v_condition (clip, vae, &image, NULL, width, height, frames, &cond, &err))
        goto fail;
    int z = (int) cond.shape [0];
    vdgx_refcheck_compare_stored (rc, "pipeline i2v.clip_fea", cond.clip,
                                  (size_t) cond.clip_tokens * wan21_clip_dim (clip), S_VEC, "i2v.clip_fea");
    vdgx_refcheck_compare_stored (rc, "pipeline i2v.y_latent", cond.y + 4 * lat, (size_t) (z * lat), S_VEC, "i2v.y_latent");
    vdgx_refcheck_compare_stored (rc, "pipeline i2v.y", cond.y, (size_t) ((4 + z) * lat), S_VEC, "i2v.y");

    //  The initial noise: torch.randn with a generator seeded with the run seed.
    size_t nn = 0;
    noise = vdgx_refcheck_load (rc, S_VEC, "i2v.noise", NULL, NULL, &nn);
    if (!noise || nn != (size_t) (z * lat))
        goto done;
    float *mine = malloc (nn * sizeof (float));
    vdgx_torchrng_t *g = vdgx_torchrng_new (seed);
    if (mine && g) {
        vdgx_torchrng_randn (g, mine, nn);
        vdgx_refcheck_compare (rc, "pipeline i2v.noise (torch.randn of the seed)", mine, noise, nn);
    }
    vdgx_torchrng_destroy (&g);
    free (mine);

    //  The loop on the stored noise and contexts.
    int64_t cs [VDGX_MAX_DIMS], us [VDGX_MAX_DIMS];
    int cn = 0, un = 0;
    ctx = vdgx_refcheck_load (rc, S_VEC, "i2v.context", cs, &cn, NULL);
    ctx_null = vdgx_refcheck_load (rc, S_VEC, "i2v.context_null", us, &un, NULL);
    if (!ctx || !ctx_null || cn != 2 || un != 2)
        goto done;
    wan21_dit_sample_args_t a = {
        .context = ctx, .context_len = cs [0], .context_null = ctx_null, .context_null_len = us [0],
        .width = width, .height = height, .frames = frames, .steps = steps, .guidance = guide,
        .shift = shift, .sampler = VDGX_SOLVER_UNIPC, .noise = noise,
        .y = cond.y, .image = cond.clip, .image_tokens = cond.clip_tokens,
        .on_step = s_on_step, .on_step_ctx = rc,
    };
    int64_t shape [4];
    if (wan21_dit_sample (dit, &a, &x0, shape, &err))
        goto fail;
    vdgx_refcheck_compare_stored (rc, "pipeline i2v.x0", x0, nn, S_VEC, "i2v.x0");

    //  Decode.
    vid.frames = frames;
    vid.width = width;
    vid.height = height;
    vid.video = malloc (3 * (size_t) frames * width * height * sizeof (float));
    if (!vid.video)
        goto done;
    wan21_vae_decode_opts_t vo = { .raw = false };
    if (wan21_vae_decode (vae, x0, shape [1], shape [2], shape [3], &vo, s_on_frame, &vid, &err))
        goto fail;
    vdgx_refcheck_compare_stored (rc, "pipeline i2v.video", vid.video,
                                  3 * (size_t) frames * width * height, S_VEC, "i2v.video");
    result = 0;
    goto done;
fail:
    fprintf (stderr, "refcheck pipeline: %s\n", err? err: "failed");
done:
    free (err);
    wan21_i2v_cond_free (&cond);
    wan21_clip_destroy (&clip);
    wan21_vae_destroy (&vae);
    wan21_dit_destroy (&dit);
    free (rgb); free (ctx); free (ctx_null); free (noise); free (x0); free (resized); free (mask);
    free (vid.video);
    return result;
}
