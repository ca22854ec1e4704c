/*  vdgx_cuda.c - the CUDA backend: device state, caching allocator, cuBLASLt GEMMs and the
    host side of every op (shape checks, dtype conversions, path choice, fallbacks).

    One stream per backend; every op is stream-ordered, so a temporary buffer may go back to
    the pool right after the launch that uses it (the next user runs after it on the same
    stream). Device errors never abort: they set the backend error and return -1.
*/
#include "vdgx_cuda.h"
#include "vdgx_cuda_int.h"
#include "vdgx_quant.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The host's functions (the registry passes them to vdgx_backend_module_init): this module
//  links no part of vdgx_kernels.
static const vdgx_backend_host_t *s_host;

#define VC_WORKSPACE (32u << 20)

enum { PATH_AUTO = 0, PATH_LT, PATH_MMA, PATH_NAIVE, PATH_DEQUANT, PATH_FLASH, PATH_GEMM, PATH_FLASH_LDSM,
       PATH_FLASH_PIPE };

typedef struct {
    void *ptr;
    size_t size;
    bool used;
} s_block_t;

//  cuBLASLt heuristics cache key: everything the chosen algorithm depends on.
typedef struct {
    int ta, tb, at, bt, dt, epi, fp8, batch, align;
    int64_t m, n, k, lda, ldb, ldd, sa, sb, sd;
} s_gkey_t;

//  Up to VC_LT_CANDIDATES algorithms from the heuristic, best first. cuBLASLt can offer an
//  algorithm that cublasLtMatmul then refuses (seen with FP8 on sm_90 and sm_120 with cuBLAS 13):
//  a refused one is dropped and the next is tried, so one bad pick does not cost the fast path.
#define VC_LT_CANDIDATES 8
typedef struct {
    s_gkey_t key;
    cublasLtMatmulAlgo_t algo [VC_LT_CANDIDATES];
    int nalgo, next;            //  candidates found; index of the one in use
    bool ok;
} s_plan_t;

typedef struct {
    int dev, sm;
    cudaStream_t st;
    cublasLtHandle_t lt;
    void *ws;
    float *scratch;             //  device scalars at the VC_S_* slots
    s_block_t *blocks;
    size_t nblocks, cap;
    s_plan_t *plans;
    size_t nplans, plans_cap;
    int lin_path, attn_path, conv_path;
    bool lt_fp8, lt_fp4;
    bool sync_each;             //  VDGX_CUDA_SYNC: synchronise after every launch (debugging)
    char info [512];
} s_cuda_t;

//  Device scalars in c->scratch, each on its own 256-byte line: cuBLASLt reads the scale,
//  alpha and beta pointers, and nothing promises that it takes one less aligned than
//  cudaMalloc's own. (The FP8 GEMM was refused at run time on an H100 while its scales sat
//  4 bytes apart; whether that was the cause is not known yet: this removes one candidate.)
enum {
    VC_S_AMAX = 0,              //  amax of the last quantised tensor
    VC_S_ASCALE = 64,           //  activation scale (amax / 448)
    VC_S_ONE = 128,             //  1.0 (a unit scale)
    VC_S_ZERO = 192,            //  0.0 (beta in device pointer mode)
    VC_S_ALPHA = 256,           //  NVFP4: the product of the tensor scales
    VC_S_FLOATS = 320
};

//  A GEMM in cuBLASLt terms (column-major): D[m,n] = op(A) . op(B) (+ bias[m]).
typedef struct {
    int ta, tb;
    int64_t m, n, k;
    const void *A; int at; int64_t lda, sa;
    const void *B; int bt; int64_t ldb, sb;
    void *D; int dt; int64_t ldd, sd;
    int batch;
    const void *bias;           //  dtype of D
    const void *ascale, *bscale;    //  FP8 per-tensor f32 scales / NVFP4 tiled E4M3 block scales
    const float *alpha_dev;     //  NVFP4: alpha on the device (the product of the tensor scales)
} s_gemm_t;

//  Dtype code for packed E2M1 (not a tensor dtype; only cuBLASLt layouts use it).
#define VC_DT_E2M1 100

static s_cuda_t *s_priv (vdgx_backend_t *self)
{
    return (s_cuda_t *) s_host->priv (self);
}

static int s_ck (vdgx_backend_t *self, cudaError_t e, const char *what)
{
    s_cuda_t *c = s_priv (self);
    //  VDGX_CUDA_SYNC=1: wait after every launch so a fault is reported by the op that made it
    if (e == cudaSuccess && c && c->sync_each)
        e = cudaStreamSynchronize (c->st);
    if (e == cudaSuccess)
        return 0;
    s_host->set_error (self, "cuda: %s: %s (%s)", what, cudaGetErrorString (e), cudaGetErrorName (e));
    cudaGetLastError ();        //  clear a sticky launch error so later ops can report theirs
    return -1;
}

static int s_enter (vdgx_backend_t *self)
{
    return s_ck (self, cudaSetDevice (s_priv (self)->dev), "cudaSetDevice");
}

static int s_path (const char *env, const char *const *names, const int *vals, int n)
{
    const char *v = getenv (env);
    if (v)
        for (int i = 0; i < n; i++)
            if (strcmp (v, names [i]) == 0)
                return vals [i];
    return PATH_AUTO;
}

//  --------------------------------------------------------------------------------------
//  Caching allocator for the backend's own temporaries (casts, im2col, quantized
//  activations, dequantized weights): blocks are kept after free and handed out again for requests up to
//  their size (but never more than twice the request, so big blocks are not wasted on
//  small tensors). On cudaMalloc failure the unused blocks are released and it tries again.

static size_t s_round (size_t bytes)
{
    if (bytes < 512)
        return 512;
    if (bytes < (1u << 20))
        return (bytes + 511) & ~(size_t) 511;
    return (bytes + (1u << 20) - 1) & ~(size_t) ((1u << 20) - 1);
}

static void s_trim (s_cuda_t *c)
{
    size_t j = 0;
    for (size_t i = 0; i < c->nblocks; i++) {
        if (!c->blocks [i].used)
            cudaFree (c->blocks [i].ptr);
        else
            c->blocks [j++] = c->blocks [i];
    }
    c->nblocks = j;
}

static void *s_alloc (vdgx_backend_t *self, size_t bytes)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self))
        return NULL;
    size_t want = s_round (bytes), best = SIZE_MAX;
    size_t bi = 0;
    for (size_t i = 0; i < c->nblocks; i++) {
        s_block_t *b = &c->blocks [i];
        if (!b->used && b->size >= want && b->size <= 2 * want && b->size < best) {
            best = b->size;
            bi = i;
        }
    }
    if (best != SIZE_MAX) {
        c->blocks [bi].used = true;
        return c->blocks [bi].ptr;
    }
    if (c->nblocks == c->cap) {
        size_t ncap = c->cap ? 2 * c->cap : 64;
        s_block_t *nb = (s_block_t *) realloc (c->blocks, ncap * sizeof *nb);
        if (!nb) {
            s_host->set_error (self, "cuda: out of host memory");
            return NULL;
        }
        c->blocks = nb;
        c->cap = ncap;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc (&p, want);
    if (e != cudaSuccess) {
        cudaGetLastError ();
        cudaStreamSynchronize (c->st);
        s_trim (c);
        e = cudaMalloc (&p, want);
    }
    if (e != cudaSuccess) {
        s_host->set_error (self, "cuda: cudaMalloc of %zu bytes failed: %s", want,
                                cudaGetErrorString (e));
        cudaGetLastError ();
        return NULL;
    }
    c->blocks [c->nblocks++] = (s_block_t) { p, want, true };
    return p;
}

static void s_free (vdgx_backend_t *self, void *ptr)
{
    s_cuda_t *c = s_priv (self);
    if (!ptr)
        return;
    for (size_t i = 0; i < c->nblocks; i++)
        if (c->blocks [i].ptr == ptr) {
            c->blocks [i].used = false;
            return;
        }
    //  Not ours: misuse by the caller; say so rather than corrupt the pool.
    s_host->set_error (self, "cuda: free of a pointer this backend did not allocate");
}

//  The ops table's alloc/free are raw device memory: vdgx_backend.c pools on top of them.
//  A failed cudaMalloc first releases this backend's cached temporaries and tries again.
static void *s_raw_alloc (vdgx_backend_t *self, size_t bytes)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self))
        return NULL;
    void *p = NULL;
    cudaError_t e = cudaMalloc (&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError ();
        cudaStreamSynchronize (c->st);
        s_trim (c);
        e = cudaMalloc (&p, bytes ? bytes : 1);
    }
    if (e != cudaSuccess) {
        s_host->set_error (self, "cuda: cudaMalloc of %zu bytes failed: %s", bytes,
                                cudaGetErrorString (e));
        cudaGetLastError ();
        return NULL;
    }
    return p;
}

static void s_raw_free (vdgx_backend_t *self, void *ptr)
{
    if (!ptr || s_enter (self))
        return;
    //  cudaFree waits for the device, so queued kernels still reading ptr finish first.
    s_ck (self, cudaFree (ptr), "cudaFree");
}

static int s_upload (vdgx_backend_t *self, void *dst, const void *src, size_t bytes)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self))
        return -1;
    if (bytes == 0)
        return 0;
    if (s_ck (self, cudaMemcpyAsync (dst, src, bytes, cudaMemcpyHostToDevice, c->st), "upload"))
        return -1;
    return s_ck (self, cudaStreamSynchronize (c->st), "upload (sync)");
}

static int s_download (vdgx_backend_t *self, void *dst, const void *src, size_t bytes)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self))
        return -1;
    if (bytes == 0)
        return 0;
    if (s_ck (self, cudaMemcpyAsync (dst, src, bytes, cudaMemcpyDeviceToHost, c->st), "download"))
        return -1;
    return s_ck (self, cudaStreamSynchronize (c->st), "download (sync)");
}

static int s_copy (vdgx_backend_t *self, void *dst, const void *src, size_t bytes)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self))
        return -1;
    if (bytes == 0)
        return 0;
    return s_ck (self, cudaMemcpyAsync (dst, src, bytes, cudaMemcpyDeviceToDevice, c->st), "copy");
}

static int s_synchronize (vdgx_backend_t *self)
{
    if (s_enter (self))
        return -1;
    return s_ck (self, cudaStreamSynchronize (s_priv (self)->st), "synchronize");
}

//  --------------------------------------------------------------------------------------
//  Tensor helpers (local so this library needs nothing from vdgx_tensor.c).

static int64_t s_numel (const vdgx_tensor_t *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape [i];
    return n;
}

static size_t s_esize (int dt)
{
    switch (dt) {
        case VDGX_DTYPE_F32: case VDGX_DTYPE_I32: return 4;
        case VDGX_DTYPE_F16: case VDGX_DTYPE_BF16: return 2;
        case VDGX_DTYPE_F8_E4M3: case VDGX_DTYPE_F8_E5M2: case VDGX_DTYPE_U8: return 1;
        case VDGX_DTYPE_F64: case VDGX_DTYPE_I64: return 8;
        default: return 0;
    }
}

