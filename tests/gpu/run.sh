#!/usr/bin/env bash
# tests/gpu/run.sh - builds kernels/ with the CUDA backend (sm_90a), runs the table-driven op
# test (test_backend_ops: every op against the CPU backend), every GPU test and the CUDA
# benchmark, and prints one summary table (also written to $OUT/gpu_summary.txt
# with the full logs beside it when $OUT is set).
#
#   tests/gpu/run.sh                      configure + build in build-gpu, then run
#   VDGX_GPU_BUILD=dir tests/gpu/run.sh   run a build made elsewhere (dir/bin/test_cuda_*)
#   VDGX_GPU_QUICK=1                      smaller benchmark shapes
#   VDGX_GPU_WAN=1                        also the Wan 2.1 GPU reference check and whole-video
#                                         benchmark (needs vdgx-refcheck / vdgx-bench-wan21 in
#                                         the build: use the bundle of scripts/gpu_bundle.sh)
#
# Needs cmake, a C compiler, nvcc and a GPU; no -dev packages (only kernels/ is built).
# Budget: under 6 minutes on one H100 (each program runs under a timeout), about 10 with
# VDGX_GPU_WAN=1. The device call, from the repository root after scripts/gpu_bundle.sh here:
#   VDGX_GPU_WAN=1 VDGX_GPU_BUILD=$PWD/.devbuild \
#   LD_LIBRARY_PATH=$PWD/.devbuild/lib:/usr/local/cuda/lib64 tests/gpu/run.sh   (carry .devbuild)
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
export PATH="$PATH:/usr/local/cuda/bin"
LOGDIR=${OUT:-$ROOT/build-gpu}
mkdir -p "$LOGDIR"
T0=$(date +%s)

if [ -n "${VDGX_GPU_BUILD:-}" ]; then
    BUILD=$VDGX_GPU_BUILD
    echo "== using prebuilt $BUILD"
else
    BUILD=$ROOT/build-gpu
    echo "== configure + build ($BUILD, sm_90a, -j$(nproc))"
    if ! cmake -S . -B "$BUILD" -DVDGX_ONLY=kernels -DVDGX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
            -DCMAKE_BUILD_TYPE=Release > "$LOGDIR/gpu_configure.log" 2>&1; then
        tail -40 "$LOGDIR/gpu_configure.log"
        echo "CONFIGURE FAILED"
        exit 1
    fi
    if ! cmake --build "$BUILD" -j"$(nproc)" > "$LOGDIR/gpu_build.log" 2>&1; then
        grep -E "error|Error" -A3 "$LOGDIR/gpu_build.log" | head -60
        echo "BUILD FAILED"
        exit 1
    fi
    echo "   built in $(( $(date +%s) - T0 )) s"
fi
BIN=$BUILD/bin
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/   gpu: /'

export VDGX_SOURCE_DIR=$ROOT VDGX_BUILD_DIR=$BUILD
declare -A STATUS
run_prog () {   # name timeout args...
    local name=$1 to=$2
    shift 2
    local log="$LOGDIR/gpu_$name.log"
    echo "== $name"
    local t=$(date +%s)
    timeout -k 5 "$to" "$BIN/$name" "$@" > "$log" 2>&1
    local rc=$?
    grep -E "^(device|BENCH|SKIP|FAIL|bench)" "$log" | head -40
    local nf=$(grep -c "^RESULT .*FAIL" "$log")
    [ "$nf" -gt 0 ] && echo "   $nf failed checks (listed in the summary)"
    case $rc in
        0) STATUS[$name]="ok" ;;
        77) STATUS[$name]="skip (no device)" ;;
        124|137) STATUS[$name]="TIMEOUT after ${to}s" ;;
        *) STATUS[$name]="exit $rc"; tail -5 "$log" ;;
    esac
    echo "   $name: ${STATUS[$name]} ($(( $(date +%s) - t )) s)"
}

# Tests synchronise after every kernel (VDGX_CUDA_SYNC) so a fault names its op.
export VDGX_CUDA_SYNC=1
run_prog test_backend_ops 90 -b cuda:0 --require
run_prog test_cuda_elem 40
run_prog test_cuda_attn 50
run_prog test_cuda_conv 40
# cuBLASLt's own error log (level 1: errors with their reason) for the GEMM tests: a refused
# configuration is then explained in gpu_cublaslt.log, not only seen as a fallback.
CUBLASLT_LOG_LEVEL=1 CUBLASLT_LOG_FILE="$LOGDIR/gpu_cublaslt.log" run_prog test_cuda_linear 90
unset VDGX_CUDA_SYNC
if [ -n "${VDGX_GPU_QUICK:-}" ]; then
    run_prog vdgx-bench-cuda 90 --quick
