#!/usr/bin/env bash
# The consumer test: a project outside the tree builds the README's echo
# server against netframe three ways and runs each binary against a real
# client.
#   tests/consumer/run.sh SRC PREFIX WORK
# SRC: netframe's source tree. PREFIX: where netframe is installed ("/usr"
# for the Debian packages). WORK: a scratch directory (emptied).
# 1. pkg-config (shared, then static);  2. find_package(netframe CONFIG)
# (netframe::netframe, netframe::netframe_static);  3. add_subdirectory(SRC)
# and FetchContent (skipped with NO_SUBDIR=1: the package test has done them
# against the tree).
set -euo pipefail
SRC=$(cd "$1" && pwd)
PREFIX=$(cd "$2" && pwd)
rm -rf "$3"
mkdir -p "$3"
WORK=$(cd "$3" && pwd)
cd "$WORK"
PORT=7000 # the README snippet's

pcfile=$(find "$PREFIX"/lib* -name netframe.pc -path '*pkgconfig*' 2>/dev/null | head -1 || true)
[ -n "$pcfile" ] || { echo "consumer: no netframe.pc under $PREFIX" >&2; exit 1; }
LIBDIR=$(dirname "$(dirname "$pcfile")")
export PKG_CONFIG_PATH=$(dirname "$pcfile")
export LD_LIBRARY_PATH=$LIBDIR

# Runs an echo server binary, checks an echo through 127.0.0.1:PORT, stops it by PID.
check_echo() {
    local bin=$1
    # io_uring lets go of a killed server's listening socket a moment after
    # the process is gone: wait until the port is free (at most 5 s).
    for _ in $(seq 100); do
        ss -Hltn "sport = :$PORT" | grep -q . || break
        sleep 0.05
    done
    "$bin" &
    local pid=$!
    if ! python3 - "$PORT" <<'PY'; then
import socket, sys, time
port = int(sys.argv[1])
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("no listener on %d" % port)
        time.sleep(0.05)
msg = b"consumer test " * 100
s.sendall(msg)
got = b""
while len(got) < len(msg):
    d = s.recv(65536)
    if not d:
        sys.exit("closed after %d bytes" % len(got))
    got += d
sys.exit(0 if got == msg else "echo differs")
PY
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "consumer: $bin: echo failed" >&2
        return 1
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "consumer: $bin: echo ok"
}

# The binary must need the library by its SONAME (shared) or not at all (static).
check_needed() {
    local bin=$1 want=$2
    local got
    got=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(libnetframe[^]]*\)\].*/\1/p')
    if [ "$got" != "$want" ]; then
        echo "consumer: $bin needs '${got}', expected '${want}'" >&2
        return 1
    fi
}
soname=$(readelf -d "$LIBDIR/libnetframe.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
echo "consumer: $LIBDIR/libnetframe.so: SONAME $soname"

# 1. pkg-config
awk '/^```c/{f=1;next}/^```/{if(f)exit}f' "$SRC/README.md" >echo.c
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror echo.c $(pkg-config --cflags --libs netframe) -o echo_pc
check_needed ./echo_pc "$soname"
check_echo ./echo_pc
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror echo.c $(pkg-config --cflags netframe) "$LIBDIR/libnetframe.a" $(pkg-config --static --libs-only-l netframe | sed 's/-lnetframe//') -o echo_pc_static
check_needed ./echo_pc_static ""
check_echo ./echo_pc_static

# 2. find_package
cmake -S "$SRC/tests/consumer" -B pkg -DNF_CONSUME=package -DNETFRAME_SOURCE_DIR="$SRC" \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_FLAGS="-Wall -Werror" >pkg.log
cmake --build pkg -j "$(nproc)" >>pkg.log
check_needed pkg/echo_shared "$soname"
check_needed pkg/echo_static ""
check_echo pkg/echo_shared
check_echo pkg/echo_static
pkg/version_check

# 3. add_subdirectory and FetchContent (the library built inside this
# project; no install)
if [ "${NO_SUBDIR:-0}" != 1 ]; then
    for how in subdir fetch; do
        cmake -S "$SRC/tests/consumer" -B "$how" -DNF_CONSUME="$how" -DNETFRAME_SOURCE_DIR="$SRC" >"$how.log"
        cmake --build "$how" -j "$(nproc)" >>"$how.log"
        LD_LIBRARY_PATH= check_echo "$how/echo_shared"
        check_echo "$how/echo_static"
        LD_LIBRARY_PATH= "$how/version_check"
    done
fi
echo "consumer: ok"