static bool s_isfloat (int dt)
{
    return dt == VDGX_DTYPE_F32 || dt == VDGX_DTYPE_BF16 || dt == VDGX_DTYPE_F16;
}

static bool s_contig (const vdgx_tensor_t *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape [i] != 1 && t->stride [i] != s)
            return false;
        s *= t->shape [i];
    }
    return true;
}

//  Common checks: a float tensor on this device, contiguous, with data.
static int s_chk (vdgx_backend_t *self, const vdgx_tensor_t *t, const char *op, const char *name)
{
    if (!t || !t->data || t->ndim < 0 || t->ndim > VDGX_MAX_DIMS) {
        s_host->set_error (self, "cuda %s: %s is missing or has no data", op, name);
        return -1;
    }
    if (!s_isfloat (t->dtype)) {
        s_host->set_error (self, "cuda %s: %s has dtype %d, expected F32, F16 or BF16", op, name,
                                (int) t->dtype);
        return -1;
    }
    if (!s_contig (t)) {
        s_host->set_error (self, "cuda %s: %s is not contiguous", op, name);
        return -1;
    }
    return 0;
}

static int s_chk_opt (vdgx_backend_t *self, const vdgx_tensor_t *t, const char *op, const char *name,
                      int64_t numel)
{
    if (!t)
        return 0;
    if (s_chk (self, t, op, name))
        return -1;
    if (s_numel (t) != numel) {
        s_host->set_error (self, "cuda %s: %s has %lld elements, expected %lld", op, name,
                                (long long) s_numel (t), (long long) numel);
        return -1;
    }
    return 0;
}

//  Returns p if it already has dtype dt, else a pool buffer with the converted n elements
//  (*tmp set so the caller frees it).
static const void *s_as (vdgx_backend_t *self, const void *p, int pdt, int dt, int64_t n,
                         void **tmp)
{
    *tmp = NULL;
    if (pdt == dt)
        return p;
    void *b = s_alloc (self, (size_t) n * s_esize (dt) + 16);
    if (!b)
        return NULL;
    if (s_ck (self, vc_cast (s_priv (self)->st, b, dt, p, pdt, n), "cast")) {
        s_free (self, b);
        return NULL;
    }
    *tmp = b;
    return b;
}

//  --------------------------------------------------------------------------------------
//  cuBLASLt

static cudaDataType_t s_cdt (int dt)
{
    switch (dt) {
        case VDGX_DTYPE_F32: return CUDA_R_32F;
        case VDGX_DTYPE_F16: return CUDA_R_16F;
        case VDGX_DTYPE_BF16: return CUDA_R_16BF;
        case VDGX_DTYPE_F8_E4M3: return CUDA_R_8F_E4M3;
        case VC_DT_E2M1: return CUDA_R_4F_E2M1;
        default: return CUDA_R_32F;
    }
}

static int s_align (const void *p)
{
    uintptr_t a = (uintptr_t) p;
    int al = 256;
    while (al > 1 && (a % (uintptr_t) al))
        al >>= 1;
    return al;
}

static int s_lt_fail (vdgx_backend_t *self, cublasStatus_t s, const char *what)
{
    s_host->set_error (self, "cuda: cuBLASLt %s: %s", what, cublasLtGetStatusString (s));
    return -1;
}

//  0 done, 1 no algorithm for this configuration (caller falls back), -1 error.
//  probe: only ask the heuristic (A/B/D may be NULL).
static int s_lt_gemm_ex (vdgx_backend_t *self, const s_gemm_t *g, bool probe)
{
    s_cuda_t *c = s_priv (self);
    bool fp8 = g->at == VDGX_DTYPE_F8_E4M3, fp4 = g->at == VC_DT_E2M1;
    int ctype = g->dt;
    s_gkey_t key;
    memset (&key, 0, sizeof key);
    key.ta = g->ta; key.tb = g->tb; key.at = g->at; key.bt = g->bt; key.dt = g->dt;
    key.epi = g->bias != NULL; key.fp8 = fp8 ? 1 : fp4 ? 2 : 0; key.batch = g->batch;
    key.m = g->m; key.n = g->n; key.k = g->k; key.lda = g->lda; key.ldb = g->ldb; key.ldd = g->ldd;
    key.sa = g->sa; key.sb = g->sb; key.sd = g->sd;
    int al = s_align (g->A);
    if (s_align (g->B) < al) al = s_align (g->B);
    if (s_align (g->D) < al) al = s_align (g->D);
    if (g->bias && s_align (g->bias) < al) al = s_align (g->bias);
    key.align = probe ? 256 : al;

    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t s;
    int rc = -1;
    cublasOperation_t ta = g->ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g->tb ? CUBLAS_OP_T : CUBLAS_OP_N;

    if ((s = cublasLtMatmulDescCreate (&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F)) != CUBLAS_STATUS_SUCCESS) {
        s_lt_fail (self, s, "MatmulDescCreate");
        goto done;
    }
    cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (g->bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bdt = s_cdt (g->dt);
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias, sizeof g->bias);
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bdt, sizeof bdt);
    }
    if (fp8) {
        int8_t fast = 1;
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast);
        if (g->ascale)
            cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &g->ascale, sizeof g->ascale);
        if (g->bscale)
            cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &g->bscale, sizeof g->bscale);
    }
    if (fp4) {
        int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3;
        int32_t pm = CUBLASLT_POINTER_MODE_DEVICE;
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode);
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode);
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &g->ascale, sizeof g->ascale);
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &g->bscale, sizeof g->bscale);
        cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, &pm, sizeof pm);
    }
    {
        uint64_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k;
        uint64_t br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;
        if ((s = cublasLtMatrixLayoutCreate (&la, s_cdt (g->at), ar, ac, g->lda)) != CUBLAS_STATUS_SUCCESS
        ||  (s = cublasLtMatrixLayoutCreate (&lb, s_cdt (g->bt), br, bc, g->ldb)) != CUBLAS_STATUS_SUCCESS
        ||  (s = cublasLtMatrixLayoutCreate (&ld, s_cdt (ctype), g->m, g->n, g->ldd)) != CUBLAS_STATUS_SUCCESS) {
            s_lt_fail (self, s, "MatrixLayoutCreate");
            goto done;
        }
        if (g->batch > 1) {
            int32_t bc32 = g->batch;
            cublasLtMatrixLayoutSetAttribute (la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc32, sizeof bc32);
            cublasLtMatrixLayoutSetAttribute (lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc32, sizeof bc32);
            cublasLtMatrixLayoutSetAttribute (ld, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc32, sizeof bc32);
            cublasLtMatrixLayoutSetAttribute (la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &g->sa, sizeof g->sa);
            cublasLtMatrixLayoutSetAttribute (lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &g->sb, sizeof g->sb);
            cublasLtMatrixLayoutSetAttribute (ld, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &g->sd, sizeof g->sd);
        }
    }

    s_plan_t *plan = NULL;
    for (size_t i = 0; i < c->nplans; i++)
        if (memcmp (&c->plans [i].key, &key, sizeof key) == 0) {
            plan = &c->plans [i];
            break;
        }
    if (!plan) {
        if (c->nplans == c->plans_cap) {
            size_t ncap = c->plans_cap ? 2 * c->plans_cap : 32;
            s_plan_t *np = (s_plan_t *) realloc (c->plans, ncap * sizeof *np);
            if (!np) {
                s_host->set_error (self, "cuda: out of host memory");
                goto done;
            }
            c->plans = np;
            c->plans_cap = ncap;
        }
        plan = &c->plans [c->nplans++];
        memset (plan, 0, sizeof *plan);
        plan->key = key;
        uint64_t wsb = VC_WORKSPACE;
        uint32_t a32 = (uint32_t) key.align;
        cublasLtMatmulHeuristicResult_t res [VC_LT_CANDIDATES];
        int found = 0;
        memset (res, 0, sizeof res);
        if ((s = cublasLtMatmulPreferenceCreate (&pref)) == CUBLAS_STATUS_SUCCESS) {
            cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
            cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a32, sizeof a32);
            cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a32, sizeof a32);
            cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a32, sizeof a32);
            cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a32, sizeof a32);
            s = cublasLtMatmulAlgoGetHeuristic (c->lt, desc, la, lb, ld, ld, pref, VC_LT_CANDIDATES, res, &found);
        }
        if (s == CUBLAS_STATUS_SUCCESS)
            for (int i = 0; i < found && i < VC_LT_CANDIDATES; i++)
                if (res [i].state == CUBLAS_STATUS_SUCCESS && res [i].workspaceSize <= VC_WORKSPACE)
                    plan->algo [plan->nalgo++] = res [i].algo;
        plan->ok = plan->nalgo > 0;
    }
    if (!plan->ok) {
        rc = 1;
        goto done;
    }
    if (probe) {
        rc = 0;
        goto done;
    }
    {
        float alpha = 1.f, beta = 0.f;
        //  device pointer mode (NVFP4) takes alpha and beta from device memory
        const void *pa = fp4 ? (const void *) g->alpha_dev : (const void *) &alpha;
        const void *pb = fp4 ? (const void *) (c->scratch + VC_S_ZERO) : (const void *) &beta;
        s = CUBLAS_STATUS_NOT_SUPPORTED;
        while (plan->next < plan->nalgo
           &&  (s = cublasLtMatmul (c->lt, desc, pa, g->A, la, g->B, lb, pb, g->D, ld, g->D, ld,
                                    &plan->algo [plan->next], c->ws, VC_WORKSPACE, c->st))
               == CUBLAS_STATUS_NOT_SUPPORTED)
            plan->next++;       //  offered by the heuristic but refused at run time: try the next
        if (s == CUBLAS_STATUS_NOT_SUPPORTED) {
            //  every candidate refused: remember, and let the caller fall back
            plan->ok = false;
            rc = 1;
            goto done;
        }
        if (s != CUBLAS_STATUS_SUCCESS) {
            s_lt_fail (self, s, "Matmul");
            goto done;
        }
        rc = s_ck (self, cudaGetLastError (), "cublasLtMatmul");
    }
done:
    if (pref) cublasLtMatmulPreferenceDestroy (pref);
    if (la) cublasLtMatrixLayoutDestroy (la);
    if (lb) cublasLtMatrixLayoutDestroy (lb);
    if (ld) cublasLtMatrixLayoutDestroy (ld);
    if (desc) cublasLtMatmulDescDestroy (desc);
    return rc;
}

static int s_lt_gemm (vdgx_backend_t *self, const s_gemm_t *g)
{
    return s_lt_gemm_ex (self, g, false);
}

