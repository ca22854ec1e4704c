#!/usr/bin/env bash
# cli.ops: operator commands on a real broker and test worker: `vdgx backup` while jobs are
# submitted (then restored as README.md says, every job that was in the backup is there),
# `vdgx logs`, and `vdgx-bridge --make-key` on a keys file with no key.
source "$(dirname "$0")/lib.sh"

start_broker --model testgen
"$BIN/vdgx-worker-test" --model testgen --broker "$VDGX_BROKER" --data "$TMP/worker" \
    --heartbeat-ms 100 --liveness 5 >"$TMP/worker.log" 2>&1 &
PIDS+=($!)

# backup: usage errors, then an online copy while a submitter keeps the broker writing.
expect_rc 2 "$VDGX" backup
expect_rc 4 "$VDGX" backup --data "$TMP/nowhere" "$TMP/x.db"
for i in $(seq 1 5); do
    "$VDGX" generate "before $i" --model testgen --steps 2 --detach >>"$TMP/before.ids" || fail "submit"
done
( for i in $(seq 1 30); do "$VDGX" generate "during $i" --model testgen --steps 2 --detach >/dev/null 2>&1; done ) &
SUBMITTER=$!
expect_rc 0 "$VDGX" backup --data "$TMP/broker" "$TMP/backup.db"
grep -q "backed up" "$TMP/out" || fail "no backup line"
wait $SUBMITTER
expect_rc 7 "$VDGX" backup --data "$TMP/broker" "$TMP/backup.db"      # never overwritten
grep -q "not overwritten" "$TMP/err" || fail "no message for an existing file"
python3 - "$TMP/backup.db" "$TMP/before.ids" <<'PY' || fail "the backup does not hold the jobs"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
ids = {r[0] for r in db.execute("SELECT id FROM jobs")}
want = set(open(sys.argv[2]).read().split())
assert want <= ids, (want - ids)
PY
# Restore (README.md, Operations): stop, copy, drop -wal/-shm, start.
kill $BROKER; wait $BROKER 2>/dev/null
cp "$TMP/backup.db" "$TMP/broker/jobs.db"
rm -f "$TMP/broker/jobs.db-wal" "$TMP/broker/jobs.db-shm"
"$BIN/vdgx-broker" --bind "$VDGX_BROKER" --events "$VDGX_EVENTS" --data "$TMP/broker" \
    --heartbeat-ms 100 --liveness 5 --model testgen >"$TMP/broker2.log" 2>&1 &
BROKER=$!
PIDS+=($BROKER)
for id in $(cat "$TMP/before.ids"); do
    expect_rc 0 "$VDGX" wait "$id" --max-wait 30
done

# list: newest first (the restored jobs and those submitted during the backup); JSON numbers
# are printed as the values they are (no 86.111000000000004).
expect_rc 0 "$VDGX" list --json --limit 1000
json_check "$TMP/out" '[j["created_at"] for j in j["jobs"]] == sorted([j["created_at"] for j in j["jobs"]], reverse=True) and len(j["jobs"]) >= 5'
grep -Eq '[0-9]\.[0-9]{12,}' "$TMP/out" && fail "floats printed with noise digits: $(grep -Eo '[0-9]+\.[0-9]{12,}' "$TMP/out" | head -3)"
expect_rc 0 "$VDGX" list --limit 2 --json
json_check "$TMP/out" 'len(j["jobs"]) == 2 and j["has_more"]'
NEWEST=$(python3 -c "import json,sys; print(json.load(open('$TMP/out'))['jobs'][0]['id'])")
expect_rc 0 "$VDGX" list --limit 1000 --oldest-first --json
json_check "$TMP/out" 'j["jobs"][-1]["id"] == "'"$NEWEST"'"'
# models sources --json: JSON.
expect_rc 0 "$VDGX" models sources --json
json_check "$TMP/out" 'len(j["sources"]) >= 1 and all(s["name"] and s["repo"] for s in j["sources"])'
# No broker: said at once (not after the reply timeouts), with the way out.
START=$(date +%s%N)
expect_rc 3 "$VDGX" --broker tcp://127.0.0.1:1 --timeout 5 status abc
MS=$(( ($(date +%s%N) - START) / 1000000 ))
[ "$MS" -lt 3000 ] || fail "no-broker took $MS ms"
grep -q "vdgx up" "$TMP/err" && grep -q "no broker at tcp://127.0.0.1:1" "$TMP/err" || fail "no-broker message: $(cat "$TMP/err")"

# logs: the stack's logs under DATA/logs; a clear message where there are none.
mkdir -p "$TMP/stack/logs"
echo "broker line one" >"$TMP/stack/logs/broker.log"
echo "bridge line two" >"$TMP/stack/logs/bridge.log"
expect_rc 0 "$VDGX" logs --data "$TMP/stack" --no-follow -n 5
grep -q "broker line one" "$TMP/out" && grep -q "bridge line two" "$TMP/out" || fail "vdgx logs: $(cat "$TMP/out")"
expect_rc 4 "$VDGX" logs --data "$TMP/nowhere" --no-follow
grep -q "vdgx up" "$TMP/err" || fail "no hint for missing logs"

# vdgx-bridge --make-key: a fresh deployment's empty keys file gets a key; it works.
printf '# API keys\n' >"$TMP/keys"
PORT=$((PORT1 + 2))
"$BIN/vdgx-bridge" --listen "127.0.0.1:$PORT" --broker "$VDGX_BROKER" --events "$VDGX_EVENTS" \
    --keys "$TMP/keys" >"$TMP/bridge-nokey.log" 2>&1 && fail "the bridge started with no key"
grep -q -- "--make-key" "$TMP/bridge-nokey.log" || fail "no hint: $(cat "$TMP/bridge-nokey.log")"
"$BIN/vdgx-bridge" --listen "127.0.0.1:$PORT" --broker "$VDGX_BROKER" --events "$VDGX_EVENTS" \
    --keys "$TMP/keys" --make-key >"$TMP/bridge.log" 2>&1 &
BRIDGE=$!
PIDS+=($BRIDGE)
for i in $(seq 1 100); do grep -q "api_key=" "$TMP/bridge.log" && break; sleep 0.05; done
KEY="$(sed -n 's/^api_key=//p' "$TMP/bridge.log")"
[ -n "$KEY" ] || fail "no key printed: $(cat "$TMP/bridge.log")"
grep -q "$KEY" "$TMP/keys" && fail "the key itself was stored (only its hash may be)"
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.05; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/queue/status")" = 401 ] || fail "no key: not 401"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/queue/status")" = 200 ] \
    || fail "the made key is refused"
kill $BRIDGE; wait $BRIDGE 2>/dev/null
# A second start keeps the key (no second one is made).
"$BIN/vdgx-bridge" --listen "127.0.0.1:$PORT" --broker "$VDGX_BROKER" --events "$VDGX_EVENTS" \
    --keys "$TMP/keys" --make-key >"$TMP/bridge2.log" 2>&1 &
BRIDGE=$!
PIDS+=($BRIDGE)
sleep 0.5
grep -q "api_key=" "$TMP/bridge2.log" && fail "a second key was made"
[ "$(grep -c '^[0-9a-f]\{64\}' "$TMP/keys")" = 1 ] || fail "keys file: $(cat "$TMP/keys")"
echo "cli.ops: OK"
