/*  ltx2_audio.c - the LTX-2 / LTX-2.3 audio VAE decoder and vocoder (see ltx2_audio.h).

    The per-channel statistics and the BWE's magnitude / mel / log steps run on the host (a
    few thousand values per second of audio); every convolution runs on the backend in F32
    through the toolkit's layers (vdgx_conv.h: 1-D convolutions, anti-aliased SnakeBeta,
    Hann-sinc upsampling).
*/
#include "ltx2_audio.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdgx_conv.h"
#include "vdgx_nn.h"
#include "vdgx_util.h"
#include "vdgx_wsrc.h"

#define S_LATENT_DOWN 4         //  LATENT_DOWNSAMPLE_FACTOR: latent frames -> mel frames
#define S_PIXEL_EPS 1e-6f       //  the audio VAE's PixelNorm
#define S_AA_KERNEL 12          //  Activation1d's up/down filter size
#define S_LRELU 0.1f            //  HiFi-GAN's slope inside the generator
#define S_LRELU_POST 0.01f      //  nn.LeakyReLU () before conv_post
#define S_MAX_RES_BLOCKS 16

//  A 3x3 (or 1x1) Conv2d, causal along the time (height) axis.
typedef struct {
    vdgx_tensor_t w, b;
    int k;
} s_conv2d_t;

typedef struct {
    s_conv2d_t conv1, conv2, nin;           //  nin: only when the width changes
    int cin, cout;
} s_resnet_t;

typedef struct {
    s_resnet_t blocks [S_MAX_RES_BLOCKS + 1];
    int nblocks;
    s_conv2d_t up;                          //  all levels but 0
} s_level_t;

//  ResBlock1 or AMPBlock1: three (conv dilated, conv) pairs with their activations.
typedef struct {
    vdgx_conv1d_t c1 [3], c2 [3];
    vdgx_aa_act_t a1 [3], a2 [3];           //  AMP1 only
} s_resblock_t;

typedef struct {
    ltx2_vocoder_config_t cfg;
    vdgx_conv1d_t pre, post;
    vdgx_conv1d_t ups [LTX2_AUDIO_MAX_UPS];
    s_resblock_t res [LTX2_AUDIO_MAX_UPS * LTX2_AUDIO_MAX_KERNELS];
    vdgx_aa_act_t act_post;                 //  AMP1 only
} s_gen_t;

struct _ltx2_audio_t {
    ltx2_audio_config_t cfg;
    vdgx_backend_t *backend;
    float *mean, *std;                      //  host [stats_channels]
    s_conv2d_t conv_in, conv_out;
    s_resnet_t mid [2];
    s_level_t levels [LTX2_AUDIO_MAX_LEVELS];
    s_gen_t voc, bwe;
    vdgx_tensor_t stft;                     //  BWE: forward_basis [2 nfreq, 1, n_fft]
    float *mel_basis;                       //  BWE: host [mels, nfreq]
    vdgx_sinc_up_t resampler;               //  BWE: x (output / input rate)
    size_t weight_bytes;
    ltx2_audio_tap_fn *tap;
    void *tap_arg;
};

//  ---------------------------------------------------------------------------------------
//  Configuration

static int
s_get_int (json_t *obj, const char *key, int def, int lo, int hi, int *out, const char *where, char **err)
{
    json_t *v = json_object_get (obj, key);
    if (!v || json_is_null (v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer (v) || json_integer_value (v) < lo || json_integer_value (v) > hi) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s.%s must be an integer in [%d, %d]", where, key, lo, hi);
        return -1;
    }
    *out = (int) json_integer_value (v);
    return 0;
}

static int
s_get_bool (json_t *obj, const char *key, bool def, bool *out, const char *where, char **err)
{
    json_t *v = json_object_get (obj, key);
    if (!v || json_is_null (v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean (v)) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s.%s must be true or false", where, key);
        return -1;
    }
    *out = json_is_true (v);
    return 0;
}

//  A list of up to max integers in [lo, hi] (absent: the n defaults).
static int
s_get_ints (json_t *obj, const char *key, const int *def, int ndef, int max, int lo, int hi,
            int *out, int *n, const char *where, char **err)
{
    json_t *v = json_object_get (obj, key);
    if (!v || json_is_null (v)) {
        memcpy (out, def, sizeof (int) * (size_t) ndef);
        *n = ndef;
        return 0;
    }
    if (!json_is_array (v) || json_array_size (v) < 1 || json_array_size (v) > (size_t) max) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s.%s must be a list of 1 to %d integers", where, key, max);
        return -1;
    }
    *n = (int) json_array_size (v);
    for (int i = 0; i < *n; i++) {
        json_t *e = json_array_get (v, (size_t) i);
        if (!json_is_integer (e) || json_integer_value (e) < lo || json_integer_value (e) > hi) {
            vdgx_set_error (err, "LTX-2 checkpoint: config %s.%s[%d] must be an integer in [%d, %d]",
                            where, key, i, lo, hi);
            return -1;
        }
        out [i] = (int) json_integer_value (e);
    }
    return 0;
}

//  A string setting that must equal want when present.
static int
s_check_str (json_t *obj, const char *key, const char *want, const char *where, char **err)
{
    json_t *v = json_object_get (obj, key);
    if (v && (!json_is_string (v) || strcmp (json_string_value (v), want))) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s.%s must be \"%s\" (this decoder supports "
                        "only that)", where, key, want);
        return -1;
    }
    return 0;
}

//  One generator's settings (Vocoder's constructor defaults for what is absent).
static int
s_parse_gen (json_t *c, ltx2_vocoder_config_t *g, bool bwe_gen, const char *where, char **err)
{
    static const int def_rk [3] = { 3, 7, 11 }, def_ur [5] = { 6, 5, 2, 2, 2 }, def_uk [5] = { 16, 15, 8, 4, 4 };
    memset (g, 0, sizeof (*g));
    json_t *rb = json_object_get (c, "resblock");
    const char *resblock = json_is_string (rb)? json_string_value (rb): "1";
    if (rb && (!json_is_string (rb) || (strcmp (resblock, "1") && strcmp (resblock, "AMP1")))) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s.resblock must be \"1\" or \"AMP1\"", where);
        return -1;
    }
    g->amp = strcmp (resblock, "AMP1") == 0;
    if (g->amp && s_check_str (c, "activation", "snakebeta", where, err))
        return -1;
    json_t *st = json_object_get (c, "stereo");
    if (st && !json_is_true (st)) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s.stereo must be true", where);
        return -1;
    }
    int nk = 0, nu = 0, nuk = 0;
    if (s_get_int (c, "upsample_initial_channel", 1024, 1, 1 << 16, &g->initial_channel, where, err)
     || s_get_ints (c, "resblock_kernel_sizes", def_rk, 3, LTX2_AUDIO_MAX_KERNELS, 1, 63, g->res_kernels, &nk, where, err)
     || s_get_ints (c, "upsample_rates", def_ur, 5, LTX2_AUDIO_MAX_UPS, 1, 64, g->up_rates, &nu, where, err)
     || s_get_ints (c, "upsample_kernel_sizes", def_uk, 5, LTX2_AUDIO_MAX_UPS, 1, 256, g->up_kernels, &nuk, where, err)
     || s_get_bool (c, "use_tanh_at_final", true, &g->final_tanh, where, err)
     || s_get_bool (c, "use_bias_at_final", true, &g->final_bias, where, err))
        return -1;
    if (nu != nuk) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s has %d upsample_rates but %d upsample_kernel_sizes",
                        where, nu, nuk);
        return -1;
    }
    g->num_ups = nu;
    g->num_kernels = nk;
    for (int i = 0; i < nu; i++)
        if (g->up_kernels [i] < g->up_rates [i]) {
            vdgx_set_error (err, "LTX-2 checkpoint: config %s upsample kernel %d is smaller than its rate %d",
                            where, g->up_kernels [i], g->up_rates [i]);
            return -1;
        }
    if (g->initial_channel % (1 << nu)) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s.upsample_initial_channel %d is not divisible by 2^%d",
                        where, g->initial_channel, nu);
        return -1;
    }
    for (int k = 0; k < nk; k++)
        for (int d = 0; d < 3; d++)
            g->res_dilations [k][d] = 2 * d + 1;
    json_t *dil = json_object_get (c, "resblock_dilation_sizes");
    if (dil && (!json_is_array (dil) || json_array_size (dil) != (size_t) nk)) {
        vdgx_set_error (err, "LTX-2 checkpoint: config %s.resblock_dilation_sizes must have %d lists", where, nk);
        return -1;
    }
    for (int k = 0; dil && k < nk; k++) {
        json_t *row = json_array_get (dil, (size_t) k);
        for (int d = 0; d < 3; d++) {
            json_t *e = json_array_get (row, (size_t) d);
            if (json_array_size (row) != 3 || !json_is_integer (e) || json_integer_value (e) < 1
             || json_integer_value (e) > 64) {
                vdgx_set_error (err, "LTX-2 checkpoint: config %s.resblock_dilation_sizes[%d] must be 3 "
                                "dilations in [1, 64]", where, k);
                return -1;
            }
            g->res_dilations [k][d] = (int) json_integer_value (e);
        }
    }
    g->final_act = !bwe_gen;            //  the configurator's choice, not a config key
    return 0;
}

