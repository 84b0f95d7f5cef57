#!/usr/bin/env bash
# Installs what logd needs to build and test on Debian/Ubuntu: libuv and libyaml (-dev),
# pkg-config, the Python validators and runner the tests use (PyYAML, yamllint, prov, pytest), and for the packaging
# tests systemd (systemd-socket-activate, systemd-analyze), make, and dpkg-deb (dpkg).
# Swift itself is expected on PATH (https://swift.org/install); this script does not fetch it.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=0
for pc in libuv yaml-0.1; do
  pkg-config --exists "$pc" 2>/dev/null || need_apt=1
done
for tool in systemd-socket-activate systemd-analyze make dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" -eq 1 ] || [ "${CI:-}" = "true" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y libuv1-dev libyaml-dev pkg-config systemd make dpkg
fi

if ! python3 -c 'import yaml, yamllint, prov, pytest' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check pyyaml yamllint prov pytest
fi
