/*  vdgx_backend.h - the compute backend interface (an ops table chosen at run time).

    Engines never call a backend's functions directly: they create a backend by name
    ("cpu", "cuda:0") and call the vdgx_op_* wrappers below, which check shapes and dtypes,
    and fall back to the CPU reference (download, compute, upload) for any op a backend
    leaves NULL or declines through supports_op. The CPU backend is the oracle every other
    backend is tested against.

    Backends are modules in a registry: the CPU backend is built in; any other registers
    itself when its shared object, libvdgx_<prefix>.so (e.g. libvdgx_cuda.so), is loaded
    the first time a device with that prefix is asked for. A process that never asks for one
    never loads it (nor the CUDA libraries it links).

    A backend is used by one thread at a time (its CPU worker pool and scratch are shared by
    its ops); make one backend per thread that computes.

    Activations: each backend has an activation dtype (act_dtype): F32 on the CPU, BF16 (or
    F32 on request) on CUDA. Ops accept F32 and the backend's act_dtype; reductions, softmax
    and norms always accumulate in f32. Every op returns 0 on success and -1 on a shape/dtype
    mismatch or a device error; vdgx_backend_error() then says what went wrong.
*/
#ifndef VDGX_BACKEND_H_INCLUDED
#define VDGX_BACKEND_H_INCLUDED

#include "vdgx_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_backend_t vdgx_backend_t;

typedef enum { VDGX_ROPE_INTERLEAVED = 0, VDGX_ROPE_HALF = 1 } vdgx_rope_layout_t;

//  Which keys a query sees in vdgx_op_attention_ex (query i sits at key position
//  p = i + q_offset).
typedef enum {
    VDGX_ATTN_FULL = 0,      //  every key visible (subject to key_mask)
    VDGX_ATTN_CAUSAL,        //  key j visible to query i iff j <= i + q_offset
    VDGX_ATTN_SLIDING,       //  iff i + q_offset - window < j <= i + q_offset
    VDGX_ATTN_BLOCK_CAUSAL   //  iff j / block <= (i + q_offset) / block   (chunks of `block` keys)
} vdgx_attn_kind_t;

typedef struct {
    vdgx_attn_kind_t kind;
    int64_t q_offset;                //  key-axis position of query 0 (appending to a KV cache: Lk - Lq)
    int64_t window;                  //  SLIDING only, >= 1
    int64_t block;                   //  BLOCK_CAUSAL only, >= 1
    const vdgx_tensor_t *key_mask;   //  U8 [B,Lk], 0 = key is padding; or NULL
    const vdgx_tensor_t *bias;       //  F32 [H,Lq,Lk] added to the logits; or NULL
} vdgx_attn_spec_t;

//  1D convolution over x[N,C,L] (vdgx_op_conv1d, vdgx_op_conv_transpose1d). A zero stride,
//  dilation or groups means 1, so a zeroed struct is a plain convolution.
typedef struct {
    int stride;
    int pad_left, pad_right;    //  conv1d: zeros added at each end; transposed: outputs cropped
    int dilation;
    int groups;                 //  divides Cin and Cout; groups = Cin = Cout is depthwise
    int output_padding;         //  transposed only: extra outputs at the right end (< stride or
                                //  < dilation, as in PyTorch)
} vdgx_conv1d_params_t;

//  Padding modes of vdgx_op_pad1d (PyTorch F.pad's "constant" 0, "replicate", "reflect").
typedef enum { VDGX_PAD_ZERO = 0, VDGX_PAD_REPLICATE, VDGX_PAD_REFLECT } vdgx_pad_mode_t;

//  Elementwise functions of vdgx_op_unary.
typedef enum {
    VDGX_UNARY_LEAKY_RELU = 0,  //  x >= 0 ? x : param * x   (PyTorch's default slope is 0.01)
    VDGX_UNARY_GELU_ERF,        //  0.5 x (1 + erf(x / sqrt 2))   (exact GELU)
    VDGX_UNARY_TANH,
    VDGX_UNARY_SIGMOID,         //  1 / (1 + exp(-x))
    VDGX_UNARY_COUNT
} vdgx_unary_t;