static int64_t
s_prod_ups (const ltx2_vocoder_config_t *g)
{
    int64_t p = 1;
    for (int i = 0; i < g->num_ups; i++)
        p *= g->up_rates [i];
    return p;
}

int
ltx2_audio_config_parse (const char *config_json, ltx2_audio_config_t *cfg, char **err)
{
    memset (cfg, 0, sizeof (*cfg));
    json_error_t jerr;
    json_t *root = config_json? json_loads (config_json, 0, &jerr): json_object ();
    if (!json_is_object (root)) {
        vdgx_set_error (err, "LTX-2 checkpoint: __metadata__ config is not a JSON object (%s)",
                        root? "not an object": jerr.text);
        json_decref (root);
        return -1;
    }
    int rc = -1;
    json_t *av = json_object_get (root, "audio_vae");
    json_t *params = json_object_get (json_object_get (av, "model"), "params");
    json_t *dd = json_object_get (params, "ddconfig");
    json_t *pre = json_object_get (av, "preprocessing");
    json_t *stft = json_object_get (pre, "stft");
    json_t *mel = json_object_get (pre, "mel");
    static const int def_mult [3] = { 1, 2, 4 };
    int mel_bins = 0, mel_alt = 0;
    if (s_get_int (dd, "ch", 128, 1, 1 << 14, &cfg->ch, "audio_vae", err)
     || s_get_int (dd, "out_ch", 2, 2, 2, &cfg->out_ch, "audio_vae", err)
     || s_get_ints (dd, "ch_mult", def_mult, 3, LTX2_AUDIO_MAX_LEVELS, 1, 64, cfg->ch_mult, &cfg->levels,
                    "audio_vae", err)
     || s_get_int (dd, "num_res_blocks", 2, 0, S_MAX_RES_BLOCKS, &cfg->num_res_blocks, "audio_vae", err)
     || s_get_int (dd, "z_channels", 8, 1, 4096, &cfg->z_channels, "audio_vae", err)
     || s_get_int (dd, "mel_bins", 0, 0, 4096, &mel_bins, "audio_vae", err)
     || s_get_int (mel, "n_mel_channels", 0, 0, 4096, &mel_alt, "audio_vae.preprocessing.mel", err)
     || s_get_int (params, "sampling_rate", 16000, 1000, 384000, &cfg->vae_rate, "audio_vae", err)
     || s_get_int (stft, "hop_length", 160, 1, 65536, &cfg->hop, "audio_vae.preprocessing.stft", err)
     || s_check_str (dd, "norm_type", "pixel", "audio_vae", err)
     || s_check_str (dd, "causality_axis", "height", "audio_vae", err))
        goto done;
    cfg->mel_bins = mel_bins? mel_bins: mel_alt? mel_alt: 64;
    //  No attention: the mid block's must be off and no level may sit at an attention
    //  resolution (the real configs: resolution 256, ch_mult (1,2,4), attn 8/16/32 - never).
    bool mid_attn = true;
    int resolution = 256;
    if (s_get_bool (dd, "mid_block_add_attention", true, &mid_attn, "audio_vae", err)
     || s_get_int (dd, "resolution", 256, 1, 1 << 20, &resolution, "audio_vae", err))
        goto done;
    if (mid_attn) {
        vdgx_set_error (err, "LTX-2 checkpoint: audio_vae mid_block_add_attention is not supported");
        goto done;
    }
    json_t *attn = json_object_get (dd, "attn_resolutions");
    int res = resolution >> (cfg->levels - 1);
    for (int level = cfg->levels - 1; level >= 0; level--) {
        for (size_t i = 0; i < json_array_size (attn); i++)
            if (json_is_integer (json_array_get (attn, i)) && json_integer_value (json_array_get (attn, i)) == res) {
                vdgx_set_error (err, "LTX-2 checkpoint: audio_vae attention at resolution %d is not supported", res);
                goto done;
            }
        if (level)
            res *= 2;
    }
    int up = 1 << (cfg->levels - 1);
    if (cfg->mel_bins % up) {
        vdgx_set_error (err, "LTX-2 checkpoint: audio_vae mel_bins %d is not divisible by 2^%d",
                        cfg->mel_bins, cfg->levels - 1);
        goto done;
    }
    cfg->latent_mel_bins = cfg->mel_bins / up;
    cfg->stats_channels = cfg->z_channels * cfg->latent_mel_bins;
    if (cfg->vae_rate % cfg->hop) {
        vdgx_set_error (err, "LTX-2 checkpoint: audio_vae sampling_rate %d is not a multiple of hop_length %d",
                        cfg->vae_rate, cfg->hop);
        goto done;
    }
    const int64_t frames_per_s = cfg->vae_rate / cfg->hop;

    json_t *vc = json_object_get (root, "vocoder");
    json_t *bwe = json_object_get (vc, "bwe");
    cfg->bwe = bwe != NULL;
    if (!cfg->bwe) {
        //  LTX-2: one flat HiFi-GAN config; rate from output_sampling_rate (default 24000).
        if (s_check_str (vc, "resblock", "1", "vocoder", err)
         || s_parse_gen (vc, &cfg->vocoder, false, "vocoder", err)
         || s_get_int (vc, "output_sampling_rate", 24000, 1000, 384000, &cfg->vocoder_rate, "vocoder", err))
            goto done;
        cfg->output_rate = cfg->vocoder_rate;
    }
    else {
        json_t *vv = json_object_get (vc, "vocoder");
        int win = 0;
        if (!json_is_object (bwe) || !json_is_object (vv)) {
            vdgx_set_error (err, "LTX-2 checkpoint: config vocoder.bwe needs vocoder.vocoder too");
            goto done;
        }
        if (s_check_str (vv, "resblock", "AMP1", "vocoder.vocoder", err)
         || s_check_str (bwe, "resblock", "AMP1", "vocoder.bwe", err)
         || s_parse_gen (vv, &cfg->vocoder, false, "vocoder.vocoder", err)
         || s_parse_gen (bwe, &cfg->bwe_gen, true, "vocoder.bwe", err)
         || s_get_int (bwe, "input_sampling_rate", -1, 1000, 384000, &cfg->vocoder_rate, "vocoder.bwe", err)
         || s_get_int (bwe, "output_sampling_rate", -1, 1000, 384000, &cfg->output_rate, "vocoder.bwe", err)
         || s_get_int (bwe, "hop_length", -1, 1, 65536, &cfg->bwe_hop, "vocoder.bwe", err)
         || s_get_int (bwe, "n_fft", -1, 2, 65536, &cfg->bwe_n_fft, "vocoder.bwe", err)
         || s_get_int (bwe, "win_size", 0, 0, 65536, &win, "vocoder.bwe", err)
         || s_get_int (bwe, "num_mels", -1, 1, 4096, &cfg->bwe_mels, "vocoder.bwe", err))
            goto done;
        if (cfg->vocoder_rate < 0 || cfg->output_rate < 0 || cfg->bwe_hop < 0 || cfg->bwe_n_fft < 0
         || cfg->bwe_mels < 0) {
            vdgx_set_error (err, "LTX-2 checkpoint: config vocoder.bwe needs input_sampling_rate, "
                            "output_sampling_rate, hop_length, n_fft and num_mels");
            goto done;
        }
        if (cfg->output_rate % cfg->vocoder_rate || cfg->vocoder_rate % cfg->bwe_hop
         || (win && win != cfg->bwe_n_fft) || cfg->bwe_n_fft < cfg->bwe_hop) {
            vdgx_set_error (err, "LTX-2 checkpoint: config vocoder.bwe rates %d -> %d, hop %d, n_fft %d, "
                            "win_size %d do not fit together", cfg->vocoder_rate, cfg->output_rate,
                            cfg->bwe_hop, cfg->bwe_n_fft, win);
            goto done;
        }
        if ((int64_t) cfg->vocoder_rate / cfg->bwe_hop * s_prod_ups (&cfg->bwe_gen) != cfg->output_rate) {
            vdgx_set_error (err, "LTX-2 checkpoint: config vocoder.bwe upsamples %d mel frames/s by %lld, "
                            "not to %d Hz", cfg->vocoder_rate / cfg->bwe_hop,
                            (long long) s_prod_ups (&cfg->bwe_gen), cfg->output_rate);
            goto done;
        }
    }
    if (frames_per_s * s_prod_ups (&cfg->vocoder) != cfg->vocoder_rate) {
        vdgx_set_error (err, "LTX-2 checkpoint: config vocoder upsamples %lld mel frames/s by %lld, not to %d Hz",
                        (long long) frames_per_s, (long long) s_prod_ups (&cfg->vocoder), cfg->vocoder_rate);
        goto done;
    }
    rc = 0;
done:
    json_decref (root);
    return rc;
}

