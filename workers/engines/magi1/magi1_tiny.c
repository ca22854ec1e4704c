/*  magi1_tiny.c - the tiny random-weight MAGI-1 checkpoint (see magi1_engine.h).

    The official names and folder layout at a width that runs a 3-chunk job in seconds on two
    CPU cores: the 4.5B-style DiT (2 layers, 128 wide, GQA 4/2, head 32, caption 32) as
    dit/inference_weight/model.safetensors, a T5-v1.1 encoder with Hugging Face names (2
    blocks, 32 wide, relative bias in block 0) and a SentencePiece tokenizer under
    ckpt/t5/t5-v1_1-xxl/ (torch.save shards pytorch_model-0000N-of-00002.bin with their index,
    as the released folder), the ViT VAE decoder (64 wide, 1 block, patch 2 x 2 x 4) as
    ckpt/vae/config.json + diffusion_pytorch_model.safetensors, and the special tokens.
*/
#include "magi1_engine.h"
#include "vdgx_util.h"
#include "vdgx_ckpt.h"
#include "wan21_engine.h"       //  wan21_tiny_train_spm: the tiny SentencePiece trainer

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    S_HIDDEN = 128, S_FFN = 512, S_HEADS = 4, S_GROUPS = 2, S_HD = 32, S_COND = 32,
    S_CAPTION = 32, S_LAYERS = 2, S_Z = 16, S_CAPTION_LEN = 800,
    S_T5_VOCAB = 256, S_T5_HEADS = 4, S_T5_FFN = 64, S_T5_LAYERS = 2, S_T5_BUCKETS = 32,
    S_VAE_EMBED = 64, S_VAE_DEPTH = 1, S_VAE_HEADS = 4, S_VAE_PATCH = 2, S_VAE_PLEN = 4,
    S_VAE_GRID = 4 * 8 * 8
};

//  How a tensor is filled: uniform +-1/sqrt(fan_in), ones, near zero (the "1p" norms and
//  biases), uniform +-1 (embeddings), or a value list (rope bands).
typedef enum { S_FANIN, S_ONES, S_NEAR0, S_UNIT, S_BANDS } s_fill_t;

typedef struct {
    vdgx_ckpt_tensor_t *t;
    size_t n, cap;
    uint64_t rng;
    bool failed;
} s_set_t;

static void
s_put (s_set_t *set, s_fill_t fill, const char *name, int ndim, ...)
{
    if (set->failed)
        return;
    int64_t shape [VDGX_MAX_DIMS];
    va_list ap;
    va_start (ap, ndim);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        shape [i] = va_arg (ap, int64_t);
        n *= (size_t) shape [i];
    }
    va_end (ap);
    if (set->n == set->cap) {
        size_t cap = set->cap? 2 * set->cap: 64;
        vdgx_ckpt_tensor_t *t = (vdgx_ckpt_tensor_t *) realloc (set->t, cap * sizeof *t);
        if (!t) {
            set->failed = true;
            return;
        }
        set->t = t;
        set->cap = cap;
    }
    float *data = (float *) malloc (n * sizeof (float));
    char *copy = strdup (name);
    if (!data || !copy) {
        free (data);
        free (copy);
        set->failed = true;
        return;
    }
    double fan_in = 1;
    for (int i = 1; i < ndim; i++)
        fan_in *= (double) shape [i];
    float bound = (float) (1.0 / sqrt (ndim > 1? fan_in: (double) shape [0]));
    for (size_t i = 0; i < n; i++) {
        float u = 2.f * (float) (vdgx_splitmix64 (&set->rng) >> 40) / 16777216.f - 1.f;
        data [i] = fill == S_ONES? 1.f: fill == S_NEAR0? 0.05f * u: fill == S_UNIT? u
                 : fill == S_BANDS? powf (10000.f, -(float) i / (float) n): bound * u;
    }
    vdgx_ckpt_tensor_t *t = &set->t [set->n++];
    memset (t, 0, sizeof *t);
    t->name = copy;
    t->dtype = VDGX_DTYPE_F32;
    t->ndim = ndim;
    memcpy (t->shape, shape, (size_t) ndim * sizeof (int64_t));
    t->data = data;
    t->nbytes = n * sizeof (float);
}

