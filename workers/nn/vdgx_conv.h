/*  vdgx_conv.h - convolution blocks of the model toolkit: the causal 3-D convolution with its
    feature cache (chunked video VAEs), 1-D convolution layers (plain and transposed, for
    audio VAEs and vocoders) with the usual up/downsampling settings, Snake / SnakeBeta
    activation layers, BigVGAN's anti-aliased activations and Hann-sinc upsampling. Tensors
    are channels-first: x [N, C, F, H, W] / [N, C, L].
*/
#ifndef VDGX_CONV_H_INCLUDED
#define VDGX_CONV_H_INCLUDED

#include "vdgx_wsrc.h"

#ifdef __cplusplus
extern "C" {
#endif

//  ---------------------------------------------------------------------------------------
//  Causal 3-D convolution: y [1, Cout, F, H, W] (allocated here, x's dtype) of x [1, Cin, F,
//  H, W] with w [Cout, Cin, kt, kh, kw], stride 1, spatial padding kh/2, kw/2, and kt-1
//  frames of temporal padding in front: the last input frames of the previous chunks when a
//  cache is given (then updated to the last min(kt-1, frames seen) input frames), zeros for
//  what they do not cover. cache NULL: a stateless convolution (all zeros in front).
//  Decoding a video in chunks with one cache per convolution gives the whole-video result.
int vdgx_cconv3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                  const vdgx_tensor_t *w, const vdgx_tensor_t *bias, vdgx_tensor_t *cache);

//  ---------------------------------------------------------------------------------------
//  Non-causal 3-D convolutions and depth-to-space (LTX-Video / LTX-2 VAE decoders).

//  y [1, C, F + 2 pt, H + 2 ph, W + 2 pw] (allocated here, x's dtype) = x [1, C, F, H, W]
//  padded as PyTorch's F.pad does: pt frames at each end in tmode, ph rows and pw columns at
//  each side in smode (VDGX_PAD_ZERO, _REPLICATE, _REFLECT; reflect needs pads < the size).
int vdgx_pad3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int pt,
                vdgx_pad_mode_t tmode, int ph, int pw, vdgx_pad_mode_t smode);
//  "Same" 3-D convolution: y [1, Cout, F, H, W] (allocated here) of x [1, Cin, F, H, W] with
//  w [Cout, Cin, kt, kh, kw] (odd sizes), stride 1, (kt-1)/2 frames padded at each end in
//  tmode and kh/2, kw/2 at each side in smode (LTX-Video's non-causal CausalConv3d:
//  replicate in time, the spatial_padding_mode in space).
int vdgx_conv3d_same (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                      const vdgx_tensor_t *w, const vdgx_tensor_t *bias, vdgx_pad_mode_t tmode,
                      vdgx_pad_mode_t smode);
//  Depth-to-space: y [1, C, F*p1, H*p2, W*p3] (allocated here) of x [1, C*p1*p2*p3, F, H, W],
//  input channel ((c*p1 + i)*p2 + j)*p3 + k going to (c, f*p1 + i, h*p2 + j, w*p3 + k)
//  (einops "b (c p1 p2 p3) f h w -> b c (f p1) (h p2) (w p3)"); stride = {p1, p2, p3}.
int vdgx_depth_to_space3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                           const int stride [3]);

//  ---------------------------------------------------------------------------------------
//  1-D convolution layers.

typedef struct {
    bool transposed;
    vdgx_conv1d_params_t p;
    vdgx_tensor_t w;            //  [Cout, Cin/groups, K]; transposed: [Cin, Cout/groups, K]
    vdgx_tensor_t b;            //  [Cout], or no data
    int64_t cin, cout, k;
} vdgx_conv1d_t;

//  Upsampling by `factor` with a transposed kernel of size k (HiFi-GAN / BigVGAN: stride
//  factor, padding (k - factor) / 2, so L -> L * factor when k - factor is even), and
//  downsampling by `factor` (stride factor, padding (k - factor) / 2: L -> L / factor).
vdgx_conv1d_params_t vdgx_conv1d_upsample (int factor, int k);
vdgx_conv1d_params_t vdgx_conv1d_downsample (int factor, int k);
//  "<prefix>.weight" (and "<prefix>.bias" when bias) from a weight source, in dtype.
int vdgx_conv1d_load (vdgx_wsrc_t *src, vdgx_backend_t *b, vdgx_conv1d_t *c, const char *prefix,
                      int64_t cin, int64_t cout, int64_t k, bool transposed,
                      const vdgx_conv1d_params_t *p, bool bias, vdgx_dtype_t dtype, char **err);
