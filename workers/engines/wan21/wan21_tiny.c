/*  wan21_tiny.c - the tiny random-weight Wan 2.1 checkpoints (see wan21_engine.h).

    Same tensor names, structure and file formats as the released T2V model (wan21-tiny) or
    I2V-14B model (wan21-i2v-tiny: 36-channel DiT with the image branch and text_len 512,
    the CLIP visual tower, the VAE with its encoder), at a width that
    runs a job in seconds on two CPU cores: the DiT as safetensors, the VAE and the umT5
    encoder as torch.save (.pth) files, written here (the compute layer only writes
    safetensors): a zip of stored entries archive/data.pkl (a protocol-2 pickle of an
    OrderedDict of _rebuild_tensor_v2 calls with ('storage', type, key, 'cpu', numel)
    persistent ids), archive/data/<key> (raw little-endian storage) and archive/version.
*/
#include "wan21_engine.h"
#include "vdgx_util.h"
#include "wan21_vae.h"
#include "vdgx_ckpt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

//  Tiny sizes (the DiT keeps head_dim 16 so its RoPE splits like the real one).
enum {
    S_DIM = 64, S_FFN = 128, S_HEADS = 4, S_LAYERS = 2, S_TEXT_DIM = 32, S_FREQ = 256,
    S_Z = 16, S_TEXT_LEN = 32,
    S_T5_VOCAB = 256, S_T5_DIM = 32, S_T5_FFN = 64, S_T5_HEADS = 4, S_T5_LAYERS = 2,
    S_T5_BUCKETS = 32, S_VAE_DIM = 8,
    //  I2V: the CLIP tower keeps the real patch 14 / 224 pixels (257 tokens) and 16 heads.
    S_I2V_IN = 36, S_I2V_TEXT_LEN = 512, S_CLIP_DIM = 64, S_CLIP_PATCH = 14, S_CLIP_TOKENS = 257,
    S_CLIP_BLOCKS = 3
};

typedef enum { S_FANIN, S_ONES, S_ZEROS, S_SMALL, S_EMBED } s_init_t;

typedef struct {
    vdgx_ckpt_tensor_t *t;
    size_t n, cap;
    vdgx_dtype_t dtype;
    uint64_t rng;
    bool oom;
} s_list_t;

static float
s_uniform (uint64_t *s)
{
    return 2.f * (float) (vdgx_splitmix64 (s) >> 40) / 16777216.f - 1.f;     //  [-1, 1)
}

static void
s_add (s_list_t *l, s_init_t init, int ndim, const int64_t *shape, const char *fmt, ...)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap? 2 * l->cap: 64;
        vdgx_ckpt_tensor_t *t = (vdgx_ckpt_tensor_t *) realloc (l->t, cap * sizeof *t);
        if (!t) {
            l->oom = true;
            return;
        }
        l->t = t;
        l->cap = cap;
    }
    char name [200];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (name, sizeof name, fmt, ap);
    va_end (ap);
    size_t n = 1;
    double fan_in = ndim > 1? 1: (double) shape [0];
    for (int i = 0; i < ndim; i++)
        n *= (size_t) shape [i];
    for (int i = 1; i < ndim; i++)
        fan_in *= (double) shape [i];
    float *f = (float *) malloc (n * sizeof (float));
    void *data = malloc (n * vdgx_dtype_size (l->dtype));
    char *nm = strdup (name);
    if (!f || !data || !nm) {
        free (f);
        free (data);
        free (nm);
        l->oom = true;
        return;
    }
    float bound = (float) (1.0 / sqrt (fan_in));
    for (size_t i = 0; i < n; i++)
        f [i] = init == S_ONES? 1.f: init == S_ZEROS? 0.f: init == S_SMALL? 0.1f * s_uniform (&l->rng)
              : init == S_EMBED? s_uniform (&l->rng): bound * s_uniform (&l->rng);
    vdgx_convert_from_f32 (data, l->dtype, f, n);
    free (f);
    vdgx_ckpt_tensor_t *t = &l->t [l->n++];
    memset (t, 0, sizeof *t);
    t->name = nm;
    t->dtype = l->dtype;
    t->ndim = ndim;
    memcpy (t->shape, shape, (size_t) ndim * sizeof (int64_t));
    t->data = data;
    t->nbytes = n * vdgx_dtype_size (l->dtype);
}

