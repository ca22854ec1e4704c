/*  ltx2_tiny.c - the tiny random-weight LTX-2 demo model (see ltx2_engine.h).

    One single-file checkpoint in the layout of ltx-2-19b-dev.safetensors (keys model.diffusion_
    model.*, text_embedding_projection.*, vae.*, audio_vae.*, vocoder.*; BF16; the __metadata__
    "config" JSON with its transformer, vae, audio_vae and vocoder sections, as the official
    configurators read them) at a width that runs a job in seconds on two CPU cores, plus a
    random Gemma 3 decoder (gemma/: config.json, safetensors, a SentencePiece tokenizer
    trained on a small embedded text) whose 5 hidden states feed the text projection.
*/
#include "ltx2_engine.h"
#include "gemma3.h"
#include "gemma3_tok.h"
#include "vdgx_ckpt.h"
#include "vdgx_util.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

//  Tiny sizes: video stream 4 x 16, audio 4 x 8, 2 layers; contexts and connectors 32 wide
//  (4 x 8, 8 registers); Gemma 32 wide with 4 layers (5 x 32 = 160 features); VAE latent 8
//  channels, decoder widths 64 -> 8; audio VAE ch 16; vocoder 64 channels.
enum {
    S_DIM = 64, S_HEADS = 4, S_ADIM = 32, S_AHEADS = 4, S_LAYERS = 2, S_IN = 8, S_AIN = 128,
    S_CAP = 32, S_CONN_HEADS = 4, S_CONN_LAYERS = 2, S_REGISTERS = 8,
    S_GEMMA_HIDDEN = 32, S_GEMMA_LAYERS = 4,
    S_VAE_TOP = 64, S_VAE_BASE = 8, S_AUDIO_CH = 16, S_VOC_CH = 64
};

typedef enum { S_FANIN, S_ONES, S_ZEROS, S_SMALL, S_CONST } s_init_t;

typedef struct {
    vdgx_ckpt_tensor_t *t;
    size_t n, cap;
    uint64_t rng;
    bool oom;
} s_list_t;

static float
s_uniform (uint64_t *s)
{
    return 2.f * (float) (vdgx_splitmix64 (s) >> 40) / 16777216.f - 1.f;     //  [-1, 1)
}

//  Adds a BF16 tensor; value: the constant of S_CONST.
static void
s_add (s_list_t *l, s_init_t init, float value, int ndim, const int64_t *shape, const char *fmt, ...)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap? 2 * l->cap: 256;
        vdgx_ckpt_tensor_t *t = (vdgx_ckpt_tensor_t *) realloc (l->t, cap * sizeof *t);
        if (!t) {
            l->oom = true;
            return;
        }
        l->t = t;
        l->cap = cap;
    }
    vdgx_ckpt_tensor_t *t = &l->t [l->n];
    memset (t, 0, sizeof *t);
    char name [256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (name, sizeof name, fmt, ap);
    va_end (ap);
    int64_t numel = 1, fan_in = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape [i] = shape [i];
        numel *= shape [i];
        if (i > 0)
            fan_in *= shape [i];
    }
    float *f = (float *) malloc ((size_t) numel * sizeof (float));
    void *data = malloc ((size_t) numel * 2);
    t->name = strdup (name);
    if (!f || !data || !t->name) {
        free (f);
        free (data);
        free ((char *) t->name);
        l->oom = true;
        return;
    }
    float a = init == S_FANIN? sqrtf (3.0f / (float) (fan_in > 0? fan_in: 1)): 0.02f * 1.7320508f;
    for (int64_t i = 0; i < numel; i++)
        f [i] = init == S_ONES? 1.0f: init == S_ZEROS? 0.0f: init == S_CONST? value: a * s_uniform (&l->rng);
    vdgx_convert_from_f32 (data, VDGX_DTYPE_BF16, f, (size_t) numel);
    free (f);
    t->dtype = VDGX_DTYPE_BF16;
    t->ndim = ndim;
    t->data = data;
    t->nbytes = (size_t) numel * 2;
    l->n++;
}

