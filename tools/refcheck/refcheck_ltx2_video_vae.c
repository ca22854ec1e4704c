/*  refcheck_ltx2_video_vae.c - the LTX-2 (`vdgx-refcheck ltx2 --part video_vae`) and LTX-2.3
    (`ltx23 --part video_vae`) video VAE decoders against the official VideoDecoder runs of
    vectors_video_vae.safetensors, every case of the file:
    - LTX-2 (timestep-conditioned per the tiny checkpoint's metadata): vae.* (default decode
      timestep, stored noise; every stored intermediate), vae_1f.* (one latent frame, timestep
      0.5), vae_notc.* (the same weights as a decoder without timestep conditioning: the
      checkpoint rewritten with timestep_conditioning false).
    - LTX-2.3 (not conditioned per its metadata, the 2.3 block list): vae.* with every
      intermediate; vae_tc.* (the checkpoint plus the stored vae_tc.weights.* time embedders
      and tables, rewritten with timestep_conditioning true; stored noise).
*/
#include "refcheck.h"
#include "ltx2_vae.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_VEC "vectors_video_vae.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    const char *prefix;     //  "vae" / "vae_tc"
    int taps;
} s_tap_ctx_t;

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_tap_ctx_t *ctx = (s_tap_ctx_t *) arg;
    char stored [160], label [192];
    snprintf (stored, sizeof stored, "%s.mid.%s", ctx->prefix, name);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (ctx->rc, S_VEC);
    if (!vec || !vdgx_ckpt_find (vec, stored))
        return;
    snprintf (label, sizeof label, "video_vae %s", stored);
    vdgx_refcheck_compare_tensor (ctx->rc, label, t, S_VEC, stored);
    ctx->taps++;
}

//  One decode of case `prefix` (latent <prefix>.in.latent, noise <prefix>.noise when stored,
//  timestep <prefix>.in.timestep when stored) against <prefix>.out.raw.
static void
s_case (vdgx_refcheck_t *rc, ltx2_vae_t *vae, const char *prefix, const char *latent_case,
        int min_taps)
{
    char name [128];
    int64_t zs [VDGX_MAX_DIMS], os [VDGX_MAX_DIMS];
    int zn = 0, on = 0;
    size_t nn = 0;
    snprintf (name, sizeof name, "%s.in.latent", latent_case);
    float *z = vdgx_refcheck_load (rc, S_VEC, name, zs, &zn, NULL);
    snprintf (name, sizeof name, "%s.noise", prefix);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (rc, S_VEC);
    float *noise = vec && vdgx_ckpt_find (vec, name)? vdgx_refcheck_load (rc, S_VEC, name, NULL, NULL, &nn): NULL;
    snprintf (name, sizeof name, "%s.in.timestep", prefix);
    float *ts = vec && vdgx_ckpt_find (vec, name)? vdgx_refcheck_load (rc, S_VEC, name, NULL, NULL, NULL): NULL;
    snprintf (name, sizeof name, "%s.out.raw", prefix);
    float *want = vdgx_refcheck_load (rc, S_VEC, name, os, &on, NULL);
    const ltx2_vae_config_t *c = ltx2_vae_config (vae);
    rc->checks++;
    if (!z || !want || zn != 5 || on != 5 || zs [1] != c->latent_channels
    ||  (noise && nn != (size_t) (zs [1] * zs [2] * zs [3] * zs [4]))
    ||  os [2] != c->time_scale * (zs [2] - 1) + 1 || os [3] != c->space_scale * zs [3]
    ||  os [4] != c->space_scale * zs [4]) {
        printf ("  FAIL %s: vectors missing or shapes not as the config says\n", prefix);
        rc->failures++;
        goto out;
    }
    if (c->timestep_conditioning && !noise) {
        printf ("  FAIL %s: a timestep-conditioned case without stored noise\n", prefix);
        rc->failures++;
        goto out;
    }
    rc->checks--;
    size_t n = (size_t) (3 * os [2] * os [3] * os [4]);
    vdgx_refcheck_frames_t col = { (float *) calloc (n, sizeof (float)), (int) os [2], 0, false };
    s_tap_ctx_t tctx = { rc, prefix, 0 };
    ltx2_vae_decode_opts_t opts = { .raw = true, .noise = noise, .timestep = ts? ts [0]: 0.0f };
    ltx2_vae_set_tap (vae, s_tap, &tctx);
    char *err = NULL;
    int r = col.video? ltx2_vae_decode (vae, z, zs [2], zs [3], zs [4], &opts,
                                        vdgx_refcheck_collect_frame, &col, &err): -1;
    ltx2_vae_set_tap (vae, NULL, NULL);
    if (r != 0 || col.bad || col.got != col.frames) {
        printf ("  FAIL %s: decode failed: %s (%d of %d frames)\n", prefix,
                err? err: col.bad? "frames out of order": "error", col.got, col.frames);
        rc->checks++;
        rc->failures++;
    }
    else {
        snprintf (name, sizeof name, "video_vae %s.out.raw", prefix);
        vdgx_refcheck_compare (rc, name, col.video, want, n);
        rc->checks++;
        if (tctx.taps < min_taps) {
            printf ("  FAIL %s: only %d intermediates compared (want %d)\n", prefix, tctx.taps, min_taps);
            rc->failures++;
        }
    }
    free (err);
    free (col.video);
out:
    free (z);
    free (noise);
    free (ts);
    free (want);
}