//  The ops of the table below, for vdgx_op_desc_t and supports_op.
typedef enum {
    VDGX_OP_LINEAR = 0, VDGX_OP_MATMUL, VDGX_OP_ATTENTION, VDGX_OP_LAYERNORM, VDGX_OP_RMSNORM,
    VDGX_OP_CHANNEL_RMSNORM, VDGX_OP_MODULATE, VDGX_OP_GATED_RESIDUAL, VDGX_OP_GELU_TANH,
    VDGX_OP_SILU, VDGX_OP_ADD_SCALED, VDGX_OP_MUL, VDGX_OP_AFFINE_CLAMP, VDGX_OP_ROPE,
    VDGX_OP_PERMUTE, VDGX_OP_CONCAT, VDGX_OP_SLICE, VDGX_OP_CONV3D, VDGX_OP_CONV2D,
    VDGX_OP_UPSAMPLE2X, VDGX_OP_CAST, VDGX_OP_CONV1D, VDGX_OP_CONV_TRANSPOSE1D, VDGX_OP_PAD1D,
    VDGX_OP_SNAKE, VDGX_OP_UNARY, VDGX_OP_CHANNEL_RMSNORM_SILU,
    VDGX_OP_COUNT
} vdgx_op_t;
const char *vdgx_op_name (vdgx_op_t op);

//  One call of an op as a backend's supports_op sees it: the tensors in the order of the
//  wrapper's arguments, outputs first (absent optional tensors are NULL), the weight of
//  linear, the mask spec of attention.
#define VDGX_OP_MAX_TENSORS 6
typedef struct {
    vdgx_op_t op;
    int ntensors;
    const vdgx_tensor_t *t [VDGX_OP_MAX_TENSORS];
    const vdgx_weight_t *w;
    const vdgx_attn_spec_t *attn;
} vdgx_op_desc_t;

