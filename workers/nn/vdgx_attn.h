/*  vdgx_attn.h - attention for the model toolkit: rotary tables (Wan's 3-axis complex form,
    1-D / n-D rotary with a theta or learnable frequency bands, interleaved or half layout),
    the attention module (self / cross, MHA / GQA / MQA, q/k norms per head or across
    heads, masks through vdgx_attn_spec_t) and a KV cache that can be appended to,
    truncated and have its oldest rows dropped.

    Shapes: x [B,L,dim]; q [B,L,H,D]; k, v [B,L,Hkv,D] with H % Hkv == 0 (query head h reads
    kv head h / (H/Hkv)). Masks (vdgx_backend.h): FULL, CAUSAL, SLIDING (window), BLOCK_CAUSAL
    (chunks of `block` keys), an optional U8 key-padding mask [B,Lk] and an F32 bias [H,Lq,Lk].
*/
#ifndef VDGX_ATTN_H_INCLUDED
#define VDGX_ATTN_H_INCLUDED

#include "vdgx_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

//  ---------------------------------------------------------------------------------------
//  Rotary position embedding tables: angle[l, j] = coord[l, axis[j]] * freq[j] for the
//  D/2 rotated pairs j; cos/sin F32 [L, D/2] on the backend.

typedef struct {
    vdgx_rope_layout_t layout;      //  INTERLEAVED pairs (2j, 2j+1) (Wan, MAGI) or HALF (j, j+D/2)
    int64_t len, pairs;
    vdgx_tensor_t cos, sin;
} vdgx_rope_t;

//  coords [len, naxes] (positions, fractional allowed), axis [pairs] (which coordinate pair j
//  rotates by; NULL = axis 0), freq [pairs] (radians per unit). Every variant is this table:
//  Wan's 3-axis complex rotary (vdgx_rope_wan3d), 1-D rotary with a theta
//  (vdgx_rope_theta_freqs; LTX's half/split layout is VDGX_ROPE_HALF), LTX's fractional
//  (f, h, w) positions, and learnable bands (MAGI-1: freq = the checkpoint's band values).
int vdgx_rope_build (vdgx_backend_t *b, vdgx_rope_t *r, vdgx_rope_layout_t layout, int64_t len,
                     int naxes, const double *coords, int64_t pairs, const int *axis,
                     const double *freq, char **err);
//  Frequencies theta^(-2i/dim) for i < dim/2 (the usual 1-D rotary; dim = rotated width).
void vdgx_rope_theta_freqs (double theta, int64_t dim, double *freq);
//  Wan 2.1's 3-axis table over a (frames, height, width) token grid, f-major: head_dim/2
//  pairs split [c - 2(c/3), c/3, c/3] between the axes, each with rope_params' theta 10000
//  frequencies of its own width.
int vdgx_rope_wan3d (vdgx_backend_t *b, vdgx_rope_t *r, int64_t head_dim, int64_t gf,
                     int64_t gh, int64_t gw, char **err);
//  y = rope(x) for x [B,L,H,D] with D = 2 * pairs and L = len.
int vdgx_rope_apply (vdgx_backend_t *b, const vdgx_rope_t *r, vdgx_tensor_t *y, const vdgx_tensor_t *x);
void vdgx_rope_release (vdgx_backend_t *b, vdgx_rope_t *r);

//  ---------------------------------------------------------------------------------------
//  KV cache: k, v [B, cap, Hkv, D] with a length.

typedef struct _vdgx_kvcache_t vdgx_kvcache_t;

vdgx_kvcache_t *vdgx_kvcache_new (vdgx_backend_t *b, vdgx_dtype_t dtype, int64_t batch,
                                  int64_t cap, int64_t kv_heads, int64_t head_dim, char **err);