//  NVFP4 block-scaled probe (Blackwell): whether cuBLASLt offers an algorithm at all.
static bool s_probe_fp4 (s_cuda_t *c)
{
    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    bool ok = false;
    if (cublasLtMatmulDescCreate (&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS)
        return false;
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3;
    cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode);
    cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode);
    //  block-scaled modes want scale pointers; any aligned device buffer does for the query
    const void *sp = c->ws;
    cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sp, sizeof sp);
    cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sp, sizeof sp);
    if (cublasLtMatrixLayoutCreate (&la, CUDA_R_4F_E2M1, 1024, 1024, 1024) == CUBLAS_STATUS_SUCCESS
    &&  cublasLtMatrixLayoutCreate (&lb, CUDA_R_4F_E2M1, 1024, 1024, 1024) == CUBLAS_STATUS_SUCCESS
    &&  cublasLtMatrixLayoutCreate (&ld, CUDA_R_16BF, 1024, 1024, 1024) == CUBLAS_STATUS_SUCCESS
    &&  cublasLtMatmulPreferenceCreate (&pref) == CUBLAS_STATUS_SUCCESS) {
        uint64_t wsb = VC_WORKSPACE;
        cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
        cublasLtMatmulHeuristicResult_t res;
        int found = 0;
        if (cublasLtMatmulAlgoGetHeuristic (c->lt, desc, la, lb, ld, ld, pref, 1, &res, &found)
            == CUBLAS_STATUS_SUCCESS && found > 0)
            ok = true;
    }
    if (pref) cublasLtMatmulPreferenceDestroy (pref);
    if (la) cublasLtMatrixLayoutDestroy (la);
    if (lb) cublasLtMatrixLayoutDestroy (lb);
    if (ld) cublasLtMatrixLayoutDestroy (ld);
    cublasLtMatmulDescDestroy (desc);
    cudaGetLastError ();
    return ok;
}

//  --------------------------------------------------------------------------------------
//  Open / close

static void s_close (vdgx_backend_t *self)
{
    s_cuda_t *c = s_priv (self);
    if (!c)
        return;
    cudaSetDevice (c->dev);
    if (c->st)
        cudaStreamSynchronize (c->st);
    for (size_t i = 0; i < c->nblocks; i++)
        cudaFree (c->blocks [i].ptr);
    if (c->ws) cudaFree (c->ws);
    if (c->scratch) cudaFree (c->scratch);
    if (c->lt) cublasLtDestroy (c->lt);
    if (c->st) cudaStreamDestroy (c->st);
    free (c->blocks);
    free (c->plans);
    free (c);
    cudaGetLastError ();
    s_host->set_priv (self, NULL);
}

static int s_open_fail (vdgx_backend_t *self, s_cuda_t *c, char **err, const char *what, const char *why)
{
    if (err) {
        size_t n = strlen (what) + strlen (why) + 32;
        *err = (char *) malloc (n);
        if (*err)
            snprintf (*err, n, "cuda: %s: %s", what, why);
    }
    s_host->set_priv (self, c);
    s_close (self);
    return -1;
}

static int s_open (vdgx_backend_t *self, int ordinal, char **err)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount (&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError ();
        return s_open_fail (self, NULL, err, "no CUDA device",
                            e != cudaSuccess ? cudaGetErrorString (e) : "none found");
    }
    if (ordinal < 0 || ordinal >= count) {
        char why [64];
        snprintf (why, sizeof why, "ordinal %d, %d device(s)", ordinal, count);
        return s_open_fail (self, NULL, err, "no such device", why);
    }
    s_cuda_t *c = (s_cuda_t *) calloc (1, sizeof *c);
    if (!c)
        return s_open_fail (self, NULL, err, "open", "out of memory");
    c->dev = ordinal;
    struct cudaDeviceProp prop;
    if ((e = cudaSetDevice (ordinal)) != cudaSuccess
    ||  (e = cudaGetDeviceProperties (&prop, ordinal)) != cudaSuccess
    ||  (e = cudaStreamCreateWithFlags (&c->st, cudaStreamNonBlocking)) != cudaSuccess
    ||  (e = cudaMalloc (&c->ws, VC_WORKSPACE)) != cudaSuccess
    ||  (e = cudaMalloc ((void **) &c->scratch, VC_S_FLOATS * sizeof (float))) != cudaSuccess)
        return s_open_fail (self, c, err, "device set-up", cudaGetErrorString (e));
    c->sm = prop.major * 10 + prop.minor;
    if (cublasLtCreate (&c->lt) != CUBLAS_STATUS_SUCCESS)
        return s_open_fail (self, c, err, "cublasLtCreate", "failed");
    float init [VC_S_FLOATS] = { 0.f };
    init [VC_S_ASCALE] = init [VC_S_ONE] = init [VC_S_ALPHA] = 1.f;
    if ((e = cudaMemcpy (c->scratch, init, sizeof init, cudaMemcpyHostToDevice)) != cudaSuccess
    ||  (e = vc_set_nf4_table (s_host->nf4_values, c->st)) != cudaSuccess
    ||  (e = cudaStreamSynchronize (c->st)) != cudaSuccess)
        return s_open_fail (self, c, err, "device set-up", cudaGetErrorString (e));
    s_host->set_priv (self, c);

    static const char *const ln [] = { "auto", "lt", "mma", "naive", "dequant" };
    static const int lv [] = { PATH_AUTO, PATH_LT, PATH_MMA, PATH_NAIVE, PATH_DEQUANT };
    static const char *const an [] = { "auto", "flash", "naive", "flash_ldsm", "flash_pipe" };
    static const int av [] = { PATH_AUTO, PATH_FLASH, PATH_NAIVE, PATH_FLASH_LDSM, PATH_FLASH_PIPE };
    static const char *const cn [] = { "auto", "gemm", "naive" };
    static const int cv [] = { PATH_AUTO, PATH_GEMM, PATH_NAIVE };
    c->lin_path = s_path ("VDGX_CUDA_LINEAR", ln, lv, 5);
    c->attn_path = s_path ("VDGX_CUDA_ATTN", an, av, 5);
    c->conv_path = s_path ("VDGX_CUDA_CONV", cn, cv, 3);
    c->sync_each = getenv ("VDGX_CUDA_SYNC") && atoi (getenv ("VDGX_CUDA_SYNC")) > 0;

    //  FP8 through cuBLASLt needs sm_89+; ask the heuristic for a typical shape.
    if (c->sm >= 89) {
        s_gemm_t g;
        memset (&g, 0, sizeof g);
        g.ta = 1; g.tb = 0; g.m = 1536; g.n = 1024; g.k = 1536;
        g.at = g.bt = VDGX_DTYPE_F8_E4M3; g.lda = g.ldb = 1536;
        g.dt = VDGX_DTYPE_BF16; g.ldd = 1536; g.batch = 1;
        g.ascale = c->scratch + VC_S_ONE; g.bscale = c->scratch + VC_S_ONE;
        c->lt_fp8 = s_lt_gemm_ex (self, &g, true) == 0;
    }
    if (c->sm >= 100)
        c->lt_fp4 = s_probe_fp4 (c);
    snprintf (c->info, sizeof c->info,
              "%s (sm_%d, %d SMs, %.1f GiB); cuBLASLt FP8 %s, NVFP4 block-scaled %s; paths "
              "linear=%s attn=%s conv=%s", prop.name, c->sm, prop.multiProcessorCount,
              (double) prop.totalGlobalMem / (1 << 30), c->lt_fp8 ? "yes" : "no",
              c->lt_fp4 ? "yes" : "no",
              ln [c->lin_path < 5 ? c->lin_path : 0],
              c->attn_path == PATH_FLASH ? "flash" : c->attn_path == PATH_NAIVE ? "naive"
              : c->attn_path == PATH_FLASH_LDSM ? "flash_ldsm" : c->attn_path == PATH_FLASH_PIPE ? "flash_pipe"
              : "auto",
              c->conv_path == PATH_GEMM ? "gemm" : c->conv_path == PATH_NAIVE ? "naive" : "auto");
    cudaGetLastError ();
    return 0;
}

int vdgx_cuda_device_count (void)
{
    int n = 0;
    if (cudaGetDeviceCount (&n) != cudaSuccess) {
        cudaGetLastError ();
        return 0;
    }
    return n;
}

void *vdgx_cuda_stream (vdgx_backend_t *self)
{
    s_cuda_t *c = s_priv (self);
    return c ? (void *) c->st : NULL;
}

const char *vdgx_cuda_info (vdgx_backend_t *self)
{
    s_cuda_t *c = s_priv (self);
    return c ? c->info : "";
}

//  --------------------------------------------------------------------------------------
//  Weights

static int s_wfmt_layout (int fmt, int64_t n, int64_t k, size_t *data_bytes, size_t *scale_esize,
                          int64_t *scale_count)
{
    switch (fmt) {
        case VDGX_WFMT_F32: *data_bytes = (size_t) (n * k) * 4; *scale_esize = 0; *scale_count = 0; return 0;
        case VDGX_WFMT_BF16: case VDGX_WFMT_F16:
            *data_bytes = (size_t) (n * k) * 2; *scale_esize = 0; *scale_count = 0; return 0;
        case VDGX_WFMT_FP8_E4M3: *data_bytes = (size_t) (n * k); *scale_esize = 4; *scale_count = n; return 0;
        case VDGX_WFMT_NVFP4:
            if (k % 16) return -1;
            *data_bytes = (size_t) (n * k / 2); *scale_esize = 1; *scale_count = n * k / 16; return 0;
        case VDGX_WFMT_MXFP4:
            if (k % 32) return -1;
            *data_bytes = (size_t) (n * k / 2); *scale_esize = 1; *scale_count = n * k / 32; return 0;
        case VDGX_WFMT_NF4:
            if (k % 64) return -1;
            *data_bytes = (size_t) (n * k / 2); *scale_esize = 4; *scale_count = n * k / 64; return 0;
        default: return -1;
    }
}

static void s_weight_free (vdgx_backend_t *self, vdgx_weight_t *w)
{
    if (!w)
        return;
    s_raw_free (self, w->data);
    s_raw_free (self, w->scales);
    s_raw_free (self, w->backend_priv);
    w->data = w->scales = NULL;
    w->backend_priv = NULL;
}

//  NVFP4 weights on a device whose cuBLASLt offers block-scaled FP4: the scales again in the
//  tiled layout (backend_priv); data and scales stay in the vdgx_quant.h layout for the other
//  paths and the CPU fallback.
static int s_weight_prepare (vdgx_backend_t *self, vdgx_weight_t *w)
{
    s_cuda_t *c = s_priv (self);
    if (w->fmt != VDGX_WFMT_NVFP4 || !c->lt_fp4)
        return 0;
    w->backend_priv = s_raw_alloc (self, vc_swizzled_bytes (w->n, w->k / 16));
    if (!w->backend_priv
        || s_ck (self, vc_swizzle_scales (c->st, (uint8_t *) w->backend_priv, (const uint8_t *) w->scales,
                                          w->n, w->k / 16), "swizzle scales")
        || s_synchronize (self))
        return -1;
    return 0;
}

