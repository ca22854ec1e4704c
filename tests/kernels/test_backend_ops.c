/*  test_backend_ops [-v] [-b DEVICE]... [-o OP] [--require] - every op of vdgx_backend.h, over
    shape classes, weight formats and mask kinds, on each backend given against the CPU
    reference (in the spirit of ggml's test-backend-ops).

    For each device and activation dtype (F32, BF16) every case makes random non-zero inputs
    (rounded to the activation dtype, so both sides see identical values), runs the op on the
    device and on the "cpu" backend, and compares the device output with the normalised
    mean squared error NMSE = sum (dev - cpu)^2 / sum cpu^2 against the case's tolerance:
        F32 activations   1e-9 (1e-8 for reductions over many terms; 0 difference is
                          expected from a backend that runs the CPU fallback)
        BF16 activations  1e-4 (bf16 output rounding alone is about 4e-6), attention 5e-4
                          (bf16 P.V), linear 3e-4 (bf16 dequantized weights), FP8 weights
                          7e-3 (cuBLASLt quantizes activations to E4M3 too), NVFP4 7e-2
    A line per check: "RESULT ops <device>/<dtype>/<op>/<case> err=<nmse> tol=<tol> PASS|FAIL"
    (the format tests/gpu/run.sh collects), and per device which ops it computes itself and
    which go through the CPU fallback.

    Every op of vdgx_op_t must have a case ("RESULT ops coverage/<op> ... FAIL" otherwise).
    Devices: -b options, else $VDGX_OPS_DEVICES (comma-separated), else "fbtest:0,cuda:0".
    An absent device is skipped with its reason; exit 77 when none was present (ctest SKIP)
    and --require was given, 1 on any failure, else 0.
*/
#include "vdgx_backend.h"
#include "vdgx_quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { IN_NONE = 0, IN_ACT, IN_F32, IN_MASK } s_kind_t;

typedef struct {
    s_kind_t kind;
    int ndim;
    int64_t shape [6];
    float scale;                //  inputs uniform in +-scale (never within scale/1000 of 0)
} s_in_t;

typedef struct {
    vdgx_op_t op;
    const char *name;
    s_in_t in [5];
    int ondim;
    int64_t oshape [6];
    bool out_f32;               //  output F32 whatever the activation dtype (cast)
    float f [4];
    int i [8];
    vdgx_attn_spec_t attn;
    vdgx_conv1d_params_t c1;
    vdgx_wfmt_t wfmt;           //  linear: weight [oshape last, in[0] last]
    double tol32, tol16;        //  0: the defaults 1e-9 / 1e-4
} s_case_t;

//  The table leaves trailing fields to their zero defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define A(...) { IN_ACT, __VA_ARGS__ }
#define F(...) { IN_F32, __VA_ARGS__ }
#define M(...) { IN_MASK, __VA_ARGS__ }
#define S(...) { __VA_ARGS__ }

