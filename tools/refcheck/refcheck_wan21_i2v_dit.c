/*  refcheck_wan21_i2v_dit.c - the image-to-video Wan 2.1 DiT (model_type i2v) against one
    official WanModel forward: x and y concatenated to 36 channels, the CLIP features through
    img_emb, the text rows of the embedding, per block the shared cross-attention query, the
    image keys/values and the summed text + image attention, and the output. Also loads the
    exported helper refcheck_wan21_i2v_dit_load for the pipeline part.
*/
#include "refcheck.h"
#include "wan21_dit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_dit_i2v.safetensors"
#define S_WEIGHTS "weights_dit_i2v.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    int64_t text_rows;          //  rows of text_embedding.rows0_L
    int taps;
} s_tap_ctx_t;

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_tap_ctx_t *ctx = (s_tap_ctx_t *) arg;
    vdgx_refcheck_t *rc = ctx->rc;
    char stored [160], label [192];
    snprintf (stored, sizeof stored, "dit.mid.%s", name);
    snprintf (label, sizeof label, "i2v %s", stored);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (rc, S_VEC);
    size_t n = (size_t) vdgx_tensor_numel (t);
    float *host = malloc ((n? n: 1) * sizeof (float));
    if (!host || !vec || vdgx_tensor_to_f32 (rc->backend, t, host)) {
        printf ("  FAIL %s: cannot read the result back\n", label);
        rc->checks++;
        rc->failures++;
        free (host);
        return;
    }
    if (strcmp (name, "text_embedding") == 0) {
        //  Only the first L+1 rows are stored (the padded rows all equal row L).
        snprintf (stored, sizeof stored, "dit.mid.text_embedding.rows0_L");
        snprintf (label, sizeof label, "i2v %s", stored);
        int64_t d = t->shape [t->ndim - 1];
        vdgx_refcheck_compare_stored (rc, label, host, (size_t) (ctx->text_rows * d), S_VEC, stored);
        ctx->taps++;
    }
    else
    if (strcmp (name, "patch_embedding") == 0) {
        //  Ours is token-major [L, D]; the stored Conv3d output is [1, D, F, H, W].
        int64_t L = t->shape [0], D = t->shape [1];
        float *cf = malloc (n * sizeof (float));
        if (cf) {
            for (int64_t l = 0; l < L; l++)
                for (int64_t d = 0; d < D; d++)
                    cf [d * L + l] = host [l * D + d];
            vdgx_refcheck_compare_stored (rc, label, cf, n, S_VEC, stored);
            ctx->taps++;
        }
        free (cf);
    }
    else
    if (vdgx_ckpt_find (vec, stored)) {
        vdgx_refcheck_compare_stored (rc, label, host, n, S_VEC, stored);
        ctx->taps++;
    }
    free (host);
}

//  The tiny I2V DiT of the vector directory (manifest num_heads; text_len from it, 512).
wan21_dit_t *refcheck_wan21_i2v_dit_load (vdgx_refcheck_t *rc);
wan21_dit_t *
refcheck_wan21_i2v_dit_load (vdgx_refcheck_t *rc)
{
    json_t *cfg = json_object_get (json_object_get (rc->manifest, "configs"), "dit");
    json_t *heads = json_object_get (cfg, "num_heads");
    json_t *text_len = json_object_get (cfg, "text_len");
    if (!json_is_integer (heads) || !json_is_integer (text_len)) {
        fprintf (stderr, "refcheck i2v dit: manifest configs.dit lacks num_heads / text_len\n");
        return NULL;
    }
    char path [4096];
    snprintf (path, sizeof (path), "%s/%s", rc->dir, S_WEIGHTS);
    wan21_dit_load_opts_t opts = {
        .precision = rc->gpu? "bf16": "fp32",
        .num_heads = (int) json_integer_value (heads),
        .text_len = (int) json_integer_value (text_len),
    };
    char *err = NULL;
    wan21_dit_t *dit = wan21_dit_load (rc->backend, path, &opts, &err);
    if (!dit) {
        fprintf (stderr, "refcheck i2v dit: %s\n", err? err: "cannot load");
        free (err);
        return NULL;
    }
    const wan21_dit_config_t *c = wan21_dit_config (dit);
    rc->checks++;
    if (json_integer_value (json_object_get (cfg, "in_dim")) != c->in_dim
    ||  json_integer_value (json_object_get (cfg, "out_dim")) != c->out_dim
    ||  json_integer_value (json_object_get (cfg, "img_emb_in_dim")) != c->img_dim
    ||  json_integer_value (json_object_get (cfg, "num_layers")) != c->num_layers
    ||  c->img_pos != 0) {
        printf ("  i2v dit config inferred from the shapes: FAIL (in %d out %d img_dim %d layers %d)\n",
                c->in_dim, c->out_dim, c->img_dim, c->num_layers);
        rc->failures++;
    }
    else
        printf ("  i2v dit config inferred from the shapes (in %d, out %d, img_dim %d, layers %d, "
                "text_len %d): PASS\n", c->in_dim, c->out_dim, c->img_dim, c->num_layers, c->text_len);
    return dit;
}

