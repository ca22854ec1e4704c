#!/bin/sh
# run_fuzz.sh FUZZER SEED_DIR SECONDS ARTIFACT_DIR
# Runs one libFuzzer target for a bounded time on a scratch copy of its seed corpus, so the
# committed corpus is never written to; crash inputs are kept in ARTIFACT_DIR (build tree).
set -e
fuzzer=$1; seeds=$2; seconds=$3; artifacts=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/vdgx-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts" "$work/corpus"
rc=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/corpus" "$seeds" || rc=$?
exit $rc
