#!/usr/bin/env bash
# VideosDGX demo: start the stack with the tiny demo model and generate one video.
#
#   scripts/demo.sh BUILD_DIR      (what `scripts/setup.sh --demo` runs)
#
# Starts `vdgx up --detach` with the data directory ./var (the tiny checkpoint is created in
# var/models/wan21-tiny on first use), waits until the wan21-tiny worker is up, generates
# var/outputs/demo.mp4, and leaves the stack running. Exit status non-zero on any failure,
# with the reason and where to look.
set -euo pipefail

BUILD_DIR="${1:-}"
if [ -z "$BUILD_DIR" ] || [ ! -x "$BUILD_DIR/bin/vdgx" ]; then
    echo "demo.sh: usage: scripts/demo.sh BUILD_DIR (with BUILD_DIR/bin/vdgx built)" >&2
    exit 2
fi
VDGX="$(cd "$BUILD_DIR/bin" && pwd)/vdgx"
DATA="var"
MODEL="wan21-tiny"
OUT="$DATA/outputs/demo.mp4"
mkdir -p "$DATA/outputs"

die() {
    echo "demo.sh: $*" >&2
    echo "demo.sh: logs are in $DATA/logs/; stop the stack with: $VDGX down --data $DATA" >&2
    exit 1
}

# Reuse a stack that is already up on this data directory.
if [ -f "$DATA/vdgx-up.pid" ] && "$VDGX" --timeout 1 health >/dev/null 2>&1; then
    echo "demo.sh: the stack is already running"
else
    "$VDGX" up --detach --data "$DATA" || die "vdgx up failed"
fi

echo "demo.sh: waiting for the $MODEL worker..."
ok=0
for i in $(seq 1 120); do
    if "$VDGX" --timeout 1 health --require "$MODEL" >/dev/null 2>&1; then
        ok=1
        break
    fi
    sleep 1
done
[ "$ok" = 1 ] || { "$VDGX" --timeout 2 health || true; die "no healthy $MODEL worker after 120 s"; }

echo "demo.sh: generating $OUT ..."
"$VDGX" generate "a red fox running through snow, cinematic" --model "$MODEL" -o "$OUT" \
    || die "generation failed"
[ -s "$OUT" ] || die "$OUT is missing or empty"

echo
echo "Demo video: $(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
echo "Web UI (make and watch videos in a browser): http://${VDGX_HTTP:-127.0.0.1:8000}/"
echo "The stack keeps running (broker ${VDGX_BROKER:-tcp://127.0.0.1:5555})."
echo "  more videos:  $VDGX generate \"PROMPT\" --model $MODEL -o out.mp4"
echo "  health:       $VDGX health"
echo "  stop it:      $VDGX down --data $DATA"
