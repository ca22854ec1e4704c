#!/bin/bash
# ltx2.e2e.tiny BINDIR - the whole product on the tiny LTX-2 model: the demo checkpoint made by
# `vdgx-worker --make-tiny-checkpoint DIR --model ltx2-tiny`, the real broker, a real
# `vdgx-worker --model ltx2-tiny`, one job through the CLI (`vdgx generate`) and one through
# the REST bridge (POST /generate, GET /jobs/ID/download); ffprobe must read both MP4s with an
# H.264 stream of the requested frames, size and fps and a stereo AAC stream of the model's
# rate, both lasting frames / fps. Requests the model refuses (frames not 8n+1, a width not a
# multiple of 32) fail at submit with the field named.
source "$(dirname "$0")/../cli/lib.sh"

command -v ffprobe >/dev/null || fail "ffprobe not found (scripts/setup.sh installs ffmpeg)"
"$BIN/vdgx-worker" --make-tiny-checkpoint "$TMP/tiny" --model ltx2-tiny >"$TMP/tiny.log" 2>&1 \
    || fail "make-tiny-checkpoint: $(cat "$TMP/tiny.log")"
[ -s "$TMP/tiny/ltx2-tiny.safetensors" ] && [ -s "$TMP/tiny/gemma/tokenizer.model" ] || fail "tiny files missing"

start_broker
"$BIN/vdgx-worker" --model ltx2-tiny --weights "$TMP/tiny" --broker "$VDGX_BROKER" --data "$TMP/worker" \
    --heartbeat-ms 100 --threads 2 >"$TMP/worker.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do
    "$VDGX" health --require ltx2-tiny >/dev/null 2>&1 && break
    sleep 0.1
done
"$VDGX" models --json >"$TMP/models.json" 2>&1 || fail "vdgx models"
json_check "$TMP/models.json" 'any(m["name"] == "ltx2-tiny" and m["limits"].get("frames_step") == 8 for m in j["models"])'

# probe FILE FRAMES FPS WIDTH HEIGHT: the streams and durations of an MP4.
probe() {
    ffprobe -v error -count_frames -show_streams -show_format -of json "$1" >"$TMP/probe.json" 2>"$TMP/probe.err" \
        || fail "ffprobe cannot read $1: $(cat "$TMP/probe.err")"
    python3 - "$TMP/probe.json" "$2" "$3" "$4" "$5" <<'PY' || fail "ffprobe of $1: $(cat "$TMP/probe.json")"
import json, sys
j = json.load(open(sys.argv[1]))
frames, fps, w, h = (int(x) for x in sys.argv[2:6])
v = [s for s in j["streams"] if s["codec_type"] == "video"]
a = [s for s in j["streams"] if s["codec_type"] == "audio"]
assert len(v) == 1 and len(a) == 1, "one video and one audio stream"
v, a = v[0], a[0]
assert v["codec_name"] == "h264" and (v["width"], v["height"]) == (w, h), v
assert int(v["nb_read_frames"]) == frames, ("frames", v["nb_read_frames"], frames)
num, den = (int(x) for x in v["r_frame_rate"].split("/"))
assert abs(num / den - fps) < 1e-6, ("fps", v["r_frame_rate"])
assert a["codec_name"] == "aac" and int(a["channels"]) == 2 and int(a["sample_rate"]) == 24000, a
want = frames / fps
vd, ad = float(v["duration"]), float(a["duration"])
# the video ends with its last frame; AAC ends within one 1024-sample frame of the PCM
assert abs(vd - want) <= 1.0 / fps + 1e-3, ("video duration", vd, want)
assert abs(ad - want) <= 1024 / 24000 + 1e-3, ("audio duration", ad, want)
assert abs(float(j["format"]["duration"]) - want) <= 1.0 / fps + 1024 / 24000 + 1e-3, j["format"]
print("  %dx%d, %d frames at %d fps (%.3f s), AAC stereo 24 kHz %.3f s" % (w, h, frames, fps, vd, ad))
PY
}

# Through the CLI.
expect_rc 0 "$VDGX" generate "a drummer plays a fast beat on stage" --model ltx2-tiny --size 64x64 \
    --frames 17 --fps 24 --steps 3 --seed 5 -o "$TMP/cli.mp4" --max-wait 300
grep -q "denoising" "$TMP/out" "$TMP/err" || fail "no denoising progress: $(cat "$TMP/out" "$TMP/err")"
is_mp4 "$TMP/cli.mp4" || fail "the CLI's result is not an MP4"
probe "$TMP/cli.mp4" 17 24 64 64

# Refused at submit, the field named.
expect_rc 2 "$VDGX" generate "x" --model ltx2-tiny --frames 12
grep -q "frames" "$TMP/err" "$TMP/out" && grep -q "8n+1" "$TMP/err" "$TMP/out" || fail "frames: $(cat "$TMP/err")"
expect_rc 2 "$VDGX" generate "x" --model ltx2-tiny --size 48x64
grep -q "width" "$TMP/err" "$TMP/out" || fail "width: $(cat "$TMP/err")"

# Through the REST bridge.
for try in 1 2 3 4 5; do
    pick_ports
    "$BIN/vdgx-bridge" --listen "127.0.0.1:$PORT1" --broker "$VDGX_BROKER" --events "$VDGX_EVENTS" \
        >"$TMP/bridge.log" 2>&1 &
    BRIDGE=$!
    for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT1/health" && break; sleep 0.05; done
    if alive $BRIDGE; then PIDS+=($BRIDGE); break; fi
done
HTTP="http://127.0.0.1:$PORT1"
curl -s -o "$TMP/submit.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"model": "ltx2-tiny", "prompt": "waves roll onto a quiet beach at sunset", "width": 96,
         "height": 64, "frames": 9, "fps": 12, "steps": 2, "seed": 3}' "$HTTP/generate" >"$TMP/code"
[ "$(cat "$TMP/code")" = 202 ] || fail "POST /generate: $(cat "$TMP/code") $(cat "$TMP/submit.json")"
ID="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$TMP/submit.json")"
for i in $(seq 1 600); do
    curl -s "$HTTP/jobs/$ID" >"$TMP/job.json"
    python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["state"] in ("completed","failed","cancelled","expired") else 1)' \
        "$TMP/job.json" 2>/dev/null && break
    sleep 0.2
done
json_check "$TMP/job.json" 'j["state"] == "completed"'
[ "$(curl -s -o "$TMP/bridge.mp4" -w '%{http_code}' "$HTTP/jobs/$ID/download")" = 200 ] || fail "download"
probe "$TMP/bridge.mp4" 9 12 96 64
echo "ltx2.e2e.tiny: OK"
