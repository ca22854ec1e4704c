/*  wan21_i2v.c - the image conditioning of Wan 2.1 I2V / FLF2V (wan21_i2v.h). */
#include "wan21_i2v.h"
#include "vdgx_nn.h"
#include "vdgx_util.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
wan21_i2v_size (int img_width, int img_height, int64_t max_area, int *width, int *height,
                char **err)
{
    assert (width && height);
    if (img_width <= 0 || img_height <= 0 || max_area <= 0) {
        vdgx_set_error (err, "wan21 i2v: empty image (%dx%d)", img_width, img_height);
        return -1;
    }
    //  float64 as numpy: sqrt(max_area * aspect) // vae_stride // patch * patch.
    double aspect = (double) img_height / (double) img_width;
    double lh = floor (floor (sqrt ((double) max_area * aspect) / 8.0) / 2.0) * 2.0;
    double lw = floor (floor (sqrt ((double) max_area / aspect) / 8.0) / 2.0) * 2.0;
    if (lh < 2 || lw < 2 || lh > 8192 || lw > 8192) {
        vdgx_set_error (err, "wan21 i2v: an image of %dx%d gives a %.0fx%.0f video at this size; "
                        "its aspect ratio is too extreme", img_width, img_height, 8 * lw, 8 * lh);
        return -1;
    }
    *width = (int) (8 * lw);
    *height = (int) (8 * lh);
    return 0;
}

void
wan21_i2v_resize (const wan21_i2v_image_t *image, int width, int height, float *out)
{
    assert (image && image->rgb && out);
    size_t hw = (size_t) image->width * (size_t) image->height;
    float *img = malloc (3 * hw * sizeof (float));
    assert (img);
    wan21_clip_to_planar (image->rgb, image->width, image->height, img);
    vdgx_nn_resize_bicubic (img, 3, image->height, image->width, height, width, out);
    free (img);
}

void
wan21_i2v_mask (int frames, int64_t lat_h, int64_t lat_w, bool last, float *mask)
{
    assert (frames >= 1 && (frames - 1) % 4 == 0 && mask);
    int64_t T = 1 + (frames - 1) / 4, hw = lat_h * lat_w;
    for (int k = 0; k < 4; k++)
        for (int64_t j = 0; j < T; j++) {
            int64_t frame = j == 0? 0: 4 * j + k - 3;
            float v = frame == 0 || (last && frame == frames - 1)? 1.f: 0.f;
            float *p = mask + ((size_t) k * T + j) * hw;
            for (int64_t i = 0; i < hw; i++)
                p [i] = v;
        }
}

void
wan21_i2v_cond_free (wan21_i2v_cond_t *cond)
{
    if (!cond)
        return;
    free (cond->y);
    free (cond->clip);
    memset (cond, 0, sizeof *cond);
}

//  torchvision center_crop of planar img [3, h, w] to crop_h x crop_w (zero padding where
//  the crop is larger: left/top (d // 2), right/bottom ((d + 1) // 2), then the crop at
//  round((h - crop_h) / 2), round((w - crop_w) / 2)). Returns malloc'd [3, crop_h, crop_w].
static float *
s_center_crop (const float *img, int h, int w, int crop_h, int crop_w)
{
    float *out = calloc (3 * (size_t) crop_h * (size_t) crop_w, sizeof (float));
    if (!out)
        return NULL;
    int pad_t = crop_h > h? (crop_h - h) / 2: 0, pad_l = crop_w > w? (crop_w - w) / 2: 0;
    int pad_b = crop_h > h? (crop_h - h + 1) / 2: 0, pad_r = crop_w > w? (crop_w - w + 1) / 2: 0;
    int ph = h + pad_t + pad_b, pw = w + pad_l + pad_r;
    int top = (int) nearbyint ((ph - crop_h) / 2.0), left = (int) nearbyint ((pw - crop_w) / 2.0);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < crop_h; y++)
            for (int x = 0; x < crop_w; x++) {
                int sy = y + top - pad_t, sx = x + left - pad_l;
                if (sy >= 0 && sy < h && sx >= 0 && sx < w)
                    out [((size_t) c * crop_h + y) * crop_w + x] = img [((size_t) c * h + sy) * w + sx];
            }
    return out;
}