#define S_SHAPE(...) ((const int64_t []) { __VA_ARGS__ })
#define S_ND(...) (int) (sizeof ((const int64_t []) { __VA_ARGS__ }) / sizeof (int64_t)), S_SHAPE (__VA_ARGS__)

//  A linear layer "<prefix>.weight" [n, k] + bias [n].
static void
s_linear (s_list_t *l, const char *prefix, int64_t n, int64_t k, bool bias)
{
    s_add (l, S_FANIN, 0, S_ND (n, k), "%s.weight", prefix);
    if (bias)
        s_add (l, S_ZEROS, 0, S_ND (n), "%s.bias", prefix);
}

//  An attention block (q/k/v/out with biases, q/k RMSNorms over the inner width).
static void
s_attention (s_list_t *l, const char *prefix, int64_t inner, int64_t q_in, int64_t kv_in, int64_t out)
{
    char p [256];
    s_add (l, S_ONES, 0, S_ND (inner), "%s.q_norm.weight", prefix);
    s_add (l, S_ONES, 0, S_ND (inner), "%s.k_norm.weight", prefix);
    snprintf (p, sizeof p, "%s.to_q", prefix);
    s_linear (l, p, inner, q_in, true);
    snprintf (p, sizeof p, "%s.to_k", prefix);
    s_linear (l, p, inner, kv_in, true);
    snprintf (p, sizeof p, "%s.to_v", prefix);
    s_linear (l, p, inner, kv_in, true);
    snprintf (p, sizeof p, "%s.to_out.0", prefix);
    s_linear (l, p, out, inner, true);
}

static void
s_ffn (s_list_t *l, const char *prefix, int64_t dim)
{
    char p [256];
    snprintf (p, sizeof p, "%s.net.0.proj", prefix);
    s_linear (l, p, 4 * dim, dim, true);
    snprintf (p, sizeof p, "%s.net.2", prefix);
    s_linear (l, p, dim, 4 * dim, true);
}

//  AdaLayerNormSingle: the timestep embedder (256 -> dim -> dim) and linear (dim -> rows*dim).
static void
s_adaln (s_list_t *l, const char *prefix, int64_t dim, int64_t rows)
{
    char p [256];
    snprintf (p, sizeof p, "%s.emb.timestep_embedder.linear_1", prefix);
    s_linear (l, p, dim, 256, true);
    snprintf (p, sizeof p, "%s.emb.timestep_embedder.linear_2", prefix);
    s_linear (l, p, dim, dim, true);
    snprintf (p, sizeof p, "%s.linear", prefix);
    s_linear (l, p, rows * dim, dim, true);
}

