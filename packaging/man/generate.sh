#!/usr/bin/env bash
# Regenerates packaging/man/logd.8 and logctl.1 from the binaries' --help, with
# swift-argument-parser's generate-manual tool (works offline once dependencies are fetched).
# Usage: bash packaging/man/generate.sh [BIN_DIR]   (default: .build/release; run `make build` first)
# The pages are committed, so installing and packaging need neither this script nor the tool;
# a test checks that every option in --help appears in them.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir="${1:-.build/release}"
out="packaging/man"
swift build --product generate-manual >/dev/null
tool="$(swift build --show-bin-path)/generate-manual"
date="$(date -u +%Y-%m-%d)"
"$tool" "$bin_dir/logd" --section 8 --date "$date" --output-directory "$out"
"$tool" "$bin_dir/logctl" --section 1 --date "$date" --output-directory "$out"
echo "wrote $out/logd.8 $out/logctl.1"
