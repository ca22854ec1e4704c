/*  refcheck_t5v11.c - the T5-v1.1 encoder (MAGI-1's; vdgx_t5 with the shared block-0 bias)
    against HF T5EncoderModel outputs (tests/data/reference/t5v11/README.md): the relative
    buckets for every k - q in [-799, 799]; (a) a right-padded batch of 2 with each block's
    output and block 0's bias; (b) 800 tokens of which 23 are real, every row and each
    block's valid rows, and the same 23 tokens alone; (c) the empty prompt (</s> + 799 pads).
*/
#include "refcheck.h"
#include "vdgx_t5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    vdgx_refcheck_t *rc;
    const char *file;       //  vector file of the case
    const char *prefix;     //  "a" (every row) or "b" (the valid rows, layer_out_valid)
    int valid;              //  b: real tokens
} s_tap_t;

//  Block outputs ("blocks.i") and block 0's bias ("pos_bias.0") of the running case.
static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_tap_t *tap = (s_tap_t *) arg;
    char stored [64];
    int layer;
    if (strcmp (name, "pos_bias.0") == 0 && strcmp (tap->prefix, "a") == 0)
        vdgx_refcheck_compare_tensor (tap->rc, "a.position_bias (block 0)", t, tap->file, "a.position_bias");
    else
    if (sscanf (name, "blocks.%d", &layer) == 1 && strcmp (tap->prefix, "a") == 0) {
        snprintf (stored, sizeof (stored), "a.layer_out.%d", layer);
        vdgx_refcheck_compare_tensor (tap->rc, stored, t, tap->file, stored);
    }
    else
    if (sscanf (name, "blocks.%d", &layer) == 1 && strcmp (tap->prefix, "b") == 0) {
        //  [1, L, D]: the first `valid` rows (padded run and real tokens alone).
        int64_t dim = t->shape [t->ndim - 1];
        size_t n = (size_t) (tap->valid * dim);
        float *all = malloc (sizeof (float) * (size_t) vdgx_tensor_numel (t));
        if (all && vdgx_tensor_to_f32 (tap->rc->backend, t, all) == 0) {
            snprintf (stored, sizeof (stored), "%s.layer_out_valid.%d", tap->prefix, layer);
            vdgx_refcheck_compare_stored (tap->rc, stored, all, n, tap->file, stored);
        }
        free (all);
    }
}

//  ids [B,L] and mask [B,L] of a case.
static int
s_case_input (vdgx_refcheck_t *rc, const char *file, const char *c, int *batch, int *len,
              int32_t **ids, uint8_t **mask)
{
    char name [64];
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0, mn = 0;
    snprintf (name, sizeof (name), "%s.input_ids", c);
    int64_t *raw = vdgx_refcheck_load_i64 (rc, file, name, shape, &ndim, &n);
    snprintf (name, sizeof (name), "%s.attention_mask", c);
    int64_t *m = raw? vdgx_refcheck_load_i64 (rc, file, name, NULL, NULL, &mn): NULL;
    if (!raw || !m || ndim != 2 || mn != n || n == 0) {
        fprintf (stderr, "refcheck t5v11: case %s: ids / mask missing or not [B, L]\n", c);
        free (raw);
        free (m);
        return -1;
    }
    *batch = (int) shape [0];
    *len = (int) shape [1];
    *ids = malloc (sizeof (int32_t) * n);
    *mask = malloc (n);
    for (size_t i = 0; i < n; i++) {
        (*ids) [i] = (int32_t) raw [i];
        (*mask) [i] = m [i] != 0;
    }
    free (raw);
    free (m);
    return 0;
}