typedef struct {
    //  Memory. alloc/free are the raw device allocation; vdgx_tensor_alloc and
    //  vdgx_backend_alloc put a size-bucketed caching pool on top, so buffers are reused
    //  across steps. weight_upload must keep data/scales in the vdgx_quant.h layout (extra
    //  layouts go to backend_priv) so the CPU fallback can download them.
    void *(*alloc) (vdgx_backend_t *self, size_t bytes);
    void (*free) (vdgx_backend_t *self, void *ptr);
    int (*upload) (vdgx_backend_t *self, void *dst, const void *src, size_t bytes);
    int (*download) (vdgx_backend_t *self, void *dst, const void *src, size_t bytes);
    int (*copy) (vdgx_backend_t *self, void *dst, const void *src, size_t bytes);
    int (*synchronize) (vdgx_backend_t *self);
    //  Element conversion between dtypes on the device (same numel, contiguous).
    int (*cast) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x);
    //  Weights: creates a device weight from a host weight (copy, or prepare the layout).
    int (*weight_upload) (vdgx_backend_t *self, vdgx_weight_t *dst, const vdgx_weight_t *host);
    void (*weight_free) (vdgx_backend_t *self, vdgx_weight_t *w);

    //  y[M,N] = x[M,K] . W[N,K]^T (+ bias[N]). x, y: act dtype or F32; bias may be NULL.
    int (*linear) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                   const vdgx_weight_t *w, const vdgx_tensor_t *bias);
    //  y[B,M,N] = a[B,M,K] . b[B,K,N] (plain batched matmul of activations, F32 accumulate).
    int (*matmul) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *b);
    //  Masked / GQA attention, exactly vdgx_op_attention_ex below (spec is never NULL here).
    int (*attention) (vdgx_backend_t *self, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                      const vdgx_tensor_t *k, const vdgx_tensor_t *v, const vdgx_attn_spec_t *spec,
                      float scale);
    //  Normalisation over the last dim C of x[R,C]. gamma/beta [C] may be NULL.
    //  eps < 0: -eps is added to the (biased) standard deviation instead of the variance,
    //  (x - mean) / (sqrt(var) - eps) (the "std + eps" LayerNorm of some ViTs, MAGI-1's VAE).
    int (*layernorm) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                      const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta, float eps);
    int (*rmsnorm) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                    const vdgx_tensor_t *gamma, float eps);
    //  Normalisation over dim 1 of a channels-first x[N,C,S] (Wan-VAE RMS_norm:
    //  x / max(||x||_2, 1e-12) * sqrt(C) * gamma[C] (+ beta[C] when not NULL)).
    int (*channel_rmsnorm) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                            const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta);
    //  The same followed by SiLU, in one pass over memory (optional: without it,
    //  vdgx_op_channel_rmsnorm_silu runs channel_rmsnorm then silu on this backend).
    int (*channel_rmsnorm_silu) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                                 const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta);
    //  y[B,L,C] = x * (1 + scale[B,C]) + shift[B,C]   (adaLN modulate, broadcast over L)
    int (*modulate) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                     const vdgx_tensor_t *shift, const vdgx_tensor_t *scale);
    //  x[B,L,C] += y[B,L,C] * gate[B,C]   (gated residual; gate NULL means 1)
    int (*gated_residual) (vdgx_backend_t *self, vdgx_tensor_t *x, const vdgx_tensor_t *y,
                           const vdgx_tensor_t *gate);
    int (*gelu_tanh) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x);
    int (*silu) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x);
    //  y = a + alpha * b  (same shapes; b may broadcast along leading dims when its numel
    //  divides a's: b is then repeated)
    int (*add_scaled) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *a,
                       const vdgx_tensor_t *b, float alpha);
    //  y = a * b elementwise (same broadcasting rule as add_scaled)
    int (*mul) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *b);
    //  y = clamp(x * alpha + beta, lo, hi)
    int (*affine_clamp) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                         float alpha, float beta, float lo, float hi);
    //  Rotary embedding on x[B,L,H,D] with per-token tables cos/sin F32 [L, D/2].
    //  INTERLEAVED rotates pairs (2i, 2i+1) (Wan); HALF rotates (i, i+D/2) (LTX).
    int (*rope) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                 const vdgx_tensor_t *cos, const vdgx_tensor_t *sin, vdgx_rope_layout_t layout);
    //  y = x permuted: y.shape[i] = x.shape[perm[i]] (ndim <= 6).
    int (*permute) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, const int *perm);
    //  Concatenation of a and b along dim (other dims equal).
    int (*concat) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *a,
                   const vdgx_tensor_t *b, int dim);
    //  y = x[..., start:start+len, ...] along dim.
    int (*slice) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, int dim,
                  int64_t start, int64_t len);
    //  3D convolution, channels-first: x[N,Cin,T,H,W], w[Cout,Cin,kt,kh,kw], bias[Cout] or NULL.
    //  pad = {t_front, t_back, h, w} zeros (causal conv: t_front = 2*p, t_back = 0).
    int (*conv3d) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                   const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int stride [3],
                   const int pad [4]);
    //  2D convolution: x[N,Cin,H,W], w[Cout,Cin,kh,kw]; pad = {top, bottom, left, right}.
    int (*conv2d) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                   const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int stride [2],
                   const int pad [4]);
    //  Nearest-exact 2x spatial upsampling of x[N,C,H,W] -> y[N,C,2H,2W].
    int (*upsample2x) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x);
    //  1D convolution, channels-first: x[N,Cin,L], w[Cout,Cin/groups,K], bias[Cout] or NULL;
    //  y[N,Cout,Lout], Lout = (L + pad_left + pad_right - dilation*(K-1) - 1) / stride + 1.
    //  p is normalised (stride, dilation, groups >= 1).
    int (*conv1d) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                   const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p);
    //  Transposed 1D convolution (PyTorch ConvTranspose1d): x[N,Cin,L], w[Cin,Cout/groups,K],
    //  bias[Cout] or NULL; y[n,co,t] = bias[co] + sum x[n,ci,l] * w[ci,co%(Cout/groups),k]
    //  over ci of co's group and l*stride + k*dilation - pad_left = t;
    //  Lout = (L-1)*stride - pad_left - pad_right + dilation*(K-1) + output_padding + 1.
    int (*conv_transpose1d) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                             const vdgx_tensor_t *w, const vdgx_tensor_t *bias,
                             const vdgx_conv1d_params_t *p);
    //  y[..., left + L + right] = x[..., L] padded along the last dim (reflect: left, right < L;
    //  replicate: L >= 1).
    int (*pad1d) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, int left,
                  int right, vdgx_pad_mode_t mode);
    //  Snake / SnakeBeta (BigVGAN) over x[N,C,...] with per-channel alpha[C], beta[C]:
    //  y = x + sin(a x)^2 / (b + 1e-9), a = alpha[c], b = beta[c] (beta NULL: b = a, Snake);
    //  logscale: a = exp(alpha[c]), b = exp(beta[c]) (the alpha_logscale=True checkpoints).
    int (*snake) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                  const vdgx_tensor_t *alpha, const vdgx_tensor_t *beta, bool logscale);
    //  y = f(x) elementwise, f one of vdgx_unary_t (param: the leaky ReLU slope).
    int (*unary) (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, vdgx_unary_t op,
                  float param);

    //  Whether this backend computes this call (shapes, dtypes, weight format, mask kind).
    //  The wrapper has checked the call already; false sends it to the CPU fallback, as a
    //  NULL op does. NULL supports_op: every non-NULL op supports every call.
    bool (*supports_op) (vdgx_backend_t *self, const vdgx_op_desc_t *desc);
} vdgx_backend_ops_t;