static int s_weight_upload (vdgx_backend_t *self, vdgx_weight_t *dst, const vdgx_weight_t *host)
{
    s_cuda_t *c = s_priv (self);
    size_t db, se;
    int64_t sc;
    if (!dst || !host || !host->data || host->n <= 0 || host->k <= 0
    ||  s_wfmt_layout (host->fmt, host->n, host->k, &db, &se, &sc)) {
        s_host->set_error (self, "cuda weight_upload: bad weight (format %d, %lld x %lld)",
                                host ? (int) host->fmt : -1, host ? (long long) host->n : 0LL,
                                host ? (long long) host->k : 0LL);
        return -1;
    }
    if (host->fmt == VDGX_WFMT_FP8_E4M3) {
        if (host->scale_count != 1 && host->scale_count != host->n) {
            s_host->set_error (self, "cuda weight_upload: FP8 weight has %lld scales, expected 1 or %lld",
                                    (long long) host->scale_count, (long long) host->n);
            return -1;
        }
        sc = host->scale_count;
    }
    else
    if (se && host->scale_count != sc) {
        s_host->set_error (self, "cuda weight_upload: %lld scales, expected %lld",
                                (long long) host->scale_count, (long long) sc);
        return -1;
    }
    if (se && !host->scales) {
        s_host->set_error (self, "cuda weight_upload: quantized weight without scales");
        return -1;
    }
    vdgx_weight_t w;
    memset (&w, 0, sizeof w);
    w.fmt = host->fmt;
    w.n = host->n;
    w.k = host->k;
    w.global_scale = host->fmt == VDGX_WFMT_NVFP4 ? host->global_scale : 1.f;
    w.device = c->dev;
    w.owner = self;
    if (host->fmt == VDGX_WFMT_F16) {
        //  F16 weights run as BF16 (cuBLASLt BF16 GEMM; same exponent range as the activations).
        void *tmp = s_raw_alloc (self, db);
        w.data = s_raw_alloc (self, db);
        int rc = (!tmp || !w.data) ? -1 : s_upload (self, tmp, host->data, db);
        if (rc == 0)
            rc = s_ck (self, vc_cast (c->st, w.data, VDGX_DTYPE_BF16, tmp, VDGX_DTYPE_F16, host->n * host->k),
                       "weight_upload f16->bf16");
        if (rc == 0)
            rc = s_synchronize (self);
        s_raw_free (self, tmp);
        if (rc) {
            s_weight_free (self, &w);
            return -1;
        }
        w.fmt = VDGX_WFMT_BF16;
        *dst = w;
        return 0;
    }
    w.data = s_raw_alloc (self, db);
    if (!w.data || s_upload (self, w.data, host->data, db)) {
        s_weight_free (self, &w);
        return -1;
    }
    if (se) {
        w.scales = s_raw_alloc (self, (size_t) sc * se);
        w.scale_count = sc;
        if (!w.scales || s_upload (self, w.scales, host->scales, (size_t) sc * se)) {
            s_weight_free (self, &w);
            return -1;
        }
    }
    if (s_weight_prepare (self, &w)) {
        s_weight_free (self, &w);
        return -1;
    }
    *dst = w;
    return 0;
}

static vc_wdesc_t s_wdesc (const vdgx_weight_t *w)
{
    vc_wdesc_t d = { (int) w->fmt, w->n, w->k, w->data, w->scales, w->scale_count, w->global_scale };
    return d;
}

//  --------------------------------------------------------------------------------------
//  linear

//  BF16 (or F32) weights through cuBLASLt: D[N, M] (col-major) = W^T(op T) . X.
//  Returns 1 when cuBLASLt offers nothing for this configuration.
static int s_linear_lt (vdgx_backend_t *self, vdgx_tensor_t *y, const void *xw, int wdt,
                        const void *wdata, int64_t M, int64_t N, int64_t K, const vdgx_tensor_t *bias,
                        const float *ascale, const float *bscale)
{
    s_cuda_t *c = s_priv (self);
    //  D dtype: y's when cuBLASLt can write it (BF16 from BF16/FP8, F32 always), else F32.
    int ddt = (y->dtype == VDGX_DTYPE_F32 || (y->dtype == VDGX_DTYPE_BF16 && wdt != VDGX_DTYPE_F32))
            ? y->dtype : VDGX_DTYPE_F32;
    void *dtmp = NULL, *btmp = NULL;
    void *D = y->data;
    int rc = -1;
    if (ddt != (int) y->dtype && !(D = dtmp = s_alloc (self, (size_t) (M * N) * 4)))
        return -1;
    const void *bp = NULL;
    if (bias && !(bp = s_as (self, bias->data, bias->dtype, ddt, N, &btmp)))
        goto done;
    s_gemm_t g;
    memset (&g, 0, sizeof g);
    g.ta = 1; g.tb = 0; g.m = N; g.n = M; g.k = K;
    g.A = wdata; g.at = wdt; g.lda = K;
    g.B = xw; g.bt = wdt; g.ldb = K;
    g.D = D; g.dt = ddt; g.ldd = N; g.batch = 1;
    g.bias = bp; g.ascale = ascale; g.bscale = bscale;
    rc = s_lt_gemm (self, &g);
    if (rc == 1 && bp) {
        //  No algorithm with the bias epilogue: plain GEMM, then the bias kernel.
        g.bias = NULL;
        rc = s_lt_gemm (self, &g);
        if (rc == 0)
            rc = s_ck (self, vc_col_scale_bias (c->st, D, ddt, M, N, NULL, 0, bp, ddt), "bias");
    }
    if (rc == 0 && dtmp)
        rc = s_ck (self, vc_cast (c->st, y->data, y->dtype, dtmp, ddt, M * N), "cast");
done:
    s_free (self, dtmp);
    s_free (self, btmp);
    return rc;
}

static int s_linear (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                     const vdgx_weight_t *w, const vdgx_tensor_t *bias)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, x, "linear", "x") || s_chk (self, y, "linear", "y"))
        return -1;
    if (!w || !w->data || w->n <= 0 || w->k <= 0 || w->owner != (void *) self) {
        s_host->set_error (self, "cuda linear: weight is missing or not on this backend");
        return -1;
    }
    int64_t N = w->n, K = w->k;
    if (x->ndim < 1 || x->shape [x->ndim - 1] != K || y->shape [y->ndim - 1] != N
    ||  s_numel (x) / K != s_numel (y) / N) {
        s_host->set_error (self, "cuda linear: x [..., %lld] / y [..., %lld] do not match W [%lld, %lld]",
                                (long long) x->shape [x->ndim > 0 ? x->ndim - 1 : 0],
                                (long long) y->shape [y->ndim > 0 ? y->ndim - 1 : 0],
                                (long long) N, (long long) K);
        return -1;
    }
    if (s_chk_opt (self, bias, "linear", "bias", N))
        return -1;
    int64_t M = s_numel (x) / K;
    if (M == 0)
        return 0;
    int path = c->lin_path;
    int rc = 1;
    void *xt = NULL, *wt = NULL, *qt = NULL;
    const void *bp = bias ? bias->data : NULL;
    int bdt = bias ? bias->dtype : VDGX_DTYPE_F32;
    vc_wdesc_t wd = s_wdesc (w);

    if (w->fmt == VDGX_WFMT_BF16 || w->fmt == VDGX_WFMT_F32) {
        int wdt = w->fmt == VDGX_WFMT_BF16 ? VDGX_DTYPE_BF16 : VDGX_DTYPE_F32;
        if (path == PATH_AUTO || path == PATH_LT || path == PATH_DEQUANT) {
            const void *xw = s_as (self, x->data, x->dtype, wdt, M * K, &xt);
            rc = xw ? s_linear_lt (self, y, xw, wdt, w->data, M, N, K, bias, NULL, NULL) : -1;
        }
    }
    else
    if (w->fmt == VDGX_WFMT_NVFP4 && c->lt_fp4 && w->backend_priv && (path == PATH_AUTO || path == PATH_LT)
        && K % 32 == 0) {
        //  Blackwell: activations to NVFP4 on the fly, block-scaled FP4 GEMM in cuBLASLt.
        qt = s_alloc (self, (size_t) (M * K / 2));
        void *st_ = s_alloc (self, vc_swizzled_bytes (M, K / 16));
        rc = (!qt || !st_) ? -1
           : s_ck (self, vc_amax (c->st, x->data, x->dtype, M * K, c->scratch + VC_S_AMAX), "amax")
           ? -1 : s_ck (self, vc_quant_act_nvfp4 (c->st, (uint8_t *) qt, (uint8_t *) st_, x->data, x->dtype,
                                                  M, K, c->scratch + VC_S_AMAX, w->global_scale,
                                                  c->scratch + VC_S_ALPHA),
                        "quant nvfp4");
        if (rc == 0) {
            int ddt = (y->dtype == VDGX_DTYPE_F32 || y->dtype == VDGX_DTYPE_BF16) ? y->dtype : VDGX_DTYPE_F32;
            void *dtmp = NULL, *btmp = NULL;
            void *D = y->data;
            const void *bq = NULL;
            if (ddt != (int) y->dtype && !(D = dtmp = s_alloc (self, (size_t) (M * N) * 4)))
                rc = -1;
            if (rc == 0 && bias && !(bq = s_as (self, bias->data, bias->dtype, ddt, N, &btmp)))
                rc = -1;
            if (rc == 0) {
                s_gemm_t g;
                memset (&g, 0, sizeof g);
                g.ta = 1; g.tb = 0; g.m = N; g.n = M; g.k = K;
                g.A = w->data; g.at = VC_DT_E2M1; g.lda = K;
                g.B = qt; g.bt = VC_DT_E2M1; g.ldb = K;
                g.D = D; g.dt = ddt; g.ldd = N; g.batch = 1;
                g.bias = bq; g.ascale = w->backend_priv; g.bscale = st_; g.alpha_dev = c->scratch + VC_S_ALPHA;
                rc = s_lt_gemm (self, &g);
                if (rc == 1 && bq) {
                    g.bias = NULL;
                    rc = s_lt_gemm (self, &g);
                    if (rc == 0)
                        rc = s_ck (self, vc_col_scale_bias (c->st, D, ddt, M, N, NULL, 0, bq, ddt), "bias");
                }
                if (rc == 0 && dtmp)
                    rc = s_ck (self, vc_cast (c->st, y->data, y->dtype, dtmp, ddt, M * N), "cast");
            }
            s_free (self, dtmp);
            s_free (self, btmp);
        }
        s_free (self, st_);
        s_free (self, qt);
        qt = NULL;
    }
    else
    if (w->fmt == VDGX_WFMT_FP8_E4M3 && c->lt_fp8 && (path == PATH_AUTO || path == PATH_LT)
        && K % 16 == 0 && N % 16 == 0) {
        //  Activations to E4M3 with one scale (amax / 448) computed on the device.
        qt = s_alloc (self, (size_t) (M * K));
        rc = !qt ? -1
           : s_ck (self, vc_amax (c->st, x->data, x->dtype, M * K, c->scratch + VC_S_AMAX), "amax")
           ? -1 : s_ck (self, vc_quant_e4m3 (c->st, (uint8_t *) qt, x->data, x->dtype, M * K,
                                             c->scratch + VC_S_AMAX, c->scratch + VC_S_ASCALE), "quant e4m3");
        if (rc == 0) {
            bool per_tensor = w->scale_count == 1;
            rc = s_linear_lt (self, y, qt, VDGX_DTYPE_F8_E4M3, w->data, M, N, K,
                              per_tensor ? bias : NULL,
                              per_tensor ? (const float *) w->scales : c->scratch + VC_S_ONE,
                              c->scratch + VC_S_ASCALE);
            if (rc == 0 && !per_tensor)
                rc = s_ck (self, vc_col_scale_bias (c->st, y->data, y->dtype, M, N,
                                                    (const float *) w->scales, N, bp, bdt), "fp8 epilogue");
        }
    }
    if (rc == 1 && w->fmt != VDGX_WFMT_F32 && w->fmt != VDGX_WFMT_BF16
        && (path == PATH_DEQUANT || (path == PATH_AUTO && M >= 256))) {
        //  Large M is compute bound: dequantize once into BF16 and use cuBLASLt's GEMM.
        wt = s_alloc (self, (size_t) (N * K) * 2);
        const void *xw = s_as (self, x->data, x->dtype, VDGX_DTYPE_BF16, M * K, &xt);
        rc = (!wt || !xw) ? -1 : s_ck (self, vc_wdequant_bf16 (c->st, (uint16_t *) wt, &wd), "dequant");
        if (rc == 0)
            rc = s_linear_lt (self, y, xw, VDGX_DTYPE_BF16, wt, M, N, K, bias, NULL, NULL);
    }
    if (rc == 1 && path != PATH_NAIVE && c->sm >= 80) {
        s_free (self, xt);
        xt = NULL;
        const void *xw = s_as (self, x->data, x->dtype, VDGX_DTYPE_BF16, M * K, &xt);
        rc = !xw ? -1 : 0;
        for (int64_t m0 = 0; rc == 0 && m0 < M; m0 += 65535 * 64) {
            int64_t mc = M - m0 < 65535 * 64 ? M - m0 : 65535 * 64;
            rc = s_ck (self, vc_wgemm (c->st, 1, (char *) y->data + (size_t) (m0 * N) * s_esize (y->dtype),
                                       y->dtype, (const char *) xw + (size_t) (m0 * K) * 2,
                                       VDGX_DTYPE_BF16, mc, &wd, bp, bdt), "weight-only mma gemm");
        }
    }
    if (rc == 1)
        rc = s_ck (self, vc_wgemm (c->st, 0, y->data, y->dtype, x->data, x->dtype, M, &wd, bp, bdt),
                   "naive gemm");
    s_free (self, xt);
    s_free (self, wt);
    s_free (self, qt);
    return rc;
}

