/*  gemma3_random.c - writes a random-weight Gemma 3 text decoder in the Hugging Face layout
    (config.json, model.safetensors.index.json, one shard for the embedding and final norm and
    one per layer, `language_model.model.*` names), for tests and benchmarks at any size.
    Linear weights are BF16, or F8_E4M3 with a per-tensor `weight_scale`; norms BF16.
*/
#include "gemma3.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdgx_quant.h"

//  SplitMix64 -> uniform [-1, 1)
static float
s_uniform (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (float) ((double) (z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

typedef struct {
    vdgx_ckpt_tensor_t *t;
    void **bufs;
    size_t count, cap;
} s_list_t;

static int
s_add (s_list_t *list, const char *name, int ndim, int64_t d0, int64_t d1, bool fp8, float amp,
       uint64_t *rng)
{
    if (list->count + 2 > list->cap) {
        size_t cap = list->cap? list->cap * 2: 32;
        vdgx_ckpt_tensor_t *t = realloc (list->t, cap * sizeof (*t));
        if (!t)
            return -1;
        list->t = t;
        void **b = realloc (list->bufs, cap * sizeof (void *));
        if (!b)
            return -1;
        list->bufs = b;
        list->cap = cap;
    }
    size_t n = (size_t) d0 * (size_t) (ndim > 1? d1: 1);
    vdgx_ckpt_tensor_t *t = &list->t [list->count];
    memset (t, 0, sizeof (*t));
    t->name = strdup (name);
    t->ndim = ndim;
    t->shape [0] = d0;
    t->shape [1] = d1;
    t->dtype = fp8? VDGX_DTYPE_F8_E4M3: VDGX_DTYPE_BF16;
    t->nbytes = n * vdgx_dtype_size (t->dtype);
    void *data = malloc (t->nbytes + 1);
    list->bufs [list->count] = data;
    list->count++;
    if (!t->name || !data)
        return -1;
    t->data = data;
    //  fp8: values of amplitude 448 (the full e4m3 range) with scale amp / 448
    for (size_t i = 0; i < n; i++) {
        float v = s_uniform (rng) * (fp8? 448.0f: amp);
        if (fp8)
            ((uint8_t *) data) [i] = vdgx_f32_to_e4m3 (v);
        else
            ((uint16_t *) data) [i] = vdgx_f32_to_bf16 (v);
    }
    if (fp8) {
        char sname [256];
        snprintf (sname, sizeof (sname), "%.*s.weight_scale", (int) (strlen (name) - 7), name);
        vdgx_ckpt_tensor_t *s = &list->t [list->count];
        memset (s, 0, sizeof (*s));
        s->name = strdup (sname);
        s->dtype = VDGX_DTYPE_F32;
        s->ndim = 0;
        s->nbytes = 4;
        float *scale = malloc (sizeof (float));
        list->bufs [list->count] = scale;
        list->count++;
        if (!s->name || !scale)
            return -1;
        *scale = amp / 448.0f;
        s->data = scale;
    }
    return 0;
}

static void
s_clear (s_list_t *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free ((char *) list->t [i].name);
        free (list->bufs [i]);
    }
    list->count = 0;
}

int
gemma3_write_random (const char *dir, const gemma3_config_t *cfg, uint64_t seed, bool fp8,
                     char **err)
{
    assert (dir && cfg && err);
    *err = NULL;
    const int64_t D = cfg->hidden, A = (int64_t) cfg->heads * cfg->head_dim;
    const int64_t KV = (int64_t) cfg->kv_heads * cfg->head_dim, F = cfg->ffn;
    if (D < 2 || cfg->layers < 1 || cfg->heads < 1 || cfg->kv_heads < 1 || cfg->head_dim < 2
     || cfg->ffn < 1 || cfg->vocab < 3 || cfg->heads % cfg->kv_heads) {
        *err = strdup ("gemma3_write_random: bad sizes");
        return -1;
    }
    uint64_t rng = seed;
    s_list_t list = { 0 };
    char path [4096], name [256];
    zlistx_t *map = zlistx_new ();          //  "tensor\tshard" lines of the index
    zlistx_set_destructor (map, (zlistx_destructor_fn *) zstr_free);
    int rc = 0;
    for (int shard = -1; rc == 0 && shard < cfg->layers; shard++) {
        if (shard < 0) {
            //  embedding rows ~ U(-1, 1) (Gemma scales them by sqrt(D)); final norm around 0
            rc = s_add (&list, "language_model.model.embed_tokens.weight", 2, cfg->vocab, D,
                        false, 1.0f, &rng)
              || s_add (&list, "language_model.model.norm.weight", 1, D, 0, false, 0.5f, &rng);
        }
        else {
            static const char *lin [] = {
                "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" };
            const int64_t shape [7][2] = { { A, D }, { KV, D }, { KV, D }, { D, A }, { F, D },
                                           { F, D }, { D, F } };
            for (int j = 0; rc == 0 && j < 7; j++) {
                snprintf (name, sizeof (name), "language_model.model.layers.%d.%s.weight", shard, lin [j]);
                //  uniform with variance 1/fan_in keeps activations of order 1
                float amp = sqrtf (3.0f / (float) shape [j][1]);
                rc = s_add (&list, name, 2, shape [j][0], shape [j][1], fp8, amp, &rng);
            }
            static const char *norms [] = {
                "input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                "post_feedforward_layernorm", "self_attn.q_norm", "self_attn.k_norm" };
            for (int j = 0; rc == 0 && j < 6; j++) {
                snprintf (name, sizeof (name), "language_model.model.layers.%d.%s.weight", shard, norms [j]);
                rc = s_add (&list, name, 1, j >= 4? cfg->head_dim: D, 0, false, 0.5f, &rng);
            }
        }
        char file [64];
        snprintf (file, sizeof (file), "model-%05d-of-%05d.safetensors", shard + 2, cfg->layers + 1);
        snprintf (path, sizeof (path), "%s/%s", dir, file);
        if (rc == 0 && vdgx_safetensors_write (path, list.t, list.count, err))
            rc = -1;
        for (size_t i = 0; rc == 0 && i < list.count; i++)
            zlistx_add_end (map, zsys_sprintf ("\"%s\": \"%s\"", list.t [i].name, file));
        s_clear (&list);
    }
    free (list.t);
    free (list.bufs);
    FILE *f = NULL;
    if (rc == 0) {
        snprintf (path, sizeof (path), "%s/model.safetensors.index.json", dir);
        f = fopen (path, "w");
        if (f) {
            fprintf (f, "{\"metadata\": {}, \"weight_map\": {");
            bool first = true;
            for (char *line = zlistx_first (map); line; line = zlistx_next (map)) {
                fprintf (f, "%s\n  %s", first? "": ",", line);
                first = false;
            }
            fprintf (f, "\n}}\n");
            rc = fclose (f)? -1: 0;
        }
        else
            rc = -1;
        snprintf (path, sizeof (path), "%s/config.json", dir);
        f = rc == 0? fopen (path, "w"): NULL;
        if (f) {
            fprintf (f, "{\"architectures\": [\"Gemma3ForConditionalGeneration\"], \"model_type\": "
                     "\"gemma3\", \"text_config\": {\"model_type\": \"gemma3_text\", "
                     "\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                     "\"num_key_value_heads\": %d, \"head_dim\": %d, \"intermediate_size\": %d, "
                     "\"vocab_size\": %d, \"rms_norm_eps\": %g, \"rope_theta\": %.1f, "
                     "\"rope_local_base_freq\": %.1f, \"rope_scaling\": {\"rope_type\": \"linear\", "
                     "\"factor\": %g}, \"sliding_window\": %d, \"sliding_window_pattern\": %d, "
                     "\"query_pre_attn_scalar\": %g}}\n",
                     cfg->hidden, cfg->layers, cfg->heads, cfg->kv_heads, cfg->head_dim, cfg->ffn,
                     cfg->vocab, cfg->eps, cfg->rope_theta, cfg->rope_local_theta,
                     cfg->rope_factor, cfg->sliding_window, cfg->sliding_pattern,
                     cfg->query_pre_attn_scalar);
            rc = fclose (f)? -1: 0;
        }
        else
            rc = -1;
        if (rc && !*err)
            *err = zsys_sprintf ("gemma3_write_random: cannot write %s", path);
    }
    zlistx_destroy (&map);
    return rc;
}