//  The released configurations' audio sections (real_checkpoint_layout.json of the reference
//  vectors: the LTX-2 19B file's config, and the LTX-2.3 22B values as reported).
static const char *s_released [2] = {
    "{\"audio_vae\": {\"model\": {\"params\": {\"sampling_rate\": 16000, \"ddconfig\": {\"ch\": 128,"
    " \"out_ch\": 2, \"ch_mult\": [1, 2, 4], \"num_res_blocks\": 2, \"attn_resolutions\": [8, 16, 32],"
    " \"resolution\": 256, \"z_channels\": 8, \"norm_type\": \"pixel\", \"causality_axis\": \"height\","
    " \"mid_block_add_attention\": false, \"mel_bins\": 64}}},"
    " \"preprocessing\": {\"stft\": {\"hop_length\": 160, \"causal\": true}}},"
    " \"vocoder\": {\"resblock_kernel_sizes\": [3, 7, 11], \"upsample_rates\": [6, 5, 2, 2, 2],"
    " \"upsample_kernel_sizes\": [16, 15, 8, 4, 4], \"resblock_dilation_sizes\": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],"
    " \"upsample_initial_channel\": 1024, \"stereo\": true, \"resblock\": \"1\"}}",
    "{\"audio_vae\": {\"model\": {\"params\": {\"sampling_rate\": 16000, \"ddconfig\": {\"ch\": 128,"
    " \"out_ch\": 2, \"ch_mult\": [1, 2, 4], \"num_res_blocks\": 2, \"attn_resolutions\": [],"
    " \"resolution\": 256, \"z_channels\": 8, \"norm_type\": \"pixel\", \"causality_axis\": \"height\","
    " \"mid_block_add_attention\": false, \"mel_bins\": 64}}},"
    " \"preprocessing\": {\"stft\": {\"hop_length\": 160, \"causal\": true}}},"
    " \"vocoder\": {\"vocoder\": {\"upsample_initial_channel\": 1536, \"resblock\": \"AMP1\","
    " \"upsample_rates\": [5, 2, 2, 2, 2, 2], \"resblock_kernel_sizes\": [3, 7, 11],"
    " \"upsample_kernel_sizes\": [11, 4, 4, 4, 4, 4], \"resblock_dilation_sizes\": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],"
    " \"stereo\": true, \"use_tanh_at_final\": false, \"activation\": \"snakebeta\", \"use_bias_at_final\": false},"
    " \"bwe\": {\"upsample_initial_channel\": 512, \"resblock\": \"AMP1\", \"upsample_rates\": [6, 5, 2, 2, 2],"
    " \"resblock_kernel_sizes\": [3, 7, 11], \"upsample_kernel_sizes\": [12, 11, 4, 4, 4],"
    " \"resblock_dilation_sizes\": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], \"stereo\": true,"
    " \"use_tanh_at_final\": false, \"activation\": \"snakebeta\", \"use_bias_at_final\": false,"
    " \"apply_final_activation\": false, \"input_sampling_rate\": 16000, \"output_sampling_rate\": 48000,"
    " \"hop_length\": 80, \"n_fft\": 512, \"win_size\": 512, \"num_mels\": 64}}}",
};

void
ltx2_audio_config_released (ltx2_audio_config_t *cfg, bool v23)
{
    int rc = ltx2_audio_config_parse (s_released [v23? 1: 0], cfg, NULL);
    assert (rc == 0);
    (void) rc;
}

//  ---------------------------------------------------------------------------------------
//  Loading

static int
s_load_conv2d (ltx2_audio_t *self, vdgx_wsrc_t *src, s_conv2d_t *c, const char *prefix, int cin,
               int cout, int k, char **err)
{
    char name [256];
    const int64_t ws [4] = { cout, cin, k, k }, bs [1] = { cout };
    c->k = k;
    snprintf (name, sizeof (name), "%s.conv.weight", prefix);
    if (vdgx_wsrc_tensor (src, self->backend, name, VDGX_DTYPE_F32, 4, ws, &c->w, err))
        return -1;
    snprintf (name, sizeof (name), "%s.conv.bias", prefix);
    if (vdgx_wsrc_tensor (src, self->backend, name, VDGX_DTYPE_F32, 1, bs, &c->b, err))
        return -1;
    self->weight_bytes += sizeof (float) * (size_t) (cout * cin * k * k + cout);
    return 0;
}

static void
s_conv2d_release (vdgx_backend_t *b, s_conv2d_t *c)
{
    vdgx_nn_free (b, &c->w);
    vdgx_nn_free (b, &c->b);
}

static int
s_load_resnet (ltx2_audio_t *self, vdgx_wsrc_t *src, s_resnet_t *r, const char *prefix, int cin,
               int cout, char **err)
{
    char name [256];
    r->cin = cin;
    r->cout = cout;
    snprintf (name, sizeof (name), "%s.conv1", prefix);
    if (s_load_conv2d (self, src, &r->conv1, name, cin, cout, 3, err))
        return -1;
    snprintf (name, sizeof (name), "%s.conv2", prefix);
    if (s_load_conv2d (self, src, &r->conv2, name, cout, cout, 3, err))
        return -1;
    snprintf (name, sizeof (name), "%s.nin_shortcut", prefix);
    if (cin != cout && s_load_conv2d (self, src, &r->nin, name, cin, cout, 1, err))
        return -1;
    return 0;
}

static void
s_resnet_release (vdgx_backend_t *b, s_resnet_t *r)
{
    s_conv2d_release (b, &r->conv1);
    s_conv2d_release (b, &r->conv2);
    s_conv2d_release (b, &r->nin);
}

static int
s_load_conv1d (ltx2_audio_t *self, vdgx_wsrc_t *src, vdgx_conv1d_t *c, const char *prefix,
               int64_t cin, int64_t cout, int64_t k, bool transposed, const vdgx_conv1d_params_t *p,
               bool bias, char **err)
{
    if (vdgx_conv1d_load (src, self->backend, c, prefix, cin, cout, k, transposed, p, bias,
                          VDGX_DTYPE_F32, err))
        return -1;
    self->weight_bytes += sizeof (float) * (size_t) (cin * cout * k + (bias? cout: 0));
    return 0;
}

static int
s_load_aa (ltx2_audio_t *self, vdgx_wsrc_t *src, vdgx_aa_act_t *a, const char *prefix, int64_t ch,
           char **err)
{
    if (vdgx_aa_act_load (src, self->backend, a, prefix, ch, S_AA_KERNEL, true, true, err))
        return -1;
    self->weight_bytes += sizeof (float) * (size_t) (2 * ch + 2 * ch * S_AA_KERNEL);
    return 0;
}

//  "Same" padding of a dilated conv (odd kernels: symmetric).
static vdgx_conv1d_params_t
s_same (int k, int d)
{
    int total = d * (k - 1);
    vdgx_conv1d_params_t p = { .dilation = d, .pad_left = total / 2, .pad_right = total - total / 2 };
    return p;
}

