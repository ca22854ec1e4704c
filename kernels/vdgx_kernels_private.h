/*  vdgx_kernels_private.h - helpers shared inside kernels/ (not part of the public contract). */
#ifndef VDGX_KERNELS_PRIVATE_H_INCLUDED
#define VDGX_KERNELS_PRIVATE_H_INCLUDED

#include "vdgx_backend.h"
#include "vdgx_ckpt.h"
#include "vdgx_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

bool vdgx_dtype_is_float (vdgx_dtype_t dtype);
const float *vdgx_e4m3_table (void);
void vdgx_tensor_test (bool verbose);

//  Printf into a new string (for *err results).
char *vdgx_kstrdupf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

typedef struct _vdgx_cpu_pool_t vdgx_cpu_pool_t;
//  -1 with "<op>: the CPU backend computes in F32" unless every non-NULL ts [i] is F32.
int vdgx_cpu_check_f32 (vdgx_backend_t *b, const char *op, int n, const vdgx_tensor_t *const *ts);
//  CPU ops that live in their own files under cpu/ (the ops table is in vdgx_cpu.c).
int vdgx_cpu_attention (vdgx_backend_t *b, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                        const vdgx_tensor_t *k, const vdgx_tensor_t *v,
                        const vdgx_attn_spec_t *spec, float scale);
int vdgx_cpu_conv1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w,
                     const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p);
int vdgx_cpu_conv_transpose1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                               const vdgx_tensor_t *w, const vdgx_tensor_t *bias,
                               const vdgx_conv1d_params_t *p);
int vdgx_cpu_pad1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int left, int right,
                    vdgx_pad_mode_t mode);
int vdgx_cpu_snake (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                    const vdgx_tensor_t *alpha, const vdgx_tensor_t *beta, bool logscale);
int vdgx_cpu_unary (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, vdgx_unary_t op,
                    float param);

//  a.b over n floats: two 8-wide accumulators over the multiples of 16, a plain loop for the
//  tail. Inlined into callers compiled for AVX2 too.
typedef float vdgx_v8_t __attribute__ ((vector_size (32)));
static inline __attribute__ ((always_inline)) float
vdgx_dot_f32 (const float *a, const float *b, int64_t n)
{
    vdgx_v8_t acc0 = { 0 }, acc1 = { 0 };
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        vdgx_v8_t a0, a1, b0, b1;
        __builtin_memcpy (&a0, a + k, 32);
        __builtin_memcpy (&a1, a + k + 8, 32);
        __builtin_memcpy (&b0, b + k, 32);
        __builtin_memcpy (&b1, b + k + 8, 32);
        acc0 += a0 * b0;
        acc1 += a1 * b1;
    }
    acc0 += acc1;
    float dot = ((acc0 [0] + acc0 [4]) + (acc0 [1] + acc0 [5])) + ((acc0 [2] + acc0 [6]) + (acc0 [3] + acc0 [7]));
    for (; k < n; k++)
        dot += a [k] * b [k];
    return dot;
}

//  Test inputs: xorshift64 over *state, uniform in [-1, 1), never exactly 0.
static inline float
vdgx_test_randf (uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return 2.0f * (float) ((*state >> 40) + 1) / 16777217.0f - 1.0f;
}
//  The built-in CPU backend.
const vdgx_backend_impl_t *vdgx_cpu_backend_impl (void);
void vdgx_cpu_test (bool verbose);
void vdgx_cpu_attn_test (bool verbose);
void vdgx_cpu_ops1d_test (bool verbose);
int vdgx_cpu_threads (vdgx_backend_t *b);
vdgx_cpu_pool_t *vdgx_cpu_pool_of (vdgx_backend_t *b);

//  Worker pool: runs fn(ctx, i) for i in [0, n) over the pool's threads (the caller joins in).
//  Not reentrant: fn must not call vdgx_cpu_pool_run on the same pool.
vdgx_cpu_pool_t *vdgx_cpu_pool_new (int threads);
void vdgx_cpu_pool_destroy (vdgx_cpu_pool_t **self_p);
int vdgx_cpu_pool_threads (vdgx_cpu_pool_t *self);
void vdgx_cpu_pool_run (vdgx_cpu_pool_t *self, int64_t n, void (*fn) (void *ctx, int64_t i), void *ctx);

