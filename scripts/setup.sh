#!/usr/bin/env bash
# VideosDGX set-up on Debian 12, as root (or with sudo available).
#
#   scripts/setup.sh            install packages, configure and build (build/bin/)
#   scripts/setup.sh --test     ... then run the test suite (what CI runs)
#   scripts/setup.sh --demo     ... then start the stack with the tiny demo model and
#                                   generate one video, printing where the MP4 is
#   scripts/setup.sh --bench    ... also install PyTorch (Debian python3-torch) and run the
#                                   CPU comparison tools/bench_cpu/vs_torch.py (minutes)
#
# Idempotent: packages already present are not reinstalled, the build is incremental.
# Quiet on success; on failure it says which step failed and shows the end of its log.
# Environment: BUILD_DIR (default build), VDGX_CUDA (AUTO|ON|OFF), VDGX_SANITIZE (ON|OFF),
# CTEST_ARGS (extra ctest arguments, e.g. "-L slow"), JOBS (build parallelism), BENCH_ARGS
# (vs_torch.py arguments, e.g. "--reps 3 --items vae").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"
LOG_DIR="$BUILD_DIR/setup-logs"
MODE="build"

for arg in "$@"; do
    case "$arg" in
        --test) MODE="test" ;;
        --demo) MODE="demo" ;;
        --build) MODE="build" ;;
        --bench) MODE="bench" ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

# Every Debian package the project needs to build, test and run.
PACKAGES=(
    build-essential cmake pkg-config git ca-certificates
    libczmq-dev libzmq3-dev libsodium-dev libmsgpack-dev libmicrohttpd-dev libjansson-dev
    libsqlite3-dev sqlite3 libcurl4-openssl-dev
    libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev ffmpeg
    libsentencepiece-dev sentencepiece libopenblas-dev
    clang libclang-rt-14-dev
    iproute2 procps python3
)
# Packages only the test suite needs (servers and tools the tests drive for real).
TEST_PACKAGES=(
    prometheus wrk nginx-light systemd valgrind curl python3-yaml
    mount util-linux e2fsprogs          # losetup, fstrim, mkfs.ext2: chaos.sync_failure
    chromium
)
# Node.js (OpenAI SDK, Dockerfile lint and web UI browser tests): Debian's, unless one is
# already installed. The browser test drives Debian's chromium with playwright-core (npm ci in
# tests/ui, from its package-lock.json; playwright-core downloads no browser).
command -v npm >/dev/null 2>&1 || TEST_PACKAGES+=(nodejs npm)
# Only the CPU benchmark against PyTorch (tools/bench_cpu/vs_torch.py) needs these.
BENCH_PACKAGES=(python3-torch)

mkdir -p "$LOG_DIR"

step() {  # step NAME COMMAND...: runs quietly, shows the log tail on failure
    local name="$1"; shift
    local log="$LOG_DIR/${name// /_}.log"
    if ! "$@" >"$log" 2>&1; then
        echo "setup.sh: step '$name' failed; last lines of $log:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

if ! command -v apt-get >/dev/null; then
    echo "setup.sh: this script expects Debian 12 (apt-get not found)" >&2
    exit 1
fi

step "install packages" install_packages "${PACKAGES[@]}"
if [ "$MODE" = test ]; then
    step "install test packages" install_packages "${TEST_PACKAGES[@]}"
    step "install browser test packages" npm ci --prefix "$ROOT/tests/ui" --no-audit --no-fund
fi
if [ "$MODE" = bench ]; then
    step "install bench packages" install_packages "${BENCH_PACKAGES[@]}"
fi

CMAKE_ARGS=(-S "$ROOT" -B "$BUILD_DIR" -DVDGX_CUDA="${VDGX_CUDA:-AUTO}"
            -DVDGX_SANITIZE="${VDGX_SANITIZE:-OFF}")
step "configure" cmake "${CMAKE_ARGS[@]}"
step "build" cmake --build "$BUILD_DIR" -j "$JOBS"

# Node packages of the bridge tests (OpenAPI validator, OpenAI SDK), pinned by the committed
# package-lock.json, installed into the build folder (never into the source tree).
npm_test_packages() {
    local dir="$BUILD_DIR/tests/bridge/npm"
    mkdir -p "$dir"
    cp "$ROOT/tests/bridge/npm/package.json" "$ROOT/tests/bridge/npm/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund)
}

case "$MODE" in
    build)
        echo "VideosDGX built: $BUILD_DIR/bin"
        ;;
    test)
        step "install test node packages" npm_test_packages
        # ctest's own summary ("N% tests passed, N tests failed out of N") is the result.
        cd "$BUILD_DIR"
        # shellcheck disable=SC2086
        ctest --output-on-failure -j "$JOBS" -LE 'slow|fuzz' ${CTEST_ARGS:-}
        ;;
    demo)
        exec "$ROOT/scripts/demo.sh" "$BUILD_DIR"
        ;;
    bench)
        # Debian's interpreter (python3-torch is installed for it, not for another python3)
        exec /usr/bin/python3 "$ROOT/tools/bench_cpu/vs_torch.py" --build "$BUILD_DIR" ${BENCH_ARGS:-}
        ;;
esac
