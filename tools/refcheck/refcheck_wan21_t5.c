/*  refcheck_wan21_t5.c - the umT5 encoder against the official T5Encoder outputs:
    a masked batch of 2 (with block-0 and position-bias intermediates), one 160-token
    sequence (relative distances beyond max_dist 128 hit the bucket clamp), and the pipeline's
    prompt / negative-prompt contexts (T5EncoderModel: rows trimmed to the token count, then
    zero-padded to text_len as vdgx_t5_encode hands them to the DiT).
*/
#include "refcheck.h"
#include "vdgx_t5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_t5.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
} s_tap_ctx_t;

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_tap_ctx_t *ctx = (s_tap_ctx_t *) arg;
    if (strcmp (name, "pos_bias.0") == 0)
        vdgx_refcheck_compare_tensor (ctx->rc, "t5.mid.a.blocks.0.pos_bias", t, S_VEC,
                                      "t5.mid.a.blocks.0.pos_bias");
    else
    if (strcmp (name, "blocks.0") == 0)
        vdgx_refcheck_compare_tensor (ctx->rc, "t5.mid.a.blocks.0", t, S_VEC, "t5.mid.a.blocks.0");
}

//  Reads ids (and optionally a mask) of shape [B,L] from the vector file.
static int
s_read_ids (vdgx_refcheck_t *rc, const char *ids_name, const char *mask_name, int *batch,
            int *len, int32_t **ids, uint8_t **mask)
{
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0;
    int64_t *raw = vdgx_refcheck_load_i64 (rc, S_VEC, ids_name, shape, &ndim, &n);
    if (!raw)
        return -1;
    if (ndim != 2 || n == 0) {
        fprintf (stderr, "refcheck t5: %s should be [B,L]\n", ids_name);
        free (raw);
        return -1;
    }
    *batch = (int) shape [0];
    *len = (int) shape [1];
    *ids = (int32_t *) malloc (sizeof (int32_t) * n);
    for (size_t i = 0; i < n; i++)
        (*ids) [i] = (int32_t) raw [i];
    free (raw);
    if (mask) {
        *mask = NULL;
        if (mask_name) {
            size_t mn = 0;
            int64_t *m = vdgx_refcheck_load_i64 (rc, S_VEC, mask_name, NULL, NULL, &mn);
            if (!m || mn != n) {
                fprintf (stderr, "refcheck t5: %s missing or not the size of %s\n", mask_name, ids_name);
                free (m);
                free (*ids);
                return -1;
            }
            *mask = (uint8_t *) malloc (n);
            for (size_t i = 0; i < n; i++)
                (*mask) [i] = m [i] != 0;
            free (m);
        }
    }
    return 0;
}

static int
s_check_forward (vdgx_refcheck_t *rc, vdgx_t5_t *t5, const char *ids_name,
                 const char *mask_name, const char *out_name, bool tap)
{
    int batch, len;
    int32_t *ids = NULL;
    uint8_t *mask = NULL;
    if (s_read_ids (rc, ids_name, mask_name, &batch, &len, &ids, &mask))
        return -1;
    s_tap_ctx_t ctx = { rc };
    vdgx_t5_set_tap (t5, tap? s_tap: NULL, &ctx);
    vdgx_tensor_t out;
    int rv = vdgx_t5_forward (t5, ids, mask, batch, len, &out);
    vdgx_t5_set_tap (t5, NULL, NULL);
    if (rv == 0) {
        vdgx_refcheck_compare_tensor (rc, out_name, &out, S_VEC, out_name);
        vdgx_tensor_release (rc->backend, &out);
    }
    else
        fprintf (stderr, "refcheck t5: forward failed: %s\n", vdgx_t5_error (t5));
    free (ids);
    free (mask);
    return rv;
}

