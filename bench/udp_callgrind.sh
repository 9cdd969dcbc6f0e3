#!/usr/bin/env bash
# User-space instructions per echoed 64-byte datagram, per UDP echo server,
# with valgrind --tool=callgrind: counts that repeat run to run on a shared,
# noisy machine. Each server is run twice under callgrind, echoing N1 and N2
# datagrams (udp_load open loop at RATE/s); (Ir2 - Ir1) / (echoed2 - echoed1)
# cancels start-up and shutdown. Servers on io_uring are left out (valgrind). Only user space is counted: work io_uring or
# the socket layer does in the kernel is not (see the CPU column of udp.sh).
#
# usage: bench/udp_callgrind.sh BUILD_DIR
set -u -o pipefail
BUILD=${1:?usage: bench/udp_callgrind.sh BUILD_DIR}
BUILD=${BUILD%/}
RATE=${NF_UDP_CG_RATE:-4000}
command -v valgrind >/dev/null || { echo "udp_callgrind.sh: valgrind not installed" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nf-udp-cg.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
declare -a NAMES CMDS
[ -x "$BUILD/bench/nf_udp_uv_echo" ] && NAMES+=(libuv) && CMDS+=("$BUILD/bench/nf_udp_uv_echo --port 0")
NAMES+=(epoll-plain) && CMDS+=("$BUILD/bench/nf_udp_epoll_echo --port 0")
# Not the io_uring server: under valgrind 3.19 (Debian 12) it never gets to serve
# (the io_uring set-up it uses is not emulated): see docs/udp.md.
NAMES+=(nf-epoll-block) && CMDS+=("$BUILD/examples/udp_echo_server --port 0 --backend epoll --rcvbuf 4194304 --recv-size 2048 --recv-count 0")

run() { # cmd seconds -> "Ir echoed"
    : >"$TMP/out"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" $1 >"$TMP/out" 2>"$TMP/err" &
    local pid=$!
    for _ in $(seq 200); do grep -q "listening on" "$TMP/out" && break; sleep 0.05; done
    local port
    port=$(grep -o 'listening on [^ ]*' "$TMP/out" | sed 's/.*://')
    sleep 0.5
    local echoed
    echoed=$("$BUILD/examples/udp_load" --port "$port" --rate "$RATE" --seconds "$2" --flows 4 --batch 8 |
        grep -o 'echoed=[0-9]*' | cut -d= -f2)
    kill -INT $pid
    wait $pid
    local ir
    ir=$(grep -E '^(summary|totals):' "$TMP/cg.out" | head -1 | awk '{print $2}')
    echo "$ir $echoed"
}
printf "%-16s %14s %12s\n" server "instr/dgram" "datagrams"
for i in "${!NAMES[@]}"; do
    [[ ${NAMES[$i]} =~ ${NF_UDP_CG_ONLY:-.} ]] || continue
    read -r ir1 n1 < <(run "${CMDS[$i]}" 1)
    read -r ir2 n2 < <(run "${CMDS[$i]}" 3)
    awk -v a="$ir1" -v b="$ir2" -v n="$n1" -v m="$n2" -v name="${NAMES[$i]}" \
        'BEGIN { if (m > n) printf "%-16s %14.0f %12d\n", name, (b - a) / (m - n), m - n; else printf "%-16s %14s\n", name, "n/a" }'
done
