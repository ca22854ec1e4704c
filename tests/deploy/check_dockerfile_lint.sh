#!/usr/bin/env bash
# Lints compose/Dockerfile with dockerfilelint (npm). Usage: check_dockerfile_lint.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src="$1"; work="$2"
command -v npm >/dev/null || { echo "SKIP: npm not installed"; exit 77; }
mkdir -p "$work"
if [ ! -x "$work/node_modules/.bin/dockerfilelint" ]; then
    (cd "$work" && timeout 180 npm install --no-audit --no-fund --silent dockerfilelint@1.8.0 >/dev/null 2>&1) \
        || { echo "SKIP: cannot install dockerfilelint from the npm registry"; exit 77; }
fi
"$work/node_modules/.bin/dockerfilelint" "$src/compose/Dockerfile"
