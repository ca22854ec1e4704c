#!/usr/bin/env bash
# multihost.curve: the broker in one network namespace, test workers in two others (joined
# by veth pairs, routed /30s of 10.200.X.0/29 that exist only inside the namespaces), CURVE
# on. Checks: jobs are served by both hosts; killing the worker that runs a job lets the
# job finish on the other host; a worker whose key is not allowed is refused; the root
# namespace has no route to the broker. Everything is removed on exit (trap).
# Skips (77) unless root with a working `ip netns`.
set -u
BIN="$1"
VDGX="$BIN/vdgx"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
    echo "multihost: SKIP (needs root and iproute2)"
    exit 77
fi
TAG="$$"
NSB="vdgxmh-b-$TAG" NS1="vdgxmh-1-$TAG" NS2="vdgxmh-2-$TAG"
if ! ip netns add "$NSB" 2>/dev/null; then
    echo "multihost: SKIP (ip netns add failed: no network namespaces here)"
    exit 77
fi
TMP="$(mktemp -d /tmp/vdgx-multihost.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    # Deleting a namespace deletes the veth ends in it (and so their peers).
    for ns in "$NSB" "$NS1" "$NS2"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$TMP"/*.log; do echo "----- $f" >&2; grep -v "libx264\|mp4 @" "$f" | tail -n 15 >&2; done
    exit 1
}
ip netns add "$NS1" && ip netns add "$NS2" || fail "cannot create namespaces"

NET=$((RANDOM % 200 + 20))
B1="10.200.$NET.1" H1="10.200.$NET.2" B2="10.200.$NET.5" H2="10.200.$NET.6"
ip link add "vb1-$TAG" type veth peer name "vh1-$TAG" || fail "veth"
ip link add "vb2-$TAG" type veth peer name "vh2-$TAG" || fail "veth"
ip link set "vb1-$TAG" netns "$NSB"; ip link set "vb2-$TAG" netns "$NSB"
ip link set "vh1-$TAG" netns "$NS1"; ip link set "vh2-$TAG" netns "$NS2"
ip -n "$NSB" addr add "$B1/30" dev "vb1-$TAG"
ip -n "$NSB" addr add "$B2/30" dev "vb2-$TAG"
ip -n "$NS1" addr add "$H1/30" dev "vh1-$TAG"
ip -n "$NS2" addr add "$H2/30" dev "vh2-$TAG"
for ns in "$NSB" "$NS1" "$NS2"; do ip -n "$ns" link set lo up; done
ip -n "$NSB" link set "vb1-$TAG" up; ip -n "$NSB" link set "vb2-$TAG" up
ip -n "$NS1" link set "vh1-$TAG" up; ip -n "$NS2" link set "vh2-$TAG" up
# Host 2 reaches the broker's address (on the other veth) through the broker namespace.
ip -n "$NS1" route add default via "$B1" || fail "route"
ip -n "$NS2" route add default via "$B2" || fail "route"

# The addresses exist only inside the namespaces.
ip -o addr show | grep -q "10.200.$NET\." && fail "10.200.$NET.x is visible in the root namespace"

# Certificates, named as docs/QUICKSTART.md says: the broker's made by vdgx-mkcert (and used,
# not replaced, by the broker); workers and the client get allowed keys.
CURVE="$TMP/curve"
mkdir -p "$CURVE/allowed"
"$BIN/vdgx-mkcert" "$CURVE/broker" >/dev/null || fail "mkcert broker"
BROKER_PUB="$(cat "$CURVE/broker.key")"
for who in w1 w2; do
    "$BIN/vdgx-mkcert" --role worker --models testgen "$TMP/$who" "$CURVE/allowed" >/dev/null || fail "mkcert"
done
"$BIN/vdgx-mkcert" --role admin --name operator "$TMP/client" "$CURVE/allowed" >/dev/null || fail "mkcert"
for who in w1 w2 client; do
    [ -s "$TMP/$who.key" ] && [ -s "$TMP/$who.key_secret" ] && [ -s "$CURVE/allowed/$who.key" ] \
        || fail "mkcert did not write $who.key, $who.key_secret and allowed/$who.key"
done
"$BIN/vdgx-mkcert" --role worker --models testgen "$TMP/stranger" >/dev/null || fail "mkcert"

EP="tcp://$B1:5555" EV="tcp://$B1:5556"
ip netns exec "$NSB" "$BIN/vdgx-broker" --bind "$EP" --events "$EV" --curve "$CURVE" \
    --data "$TMP/broker" --heartbeat-ms 100 --liveness 5 --model testgen >"$TMP/broker.log" 2>&1 &
