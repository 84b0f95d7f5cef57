#!/usr/bin/env bash
# Builds logd_<version>_<arch>.deb with dpkg-deb into OUTPUT_DIR.
#
#   bash packaging/deb/build-deb.sh OUTPUT_DIR                 release build (make build), then package
#   bash packaging/deb/build-deb.sh OUTPUT_DIR --bin-dir DIR   package DIR/logd and DIR/logctl as they are
#
# The version comes from the binary (`logd --version`, set in Sources/logd/main.swift): one place.
# --bin-dir skips the release build (the tests use .build/debug); debug binaries link the Swift
# runtime dynamically, so such a package runs only where that runtime is installed.
# The file layout is the Makefile's `install-files` target with PREFIX=/usr.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: $0 OUTPUT_DIR [--bin-dir DIR]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out="$1"; shift
bin_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) [ $# -ge 2 ] || usage; bin_dir="$2"; shift 2 ;;
        *) usage ;;
    esac
done

if [ -z "$bin_dir" ]; then
    make build
    bin_dir=.build/release
fi
for b in logd logctl; do
    [ -x "$bin_dir/$b" ] || { echo "build-deb: $bin_dir/$b is missing; build it first" >&2; exit 1; }
done

version="$("$bin_dir/logd" --version | awk '{print $2}')"
[ -n "$version" ] || { echo "build-deb: cannot read the version from $bin_dir/logd --version" >&2; exit 1; }
arch="$(dpkg --print-architecture)"

stage="$(mktemp -d "${TMPDIR:-/tmp}/logd-deb.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
root="$stage/logd_${version}_${arch}"

make --no-print-directory install-files DESTDIR="$root" PREFIX=/usr SYSCONFDIR=/etc BIN_DIR="$bin_dir" \
    SYSTEMD_SYSTEM_UNIT_DIR=/lib/systemd/system SYSTEMD_USER_UNIT_DIR=/usr/lib/systemd/user \
    SYSUSERS_DIR=/usr/lib/sysusers.d >/dev/null
# Debian conventions: stripped binaries, compressed man pages, a copyright file.
if [ -z "${LOGD_DEB_NOSTRIP:-}" ] && command -v strip >/dev/null; then
    strip --strip-unneeded "$root/usr/bin/logd" "$root/usr/bin/logctl"
fi
gzip -9n "$root/usr/share/man/man8/logd.8" "$root/usr/share/man/man1/logctl.1"
cat > "$root/usr/share/doc/logd/copyright" <<'COPYRIGHT'
logd — a local run-logging daemon for model training.
See the source repository for authors and license terms.
COPYRIGHT

mkdir -p "$root/DEBIAN"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" packaging/deb/control > "$root/DEBIAN/control"
echo /etc/logd/logd.yaml > "$root/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"

mkdir -p "$out"
deb="$out/logd_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
