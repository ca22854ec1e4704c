#!/usr/bin/env bash
# Builds the CUDA-enabled programs that tests/gpu/run.sh runs and packs them, with the shared
# libraries the GPU machine lacks, into a folder that can travel to a GPU machine that has only
# the CUDA toolkit (no Debian -dev packages there). tests/gpu/run.sh then runs them with
# VDGX_GPU_BUILD=<folder>.
#
#   scripts/gpu_bundle.sh [OUT_DIR] [CUDA_ARCHS]
#       defaults: .devbuild, 90a. The op test (test_backend_ops), the kernel tests and benchmark
#       plus the Wan 2.1 GPU checks (vdgx-refcheck, vdgx-bench-dit, vdgx-bench-wan21), and the
#       CUDA backend module lib/libvdgx_cuda.so, which the programs load from ../lib at run time
#       (none of them links CUDA itself except the test_cuda_* tests and the benchmark). Built without OpenBLAS (the CPU
#       oracle uses the portable sgemm) and without the video encoder in vdgx-bench-wan21, so
#       the folder stays far below the device's 64 MiB limit on what travels.
# Then on the GPU machine (carry the folder):
#   VDGX_GPU_BUILD=$PWD/.devbuild LD_LIBRARY_PATH=$PWD/.devbuild/lib:/usr/local/cuda/lib64 \
#       tests/gpu/run.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/.devbuild}"
ARCHS="${2:-90a}"
BUILD="$ROOT/build-gpu-bundle"
PROGRAMS="test_backend_ops test_cuda_elem test_cuda_attn test_cuda_conv test_cuda_linear
          vdgx-bench-cuda vdgx-refcheck vdgx-bench-dit vdgx-bench-wan21"
LIMIT_MB=50

cmake -S "$ROOT" -B "$BUILD" -DVDGX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" \
      -DVDGX_ONLY="shared;kernels;tools" -DCMAKE_BUILD_TYPE=Release \
      -DVDGX_OPENBLAS=OFF -DVDGX_BENCH_WAN21_ENCODE=OFF \
      -DCMAKE_EXE_LINKER_FLAGS="-Wl,--as-needed" >/dev/null
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$(nproc)" --target $PROGRAMS vdgx_cuda >/dev/null

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
for p in $PROGRAMS; do
    cp "$BUILD/bin/$p" "$OUT/bin/"
done
cp "$BUILD/lib/libvdgx_cuda.so" "$OUT/lib/"
strip "$OUT"/bin/* "$OUT/lib/libvdgx_cuda.so"
# Libraries from this machine that the GPU machine's image does not have: everything but
# the C runtime and the CUDA libraries (those must come from the GPU machine's toolkit).
for f in "$OUT"/bin/* "$OUT/lib/libvdgx_cuda.so"; do
    ldd "$f" 2>/dev/null | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libgcc_s.so*|libstdc++.so*) ;;
        libcuda.so*|libcudart.so*|libcublas*|libnvidia*|libnvrtc*|libvdgx_cuda.so) ;;
        *) cp -L "$lib" "$OUT/lib/" ;;
    esac
done
SIZE_MB=$(du -sm "$OUT" | cut -f1)
echo "gpu bundle: $OUT, ${SIZE_MB} MB ($(ls "$OUT/bin" | wc -l) programs, $(ls "$OUT/lib" | wc -l) libraries)"
if [ "$SIZE_MB" -gt "$LIMIT_MB" ]; then
    echo "gpu bundle: over ${LIMIT_MB} MB; the device takes 64 MiB with the working tree" >&2
    exit 1
fi