//  C[M,N] (ldc) = A[M,K] (lda) . op(B) (+ beta C): trans_b selects B[N,K] (ldb) instead of
//  B[K,N]. Multithreaded over pool when OpenBLAS is absent (OpenBLAS has its own threads).
void vdgx_sgemm (vdgx_cpu_pool_t *pool, bool trans_b, int64_t M, int64_t N, int64_t K,
                 const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                 float *C, int64_t ldc);
//  The portable blocked sgemm (always compiled, so it is tested against the plain loop even
//  when OpenBLAS is present).
void vdgx_sgemm_portable (vdgx_cpu_pool_t *pool, bool trans_b, int64_t M, int64_t N, int64_t K,
                          const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                          float *C, int64_t ldc);
bool vdgx_sgemm_is_openblas (void);

//  Instruction-set levels of the CPU kernels, lowest first. vdgx_cpu_isa: what this CPU has
//  (cpuid), capped by VDGX_CPU_ISA=generic|avx2|avx512|avx512bf16 in the environment (read
//  once); the quantized linears take their path from it.
typedef enum { VDGX_CPU_ISA_GENERIC, VDGX_CPU_ISA_AVX2, VDGX_CPU_ISA_AVX512, VDGX_CPU_ISA_AVX512BF16 } vdgx_cpu_isa_t;
vdgx_cpu_isa_t vdgx_cpu_isa (void);
const char *vdgx_cpu_isa_name (vdgx_cpu_isa_t isa);

//  Linear on a quantized (non-F32) weight computed on its packed codes (vdgx_cpu_qgemm.c):
//  y[M,N] = x[M,K] . W^T (+ bias[N]). Returns 0 when done, 1 when this CPU has no such path
//  (no AVX2, VDGX_CPU_ISA=generic, VDGX_CPU_EXACT=1, F32 weight: the caller dequantizes
//  panels), -1 when out of memory.
int vdgx_cpu_qlinear (vdgx_cpu_pool_t *pool, float *y, const float *x, int64_t M,
                      const vdgx_weight_t *w, const float *bias);
bool vdgx_qgemm_available (void);
//  The path vdgx_cpu_qlinear takes for w now ("avx2", "avx512", "avx512bf16"), NULL for none.
const char *vdgx_qgemm_path (const vdgx_weight_t *w);
//  Tests set this to take the portable route (the exact f32 oracle) instead.
extern bool vdgx_qgemm_disable;
//  1: x rounded to bf16 (the default), 0: x = hi + lo (VDGX_CPU_BF16_ACT=0), -1: unread.
extern int vdgx_qgemm_round_x;
//  Tests and benchmarks: a vdgx_cpu_isa_t level to cap the quantized linears at (never above
//  vdgx_cpu_isa), -1: none.
extern int vdgx_qgemm_isa;
void vdgx_qgemm_test (bool verbose);

//  Attention arguments (vdgx_cpu_attn_fast.c): o[B,Lq,H,D] from q[B,Lq,H,D], k/v[B,Lk,Hkv,D]
//  (batches kv_bstride elements apart), the mask kind of spec, key_mask U8 [B,Lk] or NULL,
//  bias F32 [H,Lq,Lk] or NULL (the spec's tensors, as host pointers). f32.
typedef struct {
    float *o;
    const float *q, *k, *v, *bias;
    const uint8_t *key_mask;
    int64_t B, Lq, Lk, H, Hkv, D, kv_bstride;
    const vdgx_attn_spec_t *spec;       //  kind, q_offset, window, block (not NULL)
    float scale;
} vdgx_attn_args_t;
//  Keys query i sees under the spec's kind (before key_mask): [*lo, *hi) within [0, Lk).
void vdgx_attn_range (const vdgx_attn_spec_t *spec, int64_t Lk, int64_t i, int64_t *lo, int64_t *hi);
//  Blocked-GEMM attention with an online softmax; returns 1 (nothing done) when this CPU or
//  shape has no fast path (no AVX-512, D % 16), and the caller runs the reference.
int vdgx_cpu_attention_fast (vdgx_cpu_pool_t *pool, const vdgx_attn_args_t *a);
//  Tests set this to run the reference instead.
extern bool vdgx_attn_fast_disable;
void vdgx_cpu_attn_fast_test (bool verbose);

