#!/usr/bin/env bash
# cli.precision: precision-aware routing and refusal at submit, on a real broker with two
# test workers of one model, one running fp8 and one bf16. A job asking for a precision
# runs on a worker that runs it (never fails there for the wrong one); a precision no
# worker runs is refused when submitted, with the field named; a job that names none runs
# anywhere. Also: an unknown model's error lists the known ones.
source "$(dirname "$0")/lib.sh"

start_broker --model testgen
for p in fp8 bf16; do
    VDGX_TESTGEN_SLEEP_MS=20 "$BIN/vdgx-worker-test" --model testgen --precision $p --broker "$VDGX_BROKER" \
        --data "$TMP/worker-$p" --heartbeat-ms 100 --liveness 5 >"$TMP/worker-$p.log" 2>&1 &
    PIDS+=($!)
done
for i in $(seq 1 100); do
    [ "$("$VDGX" workers --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))' 2>/dev/null)" = 2 ] && break
    sleep 0.1
done

expect_rc 2 "$VDGX" generate "x" --model testgen --precision fp4 --detach
grep -q "precision" "$TMP/err" && grep -q "fp4" "$TMP/err" && grep -q "fp8" "$TMP/err" \
    || fail "no clear refusal for fp4: $(cat "$TMP/err")"
expect_rc 4 "$VDGX" generate "x" --model testgn --detach
grep -q "known models: testgen" "$TMP/err" || fail "the unknown-model error does not list the known ones: $(cat "$TMP/err")"

: >"$TMP/ids"
for i in $(seq 1 6); do
    for p in fp8 bf16; do
        id=$("$VDGX" generate "p $p $i" --model testgen --precision $p --steps 2 --seed $i --detach) \
            || fail "submit $p"
        echo "$id $p" >>"$TMP/ids"
    done
    id=$("$VDGX" generate "any $i" --model testgen --steps 2 --seed $i --detach) || fail "submit any"
    echo "$id any" >>"$TMP/ids"
done
while read -r id p; do
    expect_rc 0 "$VDGX" wait "$id" --max-wait 60
    if [ "$p" != any ]; then
        grep -q "worker.job id=$id" "$TMP/worker-$p.log" || fail "job $id ($p) did not run on the $p worker"
    fi
done <"$TMP/ids"
grep -h "worker.job_failed" "$TMP"/worker-*.log | grep -q precision && fail "a worker refused a precision"
echo "cli.precision: OK"