//  A prompt from the manifest through vdgx_t5_encode, against {run}.{name} (trimmed rows).
static int
s_check_context (vdgx_refcheck_t *rc, vdgx_t5_t *t5, const char *ids_key, int text_len,
                 const char *stored)
{
    json_t *arr = json_object_get (json_object_get (json_object_get (rc->manifest, "configs"),
                                                    "pipeline"), ids_key);
    size_t n = json_array_size (arr);
    if (n == 0) {
        fprintf (stderr, "refcheck t5: manifest configs.pipeline.%s missing\n", ids_key);
        return -1;
    }
    int32_t *ids = (int32_t *) malloc (sizeof (int32_t) * n);
    for (size_t i = 0; i < n; i++)
        ids [i] = (int32_t) json_integer_value (json_array_get (arr, i));
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t numel = 0;
    float *want = vdgx_refcheck_load (rc, "vectors_sampling.safetensors", stored, shape, &ndim, &numel);
    const int dim = vdgx_t5_config (t5)->dim;
    if (!want || ndim != 2 || shape [0] != (int64_t) n || shape [1] != dim) {
        fprintf (stderr, "refcheck t5: %s missing or not [%zu, %d]\n", stored, n, dim);
        free (want);
        free (ids);
        return -1;
    }
    int rv = -1;
    vdgx_tensor_t out;
    if (vdgx_t5_encode (t5, ids, (int) n, text_len, &out) == 0) {
        size_t total = (size_t) text_len * dim;
        float *got = (float *) malloc (sizeof (float) * total);
        float *padded = (float *) calloc (total, sizeof (float));
        if (got && padded && vdgx_tensor_to_f32 (rc->backend, &out, got) == 0) {
            memcpy (padded, want, sizeof (float) * numel);
            char label [128];
            snprintf (label, sizeof (label), "%s (padded to %d)", stored, text_len);
            vdgx_refcheck_compare (rc, label, got, padded, total);
            rv = 0;
        }
        else
            fprintf (stderr, "refcheck t5: cannot read the context back: %s\n",
                     vdgx_backend_error (rc->backend));
        free (got);
        free (padded);
        vdgx_tensor_release (rc->backend, &out);
    }
    else
        fprintf (stderr, "refcheck t5: encode failed: %s\n", vdgx_t5_error (t5));
    free (want);
    free (ids);
    return rv;
}

int
vdgx_refcheck_wan21_t5 (vdgx_refcheck_t *rc)
{
    char path [4096];
    snprintf (path, sizeof (path), "%s/weights_t5.safetensors", rc->dir);
    char *err = NULL;
    //  f32 weights on the CPU (the stored bf16 values convert exactly), bf16 on a GPU.
    vdgx_t5_t *t5 = vdgx_t5_new (path, rc->backend, rc->gpu? VDGX_WFMT_BF16: VDGX_WFMT_F32, &err);
    if (!t5) {
        fprintf (stderr, "refcheck t5: %s\n", err? err: "cannot load the encoder");
        free (err);
        return -1;
    }
    const vdgx_t5_config_t *c = vdgx_t5_config (t5);
    if (rc->verbose)
        printf ("  umT5: vocab %d, dim %d, attn %d, ffn %d, %d heads, %d layers, %d buckets%s\n",
                c->vocab, c->dim, c->dim_attn, c->dim_ffn, c->num_heads, c->num_layers,
                c->num_buckets, c->hf_names? " (HF names)": "");
    //  The loaded shapes must be the manifest's configuration.
    json_t *cfg = json_object_get (json_object_get (rc->manifest, "configs"), "t5");
    if (cfg) {
        const struct { const char *key; int got; } want [] = {
            { "vocab", c->vocab }, { "dim", c->dim }, { "dim_attn", c->dim_attn },
            { "dim_ffn", c->dim_ffn }, { "num_heads", c->num_heads },
            { "num_layers", c->num_layers }, { "num_buckets", c->num_buckets } };
        for (size_t i = 0; i < sizeof (want) / sizeof (want [0]); i++) {
            json_t *v = json_object_get (cfg, want [i].key);
            bool ok = !v || json_integer_value (v) == want [i].got;
            printf ("  %-4s config %-35s loaded %d, manifest %lld\n", ok? "PASS": "FAIL",
                    want [i].key, want [i].got, (long long) json_integer_value (v));
            rc->checks++;
            if (!ok)
                rc->failures++;
        }
    }
    int rv = 0;
    if (s_check_forward (rc, t5, "t5.in.a.ids", "t5.in.a.mask", "t5.out.a", true)
     || s_check_forward (rc, t5, "t5.in.b.ids", NULL, "t5.out.b", false))
        rv = -1;
    json_t *tl = json_object_get (json_object_get (json_object_get (rc->manifest, "configs"),
                                                   "pipeline"), "text_len");
    int text_len = tl? (int) json_integer_value (tl): 0;
    if (rv == 0 && text_len > 0) {
        if (s_check_context (rc, t5, "prompt_ids", text_len, "unipc.context")
         || s_check_context (rc, t5, "neg_prompt_ids", text_len, "unipc.context_null")
         || s_check_context (rc, t5, "prompt_ids", text_len, "dpmpp.context")
         || s_check_context (rc, t5, "neg_prompt_ids", text_len, "dpmpp.context_null"))
            rv = -1;
    }
    vdgx_t5_destroy (&t5);
    return rv;
}