//  Creates a backend: "cpu" (all cores; "cpu:N" uses N threads) or "cuda", "cuda:N".
//  Returns NULL with a message in *err (caller frees) when the device is absent.
vdgx_backend_t *vdgx_backend_new (const char *device, vdgx_dtype_t act_dtype, char **err);
void vdgx_backend_destroy (vdgx_backend_t **self_p);
const char *vdgx_backend_name (vdgx_backend_t *self);      //  "cpu", "cuda:0"
int vdgx_backend_device (vdgx_backend_t *self);            //  VDGX_DEVICE_CPU or ordinal
vdgx_dtype_t vdgx_backend_act_dtype (vdgx_backend_t *self);
const char *vdgx_backend_error (vdgx_backend_t *self);     //  last error message
size_t vdgx_backend_bytes_in_use (vdgx_backend_t *self);
size_t vdgx_backend_peak_bytes (vdgx_backend_t *self);
//  Whether vdgx_backend_new (device) would succeed now (opens and closes one; may load the
//  device's module). E.g. tests that need "cuda:0" skip when this is false.
bool vdgx_backend_available (const char *device);

//  ---------------------------------------------------------------------------------------
//  Backend registry. A backend is an ops table under a device prefix. Flags:
#define VDGX_BACKEND_HOST_MEMORY 1      //  tensors live in host memory (device VDGX_DEVICE_CPU);
                                        //  the name has no ordinal ("cpu:N" passes N to open)
#define VDGX_BACKEND_F32_ONLY 2         //  computes in F32 whatever activation dtype is asked
typedef struct {
    const char *prefix;     //  "cpu", "cuda": [a-z0-9_], at most 15 characters
    int (*open) (vdgx_backend_t *self, int ordinal, char **err);
    void (*close) (vdgx_backend_t *self);
    const vdgx_backend_ops_t *ops;
    unsigned flags;
    int (*threads) (vdgx_backend_t *self);     //  CPU threads it computes with; NULL: 1
} vdgx_backend_impl_t;