//  The tiny checkpoint rewritten: the vae config's timestep_conditioning set to tc, plus the
//  vector file's tensors "<extra>.<name>" as "vae.decoder.<name>" (extra NULL: none).
//  Returns the path (caller unlinks and frees), NULL with a message.
static char *
s_variant (vdgx_refcheck_t *rc, vdgx_ckpt_t *ck, bool tc, const char *extra)
{
    const char *text = vdgx_ckpt_metadata (ck, "config");
    json_t *root = text? json_loads (text, 0, NULL): NULL;
    json_t *vae = json_object_get (root, "vae");
    if (!json_is_object (vae)) {
        json_decref (root);
        return NULL;
    }
    json_object_set_new (vae, "timestep_conditioning", json_boolean (tc));
    char *config = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (rc, S_VEC);
    size_t n = vdgx_ckpt_count (ck), m = 0, nv = vec? vdgx_ckpt_count (vec): 0;
    vdgx_ckpt_tensor_t *list = (vdgx_ckpt_tensor_t *) calloc (n + nv, sizeof (*list));
    char **names = (char **) calloc (nv + 1, sizeof (char *));
    char tmpl [] = "/tmp/ltx2-vae-XXXXXX";
    int fd = mkstemp (tmpl);
    char *path = NULL;
    if (!config || !list || !names || fd < 0)
        goto out;
    close (fd);
    for (size_t i = 0; i < n; i++)
        if (strncmp (vdgx_ckpt_at (ck, i)->name, "vae.", 4) == 0)
            list [m++] = *vdgx_ckpt_at (ck, i);
    size_t plen = extra? strlen (extra): 0, k = 0;
    for (size_t i = 0; extra && i < nv; i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (vec, i);
        if (strncmp (t->name, extra, plen) || t->name [plen] != '.')
            continue;
        names [k] = (char *) malloc (strlen (t->name) + 16);
        if (!names [k])
            goto out;
        sprintf (names [k], "vae.decoder.%s", t->name + plen + 1);
        list [m] = *t;
        list [m++].name = names [k++];
    }
    const char *meta [] = { "config", config, NULL };
    char *err = NULL;
    if (vdgx_safetensors_write_meta (tmpl, list, m, meta, &err) == 0)
        path = strdup (tmpl);
    else {
        fprintf (stderr, "refcheck video_vae: %s\n", err? err: "cannot write the variant");
        unlink (tmpl);
    }
    free (err);
out:
    for (size_t i = 0; names && i < nv; i++)
        free (names [i]);
    free (names);
    free (list);
    free (config);
    return path;
}

static ltx2_vae_t *
s_load (vdgx_refcheck_t *rc, const char *path, bool want_tc)
{
    char *err = NULL;
    ltx2_vae_t *vae = ltx2_vae_new (path, rc->backend, &err);
    if (!vae)
        fprintf (stderr, "refcheck video_vae: %s\n", err? err: "cannot load");
    free (err);
    if (vae) {
        const ltx2_vae_config_t *c = ltx2_vae_config (vae);
        bool ok = c->timestep_conditioning == want_tc;
        printf ("  %-4s decoder from %s: %d blocks, widths %d..%d, timestep_conditioning %s, "
                "x%d frames, x%d pixels\n", ok? "PASS": "FAIL", strrchr (path, '/') + 1,
                c->nblocks, c->nblocks? c->blocks [0].in_channels: 0, c->base_channels,
                c->timestep_conditioning? "true": "false", c->time_scale, c->space_scale);
        rc->checks++;
        rc->failures += !ok;
    }
    return vae;
}

static int
s_run (vdgx_refcheck_t *rc, bool v23)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/tiny_checkpoint.safetensors", rc->dir);
    //  The checkpoint's own config: LTX-2 conditioned, LTX-2.3 not.
    ltx2_vae_t *vae = s_load (rc, path, !v23);
    if (!vae)
        return -1;
    int nb = ltx2_vae_config (vae)->nblocks;
    //  Every up block and conv_in_input are stored; LTX-2 also conv_in, the norm, the
    //  modulated input of the activation, conv_out and the time embedders.
    s_case (rc, vae, "vae", "vae", v23? nb + 1: nb + 5 + (nb + 1) / 2 + 1);
    if (!v23)
        s_case (rc, vae, "vae_1f", "vae_1f", 0);
    ltx2_vae_destroy (&vae);

    vdgx_ckpt_t *ck = vdgx_refcheck_file (rc, "tiny_checkpoint.safetensors");
    char *variant = ck? s_variant (rc, ck, v23, v23? "vae_tc.weights": NULL): NULL;
    if (!variant) {
        fprintf (stderr, "refcheck video_vae: cannot build the %s variant\n", v23? "vae_tc": "vae_notc");
        return -1;
    }
    vae = s_load (rc, variant, v23);
    if (vae)
        s_case (rc, vae, v23? "vae_tc": "vae_notc", "vae", 0);
    ltx2_vae_destroy (&vae);
    unlink (variant);
    free (variant);
    return 0;
}

int
vdgx_refcheck_ltx2_video_vae (vdgx_refcheck_t *rc)
{
    return s_run (rc, false);
}

int
vdgx_refcheck_ltx23_video_vae (vdgx_refcheck_t *rc)
{
    return s_run (rc, true);
}