static int
s_load_gen (ltx2_audio_t *self, vdgx_wsrc_t *src, s_gen_t *g, const ltx2_vocoder_config_t *cfg,
            const char *prefix, int in_channels, char **err)
{
    char name [256];
    g->cfg = *cfg;
    const int C0 = cfg->initial_channel;
    const vdgx_conv1d_params_t k7 = { .pad_left = 3, .pad_right = 3 };
    snprintf (name, sizeof (name), "%s.conv_pre", prefix);
    if (s_load_conv1d (self, src, &g->pre, name, in_channels, C0, 7, false, &k7, true, err))
        return -1;
    for (int i = 0; i < cfg->num_ups; i++) {
        const int cin = C0 >> i, cout = C0 >> (i + 1), k = cfg->up_kernels [i], s = cfg->up_rates [i];
        const vdgx_conv1d_params_t up = { .stride = s, .pad_left = (k - s) / 2, .pad_right = (k - s) / 2 };
        snprintf (name, sizeof (name), "%s.ups.%d", prefix, i);
        if (s_load_conv1d (self, src, &g->ups [i], name, cin, cout, k, true, &up, true, err))
            return -1;
        for (int j = 0; j < cfg->num_kernels; j++) {
            s_resblock_t *r = &g->res [i * cfg->num_kernels + j];
            const int rk = cfg->res_kernels [j];
            for (int d = 0; d < 3; d++) {
                const vdgx_conv1d_params_t p1 = s_same (rk, cfg->res_dilations [j][d]), p2 = s_same (rk, 1);
                snprintf (name, sizeof (name), "%s.resblocks.%d.convs1.%d", prefix, i * cfg->num_kernels + j, d);
                if (s_load_conv1d (self, src, &r->c1 [d], name, cout, cout, rk, false, &p1, true, err))
                    return -1;
                snprintf (name, sizeof (name), "%s.resblocks.%d.convs2.%d", prefix, i * cfg->num_kernels + j, d);
                if (s_load_conv1d (self, src, &r->c2 [d], name, cout, cout, rk, false, &p2, true, err))
                    return -1;
                if (!cfg->amp)
                    continue;
                snprintf (name, sizeof (name), "%s.resblocks.%d.acts1.%d", prefix, i * cfg->num_kernels + j, d);
                if (s_load_aa (self, src, &r->a1 [d], name, cout, err))
                    return -1;
                snprintf (name, sizeof (name), "%s.resblocks.%d.acts2.%d", prefix, i * cfg->num_kernels + j, d);
                if (s_load_aa (self, src, &r->a2 [d], name, cout, err))
                    return -1;
            }
        }
    }
    const int cf = C0 >> cfg->num_ups;
    snprintf (name, sizeof (name), "%s.act_post", prefix);
    if (cfg->amp && s_load_aa (self, src, &g->act_post, name, cf, err))
        return -1;
    snprintf (name, sizeof (name), "%s.conv_post", prefix);
    return s_load_conv1d (self, src, &g->post, name, cf, 2, 7, false, &k7, cfg->final_bias, err);
}

static void
s_gen_release (vdgx_backend_t *b, s_gen_t *g)
{
    vdgx_conv1d_release (b, &g->pre);
    vdgx_conv1d_release (b, &g->post);
    for (int i = 0; i < LTX2_AUDIO_MAX_UPS; i++)
        vdgx_conv1d_release (b, &g->ups [i]);
    for (int i = 0; i < LTX2_AUDIO_MAX_UPS * LTX2_AUDIO_MAX_KERNELS; i++)
        for (int d = 0; d < 3; d++) {
            vdgx_conv1d_release (b, &g->res [i].c1 [d]);
            vdgx_conv1d_release (b, &g->res [i].c2 [d]);
            vdgx_aa_act_release (b, &g->res [i].a1 [d]);
            vdgx_aa_act_release (b, &g->res [i].a2 [d]);
        }
    vdgx_aa_act_release (b, &g->act_post);
}

static int
s_load (ltx2_audio_t *self, vdgx_wsrc_t *src, char **err)
{
    const ltx2_audio_config_t *c = &self->cfg;
    const int64_t ss [1] = { c->stats_channels };
    self->std = vdgx_wsrc_fetch (src, "audio_vae.per_channel_statistics.std-of-means", 1, ss, err);
    self->mean = self->std? vdgx_wsrc_fetch (src, "audio_vae.per_channel_statistics.mean-of-means", 1, ss, err): NULL;
    if (!self->mean)
        return -1;
    self->weight_bytes += 2 * sizeof (float) * (size_t) c->stats_channels;
    char name [256];
    int block_in = c->ch * c->ch_mult [c->levels - 1];
    if (s_load_conv2d (self, src, &self->conv_in, "audio_vae.decoder.conv_in", c->z_channels, block_in, 3, err)
     || s_load_resnet (self, src, &self->mid [0], "audio_vae.decoder.mid.block_1", block_in, block_in, err)
     || s_load_resnet (self, src, &self->mid [1], "audio_vae.decoder.mid.block_2", block_in, block_in, err))
        return -1;
    for (int level = c->levels - 1; level >= 0; level--) {
        s_level_t *l = &self->levels [level];
        const int block_out = c->ch * c->ch_mult [level];
        l->nblocks = c->num_res_blocks + 1;
        for (int i = 0; i < l->nblocks; i++) {
            snprintf (name, sizeof (name), "audio_vae.decoder.up.%d.block.%d", level, i);
            if (s_load_resnet (self, src, &l->blocks [i], name, block_in, block_out, err))
                return -1;
            block_in = block_out;
        }
        snprintf (name, sizeof (name), "audio_vae.decoder.up.%d.upsample.conv", level);
        if (level && s_load_conv2d (self, src, &l->up, name, block_in, block_in, 3, err))
            return -1;
    }
    if (s_load_conv2d (self, src, &self->conv_out, "audio_vae.decoder.conv_out", block_in, c->out_ch, 3, err))
        return -1;
    //  LTX-2: vocoder.*; LTX-2.3: vocoder.vocoder.*, vocoder.bwe_generator.*, vocoder.mel_stft.*
    const int in_ch = c->out_ch * c->mel_bins;
    if (!c->bwe)
        return s_load_gen (self, src, &self->voc, &c->vocoder, "vocoder", in_ch, err);
    if (s_load_gen (self, src, &self->voc, &c->vocoder, "vocoder.vocoder", in_ch, err)
     || s_load_gen (self, src, &self->bwe, &c->bwe_gen, "vocoder.bwe_generator", c->out_ch * c->bwe_mels, err))
        return -1;
    const int64_t nfreq = c->bwe_n_fft / 2 + 1;
    const int64_t fs [3] = { 2 * nfreq, 1, c->bwe_n_fft }, ms [2] = { c->bwe_mels, nfreq };
    if (vdgx_wsrc_tensor (src, self->backend, "vocoder.mel_stft.stft_fn.forward_basis", VDGX_DTYPE_F32, 3, fs,
                          &self->stft, err))
        return -1;
    self->mel_basis = vdgx_wsrc_fetch (src, "vocoder.mel_stft.mel_basis", 2, ms, err);
    if (!self->mel_basis)
        return -1;
    self->weight_bytes += sizeof (float) * (size_t) (2 * nfreq * c->bwe_n_fft + c->bwe_mels * nfreq);
    return vdgx_sinc_up_init (self->backend, &self->resampler, c->output_rate / c->vocoder_rate, c->out_ch, err);
}