static void
s_dit (s_list_t *l)
{
    const char *m = "model.diffusion_model";
    char p [256];
    s_add (l, S_SMALL, 0, S_ND (2, S_DIM), "%s.scale_shift_table", m);
    s_add (l, S_SMALL, 0, S_ND (2, S_ADIM), "%s.audio_scale_shift_table", m);
    snprintf (p, sizeof p, "%s.patchify_proj", m);
    s_linear (l, p, S_DIM, S_IN, true);
    snprintf (p, sizeof p, "%s.adaln_single", m);
    s_adaln (l, p, S_DIM, 6);
    snprintf (p, sizeof p, "%s.caption_projection.linear_1", m);
    s_linear (l, p, S_DIM, S_CAP, true);
    snprintf (p, sizeof p, "%s.caption_projection.linear_2", m);
    s_linear (l, p, S_DIM, S_DIM, true);
    snprintf (p, sizeof p, "%s.proj_out", m);
    s_linear (l, p, S_IN, S_DIM, true);
    snprintf (p, sizeof p, "%s.audio_patchify_proj", m);
    s_linear (l, p, S_ADIM, S_AIN, true);
    snprintf (p, sizeof p, "%s.audio_adaln_single", m);
    s_adaln (l, p, S_ADIM, 6);
    snprintf (p, sizeof p, "%s.audio_caption_projection.linear_1", m);
    s_linear (l, p, S_ADIM, S_CAP, true);
    snprintf (p, sizeof p, "%s.audio_caption_projection.linear_2", m);
    s_linear (l, p, S_ADIM, S_ADIM, true);
    snprintf (p, sizeof p, "%s.audio_proj_out", m);
    s_linear (l, p, S_AIN, S_ADIM, true);
    snprintf (p, sizeof p, "%s.av_ca_video_scale_shift_adaln_single", m);
    s_adaln (l, p, S_DIM, 4);
    snprintf (p, sizeof p, "%s.av_ca_audio_scale_shift_adaln_single", m);
    s_adaln (l, p, S_ADIM, 4);
    snprintf (p, sizeof p, "%s.av_ca_a2v_gate_adaln_single", m);
    s_adaln (l, p, S_DIM, 1);
    snprintf (p, sizeof p, "%s.av_ca_v2a_gate_adaln_single", m);
    s_adaln (l, p, S_ADIM, 1);
    for (int b = 0; b < S_LAYERS; b++) {
        char blk [128];
        snprintf (blk, sizeof blk, "%s.transformer_blocks.%d", m, b);
        s_add (l, S_SMALL, 0, S_ND (6, S_DIM), "%s.scale_shift_table", blk);
        s_add (l, S_SMALL, 0, S_ND (6, S_ADIM), "%s.audio_scale_shift_table", blk);
        s_add (l, S_SMALL, 0, S_ND (5, S_ADIM), "%s.scale_shift_table_a2v_ca_audio", blk);
        s_add (l, S_SMALL, 0, S_ND (5, S_DIM), "%s.scale_shift_table_a2v_ca_video", blk);
        snprintf (p, sizeof p, "%s.attn1", blk);
        s_attention (l, p, S_DIM, S_DIM, S_DIM, S_DIM);
        snprintf (p, sizeof p, "%s.attn2", blk);
        s_attention (l, p, S_DIM, S_DIM, S_DIM, S_DIM);
        snprintf (p, sizeof p, "%s.ff", blk);
        s_ffn (l, p, S_DIM);
        snprintf (p, sizeof p, "%s.audio_attn1", blk);
        s_attention (l, p, S_ADIM, S_ADIM, S_ADIM, S_ADIM);
        snprintf (p, sizeof p, "%s.audio_attn2", blk);
        s_attention (l, p, S_ADIM, S_ADIM, S_ADIM, S_ADIM);
        snprintf (p, sizeof p, "%s.audio_ff", blk);
        s_ffn (l, p, S_ADIM);
        snprintf (p, sizeof p, "%s.audio_to_video_attn", blk);
        s_attention (l, p, S_ADIM, S_DIM, S_ADIM, S_DIM);
        snprintf (p, sizeof p, "%s.video_to_audio_attn", blk);
        s_attention (l, p, S_ADIM, S_ADIM, S_DIM, S_ADIM);
    }
    //  The two text connectors (same width: the caption channels).
    const char *conn [2] = { "video_embeddings_connector", "audio_embeddings_connector" };
    for (int c = 0; c < 2; c++) {
        s_add (l, S_SMALL, 0, S_ND (S_REGISTERS, S_CAP), "%s.%s.learnable_registers", m, conn [c]);
        for (int b = 0; b < S_CONN_LAYERS; b++) {
            snprintf (p, sizeof p, "%s.%s.transformer_1d_blocks.%d.attn1", m, conn [c], b);
            s_attention (l, p, S_CAP, S_CAP, S_CAP, S_CAP);
            snprintf (p, sizeof p, "%s.%s.transformer_1d_blocks.%d.ff", m, conn [c], b);
            s_ffn (l, p, S_CAP);
        }
    }
    s_add (l, S_FANIN, 0, S_ND (S_CAP, S_GEMMA_HIDDEN * (S_GEMMA_LAYERS + 1)),
           "text_embedding_projection.aggregate_embed.weight");
}

