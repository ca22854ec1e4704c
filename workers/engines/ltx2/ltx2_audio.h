/*  ltx2_audio.h - the LTX-2 / LTX-2.3 audio decoder (class ltx2_audio): an audio latent (what
    the DiT's audio stream denoises) through the audio VAE decoder to a stereo log-mel
    spectrogram, and through the vocoder to float PCM at the output rate.

    Everything is read from the checkpoint: the __metadata__ "config" sections audio_vae and
    vocoder (as the official configurators read them, with their defaults) and the tensors
    audio_vae.* and vocoder.*, shape-checked against that config.
    - Audio VAE decoder (both versions): latent [z=8, T, 16] -> per-channel statistics
      (patchified, feature c*16 + f) -> causal-in-time 3x3 Conv2d ResNet decoder with
      PixelNorm (eps 1e-6), no attention, nearest x2 upsampling that drops the first time row
      -> mel [2, 4T-3, 64].
    - LTX-2 (19B): HiFi-GAN vocoder (ResBlock1, leaky ReLU 0.1, mean of the resblocks, final
      leaky ReLU 0.01, conv_post, tanh), 100 mel frames/s -> 24 kHz.
    - LTX-2.3 (22B; config.vocoder has "vocoder" and "bwe"): BigVGAN-v2 vocoder (AMP1 blocks,
      SnakeBeta inside anti-aliased up/down x2 activations whose kaiser-sinc filters are
      checkpoint buffers, clamp) -> 16 kHz; then bandwidth extension: causal STFT log-mel of
      that signal (vocoder.mel_stft.* bases from the checkpoint), a second BigVGAN-v2
      generator for the residual plus a Hann-sinc x3 resampling of the 16 kHz signal,
      clamp to [-1, 1] -> 48 kHz.
    Weights and activations are F32 on any backend (the official vocoder runs in float32).

    One latent at a time (batch 1). Output is interleaved stereo float PCM in [-1, 1], what
    vdgx_video_push_audio takes.
*/
#ifndef LTX2_AUDIO_H_INCLUDED
#define LTX2_AUDIO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LTX2_AUDIO_MAX_LEVELS 8
#define LTX2_AUDIO_MAX_UPS 8
#define LTX2_AUDIO_MAX_KERNELS 4

//  One HiFi-GAN / BigVGAN generator (the vocoder, or the BWE generator).
typedef struct {
    bool amp;                   //  AMP1 blocks with SnakeBeta (BigVGAN v2), else ResBlock1
    int initial_channel;        //  upsample_initial_channel
    int num_ups, num_kernels;
    int up_rates [LTX2_AUDIO_MAX_UPS], up_kernels [LTX2_AUDIO_MAX_UPS];
    int res_kernels [LTX2_AUDIO_MAX_KERNELS], res_dilations [LTX2_AUDIO_MAX_KERNELS][3];
    bool final_act;             //  apply_final_activation
    bool final_tanh;            //  use_tanh_at_final (else clamp to [-1, 1])
    bool final_bias;            //  use_bias_at_final
} ltx2_vocoder_config_t;

typedef struct {
    //  audio VAE decoder (config.audio_vae.model.params.ddconfig)
    int ch, out_ch, z_channels, num_res_blocks, levels;
    int ch_mult [LTX2_AUDIO_MAX_LEVELS];
    int mel_bins;               //  64
    int latent_mel_bins;        //  mel_bins / 4 = 16
    int stats_channels;         //  z_channels * latent_mel_bins = 128
    int vae_rate, hop;          //  16000, 160: 100 mel frames per second
    //  vocoder (config.vocoder)
    bool bwe;                   //  LTX-2.3 VocoderWithBWE
    ltx2_vocoder_config_t vocoder, bwe_gen;
    int vocoder_rate;           //  the vocoder's rate (24000; 16000 before the BWE)
    int bwe_hop, bwe_n_fft, bwe_mels;
    int output_rate;            //  24000 (LTX-2) or 48000 (LTX-2.3)
} ltx2_audio_config_t;

typedef struct _ltx2_audio_t ltx2_audio_t;