int
wan21_i2v_condition (wan21_clip_t *clip, wan21_vae_t *vae, const wan21_i2v_image_t *first,
                     const wan21_i2v_image_t *last, int width, int height, int frames,
                     wan21_i2v_cond_t *cond, char **err)
{
    assert (clip && vae && first && cond);
    memset (cond, 0, sizeof *cond);
    if (!first->rgb || first->width <= 0 || first->height <= 0
    ||  (last && (!last->rgb || last->width <= 0 || last->height <= 0))) {
        vdgx_set_error (err, "wan21 i2v: empty image");
        return -1;
    }
    if (width < 16 || height < 16 || width % 16 || height % 16 || frames < 1 || (frames - 1) % 4
    ||  (last && frames < 5)) {
        vdgx_set_error (err, "wan21 i2v: cannot condition a %dx%d video of %d frames", width,
                        height, frames);
        return -1;
    }
    if (!wan21_vae_has_encoder (vae)) {
        vdgx_set_error (err, "wan21 i2v: the VAE was loaded without its encoder");
        return -1;
    }
    int z = wan21_vae_z_dim (vae), cd = wan21_clip_dim (clip), ct = wan21_clip_tokens (clip);
    int64_t T = 1 + (frames - 1) / 4, lh = height / 8, lw = width / 8;
    size_t fw = (size_t) width * (size_t) height, lat = (size_t) (T * lh * lw);
    int nimg = last? 2: 1;
    size_t first_n = 3 * (size_t) first->width * first->height;
    float *img = malloc (first_n * sizeof (float));
    float *video = calloc (3 * (size_t) frames * fw, sizeof (float));
    float *resized = malloc (3 * fw * sizeof (float));
    float *lastc = NULL;
    cond->y = malloc ((size_t) (4 + z) * lat * sizeof (float));
    cond->clip = malloc ((size_t) nimg * ct * cd * sizeof (float));
    int rc = -1;
    if (!img || !video || !resized || !cond->y || !cond->clip) {
        vdgx_set_error (err, "wan21 i2v: out of memory (a %dx%d video of %d frames)", width, height, frames);
        goto out;
    }
    cond->width = width;
    cond->height = height;
    cond->frames = frames;
    cond->shape [0] = z;
    cond->shape [1] = T;
    cond->shape [2] = lh;
    cond->shape [3] = lw;
    cond->clip_tokens = (int64_t) nimg * ct;
    //  CLIP on the original image(s).
    wan21_clip_to_planar (first->rgb, first->width, first->height, img);
    if (wan21_clip_encode_planar (clip, img, first->width, first->height, cond->clip, err))
        goto out;
    //  VAE input [3, F, h, w]: the resized image as frame 0, zeros after (flf2v: last frame).
    vdgx_nn_resize_bicubic (img, 3, first->height, first->width, height, width, resized);
    for (int c = 0; c < 3; c++)
        memcpy (video + (size_t) c * frames * fw, resized + c * fw, fw * sizeof (float));
    if (last) {
        size_t last_n = 3 * (size_t) last->width * last->height;
        float *limg = malloc (last_n * sizeof (float));
        if (!limg) {
            vdgx_set_error (err, "wan21 i2v: out of memory (last image)");
            goto out;
        }
        wan21_clip_to_planar (last->rgb, last->width, last->height, limg);
        int lw_ = last->width, lh_ = last->height;
        if (lw_ != first->width || lh_ != first->height) {
            //  As the official code: sizes scaled by r, passed to center_crop as (h, w)
            //  in PIL's (w, h) order; Python's round() is to nearest even.
            double r = fmax ((double) first->width / lw_, (double) first->height / lh_);
            int crop_h = (int) nearbyint (lw_ * r), crop_w = (int) nearbyint (lh_ * r);
            if (crop_h <= 0 || crop_w <= 0 || (int64_t) crop_h * crop_w > (int64_t) 1 << 28) {
                free (limg);
                vdgx_set_error (err, "wan21 i2v: the last image (%dx%d) cannot be fitted to the first (%dx%d)",
                                lw_, lh_, first->width, first->height);
                goto out;
            }
            lastc = s_center_crop (limg, lh_, lw_, crop_h, crop_w);
            free (limg);
            if (!lastc) {
                vdgx_set_error (err, "wan21 i2v: out of memory (last image)");
                goto out;
            }
            lw_ = crop_w;
            lh_ = crop_h;
        }
        else
            lastc = limg;
        if (wan21_clip_encode_planar (clip, lastc, lw_, lh_, cond->clip + (size_t) ct * cd, err))
            goto out;
        vdgx_nn_resize_bicubic (lastc, 3, lh_, lw_, height, width, resized);
        for (int c = 0; c < 3; c++)
            memcpy (video + ((size_t) c * frames + frames - 1) * fw, resized + c * fw, fw * sizeof (float));
    }
    wan21_i2v_mask (frames, lh, lw, last != NULL, cond->y);
    if (wan21_vae_encode (vae, video, frames, height, width, cond->y + 4 * lat, err))
        goto out;
    rc = 0;
out:
    free (img);
    free (video);
    free (resized);
    free (lastc);
    if (rc)
        wan21_i2v_cond_free (cond);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Selftest: the size rule, the mask layout, the center crop and argument errors (the
//  numbers of the whole conditioning are checked by vdgx-refcheck wan21-i2v --part pipeline).

void
wan21_i2v_test (bool verbose)
{
    if (verbose)
        printf (" * wan21_i2v: ");
    //  The vectors' case: 260x150 image, max_area 2000 -> 48x32; 480P with a 16:9 image.
    int w = 0, h = 0;
    assert (wan21_i2v_size (260, 150, 2000, &w, &h, NULL) == 0 && w == 48 && h == 32);
    assert (wan21_i2v_size (1920, 1080, 832 * 480, &w, &h, NULL) == 0 && w == 832 && h == 464);
    assert (wan21_i2v_size (1080, 1920, 1280 * 720, &w, &h, NULL) == 0 && w == 720 && h == 1280);
    assert (wan21_i2v_size (512, 512, 832 * 480, &w, &h, NULL) == 0 && w == 624 && h == 624);
    char *err = NULL;
    assert (wan21_i2v_size (20000, 10, 832 * 480, &w, &h, &err) == -1 && err && strstr (err, "aspect"));
    free (err);
    err = NULL;
    assert (wan21_i2v_size (0, 10, 832 * 480, &w, &h, &err) == -1 && err);
    free (err);

    //  Mask: 9 frames -> 3 latent frames; only latent frame 0 is 1 (i2v); flf2v also
    //  channel 3 of the last latent frame (video frame 8).
    float m [4 * 3 * 2];
    wan21_i2v_mask (9, 1, 2, false, m);
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < 2; i++)
                assert (m [(k * 3 + j) * 2 + i] == (j == 0? 1.f: 0.f));
    wan21_i2v_mask (9, 1, 2, true, m);
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++)
            assert (m [(k * 3 + j) * 2] == (j == 0 || (j == 2 && k == 3)? 1.f: 0.f));

    //  Center crop: a larger crop pads with zeros around the image (left/top d // 2).
    float src [3 * 2 * 3];
    for (int i = 0; i < 18; i++)
        src [i] = (float) (i + 1);
    float *c = s_center_crop (src, 2, 3, 4, 5);
    assert (c);
    assert (c [0] == 0 && c [1 * 5 + 1] == 1 && c [1 * 5 + 3] == 3 && c [2 * 5 + 1] == 4 && c [3 * 5 + 1] == 0);
    assert (c [20 + 1 * 5 + 1] == 7);
    free (c);
    c = s_center_crop (src, 2, 3, 2, 1);        //  smaller: the middle column
    assert (c && c [0] == 2 && c [1] == 5 && c [2] == 8);
    free (c);

    //  Resize keeps a flat image flat (bicubic weights sum to 1): 127 -> 127/255*2-1.
    uint8_t flat [5 * 7 * 3];
    memset (flat, 127, sizeof flat);
    wan21_i2v_image_t im = { flat, 7, 5 };
    float out [3 * 16 * 32];
    wan21_i2v_resize (&im, 32, 16, out);
    for (int i = 0; i < 3 * 16 * 32; i++)
        assert (fabsf (out [i] - (127.f / 255.f - 0.5f) / 0.5f) < 1e-5f);
    if (verbose)
        printf ("OK\n");
}