static ltx2_audio_t *
s_new (const ltx2_audio_config_t *cfg, vdgx_wsrc_t *src, vdgx_backend_t *backend, char **err)
{
    ltx2_audio_t *self = (ltx2_audio_t *) calloc (1, sizeof (ltx2_audio_t));
    if (!self) {
        vdgx_set_error (err, "LTX-2 audio: out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    self->backend = backend;
    if (s_load (self, src, err))
        ltx2_audio_destroy (&self);
    return self;
}

ltx2_audio_t *
ltx2_audio_new (vdgx_ckpt_t *ckpt, vdgx_backend_t *backend, char **err)
{
    assert (ckpt && backend);
    ltx2_audio_config_t cfg;
    const char *text = vdgx_ckpt_metadata (ckpt, "config");
    if (!text) {
        vdgx_set_error (err, "LTX-2 checkpoint: no __metadata__ \"config\" (it holds the audio VAE "
                        "and vocoder settings)");
        return NULL;
    }
    if (ltx2_audio_config_parse (text, &cfg, err))
        return NULL;
    vdgx_wsrc_t *src = vdgx_wsrc_new (ckpt, NULL, "LTX-2 checkpoint");
    if (!src) {
        vdgx_set_error (err, "LTX-2 audio: out of memory");
        return NULL;
    }
    ltx2_audio_t *self = s_new (&cfg, src, backend, err);
    vdgx_wsrc_destroy (&src);
    return self;
}

ltx2_audio_t *
ltx2_audio_new_random (const ltx2_audio_config_t *cfg, uint64_t seed, vdgx_backend_t *backend, char **err)
{
    assert (cfg && backend);
    vdgx_wsrc_t *src = vdgx_wsrc_new_random (seed, "LTX-2 audio (random)");
    if (!src) {
        vdgx_set_error (err, "LTX-2 audio: out of memory");
        return NULL;
    }
    ltx2_audio_t *self = s_new (cfg, src, backend, err);
    vdgx_wsrc_destroy (&src);
    return self;
}

void
ltx2_audio_destroy (ltx2_audio_t **self_p)
{
    assert (self_p);
    ltx2_audio_t *self = *self_p;
    if (!self)
        return;
    vdgx_backend_t *b = self->backend;
    free (self->mean);
    free (self->std);
    s_conv2d_release (b, &self->conv_in);
    s_conv2d_release (b, &self->conv_out);
    s_resnet_release (b, &self->mid [0]);
    s_resnet_release (b, &self->mid [1]);
    for (int l = 0; l < LTX2_AUDIO_MAX_LEVELS; l++) {
        for (int i = 0; i < S_MAX_RES_BLOCKS + 1; i++)
            s_resnet_release (b, &self->levels [l].blocks [i]);
        s_conv2d_release (b, &self->levels [l].up);
    }
    s_gen_release (b, &self->voc);
    s_gen_release (b, &self->bwe);
    vdgx_nn_free (b, &self->stft);
    free (self->mel_basis);
    vdgx_sinc_up_release (b, &self->resampler);
    free (self);
    *self_p = NULL;
}

const ltx2_audio_config_t *
ltx2_audio_config (ltx2_audio_t *self)
{
    return &self->cfg;
}

int
ltx2_audio_sample_rate (ltx2_audio_t *self)
{
    return self->cfg.output_rate;
}

size_t
ltx2_audio_weight_bytes (ltx2_audio_t *self)
{
    return self->weight_bytes;
}

void
ltx2_audio_set_tap (ltx2_audio_t *self, ltx2_audio_tap_fn *fn, void *arg)
{
    self->tap = fn;
    self->tap_arg = arg;
}

//  ---------------------------------------------------------------------------------------
//  Sizes

static int64_t
s_mel_frames (int64_t latent_frames)
{
    int64_t t = latent_frames * S_LATENT_DOWN - (S_LATENT_DOWN - 1);
    return t < 1? 1: t;
}

int64_t
ltx2_audio_samples (const ltx2_audio_config_t *cfg, int64_t latent_frames)
{
    if (latent_frames < 1)
        return 0;
    int64_t n = s_mel_frames (latent_frames) * s_prod_ups (&cfg->vocoder);
    return cfg->bwe? n * (cfg->output_rate / cfg->vocoder_rate): n;
}

//  Parameters of one generator (F32 values, including the expanded filters).
static int64_t
s_gen_params (const ltx2_vocoder_config_t *g, int64_t in_ch)
{
    int64_t C0 = g->initial_channel, n = in_ch * C0 * 7 + C0;
    for (int i = 0; i < g->num_ups; i++) {
        int64_t cin = C0 >> i, cout = C0 >> (i + 1);
        n += cin * cout * g->up_kernels [i] + cout;
        for (int j = 0; j < g->num_kernels; j++)
            n += 6 * (cout * cout * g->res_kernels [j] + cout)
               + (g->amp? 6 * (2 * cout + 2 * cout * S_AA_KERNEL): 0);
    }
    int64_t cf = C0 >> g->num_ups;
    return n + cf * 2 * 7 + 2 + (g->amp? 2 * cf + 2 * cf * S_AA_KERNEL: 0);
}

//  The largest activation set of a generator over mel frames: about 6 tensors of the
//  widest level alive at once, twice that inside an anti-aliased activation.
static int64_t
s_gen_peak (const ltx2_vocoder_config_t *g, int64_t frames)
{
    int64_t peak = 0, len = frames;
    for (int i = 0; i < g->num_ups; i++) {
        len *= g->up_rates [i];
        int64_t v = (int64_t) (g->initial_channel >> (i + 1)) * len * (g->amp? 8: 6);
        peak = v > peak? v: peak;
    }
    return peak;
}

size_t
ltx2_audio_memory_estimate (const ltx2_audio_config_t *cfg, int64_t latent_frames)
{
    const ltx2_audio_config_t *c = cfg;
    int64_t T = latent_frames < 1? 1: latent_frames, params = 2 * (int64_t) c->stats_channels;
    int64_t block_in = (int64_t) c->ch * c->ch_mult [c->levels - 1], peak = 0;
    params += block_in * c->z_channels * 9 + block_in + 2 * 2 * (block_in * block_in * 9 + block_in);
    int64_t t = T, f = c->latent_mel_bins;
    for (int level = c->levels - 1; level >= 0; level--) {
        int64_t out = (int64_t) c->ch * c->ch_mult [level];
        for (int i = 0; i <= c->num_res_blocks; i++) {
            params += block_in * out * 9 + out + out * out * 9 + out + (block_in != out? block_in * out + out: 0);
            block_in = out;
        }
        int64_t v = 5 * out * t * f;
        peak = v > peak? v: peak;
        if (level) {
            params += out * out * 9 + out;
            t = 2 * t;
            f *= 2;
            v = 3 * out * t * f;
            peak = v > peak? v: peak;
            t--;
        }
    }
    params += block_in * c->out_ch * 9 + c->out_ch;
    int64_t mel = s_mel_frames (T);
    params += s_gen_params (&c->vocoder, (int64_t) c->out_ch * c->mel_bins);
    int64_t v = s_gen_peak (&c->vocoder, mel);
    peak = v > peak? v: peak;
    if (c->bwe) {
        int64_t nfreq = c->bwe_n_fft / 2 + 1, len = mel * s_prod_ups (&c->vocoder);
        int64_t frames = (len + c->bwe_hop - 1) / c->bwe_hop;
        params += s_gen_params (&c->bwe_gen, (int64_t) c->out_ch * c->bwe_mels)
                + 2 * nfreq * c->bwe_n_fft + c->bwe_mels * nfreq;
        v = s_gen_peak (&c->bwe_gen, frames) + 2 * c->out_ch * frames * (2 * nfreq + c->bwe_mels)
          + 4 * c->out_ch * len * (c->output_rate / c->vocoder_rate);
        peak = v > peak? v: peak;
    }
    return sizeof (float) * (size_t) (params + peak);
}

//  ---------------------------------------------------------------------------------------
//  Audio VAE decoder

static void
s_tap (ltx2_audio_t *self, const char *name, const vdgx_tensor_t *t)
{
    if (self->tap)
        self->tap (self->tap_arg, name, t);
}

//  y = causal conv2d (x) [1, Cout, H, W] (allocated here).
static int
s_conv2d (vdgx_backend_t *b, const s_conv2d_t *c, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    const int stride [2] = { 1, 1 };
    const int pad [4] = { c->k - 1, 0, (c->k - 1) / 2, c->k - 1 - (c->k - 1) / 2 };
    const int64_t shape [4] = { x->shape [0], c->w.shape [0], x->shape [2], x->shape [3] };
    if (vdgx_tensor_alloc (b, y, VDGX_DTYPE_F32, 4, shape)
     || vdgx_op_conv2d (b, y, x, &c->w, &c->b, stride, pad)) {
        vdgx_nn_free (b, y);
        return -1;
    }
    return 0;
}

//  y = SiLU (PixelNorm (x)) over the channels of x [1, C, H, W] (allocated here).
static int
s_norm_silu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    const int64_t C = x->shape [1], H = x->shape [2], W = x->shape [3];
    const int to_last [4] = { 0, 2, 3, 1 }, to_first [4] = { 0, 3, 1, 2 };
    const int64_t sl [4] = { 1, H, W, C };
    vdgx_tensor_t t = { 0 };
    if (vdgx_tensor_alloc (b, &t, VDGX_DTYPE_F32, 4, sl) || vdgx_op_permute (b, &t, x, to_last))
        goto fail;
    vdgx_tensor_t rows = vdgx_nn_view2 (&t, H * W, C);
    if (vdgx_op_rmsnorm (b, &rows, &rows, NULL, S_PIXEL_EPS) || vdgx_op_silu (b, &rows, &rows)
     || vdgx_tensor_alloc (b, y, VDGX_DTYPE_F32, 4, x->shape) || vdgx_op_permute (b, y, &t, to_first))
        goto fail;
    vdgx_nn_free (b, &t);
    return 0;
fail:
    vdgx_nn_free (b, &t);
    vdgx_nn_free (b, y);
    return -1;
}

//  x = resnet (x) (x replaced).
static int
s_resnet (vdgx_backend_t *b, const s_resnet_t *r, vdgx_tensor_t *x)
{
    vdgx_tensor_t h = { 0 }, h2 = { 0 }, sc = { 0 };
    if (s_norm_silu (b, &h, x) || s_conv2d (b, &r->conv1, &h2, &h))
        goto fail;
    vdgx_nn_free (b, &h);
    if (s_norm_silu (b, &h, &h2))
        goto fail;
    vdgx_nn_free (b, &h2);
    if (s_conv2d (b, &r->conv2, &h2, &h))
        goto fail;
    vdgx_nn_free (b, &h);
    const vdgx_tensor_t *skip = x;
    if (r->cin != r->cout) {
        if (s_conv2d (b, &r->nin, &sc, x))
            goto fail;
        skip = &sc;
    }
    if (vdgx_op_add_scaled (b, &h2, skip, &h2, 1.0f))
        goto fail;
    vdgx_nn_free (b, &sc);
    vdgx_nn_free (b, x);
    *x = h2;
    return 0;
fail:
    vdgx_nn_free (b, &h);
    vdgx_nn_free (b, &h2);
    vdgx_nn_free (b, &sc);
    return -1;
}

//  The decoder: x [1, z, T, F] (consumed) -> mel [1, out_ch, 4T-3, mel_bins].
static int
s_decode_mel (ltx2_audio_t *self, vdgx_tensor_t *x, vdgx_tensor_t *mel, char **err)
{
    vdgx_backend_t *b = self->backend;
    const ltx2_audio_config_t *c = &self->cfg;
    vdgx_tensor_t h = { 0 }, t = { 0 };
    char name [64];
    const int64_t T = x->shape [2];
    if (s_conv2d (b, &self->conv_in, &h, x))
        goto fail;
    vdgx_nn_free (b, x);
    s_tap (self, "dec.conv_in", &h);
    if (s_resnet (b, &self->mid [0], &h) || s_resnet (b, &self->mid [1], &h))
        goto fail;
    s_tap (self, "dec.mid", &h);
    for (int level = c->levels - 1; level >= 0; level--) {
        const s_level_t *l = &self->levels [level];
        for (int i = 0; i < l->nblocks; i++)
            if (s_resnet (b, &l->blocks [i], &h))
                goto fail;
        snprintf (name, sizeof (name), "dec.up.%d.blocks", level);
        s_tap (self, name, &h);
        if (!level)
            continue;
        //  nearest x2, causal conv, drop the first time row: T -> 2T - 1
        const int64_t s2 [4] = { 1, h.shape [1], 2 * h.shape [2], 2 * h.shape [3] };
        if (vdgx_tensor_alloc (b, &t, VDGX_DTYPE_F32, 4, s2) || vdgx_op_upsample2x (b, &t, &h))
            goto fail;
        vdgx_nn_free (b, &h);
        vdgx_tensor_t u = { 0 };
        if (s_conv2d (b, &l->up, &u, &t))
            goto fail;
        vdgx_nn_free (b, &t);
        const int64_t s3 [4] = { 1, u.shape [1], u.shape [2] - 1, u.shape [3] };
        if (vdgx_tensor_alloc (b, &h, VDGX_DTYPE_F32, 4, s3) || vdgx_op_slice (b, &h, &u, 2, 1, s3 [2])) {
            vdgx_nn_free (b, &u);
            goto fail;
        }
        vdgx_nn_free (b, &u);
        snprintf (name, sizeof (name), "dec.up.%d.upsample", level);
        s_tap (self, name, &h);
    }
    if (s_norm_silu (b, &t, &h))
        goto fail;
    vdgx_nn_free (b, &h);
    if (s_conv2d (b, &self->conv_out, &h, &t))
        goto fail;
    vdgx_nn_free (b, &t);
    s_tap (self, "dec.conv_out", &h);
    //  Crop / zero-pad to (4T - 3, mel_bins) as _adjust_output_shape does (a no-op for the
    //  official configurations).
    const int64_t tt = s_mel_frames (T), tf = c->mel_bins, ht = h.shape [2], hf = h.shape [3];
    if (ht != tt || hf != tf) {
        float *src = (float *) malloc (sizeof (float) * (size_t) vdgx_tensor_numel (&h));
        float *dst = (float *) calloc ((size_t) (c->out_ch * tt * tf), sizeof (float));
        const int64_t ms [4] = { 1, c->out_ch, tt, tf };
        int bad = !src || !dst || vdgx_tensor_to_f32 (b, &h, src);
        for (int64_t ch = 0; !bad && ch < c->out_ch; ch++)
            for (int64_t i = 0; i < tt && i < ht; i++)
                for (int64_t j = 0; j < tf && j < hf; j++)
                    dst [(ch * tt + i) * tf + j] = src [(ch * ht + i) * hf + j];
        bad = bad || vdgx_nn_upload (b, mel, VDGX_DTYPE_F32, 4, ms, dst);
        free (src);
        free (dst);
        vdgx_nn_free (b, &h);
        if (bad)
            goto fail;
    }
    else
        *mel = h;
    s_tap (self, "mel", mel);
    return 0;
fail:
    vdgx_nn_free (b, &h);
    vdgx_nn_free (b, &t);
    return vdgx_nn_fail (b, err, "LTX-2 audio", "decoder");
}

//  ---------------------------------------------------------------------------------------
//  Vocoder

//  x = act (x) in place for leaky ReLU; replaced for the anti-aliased one.
static int
s_act (vdgx_backend_t *b, const vdgx_aa_act_t *aa, float slope, vdgx_tensor_t *x, char **err)
{
    if (!aa)
        return vdgx_leaky_relu (b, x, x, slope)? vdgx_nn_fail (b, err, "LTX-2 vocoder", "leaky relu"): 0;
    vdgx_tensor_t y;
    if (vdgx_aa_act_forward (b, aa, &y, x, err))
        return -1;
    vdgx_nn_free (b, x);
    *x = y;
    return 0;
}

//  y = resblock (x) (allocated here; x kept).
static int
s_resblock (vdgx_backend_t *b, const s_gen_t *g, const s_resblock_t *r, vdgx_tensor_t *y,
            const vdgx_tensor_t *x, char **err)
{
    vdgx_tensor_t cur = { 0 }, t = { 0 }, u = { 0 };
    for (int d = 0; d < 3; d++) {
        const vdgx_tensor_t *in = d? &cur: x;
        if (g->cfg.amp) {
            if (vdgx_aa_act_forward (b, &r->a1 [d], &t, in, err))
                goto fail;
        }
        else
        if (vdgx_tensor_alloc (b, &t, VDGX_DTYPE_F32, in->ndim, in->shape)
         || vdgx_leaky_relu (b, &t, in, S_LRELU))
            goto fail_b;
        if (vdgx_conv1d_forward (b, &r->c1 [d], &u, &t, err))
            goto fail;
        vdgx_nn_free (b, &t);
        if (s_act (b, g->cfg.amp? &r->a2 [d]: NULL, S_LRELU, &u, err)
         || vdgx_conv1d_forward (b, &r->c2 [d], &t, &u, err))
            goto fail;
        vdgx_nn_free (b, &u);
        if (d == 0) {
            //  x + xt into a new tensor (x is the caller's, shared by all resblocks)
            if (vdgx_tensor_alloc (b, &cur, VDGX_DTYPE_F32, x->ndim, x->shape))
                goto fail_b;
        }
        if (vdgx_op_add_scaled (b, &cur, in, &t, 1.0f))
            goto fail_b;
        vdgx_nn_free (b, &t);
    }
    *y = cur;
    return 0;
fail_b:
    vdgx_nn_fail (b, err, "LTX-2 vocoder", "resblock");
fail:
    vdgx_nn_free (b, &cur);
    vdgx_nn_free (b, &t);
    vdgx_nn_free (b, &u);
    return -1;
}

//  A generator: x [1, Cin, frames] (consumed) -> y [1, 2, frames * prod (rates)]. Taps
//  under prefix ("voc") when not NULL.
static int
s_generate (ltx2_audio_t *self, const s_gen_t *g, vdgx_tensor_t *x, vdgx_tensor_t *y, const char *prefix,
            char **err)
{
    vdgx_backend_t *b = self->backend;
    const ltx2_vocoder_config_t *c = &g->cfg;
    vdgx_tensor_t h = { 0 }, sum = { 0 }, r = { 0 };
    char name [64];
    if (vdgx_conv1d_forward (b, &g->pre, &h, x, err))
        return -1;
    vdgx_nn_free (b, x);
    if (prefix) {
        snprintf (name, sizeof (name), "%s.conv_pre", prefix);
        s_tap (self, name, &h);
    }
    for (int i = 0; i < c->num_ups; i++) {
        if (!c->amp && vdgx_leaky_relu (b, &h, &h, S_LRELU)) {
            vdgx_nn_fail (b, err, "LTX-2 vocoder", "leaky relu");
            goto fail;
        }
        if (vdgx_conv1d_forward (b, &g->ups [i], &r, &h, err))
            goto fail;
        vdgx_nn_free (b, &h);
        h = r;
        memset (&r, 0, sizeof (r));
        if (prefix) {
            snprintf (name, sizeof (name), "%s.ups.%d", prefix, i);
            s_tap (self, name, &h);
        }
        //  the mean of the resblocks, all fed the same input
        for (int j = 0; j < c->num_kernels; j++) {
            if (s_resblock (b, g, &g->res [i * c->num_kernels + j], &r, &h, err))
                goto fail;
            if (prefix && i == 0) {
                snprintf (name, sizeof (name), "%s.resblocks.%d", prefix, j);
                s_tap (self, name, &r);
            }
            if (j == 0) {
                sum = r;
                memset (&r, 0, sizeof (r));
                continue;
            }
            if (vdgx_op_add_scaled (b, &sum, &sum, &r, 1.0f)) {
                vdgx_nn_fail (b, err, "LTX-2 vocoder", "resblock sum");
                goto fail;
            }
            vdgx_nn_free (b, &r);
        }
        if (vdgx_op_affine_clamp (b, &sum, &sum, 1.0f / (float) c->num_kernels, 0.0f, -INFINITY, INFINITY)) {
            vdgx_nn_fail (b, err, "LTX-2 vocoder", "resblock mean");
            goto fail;
        }
        vdgx_nn_free (b, &h);
        h = sum;
        memset (&sum, 0, sizeof (sum));
    }
    if (s_act (b, c->amp? &g->act_post: NULL, S_LRELU_POST, &h, err))
        goto fail;
    if (prefix) {
        snprintf (name, sizeof (name), "%s.conv_post_input", prefix);
        s_tap (self, name, &h);
    }
    if (vdgx_conv1d_forward (b, &g->post, y, &h, err))
        goto fail;
    vdgx_nn_free (b, &h);
    if (prefix) {
        snprintf (name, sizeof (name), "%s.conv_post", prefix);
        s_tap (self, name, y);
    }
    if (c->final_act
     && (c->final_tanh? vdgx_op_unary (b, y, y, VDGX_UNARY_TANH, 0.0f)
                      : vdgx_op_affine_clamp (b, y, y, 1.0f, 0.0f, -1.0f, 1.0f))) {
        vdgx_nn_free (b, y);
        return vdgx_nn_fail (b, err, "LTX-2 vocoder", "final activation");
    }
    return 0;
fail:
    vdgx_nn_free (b, &h);
    vdgx_nn_free (b, &sum);
    vdgx_nn_free (b, &r);
    return -1;
}

//  The BWE's input: the causal STFT log-mel of x [1, C, L] (L a multiple of the hop) as
//  [1, C * mels, frames] (feature c * mels + m), on the backend.
static int
s_bwe_mel (ltx2_audio_t *self, const vdgx_tensor_t *x, vdgx_tensor_t *mel, char **err)
{
    vdgx_backend_t *b = self->backend;
    const ltx2_audio_config_t *c = &self->cfg;
    const int64_t C = x->shape [1], L = x->shape [2], nfreq = c->bwe_n_fft / 2 + 1, M = c->bwe_mels;
    vdgx_tensor_t flat = vdgx_nn_view3 (x, C, 1, L), padded = { 0 }, spec = { 0 };
    const int64_t sp [3] = { C, 1, L + c->bwe_n_fft - c->bwe_hop };
    const vdgx_conv1d_params_t p = { .stride = c->bwe_hop };
    const int64_t frames = vdgx_conv1d_out_len (sp [2], c->bwe_n_fft, &p);
    const int64_t ss [3] = { C, 2 * nfreq, frames };
    if (vdgx_tensor_alloc (b, &padded, VDGX_DTYPE_F32, 3, sp)
     || vdgx_op_pad1d (b, &padded, &flat, c->bwe_n_fft - c->bwe_hop, 0, VDGX_PAD_ZERO)
     || vdgx_tensor_alloc (b, &spec, VDGX_DTYPE_F32, 3, ss)
     || vdgx_op_conv1d (b, &spec, &padded, &self->stft, NULL, &p)) {
        vdgx_nn_free (b, &padded);
        vdgx_nn_free (b, &spec);
        return vdgx_nn_fail (b, err, "LTX-2 BWE", "STFT");
    }
    vdgx_nn_free (b, &padded);
    float *s = (float *) malloc (sizeof (float) * (size_t) (C * 2 * nfreq * frames));
    float *mag = (float *) malloc (sizeof (float) * (size_t) (nfreq * frames));
    float *out = (float *) malloc (sizeof (float) * (size_t) (C * M * frames));
    int rc = -1;
    if (!s || !mag || !out || vdgx_tensor_to_f32 (b, &spec, s)) {
        vdgx_set_error (err, "LTX-2 BWE: cannot read the STFT");
        goto done;
    }
    for (int64_t ch = 0; ch < C; ch++) {
        const float *re = s + ch * 2 * nfreq * frames, *im = re + nfreq * frames;
        for (int64_t i = 0; i < nfreq * frames; i++)
            mag [i] = sqrtf (re [i] * re [i] + im [i] * im [i]);
        for (int64_t m = 0; m < M; m++) {
            float *o = out + (ch * M + m) * frames;
            for (int64_t f = 0; f < frames; f++)
                o [f] = 0.0f;
            for (int64_t k = 0; k < nfreq; k++) {
                const float w = self->mel_basis [m * nfreq + k], *row = mag + k * frames;
                for (int64_t f = 0; f < frames; f++)
                    o [f] += w * row [f];
            }
            for (int64_t f = 0; f < frames; f++)
                o [f] = logf (o [f] < 1e-5f? 1e-5f: o [f]);
        }
    }
    const int64_t ms [3] = { 1, C * M, frames };
    if (vdgx_nn_upload (b, mel, VDGX_DTYPE_F32, 3, ms, out)) {
        vdgx_nn_fail (b, err, "LTX-2 BWE", "mel upload");
        goto done;
    }
    if (self->tap) {
        //  as the official code hands it over: [1, C, frames, mels]
        vdgx_tensor_t tm = { 0 };
        const int64_t ts [4] = { 1, C, frames, M };
        float *tbuf = (float *) malloc (sizeof (float) * (size_t) (C * M * frames));
        if (tbuf) {
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t f = 0; f < frames; f++)
                    for (int64_t m = 0; m < M; m++)
                        tbuf [(ch * frames + f) * M + m] = out [(ch * M + m) * frames + f];
            if (vdgx_nn_upload (b, &tm, VDGX_DTYPE_F32, 4, ts, tbuf) == 0)
                s_tap (self, "bwe.mel_in", &tm);
            vdgx_nn_free (b, &tm);
            free (tbuf);
        }
    }
    rc = 0;
done:
    vdgx_nn_free (b, &spec);
    free (s);
    free (mag);
    free (out);
    return rc;
}