//  The video VAE decoder of the LTX-2 block list [res_x 2, (compress_all, res_x 1) x 3],
//  timestep-conditioned: widths 64 -> 32 -> 16 -> 8 in decode order.
static void
s_video_vae (s_list_t *l)
{
    const char *d = "vae.decoder";
    static const char *stats [5] = { "std-of-means", "mean-of-means", "mean-of-stds",
                                     "mean-of-stds_over_std-of-means", "channel" };
    for (int i = 0; i < 5; i++)
        s_add (l, i == 1? S_SMALL: S_ONES, 0, S_ND (S_IN), "vae.per_channel_statistics.%s", stats [i]);
    s_add (l, S_CONST, 1000.0f, S_ND (1), "%s.timestep_scale_multiplier", d);
    s_add (l, S_FANIN, 0, S_ND (S_VAE_TOP, S_IN, 3, 3, 3), "%s.conv_in.conv.weight", d);
    s_add (l, S_ZEROS, 0, S_ND (S_VAE_TOP), "%s.conv_in.conv.bias", d);
    int64_t c = S_VAE_TOP;
    for (int u = 0; u < 7; u++) {
        if (u % 2 == 0) {               //  res_x: 1 block, the last group 2
            int blocks = u == 6? 2: 1;
            s_add (l, S_FANIN, 0, S_ND (4 * c, 256), "%s.up_blocks.%d.time_embedder.timestep_embedder.linear_1.weight", d, u);
            s_add (l, S_ZEROS, 0, S_ND (4 * c), "%s.up_blocks.%d.time_embedder.timestep_embedder.linear_1.bias", d, u);
            s_add (l, S_FANIN, 0, S_ND (4 * c, 4 * c), "%s.up_blocks.%d.time_embedder.timestep_embedder.linear_2.weight", d, u);
            s_add (l, S_ZEROS, 0, S_ND (4 * c), "%s.up_blocks.%d.time_embedder.timestep_embedder.linear_2.bias", d, u);
            for (int r = 0; r < blocks; r++) {
                s_add (l, S_SMALL, 0, S_ND (4, c), "%s.up_blocks.%d.res_blocks.%d.scale_shift_table", d, u, r);
                for (int k = 1; k <= 2; k++) {
                    s_add (l, S_FANIN, 0, S_ND (c, c, 3, 3, 3), "%s.up_blocks.%d.res_blocks.%d.conv%d.conv.weight", d, u, r, k);
                    s_add (l, S_ZEROS, 0, S_ND (c), "%s.up_blocks.%d.res_blocks.%d.conv%d.conv.bias", d, u, r, k);
                }
            }
        }
        else {                          //  compress_all, residual, multiplier 2
            s_add (l, S_FANIN, 0, S_ND (4 * c, c, 3, 3, 3), "%s.up_blocks.%d.conv.conv.weight", d, u);
            s_add (l, S_ZEROS, 0, S_ND (4 * c), "%s.up_blocks.%d.conv.conv.bias", d, u);
            c /= 2;
        }
    }
    s_add (l, S_FANIN, 0, S_ND (48, S_VAE_BASE, 3, 3, 3), "%s.conv_out.conv.weight", d);
    s_add (l, S_ZEROS, 0, S_ND (48), "%s.conv_out.conv.bias", d);
    s_add (l, S_SMALL, 0, S_ND (2, S_VAE_BASE), "%s.last_scale_shift_table", d);
    s_add (l, S_FANIN, 0, S_ND (2 * S_VAE_BASE, 256), "%s.last_time_embedder.timestep_embedder.linear_1.weight", d);
    s_add (l, S_ZEROS, 0, S_ND (2 * S_VAE_BASE), "%s.last_time_embedder.timestep_embedder.linear_1.bias", d);
    s_add (l, S_FANIN, 0, S_ND (2 * S_VAE_BASE, 2 * S_VAE_BASE), "%s.last_time_embedder.timestep_embedder.linear_2.weight", d);
    s_add (l, S_ZEROS, 0, S_ND (2 * S_VAE_BASE), "%s.last_time_embedder.timestep_embedder.linear_2.bias", d);
}

static void
s_conv2d (s_list_t *l, const char *prefix, int64_t out, int64_t in, int64_t k)
{
    s_add (l, S_FANIN, 0, S_ND (out, in, k, k), "%s.conv.weight", prefix);
    s_add (l, S_ZEROS, 0, S_ND (out), "%s.conv.bias", prefix);
}

