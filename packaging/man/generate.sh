#!/usr/bin/env bash
# Regenerates packaging/man/logd.8 and logctl.1 from the binaries' ArgumentParser definitions
# with swift-argument-parser's generate-manual tool (works offline once dependencies are
# fetched), then adds what --help cannot say: ENVIRONMENT, FILES, EXIT STATUS and SEE ALSO from
# packaging/man/<page>.sections (edit those, not the pages).
# Usage: bash packaging/man/generate.sh [BIN_DIR]   (default: .build/release; run `make build` first)
#        SCRATCH=.build-x bash packaging/man/generate.sh ...   builds the tool in another build folder
# The pages are committed, so installing and packaging need neither this script nor the tool;
# a test checks that every subcommand and option of --help appears in them.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir="${1:-.build/release}"
scratch="${SCRATCH:-.build}"
out="packaging/man"
swift build --scratch-path "$scratch" --product generate-manual >/dev/null
tool="$(swift build --scratch-path "$scratch" --show-bin-path)/generate-manual"
date="$(date -u +%Y-%m-%d)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# finish PAGE NO_SUBCOMMANDS: the generated page in $tmp → packaging/man/PAGE.
# generate-manual writes a synopsis "subcommand" and a "help" entry for every root command;
# logd has no subcommands, so they go. Its generic ".Ex -std" gives way to PAGE.sections.
finish() {
    local page="$1" no_subcommands="$2"
    awk -v drop="$no_subcommands" -v sections="$out/$page.sections" '
        drop && /^\.Ar subcommand$/ { next }
        drop && /^\.It Em help$/ { skipping = 1; next }
        skipping { if (/^\.El$/) skipping = 0; next }
        /^\.Sh "EXIT STATUS"$/ {
            while ((getline line < sections) > 0) print line
            exiting = 1; next
        }
        exiting && /^\.Ex / { next }
        { print }
    ' "$tmp/$page" > "$out/$page"
}

"$tool" "$bin_dir/logd" --section 8 --date "$date" --output-directory "$tmp"
"$tool" "$bin_dir/logctl" --section 1 --date "$date" --output-directory "$tmp"
finish logd.8 1
finish logctl.1 0
echo "wrote $out/logd.8 $out/logctl.1"