else
    run_prog vdgx-bench-cuda 110
fi

# Out-of-bounds / race check of the hand-written kernels when there is time left (memcheck
# is slow; the attention and elementwise tests are small).
MEMCHECK="not run"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$CS" ] && [ $(( $(date +%s) - T0 )) -lt 230 ] && [ "${STATUS[test_cuda_attn]:-}" != "skip (no device)" ]; then
    echo "== compute-sanitizer memcheck (test_cuda_attn, test_cuda_elem)"
    MEMCHECK=""
    for p in test_cuda_attn test_cuda_elem; do
        timeout -k 5 50 "$CS" --tool memcheck --error-exitcode 99 "$BIN/$p" > "$LOGDIR/gpu_memcheck_$p.log" 2>&1
        rc=$?
        case $rc in
            0) r="clean" ;; 99) r="ERRORS (see gpu_memcheck_$p.log)" ;; 124|137) r="timeout (partial)" ;; *) r="exit $rc" ;;
        esac
        grep -m3 -E "Invalid|out of bounds|ERROR SUMMARY" "$LOGDIR/gpu_memcheck_$p.log"
        MEMCHECK="$MEMCHECK $p: $r;"
    done
fi

# Wan 2.1 on the GPU with VDGX_GPU_WAN=1 (about 4 more minutes; the programs are in the bundle,
# scripts/gpu_bundle.sh, and in a full build, not in the kernels-only build below): every
# part against the official reference vectors in BF16 (relative norm < 1e-2), then the whole-video
# benchmark: the 1.3B at 832x480x81 with all 30 blocks, 2 of 50 steps timed and extrapolated,
# 4 of 24 umT5 layers, the VAE decode timed once (it is BF16 for every weight format).
HAVE_GPU=1
[ "${STATUS[test_cuda_elem]:-}" = "skip (no device)" ] && HAVE_GPU=0
if [ "${VDGX_GPU_WAN:-0}" = 1 ] && [ "$HAVE_GPU" = 1 ] && [ -x "$BIN/vdgx-refcheck" ]; then
    run_prog vdgx-refcheck 150 wan21 "$ROOT/tests/data/reference/wan21" --part all --device cuda
    grep -E "FAIL|check\(s\)" "$LOGDIR/gpu_vdgx-refcheck.log" | head -20
    # Every other model's reference vectors on the GPU, each in its own log (tolerances: the
    # refcheck's GPU relative-norm bound, about 1e-2 in BF16).
    for set in wan21-i2v t5v11 gemma3 magi1 ltx2 ltx23; do
        [ -d "$ROOT/tests/data/reference/$set" ] || continue
        echo "== vdgx-refcheck $set"
        timeout -k 5 120 "$BIN/vdgx-refcheck" "$set" "$ROOT/tests/data/reference/$set" --part all \
            --device cuda > "$LOGDIR/gpu_vdgx-refcheck-$set.log" 2>&1
        grep -E "FAIL|check\(s\)" "$LOGDIR/gpu_vdgx-refcheck-$set.log" | head -20
    done
fi
if [ "${VDGX_GPU_WAN:-0}" = 1 ] && [ "$HAVE_GPU" = 1 ] && [ -x "$BIN/vdgx-bench-wan21" ]; then
    run_prog vdgx-bench-wan21 330 --device cuda --precisions bf16,fp8,fp4 --steps 2 --t5-layers 4 \
        --decode-once --peak-tflops 989
    grep -E "measured|extrapolated|floor|peak memory|failed|cannot|denoising:|decode:" \
        "$LOGDIR/gpu_vdgx-bench-wan21.log"
fi