//  The audio VAE decoder (ch 16, ch_mult 1, 2, 4, 2 res blocks, z 8) and the HiFi-GAN vocoder.
static void
s_audio (s_list_t *l)
{
    char p [256];
    s_add (l, S_ONES, 0, S_ND (S_AIN), "audio_vae.per_channel_statistics.std-of-means");
    s_add (l, S_SMALL, 0, S_ND (S_AIN), "audio_vae.per_channel_statistics.mean-of-means");
    const int mult [3] = { 1, 2, 4 };
    int64_t top = S_AUDIO_CH * mult [2];
    s_conv2d (l, "audio_vae.decoder.conv_in", top, 8, 3);
    for (int b = 1; b <= 2; b++)
        for (int k = 1; k <= 2; k++) {
            snprintf (p, sizeof p, "audio_vae.decoder.mid.block_%d.conv%d", b, k);
            s_conv2d (l, p, top, top, 3);
        }
    int64_t in = top;
    for (int lev = 2; lev >= 0; lev--) {
        int64_t out = S_AUDIO_CH * mult [lev];
        for (int b = 0; b < 3; b++) {
            int64_t bin = b == 0? in: out;
            snprintf (p, sizeof p, "audio_vae.decoder.up.%d.block.%d.conv1", lev, b);
            s_conv2d (l, p, out, bin, 3);
            snprintf (p, sizeof p, "audio_vae.decoder.up.%d.block.%d.conv2", lev, b);
            s_conv2d (l, p, out, out, 3);
            if (bin != out) {
                snprintf (p, sizeof p, "audio_vae.decoder.up.%d.block.%d.nin_shortcut", lev, b);
                s_conv2d (l, p, out, bin, 1);
            }
        }
        if (lev > 0) {
            snprintf (p, sizeof p, "audio_vae.decoder.up.%d.upsample.conv", lev);
            s_conv2d (l, p, out, out, 3);
        }
        in = out;
    }
    s_conv2d (l, "audio_vae.decoder.conv_out", 2, S_AUDIO_CH, 3);
    //  Vocoder: conv_pre k7, 5 transposed convs halving the width, 3 ResBlock1 per level.
    static const int kernels [5] = { 16, 15, 8, 4, 4 };     //  rates 6, 5, 2, 2, 2
    static const int res_k [3] = { 3, 7, 11 };
    s_add (l, S_FANIN, 0, S_ND (S_VOC_CH, 128, 7), "vocoder.conv_pre.weight");
    s_add (l, S_ZEROS, 0, S_ND (S_VOC_CH), "vocoder.conv_pre.bias");
    int64_t ch = S_VOC_CH;
    for (int i = 0; i < 5; i++) {
        s_add (l, S_FANIN, 0, S_ND (ch, ch / 2, kernels [i]), "vocoder.ups.%d.weight", i);
        s_add (l, S_ZEROS, 0, S_ND (ch / 2), "vocoder.ups.%d.bias", i);
        ch /= 2;
        for (int j = 0; j < 3; j++)
            for (int c = 1; c <= 2; c++)
                for (int d = 0; d < 3; d++) {
                    s_add (l, S_FANIN, 0, S_ND (ch, ch, res_k [j]), "vocoder.resblocks.%d.convs%d.%d.weight", i * 3 + j, c, d);
                    s_add (l, S_ZEROS, 0, S_ND (ch), "vocoder.resblocks.%d.convs%d.%d.bias", i * 3 + j, c, d);
                }
    }
    s_add (l, S_FANIN, 0, S_ND (2, ch, 7), "vocoder.conv_post.weight");
    s_add (l, S_ZEROS, 0, S_ND (2), "vocoder.conv_post.bias");
}

