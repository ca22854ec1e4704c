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
#include <pthread.h>
#endif

#define S_MR 4
#define S_NRMAX 16
#define S_MC 64
#define S_NC 256
#define S_KC 256

typedef float s_v4 __attribute__ ((vector_size (16)));
typedef float s_v8 __attribute__ ((vector_size (32)));

typedef struct {
    bool trans_b;
    int64_t M, N, K, lda, ldb, ldc;
    const float *A, *B;
    float *C;
    float beta;
    int64_t tiles_n;
} s_gemm_job_t;

static inline __attribute__ ((always_inline)) void
s_pack_a (const s_gemm_job_t *j, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float *pa)
{
    for (int64_t ir = 0; ir < mc; ir += S_MR)
        for (int64_t k = 0; k < kc; k++)
            for (int r = 0; r < S_MR; r++) {
                int64_t i = ir + r;
                *pa++ = i < mc? j->A [(i0 + i) * j->lda + k0 + k]: 0.0f;
            }
}

static inline __attribute__ ((always_inline)) void
s_pack_b (const s_gemm_job_t *j, int nr, int64_t j0, int64_t nc, int64_t k0, int64_t kc, float *pb)
{
    for (int64_t jr = 0; jr < nc; jr += nr)
        for (int64_t k = 0; k < kc; k++)
            for (int c = 0; c < nr; c++) {
                int64_t col = j0 + jr + c;
                float v = 0.0f;
                if (jr + c < nc)
                    v = j->trans_b? j->B [col * j->ldb + k0 + k]: j->B [(k0 + k) * j->ldb + col];
                *pb++ = v;
            }
}

//  Register tiles: 4 x 16 with 8-wide vectors (AVX2: 8 ymm accumulators hide the FMA
//  latency) and 4 x 8 with 4-wide vectors (SSE/NEON: 8 accumulators, no spills). Named
//  accumulators and explicit broadcasts keep GCC from going through the stack.
static inline __attribute__ ((always_inline)) void
s_micro_v8 (int64_t kc, const float *pa, const float *pb, float *out)
{
    s_v8 c00 = { 0 }, c01 = { 0 }, c10 = { 0 }, c11 = { 0 };
    s_v8 c20 = { 0 }, c21 = { 0 }, c30 = { 0 }, c31 = { 0 };
    for (int64_t k = 0; k < kc; k++, pa += S_MR, pb += 16) {
        s_v8 b0, b1;
        memcpy (&b0, pb, sizeof (b0));
        memcpy (&b1, pb + 8, sizeof (b1));
        s_v8 a0 = { pa [0], pa [0], pa [0], pa [0], pa [0], pa [0], pa [0], pa [0] };
        s_v8 a1 = { pa [1], pa [1], pa [1], pa [1], pa [1], pa [1], pa [1], pa [1] };
        s_v8 a2 = { pa [2], pa [2], pa [2], pa [2], pa [2], pa [2], pa [2], pa [2] };
        s_v8 a3 = { pa [3], pa [3], pa [3], pa [3], pa [3], pa [3], pa [3], pa [3] };
        c00 += a0 * b0; c01 += a0 * b1;
        c10 += a1 * b0; c11 += a1 * b1;
        c20 += a2 * b0; c21 += a2 * b1;
        c30 += a3 * b0; c31 += a3 * b1;
    }
    memcpy (out, &c00, 32); memcpy (out + 8, &c01, 32);
    memcpy (out + 16, &c10, 32); memcpy (out + 24, &c11, 32);
    memcpy (out + 32, &c20, 32); memcpy (out + 40, &c21, 32);
    memcpy (out + 48, &c30, 32); memcpy (out + 56, &c31, 32);
}

static inline __attribute__ ((always_inline)) void
s_micro_v4 (int64_t kc, const float *pa, const float *pb, float *out)
{
    s_v4 c00 = { 0 }, c01 = { 0 }, c10 = { 0 }, c11 = { 0 };
    s_v4 c20 = { 0 }, c21 = { 0 }, c30 = { 0 }, c31 = { 0 };
    for (int64_t k = 0; k < kc; k++, pa += S_MR, pb += 8) {
        s_v4 b0, b1;
        memcpy (&b0, pb, sizeof (b0));
        memcpy (&b1, pb + 4, sizeof (b1));
        s_v4 a0 = { pa [0], pa [0], pa [0], pa [0] }, a1 = { pa [1], pa [1], pa [1], pa [1] };
        s_v4 a2 = { pa [2], pa [2], pa [2], pa [2] }, a3 = { pa [3], pa [3], pa [3], pa [3] };
        c00 += a0 * b0; c01 += a0 * b1;
        c10 += a1 * b0; c11 += a1 * b1;
        c20 += a2 * b0; c21 += a2 * b1;
        c30 += a3 * b0; c31 += a3 * b1;
    }
    memcpy (out, &c00, 16); memcpy (out + 4, &c01, 16);
    memcpy (out + 8, &c10, 16); memcpy (out + 12, &c11, 16);
    memcpy (out + 16, &c20, 16); memcpy (out + 20, &c21, 16);
    memcpy (out + 24, &c30, 16); memcpy (out + 28, &c31, 16);
}

