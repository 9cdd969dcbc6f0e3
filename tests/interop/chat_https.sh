#!/bin/sh
# chat_server over TLS (issue 7): https:// page and wss:// room on one port,
# certificates from tls_mkcerts (a test CA; the server's covers 127.0.0.1),
# checked by chat_check.py --url https://... --ca (Python's ssl verifying
# the chain and the address), then SIGTERM must end the server with 0.
#   chat_https.sh TLS_MKCERTS CHAT_SERVER CHAT_CHECK_PY
set -eu
mk=$1 srv=$2 check=$3
dir=$("$mk")
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
"$srv" --port 0 --tls-cert "$dir/server.pem" --tls-key "$dir/server.key" >"$dir/out" 2>&1 &
pid=$!
i=0
while ! grep -q '^listening on' "$dir/out"; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "FAIL: chat_server did not start:"; cat "$dir/out"; exit 1; }
    sleep 0.1
done
port=$(sed -n 's/^listening on [^:]*:\([0-9]*\) .*/\1/p' "$dir/out")
grep -q "open https://" "$dir/out" || { echo "FAIL: no https URL printed"; cat "$dir/out"; exit 1; }
timeout 30 /usr/bin/python3 "$check" --url "https://127.0.0.1:$port/" --ca "$dir/ca.pem"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { echo "FAIL: chat_server exited $rc"; cat "$dir/out"; exit 1; }
echo "ok: https page and wss room, verified against the test CA; clean exit"