//  y[B,M,N] = a[B,M,K] . b[B,K,N]; b may have batch 1 (shared).
static int s_matmul (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *a,
                     const vdgx_tensor_t *b)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, a, "matmul", "a") || s_chk (self, b, "matmul", "b")
        || s_chk (self, y, "matmul", "y"))
        return -1;
    if (a->ndim < 2 || b->ndim < 2) {
        s_host->set_error (self, "cuda matmul: a and b need at least 2 dims");
        return -1;
    }
    int64_t M = a->shape [a->ndim - 2], K = a->shape [a->ndim - 1];
    int64_t K2 = b->shape [b->ndim - 2], N = b->shape [b->ndim - 1];
    int64_t Ba = (M * K != 0) ? s_numel (a) / (M * K) : 0, Bb = (K2 * N != 0) ? s_numel (b) / (K2 * N) : 0;
    if (K != K2 || (Bb != Ba && Bb != 1) || s_numel (y) != Ba * M * N) {
        s_host->set_error (self, "cuda matmul: shapes do not match ([%lld,%lld,%lld] . [%lld,%lld,%lld])",
                                (long long) Ba, (long long) M, (long long) K, (long long) Bb,
                                (long long) K2, (long long) N);
        return -1;
    }
    if (s_numel (y) == 0)
        return 0;
    int cdt = (a->dtype == VDGX_DTYPE_F32 && b->dtype == VDGX_DTYPE_F32) ? VDGX_DTYPE_F32 : VDGX_DTYPE_BF16;
    void *at = NULL, *bt = NULL, *dt = NULL;
    int rc = 1;
    if (c->lin_path != PATH_NAIVE) {
        const void *ap = s_as (self, a->data, a->dtype, cdt, s_numel (a), &at);
        const void *bp = s_as (self, b->data, b->dtype, cdt, s_numel (b), &bt);
        int ddt = (y->dtype == VDGX_DTYPE_F32 || (y->dtype == VDGX_DTYPE_BF16 && cdt == VDGX_DTYPE_BF16))
                ? y->dtype : VDGX_DTYPE_F32;
        void *D = y->data;
        if (ddt != (int) y->dtype)
            D = dt = s_alloc (self, (size_t) s_numel (y) * 4);
        if (!ap || !bp || !D)
            rc = -1;
        else {
            //  Column-major view: D^T[N, M] = b^T[N, K] . a^T[K, M], both op N.
            s_gemm_t g;
            memset (&g, 0, sizeof g);
            g.ta = 0; g.tb = 0; g.m = N; g.k = K;
            g.A = bp; g.at = cdt; g.lda = N;
            g.B = ap; g.bt = cdt; g.ldb = K;
            g.D = D; g.dt = ddt; g.ldd = N;
            if (Bb == 1 || Ba == 1) {      //  shared b: fold the batch into the rows
                g.n = M * Ba;
                g.batch = 1;
            }
            else {
                g.n = M;
                g.batch = (int) Ba;
                g.sa = K * N; g.sb = M * K; g.sd = M * N;
            }
            rc = Ba > INT_MAX ? 1 : s_lt_gemm (self, &g);
            if (rc == 0 && dt)
                rc = s_ck (self, vc_cast (c->st, y->data, y->dtype, D, ddt, s_numel (y)), "cast");
        }
    }
    if (rc == 1)
        rc = s_ck (self, vc_matmul_naive (c->st, y->data, y->dtype, a->data, a->dtype, b->data,
                                          b->dtype, Ba, M, N, K, M * K, Bb == 1 ? 0 : K * N),
                   "naive matmul");
    s_free (self, at);
    s_free (self, bt);
    s_free (self, dt);
    return rc;
}

//  --------------------------------------------------------------------------------------
//  attention

static int s_attention (vdgx_backend_t *self, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                        const vdgx_tensor_t *k, const vdgx_tensor_t *v, const vdgx_attn_spec_t *spec,
                        float scale)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, q, "attention", "q") || s_chk (self, o, "attention", "o"))
        return -1;
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || o->ndim != 4) {
        s_host->set_error (self, "cuda attention: q, k, v, o must be [B, L, H, D]");
        return -1;
    }
    int64_t B = q->shape [0], Lq = q->shape [1], H = q->shape [2], D = q->shape [3], Lk = k->shape [1];
    int64_t Hkv = k->shape [2];
    //  k, v: the wrapper has checked them ([B,Lk,Hkv,D], inner dims contiguous, one batch stride).
    int64_t kvb = B > 1 ? k->stride [0] : Lk * Hkv * D;
    bool kv_dense = kvb == Lk * Hkv * D;
    if (!k->data || !v->data || !s_isfloat (k->dtype) || !s_isfloat (v->dtype)) {
        s_host->set_error (self, "cuda attention: k and v must be float tensors with data");
        return -1;
    }
    for (int i = 0; i < 4; i++)
        if (o->shape [i] != q->shape [i] || v->shape [i] != k->shape [i]
            || (i != 1 && i != 2 && k->shape [i] != q->shape [i]) || Hkv <= 0 || H % Hkv) {
            s_host->set_error (self, "cuda attention: q/k/v/o shapes do not match");
            return -1;
        }
    const vdgx_tensor_t *key_mask = spec->key_mask, *bias = spec->bias;
    if (key_mask && (!key_mask->data || key_mask->dtype != VDGX_DTYPE_U8 || s_numel (key_mask) != B * Lk)) {
        s_host->set_error (self, "cuda attention: key_mask must be U8 [B, Lk]");
        return -1;
    }
    if (s_chk_opt (self, bias, "attention", "bias", H * Lq * Lk))
        return -1;
    if (B * Lq * H == 0)
        return 0;
    void *tq = NULL, *tk = NULL, *tv = NULL, *tb = NULL;
    int rc = -1;
    const void *qp = q->data, *kp = k->data, *vp = v->data;
    int qdt = q->dtype;
    if ((int) k->dtype != qdt || (int) v->dtype != qdt) {
        if (!kv_dense) {        //  supports_op sends this case to the CPU
            s_host->set_error (self, "cuda attention: a strided k/v view needs q, k, v of one dtype");
            return -1;
        }
        qdt = VDGX_DTYPE_F32;
        if (!(qp = s_as (self, q->data, q->dtype, qdt, s_numel (q), &tq))
        ||  !(kp = s_as (self, k->data, k->dtype, qdt, s_numel (k), &tk))
        ||  !(vp = s_as (self, v->data, v->dtype, qdt, s_numel (v), &tv)))
            goto done;
    }
    const float *bp = NULL;
    if (bias && !(bp = (const float *) s_as (self, bias->data, bias->dtype, VDGX_DTYPE_F32, H * Lq * Lk, &tb)))
        goto done;
    const uint8_t *mp = key_mask ? (const uint8_t *) key_mask->data : NULL;
    vc_attn_mask_t am = { (int) spec->kind, spec->q_offset, spec->window, spec->block };
    cudaError_t e = cudaErrorNotSupported;
    if (c->attn_path != PATH_NAIVE && c->sm >= 80)
        e = vc_attention (c->st, c->attn_path == PATH_FLASH_LDSM ? 2 : c->attn_path == PATH_FLASH_PIPE ? 3 : 1,
                          o->data, o->dtype, qp, kp, vp,
                          qdt, B, Lq, Lk, H, Hkv, D, kvb, am, mp, bp, scale);
    if (e == cudaErrorNotSupported) {
        cudaGetLastError ();
        e = vc_attention (c->st, 0, o->data, o->dtype, qp, kp, vp, qdt, B, Lq, Lk, H, Hkv, D, kvb, am, mp,
                          bp, scale);
        if (e == cudaErrorNotSupported) {
            s_host->set_error (self, "cuda attention: head dim %lld is over 512", (long long) D);
            goto done;
        }
    }
    rc = s_ck (self, e, "attention");
done:
    s_free (self, tq);
    s_free (self, tk);
    s_free (self, tv);
    s_free (self, tb);
    return rc;
}

//  --------------------------------------------------------------------------------------
//  Norms and elementwise