int
vdgx_refcheck_wan21_i2v_dit (vdgx_refcheck_t *rc)
{
    wan21_dit_t *dit = refcheck_wan21_i2v_dit_load (rc);
    if (!dit)
        return -1;
    const wan21_dit_config_t *c = wan21_dit_config (dit);
    int result = -1;
    int64_t xs [VDGX_MAX_DIMS], ys [VDGX_MAX_DIMS], cs [VDGX_MAX_DIMS], fs [VDGX_MAX_DIMS];
    int xn = 0, yn = 0, cn = 0, fn = 0;
    size_t nx = 0, ny = 0, nt = 0;
    float *x = vdgx_refcheck_load (rc, S_VEC, "dit.in.x", xs, &xn, &nx);
    float *y = vdgx_refcheck_load (rc, S_VEC, "dit.in.y", ys, &yn, &ny);
    float *ctx = vdgx_refcheck_load (rc, S_VEC, "dit.in.context", cs, &cn, NULL);
    float *clip = vdgx_refcheck_load (rc, S_VEC, "dit.in.clip_fea", fs, &fn, NULL);
    int64_t *t = vdgx_refcheck_load_i64 (rc, S_VEC, "dit.in.t", NULL, NULL, &nt);
    float *xin = NULL, *out = NULL;
    wan21_dit_context_t *context = NULL;
    char *err = NULL;
    if (!x || !y || !ctx || !clip || !t || xn != 4 || yn != 4 || cn != 2 || fn != 3 || nt != 1
    ||  xs [0] + ys [0] != c->in_dim || xs [1] != ys [1] || xs [2] != ys [2] || xs [3] != ys [3]
    ||  fs [2] != c->img_dim) {
        fprintf (stderr, "refcheck i2v dit: inputs missing or of unexpected shapes\n");
        goto done;
    }
    //  The model's own x = cat([x, y]) along channels.
    xin = malloc ((nx + ny) * sizeof (float));
    out = malloc (nx * sizeof (float));
    if (!xin || !out)
        goto done;
    memcpy (xin, x, nx * sizeof (float));
    memcpy (xin + nx, y, ny * sizeof (float));
    s_tap_ctx_t tctx = { rc, cs [0] + 1, 0 };
    wan21_dit_set_tap (dit, s_tap, &tctx);
    context = wan21_dit_context_new_image (dit, ctx, cs [0], clip, fs [1], &err);
    if (!context) {
        fprintf (stderr, "refcheck i2v dit: %s\n", err? err: "context failed");
        goto done;
    }
    if (wan21_dit_forward (dit, xin, xs [1], xs [2], xs [3], t [0], context, out, &err)) {
        fprintf (stderr, "refcheck i2v dit: %s\n", err? err: "forward failed");
        goto done;
    }
    vdgx_refcheck_compare_stored (rc, "i2v dit.out", out, nx, S_VEC, "dit.out");
    //  Every stored intermediate: patch, time (2), text, img_emb, 6 per block, head.
    int want = 6 + 6 * c->num_layers;
    rc->checks++;
    if (tctx.taps < want) {
        printf ("  i2v dit intermediates: %d of %d compared: FAIL\n", tctx.taps, want);
        rc->failures++;
    }
    else
        printf ("  i2v dit intermediates: %d compared: PASS\n", tctx.taps);
    result = 0;
done:
    free (err);
    if (context)
        wan21_dit_context_destroy (dit, &context);
    wan21_dit_destroy (&dit);
    free (x); free (y); free (ctx); free (clip); free (t); free (xin); free (out);
    return result;
}
