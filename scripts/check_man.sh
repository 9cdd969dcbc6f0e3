#!/bin/sh
# Checks the API reference in docs/man against the public API:
#   1. every function declared in include/netframe/*.h (static inline ones
#      included) and every nf_ symbol the shared library exports (when its
#      path is given) has a page docs/man/man3/NAME.3, and the library
#      exports every function a header declares (not static inline);
#   2. every page names real functions only (no stale pages), and every
#      .so link points to a page that exists;
#   3. every page renders without warnings (mandoc -Tlint, else groff -ww).
# Usage: scripts/check_man.sh [path/to/libnetframe.so]
# CHECK_MAN_INCLUDES: more include directories, ':'-separated (a generated
# header in the build tree); the ctest passes the library's own.
# The function list comes from the compiler itself (gcc -aux-info), so no
# regular expression has to understand C declarations.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAN=$ROOT/docs/man
LIB=${1:-}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0

# 1. the public functions
for h in "$ROOT"/include/netframe/*.h; do
    echo "#include <netframe/$(basename "$h")>"
done >"$TMP/all.c"
incs="-I$ROOT/include"
IFS_SAVE=$IFS
IFS=:
for d in ${CHECK_MAN_INCLUDES:-}; do
    [ -n "$d" ] && incs="$incs -I$d"
done
IFS=$IFS_SAVE
# shellcheck disable=SC2086
if ! gcc -std=c11 -D_GNU_SOURCE $incs -fsyntax-only -aux-info "$TMP/aux.txt" "$TMP/all.c"; then
    echo "check_man: the public headers do not compile" >&2
    exit 1
fi
# The function names of -aux-info lines (one declaration a line).
names() { sed -E 's/^\/\*[^*]*\*\/ *//; s/\(.*//; s/.*[^a-zA-Z0-9_]([a-zA-Z_][a-zA-Z0-9_]*) *$/\1/' | sort -u; }
grep "include/netframe/" "$TMP/aux.txt" | names >"$TMP/funcs"
if [ -n "$LIB" ]; then
    if [ ! -f "$LIB" ]; then
        echo "check_man: no library at $LIB" >&2
        exit 1
    fi
    nm -D --defined-only "$LIB" | awk '$2 == "T" && $3 ~ /^nf_/ { print $3 }' >"$TMP/exported"
    # an exported function that no header declares is a bug of its own
    comm -13 "$TMP/funcs" "$(sort -u "$TMP/exported" >"$TMP/exp.s"; echo "$TMP/exp.s")" >"$TMP/undeclared"
    while read -r f; do
        echo "check_man: $f is exported by $(basename "$LIB") but declared in no public header"
        fail=1
    done <"$TMP/undeclared"
    # a function a header declares (not static inline) that the shared
    # library does not export cannot be called by a program linked to it
    grep "include/netframe/" "$TMP/aux.txt" | grep -v ' static ' | names >"$TMP/declared"
    comm -23 "$TMP/declared" "$TMP/exp.s" >"$TMP/unexported"
    while read -r f; do
        echo "check_man: $f is declared in a public header but $(basename "$LIB") does not export it (NF__EXPORT)"
        fail=1
    done <"$TMP/unexported"
    sort -u "$TMP/funcs" "$TMP/exp.s" -o "$TMP/funcs"
fi
nfuncs=$(wc -l <"$TMP/funcs")
if [ "$nfuncs" -lt 10 ]; then
    echo "check_man: found only $nfuncs public functions: the extraction is broken" >&2
    exit 1
fi
missing=0
while read -r f; do
    if [ ! -f "$MAN/man3/$f.3" ]; then
        echo "check_man: no man page for $f (add docs/man/man3/$f.3, or a .so link to the page that documents it)"
        missing=$((missing + 1))
        fail=1
    fi
done <"$TMP/funcs"

# 2. no stale pages, no dangling links
pages=0
links=0
for p in "$MAN"/man3/*.3; do
    [ -e "$p" ] || continue
    name=$(basename "$p" .3)
    if ! grep -qx "$name" "$TMP/funcs"; then
        echo "check_man: $name.3 documents no public function (stale page?)"
        fail=1
    fi
    first=$(head -n 1 "$p")
    case $first in
    .so\ *)
        links=$((links + 1))
        target=${first#.so }
        if [ ! -f "$MAN/$target" ]; then
            echo "check_man: $name.3 links to $target, which does not exist"
            fail=1
        elif ! sed -n '/^\.SH NAME/,/^\.SH/p' "$MAN/$target" | grep -qE "(^|[ ,])$name(,| \\\\-)"; then
            echo "check_man: $name.3 links to $target, whose NAME section does not list $name"
            fail=1
        fi
        ;;
    *)
        pages=$((pages + 1))
        sed -n '/^\.SH NAME/,/^\.SH/p' "$p" | sed '1d;$d' | sed 's/ \\-.*//' | tr ',' '\n' |
            sed 's/^ *//; s/ *$//' | grep . >"$TMP/names"
        if ! grep -qx "$name" "$TMP/names"; then
            echo "check_man: $name.3: its NAME section does not list $name"
            fail=1
        fi
        while read -r n; do
            if ! grep -qx "$n" "$TMP/funcs"; then
                echo "check_man: $name.3 names $n, which is not a public function"
                fail=1
            fi
        done <"$TMP/names"
        ;;
    esac
done

# 3. every page renders cleanly
render() { # file
    if command -v mandoc >/dev/null 2>&1; then
        (cd "$MAN" && mandoc -Tlint -Wwarning "$1" 2>&1)
    else
        (cd "$MAN" && groff -man -Tutf8 -ww -z "$1" 2>&1)
    fi
}
for p in "$MAN"/man3/*.3 "$MAN"/man7/*.7; do
    [ -e "$p" ] || continue
    head -n 1 "$p" | grep -q '^\.so ' && continue
    rel=${p#"$MAN"/}
    out=$(render "$rel")
    if [ -n "$out" ]; then
        echo "$out" | sed 's/^/check_man: /'
        fail=1
    fi
done
if [ ! -f "$MAN/man7/netframe.7" ]; then
    echo "check_man: docs/man/man7/netframe.7 is missing"
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    echo "check_man: FAILED ($missing of $nfuncs public functions without a page)"
    exit 1
fi
echo "check_man: ok: $nfuncs public functions, each with a page ($pages pages, $links .so links), all render cleanly"
