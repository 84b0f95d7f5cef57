#!/usr/bin/env bash
# Installs what logd needs to build and test on Debian/Ubuntu:
#   apt: libuv, libyaml and libcurl (-dev; libcurl for MLflow forwarding), pkg-config, python3-venv, valgrind and gcc
#        (bench/instructions.py), and for the packaging tests systemd
#        (systemd-socket-activate, systemd-analyze), make and dpkg-deb (dpkg);
#   .venv/: a virtual environment with the Python tools the tests use (scripts/requirements-test.txt).
# A stock Debian refuses `pip install` into its system Python (PEP 668), so nothing goes there.
# Swift itself is expected on PATH (https://swift.org/install); this script does not fetch it.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=0
for pc in libuv yaml-0.1 libcurl; do
  pkg-config --exists "$pc" 2>/dev/null || need_apt=1
done
for tool in systemd-socket-activate systemd-analyze make dpkg-deb python3 valgrind cc; do
  command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
# python3 -m venv needs ensurepip, which Debian ships apart (python3-venv).
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt=1
if [ "$need_apt" -eq 1 ] || [ "${CI:-}" = "true" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y libuv1-dev libyaml-dev libcurl4-openssl-dev pkg-config systemd make dpkg python3 python3-venv \
    valgrind gcc
fi

VENV="${LOGD_VENV:-.venv}"
if [ ! -x "$VENV/bin/python3" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
echo "python tools: $VENV (scripts/test.sh puts $VENV/bin first on PATH)"