static void
s_set_clear (s_set_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free ((void *) set->t [i].name);
        free ((void *) set->t [i].data);
    }
    free (set->t);
    memset (set, 0, sizeof *set);
}

//  Writes the set to dir/name (safetensors) and clears it.
static int
s_set_write (s_set_t *set, const char *dir, const char *name, char **err)
{
    int rc = -1;
    char *path = vdgx_strdupf ("%s/%s", dir, name);
    if (set->failed || !path)
        vdgx_set_error (err, "magi1 tiny checkpoint: out of memory");
    else {
        char *e = NULL;
        rc = vdgx_safetensors_write (path, set->t, set->n, &e);
        if (rc)
            vdgx_set_error (err, "magi1 tiny checkpoint: cannot write %s: %s", path, e? e: "error");
        free (e);
    }
    free (path);
    s_set_clear (set);
    return rc;
}

#define I(x) ((int64_t) (x))

static void
s_dit (s_set_t *s)
{
    const int64_t D = S_HIDDEN, Q = S_HEADS * S_HD, KV = S_GROUPS * S_HD;
    s_put (s, S_FANIN, "x_embedder.weight", 5, D, I (S_Z), I (1), I (2), I (2));
    s_put (s, S_FANIN, "t_embedder.mlp.0.weight", 2, I (S_COND), I (256));
    s_put (s, S_NEAR0, "t_embedder.mlp.0.bias", 1, I (S_COND));
    s_put (s, S_FANIN, "t_embedder.mlp.2.weight", 2, I (S_COND), I (S_COND));
    s_put (s, S_NEAR0, "t_embedder.mlp.2.bias", 1, I (S_COND));
    s_put (s, S_UNIT, "y_embedder.null_caption_embedding", 2, I (S_CAPTION_LEN), I (S_CAPTION));
    s_put (s, S_FANIN, "y_embedder.y_proj_adaln.0.weight", 2, I (S_COND), I (S_CAPTION));
    s_put (s, S_NEAR0, "y_embedder.y_proj_adaln.0.bias", 1, I (S_COND));
    s_put (s, S_FANIN, "y_embedder.y_proj_xattn.0.weight", 2, D, I (S_CAPTION));
    s_put (s, S_NEAR0, "y_embedder.y_proj_xattn.0.bias", 1, D);
    s_put (s, S_BANDS, "rope.bands", 1, I (S_HD / 8));
    for (int i = 0; i < S_LAYERS; i++) {
        char n [160];
        #define L(suffix) (snprintf (n, sizeof n, "videodit_blocks.layers.%d.%s", i, suffix), n)
        s_put (s, S_FANIN, L ("ada_modulate_layer.proj.0.weight"), 2, 2 * D, I (S_COND));
        s_put (s, S_NEAR0, L ("ada_modulate_layer.proj.0.bias"), 1, 2 * D);
        s_put (s, S_ONES, L ("self_attention.linear_qkv.layer_norm.weight"), 1, D);
        s_put (s, S_NEAR0, L ("self_attention.linear_qkv.layer_norm.bias"), 1, D);
        s_put (s, S_FANIN, L ("self_attention.linear_qkv.q.weight"), 2, Q, D);
        s_put (s, S_FANIN, L ("self_attention.linear_qkv.qx.weight"), 2, Q, D);
        s_put (s, S_FANIN, L ("self_attention.linear_qkv.k.weight"), 2, KV, D);
        s_put (s, S_FANIN, L ("self_attention.linear_qkv.v.weight"), 2, KV, D);
        s_put (s, S_FANIN, L ("self_attention.linear_kv_xattn.weight"), 2, 2 * KV, D);
        s_put (s, S_FANIN, L ("self_attention.linear_proj.weight"), 2, D, 2 * Q);
        const char *norms [] = { "self_attention.q_layernorm", "self_attention.k_layernorm",
            "self_attention.q_layernorm_xattn", "self_attention.k_layernorm_xattn" };
        for (int k = 0; k < 4; k++) {
            char w [120], b [120];
            snprintf (w, sizeof w, "%s.weight", norms [k]);
            snprintf (b, sizeof b, "%s.bias", norms [k]);
            s_put (s, S_NEAR0, L (w), 1, I (S_HD));
            s_put (s, S_NEAR0, L (b), 1, I (S_HD));
        }
        s_put (s, S_NEAR0, L ("self_attn_post_norm.weight"), 1, D);
        s_put (s, S_NEAR0, L ("self_attn_post_norm.bias"), 1, D);
        s_put (s, S_ONES, L ("mlp.layer_norm.weight"), 1, D);
        s_put (s, S_NEAR0, L ("mlp.layer_norm.bias"), 1, D);
        s_put (s, S_FANIN, L ("mlp.linear_fc1.weight"), 2, I (S_FFN), D);
        s_put (s, S_FANIN, L ("mlp.linear_fc2.weight"), 2, D, I (S_FFN));
        s_put (s, S_NEAR0, L ("mlp_post_norm.weight"), 1, D);
        s_put (s, S_NEAR0, L ("mlp_post_norm.bias"), 1, D);
        #undef L
    }
    s_put (s, S_NEAR0, "videodit_blocks.final_layernorm.weight", 1, D);
    s_put (s, S_NEAR0, "videodit_blocks.final_layernorm.bias", 1, D);
    s_put (s, S_FANIN, "final_linear.linear.weight", 2, I (4 * S_Z), D);
}