//  Vector paths of elementwise activations (vdgx_cpu_ew_fast.c): y[n] = f(x[n]). Returns
//  false (nothing done) when this CPU has none (no AVX-512) or vdgx_ew_fast_disable is set:
//  the caller runs its scalar reference.
typedef enum { VDGX_CPU_EW_GELU_TANH, VDGX_CPU_EW_SILU } vdgx_cpu_ew_t;
bool vdgx_cpu_ew_fast (vdgx_cpu_ew_t kind, float *y, const float *x, int64_t n);
//  Tests set this to run the reference instead.
extern bool vdgx_ew_fast_disable;
void vdgx_cpu_ew_fast_test (bool verbose);

//  Convolution geometry of one image (channels first; 2D convs have T = kt = To = 1).
typedef struct {
    int64_t Cin, T, H, W, kt, kh, kw, To, Ho, Wo;
    int st, sh, sw, pt, ph, pw;     //  front / top / left pads (back ones only bound To/Ho/Wo)
} vdgx_conv_geom_t;
//  col[Cin*kt*kh*kw, np] of x[Cin,T,H,W] for output positions [p0, p0 + np), which must be
//  whole output rows (p0 and np multiples of Wo); padding reads as 0 (vdgx_cpu_conv.c).
void vdgx_cpu_im2col (vdgx_cpu_pool_t *pool, const vdgx_conv_geom_t *g, const float *x, float *col,
                      int64_t p0, int64_t np);
//  Winograd F(4x4,3x3) convolution of one image (3x3 spatial, any kt, stride 1, "same" pads;
//  vdgx_cpu_wino.c): the scratch floats it needs, or 0 when the geometry does not qualify;
//  then the conv itself (temporal taps on padding frames are skipped, not multiplied).
size_t vdgx_cpu_winograd_floats (const vdgx_conv_geom_t *g, int64_t Cout);
void vdgx_cpu_winograd (vdgx_cpu_pool_t *pool, const vdgx_conv_geom_t *g, int64_t Cout, const float *x,
                        const float *w, const float *bias, float *y, float *scratch);
//  Tests set these to run im2col for every convolution / the scalar Winograd transforms.
extern bool vdgx_winograd_disable;
extern bool vdgx_wino_vec_disable;
void vdgx_cpu_wino_test (bool verbose);
//  Direct double-precision convolution of one image (test reference, vdgx_cpu_test.c):
//  ref[co, ot, oh, ow] = bias[co] (0 when NULL) + sum x w, mag = |bias| + sum |x w|.
void vdgx_cpu_conv_ref (const vdgx_conv_geom_t *g, int64_t Cout, const float *x, const float *w,
                        const float *bias, double *ref, double *mag);
//  y[r, 0..P) = v[r] for every row r < rows.
void vdgx_cpu_fill_rows (vdgx_cpu_pool_t *pool, float *y, const float *v, int64_t rows, int64_t P);
//  Tests set this to run the portable sgemm's generic (non-AVX2) tile on x86-64 too.
extern bool vdgx_sgemm_force_generic;

//  JSON reader (strict RFC 8259 subset large enough for safetensors headers and index files).
typedef enum { VDGX_JSON_NULL, VDGX_JSON_BOOL, VDGX_JSON_NUMBER, VDGX_JSON_STRING,
               VDGX_JSON_ARRAY, VDGX_JSON_OBJECT } vdgx_json_type_t;
typedef struct _vdgx_json_t vdgx_json_t;
struct _vdgx_json_t {
    vdgx_json_type_t type;
    bool boolean;
    double number;
    bool is_integer;            //  number written without fraction/exponent and fits int64
    int64_t integer;
    char *string;               //  NUL-terminated (strings containing \u0000 are rejected)
    size_t count;               //  array / object entries
    char **keys;                //  object keys
    vdgx_json_t **items;        //  array items / object values
};
//  Parses text[0..len); NULL with *err on malformed input, duplicate keys or nesting > 64.
vdgx_json_t *vdgx_json_parse (const char *text, size_t len, char **err);
void vdgx_json_destroy (vdgx_json_t **self_p);
vdgx_json_t *vdgx_json_get (const vdgx_json_t *obj, const char *key);
void vdgx_json_test (bool verbose);

//  PyTorch .pth reader (used by vdgx_ckpt). Fills a tensor list; names are malloced.
typedef struct {
    vdgx_ckpt_tensor_t *tensors;
    size_t count;
} vdgx_pth_result_t;
bool vdgx_pth_detect (const void *buf, size_t size);
int vdgx_pth_parse (const uint8_t *buf, size_t size, vdgx_pth_result_t *out, char **err);
void vdgx_pth_result_free (vdgx_pth_result_t *r);
void vdgx_pth_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
