#!/bin/sh
# no_cuda_link.sh MODULE PROGRAM... - the CUDA backend is a module loaded at run time, so no
# program may link a CUDA library (ldd lists direct and indirect dependencies). MODULE, the
# CUDA backend itself, must show them: that proves this check sees CUDA libraries at all.
cuda='libcuda\.|libcudart|libcublas|libnvrtc|libnvJitLink'
module=$1
shift
rc=0
if ! ldd "$module" | grep -Eq "$cuda"; then
    echo "FAIL: ldd does not show CUDA libraries for the module $module"
    rc=1
fi
for p in "$@"; do
    [ -z "$p" ] && continue         #  a program this build does not have
    if [ ! -x "$p" ]; then
        echo "FAIL: $p is missing"
        rc=1
        continue
    fi
    found=$(ldd "$p" 2>&1 | grep -E "$cuda")
    if [ -n "$found" ]; then
        echo "FAIL: $p links CUDA: $found"
        rc=1
    else
        echo "ok: $(basename "$p") links no CUDA library"
    fi
done
exit $rc
