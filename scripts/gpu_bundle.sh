#!/usr/bin/env bash
# Builds the CUDA-enabled binaries here and packs them, with the shared libraries the GPU
# machine lacks, into a folder that can travel to a GPU machine that has only the CUDA
# toolkit (no Debian -dev packages there). tests/gpu/run.sh then runs them with
# VDGX_GPU_BUILD=<folder>.
#
#   scripts/gpu_bundle.sh [OUT_DIR] [CUDA_ARCHS] [COMPONENTS]
#       defaults: .devbuild, 90a, "kernels" (what tests/gpu/run.sh runs; about 51 MB with
#       OpenBLAS). COMPONENTS "" builds everything (engines, refcheck), which carries more
#       libraries (ffmpeg, czmq...): check the size against the device's 64 MiB limit.
# Then on the GPU machine:
#   VDGX_GPU_BUILD=$PWD/.devbuild LD_LIBRARY_PATH=$PWD/.devbuild/lib:/usr/local/cuda/lib64 \
#       tests/gpu/run.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/.devbuild}"
ARCHS="${2:-90a}"
COMPONENTS="${3-kernels}"
BUILD="$ROOT/build-gpu-bundle"

cmake -S "$ROOT" -B "$BUILD" -DVDGX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" \
      -DVDGX_ONLY="$COMPONENTS" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_EXE_LINKER_FLAGS="-Wl,--as-needed" >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
cp -a "$BUILD/bin/." "$OUT/bin/"
strip "$OUT"/bin/* 2>/dev/null || true
# Libraries from this machine that the GPU machine's image does not have: everything but
# the C runtime and the CUDA libraries (those must come from the GPU machine's driver/toolkit).
for f in "$OUT"/bin/*; do
    [ -x "$f" ] && [ -f "$f" ] || continue
    ldd "$f" 2>/dev/null | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libgcc_s.so*|libstdc++.so*) ;;
        libcuda.so*|libcudart.so*|libcublas*|libnvidia*|libnvrtc*) ;;
        *) cp -L "$lib" "$OUT/lib/" ;;
    esac
done
# The build tree's test list, so run.sh can find the GPU tests by name.
cp "$BUILD/CTestTestfile.cmake" "$OUT/" 2>/dev/null || true
du -sh "$OUT"