static inline __attribute__ ((always_inline)) void
s_tile (const s_gemm_job_t *j, int64_t t, bool wide)
{
    const int nr = wide? 16: 8;
    int64_t i0 = (t / j->tiles_n) * S_MC, j0 = (t % j->tiles_n) * S_NC;
    int64_t mc = j->M - i0 < S_MC? j->M - i0: S_MC;
    int64_t nc = j->N - j0 < S_NC? j->N - j0: S_NC;
    //  Packing buffers (64 KB + 256 KB) live on the heap: worker stacks may be small.
    float *bufa = malloc (sizeof (float) * S_MC * S_KC);
    float *bufb = malloc (sizeof (float) * S_KC * (S_NC + S_NRMAX));
    if (!bufa || !bufb)
        abort ();       //  out of memory in a compute kernel: nothing sensible to return
    for (int64_t k0 = 0; k0 < j->K; k0 += S_KC) {
        int64_t kc = j->K - k0 < S_KC? j->K - k0: S_KC;
        s_pack_a (j, i0, mc, k0, kc, bufa);
        s_pack_b (j, nr, j0, nc, k0, kc, bufb);
        for (int64_t ir = 0; ir < mc; ir += S_MR)
            for (int64_t jr = 0; jr < nc; jr += nr) {
                float out [S_MR * S_NRMAX];
                if (wide)
                    s_micro_v8 (kc, bufa + ir * kc, bufb + jr * kc, out);
                else
                    s_micro_v4 (kc, bufa + ir * kc, bufb + jr * kc, out);
                int64_t cols = nc - jr < nr? nc - jr: nr;
                for (int r = 0; r < S_MR && ir + r < mc; r++) {
                    float *c = j->C + (i0 + ir + r) * j->ldc + j0 + jr;
                    const float *o = out + r * nr;
                    if (k0 > 0)
                        for (int64_t q = 0; q < cols; q++)
                            c [q] += o [q];
                    else if (j->beta == 0.0f)
                        for (int64_t q = 0; q < cols; q++)
                            c [q] = o [q];
                    else
                        for (int64_t q = 0; q < cols; q++)
                            c [q] = j->beta * c [q] + o [q];
                }
            }
    }
    free (bufa);
    free (bufb);
}

static void
s_tile_generic (void *ctx, int64_t t)
{
    s_tile (ctx, t, false);
}

//  x86-64: the same tile compiled for AVX2+FMA, chosen at run time when the CPU has them,
//  so one binary runs everywhere and still uses the wide units.
#if defined(__x86_64__) && defined(__GNUC__)
#define S_HAVE_AVX2_PATH 1
__attribute__ ((target ("avx2,fma"))) static void
s_tile_avx2 (void *ctx, int64_t t)
{
    s_tile (ctx, t, true);
}
#endif

bool vdgx_sgemm_force_generic = false;