//  The bandwidth extension: x [1, C, L] at the vocoder rate (consumed) -> y [1, C, L * r].
static int
s_bwe (ltx2_audio_t *self, vdgx_tensor_t *x, vdgx_tensor_t *y, char **err)
{
    vdgx_backend_t *b = self->backend;
    const ltx2_audio_config_t *c = &self->cfg;
    const int64_t L = x->shape [2], r = c->output_rate / c->vocoder_rate, rem = L % c->bwe_hop;
    vdgx_tensor_t xp = { 0 }, mel = { 0 }, res = { 0 }, skip = { 0 };
    if (rem) {
        const int64_t sp [3] = { 1, x->shape [1], L + c->bwe_hop - rem };
        if (vdgx_tensor_alloc (b, &xp, VDGX_DTYPE_F32, 3, sp)
         || vdgx_op_pad1d (b, &xp, x, 0, (int) (c->bwe_hop - rem), VDGX_PAD_ZERO)) {
            vdgx_nn_fail (b, err, "LTX-2 BWE", "padding");
            goto fail;
        }
        vdgx_nn_free (b, x);
    }
    else {
        xp = *x;
        memset (x, 0, sizeof (*x));
    }
    if (s_bwe_mel (self, &xp, &mel, err) || s_generate (self, &self->bwe, &mel, &res, NULL, err))
        goto fail;
    s_tap (self, "bwe.residual", &res);
    if (vdgx_sinc_up_forward (b, &self->resampler, &skip, &xp, err))
        goto fail;
    s_tap (self, "bwe.skip", &skip);
    vdgx_nn_free (b, &xp);
    if (res.shape [2] != skip.shape [2]) {
        vdgx_set_error (err, "LTX-2 BWE: residual of %lld samples but skip of %lld",
                        (long long) res.shape [2], (long long) skip.shape [2]);
        goto fail;
    }
    const int64_t so [3] = { 1, res.shape [1], L * r };
    if (vdgx_op_add_scaled (b, &res, &res, &skip, 1.0f)
     || vdgx_op_affine_clamp (b, &res, &res, 1.0f, 0.0f, -1.0f, 1.0f)
     || vdgx_tensor_alloc (b, y, VDGX_DTYPE_F32, 3, so)
     || vdgx_op_slice (b, y, &res, 2, 0, L * r)) {
        vdgx_nn_free (b, y);
        vdgx_nn_fail (b, err, "LTX-2 BWE", "output");
        goto fail;
    }
    vdgx_nn_free (b, &res);
    vdgx_nn_free (b, &skip);
    return 0;
fail:
    vdgx_nn_free (b, &xp);
    vdgx_nn_free (b, &mel);
    vdgx_nn_free (b, &res);
    vdgx_nn_free (b, &skip);
    return -1;
}