static int s_norm_mod (vdgx_backend_t *self, const char *op, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                       const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta, float eps, bool rms,
                       const vdgx_tensor_t *shift, const vdgx_tensor_t *scale)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, x, op, "x") || s_chk (self, y, op, "y"))
        return -1;
    if (x->ndim < 1 || s_numel (y) != s_numel (x)) {
        s_host->set_error (self, "cuda %s: x and y differ in size", op);
        return -1;
    }
    int64_t C = x->shape [x->ndim - 1];
    if (C == 0)
        return 0;
    int64_t rows = s_numel (x) / C;
    if (s_chk_opt (self, gamma, op, "gamma", C) || s_chk_opt (self, beta, op, "beta", C))
        return -1;
    int64_t Bx = x->ndim >= 3 ? x->shape [0] : 1, L = Bx ? rows / Bx : 1, Bm = 1;
    const vdgx_tensor_t *m = shift ? shift : scale;
    if (m) {
        Bm = s_numel (m) / C;
        if (Bm * C != s_numel (m) || (Bm != 1 && Bm != Bx)
            || s_chk_opt (self, shift, op, "shift", Bm * C) || s_chk_opt (self, scale, op, "scale", Bm * C)) {
            s_host->set_error (self, "cuda %s: shift/scale must be [B, C] or [C]", op);
            return -1;
        }
    }
    return s_ck (self, vc_norm (c->st, y->data, y->dtype, x->data, x->dtype, rows, C,
                                gamma ? gamma->data : NULL, gamma ? gamma->dtype : 0,
                                beta ? beta->data : NULL, beta ? beta->dtype : 0, eps, rms,
                                shift ? shift->data : NULL, shift ? shift->dtype : 0,
                                scale ? scale->data : NULL, scale ? scale->dtype : 0, L, Bm), op);
}

static int s_layernorm (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                        const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta, float eps)
{
    return s_norm_mod (self, "layernorm", y, x, gamma, beta, eps, false, NULL, NULL);
}

static int s_rmsnorm (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                      const vdgx_tensor_t *gamma, float eps)
{
    return s_norm_mod (self, "rmsnorm", y, x, gamma, NULL, eps, true, NULL, NULL);
}

int vdgx_cuda_norm_modulate (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                             const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta, float eps,
                             bool rms, const vdgx_tensor_t *shift, const vdgx_tensor_t *scale)
{
    return s_norm_mod (self, "norm_modulate", y, x, gamma, beta, eps, rms, shift, scale);
}

static int s_chnorm (vdgx_backend_t *self, const char *op, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                     const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta, bool silu)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, x, op, "x") || s_chk (self, y, op, "y"))
        return -1;
    if (x->ndim < 2 || s_numel (y) != s_numel (x)) {
        s_host->set_error (self, "cuda %s: x must be [N, C, ...] and y the same size", op);
        return -1;
    }
    int64_t N = x->shape [0], C = x->shape [1];
    if (N * C == 0)
        return 0;
    int64_t S = s_numel (x) / (N * C);
    if (s_chk_opt (self, gamma, op, "gamma", C) || s_chk_opt (self, beta, op, "beta", C))
        return -1;
    return s_ck (self, vc_channel_rmsnorm (c->st, y->data, y->dtype, x->data, x->dtype, N, C, S,
                                           gamma ? gamma->data : NULL, gamma ? gamma->dtype : 0,
                                           beta ? beta->data : NULL, beta ? beta->dtype : 0, silu),
                 op);
}

static int s_channel_rmsnorm (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                              const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta)
{
    return s_chnorm (self, "channel_rmsnorm", y, x, gamma, beta, false);
}

//  The norm and its SiLU in one kernel: x read once, y written once (the two ops the wrapper
//  would otherwise run read and write y a second time).
static int s_channel_rmsnorm_silu (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                                   const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta)
{
    return s_chnorm (self, "channel_rmsnorm_silu", y, x, gamma, beta, true);
}

//  [B, L, C] with a per-(batch, channel) operand of [B, C] or [C].
static int s_bc (vdgx_backend_t *self, const char *op, const vdgx_tensor_t *x, const vdgx_tensor_t *m,
                 int64_t *rows, int64_t *C, int64_t *L, int64_t *Bm)
{
    *C = x->ndim ? x->shape [x->ndim - 1] : 1;
    *rows = *C ? s_numel (x) / *C : 0;
    int64_t Bx = x->ndim >= 3 ? x->shape [0] : 1;
    *L = Bx ? *rows / Bx : 1;
    *Bm = 1;
    if (m) {
        if (s_chk (self, m, op, "operand"))
            return -1;
        *Bm = *C ? s_numel (m) / *C : 1;
        if (*Bm * *C != s_numel (m) || (*Bm != 1 && *Bm != Bx)) {
            s_host->set_error (self, "cuda %s: operand has %lld elements, expected [B=%lld, C=%lld] or [C]",
                                    op, (long long) s_numel (m), (long long) Bx, (long long) *C);
            return -1;
        }
    }
    return 0;
}

static int s_modulate (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                       const vdgx_tensor_t *shift, const vdgx_tensor_t *scale)
{
    s_cuda_t *c = s_priv (self);
    int64_t rows, C, L, Bm, Bm2;
    if (s_enter (self) || s_chk (self, x, "modulate", "x") || s_chk (self, y, "modulate", "y")
        || s_bc (self, "modulate", x, shift, &rows, &C, &L, &Bm)
        || s_bc (self, "modulate", x, scale, &rows, &C, &L, &Bm2))
        return -1;
    if (s_numel (y) != s_numel (x) || (shift && scale && Bm != Bm2)) {
        s_host->set_error (self, "cuda modulate: sizes do not match");
        return -1;
    }
    if (!shift) Bm = Bm2;
    return s_ck (self, vc_modulate (c->st, y->data, y->dtype, x->data, x->dtype, rows, C, L, Bm,
                                    shift ? shift->data : NULL, shift ? shift->dtype : 0,
                                    scale ? scale->data : NULL, scale ? scale->dtype : 0), "modulate");
}

static int s_gated_residual (vdgx_backend_t *self, vdgx_tensor_t *x, const vdgx_tensor_t *y,
                             const vdgx_tensor_t *gate)
{
    s_cuda_t *c = s_priv (self);
    int64_t rows, C, L, Bm;
    if (s_enter (self) || s_chk (self, x, "gated_residual", "x") || s_chk (self, y, "gated_residual", "y")
        || s_bc (self, "gated_residual", x, gate, &rows, &C, &L, &Bm))
        return -1;
    if (s_numel (y) != s_numel (x)) {
        s_host->set_error (self, "cuda gated_residual: x and y differ in size");
        return -1;
    }
    return s_ck (self, vc_gated_residual (c->st, x->data, x->dtype, y->data, y->dtype, rows, C, L, Bm,
                                          gate ? gate->data : NULL, gate ? gate->dtype : 0),
                 "gated_residual");
}

static int s_unary (vdgx_backend_t *self, const char *op, int kind, vdgx_tensor_t *y,
                    const vdgx_tensor_t *x, float a, float b, float lo, float hi)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, x, op, "x") || s_chk (self, y, op, "y"))
        return -1;
    if (s_numel (y) != s_numel (x)) {
        s_host->set_error (self, "cuda %s: x and y differ in size", op);
        return -1;
    }
    return s_ck (self, vc_unary (c->st, kind, y->data, y->dtype, x->data, x->dtype, s_numel (x),
                                 a, b, lo, hi), op);
}

static int s_gelu_tanh (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    return s_unary (self, "gelu_tanh", VC_U_GELU, y, x, 0, 0, 0, 0);
}

static int s_silu (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    return s_unary (self, "silu", VC_U_SILU, y, x, 0, 0, 0, 0);
}

static int s_affine_clamp (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                           float alpha, float beta, float lo, float hi)
{
    return s_unary (self, "affine_clamp", VC_U_AFFINE, y, x, alpha, beta, lo, hi);
}

static int s_binary (vdgx_backend_t *self, const char *op, int kind, vdgx_tensor_t *y,
                     const vdgx_tensor_t *a, const vdgx_tensor_t *b, float alpha)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, a, op, "a") || s_chk (self, b, op, "b") || s_chk (self, y, op, "y"))
        return -1;
    int64_t n = s_numel (a), nb = s_numel (b);
    if (s_numel (y) != n || (n > 0 && (nb == 0 || n % nb != 0))) {
        s_host->set_error (self, "cuda %s: b (%lld elements) does not broadcast to a (%lld)", op,
                                (long long) nb, (long long) n);
        return -1;
    }
    return s_ck (self, vc_binary (c->st, kind, y->data, y->dtype, a->data, a->dtype, b->data, b->dtype,
                                  n, nb, alpha), op);
}

static int s_add_scaled (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *a,
                         const vdgx_tensor_t *b, float alpha)
{
    return s_binary (self, "add_scaled", VC_B_ADD, y, a, b, alpha);
}

static int s_mul (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *b)
{
    return s_binary (self, "mul", VC_B_MUL, y, a, b, 1.f);
}

static int s_rope (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                   const vdgx_tensor_t *cos_t, const vdgx_tensor_t *sin_t, vdgx_rope_layout_t layout)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, x, "rope", "x") || s_chk (self, y, "rope", "y")
        || s_chk (self, cos_t, "rope", "cos") || s_chk (self, sin_t, "rope", "sin"))
        return -1;
    if (x->ndim != 4 || s_numel (y) != s_numel (x) || x->shape [3] % 2 || cos_t->dtype != sin_t->dtype) {
        s_host->set_error (self, "cuda rope: x must be [B, L, H, D] with even D, y the same size");
        return -1;
    }
    int64_t B = x->shape [0], L = x->shape [1], H = x->shape [2], D = x->shape [3];
    if (s_numel (cos_t) != L * D / 2 || s_numel (sin_t) != L * D / 2) {
        s_host->set_error (self, "cuda rope: cos/sin must be [L=%lld, D/2=%lld]", (long long) L,
                                (long long) (D / 2));
        return -1;
    }
    if (layout != VDGX_ROPE_INTERLEAVED && layout != VDGX_ROPE_HALF) {
        s_host->set_error (self, "cuda rope: unknown layout %d", (int) layout);
        return -1;
    }
    return s_ck (self, vc_rope (c->st, y->data, y->dtype, x->data, x->dtype, B, L, H, D, cos_t->data,
                                sin_t->data, cos_t->dtype, layout == VDGX_ROPE_HALF), "rope");
}

//  Layout ops move bytes, so they accept any dtype but need x and y to agree.
static int s_same (vdgx_backend_t *self, const char *op, const vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    if (!x || !y || !x->data || !y->data || x->dtype != y->dtype || !s_esize (x->dtype)
        || !s_contig (x) || !s_contig (y) || x->ndim < 1 || x->ndim > VDGX_MAX_DIMS) {
        s_host->set_error (self, "cuda %s: x and y must be contiguous tensors of one dtype", op);
        return -1;
    }
    return 0;
}

static int s_permute (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, const int *perm)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_same (self, "permute", y, x))
        return -1;
    int seen = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (!perm || perm [i] < 0 || perm [i] >= x->ndim || (seen & (1 << perm [i]))
            || y->shape [i] != x->shape [perm [i]] || y->ndim != x->ndim) {
            s_host->set_error (self, "cuda permute: bad permutation or output shape");
            return -1;
        }
        seen |= 1 << perm [i];
    }
    return s_ck (self, vc_permute (c->st, y->data, x->data, (int) s_esize (x->dtype), x->ndim, x->shape,
                                   perm), "permute");
}