//  Registers a backend (kept for the life of the process; impl must stay valid). Returns -1
//  when the prefix is invalid, taken by another impl, or the registry is full.
int vdgx_backend_register (const vdgx_backend_impl_t *impl);
//  The registered backends (modules loaded so far included), in registration order.
int vdgx_backend_count (void);
const vdgx_backend_impl_t *vdgx_backend_get (int index);

//  A backend module is a shared object libvdgx_<prefix>.so exporting
//      const vdgx_backend_impl_t *vdgx_backend_module_init (const vdgx_backend_host_t *host);
//  which returns its impl (registered by the loader) or NULL with a reason in *err (malloc).
//  Modules reach the host's functions only through this table, so they link no part of
//  vdgx_kernels. The loader looks in $VDGX_BACKEND_PATH (':'-separated folders), then beside
//  the executable, then in <executable>/../<libdir>/vdgx, then the default dlopen search.
//  VDGX_BACKEND_ABI goes up whenever vdgx_backend_ops_t, vdgx_op_t or this table changes
//  layout, so a module built before refuses to load instead of calling the wrong op
//  (2: channel_rmsnorm_silu in the ops table and VDGX_OP_CHANNEL_RMSNORM_SILU).
#define VDGX_BACKEND_ABI 2
typedef struct {
    int abi;                //  VDGX_BACKEND_ABI
    size_t size;            //  sizeof (vdgx_backend_host_t)
    void *(*priv) (vdgx_backend_t *self);
    void (*set_priv) (vdgx_backend_t *self, void *priv);
    void (*set_error) (vdgx_backend_t *self, const char *fmt, ...);
    const float *nf4_values;        //  the 16 NF4 code values (vdgx_quant.h)
} vdgx_backend_host_t;
typedef const vdgx_backend_impl_t *(vdgx_backend_module_init_fn) (const vdgx_backend_host_t *host,
                                                                  char **err);

//  The implementation's private state (set by open, read by the ops).
void *vdgx_backend_priv (vdgx_backend_t *self);
void vdgx_backend_set_priv (vdgx_backend_t *self, void *priv);
void vdgx_backend_set_error (vdgx_backend_t *self, const char *fmt, ...);
//  Whether this backend computes this call itself (it has the op and supports_op agrees);
//  false means vdgx_op_* runs it through the CPU fallback.
bool vdgx_backend_supports (vdgx_backend_t *self, const vdgx_op_desc_t *desc);

//  Tensors owned by a backend.
int vdgx_tensor_alloc (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dtype, int ndim,
                       const int64_t *shape);
void vdgx_tensor_release (vdgx_backend_t *b, vdgx_tensor_t *t);
//  Host f32 <-> device tensor of any float dtype (converting).
int vdgx_tensor_from_f32 (vdgx_backend_t *b, vdgx_tensor_t *t, const float *src);
int vdgx_tensor_to_f32 (vdgx_backend_t *b, const vdgx_tensor_t *t, float *dst);
//  Host bytes of t's dtype (any dtype, e.g. a U8 key mask) copied into t as they are.
int vdgx_tensor_upload (vdgx_backend_t *b, vdgx_tensor_t *t, const void *src);

//  The op wrappers engines call (same semantics as the table above).
int vdgx_op_linear (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_weight_t *w, const vdgx_tensor_t *bias);
int vdgx_op_matmul (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bm);
//  o[B,Lq,H,D] = softmax(q.k^T * scale + bias, masked) . v
//  q [B,Lq,H,D]; k, v [B,Lk,Hkv,D] with H % Hkv == 0: query head h reads kv head h / (H/Hkv)
//  (repeat_interleave, as in HF GQA/MQA). spec NULL = FULL with no mask or bias.
//  Masked keys get probability exactly 0. A query row that sees no key at all gets o = 0
//  (finite; never NaN). Softmax accumulates in f32 (online, blocked; never materialise Lq x Lk
//  per head at once). k and v may be views of the first Lk rows of a longer KV cache: their
//  inner three dims contiguous, the batch stride (equal for k and v) at least Lk*Hkv*D.
int vdgx_op_attention_ex (vdgx_backend_t *b, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                          const vdgx_tensor_t *k, const vdgx_tensor_t *v,
                          const vdgx_attn_spec_t *spec, float scale);
