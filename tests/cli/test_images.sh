#!/usr/bin/env bash
# cli.images: `vdgx generate --image FILE [--last-image FILE]` against a real vdgx-broker and
# the test worker's image-to-video model (testgen-i2v: its first and last frames are the
# images): the MP4's first frame is the image; bad files are usage errors naming the file,
# sent nowhere; a text-to-video model refuses an image naming the field.
source "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || { echo "ffmpeg not found (scripts/setup.sh installs it)"; exit 1; }
start_broker --model testgen --model testgen-i2v
for m in testgen testgen-i2v; do
    "$BIN/vdgx-worker-test" --model $m --broker "$VDGX_BROKER" --data "$TMP/worker-$m" \
        --heartbeat-ms 100 >"$TMP/worker-$m.log" 2>&1 &
    PIDS+=($!)
done
for i in $(seq 1 100); do
    "$VDGX" --timeout 0.3 health --require testgen --require testgen-i2v >/dev/null 2>&1 && break
    sleep 0.1
done
ffmpeg -loglevel error -f lavfi -i color=c=0xc83214:s=64x48 -frames:v 1 "$TMP/red.png" || fail "ffmpeg png"
ffmpeg -loglevel error -f lavfi -i color=c=0x1432c8:s=96x72 -frames:v 1 "$TMP/blue.jpg" || fail "ffmpeg jpeg"

# mean_rgb FILE INDEX: the mean colour of frame INDEX, "R G B".
mean_rgb() {
    ffmpeg -loglevel error -i "$1" -vf "select=eq(n\,$2)" -frames:v 1 -f rawvideo -pix_fmt rgb24 - |
        python3 -c 'import sys; d = sys.stdin.buffer.read(); n = len(d) // 3; print(*(round(sum(d[c::3]) / n) for c in range(3)))'
}
# near "R G B" R G B: within 12 per channel.
near() {
    python3 - "$@" <<'PY'
import sys
got = [int(v) for v in sys.argv[1].split()]
sys.exit(0 if all(abs(a - int(b)) <= 12 for a, b in zip(got, sys.argv[2:])) else 1)
PY
}

expect_rc 0 "$VDGX" generate "the picture comes alive" --model testgen-i2v --image "$TMP/red.png" \
    --last-image "$TMP/blue.jpg" --frames 5 --steps 2 -o "$TMP/i2v.mp4"
is_mp4 "$TMP/i2v.mp4" || fail "i2v.mp4 is not an MP4"
first=$(mean_rgb "$TMP/i2v.mp4" 0)
last=$(mean_rgb "$TMP/i2v.mp4" 4)
near "$first" 200 50 20 || fail "the first frame is not the image: $first"
near "$last" 20 50 200 || fail "the last frame is not the last image: $last"

# Bad files: exit 2 naming the file and the reason, nothing submitted.
before=$("$VDGX" list --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["jobs"]))')
head -c 100 "$TMP/red.png" >"$TMP/cut.png"
printf 'GIF89a' >"$TMP/x.gif"
: >"$TMP/empty.png"
for bad in "cut.png:truncated PNG" "x.gif:unsupported image format" "empty.png:empty image" \
           "none.png:No such file"; do
    expect_rc 2 "$VDGX" generate "x" --model testgen-i2v --image "$TMP/${bad%%:*}"
    grep -q -- "--image: $TMP/${bad%%:*}: .*${bad#*:}" "$TMP/err" || fail "no clear error for ${bad%%:*}: $(cat "$TMP/err")"
done
expect_rc 2 "$VDGX" generate "x" --model testgen-i2v --image "$TMP/red.png" --last-image "$TMP/cut.png"
grep -q -- "--last-image: .*truncated" "$TMP/err" || fail "no clear error for --last-image"
# A text-to-video model: the broker refuses the image, naming the field.
expect_rc 2 "$VDGX" generate "x" --model testgen --image "$TMP/red.png"
grep -q "image" "$TMP/err" && grep -q "does not take an image" "$TMP/err" || fail "testgen took an image: $(cat "$TMP/err")"
after=$("$VDGX" list --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["jobs"]))')
[ -n "$before" ] && [ "$before" = "$after" ] || fail "refused requests were queued ($before -> $after)"
echo "cli.images: OK (first frame $first, last frame $last)"
