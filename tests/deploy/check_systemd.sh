#!/usr/bin/env bash
# systemd-analyze verify on the units, pointed at this build's binaries.
# Usage: check_systemd.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src="$1"; bin="$2"
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for unit in "$src"/compose/systemd/*.service; do
    sed "s#/usr/local/bin/#$bin/#g" "$unit" > "$tmp/$(basename "$unit")"
done
cp "$tmp/vdgx-worker@.service" "$tmp/vdgx-worker@wan21-tiny.service"
cd "$tmp"
# verify prints problems on stderr and exits non-zero on errors; warnings about the running
# system (no systemd as PID 1 in containers) are filtered out, everything else fails the test.
out="$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no vdgx-broker.service vdgx-bridge.service vdgx-worker@wan21-tiny.service 2>&1 || true)"
bad="$(printf '%s\n' "$out" | grep -v -e '^$' -e 'Failed to connect to' -e 'System has not been booted with systemd' -e 'Cannot add dependency job' -e 'network-online.target' -e 'multi-user.target' || true)"
if [ -n "$bad" ]; then
    echo "systemd-analyze verify found problems:"
    printf '%s\n' "$bad"
    exit 1
fi
echo "systemd units: verified"
