#!/usr/bin/env bash
# Builds logd_<version>_<arch>.deb with dpkg-deb into OUTPUT_DIR.
#
#   bash packaging/deb/build-deb.sh OUTPUT_DIR                 release build (make build), then package
#   bash packaging/deb/build-deb.sh OUTPUT_DIR --bin-dir DIR   package DIR/logd and DIR/logctl as they are
#
# The version comes from the binary (`logd --version`, set in Sources/logd/main.swift): one place.
# packaging/deb/changelog's latest entry must name that version (it is the package's changelog).
# --bin-dir skips the release build (the tests use .build/debug); debug binaries link the Swift
# runtime dynamically, so such a package runs only where that runtime is installed.
# The file layout is the Makefile's `install-files` target with PREFIX=/usr.
#
# Depends is computed, as debhelper's ${shlibs:Depends} is: dpkg-shlibdeps (package dpkg-dev)
# maps the shared libraries the binaries link (their NEEDED entries: libc, libstdc++, libgcc_s,
# libuv, libyaml) to packages with minimum versions. Without dpkg-shlibdeps (or with
# LOGD_DEB_SHLIBDEPS=ldd) every library `ldd` resolves is mapped to its package with `dpkg -S`
# (no minimum versions; libraries no package owns, such as a toolchain's Swift runtime, are
# named on stderr and left out). adduser is added for postinst.
# Also written: DEBIAN/md5sums (every file but the conffile, as dh_md5sums does),
# usr/share/doc/logd/copyright (machine-readable, Apache-2.0) and changelog.gz.
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
changelog_version="$(sed -n '1s/^logd (\([^)]*\)).*/\1/p' packaging/deb/changelog)"
if [ "$changelog_version" != "$version" ]; then
    echo "build-deb: packaging/deb/changelog's latest entry is '$changelog_version', logd --version says '$version':" \
        "add an entry for $version" >&2
    exit 1
fi

stage="$(mktemp -d "${TMPDIR:-/tmp}/logd-deb.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
root="$stage/logd_${version}_${arch}"

make --no-print-directory install-files DESTDIR="$root" PREFIX=/usr SYSCONFDIR=/etc BIN_DIR="$bin_dir" \
    SYSTEMD_SYSTEM_UNIT_DIR=/lib/systemd/system SYSTEMD_USER_UNIT_DIR=/usr/lib/systemd/user \
    SYSUSERS_DIR=/usr/lib/sysusers.d BASH_COMPLETION_DIR=/usr/share/bash-completion/completions \
    ZSH_COMPLETION_DIR=/usr/share/zsh/vendor-completions FISH_COMPLETION_DIR=/usr/share/fish/vendor_completions.d \
    >/dev/null
# Debian conventions: stripped binaries, compressed man pages, a copyright file.
if [ -z "${LOGD_DEB_NOSTRIP:-}" ] && command -v strip >/dev/null; then
    strip --strip-unneeded "$root/usr/bin/logd" "$root/usr/bin/logctl"
fi
gzip -9n "$root/usr/share/man/man8/logd.8" "$root/usr/share/man/man1/logctl.1"
install -m 0644 packaging/deb/copyright "$root/usr/share/doc/logd/copyright"
# A native package (no Debian revision): the changelog is changelog.gz.
gzip -9n < packaging/deb/changelog > "$root/usr/share/doc/logd/changelog.gz"
chmod 0644 "$root/usr/share/doc/logd/changelog.gz"

mkdir -p "$root/DEBIAN"

# Depends: see the header.
shlib_depends() {
    local work="$stage/shlibdeps" mode="${LOGD_DEB_SHLIBDEPS:-dpkg-shlibdeps}"
    if [ "$mode" = dpkg-shlibdeps ] && ! command -v dpkg-shlibdeps >/dev/null; then
        echo "build-deb: dpkg-shlibdeps not found (Debian package dpkg-dev): Depends from ldd and dpkg -S" >&2
        mode=ldd
    fi
    if [ "$mode" = dpkg-shlibdeps ]; then
        mkdir -p "$work/debian"
        printf 'Source: logd\n\nPackage: logd\nArchitecture: any\n' > "$work/debian/control"
        # Its warnings (e.g. about a debug build's toolchain libraries) go to stderr only if it fails.
        if ! (cd "$work" && dpkg-shlibdeps -O -e"$root/usr/bin/logd" -e"$root/usr/bin/logctl") \
            > "$work/out" 2> "$work/err"; then
            cat "$work/err" >&2
            return 1
        fi
        sed -n 's/^shlibs:Depends=//p' "$work/out"
        return
    fi
    local lib pkg pkgs=""
    for lib in $(ldd "$root/usr/bin/logd" "$root/usr/bin/logctl" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
        pkg=""
        for candidate in "$lib" "$(readlink -f "$lib")" "/usr$lib" "${lib#/usr}"; do
            pkg="$(dpkg -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1)" && [ -n "$pkg" ] && break
        done
        if [ -n "$pkg" ]; then pkgs="$pkgs $pkg"; else echo "build-deb: no package owns $lib; not in Depends" >&2; fi
    done
    echo $pkgs | tr ' ' '\n' | sort -u | paste -sd, | sed 's/,/, /g'
}
shlibs="$(shlib_depends)"
[ -n "$shlibs" ] || { echo "build-deb: could not compute the shared-library dependencies" >&2; exit 1; }
depends="$shlibs, adduser"

size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    packaging/deb/control > "$root/DEBIAN/control"
echo /etc/logd/logd.yaml > "$root/DEBIAN/conffiles"
# md5sums of every shipped file but the conffile (dpkg tracks conffiles itself).
(cd "$root" && find . -type f ! -path './DEBIAN/*' ! -path './etc/logd/logd.yaml' -printf '%P\0' | sort -z |
    xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"

mkdir -p "$out"
deb="$out/logd_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
