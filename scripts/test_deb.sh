#!/usr/bin/env bash
# The Debian packages, end to end: build them from a copy of the tree
# (dpkg-buildpackage -us -uc -b), lintian must report no error or warning,
# install them with dpkg -i, build and run the consumer test against the
# installed files (/usr), run an installed example, and remove the packages
# again, also when a step fails. Needs root (or sudo) for dpkg.
# Usage: scripts/test_deb.sh [WORKDIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d /tmp/nf-deb.XXXXXX)}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
PKGS="netframe-examples libnetframe-dev libnetframe1"

if dpkg-query -W -f='${Status}\n' libnetframe1 2>/dev/null | grep -q "ok installed"; then
    echo "test_deb: libnetframe1 is installed already; remove it first (dpkg -r $PKGS)" >&2
    exit 1
fi
rm -rf "$WORK"
mkdir -p "$WORK/src"
# The tree as git sees it (committed or not), without build products.
(cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$WORK/src"

cd "$WORK/src"
echo "test_deb: dpkg-buildpackage (log: $WORK/build.log)"
if ! dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log" >&2
    exit 1
fi
cd "$WORK"
ls -1 ./*.deb
echo "test_deb: lintian"
lintian --fail-on error,warning --tag-display-limit 0 ./*.changes

cleanup() { $SUDO dpkg -r $PKGS >/dev/null 2>&1 || true; }
trap cleanup EXIT
$SUDO dpkg -i ./libnetframe1_*.deb ./libnetframe-dev_*.deb ./netframe-examples_*.deb >/dev/null
dpkg-query -W $PKGS

# The installed example is linked to the installed library by its SONAME.
soname=$(readelf -d /usr/lib/*/libnetframe.so | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
ldd /usr/libexec/netframe/echo_server | grep -Eq "$soname => (/usr)?/lib/" ||
    { echo "test_deb: echo_server does not use the installed $soname" >&2; exit 1; }
# A man page from the -dev package.
man -w nf_conn_write >/dev/null

NO_SUBDIR=1 "$ROOT/tests/consumer/run.sh" "$ROOT" /usr "$WORK/consumer"

cleanup
trap - EXIT
if dpkg-query -W -f='${Status}\n' libnetframe1 2>/dev/null | grep -q "ok installed"; then
    echo "test_deb: the packages did not go away" >&2
    exit 1
fi
echo "test_deb: ok (built, lintian clean, installed, consumer test passed, removed)"
