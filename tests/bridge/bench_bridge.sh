#!/usr/bin/env bash
# Benchmark of vdgx-bridge against nginx on the same machine, in the same run.
#   tests/bridge/bench_bridge.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
# Starts the broker, one testgen worker and the bridge on loopback ports, makes one job, then
# runs wrk on GET /health and GET /jobs/{id}, and on nginx serving static JSON files of the
# same sizes. Prints requests/s, p99 latency, the server's CPU time per request (the bridge
# process; nginx's workers) and the bridge/nginx ratio. Bounded in time:
# every wrk run is SECONDS long (default 10), every wait is bounded, and wrk runs under timeout.
set -euo pipefail
BUILD=${1:-${VDGX_BUILD_DIR:-$(dirname "$0")/../../build}}
SECS=${2:-10}
CONNS=${3:-100}
BIN=$BUILD/bin
for tool in wrk nginx python3; do
    command -v $tool >/dev/null 2>&1 || [ -x /usr/sbin/$tool ] || { echo "bench: $tool not found (apt-get install -y wrk nginx-light)"; exit 77; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TMP=$(mktemp -d /tmp/vdgx-bench-bridge-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BP=$(port); EP=$(port); HP=$(port); NP=$(port)
export VDGX_LOG_LEVEL=warn
"$BIN/vdgx-broker" --bind tcp://127.0.0.1:$BP --events tcp://127.0.0.1:$EP --data "$TMP/broker" --model testgen \
    > "$TMP/broker.log" 2>&1 & PIDS+=($!)
"$BIN/vdgx-worker-test" --model testgen --broker tcp://127.0.0.1:$BP --data "$TMP/worker" > "$TMP/worker.log" 2>&1 & PIDS+=($!)
"$BIN/vdgx-bridge" --listen 127.0.0.1:$HP --broker tcp://127.0.0.1:$BP --events tcp://127.0.0.1:$EP \
    --per-ip-limit 0 --conn-limit 4096 ${BRIDGE_ARGS:-} > "$TMP/bridge.log" 2>&1 & PIDS+=($!)
for i in $(seq 100); do curl -sf "http://127.0.0.1:$HP/health" >/dev/null && break; sleep 0.1; done

ID=$(curl -sf -H 'Content-Type: application/json' -d '{"model":"testgen","prompt":"bench","steps":1}' \
      "http://127.0.0.1:$HP/generate" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for i in $(seq 200); do
    curl -sf "http://127.0.0.1:$HP/jobs/$ID" | grep -q '"state":"completed"' && break; sleep 0.05
done
chmod 755 "$TMP"; mkdir -p "$TMP/www"
curl -sf "http://127.0.0.1:$HP/jobs/$ID" > "$TMP/www/job.json"
curl -sf "http://127.0.0.1:$HP/health" > "$TMP/www/health.json"
cat > "$TMP/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/json;
    client_body_temp_path $TMP/ncb; proxy_temp_path $TMP/np; fastcgi_temp_path $TMP/nf;
    uwsgi_temp_path $TMP/nu; scgi_temp_path $TMP/ns;
    server { listen 127.0.0.1:$NP; root $TMP/www; }
}
CONF
"$NGINX" -c "$TMP/nginx.conf" -p "$TMP" > "$TMP/nginx.log" 2>&1 & PIDS+=($!)
for i in $(seq 100); do curl -sf "http://127.0.0.1:$NP/job.json" >/dev/null && break; sleep 0.1; done

# CPU time (user + system, clock ticks) of the given processes.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
# wrk --latency: requests/s, the 99% line (converted to ms) and the server's CPU time per
# request in microseconds (the processes given after the URL: the bridge, nginx's workers).
run() {
    local out url=$1 t0 t1
    shift
    t0=$(ticks "$@")
    out=$(timeout $((SECS + 30)) wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$url")
    t1=$(ticks "$@")
    local rps p99 errs cpu reqs
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    cpu=$(python3 -c "print('%.1f' % (($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / max(1, ${reqs:-0})))")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    echo "$rps $p99 $cpu $errs"
}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -r); wrk -t2 -c$CONNS -d${SECS}s"
echo "job json $(wc -c < "$TMP/www/job.json") bytes, health json $(wc -c < "$TMP/www/health.json") bytes"
BRIDGE_PID=${PIDS[2]}
NGINX_WORKERS=$(pgrep -P "${PIDS[3]}" | tr '\n' ' ')
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-28s %12s %10s %12s  %s\n" target req/s p99_ms cpu_us/req notes
declare -A R
for t in "bridge /health|http://127.0.0.1:$HP/health|$BRIDGE_PID" \
         "nginx /health.json|http://127.0.0.1:$NP/health.json|$NGINX_WORKERS" \
         "bridge /jobs/{id}|http://127.0.0.1:$HP/jobs/$ID|$BRIDGE_PID" \
         "nginx /job.json|http://127.0.0.1:$NP/job.json|$NGINX_WORKERS"; do
    name=${t%%|*}; rest=${t#*|}; url=${rest%%|*}; pids=${rest#*|}
    # shellcheck disable=SC2086
    read -r rps p99 cpu notes <<< "$(run "$url" $pids)"
    R[$name]=$rps
    printf "%-28s %12s %10s %12s  %s\n" "$name" "$rps" "$p99" "$cpu" "$notes"
done
python3 - "${R[bridge /health]}" "${R[nginx /health.json]}" "${R[bridge /jobs/{id}]}" "${R[nginx /job.json]}" <<'PY'
import sys
bh, nh, bj, nj = map(float, sys.argv[1:])
print("ratio bridge/nginx: /health %.0f%%, /jobs/{id} %.0f%%" % (100 * bh / nh, 100 * bj / nj))
PY
