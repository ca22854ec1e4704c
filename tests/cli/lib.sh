# Shared by the CLI test scripts: temp dir, process bookkeeping, checks. Sourced, not run.
set -u
BIN="$1"
VDGX="$BIN/vdgx"
TMP="$(mktemp -d /tmp/vdgx-cli-test.XXXXXX)"
PIDS=()
FAILED=0

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

dump_logs() {
    for f in "$TMP"/*.log "$TMP"/data/logs/*.log; do
        [ -f "$f" ] || continue
        echo "----- $f -----" >&2
        tail -n 30 "$f" >&2
    done
}

fail() {
    echo "FAIL: $*" >&2
    dump_logs
    exit 1
}

# expect_rc RC COMMAND...: runs COMMAND (output in $TMP/out, $TMP/err), checks its status.
expect_rc() {
    local want="$1"; shift
    "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local got=$?
    if [ "$got" != "$want" ]; then
        echo "--- stdout:" >&2; cat "$TMP/out" >&2
        echo "--- stderr:" >&2; cat "$TMP/err" >&2
        fail "expected exit $want, got $got: $*"
    fi
}

# json_check FILE PYTHON-EXPRESSION: the file is one JSON document and the expression (over
# `j`) is true.
json_check() {
    python3 - "$1" "$2" <<'PY' || fail "json check failed: $2 on $(head -c 600 "$1")"
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# A random port pair below the ephemeral range (32768+), where outgoing connections of
# parallel tests cannot take it; callers retry with another pair when a bind fails.
pick_ports() {
    local base=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    PORT1=$base
    PORT2=$((base + 1))
}

# start_broker EXTRA-ARGS...: a broker on fresh ports (retried when they are taken);
# sets BROKER (pid), VDGX_BROKER and VDGX_EVENTS.
start_broker() {
    for try in 1 2 3 4 5 6 7 8; do
        pick_ports
        export VDGX_BROKER="tcp://127.0.0.1:$PORT1" VDGX_EVENTS="tcp://127.0.0.1:$PORT2"
        "$BIN/vdgx-broker" --bind "$VDGX_BROKER" --events "$VDGX_EVENTS" --data "$TMP/broker" \
            --heartbeat-ms 100 --liveness 5 "$@" >"$TMP/broker.log" 2>&1 &
        BROKER=$!
        for i in $(seq 1 50); do
            kill -0 $BROKER 2>/dev/null || break
            "$VDGX" --timeout 0.2 health >/dev/null 2>&1 && { PIDS+=($BROKER); return 0; }
        done
        kill -9 $BROKER 2>/dev/null
        wait $BROKER 2>/dev/null
    done
    fail "the broker did not start"
}

# An MP4 starts with a box whose type is 'ftyp'.
is_mp4() {
    [ -s "$1" ] && [ "$(dd if="$1" bs=1 skip=4 count=4 2>/dev/null)" = "ftyp" ]
}

# alive PID: running and not a zombie (a detached process reparented to an init that does
# not reap stays a zombie).
alive() {
    [ -r "/proc/$1/stat" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != "Z" ]
}
