#!/usr/bin/env bash
# Runs every test (unit, golden vectors, daemon integration) in one debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build "$@"
