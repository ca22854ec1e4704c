//  vdgx_cuda_ops1d.cu - the 1D vocoder ops: conv1d and transposed conv1d (stride, padding,
//  dilation, groups), pad1d and Snake / SnakeBeta. Direct kernels, one thread per output
//  element with f32 accumulation: vocoder layers are memory-bound at their widths, and these
//  are the correctness baseline a tensor-core path would be tested against.
#include "vdgx_cuda_dev.cuh"

#define O1_LOOP(i, n) \
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t) gridDim.x * blockDim.x)

static __global__ void k_conv1d (bool tr, void *y, int ydt, const void *x, int xdt, const void *w,
                                 int wdt, const void *bias, int bdt, int64_t N, int64_t Cin,
                                 int64_t Cout, int64_t L, int64_t Lout, int64_t K, int64_t s,
                                 int64_t pl, int64_t d, int64_t G)
{
    const int64_t Cin_g = Cin / G, Cout_g = Cout / G;
    O1_LOOP (i, N * Cout * Lout) {
        int64_t t = i % Lout, co = (i / Lout) % Cout, n = i / (Lout * Cout), g = co / Cout_g;
        float acc = vc_ldo (bias, bdt, co, 0.f);
        for (int64_t c = 0; c < Cin_g; c++) {
            int64_t ci = g * Cin_g + c;
            const int64_t xrow = (n * Cin + ci) * L;
            for (int64_t k = 0; k < K; k++) {
                int64_t l;
                if (!tr)
                    l = t * s + k * d - pl;
                else {
                    int64_t num = t + pl - k * d;       //  = l * s
                    if (num < 0 || num % s)
                        continue;
                    l = num / s;
                }
                if (l < 0 || l >= L)
                    continue;
                int64_t wi = tr ? (ci * Cout_g + co % Cout_g) * K + k : (co * Cin_g + c) * K + k;
                acc += vc_ld (x, xdt, xrow + l) * vc_ld (w, wdt, wi);
            }
        }
        vc_st (y, ydt, i, acc);
    }
}

extern "C" cudaError_t vc_conv1d (cudaStream_t st, bool transposed, void *y, int ydt, const void *x,
                                  int xdt, const void *w, int wdt, const void *bias, int bdt,
                                  int64_t N, int64_t Cin, int64_t Cout, int64_t L, int64_t Lout,
                                  int64_t K, int64_t stride, int64_t pad_left, int64_t dilation,
                                  int64_t groups)
{
    int64_t n = N * Cout * Lout;
    if (n <= 0) return cudaSuccess;
    k_conv1d<<<vc_grid (n, 256), 256, 0, st>>> (transposed, y, ydt, x, xdt, w, wdt, bias, bdt, N, Cin,
                                                Cout, L, Lout, K, stride, pad_left, dilation, groups);
    return cudaGetLastError ();
}

static __global__ void k_pad1d (void *y, int ydt, const void *x, int xdt, int64_t rows, int64_t L,
                                int64_t left, int64_t right, int mode)
{
    const int64_t Ly = L + left + right;
    O1_LOOP (i, rows * Ly) {
        int64_t t = i % Ly, r = i / Ly, j = t - left;
        float v;
        if (j >= 0 && j < L)
            v = vc_ld (x, xdt, r * L + j);
        else if (mode == 0)
            v = 0.f;
        else {
            if (mode == 1)
                j = j < 0 ? 0 : L - 1;
            else
                j = j < 0 ? -j : 2 * (L - 1) - j;
            v = vc_ld (x, xdt, r * L + j);
        }
        vc_st (y, ydt, i, v);
    }
}

extern "C" cudaError_t vc_pad1d (cudaStream_t st, void *y, int ydt, const void *x, int xdt, int64_t rows,
                                 int64_t L, int64_t left, int64_t right, int mode)
{
    int64_t n = rows * (L + left + right);
    if (n <= 0) return cudaSuccess;
    k_pad1d<<<vc_grid (n, 256), 256, 0, st>>> (y, ydt, x, xdt, rows, L, left, right, mode);
    return cudaGetLastError ();
}

static __global__ void k_snake (void *y, int ydt, const void *x, int xdt, const void *alpha, int adt,
                                const void *beta, int bdt, int64_t n, int64_t C, int64_t S,
                                bool logscale)
{
    O1_LOOP (i, n) {
        int64_t c = (i / S) % C;
        float a = vc_ld (alpha, adt, c), b = beta ? vc_ld (beta, bdt, c) : a;
        if (logscale) {
            a = expf (a);
            b = beta ? expf (b) : a;
        }
        float v = vc_ld (x, xdt, i), sn = sinf (a * v);
        vc_st (y, ydt, i, v + sn * sn / (b + 1e-9f));
    }
}

extern "C" cudaError_t vc_snake (cudaStream_t st, void *y, int ydt, const void *x, int xdt,
                                 const void *alpha, int adt, const void *beta, int bdt, int64_t n,
                                 int64_t C, int64_t S, bool logscale)
{
    if (n <= 0) return cudaSuccess;
    k_snake<<<vc_grid (n, 256), 256, 0, st>>> (y, ydt, x, xdt, alpha, adt, beta, bdt, n, C, S, logscale);
    return cudaGetLastError ();
}