//  The configuration from a checkpoint's __metadata__ "config" JSON text. Missing keys take
//  the official configurators' defaults (the LTX-2 19B sizes), except that the mid-block
//  attention the code defaults to is refused (every released config turns it off), as are
//  attention levels, GroupNorm and non-causal decoders. -1 with *err on a bad value.
int ltx2_audio_config_parse (const char *config_json, ltx2_audio_config_t *cfg, char **err);

//  The released checkpoints' configurations (v23 false: LTX-2 19B, 24 kHz; true: LTX-2.3 22B,
//  48 kHz with the BWE), for estimates before a checkpoint is open and for benchmarks.
void ltx2_audio_config_released (ltx2_audio_config_t *cfg, bool v23);

//  Loads the audio VAE decoder and the vocoder from an LTX-2 / LTX-2.3 checkpoint (the
//  checkpoint is only borrowed while loading). NULL with *err naming the tensor or setting.
ltx2_audio_t *ltx2_audio_new (vdgx_ckpt_t *ckpt, vdgx_backend_t *backend, char **err);
//  Random weights of the configuration (benchmarks, memory tests); filter buffers and STFT
//  bases are random too, so the output is noise.
ltx2_audio_t *ltx2_audio_new_random (const ltx2_audio_config_t *cfg, uint64_t seed,
                                     vdgx_backend_t *backend, char **err);
void ltx2_audio_destroy (ltx2_audio_t **self_p);

const ltx2_audio_config_t *ltx2_audio_config (ltx2_audio_t *self);
//  Output sample rate (24000 or 48000); output channels are always 2.
int ltx2_audio_sample_rate (ltx2_audio_t *self);
size_t ltx2_audio_weight_bytes (ltx2_audio_t *self);

//  Samples per channel that decoding `latent_frames` latent frames gives:
//  (4T - 3) mel frames x vocoder_rate / 100, x3 with the BWE (0 when T < 1).
int64_t ltx2_audio_samples (const ltx2_audio_config_t *cfg, int64_t latent_frames);
//  Bytes the decoder needs on its backend for T latent frames: the F32 weights plus the
//  largest set of activations alive at once (an upper bound).
size_t ltx2_audio_memory_estimate (const ltx2_audio_config_t *cfg, int64_t latent_frames);

//  Taps (refcheck, debugging): "dec.conv_in_input" (un-normalised latent [1,z,T,F]),
//  "dec.conv_in", "dec.mid", "dec.up.<l>.blocks", "dec.up.<l>.upsample", "dec.conv_out",
//  "mel" [1,2,4T-3,64]; "voc.conv_pre", "voc.ups.<i>" (the transposed convolution's output),
//  "voc.resblocks.<j>" (level 0's), "voc.conv_post_input", "voc.conv_post" (before the final
//  activation), "voc.out" [1,2,L]; with the BWE "bwe.mel_in" [1,2,frames,mels],
//  "bwe.residual", "bwe.skip".
typedef void (ltx2_audio_tap_fn) (void *arg, const char *name, const vdgx_tensor_t *t);
void ltx2_audio_set_tap (ltx2_audio_t *self, ltx2_audio_tap_fn *fn, void *arg);

//  Decodes one audio latent on the backend: latent [1, z, T, F] (the official latent layout)
//  or the DiT's audio tokens [T, z*F] / [1, T, z*F] (feature c*F + f), F32 or the backend's
//  act dtype. *pcm (malloc'ed, caller frees) gets *samples x 2 interleaved floats at
//  ltx2_audio_sample_rate. -1 with *err (malloc'ed) on a bad shape or a backend failure.
int ltx2_audio_decode (ltx2_audio_t *self, const vdgx_tensor_t *latent, float **pcm,
                       int64_t *samples, char **err);

//  The vocoder alone (with the BWE on LTX-2.3): mel [1, 2, frames, mel_bins] (the decoder's
//  output, tap "mel"; F32 or the act dtype) -> *pcm, *samples as ltx2_audio_decode gives
//  (frames x vocoder_rate / 100 samples, x3 with the BWE). For benchmarks and tests.
int ltx2_audio_vocode (ltx2_audio_t *self, const vdgx_tensor_t *mel, float **pcm, int64_t *samples,
                       char **err);

void ltx2_audio_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