static void
s_t5 (s_set_t *s)
{
    const int64_t D = S_CAPTION;
    s_put (s, S_UNIT, "shared.weight", 2, I (S_T5_VOCAB), D);
    for (int i = 0; i < S_T5_LAYERS; i++) {
        char n [160];
        #define B(suffix) (snprintf (n, sizeof n, "encoder.block.%d.%s", i, suffix), n)
        const char *qkvo [] = { "q", "k", "v", "o" };
        for (int k = 0; k < 4; k++) {
            char w [64];
            snprintf (w, sizeof w, "layer.0.SelfAttention.%s.weight", qkvo [k]);
            s_put (s, S_FANIN, B (w), 2, D, D);
        }
        if (i == 0)
            s_put (s, S_NEAR0, B ("layer.0.SelfAttention.relative_attention_bias.weight"), 2,
                   I (S_T5_BUCKETS), I (S_T5_HEADS));
        s_put (s, S_ONES, B ("layer.0.layer_norm.weight"), 1, D);
        s_put (s, S_FANIN, B ("layer.1.DenseReluDense.wi_0.weight"), 2, I (S_T5_FFN), D);
        s_put (s, S_FANIN, B ("layer.1.DenseReluDense.wi_1.weight"), 2, I (S_T5_FFN), D);
        s_put (s, S_FANIN, B ("layer.1.DenseReluDense.wo.weight"), 2, D, I (S_T5_FFN));
        s_put (s, S_ONES, B ("layer.1.layer_norm.weight"), 1, D);
        #undef B
    }
    s_put (s, S_ONES, "encoder.final_layer_norm.weight", 1, D);
}

static void
s_vae (s_set_t *s)
{
    const int64_t E = S_VAE_EMBED;
    s_put (s, S_FANIN, "decoder.proj_in.weight", 2, E, I (S_Z));
    s_put (s, S_NEAR0, "decoder.proj_in.bias", 1, E);
    s_put (s, S_NEAR0, "decoder.cls_token", 3, I (1), I (1), E);
    s_put (s, S_NEAR0, "decoder.pos_embed", 3, I (1), I (S_VAE_GRID + 1), E);
    for (int i = 0; i < S_VAE_DEPTH; i++) {
        char n [160];
        #define B(suffix) (snprintf (n, sizeof n, "decoder.blocks.%d.%s", i, suffix), n)
        s_put (s, S_FANIN, B ("attn.qkv.weight"), 2, 3 * E, E);
        s_put (s, S_NEAR0, B ("attn.qkv.bias"), 1, 3 * E);
        s_put (s, S_FANIN, B ("attn.proj.weight"), 2, E, E);
        s_put (s, S_NEAR0, B ("attn.proj.bias"), 1, E);
        s_put (s, S_ONES, B ("norm2.weight"), 1, E);
        s_put (s, S_NEAR0, B ("norm2.bias"), 1, E);
        s_put (s, S_FANIN, B ("mlp.fc1.weight"), 2, 4 * E, E);
        s_put (s, S_NEAR0, B ("mlp.fc1.bias"), 1, 4 * E);
        s_put (s, S_FANIN, B ("mlp.fc2.weight"), 2, E, 4 * E);
        s_put (s, S_NEAR0, B ("mlp.fc2.bias"), 1, E);
        #undef B
    }
    s_put (s, S_ONES, "decoder.norm.weight", 1, E);
    s_put (s, S_NEAR0, "decoder.norm.bias", 1, E);
    s_put (s, S_FANIN, "decoder.last_layer.weight", 5, I (3), I (4), I (3), I (3), I (3));
    s_put (s, S_NEAR0, "decoder.last_layer.bias", 1, I (3));
}