//  The __metadata__ "config": the sections the official configurators read.
static char *
s_config_json (void)
{
    json_t *t = json_pack ("{s:b, s:s, s:s, s:b, s:s, s:b, s:b, s:b,"
                           " s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:i, s:f, s:[i,i,i], s:f,"
                           " s:i, s:i, s:i, s:i, s:i, s:[i], s:f, s:s, s:s, s:[i],"
                           " s:i, s:i, s:i, s:i}",
        "attention_bias", 1, "activation_fn", "gelu-approximate", "standardization_norm", "rms_norm",
        "norm_elementwise_affine", 0, "qk_norm", "rms_norm", "use_audio_video_cross_attention", 1,
        "av_cross_ada_norm", 1, "use_middle_indices_grid", 1,
        "num_attention_heads", S_HEADS, "attention_head_dim", S_DIM / S_HEADS,
        "in_channels", S_IN, "out_channels", S_IN, "num_layers", S_LAYERS,
        "cross_attention_dim", S_DIM, "norm_eps", 1e-6, "caption_channels", S_CAP,
        "positional_embedding_theta", 10000.0, "positional_embedding_max_pos", 20, 2048, 2048,
        "timestep_scale_multiplier", 1000.0,
        "audio_num_attention_heads", S_AHEADS, "audio_attention_head_dim", S_ADIM / S_AHEADS,
        "audio_in_channels", S_AIN, "audio_out_channels", S_AIN, "audio_cross_attention_dim", S_ADIM,
        "audio_positional_embedding_max_pos", 20, "av_ca_timestep_scale_multiplier", 1000.0,
        "rope_type", "split", "frequencies_precision", "float64",
        "connector_positional_embedding_max_pos", 4096,
        "connector_num_attention_heads", S_CONN_HEADS, "connector_attention_head_dim", S_CAP / S_CONN_HEADS,
        "audio_connector_num_attention_heads", S_CONN_HEADS,
        "audio_connector_attention_head_dim", S_CAP / S_CONN_HEADS);
    json_t *vae = json_pack ("{s:i, s:i, s:i, s:i, s:s, s:[[s,{s:i}],[s,{s:b,s:i}],[s,{s:i}],[s,{s:b,s:i}],"
                             "[s,{s:i}],[s,{s:b,s:i}],[s,{s:i}]], s:f, s:s, s:i, s:s, s:b, s:b, s:b}",
        "dims", 3, "in_channels", 3, "out_channels", 3, "latent_channels", S_IN,
        "decoder_spatial_padding_mode", "reflect",
        "decoder_blocks", "res_x", "num_layers", 2, "compress_all", "residual", 1, "multiplier", 2,
        "res_x", "num_layers", 1, "compress_all", "residual", 1, "multiplier", 2,
        "res_x", "num_layers", 1, "compress_all", "residual", 1, "multiplier", 2,
        "res_x", "num_layers", 1,
        "scaling_factor", 1.0, "norm_layer", "pixel_norm", "patch_size", 4, "latent_log_var", "uniform",
        "use_quant_conv", 0, "causal_decoder", 0, "timestep_conditioning", 1);
    json_t *avae = json_pack ("{s:{s:{s:i, s:{s:i, s:i, s:[i,i,i], s:i, s:[], s:i, s:i, s:s, s:s,"
                              " s:f, s:b, s:i, s:b, s:i}}}, s:{s:{s:i, s:b, s:i}, s:{s:i}}}",
        "model", "params", "sampling_rate", 16000, "ddconfig", "ch", S_AUDIO_CH, "out_ch", 2,
        "ch_mult", 1, 2, 4, "num_res_blocks", 2, "attn_resolutions", "resolution", 256,
        "z_channels", 8, "norm_type", "pixel", "causality_axis", "height", "dropout", 0.0,
        "mid_block_add_attention", 0, "mel_bins", 64, "double_z", 1, "in_channels", 2,
        "preprocessing", "stft", "hop_length", 160, "causal", 1, "filter_length", 1024,
        "mel", "n_mel_channels", 64);
    json_t *voc = json_pack ("{s:[i,i,i], s:[i,i,i,i,i], s:[i,i,i,i,i], s:[[i,i,i],[i,i,i],[i,i,i]],"
                             " s:i, s:b, s:s, s:i}",
        "resblock_kernel_sizes", 3, 7, 11, "upsample_rates", 6, 5, 2, 2, 2,
        "upsample_kernel_sizes", 16, 15, 8, 4, 4,
        "resblock_dilation_sizes", 1, 3, 5, 1, 3, 5, 1, 3, 5,
        "upsample_initial_channel", S_VOC_CH, "stereo", 1, "resblock", "1", "output_sample_rate", 24000);
    if (!t || !vae || !avae || !voc) {
        json_decref (t);
        json_decref (vae);
        json_decref (avae);
        json_decref (voc);
        return NULL;
    }
    json_t *all = json_pack ("{s:o, s:o, s:o, s:o}", "transformer", t, "vae", vae, "audio_vae", avae,
                             "vocoder", voc);
    char *text = all? json_dumps (all, JSON_COMPACT): NULL;
    json_decref (all);
    return text;
}