//  Output length for an input of len (0 when the input is too short).
int64_t vdgx_conv1d_layer_out_len (const vdgx_conv1d_t *c, int64_t len);
//  y [N, Cout, Lout] (allocated here, x's dtype) = conv(x [N, Cin, L]).
int vdgx_conv1d_forward (vdgx_backend_t *b, const vdgx_conv1d_t *c, vdgx_tensor_t *y,
                         const vdgx_tensor_t *x, char **err);
void vdgx_conv1d_release (vdgx_backend_t *b, vdgx_conv1d_t *c);

//  ---------------------------------------------------------------------------------------
//  Snake (beta = alpha) / SnakeBeta activation layers: y = x + sin(a x)^2 / (b + 1e-9).

typedef struct {
    vdgx_tensor_t alpha, beta;      //  F32 [C]; beta without data = Snake
    bool logscale;                  //  a = exp(alpha), b = exp(beta) (alpha_logscale checkpoints)
} vdgx_snake_t;

//  "<prefix>.alpha" (and "<prefix>.beta" when beta) [C] from a weight source.
int vdgx_snake_load (vdgx_wsrc_t *src, vdgx_backend_t *b, vdgx_snake_t *s, const char *prefix,
                     int64_t channels, bool beta, bool logscale, char **err);
int vdgx_snake_forward (vdgx_backend_t *b, const vdgx_snake_t *s, vdgx_tensor_t *y,
                        const vdgx_tensor_t *x);
void vdgx_snake_release (vdgx_backend_t *b, vdgx_snake_t *s);
//  y = x >= 0 ? x : slope * x (vocoders' LeakyReLU; PyTorch's default slope 0.01, HiFi-GAN 0.1).
int vdgx_leaky_relu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, float slope);

//  ---------------------------------------------------------------------------------------
//  Anti-aliased activation (BigVGAN v2 Activation1d): x [N, C, L] upsampled x2 (replicate
//  padding of K/2-1 samples, transposed depthwise filter, times 2, cropped to 2L), a Snake /
//  SnakeBeta, then low-passed and downsampled x2 (replicate padding K/2-1 | K/2, depthwise
//  filter, stride 2) back to L. The kaiser-sinc filters are the checkpoint buffers
//  "<prefix>.upsample.filter" and "<prefix>.downsample.lowpass.filter" [1, 1, K] (K even);
//  the activation is "<prefix>.act".

typedef struct {
    vdgx_snake_t act;
    vdgx_tensor_t up, down;         //  F32 [C, 1, K] depthwise (up already times 2)
    int64_t channels, up_k, down_k;
} vdgx_aa_act_t;

int vdgx_aa_act_load (vdgx_wsrc_t *src, vdgx_backend_t *b, vdgx_aa_act_t *a, const char *prefix,
                      int64_t channels, int64_t kernel, bool beta, bool logscale, char **err);
//  y [N, C, L] (allocated here, x's dtype).
int vdgx_aa_act_forward (vdgx_backend_t *b, const vdgx_aa_act_t *a, vdgx_tensor_t *y,
                         const vdgx_tensor_t *x, char **err);
void vdgx_aa_act_release (vdgx_backend_t *b, vdgx_aa_act_t *a);

//  ---------------------------------------------------------------------------------------
//  Hann-windowed sinc upsampling by an integer ratio r (the filter of torchaudio's
//  resample: rolloff 0.99, lowpass width 6, so width w = 7 input samples each side, K =
//  2 w r + 1 taps; computed in float32 as PyTorch does): replicate padding of w, transposed
//  depthwise filter, times r, cropped to r L. x [N, C, L] -> y [N, C, r L].

typedef struct {
    vdgx_tensor_t w;                //  F32 [C, 1, K] depthwise
    int ratio, width;
    int64_t channels, k;
} vdgx_sinc_up_t;

int vdgx_sinc_up_init (vdgx_backend_t *b, vdgx_sinc_up_t *s, int ratio, int64_t channels,
                       char **err);
//  The filter's K taps (host, float32 as PyTorch computes them), K = 2 * 7 * ratio + 1.
void vdgx_sinc_up_filter (int ratio, float *taps);
int vdgx_sinc_up_forward (vdgx_backend_t *b, const vdgx_sinc_up_t *s, vdgx_tensor_t *y,
                          const vdgx_tensor_t *x, char **err);
void vdgx_sinc_up_release (vdgx_backend_t *b, vdgx_sinc_up_t *s);

void vdgx_conv_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