SUM="$LOGDIR/gpu_summary.txt"
ALL="$LOGDIR/gpu_results_all.txt"
cat "$LOGDIR"/gpu_test_backend_ops.log "$LOGDIR"/gpu_test_cuda_*.log 2>/dev/null | grep "^RESULT " > "$ALL"
{
    echo "VideosDGX GPU summary ($(date -u +%FT%TZ), $(( $(date +%s) - T0 )) s)"
    grep -h "^device" "$LOGDIR"/gpu_test_cuda_elem.log "$LOGDIR"/gpu_vdgx-bench-cuda.log 2>/dev/null | head -1
    echo
    echo "program status"
    for p in test_backend_ops test_cuda_elem test_cuda_attn test_cuda_conv test_cuda_linear vdgx-bench-cuda \
             vdgx-refcheck vdgx-bench-wan21; do
        printf "  %-18s %s\n" "$p" "${STATUS[$p]:-not run}"
    done
    echo "  memcheck:          $MEMCHECK"
    echo
    awk '{n++; if ($6=="PASS") p++} END{printf "tests: %d checks, %d passed, %d failed\n", n, p, n-p}' "$ALL"
    echo
    echo "failed checks (first 40):"
    grep " FAIL" "$ALL" | head -40 | awk '{e=$4; sub("err=","",e); t=$5; sub("tol=","",t); printf "  %-10s %-56s err %-10s tol %s\n", $2, $3, e, t}'
    echo
    echo "per group (test / case prefix): checks, failed, worst error / its tolerance (case)"
    awk '{ split($3, c, "/"); g = $2 " " c[1]; if ($2 == "linear" || $2 == "attention") g = g "/" c[2];
           if ($2 == "ops") g = g "/" c[2] "/" c[3];
           e = $4; sub("err=", "", e); t = $5; sub("tol=", "", t);
           r = (t + 0 > 0) ? e / t : (e + 0 > 0 ? 1e9 : 0);
           n[g]++; if ($6 != "PASS") f[g]++;
           if (!(g in w) || r > w[g]) { w[g] = r; we[g] = e; wt[g] = t; wc[g] = $3 } }
         END { for (g in n) printf "  %-28s %4d %3d  %-10s / %-8s (%s)\n", g, n[g], f[g] + 0, we[g], wt[g], wc[g] }' "$ALL" | sort
    echo
    printf "%-42s %12s %-8s %s\n" benchmark figure unit "fraction of ceiling"
    awk '/^BENCH /{ f=$5; sub("frac=","",f); note=""; for(i=6;i<=NF;i++) note=note" "$i;
        printf "%-42s %12s %-8s %s%s\n", $2, $3, $4, f, note }' "$LOGDIR/gpu_vdgx-bench-cuda.log" 2>/dev/null
    if [ -f "$LOGDIR/gpu_vdgx-refcheck.log" ]; then
        echo
        echo "Wan 2.1 reference check on the GPU: $(grep "check(s)" "$LOGDIR/gpu_vdgx-refcheck.log" | tail -1)"
        grep -E "^  FAIL" "$LOGDIR/gpu_vdgx-refcheck.log" | head -20
    fi
    for set in wan21-i2v t5v11 gemma3 magi1 ltx2 ltx23; do
        log="$LOGDIR/gpu_vdgx-refcheck-$set.log"
        [ -f "$log" ] || continue
        echo
        echo "$set reference check on the GPU: $(grep "check(s)" "$log" | tail -1)"
        grep -E "^  FAIL" "$log" | head -20
    done
    if [ -f "$LOGDIR/gpu_vdgx-bench-wan21.log" ]; then
        echo
        echo "Wan 2.1 whole video (vdgx-bench-wan21):"
        grep -E "measured|extrapolated|floor|peak memory" "$LOGDIR/gpu_vdgx-bench-wan21.log" | sed 's/^/  /'
    fi
} > "$SUM"
echo
cat "$SUM"
{
    echo
    echo "all checks:"
    printf "%-10s %-58s %-6s %-10s %s\n" test case result error tolerance
    awk '{e=$4; sub("err=","",e); t=$5; sub("tol=","",t); printf "%-10s %-58s %-6s %-10s %s\n", $2, $3, $6, e, t }' "$ALL"
} >> "$SUM"
FAILS=$(cat "$LOGDIR"/gpu_test_backend_ops.log "$LOGDIR"/gpu_test_cuda_*.log 2>/dev/null | grep -c "^RESULT .*FAIL")
# The device tool brings back at most 8 files from $OUT: the logs travel as one archive.
if [ -n "${OUT:-}" ]; then
    (cd "$LOGDIR" && tar czf gpu_logs.tar.gz gpu_*.log && rm -f gpu_*.log)
fi
for p in "${!STATUS[@]}"; do
    case ${STATUS[$p]} in ok|skip*) ;; *) FAILS=$((FAILS + 1)) ;; esac
done
[ "$FAILS" -eq 0 ]
