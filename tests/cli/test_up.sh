#!/usr/bin/env bash
# cli.up: `vdgx up --detach` starts the broker and the configured workers (the test worker
# through the config's `binary` key), serves a job, restarts a killed worker, refuses a second
# up, and `vdgx down` stops everything and removes the pid file.
source "$(dirname "$0")/lib.sh"

DATA="$TMP/data"
for try in 1 2 3 4 5; do
    pick_ports
    cat >"$TMP/vdgx.ini" <<INI
[broker]
endpoint = tcp://127.0.0.1:$PORT1
events = tcp://127.0.0.1:$PORT2
heartbeat_ms = 100
liveness = 5
[models]
testgen = $TMP
[worker.testgen]
workers = 2
binary = $BIN/vdgx-worker-test
INI
    "$VDGX" up --config "$TMP/vdgx.ini" --data "$DATA" --detach --no-bridge >"$TMP/up.out" 2>&1 && break
    cat "$TMP/up.out" >&2
    "$VDGX" down --data "$DATA" >/dev/null 2>&1
done
grep -q "broker   tcp://127.0.0.1:$PORT1" "$TMP/up.out" || fail "up did not print its endpoints: $(cat "$TMP/up.out")"
PID=$(head -n1 "$DATA/vdgx-up.pid")
PIDS+=($PID)
export VDGX_BROKER="tcp://127.0.0.1:$PORT1" VDGX_EVENTS="tcp://127.0.0.1:$PORT2"

# Both workers register; a job is served.
for i in $(seq 1 100); do
    "$VDGX" workers --json >"$TMP/w.json" 2>/dev/null &&
        python3 -c "import json,sys; sys.exit(0 if len(json.load(open('$TMP/w.json'))['workers'])==2 else 1)" && break
    sleep 0.1
done
expect_rc 0 "$VDGX" health --require testgen
expect_rc 0 "$VDGX" generate "up test" --model testgen --steps 2 -o "$TMP/up.mp4"
is_mp4 "$TMP/up.mp4" || fail "no video from the up stack"
[ -s "$DATA/logs/broker.log" ] || fail "no broker log"
[ -s "$DATA/logs/worker-testgen-1.log" ] || fail "no worker log"

# A second up on the same data dir is refused.
expect_rc 1 "$VDGX" up --config "$TMP/vdgx.ini" --data "$DATA" --detach --no-bridge
grep -q "already running" "$TMP/err" || fail "second up: $(cat "$TMP/err")"

# A killed worker is restarted (new pid in the pid file) and serves again.
W1=$(awk '$1 == "worker-testgen-1" { print $2 }' "$DATA/vdgx-up.pid")
[ -n "$W1" ] || fail "no worker pid in the pid file: $(cat "$DATA/vdgx-up.pid")"
kill -9 "$W1"
for i in $(seq 1 100); do
    W1B=$(awk '$1 == "worker-testgen-1" { print $2 }' "$DATA/vdgx-up.pid")
    [ -n "$W1B" ] && [ "$W1B" != "$W1" ] && break
    sleep 0.1
done
[ -n "$W1B" ] && [ "$W1B" != "$W1" ] || fail "the killed worker was not restarted"
grep -q "worker-testgen-1 killed by signal 9, restarting" "$DATA/logs/vdgx-up.log" || fail "no restart event"
expect_rc 0 "$VDGX" generate "after restart" --model testgen --steps 1 -o "$TMP/up2.mp4"

# down: everything stops, the pid file goes.
CHILDREN=$(awk 'NR > 1 { print $2 }' "$DATA/vdgx-up.pid")
expect_rc 0 "$VDGX" down --data "$DATA"
[ -e "$DATA/vdgx-up.pid" ] && fail "pid file left behind"
alive "$PID" && fail "vdgx up still running"
for c in $CHILDREN; do
    alive "$c" && fail "child $c still running"
done
grep -q "stopped" "$DATA/logs/vdgx-up.log" || fail "no stop in the log"
expect_rc 4 "$VDGX" down --data "$DATA"
expect_rc 3 "$VDGX" --timeout 0.3 health
expect_rc 2 "$VDGX" up --bogus

# In the foreground: SIGINT (Ctrl-C) stops the children in order and exits 0.
DATA2="$TMP/data2"
"$VDGX" up --config "$TMP/vdgx.ini" --data "$DATA2" --no-bridge >"$TMP/fg.out" 2>&1 &
FG=$!
PIDS+=($FG)
for i in $(seq 1 100); do grep -q "VideosDGX is up" "$TMP/fg.out" && break; sleep 0.1; done
grep -q "VideosDGX is up" "$TMP/fg.out" || fail "foreground up did not come up: $(cat "$TMP/fg.out")"
for i in $(seq 1 50); do [ "$(wc -l <"$DATA2/vdgx-up.pid")" = 4 ] && break; sleep 0.1; done
CHILDREN=$(awk 'NR > 1 { print $2 }' "$DATA2/vdgx-up.pid")
[ "$(echo "$CHILDREN" | wc -w)" = 3 ] || fail "expected broker + 2 workers in the pid file"
kill -INT $FG
wait $FG
RC=$?
[ $RC = 0 ] || fail "foreground up exited $RC after SIGINT: $(cat "$TMP/fg.out")"
for c in $CHILDREN; do
    alive "$c" && fail "child $c still running after SIGINT"
done
[ -e "$DATA2/vdgx-up.pid" ] && fail "pid file left behind after SIGINT"
grep -q "vdgx up: stopped" "$TMP/fg.out" || fail "no stopped line"

# With the bridge: a request that names no model goes to the model the stack serves (its
# default), /v1/models lists it (OpenAI format), and `vdgx logs` shows the stack's logs.
DATA3="$TMP/data3"
HTTP=$((PORT1 + 3))
printf '[bridge]\nhttp = 127.0.0.1:%s\n' "$HTTP" >>"$TMP/vdgx.ini"
expect_rc 0 "$VDGX" up --config "$TMP/vdgx.ini" --data "$DATA3" --detach
PIDS+=($(head -n1 "$DATA3/vdgx-up.pid"))
for i in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$HTTP/health" && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$HTTP/v1/models" >"$TMP/models.json" || fail "GET /v1/models"
json_check "$TMP/models.json" 'j["object"] == "list" and [m["id"] for m in j["data"]] == ["testgen"] and j["data"][0]["object"] == "model" and j["data"][0]["default"]'
CODE=$(curl -s -o "$TMP/nomodel.json" -w '%{http_code}' -H 'content-type: application/json' \
       -d '{"prompt":"no model named","seconds":"1","size":"64x48"}' "http://127.0.0.1:$HTTP/v1/videos")
[ "$CODE" = 200 ] || [ "$CODE" = 202 ] || fail "a request without model: $CODE $(cat "$TMP/nomodel.json")"
json_check "$TMP/nomodel.json" 'j["model"] == "testgen"'
expect_rc 0 "$VDGX" logs --data "$DATA3" --no-follow -n 3
grep -q "broker" "$TMP/out" || fail "vdgx logs shows nothing"
expect_rc 0 "$VDGX" down --data "$DATA3"
echo "cli.up: OK"