//  The Gemma 3 stand-in: 4 layers of 32, 2 heads of 16, a 96-piece tokenizer.
static int
s_write_gemma (const char *dir, uint64_t seed, char **err)
{
    gemma3_config_t gc;
    gemma3_config_defaults (&gc);
    gc.vocab = 96;
    gc.hidden = S_GEMMA_HIDDEN;
    gc.layers = S_GEMMA_LAYERS;
    gc.heads = 2;
    gc.kv_heads = 1;
    gc.head_dim = 16;
    gc.ffn = 64;
    gc.sliding_window = 4;
    if (gemma3_write_random (dir, &gc, seed, false, err))
        return -1;
    static const char *const corpus [] = {
        "a cat walks along a sunny windowsill", "waves roll onto a quiet beach at sunset",
        "a red car drives through a rainy city at night", "snow falls over a pine forest",
        "the quick brown fox jumps over the lazy dog", "a drummer plays a fast beat on stage",
        "birds sing in the trees while a river flows", "a dog barks at the mailman",
        "rain taps on the window of a small cafe", "fireworks light up the sky over a harbour" };
    char *tok = vdgx_strdupf ("%s/tokenizer.model", dir);
    int rc = tok? gemma3_tok_train_tiny (tok, corpus, 10, 80, err): -1;
    free (tok);
    return rc;
}

int
ltx2_tiny_write (const char *dir, uint64_t seed, char **err)
{
    if (mkdir (dir, 0755) && !vdgx_is_dir (dir)) {
        *err = vdgx_strdupf ("ltx2-tiny: cannot create %s", dir);
        return -1;
    }
    char *gemma_dir = vdgx_strdupf ("%s/gemma", dir);
    if (!gemma_dir || (mkdir (gemma_dir, 0755) && !vdgx_is_dir (gemma_dir))) {
        *err = vdgx_strdupf ("ltx2-tiny: cannot create %s/gemma", dir);
        free (gemma_dir);
        return -1;
    }
    int rc = s_write_gemma (gemma_dir, seed + 1, err);
    free (gemma_dir);
    if (rc)
        return -1;
    s_list_t l = { NULL, 0, 0, seed, false };
    s_dit (&l);
    s_video_vae (&l);
    s_audio (&l);
    char *config = s_config_json ();
    char *path = vdgx_strdupf ("%s/%s", dir, LTX2_TINY_FILE);
    if (l.oom || !config || !path) {
        *err = vdgx_strdupf ("ltx2-tiny: out of memory");
        rc = -1;
    }
    else {
        const char *meta [] = { "config", config,
                                "note", "tiny random-weight LTX-2 demo model (vdgx-worker "
                                        "--make-tiny-checkpoint); key layout of ltx-2-19b-dev.safetensors",
                                NULL };
        rc = vdgx_safetensors_write_meta (path, l.t, l.n, meta, err);
    }
    for (size_t i = 0; i < l.n; i++) {
        free ((char *) l.t [i].name);
        free ((void *) l.t [i].data);
    }
    free (l.t);
    free (config);
    free (path);
    return rc;
}

int
ltx2_tiny_main (const char *dir)
{
    char *err = NULL;
    if (ltx2_tiny_write (dir, 42, &err)) {
        fprintf (stderr, "vdgx-worker: %s\n", err? err: "cannot write the tiny checkpoint");
        free (err);
        return 1;
    }
    printf ("wrote the tiny LTX-2 checkpoint (random weights, audio + video) to %s\n"
            "serve it with: vdgx-worker --model ltx2-tiny --weights %s\n", dir, dir);
    return 0;
}
