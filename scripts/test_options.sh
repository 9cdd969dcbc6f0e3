#!/usr/bin/env bash
# The optional parts of the build (CMake NF_WITH_URING, NF_WITH_ZLIB):
#  1. an epoll-only library (-DNF_WITH_URING=OFF): no file of it includes
#     liburing's headers, it does not link liburing, its config.h and its
#     loops say so, and the tests that apply (every test on epoll) pass;
#  2. a library without zlib (-DNF_WITH_ZLIB=OFF): it does not link zlib, and
#     ws_echo_server --deflate answers a client that offers
#     permessage-deflate without the extension, then echoes.
# Usage: scripts/test_options.sh [BUILD_PREFIX]   (default: build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PFX=${1:-build}
EP=$PFX-epoll-only
NZ=$PFX-no-zlib
JOBS=$(nproc)
cd "$ROOT"
fail() { echo "test_options: $*" >&2; exit 1; }

# 1. epoll only
cmake -S . -B "$EP" -DNF_WERROR=ON -DNF_WITH_URING=OFF -DNF_BUILD_BENCH=OFF >"$EP.log"
cmake --build "$EP" -j "$JOBS" >>"$EP.log" 2>&1 || { tail -30 "$EP.log"; fail "epoll-only build failed"; }
grep -q '#define NF_HAVE_URING   0' "$EP/include/netframe/config.h" || fail "$EP: config.h does not say NF_HAVE_URING 0"
if grep -rl 'liburing' "$EP/CMakeFiles/nf_obj.dir" --include='*.d' | grep -q .; then
    fail "$EP: a library source includes liburing's headers"
fi
if readelf -d "$EP/libnetframe.so" | grep -q 'liburing'; then
    fail "$EP: libnetframe.so links liburing"
fi
if nm "$EP/libnetframe.a" 2>/dev/null | grep -q ' U io_uring_'; then
    fail "$EP: libnetframe.a calls liburing"
fi
echo "test_options: epoll-only library: no liburing header, no liburing link"
(cd "$EP" && NF_BACKEND= ctest -j "$JOBS" --output-on-failure --output-junit "$(pwd)/ctest-junit.xml") ||
    fail "$EP: tests failed"
./scripts/test_summary.sh "$EP" "$EP/ctest-junit.xml"

# 2. no zlib
cmake -S . -B "$NZ" -DNF_WERROR=ON -DNF_WITH_ZLIB=OFF -DNF_BUILD_TESTS=OFF -DNF_BUILD_BENCH=OFF >"$NZ.log"
cmake --build "$NZ" -j "$JOBS" --target netframe_shared ws_echo_server >>"$NZ.log" 2>&1 ||
    { tail -30 "$NZ.log"; fail "no-zlib build failed"; }
grep -q '#define NF_HAVE_DEFLATE 0' "$NZ/include/netframe/config.h" || fail "$NZ: config.h does not say NF_HAVE_DEFLATE 0"
if readelf -d "$NZ/libnetframe.so" | grep -q 'libz\.'; then
    fail "$NZ: libnetframe.so links zlib"
fi
if nm "$NZ/examples/ws_echo_server" | grep -q ' U deflate\| U inflate'; then
    fail "$NZ: ws_echo_server calls zlib"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NZ/examples/ws_echo_server" --host 127.0.0.1 --port "$port" --deflate 2>"$NZ/ws_echo_server.log" &
pid=$!
rc=0
python3 - "$port" <<'PY' || rc=$?
import os, socket, sys, time
port = int(sys.argv[1])
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("no listener")
        time.sleep(0.05)
s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
          b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    d = s.recv(4096)
    if not d:
        sys.exit("closed during the handshake")
    head += d
head, rest = head.split(b"\r\n\r\n", 1)
lines = head.decode().split("\r\n")
if not lines[0].startswith("HTTP/1.1 101"):
    sys.exit("no 101: " + lines[0])
if any(l.lower().startswith("sec-websocket-extensions") for l in lines):
    sys.exit("the server accepted permessage-deflate without zlib")
payload = b"no deflate here"
mask = os.urandom(4)
frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
s.sendall(frame)
buf = rest
while len(buf) < 2 + len(payload):
    d = s.recv(4096)
    if not d:
        sys.exit("closed before the echo")
    buf += d
if buf[0] != 0x81 or buf[1] != len(payload) or buf[2:2 + len(payload)] != payload:
    sys.exit("echo differs: %r" % buf)
PY
kill "$pid"
wait "$pid" || fail "ws_echo_server (no zlib) exited $? after SIGTERM"
[ $rc = 0 ] || fail "no-zlib WebSocket check failed"
echo "test_options: no-zlib library: no zlib link; permessage-deflate declined, echo ok"
echo "test_options: ok"