static int s_text (const char *dir, const char *name, const char *text, char **err);

//  The T5 encoder as the official folder holds it: Hugging Face torch.save shards
//  pytorch_model-0000N-of-00002.bin and pytorch_model.bin.index.json. Clears the set.
static int
s_write_t5 (s_set_t *set, const char *dir, char **err)
{
    static const char *const shards [2] = { "pytorch_model-00001-of-00002.bin",
                                            "pytorch_model-00002-of-00002.bin" };
    size_t half = set->n / 2;
    int rc = set->failed? -1: 0;
    size_t json_cap = 256 + set->n * 160;
    char *json = (char *) malloc (json_cap);
    if (!json)
        rc = -1;
    else
        snprintf (json, json_cap, "{\n  \"metadata\": {},\n  \"weight_map\": {");
    for (int s = 0; s < 2 && rc == 0; s++) {
        char *path = vdgx_strdupf ("%s/ckpt/t5/t5-v1_1-xxl/%s", dir, shards [s]);
        size_t from = s? half: 0, to = s? set->n: half;
        rc = path? wan21_tiny_write_pth (path, set->t + from, to - from, err): -1;
        free (path);
        for (size_t i = from; i < to && rc == 0; i++) {
            size_t len = strlen (json);
            snprintf (json + len, json_cap - len, "%s\n    \"%s\": \"%s\"", i? ",": "",
                      set->t [i].name, shards [s]);
        }
    }
    if (rc == 0) {
        size_t len = strlen (json);
        snprintf (json + len, json_cap - len, "\n  }\n}\n");
        rc = s_text (dir, "ckpt/t5/t5-v1_1-xxl/pytorch_model.bin.index.json", json, err);
    }
    else
    if (!*err)
        vdgx_set_error (err, "magi1 tiny checkpoint: cannot write the T5 shards");
    free (json);
    s_set_clear (set);
    return rc;
}

static int
s_mkdirs (const char *dir, const char *sub, char **err)
{
    char *path = vdgx_strdupf ("%s/%s", dir, sub);
    if (!path) {
        vdgx_set_error (err, "out of memory");
        return -1;
    }
    for (char *p = path + strlen (dir) + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir (path, 0755) && errno != EEXIST) {
                vdgx_set_error (err, "magi1 tiny checkpoint: cannot create %s: %s", path,
                                strerror (errno));
                free (path);
                return -1;
            }
            *p = c;
            if (!c)
                break;
        }
    }
    free (path);
    return 0;
}

static int
s_text (const char *dir, const char *name, const char *text, char **err)
{
    char *path = vdgx_strdupf ("%s/%s", dir, name);
    FILE *f = path? fopen (path, "w"): NULL;
    bool ok = f && fputs (text, f) >= 0;
    if (f && fclose (f))
        ok = false;
    if (!ok)
        vdgx_set_error (err, "magi1 tiny checkpoint: cannot write %s/%s", dir, name);
    free (path);
    return ok? 0: -1;
}

