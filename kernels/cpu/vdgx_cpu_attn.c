/*  vdgx_cpu_attn.c - the CPU reference of vdgx_op_attention_ex: masked (full, causal,
    sliding window, block causal, key padding) attention with grouped / multi-query KV heads.

    One task per (batch, query head, block of BQ queries). Under every mask kind the keys a
    query sees form one interval [lo, hi) (then thinned by key_mask), and lo, hi never
    decrease along the queries, so a task streams only the key blocks its queries can see:
    blocks of BK keys with the online-softmax update (running max m, running sum l), memory
    O(BQ*BK + BQ*D) per task, never O(Lq*Lk). A row that sees no key gets o = 0.
*/
#include "vdgx_kernels_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_BQ 32
#define S_BK 64

typedef struct {
    float *o;
    const float *q, *k, *v, *bias;
    const uint8_t *mask;
    const vdgx_attn_spec_t *spec;
    int64_t B, Lq, Lk, H, Hkv, D, qblocks;
    int64_t kv_bstride;         //  elements between batches of k and v
    float scale;
} s_attn_job_t;

//  Keys query i can see under the spec's kind: [*lo, *hi) within [0, Lk).
void
vdgx_attn_range (const vdgx_attn_spec_t *sp, int64_t Lk, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t p = i + sp->q_offset, a = 0, z = Lk;
    switch (sp->kind) {
        case VDGX_ATTN_CAUSAL:
            z = p + 1;
            break;
        case VDGX_ATTN_SLIDING:
            a = p - sp->window + 1;
            z = p + 1;
            break;
        case VDGX_ATTN_BLOCK_CAUSAL: {
            int64_t pb = p >= 0? p / sp->block: -((-p + sp->block - 1) / sp->block);
            z = (pb + 1) * sp->block;
            break;
        }
        default:
            break;
    }
    if (z > Lk)
        z = Lk;
    if (a < 0)
        a = 0;
    if (z < a)
        z = a;
    *lo = a;
    *hi = z;
}

static inline __attribute__ ((always_inline)) void
s_attn_body (void *ctx, int64_t t)
{
    const s_attn_job_t *j = ctx;
    int64_t qb = t % j->qblocks, h = (t / j->qblocks) % j->H, bi = t / (j->qblocks * j->H);
    int64_t D = j->D, H = j->H, i0 = qb * S_BQ;
    int64_t hk = h / (H / j->Hkv);
    int64_t nq = j->Lq - i0 < S_BQ? j->Lq - i0: S_BQ;
    int64_t kvrow = j->Hkv * D;         //  elements between consecutive keys
    const float *kb = j->k + bi * j->kv_bstride + hk * D, *vb = j->v + bi * j->kv_bstride + hk * D;
    const uint8_t *mask = j->mask? j->mask + bi * j->Lk: NULL;
    float *buf = malloc (sizeof (float) * (size_t) (S_BQ * D * 2 + S_BK * D * 2 + S_BQ * S_BK + 2 * S_BQ));
    if (!buf)
        abort ();
    float *qs = buf, *acc = qs + S_BQ * D, *ks = acc + S_BQ * D, *vs = ks + S_BK * D;
    float *s = vs + S_BK * D, *m = s + S_BQ * S_BK, *l = m + S_BQ;
    int64_t lo [S_BQ], hi [S_BQ];
    for (int64_t i = 0; i < nq; i++) {
        const float *q = j->q + ((bi * j->Lq + i0 + i) * H + h) * D;
        for (int64_t d = 0; d < D; d++)
            qs [i * D + d] = q [d] * j->scale;
        m [i] = -INFINITY;
        l [i] = 0;
        vdgx_attn_range (j->spec, j->Lk, i0 + i, &lo [i], &hi [i]);
    }
    memset (acc, 0, sizeof (float) * (size_t) (nq * D));
    int64_t klo = lo [0], khi = hi [0];
    for (int64_t i = 1; i < nq; i++) {
        klo = lo [i] < klo? lo [i]: klo;
        khi = hi [i] > khi? hi [i]: khi;
    }
    for (int64_t k0 = klo; k0 < khi; k0 += S_BK) {
        int64_t nk = khi - k0 < S_BK? khi - k0: S_BK;
        bool keep [S_BK];
        int64_t kept = 0;
        for (int64_t c = 0; c < nk; c++) {
            keep [c] = !mask || mask [k0 + c] != 0;
            kept += keep [c];
            if (!keep [c])
                continue;
            memcpy (ks + c * D, kb + (k0 + c) * kvrow, sizeof (float) * (size_t) D);
            memcpy (vs + c * D, vb + (k0 + c) * kvrow, sizeof (float) * (size_t) D);
        }
        if (!kept)
            continue;
        for (int64_t i = 0; i < nq; i++) {
            //  keys of this block that query i sees: [c0, c1) and keep
            int64_t c0 = lo [i] - k0, c1 = hi [i] - k0;
            c0 = c0 < 0? 0: c0;
            c1 = c1 > nk? nk: c1;
            if (c0 >= c1)
                continue;
            float *si = s + i * S_BK;
            const float *qi = qs + i * D;
            const float *bias = j->bias? j->bias + (h * j->Lq + i0 + i) * j->Lk + k0: NULL;
            float mb = -INFINITY;
            for (int64_t c = c0; c < c1; c++) {
                if (!keep [c])
                    continue;
                float dot = vdgx_dot_f32 (qi, ks + c * D, D);
                if (bias)
                    dot += bias [c];
                si [c] = dot;
                if (dot > mb)
                    mb = dot;
            }
            if (mb == -INFINITY)
                continue;       //  every key of the block masked for this row (or -inf bias)
            float mnew = m [i] > mb? m [i]: mb;
            float corr = m [i] == -INFINITY? 0.0f: expf (m [i] - mnew);
            float sum = 0;
            for (int64_t c = c0; c < c1; c++) {
                float p = keep [c]? expf (si [c] - mnew): 0.0f;
                si [c] = p;
                sum += p;
            }
            l [i] = l [i] * corr + sum;
            m [i] = mnew;
            float *ai = acc + i * D;
            if (corr != 1.0f)
                for (int64_t d = 0; d < D; d++)
                    ai [d] *= corr;
            for (int64_t c = c0; c < c1; c++) {
                float p = si [c];
                if (p == 0.0f)
                    continue;
                const float *vc = vs + c * D;
                for (int64_t d = 0; d < D; d++)
                    ai [d] += p * vc [d];
            }
        }
    }
    for (int64_t i = 0; i < nq; i++) {
        float *o = j->o + ((bi * j->Lq + i0 + i) * H + h) * D;
        float inv = l [i] > 0? 1.0f / l [i]: 0.0f;
        for (int64_t d = 0; d < D; d++)
            o [d] = acc [i * D + d] * inv;
    }
    free (buf);
}

