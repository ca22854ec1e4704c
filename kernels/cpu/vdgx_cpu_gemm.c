/*  vdgx_cpu_gemm.c - sgemm: OpenBLAS when available, else a portable cache-blocked kernel.
    The portable kernel splits C into MC x NC tiles handed to the pool; each task packs its
    slices of A and B (zero padded to the micro-tile) per KC chunk so the 4x8 register tile
    streams contiguous memory. GCC vector extensions keep it portable (SSE, AVX, NEON).
*/
#include "vdgx_kernels_private.h"

#include <stdlib.h>
#include <string.h>
#ifdef VDGX_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define S_MR 4
#define S_NR 8
#define S_MC 64
#define S_NC 256
#define S_KC 256

typedef float s_v8 __attribute__ ((vector_size (32)));

typedef struct {
    bool trans_b;
    int64_t M, N, K, lda, ldb, ldc;
    const float *A, *B;
    float *C;
    float beta;
    int64_t tiles_n;
} s_gemm_job_t;

static void
s_pack_a (const s_gemm_job_t *j, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float *pa)
{
    for (int64_t ir = 0; ir < mc; ir += S_MR)
        for (int64_t k = 0; k < kc; k++)
            for (int r = 0; r < S_MR; r++) {
                int64_t i = ir + r;
                *pa++ = i < mc? j->A [(i0 + i) * j->lda + k0 + k]: 0.0f;
            }
}

static void
s_pack_b (const s_gemm_job_t *j, int64_t j0, int64_t nc, int64_t k0, int64_t kc, float *pb)
{
    for (int64_t jr = 0; jr < nc; jr += S_NR)
        for (int64_t k = 0; k < kc; k++)
            for (int c = 0; c < S_NR; c++) {
                int64_t col = j0 + jr + c;
                float v = 0.0f;
                if (jr + c < nc)
                    v = j->trans_b? j->B [col * j->ldb + k0 + k]: j->B [(k0 + k) * j->ldb + col];
                *pb++ = v;
            }
}

static void
s_micro (int64_t kc, const float *pa, const float *pb, float out [S_MR][S_NR])
{
    s_v8 acc [S_MR];
    memset (acc, 0, sizeof (acc));
    for (int64_t k = 0; k < kc; k++) {
        s_v8 b;
        memcpy (&b, pb + k * S_NR, sizeof (b));
        for (int r = 0; r < S_MR; r++)
            acc [r] += pa [k * S_MR + r] * b;
    }
    memcpy (out, acc, sizeof (acc));
}

static void
s_gemm_tile (void *ctx, int64_t t)
{
    const s_gemm_job_t *j = ctx;
    int64_t i0 = (t / j->tiles_n) * S_MC, j0 = (t % j->tiles_n) * S_NC;
    int64_t mc = j->M - i0 < S_MC? j->M - i0: S_MC;
    int64_t nc = j->N - j0 < S_NC? j->N - j0: S_NC;
    //  Packing buffers (64 KB + 256 KB) live on the heap: worker stacks may be small.
    float *bufa = malloc (sizeof (float) * S_MC * S_KC);
    float *bufb = malloc (sizeof (float) * S_KC * S_NC);
    if (!bufa || !bufb)
        abort ();       //  out of memory in a compute kernel: nothing sensible to return
    for (int64_t k0 = 0; k0 < j->K; k0 += S_KC) {
        int64_t kc = j->K - k0 < S_KC? j->K - k0: S_KC;
        s_pack_a (j, i0, mc, k0, kc, bufa);
        s_pack_b (j, j0, nc, k0, kc, bufb);
        for (int64_t ir = 0; ir < mc; ir += S_MR)
            for (int64_t jr = 0; jr < nc; jr += S_NR) {
                float out [S_MR][S_NR];
                s_micro (kc, bufa + ir * kc, bufb + jr * kc, out);
                for (int r = 0; r < S_MR && ir + r < mc; r++) {
                    float *c = j->C + (i0 + ir + r) * j->ldc + j0 + jr;
                    int64_t cols = nc - jr < S_NR? nc - jr: S_NR;
                    if (k0 > 0)
                        for (int64_t q = 0; q < cols; q++)
                            c [q] += out [r][q];
                    else if (j->beta == 0.0f)
                        for (int64_t q = 0; q < cols; q++)
                            c [q] = out [r][q];
                    else
                        for (int64_t q = 0; q < cols; q++)
                            c [q] = j->beta * c [q] + out [r][q];
                }
            }
    }
    free (bufa);
    free (bufb);
}

void
vdgx_sgemm_portable (vdgx_cpu_pool_t *pool, bool trans_b, int64_t M, int64_t N, int64_t K,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                     float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t q = 0; q < N; q++)
                C [i * ldc + q] = beta == 0.0f? 0.0f: beta * C [i * ldc + q];
        return;
    }
    s_gemm_job_t j = { trans_b, M, N, K, lda, ldb, ldc, A, B, C, beta, (N + S_NC - 1) / S_NC };
    int64_t tiles = ((M + S_MC - 1) / S_MC) * j.tiles_n;
    vdgx_cpu_pool_run (pool, tiles, s_gemm_tile, &j);
}

bool
vdgx_sgemm_is_openblas (void)
{
#ifdef VDGX_HAVE_OPENBLAS
    return true;
#else
    return false;
#endif
}

void
vdgx_sgemm (vdgx_cpu_pool_t *pool, bool trans_b, int64_t M, int64_t N, int64_t K,
            const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
            float *C, int64_t ldc)
{
#ifdef VDGX_HAVE_OPENBLAS
    //  OpenBLAS takes int dimensions; larger problems go to the portable kernel.
    if (M > 0 && N > 0 && K > 0 && M < INT32_MAX && N < INT32_MAX && K < INT32_MAX
        && lda < INT32_MAX && ldb < INT32_MAX && ldc < INT32_MAX) {
        cblas_sgemm (CblasRowMajor, CblasNoTrans, trans_b? CblasTrans: CblasNoTrans,
                     (int) M, (int) N, (int) K, 1.0f, A, (int) lda, B, (int) ldb, beta, C, (int) ldc);
        return;
    }
#endif
    vdgx_sgemm_portable (pool, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