//  ---------------------------------------------------------------------------------------
//  Decoding

//  The vocoder (and BWE): mel [1, S, T, mels] (consumed) -> interleaved PCM.
static int
s_vocode (ltx2_audio_t *self, vdgx_tensor_t *mel, float **pcm, int64_t *samples, char **err)
{
    vdgx_backend_t *b = self->backend;
    const ltx2_audio_config_t *c = &self->cfg;
    vdgx_tensor_t wave = { 0 }, voc_in = { 0 };
    int rc = -1;
    //  (1, S, T, mels) -> (1, S, mels, T) -> (1, S * mels, T)
    const int64_t S = mel->shape [1], MT = mel->shape [2], MB = mel->shape [3];
    const int perm [4] = { 0, 1, 3, 2 };
    const int64_t ps [4] = { 1, S, MB, MT };
    if (vdgx_tensor_alloc (b, &voc_in, VDGX_DTYPE_F32, 4, ps) || vdgx_op_permute (b, &voc_in, mel, perm)) {
        vdgx_nn_fail (b, err, "LTX-2 audio", "mel transpose");
        goto done;
    }
    vdgx_nn_free (b, mel);
    vdgx_tensor_t flat = vdgx_nn_view3 (&voc_in, 1, S * MB, MT);
    flat.owner = voc_in.owner;          //  the same memory, still to be released
    voc_in = flat;
    if (s_generate (self, &self->voc, &voc_in, &wave, "voc", err))
        goto done;
    s_tap (self, "voc.out", &wave);
    if (c->bwe) {
        vdgx_tensor_t up = { 0 };
        if (s_bwe (self, &wave, &up, err))
            goto done;
        wave = up;
    }
    const int64_t L = wave.shape [2];
    float *planar = (float *) malloc (sizeof (float) * (size_t) (2 * L));
    float *out = (float *) malloc (sizeof (float) * (size_t) (2 * L));
    if (!planar || !out || wave.shape [1] != 2 || vdgx_tensor_to_f32 (b, &wave, planar)) {
        free (planar);
        free (out);
        vdgx_set_error (err, "LTX-2 audio: cannot read the waveform");
        goto done;
    }
    for (int64_t i = 0; i < L; i++) {
        out [2 * i] = planar [i];
        out [2 * i + 1] = planar [L + i];
    }
    free (planar);
    *pcm = out;
    *samples = L;
    rc = 0;
done:
    vdgx_nn_free (b, &voc_in);
    vdgx_nn_free (b, &wave);
    return rc;
}

