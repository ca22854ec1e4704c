#!/usr/bin/env bash
# cli.commands: every job / introspection command of `vdgx` against a real vdgx-broker and a
# real test worker (engine testgen): exit statuses, progress lines, JSON output.
source "$(dirname "$0")/lib.sh"

start_broker --model testgen
VDGX_TESTGEN_SLEEP_MS=30 VDGX_TESTGEN_LOAD_MS=60 "$BIN/vdgx-worker-test" --model testgen --broker "$VDGX_BROKER" \
    --data "$TMP/worker" --heartbeat-ms 100 --liveness 5 >"$TMP/worker.log" 2>&1 &
WORKER=$!
PIDS+=($WORKER)

# Usage errors: exit 2, a message, nothing sent.
expect_rc 2 "$VDGX"
expect_rc 2 "$VDGX" no-such-command
grep -q "unknown command" "$TMP/err" || fail "no message for an unknown command"
expect_rc 2 "$VDGX" generate
expect_rc 2 "$VDGX" generate "a cat"                                  # no --model
expect_rc 2 "$VDGX" generate "a cat" --model testgen --steps 0
expect_rc 2 "$VDGX" generate "a cat" --model testgen --size 12x12
expect_rc 2 "$VDGX" generate "a cat" --model testgen --frames 5 --seconds 2
grep -q "seconds" "$TMP/err" || fail "the frames+seconds error does not name seconds"
expect_rc 2 "$VDGX" generate "a cat" --model Bad/Name
expect_rc 2 "$VDGX" generate "a" "b" --model testgen
expect_rc 2 "$VDGX" status 'bad id!'
expect_rc 2 "$VDGX" status
expect_rc 2 "$VDGX" list --limit 0
expect_rc 2 "$VDGX" list --state sleeping
expect_rc 2 "$VDGX" --timeout x health
expect_rc 2 "$VDGX" bench -c 0
expect_rc 0 "$VDGX" --help
grep -q "Exit status" "$TMP/out" || fail "--help does not document exit statuses"

# Health: the broker answers (retry while it starts), the worker registers.
for i in $(seq 1 100); do
    "$VDGX" --timeout 0.3 health --require testgen >/dev/null 2>&1 && break
    sleep 0.1
done
expect_rc 0 "$VDGX" health --require testgen
grep -q "testgen" "$TMP/out" || fail "health does not list the model"
grep -q $'\033' "$TMP/out" && fail "colours on a non-TTY"
expect_rc 0 "$VDGX" health --json
json_check "$TMP/out" 'j["healthy"] and j["reachable"] and j["ok"] and j["store"]["ok"]'
expect_rc 6 "$VDGX" health --require no-such-model

# generate: plain progress lines on a non-TTY, the MP4 downloaded.
expect_rc 0 "$VDGX" generate "a red fox" --model testgen --steps 3 --seed 7 -o "$TMP/fox.mp4"
grep -q "^progress: .*phase=denoising step=1/3" "$TMP/err" || fail "no progress lines: $(cat "$TMP/err")"
grep -q "state=completed" "$TMP/err" || fail "no final progress line"
grep -q $'\r' "$TMP/err" && fail "carriage returns on a non-TTY"
grep -q "^saved $TMP/fox.mp4" "$TMP/out" || fail "no saved line"
is_mp4 "$TMP/fox.mp4" || fail "fox.mp4 is not an MP4"

# On a terminal (script(1) gives it one): one line redrawn in place, with a bar and an ETA.
if command -v script >/dev/null; then
    script -qec "'$VDGX' generate 'tty fox' --model testgen --steps 4 -o '$TMP/tty.mp4'" /dev/null \
        >"$TMP/tty.out" 2>&1 </dev/null || fail "generate on a TTY: $(cat "$TMP/tty.out")"
    grep -q $'\r\033\[K\[#' "$TMP/tty.out" || fail "no redrawn bar on a TTY: $(cat -v "$TMP/tty.out")"
    grep -q "ETA" "$TMP/tty.out" || fail "no ETA on a TTY"
    grep -q "^progress:" "$TMP/tty.out" && fail "plain progress lines on a TTY"
    is_mp4 "$TMP/tty.mp4" || fail "tty.mp4 is not an MP4"
    rm -f "$TMP/tty.mp4"
