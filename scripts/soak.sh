#!/usr/bin/env bash
# make soak: the long soak test (tests/soak/README.md). For each backend, a
# quiet run of 10 s and a storm of SECONDS; then a shorter storm with the
# server under valgrind memcheck (epoll backend: valgrind does not model
# io_uring), judged on memory errors and leaks (timing checks relaxed:
# valgrind runs the server some 20-50 times slower).
# Usage: scripts/soak.sh BUILD SECONDS
set -uo pipefail
BUILD=${1:-build}
SECS=${2:-120}
D=$BUILD/tests/soak_driver
S=$(cd "$BUILD/tests" && pwd)/soak_server
fail=0
for b in uring epoll; do
    echo "== soak: $b, quiet 10 s, storm $SECS s"
    NF_BACKEND=$b "$D" --server "$S" --quiet 10 --storm "$SECS" || fail=1
done
if command -v valgrind >/dev/null; then
    wrap=$(mktemp /tmp/nf-soak-valgrind.XXXXXX)
    cat >"$wrap" <<EOW
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --log-file=$BUILD/soak-valgrind.log "$S" "\$@"
EOW
    chmod +x "$wrap"
    echo "== soak: epoll under valgrind memcheck, quiet 5 s, storm 30 s (log: $BUILD/soak-valgrind.log)"
    NF_BACKEND=epoll "$D" --server "$wrap" --quiet 5 --storm 30 --p99-factor 1000 --no-rss-check --slack 10 || fail=1
    rm -f "$wrap"
else
    echo "soak: valgrind not installed, memcheck run skipped" >&2
    fail=1
fi
exit $fail
