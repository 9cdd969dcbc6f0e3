#!/bin/sh
# One version everywhere: project(VERSION) in CMakeLists.txt, the top entry
# of debian/changelog, the first section of CHANGELOG.md and the footer of
# every man page must name the same MAJOR.MINOR.PATCH. Run by `make test`.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
v=$(sed -n 's/^project(netframe VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
[ -n "$v" ] || { echo "check_version: no project(netframe VERSION ...) in CMakeLists.txt" >&2; exit 1; }
fail=0
deb=$(sed -n '1s/^netframe (\([^)-]*\).*/\1/p' "$ROOT/debian/changelog")
[ "$deb" = "$v" ] || { echo "check_version: debian/changelog says '$deb', CMakeLists.txt $v" >&2; fail=1; }
cl=$(sed -n 's/^## \([0-9][0-9.]*\).*/\1/p' "$ROOT/CHANGELOG.md" | head -1)
[ "$cl" = "$v" ] || { echo "check_version: CHANGELOG.md's first section is '$cl', CMakeLists.txt $v" >&2; fail=1; }
bad=$(grep -L "^\.TH .*\"netframe $v\"" $(grep -L '^\.so ' "$ROOT"/docs/man/man*/*.[37]) || true)
[ -z "$bad" ] || { echo "check_version: man pages not marked netframe $v:" $bad >&2; fail=1; }
[ $fail = 0 ] && echo "check_version: ok: $v everywhere"
exit $fail
