#!/usr/bin/env bash
# deploy.mkcert: vdgx-mkcert names its files as the broker, the workers, the CLI and the quick
# starts expect (NAME.key + NAME.key_secret, ALLOWED/NAME.key), --help writes nothing, and a
# broker started with --curve DIR uses the certificate made for it (a CURVE client with
# DIR/broker.key gets answers; the file is not replaced).
set -u
BIN="$1"
TMP="$(mktemp -d /tmp/vdgx-mkcert-test.XXXXXX)"
BROKER=""
trap '[ -n "$BROKER" ] && kill -9 $BROKER 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$TMP/broker.log" ] && tail -n 20 "$TMP/broker.log" >&2; exit 1; }

cd "$TMP"
"$BIN/vdgx-mkcert" --help >out 2>&1 || fail "--help exits non-zero"
grep -q "usage: vdgx-mkcert" out || fail "--help prints no usage"
[ "$(ls | grep -v '^out$' | wc -l)" = 0 ] || fail "--help wrote files: $(ls)"
"$BIN/vdgx-mkcert" >/dev/null 2>&1 && fail "no argument accepted"
"$BIN/vdgx-mkcert" -x >/dev/null 2>&1 && fail "an unknown option accepted"
[ "$(ls | grep -v '^out$' | wc -l)" = 0 ] || fail "a bad call wrote files: $(ls)"

"$BIN/vdgx-mkcert" curve/broker >/dev/null || fail "mkcert curve/broker"
"$BIN/vdgx-mkcert" cli curve/allowed >/dev/null || fail "mkcert cli curve/allowed"
for f in curve/broker.key curve/broker.key_secret cli.key cli.key_secret curve/allowed/cli.key; do
    [ -s "$f" ] || fail "$f was not written"
done
grep -q secret-key curve/allowed/cli.key && fail "the allowed copy holds the secret key"
"$BIN/vdgx-mkcert" cli >/dev/null 2>&1 && fail "an existing certificate was overwritten"
"$BIN/vdgx-mkcert" other.key >/dev/null && [ -s other.key ] && [ -s other.key_secret ] \
    || fail "a path ending in .key is not taken as it is"
PUB="$(cat curve/broker.key)"

PORT=$((21000 + RANDOM % 9000))
"$BIN/vdgx-broker" --bind "tcp://127.0.0.1:$PORT" --events "" --curve "$TMP/curve" --data "$TMP/data" \
    >"$TMP/broker.log" 2>&1 &
BROKER=$!
ok=0
for i in $(seq 1 50); do
    "$BIN/vdgx" --broker "tcp://127.0.0.1:$PORT" --timeout 0.3 --curve-server-key curve/broker.key \
        --curve-cert cli.key_secret health >/dev/null 2>&1 && { ok=1; break; }
    kill -0 $BROKER 2>/dev/null || break
done
[ $ok = 1 ] || fail "a CURVE client with the certificates from vdgx-mkcert got no answer"
[ "$(cat curve/broker.key)" = "$PUB" ] || fail "the broker replaced curve/broker.key"
grep -q "public_key=" "$TMP/broker.log" || fail "the broker does not log the certificate it uses"
kill $BROKER; wait $BROKER 2>/dev/null; BROKER=""
# The public half without its secret: refused, not replaced.
rm curve/broker.key_secret
"$BIN/vdgx-broker" --bind "tcp://127.0.0.1:$PORT" --events "" --curve "$TMP/curve" --data "$TMP/data" \
    >"$TMP/broker.log" 2>&1 && fail "the broker started without its secret key"
grep -q "broker.key_secret does not" "$TMP/broker.log" || fail "no clear message: $(cat "$TMP/broker.log")"
[ "$(cat curve/broker.key)" = "$PUB" ] || fail "the broker replaced curve/broker.key"
# A first start makes both halves (renamed into place, no temporary left); the secret without
# its public half: the public file is written again from it.
mkdir fresh
"$BIN/vdgx-broker" --bind "tcp://127.0.0.1:$PORT" --events "" --curve "$TMP/fresh" --data "$TMP/data2" \
    >"$TMP/broker.log" 2>&1 &
BROKER=$!
for i in $(seq 1 100); do [ -s fresh/broker.key ] && break; sleep 0.1; done
[ -s fresh/broker.key ] && [ -s fresh/broker.key_secret ] || fail "a first start made no certificate"
FRESH="$(grep public-key fresh/broker.key)"
kill $BROKER; wait $BROKER 2>/dev/null; BROKER=""
ls -a fresh | grep -q "new" && fail "a temporary certificate file was left: $(ls -a fresh)"
rm fresh/broker.key
"$BIN/vdgx-broker" --bind "tcp://127.0.0.1:$PORT" --events "" --curve "$TMP/fresh" --data "$TMP/data2" \
    >"$TMP/broker.log" 2>&1 &
BROKER=$!
for i in $(seq 1 100); do [ -s fresh/broker.key ] && break; sleep 0.1; done
kill $BROKER; wait $BROKER 2>/dev/null; BROKER=""
[ "$(grep public-key fresh/broker.key 2>/dev/null)" = "$FRESH" ] && [ -n "$FRESH" ] || fail "the public half was not written again from the secret"
echo "deploy.mkcert: OK"
