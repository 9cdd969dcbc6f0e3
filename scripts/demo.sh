#!/usr/bin/env bash
# make demo: start the echo server, drive it with the echo client, print what
# was measured, stop the server. Bounded: the client runs a fixed time.
set -euo pipefail
BUILD=${1:-build}
PORT=${DEMO_PORT:-7000}
SECONDS_RUN=${DEMO_SECONDS:-5}
out=$(mktemp)
"$BUILD/examples/echo_server" --port "$PORT" >"$out" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q '^listening on' "$out" && break; sleep 0.1; done
cat "$out"
echo "--- echo_client: 50 connections x 64 bytes, ${SECONDS_RUN}s"
"$BUILD/examples/echo_client" --port "$PORT" --connections 50 --size 64 --seconds "$SECONDS_RUN"
echo "--- echo_client: 10 connections x 16 KiB, ${SECONDS_RUN}s"
"$BUILD/examples/echo_client" --port "$PORT" --connections 10 --size 16384 --seconds "$SECONDS_RUN"
kill -INT $srv
rc=0; wait $srv || rc=$?
echo "--- server exited $rc after SIGINT"
tail -n 1 "$out"