static int s_dim (const vdgx_tensor_t *t, int dim, int64_t *outer, int64_t *inner)
{
    if (dim < 0)
        dim += t->ndim;
    if (dim < 0 || dim >= t->ndim)
        return -1;
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < dim; i++) *outer *= t->shape [i];
    for (int i = dim + 1; i < t->ndim; i++) *inner *= t->shape [i];
    return dim;
}

static int s_concat (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *a,
                     const vdgx_tensor_t *b, int dim)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_same (self, "concat", y, a) || s_same (self, "concat", y, b))
        return -1;
    int64_t outer, inner, o2, i2;
    int d = s_dim (a, dim, &outer, &inner);
    bool ok = d >= 0 && a->ndim == b->ndim && a->ndim == y->ndim;
    for (int i = 0; ok && i < a->ndim; i++)
        ok = i == d ? y->shape [i] == a->shape [i] + b->shape [i]
                    : (a->shape [i] == b->shape [i] && y->shape [i] == a->shape [i]);
    if (!ok || s_dim (b, dim, &o2, &i2) < 0) {
        s_host->set_error (self, "cuda concat: shapes do not match along dim %d", dim);
        return -1;
    }
    size_t es = s_esize (a->dtype);
    size_t wa = (size_t) (a->shape [d] * inner) * es, wb = (size_t) (b->shape [d] * inner) * es;
    size_t wy = wa + wb;
    if (outer == 0 || wy == 0)
        return 0;
    if (wa && s_ck (self, cudaMemcpy2DAsync (y->data, wy, a->data, wa, wa, (size_t) outer,
                                             cudaMemcpyDeviceToDevice, c->st), "concat"))
        return -1;
    if (wb && s_ck (self, cudaMemcpy2DAsync ((char *) y->data + wa, wy, b->data, wb, wb, (size_t) outer,
                                             cudaMemcpyDeviceToDevice, c->st), "concat"))
        return -1;
    return 0;
}

static int s_slice (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, int dim,
                    int64_t start, int64_t len)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_same (self, "slice", y, x))
        return -1;
    int64_t outer, inner;
    int d = s_dim (x, dim, &outer, &inner);
    bool ok = d >= 0 && y->ndim == x->ndim && start >= 0 && len >= 0 && start + len <= x->shape [d];
    for (int i = 0; ok && i < x->ndim; i++)
        ok = y->shape [i] == (i == d ? len : x->shape [i]);
    if (!ok) {
        s_host->set_error (self, "cuda slice: [%lld, %lld) along dim %d is out of range or y mismatches",
                                (long long) start, (long long) (start + len), dim);
        return -1;
    }
    size_t es = s_esize (x->dtype);
    size_t wx = (size_t) (x->shape [d] * inner) * es, wy = (size_t) (len * inner) * es;
    if (outer == 0 || wy == 0)
        return 0;
    return s_ck (self, cudaMemcpy2DAsync (y->data, wy, (const char *) x->data + (size_t) (start * inner) * es,
                                          wx, wy, (size_t) outer, cudaMemcpyDeviceToDevice, c->st), "slice");
}

static int s_upsample2x (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_same (self, "upsample2x", y, x))
        return -1;
    if (x->ndim < 2 || y->ndim != x->ndim || y->shape [x->ndim - 1] != 2 * x->shape [x->ndim - 1]
        || y->shape [x->ndim - 2] != 2 * x->shape [x->ndim - 2] || s_numel (y) != 4 * s_numel (x)) {
        s_host->set_error (self, "cuda upsample2x: y must be [..., 2H, 2W] of x [..., H, W]");
        return -1;
    }
    int64_t H = x->shape [x->ndim - 2], W = x->shape [x->ndim - 1];
    if (H * W == 0)
        return 0;
    return s_ck (self, vc_upsample2x (c->st, y->data, x->data, (int) s_esize (x->dtype),
                                      s_numel (x) / (H * W), H, W), "upsample2x");
}

static int s_cast (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self))
        return -1;
    if (!x || !y || !x->data || !y->data || s_numel (x) != s_numel (y) || !s_contig (x) || !s_contig (y)
        || !s_esize (x->dtype) || !s_esize (y->dtype)) {
        s_host->set_error (self, "cuda cast: x and y must be contiguous with the same size");
        return -1;
    }
    int64_t n = s_numel (x);
    if (x->dtype == y->dtype)
        return x->data == y->data ? 0 : s_copy (self, y->data, x->data, (size_t) n * s_esize (x->dtype));
    bool fx = s_isfloat (x->dtype) || x->dtype == VDGX_DTYPE_F8_E4M3 || x->dtype == VDGX_DTYPE_F8_E5M2 || x->dtype == VDGX_DTYPE_F64;
    bool fy = s_isfloat (y->dtype) || y->dtype == VDGX_DTYPE_F8_E4M3 || y->dtype == VDGX_DTYPE_F8_E5M2 || y->dtype == VDGX_DTYPE_F64;
    if (!fx || !fy) {
        s_host->set_error (self, "cuda cast: only float dtypes convert (%d -> %d)", (int) x->dtype,
                                (int) y->dtype);
        return -1;
    }
    return s_ck (self, vc_cast (c->st, y->data, y->dtype, x->data, x->dtype, n), "cast");
}

//  --------------------------------------------------------------------------------------
//  Convolutions: im2col over chunks of output positions + cuBLASLt GEMM. In column-major
//  terms each chunk is D[pc, Cout] (ld = P, i.e. row-major y[Cout][P] of one sample) =
//  col[pc, K] . W[K, Cout], both op N. The chunk keeps the im2col buffer under ~256 MiB.

typedef struct {
    int N, Cin, T, H, W, Cout, kt, kh, kw, st, sh, sw, pt, ph, pw, To, Ho, Wo;
} s_conv_t;

static int s_conv (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                   const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const s_conv_t *p)
{
    s_cuda_t *c = s_priv (self);
    int64_t P = (int64_t) p->To * p->Ho * p->Wo, K = (int64_t) p->Cin * p->kt * p->kh * p->kw;
    const void *bp = bias ? bias->data : NULL;
    int bdt = bias ? bias->dtype : 0;
    int rc = 1;
    void *wt = NULL, *col = NULL, *dt = NULL;
    if (P == 0 || p->N == 0 || p->Cout == 0)
        return 0;
    if (c->conv_path != PATH_NAIVE) {
        int cdt = (x->dtype == VDGX_DTYPE_F32 && w->dtype == VDGX_DTYPE_F32) ? VDGX_DTYPE_F32 : VDGX_DTYPE_BF16;
        int ddt = (y->dtype == VDGX_DTYPE_F32 || (y->dtype == VDGX_DTYPE_BF16 && cdt == VDGX_DTYPE_BF16))
                ? y->dtype : VDGX_DTYPE_F32;
        size_t es = s_esize (cdt), des = s_esize (ddt);
        int64_t pc = (int64_t) ((256u << 20) / (size_t) (K * (int64_t) es));
        if (pc < 256) pc = 256;
        if (pc > P) pc = P;
        const void *wp = s_as (self, w->data, w->dtype, cdt, (int64_t) p->Cout * K, &wt);
        col = s_alloc (self, (size_t) (K * pc) * es);
        void *D = y->data;
        if (ddt != (int) y->dtype)
            D = dt = s_alloc (self, (size_t) ((int64_t) p->N * p->Cout * P) * des);
        rc = (!wp || !col || !D) ? -1 : 0;
        int64_t xs = (int64_t) p->Cin * p->T * p->H * p->W;
        for (int n = 0; rc == 0 && n < p->N; n++)
            for (int64_t p0 = 0; rc == 0 && p0 < P; p0 += pc) {
                int64_t cnt = P - p0 < pc ? P - p0 : pc;
                rc = s_ck (self, vc_im2col (c->st, col, cdt, (const char *) x->data + (size_t) (n * xs) * s_esize (x->dtype),
                                            x->dtype, p->Cin, p->T, p->H, p->W, p->kt, p->kh, p->kw,
                                            p->st, p->sh, p->sw, p->pt, p->ph, p->pw, p->To, p->Ho,
                                            p->Wo, p0, cnt), "im2col");
                if (rc)
                    break;
                s_gemm_t g;
                memset (&g, 0, sizeof g);
                g.ta = 0; g.tb = 0; g.m = cnt; g.n = p->Cout; g.k = K;
                g.A = col; g.at = cdt; g.lda = cnt;
                g.B = wp; g.bt = cdt; g.ldb = K;
                g.D = (char *) D + (size_t) ((int64_t) n * p->Cout * P + p0) * des;
                g.dt = ddt; g.ldd = P; g.batch = 1;
                rc = s_lt_gemm (self, &g);
            }
        if (rc == 0 && bp)
            rc = s_ck (self, vc_add_channel_bias (c->st, D, ddt, bp, bdt, p->N, p->Cout, P), "conv bias");
        if (rc == 0 && dt)
            rc = s_ck (self, vc_cast (c->st, y->data, y->dtype, dt, ddt, (int64_t) p->N * p->Cout * P), "cast");
    }
    if (rc == 1)
        rc = s_ck (self, vc_conv_naive (c->st, y->data, y->dtype, x->data, x->dtype, w->data, w->dtype,
                                        bp, bdt, p->N, p->Cin, p->T, p->H, p->W, p->Cout, p->kt, p->kh,
                                        p->kw, p->st, p->sh, p->sw, p->pt, p->ph, p->pw, p->To, p->Ho,
                                        p->Wo), "naive conv");
    s_free (self, wt);
    s_free (self, col);
    s_free (self, dt);
    return rc;
}

static bool s_fits_int (const int64_t *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v [i] < 0 || v [i] > INT_MAX)
            return false;
    return true;
}

static int s_conv3d (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                     const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int stride [3],
                     const int pad [4])
{
    if (s_enter (self) || s_chk (self, x, "conv3d", "x") || s_chk (self, w, "conv3d", "w")
        || s_chk (self, y, "conv3d", "y"))
        return -1;
    if (x->ndim != 5 || w->ndim != 5 || y->ndim != 5 || !stride || !pad || w->shape [1] != x->shape [1]
        || stride [0] < 1 || stride [1] < 1 || stride [2] < 1 || pad [0] < 0 || pad [1] < 0
        || pad [2] < 0 || pad [3] < 0 || !s_fits_int (x->shape, 5) || !s_fits_int (w->shape, 5)) {
        s_host->set_error (self, "cuda conv3d: x [N,Cin,T,H,W], w [Cout,Cin,kt,kh,kw] expected");
        return -1;
    }
    s_conv_t p = { (int) x->shape [0], (int) x->shape [1], (int) x->shape [2], (int) x->shape [3],
                   (int) x->shape [4], (int) w->shape [0], (int) w->shape [2], (int) w->shape [3],
                   (int) w->shape [4], stride [0], stride [1], stride [2], pad [0], pad [2], pad [3],
                   0, 0, 0 };
    int64_t To = ((int64_t) p.T + pad [0] + pad [1] - p.kt) / p.st + 1;
    int64_t Ho = ((int64_t) p.H + 2 * pad [2] - p.kh) / p.sh + 1;
    int64_t Wo = ((int64_t) p.W + 2 * pad [3] - p.kw) / p.sw + 1;
    if (To < 1 || Ho < 1 || Wo < 1 || y->shape [0] != p.N || y->shape [1] != p.Cout || y->shape [2] != To
        || y->shape [3] != Ho || y->shape [4] != Wo) {
        s_host->set_error (self, "cuda conv3d: y must be [%d, %d, %lld, %lld, %lld]", p.N, p.Cout,
                                (long long) To, (long long) Ho, (long long) Wo);
        return -1;
    }
    if (s_chk_opt (self, bias, "conv3d", "bias", p.Cout))
        return -1;
    p.To = (int) To; p.Ho = (int) Ho; p.Wo = (int) Wo;
    return s_conv (self, y, x, w, bias, &p);
}