int
ltx2_audio_decode (ltx2_audio_t *self, const vdgx_tensor_t *latent, float **pcm, int64_t *samples,
                   char **err)
{
    assert (self && latent && pcm && samples);
    *pcm = NULL;
    *samples = 0;
    vdgx_backend_t *b = self->backend;
    const ltx2_audio_config_t *c = &self->cfg;
    const int64_t Z = c->z_channels, F = c->latent_mel_bins;
    bool tokens = latent->ndim == 2 || (latent->ndim == 3 && latent->shape [0] == 1);
    int64_t T = tokens? latent->shape [latent->ndim - 2]: latent->ndim == 4? latent->shape [2]: 0;
    bool ok = T >= 1 && (tokens? latent->shape [latent->ndim - 1] == Z * F
                               : latent->shape [0] == 1 && latent->shape [1] == Z && latent->shape [3] == F);
    if (!ok) {
        vdgx_set_error (err, "LTX-2 audio: the latent must be [1, %lld, T, %lld] or tokens [T, %lld]",
                        (long long) Z, (long long) F, (long long) (Z * F));
        return -1;
    }
    //  Un-normalise in the patchified layout (feature c * F + f), then back to [1, z, T, F].
    const size_t n = (size_t) (Z * T * F);
    float *in = (float *) malloc (sizeof (float) * n), *x = (float *) malloc (sizeof (float) * n);
    vdgx_tensor_t lat = { 0 }, mel = { 0 };
    int rc = -1;
    if (!in || !x || vdgx_tensor_to_f32 (b, latent, in)) {
        vdgx_set_error (err, "LTX-2 audio: cannot read the latent");
        goto done;
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t z = 0; z < Z; z++)
            for (int64_t f = 0; f < F; f++) {
                int64_t feat = z * F + f;
                float v = tokens? in [t * Z * F + feat]: in [(z * T + t) * F + f];
                x [(z * T + t) * F + f] = v * self->std [feat] + self->mean [feat];
            }
    const int64_t ls [4] = { 1, Z, T, F };
    if (vdgx_nn_upload (b, &lat, VDGX_DTYPE_F32, 4, ls, x)) {
        vdgx_nn_fail (b, err, "LTX-2 audio", "latent upload");
        goto done;
    }
    s_tap (self, "dec.conv_in_input", &lat);
    if (s_decode_mel (self, &lat, &mel, err))
        goto done;
    rc = s_vocode (self, &mel, pcm, samples, err);
done:
    free (in);
    free (x);
    vdgx_nn_free (b, &lat);
    vdgx_nn_free (b, &mel);
    return rc;
}

int
ltx2_audio_vocode (ltx2_audio_t *self, const vdgx_tensor_t *mel, float **pcm, int64_t *samples, char **err)
{
    assert (self && mel && pcm && samples);
    *pcm = NULL;
    *samples = 0;
    const ltx2_audio_config_t *c = &self->cfg;
    if (mel->ndim != 4 || mel->shape [0] != 1 || mel->shape [1] != c->out_ch || mel->shape [2] < 1
     || mel->shape [3] != c->mel_bins) {
        vdgx_set_error (err, "LTX-2 audio: the mel must be [1, %d, frames, %d]", c->out_ch, c->mel_bins);
        return -1;
    }
    vdgx_tensor_t m = { 0 };
    if (vdgx_tensor_alloc (self->backend, &m, VDGX_DTYPE_F32, 4, mel->shape)
     || vdgx_op_cast (self->backend, &m, mel)) {
        vdgx_nn_free (self->backend, &m);
        return vdgx_nn_fail (self->backend, err, "LTX-2 audio", "mel copy");
    }
    int rc = s_vocode (self, &m, pcm, samples, err);
    vdgx_nn_free (self->backend, &m);
    return rc;
}