//  The FULL case: key_mask U8 [B,Lk] or NULL, bias F32 [H,Lq,Lk] or NULL.
int vdgx_op_attention (vdgx_backend_t *b, vdgx_tensor_t *o, const vdgx_tensor_t *q, const vdgx_tensor_t *k, const vdgx_tensor_t *v, const vdgx_tensor_t *key_mask, const vdgx_tensor_t *bias, float scale);
//  Whether query row i (key position i + spec->q_offset) sees key j under spec's kind
//  (key_mask not included). The definition every backend follows.
bool vdgx_attn_visible (const vdgx_attn_spec_t *spec, int64_t i, int64_t j);
int vdgx_op_layernorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta, float eps);
int vdgx_op_rmsnorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, float eps);
int vdgx_op_channel_rmsnorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta);
//  silu (channel_rmsnorm (x)): fused where the backend has it (Wan-VAE's norm + activation).
int vdgx_op_channel_rmsnorm_silu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta);
int vdgx_op_modulate (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *shift, const vdgx_tensor_t *scale);
int vdgx_op_gated_residual (vdgx_backend_t *b, vdgx_tensor_t *x, const vdgx_tensor_t *y, const vdgx_tensor_t *gate);
int vdgx_op_gelu_tanh (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x);
int vdgx_op_silu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x);
int vdgx_op_add_scaled (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt, float alpha);
int vdgx_op_mul (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt);
int vdgx_op_affine_clamp (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, float alpha, float beta, float lo, float hi);
int vdgx_op_rope (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *cos, const vdgx_tensor_t *sin, vdgx_rope_layout_t layout);
int vdgx_op_permute (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const int *perm);
int vdgx_op_concat (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt, int dim);
int vdgx_op_slice (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int dim, int64_t start, int64_t len);
int vdgx_op_conv3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int stride [3], const int pad [4]);
int vdgx_op_conv2d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int stride [2], const int pad [4]);
int vdgx_op_upsample2x (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x);
int vdgx_op_cast (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x);
//  p NULL: stride 1, no padding, dilation 1, groups 1.
int vdgx_op_conv1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p);
int vdgx_op_conv_transpose1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p);
int vdgx_op_pad1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int left, int right, vdgx_pad_mode_t mode);
int vdgx_op_snake (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *alpha, const vdgx_tensor_t *beta, bool logscale);
int vdgx_op_unary (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, vdgx_unary_t op, float param);
//  Output length of a conv1d / conv_transpose1d of input length L and kernel K (-1 when the
//  parameters are invalid or the output would be empty).
int64_t vdgx_conv1d_out_len (int64_t L, int64_t K, const vdgx_conv1d_params_t *p);
int64_t vdgx_conv_transpose1d_out_len (int64_t L, int64_t K, const vdgx_conv1d_params_t *p);

//  Weights on a backend: from a host weight (any format), and freed.
int vdgx_weight_to_backend (vdgx_backend_t *b, vdgx_weight_t *dst, const vdgx_weight_t *host);
void vdgx_weight_release (vdgx_backend_t *b, vdgx_weight_t *w);

//  Pooled raw memory of the backend (what vdgx_tensor_alloc uses), and releasing the cached
//  free blocks back to the device (e.g. between jobs of different sizes).
void *vdgx_backend_alloc (vdgx_backend_t *self, size_t bytes);
void vdgx_backend_free (vdgx_backend_t *self, void *ptr);
void vdgx_backend_trim (vdgx_backend_t *self);
//  Threads of a CPU backend ("cpu" uses all cores, "cpu:N" N threads); 1 for other backends.
int vdgx_backend_threads (vdgx_backend_t *self);

void vdgx_backend_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
