#!/usr/bin/env bash
# Runs every test in one debug build: the Swift tests (unit, golden vectors, daemon
# integration), then the Python client's (clients/python) against the same logd binary.
# Arguments go to `swift test` (e.g. --filter DaemonTests).
# The Python tools come from .venv (scripts/install-deps.sh); it goes first on PATH so that
# the tests' `python3` is the venv's.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LOGD_VENV:-$PWD/.venv}"
if [ -x "$VENV/bin/python3" ]; then export PATH="$VENV/bin:$PATH"; fi
# Formatting first: the repository's .swift-format, no warning allowed.
swift format lint --strict --recursive Package.swift Sources Tests
swift build --build-tests
swift test --skip-build "$@"
# The SDK's suites again under ThreadSanitizer (Run promises thread safety); own build folder.
swift test --scratch-path .build-tsan --sanitize=thread --filter LogSDKTests
LOGD_BIN="$PWD/.build/debug/logd" python3 -m pytest -q -p no:cacheprovider clients/python/tests
# The adversarial tools against the same daemon: replayed fuzz crash inputs, hostile clients with
# an RSS bound, a full tmpfs (skips without root). adversarial/README.md says what each does.
LOGD_BIN="$PWD/.build/debug/logd" python3 -m pytest -q -p no:cacheprovider adversarial