//  One forward of case c compared with `out_name`; taps as set up in tap.
static int
s_case (vdgx_refcheck_t *rc, vdgx_t5_t *t5, s_tap_t *tap, const char *c, const char *out_name)
{
    int batch, len;
    int32_t *ids = NULL;
    uint8_t *mask = NULL;
    if (s_case_input (rc, tap->file, c, &batch, &len, &ids, &mask))
        return -1;
    int valid = 0;
    while (valid < len && mask [valid])
        valid++;
    tap->valid = valid;
    vdgx_t5_set_tap (t5, s_tap, tap);
    vdgx_tensor_t out;
    int rv = vdgx_t5_forward (t5, ids, mask, batch, len, &out);
    vdgx_t5_set_tap (t5, NULL, NULL);
    if (rv == 0) {
        vdgx_refcheck_compare_tensor (rc, out_name, &out, tap->file, out_name);
        vdgx_tensor_release (rc->backend, &out);
    }
    else
        fprintf (stderr, "refcheck t5v11: case %s: %s\n", c, vdgx_t5_error (t5));
    //  Case b: the real tokens alone give the valid rows (what MAGI-1 keeps).
    if (rv == 0 && strcmp (c, "b") == 0) {
        vdgx_t5_set_tap (t5, s_tap, tap);
        rv = vdgx_t5_forward (t5, ids, NULL, 1, valid, &out);
        vdgx_t5_set_tap (t5, NULL, NULL);
        if (rv == 0) {
            int64_t dim = out.shape [2];
            float *got = malloc (sizeof (float) * (size_t) (valid * dim));
            float *want = vdgx_refcheck_load (rc, tap->file, "b.last_hidden_state", NULL, NULL, NULL);
            if (got && want && vdgx_tensor_to_f32 (rc->backend, &out, got) == 0)
                vdgx_refcheck_compare (rc, "b.last_hidden_state (real tokens alone)", got,
                                       want, (size_t) (valid * dim));
            else
                rv = -1;
            free (got);
            free (want);
            vdgx_tensor_release (rc->backend, &out);
        }
    }
    free (ids);
    free (mask);
    return rv;
}

int
vdgx_refcheck_t5v11 (vdgx_refcheck_t *rc)
{
    //  Buckets of every relative position the 800-token window has.
    size_t nb = 0, nr = 0;
    int64_t *bucket = vdgx_refcheck_load_i64 (rc, "vectors_rel_bucket.safetensors", "rel_bucket_bidirectional",
                                              NULL, NULL, &nb);
    int64_t *relpos = vdgx_refcheck_load_i64 (rc, "vectors_rel_bucket.safetensors", "rel_bucket_relpos",
                                              NULL, NULL, &nr);
    if (!bucket || !relpos || nb != nr || nb == 0) {
        free (bucket);
        free (relpos);
        return -1;
    }
    size_t wrong = 0;
    for (size_t i = 0; i < nb; i++)
        wrong += vdgx_t5_bucket ((int) relpos [i], 32, 128) != bucket [i];
    printf ("  %-4s relative buckets (%zu positions)          %zu wrong\n", wrong? "FAIL": "PASS", nb, wrong);
    rc->checks++;
    rc->failures += wrong != 0;
    free (bucket);
    free (relpos);

    char path [4096];
    snprintf (path, sizeof (path), "%s/weights_t5v11.safetensors", rc->dir);
    char *err = NULL;
    vdgx_t5_t *t5 = vdgx_t5_new (path, rc->backend, rc->gpu? VDGX_WFMT_BF16: VDGX_WFMT_F32, &err);
    if (!t5) {
        fprintf (stderr, "refcheck t5v11: %s\n", err? err: "cannot load the encoder");
        free (err);
        return -1;
    }
    //  The loaded shapes must be the manifest's configuration, with the bias shared.
    const vdgx_t5_config_t *c = vdgx_t5_config (t5);
    json_t *cfg = json_object_get (rc->manifest, "config");
    const struct { const char *key; int got; } want [] = {
        { "vocab_size", c->vocab }, { "d_model", c->dim }, { "d_ff", c->dim_ffn },
        { "num_heads", c->num_heads }, { "num_layers", c->num_layers },
        { "relative_attention_num_buckets", c->num_buckets },
        { "relative_attention_max_distance", c->max_dist } };
    for (size_t i = 0; i < sizeof (want) / sizeof (want [0]); i++) {
        json_t *v = json_object_get (cfg, want [i].key);
        bool ok = v && json_integer_value (v) == want [i].got;
        printf ("  %-4s config %-35s loaded %d, manifest %lld\n", ok? "PASS": "FAIL",
                want [i].key, want [i].got, (long long) json_integer_value (v));
        rc->checks++;
        rc->failures += !ok;
    }
    printf ("  %-4s config shared block-0 bias                %s\n", c->shared_bias? "PASS": "FAIL",
            c->shared_bias? "yes": "no");
    rc->checks++;
    rc->failures += !c->shared_bias;

    s_tap_t a = { rc, "vectors_a.safetensors", "a", 0 }, b = { rc, "vectors_b.safetensors", "b", 0 };
    s_tap_t cc = { rc, "vectors_c.safetensors", "c", 0 };
    int rv = 0;
    if (s_case (rc, t5, &a, "a", "a.final_norm_out")
    ||  s_case (rc, t5, &b, "b", "b.last_hidden_state")
    ||  s_case (rc, t5, &cc, "c", "c.last_hidden_state"))
        rv = -1;
    vdgx_t5_destroy (&t5);
    return rv;
}