void vdgx_kvcache_destroy (vdgx_kvcache_t **self_p);
int64_t vdgx_kvcache_len (vdgx_kvcache_t *self);
int64_t vdgx_kvcache_capacity (vdgx_kvcache_t *self);
//  Appends k, v [B, n, Hkv, D] after the current rows; -1 when it would exceed the capacity.
int vdgx_kvcache_append (vdgx_kvcache_t *self, const vdgx_tensor_t *k, const vdgx_tensor_t *v);
//  Keeps the first len rows (len <= current length).
int vdgx_kvcache_truncate (vdgx_kvcache_t *self, int64_t len);
//  Drops the first n rows (n <= current length) and moves the others to the front, in order
//  and unchanged (attention over them gives the same numbers): a cache that only ever needs
//  its last rows stays a fixed size. Moves in pieces of at most n rows, so no piece's source
//  and destination overlap on any backend; the cost is one copy of the kept rows.
int vdgx_kvcache_drop_front (vdgx_kvcache_t *self, int64_t n);
//  o = attention of q [B, Lq, H, D] (the last Lq positions) over the cached rows: spec's kind,
//  window, block, key_mask [B, len] and bias apply; q_offset is set to len - Lq.
int vdgx_kvcache_attend (vdgx_kvcache_t *self, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                         const vdgx_attn_spec_t *spec, float scale);
//  o = full attention of q [1, Lq, H, D] over the cached rows [from, from + n) only (batch-1
//  caches): a query chunk that sees a window of earlier chunks (MAGI-1's kv ranges).
int vdgx_kvcache_attend_span (vdgx_kvcache_t *self, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                              int64_t from, int64_t n, float scale);

//  ---------------------------------------------------------------------------------------
//  The attention module.

typedef struct {
    int64_t dim, heads, kv_heads, head_dim;
    float scale;                    //  logits scale (1/sqrt(head_dim) usually; T5: 1)
    vdgx_linear_t q, k, v, o;       //  q: [H*D, dim]; k, v: [Hkv*D, kv_dim]; o: [dim, H*D]
    vdgx_norm_t q_norm, k_norm;     //  optional (no data + dim 0 = none); dim D = per head,
                                    //  dim H*D (Hkv*D for k) = across heads
    bool has_q_norm, has_k_norm;
} vdgx_attn_t;

//  Fills the geometry (weights are loaded by the caller: vdgx_wsrc_linear / vdgx_linear_*).
void vdgx_attn_init (vdgx_attn_t *a, int64_t dim, int64_t heads, int64_t kv_heads, int64_t head_dim);
void vdgx_attn_release (vdgx_backend_t *b, vdgx_attn_t *a);

//  One projection: out = rope(norm(lin(x))) with the steps that are given (norm, rope NULL =
//  skipped); tmp is scratch of out's size. out, tmp [B, L, n] (viewed as [B, L, heads, D]).
int vdgx_attn_project (vdgx_backend_t *b, const vdgx_linear_t *lin, const vdgx_norm_t *norm,
                       const vdgx_rope_t *rope, int64_t heads, vdgx_tensor_t *out,
                       vdgx_tensor_t *tmp, const vdgx_tensor_t *x);
//  o [B,Lq,H,D] = attention(q, k, v) with the module's scale.
int vdgx_attn_core (vdgx_backend_t *b, const vdgx_attn_t *a, vdgx_tensor_t *o,
                    const vdgx_tensor_t *q, const vdgx_tensor_t *k, const vdgx_tensor_t *v,
                    const vdgx_attn_spec_t *spec);

//  Gated attention (LTX-2.3): o [B,L,H,D] *= factor * sigmoid (logits [B,L,H]), one gate per
//  head (e.g. factor 2 with logits = to_gate_logits (query input)). Allocates two temporaries.
int vdgx_attn_head_gate (vdgx_backend_t *b, vdgx_tensor_t *o, const vdgx_tensor_t *logits,
                         float factor);

//  The whole module (allocates its temporaries from the backend's pool):
//  y [B,Lq,dim] = o(attention(q(x), k(ctx), v(ctx))) with ctx = x when NULL (self-attention),
//  rope applied to q and k when given (rope_k NULL = rope_q; tables of the q / k lengths).
//  With a cache, the new k/v rows are appended first and q attends to every cached row.
int vdgx_attn_forward (vdgx_backend_t *b, const vdgx_attn_t *a, vdgx_tensor_t *y,
                       const vdgx_tensor_t *x, const vdgx_tensor_t *ctx, const vdgx_rope_t *rope_q,
                       const vdgx_rope_t *rope_k, const vdgx_attn_spec_t *spec,
                       vdgx_kvcache_t *cache, char **err);

void vdgx_attn_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