#define S_SHAPE(...) (int) (sizeof ((int64_t []) { __VA_ARGS__ }) / sizeof (int64_t)), (int64_t []) { __VA_ARGS__ }

static void
s_free_list (s_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free ((void *) l->t [i].name);
        free ((void *) l->t [i].data);
    }
    free (l->t);
    memset (l, 0, sizeof *l);
}

static int s_write_pth (const char *path, const vdgx_ckpt_tensor_t *t, size_t count, char **err);

static int
s_write (s_list_t *l, const char *path, char **err)
{
    if (l->oom) {
        *err = vdgx_strdupf ("tiny checkpoint: out of memory");
        return -1;
    }
    size_t len = strlen (path);
    if (len > 4 && strcmp (path + len - 4, ".pth") == 0)
        return s_write_pth (path, l->t, l->n, err);
    char *e = NULL;
    if (vdgx_safetensors_write (path, l->t, l->n, &e)) {
        *err = vdgx_strdupf ("tiny checkpoint: cannot write %s: %s", path, e? e: "error");
        free (e);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  torch.save (.pth) writer

typedef struct {
    uint8_t *d;
    size_t n, cap;
    bool oom;
} s_buf_t;

static void
s_put (s_buf_t *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap? b->cap: 4096;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *d = (uint8_t *) realloc (b->d, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->d = d;
        b->cap = cap;
    }
    memcpy (b->d + b->n, p, n);
    b->n += n;
}

static void
s_le (s_buf_t *b, uint64_t v, int bytes)
{
    uint8_t x [8];
    for (int i = 0; i < bytes; i++)
        x [i] = (uint8_t) (v >> (8 * i));
    s_put (b, x, (size_t) bytes);
}

static void s_op (s_buf_t *b, uint8_t op) { s_put (b, &op, 1); }

static void
s_pk_str (s_buf_t *b, const char *str)     //  BINUNICODE
{
    s_op (b, 'X');
    s_le (b, strlen (str), 4);
    s_put (b, str, strlen (str));
}

static void
s_pk_global (s_buf_t *b, const char *module, const char *name)
{
    s_op (b, 'c');
    s_put (b, module, strlen (module));
    s_op (b, '\n');
    s_put (b, name, strlen (name));
    s_op (b, '\n');
}

static void
s_pk_int (s_buf_t *b, int64_t v)            //  BININT (the tiny sizes fit 32 bits)
{
    s_op (b, 'J');
    s_le (b, (uint64_t) (uint32_t) (int32_t) v, 4);
}

static void
s_pk_ordered_dict (s_buf_t *b)
{
    s_pk_global (b, "collections", "OrderedDict");
    s_op (b, ')');
    s_op (b, 'R');
}

static uint32_t
s_crc32 (const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p [i];
        for (int k = 0; k < 8; k++)
            c = c & 1? 0xedb88320u ^ (c >> 1): c >> 1;
    }
    return c ^ 0xffffffffu;
}

typedef struct {
    char name [64];
    uint32_t crc, size, offset;
} s_zentry_t;

static void
s_zip_add (s_buf_t *z, s_zentry_t *e, const char *name, const void *data, size_t size)
{
    snprintf (e->name, sizeof e->name, "%s", name);
    e->crc = s_crc32 ((const uint8_t *) data, size);
    e->size = (uint32_t) size;
    e->offset = (uint32_t) z->n;
    s_le (z, 0x04034b50u, 4);
    s_le (z, 20, 2);                    //  version needed
    s_le (z, 0, 2);                     //  flags
    s_le (z, 0, 2);                     //  stored
    s_le (z, 0, 4);                     //  time, date
    s_le (z, e->crc, 4);
    s_le (z, size, 4);
    s_le (z, size, 4);
    s_le (z, strlen (e->name), 2);
    s_le (z, 0, 2);
    s_put (z, e->name, strlen (e->name));
    s_put (z, data, size);
}

//  Writes tensors as a torch.save file (one storage per tensor, contiguous).
static int
s_write_pth (const char *path, const vdgx_ckpt_tensor_t *t, size_t count, char **err)
{
    s_buf_t pk = { 0 }, z = { 0 };
    s_zentry_t *e = (s_zentry_t *) calloc (count + 2, sizeof *e);
    int rc = -1;
    if (!e)
        goto out;
    s_op (&pk, 0x80);
    s_op (&pk, 2);
    s_pk_ordered_dict (&pk);
    s_op (&pk, '(');
    for (size_t i = 0; i < count; i++) {
        char key [32];
        snprintf (key, sizeof key, "%zu", i);
        int64_t numel = 1;
        for (int d = 0; d < t [i].ndim; d++)
            numel *= t [i].shape [d];
        s_pk_str (&pk, t [i].name);
        s_pk_global (&pk, "torch._utils", "_rebuild_tensor_v2");
        s_op (&pk, '(');
        s_op (&pk, '(');
        s_pk_str (&pk, "storage");
        s_pk_global (&pk, "torch", t [i].dtype == VDGX_DTYPE_BF16? "BFloat16Storage": "FloatStorage");
        s_pk_str (&pk, key);
        s_pk_str (&pk, "cpu");
        s_pk_int (&pk, numel);
        s_op (&pk, 't');
        s_op (&pk, 'Q');                //  BINPERSID
        s_pk_int (&pk, 0);              //  storage offset
        s_op (&pk, '(');
        for (int d = 0; d < t [i].ndim; d++)
            s_pk_int (&pk, t [i].shape [d]);
        s_op (&pk, 't');
        s_op (&pk, '(');
        int64_t stride = 1, strides [VDGX_MAX_DIMS];
        for (int d = t [i].ndim - 1; d >= 0; d--) {
            strides [d] = stride;
            stride *= t [i].shape [d];
        }
        for (int d = 0; d < t [i].ndim; d++)
            s_pk_int (&pk, strides [d]);
        s_op (&pk, 't');
        s_op (&pk, 0x89);               //  requires_grad False
        s_pk_ordered_dict (&pk);        //  backward hooks
        s_op (&pk, 't');
        s_op (&pk, 'R');
    }
    s_op (&pk, 'u');
    s_op (&pk, '.');
    if (pk.oom)
        goto out;
    s_zip_add (&z, &e [0], "archive/data.pkl", pk.d, pk.n);
    for (size_t i = 0; i < count; i++) {
        char name [64];
        snprintf (name, sizeof name, "archive/data/%zu", i);
        s_zip_add (&z, &e [i + 1], name, t [i].data, t [i].nbytes);
    }
    s_zip_add (&z, &e [count + 1], "archive/version", "3\n", 2);
    size_t cd = z.n;
    for (size_t i = 0; i < count + 2; i++) {
        s_le (&z, 0x02014b50u, 4);
        s_le (&z, 20, 2);               //  made by
        s_le (&z, 20, 2);               //  needed
        s_le (&z, 0, 2);
        s_le (&z, 0, 2);
        s_le (&z, 0, 4);
        s_le (&z, e [i].crc, 4);
        s_le (&z, e [i].size, 4);
        s_le (&z, e [i].size, 4);
        s_le (&z, strlen (e [i].name), 2);
        s_le (&z, 0, 2);                //  extra
        s_le (&z, 0, 2);                //  comment
        s_le (&z, 0, 2);                //  disk
        s_le (&z, 0, 2);                //  internal attributes
        s_le (&z, 0, 4);                //  external attributes
        s_le (&z, e [i].offset, 4);
        s_put (&z, e [i].name, strlen (e [i].name));
    }
    size_t cd_size = z.n - cd;
    s_le (&z, 0x06054b50u, 4);
    s_le (&z, 0, 4);
    s_le (&z, count + 2, 2);
    s_le (&z, count + 2, 2);
    s_le (&z, cd_size, 4);
    s_le (&z, cd, 4);
    s_le (&z, 0, 2);
    if (z.oom || z.n > 0xffffffffu)     //  no zip64 needed (or written) at tiny sizes
        goto out;
    char tmp [4096];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen (tmp, "wb");
    bool ok = f && fwrite (z.d, 1, z.n, f) == z.n;
    if (f && fclose (f))
        ok = false;
    if (!ok || rename (tmp, path)) {
        remove (tmp);
        goto out;
    }
    rc = 0;
out:
    if (rc && err && !*err)
        *err = vdgx_strdupf ("tiny checkpoint: cannot write %s", path);
    free (pk.d);
    free (z.d);
    free (e);
    return rc;
}

static void
s_dit (s_list_t *l, bool i2v, bool flf2v)
{
    const int64_t D = S_DIM;
    s_add (l, S_FANIN, S_SHAPE (D, i2v? S_I2V_IN: S_Z, 1, 2, 2), "patch_embedding.weight");
    s_add (l, S_SMALL, S_SHAPE (D), "patch_embedding.bias");
    s_add (l, S_FANIN, S_SHAPE (D, S_TEXT_DIM), "text_embedding.0.weight");
    s_add (l, S_SMALL, S_SHAPE (D), "text_embedding.0.bias");
    s_add (l, S_FANIN, S_SHAPE (D, D), "text_embedding.2.weight");
    s_add (l, S_SMALL, S_SHAPE (D), "text_embedding.2.bias");
    s_add (l, S_FANIN, S_SHAPE (D, S_FREQ), "time_embedding.0.weight");
    s_add (l, S_SMALL, S_SHAPE (D), "time_embedding.0.bias");
    s_add (l, S_FANIN, S_SHAPE (D, D), "time_embedding.2.weight");
    s_add (l, S_SMALL, S_SHAPE (D), "time_embedding.2.bias");
    s_add (l, S_FANIN, S_SHAPE (6 * D, D), "time_projection.1.weight");
    s_add (l, S_SMALL, S_SHAPE (6 * D), "time_projection.1.bias");
    for (int i = 0; i < S_LAYERS; i++) {
        s_add (l, S_SMALL, S_SHAPE (1, 6, D), "blocks.%d.modulation", i);
        const char *attn [2] = { "self_attn", "cross_attn" };
        for (int a = 0; a < 2; a++) {
            const char *qkvo [4] = { "q", "k", "v", "o" };
            for (int j = 0; j < 4; j++) {
                s_add (l, S_FANIN, S_SHAPE (D, D), "blocks.%d.%s.%s.weight", i, attn [a], qkvo [j]);
                s_add (l, S_SMALL, S_SHAPE (D), "blocks.%d.%s.%s.bias", i, attn [a], qkvo [j]);
            }
            s_add (l, S_ONES, S_SHAPE (D), "blocks.%d.%s.norm_q.weight", i, attn [a]);
            s_add (l, S_ONES, S_SHAPE (D), "blocks.%d.%s.norm_k.weight", i, attn [a]);
            if (a == 0) {
                s_add (l, S_ONES, S_SHAPE (D), "blocks.%d.norm3.weight", i);
                s_add (l, S_ZEROS, S_SHAPE (D), "blocks.%d.norm3.bias", i);
            }
        }
        if (i2v) {
            s_add (l, S_FANIN, S_SHAPE (D, D), "blocks.%d.cross_attn.k_img.weight", i);
            s_add (l, S_SMALL, S_SHAPE (D), "blocks.%d.cross_attn.k_img.bias", i);
            s_add (l, S_FANIN, S_SHAPE (D, D), "blocks.%d.cross_attn.v_img.weight", i);
            s_add (l, S_SMALL, S_SHAPE (D), "blocks.%d.cross_attn.v_img.bias", i);
            s_add (l, S_ONES, S_SHAPE (D), "blocks.%d.cross_attn.norm_k_img.weight", i);
        }
        s_add (l, S_FANIN, S_SHAPE (S_FFN, D), "blocks.%d.ffn.0.weight", i);
        s_add (l, S_SMALL, S_SHAPE (S_FFN), "blocks.%d.ffn.0.bias", i);
        s_add (l, S_FANIN, S_SHAPE (D, S_FFN), "blocks.%d.ffn.2.weight", i);
        s_add (l, S_SMALL, S_SHAPE (D), "blocks.%d.ffn.2.bias", i);
    }
    s_add (l, S_SMALL, S_SHAPE (1, 2, D), "head.modulation");
    s_add (l, S_FANIN, S_SHAPE (S_Z * 4, D), "head.head.weight");
    s_add (l, S_SMALL, S_SHAPE (S_Z * 4), "head.head.bias");
    if (i2v) {
        const int64_t C = S_CLIP_DIM;
        s_add (l, S_ONES, S_SHAPE (C), "img_emb.proj.0.weight");
        s_add (l, S_ZEROS, S_SHAPE (C), "img_emb.proj.0.bias");
        s_add (l, S_FANIN, S_SHAPE (C, C), "img_emb.proj.1.weight");
        s_add (l, S_SMALL, S_SHAPE (C), "img_emb.proj.1.bias");
        s_add (l, S_FANIN, S_SHAPE (D, C), "img_emb.proj.3.weight");
        s_add (l, S_SMALL, S_SHAPE (D), "img_emb.proj.3.bias");
        s_add (l, S_ONES, S_SHAPE (D), "img_emb.proj.4.weight");
        s_add (l, S_ZEROS, S_SHAPE (D), "img_emb.proj.4.bias");
        if (flf2v)
            s_add (l, S_SMALL, S_SHAPE (1, 2 * S_CLIP_TOKENS, C), "img_emb.emb_pos");
    }
}

//  The CLIP visual tower as in models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth
//  (visual.* only; the engine runs every block but the last).
static void
s_clip (s_list_t *l)
{
    const int64_t C = S_CLIP_DIM;
    s_add (l, S_FANIN, S_SHAPE (C, 3, S_CLIP_PATCH, S_CLIP_PATCH), "visual.patch_embedding.weight");
    s_add (l, S_EMBED, S_SHAPE (1, 1, C), "visual.cls_embedding");
    s_add (l, S_SMALL, S_SHAPE (1, S_CLIP_TOKENS, C), "visual.pos_embedding");
    s_add (l, S_ONES, S_SHAPE (C), "visual.pre_norm.weight");
    s_add (l, S_ZEROS, S_SHAPE (C), "visual.pre_norm.bias");
    for (int i = 0; i < S_CLIP_BLOCKS; i++) {
        s_add (l, S_ONES, S_SHAPE (C), "visual.transformer.%d.norm1.weight", i);
        s_add (l, S_ZEROS, S_SHAPE (C), "visual.transformer.%d.norm1.bias", i);
        s_add (l, S_FANIN, S_SHAPE (3 * C, C), "visual.transformer.%d.attn.to_qkv.weight", i);
        s_add (l, S_SMALL, S_SHAPE (3 * C), "visual.transformer.%d.attn.to_qkv.bias", i);
        s_add (l, S_FANIN, S_SHAPE (C, C), "visual.transformer.%d.attn.proj.weight", i);
        s_add (l, S_SMALL, S_SHAPE (C), "visual.transformer.%d.attn.proj.bias", i);
        s_add (l, S_ONES, S_SHAPE (C), "visual.transformer.%d.norm2.weight", i);
        s_add (l, S_ZEROS, S_SHAPE (C), "visual.transformer.%d.norm2.bias", i);
        s_add (l, S_FANIN, S_SHAPE (4 * C, C), "visual.transformer.%d.mlp.0.weight", i);
        s_add (l, S_SMALL, S_SHAPE (4 * C), "visual.transformer.%d.mlp.0.bias", i);
        s_add (l, S_FANIN, S_SHAPE (C, 4 * C), "visual.transformer.%d.mlp.2.weight", i);
        s_add (l, S_SMALL, S_SHAPE (C), "visual.transformer.%d.mlp.2.bias", i);
    }
    s_add (l, S_ONES, S_SHAPE (C), "visual.post_norm.weight");
    s_add (l, S_ZEROS, S_SHAPE (C), "visual.post_norm.bias");
}

static void
s_t5 (s_list_t *l)
{
    const int64_t D = S_T5_DIM;
    s_add (l, S_EMBED, S_SHAPE (S_T5_VOCAB, D), "token_embedding.weight");
    for (int i = 0; i < S_T5_LAYERS; i++) {
        s_add (l, S_ONES, S_SHAPE (D), "blocks.%d.norm1.weight", i);
        const char *qkvo [4] = { "q", "k", "v", "o" };
        for (int j = 0; j < 4; j++)
            s_add (l, S_FANIN, S_SHAPE (D, D), "blocks.%d.attn.%s.weight", i, qkvo [j]);
        s_add (l, S_ONES, S_SHAPE (D), "blocks.%d.norm2.weight", i);
        s_add (l, S_FANIN, S_SHAPE (S_T5_FFN, D), "blocks.%d.ffn.gate.0.weight", i);
        s_add (l, S_FANIN, S_SHAPE (S_T5_FFN, D), "blocks.%d.ffn.fc1.weight", i);
        s_add (l, S_FANIN, S_SHAPE (D, S_T5_FFN), "blocks.%d.ffn.fc2.weight", i);
        s_add (l, S_SMALL, S_SHAPE (S_T5_BUCKETS, S_T5_HEADS), "blocks.%d.pos_embedding.embedding.weight", i);
    }
    s_add (l, S_ONES, S_SHAPE (D), "norm.weight");
}

static void
s_vae_one (void *arg, const char *name, int ndim, const int64_t *shape)
{
    s_list_t *l = (s_list_t *) arg;
    s_add (l, strstr (name, "gamma")? S_ONES: strstr (name, "bias")? S_SMALL: S_FANIN, ndim, shape,
           "%s", name);
}

static int
s_mkdir (const char *path, char **err)
{
    if (mkdir (path, 0755) == 0 || errno == EEXIST)
        return 0;
    *err = vdgx_strdupf ("tiny checkpoint: cannot create %s: %s", path, strerror (errno));
    return -1;
}

static int
s_write_text (const char *path, const char *text, char **err)
{
    FILE *f = fopen (path, "w");
    bool ok = f && fputs (text, f) >= 0;
    if (f && fclose (f))
        ok = false;
    if (!ok) {
        *err = vdgx_strdupf ("tiny checkpoint: cannot write %s", path);
        return -1;
    }
    return 0;
}

int
wan21_tiny_write (const char *dir, uint64_t seed, char **err)
{
    return wan21_tiny_write_model (dir, "wan21-tiny", seed, err);
}

int
wan21_tiny_write_model (const char *dir, const char *model, uint64_t seed, char **err)
{
    if (!dir || !*dir || !err || !model)
        return -1;
    bool flf2v = strcmp (model, "wan21-flf2v-tiny") == 0;
    bool i2v = flf2v || strcmp (model, "wan21-i2v-tiny") == 0;
    if (!i2v && strcmp (model, "wan21-tiny") != 0) {
        *err = vdgx_strdupf ("tiny checkpoint: no tiny model '%s' (wan21-tiny, wan21-i2v-tiny, "
                             "wan21-flf2v-tiny)", model);
        return -1;
    }
    char *p = NULL;
    int rc = -1;
    s_list_t l = { 0 };
    if (s_mkdir (dir, err))
        return -1;
    //  Tokenizer first: the vocabulary of the text encoder must cover it.
    p = vdgx_strdupf ("%s/google", dir);
    if (!p || s_mkdir (p, err))
        goto out;
    free (p);
    p = vdgx_strdupf ("%s/google/umt5-xxl", dir);
    if (!p || s_mkdir (p, err))
        goto out;
    free (p);
    p = vdgx_strdupf ("%s/google/umt5-xxl/spiece.model", dir);
    if (!p || wan21_tiny_train_spm (p, S_T5_VOCAB, err))
        goto out;
    free (p);

    l.dtype = VDGX_DTYPE_F32;
    l.rng = seed * 0x2545F4914F6CDD1Dull + 1;
    s_dit (&l, i2v, flf2v);
    p = vdgx_strdupf ("%s/diffusion_pytorch_model.safetensors", dir);
    if (!p || s_write (&l, p, err))
        goto out;
    free (p);
    s_free_list (&l);

    l.dtype = VDGX_DTYPE_BF16;      //  as the released umT5 encoder
    l.rng = seed * 0x2545F4914F6CDD1Dull + 2;
    s_t5 (&l);
    p = vdgx_strdupf ("%s/models_t5_umt5-xxl-enc-bf16.pth", dir);
    if (!p || s_write (&l, p, err))
        goto out;
    free (p);
    s_free_list (&l);

    l.dtype = VDGX_DTYPE_F32;
    l.rng = seed * 0x2545F4914F6CDD1Dull + 3;
    wan21_vae_layout (S_VAE_DIM, S_Z, s_vae_one, &l);
    if (i2v)
        wan21_vae_encoder_layout (S_VAE_DIM, S_Z, s_vae_one, &l);
    p = vdgx_strdupf ("%s/Wan2.1_VAE.pth", dir);
    if (!p || s_write (&l, p, err))
        goto out;
    free (p);
    s_free_list (&l);

    if (i2v) {
        l.dtype = VDGX_DTYPE_F32;
        l.rng = seed * 0x2545F4914F6CDD1Dull + 4;
        s_clip (&l);
        p = vdgx_strdupf ("%s/models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth", dir);
        if (!p || s_write (&l, p, err))
            goto out;
        free (p);
        s_free_list (&l);
    }

    char config [512];
    snprintf (config, sizeof config,
              "{\n  \"_class_name\": \"WanModel\",\n  \"model_type\": \"%s\",\n  \"dim\": %d,\n"
              "  \"ffn_dim\": %d,\n  \"num_heads\": %d,\n  \"num_layers\": %d,\n  \"text_dim\": %d,\n"
              "  \"freq_dim\": %d,\n  \"in_dim\": %d,\n  \"out_dim\": %d,\n  \"text_len\": %d,\n"
              "  \"patch_size\": [1, 2, 2],\n  \"eps\": 1e-06\n}\n",
              flf2v? "flf2v": i2v? "i2v": "t2v", S_DIM, S_FFN, S_HEADS, S_LAYERS, S_TEXT_DIM, S_FREQ,
              i2v? S_I2V_IN: S_Z, S_Z, i2v? S_I2V_TEXT_LEN: S_TEXT_LEN);
    p = vdgx_strdupf ("%s/config.json", dir);
    if (!p || s_write_text (p, config, err))
        goto out;
    free (p);
    p = vdgx_strdupf ("%s/README.txt", dir);
    if (p && flf2v) {
        if (s_write_text (p,
            "Wan 2.1 tiny first-last-frame-to-video checkpoint (made by vdgx-worker\n"
            "--make-tiny-checkpoint DIR --model wan21-flf2v-tiny). RANDOM WEIGHTS.\n"
            "\n"
            "The wan21-i2v-tiny layout plus img_emb.emb_pos [1, 514, 64] (the FLF2V-14B\n"
            "architecture). A request needs image (first frame) and last_image (last frame).\n"
            "Serve it with: vdgx-worker --model wan21-flf2v-tiny --weights <this folder>\n", err))
            goto out;
    }
    else
    if (p && i2v) {
        if (s_write_text (p,
            "Wan 2.1 tiny image-to-video demo checkpoint (made by vdgx-worker\n"
            "--make-tiny-checkpoint DIR --model wan21-i2v-tiny).\n"
            "\n"
            "RANDOM WEIGHTS: this model has never been trained. It produces noise-like videos\n"
            "from an image; it exists to exercise the image-to-video path of the server (image\n"
            "decoding, CLIP, VAE encoder, DiT image branch, sampler, VAE, video encoder) in\n"
            "seconds on a laptop CPU.\n"
            "\n"
            "Structure and tensor names are those of the released Wan2.1-I2V-14B model at a tiny\n"
            "width: DiT dim 64, 2 layers, 4 heads, 36 input channels, text_len 512, img_emb from\n"
            "64-wide CLIP features; CLIP visual tower dim 64, patch 14, 224x224 (257 tokens), 3\n"
            "blocks (the last unused), 16 heads; umT5 encoder dim 32, 2 layers, vocabulary 256;\n"
            "VAE base width 8 with its encoder.\n"
            "\n"
            "Serve it with: vdgx-worker --model wan21-i2v-tiny --weights <this folder>\n"
            "A request needs an image; width x height (multiples of 16 from 32 to 256, default\n"
            "64x48) is the pixel budget, the video's aspect follows the image's. Frames 4n+1 up\n"
            "to 33 (default 9), 8 steps by default.\n", err))
            goto out;
    }
    else
    if (!p || s_write_text (p,
        "Wan 2.1 tiny demo checkpoint (made by vdgx-worker --make-tiny-checkpoint).\n"
        "\n"
        "RANDOM WEIGHTS: this model has never been trained. It produces noise-like videos;\n"
        "it exists to exercise the whole server (broker, worker, text encoder, DiT, sampler,\n"
        "VAE, video encoder) in seconds on a laptop CPU.\n"
        "\n"
        "Structure and tensor names are those of the released Wan2.1-T2V model at a tiny\n"
        "width: DiT dim 64, 2 layers, 4 heads, text_len 32; umT5 encoder dim 32, 2 layers,\n"
        "vocabulary 256; VAE base width 8; a SentencePiece unigram tokenizer trained on a\n"
        "few embedded sentences.\n"
        "\n"
        "Serve it with: vdgx-worker --model wan21-tiny --weights <this folder>\n"
        "Sizes: width and height multiples of 16 from 32 to 256 (default 64x48), frames 4n+1\n"
        "up to 33 (default 9), 8 steps by default.\n", err))
        goto out;
    rc = 0;
out:
    free (p);
    s_free_list (&l);
    return rc;
}

int
wan21_tiny_write_pth (const char *path, const vdgx_ckpt_tensor_t *tensors, size_t count, char **err)
{
    return s_write_pth (path, tensors, count, err);
}

int
wan21_tiny_main (const char *dir, const char *model)
{
    char *err = NULL;
    if (!model)
        model = "wan21-tiny";
    if (wan21_tiny_write_model (dir, model, 42, &err)) {
        fprintf (stderr, "vdgx-worker: %s\n", err? err: "cannot write the tiny checkpoint");
        free (err);
        return 1;
    }
    printf ("wrote the tiny Wan 2.1 checkpoint %s (random weights) to %s\n"
            "serve it with: vdgx-worker --model %s --weights %s\n", model, dir, model, dir);
    return 0;
}