PIDS+=($!)
sleep 0.3
[ "$(cat "$CURVE/broker.key")" = "$BROKER_PUB" ] || fail "the broker replaced the certificate made for it"

cli() {  # the CLI as a client in the broker's namespace, over CURVE
    ip netns exec "$NSB" "$VDGX" --broker "$EP" --events "$EV" --curve-server-key "$CURVE/broker.key" \
        --curve-cert "$TMP/client.key_secret" "$@"
}
worker() {  # worker NS NAME CERT
    ip netns exec "$1" env VDGX_TESTGEN_SLEEP_MS=150 "$BIN/vdgx-worker-test" --model testgen \
        --broker "$EP" --curve-server-key "$CURVE/broker.key" --curve-cert "$3" \
        --data "$TMP/$2" --heartbeat-ms 100 --liveness 5 --reconnect-max-ms 400 >"$TMP/$2.log" 2>&1 &
    PIDS+=($!)
    LASTPID=$!
}
worker "$NS1" host1 "$TMP/w1.key_secret"; W1=$LASTPID
worker "$NS2" host2 "$TMP/w2.key_secret"; W2=$LASTPID
worker "$NS1" stranger "$TMP/stranger.key_secret"

count_workers() {
    cli --timeout 1 workers --json 2>/dev/null | python3 -c "import json,sys; print(len(json.load(sys.stdin)['workers']))" 2>/dev/null || echo 0
}
for i in $(seq 1 100); do [ "$(count_workers)" = 2 ] && break; sleep 0.1; done
[ "$(count_workers)" = 2 ] || fail "expected the 2 allowed workers, got $(count_workers)"
# The stranger keeps trying; it must never be counted.
sleep 1.5
[ "$(count_workers)" = 2 ] || fail "a worker without an allowed key got in"
grep -q "worker.job" "$TMP/stranger.log" && fail "the stranger got a job"

# A client without CURVE gets no answer.
ip netns exec "$NSB" "$VDGX" --broker "$EP" --events "$EV" --timeout 0.5 health >/dev/null 2>&1
[ $? = 3 ] || fail "a plain client was answered"
# Nothing of the test network is left in the root namespace: no veth end, no route, no
# address (a TCP probe from here would prove nothing: a sandbox may accept any connect).
ip -o link show | grep -q -- "-$TAG[@:]" && fail "a veth end is in the root namespace"
ip route show | grep -q "10.200.$NET\." && fail "the root namespace has a route to 10.200.$NET.x"

# Jobs are served by both hosts.
IDS=()
for n in 1 2 3 4; do
    id=$(cli generate "job $n" --model testgen --steps 4 --detach) || fail "submit"
    IDS+=("$id")
done
for id in "${IDS[@]}"; do
    cli wait "$id" >/dev/null 2>&1 || fail "job $id did not complete"
done
n1=0 n2=0
for id in "${IDS[@]}"; do
    grep -q "worker.delivered id=$id" "$TMP/host1.log" && n1=$((n1 + 1))
    grep -q "worker.delivered id=$id" "$TMP/host2.log" && n2=$((n2 + 1))
done
[ $n1 -ge 1 ] && [ $n2 -ge 1 ] && [ $((n1 + n2)) = 4 ] || fail "jobs per host: host1 $n1, host2 $n2"
echo "multihost: 4 jobs served, host1 $n1, host2 $n2"

# Kill the host running a long job: the job finishes on the other host.
LONG=$(cli generate "long job" --model testgen --steps 20 --detach) || fail "submit"
RUNNER=""
for i in $(seq 1 100); do
    grep -q "worker.job id=$LONG" "$TMP/host1.log" && { RUNNER=1; break; }
    grep -q "worker.job id=$LONG" "$TMP/host2.log" && { RUNNER=2; break; }
    sleep 0.05
done
[ -n "$RUNNER" ] || fail "nobody started the long job"
sleep 0.5
if [ "$RUNNER" = 1 ]; then kill -9 "$W1"; OTHER=host2; else kill -9 "$W2"; OTHER=host1; fi
cli wait "$LONG" -o "$TMP/long.mp4" >/dev/null 2>&1 || fail "the long job did not complete after its host died"
grep -q "worker.delivered id=$LONG" "$TMP/$OTHER.log" || fail "the long job was not finished by $OTHER"
[ -s "$TMP/long.mp4" ] || fail "no video"
echo "multihost: job survived the loss of host$RUNNER, finished on $OTHER"
echo "multihost.curve: OK"