fi

# --detach prints the id at once; wait follows it and downloads.
expect_rc 0 "$VDGX" generate "a cat sleep_ms=40" --model testgen --steps 4 --detach
ID=$(cat "$TMP/out")
[[ "$ID" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || fail "--detach printed '$ID', not a job id"
expect_rc 0 "$VDGX" wait "$ID" -o "$TMP/cat.mp4"
is_mp4 "$TMP/cat.mp4" || fail "cat.mp4 is not an MP4"
expect_rc 0 "$VDGX" status "$ID" --json
json_check "$TMP/out" "j['id'] == '$ID' and j['state'] == 'completed' and j['result']['size'] > 0"
expect_rc 0 "$VDGX" status "$ID"
grep -q "^state: *completed" "$TMP/out" || fail "status text"

# download again: same bytes.
expect_rc 0 "$VDGX" download "$ID" -o "$TMP/cat2.mp4"
cmp -s "$TMP/cat.mp4" "$TMP/cat2.mp4" || fail "download differs from wait's file"

# list: JSON and filters.
expect_rc 0 "$VDGX" list --json
json_check "$TMP/out" "'$ID' in [x['id'] for x in j['jobs']] and len(j['jobs']) >= 2"
expect_rc 0 "$VDGX" list --model testgen --limit 1 --json
json_check "$TMP/out" "len(j['jobs']) == 1 and j['has_more']"
expect_rc 0 "$VDGX" list --state failed --json
json_check "$TMP/out" "j['jobs'] == []"
expect_rc 0 "$VDGX" list
grep -q "$ID" "$TMP/out" || fail "list table misses the job"
# Newest first by default ($ID is the newest job); --after pages towards older ones and the
# pages join up to the whole list; --oldest-first reverses it.
expect_rc 0 "$VDGX" list --limit 1 --json
json_check "$TMP/out" "j['jobs'][0]['id'] == '$ID' and j['has_more']"
expect_rc 0 "$VDGX" list --json
ALL=$(python3 -c "import json,sys; print(' '.join(x['id'] for x in json.load(open(sys.argv[1]))['jobs']))" "$TMP/out")
expect_rc 0 "$VDGX" list --after "$ID" --json
json_check "$TMP/out" "' '.join(['$ID'] + [x['id'] for x in j['jobs']]) == '$ALL'"
expect_rc 0 "$VDGX" list --oldest-first --json
json_check "$TMP/out" "' '.join(x['id'] for x in reversed(j['jobs'])) == '$ALL'"
expect_rc 0 "$VDGX" list --limit 1
grep -q "more: vdgx list --after $ID" "$TMP/out" || fail "list does not say how to page: $(cat "$TMP/out")"
expect_rc 2 "$VDGX" list --after 'not an id!'

# cancel a running job: wait then says cancelled (exit 1), download refuses.
expect_rc 0 "$VDGX" generate "slow sleep_ms=200" --model testgen --steps 50 --detach
SLOW=$(cat "$TMP/out")
for i in $(seq 1 100); do
    "$VDGX" status "$SLOW" --json >"$TMP/st" 2>/dev/null
    python3 -c "import json,sys; sys.exit(0 if json.load(open('$TMP/st'))['state']=='running' else 1)" && break
    sleep 0.05
done
expect_rc 0 "$VDGX" cancel "$SLOW"
expect_rc 1 "$VDGX" wait "$SLOW"
grep -q "cancelled" "$TMP/err" || fail "wait does not say cancelled"
expect_rc 1 "$VDGX" download "$SLOW" -o "$TMP/none.mp4"
[ -e "$TMP/none.mp4" ] && fail "download of a cancelled job left a file"

# A job that fails: exit 1 with the error.
expect_rc 1 "$VDGX" generate "boom fail=error" --model testgen --steps 2 -o "$TMP/boom.mp4"
grep -q "failed" "$TMP/err" || fail "no failure message"
[ -e "$TMP/boom.mp4" ] && fail "a failed job left a file"

# Unknown job / model.
expect_rc 4 "$VDGX" status no-such-job
expect_rc 4 "$VDGX" wait no-such-job
expect_rc 4 "$VDGX" generate "x" --model no-such-model

# delete
expect_rc 0 "$VDGX" delete "$ID"
expect_rc 4 "$VDGX" status "$ID"

# workers / models / unload
expect_rc 0 "$VDGX" workers --json
json_check "$TMP/out" "len(j['workers']) == 1 and j['workers'][0]['service'] == 'testgen'"
expect_rc 0 "$VDGX" workers
grep -q "^testgen" "$TMP/out" || fail "workers table"
expect_rc 0 "$VDGX" models --json
json_check "$TMP/out" "any(m['name'] == 'testgen' and m['workers'] == 1 for m in j['models'])"
expect_rc 0 "$VDGX" models
grep -q "16..512 step 1, frames <= 64, steps <= 200" "$TMP/out" || fail "models: no limits: $(cat "$TMP/out")"
expect_rc 0 "$VDGX" models --json
json_check "$TMP/out" "[m['limits']['steps_max'] for m in j['models'] if m['name'] == 'testgen'] == [200]"
expect_rc 0 "$VDGX" unload testgen
grep -q "testgen: 1 worker asked to unload" "$TMP/out" || fail "unload output: $(cat "$TMP/out")"

# bench: a small run in JSON; the model was just unloaded, so its reload is measured.
expect_rc 0 "$VDGX" bench -n 3 -c 2 --steps 2 --json
json_check "$TMP/out" "j['models']['testgen']['loads'] >= 1 and j['models']['testgen']['load_s_mean'] >= 0.05"
json_check "$TMP/out" "j['completed'] == 3 and j['failed'] == 0 and 0 < j['latency_s']['p50'] <= j['latency_s']['p99'] and j['first_progress_s']['p50'] > 0 and j['throughput_jobs_per_s'] > 0 and j['models']['testgen']['jobs'] == 3"
expect_rc 0 "$VDGX" bench -n 2 -c 1 --model testgen --steps 1
grep -q "p50" "$TMP/out" || fail "bench text has no percentiles"

# drain: usage errors; then the worker finishes the job it holds (a draining worker does not
# count for health --require), leaves, and exits 0.
expect_rc 2 "$VDGX" drain
expect_rc 2 "$VDGX" drain --model "Bad Name"
expect_rc 0 "$VDGX" generate "last sleep_ms=40" --model testgen --steps 40 --detach
LAST=$(tr -d '[:space:]' < "$TMP/out")
for i in $(seq 100); do "$VDGX" status "$LAST" 2>/dev/null | grep -q running && break; sleep 0.05; done
expect_rc 0 "$VDGX" drain --model testgen
grep -q "1 worker told to drain" "$TMP/out" || fail "drain output: $(cat "$TMP/out")"
expect_rc 6 "$VDGX" health --require testgen
expect_rc 0 "$VDGX" wait "$LAST" -o "$TMP/last.mp4"
for i in $(seq 100); do kill -0 $WORKER 2>/dev/null || break; sleep 0.05; done
kill -0 $WORKER 2>/dev/null && fail "the drained worker is still running"
wait $WORKER; rc=$?
[ $rc -eq 0 ] || fail "the drained worker exited $rc"
expect_rc 0 "$VDGX" drain --host no-such-host
grep -q "0 workers told to drain" "$TMP/out" || fail "drain of an unknown host: $(cat "$TMP/out")"

# The broker gone: health says unreachable (3), JSON too; other commands too.
kill -9 $BROKER
wait $BROKER 2>/dev/null
expect_rc 3 "$VDGX" --timeout 0.3 health
grep -q "unreachable" "$TMP/out" || fail "health does not say unreachable"
expect_rc 3 "$VDGX" --timeout 0.3 health --json
json_check "$TMP/out" "not j['reachable'] and not j['healthy']"
expect_rc 3 "$VDGX" --timeout 0.3 status some-job
echo "cli.commands: OK"