static void (*
s_pick_tile (void)) (void *, int64_t)
{
#ifdef S_HAVE_AVX2_PATH
    __builtin_cpu_init ();
    if (!vdgx_sgemm_force_generic && __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma"))
        return s_tile_avx2;
#endif
    return s_tile_generic;
}

//  Skinny case (a few rows of A against B[N,K]): packing would copy all of B for a handful
//  of dot products, so each task takes a run of B's rows and does the dots directly.
#define S_GEMV_ROWS 64

static inline __attribute__ ((always_inline)) void
s_gemv_body (void *ctx, int64_t t)
{
    const s_gemm_job_t *j = ctx;
    int64_t n0 = t * S_GEMV_ROWS, n1 = n0 + S_GEMV_ROWS < j->N? n0 + S_GEMV_ROWS: j->N;
    for (int64_t n = n0; n < n1; n++) {
        const float *b = j->B + n * j->ldb;
        for (int64_t m = 0; m < j->M; m++) {
            const float *a = j->A + m * j->lda;
            float dot = vdgx_dot_f32 (a, b, j->K);
            float *c = j->C + m * j->ldc + n;
            *c = j->beta == 0.0f? dot: j->beta * *c + dot;
        }
    }
}

static void s_gemv_generic (void *ctx, int64_t t) { s_gemv_body (ctx, t); }
#ifdef S_HAVE_AVX2_PATH
__attribute__ ((target ("avx2,fma"))) static void s_gemv_avx2 (void *ctx, int64_t t) { s_gemv_body (ctx, t); }
#endif

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
    if (trans_b && M <= 4) {
        void (*fn) (void *, int64_t) = s_gemv_generic;
#ifdef S_HAVE_AVX2_PATH
        if (s_pick_tile () != s_tile_generic)
            fn = s_gemv_avx2;
#endif
        vdgx_cpu_pool_run (pool, (N + S_GEMV_ROWS - 1) / S_GEMV_ROWS, fn, &j);
        return;
    }
    int64_t tiles = ((M + S_MC - 1) / S_MC) * j.tiles_n;
    vdgx_cpu_pool_run (pool, tiles, s_pick_tile (), &j);
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

#ifdef VDGX_HAVE_OPENBLAS
//  OpenBLAS runs single-threaded inside our pool's tasks: its own worker threads spin (sched_yield)
//  for a while after every call, and on a machine with as many pool threads as cores they took
//  CPU from the pool's next op (a fifth of a Wan-VAE decode's profile). The product is split
//  into one slice per pool thread along its longer side (N, else M), in multiples of 64.
typedef struct {
    bool trans_b;
    int M, N, K, lda, ldb, ldc, slice, by_n;
    const float *A, *B;
    float *C;
    float beta;
} s_blas_job_t;

static void
s_blas_slice (void *ctx, int64_t t)
{
    const s_blas_job_t *j = ctx;
    int lo = (int) t * j->slice, len = (j->by_n? j->N: j->M) - lo;
    if (len > j->slice)
        len = j->slice;
    if (len <= 0)
        return;
    const float *A = j->A, *B = j->B;
    float *C = j->C;
    int M = j->M, N = j->N;
    if (j->by_n) {
        B += j->trans_b? (size_t) lo * j->ldb: (size_t) lo;
        C += lo;
        N = len;
    }
    else {
        A += (size_t) lo * j->lda;
        C += (size_t) lo * j->ldc;
        M = len;
    }
    cblas_sgemm (CblasRowMajor, CblasNoTrans, j->trans_b? CblasTrans: CblasNoTrans,
                 M, N, j->K, 1.0f, A, j->lda, B, j->ldb, j->beta, C, j->ldc);
}

static pthread_once_t s_blas_once = PTHREAD_ONCE_INIT;

static void
s_blas_single (void)
{
    openblas_set_num_threads (1);
}
#endif

void
vdgx_sgemm (vdgx_cpu_pool_t *pool, bool trans_b, int64_t M, int64_t N, int64_t K,
            const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
            float *C, int64_t ldc)
{
#ifdef VDGX_HAVE_OPENBLAS
    //  OpenBLAS takes int dimensions; larger problems go to the portable kernel, and so do
    //  skinny x . W^T products (decode-like M <= 4), where our direct dots beat its packing.
    if (!(trans_b && M <= 4) && M > 0 && N > 0 && K > 0 && M < INT32_MAX && N < INT32_MAX && K < INT32_MAX
        && lda < INT32_MAX && ldb < INT32_MAX && ldc < INT32_MAX) {
        pthread_once (&s_blas_once, s_blas_single);
        int threads = vdgx_cpu_pool_threads (pool), by_n = N >= M;
        int64_t len = by_n? N: M, slice = (len + threads - 1) / threads;
        slice = (slice + 63) / 64 * 64;
        if (2.0 * (double) M * (double) N * (double) K < 4e6)     //  too small to split
            slice = len;
        s_blas_job_t j = { trans_b, (int) M, (int) N, (int) K, (int) lda, (int) ldb, (int) ldc,
                           (int) slice, by_n, A, B, C, beta };
        vdgx_cpu_pool_run (pool, (len + slice - 1) / slice, s_blas_slice, &j);
        return;
    }
#endif
    vdgx_sgemm_portable (pool, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
