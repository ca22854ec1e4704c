/*  vdgx_cpu_attn_test.c - vdgx_op_attention_ex on the CPU backend against a plain
    double-precision reference written from the mask definitions in vdgx_backend.h: every mask
    kind, GQA ratios 1, 2, 4 and H (MQA), Lq != Lk with q_offset (KV-cache append), key_mask
    and bias, a batch-strided KV-cache view, and rows that see no key (o exactly 0).
    Masked keys carry k = v = 1e6, so any non-zero probability on them shows.
    Tolerance: |got - ref| <= 1e-5 * (1 + sum_j p_j |v_j|) + 1e-5 * |ref|; 0 for empty rows.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_seed = 0x9e3779b97f4a7c15ull;

static float
s_rand (void)
{
    return vdgx_test_randf (&s_seed);
}

//  The definitions, written independently of the backend's interval code.
static bool
s_sees (const vdgx_attn_spec_t *sp, int64_t i, int64_t j)
{
    double p = (double) (i + sp->q_offset);
    switch (sp->kind) {
        case VDGX_ATTN_CAUSAL:       return j <= p;
        case VDGX_ATTN_SLIDING:      return p - (double) sp->window < j && j <= p;
        case VDGX_ATTN_BLOCK_CAUSAL: return floor ((double) j / sp->block) <= floor (p / sp->block);
        default:                     return true;
    }
}

typedef struct {
    int64_t B, Lq, Lk, H, Hkv, D;
} s_shape_t;

static int s_failures = 0;

//  One case: returns the number of rows that saw no key.
static int64_t
s_case (vdgx_backend_t *b, s_shape_t sh, vdgx_attn_spec_t sp, bool use_mask, bool use_bias,
        int64_t kv_pad)
{
    int64_t B = sh.B, Lq = sh.Lq, Lk = sh.Lk, H = sh.H, Hkv = sh.Hkv, D = sh.D;
    int64_t cap = Lk + kv_pad;          //  rows of the (possibly longer) KV buffer
    int64_t nq = B * Lq * H * D, nkv = B * cap * Hkv * D;
    float *q = malloc (sizeof (float) * (size_t) nq), *o = malloc (sizeof (float) * (size_t) nq);
    float *k = malloc (sizeof (float) * (size_t) nkv), *v = malloc (sizeof (float) * (size_t) nkv);
    float *bias = malloc (sizeof (float) * (size_t) (H * Lq * Lk + 1));
    uint8_t *mask = malloc ((size_t) (B * Lk + 1));
    double *ref = malloc (sizeof (double) * (size_t) nq), *mag = malloc (sizeof (double) * (size_t) nq);
    double *p = malloc (sizeof (double) * (size_t) (Lk + 1));
    for (int64_t i = 0; i < nq; i++) {
        q [i] = s_rand ();
        o [i] = s_rand ();
    }
    for (int64_t i = 0; i < nkv; i++) {
        k [i] = s_rand ();
        v [i] = s_rand ();
    }
    for (int64_t i = 0; i < H * Lq * Lk; i++)
        bias [i] = 3.0f * s_rand ();
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t j = 0; j < Lk; j++) {
            //  random padding; batch 1 sees only a prefix (padded text)
            mask [bi * Lk + j] = (j * 7 + bi) % 5 != 2 && !(bi == 1 && j >= Lk / 3 && Lk > 3);
            if (use_mask && !mask [bi * Lk + j])
                for (int64_t hk = 0; hk < Hkv; hk++)
                    for (int64_t d = 0; d < D; d++)
                        k [((bi * cap + j) * Hkv + hk) * D + d] = v [((bi * cap + j) * Hkv + hk) * D + d] = 1e6f;
        }
    int64_t empty = 0;
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i++) {
                int64_t hk = h / (H / Hkv);
                const float *qi = q + ((bi * Lq + i) * H + h) * D;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < Lk; j++) {
                    p [j] = -INFINITY;
                    if (!s_sees (&sp, i, j) || (use_mask && !mask [bi * Lk + j]))
                        continue;
                    const float *kj = k + ((bi * cap + j) * Hkv + hk) * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++)
                        dot += (double) qi [d] * kj [d];
                    dot *= 1.0 / sqrt ((double) D);
                    if (use_bias)
                        dot += bias [(h * Lq + i) * Lk + j];
                    p [j] = dot;
                    mx = dot > mx? dot: mx;
                }
                for (int64_t j = 0; j < Lk; j++) {
                    p [j] = p [j] == -INFINITY? 0: exp (p [j] - mx);
                    sum += p [j];
                }
                empty += sum == 0;
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0, m = 0;
                    for (int64_t j = 0; j < Lk && sum > 0; j++) {
                        if (p [j] == 0)
                            continue;
                        double vj = v [((bi * cap + j) * Hkv + hk) * D + d];
                        acc += p [j] / sum * vj;
                        m += p [j] / sum * fabs (vj);
                    }
                    ref [((bi * Lq + i) * H + h) * D + d] = acc;
                    mag [((bi * Lq + i) * H + h) * D + d] = sum > 0? m + 1: 0;
                }
            }
    vdgx_tensor_t tq, to, tk, tv, tb, tm;
    int64_t qs [4] = { B, Lq, H, D }, ks [4] = { B, Lk, Hkv, D }, bs [3] = { H, Lq, Lk }, ms [2] = { B, Lk };
    vdgx_tensor_init (&tq, VDGX_DTYPE_F32, 4, qs, q, VDGX_DEVICE_CPU);
    vdgx_tensor_init (&to, VDGX_DTYPE_F32, 4, qs, o, VDGX_DEVICE_CPU);
    vdgx_tensor_init (&tk, VDGX_DTYPE_F32, 4, ks, k, VDGX_DEVICE_CPU);
    vdgx_tensor_init (&tv, VDGX_DTYPE_F32, 4, ks, v, VDGX_DEVICE_CPU);
    tk.stride [0] = tv.stride [0] = cap * Hkv * D;     //  view of the first Lk rows
    vdgx_tensor_init (&tb, VDGX_DTYPE_F32, 3, bs, bias, VDGX_DEVICE_CPU);
    vdgx_tensor_init (&tm, VDGX_DTYPE_U8, 2, ms, mask, VDGX_DEVICE_CPU);
    sp.key_mask = use_mask? &tm: NULL;
    sp.bias = use_bias? &tb: NULL;
    int rc = vdgx_op_attention_ex (b, &to, &tq, &tk, &tv, &sp, 1.0f / sqrtf ((float) D));
    if (rc)
        fprintf (stderr, "\nattention_ex: %s\n", vdgx_backend_error (b));
    assert (rc == 0);
    for (int64_t i = 0; i < nq; i++) {
        double e = fabs ((double) o [i] - ref [i]);
        if (!(e <= 1e-5 * mag [i] + 1e-5 * fabs (ref [i]))) {
            fprintf (stderr, "\nFAIL attention_ex B%lld Lq%lld Lk%lld H%lld Hkv%lld D%lld kind %d off %lld "
                     "win %lld blk %lld mask %d bias %d pad %lld: [%lld] got %.8g ref %.8g\n",
                     (long long) B, (long long) Lq, (long long) Lk, (long long) H, (long long) Hkv,
                     (long long) D, (int) sp.kind, (long long) sp.q_offset, (long long) sp.window,
                     (long long) sp.block, use_mask, use_bias, (long long) kv_pad, (long long) i, o [i], ref [i]);
            s_failures++;
            break;
        }
    }
    free (q); free (o); free (k); free (v); free (bias); free (mask); free (ref); free (mag); free (p);
    return empty;
}

void
vdgx_cpu_attn_test (bool verbose)
{
    printf (" * vdgx_cpu_attn: ");
    vdgx_backend_t *b = vdgx_backend_new ("cpu", VDGX_DTYPE_F32, NULL);
    assert (b);
    static const s_shape_t shapes [] = {
        //  B, Lq, Lk, H, Hkv, D
        { 1, 1, 1, 1, 1, 4 },
        { 2, 37, 53, 4, 4, 16 },        //  GQA ratio 1 (plain multi-head)
        { 2, 37, 53, 4, 2, 16 },        //  ratio 2
        { 1, 70, 130, 8, 2, 8 },        //  ratio 4
        { 2, 5, 200, 6, 1, 12 },        //  ratio H (multi-query)
        { 1, 66, 66, 2, 1, 64 },        //  self-attention, head dim 64 (the vector dot)
        { 2, 3, 100, 4, 2, 16 },        //  decode: a few new queries against a long cache
    };
    int64_t cases = 0, empty = 0;
    for (size_t s = 0; s < sizeof (shapes) / sizeof (shapes [0]); s++) {
        s_shape_t sh = shapes [s];
        int64_t kv_off = sh.Lk - sh.Lq;         //  queries are the last Lq keys (KV-cache append)
        vdgx_attn_spec_t specs [] = {
            { .kind = VDGX_ATTN_FULL },
            { .kind = VDGX_ATTN_CAUSAL, .q_offset = 0 },
            { .kind = VDGX_ATTN_CAUSAL, .q_offset = kv_off },
            { .kind = VDGX_ATTN_CAUSAL, .q_offset = -3 },       //  the first rows see nothing
            { .kind = VDGX_ATTN_SLIDING, .q_offset = kv_off, .window = 1 },
            { .kind = VDGX_ATTN_SLIDING, .q_offset = kv_off, .window = 7 },
            { .kind = VDGX_ATTN_SLIDING, .q_offset = 0, .window = 40 },
            { .kind = VDGX_ATTN_BLOCK_CAUSAL, .q_offset = kv_off, .block = 1 },
            { .kind = VDGX_ATTN_BLOCK_CAUSAL, .q_offset = 0, .block = 16 },
            { .kind = VDGX_ATTN_BLOCK_CAUSAL, .q_offset = -20, .block = 9 },
        };
        for (size_t k = 0; k < sizeof (specs) / sizeof (specs [0]); k++)
            for (int variant = 0; variant < 4; variant++) {
                empty += s_case (b, sh, specs [k], variant & 1, variant & 2, 0);
                cases++;
            }
        //  a view of the first Lk rows of a longer KV cache (batch stride > Lk*Hkv*D)
        empty += s_case (b, sh, specs [2], true, true, 11);
        cases++;
    }
    assert (empty > 0);         //  rows seeing no key were exercised (and were exactly 0)
    if (verbose)
        printf ("(%lld cases, %lld empty rows) ", (long long) cases, (long long) empty);

    //  Lk = 0: every row sees nothing
    float q [8], o [8], kv [1] = { 1 };
    for (int i = 0; i < 8; i++)
        q [i] = o [i] = s_rand ();
    vdgx_tensor_t tq, to, tk;
    int64_t qs [4] = { 1, 2, 1, 4 }, ks [4] = { 1, 0, 1, 4 };
    vdgx_tensor_init (&tq, VDGX_DTYPE_F32, 4, qs, q, VDGX_DEVICE_CPU);
    vdgx_tensor_init (&to, VDGX_DTYPE_F32, 4, qs, o, VDGX_DEVICE_CPU);
    vdgx_tensor_init (&tk, VDGX_DTYPE_F32, 4, ks, kv, VDGX_DEVICE_CPU);
    assert (vdgx_op_attention_ex (b, &to, &tq, &tk, &tk, NULL, 1.0f) == 0);
    for (int i = 0; i < 8; i++)
        assert (o [i] == 0.0f);

    //  bad calls are refused with a message
    float k8 [24];
    for (int i = 0; i < 24; i++)
        k8 [i] = s_rand ();
    int64_t k3 [4] = { 1, 2, 3, 4 };    //  Hkv 3 does not divide H 1... and q has H 1
    vdgx_tensor_t tk3;
    vdgx_tensor_init (&tk3, VDGX_DTYPE_F32, 4, k3, k8, VDGX_DEVICE_CPU);
    assert (vdgx_op_attention_ex (b, &to, &tq, &tk3, &tk3, NULL, 1.0f) == -1
            && strstr (vdgx_backend_error (b), "Hkv"));
    int64_t k1 [4] = { 1, 2, 1, 4 };
    vdgx_tensor_t tk1;
    vdgx_tensor_init (&tk1, VDGX_DTYPE_F32, 4, k1, k8, VDGX_DEVICE_CPU);
    vdgx_attn_spec_t bad = { .kind = VDGX_ATTN_SLIDING, .window = 0 };
    assert (vdgx_op_attention_ex (b, &to, &tq, &tk1, &tk1, &bad, 1.0f) == -1
            && strstr (vdgx_backend_error (b), "bad spec"));
    bad = (vdgx_attn_spec_t) { .kind = VDGX_ATTN_BLOCK_CAUSAL, .block = 0 };
    assert (vdgx_op_attention_ex (b, &to, &tq, &tk1, &tk1, &bad, 1.0f) == -1);
    bad = (vdgx_attn_spec_t) { .kind = (vdgx_attn_kind_t) 9 };
    assert (vdgx_op_attention_ex (b, &to, &tq, &tk1, &tk1, &bad, 1.0f) == -1);
    bad = (vdgx_attn_spec_t) { .kind = VDGX_ATTN_CAUSAL, .q_offset = INT64_MAX };
    assert (vdgx_op_attention_ex (b, &to, &tq, &tk1, &tk1, &bad, 1.0f) == -1);
    vdgx_tensor_t tks = tk1;
    tks.stride [1] = 8;                 //  inner dims must stay contiguous
    assert (vdgx_op_attention_ex (b, &to, &tq, &tks, &tk1, NULL, 1.0f) == -1
            && strstr (vdgx_backend_error (b), "contiguous"));
    //  the definition helper agrees with the reference
    vdgx_attn_spec_t sp = { .kind = VDGX_ATTN_BLOCK_CAUSAL, .q_offset = -7, .block = 4 };
    for (int64_t i = 0; i < 20; i++)
        for (int64_t j = 0; j < 20; j++)
            for (int kind = 0; kind < 4; kind++) {
                sp.kind = (vdgx_attn_kind_t) kind;
                sp.window = 3;
                assert (vdgx_attn_visible (&sp, i, j) == s_sees (&sp, i, j));
            }
    vdgx_backend_destroy (&b);
    assert (s_failures == 0);
    printf ("OK\n");
}