int
magi1_tiny_write (const char *dir, uint64_t seed, char **err)
{
    if (!dir || !*dir || !err)
        return -1;
    if (mkdir (dir, 0755) && errno != EEXIST) {
        vdgx_set_error (err, "magi1 tiny checkpoint: cannot create %s: %s", dir, strerror (errno));
        return -1;
    }
    if (s_mkdirs (dir, "dit/inference_weight", err) || s_mkdirs (dir, "ckpt/t5/t5-v1_1-xxl", err)
    ||  s_mkdirs (dir, "ckpt/vae", err))
        return -1;
    char *spm = vdgx_strdupf ("%s/ckpt/t5/t5-v1_1-xxl/spiece.model", dir);
    int rc = spm? wan21_tiny_train_spm (spm, S_T5_VOCAB, err): -1;
    free (spm);
    if (rc)
        return -1;
    s_set_t set = { .rng = seed * 0x2545F4914F6CDD1Dull + 11 };
    s_dit (&set);
    if (s_set_write (&set, dir, "dit/inference_weight/model.safetensors", err))
        return -1;
    set.rng = seed * 0x2545F4914F6CDD1Dull + 12;
    s_t5 (&set);
    if (s_write_t5 (&set, dir, err))
        return -1;
    set.rng = seed * 0x2545F4914F6CDD1Dull + 13;
    s_vae (&set);
    if (s_set_write (&set, dir, "ckpt/vae/diffusion_pytorch_model.safetensors", err))
        return -1;
    set.rng = seed * 0x2545F4914F6CDD1Dull + 14;
    s_put (&set, S_UNIT, "caption_token", 2, I (1), I (S_CAPTION));
    s_put (&set, S_UNIT, "logo_token", 2, I (1), I (S_CAPTION));
    s_put (&set, S_UNIT, "other_tokens", 2, I (100), I (S_CAPTION));
    if (s_set_write (&set, dir, "special_tokens.safetensors", err))
        return -1;
    char vae [512];
    snprintf (vae, sizeof vae,
              "{\n  \"_class_name\": \"ViTVAE\",\n  \"ddconfig\": {\n    \"video_size\": 16,\n"
              "    \"video_length\": 16,\n    \"patch_size\": %d,\n    \"patch_length\": %d,\n"
              "    \"in_chans\": 3,\n    \"z_chans\": %d,\n    \"double_z\": true,\n"
              "    \"embed_dim\": %d,\n    \"depth\": %d,\n    \"num_heads\": %d,\n"
              "    \"mlp_ratio\": 4.0,\n    \"qkv_bias\": true,\n    \"with_cls_token\": true,\n"
              "    \"norm_code\": false,\n    \"ln_in_attn\": true,\n    \"conv_last_layer\": true,\n"
              "    \"use_rope\": false,\n    \"use_final_proj\": false\n  }\n}\n",
              S_VAE_PATCH, S_VAE_PLEN, S_Z, S_VAE_EMBED, S_VAE_DEPTH, S_VAE_HEADS);
    if (s_text (dir, "ckpt/vae/config.json", vae, err))
        return -1;
    return s_text (dir, "README.txt",
        "MAGI-1 tiny demo checkpoint (made by vdgx-worker --make-tiny-checkpoint DIR --model magi1-tiny).\n"
        "\n"
        "RANDOM WEIGHTS: this model has never been trained. It produces noise-like videos; it\n"
        "exists to exercise the whole server (broker, worker, T5 text encoder, the chunk-causal\n"
        "DiT with its KV cache and chunk scheduler, the ViT VAE, streaming MP4) in seconds on a\n"
        "laptop CPU.\n"
        "\n"
        "Structure and tensor names are those of the released MAGI-1 4.5B at a tiny width: DiT\n"
        "128 wide, 2 layers, 4 heads in 2 groups of head 32, caption width 32; T5-v1.1 encoder\n"
        "32 wide, 2 blocks, vocabulary 256 (a SentencePiece unigram model trained on a few\n"
        "embedded sentences); ViT VAE decoder 64 wide, 1 block, patch 2 x 2 x 4; random special\n"
        "tokens (special_tokens.safetensors).\n"
        "\n"
        "Serve it with: vdgx-worker --model magi1-tiny --weights <this folder>\n"
        "Sizes: width and height multiples of 16 from 32 to 64 (default 32x32), 24 fps, 1 to 4\n"
        "seconds (whole 24-frame chunks; default 2), 8 steps by default.\n", err);
}

int
magi1_tiny_main (const char *dir)
{
    char *err = NULL;
    if (magi1_tiny_write (dir, 42, &err)) {
        fprintf (stderr, "vdgx-worker: %s\n", err? err: "cannot write the tiny MAGI-1 checkpoint");
        free (err);
        return 1;
    }
    printf ("wrote the tiny MAGI-1 checkpoint (random weights) to %s\n"
            "serve it with: vdgx-worker --model magi1-tiny --weights %s\n", dir, dir);
    return 0;
}