static const s_case_t s_cases [] = {
    //  linear: every weight format; a single row (gemv), odd rows, bias or none
    { VDGX_OP_LINEAR, "f32/M1", { A (2, S (1, 128), 1) }, 2, { 1, 96 }, .wfmt = VDGX_WFMT_F32, .tol32 = 1e-8 },
    { VDGX_OP_LINEAR, "f32/M37+b", { A (2, S (37, 128), 1), F (1, S (96), 1) }, 2, { 37, 96 }, .wfmt = VDGX_WFMT_F32, .tol32 = 1e-8 },
    { VDGX_OP_LINEAR, "bf16/M37+b", { A (2, S (37, 128), 1), F (1, S (96), 1) }, 2, { 37, 96 }, .wfmt = VDGX_WFMT_BF16, .tol32 = 3e-4, .tol16 = 3e-4 },
    { VDGX_OP_LINEAR, "f16/M5", { A (3, S (1, 5, 128), 1) }, 3, { 1, 5, 96 }, .wfmt = VDGX_WFMT_F16, .tol32 = 3e-4, .tol16 = 3e-4 },
    { VDGX_OP_LINEAR, "fp8/M37", { A (2, S (37, 128), 1) }, 2, { 37, 96 }, .wfmt = VDGX_WFMT_FP8_E4M3, .tol32 = 7e-3, .tol16 = 7e-3 },
    { VDGX_OP_LINEAR, "nvfp4/M37", { A (2, S (37, 128), 1) }, 2, { 37, 96 }, .wfmt = VDGX_WFMT_NVFP4, .tol32 = 7e-2, .tol16 = 7e-2 },
    { VDGX_OP_LINEAR, "mxfp4/M1+b", { A (2, S (1, 128), 1), F (1, S (96), 1) }, 2, { 1, 96 }, .wfmt = VDGX_WFMT_MXFP4, .tol32 = 3e-4, .tol16 = 3e-4 },
    { VDGX_OP_LINEAR, "nf4/M37", { A (2, S (37, 128), 1) }, 2, { 37, 96 }, .wfmt = VDGX_WFMT_NF4, .tol32 = 3e-4, .tol16 = 3e-4 },
    //  matmul
    { VDGX_OP_MATMUL, "B2_33x40x17", { A (3, S (2, 33, 40), 1), A (3, S (2, 40, 17), 1) }, 3, { 2, 33, 17 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_MATMUL, "B1_64x64x64", { A (3, S (1, 64, 64), 1), A (3, S (1, 64, 64), 1) }, 3, { 1, 64, 64 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    //  attention: q [B,Lq,H,D], k/v [B,Lk,Hkv,D], mask [B,Lk], bias [H,Lq,Lk]
    { VDGX_OP_ATTENTION, "full/D64_Lq70_Lk90", { A (4, S (2, 70, 2, 64), 2), A (4, S (2, 90, 2, 64), 2), A (4, S (2, 90, 2, 64), 1) },
      4, { 2, 70, 2, 64 }, .f = { 0.125f }, .attn = { .kind = VDGX_ATTN_FULL }, .tol32 = 1e-8, .tol16 = 5e-4 },
    { VDGX_OP_ATTENTION, "full+mask+bias/D40", { A (4, S (2, 33, 3, 40), 2), A (4, S (2, 41, 3, 40), 2), A (4, S (2, 41, 3, 40), 1),
      M (2, S (2, 41)), F (3, S (3, 33, 41), 2) }, 4, { 2, 33, 3, 40 }, .f = { 0.158f }, .attn = { .kind = VDGX_ATTN_FULL }, .tol32 = 1e-8, .tol16 = 5e-4 },
    { VDGX_OP_ATTENTION, "causal/gqa2_D64", { A (4, S (1, 130, 4, 64), 2), A (4, S (1, 130, 2, 64), 2), A (4, S (1, 130, 2, 64), 1) },
      4, { 1, 130, 4, 64 }, .f = { 0.125f }, .attn = { .kind = VDGX_ATTN_CAUSAL }, .tol32 = 1e-8, .tol16 = 5e-4 },
    { VDGX_OP_ATTENTION, "causal-kvcache/mqa_D128", { A (4, S (2, 3, 4, 128), 2), A (4, S (2, 150, 1, 128), 2), A (4, S (2, 150, 1, 128), 1),
      M (2, S (2, 150)) }, 4, { 2, 3, 4, 128 }, .f = { 0.088f }, .attn = { .kind = VDGX_ATTN_CAUSAL, .q_offset = 147 }, .tol32 = 1e-8, .tol16 = 5e-4 },
    { VDGX_OP_ATTENTION, "sliding/gqa4_D64", { A (4, S (1, 100, 8, 64), 2), A (4, S (1, 100, 2, 64), 2), A (4, S (1, 100, 2, 64), 1) },
      4, { 1, 100, 8, 64 }, .f = { 0.125f }, .attn = { .kind = VDGX_ATTN_SLIDING, .window = 17 }, .tol32 = 1e-8, .tol16 = 5e-4 },
    { VDGX_OP_ATTENTION, "block-causal/D48", { A (4, S (1, 70, 2, 48), 2), A (4, S (1, 90, 2, 48), 2), A (4, S (1, 90, 2, 48), 1),
      { IN_NONE }, F (3, S (2, 70, 90), 1) }, 4, { 1, 70, 2, 48 }, .f = { 0.144f },
      .attn = { .kind = VDGX_ATTN_BLOCK_CAUSAL, .q_offset = 20, .block = 16 }, .tol32 = 1e-8, .tol16 = 5e-4 },
    //  norms
    { VDGX_OP_LAYERNORM, "affine/7x333", { A (2, S (7, 333), 3), A (1, S (333), 1), A (1, S (333), 1) }, 2, { 7, 333 }, .f = { 1e-6f } },
    { VDGX_OP_LAYERNORM, "plain/3x1536", { A (2, S (3, 1536), 3) }, 2, { 3, 1536 }, .f = { 1e-5f } },
    { VDGX_OP_RMSNORM, "gamma/5x256", { A (3, S (1, 5, 256), 2), A (1, S (256), 1) }, 3, { 1, 5, 256 }, .f = { 1e-6f } },
    { VDGX_OP_RMSNORM, "plain/9x64", { A (2, S (9, 64), 2) }, 2, { 9, 64 }, .f = { 1e-6f } },
    { VDGX_OP_CHANNEL_RMSNORM, "N2_C16_S35", { A (3, S (2, 16, 35), 2), A (1, S (16), 1), A (1, S (16), 1) }, 3, { 2, 16, 35 } },
    //  Wan-VAE widths (96, 384) and one past the CUDA kernel's register-cached widths (700)
    { VDGX_OP_CHANNEL_RMSNORM, "N1_C96_S70", { A (5, S (1, 96, 2, 5, 7), 2), A (1, S (96), 1) }, 5, { 1, 96, 2, 5, 7 } },
    { VDGX_OP_CHANNEL_RMSNORM, "N1_C700_S33", { A (3, S (1, 700, 33), 2), A (1, S (700), 1) }, 3, { 1, 700, 33 }, .tol32 = 1e-8 },
    { VDGX_OP_CHANNEL_RMSNORM_SILU, "N2_C16_S35", { A (3, S (2, 16, 35), 2), A (1, S (16), 1), A (1, S (16), 1) }, 3, { 2, 16, 35 } },
    { VDGX_OP_CHANNEL_RMSNORM_SILU, "N1_C96_S70", { A (5, S (1, 96, 2, 5, 7), 2), A (1, S (96), 1) }, 5, { 1, 96, 2, 5, 7 } },
    { VDGX_OP_CHANNEL_RMSNORM_SILU, "N2_C384_S41", { A (3, S (2, 384, 41), 2), A (1, S (384), 1), A (1, S (384), 1) }, 3, { 2, 384, 41 },
      .tol32 = 1e-8 },
    { VDGX_OP_CHANNEL_RMSNORM_SILU, "N1_C700_S33", { A (3, S (1, 700, 33), 2), A (1, S (700), 1) }, 3, { 1, 700, 33 }, .tol32 = 1e-8 },
    //  adaLN and residuals
    { VDGX_OP_MODULATE, "B2_L9_C64", { A (3, S (2, 9, 64), 2), A (2, S (2, 64), 1), A (2, S (2, 64), 1) }, 3, { 2, 9, 64 } },
    { VDGX_OP_GATED_RESIDUAL, "B2_L9_C64", { A (3, S (2, 9, 64), 2), A (3, S (2, 9, 64), 2), A (2, S (2, 64), 1) }, 0 },
    //  elementwise
    { VDGX_OP_GELU_TANH, "1001", { A (1, S (1001), 4) }, 1, { 1001 } },
    { VDGX_OP_SILU, "7x129", { A (2, S (7, 129), 4) }, 2, { 7, 129 } },
    { VDGX_OP_UNARY, "leaky0.1/1001", { A (1, S (1001), 4) }, 1, { 1001 }, .i = { VDGX_UNARY_LEAKY_RELU }, .f = { 0.1f } },
    { VDGX_OP_UNARY, "gelu-erf/1001", { A (1, S (1001), 4) }, 1, { 1001 }, .i = { VDGX_UNARY_GELU_ERF } },
    { VDGX_OP_UNARY, "tanh/1001", { A (1, S (1001), 4) }, 1, { 1001 }, .i = { VDGX_UNARY_TANH } },
    { VDGX_OP_UNARY, "sigmoid/1001", { A (1, S (1001), 4) }, 1, { 1001 }, .i = { VDGX_UNARY_SIGMOID } },
    { VDGX_OP_ADD_SCALED, "same/9x64", { A (2, S (9, 64), 1), A (2, S (9, 64), 1) }, 2, { 9, 64 }, .f = { -0.7f } },
    { VDGX_OP_ADD_SCALED, "broadcast/9x64", { A (2, S (9, 64), 1), A (1, S (64), 1) }, 2, { 9, 64 }, .f = { 2.5f } },
    { VDGX_OP_MUL, "broadcast/5x3x7", { A (3, S (5, 3, 7), 1), A (2, S (3, 7), 1) }, 3, { 5, 3, 7 } },
    { VDGX_OP_AFFINE_CLAMP, "1001", { A (1, S (1001), 3) }, 1, { 1001 }, .f = { 1.5f, 0.25f, -1.0f, 1.0f } },
    { VDGX_OP_ROPE, "interleaved/B2_L9_H3_D16", { A (4, S (2, 9, 3, 16), 1), F (2, S (9, 8), 1), F (2, S (9, 8), 1) }, 4, { 2, 9, 3, 16 },
      .i = { VDGX_ROPE_INTERLEAVED } },
    { VDGX_OP_ROPE, "half/B1_L5_H2_D32", { A (4, S (1, 5, 2, 32), 1), F (2, S (5, 16), 1), F (2, S (5, 16), 1) }, 4, { 1, 5, 2, 32 },
      .i = { VDGX_ROPE_HALF } },
    //  layout
    { VDGX_OP_PERMUTE, "0213/2x3x4x5", { A (4, S (2, 3, 4, 5), 1) }, 4, { 2, 4, 3, 5 }, .i = { 0, 2, 1, 3 } },
    { VDGX_OP_PERMUTE, "3102/2x3x4x5", { A (4, S (2, 3, 4, 5), 1) }, 4, { 5, 3, 2, 4 }, .i = { 3, 1, 0, 2 } },
    { VDGX_OP_CONCAT, "dim1", { A (3, S (2, 3, 5), 1), A (3, S (2, 4, 5), 1) }, 3, { 2, 7, 5 }, .i = { 1 } },
    { VDGX_OP_SLICE, "dim2", { A (3, S (2, 3, 11), 1) }, 3, { 2, 3, 4 }, .i = { 2, 5, 4 } },
    { VDGX_OP_CAST, "to-f32/333", { A (1, S (333), 3) }, 1, { 333 }, .out_f32 = true, .tol16 = 1e-12 },
    //  convolutions (x [N,Cin,...], w [Cout,Cin,...], bias [Cout])
    { VDGX_OP_CONV3D, "k3_causal", { A (5, S (1, 4, 3, 6, 5), 1), A (5, S (6, 4, 3, 3, 3), 0.3f), A (1, S (6), 1) }, 5, { 1, 6, 3, 6, 5 },
      .i = { 1, 1, 1, 2, 0, 1, 1 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_CONV2D, "k3_s2", { A (4, S (2, 3, 9, 8), 1), A (4, S (5, 3, 3, 3), 0.3f) }, 4, { 2, 5, 5, 4 },
      .i = { 2, 2, 1, 1, 1, 1 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_UPSAMPLE2X, "2x3x5x4", { A (4, S (2, 3, 5, 4), 1) }, 4, { 2, 3, 10, 8 } },
    { VDGX_OP_CONV1D, "k7_same+b", { A (3, S (2, 8, 50), 1), A (3, S (12, 8, 7), 0.3f), A (1, S (12), 1) }, 3, { 2, 12, 50 },
      .c1 = { .pad_left = 3, .pad_right = 3 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_CONV1D, "dil5_groups2", { A (3, S (1, 8, 40), 1), A (3, S (6, 4, 3), 0.3f) }, 3, { 1, 6, 40 },
      .c1 = { .pad_left = 5, .pad_right = 5, .dilation = 5, .groups = 2 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_CONV1D, "depthwise-fir-down2", { A (3, S (1, 6, 61), 1), A (3, S (6, 1, 12), 0.3f) }, 3, { 1, 6, 31 },
      .c1 = { .stride = 2, .pad_left = 5, .pad_right = 6, .groups = 6 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_CONV_TRANSPOSE1D, "k16_s8+b", { A (3, S (1, 16, 20), 1), A (3, S (16, 8, 16), 0.3f), A (1, S (8), 1) }, 3, { 1, 8, 160 },
      .c1 = { .stride = 8, .pad_left = 4, .pad_right = 4 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_CONV_TRANSPOSE1D, "depthwise-up2", { A (3, S (2, 6, 25), 1), A (3, S (6, 1, 12), 0.3f) }, 3, { 2, 6, 60 },
      .c1 = { .stride = 2, .groups = 6 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_CONV_TRANSPOSE1D, "outpad_dil2_groups2", { A (3, S (1, 4, 13), 1), A (3, S (4, 3, 5), 0.3f) }, 3, { 1, 6, 29 },
      .c1 = { .stride = 2, .pad_left = 2, .pad_right = 3, .dilation = 2, .groups = 2, .output_padding = 1 }, .tol32 = 1e-8, .tol16 = 2e-4 },
    { VDGX_OP_PAD1D, "replicate/3x4x9", { A (3, S (3, 4, 9), 1) }, 3, { 3, 4, 20 }, .i = { 5, 6, VDGX_PAD_REPLICATE } },
    { VDGX_OP_PAD1D, "reflect/2x9", { A (2, S (2, 9), 1) }, 2, { 2, 16 }, .i = { 4, 3, VDGX_PAD_REFLECT } },
    { VDGX_OP_PAD1D, "zero/2x9", { A (2, S (2, 9), 1) }, 2, { 2, 12 }, .i = { 0, 3, VDGX_PAD_ZERO } },
    { VDGX_OP_SNAKE, "snake-log/2x5x37", { A (3, S (2, 5, 37), 3), F (1, S (5), 0.5f) }, 3, { 2, 5, 37 }, .i = { 1 } },
    { VDGX_OP_SNAKE, "snakebeta-log/1x7x40", { A (3, S (1, 7, 40), 3), F (1, S (7), 0.5f), F (1, S (7), 0.5f) }, 3, { 1, 7, 40 }, .i = { 1 } },
};

#define NCASES ((int) (sizeof (s_cases) / sizeof (s_cases [0])))

static uint64_t s_rng = 0x243f6a8885a308d3ull;
static int s_checks = 0, s_failures = 0;
static bool s_verbose = false;

static float
s_urand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float) ((double) (s_rng >> 11) / (double) (1ull << 53));
}

static int64_t
s_numel (int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape [i];
    return n;
}

//  Host inputs of a case: uniform in +-scale, never near 0; masks mostly 1, some 0.
static float *
s_make_input (const s_in_t *in)
{
    int64_t n = s_numel (in->ndim, in->shape);
    float *p = malloc (sizeof (float) * (size_t) (n + 1));
    for (int64_t i = 0; i < n; i++) {
        if (in->kind == IN_MASK) {
            p [i] = s_urand () < 0.8f || i % in->shape [in->ndim - 1] == 0;
            continue;
        }
        float v = (2.0f * s_urand () - 1.0f) * in->scale;
        if (fabsf (v) < in->scale * 1e-3f)
            v = v < 0? -in->scale * 1e-3f: in->scale * 1e-3f;
        p [i] = v;
    }
    return p;
}

//  A float tensor on b holding src (converted to dt), or uninitialised when src is NULL.
static int
s_tensor (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dt, int nd, const int64_t *shape, const float *src)
{
    memset (t, 0, sizeof (*t));
    if (vdgx_tensor_alloc (b, t, dt, nd, shape))
        return -1;
    return src? vdgx_tensor_from_f32 (b, t, src): 0;
}

typedef struct {
    vdgx_tensor_t t [5];
    bool have [5];
    vdgx_tensor_t y;
    vdgx_weight_t w;
    bool have_w;
} s_run_t;

static int
s_call (vdgx_backend_t *b, const s_case_t *c, s_run_t *r)
{
    vdgx_tensor_t *t [5];
    for (int i = 0; i < 5; i++)
        t [i] = r->have [i]? &r->t [i]: NULL;
    vdgx_tensor_t *y = &r->y;
    switch (c->op) {
        case VDGX_OP_LINEAR:          return vdgx_op_linear (b, y, t [0], &r->w, t [1]);
        case VDGX_OP_MATMUL:          return vdgx_op_matmul (b, y, t [0], t [1]);
        case VDGX_OP_ATTENTION: {
            vdgx_attn_spec_t sp = c->attn;
            sp.key_mask = t [3];
            sp.bias = t [4];
            return vdgx_op_attention_ex (b, y, t [0], t [1], t [2], &sp, c->f [0]);
        }
        case VDGX_OP_LAYERNORM:       return vdgx_op_layernorm (b, y, t [0], t [1], t [2], c->f [0]);
        case VDGX_OP_RMSNORM:         return vdgx_op_rmsnorm (b, y, t [0], t [1], c->f [0]);
        case VDGX_OP_CHANNEL_RMSNORM: return vdgx_op_channel_rmsnorm (b, y, t [0], t [1], t [2]);
        case VDGX_OP_CHANNEL_RMSNORM_SILU: return vdgx_op_channel_rmsnorm_silu (b, y, t [0], t [1], t [2]);
        case VDGX_OP_MODULATE:        return vdgx_op_modulate (b, y, t [0], t [1], t [2]);
        case VDGX_OP_GATED_RESIDUAL:  return vdgx_op_gated_residual (b, t [0], t [1], t [2]);
        case VDGX_OP_GELU_TANH:       return vdgx_op_gelu_tanh (b, y, t [0]);
        case VDGX_OP_SILU:            return vdgx_op_silu (b, y, t [0]);
        case VDGX_OP_ADD_SCALED:      return vdgx_op_add_scaled (b, y, t [0], t [1], c->f [0]);
        case VDGX_OP_MUL:             return vdgx_op_mul (b, y, t [0], t [1]);
        case VDGX_OP_AFFINE_CLAMP:    return vdgx_op_affine_clamp (b, y, t [0], c->f [0], c->f [1], c->f [2], c->f [3]);
        case VDGX_OP_ROPE:            return vdgx_op_rope (b, y, t [0], t [1], t [2], (vdgx_rope_layout_t) c->i [0]);
        case VDGX_OP_PERMUTE:         return vdgx_op_permute (b, y, t [0], c->i);
        case VDGX_OP_CONCAT:          return vdgx_op_concat (b, y, t [0], t [1], c->i [0]);
        case VDGX_OP_SLICE:           return vdgx_op_slice (b, y, t [0], c->i [0], c->i [1], c->i [2]);
        case VDGX_OP_CONV3D:          return vdgx_op_conv3d (b, y, t [0], t [1], t [2], c->i, c->i + 3);
        case VDGX_OP_CONV2D:          return vdgx_op_conv2d (b, y, t [0], t [1], t [2], c->i, c->i + 2);
        case VDGX_OP_UPSAMPLE2X:      return vdgx_op_upsample2x (b, y, t [0]);
        case VDGX_OP_CAST:            return vdgx_op_cast (b, y, t [0]);
        case VDGX_OP_CONV1D:          return vdgx_op_conv1d (b, y, t [0], t [1], t [2], &c->c1);
        case VDGX_OP_CONV_TRANSPOSE1D:return vdgx_op_conv_transpose1d (b, y, t [0], t [1], t [2], &c->c1);
        case VDGX_OP_PAD1D:           return vdgx_op_pad1d (b, y, t [0], c->i [0], c->i [1], (vdgx_pad_mode_t) c->i [2]);
        case VDGX_OP_SNAKE:           return vdgx_op_snake (b, y, t [0], t [1], t [2], c->i [0] != 0);
        case VDGX_OP_UNARY:           return vdgx_op_unary (b, y, t [0], (vdgx_unary_t) c->i [0], c->f [0]);
        default:                      return -1;
    }
}

static void
s_release (vdgx_backend_t *b, s_run_t *r)
{
    for (int i = 0; i < 5; i++)
        if (r->have [i])
            vdgx_tensor_release (b, &r->t [i]);
    vdgx_tensor_release (b, &r->y);
    if (r->have_w)
        vdgx_weight_release (b, &r->w);
}

//  Runs case c on b with activations dt over the host inputs; returns the output (malloc'd
//  f32, *n elements) or NULL with the reason in *why.
static float *
s_run (vdgx_backend_t *b, const s_case_t *c, vdgx_dtype_t dt, float **host, const vdgx_weight_t *hw,
       int64_t *n, char *why, size_t whylen)
{
    s_run_t r;
    memset (&r, 0, sizeof (r));
    float *out = NULL;
    for (int i = 0; i < 5; i++) {
        if (c->in [i].kind == IN_NONE)
            continue;
        vdgx_dtype_t tdt = c->in [i].kind == IN_ACT? dt: c->in [i].kind == IN_F32? VDGX_DTYPE_F32: VDGX_DTYPE_U8;
        if (tdt == VDGX_DTYPE_U8) {
            //  masks: U8 bytes uploaded as they are
            int64_t m = s_numel (c->in [i].ndim, c->in [i].shape);
            if (vdgx_tensor_alloc (b, &r.t [i], VDGX_DTYPE_U8, c->in [i].ndim, c->in [i].shape))
                goto fail;
            r.have [i] = true;
            uint8_t *u = malloc ((size_t) m + 1);
            for (int64_t j = 0; j < m; j++)
                u [j] = host [i][j] != 0;
            int rc = vdgx_tensor_upload (b, &r.t [i], u);
            free (u);
            if (rc)
                goto fail;
            continue;
        }
        if (s_tensor (b, &r.t [i], tdt, c->in [i].ndim, c->in [i].shape, host [i]))
            goto fail;
        r.have [i] = true;
    }
    if (hw) {
        if (vdgx_weight_to_backend (b, &r.w, hw))
            goto fail;
        r.have_w = true;
    }
    const vdgx_tensor_t *res = &r.y;
    if (c->ondim) {
        if (s_tensor (b, &r.y, c->out_f32? VDGX_DTYPE_F32: dt, c->ondim, c->oshape, NULL))
            goto fail;
    }
    else
        res = &r.t [0];         //  in place (gated_residual)
    if (s_call (b, c, &r))
        goto fail;
    *n = vdgx_tensor_numel (res);
    out = malloc (sizeof (float) * (size_t) (*n + 1));
    if (vdgx_tensor_to_f32 (b, res, out)) {
        free (out);
        out = NULL;
        goto fail;
    }
    s_release (b, &r);
    return out;
fail:
    snprintf (why, whylen, "%s", vdgx_backend_error (b));
    s_release (b, &r);
    return NULL;
}

//  The call as the device's supports_op sees it: outputs first, then the inputs in order.
static bool
s_native (vdgx_backend_t *b, const s_case_t *c, const vdgx_tensor_t *const *t)
{
    vdgx_op_desc_t d = { .op = c->op, .attn = c->op == VDGX_OP_ATTENTION? &c->attn: NULL };
    int k = 0;
    if (c->ondim)
        d.t [k++] = t [5];
    for (int i = 0; i < 5 && k < VDGX_OP_MAX_TENSORS; i++)
        d.t [k++] = t [i];
    d.ntensors = k;
    return vdgx_backend_supports (b, &d);
}

static double
s_nmse (const float *got, const float *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double) got [i] - ref [i];
        num += e * e;
        den += (double) ref [i] * ref [i];
    }
    if (num != num)
        return INFINITY;
    return den > 0? num / den: num;
}

//  Runs every case on device b (activations dt); returns the checks run.
static int
s_device (vdgx_backend_t *cpu, vdgx_backend_t *b, vdgx_dtype_t dt, const char *only)
{
    const char *dn = dt == VDGX_DTYPE_F32? "f32": "bf16";
    char native [1024] = "", fallback [1024] = "";
    int ran = 0;
    for (int ci = 0; ci < NCASES; ci++) {
        const s_case_t *c = &s_cases [ci];
        if (only && strcmp (only, vdgx_op_name (c->op)) != 0)
            continue;
        s_rng = 0x243f6a8885a308d3ull ^ ((uint64_t) (ci + 1) * 0x9e3779b97f4a7c15ull);
        float *host [5] = { 0 };
        for (int i = 0; i < 5; i++)
            if (c->in [i].kind != IN_NONE) {
                host [i] = s_make_input (&c->in [i]);
                if (c->in [i].kind == IN_ACT && dt == VDGX_DTYPE_BF16)
                    for (int64_t j = 0; j < s_numel (c->in [i].ndim, c->in [i].shape); j++)
                        host [i][j] = vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (host [i][j]));
            }
        vdgx_weight_t hw, *hwp = NULL;
        if (c->op == VDGX_OP_LINEAR) {
            int64_t N = c->oshape [c->ondim - 1], K = c->in [0].shape [c->in [0].ndim - 1];
            s_in_t win = { IN_F32, 2, { N, K }, 0.2f };
            float *w = s_make_input (&win);
            if (vdgx_weight_quantize (&hw, c->wfmt, w, N, K, false, NULL) == 0)
                hwp = &hw;
            free (w);
        }
        char why [600] = "", cas [200];
        snprintf (cas, sizeof (cas), "%s/%s/%s/%s", vdgx_backend_name (b), dn, vdgx_op_name (c->op), c->name);
        int64_t nr = 0, ng = 0;
        float *ref = s_run (cpu, c, VDGX_DTYPE_F32, host, hwp, &nr, why, sizeof (why));
        float *got = ref? s_run (b, c, dt, host, hwp, &ng, why, sizeof (why)): NULL;
        double tol = dt == VDGX_DTYPE_F32? (c->tol32 > 0? c->tol32: 1e-9): (c->tol16 > 0? c->tol16: 1e-4);
        s_checks++;
        ran++;
        if (!ref || !got || nr != ng) {
            printf ("RESULT ops %s err=inf tol=%.1e FAIL (%s: %s)\n", cas, tol, ref? "device": "cpu", why);
            s_failures++;
        }
        else {
            double e = s_nmse (got, ref, nr);
            bool pass = e <= tol;
            s_failures += !pass;
            if (!pass || s_verbose)
                printf ("RESULT ops %s err=%.3e tol=%.1e %s\n", cas, e, tol, pass? "PASS": "FAIL");
            else
                printf ("RESULT ops %s err=%.3e tol=%.1e PASS\n", cas, e, tol);
        }
        //  native or through the CPU fallback (judged on the device's own tensors)
        {
            vdgx_tensor_t tt [6];
            const vdgx_tensor_t *tp [6] = { 0 };
            for (int i = 0; i < 5; i++)
                if (c->in [i].kind != IN_NONE) {
                    vdgx_tensor_init (&tt [i], c->in [i].kind == IN_ACT? dt: c->in [i].kind == IN_F32? VDGX_DTYPE_F32: VDGX_DTYPE_U8,
                                      c->in [i].ndim, c->in [i].shape, (void *) 1, vdgx_backend_device (b));
                    tp [i] = &tt [i];
                }
            if (c->ondim) {
                vdgx_tensor_init (&tt [5], c->out_f32? VDGX_DTYPE_F32: dt, c->ondim, c->oshape, (void *) 1, vdgx_backend_device (b));
                tp [5] = &tt [5];
            }
            char *list = s_native (b, c, tp)? native: fallback;
            char word [40];
            snprintf (word, sizeof (word), " %s ", vdgx_op_name (c->op));
            //  the lists read " a b c " so that each name is found as a whole word
            if (!strstr (list, word) && strlen (list) + strlen (word) + 1 < sizeof (native))
                strcat (list, list [0]? word + 1: word);
        }
        free (ref);
        free (got);
        for (int i = 0; i < 5; i++)
            free (host [i]);
        if (hwp)
            vdgx_weight_host_free (hwp);
    }
    printf ("device %s (%s): native:%s\n", vdgx_backend_name (b), dn, native [0]? native: " none");
    printf ("device %s (%s): CPU fallback:%s\n", vdgx_backend_name (b), dn, fallback [0]? fallback: " none");
    return ran;
}

//  Every op of vdgx_op_t has at least one case (an op added without a row fails here).
static void
s_coverage (void)
{
    for (int op = 0; op < VDGX_OP_COUNT; op++) {
        bool found = false;
        for (int ci = 0; ci < NCASES && !found; ci++)
            found = s_cases [ci].op == (vdgx_op_t) op;
        s_checks++;
        if (!found) {
            printf ("RESULT ops coverage/%s err=inf tol=0 FAIL (no case in the table)\n", vdgx_op_name ((vdgx_op_t) op));
            s_failures++;
        }
    }
}

int
main (int argc, char **argv)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    const char *devs [16];
    int ndev = 0;
    const char *only = NULL;
    bool require = false;
    for (int a = 1; a < argc; a++) {
        if (!strcmp (argv [a], "-v"))
            s_verbose = true;
        else if (!strcmp (argv [a], "--require"))
            require = true;
        else if (!strcmp (argv [a], "-b") && a + 1 < argc && ndev < 16)
            devs [ndev++] = argv [++a];
        else if (!strcmp (argv [a], "-o") && a + 1 < argc)
            only = argv [++a];
        else {
            fprintf (stderr, "usage: %s [-v] [-b DEVICE]... [-o OP] [--require]\n", argv [0]);
            return 2;
        }
    }
    char *envlist = NULL;
    if (!ndev) {
        const char *e = getenv ("VDGX_OPS_DEVICES");
        envlist = strdup (e && *e? e: "fbtest:0,cuda:0");
        for (char *save = NULL, *d = strtok_r (envlist, ",", &save); d && ndev < 16; d = strtok_r (NULL, ",", &save))
            devs [ndev++] = d;
    }
    char *err = NULL;
    vdgx_backend_t *cpu = vdgx_backend_new ("cpu", VDGX_DTYPE_F32, &err);
    if (!cpu) {
        fprintf (stderr, "cpu backend: %s\n", err);
        return 1;
    }
    if (!only)
        s_coverage ();
    int present = 0;
    for (int d = 0; d < ndev; d++)
        for (int k = 0; k < 2; k++) {
            vdgx_dtype_t dt = k? VDGX_DTYPE_BF16: VDGX_DTYPE_F32;
            err = NULL;
            vdgx_backend_t *b = vdgx_backend_new (devs [d], dt, &err);
            if (!b) {
                printf ("SKIP: device %s: %s\n", devs [d], err? err: "?");
                free (err);
                break;
            }
            if (vdgx_backend_act_dtype (b) != dt) {         //  an F32-only backend: once
                vdgx_backend_destroy (&b);
                if (k)
                    break;
                b = vdgx_backend_new (devs [d], dt, NULL);
            }
            present += s_device (cpu, b, vdgx_backend_act_dtype (b), only) > 0;
            vdgx_backend_destroy (&b);
        }
    vdgx_backend_destroy (&cpu);
    free (envlist);
    printf ("test_backend_ops: %d checks, %d failed, %d device/dtype runs\n", s_checks, s_failures, present);
    if (!present)
        return s_failures? 1: require? 77: 0;
    return s_failures? 1: 0;
}
