#!/usr/bin/env bash
# make demo: start examples/chat_server (a WebSocket chat room that serves its
# own page), check it from the outside, print the URL.
#
#   scripts/demo.sh [BUILD_DIR]      DEMO_PORT (default 8080), DEMO_HOST
#                                    (default 127.0.0.1), DEMO_ARGS (extra
#                                    chat_server options, e.g. --deflate),
#                                    DEMO_SECONDS (run time without a terminal),
#                                    DEMO_TLS=1 (https:// and wss:// with a
#                                    self-signed certificate made here)
#
# Self-check first: GET / must be the page (200, text/html), an unknown path
# 404, and a WebSocket message must come back as a broadcast (Python's
# websockets, tests/interop/chat_check.py --url). Then:
#   - in a terminal (stdin is a tty): the server runs until Ctrl-C;
#   - otherwise (CI, pipes): it runs DEMO_SECONDS (default 0) more and stops,
#     so `make demo` never hangs a script.
# Exit status: 0 when the check passed and the server exited cleanly.
set -euo pipefail
BUILD=${1:-build}
HOST=${DEMO_HOST:-127.0.0.1}
PORT=${DEMO_PORT:-8080}
read -r -a EXTRA <<<"${DEMO_ARGS:-}"
here=$(cd "$(dirname "$0")/.." && pwd)
SCHEME=http
CHECK_ARGS=()
if [ "${DEMO_TLS:-0}" = 1 ]; then
    # A throwaway self-signed certificate for localhost / 127.0.0.1, kept in
    # the build folder (the browser will ask to accept it once).
    certdir="$BUILD/demo-tls"
    mkdir -p "$certdir"
    if [ ! -s "$certdir/cert.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$certdir/key.pem" -out "$certdir/cert.pem" 2>/dev/null
    fi
    EXTRA+=(--tls-cert "$certdir/cert.pem" --tls-key "$certdir/key.pem")
    SCHEME=https
    CHECK_ARGS=(--ca "$certdir/cert.pem")
fi
out=$(mktemp)
srv=""
cleanup() {
    if [ -n "$srv" ] && kill -0 "$srv" 2>/dev/null; then kill -TERM "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
    rm -f "$out"
}
trap cleanup EXIT

start() {
    : >"$out"
    "$BUILD/examples/chat_server" --host "$HOST" --port "$1" "${EXTRA[@]}" >"$out" 2>&1 &
    srv=$!
    for _ in $(seq 50); do
        grep -q '^listening on' "$out" && return 0
        kill -0 "$srv" 2>/dev/null || break
        sleep 0.1
    done
    wait "$srv" 2>/dev/null || true
    srv=""
    return 1
}
if ! start "$PORT"; then
    echo "demo: port $PORT is not free ($(head -n 1 "$out")); using a free port instead"
    start 0 || { cat "$out"; exit 1; }
fi
addr=$(sed -n 's/^listening on \([^ ]*\) .*/\1/p' "$out")
url="$SCHEME://$addr/"
sed -n 1p "$out"

echo "--- self-check: the page, a 404, a WebSocket round trip"
if ! timeout 30 /usr/bin/python3 "$here/tests/interop/chat_check.py" --url "$url" "${CHECK_ARGS[@]}"; then
    echo "demo: self-check FAILED; server output:"
    cat "$out"
    exit 1
fi

echo
echo "    chat room: $url"
echo
if [ -t 0 ]; then
    echo "Open it in two browser tabs and type. Statistics are on the right. Ctrl-C stops the server."
    trap 'kill -INT "$srv" 2>/dev/null || true' INT
    rc=0
    wait "$srv" || rc=$?
    # wait returns early when the trap runs: wait again for the real exit
    if kill -0 "$srv" 2>/dev/null; then rc=0; wait "$srv" || rc=$?; fi
else
    echo "(stdin is not a terminal: stopping after ${DEMO_SECONDS:-0} s; run make demo in a terminal to keep it up)"
    sleep "${DEMO_SECONDS:-0}"
    kill -INT "$srv"
    rc=0
    wait "$srv" || rc=$?
fi
srv=""
echo "--- chat_server exited $rc"
exit "$rc"