static int s_conv2d (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                     const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const int stride [2],
                     const int pad [4])
{
    if (s_enter (self) || s_chk (self, x, "conv2d", "x") || s_chk (self, w, "conv2d", "w")
        || s_chk (self, y, "conv2d", "y"))
        return -1;
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4 || !stride || !pad || w->shape [1] != x->shape [1]
        || stride [0] < 1 || stride [1] < 1 || pad [0] < 0 || pad [1] < 0 || pad [2] < 0 || pad [3] < 0
        || !s_fits_int (x->shape, 4) || !s_fits_int (w->shape, 4)) {
        s_host->set_error (self, "cuda conv2d: x [N,Cin,H,W], w [Cout,Cin,kh,kw] expected");
        return -1;
    }
    s_conv_t p = { (int) x->shape [0], (int) x->shape [1], 1, (int) x->shape [2], (int) x->shape [3],
                   (int) w->shape [0], 1, (int) w->shape [2], (int) w->shape [3], 1, stride [0],
                   stride [1], 0, pad [0], pad [2], 1, 0, 0 };
    int64_t Ho = ((int64_t) p.H + pad [0] + pad [1] - p.kh) / p.sh + 1;
    int64_t Wo = ((int64_t) p.W + pad [2] + pad [3] - p.kw) / p.sw + 1;
    if (Ho < 1 || Wo < 1 || y->shape [0] != p.N || y->shape [1] != p.Cout || y->shape [2] != Ho
        || y->shape [3] != Wo) {
        s_host->set_error (self, "cuda conv2d: y must be [%d, %d, %lld, %lld]", p.N, p.Cout,
                                (long long) Ho, (long long) Wo);
        return -1;
    }
    if (s_chk_opt (self, bias, "conv2d", "bias", p.Cout))
        return -1;
    p.Ho = (int) Ho; p.Wo = (int) Wo;
    return s_conv (self, y, x, w, bias, &p);
}

//  --------------------------------------------------------------------------------------
//  Load-time quantization on the device

int vdgx_cuda_weight_quantize (vdgx_backend_t *self, vdgx_weight_t *dst, vdgx_wfmt_t fmt,
                               const vdgx_tensor_t *src, bool per_channel)
{
    s_cuda_t *c = s_priv (self);
    if (!c || s_enter (self) || s_chk (self, src, "weight_quantize", "src"))
        return -1;
    size_t db, se;
    int64_t sc;
    if (src->ndim != 2 || !dst
        || (fmt != VDGX_WFMT_FP8_E4M3 && fmt != VDGX_WFMT_NVFP4 && fmt != VDGX_WFMT_MXFP4 && fmt != VDGX_WFMT_NF4)
        || s_wfmt_layout (fmt, src->shape [0], src->shape [1], &db, &se, &sc)) {
        s_host->set_error (self, "cuda weight_quantize: needs src [n, k] (k a multiple of the block) and a quantized format");
        return -1;
    }
    int64_t n = src->shape [0], k = src->shape [1];
    if (fmt == VDGX_WFMT_FP8_E4M3 && !per_channel)
        sc = 1;
    vdgx_weight_t w;
    memset (&w, 0, sizeof w);
    w.fmt = fmt; w.n = n; w.k = k; w.device = c->dev; w.owner = self; w.global_scale = 1.f;
    w.data = s_raw_alloc (self, db);
    w.scales = s_raw_alloc (self, (size_t) sc * se);
    w.scale_count = sc;
    float gs = 1.f;
    if (!w.data || !w.scales
        || s_ck (self, vc_wquant (c->st, fmt, w.data, w.scales, src->data, src->dtype, n, k, per_channel,
                                  c->scratch + VC_S_AMAX, &gs), "weight_quantize")
        || s_synchronize (self)) {
        s_weight_free (self, &w);
        return -1;
    }
    w.global_scale = fmt == VDGX_WFMT_NVFP4 ? gs : 1.f;
    if (s_weight_prepare (self, &w)) {
        s_weight_free (self, &w);
        return -1;
    }
    *dst = w;
    return 0;
}

//  --------------------------------------------------------------------------------------

//  --------------------------------------------------------------------------------------
//  1D ops (the wrapper has checked shapes and normalised the parameters)

static int s_conv1d_any (vdgx_backend_t *self, const char *op, bool tr, vdgx_tensor_t *y,
                         const vdgx_tensor_t *x, const vdgx_tensor_t *w, const vdgx_tensor_t *bias,
                         const vdgx_conv1d_params_t *p)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, x, op, "x") || s_chk (self, y, op, "y") || s_chk (self, w, op, "w")
        || (bias && s_chk (self, bias, op, "bias")))
        return -1;
    if (x->ndim != 3 || y->ndim != 3 || w->ndim != 3) {
        s_host->set_error (self, "cuda %s: x, w, y must be 3-D", op);
        return -1;
    }
    return s_ck (self, vc_conv1d (c->st, tr, y->data, y->dtype, x->data, x->dtype, w->data, w->dtype,
                                  bias ? bias->data : NULL, bias ? (int) bias->dtype : 0, x->shape [0],
                                  x->shape [1], y->shape [1], x->shape [2], y->shape [2], w->shape [2],
                                  p->stride, p->pad_left, p->dilation, p->groups), op);
}

static int s_conv1d (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                     const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p)
{
    return s_conv1d_any (self, "conv1d", false, y, x, w, bias, p);
}

static int s_conv_transpose1d (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                               const vdgx_tensor_t *w, const vdgx_tensor_t *bias,
                               const vdgx_conv1d_params_t *p)
{
    return s_conv1d_any (self, "conv_transpose1d", true, y, x, w, bias, p);
}

static int s_pad1d (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, int left, int right,
                    vdgx_pad_mode_t mode)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, x, "pad1d", "x") || s_chk (self, y, "pad1d", "y"))
        return -1;
    int64_t L = x->ndim ? x->shape [x->ndim - 1] : 1, Ly = L + left + right;
    if (x->ndim < 1 || Ly <= 0)
        return 0;
    return s_ck (self, vc_pad1d (c->st, y->data, y->dtype, x->data, x->dtype, s_numel (y) / Ly, L, left,
                                 right, (int) mode), "pad1d");
}

static int s_snake (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                    const vdgx_tensor_t *alpha, const vdgx_tensor_t *beta, bool logscale)
{
    s_cuda_t *c = s_priv (self);
    if (s_enter (self) || s_chk (self, x, "snake", "x") || s_chk (self, y, "snake", "y")
        || s_chk (self, alpha, "snake", "alpha") || (beta && s_chk (self, beta, "snake", "beta")))
        return -1;
    int64_t n = s_numel (x), C = x->shape [1];
    if (n == 0)
        return 0;
    return s_ck (self, vc_snake (c->st, y->data, y->dtype, x->data, x->dtype, alpha->data, alpha->dtype,
                                 beta ? beta->data : NULL, beta ? (int) beta->dtype : 0, n, C,
                                 n / (x->shape [0] * C), logscale), "snake");
}

static int s_unary_op (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, vdgx_unary_t op,
                       float param)
{
    static const int kinds [VDGX_UNARY_COUNT] = { VC_U_LEAKY, VC_U_GELU_ERF, VC_U_TANH, VC_U_SIGMOID };
    return s_unary (self, "unary", kinds [op], y, x, param, 0, 0, 0);
}

//  Calls the kernels above do not cover go to the CPU fallback: attention with a head dim
//  over 512 (no kernel) or a strided KV view whose dtypes differ from q's (no conversion of
//  strided data).
static bool s_supports_op (vdgx_backend_t *self, const vdgx_op_desc_t *d)
{
    (void) self;
    if (d->op == VDGX_OP_ATTENTION) {
        const vdgx_tensor_t *q = d->t [1], *k = d->t [2], *v = d->t [3];
        if (q->shape [3] > 512)
            return false;
        bool dense = k->shape [0] <= 1 || k->stride [0] == k->shape [1] * k->shape [2] * k->shape [3];
        if (!dense && (k->dtype != q->dtype || v->dtype != q->dtype))
            return false;
    }
    return true;
}

static const vdgx_backend_ops_t s_ops = {
    .alloc = s_raw_alloc,
    .free = s_raw_free,
    .upload = s_upload,
    .download = s_download,
    .copy = s_copy,
    .synchronize = s_synchronize,
    .cast = s_cast,
    .weight_upload = s_weight_upload,
    .weight_free = s_weight_free,
    .linear = s_linear,
    .matmul = s_matmul,
    .attention = s_attention,
    .supports_op = s_supports_op,
    .layernorm = s_layernorm,
    .rmsnorm = s_rmsnorm,
    .channel_rmsnorm = s_channel_rmsnorm,
    .channel_rmsnorm_silu = s_channel_rmsnorm_silu,
    .modulate = s_modulate,
    .gated_residual = s_gated_residual,
    .gelu_tanh = s_gelu_tanh,
    .silu = s_silu,
    .add_scaled = s_add_scaled,
    .mul = s_mul,
    .affine_clamp = s_affine_clamp,
    .rope = s_rope,
    .permute = s_permute,
    .concat = s_concat,
    .slice = s_slice,
    .conv3d = s_conv3d,
    .conv2d = s_conv2d,
    .upsample2x = s_upsample2x,
    .conv1d = s_conv1d,
    .conv_transpose1d = s_conv_transpose1d,
    .pad1d = s_pad1d,
    .snake = s_snake,
    .unary = s_unary_op,
};

static const vdgx_backend_impl_t s_impl = { "cuda", s_open, s_close, &s_ops, 0, NULL };

//  The module entry point the registry looks up after dlopen (see vdgx_backend.h).
const vdgx_backend_impl_t *vdgx_backend_module_init (const vdgx_backend_host_t *host, char **err)
{
    if (!host || host->abi != VDGX_BACKEND_ABI || host->size < sizeof (vdgx_backend_host_t)) {
        if (err)
            *err = strdup ("libvdgx_cuda.so was built for another version of the backend interface");
        return NULL;
    }
    s_host = host;
    return &s_impl;
}
