/*  refcheck_wan21_dit.c - the Wan 2.1 DiT against one official WanModel forward: the RoPE
    table, every stored intermediate (embeddings, per-block norms/projections/attentions/FFN,
    head) and the output, on the tiny random-weight model of vectors_dit.safetensors.
*/
#include "refcheck.h"
#include "wan21_dit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_dit.safetensors"

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    vdgx_refcheck_t *rc = (vdgx_refcheck_t *) arg;
    char label [128];
    snprintf (label, sizeof (label), "dit.mid.%s", name);
    if (strcmp (name, "patch_embedding") == 0) {
        //  Ours is token-major [L, D]; the stored Conv3d output is [1, D, F, H, W].
        int64_t L = t->shape [0], D = t->shape [1];
        float *tok = malloc ((size_t) (L * D) * sizeof (float));
        float *chw = malloc ((size_t) (L * D) * sizeof (float));
        if (tok && chw && vdgx_tensor_to_f32 (rc->backend, t, tok) == 0) {
            for (int64_t l = 0; l < L; l++)
                for (int64_t d = 0; d < D; d++)
                    chw [d * L + l] = tok [l * D + d];
            vdgx_refcheck_compare_stored (rc, label, chw, (size_t) (L * D), S_VEC, label);
        }
        else {
            printf ("  %s: cannot download\n", label);
            rc->checks++;
            rc->failures++;
        }
        free (tok);
        free (chw);
        return;
    }
    vdgx_refcheck_compare_tensor (rc, label, t, S_VEC, label);
}

//  Loads the tiny DiT of the vector directory with the manifest's num_heads and text_len
//  (the tiny model has no config.json and dim/128 would be 0 heads).
wan21_dit_t *
refcheck_wan21_dit_load (vdgx_refcheck_t *rc);
wan21_dit_t *
refcheck_wan21_dit_load (vdgx_refcheck_t *rc)
{
    json_t *cfg = json_object_get (json_object_get (rc->manifest, "configs"), "dit");
    json_t *heads = json_object_get (cfg, "num_heads");
    json_t *text_len = json_object_get (cfg, "text_len");
    if (!json_is_integer (heads) || !json_is_integer (text_len)) {
        fprintf (stderr, "refcheck dit: manifest configs.dit lacks num_heads / text_len\n");
        return NULL;
    }
    char path [4096];
    snprintf (path, sizeof (path), "%s/weights_dit.safetensors", rc->dir);
    wan21_dit_load_opts_t opts = {
        .precision = rc->gpu? "bf16": "fp32",
        .num_heads = (int) json_integer_value (heads),
        .text_len = (int) json_integer_value (text_len),
    };
    char *err = NULL;
    wan21_dit_t *dit = wan21_dit_load (rc->backend, path, &opts, &err);
    if (!dit) {
        fprintf (stderr, "refcheck dit: %s\n", err? err: "cannot load");
        free (err);
        return NULL;
    }
    const wan21_dit_config_t *c = wan21_dit_config (dit);
    json_t *want_layers = json_object_get (cfg, "num_layers");
    json_t *want_dim = json_object_get (cfg, "dim");
    json_t *want_ffn = json_object_get (cfg, "ffn_dim");
    if (json_integer_value (want_layers) != c->num_layers || json_integer_value (want_dim) != c->dim
    ||  json_integer_value (want_ffn) != c->ffn_dim) {
        printf ("  dit config inferred from the shapes: FAIL (layers %d dim %d ffn %d)\n",
                c->num_layers, c->dim, c->ffn_dim);
        rc->checks++;
        rc->failures++;
    }
    else {
        printf ("  dit config inferred from the shapes (layers %d, dim %d, ffn %d, in %d, out %d, "
                "text_dim %d): PASS\n", c->num_layers, c->dim, c->ffn_dim, c->in_dim, c->out_dim,
                c->text_dim);
        rc->checks++;
    }
    return dit;
}

int
vdgx_refcheck_wan21_dit (vdgx_refcheck_t *rc)
{
    wan21_dit_t *dit = refcheck_wan21_dit_load (rc);
    if (!dit)
        return -1;
    const wan21_dit_config_t *c = wan21_dit_config (dit);
    int result = -1;
    float *x = NULL, *ctx = NULL, *out = NULL, *re = NULL, *im = NULL;
    double *angles = NULL;
    int64_t *t = NULL;
    wan21_dit_context_t *context = NULL;
    char *err = NULL;

    //  RoPE table (stored as complex128 split into real/imag).
    int hd = c->dim / c->num_heads;
    angles = malloc ((size_t) 1024 * (hd / 2) * sizeof (double));
    re = malloc ((size_t) 1024 * (hd / 2) * sizeof (float));
    im = malloc ((size_t) 1024 * (hd / 2) * sizeof (float));
    if (!angles || !re || !im)
        goto done;
    wan21_dit_rope_angles (hd, angles);
    for (size_t i = 0; i < (size_t) 1024 * (hd / 2); i++) {
        re [i] = (float) cos (angles [i]);
        im [i] = (float) sin (angles [i]);
    }
    vdgx_refcheck_compare_stored (rc, "dit.rope.freqs_real", re, (size_t) 1024 * (hd / 2), S_VEC,
                                  "dit.rope.freqs_real");
    vdgx_refcheck_compare_stored (rc, "dit.rope.freqs_imag", im, (size_t) 1024 * (hd / 2), S_VEC,
                                  "dit.rope.freqs_imag");

    int64_t xs [VDGX_MAX_DIMS], cs [VDGX_MAX_DIMS];
    int xn = 0, cn = 0;
    size_t nx = 0, nc = 0, nt = 0;
    x = vdgx_refcheck_load (rc, S_VEC, "dit.in.x", xs, &xn, &nx);
    ctx = vdgx_refcheck_load (rc, S_VEC, "dit.in.context", cs, &cn, &nc);
    t = vdgx_refcheck_load_i64 (rc, S_VEC, "dit.in.t", NULL, NULL, &nt);
    if (!x || !ctx || !t || xn != 4 || cn != 2 || nt != 1 || xs [0] != c->in_dim) {
        fprintf (stderr, "refcheck dit: inputs missing or of unexpected shapes\n");
        goto done;
    }
    wan21_dit_set_tap (dit, s_tap, rc);
    context = wan21_dit_context_new (dit, ctx, cs [0], &err);
    if (!context) {
        fprintf (stderr, "refcheck dit: %s\n", err? err: "context failed");
        goto done;
    }
    out = malloc ((size_t) c->out_dim * xs [1] * xs [2] * xs [3] * sizeof (float));
    if (!out)
        goto done;
    if (wan21_dit_forward (dit, x, xs [1], xs [2], xs [3], t [0], context, out, &err)) {
        fprintf (stderr, "refcheck dit: %s\n", err? err: "forward failed");
        goto done;
    }
    vdgx_refcheck_compare_stored (rc, "dit.out", out, (size_t) c->out_dim * xs [1] * xs [2] * xs [3],
                                  S_VEC, "dit.out");
    result = 0;
done:
    free (err);
    if (context)
        wan21_dit_context_destroy (dit, &context);
    wan21_dit_destroy (&dit);
    free (x); free (ctx); free (out); free (re); free (im); free (angles); free (t);
    return result;
}
