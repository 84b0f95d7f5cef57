#!/usr/bin/env bash
# The README's first command: install what logd needs, build it, run logd with its embedded
# defaults (no config file), log a small run into it, and take a first look at what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
echo "== building (debug) =="
swift build 2>&1 | tail -n 1
BIN="$(swift build --show-bin-path)"

echo "== starting logd with embedded defaults =="
"$BIN/logd" --print-config
"$BIN/logd" &
LOGD_PID=$!
trap 'kill -TERM $LOGD_PID 2>/dev/null; wait $LOGD_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do "$BIN/logctl" status >/dev/null 2>&1 && break; sleep 0.1; done

echo "== logging a small run: logd-demo (the Swift SDK in a toy training loop) =="
"$BIN/logd-demo" --experiment quickstart --name demo --steps 200 --epochs 3
"$BIN/logctl" flush
"$BIN/logctl" status

DATA_ROOT="$("$BIN/logd" --print-config | sed -n 's/^data_root: "\(.*\)"$/\1/p')"
RUN_DIR="$(ls -dt "$DATA_ROOT"/quickstart/*_demo* | head -n 1)"
echo "== what logd wrote: $RUN_DIR =="
ls -la "$RUN_DIR"
echo "-- main.log (first 3 lines) --"; head -n 3 "$RUN_DIR/main.log"
echo "-- metrics.csv (first 4 lines) --"; head -n 4 "$RUN_DIR/metrics.csv"
echo "-- config.yaml --"; cat "$RUN_DIR/config.yaml"
echo "-- run.yaml (first 20 lines) --"; head -n 20 "$RUN_DIR/run.yaml"
echo "-- logctl show --"; "$BIN/logctl" show "$RUN_DIR"
echo "== stopping logd (SIGTERM drains and exits 0) =="
