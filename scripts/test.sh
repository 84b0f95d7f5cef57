#!/usr/bin/env bash
# Runs every test in one debug build: the Swift tests (unit, golden vectors, daemon
# integration), then the Python client's (clients/python) against the same logd binary.
# Arguments go to `swift test` (e.g. --filter DaemonTests).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build "$@"
LOGD_BIN="$PWD/.build/debug/logd" python3 -m pytest -q -p no:cacheprovider clients/python/tests