static void
s_attn_task_generic (void *ctx, int64_t t)
{
    s_attn_body (ctx, t);
}

#if defined(__x86_64__) && defined(__GNUC__)
//  The same task compiled for AVX2+FMA, picked at run time (see vdgx_cpu_gemm.c).
__attribute__ ((target ("avx2,fma"))) static void
s_attn_task_avx2 (void *ctx, int64_t t)
{
    s_attn_body (ctx, t);
}
#endif

static void (*
s_attn_pick (void)) (void *, int64_t)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init ();
    if (!vdgx_sgemm_force_generic && __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma"))
        return s_attn_task_avx2;
#endif
    return s_attn_task_generic;
}

int
vdgx_cpu_attention (vdgx_backend_t *b, vdgx_tensor_t *o, const vdgx_tensor_t *q, const vdgx_tensor_t *k,
                    const vdgx_tensor_t *v, const vdgx_attn_spec_t *spec, float scale)
{
    const vdgx_tensor_t *ts [] = { o, q, k, v };
    if (vdgx_cpu_check_f32 (b, "attention", 4, ts))
        return -1;
    s_attn_job_t j = {
        .o = o->data, .q = q->data, .k = k->data, .v = v->data, .spec = spec,
        .bias = spec->bias? spec->bias->data: NULL, .mask = spec->key_mask? spec->key_mask->data: NULL,
        .B = q->shape [0], .Lq = q->shape [1], .Lk = k->shape [1], .H = q->shape [2],
        .Hkv = k->shape [2], .D = q->shape [3], .scale = scale
    };
    j.kv_bstride = j.B > 1? k->stride [0]: j.Lk * j.Hkv * j.D;
    if (j.B * j.Lq * j.H * j.D == 0)
        return 0;
    //  The blocked-GEMM kernel (vdgx_cpu_attn_fast.c) where the CPU and D allow; this loop is
    //  the reference it is tested against.
    vdgx_attn_args_t fa = { j.o, j.q, j.k, j.v, j.bias, j.mask, j.B, j.Lq, j.Lk, j.H, j.Hkv, j.D,
                            j.kv_bstride, spec, scale };
    if (vdgx_cpu_attention_fast (vdgx_cpu_pool_of (b), &fa) == 0)
        return 0;
    j.qblocks = (j.Lq + S_BQ - 1) / S_BQ;
    vdgx_cpu_pool_run (vdgx_cpu_pool_of (b), j.B * j.H * j.qblocks, s_attn_pick (), &j);
    return 0;
}
