/*  vdgx_nn.h - the model toolkit's basic layers over the backend ops (vdgx_backend.h):
    tensor views, linear layers (any weight format, optional bias), LayerNorm / RMSNorm
    variants, adaLN modulation tables and MLPs. Attention, rotary tables and KV caches are in
    vdgx_attn.h; checkpoint loading through name maps in vdgx_wsrc.h.

    Layers are plain structs the engine embeds in its own block structs; they own their
    backend tensors (release with the matching _release). Activations are [.., C] rows in the
    backend's act dtype or F32; norm weights are always F32 (every norm accumulates in f32).
    Every function returns 0, or -1 with the backend's message in *err (when err is not NULL).
*/
#ifndef VDGX_NN_H_INCLUDED
#define VDGX_NN_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_util.h"

#ifdef __cplusplus
extern "C" {
#endif

//  ---------------------------------------------------------------------------------------
//  Views and errors

//  A contiguous tensor seen with another shape of the same element count (asserts: API use).
vdgx_tensor_t vdgx_nn_view (const vdgx_tensor_t *t, int ndim, const int64_t *shape);
vdgx_tensor_t vdgx_nn_view2 (const vdgx_tensor_t *t, int64_t d0, int64_t d1);
vdgx_tensor_t vdgx_nn_view3 (const vdgx_tensor_t *t, int64_t d0, int64_t d1, int64_t d2);
vdgx_tensor_t vdgx_nn_view4 (const vdgx_tensor_t *t, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
//  Rows [row, row + rows) of the leading dim of a contiguous tensor (same ndim).
vdgx_tensor_t vdgx_nn_rows (const vdgx_tensor_t *t, int64_t row, int64_t rows);
//  Releases a backend tensor when it holds memory, and zeroes the description.
void vdgx_nn_free (vdgx_backend_t *b, vdgx_tensor_t *t);
//  Allocates a tensor with up to 4 dims (trailing zero dims are dropped).
int vdgx_nn_alloc (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dtype, int64_t d0,
                   int64_t d1, int64_t d2, int64_t d3);
//  A host f32 array onto the backend as a new tensor of dtype and shape.
int vdgx_nn_upload (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dtype, int ndim,
                    const int64_t *shape, const float *src);
//  Replaces *err (freed) with "<who>: <what> failed: <backend error>"; returns -1.
int vdgx_nn_fail (vdgx_backend_t *b, char **err, const char *who, const char *what);

//  ---------------------------------------------------------------------------------------
//  Linear: y[.., n] = x[.., k] . W^T (+ b)

typedef struct {
    vdgx_weight_t w;
    vdgx_tensor_t b;        //  [n] in the act dtype (or F32); no data = no bias
    bool loaded;
} vdgx_linear_t;

//  From host f32 W [n,k] (and bias [n] or NULL): quantized to fmt (a k that the format's
//  block does not divide falls back to BF16), bias in bias_dtype.
int vdgx_linear_from_f32 (vdgx_backend_t *b, vdgx_linear_t *l, vdgx_wfmt_t fmt,
                          const float *w, const float *bias, int64_t n, int64_t k,
                          vdgx_dtype_t bias_dtype, char **err);
//  Takes over a host weight (any format; copied to the backend, host left to the caller).
int vdgx_linear_from_weight (vdgx_backend_t *b, vdgx_linear_t *l, const vdgx_weight_t *host,
                             char **err);
//  x and y may have any leading dims; the last ones must be k and n.
int vdgx_linear_forward (vdgx_backend_t *b, const vdgx_linear_t *l, vdgx_tensor_t *y,
                         const vdgx_tensor_t *x);
void vdgx_linear_release (vdgx_backend_t *b, vdgx_linear_t *l);
//  The format a weight of row length k gets when fmt is asked for (block formats need
//  k % block == 0, else BF16).
vdgx_wfmt_t vdgx_linear_fmt_for (vdgx_wfmt_t fmt, int64_t k);
//  "fp32"/"f32", "bf16" (also NULL), "fp16"/"f16", "fp8", "fp4"/"nvfp4", "nf4", "mxfp4".
int vdgx_precision_parse (const char *precision, vdgx_wfmt_t *fmt);

//  ---------------------------------------------------------------------------------------
//  Norms over the last `dim` elements of each row: x may be [.., dim] or [.., H, dim] with
//  dim = head size (q/k norms per head) or the full width (q/k norms across heads).

typedef enum {
    VDGX_NORM_LAYER = 0,    //  (x - mean) / sqrt(var + eps) (* w + b)
    VDGX_NORM_RMS,          //  x / sqrt(mean(x^2) + eps) (* w)
    VDGX_NORM_LAYER_STD     //  (x - mean) / (sqrt(var) + eps) (* w + b): eps on the std
                            //  (MAGI-1's VAE qkv norm)
} vdgx_norm_kind_t;

typedef struct {
    vdgx_norm_kind_t kind;
    int64_t dim;
    float eps;
    vdgx_tensor_t w, b;     //  F32 [dim], or no data (no affine weight / no bias)
} vdgx_norm_t;

//  w / bias host f32 [dim] or NULL. one_plus stores 1 + w (Gemma's RMSNorm scale (1 + w)).
int vdgx_norm_init (vdgx_backend_t *b, vdgx_norm_t *n, vdgx_norm_kind_t kind, int64_t dim,
                    float eps, const float *w, const float *bias, bool one_plus, char **err);
int vdgx_norm_forward (vdgx_backend_t *b, const vdgx_norm_t *n, vdgx_tensor_t *y,
                       const vdgx_tensor_t *x);
void vdgx_norm_release (vdgx_backend_t *b, vdgx_norm_t *n);

//  PixelNorm over the channels of a channels-first x [N, C, ...] (video VAEs' pixel_norm):
//  y = x / sqrt (mean_c (x^2) + eps), then y * (1 + scale [c]) + shift [c] when shift and
//  scale (F32 [C]) are given (both or neither). y allocated here, x's shape and dtype.
int vdgx_pixel_norm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, float eps,
                     const vdgx_tensor_t *shift, const vdgx_tensor_t *scale);

//  ---------------------------------------------------------------------------------------
//  adaLN modulation: a learned table [rows, C] plus a per-sample embedding [rows, C] (or
//  [1, C] for every row) gives (shift, scale, gate, ...) rows, F32.

//  out [rows, C] = table + emb; row i of out is vdgx_nn_rows (out, i, 1).
int vdgx_adaln_rows (vdgx_backend_t *b, vdgx_tensor_t *out, const vdgx_tensor_t *table,
                     const vdgx_tensor_t *emb);
//  y [B,L,C] = x * (1 + scale) + shift with shift/scale [1,C] or [B,C].
int vdgx_adaln_modulate (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                         const vdgx_tensor_t *shift, const vdgx_tensor_t *scale);
//  x [B,L,C] += y * gate (gate [1,C] / [B,C], NULL = plain residual).
int vdgx_adaln_gate (vdgx_backend_t *b, vdgx_tensor_t *x, const vdgx_tensor_t *y,
                     const vdgx_tensor_t *gate);
//  Per-token tables (per-token timesteps, LTX-2): shift, scale, gate hold one row per token,
//  [B*L, C] (or any shape of x's element count), for x, y [.., C].
int vdgx_adaln_modulate_tokens (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                                const vdgx_tensor_t *shift, const vdgx_tensor_t *scale);
int vdgx_adaln_gate_tokens (vdgx_backend_t *b, vdgx_tensor_t *x, const vdgx_tensor_t *y,
                            const vdgx_tensor_t *gate);

//  ---------------------------------------------------------------------------------------
//  Activations and MLPs

typedef enum {
    VDGX_ACT_GELU_TANH = 0,     //  gelu(approximate="tanh") (gelu_new, gelu_pytorch_tanh)
    VDGX_ACT_GELU,              //  exact erf GELU
    VDGX_ACT_SILU,
    VDGX_ACT_TANH,
    VDGX_ACT_SIGMOID
} vdgx_act_t;

int vdgx_act_forward (vdgx_backend_t *b, vdgx_act_t act, vdgx_tensor_t *y, const vdgx_tensor_t *x);

typedef enum {
    VDGX_MLP_PLAIN = 0,     //  down(act(up(x)))
    VDGX_MLP_GATED          //  down(act(gate(x)) * up(x))  (SwiGLU: SILU, GeGLU: GELU[_TANH])
} vdgx_mlp_kind_t;

typedef struct {
    vdgx_mlp_kind_t kind;
    vdgx_act_t act;
    int64_t dim, hidden;
    vdgx_linear_t up, gate, down;
} vdgx_mlp_t;

//  y [.., dim] = mlp(x [.., dim]). h1, h2: scratch [.., hidden] in the act dtype.
int vdgx_mlp_forward (vdgx_backend_t *b, const vdgx_mlp_t *m, vdgx_tensor_t *y,
                      const vdgx_tensor_t *x, vdgx_tensor_t *h1, vdgx_tensor_t *h2);
void vdgx_mlp_release (vdgx_backend_t *b, vdgx_mlp_t *m);

//  ---------------------------------------------------------------------------------------
//  Host-side embeddings and patching

//  Sinusoidal timestep embedding of t into out [dim] (dim even), computed in float64:
//  frequencies max_period^(-i / half) for i < half = dim / 2, cos then sin when cos_first
//  (Wan's sinusoidal_embedding_1d), else sin then cos.
void vdgx_nn_sinusoidal (double t, int dim, double max_period, bool cos_first, float *out);
//  The same in float32 steps as diffusers' / PixArt's get_timestep_embedding computes it
//  (exponent -ln(max_period) * i / (half - freq_shift), exp, t * freq, sin / cos all float32;
//  flip_sin_to_cos = cos_first). Matches the float32 PyTorch code to an ulp or two.
void vdgx_nn_sinusoidal_f32 (float t, int dim, double max_period, float freq_shift,
                             bool cos_first, float *out);
//  3-D patches: x [C, F, H, W] (host f32) -> tokens [F/pt * H/ph * W/pw, C*pt*ph*pw], tokens
//  f-major then h then w, each token's vector ordered (c, p, q, r) as a Conv3d weight with
//  kernel = stride = patch flattens. unpatchify3d is the inverse with the token vector
//  ordered (p, q, r, c) (the head's layout in Wan / diffusers).
void vdgx_nn_patchify3d (const float *x, int64_t c, int64_t f, int64_t h, int64_t w,
                         const int patch [3], float *tokens);
void vdgx_nn_unpatchify3d (const float *tokens, int64_t c, int64_t f, int64_t h, int64_t w,
                           const int patch [3], float *x);

//  Bicubic resampling of planar images x [c, h, w] -> y [c, oh, ow] as PyTorch's
//  F.interpolate (mode="bicubic", align_corners=False, antialias=False): A = -0.75, source
//  coordinate scale * (i + 0.5) - 0.5 in float32 (scale = in / out), taps clamped to the
//  border, no clamping of the result (it can overshoot the input range).
void vdgx_nn_resize_bicubic (const float *x, int64_t c, int64_t h, int64_t w, int64_t oh,
                             int64_t ow, float *y);

//  Trilinear resampling of planar volumes x [c, d, h, w] -> y [c, od, oh, ow] as PyTorch's
//  F.interpolate (mode="trilinear", align_corners=False): per axis the source coordinate
//  max(0, scale * (i + 0.5) - 0.5) in float32 (scale = in / out), its floor i0 and
//  i0 + 1 (clamped to the last index), linear weights. (Resized position embeddings.)
void vdgx_nn_resize_trilinear (const float *x, int64_t c, int64_t d, int64_t h, int64_t w,
                               int64_t od, int64_t oh, int64_t ow, float *y);

void vdgx_nn_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
